"""Layers with torch.nn's names, positional order, keywords and defaults.

A layer only records its arguments and how they are written into one row of the packed format
(docs/format.md); all arithmetic happens in the core (or the reference). Lazy* variants write
IN = 0, which the core reads as "infer from the incoming shape".
"""
from __future__ import annotations

import struct

from . import _format as F

__all__ = [
    "Layer", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
    "LazyConvTranspose3d", "Linear", "LazyLinear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LayerNorm", "GroupNorm",
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
    "Hardsigmoid", "Softmax", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Flatten", "Identity", "Dropout", "Dropout1d",
    "Dropout2d", "Dropout3d", "AlphaDropout", "ZeroPad2d", "Upsample", "ChannelShuffle",
]

_INT32_MAX = 2**31 - 1


def _int(name, value, lo=None):
    if type(value) is int and -_INT32_MAX <= value <= _INT32_MAX and (lo is None or value >= lo):
        return value  # the common case, checked in one line (layers are built in hot loops)
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import operator
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int, got {value!r}") from None
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    if abs(value) > _INT32_MAX:
        raise ValueError(f"{name}={value} does not fit the packed format's int32 fields")
    return value


_SMALL_REPEATS = {n: [(v,) * n for v in range(64)] for n in (1, 2, 3, 4)}  # (v,) * n, made once: fewer objects per layer


def _tuple(name, value, n, lo=None):
    """torch's _single/_pair/_triple: an int is repeated, a sequence must have n entries."""
    if type(value) is int and -_INT32_MAX <= value <= _INT32_MAX and (lo is None or value >= lo):
        return _SMALL_REPEATS[n][value] if 0 <= value < 64 else (value,) * n
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(_int(name, v, lo) for v in value)
    return (_int(name, value, lo),) * n


class Layer:
    """Base class: one packed row. Subclasses set OP and write their columns into `self._row`, the
    layer's row with SRC 0 and NSRC 1 (a model fills in the references of each call)."""

    OP: int = -1
    n_inputs = 1
    type = "Layer"  # the class name, set for every subclass (read once per row when a model is packed)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            cls.type = cls.__name__

    def __init__(self):
        row = self._row = [0] * F.N_FIELDS
        row[F.OP] = self.OP
        row[F.NSRC] = 1

    def row(self) -> list[int]:
        """The layer's packed row with SRC left at 0 and NSRC at 1 (the model fills them): a copy."""
        return self._row[:]

    def _add_flags(self, bits: int):
        """Set FLAGS bits after construction (from_torch marks functional calls)."""
        self._row[F.FLAGS] |= bits

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        return f"{self.type}({self.extra_repr()})"

    # layer(tensor, ..., name=None) -> tensor: Layer.__call__ is defined in graph.py (functional graphs)

    # spatial helper: write a tuple into K/S/P/D/O columns
    def _put(self, first_col, values):
        self._row[first_col:first_col + len(values)] = values


# ---------------------------------------------------------------------------------------------
# Convolutions


def as_call(layer, patched=True):
    """Mark `layer` as a function call of the original forward, as cc.from_torch flags such calls:
    patched=True for torch.nn.functional.X (and torch.add/mul), False for other calls (x.mean, x.relu()).
    Conventions of tools that see modules and functions differently read the flag
    (docs/conventions.md). Returns the layer."""
    layer._add_flags(F.F_FUNCTIONAL if patched else F.F_CALL)
    return layer


