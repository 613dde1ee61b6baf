"""The public API as a user meets it: packing several models, batch results, the README's code."""
import re
from pathlib import Path

import numpy as np
import pytest

import cnncore as cc

README = Path(__file__).resolve().parents[1] / "README.md"


def _small(w):
    # conv 3->w 3x3 + bias: 27w + w; BN: 2w params, 2w + 1 buffers; Linear w->10: 10w + 10
    return cc.Sequential(cc.Conv2d(3, w, 3, padding=1), cc.BatchNorm2d(w), cc.ReLU(),
                         cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(w, 10))


def test_pack_several_models_equals_counting_each(backend):
    x = cc.Input((8, 16, 16))
    h = cc.Conv2d(8, 8, 3, padding=1)(x)
    graph = cc.Model(x, cc.ReLU()(x + h))
    bad = cc.Sequential(cc.Conv2d(3, 8, 3), cc.Conv2d(4, 8, 3))  # 8 channels reach in_channels=4
    models = [_small(16), graph, bad, _small(32), cc.zoo.resnet18()]
    shapes = [(3, 32, 32), None, (3, 32, 32), (3, 64, 64), None]
    res = cc.count(cc.pack(models, shapes), backend=backend)
    assert len(res) == 5
    assert res.valid.tolist() == [True, True, False, True, True]
    assert res.error[2] == 5 and res.error_layer[2] == 1  # IN_CHANNELS at row 1
    # hand: 27*16 + 16 + 2*16 + 10*16 + 10 = 650; 27*32 + 32 + 64 + 330 = 1290
    assert res.params[0] == 650 and res.params[3] == 1290
    assert res.params[4] == 11_689_512  # torchvision's resnet18 num_params
    for i, (m, s) in enumerate(zip(models, shapes)):
        if i == 2:
            assert res.params[i] == res.macs[i] == 0
            continue
        one = cc.count(m, s, backend=backend)
        assert (res.params[i], res.buffers[i], res.macs[i], res.flops[i]) == (one.params, one.buffers, one.macs, one.flops)
        assert tuple(res.output_shape[i][:res.output_ndim[i]]) == one.output_shape
        assert res.peak_activation_bytes[i] == one.peak_activation_bytes


def test_batch_result_fields_and_explain():
    packed = cc.pack([_small(16), cc.Sequential(cc.Conv2d(3, 8, 3), cc.Conv2d(4, 8, 3))], (3, 32, 32))
    res = cc.count(packed, dtype="float16")
    for name in cc.BatchResult.FIELDS:
        assert len(getattr(res, name)) == 2, name
    assert res.param_bytes[0] == 650 * 2  # float16: 2 bytes per parameter
    assert "valid" in cc.explain(packed, 0)
    text = cc.explain(packed, 1)
    assert "architecture 1" in text and "4 channels" in text and "got 8 channels" in text
    with pytest.raises(IndexError):
        cc.explain(packed, 2)


def test_packed_arrays_round_trip():
    packed = cc.pack([_small(16), _small(24)], [(3, 32, 32), (3, 40, 40)], batch_size=[1, 4])
    again = cc.Packed.from_arrays(**packed.arrays())
    a, b = cc.count(packed), cc.count(again)
    assert a.params.tolist() == b.params.tolist() and a.macs.tolist() == b.macs.tolist()
    # batch 4 at 40x40: conv MACs = 4 * 24 * 40 * 40 * 27 (hand), Linear 4 * 10 * 24
    assert a.macs[1] == 4 * 24 * 40 * 40 * 27 + 4 * 10 * 24


@pytest.mark.parametrize("block", range(len(re.findall(r"```python\n", README.read_text()))))
def test_readme_python_blocks_run(block):
    """Every python block of the README runs as pasted (blocks build on the ones before)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    env = {}
    for code in blocks[:block]:
        if "ShapeError" not in code and "LocalCluster" not in code:  # (the Dask block: see below)
            exec(compile(code, "README", "exec"), env)
    code = blocks[block]
    if "LocalCluster" in code:  # the Dask block: tests/test_sweep.py runs that on a LocalCluster
        pytest.importorskip("dask.distributed")
        return
    if "ShapeError" in code:  # the block that shows an error message
        with pytest.raises(cc.ShapeError, match="expected input"):
            exec(compile(code, "README", "exec"), env)
    else:
        exec(compile(code, "README", "exec"), env)


def test_readme_numbers():
    text = README.read_text()
    r = cc.count(cc.Sequential(
        cc.Conv1d(1, 16, 3, padding=1), cc.ReLU(), cc.MaxPool1d(2),
        cc.Conv1d(16, 32, 3, padding=1), cc.ReLU(), cc.MaxPool1d(2),
        cc.Flatten(), cc.Linear(800, 128), cc.ReLU(), cc.Linear(128, 10)), (1, 100))
    assert "105450, 185280, (1, 10)" in text and (r.params, r.macs, r.output_shape) == (105450, 185280, (1, 10))
    assert "4,089,184,256" in text and cc.count(cc.zoo.resnet50()).macs == 4_089_184_256


def test_count_streams_chunks_lazily():
    """cc.count over an iterable of Packed chunks yields one BatchResult per chunk, on demand."""
    made = []

    def chunks():
        for w in (8, 16, 24):
            made.append(w)
            yield cc.pack([_small(w)] * 3, (3, 16, 16))

    stream = cc.count(chunks())
    assert made == []  # nothing packed or counted yet
    first = next(stream)
    assert made == [8] and len(first) == 3
    # hand: 27*8 + 8 + 2*8 + 10*8 + 10 = 330
    assert first.params.tolist() == [330] * 3
    assert [r.params[0] for r in stream] == [650, 970]  # 27w + w + 2w + 10w + 10
    with pytest.raises(TypeError, match="cc.Packed chunks"):
        list(cc.count(iter([_small(8)])))


def test_readme_columnar_numbers():
    """The README's Columnar example prints what the four models counted one by one give."""
    assert "[650 1290 2570 5130]" in README.read_text()
    one = [cc.count(cc.Sequential(cc.Conv2d(3, w, 3, padding=1), cc.BatchNorm2d(w), cc.ReLU(),
                                  cc.AdaptiveAvgPool2d(1), cc.Flatten(), cc.Linear(w, 10)), (3, 32, 32)).params
           for w in (16, 32, 64, 128)]
    assert one == [650, 1290, 2570, 5130]
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    env = {"cc": cc}
    exec(compile(next(b for b in blocks if "cc.Columnar(" in b), "README", "exec"), env)
    assert cc.count(env["col"]).params.tolist() == one
