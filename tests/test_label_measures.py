"""The label measures read a lander's zone from the picture in the pad's own coordinates (pixel j spans [j, j+1))."""

import numpy as np
import pytest

from dtm_lite.evaluation.label_measures import (
    balanced_accuracy,
    centre_columns,
    clear_of_borders,
    confusion,
    zone_of,
    zone_report,
)
from dtm_lite.evaluation.metrics import LANDER

PAD = (11.2, 20.8)  # LunarLanderFrames(resolution=32).pad_columns


def frames_with_blobs(cols: list[int | None], width: int = 2) -> np.ndarray:
    """32x32 black frames, each with a ``width``-pixel-wide, 2-row lander blob starting at column ``c``."""
    x = np.zeros((len(cols), 32, 32, 3), np.float32)
    for i, c in enumerate(cols):
        if c is not None:
            x[i, 10:12, c : c + width] = (128 / 255, 102 / 255, 230 / 255)  # the lander body's purple
    return x


def test_centres_are_in_the_borders_coordinates():
    shown, centre = centre_columns(frames_with_blobs([20, 5, None], width=1), LANDER)
    assert shown.tolist() == [True, True, False]
    assert centre[:2] == pytest.approx([20.5, 5.5]) and np.isnan(centre[2])
    _, centre = centre_columns(frames_with_blobs([20]), LANDER)  # columns 20 and 21: the centre is their edge
    assert centre[0] == pytest.approx(21.0)


def test_zone_report_counts_a_blob_by_its_pixel_centre():
    # one-pixel-wide blobs at columns 10 (centre 10.5: left), 11 (11.5: over), 20 (20.5: over), 21 (21.5: right)
    x = frames_with_blobs([10, 11, 20, 21, None], width=1)
    assert zone_of(centre_columns(x, LANDER)[1][:4], PAD).tolist() == [0, 1, 1, 2]
    r = zone_report(x, 1, PAD, LANDER, min_size=1)
    assert (r.n, r.shown, r.in_zone, r.one_blob) == (5, 0.8, 0.5, 0.8)
    assert zone_report(x[3:4], 2, PAD, LANDER, min_size=1).in_zone == 1.0
    assert np.isnan(zone_report(x[4:], 2, PAD, LANDER, min_size=1).in_zone)


def test_clear_of_borders_keeps_blobs_more_than_a_pixel_away():
    x = frames_with_blobs([5, 11, 15, 19, 20, 25, None], width=1)  # centres 5.5, 11.5, 15.5, 19.5, 20.5, 25.5
    assert clear_of_borders(x, PAD, LANDER, min_size=1).tolist() == [True, False, True, True, False, True, False]


def test_confusion_and_balanced_accuracy():
    cm = confusion(np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 0]]
    assert balanced_accuracy(cm) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert balanced_accuracy(confusion(np.array([1, 1]), np.array([1, 0]), 3)) == 0.5  # unseen classes skipped
