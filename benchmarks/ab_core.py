"""Two builds of the core side by side: the compiled loop of each, alternated round by round on the
same batch, so that the machine's drift (+-20 % on the shared 2-core machine) hits both alike.

    python benchmarks/ab_core.py OLD.so [NEW.so] [--archs 100000] [--rounds 21] [--threads 1 2]
                                 [--depth ROWS]
    python benchmarks/ab_core.py OLD.so [NEW.so] --zoo mobilenet_v2 [--archs 2000]
    python benchmarks/ab_core.py OLD.so [NEW.so] --graphs 1000 [--rounds 21] [--threads 1]

--graphs N_ZOO times the general path on test_bench_core.graph_batch(N_ZOO, 2 * N_ZOO) (1000: the
benchmark's graph batch, 0.57 M layers) instead of the stacks of _data.make_batch. --zoo NAME times
--archs packed copies of cc.zoo.NAME() (the peers benchmark's packed batch: one graph skeleton).

OLD.so / NEW.so are copies of a compiled cnncore/_core*.so (NEW defaults to this tree's). Before
timing, both must give identical outputs on the batch. Prints the median and minimum time of
`_core.count_packed` (outputs preallocated, as in test_bench_core.py::test_core_raw) per build and
thread count, and the ratio of the medians. The batch is `_data.make_batch` (21 rows per
architecture, the benchmark mix), or with --depth the Conv2d/BatchNorm2d/ReLU chains of
benchmarks/linearity.py cut to ROWS rows (per-architecture work against per-row work). For the
stable measure, count instructions instead:

    valgrind --tool=callgrind --toggle-collect='*count_packed._omp_fn*' \\
        python benchmarks/ab_core.py NEW.so --archs 20000 --rounds 0
    (one call of NEW.so's loop, as --rounds 0 loads only the build named: instructions per
    layer = the "Collected" count / (20000 x 21); with --depth 3 and --depth 6,
    the difference of the two per-architecture counts is the cost of 3 rows, the rest is the
    per-architecture work)
    (or --zoo mobilenet_v2 --archs 2000 --threads 1: instructions per row = Collected / (2000 x 153);
    `callgrind_annotate --auto=yes` then gives them per line of the generated src/_core.c)

Per machine instruction (which instructions an architecture costs beyond its rows): add
`--dump-instr=yes --callgrind-out-file=OUT` to the valgrind command above, then

    python benchmarks/ab_core.py --asm OUT NEW.so [--per 20000] [--min 0.5] [--function NAME]

prints the disassembly of `count_packed`'s parallel body with each instruction's count divided by
--per (the number of architectures: 1.00 = once per architecture). The graph fast path is a
function of its own: `--function _graph_fast --per 306000` (2000 MobileNetV2 x 153 rows: 1.00 =
once per row).
"""
import argparse
import glob
import importlib.util
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import _data  # noqa: E402
import linearity  # noqa: E402

OUTPUTS = ("totals", "output_shape", "output_ndim", "error", "error_layer")


