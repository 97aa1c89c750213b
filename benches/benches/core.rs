//! Benchmarks of the core's hot paths.
use criterion::{Criterion, criterion_group, criterion_main};
use milink_core::tsql::quote_ident;

fn quoting(c: &mut Criterion) {
    let name = "Toy]Store".repeat(10);
    c.bench_function("quote_ident_90_chars", |b| {
        b.iter(|| quote_ident(std::hint::black_box(&name)))
    });
}

criterion_group!(benches, quoting);
criterion_main!(benches);
