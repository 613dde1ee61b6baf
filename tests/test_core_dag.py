"""The general (graph) path of the core on small graphs whose peak memory and counts are worked out
by hand below (docs/conventions.md, "peak_activation_bytes"), with the reference beside it.

Moments: 0 is the start (the network inputs live), k + 1 the moment row k makes its output (its
inputs still live). A tensor is freed after its last reader, model outputs live to the end, views
(Identity, Flatten, Slice) allocate nothing and keep their source alive, unused rows never run.
Every case is run on the core (fast path on and off) and on the reference: all fields equal.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnncore as cc
from cnncore import _format as F
from cnncore.counting import run_core, run_reference

OVERFLOW = next(code for code, (name, *_) in F.ERRORS.items() if name == "OVERFLOW")
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_elements",
          "output_shape", "output_ndim", "error", "error_layer")


def _row(op, src, nsrc=1, xoff=0, flags=0, **fields):
    r = np.zeros(F.N_FIELDS, np.int32)
    r[F.OP], r[F.SRC], r[F.NSRC], r[F.XOFF], r[F.FLAGS] = F.OPS[op], src, nsrc, xoff, flags
    for k, v in fields.items():
        r[getattr(F, k.upper())] = v
    return r


def conv(src, cin, cout, k=1, pad=0, flags=0):
    return _row("Conv2d", src, IN=cin, OUT=cout, GROUPS=1, K0=k, K1=k, S0=1, S1=1, P0=pad, P1=pad,
                D0=1, D1=1, flags=flags)


def _count(rows, inputs, extra=(), batch=1):
    """Every backend's raw result for one architecture; asserts they agree field by field."""
    arrays = dict(layers=np.array(rows, np.int32).reshape(-1, F.N_FIELDS),
                  extra_src=np.array(extra, np.int32),
                  arch_offsets=np.array([0, len(rows)], np.int64),
                  input_offsets=np.array([0, len(inputs)], np.int64),
                  input_shape=np.array([list(s) + [0] * (4 - len(s)) for s in inputs], np.int64),
                  input_ndim=np.array([len(s) for s in inputs], np.int32),
                  batch_size=np.full(1, batch, np.int64))
    arrays = cc.Packed.from_arrays(**arrays).arrays()
    ref = run_reference(arrays)
    for fast in (True, False):
        core = run_core(arrays, n_threads=1, fast_path=fast)
        for k in FIELDS:
            assert np.array_equal(core[k], ref[k]), (k, fast, core[k], ref[k])
    return {k: ref[k][0] for k in FIELDS}


def test_residual_add_of_equal_shapes():
    """x (1,4,8,8) = 256 -> conv 3x3 -> relu -> + x -> (+ itself). Every tensor has 256 elements.
    m0: x; m1: x, conv; m2: x, conv, relu; m3: x, relu, add; m4: add, add2 -> peak 3 * 256."""
    rows = [conv(-1, 4, 4, k=3, pad=1, flags=F.F_BIAS), _row("ReLU", 0),
            _row("Add", 1, nsrc=2, xoff=0), _row("Add", 2, nsrc=2, xoff=1)]
    r = _count(rows, [(4, 8, 8)], extra=[-1, 2])
    assert r["error"] == 0
    assert r["peak_activation_elements"] == 3 * 256
    assert r["params"] == 4 * 4 * 9 + 4 and r["macs"] == 256 * 36
    # conv 256 * (2 * 36 - 1 + 1), relu 256, each add one op per element
    assert r["flops"] == 256 * 72 + 256 + 256 + 256
    assert r["activation_elements"] == 4 * 256
    assert list(r["output_shape"]) == [1, 4, 8, 8, 0]


def test_add_of_equal_numel_but_other_dims_broadcasts():
    """(1,2,1) + (1,1,2): the same number of elements, yet torch broadcasts them to (1,2,2)."""
    r = _count([_row("Add", -1, nsrc=2, xoff=0)], [(2, 1), (1, 2)], extra=[-2])
    assert r["error"] == 0 and r["output_ndim"] == 3 and list(r["output_shape"]) == [1, 2, 2, 0, 0]
    assert r["flops"] == 4
    assert r["peak_activation_elements"] == 2 + 2 + 4  # both inputs and the sum at moment 1
    # and the other order, and squeeze-excitation scaling (1,3,4,4) * (1,3,1,1)
    r = _count([_row("Mul", -2, nsrc=2, xoff=0)], [(2, 1), (1, 2)], extra=[-1])
    assert list(r["output_shape"]) == [1, 2, 2, 0, 0]
    r = _count([_row("Mul", -1, nsrc=2, xoff=0)], [(3, 4, 4), (3, 1, 1)], extra=[-2])
    assert list(r["output_shape"]) == [1, 3, 4, 4, 0] and r["flops"] == 48


