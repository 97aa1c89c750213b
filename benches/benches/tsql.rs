//! T-SQL builders: validating and quoting hostile names, and rendering every batch a link
//! creation sends to SQL Server.
//!
//! Run with `cargo bench -p milink-benches --bench tsql`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use milink_benches::scenario::create_source_ops;
use milink_benches::sql::{hostile_names, render_context};
use milink_core::names::DatabaseName;
use milink_core::tsql::{SqlIdentifier, binary_literal, quote_ident, quote_nstring};

fn quoting(c: &mut Criterion) {
    let mut g = c.benchmark_group("quote");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (label, name) in hostile_names() {
        // What a caller pays per name: validate it, then both quotings.
        g.bench_function(format!("validate_and_quote_{label}"), |b| {
            b.iter(|| {
                let db = DatabaseName::new(black_box(name.as_str())).expect("valid name");
                (db.quoted(), db.literal())
            })
        });
    }
    let (_, worst) = hostile_names().pop().expect("worst case");
    g.bench_function("quote_ident_worst_128", |b| {
        b.iter(|| quote_ident(black_box(&worst)))
    });
    g.bench_function("quote_nstring_worst_128", |b| {
        b.iter(|| quote_nstring(black_box(&worst)))
    });
    // A certificate's DER bytes as a `0x…` literal (the root CAs and the instance certificate).
    let (_, der) = render_context()
        .expect("render context")
        .root_cas
        .into_iter()
        .next()
        .expect("a root CA");
    g.throughput(Throughput::Bytes(der.len() as u64));
    g.bench_function(format!("binary_literal_{}_bytes", der.len()), |b| {
        b.iter(|| binary_literal(black_box(&der)))
    });
    g.finish();
}

fn create_link_batches(c: &mut Criterion) {
    let ops = create_source_ops().expect("create ops");
    let rc = render_context().expect("render context");
    let batches: Vec<_> = ops
        .iter()
        .flat_map(|op| op.render(&rc).expect("renders"))
        .collect();
    let bytes: usize = batches.iter().map(|b| b.expose_sql().len()).sum();
    println!(
        "tsql/create_link_batches: {} SourceOps → {} batches, {} bytes of T-SQL",
        ops.len(),
        batches.len(),
        bytes
    );
    let mut g = c.benchmark_group("tsql");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(batches.len() as u64));
    g.bench_function("create_link_batches", |b| {
        b.iter(|| {
            black_box(&ops)
                .iter()
                .map(|op| op.render(&rc).expect("renders"))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, quoting, create_link_batches);
criterion_main!(benches);
