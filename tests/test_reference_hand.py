"""cnncore.reference.count_arrays on hand-built arrays, checked against hand-computed values.

Every expected number below is worked out in a comment from docs/conventions.md (and, for
shapes, from what PyTorch returns), never from the code under test.
"""

from math import ceil, floor

import numpy as np
import struct

import pytest

from cnncore import _format as F
from cnncore.reference import count_arrays

E = F.ERROR_CODES
SPATIAL = {"k": F.K0, "s": F.S0, "p": F.P0, "d": F.D0, "o": F.O0}
SCALAR = {"in_": F.IN, "out": F.OUT, "groups": F.GROUPS, "flags": F.FLAGS, "dim0": F.DIM0,
          "dim1": F.DIM1, "xoff": F.XOFF}


def row(op, src=-1, nsrc=1, **fields):
    """One layer row as a dict {column: value}; k/s/p/d/o take a tuple of spatial values."""
    r = {F.OP: F.OPS[op] if isinstance(op, str) else op, F.SRC: src, F.NSRC: nsrc}
    for name, value in fields.items():
        if name == "scales":  # Upsample scale factors: each float64 as (low, high) int32 words in S_i, D_i
            for i, v in enumerate(value):
                r[F.S0 + i], r[F.D0 + i] = struct.unpack("<ii", struct.pack("<d", v))
        elif name in SPATIAL:
            for i, v in enumerate(value):
                r[SPATIAL[name] + i] = v
        else:
            r[SCALAR[name]] = value
    return r


def conv(d, cin, cout, k, s=1, p=0, dil=1, groups=1, bias=True, same=False, src=-1):
    return row(f"Conv{d}d", src, in_=cin, out=cout, groups=groups,
               flags=F.F_BIAS * bias + F.F_SAME * same, k=(k,) * d if isinstance(k, int) else k,
               s=(s,) * d, p=(p,) * d, d=(dil,) * d)


def arrays(archs):
    """The seven arrays for several architectures: each is (rows, inputs, batch[, extra])."""
    rows, extra, arch_off, in_off, in_shape, in_ndim, batch = [], [], [0], [0], [], [], []
    for arch in archs:
        a_rows, a_inputs, a_batch = arch[:3]
        a_extra = arch[3] if len(arch) > 3 else []
        base = len(extra)
        for r in a_rows:
            r = dict(r)
            if r[F.NSRC] > 1:
                r[F.XOFF] = r.get(F.XOFF, 0) + base
            rows.append(r)
        extra += list(a_extra)
        arch_off.append(len(rows))
        for shape in a_inputs:
            in_shape.append(list(shape) + [0] * (4 - len(shape)))
            in_ndim.append(len(shape))
        in_off.append(len(in_shape))
        batch.append(a_batch)
    layers = np.zeros((len(rows), F.N_FIELDS), np.int32)
    for i, r in enumerate(rows):
        for col, v in r.items():
            layers[i, col] = v
    return {
        "layers": layers,
        "extra_src": np.array(extra, np.int32),
        "arch_offsets": np.array(arch_off, np.int64),
        "input_offsets": np.array(in_off, np.int64),
        "input_shape": np.array(in_shape, np.int64).reshape(-1, 4),
        "input_ndim": np.array(in_ndim, np.int32),
        "batch_size": np.array(batch, np.int64),
    }


def run(rows, inputs=((3, 8, 8),), batch=1, extra=(), per_layer=True):
    """count_arrays of one architecture; returns (per-arch dict of scalars, full result)."""
    res = count_arrays(arrays([(rows, inputs, batch, extra)]), per_layer=per_layer)
    return {k: v[0] for k, v in res.items() if not k.startswith("layer_")}, res


def shape(res):
    return tuple(res["output_shape"][: res["output_ndim"]])


def assert_error(rows, code, layer, **kw):
    r, full = run(rows, **kw)
    assert (r["error"], r["error_layer"]) == (E[code], layer), (r["error"], r["error_layer"])
    assert r["params"] == r["macs"] == r["flops"] == r["buffers"] == r["activation_elements"] == 0
    assert r["output_shape"] == [0] * 5 and r["output_ndim"] == 0
    # per-layer: rows from the failing one on are all zero
    for g in range(max(layer, 0), len(rows)):
        assert full["layer_shape"][g] == [0] * 5 and full["layer_ndim"][g] == 0
        assert full["layer_params"][g] == full["layer_macs"][g] == full["layer_flops"][g] == 0
    return full


# ---- valid layers -----------------------------------------------------------------------------


def test_conv2d_3_10_3():
    r, full = run([conv(2, 3, 10, 3)], inputs=[(3, 8, 8)])
    assert r["error"] == 0 and r["error_layer"] == -1
    # params = 10*3*3*3 + 10 = 280; y = (8 - 3)//1 + 1 = 6 -> (1, 10, 6, 6)
    assert r["params"] == 280
    assert shape(r) == (1, 10, 6, 6) and r["output_shape"] == [1, 10, 6, 6, 0]
    # n = 3*9 = 27; macs = 10*6*6*27 = 9720; flops = 360*(2*27 - 1 + 1) = 19440
    assert r["macs"] == 10 * 6 * 6 * 27 == 9720
    assert r["flops"] == 19440
    assert r["activation_elements"] == 360 and r["buffers"] == 0
    assert full["layer_params"] == [280] and full["layer_shape"] == [[1, 10, 6, 6, 0]]
    assert full["layer_ndim"] == [4] and full["layer_macs"] == [9720]