def test_a_view_flagged_output_keeps_its_source_to_the_end():
    """x (1,2,4,4) = 32; y0 = conv 2->2 (32); y1 = flatten(y0), flagged output (a view: keeps y0);
    y2 = conv(y0) 2->4 (64); y3 = relu(y2) (64, read by nobody, not the output: row 1 is).
    m0: 32; m1: x + y0 = 64; m2: y0 = 32; m3: y0 + y2 = 96; m4: y0 + y2 + y3 = 160."""
    rows = [conv(-1, 2, 2), _row("Flatten", 0, flags=F.F_OUTPUT, DIM0=1, DIM1=-1), conv(0, 2, 4),
            _row("ReLU", 2)]
    r = _count(rows, [(2, 4, 4)])
    assert r["peak_activation_elements"] == 160
    assert r["output_ndim"] == 2 and list(r["output_shape"]) == [1, 32, 0, 0, 0]


def test_an_unused_row_does_not_keep_its_input_alive():
    """x (1,1,8,8) = 64; y0 = conv 1->8 (512); y1 = maxpool 2 (128); y2 = conv(y1) 8->2 (32),
    flagged output; row 3 = conv(y0) 8->16, unused (never runs: reads nothing, makes nothing).
    m0: 64; m1: 64 + 512; m2: 512 + 128; m3: 128 + 32; m4: 32 -> 640 (y0 kept to m4 would give
    640 too, but y0 + y1 + y2 = 672 at m3 if the unused row counted as its reader)."""
    rows = [conv(-1, 1, 8), _row("MaxPool2d", 0, K0=2, K1=2, S0=2, S1=2, D0=1, D1=1),
            conv(1, 8, 2, flags=F.F_OUTPUT), conv(0, 8, 16, flags=F.F_UNUSED | F.F_BIAS)]
    r = _count(rows, [(1, 8, 8)])
    assert r["peak_activation_elements"] == 640
    assert r["params"] == 8 + 16 + 8 * 16 + 16  # the unused conv still counts its params
    assert r["activation_elements"] == 512 + 128 + 32
    assert list(r["output_shape"]) == [1, 2, 4, 4, 0]


def test_cat_reading_one_tensor_twice_and_an_unread_input():
    """a (1,2,4,4) = 32, b (1,3,4,4) = 48, never read; y0 = relu(a) (32);
    y1 = cat([y0, a, y0], dim 1) = (1,6,4,4) = 96.
    m0: a + b = 80; m1: a + y0 = 64 (b freed); m2: a + y0 + y1 = 160."""
    rows = [_row("ReLU", -1), _row("Cat", 0, nsrc=3, xoff=0, DIM0=1)]
    r = _count(rows, [(2, 4, 4), (3, 4, 4)], extra=[-1, 0])
    assert r["error"] == 0 and list(r["output_shape"]) == [1, 6, 4, 4, 0]
    assert r["peak_activation_elements"] == 160


def test_views_of_views_and_a_model_output_read_later():
    """x (1,16); y0 = linear 16->32, flagged output; y1 = identity(y0), y2 = identity(y1) (views of
    y0); y3 = linear(y2) 32->8; y4 = y3 + y3 (8, the last row, unflagged: the output is y0).
    m0: 16; m1: 16 + 32; m2: 32; m3: 32; m4: 32 + 8; m5: 32 + 8 + 8 -> 48."""
    rows = [_row("Linear", -1, IN=16, OUT=32, flags=F.F_OUTPUT), _row("Identity", 0),
            _row("Identity", 1), _row("Linear", 2, IN=32, OUT=8), _row("Add", 3, nsrc=2, xoff=0)]
    r = _count(rows, [(16,)], extra=[3])
    assert r["peak_activation_elements"] == 48
    assert list(r["output_shape"]) == [1, 32, 0, 0, 0]
    assert r["flops"] == 32 * 31 + 8 * 63 + 8


