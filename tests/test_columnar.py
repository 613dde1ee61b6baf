"""The columnar path (cc.Columnar) against the generic path, field by field.

Property: for a random skeleton (template) and random per-architecture columns, valid and invalid,
`cc.count(columnar)` equals `cc.count(columnar.to_packed())` in every BatchResult field (the generic
core is itself held to the pure-Python reference and to torch by other tests). The skeletons use the
ops the columnar kernel knows (conv with groups / dilation / padding / 'same', batchnorm, activations,
PReLU, max / avg pooling with ceil_mode, adaptive pooling, flatten, linear, identity) wired as chains,
residual blocks (add), squeeze-excitation (mul) and concatenations; fields of a column are mostly
plausible, sometimes off by one and sometimes hostile (0, negative, 2^31 - 1), so that every error the
kernel must hand to the generic core is reached. Templates from the general random generator
(tests/_archgen.py, any op) check the fallback too. Truth from torch: tests/test_columnar_torch.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnncore as cc
from cnncore import _columnar, _format as F
from cnncore.columnar import COLUMN_FIELDS, PROGRAM_COLUMNS as PROGRAM, _StaticError, plan

import _archgen as G

DIM_MAX = 2**31 - 1
HOSTILE = (0, -1, 1, 2, DIM_MAX, -(2**31), 65536, 46341)
O = F.OPS


# ---- random skeletons ---------------------------------------------------------------------------
def _row(op, src=None, k=0, **fields):
    r = [0] * F.N_FIELDS
    r[F.OP], r[F.SRC], r[F.NSRC] = op, (k - 1 if src is None else src), 1
    for name, v in fields.items():
        r[F.FIELD_NAMES.index(name)] = v
    return r


def gen_skeleton(r, max_layers=14):
    """One architecture's packed arrays built from kernel ops (r: an _archgen rng). Fields are
    template values; lazy in-sizes (0) keep widths free to vary per architecture."""
    d = r.pick((1, 2, 2, 2, 3))
    nd = {-1: d + 2}  # ndim (batch included) per tensor
    rows, extra = [], []
    n_layers = r.int(1, max_layers)
    for k in range(n_layers):
        x = k - 1 if (k == 0 or r.p(0.8)) else r.int(-1, k - 1)
        ndx = nd[x]
        sp = ndx - 2  # spatial dims of x (conv-like ops need 1..3)
        flags = F.F_BIAS if r.p(0.5) else 0
        choice = r.pick(("conv", "conv", "bn", "act", "act", "pool", "adaptive", "add", "mul", "cat",
                         "flatten", "linear", "prelu", "identity") if 1 <= sp <= 3 else
                        ("linear", "act", "bn1d", "add", "cat", "prelu", "identity"))
        ks = [r.int(1, 3) for _ in range(3)]
        ss = [r.pick((1, 1, 2)) for _ in range(3)]
        if choice == "conv":
            same = r.p(0.15)
            row = _row(O[f"Conv{sp}d"], x, k, out=r.pick((4, 8, 16)), groups=r.pick((1, 1, 2)),
                       flags=flags | (F.F_SAME if same else 0))
            for i in range(sp):
                row[F.K0 + i], row[F.S0 + i] = ks[i], 1 if same else ss[i]
                row[F.P0 + i], row[F.D0 + i] = (0 if same else ks[i] // 2), r.pick((1, 1, 2))
        elif choice in ("bn", "bn1d"):
            op = O["BatchNorm1d"] if choice == "bn1d" or sp == 1 else O[f"BatchNorm{sp}d"]
            fl = (F.F_AFFINE if r.p(0.8) else 0) | (F.F_TRACK if r.p(0.8) else 0) | flags
            row = _row(op, x, k, flags=fl)
        elif choice == "act":
            row = _row(r.pick(range(O["ReLU"], O["Hardsigmoid"] + 1)), x, k)
            if row[F.OP] == O["PReLU"]:
                row[F.IN] = 1
        elif choice == "prelu":
            row = _row(O["PReLU"], x, k, **{"in": r.pick((1, 1, 4))})
        elif choice == "pool":
            is_max = r.p(0.5)
            row = _row(O[("MaxPool" if is_max else "AvgPool") + f"{sp}d"], x, k,
                       flags=F.F_CEIL if r.p(0.4) else 0)
            for i in range(sp):
                row[F.K0 + i], row[F.S0 + i] = ks[i] + 1, r.pick((1, 2, 2, 3))
                row[F.P0 + i] = r.int(0, (ks[i] + 1) // 2)
                row[F.D0 + i] = r.pick((1, 1, 2)) if is_max else 1
        elif choice == "adaptive":
            row = _row(O[("AdaptiveMaxPool" if r.p(0.5) else "AdaptiveAvgPool") + f"{sp}d"], x, k)
            for i in range(sp):
                row[F.K0 + i] = r.pick((0, 1, 2, 3))
        elif choice in ("add", "mul", "cat"):
            y = r.int(-1, k - 1)
            op = O[choice.capitalize()]
            row = _row(op, x, k)
            row[F.NSRC] = 2 if choice != "cat" else r.int(2, 3)
            row[F.XOFF] = len(extra)
            extra.extend(r.int(-1, k - 1) if j else y for j in range(row[F.NSRC] - 1))
            if choice == "cat":
                row[F.DIM0] = r.pick((1, 1, -1, 0)) if ndx >= 2 else 0
                if any(nd[j] != ndx for j in extra[row[F.XOFF]:]):
                    extra[row[F.XOFF]:] = [x] * (row[F.NSRC] - 1)
        elif choice == "flatten":
            row = _row(O["Flatten"], x, k, dim0=r.pick((1, 1, 0, 2)) % ndx, dim1=-1)
        elif choice == "linear":
            row = _row(O["Linear"], x, k, out=r.pick((3, 10, 16)), flags=flags)
        else:
            row = _row(O["Identity"], x, k)
        if r.p(0.05):
            row[F.FLAGS] |= F.F_UNUSED
        if r.p(0.1):
            row[F.FLAGS] |= F.F_OUTPUT
        rows.append(row)
        op = row[F.OP]
        if op == O["Flatten"]:
            s, e = row[F.DIM0] % ndx, ndx - 1
            nd[k] = ndx - (e - s) if s <= e else ndx
        elif op in (O["Add"], O["Mul"]):
            nd[k] = max(ndx, nd[extra[row[F.XOFF]]])
        else:
            nd[k] = ndx
    shape = np.zeros((1, 4), np.int64)
    shape[0, :d + 1] = [r.int(1, 8)] + [r.int(1, 24) for _ in range(d)]
    return dict(layers=np.array(rows, np.int32).reshape(-1, F.N_FIELDS), extra_src=np.array(extra, np.int32),
                arch_offsets=np.array([0, len(rows)], np.int64), input_offsets=np.array([0, 1], np.int64),
                input_shape=shape, input_ndim=np.array([d + 1], np.int32), batch_size=np.array([r.int(1, 2)], np.int64))


def gen_columnar(r, template_arrays, n_max=12):
    """A Columnar over the template with random columns (valid values mostly, some hostile)."""
    template = cc.Packed.from_arrays(**template_arrays)
    rows = template_arrays["layers"]
    n, nl = r.int(1, n_max), len(rows)
    ind = int(template_arrays["input_ndim"][0])
    columns = {}
    for name in COLUMN_FIELDS:
        if not r.p(0.5):
            continue
        base = rows[:, F.FIELD_NAMES.index(name)].astype(np.int64)
        col = np.repeat(base[None], n, 0)
        for a in range(n):
            for k in range(nl):
                if r.p(0.15):
                    col[a, k] = r.pick((min(base[k] + 1, DIM_MAX), max(base[k] - 1, 0), r.int(0, 9), r.int(1, 64)))
                elif r.p(0.03):
                    col[a, k] = r.pick(HOSTILE)
        columns[name] = col
    shapes = np.array([[r.int(1, 8)] + [r.pick((r.int(1, 40), r.int(1, 40), r.pick(HOSTILE[4:5] + (3, 1))))
                                         for _ in range(ind - 1)] for _ in range(n)], np.int64)
    batch = np.array([r.pick((1, 1, 2, 3)) for _ in range(n)], np.int64)
    return cc.Columnar(template, columns, input_shape=shapes, batch_size=batch)


def assert_same(columnar, n_threads=1):
    got = cc.count(columnar, n_threads=n_threads)
    want = cc.count(columnar.to_packed(), n_threads=1)
    assert len(got) == len(want) == len(columnar)
    for field in cc.BatchResult.FIELDS:
        g, w = getattr(got, field), getattr(want, field)
        assert g.dtype == w.dtype, field
        np.testing.assert_array_equal(g, w, err_msg=field)
    return want


@st.composite
def columnar_batches(draw):
    r = G.HypRng(draw)
    return gen_columnar(r, gen_skeleton(r))


@given(columnar_batches())
def test_columnar_equals_generic(columnar):
    assert_same(columnar)


@st.composite
def general_templates(draw):
    """Templates with any op (from the general generator): unknown ops take the generic fallback."""
    r = G.HypRng(draw)
    arrays = G.gen_batch(r, max_arch=1, max_layers=12)
    if len(arrays["input_ndim"]) != 1:  # a Columnar has exactly one network input
        arrays["input_offsets"] = np.array([0, 1], np.int64)
        arrays["input_shape"], arrays["input_ndim"] = arrays["input_shape"][:1], arrays["input_ndim"][:1]
        L = arrays["layers"].copy()
        L[L[:, F.SRC] < -1, F.SRC] = -1
        arrays["layers"] = L
        arrays["extra_src"] = np.maximum(arrays["extra_src"], -1).astype(np.int32)
    if arrays["input_shape"][0, :arrays["input_ndim"][0]].max() > 4096:
        arrays["input_shape"][0, :arrays["input_ndim"][0]] = 8
    return gen_columnar(r, arrays, n_max=6)


@given(general_templates())
def test_columnar_equals_generic_any_op(columnar):
    assert_same(columnar)


def test_fixed_sample_kernel_is_used_and_agrees():
    """A fixed sample of many skeletons: results agree, the kernel counts most valid architectures
    itself (the generic fallback is not what makes the comparison pass), and invalid ones occur."""
    r = G.NpRng(7)
    kernel_counted = valid = invalid = 0
    codes = set()
    for _ in range(60):
        col = gen_columnar(r, gen_skeleton(r), n_max=40)
        want = assert_same(col, n_threads=2)
        p = col._program()  # None: an op the kernel does not know, or every architecture fails
        valid += int(want.valid.sum())
        invalid += int((~want.valid).sum())
        codes |= set(want.error.tolist())
        if p:
            needs = _kernel_flags(col, p)
            kernel_counted += int((needs == 0).sum())
            assert not (want.error[needs == 0] != 0).any()  # the kernel never passes an invalid arch
    assert valid > 300 and invalid > 100, (valid, invalid)
    assert kernel_counted >= 0.9 * valid
    assert {3, 5, 6, 7, 8, 9, 15} <= codes, codes


def _kernel_flags(col, p):
    n = len(col)
    needs = np.zeros(n, np.uint8)
    _columnar.count_columnar(p["program"], p["deaths"], p["cat_src"],
                             tuple(col._columns.get(f) for f in COLUMN_FIELDS), p["consts"], col.input_shape,
                             col.batch_size, p["n_slots"], p["n_live"], p["in_birth"], p["out_slot"], p["out_nd"],
                             np.zeros((6, n), np.int64), np.zeros((n, 5), np.int64), needs,
                             np.empty((1, _columnar.scratch_size(p["n_slots"], p["n_live"])), np.int64))
    return needs


def test_both_kernel_builds_agree(monkeypatch):
    """The baseline build and the AVX2 build (where this machine has one) count alike: each is
    checked against the generic core on the same fixed sample."""
    import importlib
    import cnncore.columnar as C
    kernels = [importlib.import_module("cnncore._columnar")]
    if C._columnar.__name__.endswith("_avx2"):
        kernels.append(C._columnar)
    r = G.NpRng(11)
    _each_kernel_agrees(monkeypatch, kernels, [gen_columnar(r, gen_skeleton(r), n_max=40) for _ in range(25)], 1)


def _each_kernel_agrees(monkeypatch, kernels, cols, n_threads):
    import cnncore.columnar as C
    for kernel in kernels:
        monkeypatch.setattr(C, "_columnar", kernel)
        for col in cols:
            assert_same(col, n_threads=n_threads)


def test_planner_never_reuses_a_live_slot_at_its_moment():
    """The kernel subtracts the sizes dying at a row's moment and stores the row's own size in one
    pass (tile arrays it may assume distinct): the planner must not hand the newborn a live slot
    freed at that same moment (it did before; a chain reused one slot at every row)."""
    r = G.NpRng(13)
    checked = 0
    for _ in range(200):
        try:
            p = plan(gen_skeleton(r))
        except _StaticError:  # every architecture fails: nothing to plan
            continue
        if not p:
            continue
        G_ = p["program"]
        doff, dn, birth = (G_[:, PROGRAM.index(c)] for c in ("doff", "dn", "birth"))
        for k in range(len(G_)):
            assert birth[k] not in p["deaths"][doff[k]:doff[k] + dn[k]].tolist(), k
            checked += dn[k] > 0 and birth[k] >= 0
    assert checked > 100


def test_template_values_below_their_least():
    """The kernel checks each field it reads against the least value the op allows (stride >= 1,
    padding >= 0, ...) where it reads it, for the template's values as well as for columns: a
    template value below it fails every architecture, as in the generic core."""
    r = G.NpRng(14)
    failed = 0
    for _ in range(80):
        t = gen_skeleton(r)
        rows = t["layers"]
        for k in range(len(rows)):
            if r.p(0.3):
                name = r.pick(("in", "out", "groups", "k0", "s0", "p0", "d0", "k1", "s1", "p1"))
                rows[k, F.FIELD_NAMES.index(name)] = r.pick((0, -1, -(2**31)))
        col = gen_columnar(r, t, n_max=6)
        failed += int((~assert_same(col).valid).sum())
    assert failed > 50


def columnar_kernels():
    """Every build of the kernel this CPU runs (baseline, AVX2, AVX-512: cnncore.columnar's rule)."""
    import importlib
    from numpy._core._multiarray_umath import __cpu_features__ as cpu
    needs = {"_columnar": (), "_columnar_avx2": ("AVX2", "FMA3"),
             "_columnar_avx512": ("AVX512F", "AVX512DQ", "AVX512VL", "AVX512BW", "AVX2", "FMA3")}
    kernels = []
    for name, features in needs.items():
        if all(cpu.get(f) for f in features):
            try:
                kernels.append(importlib.import_module(f"cnncore.{name}"))
            except ImportError:  # not built by this compiler
                assert name != "_columnar"
    return kernels


def test_every_kernel_build_agrees(monkeypatch):
    """Each build of the kernel this CPU can run (baseline, AVX2, AVX-512) is checked against the
    generic core on one fixed sample, whichever of them cnncore picks."""
    kernels = columnar_kernels()
    r = G.NpRng(12)
    _each_kernel_agrees(monkeypatch, kernels, [gen_columnar(r, gen_skeleton(r), n_max=300) for _ in range(12)], 2)


def test_pool_padding_past_dim_max_is_overflow():
    """Found by hypothesis: AvgPool1d(4, 1, padding=2) on length 2^31 - 1 outputs length 2^31, past
    every dimension's int32 bound: OVERFLOW (19) at the pool row, as the generic core says."""
    template = cc.Sequential(cc.ReLU(), cc.AvgPool1d(4, 1, padding=2))
    col = cc.Columnar(template, input_shape=np.array([[1, 5], [1, 2**31 - 1]]))
    want = assert_same(col)
    assert want.error.tolist() == [0, 19] and want.error_layer.tolist() == [-1, 1]


def test_arrays_changed_after_validation_are_not_trusted():
    """Found in review: a batch size set to -3 after the Columnar validated it was counted as valid.
    The kernel re-checks the inputs; the generic core then gives its error (BAD_FIELD, 3)."""
    col = cc.Columnar(cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU()), input_shape=(3, 16, 16),
                      batch_size=np.array([1, 2, 3]))
    col.batch_size[1] = -3
    col.input_shape[2, 1] = 0
    want = assert_same(col)
    assert want.valid.tolist() == [True, False, False] and want.error.tolist() == [0, 3, 3]


