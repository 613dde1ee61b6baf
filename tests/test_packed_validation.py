"""Malformed packed arrays are refused before the core runs, with a ValueError naming the array
(and row/column); per-architecture problems are results, never exceptions or crashes."""
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import cnncore as cc
from cnncore import _format as F
from cnncore.counting import run_core, run_reference

DIM_MAX = 2**31 - 1


def _row(op, src=-1, **fields):
    r = np.zeros(F.N_FIELDS, np.int32)
    r[F.OP], r[F.SRC], r[F.NSRC] = op, src, 1
    for name, v in fields.items():
        r[F.FIELD_NAMES.index(name)] = v
    return r


def conv2d(src, cin, cout, k=3, s=1, p=0, bias=True):
    return _row(F.OPS["Conv2d"], src, **{"in": cin, "out": cout, "groups": 1, "flags": F.F_BIAS * bias,
                                         "k0": k, "k1": k, "s0": s, "s1": s, "p0": p, "p1": p,
                                         "d0": 1, "d1": 1})


def good():
    """Two architectures: a conv+relu+add on (3, 8, 8), and a conv on two inputs' first (1, 4, 4)."""
    layers = np.stack([
        conv2d(-1, 3, 4), _row(F.OPS["ReLU"], 0), _row(F.OPS["Add"], 1, nsrc=2, xoff=0),
        conv2d(-1, 1, 2, k=1),
    ]).astype(np.int32)
    return dict(layers=np.ascontiguousarray(layers), extra_src=np.array([0], np.int32),
                arch_offsets=np.array([0, 3, 4], np.int64), input_offsets=np.array([0, 1, 3], np.int64),
                input_shape=np.array([[3, 8, 8, 0], [1, 4, 4, 0], [5, 0, 0, 0]], np.int64),
                input_ndim=np.array([3, 3, 1], np.int32), batch_size=np.array([2, 1], np.int64))


def test_good_arrays_are_accepted_and_counted():
    p = cc.Packed.from_arrays(**good())
    r = cc.count(p)
    assert r.valid.tolist() == [True, True]
    # conv 3->4 k3 on 8x8, batch 2: y (2,4,6,6), n = 27; params 4*27+4 = 112
    assert r.params.tolist() == [112, 4]
    assert r.output_shape[0].tolist() == [2, 4, 6, 6, 0]
    assert r.output_shape[1].tolist() == [1, 2, 4, 4, 0]
    assert r.error_layer.tolist() == [-1, -1]


def raises(match, **changes):
    a = good()
    a.update(changes)
    with pytest.raises(ValueError, match=match) as e:
        cc.Packed.from_arrays(**a)
    return str(e.value)


@pytest.mark.parametrize("name", ["layers", "extra_src", "arch_offsets", "input_offsets",
                                  "input_shape", "input_ndim", "batch_size"])
def test_missing_array(name):
    a = good()
    del a[name]
    with pytest.raises((ValueError, TypeError), match=name):
        cc.Packed.from_arrays(**a)
    with pytest.raises(ValueError, match=name):
        cc.packing.validate(a)


@pytest.mark.parametrize("name,dtype", [("layers", np.int64), ("extra_src", np.int64),
                                        ("arch_offsets", np.int32), ("input_offsets", np.uint64),
                                        ("input_shape", np.int32), ("input_ndim", np.int64),
                                        ("batch_size", np.float64), ("layers", np.float32)])
def test_wrong_dtype(name, dtype):
    a = good()
    msg = raises(name, **{name: a[name].astype(dtype)})
    assert "dtype" in msg


def test_not_an_array():
    raises("layers", layers=good()["layers"].tolist())
    raises("batch_size", batch_size=None)


