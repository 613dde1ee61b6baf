"""How fast can ANY Python API build one MobileNetV2? The floor under issue 4's "one model >= 10^3x".

    python benchmarks/one_model_floor.py [--rounds 201]

Issue 4 asks `cc.count(cc.zoo.mobilenet_v2())` (construction included) to be >= 10^3x faster than
each torch peer's build + count; the fastest peer (ptflops) takes ~60-67 ms here, so the whole
build + count must fit in ~60-67 us. This script times, side by side in one run (medians, rounds
interleaved so the machine's drift hits all alike):

- floor, tuples: the MobileNetV2 builder of cnncore/zoo/mobile.py transcribed with every layer a
  plain tuple of its arguments, containers tuples, graph calls tuples: no class, no check, no
  count. What the interpreter spends just to run the builder's loops and calls.
- floor, minimal classes: the same with the thinnest possible classes (``__slots__``, an
  ``__init__`` that stores its arguments, a ``__call__`` that returns a graph node): what torch-style
  objects (``Conv2d(32, 64, 3, bias=False)``, ``block(x, name=...)``) cost with no work inside.
- cnncore: ``cc.zoo.mobilenet_v2()`` and ``cc.count(cc.zoo.mobilenet_v2())``.
- ptflops: build the torch module (torchvision's layout and init, benchmarks/_torch_models.py) and
  count it, torch on one thread (when torch and ptflops are installed).

The floors do none of cnncore's work (argument checks, shapes, packing, counting): they bound from
below what a Python-object API can reach on this interpreter and machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cnncore as cc  # noqa: E402
from cnncore.zoo.mobile import _MOBILENET_V2_SETTING, _make_divisible  # noqa: E402


# ---- floor 1: tuples ---------------------------------------------------------------------------
def _cna_t(in_ch, out_ch, kernel_size=3, stride=1, groups=1, dilation=1, activation="ReLU"):
    padding = (kernel_size - 1) // 2 * dilation
    mods = [("Conv2d", in_ch, out_ch, kernel_size, stride, padding, dilation, groups, False),
            ("BatchNorm2d", out_ch, 1e-5)]
    if activation is not None:
        mods.append((activation,))
    return ("Sequential", *mods)


def mobilenet_v2_tuples(num_classes=1000, width_mult=1.0, round_nearest=8, dropout=0.2):
    input_channel = _make_divisible(32 * width_mult, round_nearest)
    last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
    x = inp = ("Input", (3, 224, 224))
    x = ("call", _cna_t(3, input_channel, stride=2, activation="ReLU6"), (x,), "features.0")
    idx = 1
    for t, c, n, s in _MOBILENET_V2_SETTING:
        output_channel = _make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(input_channel * t))
            layers = []
            if t != 1:
                layers.append(_cna_t(input_channel, hidden, 1, activation="ReLU6"))
            layers += [_cna_t(hidden, hidden, stride=stride, groups=hidden, activation="ReLU6"),
                       ("Conv2d", hidden, output_channel, 1, 1, 0, 1, 1, False),
                       ("BatchNorm2d", output_channel, 1e-5)]
            y = ("call", ("Sequential", *layers), (x,), f"features.{idx}.conv")
            x = ("call", ("Add",), (x, y), f"features.{idx}.add") if (
                stride == 1 and input_channel == output_channel) else y
            input_channel = output_channel
            idx += 1
    x = ("call", _cna_t(input_channel, last_channel, 1, activation="ReLU6"), (x,), f"features.{idx}")
    x = ("call", ("AdaptiveAvgPool2d", 1), (x,), "adaptive_avg_pool2d")
    x = ("call", ("Flatten", 1, -1), (x,), "flatten")
    x = ("call", ("Sequential", ("Dropout", dropout), ("Linear", last_channel, num_classes, True)), (x,), "classifier")
    return ("Model", inp, x, "mobilenet_v2")


# ---- floor 2: minimal classes ------------------------------------------------------------------
class _Node:
    __slots__ = ("module", "inputs", "name")

    def __init__(self, module, inputs, name):
        self.module, self.inputs, self.name = module, inputs, name


class _Module:
    __slots__ = ()

    def __call__(self, *inputs, name=None):
        return _Node(self, inputs, name)


# torch's signatures, each argument kept in a slot (the fastest Python object to build: ~2x one
# that keeps *args / **kwargs)
class Conv2d(_Module):
    __slots__ = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias


class BatchNorm2d(_Module):
    __slots__ = ("num_features", "eps")

    def __init__(self, num_features, eps=1e-5):
        self.num_features = num_features
        self.eps = eps


class ReLU6(_Module):
    __slots__ = ("inplace",)

    def __init__(self, inplace=False):
        self.inplace = inplace


class AdaptiveAvgPool2d(_Module):
    __slots__ = ("output_size",)

    def __init__(self, output_size):
        self.output_size = output_size


class Flatten(_Module):
    __slots__ = ("start_dim", "end_dim")

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim = start_dim
        self.end_dim = end_dim


class Dropout(_Module):
    __slots__ = ("p",)

    def __init__(self, p=0.5):
        self.p = p


class Linear(_Module):
    __slots__ = ("in_features", "out_features", "bias")

    def __init__(self, in_features, out_features, bias=True):
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias


class Add(_Module):
    __slots__ = ()


class Sequential(_Module):
    __slots__ = ("modules",)

    def __init__(self, *modules):
        self.modules = modules


def _cna_c(in_ch, out_ch, kernel_size=3, stride=1, groups=1, dilation=1, activation=ReLU6, bn_eps=1e-5):
    padding = (kernel_size - 1) // 2 * dilation
    mods = [Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            BatchNorm2d(out_ch, eps=bn_eps)]
    if activation is not None:
        mods.append(activation())
    return Sequential(*mods)


def mobilenet_v2_classes(num_classes=1000, width_mult=1.0, round_nearest=8, dropout=0.2):
    input_channel = _make_divisible(32 * width_mult, round_nearest)
    last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
    x = inp = _Node(None, (), "input")
    x = _cna_c(3, input_channel, stride=2)(x, name="features.0")
    idx = 1
    for t, c, n, s in _MOBILENET_V2_SETTING:
        output_channel = _make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(input_channel * t))
            layers = []
            if t != 1:
                layers.append(_cna_c(input_channel, hidden, 1))
            layers += [_cna_c(hidden, hidden, stride=stride, groups=hidden),
                       Conv2d(hidden, output_channel, 1, 1, 0, bias=False),
                       BatchNorm2d(output_channel)]
            y = Sequential(*layers)(x, name=f"features.{idx}.conv")
            x = Add()(x, y, name=f"features.{idx}.add") if (stride == 1 and input_channel == output_channel) else y
            input_channel = output_channel
            idx += 1
    x = _cna_c(input_channel, last_channel, 1)(x, name=f"features.{idx}")
    x = AdaptiveAvgPool2d(1)(x, name="adaptive_avg_pool2d")
    x = Flatten(1)(x, name="flatten")
    x = Sequential(Dropout(dropout), Linear(last_channel, num_classes))(x, name="classifier")
    return (inp, x, "mobilenet_v2")


def _leaf_layers(model):
    """The leaf layers of the tuple floor, each call visited once (a check that it builds what
    cnncore builds: one leaf per packed row)."""
    seen, leaves = set(), 0

    def module(m):
        return sum(module(c) for c in m[1:]) if m[0] == "Sequential" else 1

    def node(x):
        nonlocal leaves
        if id(x) in seen or x[0] == "Input":
            return
        seen.add(id(x))
        leaves += module(x[1])
        for i in x[2]:
            node(i)

    node(model[2])
    return leaves


def _ptflops_build_count():
    import ptflops
    import _torch_models as T
    model = T.mobilenet_v2().eval()
    return ptflops.get_model_complexity_info(model, (3, 224, 224), as_strings=False, print_per_layer_stat=False,
                                             backend="pytorch", verbose=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=201)
    ap.add_argument("--peer-rounds", type=int, default=11)
    args = ap.parse_args(argv)

    rows = cc.pack([cc.zoo.mobilenet_v2()]).n_layers
    n_floor = _leaf_layers(mobilenet_v2_tuples())
    entries = {
        "floor: tuples, no class": mobilenet_v2_tuples,
        "floor: minimal classes": mobilenet_v2_classes,
        "cc.zoo.mobilenet_v2()": cc.zoo.mobilenet_v2,
        "cc.count(cc.zoo.mobilenet_v2())": lambda: cc.count(cc.zoo.mobilenet_v2()),
    }
    times = {k: [] for k in entries}
    for _ in range(3):  # warm-up
        for f in entries.values():
            f()
    for _ in range(args.rounds):  # interleaved: drift hits every entry alike
        for k, f in entries.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}

    peer = None
    try:
        import torch
        torch.set_num_threads(1)
        _ptflops_build_count()
        pt = []
        for _ in range(args.peer_rounds):
            t0 = time.perf_counter()
            _ptflops_build_count()
            pt.append(time.perf_counter() - t0)
        peer = statistics.median(pt)
    except ImportError as e:
        print(f"(ptflops not timed: {e})")

    if n_floor != rows:
        sys.exit(f"the floor builds {n_floor} layers, cnncore {rows} rows: not the same model")
    print(f"# MobileNetV2: {rows} packed rows = layers in the floors; load {os.getloadavg()[0]:.2f}; "
          f"medians of {args.rounds} interleaved rounds")
    if peer:
        print(f"# ptflops build + count: {peer * 1e3:.1f} ms (median of {args.peer_rounds}): "
              f"10^3x needs <= {peer * 1e6 / 1e3:.1f} us")
    print("\n| entry | median | per layer | share of the 10^3x budget |\n|---|---|---|---|")
    for k, v in med.items():
        share = f"{v / (peer / 1e3):.2f}" if peer else "-"
        print(f"| {k} | {v * 1e6:.1f} us | {v * 1e9 / rows:.0f} ns | {share} |")


if __name__ == "__main__":
    main()
