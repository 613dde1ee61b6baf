"""The PyTorch bridge (optional dependency: torch is imported only inside these functions).

- `from_torch(module, input_shape)`: trace `module` with torch.fx into a cc.Model whose row names are
  the torch module's qualified names (`layer1.0.conv1`); functional calls (`x + y`, `torch.cat`,
  `torch.flatten`, `x.view(x.size(0), -1)`, `F.relu`, `F.adaptive_avg_pool2d`, `x.mean((2, 3))`, ...)
  become rows named `<enclosing module>.<op>` (`layer1.0.add`), as torch.fx names them.
- `to_torch(model)`: the equivalent torch.nn.Module: a Sequential becomes an nn.Sequential, a Model an
  nn.Module (`GraphNet`) that runs the graph's calls in order, holding every layer at its cnncore row
  name (`layer1.0.conv1` is `net.layer1[0].conv1`, so state_dict keys follow the names).
- `register_torch_module(torch_cls, fn)`: map a custom torch module class (fn(module) returns a
  cnncore layer, Sequential or Model); a registered class is a leaf of the trace.

Modules that exist but that forward never calls (an eval-mode auxiliary head) are counted as torch
counts them, params and buffers only: each gets a dead call on an input synthesised from the network
input by parameter-free rows (adaptive pool, flatten, cat, slice) that are flagged unused too.
"""
from __future__ import annotations

import operator
import re
import warnings
from collections import OrderedDict

from . import _format as F_
from . import graph as _graph
from . import layers as L
from .graph import Add, Cat, Input, Model, Mul, Slice, Tensor, _call, add, cat, chunk, flatten, mul, split
from .layers import Layer
from .model import Sequential

__all__ = ["from_torch", "to_torch", "register_torch_module"]

_CUSTOM: dict = {}  # torch class -> fn(module) -> cnncore layer / Sequential / Model


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError("the PyTorch bridge needs torch: pip install cnncore[torch]") from None
    return torch


def register_torch_module(torch_cls, fn=None):
    """Map instances of `torch_cls` (a torch.nn.Module subclass) with `fn(module)`, which returns a
    cnncore layer, Sequential or Model (called on the module's input tensors, rows named
    `<qualified name>.<inner name>`). Registered classes are leaves of the torch.fx trace, and take
    precedence over cnncore's built-in mappings. Usable as a decorator: `@register_torch_module(Cls)`."""
    if not isinstance(torch_cls, type):
        raise TypeError(f"register_torch_module: expected a class, got {torch_cls!r}")
    if fn is None:
        def deco(f):
            register_torch_module(torch_cls, f)
            return f
        return deco
    if not callable(fn):
        raise TypeError(f"register_torch_module: fn must be callable, got {fn!r}")
    _CUSTOM[torch_cls] = fn
    return fn


# =============================================================================================
# torch modules for cnncore's functional-only ops (defined once torch is imported)
_TORCH_CLASSES: dict = {}


def _torch_classes():
    if _TORCH_CLASSES:
        return _TORCH_CLASSES
    torch = _torch()
    nn = torch.nn

    class TorchAdd(nn.Module):
        """torch.add(a, b) as a module (cnncore's Add row)."""

        def forward(self, a, b):
            return a + b

    class TorchMul(nn.Module):
        """torch.mul(a, b) as a module (cnncore's Mul row)."""

        def forward(self, a, b):
            return a * b

    class TorchCat(nn.Module):
        """torch.cat(inputs, dim) as a module (cnncore's Cat row)."""

        def __init__(self, dim=1):
            super().__init__()
            self.dim = dim

        def forward(self, *xs):
            return torch.cat(xs, self.dim)

        def extra_repr(self):
            return f"dim={self.dim}"

    class TorchSlice(nn.Module):
        """x.narrow(dim, start, length): one piece of torch.split / torch.chunk (cnncore's Slice row)."""

        def __init__(self, dim, start, length):
            super().__init__()
            self.dim, self.start, self.length = dim, start, length

        def forward(self, x):
            return x.narrow(self.dim, self.start, self.length)

        def extra_repr(self):
            return f"dim={self.dim}, start={self.start}, length={self.length}"

    class Scope(nn.Module):
        """A namespace for the modules under one dotted name prefix (no forward of its own);
        `scope[0]` reads child "0", as on an nn.Sequential."""

        def __getitem__(self, key):
            return self._modules[str(key)]

    class GraphNet(nn.Module):
        """A cnncore Model as a torch module: runs the model's calls in order.

        Every layer is held at its cnncore row name (dots make nested Scopes, so `layer1.0.conv1`
        is `self.layer1[0].conv1`); calls no output depends on are held (their parameters exist)
        but not run, as in cnncore."""

        def __init__(self, n_inputs, steps, outputs, name=None):
            super().__init__()
            self._cc_n_inputs = n_inputs
            self._cc_steps = steps      # [(module path, input slots, output slot)]
            self._cc_outputs = outputs  # output slots
            self._cc_name = name

        def forward(self, *inputs):
            vals = {i: inputs[i] for i in range(self._cc_n_inputs)}
            for path, srcs, out in self._cc_steps:
                vals[out] = self.get_submodule(path)(*[vals[s] for s in srcs])
            outs = [vals[o] for o in self._cc_outputs]
            return outs[0] if len(outs) == 1 else tuple(outs)

    for key, cls in (("Add", TorchAdd), ("Mul", TorchMul), ("Cat", TorchCat), ("Slice", TorchSlice),
                     ("Scope", Scope), ("GraphNet", GraphNet)):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
        globals()[cls.__name__] = cls  # picklable by name: torch.save(model) works
        _TORCH_CLASSES[key] = cls
    return _TORCH_CLASSES


# =============================================================================================
# torch module -> cnncore layer
def _bn_bias(m, affine):
    return True if not affine else getattr(m, "bias", None) is not None


_BUILTIN: dict = {}


