"""Review of session 7's core changes (d18a458..review7): `_graph_fast`'s slot structs, its split
peak pass and size-keeping Conv2d test on int32 pairs, the activation range test, `_cat` on the
slots; the columnar kernel's power-of-two strides, output shapes transposed in registers, conv
leads that add their followers' counts, the skipped liveness step. The review found no result that
differs from cnncore.reference (the independent pure-Python twin); these guard tests keep the
hostile edges checked: every output memory filled with a byte pattern first (test_review5's
fixture), every field compared on the fast and general paths, 1 and 2 threads, every kernel build."""
from __future__ import annotations

import random

import numpy as np
import pytest

import cnncore as cc
import cnncore.columnar as columnar
import cnncore.counting as counting
from cnncore import _format as F

import _archgen as G
from test_columnar import columnar_kernels
from test_core_dag import _count
from test_core_dag import _row as dag_row
from test_review5 import FIELDS, _arch, _assert_core_matches_reference, _row, poisoned  # noqa: F401
from test_review6 import _conv_chain_columnar

INT32_MAX = 2 ** 31 - 1
# window fields that could mislead the int32-pair test, or pass it wrongly: negative, huge, the
# halves of 2p + 1 past 2^31
HOSTILE = [0, 1, 2, 3, -1, -2, INT32_MAX, -INT32_MAX - 1, 2 ** 30, 2 ** 30 - 1, 2 ** 30 + 1, 46341, 65536]
GRAPH_OPS = (["Conv2d"] * 6 + ["BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU",
                               "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Add", "Add", "Mul",
                               "Cat", "Cat", "MaxPool2d", "AvgPool2d", "Identity", "Identity", "Flatten",
                               "AdaptiveAvgPool2d", "Linear"])


