"""Mobile and efficient CNNs transcribed from torchvision: MobileNetV2/V3, MNASNet, EfficientNet (V1, V2),
ShuffleNetV2 and RegNet (X and Y).

One builder per torchvision classification builder, with torchvision's name and keyword arguments
(``num_classes``, ``width_mult`` where torchvision has it). Pretrained weights are not a cnncore
concept: ``weights`` is accepted only as ``None``. Each builder returns a ``cc.Model`` whose
``cc.Input`` has the resolution of torchvision's published weights (the ``crop_size`` of the
weights' transforms), so ``cc.count(model)`` answers for the published configuration.

Row names follow torchvision's module names (``features.1.0.block.0.0``...). Functional operations
torchvision does in ``forward`` (residual adds, squeeze-excitation products, ``x.mean([2, 3])``,
``torch.flatten``, ``chunk``/``cat``, channel shuffle) get descriptive names under their module.
Stochastic depth is the identity at inference and is left out.
"""
from __future__ import annotations

import math

import numpy as np

from ..graph import Input, Model, add, cat, chunk, flatten, mul
from ..layers import (AdaptiveAvgPool2d, as_call, BatchNorm2d, ChannelShuffle, Conv2d, Dropout, Hardsigmoid,
                      Hardswish, Linear, MaxPool2d, ReLU, ReLU6, Sigmoid, SiLU)
from ..model import Sequential

__all__ = [
    "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf",
    "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf",
    "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf",
    "regnet_x_16gf", "regnet_x_32gf",
]


# ---------------------------------------------------------------------------------------------
# shared pieces (torchvision/models/_utils.py, torchvision/ops/misc.py)
def _check_weights(weights):
    if weights is not None:
        raise ValueError("cnncore.zoo builds architectures only: pass weights=None "
                         "(cnncore counts parameters, it does not load them)")


