"""Random packed batches for the core-vs-reference property tests (not a test module).

`gen_batch(r)` writes the seven packed arrays of docs/format.md directly (no cnncore layers), for
several architectures at once. Every random choice goes through `r`, an object with

    r.int(lo, hi)  an int in lo..hi (inclusive)
    r.p(prob)      True with probability `prob` (shrinks to False)
    r.pick(seq)    one element of seq (shrinks to the first)

so the same generator is driven by hypothesis (`HypRng`, shrinkable) and by numpy (`NpRng`, for
fixed samples of thousands of architectures).

The arrays always pass `cc.Packed.from_arrays` (structure: op codes 0..44, known flag bits, input
references to earlier layers / existing inputs, extra_src ranges in bounds); the *contents* are
drawn mostly from plausible ranges, so that a good share of architectures is valid, and with a
per-architecture "hostility" from edge ranges (0, negatives, 2**31-1, huge inputs) so that every
per-architecture error code of docs/format.md is reached. To keep many architectures valid, the
fields of a row are chosen knowing the shape of its input (asked from the core on the rows
generated so far); that only steers the choice, the assertions compare core and reference.
"""
from __future__ import annotations

import numpy as np

from cnncore import _format as F
from cnncore.counting import run_core

DIM_MAX = 2**31 - 1
INT32_MIN = -(2**31)
HOSTILE = (0, -1, 1, -2, DIM_MAX, INT32_MIN, 2**30, 65536, 46341, DIM_MAX - 1, 3037000500 % 2**31)

OPS_BY_D = {}
for _d in (1, 2, 3):
    OPS_BY_D[_d] = [F.OPS[f"Conv{_d}d"]] * 4 + [
        F.OPS[f"ConvTranspose{_d}d"], F.OPS[f"BatchNorm{_d}d"], F.OPS[f"BatchNorm{_d}d"],
        F.OPS[f"MaxPool{_d}d"], F.OPS[f"AvgPool{_d}d"], F.OPS[f"AdaptiveAvgPool{_d}d"],
        F.OPS[f"AdaptiveMaxPool{_d}d"]]
COMMON = [F.OPS[n] for n in ("ReLU", "ReLU", "Identity", "Add", "Cat", "GroupNorm", "LayerNorm",
                             "PReLU", "Softmax", "ChannelShuffle", "Slice", "Upsample", "Mul",
                             "Flatten", "Linear", "GELU", "SiLU", "Sigmoid", "Hardswish")]
FLAT = [F.OPS[n] for n in ("Linear", "Linear", "ReLU", "BatchNorm1d", "Softmax", "LayerNorm", "Identity",
                           "Add", "Mul", "Cat", "Slice", "Flatten", "GELU", "PReLU", "Sigmoid", "Tanh")]
CONV = range(1, 4)
CONVT = range(4, 7)
BN = range(8, 11)
MAXPOOL = range(25, 28)
AVGPOOL = range(28, 31)
ADAPTIVE = range(31, 37)


class NpRng:
    def __init__(self, seed):
        self.g = np.random.default_rng(seed)

    def int(self, lo, hi):
        return int(self.g.integers(lo, hi + 1))

    def p(self, prob):
        return bool(self.g.random() < prob)

    def pick(self, seq):
        return seq[int(self.g.integers(len(seq)))]


class HypRng:
    def __init__(self, draw):
        from hypothesis import strategies as st
        self.draw, self.st = draw, st

    def int(self, lo, hi):
        return self.draw(self.st.integers(lo, hi))

    def p(self, prob):
        if prob <= 0:
            return False
        return self.draw(self.st.integers(0, 99)) >= 100 - round(100 * prob)

    def pick(self, seq):
        return self.draw(self.st.sampled_from(seq))