def test_linear_1024_512():
    r, _ = run([row("Linear", in_=1024, out=512, flags=F.F_BIAS)], inputs=[(1024,)], batch=2)
    # params = 1024*512 + 512 = 524,800; y = (2, 512)
    assert r["params"] == 524_800
    assert shape(r) == (2, 512)
    # macs = numel(y)*IN = 1024*1024 = 1,048,576; flops = 1024*(2048 - 1 + 1) = 2,097,152
    assert r["macs"] == 1_048_576 and r["flops"] == 2_097_152


def test_linear_lazy_and_leading_dims():
    # Linear(lazy -> 5), no bias, on (N=2, 4, 7): IN := 7; y = (2, 4, 5); params = 35
    r, _ = run([row("Linear", in_=0, out=5)], inputs=[(4, 7)], batch=2)
    assert shape(r) == (2, 4, 5) and r["params"] == 35
    # macs = 40*7 = 280; flops = 40*(14 - 1) = 520
    assert r["macs"] == 280 and r["flops"] == 520


def test_conv_5x5_64_128():
    r, _ = run([conv(2, 64, 128, 5, bias=False)], inputs=[(64, 32, 32)])
    # weights = 128*64*5*5 = 204,800; y = 32 - 5 + 1 = 28
    assert r["params"] == 204_800 and shape(r) == (1, 128, 28, 28)
    # macs = 128*28*28 * 64*25 = 100,352 * 1600 = 160,563,200; flops = 100,352*(3200 - 1)
    assert r["macs"] == 160_563_200
    assert r["flops"] == 100_352 * 3199


def test_conv_padding_dilation_groups_stride():
    # Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4, bias) on 8x9x9, batch 2
    # y = (9 + 4 - 2*2 - 1)//2 + 1 = 8//2 + 1 = 5; n = 8/4 * 9 = 18
    # params = 16*18 + 16 = 304; macs = 2*16*5*5*18 = 14,400; flops = 800*(36 - 1 + 1) = 28,800
    r, _ = run([conv(2, 8, 16, 3, s=2, p=2, dil=2, groups=4)], inputs=[(8, 9, 9)], batch=2)
    assert shape(r) == (2, 16, 5, 5)
    assert (r["params"], r["macs"], r["flops"]) == (304, 14_400, 28_800)


def test_conv_same_and_lazy_1d_3d():
    # Conv1d(lazy, 4, 4, padding='same', dilation=3) on 2x10: y = 10; n = 2*4 = 8
    # params = 4*8 + 4 = 36; macs = 4*10*8 = 320
    r, _ = run([conv(1, 0, 4, 4, dil=3, same=True)], inputs=[(2, 10)])
    assert shape(r) == (1, 4, 10) and r["params"] == 36 and r["macs"] == 320
    # Conv3d(1, 2, (1, 2, 3), no bias) on 1x3x4x5 -> (3, 3, 3); params = 2*6 = 12; macs = 54*6 = 324
    r, _ = run([conv(3, 1, 2, (1, 2, 3), bias=False)], inputs=[(1, 3, 4, 5)])
    assert shape(r) == (1, 2, 3, 3, 3) and r["params"] == 12 and r["macs"] == 324


def test_conv_transpose2d():
    # ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1, bias) on 16x5x5
    # y = (5-1)*2 - 2 + 1*2 + 1 + 1 = 10; params = 16*8*9 + 8 = 1160
    # macs = numel(x)*8*9 = 400*72 = 28,800; flops = 2*28,800 + numel(y)=800 -> 58,400
    rr = row("ConvTranspose2d", in_=16, out=8, groups=1, flags=F.F_BIAS, k=(3, 3), s=(2, 2),
             p=(1, 1), d=(1, 1), o=(1, 1))
    r, _ = run([rr], inputs=[(16, 5, 5)])
    assert shape(r) == (1, 8, 10, 10)
    assert (r["params"], r["macs"], r["flops"]) == (1160, 28_800, 58_400)


def test_maxpool_alexnet():
    rr = row("MaxPool2d", k=(3, 3), s=(2, 2), p=(0, 0), d=(1, 1))
    r, _ = run([rr], inputs=[(96, 55, 55)])
    # y = (55 - 2 - 1)//2 + 1 = 27; flops = 96*27*27*(9 - 1) = 559,872
    assert shape(r) == (1, 96, 27, 27)
    assert r["flops"] == 96 * 27 * 27 * 8 == 559_872
    assert r["params"] == r["macs"] == 0


