"""Counting a search space's networks block by block (what ``cc.sweep`` runs for NB201 and for
template spaces, OFA's included: _segments.py finds a template's blocks).

Most NAS networks are a chain of blocks: exactly one tensor passes from each block to the next
(NAS-Bench-201's cells and reduction blocks, OFA's MBConv blocks). For such a network

- params, buffers, MACs, FLOPs and activation elements are the sums of its blocks';
- the peak of live activations is the largest of its blocks' peaks, each block counted as a model
  whose input is the tensor it receives: in the whole network that tensor is live from the last
  moment of the block before (its output) until its last reader in this block (an input), and
  nothing else crosses the boundary (docs/conventions.md, peak_activation_bytes);
- the network is valid when every block is.

A block's counts depend only on its own choices (its *variant*) and on its input shape, and a space
has few distinct (variant, input shape) pairs: NB201 has 15,625 cell variants at 3 input shapes,
OFA-MobileNetV3's template 15 blocks of at most 81 variants at ~25 resolutions. So the core counts
each pair once, as a batch of one-block models (kept for the life of the space object), and a
candidate's counts are a gather from those tables (src/_blocks.pyx) -- the same numbers, field by
field, as packing and counting the whole network (tests/test_spaces_blockwise.py compares them).
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy as np

from .. import _blocks
from ..counting import count
from ..graph import Input, Model
from ._template import Choice, SlotTable, _digits, _Expansion

__all__ = ["Block", "BlockChain"]

SUM_FIELDS = ("params", "buffers", "macs", "flops", "activation_elements")
_PEAK, _VALID, _OUT = len(SUM_FIELDS), len(SUM_FIELDS) + 1, len(SUM_FIELDS) + 2  # more table columns
_NEW_BATCH = 4096  # block variants packed and counted at once (measured best of 2-16 k)
_TABLE_ENTRIES = 1 << 22  # at most this many (input shape, code) slots per block (16 MB)
_DEAD = 0  # the shape id after a block that failed: later blocks are not counted on it
_LIMIT = 2 ** 62  # totals whose largest possible value stays below this cannot overflow int64


_ROWS_BUFFERS = []  # rows buffers of table fills, kept for the next fill of any chain (see _count_new)
_LOCK = threading.Lock()
_CHAINS = weakref.WeakSet()  # every chain alive, for _after_fork_in_child


def _after_fork_in_child():
    """A fork copies a lock that another thread of the parent held (one filling a table) as held
    for ever, and the tables that thread was writing half-written: the child starts every chain's
    tables (caches) and this module's lock and buffers afresh."""
    global _LOCK
    _LOCK = threading.Lock()
    _ROWS_BUFFERS.clear()
    for chain in list(_CHAINS):
        chain._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _TooLarge(Exception):
    """A block's table would pass _TABLE_ENTRIES."""


