"""The benchmark batch generator and numpy baseline live in the package (cnncore/_benchdata.py) so
that `cnncore bench` runs the same comparison; the benchmarks import them from here, with the
columnar path's one-skeleton batch and its numpy baseline below."""
import numpy as np

from cnncore import _format as F
from cnncore._benchdata import (DEPTH, N_ARCH_DEFAULT, N_ARCH_SMALL, N_BLOCKS, default_batch,  # noqa: F401
                                make_batch, numpy_count, slice_batch)
from cnncore._benchdata import (_CH, _HS, _NC, OP_BN2D, OP_CONV2D, OP_FLATTEN, OP_GAP2D, OP_LINEAR,
                                OP_RELU)


# ---- one skeleton, many widths: the columnar path and its numpy baseline --------------------------
def make_columnar(n_arch: int = N_ARCH_DEFAULT, seed: int = 0, n_blocks: int = N_BLOCKS):
    """A cc.Columnar of n_arch architectures sharing one skeleton (the NAS case): n_blocks blocks of
    Conv2d(k x k, stride s, padding k // 2, no bias) -> BatchNorm2d -> ReLU, then AdaptiveAvgPool2d(1),
    Flatten, Linear (3 * n_blocks + 3 rows). Per architecture: each conv's width (from 16..512),
    kernel (1, 3 or 5) and stride (1 or 2, at most one stride-2 conv in two), the classes
    (10, 100, 1000) and the input resolution (32..224, as make_batch). In-sizes are lazy (0), so
    every width is consistent (and with padding k // 2 every architecture is valid)."""
    import cnncore as cc
    rng = np.random.default_rng(seed)
    n, depth = int(n_arch), 3 * n_blocks + 3
    rows = np.zeros((depth, F.N_FIELDS), np.int32)
    rows[:, F.SRC] = np.arange(depth) - 1
    rows[:, F.NSRC] = 1
    for t in range(n_blocks):
        rows[3 * t, [F.OP, F.GROUPS, F.D0, F.D0 + 1]] = OP_CONV2D, 1, 1, 1
        rows[3 * t + 1, [F.OP, F.FLAGS]] = OP_BN2D, F.F_AFFINE | F.F_TRACK | F.F_BIAS
        rows[3 * t + 2, F.OP] = OP_RELU
    rows[-3, [F.OP, F.K0, F.K0 + 1]] = OP_GAP2D, 1, 1
    rows[-2, [F.OP, F.DIM0, F.DIM1]] = OP_FLATTEN, 1, -1
    rows[-1, [F.OP, F.FLAGS]] = OP_LINEAR, F.F_BIAS
    conv = np.arange(n_blocks) * 3
    out, k, s = (np.zeros((n, depth), np.int32) for _ in range(3))
    out[:, conv] = _CH[rng.integers(0, len(_CH), (n, n_blocks))]
    out[:, -1] = _NC[rng.integers(0, len(_NC), n)]
    k[:, conv] = rng.choice(np.array([1, 3, 3, 5]), (n, n_blocks))
    k[:, -3] = 1
    s[:, conv] = np.where(rng.random((n, n_blocks)) < 0.5, 1 + (np.arange(n_blocks) % 2), 1)
    template = cc.Packed.from_arrays(
        layers=rows, extra_src=np.zeros(0, np.int32), arch_offsets=np.array([0, depth], np.int64),
        input_offsets=np.array([0, 1], np.int64), input_shape=np.array([[3, 32, 32, 0]], np.int64),
        input_ndim=np.array([3], np.int32), batch_size=np.ones(1, np.int64))
    hw = _HS[rng.integers(0, len(_HS), n)]
    columns = {"out": out, "k0": k, "k1": k, "s0": s, "s1": s, "p0": k // 2, "p1": k // 2}
    return cc.Columnar(template, columns, input_shape=np.stack([np.full(n, 3), hw, hw], 1))


def numpy_skeleton_count(col) -> dict:
    """The numpy count a NAS engineer writes for make_columnar's one skeleton: the formulas spelled
    out per layer position, vectorized across architectures (square inputs and kernels, dilation 1,
    groups 1, as the skeleton has them). Same quantities and validity as numpy_count; counts of an
    invalid architecture are 0."""
    cols = col.columns
    n_blocks = (col.n_layers - 3) // 3
    N = col.batch_size.astype(np.int64)
    C = col.input_shape[:, 0].astype(np.int64)
    H = col.input_shape[:, 1].astype(np.int64)
    W = col.input_shape[:, 2].astype(np.int64)
    ok = np.ones(len(col), bool)
    params, buffers, macs, flops, act = (np.zeros(len(col), np.int64) for _ in range(5))
    for t in range(n_blocks):
        j = 3 * t
        out, k = cols["out"][:, j].astype(np.int64), cols["k0"][:, j].astype(np.int64)
        s, p = cols["s0"][:, j].astype(np.int64), cols["p0"][:, j].astype(np.int64)
        # Conv2d, no bias: out = floor((in + 2p - k) / s) + 1; weights out * C * k * k
        ok &= (H + 2 * p >= k) & (W + 2 * p >= k)
        H = np.maximum((H + 2 * p - k) // s + 1, 1)
        W = np.maximum((W + 2 * p - k) // s + 1, 1)
        dot = C * k * k
        numel = N * out * H * W
        params += out * dot
        macs += numel * dot
        flops += numel * (2 * dot - 1)
        C = out
        # BatchNorm2d (affine with bias, running stats): 2C params, 2C + 1 buffers, 4 flops per element
        params += 2 * C
        buffers += 2 * C + 1
        flops += 4 * numel
        # ReLU: 1 flop per element; three activations of numel (conv, BN, ReLU outputs)
        flops += numel
        act += 3 * numel
    # AdaptiveAvgPool2d(1): sums every element (H * W per channel); Flatten; Linear(C, classes) with bias
    flops += N * C * H * W
    act += 2 * N * C
    classes = cols["out"][:, -1].astype(np.int64)
    params += C * classes + classes
    macs += N * C * classes
    flops += N * classes * 2 * C
    act += N * classes
    counts = dict(params=params, buffers=buffers, macs=macs, flops=flops, activation_elements=act)
    for v in counts.values():
        v[~ok] = 0
    shape = np.zeros((len(col), 5), np.int64)
    shape[:, 0], shape[:, 1] = N, classes
    shape[~ok] = 0
    return dict(counts, output_shape=shape, valid=ok)
