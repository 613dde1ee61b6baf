"""cc.sweep: stream a search space through the core, keep what fits a budget, and summarise it.

A space is any object with ``.size``, ``.pack(indices) -> cc.Packed`` and ``.sample(n, seed)``
(``.arch_str(i)`` is used when it has one). Spaces too large for integer indices (OFA, template
spaces) give candidates as numpy structured arrays instead (``space.dtype``; ``space.candidates(lo,
hi)`` for n=None): the kept table then has ``index`` = the position in the stream plus one column
per choice field. Chunks are packed and counted in batches of ``_PACK_BATCH`` candidates, so the
packed rows of a whole chunk never sit in memory at once. The indices (all of them, or ``space.sample(n, seed)``)
are cut into chunks; each chunk is packed, counted by the core and filtered, and only the kept rows
and the per-chunk histogram counts survive it, so memory is bounded by the kept rows whatever n is.
With ``client=`` (a ``dask.distributed.Client``) every chunk is one task keyed by its index range;
the client concatenates the kept rows in chunk order and sums the histograms, so the result is the
local run's, row for row.

Histograms use fixed edges (0, then 8 bins per octave: 2**(k/8)) so that per-chunk counts add up
exactly across chunks and workers; ``SweepResult.histograms(bins)`` with an int or explicit edges
recomputes them from the kept table.
"""
from __future__ import annotations

import itertools
import math
import os
import tempfile
import time
import uuid

import numpy as np

from .counting import count

__all__ = ["sweep", "SweepResult", "pareto_mask", "COUNT_FIELDS"]

COUNT_FIELDS = ("params", "buffers", "macs", "flops", "peak_activation_bytes")
_CONSTRAINABLE = COUNT_FIELDS + ("param_bytes", "activation_elements")
_SAMPLE_BLOCK = 1 << 22  # indices drawn per space.sample call (32 MB of int64)
_PACK_BATCH = 2048  # candidates packed and counted at once: bounded memory, and buffers malloc reuses
_CHAIN_BATCH = 16384  # candidates counted block by block at once (all of NB201: one walk, one join of the tables)
_SUB_PER_OCTAVE = 8
HIST_EDGES = np.concatenate([[0.0], 2.0 ** (np.arange(0, 63 * _SUB_PER_OCTAVE + 1) / _SUB_PER_OCTAVE)])


# ---- constraints ---------------------------------------------------------------------------------
def _normalize_constraints(constraints):
    """{field: (lo, hi)} with inclusive bounds (None = open). A number means (None, number)."""
    if constraints is None:
        return {}
    if not isinstance(constraints, dict):
        raise TypeError(f"constraints must be a dict like {{'params': 5e6, 'macs': (1e8, 3e8)}}, "
                        f"got {type(constraints).__name__}")
    out = {}
    for k, v in constraints.items():
        if k not in _CONSTRAINABLE:
            raise ValueError(f"unknown constraint {k!r}; expected one of {', '.join(_CONSTRAINABLE)}")
        if isinstance(v, (tuple, list)):
            if len(v) != 2:
                raise ValueError(f"constraint {k!r}: expected a maximum or a (min, max) pair, got {v!r}")
            lo, hi = v
        else:
            lo, hi = None, v
        for b in (lo, hi):
            if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating))
                                  or (isinstance(b, (float, np.floating)) and math.isnan(b))):
                raise ValueError(f"constraint {k!r}: bounds must be numbers or None, got {v!r}")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"constraint {k!r}: min {lo} is above max {hi}")
        out[k] = (lo, hi)
    return out


# ---- one chunk (runs locally or on a Dask worker) --------------------------------------------------
def _row_dtype(with_arch, choice_dtype=None):
    fields = [("index", np.int64)]
    if with_arch:  # Python str objects: 8 bytes a row (a fixed-width "U95" field is 380 of fresh memory)
        fields.append(("arch_str", object))
    if choice_dtype is not None:
        fields += [(name, choice_dtype.fields[name][0]) for name in choice_dtype.names]
    fields += [(f, np.int64) for f in COUNT_FIELDS]
    return np.dtype(fields)


def _choice_dtype(space):
    """The structured dtype of a space whose candidates are choice arrays, else None."""
    dt = getattr(space, "dtype", None)
    return dt if isinstance(dt, np.dtype) and dt.names else None


