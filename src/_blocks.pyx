# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""cnncore's compiled loops for search spaces. Private.

``gather``: chain networks counted from per-block tables (cnncore/spaces/_blockwise.py). The tables
hold the core's counts of every (block, variant, input shape) met so far; this loop walks the
blocks in order (a block's input shape is the previous block's output) and adds up each candidate's
rows without the GIL, so a sweep's threads run it side by side. It never decides anything the core
did not count: a (block, code, shape) with no row yet stops the gather, and _blockwise.py counts the
missing variants with the core, then gathers again. Every index is checked against its table, so
hostile arrays give "missing", never a read out of bounds.

``plan_rows`` and ``gather_rows``: a template space's packed rows (_template.py): which slots each
candidate has and where each row reads, then the rows from the table of row variants.

``python_shuffle``: ``random.shuffle`` of range(n), replayed from the generator's output words
(NAS-Bench-201's official index order is such a shuffle: nb201.py).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np


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


def python_shuffle(const uint32_t[::1] words, int64_t[::1] out):
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


cdef Py_ssize_t _shuffle(const uint32_t[::1] words, int64_t[::1] out) noexcept nogil:
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
            j = <int64_t>(words[used] >> (32 - k))
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



def plan_rows(const int64_t[:, ::1] idx, const int64_t[::1] cond_first, const int64_t[::1] cond_var,
              const uint8_t[:, ::1] cond_allowed, const int64_t[::1] virt_var, const int64_t[:, ::1] virt_stat,
              const int64_t[:, ::1] virt_vid, const int64_t[::1] slot_cond, const int64_t[::1] variant_base,
              const int64_t[:, ::1] level_var, const int64_t[:, ::1] level_stride, const int64_t[::1] rel,
              const int64_t[::1] src_stat, const int64_t[::1] src_vid, const int64_t[::1] n_extra,
              const int64_t[::1] extra_first, const int64_t[::1] extra_stat, const int64_t[::1] extra_vid,
              const int64_t[::1] virtual_outputs):
    """The rows plan of a template (_template.py, _Expansion._plan) for candidates ``idx`` (n, vars)
    of option indices. A slot exists when every (variable, allowed options) term of its condition
    set holds (set c: terms cond_first[c] .. cond_first[c + 1] - 1). Each existing slot is a row:
    its variant is variant_base + the sum over levels of option index * stride; its first input sits
    rel rows back (rel > 0), else is a reference resolved to a position: a slot (its position in the
    candidate: the number of existing slots before it, or one less when it does not exist itself),
    a network input (< 0, kept), or OneOf output v (``vid`` >= 0: the static reference or earlier
    OneOf output that option idx[virt_var[v]] picks). Rows with n_extra > 0 more inputs list them in
    ``extra``, from ``xoff``. ``picked``: the rows the model's OneOf outputs pick. Returns (variant,
    src, picked, multi_rows, xoff, extra, counts) as _Expansion._plan does; ValueError for any index
    outside its table."""
    cdef Py_ssize_t n = idx.shape[0], n_vars = idx.shape[1], k = slot_cond.shape[0]
    cdef Py_ssize_t n_conds = cond_first.shape[0] - 1, n_virt = virt_var.shape[0], n_opt = cond_allowed.shape[1]
    cdef Py_ssize_t i, j
    if not (n_conds >= 1 and cond_var.shape[0] == cond_allowed.shape[0] and virt_stat.shape[0] == n_virt
            and virt_vid.shape[0] == n_virt and virt_stat.shape[1] == n_opt and virt_vid.shape[1] == n_opt
            and variant_base.shape[0] == k and level_var.shape[0] == level_stride.shape[0]
            and level_var.shape[1] == k and level_stride.shape[1] == k and rel.shape[0] == k
            and src_stat.shape[0] == k and src_vid.shape[0] == k and n_extra.shape[0] == k
            and extra_first.shape[0] == k and extra_vid.shape[0] == extra_stat.shape[0]):
        raise ValueError("plan_rows: inconsistent table sizes")
    # every index the tables hold is checked once here: the loops below stay inside their arrays
    for i in range(n):
        for j in range(n_vars):
            if idx[i, j] < 0 or idx[i, j] >= n_opt:
                raise ValueError(f"plan_rows: option index {idx[i, j]} outside 0..{n_opt - 1}")
    if cond_first[0] != 0 or cond_first[n_conds] != cond_var.shape[0]:
        raise ValueError("plan_rows: cond_first must run from 0 to the number of terms")
    for i in range(n_conds):
        if cond_first[i] > cond_first[i + 1]:
            raise ValueError("plan_rows: cond_first is not sorted")
    _in_range(cond_var, 0, n_vars, "cond_var")
    _in_range(virt_var, 0, n_vars, "virt_var")
    _in_range(slot_cond, 0, n_conds, "slot_cond")
    _in_range(src_vid, -1, n_virt, "src_vid")
    _in_range(extra_vid, -1, n_virt, "extra_vid")
    _in_range(virtual_outputs, 0, n_virt, "virtual_outputs")
    _in_range(src_stat, -(1 << 30), k, "src_stat")
    _in_range(extra_stat, -(1 << 30), k, "extra_stat")
    for i in range(n_virt):  # a OneOf output picks a static reference or an earlier OneOf's output
        _in_range(virt_vid[i], -1, i, "virt_vid")
        _in_range(virt_stat[i], -(1 << 30), k, "virt_stat")
    for i in range(level_var.shape[0]):
        _in_range(level_var[i], 0, n_vars, "level_var")
    for i in range(k):
        if n_extra[i] < 0 or extra_first[i] < 0 or extra_first[i] > extra_stat.shape[0] - n_extra[i]:
            raise ValueError(f"plan_rows: slot {i}'s extra inputs leave extra_stat")
    # per condition set: its slots, those with more inputs, their extra inputs (pass 1 sums these)
    per_set = np.zeros((n_conds, 3), np.int64)
    cdef int64_t[:, ::1] ps_ = per_set
    for i in range(k):
        ps_[slot_cond[i], 0] += 1
        ps_[slot_cond[i], 1] += n_extra[i] > 0
        ps_[slot_cond[i], 2] += n_extra[i]
    # the condition sets as bits: fails[j, o] = the sets whose term on variable j refuses option o
    cdef Py_ssize_t n_words = (n_conds + 63) // 64, t, o
    fails = np.zeros((n_vars, n_opt, n_words), np.uint64)
    cdef uint64_t[:, :, ::1] f_ = fails
    for i in range(n_conds):
        for t in range(cond_first[i], cond_first[i + 1]):
            for o in range(n_opt):
                if not cond_allowed[t, o]:
                    f_[cond_var[t], o, i // 64] |= (<uint64_t>1) << (i % 64)
    seen = np.zeros(n_vars, np.uint8)  # only the variables of some term can fail a set
    for t in range(cond_var.shape[0]):
        seen[cond_var[t]] = 1
    cond_vars = np.flatnonzero(seen)  # (np.unique would import numpy.ma: ~8 ms on a first sweep)
    cdef const int64_t[::1] cv_ = cond_vars
    scratch = np.empty(64 * n_words + k + max(n_virt, 1), np.int64)  # ok per set, positions, OneOf picks
    counts = np.empty(n, np.int64)
    sizes = np.zeros(4, np.int64)  # rows, rows with more inputs, extra inputs, picked rows
    cdef int64_t[::1] s_ = scratch, c_ = counts, z_ = sizes
    with nogil:
        _sizes(idx, cv_, f_, virt_var, virt_stat, virt_vid, slot_cond, ps_, virtual_outputs, &s_[0], c_, z_)
    variant, src, multi = np.empty(sizes[0], np.int64), np.empty(sizes[0], np.int64), np.empty(sizes[1], np.int64)
    xoff, extra, picked = np.empty(sizes[1], np.int32), np.empty(sizes[2], np.int32), np.empty(sizes[3], np.int64)
    cdef int64_t[::1] v_ = variant, r_ = src, p_ = picked, m_ = multi
    cdef int32_t[::1] x_ = xoff, e_ = extra
    cdef Py_ssize_t bad
    with nogil:
        bad = _fill(idx, cv_, f_, n_conds, virt_var, virt_stat, virt_vid, slot_cond, variant_base, level_var,
                    level_stride, rel, src_stat, src_vid, n_extra, extra_first, extra_stat, extra_vid,
                    virtual_outputs, &s_[0], v_, r_, p_, m_, x_, e_)
    if bad >= 0:
        raise ValueError(f"plan_rows: slot {bad} reads a slot that is not before it")
    return variant, src, picked, multi, xoff, extra, counts


cdef int _in_range(const int64_t[::1] a, int64_t lo, int64_t hi, str what) except -1:
    cdef Py_ssize_t i
    for i in range(a.shape[0]):
        if a[i] < lo or a[i] >= hi:
            raise ValueError(f"plan_rows: {what} {a[i]} outside {lo}..{hi - 1}")
    return 0


cdef inline void _conditions(const int64_t[:, ::1] idx, Py_ssize_t a, const int64_t[::1] cond_vars,
                             const uint64_t[:, :, ::1] fails, Py_ssize_t n_conds, int64_t* ok) noexcept nogil:
    """ok[c] = 1 when every term of condition set c holds for candidate a: no variable's option
    fails it (fails[j, option]: as bits, the sets whose term on variable j refuses that option)."""
    cdef Py_ssize_t w, q, j, c
    cdef uint64_t word
    for w in range(fails.shape[2]):
        word = ~(<uint64_t>0)
        for q in range(cond_vars.shape[0]):
            j = cond_vars[q]
            word &= ~fails[j, idx[a, j], w]
        for c in range(min(64, n_conds - 64 * w)):
            ok[64 * w + c] = <int64_t>((word >> c) & 1)


cdef inline void _picks(const int64_t[:, ::1] idx, Py_ssize_t a, const int64_t[::1] virt_var,
                        const int64_t[:, ::1] virt_stat, const int64_t[:, ::1] virt_vid, int64_t* vr) noexcept nogil:
    """vr[v]: the static reference OneOf output v picks for candidate a (a slot, or an input < 0)."""
    cdef Py_ssize_t v
    cdef int64_t o
    for v in range(virt_var.shape[0]):
        o = idx[a, virt_var[v]]
        vr[v] = virt_stat[v, o] if virt_vid[v, o] < 0 else vr[virt_vid[v, o]]


cdef void _sizes(const int64_t[:, ::1] idx, const int64_t[::1] cond_vars, const uint64_t[:, :, ::1] fails,
                 const int64_t[::1] virt_var, const int64_t[:, ::1] virt_stat, const int64_t[:, ::1] virt_vid,
                 const int64_t[::1] slot_cond, const int64_t[:, ::1] per_set, const int64_t[::1] virtual_outputs,
                 int64_t* scratch, int64_t[::1] counts, int64_t[::1] sizes) noexcept nogil:
    """Pass 1: rows per candidate (counts) and the sizes of every output."""
    cdef Py_ssize_t n_conds = per_set.shape[0], a, c, q
    cdef int64_t* ok = scratch
    cdef int64_t* vr = scratch + 64 * fails.shape[2] + slot_cond.shape[0]
    cdef int64_t rows, total = 0, multi = 0, extra = 0, picked = 0, r
    for a in range(idx.shape[0]):
        _conditions(idx, a, cond_vars, fails, n_conds, ok)
        rows = 0
        for c in range(n_conds):
            if ok[c]:
                rows += per_set[c, 0]
                multi += per_set[c, 1]
                extra += per_set[c, 2]
        counts[a] = rows
        total += rows
        if virtual_outputs.shape[0]:
            _picks(idx, a, virt_var, virt_stat, virt_vid, vr)
            for q in range(virtual_outputs.shape[0]):
                r = vr[virtual_outputs[q]]
                if r >= 0 and ok[slot_cond[r]]:
                    picked += 1
    sizes[0], sizes[1], sizes[2], sizes[3] = total, multi, extra, picked


cdef Py_ssize_t _fill(const int64_t[:, ::1] idx, const int64_t[::1] cond_vars, const uint64_t[:, :, ::1] fails,
                      Py_ssize_t n_conds,
                      const int64_t[::1] virt_var, const int64_t[:, ::1] virt_stat, const int64_t[:, ::1] virt_vid,
                      const int64_t[::1] slot_cond, const int64_t[::1] variant_base, const int64_t[:, ::1] level_var,
                      const int64_t[:, ::1] level_stride, const int64_t[::1] rel, const int64_t[::1] src_stat,
                      const int64_t[::1] src_vid, const int64_t[::1] n_extra, const int64_t[::1] extra_first,
                      const int64_t[::1] extra_stat, const int64_t[::1] extra_vid, const int64_t[::1] virtual_outputs,
                      int64_t* scratch, int64_t[::1] variant, int64_t[::1] src, int64_t[::1] picked,
                      int64_t[::1] multi, int32_t[::1] xoff, int32_t[::1] extra) noexcept nogil:
    """Pass 2: the plan, slot by slot (a slot reads only slots before it, whose positions are known
    by then). Returns -1, or a slot that reads one not before it."""
    cdef Py_ssize_t k = slot_cond.shape[0], n_levels = level_var.shape[0]
    cdef Py_ssize_t a, s, l, q, t
    cdef int64_t* ok = scratch
    cdef int64_t* pos = scratch + 64 * fails.shape[2]
    cdef int64_t* vr = pos + k
    cdef int64_t row = 0, n_multi = 0, n_ex = 0, n_picked = 0, base, p, var, r, v
    for a in range(idx.shape[0]):
        _conditions(idx, a, cond_vars, fails, n_conds, ok)
        _picks(idx, a, virt_var, virt_stat, virt_vid, vr)
        base, p = row, 0
        for s in range(k):
            if not ok[slot_cond[s]]:
                pos[s] = p - 1  # a slot that does not exist: the position before it (cumsum - 1)
                continue
            pos[s] = p
            var = variant_base[s]
            for l in range(n_levels):
                var += idx[a, level_var[l, s]] * level_stride[l, s]
            variant[row] = var
            if rel[s]:
                src[row] = p - rel[s]
            else:
                r = src_stat[s] if src_vid[s] < 0 else vr[src_vid[s]]
                if r >= s:
                    return s
                src[row] = pos[r] if r >= 0 else r
            if n_extra[s]:
                multi[n_multi] = row
                xoff[n_multi] = <int32_t>n_ex
                n_multi += 1
                for q in range(n_extra[s]):
                    t = extra_first[s] + q
                    r = extra_stat[t] if extra_vid[t] < 0 else vr[extra_vid[t]]
                    if r >= s:
                        return s
                    extra[n_ex] = <int32_t>(pos[r] if r >= 0 else r)
                    n_ex += 1
            row += 1
            p += 1
        for q in range(virtual_outputs.shape[0]):  # the rows the model's OneOf outputs pick
            r = vr[virtual_outputs[q]]
            if r >= 0 and ok[slot_cond[r]]:
                picked[n_picked] = base + pos[r]
                n_picked += 1
    return -1
