"""The PyTorch bridge: cc.from_torch (torch.fx -> cc.Model), cc.to_torch (cnncore -> nn.Module),
cc.register_torch_module.

- Round trips: `from_torch(to_torch(m))` counts as `m` (params, buffers, macs, flops, output shape,
  and the row names) for zoo models and for the seeded random DAGs of test_graph_torch.py.
- `to_torch(m)` has cnncore's params and buffers, and its forward (meta device for the zoo, a real
  tensor for the DAGs) gives cnncore's output shape and FlopCounterMode's MACs.
- `from_torch` on torch modules written by hand (functional `+`, `torch.cat`, `x.view(x.size(0), -1)`,
  `F.relu`, chunk/split, `x.mean((2, 3))`, a torchvision-style channel shuffle) and on the DAG
  generator's own torch modules (torch is the truth there), and its errors.
"""
from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnncore as cc  # noqa: E402
from test_graph_torch import TorchDag, build_cc, make_case, torch_truth  # noqa: E402

torch.set_num_threads(1)

ZOO = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5",
       "densenet121", "squeezenet1_0", "googlenet", "inception_v3"]
N_DAG_SEEDS = 150


def key(r):
    return (r.params, r.buffers, r.macs, r.flops, r.output_shape)


def torch_params(m):
    return sum(p.numel() for p in m.parameters()), sum(b.numel() for b in m.buffers())