def _count_batches(space, cands, n_threads):
    """The counts of the candidates -> ({field: array}, seconds packing, seconds counting): block by
    block where the space can (``_chain_count``), else cc.count of space.pack, _PACK_BATCH at a time."""
    wanted = ("valid",) + _CONSTRAINABLE
    if callable(getattr(space, "_chain_count", None)):  # block by block (spaces/_blockwise.py): no packing
        t0, parts = time.perf_counter(), []
        for lo in range(0, len(cands), _CHAIN_BATCH):
            part = space._chain_count(cands[lo:lo + _CHAIN_BATCH], n_threads)
            if part is None:  # no blocks, or totals that could overflow int64: counted packed below
                break
            parts.append(part)
        else:
            return {f: np.concatenate([p[f] for p in parts]) for f in wanted}, 0.0, time.perf_counter() - t0
    parts, t_pack, t_count = [], 0.0, 0.0
    for lo in range(0, len(cands), _PACK_BATCH):
        part = cands[lo:lo + _PACK_BATCH]
        t0 = time.perf_counter()
        packed = space.pack(part)
        t1 = time.perf_counter()
        res = count(packed, n_threads=n_threads)
        del packed  # free the rows before the next batch: malloc hands the same pages back
        t_pack, t_count = t_pack + t1 - t0, t_count + time.perf_counter() - t1
        if len(res) != len(part):
            raise ValueError(f"space.pack returned {len(res)} architectures for {len(part)} candidates")
        parts.append({f: getattr(res, f) for f in wanted})
    if len(parts) == 1:
        return parts[0], t_pack, t_count
    return {f: np.concatenate([p[f] for p in parts]) for f in wanted}, t_pack, t_count


def _has_arch_str(space):
    return callable(getattr(space, "arch_str", None))


_CELL_STRINGS = {}  # (ops, edges) -> every cell's arch string, by base-len(ops) choice code


def _cell_strings(ops, edges):
    key = (tuple(ops), tuple(tuple(e) for e in edges))
    if key not in _CELL_STRINGS:  # itertools.product walks the codes in order: the last edge fastest
        seps = ["|+|" if e and edges[e][0] != edges[e - 1][0] else "|" for e in range(len(edges))]
        toks = [[f"{sep}{o}~{k}" for o in ops] for sep, (_, k) in zip(seps, edges)]
        # each string joined from two halves: 2 * 125 joins instead of 15,625 for NB201
        half = len(toks) // 2
        heads = ["".join(t) for t in itertools.product(*toks[:half])]
        tails = ["".join(t) + "|" for t in itertools.product(*toks[half:])]
        strings = np.empty(len(heads) * len(tails), object)
        strings[:] = [h + t for h in heads for t in tails]
        _CELL_STRINGS[key] = strings
    return _CELL_STRINGS[key]


def _arch_strings(space, idx):
    """Arch strings of ``idx``: a table lookup for NB201-like cell spaces (``choices`` + ``ops`` +
    ``edges``: the same text as NB201.arch_str, built once per op set), else ``space.arch_str(i)``."""
    if len(idx) == 0:
        return np.zeros(0, object)
    ch = getattr(space, "choices", None)
    ops, edges = getattr(space, "ops", None), getattr(space, "edges", None)
    if (callable(ch) and ops is not None and edges is not None and len(ops) ** len(edges) <= 1 << 16
            and [j for j, _ in edges] == sorted(j for j, _ in edges)):
        c = np.asarray(ch(idx), dtype=np.int64)
        code = c @ (len(ops) ** np.arange(len(edges) - 1, -1, -1, dtype=np.int64))
        return _cell_strings(ops, edges)[code]
    out = np.empty(len(idx), object)
    out[:] = [str(space.arch_str(int(i))) for i in idx]
    return out


