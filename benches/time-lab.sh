#!/usr/bin/env bash
# Times the default Tailspin lab run (`cargo run --release --example tailspin`) with hyperfine
# (Debian package `hyperfine`) and prints median, MAD and p10–p90 of the wall times.
# The journals go to target/tmp/lab (the same disk as the default, the system temp dir) and are
# removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v hyperfine >/dev/null; then
  echo "hyperfine is missing: apt-get install -y hyperfine" >&2
  exit 1
fi
cargo build --quiet --release -p milink-examples --example tailspin
dir=target/tmp/lab
mkdir -p "$dir"
hyperfine --warmup 3 --runs 30 --export-json target/tmp/lab-binary.json \
  "target/release/examples/tailspin --journal-dir $dir"
hyperfine --warmup 2 --runs 15 --export-json target/tmp/lab-cargo-run.json \
  "cargo run --quiet --release --example tailspin -- --journal-dir $dir"
python3 benches/summarize.py --hyperfine target/tmp/lab-binary.json target/tmp/lab-cargo-run.json
rm -rf "$dir"
