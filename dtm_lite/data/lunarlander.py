"""LunarLander frames as a deterministic stream of small RGB episodes, plus exact area resizing.

``LunarLanderFrames`` renders gymnasium's ``LunarLander-v3`` (``render_mode="rgb_array"``, 400 x 600 x 3),
crops it to a square, shrinks it with ``resize_area`` and yields one ``Episode`` per episode:
``(frames uint8 (n, res, res, 3), actions int64 (n,), rewards float32 (n,))``; with ``label="zone"`` or
``label="phase"`` a ``LabeledEpisode`` ``(frames, actions, rewards, labels int64 (n,))`` instead, the labels
read from the simulator's state at each frame (``LunarLanderFrames.LABEL_KINDS``). ``transitions(source)``
turns the episodes into world-model transitions ``(frames_t, actions, frames_t1)``.

The crop (``crop="center"``, the default) keeps the full height and the middle 400 columns (x in
100..500) of the 400 x 600 render: the lander starts at the top centre, the landing pad between the flags
sits at x in 240..360 and the terrain fills the bottom, so the whole flight space of a sensible descent,
the pad and the ground are in view with square pixels. A lander that drifts far sideways (the random
policy does) can leave the crop; ``crop="full"`` squeezes the whole 600-wide frame into the square instead
(aspect ratio 1.5 : 1 distorted), ``crop="pad"`` letterboxes it with black sky rows (a third of the pixels
wasted), and ``crop=(top, bottom, left, right)`` takes any pixel box.

Area resizing is what keeps the ~30 x 20 pixel lander alive at 32 x 32: each output pixel is the exact
average of the input area it covers (fractional edge pixels weighted by their overlap), so a small bright
object keeps its total brightness. Naive bilinear resampling (``resize_bilinear``) reads a few input pixels
per output pixel and can drop the lander altogether.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

import numpy as np

from dtm_lite.core.validation import check_int
from dtm_lite.optional import require

if TYPE_CHECKING:  # gymnasium is the optional ``lunarlander`` extra: imported where an env is made (_gymnasium)
    import gymnasium as gym

RENDER_HW = (400, 600)  # LunarLander-v3 rgb_array frames are (400, 600, 3)
N_ACTIONS = 4  # noop, left engine, main engine, right engine
POLICIES = ("random", "heuristic")
CROPS = ("center", "full", "pad")
VECTORIZATION_MODES = ("sync", "async")
# the simulator state captured with each frame (FrameCapture, info["lander_state"]); x, y in world units
STATE_FIELDS = ("x", "y", "helipad_x1", "helipad_x2", "leg0_contact", "leg1_contact", "game_over", "awake")
HELIPAD_RENDER_X = (240.0, 360.0)  # the pad's flags in render pixels: helipad_x1 * SCALE, helipad_x2 * SCALE

# heuristic() only reads env.unwrapped.continuous; a stub lets it run for envs living in worker processes
_DISCRETE_ENV = SimpleNamespace(unwrapped=SimpleNamespace(continuous=False))


def _gymnasium() -> ModuleType:
    """gymnasium, once its Box2D physics imports too (``LunarLander-v3`` needs both); else an ImportError
    naming ``pip install 'dtm_lite[lunarlander]'`` (gymnasium without Box2D would only fail at ``gym.make``)."""
    need = dict(extra="lunarlander", what="LunarLander frames", package="gymnasium[box2d]")
    require("Box2D", **need)
    return require("gymnasium", **need)


# -----------------------------------------------------------------------------
# resizing


@functools.lru_cache(maxsize=64)
def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """Row-stochastic ``(n_out, n_in)`` float32 matrix: output i averages the input span [i s, (i + 1) s).

    With ``s = n_in / n_out``, input pixel j covers [j, j + 1) and its weight is the overlap length
    divided by s, so partly covered edge pixels count fractionally and every row sums to 1.
    """
    _check_size(n_in, "input size")
    _check_size(n_out, "output size")
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    hi = lo + scale
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(j + 1, hi) - np.maximum(j, lo), 0.0, None)
    w = (overlap / scale).astype(np.float32)
    w.setflags(write=False)
    return w


@functools.lru_cache(maxsize=64)
def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float32 plain bilinear interpolation at output pixel centres, no prefilter."""
    _check_size(n_in, "input size")
    _check_size(n_out, "output size")
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    j0 = np.floor(src).astype(np.int64)
    j1 = np.minimum(j0 + 1, n_in - 1)
    frac = src - j0
    w = np.zeros((n_out, n_in), np.float64)
    np.add.at(w, (np.arange(n_out), j0), 1.0 - frac)
    np.add.at(w, (np.arange(n_out), j1), frac)
    w = w.astype(np.float32)
    w.setflags(write=False)
    return w