def test_wrong_shape():
    a = good()
    raises("layers", layers=np.ascontiguousarray(a["layers"][:, :24]))
    raises("layers", layers=np.zeros((4, 26), np.int32))
    raises("layers", layers=a["layers"].reshape(-1))
    raises("input_shape", input_shape=np.ascontiguousarray(a["input_shape"][:, :3]))
    raises("batch_size", batch_size=np.array([2, 1, 1], np.int64))
    raises("input_ndim", input_ndim=np.array([3, 3], np.int32))


def test_non_contiguous():
    a = good()
    big = np.zeros((8, F.N_FIELDS), np.int32)
    big[::2] = a["layers"]
    view = big[::2]
    assert not view.flags.c_contiguous
    assert "contiguous" in raises("layers", layers=view)
    assert "contiguous" in raises("layers", layers=np.asfortranarray(a["layers"]))
    wide = np.zeros(6, np.int64)
    wide[::2] = a["arch_offsets"]
    assert "contiguous" in raises("arch_offsets", arch_offsets=wide[::2])


def test_arch_offsets():
    raises("arch_offsets", arch_offsets=np.array([1, 3, 4], np.int64))  # not starting at 0
    raises("arch_offsets", arch_offsets=np.array([0, 3, 3], np.int64))  # not ending at n_layers
    raises("arch_offsets", arch_offsets=np.array([0, 3, 5], np.int64))
    raises("arch_offsets", arch_offsets=np.array([0, 5, 4], np.int64))  # decreasing
    raises("arch_offsets", arch_offsets=np.array([0, -1, 4], np.int64))


def test_input_offsets():
    raises("input_offsets", input_offsets=np.array([1, 1, 3], np.int64))
    raises("input_offsets", input_offsets=np.array([0, 1, 2], np.int64))
    raises("input_offsets", input_offsets=np.array([0, 4, 3], np.int64))
    msg = raises("input", input_offsets=np.array([0, 0, 3], np.int64))  # architecture 0 has none
    assert "architecture 0" in msg and "no network input" in msg


def test_batch_size_and_inputs():
    raises("batch_size", batch_size=np.array([0, 1], np.int64))
    raises("batch_size", batch_size=np.array([2, -3], np.int64))
    raises("batch_size", batch_size=np.array([2, 2**31], np.int64))
    raises("input_ndim", input_ndim=np.array([0, 3, 1], np.int32))
    raises("input_ndim", input_ndim=np.array([3, 5, 1], np.int32))
    a = good()
    for bad in (0, -1, 2**31):
        shp = a["input_shape"].copy()
        shp[1, 2] = bad
        msg = raises("input_shape", input_shape=shp)
        assert "[1, 2]" in msg
    # unused trailing entries are not checked
    shp = a["input_shape"].copy()
    shp[2, 3] = -5
    cc.Packed.from_arrays(**{**a, "input_shape": shp})


@pytest.mark.parametrize("op", [45, 99, -1, 2**31 - 1, -(2**31)])
def test_unknown_op(op):
    a = good()
    a["layers"][1, F.OP] = op
    msg = raises("layers", layers=a["layers"])
    assert "layers[1, 0]" in msg and "op" in msg


@pytest.mark.parametrize("bit", [1024, 1 << 12, 1 << 30, -(2**31)])
def test_unknown_flag_bits(bit):
    a = good()
    a["layers"][0, F.FLAGS] |= bit
    msg = raises("layers", layers=a["layers"])
    assert "layers[0, 7]" in msg and "flag" in msg


@pytest.mark.parametrize("row,src", [(1, 1), (1, 2), (0, 0), (2, 5), (3, -3), (0, -2), (1, -(2**31))])
def test_bad_src(row, src):
    """SRC naming itself, a later layer, a layer of another architecture or a missing input."""
    a = good()
    a["layers"][row, F.SRC] = src
    msg = raises("layers", layers=a["layers"])
    assert f"layers[{row}, 1]" in msg and "src" in msg


