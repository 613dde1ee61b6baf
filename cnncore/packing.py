"""cc.pack and cc.Packed: the packed arrays of docs/format.md, written from models or validated."""
from __future__ import annotations

from itertools import chain

import numpy as np

from . import _core
from . import _format as F
from .model import RowBuilder, emit

ARRAY_SPECS = {  # name: (dtype, ndim, trailing dim or None)
    "layers": (np.int32, 2, F.N_FIELDS),
    "extra_src": (np.int32, 1, None),
    "arch_offsets": (np.int64, 1, None),
    "input_offsets": (np.int64, 1, None),
    "input_shape": (np.int64, 2, 4),
    "input_ndim": (np.int32, 1, None),
    "batch_size": (np.int64, 1, None),
}
_DIM_MAX = 2**31 - 1
_ROW_REASONS = {1: "unknown op code", 2: "unknown flag bits", 3: "NSRC must be >= 1",
                4: "the input reference must name an earlier layer of the same architecture or one of its network inputs",
                5: "XOFF/NSRC point outside extra_src"}


class Packed:
    """A validated batch of architectures in the packed format (docs/format.md).

    Build one with `cc.pack(models, input_shapes)` or `cc.Packed.from_arrays(**arrays)`.
    `names`/`types` (per row) are kept when packed from models, for tables and messages.
    """

    def __init__(self, arrays, names=None, types=None, _validated=False):
        if not _validated:
            validate(arrays)
        self._arrays = arrays
        self.names = names
        self.types = types

    @classmethod
    def from_arrays(cls, *, layers, extra_src, arch_offsets, input_offsets, input_shape, input_ndim,
                    batch_size) -> "Packed":
        """Validate arrays written elsewhere (any C-contiguous arrays of the documented dtypes,
        read-only or memory-mapped included) and wrap them without copying."""
        arrays = dict(layers=layers, extra_src=extra_src, arch_offsets=arch_offsets,
                      input_offsets=input_offsets, input_shape=input_shape, input_ndim=input_ndim,
                      batch_size=batch_size)
        return cls(arrays)

    def arrays(self) -> dict:
        """The seven arrays as a dict (the same arrays, not copies)."""
        return dict(self._arrays)

    def __len__(self):
        return len(self._arrays["arch_offsets"]) - 1

    @property
    def n_layers(self) -> int:
        return len(self._arrays["layers"])

    def __repr__(self):
        return f"<cnncore.Packed: {len(self)} architectures, {self.n_layers} layers>"

    def arch_rows(self, i):
        """(first row, end row) of architecture i."""
        off = self._arrays["arch_offsets"]
        return int(off[i]), int(off[i + 1])

    def subset(self, i) -> "Packed":
        """Architecture i alone, as its own Packed (rows keep their order)."""
        a = self._arrays
        l0, l1 = self.arch_rows(i)
        i0, i1 = int(a["input_offsets"][i]), int(a["input_offsets"][i + 1])
        rows = np.array(a["layers"][l0:l1], dtype=np.int32, order="C")
        extra = np.asarray(a["extra_src"], dtype=np.int32)
        multi = rows[:, F.NSRC] > 1
        pieces, off = [], 0
        for r in np.nonzero(multi)[0]:
            n = int(rows[r, F.NSRC]) - 1
            pieces.append(extra[rows[r, F.XOFF]:rows[r, F.XOFF] + n])
            rows[r, F.XOFF] = off
            off += n
        arrays = dict(layers=rows,
                      extra_src=np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32),
                      arch_offsets=np.array([0, l1 - l0], np.int64),
                      input_offsets=np.array([0, i1 - i0], np.int64),
                      input_shape=np.array(a["input_shape"][i0:i1], np.int64, order="C"),
                      input_ndim=np.array(a["input_ndim"][i0:i1], np.int32),
                      batch_size=np.array(a["batch_size"][i:i + 1], np.int64))
        names = self.names[l0:l1] if self.names is not None else None
        types = self.types[l0:l1] if self.types is not None else None
        return Packed(arrays, names, types, _validated=True)