def strict(fn, *args, **kwargs):
    """Run fn with every warning an error (from_torch warns when it cannot count a module)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# zoo round trips
@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip(name):
    m = getattr(cc.zoo, name)()
    r = cc.count(m)
    tm = cc.to_torch(m)
    assert torch_params(tm) == (r.params, r.buffers)
    r2 = cc.count(strict(cc.from_torch, tm, m.inputs[0].input_shape))
    assert key(r2) == key(r)
    if name != "inception_v3":  # its AuxLogits is never called: from_torch adds input rows for it
        assert [row.name for row in r2.layers] == [row.name for row in r.layers]
        assert [row.type for row in r2.layers] == [row.type for row in r.layers]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_to_torch_forward_on_meta(name):
    m = getattr(cc.zoo, name)()
    r = cc.count(m)
    tm = cc.to_torch(m).eval().to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = tm(torch.empty(m.inputs[0].shape, device="meta"))
    assert tuple(out.shape) == r.output_shape
    assert fc.get_total_flops() // 2 == r.macs


def test_to_torch_names_follow_cnncore_rows():
    tm = cc.to_torch(cc.zoo.resnet18())
    sd = tm.state_dict()
    for k in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
              "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked", "fc.weight", "fc.bias"):
        assert k in sd, k
    assert isinstance(tm.layer1[0].conv1, nn.Conv2d)
    assert isinstance(tm.get_submodule("layer1.0.add"), nn.Module)


def test_to_torch_module_is_picklable_and_copyable():
    m = cc.zoo.squeezenet1_0()
    tm = cc.to_torch(m).eval()
    x = torch.randn(1, 3, 64, 64)
    buf = io.BytesIO()
    torch.save(tm, buf)
    buf.seek(0)
    tm2 = torch.load(buf, weights_only=False)
    tm3 = copy.deepcopy(tm)
    with torch.no_grad():
        y = tm(x)
        assert torch.equal(tm2(x), y)
        assert torch.equal(tm3(x), y)
    assert pickle.loads(pickle.dumps(tm)) is not None


# ---------------------------------------------------------------------------------------------
# random DAGs (the generator of test_graph_torch.py: torch modules and cnncore models of one graph)
@pytest.mark.parametrize("seed", range(N_DAG_SEEDS))
def test_random_dag_round_trip_and_to_torch(seed):
    g, outputs = make_case(seed)
    m = build_cc(g, outputs, check_shapes=False)
    r = cc.count(m)
    tm = cc.to_torch(m).eval()
    assert torch_params(tm) == (r.params, r.buffers)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = tm(g.vals[0])
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    assert tuple(outs[0].shape) == r.output_shape
    assert [tuple(o.shape) for o in outs] == [o.shape for o in m.outputs]
    assert fc.get_total_flops() // 2 == r.macs
    m2 = strict(cc.from_torch, tm, g.in_shape, batch_size=g.batch)
    assert key(cc.count(m2)) == key(r)
    assert [o.shape for o in m2.outputs] == [o.shape for o in m.outputs]


@pytest.mark.parametrize("seed", range(0, N_DAG_SEEDS, 3))
def test_from_torch_on_torch_dags_matches_torch(seed):
    """The generator's own nn.Module (torch.chunk/split, getitem, torch.cat, torch.flatten, +, *,
    modules in an nn.ModuleDict, dead branches whose modules exist but never run): torch is the truth."""
    g, outputs = make_case(seed)
    want = torch_truth(g, outputs)
    dag = TorchDag(g.nodes, g.modules, outputs).eval()
    m = strict(cc.from_torch, dag, g.in_shape, batch_size=g.batch)
    r = cc.count(m)
    assert (r.params, r.buffers, r.macs) == (want["params"], want["buffers"], want["macs"])
    assert [o.shape for o in m.outputs] == want["output_shapes"]
    assert r.flops == cc.count(build_cc(g, outputs, check_shapes=False)).flops


# ---------------------------------------------------------------------------------------------
# hand-written torch modules
class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding="same", bias=False, padding_mode="reflect")
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += x
        return F.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = nn.Sequential(Block(16), Block(16))
        self.branch_a = nn.Conv2d(16, 8, 1)
        self.branch_b = nn.Conv2d(16, 8, 3, padding=1)
        self.se_fc = nn.Conv2d(16, 16, 1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer1(x)
        y = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        s = torch.sigmoid(self.se_fc(F.adaptive_avg_pool2d(y, 1)))
        y = y * s
        a, b = y.chunk(2, dim=1)
        y = torch.cat((b, a), dim=1) + x
        y = self.pool(y)
        return self.fc(y.view(y.size(0), -1))


def cc_net():
    """Net transcribed by hand with cnncore's graph API, fx's names."""
    x = cc.Input((3, 32, 32))
    y = cc.Sequential(cc.Conv2d(3, 16, 3, stride=2, padding=1), cc.BatchNorm2d(16), cc.ReLU())(x, name="stem")
    for i in (0, 1):
        p = f"layer1.{i}."
        h = cc.Conv2d(16, 16, 3, padding=1, bias=False)(y, name=p + "conv1")
        h = cc.BatchNorm2d(16)(h, name=p + "bn1")
        h = cc.ReLU()(h, name=p + "relu")
        h = cc.Conv2d(16, 16, 3, padding="same", bias=False)(h, name=p + "conv2")
        h = cc.BatchNorm2d(16)(h, name=p + "bn2")
        h = cc.add(h, y, name=p + "add")
        y = cc.ReLU()(h, name=p + "relu_1")
    c = cc.cat([cc.Conv2d(16, 8, 1)(y, name="branch_a"), cc.Conv2d(16, 8, 3, padding=1)(y, name="branch_b")], 1,
               name="cat")
    s = cc.AdaptiveAvgPool2d(1)(c, name="adaptive_avg_pool2d")
    s = cc.Sigmoid()(cc.Conv2d(16, 16, 1)(s, name="se_fc"), name="sigmoid")
    c = cc.mul(c, s, name="mul")
    a, b = cc.chunk(c, 2, dim=1, name="chunk")
    c = cc.add(cc.cat([b, a], 1, name="cat_1"), y, name="add")
    c = cc.MaxPool2d(3, 2, ceil_mode=True)(c, name="pool")
    return cc.Model(x, cc.Linear(16 * 8 * 8, 10)(cc.flatten(c, 1, name="view"), name="fc"))


def test_from_torch_hand_written_module():
    net = Net().eval()
    m = strict(cc.from_torch, net, (3, 32, 32))
    r = cc.count(m)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = net(torch.randn(1, 3, 32, 32))
    assert (r.params, r.buffers) == torch_params(net)
    assert r.macs == fc.get_total_flops() // 2
    assert r.output_shape == tuple(out.shape)
    want = cc.count(cc_net())
    assert key(r) == key(want)
    names = [row.name for row in r.layers]
    for n in ("stem.0", "stem.2", "layer1.0.conv1", "layer1.0.relu", "layer1.0.add", "layer1.0.relu_1",
              "layer1.1.conv2", "cat", "adaptive_avg_pool2d", "se_fc", "sigmoid", "mul", "add", "pool", "view", "fc"):
        assert n in names, (n, names)
    # batch_size and a round trip through to_torch
    r4 = cc.count(cc.from_torch(net, (3, 32, 32), batch_size=4))
    assert r4.output_shape == (4, 10) and r4.macs == 4 * r.macs
    assert key(cc.count(cc.from_torch(cc.to_torch(m), (3, 32, 32)))) == key(r)


class Functional(nn.Module):
    """More functional forms: torch.add, torch.flatten, x.flatten, x.reshape, torch.split, x.mean,
    slicing, F.* activations and pools, F.interpolate, F.pad, a torchvision-style channel shuffle."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.fc1 = nn.Conv2d(8, 8, 1)
        self.fc2 = nn.Linear(8 * 4 * 4, 5)
        self.fc3 = nn.Linear(8, 5)

    def forward(self, x):
        y = F.relu6(self.conv(x))
        y = F.hardswish(y)
        a, b = torch.split(y, [4, 4], dim=1)
        b = F.silu(self.dw(b))
        y = torch.cat([a, b], 1)
        n, c, h, w = y.size()
        y = y.view(n, 2, c // 2, h, w)
        y = torch.transpose(y, 1, 2).contiguous()
        y = y.view(n, -1, h, w)                      # channel shuffle (torchvision)
        y = torch.add(y, F.leaky_relu(y, 0.2))
        y = y[:, :8]
        g = y.mean((2, 3), keepdim=True)             # (n, 8, 1, 1)
        g = torch.sigmoid(self.fc1(g))
        y = torch.mul(y, g)
        y = F.max_pool2d(y, 2)
        y = F.avg_pool2d(F.pad(y, (1, 1, 1, 1)), 3, stride=1)
        y = F.interpolate(y, scale_factor=0.5, mode="nearest")
        y = F.dropout(F.gelu(y), 0.1, self.training)
        z = self.fc3(torch.mean(y, dim=[-1, 2]))      # (n, 8) -> (n, 5)
        y = y.reshape(n, -1)
        return F.softmax(self.fc2(y) + z, dim=-1)


def test_from_torch_functional_forms():
    net = Functional().eval()
    m = strict(cc.from_torch, net, (4, 16, 16), batch_size=2)
    r = cc.count(m)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = net(torch.randn(2, 4, 16, 16))
    assert (r.params, r.buffers) == torch_params(net)
    assert r.macs == fc.get_total_flops() // 2
    assert r.output_shape == tuple(out.shape) == (2, 5)
    types = [row.type for row in r.layers]
    for t in ("ReLU6", "Hardswish", "Slice", "SiLU", "Cat", "ChannelShuffle", "LeakyReLU", "Add",
              "AdaptiveAvgPool2d", "Flatten", "Sigmoid", "Mul", "MaxPool2d", "ZeroPad2d", "AvgPool2d",
              "Upsample", "GELU", "Softmax"):
        assert t in types, (t, types)
    assert key(cc.count(cc.from_torch(cc.to_torch(m), (4, 16, 16), batch_size=2))) == key(r)


def test_from_torch_sequential_and_module_names():
    seq = nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4, affine=False), nn.PReLU(4), nn.AvgPool1d(2, ceil_mode=True),
                        nn.Flatten(), nn.Linear(4 * 4, 3, bias=False), nn.Softmax(dim=1))
    m = cc.from_torch(seq, (2, 10))
    r = cc.count(m)
    assert [row.name for row in r.layers] == [str(i) for i in range(7)]
    assert r.params == torch_params(seq)[0] and r.buffers == torch_params(seq)[1]
    assert r.output_shape == (1, 3)
    tseq = cc.to_torch(cc.Sequential(cc.Conv1d(2, 4, 3), cc.BatchNorm1d(4, affine=False), cc.PReLU(4),
                                     cc.AvgPool1d(2, ceil_mode=True), cc.Flatten(), cc.Linear(16, 3, bias=False),
                                     cc.Softmax(dim=1)))
    assert isinstance(tseq, nn.Sequential)
    assert torch_params(tseq) == torch_params(seq)
    assert tseq(torch.randn(1, 2, 10)).shape == (1, 3)