def test_conventions_on_a_columnar_are_counted_in_chunks(monkeypatch):
    """Conventions take the generic core, chunk by chunk (bounded memory): the pieces must join into
    the answer of the whole batch counted as packed rows."""
    import cnncore.counting as counting
    r = G.NpRng(5)
    col = gen_columnar(r, gen_skeleton(r), n_max=40)
    while len(col) <= 14:  # at least three chunks of 7
        col = gen_columnar(r, gen_skeleton(r), n_max=40)
    want = cc.count(col.to_packed(), conventions=("thop", "fvcore"))
    monkeypatch.setattr(counting, "COLUMNAR_CHUNK", 7)
    got = cc.count(col, conventions=("thop", "fvcore"))
    for name in ("thop", "fvcore"):
        np.testing.assert_array_equal(got.conventions[name], want.conventions[name])
    for field in cc.BatchResult.FIELDS:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


def test_columns_by_row():
    """{row: values} varies the named rows only; the full-matrix form and models built one by one
    (Conv2d(3, w, 3) -> ReLU -> Linear on a flattened 4x4: params 28w + w*16*10 + 10) agree."""
    skeleton = cc.Sequential(cc.LazyConv2d(8, 3), cc.ReLU(), cc.Flatten(), cc.LazyLinear(10))
    widths = np.array([1, 2, 5])
    by_row = cc.Columnar(skeleton, {"out": {0: widths}}, input_shape=(3, 6, 6))
    full = np.tile(cc.pack([skeleton], (3, 6, 6)).arrays()["layers"][:, F.OUT], (3, 1))
    full[:, 0] = widths
    assert_same(by_row)
    assert cc.count(by_row).params.tolist() == cc.count(cc.Columnar(skeleton, {"out": full}, input_shape=(3, 6, 6))).params.tolist()
    assert cc.count(by_row).params.tolist() == [28 * w + w * 16 * 10 + 10 for w in widths.tolist()]
    for bad, match in (({"out": {7: widths}}, "not a template row"), ({"out": {}}, "empty dict"),
                       ({"out": {0: widths, 3: widths[:2]}}, "different numbers"),
                       ({"out": {0: widths.astype(float)}}, "integers")):
        with pytest.raises(ValueError, match=match):
            cc.Columnar(skeleton, bad, input_shape=(3, 6, 6))


