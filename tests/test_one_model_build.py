"""Edges of the one-model build path (layers keep their packed row as a list made in the constructor;
graph calls read it without copying; Sequentials name their children from a precomputed table;
a Model emits from a plan made at construction). Truth: torch 2.13.0 modules and hand calculations
from docs/format.md and docs/conventions.md.
"""
from __future__ import annotations

from collections import OrderedDict

import pytest

import cnncore as cc
from cnncore import _format as F

torch = pytest.importorskip("torch")
nn = torch.nn


def test_row_is_a_copy_the_layer_keeps_its_own():
    # Conv2d(3, 64, 7, stride 2, padding 3, bias=False), written out column by column (docs/format.md)
    conv = cc.Conv2d(3, 64, 7, 2, 3, bias=False)
    want = [0] * F.N_FIELDS
    want[F.OP], want[F.NSRC], want[F.IN], want[F.OUT], want[F.GROUPS] = F.OPS["Conv2d"], 1, 3, 64, 1
    want[F.K0:F.K0 + 2], want[F.S0:F.S0 + 2], want[F.P0:F.P0 + 2], want[F.D0:F.D0 + 2] = (7, 7), (2, 2), (3, 3), (1, 1)
    row = conv.row()
    assert row == want
    row[F.OUT] = 1  # a caller's copy: the layer and its counts do not change
    assert conv.row() == want
    # params 64*3*7*7 = 9408; MACs 9408 * 112 * 112 = 118,013,952 (torchvision's ResNet stem)
    r = cc.count(conv, (3, 224, 224))
    assert (r.params, r.macs, r.output_shape) == (9408, 118_013_952, (1, 64, 112, 112))


def test_one_layer_called_twice_gets_a_row_per_call():
    # the same Conv2d(3, 3, 1) object called twice: two rows, each reading its own input, shapes as torch's
    conv = cc.Conv2d(3, 3, 1)
    x = cc.Input((3, 8, 8))
    y = conv(cc.ReLU()(conv(x)))
    tconv = nn.Conv2d(3, 3, 1)
    assert y.shape == tuple(tconv(torch.relu(tconv(torch.zeros(1, 3, 8, 8)))).shape)
    packed = cc.pack([cc.Model(x, y)])
    layers = packed.arrays()["layers"]
    assert packed.names == ["conv2d", "relu", "conv2d_1"]  # torch.fx-style names of unnamed calls
    assert layers[:, F.SRC].tolist() == [-1, 0, 1]
    # MACs per call: 3 * 3 * 8 * 8 = 576 (1x1 kernel); the two calls count 1,152
    assert cc.count(cc.Model(x, y)).macs == 2 * 576


def test_flags_set_after_a_call_reach_the_packed_row():
    # cc.from_torch marks a functional call after the layer was called (layers.as_call): the packed row
    # carries FLAGS bit 256 (docs/format.md) even though the call read the layer's row earlier
    x = cc.Input((8, 4, 4))
    pool = cc.AdaptiveAvgPool2d(1)
    y = pool(x)
    cc.layers.as_call(pool)
    flags = cc.pack([cc.Model(x, y)]).arrays()["layers"][:, F.FLAGS].tolist()
    assert flags[0] & 256 == 256
    # thop does not see functional calls (docs/conventions.md): 0; as a module it counts x + y = 128 + 8
    assert cc.count(cc.Model(x, y), conventions=("thop",)).conventions["thop"] == 0
    x2 = cc.Input((8, 4, 4))
    assert cc.count(cc.Model(x2, cc.AdaptiveAvgPool2d(1)(x2)), conventions=("thop",)).conventions["thop"] == 136


@pytest.mark.parametrize("n", [3, 256, 257, 300])
def test_sequential_child_names_as_torch(n):
    # default names "0", "1", ... past the precomputed table (256), as torch names them
    tm = nn.Sequential(*[nn.Linear(4, 4) for _ in range(n)])
    cm = cc.Sequential(*[cc.Linear(4, 4) for _ in range(n)])
    assert [k for k, _ in cm.named_children()] == [k for k, _ in tm.named_children()]
    r = cc.count(cm, (4,))
    assert [row.name for row in r.layers] == [k for k, _ in tm.named_children()]
    assert r.params == sum(p.numel() for p in tm.parameters())


