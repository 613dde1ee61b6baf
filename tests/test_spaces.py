"""cnncore.spaces: NAS-Bench-201 and Once-for-All / ProxylessNAS against their own published data.

Data: ../shared/data/nas (README.md there): nb201_nats_official_points.csv (official NAS-Bench-201 /
NATS-Bench records, D-X-Y/NATS-Bench fake_torch_dir, commit 1d4a304), ofa_specialized/*/net.config +
run.config (han-cai/files ofa/ofa_specialized, commit a7c9bcd), proxylessnas/*.config.
"""
import csv
import glob
import json
import os

import numpy as np
import pytest

import cnncore as cc
from cnncore.spaces import NB201, nb201_flops

DATA = os.environ.get("CNNCORE_NAS_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nas"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data/nas"
needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason="NAS test data not available")


def _tss_records():
    path = os.path.join(DATA, "nb201_nats_official_points.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r["space"] == "tss"]


TSS = _tss_records()


# ---- NAS-Bench-201 -------------------------------------------------------------------------------
def test_nb201_official_order():
    """xautodl exps/NAS-Bench-201/main.py generate_meta_info asserts these after its shuffle."""
    s = NB201()
    assert s.size == len(s) == 15625
    assert s.arch_str(0) == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert s.arch_str(9) == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert s.arch_str(123) == "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 100, 15625, 70000])
def test_nb201_shuffle_replays_python_random(n, monkeypatch):
    """The official order is random.Random(88).shuffle(range(15625)); the compiled replay gives
    Python's own shuffle for any length and seed, and falls back to it when its words run out."""
    import random
    from cnncore._blocks import python_shuffle
    from cnncore.spaces.nb201 import _shuffled
    for seed in (88, 0, 12345):
        expect = list(range(n))
        random.Random(seed).shuffle(expect)
        assert _shuffled(n, random.Random(seed)).tolist() == expect
    out = np.empty(n, np.int64)
    assert python_shuffle(np.zeros(0, np.uint32), out) == (0 if n < 2 else -1)
    # all-ones words: every draw is 2**k - 1, rejected unless i + 1 is a power of two
    if n >= 3:
        assert python_shuffle(np.full(4 * n, 2 ** 32 - 1, np.uint32), out) == -1
    # words running out (never with 2n + 1024 of them): Python's own shuffle from the same state
    from cnncore.spaces import nb201
    monkeypatch.setattr(nb201, "python_shuffle", lambda words, out: -1)
    expect = list(range(n))
    random.Random(88).shuffle(expect)
    assert _shuffled(n, random.Random(88)).tolist() == expect


def test_nb201_index_is_a_bijection():
    s = NB201()
    strings = {s.arch_str(i) for i in range(0, s.size, 7)}
    assert len(strings) == len(range(0, s.size, 7))
    for i in list(range(0, s.size, 97)) + [s.size - 1]:
        assert s.index(s.arch_str(i)) == i
    ch = s.choices(np.arange(s.size))
    assert len({tuple(r) for r in ch}) == s.size  # every cell exactly once


@needs_data
@pytest.mark.parametrize("rec", TSS, ids=lambda r: f"{r['index']}-{r['dataset']}-{r['hp']}")
def test_nb201_official_records(rec):
    """Every tss record of the data file: arch string, index, params and FLOPs exactly."""
    check_official_record(NB201(rec["dataset"]), rec)


def check_official_record(s, rec):
    """One row of nb201_nats_official_points.csv: index <-> arch string, dataset input and classes,
    and the benchmark's params / FLOPs (in millions, rounded) from the model and from the packed row."""
    i = int(rec["index"])
    assert s.arch_str(i) == rec["arch"]
    assert s.index(rec["arch"]) == i
    hw = int(rec["input_hw"])
    assert s.num_classes == int(rec["num_classes"]) and s.input_shape == (3, hw, hw)
    want_params, want_flops = round(float(rec["params_M"]) * 1e6), round(float(rec["flops_M"]) * 1e6)
    m = s.model(i)
    assert cc.count(m).params == want_params
    assert nb201_flops(m) == want_flops
    res = cc.count(s.pack([i]))
    assert res.params[0] == want_params
    assert nb201_flops(res)[0] == want_flops


def test_nb201_records_present():
    if os.path.isdir(DATA):
        assert len(TSS) == 24  # 3 architectures x 4 datasets x 2 epoch budgets


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_nb201_pack_equals_models(dataset):
    """pack() writes with numpy exactly the rows cc.pack writes from the Python models."""
    s = NB201(dataset)
    idx = np.concatenate([s.sample(25, seed=3), [0, 9, 11, 123, 284]])
    a = s.pack(idx, chunk_size=8).arrays()
    b = cc.pack([s.model(int(i)) for i in idx]).arrays()
    for k in b:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k
    ra, rb = cc.count(s.pack(idx)), cc.count(cc.pack([s.model(int(i)) for i in idx]))
    for k in ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_bytes", "output_shape"):
        assert np.array_equal(getattr(ra, k), getattr(rb, k)), k
    assert ra.output_shape[0].tolist() == [1, s.num_classes, 0, 0, 0]


def test_nb201_pack_all_cells():
    s = NB201("cifar10")
    p = s.pack(np.arange(s.size))
    r = cc.count(p)
    assert len(r) == s.size and r.valid.all()
    f = nb201_flops(r)
    # all-skip/none cells are the smallest, all-conv3x3 the largest
    lo = s.index("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    hi = s.index("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert r.params[lo] == r.params.min() and f[lo] == f.min()
    assert r.params[hi] == r.params.max() and f[hi] == f.max()
    # a few by the single-model path
    for i in (0, 1, 5000, hi, lo):
        m = s.model(i)
        assert cc.count(m).params == r.params[i] and nb201_flops(m) == f[i]


def test_nb201_sample_and_errors():
    s = NB201("cifar100")
    a, b = s.sample(1000, seed=7), s.sample(1000, seed=7)
    assert np.array_equal(a, b) and a.dtype == np.int64 and a.min() >= 0 and a.max() < s.size
    assert len(np.unique(s.sample(20000, seed=1))) > 10000
    with pytest.raises(ValueError, match="dataset"):
        NB201("imagenet")
    with pytest.raises(IndexError):
        s.arch_str(s.size)
    with pytest.raises(IndexError):
        s.pack([0, -1])
    with pytest.raises(ValueError, match="arch string"):
        s.index("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="arch string"):
        s.index("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_nb201_flops_helper_on_a_plain_model():
    """conv/linear MACs + one add per output of a layer with bias (BN, ReLU, pooling, adds: 0)."""
    net = cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.BatchNorm2d(8), cc.ReLU(), cc.MaxPool2d(2),
                        cc.Flatten(), cc.Linear(8 * 4 * 4, 10))
    x = cc.Input((3, 8, 8))
    m = cc.Model(x, net(x))
    conv_macs, lin_macs = 8 * 8 * 8 * 27, 128 * 10
    assert nb201_flops(m) == conv_macs + 8 * 8 * 8 + lin_macs + 10
    p = cc.pack([m, m])
    assert nb201_flops(p).tolist() == [nb201_flops(m)] * 2


# ---- Once-for-All / ProxylessNAS -------------------------------------------------------------------
OFA_DIRS = sorted(glob.glob(os.path.join(DATA, "ofa_specialized", "*")))
PROXYLESS = sorted(glob.glob(os.path.join(DATA, "proxylessnas", "*.config")))


def _torch_ofa(cfg, size):
    """OFA's modules written directly in torch (ofa/utils/layers.py, ofa/imagenet_classification/
    networks), independent of cnncore.spaces.ofa: params and FlopCounterMode // 2 MACs."""
    torch = pytest.importorskip("torch")
    nn, Fn = torch.nn, torch.nn.functional
    from torch.utils.flop_counter import FlopCounterMode

    def make_divisible(v, divisor, min_val=None):
        min_val = divisor if min_val is None else min_val
        new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
        return new_v + divisor if new_v < 0.9 * v else new_v

    class Hswish(nn.Module):
        def forward(self, x):
            return x * Fn.relu6(x + 3.) / 6.

    class Hsigmoid(nn.Module):
        def forward(self, x):
            return Fn.relu6(x + 3.) / 6.

    def act(n):
        return {"relu": nn.ReLU, "relu6": nn.ReLU6, "h_swish": Hswish, "h_sigmoid": Hsigmoid}[n]() if n else None

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            m = make_divisible(c // 4, 8)
            self.fc = nn.Sequential(nn.Conv2d(c, m, 1, 1, 0, bias=True), nn.ReLU(),
                                    nn.Conv2d(m, c, 1, 1, 0, bias=True), Hsigmoid())

        def forward(self, x):
            return x * self.fc(x.mean(3, keepdim=True).mean(2, keepdim=True))

    def conv_layer(c):
        k, d = c["kernel_size"], c.get("dilation", 1)
        mods = [nn.Conv2d(c["in_channels"], c["out_channels"], k, c["stride"], k // 2 * d, d, c["groups"], c["bias"])]
        if c["use_bn"]:
            mods.append(nn.BatchNorm2d(c["out_channels"]))
        if c["act_func"]:
            mods.append(act(c["act_func"]))
        return nn.Sequential(*mods)

    class MB(nn.Module):
        def __init__(self, c):
            super().__init__()
            fd = round(c["in_channels"] * c["expand_ratio"]) if c.get("mid_channels") is None else c["mid_channels"]
            a, k = c.get("act_func", "relu6"), c["kernel_size"]
            self.ib = None if c["expand_ratio"] == 1 else nn.Sequential(
                nn.Conv2d(c["in_channels"], fd, 1, 1, 0, bias=False), nn.BatchNorm2d(fd), act(a))
            dm = [nn.Conv2d(fd, fd, k, c["stride"], k // 2, groups=fd, bias=False), nn.BatchNorm2d(fd), act(a)]
            if c.get("use_se"):
                dm.append(SE(fd))
            self.dc = nn.Sequential(*dm)
            self.pl = nn.Sequential(nn.Conv2d(fd, c["out_channels"], 1, 1, 0, bias=False),
                                    nn.BatchNorm2d(c["out_channels"]))

        def forward(self, x):
            return self.pl(self.dc(x if self.ib is None else self.ib(x)))

    class Block(nn.Module):
        def __init__(self, b):
            super().__init__()
            c = b.get("mobile_inverted_conv", b.get("conv"))  # older and newer OFA configs
            self.conv = None if c["name"] == "ZeroLayer" else MB(c)
            self.short = b["shortcut"] is not None

        def forward(self, x):
            if self.conv is None:
                return x
            return self.conv(x) + x if self.short else self.conv(x)

    class Net(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.v3 = c["name"] == "MobileNetV3"
            self.first = conv_layer(c["first_conv"])
            self.blocks = nn.ModuleList([Block(b) for b in c["blocks"]])
            self.fe = conv_layer(c["final_expand_layer"]) if self.v3 else None
            self.fm = conv_layer(c["feature_mix_layer"]) if c.get("feature_mix_layer") else None
            cl = c["classifier"]
            self.cls = nn.Linear(cl["in_features"], cl["out_features"], bias=cl["bias"])

        def forward(self, x):
            x = self.first(x)
            for b in self.blocks:
                x = b(x)
            if self.v3:
                x = self.fm(self.fe(x).mean(3, keepdim=True).mean(2, keepdim=True)).view(x.size(0), -1)
            else:
                x = (self.fm(x) if self.fm is not None else x).mean(3).mean(2)
            return self.cls(x)

    net = Net(cfg).eval()
    params = sum(p.numel() for p in net.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(torch.zeros(1, 3, size, size))
    return params, fc.get_total_flops() // 2


def test_ofa_data_present():
    if os.path.isdir(DATA):
        assert len(OFA_DIRS) == 50 and len(PROXYLESS) == 4


@needs_data
@pytest.mark.parametrize("d", OFA_DIRS, ids=os.path.basename)
def test_ofa_specialized(d):
    with open(os.path.join(d, "net.config")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, "run.config")) as f:
        size = json.load(f)["image_size"]
    r = cc.count(cc.spaces.from_ofa_config(cfg, size))
    assert r.output_shape == (1, 1000)
    # OFA's README lists the 50 nets by id only (no params/MACs table in mit-han-lab/once-for-all
    # README.md): the three "flops@" ids name their MACs, every net is checked against a torch build.
    name = os.path.basename(d)
    if name.startswith("flops-"):
        assert round(r.macs / 1e6) == int(name.split("-")[1].split("M")[0])
    assert (r.params, r.macs) == _torch_ofa(cfg, size)


# ProxylessNAS paper (Cai, Zhu, Han, ICLR 2019) / mit-han-lab/proxylessnas README: mobile 4.1M params
# and 320M MACs, mobile_14 581M, GPU 465M, CPU 439M MACs.
PUBLISHED_PROXYLESS = {"proxyless_mobile": (4.1, 320), "proxyless_mobile_14": (None, 581),
                       "proxyless_gpu": (None, 465), "proxyless_cpu": (None, 439)}


@needs_data
@pytest.mark.parametrize("path", PROXYLESS, ids=os.path.basename)
def test_proxylessnas(path):
    with open(path) as f:
        cfg = json.load(f)
    r = cc.count(cc.spaces.from_ofa_config(cfg, 224))
    params_m, macs_m = PUBLISHED_PROXYLESS[os.path.basename(path)[:-len(".config")]]
    assert round(r.macs / 1e6) == macs_m
    if params_m is not None:
        assert round(r.params / 1e6, 1) == params_m
    assert (r.params, r.macs) == _torch_ofa(cfg, 224)


def test_proxyless_mobile_exact():
    path = os.path.join(DATA, "proxylessnas", "proxyless_mobile.config")
    if not os.path.exists(path):
        pytest.skip("NAS test data not available")
    with open(path) as f:
        r = cc.count(cc.spaces.from_ofa_config(json.load(f), 224))
    assert (r.params, r.macs) == (4_080_512, 320_427_584)


def test_ofa_se_rounding_and_errors():
    assert cc.spaces.ofa.make_divisible(72 // 4, 8) == 24  # 18 -> 16 would lose > 10 %: 24
    assert cc.spaces.ofa.make_divisible(96 // 4, 8) == 24
    with pytest.raises(ValueError, match="unknown network"):
        cc.spaces.from_ofa_config({"name": "ResNet"}, 224)
    with pytest.raises(TypeError):
        cc.spaces.from_ofa_config("net.config", 224)
