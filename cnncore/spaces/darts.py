"""DARTS (Liu, Simonyan & Yang, ICLR 2019): a genotype -> the evaluation network, CIFAR or ImageNet.

Transcribed from quark0/darts ``cnn/model.py`` (Cell, NetworkCIFAR, NetworkImageNet,
AuxiliaryHeadCIFAR, AuxiliaryHeadImageNet), ``cnn/operations.py`` (OPS, ReLUConvBN, DilConv,
SepConv, Identity, Zero, FactorizedReduce) and ``cnn/genotypes.py`` (DARTS_V1, DARTS_V2). Row
names follow the torch modules' names (``cells.3._ops.2.op.1``...).

* NetworkCIFAR(C=36, layers=20): stem Conv3x3(3, 3C, bias=False) + BN; ``layers`` cells, the ones
  at layers//3 and 2*layers//3 reduction cells (channels doubled); AdaptiveAvgPool2d(1), Linear.
* NetworkImageNet(C=48, layers=14), input 224: stem0 (Conv3x3/2 -> C/2, BN, ReLU, Conv3x3/2 -> C,
  BN), stem1 (ReLU, Conv3x3/2, BN); the first cell sees a reduced s0 (reduction_prev=True);
  AvgPool2d(7), Linear(..., 1000).
* Cell: preprocess0 = FactorizedReduce(C_pp, C) after a reduction cell, else ReLUConvBN 1x1;
  preprocess1 = ReLUConvBN 1x1; each of the steps sums two ops on earlier states (stride 2 for
  the ops reading states 0/1 of a reduction cell); the output concatenates the ``concat`` states.
* Ops: sep_conv_kxk = (ReLU, depthwise kxk, 1x1, BN) twice (the first strided), dil_conv_kxk =
  ReLU, depthwise kxk dilation 2, 1x1, BN; max/avg_pool_3x3 (padding 1, avg without padding in
  the count); skip_connect = Identity, or FactorizedReduce when strided (ReLU, two 1x1/2 convs to
  C/2 on x and on x[:, :, 1:, 1:], cat, BN); none = Zero (``x.mul(0.)``, on x[:, :, ::2, ::2]
  when strided), written ``cc.mul(x, x)`` as in NB201 (after a MaxPool2d(1, 2) -- the strided
  view -- when strided). x[:, :, 1:, 1:] is written as two cc.split calls (dims 2 and 3).
* ``auxiliary=True`` adds the auxiliary head on the output of cell 2*layers//3 as torch has it
  in eval mode: its modules exist (params and buffers) but forward never calls them, so the head is
  built and left unused (no MACs). DARTS' ``count_parameters_in_MB`` leaves the auxiliary head out,
  which is the paper's 3.3M: DARTS-V2 on CIFAR-10 with auxiliary=False has 3,349,342 params.
"""
from __future__ import annotations

from collections import namedtuple

from ..graph import Input, Model, add, cat, flatten, mul, split
from ..layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU

__all__ = ["Genotype", "DARTS_V1", "DARTS_V2", "PRIMITIVES", "darts_model"]

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")

# cnn/genotypes.py
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5])
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5])

_DATASETS = {  # dataset: (num_classes, input size, default C, default layers, ImageNet network?)
    "cifar10": (10, 32, 36, 20, False),
    "cifar100": (100, 32, 36, 20, False),
    "imagenet": (1000, 224, 48, 14, True),
}


def _relu_conv_bn(x, cin, cout, k, stride, padding, name):
    x = ReLU()(x, name=f"{name}.op.0")
    x = Conv2d(cin, cout, k, stride, padding, bias=False)(x, name=f"{name}.op.1")
    return BatchNorm2d(cout)(x, name=f"{name}.op.2")


def _dil_conv(x, c, k, stride, padding, dilation, name):
    x = ReLU()(x, name=f"{name}.op.0")
    x = Conv2d(c, c, k, stride, padding, dilation=dilation, groups=c, bias=False)(x, name=f"{name}.op.1")
    x = Conv2d(c, c, 1, bias=False)(x, name=f"{name}.op.2")
    return BatchNorm2d(c)(x, name=f"{name}.op.3")