def _count_chunk(space, idx, constraints, n_threads, with_arch, first=0):
    """Pack, count and filter one chunk of indices (or choice arrays, stream positions from
    ``first``) -> (kept rows, histogram counts, n_valid, timings: pack, count, filter)."""
    choice_dt = _choice_dtype(space)
    idx = np.asarray(idx) if choice_dt is not None else np.asarray(idx, dtype=np.int64)
    res, t_pack, t_count = _count_batches(space, idx, n_threads)
    t2 = time.perf_counter()
    keep = res["valid"].copy()
    n_valid = int(keep.sum())
    for k, (lo, hi) in constraints.items():
        v = res[k]
        if lo is not None:
            keep &= v >= lo
        if hi is not None:
            keep &= v <= hi
    sel = np.nonzero(keep)[0]
    strs = _arch_strings(space, idx[sel]) if with_arch else None
    rows = np.empty(len(sel), _row_dtype(with_arch, choice_dt))
    if choice_dt is None:
        rows["index"] = idx[sel]
    else:
        rows["index"] = first + sel
        picked = idx[sel]  # whole records at once, then field by field
        for name in choice_dt.names:
            rows[name] = picked[name]
    if with_arch:
        rows["arch_str"] = strs
    kept = {f: res[f][sel] for f in COUNT_FIELDS}
    for f in COUNT_FIELDS:
        rows[f] = kept[f]
    hist = np.stack([_hist(kept[f]) for f in COUNT_FIELDS])
    t3 = time.perf_counter()
    return rows, hist, n_valid, np.array([t_pack, t_count, t3 - t2])


def _hist(values):
    """Counts over HIST_EDGES (np.histogram's rule: the last bin closed), by a binary search per
    value instead of np.histogram's sort."""
    nb = len(HIST_EDGES) - 1
    b = np.searchsorted(HIST_EDGES, values, side="right") - 1
    b[values == HIST_EDGES[-1]] = nb - 1
    return np.bincount(b[(b >= 0) & (b < nb)], minlength=nb).astype(np.int64)


def _remote_chunk(space, lo, hi, idx, constraints, n_threads, with_arch):
    """A Dask task: the chunk [lo, hi) of the index stream (``idx`` given for samples, else arange)."""
    if idx is None:
        idx = _all_candidates(space, lo, hi)
    return _count_chunk(space, idx, constraints, n_threads, with_arch, lo)


def _all_candidates(space, lo, hi):
    """Candidates lo..hi-1 of the whole space: indices, or ``space.candidates`` for choice spaces."""
    return space.candidates(lo, hi) if _choice_dtype(space) is not None else np.arange(lo, hi, dtype=np.int64)


# ---- index stream ---------------------------------------------------------------------------------
def _index_chunks(space, n, seed, chunk_size):
    """Yield (lo, hi, idx or None) over the stream: positions [lo, hi) of the index sequence. For
    n=None idx is None (= arange(lo, hi)). Samples are drawn in blocks of _SAMPLE_BLOCK: the first
    block is ``space.sample(min(n, block), seed)`` -- so for n <= 4,194,304 exactly
    ``space.sample(n, seed)`` -- and block b > 0 uses a seed derived from (seed, b). A space whose
    ``sample`` names a generator of its blocks (TemplateSpace's) streams exactly
    ``space.sample(n, seed)`` for any n."""
    if n is None:
        for lo in range(0, space.size, chunk_size):
            yield lo, min(lo + chunk_size, space.size), None
        return
    pos = 0
    streamed = getattr(getattr(type(space), "sample", None), "streamed_by", None)
    if streamed:  # a TemplateSpace's own sample: the same candidates, a block at a time
        parts, m = [], 0
        for block in getattr(space, streamed)(n, seed):
            parts.append(block)
            m += len(block)
            if m >= chunk_size:
                joined = np.concatenate(parts)
                for lo in range(0, m - m % chunk_size, chunk_size):
                    yield pos, pos + chunk_size, joined[lo:lo + chunk_size]
                    pos += chunk_size
                parts, m = [joined[m - m % chunk_size:]], m % chunk_size
        if m:
            yield pos, pos + m, np.concatenate(parts)
        return
    for b, blo in enumerate(range(0, n, _SAMPLE_BLOCK)):
        m = min(_SAMPLE_BLOCK, n - blo)
        s = seed if b == 0 else int(np.random.SeedSequence([0 if seed is None else int(seed), b]).generate_state(1)[0])
        block = space.sample(m, s)
        block = np.asarray(block) if _choice_dtype(space) is not None else np.asarray(block, dtype=np.int64)
        for lo in range(0, m, chunk_size):
            part = block[lo:lo + chunk_size]
            yield pos, pos + len(part), part
            pos += len(part)


