"""cnncore.spaces: NAS-Bench-101, DARTS and the NATS-Bench size space against published numbers,
and against torch twins where nothing is published.

Data (../shared/data/nas, README.md there): nb101_naslib_dummy30.json (30 NAS-Bench-101 cells with
the benchmark's trainable_parameters and module_hash; automl/NASLib, commit 0b51bc1) and
nb201_nats_official_points.csv (NATS-Bench sss records; D-X-Y/NATS-Bench fake_torch_dir, 1d4a304).
Torch twins are written from google-research/nasbench nasbench/lib/model_builder.py, quark0/darts
cnn/model.py + cnn/operations.py and D-X-Y/AutoDL-Projects xautodl/models (InferTinyCellNet.py,
cell_infers/cells.py, cell_operations.py).
"""
import csv
import json
import os

import numpy as np
import pytest

import cnncore as cc
from cnncore.spaces import DARTS_V1, DARTS_V2, NATSSize, NB101, darts_model, nb101_hash, nb101_model
from cnncore.spaces.nb101 import compute_vertex_channels, nb101_prune
from test_spaces import check_official_record  # the same record checks as NB201's

DATA = os.environ.get("CNNCORE_NAS_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nas"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data/nas"
needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason="NAS test data not available")


def _load(name, fn):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return fn(f)


NB101_RECS = _load("nb101_naslib_dummy30.json", json.load)
SSS = _load("nb201_nats_official_points.csv", lambda f: [r for r in csv.DictReader(f) if r["space"] == "sss"])


def _torch_macs(model, shape):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, *shape))
    return fc.get_total_flops() // 2


def _torch_state(model):
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    return params, buffers


# ---- NAS-Bench-101 ---------------------------------------------------------------------------------
@needs_data
def test_nb101_all_published_params_and_hashes():
    """All 30 cells: cnncore params == the benchmark's TensorFlow trainable_parameters, and the
    graph hash == the benchmark's module_hash."""
    assert len(NB101_RECS) == 30
    for r in NB101_RECS:
        m = nb101_model(r["module_adjacency"], r["module_operations"])
        assert cc.count(m).params == r["trainable_parameters"], r["module_hash"]
        assert nb101_hash(r["module_adjacency"], r["module_operations"]) == r["module_hash"]
    res = cc.count(NB101().pack(NB101_RECS[:10]))
    assert list(res.params) == [r["trainable_parameters"] for r in NB101_RECS[:10]]