class _ConvNd(Layer):
    _d = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0):
        super().__init__()
        d = self._d
        self.in_channels = _int("in_channels", in_channels, 0)
        self.out_channels = _int("out_channels", out_channels, 1)
        self.kernel_size = _tuple("kernel_size", kernel_size, d, 1)
        self.stride = _tuple("stride", stride, d, 1)
        self.dilation = _tuple("dilation", dilation, d, 1)
        self.groups = _int("groups", groups, 1)
        self.bias = bool(bias)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got {padding_mode!r}")
        self.padding_mode = padding_mode  # any mode pads to the same shape: counts do not change
        same = False
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                                 if not self._transposed else "ConvTranspose padding must be an int or a tuple")
            same = padding == "same"
            self.padding = padding
            pad = (0,) * d
        else:
            pad = self.padding = _tuple("padding", padding, d, 0)
        self.output_padding = _tuple("output_padding", output_padding, d, 0)
        row = self._row
        row[F.IN:F.FLAGS + 1] = (self.in_channels, self.out_channels, self.groups,
                                 (F.F_BIAS if self.bias else 0) | (F.F_SAME if same else 0))
        row[F.K0:F.K0 + d] = self.kernel_size
        row[F.S0:F.S0 + d] = self.stride
        row[F.P0:F.P0 + d] = pad
        row[F.D0:F.D0 + d] = self.dilation
        row[F.O0:F.O0 + d] = self.output_padding

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,) * self._d, "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._d:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.bias:
            s += ", bias=False"
        return s


def _conv(name, d, transposed):
    op = F.OPS[name]
    if transposed:
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                     output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros"):
            _ConvNd.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                             groups, bias, padding_mode, output_padding)
    else:
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                     groups=1, bias=True, padding_mode="zeros"):
            _ConvNd.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                             groups, bias, padding_mode)
    return type(name, (_ConvNd,), {"OP": op, "_d": d, "_transposed": transposed, "__init__": __init__,
                                    "__doc__": f"torch.nn.{name}", "__module__": __name__})


def _lazy_conv(name, base):
    if base._transposed:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                     groups=1, bias=True, dilation=1, padding_mode="zeros"):
            base.__init__(self, 0, out_channels, kernel_size, stride, padding, output_padding,
                          groups, bias, dilation, padding_mode)
    else:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, padding_mode="zeros"):
            base.__init__(self, 0, out_channels, kernel_size, stride, padding, dilation, groups,
                          bias, padding_mode)
    return type(name, (base,), {"__init__": __init__, "__doc__": f"torch.nn.{name}: in_channels inferred",
                                "__module__": __name__})


Conv1d = _conv("Conv1d", 1, False)
Conv2d = _conv("Conv2d", 2, False)
Conv3d = _conv("Conv3d", 3, False)
ConvTranspose1d = _conv("ConvTranspose1d", 1, True)
ConvTranspose2d = _conv("ConvTranspose2d", 2, True)
ConvTranspose3d = _conv("ConvTranspose3d", 3, True)
LazyConv1d = _lazy_conv("LazyConv1d", Conv1d)
LazyConv2d = _lazy_conv("LazyConv2d", Conv2d)
LazyConv3d = _lazy_conv("LazyConv3d", Conv3d)
LazyConvTranspose1d = _lazy_conv("LazyConvTranspose1d", ConvTranspose1d)
LazyConvTranspose2d = _lazy_conv("LazyConvTranspose2d", ConvTranspose2d)
LazyConvTranspose3d = _lazy_conv("LazyConvTranspose3d", ConvTranspose3d)


# ---------------------------------------------------------------------------------------------
class Linear(Layer):
    """torch.nn.Linear: applies to the last dimension."""
    OP = F.OPS["Linear"]

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = _int("in_features", in_features, 0)
        self.out_features = _int("out_features", out_features, 1)
        self.bias = bool(bias)
        row = self._row
        row[F.IN], row[F.OUT], row[F.FLAGS] = self.in_features, self.out_features, F.F_BIAS if self.bias else 0

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias}"


class LazyLinear(Linear):
    """torch.nn.LazyLinear: in_features inferred."""

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(0, out_features, bias)