# ---- result ---------------------------------------------------------------------------------------
def _concat_rows(parts, with_arch, choice_dt=None):
    if not parts:
        return np.zeros(0, _row_dtype(with_arch, choice_dt)).view(np.recarray)
    dt = _row_dtype(with_arch, choice_dt)
    if len(parts) == 1 and parts[0].dtype == dt:  # one chunk (NB201's whole space): no copy
        return parts[0].view(np.recarray)
    return np.concatenate([p.astype(dt, copy=False) for p in parts]).view(np.recarray)


def pareto_mask(values):
    """Boolean mask of the non-dominated rows of ``values`` (n, k), every column minimised: row a is
    dominated when some row b is <= in every column and < in one. Equal rows never dominate each
    other (both are kept). k == 2 is O(n log n); k > 2 compares against the growing front."""
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError("pareto_mask expects an (n, k) array")
    n, k = v.shape
    mask = np.zeros(n, bool)
    if n == 0:
        return mask
    if k == 1:
        return v[:, 0] == v[:, 0].min()
    if k == 2:
        order = np.lexsort((v[:, 1], v[:, 0]))  # by x, then y
        x, y = v[order, 0], v[order, 1]
        new_group = np.r_[True, x[1:] != x[:-1]]
        gid = np.cumsum(new_group) - 1
        gmin = y[new_group]  # min y of each x group (sorted by y within a group)
        prefix = np.minimum.accumulate(gmin)
        group_ok = np.r_[True, gmin[1:] < prefix[:-1]]  # strictly below every smaller x's best y
        ok = (y == gmin[gid]) & group_ok[gid]
        mask[order[ok]] = True
        return mask
    order = np.lexsort(tuple(v[:, j] for j in range(k - 1, -1, -1)))
    front = []  # indices of front members, in lexicographic order
    for i in order:
        if front:
            f = v[front]
            le = (f <= v[i]).all(axis=1)
            lt = (f < v[i]).any(axis=1)
            if (le & lt).any():
                continue
        front.append(i)
    mask[front] = True
    return mask


