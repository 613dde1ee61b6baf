"""cc.ShapeError for invalid single models, cc.explain for batches, and clean Python exceptions
(never a crash) for hostile arguments to the public API."""
import math

import numpy as np
import pytest

import cnncore as cc
from cnncore import _format as F


def shape_error(model, shape, backend="core", **kw):
    with pytest.raises(cc.ShapeError) as e:
        cc.count(model, shape, backend=backend, **kw)
    return e.value


# (model, input shape, failing layer index, layer type, error name, words the message must contain)
CASES = {
    "channels": (lambda: cc.Sequential(cc.Conv2d(3, 16, 3), cc.ReLU(), cc.Conv2d(8, 4, 3)), (3, 32, 32),
                 2, "Conv2d", "IN_CHANNELS", ["8", "16", "channels"]),
    "groups": (lambda: cc.Sequential(cc.Conv2d(3, 16, 3, groups=2)), (3, 32, 32),
               0, "Conv2d", "GROUPS", ["groups", "divisible", "3", "16", "2"]),
    "kernel": (lambda: cc.Sequential(cc.Conv2d(3, 16, 7)), (3, 5, 5),
               0, "Conv2d", "KERNEL_TOO_LARGE", ["Kernel size can't be greater than actual input size"]),
    "pool_pad": (lambda: cc.Sequential(cc.MaxPool2d(2, padding=2)), (3, 5, 5),
                 0, "MaxPool2d", "POOL_PADDING", ["pad should be at most half of kernel size"]),
    "linear": (lambda: cc.Sequential(cc.Flatten(), cc.Linear(100, 10)), (3, 5, 5),
               1, "Linear", "IN_CHANNELS", ["mat1 and mat2 shapes cannot be multiplied", "75", "100"]),
    "same_stride": (lambda: cc.Sequential(cc.Conv2d(3, 4, 3, stride=2, padding="same")), (3, 5, 5),
                    0, "Conv2d", "SAME_STRIDE", ["padding='same' is not supported for strided convolutions"]),
    "output_size": (lambda: cc.Sequential(cc.MaxPool2d(4, stride=4), cc.MaxPool2d(4)), (3, 5, 5),
                    1, "MaxPool2d", "OUTPUT_SIZE", ["output size is too small"]),
    "bn_channels": (lambda: cc.Sequential(cc.Conv2d(3, 8, 1), cc.BatchNorm2d(16)), (3, 5, 5),
                    1, "BatchNorm2d", "IN_CHANNELS", ["16", "8", "channels"]),
    "output_padding": (lambda: cc.Sequential(cc.ConvTranspose2d(3, 8, 3, output_padding=1)), (3, 5, 5),
                       0, "ConvTranspose2d", "OUTPUT_PADDING", ["output padding must be smaller than either stride or dilation"]),
    "ndim": (lambda: cc.Sequential(cc.Conv2d(3, 8, 3)), (3, 5),
             0, "Conv2d", "NDIM", ["3 dimensions"]),
    "layernorm": (lambda: cc.Sequential(cc.LayerNorm(7)), (6, 5, 5),
                  0, "LayerNorm", "NORM_SHAPE", ["normalized_shape", "7"]),
    "softmax": (lambda: cc.Sequential(cc.Softmax(dim=4)), (6, 5, 5),
                0, "Softmax", "DIM_RANGE", ["Dimension out of range"]),
    "flatten": (lambda: cc.Sequential(cc.Flatten(3, 1)), (6, 5, 5),
                0, "Flatten", "FLATTEN_ORDER", ["start_dim", "end_dim"]),
    "shuffle": (lambda: cc.Sequential(cc.ChannelShuffle(4)), (6, 5, 5),
                0, "ChannelShuffle", "SHUFFLE_GROUPS", ["divisible by groups"]),
}


