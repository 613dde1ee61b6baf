"""cc.sweep counts NB201 and OFA candidates block by block (cnncore/spaces/_blockwise.py). The truth
here is the whole network packed and counted by the core, which the other space tests hold to the
published records and to torch: every field must be equal, candidate by candidate."""
import pickle

import numpy as np
import pytest

import cnncore as cc
from cnncore.layers import AdaptiveAvgPool2d, Conv2d, Linear, MaxPool2d, ReLU
from cnncore.spaces import Choice, OneOf, Optional
from cnncore.spaces._blockwise import Block, BlockChain
from cnncore.sweep import HIST_EDGES, _hist

FIELDS = ("valid", "params", "buffers", "macs", "flops", "activation_elements", "param_bytes",
          "peak_activation_bytes")


def assert_same_as_packed(got, res):
    for f in FIELDS:
        np.testing.assert_array_equal(got[f], np.asarray(getattr(res, f)), err_msg=f)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_nb201_blockwise_equals_packed_networks(dataset):
    space = cc.spaces.NB201(dataset)
    idx = np.arange(space.size)
    assert_same_as_packed(space._chain_count(idx), cc.count(space.pack(idx)))


@pytest.mark.parametrize("make", [cc.spaces.OFAMobileNetV3, lambda: cc.spaces.OFAMobileNetV3(width_mult=1.2),
                                  cc.spaces.OFAProxylessNAS])
def test_ofa_blockwise_equals_packed_networks(make):
    space = make()
    cands = space.sample(1500, seed=7)
    # the corners too: every depth at its smallest and largest, every kernel and expand ratio
    ks, es, ds, rs = (space.choices[f][0].values if f != "r" else space.choices[f].values for f in "ks e d r".split())
    for k in ks:
        for e in es:
            for d in (min(ds), max(ds)):
                c = np.zeros(1, space.dtype)
                c["ks"], c["e"], c["d"], c["r"] = k, e, d, rs[(k + e + d) % len(rs)]
                cands = np.concatenate([cands, c])
    assert_same_as_packed(space._chain_count(cands), cc.count(space.pack(cands)))


@pytest.mark.parametrize("field,value", [("ks", 4), ("e", 5), ("d", 1), ("r", 130), ("ks", -3), ("r", 9999)])
def test_ofa_blockwise_names_a_value_that_is_not_an_option(field, value):
    space = cc.spaces.OFAMobileNetV3()
    cands = space.sample(10, seed=0)
    cands[field][3] = value
    with pytest.raises(ValueError, match=f"{field}.*{value}"):
        space._chain_count(cands)
    with pytest.raises(ValueError, match=f"{field}.*{value}"):
        cc.sweep(_Given(space, cands), n=10)


class _Given:
    """A space whose sample is a fixed candidate array (to feed the sweep a bad candidate)."""

    def __init__(self, space, cands):
        self._space, self._cands = space, cands
        self.size, self.dtype = space.size, space.dtype

    def sample(self, n, seed=None):
        return self._cands[:n]

    def pack(self, cands):
        return self._space.pack(cands)

    def _chain_count(self, cands, n_threads=None):
        return self._space._chain_count(cands, n_threads)


def test_sweep_of_ofa_uses_the_blocks_and_keeps_what_packing_keeps():
    space = cc.spaces.OFAProxylessNAS()
    cons = {"params": 5_500_000, "macs": (2e8, 4e8)}
    r = cc.sweep(space, n=3000, seed=2, constraints=cons, chunk_size=1000)
    assert r.timings["pack"] == 0.0  # no network was packed
    cands = space.sample(3000, seed=2)
    res = cc.count(space.pack(cands))
    keep = (res.params <= cons["params"]) & (res.macs >= 2e8) & (res.macs <= 4e8) & res.valid
    np.testing.assert_array_equal(r.table["index"], np.flatnonzero(keep))
    np.testing.assert_array_equal(r.table["peak_activation_bytes"], res.peak_activation_bytes[keep])
    np.testing.assert_array_equal(r.table["ks"], cands["ks"][keep])