def resize_area(frames: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Exact area-average resize of uint8 frames ``(..., H, W, C)`` -> uint8 ``(..., h, w, C)``.

    Separable: ``out = Wy @ frames @ Wx^T`` with the box-overlap matrices of ``area_weights``, rounded to
    the nearest integer. Brightness mass is kept: ``out.sum() * (H W) / (h w) == frames.sum()`` up to
    rounding (at most 0.5 per output value). Works for upsampling too (then it is nearest/box-like).
    """
    return _separable_resize(frames, out_hw, area_weights)


def resize_bilinear(frames: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Naive bilinear resize of uint8 frames ``(..., H, W, C)`` -> uint8 ``(..., h, w, C)``, for comparison.

    Samples the input at each output pixel centre from its 2 x 2 neighbours, without the antialiasing
    prefilter (like ``jax.image.resize(antialias=False)`` or OpenCV's INTER_LINEAR). When shrinking by more
    than 2x most input pixels get no weight at all, so thin or small objects can vanish. (Pillow's
    ``Image.resize(BILINEAR)`` widens its kernel when downsampling and so behaves much like ``resize_area``.)
    """
    return _separable_resize(frames, out_hw, bilinear_weights)


def _separable_resize(frames: np.ndarray, out_hw: tuple[int, int], weights_fn) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise ValueError(
            f"resize expects uint8 frames, got dtype {arr.dtype}; convert floats in [0, 1] with "
            "np.rint(x * 255).astype(np.uint8)"
        )
    if arr.ndim < 3:
        raise ValueError(f"resize expects frames of shape (..., H, W, C), got shape {arr.shape}")
    oh, ow = _check_hw(out_hw)
    h, w = arr.shape[-3], arr.shape[-2]
    y = _apply_banded(arr, _banded(weights_fn, h, oh), "ob,...obwc->...owc", axis=-3)  # (..., oh, w, c)
    z = _apply_banded(y, _banded(weights_fn, w, ow), "pb,...opbc->...opc", axis=-2)  # (..., oh, ow, c)
    return np.clip(np.rint(z), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=128)
def _banded(weights_fn, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``weights_fn(n_in, n_out)`` as (indices, weights), both ``(n_out, band)``: each row's nonzero band.

    Resampling matrices are banded (a 400 -> 32 area row has 14 nonzeros), so gathering the band and
    summing is ~10x less work than a dense product, and it avoids BLAS, whose threads stall under CPU
    contention (a 32 x 400 x 1200 matmul took 16 ms with two OpenBLAS threads on a busy 2-core box).
    """
    weights = weights_fn(n_in, n_out)
    nonzero = weights != 0
    first = nonzero.argmax(1)
    band = max(1, int((n_in - nonzero[:, ::-1].argmax(1) - first).max()))
    idx = first[:, None] + np.arange(band)
    inside = idx < n_in
    idx = np.minimum(idx, n_in - 1)
    w = np.where(inside, np.take_along_axis(weights, idx, 1), 0).astype(np.float32)
    return idx, w


def _apply_banded(x: np.ndarray, banded: tuple[np.ndarray, ...], spec: str, axis: int) -> np.ndarray:
    """Contract ``x`` along ``axis`` with a banded matrix: gather each output's band, weight, sum."""
    idx, w = banded
    gathered = np.take(x, idx, axis=axis).astype(np.float32, copy=False)
    return np.einsum(spec, w, gathered)


def crop_frame(frames: np.ndarray, crop: str | tuple[int, int, int, int] = "center") -> np.ndarray:
    """Square-ish view of render frames ``(..., 400, 600, C)`` according to ``crop`` (see module docstring).

    ``"center"`` -> ``(..., 400, 400, C)``; ``"full"`` -> unchanged (the resize squeezes it);
    ``"pad"`` -> ``(..., 600, 600, C)`` with 100 black rows above and below; a box ``(top, bottom, left,
    right)`` -> ``frames[..., top:bottom, left:right, :]``.
    """
    h, w = frames.shape[-3], frames.shape[-2]
    if crop == "center":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return frames[..., top : top + side, left : left + side, :]
    if crop == "full":
        return frames
    if crop == "pad":
        side = max(h, w)
        pad = [(0, 0)] * (frames.ndim - 3) + [((side - h) // 2, side - h - (side - h) // 2)]
        pad += [((side - w) // 2, side - w - (side - w) // 2), (0, 0)]
        return np.pad(frames, pad)
    if isinstance(crop, str):
        raise ValueError(f"crop must be one of {CROPS} or a box (top, bottom, left, right), got {crop!r}")
    top, bottom, left, right = crop
    return frames[..., top:bottom, left:right, :]


def _check_size(n: int, what: str) -> int:
    return check_int(what, n, 1)


def _check_hw(out_hw: tuple[int, int]) -> tuple[int, int]:
    if not isinstance(out_hw, tuple | list) or len(out_hw) != 2:
        raise ValueError(f"out_hw must be a pair (height, width), got {out_hw!r}")
    for n in out_hw:
        _check_size(n, "out_hw entries")
    return int(out_hw[0]), int(out_hw[1])


def _check_crop(crop) -> None:
    if isinstance(crop, str):
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS} or a box (top, bottom, left, right), got {crop!r}")
        return
    ok = isinstance(crop, tuple | list) and len(crop) == 4 and all(isinstance(v, int) for v in crop)
    if ok:
        top, bottom, left, right = crop
        ok = 0 <= top < bottom <= RENDER_HW[0] and 0 <= left < right <= RENDER_HW[1]
    if not ok:
        raise ValueError(
            f"crop box must be integers (top, bottom, left, right) with 0 <= top < bottom <= {RENDER_HW[0]} "
            f"and 0 <= left < right <= {RENDER_HW[1]}, got {crop!r}"
        )


# -----------------------------------------------------------------------------
# environments


class Episode(NamedTuple):
    """One episode: ``frames`` uint8 (n, res, res, 3), ``actions`` int64 (n,), ``rewards`` float32 (n,).

    ``actions[i]`` is the action taken in the state shown by ``frames[i]`` and ``rewards[i]`` the reward
    that action earned. It is a tuple, so ``frames, actions, rewards = episode`` works.
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


class LabeledEpisode(NamedTuple):
    """An ``Episode`` with one class label per frame: ``labels`` int64 (n,), from the simulator state that
    ``frames[i]`` shows (see ``LunarLanderFrames.LABEL_KINDS``). A 4-tuple ``(frames, actions, rewards,
    labels)``: ``IteratorDataLoader(..., n_classes=K)`` batches the labels with their frames."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    labels: np.ndarray


class Transition(NamedTuple):
    """World-model transitions of one episode: ``next_frames[i]`` is the frame recorded after ``frames[i]``
    when ``actions[i]`` was taken (held for the ``frame_stride`` steps between them). ``frames`` and
    ``next_frames`` uint8 (m, res, res, 3), ``actions`` int64 (m,). A 3-tuple, as ``TransitionLoader``
    reads it."""

    frames: np.ndarray
    actions: np.ndarray
    next_frames: np.ndarray


def state_labels(states: np.ndarray, kind: str) -> np.ndarray:
    """Class labels int64 (n,) of simulator states float (n, 8) (fields ``STATE_FIELDS``, as ``FrameCapture``
    records them); ``kind`` is one of ``LunarLanderFrames.LABEL_KINDS``:

    * ``"zone"``: where the lander is across the screen relative to the landing pad (between the flags):
      0 left of it (``x < helipad_x1``), 1 over it (``helipad_x1 <= x <= helipad_x2``), 2 right of it.
    * ``"phase"``: 0 flying (no leg touches the ground), 1 touching down (exactly one leg does), 2 standing
      (both legs do).
    """
    st = np.asarray(states, np.float64).reshape(-1, len(STATE_FIELDS))
    if kind == "zone":
        x, x1, x2 = st[:, 0], st[:, 2], st[:, 3]
        return np.where(x < x1, 0, np.where(x <= x2, 1, 2)).astype(np.int64)
    if kind == "phase":
        return ((st[:, 4] > 0).astype(np.int64) + (st[:, 5] > 0)).astype(np.int64)
    raise ValueError(f"label kind must be one of {tuple(LunarLanderFrames.LABEL_KINDS)}, got {kind!r}")


@functools.cache
def _frame_capture_class() -> Callable[..., gym.Wrapper]:
    """``FrameCapture``, defined on first use: its base class ``gymnasium.Wrapper`` comes with the optional
    ``lunarlander`` extra (``_gymnasium``)."""
    _gymnasium()
    import gymnasium as gym

    class FrameCapture(gym.Wrapper):
        """Puts the cropped, area-resized render into ``info["frame"]`` (uint8 (res, res, 3)), and the simulator
        state it shows into ``info["lander_state"]`` (float64 (8,), fields ``STATE_FIELDS``).

        On reset, and after every ``stride``-th step unless the episode just ended (the terminal state is
        never shown, since no action is taken from it). Rendering inside the env lets ``AsyncVectorEnv``
        workers render and shrink in parallel and ship only the small frame.
        """

        def __init__(self, env: gym.Env, resolution: int, crop: str | tuple[int, int, int, int], stride: int):
            super().__init__(env)
            self.resolution, self.crop, self.stride = resolution, crop, stride
            self._t = 0

        def frame(self) -> np.ndarray:
            """The current state as uint8 (res, res, 3)."""
            frame = cast(np.ndarray, self.env.render())  # an rgb_array env (make_env) renders one array
            return resize_area(crop_frame(frame, self.crop), (self.resolution, self.resolution))

        def state(self) -> np.ndarray:
            """The current simulator state as float64 ``(8,)``, fields ``STATE_FIELDS`` (booleans as 0 / 1)."""
            env: Any = self.env.unwrapped  # gymnasium's LunarLander: its Box2D bodies are not typed
            lander, legs = env.lander, env.legs
            return np.array(
                [lander.position.x, lander.position.y, env.helipad_x1, env.helipad_x2,
                 legs[0].ground_contact, legs[1].ground_contact, env.game_over, lander.awake],
                np.float64,
            )  # fmt: skip

        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            self._t = 0
            return obs, {**info, "frame": self.frame(), "lander_state": self.state()}

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            self._t += 1
            if not (terminated or truncated) and self._t % self.stride == 0:
                info = {**info, "frame": self.frame(), "lander_state": self.state()}
            return obs, reward, terminated, truncated, info

    FrameCapture.__module__, FrameCapture.__qualname__ = __name__, "FrameCapture"  # pickled by reference
    return FrameCapture


def __getattr__(name: str) -> Any:
    """``FrameCapture`` (a ``gymnasium.Wrapper``) is built on first access, so that importing this module
    needs no gymnasium."""
    if name == "FrameCapture":
        return _frame_capture_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_env(resolution: int, crop: str | tuple[int, int, int, int], stride: int) -> gym.Env:
    """``LunarLander-v3`` (discrete actions, rgb_array rendering) wrapped in ``FrameCapture``."""
    gym = _gymnasium()
    return _frame_capture_class()(gym.make("LunarLander-v3", render_mode="rgb_array"), resolution, crop, stride)


@dataclass
class _Running:
    """Book-keeping of the episode a vector-env slot is playing."""

    index: int
    rng: np.random.Generator
    frame: np.ndarray | None = None  # state the next action is taken from (recorded if the step is kept)
    state: np.ndarray | None = None  # the simulator state that frame shows (FrameCapture's lander_state)
    action: int = 0  # the last action chosen (held between kept steps with repeat_actions)
    t: int = 0
    kept: bool = False
    frames: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def episode(self, label: str | None = None) -> Episode | LabeledEpisode:
        episode = Episode(
            np.stack(self.frames),
            np.asarray(self.actions, np.int64),
            np.asarray(self.rewards, np.float32),
        )
        if label is None:
            return episode
        return LabeledEpisode(*episode, state_labels(np.stack(self.states), label))


@dataclass(frozen=True)
class LunarLanderFrames:
    """Deterministic, re-iterable stream of LunarLander episodes ``(frames, actions, rewards)``, or
    ``(frames, actions, rewards, labels)`` with ``label=``.

    Each ``iter()`` starts over and yields the same ``Episode``s: episode e (0, 1, 2, ...) resets the env
    with seed ``seed + e`` and draws actions from ``np.random.default_rng([seed, e])``. An episode has
    ``n <= frames_per_episode`` frames: fewer when the lander crashes, lands or times out first (the
    terminal state itself is not included). ``frame_stride = k`` keeps the frames of steps 0, k, 2k, ...
    (with the action taken and reward earned at those steps; the other steps are played but not recorded).

    Args:
        resolution: output side; frames are (resolution, resolution, 3) uint8.
        frames_per_episode: cap on frames per episode.
        episodes: number of episodes per iteration; None streams forever.
        seed: non-negative base seed.
        policy: ``"random"`` (uniform over the 4 actions) or ``"heuristic"`` (gymnasium's scripted lander,
            taking a uniform random action with probability ``epsilon`` instead).
        num_envs: episodes played at once by a gymnasium vector env; the output is identical for any value.
        frame_stride: keep every k-th step's frame.
        crop: ``"center"`` (default), ``"full"``, ``"pad"`` or a pixel box; see the module docstring.
        epsilon: random-action probability of the heuristic policy (ignored by ``"random"``).
        vectorization_mode: ``"sync"`` (all envs in this process; the default, and the faster one on a
            2-core machine: ~500 frames/s at 32 x 32 for 1 or 2 envs vs ~300-430 async) or ``"async"`` (one
            worker process per env, started with ``forkserver`` so a parent already running JAX threads is
            safe; worth it with more cores than envs).
        label: None (the default: ``Episode``s), or a label kind of ``LABEL_KINDS``: the stream then yields
            ``LabeledEpisode``s whose ``labels`` int64 (n,) are read from the simulator state each frame shows
            (never from its pixels), with ``LABEL_KINDS[label]`` classes:

            * ``"zone"`` (3): the lander's position across the screen relative to the landing pad between
              the flags (``helipad_x1 <= x <= helipad_x2``, render columns 240..360, ``pad_columns`` in
              output pixels): 0 left of the pad, 1 over it, 2 right of it. Visible in the picture: at 32 x 32
              the lander blob's centre column (``metrics.object_stats``) lies in the labelled zone in all
              of the frames where it is more than 1 pixel from a border (588 of 588, 30 random episodes)
              and in 99.4% of all frames with a visible lander.
            * ``"phase"`` (3): 0 flying (no leg on the ground), 1 touching down (one leg on the ground),
              2 standing (both legs). A crashed or resting lander (``game_over``, or the body asleep) ends
              the episode in that very step and the terminal state is never recorded, so it cannot label
              a frame. A random policy seldom touches down (about 2% of frames); the heuristic one lands.
        repeat_actions: False (the default): the policy picks an action every step. True: it picks one at
            each kept step and holds it for the ``frame_stride`` steps until the next kept frame, so
            ``actions[i]`` is the action taken during all the steps from ``frames[i]`` to ``frames[i + 1]``
            (what ``transitions`` needs with ``frame_stride > 1``). The same with ``frame_stride = 1``.

    No environment exists until iteration starts; they are closed when the iterator is exhausted, closed
    or garbage collected, so the object is cheap to build and pickle.
    """

    resolution: int = 32
    frames_per_episode: int = 32
    episodes: int | None = None
    seed: int = 0
    policy: str = "random"
    num_envs: int = 1
    frame_stride: int = 1
    crop: str | tuple[int, int, int, int] = "center"
    epsilon: float = 0.0
    vectorization_mode: str = "sync"
    label: str | None = None
    repeat_actions: bool = False

    LABEL_KINDS: ClassVar[dict[str, int]] = {"zone": 3, "phase": 3}  # label kind -> number of classes

    def __post_init__(self) -> None:
        for name in ("resolution", "frames_per_episode", "num_envs", "frame_stride"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), 1))
        if self.episodes is not None:  # None: endless
            object.__setattr__(self, "episodes", check_int("episodes", self.episodes, 0))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0))
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon is a probability and must lie in [0, 1], got {self.epsilon!r}")
        if self.vectorization_mode not in VECTORIZATION_MODES:
            raise ValueError(
                f"vectorization_mode must be one of {VECTORIZATION_MODES}, got {self.vectorization_mode!r}"
            )
        _check_crop(self.crop)
        if self.label is not None and self.label not in self.LABEL_KINDS:
            raise ValueError(f"label must be None or one of {tuple(self.LABEL_KINDS)}, got {self.label!r}")
        if not isinstance(self.repeat_actions, bool | np.bool_):
            raise ValueError(f"repeat_actions must be True or False, got {self.repeat_actions!r}")
        _gymnasium()  # fail here, not at the first episode, without the lunarlander extra

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(resolution, resolution, 3)."""
        return (self.resolution, self.resolution, 3)

    @property
    def n_classes(self) -> int | None:
        """Number of label classes (``LABEL_KINDS[label]``), None without labels: pass it to
        ``IteratorDataLoader(..., n_classes=source.n_classes)``."""
        return None if self.label is None else self.LABEL_KINDS[self.label]

    def render_column(self, render_x: float) -> float:
        """Where render column ``render_x`` (0..600, continuous) lands in an output frame, in output pixels
        (continuous: output pixel j spans [j, j + 1)); outside [0, resolution] when the crop cuts it off."""
        if self.crop == "center":
            left, width = (RENDER_HW[1] - RENDER_HW[0]) // 2, RENDER_HW[0]
        elif self.crop in ("full", "pad"):  # "pad" adds rows only: the frame is wider than tall
            left, width = 0, RENDER_HW[1]
        else:
            _, _, left, right = cast(tuple[int, int, int, int], self.crop)
            width = right - left
        return (float(render_x) - left) * self.resolution / width

    @property
    def pad_columns(self) -> tuple[float, float]:
        """The landing pad's left and right edges (the flags) in output pixels (continuous), e.g. (11.2,
        20.8) at 32 x 32 with the centre crop: the borders of the ``"zone"`` label in the picture."""
        return self.render_column(HELIPAD_RENDER_X[0]), self.render_column(HELIPAD_RENDER_X[1])

    def __iter__(self) -> Generator[Episode | LabeledEpisode, None, None]:
        return self._generate()

    def _make_vector_env(self) -> gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv:
        gym = _gymnasium()
        from gymnasium.vector import AutoresetMode

        fn = functools.partial(make_env, self.resolution, self.crop, self.frame_stride)
        fns = [fn] * self.num_envs
        if self.vectorization_mode == "async":
            return gym.vector.AsyncVectorEnv(fns, context="forkserver", autoreset_mode=AutoresetMode.DISABLED)
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)

    def _act(self, run: _Running, obs: np.ndarray) -> int:
        if self.policy == "random" or (self.epsilon > 0 and run.rng.random() < self.epsilon):
            return int(run.rng.integers(N_ACTIONS))
        from gymnasium.envs.box2d.lunar_lander import heuristic  # after _gymnasium() in _make_vector_env

        return int(heuristic(_DISCRETE_ENV, obs))

    def _generate(self) -> Generator[Episode | LabeledEpisode, None, None]:
        """Play episodes in ``num_envs`` slots; a finished slot starts the next episode; yield in order."""
        envs = self._make_vector_env()
        slots = _Slots(self)
        finished: dict[int, Episode | LabeledEpisode] = {}  # episode index -> episode, until its turn comes
        next_out = 0
        try:
            every_slot = list(range(self.num_envs))
            obs, info = envs.reset(seed=slots.assign(every_slot))
            slots.take_frames(info, every_slot)
            while slots.playing():
                obs, reward, terminated, truncated, info = envs.step(slots.act(obs))
                to_reset = slots.advance(reward, terminated, truncated, info, finished)
                while next_out in finished:
                    yield finished.pop(next_out)
                    next_out += 1
                if to_reset:
                    mask = np.zeros(self.num_envs, bool)
                    mask[to_reset] = True
                    obs, info = envs.reset(seed=slots.assign(to_reset), options={"reset_mask": mask})
                    slots.take_frames(info, to_reset)
        finally:
            envs.close()


class _Slots:
    """The ``num_envs`` vector-env slots of :meth:`LunarLanderFrames._generate`: the episode each slot plays
    (a ``_Running``, or None when idle), episodes handed out in order 0, 1, 2, ... up to ``source.episodes``."""

    def __init__(self, source: LunarLanderFrames) -> None:
        self.source = source
        self.runs: list[_Running | None] = [None] * source.num_envs
        self.next_index = 0

    def playing(self) -> bool:
        """Whether any slot still plays an episode that will be recorded."""
        return any(run is not None for run in self.runs)

    def assign(self, ids: list[int]) -> list[int | None]:
        """Start the next episodes in slots ``ids``; the reset seeds of every slot (None: not reset, or idle).
        Episode e resets with seed ``seed + e`` and draws its actions from ``default_rng([seed, e])``."""
        src = self.source
        seeds: list[int | None] = [None] * src.num_envs
        for i in ids:
            if src.episodes is None or self.next_index < src.episodes:
                e = self.next_index
                self.next_index += 1
                self.runs[i] = _Running(e, np.random.default_rng([int(src.seed), e]))
                seeds[i] = int(src.seed) + e
            else:
                self.runs[i] = None  # idle: the env keeps playing an unseeded episode nobody records
        return seeds

    def take_frames(self, info: dict, ids: list[int]) -> None:
        """The frames and lander states that slots ``ids`` show after a reset."""
        for i in ids:
            run = self.runs[i]
            if run is not None:
                run.frame, run.state = info["frame"][i], info["lander_state"][i]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Every slot's action ``(num_envs,)`` int64 (0 for idle slots); a kept step's frame, state and action
        are recorded. With ``repeat_actions`` a new action is chosen only at kept steps."""
        src = self.source
        actions = np.zeros(src.num_envs, np.int64)
        for i, run in enumerate(self.runs):
            if run is None:
                continue
            run.kept = run.t % src.frame_stride == 0
            if run.kept or not src.repeat_actions:
                run.action = src._act(run, obs[i])
            actions[i] = run.action
            if run.kept:
                assert run.frame is not None and run.state is not None  # set when the episode began
                run.frames.append(run.frame)
                run.states.append(run.state)
                run.actions.append(actions[i])
        return actions

    def advance(
        self,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: dict,
        finished: dict[int, Episode | LabeledEpisode],
    ) -> list[int]:
        """Record a step's rewards and new frames; put the episodes that ended (the env's episode ended, or
        ``frames_per_episode`` frames are kept) into ``finished`` by index. Returns the slots to reset."""
        src = self.source
        has_frame = info.get("_frame", np.zeros(src.num_envs, bool))
        to_reset = []
        for i, run in enumerate(self.runs):
            done = bool(terminated[i] or truncated[i])
            if run is not None:
                run.t += 1
                if run.kept:
                    run.rewards.append(reward[i])
                if has_frame[i]:
                    run.frame, run.state = info["frame"][i], info["lander_state"][i]
                if done or (run.kept and len(run.frames) == src.frames_per_episode):
                    finished[run.index] = run.episode(src.label)
                    done = True
            if done:
                to_reset.append(i)
        return to_reset


