"""Conventions of other counters, as data: per layer type, a weight for each per-layer term.

A convention's count of a model is, over the layers that run,
    sum of W[layer type][term] * term,
with the terms below, all computed by the core for every layer. The named conventions reproduce
the number another tool prints; users define their own the same way (no recompilation):

    cc.Convention("mine", {"Conv2d": {"macs": 1, "bias_out": 1}, "Linear": {"macs": 1}})

Terms: macs (the layer's MACs), flops (cnncore's flops), out (numel of the output), in (numel of
the first input), bias_out (numel of the output for a convolution or linear layer with a bias),
params, kvol_out (numel of the output times the kernel volume, for convolutions and pooling),
one (1 per layer), out_dot (numel of the output times (in_channels / groups) times the kernel
volume for convolutions and transposed convolutions, the MACs for linear layers), params_n (params
times the batch), affine_in (numel of the input of a BatchNorm / LayerNorm / GroupNorm with affine
weights), up_nearest / up_linear / up_bilinear / up_bicubic / up_trilinear (numel of the output of
an Upsample in that mode), up_size (an Upsample given a size: that size, one value alone or the
product of the values given, as calflops and DeepSpeed count it), up_scale_in / up_scale_out (an
Upsample given a scale factor: numel of its input / output), batchstats_in (numel of the input of a
BatchNorm without running stats, which normalises by batch statistics in eval too), avg_window
(AvgPool: batch x channels x the product over dimensions of the window sizes clipped to the padded
input), sym_macs / sym_bias_out (a convolution's macs / bias_out, except that padding='same' is
taken as d(k-1)//2 on both sides, one output short per dimension with an odd total padding, as
calflops and DeepSpeed size it), same_macs (the macs of a convolution with padding='same', else 0).
docs/conventions.md has the table of what each named convention counts.

Rows flagged functional (FLAGS bit 256: from_torch sets it for F.relu, F.adaptive_avg_pool2d, torch.add,
a.mul(b)...; not for the operators a + b, a * b) are weighed by the `functional` table where it lists
their layer type, else like the module; rows of other calls (bit 512: torch.relu, x.mean((2, 3)),
x.softmax...) by the `calls` table, else like functional rows:
tools that hook modules only (thop) do not see functional calls, tools that patch torch.nn.functional
(ptflops) see both and count an nn.ReLU twice (its hook and the F.relu it calls).
"""
from __future__ import annotations

import numpy as np

from . import _format as F

TERMS = ("macs", "flops", "out", "in", "bias_out", "params", "kvol_out", "one", "out_dot", "params_n",
         "affine_in", "up_nearest", "up_linear", "up_bilinear", "up_bicubic", "up_trilinear", "up_size",
         "up_scale_in", "up_scale_out", "batchstats_in", "avg_window", "sym_macs", "sym_bias_out",
         "same_macs")
N_TERMS = len(TERMS)

CONV = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
MATMUL = CONV + ("Linear",)
BATCHNORM = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
MAXPOOL = ("MaxPool1d", "MaxPool2d", "MaxPool3d")
AVGPOOL = ("AvgPool1d", "AvgPool2d", "AvgPool3d")
ADAPTIVE_AVG = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
ADAPTIVE_MAX = ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
POOLS = MAXPOOL + AVGPOOL + ADAPTIVE_AVG + ADAPTIVE_MAX


def _table(name, weights, what):
    """{layer type: {term: int}} checked against the format's ops and TERMS."""
    table = {}
    for op, terms in dict(weights).items():
        if op not in F.OPS:
            raise ValueError(f"Convention {name!r}: unknown layer type {op!r}{what}; expected one of {sorted(F.OPS)}")
        for term, w in dict(terms).items():
            if term not in TERMS:
                raise ValueError(f"Convention {name!r}: unknown term {term!r}; expected one of {TERMS}")
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)):
                raise TypeError(f"Convention {name!r}: weight of {op}.{term} must be an int, got {w!r}")
        table[op] = {t: int(w) for t, w in terms.items()}
    return table


