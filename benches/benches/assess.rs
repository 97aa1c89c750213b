//! Readiness assessment: the rules over the Tailspin lab and over a 500-database server, fact
//! gathering through the recorded `FactSource`, and report rendering.
//!
//! Run with `cargo bench -p milink-benches --bench assess`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use milink_benches::fixtures::{report_of_copies, toy_store_copies};
use milink_core::assess::fixtures::{RecordedSource, tailspin};
use milink_core::assess::{GatherOptions, GatheredFacts, assess, gather_instance_facts};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn rules(c: &mut Criterion) {
    let lab = tailspin();
    let many = toy_store_copies(500).expect("500 databases");
    let mut g = c.benchmark_group("assess");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("tailspin", |b| {
        b.iter(|| {
            assess(
                black_box(&lab.instance),
                &lab.databases,
                Some(&lab.target),
                &lab.options,
            )
        })
    });
    g.sample_size(40);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(500));
    g.bench_function("databases_500", |b| {
        b.iter(|| {
            assess(
                black_box(&many.instance),
                &many.databases,
                Some(&many.target),
                &many.options,
            )
        })
    });
    g.finish();
}

/// The assessment and its reports at 10,000 and 100,000 databases: linear, or it shows here.
fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for n in [10_000usize, 100_000] {
        let lab = toy_store_copies(n).expect("databases");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("assess_{n}"), |b| {
            b.iter(|| {
                assess(
                    black_box(&lab.instance),
                    &lab.databases,
                    Some(&lab.target),
                    &lab.options,
                )
            })
        });
        let report = lab.assess();
        g.bench_function(format!("markdown_{n}"), |b| {
            b.iter(|| black_box(&report).to_markdown())
        });
        g.bench_function(format!("html_{n}"), |b| {
            b.iter(|| black_box(&report).to_html())
        });
    }
    g.finish();
}

fn gather_once(rt: &tokio::runtime::Runtime, source: &RecordedSource) -> GatheredFacts {
    rt.block_on(gather_instance_facts(source, &GatherOptions::default()))
        .expect("gather")
}

fn gather(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("gather");
    g.warm_up_time(Duration::from_secs(1));
    for n in [1usize, 500] {
        let facts = gather_once(&rt, &RecordedSource::with_databases(n));
        println!(
            "gather/databases_{n}: {} databases, {} probe batches + {} module text batches = {} batches",
            facts.databases.len(),
            facts.probe_batches,
            facts.module_batches,
            facts.probe_batches + facts.module_batches
        );
        if n > 1 {
            g.sample_size(30);
            g.measurement_time(Duration::from_secs(5));
        } else {
            g.measurement_time(Duration::from_secs(3));
        }
        g.throughput(Throughput::Elements(n as u64));
        // A fresh source per iteration: it records every batch it is sent.
        g.bench_function(format!("databases_{n}"), |b| {
            b.iter_batched(
                || RecordedSource::with_databases(n),
                |source| gather_once(&rt, &source),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let report = report_of_copies(500).expect("500-database report");
    let markdown = report.to_markdown();
    let html = report.to_html();
    let json = report.to_json();
    println!(
        "report/*_500: {} findings; Markdown {} KB, HTML {} KB, JSON {} KB",
        report.findings.len(),
        markdown.len() / 1024,
        html.len() / 1024,
        json.len() / 1024
    );
    let mut g = c.benchmark_group("report");
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("markdown_500", |b| {
        b.iter(|| black_box(&report).to_markdown())
    });
    g.bench_function("html_500", |b| b.iter(|| black_box(&report).to_html()));
    g.bench_function("json_500", |b| b.iter(|| black_box(&report).to_json()));
    g.finish();
}

criterion_group!(benches, rules, gather, render, scale);
criterion_main!(benches);