def test_from_torch_converts_constructor_arguments():
    mods = [nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, bias=False),
            nn.Conv2d(4, 4, 3, padding="valid"), nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(4, track_running_stats=False), nn.GroupNorm(2, 4, affine=False),
            nn.LayerNorm([4, 6, 6], elementwise_affine=True, bias=False), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
            nn.AdaptiveMaxPool2d((2, None)), nn.Upsample(scale_factor=1.5, mode="bilinear"),
            nn.ZeroPad2d((1, 0, 2, -1)), nn.ChannelShuffle(2), nn.ELU(0.5), nn.Hardsigmoid(), nn.Tanh(),
            nn.Identity(), nn.Dropout2d(0.3)]
    x = torch.randn(1, 4, 6, 6)
    for mod in mods:
        m = cc.from_torch(mod, (4, 6, 6))
        r = cc.count(m)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            out = mod.eval()(x)
        assert (r.params, r.buffers) == torch_params(mod), mod
        assert r.output_shape == tuple(out.shape), mod
        assert r.macs == fc.get_total_flops() // 2, mod
        back = cc.to_torch(m)
        assert torch_params(back) == torch_params(mod), mod
        assert back.eval()(x).shape == out.shape, mod


def test_lazy_layers():
    x = cc.Input((3, 8, 8))
    y = cc.LazyConv2d(6, 3)(x, name="c")
    y = cc.LazyBatchNorm2d()(y, name="bn")
    y = cc.LazyLinear(4)(cc.flatten(y, 1), name="fc")
    m = cc.Model(x, y)
    tm = cc.to_torch(m)  # sizes come from the graph: ordinary modules
    assert isinstance(tm.c, nn.Conv2d) and tm.c.in_channels == 3 and tm.fc.in_features == 216
    assert torch_params(tm) == (cc.count(m).params, cc.count(m).buffers)
    seq = cc.Sequential(cc.LazyConv2d(6, 3), cc.LazyLinear(4))
    assert isinstance(cc.to_torch(seq)[0], nn.LazyConv2d)
    assert cc.to_torch(seq, input_shape=(3, 8, 8))[0].in_channels == 3
    lazy = nn.Sequential(nn.LazyConv2d(6, 3), nn.LazyBatchNorm2d())
    r = cc.count(cc.from_torch(lazy, (3, 8, 8)))
    assert r.params == 3 * 6 * 9 + 6 + 12


