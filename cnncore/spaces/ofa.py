"""Once-for-All / ProxylessNAS ``net.config`` JSON -> cc.Model.

Transcribed from mit-han-lab/once-for-all ``ofa/utils/layers.py`` (ConvLayer, LinearLayer,
IdentityLayer, ZeroLayer, MBConvLayer -- called MBInvertedConvLayer in older configs --,
ResidualBlock / MobileInvertedResidualBlock, SEModule), ``ofa/utils/pytorch_modules.py``
(make_divisible, Hswish, Hsigmoid, MyGlobalAvgPool2d) and ``ofa/imagenet_classification/networks``
(MobileNetV3.forward, ProxylessNASNets.forward); the same layer classes as
mit-han-lab/proxylessnas ``proxyless_nas/model_zoo.py``. Row names follow the torch modules'
names (``blocks.3.conv.depth_conv.se.fc.reduce``...).

- ConvLayer: [Dropout2d] Conv2d(k, stride, padding = k // 2 * dilation, groups, bias) [BN] [act]
  for ``ops_order`` 'weight_bn_act' (the only order OFA's configs use).
- MBConv: [1x1 expand Conv + BN + act, absent when expand_ratio == 1] -> depthwise k x k Conv + BN
  + act [-> SE] -> 1x1 project Conv + BN. Hidden width: ``mid_channels``, else
  round(in_channels * expand_ratio).
- SE (OFA's SEModule, reduction 4): mean over H, W -> Conv1x1(C, make_divisible(C // 4, 8), bias)
  -> ReLU -> Conv1x1(back to C, bias) -> Hsigmoid -> x * s. ``x.mean(3, keepdim=True).mean(2,
  keepdim=True)`` is written as AdaptiveAvgPool2d(1).
- Block: conv(x) + shortcut(x) with an IdentityLayer shortcut; conv(x) alone without one; x alone
  when the conv is a ZeroLayer (a skipped ProxylessNAS block).
- MobileNetV3: first_conv, blocks, final_expand_layer, global mean, feature_mix_layer (a 1x1 conv
  on the pooled 1x1 map), flatten, classifier. ProxylessNASNets: first_conv, blocks,
  feature_mix_layer, global mean, classifier.
- Activations: relu, relu6, h_swish (Hardswish), h_sigmoid (Hardsigmoid), sigmoid, tanh.
  Dropout is the identity at inference and is kept as a Dropout row only where OFA has a module.

The OFA sampling spaces (ofa_spaces.py) build their template through this same code: an MBConv's
``kernel_size``, ``expand_ratio`` / ``mid_channels`` and ``image_size`` may be ``Choice`` values,
and a block may carry ``"_when"`` (a Choice: the block exists when it is true, a depth choice).
"""
from __future__ import annotations

from ..graph import Input, Model, add, flatten, mul
from ..layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Dropout2d, Hardsigmoid, Hardswish,
                      Linear, ReLU, ReLU6, Sigmoid, Tanh)
from ._template import Choice, Optional, derive

__all__ = ["from_ofa_config", "make_divisible"]

_ACTS = {"relu": ReLU, "relu6": ReLU6, "h_swish": Hardswish, "h_sigmoid": Hardsigmoid,
         "sigmoid": Sigmoid, "tanh": Tanh}


def make_divisible(v, divisor=8, min_val=None):
    """OFA's make_divisible (ofa/utils/common_tools.py; from TensorFlow's MobileNet code)."""
    if min_val is None:
        min_val = divisor
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += divisor
    return new_v


def _int(v):
    """int(v), except that a Choice stays a Choice (a searchable value of a template)."""
    return v if isinstance(v, Choice) else int(v)


def _act(name, x, where):
    if name is None:
        return x
    if name not in _ACTS:
        raise ValueError(f"from_ofa_config: {where}: unknown act_func {name!r}; expected one of {sorted(_ACTS)}")
    return _ACTS[name]()(x, name=f"{where}.act")


def _check_order(cfg, where):
    order = cfg.get("ops_order", "weight_bn_act")
    if order != "weight_bn_act":
        raise ValueError(f"from_ofa_config: {where}: ops_order {order!r} is not supported (only 'weight_bn_act')")


def _conv_layer(cfg, x, where):
    """OFA ConvLayer (weight_bn_act): [dropout] conv [bn] [act]."""
    _check_order(cfg, where)
    if cfg.get("has_shuffle") or cfg.get("use_se"):
        raise ValueError(f"from_ofa_config: {where}: has_shuffle / use_se ConvLayers are not supported")
    k, d = int(cfg["kernel_size"]), int(cfg.get("dilation", 1))
    if cfg.get("dropout_rate", 0) > 0:
        x = Dropout2d(cfg["dropout_rate"])(x, name=f"{where}.dropout")
    x = Conv2d(int(cfg["in_channels"]), int(cfg["out_channels"]), k, int(cfg.get("stride", 1)), k // 2 * d,
               dilation=d, groups=int(cfg.get("groups", 1)), bias=bool(cfg.get("bias", False)))(x, name=f"{where}.conv")
    if cfg.get("use_bn", True):
        x = BatchNorm2d(int(cfg["out_channels"]))(x, name=f"{where}.bn")
    return _act(cfg.get("act_func"), x, where)


def _linear_layer(cfg, x, where):
    """OFA LinearLayer (weight_bn_act): [dropout] linear (use_bn / act not used by OFA's nets)."""
    _check_order(cfg, where)
    if cfg.get("use_bn") or cfg.get("act_func"):
        raise ValueError(f"from_ofa_config: {where}: LinearLayer with use_bn / act_func is not supported")
    if cfg.get("dropout_rate", 0) > 0:
        x = Dropout(cfg["dropout_rate"])(x, name=f"{where}.dropout")
    return Linear(int(cfg["in_features"]), int(cfg["out_features"]), bias=bool(cfg.get("bias", True)))(
        x, name=f"{where}.linear")