def test_nsrc_xoff_out_of_extra_src():
    a = good()
    for xoff, nsrc in ((1, 2), (-1, 2), (0, 3), (2**31 - 1, 2), (0, 2**31 - 1)):
        lay = a["layers"].copy()
        lay[2, F.XOFF], lay[2, F.NSRC] = xoff, nsrc
        msg = raises("layers", layers=lay)
        assert "layers[2" in msg
    lay = a["layers"].copy()
    lay[2, F.NSRC] = 0
    assert "layers[2, 2]" in raises("layers", layers=lay)
    # XOFF is ignored when NSRC = 1
    lay = a["layers"].copy()
    lay[1, F.XOFF] = -77
    cc.Packed.from_arrays(**{**a, "layers": lay})


@pytest.mark.parametrize("ref", [2, 3, -2, 10**6])
def test_extra_src_refers_forward_or_missing(ref):
    msg = raises("extra_src", extra_src=np.array([ref], np.int32))
    assert "extra_src[0]" in msg


def test_read_only_and_memmap_arrays(tmp_path):
    a = good()
    want = run_core(a, per_layer=True)
    ro = {k: v.copy() for k, v in a.items()}
    for v in ro.values():
        v.setflags(write=False)
    r = cc.count(cc.Packed.from_arrays(**ro))
    np.testing.assert_array_equal(r.flops, want["flops"])
    np.testing.assert_array_equal(r.output_shape, want["output_shape"])
    mm = {}
    for k, v in a.items():
        path = tmp_path / f"{k}.npy"
        np.save(path, v)
        mm[k] = np.load(path, mmap_mode="r")
        assert isinstance(mm[k], np.memmap)
    r2 = cc.count(cc.Packed.from_arrays(**mm))
    for k in ("params", "macs", "flops", "error", "output_shape", "activation_elements"):
        np.testing.assert_array_equal(getattr(r2, k), getattr(r, k))
    for k, v in run_reference(mm, per_layer=True).items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)


def test_empty_batch():
    a = dict(layers=np.zeros((0, F.N_FIELDS), np.int32), extra_src=np.zeros(0, np.int32),
             arch_offsets=np.zeros(1, np.int64), input_offsets=np.zeros(1, np.int64),
             input_shape=np.zeros((0, 4), np.int64), input_ndim=np.zeros(0, np.int32),
             batch_size=np.zeros(0, np.int64))
    p = cc.Packed.from_arrays(**a)
    assert len(p) == 0
    for backend in ("core", "reference"):
        r = cc.count(p, backend=backend)
        assert len(r) == 0 and r.params.shape == (0,) and r.output_shape.shape == (0, 5)
    assert run_core(a, per_layer=True)["layer_params"].shape == (0,)


def test_architecture_without_layers_is_identity():
    a = good()
    a["layers"] = np.ascontiguousarray(a["layers"][3:])
    a["arch_offsets"] = np.array([0, 0, 1], np.int64)
    r = cc.count(cc.Packed.from_arrays(**a))
    assert r.valid.tolist() == [True, True]
    assert r.output_shape[0].tolist() == [2, 3, 8, 8, 0] and r.params[0] == 0
    assert r.activation_elements[0] == 0


@pytest.mark.parametrize("backend", ["core", "reference"])
def test_invalid_architecture_does_not_stop_the_others(backend):
    a = good()
    rows = [a["layers"][:3], conv2d(-1, 3, 4, k=9)[None], a["layers"][3:], a["layers"][:3]]
    extra = np.array([0, 0], np.int32)
    lay = np.ascontiguousarray(np.concatenate(rows))
    lay[7, F.XOFF] = 1
    b = dict(layers=lay, extra_src=extra, arch_offsets=np.array([0, 3, 4, 5, 8], np.int64),
             input_offsets=np.array([0, 1, 2, 4, 5], np.int64),
             input_shape=np.array([[3, 8, 8, 0], [3, 8, 8, 0], [1, 4, 4, 0], [5, 0, 0, 0], [3, 8, 8, 0]], np.int64),
             input_ndim=np.array([3, 3, 3, 1, 3], np.int32), batch_size=np.array([2, 1, 1, 2], np.int64))
    r = cc.count(cc.Packed.from_arrays(**b), backend=backend)
    assert r.valid.tolist() == [True, False, True, True]
    assert r.error[1] == F.ERROR_CODES["KERNEL_TOO_LARGE"] and r.error_layer[1] == 0
    assert r.params.tolist() == [112, 0, 4, 112]
    assert r.macs[1] == r.flops[1] == r.activation_elements[1] == 0
    assert r.output_shape[1].tolist() == [0] * 5 and r.output_ndim[1] == 0
    assert r.error_layer.tolist() == [-1, 0, -1, -1]
    assert r.macs[0] == r.macs[3]