def test_a_view_read_after_its_source_keeps_the_source_alive():
    """x (1,4,8,8) = 256; y0 = relu(x); y1 = identity(y0) (a view); y2 = relu(y0); y3 = relu(y2);
    y4 = y1 + y3, the output: y0's storage is last read at moment 5, through the view.
    m0: x = 256; m1: x + y0 = 512; m2: y0 = 256; m3: y0 + y2 = 512; m4: y0 + y2 + y3 = 768;
    m5: y0 + y3 + y4 = 768 (freeing y0 when y2 read it last, directly, would give 512)."""
    rows = [_row("ReLU", -1), _row("Identity", 0), _row("ReLU", 0), _row("ReLU", 2),
            _row("Add", 1, nsrc=2, xoff=0)]
    r = _count(rows, [(4, 8, 8)], extra=[3])
    assert r["peak_activation_elements"] == 768
    assert r["activation_elements"] == 5 * 256 and r["flops"] == 4 * 256


def test_the_output_a_view_of_the_network_input():
    """x (1,4,8,8) = 256; y0 = relu(x); y1 = relu(y0), read by nobody; y2 = flatten(x), the last row:
    the output is a view of x, which lives to the end. m0: 256; m1: x + y0 = 512;
    m2: x + y0 + y1 = 768; m3: x = 256."""
    rows = [_row("ReLU", -1), _row("ReLU", 0), _row("Flatten", -1, DIM0=1, DIM1=-1)]
    r = _count(rows, [(4, 8, 8)])
    assert r["peak_activation_elements"] == 768
    assert r["output_ndim"] == 2 and list(r["output_shape"]) == [1, 256, 0, 0, 0]


@pytest.mark.parametrize("shape, batch, expect", [
    # n = numel(x) = 2^60 (61 bits) and 3 tensor slots (2 bits): 61 + 2 <= 63, the bound holds
    ((2 ** 30,), 2 ** 30, dict(error=0, n=2 ** 60)),
    # n = 2^61 (62 bits): 62 + 2 > 63, the per-layer checks decide: the totals still fit
    ((2 ** 20, 2 ** 20), 2 ** 21, dict(error=0, n=2 ** 61)),
    # n = 3 * 2^60: inputs + activations = 6 * 2^60 after row 0, 9 * 2^60 > 2^63 - 1 at row 1
    ((3, 2 ** 30), 2 ** 30, dict(error=OVERFLOW, n=3 * 2 ** 60)),
])
def test_graph_sums_at_the_edge_of_the_bound(shape, batch, expect):
    """y0 = relu(x), y1 = y0 + x: each row adds n FLOPs and n activation elements. The graph fast
    path adds counts without a test per layer when the bits of the widest count (n) plus the bits of
    the tensor slots (3: x, y0, y1) are at most 63, else the per-layer checks of the general path
    decide. Peak: m0 x = n; m1 x + y0 = 2n; m2 x + y0 + y1 = 3n."""
    n = expect["n"]
    assert int(np.prod(shape, dtype=object)) * batch == n
    r = _count([_row("ReLU", -1), _row("Add", 0, nsrc=2, xoff=0)], [shape], extra=[-1], batch=batch)
    assert r["error"] == expect["error"]
    if expect["error"]:
        assert r["error_layer"] == 1 and r["flops"] == 0 and r["peak_activation_elements"] == 0
        return
    assert r["error_layer"] == -1
    assert r["flops"] == 2 * n and r["activation_elements"] == 2 * n and r["macs"] == 0
    assert r["peak_activation_elements"] == 3 * n


def test_two_inputs_count_in_the_bound():
    """a, b (2^30,) with batch 2^30: 2^60 elements each; y0 = a + b. Addends: the two inputs and
    one row (2 bits), each of 61 bits: the bound holds; the live total is 3 * 2^60 at moment 1."""
    n = 2 ** 60
    r = _count([_row("Add", -1, nsrc=2, xoff=0)], [(2 ** 30,), (2 ** 30,)], extra=[-2], batch=2 ** 30)
    assert r["error"] == 0 and r["flops"] == n and r["peak_activation_elements"] == 3 * n


