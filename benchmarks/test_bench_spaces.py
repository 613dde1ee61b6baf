"""Search spaces end to end: generate candidates, count them, filter them (cc.sweep), and the
whole-network path (pack with numpy, count with the core) for comparison.

- NAS-Bench-201, all 15,625 cells: ``cc.sweep(NB201())``, counted block by block
  (cnncore/spaces/_blockwise.py). ``cold``: a fresh space object and no process-wide cache every
  round, so every cell variant is packed and counted by the core; ``warm``: its block tables already
  filled by an earlier sweep.
- OFA-MobileNetV3: 1,000,000 sampled candidates, ``cc.sweep(space, n=...)`` on 1 and 2 threads, a
  fresh space every round (cold), reported as candidates/s in ``extra_info["candidates_per_s"]``.
- parts of the whole-network path: ``space.pack`` alone, and ``cc.count`` on a batch packed beforehand.

    pytest benchmarks/test_bench_spaces.py -p no:cacheprovider --benchmark-json=/tmp/spaces.json
"""
import numpy as np
import pytest

import cnncore as cc

N_OFA = 65_536  # the whole-network parts
N_OFA_SWEEP = 1_000_000
BUDGET = {"params": 1_000_000, "macs": 150_000_000}
OFA_BUDGET = {"params": 5_000_000, "macs": 300_000_000}  # the example: --max-params 5M --max-macs 300M


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


def _fresh_nb201(threads):
    """A new NB201 object and no process-wide cache left (template plans, the official index order,
    the arch strings, the rows buffers of table fills): the round counts every cell variant as the
    first sweep of a process does."""
    import sys
    from cnncore.spaces import _blockwise, _template, nb201
    _template._PLANS.clear()
    sys.modules["cnncore.sweep"]._CELL_STRINGS.clear()  # (cc.sweep, the function, hides the module)
    nb201._PERM = None
    _blockwise._ROWS_BUFFERS.clear()
    return (cc.spaces.NB201(),), {"constraints": BUDGET, "n_threads": threads}


@pytest.mark.benchmark(group="NB201: all 15,625 cells")
@pytest.mark.parametrize("threads", [1, 2])
def test_nb201_sweep_all_cold(benchmark, threads):
    r = benchmark.pedantic(cc.sweep, setup=lambda: _fresh_nb201(threads), rounds=15)
    assert r.n_counted == 15_625 and r.n_valid == 15_625 and 0 < r.n_kept < 15_625
    _record(benchmark, 15_625, timings=r.timings)


@pytest.mark.benchmark(group="NB201: all 15,625 cells")
def test_nb201_sweep_all_warm(benchmark, nb201):
    cc.sweep(nb201)  # fills the block tables
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


@pytest.mark.benchmark(group=f"OFA-MobileNetV3 sweep: {N_OFA_SWEEP:,} samples, fresh space")
@pytest.mark.parametrize("threads", [1, 2])
def test_ofa_sweep(benchmark, threads):
    r = benchmark.pedantic(cc.sweep, setup=lambda: ((cc.spaces.OFAMobileNetV3(),), dict(
        n=N_OFA_SWEEP, seed=0, constraints=OFA_BUDGET, n_threads=threads)), rounds=5)
    assert r.n_counted == N_OFA_SWEEP and r.n_valid == N_OFA_SWEEP and 0 < r.n_kept < N_OFA_SWEEP
    _record(benchmark, N_OFA_SWEEP, timings=r.timings, kept=r.n_kept)


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
