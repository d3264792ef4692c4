"""Tests for the object metric of dtm_lite.evaluation.metrics: classes, 8-connected blobs, per-frame stats and
comparison."""

import csv
import dataclasses
import math

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.data.lunarlander_settings import eval_settings
from dtm_lite.evaluation.metrics import (
    LANDER,
    ObjectClass,
    blue_dominant,
    compare_objects,
    object_stats,
    wasserstein_1d,
)
from dtm_lite.training.loop import (
    OBJECT_COLUMNS,
    EvalSettings,
    Holdout,
    MetricsLog,
    _object_metrics,
    _summary,
    evaluate_dtm,
    evaluation_key,
)

BLUE, MAGENTA, PURPLE = (0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (128 / 255, 102 / 255, 230 / 255)
BLACK, WHITE, YELLOW = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (204 / 255, 204 / 255, 0.0)


def frames(n: int, side: int = 8) -> np.ndarray:
    """n black RGB frames (n, side, side, 3)."""
    return np.zeros((n, side, side, 3))


def paint(x: np.ndarray, k: int, pixels: list[tuple[int, int]], color=BLUE) -> None:
    for r, c in pixels:
        x[k, r, c] = color


# ---- classes ------------------------------------------------------------------------------------------------


def test_lander_predicate_on_lunarlander_colours():
    colours = [BLUE, MAGENTA, PURPLE, (0.5, 0.5, 1.0), BLACK, WHITE, YELLOW, (0.5, 0.5, 0.5), (0.3, 0.3, 0.5)]
    x = np.array(colours, np.float32).reshape(1, 1, -1, 3)
    # (0.5, 0.5, 1): the lander under a 2- or 4-level thermometer; greys and dim mixes never pass
    np.testing.assert_array_equal(LANDER.mask(x)[0, 0], [True] * 4 + [False] * 5)
    assert LANDER.channels == 3 and LANDER.predicate is blue_dominant


def test_palette_entry_class_uses_per_channel_tolerance():
    flag = ObjectClass("flag", color=YELLOW, tol=0.05)
    assert flag.channels == 3 and flag.color == YELLOW
    x = np.array([YELLOW, (0.84, 0.76, 0.04), (0.86, 0.8, 0.0), WHITE, BLUE], np.float32).reshape(1, 1, 5, 3)
    # (0.84, 0.76, 0.04) is 0.04 away in every channel: in; (0.86, ...) is 0.06 away in red: out
    np.testing.assert_array_equal(flag.mask(x)[0, 0], [True, True, False, False, False])
    # uint8 frames are read as value / 255
    np.testing.assert_array_equal(
        flag.mask((x * 255).round().astype(np.uint8))[0, 0], [True, True, False, False, False]
    )


def test_predicate_class_on_grayscale_frames():
    bright = ObjectClass("bright", predicate=lambda x: x[..., 0] > 0.5)
    x = np.zeros((2, 5, 5, 1))
    x[0, 1:3, 1] = 1.0  # a vertical pair
    x[1, 4, 4] = 0.75  # a single pixel
    s = object_stats(x, bright)
    np.testing.assert_array_equal(s.n_blobs, [1, 0])
    np.testing.assert_array_equal(s.largest, [2, 0])
    np.testing.assert_array_equal(s.stray, [0, 1])


def test_bad_classes_and_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="exactly one of predicate"):
        ObjectClass("none")
    with pytest.raises(ValueError, match="exactly one of predicate"):
        ObjectClass("both", predicate=blue_dominant, color=BLUE)
    with pytest.raises(ValueError, match=r"color must be values in \[0, 1\]"):
        ObjectClass("bad", color=(0, 0, 255))
    with pytest.raises(ValueError, match="color has 3 values but channels=1"):
        ObjectClass("bad", color=BLUE, channels=1)
    with pytest.raises(ValueError, match="tol must be"):
        ObjectClass("bad", color=BLUE, tol=-0.1)
    with pytest.raises(ValueError, match=r"\(n >= 1, H, W, C\), got shape \(8, 8, 3\)"):
        object_stats(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"needs images with C = 3 channels, got shape \(2, 8, 8, 1\)"):
        object_stats(np.zeros((2, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\]"):
        object_stats(np.full((1, 4, 4, 3), 255.0))
    with pytest.raises(ValueError, match=r"bool mask of shape \(1, 4, 4\), got float32"):
        ObjectClass("soft", predicate=lambda x: x[..., 0] * 1.0).mask(np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="min_size must be an integer >= 1"):
        object_stats(frames(1), min_size=0)
    with pytest.raises(ValueError, match=r"share \(H, W, C\)"):
        compare_objects(frames(2, side=8), frames(2, side=6))


# ---- per-frame statistics ---------------------------------------------------------------------------------


def test_counts_sizes_strays_and_centres_exact():
    x = frames(4)
    paint(x, 0, [(1, 1), (1, 2), (2, 1)])  # one L-shaped blob of 3, centre (4/3, 4/3)
    paint(x, 1, [(0, 0), (0, 1)], MAGENTA)  # a blob of 2 ...
    paint(x, 1, [(5, 5), (5, 6), (6, 5), (6, 6)], PURPLE)  # ... and the largest, 4, centre (5.5, 5.5)
    paint(x, 1, [(3, 7)])  # a single stray pixel
    paint(x, 2, [(7, 0)])  # only a single pixel: no blob
    paint(x, 3, [(4, 4), (4, 5)], YELLOW)  # a flag: not the lander
    s = object_stats(x)
    np.testing.assert_array_equal(s.n_blobs, [1, 2, 0, 0])
    np.testing.assert_array_equal(s.largest, [3, 4, 0, 0])
    np.testing.assert_array_equal(s.stray, [0, 3, 1, 0])  # frame 1: the 2-blob and the single pixel
    np.testing.assert_allclose(s.row, [4 / 3, 5.5, np.nan, np.nan])
    np.testing.assert_allclose(s.col, [4 / 3, 5.5, np.nan, np.nan])
    np.testing.assert_array_equal(s.has_blob, [True, True, False, False])
    # centres rounded half up: (4/3 -> 1, 5.5 -> 6) in both rows and columns
    np.testing.assert_array_equal(s.row_hist, [0, 1, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(s.col_hist, [0, 1, 0, 0, 0, 0, 1, 0])


def test_diagonal_pixels_join_8_connectivity():
    x = frames(2)
    paint(x, 0, [(2, 2), (3, 3), (4, 4)])  # a diagonal line: one blob of 3
    paint(x, 1, [(0, 7), (1, 6)])  # an anti-diagonal pair: one blob of 2
    s = object_stats(x)
    np.testing.assert_array_equal(s.n_blobs, [1, 1])
    np.testing.assert_array_equal(s.largest, [3, 2])
    np.testing.assert_allclose(s.row, [3.0, 0.5])
    np.testing.assert_allclose(s.col, [3.0, 6.5])


def test_frames_are_never_joined():
    x = frames(2)
    paint(x, 0, [(7, 3)])  # bottom row of frame 0 ...
    paint(x, 1, [(0, 3)])  # ... above the top row of frame 1: still two separate single pixels
    s = object_stats(x)
    np.testing.assert_array_equal(s.n_blobs, [0, 0])
    np.testing.assert_array_equal(s.stray, [1, 1])


def test_min_size_filters_blobs():
    x = frames(1)
    paint(x, 0, [(0, 0)])  # size 1
    paint(x, 0, [(0, 4), (0, 5)])  # size 2
    paint(x, 0, [(5, 0), (6, 0), (7, 0)])  # size 3, centre (6, 0)
    expected = {1: (3, 3), 2: (2, 3), 3: (1, 3), 4: (0, 0)}  # min_size: (n_blobs, largest)
    for min_size, (n_blobs, largest) in expected.items():
        s = object_stats(x, min_size=min_size)
        assert (s.n_blobs[0], s.largest[0], s.stray[0]) == (n_blobs, largest, 6 - largest)
    assert object_stats(x, min_size=3).row[0] == 6.0 and math.isnan(object_stats(x, min_size=4).row[0])


def test_largest_blob_ties_go_to_the_first_in_raster_order():
    x = frames(1)
    paint(x, 0, [(6, 6), (6, 7)])
    paint(x, 0, [(1, 1), (2, 1)])  # same size, first pixel earlier in raster order
    s = object_stats(x)
    assert (s.n_blobs[0], s.largest[0], s.stray[0], s.row[0], s.col[0]) == (2, 2, 2, 1.5, 1.0)


# ---- comparison ---------------------------------------------------------------------------------------------


def test_compare_identical_sets():
    x = frames(4)
    paint(x, 0, [(1, 1), (1, 2)])
    paint(x, 1, [(3, 3), (4, 4), (5, 5)])
    paint(x, 1, [(0, 7)])
    paint(x, 2, [(6, 1)])
    out = compare_objects(x, x.copy())
    assert out == {
        "obj_one_rate": 0.5,
        "obj_one_rate_data": 0.5,
        "obj_stray": 0.5,
        "obj_stray_data": 0.5,
        "obj_size_dist": 0.0,
        "obj_pos_dist": 0.0,
    }


def test_compare_shifted_and_resized_sets():
    data, model = frames(2), frames(2)
    paint(data, 0, [(0, 0), (0, 1)])  # size 2, centre (0, 0.5)
    paint(data, 1, [(1, 1), (1, 2), (2, 1)])  # size 3, centre (4/3, 4/3)
    paint(model, 0, [(2, 3), (2, 4), (3, 3)])  # size 3, centre (2 + 1/3, 3 + 1/3)
    paint(model, 1, [(3, 4), (3, 5), (4, 4)])  # the data's frame 1 moved by (2, 3), centre (3 + 1/3, 4 + 1/3)
    paint(model, 1, [(7, 7)])  # plus a stray pixel
    out = compare_objects(data, model)
    assert out["obj_one_rate"] == out["obj_one_rate_data"] == 1.0
    assert out["obj_stray"] == 0.5 and out["obj_stray_data"] == 0.0
    assert out["obj_size_dist"] == pytest.approx(0.5)  # sizes {2, 3} vs {3, 3}
    # rows {0, 4/3} vs {7/3, 10/3}: W1 = (7/3 + 2) / 2; columns {1/2, 4/3} vs {10/3, 13/3}: (17/6 + 3) / 2
    assert out["obj_pos_dist"] == pytest.approx((7 / 3 + 2) / 2 + (17 / 6 + 3) / 2)
    shifted = np.roll(data, (2, 3), axis=(1, 2))  # every blob moved 2 rows down and 3 columns right
    assert compare_objects(data, shifted)["obj_pos_dist"] == pytest.approx(5.0)
    assert compare_objects(data, shifted)["obj_size_dist"] == 0.0


def test_compare_without_blobs():
    data = frames(3)
    paint(data, 0, [(1, 1), (1, 2)])
    model = frames(2)
    paint(model, 1, [(5, 5)])
    out = compare_objects(data, model)
    assert math.isnan(out["obj_pos_dist"])  # the model has no blob at all
    assert out["obj_one_rate"] == 0.0 and out["obj_one_rate_data"] == pytest.approx(1 / 3)
    assert out["obj_stray"] == 0.5 and out["obj_stray_data"] == 0.0
    assert out["obj_size_dist"] == pytest.approx(2 / 3)  # sizes {2, 0, 0} vs {0, 0}
    empty = compare_objects(frames(2), frames(3))  # no class pixel anywhere
    assert math.isnan(empty.pop("obj_pos_dist")) and set(empty.values()) == {0.0}
    np.testing.assert_array_equal(object_stats(frames(2)).row_hist, np.zeros(8))


def test_wasserstein_1d_exact():
    assert wasserstein_1d([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert wasserstein_1d([0.0], [3.0]) == 3.0
    assert wasserstein_1d([0.0, 0.0, 4.0], [1.0]) == pytest.approx((2 * 1 + 3) / 3)
    with pytest.raises(ValueError, match="at least one value"):
        wasserstein_1d([], [1.0])


# ---- logged at every evaluation (dtm_lite.training.loop) ---------------------------------------------------------

TINY = DTMConfig(
    image_shape=(8, 8, 3), preset="20_8", batch_size=8, warmup_sweeps=10, n_samples=4, sweeps_per_sample=2,
    generation_sweeps=20, lr_decay_batches=12, seed=3,
)  # fmt: skip
SMALL_EVAL = EvalSettings(
    n_images=12, n_components=4, autocorr_chains=4, autocorr_sweeps=20, autocorr_every=2, autocorr_window=(10, 16),
    gif_images=4, gif_every=10, object_class=LANDER,
)  # fmt: skip


def stream(epoch: int) -> list[np.ndarray]:
    """Two batches of random RGB frames: many blue-dominant pixels, blobs of all sizes."""
    rng = np.random.default_rng([7, epoch])
    return [rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8) for _ in range(2)]


def test_each_evaluation_logs_the_object_metric(tmp_path):
    held = np.concatenate(stream(99) + stream(98))  # 32 frames: halves A and B of 16
    dtm = DTM(TINY)
    hist = dtm.train_from_iterator(1, stream, 2, evaluate_every=1, holdout=held, checkpoint_dir=tmp_path,
                                   eval_settings=SMALL_EVAL, progress=False)  # fmt: skip
    row = hist[-1]
    # the same numbers from the held-out half B and the evaluation's samples (its key: seed + 7, epoch 0)
    data = Holdout(dtm, held, SMALL_EVAL).images_b[:12]
    samples = dtm.generate(12, evaluation_key(TINY.seed, 0))
    expected = compare_objects(data, samples, LANDER, min_size=2)
    assert {k: row[k] for k in OBJECT_COLUMNS} == pytest.approx(expected, nan_ok=True)
    assert row["obj_one_rate_data"] == np.mean(object_stats(data).n_blobs == 1)
    assert 0 < row["obj_stray_data"]  # random frames: scattered blue pixels in the data too
    with open(tmp_path / "metrics.csv", newline="") as f:
        logged = list(csv.DictReader(f))
    assert set(OBJECT_COLUMNS) <= set(logged[0])
    assert float(logged[0]["obj_one_rate"]) == pytest.approx(row["obj_one_rate"])
    assert float(logged[0]["obj_stray_data"]) == pytest.approx(row["obj_stray_data"])
    # evaluate_dtm reports them too, and a settings' None class switches them off
    assert set(OBJECT_COLUMNS) <= set(evaluate_dtm(dtm, held, SMALL_EVAL))
    off = dataclasses.replace(SMALL_EVAL, object_class=None)
    assert not set(OBJECT_COLUMNS) & set(evaluate_dtm(dtm, held, off))


def test_object_class_setting_and_grayscale_models():
    with pytest.raises(ValueError, match="object_class must be a dtm_lite.evaluation.metrics.ObjectClass or None"):
        EvalSettings(object_class="lander")
    with pytest.raises(ValueError, match="object_min_size must be >= 1"):
        EvalSettings(object_min_size=0)
    # no object metric unless asked for (a generic stream has no lander); the LunarLander runs pass LANDER
    assert EvalSettings().object_class is None and EvalSettings().object_min_size == 2
    assert eval_settings().object_class is LANDER
    gray = np.zeros((3, 4, 4, 1))
    gray[:, 1, 1:3] = 1.0
    assert _object_metrics(gray, gray, EvalSettings()) == {}
    with pytest.warns(UserWarning, match="class 'lander' is defined for images with C = 3, the model makes C = 1"):
        assert _object_metrics(gray, gray, EvalSettings(object_class=LANDER)) == {}
    bright = ObjectClass("bright", predicate=lambda x: x[..., 0] > 0.5)
    out = _object_metrics(gray, gray, EvalSettings(object_class=bright))
    assert out["obj_one_rate"] == out["obj_one_rate_data"] == 1.0 and out["obj_pos_dist"] == 0.0


def test_summary_line():
    row = {"epoch": 3, "fd_pca": 1.0, "fd_floor": 0.5, "fd_independent": 9.0, "marginal_error": 0.01}
    fd = "epoch 3: FD-PCA 1.000 (data floor 0.500, independent pixels 9.000), marginal error 0.0100"
    assert _summary(row) == fd
    row |= {"obj_one_rate": 0.25, "obj_one_rate_data": 0.5, "obj_stray": 1.5, "obj_stray_data": 0.0}
    assert _summary(row, EvalSettings(object_class=LANDER)) == (
        fd + "; lander one-blob rate 0.25 (data 0.50), stray 1.50/frame (data 0.00)"
    )


def test_metrics_log_upgrades_an_old_header(tmp_path):
    """A run folder from before the object metric: resuming rewrites metrics.csv once with the new header."""
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,batches,fd_pca,old_extra\n1,10,2.5,x\n")
    log = MetricsLog(path, num_steps=1)
    log.append({"epoch": 2, "batches": 20, "fd_pca": 2.0, "obj_one_rate": 0.5})
    log.append({"epoch": 3, "batches": 30})
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert header[:5] == ["epoch", "batches", "seconds", "gap", "lr"] and header[-1] == "old_extra"
    assert set(OBJECT_COLUMNS) <= set(header)
    assert [(r["epoch"], r["fd_pca"], r["obj_one_rate"], r["old_extra"]) for r in rows] == [
        ("1", "2.5", "", "x"),
        ("2", "2.0", "0.5", ""),
        ("3", "", "", ""),
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temporary file left