def test_a_batch_of_graphs_chains_and_an_invalid_graph():
    """In one batch each architecture gives what it gives alone; a graph whose add meets a tensor
    torch cannot broadcast (8 channels + the 3-channel input) is invalid, the others are not."""
    x = cc.Input((3, 32, 32))
    a = cc.Conv2d(3, 8, 3, padding=1)(x)
    good = cc.Model(x, cc.add(a, cc.ReLU()(a)))
    chain = cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU(), cc.Flatten())
    arrays = cc.pack([good, chain, good], (3, 32, 32)).arrays()
    arrays["extra_src"] = arrays["extra_src"].copy()
    arrays["extra_src"][-1] = -1  # the last add now reads the network input
    p = cc.Packed.from_arrays(**arrays)
    batch = cc.count(p, n_threads=1)
    assert list(batch.valid) == [True, True, False]
    assert batch.error[2] == F.ERROR_CODES["BROADCAST"]
    for i in range(3):
        one = cc.count(p.subset(i), n_threads=1)
        ref = cc.count(p.subset(i), backend="reference")
        for k in ("params", "macs", "flops", "peak_activation_bytes", "output_shape", "valid", "error"):
            assert np.array_equal(getattr(batch, k)[i], getattr(one, k)[0]), (i, k)
            assert np.array_equal(getattr(ref, k)[0], getattr(one, k)[0]), (i, k)


@pytest.mark.parametrize("dim, second, expect", [
    (1, (3, 4, 4), "OK"),  # (1,2,4,4) + (1,3,4,4) along channels
    (2, (3, 4, 4), "CAT_SHAPE"),  # channels differ outside the cat dimension
    (1, (3, 4), "CAT_SHAPE"),  # another number of dimensions
    (4, (3, 4, 4), "DIM_RANGE"),
    (-5, (3, 4, 4), "DIM_RANGE"),
    (-3, (3, 4, 4), "OK"),  # dim -3 of a 4-d tensor is dim 1
])
def test_cat_checks_in_order(dim, second, expect):
    """Cat's error order (docs/conventions.md): inputs resolve, then the dimension, then the shapes;
    a reference to a later layer beats every other error of the row."""
    rows = [_row("ReLU", -1), _row("Cat", 0, nsrc=3, xoff=0, DIM0=dim)]
    r = _count(rows, [(2, 4, 4), second], extra=[-2, -1])
    assert r["error"] == F.ERROR_CODES[expect]
    arrays = dict(layers=np.array(rows, np.int32), extra_src=np.array([-2, -1], np.int32),
                  arch_offsets=np.array([0, 2], np.int64), input_offsets=np.array([0, 2], np.int64),
                  input_shape=np.array([[2, 4, 4, 0], list(second) + [0] * (4 - len(second))], np.int64),
                  input_ndim=np.array([3, len(second)], np.int32), batch_size=np.ones(1, np.int64))
    arrays = cc.Packed.from_arrays(**arrays).arrays()
    arrays["extra_src"] = np.array([-2, 1], np.int32)  # the last input: this very row (as if changed
    for run in (run_core, run_reference):            # after validation): BAD_INPUT_REF wins
        assert run(arrays)["error"][0] == F.ERROR_CODES["BAD_INPUT_REF"]


RACE = textwrap.dedent("""
    import threading, time, numpy as np, cnncore as cc
    from cnncore import _format as F
    x = cc.Input((3, 16, 16))
    a = cc.Conv2d(3, 8, 3, padding=1)(x)
    b = cc.ReLU()(a)
    c = cc.cat([a, b, cc.Identity()(a)], dim=1)
    d = cc.Flatten()(cc.AdaptiveAvgPool2d(1)(c + c))
    m = cc.Model(x, [b, d])
    arrays = cc.pack([m] * 400 + [cc.zoo.resnet18()] * 20, (3, 16, 16)).arrays()
    p = cc.Packed.from_arrays(**arrays)
    lay, extra = arrays["layers"], arrays["extra_src"]
    rng = np.random.default_rng(0)
    stop = False

    def mutate():  # while the core counts without the GIL, rewrite wiring fields at random
        cols = [F.OP, F.SRC, F.NSRC, F.XOFF, F.FLAGS, F.DIM0]
        vals = np.array([-(2**31), -2, -1, 0, 1, 2, 3, 44, 45, 64, 128, 2**31 - 1], np.int32)
        while not stop:
            n = 64
            lay[rng.integers(0, len(lay), n), rng.choice(cols, n)] = rng.choice(vals, n)
            extra[rng.integers(0, len(extra), 8)] = rng.choice(vals, 8)

    t = threading.Thread(target=mutate)
    t.start()
    codes = set()
    try:
        end = time.time() + 3
        while time.time() < end:
            r = cc.count(p, n_threads=2)
            codes.update(r.error.tolist())
    finally:
        stop = True
        t.join()
    print(sorted(codes))
""")