class Convention:
    """A named table {layer type: {term: integer weight}}; unlisted layers and terms weigh 0.

    `functional` ({layer type: {term: weight}}) weighs rows flagged functional (a torch.nn.functional
    or torch call, not an nn.Module); a layer type it does not list weighs as in `weights`.
    """

    def __init__(self, name, weights, doc="", functional=None, calls=None):
        self.name = str(name)
        self.doc = doc
        self.weights = _table(name, weights, "")
        self.functional = _table(name, functional or {}, " in functional")
        self.calls = None if calls is None else _table(name, calls, " in calls")

    def matrix(self) -> np.ndarray:
        """The (3 * N_OPS, N_TERMS) int64 weight matrix the core reads: row op for module rows,
        row N_OPS + op for rows flagged functional, row 2 * N_OPS + op for other calls (weighed like
        functional ones unless the convention has a `calls` table)."""
        m = np.zeros((3 * F.N_OPS, N_TERMS), np.int64)
        functional = {**self.weights, **self.functional}
        calls = functional if self.calls is None else {**self.weights, **self.calls}
        for half, table in ((0, self.weights), (F.N_OPS, functional), (2 * F.N_OPS, calls)):
            for op, terms in table.items():
                for term, w in terms.items():
                    m[half + F.OPS[op], TERMS.index(term)] = w
        return m

    def __repr__(self):
        return f"Convention({self.name!r})"


def _each(ops, terms):
    return {op: dict(terms) for op in ops}


# Module hooks only: a functional call is invisible (thop 0.1.1, ultralytics-thop, torchinfo)
NO_FUNCTIONAL = _each(F.OPS, {})
# Tools that patch torch.nn.functional and torch.add/mul (or, fvcore, handle a few ATen ops) see
# nothing of other calls: torch.relu, x.relu(), x.softmax, x.mean (tests/test_conventions_tools.py)
NO_CALLS = NO_FUNCTIONAL

# calflops and DeepSpeed's flops profiler share one design (calflops copied DeepSpeed's): they patch
# torch.nn.functional, so a module counts through the function it calls; nn.ReLU6 calls F.hardtanh,
# which is not patched (0), while F.relu6 is (numel of the input). Like ptflops they patch torch.add /
# Tensor.add and torch.mul / Tensor.mul (numel of the output), not the operators a + b, a * b.
_PATCHED_CALLS = {"ReLU6": {"in": 1}, "Add": {"out": 1}, "Mul": {"out": 1}}
_PATCHED_FUNCTIONALS = {
    **_each(CONV[:3], {"sym_macs": 2, "sym_bias_out": 1}),
    "Linear": {"macs": 2},  # _linear_flops_compute ignores the bias
    # running stats: 1 (+1 affine) per element; batch statistics: the training rule 4 (+1 affine)
    **_each(BATCHNORM, {"in": 1, "affine_in": 1, "batchstats_in": 3}),
    **_each(("LayerNorm", "GroupNorm"), {"in": 4, "affine_in": 1}),
    **_each(("ReLU", "PReLU", "ELU", "LeakyReLU", "SiLU", "GELU", "Softmax"), {"in": 1}),
    **_each(POOLS, {"in": 1}),
}