def _se(x, channels, where):
    mid = derive(channels, lambda c: make_divisible(c // 4, 8))
    s = AdaptiveAvgPool2d(1)(x, name=f"{where}.mean")
    s = Conv2d(channels, mid, 1, 1, 0, bias=True)(s, name=f"{where}.fc.reduce")
    s = ReLU()(s, name=f"{where}.fc.relu")
    s = Conv2d(mid, channels, 1, 1, 0, bias=True)(s, name=f"{where}.fc.expand")
    s = Hardsigmoid()(s, name=f"{where}.fc.h_sigmoid")
    return mul(x, s, name=f"{where}.mul")


def _mbconv(cfg, x, where):
    cin, cout = int(cfg["in_channels"]), int(cfg["out_channels"])
    k, stride = _int(cfg["kernel_size"]), int(cfg.get("stride", 1))
    e = cfg.get("expand_ratio", 6)
    mid = cfg.get("mid_channels")
    feature = derive(e, lambda r: int(round(cin * r))) if mid is None else _int(mid)
    expands = {v != 1 for v in (e.values if isinstance(e, Choice) else (e,))}
    if len(expands) > 1:
        raise ValueError(f"from_ofa_config: {where}: expand_ratio choices {list(e.values)} mix 1 (no expansion "
                         f"layer) with other ratios; not supported")
    act = cfg.get("act_func", "relu6")
    groups = cfg.get("groups")
    if groups is not None:
        raise ValueError(f"from_ofa_config: {where}: grouped MBConv (groups={groups}) is not supported")
    if expands.pop():
        x = Conv2d(cin, feature, 1, 1, 0, bias=False)(x, name=f"{where}.inverted_bottleneck.conv")
        x = BatchNorm2d(feature)(x, name=f"{where}.inverted_bottleneck.bn")
        x = _act(act, x, f"{where}.inverted_bottleneck")
    x = Conv2d(feature, feature, k, stride, derive(k, lambda v: v // 2), groups=feature, bias=False)(x, name=f"{where}.depth_conv.conv")
    x = BatchNorm2d(feature)(x, name=f"{where}.depth_conv.bn")
    x = _act(act, x, f"{where}.depth_conv")
    if cfg.get("use_se", False):
        x = _se(x, feature, f"{where}.depth_conv.se")
    x = Conv2d(feature, cout, 1, 1, 0, bias=False)(x, name=f"{where}.point_linear.conv")
    return BatchNorm2d(cout)(x, name=f"{where}.point_linear.bn")


def _block(cfg, x, where):
    when = cfg.get("_when")
    if isinstance(when, Choice) and len(set(when.values)) > 1:  # a depth choice: the block may be skipped
        inner = Input(x.shape[1:])
        body = _block({k: v for k, v in cfg.items() if k != "_when"}, inner, where)
        return Optional(Model(inner, body, name=where), when)(x, name=where)
    if when is not None and not int(when):
        return x
    conv = cfg.get("conv", cfg.get("mobile_inverted_conv"))
    short = cfg.get("shortcut")
    if short is not None and short.get("name") not in ("IdentityLayer", "ZeroLayer"):
        raise ValueError(f"from_ofa_config: {where}: shortcut {short.get('name')!r} is not supported")
    if short is not None and short.get("name") == "ZeroLayer":
        short = None
    if conv is None or conv.get("name") == "ZeroLayer":
        return x
    if conv.get("name") not in ("MBConvLayer", "MBInvertedConvLayer"):
        raise ValueError(f"from_ofa_config: {where}: block layer {conv.get('name')!r} is not supported")
    y = _mbconv(conv, x, f"{where}.conv")
    return y if short is None else add(y, x, name=f"{where}.add")


def from_ofa_config(net_config: dict, image_size: int) -> Model:
    """A Once-for-All (MobileNetV3 or ProxylessNASNets) or ProxylessNAS ``net.config`` dict as a
    cc.Model on a 3 x image_size x image_size input (``run.config``'s ``image_size``)."""
    if not isinstance(net_config, dict):
        raise TypeError(f"from_ofa_config: net_config must be a dict (the parsed net.config JSON), "
                        f"got {type(net_config).__name__}")
    kind = net_config.get("name")
    if kind not in ("MobileNetV3", "ProxylessNASNets"):
        raise ValueError(f"from_ofa_config: unknown network {kind!r}; expected 'MobileNetV3' or 'ProxylessNASNets'")
    size = _int(image_size)
    x = Input((3, size, size))
    h = _conv_layer(net_config["first_conv"], x, "first_conv")
    for i, b in enumerate(net_config["blocks"]):
        h = _block(b, h, f"blocks.{i}")
    if kind == "MobileNetV3":
        h = _conv_layer(net_config["final_expand_layer"], h, "final_expand_layer")
        h = AdaptiveAvgPool2d(1)(h, name="global_avg_pool")  # x.mean(3, keepdim).mean(2, keepdim)
        h = _conv_layer(net_config["feature_mix_layer"], h, "feature_mix_layer")
        h = flatten(h, 1, name="view")
    else:
        if net_config.get("feature_mix_layer") is not None:
            h = _conv_layer(net_config["feature_mix_layer"], h, "feature_mix_layer")
        h = AdaptiveAvgPool2d(1)(h, name="global_avg_pool")  # MyGlobalAvgPool2d: x.mean(3).mean(2)
        h = flatten(h, 1, name="view")
    h = _linear_layer(net_config["classifier"], h, "classifier")
    return Model(x, h, name=kind)
