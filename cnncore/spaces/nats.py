"""NATS-Bench size search space (Dong et al., TPAMI 2021): 8^5 = 32,768 channel configurations.

Transcribed from D-X-Y/AutoDL-Projects ``xautodl/models/shape_infers/InferTinyCellNet.py``
(DynamicShapeTinyNet, the network NATS-Bench's ``sss`` records were trained and counted on),
``xautodl/models/cell_infers/cells.py`` (InferCell) and ``xautodl/models/cell_operations.py``
(ReLUConvBN, FactorizedReduce, ResNetBasicblock). Row names follow those modules' names.

A configuration is 5 channel counts, each one of 8, 16, ..., 64, written "c0:c1:c2:c3:c4" (the
official arch string). The network (N = 1 cell per stage):

* stem: Conv2d(3, c0, 3, padding=1, bias=False), BatchNorm2d(c0);
* cells: InferCell(c0 -> c0), ResNetBasicblock(c0 -> c1, stride 2), InferCell(c1 -> c2),
  ResNetBasicblock(c2 -> c3, stride 2), InferCell(c3 -> c4);
* lastact (BatchNorm2d, ReLU), AdaptiveAvgPool2d(1), view, Linear(c4, classes).

Every InferCell is NATS-Bench's fixed cell, the best NAS-Bench-201 cell
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``.
Its edges from node 0 map C_in -> C_out, the others C_out -> C_out. ``nor_conv_3x3`` is ReLU,
Conv3x3 (no bias), BN; ``skip_connect~0`` is the identity when C_in == C_out and otherwise
FactorizedReduce at stride 1: Conv1x1(C_in, C_out, bias=False) then BN (its ReLU module exists
but is not applied at stride 1, so there is no ReLU row).

Index order: i = sum_k choice_k * 8^(4 - k) (position 0 the most significant digit, choices in
increasing channel order): index 0 is "8:8:8:8:8", 11 "8:8:8:16:32", 284 "8:8:40:32:40", 32767
"64:64:64:64:64", as the official API's records (tests check the data file's records).

Costs: ``params`` (all parameters / 1e6 in the benchmark) and ``nb201_flops`` (NAS-Bench-201's
get_model_infos convention) reproduce the benchmark's ``sss`` records exactly.
"""
from __future__ import annotations

import numpy as np

from .. import _format as F
from ..graph import Add, Input, Model
from ..layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU
from ._indexed import IndexedSpace
from ._template import SlotTable
from .nb201 import _DATASETS, residual_reduction, sum_into_node, tiny_head

__all__ = ["NATSSize", "CANDIDATES", "BEST_CELL"]

CANDIDATES = (8, 16, 24, 32, 40, 48, 56, 64)
BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# the cell's edges (to, from, op) in InferCell's layer order
_CELL = ((1, 0, "conv"), (2, 0, "conv"), (2, 1, "conv"), (3, 0, "skip"), (3, 1, "conv"), (3, 2, "conv"))
_NPOS = 5
_REDUCTION = (False, True, False, True, False)


class _VarTemplate(SlotTable):
    """A SlotTable whose per-architecture columns are given by name (``IN=array``)."""

    def add(self, layer, src, src2=None, present=True, output=False, **cols):
        return super().add(layer, src, src2, present, output, {getattr(F, k): v for k, v in cols.items()})


