"""cc.count, cc.summary, cc.explain: the public counting API over the core (or the reference).

The work is: pack (Python, once per model) -> validate (numpy + a compiled pass; arrays cc.pack
wrote from models need only the compiled pass over their rows) -> count (the core, without the
GIL) -> wrap the arrays. No counting formula lives in this file.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from . import _core
from . import _format as F
from .errors import ShapeError, layer_message
from .layers import Layer
from .conventions import resolve as resolve_conventions
from .columnar import _CHUNK as COLUMNAR_CHUNK, Columnar, count_columnar
from .packing import Packed, check_offsets, pack

DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8,
               "double": 8, "int8": 1, "uint8": 1, "qint8": 1, "int32": 4, "int64": 8}
_SERIAL_BELOW = 4096  # architectures: below this a thread team costs more than it saves


def default_threads() -> int:
    """All cores (the OpenMP maximum) when the core was built with OpenMP, else 1."""
    return max(1, _core.max_threads()) if _core.openmp_enabled() else 1


# OpenMP (libgomp) hangs in a child made by fork (multiprocessing's default on Linux) once its thread
# team ran in the parent: such a child counts on one thread.
_TEAM_RAN, _FORKED_AFTER_TEAM = False, False


def _after_fork_in_child():
    global _FORKED_AFTER_TEAM
    _FORKED_AFTER_TEAM = _FORKED_AFTER_TEAM or _TEAM_RAN


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _resolve_threads(n_threads, n_arch):
    """The thread count a core call runs on (n_threads None: all cores from _SERIAL_BELOW archs)."""
    global _TEAM_RAN
    if n_threads is None:
        n = 1 if n_arch < _SERIAL_BELOW else default_threads()
    elif isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive int or None, got {n_threads!r}")
    else:
        n = n_threads if _core.openmp_enabled() else 1
    if n > 1:
        if _FORKED_AFTER_TEAM:
            return 1
        _TEAM_RAN = True
    return n


_PAGE = 4096


def _touch_pages(arr):
    """Write one byte of each page of arr, here, in this thread: fresh pages fault on first touch,
    and faults taken inside the parallel region serialise the threads on the kernel's memory lock
    (2 threads were ~40 % slower than they need be without this). One byte per page takes the
    faults without a write pass over the whole array."""
    b = arr.reshape(-1).view(np.uint8)
    b[::_PAGE] = 0
    b[-1:] = 0  # (the last page, when the array does not start on a page boundary)


_RESULT_BYTES = 6 * 8 + 5 * 8 + 3 * 4  # per architecture: totals, output shape, ndim, error, error_layer


def _result_arrays(n_arch):
    """The core's per-architecture outputs, as views of one block of memory: the totals (6, n_arch)
    (params, buffers, macs, flops, activations, peak) and a dict of the others. One block of
    100 bytes per architecture takes a tenth of the page faults of five arrays (numpy asks the
    kernel for huge pages from 4 MB). Not zero-filled: the core writes every entry (each path
    of count_packed, valid or not), and a fill would be a write pass before the core's own."""
    n = n_arch
    block = np.empty(_RESULT_BYTES * n, np.uint8)
    totals = np.ndarray((6, n), np.int64, block, 0)  # (views by offset: ~2 us, slicing costs ~20)
    shape = np.ndarray((n, 5), np.int64, block, 48 * n)
    ndim, error, error_layer = (np.ndarray(n, np.int32, block, (88 + 4 * i) * n) for i in range(3))
    return totals, dict(output_shape=shape, output_ndim=ndim, error=error, error_layer=error_layer)