class Block:
    """One link of the chain.

    ``build(x, *values) -> tensor``: the block on the tensor x; ``options``: the option values of
    each of its choices (a variant code is the mixed-radix number of their option indices, the last
    fastest); ``absent``: True when code 0 means "the block does not run" (a depth choice: its
    output is its input) and codes 1.. are the variants; ``repeat``: the block runs that many times
    in a row with the same variant (NB201's five cells of a stage; its output shape must equal its
    input shape). Blocks with the same ``key`` and input shape share their counts.
    """

    def __init__(self, key, build, options=(), absent=False, repeat=1):
        self.key, self.build, self.absent, self.repeat = key, build, bool(absent), int(repeat)
        self.options = [tuple(int(v) for v in o) for o in options]
        self.n_variants = int(np.prod([len(o) for o in self.options], dtype=np.int64))
        self.n_codes = self.n_variants + self.absent

    def trace(self, shapes):
        """The block as a template (cached) whose choices are its options and which of ``shapes``
        (a tuple of input shapes) it reads."""
        traced = self.__dict__.setdefault("_traced", {})
        if shapes not in traced:
            which = Choice(range(len(shapes)))
            dims = list(shapes[0]) if len(shapes) == 1 else \
                [which.map(lambda i, d=d: shapes[i][d]) for d in range(len(shapes[0]))]
            if len(traced) > 8:
                traced.clear()
            traced[shapes] = self._template(dims, which)
        return traced[shapes]

    def _template(self, dims, which):
        """The block on an input of ``dims`` (ints, or values of the choice ``which``)."""
        choices = [Choice(o) for o in self.options]
        x = Input(tuple(dims))
        return _Expansion(Model(x, self.build(x, *choices)), choices + [which])

    def pack(self, expansion, variants, which, scratch=None):
        """A cc.Packed of the block alone, one architecture per variant, on input shape ``which``
        (positions in the shapes the template ``expansion`` was traced for); ``scratch``: see
        _Expansion.rows."""
        idx = np.empty((len(variants), len(self.options) + 1), np.int64)
        idx[:, :-1] = _digits(variants, [len(o) for o in self.options])
        idx[:, -1] = which
        *piece, shape, batch = expansion.rows(idx, scratch)
        return SlotTable.concat([piece], shape, batch, checked=False)


