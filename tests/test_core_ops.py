"""The core's op bodies (`_conv`, `_pool`, `_linear`, `_flatten`, `_adaptive`, `_same_shape`,
`_finish_n`, `_finish_spatial` in src/_core.pyx) at the edges of their shortcuts.

The op bodies skip work the general formulas would do: a convolution or linear layer tests only
its FLOPs for overflow (they bound its params and MACs), the shape of a result is tested one
pair of dimensions at a time (two int32 dimensions multiply exactly), a pool's padding test is
one subtraction, an output that starts below zero is an error without a division, Flatten of a
4-d feature map and Linear on (N, features) take a straight path, two 4-d shapes compare at once.
Each test puts layers on one of those edges and holds the answer to a hand calculation written out
here or to PyTorch, and to the general path and the pure-Python reference (`_count`), which
compute it without these shortcuts.
"""
import numpy as np
import pytest
import torch

import cnncore as cc
from cnncore import _format as F
from test_core_chain import _batch, _count, _row

OK, BAD_FIELD, OUTPUT_SIZE, POOL_PADDING, SAME_STRIDE, OVERFLOW = 0, 3, 7, 9, 10, 19


def test_conv_overflow_decided_by_its_flops():
    """Conv2d 1x1, in = 2^20, out = 2^12 on (N, H, W) = (2^10, 2^10, 2^10): output elements
    2^10 * 2^12 * 2^10 * 2^10 = 2^42 and n = in * kernel volume = 2^20, so
    MACs = 2^42 * 2^20 = 2^62 and FLOPs = 2^42 * (2 * 2^20 - 1 + bias): without a bias
    2^63 - 2^42 (fits int64), with one 2^63 (does not) while params 2^12 * (2^20 + 1) and the
    MACs still fit. With the output halved (out = 2^11) the biased layer fits again."""
    shape = (2 ** 20, 2 ** 10, 2 ** 10)

    def conv(out, bias):
        return _row("Conv2d", in_=2 ** 20, out=out, groups=1, k0=1, k1=1, s0=1, s1=1, d0=1, d1=1,
                    flags=F.F_BIAS if bias else 0)

    r = _count(_batch([([conv(2 ** 12, False)], shape, 2 ** 10), ([conv(2 ** 12, True)], shape, 2 ** 10),
                       ([conv(2 ** 11, True)], shape, 2 ** 10)]))
    assert r["error"].tolist() == [OK, OVERFLOW, OK]
    assert r["error_layer"].tolist() == [-1, 0, -1]
    assert r["flops"][0] == 2 ** 63 - 2 ** 42
    assert r["macs"][0] == 2 ** 62
    assert r["params"][0] == 2 ** 12 * 2 ** 20
    assert r["output_shape"][0].tolist() == [2 ** 10, 2 ** 12, 2 ** 10, 2 ** 10, 0]
    assert r["flops"][2] == 2 ** 41 * 2 ** 21 - 2 ** 41 + 2 ** 41 == 2 ** 62
    assert r["params"][2] == 2 ** 11 * (2 ** 20 + 1)


def test_conv_output_numel_overflow_after_the_shape_checks():
    """Conv2d 1x1 (in = 1) with out = 2^31 - 1: on (N, H, W) = (2^16, 2^9, 2^9) the output has
    2^34 (2^31 - 1) > 2^63 - 1 elements: OVERFLOW, but a wrong input channel count on the same
    layer is IN_CHANNELS (shape checks first); on (2^14, 2^8, 2^8) it has 2^30 (2^31 - 1), which
    fits, and FLOPs = MACs = that (n = 1, no bias: 2n - 1 = 1)."""
    def conv(inn):
        return _row("Conv2d", in_=inn, out=2 ** 31 - 1, groups=1, k0=1, k1=1, s0=1, s1=1, d0=1, d1=1)

    r = _count(_batch([([conv(1)], (1, 2 ** 9, 2 ** 9), 2 ** 16), ([conv(2)], (1, 2 ** 9, 2 ** 9), 2 ** 16),
                       ([conv(1)], (1, 2 ** 8, 2 ** 8), 2 ** 14)]))
    assert r["error"].tolist() == [OVERFLOW, 5, OK]  # 5: IN_CHANNELS
    assert r["flops"][2] == r["macs"][2] == 2 ** 30 * (2 ** 31 - 1)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [(1, 1), (3, 5), (4, 2)])