def test_kernel_op_codes_match_format():
    for name, code in _columnar.constants()["ops"].items():
        assert F.OPS[name] == code, name
    for name, bit in _columnar.constants()["flags"].items():
        assert getattr(F, name) == bit, name


# ---- hand-checked numbers -----------------------------------------------------------------------
def test_hand_calculation_two_widths():
    """Conv2d(3, w, 3, padding=1, bias=False) -> BatchNorm2d(w) -> ReLU on 3x8x8, w = 4 and 16:
    params = 27w + 2w, buffers = 2w + 1, macs = 64 * w * 27, flops = 64w(2*27 - 1) + 64w*4 + 64w."""
    m = cc.Sequential(cc.Conv2d(3, 4, 3, padding=1, bias=False), cc.BatchNorm2d(4), cc.ReLU())
    widths = np.array([4, 16])
    out = np.array([[w, 0, 0] for w in widths])
    inn = np.array([[3, w, 0] for w in widths])
    res = cc.count(cc.Columnar(m, {"out": out, "in": inn}, input_shape=(3, 8, 8)))
    w = widths
    assert res.params.tolist() == (27 * w + 2 * w).tolist()
    assert res.buffers.tolist() == (2 * w + 1).tolist()
    assert res.macs.tolist() == (64 * w * 27).tolist()
    assert res.flops.tolist() == (64 * w * 53 + 64 * w * 4 + 64 * w).tolist()
    assert res.output_shape.tolist() == [[1, 4, 8, 8, 0], [1, 16, 8, 8, 0]]
    # activations: conv, bn, relu outputs; peak: input + conv output, then conv + bn, bn + relu
    assert res.activation_elements.tolist() == (3 * 64 * w).tolist()
    assert res.peak_activation_bytes.tolist() == (4 * 2 * 64 * w).tolist()


