"""Property tests: the Cython core and the pure-Python reference agree on every output.

Batches are generated directly as packed arrays (tests/_archgen.py): several architectures per
batch, 0-30 rows each, one or two network inputs, multi-input Add/Mul/Cat rows, every op code, with
fields mostly from plausible ranges and, per architecture, a share of edge values (0, negatives,
2**31-1, huge inputs). Every batch goes through `cc.Packed.from_arrays` (validation) first.
The hypothesis profile ("ci" when $CI is set, else "dev") is registered in tests/conftest.py.
"""
import collections

import numpy as np
import pytest
from hypothesis import event, given, target

import cnncore as cc
from cnncore import _format as F
from cnncore.counting import run_core, run_reference

import _archgen as G

PER_ARCH = ("params", "buffers", "macs", "flops", "activation_elements", "output_shape",
            "output_ndim", "error", "error_layer")
PER_LAYER = ("layer_params", "layer_buffers", "layer_macs", "layer_flops", "layer_shape", "layer_ndim")


def _name(code):
    return F.ERRORS.get(int(code), (f"code {int(code)}",))[0]


def assert_same(core, ref, arrays, keys):
    """Field-by-field equality; on failure name the architecture and both answers."""
    off = arrays["arch_offsets"]
    for k in keys:
        c, r = np.asarray(core[k]), np.asarray(ref[k])
        assert c.shape == r.shape, f"{k}: core shape {c.shape} != reference shape {r.shape}"
        if np.array_equal(c, r):
            continue
        bad = np.argwhere(c != r)[0]
        i = int(bad[0])
        if k.startswith("layer_"):
            a = int(np.searchsorted(off, i, side="right") - 1)
            where = f"layer row {i} (architecture {a}, row {i - off[a]})"
        else:
            a = i
            where = f"architecture {a}"
        raise AssertionError(
            f"{k} differs at {where}: core {c[i].tolist()} != reference {r[i].tolist()}; "
            f"core error {_name(core['error'][a])} at layer {int(core['error_layer'][a])}, "
            f"reference error {_name(ref['error'][a])} at layer {int(ref['error_layer'][a])}; "
            f"rows {arrays['layers'][off[a]:off[a + 1]].tolist()}")


@given(G.batch_strategy())
def test_core_matches_reference(arrays):
    packed = cc.Packed.from_arrays(**arrays)  # the generated structure is always valid
    core = run_core(packed.arrays(), per_layer=False, n_threads=1)
    ref = run_reference(packed.arrays(), per_layer=False)
    assert set(core) == set(ref)
    assert set(PER_ARCH) <= set(core)
    for e in core["error"]:
        event(f"error {_name(e)}")
    target(float(np.mean(core["error"] == 0)), label="share of valid architectures")
    assert_same(core, ref, arrays, PER_ARCH + _others(core))


def _others(out):
    """Keys beyond the documented ones (e.g. peak_activation_elements): compared as well."""
    return tuple(sorted(set(out) - set(PER_ARCH) - set(PER_LAYER)))


@given(G.batch_strategy(max_arch=3))
def test_core_matches_reference_per_layer(arrays):
    packed = cc.Packed.from_arrays(**arrays)
    core = run_core(packed.arrays(), per_layer=True, n_threads=1)
    ref = run_reference(packed.arrays(), per_layer=True)
    assert set(core) == set(ref)
    assert set(PER_LAYER) <= set(core)
    assert_same(core, ref, arrays, PER_ARCH + PER_LAYER + _others(core))
    # the per-layer rows of a valid architecture add up to its totals
    off = arrays["arch_offsets"]
    for a in np.nonzero(core["error"] == 0)[0]:
        rows = slice(off[a], off[a + 1])
        assert core["layer_params"][rows].sum() == core["params"][a]
        assert core["layer_buffers"][rows].sum() == core["buffers"][a]


def _sample(n_arch, seed0=0):
    return G.assemble([G.gen_arch(G.NpRng(seed0 + s)) for s in range(n_arch)])


@pytest.fixture(scope="module")
def big_sample():
    """A fixed sample of 3000 generated architectures (seeded, the same on every run)."""
    return _sample(3000)


def test_generator_is_not_vacuous(big_sample):
    """A fair share of the generated architectures is valid, and the invalid ones reach (almost)
    every per-architecture error code: the property tests above cannot pass by comparing zeros."""
    cc.Packed.from_arrays(**big_sample)
    core = run_core(big_sample, n_threads=1)
    seen = collections.Counter(_name(e) for e in core["error"])
    assert seen["OK"] >= 0.1 * len(core["error"]), seen
    # UNKNOWN_OP and BAD_INPUT_REF cannot pass validation (see test_packed_validation.py for them)
    expected = set(F.ERROR_CODES) - {"UNKNOWN_OP", "BAD_INPUT_REF"}
    missing = expected - set(seen)
    assert not missing, f"never generated: {sorted(missing)} (seen {seen})"
    # valid architectures have real counts: many layers, MACs of several magnitudes
    ok = core["error"] == 0
    assert (core["macs"][ok] > 0).sum() >= 50
    assert len(set(np.log10(core["macs"][ok & (core["macs"] > 0)]).astype(int))) >= 5


def test_fixed_sample_core_matches_reference(big_sample):
    """The same comparison over the fixed sample (deterministic, independent of hypothesis)."""
    core = run_core(big_sample, per_layer=True, n_threads=1)
    ref = run_reference(big_sample, per_layer=True)
    assert set(core) == set(ref)
    assert_same(core, ref, big_sample, PER_ARCH + PER_LAYER + _others(core))


@pytest.mark.skipif(not cc.openmp_enabled(), reason="core built without OpenMP")
def test_threads_give_identical_results(big_sample):
    one = run_core(big_sample, per_layer=True, n_threads=1)
    two = run_core(big_sample, per_layer=True, n_threads=2)
    assert set(one) == set(two)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)
    # and the public API's default (threads chosen by batch size) agrees too
    default = cc.count(cc.Packed.from_arrays(**big_sample))
    np.testing.assert_array_equal(default.flops, one["flops"])
    np.testing.assert_array_equal(default.error, one["error"])


def test_fast_chain_path_equals_general_path(big_sample):
    """The core counts plain chains of common ops on a fast path; every other architecture (and
    any that fails a check there) goes the general way. Both must give identical answers."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _data import make_batch  # realistic chains (conv/BN/ReLU/pool/linear), mostly valid

    for arrays in (big_sample, make_batch(2000, seed=3)):
        packed = cc.Packed.from_arrays(**arrays)
        fast = run_core(packed.arrays(), n_threads=1)
        general = run_core(packed.arrays(), n_threads=1, fast_path=False)
        assert set(fast) == set(general)
        for k in fast:
            assert np.array_equal(fast[k], general[k]), k
    assert np.mean(fast["error"] == 0) > 0.9  # the chains are mostly valid: the fast path did the work
    ref = run_reference(cc.Packed.from_arrays(**make_batch(300, seed=4)).arrays())
    core = run_core(cc.Packed.from_arrays(**make_batch(300, seed=4)).arrays(), n_threads=1)
    assert_same(core, ref, make_batch(300, seed=4), PER_ARCH + _others(core))
