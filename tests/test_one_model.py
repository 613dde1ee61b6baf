"""The one-model path: `_core.layer_output` (a layer's shape at its call, without numpy) against the
pure-Python reference, and the public behaviour it serves (shape at the call, the error at the
call, the same counts) checked against torch and hand calculations.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnncore as cc
from cnncore import _core
from cnncore import _format as F
from cnncore import reference

from _archgen import NpRng, gen_arch


def _one_layer_reference(row, shapes):
    """The reference's answer for `row` alone, reading network inputs 0..n-1 (batch first)."""
    n = len(shapes)
    r = list(row)
    r[F.SRC], r[F.NSRC], r[F.XOFF] = -1, n, 0
    shp = np.zeros((n, 4), np.int64)
    for j, s in enumerate(shapes):
        shp[j, :len(s) - 1] = s[1:]
    arrays = dict(layers=np.array([r], np.int32), extra_src=np.array([-1 - j for j in range(1, n)], np.int32),
                  arch_offsets=np.array([0, 1], np.int64), input_offsets=np.array([0, n], np.int64),
                  input_shape=shp, input_ndim=np.array([len(s) - 1 for s in shapes], np.int32),
                  batch_size=np.array([shapes[0][0]], np.int64))
    out = reference.count_arrays(arrays, per_layer=True)
    if out["error"][0]:
        return out["error"][0], None, None
    nd = out["layer_ndim"][0]
    counts = tuple(out[k][0] for k in ("layer_params", "layer_buffers", "layer_macs", "layer_flops"))
    return 0, tuple(out["layer_shape"][0][:nd]), counts


def _random_calls(seed, n_arch):
    """(row, input shapes) pairs: every row of random architectures (tests/_archgen.py: plausible
    and hostile fields, all 45 ops) with the shapes its inputs really have, as the reference
    computes them; rows after an architecture's first error are skipped (their inputs are unknown)."""
    rng = NpRng(seed)
    for _ in range(n_arch):
        a = gen_arch(rng)
        arrays = a.arrays(0)
        out = reference.count_arrays(arrays, per_layer=True)
        stop = out["error_layer"][0] if out["error"][0] else len(a.rows)
        shapes = [(a.batch, *s) for s in a.inputs]
        for k in range(min(stop + 1, len(a.rows))):
            row = a.rows[k]
            refs = [row[F.SRC]] + (a.extra[row[F.XOFF]:row[F.XOFF] + row[F.NSRC] - 1] if row[F.NSRC] > 1 else [])
            if any(ref >= k for ref in refs) or any(-1 - ref >= len(a.inputs) for ref in refs if ref < 0):
                continue  # a bad reference: the call path never writes one
            ins = [shapes[-1 - ref] if ref < 0 else
                   tuple(out["layer_shape"][ref][:out["layer_ndim"][ref]]) for ref in refs]
            row = list(row)
            row[F.FLAGS] &= ~(F.F_UNUSED | F.F_OUTPUT)  # the model's flags: layer_output counts the op
            yield row, ins


@pytest.mark.parametrize("seed", range(4))
def test_layer_output_matches_reference_on_random_rows(seed):
    n, errors = 0, 0
    for row, ins in _random_calls(seed, 150):
        code, layer, shape, *counts = _core.layer_output(row, ins)
        ref_code, ref_shape, ref_counts = _one_layer_reference(row, ins)
        assert code == ref_code, (row, ins)
        if code == 0:
            assert shape == ref_shape and tuple(counts[:4]) == ref_counts, (row, ins)
            assert counts[4] == int(np.prod(shape))  # the output's elements
        else:
            assert shape is None
            errors += 1
        n += 1
    assert n > 500 and 0 < errors < n  # the sample reaches both valid calls and errors


def test_layer_output_hand_calculation():
    # Conv2d(3, 64, 7, stride 2, padding 3, bias=False) on 1x3x224x224: out 112 = (224 + 6 - 7) // 2 + 1;
    # params 64*3*7*7 = 9408; MACs 9408 * 112 * 112 = 118,013,952; FLOPs numel(y) * (2n - 1) with
    # n = 3*7*7 = 147 (docs/conventions.md): 802,816 * 293 = 235,225,088
    row = cc.Conv2d(3, 64, 7, 2, 3, bias=False).row()
    assert _core.layer_output(row, [(1, 3, 224, 224)]) == (
        0, 0, (1, 64, 112, 112), 9408, 0, 118_013_952, 235_225_088, 64 * 112 * 112)
    # torch.cat of 70 tensors (more than the stack buffer holds): channels add up
    assert _core.layer_output(cc.graph.Cat(1).row(), [(2, 1, 5)] * 70)[2] == (2, 70, 5)