def test_sequential_from_dicts_and_slices_as_torch():
    pairs = [("conv", (3, 8, 3)), ("bn", (8,)), ("act", ())]
    tm = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 8, 3)), ("bn", nn.BatchNorm2d(8)), ("act", nn.ReLU())]))
    for container in (OrderedDict, dict):
        cm = cc.Sequential(container([("conv", cc.Conv2d(*pairs[0][1])), ("bn", cc.BatchNorm2d(*pairs[1][1])),
                                      ("act", cc.ReLU())]))
        assert [k for k, _ in cm.named_children()] == [k for k, _ in tm.named_children()]
        r = cc.count(cm, (3, 16, 16))
        assert r.params == sum(p.numel() for p in tm.parameters())
        assert r.buffers == sum(b.numel() for b in tm.buffers())
        assert [row.name for row in cc.count(cm[1:], (8, 14, 14)).layers] == [k for k, _ in tm[1:].named_children()]


def test_activation_defaults_are_not_shared_state():
    # ReLU() shares torch's defaults; a ReLU(inplace=True) made in between does not change them
    a = cc.ReLU()
    b = cc.ReLU(inplace=True)
    c = cc.LeakyReLU(0.2)
    assert repr(a) == repr(nn.ReLU()) and repr(cc.ReLU()) == repr(nn.ReLU())
    assert repr(b) == repr(nn.ReLU(inplace=True))
    assert repr(c) == repr(nn.LeakyReLU(0.2))
    assert repr(cc.ReLU()) == repr(nn.ReLU()) and repr(cc.ReLU(True)) == repr(nn.ReLU(True))


def test_type_names_as_torch_class_names():
    layers = [(cc.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)), (cc.LazyConv2d(4, 3), nn.LazyConv2d(4, 3)),
              (cc.LazyBatchNorm2d(), nn.LazyBatchNorm2d()), (cc.Dropout2d(), nn.Dropout2d()),
              (cc.AdaptiveMaxPool1d(2), nn.AdaptiveMaxPool1d(2)), (cc.Hardswish(), nn.Hardswish())]
    for c, t in layers:
        assert c.type == type(t).__name__

    class MyReLU(cc.ReLU):  # a user's subclass is named after itself, as torch names modules
        pass

    x = cc.Input((3, 4, 4))
    assert [row.type for row in cc.count(cc.Model(x, MyReLU()(x))).layers] == ["MyReLU"]


def test_nested_model_called_twice_emits_each_call():
    # a Model used as a block twice inside another Model: rows named <call>.<inner>, each call reading
    # its own input; the same structure in torch gives the same params and output shape
    xi = cc.Input((4, 8, 8))
    h = cc.Conv2d(4, 4, 3, padding=1, bias=False)(xi, name="conv")
    block = cc.Model(xi, cc.add(xi, cc.ReLU()(h, name="act"), name="add"))
    x = cc.Input((4, 8, 8))
    y = block(block(x, name="b1"), name="b2")
    r = cc.count(cc.Model(x, y))
    assert [row.name for row in r.layers] == ["b1.conv", "b1.act", "b1.add", "b2.conv", "b2.act", "b2.add"]
    packed = cc.pack([cc.Model(x, y)])
    a = packed.arrays()
    assert a["layers"][:, F.SRC].tolist() == [-1, 0, -1, 2, 3, 2]
    assert a["extra_src"].tolist() == [1, 4]  # each add's second input: its own ReLU

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

        def forward(self, t):
            return t + torch.relu(self.conv(t))

    tm = nn.Sequential(Block(), Block())
    assert r.output_shape == tuple(tm(torch.zeros(1, 4, 8, 8)).shape)
    # the block is one module called twice in cnncore (its params counted per call): 2 * 144
    assert r.params == sum(p.numel() for p in tm.parameters()) == 2 * 4 * 4 * 9