# ---- construction, validation, conversion --------------------------------------------------------
def _stack():
    return cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU(), cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(8, 10))


def test_from_packed_round_trip():
    models = [cc.Sequential(cc.Conv2d(3, w, k), cc.ReLU(), cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(w, 10))
              for w, k in ((8, 3), (16, 5), (4, 1))]
    packed = cc.pack(models, [(3, 32, 32), (3, 16, 16), (3, 9, 9)])
    col = cc.Columnar.from_packed(packed)
    assert sorted(col.columns) == ["in", "k0", "k1", "out"]
    back = col.to_packed().arrays()
    for name, arr in packed.arrays().items():
        np.testing.assert_array_equal(back[name], arr, err_msg=name)
    assert_same(col)
    assert "valid" in cc.explain(col, 1)


def test_from_packed_rejects_other_topologies():
    a = cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU())
    b = cc.Sequential(cc.Conv2d(3, 8, 3), cc.Sigmoid())
    c = cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU(), cc.ReLU())
    with pytest.raises(ValueError, match="architecture 1 row 1 has op"):
        cc.Columnar.from_packed(cc.pack([a, b], (3, 8, 8)))
    with pytest.raises(ValueError, match="architecture 1 has 3 rows"):
        cc.Columnar.from_packed(cc.pack([a, c], (3, 8, 8)))
    with pytest.raises(ValueError, match="dimensions"):
        cc.Columnar.from_packed(cc.pack([a, a], [(3, 8, 8), (3, 8)]))
    with pytest.raises(TypeError):
        cc.Columnar.from_packed([a])