def run_core(arrays, per_layer=False, n_threads=None, fast_path=True, conv_weights=None) -> dict:
    """Raw core call on validated arrays: a dict of numpy arrays (docs/format.md, Results).
    fast_path=False sends every architecture through the general path (for tests). The offsets are
    checked on every call: arrays can change after validation, and they size the scratch memory."""
    off = arrays["arch_offsets"]
    n_arch = len(off) - 1
    nt = _resolve_threads(n_threads, n_arch)
    max_rows = max(check_offsets(arrays), 1)
    totals, out = _result_arrays(n_arch)
    if nt > 1:
        _touch_pages(totals.base)
    scratch = np.empty((nt, max_rows, 8), np.int64)  # per thread: one shape record per row
    pointers = np.empty((nt, max_rows), np.int64)  # per thread: one record pointer per row
    liveness = np.empty((nt, 4 * max_rows + 3), np.int64)  # per thread: storage, last reader, size, delta (+3 as count_packed asks)
    extra = {}
    if per_layer:
        n = len(arrays["layers"])
        extra = dict(layer_counts=np.zeros((n, 4), np.int64), layer_shape=np.zeros((n, 5), np.int64),
                     layer_ndim=np.zeros(n, np.int32))
    if conv_weights is not None and len(conv_weights):
        out["conventions"] = np.zeros((len(conv_weights), n_arch), np.int64)
        extra.update(conv_weights=conv_weights, conv_out=out["conventions"])
    _core.count_packed(arrays["layers"], arrays["extra_src"], off, arrays["input_offsets"], arrays["input_shape"],
                       arrays["input_ndim"], arrays["batch_size"], totals, out["output_shape"],
                       out["output_ndim"], out["error"], out["error_layer"], scratch, pointers, liveness,
                       n_threads=nt, use_fast=fast_path, **extra)
    for i, k in enumerate(("params", "buffers", "macs", "flops", "activation_elements",
                           "peak_activation_elements")):
        out[k] = totals[i]  # contiguous rows: no copy
    if per_layer:
        lc = extra["layer_counts"]
        for i, k in enumerate(("layer_params", "layer_buffers", "layer_macs", "layer_flops")):
            out[k] = np.ascontiguousarray(lc[:, i])
        out["layer_shape"] = extra["layer_shape"]
        out["layer_ndim"] = extra["layer_ndim"]
    return out


def run_reference(arrays, per_layer=False, n_threads=None, fast_path=True, conv_weights=None) -> dict:
    """The pure-Python reference on the same arrays, converted to the core's numpy layout."""
    from . import reference
    raw = reference.count_arrays(arrays, per_layer=per_layer,
                                 conv_weights=None if conv_weights is None else conv_weights.tolist())
    out = {}
    for k, v in raw.items():
        dtype = np.int32 if k in ("error", "error_layer", "output_ndim", "layer_ndim") else np.int64
        out[k] = np.array(v, dtype=dtype)
    if "conventions" in out:
        out["conventions"] = out["conventions"].reshape(-1, len(arrays["arch_offsets"]) - 1)
    n_arch = len(arrays["arch_offsets"]) - 1
    out["output_shape"] = out["output_shape"].reshape(n_arch, 5)
    if per_layer:
        out["layer_shape"] = out["layer_shape"].reshape(-1, 5)
    return out


BACKENDS = {"core": run_core, "reference": run_reference}


class LayerRow(NamedTuple):
    """One row of the per-layer table."""
    name: str
    type: str
    output_shape: tuple
    params: int
    buffers: int
    macs: int
    flops: int


_LAYER_COUNTS = ("layer_params", "layer_buffers", "layer_macs", "layer_flops")


def _layer_rows(packed, raw):
    """The per-layer table of one counted model. numpy arrays become Python lists in one call
    each: indexing numpy scalars row by row would cost more than the whole count."""
    shapes = [tuple(s[:nd]) for s, nd in zip(raw["layer_shape"].tolist(), raw["layer_ndim"].tolist())]
    make = tuple.__new__  # (LayerRow's own __new__ takes keywords: slower)
    counts = [raw[k].tolist() for k in _LAYER_COUNTS]
    return [make(LayerRow, r) for r in zip(packed.names, packed.types, shapes, *counts)]