def check_offsets(arrays) -> int:
    """The offsets and array lengths: what sizes memory and bounds every read (cheap, vectorised).
    Returns the largest number of rows (network inputs + layers) of one architecture."""
    layers, off, ioff = arrays["layers"], arrays["arch_offsets"], arrays["input_offsets"]
    if layers.ndim != 2 or layers.shape[1] != F.N_FIELDS:
        raise ValueError(f"packed arrays: layers must have shape (n, {F.N_FIELDS}), got {layers.shape}")
    if arrays["input_shape"].ndim != 2 or arrays["input_shape"].shape[1] != 4:
        raise ValueError(f"packed arrays: input_shape must have shape (n, 4), got {arrays['input_shape'].shape}")
    n_arch = len(off) - 1
    if n_arch < 0 or len(ioff) != n_arch + 1:
        raise ValueError(f"packed arrays: arch_offsets and input_offsets must both have n_arch + 1 entries "
                         f"(got {len(off)} and {len(ioff)})")
    if len(arrays["batch_size"]) != n_arch:
        raise ValueError(f"packed arrays: batch_size must have one entry per architecture ({n_arch}), got {len(arrays['batch_size'])}")
    # the most rows (inputs + layers) any architecture has: the core's scratch size. One compiled
    # pass when the offsets are int64 and contiguous (no temporaries: cc.count runs this every
    # call); -1 there means something is wrong, which the numpy checks below then name
    most = -1
    if all(o.dtype == np.int64 and o.flags.c_contiguous for o in (off, ioff)):
        most = _core.offsets_max_rows(off, ioff, len(layers), len(arrays["input_shape"]))
    if most < 0:
        sizes = []
        for name, o, end in (("arch_offsets", off, len(layers)), ("input_offsets", ioff, len(arrays["input_shape"]))):
            if o[0] != 0 or o[-1] != end:
                raise ValueError(f"packed arrays: {name} must start at 0 and end at {end}, got {o[0]} .. {o[-1]}")
            down = np.flatnonzero(o[1:] < o[:-1])  # (compared, not subtracted: a difference can wrap)
            if len(down):
                bad = int(down[0])
                raise ValueError(f"packed arrays: {name} decreases at architecture {bad} ({o[bad]} -> {o[bad + 1]})")
            sizes.append(np.diff(o))
        most = int((sizes[0] + sizes[1]).max()) if n_arch else 0
    if len(arrays["input_ndim"]) != len(arrays["input_shape"]):
        raise ValueError("packed arrays: input_ndim must have one entry per row of input_shape")
    return int(most)