def test_rows_changed_while_counting_never_crash():
    """Another thread rewrites the rows (sources, input counts, extra inputs, op codes, flags) while
    the core counts graphs without the GIL: every architecture still gets an error code of
    docs/format.md or a count, and the process survives (run in a subprocess)."""
    proc = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    codes = eval(proc.stdout.strip().splitlines()[-1])
    assert codes and all(0 <= e < len(F.ERRORS) for e in codes)


def test_real_graphs_count_alike_on_the_fast_and_general_paths():
    """Every cc.zoo model at its default input (their params and MACs are held to torchvision's in
    tests/test_zoo_*.py), NAS-Bench-201 cells and DARTS networks (one with its unused auxiliary
    head): the graph fast path (with the chain path where it applies) and the general path give
    the same answers, field by field, peak memory included; and the reference agrees on a few."""
    names = [n for n in dir(cc.zoo) if not n.startswith("_") and callable(getattr(cc.zoo, n))
             and n not in ("classic", "mobile")]
    zoo = cc.pack([getattr(cc.zoo, n)() for n in names])
    parts = [zoo.arrays(), cc.spaces.NB201().pack(range(0, 15625, 97)).arrays(),
             cc.pack([cc.spaces.darts_model(), cc.spaces.darts_model(cc.spaces.DARTS_V1),
                      cc.spaces.darts_model(auxiliary=True)]).arrays()]
    for arrays in parts:
        fast = run_core(arrays, n_threads=1)
        general = run_core(arrays, n_threads=1, fast_path=False)
        assert (fast["error"] == 0).all()
        for k in fast:
            assert np.array_equal(fast[k], general[k]), k
    few = cc.spaces.NB201().pack([0, 97, 194]).arrays()
    ref, core = run_reference(few), run_core(few, n_threads=1)
    for k in FIELDS:
        assert np.array_equal(core[k], ref[k]), k


# flops per element of each activation, from docs/conventions.md's table ("Activations")
ACTIVATION_FLOPS = {"ReLU": 1, "ReLU6": 2, "LeakyReLU": 2, "PReLU": 2, "ELU": 4, "GELU": 5, "SiLU": 4,
                    "Sigmoid": 3, "Tanh": 1, "Hardswish": 5, "Hardsigmoid": 4}


@pytest.mark.parametrize("act", sorted(ACTIVATION_FLOPS))
def test_each_activation_in_a_residual_block(act):
    """x (1,4,8,8) = 256 -> conv 1x1 (4 -> 4, no bias) -> act -> + x: the graph fast path tests
    the activations by one bit test (PReLU, which has weights, is not one of them: general path).
    conv: params 16, macs 256 * 4, flops 256 * (2 * 4 - 1); act: flops 256 * its constant (PReLU
    with IN = 4: 4 params); add: 256. Moments: m1 x, conv; m2 x, conv, act; m3 x, act, add: peak 768."""
    rows = [conv(-1, 4, 4), _row(act, 0, IN=4 if act == "PReLU" else 0), _row("Add", 1, nsrc=2)]
    r = _count(rows, [(4, 8, 8)], extra=[-1])
    assert r["error"] == 0 and r["error_layer"] == -1
    assert r["params"] == 16 + (4 if act == "PReLU" else 0) and r["macs"] == 256 * 4
    assert r["flops"] == 256 * 7 + 256 * ACTIVATION_FLOPS[act] + 256
    assert r["activation_elements"] == 3 * 256 and r["peak_activation_elements"] == 3 * 256
    assert list(r["output_shape"]) == [1, 4, 8, 8, 0] and r["output_ndim"] == 4


