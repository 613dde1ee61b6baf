"""The columnar path (cc.Columnar) against the generic path and a numpy count written for one skeleton.

All timed entries count the same 100 k architectures of one skeleton (benchmarks/_data.py,
make_columnar: 6 x Conv2d -> BatchNorm2d -> ReLU, then AdaptiveAvgPool2d, Flatten, Linear; 21 rows;
widths, kernels, strides, classes and input resolutions vary per architecture): 2.1 M layers.

    pytest benchmarks/test_bench_columnar.py
"""
import importlib

import numpy as np
import pytest

import cnncore as cc
from cnncore.columnar import _columnar  # the build this CPU uses (AVX2 where it has it)
from cnncore.columnar import COLUMN_FIELDS, _empty_aligned

import _data
from test_bench_core import _record

GROUP = "one skeleton, 2.1 M layers (100 k archs x 21)"
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "output_shape", "valid")


@pytest.fixture(scope="module")
def columnar():
    return _data.make_columnar(_data.N_ARCH_DEFAULT, 0)


@pytest.fixture(scope="module")
def generic_result(columnar):
    return cc.count(columnar.to_packed(), n_threads=1)


def test_skeleton_baseline_agrees():
    """The numpy skeleton count and the columnar path give the generic core's numbers."""
    col = _data.make_columnar(_data.N_ARCH_SMALL, 1)
    want = cc.count(col.to_packed(), n_threads=1)
    got = cc.count(col, n_threads=1)
    base = _data.numpy_skeleton_count(col)
    for k in FIELDS:
        assert np.array_equal(getattr(got, k), getattr(want, k)), k
        assert np.array_equal(base[k], getattr(want, k)), k


@pytest.mark.parametrize("n_threads", [1, 2])
def test_columnar(benchmark, columnar, generic_result, n_threads):
    benchmark.group = GROUP
    res = benchmark.pedantic(cc.count, args=(columnar,), kwargs=dict(n_threads=n_threads),
                             rounds=21, iterations=1, warmup_rounds=2)
    assert np.array_equal(res.flops, generic_result.flops)
    _record(benchmark, len(columnar) * columnar.n_layers, n_threads=n_threads, entry="cc.count(columnar)")


def _build(name):
    """The kernel build `name` if it is built here and this CPU runs it (cnncore.columnar's rule)."""
    needs = {"_columnar_avx2": ("AVX2", "FMA3"),
             "_columnar_avx512": ("AVX512F", "AVX512DQ", "AVX512VL", "AVX512BW", "AVX2", "FMA3")}
    from numpy._core._multiarray_umath import __cpu_features__ as cpu
    if not all(cpu.get(f) for f in needs.get(name, ())):
        pytest.skip(f"this CPU cannot run {name}")
    try:
        return importlib.import_module(f"cnncore.{name}")
    except ImportError:
        pytest.skip(f"{name} is not built here")


@pytest.mark.parametrize("build", ["in use", "_columnar", "_columnar_avx2", "_columnar_avx512"])
def test_columnar_kernel(benchmark, columnar, generic_result, build):
    """The compiled kernel alone, 1 thread: outputs allocated once outside the timing, on 64-byte
    boundaries as cc.count allocates them ("in use": the build cnncore picks on this CPU; then each
    build by name)."""
    benchmark.group = GROUP
    kernel = _columnar if build == "in use" else _build(build)
    p = columnar._program()
    n = len(columnar)
    args = (p["program"], p["deaths"], p["cat_src"], tuple(columnar._columns.get(f) for f in COLUMN_FIELDS),
            p["consts"], columnar.input_shape, columnar.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
            p["out_slot"], p["out_nd"], _empty_aligned((6, n)), _empty_aligned((n, 5)),
            np.zeros(n, np.uint8), np.empty((1, kernel.scratch_size(p["n_slots"], p["n_live"])), np.int64))
    benchmark.pedantic(kernel.count_columnar, args=args, rounds=21, iterations=1, warmup_rounds=2)
    assert not args[-2].any()  # every architecture counted by the kernel itself
    assert np.array_equal(args[12][3], generic_result.flops)
    _record(benchmark, n * columnar.n_layers, n_threads=1, entry=f"{kernel.__name__}.count_columnar")


@pytest.mark.parametrize("n_threads", [1, 2])
def test_generic_same_skeleton(benchmark, columnar, n_threads):
    """The generic (packed) path on the same batch; 2 threads is what cc.count does by default here
    (all cores)."""
    benchmark.group = GROUP
    packed = columnar.to_packed()
    benchmark.pedantic(cc.count, args=(packed,), kwargs=dict(n_threads=n_threads), rounds=11, iterations=1,
                       warmup_rounds=1)
    _record(benchmark, packed.n_layers, n_threads=n_threads, entry="cc.count(columnar.to_packed())")


def test_numpy_skeleton(benchmark, columnar, generic_result):
    benchmark.group = GROUP
    res = benchmark.pedantic(_data.numpy_skeleton_count, args=(columnar,), rounds=7, iterations=1,
                             warmup_rounds=1)
    assert np.array_equal(res["flops"], generic_result.flops)
    _record(benchmark, len(columnar) * columnar.n_layers, entry="_data.numpy_skeleton_count")
