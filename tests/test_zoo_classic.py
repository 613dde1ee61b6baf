"""cc.zoo classic models against torchvision's published numbers (and, where torch is installed,
against the same graphs written in plain torch.nn).

Truth: torchvision's published `num_params` and `GFLOPS` of each model's ImageNet weights, as listed
on https://pytorch.org/vision/stable/models.html ("Table of all available classification weights")
and on each builder's page, e.g.
https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html; the same
numbers are the `num_params` / `_ops` entries of the Weights metas in torchvision's source
(github.com/pytorch/vision, torchvision/models/{alexnet,vgg,resnet,densenet,squeezenet,googlenet,
inception}.py). torchvision's GFLOPS are conv + linear multiply-accumulates of one 224x224 image
(inception_v3: 299x299) in eval mode, to 3 decimals; cnncore's `macs` is the same quantity.
"""
import time
from collections import OrderedDict

import pytest

import cnncore as cc
from cnncore.zoo import classic

# name: (num_params, GFLOPS) as published by torchvision (see the module docstring)
PUBLISHED = {
    "alexnet": (61_100_840, 0.714),
    "vgg11": (132_863_336, 7.609),
    "vgg11_bn": (132_868_840, 7.609),
    "vgg13": (133_047_848, 11.308),
    "vgg13_bn": (133_053_736, 11.308),
    "vgg16": (138_357_544, 15.47),
    "vgg16_bn": (138_365_992, 15.47),
    "vgg19": (143_667_240, 19.632),
    "vgg19_bn": (143_678_248, 19.632),
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.23),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.46),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
    "squeezenet1_0": (1_248_424, 0.819),
    "squeezenet1_1": (1_235_496, 0.349),
    "googlenet": (6_624_904, 1.498),  # published model: aux heads dropped
    "inception_v3": (27_161_264, 5.713),  # published model: AuxLogits present, not called in eval
}


