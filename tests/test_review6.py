"""Review of session 6's changes (14df3ca..review6): count_packed's block driver (blocks of CHUNK
architectures, error OK / error_layer -1 prefilled per block), offsets_max_rows, the columnar
kernel's Conv2d-led chains and its ROW-strided scratch, and Columnar's shared equal dim columns.

Found: Columnar stored a dim's column once when it equalled the previous dim's, even when both were
the caller's arrays used without a copy (documented: an int32 Fortran-ordered column): the Columnar's
"k1" was then the caller's "k0", so a caller who changed "k1" in place afterwards (or "k0") counted
other kernels than its arrays held, and only when the two happened to be equal at construction.
The rest held; the tests below keep it checked (truth: cnncore.reference, and a hand calculation),
with the outputs filled with a byte pattern first (np.empty: a missing write must show)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnncore as cc
import cnncore.columnar as columnar
import cnncore.counting as counting
from cnncore import _format as F
from cnncore.conventions import NAMED
from cnncore.packing import check_offsets

import _archgen as G
from test_columnar import columnar_kernels
from test_review5 import FIELDS, _arch, _assert_core_matches_reference, _row, poisoned  # noqa: F401 (a fixture)

CHUNK = 256  # architectures per block of count_packed's driver (src/_core.pyx)
DIM_MAX = 2**31 - 1


# ---- the block driver ---------------------------------------------------------------------------
def _edge_arch(rng):
    """The architectures a block must route right: no rows, two inputs, no input, a valid chain,
    an invalid chain (in_channels), a graph, a chain whose flops pass 2^63 (the general path's
    OVERFLOW), a flat chain."""
    conv = dict(out=4, k0=3, k1=3, s0=1, s1=1, d0=1, d1=1, groups=1)
    m = DIM_MAX
    choices = [
        lambda: _arch([(3, 8, 8)], 2),
        lambda: _arch([(3, 8, 8), (3, 8, 8)], 1),
        lambda: _arch([], 2, [_row("ReLU")]),
        lambda: _arch([(3, 8, 8)], 1, [_row("Conv2d", **conv), _row("ReLU", src=0)]),
        lambda: _arch([(3, 8, 8)], 1, [_row("Conv2d", **{"in": 5}, **conv)]),
        lambda: _arch([(3, 8, 8)], 2, [_row("ReLU"), _row("Add", src=0, nsrc=2, xoff=0)], [-1]),
        lambda: _arch([(m,)], m, [_row("Linear", out=1), _row("Linear", src=0, out=1)]),
        lambda: _arch([(5,)], 3, [_row("Linear", out=7, flags=F.F_BIAS), _row("ReLU", src=0)]),
    ]
    return choices[int(rng.integers(len(choices)))]()


@pytest.mark.parametrize("n_arch", [CHUNK - 1, CHUNK + 1, 2 * CHUNK + 3])
def test_blocks_across_chunk_edges_write_every_entry(poisoned, n_arch):
    """Batches across block edges (the last block partial), edge architectures mixed with random
    ones, on every path: fast and general, 1 and 2 threads, per layer, and with conventions (the
    paths that bypass the chain route, after the block's prefill)."""
    rng, r = np.random.default_rng(n_arch), G.NpRng(n_arch)
    arrays = G.assemble([_edge_arch(rng) if rng.random() < 0.4 else G.gen_arch(r, 10) for _ in range(n_arch)])
    _assert_core_matches_reference(arrays)
    want = counting.run_reference(arrays)
    assert (want["error"] == 0).sum() > n_arch // 4 and (want["error"] != 0).sum() > n_arch // 8
    _, weights = counting.resolve_conventions(tuple(NAMED))
    want = counting.run_reference(arrays, conv_weights=weights)
    for n_threads in (1, 2):
        got = counting.run_core(arrays, n_threads=n_threads, conv_weights=weights)
        for f in FIELDS + ("conventions",):
            np.testing.assert_array_equal(got[f], want[f], err_msg=f"{f}, {n_threads} threads")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2, 3, -1, DIM_MAX, -2**63, 2**63 - 1]), min_size=1, max_size=5),
       st.lists(st.sampled_from([0, 1, 2, -1, -2**63, 2**63 - 1]), min_size=1, max_size=5),
       st.integers(0, 4), st.integers(0, 3))
