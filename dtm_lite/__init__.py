"""dtm_lite: Denoising Thermodynamic Models (chained Ising EBMs) in JAX.

Where things are: the sampler is :mod:`dtm_lite.sampler`, the model :mod:`dtm_lite.dtm`, the
streaming loader :mod:`dtm_lite.loader`, the LunarLander source :mod:`dtm_lite.lunarlander`.
"""

from .capacity import CapacityError, check_capacity, required_side, smallest_preset, visible_capacity
from .dtm import DTM, DTMConfig
from .encoding import Encoding, Palette, decode, encode
from .graph import PRESETS, GridGraph
from .loader import IteratorDataLoader
from .lunarlander import LunarLanderFrames
from .sampler import gibbs_sample
from .training import EmptyEpochError, EvalSettings, train_from_iterator

__all__ = [
    "DTM",
    "PRESETS",
    "CapacityError",
    "DTMConfig",
    "EmptyEpochError",
    "Encoding",
    "EvalSettings",
    "GridGraph",
    "IteratorDataLoader",
    "LunarLanderFrames",
    "Palette",
    "check_capacity",
    "decode",
    "encode",
    "gibbs_sample",
    "required_side",
    "smallest_preset",
    "train_from_iterator",
    "visible_capacity",
]
__version__ = "0.1.0"
