"""The settings of the LunarLander runs, in one place: the model, the run and its data stream, the evaluation,
and what ``python -m dtm_lite train --condition`` trains on.

- The model: :func:`model_config` (the model of ``python -m dtm_lite train``, ``make train`` and the shipped
  ``DTM.pretrained("lunarlander")``) and :func:`quick_model_config` (``--quick``, ``DTM_LITE_QUICK=1``): the
  ``DTMConfig`` defaults (the public LunarLander replication of Jelinčič et al., arXiv 2510.23972: 32x32 RGB
  on 80_12, batch 50) with LunarLander's four colours as a palette (:data:`LUNARLANDER_COLORS`, 2 bits a
  pixel), ``"planes"`` placement and a layout model of the lander (``layout_color`` :data:`LANDER_COLOR`).
- The run and its stream: :data:`STREAM_SETTINGS` (epochs, batches, the episodes each epoch plays, the
  hold-out) with their smallest values :data:`STREAM_MINIMUMS`; the streams themselves are
  :func:`dtm_lite.data.lunarlander.training_stream` and :func:`~dtm_lite.data.lunarlander.holdout_frames`.
- The evaluation: :func:`eval_settings`, the object metric on the lander (``LANDER``).
- All of it as the command's one flat dict: :func:`default_settings` (the DTMConfig fields, the stream
  settings and ``quick``), and :func:`config_from_settings` its ``DTMConfig``.
- The conditions: a labelled model on the ``"zone"`` label (:data:`LABEL_KIND`, :data:`N_ZONES` classes, its
  label acting through the layout prior: :data:`LABEL_LAYOUT`), a world model on the 4 actions
  (:data:`N_ACTIONS`), with a layout configured as :data:`WORLD_LAYOUT`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dtm_lite.core.config import DTMConfig
from dtm_lite.core.encoding import Palette
from dtm_lite.data.lunarlander import N_ACTIONS, LunarLanderFrames

if TYPE_CHECKING:
    from dtm_lite.training.loop import EvalSettings

__all__ = [
    "LABEL_KIND", "LABEL_LAYOUT", "LANDER_COLOR", "LUNARLANDER_COLORS", "N_ACTIONS", "N_ZONES", "STREAM_MINIMUMS",
    "STREAM_SETTINGS", "WORLD_LAYOUT", "config_from_settings", "default_settings", "eval_settings", "model_config",
    "palette", "quick_model_config",
]  # fmt: skip

# LunarLander-v3's renderer: black sky, white terrain, purple lander body, yellow flags (RGB in [0, 1])
LUNARLANDER_COLORS: tuple[tuple[float, float, float], ...] = tuple(
    (r / 255, g / 255, b / 255) for r, g, b in ((0, 0, 0), (255, 255, 255), (128, 102, 230), (204, 204, 0))
)
LANDER_COLOR = LUNARLANDER_COLORS[2]  # the layout model's object: the lander's body

# the run and its data stream, which DTMConfig does not hold: name: (default, default with --quick, help)
STREAM_SETTINGS: dict[str, tuple[Any, Any, str]] = {
    "epochs": (20, 2, "total epochs"),
    "batches_per_epoch": (100, 8, "batches per epoch"),
    "evaluate_every": (2, 1, "evaluate every N epochs, 0 = never"),
    "policy": ("random", "random", "LunarLander policy: random or heuristic"),
    "num_envs": (1, 1, "gymnasium vector envs generating episodes"),
    "frame_stride": (2, 2, "keep every k-th simulator step"),
    "episodes_per_epoch": (200, 40, "episodes the stream offers each epoch (new seeds every epoch)"),
    "shuffle_buffer": (1024, 256, "frames in the seeded shuffle buffer"),
    "holdout_episodes": (256, 96, "held-out episodes (other seeds) for evaluation, 4 frames each"),
}
# their smallest values (DTMConfig checks the model's fields itself)
STREAM_MINIMUMS = {
    "epochs": 1, "batches_per_epoch": 1, "evaluate_every": 0, "num_envs": 1, "frame_stride": 1,
    "episodes_per_epoch": 1, "shuffle_buffer": 0, "holdout_episodes": 1,
}  # fmt: skip

# the model: DTMConfig's defaults with these fields; --quick: smaller frames and grid, shorter chains
MODEL_FIELDS: dict[str, Any] = {
    "encoding": "palette", "palette": LUNARLANDER_COLORS, "placement": "planes", "layout_color": LANDER_COLOR,
    "cond_radius": 2, "quench_fraction": 0.05, "quench_beta": 3.0,
}  # fmt: skip
QUICK_FIELDS: dict[str, Any] = {
    "image_shape": (16, 16, 3), "preset": "50_12", "warmup_sweeps": 60, "n_samples": 10, "sweeps_per_sample": 3,
    "generation_sweeps": 100,
}  # fmt: skip

# --condition label: LunarLanderFrames(label="zone"), 0 left of the pad, 1 over it, 2 right of it
LABEL_KIND = "zone"
N_ZONES = LunarLanderFrames.LABEL_KINDS[LABEL_KIND]
# --condition label with the default's layout: no label bits; the label picks the lander's place from the
# layout prior counted per class, and gates the layout weights, so that it also says where within its layout
# pixel the lander is drawn (measured against label bits on a ring around the image and against the prior
# alone: README, "Labels")
LABEL_LAYOUT = {"label_spots": 0, "label_gates_layout": True}
# --condition world with the default's layout: the configuration of benchmarks/world_model.py --layout 1 --frames 2
WORLD_LAYOUT = {"cond_frames": 2, "cond_radius": 1, "layout_min_size": 1}


def _run_batches(quick: bool) -> int:
    """Batches of the default run: epochs x batches_per_epoch (2,000; 16 with ``quick``)."""
    pick = 1 if quick else 0
    return int(STREAM_SETTINGS["epochs"][pick]) * int(STREAM_SETTINGS["batches_per_epoch"][pick])


def model_config(**overrides: Any) -> DTMConfig:
    """The LunarLander model of ``python -m dtm_lite train`` (and of ``DTM.pretrained("lunarlander")``):
    ``DTMConfig()`` (32x32 RGB frames on 80_12, batch 50, 300 warm-up sweeps then 30 samples 6 sweeps apart,
    learning rate 0.03) with the palette encoding of :data:`LUNARLANDER_COLORS` (4 colours, 2 bits a pixel)
    on ``"planes"`` placement, a layout model of the lander (``layout_color`` :data:`LANDER_COLOR`,
    :mod:`dtm_lite.conditioning.layout`; conditioning radius 2), generation ending in 5% of its sweeps at β = 3
    (a quench that settles stray lander pixels: README, "Measured"), and ``lr_decay_batches`` the default run's
    20 epochs x 100 batches; then ``overrides`` (``DTMConfig.replace``)."""
    return DTMConfig(**MODEL_FIELDS, lr_decay_batches=_run_batches(False)).replace(**overrides)


def quick_model_config(**overrides: Any) -> DTMConfig:
    """The quick LunarLander model (``python -m dtm_lite train --quick``; notebook 03 with DTM_LITE_QUICK=1):
    :func:`model_config` on 16x16 frames and 50_12 with short sampling (60 warm-up sweeps, 10 samples 3
    sweeps apart, 100 generation sweeps); ``lr_decay_batches`` the quick run's 2 epochs x 8 batches."""
    return model_config(**{**QUICK_FIELDS, "lr_decay_batches": _run_batches(True), **overrides})


