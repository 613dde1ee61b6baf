"""cc.Columnar: a batch of architectures that share one topology, stored one array per field.

The common NAS case is one skeleton (same ops, same wiring) with different widths, kernels,
strides and resolutions. A Columnar holds that skeleton once (a template: one architecture's packed
rows) and, for each field that varies, a column: an int array of shape (n, n_layers) whose
[a, k] entry replaces field `name` of row k in architecture a. `cc.count(columnar)` counts it with
a kernel that walks layer positions across architectures (src/_columnar.pyx) and returns a
BatchResult equal, field by field, to `cc.count(columnar.to_packed())`.

Columns may vary the fields in COLUMN_FIELDS (sizes, channels, groups, kernels, strides, padding,
dilation); ops, wiring, flags and dims come from the template. The network input's shape and the
batch size may vary too (`input_shape` (n, ndim), `batch_size` (n,)). Templates with exactly one
network input are supported. The kernel knows the ops in KERNEL_OPS; a template holding any other
op (transposed convolutions, LayerNorm, GroupNorm, Softmax, ZeroPad2d, Upsample, ChannelShuffle,
Slice) is counted by the generic core instead, chunk by chunk, with the same results.
"""
from __future__ import annotations

import importlib
import math
import os

import numpy as np

from . import _format as F
from .packing import Packed, pack