@pytest.mark.parametrize("backend", ["core", "reference"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_shape_error_names_layer_and_reason(case, backend):
    make, shape, index, typ, code, words = CASES[case]
    e = shape_error(make(), shape, backend)
    assert isinstance(e, ValueError)
    msg = str(e)
    assert e.layer_index == index
    assert e.layer_name == str(index)
    assert e.code == F.ERROR_CODES[code]
    assert msg.startswith(f"layer {index} ('{index}', {typ})"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_channel_mismatch_mentions_both_counts_in_order():
    msg = str(shape_error(cc.Sequential(cc.Conv2d(3, 16, 3), cc.Conv2d(8, 4, 3)), (3, 32, 32)))
    assert "8 channels" in msg and "got 16 channels" in msg


def test_named_layers_in_message():
    from collections import OrderedDict
    m = cc.Sequential(OrderedDict(stem=cc.Conv2d(3, 8, 3), head=cc.Linear(5, 2)))
    e = shape_error(m, (3, 8, 8))
    assert e.layer_name == "head" and "'head'" in str(e) and "Linear" in str(e)


def test_summary_raises_the_same_shape_error():
    m = CASES["kernel"][0]()
    with pytest.raises(cc.ShapeError, match="Kernel size"):
        cc.summary(m, (3, 5, 5))


def test_explain_batch():
    bad_channels = CASES["channels"][0]()
    ok = cc.Sequential(cc.Conv2d(3, 4, 3), cc.ReLU(), cc.Flatten(), cc.Linear(4 * 30 * 30, 10))
    bad_linear = cc.Sequential(cc.Flatten(), cc.Linear(100, 10))
    p = cc.pack([bad_channels, ok, bad_linear], (3, 32, 32))
    r = cc.count(p)
    assert r.valid.tolist() == [False, True, False]
    s0, s1, s2 = (cc.explain(p, i) for i in range(3))
    assert "valid" in s1 and "architecture 1" in s1
    single = str(shape_error(bad_channels, (3, 32, 32)))
    assert s0.startswith("architecture 0") and single in s0
    assert "mat1 and mat2 shapes cannot be multiplied" in s2 and "Linear" in s2 and "in_features=100" in s2
    assert r.explain(2) == s2
    assert cc.explain(p, -1) == s2
    for backend in ("core", "reference"):
        assert cc.explain(p, 0, backend=backend) == s0
    with pytest.raises(IndexError):
        cc.explain(p, 3)


def test_explain_from_arrays_without_names():
    p = cc.pack([CASES["groups"][0](), CASES["pool_pad"][0]()], (3, 32, 32))
    q = cc.Packed.from_arrays(**p.arrays())  # no names/types: the op's name is used
    s = cc.explain(q, 0)
    assert "groups" in s and "Conv2d" in s and "layer 0" in s
    s = cc.explain(q, 1)
    assert "pad should be at most half of kernel size" in s and "MaxPool2d" in s


# ---- hostile Python arguments: clean exceptions -----------------------------------------------
CLEAN = (TypeError, ValueError, KeyError, IndexError)
M = cc.Sequential(cc.Conv2d(3, 4, 3))

HOSTILE_LAYERS = [
    lambda: cc.Conv2d(None, 4, 3), lambda: cc.Conv2d("3", 4, 3), lambda: cc.Conv2d(3.5, 4, 3),
    lambda: cc.Conv2d(3, -4, 3), lambda: cc.Conv2d(3, 4, 0), lambda: cc.Conv2d(3, 4, (3, 3, 3)),
    lambda: cc.Conv2d(3, 4, 2**40), lambda: cc.Conv2d(3, 4, 3, padding="full"),
    lambda: cc.Conv2d(3, 4, 3, stride=-1), lambda: cc.Conv2d(3, 4, 3, padding=-1),
    lambda: cc.Conv2d(3, 4, 3, dilation=0), lambda: cc.Conv2d(3, 4, 3, groups=0),
    lambda: cc.Conv2d(3, 4, 3, padding_mode="mirror"), lambda: cc.Conv1d(3, 4, float("nan")),
    lambda: cc.ConvTranspose2d(3, 4, 3, padding="same"), lambda: cc.ConvTranspose2d(3, 4, 3, output_padding=-1),
    lambda: cc.Linear(float("nan"), 3), lambda: cc.Linear(3, 0), lambda: cc.Linear(None, 3),
    lambda: cc.BatchNorm2d(None), lambda: cc.BatchNorm2d(-2), lambda: cc.MaxPool2d(-1),
    lambda: cc.MaxPool2d("2"), lambda: cc.AvgPool2d(2, padding=-1), lambda: cc.AdaptiveAvgPool2d((1, 2, 3)),
    lambda: cc.AdaptiveAvgPool2d(-1), lambda: cc.Dropout(2.0), lambda: cc.Dropout(-0.1),
    lambda: cc.Upsample(), lambda: cc.Upsample(size=4, scale_factor=2),
    lambda: cc.Upsample(scale_factor=-1.0), lambda: cc.Upsample(scale_factor=float("nan")),
    lambda: cc.Upsample(scale_factor=float("inf")), lambda: cc.Upsample(size=0),
    lambda: cc.Upsample(size=4, mode="cubic"), lambda: cc.LayerNorm(()), lambda: cc.LayerNorm((1, 2, 3, 4)),
    lambda: cc.LayerNorm(0), lambda: cc.GroupNorm(0, 4), lambda: cc.GroupNorm(3, 4),
    lambda: cc.GroupNorm(None, 4), lambda: cc.PReLU(0), lambda: cc.ChannelShuffle(0),
    lambda: cc.Softmax(dim=1.5), lambda: cc.Flatten(start_dim="1"), lambda: cc.ZeroPad2d((1, 2, 3)),
    lambda: cc.Sequential(3), lambda: cc.Sequential(None), lambda: cc.Sequential(M, "relu"),
]


@pytest.mark.parametrize("i", range(len(HOSTILE_LAYERS)))
def test_hostile_layer_arguments(i):
    with pytest.raises(CLEAN):
        HOSTILE_LAYERS[i]()


HOSTILE_CALLS = {
    "shape_0_dims": lambda: cc.count(M, ()),
    "shape_5_dims": lambda: cc.count(M, (1, 2, 3, 4, 5)),
    "shape_negative": lambda: cc.count(M, (3, -5, 5)),
    "shape_zero": lambda: cc.count(M, (3, 0, 5)),
    "shape_float": lambda: cc.count(M, (3, 5.5, 5)),
    "shape_bool": lambda: cc.count(M, (3, True, 5)),
    "shape_nan": lambda: cc.count(M, (3, float("nan"), 5)),
    "shape_str": lambda: cc.count(M, "abc"),
    "shape_none": lambda: cc.count(M, None),
    "shape_int": lambda: cc.count(M, 5),
    "shape_huge": lambda: cc.count(M, (3, 2**40, 5)),
    "batch_0": lambda: cc.count(M, (3, 8, 8), batch_size=0),
    "batch_negative": lambda: cc.count(M, (3, 8, 8), batch_size=-1),
    "batch_float": lambda: cc.count(M, (3, 8, 8), batch_size=1.5),
    "batch_str": lambda: cc.count(M, (3, 8, 8), batch_size="1"),
    "batch_huge": lambda: cc.count(M, (3, 8, 8), batch_size=2**31),
    "dtype_unknown": lambda: cc.count(M, (3, 8, 8), dtype="float128"),
    "dtype_none": lambda: cc.count(M, (3, 8, 8), dtype=None),
    "threads_0": lambda: cc.count(cc.pack([M], (3, 8, 8)), n_threads=0),
    "threads_float": lambda: cc.count(cc.pack([M], (3, 8, 8)), n_threads=2.0),
    "backend": lambda: cc.count(M, (3, 8, 8), backend="gpu"),
    "pack_none": lambda: cc.pack(None),
    "pack_none_model": lambda: cc.pack([None], (3, 8, 8)),
    "pack_mismatch": lambda: cc.pack([M, M], [(3, 8, 8)] * 3),
    "pack_batch_mismatch": lambda: cc.pack([M, M], (3, 8, 8), batch_size=[1, 2, 3]),
    "pack_bad_shape": lambda: cc.pack([M], (3, 0, 8)),
    "count_none": lambda: cc.count(None, (3, 8, 8)),
    "count_str": lambda: cc.count("resnet18", (3, 8, 8)),
    "count_torch_like": lambda: cc.count(object(), (3, 8, 8)),
    "explain_index": lambda: cc.explain(cc.pack([M], (3, 8, 8)), 5),
    "explain_str_index": lambda: cc.explain(cc.pack([M], (3, 8, 8)), "a"),
    "explain_not_packed": lambda: cc.explain(M, 0),
    "summary_invalid": lambda: cc.summary(M, (3, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CALLS))
def test_hostile_api_calls(name):
    with pytest.raises(CLEAN):
        HOSTILE_CALLS[name]()


def test_pack_empty_list():
    for p in (cc.pack([]), cc.pack([], (3, 8, 8))):
        assert len(p) == 0 and p.n_layers == 0
        r = cc.count(p)
        assert len(r) == 0 and r.params.shape == (0,)


def test_layerless_model_counts_as_identity():
    r = cc.count(cc.Sequential(), (3, 8, 8), batch_size=2)
    assert r.params == 0 and r.output_shape == (2, 3, 8, 8) and r.macs == 0


def test_shape_error_is_a_value_error():
    assert issubclass(cc.ShapeError, ValueError)
    try:
        cc.count(CASES["kernel"][0](), (3, 5, 5))
    except ValueError as e:  # a PyTorch user's `except ValueError` catches it
        assert isinstance(e, cc.ShapeError)
    else:  # pragma: no cover
        pytest.fail("no error")


def test_batch_arguments_are_not_silently_ignored():
    """Found in review: cc.count(packed, input_shape=...) ignored the shape; cc.summary(batch) failed
    with an AttributeError. Both now say what to do."""
    packed = cc.pack([cc.Sequential(cc.Conv2d(3, 4, 3))], (3, 8, 8))
    col = cc.Columnar(packed)
    for batch in (packed, col):
        with pytest.raises(TypeError, match="input_shape and batch_size are for a single model"):
            cc.count(batch, input_shape=(3, 64, 64))
        with pytest.raises(TypeError, match="batch_size"):
            cc.count(batch, batch_size=8)
        with pytest.raises(TypeError, match="cc.explain"):
            cc.summary(batch)


def test_inputs_too_large_blame_no_layer():
    """Found in review: a container called on inputs whose element count overflows int64 named
    'layer -1' and its last row. (2^31 - 1)^3 elements are past 2^63: the message says so."""
    x = cc.Input((2**31 - 1,) * 3)
    for module in (cc.Sequential(cc.ReLU(), cc.ReLU()), cc.ReLU()):
        with pytest.raises(cc.ShapeError, match="input tensors are too large") as e:
            module(x)
        assert e.value.layer_index == -1
