"""A template space's network cut into a chain of blocks, found from its traced rows, so that its
sweeps count block by block (_blockwise.py) like NB201's and OFA's -- for any user template.

A cut sits before slot t when everything the slots from t on read (and the model's output) that was
made before t is one tensor T: a slot, or a OneOf / Optional output. The piece between two cuts is
then a block whose input is the previous cut's tensor and whose output is the next one's. A block's
variant is the option numbers of the choices its rows, presence conditions and OneOfs use; its
input shape comes from the block before it. Nothing here counts: each block is a template of its
own (the same rows, references renumbered) that _Expansion packs and the core counts.

Cuts are refused where the whole-network counts could differ from the sum / maximum of the blocks':
at a Slice or a view of one (smaller than the storage it keeps alive), at the network input, with
several model outputs, a batch size that is a choice, and where a block's output may be its own
input while some of its rows still run.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _format as F
from ._blockwise import Block, BlockChain
from ._template import _VIRTUAL, Choice, _Expansion, _strides

__all__ = ["template_chain"]

_MAX_VARIANTS = 1 << 14  # a block with more variants than this is not worth a table: pack instead
_JOIN = 81  # neighbouring pieces are one block while they have at most this many variants together


def _reads(b, slot):
    row = b.rows[slot]
    n = int(row[F.NSRC])
    return [row[F.SRC]] + (b.extra[int(row[F.XOFF]):int(row[F.XOFF]) + n - 1] if n > 1 else [])


def _targets(b, ref):
    """The refs a OneOf output may be (one level), else [ref]."""
    return list(b.virtual[ref - _VIRTUAL][1]) if ref >= _VIRTUAL else [ref]


def _resolves(b, ref, ok):
    """ok(r) for every static ref (slot or input) ``ref`` may turn out to be."""
    if ref >= _VIRTUAL:
        return all(_resolves(b, r, ok) for r in _targets(b, ref))
    return ok(ref)


def _span(b, ref, memo):
    """(first, last) slot ``ref`` may turn out to be (the network input counts as -1)."""
    if ref not in memo:
        if ref >= _VIRTUAL:
            spans = [_span(b, r, memo) for r in _targets(b, ref)]
            memo[ref] = min(a for a, _ in spans), max(z for _, z in spans)
        else:
            memo[ref] = ref, ref
    return memo[ref]


def _cuts(b, k, out):
    """[(t, T)]: before slot t, everything read later that was made earlier is the tensor T. The
    refs read from t on are gathered going backwards; a ref made entirely before t crosses the cut
    as itself, a OneOf output that may be either is looked through to its options."""
    memo, read, cuts = {}, {out}, []
    for t in range(k - 1, 0, -1):
        read.update(_reads(b, t))
        crossing, todo = set(), [r for r in read if _span(b, r, memo)[0] < t]
        while todo and len(crossing) < 2:
            r = todo.pop()
            first, last = _span(b, r, memo)
            if last < t:
                crossing.add(r)
            elif first < t:
                todo += _targets(b, r)
        if len(crossing) != 1:
            continue
        T = crossing.pop()
        if T == -1 or not _resolves(b, T, lambda q: 0 <= q < t and not _slice_storage(b, q)):
            continue
        cuts.append((t, T))
    return cuts[::-1]


_VIEWS = (F.OPS["Identity"], F.OPS["Flatten"], F.OPS["Slice"])  # what the core treats as views


def _slice_storage(b, q):
    """Slot q is a Slice, or a view (Identity, Flatten) of one: its storage is larger than itself, so
    it keeps more alive in the whole network than it would as a block's input."""
    if q < 0 or b.rows[q][F.OP] not in _VIEWS:
        return False
    return b.rows[q][F.OP] == F.OPS["Slice"] or not _resolves(b, b.rows[q][F.SRC],
                                                               lambda r: not _slice_storage(b, r))


