"""The columnar kernel's fast paths at their edges, each against the generic core and, where the
numbers are small enough to write out, against a hand calculation.

- Followers (src/_columnar.pyx, _plan_chains / _live_chain): a plain BatchNorm or an activation
  right after a row is counted in that row's liveness pass instead of running by itself.
- The totals' bound: a total below 2^52 leaves the kernel, one at or above it is recounted by the
  generic core (the int64 conversion without AVX-512 is exact only below 2^52).
- The network input's loop, specialised for 1..4 input dims.
- The scratch: the kernel aligns it itself, so where the caller's array starts changes nothing.
"""
from __future__ import annotations


import numpy as np
import pytest

import cnncore as cc
import cnncore.columnar as C
from cnncore.columnar import COLUMN_FIELDS

from test_columnar import assert_same, columnar_kernels as _kernels

FOLLOWERS, D1, D2 = 0, 1, 2  # columns of _columnar.chains' table (d: what dies at a follower's moment)
NONE, INSIDE = -1, -2  # nothing; a storage born in the chain (else a live slot)


def _run_kernel(kernel, col, scratch=None):
    """count_columnar of one build on col: (totals, output_shape, needs_generic)."""
    p = col._program()
    n = len(col)
    tot, shape, needs = np.zeros((6, n), np.int64), np.zeros((n, 5), np.int64), np.zeros(n, np.uint8)
    if scratch is None:
        scratch = np.empty((1, kernel.scratch_size(p["n_slots"], p["n_live"])), np.int64)
    kernel.count_columnar(p["program"], p["deaths"], p["cat_src"], tuple(col._columns.get(f) for f in COLUMN_FIELDS),
                          p["consts"], col.input_shape, col.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
                          p["out_slot"], p["out_nd"], tot, shape, needs, scratch)
    return tot, shape, needs


def _chains(col):
    p = col._program()
    return np.array(C._columnar.chains(p["program"], p["deaths"], tuple(col._columns.get(f) for f in COLUMN_FIELDS),
                                       p["consts"]), np.int64).reshape(-1, 5)


def _each_build_agrees(monkeypatch, col):
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        assert_same(col)


# ---- followers --------------------------------------------------------------------------------
def test_followers_hand_calculation(monkeypatch):
    """Conv2d(3, w, 3, padding=1, bias=False) -> LazyBatchNorm2d -> ReLU on 3x8x8 (64 positions),
    w = 1, 4, 16: the BatchNorm and the ReLU follow the conv (one pass). By hand:
    params = 27w + 2w, buffers = 2w + 1, macs = 64w * 27, flops = 64w * 53 + 64w * 4 + 64w,
    activations 3 * 64w; peak: input + conv output (192 + 64w) at the conv, then conv + bn and
    bn + relu (128w): max(192 + 64w, 128w) elements, 4 bytes each."""
    m = cc.Sequential(cc.Conv2d(3, 4, 3, padding=1, bias=False), cc.LazyBatchNorm2d(), cc.ReLU())
    w = np.array([1, 4, 16])
    col = cc.Columnar(m, {"out": np.array([[v, 0, 0] for v in w])}, input_shape=(3, 8, 8))
    table = _chains(col)
    assert table[:, FOLLOWERS].tolist() == [2, 0, 0]
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        res = assert_same(col)
        got = cc.count(col)
        assert got.params.tolist() == (27 * w + 2 * w).tolist()
        assert got.buffers.tolist() == (2 * w + 1).tolist()
        assert got.macs.tolist() == (64 * w * 27).tolist()
        assert got.flops.tolist() == (64 * w * 53 + 64 * w * 4 + 64 * w).tolist()
        assert got.activation_elements.tolist() == (3 * 64 * w).tolist()
        assert got.peak_activation_bytes.tolist() == (4 * np.maximum(192 + 64 * w, 128 * w)).tolist()
        assert res.valid.all()


def _model_residual():
    """x -> conv -> BN -> ReLU -> conv -> BN, + (1x1 conv of x), -> ReLU -> ReLU6 -> Sigmoid: the
    add leads its three activations (two fused, the third a lead of its own)."""
    x = cc.Input((4, 12, 12))
    y = cc.ReLU()(cc.LazyBatchNorm2d()(cc.Conv2d(4, 8, 3, padding=1)(x)))
    y = cc.LazyBatchNorm2d()(cc.Conv2d(8, 8, 3, padding=1)(y))
    z = cc.add(y, cc.Conv2d(4, 8, 1)(x))
    return cc.Model(x, cc.Sigmoid()(cc.ReLU6()(cc.ReLU()(z))))


