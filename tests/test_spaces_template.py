"""Template spaces (cc.spaces.TemplateSpace, Choice, Optional, OneOf) and Once-for-All's sampling
spaces (OFAMobileNetV3, OFAProxylessNAS).

Truth: models written out one by one without any choice machinery (plain cnncore layers, counted
by the single-model path), torch modules built independently (parameters, FlopCounterMode // 2),
and OFA's 50 published specialized sub-networks (han-cai/files ofa/ofa_specialized, commit
a7c9bcd): each one inside the released space's resolution range is a candidate of the space and
must come out at the counts of its published net.config.
"""
import glob
import json
import os
import pickle

import numpy as np
import pytest

import cnncore as cc
from cnncore.spaces import Choice, OFAMobileNetV3, OFAProxylessNAS, OneOf, Optional, TemplateSpace, derive

DATA = os.environ.get("CNNCORE_NAS_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nas"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data/nas"
needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason="NAS test data not available")
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_bytes", "valid")


def _same_counts(batch, models):
    single = [cc.count(m) for m in models]
    for f in FIELDS:
        want = [getattr(r, f) if f != "valid" else True for r in single]
        assert getattr(batch, f).tolist() == want, f
    assert [tuple(s) for s in batch.output_shape.tolist()] == [tuple(r.output_shape) + (0,) * (5 - len(r.output_shape))
                                                              for r in single]


