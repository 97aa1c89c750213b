#!/usr/bin/env bash
# Runs every test, Rust and Python, on a fresh machine: creates .venv if missing, installs
# maturin, pytest, mypy, pandas, tqdm and the notebook runner into it, builds and installs milink-py, then runs cargo test, the
# type-stub checks (mypy --strict on a typed usage file, stubtest against the built module), builds
# the abi3 wheel and imports it in a fresh virtual environment, and runs pytest.
# Exits non-zero if anything fails, including pytest collecting no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv="${MILINK_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtual environment $venv"
  python3 -m venv "$venv"
fi
echo "==> installing maturin, pytest, mypy, pandas, tqdm, and what runs the notebook (nbclient, ipykernel, matplotlib)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.10,<2" "pytest>=7" "mypy>=1.18,<3" "pandas>=2" "tqdm>=4.60" "nbclient>=0.10" "nbformat>=5.9" "ipykernel>=6.29" "matplotlib>=3.8"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> cargo test --workspace"
cargo test --workspace

echo "==> deterministic simulation: ${MILINK_DST_SEEDS:-1000} seeded worlds with faults, every promise checked (optimised build)"
cargo test --release -p milink-tests --test dst -- --nocapture

echo "==> mutation tests (the end-to-end scenarios and the deterministic simulation with a guard of the catch-up gate switched off must break a promise)"
cargo test --release -p milink-tests --features mutations --test mutations -- --nocapture

echo "==> building milink-py into $venv"
(cd milink-py && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet)

echo "==> type stubs"
"$venv/bin/python" -m mypy --strict --cache-dir "$venv/.mypy_cache" milink-py/tests/typecheck/usage.py milink-py/python/milink/progress.py
(cd "$venv" && "$venv/bin/python" -m mypy.stubtest milink._milink --ignore-disjoint-bases)

echo "==> the abi3 wheel, installed into a fresh virtual environment and imported there"
wheels=$(mktemp -d)
fresh=$(mktemp -d)
trap 'rm -rf "$wheels" "$fresh"' EXIT
(cd milink-py && "$venv/bin/maturin" build --quiet --out "$wheels" --interpreter "$venv/bin/python")
python3 -m venv "$fresh/venv"
"$fresh/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$wheels"/milink-*.whl
(cd "$fresh" && "$fresh/venv/bin/python" -c '
import milink
report = milink.assess(**milink.tailspin_facts())
assert report.verdicts == {"ToyStore": "Ready", "Customer360": "NotReady"}, report.verdicts
print("wheel", milink.__version__, "imports and assesses:", report.verdicts)
')

echo "==> pytest"
set +e
"$venv/bin/python" -m pytest milink-py/tests -q
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
