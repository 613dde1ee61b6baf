"""The per-architecture work of the core's batch loop (`count_packed`'s driver and `_chain_fast`'s
prologue and epilogue in src/_core.pyx) at the edges of its shortcuts.

The input record is built without a loop over its dimensions (the unused ones count as 1, every
dimension is checked against 1 .. 2^31 - 1 in one test, numel as two products of two), the output
shape is padded with zeros through a mask, the offsets of each architecture are checked with five
unsigned comparisons, and cc.count no longer zero-fills the outputs before the core writes them.
Each test holds the answers to a hand calculation written out here or to PyTorch, and to the
general path and the pure-Python reference (which share no code with the fast path).
"""
import numpy as np
import pytest
import torch

from cnncore import _core
from cnncore import _format as F
from cnncore.counting import run_core, run_reference
from test_core_chain import FIELDS, _batch, _count, _row

OVERFLOW, BAD_FIELD = F.ERROR_CODES["OVERFLOW"], F.ERROR_CODES["BAD_FIELD"]
DIM_MAX = 2 ** 31 - 1


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 3, 4, 5)])
def test_input_record_of_every_ndim(shape):
    """A ReLU on inputs of 1 to 4 dimensions (batch 3): it keeps the shape, and counts one FLOP
    and one activation element per element (docs/conventions.md)."""
    numel = 3 * int(np.prod(shape))
    r = _count(_batch([([_row("ReLU")], shape, 3)]))
    assert r["error"][0] == 0
    assert r["output_ndim"][0] == len(shape) + 1
    assert r["output_shape"][0].tolist() == [3, *shape] + [0] * (4 - len(shape))
    assert r["flops"][0] == numel and r["activation_elements"][0] == numel
    assert r["peak_activation_elements"][0] == 2 * numel  # input and output live together


def test_unused_input_entries_are_ignored():
    """input_shape has 4 slots; those past input_ndim are 0 by the format, but a caller may change
    the arrays after validation: the fast path must read only the first input_ndim of them."""
    clean = _batch([([_row("ReLU")], (2, 3), 4), ([_row("ReLU")], (5,), 1)])
    dirty = dict(clean, input_shape=clean["input_shape"].copy())
    dirty["input_shape"][0, 2:] = [7, -9]
    dirty["input_shape"][1, 1:] = [2 ** 40, 0, 3]
    r, expected = _count(dirty), _count(clean)
    for k in FIELDS:
        assert np.array_equal(r[k], expected[k]), k
    assert r["flops"].tolist() == [4 * 2 * 3, 5]


@pytest.mark.parametrize("shape, batch", [
    ((DIM_MAX, DIM_MAX), 2),  # 2^63 - 2^33 + 2: fits, but twice it does not
    ((DIM_MAX, DIM_MAX, DIM_MAX), DIM_MAX),  # far past 2^63
    ((2 ** 21, 2 ** 21), 2 ** 21),  # batch * d0 * d1 = 2^63 exactly (the first product of two pairs)
    ((2 ** 21, 2 ** 21 - 1), 2 ** 21),  # 2^63 - 2^42
    ((2 ** 21, 2 ** 20), 2 ** 21),  # 2^62: twice it is 2^63
    ((2 ** 21, 2 ** 20 - 1), 2 ** 21),  # 2^62 - 2^42: valid
    ((2 ** 16, 2 ** 16, 2 ** 16), 2 ** 15),  # 2^63 (the last dimension's product)
    ((2 ** 16, 2 ** 16, 2 ** 15), 2 ** 15),  # 2^62
    ((2 ** 16, 2 ** 16, 2 ** 15 - 1), 2 ** 15),  # 2^62 - 2^47: valid
])
def test_input_numel_at_two_to_the_63(shape, batch):
    """The network input's numel must fit int64, else the input itself is invalid (OVERFLOW in the
    network inputs: error_layer -1). Identity's output (a view) counts numel activation elements,
    and inputs + activation elements must fit int64 too (the sum that bounds every live total),
    else OVERFLOW at row 0. Below that the architecture is valid."""
    r = _count(_batch([([_row("Identity")], shape, batch)]))
    numel = batch * int(np.prod(shape, dtype=object))
    if numel >= 2 ** 63:
        assert (r["error"][0], r["error_layer"][0]) == (OVERFLOW, -1)
    elif 2 * numel >= 2 ** 63:
        assert (r["error"][0], r["error_layer"][0]) == (OVERFLOW, 0)
    else:
        assert r["error"][0] == 0 and r["activation_elements"][0] == numel
        assert r["peak_activation_elements"][0] == numel  # a view allocates nothing
        assert r["output_shape"][0].tolist()[:len(shape) + 1] == [batch, *shape]
    if r["error"][0]:
        assert r["output_shape"][0].tolist() == [0] * 5 and r["activation_elements"][0] == 0