def test_pool_ceil_mode():
    # torch: MaxPool2d(2, 2, ceil_mode=True)(zeros(1, 1, 5, 5)).shape == (1, 1, 3, 3)
    # num = 5 - 1 - 1 = 3; (3 + 1)//2 + 1 = 3; (3-1)*2 = 4 >= 5 + 0? no -> 3
    ceil_pool = row("MaxPool2d", k=(2, 2), s=(2, 2), d=(1, 1), flags=F.F_CEIL)
    r, _ = run([ceil_pool], inputs=[(1, 5, 5)])
    assert shape(r) == (1, 1, 3, 3) and r["flops"] == 9 * 3
    # floor mode: 3//2 + 1 = 2
    r, _ = run([row("MaxPool2d", k=(2, 2), s=(2, 2), d=(1, 1))], inputs=[(1, 5, 5)])
    assert shape(r) == (1, 1, 2, 2)
    # torch: MaxPool1d(2, 3, padding=1, ceil_mode=True) on length 4 -> 2 (the last window is dropped)
    # num = 4 + 2 - 1 - 1 = 4; (4 + 2)//3 + 1 = 3; (3-1)*3 = 6 >= 4 + 1 -> 2
    r, _ = run([row("MaxPool1d", k=(2,), s=(3,), p=(1,), d=(1,), flags=F.F_CEIL)], inputs=[(1, 4)])
    assert shape(r) == (1, 1, 2)


def test_avgpool_ignores_dilation():
    # AvgPool2d(3, 2, padding=1) on 4x7x7, D fields garbage (ignored): y = (7 + 2 - 2 - 1)//2 + 1 = 4
    # flops = 4*4*4*9 = 576
    r, _ = run([row("AvgPool2d", k=(3, 3), s=(2, 2), p=(1, 1), d=(0, -5))], inputs=[(4, 7, 7)])
    assert r["error"] == 0 and shape(r) == (1, 4, 4, 4) and r["flops"] == 576


def _window_sum(n_in, n_out):
    return sum(ceil((j + 1) * n_in / n_out) - floor(j * n_in / n_out) for j in range(n_out))


def test_adaptive_pool():
    # AdaptiveAvgPool2d((3, 3)) on 2x5x5, batch 2: windows [0,2) [1,4) [3,5) -> w = 2 + 3 + 2 = 7
    # flops = N*C*7*7 = 2*2*49 = 196; Max: 196 - numel(y) = 196 - 36 = 160
    r, _ = run([row("AdaptiveAvgPool2d", k=(3, 3))], inputs=[(2, 5, 5)], batch=2)
    assert shape(r) == (2, 2, 3, 3) and r["flops"] == 196
    r, _ = run([row("AdaptiveMaxPool2d", k=(3, 3))], inputs=[(2, 5, 5)], batch=2)
    assert r["flops"] == 160
    # K = (0, 1) = (None, 1) on 1x4x6: y = (4, 1); w = (4, 6); flops = 24 (global avg over W)
    r, _ = run([row("AdaptiveAvgPool2d", k=(0, 1))], inputs=[(1, 4, 6)])
    assert shape(r) == (1, 1, 4, 1) and r["flops"] == 24


@pytest.mark.parametrize("n_in", range(1, 13))
@pytest.mark.parametrize("n_out", range(1, 13))
def test_adaptive_window_sum_matches_brute_force(n_in, n_out):
    # windows [floor(j*in/out), ceil((j+1)*in/out)), summed by brute force over j
    r, _ = run([row("AdaptiveAvgPool1d", k=(n_out,))], inputs=[(1, n_in)])
    assert r["flops"] == _window_sum(n_in, n_out)


def test_batchnorm_layernorm_groupnorm():
    # BatchNorm2d(16) affine (weight + bias) + track on 16x4x4: params 32, buffers 33, flops 256*(2 + 2) = 1024
    bn = row("BatchNorm2d", in_=16, flags=F.F_AFFINE | F.F_TRACK | F.F_BIAS)
    r, _ = run([bn], inputs=[(16, 4, 4)])
    assert (r["params"], r["buffers"], r["flops"]) == (32, 33, 1024)
    # torch's BatchNorm2d(16, bias=False): weight only: params 16, flops 256*(2 + 1) = 768
    r, _ = run([row("BatchNorm2d", in_=16, flags=F.F_AFFINE | F.F_TRACK)], inputs=[(16, 4, 4)])
    assert (r["params"], r["buffers"], r["flops"]) == (16, 33, 768)
    # BatchNorm1d(lazy) without affine/track on (N=2, 5, 3): flops = 30*2 = 60
    r, _ = run([row("BatchNorm1d", in_=0)], inputs=[(5, 3)], batch=2)
    assert (r["params"], r["buffers"], r["flops"]) == (0, 0, 60)
    # LayerNorm((4, 6)) affine, no bias, on 3x4x6: params 24*(1 + 0) = 24; flops 72*(5 + 2) = 504
    ln = row("LayerNorm", dim0=2, k=(4, 6), flags=F.F_AFFINE)
    r, _ = run([ln], inputs=[(3, 4, 6)])
    assert (r["params"], r["flops"]) == (24, 504)
    # with bias: 48 params
    ln = row("LayerNorm", dim0=2, k=(4, 6), flags=F.F_AFFINE | F.F_BIAS)
    assert run([ln], inputs=[(3, 4, 6)])[0]["params"] == 48
    # GroupNorm(2, 6) affine on 6x2x2: params 12; flops 24*7 = 168
    gn = row("GroupNorm", groups=2, in_=6, flags=F.F_AFFINE | F.F_BIAS)
    r, _ = run([gn], inputs=[(6, 2, 2)])
    assert (r["params"], r["flops"]) == (12, 168)


