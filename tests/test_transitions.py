"""World-model transitions (issue 9, data side): lunarlander.transitions and loader.TransitionLoader."""

from __future__ import annotations

import numpy as np
import pytest

from dtm_lite.core.encoding import Encoding, encode
from dtm_lite.data.loader import IteratorDataLoader, TransitionLoader
from dtm_lite.data.lunarlander import LunarLanderFrames, Transition, Transitions, make_env, transitions

N_ID_BITS = 8


def frame(k: int) -> np.ndarray:
    return ((k >> np.arange(N_ID_BITS)) & 1).astype(np.uint8).reshape(1, N_ID_BITS, 1) * 255


def stack(ks) -> np.ndarray:
    return np.stack([frame(int(k)) for k in ks])


def ids(batch: np.ndarray) -> np.ndarray:
    return batch.astype(np.int64) @ (1 << np.arange(N_ID_BITS))


# -- LunarLander transitions ----------------------------------------------------------------------------------

# long sparse episodes (each action held for the 4 steps): some crash early, so lengths differ (24, 24, 21, 19, 16)
SOURCE = dict(resolution=16, frames_per_episode=24, frame_stride=4, repeat_actions=True, episodes=5, seed=4)


@pytest.fixture(scope="module")
def pairs_and_episodes():
    src = LunarLanderFrames(**SOURCE)
    return list(transitions(src)), list(src)


def test_transitions_pair_consecutive_frames_within_episodes(pairs_and_episodes):
    pairs, episodes = pairs_and_episodes
    assert all(isinstance(p, Transition) for p in pairs)
    assert len({len(e.frames) for e in episodes}) > 1  # some episodes ended before frames_per_episode
    assert len(pairs) == sum(len(e.frames) >= 2 for e in episodes)
    for p, e in zip(pairs, [e for e in episodes if len(e.frames) >= 2], strict=True):
        m = len(e.frames) - 1
        assert p.frames.shape == p.next_frames.shape == (m, 16, 16, 3) and p.actions.shape == (m,)
        assert p.frames.dtype == p.next_frames.dtype == np.uint8 and p.actions.dtype == np.int64
        np.testing.assert_array_equal(p.next_frames[:-1], p.frames[1:])  # frame_t+1 of item i is frame_t of i+1
        np.testing.assert_array_equal(p.frames, e.frames[:-1])
        np.testing.assert_array_equal(p.next_frames, e.frames[1:])
        np.testing.assert_array_equal(p.actions, e.actions[:-1])
    # no pair crosses an episode boundary: every (frame_t, frame_t1) is consecutive inside one episode
    inside = {(e.frames[i].tobytes(), e.frames[i + 1].tobytes()) for e in episodes for i in range(len(e.frames) - 1)}
    rows = [(a.tobytes(), b.tobytes()) for p in pairs for a, b in zip(p.frames, p.next_frames, strict=True)]
    assert len(rows) == sum(len(e.frames) - 1 for e in episodes) and set(rows) <= inside
    ends = zip(episodes[:-1], episodes[1:], strict=True)
    crossing = {(a.frames[-1].tobytes(), b.frames[0].tobytes()) for a, b in ends}
    assert not crossing & set(rows)


def test_transitions_are_deterministic_and_reiterable(pairs_and_episodes):
    pairs, _ = pairs_and_episodes
    stream = transitions(LunarLanderFrames(**SOURCE))
    assert isinstance(stream, Transitions)
    for _ in range(2):
        for a, b in zip(stream, pairs, strict=True):
            for u, v in zip(a, b, strict=True):
                np.testing.assert_array_equal(u, v)


def replay(source: LunarLanderFrames, episode: int, actions: np.ndarray) -> np.ndarray:
    """Frames seen when the env of ``episode`` plays each of ``actions`` for ``frame_stride`` steps.

    Rendered every ``frame_stride`` steps only, as in the stream: rendering ages the engine particles."""
    env = make_env(source.resolution, source.crop, source.frame_stride)
    _, info = env.reset(seed=source.seed + episode)
    out = [info["frame"]]
    for a in actions:
        for _ in range(source.frame_stride):
            _, _, terminated, truncated, info = env.step(int(a))
            assert not (terminated or truncated)
        out.append(info["frame"])
    env.close()
    return np.stack(out)


@pytest.mark.parametrize("stride, repeat", [(1, False), (3, True)])
def test_the_action_leads_from_frame_t_to_frame_t1(stride, repeat):
    """Replaying each recorded action for the stride from the episode's seed reproduces next_frames."""
    src = LunarLanderFrames(resolution=16, frames_per_episode=6, episodes=2, frame_stride=stride, repeat_actions=repeat)
    for e, p in enumerate(transitions(src)):
        replayed = replay(src, e, p.actions)
        np.testing.assert_array_equal(replayed[:-1], p.frames)
        np.testing.assert_array_equal(replayed[1:], p.next_frames)


