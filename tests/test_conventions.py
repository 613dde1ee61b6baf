"""Conventions of other counters (cnncore/conventions.py): truth from the tools themselves where
they are installed (torch's FlopCounterMode), from published numbers (torchvision's GFLOPS,
NAS-Bench-201's records via an independent computation), and from hand calculation."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import _format as F
from cnncore.conventions import NAMED, N_TERMS, TERMS, Convention
from cnncore.counting import run_core, run_reference

import _archgen as G


def test_user_defined_convention_by_hand(backend):
    # Conv2d(3, 8, 3, bias) on 3x10x10 -> 8x8x8: macs 512*27 = 13824, bias_out 512, out 512
    # ReLU: in 512, out 512. Convention: conv = macs + 2*bias_out, ReLU = 3*in + one
    m = cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU())
    mine = Convention("mine", {"Conv2d": {"macs": 1, "bias_out": 2}, "ReLU": {"in": 3, "one": 1}})
    r = cc.count(m, (3, 10, 10), conventions=(mine, "torchvision"), backend=backend)
    assert r.conventions["mine"] == 13824 + 2 * 512 + 3 * 512 + 1
    assert r.conventions["torchvision"] == r.macs == 13824
    # kvol_out: MaxPool2d(2) on 8x8x8 -> 8x4x4: 128 outputs * 4 = 512
    p = Convention("pool", {"MaxPool2d": {"kvol_out": 1}})
    r = cc.count(cc.Sequential(cc.MaxPool2d(2)), (8, 8, 8), conventions=(p,), backend=backend)
    assert r.conventions["pool"] == 512


def test_convention_errors_are_clear():
    with pytest.raises(ValueError, match="unknown convention"):
        cc.count(cc.Sequential(cc.ReLU()), (3,), conventions=("nope",))
    with pytest.raises(ValueError, match="unknown layer type"):
        Convention("x", {"Conv9d": {"macs": 1}})
    with pytest.raises(ValueError, match="unknown term"):
        Convention("x", {"Conv2d": {"mac": 1}})


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "densenet121", "inception_v3"])
def test_torchvision_convention_is_the_published_gflops(name):
    r = cc.count(getattr(cc.zoo, name)(), conventions=("torchvision", "flopcounter", "ofa"))
    assert r.conventions["torchvision"] == r.conventions["ofa"] == r.macs
    assert r.conventions["flopcounter"] == 2 * r.macs


def test_flopcounter_convention_equals_flopcountermode():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    nn = torch.nn
    tm = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                       nn.ConvTranspose2d(16, 8, 2, stride=2, groups=2), nn.Conv1d(8, 4, 1) if False else nn.Identity(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    cm = cc.Sequential(cc.Conv2d(3, 16, 3, padding=1), cc.BatchNorm2d(16), cc.ReLU(), cc.MaxPool2d(2),
                       cc.ConvTranspose2d(16, 8, 2, stride=2, groups=2), cc.Identity(),
                       cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(8, 10))
    fc = FlopCounterMode(display=False)
    with fc, torch.no_grad():
        tm(torch.randn(2, 3, 16, 16))
    assert cc.count(cm, (3, 16, 16), batch_size=2, conventions=("flopcounter",)).conventions["flopcounter"] \
        == fc.get_total_flops()


def test_nb201_convention_equals_the_independent_computation():
    space = cc.spaces.NB201("cifar10")
    idx = np.array([0, 11, 284, 1000, 15624])
    packed = space.pack(idx)
    conv = cc.count(packed, conventions=("nb201",)).conventions["nb201"]
    assert np.array_equal(conv, cc.spaces.nb201.nb201_flops(packed))


def test_core_and_reference_agree_on_random_weights():
    rng = np.random.default_rng(5)
    arrays = G.assemble([G.gen_arch(G.NpRng(s)) for s in range(400)])
    u = rng.random(len(arrays["layers"]))  # rows that read the functional or the other-calls third
    arrays["layers"][u < 0.3, F.FLAGS] |= F.F_FUNCTIONAL
    arrays["layers"][(u >= 0.3) & (u < 0.5), F.FLAGS] |= F.F_CALL
    packed = cc.Packed.from_arrays(**arrays)
    w = rng.integers(-3, 4, size=(3, 3 * F.N_OPS, N_TERMS)).astype(np.int64)
    w[2] = rng.integers(0, 2**40, size=(3 * F.N_OPS, N_TERMS))  # large weights: OVERFLOW paths too
    core = run_core(packed.arrays(), conv_weights=w, n_threads=1)
    ref = run_reference(packed.arrays(), conv_weights=w)
    for k in ("conventions", "error", "error_layer", "params", "macs"):
        assert np.array_equal(core[k], ref[k]), k
    assert (core["error"] == 0).mean() > 0.1


def test_functional_rows_read_the_functional_table(backend):
    # F.relu after Conv2d(3, 8, 3) on 3x10x10: ReLU in = 8*8*8 = 512. A module ReLU weighs 2 per
    # input element, a functional one 1 (ptflops' hook + patched F.relu vs F.relu alone); a
    # convention without a functional table weighs both alike; thop sees no functional call.
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, bias=False)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return torch.nn.functional.relu(self.act(self.conv(x)))

    model = cc.from_torch(Net(), (3, 10, 10))
    flags = cc.pack([model]).arrays()["layers"][:, F.FLAGS]
    assert [bool(f & F.F_FUNCTIONAL) for f in flags] == [False, False, True]
    mine = Convention("mine", {"ReLU": {"in": 2}}, functional={"ReLU": {"in": 1}})
    same = Convention("same", {"ReLU": {"in": 2}})
    r = cc.count(model, conventions=(mine, same, "thop", "ptflops"), backend=backend)
    assert r.conventions["mine"] == 2 * 512 + 512
    assert r.conventions["same"] == 2 * 512 + 2 * 512
    assert r.conventions["thop"] == r.macs == 512 * 27
    assert r.conventions["ptflops"] == 512 * 27 + 2 * 512 + 512


def test_upsample_terms_by_hand(backend):
    # Upsample on 2x3x3 (batch 1): scale 2 bilinear -> 2x6x6 (72 out, 18 in); size (4, 5) nearest
    # -> 2x4x5 (40 out, up_size 4*5 = 20); size 7 (one value) bicubic -> 2x7x7 (98, up_size 7)
    terms = ("up_nearest", "up_linear", "up_bilinear", "up_bicubic", "up_trilinear", "up_size",
             "up_scale_in", "up_scale_out")
    ups = [cc.Upsample(scale_factor=2, mode="bilinear"), cc.Upsample(size=(4, 5)),
           cc.Upsample(size=7, mode="bicubic")]
    want = [dict(up_bilinear=72, up_scale_in=18, up_scale_out=72), dict(up_nearest=40, up_size=20),
            dict(up_bicubic=98, up_size=7)]
    for up, w in zip(ups, want):
        convs = [Convention(t, {"Upsample": {t: 1}}) for t in terms]
        r = cc.count(cc.Sequential(up), (2, 3, 3), conventions=convs, backend=backend)
        assert r.conventions == {t: w.get(t, 0) for t in terms}, up


def test_avg_window_and_batchstats_terms_by_hand(backend):
    # AvgPool2d(3, 2, ceil_mode=True) on 4x8x7 (batch 1): rows ceil(5/2)+1 = 4 windows starting at
    # 0, 2, 4, 6: the last covers 6..8 of 0..7, so 2 of 3 -> 3+3+3+2 = 11; columns ceil(4/2)+1 = 3
    # starting at 0, 2, 4, the last covers 4..6 of 0..6: 3+3+3 = 9. avg_window = 4 channels * 11 * 9
    p = Convention("p", {"AvgPool2d": {"avg_window": 1}})
    r = cc.count(cc.Sequential(cc.AvgPool2d(3, 2, ceil_mode=True)), (4, 8, 7), conventions=(p,), backend=backend)
    assert r.conventions["p"] == 4 * 11 * 9
    # with padding 1: padded rows -1..8 (10 wide), windows at -1, 1, 3, 5, 7 -> the last covers 7..9: 2
    r = cc.count(cc.Sequential(cc.AvgPool2d(3, 2, padding=1, ceil_mode=True)), (4, 8, 7), conventions=(p,),
                 backend=backend)
    assert r.conventions["p"] == 4 * (3 + 3 + 3 + 3 + 2) * (3 + 3 + 3 + 3)
    # batchstats_in: only a BatchNorm without running stats (2 * 4 * 3 = 24 input elements)
    b = Convention("b", {"BatchNorm1d": {"batchstats_in": 1}})
    got = [cc.count(cc.Sequential(cc.BatchNorm1d(4, track_running_stats=t)), (4, 3), batch_size=2,
                    conventions=(b,), backend=backend).conventions["b"] for t in (True, False)]
    assert got == [0, 24]


def test_functional_table_errors_are_clear():
    with pytest.raises(ValueError, match="unknown layer type 'relu' in functional"):
        Convention("x", {}, functional={"relu": {"in": 1}})
    with pytest.raises(TypeError, match="must be an int"):
        Convention("x", {}, functional={"ReLU": {"in": 1.5}})


def test_conventions_do_not_change_the_other_counts():
    packed = cc.pack([cc.zoo.resnet18(), cc.zoo.squeezenet1_0()])
    a, b = cc.count(packed), cc.count(packed, conventions=tuple(NAMED))
    for k in ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_bytes", "error"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert np.array_equal(b.conventions["cnncore"], b.flops)
    assert set(TERMS) == set(cc.conventions.TERMS)


def _peer_models():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                       nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)), (2, 3, 18, 18)),
        (nn.Sequential(nn.ConvTranspose2d(4, 8, 2, stride=2), nn.PReLU(), nn.Upsample(scale_factor=2),
                       nn.Conv2d(8, 4, 1), nn.Hardswish(), nn.Sigmoid()), (1, 4, 5, 5)),
        (nn.Sequential(nn.Conv1d(3, 8, 3), nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Softmax(dim=1),
                       nn.Dropout()), (2, 3, 10)),
        (nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.BatchNorm1d(16), nn.Linear(16, 4, bias=False)),
         (3, 3, 4, 4)),
    ]
    return torch, cases


@pytest.mark.parametrize("tool", ["thop", "torchinfo", "fvcore"])
def test_thop_and_torchinfo_conventions_equal_the_real_tools(tool):
    """The named table gives exactly the number the installed tool prints, on small models that
    cover the layer types it counts and on ResNet-18 / MobileNetV2 (torchvision's layouts; its
    functional F.adaptive_avg_pool2d is a row flagged functional, which thop does not see)."""
    torch, cases = _peer_models()
    mod = pytest.importorskip(tool)
    import sys, warnings
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import _torch_models
    cases = cases + [(_torch_models.resnet18(), (1, 3, 224, 224)),
                     (_torch_models.mobilenet_v2(), (1, 3, 224, 224))]
    for m, shape in cases:
        m.eval()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if tool == "thop":
                want = int(mod.profile(m, inputs=(torch.randn(*shape),), verbose=False)[0])
            elif tool == "fvcore":
                import logging
                logging.disable(logging.WARNING)  # fvcore logs every operator it skips
                try:
                    from fvcore.nn import FlopCountAnalysis
                    fca = FlopCountAnalysis(m, torch.randn(*shape))
                    fca.unsupported_ops_warnings(False)
                    fca.uncalled_modules_warnings(False)
                    want = int(fca.total())
                finally:
                    logging.disable(logging.NOTSET)
            else:
                want = int(mod.summary(m, input_size=shape, verbose=0).total_mult_adds)
        model = cc.from_torch(m, shape[1:], batch_size=shape[0])
        got = cc.count(model, conventions=(tool,)).conventions[tool]
        assert got == want, (tool, type(m).__name__, shape, got, want)