def _hostile_graph(rng, clean):
    """A DAG of _graph_fast's ops (and PReLU/Softmax next to them), most fields right, a share
    (1 - clean) hostile: window fields around the size-keeping test, 'same' padding, groups, lazy
    or wrong in-sizes, Cat of up to 20 inputs along any dim, Add/Mul whose second input is a
    network input or a bad reference, views anywhere (also last), up to three network inputs,
    unused rows and early outputs, dims and batches up to 2^31 - 1."""
    def field(good):
        return good if rng.random() < clean else rng.choice(HOSTILE)

    n_in = rng.choice([1, 1, 2, 3])
    c = rng.choice([1, 2, 4, 8])
    h = rng.choice([1, 2, 5, 2 ** 16, INT32_MAX]) if rng.random() < 0.2 else rng.randint(1, 12)
    w = h if rng.random() < 0.6 else rng.randint(1, 12)
    batch = rng.choice([2 ** 20, INT32_MAX]) if rng.random() < 0.1 else rng.randint(1, 3)
    a = _arch([(c, h, w)] * n_in, batch)
    nl = rng.randint(1, 25)
    for k in range(nl):
        src = k - 1 if rng.random() < 0.6 else rng.randint(-n_in, k - 1)
        op = rng.choice(GRAPH_OPS)
        r = _row(op, src=src)
        if op in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            k0 = rng.choice([1, 3, 5, 7])
            k1 = k0 if rng.random() < 0.7 else rng.choice([1, 3, 5])
            window = [field(k0), field(k1), field(1), field(1), field(k0 // 2), field(k1 // 2), field(1), field(1)]
            if rng.random() < 0.1:  # kernel = 2 padding + 1 on 32 bits, padding huge or negative
                p = rng.choice([2 ** 30 - 1, 2 ** 30, INT32_MAX, -1, -2 ** 30])
                window[4], window[0] = p, int(np.int32(np.uint32((2 * p + 1) & 0xFFFFFFFF)))
            for f, v in zip((F.K0, F.K1, F.S0, F.S1, F.P0, F.P1, F.D0, F.D1), window):
                r[f] = v
            if op == "Conv2d":
                r[F.IN] = 0 if rng.random() < clean else rng.choice([c, 2 * c, 3])
                r[F.OUT] = field(rng.choice([c, c, 2 * c, 8]))
                r[F.GROUPS] = field(rng.choice([1, 1, 1, 1, 2, c]))
                r[F.FLAGS] = rng.choice([0, F.F_BIAS]) | (F.F_SAME if rng.random() < 0.15 else 0)
        elif op == "BatchNorm2d":
            r[F.IN], r[F.FLAGS] = rng.choice([0, c]), rng.choice([0, F.F_TRACK, F.F_AFFINE | F.F_TRACK])
        elif op == "PReLU":
            r[F.IN] = rng.choice([1, c])
        elif op == "AdaptiveAvgPool2d":
            r[F.K0] = r[F.K1] = rng.choice([0, 1, 2])
        elif op in ("Add", "Mul"):
            r[F.NSRC], r[F.XOFF] = (2 if rng.random() < 0.95 else rng.choice([1, 3])), len(a.extra)
            second = src if rng.random() < 0.5 else rng.randint(-n_in, k - 1)
            a.extra += [second if rng.random() < 0.97 else rng.choice([k, k + 1, -n_in - 1]),
                        rng.randint(-n_in, max(k - 1, -1))]
        elif op == "Cat":
            m = rng.choice([1, 2, 3, 8, 20])
            r[F.NSRC], r[F.XOFF], r[F.DIM0] = m, len(a.extra), rng.choice([1, 1, 1, -3, 0, 2, 4, -5])
            a.extra += [src if rng.random() < 0.6 else rng.randint(-n_in, k - 1) for _ in range(m - 1)]
        elif op == "Flatten":
            r[F.DIM0], r[F.DIM1] = rng.choice([(1, -1), (0, -1), (2, 3), (1, 2)])
        elif op == "Linear":
            r[F.IN], r[F.OUT], r[F.FLAGS] = rng.choice([0, c, 16]), rng.randint(1, 10), rng.choice([0, F.F_BIAS])
        elif op == "Softmax":
            r[F.DIM0] = 1
        if rng.random() < 0.03:
            r[F.FLAGS] |= rng.choice([F.F_UNUSED, F.F_OUTPUT])
        if k == nl - 1 and rng.random() < 0.2:
            r[F.FLAGS] |= F.F_OUTPUT
        a.rows.append(r)
    return a


@pytest.mark.parametrize("seed", range(24))
def test_hostile_graphs_match_the_reference(poisoned, seed):  # noqa: F811
    """~0.01 s a seed; the generator was run on 7 000 seeds (42 000 graphs, ~20 % valid) in review."""
    rng = random.Random(seed)
    archs = [_hostile_graph(rng, 0.97 if seed % 3 else 0.85) for _ in range(8)]
    _assert_core_matches_reference(G.assemble(archs))


def test_hostile_graphs_are_often_valid():
    """The generator above reaches valid graphs (the fast path's counting), not only errors."""
    rng = random.Random(7)
    arrays = G.assemble([_hostile_graph(rng, 0.97) for _ in range(60)])
    assert (counting.run_reference(arrays)["error"] == 0).sum() >= 8


def test_cat_of_views_and_inputs_then_a_view_last():
    """x0, x1 (1,2,4,4), 32 elements each. y0 = relu(x0) (32); y1 = identity(y0) (a view of y0);
    y2 = cat(y1, x1, x0, y1, x1) along channels (1,10,4,4) = 160; y3 = flatten(y2) (a view, the
    output, last). Moments: m0 x0 + x1 = 64; m1 + y0 = 96; m2 (a view) 96; m3 + y2 = 256, then y0,
    x0, x1 die (their last read); m4 (a view) 160. Peak 256; flops: relu 32; output (1, 160)."""
    rows = [dag_row("ReLU", -1), dag_row("Identity", 0), dag_row("Cat", 1, nsrc=5, xoff=0, DIM0=1),
            dag_row("Flatten", 2, DIM0=1, DIM1=-1)]
    r = _count(rows, [(2, 4, 4), (2, 4, 4)], extra=[-2, -1, 1, -2])
    assert r["error"] == 0 and r["peak_activation_elements"] == 256 and r["flops"] == 32
    assert r["output_ndim"] == 2 and list(r["output_shape"]) == [1, 160, 0, 0, 0]


def test_an_input_read_only_by_the_last_add_and_an_input_never_read():
    """x0, x1, x2 (1,4,3,3), 36 elements each; x2 is never read. y0 = conv1x1(x0) 4->4 (36),
    y1 = conv3x3 pad 1 (y0) (36, size-keeping), y2 = y1 + x1. m0 108; m1 x0 + x1 + y0 (x2 died
    after m0) = 108; m2 x1 + y0 + y1 = 108 (x0 died after m1); m3 x1 + y1 + y2 = 108. Peak 108;
    params 16 + 144, macs 36 * 4 + 36 * 36, flops 36 * 7 + 36 * 71 + 36 (the add)."""
    conv = dict(IN=4, OUT=4, GROUPS=1, S0=1, S1=1, D0=1, D1=1)
    rows = [dag_row("Conv2d", -1, K0=1, K1=1, **conv), dag_row("Conv2d", 0, K0=3, K1=3, P0=1, P1=1, **conv),
            dag_row("Add", 1, nsrc=2, xoff=0)]
    r = _count(rows, [(4, 3, 3)] * 3, extra=[-2])
    assert r["error"] == 0 and r["peak_activation_elements"] == 108
    assert r["params"] == 16 + 144 and r["macs"] == 36 * 4 + 36 * 36 and r["flops"] == 36 * 7 + 36 * 71 + 36


@pytest.mark.parametrize("op", [-2 ** 31, -2 ** 31 + F.OPS["ReLU"], -1, F.OPS["ReLU"] - 1, F.OPS["PReLU"],
                                F.OPS["Hardsigmoid"] + 1, 64 + F.OPS["ReLU"], INT32_MAX])
def test_op_codes_around_the_activation_range(poisoned, op):  # noqa: F811
    """_is_activation is one unsigned range test on ReLU .. Hardsigmoid (but PReLU): codes around it,
    and ones that wrap it (2^31 below, 64 above), in a residual graph (raw arrays: the packed
    checks would refuse them) are UNKNOWN_OP at their row, or their own counts for the ops that exist,
    as the reference says; the same graph with ReLUs counts conv 100 (2 * 4 - 1), each ReLU and the
    add numel = 100."""
    conv = {"in": 4, "out": 4, "groups": 1, "k0": 1, "k1": 1, "s0": 1, "s1": 1, "d0": 1, "d1": 1}

    def graph(code, position):
        rows = [_row("Conv2d", -1, **conv), _row("ReLU", 0, **{"in": 1}), _row("ReLU", 1),
                _row("Add", 2, nsrc=2, xoff=0)]
        rows[position][F.OP] = code
        return _arch([(4, 5, 5)], 1, rows, [-1])

    relu = F.OPS["ReLU"]
    arrays = G.assemble([graph(relu, 1), graph(op, 1), graph(op, 2)])
    _assert_core_matches_reference(arrays)
    want = counting.run_reference(arrays)
    assert want["error"][0] == 0 and want["flops"][0] == 100 * (2 * 4 - 1) + 100 + 100 + 100
    if op not in F.OPS.values():
        assert want["error"].tolist()[1:] == [F.ERROR_CODES["UNKNOWN_OP"]] * 2
        assert want["error_layer"].tolist()[1:] == [1, 2]


@pytest.mark.parametrize("seed", range(6))
def test_columnar_power_of_two_strides_mixed_per_tile(poisoned, monkeypatch, seed):  # noqa: F811
    """Conv-led chains (test_review6's templates) on 200 architectures (three full tiles and a
    partial one), 4 x 8 .. 60 x 8 .. 60 inputs, with per-conv stride columns that are powers of two in some
    tiles and not in others (3, 6, 2^30, 0, negative, -2^31 whose bits pass x & (x - 1) == 0,
    2^31 - 1; the first tile always the seed's set), in dim 1 equal or not; each kernel build, 1 and
    2 threads, against the reference."""
    rng = np.random.default_rng(seed)
    template = _conv_chain_columnar(rng).template
    while not cc.count(cc.Columnar(template, {}, input_shape=(4, 60, 60)).to_packed(), backend="reference").valid.all():
        template = _conv_chain_columnar(rng).template  # (its residual Add may join other shapes)
    layers = template._arrays["layers"]
    n = 200
    stride_sets = [(1, 2, 4, 2 ** 30), (1, 2, 3), (2, 0, 6), (4, -2, 3), (2, -2 ** 31, 3), (1, INT32_MAX, 3)]
    s0 = np.repeat(layers[None, :, F.S0].astype(np.int64), n, 0)
    for k in np.nonzero(layers[:, F.OP] == F.OPS["Conv2d"])[0]:
        for t0 in range(0, n, 64):
            values = stride_sets[seed] if t0 == 0 or rng.random() < 0.5 else (1, 2, 4)
            s0[t0:t0 + 64, k] = rng.choice(np.array(values), len(s0[t0:t0 + 64]))
    s1 = s0.copy() if seed % 2 else np.where(rng.random(s0.shape) < 0.3, rng.choice(np.array((1, 2, 3)), s0.shape), s0)
    h = rng.integers(8, 60, n)
    shape = np.stack([np.full(n, 4), h, h if seed % 2 else rng.integers(8, 60, n)], 1)
    col = cc.Columnar(template, {"s0": s0, "s1": s1}, input_shape=shape, batch_size=rng.integers(1, 4, n))
    want = cc.count(col.to_packed(), backend="reference")
    assert want.valid.sum() >= 5  # (a 0 stride in the first tile makes most of it invalid)
    for kernel in columnar_kernels():
        monkeypatch.setattr(columnar, "_columnar", kernel)
        for n_threads in (1, 2):
            got = cc.count(col, n_threads=n_threads)
            for f in cc.BatchResult.FIELDS:
                np.testing.assert_array_equal(getattr(got, f), getattr(want, f),
                                              err_msg=f"{f}, {kernel.__name__}, {n_threads} threads")


@pytest.mark.parametrize("k, p", [((-1, -1), (INT32_MAX, INT32_MAX)), ((-INT32_MAX, -INT32_MAX), (2 ** 30, 2 ** 30)),
                                  ((-1, -INT32_MAX), (INT32_MAX, 2 ** 30))])
def test_negative_kernels_in_both_dims_matching_2p_plus_1_on_32_bits(k, p):
    """Kernels whose 32 bits are those of 2p + 1 in both dimensions (2^32 - 1 is -1, 2^31 + 1 is
    -2^31 + 1): the int32-pair test must reject them by their sign bits. Their kernel volume is
    positive (two negatives), so the counts would look sane: torch refuses a kernel < 1, the
    reference and the core's general path say BAD_FIELD at the conv."""
    rows = [dag_row("Conv2d", -1, IN=4, OUT=4, GROUPS=1, K0=k[0], K1=k[1], P0=p[0], P1=p[1], S0=1, S1=1, D0=1, D1=1),
            dag_row("Add", 0, nsrc=2)]
    arrays = G.assemble([_arch([(4, 6, 6)], 1, [list(map(int, r)) for r in rows], [-1])])
    _assert_core_matches_reference(arrays)
    want = counting.run_reference(arrays)
    assert (want["error"][0], want["error_layer"][0]) == (F.ERROR_CODES["BAD_FIELD"], 0)


def test_size_keeping_convs_near_int64_overflow(poisoned):  # noqa: F811
    """Size-keeping Conv2d 1 -> out (1x1 and 3x3 padding 1, bias) + residual Add (broadcasting the
    input's one channel) on N x 1 x H x W, N, H, W up to 2^31 - 1: numel(y) = N out H W is
    multiplied without the window arithmetic, so its overflow check is the shortcut's own. Every
    path equals the reference; by hand: N 1, H 2^31 - 1, W 1, out 1, 1x1: params 2, macs 2^31 - 1,
    flops 2 (2^31 - 1) + (2^31 - 1) (the add); N 2^31 - 1, H 2^20, W 2^11: the input's numel
    (2^31 - 1) 2^31 < 2^63 fits, out 8 makes it (2^31 - 1) 2^34 > 2^63 - 1: OVERFLOW at the conv."""
    archs = []
    for batch in (1, 3, 2 ** 20, INT32_MAX):
        for h, w in ((INT32_MAX, 1), (2 ** 20, 2 ** 11), (2 ** 20, 2 ** 20), (46341, 46341), (65536, 32768)):
            for out in (1, 2, 8):
                for k in (1, 3):
                    conv = _row("Conv2d", -1, **{"in": 0, "out": out, "groups": 1, "k0": k, "k1": k, "p0": k // 2,
                                                  "p1": k // 2, "s0": 1, "s1": 1, "d0": 1, "d1": 1, "flags": F.F_BIAS})
                    archs.append(_arch([(1, h, w)], batch, [conv, _row("Add", 0, nsrc=2, xoff=0)], [-1]))
    arrays = G.assemble(archs)
    _assert_core_matches_reference(arrays)
    want = counting.run_reference(arrays)
    assert (want["params"][0], want["macs"][0], want["flops"][0]) == (2, INT32_MAX, 3 * INT32_MAX)
    last = 3 * 5 * 3 * 2 + 1 * 3 * 2 + 2 * 2 + 0  # N 2^31 - 1, H 2^20, W 2^11, out 8, k 1
    assert (want["error"][last], want["error_layer"][last]) == (F.ERROR_CODES["OVERFLOW"], 0)
    assert 40 <= (want["error"] == 0).sum() < len(archs)
