"""Search spaces: NAS benchmarks' architectures as cnncore models and as packed arrays written
directly with numpy (no Python object per candidate).

- ``NB201(dataset)``: NAS-Bench-201's 15,625 cells (``nb201_flops``: its FLOPs convention).
- ``from_ofa_config(net_config, image_size)``: a Once-for-All / ProxylessNAS ``net.config`` as a Model.
"""
from .nb201 import NB201, nb201_flops
from .ofa import from_ofa_config

__all__ = ["NB201", "nb201_flops", "from_ofa_config"]