def validate(arrays) -> None:
    """Raise ValueError, naming the array, row and column, for anything docs/format.md forbids."""
    missing = [k for k in ARRAY_SPECS if k not in arrays]
    if missing:
        raise ValueError(f"packed arrays: missing {', '.join(missing)}")
    extra = [k for k in arrays if k not in ARRAY_SPECS]
    if extra:
        raise ValueError(f"packed arrays: unknown array(s) {', '.join(extra)}")
    for name, (dtype, ndim, last) in ARRAY_SPECS.items():
        a = arrays[name]
        if not isinstance(a, np.ndarray):
            raise ValueError(f"packed arrays: {name} must be a numpy array, got {type(a).__name__}")
        if a.dtype != dtype:
            raise ValueError(f"packed arrays: {name} must have dtype {np.dtype(dtype).name}, got {a.dtype}")
        if a.ndim != ndim or (last is not None and a.shape[1] != last):
            want = f"(n, {last})" if last is not None else "(n,)"
            raise ValueError(f"packed arrays: {name} must have shape {want}, got {a.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"packed arrays: {name} must be C-contiguous (use np.ascontiguousarray)")
    check_offsets(arrays)
    ioff = arrays["input_offsets"]
    noin = np.nonzero(np.diff(ioff) < 1)[0]
    if len(noin):
        raise ValueError(f"packed arrays: architecture {noin[0]} has no network input")
    bs = arrays["batch_size"]
    bad = np.nonzero((bs < 1) | (bs > _DIM_MAX))[0]
    if len(bad):
        raise ValueError(f"packed arrays: batch_size[{bad[0]}] = {bs[bad[0]]} is outside 1 .. 2**31-1")
    nd, shp = arrays["input_ndim"], arrays["input_shape"]
    bad = np.nonzero((nd < 1) | (nd > 4))[0]
    if len(bad):
        raise ValueError(f"packed arrays: input_ndim[{bad[0]}] = {nd[bad[0]]} is outside 1..4")
    used = np.arange(4)[None, :] < nd[:, None]
    bad = np.argwhere(used & ((shp < 1) | (shp > _DIM_MAX)))
    if len(bad):
        r, c = bad[0]
        raise ValueError(f"packed arrays: input_shape[{r}, {c}] = {shp[r, c]} is outside 1 .. 2**31-1")
    _validate_rows(arrays)


def _validate_rows(arrays) -> None:
    """The compiled checks of every layer row and extra input (op codes, flags, references)."""
    layers, off, ioff = arrays["layers"], arrays["arch_offsets"], arrays["input_offsets"]
    res = _core.validate_rows(layers, off, ioff, len(arrays["extra_src"]))
    if res is not None:
        row, col, why = res
        raise ValueError(f"packed arrays: layers[{row}, {col}] ({F.FIELD_NAMES[col]} = {layers[row, col]}): "
                         f"{_ROW_REASONS[why]}")
    res = _core.validate_extra(layers, arrays["extra_src"], off, ioff)
    if res is not None:
        row, j = res
        raise ValueError(f"packed arrays: extra_src[{j}] = {arrays['extra_src'][j]} (an input of layers row {row}): "
                         f"{_ROW_REASONS[4]}")


def _input_shapes_of(model, shape):
    """The network input shapes of one model: a Model knows its Inputs, a stack needs `shape`."""
    own = getattr(model, "input_shapes", None)
    if shape is None and own is not None:
        return [tuple(s) for s in own]
    if shape is None:
        raise ValueError(f"input_shape is required to count a {type(model).__name__}")
    if len(shape) and isinstance(shape[0], (tuple, list)):
        return [tuple(s) for s in shape]
    return [tuple(shape)]


def _check_shape(shape):
    if not 1 <= len(shape) <= 4:
        raise ValueError(f"input shape {shape} must have 1 to 4 dimensions (batch excluded)")
    for v in shape:
        if isinstance(v, bool) or int(v) != v or not 1 <= v <= _DIM_MAX:
            raise ValueError(f"input shape {shape}: every size must be an int in 1 .. 2**31-1")


def pack(models, input_shapes=None, batch_size=None) -> Packed:
    """Pack models (layers, Sequentials or Models) into one Packed batch.

    `input_shapes`: one shape for every model (e.g. (3, 224, 224), batch excluded) or one per
    model; models built from cc.Input know their own. `batch_size`: an int or one per model
    (default: a Model's Input batch size, else 1).
    """
    models = list(models)
    per_model = (input_shapes is not None and len(input_shapes) > 0
                 and all(s is None or isinstance(s, (tuple, list)) for s in input_shapes))
    if not per_model:  # one shape (or None) for every model
        shapes = [input_shapes] * len(models)
    else:
        shapes = list(input_shapes)
        if len(shapes) != len(models):
            raise ValueError(f"pack: {len(models)} models but {len(shapes)} input shapes")
    if batch_size is None:
        sizes = [getattr(m, "batch_size", 1) for m in models]
    else:
        sizes = [batch_size] * len(models) if isinstance(batch_size, int) else list(batch_size)
    for b in sizes:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= _DIM_MAX:
            raise ValueError(f"batch_size must be an int in 1 .. 2**31-1, got {b!r}")
    if len(sizes) != len(models):
        raise ValueError(f"pack: {len(models)} models but {len(sizes)} batch sizes")
    b = RowBuilder()
    arch_off, in_off, in_shapes = [0], [0], []
    for a, (m, s) in enumerate(zip(models, shapes)):
        ins = _input_shapes_of(m, s)
        if not ins:
            raise ValueError(f"packed arrays: architecture {a} has no network input")
        for shape in ins:
            _check_shape(shape)
        b.begin_arch()
        if hasattr(m, "_emit_model"):
            m._emit_model(b)
        else:
            emit(m, b, "", [-1])
        arch_off.append(len(b.rows))
        in_shapes.extend(ins)
        in_off.append(len(in_shapes))
    shape_arr = np.zeros((len(in_shapes), 4), np.int64)
    for i, s in enumerate(in_shapes):
        shape_arr[i, :len(s)] = s
    arrays = dict(
        layers=np.fromiter(chain.from_iterable(b.rows), np.int32, len(b.rows) * F.N_FIELDS).reshape(-1, F.N_FIELDS),
        extra_src=np.array(b.extra, dtype=np.int32),
        arch_offsets=np.array(arch_off, np.int64),
        input_offsets=np.array(in_off, np.int64),
        input_shape=shape_arr,
        input_ndim=np.array([len(s) for s in in_shapes], np.int32),
        batch_size=np.array(sizes, np.int64),
    )
    # shapes, sizes and offsets are right by construction and checked above: only the rows
    # (which a user's Layer subclass writes) go through the compiled checks
    _validate_rows(arrays)
    return Packed(arrays, b.names, b.types, _validated=True)