# (template, columns given as {field: {row: values}}, expected followers per row or None)
CASES = {
    "bn-relu": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.LazyBatchNorm2d(), cc.ReLU()), {"out": {0: [2, 8, 5]}},
                [2, 0, 0]),
    "bn no affine, hardswish": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.LazyBatchNorm2d(affine=False),
                                                      cc.Hardswish()), {"out": {0: [2, 8, 5]}}, [2, 0, 0]),
    "three activations": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU(), cc.GELU(), cc.SiLU()),
                          {"k0": {0: [1, 3, 5]}}, [2, 0, 0, 0]),
    "bn without running stats": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.LazyBatchNorm2d(track_running_stats=False),
                                                       cc.ReLU()), {"out": {0: [2, 8, 5]}}, [0, 1, 0]),
    "bn with an in-size column": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.BatchNorm2d(8), cc.ReLU()),
                                  {"out": {0: [8, 8, 5]}, "in": {1: [8, 7, 5]}}, [0, 1, 0]),
    "prelu breaks the chain": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3), cc.PReLU(), cc.ReLU()),
                               {"s0": {0: [1, 2, 3]}}, [0, 1, 0]),
    "linear on 1-d": (lambda: cc.Sequential(cc.Flatten(), cc.Linear(192, 10), cc.ReLU(), cc.Tanh()),
                      {"out": {1: [10, 1, 7]}}, [0, 2, 0, 0]),
    "residual": (_model_residual, {"out": {0: [8, 8, 8]}}, None),
    "pool leads": (lambda: cc.Sequential(cc.MaxPool2d(2), cc.ReLU(), cc.AdaptiveAvgPool2d(2), cc.LazyBatchNorm2d()),
                   {"k0": {0: [2, 3, 1]}}, [1, 0, 1, 0]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_followers_agree_with_the_generic_core(monkeypatch, case):
    """Chains of every kind (a BatchNorm step freeing a storage born before the chain, activations
    only, a chain cut at two followers, rows that may not follow) give the generic core's numbers
    in every build, on valid and invalid architectures (a bad width, an input too small)."""
    make, columns, expected = CASES[case]
    template = make()
    shape = np.array([[3, 16, 16], [3, 16, 16], [3, 2, 16]]) if case != "residual" else np.array([[4, 12, 12]] * 3)
    columns = {name: {k: np.array(v) for k, v in rows.items()} for name, rows in columns.items()}
    col = cc.Columnar(template, columns, input_shape=shape)
    table = _chains(col)
    if expected is not None:
        assert table[:, FOLLOWERS].tolist() == expected
    else:
        assert table[:, FOLLOWERS].sum() >= 4
    _each_build_agrees(monkeypatch, col)


def test_followers_in_random_skeletons_agree(monkeypatch):
    """Random skeletons (tests/test_columnar.py's generator): chains of one and two followers occur,
    at whose moments nothing dies, a storage of the chain dies or one from before it, and every
    build agrees with the generic core."""
    import _archgen as G
    from test_columnar import gen_columnar, gen_skeleton
    r = G.NpRng(21)
    seen = set()
    cols = []
    for _ in range(80):
        t = gen_skeleton(r, max_layers=10)
        col = gen_columnar(r, t, n_max=70)
        if not col._program():
            continue
        table = _chains(col)
        for row in table[table[:, FOLLOWERS] > 0]:
            seen.add(("followers", int(row[FOLLOWERS])))
            seen |= {("dies", min(int(d), 0) if d != INSIDE else INSIDE) for d in row[D1:D1 + row[FOLLOWERS]]}
        cols.append(col)
    assert seen == {("followers", 1), ("followers", 2), ("dies", NONE), ("dies", INSIDE), ("dies", 0)}, seen
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        for col in cols:
            assert_same(col)


def test_follower_reading_another_tensor_of_the_lead_shape(monkeypatch):
    """Found by hypothesis: Flatten (a view of the 1-element input) -> ReLU -> ReLU, both ReLUs
    reading the Flatten. The second ReLU shares the first's shape record, so it follows it, but
    what dies at its moment is the first ReLU's storage (born in the chain, never read). By hand,
    in elements: the input 1; the first ReLU's output joins (2); at the second's moment the first's
    dies and the second's joins (2): peak 2 elements, 8 bytes (the chain once counted 4)."""
    from test_columnar import O, _row
    rows = np.array([_row(O["Flatten"], -1, 0, dim0=1, dim1=-1), _row(O["ReLU"], 0, 1), _row(O["ReLU"], 0, 2)],
                    np.int32)
    template = cc.Packed.from_arrays(
        layers=rows, extra_src=np.zeros(0, np.int32), arch_offsets=np.array([0, 3], np.int64),
        input_offsets=np.array([0, 1], np.int64), input_shape=np.array([[1, 1, 0, 0]], np.int64),
        input_ndim=np.array([2], np.int32), batch_size=np.ones(1, np.int64))
    col = cc.Columnar(template, input_shape=np.array([[1, 1], [1, 1]]))
    table = _chains(col)
    assert table[:, FOLLOWERS].tolist() == [0, 1, 0] and table[1, D1] == INSIDE
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        res = assert_same(col)
        assert res.peak_activation_bytes.tolist() == [8, 8]



@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv_leads_counted_in_their_chain_pass(monkeypatch, n_threads):
    """A plain Conv2d that leads a chain is counted inside its chain's pass (src/_columnar.pyx,
    _live_chain with conv): with two followers (BN, ReLU: its own storage dies at the ReLU's
    moment), one (ReLU), one norm, on square and non-square inputs (square records on and off),
    strides and kernels varying, a grouped conv (not plain: counted by itself) between them, and
    invalid architectures (channels the groups do not divide, a width of 0), over full tiles and a partial one:
    every build on 1 and 2 threads gives the generic core's numbers."""
    rng = np.random.default_rng(9)
    n = 150
    m = cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.LazyBatchNorm2d(), cc.ReLU(),
                      cc.LazyConv2d(8, 3, stride=2, bias=False), cc.ReLU(),
                      cc.LazyConv2d(8, 3, groups=2), cc.LazyBatchNorm2d(),
                      cc.LazyConv2d(6, 1), cc.LazyBatchNorm2d())
    out = np.tile([8, 0, 0, 8, 0, 8, 0, 6, 0], (n, 1))
    out[:, 0] = rng.choice([4, 8, 16], n)
    out[:, 3] = rng.choice([2, 6, 10], n)  # even: the grouped conv's channels divide by 2
    out[:, 7] = rng.integers(1, 9, n)
    out[5, 7] = 0  # a width of 0: invalid
    k = np.tile([3, 0, 0, 3, 0, 3, 0, 1, 0], (n, 1))
    k[:, 3] = rng.choice([1, 3, 5], n)
    s = np.tile([1, 0, 0, 2, 0, 1, 0, 1, 0], (n, 1))
    s[:, 3] = rng.choice([1, 2], n)
    h = rng.integers(6, 30, n)
    w = np.where(np.arange(n) < 64, h, h + rng.integers(0, 2, n))  # tile 0 square, then mixed
    out[140, 3] = 3  # odd channels into the conv of groups=2: invalid
    col = cc.Columnar(m, {"out": out, "k0": k, "k1": k, "s0": s, "s1": s, "p0": k // 2, "p1": k // 2},
                      input_shape=np.stack([np.full(n, 3), h, w], 1))
    assert _chains(col)[:, FOLLOWERS].tolist() == [2, 0, 0, 1, 0, 1, 0, 1, 0]
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        res = assert_same(col, n_threads=n_threads)
        assert not res.valid[5] and not res.valid[140] and res.valid.sum() >= n - 10

# ---- the totals' bound ---------------------------------------------------------------------------
def test_totals_at_two_to_the_52():
    """LazyLinear(2^26, bias=False) on inputs of x = 2^25 and 2^25 + 1 features, batch 1. By hand:
    flops = out (2x - 1) = 2^26 (2^26 - 1) = 2^52 - 2^26 (below 2^52: the kernel's answer) and
    2^26 (2^26 + 1) = 2^52 + 2^26 (at or above: recounted by the generic core); macs = params = x out;
    activations: the output, 2^26; peak: input and output, x + 2^26 elements."""
    out = 2**26
    x = np.array([2**25, 2**25 + 1])
    col = cc.Columnar(cc.Sequential(cc.LazyLinear(out, bias=False)), input_shape=x[:, None])
    flops = out * (2 * x - 1)
    assert flops.tolist() == [2**52 - 2**26, 2**52 + 2**26]
    for kernel in _kernels():
        tot, shape, needs = _run_kernel(kernel, col)
        assert needs.tolist() == [0, 1], kernel.__name__
        assert tot[:, 0].tolist() == [x[0] * out, 0, x[0] * out, flops[0], out, x[0] + out], kernel.__name__
        assert shape[0].tolist() == [1, out, 0, 0, 0]
    res = assert_same(col)
    assert res.flops.tolist() == flops.tolist()
    assert res.macs.tolist() == res.params.tolist() == (x * out).tolist()
    assert res.activation_elements.tolist() == [out, out]
    assert res.peak_activation_bytes.tolist() == (4 * (x + out)).tolist()


# ---- the network input, the scratch -----------------------------------------------------------------
@pytest.mark.parametrize("ind", [1, 2, 3, 4])
def test_input_dims_each_loop(monkeypatch, ind):
    """Each specialised input loop (1..4 dims): valid inputs, and dims / batch sizes made invalid
    after the Columnar validated them (0, negative, past 2^31 - 1) go to the generic core."""
    head = {1: cc.LazyLinear(5), 2: cc.Conv1d(3, 4, 3), 3: cc.Conv2d(3, 4, 3), 4: cc.Conv3d(3, 4, 3)}[ind]
    shape = np.array([[3] + [5] * (ind - 1)] * 6) if ind > 1 else np.array([[7]] * 6)
    shape[1, -1] = 9
    col = cc.Columnar(cc.Sequential(head, cc.ReLU()), input_shape=shape, batch_size=np.arange(1, 7))
    col.input_shape[2, -1] = 0
    col.input_shape[3, 0] = -4
    col.input_shape[4, -1] = 2**31
    col.batch_size[5] = 0
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        res = assert_same(col)
        assert res.valid.tolist() == [True, True, False, False, False, False]


def test_scratch_alignment_changes_nothing():
    """The kernel starts its tile arrays on a 64-byte boundary itself: a scratch starting at any
    8-byte offset gives the same counts (what np.empty hands over varies from call to call)."""
    col = cc.Columnar(cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.LazyBatchNorm2d(), cc.ReLU(),
                                    cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.LazyLinear(10)),
                      {"out": {0: np.arange(1, 201)}}, input_shape=(3, 9, 9))
    for kernel in _kernels():
        p = col._program()
        size = kernel.scratch_size(p["n_slots"], p["n_live"])
        raw = np.empty(size + 16, np.int64)
        first = None
        for offset in range(0, 64, 8):
            start = (-raw.ctypes.data % 64 + offset) % 64 // 8
            raw[:] = -1  # (NaN bit patterns: nothing may be read before it is written)
            got = _run_kernel(kernel, col, raw[start:start + size].reshape(1, size))
            if first is None:
                first = got
                assert not got[2].any()
            for a, b in zip(got, first):
                np.testing.assert_array_equal(a, b)


