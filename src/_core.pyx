# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""cnncore's counting core: per-layer arithmetic over the packed arrays of docs/format.md.

Private. The public API (cnncore.counting) validates and allocates with numpy, then calls
`count_packed`, which walks every architecture without the GIL (OpenMP `prange` when built with
it). Every formula and the order of checks follow docs/conventions.md; cnncore.reference is the
independent pure-Python twin that the tests hold this file to.

Shape records: a tensor's shape lives in REC int64 slots: [ndim, numel, dim0 .. dim4] (dim0 = N).
Errors are status codes returned up the call chain; nothing here raises or allocates per item.
"""
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.math cimport floor
from libc.string cimport memcpy, memset
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange, parallel, threadid

cdef extern from * nogil:
    void __builtin_prefetch(const void* p, int rw, int locality)

cdef extern from * nogil:
    """
    /* An empty asm that may change p: the compiler keeps one register for p and derives no other
       pointer from the expression that made it (gcc kept three induction variables for
       _graph_fast's record pointer, two of them on the stack: ab 1.02-1.03x without them) */
    #if defined(__GNUC__)
    #define CC_OPAQUE(p) __asm__("" : "+r"(p))
    #else
    #define CC_OPAQUE(p)
    #endif
    """
    void CC_OPAQUE(int64_t* p)

cdef extern from "_checked.h" nogil:
    bint cc_mul(int64_t a, int64_t b, int64_t* r)
    bint cc_add(int64_t a, int64_t b, int64_t* r)
    int cc_bits(uint64_t x)
    uint64_t cc_pair_signs(const int32_t* p, int low)
    bint cc_likely(bint x)
    int CC_OPENMP
    int cc_max_threads()

# ---- the format's numbers (mirrors cnncore/_format.py; tests/test_format.py checks they agree) ----
cdef enum:
    NF = 25
    REC = 8
    C_OP = 0
    C_SRC = 1
    C_NSRC = 2
    C_XOFF = 3
    C_IN = 4
    C_OUT = 5
    C_GROUPS = 6
    C_FLAGS = 7
    C_DIM0 = 8
    C_DIM1 = 9
    C_K = 10
    C_S = 13
    C_P = 16
    C_D = 19
    C_O = 22

include "_format.pxi"

cdef enum:
    E_OK = 0
    E_UNKNOWN_OP = 1
    E_BAD_INPUT_REF = 2
    E_BAD_FIELD = 3
    E_NDIM = 4
    E_IN_CHANNELS = 5
    E_GROUPS = 6
    E_OUTPUT_SIZE = 7
    E_KERNEL_TOO_LARGE = 8
    E_POOL_PADDING = 9
    E_SAME_STRIDE = 10
    E_OUTPUT_PADDING = 11
    E_NORM_SHAPE = 12
    E_NORM_GROUPS = 13
    E_DIM_RANGE = 14
    E_BROADCAST = 15
    E_CAT_SHAPE = 16
    E_SHUFFLE_GROUPS = 17
    E_UPSAMPLE = 18
    E_OVERFLOW = 19
    E_FLATTEN_ORDER = 20
    E_SLICE_RANGE = 21
    E_SINGLE_VALUE = 22

# per-layer terms that conventions weigh (cnncore/conventions.py names them; docs/conventions.md)
cdef enum:
    T_MACS = 0  # the layer's MACs
    T_FLOPS = 1  # cnncore's flops
    T_OUT = 2  # numel(y)
    T_IN = 3  # numel of the first input
    T_BIAS_OUT = 4  # numel(y) for a convolution / linear layer with a bias, else 0
    T_PARAMS = 5  # the layer's params
    T_KVOL_OUT = 6  # numel(y) * kernel volume, for convolutions and pooling windows
    T_ONE = 7  # 1 per layer that runs
    T_OUT_DOT = 8  # numel(y) * (in_channels / groups) * kernel volume for (transposed) convolutions;
                   # the MACs for linear layers (a transposed conv counted as if it were direct)
    T_PARAMS_N = 9  # params * N (the batch: the input's first dimension)
    T_AFFINE_IN = 10  # numel of the input of a normalisation with affine weights, else 0
    T_UP_NEAREST = 11  # numel(y) of an Upsample in mode nearest (T_UP_NEAREST + mode for the others)
    T_UP_LINEAR = 12
    T_UP_BILINEAR = 13
    T_UP_BICUBIC = 14
    T_UP_TRILINEAR = 15
    T_UP_SIZE = 16  # an Upsample in size mode: its size as calflops/DeepSpeed read it (K0 if one value, else prod K)
    T_UP_SCALE_IN = 17  # an Upsample in scale mode: numel(x)
    T_UP_SCALE_OUT = 18  # an Upsample in scale mode: numel(y)
    T_BATCHSTATS_IN = 19  # numel(x) of a BatchNorm without running stats (batch statistics in eval too)
    T_AVG_WINDOW = 20  # AvgPool: N * C * prod over dims of the window sizes clipped to the padded input
    T_SYM_MACS = 21  # a direct conv's MACs with padding='same' taken as d(k-1)//2 on both sides
    T_SYM_BIAS_OUT = 22  # its outputs so sized when it has a bias (else 0)
    T_SAME_MACS = 23  # the MACs of a direct conv with padding='same' (else 0)
    N_TERMS = 24

cdef enum:
    CHUNK = 256  # architectures a thread takes at a time in count_packed
    DIM_MAX = 2147483647  # every tensor dimension stays int32, so shape arithmetic is exact

# element-wise flop constants per activation op (docs/conventions.md), indexed by op - OP_RELU
cdef int64_t ACT_FLOPS[11]
ACT_FLOPS[:] = [1, 2, 2, 2, 4, 5, 4, 3, 1, 5, 4]
# upsampling flops per output element by mode: nearest, linear, bilinear, bicubic, trilinear
cdef int64_t UPS_FLOPS[5]
UPS_FLOPS[:] = [0, 3, 7, 31, 15]
# spatial dimensions each upsampling mode accepts (0 = any of 1..3)
cdef int UPS_NDIM[5]
UPS_NDIM[:] = [0, 1, 2, 2, 3]

ctypedef struct Cnt:
    int64_t params
    int64_t buffers
    int64_t macs
    int64_t flops


ctypedef struct Totals:
    # accumulated unsigned: each addend is in [0, 2^63), so a sum passes 2^63 - 1 exactly when its
    # top bit is set, and one test per layer replaces five overflow branches
    uint64_t params
    uint64_t buffers
    uint64_t macs
    uint64_t flops
    uint64_t act


cdef inline bint _accumulate(Totals* t, const Cnt* c, int64_t act, int64_t in_total) noexcept nogil:
    """Add a layer's counts; True on overflow. inputs + activations bound every live total, so
    keeping that sum in int64 keeps the liveness arithmetic exact too."""
    t.params += <uint64_t>c.params
    t.buffers += <uint64_t>c.buffers
    t.macs += <uint64_t>c.macs
    t.flops += <uint64_t>c.flops
    t.act += <uint64_t>act
    return ((t.params | t.buffers | t.macs | t.flops | (t.act + <uint64_t>in_total)) >> 63) != 0


cdef inline int _convention_terms(const int32_t* r, const int64_t* x, const int64_t* y, const Cnt* c,
                                  int64_t* t) noexcept nogil:
    """The per-layer terms of a counted layer (T_*); an error code if one overflows."""
    cdef int op = r[C_OP], d = 0, i
    cdef int64_t kv = 1
    t[T_MACS] = c.macs
    t[T_FLOPS] = c.flops
    t[T_OUT] = y[1]
    t[T_IN] = x[1]
    t[T_PARAMS] = c.params
    t[T_ONE] = 1
    t[T_BIAS_OUT] = y[1] if (r[C_FLAGS] & F_BIAS and (OP_CONV1D <= op <= OP_CONVT3D or op == OP_LINEAR)) else 0
    if OP_CONV1D <= op <= OP_CONV3D:
        d = op - OP_CONV1D + 1
    elif OP_CONVT1D <= op <= OP_CONVT3D:
        d = op - OP_CONVT1D + 1
    elif OP_MAXPOOL1D <= op <= OP_AVGPOOL3D:
        d = (op - OP_MAXPOOL1D) % 3 + 1
    for i in range(d):
        if cc_mul(kv, r[C_K + i], &kv):
            return E_OVERFLOW
    t[T_KVOL_OUT] = 0
    if d and cc_mul(y[1], kv, &t[T_KVOL_OUT]):
        return E_OVERFLOW
    t[T_OUT_DOT] = c.macs if op == OP_LINEAR else 0
    if OP_CONV1D <= op <= OP_CONVT3D and r[C_GROUPS] >= 1:
        if cc_mul(t[T_KVOL_OUT], x[3] / r[C_GROUPS], &t[T_OUT_DOT]):
            return E_OVERFLOW
    if cc_mul(c.params, x[2], &t[T_PARAMS_N]):
        return E_OVERFLOW
    t[T_AFFINE_IN] = x[1] if (r[C_FLAGS] & F_AFFINE and (OP_BN1D <= op <= OP_GROUPNORM)) else 0
    for i in range(5):  # Upsample per mode (modes 0..4 in the order of the T_UP_* terms)
        t[T_UP_NEAREST + i] = y[1] if (op == OP_UPSAMPLE and r[C_DIM0] == i) else 0
    t[T_UP_SIZE] = 0
    t[T_UP_SCALE_IN] = 0
    t[T_UP_SCALE_OUT] = 0
    if op == OP_UPSAMPLE and r[C_K] != 0:  # size mode (the op checked the sizes: >= 1, int32)
        t[T_UP_SIZE] = r[C_K]
        for i in range(1, r[C_DIM1] if r[C_DIM1] <= 3 else 3):
            if cc_mul(t[T_UP_SIZE], r[C_K + i], &t[T_UP_SIZE]):
                return E_OVERFLOW
    elif op == OP_UPSAMPLE:
        t[T_UP_SCALE_IN] = x[1]
        t[T_UP_SCALE_OUT] = y[1]
    t[T_SYM_MACS] = c.macs
    t[T_SYM_BIAS_OUT] = t[T_BIAS_OUT]
    t[T_SAME_MACS] = c.macs if (OP_CONV1D <= op <= OP_CONV3D and r[C_FLAGS] & F_SAME) else 0
    if OP_CONV1D <= op <= OP_CONV3D and r[C_FLAGS] & F_SAME and r[C_GROUPS] >= 1:
        # stride 1: each dimension one shorter where the total padding d(k-1) is odd
        sym = y[2] * y[3]
        for i in range(d):
            if cc_mul(sym, y[4 + i] - (r[C_D + i] * <int64_t>(r[C_K + i] - 1)) % 2, &sym):
                return E_OVERFLOW
        t[T_SYM_BIAS_OUT] = sym if r[C_FLAGS] & F_BIAS else 0
        if cc_mul(sym, kv, &sym) or cc_mul(sym, x[3] / r[C_GROUPS], &t[T_SYM_MACS]):
            return E_OVERFLOW
    t[T_BATCHSTATS_IN] = x[1] if (OP_BN1D <= op <= OP_BN3D and not r[C_FLAGS] & F_TRACK) else 0
    t[T_AVG_WINDOW] = 0
    if OP_AVGPOOL1D <= op <= OP_AVGPOOL3D:
        # y_i windows of K_i, less what the last one (ceil_mode) reaches past the right padding
        if cc_mul(y[2], y[3], &kv):
            return E_OVERFLOW
        for i in range(op - OP_AVGPOOL1D + 1):
            if cc_mul(kv, y[4 + i] * r[C_K + i] - max(0, (y[4 + i] - 1) * r[C_S + i] + r[C_K + i]
                                                        - x[4 + i] - 2 * r[C_P + i]), &kv):
                return E_OVERFLOW
        t[T_AVG_WINDOW] = kv
    return E_OK


# a convention's weight row compacted (count_packed builds it): [k, term_1, weight_1, ..., term_k, weight_k],
# the nonzero weights in term order, so a row of zeros (most ops of most tools) costs one load
cdef enum:
    W_STRIDE = 1 + 2 * N_TERMS


cdef int64_t* _compact_weights(const int64_t[:, :, ::1] w) except NULL:
    """The (n_conv, 3 * N_OPS, N_TERMS) weights as compacted rows of W_STRIDE (free with PyMem_Free)."""
    cdef Py_ssize_t j, r, m, k
    cdef int64_t* e
    cdef int64_t* c = <int64_t*>PyMem_Malloc(w.shape[0] * 3 * N_OPS * W_STRIDE * sizeof(int64_t))
    if c == NULL:
        raise MemoryError()
    for j in range(w.shape[0]):
        for r in range(3 * N_OPS):
            e = c + (j * 3 * N_OPS + r) * W_STRIDE
            k = 0
            for m in range(N_TERMS):
                if w[j, r, m] != 0:
                    e[1 + 2 * k] = m
                    e[2 + 2 * k] = w[j, r, m]
                    k += 1
            e[0] = k
    return c


cdef inline int _add_conventions(const int64_t* W, int n_conv, int op, const int64_t* t,
                                 int64_t* out, int64_t os) noexcept nogil:
    """out[j * os] += sum over terms of weight[j, op, term] * t[term], for every convention j
    (op is the weight row: the op code, + N_OPS for a row flagged functional; W is compacted)."""
    cdef int j, i
    cdef int64_t v
    cdef const int64_t* e
    for j in range(n_conv):
        e = W + (j * 3 * N_OPS + op) * W_STRIDE
        for i in range(e[0]):
            if cc_mul(e[2 + 2 * i], t[e[1 + 2 * i]], &v) or cc_add(out[j * os], v, &out[j * os]):
                return E_OVERFLOW
    return E_OK


cdef inline void _store_totals(const Totals* t, int64_t peak, int64_t* tot, int64_t ts) noexcept nogil:
    # tot[j * ts]: one contiguous output array per count (ts = the number of architectures)
    tot[0] = <int64_t>t.params
    tot[ts] = <int64_t>t.buffers
    tot[2 * ts] = <int64_t>t.macs
    tot[3 * ts] = <int64_t>t.flops
    tot[4 * ts] = <int64_t>t.act
    tot[5 * ts] = peak


# SHAPE_MASK[nd][i]: all ones when i < nd: a record's first five dims padded with zeros, no branch
cdef int64_t SHAPE_MASK[6][5]
SHAPE_MASK[:] = [[-1 if i < nd else 0 for i in range(5)] for nd in range(6)]


cdef inline void _store_shape(const int64_t* rec, int64_t* out_shape, int32_t* out_ndim) noexcept nogil:
    """An architecture's output: the record's ndim, and its shape padded with zeros without a
    branch per slot (a slot past ndim is masked: its record entry is a dimension the op did not
    write, any value, never used); all five read before any is written, so the compiler may pair
    them in vector registers."""
    cdef int64_t nd = rec[0]
    cdef const int64_t* m = SHAPE_MASK[min(<uint64_t>nd, <uint64_t>5)]
    cdef int64_t s0 = rec[2] & m[0], s1 = rec[3] & m[1], s2 = rec[4] & m[2], s3 = rec[5] & m[3], s4 = rec[6] & m[4]
    out_ndim[0] = <int32_t>nd
    out_shape[0] = s0
    out_shape[1] = s1
    out_shape[2] = s2
    out_shape[3] = s3
    out_shape[4] = s4


# ---- small helpers ------------------------------------------------------------------------------
cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    # b > 0; C division truncates toward zero, torch's shape rules floor
    cdef int64_t q = a / b
    if (a % b != 0) and (a < 0):
        q -= 1
    return q


cdef inline int _finish(int64_t* y) noexcept nogil:
    """Check y's dims against DIM_MAX and store numel(y) in y[1]."""
    return _finish_n(y, <int>y[0])


