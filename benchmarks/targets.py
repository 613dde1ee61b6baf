"""Issue 4's targets, each measured from ONE run: a table of what each asks, what was measured and
whether it is met.

    python benchmarks/targets.py OUT_DIR

OUT_DIR is what `benchmarks/run_limit.sh OUT_DIR` writes: bench.json (the whole pytest-benchmark
suite), limit.txt (the bare C loop) and linearity-*.txt (benchmarks/linearity.py's tables, when
run). Every ratio divides two medians of that run; a target whose benchmark is absent is skipped.
"""
from __future__ import annotations

import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers_table import LABEL, per_arch_times, smallest_ratios  # noqa: E402


def load_bench(path):
    """name -> (median seconds, extra_info) of every benchmark in a pytest-benchmark JSON file."""
    return {b["name"]: (b["stats"]["median"], b["extra_info"]) for b in json.load(open(path))["benchmarks"]}


def load_limit(path):
    """(variant, threads) -> layers per second of the bare C loop's RESULT lines."""
    out = {}
    for line in open(path):
        m = re.match(r"RESULT (\S+)\s+threads=(\d+) .*?layers_per_s=(\S+)", line)
        if m:
            out[(m[1], int(m[2]))] = float(m[3])
    return out


def load_linearity(path):
    """(title, {"size": [(layers, ns per layer)], "depth": [(rows, ns per layer)]}) of one
    linearity.py output (wall-clock ns per layer)."""
    title, parts = "", {"size": [], "depth": []}
    for line in open(path):
        if line.startswith("# "):
            title = line[2:].split(", load")[0].strip()
        m = re.match(r"\| 10\^(\d+) \| [^|]+\| [^|]+\| ([\d.]+) \|", line)
        if m:
            parts["size"].append((10 ** int(m[1]), float(m[2])))
            continue
        m = re.match(r"\| (\d+) \| [\d,]+ \| [^|]+\| ([\d.]+) \|", line)
        if m:
            parts["depth"].append((int(m[1]), float(m[2])))
    return title, parts


def rate(bench, name):
    """layers per second of a benchmark that recorded its layer count."""
    med, info = bench[name]
    return info["layers"] / med


def spread(points):
    """max / min of the ns-per-layer values (1.0 = perfectly constant)."""
    v = [ns for _, ns in points]
    return max(v) / min(v)