def palette(code: str = "binary", threshold: float | None = 0.5) -> Palette:
    """LunarLander's four colours as a :class:`~dtm_lite.core.encoding.Palette` (``code`` ``"binary"``: 2 bits
    a pixel, ``"onehot"``: 4), each pixel binarised at ``threshold`` before the nearest colour is taken."""
    return Palette(LUNARLANDER_COLORS, code, threshold)


def eval_settings(quick: bool = False) -> EvalSettings:
    """The held-out evaluation of the LunarLander runs: ``EvalSettings()`` (``quick``: ``EvalSettings.quick()``)
    with the object metric on the lander (``dtm_lite.evaluation.metrics.LANDER``)."""
    from dtm_lite.evaluation.metrics import LANDER
    from dtm_lite.training.loop import EvalSettings

    return dataclasses.replace(EvalSettings.quick() if quick else EvalSettings(), object_class=LANDER)


def default_settings(quick: bool = False) -> dict[str, Any]:
    """The settings of ``python -m dtm_lite train`` with no flags (``quick``: with ``--quick``), as one flat
    dict: the fields of :func:`model_config` (:func:`quick_model_config`), the :data:`STREAM_SETTINGS`, and
    ``"quick"``. Its model's ``lr_decay_batches`` is the run's ``epochs * batches_per_epoch``."""
    config = quick_model_config() if quick else model_config()
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(DTMConfig)}
    settings.update({name: v[1] if quick else v[0] for name, v in STREAM_SETTINGS.items()})
    settings["quick"] = bool(quick)
    return settings


def config_from_settings(settings: dict[str, Any]) -> DTMConfig:
    """The :class:`~dtm_lite.core.config.DTMConfig` of a run's settings (their DTMConfig fields; the stream
    settings and ``quick`` are left out)."""
    missing = [f.name for f in dataclasses.fields(DTMConfig) if f.name not in settings]
    if missing:
        raise ValueError(f"settings lack the DTMConfig fields {missing}: start from default_settings()")
    return DTMConfig(**{f.name: settings[f.name] for f in dataclasses.fields(DTMConfig)})