def test_one_array_for_two_fields_is_stored_once():
    """{"k0": k, "k1": k}: one stored array (read once from memory), and so are two equal copies
    (a dim's column equal to the previous dim's); the same counts, the generic core's numbers,
    valid and invalid (a kernel of 0 where a conv needs >= 1). Copies that differ in one entry stay
    two arrays, and count as the generic core does too."""
    rng = np.random.default_rng(3)
    k = rng.choice(np.array([1, 3, 5]), (50, 3)).astype(np.int64)
    k[7, 0] = 0
    m = cc.Sequential(cc.Conv2d(3, 8, 3, padding=2), cc.ReLU(), cc.MaxPool2d(2))
    shared = cc.Columnar(m, {"k0": k, "k1": k}, input_shape=(3, 20, 20))
    copies = cc.Columnar(m, {"k0": k.copy(), "k1": k.copy()}, input_shape=(3, 20, 20))
    other = k.copy()
    other[40, 2] = 1 if k[40, 2] != 1 else 3  # the pool's dim-1 kernel in one architecture
    differing = cc.Columnar(m, {"k0": k, "k1": other}, input_shape=(3, 20, 20))
    assert shared._columns["k0"] is shared._columns["k1"]
    assert copies._columns["k0"] is copies._columns["k1"]
    assert differing._columns["k0"] is not differing._columns["k1"]
    np.testing.assert_array_equal(differing.columns["k1"], other)
    want = assert_same(shared)
    got = cc.count(copies)
    for field in cc.BatchResult.FIELDS:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    assert not want.valid[7] and want.valid.sum() == 49
    assert_same(differing)


