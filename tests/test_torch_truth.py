"""Truth from outside the code: random layer stacks built twice, as a torch.nn.Sequential and as a
cnncore Sequential, must agree.

For every stack (a seeded `random.Random(seed)`, so a failure names its seed and is reproducible):
- torch raises (at construction or in the forward pass)  ->  cnncore must reject it too
  (cc.ShapeError from count, or a ValueError/TypeError from cnncore's own layer constructors);
- torch succeeds  ->  cnncore must succeed, with
  params  == sum(p.numel() for p in m.parameters()),
  buffers == sum(b.numel() for b in m.buffers()),
  output_shape == the forward pass's shape,
  macs == FlopCounterMode total // 2.
cnncore's flops are not compared (torch does not count them).

The generator uses torch itself as its shape oracle while it builds a stack (so most stacks are
valid and deep), and now and then writes a deliberately bad layer (wrong channels, groups not
dividing, kernel larger than the input, pool padding over half the kernel, Linear in_features
mismatch, 'same' with stride > 1, wrong number of dimensions, ...). A stack ends at the first layer
torch rejects.

Reproduce one seed: `python tests/test_torch_truth.py SEED` prints the stack, torch's and cnncore's answers.
"""
from __future__ import annotations

import functools
import random
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnncore as cc  # noqa: E402

N_SEEDS = 400
BATCH_SIZES = (1, 2)
MAX_NUMEL = 10000  # per stack tensor (batch 2); keeps every forward pass tiny

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# Specs: (name, args, kwargs); the same call builds the torch module and the cnncore layer.
def spec_repr(spec):
    name, args, kwargs = spec
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def stack_repr(specs):
    return "Sequential(" + ", ".join(spec_repr(s) for s in specs) + ")"


def build_torch(specs):
    return nn.Sequential(*(getattr(nn, name)(*args, **kwargs) for name, args, kwargs in specs)).eval()


def build_cc(specs):
    return cc.Sequential(*(getattr(cc, name)(*args, **kwargs) for name, args, kwargs in specs))


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0] or [1]


def _maybe_tuple(rng, values):
    """An int when all equal and the coin says so, else the tuple (as torch accepts both)."""
    if len(set(values)) == 1 and rng.random() < 0.6:
        return values[0]
    return tuple(values)


ACTIVATIONS = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
               "Hardsigmoid"]
UPSAMPLE_FLOAT_SCALES = [0.5, 1.5, 2.0, 2.5, 0.75, 1.25]   # exact binary fractions
UPSAMPLE_DECIMAL_SCALES = [0.7, 1.3, 1.1]                   # not exact in binary (torch accepts them)


