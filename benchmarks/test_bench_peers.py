"""cnncore against the torch-based counters, on ResNet-18 and MobileNetV2 (torchvision layout, 1x3x224x224).

Peers, each run as its README shows (benchmarks/_torch_models.py gives the torch modules, written
from torchvision's source with its weight init; torchvision is not installed here):

    thop         thop.profile(model, inputs=(x,), verbose=False)
    ptflops      ptflops.get_model_complexity_info(model, (3, 224, 224), as_strings=False,
                                                   print_per_layer_stat=False, backend="pytorch")
    fvcore       fvcore.nn.FlopCountAnalysis(model, x).total()
    torchinfo    torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)
    FlopCounterMode   with torch.no_grad(), FlopCounterMode(display=False): model(x)

Every peer is timed twice: `build` = construct the torch module (torchvision's init included),
`.eval()`, make the input and count, as a user who wants the numbers of one architecture does;
`count` = count only, on a module built beforehand. cnncore is timed the same two ways on one model
(`cc.count(cc.zoo.resnet18())` / `cc.count(model)`; plus `cc.zoo.resnet18()` alone, the construction
share), and on a packed batch of 10 000 copies of the
architecture (`cc.count(packed, n_threads=1 | 2)`; its per-architecture time is the median / 10 000;
packing is done once, outside the timing). Torch runs single-threaded (`torch.set_num_threads(1)`; override with CNNCORE_BENCH_TORCH_THREADS=N):
on a shared 2-core machine, torch's 2 OpenMP threads make a ResNet-18 forward ~20x slower
(0.95 s instead of 0.05 s) as soon as another process holds one core, since every op's barrier
waits for a descheduled thread. One thread also matches cnncore's one-model path, which is serial;
compare it with the packed n_threads=1 row. `extra_info` holds each run's reported MACs and params,
`per_arch_s` and the peer's version. benchmarks/peers_table.py turns the JSON into the table of
BENCHMARKS.md:

    python -m pytest benchmarks/test_bench_peers.py -p no:cacheprovider --benchmark-json=/tmp/peers.json
    python benchmarks/peers_table.py /tmp/peers.json
"""
from __future__ import annotations

import os
from importlib.metadata import version

import pytest

torch = pytest.importorskip("torch")
thop = pytest.importorskip("thop")
ptflops = pytest.importorskip("ptflops")
fvcore_nn = pytest.importorskip("fvcore.nn")
torchinfo = pytest.importorskip("torchinfo")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnncore as cc  # noqa: E402

import _torch_models as T  # noqa: E402

ARCHS = ("resnet18", "mobilenet_v2")
N_PACKED = 10_000
INPUT = (3, 224, 224)


# ---- the peers: model -> (MACs as the peer reports them, params or None) ------------------------
def _thop(model):
    macs, params = thop.profile(model, inputs=(torch.randn(1, *INPUT),), verbose=False)
    return int(macs), int(params)


def _ptflops(model):
    macs, params = ptflops.get_model_complexity_info(model, INPUT, as_strings=False, print_per_layer_stat=False,
                                                     backend="pytorch", verbose=False)
    return int(macs), int(params)


def _fvcore(model):
    # fvcore's "flops" are MACs for conv / linear (one per multiply-add)
    return int(fvcore_nn.FlopCountAnalysis(model, torch.randn(1, *INPUT)).total()), None


def _torchinfo(model):
    s = torchinfo.summary(model, input_size=(1, *INPUT), verbose=0)
    return int(s.total_mult_adds), int(s.total_params)


def _flop_counter_mode(model):
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.randn(1, *INPUT))
    return fc.get_total_flops() // 2, None  # FLOPs = 2 x MACs


PEERS = {
    "thop": (_thop, "thop"),
    "ptflops": (_ptflops, "ptflops"),
    "fvcore": (_fvcore, "fvcore"),
    "torchinfo": (_torchinfo, "torchinfo"),
    "FlopCounterMode": (_flop_counter_mode, "torch"),
}
# rounds per timing; every peer takes 30-150 ms a call here, so 11 rounds keep the file ~1 min
PEER_ROUNDS = 11


def _record(benchmark, arch, counter, mode, n_arch=1, **info):
    benchmark.extra_info.update(arch=arch, counter=counter, mode=mode, n_arch=n_arch,
                                torch_threads=torch.get_num_threads(), **info)
    st = getattr(benchmark, "stats", None)
    if st is not None:  # None under --benchmark-disable
        benchmark.extra_info["median_s"] = st.stats.median
        benchmark.extra_info["per_arch_s"] = st.stats.median / n_arch


TORCH_THREADS = int(os.environ.get("CNNCORE_BENCH_TORCH_THREADS", "1"))


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    yield
    torch.set_num_threads(old)


def _build(arch):
    return T.BUILDERS[arch]().eval()


@pytest.fixture(scope="module")
def torch_models():
    """One eval-mode torch module per architecture, checked once against torchvision's num_params."""
    out = {}
    for arch in ARCHS:
        m = _build(arch)
        n = sum(p.numel() for p in m.parameters())
        assert n == T.TORCHVISION[arch][0], (arch, n)
        out[arch] = m
    return out