def test_activations_and_prelu():
    # per element: ReLU 1, ReLU6 2, LeakyReLU 2, ELU 4, GELU 5, SiLU 4, Sigmoid 3, Tanh 1,
    # Hardswish 5, Hardsigmoid 4 -> sum 31 over a chain on 2x3x5 (30 elements): 930
    names = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
             "Hardsigmoid"]
    rows = [row(n, src=i - 1 if i else -1) for i, n in enumerate(names)]
    r, full = run(rows, inputs=[(2, 3, 5)])
    assert r["flops"] == 31 * 30 and r["activation_elements"] == 10 * 30
    assert full["layer_flops"] == [30 * c for c in (1, 2, 2, 4, 5, 4, 3, 1, 5, 4)]
    # PReLU(2) on 2x3x5: params 2, flops 60; PReLU(1) works on any shape
    r, _ = run([row("PReLU", in_=2)], inputs=[(2, 3, 5)])
    assert (r["params"], r["flops"]) == (2, 60)
    assert run([row("PReLU", in_=1)], inputs=[(7,)])[0]["params"] == 1


def test_softmax():
    # Softmax(dim=-1) on (1, 4, 10): 3*40 - 40/10 = 116
    r, _ = run([row("Softmax", dim0=-1)], inputs=[(4, 10)])
    assert r["flops"] == 116
    # implicit dim on ndim 3 -> 0: 3*40 - 40/1 = 80; on ndim 2 (1, 10) -> 1: 30 - 1 = 29
    assert run([row("Softmax", flags=F.F_IMPLICIT_DIM, dim0=99)], inputs=[(4, 10)])[0]["flops"] == 80
    assert run([row("Softmax", flags=F.F_IMPLICIT_DIM)], inputs=[(10,)])[0]["flops"] == 29


def test_flatten_and_glue():
    # Flatten() = (1, -1) on (2, 3, 4, 5) -> (2, 60); Flatten(0, -1) -> (120,)
    r, _ = run([row("Flatten", dim0=1, dim1=-1)], inputs=[(3, 4, 5)], batch=2)
    assert shape(r) == (2, 60) and r["flops"] == 0 and r["activation_elements"] == 120
    assert shape(run([row("Flatten", dim0=0, dim1=-1)], inputs=[(3, 4, 5)], batch=2)[0]) == (120,)
    # Flatten(-3, -2) on (2, 3, 4, 5) -> (2, 12, 5)
    assert shape(run([row("Flatten", dim0=-3, dim1=-2)], inputs=[(3, 4, 5)], batch=2)[0]) == (2, 12, 5)
    # ZeroPad2d(1, 2, 3, -1) on 3x8x8: W = 8 + 1 + 2 = 11, H = 8 + 3 - 1 = 10
    zp = {**row("ZeroPad2d", p=(1, 2, 3)), F.D0: -1}
    assert shape(run([zp])[0]) == (1, 3, 10, 11)
    # ChannelShuffle(3) on 6x2x2: shape unchanged, flops 0
    r, _ = run([row("ChannelShuffle", groups=3)], inputs=[(6, 2, 2)])
    assert shape(r) == (1, 6, 2, 2) and r["flops"] == 0
    # Identity on 3x8x8
    assert shape(run([row("Identity")])[0]) == (1, 3, 8, 8)


def test_upsample():
    # bilinear, scale 2 = 2/1 on 3x8x8 -> 3x16x16; flops = 768*7 = 5376
    up = row("Upsample", dim0=2, scales=(2/1, 2/1,))
    r, _ = run([up])
    assert shape(r) == (1, 3, 16, 16) and r["flops"] == 5376
    # nearest, scale 3/2 on 1x5: floor(5*1.5) = 7 (torch agrees); flops 0
    r, _ = run([row("Upsample", dim0=0, scales=(3/2,))], inputs=[(1, 5)])
    assert shape(r) == (1, 1, 7) and r["flops"] == 0
    # trilinear size (2, 3, 4) on 1x1x1x1: numel(y) = 24; flops = 24*15 = 360
    r, _ = run([row("Upsample", dim0=4, k=(2, 3, 4))], inputs=[(1, 1, 1, 1)])
    assert shape(r) == (1, 1, 2, 3, 4) and r["flops"] == 360
    # bicubic size (4, 4) on 2x2x2: 32 outputs * 31 = 992
    assert run([row("Upsample", dim0=3, k=(4, 4))], inputs=[(2, 2, 2)])[0]["flops"] == 992


def test_residual_add_mul_cat_slice():
    # x (3x8x8) -> conv 3->3 k1 (params 12) -> Add(x, conv) -> Cat(x, add) on dim 1 -> Slice(1, 2, 3)
    rows = [
        conv(2, 3, 3, 1),  # 0: (1, 3, 8, 8), macs 192*3 = 576
        {**row("Add", src=0, nsrc=2), F.XOFF: 0},  # 1: extra[0] = -1 (the input); flops 192
        {**row("Cat", src=-1, nsrc=2, dim0=-3), F.XOFF: 1},  # 2: extra[1] = 1 -> (1, 6, 8, 8)
        row("Slice", src=2, dim0=1, k=(2, 3)),  # 3: (1, 3, 8, 8)
    ]
    r, full = run(rows, extra=[-1, 1])
    assert r["error"] == 0 and shape(r) == (1, 3, 8, 8)
    assert full["layer_shape"][2] == [1, 6, 8, 8, 0]
    assert r["params"] == 12 and r["macs"] == 576
    # flops: conv 192*(2*3 - 1 + 1) = 1152, add 192 -> 1344
    assert r["flops"] == 1344
    # activations: 192 + 192 + 384 + 192 = 960
    assert r["activation_elements"] == 960


