"""Throughput of the counting core against a numpy baseline, the pure-Python reference and the
bare-C limit (run separately: benchmarks/run_limit.sh).

All timed backends see the same batch of 2.1 M layers (benchmarks/_data.py: 100 k heterogeneous
conv / BN / ReLU-or-MaxPool stacks, 21 rows each, ~1.6 % invalid), except the reference, which runs
on its first 1/100 (1 000 architectures, 21 000 layers): its layers/s is that slice's layer count
over its time, i.e. its time scaled per layer to the full batch. `extra_info["layers_per_s"]` is
the median's throughput.

The graph group (`GRAPH_GROUP`) times the graph path of the core, the one every architecture
with a branch takes (`_graph_fast`, and `_arch` for what that one declines): a heterogeneous batch of graphs (`graph_batch`: ResNet-18, MobileNetV2 and
DenseNet-121 at five input resolutions, and 2 000 different NAS-Bench-201 networks; ~0.6 M layers,
no two consecutive architectures alike), next to the stacks of the main batch, both at 1 thread.

    pytest benchmarks                          # time everything (about a minute)
    pytest benchmarks --benchmark-disable      # run each once: a quick smoke test
"""
import numpy as np
import pytest

import cnncore as cc
from cnncore.counting import run_reference

import _data

GROUP = "count, 2.1 M layers (100 k archs x 21)"
GRAPH_GROUP = "count, graphs (general path) vs stacks, 1 thread"
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


# ---- graphs: the general path ------------------------------------------------------------------
def _concat(parts):
    """One packed batch (docs/format.md) of several: offsets shifted, XOFF rebased."""
    from cnncore import _format as F
    out = {k: [] for k in parts[0]}
    rows = extra = inputs = 0
    for a in parts:
        layers = np.array(a["layers"])
        layers[layers[:, F.NSRC] > 1, F.XOFF] += extra
        out["layers"].append(layers)
        out["extra_src"].append(a["extra_src"])
        first = 0 if len(out["arch_offsets"]) == 0 else 1  # each part's leading 0 only once
        out["arch_offsets"].append(a["arch_offsets"][first:] + rows)
        out["input_offsets"].append(a["input_offsets"][first:] + inputs)
        for k in ("input_shape", "input_ndim", "batch_size"):
            out[k].append(a[k])
        rows += len(layers)
        extra += len(a["extra_src"])
        inputs += len(a["input_shape"])
    return {k: np.ascontiguousarray(np.concatenate(v)) for k, v in out.items()}


def graph_batch(n_zoo=1000, n_nb201=2000):
    """Graphs only, no two consecutive architectures alike: torchvision's ResNet-18, MobileNetV2
    and DenseNet-121 (4 : 3 : 1, input 160..288 px) interleaved with the first n_nb201 (a multiple
    of n_zoo) NAS-Bench-201 networks: one zoo model, then n_nb201 / n_zoo cells, and so on."""
    r18, mb2, d121 = cc.zoo.resnet18(), cc.zoo.mobilenet_v2(), cc.zoo.densenet121()
    kinds = (r18, mb2, r18, d121, r18, mb2, r18, mb2)
    res = (160, 192, 224, 256, 288)
    zoo = cc.pack([kinds[i % len(kinds)] for i in range(n_zoo)],
                  [(3, res[i % len(res)], res[i % len(res)]) for i in range(n_zoo)])
    nb = cc.spaces.NB201().pack(range(n_nb201))
    per = n_nb201 // n_zoo
    parts = []
    for i in range(n_zoo):
        parts.append(zoo.subset(i).arrays())
        parts.extend(nb.subset(j).arrays() for j in range(i * per, (i + 1) * per))
    return cc.Packed.from_arrays(**_concat(parts))


@pytest.fixture(scope="module")
def graphs():
    return graph_batch()


def test_graph_batch_is_general(graphs):
    """The graph batch is what the general path is for (every architecture has a branch or a
    multi-input row), and it gives the reference's answers on a slice of each kind."""
    from cnncore import _format as F
    a = graphs.arrays()
    off = a["arch_offsets"]
    multi = np.add.reduceat(a["layers"][:, F.NSRC] > 1, off[:-1])
    assert (multi > 0).all()
    r = cc.count(graphs, n_threads=1)
    assert r.valid.all()
    n = len(graphs)
    picks = [0, 1, 3, 9, n - 3, n - 1]  # ResNet-18, NB201, MobileNetV2, DenseNet-121, ResNet-18, NB201
    ref = cc.count(cc.Packed.from_arrays(**_concat([graphs.subset(i).arrays() for i in picks])),
                   backend="reference")
    for k in FIELDS + ("peak_activation_bytes", "error"):
        assert np.array_equal(getattr(ref, k), getattr(r, k)[picks]), k


def test_core_graphs(benchmark, graphs):
    benchmark.group = GRAPH_GROUP
    res = benchmark.pedantic(cc.count, args=(graphs,), kwargs=dict(n_threads=1), rounds=21,
                             iterations=1, warmup_rounds=2)
    assert res.valid.all()
    _record(benchmark, graphs.n_layers, n_threads=1, entry="cc.count(graph batch, n_threads=1)")


def test_core_stacks_beside_graphs(benchmark, packed):
    """The stacks of the main batch (chain fast path) in the graph group, for a ratio of one run."""
    benchmark.group = GRAPH_GROUP
    benchmark.pedantic(cc.count, args=(packed,), kwargs=dict(n_threads=1), rounds=21, iterations=1,
                       warmup_rounds=2)
    _record(benchmark, packed.n_layers, n_threads=1, entry="cc.count(packed stacks, n_threads=1)")
