"""dtm_lite: Denoising Thermodynamic Models (chained Ising EBMs) in JAX.

Where things are: the sampler is :mod:`dtm_lite.sampler`, the model :mod:`dtm_lite.dtm`, the
streaming loader :mod:`dtm_lite.loader`, the LunarLander source :mod:`dtm_lite.lunarlander`.
"""

from .capacity import CapacityError, check_capacity, required_side, smallest_preset, visible_capacity
from .dtm import DTM, DTMConfig
from .encoding import Palette, decode, encode
from .graph import PRESETS, GridGraph
from .sampler import gibbs_sample

__all__ = [
    "DTM",
    "PRESETS",
    "CapacityError",
    "DTMConfig",
    "GridGraph",
    "Palette",
    "check_capacity",
    "decode",
    "encode",
    "gibbs_sample",
    "required_side",
    "smallest_preset",
    "visible_capacity",
]
__version__ = "0.1.0"