def _segment(b, lo, hi, inp, out):
    """The rows lo..hi-1 as a builder of their own: ``inp`` becomes the network input (-1), slots
    shift down by lo, the OneOf outputs they use are renumbered. None when a row reads something
    outside, or the output may be the input while rows of the piece still run."""
    used = set()

    def collect(ref):
        if ref >= _VIRTUAL and ref != inp and ref not in used:
            used.add(ref)
            for r in _targets(b, ref):
                collect(r)

    for s in range(lo, hi):
        for r in _reads(b, s):
            collect(r)
    collect(out)
    order = sorted(used)  # a nested OneOf comes before the one that uses it, as in the trace
    new_ref = {v: _VIRTUAL + i for i, v in enumerate(order)}

    def remap(ref):
        if ref == inp:
            return -1
        if ref >= _VIRTUAL:
            return new_ref[ref]
        if lo <= ref < hi:
            return ref - lo
        raise LookupError(ref)

    try:
        rows, extra = [], []
        for s in range(lo, hi):
            reads = [remap(r) for r in _reads(b, s)]
            row = list(b.rows[s])
            row[F.SRC] = reads[0]
            if len(reads) > 1:
                row[F.XOFF] = len(extra)
                extra += reads[1:]
            rows.append(row)
        virtual = [(b.virtual[v - _VIRTUAL][0], [remap(r) for r in _targets(b, v)]) for v in order]
        out_ref = remap(out)
    except LookupError:
        return None
    may_pass = not _resolves(SimpleNamespace(virtual=virtual), out_ref, lambda q: q != -1)
    if may_pass and hi > lo and not _passes_only_when_empty(b, lo, hi, inp, out):
        return None
    return SimpleNamespace(rows=rows, extra=extra, conds=list(b.conds[lo:hi]), virtual=virtual), out_ref


def _passes_only_when_empty(b, lo, hi, inp, out):
    """The piece's output may be its input: only right when no row runs then, i.e. the output is a
    OneOf whose pass-through options are excluded by a condition of every row."""
    if out < _VIRTUAL:
        return False
    choice, refs = b.virtual[out - _VIRTUAL]
    through = {i for i, r in enumerate(refs) if r == inp}
    return all(any(ch is choice and i not in through for ch, i in b.conds[s]) for s in range(lo, hi))


def _n_variants(b, lo, hi, virtual, positions, variables):
    return int(np.prod([len(variables[j].values) for j in _variables(b, lo, hi, virtual, positions)],
                       dtype=np.float64))


def _variables(b, lo, hi, virtual, positions):
    """Positions (in the space's variables) of the choices the rows lo..hi-1 depend on."""
    found = set()
    for s in range(lo, hi):
        for v in b.rows[s]:
            if isinstance(v, Choice):
                found.update(positions[id(r)] for r in v.roots)
        for ch, _ in b.conds[s]:
            found.add(positions[id(ch.var)])
    for ch, _ in virtual:
        found.add(positions[id(ch.var)])
    return sorted(found)


class _TemplateBlock(Block):
    """A piece of a template as a Block: its own rows, traced for the input shapes asked for."""

    def __init__(self, key, builder, out_ref, variables, batch):
        super().__init__(key, None, [range(len(v.values)) for v in variables])
        self.builder, self.out_ref, self.variables, self.batch = builder, out_ref, variables, batch

    def _template(self, dims, which):
        return _Expansion(None, list(self.variables) + [which], traced=(self.builder, dims, self.batch, [self.out_ref]))


def template_chain(expansion, variables):
    """(BlockChain, per block [(variable, stride)]: its code is the sum of the option numbers times
    the strides) of a template's traced rows, or None when it has fewer than two blocks or a block
    too many variants."""
    b, _, batch, last_refs = expansion.traced
    if len(last_refs) != 1 or isinstance(batch, Choice) or not isinstance(batch, int) or expansion.k < 2:
        return None  # (a batch size that is a choice would have to reach every block)
    positions = {id(v): j for j, v in enumerate(variables)}
    cuts, pieces, lo, inp = _cuts(b, expansion.k, last_refs[0]), [], 0, -1
    for t, T in cuts + [(expansion.k, last_refs[0])]:
        seg = _segment(b, lo, t, inp, T)
        if seg is None:
            continue  # no cut here: the piece runs on to the next one
        if pieces:  # join the piece before while their variants together stay few: fewer, larger blocks
            plo, _, pinp, _ = pieces[-1]
            joined = _segment(b, plo, t, pinp, T)
            if joined is not None and _n_variants(b, plo, t, joined[0].virtual, positions, variables) <= _JOIN:
                pieces[-1] = (plo, t, pinp, joined)
                lo, inp = t, T
                continue
        pieces.append((lo, t, inp, seg))
        lo, inp = t, T
    if not pieces or pieces[-1][1] != expansion.k:
        return None
    blocks, block_vars = [], []
    for p, (lo, hi, _, (builder, out_ref)) in enumerate(pieces):
        var_pos = _variables(b, lo, hi, builder.virtual, positions)
        radix = [len(variables[j].values) for j in var_pos]
        if int(np.prod(radix, dtype=np.float64)) > _MAX_VARIANTS:
            return None
        block_vars.append(_strides(var_pos, radix)[0])  # the last choice fastest, as Block.pack reads codes
        blocks.append(_TemplateBlock(f"piece{p}", builder, out_ref, [variables[j] for j in var_pos], batch))
    return BlockChain(blocks), block_vars
