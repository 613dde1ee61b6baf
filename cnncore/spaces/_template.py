"""Template spaces: one model whose layer arguments are choices, expanded into packed arrays for
many candidates at once with numpy (no Python object per candidate).

Two layers of machinery:

- ``TemplateSpace(build, **choices)``: ``build(**values)`` makes a cc.Model. Called once with
  ``Choice`` objects it gives the template, traced (``_TemplateBuilder``) into row slots: which
  columns hold which choice, which slots exist under which ``Optional`` / ``OneOf`` pick, which
  sources are a OneOf's output. ``_Expansion`` compiles that into static tables: every slot's row
  for every combination of its choices ("variants"), presence conditions, relative sources. For
  candidates (numpy arrays of option indices) it then writes the packed rows with a few gathers
  per table, never a Python step per slot and candidate. Called with plain values, ``build``
  gives one candidate's model. NB201 and the OFA spaces are built this way.
- ``SlotTable``: the hand-written variant (NATSSize): slots added one by one with per-architecture
  presence, sources and column values as arrays; ``finish`` writes the rows with one gather per
  column. ``SlotTable.concat`` wraps either's rows into a cc.Packed.

A ``Choice`` is an ``int`` whose value is its first option, so torch-named layers accept it as an
argument and a template is an ordinary model (shapes are checked on the first option). A value
computed from a choice must say so with ``derive(choice, fn)``: arithmetic on a Choice raises
TypeError, and ``TemplateSpace`` packs a few probe candidates at construction and compares them
row by row with their ``model()``, so that control flow on a Choice (``range(depth)``,
``if k > 3``), which would freeze its first option, is a ValueError, not silently wrong counts.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import numpy as np

from .. import _format as F
from .._blocks import gather_rows, plan_rows
from ..errors import ShapeError
from ..model import RowBuilder, emit
from ..packing import Packed, pack

__all__ = ["Choice", "derive", "Optional", "OneOf", "TemplateSpace", "SlotTable"]


# ---- choices ------------------------------------------------------------------------------------
class Choice(int):
    """One searchable value: ``Choice([16, 32, 64])`` (distinct ints). Its int value is the first
    option. ``c.map(fn)`` (or ``derive(c, fn)``) is a value computed from the same choice; plain
    arithmetic on a Choice (``k // 2``) raises TypeError, as its result would freeze the first option."""

    def __new__(cls, options, name=None):
        opts = tuple(options)
        if not opts:
            raise ValueError("Choice: needs at least one option")
        vals = []
        for o in opts:
            if isinstance(o, (bool, np.bool_)) or not isinstance(o, (int, np.integer)):
                raise TypeError(f"Choice: options must be ints, got {o!r}")
            vals.append(int(o))
        repeated = sorted({v for v in vals if vals.count(v) > 1})
        if repeated:  # an option listed twice would be two candidates with the same network
            raise ValueError(f"Choice: options must be distinct, {repeated} repeated in {vals}")
        obj = int.__new__(cls, vals[0])
        obj.values, obj.var, obj.name = tuple(vals), None, name
        obj.var = obj  # the root choice: candidates give its option
        return obj

    @property
    def options(self):
        """The options of the choice this value is computed from; of each choice, for a value
        derived from several (the axes of its ``table``)."""
        return self.var.values if len(self.roots) == 1 else tuple(r.values for r in self.roots)

    @property
    def roots(self):
        """The choices this value depends on: itself (a choice), its choice (derived from one), or
        several (derived from several: ``derive((a, b), fn)``)."""
        return getattr(self, "_roots", (self.var,))

    def map(self, fn):
        """The same choice seen through fn: option i gives fn(self.values[i]), an int (or a bool,
        read as 0 / 1); any other result is a TypeError rather than a silently truncated value."""
        if len(self.roots) > 1:
            return _derived(self.roots, np.vectorize(lambda v: _int_of(fn, (v,)), otypes=[np.int64])(self.table))
        return _view([_int_of(fn, (v,)) for v in self.values], self.var)

    def _no_arithmetic(self, *other):
        raise TypeError(f"{self!r}: arithmetic on a Choice would use its first option only; "
                        f"use cc.spaces.derive(choice, fn), e.g. derive(k, lambda v: v // 2)")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _no_arithmetic
    __divmod__ = __rdivmod__ = __pow__ = __rpow__ = __lshift__ = __rlshift__ = _no_arithmetic
    __rshift__ = __rrshift__ = __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _no_arithmetic
    __neg__ = __pos__ = __invert__ = __round__ = __trunc__ = __floor__ = __ceil__ = _no_arithmetic

    def __repr__(self):
        return f"Choice({list(self.values)})" if self.var is self else f"Choice(derived: {list(self.values)})"

    def __reduce__(self):  # pickled (e.g. to Dask workers) as what it is, not as a plain int
        if len(self.roots) > 1:
            return (_derived, (self.roots, self.table))
        return (_rebuild_choice, (self.values, self.var if self.var is not self else None, self.name))


def _rebuild_choice(values, var, name):
    return Choice(values, name) if var is None else _view(values, var, name)


def _view(values, var, name=None):
    """A value of the choice ``var``: values[i] when var takes its option i."""
    obj = int.__new__(Choice, values[0])
    obj.values, obj.var, obj.name = tuple(values), var, name
    return obj


def derive(value, fn):
    """A value computed from choices: fn(value) for a plain value, ``value.map(fn)`` for a Choice,
    and for a tuple of values (``derive((width, expand), lambda w, e: w * e)``) fn of them, a value
    for every combination of the choices among them (plain ints stay fixed)."""
    if not isinstance(value, (tuple, list)):
        return value.map(fn) if isinstance(value, Choice) else fn(value)
    if not any(isinstance(v, Choice) for v in value):
        return fn(*value)
    roots = []
    for v in value:
        if isinstance(v, Choice) and len(v.roots) > 1:
            raise TypeError("derive: derive from the choices themselves, not from a value derived from several")
        if isinstance(v, Choice) and not any(v.var is r for r in roots):
            roots.append(v.var)
    table = np.empty([len(r.values) for r in roots], np.int64)
    for combo in np.ndindex(*table.shape):
        option = {id(r): i for r, i in zip(roots, combo)}  # each root's option index
        table[combo] = _int_of(fn, tuple(v.values[option[id(v.var)]] if isinstance(v, Choice) else v for v in value))
    # several views of one choice are still a value of that choice
    return _view(table.tolist(), roots[0]) if len(roots) == 1 else _derived(tuple(roots), table)


def _int_of(fn, args):
    out = fn(*args)
    if not isinstance(out, (int, np.integer, np.bool_)):
        raise TypeError(f"derive: fn({', '.join(map(str, args))}) gave {out!r}, not an int; round it inside fn, "
                        f"e.g. lambda v: int(round(v * 1.5))")
    out = int(out)
    if not -2**63 <= out < 2**63:
        raise ValueError(f"derive: fn({', '.join(map(str, args))}) gave {out}, outside int64")
    return out


def _derived(roots, table):
    """A value of several choices: table[i, j, ...] when roots[0] takes its option i, roots[1] j..."""
    obj = int.__new__(Choice, int(table.flat[0]))
    obj.values, obj.var, obj.name = tuple(int(v) for v in table.ravel()), None, None
    obj._roots, obj.table = tuple(roots), table
    return obj


def _digits(codes, radix):
    """(n, len(radix)) digits of the mixed-radix numbers ``codes``, the last digit fastest."""
    rest = np.array(codes, np.int64)
    out = np.empty((len(rest), len(radix)), np.int64)
    for j in range(len(radix) - 1, -1, -1):
        out[:, j] = rest % radix[j]
        rest //= radix[j]
    return out


def _strides(positions, radix):
    """([(position, stride)], count): a mixed-radix number over ``positions`` (radix each), the last
    fastest, is the sum of the digits times these strides, below count."""
    terms, step = [], 1
    for j, r in zip(positions[::-1], radix[::-1]):
        terms.append((j, step))
        step *= r
    return terms, step


class OneOf:
    """One of several modules, picked by ``choice`` (option value i -> ``modules[i]``); a ``None``
    module is the identity (the input passes through). Outside a template (a plain int choice) it
    is just the picked module."""

    type = "OneOf"

    def __init__(self, modules, choice=None):
        self.modules = list(modules)
        if not self.modules:
            raise ValueError("OneOf: needs at least one module")
        for m in self.modules:
            if m is not None and not hasattr(m, "_emit") and not hasattr(m, "row"):
                raise TypeError(f"OneOf: {m!r} is not a cnncore layer, container or None")
        self.choice = Choice(range(len(self.modules))) if choice is None else choice
        vals = self.choice.values if isinstance(self.choice, Choice) else (int(self.choice),)
        bad = [v for v in vals if not 0 <= v < len(self.modules)]
        if bad:
            raise ValueError(f"OneOf: choice values {bad} do not index the {len(self.modules)} modules")

    def _emit(self, builder, name, srcs):
        if isinstance(builder, _TemplateBuilder):
            return builder.one_of(self, name, srcs)
        m = self.modules[int(self.choice)]
        return srcs[0] if m is None else emit(m, builder, name, srcs)

    def __call__(self, *inputs, name=None):
        from ..graph import apply_container
        return apply_container(self, inputs, name)


class Optional(OneOf):
    """``module`` when ``when`` is true, else the identity: a skippable layer or block (depth
    choices: ``Optional(block, when=derive(depth, lambda d: d > 2))``). The module must keep the
    shape of its input."""

    type = "Optional"

    def __init__(self, module, when=None):
        when = Choice([1, 0]) if when is None else when
        super().__init__([None, module], derive(when, lambda v: int(bool(v))))


# ---- slots ------------------------------------------------------------------------------------------
class SlotTable:
    """Row slots for n architectures (see the module docstring). ``add`` takes a layer (or a row),
    its source(s) -- a slot, a network input (< 0) or an (n,) array of either -- ``present`` (bool
    or (n,) bool) and ``cols`` {column: value or (n,) array}; it returns the slot number."""

    def __init__(self, n):
        self.n = n
        self.rows, self.present, self.src, self.src2, self.cols = [], [], [], [], []

    def add(self, layer, src, src2=None, present=True, output=False, cols=None):
        row = list(layer.row()) if hasattr(layer, "row") else list(layer)
        row[F.NSRC] = 1 if src2 is None else 2
        if output:
            row[F.FLAGS] |= F.F_OUTPUT
        self.rows.append([int(v) for v in row])
        self.present.append(present)
        self.src.append(src)
        self.src2.append(src2)
        self.cols.append(cols or {})
        return len(self.rows) - 1

    def finish(self):
        """(layers, extra_src, rows per architecture): the present slots of every architecture in
        slot order, references renumbered, two-input rows reading ``extra_src`` in row order.

        Everything is laid out (architecture, slot) so that the rows are written in order by one
        gather per column: per-slot work is one vector per slot, never one row per architecture."""
        n, k = self.n, len(self.rows)
        rows = np.array(self.rows, np.int32).reshape(k, F.N_FIELDS)
        pres = np.empty((n, k), bool)
        for s, p in enumerate(self.present):
            pres[:, s] = p
        pos = np.cumsum(pres, axis=1, dtype=np.int32)  # 1 + position of the slot's row in its architecture
        pos -= 1
        counts = pos[:, -1].astype(np.int64) + 1 if k else np.zeros(n, np.int64)
        flat = np.flatnonzero(pres)  # present (architecture, slot) pairs, in output row order
        layers = rows[flat % k] if k else np.zeros((0, F.N_FIELDS), np.int32)
        arch = np.arange(n)

        def gather(values_of_slot, default):
            m = np.empty((n, k), np.int32)
            m[:] = default
            for s, v in values_of_slot:
                m[:, s] = v
            return m.ravel()[flat]

        layers[:, F.SRC] = gather(((s, self._ref(r, pos, arch)) for s, r in enumerate(self.src)), 0)
        by_col = {}
        for s, cols in enumerate(self.cols):
            for col, v in cols.items():
                by_col.setdefault(col, []).append((s, v))
        for col, items in by_col.items():
            layers[:, col] = gather(items, rows[:, col])
        two = np.flatnonzero(layers[:, F.NSRC] == 2)
        layers[two, F.XOFF] = np.arange(len(two), dtype=np.int32)
        second = [(s, self._ref(r, pos, arch)) for s, r in enumerate(self.src2) if r is not None]
        extra = gather(second, 0)[two] if second else np.zeros(0, np.int32)
        return layers, np.ascontiguousarray(extra, np.int32), counts

    @staticmethod
    def _ref(ref, pos, arch):
        """A reference (slot >= 0 or input < 0, scalar or per architecture) as row positions."""
        if np.ndim(ref) == 0:
            ref = int(ref)
            return ref if ref < 0 else pos[:, ref]
        ref = np.asarray(ref)
        return np.where(ref >= 0, pos[arch, np.maximum(ref, 0)], ref)

    @staticmethod
    def concat(pieces, input_shape, batch_size=1, checked=True):
        """One cc.Packed of ``finish`` results with a single network input: ``input_shape`` is one
        shape (without batch) for all, or an (n, ndim) array, one per architecture; ``batch_size``
        an int or an (n,) array."""
        layers, extras, counts, base = [], [], [], 0
        for lay, ex, cnt in pieces:
            if base:
                lay = lay.copy()
                lay[lay[:, F.NSRC] >= 2, F.XOFF] += base
            base += len(ex)
            layers.append(lay)
            extras.append(ex)
            counts.append(cnt)
        counts = np.concatenate(counts)
        n = len(counts)
        ishape = np.asarray(input_shape, np.int64)
        ndim = ishape.shape[-1]
        shape = np.zeros((n, 4), np.int64)
        shape[:, :ndim] = ishape
        off = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        one = len(pieces) == 1  # no copy: touching fresh memory is not free
        arrays = dict(layers=np.ascontiguousarray(layers[0] if one else np.concatenate(layers), dtype=np.int32),
                      extra_src=np.ascontiguousarray(extras[0] if one else np.concatenate(extras), dtype=np.int32),
                      arch_offsets=off, input_offsets=np.arange(n + 1, dtype=np.int64), input_shape=shape,
                      input_ndim=np.full(n, ndim, np.int32),
                      batch_size=np.ascontiguousarray(np.broadcast_to(np.asarray(batch_size, np.int64), (n,))))
        # checked=False: rows a sweep's block tables made for the core alone (which checks every
        # reference it reads anyway); what a caller receives is always validated
        return Packed.from_arrays(**arrays) if checked else Packed(arrays, _validated=True)


# ---- tracing a template ------------------------------------------------------------------------------
_VIRTUAL = 1 << 30  # references >= this are OneOf outputs: resolved per architecture at pack time
# the last plans of _Expansion.rows: (structure, option indices) -> (plan, bytes), under a lock
_PLANS, _PLANS_BYTES, _PLANS_LOCK = OrderedDict(), 16 << 20, threading.Lock()


def _after_fork_in_child():  # (as _blockwise's: a lock held by another thread of the parent)
    global _PLANS_LOCK
    _PLANS_LOCK = threading.Lock()
    _PLANS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _TemplateBuilder(RowBuilder):
    """Flattens a template model into slots: rows (Choice objects left in their columns), the
    conditions under which each row exists, and OneOf outputs as virtual references."""

    def __init__(self):
        super().__init__()
        self.conds = []  # per row: tuple of (choice, allowed option values)
        self.virtual = []  # per OneOf call: (choice, [ref per module])
        self._stack = ()

    def add(self, layer, name, srcs):
        ref = super().add(layer, name, srcs)
        self.conds.append(self._stack)
        return ref

    def one_of(self, node, name, srcs):
        if not isinstance(node.choice, Choice):  # a fixed pick: only that module exists
            m = node.modules[int(node.choice)]
            return srcs[0] if m is None else emit(m, self, name, srcs)
        refs = []
        outer = self._stack
        for i, m in enumerate(node.modules):
            if m is None:
                refs.append(srcs[0])
                continue
            self._stack = outer + ((node.choice, i),)
            try:
                refs.append(emit(m, self, f"{name}.{i}" if name else str(i), srcs))
            finally:
                self._stack = outer
        self.virtual.append((node.choice, refs))
        return _VIRTUAL + len(self.virtual) - 1


class _Expansion:
    """A traced template compiled into static tables, so that ``rows(idx)`` (idx: (n, n_vars)
    option indices) costs a few numpy operations per distinct presence condition, per OneOf and
    per level of variant choices, plus passes over the output rows -- none per slot or candidate."""

    def __init__(self, model, variables, traced=None):
        """``traced``: (builder, input shape, batch size, output refs) of rows traced already (a
        piece of a template: _segments.py), instead of ``model``."""
        self._vars = variables
        self.var_pos = {id(v): j for j, v in enumerate(variables)}
        self.n_opt = max(len(v.values) for v in variables)
        if traced is None:
            if len(model.inputs) != 1:
                raise ValueError("TemplateSpace: the template model must have exactly one input")
            b = _TemplateBuilder()
            model._emit(b, "", [-1])
            traced = b, model.inputs[0].input_shape, model.inputs[0].batch_size, list(model._last_refs)
        b, input_shape, batch_size, last_refs = self.traced = traced
        k = self.k = len(b.rows)
        self.input_shape = [self._spec(v) for v in input_shape]
        self.batch_size = self._spec(batch_size)
        base = np.zeros((k, F.N_FIELDS), np.int64)
        choice_cols = {}
        plain = [s for s, r in enumerate(b.rows) if all(type(v) is int for v in r)]  # one assignment for these
        if plain:
            base[plain] = [b.rows[s] for s in plain]
        for s in sorted(set(range(k)) - set(plain)):
            for c, v in enumerate(b.rows[s]):
                if isinstance(v, Choice):
                    choice_cols.setdefault(c, []).append((s, self._spec(v, several=True)))
                else:
                    base[s, c] = int(v)
        # OneOf outputs: per root option, a static reference or another OneOf's output
        self.virt = []
        for ch, refs in b.virtual:
            j, vals = self._spec(ch)
            picked = [refs[v] for v in vals]
            stat = np.array([r if r < _VIRTUAL else 0 for r in picked], np.int64)
            vid = np.array([r - _VIRTUAL if r >= _VIRTUAL else -1 for r in picked], np.int64)
            self.virt.append((j, self._pad(stat, 0), self._pad(vid, -1)))
        # presence: AND of (variable, allowed options) conditions (one per enclosing OneOf)
        conds = []
        for cs in b.conds:
            merged = {}
            for ch, i in cs:
                j, vals = self._spec(ch)
                merged[j] = merged.get(j, True) & self._pad(vals == i, False)
            conds.append(list(merged.items()))
        # one column per distinct condition set (column 0: always), so that presence is one take
        self.cond_sets, index = [()], {(): 0}
        self.slot_cond = np.zeros(k, np.int64)
        for slot, c in enumerate(conds):
            key = tuple((j, m.tobytes()) for j, m in c)
            if key not in index:
                index[key] = len(self.cond_sets)
                self.cond_sets.append(c)
            self.slot_cond[slot] = index[key]
        # sources: static refs, or a OneOf output (vid >= 0)
        # inputs after the first (cat, add, mul): n_extra per slot, their refs one after the other
        self.n_extra = np.maximum(base[:, F.NSRC] - 1, 0)
        self.extra_first = np.cumsum(np.r_[0, self.n_extra[:-1]]) if k else np.zeros(0, np.int64)
        extra_refs = np.array([b.extra[int(r[F.XOFF]) + j] for r in b.rows for j in range(int(r[F.NSRC]) - 1)],
                              np.int64)
        first = np.array([int(r[F.SRC]) for r in b.rows], np.int64)
        self.src = self._split_refs(first)
        # a static source r of slot s sits a fixed number of rows back when every slot between them
        # exists whenever s does (always, or under s's own conditions): SRC = own row - (s - r)
        self.rel = np.zeros(k, np.int64)
        for slot, r in enumerate(first):
            if 0 <= r < _VIRTUAL and all(self.slot_cond[q] in (0, self.slot_cond[slot]) for q in range(r + 1, slot)):
                self.rel[slot] = slot - r
        self.extra_refs = self._split_refs(extra_refs)
        base[:, F.SRC] = base[:, F.XOFF] = 0
        # outputs: a static row is flagged once; a OneOf output flags whichever row it picks
        self.virtual_outputs = []
        for o in last_refs:
            if o >= _VIRTUAL:
                self.virtual_outputs.append(o - _VIRTUAL)
            elif o >= 0:
                base[o, F.FLAGS] |= F.F_OUTPUT
        # every slot's rows for every combination of the choices in its columns ("variants"):
        # a candidate's rows are then one gather from this table
        vars_of, cols_of = {}, {}
        for c, items in choice_cols.items():
            for slot, (j, vals) in items:  # j: a variable, or a tuple of them (vals then a table)
                js = j if isinstance(j, tuple) else (j,)
                vars_of.setdefault(slot, set()).update(js)
                cols_of.setdefault(slot, []).append((c, js, vals))
        table, self.variant_base, pairs = [], np.zeros(k, np.int64), []
        for slot in range(k):
            self.variant_base[slot] = len(table)
            vs = sorted(vars_of.get(slot, ()))
            radix = [len(self._vars[j].values) for j in vs]
            if not vs:  # no choice in its columns: one variant
                table.append(base[slot])
            for combo in (np.ndindex(*radix) if vs else ()):
                row = base[slot].copy()
                for c, js, vals in cols_of[slot]:  # vals: one axis per variable of js
                    row[c] = vals[tuple(combo[vs.index(q)] for q in js)]
                table.append(row)
            stride = 1
            for d in range(len(vs) - 1, -1, -1):
                pairs.append((len(vs) - 1 - d, slot, vs[d], stride))
                stride *= radix[d]
        variants = np.array(table, np.int64).reshape(-1, F.N_FIELDS)
        outside = (variants < -(1 << 31)) | (variants >= 1 << 31)  # the probes do not build every option
        if outside.any():
            row, col = np.argwhere(outside)[0]
            raise ValueError(f"TemplateSpace: a value computed from the choices, {variants[row, col]} (layer field "
                             f"{F.FIELD_NAMES[col]}), does not fit the packed format's int32 fields")
        self.variants = variants.astype(np.int32)
        self.variant_levels = []  # per level: (variable, stride) of every slot (stride 0: none)
        for d in range(max((p[0] for p in pairs), default=-1) + 1):
            var, stride = np.zeros(k, np.int64), np.zeros(k, np.int64)
            for _, slot, j, st in (p for p in pairs if p[0] == d):
                var[slot], stride[slot] = j, st
            self.variant_levels.append((var, stride))

    def _spec(self, v, several=False):
        """(variable position, values by option index) for a Choice; an int stays an int. several:
        a value derived from several choices is allowed, as ((positions), table of values)."""
        if not isinstance(v, Choice):
            return int(v)
        pos = tuple(self.var_pos.get(id(r)) for r in v.roots)
        if None in pos:
            raise ValueError(f"TemplateSpace: the template uses {v!r}, which is not one of the space's choices "
                             f"(pass every Choice to TemplateSpace)")
        if len(pos) > 1:
            if not several:
                raise ValueError(f"TemplateSpace: {v!r} is derived from several choices; such a value can be a "
                                 f"layer's argument, not a OneOf / Optional choice, an input shape or a batch size")
            return pos, v.table
        return pos[0], np.asarray(v.values, np.int64)

    def _pad(self, a, fill):
        out = np.full(self.n_opt, fill, np.asarray(a).dtype)
        out[:len(a)] = a
        return out

    @staticmethod
    def _split_refs(refs):
        virtual = refs >= _VIRTUAL
        return np.where(virtual, 0, refs), np.where(virtual, refs - _VIRTUAL, -1)

    def rows(self, idx, scratch=None):
        """(layers, extra_src, rows per candidate, input shapes, batch sizes) of option indices idx
        (n, n_vars): the plan of the rows (which variant each row is, where it reads), then one
        gather of the variants table. ``scratch``: a list holding an int32 buffer to write the rows
        into (grown as needed) -- memory already touched, which is not free here -- instead of a
        new array; the rows are then valid until the next call with the same scratch."""
        variant, src, picked, multi_rows, xoff, extra, counts = self._plan(np.ascontiguousarray(idx, np.int64))
        if scratch is None:
            layers = np.empty((len(variant), F.N_FIELDS), np.int32)
        else:
            if not scratch or len(scratch[0]) < len(variant):
                scratch[:] = [np.empty((max(len(variant), 2 * len(scratch[0]) if scratch else 0), F.N_FIELDS),
                                       np.int32)]
            layers = scratch[0][:len(variant)]
        gather_rows(self.variants, variant, src, F.SRC, layers)
        layers[picked, F.FLAGS] |= F.F_OUTPUT  # the row a OneOf output picks is flagged an output
        layers[multi_rows, F.XOFF] = xoff
        shape = np.stack([self._per_candidate(v, idx) for v in self.input_shape], axis=1)
        return layers, extra.copy(), counts.copy(), shape, self._per_candidate(self.batch_size, idx)

    def _structure(self):
        """A digest of every table the plan depends on: expansions traced from one build with other
        constants (NB201's cell at 16, 32 and 64 channels) share their plans."""
        if not hasattr(self, "_digest"):
            h = hashlib.sha1()

            def feed(x):  # ints, arrays and (nested) lists of them, with their structure
                if isinstance(x, (list, tuple)):
                    h.update(b"(%d" % len(x))
                    for item in x:
                        feed(item)
                    h.update(b")")
                elif isinstance(x, np.ndarray):
                    h.update(b"%s%s" % (str(x.dtype).encode(), str(x.shape).encode()))
                    h.update(np.ascontiguousarray(x).tobytes())
                else:
                    h.update(b"%d," % int(x))

            feed((self.k, self.cond_sets, self.virt, self.variant_levels, self.virtual_outputs, self.slot_cond,
                  self.variant_base, self.rel, self.src, self.extra_refs, self.n_extra))
            self._digest = h.hexdigest()
        return self._digest

    def _plan(self, idx):
        # the option indices as bytes, one a value when they fit (hashing the key reads every byte)
        small = idx.size == 0 or (idx.min() >= 0 and idx.max() < 256)
        key = (self._structure(), idx.shape, small, (idx.astype(np.uint8) if small else idx).tobytes())
        with _PLANS_LOCK:
            kept = _PLANS.get(key)
        if kept is not None:
            return kept[0]
        plan = self._new_plan(idx)
        size = len(key[3]) + sum(a.nbytes for a in plan)
        if size <= _PLANS_BYTES // 8:  # small plans only (NB201's cell batches); the oldest go first
            for a in plan:
                a.setflags(write=False)  # shared: no caller may change them
            with _PLANS_LOCK:
                _PLANS[key] = plan, size
                total = sum(v[1] for v in _PLANS.values())
                while total > _PLANS_BYTES:
                    total -= _PLANS.popitem(last=False)[1][1]
        return plan

    def _new_plan(self, idx):
        """The plan, by the compiled loop over candidates and slots (src/_blocks.pyx, plan_rows)."""
        return plan_rows(idx, **self._plan_tables())

    def _plan_tables(self):
        """The static tables as plan_rows reads them (made once)."""
        if not hasattr(self, "_tables"):
            terms = [t for conds in self.cond_sets for t in conds]
            n_opt, levels = self.n_opt, self.variant_levels
            self._tables = dict(
                cond_first=np.cumsum([0] + [len(c) for c in self.cond_sets], dtype=np.int64),
                cond_var=np.array([j for j, _ in terms], np.int64),
                cond_allowed=np.array([m for _, m in terms], np.uint8).reshape(len(terms), n_opt),
                virt_var=np.array([j for j, _, _ in self.virt], np.int64),
                virt_stat=np.array([st for _, st, _ in self.virt], np.int64).reshape(len(self.virt), n_opt),
                virt_vid=np.array([vid for _, _, vid in self.virt], np.int64).reshape(len(self.virt), n_opt),
                slot_cond=self.slot_cond, variant_base=self.variant_base,
                level_var=np.array([v for v, _ in levels], np.int64).reshape(len(levels), self.k),
                level_stride=np.array([st for _, st in levels], np.int64).reshape(len(levels), self.k),
                rel=self.rel, src_stat=self.src[0], src_vid=self.src[1], n_extra=self.n_extra,
                extra_first=np.asarray(self.extra_first, np.int64), extra_stat=self.extra_refs[0],
                extra_vid=self.extra_refs[1], virtual_outputs=np.array(self.virtual_outputs, np.int64))
        return self._tables

    @staticmethod
    def _per_candidate(spec, idx):
        """An int or a Choice's (variable, values) as one value per candidate."""
        return np.full(len(idx), spec, np.int64) if not isinstance(spec, tuple) else spec[1][idx[:, spec[0]]]


# ---- the space ---------------------------------------------------------------------------------------
_SAMPLE_BLOCK = 16384  # candidates drawn at a time: their temporaries stay in cache


class TemplateSpace:
    """A search space from a model-building function and its choices.

    ``build(**values)`` returns a cc.Model (one input). ``choices``: name -> Choice, or a list of
    Choices (a field of that many columns). ``TemplateSpace`` calls ``build`` once with the Choices
    (the template) and ``.model(candidate)`` calls it with one candidate's values.

    Candidates are numpy structured arrays with one field per choice name, holding option *values*
    (``space.sample(n, seed)``, ``space.candidates(lo, hi)``: the lo..hi-1-th in mixed-radix order,
    the last choice varying fastest). ``.pack(candidates)`` writes a cc.Packed with numpy.
    """

    def __init__(self, build, name=None, **choices):
        if not callable(build):
            raise TypeError("TemplateSpace: build must be a function returning a cc.Model")
        if not choices:
            raise ValueError("TemplateSpace: give at least one choice, e.g. width=Choice([16, 32])")
        self.build, self.name = build, name or getattr(build, "__name__", "template")
        self.fields, self.variables, seen = {}, [], set()
        for key, ch in choices.items():
            group = list(ch) if isinstance(ch, (list, tuple)) else [ch]
            for c in group:
                if not isinstance(c, Choice) or c.var is not c:
                    raise TypeError(f"TemplateSpace: choice {key!r} must be a Choice (or a list of them), got {c!r}")
                if id(c) in seen:
                    raise ValueError(f"TemplateSpace: choice {key!r} repeats one Choice object; make one Choice per "
                                     f"decision (e.g. [Choice([0, 1]) for _ in range(4)])")
                seen.add(id(c))
            self.fields[key] = (len(self.variables), len(group), isinstance(ch, (list, tuple)))
            self.variables.extend(group)
        self.choices = choices
        self.radix = np.array([len(v.values) for v in self.variables], np.int64)
        self.size = int(np.prod([int(r) for r in self.radix], dtype=object))
        vmax = max(max(abs(x) for x in v.values) for v in self.variables)
        itype = np.int16 if vmax < 2 ** 15 else np.int32 if vmax < 2 ** 31 else np.int64
        self.dtype = np.dtype([(k, itype, (cnt,)) if is_list else (k, itype)
                               for k, (_, cnt, is_list) in self.fields.items()])
        # value -> option index, per variable: its options sorted, and their option indices
        self._sorted_options = []
        for v in self.variables:
            order = np.argsort(v.values, kind="stable")
            self._sorted_options.append((np.asarray(v.values, np.int64)[order], order))
        # a field whose choices share one set of small non-negative options converts values and
        # option indices with one table lookup for all its columns (OFA's 20 kernel sizes)
        self._shared = {}  # field -> (options, value -> option index or -1)
        for key, (j0, cnt, _) in self.fields.items():
            opts = {self.variables[j0 + q].values for q in range(cnt)}
            values = np.asarray(self.variables[j0].values, np.int64)
            if len(opts) == 1 and values.min() >= 0 and values.max() < 1 << 16:
                lut = np.full(int(values.max()) + 1, -1, np.int64)
                lut[values] = np.arange(len(values))
                self._shared[key] = (values, lut)
        self._expansion = _Expansion(self._build_checked(choices), self.variables)
        self._check_probes()

    def __len__(self):
        if self.size >= 2 ** 63:  # as range() does: len() must fit a C ssize_t
            raise OverflowError(f"{self.name}: {self.size:.3g} candidates do not fit len(); use .size")
        return self.size

    def __repr__(self):
        return f"TemplateSpace({self.name!r}: {len(self.variables)} choices, {self.size:.3g} candidates)"

    def _check_probes(self):
        """Pack every choice at its first, middle and last option and compare with ``model()`` row by
        row: a value computed from a Choice without ``derive`` (``range(depth)``, ``if k > 3``) is
        frozen at the first option in the template, and must not give silently wrong counts."""
        idx = np.unique(np.stack([np.zeros_like(self.radix), self.radix // 2, self.radix - 1]), axis=0)
        probes, models = [], []
        for cand in self._from_option_indices(idx):
            try:
                models.append(self.model(cand))
            except (ShapeError, ValueError):  # an invalid candidate, refused by a layer as torch would
                continue  # (pack marks it invalid): nothing to compare
            probes.append(cand)
        if not probes:
            return
        got, packed = self.pack(np.array(probes)).arrays(), pack(models)
        want = packed.arrays()
        for a, cand in enumerate(probes):
            g = got["layers"][got["arch_offsets"][a]:got["arch_offsets"][a + 1]]
            first = want["arch_offsets"][a]
            w = want["layers"][first:want["arch_offsets"][a + 1]]
            if g.shape != w.shape:
                where = f"the template gives {len(g)} layers, model() {len(w)}"
            elif not np.array_equal(g, w):
                row, col = np.argwhere(g != w)[0]
                where = (f"layer {row} ({packed.types[first + row]} {packed.names[first + row]!r}) field "
                         f"{F.FIELD_NAMES[col]}: the template gives {g[row, col]}, model() {w[row, col]}")
            else:
                where = next((f"{key}: the template gives {got[key][a]}, model() {want[key][a]}"
                              for key in ("input_shape", "input_ndim", "batch_size")
                              if not np.array_equal(got[key][a], want[key][a])), None)
            if where:
                raise ValueError(
                    f"{self.name}: pack() and model() disagree for {self.values(cand)}: {where}. A value computed "
                    f"from a Choice must use cc.spaces.derive(choice, fn); control flow on a Choice (range(d), "
                    f"if k > 3) sees only its first option: use Optional / OneOf for depth and alternatives")
        if not np.array_equal(got["extra_src"], want["extra_src"]):
            raise ValueError(f"{self.name}: pack() and model() disagree on the second inputs of two-input layers")

    def _build_checked(self, values):
        m = self.build(**values)
        if not hasattr(m, "_emit") or not hasattr(m, "inputs"):
            raise TypeError(f"TemplateSpace: build returned {type(m).__name__}, expected a cc.Model")
        return m

    # ---- candidates ------------------------------------------------------------------------------
    def _option_indices(self, cands, by_choice=False):
        """(n, n_vars) option indices of a structured candidate array (ValueError on a value that is
        not an option); by_choice: laid out (n_vars, n) instead, one contiguous row per choice."""
        c = np.atleast_1d(np.asarray(cands))
        if c.dtype.names is None or any(k not in c.dtype.names for k in self.fields):
            raise TypeError(f"{self.name}: candidates must be a structured array with fields "
                            f"{list(self.fields)} (from .sample or .candidates)")
        c = c.ravel()
        idx_t = np.empty((len(self.variables), len(c)), np.int64)  # filled a choice (row) at a time
        for key, (j0, cnt, is_list) in self.fields.items():
            if c[key].dtype.kind not in "iu":
                raise TypeError(f"{self.name}: candidate field {key!r} must hold integers, got dtype {c[key].dtype}")
            vals = c[key].reshape(len(c), cnt).T
            if key in self._shared:
                _, lut = self._shared[key]
                if vals.size and vals.min() >= 0 and vals.max() < len(lut):
                    got = np.take(lut, vals, out=idx_t[j0:j0 + cnt], mode="clip")  # (in range: checked)
                    if got.min() >= 0:  # every value is an option (else the loop below says which is not)
                        continue
            vals = np.asarray(vals.T, np.int64)
            for q in range(cnt):
                options, order = self._sorted_options[j0 + q]
                at = np.minimum(np.searchsorted(options, vals[:, q]), len(options) - 1)
                found = options[at] == vals[:, q]
                i = order[at]
                if not found.all():
                    bad = int(vals[np.argmin(found), q])
                    where = f"{key}[{q}]" if is_list else key
                    raise ValueError(f"{self.name}: {where} = {bad} is not one of its options "
                                     f"{list(self.variables[j0 + q].values)}")
                idx_t[j0 + q] = i
        return idx_t if by_choice else idx_t.T

    def _from_option_indices(self, idx):
        out = np.empty(len(idx), self.dtype)
        vals = [np.asarray(v.values, np.int64) for v in self.variables]
        for key, (j0, cnt, is_list) in self.fields.items():
            if key in self._shared:
                cols = np.take(self._shared[key][0], idx[:, j0:j0 + cnt])
            else:
                cols = np.stack([vals[j0 + q][idx[:, j0 + q]] for q in range(cnt)], axis=1)
            out[key] = cols if is_list else cols[:, 0]
        return out

    def sample(self, n, seed=None):
        """n candidates, every choice uniform and independent (numpy's default_rng(seed)), drawn in
        blocks of _SAMPLE_BLOCK candidates (cc.sweep streams the same blocks)."""
        out, lo = np.empty(int(n), self.dtype), 0
        for block in self._sample_blocks(int(n), seed):
            out[lo:lo + len(block)] = block
            lo += len(block)
        return out

    sample.streamed_by = "_sample_blocks"  # cc.sweep may stream these instead (not an overriding sample)

    def _sample_blocks(self, n, seed=None):
        """The candidates of ``sample(n, seed)``, a block at a time: per block and field, the choices
        with r options drawn together as rng.integers(0, r, (block, how many))."""
        rng, itype = np.random.default_rng(seed), self.dtype[0].base
        for lo in range(0, n, _SAMPLE_BLOCK):
            m = min(_SAMPLE_BLOCK, n - lo)
            flat = np.empty((m, len(self.variables)), itype)  # every field's columns side by side:
            for key, (j0, cnt, is_list) in self.fields.items():  # the same bytes as the records
                radix = self.radix[j0:j0 + cnt]
                if key in self._shared:  # all columns at once, straight to values
                    draw = rng.integers(0, radix[0], size=(m, cnt), dtype=np.uint8 if radix[0] <= 256 else np.int64)
                    np.take(self._shared[key][0].astype(itype), draw, out=flat[:, j0:j0 + cnt], mode="clip")
                else:
                    for q in range(cnt):
                        flat[:, j0 + q] = np.take(self.variables[j0 + q].values, rng.integers(0, radix[q], size=m))
            yield flat.view(self.dtype).reshape(m)

    def candidates(self, lo, hi):
        """Candidates number lo..hi-1 of the space in mixed-radix order (the last choice fastest)."""
        if not 0 <= lo <= hi <= self.size:
            raise IndexError(f"{self.name}: range {lo}..{hi} outside 0..{self.size}")
        if self.size >= 2 ** 63:
            raise ValueError(f"{self.name}: {self.size:.3g} candidates cannot be enumerated; sample them")
        return self._from_option_indices(_digits(np.arange(lo, hi, dtype=np.int64), self.radix))

    def values(self, candidate):
        """{name: value or list of values} of one candidate (a record of a candidate array or a dict)."""
        if isinstance(candidate, dict):
            rec = np.zeros(1, self.dtype)
            for k in self.fields:
                if k not in candidate:
                    raise ValueError(f"{self.name}: candidate has no {k!r}")
                rec[k] = candidate[k]
            candidate = rec
        idx = self._option_indices(candidate)
        if len(idx) != 1:
            raise ValueError(f"{self.name}: expected one candidate, got {len(idx)}")
        out = {}
        for key, (j0, cnt, is_list) in self.fields.items():
            vals = [self.variables[j0 + q].values[idx[0, j0 + q]] for q in range(cnt)]
            out[key] = vals if is_list else vals[0]
        return out

    # ---- cc.sweep, block by block ---------------------------------------------------------------------
    def _chain_count(self, cands, n_threads=None):
        """cc.sweep's counts of the candidates ({field: array}) block by block (_segments.py,
        _blockwise.py), or None when the template does not cut into a chain of blocks. n_threads: the
        core's, where block variants are counted."""
        if not hasattr(self, "_template_chain"):
            from ._segments import template_chain
            found = template_chain(self._expansion, self.variables)
            self._template_chain = None if found is None else found + self._input_shapes()
        if self._template_chain is None:
            return None
        chain, block_vars, in_vars, shapes = self._template_chain
        idx = self._option_indices(cands, by_choice=True)  # (choices, n): rows read whole
        codes = np.zeros((len(block_vars), idx.shape[1]), np.int64)
        for b, terms in enumerate(block_vars):  # a block's code: its choices' option numbers, mixed radix
            for j, stride in terms:
                codes[b] += idx[j] * stride
        shape_ids = np.zeros(idx.shape[1], np.int64)
        for j, stride in in_vars:
            shape_ids += idx[j] * stride
        return chain.count(codes, shape_ids, shapes, n_threads)

    def _input_shapes(self):
        """([(variable, stride)], shapes): a candidate's network input shape is shapes[the sum of
        its option numbers times the strides]."""
        specs = self._expansion.input_shape
        used = sorted({s[0] for s in specs if isinstance(s, tuple)})
        radix = [len(self.variables[j].values) for j in used]
        terms, step = _strides(used, radix)
        grid = np.zeros((step, len(self.variables)), np.int64)
        grid[:, used] = _digits(np.arange(step), radix)
        shapes = np.stack([self._expansion._per_candidate(s, grid) for s in specs], axis=1)
        return terms, [tuple(int(v) for v in s) for s in shapes]

    def __getstate__(self):  # block tables (threads' locks, closures) are rebuilt where needed: a Dask worker
        return {k: v for k, v in self.__dict__.items() if k not in ("_chain", "_template_chain")}

    # ---- models and packs --------------------------------------------------------------------------
    def model(self, candidate):
        """One candidate as a cc.Model: ``build`` called with its values."""
        return self._build_checked(self.values(candidate))

    def pack(self, candidates, chunk_size=8192):
        """A cc.Packed of the candidates (a structured array), written with numpy: the same counts as
        ``cc.pack([self.model(c) for c in candidates])``."""
        idx = self._option_indices(candidates)
        if len(idx) == 0:
            raise ValueError(f"{self.name}.pack: no candidates")
        pieces, shapes, batches = [], [], []
        for s in range(0, len(idx), chunk_size):
            *piece, shape, batch = self._expansion.rows(idx[s:s + chunk_size])
            pieces.append(piece)
            shapes.append(shape)
            batches.append(batch)
        return SlotTable.concat(pieces, np.concatenate(shapes), np.concatenate(batches))
