"""The Denoising Thermodynamic Model: T conditional Ising EBMs, trained step by step, sampled in a chain.

Step k models ``p(x_{t_k} | x_{t_{k+1}})`` on one grid graph (reference section 5):

    E_k(s) = - Σ_E W_ij s_i s_j - Σ_i b_i s_i - J_k Σ_{v visible} s_in,v s_v,     p ∝ exp(-β E_k).

The input spins ``s_in`` (the noisier image) are fixed, so they enter as per-chain biases ``J_k s_in``
on the visible sites. Each step's W, b are trained with Boltzmann-machine gradients (section 7):

    Δb_i  = β (⟨s_i⟩₊ - ⟨s_i⟩₋)
    ΔW_ij = β (⟨s_i s_j⟩₊ - ⟨s_i s_j⟩₋) - λ_cp Cov₋(i, j),

positive phase (+) with the visible spins clamped to ``x_start``, negative phase (-) free, both with
the inputs clamped to ``x_end``. All T steps train together in one vmapped computation, and the two
phases of a step share one batched run of the sampler (2 x batch chains).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import sampler as smp
from .capacity import check_capacity
from .diffusion import SCHEDULES, couplings, time_grid, training_pair
from .encoding import ENCODINGS, LUNARLANDER_COLORS, PALETTE_CODES, Encoding, Palette, palette_colors
from .files import atomic_write
from .graph import GridGraph, preset_name
from .validation import check_beta, check_bool, check_float, check_int

PLACEMENTS = ("spatial", "planes", "raster", "random")
MAX_SEED = 2**64 - 1  # config.seed and integer keys: 0 .. MAX_SEED (see seed_key)
# generate() runs its chains in chunks of at most this much estimated working memory (DTM.generate)
GENERATE_CHUNK_BYTES = 1 << 30


@dataclass(frozen=True)
class DTMConfig:
    """Everything that defines a DTM and its training; validated on construction.

    Defaults are the seed's LunarLander configuration: 32x32 RGB binary on 80_12, one log-schedule
    step, batch 50, 300 warm-up sweeps then 30 samples 6 sweeps apart, 400 generation sweeps with β
    ramped 0.8 -> 1.2, learning rate 0.03 with cosine decay (counted in batches) to 0.2 of it.

    Encoding (``dtm_lite.encoding.Encoding``): ``encoding`` is ``"binary"`` (``threshold``, 1 bit a
    channel value), ``"thermometer"`` (``grayscale_levels`` bits a channel value) or ``"palette"``
    (nearest of ``palette``'s RGB colours in [0, 1] to the pixel binarised at ``threshold``, so that blends
    never snap to a mid-tone colour; ``palette_code`` ``"binary"``: ceil(log2 K) bits a
    pixel, or ``"onehot"``: K bits a pixel; needs C = 3). Left unset (None) it is ``"binary"`` for
    ``grayscale_levels == 1`` and ``"thermometer"`` otherwise, which is what configs saved before the
    field existed meant.

    Correlation penalty (section 7.6, :mod:`dtm_lite.regularization`): ``corr_penalty`` is the initial
    λ_cp; with ``adaptive_penalty`` it starts at ``max(corr_penalty, corr_penalty_min)`` and follows the
    held-out autocorrelation against ``autocorr_tau`` once per epoch (``corr_penalty_min`` = 1e-3, the
    research code's ``cp_min``).
    """

    image_shape: tuple[int, int, int] = (32, 32, 3)
    preset: str = "80_12"
    encoding: str | None = None
    grayscale_levels: int = 1
    threshold: float = 0.5
    palette: tuple[tuple[float, float, float], ...] = LUNARLANDER_COLORS
    palette_code: str = "binary"
    num_diffusion_steps: int = 1
    schedule: str = "log"
    diffusion_offset: float = 0.1
    image_rate: float = 0.8
    placement: str = "spatial"
    beta: float = 1.0
    batch_size: int = 50
    steps_warmup: int = 300
    n_samples: int = 30
    steps_per_sample: int = 6
    generation_sweeps: int = 400
    generation_beta: tuple[float, float] = (0.8, 1.2)
    learning_rate: float = 0.03
    lr_decay_batches: int = 2000
    lr_final_fraction: float = 0.2
    weight_decay: float = 0.0
    corr_penalty: float = 0.0
    adaptive_penalty: bool = False
    corr_penalty_min: float = 1e-3
    autocorr_tau: float = 0.016
    seed: int = 0

    def __post_init__(self) -> None:
        # every field is checked for its type as well as its range: NumPy scalars are accepted (and stored
        # as plain Python numbers), bools are never numbers, strings never booleans, NaN / inf never valid
        shape = self.image_shape
        if isinstance(shape, str | bytes) or not isinstance(shape, Sequence | np.ndarray) or len(shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C) with positive integer sizes, got {shape!r}")
        sizes = tuple(check_int(f"image_shape[{i}]", v, 1) for i, v in enumerate(shape))
        object.__setattr__(self, "image_shape", sizes)
        object.__setattr__(self, "preset", preset_name(self.preset))
        ints = {
            "grayscale_levels": 1, "num_diffusion_steps": 1, "batch_size": 1, "steps_warmup": 0,
            "n_samples": 1, "steps_per_sample": 1, "generation_sweeps": 1, "lr_decay_batches": 1,
        }  # fmt: skip
        for name, lo in ints.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, MAX_SEED))
        floats = {  # name: (lo, hi, lo_open, hi_open)
            "threshold": (0, 1, False, True), "diffusion_offset": (0, 1, False, True),
            "image_rate": (0, None, True, False), "beta": (0, None, True, False),
            "learning_rate": (0, None, True, False), "lr_final_fraction": (0, 1, True, False),
            "weight_decay": (0, None, False, False), "corr_penalty": (0, None, False, False),
            "corr_penalty_min": (0, None, False, False), "autocorr_tau": (0, None, True, False),
        }  # fmt: skip
        for name, (lo, hi, lo_open, hi_open) in floats.items():
            v = check_float(name, getattr(self, name), lo, hi, lo_open=lo_open, hi_open=hi_open)
            object.__setattr__(self, name, v)
        object.__setattr__(self, "adaptive_penalty", check_bool("adaptive_penalty", self.adaptive_penalty))
        object.__setattr__(self, "generation_beta", check_beta("generation_beta", self.generation_beta))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        self._check_encoding()
        if self.schedule == "linear":
            warnings.warn(
                "a linear schedule never reaches pure noise, yet generation starts from Bernoulli(0.5) "
                "inputs; prefer schedule='log'",
                stacklevel=3,
            )

    def _check_encoding(self) -> None:
        """Resolve ``encoding=None`` (binary / thermometer by level count) and validate the encoding fields."""
        if self.encoding is None:
            object.__setattr__(self, "encoding", "binary" if self.grayscale_levels == 1 else "thermometer")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.encoding == "binary" and self.grayscale_levels != 1:
            raise ValueError(
                f"encoding='binary' has 1 bit a channel value, but grayscale_levels={self.grayscale_levels}; "
                "use encoding='thermometer' for several levels (or leave encoding unset)"
            )
        if self.encoding == "palette" and self.grayscale_levels != 1:
            raise ValueError(
                f"encoding='palette' codes whole pixels, so grayscale_levels must stay 1, got {self.grayscale_levels}"
            )
        if self.encoding == "palette" and self.image_shape[2] != 3:
            raise ValueError(f"encoding='palette' needs RGB frames: image_shape (H, W, 3), got {self.image_shape}")
        if self.palette_code not in PALETTE_CODES:
            raise ValueError(f"palette_code must be one of {PALETTE_CODES}, got {self.palette_code!r}")
        try:
            colors = palette_colors(tuple(tuple(float(v) for v in c) for c in self.palette))
            Palette(colors, self.palette_code)
        except (TypeError, ValueError) as err:
            raise ValueError(f"palette must be RGB colours (r, g, b) in [0, 1], at least two: {err}") from None
        object.__setattr__(self, "palette", colors)

    @property
    def n_visible(self) -> int:
        """Visible bits of one image: ``H * W * bits_per_pixel`` of the encoding."""
        return Encoding.from_config(self).n_bits

    @property
    def sweeps_per_phase(self) -> int:
        return smp.n_sweeps(self.steps_warmup, self.n_samples, self.steps_per_sample)

    def replace(self, **changes: Any) -> DTMConfig:
        """A copy with ``changes``. A new ``grayscale_levels`` without an ``encoding`` re-derives binary /
        thermometer from it, as the constructor does (a palette encoding is kept)."""
        if "grayscale_levels" in changes and "encoding" not in changes and self.encoding != "palette":
            changes["encoding"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DTMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DTMConfig fields {sorted(unknown)}")
        return cls(**d)


def seed_key(seed: int) -> jax.Array:
    """The JAX key of an integer seed in [0, MAX_SEED]: ``jax.random.key(seed)`` below 2**32; above, the
    high 32 bits are folded in, since 32-bit JAX keeps only the low ones (``key(2**32)`` is ``key(0)``)."""
    seed = check_int("seed", seed, 0, MAX_SEED)
    key = jax.random.key(seed & 0xFFFFFFFF)
    return jax.random.fold_in(key, seed >> 32) if seed >> 32 else key


def _as_key(key: Any, name: str = "key") -> jax.Array:
    """A JAX key from ``key``: a typed key (``jax.random.key``) as is, a legacy ``uint32[2]`` key
    (``jax.random.PRNGKey``) wrapped, an integer seed through :func:`seed_key`."""
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single JAX key, got keys of shape {key.shape}")
        return key
    if isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(jnp.asarray(key))
    if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
        if not 0 <= key <= MAX_SEED:
            raise ValueError(f"{name} must be a JAX key or an integer seed in [0, 2**64 - 1], got {key!r}")
        return seed_key(int(key))
    raise ValueError(f"{name} must be a JAX key (jax.random.key) or an integer seed >= 0, got {key!r}")


WEIGHTS_FORMAT = "dtm_lite-weights"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def pretrained_names() -> list[str]:
    """Names accepted by :meth:`DTM.pretrained` (the ``.npz`` files shipped in ``dtm_lite/pretrained``)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.npz"))


def place_visible(
    graph: GridGraph,
    image_shape: tuple[int, int, int],
    levels: int = 1,
    how: str = "spatial",
    seed: int = 0,
    *,
    bits_per_pixel: int | None = None,
) -> np.ndarray:
    """Which node hosts each visible bit: int array ``(n_bits,)`` of node indices.

    Pixel ``p = h * W + w`` owns the ``bits_per_pixel`` consecutive bits ``p * bpp .. p * bpp + bpp - 1``
    (default ``bpp = C * levels``, binary and thermometer codes; a palette passes its code's width), so
    ``n_bits = H * W * bpp``.

    - ``"raster"``: bit k on the k-th colour-0 site in raster order.
    - ``"spatial"`` (default): the image is laid over a centred block of the grid, just large enough to
      hold its bits at the colour-0 density, and each bit goes to the free colour-0 site nearest to its
      pixel's position (greedy, in bit order), so a pixel's bits sit together and neighbouring pixels
      on neighbouring sites.
    - ``"planes"``: bit t of every pixel's code forms its own H x W plane of *adjacent* sites (both
      colours), planes tiled side by side in a centred block: pixel (r, c)'s bit t sits at
      ``(r0 + (t // k) * H + r, c0 + (t % k) * W + c)`` with ``k = side // W`` planes a row. Neighbouring
      pixels' same bits are then joined by an edge of their own (a direct coupling W_ij), which is what
      lets a model hold a small object together (the lander); the other placements only couple them
      through a shared hidden site. The rest of the grid is hidden.
    - ``"random"``: a seeded random choice of colour-0 sites.

    All placements but ``"planes"`` use colour-0 sites only (reference section 3).
    """
    sites = np.flatnonzero(graph.colors == 0)
    h, w, c = image_shape
    bpp = c * levels if bits_per_pixel is None else int(bits_per_pixel)
    if bpp < 1:
        raise ValueError(f"bits_per_pixel must be >= 1, got {bits_per_pixel}")
    nb = h * w * bpp
    if how == "planes":
        return _plane_sites(graph, h, w, bpp)
    if nb > len(sites):
        raise ValueError(f"{nb} visible bits do not fit the {len(sites)} colour-0 sites of {graph!r}")
    if how == "raster":
        return sites[:nb].copy()
    if how == "random":
        return np.sort(np.random.default_rng(seed).choice(sites, nb, replace=False))
    pix = np.arange(nb) // bpp
    # pixel pitch on the grid: fill a centred block at the colour-0 density, never beyond the grid.
    pitch = min(graph.side / max(h, w), float(np.sqrt(2.0 * nb / (h * w))))
    ty = (pix // w + 0.5) * pitch + (graph.side - h * pitch) / 2 - 0.5
    tx = (pix % w + 0.5) * pitch + (graph.side - w * pitch) / 2 - 0.5
    sy, sx = np.divmod(sites, graph.side)
    free = np.ones(len(sites), bool)
    out = np.empty(nb, np.int64)
    for k in range(nb):
        d = (sy - ty[k]) ** 2 + (sx - tx[k]) ** 2
        d[~free] = np.inf
        j = int(np.argmin(d))
        free[j] = False
        out[k] = sites[j]
    return out


def _plane_sites(graph: GridGraph, h: int, w: int, bpp: int) -> np.ndarray:
    """Node of bit t of pixel (r, c) for the ``"planes"`` placement, in bit order ``(H * W * bpp,)``."""
    per_row = graph.side // w
    plane_rows = -(-bpp // per_row) if per_row else math.inf
    if plane_rows * h > graph.side:
        need = next((s for s in range(graph.side, 10 * graph.side) if (s // w) and -(-bpp // (s // w)) * h <= s), None)
        raise ValueError(
            f"placement 'planes' needs {bpp} planes of {h}x{w} sites side by side, which do not fit the "
            f"{graph.side}x{graph.side} grid of {graph!r}; use a preset "
            f"with side >= {need}, or placement='spatial'"
        )
    r0 = (graph.side - plane_rows * h) // 2
    c0 = (graph.side - min(bpp, per_row) * w) // 2
    k = np.arange(h * w * bpp)
    pix, bit = np.divmod(k, bpp)
    pr, pc = np.divmod(bit, per_row)
    return (r0 + pr * h + pix // w) * graph.side + (c0 + pc * w + pix % w)


@dataclass
class TrainState:
    """Trainable parameters ``W (T, n_edges)``, ``b (T, n_nodes)``, optimiser state and counters."""

    params: dict[str, jax.Array]
    opt_state: Any
    step: int = 0
    key: jax.Array = field(default_factory=lambda: jax.random.key(0))


class DTM:
    """A Denoising Thermodynamic Model on one grid graph. See the module docstring for the maths.

    >>> dtm = DTM(DTMConfig(image_shape=(8, 8, 1), preset="20_8", steps_warmup=20, n_samples=4))
    >>> metrics = dtm.train_step(bits)          # bits: (batch, 64) in {0, 1}
    >>> images = dtm.generate(16)               # (16, 8, 8, 1) in [0, 1]

    ``dtm.encoding`` (a :class:`~dtm_lite.encoding.Encoding` built from the config) owns frames <-> bits:
    ``dtm.encode``, ``dtm.decode`` and ``IteratorDataLoader(..., encoding=dtm.encoding)`` all go through it.
    """

    def __init__(self, config: DTMConfig | None = None, **overrides: Any) -> None:
        config = config or DTMConfig()
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        self.graph = GridGraph.from_preset(config.preset)
        self.encoding = Encoding.from_config(config)
        n_values, bits_each, unit = self.encoding.capacity_counts
        check_capacity(self.graph, n_values, bits_each, unit=unit)
        self.lattice = smp.lattice(self.graph)
        self.visible = place_visible(
            self.graph, config.image_shape, how=config.placement, seed=config.seed,
            bits_per_pixel=self.encoding.bits_per_pixel,
        )  # fmt: skip
        T = config.num_diffusion_steps
        self.times = time_grid(T, config.schedule)
        self.J = couplings(T, config.schedule, config.image_rate)
        # the adaptive rule starts each update from max(cp, cp_min) (section 7.6): train with that from batch 1
        cp0 = max(config.corr_penalty, config.corr_penalty_min) if config.adaptive_penalty else config.corr_penalty
        self.corr_penalty = np.full(T, float(cp0))
        self.lr_schedule = optax.cosine_decay_schedule(
            config.learning_rate, config.lr_decay_batches, config.lr_final_fraction
        )
        self.optimizer = optax.adamw(self.lr_schedule, b1=0.9, b2=0.999, weight_decay=config.weight_decay)
        params = {
            "W": jnp.zeros((T, self.graph.n_edges), jnp.float32),
            "b": jnp.zeros((T, self.graph.n_nodes), jnp.float32),
        }
        key, self._gen_key = jax.random.split(seed_key(config.seed))
        self.state = TrainState(params, self.optimizer.init(params), 0, key)
        self._train_fn = _make_train_fn(self)
        # generate(): (sweeps, record_every, return_trajectory); free_run(): ("free", sweeps, record_every)
        self._generate_fns: dict[tuple[int, int, bool] | tuple[str, int, int], Callable[..., Any]] = {}

    # ------------------------------------------------------------------ properties

    @property
    def params(self) -> dict[str, jax.Array]:
        return self.state.params

    @property
    def num_steps(self) -> int:
        return self.config.num_diffusion_steps

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DTM({c.image_shape} {self.encoding.describe()} = {c.n_visible} visible on {self.graph!r}, "
            f"T={c.num_diffusion_steps} {c.schedule}, trained {self.state.step} batches)"
        )

    # ------------------------------------------------------------------ data

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(..., H, W, C)`` -> visible bits ``(..., n_visible)`` with this model's encoding."""
        return self.encoding.encode(frames)

    def decode(self, bits: np.ndarray) -> np.ndarray:
        """Visible bits (or ±1 spins) ``(..., n_visible)`` -> images ``(..., H, W, C)`` in [0, 1]
        (a palette model: RGB in the palette's colours)."""
        return self.encoding.decode(bits)

    def check_batch(self, batch_bits: Any) -> np.ndarray:
        """Validate a batch of visible bits ``(batch_size, n_visible)`` in {0, 1}; returns it as uint8."""
        b = np.asarray(batch_bits)
        want = (self.config.batch_size, self.encoding.n_bits)
        if b.ndim != 2 or b.shape[1] != want[1]:
            raise ValueError(
                f"batch must be bits of shape (batch, {want[1]}) (image_shape {self.config.image_shape}, "
                f"{self.encoding.describe()}), got {b.shape}; encode frames with dtm.encode(frames), or build "
                "the loader with IteratorDataLoader(..., encoding=dtm.encoding) or encode=False"
            )
        if b.shape[0] != want[0]:
            raise ValueError(
                f"batch has {b.shape[0]} rows but config.batch_size is {want[0]}; use batches of that size "
                "(a new size would recompile the training step)"
            )
        if b.dtype == np.bool_:
            return b.astype(np.uint8)
        if not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
            raise ValueError(f"batch must be numeric bits in {{0, 1}}, got dtype {b.dtype}")
        if np.issubdtype(b.dtype, np.floating) and not np.all(np.isfinite(b)):
            raise ValueError("batch contains NaN or infinite values; bits must be 0 or 1")
        if not np.all((b == 0) | (b == 1)):
            raise ValueError("batch must contain only 0 and 1 (bits, not pixel values: use dtm.encode(frames))")
        return b.astype(np.uint8)

    # ------------------------------------------------------------------ training

    def train_step(self, batch_bits: Any) -> dict[str, float]:
        """One optimiser update of every diffusion step on one batch of visible bits ``(B, n_visible)``.

        Returns metrics averaged over steps: ``gap`` (mean |⟨s⟩₊ - ⟨s⟩₋| on visible sites, the
        data-vs-model magnetisation mismatch), ``grad_norm`` and ``lr``.
        """
        batch = jnp.asarray(self.check_batch(batch_bits))
        key, sub = jax.random.split(self.state.key)
        params, opt_state, metrics = self._train_fn(
            self.state.params, self.state.opt_state, sub, batch, jnp.asarray(self.corr_penalty, jnp.float32)
        )
        self.state = TrainState(params, opt_state, self.state.step + 1, key)
        out = {k: float(v) for k, v in jax.device_get(metrics).items()}
        out["lr"] = float(self.learning_rate(self.state.step - 1))
        return out

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate at ``step`` (default: the next batch): cosine decay counted in batches."""
        return float(self.lr_schedule(self.state.step if step is None else step))

    def train_from_iterator(
        self,
        n_epochs: int,
        data_iterator_factory: Any,
        batches_per_epoch: int,
        evaluate_every: int = 0,
        holdout: np.ndarray | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Streaming training with held-out evaluation, checkpoints and resume.
        See :func:`dtm_lite.training.train_from_iterator`."""
        from .training import train_from_iterator

        return train_from_iterator(
            self, n_epochs, data_iterator_factory, batches_per_epoch, evaluate_every, holdout, checkpoint_dir,
            resume, **kwargs,
        )  # fmt: skip

    # ------------------------------------------------------------------ generation

    @overload
    def generate(
        self,
        n: int,
        key: jax.Array | int | None = None,
        *,
        sweeps: int | None = None,
        beta: tuple[float, float] | None = None,
        return_trajectory: Literal[False] = False,
        record_every: int = 10,
        max_chunk_bytes: int | None = None,
    ) -> np.ndarray: ...

    @overload
    def generate(
        self,
        n: int,
        key: jax.Array | int | None = None,
        *,
        sweeps: int | None = None,
        beta: tuple[float, float] | None = None,
        return_trajectory: Literal[True],
        record_every: int = 10,
        max_chunk_bytes: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def generate(
        self,
        n: int,
        key: jax.Array | int | None = None,
        *,
        sweeps: int | None = None,
        beta: tuple[float, float] | None = None,
        return_trajectory: bool,
        record_every: int = 10,
        max_chunk_bytes: int | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...

    def generate(
        self,
        n: int,
        key: jax.Array | int | None = None,
        *,
        sweeps: int | None = None,
        beta: tuple[float, float] | None = None,
        return_trajectory: bool = False,
        record_every: int = 10,
        max_chunk_bytes: int | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Generate ``n`` images ``(n, H, W, C)`` in [0, 1], from Bernoulli(0.5) inputs through steps T-1..0.

        Each step runs ``sweeps`` block-Gibbs sweeps (default ``config.generation_sweeps``) with β ramped
        linearly over ``beta = (start, end)`` (finite, > 0; default ``config.generation_beta``); its last
        visible sample is the next step's input. ``key`` may be a JAX key or an integer seed >= 0; None
        continues the model's own generation stream (repeatable for a given ``config.seed``).

        With ``return_trajectory=True`` also returns the decoded visible state every ``record_every``
        sweeps of every step: ``(T * (sweeps // record_every + 1), n, H, W, C)``, noisiest step first.

        Memory: the chains run in chunks whose estimated working memory
        (:meth:`generation_bytes_per_chain` a chain) stays under ``max_chunk_bytes`` (default
        :data:`GENERATE_CHUNK_BYTES`, 1 GiB: about 3,500 chains on 80_12), so a large ``n`` never asks
        for one huge allocation. When ``n`` fits one chunk the result is exactly that of a single run
        with ``key``; otherwise chunk ``i`` (``ceil(n / chunks)`` chains, the last one fewer) runs with
        ``jax.random.fold_in(key, i)``: deterministic for a given key, ``n`` and budget, but not the images
        one big run would give, and another budget moves the chunk boundaries. The returned arrays
        themselves (``n * H * W * C`` float32 values, times the records for a trajectory) are not bounded.
        """
        n = check_int("n", n, 1)
        sweeps = self.config.generation_sweeps if sweeps is None else check_int("sweeps", sweeps, 1)
        b0, b1 = self.config.generation_beta if beta is None else check_beta("beta", beta)
        return_trajectory = check_bool("return_trajectory", return_trajectory)
        every = check_int("record_every", record_every, 1) if return_trajectory else sweeps
        if sweeps % every:
            raise ValueError(f"record_every must divide sweeps ({sweeps}), got {record_every}")
        budget = GENERATE_CHUNK_BYTES if max_chunk_bytes is None else check_int("max_chunk_bytes", max_chunk_bytes, 1)
        if key is None:
            self._gen_key, key = jax.random.split(self._gen_key)
        else:
            key = _as_key(key)
        spec = (sweeps, every, return_trajectory)
        if spec not in self._generate_fns:
            self._generate_fns[spec] = _make_generate_fn(self, *spec)
        fn = self._generate_fns[spec]
        betas = jnp.linspace(b0, b1, sweeps, dtype=jnp.float32)
        per_chain = self.generation_bytes_per_chain(sweeps, every if return_trajectory else None)
        n_chunks = -(-n // max(1, budget // per_chain))
        size = -(-n // n_chunks)  # at most two chunk sizes, so at most two compilations
        finals, trajs = [], []
        for i in range(n_chunks):
            m = min(size, n - i * size)
            final, traj = fn(self.state.params, key if n_chunks == 1 else jax.random.fold_in(key, i), betas, m)
            finals.append(self.decode(np.asarray(final)))
            if return_trajectory:
                trajs.append(self.decode(np.asarray(traj).reshape(-1, m, self.config.n_visible)))
            del final, traj
        images = finals[0] if n_chunks == 1 else np.concatenate(finals)
        if return_trajectory:
            return images, trajs[0] if n_chunks == 1 else np.concatenate(trajs, axis=1)
        return images

    def generation_bytes_per_chain(self, sweeps: int | None = None, record_every: int | None = None) -> int:
        """Estimated working memory of one chain of :meth:`generate`, in bytes: about 12 float32 values a
        node (spins, biases, uniforms and the field's temporaries; XLA's own count on CPU is 8-10), plus,
        with a trajectory recorded every ``record_every`` sweeps, 3 bytes a visible bit a record (the
        int8 records, their concatenation and the host copy)."""
        nbytes = 12 * 4 * self.graph.n_nodes
        if record_every is not None:
            sweeps = self.config.generation_sweeps if sweeps is None else sweeps
            nbytes += 3 * self.num_steps * (sweeps // record_every + 1) * self.config.n_visible
        return nbytes

    def free_run(
        self, step: int, inputs: np.ndarray, sweeps: int, key: jax.Array | int = 0, record_every: int = 1
    ) -> np.ndarray:
        """Free-running chains of diffusion step ``step`` with inputs clamped to ``inputs`` (bits
        ``(n, n_visible)``), at the training β: the visible bits every ``record_every`` sweeps,
        ``(sweeps // record_every + 1, n, n_visible)`` uint8, the first record being the initial state.
        This is what the autocorrelation diagnostic watches. ``key``: a JAX key or an integer seed >= 0."""
        step = check_int("step", step, 0, self.num_steps - 1)
        bits = np.asarray(inputs)
        if bits.ndim != 2 or bits.shape[1] != self.config.n_visible:
            raise ValueError(f"inputs must be bits of shape (n, {self.config.n_visible}), got {bits.shape}")
        sweeps = check_int("sweeps", sweeps, 1)
        record_every = check_int("record_every", record_every, 1)
        if sweeps % record_every:
            raise ValueError(f"record_every ({record_every}) must divide sweeps ({sweeps})")
        key = _as_key(key)
        spec = ("free", sweeps, record_every)
        if spec not in self._generate_fns:
            self._generate_fns[spec] = _make_free_run_fn(self, sweeps, record_every)
        params = jax.tree.map(lambda a: a[step], self.state.params)
        out = self._generate_fns[spec](
            params, jnp.float32(self.J[step]), jnp.asarray(2.0 * bits - 1.0, jnp.float32), key
        )
        return np.asarray(out)

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write parameters, optimiser state, config, counters and RNG state to ``path`` (.npz), atomically:
        a temporary file in the same folder, flushed and fsynced, then renamed over ``path``. A crash
        midway leaves the previous file intact. ``extra`` (JSON-serialisable) is stored alongside."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        leaves = jax.tree.leaves(self.state.opt_state)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "step": self.state.step,
            "corr_penalty": self.corr_penalty.tolist(),
            "extra": extra or {},
        }
        arrays = {
            "W": np.asarray(self.state.params["W"]),
            "b": np.asarray(self.state.params["b"]),
            "key": np.asarray(jax.random.key_data(self.state.key)),
            "gen_key": np.asarray(jax.random.key_data(self._gen_key)),
            "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
        }
        arrays.update({f"opt_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
        # numpy's stub types **kwds beside allow_pickle: bool, so a dict of arrays cannot match it
        return atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]

    def save_weights(self, path: str | os.PathLike) -> Path:
        """Write the parameters only (config, ``W``, ``b``, batches trained; no optimiser or RNG state) to
        ``path`` (.npz, compressed, atomic): what ships as package data for :meth:`pretrained`."""
        meta = {
            "format": WEIGHTS_FORMAT,
            "version": WEIGHTS_VERSION,
            "config": self.config.to_dict(),
            "step": self.state.step,
        }
        arrays: dict[str, np.ndarray] = {
            "W": np.asarray(self.state.params["W"], np.float32),
            "b": np.asarray(self.state.params["b"], np.float32),
            "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
        }
        # numpy's stub types **kwds beside allow_pickle: bool, so a dict of arrays cannot match it
        return atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]

    @classmethod
    def load_weights(cls, path: str | os.PathLike) -> DTM:
        """A DTM with the parameters written by :meth:`save_weights` (fresh optimiser state). A file that is
        not one (corrupt, truncated, foreign, a training checkpoint) raises ``ValueError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        meta, z = _read_archive(path)
        fmt = meta.get("format")
        if fmt == CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path} is not a dtm_lite weights file but a training checkpoint (made by DTM.save): load it "
                "with DTM.load, or write its weights with 'python -m dtm_lite export'"
            )
        if fmt != WEIGHTS_FORMAT:
            raise _corrupt(path, "not a dtm_lite weights file, made by DTM.save_weights")
        _check_version(path, meta.get("version"), WEIGHTS_VERSION, "weights file version")
        dtm = cls(_config_of(path, meta))
        params = _params_of(path, z, dtm)
        step = _meta_field(path, meta, "step", lambda v: check_int("step", v, 0))
        dtm.state = TrainState(params, dtm.optimizer.init(params), step, dtm.state.key)
        return dtm

    @classmethod
    def pretrained(cls, name: str = "lunarlander") -> DTM:
        """A shipped, trained model (package data, no download): ``DTM.pretrained("lunarlander")`` is the
        model that the default ``make train`` produced. :func:`pretrained_names` lists what is shipped."""
        names = pretrained_names()
        if name not in names:
            raise ValueError(f"no pretrained model named {name!r}; available: {', '.join(names) or 'none'}")
        return cls.load_weights(PRETRAINED_DIR / f"{name}.npz")

    def restore(self, path: str | os.PathLike) -> dict[str, Any]:
        """Continue from a checkpoint of this same model (:meth:`save`): its parameters, optimiser state,
        counters, correlation penalty and RNG state replace this model's. Returns the checkpoint's ``extra``.
        A checkpoint made with another config is refused, naming the fields that differ."""
        loaded, extra = type(self).load_with_extra(path)
        if loaded.config != self.config:
            diff = {k: (v, getattr(loaded.config, k)) for k, v in self.config.to_dict().items()
                    if getattr(loaded.config, k) != getattr(self.config, k)}  # fmt: skip
            raise ValueError(f"checkpoint {path} was made with another config (this run, checkpoint): {diff}")
        self.state, self.corr_penalty, self._gen_key = loaded.state, loaded.corr_penalty, loaded._gen_key
        return extra

    @classmethod
    def load(cls, path: str | os.PathLike) -> DTM:
        """A DTM restored from :meth:`save`: same config, parameters, optimiser state, counters and RNG."""
        dtm, _ = cls.load_with_extra(path)
        return dtm

    @classmethod
    def load_with_extra(cls, path: str | os.PathLike) -> tuple[DTM, dict[str, Any]]:
        """:meth:`load`, and the ``extra`` dict saved with the checkpoint. A file that is not a checkpoint
        (corrupt, truncated, foreign) raises one ``ValueError`` naming it; one written by a newer
        dtm_lite (a higher format number) says which format it needs."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        meta, z = _read_archive(path)
        config = checkpoint_config(path, meta)
        dtm = cls(config)
        params = _params_of(path, z, dtm)
        ref = jax.tree.leaves(dtm.state.opt_state)
        leaves = [_array_of(path, z, f"opt_{i}", np.shape(a), np.dtype(a.dtype)) for i, a in enumerate(ref)]
        key_shape = jax.random.key_data(dtm.state.key).shape
        key = jax.random.wrap_key_data(jnp.asarray(_array_of(path, z, "key", key_shape, np.dtype(np.uint32))))
        gen_key = jax.random.wrap_key_data(jnp.asarray(_array_of(path, z, "gen_key", key_shape, np.dtype(np.uint32))))
        step = _meta_field(path, meta, "step", lambda v: check_int("step", v, 0))
        cp = _meta_field(path, meta, "corr_penalty", lambda v: _penalties(v, dtm.num_steps))
        extra = _meta_field(path, meta, "extra", _json_object)
        treedef = jax.tree.structure(dtm.state.opt_state)
        dtm.state = TrainState(params, jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves]), step, key)
        dtm._gen_key = gen_key
        dtm.corr_penalty = cp
        return dtm, extra


CHECKPOINT_FORMAT = 1  # "format" of DTM.save's meta record; raise it when old readers could not read a new file
WEIGHTS_VERSION = 1  # "version" of DTM.save_weights' meta record (its "format" is WEIGHTS_FORMAT)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one)


def checkpoint_config(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> DTMConfig:
    """The :class:`DTMConfig` stored in a checkpoint written by :meth:`DTM.save`, without building the
    model (what ``python -m dtm_lite train --resume`` checks its settings against). Same errors as
    :meth:`DTM.load`."""
    path = Path(path)
    if meta is None:
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        meta, _ = _read_archive(path)
    fmt = meta.get("format")
    if fmt == WEIGHTS_FORMAT:
        raise ValueError(
            f"{path} is a dtm_lite weights file (made by DTM.save_weights), not a training checkpoint: "
            "load it with DTM.load_weights"
        )
    _check_version(path, fmt, CHECKPOINT_FORMAT, "checkpoint format")
    return _config_of(path, meta)


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: corrupt or not a dtm_lite checkpoint ({why})")


def _json_object(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"expected a JSON object, got {type(v).__name__}")
    return v


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an .npz written by :meth:`DTM.save` / :meth:`DTM.save_weights`, read whole
    and without pickle; anything else (not a zip, truncated, object arrays, no JSON ``meta``) raises one
    ``ValueError`` that names ``path``."""
    with open(path, "rb") as f:
        if f.read(4) not in _ZIP_MAGIC:
            raise _corrupt(path, "not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    name = None
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                arrays[name] = z[name]
    except MemoryError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise _corrupt(path, f"array {name!r} holds Python objects, which are never loaded") from None
        raise _corrupt(path, f"damaged array {name!r}") from None
    except Exception:  # BadZipFile, zlib.error, EOFError, OSError, ... from a truncated or damaged archive
        raise _corrupt(path, "truncated or damaged archive") from None
    m = arrays.get("meta")
    if not isinstance(m, np.ndarray) or m.dtype != np.uint8 or m.ndim != 1:
        raise _corrupt(path, "no 'meta' record")
    try:
        meta = json.loads(m.tobytes().decode())
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
        raise _corrupt(path, "its 'meta' record is not JSON") from None
    if not isinstance(meta, dict):
        raise _corrupt(path, "its 'meta' record is not a JSON object")
    return meta, arrays


def _check_version(path: Path, found: Any, known: int, what: str) -> None:
    """``found`` must be the integer ``known``; a higher one was written by a newer dtm_lite."""
    if isinstance(found, int) and not isinstance(found, bool) and found > known:
        from . import __version__

        raise ValueError(
            f"{path} is a dtm_lite {what} {found}, written by a newer dtm_lite; this one ({__version__}) reads "
            f"{what} {known} and older: upgrade dtm_lite to a version that reads {what} {found}"
        )
    if found != known or isinstance(found, bool):
        raise _corrupt(path, f"unknown {what} {found!r}")


def _config_of(path: Path, meta: dict[str, Any]) -> DTMConfig:
    d = meta.get("config")
    if not isinstance(d, dict):
        raise _corrupt(path, "no config in its 'meta' record")
    try:
        return DTMConfig.from_dict(d)  # lists from JSON become tuples on validation
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its stored config is not valid here: {err}") from None


def _meta_field(path: Path, meta: dict[str, Any], name: str, convert: Any) -> Any:
    try:
        return convert(meta[name])
    except (KeyError, TypeError, ValueError):
        raise _corrupt(path, f"missing or bad {name!r} in its 'meta' record") from None


def _penalties(v: Any, n: int) -> np.ndarray:
    cp = np.asarray(v, np.float64)
    if cp.shape != (n,) or not np.all(np.isfinite(cp)):
        raise ValueError(cp)
    return cp


def _array_of(path: Path, arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    a = arrays.get(name)
    if not isinstance(a, np.ndarray):
        raise _corrupt(path, f"no array {name!r}")
    if a.shape != tuple(shape) or np.result_type(a.dtype, dtype) != dtype:
        raise _corrupt(path, f"{name} is {a.dtype}{list(a.shape)}, its config needs {dtype}{list(shape)}")
    return a


def _params_of(path: Path, arrays: dict[str, np.ndarray], dtm: DTM) -> dict[str, jax.Array]:
    return {
        name: jnp.asarray(_array_of(path, arrays, name, ref.shape, np.dtype(ref.dtype)))
        for name, ref in dtm.state.params.items()
    }


# ---------------------------------------------------------------------- jitted kernels


def _visible_bias(n_nodes: int, visible: jax.Array, j: jax.Array, s_in: jax.Array) -> jax.Array:
    """Per-chain bias from the input coupling: ``J s_in`` on the visible nodes, 0 elsewhere. (C, n_nodes)."""
    return jnp.zeros((s_in.shape[0], n_nodes), jnp.float32).at[:, visible].set(j * s_in)


def _init_spins(key: jax.Array, bias: jax.Array, beta: float) -> jax.Array:
    """Independent spins with each site's marginal ignoring couplings: P(+1) = σ(2β b)."""
    return jnp.where(jax.random.uniform(key, bias.shape) < jax.nn.sigmoid(2.0 * beta * bias), 1.0, -1.0)


def phase_moments(
    lat: smp.Lattice,
    visible: jax.Array,
    W: jax.Array,
    b: jax.Array,
    s_start: jax.Array,
    s_in: jax.Array,
    j: jax.Array,
    key: jax.Array,
    *,
    beta: float,
    n_warmup: int,
    n_samples: int,
    steps_per_sample: int,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Monte Carlo moments of T diffusion steps on one batch: both phases of every step in one sampler run.

    Args: W ``(T, n_edges)``, b ``(T, n_nodes)``; ``s_start``, ``s_in`` ±1 of shape ``(T, B, n_visible)``: each
    step's clean-side target and noisier input; ``j`` ``(T,)`` the input couplings.
    Returns ``(⟨s⟩₊, ⟨s⟩₋)`` of shape ``(T, n_nodes)`` and ``(⟨s_i s_j⟩₊, ⟨s_i s_j⟩₋)`` of shape ``(T, n_edges)``,
    averaged over samples and batch. Chains ``[:B]`` are the positive phase (visible clamped to
    ``s_start``), chains ``[B:]`` the negative phase; row r of both phases sees the same input.

    Several models share the lattice arrays ``(2, n, n, T, 2B)`` and run in one kernel call (under ``jax.vmap``
    XLA's CPU loop would run several times slower); training calls it one step at a time (``jax.lax.map``),
    which keeps the arrays in cache and the cost linear in T.
    """
    g = lat.graph
    T, B = s_start.shape[:2]
    vis_mask = jnp.zeros(g.n_nodes, bool).at[visible].set(True)
    clamp = jnp.concatenate([jnp.broadcast_to(vis_mask, (B, g.n_nodes)), jnp.zeros((B, g.n_nodes), bool)])[None]
    k_init, k_run = jax.random.split(key)
    vis_bias = jax.vmap(lambda jk, s: _visible_bias(g.n_nodes, visible, jk, s))(j, s_in)  # (T, B, n_nodes)
    bias = jnp.concatenate([vis_bias, vis_bias], axis=1) + b[:, None]  # (T, 2B, n_nodes)
    spins = _init_spins(k_init, bias, beta).at[:, :B, visible].set(s_start)
    params = smp.make_params(lat, W, bias, clamp)
    x0, x1 = smp.to_lattice(lat, spins, fill=1.0)  # (2, n, n, T, 2B)

    def observe(acc, x0, x1):
        s0, s1, ss = acc
        prod = smp.edge_products(lat, x0, x1)  # (deg, 2, n, n, T, 2B)
        ss = ss + jnp.stack([prod[..., :B].sum(-1), prod[..., B:].sum(-1)])
        return (s0 + x0, s1 + x1, ss), None

    zeros = (jnp.zeros_like(x0), jnp.zeros_like(x1), jnp.zeros((2,) + params.w0.shape[:-1], jnp.float32))
    betas = jnp.full((smp.n_sweeps(n_warmup, n_samples, steps_per_sample),), beta, jnp.float32)
    _, _, (s0, s1, ss), _ = smp.run_chains(
        lat, params, k_run, x0, x1, betas, n_warmup=n_warmup, n_samples=n_samples,
        steps_per_sample=steps_per_sample, observe=observe, acc=zeros,
    )  # fmt: skip
    m = smp.from_lattice(lat, s0, s1) / n_samples  # (T, 2B, n_nodes)
    c_pos, c_neg = (smp.edge_values(lat, ss[k]) / (B * n_samples) for k in (0, 1))  # (T, n_edges)
    return m[:, :B].mean(1), m[:, B:].mean(1), c_pos, c_neg


def _make_train_fn(dtm: DTM):
    cfg, lat, g = dtm.config, dtm.lattice, dtm.graph
    visible = jnp.asarray(dtm.visible)
    t = jnp.asarray(dtm.times, jnp.float32)
    J = jnp.asarray(dtm.J, jnp.float32)
    edges = np.asarray(g.edges)

    def pair(key, x0_bits, t_k, t_k1):
        return training_pair(key, x0_bits, t_k, t_k1, cfg.image_rate, cfg.diffusion_offset)

    T = cfg.num_diffusion_steps

    def step_moments(args):
        """``phase_moments`` of one diffusion step, from its slices ``(W_k, b_k, s_start_k, s_in_k, J_k, key_k)``."""
        W, b, s_start, s_in, j, key = args
        out = phase_moments(
            lat, visible, W[None], b[None], s_start[None], s_in[None], j[None], key,
            beta=cfg.beta, n_warmup=cfg.steps_warmup, n_samples=cfg.n_samples, steps_per_sample=cfg.steps_per_sample,
        )  # fmt: skip
        return tuple(o[0] for o in out)

    # The T steps run one after another (lax.map), each on its own (2, n, n, 1, 2B) lattice arrays: the cost
    # is linear in T, where one joint (2, n, n, T, 2B) kernel outgrew the cache (benchmarks/train_step.py).
    @jax.jit
    def train(params, opt_state, key, batch, corr_penalty):
        k_pairs, k_run = jax.random.split(key)
        keys = jax.random.split(k_pairs, cfg.num_diffusion_steps)
        x_start, x_end = jax.vmap(pair, in_axes=(0, None, 0, 0))(keys, batch, t[:-1], t[1:])  # (T, B, n_vis)
        run_keys = jax.random.split(k_run, T) if T > 1 else k_run[None]  # T = 1 keeps its key: same samples
        m_pos, m_neg, c_pos, c_neg = jax.lax.map(
            step_moments, (params["W"], params["b"], 2.0 * x_start - 1.0, 2.0 * x_end - 1.0, J, run_keys)
        )
        cov_neg = c_neg - m_neg[:, edges[:, 0]] * m_neg[:, edges[:, 1]]
        ascent = {
            "W": cfg.beta * (c_pos - c_neg) - corr_penalty[:, None] * cov_neg,
            "b": cfg.beta * (m_pos - m_neg),
        }
        grads = jax.tree.map(jnp.negative, ascent)
        updates, opt_state = dtm.optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {
            "gap": jnp.abs(m_pos - m_neg)[:, visible].mean(),
            "grad_norm": optax.tree.norm(ascent),
        }
        return params, opt_state, metrics

    return train


def _step_chains(lat, visible, params_k, j_k, s_in, key, betas, every, init_beta):
    """Free chains of one diffusion step from inputs ``s_in`` (n, n_visible) ±1: the visible spins every
    ``every`` sweeps, (len(betas) // every + 1, n, n_visible) int8, the first record being the start."""
    g = lat.graph
    k_init, k_run = jax.random.split(key)
    bias = params_k["b"][None] + _visible_bias(g.n_nodes, visible, j_k, s_in)
    p = smp.make_params(lat, params_k["W"], bias, None)
    x0, x1 = smp.to_lattice(lat, _init_spins(k_init, bias, init_beta), fill=1.0)

    def observe(acc, x0, x1):
        return acc, smp.from_lattice(lat, x0, x1)[:, visible].astype(jnp.int8)

    _, _, _, outs = smp.run_chains(
        lat, p, k_run, x0, x1, betas, n_warmup=0, n_samples=betas.shape[0] // every + 1,
        steps_per_sample=every, observe=observe, acc=None,
    )  # fmt: skip
    return outs


def _make_free_run_fn(dtm: DTM, sweeps: int, every: int):
    cfg, lat = dtm.config, dtm.lattice
    visible = jnp.asarray(dtm.visible)
    betas = jnp.full((sweeps,), cfg.beta, jnp.float32)

    @jax.jit
    def free_run(params_k, j_k, s_in, key):
        outs = _step_chains(lat, visible, params_k, j_k, s_in, key, betas, every, cfg.beta)
        return (outs > 0).astype(jnp.uint8)

    return free_run


def _make_generate_fn(dtm: DTM, sweeps: int, every: int, trajectory: bool):
    cfg, lat = dtm.config, dtm.lattice
    visible = jnp.asarray(dtm.visible)
    J = jnp.asarray(dtm.J, jnp.float32)

    @functools.partial(jax.jit, static_argnums=3)
    def generate(params, key, betas, n):
        k_in, key = jax.random.split(key)
        s_in = jnp.where(jax.random.bernoulli(k_in, 0.5, (n, cfg.n_visible)), 1.0, -1.0)
        traj = []
        for k in reversed(range(cfg.num_diffusion_steps)):
            key, sub = jax.random.split(key)
            params_k = {name: a[k] for name, a in params.items()}
            outs = _step_chains(lat, visible, params_k, J[k], s_in, sub, betas, every, cfg.beta)
            traj.append(outs if trajectory else outs[-1:])
            s_in = outs[-1].astype(jnp.float32)
        return (s_in > 0).astype(jnp.uint8), jnp.concatenate(traj)

    return generate