def _atomic_write(path, write, suffix=""):
    """write(tmp_path) into a temporary file beside ``path``, then rename it over ``path``."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix + ".tmp", dir=d)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class SweepResult:
    """What a sweep kept: ``table`` (numpy record array: index, arch_str (str) where the space has one,
    params, buffers, macs, flops, peak_activation_bytes), counts of what was seen (``n_counted``,
    ``n_valid``, ``n_kept``), the streamed histograms, ``seconds`` and ``timings``."""

    def __init__(self, table, hist, n_counted, n_valid, constraints, objectives, seconds, timings):
        self.table = table
        self._hist = hist
        self.n_counted, self.n_valid, self.n_kept = int(n_counted), int(n_valid), len(table)
        self.constraints, self.objectives = constraints, tuple(objectives)
        self.seconds, self.timings = seconds, timings

    def __len__(self):
        return len(self.table)

    def __repr__(self):
        return (f"<cnncore.SweepResult: {self.n_counted:,} counted, {self.n_valid:,} valid, "
                f"{self.n_kept:,} kept in {self.seconds:.3f} s>")

    @property
    def fields(self):
        return self.table.dtype.names

    def to_pandas(self):
        """A DataFrame of the table (a choice-array field, e.g. OFA's ks, is a column of arrays)."""
        import pandas as pd
        return pd.DataFrame({f: self.table[f] if self.table[f].ndim == 1 else list(np.asarray(self.table[f]))
                             for f in self.fields})

    def to_parquet(self, path):
        """Write the table as Parquet: to a temporary file beside ``path``, renamed when complete.
        A choice-array field (e.g. OFA's ks, (n, 20)) is a fixed-size list column."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        def column(a):
            a = np.asarray(a)
            if a.dtype == object:  # arch_str: typed, so an empty table's column is a string one too
                return pa.array(a, type=pa.string())
            if a.ndim == 1:
                return a
            return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).ravel()), a.shape[1])

        tab = pa.table({f: column(self.table[f]) for f in self.fields})
        _atomic_write(path, lambda tmp: pq.write_table(tab, tmp))
        return path

    def pareto(self, objectives=None):
        """The non-dominated kept rows (each objective minimised), sorted by the first objective."""
        obj = tuple(self.objectives if objectives is None else
                    ((objectives,) if isinstance(objectives, str) else objectives))
        for o in obj:
            if o not in COUNT_FIELDS:
                raise ValueError(f"unknown objective {o!r}; expected fields of {', '.join(COUNT_FIELDS)}")
        if not obj:
            raise ValueError("pareto needs at least one objective")
        t = self.table
        m = pareto_mask(np.stack([t[o] for o in obj], axis=1) if len(t) else np.zeros((0, len(obj)), np.int64))
        front = t[m]
        return front[np.lexsort(tuple(front[o] for o in reversed(obj)))] if len(front) else front

    def histograms(self, bins=None):
        """{field: (counts, edges)} over the kept rows. bins=None: the histograms accumulated chunk
        by chunk during the sweep (fixed log edges, 8 bins per octave, trimmed to the occupied
        range); an int or an array of edges: np.histogram of the kept table."""
        out = {}
        for j, f in enumerate(COUNT_FIELDS):
            if bins is None:
                c = self._hist[j]
                nz = np.nonzero(c)[0]
                a, b = (nz[0], nz[-1] + 1) if len(nz) else (0, 0)
                out[f] = (c[a:b].copy(), HIST_EDGES[a:b + 1].copy())
            else:
                c, e = np.histogram(self.table[f], bins)
                out[f] = (c.astype(np.int64), e)
        return out

    def plot(self, path, x="params", y="macs"):
        """PNG: every kept row as a point (x vs y, log axes) and the Pareto front over (x, y)."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        fig = Figure(figsize=(7, 5), dpi=110)
        ax = fig.subplots()
        t = self.table
        ax.scatter(t[x], t[y], s=3, alpha=0.35, color="tab:blue", linewidths=0, rasterized=True,
                   label=f"kept ({len(t):,})")
        front = self.pareto((x, y))
        if len(front):
            ax.step(front[x], front[y], where="post", color="tab:red", lw=1.2)
            ax.scatter(front[x], front[y], s=14, color="tab:red", label=f"Pareto front ({len(front)})", zorder=3)
        if len(t) and t[x].min() > 0 and t[y].min() > 0:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{self.n_kept:,} of {self.n_counted:,} candidates kept")
        ax.legend(loc="best", fontsize=8, markerscale=2)
        fig.tight_layout()
        _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
        return path


# ---- the sweep ------------------------------------------------------------------------------------
def sweep(space, n=None, seed=0, constraints=None, chunk_size=65536, n_threads=None,
          objectives=("params", "macs"), client=None, progress=None, max_in_flight=None):
    """Count a search space (all ``space.size`` indices when n is None, else ``space.sample(n, seed)``)
    chunk by chunk and keep the valid architectures inside ``constraints`` -> SweepResult.

    constraints: {field: max} or {field: (min, max)} (inclusive, None = open) over params, buffers,
    macs, flops, peak_activation_bytes (also param_bytes, activation_elements).
    objectives: the default objectives of ``SweepResult.pareto()``.
    client: a ``dask.distributed.Client``: one task per chunk (keyed by its index range, retried
    twice), reduced here; the result is the local run's.
    progress: callable(done, total) called after each chunk.
    """
    for attr in ("size", "pack", "sample"):
        if not hasattr(space, attr):
            raise TypeError(f"sweep: the space needs .size, .pack(indices) and .sample(n, seed); "
                            f"{type(space).__name__} has no .{attr}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise ValueError(f"n must be None (every index) or a non-negative int, got {n!r}")
    chunk_size = int(chunk_size)
    if n is None and _choice_dtype(space) is not None and space.size >= 2 ** 63:
        raise ValueError(f"sweep: the space has {space.size:.3g} candidates, too many to count them all; "
                         f"pass n (a number of samples)")
    total = int(space.size) if n is None else int(n)
    cons = _normalize_constraints(constraints)
    objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
    for o in objectives:
        if o not in COUNT_FIELDS:
            raise ValueError(f"unknown objective {o!r}; expected fields of {', '.join(COUNT_FIELDS)}")
    with_arch = _has_arch_str(space)
    t0 = time.perf_counter()
    chunks = _index_chunks(space, None if n is None else int(n), seed, chunk_size)
    if client is None:
        parts, hist, n_valid, tim, done = [], np.zeros((len(COUNT_FIELDS), len(HIST_EDGES) - 1), np.int64), 0, np.zeros(3), 0
        for hi, (rows, h, nv, t) in _local_chunks(space, chunks, cons, n_threads, with_arch):
            parts.append(rows)
            hist += h
            n_valid += nv
            tim += t
            done = hi
            if progress is not None:
                progress(done, total)
    else:
        parts, hist, n_valid, tim = _dask_sweep(client, space, chunks, total, cons, n_threads, with_arch,
                                                progress, max_in_flight)
    table = _concat_rows(parts, with_arch, _choice_dtype(space))
    timings = dict(zip(("pack", "count", "filter"), tim.tolist()))
    return SweepResult(table, hist, total, n_valid, cons, objectives, time.perf_counter() - t0, timings)


def _local_chunks(space, chunks, cons, n_threads, with_arch):
    """Yield (hi, _count_chunk result) in stream order. A space counted block by block (its chunks
    are numpy gathers that release the GIL) runs its chunks on n_threads threads (the core runs only
    while the block tables fill); otherwise the core's own threads count one chunk at a time."""
    from .counting import _resolve_threads

    def one(lo, hi, idx, threads):
        return _count_chunk(space, _all_candidates(space, lo, hi) if idx is None else idx,
                            cons, threads, with_arch, lo)

    threads = _resolve_threads(n_threads, 1 << 30)
    chunks = iter(chunks)
    head = [c for c in (next(chunks, None), next(chunks, None)) if c is not None]  # one chunk: no threads
    if len(head) < 2 or threads == 1 or not callable(getattr(space, "_chain_count", None)):
        for lo, hi, idx in itertools.chain(head, chunks):
            yield hi, one(lo, hi, idx, n_threads)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as pool:
        pending = deque()
        for lo, hi, idx in itertools.chain(head, chunks):
            pending.append((hi, pool.submit(one, lo, hi, idx, n_threads)))
            if len(pending) > 2 * threads:  # bounded: at most this many chunks in memory
                hi0, fut = pending.popleft()
                yield hi0, fut.result()
        while pending:
            hi0, fut = pending.popleft()
            yield hi0, fut.result()


def _the_space(space):
    return space


def _dask_sweep(client, space, chunks, total, cons, n_threads, with_arch, progress, max_in_flight):
    """One task per chunk, keyed by its index range; at most ``max_in_flight`` outstanding (memory
    stays bounded); results placed by chunk position, so order and content match the local run."""
    from distributed import as_completed
    tag = uuid.uuid4().hex[:12]
    if max_in_flight is None:
        try:
            max_in_flight = max(4, 4 * sum(client.nthreads().values()))
        except Exception:
            max_in_flight = 16
    # shipped once, not once per task, as the result of a task rather than scattered data: a lost
    # worker's copy is recomputed by Dask, and no replicate() runs (scatter(broadcast=True) lost
    # the key now and then here: dask/distributed#6578 lists replicate's fragility)
    space_f = client.submit(_the_space, space, key=f"cnncore-space-{tag}")
    results = {}
    hist = np.zeros((len(COUNT_FIELDS), len(HIST_EDGES) - 1), np.int64)
    n_valid, tim, done = 0, np.zeros(3), 0
    ac = as_completed()
    pending = 0

    def submit(lo, hi, idx):
        key = f"cnncore-sweep-{tag}-{lo}-{hi}"  # one key per index range: never counted twice
        fut = client.submit(_remote_chunk, space_f, lo, hi, idx, cons, n_threads, with_arch,
                            key=key, retries=2)
        fut.range = (lo, hi)
        ac.add(fut)

    it = iter(chunks)
    exhausted = False
    while True:
        while not exhausted and pending < max_in_flight:
            nxt = next(it, None)
            if nxt is None:
                exhausted = True
                break
            submit(*nxt)
            pending += 1
        if pending == 0:
            break
        fut = next(ac)
        pending -= 1
        lo, hi = fut.range
        rows, h, nv, t = fut.result()
        fut.release()
        if lo in results:
            raise RuntimeError(f"sweep: chunk [{lo}, {hi}) returned twice")
        results[lo] = (hi, rows)
        hist += h
        n_valid += nv
        tim += t
        done += hi - lo
        if progress is not None:
            progress(done, total)
    # every position of [0, total) covered exactly once
    pos = 0
    for lo in sorted(results):
        if lo != pos:
            raise RuntimeError(f"sweep: chunk starting at {pos} is missing")
        pos = results[lo][0]
    if pos != total:
        raise RuntimeError(f"sweep: counted {pos} of {total} positions")
    return [results[lo][1] for lo in sorted(results)], hist, n_valid, tim
