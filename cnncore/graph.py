"""Functional graphs: cc.Input, tensors whose shape is known at once, add/mul/cat/split/chunk, cc.Model.

A tensor records the call that made it (a layer or container and its input tensors). Its shape is
computed at once by the core on a one-layer architecture whose network inputs are the input
tensors, so an invalid layer raises cc.ShapeError where it is called. cc.Model collects every call
reachable from its inputs, in creation order (a topological order), and flattens them into packed
rows; calls no output depends on are kept, flagged unused (params only, like an uncalled module).
"""
from __future__ import annotations

import functools
import itertools
import math
import operator
import re

from . import _core
from . import _format as F
from .errors import ShapeError, describe, layer_message
from .layers import Layer, _int
from .model import RowBuilder, Sequential, emit

_ids = itertools.count()


class Tensor:
    """A symbolic tensor: `.shape` (batch first) is known as soon as the tensor is made."""

    __slots__ = ("shape", "node", "index", "_id", "consumers", "__weakref__")

    def __init__(self, shape, node, index=0):
        self.shape = shape if type(shape) is tuple else tuple(int(v) for v in shape)  # the core's are int tuples
        self.node = node  # the _Node that produced it (None for an Input)
        self.index = index
        self._id = next(_ids)
        self.consumers = []

    @property
    def ndim(self):
        return len(self.shape)

    def __add__(self, other):
        return add(self, other)

    def __mul__(self, other):
        return mul(self, other)

    def __repr__(self):
        return f"Tensor(shape={self.shape})"


class Input(Tensor):
    """cc.Input(shape, batch_size=1): a network input; `shape` excludes the batch, like torchinfo's input_size."""

    __slots__ = ("input_shape", "batch_size")

    def __init__(self, shape, batch_size=1):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not 1 <= len(shape) <= 4:
            raise ValueError(f"Input shape {shape} must have 1 to 4 dimensions (batch excluded)")
        shape = tuple(_int("Input shape", s, 1) for s in shape)
        self.input_shape = shape
        self.batch_size = _int("batch_size", batch_size, 1)
        super().__init__((self.batch_size,) + shape, None)


class _Node:
    __slots__ = ("module", "inputs", "name", "outputs", "_id")

    def __init__(self, module, inputs, name):
        self.module = module
        self.inputs = list(inputs)
        self.name = name
        self.outputs = []
        self._id = next(_ids)


# ---- functional-only ops (no torch.nn class: torch.add, torch.mul, torch.cat, split pieces) ----
class Add(Layer):
    """torch.add / `a + b` with broadcasting."""
    OP = F.OPS["Add"]
    n_inputs = 2


class Mul(Layer):
    """torch.mul / `a * b` with broadcasting (e.g. squeeze-excitation scaling)."""
    OP = F.OPS["Mul"]
    n_inputs = 2


class Cat(Layer):
    """torch.cat(tensors, dim)."""
    OP = F.OPS["Cat"]

    def __init__(self, dim=1):
        super().__init__()
        self.dim = _int("dim", dim)
        self._row[F.DIM0] = self.dim


class Slice(Layer):
    """One piece of torch.split / torch.chunk: `length` entries of `dim` from `start` (a view)."""
    OP = F.OPS["Slice"]

    def __init__(self, dim, start, length):
        super().__init__()
        self.dim, self.start, self.length = dim, start, length
        row = self._row
        row[F.DIM0], row[F.K0], row[F.K1] = _int("dim", dim), _int("start", start, 0), _int("length", length, 1)


def _as_tensors(inputs, what):
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected cnncore tensors (from cc.Input or a layer call), got {type(t).__name__}")
    return list(inputs)


_INT64_MAX = 2**63 - 1
_OVERFLOW = F.ERROR_CODES["OVERFLOW"]


