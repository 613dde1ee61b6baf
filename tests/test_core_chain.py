"""The chain fast path of the core (`_chain_fast` in src/_core.pyx) at the edges of its shortcuts.

The fast path counts a chain of one-input ops with shortcuts the general path does not take: it
bounds the sums once per architecture instead of checking each one, checks a row's structure (SRC,
NSRC, UNUSED/OUTPUT flags) after its op has run, tests the window fields of 2-d ops two at a time,
divides by strides 1 and 2 with a shift and by groups without a branch, and computes an adaptive
pool's gcd in 32 bits. Each test below puts an architecture on one of those edges and holds the
answer to a hand calculation written out here, to PyTorch, and to the general path and the
pure-Python reference (which share no code with the fast path).
"""
import numpy as np
import pytest
import torch

import cnncore as cc
from cnncore import _format as F
from cnncore.counting import run_core, run_reference

OVERFLOW, BAD_FIELD = 19, 3
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_elements",
          "output_shape", "output_ndim", "error", "error_layer")


def _row(op, **fields):
    r = np.zeros(F.N_FIELDS, np.int32)
    r[F.OP] = F.OPS[op]
    r[F.NSRC] = 1
    for name, v in fields.items():
        r[getattr(F, name.rstrip("_").upper())] = v
    return r


def _batch(archs):
    """Packed arrays of architectures given as (rows, input_shape, batch); each row reads the row
    before it (a chain) unless it sets src itself."""
    layers, off, shapes, ndim, batch = [], [0], [], [], []
    for rows, shape, n in archs:
        for k, r in enumerate(rows):
            r = r.copy()
            if r[F.SRC] == 0 and r[F.NSRC] == 1:
                r[F.SRC] = k - 1
            layers.append(r)
        off.append(len(layers))
        shapes.append(list(shape) + [0] * (4 - len(shape)))
        ndim.append(len(shape))
        batch.append(n)
    return cc.Packed.from_arrays(
        layers=np.array(layers, np.int32).reshape(-1, F.N_FIELDS), extra_src=np.zeros(0, np.int32),
        arch_offsets=np.array(off, np.int64), input_offsets=np.arange(len(archs) + 1, dtype=np.int64),
        input_shape=np.array(shapes, np.int64), input_ndim=np.array(ndim, np.int32),
        batch_size=np.array(batch, np.int64)).arrays()


def _count(arrays):
    """The fast path's answers, after checking that the general path and the reference agree."""
    fast = run_core(arrays, n_threads=1)
    general = run_core(arrays, n_threads=1, fast_path=False)
    ref = run_reference(arrays)
    for k in FIELDS:
        assert np.array_equal(fast[k], general[k]), k
        assert np.array_equal(fast[k], ref[k]), k
    return fast


def test_sums_near_int64_max():
    """Linear layers on (N, in) = (2^20, 2^20): each counts 2^62 FLOPs or just under. The fast
    path's bound (bits of the widest count + bits of rows + 1 <= 63) gives up on these, and the
    exact sums decide: 2^63 - 2^40 fits int64, 2^63 does not (OVERFLOW at the row that passes)."""
    n, i, o = 2 ** 20, 2 ** 20, 2 ** 21
    first = _row("Linear", in_=0, out=o, flags=F.F_BIAS)  # flops N*o*(2i - 1 + 1) = 2^62
    fits = _row("Linear", out=i)  # no bias: N*i*(2o - 1) = 2^62 - 2^40
    passes = _row("Linear", out=i, flags=F.F_BIAS)  # N*i*2o = 2^62: the sum is 2^63
    r = _count(_batch([([first, fits], (i,), n), ([first, passes], (i,), n), ([first], (i,), n)]))
    assert r["error"].tolist() == [0, OVERFLOW, 0]
    assert r["error_layer"].tolist() == [-1, 1, -1]
    assert r["flops"][0] == 2 ** 62 + (2 ** 62 - 2 ** 40) == 2 ** 63 - 2 ** 40
    assert r["macs"][0] == n * o * i + n * i * o == 2 ** 62
    assert r["params"][0] == (i * o + o) + o * i
    assert r["activation_elements"][0] == n * o + n * i
    assert r["flops"][2] == 2 ** 62 and r["macs"][2] == 2 ** 61
    assert r["peak_activation_elements"][0] == n * i + n * o  # a layer's input and output together


