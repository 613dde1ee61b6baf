"""The pure-Python reference core: the same counting as the Cython core, written independently.

It reads the packed arrays of docs/format.md and applies the formulas and check order of
docs/conventions.md with plain Python ints, one small function per layer family, dispatched from a
table keyed by op code. It is slow and exists to prove the fast core right (tests compare the two);
``count(..., backend="reference")`` runs it behind the public API.

Python ints never overflow, so every product and sum that the int64 core computes is checked here
explicitly (``_c`` / ``_mul``): a value outside int64 at any step is ``OVERFLOW`` at that layer, and
so is an output dimension above 2^31 - 1 (checked after the layer's own checks pass).

Choices where docs/conventions.md is silent (the Cython core must make the same ones):

* Per row, in this order: the inputs are resolved (SRC, then ``extra_src[XOFF:XOFF+NSRC-1]`` when
  NSRC > 1; ``BAD_INPUT_REF``), then the op code is looked up (``UNKNOWN_OP``), then the number of
  inputs is checked (``BAD_FIELD``: NSRC must be 1 for single-input ops, 2 for Add/Mul, >= 1 for
  Cat), then the op's own checks of docs/conventions.md run.
* Before row 0 the architecture itself is checked; a failure is reported at ``error_layer = -1``
  (also for an architecture without rows): offsets out of range, no network input, batch size or an
  input dimension outside 1..2^31-1, or an input ndim outside 1..4 are ``BAD_FIELD``; an input whose
  numel (batch included) exceeds int64 is ``OVERFLOW``.
* Intermediate products inside a formula are checked too: Softmax's ``3 numel(x)``, the convolution's
  ``2n``, AdaptiveMax's ``N C prod(w)`` are ``OVERFLOW`` even when the final value would fit.
* An unused layer (FLAGS bit 64) computes and checks all its counts as usual (so a MAC overflow is
  still ``OVERFLOW``); then its MACs, FLOPs and activation elements are set to 0.
* Unknown FLAGS bits are ignored (only the bits an op uses are read).
* Fields an op does not use are never checked, and spatial fields beyond the op's d are ignored.
* Upsample: entries beyond the first s spatial dims (K, S, D) are ignored.
* Adaptive pooling window sum: ``w_i = in_i + y_i - gcd(in_i, y_i)`` (the closed form of the sum
  over the windows ``[floor(j in/y), ceil((j+1) in/y))``).
"""

import math
import struct
from functools import partial
from math import gcd

from cnncore._format import (
    D0, DIM0, DIM1, F_AFFINE, F_BIAS, F_CEIL, F_IMPLICIT_DIM, F_FUNCTIONAL, F_CALL, F_OUTPUT, F_SAME, F_TRACK, F_UNUSED, FLAGS,
    GROUPS, IN, K0, MAX_NDIM, N_FIELDS, N_OPS, NSRC, O0, OP, OPS, OUT, P0, P1, P2, S0, SRC, XOFF,
    ERROR_CODES,
)

INT64_MAX = 2**63 - 1
MAX_DIM = 2**31 - 1  # largest dimension of any shape (network inputs and layer outputs)
INT64_MIN = -(2**63)

OK = 0
UNKNOWN_OP = ERROR_CODES["UNKNOWN_OP"]
BAD_INPUT_REF = ERROR_CODES["BAD_INPUT_REF"]
BAD_FIELD = ERROR_CODES["BAD_FIELD"]
NDIM = ERROR_CODES["NDIM"]
IN_CHANNELS = ERROR_CODES["IN_CHANNELS"]
GROUPS_ERR = ERROR_CODES["GROUPS"]
OUTPUT_SIZE = ERROR_CODES["OUTPUT_SIZE"]
KERNEL_TOO_LARGE = ERROR_CODES["KERNEL_TOO_LARGE"]
POOL_PADDING = ERROR_CODES["POOL_PADDING"]
SAME_STRIDE = ERROR_CODES["SAME_STRIDE"]
OUTPUT_PADDING = ERROR_CODES["OUTPUT_PADDING"]
NORM_SHAPE = ERROR_CODES["NORM_SHAPE"]
NORM_GROUPS = ERROR_CODES["NORM_GROUPS"]
DIM_RANGE = ERROR_CODES["DIM_RANGE"]
BROADCAST = ERROR_CODES["BROADCAST"]
CAT_SHAPE = ERROR_CODES["CAT_SHAPE"]
SHUFFLE_GROUPS = ERROR_CODES["SHUFFLE_GROUPS"]
UPSAMPLE = ERROR_CODES["UPSAMPLE"]
OVERFLOW = ERROR_CODES["OVERFLOW"]
FLATTEN_ORDER = ERROR_CODES["FLATTEN_ORDER"]
SLICE_RANGE = ERROR_CODES["SLICE_RANGE"]
SINGLE_VALUE = ERROR_CODES["SINGLE_VALUE"]

# Spatial field groups: kernel K0..K2, stride S0..S2, padding P0..P2, dilation D0..D2, output_padding O0..O2.
_K, _S, _P, _D, _O = K0, S0, P0, D0, O0