class _BatchNorm(Layer):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = _int("num_features", num_features, 0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.bias = bool(bias)
        self._row[F.IN] = self.num_features
        self._row[F.FLAGS] = ((F.F_AFFINE if self.affine else 0) | (F.F_TRACK if self.track_running_stats else 0)
                              | (F.F_BIAS if self.bias else 0))

    def extra_repr(self):
        return f"{self.num_features}, affine={self.affine}, track_running_stats={self.track_running_stats}"


def _bn(name):
    return type(name, (_BatchNorm,), {"OP": F.OPS[name], "__doc__": f"torch.nn.{name}", "__module__": __name__})


def _lazy_bn(name, base):
    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        base.__init__(self, 0, eps, momentum, affine, track_running_stats, bias=bias)
    return type(name, (base,), {"__init__": __init__, "__doc__": f"torch.nn.{name}", "__module__": __name__})


BatchNorm1d = _bn("BatchNorm1d")
BatchNorm2d = _bn("BatchNorm2d")
BatchNorm3d = _bn("BatchNorm3d")
LazyBatchNorm1d = _lazy_bn("LazyBatchNorm1d", BatchNorm1d)
LazyBatchNorm2d = _lazy_bn("LazyBatchNorm2d", BatchNorm2d)
LazyBatchNorm3d = _lazy_bn("LazyBatchNorm3d", BatchNorm3d)


class LayerNorm(Layer):
    """torch.nn.LayerNorm over the trailing `normalized_shape` (1 to 3 dimensions)."""
    OP = F.OPS["LayerNorm"]

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"LayerNorm: normalized_shape must have 1 to 3 dimensions here, got {shape}")
        self.normalized_shape = tuple(_int("normalized_shape", s, 1) for s in shape)
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias)
        self._row[F.DIM0] = len(shape)
        self._row[F.FLAGS] = (F.F_AFFINE if self.elementwise_affine else 0) | (F.F_BIAS if self.bias else 0)
        self._put(F.K0, self.normalized_shape)

    def extra_repr(self):
        return f"{self.normalized_shape}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Layer):
    """torch.nn.GroupNorm."""
    OP = F.OPS["GroupNorm"]

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *,
                 bias=True):
        super().__init__()
        self.num_groups = _int("num_groups", num_groups, 1)
        self.num_channels = _int("num_channels", num_channels, 1)
        # torch's check, on plain ints; a search-space Choice (an int subclass) is checked per
        # candidate by the core instead (an invalid candidate, not a failed template)
        if type(self.num_channels) is int and type(self.num_groups) is int and self.num_channels % self.num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.affine = bool(affine)
        self.bias = bool(bias)
        row = self._row
        row[F.GROUPS], row[F.IN] = self.num_groups, self.num_channels
        row[F.FLAGS] = (F.F_AFFINE if self.affine else 0) | (F.F_BIAS if self.bias else 0)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, affine={self.affine}"


# ---------------------------------------------------------------------------------------------
# Activations, with torch's signatures (their arguments change no count).
def _act(name, params):
    """An activation class whose __init__ takes exactly torch's arguments, e.g. (("inplace", False),)."""
    names = [p for p, _ in params]
    defaults = dict(params)
    allowed = frozenset(names)

    def __init__(self, *args, **kwargs):
        Layer.__init__(self)
        if not (args or kwargs):  # the usual call: torch's defaults (read only, shared)
            self._args = defaults
            return
        if len(args) > len(names):
            raise TypeError(f"{name}() takes at most {len(names)} arguments ({len(args)} given)")
        if kwargs and (not allowed.issuperset(kwargs) or args and not set(names[:len(args)]).isdisjoint(kwargs)):
            bad = set(kwargs) - allowed | set(names[:len(args)]) & set(kwargs)
            raise TypeError(f"{name}() got an unexpected or repeated keyword argument {sorted(bad)[0]!r}")
        self._args = {**defaults, **dict(zip(names, args)), **kwargs} if args else {**defaults, **kwargs}

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self._args.items() if v != defaults[k])

    return type(name, (Layer,), {"OP": F.OPS[name], "__init__": __init__, "extra_repr": extra_repr,
                                 "__doc__": f"torch.nn.{name}({', '.join(f'{k}={v!r}' for k, v in params)})",
                                 "__module__": __name__})