# -----------------------------------------------------------------------------
# world-model transitions


@dataclass(frozen=True)
class Transitions:
    """Re-iterable stream of ``Transition``s, one per episode of ``source`` with at least 2 frames: the
    pairs ``(frames[i], actions[i], frames[i + 1])`` for ``i < n - 1``. Pairs never cross an episode
    boundary, and the last frame of an episode (whose next state was terminal or not kept) is only ever a
    ``next_frames`` entry. Deterministic for ``source``'s seed. Built by ``transitions(source)``."""

    source: LunarLanderFrames
    history: int = 1

    def __iter__(self) -> Generator[Transition, None, None]:
        it = iter(self.source)
        h = self.history
        try:
            for episode in it:
                frames, actions = episode[0], episode[1]
                if len(frames) < h + 1:
                    continue
                if h == 1:
                    yield Transition(frames[:-1], actions[:-1], frames[1:])
                else:  # frames_t[i]: the h frames up to and including frame i (oldest first)
                    idx = np.arange(h - 1, len(frames) - 1)
                    window = idx[:, None] + np.arange(-h + 1, 1)
                    yield Transition(frames[window], actions[idx], frames[idx + 1])
        finally:
            it.close()  # closes the environments when the consumer stops early


def transitions(source: LunarLanderFrames, history: int = 1) -> Transitions:
    """World-model transitions ``(frames_t, actions_t, frames_t1)`` of ``source``'s episodes, one
    ``Transition`` per episode (see ``Transitions``); feed them to ``dtm_lite.data.loader.TransitionLoader``.

    ``history = F > 1``: ``frames_t`` holds the F frames up to t, ``(m, F, H, W, C)`` oldest first (a world
    model with ``DTMConfig(cond_frames=F)`` sees the velocity as well as the position); episodes shorter than
    F + 1 frames give none.

    ``actions_t`` must be the action that led from ``frames_t`` to ``frames_t1``. With ``frame_stride = 1``
    it is; with ``frame_stride = k > 1`` the ``k - 1`` unrecorded steps in between need the same action,
    so ``source`` must have ``repeat_actions=True`` (the policy holds each action for the k steps); without
    it the source is refused.
    """
    if not isinstance(source, LunarLanderFrames):
        raise ValueError(f"transitions needs a LunarLanderFrames source, got {type(source).__name__}")
    history = check_int("history", history, 1)
    if source.frame_stride > 1 and not source.repeat_actions:
        raise ValueError(
            f"source has frame_stride={source.frame_stride} without repeat_actions: only the first of the "
            f"{source.frame_stride} actions between two frames is recorded, so (frame_t, action, frame_t1) "
            "would be wrong; build the source with repeat_actions=True (each action held for the stride) "
            "or frame_stride=1"
        )
    return Transitions(source, history)


