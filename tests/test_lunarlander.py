"""LunarLander frame source and area resizing."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from dtm_lite.data import lunarlander
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.data.lunarlander import (
    FrameCapture,
    LunarLanderFrames,
    area_weights,
    bilinear_weights,
    crop_frame,
    frames_per_second,
    resize_area,
    resize_bilinear,
)

SMALL = dict(resolution=16, frames_per_episode=4, episodes=3)
# long, sparse episodes: a random lander often crashes before 16 kept frames x 8 steps, so lengths vary
VARIED = dict(resolution=16, frames_per_episode=16, frame_stride=8, episodes=4, seed=5)


def assert_same_episodes(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


# -- resizing ------------------------------------------------------------------------------------------------


def test_area_weights_rows_average():
    w = area_weights(50, 8)
    assert w.shape == (8, 50)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w.sum(0).sum(), 8.0, rtol=1e-6)
    assert w[0, 6] == pytest.approx(0.25 / 6.25)  # pixel 6 is a quarter inside output 0's span [0, 6.25)


@pytest.mark.parametrize("resize,weights", [(resize_area, area_weights), (resize_bilinear, bilinear_weights)])
@pytest.mark.parametrize("in_hw, out_hw", [((150, 100), (12, 8)), ((37, 53), (10, 7)), ((9, 5), (20, 9))])
def test_resize_equals_dense_separable_product(resize, weights, in_hw, out_hw):
    x = np.random.default_rng(0).integers(0, 256, (2, *in_hw, 3), dtype=np.uint8)
    wy, wx = weights(in_hw[0], out_hw[0]).astype(np.float64), weights(in_hw[1], out_hw[1]).astype(np.float64)
    reference = np.einsum("oh,bhwc,pw->bopc", wy, x.astype(np.float64), wx, optimize=True)
    assert np.abs(resize(x, out_hw) - reference).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("resize", [resize_area, resize_bilinear])
@pytest.mark.parametrize("out_hw", [(32, 32), (7, 5), (600, 450)])
def test_resize_of_constant_is_constant(resize, out_hw):
    img = np.full((2, 400, 300, 3), 77, np.uint8)
    out = resize(img, out_hw)
    assert out.shape == (2, *out_hw, 3) and out.dtype == np.uint8
    assert np.all(out == 77)


@pytest.mark.parametrize("in_hw, out_hw", [((64, 64), (16, 16)), ((50, 40), (8, 7)), ((400, 400), (32, 32))])
def test_resize_area_keeps_a_single_pixel_mass(in_hw, out_hw):
    img = np.zeros((*in_hw, 1), np.uint8)
    img[in_hw[0] // 3, in_hw[1] // 2 + 1] = 255
    out = resize_area(img, out_hw).astype(np.float64)
    ratio = in_hw[0] * in_hw[1] / (out_hw[0] * out_hw[1])
    touched = 4  # a pixel straddles at most 2 x 2 output pixels, each rounded by <= 0.5
    assert abs(out.sum() * ratio - 255) <= 0.5 * touched * ratio


def test_small_object_survives_area_but_not_bilinear():
    img = np.zeros((400, 400, 3), np.uint8)
    img[0:3, 0:3] = 255  # a 3 x 3 blob between bilinear's sample points (5.75, 18.25, ...)
    area, bilinear = resize_area(img, (32, 32)), resize_bilinear(img, (32, 32))
    assert area.sum() > 0 and area[0, 0, 0] == round(9 * 255 / 12.5**2)
    assert bilinear.sum() == 0


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_area(np.zeros((4, 4, 3), np.float32), (2, 2))
    with pytest.raises(ValueError, match="shape"):
        resize_area(np.zeros((4, 4), np.uint8), (2, 2))
    with pytest.raises(ValueError, match="out_hw"):
        resize_area(np.zeros((4, 4, 3), np.uint8), (0, 2))


def test_crops():
    f = np.zeros((400, 600, 3), np.uint8)
    assert crop_frame(f, "center").shape == (400, 400, 3)
    assert crop_frame(f, "full").shape == (400, 600, 3)
    assert crop_frame(f, "pad").shape == (600, 600, 3)
    assert crop_frame(f, (100, 400, 150, 450)).shape == (300, 300, 3)


# -- frame source --------------------------------------------------------------------------------------------


def test_shapes_dtypes_and_content():
    eps = list(LunarLanderFrames(**SMALL))
    assert len(eps) == 3
    for frames, actions, rewards in eps:
        assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
        assert actions.shape == (4,) and actions.dtype == np.int64 and set(actions) <= {0, 1, 2, 3}
        assert rewards.shape == (4,) and rewards.dtype == np.float32
    f = eps[0].frames[0].astype(int)
    assert f[-2:].mean() > 200  # white terrain at the bottom
    assert f[4:10].mean() < 20  # black sky
    assert ((f[..., 2] - f[..., 0]) > 40).any()  # the purple lander is visible


def test_deterministic_and_seed_dependent():
    src = LunarLanderFrames(**SMALL)
    assert_same_episodes(list(src), list(src))
    other = list(LunarLanderFrames(**{**SMALL, "seed": 1}))
    assert not np.array_equal(list(src)[0].frames, other[0].frames)


def test_episodes_can_end_early_and_stride_applies():
    eps = list(LunarLanderFrames(**VARIED))
    lengths = [len(e.frames) for e in eps]
    assert all(1 <= n <= 16 for n in lengths)
    assert len(set(lengths)) > 1, "expected a crash before the cap in this seed's episodes"


@pytest.mark.parametrize("num_envs", [2, 3, 6])
def test_vector_envs_match_single_env(num_envs):
    reference = list(LunarLanderFrames(**VARIED))
    assert_same_episodes(reference, list(LunarLanderFrames(**VARIED, num_envs=num_envs)))


def test_async_vector_envs_match_single_env():
    kwargs = dict(resolution=16, frames_per_episode=3, episodes=3, seed=2)
    reference = list(LunarLanderFrames(**kwargs))
    assert_same_episodes(reference, list(LunarLanderFrames(**kwargs, num_envs=2, vectorization_mode="async")))


def test_heuristic_policy_runs_and_is_deterministic():
    src = LunarLanderFrames(**SMALL, policy="heuristic", epsilon=0.2)
    eps = list(src)
    assert len(eps) == 3 and eps[0].frames.shape == (4, 16, 16, 3)
    assert_same_episodes(eps, list(src))
    pure = list(LunarLanderFrames(**SMALL, policy="heuristic"))
    assert_same_episodes(pure[:1], list(LunarLanderFrames(**SMALL, policy="heuristic", num_envs=2))[:1])


@pytest.fixture()
def env_spy(monkeypatch):
    """Counts what the frame source does to gymnasium: vector envs made and closed, and per sub-env
    ``FrameCapture`` resets, steps, renders and closes."""
    counts = Counter()
    make = LunarLanderFrames._make_vector_env

    def spy_make(self):
        envs = make(self)
        counts["made"] += 1
        close = envs.close

        def spy_close(**kwargs):
            counts["closed"] += 1
            return close(**kwargs)

        envs.close = spy_close
        return envs

    def spy(name):
        method = getattr(FrameCapture, name)

        def wrapper(self, *args, **kwargs):
            counts[name] += 1
            return method(self, *args, **kwargs)

        monkeypatch.setattr(FrameCapture, name, wrapper)

    monkeypatch.setattr(LunarLanderFrames, "_make_vector_env", spy_make)
    for name in ("reset", "step", "frame", "close"):
        spy(name)
    return counts


def test_endless_stream_and_early_close(env_spy):
    it = iter(LunarLanderFrames(resolution=8, frames_per_episode=2, num_envs=2))
    first = [next(it) for _ in range(5)]
    assert [len(e.frames) for e in first] == [2] * 5  # endless: episodes=None never runs dry
    assert env_spy["made"] == 1 and env_spy["closed"] == 0 and env_spy["close"] == 0  # still open mid-stream
    it.close()  # runs the generator's finally: closes the vector env and both gymnasium envs in it
    assert env_spy["closed"] == 1 and env_spy["close"] == 2
    with pytest.raises(StopIteration):
        next(it)
    # a stream that runs out closes them too, and so does dropping a half-read iterator
    assert len(list(LunarLanderFrames(resolution=8, frames_per_episode=2, episodes=2))) == 2
    assert env_spy["made"] == 2 and env_spy["closed"] == 2 and env_spy["close"] == 3
    it = iter(LunarLanderFrames(resolution=8, frames_per_episode=2))
    next(it)
    del it
    assert env_spy["made"] == 3 and env_spy["closed"] == 3 and env_spy["close"] == 4


def test_construction_is_lazy_and_picklable(env_spy):
    src = LunarLanderFrames(**SMALL, num_envs=2, crop="full")
    clone = pickle.loads(pickle.dumps(src))
    assert clone == src and src.frame_shape == (16, 16, 3)
    it = iter(LunarLanderFrames(**SMALL))
    assert sum(env_spy.values()) == 0  # building, pickling and iter() make no env and render nothing
    for k in (1, 2):
        episode = next(it)
        assert len(episode.frames) == SMALL["frames_per_episode"]
        # only the k episodes pulled were played: one reset each, one step per kept frame, and one render per
        # reset and step (the last render shows the state after the episode's last kept action)
        assert env_spy["made"] == 1 and env_spy["reset"] == k
        assert env_spy["step"] == k * 4 and env_spy["frame"] == k * 5
    it.close()
    assert env_spy["reset"] == 2 and env_spy["step"] == 8 and env_spy["closed"] == 1  # nothing after the close


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 0},
        {"frames_per_episode": 0},
        {"episodes": -1},
        {"seed": -1},
        {"policy": "greedy"},
        {"num_envs": 0},
        {"frame_stride": 0},
        {"crop": "square"},
        {"crop": (0, 500, 0, 600)},
        {"epsilon": 1.5},
        {"vectorization_mode": "threads"},
    ],
)
def test_argument_validation(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):  # the message names the argument
        LunarLanderFrames(**kwargs)


def test_feeds_the_loader():
    loader = IteratorDataLoader(LunarLanderFrames(**SMALL), batch_size=5)
    batches = list(loader)
    assert len(batches) == 2 and batches[0].shape == (5, 16 * 16 * 3)
    assert loader.image_shape == (16, 16, 3)


class FakeClock:
    """Stands in for the ``time`` module: ``perf_counter`` returns the given readings, once each, and logs
    each reading in ``events``."""

    def __init__(self, events: list[str], *readings: float):
        self.events, self.readings = events, iter(readings)

    def perf_counter(self) -> float:
        self.events.append("clock")
        return next(self.readings)  # a third reading would raise: the rate is read off exactly two


def test_frames_per_second_counts_frames_over_the_clock(monkeypatch):
    """The rate is (frames in the first n episodes) / (clock at the end - clock at the start)."""
    events = []

    class Source:
        iterators = []  # held here, so only an explicit close (not garbage collection) runs the finally

        def __iter__(self):
            def episodes():
                try:
                    for k in (3, 1, 4, 2, 5):
                        events.append(f"pull {k}")
                        yield np.zeros((k, 2, 2, 3), np.uint8), np.zeros(k, np.int64), np.zeros(k, np.float32)
                finally:
                    events.append("close")

            self.iterators.append(episodes())
            return self.iterators[-1]

    monkeypatch.setattr(lunarlander, "time", FakeClock(events, 100.0, 102.5))
    assert frames_per_second(Source(), 3) == (3 + 1 + 4) / 2.5
    # the clock starts before the source does (start-up included); 3 episodes pulled, none ahead; closed
    assert events[0] == "clock" and events.count("clock") == 2
    assert [e for e in events if e != "clock"] == ["pull 3", "pull 1", "pull 4", "close"]
    monkeypatch.setattr(lunarlander, "time", FakeClock([], 0.0, 4.0))
    assert frames_per_second(Source(), 8) == 15 / 4.0  # a source with fewer episodes: all of its frames
    monkeypatch.setattr(lunarlander, "time", FakeClock([], 7.0, 9.0))
    assert frames_per_second(LunarLanderFrames(resolution=8, frames_per_episode=2), 3) == 3 * 2 / 2.0