def _shape_of_call(module, inputs, name):
    """The output shapes of `module` called on the input tensors, or a cc.ShapeError naming the
    call. The core's _layer evaluates each row (_core.layer_output) on the shapes already known:
    one row for a layer, the container's rows in order for a Sequential or a Model."""
    b = None
    rows = [module._row] if isinstance(module, Layer) else _chain_rows(module, []) if len(inputs) == 1 else None
    if rows is None:  # any other container: its rows as a model would hold them
        b = RowBuilder()
        emit(module, b, name or "", [-1 - j for j in range(len(inputs))])
        rows = b.rows
    in_shapes = [inputs[0].shape] if len(inputs) == 1 else [t.shape for t in inputs]
    batch = in_shapes[0][0]
    for s in in_shapes:
        if s[0] != batch or not 2 <= len(s) <= 5:
            raise ShapeError(f"{name or module.type}: inputs must share the first (batch) dimension and have "
                             f"2 to 5 dimensions, got shapes {in_shapes}", -1, name)
    if not rows:  # an empty container: the identity
        return [in_shapes[0]]
    if b is None and len(rows) == 1:  # one row: layer_output makes every check count_packed makes
        code, bad, shape = _core.layer_output(rows[0], in_shapes)[:3]
        if code:
            b = RowBuilder()
            emit(module, b, name or "", [-1 - j for j in range(len(inputs))])
            _raise_call_error(module, inputs, name, b, bad, code, in_shapes, [])
        return [shape]
    shapes = _rows_shapes(module, inputs, name, rows, b, in_shapes)
    refs = getattr(module, "_last_refs", None) if isinstance(module, Model) else None
    if refs:  # a Model: one tensor per output
        return [in_shapes[-1 - ref] if ref < 0 else shapes[ref] for ref in refs]
    return [shapes[-1]]


def _chain_rows(module, rows):
    """The rows of a Sequential of layers and Sequentials (row k reads row k - 1), appended to
    `rows`; None for any other container."""
    if type(module) is not Sequential:
        return None
    for m in module._modules.values():
        if isinstance(m, Layer):
            rows.append(m._row)  # read only: the core copies the fields it reads
        elif _chain_rows(m, rows) is None:
            return None
    return rows


def _rows_shapes(module, inputs, name, rows, b, in_shapes):
    """Every row's output shape, in order, with count_packed's checks in its order: the row's own
    error, then the running totals (params, buffers, MACs, FLOPs, inputs + activations) within
    int64. `b` is the RowBuilder that wrote the rows, or None for a chain (row k reads row k - 1)."""
    shapes = []
    params = buffers = macs = flops = 0
    live = sum(map(math.prod, in_shapes))
    x = in_shapes[0]
    layer_output, FLAGS, UNUSED = _core.layer_output, F.FLAGS, F.F_UNUSED  # (locals: this loop runs per row)
    for k, row in enumerate(rows):
        if b is None:
            ins = [x]
        else:
            ins = [in_shapes[-1 - s] if s < 0 else shapes[s] for s in
                   [row[F.SRC], *b.extra[row[F.XOFF]:row[F.XOFF] + row[F.NSRC] - 1]]]
        code, bad, shape, p, bu, m, f, n = layer_output(row, ins)
        if not code:
            params += p
            buffers += bu
            if not row[FLAGS] & UNUSED:  # exists, never runs: parameters only
                macs += m
                flops += f
                live += n
            if (params | buffers | macs | flops | live) > _INT64_MAX:  # all >= 0: any >= 2**63
                code = _OVERFLOW
        if code:
            if b is None:  # rows with their names and references, for the message
                b = RowBuilder()
                emit(module, b, name or "", [-1 - j for j in range(len(inputs))])
            _raise_call_error(module, inputs, name, b, k if bad == 0 else -1, code, in_shapes, shapes)
        shapes.append(shape)
        x = shape
    return shapes


def _raise_call_error(module, inputs, name, b, k, code, in_shapes, shapes):
    """The ShapeError of row k (-1: the network inputs) of a call, worded as before: a layer names
    its call and input shape, a container the failing row."""
    if k < 0:  # no row failed: the inputs themselves (their elements, all live at once, overflow int64)
        raise ShapeError(f"{name or module.type}: the input tensors are too large to count "
                         f"({' and '.join(str(t.shape) for t in inputs)}: elements overflow int64)", -1, None, code)
    row = b.rows[k]
    src = row[F.SRC]
    x = in_shapes[-1 - src] if src < 0 else shapes[src] if src < len(shapes) else None
    if isinstance(module, Layer):  # one row: name the call, not a row index
        on = x if len(inputs) == 1 else " and ".join(str(t.shape) for t in inputs)
        msg = f"{name or module.type} ({module.type}) called on {on}: {describe(code, row, x, module.type)}"
    else:
        msg = f"{name or module.type}: " + layer_message(k, b.names[k] or None, b.types[k], code, row, x)
    raise ShapeError(msg, k, b.names[k], code)


