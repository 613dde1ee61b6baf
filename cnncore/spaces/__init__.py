"""Search spaces: NAS benchmarks' architectures as cnncore models and as packed arrays written
directly with numpy (no Python object per candidate).

- ``NB201(dataset)``: NAS-Bench-201's 15,625 cells (``nb201_flops``: its FLOPs convention).
- ``NATSSize(dataset)``: NATS-Bench's size space, 32,768 channel configurations.
- ``NB101`` / ``nb101_model(matrix, ops)``: NAS-Bench-101's network of a cell (``nb101_hash``: its key).
- ``darts_model(genotype, dataset)``: DARTS' CIFAR / ImageNet networks (``DARTS_V1``, ``DARTS_V2``).
- ``from_ofa_config(net_config, image_size)``: a Once-for-All / ProxylessNAS ``net.config`` as a Model.
- ``OFAMobileNetV3()``, ``OFAProxylessNAS()``: Once-for-All's sampling spaces (kernel, expand, depth,
  resolution choices; candidates are structured numpy arrays).
- ``TemplateSpace(build, **choices)`` with ``Choice``, ``derive``, ``Optional``, ``OneOf``: your own
  space, a model whose layer arguments are choices.
"""
from .darts import DARTS_V1, DARTS_V2, Genotype, darts_model
from .nats import NATSSize
from .nb101 import NB101, nb101_hash, nb101_model
from .nb201 import NB201, nb201_flops
from .ofa import from_ofa_config
from .ofa_spaces import OFAMobileNetV3, OFAProxylessNAS
from ._template import Choice, OneOf, Optional, TemplateSpace, derive

__all__ = ["NB201", "nb201_flops", "NATSSize", "NB101", "nb101_model", "nb101_hash", "darts_model",
           "Genotype", "DARTS_V1", "DARTS_V2", "from_ofa_config",
           "OFAMobileNetV3", "OFAProxylessNAS", "TemplateSpace", "Choice", "derive", "Optional", "OneOf"]
