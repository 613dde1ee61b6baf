"""NAS-Bench-201 (Dong & Yang, ICLR 2020): the 15,625-cell topology search space.

Transcribed from xautodl (D-X-Y/AutoDL-Projects): ``models/cell_infers/tiny_network.py``
(TinyNetwork, C=16, N=5), ``models/cell_infers/cells.py`` (InferCell) and
``models/cell_operations.py`` (ReLUConvBN, POOLING, Zero, ResNetBasicblock). Row names follow
those modules' names (``cells.3.layers.4.op.1``...).

* stem: Conv2d(3, 16, 3, padding=1, bias=False), BatchNorm2d(16);
* three stages of five cells at 16, 32, 64 channels, with a ResNetBasicblock(C, 2C, stride 2)
  between stages (ReLU-Conv3x3-BN twice; residual AvgPool2d(2, 2) then Conv1x1 without bias);
* a cell has 4 nodes and 6 edges j<-i (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2); node j is the sum of
  its edges' outputs, the cell's output is node 3. Edge ops: ``none`` (xautodl's Zero:
  ``x.mul(0.)``), ``skip_connect`` (Identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU, Conv
  without bias, BatchNorm), ``avg_pool_3x3`` (AvgPool2d(3, 1, 1, count_include_pad=False));
* lastact (BatchNorm2d, ReLU), AdaptiveAvgPool2d(1), view, Linear(64, classes).

``none`` is what torch runs: a multiply by zero that reads its source node and whose zeros are
summed into the target node. cnncore has no scalar constants, so it is written ``cc.mul(x, x)``
(named ``...layers.k``): the same shape, no parameters, no MACs, and the same one multiply per
element that ``x.mul(0.)`` costs. Because a ``none`` edge still reads its source, no node is ever
dead: every convolution of a cell is computed and counted even when the cell's output is all
zeros -- exactly what NAS-Bench-201's FLOP counter (forward hooks on every module) saw.
A node's sum of k edges is k - 1 Adds, in the order torch's ``sum(...)`` evaluates them.

Index order: xautodl ``exps/NAS-Bench-201/main.py: generate_meta_info``: all cells from
``CellStructure.gen_all(get_search_spaces('cell', 'nas-bench-201'), 4, False)`` (edge 1<-0 the
most significant digit, ops in the order none, skip_connect, nor_conv_1x1, nor_conv_3x3,
avg_pool_3x3), then ``random.seed(88); random.shuffle(archs)``. That script asserts index 0, 9
and 123; tests/test_spaces.py checks them and the data file's records.

Costs: NAS-Bench-201 reports ``params`` (all parameters / 1e6) and ``flops`` by its
``get_model_infos`` (xautodl/utils/flop_benchmark.py): Conv2d and Linear multiply-accumulates plus
one add per output element of a layer with a bias; BatchNorm, ReLU, pooling, the Zero op and the
node sums are not counted. cnncore's ``params`` are the same number; ``nb201_flops`` gives the FLOPs.
"""
from __future__ import annotations

import random

import numpy as np

from .. import _format as F
from .._blocks import python_shuffle
from ..counting import BatchResult, run_core
from ..graph import Input, Model, add, flatten
from ..layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU
from ..packing import Packed, pack as _pack_models
from ._blockwise import Block, BlockChain
from ._indexed import IndexedSpace
from ._template import Choice, OneOf, SlotTable, _Expansion

