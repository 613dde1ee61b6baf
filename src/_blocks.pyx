# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""cnncore's compiled helpers for sweeps. Private.

``gather``: chain networks counted from per-block tables (cnncore/spaces/_blockwise.py). The tables hold the core's counts of every (block, variant, input shape) met so far; this
loop walks the blocks in order (a block's input shape is the previous block's output) and adds up
each candidate's rows without the GIL, so a sweep's threads run it side by side. It never decides
anything the core did not count: a (block, code, shape) with no row yet stops the gather, and
_blockwise.py counts the missing variants with the core, then gathers again. Every index is
checked against its table, so hostile arrays give "missing", never a read out of bounds.

``gather_rows``: a template space's packed rows from its table of row variants (_template.py).

``python_shuffle``: ``random.shuffle`` of range(n), replayed from the generator's output words
(NAS-Bench-201's official index order is such a shuffle: nb201.py).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy


def gather_rows(const int32_t[:, ::1] table, const int64_t[::1] which, const int64_t[::1] column,
                Py_ssize_t col, int32_t[:, ::1] out):
    """out[r] = table[which[r]], then out[r, col] = column[r]: np.take by rows and one column set, in
    one pass (numpy's take copies a 100-byte row with a memcpy call of its own)."""
    cdef Py_ssize_t n = which.shape[0], bad
    if out.shape[0] != n or column.shape[0] != n or out.shape[1] != table.shape[1] or not 0 <= col < table.shape[1]:
        raise ValueError("gather_rows: inconsistent array sizes")
    with nogil:
        bad = _gather_rows(table, which, column, col, out)
    if bad >= 0:
        raise ValueError(f"gather_rows: row {bad}: variant {which[bad]} outside 0..{table.shape[0] - 1} or "
                         f"value {column[bad]} outside int32")


cdef Py_ssize_t _gather_rows(const int32_t[:, ::1] table, const int64_t[::1] which, const int64_t[::1] column,
                             Py_ssize_t col, int32_t[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t n = which.shape[0], n_rows = table.shape[0], r
    cdef size_t row_bytes = table.shape[1] * sizeof(int32_t)
    cdef int64_t v
    for r in range(n):
        v = which[r]
        if v < 0 or v >= n_rows or column[r] < -2147483648 or column[r] > 2147483647:
            return r
        memcpy(&out[r, 0], &table[v, 0], row_bytes)
        out[r, col] = <int32_t>column[r]
    return -1


def python_shuffle(const uint64_t[::1] words, int64_t[::1] out):
    """out[:] = range(n) shuffled exactly as ``random.Random.shuffle`` shuffles it when its
    ``getrandbits(32)`` calls return ``words`` in turn (CPython's ``_randbelow_with_getrandbits``:
    k = bit_length(i + 1) bits, ``getrandbits(k)`` = the word's top k bits, redrawn while >= i + 1).
    Returns the number of words used, or -1 when they ran out (out is then incomplete)."""
    cdef Py_ssize_t used
    if out.shape[0] > (<Py_ssize_t>1 << 31):
        raise ValueError("python_shuffle: more than 2**31 items take several words a draw")
    with nogil:
        used = _shuffle(words, out)
    return used


cdef Py_ssize_t _shuffle(const uint64_t[::1] words, int64_t[::1] out) noexcept nogil:
    cdef Py_ssize_t n = out.shape[0], n_words = words.shape[0], used = 0, i
    cdef int64_t j, t, bound
    cdef int k
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        bound = i + 1
        k = 0
        while (bound >> k) != 0:
            k += 1
        while True:
            if used == n_words:
                return -1
            j = <int64_t>((words[used] & <uint64_t>0xFFFFFFFFU) >> (32 - k))
            used += 1
            if j < bound:
                break
        t = out[i]
        out[i] = out[j]
        out[j] = t
    return used


def gather(const int64_t[:, ::1] codes, const int64_t[::1] shape_ids, const int64_t[::1] n_codes,
           const int64_t[::1] slot_first, const int64_t[::1] slot_size, const int32_t[::1] slots,
           const int64_t[::1] row_first, const int64_t[::1] row_size, const int64_t[:, ::1] sums,
           const int64_t[::1] peaks, const uint8_t[::1] valid, const int64_t[::1] out_shape,
           int64_t[:, ::1] total, int64_t[::1] peak, uint8_t[::1] ok, int64_t[::1] shape):
    """For every candidate i (a column of ``codes``, (blocks, n)): total[i] = the sum of its blocks'
    ``sums`` rows, peak[i] the largest of their ``peaks``, ok[i] all their ``valid``. Block b's row of
    (shape s, code c) is slots[slot_first[b] + s * n_codes[b] + c] (-1: not counted yet), an index
    into the block's rows row_first[b] .. row_first[b] + row_size[b] of the joined tables; out_shape
    of that row is the next block's input shape (``shape``: scratch, starts as shape_ids). Returns -1,
    or a candidate with a missing or out-of-range entry (the outputs are then incomplete)."""
    cdef Py_ssize_t n = codes.shape[1], n_blocks = codes.shape[0], stop
    if (shape_ids.shape[0] != n or total.shape[0] != n or peak.shape[0] != n or ok.shape[0] != n
            or shape.shape[0] != n or n_codes.shape[0] != n_blocks or slot_first.shape[0] != n_blocks
            or slot_size.shape[0] != n_blocks or row_first.shape[0] != n_blocks or row_size.shape[0] != n_blocks
            or total.shape[1] != sums.shape[1] or peaks.shape[0] != sums.shape[0]
            or valid.shape[0] != sums.shape[0] or out_shape.shape[0] != sums.shape[0]):
        raise ValueError("gather: inconsistent array sizes")
    with nogil:
        stop = _gather(codes, shape_ids, n_codes, slot_first, slot_size, slots, row_first, row_size, sums,
                       peaks, valid, out_shape, total, peak, ok, shape)
    return stop


cdef Py_ssize_t _gather(const int64_t[:, ::1] codes, const int64_t[::1] shape_ids, const int64_t[::1] n_codes,
                        const int64_t[::1] slot_first, const int64_t[::1] slot_size, const int32_t[::1] slots,
                        const int64_t[::1] row_first, const int64_t[::1] row_size, const int64_t[:, ::1] sums,
                        const int64_t[::1] peaks, const uint8_t[::1] valid, const int64_t[::1] out_shape,
                        int64_t[:, ::1] total, int64_t[::1] peak, uint8_t[::1] ok,
                        int64_t[::1] shape) noexcept nogil:
    # block by block over all candidates: codes[b] and the outputs are read in order
    cdef Py_ssize_t n = codes.shape[1], n_blocks = codes.shape[0], n_fields = sums.shape[1], i, b, f
    cdef int64_t s, c, r, g, n_c, first, size, rows
    for i in range(n):
        for f in range(n_fields):
            total[i, f] = 0
        peak[i] = 0
        ok[i] = 1
        shape[i] = shape_ids[i]
    for b in range(n_blocks):
        n_c, first, size, rows = n_codes[b], slot_first[b], slot_size[b], row_size[b]
        if n_c < 1 or first < 0 or size < 0 or first > slots.shape[0] - size or row_first[b] < 0 \
                or rows < 0 or row_first[b] > sums.shape[0] - rows:
            return 0
        for i in range(n):
            s, c = shape[i], codes[b, i]
            if c < 0 or c >= n_c or s < 0 or s >= size // n_c:  # the key s * n_c + c would leave the table
                return i
            r = slots[first + s * n_c + c]
            if r < 0 or r >= rows:
                return i
            g = row_first[b] + r
            for f in range(n_fields):
                total[i, f] += sums[g, f]
            if peaks[g] > peak[i]:
                peak[i] = peaks[g]
            ok[i] &= valid[g]
            shape[i] = out_shape[g]
    return -1
