"""Benchmark data: packed batches of realistic heterogeneous CNN stacks, and a numpy baseline.

`make_batch(n_arch, seed)` writes the seven arrays of docs/format.md directly with numpy, vectorized
across architectures (one numpy call per field per layer position, no Python loop over
architectures). The stacks follow the generator of the bare-C yardstick
(/work/shared/tools/limit/bench.c, `gen_arch`): six blocks of

    Conv2d (45 % regular 3x3 [1/4 strided, 1/10 unpadded], 20 % 1x1 [1/8 strided],
            15 % depthwise 3x3/5x5 [1/3 strided], 10 % grouped g in {2,4,8,32},
            5 % 5x5/7x7 stride 2, 5 % dilated 3x3 d=2; 30 % with bias)
    BatchNorm2d (affine, running stats)
    ReLU (85 %) or MaxPool2d 2x2 / 3x3-pad-1 stride 2 (15 %)

then AdaptiveAvgPool2d(1), Flatten, Linear(C, {10, 100, 1000}). That is 21 rows per architecture:
the limit's 20 layers plus an explicit Flatten row (its Linear flattens implicitly). Inputs are
3 x {32, 64, 128, 224}^2 (weights 4:2:1:3 as in the limit), batch 1. In about 1 % of the
architectures one convolution gets groups = C + 1 (does not divide the channels: GROUPS error);
a few more are naturally invalid (a small input shrunk below a kernel by strided layers).

`numpy_count(arrays)` is the baseline: the counting a NAS engineer would hand-write with numpy for
this op mix, stepping layer position by layer position across all architectures at once.
"""
from __future__ import annotations

import functools

import numpy as np

from cnncore import _format as F

N_BLOCKS = 6
DEPTH = 3 * N_BLOCKS + 3  # 21 rows per architecture
N_ARCH_DEFAULT = 100_000  # 100 k architectures x 21 rows = 2.1 M layers
N_ARCH_SMALL = 1_000

_HS = np.array([32, 32, 32, 32, 64, 64, 128, 224, 224, 224])
_CH = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512])
_GS = np.array([2, 4, 8, 32])
_NC = np.array([10, 100, 1000])

OP_CONV2D, OP_BN2D, OP_RELU = F.OPS["Conv2d"], F.OPS["BatchNorm2d"], F.OPS["ReLU"]
OP_MAXPOOL2D, OP_GAP2D = F.OPS["MaxPool2d"], F.OPS["AdaptiveAvgPool2d"]
OP_FLATTEN, OP_LINEAR = F.OPS["Flatten"], F.OPS["Linear"]