def test_nb101_vertex_channels_and_pruning():
    # 129 output channels over the two vertices feeding the output (2 and 3): the first gets the
    # remainder (65, 64); vertex 1 feeds only vertex 3 and takes its 64
    m = np.array([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    assert compute_vertex_channels(128, 129, m) == [128, 64, 65, 64, 129]
    # a hanging vertex (2 reaches nothing) is pruned, as ModelSpec does
    m7 = np.zeros((5, 5), int)
    m7[0, 1] = m7[1, 4] = m7[0, 2] = m7[0, 3] = m7[3, 4] = 1
    pm, ops = nb101_prune(m7, ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"])
    assert pm.shape == (4, 4) and ops == ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"]
    with pytest.raises(ValueError):
        nb101_prune(np.zeros((3, 3), int), ["input", "conv3x3-bn-relu", "output"])
    with pytest.raises(ValueError):
        nb101_model([[0, 1], [0, 0]], ["input", "conv"])
    s = NB101()
    specs = s.sample(5, seed=0)
    assert len(specs) == 5 and all(s.is_valid(sp) for sp in specs)
    assert s.size == 423624


def _torch_nb101(matrix, ops):
    """A torch twin of nasbench model_builder (channels_first, CIFAR-10)."""
    import torch
    from torch import nn

    def cbr(cin, cout, k):
        return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class Module(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            n = len(ops)
            self.vc = compute_vertex_channels(cin, c, matrix)
            self.proj = nn.ModuleDict({str(t): cbr(cin, self.vc[t], 1)
                                       for t in range(1, n - 1) if matrix[0, t]})
            self.ops = nn.ModuleDict({str(t): (nn.MaxPool2d(3, 1, 1) if ops[t] == "maxpool3x3" else
                                               cbr(self.vc[t], self.vc[t], 3 if ops[t] == "conv3x3-bn-relu" else 1))
                                      for t in range(1, n - 1)})
            self.out_proj = cbr(cin, c, 1) if matrix[0, n - 1] else None

        def forward(self, x):
            n = len(ops)
            tensors, final = [x], []
            for t in range(1, n - 1):
                add_in = [tensors[s][:, :self.vc[t]] for s in range(1, t) if matrix[s, t]]
                if matrix[0, t]:
                    add_in.append(self.proj[str(t)](x))
                v = self.ops[str(t)](sum(add_in))
                tensors.append(v)
                if matrix[t, n - 1]:
                    final.append(v)
            if not final:
                return self.out_proj(x)
            out = torch.cat(final, 1)
            return out + self.out_proj(x) if self.out_proj is not None else out

    layers, c = [cbr(3, 128, 3)], 128
    for s in range(3):
        if s:
            layers.append(nn.MaxPool2d(2, 2))
            c *= 2
        for k in range(3):
            layers.append(Module(c // 2 if s and not k else c, c))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers)


@needs_data
def test_nb101_torch_twin_macs():
    pytest.importorskip("torch")
    for r in NB101_RECS[:4]:
        m, ops = nb101_prune(r["module_adjacency"], r["module_operations"])
        tm = _torch_nb101(m, ops)
        res = cc.count(nb101_model(m, ops))
        assert (res.params, res.buffers) == _torch_state(tm)
        assert res.macs == _torch_macs(tm, (3, 32, 32))


# ---- DARTS -----------------------------------------------------------------------------------------
def test_darts_v2_published_params():
    """DARTS' 3.3M (train.py's count_parameters_in_MB, which leaves the auxiliary head out)."""
    assert cc.count(darts_model(DARTS_V2, "cifar10")).params == 3349342
    assert cc.count(darts_model(DARTS_V2, "cifar10", C=36, layers=20, auxiliary=False)).params == 3349342
    aux = cc.count(darts_model(DARTS_V2, "cifar10", auxiliary=True))
    plain = cc.count(darts_model(DARTS_V2, "cifar10"))
    assert aux.params > plain.params and aux.macs == plain.macs  # the head exists but is not run


def _torch_darts(genotype, C, num_classes, layers, auxiliary, imagenet):
    """A torch twin of quark0/darts cnn/model.py + cnn/operations.py (eval mode, logits only)."""
    import torch
    from torch import nn

    class ReLUConvBN(nn.Module):
        def __init__(self, ci, co, k, s, p):
            super().__init__()
            self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(ci, co, k, s, p, bias=False), nn.BatchNorm2d(co))

        def forward(self, x):
            return self.op(x)

    class FactorizedReduce(nn.Module):
        def __init__(self, ci, co):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv_1 = nn.Conv2d(ci, co // 2, 1, 2, 0, bias=False)
            self.conv_2 = nn.Conv2d(ci, co // 2, 1, 2, 0, bias=False)
            self.bn = nn.BatchNorm2d(co)

        def forward(self, x):
            x = self.relu(x)
            # DARTS writes x[:, :, 1:, 1:]; the same view as two one-dimension slices, because
            # cc.from_torch maps one sliced dimension per indexing
            return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:][:, :, :, 1:])], dim=1))

    def sep(c, k, s, p):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, s, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
                             nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, k, 1, p, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def dil(c, k, s, p, d):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, s, p, dilation=d, groups=c, bias=False),
                             nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    OPS = {
        "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False),
        "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, s, 1),
        "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda c, s: sep(c, 3, s, 1), "sep_conv_5x5": lambda c, s: sep(c, 5, s, 2),
        "dil_conv_3x3": lambda c, s: dil(c, 3, s, 2, 2), "dil_conv_5x5": lambda c, s: dil(c, 5, s, 4, 2),
    }

    class Cell(nn.Module):
        def __init__(self, cpp, cp, c, reduction, reduction_prev):
            super().__init__()
            self.preprocess0 = FactorizedReduce(cpp, c) if reduction_prev else ReLUConvBN(cpp, c, 1, 1, 0)
            self.preprocess1 = ReLUConvBN(cp, c, 1, 1, 0)
            names, self.idx = zip(*(genotype.reduce if reduction else genotype.normal))
            self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
            self._ops = nn.ModuleList(OPS[n](c, 2 if reduction and i < 2 else 1) for n, i in zip(names, self.idx))
            self.multiplier = len(self.concat)

        def forward(self, s0, s1):
            states = [self.preprocess0(s0), self.preprocess1(s1)]
            for i in range(len(self._ops) // 2):
                states.append(self._ops[2 * i](states[self.idx[2 * i]]) + self._ops[2 * i + 1](states[self.idx[2 * i + 1]]))
            return torch.cat([states[i] for i in self.concat], dim=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if imagenet:
                self.stem0 = nn.Sequential(nn.Conv2d(3, C // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(),
                                           nn.Conv2d(C // 2, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
                self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
                cpp, cp, cc_, rp = C, C, C, True
            else:
                self.stem = nn.Sequential(nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
                cpp, cp, cc_, rp = 3 * C, 3 * C, C, False
            self.cells = nn.ModuleList()
            for i in range(layers):
                red = i in (layers // 3, 2 * layers // 3)
                if red:
                    cc_ *= 2
                cell = Cell(cpp, cp, cc_, red, rp)
                rp = red
                self.cells.append(cell)
                cpp, cp = cp, cell.multiplier * cc_
                if i == 2 * layers // 3:
                    c_aux = cp
            if auxiliary:
                feats = [nn.ReLU(), nn.AvgPool2d(5, 2 if imagenet else 3, 0, count_include_pad=False),
                         nn.Conv2d(c_aux, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.Conv2d(128, 768, 2, bias=False)] + ([] if imagenet else [nn.BatchNorm2d(768)]) + [nn.ReLU()]
                self.auxiliary_head = nn.ModuleDict({"features": nn.Sequential(*feats),
                                                     "classifier": nn.Linear(768, num_classes)})
            self.global_pooling = nn.AvgPool2d(7) if imagenet else nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(cp, num_classes)

        def forward(self, x):
            if imagenet:
                s0 = self.stem0(x)
                s1 = self.stem1(s0)
            else:
                s0 = s1 = self.stem(x)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1)
            out = self.global_pooling(s1)
            return self.classifier(out.view(out.size(0), -1))

    return Net()


@pytest.mark.parametrize("genotype,dataset,C,layers,aux", [
    (DARTS_V2, "cifar10", 36, 20, False), (DARTS_V2, "cifar10", 36, 20, True), (DARTS_V1, "cifar100", 16, 8, True),
    (DARTS_V2, "imagenet", 48, 14, True)])
def test_darts_torch_twin(genotype, dataset, C, layers, aux):
    pytest.importorskip("torch")
    imagenet = dataset == "imagenet"
    ncls = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}[dataset]
    tm = _torch_darts(genotype, C, ncls, layers, aux, imagenet)
    m = darts_model(genotype, dataset, C=C, layers=layers, auxiliary=aux)
    res = cc.count(m)
    assert (res.params, res.buffers) == _torch_state(tm)
    shape = (3, 224, 224) if imagenet else (3, 32, 32)
    assert res.macs == _torch_macs(tm, shape)
    assert res.output_shape == (1, ncls)
    if not aux:  # the fx bridge agrees row-for-row on every count, FLOPs included
        rt = cc.count(cc.from_torch(tm.eval(), shape))
        assert (rt.params, rt.buffers, rt.macs, rt.flops) == (res.params, res.buffers, res.macs, res.flops)


def test_darts_other_ops_and_errors():
    pytest.importorskip("torch")
    from cnncore.spaces.darts import Genotype
    g = Genotype(normal=[("sep_conv_5x5", 0), ("dil_conv_5x5", 1), ("avg_pool_3x3", 0), ("none", 2),
                         ("max_pool_3x3", 1), ("skip_connect", 3), ("sep_conv_3x3", 4), ("dil_conv_3x3", 2)],
                 normal_concat=[2, 3, 4, 5],
                 reduce=[("sep_conv_5x5", 0), ("dil_conv_5x5", 1), ("avg_pool_3x3", 0), ("skip_connect", 1),
                         ("skip_connect", 2), ("dil_conv_3x3", 0), ("sep_conv_3x3", 3), ("max_pool_3x3", 1)],
                 reduce_concat=[3, 4, 5])
    m = darts_model(g, "cifar10", C=8, layers=5)
    res = cc.count(m)
    assert res.output_shape == (1, 10)
    with pytest.raises(ValueError):
        darts_model(DARTS_V2, "mnist")
    with pytest.raises(ValueError):
        darts_model(g._replace(normal=[("conv_9x9", 0), ("skip_connect", 1)]), C=8, layers=5)


# ---- NATS-Bench size space ---------------------------------------------------------------------------
def test_nats_sss_order_and_strings():
    s = NATSSize()
    assert s.size == len(s) == 32768
    assert s.arch_str(0) == "8:8:8:8:8" and s.arch_str(s.size - 1) == "64:64:64:64:64"
    for i in list(range(0, s.size, 331)) + [s.size - 1]:
        assert s.index(s.arch_str(i)) == i
    assert len({tuple(r) for r in s.choices(np.arange(s.size))}) == s.size
    with pytest.raises(ValueError):
        s.index("8:8:8:8")
    with pytest.raises(IndexError):
        s.model(s.size)


@needs_data
@pytest.mark.parametrize("rec", SSS, ids=lambda r: f"{r['index']}-{r['dataset']}-{r['hp']}")
def test_nats_sss_official_records(rec):
    check_official_record(NATSSize(rec["dataset"]), rec)


def test_nats_sss_records_present():
    if os.path.isdir(DATA):
        assert len(SSS) == 36  # 3 architectures x 4 datasets x 3 epoch budgets


@pytest.mark.parametrize("dataset", ["cifar10", "ImageNet16-120"])
def test_nats_pack_equals_models(dataset):
    s = NATSSize(dataset)
    idx = np.concatenate([s.sample(60, seed=3), [0, 11, 284, s.size - 1]])
    a = cc.pack([s.model(i) for i in idx]).arrays()
    b = s.pack(idx, chunk_size=17).arrays()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_nats_pack_all():
    s = NATSSize("cifar100")
    res = cc.count(s.pack(np.arange(s.size)))
    assert len(res) == s.size and res.valid.all()
    assert res.params.min() == cc.count(s.model(0)).params
    assert res.params.max() == cc.count(s.model(s.size - 1)).params


def _torch_nats(ch, num_classes):
    """A torch twin of xautodl DynamicShapeTinyNet with NATS-Bench's cell."""
    from torch import nn

    def rcb(ci, co, k, s, p):
        return nn.Sequential(nn.ReLU(), nn.Conv2d(ci, co, k, s, p, bias=False), nn.BatchNorm2d(co))

    class Cell(nn.Module):
        def __init__(self, ci, co):
            super().__init__()
            skip = nn.Identity() if ci == co else nn.Sequential(nn.Conv2d(ci, co, 1, bias=False), nn.BatchNorm2d(co))
            self.layers = nn.ModuleList([rcb(ci, co, 3, 1, 1), rcb(ci, co, 3, 1, 1), rcb(co, co, 3, 1, 1), skip,
                                         rcb(co, co, 3, 1, 1), rcb(co, co, 3, 1, 1)])

        def forward(self, x):
            n1 = self.layers[0](x)
            n2 = self.layers[1](x) + self.layers[2](n1)
            return self.layers[3](x) + self.layers[4](n1) + self.layers[5](n2)

    class Res(nn.Module):
        def __init__(self, ci, co):
            super().__init__()
            self.conv_a, self.conv_b = rcb(ci, co, 3, 2, 1), rcb(co, co, 3, 1, 1)
            self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(ci, co, 1, bias=False))

        def forward(self, x):
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    cells = [Cell(ch[0], ch[0]), Res(ch[0], ch[1]), Cell(ch[1], ch[2]), Res(ch[2], ch[3]), Cell(ch[3], ch[4])]
    return nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1, bias=False), nn.BatchNorm2d(ch[0]), *cells,
                         nn.BatchNorm2d(ch[4]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(ch[4], num_classes))


def test_nats_torch_twin():
    pytest.importorskip("torch")
    s = NATSSize("cifar100")
    for i in [0, 11, 284, 12345, s.size - 1]:
        tm = _torch_nats([int(c) for c in s.choices([i])[0]], 100)
        res = cc.count(s.model(i))
        assert (res.params, res.buffers) == _torch_state(tm)
        assert res.macs == _torch_macs(tm, (3, 32, 32))