_INPLACE = (("inplace", False),)
ReLU, ReLU6, SiLU, Hardswish, Hardsigmoid = (_act(n, _INPLACE) for n in ("ReLU", "ReLU6", "SiLU", "Hardswish", "Hardsigmoid"))
LeakyReLU = _act("LeakyReLU", (("negative_slope", 0.01), ("inplace", False)))
ELU = _act("ELU", (("alpha", 1.0), ("inplace", False)))
GELU = _act("GELU", (("approximate", "none"),))
Sigmoid, Tanh = _act("Sigmoid", ()), _act("Tanh", ())


class PReLU(Layer):
    """torch.nn.PReLU(num_parameters=1): one slope per channel (or one shared)."""
    OP = F.OPS["PReLU"]

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = _int("num_parameters", num_parameters, 1)
        self._row[F.IN] = self.num_parameters

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softmax(Layer):
    """torch.nn.Softmax(dim=None); dim=None follows torch's legacy implicit rule."""
    OP = F.OPS["Softmax"]

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim
        if dim is None:
            self._row[F.FLAGS] = F.F_IMPLICIT_DIM
        else:
            self._row[F.DIM0] = _int("dim", dim)

    def extra_repr(self):
        return f"dim={self.dim}"


# ---------------------------------------------------------------------------------------------
# Pooling
class _Pool(Layer):
    _d = 2
    _max = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        d = self._d
        self.kernel_size = _tuple("kernel_size", kernel_size, d, 1)
        self.stride = self.kernel_size if stride is None or stride == [] else _tuple("stride", stride, d, 1)
        self.padding = _tuple("padding", padding, d, 0)
        self.dilation = _tuple("dilation", dilation, d, 1)
        self.ceil_mode = bool(ceil_mode)
        self._row[F.FLAGS] = F.F_CEIL if self.ceil_mode else 0
        self._put(F.K0, self.kernel_size)
        self._put(F.S0, self.stride)
        self._put(F.P0, self.padding)
        self._put(F.D0, self.dilation)

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self._max:
            s += f", dilation={self.dilation}"
        return s + f", ceil_mode={self.ceil_mode}"


def _maxpool(name, d):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        _Pool.__init__(self, kernel_size, stride, padding, dilation, ceil_mode)
    return type(name, (_Pool,), {"OP": F.OPS[name], "_d": d, "__init__": __init__,
                                 "__doc__": f"torch.nn.{name}", "__module__": __name__})


def _avgpool(name, d):
    if d == 1:  # torch's AvgPool1d has no divisor_override
        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
            _Pool.__init__(self, kernel_size, stride, padding, 1, ceil_mode)
    else:
        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None):
            _Pool.__init__(self, kernel_size, stride, padding, 1, ceil_mode)
    return type(name, (_Pool,), {"OP": F.OPS[name], "_d": d, "_max": False, "__init__": __init__,
                                 "__doc__": f"torch.nn.{name}", "__module__": __name__})


MaxPool1d, MaxPool2d, MaxPool3d = (_maxpool(f"MaxPool{d}d", d) for d in (1, 2, 3))
AvgPool1d, AvgPool2d, AvgPool3d = (_avgpool(f"AvgPool{d}d", d) for d in (1, 2, 3))


class _AdaptivePool(Layer):
    _d = 2

    def __init__(self, output_size):
        super().__init__()
        d = self._d
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * d
        if len(sizes) != d:
            raise ValueError(f"output_size must be an int or a tuple of {d}, got {output_size!r}")
        self.output_size = tuple(None if s is None else _int("output_size", s, 1) for s in sizes)
        self._put(F.K0, [0 if s is None else s for s in self.output_size])

    def extra_repr(self):
        return f"output_size={self.output_size}"


def _adaptive_max_init(self, output_size, return_indices=False):
    _AdaptivePool.__init__(self, output_size)


AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d = (
    type(f"Adaptive{kind}Pool{d}d", (_AdaptivePool,),
         {"OP": F.OPS[f"Adaptive{kind}Pool{d}d"], "_d": d, "__doc__": f"torch.nn.Adaptive{kind}Pool{d}d",
          "__module__": __name__, **({"__init__": _adaptive_max_init} if kind == "Max" else {})})
    for kind in ("Avg", "Max") for d in (1, 2, 3))