__all__ = ["NB201", "nb201_flops", "OPS", "EDGES"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in the genotype's order
_NONE, _SKIP, _CONV1, _CONV3, _POOL = range(5)
_DATASETS = {"cifar10": (10, 32), "cifar10-valid": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}
_C, _N = 16, 5

_PERM = None


def _lex_to_official():
    """perm[official index] = lexicographic index (gen_all order), by NB201's own shuffle."""
    global _PERM
    if _PERM is None:  # generate_meta_info: random.seed(88); random.shuffle(archs)
        _PERM = _shuffled(len(OPS) ** len(EDGES), random.Random(88))
    return _PERM


def _shuffled(n, rng):
    """range(n) as ``rng.shuffle`` orders it: the generator's next 32-bit words in one call (CPython's
    getrandbits(32 m) is m successive getrandbits(32) words, the first the least significant), the
    shuffle replayed in C (a Python shuffle of 15,625 items takes a few ms)."""
    state, m = rng.getstate(), 2 * n + 1024  # ~1.4 words a draw: m is never short here
    words = np.frombuffer(rng.getrandbits(32 * m).to_bytes(4 * m, "little"), "<u4")
    out = np.empty(n, np.int64)
    if python_shuffle(words, out) < 0:
        rng.setstate(state)
        archs = list(range(n))
        rng.shuffle(archs)
        out[:] = archs
    return out


def _choices(lex):
    """(n, 6) op choices of lexicographic indices (edge 0 the most significant base-5 digit)."""
    lex = np.asarray(lex, dtype=np.int64)
    out = np.empty(lex.shape + (6,), np.int64)
    for e in range(5, -1, -1):
        out[..., e] = lex % 5
        lex = lex // 5
    return out


def _linear_bias_adds(layers, shapes, ndims):
    """Numel of the output of every used conv/linear row with a bias (per row)."""
    op = layers[:, F.OP]
    flags = layers[:, F.FLAGS]
    has_bias = (((op >= F.OPS["Conv1d"]) & (op <= F.OPS["Linear"])) & ((flags & F.F_BIAS) != 0)
                & ((flags & F.F_UNUSED) == 0))
    used = np.arange(shapes.shape[1])[None, :] < ndims[:, None]
    numel = np.prod(np.where(used, shapes, 1), axis=1)
    return np.where(has_bias, numel, 0)


def nb201_flops(x):
    """FLOPs as NAS-Bench-201's ``get_model_infos`` counts them (xautodl/utils/flop_benchmark.py).

    = cnncore's ``macs`` (Conv and Linear multiply-accumulates, bias excluded) + one addition per
    output element of every convolution or linear layer that has a bias. BatchNorm, activations,
    pooling and element-wise ops count 0. Divide by 1e6 for the benchmark's ``flops`` column.

    ``x``: a cc.Packed or a BatchResult (-> int64 array, one per architecture; invalid ones 0), or a
    Model / Sequential / layer with its own input shape (-> int).
    """
    if isinstance(x, BatchResult):
        x = x.packed
    single = not isinstance(x, Packed)
    packed = _pack_models([x]) if single else x
    a = packed.arrays()
    raw = run_core(a, per_layer=True)
    adds = _linear_bias_adds(a["layers"], raw["layer_shape"], raw["layer_ndim"])
    off = a["arch_offsets"]
    per_arch = np.add.reduceat(np.append(adds, 0), off[:-1]) if len(off) > 1 else np.zeros(0, np.int64)
    per_arch = np.where(np.diff(off) > 0, per_arch, 0)  # reduceat of an empty range gives the next row
    total = np.where(raw["error"] == 0, raw["macs"] + per_arch, 0).astype(np.int64)
    return int(total[0]) if single else total



def residual_reduction(h, cin, cout, name):
    """NAS-Bench-201's ResNetBasicblock with stride 2 (also NATS-Bench's): ReLU-conv3x3/2-BN,
    ReLU-conv3x3-BN, plus an AvgPool2d(2) + conv1x1 shortcut."""
    a = ReLU()(h, name=f"{name}.conv_a.op.0")
    a = Conv2d(cin, cout, 3, 2, 1, bias=False)(a, name=f"{name}.conv_a.op.1")
    a = BatchNorm2d(cout)(a, name=f"{name}.conv_a.op.2")
    b = ReLU()(a, name=f"{name}.conv_b.op.0")
    b = Conv2d(cout, cout, 3, 1, 1, bias=False)(b, name=f"{name}.conv_b.op.1")
    b = BatchNorm2d(cout)(b, name=f"{name}.conv_b.op.2")
    r = AvgPool2d(2, 2, 0)(h, name=f"{name}.downsample.0")
    r = Conv2d(cin, cout, 1, bias=False)(r, name=f"{name}.downsample.1")
    return add(r, b, name=f"{name}.add")


class NB201(IndexedSpace):
    """NAS-Bench-201's cell space on one dataset: ``cifar10`` (also ``cifar10-valid``, the same
    network), ``cifar100`` or ``ImageNet16-120`` (input 3x16x16, 120 classes).

    ``.size`` = 15625; ``.model(i)``, ``.arch_str(i)``, ``.index(arch_str)``, ``.choices(indices)``
    ((n, 6) op numbers, see ``OPS``/``EDGES``), ``.sample(n, seed)``, ``.pack(indices)``.
    """

    ops = OPS
    edges = EDGES

    def __init__(self, dataset="cifar10"):
        self._set_dataset(dataset, _DATASETS)
        self.size = len(OPS) ** len(EDGES)


    def __repr__(self):
        return f"NB201(dataset={self.dataset!r}: {self.size} cells, input {self.input_shape})"

    # ---- indices, strings, choices ----------------------------------------------------------

    def choices(self, indices):
        """(n, 6) int64 op numbers (positions in ``OPS``) of the edges ``EDGES`` of official indices."""
        return _choices(_lex_to_official()[self._check(indices)])

    def arch_str(self, i):
        """The official string, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|'."""
        c = self.choices([i])[0]
        nodes = [[], [], []]
        for (j, k), op in zip(EDGES, c):
            nodes[j - 1].append(f"{OPS[op]}~{k}")
        return "+".join("|" + "|".join(n) + "|" for n in nodes)

    def index(self, arch_str):
        """The official index of an arch string (ValueError if it is not a NAS-Bench-201 cell)."""
        if not hasattr(self, "_inverse"):
            inv = np.empty(self.size, np.int64)
            inv[_lex_to_official()] = np.arange(self.size)
            self._inverse = inv
        parts = str(arch_str).split("+")
        lex = 0
        try:
            if len(parts) != 3:
                raise ValueError
            for j, p in enumerate(parts):
                if not (p.startswith("|") and p.endswith("|")):
                    raise ValueError
                items = p[1:-1].split("|")
                if len(items) != j + 1:
                    raise ValueError
                for k, item in enumerate(items):
                    op, _, src = item.partition("~")
                    if src != str(k) or op not in OPS:
                        raise ValueError
                    lex = lex * 5 + OPS.index(op)
        except ValueError:
            raise ValueError(f"NB201: {arch_str!r} is not a NAS-Bench-201 arch string "
                             f"(e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
                             f"nor_conv_3x3~1|skip_connect~2|')") from None
        return int(self._inverse[lex])


    # ---- one model -----------------------------------------------------------------------------
    def model(self, i):
        """Architecture i as a cc.Model (same rows, in the same order, as ``pack([i])``)."""
        c = self.choices([i])[0]
        return _network([int(op) for op in c], self.input_shape, self.num_classes, f"nb201_{self.dataset}_{int(i)}")

    # ---- many: packed arrays straight from the choices ------------------------------------------
    def pack(self, indices, chunk_size=2048):
        """A cc.Packed of the architectures ``indices`` (official indices), written with numpy from
        the (n, 6) choice array (the network traced once with a ``OneOf`` per edge, see
        _template.py): no Python object per candidate. Row for row what
        ``cc.pack([self.model(i) for i in indices])`` writes (without row names)."""
        idx = self._check(np.atleast_1d(indices)).ravel()
        if len(idx) == 0:
            raise ValueError("NB201.pack: no indices")
        if not hasattr(self, "_expansion"):
            ops = [Choice(range(len(OPS))) for _ in EDGES]
            self._expansion = _Expansion(_network(ops, self.input_shape, self.num_classes, "nb201"), ops)
        ch = _choices(_lex_to_official()[idx])
        pieces = [self._expansion.rows(ch[s:s + chunk_size])[:3] for s in range(0, len(ch), chunk_size)]
        return SlotTable.concat(pieces, self.input_shape)

    def _chain_count(self, indices, n_threads=None):
        """cc.sweep's counts of ``indices`` ({field: array}), block by block (_blockwise.py): the
        cell of each stage counted once per cell variant (the core on n_threads), then gathered."""
        lex = _lex_to_official()[self._check(np.atleast_1d(indices)).ravel()]
        if not hasattr(self, "_chain"):
            self._chain = BlockChain(_blocks(self.num_classes))
        codes = np.zeros((len(self._chain.blocks), len(lex)), np.int64)
        codes[[b for b, blk in enumerate(self._chain.blocks) if blk.key.startswith("cell")]] = lex
        return self._chain.count(codes, np.zeros(len(lex), np.int64), [self.input_shape], n_threads)

    def __getstate__(self):  # the traced template is rebuilt where it is needed (e.g. a Dask worker)
        return {k: v for k, v in self.__dict__.items() if k not in ("_expansion", "_inverse", "_chain")}


class _Zero:
    """xautodl's Zero op (``x.mul(0.)``), written ``x * x``: one Mul row reading its input twice."""

    type = "Zero"

    def _emit(self, builder, name, srcs):
        from ..graph import Mul
        return builder.add(Mul(), name, [srcs[0], srcs[0]])


def _edge(op, c):
    """The modules of one edge op (positions of ``OPS``; None = skip_connect), named as xautodl's."""
    from collections import OrderedDict
    from ..model import Sequential
    if op == _NONE:
        return _Zero()
    if op == _SKIP:
        return None
    if op == _POOL:
        return Sequential(OrderedDict(op=AvgPool2d(3, 1, 1, count_include_pad=False)))
    ks = 1 if op == _CONV1 else 3
    return Sequential(OrderedDict(op=Sequential(ReLU(), Conv2d(c, c, ks, 1, ks // 2, bias=False), BatchNorm2d(c))))


def _network(ops, input_shape, num_classes, name):
    """TinyNetwork (C=16, N=5) with the cell's 6 edge ops ``ops`` (ints, or Choices for the template)."""
    x = Input(input_shape)
    h = _stem(x)
    cin = _C
    for ci, (cout, red) in enumerate(_layout()):
        h = residual_reduction(h, cin, cout, f"cells.{ci}") if red else _cell(h, ops, cout, f"cells.{ci}")
        cin = cout
    return Model(x, tiny_head(h, cin, num_classes), name=name)


def _stem(x):
    h = Conv2d(3, _C, 3, padding=1, bias=False)(x, name="stem.0")
    return BatchNorm2d(_C)(h, name="stem.1")


def _cell(h, ops, c, name):
    """InferCell: 4 nodes, node j the sum of its edges' outputs; the output is node 3."""
    nodes, acc = [h], {}
    for e, ((j, k), op) in enumerate(zip(EDGES, ops)):
        y = OneOf([_edge(o, c) for o in range(len(OPS))], op)(nodes[k], name=f"{name}.layers.{e}")
        sum_into_node(acc, nodes, j, k, y, sum(1 for (jj, _) in EDGES[:e] if jj == j), name)
    return nodes[3]


def _blocks(num_classes):
    """The network as a chain of blocks for _blockwise: stem, the five equal cells of each stage (one
    repeated block, its variant the cell's lexicographic index), the reductions, the head."""
    blocks, cin, layout = [Block("stem", _stem)], _C, _layout()
    for ci, (cout, red) in enumerate(layout):
        if red:
            blocks.append(Block(f"reduction{cin}", lambda x, a=cin, b=cout: residual_reduction(x, a, b, "cells")))
        elif ci == 0 or layout[ci - 1][1]:  # the first cell of a stage stands for all of them
            blocks.append(Block(f"cell{cout}", lambda x, *ops, c=cout: _cell(x, ops, c, "cells"),
                                [range(len(OPS))] * len(EDGES), repeat=_N))
        cin = cout
    blocks.append(Block(f"head{num_classes}", lambda x, c=cin: tiny_head(x, c, num_classes)))
    return blocks


def sum_into_node(acc, nodes, j, k, y, n_earlier, name):
    """Add edge j<-k's output y to node j's sum (torch's ``sum(...)`` order; n_earlier edges into j
    came before); the node is complete after its edge from node j-1."""
    if n_earlier:
        acc[j] = add(acc[j], y, name=f"{name}.node{j}.add" + (f"_{n_earlier - 1}" if n_earlier > 1 else ""))
    else:
        acc[j] = y
    if k == j - 1:
        nodes.append(acc[j])


def tiny_head(h, cin, num_classes):
    """TinyNetwork's lastact (BN, ReLU), global pooling, view and classifier (NB201 and NATS)."""
    h = BatchNorm2d(cin)(h, name="lastact.0")
    h = ReLU()(h, name="lastact.1")
    h = AdaptiveAvgPool2d(1)(h, name="global_pooling")
    h = flatten(h, 1, name="view")
    return Linear(cin, num_classes)(h, name="classifier")


def _layout():
    """(channels, is_reduction) of TinyNetwork's 17 cells (C=16, N=5)."""
    return ([(_C, False)] * _N + [(2 * _C, True)] + [(2 * _C, False)] * _N + [(4 * _C, True)]
            + [(4 * _C, False)] * _N)
