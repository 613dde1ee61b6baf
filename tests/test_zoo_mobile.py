"""cnncore.zoo mobile builders against torchvision's published numbers and hand-built torch.nn twins.

Published truth: torchvision's per-weights metadata, `num_params` and `GFLOPS` (`_ops` in the source),
as listed on the builder pages
    https://pytorch.org/vision/main/models/generated/torchvision.models.<builder>.html
(e.g. .../torchvision.models.mobilenet_v2.html, .../torchvision.models.efficientnet_b0.html,
.../torchvision.models.regnet_y_400mf.html) and in the weights enums of torchvision's sources
https://github.com/pytorch/vision/tree/main/torchvision/models (mobilenetv2.py, mobilenetv3.py,
mnasnet.py, efficientnet.py, shufflenetv2.py, regnet.py). torchvision computes GFLOPS as the conv +
linear multiply-accumulates at the weights' crop size (FlopCounterMode / 2), in units of 1e9, rounded
to 3 decimals -- so the test is round(macs / 1e9, 3) == GFLOPS.

Notes on the numbers:
- shufflenet_v2_x1_0: the source's `_ops` is 0.145 (the summary table shows 2 decimals, 0.14).
- efficientnet_b2: torchvision's weights use crop_size=288 (not the paper's 260); 1.088 GFLOPS is at 288.
- regnet_y_128gf: only SWAG weights; the 224x224 ones (IMAGENET1K_SWAG_LINEAR_V1) list 127.518 GFLOPS.
Every builder has published weights, so every one is checked against a published pair.
"""
import functools

import pytest

import cnncore as cc
from cnncore import reference
from cnncore.zoo import mobile

# builder: (num_params, GFLOPS, input resolution of the published weights)
PUBLISHED = {
    "mobilenet_v2": (3504872, 0.301, 224),
    "mobilenet_v3_large": (5483032, 0.217, 224),
    "mobilenet_v3_small": (2542856, 0.057, 224),
    "mnasnet0_5": (2218512, 0.104, 224),
    "mnasnet0_75": (3170208, 0.215, 224),
    "mnasnet1_0": (4383312, 0.314, 224),
    "mnasnet1_3": (6282256, 0.526, 224),
    "efficientnet_b0": (5288548, 0.386, 224),
    "efficientnet_b1": (7794184, 0.687, 240),
    "efficientnet_b2": (9109994, 1.088, 288),
    "efficientnet_b3": (12233232, 1.827, 300),
    "efficientnet_b4": (19341616, 4.394, 380),
    "efficientnet_b5": (30389784, 10.266, 456),
    "efficientnet_b6": (43040704, 19.068, 528),
    "efficientnet_b7": (66347960, 37.746, 600),
    "efficientnet_v2_s": (21458488, 8.366, 384),
    "efficientnet_v2_m": (54139356, 24.582, 480),
    "efficientnet_v2_l": (118515272, 56.08, 480),
    "shufflenet_v2_x0_5": (1366792, 0.04, 224),
    "shufflenet_v2_x1_0": (2278604, 0.145, 224),
    "shufflenet_v2_x1_5": (3503624, 0.296, 224),
    "shufflenet_v2_x2_0": (7393996, 0.583, 224),
    "regnet_y_400mf": (4344144, 0.402, 224),
    "regnet_y_800mf": (6432512, 0.834, 224),
    "regnet_y_1_6gf": (11202430, 1.612, 224),
    "regnet_y_3_2gf": (19436338, 3.176, 224),
    "regnet_y_8gf": (39381472, 8.473, 224),
    "regnet_y_16gf": (83590140, 15.912, 224),
    "regnet_y_32gf": (145046770, 32.28, 224),
    "regnet_y_128gf": (644812894, 127.518, 224),
    "regnet_x_400mf": (5495976, 0.414, 224),
    "regnet_x_800mf": (7259656, 0.8, 224),
    "regnet_x_1_6gf": (9190136, 1.603, 224),
    "regnet_x_3_2gf": (15296552, 3.177, 224),
    "regnet_x_8gf": (39572648, 7.995, 224),
    "regnet_x_16gf": (54278536, 15.941, 224),
    "regnet_x_32gf": (107811560, 31.736, 224),
}