cdef inline int _finish_n(int64_t* y, int nd) noexcept nogil:
    """_finish for a caller that knows y's ndim (a literal lets the compiler unroll)."""
    cdef int64_t n, outside = 0
    cdef int i
    for i in range(nd):  # any dimension outside 0 .. DIM_MAX makes the OR negative
        outside |= y[2 + i] | (DIM_MAX - y[2 + i])
    if outside < 0 or nd < 2:
        return _finish_each(y, nd)
    # two dimensions in 0 .. 2^31 - 1 multiply exactly: one overflow test per pair of dimensions
    n = y[2] * y[3]
    for i in range(2, nd - 1, 2):
        if cc_mul(n, y[2 + i] * y[3 + i], &n):
            return E_OVERFLOW
    if nd & 1 and cc_mul(n, y[1 + nd], &n):
        return E_OVERFLOW
    y[1] = n
    return E_OK


cdef inline int _finish_spatial(int64_t* y, int d) noexcept nogil:
    """_finish for a record (N, C, d spatial dims >= 0) whose N and C are below 2^31 (taken from
    a checked record or a row's int32 field): only the spatial dims need the range test."""
    cdef int64_t n = y[2] * y[3], big = 0  # (exact)
    cdef int i
    for i in range(d):
        big |= DIM_MAX - y[4 + i]  # negative once a dimension passes 2^31 - 1
    if big < 0:
        return E_OVERFLOW
    if d == 1:
        if cc_mul(n, y[4], &n):
            return E_OVERFLOW
    elif cc_mul(n, y[4] * y[5], &n) or (d == 3 and cc_mul(n, y[6], &n)):
        return E_OVERFLOW
    y[1] = n
    return E_OK


cdef int _finish_each(int64_t* y, int nd) noexcept nogil:
    """_finish_n one dimension at a time (rare: fewer than 2 dimensions, or one out of range)."""
    cdef int64_t n = 1
    cdef int i
    for i in range(nd):
        if y[2 + i] > DIM_MAX:
            return E_OVERFLOW
        if cc_mul(n, y[2 + i], &n):
            return E_OVERFLOW
    y[1] = n
    return E_OK


cdef inline void _copy(const int64_t* x, int64_t* y) noexcept nogil:
    memcpy(y, x, REC * sizeof(int64_t))


cdef inline int64_t _div(int64_t a, int64_t b) noexcept nogil:
    # a >= 0, 1 <= b < 2^31; strides are nearly always 1 or 2: one branch that nearly always goes
    # the same way (a branch per value mispredicts on mixed strides), and a hardware divide is slow
    # (a 32-bit one is several times faster than a 64-bit one)
    if cc_likely(b <= 2):
        return a >> (b - 1)
    if a <= <int64_t>4294967295:
        return <uint32_t>a / <uint32_t>b
    return a / b


cdef inline bint _divides(int64_t g, int64_t a) noexcept nogil:
    # 1 <= g, 0 <= a < 2^31 (channel counts). No test for g == 1: groups vary from layer to layer,
    # and a mispredicted branch costs more than the divide (which the quotient a / g shares)
    return <uint32_t>a % <uint32_t>g == 0


cdef inline int _scaled(int64_t n, int64_t k, int64_t* out) noexcept nogil:
    return E_OVERFLOW if cc_mul(n, k, out) else E_OK


# ---- convolutions -------------------------------------------------------------------------------
cdef inline uint64_t _int32_pair(const int32_t* p) noexcept nogil:
    """Two adjacent int32 as one word (in memory order, as another pair made the same way)."""
    cdef uint64_t w
    memcpy(&w, p, sizeof(w))
    return w


cdef extern from * nogil:
    """
    #define CC_PAIR_OF_ONES 0x0000000100000001ULL  /* _int32_pair of (1, 1), in either byte order */
    #define CC_PAIR_OF_SIGNS 0x8000000080000000ULL  /* the sign bits of both halves */
    """
    uint64_t CC_PAIR_OF_ONES
    uint64_t CC_PAIR_OF_SIGNS


cdef inline bint _window_bad(const int32_t* r, int d, bint dilated) noexcept nogil:
    """Whether a window field of dims 0 .. d-1 is out of range: kernel, stride (and dilation when
    dilated) >= 1, padding >= 0."""
    cdef int64_t bad = 0
    cdef int i
    if d == 2:  # two dims at once: (K0, K1), (S0, S1), (P0, P1), (D0, D1) are pairs (cc_pair_signs)
        return (cc_pair_signs(r + C_K, 1) | cc_pair_signs(r + C_S, 1) | cc_pair_signs(r + C_P, 0)
                | (cc_pair_signs(r + C_D, 1) if dilated else 0)) != 0
    for i in range(d):  # any violation makes the OR negative
        bad |= (<int64_t>r[C_K + i] - 1) | (<int64_t>r[C_S + i] - 1) | r[C_P + i]
        if dilated:
            bad |= <int64_t>r[C_D + i] - 1
    return bad < 0


cdef inline int _conv_counts(int64_t inn, int64_t g, int64_t out, int64_t kvol, int64_t numel,
                             int64_t flags, Cnt* c) noexcept nogil:
    """A direct convolution's params, MACs and FLOPs from its channels (g divides inn), kernel volume
    and numel(y) >= out."""
    cdef int64_t n, t, bias
    if cc_mul(<uint32_t>inn / <uint32_t>g, kvol, &n):  # (the divide of _divides: no branch)
        return E_OVERFLOW
    # params = out*(n + bias); macs = numel(y)*n; flops = numel(y)*(2n - 1 + bias), bias 0 or 1
    # (arithmetic, not a branch: layers with and without a bias mix). n >= 1 and numel(y) >= out,
    # so flops >= macs and flops >= params: when flops fits, so do the other two
    bias = (flags & F_BIAS) != 0
    if cc_mul(n, 2, &t) or cc_mul(numel, t - 1 + bias, &c.flops):
        return E_OVERFLOW
    c.macs = numel * n
    c.params = out * (n + bias)
    return E_OK


cdef inline bint _keeps_size(const int32_t* r) noexcept nogil:
    """Whether a Conv2d row's window keeps its input's spatial size: stride and dilation (1, 1),
    kernel 2 * padding + 1 with padding >= 0 in both dims (so the window fields are valid too), as
    the 1x1 and the 3x3 padding-1 convs of MobileNets and ResNets: (x + 2p - (k - 1) - 1) / 1 + 1 = x.
    Both dims at once on int32 pairs: k == (p << 1) | 1 per half, and both sign bits clear in k and
    p (p >= 0; then 2p + 1 < 2^32 and k < 2^31 make the halves' equality the integers' one; the bit
    p << 1 carries across the halves lands on a bit the | 1 sets anyway)."""
    cdef uint64_t k = _int32_pair(r + C_K), p = _int32_pair(r + C_P)
    return ((_int32_pair(r + C_S) ^ CC_PAIR_OF_ONES) | (_int32_pair(r + C_D) ^ CC_PAIR_OF_ONES)
            | (k ^ ((p << 1) | CC_PAIR_OF_ONES)) | ((k | p) & CC_PAIR_OF_SIGNS)) == 0


cdef inline int _conv(const int32_t* r, int d, const int64_t* x, int64_t* y, Cnt* c,
                      bint look_same_size=False) noexcept nogil:
    cdef int64_t out = r[C_OUT], g = r[C_GROUPS], inn = r[C_IN], flags = r[C_FLAGS]
    cdef int64_t eff, padded, kvol, numel, batch
    cdef int64_t spatial[3]
    cdef int i
    # look_same_size (a literal): the caller is _graph_fast, where every record's dimensions are in
    # 1 .. DIM_MAX (network inputs are checked, every op checks its output's): a size-keeping Conv2d
    # (_keeps_size) then needs no window arithmetic and no check of its output's dims. On the stacks
    # of the chain path a pointwise-only test cost more than it saved (ab_core.py: 0.93-0.97x)
    cdef bint same_size = look_same_size and d == 2 and _keeps_size(r)
    # out, groups >= 1 and in >= 0 (any violation makes the OR negative), and the window's fields
    if ((out - 1) | (g - 1) | inn) < 0 or (not same_size and _window_bad(r, d, True)):
        return E_BAD_FIELD
    if flags & F_SAME:
        for i in range(d):
            if r[C_S + i] != 1:
                return E_SAME_STRIDE
    if x[0] != d + 2:
        return E_NDIM
    if (inn != 0) & (x[3] != inn):  # (one branch)
        return E_IN_CHANNELS
    inn = x[3]
    if not (_divides(g, inn) and _divides(g, out)):  # channels and groups are below 2^31
        return E_GROUPS
    if same_size:  # numel(y) = N out H W (N out and H W exact; dims in range: the input's)
        spatial[0] = x[4]  # (x read before y is written, as below)
        spatial[1] = x[5]
        batch = x[2]
        if cc_mul(batch * out, spatial[0] * spatial[1], &numel):
            return E_OVERFLOW
        y[0] = 4
        y[1] = numel
        y[2] = batch
        y[3] = out
        y[4] = spatial[0]
        y[5] = spatial[1]
        return _conv_counts(inn, g, out, <int64_t>r[C_K] * r[C_K + 1], numel, flags, c)
    # the output's spatial dims in locals: y is written once every field is read (the compiler
    # cannot know that y overlaps no field, and would load them again after a store)
    if flags & F_SAME:  # padding d(k-1) in all: the input's size
        for i in range(d):
            if x[4 + i] < 1:  # (padded < eff)
                return E_KERNEL_TOO_LARGE
            spatial[i] = x[4 + i]
    else:
        for i in range(d):  # every term < 2^33: exact
            eff = <int64_t>r[C_D + i] * (r[C_K + i] - 1) + 1
            padded = x[4 + i] + 2 * <int64_t>r[C_P + i]
            if padded < eff:
                return E_KERNEL_TOO_LARGE
            spatial[i] = _div(padded - eff, r[C_S + i]) + 1
    # every shape check passed: now the overflow checks (kernel volume, dims, numel, counts)
    kvol = r[C_K]
    for i in range(1, d):  # (two factors < 2^31 never overflow: only the third of a Conv3d can)
        if cc_mul(kvol, r[C_K + i], &kvol):
            return E_OVERFLOW
    y[0] = x[0]
    y[2] = x[2]
    y[3] = out
    for i in range(d):
        y[4 + i] = spatial[i]
    if _finish_spatial(y, d):
        return E_OVERFLOW
    return _conv_counts(inn, g, out, kvol, y[1], flags, c)


