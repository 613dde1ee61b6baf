# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""cnncore's columnar kernel: architectures that share one topology, counted layer position by
layer position across a tile of architectures (docs/format.md, "Columnar batches").

Private. cnncore.columnar plans the template once in Python (static ndims, which shape record each
row reads and writes, when each storage is born and freed) and calls `count_columnar`, which walks
tiles of TILE architectures without the GIL (OpenMP `prange` over tiles when built with it). Inside a
tile the outer loop is the layer position and the inner loop the architectures: the op is known
once per position, and every per-architecture value sits in a contiguous array of the tile.

The kernel computes exact counts for valid architectures only. Anything a valid architecture
cannot have (a field out of range, a channel mismatch, a size < 1, a count near int64's limit...)
only sets the architecture's `needs_generic` flag: cnncore.columnar then counts those architectures
with the generic core, which gives the exact error code and row. So this file never decides an
error code, and the columnar path cannot disagree with the generic one on an invalid architecture.
Arithmetic on a flagged architecture may be garbage, but is done in uint64 and double, with every
size clamped to 1 .. 2^31 - 1 and every divisor to >= 1: nothing traps.
"""
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy
from cython.parallel cimport prange, parallel, threadid

cdef extern from "_checked.h" nogil:
    bint cc_mul(int64_t a, int64_t b, int64_t* r)
    bint cc_add(int64_t a, int64_t b, int64_t* r)
    int CC_OPENMP

# ---- the format's op codes (cnncore/_format.py; tests/test_columnar.py checks they agree) ----
cdef enum:
    OP_IDENTITY = 0
    OP_CONV1D = 1
    OP_CONV2D = 2
    OP_CONV3D = 3
    OP_LINEAR = 7
    OP_BN1D = 8
    OP_BN3D = 10
    OP_RELU = 13
    OP_PRELU = 16
    OP_HARDSIGMOID = 23
    OP_MAXPOOL1D = 25
    OP_MAXPOOL2D = 26
    OP_MAXPOOL3D = 27
    OP_AVGPOOL1D = 28
    OP_AVGPOOL2D = 29
    OP_AVGPOOL3D = 30
    OP_ADAPTIVEAVG1D = 31
    OP_ADAPTIVEAVG2D = 32
    OP_ADAPTIVEAVG3D = 33
    OP_ADAPTIVEMAX1D = 34
    OP_ADAPTIVEMAX2D = 35
    OP_ADAPTIVEMAX3D = 36
    OP_FLATTEN = 37
    OP_ADD = 41
    OP_MUL = 42
    OP_CAT = 43

cdef enum:
    F_BIAS = 1
    F_AFFINE = 2
    F_TRACK = 4
    F_CEIL = 8
    F_SAME = 16

# the per-architecture fields a column may vary (cnncore.columnar.COLUMN_FIELDS, same order)
cdef enum:
    V_IN = 0
    V_OUT = 1
    V_GROUPS = 2
    V_K = 3
    V_S = 6
    V_P = 9
    V_D = 12
    N_VAR = 15

# the static program: one row of int64 per layer row (cnncore.columnar.PROGRAM_COLUMNS, same order)
cdef enum:
    G_OP = 0  # op code
    G_DIMS = 1  # spatial dims of a conv / pool / adaptive pool / batchnorm; linear: index of the last dim
    G_XS = 2  # shape slot of the first input
    G_YS = 3  # shape slot of the output (= G_XS for ops that keep the shape)
    G_BS = 4  # shape slot of the second input (add, mul)
    G_FLAGS = 5
    G_A = 6  # flatten start dim / cat dim (normalised)
    G_B = 7  # flatten end dim (normalised)
    G_UNUSED = 8  # 1: params and buffers only
    G_BIRTH = 9  # live slot that stores the size of the storage this row creates, or -1
    G_DOFF = 10  # storages freed at this row's moment: live slots deaths[DOFF : DOFF + DN]
    G_DN = 11
    G_COFF = 12  # cat: shape slots of inputs 2.. in cat_src[COFF : COFF + CN]
    G_CN = 13
    G_NDX = 14  # ndim of the first input (batch included)
    G_NDY = 15  # ndim of the output
    G_NDB = 16  # ndim of the second input (add, mul)
    G_NEED = 17  # bit set of the V_* fields the op reads
    N_PROG = 18

cdef enum:
    REC = 6  # a shape slot holds REC arrays of TILE: numel, then dims 0..4 (dim 0 = the batch)
    N_ACC = 11  # per-architecture accumulators of a tile
    A_PARAMS = 0
    A_BUFFERS = 1
    A_MACS = 2
    A_FLOPS = 3
    A_ACT = 4
    A_BAD = 5
    A_LIVE = 6
    A_PEAK = 7
    A_SAVED_MACS = 8  # an unused row's macs and flops are dropped: the totals before it
    A_SAVED_FLOPS = 9
    A_IN = 10  # the network input's elements

cdef enum:
    TILE = 128  # architectures per tile: one tile's shape slots stay in L1

cdef int64_t DIM_MAX = 2147483647
cdef int64_t ACT_FLOPS[11]
ACT_FLOPS[:] = [1, 2, 2, 2, 4, 5, 4, 3, 1, 5, 4]


# ---- arithmetic that never traps ---------------------------------------------------------------
cdef inline int64_t _qdiv(int64_t a, int64_t b) noexcept nogil:
    """floor(a / b) for 0 <= a < 2^40, 1 <= b < 2^31. Strides and groups are nearly always 1 or 2;
    otherwise a float64 divide, exact here (ulp(a / b) < 1 / b) and cheaper than an integer one."""
    if b == 1:
        return a
    if b == 2:
        return a >> 1
    return <int64_t>(<double>a / <double>b)


cdef inline void _acc(int64_t* total, int64_t v) noexcept nogil:
    # wraps instead of overflowing (a set top bit flags the architecture afterwards)
    total[0] = <int64_t>(<uint64_t>total[0] + <uint64_t>v)


cdef inline void _flag(int64_t* acc, int a, int64_t bad, int64_t mag) noexcept nogil:
    """Record a problem (bad: 0 or 1, kept in the top bit) and the addends of a row (OR-ed: the
    tile's end flags an architecture whose addends ever reach the limit, so no sum can overflow)."""
    acc[A_BAD * TILE + a] |= (bad << 63) | mag


cdef inline int64_t _at_least_1(int64_t v) noexcept nogil:
    return v if v >= 1 else 1


cdef inline int64_t _gcd(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t t
    if b == 1 or a == 1:
        return 1
    if a == b:
        return a
    while b:
        t = a % b
        a = b
        b = t
    return a


# ---- one layer position over one tile ------------------------------------------------------------
# X, Y, B: shape slots (X[j * TILE + a]: j = 0 numel, 1 + i dim i); V: the fields (V[f * TILE + a]);
# acc: the accumulators. A problem only sets acc[A_BAD]; the sizes written are then clamped to
# 1 .. 2^31-1 (so nothing downstream can trap) and the counts are meaningless.
# d (spatial dims) is a literal at every call: the C compiler unrolls the loops over it.

cdef inline void _conv(int nt, int d, int64_t flags, const int64_t* V, const int64_t* X, int64_t* Y,
                       int64_t* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t inn, out, g, ch, cpg, k, s, p, dl, eff, padded, o, kvol, numel, n, t, m, f, bias, bad
    cdef bint same = (flags & F_SAME) != 0
    bias = 1 if flags & F_BIAS else 0
    for a in range(nt):
        inn = V[V_IN * TILE + a]
        out = V[V_OUT * TILE + a]
        g = V[V_GROUPS * TILE + a]
        ch = X[2 * TILE + a]
        bad = ((out - 1) | (g - 1) | inn) < 0
        bad |= (inn != 0) & (inn != ch)
        g = _at_least_1(g)
        out = _at_least_1(out)
        cpg = _qdiv(ch, g)
        bad |= (cpg * g != ch) | (_qdiv(out, g) * g != out)
        kvol = 1
        numel = X[TILE + a] * out  # both < 2^31
        for i in range(d):
            k = V[(V_K + i) * TILE + a]
            s = V[(V_S + i) * TILE + a]
            p = V[(V_P + i) * TILE + a]
            dl = V[(V_D + i) * TILE + a]
            bad |= ((k - 1) | (s - 1) | (dl - 1) | p) < 0
            k = _at_least_1(k)
            s = _at_least_1(s)
            dl = _at_least_1(dl)
            eff = dl * (k - 1) + 1  # < 2^62
            if same:
                bad |= s != 1
                o = X[(3 + i) * TILE + a]
            else:
                padded = X[(3 + i) * TILE + a] + 2 * (p if p > 0 else 0)
                bad |= padded < eff
                o = _qdiv(padded - eff, s) + 1 if padded >= eff else 1
                if o > DIM_MAX:
                    bad = 1
                    o = 1
            Y[(3 + i) * TILE + a] = o
            bad |= cc_mul(numel, o, &numel)
            bad |= cc_mul(kvol, k, &kvol)
        Y[TILE + a] = X[TILE + a]
        Y[2 * TILE + a] = out
        Y[a] = numel
        # params = out*n + bias*out; macs = numel*n; flops = numel*(2n - 1 + bias)
        bad |= cc_mul(cpg, kvol, &n)
        bad |= cc_mul(out, n, &t) | cc_add(t, bias * out, &t)
        _acc(acc + A_PARAMS * TILE + a, t)
        bad |= cc_mul(numel, n, &m)
        _acc(acc + A_MACS * TILE + a, m)
        bad |= cc_mul(n, 2, &f) | cc_mul(numel, f - 1 + bias, &f)
        _acc(acc + A_FLOPS * TILE + a, f)
        _flag(acc, a, bad, t | m | f | numel)


cdef inline void _linear(int nt, int last, int64_t flags, const int64_t* V, const int64_t* X, int64_t* Y,
                         int64_t* acc, int ndx) noexcept nogil:
    cdef int a, j
    cdef int64_t inn, out, ch, numel, bias, bad, t, m, f
    bias = 1 if flags & F_BIAS else 0
    for a in range(nt):
        inn = V[V_IN * TILE + a]
        out = V[V_OUT * TILE + a]
        ch = X[(1 + last) * TILE + a]
        bad = (out < 1) | (inn < 0) | ((inn != 0) & (inn != ch))
        out = _at_least_1(out)
        numel = out
        for j in range(1, ndx + 1):
            Y[j * TILE + a] = X[j * TILE + a]
            if j != 1 + last:
                bad |= cc_mul(numel, X[j * TILE + a], &numel)
        Y[(1 + last) * TILE + a] = out
        Y[a] = numel
        bad |= cc_mul(ch, out, &t) | cc_add(t, bias * out, &t)
        _acc(acc + A_PARAMS * TILE + a, t)
        bad |= cc_mul(numel, ch, &m)
        _acc(acc + A_MACS * TILE + a, m)
        bad |= cc_mul(numel, 2 * ch - 1 + bias, &f)
        _acc(acc + A_FLOPS * TILE + a, f)
        _flag(acc, a, bad, t | m | f | numel)


cdef inline void _batchnorm(int nt, int64_t flags, const int64_t* V, const int64_t* X, int64_t* acc) noexcept nogil:
    cdef int a
    cdef int64_t inn, ch, bias, per, bad, t
    cdef bint checked = (flags & (F_AFFINE | F_TRACK)) != 0, batch_stats = (flags & F_TRACK) == 0
    bias = 1 if flags & F_BIAS else 0
    per = 2 + (1 + bias if flags & F_AFFINE else 0)  # flops per element
    for a in range(nt):
        inn = V[V_IN * TILE + a]
        ch = X[2 * TILE + a]
        bad = (inn < 0) | (checked & (inn != 0) & (ch != inn))
        bad |= batch_stats & (X[a] == ch)  # statistics over one value per channel
        if flags & F_AFFINE:
            _acc(acc + A_PARAMS * TILE + a, ch * (1 + bias))
        if flags & F_TRACK:
            _acc(acc + A_BUFFERS * TILE + a, 2 * ch + 1)
        bad |= cc_mul(X[a], per, &t)
        _acc(acc + A_FLOPS * TILE + a, t)
        _flag(acc, a, bad, t)


cdef inline void _elementwise(int nt, int64_t per, const int64_t* X, int64_t* acc) noexcept nogil:
    """An activation: per flops per element, the shape unchanged."""
    cdef int a
    cdef int64_t t
    for a in range(nt):
        _flag(acc, a, cc_mul(X[a], per, &t), t)
        _acc(acc + A_FLOPS * TILE + a, t)


cdef inline void _prelu(int nt, int ndx, const int64_t* V, const int64_t* X, int64_t* acc) noexcept nogil:
    cdef int a
    cdef int64_t n, bad, t
    for a in range(nt):
        n = V[V_IN * TILE + a]
        bad = (n < 1) | ((n > 1) & ((ndx < 2) | (X[2 * TILE + a] != n)))
        _acc(acc + A_PARAMS * TILE + a, n if n > 0 else 0)
        bad |= cc_mul(X[a], 2, &t)
        _acc(acc + A_FLOPS * TILE + a, t)
        _flag(acc, a, bad, t)


cdef inline void _pool(int nt, int d, bint is_max, int64_t flags, const int64_t* V, const int64_t* X,
                       int64_t* Y, int64_t* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t k, s, p, dl, num, o, kvol, numel, bad, xi, t
    cdef bint ceil = (flags & F_CEIL) != 0
    for a in range(nt):
        bad = 0
        kvol = 1
        numel = X[TILE + a] * X[2 * TILE + a]  # both < 2^31
        for i in range(d):
            k = V[(V_K + i) * TILE + a]
            s = V[(V_S + i) * TILE + a]
            p = V[(V_P + i) * TILE + a]
            dl = V[(V_D + i) * TILE + a] if is_max else 1
            xi = X[(3 + i) * TILE + a]
            bad |= ((k - 1) | (s - 1) | (dl - 1) | p) < 0
            bad |= p > k / 2
            if d == 3 and not is_max:
                bad |= xi < k  # ATen's avg_pool3d: the unpadded input at least the kernel
            k = _at_least_1(k)
            s = _at_least_1(s)
            dl = _at_least_1(dl)
            p = p if p > 0 else 0
            num = xi + 2 * p - dl * (k - 1) - 1
            if ceil:
                num += s - 1
            bad |= num < 0  # an output size < 1
            o = _qdiv(num, s) + 1 if num >= 0 else 1
            if ceil and (o - 1) * s >= xi + p:  # the last window must start inside
                o -= 1
            bad |= o < 1
            o = _at_least_1(o)
            Y[(3 + i) * TILE + a] = o  # <= the input size: no overflow
            numel *= o
            bad |= cc_mul(kvol, k, &kvol)
        Y[TILE + a] = X[TILE + a]
        Y[2 * TILE + a] = X[2 * TILE + a]
        Y[a] = numel
        bad |= cc_mul(numel, kvol - 1 if is_max else kvol, &t)
        _acc(acc + A_FLOPS * TILE + a, t)
        _flag(acc, a, bad, t | numel)


cdef inline void _adaptive(int nt, int d, bint is_max, const int64_t* V, const int64_t* X, int64_t* Y,
                           int64_t* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t n, o, total, numel, bad
    for a in range(nt):
        bad = 0
        total = X[TILE + a] * X[2 * TILE + a]  # both < 2^31
        numel = total
        for i in range(d):
            n = X[(3 + i) * TILE + a]
            o = V[(V_K + i) * TILE + a]
            bad |= o < 0
            o = n if o <= 0 else o
            Y[(3 + i) * TILE + a] = o
            # the windows [floor(j n / o), ceil((j + 1) n / o)) add up to n + o - gcd(n, o)
            bad |= cc_mul(total, n + o - _gcd(n, o), &total)
            bad |= cc_mul(numel, o, &numel)
        Y[TILE + a] = X[TILE + a]
        Y[2 * TILE + a] = X[2 * TILE + a]
        Y[a] = numel
        _acc(acc + A_FLOPS * TILE + a, total - numel if is_max else total)
        _flag(acc, a, bad, total | numel)


cdef inline void _flatten(int nt, int s, int e, int ndx, const int64_t* X, int64_t* Y, int64_t* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t v
    for a in range(nt):
        v = 1
        for i in range(s, e + 1):
            v *= X[(1 + i) * TILE + a]  # divides numel(x): no overflow
        for i in range(s):
            Y[(1 + i) * TILE + a] = X[(1 + i) * TILE + a]
        for i in range(e + 1, ndx):
            Y[(1 + i - (e - s)) * TILE + a] = X[(1 + i) * TILE + a]
        if v > DIM_MAX:  # the generic path: OVERFLOW
            _flag(acc, a, 1, 0)
            v = 1
        Y[(1 + s) * TILE + a] = v
        Y[a] = X[a]


cdef inline void _broadcast(int nt, int na, int nb, const int64_t* X, const int64_t* B, int64_t* Y,
                            int64_t* acc) noexcept nogil:
    cdef int a, i, nd = na if na > nb else nb
    cdef int64_t da, db, numel, bad
    for a in range(nt):
        bad = 0
        numel = 1
        for i in range(nd):  # i counts from the right
            da = X[(na - i) * TILE + a] if i < na else 1
            db = B[(nb - i) * TILE + a] if i < nb else 1
            bad |= (da != db) & (da != 1) & (db != 1)
            da = da if db == 1 else db
            Y[(nd - i) * TILE + a] = da
            bad |= cc_mul(numel, da, &numel)
        Y[a] = numel
        _acc(acc + A_FLOPS * TILE + a, numel)
        _flag(acc, a, bad, numel)


cdef inline void _cat(int nt, int dim, int nd, const int64_t* X, const int64_t* S, const int64_t* src,
                      int64_t cn, int64_t* Y, int64_t* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t j, total, numel, bad
    cdef const int64_t* T
    for a in range(nt):
        bad = 0
        total = X[(1 + dim) * TILE + a]
        for j in range(cn):
            T = S + src[j] * REC * TILE
            for i in range(nd):
                if i != dim:
                    bad |= T[(1 + i) * TILE + a] != X[(1 + i) * TILE + a]
            total += T[(1 + dim) * TILE + a]  # each < 2^31
        if total > DIM_MAX:
            bad = 1
            total = 1
        for i in range(nd):
            Y[(1 + i) * TILE + a] = X[(1 + i) * TILE + a]
        Y[(1 + dim) * TILE + a] = total
        numel = 1
        for i in range(nd):
            bad |= cc_mul(numel, Y[(1 + i) * TILE + a], &numel)
        Y[a] = numel
        _flag(acc, a, bad, numel)


cdef inline void _run_op(int64_t op, const int64_t* g, int nt, const int64_t* V, int64_t* S,
                         const int64_t* X, int64_t* Y, int64_t* acc, const int64_t* cat_src) noexcept nogil:
    """Layer position g over one tile: one op, its dims as literals."""
    cdef int64_t flags = g[G_FLAGS]
    if op == OP_CONV2D:
        _conv(nt, 2, flags, V, X, Y, acc)
    elif op == OP_RELU:
        _elementwise(nt, 1, X, acc)
    elif OP_BN1D <= op <= OP_BN3D:
        _batchnorm(nt, flags, V, X, acc)
    elif op == OP_PRELU:
        _prelu(nt, <int>g[G_NDX], V, X, acc)
    elif OP_RELU < op <= OP_HARDSIGMOID:
        _elementwise(nt, ACT_FLOPS[op - OP_RELU], X, acc)
    elif op == OP_MAXPOOL2D:
        _pool(nt, 2, True, flags, V, X, Y, acc)
    elif op == OP_AVGPOOL2D:
        _pool(nt, 2, False, flags, V, X, Y, acc)
    elif op == OP_ADAPTIVEAVG2D:
        _adaptive(nt, 2, False, V, X, Y, acc)
    elif op == OP_LINEAR:
        _linear(nt, <int>g[G_DIMS], flags, V, X, Y, acc, <int>g[G_NDX])
    elif op == OP_FLATTEN:
        _flatten(nt, <int>g[G_A], <int>g[G_B], <int>g[G_NDX], X, Y, acc)
    elif op == OP_ADD or op == OP_MUL:
        _broadcast(nt, <int>g[G_NDX], <int>g[G_NDB], X, S + g[G_BS] * REC * TILE, Y, acc)
    elif op == OP_CAT:
        _cat(nt, <int>g[G_A], <int>g[G_NDX], X, S, cat_src + g[G_COFF], g[G_CN], Y, acc)
    elif op == OP_CONV1D:
        _conv(nt, 1, flags, V, X, Y, acc)
    elif op == OP_CONV3D:
        _conv(nt, 3, flags, V, X, Y, acc)
    elif op == OP_MAXPOOL1D:
        _pool(nt, 1, True, flags, V, X, Y, acc)
    elif op == OP_MAXPOOL3D:
        _pool(nt, 3, True, flags, V, X, Y, acc)
    elif op == OP_AVGPOOL1D:
        _pool(nt, 1, False, flags, V, X, Y, acc)
    elif op == OP_AVGPOOL3D:
        _pool(nt, 3, False, flags, V, X, Y, acc)
    elif op == OP_ADAPTIVEAVG1D:
        _adaptive(nt, 1, False, V, X, Y, acc)
    elif op == OP_ADAPTIVEAVG3D:
        _adaptive(nt, 3, False, V, X, Y, acc)
    elif op == OP_ADAPTIVEMAX1D:
        _adaptive(nt, 1, True, V, X, Y, acc)
    elif op == OP_ADAPTIVEMAX2D:
        _adaptive(nt, 2, True, V, X, Y, acc)
    elif op == OP_ADAPTIVEMAX3D:
        _adaptive(nt, 3, True, V, X, Y, acc)
    # (Identity and Dropout: nothing to count, the shape is the input's)


# ---- one tile --------------------------------------------------------------------------------------
cdef void _tile(int64_t a0, int nt, const int64_t* G, int64_t nl, const int64_t* deaths,
                const int64_t* cat_src, const int32_t** cols, const int32_t* consts, int64_t n,
                const int64_t* ishape, int ind, const int64_t* batch, int64_t in_birth,
                int64_t out_slot, int out_nd, int64_t limit, int64_t* S, int64_t* V, int64_t* acc, int64_t* LS,
                int64_t* tot, int64_t ts, int64_t* out_shape, unsigned char* needs_generic) noexcept nogil:
    cdef int a, f, j
    cdef int64_t k, op, ls, v
    cdef const int64_t* g
    cdef const int32_t* c
    cdef const int64_t* dies
    cdef int64_t* live
    cdef int64_t* X
    cdef int64_t* Y
    cdef bint unused
    for j in range(N_ACC * TILE):
        acc[j] = 0
    # the network input: slot 0, its storage alive from moment 0 (live slot in_birth)
    for a in range(nt):
        v = batch[a0 + a]
        S[TILE + a] = v
        for j in range(ind):
            S[(2 + j) * TILE + a] = ishape[(a0 + a) * ind + j]
            _flag(acc, a, cc_mul(v, ishape[(a0 + a) * ind + j], &v), 0)
        S[a] = v
        _flag(acc, a, 0, v)
        acc[A_IN * TILE + a] = v
        acc[A_LIVE * TILE + a] = v
        acc[A_PEAK * TILE + a] = v
        LS[in_birth * TILE + a] = v
    for k in range(nl):
        g = G + k * N_PROG
        op = g[G_OP]
        # the fields this op reads: a column's slice, or the template's value repeated
        for f in range(N_VAR):
            if not (g[G_NEED] >> f) & 1:
                continue
            c = cols[f]
            if c != NULL:
                c = c + k * n + a0
                for a in range(nt):
                    V[f * TILE + a] = c[a]
            else:
                v = consts[k * N_VAR + f]
                for a in range(nt):
                    V[f * TILE + a] = v
        X = S + g[G_XS] * REC * TILE
        Y = S + g[G_YS] * REC * TILE
        unused = g[G_UNUSED] != 0
        if unused:  # params and buffers count, nothing else: restore macs and flops after
            memcpy(acc + A_SAVED_MACS * TILE, acc + A_MACS * TILE, 2 * TILE * sizeof(int64_t))
        _run_op(op, g, nt, V, S, X, Y, acc, cat_src)
        if unused:
            memcpy(acc + A_MACS * TILE, acc + A_SAVED_MACS * TILE, 2 * TILE * sizeof(int64_t))
        # activations; liveness: storages whose last reader has run are freed, this row's is born
        if not unused:
            for a in range(nt):
                _acc(acc + A_ACT * TILE + a, Y[a])
        live = acc + A_LIVE * TILE
        for j in range(g[G_DN]):
            dies = LS + deaths[g[G_DOFF] + j] * TILE
            for a in range(nt):
                live[a] -= dies[a]
        ls = g[G_BIRTH]
        if ls >= 0:
            for a in range(nt):
                LS[ls * TILE + a] = Y[a]
                live[a] += Y[a]  # <= inputs + activations
        for a in range(nt):
            if live[a] > acc[A_PEAK * TILE + a]:
                acc[A_PEAK * TILE + a] = live[a]
    X = S + out_slot * REC * TILE
    for a in range(nt):
        for j in range(A_ACT + 1):
            tot[j * ts + a0 + a] = acc[j * TILE + a]
        tot[5 * ts + a0 + a] = acc[A_PEAK * TILE + a]
        for j in range(5):
            out_shape[(a0 + a) * 5 + j] = X[(1 + j) * TILE + a] if j < out_nd else 0
        needs_generic[a0 + a] = <uint64_t>acc[A_BAD * TILE + a] >= <uint64_t>limit


def openmp_enabled():
    return bool(CC_OPENMP)


def constants():
    """The numbers compiled into this kernel, for the planner (cnncore.columnar) and the tests."""
    return dict(TILE=TILE, REC=REC, N_PROG=N_PROG, N_VAR=N_VAR,
                ops=dict(Identity=OP_IDENTITY, Conv1d=OP_CONV1D, Conv3d=OP_CONV3D, Linear=OP_LINEAR,
                         BatchNorm1d=OP_BN1D, BatchNorm3d=OP_BN3D, ReLU=OP_RELU, PReLU=OP_PRELU,
                         Hardsigmoid=OP_HARDSIGMOID, MaxPool1d=OP_MAXPOOL1D, MaxPool3d=OP_MAXPOOL3D,
                         AvgPool1d=OP_AVGPOOL1D, AvgPool3d=OP_AVGPOOL3D,
                         AdaptiveAvgPool1d=OP_ADAPTIVEAVG1D, AdaptiveAvgPool3d=OP_ADAPTIVEAVG3D,
                         AdaptiveMaxPool1d=OP_ADAPTIVEMAX1D, AdaptiveMaxPool3d=OP_ADAPTIVEMAX3D,
                         Flatten=OP_FLATTEN, Add=OP_ADD, Mul=OP_MUL, Cat=OP_CAT),
                flags=dict(F_BIAS=F_BIAS, F_AFFINE=F_AFFINE, F_TRACK=F_TRACK, F_CEIL=F_CEIL, F_SAME=F_SAME))


def scratch_size(int64_t n_slots, int64_t n_live):
    """int64 entries of one thread's scratch: shape slots, fields, accumulators, live sizes."""
    return TILE * (REC * n_slots + N_VAR + N_ACC + n_live)


def count_columnar(const int64_t[:, ::1] program, const int64_t[::1] deaths, const int64_t[::1] cat_src,
                   tuple columns, const int32_t[:, ::1] consts, const int64_t[:, ::1] input_shape,
                   const int64_t[::1] batch_size, int64_t n_slots, int64_t n_live, int64_t in_birth,
                   int64_t out_slot, int out_nd, int64_t limit,
                   int64_t[:, ::1] totals, int64_t[:, ::1] output_shape, unsigned char[::1] needs_generic,
                   int64_t[:, ::1] scratch, int n_threads=1):
    """Count n architectures of one planned template. columns: N_VAR entries, each None (the
    template's value, consts[row, field]) or an int32 array (n_layers, n), C-contiguous.
    totals (6, n): params, buffers, macs, flops, activation elements, peak; output_shape (n, 5);
    needs_generic (n,): 1 where the generic core must count the architecture instead: a problem,
    or an addend of some count (or a size) >= limit, which must keep (n_layers + 2) * limit < 2^63."""
    cdef int64_t n = batch_size.shape[0], nl = program.shape[0], n_tiles, t, a0
    cdef int nt, f, tid
    cdef int ind = <int>input_shape.shape[1]
    cdef const int32_t* cols[N_VAR]
    cdef const int32_t[:, ::1] col
    cdef int64_t need = scratch_size(n_slots, n_live)
    cdef int64_t* base
    if (program.shape[1] != N_PROG or len(columns) != N_VAR or consts.shape[0] != nl
            or consts.shape[1] != N_VAR or input_shape.shape[0] != n or totals.shape[0] != 6
            or totals.shape[1] != n or output_shape.shape[0] != n or output_shape.shape[1] != 5
            or needs_generic.shape[0] != n or n_threads < 1 or scratch.shape[0] < n_threads
            or scratch.shape[1] < need or not 0 <= out_slot < n_slots or not 0 <= in_birth < n_live
            or not 1 <= ind <= 4 or not 1 <= out_nd <= 5):
        raise ValueError("count_columnar: arrays of the wrong shape")
    for f in range(N_VAR):
        cols[f] = NULL
        if columns[f] is not None:
            col = columns[f]
            if col.shape[0] != nl or col.shape[1] != n:
                raise ValueError(f"count_columnar: column {f} has shape {col.shape[0], col.shape[1]}")
            if n > 0 and nl > 0:
                cols[f] = &col[0, 0]
    if n == 0:
        return
    _check_program(program, deaths, cat_src, n_slots, n_live)
    n_tiles = (n + TILE - 1) // TILE
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        base = &scratch[tid, 0]
        for t in prange(n_tiles, schedule="static"):
            a0 = t * TILE
            nt = <int>(n - a0 if n - a0 < TILE else TILE)
            _tile(a0, nt, &program[0, 0] if nl > 0 else NULL, nl, &deaths[0] if deaths.shape[0] else NULL,
                  &cat_src[0] if cat_src.shape[0] else NULL, cols, &consts[0, 0] if nl > 0 else NULL, n,
                  &input_shape[0, 0], ind, &batch_size[0], in_birth, out_slot, out_nd, limit,
                  base, base + REC * n_slots * TILE, base + (REC * n_slots + N_VAR) * TILE,
                  base + (REC * n_slots + N_VAR + N_ACC) * TILE,
                  &totals[0, 0], n, &output_shape[0, 0], &needs_generic[0])


cdef _check_program(const int64_t[:, ::1] G, const int64_t[::1] deaths, const int64_t[::1] cat_src,
                    int64_t n_slots, int64_t n_live):
    """The planner is ours, but a bad slot index would write outside the scratch: check them all."""
    cdef Py_ssize_t k, j
    for k in range(G.shape[0]):
        if not (0 <= G[k, G_XS] < n_slots and 0 <= G[k, G_YS] < n_slots and 0 <= G[k, G_BS] < n_slots
                and -1 <= G[k, G_BIRTH] < n_live and G[k, G_DOFF] >= 0 and G[k, G_DN] >= 0
                and G[k, G_DOFF] + G[k, G_DN] <= deaths.shape[0] and G[k, G_COFF] >= 0
                and G[k, G_CN] >= 0 and G[k, G_COFF] + G[k, G_CN] <= cat_src.shape[0]
                and 1 <= G[k, G_NDX] <= 5 and 1 <= G[k, G_NDY] <= 5 and 1 <= G[k, G_NDB] <= 5
                and 0 <= G[k, G_A] <= G[k, G_B] < 5 and 0 <= G[k, G_DIMS] <= 4):
            raise ValueError(f"count_columnar: bad program row {k}")
    for j in range(deaths.shape[0]):
        if not 0 <= deaths[j] < n_live:
            raise ValueError("count_columnar: bad live slot")
    for j in range(cat_src.shape[0]):
        if not 0 <= cat_src[j] < n_slots:
            raise ValueError("count_columnar: bad cat slot")