def test_layer_output_bad_input_is_an_error_code_not_a_crash():
    row = cc.ReLU().row()
    big = 2**31 - 1
    assert _core.layer_output(row, [])[:3] == (F.ERROR_CODES["BAD_FIELD"], -1, None)
    assert _core.layer_output(row, [(1,)])[:2] == (F.ERROR_CODES["BAD_FIELD"], -1)  # 1 dim
    assert _core.layer_output(row, [(1, 0, 3)])[:2] == (F.ERROR_CODES["BAD_FIELD"], -1)
    assert _core.layer_output(row, [(big, big, big, big)])[:2] == (F.ERROR_CODES["OVERFLOW"], -1)
    with pytest.raises(ValueError, match="25 fields"):
        _core.layer_output([0] * 3, [(1, 2)])
    with pytest.raises(TypeError):
        _core.layer_output(row, [(1, "a")])
    with pytest.raises(OverflowError):
        _core.layer_output([2**40] + [0] * 24, [(1, 2)])


# ---- the public behaviour the fast path serves -----------------------------------------------------
def test_shape_error_at_the_call_names_the_layer_and_input():
    x = cc.Input((3, 32, 32))
    with pytest.raises(cc.ShapeError, match=r"conv \(Conv2d\) called on \(1, 3, 32, 32\)") as e:
        cc.Conv2d(4, 8, 3)(x, name="conv")
    assert e.value.code == F.ERROR_CODES["IN_CHANNELS"]
    seq = cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU(), cc.Sequential(cc.Linear(5, 2)))
    with pytest.raises(cc.ShapeError, match=r"head: layer 2 \('head.2.0', Linear\)"):
        seq(x, name="head")  # a chain of nested Sequentials names its failing row


def test_sum_overflowing_int64_is_caught_at_the_call():
    # Linear(n, n) with n = 2**31 - 1 on (1, n): FLOPs numel(y) * (2n - 1 + bias) = n * 2n = 2**63 - 2**33 + 2
    # fit int64 (docs/conventions.md), the running total of two does not: the call fails at row 1,
    # as count_packed (cc.count of the same stack, the batch machinery) reports it
    n = 2**31 - 1
    x = cc.Input((n,))
    assert cc.Linear(n, n)(x).shape == (1, n)
    seq = cc.Sequential(cc.Linear(n, n), cc.Linear(n, n))
    with pytest.raises(cc.ShapeError) as at_call:
        seq(x, name="s")
    with pytest.raises(cc.ShapeError) as at_count:
        cc.count(seq, (n,))
    assert at_call.value.code == at_count.value.code == F.ERROR_CODES["OVERFLOW"]
    assert at_call.value.layer_index == at_count.value.layer_index == 1
    assert "s: layer 1 ('s.1', Linear)" in str(at_call.value)


def test_one_model_counts_match_torch_and_repeat():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    nn = torch.nn
    tm = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                       nn.Conv2d(16, 32, 3, groups=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    x = cc.Input((3, 64, 64), batch_size=2)
    y = cc.Sequential(cc.Conv2d(3, 16, 3, 2, 1, bias=False), cc.BatchNorm2d(16), cc.ReLU())(x)
    y = cc.Conv2d(16, 32, 3, groups=2)(y)
    y = cc.Linear(32, 10)(cc.flatten(cc.AdaptiveAvgPool2d(1)(y), 1))
    m = cc.Model(x, y)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = tm(torch.randn(2, 3, 64, 64))
    assert y.shape == tuple(out.shape)
    for _ in range(2):  # a second count of the same model gives the same answer
        r = cc.count(m)
        assert r.params == sum(p.numel() for p in tm.parameters())
        conv_linear_macs = sum(row.macs for row in r.layers if row.type in ("Conv2d", "Linear"))
        assert 2 * conv_linear_macs == fc.get_total_flops()
        assert r.output_shape == (2, 10) and r.layers[-1].output_shape == (2, 10)
