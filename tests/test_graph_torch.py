"""Truth from PyTorch for functional graphs: seeded random DAGs built twice, as a cc.Model and as a
torch nn.Module that executes the same list of node specs, must agree.

A DAG is a list of nodes over tensors (node 0 is the network input). Node kinds:
  ("mod", [src], (nn_name, args, kwargs))    a torch.nn layer (same name and arguments in cnncore)
  ("add"|"mul", [a, b], None)                 a + b / a * b (torch broadcasting)
  ("cat", [a, b, ...], dim)                   torch.cat
  ("chunk", [src], n) / ("split", [src], s)   torch.chunk(x, n, 1) / torch.split(x, s, 1) -> a tuple
  ("item", [chunk_node], i)                   piece i of a chunk/split
  ("flatten", [src], start_dim)               torch.flatten(x, start_dim)
Blocks written from these: conv/BN/activation, pools, residual adds (1x1 projection when the shapes
differ), concat cells, SE blocks (AdaptiveAvgPool2d(1) -> conv/ReLU/conv/Sigmoid -> mul), channel
split + ChannelShuffle, two-input cells over earlier tensors, dead branches (modules that exist in
the torch module but that forward never calls: torch counts their params) and a classifier head.

The torch module runs only the nodes some output depends on; its modules for the other nodes still
exist (nn.ModuleDict), so `parameters()` / `buffers()` include them. Compared on both backends:
params, buffers, macs (FlopCounterMode // 2), output shape(s), every tensor's shape at its call,
activation_elements (numel of every run node's output) and peak_activation_bytes (a direct
simulation of the rule in docs/conventions.md over the node list).

Invalid DAGs: a valid prefix, then one bad call (add/mul of mismatched shapes, cat of mismatched
spatial sizes, a conv with the wrong in_channels, a Linear with the wrong in_features): torch's
forward raises, and cnncore must raise cc.ShapeError at that call, naming it.

Reproduce one seed: `python tests/test_graph_torch.py SEED` prints the nodes and both answers.
"""
from __future__ import annotations

import functools
import random
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import cnncore as cc  # noqa: E402

torch.set_num_threads(1)

N_SEEDS = 150
N_BAD_SEEDS = 60
ACTS = ["ReLU", "ReLU6", "SiLU", "Hardswish", "GELU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Hardsigmoid"]
VIEW_MODULES = {"Flatten", "Identity", "Dropout"}
MAX_C = 16


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


# ---------------------------------------------------------------------------------------------
# Executing a node on torch tensors (the generator's shape oracle and the module's forward)
def run_node(kind, payload, module, args):
    if kind == "mod":
        return module(args[0])
    if kind == "add":
        return args[0] + args[1]
    if kind == "mul":
        return args[0] * args[1]
    if kind == "cat":
        return torch.cat(args, payload)
    if kind == "chunk":
        return torch.chunk(args[0], payload, 1)
    if kind == "split":
        return torch.split(args[0], payload, 1)
    if kind == "item":
        return args[0][payload]
    if kind == "flatten":
        return torch.flatten(args[0], payload)
    raise AssertionError(kind)


