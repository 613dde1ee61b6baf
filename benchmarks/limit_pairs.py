"""The core against the bare-C limit in alternating pairs, for a ratio that the shared machine's
drift does not decide: run_limit.sh times the core, then minutes later the limit, and the load of
other jobs can change in between (ratios of 0.44 and 0.85 came out of two such runs of one build).
Here each pair times `cc.count` (medians of a few rounds) right before one run of the limit, and the
ratio is taken per pair; the table gives every pair and their median. At 1 thread it also gives the
ratio of CPU times (the thread's own: time.thread_time for cc.count, whose one-thread OpenMP region
runs in the calling thread, and the limit's cpu_med_s), which time taken by other jobs' processes
does not enter.

    python benchmarks/limit_pairs.py [--pairs 5] [--limit-archs 500000] [--rounds 7]

Needs gcc; builds /work/shared/tools/limit/bench.c (LIMIT_SRC) into a temporary folder.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import _data  # noqa: E402

import cnncore as cc  # noqa: E402


def core_rate(packed, n_threads, rounds, clock=time.perf_counter):
    t = []
    for _ in range(rounds):
        t0 = clock()
        cc.count(packed, n_threads=n_threads)
        t.append(clock() - t0)
    return packed.n_layers / float(np.median(t))


def limit_rates(binary, n_archs):
    """switch_i32's layers/s at 1 and 2 threads (its median of 3) from one run of the limit, and
    at 1 thread per CPU second (key "cpu")."""
    out = subprocess.run([binary, str(n_archs), "1", "3"], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(binary)).stdout
    rates = {}
    for m in re.finditer(r"RESULT switch_i32\s+threads=(\d) med_s=\S+ .*? layers_per_s=(\S+) .*?"
                         r"cpu_layers_per_s=(\S+)", out):
        rates[int(m[1])] = float(m[2])
        if m[1] == "1":
            rates["cpu"] = float(m[3])
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--limit-archs", type=int, default=500_000)
    p.add_argument("--rounds", type=int, default=7)
    opt = p.parse_args()
    src = os.environ.get("LIMIT_SRC", "/work/shared/tools/limit/bench.c")
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "limit-bench")
        subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", src, "-o", binary], check=True,
                       capture_output=True)
        packed = cc.Packed.from_arrays(**_data.default_batch())
        cc.count(packed, n_threads=1)  # warm
        print(f"load before: {open('/proc/loadavg').read().strip()}")
        print("| pair | core 1 thread | limit 1 thread | ratio | per CPU second: core | limit | ratio "
              "| core 2 threads | limit 2 threads | ratio | 2 threads / 1 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        r1, rc, r2, sc = [], [], [], []
        for i in range(opt.pairs):
            c1, c2 = core_rate(packed, 1, opt.rounds), core_rate(packed, 2, opt.rounds)
            cc1 = core_rate(packed, 1, opt.rounds, time.thread_time)
            lim = limit_rates(binary, opt.limit_archs)
            r1.append(c1 / lim[1])
            rc.append(cc1 / lim["cpu"])
            r2.append(c2 / lim[2])
            sc.append(c2 / c1)
            print(f"| {i + 1} | {c1 / 1e6:.0f} M | {lim[1] / 1e6:.0f} M | {r1[-1]:.2f} | {cc1 / 1e6:.0f} M | "
                  f"{lim['cpu'] / 1e6:.0f} M | {rc[-1]:.2f} | {c2 / 1e6:.0f} M | {lim[2] / 1e6:.0f} M | "
                  f"{r2[-1]:.2f} | {sc[-1]:.2f}x |")
        print(f"| median | | | {np.median(r1):.2f} | | | {np.median(rc):.2f} | | | {np.median(r2):.2f} "
              f"| {np.median(sc):.2f}x |")
        print(f"load after: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