# ---------------------------------------------------------------------------------------------
# Shape and glue
class Flatten(Layer):
    """torch.nn.Flatten(start_dim=1, end_dim=-1): dims counted as torch counts them, batch included."""
    OP = F.OPS["Flatten"]

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _int("start_dim", start_dim)
        self.end_dim = _int("end_dim", end_dim)
        self._row[F.DIM0], self._row[F.DIM1] = self.start_dim, self.end_dim

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Layer):
    """torch.nn.Identity (arguments are ignored, as in torch)."""
    OP = F.OPS["Identity"]

    def __init__(self, *args, **kwargs):
        super().__init__()


class Dropout(Identity):
    """torch.nn.Dropout: the identity at inference."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def extra_repr(self):
        return f"p={self.p}"


Dropout2d, Dropout3d, AlphaDropout = (
    type(n, (Dropout,), {"__doc__": f"torch.nn.{n}", "__module__": __name__})
    for n in ("Dropout2d", "Dropout3d", "AlphaDropout"))


class Dropout1d(Dropout):
    """torch.nn.Dropout1d: the identity at inference, but torch still wants a 2-d or 3-d input."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__(p, inplace)
        self._row[F.DIM0], self._row[F.DIM1] = 2, 3


class ZeroPad2d(Layer):
    """torch.nn.ZeroPad2d(padding): an int or (left, right, top, bottom); negative values crop."""
    OP = F.OPS["ZeroPad2d"]

    def __init__(self, padding):
        super().__init__()
        self.padding = _tuple("padding", padding, 4)
        left, right, top, bottom = self.padding
        row = self._row
        row[F.P0], row[F.P1], row[F.P2], row[F.D0] = left, right, top, bottom

    def extra_repr(self):
        return f"{self.padding}"


class Upsample(Layer):
    """torch.nn.Upsample(size=None, scale_factor=None, mode='nearest').

    A scale factor is stored as its float64 bits (two int32 fields), so the output size is
    floor(in * scale) computed in float64, exactly as torch computes it.
    """
    OP = F.OPS["Upsample"]

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in F.UPSAMPLE_MODES:
            raise ValueError(f"Upsample: unknown mode {mode!r}; expected one of {sorted(F.UPSAMPLE_MODES)}")
        if (size is None) == (scale_factor is None):
            raise ValueError("either size or scale_factor should be defined (not both)")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self._row[F.DIM0] = F.UPSAMPLE_MODES[mode]
        given = size if size is not None else scale_factor
        self._row[F.DIM1] = len(given) if isinstance(given, (tuple, list)) else 0
        if isinstance(given, (tuple, list)) and not 1 <= len(given) <= 3:
            raise ValueError(f"Upsample: expected 1 to 3 sizes or scale factors, got {given!r}")
        if size is not None:
            sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * 3
            self._put(F.K0, [_int("size", s, 1) for s in sizes])
        else:
            scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 3
            for i, sc in enumerate(scales):
                if isinstance(sc, (bool, str)) or not isinstance(sc, (int, float)):
                    raise TypeError(f"scale_factor must be a number or a tuple of numbers, got {sc!r}")
                sc = float(sc)
                if not 0 < sc < 1e300:
                    raise ValueError(f"scale_factor must be a positive finite number, got {sc}")
                low, high = struct.unpack("<ii", struct.pack("<d", sc))  # the float64's bits
                self._row[F.S0 + i] = low
                self._row[F.D0 + i] = high

    def extra_repr(self):
        return f"size={self.size}, scale_factor={self.scale_factor}, mode={self.mode!r}"


class ChannelShuffle(Layer):
    """torch.nn.ChannelShuffle(groups)."""
    OP = F.OPS["ChannelShuffle"]

    def __init__(self, groups):
        super().__init__()
        self.groups = _int("groups", groups, 1)
        self._row[F.GROUPS] = self.groups

    def extra_repr(self):
        return f"groups={self.groups}"
