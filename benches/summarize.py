#!/usr/bin/env python3
"""Prints the latest criterion results as a Markdown table (standard library only).

Usage: python3 benches/summarize.py [TARGET_DIR]   (default: ./target)
       python3 benches/summarize.py --hyperfine RESULT.json...

For every benchmark under TARGET_DIR/criterion/*/*/new/ it reads estimates.json and
sample.json and prints: the median time per iteration; the median absolute deviation (MAD,
as a share of the median); the 10th to 90th percentile of the per-iteration times of the
samples; the number of samples; and, when the benchmark declares a throughput, elements (or MB) per second at the
median.
"""

import json
import sys
from pathlib import Path


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(per_s: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.3g} {unit}/s"
    return f"{per_s:.3g} /s"


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def hyperfine(paths) -> int:
    """The same columns for hyperfine's --export-json results (wall time of each run)."""
    print("| command | median | MAD | p10 – p90 | runs | user + sys (mean) |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        for r in json.loads(Path(path).read_text())["results"]:
            times = [t * 1e9 for t in r["times"]]
            median = percentile(times, 0.5)
            mad = percentile([abs(t - median) for t in times], 0.5)
            cpu = (r["user"] + r["system"]) * 1e9
            print(
                f"| `{r['command']}` | {fmt_time(median)} | ± {fmt_time(mad)} "
                f"({100 * mad / median:.1f} %) | {fmt_time(percentile(times, 0.1))} – "
                f"{fmt_time(percentile(times, 0.9))} | {len(times)} | {fmt_time(cpu)} |"
            )
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--hyperfine":
        return hyperfine(sys.argv[2:])
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "target")
    rows = []
    for new in sorted(target.glob("criterion/*/*/new")):
        bench = json.loads((new / "benchmark.json").read_text())
        est = json.loads((new / "estimates.json").read_text())
        sample = json.loads((new / "sample.json").read_text())
        per_iter = [t / n for t, n in zip(sample["times"], sample["iters"])]
        median = est["median"]["point_estimate"]
        mad = est["median_abs_dev"]["point_estimate"]
        throughput = bench.get("throughput") or {}
        elements = throughput.get("Elements")
        nbytes = throughput.get("Bytes")
        if elements:
            rate = fmt_rate(elements * 1e9 / median)
        elif nbytes:
            rate = f"{nbytes * 1e9 / median / 1e6:.3g} MB/s"
        else:
            rate = ""
        rows.append(
            (
                bench["full_id"],
                fmt_time(median),
                f"± {fmt_time(mad)} ({100 * mad / median:.1f} %)",
                f"{fmt_time(percentile(per_iter, 0.1))} – {fmt_time(percentile(per_iter, 0.9))}",
                str(len(per_iter)),
                rate,
            )
        )
    if not rows:
        print(f"no criterion results under {target}/criterion", file=sys.stderr)
        return 1
    print("| benchmark | median | MAD | p10 – p90 | samples | throughput |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