def test_repeat_actions_holds_each_action_and_stride_without_it_is_refused():
    with pytest.raises(ValueError, match="frame_stride=2 without repeat_actions.*repeat_actions=True"):
        transitions(LunarLanderFrames(frame_stride=2))
    with pytest.raises(ValueError, match="LunarLanderFrames source"):
        transitions([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat_actions must be True or False"):
        LunarLanderFrames(repeat_actions="yes")  # type: ignore[arg-type]
    # with stride 1 repeating changes nothing
    a = list(LunarLanderFrames(resolution=8, frames_per_episode=5, episodes=2))
    b = list(LunarLanderFrames(resolution=8, frames_per_episode=5, episodes=2, repeat_actions=True))
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


# -- TransitionLoader -----------------------------------------------------------------------------------------


def toy_transitions(n_items: int = 6, per_item: int = 5) -> list:
    """Frame k -> action k % 4 -> frame k + 1, in stacks and as single transitions."""
    items: list = []
    for i in range(n_items):
        ks = np.arange(i * per_item, (i + 1) * per_item)
        if i % 3 == 2:
            items.extend((frame(int(k)), int(k % 4), frame(int(k) + 1)) for k in ks)
        elif i % 3 == 1:
            items.append((stack(ks), np.eye(4, dtype=np.int64)[ks % 4], stack(ks + 1)))
        else:
            items.append((stack(ks), ks % 4, stack(ks + 1)))
    return items


@pytest.mark.parametrize("shuffle_buffer", [0, 9])
def test_transition_batches_keep_their_rows_together(shuffle_buffer):
    loader = TransitionLoader(toy_transitions(), batch_size=4, n_actions=4, shuffle_buffer=shuffle_buffer, seed=1)
    batches = list(loader)
    assert len(batches) == 7  # 30 transitions / 4, the last 2 dropped
    seen = []
    for before, actions, after in batches:
        assert before.shape == after.shape == (4, N_ID_BITS) and before.dtype == after.dtype == np.uint8
        assert actions.dtype == np.int32 and actions.shape == (4,)
        np.testing.assert_array_equal(ids(after), ids(before) + 1)
        np.testing.assert_array_equal(actions, ids(before) % 4)
        seen.extend(ids(before).tolist())
    assert len(set(seen)) == 28 and (seen == list(range(28))) == (shuffle_buffer == 0)
    assert loader.n_bits == N_ID_BITS


def test_transition_loader_on_lunarlander_matches_the_pairs(pairs_and_episodes):
    pairs, _ = pairs_and_episodes
    enc = Encoding("binary", (16, 16, 3))
    loader = TransitionLoader(transitions(LunarLanderFrames(**SOURCE)), 8, n_actions=4, encoding=enc, drop_last=False)
    out = list(loader)
    before, actions, after = (np.concatenate(parts) for parts in zip(*out, strict=True))
    np.testing.assert_array_equal(before, enc.encode(np.concatenate([p.frames for p in pairs])))
    np.testing.assert_array_equal(after, enc.encode(np.concatenate([p.next_frames for p in pairs])))
    np.testing.assert_array_equal(actions, np.concatenate([p.actions for p in pairs]))
    raw = list(TransitionLoader(transitions(LunarLanderFrames(**SOURCE)), 8, n_actions=4, encode=False))
    assert raw[0][0].shape == (8, 16, 16, 3) and np.array_equal(encode(raw[0][2], 1), after[:8])


def terror(items, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        list(TransitionLoader(items, batch_size=2, n_actions=4, **kwargs))
    return str(info.value)


def test_transition_loader_errors_name_the_item():
    ok = (stack([0, 1]), np.array([0, 1]), stack([1, 2]))
    assert "stream item 1, frame 1 has action 4, outside 0..3 (n_actions=4)" in terror(
        [ok, (stack([0, 1]), np.array([0, 4]), stack([1, 2]))]
    )
    assert "stream item 0 has 2 frames but 3 actions" in terror([(stack([0, 1]), np.array([0, 1, 2]), stack([1, 2]))])
    assert "frames_t has shape (2, 1, 8, 1) but frames_t1 (3, 1, 8, 1)" in terror(
        [(stack([0, 1]), np.array([0, 1]), stack([1, 2, 3]))]
    )
    assert "stream item 1 is ndarray" in terror([ok, stack([0, 1])]) and "IteratorDataLoader" in terror([stack([0])])
    bad = np.full((2, 1, 8, 1), 2.0, np.float32)
    assert "stream item 0 (frames_t1), frame 0 has float values" in terror([(stack([0, 1]), np.array([0, 1]), bad)])
    with pytest.raises(ValueError, match="n_actions"):
        TransitionLoader([], batch_size=2, n_actions=0)


def test_iterator_loader_points_transitions_to_the_transition_loader():
    with pytest.raises(ValueError, match="elements 0 and 2 are both frames.*use TransitionLoader"):
        list(IteratorDataLoader(toy_transitions(), batch_size=2))