@pytest.mark.parametrize("backend", ["core", "reference"])
def test_overflow_is_an_error_code_not_a_wrapped_number(backend):
    # input 3 x (2**31-1) x (2**31-1): numel fits int64 (about 1.4e19 / ... no: 3 * 2**62 > 2**63)
    # batch 1, 1 channel: numel = (2**31-1)**2 < 2**63; a 3x3 conv to 64 channels overflows
    big = DIM_MAX
    a = dict(layers=np.ascontiguousarray(conv2d(-1, 1, 64, k=3)[None]), extra_src=np.zeros(0, np.int32),
             arch_offsets=np.array([0, 1], np.int64), input_offsets=np.array([0, 1], np.int64),
             input_shape=np.array([[1, big, big, 0]], np.int64), input_ndim=np.array([3], np.int32),
             batch_size=np.array([1], np.int64))
    r = cc.count(cc.Packed.from_arrays(**a), backend=backend)
    assert r.error[0] == F.ERROR_CODES["OVERFLOW"] and r.error_layer[0] == 0
    assert r.macs[0] == 0 and r.flops[0] == 0 and not r.valid[0]
    # 3 channels: the network input itself has more than 2**63 elements
    a["input_shape"] = np.array([[3, big, big, 0]], np.int64)
    a["layers"][0, F.IN] = 3
    r = cc.count(cc.Packed.from_arrays(**a), backend=backend)
    assert r.error[0] == F.ERROR_CODES["OVERFLOW"] and not r.valid[0]
    assert (r.macs >= 0).all() and r.params[0] == 0


def test_overflow_of_a_running_total():
    # each conv's MACs fit int64 but the sum of eight of them does not
    big = DIM_MAX
    k = 1
    rows = [conv2d(-1 if i == 0 else i - 1, 1, 1, k=k, bias=False) for i in range(8)]
    a = dict(layers=np.ascontiguousarray(np.stack(rows)), extra_src=np.zeros(0, np.int32),
             arch_offsets=np.array([0, 8], np.int64), input_offsets=np.array([0, 1], np.int64),
             input_shape=np.array([[1, big, big, 0]], np.int64), input_ndim=np.array([3], np.int32),
             batch_size=np.array([1], np.int64))
    core, ref = run_core(a), run_reference(a)
    # activation_elements: (2**31-1)**2 = 2**62 - 2**32 + 1 per layer; two fit int64, three do not
    # (the peak of live activations, input included, may overflow one layer earlier)
    assert core["error"][0] == ref["error"][0] == F.ERROR_CODES["OVERFLOW"]
    assert core["error_layer"][0] == ref["error_layer"][0]
    assert core["error_layer"][0] in (1, 2)


MUTATE = textwrap.dedent("""
    import sys, numpy as np, cnncore as cc
    from cnncore import _format as F
    sys.path.insert(0, {tests!r})
    from test_packed_validation import good
    a = good()
    p = cc.Packed.from_arrays(**a)
    lay, extra = a["layers"], a["extra_src"]
    {mutation}
    for backend in ("core", "reference"):
        try:
            r = cc.count(p, backend=backend)
        except ValueError as e:  # cc.count re-validating the arrays is fine too
            print(backend, "ValueError", e)
            continue
        print(backend, r.error.tolist(), r.error_layer.tolist(), r.flops.tolist())
""")