# -----------------------------------------------------------------------------
# benchmark


def frames_per_second(source: LunarLanderFrames, n_episodes: int = 8) -> float:
    """Frames/s delivered by ``source`` over its first ``n_episodes`` episodes, env start-up included."""
    _check_size(n_episodes, "n_episodes")
    t0 = time.perf_counter()
    count = 0
    it = iter(source)
    for k, episode in enumerate(it):
        count += len(episode[0])
        if k + 1 == n_episodes:
            break
    it.close()
    return count / (time.perf_counter() - t0)


# -----------------------------------------------------------------------------
# the training stream and the hold-out of `python -m dtm_lite train` (one owner for their seeds; their sizes
# and the run's other settings: dtm_lite.data.lunarlander_settings)

TRAIN_FRAMES_PER_EPISODE = 32  # frames kept from each training episode
EPOCH_SEED_STRIDE = 1_000_003  # training episodes of run seed s start at seed s * EPOCH_SEED_STRIDE
HOLDOUT_SEED_BASE = 10**9  # hold-out episodes of seed s start at HOLDOUT_SEED_BASE + s: never trained on
HOLDOUT_FRAMES_PER_EPISODE = 4  # frames kept from each hold-out episode
HOLDOUT_STRIDE_FACTOR = 8  # hold-out frames are HOLDOUT_STRIDE_FACTOR * frame_stride steps apart


