"""Classic ImageNet CNNs, transcribed line by line from torchvision.models.

One builder per torchvision classification builder, with torchvision's name and its keyword
arguments (keyword-only, as in torchvision, without `weights`/`progress`). Each returns a cc.Model
whose cc.Input has the resolution torchvision's published weights use (224x224, inception_v3
299x299). Row names follow torchvision's module names (`features.0`, `layer2.0.downsample.0`,
`fc`, `classifier.1`, ...); functional calls of the forward (torch.cat, `out += identity`,
F.relu, F.avg_pool2d, torch.flatten) get torch.fx-style names under their module (`layer1.0.add`,
`Mixed_5b.cat`, `flatten`), and a module called several times gets `_1`, `_2` suffixes
(`layer1.0.relu_1`), as torch.fx names them.

With the published configuration every builder reproduces torchvision's published `num_params`
exactly and its `GFLOPS` (conv + linear MACs, 3 decimals):

    alexnet 61,100,840 / 0.714      resnet50 25,557,032 / 4.089     densenet121 7,978,856 / 2.834
    vgg16 138,357,544 / 15.47       googlenet 6,624,904 / 1.498     inception_v3 27,161,264 / 5.713

Auxiliary heads (googlenet's aux1/aux2, inception_v3's AuxLogits) exist in eval mode but are not
called; they are built on a branch no output depends on, so they count parameters and 0 MACs,
exactly like torch's `model.parameters()` and an eval-mode FLOP counter.
"""
from __future__ import annotations

from ..graph import Input, Model, add, cat, flatten
from ..layers import (AdaptiveAvgPool2d, AvgPool2d, as_call, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d,
                      ReLU)
from ..model import Sequential

__all__ = [
    "alexnet",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "squeezenet1_0", "squeezenet1_1",
    "googlenet", "inception_v3",
]


def _seq(*named):
    """cc.Sequential of (name, layer) pairs, in order."""
    return Sequential(dict(named))


def _overwrite(kwargs, name, value):
    """torchvision's _ovewrite_named_param: a builder-fixed argument may be repeated, not changed."""
    if name in kwargs and kwargs[name] != value:
        raise ValueError(f"The parameter '{name}' expected value {value} but got {kwargs[name]} instead.")
    kwargs[name] = value


# ---------------------------------------------------------------------------------------------
# AlexNet (torchvision/models/alexnet.py)
def alexnet(*, num_classes=1000, dropout=0.5):
    """torchvision.models.alexnet: the "one weird trick" variant torchvision ships (64-192-384-256-256)."""
    x = Input((3, 224, 224))
    features = _seq(
        ("0", Conv2d(3, 64, kernel_size=11, stride=4, padding=2)), ("1", ReLU(inplace=True)),
        ("2", MaxPool2d(kernel_size=3, stride=2)),
        ("3", Conv2d(64, 192, kernel_size=5, padding=2)), ("4", ReLU(inplace=True)),
        ("5", MaxPool2d(kernel_size=3, stride=2)),
        ("6", Conv2d(192, 384, kernel_size=3, padding=1)), ("7", ReLU(inplace=True)),
        ("8", Conv2d(384, 256, kernel_size=3, padding=1)), ("9", ReLU(inplace=True)),
        ("10", Conv2d(256, 256, kernel_size=3, padding=1)), ("11", ReLU(inplace=True)),
        ("12", MaxPool2d(kernel_size=3, stride=2)))
    classifier = _seq(
        ("0", Dropout(p=dropout)), ("1", Linear(256 * 6 * 6, 4096)), ("2", ReLU(inplace=True)),
        ("3", Dropout(p=dropout)), ("4", Linear(4096, 4096)), ("5", ReLU(inplace=True)),
        ("6", Linear(4096, num_classes)))
    y = features(x, name="features")
    y = AdaptiveAvgPool2d((6, 6))(y, name="avgpool")
    y = flatten(y, 1, name="flatten")
    y = classifier(y, name="classifier")
    return Model(x, y, name="alexnet")


# ---------------------------------------------------------------------------------------------
# VGG (torchvision/models/vgg.py)
_VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _vgg_features(cfg, batch_norm):
    """torchvision's make_layers: a Sequential numbered 0, 1, 2, ..."""
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(BatchNorm2d(v))
            layers.append(ReLU(inplace=True))
            in_channels = v
    return Sequential(*layers)