def make_batch(n_arch: int = N_ARCH_DEFAULT, seed: int = 0) -> dict:
    """The seven packed arrays (docs/format.md) of n_arch generated architectures, for
    `cc.Packed.from_arrays(**arrays)`. Deterministic for a given (n_arch, seed)."""
    rng = np.random.default_rng(seed)
    n = int(n_arch)
    L = np.zeros((n, DEPTH, F.N_FIELDS), np.int32)
    L[:, :, F.SRC] = np.arange(DEPTH, dtype=np.int32) - 1  # a chain: row k reads row k-1, row 0 the input
    L[:, :, F.NSRC] = 1

    hw = _HS[rng.integers(0, len(_HS), n)]
    C = np.full(n, 3, np.int64)
    inject = rng.random(n) < 0.01  # ~1 % invalid: groups that do not divide the channels
    inject_block = rng.integers(0, N_BLOCKS, n)

    for t in range(N_BLOCKS):
        conv, bn, act = L[:, 3 * t], L[:, 3 * t + 1], L[:, 3 * t + 2]
        r = rng.integers(0, 100, n)
        oc = _CH[rng.integers(0, len(_CH), n)]
        regular, one, dw = r < 45, (r >= 45) & (r < 65), (r >= 65) & (r < 80)
        grouped, big, dil = (r >= 80) & (r < 90), (r >= 90) & (r < 95), r >= 95
        u = rng.random((6, n))
        k = np.full(n, 3)
        k[one] = 1
        k[dw & (u[0] < 0.2)] = 5
        k[big] = np.where(u[0][big] < 0.5, 5, 7)
        s = np.ones(n, np.int64)
        s[(regular & (u[1] < 0.25)) | (one & (u[1] < 0.125)) | (dw & (u[1] < 1 / 3)) | big] = 2
        p = k // 2
        p[regular & (u[2] < 0.1)] = 0
        p[dil] = 2
        d = np.where(dil, 2, 1)
        g = np.ones(n, np.int64)
        g[dw] = C[dw]
        oc = np.where(dw, C, oc)
        gg = _GS[rng.integers(0, len(_GS), n)]
        gg = np.where(C % gg == 0, gg, 1)
        g = np.where(grouped, gg, g)
        oc = np.where(grouped, (oc + g - 1) // g * g, oc)
        g = np.where(inject & (inject_block == t), C + 1, g)
        conv[:, F.OP] = OP_CONV2D
        conv[:, F.IN] = C
        conv[:, F.OUT] = oc
        conv[:, F.GROUPS] = g
        conv[:, F.FLAGS] = np.where(u[3] < 0.3, F.F_BIAS, 0)
        for i in range(2):
            conv[:, F.K0 + i] = k
            conv[:, F.S0 + i] = s
            conv[:, F.P0 + i] = p
            conv[:, F.D0 + i] = d
        C = oc.astype(np.int64)

        bn[:, F.OP] = OP_BN2D
        bn[:, F.IN] = C
        bn[:, F.FLAGS] = F.F_AFFINE | F.F_TRACK | F.F_BIAS  # weight and bias

        pool = u[4] < 0.15
        kk = np.where(u[5] < 0.5, 3, 2)
        act[:, F.OP] = np.where(pool, OP_MAXPOOL2D, OP_RELU)
        for i in range(2):
            act[:, F.K0 + i] = np.where(pool, kk, 0)
            act[:, F.S0 + i] = np.where(pool, 2, 0)
            act[:, F.P0 + i] = np.where(pool, kk == 3, 0)
            act[:, F.D0 + i] = np.where(pool, 1, 0)

    gap, flat, lin = L[:, -3], L[:, -2], L[:, -1]
    gap[:, F.OP] = OP_GAP2D
    gap[:, F.K0] = gap[:, F.K0 + 1] = 1
    flat[:, F.OP] = OP_FLATTEN
    flat[:, F.DIM0], flat[:, F.DIM1] = 1, -1
    lin[:, F.OP] = OP_LINEAR
    lin[:, F.IN] = C
    lin[:, F.OUT] = _NC[rng.integers(0, len(_NC), n)]
    lin[:, F.FLAGS] = F.F_BIAS

    input_shape = np.zeros((n, 4), np.int64)
    input_shape[:, 0], input_shape[:, 1], input_shape[:, 2] = 3, hw, hw
    return dict(
        layers=L.reshape(n * DEPTH, F.N_FIELDS),
        extra_src=np.zeros(0, np.int32),
        arch_offsets=np.arange(n + 1, dtype=np.int64) * DEPTH,
        input_offsets=np.arange(n + 1, dtype=np.int64),
        input_shape=input_shape,
        input_ndim=np.full(n, 3, np.int32),
        batch_size=np.ones(n, np.int64),
    )


@functools.lru_cache(maxsize=2)
def default_batch(n_arch: int = N_ARCH_DEFAULT, seed: int = 0) -> dict:
    """make_batch, cached (the benchmarks share one batch). Do not modify the arrays."""
    arrays = make_batch(n_arch, seed)
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def slice_batch(arrays: dict, n: int) -> dict:
    """The first n architectures (single-input, no extra_src: as make_batch writes them)."""
    off = arrays["arch_offsets"][: n + 1]
    return dict(layers=np.ascontiguousarray(arrays["layers"][: off[-1]]), extra_src=arrays["extra_src"],
                arch_offsets=np.ascontiguousarray(off), input_offsets=np.arange(n + 1, dtype=np.int64),
                input_shape=np.ascontiguousarray(arrays["input_shape"][:n]),
                input_ndim=np.ascontiguousarray(arrays["input_ndim"][:n]),
                batch_size=np.ascontiguousarray(arrays["batch_size"][:n]))


# ---- the numpy baseline -------------------------------------------------------------------------
def numpy_count(arrays: dict) -> dict:
    """Params, buffers, MACs, FLOPs, activation elements, output shape and validity of every
    architecture, with numpy, for the op mix above (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
    AdaptiveAvgPool2d, Flatten, Linear; chains of one 3-d network input; equal depth).

    It steps layer position by layer position across all architectures at once: at each position
    the rows are copied out as contiguous columns (one (25, n) transpose of cache-sized pieces),
    and every op present there updates its architectures through a boolean mask (on all of them
    without gathering when the whole position is one op, as the conv and BN positions are).
    Checks are the ones docs/conventions.md lists for these ops, so `valid` matches the core's;
    the int64 overflow checks are left out (they never trigger for these sizes). Counts of
    invalid architectures are set to 0, as the core does.
    """
    off = arrays["arch_offsets"]
    n = len(off) - 1
    depth = np.diff(off)
    D = int(depth[0]) if n else 0
    if n and (depth != D).any():
        raise ValueError("numpy_count: every architecture must have the same number of rows")
    if not (np.array_equal(arrays["input_offsets"], np.arange(n + 1)) and (arrays["input_ndim"] == 3).all()):
        raise ValueError("numpy_count: one 3-d network input per architecture")
    L3 = arrays["layers"].reshape(n, D, F.N_FIELDS)
    ish = arrays["input_shape"]
    # state: shape (N, C, H, W) while 4-d, (N, C) after Flatten/Linear; ndim tracked for NDIM checks
    N = arrays["batch_size"].astype(np.int64)
    C, H, W = ish[:, 0].copy(), ish[:, 1].copy(), ish[:, 2].copy()
    nd = np.full(n, 4, np.int8)
    ok = np.ones(n, bool)
    params = np.zeros(n, np.int64)
    buffers = np.zeros(n, np.int64)
    macs = np.zeros(n, np.int64)
    flops = np.zeros(n, np.int64)
    act = np.zeros(n, np.int64)

    def numel():
        return np.where(nd == 4, N * C * H * W, N * C)

    for j in range(D):
        R = L3[:, j, :].T  # (25, n) view: R[c] is field c of every architecture (strided)
        op = R[F.OP]
        if (R[F.SRC] != j - 1).any() or (R[F.NSRC] != 1).any():
            raise ValueError("numpy_count: only chains (row k reads row k-1) are supported")
        known = np.zeros(n, bool)
        counts = np.bincount(op, minlength=F.N_OPS) if op.min() >= 0 else None
        if counts is None:
            raise ValueError("numpy_count: negative op code")
        for code in np.flatnonzero(counts):
            full = counts[code] == n
            m = True if full else op == code
            sel = slice(None) if full else np.flatnonzero(m)
            known |= m
            if code == OP_CONV2D:
                out, g, inn, fl = (R[c][sel].astype(np.int64) for c in (F.OUT, F.GROUPS, F.IN, F.FLAGS))
                k0, k1, s0, s1 = (R[c][sel].astype(np.int64) for c in (F.K0, F.K0 + 1, F.S0, F.S0 + 1))
                p0, p1, d0, d1 = (R[c][sel].astype(np.int64) for c in (F.P0, F.P0 + 1, F.D0, F.D0 + 1))
                same = (fl & F.F_SAME) != 0
                x_c, x_h, x_w = C[sel], H[sel], W[sel]
                good = ((out >= 1) & (g >= 1) & (inn >= 0) & (k0 >= 1) & (k1 >= 1) & (s0 >= 1) & (s1 >= 1)
                        & (d0 >= 1) & (d1 >= 1) & (p0 >= 0) & (p1 >= 0))
                good &= ~same | ((s0 == 1) & (s1 == 1))
                good &= nd[sel] == 4
                good &= (inn == 0) | (inn == x_c)
                g1 = np.maximum(g, 1)
                good &= (x_c % g1 == 0) & (out % g1 == 0)
                e0, e1 = d0 * (k0 - 1) + 1, d1 * (k1 - 1) + 1
                pad0 = np.where(same, x_h + e0 - 1, x_h + 2 * p0)
                pad1 = np.where(same, x_w + e1 - 1, x_w + 2 * p1)
                good &= (pad0 >= e0) & (pad1 >= e1)
                ho = np.where(same, x_h, (pad0 - e0) // np.maximum(s0, 1) + 1)
                wo = np.where(same, x_w, (pad1 - e1) // np.maximum(s1, 1) + 1)
                nn = x_c // g1 * k0 * k1
                bias = fl & F.F_BIAS
                ny = N[sel] * out * ho * wo
                params[sel] += out * nn + bias * out
                macs[sel] += ny * nn
                flops[sel] += ny * (2 * nn - 1 + bias)
                act[sel] += ny
                ok[sel] &= good
                C[sel], H[sel], W[sel] = out, ho, wo
            elif code == OP_BN2D:
                inn, fl = R[F.IN][sel].astype(np.int64), R[F.FLAGS][sel]
                x_c = C[sel]
                ok[sel] &= (inn >= 0) & (nd[sel] == 4) & ((inn == 0) | (inn == x_c))
                aff = (fl & F.F_AFFINE) != 0
                params[sel] += np.where(aff, 2 * x_c, 0)
                buffers[sel] += np.where((fl & F.F_TRACK) != 0, 2 * x_c + 1, 0)
                nx = N[sel] * x_c * H[sel] * W[sel]
                flops[sel] += nx * np.where(aff, 4, 2)
                act[sel] += nx
            elif code == OP_RELU:
                nx = numel()[sel]
                flops[sel] += nx
                act[sel] += nx
            elif code == OP_MAXPOOL2D:
                k0, k1, s0, s1 = (R[c][sel].astype(np.int64) for c in (F.K0, F.K0 + 1, F.S0, F.S0 + 1))
                p0, p1, d0, d1 = (R[c][sel].astype(np.int64) for c in (F.P0, F.P0 + 1, F.D0, F.D0 + 1))
                ceil = (R[F.FLAGS][sel] & F.F_CEIL) != 0
                good = ((k0 >= 1) & (k1 >= 1) & (s0 >= 1) & (s1 >= 1) & (d0 >= 1) & (d1 >= 1)
                        & (p0 >= 0) & (p1 >= 0))
                good &= (p0 <= k0 // 2) & (p1 <= k1 // 2) & (nd[sel] == 4)
                s0, s1 = np.maximum(s0, 1), np.maximum(s1, 1)
                x_h, x_w = H[sel], W[sel]
                n0, n1 = x_h + 2 * p0 - d0 * (k0 - 1) - 1, x_w + 2 * p1 - d1 * (k1 - 1) - 1
                ho = np.where(ceil, (n0 + s0 - 1) // s0 + 1, n0 // s0 + 1)
                wo = np.where(ceil, (n1 + s1 - 1) // s1 + 1, n1 // s1 + 1)
                ho -= ceil & ((ho - 1) * s0 >= x_h + p0)
                wo -= ceil & ((wo - 1) * s1 >= x_w + p1)
                good &= (ho >= 1) & (wo >= 1)
                ny = N[sel] * C[sel] * ho * wo
                flops[sel] += ny * (k0 * k1 - 1)
                act[sel] += ny
                ok[sel] &= good
                H[sel], W[sel] = ho, wo
            elif code == OP_GAP2D:
                o0, o1 = R[F.K0][sel].astype(np.int64), R[F.K0 + 1][sel].astype(np.int64)
                ok[sel] &= (o0 >= 0) & (o1 >= 0) & (nd[sel] == 4)
                x_h, x_w = H[sel], W[sel]
                o0, o1 = np.where(o0 == 0, x_h, o0), np.where(o1 == 0, x_w, o1)
                # window sum over the outputs of one dim: in + out - gcd(in, out)
                w0, w1 = x_h + o0 - np.gcd(x_h, o0), x_w + o1 - np.gcd(x_w, o1)
                nc = N[sel] * C[sel]
                flops[sel] += nc * w0 * w1
                act[sel] += nc * o0 * o1
                H[sel], W[sel] = o0, o1
            elif code == OP_FLATTEN:
                if (R[F.DIM0][sel] != 1).any() or (R[F.DIM1][sel] != -1).any():
                    raise ValueError("numpy_count: only Flatten(1, -1) is supported")
                ok[sel] &= nd[sel] >= 2
                four = nd[sel] == 4
                C[sel] = np.where(four, C[sel] * H[sel] * W[sel], C[sel])
                H[sel], W[sel], nd[sel] = 1, 1, 2
                act[sel] += N[sel] * C[sel]
            elif code == OP_LINEAR:
                out, inn = R[F.OUT][sel].astype(np.int64), R[F.IN][sel].astype(np.int64)
                bias = R[F.FLAGS][sel].astype(np.int64) & F.F_BIAS
                last = np.where(nd[sel] == 4, W[sel], C[sel])  # Linear reads the last dim
                ok[sel] &= (out >= 1) & (inn >= 0) & ((inn == 0) | (inn == last))
                ny = np.where(nd[sel] == 4, N[sel] * C[sel] * H[sel] * out, N[sel] * out)
                params[sel] += last * out + bias * out
                macs[sel] += ny * last
                flops[sel] += ny * (2 * last - 1 + bias)
                act[sel] += ny
                W[sel] = np.where(nd[sel] == 4, out, W[sel])
                C[sel] = np.where(nd[sel] == 4, C[sel], out)
            else:
                raise ValueError(f"numpy_count: op {code} ({F.OP_NAMES.get(int(code))}) is not supported")
        assert known.all()

    shape = np.zeros((n, 5), np.int64)
    shape[:, 0], shape[:, 1] = N, C
    four = nd == 4
    shape[:, 2], shape[:, 3] = np.where(four, H, 0), np.where(four, W, 0)
    res = dict(params=params, buffers=buffers, macs=macs, flops=flops, activation_elements=act,
               output_shape=shape, output_ndim=nd.astype(np.int32), valid=ok)
    for k, v in res.items():
        if k != "valid":
            v[~ok] = 0
    return res


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
