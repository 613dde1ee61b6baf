"""ShapeError and the sentences that explain an error code in words a PyTorch user recognises."""
from __future__ import annotations

from . import _format as F


class ShapeError(ValueError):
    """An architecture PyTorch would reject. `.layer_index`, `.layer_name`, `.code` say where and why."""

    def __init__(self, message, layer_index=-1, layer_name=None, code=0):
        super().__init__(message)
        self.layer_index = layer_index
        self.layer_name = layer_name
        self.code = code


def _shape(s):
    return "(" + ", ".join(str(int(v)) for v in s) + ")"


def _spatial(row, first, d):
    return tuple(int(row[first + i]) for i in range(d))


def describe(code, row, x, layer_type):
    """The reason for error `code` at a layer with packed `row` whose (first) input has shape `x`
    (a tuple, or None when unknown). Pure formatting: no counting happens here."""
    name, generic = F.ERRORS.get(int(code), ("UNKNOWN", "unknown error"))
    op = int(row[F.OP])
    opname = F.OP_NAMES.get(op, f"op {op}")
    d = 3 if opname.endswith("3d") else 2 if opname.endswith("2d") else 1
    xs = _shape(x) if x is not None else "?"
    if name == "IN_CHANNELS":
        if opname == "Linear":
            return (f"mat1 and mat2 shapes cannot be multiplied: the input's last dimension is {x[-1]}, "
                    f"but in_features={row[F.IN]} (input shape {xs})")
        what = {"PReLU": "num_parameters", "GroupNorm": "num_channels"}.get(
            opname, "num_features" if opname.startswith("BatchNorm") else "in_channels")
        return (f"expected input {xs} to have {row[F.IN]} channels ({what}={row[F.IN]}), "
                f"but got {x[1]} channels instead")
    if name == "GROUPS":
        inn = row[F.IN] or (x[1] if x is not None else "?")
        return (f"in_channels ({inn}) and out_channels ({row[F.OUT]}) must both be divisible by "
                f"groups ({row[F.GROUPS]})")
    if name == "NDIM":
        return f"{opname} got an input with {len(x)} dimensions {xs} (batch included), which it does not accept"
    if name == "KERNEL_TOO_LARGE":
        return (f"Kernel size can't be greater than actual input size: input {xs} "
                f"with kernel_size={_spatial(row, F.K0, d)}, padding={_spatial(row, F.P0, d)}, "
                f"dilation={_spatial(row, F.D0, d)}")
    if name == "OUTPUT_SIZE":
        return f"Calculated output size is too small (< 1) for input {xs}"
    if name == "POOL_PADDING":
        return (f"pad should be at most half of kernel size, but got padding={_spatial(row, F.P0, d)} "
                f"and kernel_size={_spatial(row, F.K0, d)}")
    if name == "SAME_STRIDE":
        return f"padding='same' is not supported for strided convolutions (stride={_spatial(row, F.S0, d)})"
    if name == "OUTPUT_PADDING":
        return (f"output padding must be smaller than either stride or dilation, but got "
                f"output_padding={_spatial(row, F.O0, d)}, stride={_spatial(row, F.S0, d)}, "
                f"dilation={_spatial(row, F.D0, d)}")
    if name == "NORM_SHAPE":
        shape = _spatial(row, F.K0, max(1, min(3, int(row[F.DIM0]))))
        return f"Given normalized_shape={list(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], but got input of size {xs}"
    if name == "NORM_GROUPS":
        return f"num_channels ({row[F.IN]}) must be divisible by num_groups ({row[F.GROUPS]})"
    if name == "DIM_RANGE":
        return f"Dimension out of range for input {xs} (dim={row[F.DIM0]}" + (
            f", end_dim={row[F.DIM1]})" if opname == "Flatten" else ")")
    if name == "FLATTEN_ORDER":
        return f"flatten() has invalid args: start_dim ({row[F.DIM0]}) cannot come after end_dim ({row[F.DIM1]})"
    if name == "OVERFLOW":
        return (f"the output is too large to count: a dimension above 2**31-1 or a count above "
                f"int64 (input shape {xs})")
    if name == "SHUFFLE_GROUPS":
        return f"Number of channels must be divisible by groups: {x[1]} channels, groups={row[F.GROUPS]}"
    return f"{generic} (input shape {xs})"


def layer_message(index, name, layer_type, code, row, x, extra=""):
    label = f"layer {index}" + (f" ({name!r}, {layer_type})" if name is not None else f" ({layer_type})")
    return f"{label}: {describe(code, row, x, layer_type)}{extra}"