def test_conv_same_padding_against_torch(kernel, dilation):
    """padding='same' keeps H and W for any kernel and dilation at stride 1 (torch), and a
    stride of 2 on either dimension is refused by torch and is SAME_STRIDE here."""
    tm = torch.nn.Conv2d(4, 6, kernel, padding="same", dilation=dilation)
    y = tm(torch.zeros(2, 4, 9, 11))
    m = cc.Sequential(cc.Conv2d(4, 6, kernel, padding="same", dilation=dilation))
    r = cc.count(cc.pack([m, m], [(4, 9, 11)] * 2, batch_size=2))
    assert r.output_shape[0].tolist() == list(y.shape) + [0]
    assert r.params[0] == sum(p.numel() for p in tm.parameters())
    assert r.macs[0] == y.numel() * 4 * kernel[0] * kernel[1]
    for stride in [(2, 1), (1, 2)]:
        with pytest.raises(ValueError):
            torch.nn.Conv2d(4, 6, kernel, padding="same", stride=stride)
        row = _row("Conv2d", in_=4, out=6, groups=1, k0=kernel[0], k1=kernel[1], s0=stride[0],
                   s1=stride[1], d0=dilation, d1=dilation, flags=F.F_SAME)
        assert _count(_batch([([row], (4, 9, 11), 2)]))["error"].tolist() == [SAME_STRIDE]


