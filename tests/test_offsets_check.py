"""check_offsets (cnncore/packing.py), which cc.count runs on every call: one compiled pass over both
offset arrays (`_core.offsets_max_rows`) that returns the most rows (network inputs + layers) of one
architecture, and, when anything is wrong, the numpy checks that name it. The expected values are
computed here with plain Python integers, one architecture at a time."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import _core
from cnncore.packing import check_offsets

I64_MAX = 2 ** 63 - 1


def _arrays(arch_offsets, input_offsets, n_rows=None, n_inputs=None):
    """Packed-shaped arrays around the two offset arrays (by default as many rows and inputs as
    their last entries say)."""
    off = np.asarray(arch_offsets, np.int64)
    ioff = np.asarray(input_offsets, np.int64)
    n_rows = int(off[-1]) if n_rows is None else n_rows
    n_inputs = int(ioff[-1]) if n_inputs is None else n_inputs
    return dict(layers=np.zeros((n_rows, 25), np.int32), extra_src=np.zeros(0, np.int32), arch_offsets=off,
                input_offsets=ioff, input_shape=np.ones((n_inputs, 4), np.int64),
                input_ndim=np.ones(n_inputs, np.int32), batch_size=np.ones(len(off) - 1, np.int64))


def _most_rows_by_hand(arch_offsets, input_offsets):
    most = 0
    for a in range(len(arch_offsets) - 1):
        most = max(most, arch_offsets[a + 1] - arch_offsets[a] + input_offsets[a + 1] - input_offsets[a])
    return most


@pytest.mark.parametrize("seed", range(5))
def test_most_rows_of_random_valid_offsets(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    rows = rng.integers(0, 40, n) * (rng.random(n) < 0.9)  # some empty architectures
    inputs = rng.integers(1, 4, n)
    off = [0] + np.cumsum(rows).tolist()
    ioff = [0] + np.cumsum(inputs).tolist()
    arrays = _arrays(off, ioff)
    assert check_offsets(arrays) == _most_rows_by_hand(off, ioff)
    assert _core.offsets_max_rows(arrays["arch_offsets"], arrays["input_offsets"], off[-1], ioff[-1]) == \
        _most_rows_by_hand(off, ioff)


def test_no_architecture_and_one():
    assert check_offsets(_arrays([0], [0])) == 0
    assert check_offsets(_arrays([0, 0], [0, 1])) == 1  # the identity network: its input only
    assert check_offsets(_arrays([0, 7], [0, 2])) == 9


@pytest.mark.parametrize("off, ioff, message", [
    ([0, 3, 2, 5], [0, 1, 2, 3], r"arch_offsets decreases at architecture 1 \(3 -> 2\)"),
    ([0, 2, 4, 5], [0, 2, 1, 3], r"input_offsets decreases at architecture 1 \(2 -> 1\)"),
    ([1, 2, 5], [0, 1, 3], "arch_offsets must start at 0 and end at 5, got 1 .. 5"),
    ([0, 2, 5], [0, 1, 3], None),  # valid: 5 rows at most (3 layers + 2 inputs)
    # the offsets rise by wrapped (unsigned) differences below 2^63 everywhere, yet drop from
    # 2^63 - 1 to -2: the pass must see the negative offset, not only the differences' signs
    ([0, I64_MAX, -2, 5], [0, 1, 2, 3], "arch_offsets decreases at architecture 1"),
    ([0, 5, 5], [0, I64_MAX, 3], "input_offsets decreases at architecture 1"),
])
def test_faults_are_named(off, ioff, message):
    arrays = _arrays(off, ioff, n_rows=5, n_inputs=3)
    fast = _core.offsets_max_rows(arrays["arch_offsets"], arrays["input_offsets"], 5, 3)
    if message is None:
        assert fast == check_offsets(arrays) == 5
        return
    assert fast == -1
    with pytest.raises(ValueError, match=message):
        check_offsets(arrays)


def test_offsets_that_do_not_end_at_the_arrays_length():
    arrays = _arrays([0, 2, 5], [0, 1, 2], n_rows=6)
    assert _core.offsets_max_rows(arrays["arch_offsets"], arrays["input_offsets"], 6, 2) == -1
    with pytest.raises(ValueError, match="arch_offsets must start at 0 and end at 6, got 0 .. 5"):
        check_offsets(arrays)
    arrays = _arrays([0, 2, 5], [0, 1, 2], n_inputs=3)
    with pytest.raises(ValueError, match="input_offsets must start at 0 and end at 3, got 0 .. 2"):
        check_offsets(arrays)


def test_other_dtypes_and_layouts_take_the_numpy_checks():
    """Offsets of another dtype or not contiguous (a caller's dict changed after validation) skip the
    compiled pass: the numpy checks give the same answer and the same errors."""
    off, ioff = [0, 3, 3, 10], [0, 2, 3, 4]
    want = _most_rows_by_hand(off, ioff)
    arrays = _arrays(off, ioff)
    assert check_offsets(dict(arrays, arch_offsets=arrays["arch_offsets"].astype(np.int32))) == want
    strided = np.zeros(8, np.int64)[::2]
    strided[:] = ioff
    assert check_offsets(dict(arrays, input_offsets=strided)) == want
    bad = np.array([0, 3, 2, 10], np.int32)
    with pytest.raises(ValueError, match="arch_offsets decreases at architecture 1"):
        check_offsets(dict(arrays, arch_offsets=bad))


def test_count_checks_offsets_changed_after_validation():
    """cc.count checks the offsets again on every call: a decrease made after cc.Packed validated the
    arrays is a ValueError naming the array, before the core runs."""
    packed = cc.pack([cc.Sequential(cc.ReLU(), cc.ReLU()), cc.Sequential(cc.ReLU())], [(3, 4), (3, 4)])
    assert cc.count(packed).error.tolist() == [0, 0]
    packed._arrays["arch_offsets"][1] = 4  # architecture 0 now ends past architecture 1's end (3)
    with pytest.raises(ValueError, match="arch_offsets decreases at architecture 1"):
        cc.count(packed)