def _call(module, inputs, name=None):
    for t in inputs:
        if not isinstance(t, Tensor):
            _as_tensors(inputs, name or getattr(module, "type", "layer"))  # raises the TypeError
    if not inputs:
        raise TypeError(f"{module.type}: called without an input tensor")
    shapes = _shape_of_call(module, inputs, name)
    node = _Node(module, inputs, name)
    for t in inputs:
        t.consumers.append(node)
    if len(shapes) == 1:
        out = Tensor(shapes[0], node)
        node.outputs.append(out)
        return out
    node.outputs.extend(Tensor(shape, node, i) for i, shape in enumerate(shapes))
    # a Model with several outputs returns a tuple, like a torch module returning several tensors
    return tuple(node.outputs)


def apply_container(container, inputs, name=None):
    return _call(container, inputs, name)


def add(a, b, name=None):
    """torch.add(a, b): element-wise sum with broadcasting (counts one FLOP per output element)."""
    return _call(Add(), [a, b], name)


def mul(a, b, name=None):
    """torch.mul(a, b): element-wise product with broadcasting, e.g. N×C×H×W times N×C×1×1."""
    return _call(Mul(), [a, b], name)


def cat(tensors, dim=1, name=None):
    """torch.cat(tensors, dim=1)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return _call(Cat(dim), tensors, name)


def split(x, split_size_or_sections, dim=1, name=None):
    """torch.split: pieces of `split_size` (the last may be smaller) or of the given sections."""
    if not isinstance(x, Tensor):
        raise TypeError(f"split: expected a cnncore tensor, got {type(x).__name__}")
    nd = x.ndim
    d = _int("dim", dim)
    if not -nd <= d < nd:
        raise ShapeError(f"split: Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    size = x.shape[d % nd]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = [_int("split sections", s, 0) for s in split_size_or_sections]
        if 0 in sections:
            raise ShapeError(f"split: sections {list(sections)} contain an empty piece; cnncore does not model "
                             f"empty tensors (torch would return a size-0 view)")
        if sum(sections) != size:
            raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size "
                             f"at dimension {d}), but got split_sizes={list(sections)}")
    else:
        step = _int("split_size", split_size_or_sections, 1)
        sections = [min(step, size - s) for s in range(0, size, step)]
    out, start = [], 0
    for i, n in enumerate(sections):
        out.append(_call(Slice(d, start, n), [x], None if name is None else f"{name}.{i}"))
        start += n
    return tuple(out)


def chunk(x, chunks, dim=1, name=None):
    """torch.chunk: `chunks` pieces of ceil(size / chunks) (fewer when the size is small)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"chunk: expected a cnncore tensor, got {type(x).__name__}")
    n = _int("chunks", chunks, 1)
    d = _int("dim", dim)
    size = x.shape[d % x.ndim] if -x.ndim <= d < x.ndim else 0
    return split(x, max(1, -(-size // n)), dim, name)


def flatten(x, start_dim=0, end_dim=-1, name=None):
    """torch.flatten(x, start_dim=0, end_dim=-1) (note torch's functional default start_dim=0)."""
    from .layers import Flatten
    return _call(Flatten(start_dim, end_dim), [x], name)


_creation_order = operator.attrgetter("_id")


@functools.lru_cache(maxsize=None)  # one entry per type name
def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


class Model:
    """cc.Model(inputs, outputs): the graph from `inputs` to `outputs` (one tensor or a list).

    Every call reachable from the inputs belongs to the model, in the order it was made; a call no
    output depends on is kept and counts its params only (a module that exists but is not called).
    So a call made only to look at a shape joins every Model built later from the same Input: probe
    shapes on a separate cc.Input.
    Unnamed calls get torch.fx-style names (conv2d, conv2d_1, add, ...). A Model can be called on
    tensors like a layer; its rows are then named `<call name>.<inner name>`.
    """

    type = "Model"

    def __init__(self, inputs, outputs, name=None):
        self.inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        self.outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        self.name = name
        for t in self.inputs:
            if not isinstance(t, Input):
                raise TypeError("Model: inputs must be cc.Input tensors")
        _as_tensors(self.outputs, "Model outputs")
        if not self.outputs:
            raise ValueError("Model: needs at least one output")
        # every call reachable from the inputs; creation order is a topological order, so one pass
        # keeps the calls whose inputs all come from this model
        reach, stack, seen = [], list(self.inputs), set()
        while stack:
            for n in stack.pop().consumers:
                if id(n) not in seen:
                    seen.add(id(n))
                    reach.append(n)
                    stack.extend(n.outputs)
        known, nodes = {id(t) for t in self.inputs}, []
        for n in sorted(reach, key=_creation_order):
            for i in n.inputs:
                if id(i) not in known:
                    break
            else:
                nodes.append(n)
                known.update(map(id, n.outputs))
        for t in self.outputs:
            if id(t) not in known:
                raise ValueError(f"Model: output {t} is not computed from the model's inputs")
        self._nodes = nodes
        # which nodes some output depends on
        live, stack = set(), [t.node for t in self.outputs if t.node is not None]
        while stack:
            n = stack.pop()
            if id(n) not in live:
                live.add(id(n))
                for i in n.inputs:
                    if i.node is not None:
                        stack.append(i.node)
        self._live = live
        counts, self._names = {}, {}
        for n in self._nodes:
            base = n.name or _snake(getattr(n.module, "type", type(n.module).__name__))
            k = counts.get(base, 0)
            counts[base] = k + 1
            self._names[id(n)] = base if k == 0 else f"{base}_{k}"

    @property
    def input_shapes(self):
        return [t.input_shape for t in self.inputs]

    @property
    def batch_size(self):
        return self.inputs[0].batch_size

    def _emit(self, builder, name, srcs):
        if len(srcs) != len(self.inputs):
            raise TypeError(f"{name or 'Model'}: takes {len(self.inputs)} input(s), got {len(srcs)}")
        refs = {id(t): s for t, s in zip(self.inputs, srcs)}
        prefix = f"{name}." if name else ""
        rows, names, live = builder.rows, self._names, self._live
        for n in self._nodes:
            first = len(rows)
            module = n.module
            srcs = [refs[id(i)] for i in n.inputs]
            ref = (builder.add(module, prefix + names[id(n)], srcs) if isinstance(module, Layer)
                   else emit(module, builder, prefix + names[id(n)], srcs))
            if id(n) not in live:
                for r in rows[first:]:  # rows are global; only this call's rows are flagged
                    r[F.FLAGS] |= F.F_UNUSED
            if len(n.outputs) == 1:
                refs[id(n.outputs[0])] = ref
            else:
                for o, r in zip(n.outputs, module._last_refs):
                    refs[id(o)] = r
        self._last_refs = [refs[id(t)] for t in self.outputs]
        return self._last_refs[0]

    def _emit_model(self, builder):
        """Top-level emission: the network inputs are -1, -2, ...; every output row is flagged
        (kept alive to the end; a batch reports the last flagged row's shape as the output)."""
        first = self._emit(builder, "", [-1 - j for j in range(len(self.inputs))])
        for ref in self._last_refs[1:] + [first]:
            if ref >= 0:
                builder.row(ref)[F.FLAGS] |= F.F_OUTPUT
        return first

    def __call__(self, *inputs, name=None):
        return _call(self, inputs, name)

    def __repr__(self):
        return (f"Model(inputs={[t.shape for t in self.inputs]}, outputs={[t.shape for t in self.outputs]}, "
                f"{len(self._nodes)} calls)")


def _layer_call(self, *inputs, name=None):
    """layer(tensor, ..., name=None) -> tensor: a call in a functional graph, shape known at once."""
    if len(inputs) != self.n_inputs and type(self) is not Cat:
        raise TypeError(f"{self.type} takes {self.n_inputs} input tensor(s), got {len(inputs)}")
    return _call(self, inputs, name)


Layer.__call__ = _layer_call
Sequential.__call__ = lambda self, *inputs, name=None: _call(self, inputs, name)