class Result:
    """Counts of one model (batch dimension included in shapes, MACs and FLOPs)."""

    def __init__(self, params, buffers, macs, flops, output_shape, param_bytes, activation_elements,
                 peak_activation_bytes, layers, input_shape, dtype, output_shapes=None):
        self.params, self.buffers, self.macs, self.flops = params, buffers, macs, flops
        self.output_shape, self.param_bytes = output_shape, param_bytes
        self.activation_elements, self._layers = activation_elements, layers
        self.peak_activation_bytes = peak_activation_bytes
        self.input_shape, self.dtype = input_shape, dtype
        self.output_shapes = output_shapes or [output_shape]

    @property
    def layers(self):
        """The per-layer table: one LayerRow per packed row (made when first read, when cc.count
        passed a function that makes it)."""
        if callable(self._layers):
            self._layers = self._layers()
        return self._layers

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_layers"] = self.layers  # the table itself: the function that makes it does not pickle
        return state

    def __repr__(self):
        return (f"Result(params={self.params:,}, buffers={self.buffers:,}, macs={self.macs:,}, "
                f"flops={self.flops:,}, output_shape={self.output_shape}, param_bytes={self.param_bytes:,}, "
                f"activation_elements={self.activation_elements:,}, "
                f"peak_activation_bytes={self.peak_activation_bytes:,}, layers=[{len(self.layers)} rows])")


class BatchResult:
    """Counts of a packed batch: one entry per architecture in each numpy array."""

    FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "param_bytes",
              "peak_activation_bytes", "output_shape", "output_ndim", "valid", "error", "error_layer")

    def __init__(self, raw, packed, dtype="float32"):
        for k in ("params", "buffers", "macs", "flops", "activation_elements", "output_shape",
                  "output_ndim", "error", "error_layer"):
            setattr(self, k, raw[k])
        self._peak_elements = raw["peak_activation_elements"]
        self._nbytes = DTYPE_BYTES[dtype]
        self.packed = packed

    # derived arrays are made when first asked for: a batch of millions pays only for what it reads
    @property
    def valid(self):
        return self.error == 0

    @property
    def param_bytes(self):
        return self.params * self._nbytes

    @property
    def peak_activation_bytes(self):
        return self._peak_elements * self._nbytes

    def __len__(self):
        return len(self.error)

    def __repr__(self):
        return f"<cnncore.BatchResult: {len(self)} architectures, {int(self.valid.sum())} valid>"

    def explain(self, i) -> str:
        return explain(self.packed, i)


def _dtype_bytes(dtype):
    key = str(dtype).replace("torch.", "")
    if key not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[key]


def _error_sentence(packed, raw, a, arch_label=None):
    """The ShapeError text for architecture a of a packed batch whose per-layer raw output is known."""
    code = int(raw["error"][a])
    k = int(raw["error_layer"][a])
    arrays = packed.arrays()
    l0, l1 = packed.arch_rows(a)
    if k < 0:
        return f"{arch_label or 'architecture'}: {F.ERRORS[code][1]} (in the network inputs or offsets)"
    row = arrays["layers"][l0 + k]
    src = int(row[F.SRC])
    x = None
    if 0 <= src < k:
        nd = int(raw["layer_ndim"][l0 + src])
        x = tuple(int(v) for v in raw["layer_shape"][l0 + src][:nd])
    elif src < 0:
        j = int(arrays["input_offsets"][a]) - 1 - src
        if j < int(arrays["input_offsets"][a + 1]):
            nd = int(arrays["input_ndim"][j])
            x = (int(arrays["batch_size"][a]),) + tuple(int(v) for v in arrays["input_shape"][j][:nd])
    name = packed.names[l0 + k] if packed.names is not None else None
    typ = packed.types[l0 + k] if packed.types is not None else F.OP_NAMES.get(int(row[F.OP]), "op")
    msg = layer_message(k, name, typ, code, row, x)
    return f"{arch_label}: {msg}" if arch_label else msg