@pytest.mark.parametrize("kwargs, match", [
    (dict(columns={"stride": np.ones((2, 5), int)}), "unknown column 'stride'"),
    (dict(columns={"op": np.ones((2, 5), int)}), "unknown column 'op'"),
    (dict(columns={"out": np.ones((2, 5), float)}), "must hold integers"),
    (dict(columns={"out": np.ones((2, 5), bool)}), "must hold integers"),
    (dict(columns={"out": np.ones((2, 4), int)}), r"shape \(n, 5\)"),
    (dict(columns={"out": np.ones(5, int)}), "2 dimension"),
    (dict(columns={"out": np.full((2, 5), 2**31)}), "outside"),
    (dict(columns={"out": np.ones((2, 5), int), "k0": np.ones((3, 5), int)}), "disagree"),
    (dict(input_shape=np.ones((2, 2), int)), r"shape \(n, 3\)"),
    (dict(input_shape=np.zeros((2, 3), int)), "outside 1"),
    (dict(input_shape=(3, 8)), "3 dimensions"),
    (dict(batch_size=np.array([1, 0])), "outside 1"),
    (dict(batch_size=2.5), "integers"),
    (dict(n=-1), "non-negative"),
])
def test_bad_columns_raise_clear_errors(kwargs, match):
    template = cc.pack([_stack()], (3, 16, 16))  # its input: 3 dimensions
    with pytest.raises(ValueError, match=match):
        cc.Columnar(template, **kwargs)


