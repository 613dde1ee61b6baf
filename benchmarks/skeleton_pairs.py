"""Issue 4's one-skeleton targets measured in alternating rounds: the numpy count written for the
skeleton, `cc.count` of the same batch as a `cc.Columnar` (1 thread) and as a `cc.Packed` (the
generic path, 1 and 2 threads), each round timing all four one after the other.

    python benchmarks/skeleton_pairs.py [--rounds 41] [--n 100000]

pytest-benchmark (benchmarks/test_bench_columnar.py) times each entry in its own stretch of
minutes; on a shared host whose speed drifts by 10-40 % from minute to minute, a ratio of two such
medians moves with the drift. Here every round holds one call of each, so the median of the
per-round ratios sees the same minute for both sides. Same batch as test_bench_columnar.py
(`_data.make_columnar`: 100 k architectures x 21 rows); wall time, medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _data  # noqa: E402

import cnncore as cc  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--n", type=int, default=_data.N_ARCH_DEFAULT)
    args = ap.parse_args(argv)
    col = _data.make_columnar(args.n, 0)
    packed = col.to_packed()
    layers = len(col) * col.n_layers
    entries = {
        "numpy skeleton count": lambda: _data.numpy_skeleton_count(col),
        "columnar, 1 thread": lambda: cc.count(col, n_threads=1),
        "generic, 1 thread": lambda: cc.count(packed, n_threads=1),
        "generic, 2 threads": lambda: cc.count(packed, n_threads=2),
    }
    base = _data.numpy_skeleton_count(col)  # the baseline must give the core's numbers
    assert (base["flops"] == cc.count(col).flops).all() and (base["flops"] == cc.count(packed).flops).all()
    times = {k: [] for k in entries}
    for f in entries.values():
        f()  # warm-up: first-call page faults
    for _ in range(args.rounds):
        for k, f in entries.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    npy = times["numpy skeleton count"]
    print(f"# {len(col):,} architectures x {col.n_layers} rows; {args.rounds} rounds; load {os.getloadavg()[0]:.2f}")
    print("\n| entry | median | layers/s | median per-round ratio to numpy | rounds >= the target |")
    print("|---|---|---|---|---|")
    targets = {"columnar, 1 thread": 4.0, "generic, 1 thread": 1.5, "generic, 2 threads": 1.5}
    for k, ts in times.items():
        med = statistics.median(ts)
        row = f"| {k} | {med * 1e3:.2f} ms | {layers / med / 1e6:.0f} M |"
        if k in targets:
            ratios = [n / t for n, t in zip(npy, ts)]
            hit = sum(r >= targets[k] for r in ratios)
            row += f" {statistics.median(ratios):.2f}x | {hit} of {len(ratios)} (>= {targets[k]}x) |"
        else:
            row += " | |"
        print(row)


if __name__ == "__main__":
    main()