def load(path, tag):
    """A compiled _core module from any file (its own package name, so two can be loaded)."""
    spec = importlib.util.spec_from_file_location(f"ab_{tag}._core", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def call_args(arrays, n_threads):
    """count_packed's arguments with outputs and scratch allocated once, and the outputs."""
    n = len(arrays["arch_offsets"]) - 1
    rows = int((np.diff(arrays["arch_offsets"]) + np.diff(arrays["input_offsets"])).max())
    out = dict(totals=np.zeros((6, n), np.int64), output_shape=np.zeros((n, 5), np.int64),
               output_ndim=np.zeros(n, np.int32), error=np.zeros(n, np.int32),
               error_layer=np.zeros(n, np.int32))
    scratch = (np.empty((n_threads, rows, 8), np.int64), np.empty((n_threads, rows), np.int64),
               np.empty((n_threads, 4 * rows + 3), np.int64))
    a = arrays
    args = (a["layers"], a["extra_src"], a["arch_offsets"], a["input_offsets"], a["input_shape"],
            a["input_ndim"], a["batch_size"], *[out[k] for k in OUTPUTS], *scratch)
    return args, out


def annotate(out_file, so, per, least, function="count_packed._omp_fn"):
    """callgrind's per-instruction counts (a --dump-instr=yes output) beside objdump's disassembly
    of `function` in the build `so`, each count divided by `per`; lines counted below `least` left out."""
    import collections
    import re
    import subprocess
    counts, addr, after_call = collections.Counter(), 0, False
    for line in open(out_file):
        if line.startswith("calls="):  # the next cost line is the callee's inclusive cost
            after_call = True
            continue
        if not line or line[0] not in "+-*0123456789":
            continue
        pos = line.split()
        a = pos[0]  # absolute (0x..), relative (+n / -n) or the same (*) instruction address
        addr = (int(a, 16) if a.startswith("0x") else addr if a == "*" else
                addr + int(a[1:], 0) if a[0] == "+" else addr - int(a[1:], 0) if a[0] == "-" else int(a))
        if after_call:
            after_call = False
        elif len(pos) >= 3:
            counts[addr] += int(pos[2])
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", so], capture_output=True, text=True).stdout
    code, inside = [], False
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:", line)
        if head:
            inside = function in head.group(1)
        elif inside and (m := re.match(r"\s+([0-9a-f]+):\s+(.*)", line)):
            code.append((int(m.group(1), 16), m.group(2)))
    # callgrind counts at load addresses: the shift that puts the most counts on the function
    shifts = collections.Counter((a - code[0][0]) & ~0xFFF for a in counts)
    base = max((s for s, _ in shifts.most_common(20)), key=lambda s: sum(counts[s + a] for a, _ in code))
    print(f"{function}: {sum(counts[base + a] for a, _ in code) / per:.1f} instructions per {per:g}")
    for a, text in code:
        if counts[base + a] / per >= least:
            print(f"{counts[base + a] / per:8.2f}  {a:x}: {text}")


def main():
    if "--asm" in sys.argv:
        p = argparse.ArgumentParser(description="callgrind's counts per instruction of count_packed")
        p.add_argument("--asm", required=True, help="a callgrind output made with --dump-instr=yes")
        p.add_argument("build")
        p.add_argument("--per", type=float, default=20000, help="divide the counts by (architectures)")
        p.add_argument("--min", type=float, default=0.5)
        p.add_argument("--function", default="count_packed._omp_fn", help="a part of the symbol's name")
        opt = p.parse_args()
        annotate(opt.asm, opt.build, opt.per, opt.min, opt.function)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("builds", nargs="+", help="OLD.so [NEW.so]")
    p.add_argument("--archs", type=int, default=_data.N_ARCH_DEFAULT)
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--graphs", type=int, default=0, help="zoo models of the graph batch (0: stacks)")
    p.add_argument("--depth", type=int, default=None, help="linearity.py's chains of this many rows")
    p.add_argument("--zoo", default=None, help="--archs copies of this cc.zoo model (e.g. mobilenet_v2)")
    opt = p.parse_args()
    paths = list(opt.builds)
    if len(paths) == 1 and opt.rounds > 0:  # (--rounds 0, for callgrind: only the build named)
        paths += glob.glob(os.path.join(os.path.dirname(HERE), "cnncore", "_core*.so"))[:1]
    mods = {f"build {i} ({os.path.basename(path)})": load(path, str(i)) for i, path in enumerate(paths)}
    if opt.zoo:
        import cnncore as cc
        arrays = cc.pack([getattr(cc.zoo, opt.zoo)()] * opt.archs).arrays()
    elif opt.graphs:
        from test_bench_core import graph_batch
        arrays = graph_batch(opt.graphs, 2 * opt.graphs).arrays()
    elif opt.depth is not None:
        arrays = linearity.skeleton(opt.depth, opt.archs).to_packed().arrays()
    else:
        arrays = _data.make_batch(opt.archs, seed=0)
    n_layers = len(arrays["layers"])
    medians = {}
    for nt in opt.threads:
        runs = {name: call_args(arrays, nt) for name in mods}
        for name, mod in mods.items():  # once untimed, and the same answers from every build
            mod.count_packed(*runs[name][0], n_threads=nt)
        first = next(iter(runs.values()))[1]
        for name, (_, out) in runs.items():
            for k in OUTPUTS:
                assert np.array_equal(out[k], first[k]), f"{name} gives other {k}"
        times = {name: [] for name in mods}
        for _ in range(opt.rounds):
            for name, mod in mods.items():
                t0 = time.perf_counter()
                mod.count_packed(*runs[name][0], n_threads=nt)
                times[name].append(time.perf_counter() - t0)
        for name, t in times.items():
            if t:
                medians[name, nt] = med = float(np.median(t))
                print(f"{name}, {nt} thread(s): median {med * 1e3:.2f} ms ({n_layers / med / 1e6:.1f} M "
                      f"layers/s), min {min(t) * 1e3:.2f} ms")
    names = list(mods)
    for nt in opt.threads:
        if len(names) == 2 and (names[0], nt) in medians:
            print(f"{nt} thread(s): build 1 is {medians[names[0], nt] / medians[names[1], nt]:.2f}x "
                  f"as fast as build 0 (medians)")


if __name__ == "__main__":
    main()