class TorchDag(nn.Module):
    """Executes a node list; only nodes an output depends on run, but every module is registered."""

    def __init__(self, nodes, modules, outputs):
        super().__init__()
        self.nodes, self.outputs = nodes, outputs
        self.mods = nn.ModuleDict({str(k): m for k, m in modules.items()})
        self.needed = needed_nodes(nodes, outputs)

    def forward(self, x):
        vals = {0: x}
        for k in sorted(self.needed):
            if k == 0:
                continue
            kind, srcs, payload = self.nodes[k]
            vals[k] = run_node(kind, payload, self.mods[str(k)] if str(k) in self.mods else None,
                               [vals[s] for s in srcs])
        outs = [vals[o] for o in self.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def needed_nodes(nodes, outputs):
    need, stack = set(), list(outputs)
    while stack:
        k = stack.pop()
        if k not in need:
            need.add(k)
            if k:
                stack.extend(nodes[k][1])
    return need


# ---------------------------------------------------------------------------------------------
# The generator
class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        rng = self.rng
        self.batch = rng.choice([1, 1, 2])
        c = rng.randint(1, 6)
        h = rng.randint(5, 16)
        w = h if rng.random() < 0.7 else rng.randint(5, 16)
        self.in_shape = (c, h, w)
        self.nodes = [None]
        self.modules = {}
        self.vals = [torch.randn(self.batch, *self.in_shape)]
        self.pool = [0]  # live 4-d tensors later blocks may read
        self.dead = set()

    # -- primitives -------------------------------------------------------------------------
    def shape(self, k):
        v = self.vals[k]
        return tuple(v.shape) if isinstance(v, torch.Tensor) else None

    def node(self, kind, srcs, payload=None):
        """Append a node; raise (and append nothing) if torch rejects it."""
        module = None
        if kind == "mod":
            name, args, kwargs = payload
            module = getattr(nn, name)(*args, **kwargs).eval()
        with torch.no_grad():
            val = run_node(kind, payload, module, [self.vals[s] for s in srcs])
        self.nodes.append((kind, list(srcs), payload))
        self.vals.append(val)
        k = len(self.nodes) - 1
        if module is not None:
            self.modules[k] = module
        return k

    def mod(self, src, name, *args, **kwargs):
        return self.node("mod", [src], (name, args, kwargs))

    def act(self, src):
        return self.mod(src, self.rng.choice(ACTS))

    def conv(self, src, cout=None, k=None, stride=None, same_pad=False, allow_groups=True):
        rng = self.rng
        cin = self.shape(src)[1]
        fixed = cout is not None
        cout = cout or rng.randint(1, MAX_C)
        k = k or rng.choice([1, 3, 3, 5])
        stride = stride or rng.choice([1, 1, 1, 2])
        dil = 1 if same_pad or k == 1 or rng.random() < 0.85 else 2
        pad = dil * (k // 2) if same_pad or rng.random() < 0.8 else 0
        groups = 1
        if allow_groups and rng.random() < 0.3:
            if rng.random() < 0.5 and not fixed:
                cout = cin
                groups = cin
            else:
                common = [g for g in _divisors(cin) if cout % g == 0]
                groups = rng.choice(common)
        kwargs = dict(stride=stride, padding=pad, groups=groups, bias=rng.random() < 0.5)
        if dil != 1:
            kwargs["dilation"] = dil
        h, w = self.shape(src)[2:]
        if not same_pad and min(h, w) + 2 * pad < dil * (k - 1) + 1:
            kwargs["padding"] = pad = dil * (k // 2)  # keep the kernel inside the padded input
        return self.mod(src, "Conv2d", cin, cout, k, **kwargs)

    def conv_bn_act(self, src, **kw):
        y = self.conv(src, **kw)
        if self.rng.random() < 0.6:
            y = self.mod(y, "BatchNorm2d", self.shape(y)[1])
        if self.rng.random() < 0.7:
            y = self.act(y)
        return y

    def pool_op(self, src, keep_size=False):
        rng = self.rng
        kind = rng.choice(["MaxPool2d", "AvgPool2d"])
        if keep_size:
            return self.mod(src, kind, 3, stride=1, padding=1)
        k = rng.choice([2, 3])
        s = rng.choice([1, 2, 2])
        p = rng.randint(0, k // 2)
        try:
            return self.mod(src, kind, k, stride=s, padding=p, ceil_mode=rng.random() < 0.3)
        except RuntimeError:
            return self.mod(src, kind, 1)

    # -- blocks -----------------------------------------------------------------------------
    def b_conv(self, src):
        return self.conv_bn_act(src)

    def b_pool(self, src):
        return self.pool_op(src)

    def b_residual(self, src):
        rng = self.rng
        cin = self.shape(src)[1]
        cout = cin if rng.random() < 0.5 else rng.randint(1, MAX_C)
        stride = rng.choice([1, 1, 2])
        y = self.conv_bn_act(src, cout=rng.randint(1, MAX_C) if rng.random() < 0.5 else cout,
                             stride=stride, same_pad=True)
        y = self.conv(y, cout=cout, stride=1, same_pad=True)
        if rng.random() < 0.5:
            y = self.mod(y, "BatchNorm2d", cout)
        skip = src
        if self.shape(y) != self.shape(src):  # 1x1 projection, as ResNet's downsample
            skip = self.mod(src, "Conv2d", cin, cout, 1, stride=stride, bias=False)
            if rng.random() < 0.5:
                skip = self.mod(skip, "BatchNorm2d", cout)
        s = self.node("add", [y, skip] if rng.random() < 0.5 else [skip, y])
        return self.act(s) if rng.random() < 0.7 else s

    def b_concat(self, src):
        rng = self.rng
        branches = []
        for _ in range(rng.randint(2, 3)):
            r = rng.random()
            if r < 0.2:
                branches.append(src)
            elif r < 0.4:
                branches.append(self.pool_op(src, keep_size=True))
            elif r < 0.7:
                branches.append(self.conv_bn_act(src, stride=1, same_pad=True))
            else:
                b = self.conv(src, k=1, stride=1)
                branches.append(self.conv_bn_act(b, stride=1, same_pad=True))
        rng.shuffle(branches)
        return self.node("cat", branches, rng.choice([1, 1, -3]))

    def b_se(self, src):
        rng = self.rng
        c = self.shape(src)[1]
        r = max(1, c // rng.choice([2, 4]))
        g = self.mod(src, "AdaptiveAvgPool2d", 1)
        g = self.mod(g, "Conv2d", c, r, 1)
        g = self.mod(g, "ReLU")
        g = self.mod(g, "Conv2d", r, c, 1)
        g = self.mod(g, rng.choice(["Sigmoid", "Hardsigmoid"]))
        return self.node("mul", [src, g] if rng.random() < 0.5 else [g, src])

    def b_shuffle(self, src):
        rng = self.rng
        c = self.shape(src)[1]
        if c < 2:
            return self.conv_bn_act(src, cout=rng.randint(2, MAX_C))
        if rng.random() < 0.6:
            ch = self.node("chunk", [src], rng.choice([2, 2, 3, 4]))
        else:
            size = rng.randint(1, c - 1)
            sections = [size, c - size]
            ch = self.node("split", [src], sections if rng.random() < 0.5 else rng.randint(1, c - 1))
        n = len(self.vals[ch])
        keep = list(range(n))
        if n > 2 and rng.random() < 0.3:
            keep.remove(rng.randrange(n))  # a piece nobody reads (an unused Slice)
        pieces = [self.node("item", [ch], i) for i in keep]
        last = pieces[-1]
        cl = self.shape(last)[1]
        y = self.mod(last, "Conv2d", cl, cl, 1, bias=False)
        y = self.mod(y, "BatchNorm2d", cl)
        y = self.mod(y, "ReLU")
        if rng.random() < 0.5:
            y = self.mod(y, "Conv2d", cl, cl, 3, padding=1, groups=cl, bias=False)
        out = self.node("cat", pieces[:-1] + [y], 1) if len(pieces) > 1 else y
        ct = self.shape(out)[1]
        gs = [g for g in _divisors(ct) if g > 1]
        return self.mod(out, "ChannelShuffle", rng.choice(gs)) if gs else out

    def b_two_input(self, src):
        """A NAS cell: combine the current tensor with an earlier one of the same spatial size."""
        rng = self.rng
        hw = self.shape(src)[2:]
        cands = [k for k in self.pool if self.shape(k)[2:] == hw and k != src]
        if not cands:
            return self.b_concat(src)
        other = rng.choice(cands)
        c = rng.randint(1, MAX_C)
        ins = []
        for t in (src, other):
            r = rng.random()
            if r < 0.5:
                ins.append(self.conv_bn_act(t, cout=c, stride=1, same_pad=True))
            else:
                t2 = self.pool_op(t, keep_size=True)
                ins.append(self.mod(t2, "Conv2d", self.shape(t2)[1], c, 1))
        if rng.random() < 0.5:
            return self.node("add", ins)
        return self.node("cat", ins, 1)

    def b_views(self, src):
        rng = self.rng
        y = self.mod(src, rng.choice(["Identity", "Dropout"]))
        return self.node("add", [y, src]) if rng.random() < 0.5 else self.act(y)

    def dead_branch(self):
        rng = self.rng
        src = rng.choice(self.pool)
        first = len(self.nodes)
        if rng.random() < 0.5:
            y = self.conv_bn_act(src)
            if rng.random() < 0.5:
                y = self.conv_bn_act(y)
        else:  # an auxiliary classifier
            y = self.mod(src, "AdaptiveAvgPool2d", rng.choice([1, 2]))
            y = self.mod(y, "Flatten")
            y = self.mod(y, "Linear", self.shape(y)[1], rng.randint(1, 10))
            if rng.random() < 0.5:
                y = self.mod(y, "BatchNorm1d", self.shape(y)[1])
        self.dead.update(range(first, len(self.nodes)))

    def head(self, src):
        rng = self.rng
        y = self.mod(src, "AdaptiveAvgPool2d", rng.choice([1, 1, 2]))
        y = self.mod(y, "Flatten") if rng.random() < 0.5 else self.node("flatten", [y], 1)
        if rng.random() < 0.3:
            y = self.mod(y, "Dropout", 0.2)
        return self.mod(y, "Linear", self.shape(y)[1], rng.randint(1, 12))

    BLOCKS = ("b_conv", "b_pool", "b_residual", "b_concat", "b_se", "b_shuffle", "b_two_input", "b_views")

    def body(self, n_blocks):
        rng = self.rng
        cur = self.conv_bn_act(0)
        self.pool.append(cur)
        for _ in range(n_blocks):
            if rng.random() < 0.25:
                self.dead_branch()
            block = rng.choice(self.BLOCKS)
            if block == "b_pool" and min(self.shape(cur)[2:]) < 2:
                block = "b_conv"
            cur = getattr(self, block)(cur)
            if self.shape(cur)[1] > 3 * MAX_C:  # keep channels small
                cur = self.conv_bn_act(cur, cout=self.rng.randint(1, MAX_C), k=1)
            self.pool.append(cur)
        return cur

    def generate(self):
        rng = self.rng
        cur = self.body(rng.randint(2, 7))
        if rng.random() < 0.5:
            cur = self.head(cur)
        outputs = [cur]
        if rng.random() < 0.25:  # a second output (any earlier tensor, dead ones included)
            cands = [k for k in range(1, len(self.nodes) - 1) if isinstance(self.vals[k], torch.Tensor)
                     and self.vals[k].dim() >= 2]
            outputs.append(rng.choice(cands))
        if rng.random() < 0.15:
            self.dead_branch()  # made after the output: still unused
        return outputs


@functools.lru_cache(maxsize=None)
def make_case(seed):
    g = Gen(seed)
    outputs = g.generate()
    return g, outputs


# ---------------------------------------------------------------------------------------------
# Building the cnncore model from the same nodes
def build_cc(g, outputs, check_shapes=True):
    x = cc.Input(g.in_shape, batch_size=g.batch)
    t = [x]
    for k in range(1, len(g.nodes)):
        kind, srcs, payload = g.nodes[k]
        a = [t[s] for s in srcs]
        name = f"n{k}" if k % 2 else None
        if kind == "mod":
            nm, args, kwargs = payload
            v = getattr(cc, nm)(*args, **kwargs)(a[0], name=name)
        elif kind == "add":
            v = cc.add(a[0], a[1], name=name) if k % 3 else a[0] + a[1]
        elif kind == "mul":
            v = cc.mul(a[0], a[1], name=name) if k % 3 else a[0] * a[1]
        elif kind == "cat":
            v = cc.cat(a, dim=payload, name=name)
        elif kind == "chunk":
            v = cc.chunk(a[0], payload, dim=1, name=name)
        elif kind == "split":
            v = cc.split(a[0], payload, dim=1, name=name)
        elif kind == "item":
            v = a[0][payload]
        elif kind == "flatten":
            v = cc.flatten(a[0], payload, name=name)
        else:
            raise AssertionError(kind)
        if check_shapes:
            want = g.vals[k]
            if isinstance(want, torch.Tensor):
                assert v.shape == tuple(want.shape), (k, g.nodes[k], v.shape, tuple(want.shape))
            else:
                assert [p.shape for p in v] == [tuple(p.shape) for p in want], (k, g.nodes[k])
        t.append(v)
    return cc.Model(x, [t[o] for o in outputs])


def is_view(node):
    kind, _, payload = node
    return kind in ("item", "flatten") or (kind == "mod" and payload[0] in VIEW_MODULES)


def expected_memory(g, outputs):
    """activation_elements and peak elements, straight from docs/conventions.md over the node list.

    Rows run in node order (chunk/split pieces are rows of their own, read through "item" nodes);
    only rows an output depends on run; views allocate nothing and share their source's storage."""
    need = needed_nodes(g.nodes, outputs)
    numel = lambda k: g.vals[k].numel()  # noqa: E731
    storage = {0: 0}
    last_reader = {}
    act = 0
    order = []
    for k in range(1, len(g.nodes)):
        if k not in need:
            continue
        kind, srcs, _ = g.nodes[k]
        if kind in ("chunk", "split"):
            storage[k] = storage[srcs[0]]  # pieces are views; the rows are the items
            continue
        if kind == "item":
            # the Slice row is the chunk's piece; a piece is read through exactly one item node
            storage[k] = storage[srcs[0]]
            src_of_row = g.nodes[srcs[0]][1]
        else:
            src_of_row = srcs
            storage[k] = storage[srcs[0]] if is_view(g.nodes[k]) else k
        act += numel(k)
        order.append((k, src_of_row))
        for s in src_of_row:
            last_reader[storage[s]] = k
    kept = {storage[o] for o in outputs}
    live = {0: numel(0)}
    cur = peak = numel(0)
    for k, _ in order:
        if storage[k] == k:  # allocates
            live[k] = numel(k)
            cur += numel(k)
            peak = max(peak, cur)
        for s in list(live):
            if s not in kept and last_reader.get(s, k) == k:
                cur -= live.pop(s)
    return act, peak


def torch_truth(g, outputs):
    m = TorchDag(g.nodes, g.modules, outputs).eval()
    x = g.vals[0]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = m(x)
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    return dict(params=sum(p.numel() for p in m.parameters()),
                buffers=sum(b.numel() for b in m.buffers()),
                macs=fc.get_total_flops() // 2,
                output_shapes=[tuple(o.shape) for o in outs])


@functools.lru_cache(maxsize=None)
def truth_and_model(seed):
    g, outputs = make_case(seed)
    return torch_truth(g, outputs), build_cc(g, outputs), expected_memory(g, outputs)


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_dag_matches_torch(seed, backend):
    want, model, (act, peak) = truth_and_model(seed)
    r = cc.count(model, backend=backend)
    got = dict(params=r.params, buffers=r.buffers, macs=r.macs, output_shapes=list(r.output_shapes))
    assert got == want, f"seed {seed}: cnncore {got} != torch {want}"
    assert r.output_shape == want["output_shapes"][0]
    assert r.activation_elements == act, f"seed {seed}"
    assert r.peak_activation_bytes == 4 * peak, f"seed {seed}: {r.peak_activation_bytes} != 4 * {peak}"


def test_generator_covers_the_node_kinds():
    kinds, mods, n_dead, n_multi = set(), set(), 0, 0
    for seed in range(N_SEEDS):
        g, outputs = make_case(seed)
        need = needed_nodes(g.nodes, outputs)
        n_dead += any(k not in need and g.nodes[k][0] == "mod" for k in range(1, len(g.nodes)))
        n_multi += len(outputs) > 1
        for node in g.nodes[1:]:
            kinds.add(node[0])
            if node[0] == "mod":
                mods.add(node[2][0])
    assert kinds == {"mod", "add", "mul", "cat", "chunk", "split", "item", "flatten"}
    assert {"Conv2d", "BatchNorm2d", "ChannelShuffle", "AdaptiveAvgPool2d", "Sigmoid", "Linear",
            "MaxPool2d", "AvgPool2d", "Identity", "Dropout", "Flatten"} <= mods
    assert n_dead >= N_SEEDS // 5, n_dead
    assert n_multi >= N_SEEDS // 10, n_multi


# ---------------------------------------------------------------------------------------------
# Invalid DAGs: torch raises in forward, cnncore raises cc.ShapeError at the call
BAD_KINDS = ("add_channels", "add_spatial", "mul_channels", "cat_spatial", "conv_in_channels",
             "linear_in_features")


def make_bad_case(seed):
    g = Gen(10_000 + seed)
    cur = g.body(g.rng.randint(1, 4))
    rng = g.rng
    bad_kind = BAD_KINDS[seed % len(BAD_KINDS)]
    t = rng.choice(g.pool)
    c = g.shape(t)[1]
    if bad_kind in ("add_channels", "mul_channels"):
        # channels c+1 vs c+2: both >= 2, never broadcastable
        a = g.mod(t, "Conv2d", c, c + 1, 1)
        b = g.mod(t, "Conv2d", c, c + 2, 1)
        bad = ("add" if bad_kind == "add_channels" else "mul", [a, b], None)
    elif bad_kind == "add_spatial":
        a = g.mod(t, "Conv2d", c, c, 1, padding=1)  # H + 2 >= 3
        b = g.mod(a, "Conv2d", c, c, 1, padding=1)  # H + 4
        bad = ("add", [b, a], None)
    elif bad_kind == "cat_spatial":
        a = g.mod(t, "Conv2d", c, rng.randint(1, 8), 1, padding=1)  # H + 2 vs H: cat needs equality
        bad = ("cat", [t, a] if rng.random() < 0.5 else [a, t], 1)
    elif bad_kind == "conv_in_channels":
        bad = ("mod", [t], ("Conv2d", (c + 1, 4, 1), {}))
    else:
        f = g.mod(t, "Flatten")
        bad = ("mod", [f], ("Linear", (g.shape(f)[1] + 1, 3), {}))
    return g, cur, bad


def _torch_forward_raises(g, bad):
    kind, srcs, payload = bad
    nodes = g.nodes + [bad]
    modules = dict(g.modules)
    if kind == "mod":
        nm, args, kwargs = payload
        modules[len(g.nodes)] = getattr(nn, nm)(*args, **kwargs)
    m = TorchDag(nodes, modules, [len(g.nodes)]).eval()
    try:
        with torch.no_grad():
            m(g.vals[0])
    except RuntimeError:
        return True
    return False


@pytest.mark.parametrize("seed", range(N_BAD_SEEDS))
def test_invalid_dag_raises_at_the_call(seed, backend):
    g, cur, bad = make_bad_case(seed)
    assert _torch_forward_raises(g, bad), f"seed {seed}: torch accepted {bad}"
    # everything before the bad call builds (and its shapes match torch's)
    model = build_cc(g, [cur])
    r = cc.count(model, backend=backend)
    assert r.output_shape == tuple(g.vals[cur].shape)
    # the bad call on a fresh build of the same tensors
    kind, srcs, payload = bad
    t = _tensors_of(g)
    a = [t[s] for s in srcs]
    with pytest.raises(cc.ShapeError) as e:
        if kind == "add":
            cc.add(a[0], a[1], name="bad_op")
        elif kind == "mul":
            cc.mul(a[0], a[1], name="bad_op")
        elif kind == "cat":
            cc.cat(a, dim=payload, name="bad_op")
        else:
            nm, args, kwargs = payload
            getattr(cc, nm)(*args, **kwargs)(a[0], name="bad_op")
    assert "bad_op" in str(e.value)
    assert e.value.layer_name == "bad_op"


def _tensors_of(g):
    """The cnncore tensors of every node of g (a fresh build)."""
    x = cc.Input(g.in_shape, batch_size=g.batch)
    t = [x]
    for k in range(1, len(g.nodes)):
        kind, srcs, payload = g.nodes[k]
        a = [t[s] for s in srcs]
        if kind == "mod":
            nm, args, kwargs = payload
            t.append(getattr(cc, nm)(*args, **kwargs)(a[0]))
        elif kind in ("add", "mul"):
            t.append(getattr(cc, kind)(a[0], a[1]))
        elif kind == "cat":
            t.append(cc.cat(a, dim=payload))
        elif kind == "chunk":
            t.append(cc.chunk(a[0], payload))
        elif kind == "split":
            t.append(cc.split(a[0], payload))
        elif kind == "item":
            t.append(a[0][payload])
        elif kind == "flatten":
            t.append(cc.flatten(a[0], payload))
    return t


def test_bad_mul_broadcast_vs_torch_oracle():
    """add/mul between random pairs of earlier tensors: cnncore raises exactly when torch does."""
    n_raise = n_ok = 0
    for seed in range(40):
        g = Gen(20_000 + seed)
        g.body(g.rng.randint(2, 5))
        t = _tensors_of(g)
        four = [k for k in range(len(g.nodes)) if isinstance(g.vals[k], torch.Tensor)]
        for _ in range(5):
            i, j = g.rng.choice(four), g.rng.choice(four)
            if g.vals[i].shape[0] != g.vals[j].shape[0]:
                continue
            op = g.rng.choice(["add", "mul", "cat"])
            try:
                want = tuple(run_node(op, 1, None, [g.vals[i], g.vals[j]]).shape)
            except RuntimeError:
                want = None
            try:
                got = getattr(cc, op)(*([[t[i], t[j]]] if op == "cat" else [t[i], t[j]])).shape
            except cc.ShapeError:
                got = None
            assert got == want, (seed, op, tuple(g.vals[i].shape), tuple(g.vals[j].shape))
            n_raise += want is None
            n_ok += want is not None
    assert n_raise > 20 and n_ok > 20, (n_raise, n_ok)


if __name__ == "__main__":  # python tests/test_graph_torch.py SEED
    s = int(sys.argv[1])
    g, outs = make_case(s)
    for k, node in enumerate(g.nodes[1:], 1):
        print(k, node, g.shape(k) or [tuple(p.shape) for p in g.vals[k]])
    print("outputs", outs)
    want, model, mem = truth_and_model(s)
    print("torch", want, "memory (elements)", mem)
    for b in ("core", "reference"):
        print(b, cc.count(model, backend=b))
