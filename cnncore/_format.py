"""The packed format's vocabulary: op codes, column indices, flag bits and error codes.

This module is data only (no counting formulas): the Cython core (src/_core.pyx) mirrors these
numbers in its own enums, the reference reads them from here, and tests/test_format.py checks
that both agree. docs/format.md is the prose description of the same format.
"""

N_FIELDS = 25  # int32 columns per layer row
MAX_NDIM = 5  # batch + up to 4 more dimensions
MAX_SPATIAL = 3

# ---- columns of the `layers` array ------------------------------------------------------------
OP = 0  # op code (OPS below)
SRC = 1  # first input: layer index inside the architecture (< own index), or -1-j for input j
NSRC = 2  # number of inputs; inputs 2.. are extra_src[XOFF : XOFF + NSRC - 1]
XOFF = 3  # offset into extra_src (ignored when NSRC == 1)
IN = 4  # in_channels / in_features / num_features / num_channels / num_parameters; 0 = lazy
OUT = 5  # out_channels / out_features
GROUPS = 6  # conv groups, GroupNorm num_groups, ChannelShuffle groups
FLAGS = 7  # bit set of F_* below
DIM0 = 8  # softmax/cat/slice dim, flatten start_dim, LayerNorm len(normalized_shape), Upsample mode, Identity min ndim
DIM1 = 9  # flatten end_dim, Upsample entries given, Identity max ndim
K0, K1, K2 = 10, 11, 12  # kernel size / adaptive output size / Upsample size / LayerNorm shape / slice start,len
S0, S1, S2 = 13, 14, 15  # stride / Upsample scale: low 32 bits of the float64
P0, P1, P2 = 16, 17, 18  # padding / ZeroPad2d left, right, top
D0, D1, D2 = 19, 20, 21  # dilation / Upsample scale: high 32 bits of the float64 / ZeroPad2d bottom (D0)
O0, O1, O2 = 22, 23, 24  # output_padding (transposed convolutions)

FIELD_NAMES = (
    "op", "src", "nsrc", "xoff", "in", "out", "groups", "flags", "dim0", "dim1",
    "k0", "k1", "k2", "s0", "s1", "s2", "p0", "p1", "p2", "d0", "d1", "d2", "o0", "o1", "o2",
)

# ---- flag bits (FLAGS column) -------------------------------------------------------------------
F_BIAS = 1  # conv / linear / LayerNorm bias
F_AFFINE = 2  # BatchNorm affine, GroupNorm affine, LayerNorm elementwise_affine
F_TRACK = 4  # BatchNorm track_running_stats
F_CEIL = 8  # pooling ceil_mode
F_SAME = 16  # convolution padding='same'
F_IMPLICIT_DIM = 32  # Softmax(dim=None): torch's legacy implicit dim
F_UNUSED = 64  # the layer exists but no output depends on it: params/buffers only (no MACs, FLOPs, activations)
F_OUTPUT = 128  # the layer's output is a model output (kept to the end); the last such row is "the" output
F_FUNCTIONAL = 256  # the row came from a call of torch.nn.functional or torch.add/mul (Tensor.add/mul),
# not an nn.Module: only conventions of other tools read it (some count such a call and a module differently)
F_CALL = 512  # the row came from another function or method call (torch.relu, x.relu(), x.mean, x.softmax),
# which tools that patch torch.nn.functional never see; read only by conventions
FLAG_MASK = 1023

# ---- op codes -----------------------------------------------------------------------------------
OPS = {
    "Identity": 0,
    "Conv1d": 1, "Conv2d": 2, "Conv3d": 3,
    "ConvTranspose1d": 4, "ConvTranspose2d": 5, "ConvTranspose3d": 6,
    "Linear": 7,
    "BatchNorm1d": 8, "BatchNorm2d": 9, "BatchNorm3d": 10,
    "LayerNorm": 11, "GroupNorm": 12,
    "ReLU": 13, "ReLU6": 14, "LeakyReLU": 15, "PReLU": 16, "ELU": 17, "GELU": 18, "SiLU": 19,
    "Sigmoid": 20, "Tanh": 21, "Hardswish": 22, "Hardsigmoid": 23, "Softmax": 24,
    "MaxPool1d": 25, "MaxPool2d": 26, "MaxPool3d": 27,
    "AvgPool1d": 28, "AvgPool2d": 29, "AvgPool3d": 30,
    "AdaptiveAvgPool1d": 31, "AdaptiveAvgPool2d": 32, "AdaptiveAvgPool3d": 33,
    "AdaptiveMaxPool1d": 34, "AdaptiveMaxPool2d": 35, "AdaptiveMaxPool3d": 36,
    "Flatten": 37, "ZeroPad2d": 38, "Upsample": 39, "ChannelShuffle": 40,
    "Add": 41, "Mul": 42, "Cat": 43, "Slice": 44,
}
N_OPS = 45
OP_NAMES = {v: k for k, v in OPS.items()}

# Upsample modes (DIM0 of an Upsample row)
UPSAMPLE_MODES = {"nearest": 0, "linear": 1, "bilinear": 2, "bicubic": 3, "trilinear": 4}

# ---- error codes (BatchResult.error) ------------------------------------------------------------
ERRORS = {
    0: ("OK", "valid"),
    1: ("UNKNOWN_OP", "unknown op code"),
    2: ("BAD_INPUT_REF", "an input refers to this layer, a later layer or a missing network input"),
    3: ("BAD_FIELD", "a field is out of its range (size, stride or dilation < 1, negative padding or channels...)"),
    4: ("NDIM", "the input has the wrong number of dimensions for this layer"),
    5: ("IN_CHANNELS", "the declared input size differs from the incoming tensor"),
    6: ("GROUPS", "groups must divide in_channels and out_channels"),
    7: ("OUTPUT_SIZE", "the computed output size is too small (< 1)"),
    8: ("KERNEL_TOO_LARGE", "the kernel is larger than the padded input"),
    9: ("POOL_PADDING", "pad should be at most half of the kernel size"),
    10: ("SAME_STRIDE", "padding='same' is not supported for strided convolutions"),
    11: ("OUTPUT_PADDING", "output padding must be smaller than either stride or dilation"),
    12: ("NORM_SHAPE", "normalized_shape does not match the trailing dimensions of the input"),
    13: ("NORM_GROUPS", "the number of channels must be divisible by num_groups"),
    14: ("DIM_RANGE", "dimension out of range"),
    15: ("BROADCAST", "the shapes cannot be broadcast together"),
    16: ("CAT_SHAPE", "sizes of tensors must match except in the concatenated dimension"),
    17: ("SHUFFLE_GROUPS", "the number of channels must be divisible by groups"),
    18: ("UPSAMPLE", "Upsample needs exactly one of size and scale_factor, matching the input's spatial dimensions and mode"),
    19: ("OVERFLOW", "a count overflows int64"),
    20: ("FLATTEN_ORDER", "flatten() start_dim cannot come after end_dim"),
    21: ("SLICE_RANGE", "the split/chunk piece lies outside the input"),
    22: ("SINGLE_VALUE", "Expected more than 1 value per channel when training (batch statistics over a single value)"),
}
ERROR_CODES = {name: code for code, (name, _) in ERRORS.items()}
