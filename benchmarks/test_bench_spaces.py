"""Search spaces end to end: generate candidates, pack them with numpy, count them with the core,
filter them (cc.sweep), and the same split into its parts to show where the time goes.

- NAS-Bench-201, all 15,625 cells (214 rows each on average, 3.3 M rows): ``cc.sweep(NB201())``.
- OFA-MobileNetV3: 65,536 sampled candidates (~200 rows each, 13 M rows): ``cc.sweep(space, n=...)``,
  reported as candidates/s in ``extra_info["candidates_per_s"]``.
- parts: ``space.pack`` alone, and ``cc.count`` alone on a batch packed beforehand.

    pytest benchmarks/test_bench_spaces.py -p no:cacheprovider --benchmark-json=/tmp/spaces.json
"""
import numpy as np
import pytest

import cnncore as cc

N_OFA = 65_536
BUDGET = {"params": 1_000_000, "macs": 150_000_000}


def _record(benchmark, n, **info):
    benchmark.extra_info["candidates"] = n
    benchmark.extra_info.update(info)
    st = getattr(benchmark, "stats", None)
    if st is not None:  # None under --benchmark-disable
        benchmark.extra_info["median_s"] = st.stats.median
        benchmark.extra_info["candidates_per_s"] = n / st.stats.median


@pytest.fixture(scope="module")
def nb201():
    s = cc.spaces.NB201()
    s.pack([0])  # trace the template once, outside the timing
    return s


@pytest.fixture(scope="module")
def ofa():
    return cc.spaces.OFAMobileNetV3()


@pytest.fixture(scope="module")
def ofa_samples(ofa):
    return ofa.sample(N_OFA, seed=0)


@pytest.mark.benchmark(group="NB201: all 15,625 cells")
def test_nb201_sweep_all(benchmark, nb201):
    r = benchmark(cc.sweep, nb201, constraints=BUDGET)
    assert r.n_counted == 15_625 and r.n_valid == 15_625 and 0 < r.n_kept < 15_625
    _record(benchmark, 15_625, timings=r.timings)


@pytest.mark.benchmark(group="NB201: all 15,625 cells")
def test_nb201_pack_all(benchmark, nb201):
    idx = np.arange(nb201.size)
    p = benchmark(nb201.pack, idx)
    _record(benchmark, 15_625, rows=p.n_layers)


@pytest.mark.benchmark(group="NB201: all 15,625 cells")
def test_nb201_count_all_prepacked(benchmark, nb201):
    p = nb201.pack(np.arange(nb201.size))
    r = benchmark(cc.count, p)
    assert r.valid.all()
    _record(benchmark, 15_625, rows=p.n_layers)


@pytest.mark.benchmark(group=f"OFA-MobileNetV3: {N_OFA:,} samples")
def test_ofa_sweep(benchmark, ofa):
    r = benchmark(cc.sweep, ofa, n=N_OFA, seed=0, constraints={"macs": 300_000_000})
    assert r.n_counted == N_OFA and r.n_valid == N_OFA
    _record(benchmark, N_OFA, timings=r.timings)


@pytest.mark.benchmark(group=f"OFA-MobileNetV3: {N_OFA:,} samples")
def test_ofa_pack_in_sweep_batches(benchmark, ofa, ofa_samples):
    from cnncore.sweep import _PACK_BATCH

    def pack_all():
        for lo in range(0, N_OFA, _PACK_BATCH):
            ofa.pack(ofa_samples[lo:lo + _PACK_BATCH])
    benchmark(pack_all)
    _record(benchmark, N_OFA)


@pytest.mark.benchmark(group=f"OFA-MobileNetV3: {N_OFA:,} samples")
def test_ofa_count_prepacked(benchmark, ofa, ofa_samples):
    p = ofa.pack(ofa_samples)
    r = benchmark(cc.count, p)
    assert r.valid.all()
    _record(benchmark, N_OFA, rows=p.n_layers)