def test_small_counts_stay_on_the_fast_path_exactly():
    """The same chain at small sizes: hand-counted params, MACs and FLOPs."""
    conv = _row("Conv2d", in_=3, out=8, groups=1, flags=F.F_BIAS, k0=3, k1=3, s0=2, s1=2, p0=1, p1=1,
                d0=1, d1=1)
    bn = _row("BatchNorm2d", in_=8, flags=F.F_AFFINE | F.F_TRACK | F.F_BIAS)
    relu = _row("ReLU")
    r = _count(_batch([([conv, bn, relu], (3, 9, 9), 2)]))
    # conv: out (9 + 2 - 3) // 2 + 1 = 5; y = 2*8*5*5 = 400 elements; dot length 3*3*3 = 27
    assert r["output_shape"][0].tolist() == [2, 8, 5, 5, 0]
    assert r["params"][0] == 8 * 27 + 8 + 2 * 8
    assert r["buffers"][0] == 2 * 8 + 1
    assert r["macs"][0] == 400 * 27
    assert r["flops"][0] == 400 * (2 * 27 - 1 + 1) + 4 * 400 + 400  # conv, BN (4 per element), ReLU
    assert r["activation_elements"][0] == 3 * 400
    assert r["peak_activation_elements"][0] == max(2 * 3 * 81 + 400, 800)


def _not_chain_variants():
    conv = _row("Conv2d", in_=0, out=4, groups=1, k0=3, k1=3, s0=1, s1=1, p0=1, p1=1, d0=1, d1=1)
    relu = _row("ReLU")
    bad = conv.copy()
    bad[F.GROUPS] = 3  # 4 channels, 3 groups: GROUPS error
    skip = relu.copy()
    skip[F.SRC] = -1  # reads the network input, not the row before: no chain (in the middle)
    unused, output = relu.copy(), relu.copy()
    unused[F.FLAGS] = F.F_UNUSED
    output[F.FLAGS] = F.F_OUTPUT
    return [
        [conv, relu, conv],  # a chain
        [conv, output],  # an output on the last row: still a chain
        [conv, output, conv],  # an output before the end: the general path
        [conv, unused, relu],  # an unused row
        [conv, relu, unused],  # an unused last row
        [conv, skip, conv, relu],  # a row that reads the input
        [conv, skip, bad],  # ... followed by an error
        [conv, relu, bad, skip],  # an error before the row that is no chain
    ]


def test_rows_that_are_no_chain_give_the_general_answers():
    arrays = _batch([(rows, (4, 6, 6), 1) for rows in _not_chain_variants()])
    r = _count(arrays)
    assert r["error"].tolist() == [0] * 6 + [6, 6]
    assert r["error_layer"].tolist() == [-1] * 6 + [2, 2]
    # a chain of conv(4 -> 4, 3x3, pad 1) on 4x6x6: 144 outputs x 36 MACs each
    assert r["macs"][0] == 2 * 144 * 36
    assert r["activation_elements"][3] == 144 + 144  # the unused ReLU makes nothing


def test_many_threads_and_chunks_give_one_answer():
    """Dynamic scheduling: architectures of every kind, in an order that puts chains, graphs and
    invalid ones in the same chunks, give the same answers at 1, 2 and 3 threads."""
    archs = [(rows, (4, 6, 6), 1) for rows in _not_chain_variants()] * 97  # 776: not a multiple of 256
    arrays = _batch(archs)
    one = run_core(arrays, n_threads=1)
    for t in (2, 3):
        other = run_core(arrays, n_threads=t)
        for k in FIELDS:
            assert np.array_equal(one[k], other[k]), (t, k)


EDGES = (1, 0, -1, 2 ** 31 - 1, -2 ** 31)