def test_check_offsets_accepts_exactly_the_valid_offsets(off, ioff, n_rows, n_inputs):
    """offsets_max_rows (one pass, unsigned differences): valid offsets start at 0, never decrease
    and end at the array's length; then the result is the most inputs + layers of one architecture."""
    ioff = (ioff * 5)[:len(off)]
    arrays = dict(layers=np.zeros((n_rows, F.N_FIELDS), np.int32), arch_offsets=np.array(off, np.int64),
                  input_offsets=np.array(ioff, np.int64), input_shape=np.zeros((n_inputs, 4), np.int64),
                  input_ndim=np.ones(n_inputs, np.int32), batch_size=np.ones(len(off) - 1, np.int64))
    valid = all(o[0] == 0 and o[-1] == end and all(a <= b for a, b in zip(o, o[1:]))
                for o, end in ((off, n_rows), (ioff, n_inputs)))
    if not valid:
        with pytest.raises(ValueError, match="offsets"):
            check_offsets(arrays)
        return
    assert check_offsets(arrays) == max((off[a + 1] - off[a] + ioff[a + 1] - ioff[a] for a in range(len(off) - 1)),
                                        default=0)


# ---- the columnar kernel: Conv2d-led chains -----------------------------------------------------
def _conv_chain_columnar(rng):
    """Blocks of Conv2d (mostly plain: groups and dilation 1, not 'same', so it leads its chain)
    followed by BatchNorm / activations / a pool / a residual Add, sometimes a classifier head;
    columns for widths, kernels, strides, padding (k1 often equal to k0, stored once), square and
    non-square inputs, tiles full and partial, a few hostile values and huge batches (past 2^52:
    the generic core's)."""
    rows, extra = [], []
    for _ in range(int(rng.integers(1, 5))):
        k = int(rng.choice([1, 3, 3, 5]))
        conv = _row("Conv2d", src=len(rows) - 1, out=int(rng.choice([4, 8, 16])), groups=1, k0=k, k1=k,
                    s0=1, s1=1, p0=k // 2, p1=k // 2, d0=1, d1=1, flags=int(rng.choice([0, F.F_BIAS])))
        if rng.random() < 0.15:
            conv[F.GROUPS] = 2
        elif rng.random() < 0.1:
            conv[F.FLAGS] |= F.F_SAME
        rows.append(conv)
        for _ in range(int(rng.integers(0, 4))):
            src = len(rows) - 1
            kind = rng.choice(["bn", "act", "act", "pool", "add"])
            if kind == "bn":
                flags = int(rng.choice([F.F_TRACK, F.F_TRACK | F.F_AFFINE, F.F_TRACK | F.F_AFFINE | F.F_BIAS, 0]))
                rows.append(_row("BatchNorm2d", src=src, flags=flags))
            elif kind == "act":
                rows.append(_row(str(rng.choice(["ReLU", "ReLU6", "SiLU", "GELU", "Hardswish", "Sigmoid"])), src=src))
            elif kind == "pool":
                rows.append(_row(str(rng.choice(["MaxPool2d", "AvgPool2d"])), src=src, k0=2, k1=2, s0=2, s1=2, d0=1, d1=1))
            else:
                rows.append(_row("Add", src=src, nsrc=2, xoff=len(extra)))
                extra.append(int(rng.integers(-1, src + 1)))  # any earlier tensor: a mismatch is an error
            if rng.random() < 0.05:
                rows[-1][F.FLAGS] |= F.F_OUTPUT
    if rng.random() < 0.3:
        rows += [_row("AdaptiveAvgPool2d", src=len(rows) - 1, k0=1, k1=1),
                 _row("Flatten", src=len(rows), dim0=1, dim1=-1), _row("Linear", src=len(rows) + 1, out=10)]
    template = cc.Packed.from_arrays(**G.assemble([_arch([(3, 16, 16)], 1, rows, extra)]))
    n, nl = int(rng.choice([1, 7, 64, 65, 129])), len(rows)
    layers = template._arrays["layers"]
    columns = {}
    for name in ("out", "k0", "s0", "p0", "s1", "p1"):
        if rng.random() < 0.5:
            col = np.repeat(layers[None, :, F.FIELD_NAMES.index(name)].astype(np.int64), n, 0)
            change = rng.random(col.shape) < (0.5 if name == "out" else 0.1)
            col[change] = rng.choice([1, 2, 3, 8, 16, 4096, 65536] if name == "out" else [0, 1, 2, 3], change.sum())
            if rng.random() < 0.05:
                col[rng.integers(n), rng.integers(nl)] = rng.choice([0, -1, DIM_MAX, 46341])
            columns[name] = col
    if "k0" in columns:
        columns["k1"] = columns["k0"].copy() if rng.random() < 0.6 else np.maximum(columns["k0"] - 1, 1)
    h = rng.integers(1, 40, n)
    w = h if rng.random() < 0.6 else rng.integers(1, 40, n)
    batch = rng.choice([1, 2, 3, 2**20, DIM_MAX], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    return cc.Columnar(template, columns, input_shape=np.stack([rng.choice([1, 3], n), h, w], 1), batch_size=batch)


@pytest.mark.parametrize("seed", range(36))
def test_conv_led_chains_match_the_reference(poisoned, monkeypatch, seed):
    """Each build of the kernel this CPU runs (baseline, AVX2, AVX-512: only the last streams its
    totals with cc_stream_exact) takes its share of the seeds."""
    kernels = columnar_kernels()
    monkeypatch.setattr(columnar, "_columnar", kernels[seed % len(kernels)])
    col = _conv_chain_columnar(np.random.default_rng(seed))
    want = cc.count(col.to_packed(), backend="reference")
    for n_threads in (1, 2):
        got = cc.count(col, n_threads=n_threads)
        for f in cc.BatchResult.FIELDS:
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f"{f}, {n_threads} threads")


def test_conv_led_chains_are_planned():
    """The sample above reaches the new path: plain Conv2d rows leading chains of followers."""
    leads = 0
    for seed in range(36):
        col = _conv_chain_columnar(np.random.default_rng(seed))
        p = col._program()
        if not p or "groups" in col._columns:
            continue
        fused = columnar._columnar.chains(p["program"], p["deaths"], tuple(col._columns.get(f) for f in columnar.COLUMN_FIELDS),
                                          p["consts"])
        for k, row in enumerate(col.template._arrays["layers"]):
            leads += bool(fused[k][0] and row[F.OP] == F.OPS["Conv2d"] and row[F.GROUPS] == 1
                          and not row[F.FLAGS] & F.F_SAME)
    assert leads >= 10


# ---- Columnar: equal dim columns stored once ----------------------------------------------------
def _conv_macs(k0, k1):
    """Conv2d(3, 4, (k0, k1)) on 3 x 8 x 8, no padding: (8 - k0 + 1)(8 - k1 + 1) outputs per channel,
    each a dot product of 3 k0 k1."""
    return 4 * (9 - k0) * (9 - k1) * 3 * k0 * k1


def test_callers_equal_columns_stay_their_own():
    """Two int32 Fortran-ordered columns (used without a copy, documented), equal when the
    Columnar is built: each stays the caller's own array, so changing one in place changes that
    field only (it was stored once: the caller's k1 was ignored, and changing k0 changed k1)."""
    template = cc.Sequential(cc.Conv2d(3, 4, 3))
    k0, k1 = (np.asfortranarray(np.full((2, 1), 3, np.int32)) for _ in range(2))
    col = cc.Columnar(template, {"k0": k0, "k1": k1}, input_shape=(3, 8, 8))
    assert cc.count(col).macs.tolist() == [_conv_macs(3, 3)] * 2
    k1[:] = 1
    assert cc.count(col).macs.tolist() == [_conv_macs(3, 1)] * 2
    k0[:] = 2
    assert cc.count(col).macs.tolist() == [_conv_macs(2, 1)] * 2
    assert col.columns["k1"].tolist() == [[1], [1]]


def test_copied_equal_columns_are_shared_and_still_right():
    """Equal copied columns (int64 here) share one array; a slice where they differ does not;
    from_packed, to_packed and the generic core's fallback (an invalid architecture) agree."""
    template = cc.Sequential(cc.Conv2d(3, 4, 3), cc.ReLU())
    k = np.array([[3, 0], [1, 0], [5, 0], [0, 0]], np.int64)  # the last architecture: kernel 0, BAD_FIELD
    k1 = k.copy()
    col = cc.Columnar(template, {"k0": k, "k1": k1}, input_shape=(3, 8, 8))
    assert col._columns["k1"] is col._columns["k0"]
    res = cc.count(col)
    assert res.macs[:3].tolist() == [_conv_macs(3, 3), _conv_macs(1, 1), _conv_macs(5, 5)]
    assert res.valid.tolist() == [True, True, True, False]
    k1[2, 0] = 2
    other = cc.Columnar(template, {"k0": k, "k1": k1}, input_shape=(3, 8, 8))
    assert other._columns["k1"] is not other._columns["k0"]
    head = other.slice(0, 2)  # equal there: shared again
    assert head._columns["k1"] is head._columns["k0"]
    assert cc.count(other).macs[2] == _conv_macs(5, 2)
    assert cc.count(head).macs.tolist() == [_conv_macs(3, 3), _conv_macs(1, 1)]
    for c in (col, other, head, cc.Columnar.from_packed(other.to_packed())):
        want = cc.count(c.to_packed(), backend="reference")
        got = cc.count(c)
        for f in cc.BatchResult.FIELDS:
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)