def _make_divisible(v, divisor, min_value=None):
    """torchvision.models._utils._make_divisible: round to a multiple of `divisor`, never down by >10%."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _cna(in_ch, out_ch, kernel_size=3, stride=1, groups=1, dilation=1, activation=ReLU, bn_eps=1e-5):
    """torchvision.ops.misc.Conv2dNormActivation with BatchNorm2d: Sequential(conv, bn[, act]).

    padding = (kernel_size - 1) // 2 * dilation, bias=False (a norm follows); `activation=None`
    leaves the activation out (the module then has two children, as in torchvision).
    """
    padding = (kernel_size - 1) // 2 * dilation
    mods = [Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            BatchNorm2d(out_ch, eps=bn_eps)]
    if activation is not None:
        mods.append(activation())
    return Sequential(*mods)


def _squeeze_excitation(x, input_channels, squeeze_channels, name, activation=ReLU, scale_activation=Sigmoid):
    """torchvision.ops.misc.SqueezeExcitation: x * scale_act(fc2(act(fc1(avgpool(x)))))."""
    s = AdaptiveAvgPool2d(1)(x, name=f"{name}.avgpool")
    s = Conv2d(input_channels, squeeze_channels, 1)(s, name=f"{name}.fc1")
    s = activation()(s, name=f"{name}.activation")
    s = Conv2d(squeeze_channels, input_channels, 1)(s, name=f"{name}.fc2")
    s = scale_activation()(s, name=f"{name}.scale_activation")
    return mul(s, x, name=f"{name}.mul")


def _head_pool_flatten(x, pool_name="avgpool", call=None):
    """The global pool and flatten; call: the pool is a function call in torchvision's forward,
    "F" (F.adaptive_avg_pool2d) or "method" (x.mean), flagged as from_torch flags it."""
    pool = AdaptiveAvgPool2d(1)
    x = (as_call(pool, patched=call == "F") if call else pool)(x, name=pool_name)
    return flatten(x, 1, name="flatten")


# ---------------------------------------------------------------------------------------------
# MobileNetV2 (torchvision/models/mobilenetv2.py)
_MOBILENET_V2_SETTING = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def mobilenet_v2(*, weights=None, progress=True, num_classes=1000, width_mult=1.0, round_nearest=8,
                 dropout=0.2):
    """torchvision.models.mobilenet_v2 (3,504,872 params, 0.301 GFLOPS at 224x224)."""
    _check_weights(weights)
    input_channel = _make_divisible(32 * width_mult, round_nearest)
    last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
    x = inp = Input((3, 224, 224))
    x = _cna(3, input_channel, stride=2, activation=ReLU6)(x, name="features.0")
    idx = 1
    for t, c, n, s in _MOBILENET_V2_SETTING:
        output_channel = _make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(input_channel * t))
            layers = []
            if t != 1:
                layers.append(_cna(input_channel, hidden, 1, activation=ReLU6))
            layers += [_cna(hidden, hidden, stride=stride, groups=hidden, activation=ReLU6),
                       Conv2d(hidden, output_channel, 1, 1, 0, bias=False),
                       BatchNorm2d(output_channel)]
            y = Sequential(*layers)(x, name=f"features.{idx}.conv")
            x = add(x, y, name=f"features.{idx}.add") if (stride == 1 and input_channel == output_channel) else y
            input_channel = output_channel
            idx += 1
    x = _cna(input_channel, last_channel, 1, activation=ReLU6)(x, name=f"features.{idx}")
    x = _head_pool_flatten(x, "adaptive_avg_pool2d", call="F")
    x = Sequential(Dropout(dropout), Linear(last_channel, num_classes))(x, name="classifier")
    return Model(inp, x, name="mobilenet_v2")


# ---------------------------------------------------------------------------------------------
# MobileNetV3 (torchvision/models/mobilenetv3.py)
def _mobilenet_v3_conf(arch, width_mult=1.0, reduced_tail=False, dilated=False):
    rd = 2 if reduced_tail else 1
    dil = 2 if dilated else 1

    def adjust(c):
        return _make_divisible(c * width_mult, 8)

    def b(i, k, e, o, se, act, s, d):
        return (adjust(i), k, adjust(e), adjust(o), se, act == "HS", s, d)

    if arch == "mobilenet_v3_large":
        setting = [
            b(16, 3, 16, 16, False, "RE", 1, 1),
            b(16, 3, 64, 24, False, "RE", 2, 1),
            b(24, 3, 72, 24, False, "RE", 1, 1),
            b(24, 5, 72, 40, True, "RE", 2, 1),
            b(40, 5, 120, 40, True, "RE", 1, 1),
            b(40, 5, 120, 40, True, "RE", 1, 1),
            b(40, 3, 240, 80, False, "HS", 2, 1),
            b(80, 3, 200, 80, False, "HS", 1, 1),
            b(80, 3, 184, 80, False, "HS", 1, 1),
            b(80, 3, 184, 80, False, "HS", 1, 1),
            b(80, 3, 480, 112, True, "HS", 1, 1),
            b(112, 3, 672, 112, True, "HS", 1, 1),
            b(112, 5, 672, 160 // rd, True, "HS", 2, dil),
            b(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dil),
            b(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dil),
        ]
        last_channel = adjust(1280 // rd)
    else:
        setting = [
            b(16, 3, 16, 16, True, "RE", 2, 1),
            b(16, 3, 72, 24, False, "RE", 2, 1),
            b(24, 3, 88, 24, False, "RE", 1, 1),
            b(24, 5, 96, 40, True, "HS", 2, 1),
            b(40, 5, 240, 40, True, "HS", 1, 1),
            b(40, 5, 240, 40, True, "HS", 1, 1),
            b(40, 5, 120, 48, True, "HS", 1, 1),
            b(48, 5, 144, 48, True, "HS", 1, 1),
            b(48, 5, 288, 96 // rd, True, "HS", 2, dil),
            b(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dil),
            b(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dil),
        ]
        last_channel = adjust(1024 // rd)
    return setting, last_channel


def _mobilenet_v3(arch, num_classes, width_mult, reduced_tail, dilated, dropout):
    setting, last_channel = _mobilenet_v3_conf(arch, width_mult, reduced_tail, dilated)
    eps = 0.001
    x = inp = Input((3, 224, 224))
    x = _cna(3, setting[0][0], 3, 2, activation=Hardswish, bn_eps=eps)(x, name="features.0")
    for i, (cin, k, exp, cout, use_se, use_hs, s, d) in enumerate(setting, start=1):
        act = Hardswish if use_hs else ReLU
        name = f"features.{i}.block"
        j = 0
        y = x
        if exp != cin:
            y = _cna(cin, exp, 1, activation=act, bn_eps=eps)(y, name=f"{name}.{j}")
            j += 1
        stride = 1 if d > 1 else s
        y = _cna(exp, exp, k, stride, groups=exp, dilation=d, activation=act, bn_eps=eps)(y, name=f"{name}.{j}")
        j += 1
        if use_se:
            y = _squeeze_excitation(y, exp, _make_divisible(exp // 4, 8), f"{name}.{j}",
                                    activation=ReLU, scale_activation=Hardsigmoid)
            j += 1
        y = _cna(exp, cout, 1, activation=None, bn_eps=eps)(y, name=f"{name}.{j}")
        x = add(y, x, name=f"features.{i}.add") if (s == 1 and cin == cout) else y  # result += input
    last_in = setting[-1][3]
    last_out = 6 * last_in
    x = _cna(last_in, last_out, 1, activation=Hardswish, bn_eps=eps)(x, name=f"features.{len(setting) + 1}")
    x = _head_pool_flatten(x)
    x = Sequential(Linear(last_out, last_channel), Hardswish(), Dropout(dropout),
                   Linear(last_channel, num_classes))(x, name="classifier")
    return Model(inp, x, name=arch)


def mobilenet_v3_large(*, weights=None, progress=True, num_classes=1000, width_mult=1.0, reduced_tail=False,
                       dilated=False, dropout=0.2):
    """torchvision.models.mobilenet_v3_large (5,483,032 params, 0.217 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mobilenet_v3("mobilenet_v3_large", num_classes, width_mult, reduced_tail, dilated, dropout)


def mobilenet_v3_small(*, weights=None, progress=True, num_classes=1000, width_mult=1.0, reduced_tail=False,
                       dilated=False, dropout=0.2):
    """torchvision.models.mobilenet_v3_small (2,542,856 params, 0.057 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mobilenet_v3("mobilenet_v3_small", num_classes, width_mult, reduced_tail, dilated, dropout)


# ---------------------------------------------------------------------------------------------
# MNASNet (torchvision/models/mnasnet.py, the version-2 layout with a scaled stem)
_BN_MOMENTUM = 1 - 0.9997


def _round_to_multiple_of(val, divisor, round_up_bias=0.9):
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _mnasnet(alpha, num_classes, dropout):
    depths = [_round_to_multiple_of(d * alpha, 8) for d in (32, 16, 24, 40, 80, 96, 192, 320)]
    m = _BN_MOMENTUM
    x = inp = Input((3, 224, 224))
    stem = [
        Conv2d(3, depths[0], 3, padding=1, stride=2, bias=False), BatchNorm2d(depths[0], momentum=m), ReLU(),
        Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0], bias=False),
        BatchNorm2d(depths[0], momentum=m), ReLU(),
        Conv2d(depths[0], depths[1], 1, padding=0, stride=1, bias=False), BatchNorm2d(depths[1], momentum=m),
    ]
    for i, layer in enumerate(stem):
        x = layer(x, name=f"layers.{i}")
    stacks = [  # in, out, kernel, stride, expansion, repeats
        (depths[1], depths[2], 3, 2, 3, 3),
        (depths[2], depths[3], 5, 2, 3, 3),
        (depths[3], depths[4], 5, 2, 6, 3),
        (depths[4], depths[5], 3, 1, 6, 2),
        (depths[5], depths[6], 5, 2, 6, 4),
        (depths[6], depths[7], 3, 1, 6, 1),
    ]
    for si, (cin, cout, k, s, e, r) in enumerate(stacks, start=len(stem)):
        for j in range(r):
            in_ch, stride = (cin, s) if j == 0 else (cout, 1)
            mid = in_ch * e
            y = Sequential(
                Conv2d(in_ch, mid, 1, bias=False), BatchNorm2d(mid, momentum=m), ReLU(),
                Conv2d(mid, mid, k, padding=k // 2, stride=stride, groups=mid, bias=False),
                BatchNorm2d(mid, momentum=m), ReLU(),
                Conv2d(mid, cout, 1, bias=False), BatchNorm2d(cout, momentum=m),
            )(x, name=f"layers.{si}.{j}.layers")
            x = add(y, x, name=f"layers.{si}.{j}.add") if (in_ch == cout and stride == 1) else y
    n = len(stem) + len(stacks)
    x = Conv2d(depths[7], 1280, 1, padding=0, stride=1, bias=False)(x, name=f"layers.{n}")
    x = BatchNorm2d(1280, momentum=m)(x, name=f"layers.{n + 1}")
    x = ReLU()(x, name=f"layers.{n + 2}")
    x = _head_pool_flatten(x, "mean", call="method")  # x.mean([2, 3])
    x = Sequential(Dropout(dropout), Linear(1280, num_classes))(x, name="classifier")
    return Model(inp, x, name=f"mnasnet{alpha}")


def mnasnet0_5(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.mnasnet0_5 (2,218,512 params, 0.104 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mnasnet(0.5, num_classes, dropout)


def mnasnet0_75(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.mnasnet0_75 (3,170,208 params, 0.215 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mnasnet(0.75, num_classes, dropout)


def mnasnet1_0(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.mnasnet1_0 (4,383,312 params, 0.314 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mnasnet(1.0, num_classes, dropout)


def mnasnet1_3(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.mnasnet1_3 (6,282,256 params, 0.526 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _mnasnet(1.3, num_classes, dropout)


# ---------------------------------------------------------------------------------------------
# EfficientNet V1 and V2 (torchvision/models/efficientnet.py)
def _mb_conf(expand_ratio, kernel, stride, input_channels, out_channels, num_layers, width_mult=1.0,
             depth_mult=1.0):
    """MBConvConfig: channels via _make_divisible(c * width_mult, 8), depth via ceil(n * depth_mult)."""
    return ("mb", expand_ratio, kernel, stride, _make_divisible(input_channels * width_mult, 8),
            _make_divisible(out_channels * width_mult, 8), int(math.ceil(num_layers * depth_mult)))


def _fused_conf(expand_ratio, kernel, stride, input_channels, out_channels, num_layers):
    return ("fused", expand_ratio, kernel, stride, input_channels, out_channels, num_layers)


def _efficientnet_conf(arch, width_mult=1.0, depth_mult=1.0):
    if arch.startswith("efficientnet_b"):
        def b(*a):
            return _mb_conf(*a, width_mult=width_mult, depth_mult=depth_mult)
        return [b(1, 3, 1, 32, 16, 1), b(6, 3, 2, 16, 24, 2), b(6, 5, 2, 24, 40, 2), b(6, 3, 2, 40, 80, 3),
                b(6, 5, 1, 80, 112, 3), b(6, 5, 2, 112, 192, 4), b(6, 3, 1, 192, 320, 1)], None
    if arch == "efficientnet_v2_s":
        return [_fused_conf(1, 3, 1, 24, 24, 2), _fused_conf(4, 3, 2, 24, 48, 4), _fused_conf(4, 3, 2, 48, 64, 4),
                _mb_conf(4, 3, 2, 64, 128, 6), _mb_conf(6, 3, 1, 128, 160, 9),
                _mb_conf(6, 3, 2, 160, 256, 15)], 1280
    if arch == "efficientnet_v2_m":
        return [_fused_conf(1, 3, 1, 24, 24, 3), _fused_conf(4, 3, 2, 24, 48, 5), _fused_conf(4, 3, 2, 48, 80, 5),
                _mb_conf(4, 3, 2, 80, 160, 7), _mb_conf(6, 3, 1, 160, 176, 14), _mb_conf(6, 3, 2, 176, 304, 18),
                _mb_conf(6, 3, 1, 304, 512, 5)], 1280
    if arch == "efficientnet_v2_l":
        return [_fused_conf(1, 3, 1, 32, 32, 4), _fused_conf(4, 3, 2, 32, 64, 7), _fused_conf(4, 3, 2, 64, 96, 7),
                _mb_conf(4, 3, 2, 96, 192, 10), _mb_conf(6, 3, 1, 192, 224, 19), _mb_conf(6, 3, 2, 224, 384, 25),
                _mb_conf(6, 3, 1, 384, 640, 7)], 1280
    raise ValueError(f"Unsupported model type {arch}")


def _efficientnet(arch, resolution, num_classes, dropout, width_mult=1.0, depth_mult=1.0, bn_eps=1e-5):
    setting, last_channel = _efficientnet_conf(arch, width_mult, depth_mult)
    x = inp = Input((3, resolution, resolution))
    x = _cna(3, setting[0][4], 3, 2, activation=SiLU, bn_eps=bn_eps)(x, name="features.0")
    for si, (kind, er, k, s, cin0, cout, n) in enumerate(setting, start=1):
        for j in range(n):
            cin, stride = (cin0, s) if j == 0 else (cout, 1)
            name = f"features.{si}.{j}.block"
            expanded = _make_divisible(cin * er, 8)
            y = x
            if kind == "mb":
                b = 0
                if expanded != cin:
                    y = _cna(cin, expanded, 1, activation=SiLU, bn_eps=bn_eps)(y, name=f"{name}.{b}")
                    b += 1
                y = _cna(expanded, expanded, k, stride, groups=expanded, activation=SiLU,
                         bn_eps=bn_eps)(y, name=f"{name}.{b}")
                y = _squeeze_excitation(y, expanded, max(1, cin // 4), f"{name}.{b + 1}", activation=SiLU)
                y = _cna(expanded, cout, 1, activation=None, bn_eps=bn_eps)(y, name=f"{name}.{b + 2}")
            elif expanded != cin:
                y = _cna(cin, expanded, k, stride, activation=SiLU, bn_eps=bn_eps)(y, name=f"{name}.0")
                y = _cna(expanded, cout, 1, activation=None, bn_eps=bn_eps)(y, name=f"{name}.1")
            else:
                y = _cna(cin, cout, k, stride, activation=SiLU, bn_eps=bn_eps)(y, name=f"{name}.0")
            x = add(y, x, name=f"features.{si}.{j}.add") if (stride == 1 and cin == cout) else y
    last_in = setting[-1][5]
    last_out = last_channel if last_channel is not None else 4 * last_in
    x = _cna(last_in, last_out, 1, activation=SiLU, bn_eps=bn_eps)(x, name=f"features.{len(setting) + 1}")
    x = _head_pool_flatten(x)
    x = Sequential(Dropout(dropout), Linear(last_out, num_classes))(x, name="classifier")
    return Model(inp, x, name=arch)


def efficientnet_b0(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.efficientnet_b0 at 224x224 (5,288,548 params, 0.386 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b0", 224, num_classes, dropout, 1.0, 1.0)


def efficientnet_b1(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.efficientnet_b1 at 240x240 (7,794,184 params, 0.687 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b1", 240, num_classes, dropout, 1.0, 1.1)


def efficientnet_b2(*, weights=None, progress=True, num_classes=1000, dropout=0.3):
    """torchvision.models.efficientnet_b2 at 288x288, the crop of torchvision's weights
    (9,109,994 params, 1.088 GFLOPS; the paper's resolution is 260)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b2", 288, num_classes, dropout, 1.1, 1.2)


def efficientnet_b3(*, weights=None, progress=True, num_classes=1000, dropout=0.3):
    """torchvision.models.efficientnet_b3 at 300x300 (12,233,232 params, 1.827 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b3", 300, num_classes, dropout, 1.2, 1.4)


def efficientnet_b4(*, weights=None, progress=True, num_classes=1000, dropout=0.4):
    """torchvision.models.efficientnet_b4 at 380x380 (19,341,616 params, 4.394 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b4", 380, num_classes, dropout, 1.4, 1.8)


def efficientnet_b5(*, weights=None, progress=True, num_classes=1000, dropout=0.4):
    """torchvision.models.efficientnet_b5 at 456x456 (30,389,784 params, 10.266 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b5", 456, num_classes, dropout, 1.6, 2.2, bn_eps=0.001)


def efficientnet_b6(*, weights=None, progress=True, num_classes=1000, dropout=0.5):
    """torchvision.models.efficientnet_b6 at 528x528 (43,040,704 params, 19.068 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b6", 528, num_classes, dropout, 1.8, 2.6, bn_eps=0.001)


def efficientnet_b7(*, weights=None, progress=True, num_classes=1000, dropout=0.5):
    """torchvision.models.efficientnet_b7 at 600x600 (66,347,960 params, 37.746 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_b7", 600, num_classes, dropout, 2.0, 3.1, bn_eps=0.001)


def efficientnet_v2_s(*, weights=None, progress=True, num_classes=1000, dropout=0.2):
    """torchvision.models.efficientnet_v2_s at 384x384 (21,458,488 params, 8.366 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_v2_s", 384, num_classes, dropout, bn_eps=0.001)


def efficientnet_v2_m(*, weights=None, progress=True, num_classes=1000, dropout=0.3):
    """torchvision.models.efficientnet_v2_m at 480x480 (54,139,356 params, 24.582 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_v2_m", 480, num_classes, dropout, bn_eps=0.001)


def efficientnet_v2_l(*, weights=None, progress=True, num_classes=1000, dropout=0.4):
    """torchvision.models.efficientnet_v2_l at 480x480 (118,515,272 params, 56.080 GFLOPS)."""
    _check_weights(weights)
    return _efficientnet("efficientnet_v2_l", 480, num_classes, dropout, bn_eps=0.001)


# ---------------------------------------------------------------------------------------------
# ShuffleNetV2 (torchvision/models/shufflenetv2.py)
def _shufflenet_v2(stages_repeats, stages_out_channels, num_classes, arch):
    x = inp = Input((3, 224, 224))
    c = stages_out_channels[0]
    x = Sequential(Conv2d(3, c, 3, 2, 1, bias=False), BatchNorm2d(c), ReLU())(x, name="conv1")
    x = MaxPool2d(kernel_size=3, stride=2, padding=1)(x, name="maxpool")
    inp_ch = c
    for si, (repeats, oup) in enumerate(zip(stages_repeats, stages_out_channels[1:-1]), start=2):
        for j in range(repeats):
            name = f"stage{si}.{j}"
            bf = oup // 2
            if j == 0:  # stride 2: both branches see the whole input
                b1 = Sequential(Conv2d(inp_ch, inp_ch, 3, 2, 1, bias=False, groups=inp_ch), BatchNorm2d(inp_ch),
                                Conv2d(inp_ch, bf, 1, 1, 0, bias=False), BatchNorm2d(bf), ReLU())
                x1 = b1(x, name=f"{name}.branch1")
                x2, b2_in, stride = x, inp_ch, 2
            else:
                x1, x2 = chunk(x, 2, dim=1, name=f"{name}.chunk")
                b2_in, stride = bf, 1
            b2 = Sequential(Conv2d(b2_in, bf, 1, 1, 0, bias=False), BatchNorm2d(bf), ReLU(),
                            Conv2d(bf, bf, 3, stride, 1, bias=False, groups=bf), BatchNorm2d(bf),
                            Conv2d(bf, bf, 1, 1, 0, bias=False), BatchNorm2d(bf), ReLU())
            x2 = b2(x2, name=f"{name}.branch2")
            x = cat([x1, x2], dim=1, name=f"{name}.cat")
            x = ChannelShuffle(2)(x, name=f"{name}.channel_shuffle")
        inp_ch = oup
    c = stages_out_channels[-1]
    x = Sequential(Conv2d(inp_ch, c, 1, 1, 0, bias=False), BatchNorm2d(c), ReLU())(x, name="conv5")
    x = _head_pool_flatten(x, "mean", call="method")  # x.mean([2, 3])
    x = Linear(c, num_classes)(x, name="fc")
    return Model(inp, x, name=arch)


def shufflenet_v2_x0_5(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.shufflenet_v2_x0_5 (1,366,792 params, 0.04 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _shufflenet_v2([4, 8, 4], [24, 48, 96, 192, 1024], num_classes, "shufflenet_v2_x0_5")


def shufflenet_v2_x1_0(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.shufflenet_v2_x1_0 (2,278,604 params, 0.145 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _shufflenet_v2([4, 8, 4], [24, 116, 232, 464, 1024], num_classes, "shufflenet_v2_x1_0")


def shufflenet_v2_x1_5(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.shufflenet_v2_x1_5 (3,503,624 params, 0.296 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _shufflenet_v2([4, 8, 4], [24, 176, 352, 704, 1024], num_classes, "shufflenet_v2_x1_5")


def shufflenet_v2_x2_0(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.shufflenet_v2_x2_0 (7,393,996 params, 0.583 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _shufflenet_v2([4, 8, 4], [24, 244, 488, 976, 2048], num_classes, "shufflenet_v2_x2_0")


# ---------------------------------------------------------------------------------------------
# RegNet (torchvision/models/regnet.py)
def _regnet_block_params(depth, w_0, w_a, w_m, group_width, bottleneck_multiplier=1.0, se_ratio=None):
    """torchvision's BlockParams.from_init_params, in float32 like its torch arithmetic.

    Returns (depths, widths, group_widths, bottleneck_multipliers, strides, se_ratio) per stage.
    """
    QUANT, STRIDE = 8, 2
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8 != 0:
        raise ValueError("Invalid RegNet settings")
    f32 = np.float32
    with np.errstate(all="ignore"):
        widths_cont = np.arange(depth).astype(f32) * f32(w_a) + f32(w_0)
        block_capacity = np.round(np.log(widths_cont / f32(w_0)) / f32(math.log(w_m)))  # half to even, as torch
        block_widths = (np.round(f32(w_0) * np.power(f32(w_m), block_capacity.astype(f32)) / f32(QUANT))
                        * f32(QUANT)).astype(np.int32).tolist()
    num_stages = len(set(block_widths))
    splits = [w != wp or r != rp for w, wp, r, rp in
              zip(block_widths + [0], [0] + block_widths, block_widths + [0], [0] + block_widths)]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
    idx = [d for d, t in enumerate(splits) if t]
    stage_depths = [b - a for a, b in zip(idx[:-1], idx[1:])]
    strides = [STRIDE] * num_stages
    bottleneck_multipliers = [bottleneck_multiplier] * num_stages
    group_widths = [group_width] * num_stages
    # _adjust_widths_groups_compatibilty
    widths = [int(w * b) for w, b in zip(stage_widths, bottleneck_multipliers)]
    group_widths = [min(g, w_bot) for g, w_bot in zip(group_widths, widths)]
    ws_bot = [_make_divisible(w_bot, g) for w_bot, g in zip(widths, group_widths)]
    stage_widths = [int(w_bot / b) for w_bot, b in zip(ws_bot, bottleneck_multipliers)]
    return stage_depths, stage_widths, group_widths, bottleneck_multipliers, strides, se_ratio


def _regnet(arch, num_classes, stem_width=32, **init_params):
    depths, widths, group_widths, bms, strides, se_ratio = _regnet_block_params(**init_params)
    x = inp = Input((3, 224, 224))
    x = _cna(3, stem_width, 3, 2, activation=ReLU)(x, name="stem")
    current = stem_width
    for i, (width_out, stride, depth, gw, bm) in enumerate(zip(widths, strides, depths, group_widths, bms), 1):
        for j in range(depth):
            w_in, s = (current, stride) if j == 0 else (width_out, 1)
            name = f"trunk_output.block{i}.block{i}-{j}"
            proj = None
            if w_in != width_out or s != 1:
                proj = _cna(w_in, width_out, 1, s, activation=None)(x, name=f"{name}.proj")
            w_b = int(round(width_out * bm))
            g = w_b // gw
            y = _cna(w_in, w_b, 1, activation=ReLU)(x, name=f"{name}.f.a")
            y = _cna(w_b, w_b, 3, s, groups=g, activation=ReLU)(y, name=f"{name}.f.b")
            if se_ratio:
                y = _squeeze_excitation(y, w_b, int(round(se_ratio * w_in)), f"{name}.f.se", activation=ReLU)
            y = _cna(w_b, width_out, 1, activation=None)(y, name=f"{name}.f.c")
            x = add(proj if proj is not None else x, y, name=f"{name}.add")
            x = ReLU()(x, name=f"{name}.activation")
        current = width_out
    x = _head_pool_flatten(x)
    x = Linear(current, num_classes)(x, name="fc")
    return Model(inp, x, name=arch)


def regnet_y_400mf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_400mf (4,344,144 params, 0.402 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_400mf", num_classes, depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8,
                   se_ratio=0.25)


def regnet_y_800mf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_800mf (6,432,512 params, 0.834 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_800mf", num_classes, depth=14, w_0=56, w_a=38.84, w_m=2.4, group_width=16,
                   se_ratio=0.25)


def regnet_y_1_6gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_1_6gf (11,202,430 params, 1.612 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_1_6gf", num_classes, depth=27, w_0=48, w_a=20.71, w_m=2.65, group_width=24,
                   se_ratio=0.25)


def regnet_y_3_2gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_3_2gf (19,436,338 params, 3.176 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_3_2gf", num_classes, depth=21, w_0=80, w_a=42.63, w_m=2.66, group_width=24,
                   se_ratio=0.25)


def regnet_y_8gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_8gf (39,381,472 params, 8.473 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_8gf", num_classes, depth=17, w_0=192, w_a=76.82, w_m=2.19, group_width=56,
                   se_ratio=0.25)


def regnet_y_16gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_16gf (83,590,140 params, 15.912 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_16gf", num_classes, depth=18, w_0=200, w_a=106.23, w_m=2.48, group_width=112,
                   se_ratio=0.25)


def regnet_y_32gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_32gf (145,046,770 params, 32.28 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_y_32gf", num_classes, depth=20, w_0=232, w_a=115.89, w_m=2.53, group_width=232,
                   se_ratio=0.25)


def regnet_y_128gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_y_128gf at 224x224, the crop of its SWAG linear-classifier weights
    (644,812,894 params, 127.518 GFLOPS; the end-to-end SWAG weights use 384x384)."""
    _check_weights(weights)
    return _regnet("regnet_y_128gf", num_classes, depth=27, w_0=456, w_a=160.83, w_m=2.52, group_width=264,
                   se_ratio=0.25)


def regnet_x_400mf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_400mf (5,495,976 params, 0.414 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_400mf", num_classes, depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)


def regnet_x_800mf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_800mf (7,259,656 params, 0.8 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_800mf", num_classes, depth=16, w_0=56, w_a=35.73, w_m=2.28, group_width=16)


def regnet_x_1_6gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_1_6gf (9,190,136 params, 1.603 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_1_6gf", num_classes, depth=18, w_0=80, w_a=34.01, w_m=2.25, group_width=24)


def regnet_x_3_2gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_3_2gf (15,296,552 params, 3.177 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_3_2gf", num_classes, depth=25, w_0=88, w_a=26.31, w_m=2.25, group_width=48)


def regnet_x_8gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_8gf (39,572,648 params, 7.995 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_8gf", num_classes, depth=23, w_0=80, w_a=49.56, w_m=2.88, group_width=120)


def regnet_x_16gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_16gf (54,278,536 params, 15.941 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_16gf", num_classes, depth=22, w_0=216, w_a=55.59, w_m=2.1, group_width=128)


def regnet_x_32gf(*, weights=None, progress=True, num_classes=1000):
    """torchvision.models.regnet_x_32gf (107,811,560 params, 31.736 GFLOPS at 224x224)."""
    _check_weights(weights)
    return _regnet("regnet_x_32gf", num_classes, depth=23, w_0=320, w_a=69.86, w_m=2.0, group_width=168)
