"""Labels from the stream (issue 9, data side): IteratorDataLoader(n_classes=K) and LunarLander's labels."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.box2d.lunar_lander import SCALE

from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.data.lunarlander import HELIPAD_RENDER_X, LabeledEpisode, LunarLanderFrames, state_labels
from dtm_lite.evaluation.label_measures import centre_columns, zone_of
from dtm_lite.evaluation.metrics import LANDER

N_ID_BITS = 8  # frame k is a (1, 8, 1) uint8 image holding k in binary, so its bits spell k
K = 3


def frame(k: int) -> np.ndarray:
    return ((k >> np.arange(N_ID_BITS)) & 1).astype(np.uint8).reshape(1, N_ID_BITS, 1) * 255


def stack(ks) -> np.ndarray:
    return np.stack([frame(k) for k in ks])


def ids(batch: np.ndarray) -> np.ndarray:
    return batch.astype(np.int64) @ (1 << np.arange(N_ID_BITS))


def one_hot(labels, k: int = K, dtype=np.float32) -> np.ndarray:
    return np.eye(k, dtype=dtype)[np.asarray(labels)]


def labelled_items(n_items: int = 12, per_item: int = 5) -> list:
    """Items whose frame k carries label k % K, in every accepted form."""
    items = []
    for i in range(n_items):
        ks = np.arange(i * per_item, (i + 1) * per_item)
        labels = ks % K
        form = i % 4
        if form == 0:
            items.append((stack(ks), labels.astype(np.int64)))
        elif form == 1:
            items.append((stack(ks), one_hot(labels)))
        elif form == 2:
            actions, rewards = np.zeros(per_item, np.int64), np.zeros(per_item, np.float32)
            items.append((stack(ks), actions, rewards, labels.astype(np.uint8)))
        else:
            items.extend((frame(int(k)), int(k % K)) for k in ks)  # single frames with scalar ids
    return items


# -- loader: labels follow their frames ------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle_buffer", [0, 7, 100])
def test_labels_follow_their_frames_through_batching_and_shuffle(shuffle_buffer):
    loader = IteratorDataLoader(labelled_items(), batch_size=4, n_classes=K, shuffle_buffer=shuffle_buffer, seed=3)
    batches = list(loader)
    assert len(batches) == 15  # 60 frames / 4
    seen = []
    for bits, labels in batches:
        assert bits.dtype == np.uint8 and bits.shape == (4, N_ID_BITS)
        assert labels.dtype == np.int32 and labels.shape == (4,)
        np.testing.assert_array_equal(labels, ids(bits) % K)  # the exact pairing survives the shuffle
        seen.extend(ids(bits).tolist())
    assert sorted(seen) == list(range(60))
    if shuffle_buffer:
        assert seen != list(range(60))


def test_labels_with_frames_out_and_partial_batch():
    items = [(stack([0, 1, 2]), np.array([0, 1, 2])), (stack([3, 4]), one_hot([0, 1], dtype=bool))]
    out = list(IteratorDataLoader(items, batch_size=3, n_classes=K, encode=False, drop_last=False))
    assert [(f.shape, lab.tolist()) for f, lab in out] == [((3, 1, 8, 1), [0, 1, 2]), ((2, 1, 8, 1), [0, 1])]
    np.testing.assert_array_equal(np.concatenate([f for f, _ in out]), stack(range(5)))


def test_output_without_labels_is_unchanged():
    items = [(stack([0, 1]),), (stack([2, 3]), np.zeros(2, np.int64), np.zeros(2, np.float32)), stack([4, 5])]
    items.append((stack([6, 7]), np.array([0.5, 0.25])))  # float per-frame values: not labels, ignored
    items.append((stack([8, 9]), np.zeros((2, 4, 4), np.uint8)))  # masks (n, H, W): not labels
    batches = list(IteratorDataLoader(items, batch_size=2))
    assert all(isinstance(b, np.ndarray) for b in batches)
    assert [ids(b).tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


# -- loader: errors name the item and the fix --------------------------------------------------------------------


def error(items, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        list(IteratorDataLoader(items, batch_size=2, **kwargs))
    return str(info.value)


def good(i: int = 0):
    return (stack([2 * i, 2 * i + 1]), np.array([0, 1]))


def test_error_wrong_label_count():
    msg = error([good(0), (stack([2, 3, 4]), np.array([0, 1]))], n_classes=K)
    assert "stream item 1 has 3 frames but 2 labels" in msg and "one label per frame" in msg
    msg = error([good(0), (stack([2, 3]), one_hot([0, 1, 2]))], n_classes=K)
    assert "stream item 1 has 2 frames but 3 labels" in msg


def test_error_label_out_of_range():
    msg = error([good(0), good(1), (stack([4, 5]), np.array([2, 3]))], n_classes=K)
    assert "stream item 2, frame 1 has label 3, outside 0..2 (n_classes=3)" in msg
    assert "stream item 0, frame 0 has label -1" in error([(stack([0, 1]), np.array([-1, 0]))], n_classes=K)
    assert "stream item 1, frame 0 has label 5" in error([good(0), (frame(2), 5)], n_classes=K)


def test_error_non_integer_ids():
    msg = error([(stack([0, 1]), np.array([0.0, 1.0]))], n_classes=K)
    assert "stream item 0 has label ids of dtype float64" in msg and ".astype(np.int64)" in msg
    assert "integer dtype" in error([(stack([0, 1]), np.array([True, False]))], n_classes=K)
    assert "dtype <U1" in error([(stack([0, 1]), np.array(["a", "b"]))], n_classes=K)


def test_error_bad_one_hot():
    bad = one_hot([0, 1])
    bad[1] = [0.0, 0.5, 0.5]
    msg = error([good(0), (stack([2, 3]), bad)], n_classes=K)
    assert "stream item 1, frame 1 has label row [0.  0.5 0.5], which is not one-hot" in msg
    two_ones = one_hot([0, 1], dtype=np.int64)
    two_ones[0, 2] = 1
    assert "stream item 0, frame 0" in error([(stack([0, 1]), two_ones)], n_classes=K)
    assert "not one-hot" in error([(stack([0, 1]), np.zeros((2, K)))], n_classes=K)
    msg = error([(stack([0, 1]), one_hot([0, 1], k=4))], n_classes=K)
    assert "stream item 0 has one-hot labels with 4 columns" in msg and "n_classes=3" in msg
    assert "shape (2, 3, 1)" in error([(stack([0, 1]), np.zeros((2, 3, 1), np.int64))], n_classes=K)


def test_error_labels_without_n_classes_says_pass_n_classes():
    msg = error([stack([0, 1]), (stack([2, 3]), np.array([0, 1]))])
    assert "stream item 1 is a 2-tuple whose element 1 looks like labels" in msg and "pass n_classes=K" in msg
    four = (stack([0, 1]), np.zeros(2, np.int64), np.zeros(2), one_hot([0, 2]))
    assert "stream item 0 is a 4-tuple whose element 3 looks like labels" in error([four])
    assert "looks like labels" in error([(frame(0), 2)])  # a single frame with its id


def test_error_n_classes_without_labels():
    for item in [stack([0, 1]), (stack([0, 1]),), (stack([0, 1]), np.zeros(2, np.int64), np.zeros(2))]:
        msg = error([good(0), item], n_classes=K)
        assert "stream item 1 carries no labels" in msg and "n_classes=3 asks for them" in msg
        assert "(frames, labels)" in msg


def test_error_preprocessing_changes_the_count_with_labels():
    msg = error([good(0)], n_classes=K, image_preprocessing=lambda x: x[:1])
    assert "stream item 0: image_preprocessing turned 2 frames into 1" in msg


def test_frames_are_checked_before_labels():
    bad = np.full((2, 1, 8, 1), 2.0, np.float32)
    assert "stream item 0, frame 0 has float values" in error([(bad, np.array([0, 9]))], n_classes=K)


def test_n_classes_validation():
    with pytest.raises(ValueError, match="n_classes"):
        IteratorDataLoader([], batch_size=2, n_classes=0)


# -- LunarLander labels from the simulator ------------------------------------------------------------------------

ZONE = dict(resolution=32, frames_per_episode=32, frame_stride=2, episodes=12, seed=0, label="zone")


@pytest.fixture(scope="module")
def zone_episodes() -> list[LabeledEpisode]:
    return list(LunarLanderFrames(**ZONE))


def test_label_kinds_are_named_and_checked():
    assert LunarLanderFrames.LABEL_KINDS == {"zone": 3, "phase": 3}
    assert LunarLanderFrames(label="zone").n_classes == 3 and LunarLanderFrames().n_classes is None
    with pytest.raises(ValueError, match="label must be None or one of \\('zone', 'phase'\\)"):
        LunarLanderFrames(label="pixels")
    with pytest.raises(ValueError, match="label kind"):
        state_labels(np.zeros((1, 8)), "pixels")


def test_state_labels_rules():
    #               x    y  x1   x2  leg0 leg1 over awake
    states = np.array(
        [[7.9, 5, 8.0, 12.0, 0, 0, 0, 1], [8.0, 5, 8.0, 12.0, 1, 0, 0, 1], [12.0, 5, 8.0, 12.0, 0, 1, 0, 1],
         [12.1, 5, 8.0, 12.0, 1, 1, 0, 1]]
    )  # fmt: skip
    assert state_labels(states, "zone").tolist() == [0, 1, 1, 2]
    assert state_labels(states, "phase").tolist() == [0, 1, 1, 2]


def test_zone_labels_in_range_deterministic_and_beside_the_same_frames(zone_episodes):
    assert all(isinstance(e, LabeledEpisode) and e.labels.dtype == np.int64 for e in zone_episodes)
    labels = np.concatenate([e.labels for e in zone_episodes])
    assert labels.min() >= 0 and labels.max() <= 2 and len(np.unique(labels)) == 3
    again = list(LunarLanderFrames(**{**ZONE, "episodes": 3}))
    for a, b in zip(again, zone_episodes, strict=False):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)
    plain = list(LunarLanderFrames(**{**ZONE, "episodes": 3, "label": None}))  # labels change nothing else
    for a, b in zip(plain, zone_episodes, strict=False):
        assert len(a) == 3
        for u, v in zip(a, b[:3], strict=True):
            np.testing.assert_array_equal(u, v)
    other = list(LunarLanderFrames(**{**ZONE, "episodes": 3, "seed": 1}))
    assert not all(np.array_equal(a.labels, b.labels) for a, b in zip(other, zone_episodes, strict=False))


def test_zone_labels_agree_with_the_picture(zone_episodes):
    """The lander blob's column lies in the labelled zone in >= 90% of the frames where a lander is visible
    and its centre is more than 1 pixel from a zone border (measured here: 241 of 241 such frames, 16 / 212 /
    13 in zones 0 / 1 / 2; 99.2% of all 261 frames with a visible lander, borders included)."""
    src = LunarLanderFrames(**ZONE)
    frames = np.concatenate([e.frames for e in zone_episodes])
    labels = np.concatenate([e.labels for e in zone_episodes])
    left, right = src.pad_columns
    assert (left, right) == pytest.approx((11.2, 20.8))
    shown, centre = centre_columns(frames, LANDER)  # in the pad's coordinates: pixel j spans [j, j + 1)
    seen = zone_of(np.nan_to_num(centre), (left, right))
    clear = shown & (np.abs(centre - left) > 1) & (np.abs(centre - right) > 1)
    assert clear.sum() >= 150
    assert np.bincount(seen[clear], minlength=3).min() >= 10  # every zone is visited
    assert (seen == labels)[clear].mean() >= 0.9


def test_pad_columns_follow_the_crop():
    env = gym.make("LunarLander-v3").unwrapped
    env.reset(seed=0)
    assert (env.helipad_x1 * SCALE, env.helipad_x2 * SCALE) == HELIPAD_RENDER_X  # type: ignore[attr-defined]
    env.close()
    assert LunarLanderFrames(resolution=40).pad_columns == pytest.approx((14.0, 26.0))
    assert LunarLanderFrames(resolution=60, crop="full").pad_columns == pytest.approx((24.0, 36.0))
    assert LunarLanderFrames(resolution=60, crop="pad").pad_columns == pytest.approx((24.0, 36.0))
    assert LunarLanderFrames(resolution=10, crop=(0, 400, 200, 400)).pad_columns == pytest.approx((2.0, 8.0))


def test_phase_labels_in_range_and_all_phases_occur():
    src = LunarLanderFrames(
        resolution=8, frames_per_episode=48, frame_stride=8, episodes=3, policy="heuristic", label="phase"
    )
    eps = list(src)
    labels = np.concatenate([e.labels for e in eps])
    assert labels.min() >= 0 and labels.max() <= 2
    assert set(labels.tolist()) == {0, 1, 2}  # the heuristic lander flies, touches down and stands
    assert labels[0] == 0  # it starts in the air
    for u, v in zip(eps[0], list(src)[0], strict=True):
        np.testing.assert_array_equal(u, v)


def test_labels_from_lunarlander_through_the_loader():
    src = LunarLanderFrames(resolution=8, frames_per_episode=6, episodes=3, label="zone", num_envs=2)
    expected = np.concatenate([e.labels for e in src])
    out = list(IteratorDataLoader(src, batch_size=4, n_classes=src.n_classes, drop_last=False))
    np.testing.assert_array_equal(np.concatenate([lab for _, lab in out]), expected)
    with pytest.raises(ValueError, match="stream item 0 is a 4-tuple whose element 3 looks like labels"):
        list(IteratorDataLoader(src, batch_size=4))