@pytest.mark.parametrize("dim, valid", [(1, True), (DIM_MAX, True), (DIM_MAX + 1, False), (0, False),
                                        (-1, False), (2 ** 62, False)])
def test_input_dimension_range(dim, valid):
    """Every input dimension is in 1 .. 2^31 - 1 (docs/format.md); arrays changed after validation
    give BAD_FIELD in the network inputs."""
    arrays = _batch([([_row("Identity")], (3, 4, 1), 1)])
    arrays["input_shape"] = arrays["input_shape"].copy()
    arrays["input_shape"][0, 2] = dim
    r = _count(arrays)
    if valid:
        assert r["error"][0] == 0 and r["activation_elements"][0] == 12 * dim
    else:
        assert (r["error"][0], r["error_layer"][0]) == (BAD_FIELD, -1)


def _torch_shape(module, shape):
    with torch.no_grad():
        return list(module(torch.zeros(shape)).shape)


def test_output_shape_of_every_ndim_is_padded_with_zeros():
    """Outputs of 1 to 5 dimensions, shapes from torch; the unused slots of output_shape are 0."""
    conv1 = _row("Conv1d", in_=2, out=3, groups=1, k0=3, s0=1, d0=1)
    conv2 = _row("Conv2d", in_=2, out=3, groups=1, k0=3, k1=3, s0=1, s1=1, d0=1, d1=1)
    conv3 = _row("Conv3d", in_=2, out=3, groups=1, k0=3, k1=3, k2=3, s0=1, s1=1, s2=1, d0=1, d1=1, d2=1)
    flat_all = _row("Flatten", dim0=0, dim1=-1)
    flat = _row("Flatten", dim0=1, dim1=-1)
    linear = _row("Linear", in_=2 * 5 * 6, out=4)
    r = _count(_batch([([conv2, flat_all], (2, 5, 6), 2), ([flat, linear], (2, 5, 6), 2),
                       ([conv1], (2, 9), 2), ([conv2], (2, 5, 6), 2), ([conv3], (2, 5, 6, 7), 2)]))
    expected = [
        _torch_shape(torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(0, -1)), (2, 2, 5, 6)),
        _torch_shape(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(60, 4)), (2, 2, 5, 6)),
        _torch_shape(torch.nn.Conv1d(2, 3, 3), (2, 2, 9)),
        _torch_shape(torch.nn.Conv2d(2, 3, 3), (2, 2, 5, 6)),
        _torch_shape(torch.nn.Conv3d(2, 3, 3), (2, 2, 5, 6, 7)),
    ]
    assert [len(s) for s in expected] == [1, 2, 3, 4, 5]
    assert r["error"].tolist() == [0] * 5
    assert r["output_ndim"].tolist() == [1, 2, 3, 4, 5]
    assert r["output_shape"].tolist() == [s + [0] * (5 - len(s)) for s in expected]


