"""dtm_lite: Denoising Thermodynamic Models (chained Ising EBMs) in JAX.

Where things are: the sampler is :mod:`dtm_lite.core.sampler`, the model :mod:`dtm_lite.model`, the
streaming loader :mod:`dtm_lite.data.loader`, the LunarLander source :mod:`dtm_lite.data.lunarlander`, labels and a
world model's conditioning inputs :mod:`dtm_lite.conditioning.inputs`, the training loop :mod:`dtm_lite.training.loop`.
"""

from dtm_lite.core.capacity import CapacityError, check_capacity, required_side, smallest_preset, visible_capacity
from dtm_lite.core.encoding import Encoding, Palette, decode, encode
from dtm_lite.core.graph import PRESETS, GridGraph
from dtm_lite.data.loader import IteratorDataLoader, TransitionLoader
from dtm_lite.data.lunarlander import LunarLanderFrames, transitions
from dtm_lite.ising import gibbs_sample
from dtm_lite.model import DTM, DTMConfig, DTMState
from dtm_lite.training.loop import EmptyEpochError, EvalSettings, TrainingRun, train_from_iterator
from dtm_lite.version import __version__

__all__ = [
    "__version__",
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