def rows(out_dir):
    bench = load_bench(os.path.join(out_dir, "bench.json"))
    lim_path = os.path.join(out_dir, "limit.txt")
    lim = load_limit(lim_path) if os.path.exists(lim_path) else {}
    have = bench.__contains__
    out = []  # (target, measured, met)

    def add(target, measured, met):
        out.append((target, measured, "met" if met else "MISSED"))

    if have("test_core[1]"):
        c1 = rate(bench, "test_core[1]")
        if ("switch_i32", 1) in lim:
            r = c1 / lim[("switch_i32", 1)]
            add("core, 1 thread: >= 60 % of the bare C loop (stacks)",
                f"{r:.2f} ({c1 / 1e6:.0f} M vs {lim[('switch_i32', 1)] / 1e6:.0f} M layers/s)", r >= 0.6)
        if have("test_core[2]"):
            c2 = rate(bench, "test_core[2]")
            extra = (f"; bare loop {lim[('switch_i32', 2)] / lim[('switch_i32', 1)]:.2f}x"
                     if ("switch_i32", 2) in lim and ("switch_i32", 1) in lim else "")
            if have("test_core_raw[1]") and have("test_core_raw[2]"):
                extra += f"; the compiled loop alone {rate(bench, 'test_core_raw[2]') / rate(bench, 'test_core_raw[1]'):.2f}x"
            add("core, 2 threads: >= 1.8x one thread (`cc.count`)", f"{c2 / c1:.2f}x ({c2 / 1e6:.0f} M layers/s{extra})",
                c2 / c1 >= 1.8)
            if ("switch_i32", 1) in lim:
                # the issue's own sentence: ">= 150 M layers/s on one core [60 % of the loop's 250 M],
                # >= 1.8x that on two", i.e. 270 M there; scaled to this run's loop
                need = 1.8 * 0.6 * lim[("switch_i32", 1)]
                add("core, 2 threads: >= 1.8x the 1-thread target (1.8 x 60 % of the bare loop's 1 thread)",
                    f"{c2 / 1e6:.0f} M vs {need / 1e6:.0f} M layers/s ({c2 / need:.2f})", c2 >= need)
        if have("test_reference"):
            r = c1 / rate(bench, "test_reference")
            add("core >= 100x the pure-Python reference", f"{r:,.0f}x", r >= 100)
        if have("test_numpy_baseline"):
            r = c1 / rate(bench, "test_numpy_baseline")
            add("core >= 5x the numpy count of heterogeneous stacks (1 thread)", f"{r:.1f}x", r >= 5)
    if have("test_core_graphs"):
        g = rate(bench, "test_core_graphs")
        add("graphs (issue 3): >= 100 M layers/s, 1 thread", f"{g / 1e6:.0f} M layers/s", g >= 1e8)
    if have("test_columnar[1]"):
        col = rate(bench, "test_columnar[1]")
        add("columnar, 1 thread: >= 400 M layers/s", f"{col / 1e6:.0f} M layers/s", col >= 4e8)
        if have("test_numpy_skeleton"):
            npy = rate(bench, "test_numpy_skeleton")
            add("columnar >= 4x the numpy count written for the skeleton (1 thread)", f"{col / npy:.2f}x",
                col / npy >= 4)
            for n in (1, 2):  # (2: cc.count's default, all cores, on this machine)
                if have(f"test_generic_same_skeleton[{n}]"):
                    gen = rate(bench, f"test_generic_same_skeleton[{n}]")
                    add(f"generic path >= 1.5x the numpy skeleton count ({n} thread{'s' if n > 1 else ''})",
                        f"{gen / npy:.2f}x ({gen / 1e6:.0f} M vs {npy / 1e6:.0f} M layers/s)", gen / npy >= 1.5)
    with open(os.path.join(out_dir, "bench.json")) as f:
        smallest = smallest_ratios(per_arch_times(json.load(f)["benchmarks"])[0])
    for kind, need in (("packed", 1e5), ("columnar", 1e5), ("one model", 1e3)):
        if (kind, "build") in smallest:
            r, peer, arch = smallest[(kind, "build")]
            add(f"{kind} >= {need:,.0f}x each torch peer (build + count), smallest ratio",
                f"{r:,.0f}x ({peer}, {LABEL[arch]})", r >= need)
    floor_path = os.path.join(out_dir, "one_model_floor.txt")
    if os.path.exists(floor_path):  # not a target: what bounds the one-model one from below
        text = open(floor_path).read()
        budget = re.search(r"10\^3x needs <= ([\d.]+) us", text)
        floor = re.search(r"\| floor: minimal classes \| ([\d.]+) us", text)
        if budget and floor:
            out.append(("one model: a MobileNetV2 builder of bare Python classes (no checks, no count) "
                        "against the 10^3x budget (ptflops / 1000, one_model_floor.py)",
                        f"{floor[1]} us vs {budget[1]} us ({float(floor[1]) / float(budget[1]):.2f} of it)", "floor"))
    for path in sorted(glob.glob(os.path.join(out_dir, "linearity-*.txt"))):
        title, parts = load_linearity(path)
        if parts["size"]:
            lo, hi = parts["size"][0][0], parts["size"][-1][0]
            s = spread(parts["size"])
            add(f"{title}: time per layer within 20 % from 10^{len(str(lo)) - 1} to 10^{len(str(hi)) - 1} layers",
                f"max/min {s:.2f}", s <= 1.2)
        if parts["depth"]:
            s = spread(parts["depth"])
            add(f"{title}: time per layer within 20 % from {parts['depth'][0][0]} to {parts['depth'][-1][0]} "
                "rows per architecture", f"max/min {s:.2f}", s <= 1.2)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit(__doc__)
    print("| target (issue 4) | measured (one run, medians) | status |")
    print("|---|---|---|")
    for target, measured, status in rows(argv[0]):
        print(f"| {target} | {measured} | {status} |")


if __name__ == "__main__":
    main()