def test_broadcasting_mul():
    # (2, 4, 1, 5) * (2, 1, 3, 1) -> (2, 4, 3, 5); flops = numel(y) = 120
    mul = {**row("Mul", src=-1, nsrc=2), F.XOFF: 0}
    r, _ = run([mul], inputs=[(4, 1, 5), (1, 3, 1)], batch=2, extra=[-2])
    assert shape(r) == (2, 4, 3, 5) and r["flops"] == 120
    # different ranks, aligned from the right: (2, 3, 2, 5) + (2, 5) -> (2, 3, 2, 5); flops 60
    add = {**row("Add", src=-1, nsrc=2), F.XOFF: 0}
    r, _ = run([add], inputs=[(3, 2, 5), (5,)], batch=2, extra=[-2])
    assert shape(r) == (2, 3, 2, 5) and r["flops"] == 60
    # (2, 4, 1, 5) + (2, 3, 1) is not broadcastable: 4 vs 2 (torch raises)
    assert_error([add], "BROADCAST", 0, inputs=[(4, 1, 5), (3, 1)], batch=2, extra=[-2])


def test_empty_architecture_and_multi_arch():
    packed = arrays([
        ([], [(3, 4)], 5),  # identity network: output = (5, 3, 4)
        ([conv(2, 3, 4, 3), conv(2, 5, 4, 1, src=0)], [(3, 8, 8)], 1),  # layer 1: IN_CHANNELS
        ([row("ReLU")], [(7,)], 2),  # (2, 7), flops 14
    ])
    res = count_arrays(packed, per_layer=True)
    assert res["output_shape"][0] == [5, 3, 4, 0, 0] and res["output_ndim"][0] == 3
    assert res["params"][0] == res["flops"][0] == res["activation_elements"][0] == 0
    assert res["error"] == [0, E["IN_CHANNELS"], 0] and res["error_layer"] == [-1, 1, -1]
    assert res["params"][1] == 0 and res["output_ndim"][1] == 0
    # global rows: 0, 1 (arch 1), 2 (arch 2); row 0 keeps its values, row 1 is zero
    assert res["layer_params"] == [3 * 4 * 9 + 4, 0, 0]
    assert res["layer_shape"] == [[1, 4, 6, 6, 0], [0] * 5, [2, 7, 0, 0, 0]]
    assert res["layer_ndim"] == [4, 0, 2]
    assert res["layer_flops"][2] == 14 and res["flops"][2] == 14
    assert "layer_params" not in count_arrays(packed)


def test_accepts_nested_lists():
    packed = {k: v.tolist() for k, v in arrays([([conv(2, 3, 10, 3)], [(3, 8, 8)], 1)]).items()}
    assert count_arrays(packed)["params"] == [280]


# ---- errors -----------------------------------------------------------------------------------


def test_unknown_op():
    assert_error([row("ReLU"), row(99, src=0)], "UNKNOWN_OP", 1)
    assert_error([row(F.N_OPS)], "UNKNOWN_OP", 0)
    assert_error([row(-1)], "UNKNOWN_OP", 0)


def test_bad_input_ref():
    assert_error([row("ReLU", src=0)], "BAD_INPUT_REF", 0)  # itself
    assert_error([row("ReLU"), row("ReLU", src=2)], "BAD_INPUT_REF", 1)  # a later layer
    assert_error([row("ReLU", src=-2)], "BAD_INPUT_REF", 0)  # only one network input
    # Add whose extra input is outside extra_src, or refers to a missing input
    assert_error([{**row("Add", nsrc=2), F.XOFF: 1}], "BAD_INPUT_REF", 0, extra=[-1])
    assert_error([{**row("Add", nsrc=2), F.XOFF: -1}], "BAD_INPUT_REF", 0, extra=[-1])
    assert_error([{**row("Add", nsrc=2), F.XOFF: 0}], "BAD_INPUT_REF", 0, extra=[-3])
    # inputs are resolved before the op code is looked up
    assert_error([row(99, src=5)], "BAD_INPUT_REF", 0)


def test_bad_field():
    assert_error([conv(2, 3, 0, 3)], "BAD_FIELD", 0)  # out_channels 0
    assert_error([conv(2, 3, 4, 0)], "BAD_FIELD", 0)  # kernel 0
    assert_error([conv(2, 3, 4, 3, p=-1)], "BAD_FIELD", 0)
    assert_error([conv(2, 3, 4, 3, groups=0)], "BAD_FIELD", 0)
    assert_error([row("Linear", in_=-1, out=3)], "BAD_FIELD", 0)
    assert_error([row("MaxPool2d", k=(2, 2), s=(0, 2), d=(1, 1))], "BAD_FIELD", 0)
    assert_error([row("LayerNorm", dim0=4, k=(8, 8, 8))], "BAD_FIELD", 0)
    assert_error([row("Upsample", dim0=5, scales=(2/1, 2/1,))], "BAD_FIELD", 0)
    assert_error([row("Slice", dim0=1, k=(0, 0))], "BAD_FIELD", 0)  # length 0
    # wrong number of inputs: Add with 1 input, ReLU with 2, Cat with 0
    assert_error([row("Add")], "BAD_FIELD", 0)
    assert_error([{**row("ReLU", nsrc=2), F.XOFF: 0}], "BAD_FIELD", 0, extra=[-1])
    assert_error([row("Cat", nsrc=0)], "BAD_FIELD", 0)


