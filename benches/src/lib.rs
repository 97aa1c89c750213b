//! Benchmarks for milink (see `benches/`).