def test_every_builder_has_a_published_pair():
    assert sorted(classic.__all__) == sorted(PUBLISHED)
    for name in classic.__all__:
        assert getattr(cc.zoo, name) is getattr(classic, name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_gflops(name, backend):
    params, gflops = PUBLISHED[name]
    m = getattr(cc.zoo, name)()
    r = cc.count(m, backend=backend)
    assert r.params == params
    assert round(r.macs / 1e9, 3) == gflops
    assert r.output_shape == (1, 1000)
    side = 299 if name == "inception_v3" else 224
    assert r.input_shape == (1, 3, side, side)
    assert m.input_shapes == [(3, side, side)]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_builds_fast(name):
    build = getattr(cc.zoo, name)
    build()  # warm
    best = min(_timed(build) for _ in range(3))
    assert best < 0.25, f"{name} took {best * 1e3:.0f} ms to build"  # ~50 ms or less on an idle machine


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------
# Row names follow torchvision's module names
def _names(m):
    return [row.name for row in cc.count(m).layers]


def test_resnet_row_names():
    names = _names(cc.zoo.resnet50())
    for n in ("conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.downsample.0",
              "layer1.0.downsample.1", "layer2.0.conv2", "layer2.0.downsample.0", "layer4.2.bn3",
              "layer1.0.add", "layer1.0.relu_2", "avgpool", "flatten", "fc"):
        assert n in names
    assert len(set(names)) == len(names)
    assert names[-1] == "fc"


def test_vgg_alexnet_squeezenet_densenet_inception_row_names():
    assert {"features.0", "features.28", "classifier.0", "classifier.6"} <= set(_names(cc.zoo.vgg16()))
    assert {"features.0", "features.12", "avgpool", "classifier.1", "classifier.6"} <= set(_names(cc.zoo.alexnet()))
    assert {"features.3.squeeze", "features.3.expand3x3", "features.12.cat", "classifier.1"} <= set(
        _names(cc.zoo.squeezenet1_0()))
    assert {"features.conv0", "features.denseblock1.denselayer1.conv1", "features.denseblock4.denselayer16.conv2",
            "features.transition3.conv", "features.norm5", "classifier"} <= set(_names(cc.zoo.densenet121()))
    assert {"Conv2d_1a_3x3.conv", "Mixed_5b.branch5x5_2.bn", "Mixed_7c.branch3x3dbl_3b.conv", "AuxLogits.conv1.conv",
            "AuxLogits.fc", "fc"} <= set(_names(cc.zoo.inception_v3()))
    assert {"conv1.conv", "inception3a.branch2.1.conv", "inception5b.branch4.1.bn", "fc"} <= set(
        _names(cc.zoo.googlenet()))
    for build in (cc.zoo.vgg16_bn, cc.zoo.densenet121, cc.zoo.inception_v3, cc.zoo.googlenet, cc.zoo.squeezenet1_1):
        names = _names(build())
        assert len(set(names)) == len(names)


# ---------------------------------------------------------------------------------------------
# Auxiliary heads: constructed, not called in eval -> params, no MACs
def test_inception_v3_aux_logits_params_only():
    r = cc.count(cc.zoo.inception_v3())
    aux = [row for row in r.layers if row.name.startswith("AuxLogits.")]
    # conv0 768*128 + bn 256; conv1 128*768*25 + bn 1536; fc 768*1000 + 1000
    assert sum(row.params for row in aux) == 98_304 + 256 + 2_457_600 + 1_536 + 769_000
    assert all(row.macs == 0 for row in aux)
    r0 = cc.count(cc.zoo.inception_v3(aux_logits=False))
    assert r.params - r0.params == 3_326_696
    assert r.macs == r0.macs


def test_googlenet_aux_logits():
    r0 = cc.count(cc.zoo.googlenet())
    r1 = cc.count(cc.zoo.googlenet(aux_logits=True))
    # aux1: conv 512*128 + bn 256 + fc1 2048*1024+1024 + fc2 1024*1000+1000 = 3,188,968
    # aux2: the same with 528 input channels = 3,191,016
    assert r1.params - r0.params == 3_188_968 + 3_191_016
    assert r1.params == 13_004_888  # torchvision's weights-free googlenet() (aux heads kept)
    assert r1.macs == r0.macs
    assert all(row.macs == 0 for row in r1.layers if row.name.startswith(("aux1.", "aux2.")))


# ---------------------------------------------------------------------------------------------
# torchvision's arguments
def test_num_classes_and_width_arguments():
    r = cc.count(cc.zoo.resnet18(num_classes=10))
    assert r.output_shape == (1, 10)
    assert r.params == PUBLISHED["resnet18"][0] - 990 * 513
    assert cc.count(cc.zoo.resnet50(groups=32, width_per_group=4)).params == PUBLISHED["resnext50_32x4d"][0]
    assert cc.count(cc.zoo.resnet50(width_per_group=128)).params == PUBLISHED["wide_resnet50_2"][0]
    assert cc.count(cc.zoo.resnext50_32x4d(groups=32)).params == PUBLISHED["resnext50_32x4d"][0]
    with pytest.raises(ValueError, match="groups"):
        cc.zoo.resnext50_32x4d(groups=8)
    with pytest.raises(ValueError, match="BasicBlock"):
        cc.zoo.resnet18(groups=2)
    with pytest.raises(NotImplementedError):
        cc.zoo.resnet18(replace_stride_with_dilation=[False, False, True])
    # dilation keeps the params and the 28x28 map from layer2 on (8x more MACs in layer3/4)
    d = cc.count(cc.zoo.resnet50(replace_stride_with_dilation=[False, True, True]))
    assert d.params == PUBLISHED["resnet50"][0]
    assert [row.output_shape for row in d.layers if row.name == "layer4.2.relu_2"] == [(1, 2048, 28, 28)]
    assert cc.count(cc.zoo.densenet121(num_classes=5)).output_shape == (1, 5)
    assert cc.count(cc.zoo.densenet121(drop_rate=0.2)).params == PUBLISHED["densenet121"][0]
    assert cc.count(cc.zoo.squeezenet1_1(num_classes=7)).output_shape == (1, 7)
    assert cc.count(cc.zoo.vgg11_bn(num_classes=3, dropout=0.1)).output_shape == (1, 3)
    assert cc.count(cc.zoo.alexnet(num_classes=3)).output_shape == (1, 3)
    assert cc.count(cc.zoo.googlenet(num_classes=3)).output_shape == (1, 3)
    assert cc.count(cc.zoo.inception_v3(num_classes=3)).output_shape == (1, 3)


# ---------------------------------------------------------------------------------------------
# The same graphs in plain torch.nn (written by hand from torchvision's source: torchvision is not
# a dependency), compared on params, output shape and MACs = FlopCounterMode total // 2.
try:
    import torch
except ImportError:  # the torch comparison is skipped, the published numbers are still checked
    torch = None


def _torch_models():
    """Hand-written torch.nn transcriptions of torchvision's resnet18, squeezenet1_0, densenet121."""
    nn = torch.nn

    class _TorchBasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class _TorchResNet18(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inplanes = 64
            for i, planes in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                down = None
                if stride != 1 or inplanes != planes:
                    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                setattr(self, f"layer{i + 1}", nn.Sequential(_TorchBasicBlock(inplanes, planes, stride, down),
                                                             _TorchBasicBlock(planes, planes)))
                inplanes = planes
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    class _TorchFire(nn.Module):
        def __init__(self, inplanes, squeeze_planes, e1, e3):
            super().__init__()
            self.squeeze = nn.Conv2d(inplanes, squeeze_planes, 1)
            self.squeeze_activation = nn.ReLU(inplace=True)
            self.expand1x1 = nn.Conv2d(squeeze_planes, e1, 1)
            self.expand1x1_activation = nn.ReLU(inplace=True)
            self.expand3x3 = nn.Conv2d(squeeze_planes, e3, 3, padding=1)
            self.expand3x3_activation = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.squeeze_activation(self.squeeze(x))
            return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                              self.expand3x3_activation(self.expand3x3(x))], 1)

    class _TorchSqueezeNet1_0(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 7, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
                _TorchFire(96, 16, 64, 64), _TorchFire(128, 16, 64, 64), _TorchFire(128, 32, 128, 128),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                _TorchFire(256, 32, 128, 128), _TorchFire(256, 48, 192, 192), _TorchFire(384, 48, 192, 192),
                _TorchFire(384, 64, 256, 256), nn.MaxPool2d(3, 2, ceil_mode=True), _TorchFire(512, 64, 256, 256))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d((1, 1)))

        def forward(self, x):
            return torch.flatten(self.classifier(self.features(x)), 1)

    class _TorchDenseLayer(nn.Module):
        def __init__(self, nin, growth_rate, bn_size):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(nin)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(nin, bn_size * growth_rate, 1, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, 1, 1, bias=False)

        def forward(self, features):
            x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
            return self.conv2(self.relu2(self.norm2(x)))

    class _TorchDenseBlock(nn.ModuleDict):
        def __init__(self, num_layers, nin, bn_size, growth_rate):
            super().__init__()
            for i in range(num_layers):
                layer = _TorchDenseLayer(nin + i * growth_rate, growth_rate, bn_size)
                self.add_module(f"denselayer{i + 1}", layer)

        def forward(self, x):
            features = [x]
            for layer in self.values():
                features.append(layer(features))
            return torch.cat(features, 1)

    class _TorchDenseNet121(nn.Module):
        def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                     num_classes=1000):
            super().__init__()
            self.features = nn.Sequential(OrderedDict([
                ("conv0", nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(3, 2, 1))]))
            nf = num_init_features
            for i, n in enumerate(block_config):
                self.features.add_module(f"denseblock{i + 1}", _TorchDenseBlock(n, nf, bn_size, growth_rate))
                nf += n * growth_rate
                if i != len(block_config) - 1:
                    self.features.add_module(f"transition{i + 1}", nn.Sequential(OrderedDict([
                        ("norm", nn.BatchNorm2d(nf)), ("relu", nn.ReLU(inplace=True)),
                        ("conv", nn.Conv2d(nf, nf // 2, 1, 1, bias=False)), ("pool", nn.AvgPool2d(2, 2))])))
                    nf //= 2
            self.features.add_module("norm5", nn.BatchNorm2d(nf))
            self.classifier = nn.Linear(nf, num_classes)

        def forward(self, x):
            out = nn.functional.adaptive_avg_pool2d(nn.functional.relu(self.features(x)), (1, 1))
            return self.classifier(torch.flatten(out, 1))

    return {"resnet18": _TorchResNet18, "squeezenet1_0": _TorchSqueezeNet1_0, "densenet121": _TorchDenseNet121}


_TRUTH = {}


def _torch_truth(name, shape):
    """(module, params, buffers, output shape, MACs) of the eval-mode torch model, computed once."""
    if name not in _TRUTH:
        from torch.utils.flop_counter import FlopCounterMode
        module = _torch_models()[name]().eval()
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            out = module(torch.zeros((1,) + shape))
        _TRUTH[name] = (module, params, buffers, tuple(out.shape), fc.get_total_flops() // 2)
    return _TRUTH[name]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_0", "densenet121"])
def test_same_graph_in_torch(name, backend):
    m, params, buffers, out_shape, macs = _torch_truth(name, (3, 224, 224))
    r = cc.count(getattr(cc.zoo, name)(), backend=backend)
    assert r.params == params == PUBLISHED[name][0]
    assert r.buffers == buffers
    assert r.output_shape == out_shape
    assert r.macs == macs
    # every torch leaf module appears as a row of the same name and the same parameter count
    rows = {row.name: row for row in r.layers}
    for mod_name, mod in m.named_modules():
        if not list(mod.children()) and mod_name:
            assert mod_name in rows, mod_name
            assert rows[mod_name].params == sum(p.numel() for p in mod.parameters()), mod_name


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_0", "densenet121"])
def test_conventions_equal_the_traced_torch_twin(name):
    """The zoo marks the rows torchvision's forward computes by function calls (DenseNet's F.relu and
    F.adaptive_avg_pool2d), as cc.from_torch marks them: every named convention (thop, ptflops...,
    each tested against its tool on traced models) gives the zoo model the twin's number."""
    m = _torch_truth(name, (3, 224, 224))[0]
    names = sorted(cc.conventions.NAMED)
    zoo = cc.count(getattr(cc.zoo, name)(), conventions=names).conventions
    traced = cc.count(cc.from_torch(m, (3, 224, 224)), conventions=names).conventions
    assert zoo == traced
