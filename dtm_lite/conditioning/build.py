"""The conditioners of a config: what :class:`dtm_lite.core.spec.ModelSpec` plugs into the core."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from dtm_lite.conditioning.inputs import InputField, conditioning_index
from dtm_lite.conditioning.labels import LabelBits, place_labels
from dtm_lite.conditioning.layout import LayoutInputs
from dtm_lite.core.conditioner import Conditioner
from dtm_lite.core.config import DTMConfig
from dtm_lite.core.encoding import Encoding
from dtm_lite.core.graph import GridGraph


def conditioners(config: DTMConfig, graph: GridGraph, visible: np.ndarray) -> tuple[Conditioner, ...]:
    """Labels (``n_classes``), then conditioning inputs: a layout model's (``layout_color``, with or without a
    world model's previous frames) or a world model's alone (``n_actions``). None for a plain DTM."""
    out: list[Conditioner] = []
    if config.n_label_bits:
        sites = place_labels(graph, visible, config.n_classes, config.label_spots)
        out.append(LabelBits(sites, config.n_classes, config.label_spots, config.label_rate))
    encoding = Encoding.from_config(config)
    if config.layout_color is not None:
        out.append(LayoutInputs(config, encoding))
    elif config.n_actions:
        index = conditioning_index(config.image_shape, encoding.bits_per_pixel, config.cond_radius, config.cond_frames)
        out.append(InputField(index, config.n_actions))
    return tuple(out)


C = TypeVar("C", bound=Conditioner)


def find(conditioners: tuple[Conditioner, ...], kind: type[C]) -> C | None:
    """The conditioner of type ``kind`` (e.g. :class:`LayoutInputs`), or None."""
    return next((c for c in conditioners if isinstance(c, kind)), None)