def training_stream(
    resolution: int,
    epoch: int,
    episodes_per_epoch: int,
    seed: int,
    policy: str = "random",
    num_envs: int = 1,
    frame_stride: int = 2,
    process_index: int = 0,
    process_count: int = 1,
) -> LunarLanderFrames:
    """The episodes of training epoch ``epoch`` of a run with seed ``seed``, as ``python -m dtm_lite train``
    streams them: ``episodes_per_epoch`` episodes of up to 32 frames (every ``frame_stride``-th step) whose
    env seeds start at ``seed * 1_000_003 + epoch * episodes_per_epoch``: every epoch plays fresh episodes,
    and runs with different seeds share none in their first 1_000_003 episodes. Deterministic and
    re-iterable (a ``LunarLanderFrames``).

    Multi-host training: process ``process_index`` of ``process_count`` plays only its own contiguous
    ``episodes_per_epoch / process_count`` of the epoch's episodes (env seeds ``first + process_index * share
    ..``), so no two processes see the same episode; ``episodes_per_epoch`` must be a multiple of
    ``process_count``. (The shares' union has the one-process epoch's env seeds, but a random policy draws
    its actions per stream, so its episodes differ from the one-process run's.)"""
    process_count = check_int("process_count", process_count, 1)
    process_index = check_int("process_index", process_index, 0, process_count - 1)
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
    _check_size(episodes_per_epoch, "episodes_per_epoch")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    first = int(seed) * EPOCH_SEED_STRIDE + int(epoch) * int(episodes_per_epoch)
    if episodes_per_epoch % process_count:
        raise ValueError(
            f"episodes_per_epoch {episodes_per_epoch} is not divisible by the {process_count} processes that "
            f"share them: use a multiple of {process_count}"
        )
    share = int(episodes_per_epoch) // process_count
    return LunarLanderFrames(
        resolution=resolution, frames_per_episode=TRAIN_FRAMES_PER_EPISODE, episodes=share,
        seed=first + process_index * share, policy=policy, num_envs=num_envs, frame_stride=frame_stride,
    )  # fmt: skip