def _torch_pool_error(kernel, padding, size):
    """None when torch's MaxPool2d accepts the layer on a (1, 1, size, size) input, else the
    message's kind."""
    try:
        torch.nn.MaxPool2d(kernel, stride=1, padding=padding)(torch.zeros(1, 1, size, size))
    except RuntimeError as e:
        return "padding" if "pad" in str(e) else "size"
    return None


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
def test_pool_padding_and_output_size_against_torch(kernel):
    """Padding p is allowed up to kernel // 2 (p > k // 2, i.e. 2p > k: POOL_PADDING), and an
    output size below 1 (input + 2p < kernel) is OUTPUT_SIZE, each decided like torch, padding
    first; the output size otherwise is torch's. One dimension at a time on the edge."""
    for p in range(4):
        for size in (1, 2, 3, 4):
            expect = {None: OK, "padding": POOL_PADDING, "size": OUTPUT_SIZE}[_torch_pool_error(kernel, p, size)]
            for k, pad in (((kernel, 1), (p, 0)), ((1, kernel), (0, p))):
                row = _row("MaxPool2d", k0=k[0], k1=k[1], s0=1, s1=1, p0=pad[0], p1=pad[1], d0=1, d1=1)
                r = _count(_batch([([row], (1, size, size), 1)]))
                assert r["error"].tolist() == [expect], (k, pad, size)
                if expect == OK:
                    y = torch.nn.MaxPool2d(k, stride=1, padding=pad)(torch.zeros(1, 1, size, size))
                    assert r["output_shape"][0].tolist() == list(y.shape) + [0]
                    assert r["flops"][0] == y.numel() * (k[0] * k[1] - 1)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_pool_output_sizes_against_torch(stride, ceil_mode):
    """MaxPool2d / AvgPool2d output sizes from torch for inputs 1..9, kernels 1..4, padding up
    to kernel // 2, floor and ceil mode."""
    archs, expected = [], []
    for size in range(1, 10):
        for k in range(1, 5):
            for p in range(k // 2 + 1):
                for op in ("MaxPool2d", "AvgPool2d"):
                    tm = getattr(torch.nn, op)(k, stride=stride, padding=p, ceil_mode=ceil_mode)
                    try:
                        shape = list(tm(torch.zeros(1, 2, size, size + 1)).shape) + [0]
                    except RuntimeError:
                        shape = None
                    row = _row(op, k0=k, k1=k, s0=stride, s1=stride, p0=p, p1=p, d0=1, d1=1,
                               flags=F.F_CEIL if ceil_mode else 0)
                    archs.append(([row], (2, size, size + 1), 1))
                    expected.append(shape)
    r = _count(_batch(archs))
    for i, shape in enumerate(expected):
        if shape is None:
            assert r["error"][i] == OUTPUT_SIZE, archs[i]
        else:
            assert r["error"][i] == OK and r["output_shape"][i].tolist() == shape, archs[i]


def test_linear_output_numel_one_pair_at_a_time():
    """Linear(1, out) on inputs of 2 to 5 dims (N and the features first, then 1 to 3 middle
    dims of 2^10): numel(y) = N * 2^(10 m) * out, an OVERFLOW exactly when it passes 2^63 - 1,
    whichever pair of dims (or the odd last one) the product passes it at."""
    archs, expected = [], []
    for middle in range(4):
        shape = (2 ** 10,) * middle + (1,)
        for out in (2 ** 30, 2 ** 31 - 1):
            for n in (2, 2 ** 30):  # (numel(x) + numel(y) stays below 2^63 when numel(y) does)
                numel = n * 2 ** (10 * middle) * out
                archs.append(([_row("Linear", in_=1, out=out)], shape, n))
                expected.append(numel)
    r = _count(_batch(archs))
    for i, numel in enumerate(expected):
        if numel > 2 ** 63 - 1:
            assert r["error"][i] == OVERFLOW, i
        else:
            # FLOPs = numel(y) (2 in - 1) = numel(y), MACs = numel(y) in = numel(y)
            assert r["error"][i] == OK and r["flops"][i] == r["macs"][i] == numel, i
    # both outcomes: N = 2^30 with 1, 2 or 3 middle dims passes 2^63 - 1 (3, 4, 5 dims), the rest fits
    assert [e > 2 ** 63 - 1 for e in expected] == [False] * 4 + [False, True] * 6


def test_linear_against_torch():
    """Linear on (N, F) and (N, T, F): output shape and params from torch; MACs = numel(y) * F,
    FLOPs = numel(y) * (2F - 1 + bias)."""
    for shape in [(2, 7), (2, 3, 7)]:
        for bias in (False, True):
            tm = torch.nn.Linear(7, 5, bias=bias)
            y = tm(torch.zeros(*shape))
            m = cc.Sequential(cc.Linear(7, 5, bias=bias))
            r = cc.count(cc.pack([m, m], [shape[1:]] * 2, batch_size=shape[0]))
            assert r.output_shape[0].tolist() == list(y.shape) + [0] * (5 - y.dim())
            assert r.params[0] == sum(p.numel() for p in tm.parameters())
            assert r.macs[0] == y.numel() * 7
            assert r.flops[0] == y.numel() * (2 * 7 - 1 + bias)


@pytest.mark.parametrize("dims", [(1, -1), (1, 3), (2, 3), (0, -1), (-3, 2), (1, 1)])
def test_flatten_of_feature_maps_against_torch(dims):
    """Flatten on (N, C, H, W) for the straight path (1, -1) / (1, 3) and the others: the output
    shape torch gives, the same elements."""
    y = torch.nn.Flatten(*dims)(torch.zeros(2, 3, 5, 7))
    r = _count(_batch([([_row("Flatten", dim0=dims[0], dim1=dims[1])], (3, 5, 7), 2)]))
    assert r["error"].tolist() == [OK]
    assert r["output_shape"][0].tolist() == list(y.shape) + [0] * (5 - y.dim())
    assert r["activation_elements"][0] == y.numel()  # the output's elements (docs/conventions.md)


def test_flatten_of_feature_map_at_int32_max():
    """nn.Flatten() on (N, C, H, W): an error exactly when C * H * W passes 2^31 - 1 (every
    dimension is int32): (2^15, 2^8, 2^8) merges to 2^31, (2^15 - 1, 2^8, 2^8) to 2^31 - 2^16."""
    flat = _row("Flatten", dim0=1, dim1=-1)
    r = _count(_batch([([flat], (2 ** 15, 2 ** 8, 2 ** 8), 1), ([flat], (2 ** 15 - 1, 2 ** 8, 2 ** 8), 3)]))
    assert r["error"].tolist() == [OVERFLOW, OK]
    assert r["error_layer"].tolist() == [0, -1]
    assert r["output_shape"][1].tolist() == [3, 2 ** 31 - 2 ** 16, 0, 0, 0]


def test_adaptive_pool_negative_size_is_bad_field():
    """AdaptiveAvgPool2d's output size fields: 0 means None (the input's size), a negative one is
    BAD_FIELD (torch refuses it), either of the two; (0, 3) on 6x5 gives 6x3."""
    archs = [([_row("AdaptiveAvgPool2d", k0=a, k1=b)], (2, 6, 5), 1) for a, b in [(-1, 3), (3, -1), (-2 ** 31, -1), (0, 3)]]
    r = _count(_batch(archs))
    assert r["error"].tolist() == [BAD_FIELD, BAD_FIELD, BAD_FIELD, OK]
    assert r["output_shape"][3].tolist() == [1, 2, 6, 3, 0]
    with pytest.raises(RuntimeError):
        torch.nn.AdaptiveAvgPool2d((-1, 3))(torch.zeros(1, 2, 6, 5))


@pytest.mark.parametrize("other", [(4, 6, 5), (1, 6, 5), (4, 1, 5), (4, 6, 1), (4, 1, 1), (3, 6, 5),
                                   (4, 5, 5), (4, 6, 4)])
def test_add_of_feature_maps_against_torch(other):
    """Adding a (N, 4, 6, 5) map to maps equal to it but in one dimension (where a 1 broadcasts
    and anything else is refused), against torch: the output shape, and FLOPs = numel(y)."""
    x = cc.Input((4, 6, 5))
    b = cc.Input(other)
    try:
        want = torch.zeros(2, 4, 6, 5) + torch.zeros(2, *other)
    except RuntimeError:
        with pytest.raises(cc.ShapeError):
            cc.add(x, b)
        return
    r = cc.count(cc.Model([x, b], cc.add(x, b)), batch_size=2)
    assert list(r.output_shape) == list(want.shape)
    assert r.flops == want.numel()