class NATSSize(IndexedSpace):
    """NATS-Bench's size space on one dataset: ``cifar10`` (also ``cifar10-valid``), ``cifar100``
    or ``ImageNet16-120`` (input 3x16x16, 120 classes).

    ``.size`` = 32768; ``.model(i)``, ``.arch_str(i)`` ("8:16:24:32:64"), ``.index(arch_str)``,
    ``.choices(indices)`` ((n, 5) channel counts), ``.sample(n, seed)``, ``.pack(indices)``.
    """

    candidates = CANDIDATES
    cell = BEST_CELL

    def __init__(self, dataset="cifar10"):
        self._set_dataset(dataset, _DATASETS)
        self.size = len(CANDIDATES) ** _NPOS


    def __repr__(self):
        return f"NATSSize(dataset={self.dataset!r}: {self.size} channel configurations, input {self.input_shape})"


    def choices(self, indices):
        """(n, 5) int64 channel counts of the indices."""
        idx = self._check(np.atleast_1d(indices)).ravel()
        out = np.empty((len(idx), _NPOS), np.int64)
        for k in range(_NPOS - 1, -1, -1):
            out[:, k] = idx % len(CANDIDATES)
            idx = idx // len(CANDIDATES)
        return np.asarray(CANDIDATES, np.int64)[out]

    def arch_str(self, i):
        return ":".join(str(int(c)) for c in self.choices([i])[0])

    def index(self, arch_str):
        try:
            parts = [int(p) for p in str(arch_str).split(":")]
            if len(parts) != _NPOS or any(p not in CANDIDATES for p in parts):
                raise ValueError
        except ValueError:
            raise ValueError(f"NATSSize: {arch_str!r} is not a NATS-Bench size-space arch string "
                             f"(5 of {list(CANDIDATES)} joined by ':', e.g. '64:64:64:64:64')") from None
        i = 0
        for p in parts:
            i = i * len(CANDIDATES) + CANDIDATES.index(p)
        return i


    # ---- one model -----------------------------------------------------------------------------
    def model(self, i):
        """Architecture i as a cc.Model (same rows, in the same order, as ``pack([i])``)."""
        ch = [int(c) for c in self.choices([i])[0]]
        x = Input(self.input_shape)
        h = Conv2d(3, ch[0], 3, padding=1, bias=False)(x, name="stem.0")
        h = BatchNorm2d(ch[0])(h, name="stem.1")
        cin = ch[0]
        for ci, (cout, red) in enumerate(zip(ch, _REDUCTION)):
            name = f"cells.{ci}"
            if red:
                h = residual_reduction(h, cin, cout, name)
            else:
                nodes, acc = [h], {}
                for e, (j, k, op) in enumerate(_CELL):
                    src, en = nodes[k], f"{name}.layers.{e}"
                    c_in = cin if k == 0 else cout
                    if op == "skip":
                        if c_in == cout:
                            y = src
                        else:  # FactorizedReduce(C_in, C_out, stride=1)
                            y = Conv2d(c_in, cout, 1, bias=False)(src, name=f"{en}.conv")
                            y = BatchNorm2d(cout)(y, name=f"{en}.bn")
                    else:
                        y = ReLU()(src, name=f"{en}.op.0")
                        y = Conv2d(c_in, cout, 3, 1, 1, bias=False)(y, name=f"{en}.op.1")
                        y = BatchNorm2d(cout)(y, name=f"{en}.op.2")
                    sum_into_node(acc, nodes, j, k, y, sum(1 for (jj, _, _) in _CELL[:e] if jj == j), name)
                h = nodes[3]
            cin = cout
        return Model(x, tiny_head(h, cin, self.num_classes), name=f"nats_sss_{self.dataset}_{int(i)}")

    # ---- many: packed arrays straight from the channel choices ----------------------------------
    def pack(self, indices, chunk_size=4096):
        """A cc.Packed of the architectures ``indices``, written with numpy from the (n, 5) channel
        array (no Python object per candidate); row for row what ``cc.pack([self.model(i) ...])``
        writes (without row names)."""
        idx = self._check(np.atleast_1d(indices)).ravel()
        if len(idx) == 0:
            raise ValueError("NATSSize.pack: no indices")
        ch = self.choices(idx)
        pieces = [self._pack_channels(ch[s:s + chunk_size]) for s in range(0, len(ch), chunk_size)]
        return SlotTable.concat(pieces, self.input_shape)

    def _pack_channels(self, ch):
        n = len(ch)
        t = _VarTemplate(n)
        c0 = ch[:, 0]
        h = t.add(Conv2d(3, 8, 3, padding=1, bias=False), -1, OUT=c0)
        h = t.add(BatchNorm2d(8), h, IN=c0)
        cin = c0
        for p, red in enumerate(_REDUCTION):
            cout = ch[:, p]
            if red:
                a = t.add(ReLU(), h)
                a = t.add(Conv2d(8, 8, 3, 2, 1, bias=False), a, IN=cin, OUT=cout)
                a = t.add(BatchNorm2d(8), a, IN=cout)
                b = t.add(ReLU(), a)
                b = t.add(Conv2d(8, 8, 3, 1, 1, bias=False), b, IN=cout, OUT=cout)
                b = t.add(BatchNorm2d(8), b, IN=cout)
                r = t.add(AvgPool2d(2, 2, 0), h)
                r = t.add(Conv2d(8, 8, 1, bias=False), r, IN=cin, OUT=cout)
                h = t.add(Add(), r, b)
            else:
                nodes, acc = [np.broadcast_to(np.int64(h), (n,))], {}
                same = cin == cout
                for j, k, op in _CELL:
                    src = nodes[k]
                    c_in = cin if k == 0 else cout
                    if op == "skip":
                        conv = t.add(Conv2d(8, 8, 1, bias=False), src, present=~same, IN=c_in, OUT=cout)
                        bn = t.add(BatchNorm2d(8), conv, present=~same, IN=cout)
                        y = np.where(same, src, bn)
                    else:
                        r = t.add(ReLU(), src)
                        c = t.add(Conv2d(8, 8, 3, 1, 1, bias=False), r, IN=c_in, OUT=cout)
                        y = np.broadcast_to(np.int64(t.add(BatchNorm2d(8), c, IN=cout)), (n,))
                    acc[j] = t.add(Add(), acc[j], y) if j in acc else y
                    if k == j - 1:
                        nodes.append(acc[j])
                h = nodes[3]
            cin = cout
        h = t.add(BatchNorm2d(8), h, IN=cin)
        h = t.add(ReLU(), h)
        h = t.add(AdaptiveAvgPool2d(1), h)
        h = t.add(Flatten(1, -1), h)
        t.add(Linear(8, self.num_classes), h, output=True, IN=cin)
        return t.finish()