def _raw_call(arrays, max_rows, sentinel):
    """count_packed called directly (no check_offsets first, as when the arrays change after it),
    every output pre-filled with sentinel."""
    n = len(arrays["arch_offsets"]) - 1
    out = dict(totals=np.full((6, n), sentinel, np.int64), output_shape=np.full((n, 5), sentinel, np.int64),
               output_ndim=np.full(n, sentinel, np.int32), error=np.full(n, sentinel, np.int32),
               error_layer=np.full(n, sentinel, np.int32))
    a = arrays
    _core.count_packed(a["layers"], a["extra_src"], a["arch_offsets"], a["input_offsets"], a["input_shape"],
                       a["input_ndim"], a["batch_size"], out["totals"], out["output_shape"],
                       out["output_ndim"], out["error"], out["error_layer"],
                       np.empty((1, max_rows, 8), np.int64), np.empty((1, max_rows), np.int64),
                       np.empty((1, 4 * max_rows + 3), np.int64), n_threads=1)
    return out


def _mixed_batch():
    conv = _row("Conv2d", in_=0, out=4, groups=1, k0=3, k1=3, s0=1, s1=1, p0=1, p1=1, d0=1, d1=1)
    bad = _row("Conv2d", in_=0, out=4, groups=3, k0=3, k1=3, s0=1, s1=1, p0=1, p1=1, d0=1, d1=1)
    skip = _row("ReLU", src=-1)  # reads the network input, not the row before: the general path
    return _batch([([conv, _row("ReLU")], (4, 6, 6), 1), ([conv, bad], (4, 6, 6), 1),
                   ([conv, skip, conv], (4, 6, 6), 2), ([], (3, 5), 1)])


@pytest.mark.parametrize("sentinel", [0, -1, 123456789])
def test_the_core_writes_every_output_entry(sentinel):
    """cc.count allocates its outputs without zero-filling them: every entry must be written by
    the core, for valid and invalid chains, graphs and an empty architecture (the identity)."""
    arrays = _mixed_batch()
    out, ref = _raw_call(arrays, 4, sentinel), run_reference(arrays)
    assert ref["error"].tolist() == [0, 6, 0, 0]  # GROUPS: 4 channels in 3 groups
    for i, k in enumerate(("params", "buffers", "macs", "flops", "activation_elements",
                           "peak_activation_elements")):
        assert out["totals"][i].tolist() == ref[k].tolist(), k
    for k in ("output_shape", "output_ndim", "error", "error_layer"):
        assert out[k].tolist() == ref[k].tolist(), k


def test_offsets_changed_after_validation_give_bad_field():
    """The core checks each architecture's offsets itself (0 <= l0 <= l1 <= n_layers, the same for
    the inputs, inputs + rows <= the scratch rows): an architecture whose offsets are out of range
    gets BAD_FIELD in its inputs and zero counts; the others are counted as before. The batch:
    rows 0-1, 2-3, 4-6 and none (7 rows), one input each."""
    arrays = _mixed_batch()
    good = run_reference(arrays)
    cases = [  # (which offsets array, index, new value), architectures out of range, unchanged ones
        ("arch_offsets", 0, -1, {0}, {1, 2, 3}),  # l0 < 0
        ("arch_offsets", 2, 1, {1}, {0, 3}),  # l1 < l0 (architecture 2 then starts at row 1: not checked)
        ("arch_offsets", 3, 8, {2, 3}, {0, 1}),  # past the last row: 2 ends there, 3 starts there
        ("input_offsets", 4, 9, {3}, {0, 1, 2}),  # past the last input
        ("input_offsets", 0, -3, {0}, {1, 2, 3}),
    ]
    for name, i, value, broken, unchanged in cases:
        bad = dict(arrays, **{name: arrays[name].copy()})
        bad[name][i] = value
        out = _raw_call(bad, 4, -7)
        for b in broken:
            assert (out["error"][b], out["error_layer"][b]) == (BAD_FIELD, -1), (name, i, b)
            assert out["totals"][:, b].tolist() == [0] * 6 and out["output_shape"][b].tolist() == [0] * 5
            assert out["output_ndim"][b] == 0
        for b in unchanged:
            assert (out["error"][b], out["totals"][3, b]) == (good["error"][b], good["flops"][b]), (name, i, b)
    # architecture 2 has 1 input and 3 rows: 4 scratch rows hold it, 3 do not
    out = _raw_call(arrays, 3, -7)
    assert out["error"].tolist() == [good["error"][0], good["error"][1], BAD_FIELD, good["error"][3]]