def _sep_conv(x, c, k, stride, padding, name):
    x = ReLU()(x, name=f"{name}.op.0")
    x = Conv2d(c, c, k, stride, padding, groups=c, bias=False)(x, name=f"{name}.op.1")
    x = Conv2d(c, c, 1, bias=False)(x, name=f"{name}.op.2")
    x = BatchNorm2d(c)(x, name=f"{name}.op.3")
    x = ReLU()(x, name=f"{name}.op.4")
    x = Conv2d(c, c, k, 1, padding, groups=c, bias=False)(x, name=f"{name}.op.5")
    x = Conv2d(c, c, 1, bias=False)(x, name=f"{name}.op.6")
    return BatchNorm2d(c)(x, name=f"{name}.op.7")


def _factorized_reduce(x, cin, cout, name):
    if cout % 2:
        raise ValueError(f"darts_model: FactorizedReduce needs an even C_out, got {cout}")
    x = ReLU()(x, name=f"{name}.relu")
    a = Conv2d(cin, cout // 2, 1, 2, 0, bias=False)(x, name=f"{name}.conv_1")
    h, w = x.shape[2], x.shape[3]
    y = split(x, [1, h - 1], dim=2, name=f"{name}.slice_h")[1]  # x[:, :, 1:, 1:]
    y = split(y, [1, w - 1], dim=3, name=f"{name}.slice_w")[1]
    b = Conv2d(cin, cout // 2, 1, 2, 0, bias=False)(y, name=f"{name}.conv_2")
    out = cat([a, b], dim=1, name=f"{name}.cat")
    return BatchNorm2d(cout)(out, name=f"{name}.bn")


def _op(op, x, c, stride, name):
    if op == "none":
        if stride > 1:
            x = MaxPool2d(1, stride)(x, name=f"{name}.subsample")  # x[:, :, ::s, ::s]
        return mul(x, x, name=f"{name}.mul")  # x.mul(0.)
    if op == "avg_pool_3x3":
        return AvgPool2d(3, stride, 1, count_include_pad=False)(x, name=name)
    if op == "max_pool_3x3":
        return MaxPool2d(3, stride, 1)(x, name=name)
    if op == "skip_connect":
        return x if stride == 1 else _factorized_reduce(x, c, c, name)
    if op == "sep_conv_3x3":
        return _sep_conv(x, c, 3, stride, 1, name)
    if op == "sep_conv_5x5":
        return _sep_conv(x, c, 5, stride, 2, name)
    if op == "sep_conv_7x7":
        return _sep_conv(x, c, 7, stride, 3, name)
    if op == "dil_conv_3x3":
        return _dil_conv(x, c, 3, stride, 2, 2, name)
    if op == "dil_conv_5x5":
        return _dil_conv(x, c, 5, stride, 4, 2, name)
    raise ValueError(f"darts_model: unknown op {op!r}; expected one of {PRIMITIVES + ('sep_conv_7x7',)}")


def _cell(genotype, s0, s1, c_pp, c_p, c, reduction, reduction_prev, name):
    if reduction_prev:
        s0 = _factorized_reduce(s0, c_pp, c, f"{name}.preprocess0")
    else:
        s0 = _relu_conv_bn(s0, c_pp, c, 1, 1, 0, f"{name}.preprocess0")
    s1 = _relu_conv_bn(s1, c_p, c, 1, 1, 0, f"{name}.preprocess1")
    ops, concat = (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
    ops = [tuple(o) for o in ops]
    if len(ops) % 2 or not ops:
        raise ValueError(f"darts_model: a cell needs an even number of (op, input) pairs, got {len(ops)}")
    states = [s0, s1]
    for i in range(len(ops) // 2):
        hs = []
        for j in (2 * i, 2 * i + 1):
            op, idx = ops[j]
            if not 0 <= idx < len(states):
                raise ValueError(f"darts_model: step {i} reads state {idx}, but only {len(states)} exist")
            stride = 2 if reduction and idx < 2 else 1
            hs.append(_op(op, states[idx], c, stride, f"{name}._ops.{j}"))
        states.append(add(hs[0], hs[1], name=f"{name}.add" + (f"_{i}" if i else "")))
    concat = list(concat)
    for k in concat:
        if not 0 <= k < len(states):
            raise ValueError(f"darts_model: concat state {k} does not exist")
    out = cat([states[k] for k in concat], dim=1, name=f"{name}.cat")
    return out, len(concat)


def _aux_head(x, c, num_classes, imagenet, name):
    h = ReLU()(x, name=f"{name}.features.0")
    h = AvgPool2d(5, 2 if imagenet else 3, 0, count_include_pad=False)(h, name=f"{name}.features.1")
    h = Conv2d(c, 128, 1, bias=False)(h, name=f"{name}.features.2")
    h = BatchNorm2d(128)(h, name=f"{name}.features.3")
    h = ReLU()(h, name=f"{name}.features.4")
    h = Conv2d(128, 768, 2, bias=False)(h, name=f"{name}.features.5")
    if imagenet:  # AuxiliaryHeadImageNet: its BatchNorm2d(768) is commented out in DARTS
        h = ReLU()(h, name=f"{name}.features.6")
    else:
        h = BatchNorm2d(768)(h, name=f"{name}.features.6")
        h = ReLU()(h, name=f"{name}.features.7")
    h = flatten(h, 1, name=f"{name}.view")
    return Linear(768, num_classes)(h, name=f"{name}.classifier")


def darts_model(genotype=DARTS_V2, dataset="cifar10", C=None, layers=None, auxiliary=False, num_classes=None):
    """DARTS' evaluation network of ``genotype`` (a Genotype or a dict/tuple with the fields
    normal, normal_concat, reduce, reduce_concat): NetworkCIFAR for 'cifar10' / 'cifar100' (input
    3x32x32; C=36, layers=20 by default), NetworkImageNet for 'imagenet' (input 3x224x224, 1000
    classes; C=48, layers=14 by default). ``auxiliary``: include the auxiliary head's parameters
    (unused at inference, as in torch's eval mode)."""
    if dataset not in _DATASETS:
        raise ValueError(f"darts_model: unknown dataset {dataset!r}; expected one of {sorted(_DATASETS)}")
    if isinstance(genotype, dict):
        genotype = Genotype(**genotype)
    elif not isinstance(genotype, Genotype):
        genotype = Genotype(*genotype)
    n_cls, hw, c0, l0, imagenet = _DATASETS[dataset]
    C = c0 if C is None else int(C)
    layers = l0 if layers is None else int(layers)
    num_classes = n_cls if num_classes is None else int(num_classes)
    x = Input((3, hw, hw))
    if imagenet:
        h = Conv2d(3, C // 2, 3, 2, 1, bias=False)(x, name="stem0.0")
        h = BatchNorm2d(C // 2)(h, name="stem0.1")
        h = ReLU()(h, name="stem0.2")
        h = Conv2d(C // 2, C, 3, 2, 1, bias=False)(h, name="stem0.3")
        s0 = BatchNorm2d(C)(h, name="stem0.4")
        h = ReLU()(s0, name="stem1.0")
        h = Conv2d(C, C, 3, 2, 1, bias=False)(h, name="stem1.1")
        s1 = BatchNorm2d(C)(h, name="stem1.2")
        c_pp, c_p, c_curr = C, C, C
        reduction_prev = True
    else:
        c_curr = 3 * C
        h = Conv2d(3, c_curr, 3, padding=1, bias=False)(x, name="stem.0")
        s0 = s1 = BatchNorm2d(c_curr)(h, name="stem.1")
        c_pp, c_p, c_curr = c_curr, c_curr, C
        reduction_prev = False
    aux_in = None
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c_curr *= 2
        out, mult = _cell(genotype, s0, s1, c_pp, c_p, c_curr, reduction, reduction_prev, f"cells.{i}")
        s0, s1 = s1, out
        reduction_prev = reduction
        c_pp, c_p = c_p, mult * c_curr
        if i == 2 * layers // 3:
            aux_in = (s1, c_p)
    if auxiliary:
        if aux_in is None:
            raise ValueError("darts_model: auxiliary head needs layers >= 2")
        _aux_head(aux_in[0], aux_in[1], num_classes, imagenet, "auxiliary_head")  # built, never called
    if imagenet:
        h = AvgPool2d(7)(s1, name="global_pooling")
    else:
        h = AdaptiveAvgPool2d(1)(s1, name="global_pooling")
    h = flatten(h, 1, name="view")
    h = Linear(c_p, num_classes)(h, name="classifier")
    return Model(x, h, name=f"darts_{dataset}_C{C}_L{layers}")