MUTATIONS = {
    "src_far": "lay[1, F.SRC] = 10**6",
    "src_neg": "lay[1, F.SRC] = -(2**31)",
    "src_self": "lay[2, F.SRC] = 2",
    "op_99": "lay[1, F.OP] = 99",
    "op_neg": "lay[0, F.OP] = -(2**31)",
    "xoff": "lay[2, F.XOFF] = 2**31 - 1",
    "xoff_neg": "lay[2, F.XOFF] = -(2**31)",
    "nsrc": "lay[2, F.NSRC] = 2**31 - 1",
    "nsrc_neg": "lay[2, F.NSRC] = -5",
    "extra": "extra[0] = 10**6",
    "extra_neg": "extra[0] = -(2**31)",
    "arch_offsets": "a['arch_offsets'][1] = 10**12",
    "arch_offsets_neg": "a['arch_offsets'][1] = -(10**12)",
    "input_offsets": "a['input_offsets'][1] = 10**12",
    "input_offsets_empty": "a['input_offsets'][1] = 0",
    "input_ndim": "a['input_ndim'][0] = 2**31 - 1",
    "input_ndim_neg": "a['input_ndim'][0] = -7",
    "input_shape": "a['input_shape'][0, 0] = -1",
    "batch": "a['batch_size'][0] = -(2**62)",
    "flags": "lay[:, F.FLAGS] = -1",
    "everything": "lay[:] = -(2**31); extra[:] = 2**31 - 1",
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_after_validation_never_crashes(name, tmp_path):
    """Arrays changed after validation: cc.count returns error codes, the process survives."""
    import os
    code = MUTATE.format(tests=os.path.dirname(__file__), mutation=MUTATIONS[name])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    if not lines["core"].startswith("ValueError"):
        core_err = eval(lines["core"].split("]")[0] + "]")
        # error codes of docs/format.md (BAD_FIELD, UNKNOWN_OP, BAD_INPUT_REF, or for a mutation
        # that leaves the architecture well-formed, any per-architecture code), never a crash
        assert all(0 <= e < len(F.ERRORS) for e in core_err)


@pytest.mark.parametrize("name,codes", [("src_far", {2}), ("op_99", {1}), ("extra", {2}),
                                        ("op_neg", {1}), ("src_self", {2})])
def test_mutation_error_codes(name, codes):
    a = good()
    cc.Packed.from_arrays(**a)
    lay, extra = a["layers"], a["extra_src"]  # noqa: F841 (used by exec)
    exec(MUTATIONS[name])
    for run in (run_core, run_reference):
        out = run(a)
        assert int(out["error"][0]) in codes, (run.__name__, out["error"])
        assert out["error"][1] == 0  # the other architecture is untouched


def test_adaptive_pool_huge_output_is_fast():
    """AdaptiveAvgPool2d((2**31-1, 1)) on a 7x7 input is valid (output 2**31-1 x 1): the window
    sum has a closed form (in + out - gcd), so counting it must not take seconds."""
    row = _row(F.OPS["AdaptiveAvgPool2d"], k0=DIM_MAX, k1=1)
    a = dict(layers=np.ascontiguousarray(row[None]), extra_src=np.zeros(0, np.int32),
             arch_offsets=np.array([0, 1], np.int64), input_offsets=np.array([0, 1], np.int64),
             input_shape=np.array([[3, 7, 7, 0]], np.int64), input_ndim=np.array([3], np.int32),
             batch_size=np.array([1], np.int64))
    t = time.perf_counter()
    core = run_core(a)
    elapsed = time.perf_counter() - t
    ref = run_reference(a)
    for k in ref:
        np.testing.assert_array_equal(core[k], ref[k], err_msg=k)
    assert core["error"][0] == 0
    assert elapsed < 0.5, f"core took {elapsed:.1f} s for one adaptive pooling layer"