def test_sweep_on_two_threads_equals_one_thread_and_streams_the_sample():
    space = cc.spaces.OFAMobileNetV3()
    a = cc.sweep(space, n=50_000, seed=4, chunk_size=7_000, n_threads=1, constraints={"macs": 250e6})
    b = cc.sweep(cc.spaces.OFAMobileNetV3(), n=50_000, seed=4, chunk_size=7_000, n_threads=2,
                 constraints={"macs": 250e6})
    assert a.table.tobytes() == b.table.tobytes()
    assert np.array_equal(a._hist, b._hist)
    s = space.sample(50_000, seed=4)  # crosses sampling blocks; chunks cut across them
    np.testing.assert_array_equal(a.table["e"], s["e"][a.table["index"]])
    np.testing.assert_array_equal(a.table["r"], s["r"][a.table["index"]])


def test_spaces_pickle_after_their_tables_are_built():
    for space in (cc.spaces.NB201(), cc.spaces.OFAMobileNetV3()):
        cc.sweep(space, n=100, seed=0)
        clone = pickle.loads(pickle.dumps(space))
        r1, r2 = cc.sweep(space, n=100, seed=1), cc.sweep(clone, n=100, seed=1)
        assert r1.table.tobytes() == r2.table.tobytes()


def _conv_block(x, k, c):
    """A block with two choices (kernel, width) that keeps the spatial size and maps c -> 8."""
    h = Conv2d(x.shape[1], c, k, padding=cc.spaces.derive(k, lambda v: v // 2))(x)
    h = ReLU()(h)
    return Conv2d(c, 8, 1)(h)


def _head(x):
    return Linear(8, 10)(cc.flatten(AdaptiveAvgPool2d(1)(x), 1))


def _pool_block(x, k):
    return MaxPool2d(k)(x)


def test_blockchain_on_a_hand_made_chain_with_invalid_variants():
    """A chain whose pool block is invalid for large windows (a 16x16 map, a 32-wide pool: torch's
    'Output size is too small'): those candidates are invalid, the others count as whole networks."""
    blocks = [Block("conv", _conv_block, [(1, 3, 5), (4, 16)]), Block("pool", _pool_block, [(2, 4, 32)], absent=True),
              Block("conv", _conv_block, [(1, 3, 5), (4, 16)], repeat=2), Block("head", _head)]
    chain = BlockChain(blocks)
    rng = np.random.default_rng(0)
    n = 400
    codes = np.stack([rng.integers(0, 6, n), rng.integers(0, 4, n), rng.integers(0, 6, n), np.zeros(n, int)], axis=1)
    shapes = [(3, 16, 16), (3, 32, 32)]
    inputs = rng.integers(0, 2, n)
    got = chain.count(codes.T, inputs, shapes)
    models = []  # the same networks as plain Sequentials (an invalid one is only found when counted)
    for (a, p, b, _), i in zip(codes, inputs):
        cin, layers = 3, []
        for j, (code, times) in enumerate(((a, 1), (b, 2))):
            k, c = (1, 3, 5)[code // 2], (4, 16)[code % 2]
            for _ in range(times):
                layers += [Conv2d(cin, c, k, padding=k // 2), ReLU(), Conv2d(c, 8, 1)]
                cin = 8
            if j == 0 and p:  # the pool block sits after the first conv block
                layers.append(MaxPool2d((2, 4, 32)[p - 1]))
        models.append(cc.Sequential(*layers, AdaptiveAvgPool2d(1), cc.layers.Flatten(1), Linear(8, 10)))
    want = cc.count(cc.pack(models, [shapes[i] for i in inputs]))
    assert not want.valid.all() and want.valid.any()
    assert_same_as_packed(got, want)
    # a second call reads the tables only, with the same answer
    assert_same_as_packed(chain.count(codes.T, inputs, shapes), want)


def test_blockchain_declines_totals_that_could_overflow():
    huge = Block("huge", lambda x: Linear(1 << 30, 1 << 30)(cc.flatten(x, 1)))
    chain = BlockChain([huge])
    assert chain.count(np.zeros((1, 1), int), [0], [(1 << 30,)]) is None


def test_fast_histogram_equals_numpy_histogram():
    rng = np.random.default_rng(1)
    edges_near = np.concatenate([np.floor(HIST_EDGES[1:400]), np.ceil(HIST_EDGES[1:400])]).astype(np.int64)
    v = np.concatenate([rng.integers(0, 1 << 62, 20_000), [0, 1, 2, 3, (1 << 63) - 1], edges_near])
    np.testing.assert_array_equal(_hist(v), np.histogram(v, HIST_EDGES)[0])


def test_blockchain_rejects_codes_outside_a_blocks_variants():
    chain = BlockChain([Block("conv", _conv_block, [(1, 3), (4,)]), Block("head", _head)])
    with pytest.raises(ValueError, match="outside"):
        chain.count(np.array([[0, 2], [0, 0]]), [0, 0], [(3, 8, 8)])
    with pytest.raises(ValueError, match="codes must be"):
        chain.count(np.zeros((3, 2), int), [0, 0], [(3, 8, 8)])
    got = chain.count(np.array([[0, 1], [0, 0]]), [0, 0], [(3, 8, 8)])
    assert got["valid"].all()
    # by hand: conv k x k (3 -> 4, bias) + ReLU + conv 1x1 (4 -> 8, bias) + linear 8 -> 10
    assert got["params"].tolist() == [(3 * 4 * 1 + 4) + (4 * 8 + 8) + 90, (3 * 4 * 9 + 4) + (4 * 8 + 8) + 90]


def test_gather_kernel_never_reads_outside_its_tables():
    """Hostile tables (a private kernel, but nothing may crash): wrong sizes are a ValueError, any
    index outside a table stops the gather (>= 0 returned: Python then counts with the core)."""
    from cnncore import _blocks
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    i32 = lambda *v: np.array(v, np.int32)  # noqa: E731
    n = 3
    # two blocks reading the same two-row table (codes 0 and 1 of input shape 0)
    good = dict(n_codes=i64(2, 2), slot_first=i64(0, 0), slot_size=i64(2, 2), slots=i32(0, 1),
                row_first=i64(0, 0), row_size=i64(2, 2), sums=np.ones((2, 5), np.int64), peaks=i64(4, 7),
                valid=np.ones(2, np.uint8), out_shape=i64(0, 0))

    def out():
        return dict(total=np.zeros((n, 5), np.int64), peak=np.zeros(n, np.int64), ok=np.zeros(n, np.uint8),
                    shape=np.zeros(n, np.int64))

    codes, ids = np.array([[0, 1, 1], [0, 0, 1]], np.int64), np.zeros(n, np.int64)
    o = out()
    assert _blocks.gather(codes, ids, **good, **o) == -1
    assert o["peak"].tolist() == [4, 7, 7] and o["total"][:, 0].tolist() == [2, 2, 2] and o["ok"].all()
    for field, bad in [("slots", i32(0, 99)), ("slots", i32(-5, 1)), ("out_shape", i64(1 << 40, 0)),
                       ("slot_first", i64(0, 1 << 62)), ("row_first", i64(-3, 0)), ("slot_size", i64(2, 99)),
                       ("n_codes", i64(0, 2)), ("row_size", i64(2, 1 << 50))]:
        assert _blocks.gather(codes, ids, **dict(good, **{field: bad}), **out()) >= 0, field
    with pytest.raises(ValueError):
        _blocks.gather(codes, ids, **dict(good, peaks=i64(1)), **out())
    assert _blocks.gather(np.array([[5, 0, 0], [0, 0, 0]], np.int64), ids, **good, **out()) == 0  # code past n_codes
    assert _blocks.gather(codes, np.array([0, 9, 0], np.int64), **good, **out()) == 1  # a shape past the table


def test_row_gather_copies_rows_and_refuses_indices_outside_its_table():
    """The template packer's row gather: out[r] = table[which[r]] with column col set from column[r]
    (what np.take and a column assignment give); a variant outside the table or a value outside
    int32 is a ValueError naming the row, never a read out of bounds."""
    from cnncore import _blocks
    table = np.arange(12, dtype=np.int32).reshape(3, 4)
    which, column = np.array([2, 0, 2, 1], np.int64), np.array([-1, 5, 6, -7], np.int64)
    out = np.zeros((4, 4), np.int32)
    _blocks.gather_rows(table, which, column, 1, out)
    expect = table[which].copy()
    expect[:, 1] = column
    assert (out == expect).all()
    for bad_which, bad_column, row in [([2, 3, 0, 0], column, 1), ([0, 0, 0, -1], column, 3),
                                       (which, [0, 0, 1 << 31, 0], 2), (which, [-(1 << 31) - 1, 0, 0, 0], 0)]:
        with pytest.raises(ValueError, match=f"row {row}"):
            _blocks.gather_rows(table, np.array(bad_which, np.int64), np.array(bad_column, np.int64), 1, out)
    for args in [(table, which, column, 4, out), (table, which, column, -1, out),
                 (table, which[:3], column, 1, out), (table, which, column, 1, np.zeros((4, 3), np.int32))]:
        with pytest.raises(ValueError, match="sizes"):
            _blocks.gather_rows(*args)


def _hand_plan_tables(**change):
    """Three slots, one choice of two options: slot 0 always (reads the input); slot 1 only for
    option 1 (reads slot 0, one row back); slot 2 always, an add of OneOf output 0 (option 0: slot 0,
    option 1: slot 1) and slot 0."""
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    t = dict(cond_first=i64(0, 0, 1), cond_var=i64(0), cond_allowed=np.array([[0, 1]], np.uint8),
             virt_var=i64(0), virt_stat=np.array([[0, 1]], np.int64), virt_vid=np.array([[-1, -1]], np.int64),
             slot_cond=i64(0, 1, 0), variant_base=i64(0, 1, 2), level_var=np.zeros((0, 3), np.int64),
             level_stride=np.zeros((0, 3), np.int64), rel=i64(0, 1, 0), src_stat=i64(-1, 0, 0),
             src_vid=i64(-1, -1, 0), n_extra=i64(0, 0, 1), extra_first=i64(0, 0, 0), extra_stat=i64(0),
             extra_vid=i64(-1), virtual_outputs=i64())
    t.update(change)
    return t


def test_compiled_plan_on_a_hand_made_template_and_hostile_tables():
    """plan_rows (the template packer's plan) worked out by hand, and every table index outside its
    table a ValueError, never a crash."""
    from cnncore._blocks import plan_rows
    idx = np.array([[0], [1]], np.int64)
    variant, src, picked, multi, xoff, extra, counts = plan_rows(idx, **_hand_plan_tables())
    # candidate 0: slot 0 (the input), slot 2 (slot 0 + slot 0); candidate 1: slots 0, 1, 2 (slot 1 + slot 0)
    assert variant.tolist() == [0, 2, 0, 1, 2] and src.tolist() == [-1, 0, -1, 0, 1]
    assert counts.tolist() == [2, 3] and multi.tolist() == [1, 4] and xoff.tolist() == [0, 1]
    assert extra.tolist() == [0, 0] and picked.tolist() == []
    # the OneOf as the model's output: the row it picks (slot 0 in candidate 0, slot 1 in candidate 1)
    picked = plan_rows(idx, **_hand_plan_tables(virtual_outputs=np.array([0], np.int64)))[2]
    assert picked.tolist() == [0, 3]
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    for change in [dict(cond_var=i64(1)), dict(slot_cond=i64(0, 2, 0)), dict(src_stat=i64(-1, 3, 0)),
                   dict(src_stat=i64(1, 0, 0)), dict(src_vid=i64(-1, -1, 1)), dict(extra_stat=i64(2)),
                   dict(extra_first=i64(0, 0, 1)), dict(n_extra=i64(0, 0, -1)), dict(cond_first=i64(0, 1, 0)),
                   dict(virt_vid=np.array([[0, -1]], np.int64)), dict(virt_stat=np.array([[0, 7]], np.int64)),
                   dict(virtual_outputs=i64(1)), dict(rel=i64(0, 1)), dict(cond_allowed=np.ones((1, 3), np.uint8)),
                   dict(level_var=np.ones((1, 3), np.int64), level_stride=np.ones((1, 3), np.int64))]:
        with pytest.raises(ValueError, match="plan_rows"):
            plan_rows(idx, **_hand_plan_tables(**change))
    for bad in ([[2], [0]], [[0], [-1]]):
        with pytest.raises(ValueError, match="option index"):
            plan_rows(np.array(bad, np.int64), **_hand_plan_tables())


# ---- any template space: its chain of blocks found from the traced rows (_segments.py) ---------------
def _templates():
    import sys
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    from test_spaces_template import BRANCHES, TOY, _branches, _template
    return [cc.spaces.TemplateSpace(_template, name="toy", **TOY),
            cc.spaces.TemplateSpace(_branches, name="branches", **BRANCHES),
            cc.spaces.TemplateSpace(_split_template, name="split", **SPLIT)]


def _split_template(width, k, deep):
    """A Slice (chunk) whose first half is all that later rows read: no cut may sit there."""
    x = cc.Input((3, 16, 16))
    h = cc.Conv2d(3, 16, 3, padding=1)(x)
    a, _ = cc.chunk(h, 2, dim=1)
    pad = cc.spaces.derive(k, lambda v: v // 2)
    a = Optional(cc.Sequential(cc.Conv2d(8, 8, k, padding=pad), cc.ReLU()), when=deep)(a)
    return cc.Model(x, cc.Linear(8, width)(cc.Flatten()(cc.AdaptiveAvgPool2d(1)(a))))


SPLIT = dict(width=Choice([8, 16]), k=Choice([1, 3]), deep=Choice([0, 1]))


@pytest.mark.parametrize("which", range(3))
def test_any_template_counts_block_by_block_as_whole_networks(which):
    space = _templates()[which]
    cands = space.candidates(0, space.size)
    got = cc.spaces.TemplateSpace._chain_count(space, cands)
    assert got is not None
    assert_same_as_packed(got, cc.count(space.pack(cands)))


def test_template_cuts_refuse_a_slice_and_follow_optionals():
    from cnncore.spaces._segments import _cuts
    space = _templates()[2]
    b, _, _, out = space._expansion.traced
    slice_rows = {s for s in range(space._expansion.k) if b.rows[s][cc._format.OP] == cc._format.OPS["Slice"]}
    assert slice_rows and not any(T in slice_rows for _, T in _cuts(b, space._expansion.k, out[0]))
    ofa = cc.spaces.OFAMobileNetV3()
    chain, _ = __import__("cnncore.spaces._segments", fromlist=["x"]).template_chain(ofa._expansion, ofa.variables)
    assert len(chain.blocks) > 5  # the MBConv blocks, skippable by depth, are cut apart


def test_a_batch_size_choice_sweeps_as_packed_networks():
    def build(w, b):
        x = cc.Input((3, 16, 16), batch_size=b)
        return cc.Model(x, cc.Conv2d(w, 4, 1)(cc.ReLU()(cc.Conv2d(3, w, 3)(x))))
    space = cc.spaces.TemplateSpace(build, w=Choice([4, 8]), b=Choice([4, 1]))
    assert space._chain_count(space.candidates(0, 4)) is None  # no block tables: the pack path
    r = cc.sweep(space)
    # by hand: b * (w*14*14*27 + 4*14*14*w) MACs
    assert r.table["macs"].tolist() == [b * (w * 14 * 14 * 27 + 4 * 14 * 14 * w) for w, b in [(4, 4), (4, 1), (8, 4), (8, 1)]]
    fixed = cc.spaces.TemplateSpace(lambda w: build(w, 4), w=Choice([4, 8]))
    assert_same_as_packed(fixed._chain_count(fixed.candidates(0, 2)), cc.count(fixed.pack(fixed.candidates(0, 2))))


# ---- regressions from the review of the block-wise sweeps --------------------------------------------
def _same_sweep_as_packed(space, **kw):
    r = cc.sweep(space, **kw)
    cands = space.candidates(0, space.size) if kw.get("n") is None else space.sample(kw["n"], kw.get("seed", 0))
    full = cc.count(space.pack(cands))
    keep = np.flatnonzero(full.valid)
    assert r.table["index"].tolist() == keep.tolist()
    for f in ("params", "macs", "flops", "peak_activation_bytes"):
        assert r.table[f].tolist() == getattr(full, f)[keep].tolist(), f


def test_invalid_candidates_and_mixed_ranks_reach_no_later_block():
    """A failed block (an 11x11 kernel on an 8x8 map) and a OneOf of Flatten / AdaptiveAvgPool2d
    (1-d or 3-d outputs) in front of a LazyLinear: later blocks are counted only on shapes a valid
    network can reach."""
    def invalid_some(c1, k, w):
        x = cc.Input((3, 8, 8))
        h = cc.Flatten()(cc.AdaptiveAvgPool2d(2)(cc.Conv2d(3, c1, k)(x)))
        return cc.Model(x, cc.Linear(w, 3)(cc.ReLU()(cc.LazyLinear(w)(h))))
    _same_sweep_as_packed(cc.spaces.TemplateSpace(invalid_some, c1=Choice([1, 2, 5]), k=Choice([1, 3, 11]),
                                                  w=Choice([2, 7])))
    for order in ([0, 1], [1, 0]):
        def ranks(c1, p, w, order=order):
            x = cc.Input((3, 8, 8))
            h = cc.Conv2d(3, c1, 3, padding=1)(x)
            h = OneOf([[cc.Flatten(), cc.AdaptiveAvgPool2d(1)][i] for i in order], p)(h)
            return cc.Model(x, cc.LazyLinear(w)(h))
        _same_sweep_as_packed(cc.spaces.TemplateSpace(ranks, c1=Choice([3, 9]), p=Choice([0, 1]), w=Choice([5, 15])))


def test_no_cut_at_a_view_of_a_slice():
    """Flatten(chunk(h)[0]) keeps all of h alive in the whole network: the peak must say so."""
    def f(c1, w):
        x = cc.Input((3, 16, 16))
        h = cc.Conv2d(c1, 64, 1)(cc.Conv2d(3, c1, 3, padding=1)(x))
        a = cc.chunk(h, 4, dim=1)[0]
        return cc.Model(x, cc.Linear(16 * 256, w)(cc.Flatten()(a)))
    space = cc.spaces.TemplateSpace(f, c1=Choice([1, 4]), w=Choice([10, 20]))
    _same_sweep_as_packed(space)
    # by hand, c1 = 1: h (64 x 16 x 16) is alive with the Linear's output: 16384 + 10 elements at least
    assert cc.count(space.pack(space.candidates(0, 1))).peak_activation_bytes[0] >= 4 * (16384 + 10)


def test_blocks_with_too_many_variants_or_shapes_pack_instead(monkeypatch):
    from cnncore.spaces import _blockwise, _segments

    def cell(r, e):  # one piece with 4^8 = 65,536 variants: more than a block table is worth
        x = cc.Input((3, r, r))
        h = cc.Conv2d(3, 4, 3, padding=1)(x)
        for ch in e:
            h = OneOf([None, cc.ReLU(), cc.Conv2d(4, 4, 1), cc.AvgPool2d(3, 1, 1)], ch)(h) + h
        return cc.Model(x, cc.Flatten()(cc.AdaptiveAvgPool2d(1)(h)))
    space = cc.spaces.TemplateSpace(cell, r=Choice([8, 10]), e=[Choice(range(4)) for _ in range(8)])
    monkeypatch.setattr(_segments, "_JOIN", 1 << 20)  # join everything into one piece
    assert _segments.template_chain(space._expansion, space.variables) is None
    _same_sweep_as_packed(space, n=300, seed=1)
    monkeypatch.setattr(_segments, "_JOIN", 4)
    monkeypatch.setattr(_blockwise, "_TABLE_ENTRIES", 16)  # every table too large: count() declines
    small = cc.spaces.TemplateSpace(cell, r=Choice([8, 10]), e=[Choice(range(4)) for _ in range(8)])
    assert small._chain_count(small.sample(50, seed=2)) is None
    _same_sweep_as_packed(small, n=300, seed=1)


def test_sweep_samples_through_an_overriding_sample():
    class Wide(cc.spaces.TemplateSpace):
        def sample(self, n, seed=None):
            c = super().sample(n, seed)
            c["w"] = 64
            return c
    space = Wide(lambda w: cc.Model(x := cc.Input((3, 8, 8)), cc.Conv2d(3, w, 3)(x)), w=Choice([8, 64]))
    assert cc.sweep(space, n=6, seed=0).table["w"].tolist() == [64] * 6


def test_a_packed_batch_edited_by_its_caller_leaves_later_packs_alone():
    def f(w):
        x = cc.Input((4, 8, 8))
        h = cc.Conv2d(4, 4, 1)(x)
        return cc.Model(x, cc.Conv2d(12, w, 1)(cc.cat([h, cc.Conv2d(4, 8, 1)(h)])))
    space = cc.spaces.TemplateSpace(f, w=Choice([2, 3]))
    c = space.candidates(0, 2)
    p = space.pack(c)
    p.arrays()["extra_src"][:] = 0  # the caller's own arrays
    assert cc.count(space.pack(c)).valid.all()


def test_a_failed_table_fill_returns_its_buffers_and_leaves_correct_tables(monkeypatch):
    """Packing a batch of block variants fails in the middle of a table fill: the fill raises and
    gives its rows buffer back; the next count of the chain is still exact."""
    from cnncore.spaces import _blockwise
    space = cc.spaces.NB201()
    real, calls = Block.pack, []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 3:  # the first cell's second batch (the stem was call 1)
            raise RuntimeError("pack failed")
        return real(self, *args)
    monkeypatch.setattr(Block, "pack", failing)
    monkeypatch.setattr(_blockwise, "_ROWS_BUFFERS", [])
    idx = np.arange(space.size)
    with pytest.raises(RuntimeError, match="pack failed"):
        space._chain_count(idx, n_threads=2)
    monkeypatch.setattr(Block, "pack", real)
    # the buffer of the failed fill is back, holding the rows of the batch packed before the failure
    assert len(_blockwise._ROWS_BUFFERS) == 1 and len(_blockwise._ROWS_BUFFERS[0][0]) > 0
    assert_same_as_packed(space._chain_count(idx, n_threads=2), cc.count(space.pack(idx)))


def test_template_packs_on_threads_share_the_plan_cache(monkeypatch):
    import threading
    from cnncore.spaces import _template
    monkeypatch.setattr(_template, "_PLANS_BYTES", 4000)  # evictions all the time
    space = cc.spaces.TemplateSpace(lambda w, k: cc.Model(x := cc.Input((3, 8, 8)), cc.Conv2d(w, 4, 1)(
        cc.Conv2d(3, w, k, padding=cc.spaces.derive(k, lambda v: v // 2))(x))), w=Choice(list(range(1, 40))),
        k=Choice([1, 3, 5]))
    errors = []

    def run(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(300):
                c = space.sample(4, int(rng.integers(1 << 30)))
                assert cc.count(space.pack(c)).macs.tolist() == [cc.count(space.model(x)).macs for x in c]
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []


# ---- random templates: every kind of piece, cut as finely as possible or joined ---------------------------
_PIECES = ("conv", "optional", "residual", "oneof", "cat", "chunk", "pool", "view", "se")


def _random_template(seed):
    """A template of 2-6 random pieces (Optional, OneOf, residual adds, a three-way cat, chunk, views,
    squeeze-excitation) on a resolution that is a choice, and one of three heads."""
    rnd = np.random.default_rng(seed)
    pieces = [str(rnd.choice(_PIECES)) for _ in range(int(rnd.integers(2, 7)))]
    head = str(rnd.choice(["linear", "conv", "pool"]))
    choices = {f"{kind}{i}": Choice(opts) for i in range(len(pieces))
               for kind, opts in (("k", [1, 3, 5]), ("b", [0, 1]), ("c", [0, 1, 2]))}
    choices.update(r=Choice([[16], [8, 16], [12, 16, 20]][int(rnd.integers(3))]), w=Choice([4, 8]))
    S, W = cc.Sequential, 8

    def build(**v):
        x = cc.Input((3, v["r"], v["r"]))
        h = cc.Conv2d(3, W, 3, padding=1)(x)
        for i, p in enumerate(pieces):
            k, b, c = v[f"k{i}"], v[f"b{i}"], v[f"c{i}"]
            pad = cc.spaces.derive(k, lambda q: q // 2)
            if p == "conv":
                h = cc.ReLU()(cc.Conv2d(W, W, k, padding=pad)(h))
            elif p == "optional":
                h = Optional(S(cc.Conv2d(W, W, k, padding=pad), cc.BatchNorm2d(W)), when=b)(h)
            elif p == "residual":
                h = h + Optional(S(cc.Conv2d(W, W, k, padding=pad), cc.ReLU()), when=b)(h)
            elif p == "oneof":
                h = OneOf([cc.Conv2d(W, W, 3, padding=1), cc.MaxPool2d(3, 1, 1), None], c)(h)
            elif p == "cat":
                branches = [h, cc.Conv2d(W, W, k, padding=pad)(h), Optional(cc.ReLU(), when=b)(h)]
                h = cc.Conv2d(3 * W, W, 1)(cc.cat(branches, dim=1))
            elif p == "chunk":
                h = OneOf([None, cc.ReLU()], b)(cc.Conv2d(W // 2, W, k, padding=pad)(cc.chunk(h, 2, dim=1)[0]))
            elif p == "pool":
                h = OneOf([cc.MaxPool2d(2), cc.AvgPool2d(2), None], c)(h)
            elif p == "view":
                h = cc.Conv2d(W, W, 1)(Optional(cc.Identity(), when=b)(cc.Dropout()(h)))
            else:
                h = cc.mul(h, cc.Sigmoid()(cc.Conv2d(W, W, 1)(cc.AdaptiveAvgPool2d(1)(h))))
        if head == "linear":
            return cc.Model(x, cc.Linear(W, v["w"])(cc.Flatten()(cc.AdaptiveAvgPool2d(1)(h))))
        if head == "conv":
            return cc.Model(x, cc.Conv2d(W, v["w"], 1)(h))
        return cc.Model(x, Optional(cc.MaxPool2d(2), when=v["b0"])(h))
    return cc.spaces.TemplateSpace(build, name=f"random{seed}", **choices)


@pytest.mark.parametrize("join", [1, 81])
def test_random_templates_count_block_by_block_as_whole_networks(join, monkeypatch):
    from cnncore.spaces import _segments
    monkeypatch.setattr(_segments, "_JOIN", join)  # 1: every cut a block of its own
    for seed in range(12):
        space = _random_template(seed)
        cands = space.sample(200, seed=seed)
        got = space._chain_count(cands)
        assert got is not None, space.name
        assert_same_as_packed(got, cc.count(space.pack(cands)))
