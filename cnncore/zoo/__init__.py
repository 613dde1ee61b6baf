"""Classic CNNs transcribed from their papers and torchvision, one builder per torchvision
classification builder, same names and width/depth arguments, at the input resolution of
torchvision's published weights. Each returns a cc.Model (its Input carries that resolution)."""
from . import classic, mobile
from .classic import *  # noqa: F401,F403
from .mobile import *  # noqa: F401,F403

__all__ = [*classic.__all__, *mobile.__all__]