def _builtin_map():
    if _BUILTIN:
        return _BUILTIN
    torch = _torch()
    nn = torch.nn
    tc = _torch_classes()
    M = {}

    def conv(cc_cls, lazy_cls, transposed):
        def f(m):
            lazy = m.in_channels == 0 or _uninitialized(m)
            kw = dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups,
                      bias=m.bias is not None, padding_mode=m.padding_mode)
            if transposed:
                kw["output_padding"] = m.output_padding
            if lazy:
                return lazy_cls(m.out_channels, m.kernel_size, **kw)
            return cc_cls(m.in_channels, m.out_channels, m.kernel_size, **kw)
        return f

    for d in (1, 2, 3):
        M[getattr(nn, f"Conv{d}d")] = conv(getattr(L, f"Conv{d}d"), getattr(L, f"LazyConv{d}d"), False)
        M[getattr(nn, f"ConvTranspose{d}d")] = conv(getattr(L, f"ConvTranspose{d}d"),
                                                    getattr(L, f"LazyConvTranspose{d}d"), True)

        def bn(m, d=d):
            if m.num_features == 0 or _uninitialized(m):
                return getattr(L, f"LazyBatchNorm{d}d")(m.eps, m.momentum, m.affine, m.track_running_stats,
                                                         bias=_bn_bias(m, m.affine))
            return getattr(L, f"BatchNorm{d}d")(m.num_features, m.eps, m.momentum, m.affine,
                                                 m.track_running_stats, bias=_bn_bias(m, m.affine))
        M[getattr(nn, f"BatchNorm{d}d")] = M[getattr(nn, f"LazyBatchNorm{d}d")] = bn

        def maxpool(m, d=d):
            if m.return_indices:
                raise ValueError("MaxPool with return_indices=True returns two tensors; cnncore models one")
            return getattr(L, f"MaxPool{d}d")(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
        M[getattr(nn, f"MaxPool{d}d")] = maxpool
        M[getattr(nn, f"AvgPool{d}d")] = lambda m, d=d: getattr(L, f"AvgPool{d}d")(
            m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
        M[getattr(nn, f"AdaptiveAvgPool{d}d")] = lambda m, d=d: getattr(L, f"AdaptiveAvgPool{d}d")(m.output_size)

        def amax(m, d=d):
            if m.return_indices:
                raise ValueError("AdaptiveMaxPool with return_indices=True returns two tensors; cnncore models one")
            return getattr(L, f"AdaptiveMaxPool{d}d")(m.output_size)
        M[getattr(nn, f"AdaptiveMaxPool{d}d")] = amax

    def linear(m):
        if m.in_features == 0 or _uninitialized(m):
            return L.LazyLinear(m.out_features, m.bias is not None)
        return L.Linear(m.in_features, m.out_features, m.bias is not None)
    M[nn.Linear] = linear
    M[nn.LayerNorm] = lambda m: L.LayerNorm(tuple(m.normalized_shape), m.eps, m.elementwise_affine,
                                            _bn_bias(m, m.elementwise_affine))
    M[nn.GroupNorm] = lambda m: L.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine,
                                            bias=_bn_bias(m, m.affine))
    for n in ("ReLU", "ReLU6", "SiLU", "Hardswish", "Hardsigmoid"):
        M[getattr(nn, n)] = lambda m, n=n: getattr(L, n)(inplace=m.inplace)

    def hardtanh(m):
        if (m.min_val, m.max_val) == (0.0, 6.0):
            return L.ReLU6(inplace=m.inplace)
        raise ValueError(f"Hardtanh(min_val={m.min_val}, max_val={m.max_val}): only Hardtanh(0, 6) (ReLU6) is supported")
    M[nn.Hardtanh] = hardtanh
    M[nn.LeakyReLU] = lambda m: L.LeakyReLU(m.negative_slope, m.inplace)
    M[nn.ELU] = lambda m: L.ELU(m.alpha, m.inplace)
    M[nn.GELU] = lambda m: L.GELU(m.approximate)
    M[nn.Sigmoid] = lambda m: L.Sigmoid()
    M[nn.Tanh] = lambda m: L.Tanh()
    M[nn.PReLU] = lambda m: L.PReLU(m.num_parameters)
    M[nn.Softmax] = lambda m: L.Softmax(m.dim)
    M[nn.Flatten] = lambda m: L.Flatten(m.start_dim, m.end_dim)
    M[nn.Identity] = lambda m: L.Identity()
    for n in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"):
        M[getattr(nn, n)] = lambda m, n=n: getattr(L, n)(m.p)
    M[nn.ZeroPad2d] = lambda m: L.ZeroPad2d(tuple(m.padding))
    M[nn.Upsample] = lambda m: L.Upsample(m.size, m.scale_factor, m.mode)
    M[nn.ChannelShuffle] = lambda m: L.ChannelShuffle(m.groups)
    # cnncore's own functional rows, as to_torch writes them
    M[tc["Add"]] = lambda m: Add()
    M[tc["Mul"]] = lambda m: Mul()
    M[tc["Cat"]] = lambda m: Cat(m.dim)
    M[tc["Slice"]] = lambda m: Slice(m.dim, m.start, m.length)
    _BUILTIN.update(M)
    return _BUILTIN


def _uninitialized(m):
    f = getattr(m, "has_uninitialized_params", None)
    return bool(f and f())


def _lookup(m):
    """The mapping for module m: a registered or built-in class in its MRO whose forward m still uses."""
    builtin = _builtin_map()
    tm = type(m)
    for cls in tm.__mro__:
        for table in (_CUSTOM, builtin):
            fn = table.get(cls)
            if fn is not None and (cls is tm or getattr(tm, "forward", None) is getattr(cls, "forward", None)):
                return fn
    return None


def _qual(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


# =============================================================================================
# from_torch
class _Pending:
    """A torchvision-style channel shuffle in progress: view(b, g, c/g, ...) [-> transpose(1, 2)]."""

    def __init__(self, x, groups, transposed=False):
        self.x, self.groups, self.transposed = x, groups, transposed


def _contains_tensor(v):
    if isinstance(v, (Tensor, _Pending)):
        return True
    if isinstance(v, (tuple, list)):
        return any(_contains_tensor(x) for x in v)
    if isinstance(v, dict):
        return any(_contains_tensor(x) for x in v.values())
    if isinstance(v, slice):
        return any(_contains_tensor(x) for x in (v.start, v.stop, v.step))
    return False


class _Unsupported(Exception):
    pass


def _need(x, what):
    if not isinstance(x, Tensor):
        raise _Unsupported(f"{what} expects a tensor computed from the network input, got {type(x).__name__} {x!r}")
    return x


def _binary(op, opname):
    def h(name, a, b, *, alpha=1, out=None):
        if alpha != 1:
            raise _Unsupported(f"{opname} with alpha={alpha} is not supported")
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return op(a, b, name=name)
        raise _Unsupported(f"{opname} of {type(a).__name__} and {type(b).__name__}: cnncore has no layer for "
                           f"arithmetic with a Python number or a constant tensor (only tensor {opname} tensor)")
    return h


def _dims(d, nd):
    return d % nd if -nd <= d < nd else None


def _reshape(name, x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if isinstance(x, _Pending):
        return _finish_shuffle(name, x, shape)
    _need(x, "view/reshape")
    if any(not isinstance(s, int) for s in shape):
        raise _Unsupported(f"view/reshape to {shape!r}: sizes must be ints (or x.size(...))")
    numel = 1
    for s in x.shape:
        numel *= s
    if shape.count(-1) > 1:
        raise _Unsupported(f"view/reshape to {shape}: only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    target = tuple(numel // known if s == -1 else s for s in shape) if known else tuple(shape)
    if any(s < 1 for s in target) or _prod(target) != numel:
        raise _Unsupported(f"shape '{list(shape)}' is invalid for input of size {numel} (input {x.shape})")
    if target == x.shape:
        return L.Identity()(x, name=name)
    for k in range(1, x.ndim):
        if target == x.shape[:k] + (_prod(x.shape[k:]),):
            return flatten(x, k, -1, name=name)
    # torchvision's channel_shuffle: view(b, groups, c // groups, h, w) -> transpose(1, 2) -> view(b, c, h, w)
    if x.ndim >= 3 and len(target) == x.ndim + 1 and target[0] == x.shape[0] and \
            target[1] * target[2] == x.shape[1] and target[3:] == x.shape[2:]:
        return _Pending(x, target[1])
    raise _Unsupported(f"view/reshape of {x.shape} to {target}: only flattening trailing dimensions "
                       f"(like x.view(x.size(0), -1)) maps to a cnncore layer")


def _prod(t):
    p = 1
    for v in t:
        p *= v
    return p


def _finish_shuffle(name, p, shape):
    x = p.x
    target = tuple(shape)
    if -1 in target:
        known = _prod(s for s in target if s != -1)
        target = tuple(_prod(x.shape) // known if s == -1 else s for s in target)
    if p.transposed and target == x.shape:
        return L.ChannelShuffle(p.groups)(x, name=name)
    raise _Unsupported(f"view/reshape of {x.shape} to {target} after splitting channels into groups: only "
                       f"a channel shuffle (view, transpose(1, 2), view back) maps to a cnncore layer")


def _transpose(name, x, dim0, dim1):
    if isinstance(x, _Pending) and not x.transposed and {dim0 % (x.x.ndim + 1), dim1 % (x.x.ndim + 1)} == {1, 2}:
        return _Pending(x.x, x.groups, True)
    raise _Unsupported("transpose/permute: only the channel shuffle pattern (view, transpose(1, 2), view) "
                       "maps to a cnncore layer")


def _contiguous(name, x, *a, **k):
    return x


def _flatten_h(name, x, start_dim=0, end_dim=-1):
    if isinstance(x, _Pending):
        if x.transposed and _dims(start_dim, x.x.ndim + 1) == 1 and _dims(end_dim, x.x.ndim + 1) == 2:
            return L.ChannelShuffle(x.groups)(x.x, name=name)
        raise _Unsupported("flatten of a grouped view: only a channel shuffle maps to a cnncore layer")
    return flatten(_need(x, "flatten"), start_dim, end_dim, name=name)


def _cat_h(name, tensors, dim=0, *, axis=None, out=None):
    if axis is not None:
        dim = axis
    for t in tensors:
        _need(t, "cat")
    return cat(list(tensors), dim, name=name)


def _chunk_h(name, x, chunks, dim=0):
    return chunk(_need(x, "chunk"), chunks, dim, name=name)


def _split_h(name, x, split_size_or_sections, dim=0):
    return split(_need(x, "split"), split_size_or_sections, dim, name=name)


def _narrow_h(name, x, dim, start, length):
    _need(x, "narrow")
    return _call(Slice(dim, start % x.shape[dim] if start < 0 else start, length), [x], name)


def _getitem(name, obj, idx):
    if isinstance(obj, Tensor):
        return _tensor_index(name, obj, idx)
    if isinstance(obj, _Pending):
        raise _Unsupported("indexing a grouped view is not supported")
    return obj[idx]


def _tensor_index(name, x, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.ndim - len(idx) + 1) + idx[k + 1:]
    if len(idx) > x.ndim or not all(isinstance(i, slice) for i in idx):
        raise _Unsupported(f"indexing {x.shape} with {idx!r}: only slices (like x[:, a:b]) are supported")
    cut = [(d, s) for d, s in enumerate(idx) if s != slice(None)]
    if not cut:
        return x
    if len(cut) > 1:
        raise _Unsupported(f"indexing {x.shape} with {idx!r}: only one sliced dimension is supported")
    d, s = cut[0]
    start, stop, step = s.indices(x.shape[d])
    if step != 1 or stop <= start:
        raise _Unsupported(f"indexing {x.shape} with {idx!r}: only a non-empty slice with step 1 is supported")
    return _call(Slice(d, start, stop - start), [x], name)


def _size_h(name, x, dim=None):
    if isinstance(x, _Pending):
        raise _Unsupported("size of a grouped view is not supported")
    _need(x, "size")
    return x.shape if dim is None else x.shape[dim]


def _getattr_h(name, obj, attr, *default):
    if isinstance(obj, Tensor):
        if attr == "shape":
            return obj.shape
        if attr == "ndim":
            return obj.ndim
        raise _Unsupported(f"tensor attribute {attr!r} is not supported (only shape and ndim)")
    return getattr(obj, attr, *default)


def _layer_h(make):
    """A handler calling the cnncore layer make(*extra args) on its first argument."""
    def h(name, x, *args, **kwargs):
        return make(*args, **kwargs)(_need(x, "this function"), name=name)
    return h


def _act(cls, *names):
    def make(*args, **kwargs):
        kwargs.pop("inplace", None)
        args = args[:len(names)]
        return cls(*args, **{k: v for k, v in kwargs.items() if k in names})
    return _layer_h(make)


def _hardtanh_h(name, x, min_val=-1.0, max_val=1.0, inplace=False):
    if (min_val, max_val) != (0, 6):
        raise _Unsupported(f"hardtanh({min_val}, {max_val}): only hardtanh(0, 6) (relu6) is supported")
    return L.ReLU6()(_need(x, "hardtanh"), name=name)


def _softmax_h(name, x, dim=None, _stacklevel=3, dtype=None):
    return L.Softmax(dim)(_need(x, "softmax"), name=name)


def _pool_h(kind):
    def h(name, x, *args, **kwargs):
        _need(x, kind)
        d = x.ndim - 2
        if not 1 <= d <= 3:
            raise _Unsupported(f"{kind} of a {x.ndim}-d tensor")
        if kind == "max_pool":
            def make(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
                if return_indices:
                    raise _Unsupported("max_pool with return_indices=True returns two tensors")
                return getattr(L, f"MaxPool{d}d")(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
        elif kind == "avg_pool":
            def make(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None):
                return getattr(L, f"AvgPool{d}d")(kernel_size, stride or None, padding, ceil_mode)
        else:
            def make(output_size, return_indices=False):
                if return_indices:
                    raise _Unsupported(f"{kind} with return_indices=True returns two tensors")
                return getattr(L, f"{'AdaptiveAvgPool' if kind == 'adaptive_avg_pool' else 'AdaptiveMaxPool'}{d}d")(
                    output_size)
        return make(*args, **kwargs)(x, name=name)
    return h


def _dropout_h(name, x, p=0.5, training=False, inplace=False):
    return L.Dropout(p)(_need(x, "dropout"), name=name)


def _interpolate_h(name, x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                   recompute_scale_factor=None, antialias=False):
    return L.Upsample(size, scale_factor, mode)(_need(x, "interpolate"), name=name)


def _pad_h(name, x, pad, mode="constant", value=None):
    _need(x, "pad")
    if mode != "constant" or value not in (None, 0) or len(pad) != 4 or x.ndim not in (3, 4):
        raise _Unsupported(f"pad(pad={pad!r}, mode={mode!r}, value={value!r}) of {x.shape}: only zero "
                           f"padding of the last two dimensions (ZeroPad2d) is supported")
    return L.ZeroPad2d(tuple(pad))(x, name=name)


def _mean_h(name, x, dim=None, keepdim=False, *, dtype=None):
    _need(x, "mean")
    dims = (dim,) if isinstance(dim, int) else tuple(dim or ())
    nd = x.ndim
    norm = sorted({_dims(d, nd) for d in dims} - {None})
    if not 3 <= nd <= 5 or norm != list(range(2, nd)) or len(dims) != nd - 2:
        raise _Unsupported(f"mean over dims {dim!r} of {x.shape}: only the mean over every spatial dimension "
                           f"(a global average pool, like x.mean((2, 3))) is supported")
    y = getattr(L, f"AdaptiveAvgPool{nd - 2}d")(1)(x, name=name)
    return y if keepdim else flatten(y, 1, -1, name=f"{name}_flatten")


def _channel_shuffle_h(name, x, groups):
    return L.ChannelShuffle(groups)(_need(x, "channel_shuffle"), name=name)


_FUNCS: dict = {}
_METHODS: dict = {}


def _handlers():
    if _FUNCS:
        return _FUNCS, _METHODS
    torch = _torch()
    F = torch.nn.functional
    fn = {
        operator.add: _binary(add, "add"), operator.iadd: _binary(add, "add"), torch.add: _binary(add, "add"),
        operator.mul: _binary(mul, "mul"), operator.imul: _binary(mul, "mul"), torch.mul: _binary(mul, "mul"),
        torch.cat: _cat_h, torch.concat: _cat_h, torch.concatenate: _cat_h,
        torch.flatten: _flatten_h, torch.reshape: _reshape, torch.chunk: _chunk_h, torch.split: _split_h,
        torch.narrow: _narrow_h, torch.transpose: _transpose, operator.getitem: _getitem, getattr: _getattr_h,
        F.relu: _act(L.ReLU), torch.relu: _act(L.ReLU), torch.relu_: _act(L.ReLU), F.relu_: _act(L.ReLU),
        F.relu6: _act(L.ReLU6), F.hardtanh: _hardtanh_h, F.silu: _act(L.SiLU), F.gelu: _act(L.GELU, "approximate"),
        torch.sigmoid: _act(L.Sigmoid), F.sigmoid: _act(L.Sigmoid), torch.tanh: _act(L.Tanh), F.tanh: _act(L.Tanh),
        F.hardswish: _act(L.Hardswish), F.hardsigmoid: _act(L.Hardsigmoid),
        F.leaky_relu: _act(L.LeakyReLU, "negative_slope"), F.elu: _act(L.ELU, "alpha"),
        F.softmax: _softmax_h, torch.softmax: _softmax_h,
        F.dropout: _dropout_h, F.dropout1d: _dropout_h, F.dropout2d: _dropout_h, F.dropout3d: _dropout_h,
        F.interpolate: _interpolate_h, F.upsample: _interpolate_h, F.pad: _pad_h,
        torch.mean: _mean_h, F.channel_shuffle: _channel_shuffle_h, torch.channel_shuffle: _channel_shuffle_h,
        torch.native_channel_shuffle: _channel_shuffle_h,
    }
    for d in (1, 2, 3):
        for f in (getattr(F, f"max_pool{d}d"), getattr(torch, f"max_pool{d}d", None)):
            fn[f] = _pool_h("max_pool")
        for f in (getattr(F, f"avg_pool{d}d"), getattr(torch, f"avg_pool{d}d", None)):
            fn[f] = _pool_h("avg_pool")
        fn[getattr(F, f"adaptive_avg_pool{d}d")] = _pool_h("adaptive_avg_pool")
        fn[getattr(F, f"adaptive_max_pool{d}d")] = _pool_h("adaptive_max_pool")
    fn.pop(None, None)
    methods = {
        "add": fn[torch.add], "add_": fn[torch.add], "mul": fn[torch.mul], "mul_": fn[torch.mul],
        "flatten": _flatten_h, "view": _reshape, "reshape": _reshape, "chunk": _chunk_h, "split": _split_h,
        "narrow": _narrow_h, "size": _size_h, "dim": lambda name, x: _need(x, "dim").ndim,
        "contiguous": _contiguous, "transpose": _transpose,
        "relu": _act(L.ReLU), "relu_": _act(L.ReLU), "sigmoid": _act(L.Sigmoid), "sigmoid_": _act(L.Sigmoid),
        "tanh": _act(L.Tanh), "tanh_": _act(L.Tanh), "softmax": _softmax_h, "mean": _mean_h,
    }
    _FUNCS.update(fn)
    _METHODS.update(methods)
    return _FUNCS, _METHODS


def _scope(node):
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    last = list(stack.values())[-1]
    path = last[0] if isinstance(last, tuple) else str(last)
    return path


def _op_name(node):
    base = re.sub(r"_\d+$", "", node.name)
    scope = _scope(node)
    return f"{scope}.{base}" if scope else base


def _target_repr(node):
    t = node.target
    if node.op == "call_method":
        return f"method Tensor.{t}"
    torch = _torch()
    name = getattr(t, "__name__", None)
    for modname, mod in (("torch.nn.functional", torch.nn.functional), ("torch", torch), ("operator", operator)):
        if name and getattr(mod, name, None) is t:
            return f"function {modname}.{name}"
    mod = getattr(t, "__module__", None) or ""
    qual = getattr(t, "__qualname__", None) or name or repr(t)
    return f"function {mod + '.' if mod and mod != 'builtins' else ''}{qual}"


def _where(node):
    """' inside module 'act' (Mish)' from the fx node's module stack, with a hint to register it."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path, cls = list(stack.values())[-1]
    cname = getattr(cls, "__name__", str(cls))
    return (f" (inside module {path!r} of type {cname}; cc.register_torch_module({cname}, fn) can map that "
            f"module as a whole)")


def _input_shapes(input_shape):
    if isinstance(input_shape, int):
        return [(input_shape,)]
    shapes = list(input_shape)
    if shapes and all(isinstance(s, (tuple, list)) for s in shapes):
        return [tuple(s) for s in shapes]
    return [tuple(shapes)]


def from_torch(module, input_shape, batch_size=1, name=None):
    """Trace `module` (a torch.nn.Module) with torch.fx into a cc.Model.

    input_shape excludes the batch, e.g. (3, 224, 224); a list of shapes for several inputs.
    Row names are the torch module's qualified names (`layer1.0.conv1`); functional calls are named
    `<enclosing module>.<op>` (`layer1.0.add`). A module or function with no cnncore mapping raises a
    TypeError naming the fx node and its target (register custom modules with
    cc.register_torch_module); a call cnncore cannot express (a view that does not flatten, scalar
    arithmetic) raises a ValueError naming it.
    """
    torch = _torch()
    fx = torch.fx
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    shapes = _input_shapes(input_shape)
    root_fn = _lookup(module)
    if root_fn is not None:  # a mapped module on its own (nn.Conv2d(...)): one call, no tracing needed
        from .graph import _snake
        inputs = [Input(s, batch_size) for s in shapes]
        layer = root_fn(module)
        out = layer(*inputs, name=_snake(type(module).__name__))
        return Model(inputs, list(out) if isinstance(out, tuple) else out, name=name or type(module).__name__)

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            if _lookup(m) is not None:
                return True
            if isinstance(m, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
                return False
            return super().is_leaf_module(m, qualname)

    tracer = Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as e:  # fx cannot trace data-dependent control flow and the like
        raise TypeError(f"from_torch: torch.fx could not trace {type(module).__name__}: "
                        f"{type(e).__name__}: {e}") from e
    funcs, methods = _handlers()
    env, inputs, outputs = {}, [], None
    leaf_calls: dict = {}  # id(module) -> number of calls
    remaining = list(shapes)

    def fail(node, exc_type, why):
        what = _target_repr(node) if node.op in ("call_function", "call_method") else repr(node.target)
        return exc_type(f"from_torch: cannot map fx node {node.name!r} ({node.op} {what}): {why}")

    for node in graph.nodes:
        if node.op == "placeholder":
            if str(node.target).startswith("*"):
                ts = [Input(s, batch_size) for s in remaining]
                remaining = []
                inputs.extend(ts)
                env[node] = tuple(ts)
            elif remaining:
                t = Input(remaining.pop(0), batch_size)
                inputs.append(t)
                env[node] = t
            elif node.args:  # an argument with a default value
                env[node] = node.args[0]
            else:
                raise ValueError(f"from_torch: forward takes an input {node.target!r} beyond the "
                                 f"{len(shapes)} shape(s) given in input_shape")
            continue
        if node.op == "output":
            outputs = fx.node.map_arg(node.args[0], lambda n: env[n])
            continue
        if node.op == "get_attr":
            raise fail(node, TypeError, "forward reads a parameter or buffer directly (a functional call on "
                                        "module state); cnncore maps modules, not tensor constants")
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node.op == "call_module":
            sub = module.get_submodule(node.target)
            fn = _lookup(sub)
            if fn is None:
                raise TypeError(f"from_torch: fx node {node.name!r} calls module {node.target!r} of type "
                                f"{_qual(type(sub))}, which cnncore cannot map; register a mapping with "
                                f"cc.register_torch_module({type(sub).__name__}, fn)")
            if kwargs or not all(isinstance(a, Tensor) for a in args):
                raise fail(node, TypeError, f"module {type(sub).__name__} is called with non-tensor or keyword "
                                            f"arguments {args!r} {kwargs!r}")
            n_state = any(True for _ in sub.parameters()) or any(True for _ in sub.buffers())
            leaf_calls[id(sub)] = leaf_calls.get(id(sub), 0) + 1
            if n_state and leaf_calls[id(sub)] > 1:
                raise fail(node, ValueError, f"module {node.target!r} ({type(sub).__name__}) has parameters and is "
                                             f"called more than once; cnncore cannot express shared weights")
            try:
                layer = fn(sub)
            except (TypeError, ValueError) as e:
                raise fail(node, type(e) if type(e) in (TypeError, ValueError) else ValueError, str(e)) from e
            if not isinstance(layer, (Layer, Sequential, Model)):
                raise fail(node, TypeError, f"the mapping for {type(sub).__name__} returned {layer!r}, not a "
                                            f"cnncore layer, Sequential or Model")
            out = layer(*args, name=node.target)
            env[node] = out
            continue
        # call_function / call_method
        handler = funcs.get(node.target) if node.op == "call_function" else methods.get(node.target)
        if handler is None:
            if not _contains_tensor(args) and not _contains_tensor(kwargs):
                # arithmetic on sizes and other Python values: evaluate it
                try:
                    env[node] = (node.target(*args, **kwargs) if node.op == "call_function"
                                 else getattr(args[0], node.target)(*args[1:], **kwargs))
                    continue
                except Exception as e:
                    raise fail(node, ValueError, f"evaluating it on constants failed: {e}") from e
            raise fail(node, TypeError, "cnncore has no mapping for it" + _where(node))
        if node.op == "call_function" and handler in (_getitem, _getattr_h) and not _contains_tensor(args):
            env[node] = node.target(*args, **kwargs)
            continue
        try:
            first_id = next(_graph._ids)
            env[node] = handler(_op_name(node), *args, **kwargs)
            if not (node.op == "call_function" and node.target in _OPERATORS):
                _flag_functional(env[node], first_id, _call_flag(node))
        except _Unsupported as e:
            raise fail(node, ValueError, str(e)) from None
        except TypeError as e:
            if "argument" in str(e) and "ShapeError" not in type(e).__name__:
                raise fail(node, TypeError, f"unexpected arguments {args!r} {kwargs!r} ({e})") from e
            raise
    if remaining:
        raise ValueError(f"from_torch: input_shape gives {len(shapes)} shape(s) but forward takes "
                         f"{len(shapes) - len(remaining)} input(s)")
    outs = _leaves(outputs)
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"from_torch: forward must return a tensor or a tuple/list/dict of tensors computed "
                        f"from its input, got {outputs!r}")
    _attach_uncalled(module, tracer, leaf_calls, inputs)
    return Model(inputs, outs, name=name or type(module).__name__)


# `a + b`, `a += b`, `a * b`: operators are not function calls for the tools that patch torch.add
# and Tensor.add (ptflops, calflops, deepspeed count torch.add(a, b) and a.add(b), never a + b)
_OPERATORS = {operator.add, operator.iadd, operator.mul, operator.imul}


_PATCHED_FUNCTIONS = None  # ids of torch.nn.functional's callables, torch.add and torch.mul


def _call_flag(node):
    """The FLAGS bit of the rows a call makes: F_FUNCTIONAL (256) for the calls that tools patching
    functions see (torch.nn.functional.*, torch.add / torch.mul, Tensor.add / Tensor.mul), F_CALL
    (512) for any other call (torch.relu, x.relu(), x.mean, x.softmax), which those tools never see."""
    global _PATCHED_FUNCTIONS
    import torch
    if node.op == "call_method":
        return F_.F_FUNCTIONAL if node.target in ("add", "mul") else F_.F_CALL
    if _PATCHED_FUNCTIONS is None:
        _PATCHED_FUNCTIONS = {id(v) for v in vars(torch.nn.functional).values() if callable(v)}
        _PATCHED_FUNCTIONS |= {id(torch.add), id(torch.mul)}
    return F_.F_FUNCTIONAL if id(node.target) in _PATCHED_FUNCTIONS else F_.F_CALL


def _flag_functional(result, first_id, bit):
    """Flag (FLAGS bit 256 or 512, _call_flag) the rows one function call made: every call node
    created since first_id that result depends on (F.relu is one row; x.mean((2, 3)) a pool and a
    flatten). Conventions of tools that see modules and functions differently read the flag."""
    stack = [t for t in _leaves(result) if isinstance(t, Tensor)]
    while stack:
        node = stack.pop().node
        if node is not None and node._id > first_id and isinstance(node.module, Layer):
            if not node.module._row[F_.FLAGS] & (F_.F_FUNCTIONAL | F_.F_CALL):
                node.module._add_flags(bit)
                stack.extend(node.inputs)


def _leaves(v):
    if isinstance(v, (tuple, list)):
        return [x for item in v for x in _leaves(item)]
    if isinstance(v, dict):
        return [x for item in v.values() for x in _leaves(item)]
    return [v]


def _attach_uncalled(root, tracer, leaf_calls, inputs):
    """Modules forward never calls still hold parameters (torch counts them): give each a dead call."""
    if not inputs:
        return
    skip_under = []
    for qn, m in root.named_modules():
        if not qn or any(qn.startswith(p + ".") for p in skip_under):
            continue
        if not tracer.is_leaf_module(m, qn):
            continue
        skip_under.append(qn)
        if id(m) in leaf_calls:
            continue
        n_state = sum(p.numel() for p in m.parameters() if not _uninit_param(p)) + \
            sum(b.numel() for b in m.buffers() if not _uninit_param(b))
        if not n_state:
            continue
        fn = _lookup(m)
        layer = None
        if fn is not None:
            try:
                layer = fn(m)
            except (TypeError, ValueError):
                layer = None
        x = _dead_input(layer, inputs[0], qn) if isinstance(layer, Layer) else None
        if x is None:
            warnings.warn(f"from_torch: module {qn!r} ({type(m).__name__}) is never called in forward; its "
                          f"{n_state} parameter and buffer elements are not counted (no input shape can be "
                          f"made for it)", stacklevel=3)
            continue
        layer(x, name=qn)


def _uninit_param(p):
    torch = _torch()
    return isinstance(p, torch.nn.parameter.UninitializedTensorMixin)


def _dead_input(layer, x, qn):
    """A tensor that `layer` accepts, made from x by parameter-free rows (or None)."""
    nsp = x.ndim - 2
    if isinstance(layer, L._ConvNd):
        if not layer.in_channels or layer._d != nsp:
            return None
        if layer._transposed:
            spatial = tuple(2 * p + 1 for p in layer.padding)
        elif isinstance(layer.padding, str):
            spatial = tuple(max(1, d * (k - 1) + 1) for k, d in zip(layer.kernel_size, layer.dilation))
        else:
            spatial = tuple(max(1, d * (k - 1) + 1 - 2 * p)
                            for k, d, p in zip(layer.kernel_size, layer.dilation, layer.padding))
        return _make(x, layer.in_channels, spatial, qn)
    if isinstance(layer, L.Linear):
        return _make(x, layer.in_features, None, qn) if layer.in_features else None
    if isinstance(layer, L._BatchNorm):
        if not layer.num_features:
            return None
        d = {"BatchNorm1d": 0, "BatchNorm2d": 2, "BatchNorm3d": 3}.get(layer.type, -1)
        if d == 0:
            return _make(x, layer.num_features, None, qn)
        return _make(x, layer.num_features, (1,) * d, qn) if d == nsp else None
    if isinstance(layer, L.GroupNorm):
        return _make(x, layer.num_channels, None, qn)
    if isinstance(layer, L.PReLU):
        return _make(x, layer.num_parameters, None, qn)
    if isinstance(layer, L.LayerNorm):
        ns = layer.normalized_shape
        if len(ns) == 1:
            return _make(x, ns[0], None, qn)
        return _make(x, ns[0], ns[1:], qn) if len(ns) - 1 == nsp else None
    return None


def _make(x, channels, spatial, qn):
    nsp = x.ndim - 2
    t = x
    if spatial is None:  # (N, channels)
        if nsp:
            t = getattr(L, f"AdaptiveAvgPool{nsp}d")(1)(t, name=f"{qn}:input_pool")
            t = flatten(t, 1, -1, name=f"{qn}:input_flatten")
    else:
        if len(spatial) != nsp or not 1 <= nsp <= 3:
            return None
        t = getattr(L, f"AdaptiveAvgPool{nsp}d")(tuple(spatial))(t, name=f"{qn}:input_pool")
    c = t.shape[1]
    while c < channels:
        t = cat([t, t], 1, name=f"{qn}:input_cat")
        c *= 2
    if c > channels:
        t = _call(Slice(1, 0, channels), [t], f"{qn}:input_slice")
    return t


# =============================================================================================
# to_torch
def _layer_to_torch(layer, in_shapes=None):
    torch = _torch()
    nn = torch.nn
    tc = _torch_classes()
    t = layer.type
    x = in_shapes[0] if in_shapes else None
    if isinstance(layer, Add):
        return tc["Add"]()
    if isinstance(layer, Mul):
        return tc["Mul"]()
    if isinstance(layer, Cat):
        return tc["Cat"](layer.dim)
    if isinstance(layer, Slice):
        return tc["Slice"](layer.dim, layer.start, layer.length)
    if isinstance(layer, L._ConvNd):
        d, tr = layer._d, layer._transposed
        cin = layer.in_channels or (x[1] if x else 0)
        base = f"ConvTranspose{d}d" if tr else f"Conv{d}d"
        kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias, padding_mode=layer.padding_mode)
        if tr:
            kw["output_padding"] = layer.output_padding
        if cin:
            return getattr(nn, base)(cin, layer.out_channels, layer.kernel_size, **kw)
        return getattr(nn, "Lazy" + base)(layer.out_channels, layer.kernel_size, **kw)
    if isinstance(layer, L.Linear):
        fin = layer.in_features or (x[-1] if x else 0)
        return nn.Linear(fin, layer.out_features, layer.bias) if fin else nn.LazyLinear(layer.out_features, layer.bias)
    if isinstance(layer, L._BatchNorm):
        d = {"1": 1, "2": 2, "3": 3}[re.search(r"(\d)d$", t).group(1)]
        nf = layer.num_features or (x[1] if x else 0)
        kw = dict(affine=layer.affine, track_running_stats=layer.track_running_stats)
        if not layer.bias:
            kw["bias"] = False
        return getattr(nn, f"BatchNorm{d}d")(nf, **kw) if nf else getattr(nn, f"LazyBatchNorm{d}d")(**kw)
    if isinstance(layer, L.LayerNorm):
        return nn.LayerNorm(layer.normalized_shape, elementwise_affine=layer.elementwise_affine, bias=layer.bias)
    if isinstance(layer, L.GroupNorm):
        kw = {} if layer.bias else {"bias": False}
        return nn.GroupNorm(layer.num_groups, layer.num_channels, affine=layer.affine, **kw)
    if isinstance(layer, L.PReLU):
        return nn.PReLU(layer.num_parameters)
    if isinstance(layer, L.Softmax):
        return nn.Softmax(layer.dim)
    if isinstance(layer, L._Pool):
        d = layer._d
        if layer._max:
            return getattr(nn, f"MaxPool{d}d")(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                               ceil_mode=layer.ceil_mode)
        return getattr(nn, f"AvgPool{d}d")(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode)
    if isinstance(layer, L._AdaptivePool):
        size = layer.output_size
        return getattr(nn, t)(size[0] if len(size) == 1 else size)
    if isinstance(layer, L.Flatten):
        return nn.Flatten(layer.start_dim, layer.end_dim)
    if isinstance(layer, L.Dropout):
        return getattr(nn, t if hasattr(nn, t) else "Dropout")(layer.p)
    if isinstance(layer, L.Identity):
        return nn.Identity()
    if isinstance(layer, L.ZeroPad2d):
        return nn.ZeroPad2d(layer.padding)
    if isinstance(layer, L.Upsample):
        return nn.Upsample(layer.size, layer.scale_factor, layer.mode)
    if isinstance(layer, L.ChannelShuffle):
        return nn.ChannelShuffle(layer.groups)
    args = getattr(layer, "_args", None)
    if args is not None and hasattr(nn, t):  # activations: torch's own arguments
        return getattr(nn, t)(**args)
    raise TypeError(f"to_torch: no torch.nn equivalent for cnncore layer {t} ({layer!r})")


def _shapes_after(module, in_shapes):
    """Output shapes of `module` called on fresh inputs of in_shapes (the original graph is untouched)."""
    if not in_shapes or any(s is None or not 2 <= len(s) <= 5 for s in in_shapes):
        return None
    out = module(*[Input(s[1:], s[0]) for s in in_shapes])
    return [o.shape for o in (out if isinstance(out, tuple) else (out,))]


def _seq_to_torch(seq, in_shape=None):
    nn = _torch().nn
    mods = OrderedDict()
    shape = in_shape
    for key, child in seq.named_children():
        key = str(key).replace(".", "_") or "_"
        if isinstance(child, Sequential):
            mods[key] = _seq_to_torch(child, shape)
        elif isinstance(child, Model):
            mods[key] = _model_to_torch(child)
        else:
            mods[key] = _layer_to_torch(child, [shape] if shape else None)
        if shape is not None:
            outs = _shapes_after(child, [shape])
            shape = outs[0] if outs else None
    return nn.Sequential(mods)


class _Builder:
    def __init__(self, root, scope_cls):
        self.root, self.scope_cls = root, scope_cls
        self.steps, self.n_slots = [], 0

    def slot(self):
        self.n_slots += 1
        return self.n_slots - 1

    def place(self, path, mod):
        """Register mod at the dotted path (nested Scopes); fall back to a flat unique name."""
        parts = path.split(".")
        cur, ok = self.root, all(parts)
        if ok:
            for p in parts[:-1]:
                child = cur._modules.get(p)
                if child is None:
                    if hasattr(cur, p):
                        ok = False
                        break
                    child = self.scope_cls()
                    cur.add_module(p, child)
                elif not isinstance(child, self.scope_cls):
                    ok = False
                    break
                cur = child
        if ok and (parts[-1] in cur._modules or hasattr(cur, parts[-1])):
            ok = False
        if ok:
            cur.add_module(parts[-1], mod)
            return path
        flat = re.sub(r"\W", "_", path) or "layer"
        if flat[0].isdigit():
            flat = "_" + flat
        cand, k = flat, 1
        while cand in self.root._modules or hasattr(self.root, cand):
            cand, k = f"{flat}_{k}", k + 1
        self.root.add_module(cand, mod)
        return cand

    def expand(self, module, name, in_slots, in_shapes, live):
        """Register module's layers at their row names; return its output slots (and shapes)."""
        if isinstance(module, Layer):
            path = self.place(name or module.type.lower(), _layer_to_torch(module, in_shapes))
            out = self.slot()
            if live:
                self.steps.append((path, list(in_slots), out))
            shapes = _shapes_after(module, in_shapes) if in_shapes else None
            return [out], shapes
        if isinstance(module, Sequential):
            slots, shapes = in_slots, in_shapes
            for key, child in module.named_children():
                slots, shapes = self.expand(child, f"{name}.{key}" if name else str(key), slots[:1],
                                            shapes[:1] if shapes else None, live)
            return slots[:1], (shapes[:1] if shapes else None)
        if isinstance(module, Model):
            return self.expand_model(module, name, in_slots, in_shapes, live)
        raise TypeError(f"to_torch: cannot convert {type(module).__name__} {module!r}")

    def expand_model(self, model, name, in_slots, in_shapes, live):
        slots = {id(t): s for t, s in zip(model.inputs, in_slots)}
        shapes = {id(t): (in_shapes[i] if in_shapes else t.shape) for i, t in enumerate(model.inputs)}
        prefix = f"{name}." if name else ""
        for n in model._nodes:
            nm = prefix + model._names[id(n)]
            outs, oshapes = self.expand(n.module, nm, [slots[id(i)] for i in n.inputs],
                                        [shapes[id(i)] for i in n.inputs], live and id(n) in model._live)
            for k, o in enumerate(n.outputs):
                slots[id(o)] = outs[k] if k < len(outs) else outs[0]
                shapes[id(o)] = oshapes[k] if oshapes and k < len(oshapes) else o.shape
        return [slots[id(t)] for t in model.outputs], [shapes[id(t)] for t in model.outputs]


def _model_to_torch(model):
    tc = _torch_classes()
    net = tc["GraphNet"](len(model.inputs), [], [], getattr(model, "name", None))
    b = _Builder(net, tc["Scope"])
    ins = [b.slot() for _ in model.inputs]
    outs, _ = b.expand_model(model, "", ins, [t.shape for t in model.inputs], True)
    net._cc_steps = b.steps
    net._cc_outputs = outs
    return net


def to_torch(model, input_shape=None, batch_size=1):
    """The torch.nn.Module equivalent of a cnncore layer, Sequential or Model.

    A Sequential becomes an nn.Sequential with the same keys; a Model a `GraphNet` that runs the
    graph's calls in order, holding each layer at its row name (`layer1.0.conv1`), where a dotted
    name that clashes with another falls back to a flat name (`layer1_0_conv1`). Lazy layers get their
    input size from the graph (or from input_shape, batch excluded, for a Sequential); without one
    they become torch's Lazy* modules. Parameters are freshly initialised by torch.
    """
    _torch()
    if isinstance(model, Model):
        return _model_to_torch(model)
    shape = None
    if input_shape is not None:
        shape = (batch_size,) + ((input_shape,) if isinstance(input_shape, int) else tuple(input_shape))
    if isinstance(model, Sequential):
        return _seq_to_torch(model, shape)
    if isinstance(model, Layer):
        return _layer_to_torch(model, [shape] if shape else None)
    raise TypeError(f"to_torch: expected a cnncore layer, Sequential or Model, got {type(model).__name__}")