def test_template_checks():
    two = cc.pack([_stack(), _stack()], (3, 16, 16))
    with pytest.raises(ValueError, match="exactly one architecture"):
        cc.Columnar(two)
    x, y = cc.Input((3, 8, 8)), cc.Input((3, 8, 8))
    with pytest.raises(ValueError, match="exactly one network input"):
        cc.Columnar(cc.Model([x, y], cc.add(x, y)))


def test_invalid_architectures_never_stop_the_others():
    """Hostile values in every column field: no crash, per-arch error codes as the generic path."""
    rng = np.random.default_rng(3)
    m = cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.BatchNorm2d(8), cc.ReLU(), cc.MaxPool2d(2, ceil_mode=True),
                      cc.Conv2d(8, 8, 3, groups=2), cc.AdaptiveMaxPool2d(2), cc.Flatten(), cc.Linear(32, 10))
    n, nl = 3000, 8
    T = cc.pack([m], (3, 16, 16)).arrays()["layers"]
    cols = {}
    for name in COLUMN_FIELDS:
        col = np.repeat(T[None, :, F.FIELD_NAMES.index(name)].astype(np.int64), n, 0)
        hit = rng.random((n, nl)) < 0.02
        col[hit] = rng.choice(np.array(HOSTILE), hit.sum())
        cols[name] = col
    shapes = rng.choice(np.array([16, 64, 1, 2, DIM_MAX]), (n, 3), p=[0.5, 0.4, 0.04, 0.03, 0.03])
    shapes[:, 0] = rng.choice([3, 4, DIM_MAX], n, p=[0.96, 0.02, 0.02])
    batch = rng.choice([1, 2, DIM_MAX], n, p=[0.9, 0.08, 0.02])
    res = assert_same(cc.Columnar(m, cols, input_shape=shapes, batch_size=batch))
    assert res.valid.any() and (~res.valid).any()
    assert (res.error == F.ERROR_CODES["OVERFLOW"]).any()