def test_bad_header_values_do_not_crash():
    good = arrays([([row("ReLU")], [(3, 4)], 2)])
    for key, value in [("batch_size", [0]), ("batch_size", [2**31]), ("input_ndim", [0]),
                       ("input_ndim", [5]), ("input_shape", [[3, -4, 0, 0]]),
                       ("input_shape", [[3, 2**31, 0, 0]]), ("arch_offsets", [0, 2]),
                       ("input_offsets", [0, 0])]:
        bad = dict(good, **{key: np.array(value, good[key].dtype)})
        res = count_arrays(bad, per_layer=True)
        # a bad network input or header is no layer's fault: error_layer -1
        assert (res["error"], res["error_layer"]) == ([E["BAD_FIELD"]], [-1]), key
        assert res["layer_ndim"] == [0]


def test_ndim_and_in_channels():
    assert_error([conv(2, 3, 4, 3)], "NDIM", 0, inputs=[(3, 8)])
    assert_error([row("BatchNorm1d", in_=3)], "NDIM", 0, inputs=[(3, 8, 8)])
    # ZeroPad2d pads the last two dims, so torch needs >= 2 dims: (N, 8) is fine, a Flatten(0) output is not
    assert_error([row("Flatten", dim0=0, dim1=-1), row("ZeroPad2d", src=0, p=(1, 1, 1))], "NDIM", 1, inputs=[(8,)])
    assert_error([row("Upsample", dim0=2, scales=(2/1, 2/1,))], "NDIM", 0, inputs=[(3, 8)])
    assert_error([conv(2, 4, 8, 3)], "IN_CHANNELS", 0)  # 3 channels arrive
    assert_error([row("Linear", in_=5, out=2)], "IN_CHANNELS", 0, inputs=[(4,)])
    assert_error([row("PReLU", in_=4)], "IN_CHANNELS", 0)


def test_groups_kernel_padding_same_output_padding():
    assert_error([conv(2, 6, 9, 3, groups=4)], "GROUPS", 0, inputs=[(6, 8, 8)])
    assert_error([conv(2, 6, 9, 3, groups=2)], "GROUPS", 0, inputs=[(6, 8, 8)])  # 9 % 2
    assert_error([conv(2, 3, 4, 9)], "KERNEL_TOO_LARGE", 0)  # 8 < 9
    assert_error([conv(2, 3, 4, 5, dil=2)], "KERNEL_TOO_LARGE", 0)  # 8 < 2*4 + 1
    assert run([conv(2, 3, 4, 9, p=1)])[0]["error"] == 0  # padded 10 >= 9
    assert_error([row("MaxPool2d", k=(2, 2), s=(2, 2), p=(2, 2), d=(1, 1))], "POOL_PADDING", 0)
    assert_error([conv(2, 3, 4, 3, s=2, same=True)], "SAME_STRIDE", 0)
    ct = row("ConvTranspose2d", in_=3, out=4, groups=1, k=(3, 3), s=(2, 2), d=(1, 1), o=(2, 0))
    assert_error([ct], "OUTPUT_PADDING", 0)  # 2 >= stride 2 and 2 >= dilation 1


def test_output_size():
    # MaxPool2d(3, 1, dilation 4) on 8x8: (8 - 8 - 1)//1 + 1 = 0
    assert_error([row("MaxPool2d", k=(3, 3), s=(1, 1), d=(4, 4))], "OUTPUT_SIZE", 0)
    # ConvTranspose2d k1 s1 p1 on 1x1: (0)*1 - 2 + 0 + 0 + 1 = -1
    ct = row("ConvTranspose2d", in_=3, out=3, groups=1, k=(1, 1), s=(1, 1), p=(1, 1), d=(1, 1))
    assert_error([ct], "OUTPUT_SIZE", 0, inputs=[(3, 1, 1)])
    assert_error([{**row("ZeroPad2d", p=(-4, -4, 0)), F.D0: 0}], "OUTPUT_SIZE", 0)
    # nearest scale 1/3 on length 2 -> floor(2/3) = 0
    assert_error([row("Upsample", dim0=0, scales=(1/3,))], "OUTPUT_SIZE", 0, inputs=[(1, 2)])


