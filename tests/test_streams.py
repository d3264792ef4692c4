"""The LunarLander training stream and hold-out of `python -m dtm_lite train` have one owner:
``lunarlander.training_stream`` and ``lunarlander.holdout_frames``; the CLI, the widgets and the figures use them."""

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dtm_lite.data import lunarlander
from dtm_lite.data.lunarlander import LunarLanderFrames, holdout_frames, holdout_stream, training_stream
from dtm_lite.interface import cli, figures, widgets


def test_training_stream_seeds_and_shapes():
    stream = training_stream(16, 3, 2, seed=5)
    # the documented seeds: seed * 1_000_003 + epoch * episodes_per_epoch, 32 frames an episode, every 2nd step
    assert stream == LunarLanderFrames(
        resolution=16, frames_per_episode=32, episodes=2, seed=5 * 1_000_003 + 3 * 2, frame_stride=2
    )
    assert training_stream(16, 0, 2, seed=5).seed + 2 == training_stream(16, 1, 2, seed=5).seed  # fresh each epoch
    custom = training_stream(16, 1, 2, seed=0, policy="heuristic", num_envs=2, frame_stride=3)
    assert (custom.seed, custom.policy, custom.num_envs, custom.frame_stride) == (2, "heuristic", 2, 3)
    episodes = list(stream)
    assert len(episodes) == 2
    for ep in episodes:
        assert ep.frames.dtype == np.uint8 and ep.frames.shape[1:] == (16, 16, 3) and 1 <= len(ep.frames) <= 32


def test_holdout_frames_seeds_and_shapes():
    assert holdout_stream(16, 2, seed=3) == LunarLanderFrames(
        resolution=16, frames_per_episode=4, episodes=2, seed=10**9 + 3, frame_stride=16
    )
    assert holdout_stream(16, 2, frame_stride=3, policy="heuristic").frame_stride == 24
    held = holdout_frames(16, 2, seed=3)
    assert held.dtype == np.uint8 and held.shape[1:] == (16, 16, 3) and 1 <= len(held) <= 8
    expected = np.concatenate([ep.frames for ep in holdout_stream(16, 2, seed=3)])
    assert np.array_equal(held, expected)
    assert not np.array_equal(held, holdout_frames(16, 2, seed=4)[: len(held)])  # other seeds, other frames


@pytest.mark.parametrize(
    "call",
    [
        lambda: training_stream(16, -1, 2, seed=0),
        lambda: training_stream(16, 0, 0, seed=0),
        lambda: training_stream(16, 0, 2, seed=-1),
        lambda: holdout_frames(16, 0),
        lambda: holdout_frames(16, 2, seed=-1),
        lambda: holdout_frames(16, 2, frame_stride=0),
    ],
)
def test_bad_arguments_are_rejected(call):
    with pytest.raises(ValueError):
        call()


def _spies(monkeypatch) -> dict[str, list]:
    """Record the calls of training_stream / holdout_frames; the hold-out is a small stand-in array."""
    calls: dict[str, list] = {"training_stream": [], "holdout_frames": []}
    real = lunarlander.training_stream

    def stream_spy(*args, **kwargs):
        calls["training_stream"].append((args, kwargs))
        return real(*args, **kwargs)

    def holdout_spy(*args, **kwargs):
        calls["holdout_frames"].append((args, kwargs))
        return np.zeros((4, 16, 16, 3), np.uint8)

    monkeypatch.setattr(lunarlander, "training_stream", stream_spy)
    monkeypatch.setattr(lunarlander, "holdout_frames", holdout_spy)
    return calls


def test_cli_train_takes_its_stream_and_holdout_from_lunarlander(monkeypatch, tmp_path):
    calls = _spies(monkeypatch)
    got: dict = {}

    class FakeDTM:
        encoding = None
        state = SimpleNamespace(step=0)
        batches_trained = 0

        def train_from_iterator(self, epochs, factory, batches, holdout=None, **kwargs):
            got["holdout"] = holdout
            got["streams"] = [factory(epoch).data_iterator for epoch in range(epochs)]
            return []

    s = dict(
        image_shape=(16, 16, 3), episodes_per_epoch=3, holdout_episodes=5, seed=7, policy="heuristic", num_envs=2,
        frame_stride=3, batch_size=10, batches_per_epoch=2, shuffle_buffer=16, epochs=2, evaluate_every=0, quick=True,
        n_classes=0, n_actions=0, cond_frames=1,
    )  # fmt: skip
    cli._train(FakeDTM(), s, tmp_path, argparse.Namespace(resume=False, no_progress=True))
    assert calls["holdout_frames"] == [((16, 5), dict(seed=7, policy="heuristic", frame_stride=3))]
    assert got["holdout"].shape == (4, 16, 16, 3)  # what holdout_frames returned
    assert got["streams"] == [
        training_stream(16, epoch, 3, 7, policy="heuristic", num_envs=2, frame_stride=3) for epoch in range(2)
    ]
    assert len(calls["training_stream"]) == 2
    # the numbers `make train` has always used: seeds 7 * 1_000_003 + epoch * 3 and from 10**9 + 7, every 24th step
    assert [st.seed for st in got["streams"]] == [7_000_021, 7_000_024]
    assert holdout_stream(16, 5, seed=7, frame_stride=3) == LunarLanderFrames(
        resolution=16, frames_per_episode=4, episodes=5, seed=10**9 + 7, frame_stride=24
    )


def test_tiny_model_trains_on_epoch_zero_of_the_cli_stream(monkeypatch):
    calls = _spies(monkeypatch)
    got = {}

    def fake_train(dtm, epochs, factory, batches, **kwargs):
        got["stream"] = factory(0).data_iterator

    monkeypatch.setattr("dtm_lite.training.loop.train_from_iterator", fake_train)
    widgets.train_tiny_model(batches=2, seed=3)
    assert got["stream"] == training_stream(16, 0, 4 * 2 + 8, 3)
    assert got["stream"].seed == 3 * 1_000_003 and len(calls["training_stream"]) == 1


def test_figures_hold_out_uses_holdout_frames_with_its_own_seed(monkeypatch, tmp_path):
    class Stop(Exception):
        pass

    def spy(*args, **kwargs):
        raise Stop((args, kwargs))

    fake = SimpleNamespace(config=SimpleNamespace(image_shape=(16, 16, 3)))
    monkeypatch.setattr(figures, "load_model", lambda model: (fake, "fake"))
    monkeypatch.setattr("dtm_lite.interface.plots.model_label", lambda *args: "fake")
    monkeypatch.setattr(figures, "holdout_frames", spy)
    with pytest.raises(Stop) as stopped:
        figures.make_figures(Path(tmp_path), tmp_path / "figs", model="fake")
    assert stopped.value.args[0] == ((16, 64), dict(seed=12345))  # episodes from 10**9 + 12345, as before
