"""Linearity of the columnar path (or of the packed, generic path): time per layer from 10^3 to 10^8
layers, and from 5 to 500 layers per architecture (issue 4: constant within 20 %).

    python benchmarks/linearity.py [--path columnar|packed] [--threads 1] [--max-exp 8] [--repeats 5]
    python benchmarks/linearity.py --path packed --against /path/to/other/checkout [--repeats 21]

Skeleton: blocks of Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU on a 16 x 8 x 8 input (no
strides, so any depth keeps its size), cut to the number of rows wanted; per architecture the
conv widths vary (column "out", 8..64). Part 1 keeps 20 rows per architecture and grows the batch;
part 2 keeps 10^6 layers and grows the depth. Batches above CHUNK_LAYERS are counted as a stream
of Columnar chunks of CHUNK_LAYERS layers (cc.count over an iterator: memory stays bounded).
--path packed counts the same architectures as a cc.Packed (`Columnar.to_packed()`: 100 bytes per
row, so its stream chunks hold PACKED_CHUNK_LAYERS layers) through the core's chain fast path.
Each row of the tables is the median of `repeats` wall-clock runs; medians of one run only
compare with each other (the machine drifts).
--against runs part 2 only, side by side with another checkout's cnncore (its extensions built in
place), imported in this process under another name: the two `cc.count` calls alternate, so the
machine's drift hits both alike (they share one heap, so page faults can differ from separate
processes: benchmarks/count_ab.py counts those). Both must give identical results first.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cnncore as cc  # noqa: E402

CHUNK_LAYERS = 10_000_000
PACKED_CHUNK_LAYERS = 1_000_000  # 100 MB of rows


def skeleton(depth: int, n: int, seed: int = 0) -> cc.Columnar:
    layers = []
    while len(layers) < depth:  # lazy in-sizes: every width is consistent
        layers += [cc.LazyConv2d(16, 3, padding=1), cc.LazyBatchNorm2d(), cc.ReLU()]
    layers = layers[:depth]
    template = cc.pack([cc.Sequential(*layers)], (16, 8, 8))
    out = np.zeros((n, depth), np.int32)
    conv = [k for k in range(depth) if k % 3 == 0]
    out[:, conv] = np.random.default_rng(seed).integers(8, 65, (n, len(conv)))
    return cc.Columnar(template, {"out": out})


def time_count(col, n_chunks: int, threads: int, repeats: int):
    """Median (wall seconds, CPU seconds of the process) to count n_chunks copies of col (a
    cc.Columnar or cc.Packed; one call when n_chunks == 1). On a shared machine the CPU time is the
    steadier of the two. One untimed call first (as pytest-benchmark's warm-up rounds): a new
    batch size's first call takes the page faults of its fresh outputs and scratch (at 10^7 layers
    on the columnar path: 32 and 13 ms for the first two calls, then 12.0-12.2 ms), which with 5
    repeats can move the median."""
    wall, cpu = [], []
    for i in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        if n_chunks == 1:
            cc.count(col, n_threads=threads)
        else:
            for _ in cc.count((col for _ in range(n_chunks)), n_threads=threads):
                pass
        if i:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def load_tree(tree: str):
    """The cnncore package of another checkout, imported as `cnncore_against`."""
    init = os.path.join(os.path.abspath(tree), "cnncore", "__init__.py")
    spec = importlib.util.spec_from_file_location("cnncore_against", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cnncore_against"] = mod
    spec.loader.exec_module(mod)
    return mod


def side_by_side(other, threads: int, repeats: int):
    """Part 2 for this tree's cc.count and other's, alternated call by call."""
    print(f"# packed path, {threads} thread(s), this tree against {os.path.dirname(os.path.dirname(other.__file__))}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("\n| rows per architecture | architectures | other: ns per layer | this: ns per layer | other / this |"
          "\n|---|---|---|---|---|")
    ratio = {}
    for depth in (5, 10, 20, 50, 100, 200, 500):
        arrays = skeleton(depth, 10**6 // depth).to_packed().arrays()
        mine, theirs = cc.Packed.from_arrays(**arrays), other.Packed.from_arrays(**arrays)
        a, b = cc.count(mine, n_threads=threads), other.count(theirs, n_threads=threads)
        for k in ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_bytes",
                  "output_shape", "output_ndim", "error", "error_layer"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), f"{k} differs at depth {depth}"
        del a, b
        t = {"this": [], "other": []}
        for _ in range(repeats):
            for name, count, packed in (("other", other.count, theirs), ("this", cc.count, mine)):
                t0 = time.perf_counter()
                count(packed, n_threads=threads)
                t[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e9 / len(arrays["layers"]) for k, v in t.items()}  # ns per layer
        ratio[depth] = med
        print(f"| {depth} | {10**6 // depth:,} | {med['other']:.2f} | {med['this']:.2f} | {med['other'] / med['this']:.2f}x |",
              flush=True)
    for name in ("other", "this"):
        print(f"{name}: 5 rows / 500 rows, ns per layer: {ratio[5][name] / ratio[500][name]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", choices=("columnar", "packed"), default="columnar")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-exp", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--against", default=None, help="another checkout: part 2 side by side (--path packed)")
    args = ap.parse_args()
    if args.against:
        side_by_side(load_tree(args.against), args.threads, args.repeats)
        return
    packed = args.path == "packed"
    chunk_layers = PACKED_CHUNK_LAYERS if packed else CHUNK_LAYERS

    def batch(depth, n):
        col = skeleton(depth, n)
        return col.to_packed() if packed else col

    print(f"# {args.path} path, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}")
    print("\n| layers | architectures (x 20 rows) | median wall | ns per layer (wall) | ns per layer (CPU) |\n|---|---|---|---|---|")
    for e in range(3, args.max_exp + 1):
        total = 10**e
        per_chunk = min(total, chunk_layers)
        col = batch(20, per_chunk // 20)
        t, c = time_count(col, total // per_chunk, args.threads, args.repeats)
        print(f"| 10^{e} | {total // 20:,} | {t * 1e3:.2f} ms | {t / total * 1e9:.2f} | {c / total * 1e9:.2f} |",
              flush=True)
    print("\n| rows per architecture | architectures | median wall (10^6 layers) | ns per layer (wall) | ns per layer (CPU) |"
          "\n|---|---|---|---|---|")
    for depth in (5, 10, 20, 50, 100, 200, 500):
        col = batch(depth, 10**6 // depth)
        total = len(col) * depth
        t, c = time_count(col, 1, args.threads, args.repeats)
        print(f"| {depth} | {len(col):,} | {t * 1e3:.2f} ms | {t / total * 1e9:.2f} | {c / total * 1e9:.2f} |", flush=True)


if __name__ == "__main__":
    main()