def test_norm_and_shape_errors():
    assert_error([row("LayerNorm", dim0=1, k=(7,))], "NORM_SHAPE", 0)
    assert_error([row("LayerNorm", dim0=3, k=(1, 2, 3))], "NORM_SHAPE", 0, inputs=[(3,)])
    assert_error([row("GroupNorm", groups=4, in_=6)], "NORM_GROUPS", 0, inputs=[(6, 2, 2)])
    assert_error([row("GroupNorm", groups=2, in_=4, flags=F.F_AFFINE)], "IN_CHANNELS", 0, inputs=[(6, 2, 2)])
    # without affine torch has no per-channel tensor: only num_groups must divide the channels
    assert count_arrays(arrays([([row("GroupNorm", groups=2, in_=4)], [(6, 2, 2)], 1)]))["error"] == [0]
    assert_error([row("GroupNorm", groups=4, in_=4)], "NORM_GROUPS", 0, inputs=[(6, 2, 2)])
    # statistics over one value: GroupNorm(3, 3) on (1, 3, 1): numel / groups = 1; BatchNorm without running stats on (1, 5)
    assert_error([row("GroupNorm", groups=3, in_=3)], "SINGLE_VALUE", 0, inputs=[(3, 1)])
    assert_error([row("BatchNorm1d", in_=5)], "SINGLE_VALUE", 0, inputs=[(5,)])
    assert count_arrays(arrays([([row("BatchNorm1d", in_=5, flags=F.F_TRACK)], [(5,)], 1)]))["error"] == [0]
    assert_error([row("Softmax", dim0=4)], "DIM_RANGE", 0)  # ndim 4: dims -4..3
    assert_error([row("Softmax", dim0=-5)], "DIM_RANGE", 0)
    assert_error([row("Flatten", dim0=1, dim1=4)], "DIM_RANGE", 0)
    assert_error([row("Flatten", dim0=3, dim1=1)], "FLATTEN_ORDER", 0)
    assert_error([row("Flatten", dim0=-1, dim1=-2)], "FLATTEN_ORDER", 0)
    add = {**row("Add", nsrc=2), F.XOFF: 0}
    assert_error([add], "BROADCAST", 0, inputs=[(3, 8, 8), (4, 8, 8)], extra=[-2])
    cat = {**row("Cat", nsrc=2, dim0=1), F.XOFF: 0}
    assert_error([cat], "CAT_SHAPE", 0, inputs=[(3, 8, 8), (3, 8, 7)], extra=[-2])
    assert_error([cat], "CAT_SHAPE", 0, inputs=[(3, 8, 8), (3, 8)], extra=[-2])
    assert_error([{**cat, F.DIM0: 4}], "DIM_RANGE", 0, inputs=[(3, 8, 8), (3, 8, 8)], extra=[-2])
    assert_error([row("ChannelShuffle", groups=2)], "SHUFFLE_GROUPS", 0)  # 3 channels
    assert_error([row("Slice", dim0=1, k=(2, 2))], "SLICE_RANGE", 0)  # 2 + 2 > 3
    assert_error([row("Slice", dim0=4, k=(0, 1))], "DIM_RANGE", 0)


def test_upsample_modes_and_errors():
    # size mode when K0 != 0 (the scale fields are then ignored), entries beyond s ignored
    r, _ = run([row("Upsample", dim0=2, k=(4, 5, 9), scales=(2/1, 2/1,))])
    assert shape(r) == (1, 3, 4, 5)
    # DIM1 = number of entries the user gave: 0 or s (= 2 here)
    assert shape(run([row("Upsample", dim0=2, dim1=2, scales=(1/1, 3/2,))])[0]) == (1, 3, 8, 12)
    assert_error([row("Upsample", dim0=2, dim1=1, scales=(2/1, 2/1,))], "UPSAMPLE", 0)
    assert_error([row("Upsample", dim0=2, dim1=3, k=(4, 4, 4))], "UPSAMPLE", 0)
    assert_error([row("Upsample", dim0=2)], "UPSAMPLE", 0)  # neither size nor scale
    assert_error([row("Upsample", dim0=2, k=(4, 0))], "UPSAMPLE", 0)  # a size < 1
    assert_error([row("Upsample", dim0=2, scales=(2.0, float("inf")))], "UPSAMPLE", 0)  # not finite
    assert_error([row("Upsample", dim0=2, scales=(2/1, -1/1,))], "UPSAMPLE", 0)
    assert_error([row("Upsample", dim0=2, scales=(2.0, float("nan")))], "UPSAMPLE", 0)
    assert_error([row("Upsample", dim0=2, scales=(2.0, 0.0))], "UPSAMPLE", 0)
    # torch's float64 rule, not exact fractions: floor(10 * 0.7) is 7 in float64 (exactly 7.000000000000001)
    assert shape(run([row("Upsample", dim0=0, scales=(0.7,))], inputs=[(3, 10)])[0]) == (1, 3, 7)


def test_check_order():
    # Conv: BAD_FIELD before SAME_STRIDE before NDIM before IN_CHANNELS before GROUPS before KERNEL
    assert_error([conv(2, 5, 0, 3, s=2, same=True)], "BAD_FIELD", 0, inputs=[(3, 8)])
    assert_error([conv(2, 5, 4, 3, s=2, same=True)], "SAME_STRIDE", 0, inputs=[(3, 8)])
    assert_error([conv(2, 5, 4, 3)], "NDIM", 0, inputs=[(3, 8)])
    assert_error([conv(2, 5, 4, 30, groups=3)], "IN_CHANNELS", 0)
    assert_error([conv(2, 3, 4, 30, groups=3)], "GROUPS", 0)
    # pooling: POOL_PADDING before NDIM
    assert_error([row("MaxPool2d", k=(2, 2), s=(1, 1), p=(3, 3), d=(1, 1))], "POOL_PADDING", 0,
                 inputs=[(3,)])
    # GroupNorm: NORM_GROUPS before NDIM
    assert_error([row("GroupNorm", groups=4, in_=6)], "NORM_GROUPS", 0, inputs=[(6,)])
    # the first failing layer wins; layer 0 keeps its values
    full = assert_error([row("ReLU"), conv(2, 4, 4, 3, src=0), row("Softmax", src=1, dim0=9)],
                        "IN_CHANNELS", 1)
    assert full["layer_shape"][0] == [1, 3, 8, 8, 0] and full["layer_flops"][0] == 192


