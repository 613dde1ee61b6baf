"""Throughput of the counting core against a numpy baseline, the pure-Python reference and the
bare-C limit (run separately: benchmarks/run_limit.sh).

All timed backends see the same batch of 2.1 M layers (benchmarks/_data.py: 100 k heterogeneous
conv / BN / ReLU-or-MaxPool stacks, 21 rows each, ~1.6 % invalid), except the reference, which runs
on its first 1/100 (1 000 architectures, 21 000 layers): its layers/s is that slice's layer count
over its time, i.e. its time scaled per layer to the full batch. `extra_info["layers_per_s"]` is
the median's throughput.

    pytest benchmarks                          # time everything (about a minute)
    pytest benchmarks --benchmark-disable      # run each once: a quick smoke test
"""
import numpy as np
import pytest

import cnncore as cc
from cnncore.counting import run_reference

import _data

GROUP = "count, 2.1 M layers (100 k archs x 21)"
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "output_shape", "output_ndim")


def _record(benchmark, n_layers, **info):
    benchmark.extra_info["layers"] = int(n_layers)
    benchmark.extra_info.update(info)
    st = getattr(benchmark, "stats", None)
    if st is not None:  # None under --benchmark-disable
        med = st.stats.median
        benchmark.extra_info["median_s"] = med
        benchmark.extra_info["layers_per_s"] = n_layers / med


def test_data_generator_small():
    """The generator runs, writes valid packed arrays, and the numpy baseline agrees with the core."""
    a = _data.make_batch(_data.N_ARCH_SMALL, seed=1)
    p = cc.Packed.from_arrays(**a)
    assert len(p) == _data.N_ARCH_SMALL and p.n_layers == _data.N_ARCH_SMALL * _data.DEPTH
    assert np.array_equal(a["layers"], _data.make_batch(_data.N_ARCH_SMALL, seed=1)["layers"])  # seeded
    r = cc.count(p, n_threads=1)
    assert 0.9 < r.valid.mean() < 1.0
    b = _data.numpy_count(a)
    assert np.array_equal(b["valid"], r.valid)
    for k in FIELDS:
        assert np.array_equal(b[k][r.valid], getattr(r, k)[r.valid]), k


@pytest.mark.parametrize("n_threads", [1, 2])
def test_core(benchmark, packed, n_threads):
    benchmark.group = GROUP
    res = benchmark.pedantic(cc.count, args=(packed,), kwargs=dict(n_threads=n_threads),
                             rounds=21, iterations=1, warmup_rounds=2)
    assert len(res) == len(packed)
    _record(benchmark, packed.n_layers, n_threads=n_threads, entry="cc.count(packed, n_threads)")


@pytest.mark.parametrize("n_threads", [1, 2])
def test_core_raw(benchmark, packed, n_threads):
    """The compiled loop alone: outputs allocated once outside the timing (cc.count allocates ~100
    bytes of fresh result memory per architecture on every call, and the kernel's page zeroing of
    that memory is a visible share of its time on this machine)."""
    from cnncore import _core
    a = packed.arrays()
    n = len(packed)
    rows = int((np.diff(a["arch_offsets"]) + np.diff(a["input_offsets"])).max())
    out = dict(totals=np.empty((6, n), np.int64), output_shape=np.empty((n, 5), np.int64),
               output_ndim=np.empty(n, np.int32), error=np.empty(n, np.int32),
               error_layer=np.empty(n, np.int32), scratch=np.empty((n_threads, rows, 8), np.int64),
               pointers=np.empty((n_threads, rows), np.int64),
               liveness=np.empty((n_threads, 4 * rows + 3), np.int64))
    args = (a["layers"], a["extra_src"], a["arch_offsets"], a["input_offsets"], a["input_shape"],
            a["input_ndim"], a["batch_size"], out["totals"], out["output_shape"], out["output_ndim"],
            out["error"], out["error_layer"], out["scratch"], out["pointers"], out["liveness"])
    benchmark.group = GROUP
    benchmark.pedantic(_core.count_packed, args=args, kwargs=dict(n_threads=n_threads), rounds=21,
                       iterations=1, warmup_rounds=2)
    assert np.array_equal(out["totals"][2], cc.count(packed).macs)  # the same answers as cc.count
    _record(benchmark, packed.n_layers, n_threads=n_threads, entry="_core.count_packed, outputs preallocated")


def test_numpy_baseline(benchmark, arrays, core_result):
    benchmark.group = GROUP
    # apples to apples: the baseline gives the core's answers before it is timed
    b = _data.numpy_count(arrays)
    v = core_result.valid
    assert np.array_equal(b["valid"], v)
    for k in FIELDS:
        assert np.array_equal(b[k][v], getattr(core_result, k)[v]), k
    benchmark.pedantic(_data.numpy_count, args=(arrays,), rounds=7, iterations=1, warmup_rounds=1)
    _record(benchmark, len(arrays["layers"]), entry="_data.numpy_count(arrays)")


def test_reference(benchmark, arrays, core_result):
    benchmark.group = GROUP
    n = len(arrays["arch_offsets"]) // 100  # 1/100 of the batch
    part = _data.slice_batch(arrays, n)
    r = run_reference(part)
    for k in ("params", "buffers", "macs", "flops", "activation_elements", "output_shape", "error"):
        assert np.array_equal(r[k], getattr(core_result, k)[:n]), k
    benchmark.pedantic(run_reference, args=(part,), rounds=5, iterations=1, warmup_rounds=0)
    _record(benchmark, len(part["layers"]), entry="cnncore.counting.run_reference(1/100 slice)",
            note="timed on the first 1/100 of the batch; layers/s = slice layers / slice time")


def test_validate(benchmark, arrays):
    """cc.Packed.from_arrays: the validation a batch from a NAS generator pays once before counting."""
    benchmark.group = GROUP
    benchmark.pedantic(cc.Packed.from_arrays, kwargs=arrays, rounds=11, iterations=1, warmup_rounds=1)
    _record(benchmark, len(arrays["layers"]), entry="cc.Packed.from_arrays(**arrays)")