def test_equal_columns_of_other_dims_are_stored_once():
    """Equal padding and stride columns of dims 0 and 1 (the benchmark's case), and of dims 1 and
    2 of a Conv3d, share one stored array; a dim-1 column equal to a column of another field (not
    its dim 0) stays its own; the counts are the generic core's."""
    rng = np.random.default_rng(4)
    n = 130
    m = cc.Sequential(cc.Conv2d(3, 8, 3), cc.BatchNorm2d(8), cc.ReLU())
    k = np.pad(rng.choice(np.array([1, 3, 5]), (n, 1)), ((0, 0), (0, 2)))  # the conv's row (BN, ReLU: 0)
    cols = {"k0": k, "k1": k, "p0": k // 2, "p1": k // 2, "s0": k // 2 + 1, "s1": k // 2 + 1, "d1": k // 2 + 1}
    col = cc.Columnar(m, cols, input_shape=np.stack([np.full(n, 3), rng.integers(8, 40, n), rng.integers(8, 40, n)], 1))
    assert col._columns["p1"] is col._columns["p0"] and col._columns["s1"] is col._columns["s0"]
    assert col._columns["d1"] is not col._columns["s0"]  # equal contents, but not d0's
    assert_same(col)
    m3 = cc.Sequential(cc.Conv3d(2, 4, 3), cc.ReLU())
    p = rng.integers(0, 2, (n, 2))
    col3 = cc.Columnar(m3, {"p0": p, "p1": p.copy(), "p2": p.copy()}, input_shape=(2, 9, 9, 9))
    assert col3._columns["p0"] is col3._columns["p1"] is col3._columns["p2"]
    assert_same(col3)


# ---- square records ---------------------------------------------------------------------------
# A 2-d conv or pooling whose input is square (H = W) in every architecture of a tile, and whose
# dim-1 fields equal its dim-0 fields there, computes dim 0 once and copies it (src/_columnar.pyx,
# _square_row / _square_fields). Tiles are 64 architectures: each case below puts the one
# architecture that breaks a tile's squareness first, last, or in the partial third tile.
N_SQ = 150  # two full tiles and a partial one (22 architectures)
BREAKS = [0, 63, 64, 127, 128, 149]


def _square_model():
    """Conv2d -> BN -> ReLU -> MaxPool2d -> Conv2d -> AvgPool2d -> Conv2d -> AdaptiveAvgPool2d((2, 2))
    -> Flatten -> Linear on 3 x H x W."""
    return cc.Sequential(cc.Conv2d(3, 8, 3, padding=1, bias=False), cc.BatchNorm2d(8), cc.ReLU(),
                         cc.MaxPool2d(3, 2, 1), cc.Conv2d(8, 8, 3, stride=2, padding=1), cc.AvgPool2d(2),
                         cc.Conv2d(8, 16, 1), cc.AdaptiveAvgPool2d((2, 2)), cc.Flatten(), cc.Linear(64, 10))


def _square_columns(rng):
    """Per architecture: the first conv's kernel (1, 3, 5) and padding (k // 2) as one shared array and
    as two equal arrays, its stride (1, 2); the max pooling's kernel and padding; every width."""
    n = N_SQ
    k = np.zeros((n, 10), np.int64)
    k[:, 0] = rng.choice(np.array([1, 3, 5]), n)
    k[:, 3] = rng.choice(np.array([2, 3]), n)  # max pooling
    k[:, 4], k[:, 5], k[:, 6], k[:, 7] = 3, 2, 1, 2
    s = np.ones((n, 10), np.int64)
    s[:, 0] = rng.choice(np.array([1, 2]), n)
    s[:, 3], s[:, 4], s[:, 5] = 2, 2, 2
    p = k // 2
    p[:, 5] = 0
    out = np.zeros((n, 10), np.int64)
    out[:, 0] = rng.choice(np.array([4, 8, 16]), n)
    out[:, 4] = rng.choice(np.array([8, 12]), n)
    out[:, 6] = rng.choice(np.array([16, 32]), n)
    out[:, 9] = 10
    inn = np.zeros((n, 10), np.int64)  # in-sizes: the widths before
    inn[:, 0] = 3
    inn[:, 1], inn[:, 4], inn[:, 6], inn[:, 9] = out[:, 0], out[:, 0], out[:, 4], 4 * out[:, 6]
    return dict(out=out, k0=k, k1=k, s0=s, s1=s, p0=p, p1=p.copy(), **{"in": inn})


def _square_inputs(rng):
    hw = rng.choice(np.array([16, 24, 32, 40]), N_SQ)
    return np.stack([np.full(N_SQ, 3), hw, hw], 1)


@pytest.mark.parametrize("where", BREAKS)
def test_square_one_input_not_square(monkeypatch, where):
    """One architecture with H != W (H = W + 1: every size stays valid): its tile takes the general
    path, the others the square one; all agree with the generic core."""
    rng = np.random.default_rng(where)
    shape = _square_inputs(rng)
    shape[where, 1] += 1
    col = cc.Columnar(_square_model(), _square_columns(rng), input_shape=shape)
    _each_build_agrees(monkeypatch, col)
    assert cc.count(col).valid.all()


@pytest.mark.parametrize("field", ["k1", "s1", "p1"])
@pytest.mark.parametrize("where", BREAKS)
def test_square_one_field_differs(monkeypatch, field, where):
    """The dim-1 kernel, stride or padding of the first conv given as its own array that differs from
    dim 0 in one architecture (square inputs): that tile computes both dims."""
    rng = np.random.default_rng(100 + where)
    cols = _square_columns(rng)
    cols[field] = cols[field].copy()
    dim0 = cols[field[0] + "0"][where, 0]
    cols[field][where, 0] = {"k1": 3 if dim0 != 3 else 5, "s1": 3 - dim0, "p1": dim0 + 1}[field]
    col = cc.Columnar(_square_model(), cols, input_shape=_square_inputs(rng))
    _each_build_agrees(monkeypatch, col)


def test_square_column_against_template_value(monkeypatch):
    """Padding: dim 0 a column, dim 1 the template's value (1). Tiles where the column is 1 in every
    architecture are square, the others not; an invalid architecture (kernel 0) still gets the
    generic core's error."""
    rng = np.random.default_rng(7)
    cols = _square_columns(rng)
    k = cols["k0"].copy()
    k[:64, 0] = 3  # the first tile: padding k // 2 = 1 everywhere, the template's dim-1 padding
    k[100, 0] = 0
    cols["k0"] = cols["k1"] = k
    cols["p0"] = np.where(np.arange(10) == 0, k // 2, cols["p0"])
    del cols["p1"]
    col = cc.Columnar(_square_model(), cols, input_shape=_square_inputs(rng))
    _each_build_agrees(monkeypatch, col)
    res = cc.count(col)
    assert not res.valid[100] and res.valid.sum() == N_SQ - 1


def test_square_conv_hand_calculation(monkeypatch):
    """Conv2d(3, 4, k, stride s, padding p, bias=False) on square and non-square inputs, by hand:
    each output side is (side + 2p - k) // s + 1; params 4 * 3 * k * k; macs = numel(y) * 3 * k * k.
    Architecture 0 (k=3, s=2, p=1) on 3x9x9: 5x5, macs 4 * 25 * 27 = 2700; architecture 1
    (k=5, s=1, p=0) on 3x9x9: 5x5, macs 4 * 25 * 75 = 7500; architecture 2 (k=3, s=2, p=1) on 3x9x8:
    5x4, macs 4 * 20 * 27 = 2160 (each with 61 more copies of the first so that the first tile is
    square when architecture 2 sits in the second one)."""
    m = cc.Sequential(cc.Conv2d(3, 4, 3, bias=False))
    k = np.array([3, 5] + [3] * 62 + [3])[:, None]
    s = np.array([2, 1] + [2] * 62 + [2])[:, None]
    p = np.array([1, 0] + [1] * 62 + [1])[:, None]
    shape = np.array([[3, 9, 9], [3, 9, 9]] + [[3, 9, 9]] * 62 + [[3, 9, 8]])
    col = cc.Columnar(m, {"k0": k, "k1": k, "s0": s, "s1": s, "p0": p, "p1": p}, input_shape=shape)
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        assert_same(col)
        got = cc.count(col)
        assert got.output_shape[[0, 1, 64]].tolist() == [[1, 4, 5, 5, 0], [1, 4, 5, 5, 0], [1, 4, 5, 4, 0]]
        assert got.macs[[0, 1, 64]].tolist() == [2700, 7500, 2160]
        assert got.params[[0, 1, 64]].tolist() == [108, 300, 108]


# ---- outputs on cache-line boundaries -------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 63, 64, 67, 200])
def test_totals_rows_padded_to_cache_lines(n):
    """cc.count hands the kernel totals of (6, n rounded up to 8): every row starts on a 64-byte
    boundary. The kernel writes the first n columns, the results are those and equal the generic core."""
    rng = np.random.default_rng(n)
    m = cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.ReLU(), cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(8, 10))
    col = cc.Columnar(m, {"out": np.tile([8, 0, 0, 0, 10], (n, 1))},
                      input_shape=np.stack([np.full(n, 3), rng.integers(4, 40, n), rng.integers(4, 40, n)], 1))
    for kernel in _kernels():
        p = col._program()
        padded = np.full((6, -(-n // 8) * 8 + 8), -7, np.int64)  # a wider row than the padding needs
        shape, needs = np.zeros((n, 5), np.int64), np.zeros(n, np.uint8)
        kernel.count_columnar(p["program"], p["deaths"], p["cat_src"], tuple(col._columns.get(f) for f in COLUMN_FIELDS),
                              p["consts"], col.input_shape, col.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
                              p["out_slot"], p["out_nd"], padded, shape, needs,
                              np.empty((1, kernel.scratch_size(p["n_slots"], p["n_live"])), np.int64))
        tot, shape1, needs1 = _run_kernel(kernel, col)
        np.testing.assert_array_equal(padded[:, :n], tot)
        assert (padded[:, n:] == -7).all()  # nothing past the n columns
        np.testing.assert_array_equal(shape, shape1)
    assert_same(col)
    raw = C.count_columnar(col, 1)
    assert all(raw[k].ctypes.data % 64 == 0 for k in ("params", "buffers", "macs", "flops", "output_shape"))



def test_large_arrays_start_on_huge_page_boundaries():
    """Columns and outputs of 4 MiB or more start on a 2 MiB boundary (transparent huge pages,
    cnncore.columnar._placed_empty), smaller ones on a 64-byte one; an int32 column given as the
    transpose of a C-contiguous array is still used without a copy; the counts are the generic core's."""
    assert C._placed_empty((1 << 20,), np.int32).ctypes.data % (1 << 21) == 0  # exactly 4 MiB
    assert C._placed_empty((1 << 20) - 1, np.int32).ctypes.data % 64 == 0
    assert C._empty_aligned((1 << 19, 1)).ctypes.data % (1 << 21) == 0
    rng = np.random.default_rng(8)
    n = 140_000
    m = cc.Sequential(cc.LazyConv2d(8, 3, padding=1), cc.LazyBatchNorm2d(), cc.ReLU(), cc.LazyConv2d(8, 3),
                      cc.ReLU(), cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.LazyLinear(10))
    out = np.tile([8, 0, 0, 8, 0, 0, 0, 10], (n, 1))
    out[:, 0], out[:, 3] = rng.integers(1, 64, n), rng.integers(1, 64, n)
    by_row = np.ascontiguousarray(rng.integers(1, 4, (8, n)), dtype=np.int32)  # (rows, n): no copy
    col = cc.Columnar(m, {"out": out, "s0": by_row.T}, input_shape=(3, 16, 16))
    assert col._columns["out"].ctypes.data % (1 << 21) == 0  # 4.5 MB of int32: copied, placed
    assert np.shares_memory(col._columns["s0"], by_row)
    raw = C.count_columnar(col, 1)
    assert raw["params"].ctypes.data % (1 << 21) == 0  # the totals: 6.7 MB
    assert_same(col)


# ---- strides that are powers of two: a product instead of a division ------------------------------
def _stride_model(groups=1, dilation=1):
    """Conv2d(4, 8, 3, stride 1, padding 1, bias=False) -> BN -> ReLU (a chain: its conv counted in the
    chain's pass), then a Conv2d(8, 8, 1) alone, AdaptiveAvgPool2d(1), Flatten, Linear(8, 10); the
    first conv plain or not (groups, dilation)."""
    return cc.Sequential(cc.Conv2d(4, 8, 3, padding=1, groups=groups, dilation=dilation, bias=False),
                         cc.BatchNorm2d(8), cc.ReLU(), cc.Conv2d(8, 8, 1), cc.AdaptiveAvgPool2d(1), cc.Flatten(),
                         cc.Linear(8, 10))


def _strides(rng, n, values):
    s = np.ones((n, 7), np.int64)
    s[:, 0] = rng.choice(np.array(values), n)
    s[:, 3] = rng.choice(np.array(values), n)
    return s


@pytest.mark.parametrize("groups, dilation", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("values", [(1, 2), (1, 2, 4, 8, 2**30), (1, 2, 3), (3, 5, 6, 7), (2, 0), (4, -2)],
                         ids=["1-2", "pow2", "one-in-three", "none", "zero", "negative"])
def test_power_of_two_strides_agree(monkeypatch, values, groups, dilation):
    """Strides that are powers of two in every architecture of a tile take a product by 1 / s (exact)
    instead of a division; a tile with any other stride divides. Both, and invalid strides (0,
    negative: the generic core's error), give the generic core's answers, in every build; 200
    architectures (three full tiles and a partial one), on inputs up to 2^31 - 1 wide (totals past
    2^52 are recounted by the generic core)."""
    rng = np.random.default_rng(len(values) * 10 + groups + dilation)
    n = 200
    s = _strides(rng, n, values)
    shape = np.stack([np.full(n, 4), rng.integers(5, 300, n), rng.integers(5, 300, n)], 1)
    shape[7] = [4, 2**31 - 1, 5]
    shape[150] = [4, 2**31 - 1, 2**31 - 1]
    col = cc.Columnar(_stride_model(groups, dilation), {"s0": s, "s1": s}, input_shape=shape)
    _each_build_agrees(monkeypatch, col)
    res = cc.count(col)
    if min(values) < 1:
        assert not res.valid.all()
    else:
        assert res.valid.sum() >= n - 2


def test_power_of_two_strides_hand_calculation(monkeypatch):
    """Conv2d(3, 4, 1, stride s, bias=False) on 3 x 64 x 64: each side (64 - 1) // s + 1, macs
    numel(y) * 3. s = 1: 64 (macs 4 * 4096 * 3 = 49152); 2: 32 (12288); 3: 22 (5808); 4: 16 (3072);
    64: 1 (12); 2^30: 1 (12). A tile of only powers of two, then one with a 3 (every build)."""
    m = cc.Sequential(cc.Conv2d(3, 4, 1, bias=False))
    s = np.array([1, 2, 4, 64, 2**30] * 13 + [3, 1, 2])[:, None]
    col = cc.Columnar(m, {"s0": s, "s1": s}, input_shape=(3, 64, 64))
    side = {1: 64, 2: 32, 3: 22, 4: 16, 64: 1, 2**30: 1}
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        assert_same(col)
        got = cc.count(col)
        want_side = np.array([side[int(v)] for v in s[:, 0]])
        assert got.output_shape[:, 2].tolist() == want_side.tolist()
        assert got.macs.tolist() == (4 * want_side**2 * 3).tolist()


def test_power_of_two_stride_in_the_template(monkeypatch):
    """A stride with no column (the template's 4, then the template's 3) on varying inputs and widths."""
    for stride in (4, 3):
        m = cc.Sequential(cc.Conv2d(3, 8, 3, stride=stride, bias=False), cc.ReLU())
        rng = np.random.default_rng(stride)
        n = 70
        col = cc.Columnar(m, {"out": np.stack([rng.integers(1, 20, n), np.zeros(n, np.int64)], 1)},
                          input_shape=np.stack([np.full(n, 3), rng.integers(3, 90, n), rng.integers(3, 90, n)], 1))
        _each_build_agrees(monkeypatch, col)


# ---- the output shape: transposed in registers (AVX-512 build), any ndim, any start -------------
def _out_ndim_models():
    """Templates whose output has 1 .. 5 dims (batch included), each on its input shape (batch excluded)."""
    return {1: (cc.Sequential(cc.Conv1d(2, 3, 2), cc.Flatten(0)), (2, 6)),
            2: (cc.Sequential(cc.Conv2d(3, 4, 3), cc.Flatten(), cc.LazyLinear(5)), (3, 8, 8)),
            3: (cc.Sequential(cc.Conv1d(2, 3, 2), cc.ReLU()), (2, 6)),
            4: (cc.Sequential(cc.Conv2d(3, 4, 3), cc.ReLU()), (3, 8, 8)),
            5: (cc.Sequential(cc.Conv3d(2, 3, 2), cc.ReLU()), (2, 4, 5, 6))}


@pytest.mark.parametrize("nd", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [1, 7, 8, 13, 64, 67, 130])
def test_output_shape_every_ndim(monkeypatch, nd, n):
    """The output shapes of 1 .. 5 dims for batches that end in a partial group of eight (and partial
    tiles), with invalid architectures among valid ones (a width of 0: the generic core's error, an
    all-zero shape). Against the generic core, and by hand for the valid ones: the batch, the width,
    then the template's spatial sizes; zeros past the output's dims."""
    model, shape = _out_ndim_models()[nd]
    rng = np.random.default_rng(nd * 1000 + n)
    width = rng.integers(1, 9, n)
    width[rng.random(n) < 0.2] = 0
    batch = rng.integers(1, 4, n)
    col = cc.Columnar(model, {"out": {0: width}}, input_shape=shape, batch_size=batch)
    for kernel in _kernels():
        monkeypatch.setattr(C, "_columnar", kernel)
        want = assert_same(col)
    got = cc.count(col)
    assert (got.valid == (width > 0)).all()
    assert (got.output_shape[width == 0] == 0).all()
    spatial = {1: [], 2: [], 3: [5], 4: [6, 6], 5: [3, 4, 5]}[nd]
    if nd == 1:  # Flatten(0): everything in one dim
        expect = np.stack([batch * width * 5], 1)
    elif nd == 2:
        expect = np.stack([batch, np.full(n, 5)], 1)
    else:
        expect = np.stack([batch, width] + [np.full(n, v) for v in spatial], 1)
    expect = np.concatenate([expect, np.zeros((n, 5 - nd), np.int64)], 1)
    assert got.output_shape[width > 0].tolist() == expect[width > 0].tolist()
    assert want.valid.tolist() == got.valid.tolist()


@pytest.mark.parametrize("offset", range(0, 64, 8))
def test_output_shape_at_any_start(offset):
    """The kernel streams the output shapes a cache line at a time where the array starts on one,
    and stores them plainly where it does not: every start (8-byte steps) gives the same array."""
    model, shape = _out_ndim_models()[4]
    rng = np.random.default_rng(offset)
    n = 150
    out = np.zeros((n, 2), np.int64)
    out[:, 0] = rng.integers(1, 40, n)
    col = cc.Columnar(model, {"out": out}, input_shape=np.stack([np.full(n, 3), rng.integers(3, 30, n),
                                                                 rng.integers(3, 30, n)], 1))
    want = cc.count(col.to_packed()).output_shape
    for kernel in _kernels():
        p = col._program()
        raw = np.full(n * 5 + 16, -9, np.int64)
        start = (-raw.ctypes.data % 64 + offset) % 64 // 8
        dst = raw[start:start + n * 5].reshape(n, 5)
        tot, needs = np.zeros((6, n), np.int64), np.zeros(n, np.uint8)
        kernel.count_columnar(p["program"], p["deaths"], p["cat_src"], tuple(col._columns.get(f) for f in COLUMN_FIELDS),
                              p["consts"], col.input_shape, col.batch_size, p["n_slots"], p["n_live"], p["in_birth"],
                              p["out_slot"], p["out_nd"], tot, dst, needs,
                              np.empty((1, kernel.scratch_size(p["n_slots"], p["n_live"])), np.int64))
        np.testing.assert_array_equal(dst, want, err_msg=kernel.__name__)
        assert (raw[:start] == -9).all() and (raw[start + n * 5:] == -9).all()  # nothing outside