class _Arch:
    """Rows of one architecture being generated, and the shapes of its tensors (from the core)."""

    def __init__(self, inputs, batch):
        self.inputs, self.batch = inputs, batch
        self.rows, self.extra = [], []
        self._shapes = None

    def shape(self, ref):
        """Shape (batch first) of an input reference, or None if unknown/invalid."""
        if ref < 0:
            s = self.inputs[-1 - ref]
            return (self.batch, *s)
        if self._shapes is None or len(self._shapes) < len(self.rows):
            self._shapes = self._count()
        return self._shapes[ref]

    def _count(self):
        arrays = self.arrays(0)
        try:
            out = run_core(arrays, per_layer=True, n_threads=1)
        except Exception:  # pragma: no cover - only steering
            return [None] * len(self.rows)
        shapes = []
        for k in range(len(self.rows)):
            nd = int(out["layer_ndim"][k])
            shapes.append(tuple(int(v) for v in out["layer_shape"][k][:nd]) if nd else None)
        return shapes

    def arrays(self, xoff_base):
        layers = np.array(self.rows, np.int32).reshape(-1, F.N_FIELDS)
        layers = layers.copy()
        multi = layers[:, F.NSRC] > 1
        layers[multi, F.XOFF] += xoff_base
        shp = np.zeros((len(self.inputs), 4), np.int64)
        for j, s in enumerate(self.inputs):
            shp[j, :len(s)] = s
        return dict(layers=np.ascontiguousarray(layers), extra_src=np.array(self.extra, np.int32),
                    arch_offsets=np.array([0, len(self.rows)], np.int64),
                    input_offsets=np.array([0, len(self.inputs)], np.int64), input_shape=shp,
                    input_ndim=np.array([len(s) for s in self.inputs], np.int32),
                    batch_size=np.array([self.batch], np.int64))


def _divisors(n):
    if n is None or n < 1 or n > 4096:
        return [1]
    return [g for g in range(1, n + 1) if n % g == 0]


def gen_arch(r, max_layers=30):
    hostility = r.pick((0.0, 0.0, 0.0, 0.0, 0.02, 0.1, 0.3))
    # a clean architecture makes few plausible-range mistakes (wrong op for the input's ndim...)
    a_noise = 0.15 if hostility == 0 and r.p(0.6) else 1.0
    huge = r.p(0.08)  # inputs with 2**31-1 sized dimensions: OVERFLOW territory

    def val(lo, hi):
        if hostility and r.p(hostility):
            return r.pick(HOSTILE)
        return r.int(lo, hi)

    d = r.int(1, 3)
    n_in = 2 if r.p(0.2) else 1
    inputs = []
    for _ in range(n_in):
        nd = d + 1 if r.p(0.85) else r.int(1, 4)
        dims = []
        for i in range(nd):
            if huge and r.p(0.5):
                dims.append(r.pick((DIM_MAX, DIM_MAX - 1, 2**20, 2**31 - 2**16)))
            elif i == 0:
                dims.append(r.int(1, 64))
            else:
                dims.append(r.int(1, 64 if d < 3 else 16))
        inputs.append(tuple(dims))
    if n_in == 2 and r.p(0.5):
        inputs[1] = inputs[0]
    batch = r.pick((1, 2, 3, DIM_MAX)) if huge else r.int(1, 3)
    a = _Arch(inputs, batch)
    n_layers = r.int(0, max_layers)
    for k in range(n_layers):
        a.rows.append(gen_row(r, a, k, d, val, hostility, a_noise))
    return a


