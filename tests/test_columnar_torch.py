"""Truth from torch for the columnar path: a few architectures of one residual + squeeze-excitation
skeleton, built as torch modules and as one cc.Columnar, must agree.

The skeleton (stem conv, BN, ReLU, max-pool with ceil_mode, a residual block with a grouped conv,
an SE gate (adaptive pool, 1x1 convs, sigmoid, mul), a concatenation, adaptive pool, flatten,
linear) varies per architecture in its width, kernel size, stride, groups, classes and input
resolution. For each architecture: params == sum(p.numel() for p in m.parameters()),
buffers == sum(b.numel() for b in m.buffers()), output shape == the forward pass's, and
macs == FlopCounterMode's total // 2. Architectures torch rejects must be invalid here too.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnncore as cc  # noqa: E402

torch.set_num_threads(1)

# (width, kernel, stride, groups, classes, (H, W)): the last ones are invalid in torch
ARCHS = [(8, 3, 1, 1, 10, (16, 16)), (16, 5, 2, 4, 100, (23, 17)), (4, 1, 2, 2, 7, (9, 12)),
         (12, 3, 1, 3, 5, (32, 8)), (6, 3, 1, 4, 10, (16, 16)), (8, 3, 1, 3, 10, (16, 16))]


def build(lib, width, kernel, stride, groups, classes):
    """The same skeleton from torch.nn (lib=nn) or cnncore (lib=cc): cnncore's layers take torch's
    names and arguments, so one function writes both."""
    stem = [lib.Conv2d(3, width, kernel, stride=stride, padding=kernel // 2, bias=False), lib.BatchNorm2d(width),
            lib.ReLU(), lib.MaxPool2d(3, 2, 1, ceil_mode=True)]
    block = [lib.Conv2d(width, width, 3, padding=1, groups=groups), lib.BatchNorm2d(width), lib.ReLU6()]
    se = [lib.AdaptiveAvgPool2d(1), lib.Conv2d(width, 4, 1), lib.ReLU(), lib.Conv2d(4, width, 1), lib.Sigmoid()]
    head = [lib.AdaptiveMaxPool2d((2, 1)), lib.Flatten(), lib.Linear(4 * width, classes)]
    return stem, block, se, head


class TorchNet(nn.Module):
    def __init__(self, *args):
        super().__init__()
        stem, block, se, head = (nn.Sequential(*part) for part in build(nn, *args))
        self.stem, self.block, self.se, self.head = stem, block, se, head

    def forward(self, x):
        x = self.stem(x)
        y = self.block(x) + x  # residual
        y = y * self.se(y)  # squeeze-excitation
        return self.head(torch.cat([y, x], 1))


def cc_net(*args, shape):
    stem, block, se, head = build(cc, *args)
    x = cc.Input((3, *shape))
    h = x
    for layer in stem:
        h = layer(h)
    y = h
    for layer in block:
        y = layer(y)
    y = cc.add(y, h)
    g = y
    for layer in se:
        g = layer(g)
    y = cc.mul(y, g)
    z = cc.cat([y, h], dim=1)
    for layer in head:
        z = layer(z)
    return cc.Model(x, z)


def torch_truth(args, shape):
    try:
        m = TorchNet(*args).eval()
        x = torch.zeros(1, 3, *shape)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            y = m(x)
    except (RuntimeError, ValueError):
        return None
    return dict(params=sum(p.numel() for p in m.parameters()), buffers=sum(b.numel() for b in m.buffers()),
                shape=tuple(y.shape), macs=fc.get_total_flops() // 2)


def test_columnar_matches_torch():
    models = []
    for *args, shape in ARCHS:
        try:
            models.append(cc_net(*args, shape=shape))
        except cc.ShapeError:  # cnncore checks shapes while a graph is built: pack the valid template
            models.append(None)
    template = next(m for m in models if m is not None)
    packed = cc.pack([m if m is not None else template for m in models],
                     [(3, *shape) for *_, shape in ARCHS])
    col = cc.Columnar.from_packed(packed)
    # the invalid ones get their fields by hand (a graph that fails cannot be built), from the packed
    # rows of a valid one: same topology, their own width / kernel / stride / groups / classes
    for a, m in enumerate(models):
        if m is None:
            width, kernel, stride, groups, classes, shape = ARCHS[a]
            col = _with_fields(col, a, width, kernel, stride, groups, classes, shape)
    assert col._program() is not None  # every op of the skeleton is one the columnar kernel counts
    res = cc.count(col, n_threads=1)
    assert len(res) == len(ARCHS) and set(col.columns) >= {"out", "k0", "s0", "groups"}
    n_valid = 0
    for a, (*args, shape) in enumerate(ARCHS):
        want = torch_truth(args, shape)
        if want is None:
            assert not res.valid[a], a
            continue
        n_valid += 1
        assert res.valid[a], (a, cc.explain(col, a))
        nd = int(res.output_ndim[a])
        assert (res.params[a], res.buffers[a], res.macs[a]) == (want["params"], want["buffers"], want["macs"]), a
        assert tuple(res.output_shape[a][:nd]) == want["shape"], a
    assert 3 <= n_valid < len(ARCHS)


def _with_fields(col, a, width, kernel, stride, groups, classes, shape):
    """col with architecture a's fields rewritten from the skeleton's arguments (rows found by op)."""
    from cnncore import _format as F
    rows = col.template._arrays["layers"]
    cols = {name: np.array(v) for name, v in col.columns.items()}
    for name in ("in", "out", "groups", "k0", "k1", "s0", "s1", "p0", "p1"):
        cols.setdefault(name, np.repeat(rows[None, :, F.FIELD_NAMES.index(name)], len(col), 0))
    conv = [k for k in range(len(rows)) if rows[k, F.OP] == F.OPS["Conv2d"]]
    stem, block, se1, se2 = conv
    cols["out"][a, stem] = cols["in"][a, block] = cols["out"][a, block] = width
    for k in (stem, block):
        cols["in"][a, k + 1] = width  # the BatchNorm2d after each conv
    cols["in"][a, se1] = cols["out"][a, se2] = width
    cols["groups"][a, block] = groups
    for f in ("k0", "k1"):
        cols[f][a, stem] = kernel
    for f in ("s0", "s1"):
        cols[f][a, stem] = stride
    for f in ("p0", "p1"):
        cols[f][a, stem] = kernel // 2
    lin = int(np.nonzero(rows[:, F.OP] == F.OPS["Linear"])[0][0])
    cols["in"][a, lin], cols["out"][a, lin] = 4 * width, classes
    shapes = col.input_shape.copy()
    shapes[a] = (3, *shape)
    return cc.Columnar(col.template, cols, input_shape=shapes, batch_size=col.batch_size)