def test_offsets_changed_after_validation_are_not_trusted(poisoned):
    """count_packed's own bounds (the check in cc.count bypassed, as when the arrays change after
    it): an architecture whose offsets leave the arrays (or need more scratch rows than given) is
    BAD_FIELD with zero counts, at block edges too; every other one is counted from the rows its
    offsets name, as the reference counts those rows on their own."""
    from cnncore import _core
    n = CHUNK + 44
    arrays = G.assemble([G.gen_arch(G.NpRng(3), 6) for _ in range(n)])
    max_rows = check_offsets(arrays)
    off, ioff = arrays["arch_offsets"], arrays["input_offsets"]
    for a, value in ((CHUNK, 2**62), (100, -5), (CHUNK + 1, off[CHUNK] - 1), (CHUNK - 1, off[CHUNK - 1] + 1)):
        off[a] = value
    ioff[200] = 2**63 - 1
    ioff[40] = ioff[41]  # architecture 40: no network input
    for n_threads in (1, 2):
        totals, out = counting._result_arrays(n)
        _core.count_packed(arrays["layers"], arrays["extra_src"], off, ioff, arrays["input_shape"],
                           arrays["input_ndim"], arrays["batch_size"], totals, out["output_shape"],
                           out["output_ndim"], out["error"], out["error_layer"],
                           np.empty((n_threads, max_rows, 8), np.int64), np.empty((n_threads, max_rows), np.int64),
                           np.empty((n_threads, 4 * max_rows + 3), np.int64), n_threads=n_threads)
        for a in range(n):
            l0, l1, i0, i1 = int(off[a]), int(off[a + 1]), int(ioff[a]), int(ioff[a + 1])
            got = dict(totals=totals[:, a].tolist(), output_shape=out["output_shape"][a].tolist(),
                       output_ndim=int(out["output_ndim"][a]), error=int(out["error"][a]),
                       error_layer=int(out["error_layer"][a]))
            if not (0 <= l0 <= l1 <= len(arrays["layers"]) and 0 <= i0 <= i1 <= len(arrays["input_shape"])
                    and (l1 - l0) + (i1 - i0) <= max_rows):
                assert got == dict(totals=[0] * 6, output_shape=[0] * 5, output_ndim=0,
                                   error=F.ERROR_CODES["BAD_FIELD"], error_layer=-1), a
                continue
            own = dict(layers=arrays["layers"][l0:l1], extra_src=arrays["extra_src"],
                       arch_offsets=np.array([0, l1 - l0], np.int64), input_offsets=np.array([0, i1 - i0], np.int64),
                       input_shape=arrays["input_shape"][i0:i1], input_ndim=arrays["input_ndim"][i0:i1],
                       batch_size=arrays["batch_size"][a:a + 1])
            want = counting.run_reference(own)
            assert got == dict(totals=[int(want[k][0]) for k in FIELDS[:6]], output_shape=want["output_shape"][0].tolist(),
                               output_ndim=int(want["output_ndim"][0]), error=int(want["error"][0]),
                               error_layer=int(want["error_layer"][0])), a