def test_empty_and_fallback():
    empty = cc.Columnar(_stack(), input_shape=(3, 16, 16), n=0)
    assert len(cc.count(empty)) == 0
    m = cc.Sequential(cc.Conv2d(3, 8, 3), cc.LayerNorm([8, 14, 14]), cc.Softmax(dim=1))  # no kernel for these
    col = cc.Columnar(m, {"out": np.array([[8, 0, 0], [4, 0, 0]])}, input_shape=(3, 16, 16))
    assert plan(col.template._arrays) is None
    res = assert_same(col)
    assert res.valid.tolist() == [True, False]


def test_threads_and_backends_agree():
    rng = np.random.default_rng(0)
    n = 5000
    m = _stack()
    zero = np.zeros(n, np.int64)
    col = cc.Columnar(m, {"out": np.stack([rng.integers(1, 64, n), zero, zero, zero, np.full(n, 10)], 1),
                          "k0": np.stack([rng.integers(1, 6, n), zero, zero, zero, zero], 1)},
                      input_shape=np.stack([np.full(n, 3), rng.integers(4, 40, n), rng.integers(4, 40, n)], 1))
    one, two = cc.count(col, n_threads=1), cc.count(col, n_threads=2)
    for field in cc.BatchResult.FIELDS:
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)
    small = col.slice(0, 20)
    ref = cc.count(small, backend="reference")
    for field in cc.BatchResult.FIELDS:
        np.testing.assert_array_equal(getattr(ref, field), getattr(one, field)[:20], err_msg=field)
    conv = cc.count(small, conventions=("thop",))
    assert conv.conventions["thop"].shape == (20,)


def test_streaming_columnar_chunks():
    col = cc.Columnar(_stack(), {"out": np.tile([[8, 0, 0, 0, 10]], (100, 1)) + np.arange(100)[:, None] * [1, 0, 0, 0, 0]},
                      input_shape=(3, 16, 16))
    chunks = list(cc.count(col.slice(i, i + 30) for i in range(0, 100, 30)))
    whole = cc.count(col)
    np.testing.assert_array_equal(np.concatenate([c.params for c in chunks]), whole.params)
    with pytest.raises(TypeError, match="Columnar"):
        list(cc.count(iter([1])))