NAMED = {
    "torchvision": Convention(
        "torchvision", _each(MATMUL, {"macs": 1}),
        "torchvision's published GFLOPS: multiply-accumulates of convolutions and linear layers"),
    "flopcounter": Convention(
        "flopcounter", _each(MATMUL, {"macs": 2}),
        "torch.utils.flop_counter.FlopCounterMode: 2 per multiply-accumulate of conv/linear (matmul)"),
    "nb201": Convention(
        "nb201", _each(MATMUL, {"macs": 1, "bias_out": 1}),
        "NAS-Bench-201's get_model_infos: conv and linear MACs plus one add per output with a bias"),
    "ofa": Convention(
        "ofa", _each(MATMUL, {"macs": 1}),
        "Once-for-All's count_net_flops: conv and linear multiply-accumulates"),
    "thop": Convention(
        "thop", {**_each(("Conv1d", "Conv2d", "Conv3d", "Linear"), {"macs": 1}),
                 **_each(CONV[3:], {"out_dot": 1}),  # thop counts a transposed conv as a direct one
                 **_each(BATCHNORM + ("LayerNorm",), {"in": 2, "affine_in": 2}),
                 **_each(AVGPOOL, {"out": 1}),
                 **_each(ADAPTIVE_AVG, {"in": 1, "out": 1}),
                 "Softmax": {"flops": 1}, "PReLU": {"in": 1},
                 "Upsample": {"up_nearest": 1, "up_linear": 5, "up_bilinear": 11, "up_bicubic": 259}},
        "thop 0.1.1 (profile): conv/linear MACs (transposed conv as a direct conv), norms 2 (+2 affine) per "
        "element, avg pools 1 per output, adaptive avg pools in + out, softmax 3n-1 per row, PReLU 1 per "
        "element, Upsample per output: nearest 1, linear 5, bilinear 11, bicubic 259, trilinear 0; ReLU, "
        "max pools, GroupNorm and element-wise ops 0; functional calls 0 (module hooks only)",
        functional=NO_FUNCTIONAL),
    "ultralytics-thop": Convention(
        "ultralytics-thop", {**_each(MATMUL, {"macs": 1}),
                             **_each(BATCHNORM + ("LayerNorm", "GroupNorm"), {"in": 2, "affine_in": 2}),
                             **_each(AVGPOOL, {"avg_window": 1, "out": 1}),
                             **_each(ADAPTIVE_AVG, {"flops": 1, "out": 1}),
                             "Softmax": {"flops": 1}, "PReLU": {"in": 1},
                             "Upsample": {"up_linear": 5, "up_bilinear": 11, "up_bicubic": 259, "up_trilinear": 31}},
        "ultralytics-thop 2.2.3 (profile): conv/transposed conv/linear MACs, norms (GroupNorm too) 2 (+2 "
        "affine) per element, avg pools one add per window element + one divide per output, adaptive avg "
        "pools the same over their real windows, softmax 3n-1 per row, PReLU 1 per element, Upsample per "
        "output: nearest 0, linear 5, bilinear 11, bicubic 259, trilinear 31; functional calls 0 (it "
        "counts functional matmul/linear only, which cnncore rows never are)",
        functional=NO_FUNCTIONAL),
    "torchinfo": Convention(
        "torchinfo", {**_each(CONV[:3], {"macs": 1, "bias_out": 1}),
                      **_each(CONV[3:], {"out_dot": 1, "bias_out": 1}),
                      "Linear": {"macs": 1, "bias_out": 1},
                      **_each(BATCHNORM + ("LayerNorm", "GroupNorm", "PReLU"), {"params_n": 1})},
        "torchinfo 1.8 summary().total_mult_adds: conv/linear MACs plus one per output with a bias "
        "(transposed conv as a direct conv), norms and PReLU their params times the batch",
        functional=NO_FUNCTIONAL),
    "fvcore": Convention(
        "fvcore", {**_each(MATMUL, {"macs": 1}),
                   # padding='same' runs aten::_convolution_mode, which fvcore has no handle for: 0
                   **_each(CONV[:3], {"macs": 1, "same_macs": -1}),
                   **_each(BATCHNORM, {"in": 1, "affine_in": 1, "batchstats_in": 3}),
                   **_each(("LayerNorm", "GroupNorm"), {"in": 4, "affine_in": 1}),
                   "AdaptiveAvgPool2d": {"in": 1},
                   "Upsample": {"up_nearest": 1, "up_bilinear": 4}},
        "fvcore 0.1.5 FlopCountAnalysis.total(): conv/linear MACs (a conv with padding='same' 0), BatchNorm "
        "1 (+1 affine) per element (4 (+1) without running stats), LayerNorm/GroupNorm 4 (+1 affine), AdaptiveAvgPool2d 1 per input "
        "element (1d/3d: 0), "
        "Upsample per output: nearest 1 (2-d only in fvcore), bilinear 4; activations, max/avg pools, "
        "softmax and element-wise ops 0; it traces ATen ops, so functional calls count as modules; "
        "x.mean (aten::mean) and other calls 0",
        calls=NO_CALLS),
    "ptflops": Convention(
        "ptflops", {**_each(MATMUL, {"macs": 1, "bias_out": 1}),
                    **_each(BATCHNORM + ("GroupNorm",), {"in": 1, "affine_in": 1}),
                    "LayerNorm": {"in": 1},  # its hook reads `module.affine`, which LayerNorm lacks
                    # module hook (numel of the output) + the patched F.* the module calls (of the input)
                    **_each(("ReLU", "PReLU", "ELU", "GELU"), {"in": 2}),
                    **_each(POOLS, {"in": 2}),
                    "Upsample": {"out": 2},
                    "LeakyReLU": {"out": 1}, "ReLU6": {"out": 1},  # F.leaky_relu, F.hardtanh: not patched
                    "SiLU": {"in": 1}, "Softmax": {"in": 1}},  # no hook, only the patched F.silu / F.softmax
        "ptflops 0.7.5, default pytorch backend (get_model_complexity_info(..., as_strings=False), its "
        "input batch of 1): conv/transposed conv/linear MACs plus one per output with a bias, norms 1 "
        "(+1 affine; LayerNorm never affine) per element, and everything its torch.nn.functional patches "
        "see: ReLU/PReLU/ELU/GELU modules and pools twice (hook + F call), Upsample 2 per output, "
        "LeakyReLU/ReLU6 once, SiLU/Softmax once; functional calls once; torch.add(a, b) / a.add(b) (and mul) "
        "1 per output, a + b 0",
        functional={**_each(("ReLU", "ReLU6", "ELU", "GELU", "SiLU", "Softmax"), {"in": 1}),
                    **_each(POOLS, {"in": 1}), "Upsample": {"out": 1}, "LeakyReLU": {},
                    "Add": {"out": 1}, "Mul": {"out": 1}},
        calls=NO_CALLS),
    "ptflops-aten": Convention(
        "ptflops-aten", _each(MATMUL, {"macs": 1, "bias_out": 1}),
        "ptflops 0.7.5, backend='aten': aten.convolution / addmm / mm MACs plus one per output with a "
        "bias; everything else 0"),
    "calflops": Convention(
        "calflops", {**_PATCHED_FUNCTIONALS, **_each(CONV[3:], {"macs": 2, "bias_out": 1}),
                     "Upsample": {"up_size": 1, "up_scale_in": 1}},
        "calflops 0.3.2 calculate_flops (FLOPs): conv 2 per MAC + 1 per output with a bias (padding='same' "
        "sized as d(k-1)//2 on both sides), linear 2 per MAC "
        "(bias ignored), BatchNorm (eval) 1 (+1 affine), LayerNorm/GroupNorm 4 (+1 affine), ReLU-like "
        "activations, softmax and every pool 1 per input element, Upsample: by size the size alone (not "
        "times batch and channels), by scale 1 per input element (its scale multiplication is a no-op), "
        "ReLU6 module 0 (F.hardtanh is not patched)",
        functional=_PATCHED_CALLS, calls=NO_CALLS),
    "deepspeed": Convention(
        "deepspeed", {**_PATCHED_FUNCTIONALS, **_each(CONV[3:], {"macs": 2, "bias_out": 1}),
                      "Upsample": {"up_size": 1, "up_scale_out": 1}},
        "DeepSpeed 0.19.8 flops profiler get_model_profile (flops): as calflops, with transposed "
        "convolutions right (2 per MAC + bias) and Upsample by scale numel(x) * scale^d (by size: the size "
        "alone, as calflops)",
        functional=_PATCHED_CALLS, calls=NO_CALLS),
    "cnncore": Convention(
        "cnncore", _each(F.OPS, {"flops": 1}), "cnncore's own flops (docs/conventions.md)"),
}


def resolve(conventions):
    """Names or Convention objects -> (names, (n, 3 * N_OPS, N_TERMS) int64 weights)."""
    if isinstance(conventions, (str, Convention)):
        conventions = (conventions,)
    names, mats = [], []
    for c in conventions:
        if isinstance(c, str):
            if c not in NAMED:
                raise ValueError(f"unknown convention {c!r}; named ones: {', '.join(sorted(NAMED))} "
                                 f"(or pass a cc.Convention)")
            c = NAMED[c]
        elif not isinstance(c, Convention):
            raise TypeError(f"conventions must be names or cc.Convention objects, got {c!r}")
        if c.name in names:
            raise ValueError(f"convention {c.name!r} given twice")
        names.append(c.name)
        mats.append(c.matrix())
    w = np.ascontiguousarray(np.stack(mats)) if mats else np.zeros((0, 3 * F.N_OPS, N_TERMS), np.int64)
    return names, w