@pytest.fixture(scope="module")
def packed_batches():
    """10 000 copies of each architecture, packed once (cc.pack; not timed)."""
    out = {}
    for arch in ARCHS:
        m = getattr(cc.zoo, arch)()
        r = cc.count(m)
        assert r.params == T.TORCHVISION[arch][0]
        assert round(r.macs / 1e9, 3) == T.TORCHVISION[arch][1]
        out[arch] = (cc.pack([m] * N_PACKED), r)
    return out


# ---- peers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_torch_build_only(benchmark, arch):
    """Constructing the torch module alone: the share of `build` that is not counting."""
    benchmark.group = f"peers: {arch}"
    benchmark.pedantic(_build, args=(arch,), rounds=PEER_ROUNDS, iterations=1, warmup_rounds=1)
    _record(benchmark, arch, "torch.nn module", "build only", version=version("torch"))


@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("arch", ARCHS)
def test_peer_build(benchmark, torch_models, arch, peer):
    fn, dist = PEERS[peer]
    macs, params = fn(torch_models[arch])  # warm-up and the peer's own numbers
    if params is not None:
        assert params == T.TORCHVISION[arch][0], (peer, params)
    benchmark.group = f"peers: {arch}"
    benchmark.pedantic(lambda: fn(_build(arch)), rounds=PEER_ROUNDS, iterations=1, warmup_rounds=1)
    _record(benchmark, arch, peer, "build", macs=macs, params=params, version=version(dist))


@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("arch", ARCHS)
def test_peer_count(benchmark, torch_models, arch, peer):
    fn, dist = PEERS[peer]
    m = torch_models[arch]
    benchmark.group = f"peers: {arch}"
    macs, params = benchmark.pedantic(fn, args=(m,), rounds=PEER_ROUNDS, iterations=1, warmup_rounds=1)
    _record(benchmark, arch, peer, "count", macs=macs, params=params, version=version(dist))


# ---- cnncore -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_cnncore_build(benchmark, arch):
    """cc.count(cc.zoo.resnet18()): build the model with the Python API and count it."""
    make = getattr(cc.zoo, arch)
    benchmark.group = f"peers: {arch}"
    r = benchmark.pedantic(lambda: cc.count(make()), rounds=101, iterations=1, warmup_rounds=3)
    assert r.params == T.TORCHVISION[arch][0]
    _record(benchmark, arch, "cnncore, one model", "build", macs=int(r.macs), params=int(r.params),
            version=version("cnncore"))


@pytest.mark.parametrize("arch", ARCHS)
def test_cnncore_build_only(benchmark, arch):
    """cc.zoo.resnet18() alone: the share of cnncore's `build` that is construction (shapes at each call included)."""
    make = getattr(cc.zoo, arch)
    benchmark.group = f"peers: {arch}"
    benchmark.pedantic(make, rounds=101, iterations=1, warmup_rounds=3)
    _record(benchmark, arch, "cnncore, one model", "build only", version=version("cnncore"))


@pytest.mark.parametrize("arch", ARCHS)
def test_cnncore_count(benchmark, arch):
    m = getattr(cc.zoo, arch)()
    benchmark.group = f"peers: {arch}"
    r = benchmark.pedantic(cc.count, args=(m,), rounds=101, iterations=1, warmup_rounds=3)
    _record(benchmark, arch, "cnncore, one model", "count", macs=int(r.macs), params=int(r.params),
            version=version("cnncore"))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("arch", ARCHS)
def test_cnncore_packed(benchmark, packed_batches, arch, n_threads):
    packed, one = packed_batches[arch]
    benchmark.group = f"peers: {arch}"
    res = benchmark.pedantic(cc.count, args=(packed,), kwargs=dict(n_threads=n_threads),
                             rounds=21, iterations=1, warmup_rounds=2)
    assert res.valid.all() and (res.macs == one.macs).all() and (res.params == one.params).all()
    _record(benchmark, arch, f"cnncore, packed x{N_PACKED}, {n_threads} thread(s)", "count",
            n_arch=N_PACKED, n_threads=n_threads, macs=int(one.macs), params=int(one.params),
            version=version("cnncore"))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("arch", ARCHS)
def test_cnncore_columnar(benchmark, packed_batches, arch, n_threads):
    """The same 10 000 architectures as one skeleton (cc.Columnar.from_packed, not timed): the
    columnar kernel's per-architecture time."""
    packed, one = packed_batches[arch]
    col = cc.Columnar.from_packed(packed)
    benchmark.group = f"peers: {arch}"
    res = benchmark.pedantic(cc.count, args=(col,), kwargs=dict(n_threads=n_threads),
                             rounds=21, iterations=1, warmup_rounds=2)
    assert res.valid.all() and (res.macs == one.macs).all() and (res.params == one.params).all()
    assert (res.peak_activation_bytes == cc.count(packed).peak_activation_bytes).all()
    _record(benchmark, arch, f"cnncore, columnar x{N_PACKED}, {n_threads} thread(s)", "count",
            n_arch=N_PACKED, n_threads=n_threads, macs=int(one.macs), params=int(one.params),
            version=version("cnncore"))
