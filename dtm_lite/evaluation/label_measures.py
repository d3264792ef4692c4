"""How well a labelled model's label says where its object is: conditional samples and classification.

Both read the object's place from the pixels, with the object metric of :mod:`dtm_lite.evaluation.metrics` (the
centre column of the largest blob of the object's colour, in the borders' coordinates: :func:`centre_columns`), so
a sample is scored the way a person would score it.
The zones are column intervals: ``borders = (b_1, ..., b_{K-1})``, zone k the columns between ``b_k`` and
``b_{k+1}`` (LunarLander's ``"zone"`` label: the landing pad's edges, ``LunarLanderFrames.pad_columns``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtm_lite.evaluation.metrics import ObjectClass, ObjectStats, object_stats


def centre_columns(images: np.ndarray, cls: ObjectClass, min_size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Which frames ``(n,)`` bool show the object, and its largest blob's centre ``(n,)`` in the borders'
    continuous coordinates, where pixel j spans ``[j, j + 1)``: the blob's mean pixel index plus one half (NaN
    without a blob). Compared with the mean index itself, a border would sit half a pixel off: measured on 2,149
    random-policy frames right of LunarLander's pad, the picture agrees with the simulator's label in 0.885 of
    them that way and in 0.979 this way."""
    st = object_stats(images, cls, min_size=min_size)
    return st.n_blobs >= 1, _centre(st)


def _centre(st: ObjectStats) -> np.ndarray:
    """The largest blob's centre column of :func:`object_stats`'s ``st``, in the borders' coordinates."""
    return st.col + 0.5


def zone_of(cols: np.ndarray, borders: tuple[float, ...]) -> np.ndarray:
    """Zone ids ``(n,)`` of columns ``(n,)``: 0 left of ``borders[0]``, k between ``borders[k - 1]`` and
    ``borders[k]``, the last right of ``borders[-1]``; a middle zone includes both of its borders, as the
    simulator's ``"zone"`` label does (``x1 <= x <= x2`` is over the pad)."""
    c, b = np.asarray(cols, np.float64), np.asarray(borders, np.float64)
    return ((c >= b[0]).astype(np.int64) + (c[:, None] > b[None, 1:]).sum(1)).astype(np.int64)


def confusion(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """The confusion matrix ``(k, k)`` int: row = true class, column = predicted class."""
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def balanced_accuracy(cm: np.ndarray) -> float:
    """The mean over classes (that occur) of the fraction of each class predicted right: chance is 1/k."""
    cm = np.asarray(cm)
    rows = cm.sum(1)
    seen = rows > 0
    return float(np.mean(np.diag(cm)[seen] / rows[seen])) if seen.any() else float("nan")


@dataclass(frozen=True)
class ZoneReport:
    """Conditional samples of one requested zone: ``n`` samples, ``shown`` the fraction that draw the object
    (a blob of at least ``min_size`` pixels), ``in_zone`` the fraction of those whose centre lies in the
    requested zone, ``one_blob`` the fraction that draw exactly one blob."""

    zone: int
    n: int
    shown: float
    in_zone: float
    one_blob: float


def zone_report(images: np.ndarray, zone: int, borders: tuple[float, ...], cls: ObjectClass,
                min_size: int = 2) -> ZoneReport:  # fmt: skip
    """:class:`ZoneReport` of ``images`` ``(n, H, W, C)`` in [0, 1], generated for ``zone``."""
    st = object_stats(images, cls, min_size=min_size)
    shown, centre = st.n_blobs >= 1, _centre(st)
    right = shown & (zone_of(np.nan_to_num(centre), borders) == zone)
    in_zone = float(right.sum() / shown.sum()) if shown.any() else float("nan")
    return ZoneReport(zone, len(images), float(shown.mean()), in_zone, float((st.n_blobs == 1).mean()))


def clear_of_borders(images: np.ndarray, borders: tuple[float, ...], cls: ObjectClass, margin: float = 1.0,
                     min_size: int = 2) -> np.ndarray:  # fmt: skip
    """Which frames ``(n,)`` bool show the object with its centre more than ``margin`` pixels from every
    border: the frames whose zone can be read from the picture without doubt."""
    shown, centre = centre_columns(images, cls, min_size)
    dist = np.min(np.abs(np.nan_to_num(centre, nan=-1e9)[:, None] - np.asarray(borders)[None]), axis=1)
    return shown & (dist > margin)