def test_several_inputs_and_outputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(5, 4, 1)

        def forward(self, x, y):
            s = self.a(x) + self.b(y)
            return s, torch.flatten(s, 1)

    m = cc.from_torch(Two(), [(3, 4, 4), (5, 4, 4)])
    assert [o.shape for o in m.outputs] == [(1, 4, 4, 4), (1, 64)]
    tm = cc.to_torch(m)
    o1, o2 = tm(torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4))
    assert o1.shape == (1, 4, 4, 4) and o2.shape == (1, 64)
    assert key(cc.count(cc.from_torch(tm, [(3, 4, 4), (5, 4, 4)]))) == key(cc.count(m))


def test_uncalled_modules_count_their_parameters():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3)
            self.head = nn.Linear(8, 10)
            self.used = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.used(x)

    net = Aux()
    r = cc.count(strict(cc.from_torch, net, (3, 16, 16)))
    assert (r.params, r.buffers) == torch_params(net)
    assert r.macs == 3 * 8 * 9 * 14 * 14 and r.output_shape == (1, 8, 14, 14)


# ---------------------------------------------------------------------------------------------
# custom modules and errors
class Mish(nn.Module):
    def forward(self, x):
        return x * torch.tanh(F.softplus(x))


class ConvMish(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = Mish()

    def forward(self, x):
        return self.act(self.conv(x))


def test_unsupported_function_names_the_node():
    with pytest.raises(TypeError, match=r"fx node 'softplus' \(call_function function "
                                        r"torch.nn.functional.softplus\).*inside module 'act' of type Mish"):
        cc.from_torch(ConvMish(), (3, 8, 8))

    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    with pytest.raises(TypeError, match=r"fx node 'exp' \(call_function function torch.exp\)"):
        cc.from_torch(Exp(), (3, 8, 8))


def test_register_torch_module():
    cc.register_torch_module(Mish, lambda m: cc.SiLU())  # counts like a SiLU
    try:
        m = cc.from_torch(ConvMish(), (3, 8, 8))
        rows = cc.count(m).layers
        assert [(row.name, row.type) for row in rows] == [("conv", "Conv2d"), ("act", "SiLU")]

        class Pair(nn.Module):  # a mapping may return a container: rows are named <module>.<inner>
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.zeros(4, 3, 1, 1))

        cc.register_torch_module(Pair, lambda mod: cc.Sequential(cc.Conv2d(3, 4, 1, bias=False), cc.ReLU()))

        class UsesPair(nn.Module):
            def __init__(self):
                super().__init__()
                self.p = Pair()

            def forward(self, x):
                return self.p(x)

        r = cc.count(cc.from_torch(UsesPair(), (3, 5, 5)))
        assert [row.name for row in r.layers] == ["p.0", "p.1"] and r.params == 12
    finally:
        from cnncore import torch_bridge
        torch_bridge._CUSTOM.pop(Mish, None)