cdef inline int _conv_transpose(const int32_t* r, int d, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t out = r[C_OUT], g = r[C_GROUPS], inn = r[C_IN], flags = r[C_FLAGS]
    cdef int64_t kvol = 1, w, t, bias = 1 if flags & F_BIAS else 0
    cdef int i
    if out < 1 or g < 1 or inn < 0:
        return E_BAD_FIELD
    for i in range(d):
        if (r[C_K + i] < 1 or r[C_S + i] < 1 or r[C_D + i] < 1 or r[C_P + i] < 0
                or r[C_O + i] < 0):
            return E_BAD_FIELD
    if x[0] != d + 2:
        return E_NDIM
    if inn != 0 and x[3] != inn:
        return E_IN_CHANNELS
    inn = x[3]
    if inn % g != 0 or out % g != 0:
        return E_GROUPS
    for i in range(d):
        if r[C_O + i] >= r[C_S + i] and r[C_O + i] >= r[C_D + i]:
            return E_OUTPUT_PADDING
    y[0] = x[0]
    y[2] = x[2]
    y[3] = out
    for i in range(d):
        # (in-1)s - 2p + d(k-1) + op + 1: every term < 2^62, exact in int64
        y[4 + i] = ((x[4 + i] - 1) * r[C_S + i] - 2 * <int64_t>r[C_P + i]
                    + <int64_t>r[C_D + i] * (r[C_K + i] - 1) + r[C_O + i] + 1)
        if y[4 + i] < 1:
            return E_OUTPUT_SIZE
        if cc_mul(kvol, r[C_K + i], &kvol):
            return E_OVERFLOW
    if _finish(y):
        return E_OVERFLOW
    # weights (in, out/g, *k): params = in*(out/g)*kvol + bias*out; macs = numel(x)*(out/g)*kvol
    if cc_mul(out / g, kvol, &w) or cc_mul(inn, w, &c.params) or cc_add(c.params, bias * out, &c.params):
        return E_OVERFLOW
    if cc_mul(x[1], w, &c.macs):
        return E_OVERFLOW
    if cc_mul(c.macs, 2, &t) or cc_mul(y[1], bias, &c.flops) or cc_add(t, c.flops, &c.flops):
        return E_OVERFLOW
    return E_OK


cdef inline int _linear(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t out = r[C_OUT], inn = r[C_IN], bias = 1 if r[C_FLAGS] & F_BIAS else 0, t
    cdef int last = <int>x[0] + 1  # index of the last dim in the record
    if out < 1 or inn < 0:
        return E_BAD_FIELD
    if inn != 0 and x[last] != inn:
        return E_IN_CHANNELS
    inn = x[last]
    _copy(x, y)
    y[last] = out
    if x[0] == 2:  # (N, features): two dims < 2^31, numel(y) exact
        y[1] = x[2] * out
    elif _finish(y):
        return E_OVERFLOW
    # in, out < 2^31: params = in*out + bias*out < 2^63 and 2 in - 1 + bias exact; in >= 1, so
    # flops = numel(y)(2 in - 1 + bias) >= macs = numel(y) in: when flops fits, so do macs
    c.params = inn * out + bias * out
    t = 2 * inn - 1 + bias
    if cc_mul(y[1], t, &c.flops):
        return E_OVERFLOW
    c.macs = y[1] * inn
    return E_OK


# ---- normalisation ------------------------------------------------------------------------------
cdef inline int _batchnorm(const int32_t* r, int d, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t inn = r[C_IN], flags = r[C_FLAGS], ch
    if inn < 0:
        return E_BAD_FIELD
    if d == 1:
        if x[0] != 2 and x[0] != 3:
            return E_NDIM
    elif x[0] != d + 2:
        return E_NDIM
    ch = x[3]
    # torch checks channels only against the tensors it has (weights or running stats)
    if inn != 0 and ch != inn and flags & (F_AFFINE | F_TRACK):
        return E_IN_CHANNELS
    if not flags & F_TRACK and x[1] == ch:  # batch statistics over one value per channel
        return E_SINGLE_VALUE
    # channels < 2^31: 2C + 1 cannot overflow. affine: a weight, and a bias unless bias=False
    c.params = ch * (1 + (flags & F_BIAS != 0)) if flags & F_AFFINE else 0
    c.buffers = 2 * ch + 1 if flags & F_TRACK else 0
    return _scaled(x[1], 2 + (1 + (flags & F_BIAS != 0) if flags & F_AFFINE else 0), &c.flops)


cdef inline int _layernorm(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t nd = r[C_DIM0], flags = r[C_FLAGS], vol = 1
    cdef int i
    if nd < 1 or nd > 3:
        return E_BAD_FIELD
    for i in range(nd):
        if r[C_K + i] < 1:
            return E_BAD_FIELD
    if x[0] < nd:
        return E_NORM_SHAPE
    for i in range(nd):
        if x[2 + x[0] - nd + i] != r[C_K + i]:
            return E_NORM_SHAPE
        vol *= r[C_K + i]  # equals dims of x, whose numel fits int64
    if flags & F_AFFINE:
        c.params = vol * (2 if flags & F_BIAS else 1)  # vol <= numel(x) / N, so 2*vol fits
    return _scaled(x[1], 7 if flags & F_AFFINE else 5, &c.flops)


cdef inline int _groupnorm(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t g = r[C_GROUPS], inn = r[C_IN], flags = r[C_FLAGS]
    if g < 1 or inn < 1:
        return E_BAD_FIELD
    if inn % g != 0:
        return E_NORM_GROUPS
    if x[0] < 2:
        return E_NDIM
    if flags & F_AFFINE:
        if x[3] != inn:
            return E_IN_CHANNELS
    elif x[3] % g != 0:  # without weights torch only needs the groups to divide the channels
        return E_NORM_GROUPS
    if x[1] == g:  # statistics over one value per group
        return E_SINGLE_VALUE
    c.params = inn * (1 + (flags & F_BIAS != 0)) if flags & F_AFFINE else 0
    return _scaled(x[1], 5 + (1 + (flags & F_BIAS != 0) if flags & F_AFFINE else 0), &c.flops)


# ---- activations --------------------------------------------------------------------------------
cdef inline int _prelu(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t n = r[C_IN]
    if n < 1:
        return E_BAD_FIELD
    if n > 1:
        if x[0] < 2:
            return E_NDIM
        if x[3] != n:
            return E_IN_CHANNELS
    c.params = n
    return _scaled(x[1], ACT_FLOPS[OP_PRELU - OP_RELU], &c.flops)


cdef inline int _softmax(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t nd = x[0], dim = r[C_DIM0]
    if r[C_FLAGS] & F_IMPLICIT_DIM:
        dim = 0 if (nd == 0 or nd == 1 or nd == 3) else 1
    elif dim < -nd or dim >= nd:
        return E_DIM_RANGE
    if dim < 0:
        dim += nd
    # per row of n: n exps, n-1 adds, n divides -> 3*numel - rows (3*numel < 2^63 checked)
    if cc_mul(x[1], 3, &c.flops):
        return E_OVERFLOW
    c.flops -= x[1] / x[2 + dim]
    return E_OK


# ---- pooling ------------------------------------------------------------------------------------
cdef inline int _pool(const int32_t* r, int d, bint is_max, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t k, s, p, dl, num, o, kvol = 1, half_over = 0
    cdef int64_t spatial[3]
    cdef int i, ceil = (r[C_FLAGS] & F_CEIL) != 0
    if _window_bad(r, d, is_max):  # (avg pools have no dilation)
        return E_BAD_FIELD
    for i in range(d):  # padding > kernel // 2, i.e. 2 padding > kernel (k >= 1): one branch
        half_over |= <int64_t>r[C_K + i] - 2 * <int64_t>r[C_P + i]
    if half_over < 0:
        return E_POOL_PADDING
    if x[0] != d + 2:
        return E_NDIM
    if d == 3 and not is_max:  # ATen's avg_pool3d also wants the unpadded input >= the kernel
        for i in range(d):
            if x[4 + i] < r[C_K + i]:
                return E_KERNEL_TOO_LARGE
    for i in range(d):
        k = r[C_K + i]
        s = r[C_S + i]
        p = r[C_P + i]
        dl = r[C_D + i] if is_max else 1
        num = x[4 + i] + 2 * p - dl * (k - 1) - 1
        if ceil:
            o = _floordiv(num + s - 1, s) + 1
            if (o - 1) * s >= x[4 + i] + p:  # the last window must start inside input or left pad
                o -= 1
            if o < 1:
                return E_OUTPUT_SIZE
        elif num < 0:  # floor(num / s) + 1 < 1
            return E_OUTPUT_SIZE
        else:
            o = _div(num, s) + 1
        spatial[i] = o  # (y written after the fields are read, as in _conv)
    for i in range(d):  # (only the last of three factors can overflow: after every shape check)
        if cc_mul(kvol, r[C_K + i], &kvol):
            return E_OVERFLOW
    y[0] = x[0]
    y[2] = x[2]
    y[3] = x[3]
    for i in range(d):
        y[4 + i] = spatial[i]
    if _finish_spatial(y, d):
        return E_OVERFLOW
    # max: k-1 comparisons per output; avg: k-1 adds and one divide
    return _scaled(y[1], kvol - 1 if is_max else kvol, &c.flops)


cdef inline int64_t _gcd(int64_t a, int64_t b) noexcept nogil:
    # 1 <= a, b < 2^31 (dimensions): 32-bit divides; b == 1 (a global pool) needs none
    cdef uint32_t x = <uint32_t>a, y = <uint32_t>b, t
    if y == 1:
        return 1
    while y:
        t = x % y
        x = y
        y = t
    return x


cdef inline int _adaptive(const int32_t* r, int d, bint is_max, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t o, n, j, w, total, negative = 0
    cdef int i
    for i in range(d):  # (one branch)
        negative |= r[C_K + i]
    if negative < 0:
        return E_BAD_FIELD
    if x[0] != d + 2:
        return E_NDIM
    y[0] = x[0]
    y[2] = x[2]
    y[3] = x[3]
    total = x[2] * x[3]  # two dimensions < 2^31: exact
    for i in range(d):
        n = x[4 + i]
        o = r[C_K + i] if r[C_K + i] != 0 else n
        y[4 + i] = o
        # the windows [floor(j n / o), ceil((j + 1) n / o)) over j add up to n + o - gcd(n, o)
        w = n + o - _gcd(n, o)
        if cc_mul(total, w, &total):
            return E_OVERFLOW
    if _finish_spatial(y, d):
        return E_OVERFLOW
    c.flops = total - y[1] if is_max else total
    return E_OK


# ---- shape and glue -----------------------------------------------------------------------------
cdef inline int _flatten(const int32_t* r, const int64_t* x, int64_t* y) noexcept nogil:
    cdef int64_t nd = x[0], s = r[C_DIM0], e = r[C_DIM1], v = 1
    cdef int i
    if s < 0:
        s += nd
    if e < 0:
        e += nd
    if s < 0 or s >= nd or e < 0 or e >= nd:
        return E_DIM_RANGE
    if s > e:
        return E_FLATTEN_ORDER
    if nd == 4 and s == 1 and e == 3:  # nn.Flatten() after a 2-d feature map: (N, C * H * W)
        v = x[3] * x[4] * x[5]  # divides numel(x): fits int64
        y[0] = 2
        y[1] = x[1]
        y[2] = x[2]
        y[3] = v
        return E_OVERFLOW if v > DIM_MAX else E_OK
    for i in range(s):
        y[2 + i] = x[2 + i]
    for i in range(s, e + 1):
        v *= x[2 + i]  # a product of dims divides numel(x): fits int64
    y[2 + s] = v
    for i in range(e + 1, nd):
        y[2 + i - (e - s)] = x[2 + i]
    y[0] = nd - (e - s)
    y[1] = x[1]  # the same elements; only the merged dimension is new (_finish's test on it)
    return E_OVERFLOW if v > DIM_MAX else E_OK


cdef inline int _zeropad(const int32_t* r, const int64_t* x, int64_t* y) noexcept nogil:
    cdef int64_t nd = x[0]
    if nd < 2:
        return E_NDIM
    _copy(x, y)
    y[1 + nd] = x[1 + nd] + r[C_P] + r[C_P + 1]
    y[nd] = x[nd] + r[C_P + 2] + r[C_D]
    if y[1 + nd] < 1 or y[nd] < 1:
        return E_OUTPUT_SIZE
    return _finish(y)


cdef inline double _scale(const int32_t* r, int i) noexcept nogil:
    """The float64 scale factor of spatial dim i, stored as its IEEE bits: low word S_i, high D_i."""
    cdef uint64_t bits = (<uint64_t><uint32_t>r[C_S + i]) | ((<uint64_t><uint32_t>r[C_D + i]) << 32)
    cdef double v
    memcpy(&v, &bits, sizeof(double))
    return v


cdef inline int _upsample(const int32_t* r, const int64_t* x, int64_t* y, Cnt* c) noexcept nogil:
    cdef int64_t mode = r[C_DIM0], given = r[C_DIM1], sp = x[0] - 2
    cdef double v
    cdef bint big
    cdef int i, size_mode = r[C_K] != 0
    if mode < 0 or mode > 4:
        return E_BAD_FIELD
    if sp < 1 or sp > 3 or (UPS_NDIM[mode] != 0 and UPS_NDIM[mode] != sp):
        return E_NDIM
    if given != 0 and given != sp:
        return E_UPSAMPLE
    for i in range(sp):
        if size_mode:
            if r[C_K + i] < 1:
                return E_UPSAMPLE
        else:
            v = _scale(r, i)
            if not (v > 0.0 and v < 1e300):  # also rejects NaN
                return E_UPSAMPLE
    _copy(x, y)
    big = False
    for i in range(sp):
        if size_mode:
            y[4 + i] = r[C_K + i]
        else:
            # torch: floor(double(in) * scale) in float64
            v = floor(<double>x[4 + i] * _scale(r, i))
            if v < 1.0:
                return E_OUTPUT_SIZE
            big = big or v > <double>DIM_MAX  # OVERFLOW only once every check has passed
            y[4 + i] = <int64_t>v if v <= <double>DIM_MAX else DIM_MAX
    if big or _finish(y):
        return E_OVERFLOW
    return _scaled(y[1], UPS_FLOPS[mode], &c.flops)


cdef inline int _shuffle(const int32_t* r, const int64_t* x, int64_t* y) noexcept nogil:
    cdef int64_t g = r[C_GROUPS]
    if g < 1:
        return E_BAD_FIELD
    if x[0] < 3:
        return E_NDIM
    if x[3] % g != 0:
        return E_SHUFFLE_GROUPS
    return E_OK


cdef inline int _broadcast(const int64_t* a, const int64_t* b, int64_t* y, Cnt* c) noexcept nogil:
    """torch broadcasting: align from the right; each pair equal or one of them 1."""
    cdef int64_t na = a[0], nb = b[0], nd = na if na > nb else nb, da, db
    cdef int i
    y[0] = nd
    for i in range(nd):  # i counts from the right
        da = a[1 + na - i] if i < na else 1
        db = b[1 + nb - i] if i < nb else 1
        if da != db and da != 1 and db != 1:
            return E_BROADCAST
        y[1 + nd - i] = da if db == 1 else db
    if _finish(y):
        return E_OVERFLOW
    c.flops = y[1]
    return E_OK


cdef inline bint _same_shape(const int64_t* a, const int64_t* b) noexcept nogil:
    """a and b are records of the same shape (ndim and every dim)."""
    cdef int i
    if a == b:
        return True
    if a[0] != b[0] or a[1] != b[1]:
        return False
    if a[0] == 4:  # feature maps: the four dims at once
        return ((a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0
    for i in range(a[0]):
        if a[2 + i] != b[2 + i]:
            return False
    return True


cdef inline int _slice(const int32_t* r, const int64_t* x, int64_t* y) noexcept nogil:
    cdef int64_t nd = x[0], dim = r[C_DIM0], start = r[C_K], length = r[C_K + 1]
    if dim < -nd or dim >= nd:
        return E_DIM_RANGE
    if dim < 0:
        dim += nd
    if start < 0 or length < 1:
        return E_BAD_FIELD
    if start + length > x[2 + dim]:
        return E_SLICE_RANGE
    _copy(x, y)
    y[2 + dim] = length
    return _finish(y)


# ---- one architecture ---------------------------------------------------------------------------
# Tensor slots: network input j is slot ni - 1 - j and layer k is slot ni + k, so the slot of a
# reference `ref` (a layer >= 0, or -1 - j for network input j) is ni + ref, whichever it is.
cdef inline int64_t _slot(int64_t ref, int64_t k, int64_t ni) noexcept nogil:
    """The slot of input `ref` of layer k, or -1 when it is invalid (not before k, or no such input)."""
    cdef int64_t s = ni + ref
    return s if <uint64_t>s < <uint64_t>(ni + k) else -1


cdef inline const int64_t* _ref(int64_t ref, int64_t k, int64_t ni, const int64_t** P) noexcept nogil:
    """Shape record of input `ref` for layer k (P holds one per slot); NULL if invalid."""
    cdef int64_t s = ni + ref
    return P[s] if <uint64_t>s < <uint64_t>(ni + k) else NULL


# _graph_fast's view of a tensor slot: its record and its liveness side by side, so that one
# pointer reaches them all (four separate arrays left too few registers for the rest of the loop)
cdef struct GraphSlot:
    const int64_t* rec  # its shape record
    GraphSlot* storage  # the slot of the storage it uses: itself, or its source's for a view
    int64_t size        # elements it allocates (0 for a view)
    int64_t last        # for a storage: the last moment it is read (layer k runs at moment k + 1)


cdef inline int _cat(const int32_t* r, int64_t k, const int32_t* xs, int64_t n_xs, int64_t ni,
                     const int64_t** P, const int64_t* x, int64_t* y, GraphSlot* S) noexcept nogil:
    """Cat resolves its extra inputs itself (_layer only checks their range), in one pass that
    also compares their shapes: BAD_INPUT_REF first, then DIM_RANGE, then CAT_SHAPE. With S
    (_graph_fast's slots, indexed by reference: P is not used), each input's storage is noted as
    read at moment k + 1."""
    cdef int64_t nd = x[0], dim = r[C_DIM0], n = r[C_NSRC], xoff = r[C_XOFF], j, ref, total, diff = 0
    cdef int64_t m[5]  # all ones for the dimensions that must match (every one but dim), else 0
    cdef bint dim_ok = -nd <= dim < nd
    cdef const int64_t* t
    cdef int i
    if n > 1 and (xoff < 0 or xoff > n_xs - (n - 1)):  # checked by _layer; the arrays may have
        return E_BAD_INPUT_REF                         # changed since (another thread)
    if dim < 0:
        dim += nd
    if not dim_ok:
        dim = 0  # (any dimension: the shapes are compared, then DIM_RANGE reported)
    for i in range(5):
        m[i] = -<int64_t>(i < nd and i != dim)
    total = x[2 + dim]
    for j in range(1, n):
        ref = xs[xoff + j - 1]  # (read once: the arrays may change while we count)
        if S == NULL:
            t = _ref(ref, k, ni, P)
        elif <uint64_t>(ni + ref) < <uint64_t>(ni + k):  # (_ref's test)
            t = S[ref].rec
            S[ref].storage.last = k + 1
        else:
            t = NULL
        if t == NULL:
            return E_BAD_INPUT_REF
        if t[0] != nd:
            diff = 1
            continue
        # five fixed terms (a record has room for five dims; the masks drop the unused ones)
        diff |= (((t[2] ^ x[2]) & m[0]) | ((t[3] ^ x[3]) & m[1]) | ((t[4] ^ x[4]) & m[2])
                 | ((t[5] ^ x[5]) & m[3]) | ((t[6] ^ x[6]) & m[4]))
        total += t[2 + dim]  # each < 2^31, at most 2^31 of them: no int64 overflow
    if not dim_ok:
        return E_DIM_RANGE
    if diff:
        return E_CAT_SHAPE
    if total > DIM_MAX:  # OVERFLOW only once every shape check has passed
        return E_OVERFLOW
    _copy(x, y)
    y[2 + dim] = total
    return _finish(y)


cdef int _layer_rare(const int32_t* r, int64_t k, const int32_t* xs, int64_t n_xs, int64_t ni,
                     const int64_t** P, const int64_t* x, int64_t* y, const int64_t** yo,
                     Cnt* c) noexcept nogil:
    """The less common ops of _layer (inputs already resolved and counted)."""
    cdef int op = r[C_OP]
    yo[0] = y  # a new record unless the op shares its input's
    if op == OP_PRELU:
        yo[0] = x
        return _prelu(r, x, y, c)
    elif op == OP_CONV1D:
        return _conv(r, 1, x, y, c)
    elif op == OP_CONV3D:
        return _conv(r, 3, x, y, c)
    elif op == OP_BN1D:
        yo[0] = x
        return _batchnorm(r, 1, x, y, c)
    elif op == OP_BN3D:
        yo[0] = x
        return _batchnorm(r, 3, x, y, c)
    elif op == OP_MAXPOOL1D:
        return _pool(r, 1, True, x, y, c)
    elif op == OP_MAXPOOL3D:
        return _pool(r, 3, True, x, y, c)
    elif op == OP_AVGPOOL1D:
        return _pool(r, 1, False, x, y, c)
    elif op == OP_AVGPOOL3D:
        return _pool(r, 3, False, x, y, c)
    elif op == OP_ADAPTIVEAVG1D or op == OP_ADAPTIVEAVG2D or op == OP_ADAPTIVEAVG3D:
        return _adaptive(r, op - OP_ADAPTIVEAVG1D + 1, False, x, y, c)
    elif op == OP_ADAPTIVEMAX1D or op == OP_ADAPTIVEMAX2D or op == OP_ADAPTIVEMAX3D:
        return _adaptive(r, op - OP_ADAPTIVEMAX1D + 1, True, x, y, c)
    elif op == OP_CONVT1D or op == OP_CONVT2D or op == OP_CONVT3D:
        return _conv_transpose(r, op - OP_CONVT1D + 1, x, y, c)
    elif op == OP_CAT:
        return _cat(r, k, xs, n_xs, ni, P, x, y, NULL)
    elif op == OP_LAYERNORM:
        yo[0] = x
        return _layernorm(r, x, y, c)
    elif op == OP_GROUPNORM:
        yo[0] = x
        return _groupnorm(r, x, y, c)
    elif op == OP_SOFTMAX:
        yo[0] = x
        return _softmax(r, x, y, c)
    elif op == OP_ZEROPAD2D:
        return _zeropad(r, x, y)
    elif op == OP_UPSAMPLE:
        return _upsample(r, x, y, c)
    elif op == OP_CHANNELSHUFFLE:
        yo[0] = x
        return _shuffle(r, x, y)
    elif op == OP_SLICE:
        return _slice(r, x, y)
    return E_UNKNOWN_OP


cdef uint64_t VIEW_OPS = (1ULL << OP_IDENTITY) | (1ULL << OP_FLATTEN) | (1ULL << OP_SLICE)


cdef inline bint _is_view(int op) noexcept nogil:
    # these return views of their input (torch allocates nothing): they share its storage
    # (one shift and test: every op code is < 64)
    return (VIEW_OPS >> (op & 63)) & 1 and 0 <= op < 64


cdef inline bint _is_activation(int op) noexcept nogil:
    """The element-wise activations, ACT_FLOPS's ops: ReLU .. Hardsigmoid (consecutive codes: one
    unsigned range test, op made unsigned before the subtract: no signed overflow for op near
    -2^31) but PReLU, which has weights."""
    return <uint32_t>op - OP_RELU <= OP_HARDSIGMOID - OP_RELU and op != OP_PRELU




# Called through a pointer so the C compiler cannot inline the rare ops into the hot loop.
ctypedef int (*layer_fn)(const int32_t*, int64_t, const int32_t*, int64_t, int64_t, const int64_t**,
                         const int64_t*, int64_t*, const int64_t**, Cnt*) noexcept nogil
cdef layer_fn _LAYER_RARE = _layer_rare


cdef inline int _layer(const int32_t* r, int64_t k, const int32_t* xs, int64_t n_xs, int64_t ni,
                       const int64_t** P, const int64_t* prev, int64_t* y, const int64_t** yo,
                       Cnt* c) noexcept nogil:
    """Layer k of an architecture: its output record goes to yo (y, its own slot, or the input's
    record for shape-preserving ops) and its counts to c; returns an error code.
    Order: inputs resolve (BAD_INPUT_REF), op code known (UNKNOWN_OP), number of inputs (BAD_FIELD)
    (a Cat's extra inputs resolve in _cat, before its own checks: the same order)."""
    cdef int op = r[C_OP]
    cdef int64_t n = r[C_NSRC], xoff = r[C_XOFF], j
    # the previous layer's record is in a register: a chain never waits on the pointer table
    cdef const int64_t* x = prev if r[C_SRC] == k - 1 else _ref(r[C_SRC], k, ni, P)
    cdef const int64_t* b = NULL  # the last extra input resolved (set whenever n >= 2)
    yo[0] = y
    if x == NULL:
        return E_BAD_INPUT_REF
    if n != 1:
        if n > 1:
            if xoff < 0 or xoff > n_xs - (n - 1):
                return E_BAD_INPUT_REF
            for j in range(n - 1 if op != OP_CAT else 0):  # (_cat resolves its own, first)
                b = _ref(xs[xoff + j], k, ni, P)
                if b == NULL:
                    return E_BAD_INPUT_REF
        if op < 0 or op >= N_OPS:
            return E_UNKNOWN_OP
        if op == OP_ADD or op == OP_MUL:
            if n != 2:
                return E_BAD_FIELD
            # b: the second input, the only one the loop above resolved
            if _same_shape(x, b):  # the usual residual add / equal-shape mul: the output is x's shape
                yo[0] = x
                c.flops = x[1]
                return E_OK
            return _broadcast(x, b, y, c)
        if op != OP_CAT or n < 1:
            return E_BAD_FIELD
    elif op == OP_ADD or op == OP_MUL:
        return E_BAD_FIELD
    # One if/elif chain of equalities: Cython emits a C switch (a jump table). Literal dimensions
    # let the C compiler specialise and unroll each family.
    if op == OP_CONV2D:
        return _conv(r, 2, x, y, c)
    elif op == OP_RELU:
        yo[0] = x  # same shape: share the input's record
        c.flops = x[1]
        return E_OK
    elif op == OP_IDENTITY:
        yo[0] = x
        if r[C_DIM0] != 0 and (x[0] < r[C_DIM0] or x[0] > r[C_DIM1]):  # e.g. Dropout1d: 2-d or 3-d
            return E_NDIM
        return E_OK
    elif op == OP_BN2D:
        yo[0] = x
        return _batchnorm(r, 2, x, y, c)
    elif op == OP_MAXPOOL2D:
        return _pool(r, 2, True, x, y, c)
    elif op == OP_LINEAR:
        return _linear(r, x, y, c)
    elif (op == OP_RELU6 or op == OP_LEAKYRELU or op == OP_ELU or op == OP_GELU or op == OP_SILU
          or op == OP_SIGMOID or op == OP_TANH or op == OP_HARDSWISH or op == OP_HARDSIGMOID):
        yo[0] = x
        return _scaled(x[1], ACT_FLOPS[op - OP_RELU], &c.flops)
    elif op == OP_AVGPOOL2D:
        return _pool(r, 2, False, x, y, c)
    elif op == OP_FLATTEN:
        return _flatten(r, x, y)
    elif op == OP_ADAPTIVEAVG2D:
        return _adaptive(r, 2, False, x, y, c)
    # every other op runs out of line: the hot loop stays small enough to keep its state in
    # registers (through copies of c and yo, so that _arch never has their addresses taken)
    cdef Cnt c2 = c[0]
    cdef const int64_t* o
    cdef int code = _LAYER_RARE(r, k, xs, n_xs, ni, P, x, y, &o, &c2)
    c[0] = c2
    yo[0] = o
    return code


cdef inline bint _extra_range(const int32_t* r, int64_t n_xs, int64_t* lo, int64_t* hi) noexcept nogil:
    """The extra inputs of row r as extra_src[lo:hi], when it has some and they lie inside."""
    cdef int64_t n = r[C_NSRC], xoff = r[C_XOFF]
    lo[0] = xoff
    hi[0] = xoff + n - 1
    return n > 1 and 0 <= xoff <= n_xs - (n - 1)


# Liveness (peak memory, docs/conventions.md). Moment 0 is the start (network inputs live), moment
# k + 1 the one where layer k's output is made (its inputs still live). The counting pass notes every
# tensor's storage (a view shares its source's) and size; one backward sweep over the rows then adds
# a storage to the live total at its last reader (the first one the sweep meets; model outputs are
# live from the start of the sweep) and takes it off below its birth. Two arrays, one entry per
# tensor slot: ST, the storage's slot (a view shares its source's), and SIZE, the storage's elements,
# stored as ~elements (sign bit set) once a later step reads it; a view's own entry holds -1 ("read,
# 0 elements").


cdef inline int64_t _first_read(int64_t* SIZE, int64_t st) noexcept nogil:
    """Mark storage st as read; return its size if it was not marked yet, else 0."""
    cdef int64_t v = SIZE[st]
    if v < 0:
        return 0
    SIZE[st] = ~v
    return v


cdef inline void _live_row(int64_t* ST, int64_t* SIZE, const int32_t* r, int64_t k, int64_t ni,
                           int64_t size) noexcept nogil:
    """Note row k's output: its storage and size. Its input is read again and checked (another
    thread may have changed the arrays since _layer read them): the peak may then be wrong, but
    nothing reads out of bounds."""
    cdef int64_t s
    if _is_view(r[C_OP]):
        s = _slot(r[C_SRC], k, ni)
        if s >= 0:
            ST[ni + k] = ST[s]
            SIZE[ni + k] = -1
            return
    ST[ni + k] = ni + k
    SIZE[ni + k] = size


cdef inline int64_t _read(const int64_t* ST, int64_t* SIZE, int64_t ref, int64_t k, int64_t ni) noexcept nogil:
    """Layer k reads input `ref` (skipped if invalid): _first_read of its storage."""
    cdef int64_t s = ni + ref  # its slot (_slot)
    return _first_read(SIZE, ST[s]) if <uint64_t>s < <uint64_t>(ni + k) else 0


cdef int64_t _live_peak(const int64_t* ST, int64_t* SIZE, int64_t kept, const int32_t* L, int64_t l0,
                        int64_t nl, const int32_t* xs, int64_t n_xs, int64_t ni, int64_t in_total) noexcept nogil:
    """The backward sweep: the largest live total over moments 0 .. nl, given `kept`, the elements of
    the model outputs (already marked read); each total <= inputs + activations, which the counting
    pass kept in int64. References are checked again as they are read: a bad one is skipped, so the
    answer may be wrong if the arrays changed, never a crash."""
    cdef int64_t k, j, lo, hi, w, at, live = kept, peak = in_total
    cdef const int32_t* r
    for k in range(nl - 1, -1, -1):
        r = L + (l0 + k) * NF
        if not r[C_FLAGS] & F_UNUSED:  # an unused row never runs: it reads nothing
            live += _read(ST, SIZE, r[C_SRC], k, ni)
            if r[C_NSRC] > 1 and _extra_range(r, n_xs, &lo, &hi):
                for j in range(lo, hi):
                    live += _read(ST, SIZE, xs[j], k, ni)
        # its own output: live at this moment only when nothing reads it (then w >= 0), else
        # counted since its last reader and not live before this moment
        w = SIZE[ni + k]
        at = live
        if w >= 0:
            at += w
        else:
            live -= ~w
        if at > peak:
            peak = at
    return peak


cdef inline int _network_inputs(const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni,
                                int64_t batch, int64_t* buf, const int64_t** P,
                                int64_t* in_total) noexcept nogil:
    """The records of the network inputs, (batch, *input_shape[:ndim]): input j in buf's slot j,
    pointed to by P[ni - 1 - j] (its tensor slot); in_total = their elements (all are live at
    once: the sum must fit). Returns an error code."""
    cdef int64_t j, t, i, total = 0
    cdef int64_t* rec
    if ni < 1 or batch < 1 or batch > DIM_MAX:
        return E_BAD_FIELD
    for j in range(ni):
        rec = buf + j * REC
        P[ni - 1 - j] = rec
        t = indim[i0 + j]
        if t < 1 or t > 4:
            return E_BAD_FIELD
        rec[0] = t + 1
        rec[2] = batch
        for i in range(t):
            rec[3 + i] = ishape[(i0 + j) * 4 + i]
            if rec[3 + i] < 1 or rec[3 + i] > DIM_MAX:
                return E_BAD_FIELD
        if _finish(rec):
            return E_OVERFLOW
    for j in range(ni):
        if cc_add(total, P[j][1], &total):
            return E_OVERFLOW
    in_total[0] = total
    return E_OK


cdef inline int _arch(const int32_t* L, int64_t l0, int64_t nl, const int32_t* xs, int64_t n_xs,
                      const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni, int64_t batch,
                      int64_t* buf, const int64_t** P, int64_t* aux, int64_t* tot, int64_t ts, int32_t* err_layer,
                      int64_t* out_shape, int32_t* out_ndim,
                      int64_t* lcnt, int64_t* lshp, int32_t* lnd, bint per_layer,
                      const int64_t* W, int n_conv, int64_t* conv_out) noexcept nogil:
    """Count architecture rows l0..l0+nl; returns an error code (err_layer = failing row, or -1
    for a bad network input). buf holds ni + nl shape records, P as many record pointers, aux
    2 * (ni + nl) int64 for the liveness of tensors (ST, SIZE).

    tot receives params, buffers, macs, flops, activation_elements, peak_activation_elements and
    out_shape/out_ndim the output's shape (all 0 when invalid). When lcnt is not NULL the per-layer
    counts (4 per row), shapes (5 per row) and ndims are written for the rows before a failure.
    """
    cdef int64_t k, j, t, i, act, flags, out_k = nl - 1, in_total = 0, peak
    cdef int64_t* ST = aux  # liveness (_live_row)
    cdef int64_t* SIZE = aux + ni + nl
    cdef int64_t kept = 0
    cdef Totals tt = Totals(0, 0, 0, 0, 0)
    cdef int64_t terms[N_TERMS]
    cdef const int64_t* xin
    cdef int code = E_OK
    cdef const int64_t* y
    cdef const int64_t* prev
    cdef const int32_t* r
    cdef Cnt c
    err_layer[0] = -1
    code = _network_inputs(ishape, indim, i0, ni, batch, buf, P, &in_total)
    y = P[ni - 1] if code == E_OK else NULL  # "the previous layer" of row 0: network input 0 (SRC = -1)
    for j in range(ni if code == E_OK else 0):  # every network input is a storage
        ST[j] = j
        SIZE[j] = P[j][1]
    for k in range(nl if code == E_OK else 0):
        r = L + (l0 + k) * NF
        c.params = 0
        c.buffers = 0
        c.macs = 0
        c.flops = 0
        prev = y
        code = _layer(r, k, xs, n_xs, ni, P, prev, buf + (ni + k) * REC, &y, &c)
        P[ni + k] = y  # the record pointer stays in a register for the next layer of a chain
        if code != E_OK:
            err_layer[0] = <int32_t>k
            break
        act = y[1]
        flags = r[C_FLAGS]
        if flags & F_UNUSED:  # exists, never runs: parameters only
            c.macs = 0
            c.flops = 0
            act = 0
        elif W != NULL:  # conventions of other tools: weighted per-layer terms (conventions.py)
            xin = prev if r[C_SRC] == k - 1 else _ref(r[C_SRC], k, ni, P)
            code = E_BAD_INPUT_REF if xin == NULL else _convention_terms(r, xin, y, &c, terms)
            if code == E_OK:
                code = _add_conventions(W, n_conv, r[C_OP] + (N_OPS if flags & F_FUNCTIONAL else 2 * N_OPS if flags & F_CALL else 0), terms,
                                        conv_out, ts)
            if code != E_OK:
                err_layer[0] = <int32_t>k
                break
        if _accumulate(&tt, &c, act, in_total):
            code = E_OVERFLOW
            err_layer[0] = <int32_t>k
            break
        _live_row(ST, SIZE, r, k, ni, act)  # (after the check above: the live totals fit int64)
        if flags & F_OUTPUT:  # a model output: live to the end
            out_k = k
            kept += _first_read(SIZE, ST[ni + k])
        if per_layer:
            t = l0 + k
            lcnt[4 * t] = c.params
            lcnt[4 * t + 1] = c.buffers
            lcnt[4 * t + 2] = c.macs
            lcnt[4 * t + 3] = c.flops
            lnd[t] = <int32_t>y[0]
            for j in range(5):
                lshp[5 * t + j] = y[2 + j] if j < y[0] else 0
    if code != E_OK:
        for j in range(6):
            tot[j * ts] = 0
        for j in range(n_conv):
            conv_out[j * ts] = 0
        for j in range(5):
            out_shape[j] = 0
        out_ndim[0] = 0
        return code
    # (plain chains of common ops never get here: _chain_fast counts them, liveness included)
    if nl > 0:  # the output lives to the end (the last flagged row, or else the last row)
        kept += _first_read(SIZE, ST[ni + out_k])
    peak = _live_peak(ST, SIZE, kept, L, l0, nl, xs, n_xs, ni, in_total)
    _store_totals(&tt, peak, tot, ts)
    _store_shape(P[ni + out_k] if nl > 0 else P[ni - 1], out_shape, out_ndim)  # the output row, or
    return E_OK                                                                # input 0 of an empty arch


# The graph fast path: _arch's answer for the common case, with less work per row. The counts add
# up with _tally's bound (one test per architecture, not one per layer) and the peak memory comes
# from a forward note of each storage's last moment (GraphSlot.last) and two passes over the
# moments with a difference array (E), instead of the backward sweep that reads every row and input
# again.
cdef enum:
    PREFETCH_ROWS = 96  # how far ahead _graph_fast and _chain_fast ask for their rows

cdef inline void _prefetch_row(const int32_t* r) noexcept nogil:
    """Ask for row r's memory ahead of its use (a row is 100 bytes: two lines a row cover all; one
    line a row left the other lines to the hardware, 0.7x), into L2, not L1 (x86: prefetcht1):
    on the packed MobileNetV2 batch (153 MB), 1 thread, L1 at 32 rows ahead (the earlier choice)
    ran 1.1-1.3x slower than L2 at 64-160 rows ahead, and L1 at 64 no better than at 32 (likely
    L1's few miss buffers: no hardware counters to tell); the stacks of the chain path: the same."""
    __builtin_prefetch(r, 0, 2)
    __builtin_prefetch(r + 16, 0, 2)


cdef int _graph_fast(const int32_t* L, int64_t l0, int64_t nl, const int32_t* xs, int64_t n_xs,
                     const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni, int64_t batch,
                     int64_t* buf, const int64_t** P, int64_t* aux, int64_t* tot, int64_t ts,
                     int64_t* out_shape, int32_t* out_ndim) noexcept nogil:
    """Count an architecture whose rows all hold common ops (Conv2d, BatchNorm2d, the activations
    but PReLU, Max/AvgPool2d, AdaptiveAvgPool2d, Linear, Flatten, Identity, Add, Mul, Cat), with no
    unused row and no model output before the last row. Returns 1 when it was counted (valid); 0
    sends it to _arch, which counts any architecture exactly and gives the error of an invalid one.
    buf, P and aux as for _arch (P: ni + nl pointers, aux: 4 * (ni + nl) int64)."""
    # the slots are indexed by the reference itself (SRC's encoding: layer k at k, network input j
    # at -1 - j), so one counter, k, walks the rows, the slots and the records
    cdef GraphSlot* S = <GraphSlot*>aux + ni
    cdef int64_t* E = <int64_t*>P  # moments 0 .. nl: minus the elements that stop being live right
                                   # after that moment (P's room, once the inputs' records are read)
    cdef int64_t* Y = buf + ni * REC  # layer k's own record: Y + k * REC
    cdef int64_t k, j, n, xoff, in_total, live, peak, peak_odd
    cdef uint64_t bound = 0
    cdef Totals tt = Totals(0, 0, 0, 0, 0)
    cdef int op, flags
    cdef const int32_t* A = L + l0 * NF
    cdef const int32_t* r
    cdef const int64_t* x
    cdef const int64_t* b
    cdef const int64_t* o
    cdef int64_t* y
    cdef GraphSlot* sp
    cdef GraphSlot* st
    cdef GraphSlot* prev_st
    cdef Cnt c
    if nl < 1 or nl > DIM_MAX or _network_inputs(ishape, indim, i0, ni, batch, buf, P, &in_total):
        return 0
    for j in range(-ni, 0):  # network inputs: live at moment 0 (until read)
        sp = S + j
        sp.rec = P[ni + j]
        sp.storage = sp
        sp.size = sp.rec[1]
        sp.last = 0
        bound |= <uint64_t>sp.size
    memset(E, 0, (nl + 1) * sizeof(int64_t))  # (one call: no store per row; nl + 1 <= ni + nl)
    prev_st = S - 1  # the previous row's record and storage: network input 0 for row 0
    o = prev_st.rec
    for k in range(nl):
        r = A + k * NF
        _prefetch_row(r + PREFETCH_ROWS * NF)
        op = r[C_OP]
        n = r[C_NSRC]
        flags = r[C_FLAGS]
        y = Y + k * REC
        CC_OPAQUE(y)
        sp = S + k
        # an unused row, or a model output before the last row: _arch (one test of the flags a row;
        # the last row's output flag is the only one that passes it)
        if flags & (F_UNUSED | F_OUTPUT) and (flags & F_UNUSED or k != nl - 1):
            return 0
        j = r[C_SRC]
        if j == k - 1:  # a chain: no wait on the slots
            x = o
            st = prev_st
        else:
            if j >= k or j < -ni:  # not an earlier tensor (_arch: BAD_INPUT_REF)
                return 0
            x = S[j].rec
            st = S[j].storage
        st.last = k + 1
        sp.last = k + 1  # (nothing may read it: then it is freed right away)
        o = y  # the output record: y, or x for the ops that keep the shape
        # every count an op adds is <= the widest passed to _tally (its comments in _chain_fast)
        # the ops by how often CNNs use them, tested in that order (no C switch: _is_activation
        # breaks the chain of equalities, and a jump table costs more than two compares); the
        # number of inputs inside
        if op == OP_CONV2D:
            if n != 1 or _conv(r, 2, x, y, &c, look_same_size=True):
                return 0
            _tally(&tt, &bound, c.params, 0, c.macs, c.flops, y[1], c.flops)
        elif op == OP_BN2D:
            if n != 1 or _batchnorm(r, 2, x, y, &c):
                return 0
            _tally(&tt, &bound, c.params, c.buffers, 0, c.flops, x[1], c.flops)
            o = x
        elif _is_activation(op):  # ReLU too: ACT_FLOPS 1, flops = numel(x)
            if n != 1 or _scaled(x[1], ACT_FLOPS[op - OP_RELU], &c.flops):
                return 0
            _tally(&tt, &bound, 0, 0, 0, c.flops, x[1], c.flops)
            o = x
        elif op == OP_ADD or op == OP_MUL:
            xoff = r[C_XOFF]
            if n != 2 or <uint64_t>xoff >= <uint64_t>n_xs:
                return 0
            j = xs[xoff]
            if j >= k or j < -ni:
                return 0
            b = S[j].rec
            S[j].storage.last = k + 1
            if _same_shape(x, b):  # flops = numel(y) = numel(x)
                o = x
            elif _broadcast(x, b, y, &c):
                return 0
            _tally(&tt, &bound, 0, 0, 0, o[1], o[1], o[1])
        elif op == OP_AVGPOOL2D or op == OP_MAXPOOL2D:
            if n != 1 or _pool(r, 2, op == OP_MAXPOOL2D, x, y, &c):
                return 0
            _tally(&tt, &bound, 0, 0, 0, c.flops, y[1], c.flops | y[1])
        elif op == OP_CAT:
            if n < 1 or _cat(r, k, xs, n_xs, ni, NULL, x, y, S):
                return 0
            _tally(&tt, &bound, 0, 0, 0, 0, y[1], y[1])
        elif op == OP_FLATTEN or op == OP_IDENTITY:
            # views: no storage of their own, they keep their source's alive
            if n != 1 or (op == OP_IDENTITY and r[C_DIM0] != 0):  # (Dropout1d's ndim check: _arch)
                return 0
            if op == OP_FLATTEN:
                if _flatten(r, x, y):
                    return 0
            else:
                o = x
            _tally(&tt, &bound, 0, 0, 0, 0, o[1], 0)  # (numel(x))
            sp.rec = o
            sp.storage = st
            sp.size = 0
            prev_st = st
            continue
        elif op == OP_LINEAR or op == OP_ADAPTIVEAVG2D:
            c = Cnt(0, 0, 0, 0)
            if n != 1 or (_linear(r, x, y, &c) if op == OP_LINEAR else _adaptive(r, 2, False, x, y, &c)):
                return 0
            _tally(&tt, &bound, c.params, 0, c.macs, c.flops, y[1], c.params | c.macs | c.flops | y[1])
        else:  # any other op, or a wrong number of inputs: _arch
            return 0
        sp.rec = o
        sp.storage = sp
        sp.size = o[1]
        prev_st = sp
    # the sums are exact (_chain_fast's bound: ni + nl addends, none wider than bound)
    if cc_bits(bound) + cc_bits(<uint64_t>(ni + nl)) > 63:
        return 0
    prev_st.last = nl  # the output (the last row) lives to the end
    for j in range(-ni, 0):
        E[S[j].last] -= S[j].size
    for k in range(nl):  # each storage's elements off right after its last read
        E[S[k].last] -= S[k].size
    # moment k + 1: layer k's output is born, what E says dies. Two running maxima, of the even
    # and the odd moments: one max is a compare and a move that wait on the last (2 cycles a
    # moment), and one loop that also did the line above waited on its stores (1.35 ns a row
    # against 0.92 for these two, ab_core's MobileNetV2 batch)
    live = peak = peak_odd = in_total  # moment 0
    for k in range(0, nl - 1, 2):
        live += S[k].size + E[k]
        peak = max(peak, live)
        live += S[k + 1].size + E[k + 1]
        peak_odd = max(peak_odd, live)
    if nl & 1:
        live += S[nl - 1].size + E[nl - 1]
        peak = max(peak, live)
    peak = max(peak, peak_odd)
    _store_totals(&tt, peak, tot, ts)
    _store_shape(o, out_shape, out_ndim)
    return 1


cdef inline bint _not_chain_row(const int32_t* r, int64_t k, int64_t nl) noexcept nogil:
    """Row k cannot be counted by _chain_fast: it does not read just the previous row, it is unused
    or a model output before the end, or its op is a slice (a view of part of its input) or takes
    two inputs."""
    cdef int op = r[C_OP], flags = r[C_FLAGS]
    return (r[C_SRC] != k - 1 or r[C_NSRC] != 1 or flags & F_UNUSED or (flags & F_OUTPUT and k != nl - 1)
            or op == OP_SLICE or op == OP_ADD or op == OP_MUL)


cdef enum:
    GRAPH_HEAD = 32  # rows _seems_graph looks at from the start: cached (_graph_fast prefetches the
                     # next architecture's first rows), and cc.zoo's graphs branch there (NB201 at
                     # rows 2-8, ResNet 9, DenseNet 10, MobileNetV2 24)
    GRAPH_TAIL = 16  # then from the end (cc.zoo's graphs have their last branch 4 to 15 rows from
                     # the end: MobileNetV2 and MNASNet 15, most 4-9)


cdef inline bint _seems_graph(const int32_t* A, int64_t nl, int64_t broke) noexcept nogil:
    """Whether to skip _chain_fast for the architecture of rows A[0 .. nl), once this thread has
    counted a graph (broke >= 0: the row where that one stopped being a chain): it is no chain at
    that row either (a batch of one skeleton), in its first GRAPH_HEAD rows or in its last
    GRAPH_TAIL rows (where graphs of other kinds that follow each other show it). Only a guess:
    the general path counts any architecture exactly."""
    cdef int64_t k, head = min(nl, GRAPH_HEAD)
    if broke < 0:
        return False
    if broke < nl and _not_chain_row(A + broke * NF, broke, nl):
        return True
    for k in range(head):
        if _not_chain_row(A + k * NF, k, nl):
            return True
    for k in range(nl - 1, max(nl - GRAPH_TAIL, head) - 1, -1):
        if _not_chain_row(A + k * NF, k, nl):
            return True
    return False


cdef inline int _leave(const int32_t* A, int64_t k, int64_t nl, int64_t* broke) noexcept nogil:
    """_chain_fast gives up at row k (returns 0, for the general path): broke notes the first row up
    to k that is no chain row, if any (the rows' structure is checked after their ops have run)."""
    cdef int64_t j
    for j in range(k + 1):
        if _not_chain_row(A + j * NF, j, nl):
            broke[0] = j
            break
    return 0


cdef inline bint _early_output(const int32_t* A, int64_t nl) noexcept nogil:
    """Whether a row before the last is flagged as a model output (then no chain)."""
    cdef int64_t k
    for k in range(nl - 1):
        if A[k * NF + C_FLAGS] & F_OUTPUT:
            return True
    return False




cdef inline void _tally(Totals* t, uint64_t* bound, int64_t params, int64_t buffers, int64_t macs,
                        int64_t flops, int64_t act, int64_t widest) noexcept nogil:
    """Add a layer's counts (each >= 0 when the op succeeded). bound collects the bits of every
    count (see the end of _chain_fast): widest, which has at least as many bits as each of them.
    Every shape dimension is >= 1 (each op checks its output sizes), which proves the ops' widest:
    act = numel(y) is no wider than any layer's count that is a multiple of it, and the size of an
    op's input is already in bound (the network input's, or the act of the row that made it)."""
    t.params += <uint64_t>params
    t.buffers += <uint64_t>buffers
    t.macs += <uint64_t>macs
    t.flops += <uint64_t>flops
    t.act += <uint64_t>act
    bound[0] |= <uint64_t>widest


cdef inline int _chain_fast(const int32_t* A, int64_t nl, const int64_t* ishape,
                     int32_t indim, int64_t batch, int64_t* tot, int64_t ts, int64_t* out_shape,
                     int32_t* out_ndim, int64_t* broke) noexcept nogil:
    """The common case, fast: one network input and a chain of one-input ops (every row reads the
    previous one; Slice excluded) in the rows A[0 .. nl), 0 <= nl <= DIM_MAX (the caller checks).
    The same op functions as _layer run on two local shape records (swapped, never copied), so no pointer
    table, no scratch and no liveness pass are needed and the state stays in registers. Returns 1
    when the architecture was counted (valid: its totals and output shape written; the caller
    notes error OK); 0 sends it to the general path, which also gives
    the exact error code of an invalid one (and counts any architecture whose sums come near
    2^63, see the bound below)."""
    cdef int64_t ra[REC]
    cdef int64_t rb[REC]
    cdef int64_t* xr = ra  # the current tensor's record
    cdef int64_t* yr = rb  # where an op writes a new one; the two swap
    cdef int64_t k, in_numel, d0, d1, d2, d3
    cdef uint64_t peak, bound
    cdef Totals tt
    cdef int op, code, flags, all_flags = 0
    cdef int32_t chain_pair[2]  # what row k's SRC and NSRC must be: k - 1 and 1
    cdef uint64_t want, nonchain = 0
    cdef const int32_t* r
    cdef const int64_t* o
    cdef Cnt c, c2
    if <uint32_t>(indim - 1) > 3 or <uint64_t>batch - 1 >= DIM_MAX:
        return 0
    # the input record without a loop over its dimensions: the unused ones count as 1 (no op reads
    # a record beyond its ndim), and _finish's checks are one test each: every dimension in
    # 1 .. DIM_MAX (an OR of the d - 1 is >= each of them: a false alarm only sends dimensions near
    # 2^31 to the general path), numel fits (products of two dims < 2^62 are exact)
    d0, d1, d2, d3 = ishape[0], ishape[1], ishape[2], ishape[3]  # (input_shape rows hold 4)
    d1 = d1 if indim > 1 else 1  # (a select of loaded values: no branch)
    d2 = d2 if indim > 2 else 1
    d3 = d3 if indim > 3 else 1
    if ((<uint64_t>d0 - 1) | (<uint64_t>d1 - 1) | (<uint64_t>d2 - 1) | (<uint64_t>d3 - 1)) >= DIM_MAX:
        return 0
    code = cc_mul(batch * d0, d1 * d2, &in_numel)
    if code | cc_mul(in_numel, d3, &in_numel):
        return 0
    xr[0] = indim + 1
    xr[1] = in_numel
    xr[2] = batch
    xr[3] = d0
    xr[4] = d1
    xr[5] = d2
    xr[6] = d3
    peak = <uint64_t>in_numel
    bound = <uint64_t>in_numel
    tt.params = tt.buffers = tt.macs = tt.flops = tt.act = 0
    for k in range(nl):
        r = A + k * NF
        _prefetch_row(r + PREFETCH_ROWS * NF)
        op = r[C_OP]
        flags = r[C_FLAGS]
        # _not_chain_row's structure test without a branch (the flags: once, after the loop);
        # acted on once the ops have run (an op reads only its row and xr, a valid record,
        # whatever the row's inputs)
        # (the two adjacent int32 as one word, compared with one XOR)
        chain_pair[0] = <int32_t>(k - 1)
        chain_pair[1] = 1
        memcpy(&want, chain_pair, sizeof(want))
        nonchain |= _int32_pair(r + C_SRC) ^ want
        all_flags |= flags
        # the ops of conv / norm / activation / pool stacks inline, each adding what it counts;
        # ops that keep the shape leave xr in place, the others write yr and the records swap
        if op == OP_CONV2D:
            if _conv(r, 2, xr, yr, &c):
                return _leave(A, k, nl, broke)
            # flops = numel(y)(2n - 1 + bias) >= numel(y) n = macs >= numel(y) >= out, so also
            # flops >= out (n + bias) = params (n = in / groups * kernel volume >= 1)
            _tally(&tt, &bound, c.params, 0, c.macs, c.flops, yr[1], c.flops)
            peak = max(peak, <uint64_t>xr[1] + <uint64_t>yr[1])
            xr, yr = yr, xr
        elif op == OP_BN2D:
            if _batchnorm(r, 2, xr, yr, &c):
                return _leave(A, k, nl, broke)
            # flops >= 2 numel(x) >= 2 C >= params; buffers = 2C + 1 has the bits of 2C (even)
            _tally(&tt, &bound, c.params, c.buffers, 0, c.flops, xr[1], c.flops)
            peak = max(peak, 2 * <uint64_t>xr[1])
        elif op == OP_RELU:
            _tally(&tt, &bound, 0, 0, 0, xr[1], xr[1], 0)  # (numel(x): in bound)
            peak = max(peak, 2 * <uint64_t>xr[1])
        elif op == OP_MAXPOOL2D or op == OP_AVGPOOL2D:
            if _pool(r, 2, op == OP_MAXPOOL2D, xr, yr, &c):
                return _leave(A, k, nl, broke)
            _tally(&tt, &bound, 0, 0, 0, c.flops, yr[1], c.flops | yr[1])
            peak = max(peak, <uint64_t>xr[1] + <uint64_t>yr[1])
            xr, yr = yr, xr
        elif op == OP_FLATTEN:  # a view: allocates nothing
            if _flatten(r, xr, yr):
                return _leave(A, k, nl, broke)
            _tally(&tt, &bound, 0, 0, 0, 0, yr[1], 0)  # (numel(y) = numel(x))
            xr, yr = yr, xr
        elif op == OP_IDENTITY and r[C_DIM0] == 0:  # a view too
            _tally(&tt, &bound, 0, 0, 0, 0, xr[1], 0)
        elif op == OP_SLICE or op == OP_ADD or op == OP_MUL or op < 0 or op >= N_OPS or nonchain:
            return _leave(A, k, nl, broke)  # (an unknown op: the general path gives the error)
        else:  # the tail of a stack (AdaptiveAvgPool2d, Linear) and the other activations here,
            # every other one-input op out of line (_LAYER_RARE); input and output live together
            c = Cnt(0, 0, 0, 0)
            if op == OP_ADAPTIVEAVG2D:
                code = _adaptive(r, 2, False, xr, yr, &c)
                o = yr
            elif op == OP_LINEAR:
                code = _linear(r, xr, yr, &c)
                o = yr
            elif (op == OP_RELU6 or op == OP_LEAKYRELU or op == OP_ELU or op == OP_GELU or op == OP_SILU
                  or op == OP_SIGMOID or op == OP_TANH or op == OP_HARDSWISH or op == OP_HARDSIGMOID):
                code = _scaled(xr[1], ACT_FLOPS[op - OP_RELU], &c.flops)
                o = xr
            else:  # (through a copy of c, so that c itself never has its address taken)
                c2 = c
                code = _LAYER_RARE(r, k, NULL, 0, 1, NULL, xr, yr, &o, &c2)
                c = c2
            if code != E_OK:
                return _leave(A, k, nl, broke)
            _tally(&tt, &bound, c.params, c.buffers, c.macs, c.flops, o[1],
                   c.params | c.buffers | c.macs | c.flops | o[1])
            if op != OP_IDENTITY:
                peak = max(peak, <uint64_t>xr[1] + <uint64_t>o[1])
            if o != xr:
                xr, yr = yr, xr
    # every count added and the input's size have no more bits than bound (see _tally): nl + 1
    # of them add up to less than 2^63 when bits(bound) + bits(nl + 1) <= 63, that is
    # bound < 2^(63 - bits(nl + 1)) (a shift
    # by 31 .. 62: 1 <= nl + 1 <= 2^31), which leaves every total (and the live totals, all
    # <= inputs + activations) exact in int64; near that, the general path checks each sum.
    # (One multiply, bound * 2 (nl + 1) < 2^63, is as sound and as cheap in instructions, but
    # measured 2-3 % slower on the benchmark batch: code layout.)
    if (nonchain or all_flags & F_UNUSED or (all_flags & F_OUTPUT and _early_output(A, nl))
            or bound >> (63 - cc_bits(<uint64_t>(nl + 1))) != 0):
        return _leave(A, nl - 1, nl, broke)
    _store_totals(&tt, <int64_t>peak, tot, ts)
    _store_shape(xr, out_shape, out_ndim)
    return 1


cdef int _arch_counts(const int32_t* L, int64_t l0, int64_t nl, const int32_t* xs, int64_t n_xs,
                      const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni, int64_t batch,
                      int64_t* buf, const int64_t** P, int64_t* aux, int64_t* tot, int64_t ts, int32_t* err_layer,
                      int64_t* out_shape, int32_t* out_ndim) noexcept nogil:
    """_arch without per-layer outputs: the batch path (a separate copy the compiler specialises)."""
    return _arch(L, l0, nl, xs, n_xs, ishape, indim, i0, ni, batch, buf, P, aux, tot, ts, err_layer,
                 out_shape, out_ndim, NULL, NULL, NULL, False, NULL, 0, NULL)


cdef int _arch_conventions(const int32_t* L, int64_t l0, int64_t nl, const int32_t* xs, int64_t n_xs,
                           const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni,
                           int64_t batch, int64_t* buf, const int64_t** P, int64_t* aux, int64_t* tot,
                           int64_t ts, int32_t* err_layer, int64_t* out_shape, int32_t* out_ndim,
                           const int64_t* W, int n_conv, int64_t* conv_out) noexcept nogil:
    """_arch that also adds up the requested conventions of other tools (conv_out[j * ts])."""
    return _arch(L, l0, nl, xs, n_xs, ishape, indim, i0, ni, batch, buf, P, aux, tot, ts, err_layer,
                 out_shape, out_ndim, NULL, NULL, NULL, False, W, n_conv, conv_out)


cdef int _arch_rows(const int32_t* L, int64_t l0, int64_t nl, const int32_t* xs, int64_t n_xs,
                    const int64_t* ishape, const int32_t* indim, int64_t i0, int64_t ni, int64_t batch,
                    int64_t* buf, const int64_t** P, int64_t* aux, int64_t* tot, int64_t ts, int32_t* err_layer,
                    int64_t* out_shape, int32_t* out_ndim,
                    int64_t* lcnt, int64_t* lshp, int32_t* lnd) noexcept nogil:
    """_arch with per-layer counts and shapes (one model's table, explain)."""
    return _arch(L, l0, nl, xs, n_xs, ishape, indim, i0, ni, batch, buf, P, aux, tot, ts, err_layer,
                 out_shape, out_ndim, lcnt, lshp, lnd, True, NULL, 0, NULL)


# ---- the batch driver ---------------------------------------------------------------------------
ctypedef struct Batch:
    # what count_packed's loop reads, set once per call (plain pointers: a memoryview element
    # costs the threads two more loads per access)
    const int32_t* L
    const int32_t* xs
    const int64_t* ish
    const int32_t* ind
    const int64_t* batch
    const int64_t* arch_off
    const int64_t* in_off
    int64_t n_xs, n_rows, n_inputs, max_rows, n_arch
    int64_t* tot
    int64_t* oshape
    int32_t* ondim
    int32_t* err
    int32_t* err_row
    const int64_t* W  # conventions (compacted weights), or NULL
    int n_conv
    int64_t* CO
    int64_t* lc  # per-layer outputs, or NULL
    int64_t* ls
    int32_t* ln
    bint fast  # the batch path may try _chain_fast, _graph_fast


cdef void _count_other(const Batch* B, int64_t a, int64_t* buf, const int64_t** P, int64_t* aux) noexcept nogil:
    """Architecture a, when _count_block's chain path did not count it: its offsets checked, then
    the graph fast path, or the general path (which writes its error and error_layer)."""
    cdef int64_t l0 = B.arch_off[a], l1 = B.arch_off[a + 1], i0 = B.in_off[a], i1 = B.in_off[a + 1]
    cdef int64_t nl = <int64_t>(<uint64_t>l1 - <uint64_t>l0), ni = <int64_t>(<uint64_t>i1 - <uint64_t>i0)
    cdef int64_t ts = B.n_arch
    # offsets were validated, but arrays can change afterwards: never read out of bounds.
    # Unsigned, five comparisons: 0 <= l0 <= l1 <= n_rows, 0 <= i0 <= i1 <= n_inputs and
    # ni + nl <= max_rows (once the first four hold, nl and ni are in range)
    if (<uint64_t>l1 > <uint64_t>B.n_rows or <uint64_t>l0 > <uint64_t>l1 or <uint64_t>i1 > <uint64_t>B.n_inputs
            or <uint64_t>i0 > <uint64_t>i1 or <uint64_t>nl + <uint64_t>ni > <uint64_t>B.max_rows):
        ni = 0  # _arch reports BAD_FIELD for an architecture without inputs
        nl = 0
    if B.fast and _graph_fast(B.L, l0, nl, B.xs, B.n_xs, B.ish, B.ind, i0, ni, B.batch[a], buf, P, aux,
                              B.tot + a, ts, B.oshape + 5 * a, &B.ondim[a]):
        B.err[a] = E_OK
        B.err_row[a] = -1
    elif B.W != NULL:
        B.err[a] = _arch_conventions(B.L, l0, nl, B.xs, B.n_xs, B.ish, B.ind, i0, ni, B.batch[a], buf, P,
                                     aux, B.tot + a, ts, &B.err_row[a], B.oshape + 5 * a, &B.ondim[a],
                                     B.W, B.n_conv, B.CO + a)
    elif B.lc == NULL:
        B.err[a] = _arch_counts(B.L, l0, nl, B.xs, B.n_xs, B.ish, B.ind, i0, ni, B.batch[a], buf, P, aux,
                                B.tot + a, ts, &B.err_row[a], B.oshape + 5 * a, &B.ondim[a])
    else:
        B.err[a] = _arch_rows(B.L, l0, nl, B.xs, B.n_xs, B.ish, B.ind, i0, ni, B.batch[a], buf, P, aux,
                              B.tot + a, ts, &B.err_row[a], B.oshape + 5 * a, &B.ondim[a], B.lc, B.ls, B.ln)


cdef void _count_block(const Batch* B, int64_t a0, int64_t a1, int64_t* buf, const int64_t** P,
                       int64_t* aux, int64_t* broke) noexcept nogil:
    """Architectures a0 .. a1 - 1. The common case, a chain with one network input, is decided and
    counted here with the least work per architecture: error OK and error_layer -1 are written for
    the whole block first (vector stores; the other paths overwrite them), each architecture's
    offsets are read once (its end is the next one's start), and one test of cheap facts sends it
    to _chain_fast. Any other architecture, or a chain _chain_fast declines, goes to _count_other,
    exactly as if it had been routed there at once (_chain_fast writes nothing when it declines).
    broke: this thread's note for _seems_graph."""
    cdef const int32_t* L = B.L
    cdef const int64_t* arch_off = B.arch_off
    cdef const int64_t* in_off = B.in_off
    cdef const int64_t* ish = B.ish
    cdef const int32_t* ind = B.ind
    cdef const int64_t* batch = B.batch
    cdef int64_t* tot = B.tot
    cdef int64_t* oshape = B.oshape
    cdef int32_t* ondim = B.ondim
    cdef int32_t* err = B.err
    cdef int32_t* err_row = B.err_row
    cdef int64_t ts = B.n_arch, a, l0, l1, i0, i1, nl, brk = broke[0]
    # the chain path's bounds: 0 <= l0 <= l1 <= n_rows, i1 = i0 + 1 <= n_inputs (i0 >= 0), and
    # nl + 1 <= max_rows (the scratch the general path would need: beyond it the general path
    # reports BAD_FIELD) and nl <= DIM_MAX (_chain_fast's own limit): nl < nl_end
    cdef uint64_t n_rows = B.n_rows, n_inputs = B.n_inputs
    cdef uint64_t nl_end = <uint64_t>min(B.max_rows, <int64_t>DIM_MAX + 1)
    cdef bint fast = B.fast
    for a in range(a0, a1):
        err[a] = E_OK
    for a in range(a0, a1):
        err_row[a] = -1
    l0 = arch_off[a0]
    i0 = in_off[a0]
    for a in range(a0, a1):
        l1 = arch_off[a + 1]
        i1 = in_off[a + 1]
        nl = <int64_t>(<uint64_t>l1 - <uint64_t>l0)
        if not (fast and <uint64_t>i1 - <uint64_t>i0 == 1 and <uint64_t>i0 < n_inputs
                and <uint64_t>l0 <= <uint64_t>l1 and <uint64_t>l1 <= n_rows and <uint64_t>nl < nl_end
                and not _seems_graph(L + l0 * NF, nl, brk)
                and _chain_fast(L + l0 * NF, nl, ish + 4 * i0, ind[i0], batch[a], tot + a, ts,
                                oshape + 5 * a, ondim + a, &brk)):
            _count_other(B, a, buf, P, aux)
        l0 = l1
        i0 = i1
    broke[0] = brk


# ---- the public (private-module) entry points ---------------------------------------------------
def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(CC_OPENMP)


def max_threads():
    return cc_max_threads()


def format_constants():
    """Every number compiled into the core, for tests/test_format.py to compare with cnncore._format."""
    ops = dict(Identity=OP_IDENTITY, Conv1d=OP_CONV1D, Conv2d=OP_CONV2D, Conv3d=OP_CONV3D,
               ConvTranspose1d=OP_CONVT1D, ConvTranspose2d=OP_CONVT2D, ConvTranspose3d=OP_CONVT3D,
               Linear=OP_LINEAR, BatchNorm1d=OP_BN1D, BatchNorm2d=OP_BN2D, BatchNorm3d=OP_BN3D,
               LayerNorm=OP_LAYERNORM, GroupNorm=OP_GROUPNORM, ReLU=OP_RELU, ReLU6=OP_RELU6,
               LeakyReLU=OP_LEAKYRELU, PReLU=OP_PRELU, ELU=OP_ELU, GELU=OP_GELU, SiLU=OP_SILU,
               Sigmoid=OP_SIGMOID, Tanh=OP_TANH, Hardswish=OP_HARDSWISH, Hardsigmoid=OP_HARDSIGMOID,
               Softmax=OP_SOFTMAX, MaxPool1d=OP_MAXPOOL1D, MaxPool2d=OP_MAXPOOL2D,
               MaxPool3d=OP_MAXPOOL3D, AvgPool1d=OP_AVGPOOL1D, AvgPool2d=OP_AVGPOOL2D,
               AvgPool3d=OP_AVGPOOL3D, AdaptiveAvgPool1d=OP_ADAPTIVEAVG1D,
               AdaptiveAvgPool2d=OP_ADAPTIVEAVG2D, AdaptiveAvgPool3d=OP_ADAPTIVEAVG3D,
               AdaptiveMaxPool1d=OP_ADAPTIVEMAX1D, AdaptiveMaxPool2d=OP_ADAPTIVEMAX2D,
               AdaptiveMaxPool3d=OP_ADAPTIVEMAX3D, Flatten=OP_FLATTEN, ZeroPad2d=OP_ZEROPAD2D,
               Upsample=OP_UPSAMPLE, ChannelShuffle=OP_CHANNELSHUFFLE, Add=OP_ADD, Mul=OP_MUL,
               Cat=OP_CAT, Slice=OP_SLICE)
    errors = dict(OK=E_OK, UNKNOWN_OP=E_UNKNOWN_OP, BAD_INPUT_REF=E_BAD_INPUT_REF,
                  BAD_FIELD=E_BAD_FIELD, NDIM=E_NDIM, IN_CHANNELS=E_IN_CHANNELS, GROUPS=E_GROUPS,
                  OUTPUT_SIZE=E_OUTPUT_SIZE, KERNEL_TOO_LARGE=E_KERNEL_TOO_LARGE,
                  POOL_PADDING=E_POOL_PADDING, SAME_STRIDE=E_SAME_STRIDE,
                  OUTPUT_PADDING=E_OUTPUT_PADDING, NORM_SHAPE=E_NORM_SHAPE,
                  NORM_GROUPS=E_NORM_GROUPS, DIM_RANGE=E_DIM_RANGE, BROADCAST=E_BROADCAST,
                  CAT_SHAPE=E_CAT_SHAPE, SHUFFLE_GROUPS=E_SHUFFLE_GROUPS, UPSAMPLE=E_UPSAMPLE,
                  OVERFLOW=E_OVERFLOW, FLATTEN_ORDER=E_FLATTEN_ORDER, SLICE_RANGE=E_SLICE_RANGE,
                  SINGLE_VALUE=E_SINGLE_VALUE)
    columns = dict(OP=C_OP, SRC=C_SRC, NSRC=C_NSRC, XOFF=C_XOFF, IN=C_IN, OUT=C_OUT,
                   GROUPS=C_GROUPS, FLAGS=C_FLAGS, DIM0=C_DIM0, DIM1=C_DIM1, K0=C_K, S0=C_S,
                   P0=C_P, D0=C_D, O0=C_O)
    flags = dict(F_BIAS=F_BIAS, F_AFFINE=F_AFFINE, F_TRACK=F_TRACK, F_CEIL=F_CEIL, F_SAME=F_SAME,
                 F_IMPLICIT_DIM=F_IMPLICIT_DIM, F_UNUSED=F_UNUSED, F_OUTPUT=F_OUTPUT, F_FUNCTIONAL=F_FUNCTIONAL, F_CALL=F_CALL,
                 FLAG_MASK=FLAG_MASK)
    terms = dict(MACS=T_MACS, FLOPS=T_FLOPS, OUT=T_OUT, IN=T_IN, BIAS_OUT=T_BIAS_OUT,
                 PARAMS=T_PARAMS, KVOL_OUT=T_KVOL_OUT, ONE=T_ONE, OUT_DOT=T_OUT_DOT,
                 PARAMS_N=T_PARAMS_N, AFFINE_IN=T_AFFINE_IN, UP_NEAREST=T_UP_NEAREST,
                 UP_LINEAR=T_UP_LINEAR, UP_BILINEAR=T_UP_BILINEAR, UP_BICUBIC=T_UP_BICUBIC,
                 UP_TRILINEAR=T_UP_TRILINEAR, UP_SIZE=T_UP_SIZE, UP_SCALE_IN=T_UP_SCALE_IN,
                 UP_SCALE_OUT=T_UP_SCALE_OUT, BATCHSTATS_IN=T_BATCHSTATS_IN, AVG_WINDOW=T_AVG_WINDOW,
                 SYM_MACS=T_SYM_MACS, SYM_BIAS_OUT=T_SYM_BIAS_OUT, SAME_MACS=T_SAME_MACS)
    return dict(N_FIELDS=NF, N_OPS=N_OPS, ops=ops, errors=errors, columns=columns, flags=flags,
                DIM_MAX=DIM_MAX, terms=terms, N_TERMS=N_TERMS)


def count_packed(const int32_t[:, ::1] layers, const int32_t[::1] extra_src,
                 const int64_t[::1] arch_offsets, const int64_t[::1] input_offsets,
                 const int64_t[:, ::1] input_shape, const int32_t[::1] input_ndim,
                 const int64_t[::1] batch_size,
                 int64_t[:, ::1] totals, int64_t[:, ::1] output_shape, int32_t[::1] output_ndim,
                 int32_t[::1] error, int32_t[::1] error_layer, int64_t[:, :, ::1] scratch,
                 int64_t[:, ::1] pointers, int64_t[:, ::1] liveness,
                 int64_t[:, ::1] layer_counts=None, int64_t[:, ::1] layer_shape=None,
                 int32_t[::1] layer_ndim=None, int n_threads=1, bint use_fast=True,
                 const int64_t[:, :, ::1] conv_weights=None, int64_t[:, ::1] conv_out=None):
    """Count every architecture. The caller validated shapes/dtypes and allocated every output:
    totals (6, n_arch): params, buffers, macs, flops, activation_elements, peak; output_shape (n_arch, 5), output_ndim/error/error_layer (n_arch,),
    scratch (n_threads, max_rows, REC) with max_rows >= max over archs of n_inputs + n_layers,
    pointers (n_threads, max_rows) (room for one record pointer per row), liveness (n_threads, 4 * max_rows + 3),
    and optionally the per-layer arrays (n_layers, 4), (n_layers, 5), (n_layers,).
    use_fast=False sends every architecture through the general path (tests compare the two).
    conv_weights (n_conv, 3 * N_OPS, N_TERMS) with conv_out (n_conv, n_arch): conventions of other
    tools (batch path only); weight row op weighs module rows, N_OPS + op rows flagged functional,
    2 * N_OPS + op rows flagged as other calls."""
    cdef Py_ssize_t n_arch = arch_offsets.shape[0] - 1
    cdef int64_t n_xs = extra_src.shape[0]
    cdef int64_t max_rows = scratch.shape[1]
    cdef const int32_t* L = &layers[0, 0] if layers.shape[0] > 0 else NULL
    cdef const int32_t* xs = &extra_src[0] if n_xs > 0 else NULL
    cdef const int64_t* ish = &input_shape[0, 0] if input_shape.shape[0] > 0 else NULL
    cdef const int32_t* ind = &input_ndim[0] if input_ndim.shape[0] > 0 else NULL
    cdef int64_t* lc = NULL
    cdef int64_t* ls = NULL
    cdef int32_t* ln = NULL
    # set per thread at the top of the parallel block; initialised here too, as gcc cannot see that
    # Cython's firstprivate copies are overwritten before they are read
    cdef int64_t* buf = NULL
    cdef const int64_t** P = NULL
    cdef int64_t* aux = NULL
    cdef int64_t broke = -1  # private to each thread (a register, no line shared with another thread)
    cdef int tid = 0
    if n_arch <= 0:
        return
    if (totals.shape[1] != n_arch or output_shape.shape[0] < n_arch or error.shape[0] < n_arch
            or error_layer.shape[0] < n_arch or output_ndim.shape[0] < n_arch
            or batch_size.shape[0] < n_arch or input_offsets.shape[0] < n_arch + 1
            or totals.shape[0] != 6 or output_shape.shape[1] != 5 or input_shape.shape[1] != 4
            or scratch.shape[0] < n_threads or scratch.shape[2] != REC or n_threads < 1
            or pointers.shape[0] < n_threads or pointers.shape[1] < scratch.shape[1]
            or liveness.shape[0] < n_threads or liveness.shape[1] < 4 * scratch.shape[1] + 3
            or layers.shape[1] != NF or input_ndim.shape[0] < input_shape.shape[0]
            or sizeof(int64_t) < sizeof(void*)):
        raise ValueError("count_packed: output or scratch arrays have the wrong shape")
    cdef const int64_t* W = NULL
    cdef int64_t* compact = NULL
    cdef int64_t* CO = NULL
    cdef int n_conv = 0
    if conv_weights is not None:
        if (conv_out is None or conv_weights.shape[1] != 3 * N_OPS or conv_weights.shape[2] != N_TERMS
                or conv_out.shape[0] != conv_weights.shape[0] or conv_out.shape[1] != n_arch
                or layer_counts is not None):
            raise ValueError("count_packed: convention arrays have the wrong shape")
        n_conv = conv_weights.shape[0]
    if layer_counts is not None:
        if (layer_shape is None or layer_ndim is None or layer_counts.shape[0] < layers.shape[0]
                or layer_counts.shape[1] != 4 or layer_shape.shape[1] != 5
                or layer_shape.shape[0] < layers.shape[0] or layer_ndim.shape[0] < layers.shape[0]):
            raise ValueError("count_packed: per-layer arrays have the wrong shape")
        if layers.shape[0] > 0:
            lc = &layer_counts[0, 0]
            ls = &layer_shape[0, 0]
            ln = &layer_ndim[0]
    if n_conv > 0:  # after every check that raises: freed below
        W = compact = _compact_weights(conv_weights)
        CO = &conv_out[0, 0]
    cdef Batch B
    B.L, B.xs, B.ish, B.ind = L, xs, ish, ind
    B.batch, B.arch_off, B.in_off = &batch_size[0], &arch_offsets[0], &input_offsets[0]
    B.n_xs, B.n_rows, B.n_inputs, B.max_rows, B.n_arch = n_xs, layers.shape[0], input_shape.shape[0], max_rows, n_arch
    B.tot, B.oshape, B.ondim = &totals[0, 0], &output_shape[0, 0], &output_ndim[0]
    B.err, B.err_row = &error[0], &error_layer[0]
    B.W, B.n_conv, B.CO = W, n_conv, CO
    B.lc, B.ls, B.ln = lc, ls, ln
    B.fast = use_fast and W == NULL and lc == NULL
    cdef Py_ssize_t blk, n_blocks = (n_arch + CHUNK - 1) // CHUNK
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        buf = &scratch[tid, 0, 0]
        P = <const int64_t**>&pointers[tid, 0]
        aux = &liveness[tid, 0]
        # the row where the last graph of this thread stopped being a chain (_seems_graph)
        broke = -1
        # dynamic blocks: on a shared machine a thread that loses its core for a while leaves its
        # share to the others instead of holding up the whole batch (static scheduling waits for the
        # slowest thread); CHUNK architectures (~50 us of work) keep the scheduling cost negligible
        for blk in prange(n_blocks, schedule="dynamic", chunksize=1):
            _count_block(&B, blk * CHUNK, min(blk * CHUNK + CHUNK, n_arch), buf, P, aux, &broke)
    PyMem_Free(compact)  # the parallel loop cannot raise; NULL when there are no conventions


def offsets_max_rows(const int64_t[::1] arch_offsets, const int64_t[::1] input_offsets, int64_t n_rows,
                     int64_t n_inputs):
    """The most rows (network inputs + layers) of one architecture, from one pass over both offset
    arrays without temporaries (cnncore.packing.check_offsets); -1 when the arrays differ in length,
    do not start at 0, decrease, or do not end at n_rows / n_inputs (check_offsets then names the
    fault)."""
    cdef Py_ssize_t n = arch_offsets.shape[0], a
    cdef const int64_t* L
    cdef const int64_t* I
    cdef uint64_t most = 0, signs = 0, dl, di
    if n < 1 or input_offsets.shape[0] != n:
        return -1
    L, I = &arch_offsets[0], &input_offsets[0]
    with nogil:
        for a in range(1, n):
            # differences taken unsigned (any values, no overflow): when no offset is negative,
            # a difference has its sign bit set exactly when the offsets decrease there
            dl = <uint64_t>L[a] - <uint64_t>L[a - 1]
            di = <uint64_t>I[a] - <uint64_t>I[a - 1]
            signs |= dl | di | <uint64_t>L[a] | <uint64_t>I[a]
            most = max(most, dl + di)
    if signs >> 63 or L[0] != 0 or I[0] != 0 or L[n - 1] != n_rows or I[n - 1] != n_inputs:
        return -1
    return <int64_t>most


def validate_rows(const int32_t[:, ::1] layers, const int64_t[::1] arch_offsets,
                  const int64_t[::1] input_offsets, int64_t n_extra):
    """Structural check of every layer row (op code, flag bits, input references, extra_src
    ranges). Returns None, or (row, column, reason) of the first bad row. Offsets must already
    be checked (monotone, in range)."""
    cdef Py_ssize_t n_arch = arch_offsets.shape[0] - 1, a
    cdef int64_t l, k, ni, ref, j, n, xoff
    cdef int col = -1, why = 0
    cdef const int32_t* r
    with nogil:
        for a in range(n_arch):
            ni = input_offsets[a + 1] - input_offsets[a]
            for l in range(arch_offsets[a], arch_offsets[a + 1]):
                r = &layers[l, 0]
                k = l - arch_offsets[a]
                if r[C_OP] < 0 or r[C_OP] >= N_OPS:
                    col, why = C_OP, 1
                elif r[C_FLAGS] & ~FLAG_MASK:
                    col, why = C_FLAGS, 2
                elif r[C_NSRC] < 1:
                    col, why = C_NSRC, 3
                elif r[C_SRC] >= k or r[C_SRC] < -ni:
                    col, why = C_SRC, 4
                else:
                    n = r[C_NSRC]
                    xoff = r[C_XOFF]
                    if n > 1 and (xoff < 0 or xoff > n_extra - (n - 1)):
                        col, why = C_XOFF, 5
                if why:
                    break
            if why:
                break
    if why:
        return (l, col, why)
    return None


def validate_extra(const int32_t[:, ::1] layers, const int32_t[::1] extra_src,
                   const int64_t[::1] arch_offsets, const int64_t[::1] input_offsets):
    """Second pass over multi-input rows: every extra input refers to an earlier layer or an
    existing network input. Returns None or (row, index into extra_src)."""
    cdef Py_ssize_t n_arch = arch_offsets.shape[0] - 1, a
    cdef int64_t l, k, ni, ref, j, bad = -1, badj = -1
    with nogil:
        for a in range(n_arch):
            ni = input_offsets[a + 1] - input_offsets[a]
            for l in range(arch_offsets[a], arch_offsets[a + 1]):
                k = l - arch_offsets[a]
                if layers[l, C_NSRC] <= 1:
                    continue
                for j in range(<int64_t>layers[l, C_XOFF], <int64_t>layers[l, C_XOFF] + layers[l, C_NSRC] - 1):
                    ref = extra_src[j]
                    if ref >= k or ref < -ni:
                        bad, badj = l, j
                        break
                if bad >= 0:
                    break
            if bad >= 0:
                break
    return None if bad < 0 else (bad, badj)


# ---- one layer at its call (cnncore.graph): Python objects in, no numpy, no scratch arrays -------
from libc.stdlib cimport malloc, free

cdef enum:
    CALL_SMALL = 4  # inputs whose records fit layer_output's stack buffer


def layer_output(list row, list shapes):
    """One layer `row` (NF ints; SRC, NSRC and XOFF are ignored) evaluated by _layer on input
    tensors of `shapes` (tuples, batch first): the layer reads input 0 as its SRC and inputs 1..
    as its extra inputs, exactly as the same row does in a one-layer architecture of count_packed.
    Returns (code, layer, shape, params, buffers, macs, flops, elements): code 0 with the output
    shape and the op's counts (the F_UNUSED and F_OUTPUT flags are the caller's), or an error code with layer = 0 (the row failed) or -1 (an input
    record is invalid or the inputs' sizes overflow, as _arch reports them) and shape None."""
    cdef int32_t r[NF]
    cdef Py_ssize_t n = len(shapes), j, i, nd
    cdef int64_t in_total = 0, v
    cdef tuple s
    cdef Cnt c
    cdef int code = E_OK
    cdef const int64_t* y
    cdef int64_t* rec
    if len(row) != NF:
        raise ValueError(f"layer_output: a row has {NF} fields, got {len(row)}")
    for i in range(NF):
        r[i] = row[i]
    if n < 1:
        return (E_BAD_FIELD, -1, None, 0, 0, 0, 0, 0)
    # one block: n + 1 shape records, n record pointers, n - 1 extra input references; on the
    # stack for the usual one or two inputs
    cdef int64_t small[(CALL_SMALL + 1) * REC + 2 * CALL_SMALL]
    cdef int64_t* buf = small
    if n > CALL_SMALL:
        buf = <int64_t*>malloc((n + 1) * REC * sizeof(int64_t) + n * sizeof(int64_t*) + n * sizeof(int32_t))
        if buf == NULL:
            raise MemoryError()
    cdef const int64_t** P = <const int64_t**>(buf + (n + 1) * REC)
    cdef int32_t* xs = <int32_t*>(P + n)
    try:
        r[C_SRC] = -1
        r[C_NSRC] = <int32_t>n
        r[C_XOFF] = 0
        for j in range(1, n):
            xs[j - 1] = <int32_t>(-1 - j)
        for j in range(n):  # the network-input records of _arch: (ndim, numel, dims...)
            s = shapes[j]
            nd = len(s)
            rec = buf + j * REC
            P[n - 1 - j] = rec  # the slot of network input j (_slot)
            if nd < 2 or nd > 5:
                code = E_BAD_FIELD
                break
            rec[0] = nd
            for i in range(nd):
                v = s[i]
                rec[2 + i] = v
                if v < 1 or v > DIM_MAX:
                    code = E_BAD_FIELD
            if code != E_OK or _finish(rec):
                code = code or E_OVERFLOW
                break
        for j in range(n if code == E_OK else 0):  # all inputs live at once: their sum must fit
            if cc_add(in_total, P[j][1], &in_total):
                code = E_OVERFLOW
        if code != E_OK:
            return (code, -1, None, 0, 0, 0, 0, 0)
        c.params = 0
        c.buffers = 0
        c.macs = 0
        c.flops = 0
        code = _layer(r, 0, xs, n - 1, n, P, P[n - 1], buf + n * REC, &y, &c)
        if code == E_OK and y[1] > (<int64_t>0x7FFFFFFFFFFFFFFF) - in_total:
            code = E_OVERFLOW  # _accumulate's bound: inputs + activations fit int64
        if code != E_OK:
            return (code, 0, None, 0, 0, 0, 0, 0)
        return (E_OK, 0, tuple([y[2 + i] for i in range(y[0])]), c.params, c.buffers, c.macs, c.flops, y[1])
    finally:
        if buf != small:
            free(buf)