class _Fail(Exception):
    """A layer is invalid: ``code`` is its error code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _check(cond, code):
    if cond:
        raise _Fail(code)


def _c(v):
    """Return v, or fail with OVERFLOW when it does not fit int64."""
    if v > INT64_MAX or v < INT64_MIN:
        raise _Fail(OVERFLOW)
    return v


def _mul(*factors):
    """Product, checked for int64 overflow after every multiplication."""
    r = 1
    for f in factors:
        r = _c(r * f)
    return r


def _numel(shape):
    return _mul(*shape)


def _fields(row, col, d):
    return row[col:col + d]


def _norm_dim(dim, ndim):
    """torch's dim wrapping: dim in [-ndim, ndim - 1] else DIM_RANGE."""
    _check(dim < -ndim or dim > ndim - 1, DIM_RANGE)
    return dim + ndim if dim < 0 else dim


# ---- layer families ---------------------------------------------------------------------------
# Each takes (row, xs) with xs the resolved input shapes (tuples, batch first) and returns
# (y, params, buffers, macs, flops); it raises _Fail(code) on the first failing check.


def _identity(row, xs):
    # y = x; everything 0; DIM0..DIM1 (when DIM0 != 0) bound the input's ndim (Dropout1d: 2..3)
    lo, hi = row[DIM0], row[DIM1]
    _check(lo != 0 and not lo <= len(xs[0]) <= hi, NDIM)
    return xs[0], 0, 0, 0, 0