def test_unsupported_module_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4))
    with pytest.raises(TypeError, match=r"'1'.*InstanceNorm2d.*register_torch_module"):
        cc.from_torch(net, (3, 8, 8))


def test_errors_name_the_node():
    class Unflatten(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)).view(x.size(0), -1, 1, 1)

    with pytest.raises(ValueError, match=r"fx node 'view'.*\(1, 4\) to \(1, 4, 1, 1\)"):
        cc.from_torch(Unflatten(), (4, 3, 3))

    class BadView(nn.Module):
        def forward(self, x):
            return x.view(x.size(0), 2, -1)

    with pytest.raises(ValueError, match=r"fx node 'view'.*only flattening trailing"):
        cc.from_torch(BadView(), (4, 3, 3))

    class Scalar(nn.Module):
        def forward(self, x):
            return x * 0.5

    with pytest.raises(ValueError, match=r"fx node 'mul'.*Python number"):
        cc.from_torch(Scalar(), (4, 3, 3))

    class Param(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 4, 1, 1))

        def forward(self, x):
            return F.conv2d(x, self.w)

    with pytest.raises(TypeError, match=r"fx node 'w'.*parameter or buffer"):
        cc.from_torch(Param(), (4, 3, 3))

    class Flow(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(TypeError, match=r"torch.fx could not trace Flow"):
        cc.from_torch(Flow(), (4, 3, 3))

    shared = nn.Conv2d(4, 4, 1)
    with pytest.raises(ValueError, match=r"shared weights"):
        cc.from_torch(nn.Sequential(shared, shared), (4, 3, 3))
    with pytest.raises(cc.ShapeError):  # a shape error is cnncore's, naming the module
        cc.from_torch(nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(5, 4, 1)), (4, 3, 3))
    with pytest.raises(ValueError, match="input_shape"):
        cc.from_torch(nn.Sequential(nn.Conv2d(4, 4, 1)), [(4, 3, 3), (4, 3, 3)])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cc.from_torch(cc.zoo.resnet18(), (3, 224, 224))
    with pytest.raises(TypeError, match="to_torch"):
        cc.to_torch(nn.Conv2d(1, 1, 1))


def test_functional_calls_are_flagged_functional():
    """Rows from a torch.nn.functional call or torch.add / Tensor.mul carry FLAGS bit 256; rows
    from other calls (x.flatten, x.mean, torch.cat) bit 512 (conventions of tools that treat them
    differently read them); rows from modules and from the operators a + b, a * b neither.
    x.mean((2, 3)) makes two rows (a pool and a flatten), both from the one call."""
    from cnncore import _format as FMT

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = self.conv(x)
            z = torch.add(F.relu(y) + y, y).mul(y) * y
            return torch.cat([self.pool(z).flatten(1), z.mean((2, 3))], 1)

    model = cc.from_torch(Net(), (3, 8, 8))
    rows = cc.pack([model]).arrays()["layers"]
    got = [(FMT.OP_NAMES[int(r[FMT.OP])], int(r[FMT.FLAGS]) & (FMT.F_FUNCTIONAL | FMT.F_CALL)) for r in rows]
    f, c = FMT.F_FUNCTIONAL, FMT.F_CALL
    assert got == [("Conv2d", 0), ("ReLU", f), ("Add", 0), ("Add", f), ("Mul", f), ("Mul", 0),
                   ("AdaptiveAvgPool2d", 0), ("Flatten", c), ("AdaptiveAvgPool2d", c), ("Flatten", c),
                   ("Cat", c)]


@pytest.mark.parametrize("name", sorted(cc.zoo.__all__))
def test_torchvision_models_convert_to_the_zoo_counts(name):
    """Every torchvision classification builder the zoo covers, traced by from_torch, counts as the
    zoo entry does (params, buffers, MACs, FLOPs, output shape). Runs where torchvision is installed:
    PyPI's torchvision does not import beside the CPU torch 2.13.0 this project pins, so here it skips."""
    tv = pytest.importorskip("torchvision")
    zoo = getattr(cc.zoo, name)()
    shape = zoo.inputs[0].shape[1:]
    traced = cc.from_torch(getattr(tv.models, name)(weights=None).eval(), shape)
    a, b = cc.count(traced), cc.count(zoo)
    assert (a.params, a.buffers, a.macs, a.flops, a.output_shape) == (b.params, b.buffers, b.macs, b.flops, b.output_shape)
