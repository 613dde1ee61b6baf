"""Two builds of the columnar kernel side by side, alternating round by round in one process, with
the numpy skeleton count (benchmarks/_data.py) in the same rounds.

    python benchmarks/columnar_ab.py OLD.so NEW.so [--n 100000] [--rounds 41] [--count [OLD/columnar.py]]

OLD.so / NEW.so: compiled kernel modules (e.g. a copy of main's cnncore/_columnar_avx512*.so kept
before a change, and the worktree's). Each round times one count_columnar call of each build
(process_time, outputs preallocated, 1 thread) and one numpy count; it prints the medians, the
layers per second and the median of the per-round ratios. The scratch starts --offset bytes past a
64-byte boundary for both (a kernel that aligns it itself ignores that): a kernel that does not is
about 1.2x slower at offsets 8 or 16 than at 0 or 32 here, and np.empty gives any of them. Both builds must give the generic core's
FLOPs (checked before timing). The outputs start on 64-byte boundaries, as cc.count allocates them.
--count times the columnar count end to end instead (cnncore.columnar.count_columnar: allocating the
outputs, the kernel, the generic core's share; cc.count adds only the BatchResult wrapper): NEW is
this checkout's cnncore/columnar.py with NEW.so, OLD the given columnar.py (default: main's,
/work/main/cnncore/columnar.py) with OLD.so, each on a Columnar its own constructor built (so each
stores the columns its own way).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's cnncore
import _data  # noqa: E402

import cnncore as cc  # noqa: E402
from cnncore.columnar import COLUMN_FIELDS, _empty_aligned  # noqa: E402


def load(path, alias):
    """A compiled kernel module from its file, under its own module name (PyInit_<name>)."""
    name = "cnncore." + os.path.basename(path).split(".")[0]
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[alias] = module
    return module


def aligned_scratch(size, offset):
    """A (1, size) int64 scratch starting `offset` bytes past a 64-byte boundary."""
    raw = np.empty(size + 16, np.int64)
    start = (-raw.ctypes.data % 64 + offset) % 64 // 8
    return raw[start:start + size].reshape(1, size)


def kernel_args(kernel, col, offset, copies=False):
    """count_columnar's arguments (outputs on 64-byte boundaries, as cc.count allocates them); copies: every column as its own array (how Columnar stored them
    before it kept one array for fields given the same array)."""
    p = col._program()
    n = len(col)
    columns = tuple(None if col._columns.get(f) is None else
                    (col._columns[f].copy() if copies else col._columns[f]) for f in COLUMN_FIELDS)
    return (p["program"], p["deaths"], p["cat_src"], columns,
            p["consts"], col.input_shape, col.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
            p["out_slot"], p["out_nd"], _empty_aligned((6, n)), _empty_aligned((n, 5)),
            np.zeros(n, np.uint8), aligned_scratch(kernel.scratch_size(p["n_slots"], p["n_live"]), offset))


def load_py(path, kernel):
    """An older cnncore/columnar.py as a module of this checkout's package (its relative imports
    resolve here), counting with `kernel`."""
    spec = importlib.util.spec_from_file_location("cnncore._ab_old_columnar", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "cnncore"
    spec.loader.exec_module(module)
    module._columnar = kernel
    return module


def make_with(columnar_class, n):
    """_data.make_columnar(n, 0) built by another version's Columnar class (cc.Columnar swapped in
    for the call), so that version stores the benchmark's columns its own way."""
    saved = cc.Columnar
    cc.Columnar = columnar_class
    try:
        return _data.make_columnar(n, 0)
    finally:
        cc.Columnar = saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, default=_data.N_ARCH_DEFAULT)
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--old-copies", action="store_true",
                    help="OLD reads every column from its own array (main's storage before 2026-11-22)")
    ap.add_argument("--offset", type=int, default=0,
                    help="bytes past a 64-byte boundary where the scratch starts (np.empty gives 0..56)")
    ap.add_argument("--count", nargs="?", const="/work/main/cnncore/columnar.py", default=None,
                    metavar="OLD_COLUMNAR_PY",
                    help="time the columnar count end to end instead: OLD_COLUMNAR_PY (default main's) "
                         "with OLD.so against this checkout's cnncore/columnar.py with NEW.so")
    a = ap.parse_args()
    col = _data.make_columnar(a.n, 0)
    want = cc.count(col.to_packed(), n_threads=1)
    layers = len(col) * col.n_layers
    kernels = {"old": load(a.old, "_ab_old"), "new": load(a.new, "_ab_new")}
    # one set of arrays for both builds (the larger scratch): where the outputs and the scratch
    # sit in memory (pages, cache sets) moved the time of one build by up to 18 % between two sets
    args = max((kernel_args(m, col, a.offset) for m in kernels.values()), key=lambda x: x[-1].shape[1])
    args = {"old": args[:3] + kernel_args(kernels["old"], col, a.offset, a.old_copies)[3:4] + args[4:], "new": args}
    if a.count:
        import cnncore.columnar as C
        C._columnar = kernels["new"]
        modules = {"old": load_py(a.count, kernels["old"]), "new": C}
        cols = {k: make_with(m.Columnar, a.n) for k, m in modules.items()}

        def count(k):
            raw = modules[k].count_columnar(cols[k], 1)
            assert np.array_equal(raw["flops"], want.flops) and not raw["error"].any(), k
        runs = {"old": lambda: count("old"), "new": lambda: count("new")}
    else:
        runs = {k: (lambda k=k: kernels[k].count_columnar(*args[k])) for k in kernels}
    for k, m in kernels.items():
        args[k][12][:] = 0
        m.count_columnar(*args[k])
        assert np.array_equal(args[k][12][3], want.flops) and not args[k][-2].any(), k
    assert np.array_equal(_data.numpy_skeleton_count(col)["flops"], want.flops)
    times = {"old": [], "new": [], "numpy": []}
    for r in range(a.rounds):
        for k in (("old", "new") if r % 2 == 0 else ("new", "old")):
            t = time.process_time()
            runs[k]()
            times[k].append(time.process_time() - t)
        if r % 4 == 0:  # numpy is slow: every fourth round
            t = time.process_time()
            _data.numpy_skeleton_count(col)
            times["numpy"].append(time.process_time() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(col)} architectures x {col.n_layers} rows = {layers / 1e6:.1f} M layers, {a.rounds} rounds"
          + (", the columnar count end to end" if a.count else ", the kernels alone"))
    for k, v in med.items():
        print(f"  {k:6s} median {v * 1e3:7.2f} ms  {layers / v / 1e6:6.0f} M layers/s  {med['numpy'] / v:5.2f}x numpy")
    ratio = statistics.median(n / o for n, o in zip(times["new"], times["old"]))
    print(f"  median per-round ratio new / old: {ratio:.3f}")


if __name__ == "__main__":
    main()
