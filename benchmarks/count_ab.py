"""`cc.count` of one source tree at 1 and 2 threads, interleaved, with the page faults of each call:
the whole public call (Python part included), for comparing two trees in alternating processes
(the heap, and so the page faults, are per process: two trees in one process would share them).

    python benchmarks/count_ab.py --tree /path/to/other/checkout [--depth 5] [--archs 200000]
    python benchmarks/count_ab.py --tree . --depth 5 --archs 200000      # and again, alternately

--tree is a checkout with its extensions built in place (`python setup.py build_ext --inplace`).
The batch is benchmarks/linearity.py's Conv2d/BatchNorm2d/ReLU chains cut to --depth rows, or with
--depth 0 the `_data.make_batch` mix (21 rows). Results are dropped after each call (as
linearity.py does); --keep keeps them all alive instead, so every call gets fresh memory.
"""
import argparse
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", required=True)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--archs", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", action="store_true")
    opt = ap.parse_args()
    tree = os.path.abspath(opt.tree)
    sys.path[:0] = [tree, HERE]
    import cnncore as cc
    assert os.path.abspath(cc.__file__).startswith(tree), f"cnncore comes from {cc.__file__}, not {tree}"
    import _data
    import linearity
    if opt.depth:
        packed = linearity.skeleton(opt.depth, opt.archs).to_packed()
    else:
        packed = cc.Packed.from_arrays(**_data.make_batch(opt.archs, seed=0))
    n_layers = len(packed.arrays()["layers"])
    times = {nt: [] for nt in opt.threads}
    faults = {nt: [] for nt in opt.threads}
    kept = []
    for nt in opt.threads:  # once untimed
        cc.count(packed, n_threads=nt)
    for _ in range(opt.rounds):
        for nt in opt.threads:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            res = cc.count(packed, n_threads=nt)
            times[nt].append(time.perf_counter() - t0)
            faults[nt].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            if opt.keep:
                kept.append(res)
            del res
    med = {nt: statistics.median(t) for nt, t in times.items()}
    cells = [f"{nt} thread(s) {med[nt] * 1e3:.3f} ms ({n_layers / med[nt] / 1e6:.0f} M layers/s, "
             f"{statistics.median(faults[nt]):.0f} page faults)" for nt in opt.threads]
    ratio = f"; {med[opt.threads[0]] / med[opt.threads[-1]]:.2f}x" if len(opt.threads) > 1 else ""
    print(f"{tree} {opt.depth or 'mix'} rows x {opt.archs}: " + ", ".join(cells) + ratio
          + f" (load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