@pytest.mark.parametrize("op", ["Conv2d", "MaxPool2d", "AvgPool2d"])
@pytest.mark.parametrize("field", ["k", "s", "p", "d"])
def test_window_fields_checked_two_at_a_time(op, field):
    """Every pair of values from EDGES in (field0, field1): BAD_FIELD exactly when one of them is
    below its least (kernel, stride, dilation 1; padding 0; an AvgPool has no dilation)."""
    base = dict(k0=3, k1=3, s0=1, s1=1, p0=1, p1=1, d0=1, d1=1)
    if op == "Conv2d":
        base.update(in_=2, out=2, groups=1)
    least = 0 if field == "p" else 1
    archs, expect_bad = [], []
    for a in EDGES:
        for b in EDGES:
            fields = dict(base, **{field + "0": a, field + "1": b})
            archs.append(([_row(op, **fields)], (2, 8, 8), 1))
            expect_bad.append(min(a, b) < least and not (op == "AvgPool2d" and field == "d"))
    r = _count(_batch(archs))
    assert ((r["error"] == BAD_FIELD) == np.array(expect_bad)).all()


def _torch_conv_macs(m, y):
    return y.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]


@pytest.mark.parametrize("stride", [(1, 2), (2, 3), (3, 1), (4, 4)])
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_strides_and_groups_against_torch(stride, groups):
    """Strides 1, 2 (a shift) and more (a divide), groups 1 and more (no branch on 1): the output
    shape and parameter count torch gives, and MACs = output elements x in/groups x kernel."""
    torch.manual_seed(0)
    tm = torch.nn.Conv2d(6, 12, (3, 5), stride=stride, padding=(1, 2), groups=groups, bias=groups == 2)
    x = torch.zeros(2, 6, 17, 23)
    with torch.no_grad():
        y = tm(x)
    model = cc.Sequential(cc.Conv2d(6, 12, (3, 5), stride=stride, padding=(1, 2), groups=groups,
                                    bias=groups == 2), cc.ReLU())
    r = cc.count(cc.pack([model, model], [(6, 17, 23), (6, 17, 23)], batch_size=2))  # the batch path
    assert r.valid.all()
    assert r.output_shape[0].tolist() == list(y.shape) + [0]
    assert r.params[0] == sum(p.numel() for p in tm.parameters())
    assert r.macs[0] == _torch_conv_macs(tm, y)


def _window_sum(n, o):
    # adaptive pooling's windows are [floor(j n / o), ceil((j + 1) n / o)) for j < o
    return sum(-(-(j + 1) * n // o) - (j * n) // o for j in range(o))


@pytest.mark.parametrize("out", [(1, 1), (3, 5), (7, 10), (2, 4)])
def test_adaptive_pool_windows(out):
    """AdaptiveAvgPool2d on 7x10: FLOPs = N C x the windows' sizes summed over each dim (one add
    per element of each window, docs/conventions.md), windows enumerated here from torch's rule;
    the output shape from torch."""
    x = torch.zeros(1, 3, 7, 10)
    y = torch.nn.AdaptiveAvgPool2d(out)(x)
    model = cc.Sequential(cc.AdaptiveAvgPool2d(out))
    r = cc.count(cc.pack([model, model], [(3, 7, 10), (3, 7, 10)]))
    assert r.output_shape[0].tolist() == list(y.shape) + [0]
    assert r.flops[0] == 3 * _window_sum(7, out[0]) * _window_sum(10, out[1])


def test_flatten_merged_dimension_at_int32_max():
    """Flatten(1, -1) keeps the elements and merges the dims: an error exactly when the merged
    dimension passes 2^31 - 1 (every dimension is int32), as torch's sizes would not fit."""
    flat = _row("Flatten", dim0=1, dim1=-1)
    r = _count(_batch([([flat], (2 ** 15, 2 ** 16), 1), ([flat], (2 ** 15, 2 ** 16 - 1), 1),
                       ([flat], (3, 5, 7), 2)]))
    assert r["error"].tolist() == [OVERFLOW, 0, 0]
    assert r["error_layer"].tolist() == [0, -1, -1]
    assert r["output_shape"][1].tolist() == [1, 2 ** 31 - 2 ** 15, 0, 0, 0]
    assert r["output_shape"][2].tolist() == [2, 105, 0, 0, 0]
    assert r["activation_elements"][2] == 2 * 105
