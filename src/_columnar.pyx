# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""cnncore's columnar kernel: architectures that share one topology, counted layer position by
layer position across a tile of architectures (docs/format.md, "Columnar batches").

Private. cnncore.columnar plans the template once in Python (static ndims, which shape record each
row reads and writes, when each storage is born and freed) and calls `count_columnar`, which walks
tiles of TILE architectures without the GIL (OpenMP `prange` over tiles when built with it). Inside a
tile the outer loop is the layer position and the inner loop the architectures: the op is known
once per position, each op is one loop over the tile (which the compiler vectorizes), and every
per-architecture value sits in a contiguous array of the tile. The fields a row reads are converted
once into float64 rows and checked there against the least value their op allows; the ops rely on it.

The kernel computes exact counts for valid architectures only. Anything a valid architecture
cannot have (a field out of range, a channel mismatch, a size < 1...), or a count of 2^52 or more,
only sets the architecture's `needs_generic` flag: cnncore.columnar then counts those architectures
with the generic core, which gives the exact error code and row. So this file never decides an
error code, and the columnar path cannot disagree with the generic one on an invalid architecture.
Arithmetic on a flagged architecture may be garbage, but it is float64 arithmetic, with every
computed size clamped to 1 .. 2^31 - 1, every field to its least value and every divisor to >= 1:
nothing traps.
"""
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from libc.math cimport floor
from cython.parallel cimport prange, parallel, threadid

cdef extern from *:
    """
    /* The kernel never reads floating-point exception flags: let gcc if-convert (and so vectorize)
       conditional float64 arithmetic, which -ftrapping-math (the default) forbids. */
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC optimize ("no-trapping-math")
    #endif
    """

cdef extern from *:
    # a pointer the compiler may assume no other pointer of the loop aliases (so it vectorizes
    # without run-time overlap checks); every caller passes rows of distinct tile arrays
    ctypedef double* rdouble "double *__restrict__"
    ctypedef const double* rcdouble "const double *__restrict__"

cdef extern from * nogil:
    """
    #if defined(__SSE4_1__) || defined(__aarch64__)
    #define CC_VECTOR_FLOOR 1
    #else
    #define CC_VECTOR_FLOOR 0
    #endif
    #if defined(__GNUC__)
    #define cc_prefetch(p) __builtin_prefetch(p, 0, 1)  /* into L2: more fetches in flight than L1 takes */
    #define cc_ctz(x) __builtin_ctzll(x)
    #else
    #define cc_prefetch(p) ((void)0)
    static inline int cc_ctz(uint64_t x) { int i = 0; while (!(x & 1)) { x >>= 1; i++; } return i; }
    #endif
    """
    void cc_prefetch(const void* p)  # a hint: never faults
    bint CC_VECTOR_FLOOR
    int cc_ctz(uint64_t x)  # the index of the lowest set bit of x != 0

cdef extern from * nogil:
    """
    #include <string.h>
    /* x, an integer in [0, 2^52), as an int64 through its bits: 2^52 + x is exact and has the bits
       0x4330000000000000 + x. One add and one integer subtract, so it vectorizes where a
       double-to-int64 conversion has no vector instruction (before AVX-512). */
    static inline int64_t cc_exact_to_i64(double x) {
    #if defined(__AVX512DQ__)
        return (int64_t)x;  /* one vector instruction (vcvttpd2qq) */
    #else
        double y = x + 4503599627370496.0;
        int64_t bits;
        memcpy(&bits, &y, sizeof bits);
        return bits - 0x4330000000000000LL;
    #endif
    }
    """
    int64_t cc_exact_to_i64(double x)

cdef extern from * nogil:
    """
    /* 1 / s for s a power of two (2^e, 0 <= e <= 30) through its bits: s is (1023 + e) << 52, 1 / s is
       (1023 - e) << 52, so 1 / s = (2046 << 52) - s's bits. One integer subtract, exact, where a
       vector division of the same lanes costs ~10 cycles. (For any other s: a wrong value, not a trap.) */
    static inline double cc_pow2_recip(double s) {
        int64_t bits;
        double r;
        memcpy(&bits, &s, sizeof bits);
        bits = 0x7FE0000000000000LL - bits;
        memcpy(&r, &bits, sizeof r);
        return r;
    }
    """
    double cc_pow2_recip(double s)

cdef extern from * nogil:
    """
    /* The AVX-512 build streams its outputs out with non-temporal stores, which skip reading the
       destination's cache lines before writing them (the outputs are written once and not read
       again here): 4 % faster there. The AVX2 build measured 11 % slower with them: it stores
       directly. cc_stream: n int64 from src to dst (the unaligned head and the tail: plain stores);
       cc_store_fence() orders them before anything after it. */
    #if defined(__AVX512F__) && defined(__AVX512DQ__)
    #include <immintrin.h>
    #define CC_STREAM_OUT 1
    static inline void cc_stream(int64_t *dst, const int64_t *src, int n) {
        int i = 0;
        for (; i < n && ((uintptr_t)(dst + i) % 64) != 0; i++) dst[i] = src[i];
        for (; i + 8 <= n; i += 8) _mm512_stream_si512((void *)(dst + i), _mm512_loadu_si512((const void *)(src + i)));
        for (; i < n; i++) dst[i] = src[i];
    }
    /* dst[i] = src[i] (an integer below 2^52) where ok[i] != 0, else 0: converted and streamed in
       one pass, without staging the int64 values in the scratch first */
    static inline void cc_stream_exact(int64_t *dst, const double *src, const double *ok, int n) {
        int i = 0;
        for (; i < n && ((uintptr_t)(dst + i) % 64) != 0; i++) dst[i] = ok[i] != 0.0 ? (int64_t)src[i] : 0;
        for (; i + 8 <= n; i += 8) {
            __mmask8 m = _mm512_cmp_pd_mask(_mm512_loadu_pd(ok + i), _mm512_setzero_pd(), _CMP_NEQ_UQ);
            _mm512_stream_si512((void *)(dst + i), _mm512_maskz_cvttpd_epi64(m, _mm512_loadu_pd(src + i)));
        }
        for (; i < n; i++) dst[i] = ok[i] != 0.0 ? (int64_t)src[i] : 0;
    }
    /* The output shapes of architectures 0 .. n - 1: dst[5 a + j] = dim j of architecture a (rows[j * row + a],
       0 past nd dims and where ok[a] == 0.0). Eight architectures at a time: their nd dim vectors
       converted, then each of the five output vectors (40 entries: eight records of five) gathered
       from them in registers with one masked permute per dim, and streamed out (stored where dst is
       not on a cache line's start). The rest one at a time. */
    static inline void cc_stream_shape(int64_t *dst, const double *rows, int row, const double *ok, int nd, int n) {
        /* output vector m, lane e: entry 8 m + e of the eight records, i.e. dim (8 m + e) % 5 of
           architecture (8 m + e) / 5; dim_of[m][j]: the lanes of output vector m that hold dim j */
        static const long long arch[5][8] = {{0, 0, 0, 0, 0, 1, 1, 1}, {1, 1, 2, 2, 2, 2, 2, 3},
                                             {3, 3, 3, 3, 4, 4, 4, 4}, {4, 5, 5, 5, 5, 5, 6, 6},
                                             {6, 6, 6, 7, 7, 7, 7, 7}};
        static const __mmask8 dim_of[5][5] = {{0x21, 0x42, 0x84, 0x08, 0x10}, {0x84, 0x08, 0x10, 0x21, 0x42},
                                              {0x10, 0x21, 0x42, 0x84, 0x08}, {0x42, 0x84, 0x08, 0x10, 0x21},
                                              {0x08, 0x10, 0x21, 0x42, 0x84}};
        int64_t a = 0;
        int m, j;
        __m512i v[5];
        const int aligned = ((uintptr_t)dst % 64) == 0;
        for (; a + 8 <= n; a += 8) {
            __mmask8 keep = _mm512_cmp_pd_mask(_mm512_loadu_pd(ok + a), _mm512_setzero_pd(), _CMP_NEQ_UQ);
            for (j = 0; j < nd; j++) v[j] = _mm512_maskz_cvttpd_epi64(keep, _mm512_loadu_pd(rows + j * row + a));
            for (m = 0; m < 5; m++) {
                __m512i out = _mm512_setzero_si512();
                __m512i idx = _mm512_loadu_si512((const void *)arch[m]);
                for (j = 0; j < nd; j++) out = _mm512_mask_permutexvar_epi64(out, dim_of[m][j], idx, v[j]);
                if (aligned) _mm512_stream_si512((void *)(dst + 5 * a + 8 * m), out);
                else _mm512_storeu_si512((void *)(dst + 5 * a + 8 * m), out);
            }
        }
        for (dst += 5 * a; a < n; a++, dst += 5)
            for (j = 0; j < 5; j++) dst[j] = (j < nd && ok[a] != 0.0) ? (int64_t)rows[j * row + a] : 0;
    }
    static inline void cc_store_fence(void) { _mm_sfence(); }
    #else
    #define CC_STREAM_OUT 0
    static inline void cc_stream(int64_t *dst, const int64_t *src, int n) { memcpy(dst, src, (size_t)n * sizeof(int64_t)); }
    static inline void cc_stream_exact(int64_t *dst, const double *src, const double *ok, int n) {}  /* (not called) */
    static inline void cc_stream_shape(int64_t *dst, const double *rows, int row, const double *ok, int nd, int n) {}
    static inline void cc_store_fence(void) {}
    #endif
    """
    void cc_stream(int64_t* dst, const int64_t* src, int n)
    void cc_stream_exact(int64_t* dst, const double* src, const double* ok, int n)
    void cc_stream_shape(int64_t* dst, const double* rows, int row, const double* ok, int nd, int n)
    void cc_store_fence()
    bint CC_STREAM_OUT

cdef extern from "_checked.h" nogil:
    bint cc_mul(int64_t a, int64_t b, int64_t* r)
    bint cc_add(int64_t a, int64_t b, int64_t* r)
    int CC_OPENMP

# ---- the format's op codes and flag bits (shared with the core) ----
include "_format.pxi"

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
    REC = 6  # a shape slot holds REC rows (of TILE values, ROW apart): numel, then dims 0..4 (dim 0 = the batch)
    N_ACC = 15  # per-architecture rows of a tile
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
    A_ZERO = 11  # zeros: what dies at a moment where nothing dies
    A_SINK = 12  # where a row without storage of its own writes its size
    A_TEMP = 13  # two rows of temporaries of one op

cdef enum:
    # a lead row's followers (_plan_chains): what they add, per lead row
    C_ROWS = 0  # followers (their outputs' elements join the activations)
    C_FLOPS = 1  # flops per element, over the followers
    C_PARAMS = 2  # params per channel
    C_BUFS = 3  # buffers per channel
    C_BUF1 = 4  # buffers per row (BatchNorm's num_batches_tracked)
    N_CHAIN = 5
    MAX_FOLLOW = 2
    U_ROWS = 0  # (fused) a lead row's followers
    U_D1 = 1  # what dies at each follower's moment: a live slot, U_NONE or U_INSIDE
    U_D2 = 2
    U_B1 = 3  # the followers' own live slots
    U_B2 = 4
    N_FUSED = 5
    U_NONE = -1  # nothing
    U_INSIDE = -2  # a storage born in the chain (y elements)

cdef enum:
    ALIGN_SLACK = 8  # int64 entries of scratch beyond the tile arrays (see _aligned)
    ROW = 72  # entries from one row of the tile arrays to the next: TILE and one cache line more, so
    # no two of the scratch's rows (fewer than 64 apart) share their low 12 address bits; at a
    # stride of TILE, rows 8 apart did, and a load could wait on a store to the other (4K
    # aliasing): 0.94-0.97x the time at ROW = TILE (101 alternating rounds, 19:05 UTC)
    TILE = 64  # architectures per tile: one tile's shape slots stay in L1 (64 measured faster than 128, 256)
    AHEAD = 2  # the tile whose columns are prefetched, counted from the current one (measured best)

cdef uint64_t PLAIN_ROW = <uint64_t>1 << 62  # _row_need: the row is plain (_plain)

cdef enum:
    DIM_MAX = 2147483647  # every tensor dimension stays int32, as in the core
cdef int64_t ACT_FLOPS[11]
ACT_FLOPS[:] = [1, 2, 2, 2, 4, 5, 4, 3, 1, 5, 4]


# ---- exact integer arithmetic in float64 ---------------------------------------------------------
# Every per-architecture value of a tile is an integer held in a double: exact below 2^53, and
# float64 arithmetic vectorizes across architectures where int64 (multiplies, compares) does not on
# baseline x86-64. A product or sum that reaches 2^53 rounds to >= 2^53 (rounding is monotone), so
# the totals checked against EXACT at the end of the tile catch every inexact value (subtractions
# check their operand first); such an architecture goes to the generic core.
cdef double EXACT = 9007199254740992.0  # 2^53
cdef double OUT_MAX = 4503599627370496.0  # 2^52: the kernel's totals stay below it (cc_exact_to_i64)
cdef double ROUND = 6755399441055744.0  # 2^52 + 2^51: (q + ROUND) - ROUND rounds q to an integer


cdef inline double _b(bint cond) noexcept nogil:
    return 1.0 if cond else 0.0


cdef inline double _fdiv(double a, double b) noexcept nogil:
    """floor(a / b) for integers 0 <= a < 2^51, b >= 1. With SSE4.1 (the AVX2 build) one vector
    floor: the rounded quotient cannot reach the next integer, since that would need a / b within
    (a / b) 2^-53 of it, closer than 1 / b. SSE2 has no vector floor: the quotient rounded to the
    nearest integer, then one step down if that overshot."""
    cdef double r
    if CC_VECTOR_FLOOR:
        return floor(a / b)
    r = (a / b + ROUND) - ROUND
    return r - _b(r * b > a)


cdef inline double _floor(double q) noexcept nogil:
    """floor(q) for 0 <= q < 2^51 (SSE2: rounded to the nearest integer, then one step down if that overshot)."""
    cdef double r
    if CC_VECTOR_FLOOR:
        return floor(q)
    r = (q + ROUND) - ROUND
    return r - _b(r > q)


cdef inline double _at_least_1(double v) noexcept nogil:
    return v if v > 1.0 else 1.0  # (vmaxpd)


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
# X, Y, B: shape slots (X[j * ROW + a]: j = 0 numel, 1 + i dim i); V: the fields (V[f * ROW + a]),
# each at least its _lowest; acc: the accumulators. A problem only adds to acc[A_BAD]; sizes are then
# clamped to 1 .. 2^31-1 (so nothing downstream is undefined) and the counts are meaningless. Each op
# is one loop over the architectures (the compiler vectorizes it); the spatial dims d are a constant
# at each call, so their loop unrolls inside it.

cdef inline double _conv_size(double x, double eff, double s, double p, bint same, bint pow2,
                              bint* bad) noexcept nogil:
    """Output size of one spatial dimension of a convolution: input size x, effective kernel
    eff = d (k - 1) + 1, stride s >= 1, padding p >= 0. pow2: s is a power of two (_tile checked
    it in every architecture of the tile): the quotient is then an exact product, no division."""
    cdef double o
    cdef double pad = eff - 1.0 if same else 2.0 * p  # 'same' pads eff - 1 in all (stride 1 only)
    x = x + pad
    o = x - eff
    o = o if o > 0.0 else 0.0
    o = (_floor(o * cc_pow2_recip(s)) if pow2 else _fdiv(o, s)) + 1.0
    # (one flag for all: the problems or'ed, then counted once per row in _conv_at)
    bad[0] = bad[0] | (x < eff) | (same & (s != 1.0)) | (o > DIM_MAX)
    return 1.0 if o > DIM_MAX else o


cdef inline int32_t _lowest(int64_t op, int f) noexcept nogil:
    """The least value field f may take in op (any less fails): the ops rely on it, the tile checks it."""
    if f == V_IN:
        return 1 if op == OP_PRELU else 0
    if V_P <= f < V_P + 3 or (V_K <= f < V_K + 3 and OP_ADAPTIVEAVG1D <= op <= OP_ADAPTIVEMAX3D):
        return 0  # padding; an adaptive pooling's output size (0: the input's)
    return 1  # out, groups, kernel, stride, dilation


cdef inline bint _plain(int64_t op, const int64_t* g, int64_t k, const int32_t** cols, const int32_t* consts) noexcept nogil:
    """Row k is a plain Conv2d (groups and dilations the template's 1, not 'same') or a plain
    batchnorm (tracking running statistics, in-size the template's 0: nothing to check)."""
    cdef const int32_t* c = consts + k * N_VAR
    if OP_BN1D <= op <= OP_BN3D:
        return (g[G_FLAGS] & F_TRACK) != 0 and cols[V_IN] == NULL and c[V_IN] == 0
    return (op == OP_CONV2D and not g[G_FLAGS] & F_SAME and cols[V_GROUPS] == NULL and c[V_GROUPS] == 1
            and cols[V_D] == NULL and c[V_D] == 1 and cols[V_D + 1] == NULL and c[V_D + 1] == 1)


cdef uint64_t _row_need(int64_t op, const int64_t* g, int64_t k, const int32_t** cols, const int32_t* consts) noexcept nogil:
    """The fields a tile converts for row k (the op's G_NEED bits, less the groups and dilations a
    plain Conv2d does not read: the template's 1, never a column), and PLAIN_ROW where _plain holds."""
    cdef uint64_t need = <uint64_t>g[G_NEED]
    cdef int f
    if not _plain(op, g, k, cols, consts):
        return need
    if op == OP_CONV2D:
        for f in range(V_D, V_D + 3):
            need &= ~(<uint64_t>1 << f)
        need &= ~(<uint64_t>1 << V_GROUPS)
    return need | PLAIN_ROW


cdef int64_t _square_row(int64_t op, const int64_t* g) noexcept nogil:
    """A 2-d convolution or pooling: the bits of the dim-1 fields it reads (kernel, stride, padding,
    dilation), which a tile skips where _square_fields holds; -1 for any other op."""
    cdef uint64_t need = <uint64_t>g[G_NEED], drop = 0
    cdef int f
    if not (op == OP_CONV2D or op == OP_MAXPOOL2D or op == OP_AVGPOOL2D or op == OP_ADAPTIVEAVG2D
            or op == OP_ADAPTIVEMAX2D):
        return -1
    for f in range(V_K + 1, V_D + 2, 3):
        drop |= need & (<uint64_t>1 << f)
    return <int64_t>drop


cdef inline bint _square_fields(int nt, uint64_t drop, const int32_t** cols, const int32_t* consts,
                                int64_t offset, bint ahead) noexcept nogil:
    """Every dim-1 field in drop equals its dim-0 field in each architecture of the tile (this
    row's values: a column's slice from offset, or the template's value). Then, on a square input
    record (H = W), the op's dim 1 is its dim 0: it computes it once and the dim-1 fields are not read.
    ahead: prefetch tile AHEAD's slice of a dim-1 column compared here (the tile does not read it)."""
    cdef int f, a
    cdef int32_t diff
    cdef const int32_t* c0
    cdef const int32_t* c1
    cdef int32_t v
    while drop:
        f = cc_ctz(drop)
        drop &= drop - 1
        c0, c1 = cols[f - 1], cols[f]
        if c0 == c1:  # both the template's values, or one array given for both fields
            if c0 == NULL and consts[f - 1] != consts[f]:
                return False
            continue
        diff = 0
        if c0 != NULL and c1 != NULL:
            c0, c1 = c0 + offset, c1 + offset
            for a in range(nt):
                diff |= c0[a] ^ c1[a]
            if ahead:
                for a in range(AHEAD * TILE, (AHEAD + 1) * TILE, 16):
                    cc_prefetch(c1 + a)
        else:
            v = consts[f] if c1 == NULL else consts[f - 1]
            c0 = c0 + offset if c0 != NULL else c1 + offset
            for a in range(nt):
                diff |= c0[a] ^ v
        if diff != 0:
            return False
    return True


cdef inline double _conv_at(int a, int d, bint plain, bint square, bint pow2, bint same, double pbias, double fbias,
                            const double* V, const double* X, double* Y, double* P, double* M, double* F,
                            double* bad_row) noexcept nogil:
    """Architecture a of a convolution (_conv): its output record into Y, its params, macs, flops and
    problems onto P, M, F, bad_row; returns numel(y). pbias: params per output channel beyond the
    weights (the bias, 1 or 0, and those of the followers of a chain, _live_chain); fbias: flops
    per output element beyond 2n (the bias - 1, and the followers'). plain (_plain): no division by the groups,
    the kernel volume is the effective kernel; square (_square_row): dim 1 is dim 0 again, computed once.
    (Plain pointers: inlined into a loop, it has the loop function's restrict ones; restrict here
    would hold for one call only, and gcc then did not vectorize the loop.)"""
    cdef int i
    cdef double inn, out, g, ch, cpg, k, s, p, dl, eff, o, n, numel
    cdef bint bad
    inn, out = V[V_IN * ROW + a], V[V_OUT * ROW + a]
    ch = X[2 * ROW + a]
    bad = (inn != 0.0) & (inn != ch)
    cpg = ch
    if not plain:
        g = V[V_GROUPS * ROW + a]
        cpg = _fdiv(ch, g)
        bad = bad | (cpg * g != ch) | (_fdiv(out, g) * g != out)
    n = cpg  # times the kernel volume: the dot-product length
    numel = X[ROW + a] * out  # times the spatial sizes: numel(y)
    for i in range(1 if square else d):
        k, s, p = V[(V_K + i) * ROW + a], V[(V_S + i) * ROW + a], V[(V_P + i) * ROW + a]
        dl = 1.0 if plain else V[(V_D + i) * ROW + a]
        eff = k if plain else dl * (k - 1.0) + 1.0
        o = _conv_size(X[(3 + i) * ROW + a], eff, s, p, same, pow2, &bad)
        Y[(3 + i) * ROW + a] = o
        numel = numel * o
        n = n * k
    if square:  # the same products as the loop's second pass
        Y[4 * ROW + a] = o
        numel = numel * o
        n = n * k
    Y[ROW + a] = X[ROW + a]
    Y[2 * ROW + a] = out
    Y[a] = numel
    # params = out*(n + bias); macs = numel*n; flops = numel*(2n - 1 + bias) (each an integer: exact
    # below 2^53, and >= 2^53 otherwise, however grouped)
    P[a] += out * (n + pbias)
    M[a] += numel * n
    F[a] += numel * (2.0 * n + fbias)
    bad_row[a] += _b(bad | (n >= EXACT))
    return numel


cdef inline void _conv(int nt, int d, bint plain, bint square, bint pow2, int64_t flags, rcdouble V, rcdouble X,
                       rdouble Y, double* acc) noexcept nogil:
    _conv_rows(nt, d, plain, square, pow2, flags, V, X, Y, acc + A_PARAMS * ROW, acc + A_MACS * ROW,
               acc + A_FLOPS * ROW, acc + A_BAD * ROW)


cdef inline void _conv_rows(int nt, int d, bint plain, bint square, bint pow2, int64_t flags, rcdouble V, rcdouble X,
                            rdouble Y, rdouble P, rdouble M, rdouble F, rdouble bad) noexcept nogil:
    cdef int a
    cdef double bias = 1.0 if flags & F_BIAS else 0.0
    cdef bint same = (flags & F_SAME) != 0 and not plain
    for a in range(nt):
        _conv_at(a, d, plain, square, pow2, same, bias, bias - 1.0, V, X, Y, P, M, F, bad)


cdef inline void _linear(int nt, int last, int64_t flags, rcdouble V, rcdouble X, rdouble Y, rdouble acc,
                         int ndx) noexcept nogil:
    cdef int a
    cdef double inn, out, ch, numel
    cdef double bias = 1.0 if flags & F_BIAS else 0.0
    memcpy(Y + ROW, X + ROW, ndx * ROW * sizeof(double))  # the dims; the last is replaced below
    for a in range(nt):
        inn, out = V[V_IN * ROW + a], V[V_OUT * ROW + a]
        ch = X[(1 + last) * ROW + a]
        acc[A_BAD * ROW + a] += _b((inn != 0.0) & (inn != ch))
        # numel(x) / ch is exact: ch divides it, and numel(x) < 2^53 in an architecture that passes
        numel = X[a] / _at_least_1(ch) * out
        Y[(1 + last) * ROW + a] = out
        Y[a] = numel
        acc[A_PARAMS * ROW + a] += ch * out + bias * out
        acc[A_MACS * ROW + a] += numel * ch
        acc[A_FLOPS * ROW + a] += numel * (2.0 * ch - 1.0 + bias)


cdef inline void _batchnorm(int nt, bint plain, int64_t flags, rcdouble V, const double* X, rdouble acc) noexcept nogil:
    # plain (_plain): nothing to check
    cdef int a
    cdef double inn, ch
    cdef double checked = _b((flags & (F_AFFINE | F_TRACK)) != 0), batch_stats = _b((flags & F_TRACK) == 0)
    cdef double bias = 1.0 if flags & F_BIAS else 0.0
    cdef double weights = (1.0 + bias) if flags & F_AFFINE else 0.0  # per channel
    cdef double stats = 2.0 if flags & F_TRACK else 0.0, tracked = _b((flags & F_TRACK) != 0)
    cdef double per = 2.0 + weights  # flops per element
    for a in range(nt):
        inn = V[V_IN * ROW + a]
        ch = X[2 * ROW + a]
        if not plain:
            acc[A_BAD * ROW + a] += (checked * _b((inn != 0.0) & (ch != inn))
                                      + batch_stats * _b(X[a] == ch))  # statistics over one value per channel
        acc[A_PARAMS * ROW + a] += weights * ch
        acc[A_BUFFERS * ROW + a] += stats * ch + tracked
        acc[A_FLOPS * ROW + a] += X[a] * per


cdef inline void _elementwise(int nt, double per, const double* X, rdouble acc) noexcept nogil:
    """An activation: per flops per element, the shape unchanged."""
    cdef int a
    for a in range(nt):
        acc[A_FLOPS * ROW + a] += X[a] * per


cdef inline void _prelu(int nt, int ndx, rcdouble V, const double* X, rdouble acc) noexcept nogil:
    cdef int a
    cdef double n
    for a in range(nt):
        n = V[V_IN * ROW + a]
        acc[A_BAD * ROW + a] += _b((n > 1.0) & ((ndx < 2) | (X[2 * ROW + a] != n)))
        acc[A_PARAMS * ROW + a] += n
        acc[A_FLOPS * ROW + a] += X[a] * 2.0


cdef inline void _pool(int nt, int d, bint is_max, bint square, int64_t flags, rcdouble V, const double* X,
                       rdouble Y, rdouble acc) noexcept nogil:
    # square (_square_row): dim 1 is dim 0 again, computed once
    cdef int a, i
    cdef double k, s, p, dl, num, o, xi, kvol, numel, bad
    cdef double ceil = _b((flags & F_CEIL) != 0)  # 1.0 for ceil_mode
    for a in range(nt):
        bad = 0.0
        kvol = 1.0
        numel = X[ROW + a] * X[2 * ROW + a]
        for i in range(1 if square else d):
            k, s, p, xi = V[(V_K + i) * ROW + a], V[(V_S + i) * ROW + a], V[(V_P + i) * ROW + a], X[(3 + i) * ROW + a]
            dl = V[(V_D + i) * ROW + a] if is_max else 1.0  # avg pooling has no dilation
            bad += _b(2.0 * p > k)  # p <= k / 2
            if d == 3 and not is_max:
                bad += _b(xi < k)  # ATen's avg_pool3d: the unpadded input at least the kernel
            num = xi + 2.0 * p - dl * (k - 1.0) - 1.0 + ceil * (s - 1.0)
            bad += _b(num < 0.0)  # an output size < 1
            o = _fdiv(num if num > 0.0 else 0.0, s) + 1.0
            o = o - ceil * _b((o - 1.0) * s >= xi + p)  # the last window must start inside
            bad += _b(o < 1.0) + _b(o > DIM_MAX)  # padding can take the output past DIM_MAX: OVERFLOW
            o = _at_least_1(o)
            o = 1.0 if o > DIM_MAX else o
            Y[(3 + i) * ROW + a] = o
            numel = numel * o
            kvol = kvol * k
        if square:  # the same products as the loop's second pass
            Y[4 * ROW + a] = o
            numel = numel * o
            kvol = kvol * k
        Y[ROW + a] = X[ROW + a]
        Y[2 * ROW + a] = X[2 * ROW + a]
        Y[a] = numel
        acc[A_FLOPS * ROW + a] += numel * (kvol - 1.0 if is_max else kvol)
        acc[A_BAD * ROW + a] += bad + _b(kvol >= EXACT)


cdef inline void _adaptive(int nt, int d, bint is_max, bint square, rcdouble V, rcdouble X, rdouble Y,
                           rdouble acc) noexcept nogil:
    # square (_square_row): dim 1 is dim 0 again, computed once
    cdef int a, i
    cdef int64_t odd  # some output size is neither 1 nor the input's
    cdef double n, o
    cdef double* total = acc + A_TEMP * ROW  # the elements every window reads, over the outputs
    cdef double* w = acc + (A_TEMP + 1) * ROW
    for a in range(nt):
        Y[ROW + a] = X[ROW + a]
        Y[2 * ROW + a] = X[2 * ROW + a]
        Y[a] = X[ROW + a] * X[2 * ROW + a]
        total[a] = Y[a]
    for i in range(1 if square else d):
        odd = 0
        for a in range(nt):
            n, o = X[(3 + i) * ROW + a], V[(V_K + i) * ROW + a]
            o = n if o == 0.0 else o  # 0: the input's size
            Y[(3 + i) * ROW + a] = o
            Y[a] = Y[a] * o
            # the windows [floor(j n / o), ceil((j + 1) n / o)) add up to n + o - gcd(n, o)
            w[a] = n + o - (n if o == n else 1.0)
            odd |= (o != 1.0) & (o != n)
        if odd:  # then the gcd, one architecture at a time
            for a in range(nt):
                w[a] = X[(3 + i) * ROW + a] + Y[(3 + i) * ROW + a] - <double>_gcd(
                    <int64_t>X[(3 + i) * ROW + a], <int64_t>Y[(3 + i) * ROW + a])
        for a in range(nt):
            total[a] = total[a] * w[a]
    if square:  # the same products as the loop's second pass
        for a in range(nt):
            Y[4 * ROW + a] = Y[3 * ROW + a]
            Y[a] = Y[a] * Y[3 * ROW + a]
            total[a] = total[a] * w[a]
    for a in range(nt):
        acc[A_FLOPS * ROW + a] += total[a] - Y[a] if is_max else total[a]
        acc[A_BAD * ROW + a] += _b(total[a] >= EXACT)


cdef inline void _flatten(int nt, int s, int e, int ndx, rcdouble X, rdouble Y, rdouble acc) noexcept nogil:
    cdef int a, i
    cdef double* v = Y + (1 + s) * ROW  # the product of dims s..e (divides numel(x): exact)
    memcpy(Y, X, (2 + s) * ROW * sizeof(double))  # numel, the dims up to s
    memcpy(Y + (2 + s) * ROW, X + (2 + e) * ROW, (ndx - 1 - e) * ROW * sizeof(double))  # after e
    for i in range(s + 1, e + 1):
        for a in range(nt):
            v[a] = v[a] * X[(1 + i) * ROW + a]
    for a in range(nt):
        acc[A_BAD * ROW + a] += _b(v[a] > DIM_MAX)  # the generic path: OVERFLOW
        v[a] = 1.0 if v[a] > DIM_MAX else v[a]


cdef inline void _broadcast(int nt, int na, int nb, const double* X, const double* B, double* Y,
                            double* acc) noexcept nogil:
    cdef int a, i, nd = na if na > nb else nb
    cdef double da, db, numel, bad
    for a in range(nt):
        bad = 0.0
        numel = 1.0
        for i in range(nd):  # i counts from the right
            da = X[(na - i) * ROW + a] if i < na else 1.0
            db = B[(nb - i) * ROW + a] if i < nb else 1.0
            bad += _b((da != db) & (da != 1.0) & (db != 1.0))
            da = da if db == 1.0 else db
            Y[(nd - i) * ROW + a] = da
            numel = numel * da
        Y[a] = numel
        acc[A_FLOPS * ROW + a] += numel
        acc[A_BAD * ROW + a] += bad


cdef inline void _cat(int nt, int dim, int nd, const double* X, const double* S, const int64_t* src,
                      int64_t cn, double* Y, double* acc) noexcept nogil:
    cdef int a, i
    cdef int64_t j
    cdef double total, numel, bad
    cdef const double* T
    for a in range(nt):
        bad = 0.0
        total = X[(1 + dim) * ROW + a]
        for j in range(cn):
            T = S + src[j] * REC * ROW
            for i in range(nd):
                if i != dim:
                    bad += _b(T[(1 + i) * ROW + a] != X[(1 + i) * ROW + a])
            total = total + T[(1 + dim) * ROW + a]  # each < 2^31
        bad += _b(total > DIM_MAX)
        total = 1.0 if total > DIM_MAX else total
        for i in range(nd):
            Y[(1 + i) * ROW + a] = X[(1 + i) * ROW + a]
        Y[(1 + dim) * ROW + a] = total
        numel = 1.0
        for i in range(nd):
            numel = numel * Y[(1 + i) * ROW + a]
        Y[a] = numel
        acc[A_BAD * ROW + a] += bad


cdef inline void _run_op(int64_t op, const int64_t* g, bint plain, bint square, bint pow2, int nt, rcdouble V,
                         double* S, const double* X, double* Y, double* acc, const int64_t* cat_src) noexcept nogil:
    """Layer position g over one tile (the spatial dims of a family: 1, 2, 3 in op-code order).
    square: a 2-d op whose dim 1 is its dim 0 in every architecture of the tile (_square_row);
    pow2: a convolution whose strides are powers of two in every architecture of the tile."""
    cdef int64_t flags = g[G_FLAGS]
    if op == OP_CONV2D:  # the common case first; each call below is its own specialised loop
        if plain and square:
            if pow2:
                _conv(nt, 2, True, True, True, flags, V, X, Y, acc)
            else:
                _conv(nt, 2, True, True, False, flags, V, X, Y, acc)
        elif plain:
            if pow2:
                _conv(nt, 2, True, False, True, flags, V, X, Y, acc)
            else:
                _conv(nt, 2, True, False, False, flags, V, X, Y, acc)
        elif square:
            _conv(nt, 2, False, True, False, flags, V, X, Y, acc)
        else:
            _conv(nt, 2, False, False, False, flags, V, X, Y, acc)
    elif op == OP_RELU:
        _elementwise(nt, 1, X, acc)
    elif OP_BN1D <= op <= OP_BN3D:
        if plain:
            _batchnorm(nt, True, flags, V, X, acc)
        else:
            _batchnorm(nt, False, flags, V, X, acc)
    elif op == OP_CONV1D or op == OP_CONV3D:
        _conv(nt, <int>(op - OP_CONV1D + 1), False, False, False, flags, V, X, Y, acc)
    elif op == OP_PRELU:
        _prelu(nt, <int>g[G_NDX], V, X, acc)
    elif OP_RELU < op <= OP_HARDSIGMOID:
        _elementwise(nt, ACT_FLOPS[op - OP_RELU], X, acc)
    elif op == OP_MAXPOOL2D:
        if square:
            _pool(nt, 2, True, True, flags, V, X, Y, acc)
        else:
            _pool(nt, 2, True, False, flags, V, X, Y, acc)
    elif op == OP_AVGPOOL2D:
        if square:
            _pool(nt, 2, False, True, flags, V, X, Y, acc)
        else:
            _pool(nt, 2, False, False, flags, V, X, Y, acc)
    elif op == OP_MAXPOOL1D or op == OP_MAXPOOL3D:
        _pool(nt, <int>(op - OP_MAXPOOL1D + 1), True, False, flags, V, X, Y, acc)
    elif op == OP_AVGPOOL1D or op == OP_AVGPOOL3D:
        _pool(nt, <int>(op - OP_AVGPOOL1D + 1), False, False, flags, V, X, Y, acc)
    elif OP_ADAPTIVEAVG1D <= op <= OP_ADAPTIVEMAX3D:
        _adaptive(nt, <int>((op - OP_ADAPTIVEAVG1D) % 3 + 1), op >= OP_ADAPTIVEMAX1D, square, V, X, Y, acc)
    elif op == OP_LINEAR:
        _linear(nt, <int>g[G_DIMS], flags, V, X, Y, acc, <int>g[G_NDX])
    elif op == OP_FLATTEN:
        _flatten(nt, <int>g[G_A], <int>g[G_B], <int>g[G_NDX], X, Y, acc)
    elif op == OP_ADD or op == OP_MUL:
        _broadcast(nt, <int>g[G_NDX], <int>g[G_NDB], X, S + g[G_BS] * REC * ROW, Y, acc)
    elif op == OP_CAT:
        _cat(nt, <int>g[G_A], <int>g[G_NDX], X, S, cat_src + g[G_COFF], g[G_CN], Y, acc)
    # (Identity and Dropout: nothing to count, the shape is the input's)


cdef inline void _live(int nt, double used, double born, const double* Y, rcdouble dies, rdouble birth,
                       rdouble live, rdouble act, rdouble peak) noexcept nogil:
    """After a row: its output's elements join the activations (used: 1.0, or 0.0 for an unused
    row), the storage dying at its moment leaves the live total, its own (born: 1.0) joins, and the
    peak follows. dies and birth are distinct live slots (the planner's promise)."""
    cdef int a
    cdef double y, l
    for a in range(nt):
        y = Y[a]
        act[a] += used * y
        l = live[a] - dies[a] + born * y  # <= inputs + activations
        birth[a] = y
        live[a] = l
        peak[a] = l if l > peak[a] else peak[a]


cdef inline void _live_chain(int nt, bint norm, int followers, const double* c, rdouble Y, rcdouble dies,
                            rcdouble d1, rcdouble d2, double in1, double in2, rdouble birth, rdouble b1, rdouble b2,
                            rdouble live, rdouble act, rdouble peak, rdouble params, rdouble buffers, rdouble flops,
                            bint conv, bint square, bint pow2, int64_t flags, rcdouble V, rcdouble X, rdouble macs,
                            rdouble bad) noexcept nogil:
    """_live of a used lead row with storage of its own, and in the same pass everything its
    followers (_plan_chains) count: they keep its shape, so each adds a multiple of its elements y
    (or of its channels, norm: a BatchNorm among them) to a total, its storage (y) to the live
    total, and takes away what dies at its moment (d1 + in1 y, d2 + in2 y: d a live slot or the
    zero row, in 1.0 where a storage born in the chain dies: its size is y). followers: the
    followers whose moments change the live total, 1 or 2 (a second follower where a storage of y
    elements dies, in2 = 1 and d2 the zero row, leaves it as it was: l - y + y, exact for any l
    the tile keeps, since l >= y; counted as 1).
    b1, b2: the followers' live slots (the second a scratch row when there is one follower). The
    arrays written are distinct from each other and from those read (_plan_chains checks it).
    conv: the lead is a plain Conv2d (square: see _conv), counted in this loop too (_conv_at): its
    output's elements and channels stay in registers for the followers, one pass instead of two.
    Sums of integers: exact below 2^53, and >= 2^53 (caught at the end of the tile) otherwise."""
    cdef int a
    cdef double y, l, pk, ch
    cdef double rows = 1.0 + c[C_ROWS], fe = c[C_FLOPS]
    cdef double pc = c[C_PARAMS], bc = c[C_BUFS], bk = c[C_BUF1]
    cdef double bias = 1.0 if flags & F_BIAS else 0.0
    # a conv lead adds the followers' params per channel and flops per element to its own (one
    # product each instead of two)
    cdef double pbias = bias + (pc if norm else 0.0), fbias = bias - 1.0 + fe
    for a in range(nt):
        if conv:
            y = _conv_at(a, 2, True, square, pow2, False, pbias, fbias, V, X, Y, params, macs, flops, bad)
            ch = V[V_OUT * ROW + a]
        else:
            y = Y[a]
            ch = Y[2 * ROW + a]
        act[a] += rows * y
        l = live[a] - dies[a] + y
        birth[a] = y
        b1[a] = y
        b2[a] = y
        pk = l if l > peak[a] else peak[a]
        l = l - (d1[a] + in1 * y) + y  # the first follower's moment
        pk = l if l > pk else pk
        if followers == 2:
            l = l - (d2[a] + in2 * y) + y
            pk = l if l > pk else pk
        live[a] = l
        peak[a] = pk
        if not conv:  # (a conv lead counted these in _conv_at)
            flops[a] += fe * y
            if norm:
                params[a] += pc * ch
        if norm:
            buffers[a] += bc * ch + bk


cdef void _plan_chains(const int64_t* G, int64_t nl, const int64_t* deaths, const int32_t** cols,
                       const int32_t* consts, int64_t* fused, double* chain) noexcept nogil:
    """Row k's followers (fused[k * N_FUSED + ...]: how many, what dies at each one's moment, their
    own live slots), counted in row k's _live_chain and not run by themselves; chain[k * N_CHAIN +
    ...]: what they add. A follower keeps its input's shape and checks nothing: an activation (not
    PReLU) or a plain BatchNorm (_plain), used, with storage of its own, reading the shape record
    the lead wrote (the lead's output, or another tensor sharing its record: the same shape),
    freeing at most one storage, its live slot none the chain's pass reads or writes already
    (cnncore.columnar's planner rests a freed slot for three moments). A lead: a used row with
    storage of its own. What dies at a follower's moment: U_NONE, U_INSIDE (a storage born in the
    chain, so of y elements) or a live slot."""
    cdef int64_t k = 0, j, m, op, dead, i, n_touched
    cdef int64_t touched[2 + MAX_FOLLOW * 2]  # live slots the pass reads or writes: the lead's birth
    # and death, each follower's death and birth
    cdef const int64_t* g
    cdef const int64_t* f
    cdef int64_t* u
    cdef double* c
    cdef bint clash
    memset(chain, 0, nl * N_CHAIN * sizeof(double))
    memset(fused, 0, nl * N_FUSED * sizeof(int64_t))  # (a follower's entries stay 0)
    while k < nl:
        g = G + k * N_PROG
        u = fused + k * N_FUSED
        u[U_ROWS], u[U_D1], u[U_D2], u[U_B1], u[U_B2] = 0, U_NONE, U_NONE, -1, -1
        m = 0
        if g[G_UNUSED] == 0 and g[G_BIRTH] >= 0:
            c = chain + k * N_CHAIN
            touched[0] = g[G_BIRTH]
            n_touched = 1
            if g[G_DN] >= 1:  # the one the pass reads (_tile subtracts any others before)
                touched[1] = deaths[g[G_DOFF]]
                n_touched = 2
            j = k + 1
            while j < nl and m < MAX_FOLLOW:
                f = G + j * N_PROG
                op = f[G_OP]
                if not ((OP_RELU <= op <= OP_HARDSIGMOID and op != OP_PRELU)
                        or (OP_BN1D <= op <= OP_BN3D and _plain(op, f, j, cols, consts))):
                    break
                if f[G_UNUSED] != 0 or f[G_BIRTH] < 0 or f[G_XS] != g[G_YS] or f[G_YS] != g[G_YS] or f[G_DN] > 1:
                    break
                dead = deaths[f[G_DOFF]] if f[G_DN] == 1 else U_NONE
                if dead >= 0 and (dead == g[G_BIRTH] or dead == u[U_B1]):
                    dead = U_INSIDE
                clash = dead == f[G_BIRTH]
                for i in range(n_touched):
                    clash = clash or touched[i] == f[G_BIRTH]
                if clash:
                    break
                u[U_D1 + m] = dead
                if dead >= 0:
                    touched[n_touched] = dead
                    n_touched += 1
                u[U_B1 + m] = f[G_BIRTH]
                touched[n_touched] = f[G_BIRTH]
                n_touched += 1
                m += 1
                c[C_ROWS] += 1.0
                if OP_BN1D <= op <= OP_BN3D:  # plain: tracking running statistics (mean, var, count)
                    c[C_FLOPS] += 2.0 + ((2.0 if f[G_FLAGS] & F_BIAS else 1.0) if f[G_FLAGS] & F_AFFINE else 0.0)
                    c[C_PARAMS] += (2.0 if f[G_FLAGS] & F_BIAS else 1.0) if f[G_FLAGS] & F_AFFINE else 0.0
                    c[C_BUFS] += 2.0
                    c[C_BUF1] += 1.0
                else:
                    c[C_FLOPS] += <double>ACT_FLOPS[op - OP_RELU]
                j += 1
        u[U_ROWS] = m
        k += 1 + m


cdef inline const double* _dying(int64_t d, double* LS, double* acc) noexcept nogil:
    """What dies at a follower's moment (_plan_chains), as a row of sizes (with _inside's multiple of y)."""
    return LS + d * ROW if d >= 0 else acc + A_ZERO * ROW


cdef inline double _inside(int64_t d) noexcept nogil:
    return 1.0 if d == U_INSIDE else 0.0


cdef inline void _live_lead(int nt, const int64_t* u, const double* c, double* Y, const double* dies,
                            double* LS, int64_t ls, double* acc, bint conv, bint square, bint pow2, int64_t flags,
                            const double* V, const double* X) noexcept nogil:
    """_live_chain for a lead row, its loop specialised for its number of followers and norm, and
    for a plain Conv2d lead (conv; square or not, strides powers of two or not) counted in it."""
    if not conv:
        _lead_loop(nt, u, c, Y, dies, LS, ls, acc, False, False, False, flags, V, X)
    elif square and pow2:
        _lead_loop(nt, u, c, Y, dies, LS, ls, acc, True, True, True, flags, V, X)
    elif square:
        _lead_loop(nt, u, c, Y, dies, LS, ls, acc, True, True, False, flags, V, X)
    elif pow2:
        _lead_loop(nt, u, c, Y, dies, LS, ls, acc, True, False, True, flags, V, X)
    else:
        _lead_loop(nt, u, c, Y, dies, LS, ls, acc, True, False, False, flags, V, X)


cdef inline void _lead_loop(int nt, const int64_t* u, const double* c, double* Y, const double* dies,
                            double* LS, int64_t ls, double* acc, bint conv, bint square, bint pow2, int64_t flags,
                            const double* V, const double* X) noexcept nogil:
    cdef bint norm = c[C_BUFS] != 0.0
    cdef const double* d1 = _dying(u[U_D1], LS, acc)
    cdef const double* d2 = _dying(u[U_D2], LS, acc)
    cdef double in1 = _inside(u[U_D1]), in2 = _inside(u[U_D2])
    cdef double* M = acc + A_MACS * ROW
    cdef double* bad = acc + A_BAD * ROW
    cdef double* P = acc + A_PARAMS * ROW
    cdef double* B = acc + A_BUFFERS * ROW
    cdef double* F = acc + A_FLOPS * ROW
    cdef double* live = acc + A_LIVE * ROW
    cdef double* act = acc + A_ACT * ROW
    cdef double* peak = acc + A_PEAK * ROW
    cdef double* birth = LS + ls * ROW
    cdef double* b1 = LS + u[U_B1] * ROW
    cdef double* b2 = LS + u[U_B2] * ROW if u[U_B2] >= 0 else acc + A_SINK * ROW
    if u[U_ROWS] == 1 or u[U_D2] == U_INSIDE:  # (the second follower's moment: see _live_chain)
        if norm:
            _live_chain(nt, True, 1, c, Y, dies, d1, d2, in1, in2, birth, b1, b2, live, act, peak, P, B, F,
                        conv, square, pow2, flags, V, X, M, bad)
        else:
            _live_chain(nt, False, 1, c, Y, dies, d1, d2, in1, in2, birth, b1, b2, live, act, peak, P, B, F,
                        conv, square, pow2, flags, V, X, M, bad)
    elif norm:
        _live_chain(nt, True, 2, c, Y, dies, d1, d2, in1, in2, birth, b1, b2, live, act, peak, P, B, F,
                    conv, square, pow2, flags, V, X, M, bad)
    else:
        _live_chain(nt, False, 2, c, Y, dies, d1, d2, in1, in2, birth, b1, b2, live, act, peak, P, B, F,
                    conv, square, pow2, flags, V, X, M, bad)


cdef inline void _inputs(int nt, int ind, const int64_t* batch, const int64_t* ishape, rdouble S,
                         rdouble bad) noexcept nogil:
    """The network input's shape record (slot 0): the batch, then ind dims (ishape: ind per
    architecture). Validated by Columnar, but its arrays can change afterwards: a dim outside
    1 .. 2^31 - 1 is a problem (the generic core then says why)."""
    cdef int a, j
    cdef double x, numel, b
    for a in range(nt):
        x = <double>batch[a]
        S[ROW + a] = x
        numel = x
        b = _b((x < 1.0) | (x > DIM_MAX))
        for j in range(ind):
            x = <double>ishape[a * ind + j]
            S[(2 + j) * ROW + a] = x
            numel = numel * x
            b += _b((x < 1.0) | (x > DIM_MAX))
        S[a] = numel
        bad[a] += b


# ---- one tile --------------------------------------------------------------------------------------
cdef inline void _tile(int64_t a0, int nt, const int64_t* G, int64_t nl, const int64_t* deaths,
                const int64_t* cat_src, const int32_t** cols, const int32_t* consts, const int32_t* lows,
                const int64_t* fused, const double* chain, const int64_t* square_drop, const uint64_t* row_need,
                int64_t n,
                const int64_t* ishape, int ind, const int64_t* batch, int64_t in_birth, int64_t n_slots,
                int64_t out_slot, int out_nd, double* S, double* V, double* acc, double* LS, int64_t* square,
                int64_t* tot, int64_t ts, int64_t* out_shape, unsigned char* needs_generic) noexcept nogil:
    # square[slot]: 1 where the shape record's dims 3 and 4 (a 2-d op's spatial dims) are known
    # equal in every architecture of the tile, else 0 (not known)
    cdef int a, f, j
    cdef int64_t k, op, ls
    cdef bint sq
    cdef double uneven
    cdef uint64_t need
    cdef int32_t lo, m
    cdef int64_t filled[N_VAR]  # the template value a row of V holds (for fields without a column)
    cdef const int64_t* g
    cdef const int32_t* c
    cdef double* X
    cdef double* Y
    cdef double* live = acc + A_LIVE * ROW
    cdef const double* dies
    cdef double* okr
    cdef const double* v
    cdef bint unused, ok, plain, lead_conv, pow2
    cdef uint32_t odd  # some stride of the row, in some architecture of the tile, is not a power of two
    cdef int64_t* shape_out
    cdef bint ahead = a0 + (AHEAD + 1) * TILE <= n  # prefetch tile AHEAD from here
    for f in range(N_VAR):
        filled[f] = -(<int64_t>1 << 40)  # none yet (no int32)
    memset(acc, 0, (A_BAD + 1) * ROW * sizeof(double))  # the totals and the problem counts
    memset(acc + A_ZERO * ROW, 0, TILE * sizeof(double))
    # the network input: slot 0, its storage alive from moment 0 (live slot in_birth); tile AHEAD's
    # input shapes and batch sizes prefetched like its columns (the hardware prefetcher loses these
    # streams among the column rows)
    if ahead:
        for a in range(0, TILE * ind, 8):
            cc_prefetch(ishape + (a0 + AHEAD * TILE) * ind + a)
        for a in range(0, TILE, 8):
            cc_prefetch(batch + a0 + AHEAD * TILE + a)
    if ind == 3:  # (C, H, W): the common case, its own loop
        _inputs(nt, 3, batch + a0, ishape + a0 * 3, S, acc + A_BAD * ROW)
    elif ind == 2:
        _inputs(nt, 2, batch + a0, ishape + a0 * 2, S, acc + A_BAD * ROW)
    elif ind == 4:
        _inputs(nt, 4, batch + a0, ishape + a0 * 4, S, acc + A_BAD * ROW)
    else:
        _inputs(nt, 1, batch + a0, ishape + a0, S, acc + A_BAD * ROW)
    memset(square, 0, n_slots * sizeof(int64_t))
    if ind == 3:  # (C, H, W): the input record is square where every H is its W
        uneven = 0.0
        for a in range(nt):
            uneven += _b(S[3 * ROW + a] != S[4 * ROW + a])
        square[0] = uneven == 0.0
    memcpy(acc + A_IN * ROW, S, TILE * sizeof(double))
    memcpy(acc + A_LIVE * ROW, S, TILE * sizeof(double))
    memcpy(acc + A_PEAK * ROW, S, TILE * sizeof(double))
    memcpy(LS + in_birth * ROW, S, TILE * sizeof(double))
    k = 0
    while k < nl:  # (a lead's followers are skipped: its _live_chain counts them)
        g = G + k * N_PROG
        op = g[G_OP]
        # the fields this op reads, as float64 rows of V: a column's slice, or the template's value
        # repeated (a field without a column is refilled only when that value changes)
        need = row_need[k] & ((1 << N_VAR) - 1)
        sq = (square_drop[k] >= 0 and square[g[G_XS]] != 0
              and _square_fields(nt, <uint64_t>square_drop[k], cols, consts + k * N_VAR, k * n + a0, ahead))
        if sq:  # dim 1's fields are dim 0's: not read
            need &= ~<uint64_t>square_drop[k]
        odd = 0
        while need:
            f = cc_ctz(need)
            need &= need - 1
            c = cols[f]
            lo = lows[k * N_VAR + f]
            if c != NULL:
                c = c + k * n + a0
                m = DIM_MAX
                for a in range(nt):
                    V[f * ROW + a] = <double>c[a]
                    m = c[a] if c[a] < m else m
                if m < lo:  # (rare) those architectures fail; the ops compute on with lo
                    for a in range(nt):
                        acc[A_BAD * ROW + a] += _b(c[a] < lo)
                        V[f * ROW + a] = lo if c[a] < lo else V[f * ROW + a]
                if V_S <= f < V_S + 3:  # (a value below lo, 1, is now 1: 0 passes, a negative one does not)
                    for a in range(nt):
                        odd |= <uint32_t>c[a] & (<uint32_t>c[a] - 1)
                # a later tile's slice: a row of columns is read a few cache lines at a time, too
                # scattered for the hardware prefetcher
                if ahead:
                    for a in range(AHEAD * TILE, (AHEAD + 1) * TILE, 16):
                        cc_prefetch(c + a)
            else:
                if consts[k * N_VAR + f] < lo:  # every architecture fails
                    for a in range(nt):
                        acc[A_BAD * ROW + a] += 1.0
                if filled[f] != max(consts[k * N_VAR + f], lo):
                    filled[f] = max(consts[k * N_VAR + f], lo)
                    for a in range(TILE):
                        V[f * ROW + a] = <double>filled[f]
                if V_S <= f < V_S + 3:
                    odd |= <uint32_t>filled[f] & (<uint32_t>filled[f] - 1)
        pow2 = odd == 0
        X = S + g[G_XS] * REC * ROW
        Y = S + g[G_YS] * REC * ROW
        unused = g[G_UNUSED] != 0
        if unused:  # params and buffers count, nothing else: restore macs and flops after
            memcpy(acc + A_SAVED_MACS * ROW, acc + A_MACS * ROW, 2 * ROW * sizeof(double))
        plain = (row_need[k] & PLAIN_ROW) != 0
        lead_conv = op == OP_CONV2D and plain and fused[k * N_FUSED + U_ROWS] != 0  # counted in its chain's pass
        if not lead_conv:
            _run_op(op, g, plain, sq, pow2, nt, V, S, X, Y, acc, cat_src)
        if g[G_YS] != g[G_XS]:  # a new record (an op that keeps the shape shares its input's)
            square[g[G_YS]] = sq
        if unused:
            memcpy(acc + A_MACS * ROW, acc + A_SAVED_MACS * ROW, 2 * ROW * sizeof(double))
        # liveness: storages whose last reader has run are freed, this row's storage is born
        for j in range(1, g[G_DN]):
            dies = LS + deaths[g[G_DOFF] + j] * ROW
            for a in range(nt):
                live[a] -= dies[a]
        ls = g[G_BIRTH]
        dies = LS + deaths[g[G_DOFF]] * ROW if g[G_DN] > 0 else acc + A_ZERO * ROW
        if fused[k * N_FUSED + U_ROWS]:  # a lead: it and its followers in one pass, their storages too
            _live_lead(nt, fused + k * N_FUSED, chain + k * N_CHAIN, Y, dies, LS, ls, acc, lead_conv, sq, pow2,
                       g[G_FLAGS], V, X)
        elif ls >= 0 and not unused:  # the common case, its own loop: a used row with storage of its own
            _live(nt, 1.0, 1.0, Y, dies, LS + ls * ROW, live, acc + A_ACT * ROW, acc + A_PEAK * ROW)
        else:
            _live(nt, 0.0 if unused else 1.0, 1.0 if ls >= 0 else 0.0, Y, dies,
                  LS + ls * ROW if ls >= 0 else acc + A_SINK * ROW, live, acc + A_ACT * ROW, acc + A_PEAK * ROW)
        k += 1 + fused[k * N_FUSED + U_ROWS]
    # every total below 2^52 (so exact, and so was every addend), and no problem: the kernel's answer
    # (a total in [2^52, 2^53) is exact too, but goes to the generic core: the conversion to int64
    # is then one add wherever the CPU lacks a vector one)
    X = S + out_slot * REC * ROW
    okr = acc + A_TEMP * ROW  # 1.0 where the kernel's answer stands
    for a in range(nt):
        ok = (acc[A_BAD * ROW + a] == 0.0) & (acc[A_PARAMS * ROW + a] < OUT_MAX) & (acc[A_BUFFERS * ROW + a] < OUT_MAX)
        ok &= (acc[A_MACS * ROW + a] < OUT_MAX) & (acc[A_FLOPS * ROW + a] < OUT_MAX)
        ok &= acc[A_ACT * ROW + a] + acc[A_IN * ROW + a] < OUT_MAX  # (the peak is at most this)
        needs_generic[a0 + a] = not ok
        okr[a] = _b(ok)
    # as int64: the totals' six rows (where CC_STREAM_OUT converted and streamed out in one pass:
    # 0.97-0.99x the kernel's time with them staged first), the output shape (one architecture's five
    # entries contiguous; where CC_STREAM_OUT transposed in registers and streamed out (0.9x the
    # kernel's time of staging it in the field rows first), else written in place)
    for j in range(6):
        v = acc + (A_PEAK if j == 5 else j) * ROW
        if CC_STREAM_OUT:
            cc_stream_exact(tot + j * ts + a0, v, okr, nt)
        else:
            for a in range(nt):
                tot[j * ts + a0 + a] = cc_exact_to_i64(v[a] if okr[a] != 0.0 else 0.0)
    if CC_STREAM_OUT:
        cc_stream_shape(out_shape + a0 * 5, X + ROW, ROW, okr, out_nd, nt)
        return
    shape_out = out_shape + a0 * 5
    for j in range(out_nd, 5):  # the dims past the output's are 0 (the tile's last use of its record)
        memset(X + (1 + j) * ROW, 0, TILE * sizeof(double))
    for a in range(nt):  # (no branch on j: straight-line stores)
        for j in range(5):
            shape_out[a * 5 + j] = cc_exact_to_i64(X[(1 + j) * ROW + a] if okr[a] != 0.0 else 0.0)


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


def chains(const int64_t[:, ::1] program, const int64_t[::1] deaths, tuple columns, const int32_t[:, ::1] consts):
    """For the tests: _plan_chains's table as a list of rows [followers, d1, d2, b1, b2], one per
    layer row (a follower's own row: zeros). columns: as count_columnar's (only which are
    None matters)."""
    cdef int64_t nl = program.shape[0], f, k
    cdef const int32_t* cols[N_VAR]
    cdef int32_t present = 0
    if program.shape[1] != N_PROG or len(columns) != N_VAR or consts.shape[0] != nl or consts.shape[1] != N_VAR:
        raise ValueError("chains: arrays of the wrong shape")
    for k in range(nl):
        if not (program[k, G_DOFF] >= 0 and program[k, G_DN] >= 0
                and program[k, G_DOFF] + program[k, G_DN] <= deaths.shape[0]):
            raise ValueError(f"chains: bad program row {k}")
    for f in range(N_VAR):
        cols[f] = NULL if columns[f] is None else &present
    fused = <int64_t*>malloc(max(nl, 1) * N_FUSED * sizeof(int64_t))
    chain = <double*>malloc(max(nl, 1) * N_CHAIN * sizeof(double))
    try:
        if fused == NULL or chain == NULL:
            raise MemoryError()
        if nl:
            _plan_chains(&program[0, 0], nl, &deaths[0] if deaths.shape[0] else NULL, cols, &consts[0, 0],
                         fused, chain)
        return [[fused[k * N_FUSED + f] for f in range(N_FUSED)] for k in range(nl)]
    finally:
        free(fused)
        free(chain)


def scratch_size(int64_t n_slots, int64_t n_live):
    """int64 entries of one thread's scratch: shape slots, field rows, accumulators, live sizes,
    the shape slots' square flags, and the slack that lets the kernel start them on a 64-byte boundary."""
    return ROW * (REC * n_slots + N_VAR + N_ACC + n_live) + n_slots + ALIGN_SLACK


cdef inline double* _aligned(int64_t* p) noexcept nogil:
    """p rounded up to a 64-byte boundary (at most ALIGN_SLACK - 1 entries on): every row of the
    scratch then starts a cache line, and a vector load never straddles two (measured 1.2x faster
    than the 8- or 16-byte alignment np.empty gives a small array)."""
    return <double*>((<uintptr_t>p + 63) & ~(<uintptr_t>63))


def count_columnar(const int64_t[:, ::1] program, const int64_t[::1] deaths, const int64_t[::1] cat_src,
                   tuple columns, const int32_t[:, ::1] consts, const int64_t[:, ::1] input_shape,
                   const int64_t[::1] batch_size, int64_t n_slots, int64_t n_live, int64_t in_birth,
                   int64_t out_slot, int out_nd,
                   int64_t[:, ::1] totals, int64_t[:, ::1] output_shape, unsigned char[::1] needs_generic,
                   int64_t[:, ::1] scratch, int n_threads=1):
    """Count n architectures of one planned template. columns: N_VAR entries, each None (the
    template's value, consts[row, field]) or an int32 array (n_layers, n), C-contiguous.
    totals (6, m >= n): params, buffers, macs, flops, activation elements, peak in its first n
    columns (m: a row length that keeps every row on a 64-byte boundary); output_shape (n, 5);
    needs_generic (n,): 1 where the generic core must count the architecture instead (a problem,
    or a count that reaches 2^53); its entries of totals and output_shape are then 0."""
    cdef int64_t n = batch_size.shape[0], nl = program.shape[0], n_tiles, t, a0
    cdef int64_t ts = totals.shape[1]  # the row length of totals
    cdef int nt, f, tid
    cdef int ind = <int>input_shape.shape[1]
    cdef const int32_t* cols[N_VAR]
    cdef const int32_t[:, ::1] col
    cdef int64_t need = scratch_size(n_slots, n_live)
    cdef double* S  # one thread's scratch: shape slots, fields, accumulators, live sizes
    cdef double* V
    cdef double* acc
    cdef double* LS
    cdef int64_t* square  # one thread's square flags, one per shape slot
    cdef const int64_t* G  # the arrays' first entries
    cdef const int64_t* D
    cdef const int64_t* C
    cdef const int64_t* ishape
    cdef const int64_t* batch
    cdef const int32_t* K
    cdef int64_t* tot
    cdef int64_t* oshape
    cdef unsigned char* needs
    cdef int32_t* lows
    cdef int64_t* fused
    cdef double* chain
    cdef int64_t* square_drop
    cdef uint64_t* row_need
    if (program.shape[1] != N_PROG or len(columns) != N_VAR or consts.shape[0] != nl
            or consts.shape[1] != N_VAR or input_shape.shape[0] != n or totals.shape[0] != 6
            or totals.shape[1] < n or output_shape.shape[0] != n or output_shape.shape[1] != 5
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
    lows = <int32_t*>malloc(max(nl, 1) * N_VAR * sizeof(int32_t))  # _lowest of each row and field
    fused = <int64_t*>malloc(max(nl, 1) * N_FUSED * sizeof(int64_t))
    chain = <double*>malloc(max(nl, 1) * N_CHAIN * sizeof(double))
    square_drop = <int64_t*>malloc(max(nl, 1) * sizeof(int64_t))  # _square_row of each row
    row_need = <uint64_t*>malloc(max(nl, 1) * sizeof(uint64_t))  # _row_need of each row
    if lows == NULL or fused == NULL or chain == NULL or square_drop == NULL or row_need == NULL:
        free(lows)
        free(fused)
        free(chain)
        free(square_drop)
        free(row_need)
        raise MemoryError()
    K = &consts[0, 0] if nl > 0 else NULL
    for t in range(nl):
        for f in range(N_VAR):
            lows[t * N_VAR + f] = _lowest(program[t, G_OP], f)
        square_drop[t] = _square_row(program[t, G_OP], &program[t, 0])
        row_need[t] = _row_need(program[t, G_OP], &program[t, 0], t, cols, K)
    n_tiles = (n + TILE - 1) // TILE
    G, K = &program[0, 0] if nl > 0 else NULL, &consts[0, 0] if nl > 0 else NULL
    D, C = &deaths[0] if deaths.shape[0] else NULL, &cat_src[0] if cat_src.shape[0] else NULL
    _plan_chains(G, nl, D, cols, K, fused, chain)
    ishape, batch, tot, oshape, needs = &input_shape[0, 0], &batch_size[0], &totals[0, 0], &output_shape[0, 0], &needs_generic[0]
    S = V = acc = LS = NULL  # (each thread sets its own below)
    square = NULL
    tid = 0
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        S = _aligned(&scratch[tid, 0])  # (the scratch's int64 slots hold doubles)
        V = S + REC * n_slots * ROW
        acc = V + N_VAR * ROW
        LS = acc + N_ACC * ROW
        square = <int64_t*>(LS + n_live * ROW)
        for t in prange(n_tiles, schedule="static"):
            a0 = t * TILE
            nt = <int>(n - a0 if n - a0 < TILE else TILE)
            if nt == TILE:  # a full tile has its own copy of the code: every loop of constant length
                _tile(a0, TILE, G, nl, D, C, cols, K, lows, fused, chain, square_drop, row_need, n, ishape, ind, batch, in_birth,
                      n_slots, out_slot, out_nd, S, V, acc, LS, square, tot, ts, oshape, needs)
            else:
                _tile(a0, nt, G, nl, D, C, cols, K, lows, fused, chain, square_drop, row_need, n, ishape, ind, batch, in_birth,
                      n_slots, out_slot, out_nd, S, V, acc, LS, square, tot, ts, oshape, needs)
        cc_store_fence()  # (this thread's streamed outputs, before the threads join)
    free(lows)
    free(fused)
    free(chain)
    free(square_drop)
    free(row_need)


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
    for k in range(G.shape[0]):  # _live reads the dying sizes and writes the new one in one pass
        for j in range(G[k, G_DOFF], G[k, G_DOFF] + G[k, G_DN]):
            if deaths[j] == G[k, G_BIRTH]:
                raise ValueError(f"count_columnar: row {k} is born in a live slot freed at its own moment")
    for j in range(cat_src.shape[0]):
        if not 0 <= cat_src[j] < n_slots:
            raise ValueError("count_columnar: bad cat slot")
