"""Edges of the graph fast path's shortcuts (src/_core.pyx, `_graph_fast`): the size-keeping Conv2d
test on int32 pairs (`_keeps_size`), the peak scan over even and odd moments, the activation range
test, on small graphs worked out by hand. Each case runs through test_core_dag._count: the core with
the fast paths and without them, and the pure-Python reference, all fields equal.

A residual Add makes every case a graph (the chain path never takes it), so `_graph_fast` is tried
first and sends anything it does not vouch for to the general path."""
import pytest

from cnncore import _format as F
from test_core_dag import _count, _row, conv

INT32_MAX = 2 ** 31 - 1


def _window_conv(src, k, p, s=(1, 1), d=(1, 1)):
    """Conv2d 4 -> 4, groups 1, no bias, with per-dimension kernel, padding, stride, dilation."""
    return _row("Conv2d", src, IN=4, OUT=4, GROUPS=1, K0=k[0], K1=k[1], P0=p[0], P1=p[1],
                S0=s[0], S1=s[1], D0=d[0], D1=d[1])


# (kernel, padding, stride, dilation) on x (1,4,6,6) -> the output's (H, W) by torch's formula
# floor((x + 2p - d(k - 1) - 1) / s) + 1 per dimension, or the error (docs/conventions.md)
WINDOWS = [
    (((3, 1), (1, 0), (1, 1), (1, 1)), (6, 6)),  # size-keeping, not square
    (((3, 3), (1, 0), (1, 1), (1, 1)), (6, 4)),  # one dimension keeps its size, the other not
    (((1, 1), (0, 0), (1, 2), (1, 1)), (6, 3)),  # stride (1, 2)
    (((1, 1), (0, 0), (1, 1), (2, 1)), (6, 6)),  # dilated 1x1: the same size, by the general window
    # the largest kernel with padding (k - 1) / 2 keeps the size: 6 + 2 (2^30 - 1) - (2^31 - 2) = 6
    (((INT32_MAX, 1), (2 ** 30 - 1, 0), (1, 1), (1, 1)), (6, 6)),
    # 2p + 1 = 2^31 + 1 has the bits of the int32 -2147483647: a kernel below 1 all the same
    (((-INT32_MAX, 1), (2 ** 30, 0), (1, 1), (1, 1)), "BAD_FIELD"),
    # 2p + 1 = 2^32 - 1 has the bits of the int32 -1
    (((-1, 1), (INT32_MAX, 0), (1, 1), (1, 1)), "BAD_FIELD"),
    (((-1, 1), (-1, 0), (1, 1), (1, 1)), "BAD_FIELD"),  # k = 2p + 1 as integers, both negative
    (((1, 3), (0, -1), (1, 1), (1, 1)), "BAD_FIELD"),  # the same in the second dimension
    (((1, 1), (0, 0), (1, 1), (1, 0)), "BAD_FIELD"),  # dilation 0 in the second dimension
]


@pytest.mark.parametrize("window, expect", WINDOWS)
def test_conv_windows_around_the_size_keeping_test(window, expect):
    """conv(x) then + x: valid when the conv keeps (6, 6) (params 4 * 4 * kernel area,
    macs numel(y) * 4 * kernel area, flops numel(y) * (2 * 4 * area - 1) + the add's numel),
    a BROADCAST error at the add when it does not, or the conv's own error."""
    k, p, s, d = window
    r = _count([_window_conv(-1, k, p, s, d), _row("Add", 0, nsrc=2)], [(4, 6, 6)], extra=[-1])
    if isinstance(expect, str):
        assert r["error"] == F.ERROR_CODES[expect] and r["error_layer"] == 0
        return
    if expect != (6, 6):
        assert r["error"] == F.ERROR_CODES["BROADCAST"] and r["error_layer"] == 1
        return
    area, numel = k[0] * k[1], 4 * 36
    assert r["error"] == 0 and list(r["output_shape"]) == [1, 4, 6, 6, 0]
    assert r["params"] == 16 * area and r["macs"] == numel * 4 * area
    assert r["flops"] == numel * (2 * 4 * area - 1) + numel


