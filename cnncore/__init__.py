"""cnncore: parameters, MACs, FLOPs, shapes and memory of CNNs, without a framework.

Layers carry torch.nn's names and arguments; `count` answers for one model or for a packed batch of
millions (the compiled core), `reference.count` gives the same answers in pure Python.
"""
from . import _core
from . import conventions
from .conventions import Convention
from .counting import BatchResult, LayerRow, Result, count, explain, summary
from .errors import ShapeError
from .layers import *  # noqa: F401,F403  (torch.nn names)
from .layers import __all__ as _layer_names
from .graph import Input, Model, Tensor, add, cat, chunk, flatten, mul, split
from .model import Sequential
from .packing import Packed, pack
from .columnar import Columnar
from . import reference, zoo
from .torch_bridge import from_torch, register_torch_module, to_torch
from . import spaces
from .sweep import SweepResult, sweep

openmp_enabled = _core.openmp_enabled

__version__ = "0.1.0"
__all__ = ["count", "summary", "explain", "Convention", "conventions", "pack", "Packed", "Columnar", "Result", "BatchResult", "LayerRow",
           "ShapeError", "Sequential", "Input", "Model", "Tensor", "add", "mul", "cat", "split", "chunk",
           "flatten", "openmp_enabled", "from_torch", "to_torch", "register_torch_module", "spaces", "sweep", "SweepResult", *_layer_names]
