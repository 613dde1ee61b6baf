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
weights). docs/conventions.md has the table of what each named convention counts.
"""
from __future__ import annotations

import numpy as np

from . import _format as F

TERMS = ("macs", "flops", "out", "in", "bias_out", "params", "kvol_out", "one", "out_dot", "params_n",
         "affine_in")
N_TERMS = len(TERMS)

CONV = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
MATMUL = CONV + ("Linear",)


class Convention:
    """A named table {layer type: {term: integer weight}}; unlisted layers and terms weigh 0."""

    def __init__(self, name, weights, doc=""):
        self.name = str(name)
        self.doc = doc
        self.weights = {}
        for op, terms in dict(weights).items():
            if op not in F.OPS:
                raise ValueError(f"Convention {name!r}: unknown layer type {op!r}; expected one of {sorted(F.OPS)}")
            for term, w in dict(terms).items():
                if term not in TERMS:
                    raise ValueError(f"Convention {name!r}: unknown term {term!r}; expected one of {TERMS}")
                if isinstance(w, bool) or not isinstance(w, (int, np.integer)):
                    raise TypeError(f"Convention {name!r}: weight of {op}.{term} must be an int, got {w!r}")
            self.weights[op] = {t: int(w) for t, w in terms.items()}

    def matrix(self) -> np.ndarray:
        """The (N_OPS, N_TERMS) int64 weight matrix the core reads."""
        m = np.zeros((F.N_OPS, N_TERMS), np.int64)
        for op, terms in self.weights.items():
            for term, w in terms.items():
                m[F.OPS[op], TERMS.index(term)] = w
        return m

    def __repr__(self):
        return f"Convention({self.name!r})"


def _each(ops, terms):
    return {op: dict(terms) for op in ops}


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
                 **_each(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm"),
                         {"in": 2, "affine_in": 2}),
                 **_each(("AvgPool1d", "AvgPool2d", "AvgPool3d"), {"out": 1}),
                 **_each(("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"), {"in": 1, "out": 1}),
                 "Softmax": {"flops": 1}, "PReLU": {"in": 1}, "Upsample": {"out": 1}},
        "thop 0.1.1 (profile): conv/linear MACs (transposed conv as a direct conv), norms 2 (+2 affine) per "
        "element, avg pools 1 per output, adaptive avg pools in + out, softmax 3n-1 per row, PReLU 1 per "
        "element, Upsample 1 per output (its nearest rule; bilinear & co. differ); ReLU, max pools, "
        "GroupNorm and element-wise ops 0"),
    "torchinfo": Convention(
        "torchinfo", {**_each(CONV[:3], {"macs": 1, "bias_out": 1}),
                      **_each(CONV[3:], {"out_dot": 1, "bias_out": 1}),
                      "Linear": {"macs": 1, "bias_out": 1},
                      **_each(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "PReLU"),
                              {"params_n": 1})},
        "torchinfo 1.8 summary().total_mult_adds: conv/linear MACs plus one per output with a bias "
        "(transposed conv as a direct conv), norms and PReLU their params times the batch"),
    "fvcore": Convention(
        "fvcore", {**_each(MATMUL, {"macs": 1}),
                   **_each(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"), {"in": 1, "affine_in": 1}),
                   **_each(("LayerNorm", "GroupNorm"), {"in": 4, "affine_in": 1}),
                   **_each(("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"), {"in": 1}),
                   "Upsample": {"out": 1}},
        "fvcore 0.1.5 FlopCountAnalysis.total(): conv/linear MACs, BatchNorm (eval) 1 (+1 affine) per "
        "element, LayerNorm/GroupNorm 4 (+1 affine), adaptive avg pools 1 per input element, Upsample 1 "
        "per output (its nearest rule); activations, max/avg pools, softmax and element-wise ops 0"),
    "cnncore": Convention(
        "cnncore", _each(F.OPS, {"flops": 1}), "cnncore's own flops (docs/conventions.md)"),
}


def resolve(conventions):
    """Names or Convention objects -> (names, (n, N_OPS, N_TERMS) int64 weights)."""
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
    w = np.ascontiguousarray(np.stack(mats)) if mats else np.zeros((0, F.N_OPS, N_TERMS), np.int64)
    return names, w