def _count(model, backend):
    return cc.count(model) if backend == "core" else reference.count(model)


def test_all_builders_exported():
    assert sorted(mobile.__all__) == sorted(PUBLISHED)
    for name in PUBLISHED:
        assert getattr(cc.zoo, name) is getattr(mobile, name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_gflops(name, backend):
    params, gflops, res = PUBLISHED[name]
    model = getattr(cc.zoo, name)()
    assert isinstance(model, cc.Model)
    assert model.input_shapes == [(3, res, res)]
    r = _count(model, backend)
    assert r.params == params
    assert round(r.macs / 1e9, 3) == gflops
    assert r.output_shape == (1, 1000)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "efficientnet_b0",
                                  "efficientnet_v2_s", "shufflenet_v2_x0_5", "regnet_x_400mf", "regnet_y_400mf"])
def test_num_classes(name):
    base = cc.count(getattr(cc.zoo, name)())
    r = cc.count(getattr(cc.zoo, name)(num_classes=10))
    assert r.output_shape == (1, 10)
    # only the last Linear changes: (in_features + 1) * num_classes parameters
    last = r.layers[-1]
    assert last.type == "Linear" and last.params % 10 == 0
    assert base.params - r.params == (last.params // 10) * 990


def test_weights_are_refused():
    with pytest.raises(ValueError):
        cc.zoo.mobilenet_v2(weights="IMAGENET1K_V1")


def test_row_names_follow_torchvision():
    names = {r.name for r in cc.count(cc.zoo.mobilenet_v2()).layers}
    assert {"features.0.0", "features.1.conv.0.0", "features.2.conv.0.0", "features.2.conv.2",
            "features.18.0", "classifier.1"} <= names
    names = {r.name for r in cc.count(cc.zoo.mobilenet_v3_large()).layers}
    assert {"features.4.block.2.fc1", "features.4.block.2.scale_activation", "features.16.0",
            "classifier.0", "classifier.3"} <= names
    names = {r.name for r in cc.count(cc.zoo.efficientnet_b0()).layers}
    assert {"features.1.0.block.0.0", "features.1.0.block.1.fc1", "features.2.0.block.3.1",
            "features.8.0", "classifier.1"} <= names
    names = {r.name for r in cc.count(cc.zoo.efficientnet_v2_s()).layers}
    assert {"features.1.0.block.0.0", "features.2.0.block.1.0", "features.4.0.block.2.fc2"} <= names
    names = {r.name for r in cc.count(cc.zoo.mnasnet1_0()).layers}
    assert {"layers.0", "layers.7", "layers.8.0.layers.0", "layers.13.0.layers.7", "layers.14",
            "classifier.1"} <= names
    names = {r.name for r in cc.count(cc.zoo.shufflenet_v2_x1_0()).layers}
    assert {"conv1.0", "maxpool", "stage2.0.branch1.0", "stage2.0.branch2.7", "stage4.3.branch2.0",
            "conv5.0", "fc"} <= names
    names = {r.name for r in cc.count(cc.zoo.regnet_y_400mf()).layers}
    assert {"stem.0", "trunk_output.block1.block1-0.proj.0", "trunk_output.block1.block1-0.f.a.0",
            "trunk_output.block1.block1-0.f.se.fc1", "trunk_output.block4.block4-0.f.c.1", "fc"} <= names


# ---------------------------------------------------------------------------------------------
# RegNet: the per-stage parameters against torchvision's BlockParams.from_init_params in torch
REGNET_INIT = {
    "regnet_y_400mf": dict(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25),
    "regnet_y_800mf": dict(depth=14, w_0=56, w_a=38.84, w_m=2.4, group_width=16, se_ratio=0.25),
    "regnet_y_1_6gf": dict(depth=27, w_0=48, w_a=20.71, w_m=2.65, group_width=24, se_ratio=0.25),
    "regnet_y_3_2gf": dict(depth=21, w_0=80, w_a=42.63, w_m=2.66, group_width=24, se_ratio=0.25),
    "regnet_y_8gf": dict(depth=17, w_0=192, w_a=76.82, w_m=2.19, group_width=56, se_ratio=0.25),
    "regnet_y_16gf": dict(depth=18, w_0=200, w_a=106.23, w_m=2.48, group_width=112, se_ratio=0.25),
    "regnet_y_32gf": dict(depth=20, w_0=232, w_a=115.89, w_m=2.53, group_width=232, se_ratio=0.25),
    "regnet_y_128gf": dict(depth=27, w_0=456, w_a=160.83, w_m=2.52, group_width=264, se_ratio=0.25),
    "regnet_x_400mf": dict(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16),
    "regnet_x_800mf": dict(depth=16, w_0=56, w_a=35.73, w_m=2.28, group_width=16),
    "regnet_x_1_6gf": dict(depth=18, w_0=80, w_a=34.01, w_m=2.25, group_width=24),
    "regnet_x_3_2gf": dict(depth=25, w_0=88, w_a=26.31, w_m=2.25, group_width=48),
    "regnet_x_8gf": dict(depth=23, w_0=80, w_a=49.56, w_m=2.88, group_width=120),
    "regnet_x_16gf": dict(depth=22, w_0=216, w_a=55.59, w_m=2.1, group_width=128),
    "regnet_x_32gf": dict(depth=23, w_0=320, w_a=69.86, w_m=2.0, group_width=168),
}


def _torch_block_params(depth, w_0, w_a, w_m, group_width, bottleneck_multiplier=1.0, se_ratio=None):
    """torchvision.models.regnet.BlockParams.from_init_params, transcribed (torch arithmetic)."""
    import math
    torch = pytest.importorskip("torch")
    QUANT = 8
    widths_cont = torch.arange(depth) * w_a + w_0
    block_capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, block_capacity), QUANT)) * QUANT).int().tolist()
    num_stages = len(set(block_widths))
    split_helper = zip(block_widths + [0], [0] + block_widths, block_widths + [0], [0] + block_widths)
    splits = [w != wp or r != rp for w, wp, r, rp in split_helper]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
    stage_depths = torch.diff(torch.tensor([d for d, t in enumerate(splits) if t])).int().tolist()
    bms = [bottleneck_multiplier] * num_stages
    widths = [int(w * b) for w, b in zip(stage_widths, bms)]
    gws = [min(g, w_bot) for g, w_bot in zip([group_width] * num_stages, widths)]
    ws_bot = [mobile._make_divisible(w_bot, g) for w_bot, g in zip(widths, gws)]
    stage_widths = [int(w_bot / b) for w_bot, b in zip(ws_bot, bms)]
    return stage_depths, stage_widths, gws