def holdout_stream(
    resolution: int, episodes: int, seed: int = 0, policy: str = "random", frame_stride: int = 2
) -> LunarLanderFrames:
    """The hold-out episodes of ``python -m dtm_lite train``: ``episodes`` episodes of env seeds from
    ``10**9 + seed`` (never in a training stream), 4 frames each, ``8 * frame_stride`` steps apart.

    A few frames from many episodes, spread over the steps the training frames cover (32 x
    ``frame_stride``), so the two halves of the hold-out are close to independent samples of the training
    frames' distribution. ``frame_stride`` is the training stream's stride."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_size(frame_stride, "frame_stride")
    return LunarLanderFrames(
        resolution=resolution, frames_per_episode=HOLDOUT_FRAMES_PER_EPISODE, episodes=episodes,
        seed=HOLDOUT_SEED_BASE + int(seed), policy=policy, frame_stride=HOLDOUT_STRIDE_FACTOR * frame_stride,
    )  # fmt: skip


def holdout_frames(
    resolution: int, episodes: int, seed: int = 0, policy: str = "random", frame_stride: int = 2
) -> np.ndarray:
    """The frames of ``holdout_stream(resolution, episodes, seed, policy, frame_stride)`` concatenated:
    uint8 ``(n, resolution, resolution, 3)`` with ``n <= 4 * episodes`` (an episode that ends early gives
    fewer). What ``python -m dtm_lite train`` evaluates on."""
    _check_size(episodes, "episodes")
    return np.concatenate([ep.frames for ep in holdout_stream(resolution, episodes, seed, policy, frame_stride)])