def _kernel():
    """The columnar kernel built for the widest vectors this CPU has: AVX-512 (F, DQ, VL, BW; 0.8-1.0x
    the AVX2 build's time here), else AVX2 + FMA (about 1.7x the baseline), else the baseline build.
    CNNCORE_NO_AVX512=1 skips the AVX-512 build, CNNCORE_NO_AVX2=1 forces the baseline. A build is
    never imported on a CPU without its instructions: its module code itself may use them."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            features = {}
    builds = [("_columnar_avx512", "CNNCORE_NO_AVX512", ("AVX512F", "AVX512DQ", "AVX512VL", "AVX512BW", "AVX2", "FMA3")),
              ("_columnar_avx2", "CNNCORE_NO_AVX2", ("AVX2", "FMA3"))]
    for name, off, needs in builds:
        if os.environ.get(off) == "1" or os.environ.get("CNNCORE_NO_AVX2") == "1":
            continue
        if all(features.get(f) for f in needs):
            try:
                return importlib.import_module(f".{name}", __package__)
            except ImportError:  # built by a compiler without those instructions
                pass
    from . import _columnar as baseline
    return baseline


_columnar = _kernel()

COLUMN_FIELDS = ("in", "out", "groups", "k0", "k1", "k2", "s0", "s1", "s2", "p0", "p1", "p2",
                 "d0", "d1", "d2")
_FIELD_COL = np.array([F.FIELD_NAMES.index(f) for f in COLUMN_FIELDS])
_STRUCTURAL = np.array([c for c in range(F.N_FIELDS) if c not in set(_FIELD_COL.tolist())
                        and c != F.XOFF])  # XOFF differs between archs of a Packed by design
_DIM_MAX = 2**31 - 1
_REUSE_AFTER = 3  # moments before a freed live slot is taken again (_live_slots)
_CHUNK = 1 << 16  # architectures per generic-core call (bounds the memory of the rows it builds)

PROGRAM_COLUMNS = ("op", "dims", "xs", "ys", "bs", "flags", "a", "b", "unused", "birth", "doff", "dn",
                   "coff", "cn", "ndx", "ndy", "ndb", "need")
_P = {name: i for i, name in enumerate(PROGRAM_COLUMNS)}

_O = F.OPS
_ACTIVATIONS = set(range(_O["ReLU"], _O["Hardsigmoid"] + 1))
_SAME_SHAPE = {_O["Identity"], _O["BatchNorm1d"], _O["BatchNorm2d"], _O["BatchNorm3d"]} | _ACTIVATIONS
_VIEWS = {_O["Identity"], _O["Flatten"], _O["Slice"]}  # share their input's storage (as the core)
KERNEL_OPS = frozenset(
    {_O["Identity"], _O["Linear"], _O["Flatten"], _O["Add"], _O["Mul"], _O["Cat"]}
    | set(range(_O["Conv1d"], _O["Conv3d"] + 1)) | set(range(_O["BatchNorm1d"], _O["BatchNorm3d"] + 1))
    | _ACTIVATIONS | set(range(_O["MaxPool1d"], _O["AdaptiveMaxPool3d"] + 1)))


def _bits(*fields):
    return sum(1 << COLUMN_FIELDS.index(f) for f in fields)


def _spatial(prefixes, d):
    return [f"{p}{i}" for p in prefixes for i in range(d)]


class _StaticError(Exception):
    """The template fails for every architecture whatever the columns (e.g. a wrong ndim)."""


def _rows_to_column(name, rows, template_values):
    """A column given as {row: values (n,)} as the full (n, n_layers) array (template values elsewhere)."""
    nl = len(template_values)
    if not rows:
        raise ValueError(f"Columnar: column {name!r} given as an empty dict")
    given = {}
    for row, v in rows.items():
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < nl:
            raise ValueError(f"Columnar: column {name!r}: row {row!r} is not a template row (0..{nl - 1})")
        given[int(row)] = _int_array(f"column {name!r}, row {row}", v, 1)
    n = {len(v) for v in given.values()}
    if len(n) > 1:
        raise ValueError(f"Columnar: column {name!r}: its rows give different numbers of architectures {sorted(n)}")
    full = np.repeat(np.asarray(template_values, np.int64)[None, :], n.pop(), axis=0)
    for row, v in given.items():
        full[:, row] = v
    return full


class Columnar:
    """Architectures sharing one topology: a template plus one column per varying field.

    template: a one-architecture cc.Packed, or a layer / Sequential / Model (packed with the first
    architecture's input shape; a Model built from cc.Input knows its own).
    columns: {field: int array (n, n_layers)} for fields in COLUMN_FIELDS ("out", "k0", ...);
    a C-contiguous array's transpose (Fortran order) is used without a copy, and one array given
    for several fields is stored once (its views in `columns` then share memory), and so is a dim's
    column equal to the previous dim's ("k1" equal to "k0", ...) where both were copied. A field may also be
    {row: int array (n,)}: the rows it names vary, every other row keeps the template's value.
    input_shape: one shape for all (e.g. (3, 224, 224)) or an int array (n, ndim), batch excluded.
    batch_size: an int or an int array (n,). n: the number of architectures when nothing else says.
    """

    def __init__(self, template, columns=None, input_shape=None, batch_size=None, n=None):
        columns = dict(columns or {})
        self.template = _template(template, input_shape)
        t = self.template._arrays
        if len(t["input_ndim"]) != 1:
            raise ValueError(f"Columnar: the template must have exactly one network input, "
                             f"it has {len(t['input_ndim'])}")
        self.n_layers = nl = len(t["layers"])
        ind = int(t["input_ndim"][0])
        sizes = {}
        for name, col in columns.items():
            if name not in COLUMN_FIELDS:
                raise ValueError(f"Columnar: unknown column {name!r}; columns may vary {', '.join(COLUMN_FIELDS)}")
            if isinstance(col, dict):  # {row: values (n,)}: the other rows keep the template's value
                col = _rows_to_column(name, col, t["layers"][:, F.FIELD_NAMES.index(name)])
            col = _int_array(f"column {name!r}", col, 2)
            if col.shape[1] != nl:
                raise ValueError(f"Columnar: column {name!r} must have shape (n, {nl}) (one entry per "
                                 f"template row), got {col.shape}")
            sizes[f"column {name!r}"] = col.shape[0]
            columns[name] = col
        shape_col = None
        if input_shape is not None and np.ndim(input_shape) == 2:
            shape_col = _int_array("input_shape", input_shape, 2)
            if shape_col.shape[1] != ind:
                raise ValueError(f"Columnar: input_shape must have shape (n, {ind}) like the template's "
                                 f"input, got {shape_col.shape}")
            sizes["input_shape"] = shape_col.shape[0]
        batch_col = None
        if batch_size is not None and np.ndim(batch_size) == 1:
            batch_col = _int_array("batch_size", batch_size, 1)
            sizes["batch_size"] = batch_col.shape[0]
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"Columnar: n must be a non-negative int, got {n!r}")
            sizes["n"] = int(n)
        if len(set(sizes.values())) > 1:
            raise ValueError(f"Columnar: the arrays disagree on the number of architectures: {sizes}")
        self._n = next(iter(sizes.values())) if sizes else 1
        for name, col in columns.items():
            _check_range(f"column {name!r}", col, -2**31, _DIM_MAX)
        # stored (n_layers, n): one layer position is contiguous across architectures. One array
        # given for several fields (square kernels: {"k0": k, "k1": k}) is stored once: the kernel
        # then reads the second field from cache, not from memory
        stored = {}
        copies = set()  # ids of the arrays made here (the others are the caller's, used without a copy)
        self._columns = {}
        for name, col in columns.items():
            if id(col) not in stored:
                by_row = col.T
                if not (by_row.flags.c_contiguous and by_row.dtype == np.int32):
                    by_row = _copy_aligned(by_row, np.int32)
                    copies.add(id(by_row))
                stored[id(col)] = by_row
            self._columns[name] = stored[id(col)]
        # so is a dim's column equal to the previous dim's (square kernels, strides, padding given as
        # two arrays): a 2-d op on a square input then needs no per-tile compare of the two
        # (src/_columnar.pyx, _square_fields), nor the second column's memory traffic. Only copies
        # made here: a caller's array used without a copy stays that field's own (changed in place
        # afterwards, it must change that field only)
        for prefix in "kspd":
            for i in (1, 2):
                prev, this = self._columns.get(f"{prefix}{i - 1}"), self._columns.get(f"{prefix}{i}")
                if (prev is not None and this is not None and this is not prev and id(prev) in copies
                        and id(this) in copies and np.array_equal(prev, this)):
                    self._columns[f"{prefix}{i}"] = prev
        if shape_col is None:
            one = t["input_shape"][0, :ind] if input_shape is None or np.ndim(input_shape) == 2 else input_shape
            one = _int_array("input_shape", np.asarray(one).reshape(1, -1), 2)
            if one.shape[1] != ind:
                raise ValueError(f"Columnar: input_shape {tuple(one[0])} must have {ind} dimensions like the template's input")
            shape_col = np.broadcast_to(one, (self._n, ind))
        if batch_col is None:
            b = t["batch_size"][0] if batch_size is None else batch_size
            if np.ndim(b) != 0:
                raise ValueError(f"Columnar: batch_size must be an int or an int array (n,), got {batch_size!r}")
            batch_col = np.broadcast_to(_int_array("batch_size", np.asarray(b).reshape(1), 1), (self._n,))
        _check_range("input_shape", shape_col, 1, _DIM_MAX)
        _check_range("batch_size", batch_col, 1, _DIM_MAX)
        self.input_shape = np.ascontiguousarray(shape_col, dtype=np.int64)
        self.batch_size = np.ascontiguousarray(batch_col, dtype=np.int64)
        self._plan = None

    # ---- views --------------------------------------------------------------------------------
    def __len__(self):
        return self._n

    def __repr__(self):
        return (f"<cnncore.Columnar: {self._n} architectures x {self.n_layers} layers, "
                f"columns {sorted(self._columns)}>")

    @property
    def columns(self) -> dict:
        """{field: int32 array (n, n_layers)} (transposed views of the stored arrays)."""
        return {name: col.T for name, col in self._columns.items()}

    def slice(self, start, stop) -> "Columnar":
        """Architectures start:stop as a Columnar sharing this one's template (their columns copied)."""
        start, stop, _ = slice(start, stop).indices(self._n)
        stop = max(start, stop)
        return Columnar(self.template, {k: v[start:stop] for k, v in self.columns.items()},
                        self.input_shape[start:stop], self.batch_size[start:stop], n=stop - start)

    # ---- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_packed(cls, packed: Packed) -> "Columnar":
        """The Columnar of a packed batch whose architectures share one topology: same number of
        rows, one network input of the same ndim, and the same ops, wiring, flags and dims in
        every row; only COLUMN_FIELDS, input shapes and batch sizes may differ (ValueError else)."""
        if not isinstance(packed, Packed):
            raise TypeError(f"Columnar.from_packed expects a cc.Packed, got {type(packed).__name__}")
        a = packed._arrays
        n = len(packed)
        if n == 0:
            raise ValueError("Columnar.from_packed: the batch is empty (a template needs one architecture)")
        rows = np.diff(a["arch_offsets"])
        bad = np.nonzero(rows != rows[0])[0]
        if len(bad):
            raise ValueError(f"Columnar.from_packed: architecture {bad[0]} has {rows[bad[0]]} rows, "
                             f"architecture 0 has {rows[0]}: not one topology")
        inputs = np.diff(a["input_offsets"])
        bad = np.nonzero(inputs != 1)[0]
        if len(bad):
            raise ValueError(f"Columnar.from_packed: architecture {bad[0]} has {inputs[bad[0]]} network "
                             f"inputs; a Columnar needs exactly one")
        nd = np.asarray(a["input_ndim"])
        bad = np.nonzero(nd != nd[0])[0]
        if len(bad):
            raise ValueError(f"Columnar.from_packed: architecture {bad[0]}'s input has {nd[bad[0]]} dimensions, "
                             f"architecture 0's has {nd[0]}: not one topology")
        nl = int(rows[0])
        L = np.asarray(a["layers"]).reshape(n, nl, F.N_FIELDS)
        diff = np.argwhere(L[:, :, _STRUCTURAL] != L[:1, :, _STRUCTURAL])
        if len(diff):
            arch, row, c = diff[0]
            col = _STRUCTURAL[c]
            raise ValueError(f"Columnar.from_packed: architecture {arch} row {row} has {F.FIELD_NAMES[col]} = "
                             f"{L[arch, row, col]}, architecture 0 has {L[0, row, col]}: not one topology")
        extra = np.asarray(a["extra_src"])
        for row in np.nonzero(L[0, :, F.NSRC] > 1)[0]:
            for j in range(int(L[0, row, F.NSRC]) - 1):
                refs = extra[L[:, row, F.XOFF].astype(np.int64) + j]
                bad = np.nonzero(refs != refs[0])[0]
                if len(bad):
                    raise ValueError(f"Columnar.from_packed: input {j + 2} of row {row} is {refs[bad[0]]} in "
                                     f"architecture {bad[0]}, {refs[0]} in architecture 0: not one topology")
        columns = {}
        for name, c in zip(COLUMN_FIELDS, _FIELD_COL):
            col = L[:, :, c]
            if (col != col[:1]).any():
                columns[name] = col
        return cls(packed.subset(0), columns, np.asarray(a["input_shape"])[:, :int(nd[0])],
                   np.asarray(a["batch_size"]), n=n)

    def to_packed(self, indices=None) -> Packed:
        """The same architectures (or those at `indices`) as a cc.Packed batch."""
        return Packed(self._packed_arrays(indices), _validated=True)

    def _packed_arrays(self, indices=None) -> dict:
        """The packed arrays of architectures `indices` (all when None): built from the validated
        template, with only numeric fields replaced, so they need no validation again."""
        t = self.template._arrays
        idx = np.arange(self._n) if indices is None else np.asarray(indices, np.int64)
        m, nl = len(idx), self.n_layers
        L = np.empty((m, nl, F.N_FIELDS), np.int32)
        L[:] = t["layers"]
        for name, col in self._columns.items():
            L[:, :, F.FIELD_NAMES.index(name)] = col[:, idx].T
        n_extra = len(t["extra_src"])
        multi = t["layers"][:, F.NSRC] > 1
        if n_extra and multi.any():
            L[:, multi, F.XOFF] += (np.arange(m, dtype=np.int64) * n_extra).astype(np.int32)[:, None]
        ind = int(t["input_ndim"][0])
        shape = np.zeros((m, 4), np.int64)
        shape[:, :ind] = self.input_shape[idx]
        return dict(layers=L.reshape(m * nl, F.N_FIELDS), extra_src=np.tile(np.asarray(t["extra_src"]), m),
                    arch_offsets=np.arange(m + 1, dtype=np.int64) * nl,
                    input_offsets=np.arange(m + 1, dtype=np.int64), input_shape=shape,
                    input_ndim=np.full(m, ind, np.int32), batch_size=self.batch_size[idx].copy())

    # ---- counting -----------------------------------------------------------------------------
    def _program(self):
        if self._plan is None:
            try:
                self._plan = plan(self.template._arrays)
            except _StaticError:
                self._plan = False  # every architecture fails: the generic core says where and why
        return self._plan or None


def _template(template, input_shape):
    if isinstance(template, Packed):
        if len(template) != 1:
            raise ValueError(f"Columnar: a Packed template must hold exactly one architecture, it holds {len(template)}")
        return template
    if isinstance(template, Columnar):
        raise TypeError("Columnar: the template is already a Columnar")
    shape = None
    if input_shape is not None:
        shape = np.asarray(input_shape)
        if shape.ndim == 2:
            shape = shape[0] if len(shape) else None
        shape = None if shape is None else tuple(int(v) for v in shape)
    return pack([template], shape)


def _int_array(what, x, ndim):
    a = np.asarray(x)
    if a.dtype == bool or a.dtype.kind not in "iu":
        raise ValueError(f"Columnar: {what} must hold integers, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"Columnar: {what} must have {ndim} dimension(s), got shape {a.shape}")
    return a


def _check_range(what, a, lo, hi):
    if a.size and (a.min() < lo or a.max() > hi):
        i = np.unravel_index(np.argmax((a < lo) | (a > hi)), a.shape)
        raise ValueError(f"Columnar: {what}[{', '.join(map(str, i))}] = {a[i]} is outside {lo} .. {hi}")


# ---- the planner: everything about the template that does not depend on the columns ------------
def plan(t) -> dict | None:
    """The static program of a one-input template for the kernel, or None when it holds an op the
    kernel does not know. Raises _StaticError when every architecture must fail."""
    rows = np.asarray(t["layers"])
    extra = np.asarray(t["extra_src"])
    nl = len(rows)
    if nl == 0 or not set(rows[:, F.OP].tolist()) <= KERNEL_OPS:
        return None
    G = np.zeros((nl, len(PROGRAM_COLUMNS)), np.int64)
    consts = np.ascontiguousarray(rows[:, _FIELD_COL], dtype=np.int32)
    nd = {-1: int(t["input_ndim"][0]) + 1}  # ndim per tensor (network input: -1), batch included
    srcs = []  # per row: the tensors it reads (row indices, -1 = the input)
    for k in range(nl):
        r = rows[k]
        op, nsrc = int(r[F.OP]), int(r[F.NSRC])
        ins = [int(r[F.SRC])] + [int(v) for v in extra[r[F.XOFF]:r[F.XOFF] + nsrc - 1]] if nsrc > 1 else [int(r[F.SRC])]
        ins = [-1 if v < 0 else v for v in ins]  # one network input: -1 - 0
        srcs.append(ins)
        if (nsrc != 2) if op in (_O["Add"], _O["Mul"]) else (nsrc != 1 and op != _O["Cat"]):
            raise _StaticError
        ndx = nd[ins[0]]
        G[k, _P["op"]], G[k, _P["flags"]], G[k, _P["ndx"]] = op, r[F.FLAGS], ndx
        G[k, _P["ndb"]] = 1
        G[k, _P["unused"]] = 1 if r[F.FLAGS] & F.F_UNUSED else 0
        ndy = ndx
        name = F.OP_NAMES[op]
        d = int(name[-2]) if name[-2:] in ("1d", "2d", "3d") else 0
        if name.startswith("Conv"):
            need = ("in", "out", "groups", *_spatial("kspd", d))
        elif name.startswith(("MaxPool", "AvgPool")):
            need = _spatial("ksp" + ("d" if name.startswith("Max") else ""), d)
        elif name.startswith("Adaptive"):
            need = _spatial("k", d)
        elif op in (_O["Linear"], _O["PReLU"]) or name.startswith("BatchNorm"):
            need = ("in", "out") if op == _O["Linear"] else ("in",)
        else:
            need = ()
        G[k, _P["need"]] = _bits(*need)
        if d:
            G[k, _P["dims"]] = d
            ok = ndx in (2, 3) if op == _O["BatchNorm1d"] else ndx == d + 2
            if not ok:
                raise _StaticError
        elif op == _O["Linear"]:
            G[k, _P["dims"]] = ndx - 1
        elif op == _O["Identity"]:
            if r[F.DIM0] != 0 and not r[F.DIM0] <= ndx <= r[F.DIM1]:
                raise _StaticError
        elif op == _O["Flatten"]:
            s, e = int(r[F.DIM0]), int(r[F.DIM1])
            s, e = s + ndx if s < 0 else s, e + ndx if e < 0 else e
            if not (0 <= s < ndx and 0 <= e < ndx and s <= e):
                raise _StaticError
            G[k, _P["a"]], G[k, _P["b"]] = s, e
            ndy = ndx - (e - s)
        elif op in (_O["Add"], _O["Mul"]):
            G[k, _P["ndb"]] = nd[ins[1]]
            ndy = max(ndx, nd[ins[1]])
        elif op == _O["Cat"]:
            dim = int(r[F.DIM0])
            if not -ndx <= dim < ndx or any(nd[j] != ndx for j in ins[1:]):
                raise _StaticError
            G[k, _P["a"]] = G[k, _P["b"]] = dim % ndx
        nd[k] = ndy
        G[k, _P["ndy"]] = ndy
    flagged = np.nonzero(rows[:, F.FLAGS] & F.F_OUTPUT)[0]
    out_k = int(flagged[-1]) if len(flagged) else nl - 1
    n_slots, cat_src = _shape_slots(rows, srcs, G, out_k)
    n_live, in_birth, deaths = _live_slots(rows, srcs, G, flagged, out_k)
    return dict(program=G, consts=consts, cat_src=np.array(cat_src, np.int64),
                deaths=np.array(deaths, np.int64), n_slots=n_slots, n_live=n_live, in_birth=in_birth,
                out_slot=int(G[out_k, _P["ys"]]), out_nd=int(G[out_k, _P["ndy"]]))


def _shape_slots(rows, srcs, G, out_k):
    """Shape records: a row that keeps its input's shape shares its slot; a slot is reused once
    its last reader has run (the output's is kept)."""
    nl = len(rows)
    owner = {-1: -1}  # tensor -> the row whose shape record it uses
    last = {-1: -1}
    for k in range(nl):
        owner[k] = owner[srcs[k][0]] if int(rows[k, F.OP]) in _SAME_SHAPE else k
        last.setdefault(owner[k], k)
        for j in srcs[k]:
            last[owner[j]] = max(last[owner[j]], k)
    last[owner[out_k]] = nl
    slot, free, n_slots, cat_src = {-1: 0}, [], 1, []
    for k in range(nl):
        if owner[k] == k:
            for o in [o for o in slot if last[o] < k]:
                free.append(slot.pop(o))
            if free:
                slot[k] = free.pop()
            else:
                slot[k], n_slots = n_slots, n_slots + 1
        G[k, _P["xs"]] = slot[owner[srcs[k][0]]]
        G[k, _P["ys"]] = slot[owner[k]]
        G[k, _P["bs"]] = slot[owner[srcs[k][1]]] if len(srcs[k]) == 2 else 0
        if int(rows[k, F.OP]) == _O["Cat"]:
            G[k, _P["coff"]], G[k, _P["cn"]] = len(cat_src), len(srcs[k]) - 1
            cat_src.extend(slot[owner[j]] for j in srcs[k][1:])
    return n_slots, cat_src


def _live_slots(rows, srcs, G, flagged, out_k):
    """Liveness as the core's general path (_live_row / _live_peak in src/_core.pyx): a storage (views share their input's) is born when
    its row runs and freed after its last reader (model outputs live to the end). Each storage's
    size is kept in a live slot from birth to death; this fills the births and deaths columns. A live
    slot freed at row k's moment is reused from row k + _REUSE_AFTER on: the kernel reads the dying
    sizes and writes the new ones of a row, or of a row and its two followers (src/_columnar.pyx,
    _live_chain), in one pass over distinct tile arrays."""
    nl = len(rows)
    store = {-1: -1}
    last = {-1: -1}  # storage -> last reading row (nl: kept to the end)
    for k in range(nl):
        unused = rows[k, F.FLAGS] & F.F_UNUSED
        store[k] = store[srcs[k][0]] if int(rows[k, F.OP]) in _VIEWS else k
        last.setdefault(store[k], k)
        if not unused:
            for j in srcs[k]:
                last[store[j]] = max(last[store[j]], k)
    for k in flagged:
        last[store[int(k)]] = nl
    last[store[out_k]] = nl
    dying = {}  # moment -> storages freed then (moment k + 1 is row k's)
    for s, lk in last.items():
        if store.get(s) == s and lk + 2 <= nl and not (s >= 0 and rows[s, F.FLAGS] & F.F_UNUSED):
            dying.setdefault(lk + 2, []).append(s)
    live, free, n_live, deaths = {-1: 0}, [], 1, []
    resting = []  # (row from which it may be reused, live slot)
    for k in range(nl):
        G[k, _P["doff"]] = len(deaths)
        freed = [live.pop(s) for s in dying.get(k + 1, [])]
        deaths.extend(freed)
        G[k, _P["dn"]] = len(freed)
        G[k, _P["birth"]] = -1
        free.extend(slot for t, slot in resting if t <= k)
        resting = [(t, slot) for t, slot in resting if t > k]
        if store[k] == k and not rows[k, F.FLAGS] & F.F_UNUSED:
            if free:
                live[k] = free.pop()
            else:
                live[k], n_live = n_live, n_live + 1
            G[k, _P["birth"]] = live[k]
        resting.extend((k + _REUSE_AFTER, slot) for slot in freed)
    return n_live, 0, deaths


# ---- cc.count(columnar) ---------------------------------------------------------------------------
_HUGE_FROM = 1 << 22  # numpy asks Linux for transparent huge pages from 4 MiB on (madvise)
_HUGE_PAGE = 1 << 21


def _empty_aligned(shape) -> np.ndarray:
    """The kernel's int64 outputs, np.empty placed as _placed_empty places them."""
    return _placed_empty(shape, np.int64)


def _placed_empty(shape, dtype) -> np.ndarray:
    """np.empty starting on a 64-byte boundary, or on a 2 MiB one from 4 MiB on. The kernel streams
    its outputs out a cache line at a time (AVX-512 build): outputs that start mid-line measured
    1.13-1.16x slower. A large array numpy allocates gets transparent huge pages (where Linux has
    them in "madvise" mode) only on the 2 MiB-aligned part of it: aligned, all of it does, and the
    kernel takes fewer TLB misses (0.94-0.97x its time with the columns and outputs so placed, three
    runs of 41 alternating rounds, 19:20 UTC). Costs at most 2 MiB of address space per array."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    size = math.prod(shape)  # (np.prod of a tuple costs ~3 us: twice per cc.count)
    align = _HUGE_PAGE if size * dtype.itemsize >= _HUGE_FROM else 64
    raw = np.empty(size + align // dtype.itemsize, dtype)
    start = -raw.ctypes.data % align // dtype.itemsize
    return raw[start:start + size].reshape(shape)


def _copy_aligned(a, dtype) -> np.ndarray:
    """a as a C-contiguous array of dtype, placed as _placed_empty places it."""
    out = _placed_empty(a.shape, dtype)
    out[...] = a
    return out


def count_columnar(col: Columnar, n_threads: int) -> dict:
    """The raw result dict of cnncore.counting.run_core for a Columnar: the kernel for the valid
    architectures, the generic core for the others (and for templates the kernel does not know)."""
    n = len(col)
    # totals and shapes: every entry is written, by the kernel or by the generic core (np.empty:
    # no zero-filling pass over memory that is about to be written anyway). (empty + fill: 2-3x
    # faster than np.full, ~14 us a call at 100 k architectures)
    raw = dict(output_shape=_empty_aligned((n, 5)), output_ndim=np.empty(n, np.int32),
               error=np.zeros(n, np.int32), error_layer=np.empty(n, np.int32))
    raw["error_layer"].fill(-1)
    rows = _empty_aligned((6, -(-n // 8) * 8))  # (every row on a cache line's start)
    totals = rows[:, :n]
    p = col._program()
    if p is None:
        generic = np.arange(n)
    else:
        needs = np.empty(n, np.uint8)  # (the kernel writes every entry)
        scratch = np.empty((n_threads, _columnar.scratch_size(p["n_slots"], p["n_live"])), np.int64)
        columns = tuple(col._columns.get(f) for f in COLUMN_FIELDS)
        _columnar.count_columnar(p["program"], p["deaths"], p["cat_src"], columns, p["consts"],
                                 col.input_shape, col.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
                                 p["out_slot"], p["out_nd"], rows, raw["output_shape"],
                                 needs, scratch, n_threads=n_threads)
        raw["output_ndim"].fill(p["out_nd"])
        generic = np.nonzero(needs)[0]
    from .counting import run_core
    for i in range(0, len(generic), _CHUNK):
        idx = generic[i:i + _CHUNK]
        part = run_core(col._packed_arrays(idx), n_threads=n_threads)
        for j, k in enumerate(("params", "buffers", "macs", "flops", "activation_elements",
                               "peak_activation_elements")):
            totals[j, idx] = part[k]
        for k in ("output_shape", "output_ndim", "error", "error_layer"):
            raw[k][idx] = part[k]
    for j, k in enumerate(("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_elements")):
        raw[k] = totals[j]
    return raw
