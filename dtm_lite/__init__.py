"""dtm_lite: Denoising Thermodynamic Models (chained Ising EBMs) in JAX.

Where things are: the sampler is :mod:`dtm_lite.sampler`, the model :mod:`dtm_lite.dtm`, the
streaming loader :mod:`dtm_lite.loader`, the LunarLander source :mod:`dtm_lite.lunarlander`, labels and a
world model's conditioning inputs :mod:`dtm_lite.conditioning`, the training loop :mod:`dtm_lite.training`.
"""

from .capacity import CapacityError, check_capacity, required_side, smallest_preset, visible_capacity
from .dtm import DTM, DTMConfig, DTMState
from .encoding import Encoding, Palette, decode, encode
from .graph import PRESETS, GridGraph
from .loader import IteratorDataLoader, TransitionLoader
from .lunarlander import LunarLanderFrames, transitions
from .sampler import gibbs_sample
from .training import EmptyEpochError, EvalSettings, TrainingRun, train_from_iterator

__all__ = [
    "DTM",
    "PRESETS",
    "CapacityError",
    "DTMConfig",
    "DTMState",
    "EmptyEpochError",
    "Encoding",
    "EvalSettings",
    "GridGraph",
    "IteratorDataLoader",
    "LunarLanderFrames",
    "Palette",
    "TrainingRun",
    "TransitionLoader",
    "check_capacity",
    "decode",
    "encode",
    "gibbs_sample",
    "required_side",
    "smallest_preset",
    "train_from_iterator",
    "transitions",
    "visible_capacity",
]
__version__ = "0.1.0"
