"""How fast can ANY Python API build one MobileNetV2? The floor under issue 4's "one model >= 10^3x".

    python benchmarks/one_model_floor.py [--rounds 201]

Issue 4 asks `cc.count(cc.zoo.mobilenet_v2())` (construction included) to be >= 10^3x faster than
each torch peer's build + count; the fastest peer (ptflops) takes ~60-67 ms here, so the whole
build + count must fit in ~60-67 us. This script times, side by side in one run (medians, rounds
interleaved so the machine's drift hits all alike):

- floor: cnncore's own MobileNetV2 builder (cnncore/zoo/mobile.py, the same code objects: its loops,
  helpers, names and calls) run with its layer, container and graph names bound to the thinnest
  possible classes (``__slots__``, an ``__init__`` with torch's signature that stores its arguments,
  a ``__call__`` that returns a graph node): what torch-style objects (``Conv2d(32, 64, 3,
  bias=False)``, ``block(x, name=...)``) cost with no work inside.
- cnncore: ``cc.zoo.mobilenet_v2()`` and ``cc.count(cc.zoo.mobilenet_v2())``.
- ptflops: build the torch module (torchvision's layout and init, benchmarks/_torch_models.py) and
  count it, torch on one thread (when torch and ptflops are installed).

The floor does none of cnncore's work (argument checks, shapes, packing, counting): they bound from
below what a Python-object API can reach on this interpreter and machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cnncore as cc  # noqa: E402
from cnncore.zoo import mobile  # noqa: E402


# ---- the floor: minimal classes, run by cnncore's own MobileNetV2 builder ------------------------------------------------------------------
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


class ReLU(ReLU6):
    __slots__ = ()


class Input:
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


class Model:
    __slots__ = ("inputs", "outputs", "name")

    def __init__(self, inputs, outputs, name=None):
        self.inputs, self.outputs, self.name = inputs, outputs, name


def add(a, b, name=None):
    return Add()(a, b, name=name)


def flatten(x, start_dim=0, end_dim=-1, name=None):
    return Flatten(start_dim, end_dim)(x, name=name)


def as_call(layer, patched=True):
    return layer


def _rebound(fn, names):
    """`fn` of cnncore/zoo/mobile.py with the same code, its global names looked up in `names`
    first: the zoo's MobileNetV2 builder, line for line, building the classes above."""
    return types.FunctionType(fn.__code__, names, fn.__name__, fn.__defaults__, fn.__closure__)


def floor_builder():
    names = dict(vars(mobile))
    names.update(Input=Input, Model=Model, add=add, flatten=flatten, as_call=as_call, Conv2d=Conv2d,
                 BatchNorm2d=BatchNorm2d, ReLU=ReLU, ReLU6=ReLU6, AdaptiveAvgPool2d=AdaptiveAvgPool2d,
                 Dropout=Dropout, Linear=Linear, Sequential=Sequential)
    for helper in ("_cna", "_head_pool_flatten"):  # the builder's helpers, rebound too
        names[helper] = _rebound(getattr(mobile, helper), names)
    build = _rebound(mobile.mobilenet_v2, names)
    build.__kwdefaults__ = mobile.mobilenet_v2.__kwdefaults__
    return build


def _leaf_layers(model):
    """The leaf layers the floor built, each call visited once (a check that it builds what cnncore
    builds: one leaf per packed row)."""
    seen, leaves = set(), 0

    def module(m):
        return sum(module(c) for c in m.modules) if isinstance(m, Sequential) else 1

    def node(x):
        nonlocal leaves
        if not isinstance(x, _Node) or id(x) in seen:
            return
        seen.add(id(x))
        leaves += module(x.module)
        for i in x.inputs:
            node(i)

    node(model.outputs)
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
    floor = floor_builder()
    n_floor = _leaf_layers(floor())
    entries = {
        "floor: minimal classes": floor,
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
    print(f"# MobileNetV2: {rows} packed rows = layers in the floor; load {os.getloadavg()[0]:.2f}; "
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