@pytest.mark.parametrize("name", sorted(REGNET_INIT))
def test_regnet_block_params_match_torch(name):
    ours = mobile._regnet_block_params(**REGNET_INIT[name])
    assert (ours[0], ours[1], ours[2]) == _torch_block_params(**REGNET_INIT[name])


# ---------------------------------------------------------------------------------------------
# The same graphs in plain torch.nn, written by hand from torchvision's source
def _torch_make_divisible(v, divisor, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _torch_mobilenet_v2(width_mult=1.0, num_classes=1000):
    """torchvision.models.mobilenetv2.MobileNetV2, transcribed."""
    from torch import nn
    import torch

    def cna(i, o, k=3, s=1, g=1):
        return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o),
                             nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden = int(round(inp * expand_ratio))
            self.use_res_connect = stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(cna(inp, hidden, 1))
            layers += [cna(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                       nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                       [6, 160, 3, 2], [6, 320, 1, 1]]
            input_channel = _torch_make_divisible(32 * width_mult, 8)
            self.last_channel = _torch_make_divisible(1280 * max(1.0, width_mult), 8)
            features = [cna(3, input_channel, s=2)]
            for t, c, n, s in setting:
                output_channel = _torch_make_divisible(c * width_mult, 8)
                for i in range(n):
                    features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                    input_channel = output_channel
            features.append(cna(input_channel, self.last_channel, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def _torch_shufflenet_v2(stages_repeats, stages_out_channels, num_classes=1000):
    """torchvision.models.shufflenetv2.ShuffleNetV2, transcribed."""
    from torch import nn
    import torch

    def channel_shuffle(x, groups):
        b, c, h, w = x.size()
        x = x.view(b, groups, c // groups, h, w)
        return torch.transpose(x, 1, 2).contiguous().view(b, -1, h, w)

    def dw(i, o, k, s=1, p=0):
        return nn.Conv2d(i, o, k, s, p, bias=False, groups=i)

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride):
            super().__init__()
            self.stride = stride
            bf = oup // 2
            if stride > 1:
                self.branch1 = nn.Sequential(dw(inp, inp, 3, stride, 1), nn.BatchNorm2d(inp),
                                             nn.Conv2d(inp, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf),
                                             nn.ReLU(inplace=True))
            else:
                self.branch1 = nn.Sequential()
            self.branch2 = nn.Sequential(
                nn.Conv2d(inp if stride > 1 else bf, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf),
                nn.ReLU(inplace=True), dw(bf, bf, 3, stride, 1), nn.BatchNorm2d(bf),
                nn.Conv2d(bf, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            c = stages_out_channels[0]
            self.conv1 = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            inp = c
            for name, repeats, oup in zip(["stage2", "stage3", "stage4"], stages_repeats, stages_out_channels[1:]):
                seq = [InvertedResidual(inp, oup, 2)] + [InvertedResidual(oup, oup, 1) for _ in range(repeats - 1)]
                setattr(self, name, nn.Sequential(*seq))
                inp = oup
            c = stages_out_channels[-1]
            self.conv5 = nn.Sequential(nn.Conv2d(inp, c, 1, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            self.fc = nn.Linear(c, num_classes)

        def forward(self, x):
            x = self.maxpool(self.conv1(x))
            x = self.stage4(self.stage3(self.stage2(x)))
            x = self.conv5(x).mean([2, 3])
            return self.fc(x)

    return ShuffleNetV2()


@functools.lru_cache(maxsize=None)
def _torch_counts(make, args, res=224):
    """(params, buffers, output shape, FlopCounterMode total // 2) of a torch.nn twin, run on the
    meta device (shapes and flop counts without arithmetic)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"):
        net = make(*args).eval()
    params = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for b in net.buffers())
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = net(torch.zeros(1, 3, res, res, device="meta"))
    return params, buffers, tuple(out.shape), fc.get_total_flops() // 2


@pytest.mark.parametrize("width_mult", [1.0, 0.5, 1.4])
def test_mobilenet_v2_matches_torch(width_mult, backend):
    pytest.importorskip("torch")
    want = _torch_counts(_torch_mobilenet_v2, (width_mult,))
    r = _count(cc.zoo.mobilenet_v2(width_mult=width_mult), backend)
    assert (r.params, r.buffers, r.output_shape, r.macs) == want


@pytest.mark.parametrize("name,repeats,channels", [
    ("shufflenet_v2_x1_0", [4, 8, 4], [24, 116, 232, 464, 1024]),
    ("shufflenet_v2_x0_5", [4, 8, 4], [24, 48, 96, 192, 1024]),
])
def test_shufflenet_v2_matches_torch(name, repeats, channels, backend):
    pytest.importorskip("torch")
    want = _torch_counts(_torch_shufflenet_v2, (tuple(repeats), tuple(channels)))
    r = _count(getattr(cc.zoo, name)(), backend)
    assert (r.params, r.buffers, r.output_shape, r.macs) == want


def test_builders_are_fast():
    import time
    t = time.perf_counter()
    for name in PUBLISHED:
        getattr(cc.zoo, name)()
    assert time.perf_counter() - t < 20.0


@pytest.mark.parametrize("zoo_name,make,args", [
    ("mobilenet_v2", _torch_mobilenet_v2, (1.0,)),
    ("shufflenet_v2_x0_5", _torch_shufflenet_v2, ((4, 8, 4), (24, 48, 96, 192, 1024))),
])
def test_conventions_equal_the_traced_torch_twin(zoo_name, make, args):
    """The zoo marks the rows torchvision's forward computes by function calls (MobileNetV2's
    F.adaptive_avg_pool2d, ShuffleNetV2's x.mean), as cc.from_torch marks them: every named
    convention (each tested against its tool on traced models) gives the zoo model the twin's number."""
    pytest.importorskip("torch")
    names = sorted(cc.conventions.NAMED)
    zoo = cc.count(getattr(cc.zoo, zoo_name)(), conventions=names).conventions
    traced = cc.count(cc.from_torch(make(*args).eval(), (3, 224, 224)), conventions=names).conventions
    assert zoo == traced