def test_two_threads_with_pages_touched_give_the_same_answers():
    """run_core touches one byte per page of its outputs before a multi-threaded call instead of
    zero-filling them: the answers at 2 threads are those of 1 thread and of the reference."""
    conv = _row("Conv2d", in_=0, out=4, groups=1, k0=3, k1=3, s0=1, s1=1, p0=1, p1=1, d0=1, d1=1)
    arrays = _batch([([conv, _row("ReLU")] * (1 + i % 3), (4, 6, 6), 1 + i % 5) for i in range(3000)])
    one, two, ref = run_core(arrays, n_threads=1), run_core(arrays, n_threads=2), run_reference(arrays)
    for k in FIELDS:
        assert np.array_equal(one[k], two[k]), k
        assert np.array_equal(one[k], ref[k]), k


# ---- count_packed's block driver (_count_block) and _chain_fast's sum bound -----------------------
# The driver walks blocks of 256 architectures (CHUNK in src/_core.pyx): it writes error OK and
# error_layer -1 for a whole block first, reads each offset once (an architecture's end is the next
# one's start), sends an architecture to _chain_fast on one test of its offsets (one network input,
# rows in range, fewer rows than the scratch holds), and every other one, or one _chain_fast declines,
# to the general route, which must overwrite the block's error entries.
CHUNK = 256


def _edge_kinds():
    """One architecture of each route, as archgen _Arch objects: a valid chain (_chain_fast), an
    invalid chain (declined: GROUPS at row 1), a residual graph of two inputs (_graph_fast), no
    network input (BAD_FIELD), no rows (the identity), a chain flagged with an unused row and one
    with an output before its last row (declined after its rows), one input read twice (a graph)."""
    import _archgen as G
    from test_review5 import _arch, _row as row
    conv = row("Conv2d", src=0, out=4, groups=1, k0=3, k1=3, s0=1, s1=1, d0=1, d1=1)
    bad = row("Conv2d", src=0, out=4, groups=3, k0=1, k1=1, s0=1, s1=1, d0=1, d1=1)
    return G, [
        _arch([(3, 8, 8)], 2, [row("Conv2d", out=4, groups=1, k0=3, k1=3, s0=1, s1=1, d0=1, d1=1), row("ReLU", src=0)]),
        _arch([(3, 8, 8)], 1, [row("Conv2d", out=4, groups=1, k0=3, k1=3, s0=1, s1=1, d0=1, d1=1), bad]),
        _arch([(3, 8, 8), (3, 8, 8)], 2, [row("Add", src=-2, nsrc=2, xoff=0)], [-1]),
        _arch([], 2),
        _arch([(5,)], 3),
        _arch([(3, 8, 8)], 1, [row("ReLU"), row("ReLU", src=0, flags=F.F_UNUSED)]),
        _arch([(3, 8, 8)], 1, [row("ReLU", flags=F.F_OUTPUT), row("ReLU", src=0)]),
        _arch([(3, 8, 8)], 1, [row("ReLU"), row("ReLU")]),  # row 1 reads the input again
    ], conv