def test_a_depthwise_and_a_pointwise_size_keeping_conv():
    """x (1,8,5,5) = 200: depthwise 3x3 padding 1 (groups 8: params 72, macs 200 * 9), pointwise
    8 -> 8 with a bias (params 72, macs 200 * 8, flops 200 * (2 * 8 - 1 + 1)), + x. Groups that
    divide neither the channels (3) nor the output (groups 8, out 12) are GROUPS errors."""
    dw = dict(IN=8, OUT=8, GROUPS=8, K0=3, K1=3, P0=1, P1=1, S0=1, S1=1, D0=1, D1=1)
    rows = [_row("Conv2d", -1, **dw), conv(0, 8, 8, flags=F.F_BIAS), _row("Add", 1, nsrc=2)]
    r = _count(rows, [(8, 5, 5)], extra=[-1])
    assert r["error"] == 0 and r["params"] == 72 + 72 and r["macs"] == 200 * 9 + 200 * 8
    assert r["flops"] == 200 * 17 + 200 * 16 + 200
    for groups, out in ((3, 8), (8, 12)):
        bad = [_row("Conv2d", -1, **dict(dw, GROUPS=groups, OUT=out)), _row("Add", 0, nsrc=2)]
        r = _count(bad, [(8, 5, 5)], extra=[-1])
        assert r["error"] == F.ERROR_CODES["GROUPS"] and r["error_layer"] == 0


# (rows, the live totals at moments 0 .. nl worked out by hand); x is (1,1,4,4) = 16 elements.
# Moment k + 1: row k's output is born while its inputs live; a tensor is freed after its last reader.
PEAKS = [
    # nl 3, peak at moment 1 (odd): y0 = conv 1 -> 16 (256); y1 = conv(y0) 16 -> 1 stride 2
    # (1,1,2,2) = 4; y2 = y1 + y1 (4). m0 16; m1 x + y0 = 272; m2 y0 + y1 = 260; m3 y1 + y2 = 8
    ([conv(-1, 1, 16), _row("Conv2d", 0, IN=16, OUT=1, GROUPS=1, K0=1, K1=1, S0=2, S1=2, D0=1, D1=1),
      _row("Add", 1, nsrc=2)], [1], [16, 272, 260, 8]),
    # nl 3, peak at the last moment (odd, after the even pairs): y0 = relu(x) (16); y1 = y0 + x
    # (16); y2 = conv(y1) 1 -> 8 (128). m0 16; m1 x + y0 = 32; m2 x + y0 + y1 = 48; m3 y1 + y2 = 144
    ([_row("ReLU", -1), _row("Add", 0, nsrc=2), conv(1, 1, 8)], [-1], [16, 32, 48, 144]),
    # nl 4, peak at the last moment (even): the rows above, then y3 = conv(y2) 8 -> 16 (256):
    # m4 y2 + y3 = 384
    ([_row("ReLU", -1), _row("Add", 0, nsrc=2), conv(1, 1, 8), conv(2, 8, 16)], [-1],
     [16, 32, 48, 144, 384]),
    # nl 4, peak at moment 2 (even): y0 = conv 1 -> 2 (32); y1 = conv(y0) 2 -> 8 (128); y2 = conv(y1)
    # 8 -> 1 (16); y3 = y2 + x (16). m0 16; m1 x + y0 = 48; m2 x + y0 + y1 = 176; m3 x + y1 + y2 = 160;
    # m4 x + y2 + y3 = 48
    ([conv(-1, 1, 2), conv(0, 2, 8), conv(1, 8, 1), _row("Add", 2, nsrc=2)], [-1],
     [16, 48, 176, 160, 48]),
]


@pytest.mark.parametrize("rows, extra, live", PEAKS)
def test_the_peak_at_even_and_odd_moments(rows, extra, live):
    """The fast path scans the moments two at a time with a running maximum for each parity, and an
    odd last moment on its own: the peak is the largest live total, wherever it falls."""
    r = _count(rows, [(1, 4, 4)], extra=extra)
    assert r["error"] == 0 and len(live) == len(rows) + 1
    assert r["peak_activation_elements"] == max(live)


@pytest.mark.parametrize("op, fields, flops", [
    ("ReLU", {}, 1), ("Hardsigmoid", {}, 4),  # the first and the last activation code
    ("GroupNorm", dict(GROUPS=2, IN=4, flags=F.F_AFFINE | F.F_BIAS), 7),  # the code before ReLU
    ("Softmax", dict(DIM0=1), None),  # the code after Hardsigmoid
])
def test_the_activation_range_and_its_neighbours(op, fields, flops):
    """x (1,4,4,4) = 64 -> op -> + x. The activations are one range of codes; the ops on either side
    of it (GroupNorm 12, Softmax 24) have their own counts (docs/conventions.md): GroupNorm with
    weight and bias 64 * 7 FLOPs and 8 params, Softmax per row of n: 3n - 1 (dim 1: 16 rows of 4)."""
    r = _count([_row(op, -1, **fields), _row("Add", 0, nsrc=2)], [(4, 4, 4)], extra=[-1])
    assert r["error"] == 0 and r["params"] == (8 if op == "GroupNorm" else 0)
    assert r["flops"] == (64 * flops if flops else 64 * 3 - 16) + 64