# ---- a small template against the same networks written out by hand -------------------------------
def _template(width, k, deep, pool, res, head):
    x = cc.Input((3, res, res))
    h = cc.Conv2d(3, width, k, padding=derive(k, lambda v: v // 2))(x)
    h = cc.BatchNorm2d(width)(h)
    h = cc.ReLU()(h)
    for d in deep:
        block = cc.Sequential(cc.Conv2d(width, width, 3, padding=1), cc.BatchNorm2d(width), cc.ReLU())
        h = Optional(block, when=d)(h)
    h = OneOf([cc.MaxPool2d(2), cc.AvgPool2d(2), None], choice=pool)(h)
    h = h + cc.Conv2d(width, width, 1)(h)
    h = cc.Flatten()(cc.AdaptiveAvgPool2d(1)(h))
    h = cc.Linear(width, 10)(h)
    return cc.Model(x, OneOf([None, cc.Softmax(1)], choice=head)(h))  # the output row itself is a choice


def _by_hand(width, k, deep, pool, res, head):
    x = cc.Input((3, res, res))
    h = cc.ReLU()(cc.BatchNorm2d(width)(cc.Conv2d(3, width, k, padding=k // 2)(x)))
    for d in deep:
        if d:
            h = cc.ReLU()(cc.BatchNorm2d(width)(cc.Conv2d(width, width, 3, padding=1)(h)))
    if pool == 0:
        h = cc.MaxPool2d(2)(h)
    elif pool == 1:
        h = cc.AvgPool2d(2)(h)
    h = cc.add(h, cc.Conv2d(width, width, 1)(h))
    h = cc.Linear(width, 10)(cc.Flatten()(cc.AdaptiveAvgPool2d(1)(h)))
    return cc.Model(x, cc.Softmax(1)(h) if head else h)


TOY = dict(width=Choice([8, 16, 24]), k=Choice([1, 3, 5]), deep=[Choice([0, 1]), Choice([1, 0])],
           pool=Choice([0, 1, 2]), res=Choice([16, 32]), head=Choice([0, 1]))


@pytest.fixture(scope="module")
def toy():
    return TemplateSpace(_template, name="toy", **TOY)


def test_template_every_candidate_equals_the_model_written_by_hand(toy):
    assert toy.size == 3 * 3 * 2 * 2 * 3 * 2 * 2
    cands = toy.candidates(0, toy.size)
    r = cc.count(toy.pack(cands, chunk_size=100))
    hand = [_by_hand(**toy.values(c)) for c in cands]
    _same_counts(r, hand)
    # and .model(c) is build() with the candidate's plain values: the same rows
    for i in (0, 57, toy.size - 1):
        a = cc.pack([toy.model(cands[i])]).arrays()["layers"]
        b = cc.pack([hand[i]]).arrays()["layers"]
        assert np.array_equal(a, b)


def test_template_against_torch(toy):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    from torch.utils.flop_counter import FlopCounterMode

    class Net(nn.Module):
        def __init__(self, width, k, deep, pool, res, head):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, k, padding=k // 2), nn.BatchNorm2d(width), nn.ReLU())
            self.deep = nn.Sequential(*[nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
                                                      nn.ReLU()) for d in deep if d])
            self.pool = [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Identity()][pool]
            self.proj = nn.Conv2d(width, width, 1)
            self.fc = nn.Linear(width, 10)
            self.head = nn.Softmax(1) if head else nn.Identity()

        def forward(self, x):
            h = self.pool(self.deep(self.stem(x)))
            h = h + self.proj(h)
            return self.head(self.fc(h.mean((2, 3))))

    cands = toy.sample(12, seed=5)
    r = cc.count(toy.pack(cands))
    for i, c in enumerate(cands):
        v = toy.values(c)
        net = Net(**v).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            out = net(torch.zeros(1, 3, v["res"], v["res"]))
        assert r.params[i] == sum(p.numel() for p in net.parameters())
        assert r.macs[i] == fc.get_total_flops() // 2
        assert tuple(r.output_shape[i][:2]) == tuple(out.shape)


def test_template_sample_candidates_and_values(toy):
    a, b = toy.sample(500, seed=3), toy.sample(500, seed=3)
    assert np.array_equal(a, b) and a.dtype == toy.dtype
    assert set(a["width"].tolist()) == {8, 16, 24} and set(a["deep"].ravel().tolist()) == {0, 1}
    allc = toy.candidates(0, toy.size)
    assert len(np.unique(allc)) == toy.size  # mixed-radix enumeration: every candidate once
    assert toy.values(allc[-1]) == dict(width=24, k=5, deep=[1, 0], pool=2, res=32, head=1)
    assert toy.values({"width": 16, "k": 3, "deep": [0, 0], "pool": 1, "res": 16, "head": 0})["width"] == 16


def test_template_sweep_all_equals_pack(toy):
    r = cc.sweep(toy, constraints={"params": 3000}, chunk_size=50)
    full = cc.count(toy.pack(toy.candidates(0, toy.size)))
    keep = np.flatnonzero(full.params <= 3000)
    assert r.table["index"].tolist() == keep.tolist()
    assert r.table["macs"].tolist() == full.macs[keep].tolist()
    assert r.table["width"].tolist() == toy.candidates(0, toy.size)["width"][keep].tolist()


def test_template_errors(toy):
    with pytest.raises(ValueError, match=r"width = 12 is not one of its options \[8, 16, 24\]"):
        c = toy.sample(3, seed=0)
        c["width"][1] = 12
        toy.pack(c)
    with pytest.raises(ValueError, match=r"deep\[1\] = 2"):
        c = toy.sample(3, seed=0)
        c["deep"][0, 1] = 2
        toy.pack(c)
    with pytest.raises(TypeError, match="structured array"):
        toy.pack(np.arange(3))
    floats = np.zeros(2, [(k, np.float64) if k not in ("deep",) else (k, np.float64, (2,)) for k in toy.fields])
    with pytest.raises(TypeError, match="'width' must hold integers"):
        toy.pack(floats)
    with pytest.raises(ValueError, match="no candidates"):
        toy.pack(toy.sample(0))
    with pytest.raises(IndexError):
        toy.candidates(0, toy.size + 1)
    with pytest.raises(ValueError, match="at least one option"):
        Choice([])
    with pytest.raises(TypeError, match="ints"):
        Choice([1.5, 2])
    with pytest.raises(TypeError, match="must be a Choice"):
        TemplateSpace(_template, width=16)
    with pytest.raises(ValueError, match="do not index"):
        OneOf([cc.ReLU()], choice=Choice([0, 1]))
    # a Choice the space was not given
    stray = Choice([3, 4])
    with pytest.raises(ValueError, match="not one of the space's choices"):
        TemplateSpace(lambda w: cc.Model(x := cc.Input((stray, 8, 8)), cc.Conv2d(stray, w, 1)(x)), w=Choice([2, 4]))


def test_choice_is_an_int_and_pickles():
    c = Choice([5, 3, 7])
    d = c.map(lambda v: v // 2)
    assert c == 5 and isinstance(c, int) and d == 2 and d.values == (2, 1, 3) and d.var is c
    assert derive(7, lambda v: v // 2) == 3 and type(derive(7, lambda v: v // 2)) is int
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.values == (5, 3, 7) and c2.var is c2


# ---- Once-for-All ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mbv3():
    return OFAMobileNetV3()


@pytest.fixture(scope="module")
def proxyless():
    return OFAProxylessNAS()


def _candidate_of(space, cfg, r):
    """The space's candidate for a specialized net: ks, e of its blocks stage by stage (skipped
    blocks: 3), d = blocks per elastic stage. A stage is a block without shortcut and the blocks
    with an identity shortcut after it."""
    blocks = cfg["blocks"][1:]
    nb = sum(space.stage_blocks)
    ks, e, d = [3] * nb, [3] * nb, []
    i = b = 0
    for n in space.stage_blocks:
        cnt = 0
        while i < len(blocks) and (cnt == 0 or blocks[i]["shortcut"] is not None):
            conv = blocks[i].get("mobile_inverted_conv", blocks[i].get("conv"))
            ks[b + cnt], e[b + cnt] = conv["kernel_size"], conv["expand_ratio"]
            cnt, i = cnt + 1, i + 1
        if n > 1:
            d.append(cnt)
        b += n
    assert i == len(blocks)
    rec = np.zeros(1, space.dtype)
    for k, v in dict(ks=ks, e=e, d=d, r=r).items():
        rec[k] = v
    return rec


SPECIALIZED = sorted(glob.glob(os.path.join(DATA, "ofa_specialized", "*")))


@needs_data
def test_ofa_specialized_nets_are_candidates_of_the_spaces(mbv3, proxyless):
    spaces = {("MobileNetV3", 16): mbv3, ("MobileNetV3", 24): OFAMobileNetV3(width_mult=1.2),
              ("ProxylessNASNets", 40): proxyless}
    checked = 0
    for d in SPECIALIZED:
        with open(os.path.join(d, "net.config")) as f:
            cfg = json.load(f)
        with open(os.path.join(d, "run.config")) as f:
            r = json.load(f)["image_size"]
        space = spaces[cfg["name"], cfg["first_conv"]["out_channels"]]
        if r not in range(128, 225, 4):
            continue  # fine-tuned at a resolution outside the released space's 128..224
        cand = _candidate_of(space, cfg, r)
        published = cc.count(cc.spaces.from_ofa_config(cfg, r))
        one = cc.count(space.model(cand[0]))
        batch = cc.count(space.pack(cand))
        assert (one.params, one.macs) == (published.params, published.macs), d
        assert (batch.params[0], batch.macs[0], batch.flops[0]) == (one.params, one.macs, one.flops), d
        name = os.path.basename(d)
        if name.startswith("flops-"):  # OFA names these by their MACs
            assert round(one.macs / 1e6) == int(name.split("-")[1].rstrip("M").split("M")[0])
        checked += 1
    assert checked == 46


@pytest.mark.parametrize("make", [OFAMobileNetV3, lambda: OFAMobileNetV3(width_mult=1.2), OFAProxylessNAS],
                         ids=["mbv3_w1.0", "mbv3_w1.2", "proxyless_w1.3"])
def test_ofa_pack_equals_models(make):
    space = make()
    cands = space.sample(40, seed=11)
    _same_counts(cc.count(space.pack(cands, chunk_size=16)), [space.model(c) for c in cands])


def test_ofa_subnets_against_torch(mbv3, proxyless):
    from test_spaces import _torch_ofa  # OFA's modules written in torch, independent of cnncore.spaces
    for space in (mbv3, proxyless):
        cands = space.sample(3, seed=2)
        r = cc.count(space.pack(cands))
        for i, c in enumerate(cands):
            assert (r.params[i], r.macs[i]) == _torch_ofa(space.net_config(c), int(c["r"]))


def test_ofa_space_shape(mbv3, proxyless):
    assert mbv3.dtype["ks"].shape == (20,) and mbv3.dtype["d"].shape == (5,)
    assert proxyless.dtype["ks"].shape == (21,) and proxyless.dtype["d"].shape == (5,)
    assert mbv3.size == 3 ** 20 * 3 ** 20 * 3 ** 5 * 25
    c = mbv3.sample(2000, seed=0)
    assert set(c["r"].tolist()) == set(range(128, 225, 4)) and set(c["ks"].ravel().tolist()) == {3, 5, 7}
    # depth 2 everywhere: 1 + 5 * 2 MBConv blocks; the arch dict is OFA's format
    c["d"] = 2
    cfg = mbv3.net_config(c[0])
    assert len(cfg["blocks"]) == 11 and mbv3.arch_dict(c[0])["d"] == [2] * 5
    assert cfg["blocks"][1]["conv"]["mid_channels"] == cc.spaces.ofa.make_divisible(round(16 * c["e"][0][0]), 8)


def test_ofa_errors(mbv3):
    with pytest.raises(ValueError, match="expand ratio 1"):
        OFAMobileNetV3(expand=(1, 3))
    with pytest.raises(ValueError, match="odd"):
        OFAMobileNetV3(ks=(3, 4))
    c = mbv3.sample(2, seed=0)
    c["r"][0] = 130
    with pytest.raises(ValueError, match=r"r = 130 is not one of its options"):
        mbv3.pack(c)
    with pytest.raises(ValueError, match="too many to count them all"):
        cc.sweep(mbv3)


def test_ofa_sweep_keeps_choice_arrays(mbv3):
    r = cc.sweep(mbv3, n=3000, seed=9, constraints={"macs": 250_000_000}, chunk_size=700)
    cands = mbv3.sample(3000, seed=9)
    full = cc.count(mbv3.pack(cands))
    keep = np.flatnonzero(full.macs <= 250_000_000)
    assert 0 < len(keep) < 3000 and r.n_counted == 3000 and r.n_kept == len(keep)
    t = r.table
    assert t["index"].tolist() == keep.tolist()
    for f in ("ks", "e", "d", "r"):
        assert np.array_equal(t[f], cands[f][keep]), f
    assert t["params"].tolist() == full.params[keep].tolist()
    front = r.pareto()
    assert len(front) and (np.diff(front["params"]) > 0).all()


def test_template_rejects_a_repeated_choice():
    d = Choice([0, 1])
    with pytest.raises(ValueError, match="repeats one Choice"):
        TemplateSpace(_template, **{**TOY, "deep": [d, d]})
    with pytest.raises(ValueError, match="repeats one Choice"):
        TemplateSpace(_template, **{**TOY, "head": TOY["pool"]})


def test_oneof_with_a_fixed_pick_inside_a_template():
    """A OneOf whose choice is a plain int is just that module, in a template as outside one."""
    def build(w):
        x = cc.Input((3, 8, 8))
        h = OneOf([cc.ReLU(), cc.Conv2d(3, 3, 3, padding=1)], choice=1)(x)
        return cc.Model(x, cc.Conv2d(3, w, 1)(h))
    space = TemplateSpace(build, w=Choice([4, 8]))
    r = cc.count(space.pack(space.candidates(0, 2)))
    assert r.params.tolist() == [cc.count(build(w)).params for w in (4, 8)] == [84 + 16, 84 + 32]


# ---- misuse of a Choice is loud, never silently wrong counts ----------------------------------------
def test_arithmetic_on_a_choice_raises_and_derive_gives_the_hand_counts():
    k = Choice([3, 5])
    for misuse in (lambda: k // 2, lambda: k * 2, lambda: 2 + k, lambda: -k, lambda: k % 2, lambda: round(k)):
        with pytest.raises(TypeError, match="cc.spaces.derive"):
            misuse()

    def build(k):
        x = cc.Input((3, 32, 32))
        return cc.Model(x, cc.Conv2d(3, 8, k, padding=derive(k, lambda v: v // 2))(x))
    space = TemplateSpace(build, k=Choice([3, 5]))
    r = cc.count(space.pack(space.candidates(0, 2)))
    # 'same'-padded conv: out 8x32x32, each output reads 3*k*k inputs (no MACs for the bias)
    assert r.macs.tolist() == [8 * 32 * 32 * 3 * 3 * 3, 8 * 32 * 32 * 3 * 5 * 5] == [221184, 614400]
    assert r.params.tolist() == [8 * 3 * 9 + 8, 8 * 3 * 25 + 8]


def test_control_flow_on_a_choice_is_a_construction_error():
    """range(d) and ``if k > 3`` see only a Choice's first option in the template: the probe
    candidates' pack then differs from their model(), and the space refuses to exist."""
    def deep(d):
        x = cc.Input((3, 16, 16))
        h = x
        for _ in range(d):
            h = cc.Conv2d(3, 3, 3, padding=1)(h)
        return cc.Model(x, h)
    with pytest.raises(ValueError, match=r"\{'d': 2\}: the template gives 1 layers, model\(\) 2.*derive"):
        TemplateSpace(deep, d=Choice([1, 2]))

    def branchy(k):
        x = cc.Input((3, 16, 16))
        return cc.Model(x, cc.Conv2d(3, 8, k, padding=1 if k < 4 else 2)(x))
    with pytest.raises(ValueError, match=r"\{'k': 5\}: layer 0 \(Conv2d 'conv2d'\) field p0: the template gives 1, "
                                         r"model\(\) 2"):
        TemplateSpace(branchy, k=Choice([3, 5]))


def test_a_space_with_invalid_candidates_still_builds():
    """Conv2d(3, 8, 3, groups=g) is invalid for g = 3 (8 % 3) in torch as here: the probe skips it
    and pack marks it invalid."""
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.nn.Conv2d(3, 8, 3, groups=3)

    def build(g):
        x = cc.Input((3, 10, 10))
        return cc.Model(x, cc.Conv2d(3, 8 * 3, 3, groups=1)(cc.Conv2d(3, 3, 3, padding=1, groups=g)(x)))
    space = TemplateSpace(build, g=Choice([1, 3, 2]))
    r = cc.count(space.pack(space.candidates(0, 3)))
    assert r.valid.tolist() == [True, True, False]
    with pytest.raises(cc.ShapeError):
        space.model(space.candidates(2, 3)[0])
    assert r.params[:2].tolist() == [sum(p.numel() for p in torch.nn.Sequential(
        torch.nn.Conv2d(3, 3, 3, padding=1, groups=g), torch.nn.Conv2d(3, 24, 3)).parameters()) for g in (1, 3)]


def test_group_norm_takes_a_choice_and_invalid_groups_are_invalid_candidates():
    """GroupNorm(g, 8) with g a Choice: torch refuses 3 groups of 8 channels, so that candidate is
    invalid (the core's check), and the others count torch's params."""
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.nn.GroupNorm(3, 8)

    def build(g):
        x = cc.Input((3, 8, 8))
        return cc.Model(x, cc.GroupNorm(g, 8)(cc.Conv2d(3, 8, 3, padding=1)(x)))
    space = TemplateSpace(build, g=Choice([1, 3, 4]))
    r = cc.count(space.pack(space.candidates(0, 3)))
    assert r.valid.tolist() == [True, False, True]
    for i, g in [(0, 1), (2, 4)]:
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GroupNorm(g, 8))
        assert r.params[i] == sum(p.numel() for p in net.parameters()) == 8 * 27 + 8 + 16
    with pytest.raises(ValueError, match="divisible"):
        cc.GroupNorm(3, 8)  # a plain int still fails at once, as torch's


def test_template_keeps_the_batch_size_of_its_input():
    def build(w, b):
        x = cc.Input((3, 16, 16), batch_size=b)
        return cc.Model(x, cc.Conv2d(3, w, 3)(x))
    space = TemplateSpace(build, w=Choice([4, 8]), b=Choice([4, 1]))
    cands = space.candidates(0, 4)
    r = cc.count(space.pack(cands))
    # batch * out channels * 14 * 14 outputs, 3 * 3 * 3 MACs each
    want = [b * w * 14 * 14 * 27 for w, b in cands[["w", "b"]].tolist()]
    assert r.macs.tolist() == want == [84672, 21168, 169344, 42336]
    assert r.output_shape[:, 0].tolist() == [4, 1, 4, 1]
    fixed = TemplateSpace(lambda w: build(w, 4), w=Choice([4, 8]))
    assert cc.count(fixed.pack(fixed.candidates(0, 2))).macs.tolist() == [84672, 169344]


def test_derive_refuses_a_non_integer_value():
    with pytest.raises(TypeError, match=r"fn\(5\) gave 7.5, not an int"):
        derive(Choice([5, 8]), lambda v: v * 1.5)
    assert derive(Choice([5, 8]), lambda v: round(v * 1.5)).values == (8, 12)  # round() of a float is an int
    assert derive(Choice([1, 2, 3]), lambda v: v > 2).values == (0, 0, 1)  # a bool reads as 0 / 1



def test_derive_refuses_a_value_outside_int64():
    """2**40 * 2**30 = 2**70 has no int64: a ValueError naming it (it was numpy's OverflowError)."""
    big = Choice([2 ** 40, 8])
    with pytest.raises(ValueError, match=r"gave 1180591620717411303424, outside int64"):
        derive((big, Choice([2 ** 30, 2])), lambda a, b: a * b)
    with pytest.raises(ValueError, match="outside int64"):
        derive(big, lambda v: -v * v)
    assert derive((big, Choice([2 ** 22, 2])), lambda a, b: a * b).values == (2 ** 62, 2 ** 41, 2 ** 25, 16)


def _mbconv(w, e, k):
    """An inverted residual whose hidden width is derived from two choices (width x expand)."""
    x = cc.Input((3, 16, 16))
    h = cc.ReLU()(cc.Conv2d(3, w, 3, padding=1)(x))
    hidden = derive((w, e), lambda a, b: a * b)
    y = cc.ReLU()(cc.Conv2d(w, hidden, 1, bias=False)(h))
    y = cc.ReLU()(cc.Conv2d(hidden, hidden, k, padding=derive(k, lambda v: v // 2), groups=hidden, bias=False)(y))
    y = cc.Conv2d(hidden, w, 1, bias=False)(y)
    return cc.Model(x, cc.Linear(w, 10)(cc.Flatten()(cc.AdaptiveAvgPool2d(1)(h + y))))


MBCONV = dict(w=Choice([16, 24]), e=Choice([3, 6]), k=Choice([3, 5]))


def test_a_value_derived_from_two_choices_against_torch():
    """derive((w, e), fn): the hidden width of every candidate is w * e, packed from the choice
    arrays and counted block by block, equal to torch's modules of the same candidates."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    space = TemplateSpace(_mbconv, **MBCONV)
    cands = space.candidates(0, space.size)
    r = cc.count(space.pack(cands))
    for (w, e, k), params, macs in zip(cands[["w", "e", "k"]].tolist(), r.params.tolist(), r.macs.tolist()):
        hid = w * e

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, w, 3, padding=1), torch.nn.ReLU())
                self.block = torch.nn.Sequential(
                    torch.nn.Conv2d(w, hid, 1, bias=False), torch.nn.ReLU(),
                    torch.nn.Conv2d(hid, hid, k, padding=k // 2, groups=hid, bias=False), torch.nn.ReLU(),
                    torch.nn.Conv2d(hid, w, 1, bias=False))
                self.head = torch.nn.Linear(w, 10)

            def forward(self, x):
                h = self.stem(x)
                return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h + self.block(h), 1), 1))
        net = Net()
        with FlopCounterMode(display=False) as fc:
            net(torch.zeros(1, 3, 16, 16))
        assert params == sum(p.numel() for p in net.parameters())
        assert macs == fc.get_total_flops() // 2
    got = cc.sweep(space)  # block by block: the same counts
    assert sorted(got.table.params.tolist()) == sorted(r.params.tolist())
    assert sorted(got.table.macs.tolist()) == sorted(r.macs.tolist())


def test_a_value_derived_from_two_choices_only_as_a_layer_argument():
    w, e = Choice([16, 24]), Choice([3, 6])
    both = derive((w, e), lambda a, b: a * b)
    assert both.table.tolist() == [[48, 96], [72, 144]] and derive((16, 3), lambda a, b: a * b) == 48
    assert derive((w, w), lambda a, b: a + b).values == (32, 48)  # one choice seen twice: still one choice
    with pytest.raises(TypeError, match="from the choices themselves"):
        derive((both, e), lambda a, b: a + b)
    with pytest.raises(TypeError, match=r"fn\(16, 3\) gave 24.0"):
        derive((w, e), lambda a, b: a * b / 2)

    def batch_of_both(w, e):
        x = cc.Input((3, 8, 8), batch_size=derive((w, e), lambda a, b: a + b))
        return cc.Model(x, cc.Conv2d(3, 4, 3)(x))
    with pytest.raises(ValueError, match="derived from several choices"):
        TemplateSpace(batch_of_both, w=Choice([1, 2]), e=Choice([1, 3]))


def test_choice_options_must_be_distinct():
    with pytest.raises(ValueError, match=r"distinct, \[4\] repeated"):
        Choice([4, 4, 8])


def test_len_of_a_huge_space_raises_like_range():
    with pytest.raises(OverflowError):
        len(range(2 ** 64))  # the behaviour copied
    space = OFAMobileNetV3()
    # 20 blocks x (3 kernels x 3 expands), 5 depths of 3 options, 25 resolutions (128..224 step 4)
    assert space.size == 9 ** 20 * 3 ** 5 * 25
    with pytest.raises(OverflowError, match=r"use \.size"):
        len(space)
    small = TemplateSpace(lambda w: cc.Model(x := cc.Input((3, 8, 8)), cc.Conv2d(3, w, 1)(x)), w=Choice([2, 4, 6]))
    assert len(small) == small.size == 3


def test_far_apart_and_unsorted_options_are_looked_up_without_a_table():
    """Choice([0, 10**10]): a value -> index table sized max - min + 1 would need 80 GB."""
    import tracemalloc

    def build(gate, w):
        x = cc.Input((3, 8, 8))
        h = Optional(cc.Conv2d(3, 3, 3, padding=1), when=derive(gate, lambda v: v > 0))(x)
        return cc.Model(x, cc.Conv2d(3, w, 1)(h))
    tracemalloc.start()
    space = TemplateSpace(build, gate=Choice([10 ** 10, 0]), w=Choice([6, 2, 4]))
    cands = space.candidates(0, space.size)
    r = cc.count(space.pack(cands))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2 ** 20
    conv3 = 3 * 3 * 9 + 3  # the optional 3x3 conv, 84 params
    want = [(conv3 if g else 0) + 3 * w + w for g, w in cands[["gate", "w"]].tolist()]
    assert r.params.tolist() == want == [conv3 + 24, conv3 + 8, conv3 + 16, 24, 8, 16]
    bad = cands[:1].copy()
    bad["gate"] = 5
    with pytest.raises(ValueError, match=r"gate = 5 is not one of its options \[10000000000, 0\]"):
        space.pack(bad)


# ---- layers with three and more inputs (Inception- and DARTS-like concatenations) --------------------
def _branches(w, k, pool, extra, res, hand=False):
    """Four branches concatenated (one a OneOf, one an Optional that may be the input itself), then a
    three-input cat reaching back to earlier tensors, and a three-input sum."""
    pad = k // 2 if hand else derive(k, lambda v: v // 2)
    x = cc.Input((3, res, res))
    h = cc.ReLU()(cc.Conv2d(3, 8, 3, padding=1)(x))
    a = cc.Conv2d(8, w, 1)(h)
    b = cc.Conv2d(8, w, k, padding=pad)(h)
    pools = [cc.MaxPool2d(3, 1, 1), cc.AvgPool2d(3, 1, 1)]
    c = pools[pool](h) if hand else OneOf(pools, choice=pool)(h)
    conv = cc.Conv2d(8, 8, 3, padding=1)
    d = (conv(h) if extra else h) if hand else Optional(conv, when=extra)(h)
    y = cc.cat([a, b, c, d], dim=1)
    y = cc.cat([y, h, a], dim=1)
    s = cc.add(cc.add(a, b), cc.Conv2d(8, w, 1)(c))  # sums of three, as a chain of adds
    width = 3 * w + 24 if hand else derive(w, lambda v: 3 * v + 24)
    y = cc.Flatten()(cc.AdaptiveAvgPool2d(1)(y))
    s = cc.Flatten()(cc.AdaptiveAvgPool2d(1)(s))
    return cc.Model(x, cc.cat([cc.Linear(width, 10)(y), s, y], dim=1))


BRANCHES = dict(w=Choice([4, 12]), k=Choice([3, 5]), pool=Choice([0, 1]), extra=Choice([0, 1]), res=Choice([8, 15]))


def test_template_with_three_and_four_input_layers_equals_the_models_by_hand():
    space = TemplateSpace(_branches, name="branches", **BRANCHES)  # (its probes compare pack and model too)
    cands = space.candidates(0, space.size)
    r = cc.count(space.pack(cands, chunk_size=7))
    hand = [_branches(hand=True, **space.values(c)) for c in cands]
    _same_counts(r, hand)
    packed = space.pack(cands).arrays()
    assert (packed["layers"][:, cc._format.NSRC] == 4).sum() == len(cands)  # the four-way cat, once each
    assert np.array_equal(packed["extra_src"], cc.pack(hand).arrays()["extra_src"])


def test_template_with_a_four_input_cat_against_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    from torch.utils.flop_counter import FlopCounterMode
    space = TemplateSpace(_branches, name="branches", **BRANCHES)
    cands = space.candidates(0, space.size)[::5]
    r = cc.count(space.pack(cands))
    for i, cand in enumerate(cands):
        v = space.values(cand)
        w, k = v["w"], v["k"]
        stem, ca, cb = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, w, 1), nn.Conv2d(8, w, k, padding=k // 2)
        pool = [nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1)][v["pool"]]
        cd, cs, fc = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, w, 1), nn.Linear(3 * w + 24, 10)
        mods = nn.ModuleList([stem, ca, cb, cs, fc] + ([cd] if v["extra"] else []))
        x = torch.zeros(1, 3, v["res"], v["res"])
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            h = torch.relu(stem(x))
            a, b, c = ca(h), cb(h), pool(h)
            d = cd(h) if v["extra"] else h
            y = torch.cat([torch.cat([a, b, c, d], 1), h, a], 1).mean((2, 3))
            s = (a + b + cs(c)).mean((2, 3))
            out = torch.cat([fc(y), s, y], 1)
        assert r.params[i] == sum(p.numel() for p in mods.parameters())
        assert r.macs[i] == counter.get_total_flops() // 2
        assert tuple(r.output_shape[i][:2]) == tuple(out.shape)