class BlockChain:
    """The blocks of a chain network, with the counts of every (block, variant, input shape) met
    so far. ``count(codes, input_ids, input_shapes)`` gives every candidate's totals."""

    def __init__(self, blocks, dtype_bytes=4):
        self.blocks, self.dtype_bytes = list(blocks), int(dtype_bytes)
        self._reset()
        _CHAINS.add(self)

    def _reset(self):
        """Empty tables (they are caches: counted again when needed) and a new lock."""
        self._shapes, self._shape_id = [None], {}  # shape id _DEAD: after a block that failed
        self._slots = {}  # block key -> (shape ids, codes) array of rows of _values (-1: not counted yet)
        self._values = {}  # block key -> (rows, 8) int64: SUM_FIELDS, peak, valid, output shape id
        self._join, self._version, self._lock = None, 0, threading.RLock()

    def _shape(self, shape):
        shape = tuple(int(v) for v in shape)
        if shape not in self._shape_id:
            with self._lock:
                if shape not in self._shape_id:
                    self._shapes.append(shape)
                    self._shape_id[shape] = len(self._shapes) - 1
        return self._shape_id[shape]

    def _table(self, block, shape_ids, codes, n_threads=None):
        """Rows of the block's table for every candidate, counting the pairs not met before."""
        slots = self._slots.get(block.key)
        if slots is None or slots.shape[0] < len(self._shapes):
            with self._lock:
                self._values.setdefault(block.key, np.zeros((0, _OUT + 1), np.int64))
                self._grow(block)
            slots = self._slots[block.key]
        key = shape_ids * block.n_codes + codes
        rows = np.take(slots, key)
        if rows.min(initial=0) < 0:
            with self._lock:  # cc.sweep may count chunks in threads: one of them fills a table
                current = self._slots[block.key]
                rows = np.take(current, key)
                missing = np.zeros(current.size, bool)  # which (shape, code) keys: no sort needed
                missing[key[rows < 0]] = True
                if missing.any():
                    self._count_new(block, np.flatnonzero(missing), n_threads)
                    rows = np.take(self._slots[block.key], key)
        return rows

    def _count_new(self, block, keys, n_threads=None):
        """Count the (input shape, code) pairs ``keys`` of the block (the core on n_threads) and add
        them to its table."""
        shape_ids, codes = np.divmod(keys, block.n_codes)
        new = np.zeros((len(keys), _OUT + 1), np.int64)
        new[:, _VALID] = shape_ids != _DEAD  # after a failed block: nothing to count
        new[:, _OUT] = shape_ids  # a skipped block passes its input on
        run = np.flatnonzero((codes >= block.absent) & (shape_ids != _DEAD))
        ndims = np.array([0 if i == _DEAD else len(self._shapes[i]) for i in range(len(self._shapes))])[shape_ids[run]]
        for ndim in np.flatnonzero(np.bincount(ndims)):  # one template per input rank (a OneOf may give several)
            group = run[ndims == ndim]
            used = np.flatnonzero(np.bincount(shape_ids[group]))  # the shape ids met, sorted
            expansion = block.trace(tuple(self._shapes[i] for i in used))
            # a batch at a time, the core's own threads counting each (a worker thread counting one
            # batch while this one packed the next measured 1.5x slower: both want the GIL), its rows
            # written into a buffer from a process-wide pool: memory touched before, where fresh
            # pages cost ~0.4-2 ms per MB to fault in here
            with _LOCK:
                buffer = _ROWS_BUFFERS.pop() if _ROWS_BUFFERS else []
            try:
                for lo in range(0, len(group), _NEW_BATCH):
                    part = group[lo:lo + _NEW_BATCH]
                    packed = block.pack(expansion, codes[part] - block.absent, np.searchsorted(used, shape_ids[part]),
                                        buffer)
                    self._store(block, count(packed, n_threads=n_threads), part, shape_ids, new)
            finally:
                with _LOCK:
                    if len(_ROWS_BUFFERS) < 2:
                        _ROWS_BUFFERS.append(buffer)
        values = self._values[block.key]
        self._values[block.key] = np.concatenate([values, new])  # rows first: a reader may see them early
        self._grow(block)  # outputs may have met new shapes: room for them
        self._slots[block.key].ravel()[keys] = len(values) + np.arange(len(keys))
        self._version += 1

    def _store(self, block, res, run, shape_ids, new):
        """Write the counts ``res`` of the block variants ``run`` into their table rows ``new``."""
        valid = np.asarray(res.valid)
        for j, f in enumerate(SUM_FIELDS):
            new[run, j] = getattr(res, f)
        new[run, _PEAK] = res._peak_elements
        new[run, _VALID] = valid
        # output shapes without the batch dimension, as shape ids
        outs = np.column_stack([res.output_ndim, res.output_shape])
        if (outs == outs[0]).all():  # the common case: one output shape
            ids = np.full(len(outs), self._shape(outs[0, 2:1 + outs[0, 0]]), np.int64)
        else:  # a few distinct ones (e.g. one per input resolution)
            known, outs = {}, list(map(tuple, outs.tolist()))
            for r in outs:
                if r not in known:
                    known[r] = self._shape(r[2:1 + r[0]])
            ids = np.array([known[r] for r in outs], np.int64)
        new[run, _OUT] = np.where(valid, ids, _DEAD)  # the blocks after a failed one count nothing
        if block.repeat > 1 and (new[run, _OUT] != np.where(valid, shape_ids[run], _DEAD)).any():
            raise ValueError(f"block {block.key!r} runs {block.repeat} times in a row, so its output shape must "
                             f"equal its input shape")

    def _grow(self, block):
        """Give the block's (shape, code) table a row for every shape met so far (under the lock);
        _TooLarge past _TABLE_ENTRIES (the chain then declines: cc.sweep packs instead)."""
        slots = self._slots.get(block.key)
        if slots is None or slots.shape[0] < len(self._shapes):
            rows = max(len(self._shapes), 2 * (0 if slots is None else slots.shape[0]), 8)
            if rows * block.n_codes > _TABLE_ENTRIES:
                raise _TooLarge
            grown = np.full((rows, block.n_codes), -1, np.int32)  # row numbers: < _TABLE_ENTRIES
            if slots is not None:
                grown[:slots.shape[0]] = slots
            self._slots[block.key] = grown
            self._version += 1

    def _joined(self, rebuild=False):
        """Every block's tables one after the other (sums scaled by the block's repeat), rebuilt when
        a table has changed (or asked to): the arrays _blocks.gather reads, the largest total."""
        join = self._join
        if rebuild or join is None or join[0] != self._version:
            with self._lock:
                version = self._version
                tables = [self._values[b.key] for b in self.blocks]
                slots = [self._slots[b.key] for b in self.blocks]
                sizes = np.array([len(t) for t in tables], np.int64)
                slot_size = np.array([t.size for t in slots], np.int64)
                join = self._join = (version, dict(
                    n_codes=np.array([b.n_codes for b in self.blocks], np.int64),
                    slot_first=np.cumsum(np.r_[0, slot_size[:-1]]), slot_size=slot_size,
                    slots=np.concatenate([t.ravel() for t in slots]),
                    row_first=np.cumsum(np.r_[0, sizes[:-1]]), row_size=sizes,
                    sums=np.concatenate([t[:, :_PEAK] * b.repeat for t, b in zip(tables, self.blocks)]),
                    peaks=np.concatenate([t[:, _PEAK] for t in tables]),
                    valid=np.concatenate([t[:, _VALID] for t in tables]).astype(np.uint8),
                    out_shape=np.concatenate([t[:, _OUT] for t in tables])),
                    sum(int(t[:, :_PEAK].max(initial=0)) * b.repeat for t, b in zip(tables, self.blocks)))
        return join[1], join[2]

    def count(self, codes, input_ids, input_shapes, n_threads=None):
        """{field: (n,) array} of the networks: ``valid`` and the fields cc.sweep filters on
        (params, buffers, macs, flops, activation_elements, param_bytes, peak_activation_bytes; 0
        where invalid). codes: (n_blocks, n) variant codes; input_ids: (n,) positions in
        ``input_shapes`` (the network input, without the batch dimension); n_threads: the core's, where
        block variants are counted (cc.count's default: all cores). None when the totals
        could exceed int64 or a table would grow too large (then count the packed networks instead).

        The compiled gather reads the tables; when a candidate needs a (block, variant, shape) not
        counted yet, the walk below, block by block with numpy, counts what is missing first."""
        codes = np.ascontiguousarray(codes, np.int64)
        if codes.ndim != 2 or len(codes) != len(self.blocks):
            raise ValueError(f"BlockChain.count: codes must be ({len(self.blocks)}, n), got shape {codes.shape}")
        n = codes.shape[1]
        if n and (codes.min() < 0 or (codes.max(axis=1) >= [b.n_codes for b in self.blocks]).any()):
            raise ValueError("BlockChain.count: a block code outside 0 .. n_codes - 1")
        shape_ids = np.array([self._shape(s) for s in input_shapes], np.int64)[np.asarray(input_ids, np.int64)]
        total, peak, ok = np.empty((n, len(SUM_FIELDS)), np.int64), np.empty(n, np.int64), np.empty(n, np.uint8)
        out = dict(total=total, peak=peak, ok=ok, shape=np.empty(n, np.int64))
        if self._join is None or _blocks.gather(codes, shape_ids, **self._joined()[0], **out) >= 0:
            ids = shape_ids
            try:
                for b, block in enumerate(self.blocks):  # block by block: a block's input is the last one's output
                    rows = self._table(block, ids, codes[b], n_threads)
                    ids = np.take(self._values[block.key][:, _OUT], rows)
            except _TooLarge:
                return None
            # (rebuilt: another thread may have filled a table and not yet marked it changed)
            if _blocks.gather(codes, shape_ids, **self._joined(rebuild=True)[0], **out) >= 0:
                raise RuntimeError("block tables incomplete after counting the missing variants")
        if self._joined()[1] >= _LIMIT // max(self.dtype_bytes, 1):
            return None
        valid = ok.view(bool)
        out = {f: np.where(valid, total[:, j], 0) for j, f in enumerate(SUM_FIELDS)}
        out["valid"] = valid
        out["param_bytes"] = out["params"] * self.dtype_bytes
        out["peak_activation_bytes"] = np.where(valid, peak, 0) * self.dtype_bytes
        return out