def gen_row(r, a, k, d, val, hostility, noise=1.0):
    row = [0] * F.N_FIELDS
    n_in = len(a.inputs)
    # ---- first input: mostly the previous layer
    if k == 0 or r.p(0.1):
        src = r.int(-n_in, k - 1) if k > 0 else -r.int(1, n_in)
    else:
        src = k - 1
    x = a.shape(src)
    # ---- op: mostly one that fits the input's number of dimensions
    if r.p(0.12 * noise):
        op = r.int(0, F.N_OPS - 1)
    elif x is None:
        op = r.pick(OPS_BY_D[d] + COMMON)
    elif 3 <= len(x) <= 5:
        op = r.pick(OPS_BY_D[len(x) - 2] + COMMON)
    else:
        op = r.pick(FLAT)
    row[F.OP] = op
    row[F.SRC] = src
    row[F.NSRC] = 1
    nd = len(x) if x is not None else d + 2
    C = x[1] if x is not None and len(x) >= 2 else r.int(1, 64)

    def ch():
        return val(1, 64)

    def spatial(first, lo, hi, n=d):
        for i in range(n):
            row[first + i] = val(lo, hi)
        if r.p(0.05):  # unused trailing spatial fields are ignored
            for i in range(n, 3):
                row[first + i] = r.int(-3, 9)

    flags = 0
    if op in CONV or op in CONVT:
        dd = (op - 1) % 3 + 1
        row[F.IN] = 0 if r.p(0.5) else (C if r.p(0.9) else ch())
        row[F.OUT] = ch()
        g = r.pick(_divisors(C)) if r.p(0.3) else 1
        row[F.GROUPS] = val(g, g)
        if 1 < row[F.GROUPS] <= 64 and row[F.OUT] % row[F.GROUPS] and r.p(0.8):
            row[F.OUT] = row[F.GROUPS] * r.int(1, 4)
        flags = F.F_BIAS if r.p(0.6) else 0
        same = op in CONV and r.p(0.15)
        if same:
            flags |= F.F_SAME
        spatial(F.K0, 1, 7, dd)
        spatial(F.S0, 1, 1 if same and r.p(0.8) else 3, dd)
        spatial(F.P0, 0, 3, dd)
        spatial(F.D0, 1, 1 if r.p(0.6) else 3, dd)
        if op in CONVT:
            spatial(F.O0, 0, 2, dd)
    elif op == F.OPS["Linear"]:
        last = x[-1] if x is not None else ch()
        row[F.IN] = 0 if r.p(0.5) else (last if r.p(0.9) else ch())
        row[F.OUT] = ch()
        flags = F.F_BIAS if r.p(0.5) else 0
    elif op in BN:
        row[F.IN] = 0 if r.p(0.4) else (C if r.p(0.9) else ch())
        flags = r.pick((F.F_AFFINE | F.F_TRACK, 0, F.F_AFFINE, F.F_TRACK))
    elif op == F.OPS["LayerNorm"]:
        n = r.int(1, 3)
        row[F.DIM0] = val(n, n)
        if x is not None and len(x) >= n and r.p(0.85):
            for i in range(n):
                row[F.K0 + i] = val(x[len(x) - n + i], x[len(x) - n + i])
        else:
            spatial(F.K0, 1, 8, n)
        flags = r.pick((F.F_AFFINE | F.F_BIAS, F.F_AFFINE, 0, F.F_BIAS))
    elif op == F.OPS["GroupNorm"]:
        c = C if r.p(0.85) else ch()
        row[F.IN] = val(c, c)
        g = r.pick(_divisors(c)) if r.p(0.85) else r.int(1, 8)
        row[F.GROUPS] = val(g, g)
        flags = F.F_AFFINE if r.p(0.5) else 0
    elif op == F.OPS["PReLU"]:
        row[F.IN] = val(1, 1) if r.p(0.5) else (C if r.p(0.8) else ch())
    elif op == F.OPS["Softmax"]:
        if r.p(0.3):
            flags = F.F_IMPLICIT_DIM
        else:
            row[F.DIM0] = val(-nd - 1, nd)
    elif op in MAXPOOL or op in AVGPOOL:
        dd = (op - 25) % 3 + 1
        spatial(F.K0, 1, 4, dd)
        for i in range(dd):
            row[F.S0 + i] = row[F.K0 + i] if r.p(0.5) and row[F.K0 + i] > 0 else val(1, 3)
            kk = max(row[F.K0 + i], 0)
            row[F.P0 + i] = val(0, kk // 2) if r.p(0.9) else val(0, 3)
            row[F.D0 + i] = val(1, 1) if r.p(0.7) else val(1, 3)
        if r.p(0.3):
            flags = F.F_CEIL
    elif op in ADAPTIVE:
        dd = (op - 31) % 3 + 1
        for i in range(dd):
            # not 2**31-1: the core's window sum loops over the output size (seconds per layer;
            # tests/test_packed_validation.py::test_adaptive_pool_huge_output_is_fast covers it)
            row[F.K0 + i] = r.pick((0, -1, 1, 65536, 46341)) if hostility and r.p(hostility) else r.int(0, 7)
    elif op == F.OPS["Flatten"]:
        row[F.DIM0] = val(0, nd - 1) if r.p(0.5) else val(-nd, -1) if r.p(0.5) else 1
        row[F.DIM1] = -1 if r.p(0.6) else val(-nd - 1, nd)
    elif op == F.OPS["ZeroPad2d"]:
        for col in (F.P0, F.P1, F.P2, F.D0):
            row[col] = val(-2, 3)
    elif op == F.OPS["Upsample"]:
        s = nd - 2
        mode = 0 if r.p(0.6) else {1: 1, 2: r.pick((2, 3)), 3: 4}.get(s, r.int(0, 4))
        row[F.DIM0] = val(mode, mode)
        one = r.p(0.5)
        row[F.DIM1] = 0 if one else (val(s, s) if r.p(0.9) else r.int(0, 4))
        n_given = 3 if one else max(1, min(3, s))
        if r.p(0.5):  # size mode
            v = r.int(1, 32)
            for i in range(n_given):
                row[F.K0 + i] = val(v, v) if one else val(1, 32)
        else:  # scale: a float64 split into two int32 words S_i (low), D_i (high)
            scale = r.pick((2.0, 0.5, 1.0, 1.5, 0.7, 3.0, 1 / 3, 2.5))
            for i in range(n_given):
                sc = scale if one else r.pick((2.0, 0.5, 1.0, 1.5, 0.7, 3.0))
                if hostility and r.p(hostility):
                    sc = r.pick((0.0, -1.0, float("inf"), float("nan"), 1e300, 1e-300, 5e-324, 2.0**31, 1e9))
                lo, hi = (int(v) for v in np.array([sc], np.float64).view(np.int32))
                row[F.S0 + i], row[F.D0 + i] = lo, hi
                if hostility and r.p(hostility / 2):
                    row[F.S0 + i + r.int(0, 1) * 6] = r.pick(HOSTILE)
    elif op == F.OPS["Identity"] and r.p(0.2):  # Dropout1d writes an accepted ndim range
        lo = r.int(1, 5)
        row[F.DIM0] = val(lo, lo)
        row[F.DIM1] = val(lo, 5)
    elif op == F.OPS["ChannelShuffle"]:
        g = r.pick(_divisors(C)) if r.p(0.85) else r.int(1, 8)
        row[F.GROUPS] = val(g, g)
    elif op == F.OPS["Slice"]:
        dim = r.pick((1, 1, -1, 0, nd - 1)) if r.p(0.9) else r.int(-nd - 1, nd)
        row[F.DIM0] = val(dim, dim)
        size = x[dim] if x is not None and -nd <= dim < nd else 8
        start = r.int(0, max(size - 1, 0))
        row[F.K0] = val(start, start)
        ln = r.int(1, max(size - start, 1))
        row[F.K1] = val(ln, ln)
    elif op in (F.OPS["Add"], F.OPS["Mul"], F.OPS["Cat"]):
        is_cat = op == F.OPS["Cat"]
        n = (r.int(1, 4) if is_cat else 2) if r.p(0.95) else r.int(1, 3)
        if is_cat:
            row[F.DIM0] = val(1, 1) if r.p(0.7) else val(-nd, nd - 1)
        if n > 1:
            refs = []
            cands = list(range(-n_in, k))
            same = [c for c in cands if a.shape(c) == x] if x is not None else []
            for _ in range(n - 1):
                if same and r.p(0.6):
                    refs.append(r.pick(same))
                else:
                    refs.append(r.pick(cands))
            row[F.XOFF] = len(a.extra)
            a.extra.extend(refs)
        row[F.NSRC] = n
    # ---- extra flag bits (known bits that this op ignores) and rare wrong NSRC
    if r.p(0.1):
        flags |= r.int(0, F.FLAG_MASK & 127)  # not F_OUTPUT (128): it changes which row is the output
    if r.p(0.05):
        flags |= F.F_UNUSED
    row[F.FLAGS] = flags
    if row[F.NSRC] == 1 and r.p(0.02):  # a single-input op given 2 inputs
        row[F.NSRC] = 2
        row[F.XOFF] = len(a.extra)
        a.extra.append(r.int(-n_in, k - 1) if k > 0 else -1)
    elif row[F.NSRC] == 1 and r.p(0.05):
        row[F.XOFF] = r.int(-5, 5)  # ignored when NSRC = 1
    return row


def assemble(archs):
    """The seven packed arrays of a list of _Arch."""
    rows, extra, aoff, ioff, shapes, ndims, batch = [], [], [0], [0], [], [], []
    for a in archs:
        arr = a.arrays(len(extra))
        rows.append(arr["layers"])
        extra.extend(a.extra)
        aoff.append(aoff[-1] + len(a.rows))
        ioff.append(ioff[-1] + len(a.inputs))
        shapes.append(arr["input_shape"])
        ndims.append(arr["input_ndim"])
        batch.append(a.batch)
    return dict(
        layers=np.ascontiguousarray(np.concatenate(rows) if rows else np.zeros((0, F.N_FIELDS), np.int32)),
        extra_src=np.array(extra, np.int32),
        arch_offsets=np.array(aoff, np.int64),
        input_offsets=np.array(ioff, np.int64),
        input_shape=np.ascontiguousarray(np.concatenate(shapes) if shapes else np.zeros((0, 4), np.int64)),
        input_ndim=np.concatenate(ndims).astype(np.int32) if ndims else np.zeros(0, np.int32),
        batch_size=np.array(batch, np.int64),
    )


def gen_batch(r, max_arch=4, max_layers=30):
    n = r.int(1, max_arch)
    return assemble([gen_arch(r, max_layers) for _ in range(n)])


def batch_strategy(max_arch=4, max_layers=30):
    from hypothesis import strategies as st

    @st.composite
    def _batch(draw):
        return gen_batch(HypRng(draw), max_arch, max_layers)

    return _batch()