def _vgg(cfg, batch_norm, name, num_classes=1000, init_weights=True, dropout=0.5):
    x = Input((3, 224, 224))
    y = _vgg_features(_VGG_CFGS[cfg], batch_norm)(x, name="features")
    y = AdaptiveAvgPool2d((7, 7))(y, name="avgpool")
    y = flatten(y, 1, name="flatten")
    y = _seq(("0", Linear(512 * 7 * 7, 4096)), ("1", ReLU(True)), ("2", Dropout(p=dropout)),
             ("3", Linear(4096, 4096)), ("4", ReLU(True)), ("5", Dropout(p=dropout)),
             ("6", Linear(4096, num_classes)))(y, name="classifier")
    return Model(x, y, name=name)


def vgg11(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg11 (configuration "A")."""
    return _vgg("A", False, "vgg11", num_classes, init_weights, dropout)


def vgg11_bn(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg11_bn (configuration "A" with BatchNorm)."""
    return _vgg("A", True, "vgg11_bn", num_classes, init_weights, dropout)


def vgg13(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg13 (configuration "B")."""
    return _vgg("B", False, "vgg13", num_classes, init_weights, dropout)


def vgg13_bn(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg13_bn (configuration "B" with BatchNorm)."""
    return _vgg("B", True, "vgg13_bn", num_classes, init_weights, dropout)


def vgg16(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg16 (configuration "D")."""
    return _vgg("D", False, "vgg16", num_classes, init_weights, dropout)


def vgg16_bn(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg16_bn (configuration "D" with BatchNorm)."""
    return _vgg("D", True, "vgg16_bn", num_classes, init_weights, dropout)


def vgg19(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg19 (configuration "E")."""
    return _vgg("E", False, "vgg19", num_classes, init_weights, dropout)


def vgg19_bn(*, num_classes=1000, init_weights=True, dropout=0.5):
    """torchvision.models.vgg19_bn (configuration "E" with BatchNorm)."""
    return _vgg("E", True, "vgg19_bn", num_classes, init_weights, dropout)


# ---------------------------------------------------------------------------------------------
# ResNet, ResNeXt, Wide ResNet (torchvision/models/resnet.py; ResNet V1.5: stride on the 3x3)
def _conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                  bias=False, dilation=dilation)


def _conv1x1(in_planes, out_planes, stride=1):
    return Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _basic_block(x, p, inplanes, planes, stride, downsample, groups, base_width, dilation):
    if groups != 1 or base_width != 64:
        raise ValueError("BasicBlock only supports groups=1 and base_width=64")
    if dilation > 1:
        raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
    # the residual branch is one container call (fewer calls build faster); torch calls the block's
    # single ReLU module twice, which torch.fx names relu, relu_1
    out = _seq(("conv1", _conv3x3(inplanes, planes, stride)), ("bn1", BatchNorm2d(planes)),
               ("relu", ReLU(inplace=True)), ("conv2", _conv3x3(planes, planes)),
               ("bn2", BatchNorm2d(planes)))(x, name=p[:-1])
    identity = downsample(x, name=p + "downsample") if downsample is not None else x
    out = add(out, identity, name=p + "add")  # out += identity
    return ReLU(inplace=True)(out, name=p + "relu_1")


def _bottleneck(x, p, inplanes, planes, stride, downsample, groups, base_width, dilation):
    width = int(planes * (base_width / 64.0)) * groups
    out = _seq(("conv1", _conv1x1(inplanes, width)), ("bn1", BatchNorm2d(width)), ("relu", ReLU(inplace=True)),
               ("conv2", _conv3x3(width, width, stride, groups, dilation)), ("bn2", BatchNorm2d(width)),
               ("relu_1", ReLU(inplace=True)), ("conv3", _conv1x1(width, planes * 4)),
               ("bn3", BatchNorm2d(planes * 4)))(x, name=p[:-1])
    identity = downsample(x, name=p + "downsample") if downsample is not None else x
    out = add(out, identity, name=p + "add")  # out += identity
    return ReLU(inplace=True)(out, name=p + "relu_2")


_BLOCKS = {"basic": (_basic_block, 1), "bottleneck": (_bottleneck, 4)}


def _resnet(block, layers, name, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
            replace_stride_with_dilation=None, norm_layer=None):
    if norm_layer is not None:
        raise ValueError("norm_layer: only the default (BatchNorm2d) is supported")
    block_fn, expansion = _BLOCKS[block]
    if replace_stride_with_dilation is None:
        replace_stride_with_dilation = [False, False, False]
    if len(replace_stride_with_dilation) != 3:
        raise ValueError("replace_stride_with_dilation should be None "
                         f"or a 3-element tuple, got {replace_stride_with_dilation}")
    state = {"inplanes": 64, "dilation": 1}

    def make_layer(x, lname, planes, blocks, stride=1, dilate=False):
        downsample = None
        previous_dilation = state["dilation"]
        if dilate:
            state["dilation"] *= stride
            stride = 1
        if stride != 1 or state["inplanes"] != planes * expansion:
            downsample = _seq(("0", _conv1x1(state["inplanes"], planes * expansion, stride)),
                              ("1", BatchNorm2d(planes * expansion)))
        x = block_fn(x, f"{lname}.0.", state["inplanes"], planes, stride, downsample, groups, width_per_group,
                     previous_dilation)
        state["inplanes"] = planes * expansion
        for i in range(1, blocks):
            x = block_fn(x, f"{lname}.{i}.", state["inplanes"], planes, 1, None, groups, width_per_group,
                         state["dilation"])
        return x

    x = Input((3, 224, 224))
    y = Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)(x, name="conv1")
    y = BatchNorm2d(64)(y, name="bn1")
    y = ReLU(inplace=True)(y, name="relu")
    y = MaxPool2d(kernel_size=3, stride=2, padding=1)(y, name="maxpool")
    y = make_layer(y, "layer1", 64, layers[0])
    y = make_layer(y, "layer2", 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
    y = make_layer(y, "layer3", 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
    y = make_layer(y, "layer4", 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
    y = AdaptiveAvgPool2d((1, 1))(y, name="avgpool")
    y = flatten(y, 1, name="flatten")
    y = Linear(512 * expansion, num_classes)(y, name="fc")
    return Model(x, y, name=name)


def resnet18(**kwargs):
    """torchvision.models.resnet18: BasicBlock, [2, 2, 2, 2]. Keywords as torchvision's ResNet
    (num_classes=1000, zero_init_residual, groups=1, width_per_group=64, replace_stride_with_dilation)."""
    return _resnet("basic", [2, 2, 2, 2], "resnet18", **kwargs)


def resnet34(**kwargs):
    """torchvision.models.resnet34: BasicBlock, [3, 4, 6, 3]."""
    return _resnet("basic", [3, 4, 6, 3], "resnet34", **kwargs)


def resnet50(**kwargs):
    """torchvision.models.resnet50: Bottleneck, [3, 4, 6, 3]."""
    return _resnet("bottleneck", [3, 4, 6, 3], "resnet50", **kwargs)


def resnet101(**kwargs):
    """torchvision.models.resnet101: Bottleneck, [3, 4, 23, 3]."""
    return _resnet("bottleneck", [3, 4, 23, 3], "resnet101", **kwargs)


def resnet152(**kwargs):
    """torchvision.models.resnet152: Bottleneck, [3, 8, 36, 3]."""
    return _resnet("bottleneck", [3, 8, 36, 3], "resnet152", **kwargs)


def resnext50_32x4d(**kwargs):
    """torchvision.models.resnext50_32x4d: resnet50 with groups=32, width_per_group=4."""
    _overwrite(kwargs, "groups", 32)
    _overwrite(kwargs, "width_per_group", 4)
    return _resnet("bottleneck", [3, 4, 6, 3], "resnext50_32x4d", **kwargs)


def resnext101_32x8d(**kwargs):
    """torchvision.models.resnext101_32x8d: resnet101 with groups=32, width_per_group=8."""
    _overwrite(kwargs, "groups", 32)
    _overwrite(kwargs, "width_per_group", 8)
    return _resnet("bottleneck", [3, 4, 23, 3], "resnext101_32x8d", **kwargs)


def resnext101_64x4d(**kwargs):
    """torchvision.models.resnext101_64x4d: resnet101 with groups=64, width_per_group=4."""
    _overwrite(kwargs, "groups", 64)
    _overwrite(kwargs, "width_per_group", 4)
    return _resnet("bottleneck", [3, 4, 23, 3], "resnext101_64x4d", **kwargs)


def wide_resnet50_2(**kwargs):
    """torchvision.models.wide_resnet50_2: resnet50 with width_per_group=128."""
    _overwrite(kwargs, "width_per_group", 64 * 2)
    return _resnet("bottleneck", [3, 4, 6, 3], "wide_resnet50_2", **kwargs)


def wide_resnet101_2(**kwargs):
    """torchvision.models.wide_resnet101_2: resnet101 with width_per_group=128."""
    _overwrite(kwargs, "width_per_group", 64 * 2)
    return _resnet("bottleneck", [3, 4, 23, 3], "wide_resnet101_2", **kwargs)


# ---------------------------------------------------------------------------------------------
# DenseNet (torchvision/models/densenet.py, memory_efficient=False: each layer concatenates all
# previous features; checkpointing would change memory, not these counts)
def _densenet(growth_rate, block_config, num_init_features, name, bn_size=4, drop_rate=0.0, num_classes=1000,
              memory_efficient=False):
    x = Input((3, 224, 224))
    y = _seq(("conv0", Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
             ("norm0", BatchNorm2d(num_init_features)), ("relu0", ReLU(inplace=True)),
             ("pool0", MaxPool2d(kernel_size=3, stride=2, padding=1)))(x, name="features")
    num_features = num_init_features
    for i, num_layers in enumerate(block_config):
        bp = f"features.denseblock{i + 1}."
        features = [y]
        for j in range(num_layers):
            lp = f"{bp}denselayer{j + 1}."
            nin = num_features + j * growth_rate
            h = cat(features, 1, name=lp + "cat")  # _DenseLayer.bn_function: torch.cat(inputs, 1)
            body = [("norm1", BatchNorm2d(nin)), ("relu1", ReLU(inplace=True)),
                    ("conv1", Conv2d(nin, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)),
                    ("norm2", BatchNorm2d(bn_size * growth_rate)), ("relu2", ReLU(inplace=True)),
                    ("conv2", Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1,
                                     bias=False))]
            if drop_rate > 0:  # F.dropout: the identity in eval
                body.append(("dropout", Dropout(p=drop_rate)))
            h = _seq(*body)(h, name=lp[:-1])
            features.append(h)
        y = cat(features, 1, name=bp + "cat")
        num_features = num_features + num_layers * growth_rate
        if i != len(block_config) - 1:
            y = _seq(("norm", BatchNorm2d(num_features)), ("relu", ReLU(inplace=True)),
                     ("conv", Conv2d(num_features, num_features // 2, kernel_size=1, stride=1, bias=False)),
                     ("pool", AvgPool2d(kernel_size=2, stride=2)))(y, name=f"features.transition{i + 1}")
            num_features = num_features // 2
    y = BatchNorm2d(num_features)(y, name="features.norm5")
    y = as_call(ReLU(inplace=True))(y, name="relu")  # F.relu in DenseNet.forward
    y = as_call(AdaptiveAvgPool2d((1, 1)))(y, name="adaptive_avg_pool2d")
    y = flatten(y, 1, name="flatten")
    y = Linear(num_features, num_classes)(y, name="classifier")
    return Model(x, y, name=name)


def densenet121(**kwargs):
    """torchvision.models.densenet121: growth 32, blocks (6, 12, 24, 16), 64 initial features.
    Keywords as torchvision's DenseNet: bn_size=4, drop_rate=0, num_classes=1000, memory_efficient=False."""
    return _densenet(32, (6, 12, 24, 16), 64, "densenet121", **kwargs)


def densenet161(**kwargs):
    """torchvision.models.densenet161: growth 48, blocks (6, 12, 36, 24), 96 initial features."""
    return _densenet(48, (6, 12, 36, 24), 96, "densenet161", **kwargs)


def densenet169(**kwargs):
    """torchvision.models.densenet169: growth 32, blocks (6, 12, 32, 32), 64 initial features."""
    return _densenet(32, (6, 12, 32, 32), 64, "densenet169", **kwargs)


def densenet201(**kwargs):
    """torchvision.models.densenet201: growth 32, blocks (6, 12, 48, 32), 64 initial features."""
    return _densenet(32, (6, 12, 48, 32), 64, "densenet201", **kwargs)


# ---------------------------------------------------------------------------------------------
# SqueezeNet (torchvision/models/squeezenet.py)
def _fire(x, p, inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes):
    s = Conv2d(inplanes, squeeze_planes, kernel_size=1)(x, name=p + "squeeze")
    s = ReLU(inplace=True)(s, name=p + "squeeze_activation")
    e1 = Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)(s, name=p + "expand1x1")
    e1 = ReLU(inplace=True)(e1, name=p + "expand1x1_activation")
    e3 = Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)(s, name=p + "expand3x3")
    e3 = ReLU(inplace=True)(e3, name=p + "expand3x3_activation")
    return cat([e1, e3], 1, name=p + "cat")


def _squeezenet(version, name, num_classes=1000, dropout=0.5):
    x = Input((3, 224, 224))
    pool = lambda: MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # noqa: E731
    if version == "1_0":
        stem = [Conv2d(3, 96, kernel_size=7, stride=2), ReLU(inplace=True), pool()]
        plan = [(96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), "M", (256, 32, 128, 128),
                (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), "M", (512, 64, 256, 256)]
    elif version == "1_1":
        stem = [Conv2d(3, 64, kernel_size=3, stride=2), ReLU(inplace=True), pool()]
        plan = [(64, 16, 64, 64), (128, 16, 64, 64), "M", (128, 32, 128, 128), (256, 32, 128, 128), "M",
                (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]
    else:
        raise ValueError(f"Unsupported SqueezeNet version {version}: 1_0 or 1_1 expected")
    y = x
    for i, layer in enumerate(stem):
        y = layer(y, name=f"features.{i}")
    for i, item in enumerate(plan, start=len(stem)):
        if item == "M":
            y = pool()(y, name=f"features.{i}")
        else:
            y = _fire(y, f"features.{i}.", *item)
    y = _seq(("0", Dropout(p=dropout)), ("1", Conv2d(512, num_classes, kernel_size=1)), ("2", ReLU(inplace=True)),
             ("3", AdaptiveAvgPool2d((1, 1))))(y, name="classifier")
    y = flatten(y, 1, name="flatten")
    return Model(x, y, name=name)


def squeezenet1_0(*, num_classes=1000, dropout=0.5):
    """torchvision.models.squeezenet1_0."""
    return _squeezenet("1_0", "squeezenet1_0", num_classes, dropout)


def squeezenet1_1(*, num_classes=1000, dropout=0.5):
    """torchvision.models.squeezenet1_1 (2.4x less computation than 1_0, slightly fewer params)."""
    return _squeezenet("1_1", "squeezenet1_1", num_classes, dropout)


# ---------------------------------------------------------------------------------------------
# GoogLeNet and Inception v3: BasicConv2d = conv (bias=False), bn (eps=0.001), F.relu
def _basic_conv2d(in_channels, out_channels, **kwargs):
    """BasicConv2d as a container: rows conv, bn, relu."""
    return _seq(("conv", Conv2d(in_channels, out_channels, bias=False, **kwargs)),
                ("bn", BatchNorm2d(out_channels, eps=0.001)), ("relu", as_call(ReLU(inplace=True))))


def _basic_conv(x, p, in_channels, out_channels, **kwargs):
    return _basic_conv2d(in_channels, out_channels, **kwargs)(x, name=p)


def _googlenet_inception(x, p, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    b1 = _basic_conv(x, p + "branch1", in_channels, ch1x1, kernel_size=1)
    b2 = Sequential(_basic_conv2d(in_channels, ch3x3red, kernel_size=1),
                    _basic_conv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))(x, name=p + "branch2")
    # kernel_size=3 instead of 5 is torchvision's known bug (pytorch/vision#906), kept for its weights
    b3 = Sequential(_basic_conv2d(in_channels, ch5x5red, kernel_size=1),
                    _basic_conv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))(x, name=p + "branch3")
    b4 = Sequential(MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                    _basic_conv2d(in_channels, pool_proj, kernel_size=1))(x, name=p + "branch4")
    return cat([b1, b2, b3, b4], 1, name=p + "cat")


def _googlenet_aux(x, p, in_channels, num_classes, dropout_aux):
    y = as_call(AdaptiveAvgPool2d((4, 4)))(x, name=p + "adaptive_avg_pool2d")
    y = _basic_conv(y, p + "conv", in_channels, 128, kernel_size=1)
    y = flatten(y, 1, name=p + "flatten")
    y = Linear(2048, 1024)(y, name=p + "fc1")
    y = as_call(ReLU(inplace=True))(y, name=p + "relu")
    y = as_call(Dropout(p=dropout_aux))(y, name=p + "dropout")
    return Linear(1024, num_classes)(y, name=p + "fc2")


def googlenet(*, num_classes=1000, aux_logits=False, transform_input=False, init_weights=None, blocks=None,
              dropout=0.2, dropout_aux=0.7):
    """torchvision.models.googlenet (Inception v1), as its published weights define it.

    aux_logits defaults to False here: torchvision's published model (6,624,904 params) drops the
    auxiliary heads (`googlenet(weights=...)` sets aux1 = aux2 = None). aux_logits=True (torchvision's
    weights-free default) builds aux1/aux2 as in eval mode: present but not called, so they add
    3,188,968 + 3,191,016 params and no MACs. transform_input only rescales the 3 input channels
    (no parameters, no MACs) and is accepted for compatibility.
    """
    if blocks is not None:
        raise ValueError("blocks: only the default blocks are supported")
    x = Input((3, 224, 224))
    y = _basic_conv(x, "conv1", 3, 64, kernel_size=7, stride=2, padding=3)
    y = MaxPool2d(3, stride=2, ceil_mode=True)(y, name="maxpool1")
    y = _basic_conv(y, "conv2", 64, 64, kernel_size=1)
    y = _basic_conv(y, "conv3", 64, 192, kernel_size=3, padding=1)
    y = MaxPool2d(3, stride=2, ceil_mode=True)(y, name="maxpool2")
    y = _googlenet_inception(y, "inception3a.", 192, 64, 96, 128, 16, 32, 32)
    y = _googlenet_inception(y, "inception3b.", 256, 128, 128, 192, 32, 96, 64)
    y = MaxPool2d(3, stride=2, ceil_mode=True)(y, name="maxpool3")
    y = _googlenet_inception(y, "inception4a.", 480, 192, 96, 208, 16, 48, 64)
    if aux_logits:  # constructed, not called in eval: params only
        _googlenet_aux(y, "aux1.", 512, num_classes, dropout_aux)
    y = _googlenet_inception(y, "inception4b.", 512, 160, 112, 224, 24, 64, 64)
    y = _googlenet_inception(y, "inception4c.", 512, 128, 128, 256, 24, 64, 64)
    y = _googlenet_inception(y, "inception4d.", 512, 112, 144, 288, 32, 64, 64)
    if aux_logits:
        _googlenet_aux(y, "aux2.", 528, num_classes, dropout_aux)
    y = _googlenet_inception(y, "inception4e.", 528, 256, 160, 320, 32, 128, 128)
    y = MaxPool2d(2, stride=2, ceil_mode=True)(y, name="maxpool4")
    y = _googlenet_inception(y, "inception5a.", 832, 256, 160, 320, 32, 128, 128)
    y = _googlenet_inception(y, "inception5b.", 832, 384, 192, 384, 48, 128, 128)
    y = AdaptiveAvgPool2d((1, 1))(y, name="avgpool")
    y = flatten(y, 1, name="flatten")
    y = Dropout(p=dropout)(y, name="dropout")
    y = Linear(1024, num_classes)(y, name="fc")
    return Model(x, y, name="googlenet")


def _inception_a(x, p, in_channels, pool_features):
    b1 = _basic_conv(x, p + "branch1x1", in_channels, 64, kernel_size=1)
    b5 = _basic_conv(x, p + "branch5x5_1", in_channels, 48, kernel_size=1)
    b5 = _basic_conv(b5, p + "branch5x5_2", 48, 64, kernel_size=5, padding=2)
    b3 = _basic_conv(x, p + "branch3x3dbl_1", in_channels, 64, kernel_size=1)
    b3 = _basic_conv(b3, p + "branch3x3dbl_2", 64, 96, kernel_size=3, padding=1)
    b3 = _basic_conv(b3, p + "branch3x3dbl_3", 96, 96, kernel_size=3, padding=1)
    bp = as_call(AvgPool2d(kernel_size=3, stride=1, padding=1))(x, name=p + "avg_pool2d")
    bp = _basic_conv(bp, p + "branch_pool", in_channels, pool_features, kernel_size=1)
    return cat([b1, b5, b3, bp], 1, name=p + "cat")


def _inception_b(x, p, in_channels):
    b3 = _basic_conv(x, p + "branch3x3", in_channels, 384, kernel_size=3, stride=2)
    bd = _basic_conv(x, p + "branch3x3dbl_1", in_channels, 64, kernel_size=1)
    bd = _basic_conv(bd, p + "branch3x3dbl_2", 64, 96, kernel_size=3, padding=1)
    bd = _basic_conv(bd, p + "branch3x3dbl_3", 96, 96, kernel_size=3, stride=2)
    bp = as_call(MaxPool2d(kernel_size=3, stride=2))(x, name=p + "max_pool2d")
    return cat([b3, bd, bp], 1, name=p + "cat")


def _inception_c(x, p, in_channels, channels_7x7):
    c7 = channels_7x7
    b1 = _basic_conv(x, p + "branch1x1", in_channels, 192, kernel_size=1)
    b7 = _basic_conv(x, p + "branch7x7_1", in_channels, c7, kernel_size=1)
    b7 = _basic_conv(b7, p + "branch7x7_2", c7, c7, kernel_size=(1, 7), padding=(0, 3))
    b7 = _basic_conv(b7, p + "branch7x7_3", c7, 192, kernel_size=(7, 1), padding=(3, 0))
    bd = _basic_conv(x, p + "branch7x7dbl_1", in_channels, c7, kernel_size=1)
    bd = _basic_conv(bd, p + "branch7x7dbl_2", c7, c7, kernel_size=(7, 1), padding=(3, 0))
    bd = _basic_conv(bd, p + "branch7x7dbl_3", c7, c7, kernel_size=(1, 7), padding=(0, 3))
    bd = _basic_conv(bd, p + "branch7x7dbl_4", c7, c7, kernel_size=(7, 1), padding=(3, 0))
    bd = _basic_conv(bd, p + "branch7x7dbl_5", c7, 192, kernel_size=(1, 7), padding=(0, 3))
    bp = as_call(AvgPool2d(kernel_size=3, stride=1, padding=1))(x, name=p + "avg_pool2d")
    bp = _basic_conv(bp, p + "branch_pool", in_channels, 192, kernel_size=1)
    return cat([b1, b7, bd, bp], 1, name=p + "cat")


def _inception_d(x, p, in_channels):
    b3 = _basic_conv(x, p + "branch3x3_1", in_channels, 192, kernel_size=1)
    b3 = _basic_conv(b3, p + "branch3x3_2", 192, 320, kernel_size=3, stride=2)
    b7 = _basic_conv(x, p + "branch7x7x3_1", in_channels, 192, kernel_size=1)
    b7 = _basic_conv(b7, p + "branch7x7x3_2", 192, 192, kernel_size=(1, 7), padding=(0, 3))
    b7 = _basic_conv(b7, p + "branch7x7x3_3", 192, 192, kernel_size=(7, 1), padding=(3, 0))
    b7 = _basic_conv(b7, p + "branch7x7x3_4", 192, 192, kernel_size=3, stride=2)
    bp = as_call(MaxPool2d(kernel_size=3, stride=2))(x, name=p + "max_pool2d")
    return cat([b3, b7, bp], 1, name=p + "cat")


def _inception_e(x, p, in_channels):
    b1 = _basic_conv(x, p + "branch1x1", in_channels, 320, kernel_size=1)
    b3 = _basic_conv(x, p + "branch3x3_1", in_channels, 384, kernel_size=1)
    b3 = cat([_basic_conv(b3, p + "branch3x3_2a", 384, 384, kernel_size=(1, 3), padding=(0, 1)),
              _basic_conv(b3, p + "branch3x3_2b", 384, 384, kernel_size=(3, 1), padding=(1, 0))], 1, name=p + "cat")
    bd = _basic_conv(x, p + "branch3x3dbl_1", in_channels, 448, kernel_size=1)
    bd = _basic_conv(bd, p + "branch3x3dbl_2", 448, 384, kernel_size=3, padding=1)
    bd = cat([_basic_conv(bd, p + "branch3x3dbl_3a", 384, 384, kernel_size=(1, 3), padding=(0, 1)),
              _basic_conv(bd, p + "branch3x3dbl_3b", 384, 384, kernel_size=(3, 1), padding=(1, 0))], 1,
             name=p + "cat")
    bp = as_call(AvgPool2d(kernel_size=3, stride=1, padding=1))(x, name=p + "avg_pool2d")
    bp = _basic_conv(bp, p + "branch_pool", in_channels, 192, kernel_size=1)
    return cat([b1, b3, bd, bp], 1, name=p + "cat")


def _inception_aux(x, p, in_channels, num_classes):
    y = as_call(AvgPool2d(kernel_size=5, stride=3))(x, name=p + "avg_pool2d")
    y = _basic_conv(y, p + "conv0", in_channels, 128, kernel_size=1)
    y = _basic_conv(y, p + "conv1", 128, 768, kernel_size=5)
    y = as_call(AdaptiveAvgPool2d((1, 1)))(y, name=p + "adaptive_avg_pool2d")
    y = flatten(y, 1, name=p + "flatten")
    return Linear(768, num_classes)(y, name=p + "fc")


def inception_v3(*, num_classes=1000, aux_logits=True, transform_input=False, inception_blocks=None,
                 init_weights=None, dropout=0.5):
    """torchvision.models.inception_v3 at 299x299 (its published weights' crop).

    AuxLogits (aux_logits=True, as in the published model's 27,161,264 params) is constructed but
    not called in eval: it counts its parameters and no MACs. transform_input only rescales the 3
    input channels (no parameters, no MACs) and is accepted for compatibility.
    """
    if inception_blocks is not None:
        raise ValueError("inception_blocks: only the default blocks are supported")
    x = Input((3, 299, 299))
    y = _basic_conv(x, "Conv2d_1a_3x3", 3, 32, kernel_size=3, stride=2)
    y = _basic_conv(y, "Conv2d_2a_3x3", 32, 32, kernel_size=3)
    y = _basic_conv(y, "Conv2d_2b_3x3", 32, 64, kernel_size=3, padding=1)
    y = MaxPool2d(kernel_size=3, stride=2)(y, name="maxpool1")
    y = _basic_conv(y, "Conv2d_3b_1x1", 64, 80, kernel_size=1)
    y = _basic_conv(y, "Conv2d_4a_3x3", 80, 192, kernel_size=3)
    y = MaxPool2d(kernel_size=3, stride=2)(y, name="maxpool2")
    y = _inception_a(y, "Mixed_5b.", 192, pool_features=32)
    y = _inception_a(y, "Mixed_5c.", 256, pool_features=64)
    y = _inception_a(y, "Mixed_5d.", 288, pool_features=64)
    y = _inception_b(y, "Mixed_6a.", 288)
    y = _inception_c(y, "Mixed_6b.", 768, channels_7x7=128)
    y = _inception_c(y, "Mixed_6c.", 768, channels_7x7=160)
    y = _inception_c(y, "Mixed_6d.", 768, channels_7x7=160)
    y = _inception_c(y, "Mixed_6e.", 768, channels_7x7=192)
    if aux_logits:  # constructed, not called in eval: params only
        _inception_aux(y, "AuxLogits.", 768, num_classes)
    y = _inception_d(y, "Mixed_7a.", 768)
    y = _inception_e(y, "Mixed_7b.", 1280)
    y = _inception_e(y, "Mixed_7c.", 2048)
    y = AdaptiveAvgPool2d((1, 1))(y, name="avgpool")
    y = Dropout(p=dropout)(y, name="dropout")
    y = flatten(y, 1, name="flatten")
    y = Linear(2048, num_classes)(y, name="fc")
    return Model(x, y, name="inception_v3")