M = 2**31 - 1  # the largest dimension


def test_overflow():
    # input numel M^3 ~ 2^93 > int64 -> OVERFLOW before any layer (error_layer -1)
    assert_error([row("ReLU")], "OVERFLOW", -1, inputs=[(M, M, M)])
    assert_error([], "OVERFLOW", -1, inputs=[(M, M, M)])
    # input (M, M) has numel M^2 = 2^62 - 2^32 + 1 (fits); Linear(lazy IN = M -> 4): params 4M
    # fits, but macs = numel(y)*IN = 4M * M ~ 2^64 -> OVERFLOW at layer 1; layer 0 (ReLU) keeps M^2
    full = assert_error([row("ReLU"), row("Linear", src=0, out=4)], "OVERFLOW", 1, inputs=[(M, M)])
    assert full["layer_flops"][0] == M * M
    # ReLU6 flops 2 M^2 = 2^63 - 2^33 + 2 (fits); + ReLU's M^2: the running total 3 M^2 does not
    full = assert_error([row("ReLU6"), row("ReLU", src=0)], "OVERFLOW", 1, inputs=[(M, M)])
    assert full["layer_flops"][0] == 2 * M * M == 2**63 - 2**33 + 2
    # Softmax(dim=0) on n = M^2 with x[0] = 1: the result 3n - n = 2n would fit, but the step
    # 3n does not -> OVERFLOW (intermediate products are checked)
    assert 2 * M * M <= 2**63 - 1 < 3 * M * M
    assert_error([row("Softmax", dim0=0)], "OVERFLOW", 0, inputs=[(M, M)])
    # Upsample output numel: 8 channels * M^2 ~ 2^65
    assert_error([row("Upsample", dim0=2, k=(M, M))], "OVERFLOW", 0, inputs=[(8, 1, 1)])
    # the largest valid value: ReLU on numel 2^63 - 1 = 7^2 * 73 * 127 * 337 * 92737 * 649657
    assert 7 * 7 * 73 * 127 * 337 * 92737 * 649657 == 2**63 - 1
    big = [(7 * 7 * 73 * 127, 337 * 92737, 649657)]
    r, _ = run([], inputs=big)  # an empty architecture: the input alone fits exactly
    assert r["error"] == 0 and r["peak_activation_elements"] == 2**63 - 1
    # through a ReLU the flops (2^63 - 1) fit, but input + activations (2 (2^63 - 1)) do not
    assert_error([row("ReLU")], "OVERFLOW", 0, inputs=big)


def test_dimension_overflow():
    # an output dimension above 2^31 - 1 is OVERFLOW even though its numel fits int64
    # Flatten (1, 2^16, 2^16) -> (1, 2^32)
    assert_error([row("Flatten", dim0=1, dim1=-1)], "OVERFLOW", 0, inputs=[(2**16, 2**16)])
    # Cat (1, M) and (1, 1) on dim 1 -> (1, M + 1)
    cat = {**row("Cat", nsrc=2, dim0=1), F.XOFF: 0}
    assert_error([cat], "OVERFLOW", 0, inputs=[(M,), (1,)], extra=[-2])
    # nearest Upsample x2 on length 2^30 -> 2^31
    assert_error([row("Upsample", dim0=0, scales=(2/1,))], "OVERFLOW", 0, inputs=[(1, 2**30)])
    # ZeroPad2d (1, 0, 0, 0) on (1, 1, 1, M) -> width M + 1
    assert_error([row("ZeroPad2d", p=(1, 0, 0))], "OVERFLOW", 0, inputs=[(1, 1, M)])
    # but exactly M is fine
    assert run([row("ZeroPad2d", p=(1, 0, 0))], inputs=[(1, 1, M - 1)])[0]["error"] == 0


def test_unused_layer():
    # x -> ReLU -> [Conv2d(3, 10, 3) unused, e.g. an auxiliary head] ; ReLU(ReLU(x)) is the output
    unused = {**conv(2, 3, 10, 3, src=0), F.FLAGS: F.F_BIAS | F.F_UNUSED}
    r, full = run([row("ReLU"), unused, row("ReLU", src=0)])
    # params 280 (conv) counted; flops = 192 + 192 (the two ReLUs); macs 0; activations 192 + 192
    assert (r["params"], r["macs"], r["flops"], r["activation_elements"]) == (280, 0, 384, 384)
    assert shape(r) == (1, 3, 8, 8)
    # the unused row is still shaped, with 0 MACs/FLOPs
    assert full["layer_shape"][1] == [1, 10, 6, 6, 0] and full["layer_ndim"][1] == 4
    assert (full["layer_params"][1], full["layer_macs"][1], full["layer_flops"][1]) == (280, 0, 0)
    # BatchNorm unused: params and buffers only
    bn = row("BatchNorm2d", in_=3, flags=F.F_AFFINE | F.F_TRACK | F.F_BIAS | F.F_UNUSED)
    r, _ = run([bn])
    assert (r["params"], r["buffers"], r["flops"], r["activation_elements"]) == (6, 7, 0, 0)
    # and it is still checked
    bad = {**conv(2, 4, 10, 3), F.FLAGS: F.F_UNUSED}
    assert_error([bad], "IN_CHANNELS", 0)
