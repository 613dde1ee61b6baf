"""cc.sweep: NB201 budget filters against single-model counts and NAS-Bench-201's published params,
the Pareto front against its brute-force definition, streamed histograms against np.histogram,
Parquet/PNG outputs, the `cnncore sweep` command, and Dask (LocalCluster) against the local run,
including a worker that dies in the middle of a chunk."""
import csv
import os
import stat

import numpy as np
import pytest

import cnncore as cc
from cnncore.cli import main as cli_main, parse_size
from cnncore.spaces import NB201
from cnncore.sweep import COUNT_FIELDS, HIST_EDGES, pareto_mask

DATA = os.environ.get("CNNCORE_NAS_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nas"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data/nas"

BUDGET = {"params": 1_000_000, "macs": (50_000_000, 150_000_000)}


@pytest.fixture(scope="module")
def nb201():
    return NB201()


@pytest.fixture(scope="module")
def everything(nb201):
    return cc.sweep(nb201, chunk_size=1 << 20)


@pytest.fixture(scope="module")
def full(nb201):
    """Every NB201 cell under BUDGET, in chunks of 4000 (4 chunks, the last one short)."""
    return cc.sweep(nb201, constraints=BUDGET, chunk_size=4000)


def _inside(r, cons):
    for k, (lo, hi) in ((k, v if isinstance(v, tuple) else (None, v)) for k, v in cons.items()):
        v = getattr(r, k)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return False
    return True


# ---- NB201: kept rows are exactly the single-model counts inside the budget ---------------------------
def test_nb201_kept_rows_match_single_model_counts(nb201, full):
    t = full.table
    assert full.n_counted == full.n_valid == 15625
    assert t.dtype.names == ("index", "arch_str") + COUNT_FIELDS
    assert np.all(np.diff(t.index) > 0)  # index order, every index at most once
    kept = set(t.index.tolist())
    rows = {int(i): r for i, r in zip(t.index, t)}
    rng = np.random.default_rng(7)
    # a few kept and a few dropped indices, each counted on its own from nb201.model(i)
    picks = list(rng.choice(t.index, 6, replace=False)) + list(rng.choice(np.setdiff1d(np.arange(15625), t.index), 6, replace=False))
    for i in map(int, picks):
        r = cc.count(nb201.model(i))
        assert (i in kept) == _inside(r, BUDGET), i
        if i in kept:
            row = rows[i]
            assert row.arch_str == nb201.arch_str(i)
            assert (row.params, row.buffers, row.macs, row.flops, row.peak_activation_bytes) == (
                r.params, r.buffers, r.macs, r.flops, r.peak_activation_bytes)


def test_nb201_budget_edges_are_inclusive(nb201):
    """A max equal to one model's exact params keeps it; one less drops it (and nothing above it)."""
    n, seed = 3000, 9
    i = int(nb201.sample(n, seed)[0])
    p = cc.count(nb201.model(i)).params
    at = cc.sweep(nb201, n=n, seed=seed, constraints={"params": p})
    below = cc.sweep(nb201, n=n, seed=seed, constraints={"params": p - 1})
    assert i in set(at.table.index.tolist()) and i not in set(below.table.index.tolist())
    assert at.table.params.max() == p and below.table.params.max() < p
    assert at.n_kept - below.n_kept == int((at.table.params == p).sum())
    lo_hi = cc.sweep(nb201, n=n, seed=seed, constraints={"params": (p, p)})
    assert np.array_equal(lo_hi.table.index, at.table.index[at.table.params == p])


def test_nb201_published_params_decide_membership(everything, full):
    """NAS-Bench-201's own params (params_M * 1e6, the data file) for the records' cells."""
    path = os.path.join(DATA, "nb201_nats_official_points.csv")
    if not os.path.exists(path):
        pytest.skip("NAS test data not available")
    with open(path) as f:
        recs = [r for r in csv.DictReader(f) if r["space"] == "tss" and r["dataset"] == "cifar10"]
    by_index = {int(i): r for i, r in zip(everything.table.index, everything.table)}
    for rec in recs:
        i, params = int(rec["index"]), round(float(rec["params_M"]) * 1e6)
        assert by_index[i].params == params and by_index[i].arch_str == rec["arch"]
        assert (i in set(full.table.index.tolist())) == (params <= 1_000_000 and
                                                         50e6 <= by_index[i].macs <= 150e6)


def test_chunking_and_sampling_do_not_change_the_result(nb201, full, everything):
    t = everything.table  # one chunk, no budget: filtering it with numpy is the 4-chunk sweep
    sel = (t.params <= 1_000_000) & (t.macs >= 50_000_000) & (t.macs <= 150_000_000)
    assert np.array_equal(t[sel], full.table)
    assert everything.n_kept == 15625
    nb = NB201()
    assert all(a == nb.arch_str(i) for i, a in zip(t.index.tolist(), t.arch_str.tolist()))
    s = cc.sweep(nb201, n=3000, seed=11, constraints=BUDGET, chunk_size=700)
    idx = nb201.sample(3000, 11)
    sel = np.isin(idx, full.table.index)
    assert np.array_equal(s.table.index, idx[sel])  # the sampled stream, filtered, in order (repeats kept)
    assert s.n_counted == 3000


def test_streamed_histograms_equal_np_histogram_of_the_table(full):
    for f, (counts, edges) in full.histograms().items():
        assert counts.sum() == full.n_kept
        assert np.array_equal(counts, np.histogram(full.table[f], edges)[0])
        assert np.array_equal(np.histogram(full.table[f], HIST_EDGES)[0][np.searchsorted(HIST_EDGES, edges[0]):][:len(counts)], counts)
    c, e = full.histograms(10)["macs"]
    assert len(c) == 10 and c.sum() == full.n_kept and e[0] == full.table.macs.min()


# ---- Pareto front vs its O(n^2) definition ---------------------------------------------------------
def _brute_pareto(v):
    n = len(v)
    return np.array([not any((v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(n)) for i in range(n)], bool)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_pareto_mask_matches_brute_force(k, seed):
    rng = np.random.default_rng(seed)
    n = 300
    hi = 12 if seed % 2 else 10 ** 6  # small ranges: many ties and duplicates
    v = rng.integers(0, hi, size=(n, k))
    assert np.array_equal(pareto_mask(v), _brute_pareto(v))


def _brute_pareto_np(v, block=512):
    """The same definition, vectorised in blocks (for a few thousand rows)."""
    u, inv = np.unique(v, axis=0, return_inverse=True)  # dominance depends on values only
    out = np.empty(len(u), bool)
    for s in range(0, len(u), block):
        x = u[s:s + block, None, :]
        dom = (u[None] <= x).all(2) & (u[None] < x).any(2)
        out[s:s + block] = ~dom.any(1)
    return out[inv.ravel()]


@pytest.mark.parametrize("objectives", [("params", "macs"), ("macs", "peak_activation_bytes"),
                                        ("params", "flops", "peak_activation_bytes")])
def test_pareto_of_a_sweep(full, objectives):
    t = full.table
    front = full.pareto(objectives)
    ref = _brute_pareto_np(np.stack([t[o] for o in objectives], 1))
    assert np.array_equal(np.sort(front.index), np.sort(t.index[ref]))
    assert np.all(np.diff(front[objectives[0]]) >= 0)


def test_pareto_rejects_unknown_objective(full):
    with pytest.raises(ValueError, match="unknown objective"):
        full.pareto(("params", "latency"))


# ---- other spaces, arguments -----------------------------------------------------------------------
class Bare:
    """Any object with size / pack / sample: no arch strings."""

    def __init__(self):
        self.inner = NB201("cifar100")
        self.size = self.inner.size

    def sample(self, n, seed=None):
        return self.inner.sample(n, seed)

    def pack(self, idx):
        return self.inner.pack(idx)


def test_space_without_arch_str():
    r = cc.sweep(Bare(), n=500, seed=2, constraints={"macs": 100e6})
    assert r.table.dtype.names == ("index",) + COUNT_FIELDS
    assert np.all(r.table.macs <= 100e6)
    assert r.to_pandas().shape == (r.n_kept, 6)


def test_bad_arguments(nb201):
    with pytest.raises(ValueError, match="unknown constraint"):
        cc.sweep(nb201, n=10, constraints={"latency": 3})
    with pytest.raises(ValueError, match="min"):
        cc.sweep(nb201, n=10, constraints={"params": (5, 1)})
    with pytest.raises(ValueError, match="chunk_size"):
        cc.sweep(nb201, n=10, chunk_size=0)
    with pytest.raises(TypeError, match="pack"):
        cc.sweep(object())


# ---- outputs -------------------------------------------------------------------------------------
def test_parquet_roundtrip_and_png(full, tmp_path):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "r.parquet"
    full.to_parquet(out)
    df = pd.read_parquet(out)
    assert list(df.columns) == list(full.table.dtype.names)
    assert np.array_equal(df["index"].to_numpy(), full.table.index)
    assert np.array_equal(df["macs"].to_numpy(), full.table.macs)
    assert list(df["arch_str"][:3]) == list(full.table.arch_str[:3])
    png = tmp_path / "p.png"
    full.plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["p.png", "r.parquet"]  # no temporary files left


def test_unwritable_output_leaves_nothing(full, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        full.to_parquet(tmp_path / "missing" / "r.parquet")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError):  # the rename over a directory fails: the temporary file is removed
        full.to_parquet(tmp_path / "adir")
    with pytest.raises(OSError):
        full.plot(tmp_path / "adir")
    # a failure half-way through writing: the partial temporary file is removed, no output appears
    pq = pytest.importorskip("pyarrow.parquet")

    def half_write(table, where, **kw):
        with open(where, "wb") as f:
            f.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        full.to_parquet(tmp_path / "half.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"] and os.listdir(tmp_path / "adir") == []


def test_read_only_directory(full, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OSError):
            full.to_parquet(ro / "r.parquet")
        with pytest.raises(SystemExit, match="permission denied"):
            cli_main(["sweep", "nb201", "--samples", "10", "--out", str(ro / "r.parquet")])
        assert os.listdir(ro) == []
    finally:
        ro.chmod(stat.S_IRWXU)


# ---- command line --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("5M", 5_000_000), ("300M", 300_000_000), ("1.2G", 1_200_000_000),
                                        ("1500", 1500), ("2.5k", 2500), ("1_000", 1000), ("0", 0)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["abc", "", "5X", "1.2345K", "-3M", "M"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="expected a size like"):
        parse_size(text)


def test_cli_sweep(tmp_path, capsys, nb201):
    pd = pytest.importorskip("pandas")
    out, png = tmp_path / "r.parquet", tmp_path / "p.png"
    rc = cli_main(["sweep", "nb201", "--samples", "2k", "--max-params", "1M", "--max-macs", "150M",
                   "--out", str(out), "--plot", str(png), "--seed", "5"])
    assert rc == 0
    o = capsys.readouterr().out
    assert "counted 2,000" in o and "kept" in o and "Pareto front" in o
    api = cc.sweep(nb201, n=2000, seed=5, constraints={"params": 1_000_000, "macs": 150_000_000})
    assert np.array_equal(pd.read_parquet(out)["index"].to_numpy(), api.table.index)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["sweep", "nb201", "--all", "--max-params", "abc"])
    assert "expected a size like" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown space 'nb999'; available spaces: nats, nb201, ofa-mbv3, ofa-proxyless"):
        cli_main(["sweep", "nb999", "--all"])
    with pytest.raises(SystemExit, match="does not exist"):
        cli_main(["sweep", "nb201", "--samples", "10", "--out", str(tmp_path / "no" / "r.parquet")])
    with pytest.raises(SystemExit, match="is a directory"):
        cli_main(["sweep", "nb201", "--samples", "10", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown dataset"):
        cli_main(["sweep", "nb201", "--samples", "10", "--dataset", "mnist"])
    assert os.listdir(tmp_path) == []


# ---- Dask ----------------------------------------------------------------------------------------
class KillOnce(Bare):
    """The worker process that packs the chunk starting at ``at`` dies (os._exit) the first time."""

    def __init__(self, marker, at):
        super().__init__()
        self.marker, self.at = marker, at

    def pack(self, idx):
        if int(idx[0]) == self.at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().pack(idx)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _same(a, b):
    assert np.array_equal(a.table, b.table)
    assert a.n_counted == b.n_counted and a.n_valid == b.n_valid
    assert all(np.array_equal(a.histograms()[f][0], b.histograms()[f][0]) for f in COUNT_FIELDS)
    assert np.array_equal(a.pareto(), b.pareto())


def test_dask_equals_local(client, nb201, full):
    _same(cc.sweep(nb201, constraints=BUDGET, chunk_size=4000, client=client), full)
    local = cc.sweep(nb201, n=6000, seed=4, constraints={"params": 500_000}, chunk_size=1000)
    _same(cc.sweep(nb201, n=6000, seed=4, constraints={"params": 500_000}, chunk_size=1000, client=client,
                   max_in_flight=3), local)


def test_dask_lost_worker_chunk_is_retried(client, tmp_path):
    space = KillOnce(str(tmp_path / "killed"), at=6000)
    r = cc.sweep(space, constraints={"params": 1_000_000}, chunk_size=3000, client=client)
    assert os.path.exists(space.marker)  # a worker really died in chunk [6000, 9000)
    local = cc.sweep(Bare(), constraints={"params": 1_000_000}, chunk_size=3000)
    _same(r, local)


def test_dask_choice_space_equals_local(client):
    """OFA candidates are choice arrays, not indices: the same rows, choices and histograms."""
    space = cc.spaces.OFAMobileNetV3()
    kw = dict(n=2500, seed=2, constraints={"macs": 300_000_000}, chunk_size=600)
    local = cc.sweep(space, **kw)
    assert 0 < local.n_kept < 2500
    _same(cc.sweep(space, client=client, **kw), local)