@pytest.mark.parametrize("op", ["Conv2d", "BatchNorm2d", "ReLU6", "Add"])
def test_graph_ops_with_a_wrong_number_of_inputs(op):
    """Each of the ops the graph fast path tests first, given one input too many (Add: one too few):
    BAD_FIELD at that row (docs/format.md), on both paths and the reference alike."""
    fields = dict(Conv2d=dict(IN=4, OUT=4, GROUPS=1, K0=1, K1=1, S0=1, S1=1, D0=1, D1=1),
                  BatchNorm2d=dict(IN=4, flags=F.F_TRACK), ReLU6={}, Add={})[op]
    nsrc = 1 if op == "Add" else 2
    rows = [conv(-1, 4, 4), _row("Add", 0, nsrc=2), _row(op, 1, nsrc=nsrc, **fields)]
    r = _count(rows, [(4, 8, 8)], extra=[-1])
    assert r["error"] == F.ERROR_CODES["BAD_FIELD"]
    assert r["error_layer"] == 2


def _conv_row(src, k, s, p, d, cin=4, cout=4, flags=0):
    return _row("Conv2d", src, IN=cin, OUT=cout, GROUPS=1, K0=k, K1=k, S0=s, S1=s, P0=p, P1=p,
                D0=d, D1=d, flags=flags)


# The graph path's size-keeping Conv2d (stride, dilation 1, kernel 2 * padding + 1) and its edges.
# (kernel, stride, padding, dilation, flags) -> the output's side for a 6 x 6 input, by torch's
# formula floor((6 + 2p - d(k - 1) - 1) / s) + 1, or the error (docs/conventions.md's order)
POINTWISE_EDGES = [
    ((1, 1, 0, 1, 0), 6),  # pointwise: the input's size
    ((1, 1, 0, 3, 0), 6),  # pointwise, dilated: d(k - 1) = 0, the same
    ((1, 1, 0, 1, F.F_SAME), 6),  # pointwise, padding='same'
    ((1, 2, 0, 1, 0), 3),  # stride 2: (6 - 1) // 2 + 1
    ((1, 1, 1, 1, 0), 8),  # padding 1: 6 + 2
    ((3, 1, 1, 1, 0), 6),  # 3 x 3, padding 1: size-keeping
    ((5, 1, 2, 1, 0), 6),  # 5 x 5, padding 2: size-keeping
    ((3, 1, 1, 2, 0), 4),  # dilated: 6 + 2 - 2 * 2 - 1 + 1
    ((3, 1, 0, 1, 0), 4),  # no padding: 6 - 2
    ((3, 2, 1, 1, 0), 3),  # stride 2: (6 + 2 - 2 - 1) // 2 + 1
    ((3, 1, -1, 1, 0), "BAD_FIELD"),
    ((9, 1, 1, 1, 0), "KERNEL_TOO_LARGE"),  # 6 + 2 < 9
    ((15, 1, 7, 1, 0), 6),  # size-keeping, a kernel wider than the input
    ((1, 1, 0, 0, 0), "BAD_FIELD"),  # dilation 0, even where it changes no size
    ((1, 1, -1, 1, 0), "BAD_FIELD"),  # negative padding
    ((1, 0, 0, 1, 0), "BAD_FIELD"),  # stride 0
    ((1, 2, 0, 1, F.F_SAME), "SAME_STRIDE"),
]


@pytest.mark.parametrize("window, expect", POINTWISE_EDGES)
@pytest.mark.parametrize("graph", [False, True])
def test_size_keeping_conv_and_its_neighbours(window, expect, graph):
    """A Conv2d (4 -> 4, no bias) on x (1,4,6,6), alone (the chain path) or in a residual block
    whose Add reads x (the graph path; it needs the same shape, so only the size-keeping cases
    are valid there): the output's side from torch's formula (POINTWISE_EDGES), params 16,
    macs numel(y) * 4 * kernel area, or the error at row 0."""
    k, s, p, d, flags = window
    rows = [_conv_row(-1, k, s, p, d, flags=flags)]
    if graph:
        rows.append(_row("Add", 0, nsrc=2))
    r = _count(rows, [(4, 6, 6)], extra=[-1] if graph else ())
    if isinstance(expect, str):
        assert r["error"] == F.ERROR_CODES[expect] and r["error_layer"] == 0
    elif graph and expect != 6:
        assert r["error"] == F.ERROR_CODES["BROADCAST"] and r["error_layer"] == 1
    else:
        numel = 4 * expect * expect
        assert r["error"] == 0 and list(r["output_shape"]) == [1, 4, expect, expect, 0]
        assert r["params"] == 16 * k * k and r["macs"] == numel * 4 * k * k
        assert r["flops"] == numel * (2 * 4 * k * k - 1) + (numel if graph else 0)