def propose(rng, shape, bad):
    """One layer spec for an incoming torch shape (batch included). bad=True: try to make it invalid."""
    nd = len(shape)
    C = shape[1] if nd >= 2 else shape[0]
    spatial = list(shape[2:])
    d = nd - 2  # spatial dims if this is (N, C, *spatial)
    kinds = ["act", "act", "linear", "layernorm", "softmax", "flatten", "dropout", "prelu"]
    if nd >= 2:
        kinds += ["groupnorm"]
    if nd in (2, 3):
        kinds += ["bn"] * 2
    if 1 <= d <= 3:
        kinds += ["conv"] * 6 + ["convT"] * 2 + ["pool"] * 3 + ["adaptive"] * 2 + ["upsample"] + ["bn"] * 2
    if nd >= 3:
        kinds += ["shuffle"]
    if nd in (3, 4) or (nd >= 2 and rng.random() < 0.2):
        kinds += ["zeropad"]
    kind = rng.choice(kinds)

    if kind == "act":
        name = rng.choice(ACTIVATIONS)
        return (name, (0.1,), {}) if name == "LeakyReLU" and rng.random() < 0.5 else (name, (), {})

    if kind == "prelu":
        if nd < 2 or rng.random() < 0.4:
            return ("PReLU", (), {})
        return ("PReLU", (), {"num_parameters": C + 1 if bad else C})

    if kind == "softmax":
        if bad:
            return ("Softmax", (rng.choice([nd, -nd - 1]),), {})
        if rng.random() < 0.15:
            return ("Softmax", (), {})  # torch's implicit dim
        return ("Softmax", (), {"dim": rng.randint(-nd, nd - 1)})

    if kind == "flatten":
        if bad:
            return ("Flatten", (rng.choice([nd, -nd - 1, 0]), rng.choice([nd, -nd - 1])), {})
        s = rng.randint(-nd, nd - 1)
        e = rng.randint(-nd, nd - 1)
        if rng.random() < 0.5:
            return ("Flatten", (), {})
        if rng.random() < 0.85 and (s % nd) > (e % nd):
            s, e = e, s
        return ("Flatten", (s, e), {})

    if kind == "dropout":
        name = rng.choice(["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Identity"])
        if name == "Dropout1d" and nd not in (2, 3) and not bad and rng.random() < 0.7:
            name = "Dropout"
        return (name, (), {"p": rng.choice([0.0, 0.1, 0.5])}) if name != "Identity" else (name, (), {})

    if kind == "linear":
        out = rng.randint(1, 12)
        bias = rng.random() < 0.7
        if rng.random() < 0.15 and not bad:
            return ("LazyLinear", (out,), {"bias": bias})
        inf = shape[-1] + rng.choice([1, -1] if shape[-1] > 1 else [1]) if bad else shape[-1]
        return ("Linear", (inf, out), {"bias": bias})

    if kind == "layernorm":
        k = rng.randint(1, min(3, nd))
        ns = list(shape[nd - k:])
        if bad:
            ns[rng.randrange(k)] += 1
        aff = rng.random() < 0.7
        kw = {"elementwise_affine": aff}
        if aff and rng.random() < 0.3:
            kw["bias"] = False
        return ("LayerNorm", (ns[0] if k == 1 and rng.random() < 0.5 else tuple(ns),), kw)

    if kind == "groupnorm":
        g = rng.choice(_divisors(C))
        ch = C
        if bad:
            if rng.random() < 0.5:
                ch = C * 2  # channel mismatch (g still divides)
            else:
                g = C + 1 if C > 1 else 2  # groups not dividing the channels (construction error)
        return ("GroupNorm", (g, ch), {"affine": rng.random() < 0.7})

    if kind == "bn":
        want = {2: 1, 3: 1, 4: 2, 5: 3}.get(nd, 1)
        dd = want
        if bad and rng.random() < 0.5:
            dd = rng.choice([x for x in (1, 2, 3) if x != want and not (nd == 2 and x == 1)])
        kw = {}
        if rng.random() < 0.3:
            kw["affine"] = False
        if rng.random() < 0.3:
            kw["track_running_stats"] = False
        if rng.random() < 0.25 and not bad:
            return (f"LazyBatchNorm{dd}d", (), kw)
        nf = C + 1 if bad and dd == want else C
        return (f"BatchNorm{dd}d", (nf,), kw)

    if kind == "shuffle":
        if bad:
            return ("ChannelShuffle", (rng.choice([g for g in range(2, C + 2) if C % g] or [C + 1]),), {})
        return ("ChannelShuffle", (rng.choice(_divisors(C)),), {})

    if kind == "zeropad":
        if rng.random() < 0.4:
            return ("ZeroPad2d", (rng.randint(0, 2),), {})
        lo = -2 if not bad else -5
        return ("ZeroPad2d", (tuple(rng.randint(lo, 2) for _ in range(4)),), {})

    # ---- spatial layers -------------------------------------------------------------------
    dd = d
    if bad and rng.random() < 0.25:
        # wrong number of dimensions: avoid d' = d + 1, whose layer would take our batched (N, C, *d)
        # tensor as an unbatched (C', *d') one in torch (the batch read as channels)
        dd = rng.choice([x for x in (1, 2, 3) if x not in (d, d + 1)] or [d])

    if kind == "conv":
        lazy = rng.random() < 0.15 and not bad
        g = rng.choice(_divisors(C)) if rng.random() < 0.5 else 1
        depthwise = rng.random() < 0.15
        if depthwise:
            g = C
        out = g * rng.randint(1, 2 if g > 4 else 4)
        if out > 24:
            out = g
        ks = [rng.randint(1, 3) for _ in range(dd)]
        stride = [rng.choice([1, 1, 2]) for _ in range(dd)]
        dil = [rng.choice([1, 1, 2]) for _ in range(dd)]
        r = rng.random()
        if r < 0.15 and all(s == 1 for s in stride):
            pad = "same"
        elif r < 0.25:
            pad = "valid"
        else:
            pad = _maybe_tuple(rng, [rng.randint(0, 2) for _ in range(dd)])
        inc = C
        if bad:
            which = rng.choice(["channels", "groups", "same", "kernel", "ndim"])
            if which == "channels":
                inc = C + 1
            elif which == "groups":
                g = rng.choice([x for x in range(2, C + 3) if C % x or out % x] or [C + 1])
            elif which == "same":
                pad, stride = "same", [2] * dd
            elif which == "kernel" and dd == d:
                ks = [sp + rng.randint(3, 4) for sp in spatial]
                pad = 0
        kw = {"stride": _maybe_tuple(rng, stride), "padding": pad, "dilation": _maybe_tuple(rng, dil),
              "groups": g, "bias": rng.random() < 0.7}
        if lazy:
            return (f"LazyConv{dd}d", (out, _maybe_tuple(rng, ks)), kw)
        return (f"Conv{dd}d", (inc, out, _maybe_tuple(rng, ks)), kw)

    if kind == "convT":
        lazy = rng.random() < 0.3 and not bad
        g = rng.choice(_divisors(C)) if rng.random() < 0.4 else 1
        out = g * rng.randint(1, 3)
        ks = [rng.randint(1, 3) for _ in range(dd)]
        stride = [rng.choice([1, 2, 2]) for _ in range(dd)]
        dil = [rng.choice([1, 1, 2]) for _ in range(dd)]
        pad = [rng.choice([0, 0, 1, 2]) for _ in range(dd)]
        opad = [rng.randint(0, max(s, dl) - 1) for s, dl in zip(stride, dil)]
        inc = C
        if bad:
            which = rng.choice(["channels", "groups", "opad", "ndim"])
            if which == "channels":
                inc = C + 1
            elif which == "groups":
                g = rng.choice([x for x in range(2, C + 3) if C % x or out % x] or [C + 1])
            elif which == "opad":
                opad = [max(s, dl) for s, dl in zip(stride, dil)]
        kw = {"stride": _maybe_tuple(rng, stride), "padding": _maybe_tuple(rng, pad),
              "output_padding": _maybe_tuple(rng, opad), "groups": g, "bias": rng.random() < 0.7,
              "dilation": _maybe_tuple(rng, dil)}
        if lazy:
            return (f"LazyConvTranspose{dd}d", (out, _maybe_tuple(rng, ks)), kw)
        return (f"ConvTranspose{dd}d", (inc, out, _maybe_tuple(rng, ks)), kw)

    if kind == "pool":
        is_max = rng.random() < 0.55
        ks = [rng.randint(1, 3) for _ in range(dd)]
        pad = [rng.randint(0, k // 2) for k in ks]
        if bad and rng.random() < 0.6:
            i = rng.randrange(dd)
            pad[i] = ks[i] // 2 + 1
        kw = {"padding": _maybe_tuple(rng, pad), "ceil_mode": rng.random() < 0.4}
        if rng.random() < 0.7:
            kw["stride"] = _maybe_tuple(rng, [rng.randint(1, 3) for _ in range(dd)])
        if is_max:
            kw["dilation"] = _maybe_tuple(rng, [rng.choice([1, 1, 2]) for _ in range(dd)])
            return (f"MaxPool{dd}d", (_maybe_tuple(rng, ks),), kw)
        return (f"AvgPool{dd}d", (_maybe_tuple(rng, ks),), kw)

    if kind == "adaptive":
        name = f"Adaptive{rng.choice(['Avg', 'Max'])}Pool{dd}d"
        sp = spatial if dd == d else [5] * dd
        sizes = [rng.randint(1, s + 2) for s in sp]
        if dd == 1:
            return (name, (sizes[0],), {})
        if rng.random() < 0.3:
            sizes[rng.randrange(dd)] = None
        return (name, (_maybe_tuple(rng, sizes),), {})

    if kind == "upsample":
        modes = {1: ["nearest", "linear"], 2: ["nearest", "bilinear", "bicubic"],
                 3: ["nearest", "trilinear"]}[d]
        mode = rng.choice(modes)
        nvals = d
        if bad:
            if rng.random() < 0.5:
                mode = rng.choice([m for m in ("linear", "bilinear", "trilinear", "bicubic") if m not in modes])
            else:
                nvals = rng.choice([x for x in (1, 2, 3) if x != d])
        if rng.random() < 0.4:
            vals = [rng.randint(1, 2 * s + 1) for s in (spatial + [4, 4, 4])[:nvals]]
            return ("Upsample", (), {"size": _maybe_tuple(rng, vals) if nvals == d else tuple(vals), "mode": mode})
        pool = UPSAMPLE_FLOAT_SCALES + [2, 3] + (UPSAMPLE_DECIMAL_SCALES if rng.random() < 0.5 else [])
        vals = [rng.choice(pool) for _ in range(nvals)]
        sf = _maybe_tuple(rng, vals) if nvals == d else tuple(vals)
        return ("Upsample", (), {"scale_factor": sf, "mode": mode})

    raise AssertionError(kind)


def _input_shape(rng):
    kind = rng.choice(["1d", "2d", "2d", "2d", "3d", "3d", "flat", "seq"])
    C = rng.choice([1, 2, 3, 4, 6, 8])
    if kind == "1d":
        return (C, rng.randint(3, 20))
    if kind == "2d":
        return (C, rng.randint(2, 12), rng.randint(2, 12))
    if kind == "3d":
        return (C, rng.randint(2, 6), rng.randint(2, 6), rng.randint(2, 6))
    if kind == "flat":
        return (rng.randint(1, 16),)
    return (rng.randint(1, 6), rng.randint(1, 10))


def _quiet():
    warnings.simplefilter("ignore")


@functools.lru_cache(maxsize=None)
def make_stack(seed):
    """(input_shape without batch, specs): built with torch as the shape oracle (batch 2)."""
    rng = random.Random(seed)
    in_shape = _input_shape(rng)
    n_layers = rng.randint(1, 7)
    bad_at = rng.randrange(n_layers) if rng.random() < 0.3 else -1
    specs = []
    x = torch.randn(2, *in_shape)
    with warnings.catch_warnings(), torch.no_grad():
        _quiet()
        for i in range(n_layers):
            spec = propose(rng, tuple(x.shape), bad=(i == bad_at))
            try:
                m = getattr(nn, spec[0])(*spec[1], **spec[2]).eval()
                y = m(x)
            except Exception:
                specs.append(spec)  # torch rejects it: the stack ends here
                break
            if y.numel() > MAX_NUMEL:
                continue  # too big for a quick test: drop the layer
            specs.append(spec)
            x = y
    return in_shape, tuple(specs)


@functools.lru_cache(maxsize=None)
def torch_truth(seed, batch_size):
    """('ok', params, buffers, output_shape, macs) or ('error', message) from real torch."""
    in_shape, specs = make_stack(seed)
    torch.manual_seed(seed)
    with warnings.catch_warnings(), torch.no_grad():
        _quiet()
        try:
            m = build_torch(specs)
        except Exception as e:  # noqa: BLE001  (torch's own constructors)
            return ("error", f"construction: {type(e).__name__}: {e}")
        fc = FlopCounterMode(display=False)
        try:
            with fc:
                y = m(torch.randn(batch_size, *in_shape))
        except Exception as e:  # noqa: BLE001
            return ("error", f"forward: {type(e).__name__}: {str(e)[:200]}")
    params = sum(p.numel() for p in m.parameters())
    buffers = sum(b.numel() for b in m.buffers())
    return ("ok", params, buffers, tuple(y.shape), fc.get_total_flops() // 2)


def cc_answer(seed, batch_size, backend):
    """('ok', params, buffers, output_shape, macs) or ('error', message) from cnncore."""
    in_shape, specs = make_stack(seed)
    try:
        model = build_cc(specs)
    except (ValueError, TypeError) as e:
        return ("error", f"construction: {type(e).__name__}: {e}")
    try:
        r = cc.count(model, in_shape, batch_size=batch_size, backend=backend)
    except cc.ShapeError as e:
        return ("error", f"ShapeError: {e}")
    return ("ok", r.params, r.buffers, tuple(r.output_shape), r.macs)


def describe(seed, batch_size, backend):
    in_shape, specs = make_stack(seed)
    return (f"seed={seed} batch_size={batch_size} backend={backend}\n  input {(batch_size,) + in_shape}\n"
            f"  {stack_repr(specs)}\n  torch:   {torch_truth(seed, batch_size)}\n"
            f"  cnncore: {cc_answer(seed, batch_size, backend)}")


def _agree(t, c):
    if t[0] == "error" or c[0] == "error":
        return t[0] == c[0]
    return t == c


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_stack_matches_torch(seed, backend):
    for bs in BATCH_SIZES:
        t = torch_truth(seed, bs)
        c = cc_answer(seed, bs, backend)
        assert _agree(t, c), describe(seed, bs, backend)


# ---------------------------------------------------------------------------------------------
# The generator itself: enough invalid stacks, and every layer type reached in valid stacks.
ALL_LAYERS = {
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
    "LazyConvTranspose3d", "Linear", "LazyLinear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LayerNorm", "GroupNorm", *ACTIVATIONS,
    "PReLU", "Softmax", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Flatten", "Identity", "Dropout", "Dropout1d",
    "Dropout2d", "Dropout3d", "AlphaDropout", "ZeroPad2d", "Upsample", "ChannelShuffle"}


def test_generator_covers_every_layer_and_both_outcomes():
    valid = invalid = 0
    seen = set()
    options = set()
    for seed in range(N_SEEDS):
        _, specs = make_stack(seed)
        ok = torch_truth(seed, 2)[0] == "ok"
        valid += ok
        invalid += not ok
        for name, args, kw in (specs if ok else specs[:-1]):
            seen.add(name)
            if kw.get("padding") in ("same", "valid"):
                options.add(kw["padding"])
            if kw.get("groups", 1) > 1:
                options.add("groups")
            if kw.get("ceil_mode"):
                options.add(f"ceil_{name[:3]}")
            if name == "Upsample":
                options.add(kw["mode"])
            if name == "ZeroPad2d" and isinstance(args[0], tuple) and min(args[0]) < 0:
                options.add("negative pad")
            if name.startswith("Adaptive") and isinstance(args[0], tuple) and None in args[0]:
                options.add("adaptive None")
    assert invalid >= N_SEEDS // 6, (valid, invalid)
    assert valid >= N_SEEDS // 2, (valid, invalid)
    assert ALL_LAYERS - seen == set()
    assert {"same", "valid", "groups", "ceil_Max", "ceil_Avg", "nearest", "linear", "bilinear",
            "bicubic", "trilinear", "negative pad", "adaptive None"} <= options


# ---------------------------------------------------------------------------------------------
# Hand-written invalid stacks: torch must reject each (checked, so the test itself is right) and so
# must cnncore; and hand-written valid edge cases.
INVALID = [
    ((3, 8, 8), [("Conv2d", (4, 8, 3), {})]),                                   # wrong in_channels
    ((4, 8, 8), [("Conv2d", (4, 6, 3), {"groups": 4})]),                        # groups not dividing out
    ((6, 8, 8), [("Conv2d", (6, 6, 3), {"groups": 4})]),                        # groups not dividing in
    ((3, 4, 4), [("Conv2d", (3, 8, 5), {})]),                                   # kernel larger than input
    ((3, 4, 4), [("Conv2d", (3, 8, 3), {"dilation": 2})]),                      # dilated kernel too large
    ((3, 8, 8), [("Conv2d", (3, 8, 3), {"stride": 2, "padding": "same"})]),     # 'same' with stride > 1
    ((3, 8), [("Conv2d", (3, 8, 3), {})]),                                      # too few dims (2-D + batch -> unbatched C=1)
    ((3, 4, 4, 4), [("Conv2d", (3, 8, 3), {})]),                                # too many dims
    ((3, 8, 8), [("MaxPool2d", (3,), {"padding": 2})]),                         # pool padding > half kernel
    ((3, 8, 8), [("AvgPool2d", (2,), {"padding": 2})]),
    ((3, 2, 2), [("MaxPool2d", (3,), {})]),                                     # output < 1
    ((3, 8), [("MaxPool1d", (3,), {"dilation": 4})]),                           # dilated window too large
    ((10,), [("Linear", (11, 4), {})]),                                         # in_features mismatch
    ((3, 8, 8), [("Flatten", (), {}), ("Linear", (191, 10), {})]),
    ((3, 8, 8), [("BatchNorm2d", (4,), {})]),                                   # num_features mismatch
    ((3, 8, 8), [("BatchNorm1d", (3,), {})]),                                   # wrong ndim for BatchNorm1d
    ((3, 8), [("BatchNorm2d", (3,), {})]),
    ((4, 8), [("GroupNorm", (2, 8), {})]),                                      # num_channels mismatch
    ((4, 8), [("LayerNorm", (7,), {})]),                                        # normalized_shape mismatch
    ((4, 8), [("LayerNorm", ((5, 8),), {})]),
    ((4, 8), [("Softmax", (3,), {})]),                                          # dim out of range
    ((4, 8), [("Softmax", (-4,), {})]),
    ((4, 8), [("Flatten", (3,), {})]),                                          # start_dim out of range
    ((4, 8, 2), [("Flatten", (2, 1), {})]),                                     # start after end
    ((4, 8), [("PReLU", (5,), {})]),                                            # num_parameters mismatch
    ((6, 8), [("ChannelShuffle", (4,), {})]),                                   # groups not dividing C
    ((6,), [("ChannelShuffle", (2,), {})]),                                     # needs > 2 dims
    ((3, 2), [("ConvTranspose1d", (3, 4, 1), {"padding": 1})]),                 # output 0 < 1
    ((3, 1), [("ConvTranspose1d", (3, 4, 1), {"padding": 1})]),
    ((3, 4), [("ConvTranspose1d", (3, 4, 3), {"stride": 2, "output_padding": 2})]),  # output_padding too big
    ((3, 4), [("ConvTranspose1d", (4, 4, 3), {})]),                             # wrong in_channels
    ((3, 4), [("Upsample", (), {"scale_factor": 2, "mode": "bilinear"})]),      # mode needs 4-D
    ((3, 4, 4), [("Upsample", (), {"size": (4, 4, 4)})]),                       # entries != spatial dims
    ((3, 4, 4), [("Upsample", (), {"scale_factor": 0.2})]),                     # output < 1
    ((3, 4, 4), [("ZeroPad2d", ((-2, -3, 0, 0),), {})]),                        # crop below zero
    ((4,), [("Flatten", (0,), {}), ("ZeroPad2d", (1,), {})]),                   # 1-D input: padding longer than 2 * ndim
    ((3, 4, 4), [("Dropout1d", (), {})]),                                        # dropout1d: 2-D or 3-D only
    ((3, 4, 4, 4), [("Dropout1d", (), {})]),
    ((3, 2, 4, 4), [("AvgPool3d", (3,), {"padding": 1})]),                      # avg_pool3d: input smaller than kernel
    ((3, 2, 4, 4), [("AvgPool3d", ((3, 1, 1),), {"padding": (1, 0, 0)})]),
    ((3, 8, 8), [("AdaptiveAvgPool1d", (2,), {})]),                             # wrong ndim
    ((3, 8, 8), [("Conv2d", (3, 8, 3), {}), ("Conv2d", (3, 8, 3), {})]),        # second layer wrong
    ((3, 8, 8), [("LazyConv2d", (8, 3), {}), ("Conv2d", (3, 8, 3), {})]),       # lazy infers 3, next expects 3 but gets 8
]


# torch rejects these at batch size 1 only: statistics over a single value (BatchNorm without running
# stats uses the batch's statistics even in eval mode; GroupNorm checks N * C/G * prod(spatial) > 1).
INVALID_AT_BATCH_1 = [
    ((2, 1, 1), [("BatchNorm2d", (2,), {"track_running_stats": False})]),
    ((5,), [("BatchNorm1d", (5,), {"affine": False, "track_running_stats": False})]),
    ((3, 1), [("GroupNorm", (3, 3), {})]),
    ((4,), [("GroupNorm", (4, 4), {"affine": False})]),
]
INVALID_CASES = [(s, specs, BATCH_SIZES) for s, specs in INVALID] + [(s, specs, (1,)) for s, specs in INVALID_AT_BATCH_1]


@pytest.mark.parametrize("case", range(len(INVALID_CASES)))
def test_invalid_rejected_by_torch_and_cnncore(case, backend):
    in_shape, specs, batch_sizes = INVALID_CASES[case]
    for bs in batch_sizes:
        with warnings.catch_warnings():
            _quiet()
            with pytest.raises(Exception):  # the test is right: torch rejects it
                build_torch(specs)(torch.randn(bs, *in_shape))
        try:
            model = build_cc(specs)
        except (ValueError, TypeError):
            continue
        with pytest.raises(cc.ShapeError):
            cc.count(model, in_shape, batch_size=bs, backend=backend)


VALID_EDGES = [
    ((3, 9, 9), [("MaxPool2d", (2,), {"ceil_mode": True})]),                    # 9 -> 5 with ceil
    ((3, 5), [("MaxPool1d", (2,), {"stride": 2, "padding": 1, "ceil_mode": True})]),  # last window dropped
    ((3, 6, 6), [("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True})]),
    ((3, 7, 5), [("AdaptiveAvgPool2d", ((3, None),), {})]),                     # non-divisible, None
    ((3, 7, 5, 4), [("AdaptiveMaxPool3d", ((None, 3, 6),), {})]),               # larger than input
    ((3, 8), [("Conv1d", (3, 6, 4), {"padding": "same", "dilation": 3, "groups": 3})]),
    ((4, 5, 5), [("Conv2d", (4, 4, 3), {"groups": 4, "bias": False, "padding": (1, 0)})]),  # depthwise
    ((2, 3, 3), [("ConvTranspose2d", (2, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1,
                                                 "groups": 2, "dilation": 2})]),
    ((2, 3, 3, 3), [("ConvTranspose3d", (2, 2, 2), {"stride": (1, 2, 3), "output_padding": (0, 1, 2)})]),
    ((5, 7), [("Linear", (7, 3), {})]),                                         # N-D Linear
    ((2, 3, 4), [("Linear", (4, 3), {}), ("LazyLinear", (5,), {})]),
    ((6, 4, 4), [("ChannelShuffle", (3,), {}), ("PReLU", (6,), {})]),
    ((3, 4, 4), [("Upsample", (), {"scale_factor": 1.5, "mode": "bicubic"})]),
    ((3, 4, 4), [("Upsample", (), {"size": (3, 9), "mode": "bilinear"})]),
    ((3, 5), [("Upsample", (), {"scale_factor": 2.5, "mode": "linear"})]),
    ((3, 2, 3, 4), [("Upsample", (), {"scale_factor": (2, 1, 0.5), "mode": "trilinear"})]),
    ((3, 10), [("Upsample", (), {"scale_factor": 0.7})]),                        # torch: floor(10 * 0.7) = 7 in double
    ((3, 10, 10), [("Upsample", (), {"scale_factor": 1.1, "mode": "bilinear"})]),
    ((3, 10), [("Upsample", (), {"scale_factor": 1.3, "mode": "linear"})]),
    ((3, 4, 4), [("ZeroPad2d", ((1, -2, 0, 3),), {})]),
    ((5,), [("ZeroPad2d", ((1, 1, 2, 0),), {})]),                                # torch pads the last two dims of any ndim >= 2 (here N, F)
    ((2, 3, 4, 5), [("ZeroPad2d", (1,), {})]),
    ((4, 6), [("Dropout1d", (), {}), ("Dropout2d", (), {}), ("Dropout3d", (), {})]),
    ((3, 2, 2, 2), [("AvgPool3d", (2,), {"padding": 1})]),
    ((2, 3), [("BatchNorm1d", (2,), {"track_running_stats": False})]),
    ((8, 3), [("GroupNorm", (2, 4), {"affine": False})]),                       # torch checks C only via the weight
    ((3, 2, 2), [("BatchNorm2d", (4,), {"affine": False, "track_running_stats": False})]),
    ((3, 4, 4), [("LazyBatchNorm2d", (), {}), ("GroupNorm", (3, 3), {}), ("LayerNorm", ((4, 4),), {})]),
    ((3, 4, 4), [("BatchNorm2d", (3,), {"affine": False}), ("BatchNorm2d", (3,), {"track_running_stats": False})]),
    ((3, 4, 4), [("Flatten", (0, -2), {}), ("Softmax", (), {})]),
    ((3, 4, 4, 2), [("LazyConv3d", (4, (2, 1, 2)), {"padding": "valid"}), ("LazyConvTranspose3d", (2, 2), {})]),
]


@pytest.mark.parametrize("case", range(len(VALID_EDGES)))
def test_valid_edges_match_torch(case, backend):
    in_shape, specs = VALID_EDGES[case]
    for bs in BATCH_SIZES:
        with warnings.catch_warnings(), torch.no_grad():
            _quiet()
            m = build_torch(specs)
            fc = FlopCounterMode(display=False)
            with fc:
                y = m(torch.randn(bs, *in_shape))
        want = ("ok", sum(p.numel() for p in m.parameters()), sum(b.numel() for b in m.buffers()),
                tuple(y.shape), fc.get_total_flops() // 2)
        try:
            r = cc.count(build_cc(specs), in_shape, batch_size=bs, backend=backend)
            got = ("ok", r.params, r.buffers, tuple(r.output_shape), r.macs)
        except (ValueError, TypeError) as e:
            got = ("error", f"{type(e).__name__}: {e}")
        assert got == want, f"{stack_repr(specs)} on {(bs,) + in_shape}"


def test_empty_tensors_are_a_documented_deviation(backend):
    """torch lets ZeroPad2d crop a dimension to exactly 0; cnncore does not model empty tensors and
    refuses with OUTPUT_SIZE (docs/conventions.md, ZeroPad2d). Check both halves of that sentence."""
    with torch.no_grad():
        y = torch.nn.ZeroPad2d((-2, -2, 0, 0))(torch.randn(1, 2, 3, 4))
    assert tuple(y.shape) == (1, 2, 3, 0)
    with pytest.raises(cc.ShapeError, match="too small"):
        cc.count(cc.Sequential(cc.ZeroPad2d((-2, -2, 0, 0))), (2, 3, 4), backend=backend)


if __name__ == "__main__":  # python tests/test_torch_truth.py SEED [SEED...]
    for s in sys.argv[1:]:
        for b in ("core", "reference"):
            for bs in BATCH_SIZES:
                print(describe(int(s), bs, b))