def _conv(d, row, xs):
    # y_i = (in_i + 2P_i - D_i(K_i-1) - 1)//S_i + 1 ('same': in_i); n = IN/G*prod(K);
    # params = OUT*n + bias*OUT; macs = numel(y)*n; flops = numel(y)*(2n - 1 + bias)
    x = xs[0]
    cin, cout, g, flags = row[IN], row[OUT], row[GROUPS], row[FLAGS]
    K, S, P, D = _fields(row, _K, d), _fields(row, _S, d), _fields(row, _P, d), _fields(row, _D, d)
    bias = 1 if flags & F_BIAS else 0
    same = bool(flags & F_SAME)
    _check(cout < 1 or g < 1 or cin < 0 or min(K) < 1 or min(S) < 1 or min(D) < 1 or min(P) < 0,
           BAD_FIELD)
    _check(same and any(s != 1 for s in S), SAME_STRIDE)
    _check(len(x) != d + 2, NDIM)
    _check(cin != 0 and x[1] != cin, IN_CHANNELS)
    cin = x[1]
    _check(cin % g != 0 or cout % g != 0, GROUPS_ERR)
    spans, padded = [], []
    for i in range(d):
        span = _c(_c(D[i] * (K[i] - 1)) + 1)  # effective kernel extent D(K-1)+1
        pad = _c(x[2 + i] + (span - 1 if same else _c(2 * P[i])))
        _check(pad < span, KERNEL_TOO_LARGE)
        spans.append(span)
        padded.append(pad)
    if same:
        ys = [x[2 + i] for i in range(d)]
    else:
        ys = [(padded[i] - spans[i]) // S[i] + 1 for i in range(d)]
    y = (x[0], cout, *ys)
    n = _mul(cin // g, *K)
    numel_y = _numel(y)
    params = _c(_mul(cout, n) + bias * cout)
    macs = _mul(numel_y, n)
    flops = _mul(numel_y, _c(_c(2 * n) - 1 + bias))
    return y, params, 0, macs, flops


def _conv_transpose(d, row, xs):
    # y_i = (in_i-1)S_i - 2P_i + D_i(K_i-1) + O_i + 1; params = IN*(OUT/G)*prod(K) + bias*OUT;
    # macs = numel(x)*(OUT/G)*prod(K); flops = 2*macs + bias*numel(y)
    x = xs[0]
    cin, cout, g, flags = row[IN], row[OUT], row[GROUPS], row[FLAGS]
    K, S, P = _fields(row, _K, d), _fields(row, _S, d), _fields(row, _P, d)
    D, O = _fields(row, _D, d), _fields(row, _O, d)
    bias = 1 if flags & F_BIAS else 0
    _check(cout < 1 or g < 1 or cin < 0 or min(K) < 1 or min(S) < 1 or min(D) < 1 or min(P) < 0
           or min(O) < 0, BAD_FIELD)
    _check(len(x) != d + 2, NDIM)
    _check(cin != 0 and x[1] != cin, IN_CHANNELS)
    cin = x[1]
    _check(cin % g != 0 or cout % g != 0, GROUPS_ERR)
    _check(any(O[i] >= S[i] and O[i] >= D[i] for i in range(d)), OUTPUT_PADDING)
    ys = []
    for i in range(d):
        yi = _c(_c(_c(_mul(x[2 + i] - 1, S[i]) - 2 * P[i]) + _mul(D[i], K[i] - 1)) + O[i] + 1)
        _check(yi < 1, OUTPUT_SIZE)
        ys.append(yi)
    y = (x[0], cout, *ys)
    numel_y = _numel(y)
    kvol = _mul(*K)
    params = _c(_mul(cin, cout // g, kvol) + bias * cout)
    macs = _mul(_numel(x), cout // g, kvol)
    flops = _c(_mul(2, macs) + bias * numel_y)
    return y, params, 0, macs, flops


def _linear(row, xs):
    # y = (*x[:-1], OUT); params = IN*OUT + bias*OUT; macs = numel(y)*IN; flops = numel(y)*(2IN - 1 + bias)
    x = xs[0]
    cin, cout = row[IN], row[OUT]
    bias = 1 if row[FLAGS] & F_BIAS else 0
    _check(cout < 1 or cin < 0, BAD_FIELD)
    _check(cin != 0 and x[-1] != cin, IN_CHANNELS)
    cin = x[-1]
    y = (*x[:-1], cout)
    numel_y = _numel(y)
    params = _c(_mul(cin, cout) + bias * cout)
    macs = _mul(numel_y, cin)
    flops = _mul(numel_y, _c(_c(2 * cin) - 1 + bias))
    return y, params, 0, macs, flops


def _batchnorm(d, row, xs):
    # params = 2C*affine; buffers = (2C+1)*track; flops = numel(x)*(2 + 2*affine)
    x = xs[0]
    cin, flags = row[IN], row[FLAGS]
    affine = 1 if flags & F_AFFINE else 0
    track = 1 if flags & F_TRACK else 0
    _check(cin < 0, BAD_FIELD)
    _check(len(x) not in ((2, 3) if d == 1 else (d + 2,)), NDIM)
    # torch compares channels only with tensors that exist (weight/bias or running stats)
    _check((affine or track) and cin != 0 and x[1] != cin, IN_CHANNELS)
    c = x[1]
    # without running stats eval uses batch statistics: torch refuses one value per channel
    _check(not track and _numel(x) // c == 1, SINGLE_VALUE)
    bias = 1 if flags & F_BIAS else 0
    params = _mul(1 + bias, c) * affine  # weight, and bias unless bias=False
    buffers = _c(_mul(2, c) + 1) * track
    flops = _mul(_numel(x), 2 + affine * (1 + bias))
    return x, params, buffers, 0, flops


def _layernorm(row, xs):
    # params = prod(normalized_shape)*(affine + affine*bias); flops = numel(x)*(5 + 2*affine)
    x = xs[0]
    n = row[DIM0]
    _check(n < 1 or n > 3, BAD_FIELD)
    shape = tuple(_fields(row, _K, n))
    _check(min(shape) < 1, BAD_FIELD)
    _check(len(x) < n or tuple(x[len(x) - n:]) != shape, NORM_SHAPE)
    affine = 1 if row[FLAGS] & F_AFFINE else 0
    bias = 1 if row[FLAGS] & F_BIAS else 0
    params = _mul(_numel(shape), affine + affine * bias)
    flops = _mul(_numel(x), 5 + 2 * affine)
    return x, params, 0, 0, flops


def _groupnorm(row, xs):
    # params = 2*IN*affine; flops = numel(x)*(5 + 2*affine)
    x = xs[0]
    g, c = row[GROUPS], row[IN]
    affine = 1 if row[FLAGS] & F_AFFINE else 0
    _check(g < 1 or c < 1, BAD_FIELD)
    _check(c % g != 0, NORM_GROUPS)
    _check(len(x) < 2, NDIM)
    if affine:
        _check(x[1] != c, IN_CHANNELS)
    else:  # no per-channel tensors: torch only needs num_groups to divide the channels
        _check(x[1] % g != 0, NORM_GROUPS)
    _check(_numel(x) // g == 1, SINGLE_VALUE)  # statistics over a single value per group
    bias = 1 if row[FLAGS] & F_BIAS else 0
    params = _mul(1 + bias, c) * affine
    flops = _mul(_numel(x), 5 + affine * (1 + bias))
    return x, params, 0, 0, flops


def _activation(per_element, row, xs):
    # y = x; flops = per_element * numel(x)
    x = xs[0]
    return x, 0, 0, 0, _mul(per_element, _numel(x))


def _prelu(row, xs):
    # y = x; params = IN; flops = 2*numel(x)
    x = xs[0]
    n = row[IN]
    _check(n < 1, BAD_FIELD)
    if n > 1:
        _check(len(x) < 2, NDIM)
        _check(x[1] != n, IN_CHANNELS)
    return x, n, 0, 0, _mul(2, _numel(x))


def _softmax(row, xs):
    # flops = 3*numel(x) - numel(x)/x[dim]; implicit dim: 0 if ndim in {0, 1, 3} else 1
    x = xs[0]
    ndim = len(x)
    if row[FLAGS] & F_IMPLICIT_DIM:
        dim = 0 if ndim in (0, 1, 3) else 1
    else:
        dim = _norm_dim(row[DIM0], ndim)
    numel = _numel(x)
    return x, 0, 0, 0, _c(_mul(3, numel) - numel // x[dim])


def _pool(d, is_max, row, xs):
    # y_i = (in_i + 2P_i - D_i(K_i-1) - 1 [+ S_i - 1 if ceil])//S_i + 1 (ceil: -1 if the last window
    # starts at or past in_i + P_i); Max flops = numel(y)*(prod(K) - 1); Avg flops = numel(y)*prod(K)
    x = xs[0]
    K, S, P = _fields(row, _K, d), _fields(row, _S, d), _fields(row, _P, d)
    D = _fields(row, _D, d) if is_max else [1] * d
    ceil = bool(row[FLAGS] & F_CEIL)
    _check(min(K) < 1 or min(S) < 1 or min(D) < 1 or min(P) < 0, BAD_FIELD)
    _check(any(P[i] > K[i] // 2 for i in range(d)), POOL_PADDING)
    _check(len(x) != d + 2, NDIM)
    # avg_pool3d (only) also requires every unpadded input size >= the kernel (ATen pool3d_shape_check)
    _check(d == 3 and not is_max and any(x[2 + i] < K[i] for i in range(d)), KERNEL_TOO_LARGE)
    ys = []
    for i in range(d):
        num = _c(_c(_c(x[2 + i] + 2 * P[i]) - _mul(D[i], K[i] - 1)) - 1)
        if ceil:
            yi = _c(num + S[i] - 1) // S[i] + 1
            if _mul(yi - 1, S[i]) >= _c(x[2 + i] + P[i]):
                yi -= 1
        else:
            yi = num // S[i] + 1
        _check(yi < 1, OUTPUT_SIZE)
        ys.append(yi)
    y = (x[0], x[1], *ys)
    kvol = _mul(*K)
    flops = _mul(_numel(y), kvol - 1 if is_max else kvol)
    return y, 0, 0, 0, flops


def _adaptive_pool(d, is_max, row, xs):
    # y_i = K_i or in_i; w_i = sum of window lengths = in_i + y_i - gcd(in_i, y_i);
    # Avg flops = N*C*prod(w); Max flops = N*C*prod(w) - numel(y)
    x = xs[0]
    K = _fields(row, _K, d)
    _check(min(K) < 0, BAD_FIELD)
    _check(len(x) != d + 2, NDIM)
    ys = [K[i] if K[i] != 0 else x[2 + i] for i in range(d)]
    # sum_j ceil((j+1)in/y) - floor(j in/y) = in + #{j in 1..y : y does not divide j*in} = in + y - gcd
    ws = [_c(x[2 + i] + ys[i]) - gcd(x[2 + i], ys[i]) for i in range(d)]
    y = (x[0], x[1], *ys)
    numel_y = _numel(y)
    flops = _mul(x[0], x[1], *ws)
    if is_max:
        flops = _c(flops - numel_y)
    return y, 0, 0, 0, flops


def _flatten(row, xs):
    # y = x[:s] + (prod x[s..e],) + x[e+1:]
    x = xs[0]
    ndim = len(x)
    s, e = row[DIM0], row[DIM1]
    s = s + ndim if s < 0 else s
    e = e + ndim if e < 0 else e
    _check(not (0 <= s <= ndim - 1) or not (0 <= e <= ndim - 1), DIM_RANGE)
    _check(s > e, FLATTEN_ORDER)
    y = (*x[:s], _mul(*x[s:e + 1]), *x[e + 1:])
    _numel(y)
    return y, 0, 0, 0, 0


def _zeropad2d(row, xs):
    # y[-1] = x[-1] + left + right; y[-2] = x[-2] + top + bottom
    x = xs[0]
    left, right, top, bottom = row[P0], row[P1], row[P2], row[D0]
    _check(len(x) < 2, NDIM)
    h = _c(_c(x[-2] + top) + bottom)
    w = _c(_c(x[-1] + left) + right)
    _check(h < 1 or w < 1, OUTPUT_SIZE)
    y = (*x[:-2], h, w)
    _numel(y)
    return y, 0, 0, 0, 0


# Upsample mode -> (allowed numbers of spatial dims, flops per output element)
_UPSAMPLE_MODES = {
    0: ((1, 2, 3), 0),  # nearest
    1: ((1,), 3),  # linear
    2: ((2,), 7),  # bilinear
    3: ((2,), 31),  # bicubic
    4: ((3,), 15),  # trilinear
}


def _float64(low, high):
    """The float64 whose IEEE bits are the int32 words (low, high)."""
    return struct.unpack("<d", struct.pack("<ii", low, high))[0]


def _upsample(row, xs):
    # y_i = K_i (size mode, K0 != 0) or floor(in_i * scale_i) in float64; flops = numel(y) * per-mode constant
    x = xs[0]
    mode = row[DIM0]
    _check(mode not in _UPSAMPLE_MODES, BAD_FIELD)
    allowed, per_element = _UPSAMPLE_MODES[mode]
    s = len(x) - 2
    _check(s not in allowed, NDIM)
    K, S, D = _fields(row, _K, s), _fields(row, _S, s), _fields(row, _D, s)
    _check(row[DIM1] not in (0, s), UPSAMPLE)  # entries given: 0 = one value for every dim
    if row[K0] != 0:
        _check(min(K) < 1, UPSAMPLE)
        ys = list(K)
    else:
        scales = [_float64(S[i], D[i]) for i in range(s)]
        _check(not all(0.0 < v < 1e300 for v in scales), UPSAMPLE)
        prods = [float(x[2 + i]) * scales[i] for i in range(s)]  # torch: a float64 product, floored
        _check(min(prods) < 1.0, OUTPUT_SIZE)
        # only after OUTPUT_SIZE passed; inf (a huge scale) is an overflow too
        _check(not all(math.isfinite(v) and math.floor(v) <= MAX_DIM for v in prods), OVERFLOW)
        ys = [math.floor(v) for v in prods]
    _check(min(ys) < 1, OUTPUT_SIZE)
    y = (x[0], x[1], *ys)
    return y, 0, 0, 0, _mul(_numel(y), per_element)


def _channel_shuffle(row, xs):
    # y = x
    x = xs[0]
    g = row[GROUPS]
    _check(g < 1, BAD_FIELD)
    _check(len(x) < 3, NDIM)
    _check(x[1] % g != 0, SHUFFLE_GROUPS)
    return x, 0, 0, 0, 0


def _elementwise(row, xs):
    # torch broadcasting (right-aligned, sizes equal or one of them 1); flops = numel(y)
    a, b = xs
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    y = []
    for p, q in zip(a, b):
        _check(p != q and p != 1 and q != 1, BROADCAST)
        y.append(q if p == 1 else p)
    y = tuple(y)
    return y, 0, 0, 0, _numel(y)


def _cat(row, xs):
    # y[dim] = sum of the inputs' x[dim]; every other size equal
    first = xs[0]
    ndim = len(first)
    dim = _norm_dim(row[DIM0], ndim)
    total = 0
    for x in xs:
        _check(len(x) != ndim, CAT_SHAPE)
        _check(any(x[i] != first[i] for i in range(ndim) if i != dim), CAT_SHAPE)
        total = _c(total + x[dim])
    y = (*first[:dim], total, *first[dim + 1:])
    _numel(y)
    return y, 0, 0, 0, 0


def _slice(row, xs):
    # y[dim] = length (the piece x[dim][start : start + length])
    x = xs[0]
    dim = _norm_dim(row[DIM0], len(x))
    start, length = row[K0], row[K0 + 1]
    _check(start < 0 or length < 1, BAD_FIELD)
    _check(start + length > x[dim], SLICE_RANGE)
    return (*x[:dim], length, *x[dim + 1:]), 0, 0, 0, 0


_ACTIVATION_FLOPS = {
    "ReLU": 1, "ReLU6": 2, "LeakyReLU": 2, "ELU": 4, "GELU": 5, "SiLU": 4,
    "Sigmoid": 3, "Tanh": 1, "Hardswish": 5, "Hardsigmoid": 4,
}

_HANDLERS = {
    OPS["Identity"]: _identity,
    OPS["Linear"]: _linear,
    OPS["LayerNorm"]: _layernorm,
    OPS["GroupNorm"]: _groupnorm,
    OPS["PReLU"]: _prelu,
    OPS["Softmax"]: _softmax,
    OPS["Flatten"]: _flatten,
    OPS["ZeroPad2d"]: _zeropad2d,
    OPS["Upsample"]: _upsample,
    OPS["ChannelShuffle"]: _channel_shuffle,
    OPS["Add"]: _elementwise,
    OPS["Mul"]: _elementwise,
    OPS["Cat"]: _cat,
    OPS["Slice"]: _slice,
}
for _d in (1, 2, 3):
    _HANDLERS[OPS[f"Conv{_d}d"]] = partial(_conv, _d)
    _HANDLERS[OPS[f"ConvTranspose{_d}d"]] = partial(_conv_transpose, _d)
    _HANDLERS[OPS[f"BatchNorm{_d}d"]] = partial(_batchnorm, _d)
    _HANDLERS[OPS[f"MaxPool{_d}d"]] = partial(_pool, _d, True)
    _HANDLERS[OPS[f"AvgPool{_d}d"]] = partial(_pool, _d, False)
    _HANDLERS[OPS[f"AdaptiveAvgPool{_d}d"]] = partial(_adaptive_pool, _d, False)
    _HANDLERS[OPS[f"AdaptiveMaxPool{_d}d"]] = partial(_adaptive_pool, _d, True)
for _name, _per_element in _ACTIVATION_FLOPS.items():
    _HANDLERS[OPS[_name]] = partial(_activation, _per_element)
del _d, _name, _per_element

# number of inputs per op: an int (exact) or None (>= 1); ops not listed take exactly 1
_ARITY = {OPS["Add"]: 2, OPS["Mul"]: 2, OPS["Cat"]: None}


# ---- driver -----------------------------------------------------------------------------------


def _tolist(v):
    return v.tolist() if hasattr(v, "tolist") else list(v)


def _padded(shape):
    return list(shape) + [0] * (MAX_NDIM - len(shape))


def _arch_inputs(a, arrays):
    """The shapes (batch first) of architecture a's network inputs; fails on a corrupted header."""
    layers, extra, arch_off, in_off, in_shape, in_ndim, batch = arrays
    _check(a + 1 >= len(in_off) or a >= len(batch), BAD_FIELD)
    lo, hi = arch_off[a], arch_off[a + 1]
    _check(not (0 <= lo <= hi <= len(layers)), BAD_FIELD)
    ilo, ihi = in_off[a], in_off[a + 1]
    _check(not (0 <= ilo < ihi <= len(in_shape)) or ihi > len(in_ndim), BAD_FIELD)
    n = batch[a]
    inputs = []
    for j in range(ilo, ihi):
        nd = in_ndim[j]
        _check(nd < 1 or nd > MAX_NDIM - 1 or len(in_shape[j]) < nd, BAD_FIELD)
        shape = (n, *in_shape[j][:nd])
        _check(min(shape) < 1 or max(shape) > MAX_DIM, BAD_FIELD)
        _numel(shape)
        inputs.append(shape)
    _c(sum(_numel(x) for x in inputs))  # all inputs are live at once
    return inputs


def _resolve(ref, index, shapes, inputs):
    """The shape an input reference points to: layer `ref` (< index) or network input -1-ref."""
    if ref >= 0:
        _check(ref >= index, BAD_INPUT_REF)
        return shapes[ref]
    j = -1 - ref
    _check(j >= len(inputs), BAD_INPUT_REF)
    return inputs[j]


def _layer(index, row, extra, shapes, inputs):
    """One row: resolve inputs -> op code -> number of inputs -> the op's own checks and counts.

    Returns (y, params, buffers, macs, flops, activation elements).
    """
    nsrc = row[NSRC]
    xs = [_resolve(row[SRC], index, shapes, inputs)]
    if nsrc > 1:
        xoff = row[XOFF]
        _check(xoff < 0 or xoff + nsrc - 1 > len(extra), BAD_INPUT_REF)
        xs += [_resolve(r, index, shapes, inputs) for r in extra[xoff:xoff + nsrc - 1]]
    op = row[OP]
    handler = _HANDLERS.get(op)
    _check(handler is None, UNKNOWN_OP)
    arity = _ARITY.get(op, 1)
    _check(nsrc < 1 if arity is None else nsrc != arity, BAD_FIELD)
    y, params, buffers, macs, flops = handler(row, xs)
    _check(max(y) > MAX_DIM, OVERFLOW)
    numel = _numel(y)
    if row[FLAGS] & F_UNUSED:  # constructed but never called: params and buffers only
        return tuple(y), params, buffers, 0, 0, 0
    return tuple(y), params, buffers, macs, flops, numel


_CONV_OPS = {OPS[n] for n in ("Conv1d", "Conv2d", "Conv3d")}
_CONVT_OPS = {OPS[n] for n in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")}
_POOL_OPS = {OPS[f"{k}Pool{d}d"] for k in ("Max", "Avg") for d in (1, 2, 3)}


def _convention_terms(row, x, y, params, macs, flops):
    """The per-layer terms conventions weigh, in cnncore.conventions.TERMS order."""
    op = row[OP]
    out = _numel(y)
    bias_out = out if row[FLAGS] & F_BIAS and (op in _CONV_OPS | _CONVT_OPS or op == OPS["Linear"]) else 0
    kvol_out = 0
    if op in _CONV_OPS | _CONVT_OPS | _POOL_OPS:
        # spatial dims: Conv1d..3d and ConvTranspose1d..3d are ops 1..6, the pools 25..30, in 1-2-3 order
        d = (op - OPS["MaxPool1d"]) % 3 + 1 if op in _POOL_OPS else (op - 1) % 3 + 1
        kvol_out = _mul(out, _mul(*_fields(row, _K, d)))
    # a (transposed) convolution counted as a direct one: each output a dot of (C_in / groups) * kvol
    out_dot = macs if op == OPS["Linear"] else 0
    if op in _CONV_OPS | _CONVT_OPS and row[GROUPS] >= 1:
        out_dot = _mul(kvol_out, x[1] // row[GROUPS])
    norms = {OPS[n] for n in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm")}
    affine_in = _numel(x) if row[FLAGS] & F_AFFINE and op in norms else 0
    # Upsample's output once per mode (codes 0..4: nearest, linear, bilinear, bicubic, trilinear),
    # so a tool may weigh nearest and bilinear differently
    per_mode = [out if op == OPS["Upsample"] and row[DIM0] == mode else 0 for mode in range(5)]
    # size mode (K0 != 0): the size as calflops / DeepSpeed multiply it out: one value (DIM1 = 0)
    # is taken alone, else the product of the DIM1 values given; scale mode: numel in and out
    size_mode = op == OPS["Upsample"] and row[K0] != 0
    scale_mode = op == OPS["Upsample"] and row[K0] == 0
    up_size = _mul(*row[K0:K0 + max(1, min(row[DIM1], 3))]) if size_mode else 0
    bn = {OPS[n] for n in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")}
    batchstats_in = _numel(x) if op in bn and not row[FLAGS] & F_TRACK else 0
    avg_window = 0
    if op in {OPS[f"AvgPool{d}d"] for d in (1, 2, 3)}:
        # window j covers [j*S - P, j*S - P + K) clipped to the padded input [-P, in + P): K less
        # j*S + K - (in + 2P) for every j from first_over (the first window that overhangs) on
        avg_window = _mul(y[0], y[1])
        for i in range(len(y) - 2):
            k, s, p, n, m = row[K0 + i], row[S0 + i], row[P0 + i], x[2 + i], y[2 + i]
            first_over = (n + 2 * p - k) // s + 1
            over = max(0, m - first_over)  # windows j = first_over .. m - 1
            cut = s * (first_over + m - 1) * over // 2 + (k - n - 2 * p) * over
            avg_window = _mul(avg_window, m * k - cut)
    sym_macs, sym_bias_out = macs, bias_out
    if op in _CONV_OPS and row[FLAGS] & F_SAME:
        # calflops / DeepSpeed size a padding='same' conv as if padded d(k-1)//2 on both sides
        dims = []
        for i in range(len(x) - 2):
            k, dil = row[K0 + i], row[D0 + i]
            dims.append(x[2 + i] + 2 * (dil * (k - 1) // 2) - dil * (k - 1))
        sym_out = _mul(y[0], y[1], *dims)
        sym_bias_out = sym_out if row[FLAGS] & F_BIAS else 0
        sym_macs = _mul(sym_out, x[1] // row[GROUPS], *_fields(row, _K, len(dims)))
    return [macs, flops, out, _numel(x), bias_out, params, kvol_out, 1, out_dot, _mul(params, x[0]),
            affine_in] + per_mode + [up_size, _numel(x) if scale_mode else 0, out if scale_mode else 0,
                                     batchstats_in, avg_window, sym_macs, sym_bias_out,
                                     macs if op in _CONV_OPS and row[FLAGS] & F_SAME else 0]


def count_arrays(arrays: dict, per_layer: bool = False, conv_weights=None) -> dict:
    """Count every architecture of the seven packed arrays (docs/format.md).

    Returns a dict of Python lists, one entry per architecture: ``params``, ``buffers``, ``macs``,
    ``flops``, ``activation_elements``, ``output_shape`` (5 ints, batch first, trailing 0),
    ``output_ndim``, ``error`` (0 = valid) and ``error_layer`` (-1 when valid). With
    ``per_layer=True`` also one entry per layer row: ``layer_params``, ``layer_buffers``,
    ``layer_macs``, ``layer_flops``, ``layer_shape`` and ``layer_ndim`` (rows from the failing one
    on are 0 in an invalid architecture). Bad values never raise: they are error codes.
    """
    layers = [list(r) + [0] * (N_FIELDS - len(r)) for r in _tolist(arrays["layers"])]
    extra = _tolist(arrays["extra_src"])
    arch_off = _tolist(arrays["arch_offsets"])
    in_off = _tolist(arrays["input_offsets"])
    in_shape = [list(r) for r in _tolist(arrays["input_shape"])]
    in_ndim = _tolist(arrays["input_ndim"])
    batch = _tolist(arrays["batch_size"])
    packed = (layers, extra, arch_off, in_off, in_shape, in_ndim, batch)

    n_arch = max(len(arch_off) - 1, 0)
    n_layers = len(layers)
    out = {k: [0] * n_arch for k in ("params", "buffers", "macs", "flops", "activation_elements",
                                     "peak_activation_elements", "output_ndim", "error")}
    out["output_shape"] = [[0] * MAX_NDIM for _ in range(n_arch)]
    out["error_layer"] = [-1] * n_arch
    n_conv = len(conv_weights) if conv_weights else 0
    if n_conv:  # conventions of other tools: conv_weights[j][op (+ N_OPS if functional, + 2 N_OPS if another call)][term] (conventions.py)
        out["conventions"] = [[0] * n_arch for _ in range(n_conv)]
    if per_layer:
        for k in ("layer_params", "layer_buffers", "layer_macs", "layer_flops", "layer_ndim"):
            out[k] = [0] * n_layers
        out["layer_shape"] = [[0] * MAX_NDIM for _ in range(n_layers)]

    for a in range(n_arch):
        rows = []  # (global row, shape, params, buffers, macs, flops) of the rows counted so far
        index = -1  # a failure before row 0 (the network inputs) is reported at -1
        try:
            inputs = _arch_inputs(a, packed)
            lo, hi = arch_off[a], arch_off[a + 1]
            shapes = []
            totals = [0, 0, 0, 0, 0]  # params, buffers, macs, flops, activation_elements
            conv = [0] * n_conv
            for index, g in enumerate(range(lo, hi)):
                y, params, buffers, macs, flops, act = _layer(index, layers[g], extra, shapes, inputs)
                if n_conv and not layers[g][FLAGS] & F_UNUSED:  # only layers that run
                    x = _resolve(layers[g][SRC], index, shapes, inputs)
                    terms = _convention_terms(layers[g], x, y, params, macs, flops)
                    # a row flagged functional (F.relu, not nn.ReLU) reads the second half of the table
                    table_row = layers[g][OP] + (N_OPS if layers[g][FLAGS] & F_FUNCTIONAL else 2 * N_OPS if layers[g][FLAGS] & F_CALL else 0)
                    for j in range(n_conv):
                        w = conv_weights[j][table_row]
                        for t in range(len(terms)):  # term by term, each step within int64
                            if w[t]:
                                conv[j] = _c(conv[j] + _mul(w[t], terms[t]))
                for t, v in enumerate((params, buffers, macs, flops, act)):
                    totals[t] = _c(totals[t] + v)
                # live elements never exceed the inputs plus all activations: keep that in int64
                _c(totals[4] + sum(_numel(x) for x in inputs))
                shapes.append(y)
                rows.append((g, y, params, buffers, macs, flops))
            out_index = max((i for i, g in enumerate(range(lo, hi)) if layers[g][FLAGS] & F_OUTPUT),
                            default=len(shapes) - 1)
            y = shapes[out_index] if shapes else inputs[0]
            peak = _peak_live(layers[lo:hi], extra, inputs, shapes, out_index)
        except _Fail as fail:
            out["error"][a] = fail.code
            out["error_layer"][a] = index
        else:
            for k, v in zip(("params", "buffers", "macs", "flops", "activation_elements"), totals):
                out[k][a] = v
            out["peak_activation_elements"][a] = peak
            for j in range(n_conv):
                out["conventions"][j][a] = conv[j]
            out["output_shape"][a] = _padded(y)
            out["output_ndim"][a] = len(y)
        if per_layer:
            for g, y, params, buffers, macs, flops in rows:
                out["layer_params"][g] = params
                out["layer_buffers"][g] = buffers
                out["layer_macs"][g] = macs
                out["layer_flops"][g] = flops
                out["layer_shape"][g] = _padded(y)
                out["layer_ndim"][g] = len(y)
    return out


_VIEW_OPS = {OPS["Identity"], OPS["Flatten"], OPS["Slice"]}  # torch returns views: no new memory


def _peak_live(rows, extra, inputs, shapes, out_index):
    """Largest number of live tensor elements while the layers run in order (docs/conventions.md).

    A tensor is a storage: a new one per layer, except views, which share their source's. It lives
    from its layer until its last reader has run; model outputs live to the end; network inputs
    are live at the start. A layer's output is allocated while its inputs are still live.
    """
    storage = {}  # tensor ref ("in", j) / ("row", k) -> its storage key
    size = {}  # storage key -> elements
    last = {}  # storage key -> index of the last layer that reads it (len(rows): never freed)
    for j, shape in enumerate(inputs):
        storage[("in", j)] = ("in", j)
        size[("in", j)] = _numel(shape)
        last[("in", j)] = -1

    def ref_key(ref):
        return ("row", ref) if ref >= 0 else ("in", -1 - ref)

    def refs_of(k, row):
        out = [row[SRC]]
        if row[NSRC] > 1:
            out += extra[row[XOFF]:row[XOFF] + row[NSRC] - 1]
        return out

    end = len(rows)
    for k, row in enumerate(rows):
        if row[OP] in _VIEW_OPS:
            storage[("row", k)] = storage[ref_key(row[SRC])]
        else:
            storage[("row", k)] = ("row", k)
            size[("row", k)] = 0 if row[FLAGS] & F_UNUSED else _numel(shapes[k])
            last[("row", k)] = k
        if not row[FLAGS] & F_UNUSED:
            for ref in refs_of(k, row):
                key = storage[ref_key(ref)]
                last[key] = max(last[key], k)
        if row[FLAGS] & F_OUTPUT:
            last[storage[("row", k)]] = end
    last[storage[("row", out_index)] if rows else ("in", 0)] = end

    live = sum(size[("in", j)] for j in range(len(inputs)))
    _c(live)
    peak = live
    freed = set()
    for key in [("in", j) for j in range(len(inputs))]:
        if last[key] == -1:
            live -= size[key]
            freed.add(key)
    for k, row in enumerate(rows):
        if row[FLAGS] & F_UNUSED:
            continue
        own = storage[("row", k)]
        if own == ("row", k):
            live = _c(live + size[own])
        peak = max(peak, live)
        for key in {storage[ref_key(ref)] for ref in refs_of(k, row)} | {own}:
            if last[key] == k and key not in freed:
                live -= size[key]
                freed.add(key)
    return peak


# ---- public entry points ----------------------------------------------------------------------


def count(model, input_shape=None, batch_size=None, dtype="float32", n_threads=None, conventions=()):
    """Count a model (-> Result) or a cc.Packed batch (-> BatchResult) with this pure-Python twin.

    The same as ``cnncore.count(..., backend="reference")``: the same arguments, results and error
    codes; slow, and independent of the compiled core. n_threads is accepted and ignored.
    """
    from cnncore import counting

    return counting.count(model, input_shape, batch_size=batch_size, dtype=dtype,
                          n_threads=n_threads, backend="reference", conventions=conventions)


def summary(model, input_shape=None, batch_size=None, dtype="float32"):
    """The per-layer table of ``cnncore.summary``, computed by the reference."""
    from cnncore import counting

    return counting.summary(model, input_shape, batch_size=batch_size, dtype=dtype,
                            backend="reference")