def count(model, input_shape=None, batch_size=None, dtype="float32", n_threads=None, backend="core",
          conventions=()):
    """Count a model (-> Result), a cc.Packed batch (-> BatchResult), or an iterable of cc.Packed
    chunks (-> an iterator of BatchResult, one per chunk, counted lazily: memory stays bounded).

    model: a layer, Sequential or Model (input_shape without the batch, e.g. (3, 224, 224);
    a Model built from cc.Input knows its own) or a cc.Packed. batch_size defaults to the Model's
    Input batch size, else 1. conventions: names of other tools (cnncore.conventions.NAMED) or
    cc.Convention objects; result.conventions[name] is the number that tool gives (an int for one
    model, an array for a batch).
    An invalid single model raises cc.ShapeError naming the layer; in a batch an invalid
    architecture gets valid=False and an error code, and never stops the others.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    run = BACKENDS[backend]
    nbytes = _dtype_bytes(dtype)
    conv_names, conv_w = resolve_conventions(conventions)
    if isinstance(model, (Packed, Columnar)) and (input_shape is not None or batch_size is not None):
        raise TypeError(f"cc.count: a {type(model).__name__} batch carries its own input shapes and batch sizes; "
                        f"input_shape and batch_size are for a single model")
    if isinstance(model, Columnar):
        if backend != "core" or conv_names:  # the kernel counts the core's totals only: rows, in chunks
            w = conv_w if conv_names else None
            parts = [run(model.slice(s, s + COLUMNAR_CHUNK).to_packed()._arrays, False, n_threads, conv_weights=w)
                     for s in range(0, len(model), COLUMNAR_CHUNK)] or [run(model.to_packed()._arrays, False, 1, conv_weights=w)]
            raw = {k: np.concatenate([p[k] for p in parts], axis=1 if k == "conventions" else 0) for k in parts[0]}
            res = BatchResult(raw, model, str(dtype).replace("torch.", ""))
            res.conventions = {n: raw["conventions"][j] for j, n in enumerate(conv_names)}
            return res
        else:
            raw = count_columnar(model, _resolve_threads(n_threads, len(model)))
            res = BatchResult(raw, model, str(dtype).replace("torch.", ""))
            res.conventions = {}
            return res
    if not isinstance(model, Packed) and _is_chunk_stream(model):
        return _count_stream(model, dtype, n_threads, backend, conventions)
    if isinstance(model, Packed):
        raw = run(model._arrays, False, n_threads, conv_weights=conv_w if conv_names else None)
        res = BatchResult(raw, model, str(dtype).replace("torch.", ""))
        res.conventions = {n: raw["conventions"][j] for j, n in enumerate(conv_names)}
        return res
    if input_shape is not None and not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple like (3, 224, 224) (batch excluded), got {input_shape!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    packed = pack([model], None if input_shape is None else [tuple(input_shape)] if not (
        len(input_shape) and isinstance(input_shape[0], (tuple, list))) else [input_shape], batch_size)
    raw = run(packed._arrays, True, 1)
    if raw["error"][0] != 0:
        msg = _error_sentence(packed, raw, 0)
        k = int(raw["error_layer"][0])
        raise ShapeError(msg, k, packed.names[k] if k >= 0 else None, int(raw["error"][0]))
    a = packed._arrays
    in_shapes = [(int(a["batch_size"][0]),) + tuple(s[:nd]) for s, nd in zip(a["input_shape"].tolist(),
                                                                            a["input_ndim"].tolist())]
    nd = int(raw["output_ndim"][0])
    out_shape = tuple(raw["output_shape"][0].tolist()[:nd])
    refs = getattr(model, "_last_refs", None)  # a Model's outputs, which need not be the last rows
    out_shapes = None
    if refs:
        out_shapes = [tuple(raw["layer_shape"][ref].tolist()[:int(raw["layer_ndim"][ref])]) if ref >= 0
                      else in_shapes[-1 - ref] for ref in refs]
        out_shape = out_shapes[0]
    params = int(raw["params"][0])
    conv = {}
    if conv_names:  # a second, batch-path pass over the same packed rows adds the conventions
        craw = run(packed._arrays, False, 1, conv_weights=conv_w)
        conv = {n: int(craw["conventions"][j][0]) for j, n in enumerate(conv_names)}
    res = Result(params=params, buffers=int(raw["buffers"][0]), macs=int(raw["macs"][0]),
                  flops=int(raw["flops"][0]), output_shape=out_shape,
                  param_bytes=params * nbytes, activation_elements=int(raw["activation_elements"][0]),
                  peak_activation_bytes=int(raw["peak_activation_elements"][0]) * nbytes,
                  output_shapes=out_shapes, layers=lambda: _layer_rows(packed, raw), input_shape=in_shapes[0],
                  dtype=str(dtype))
    res.conventions = conv
    return res


def _is_chunk_stream(x):
    return (hasattr(x, "__iter__") and not isinstance(x, (Layer, str, bytes))
            and not hasattr(x, "_emit"))


def _count_stream(chunks, dtype, n_threads, backend, conventions=()):
    """Count an iterable of cc.Packed chunks lazily: one BatchResult per chunk, so memory stays
    bounded by one chunk whatever the total number of architectures."""
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, (Packed, Columnar)):
            raise TypeError(f"cc.count over an iterable expects cc.Packed chunks (or cc.Columnar chunks); item {i} is "
                            f"{type(chunk).__name__} (pack models first with cc.pack)")
        yield count(chunk, dtype=dtype, n_threads=n_threads, backend=backend, conventions=conventions)


def explain(packed: Packed, i: int, backend="core") -> str:
    """In words: why architecture i of a packed (or columnar) batch is invalid (or that it is valid)."""
    if isinstance(packed, Columnar):
        n = len(packed)
        if not -n <= i < n:
            raise IndexError(f"architecture {i} out of range for a batch of {n}")
        return _explain_one(packed.to_packed([i % n]), backend, f"architecture {i % n}")
    if not isinstance(packed, Packed):
        raise TypeError(f"explain expects a cc.Packed batch (from cc.pack or cc.Packed.from_arrays), "
                        f"got {type(packed).__name__}; a single model raises cc.ShapeError from cc.count")
    n = len(packed)
    if not -n <= i < n:
        raise IndexError(f"architecture {i} out of range for a batch of {n}")
    i %= n
    return _explain_one(packed.subset(i), backend, f"architecture {i}")


def _explain_one(one: Packed, backend, label) -> str:
    """explain() of a one-architecture batch, calling it `label`."""
    raw = BACKENDS[backend](one._arrays, True, 1)
    if raw["error"][0] == 0:
        return f"{label} is valid"
    return _error_sentence(one, raw, 0, label)


def _fmt_int(v):
    return f"{v:,}"


def summary(model, input_shape=None, batch_size=None, dtype="float32", backend="core") -> str:
    """The per-layer table (layer, output shape, params, MACs, share of MACs) as text, like torchinfo."""
    if isinstance(model, (Packed, Columnar)):
        raise TypeError(f"cc.summary describes one model; for architecture i of a {type(model).__name__} batch use "
                        f"cc.explain(batch, i), or count the model itself")
    r = count(model, input_shape, batch_size=batch_size, dtype=dtype, backend=backend)
    head = ("Layer (type)", "Output Shape", "Param #", "MACs", "MACs %")
    body = [(f"{row.name} ({row.type})", str(list(row.output_shape)), _fmt_int(row.params), _fmt_int(row.macs),
             f"{100.0 * row.macs / r.macs:.2f}%" if r.macs else "-") for row in r.layers]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = "=" * (sum(widths) + 3 * (len(widths) - 1))

    def fmt(cells):
        return "   ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line, fmt(head), line, *(fmt(b) for b in body), line,
           f"Total params: {_fmt_int(r.params)}",
           f"Buffers: {_fmt_int(r.buffers)}",
           f"Total MACs: {_fmt_int(r.macs)} ({r.macs / 1e9:.3f} G)",
           f"Total FLOPs: {_fmt_int(r.flops)} ({r.flops / 1e9:.3f} G)",
           f"Input shape: {list(r.input_shape)}   Output shape: {list(r.output_shape)}",
           f"Params size ({r.dtype}): {r.param_bytes / 2**20:.2f} MB",
           f"Activation elements: {_fmt_int(r.activation_elements)}   "
           f"Peak activation memory: {r.peak_activation_bytes / 2**20:.2f} MB", line]
    return "\n".join(out)