@pytest.mark.parametrize("n_arch", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3])
def test_every_route_at_block_edges(n_arch):
    """Architectures of every route at the first four and last four positions of each block, plain
    valid chains elsewhere; outputs filled with a pattern first; every field equals
    the reference's, at 1 and 2 threads and through the general path."""
    from test_review5 import _assert_core_matches_reference
    import cnncore.counting as counting
    G, kinds, _ = _edge_kinds()
    archs = [kinds[0]] * n_arch
    edges = sorted({p for b in range(0, n_arch, CHUNK) for j in range(4) for p in (b + j, b + CHUNK - 1 - j)
                    if p < n_arch})
    for i, p in enumerate(edges):
        archs[p] = kinds[i % len(kinds)]
    arrays = G.assemble(archs)
    want = counting.run_reference(arrays)
    assert set(want["error"].tolist()) == {0, F.ERROR_CODES["GROUPS"], F.ERROR_CODES["BAD_FIELD"]}
    result_arrays = counting._result_arrays

    def poisoned(n):
        totals, out = result_arrays(n)
        totals.base[...] = 0xAB
        return totals, out
    counting._result_arrays = poisoned
    try:
        _assert_core_matches_reference(arrays)
    finally:
        counting._result_arrays = result_arrays


def test_offsets_changed_after_validation_at_a_block_edge():
    """The offsets of the first architecture of the second block point past the last row: only it
    (it ends where the next one starts, so the next one too) gets BAD_FIELD; each block starts
    from its own first offset, so the architectures before and after are counted as before."""
    G, kinds, _ = _edge_kinds()
    arrays = G.assemble([kinds[0]] * (CHUNK + 3))
    good = run_reference(arrays)
    bad = dict(arrays, arch_offsets=arrays["arch_offsets"].copy())
    bad["arch_offsets"][CHUNK + 1] = len(arrays["layers"]) + 1  # architecture 256 ends past the rows
    out = _raw_call(bad, 3, -7)
    broken = {CHUNK, CHUNK + 1}
    for a in range(CHUNK + 3):
        if a in broken:
            assert (out["error"][a], out["error_layer"][a]) == (BAD_FIELD, -1), a
            assert out["totals"][:, a].tolist() == [0] * 6 and out["output_ndim"][a] == 0
        else:
            assert out["error"][a] == 0 and out["totals"][3, a] == good["flops"][a], a


@pytest.mark.parametrize("max_rows, valid", [(3, True), (2, False)])
def test_scratch_rows_bound_the_chain_path_too(max_rows, valid):
    """A chain of 2 rows and its input need 3 scratch rows on the general path; with fewer, the
    architecture is BAD_FIELD on every route (the chain path's test: rows < scratch rows)."""
    G, kinds, _ = _edge_kinds()
    arrays = G.assemble([kinds[0]])
    out = _raw_call(arrays, max_rows, -7)
    if valid:
        ref = run_reference(arrays)
        assert out["error"][0] == 0 and out["totals"][2, 0] == ref["macs"][0]
    else:
        assert (out["error"][0], out["error_layer"][0]) == (BAD_FIELD, -1)


@pytest.mark.parametrize("relus", [1, 2, 3, 6, 7, 8])
def test_relu_chains_on_an_input_of_2_to_the_60(relus):
    """An input of N = 2^30 x 2^30 = 2^60 elements and `relus` ReLUs. By hand: each ReLU counts N
    FLOPs and N activation elements; the input and the activations add up to (relus + 1) N, which
    must stay below 2^63: valid up to 6 ReLUs, OVERFLOW at row 6 (the seventh ReLU) beyond. The
    fast path's bound (bits(N) + bits(relus + 1) <= 63, N having 61 bits) takes 1 and 2 ReLUs, the
    general path the others: both must give these numbers, as the reference does."""
    n = 2 ** 60
    r = _count(_batch([([_row("ReLU")] * relus, (2 ** 30,), 2 ** 30)]))
    if (relus + 1) * n < 2 ** 63:
        assert r["error"][0] == 0
        assert r["flops"][0] == r["activation_elements"][0] == relus * n
        assert r["peak_activation_elements"][0] == 2 * n
    else:
        assert (r["error"][0], r["error_layer"][0]) == (OVERFLOW, 6)
