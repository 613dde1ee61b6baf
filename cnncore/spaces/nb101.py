"""NAS-Bench-101 (Ying et al., ICML 2019): a cell given as an adjacency matrix + op list -> network.

Transcribed from google-research/nasbench: ``nasbench/lib/model_builder.py`` (build_model_fn,
build_module, projection, truncate, compute_vertex_channels), ``nasbench/lib/base_ops.py``
(conv_bn_relu, Conv3x3BnRelu, Conv1x1BnRelu, MaxPool3x3), ``nasbench/lib/model_spec.py``
(ModelSpec._prune, hash_spec) and ``nasbench/lib/graph_util.py`` (hash_module).

* stem: conv 3x3 (128 filters, no bias, 'same') + BatchNorm + ReLU;
* 3 stacks of 3 modules; before stacks 1 and 2 a 2x2/2 max-pool ('same' padding; the maps are
  even, so no padding) and the module channels double (128, 256, 512);
* global average pool, dense 10 (with bias).

A module (cell) with vertices 0 (input) .. V-1 (output): ``compute_vertex_channels`` splits the
module's output channels among the vertices that feed the output (the first ``C % k`` of them get
one more channel), and every other interior vertex takes the max of its successors' channels.
Vertex t's input is the sum of its interior predecessors' outputs (truncated to its channels by
slicing off the extra channel) and, when the input vertex feeds it, a projection of the module
input (1x1 conv-BN-ReLU to its channels); then its op (conv3x3/conv1x1-BN-ReLU, keeping the
channels, or a 3x3/1 max-pool). The module output is the concatenation of the vertices feeding the
output vertex (in vertex order) plus, when the input feeds the output directly, a projection of
the input to the module's channels (alone when no interior vertex feeds the output).

Parameters: NAS-Bench-101's ``trainable_parameters`` are TensorFlow's trainable variables:
convolution kernels (no biases), BatchNorm gamma and beta, the dense kernel and bias. cnncore
writes the convolutions as Conv2d(bias=False) and the norms as BatchNorm2d(affine=True), whose
weight/bias are exactly gamma/beta; the moving mean/variance are buffers (TensorFlow's
non-trainable variables). So ``cc.count(model).params`` equals the benchmark's number.

Matrices are pruned as ModelSpec does: vertices not on a path from input to output are removed
(an op list longer than the pruned matrix is cut the same way); a cell whose input does not reach
its output is invalid (ValueError).
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..graph import Input, Model, add, cat, flatten, split
from ..layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU

__all__ = ["NB101", "nb101_model", "nb101_prune", "nb101_hash", "compute_vertex_channels", "NB101_OPS"]

NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")  # nasbench config 'available_ops'
INPUT, OUTPUT = "input", "output"


def _check_spec(matrix, ops):
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"NB101: the adjacency matrix must be square with at least 2 vertices, got shape {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise ValueError("NB101: the adjacency matrix must hold 0/1 entries")
    m = m.astype(np.int64)
    if np.tril(m).any():
        raise ValueError("NB101: the adjacency matrix must be strictly upper-triangular (a DAG in vertex order)")
    ops = list(ops)
    if len(ops) != m.shape[0]:
        raise ValueError(f"NB101: {len(ops)} ops for a {m.shape[0]}-vertex matrix")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError("NB101: the first op must be 'input' and the last 'output'")
    for op in ops[1:-1]:
        if op not in NB101_OPS:
            raise ValueError(f"NB101: unknown op {op!r}; expected one of {NB101_OPS}")
    return m, ops


def nb101_prune(matrix, ops):
    """(matrix, ops) with the vertices not on an input->output path removed (ModelSpec._prune).
    ValueError when the output is not reachable from the input."""
    m, ops = _check_spec(matrix, ops)
    n = m.shape[0]
    from_in, stack = {0}, [0]
    while stack:
        v = stack.pop()
        for w in range(v + 1, n):
            if m[v, w] and w not in from_in:
                from_in.add(w)
                stack.append(w)
    to_out, stack = {n - 1}, [n - 1]
    while stack:
        v = stack.pop()
        for u in range(v):
            if m[u, v] and u not in to_out:
                to_out.add(u)
                stack.append(u)
    keep = sorted(from_in & to_out)
    if 0 not in keep or n - 1 not in keep or len(keep) < 2:
        raise ValueError("NB101: invalid cell: the output vertex is not reachable from the input")
    return m[np.ix_(keep, keep)].copy(), [ops[v] for v in keep]


def nb101_hash(matrix, ops):
    """NAS-Bench-101's graph-invariant MD5 of a (pruned) cell (ModelSpec.hash_spec over
    graph_util.hash_module): the key of the benchmark's records (``module_hash``)."""
    m, ops = nb101_prune(matrix, ops)
    labeling = [-1] + [NB101_OPS.index(op) for op in ops[1:-1]] + [-2]
    n = m.shape[0]
    in_edges = m.sum(axis=0).tolist()
    out_edges = m.sum(axis=1).tolist()
    hashes = [hashlib.md5(str(h).encode("utf-8")).hexdigest() for h in zip(out_edges, in_edges, labeling)]
    for _ in range(n):
        hashes = [hashlib.md5((''.join(sorted(hashes[w] for w in range(n) if m[w, v])) + "|"
                               + ''.join(sorted(hashes[w] for w in range(n) if m[v, w])) + "|"
                               + hashes[v]).encode("utf-8")).hexdigest() for v in range(n)]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def compute_vertex_channels(input_channels, output_channels, matrix):
    """Channels of every vertex of a pruned module (model_builder.compute_vertex_channels)."""
    m = np.asarray(matrix, dtype=np.int64)
    n = m.shape[0]
    vc = [0] * n
    vc[0], vc[n - 1] = int(input_channels), int(output_channels)
    if n == 2:
        return vc
    in_degree = m[1:].sum(axis=0)
    interior, correction = divmod(int(output_channels), int(in_degree[n - 1]))
    for v in range(1, n - 1):
        if m[v, n - 1]:
            vc[v] = interior
            if correction:
                vc[v] += 1
                correction -= 1
    for v in range(n - 3, 0, -1):
        if not m[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if m[v, dst]:
                    vc[v] = max(vc[v], vc[dst])
        if vc[v] <= 0:
            raise ValueError(f"NB101: vertex {v} gets no channels")
    return vc


def _conv_bn_relu(x, cin, cout, k, name):
    x = Conv2d(cin, cout, k, 1, k // 2, bias=False)(x, name=f"{name}.conv")
    x = BatchNorm2d(cout)(x, name=f"{name}.bn")
    return ReLU()(x, name=f"{name}.relu")


def _truncate(x, channels, name):
    have = x.shape[1]
    if have == channels:
        return x
    if have - channels != 1:
        raise ValueError(f"NB101: cannot truncate {have} channels to {channels}")
    return split(x, [channels, have - channels], dim=1, name=name)[0]


def _module(m, ops, x, channels, name):
    n = m.shape[0]
    cin = x.shape[1]
    vc = compute_vertex_channels(cin, channels, m)
    tensors = [x]
    final = []
    for t in range(1, n - 1):
        vn = f"{name}.vertex_{t}"
        add_in = [_truncate(tensors[s], vc[t], f"{vn}.truncate_{s}") for s in range(1, t) if m[s, t]]
        if m[0, t]:
            add_in.append(_conv_bn_relu(x, cin, vc[t], 1, f"{vn}.projection"))
        h = add_in[0]
        for k, y in enumerate(add_in[1:]):
            h = add(h, y, name=f"{vn}.add_n" + (f"_{k}" if k else ""))
        op = ops[t]
        if op == "maxpool3x3":
            h = MaxPool2d(3, 1, 1)(h, name=f"{vn}.maxpool3x3")
        else:
            h = _conv_bn_relu(h, vc[t], vc[t], 3 if op == "conv3x3-bn-relu" else 1, f"{vn}.{op}")
        tensors.append(h)
        if m[t, n - 1]:
            final.append(h)
    if not final:
        return _conv_bn_relu(x, cin, channels, 1, f"{name}.output.projection")
    out = final[0] if len(final) == 1 else cat(final, dim=1, name=f"{name}.concat")
    if m[0, n - 1]:
        out = add(out, _conv_bn_relu(x, cin, channels, 1, f"{name}.projection"), name=f"{name}.add")
    return out


def nb101_model(matrix, ops=None, stem_channels=128, num_stacks=3, num_modules_per_stack=3, num_labels=10,
                input_shape=(3, 32, 32), name=None):
    """NAS-Bench-101's network of one cell (``matrix``: V x V upper-triangular 0/1 adjacency,
    ``ops``: 'input', V-2 of NB101_OPS, 'output'), pruned as the benchmark prunes it; CIFAR-10
    defaults. Also accepts a dict with ``module_adjacency``/``module_operations`` as ``matrix``."""
    if isinstance(matrix, dict):
        matrix, ops = matrix["module_adjacency"], matrix["module_operations"]
    m, ops = nb101_prune(matrix, ops)
    x = Input(tuple(input_shape))
    h = _conv_bn_relu(x, input_shape[0], stem_channels, 3, "stem")
    channels = stem_channels
    for s in range(num_stacks):
        if s > 0:
            h = MaxPool2d(2, 2)(h, name=f"stack{s}.downsample")
            channels *= 2
        for k in range(num_modules_per_stack):
            h = _module(m, ops, h, channels, f"stack{s}.module{k}")
    h = AdaptiveAvgPool2d(1)(h, name="global_pool")  # tf.reduce_mean over H, W
    h = flatten(h, 1, name="flatten")
    h = Linear(channels, num_labels)(h, name="dense")
    return Model(x, h, name=name or f"nb101_{nb101_hash(m, ops)[:8]}")


class NB101:
    """The NAS-Bench-101 cell space (at most 7 vertices, at most 9 edges, ops ``NB101_OPS``):
    423,624 unique cells (``.size``, the benchmark's count).

    The benchmark keys cells by ``nb101_hash`` rather than by an index, and enumerating the
    unique cells needs the benchmark's graph generation, so this space works on (matrix, ops)
    specs: ``.model(spec)``, ``.hash(spec)``, ``.sample(n, seed)`` (random valid pruned specs, as
    nasbench's random_spec draws them), ``.pack(specs)``. A spec is ``(matrix, ops)`` or a dict
    with ``module_adjacency``/``module_operations``.
    """

    size = 423624
    ops = NB101_OPS
    max_vertices = 7
    max_edges = 9

    def __init__(self, stem_channels=128, num_stacks=3, num_modules_per_stack=3, num_labels=10):
        self.stem_channels, self.num_stacks = stem_channels, num_stacks
        self.num_modules_per_stack, self.num_labels = num_modules_per_stack, num_labels
        self.input_shape = (3, 32, 32)

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"NB101({self.size} cells, input {self.input_shape})"

    @staticmethod
    def _spec(spec):
        if isinstance(spec, dict):
            return spec["module_adjacency"], spec["module_operations"]
        matrix, ops = spec
        return matrix, ops

    def model(self, spec):
        matrix, ops = self._spec(spec)
        return nb101_model(matrix, ops, self.stem_channels, self.num_stacks, self.num_modules_per_stack,
                           self.num_labels, self.input_shape)

    def hash(self, spec):
        return nb101_hash(*self._spec(spec))

    def is_valid(self, spec):
        """In the benchmark's space: prunes to a valid cell with <= 7 vertices and <= 9 edges."""
        try:
            m, _ = nb101_prune(*self._spec(spec))
        except ValueError:
            return False
        return m.shape[0] <= self.max_vertices and int(m.sum()) <= self.max_edges

    def sample(self, n, seed=None):
        """n random valid specs (pruned (matrix, ops) pairs), drawn like nasbench's random_spec:
        a uniform 7x7 upper-triangular 0/1 matrix and uniform ops, redrawn until valid."""
        rng = np.random.default_rng(seed)
        out = []
        while len(out) < int(n):
            m = np.triu(rng.integers(0, 2, size=(7, 7)), 1)
            ops = [INPUT] + [NB101_OPS[i] for i in rng.integers(0, 3, size=5)] + [OUTPUT]
            if self.is_valid((m, ops)):
                out.append(nb101_prune(m, ops))
        return out

    def pack(self, specs):
        """A cc.Packed of the specs' networks (one graph per spec: NAS-Bench-101's cells differ
        in structure, not only in arguments)."""
        from ..packing import pack
        return pack([self.model(s) for s in specs])
