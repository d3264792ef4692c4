"""``DTMConfig``: everything that defines a DTM and its training, validated once on construction; and the
seeds (``seed_key``) and keys (``as_key``) that the model's randomness starts from."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core import sampler as smp
from dtm_lite.core.diffusion import SCHEDULES
from dtm_lite.core.encoding import PALETTE_CODES, Encoding, Palette
from dtm_lite.core.graph import preset_name
from dtm_lite.core.validation import check_beta, check_bool, check_float, check_int

PLACEMENTS = ("spatial", "planes", "raster", "random")
MAX_SEED = 2**64 - 1  # config.seed and integer keys: 0 .. MAX_SEED (see seed_key)


def _field(default: Any, help: str) -> Any:
    """A DTMConfig field: its default and its one-line help (also its ``python -m dtm_lite train`` flag's)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class DTMConfig:
    """Everything that defines a DTM and its training; validated on construction.

    Defaults are those of the public LunarLander replication of Jelinčič et al. (arXiv 2510.23972): 32x32 RGB
    binary on 80_12, one log-schedule step, batch 50, 300 warm-up sweeps then 30 samples 6 sweeps apart, 400
    generation sweeps with β ramped 0.8 -> 1.2, learning rate 0.03 with cosine decay (counted in batches) to
    0.2 of it. The model of ``python -m dtm_lite train`` is ``dtm_lite.data.lunarlander_settings.model_config()``
    (palette encoding, planes placement, a layout model) and ``quick_model_config()`` its quick one. Each
    field's metadata ``"help"`` describes it in one line (the CLI makes one flag a field from it).

    Encoding (:mod:`dtm_lite.core.encoding`): ``encoding=None`` is ``"binary"`` for ``grayscale_levels == 1`` and
    ``"thermometer"`` otherwise; ``"palette"`` needs a ``palette``, which has no default (LunarLander's four colours
    are ``dtm_lite.data.lunarlander_settings.LUNARLANDER_COLORS``).

    Correlation penalty (the paper's adaptive correlation penalty, :mod:`dtm_lite.training.penalty`):
    ``corr_penalty`` is the initial λ_cp; with ``adaptive_penalty`` it starts at ``max(corr_penalty,
    corr_penalty_min)`` and follows the held-out autocorrelation against ``autocorr_tau`` once per epoch
    (``corr_penalty_min`` = 1e-3, the research code's ``cp_min``).
    """

    image_shape: tuple[int, int, int] = _field((32, 32, 3), "frame size (H, W, C)")
    preset: str = _field("80_12", "graph preset side_degree; must hold the encoding's visible spins")
    encoding: str | None = _field(None, "binary, thermometer or palette; unset: binary for 1 level, else thermometer")
    grayscale_levels: int = _field(1, "bits a channel value: 1 = binary threshold, L > 1 = thermometer code")
    threshold: float = _field(0.5, "binarisation threshold in [0, 1) (binary and palette)")
    palette: tuple[tuple[float, float, float], ...] | None = _field(
        None, "palette RGB colours in [0, 1], at least two (needed by the palette encoding)"
    )
    palette_code: str = _field("binary", "palette bits: binary (ceil(log2 K) a pixel) or onehot (K a pixel)")
    num_diffusion_steps: int = _field(1, "diffusion steps T (1 = a plain EBM)")
    schedule: str = _field("log", "time grid of the diffusion steps: log or linear")
    diffusion_offset: float = _field(0.1, "diffusion offset delta of the time grid")
    image_rate: float = _field(0.8, "forward-process flip rate lambda")
    placement: str = _field("spatial", "visible sites: spatial, planes (neighbouring pixels coupled), raster, random")
    beta: float = _field(1.0, "inverse temperature of the model's Gibbs sampling in training")
    batch_size: int = _field(50, "frames per batch")
    warmup_sweeps: int = _field(300, "Gibbs sweeps before the first sample of each phase")
    n_samples: int = _field(30, "samples per training phase")
    sweeps_per_sample: int = _field(6, "Gibbs sweeps between samples")
    generation_sweeps: int = _field(400, "Gibbs sweeps per diffusion step when generating")
    generation_beta: tuple[float, float] = _field((0.8, 1.2), "generation's inverse temperature, start to end")
    quench_fraction: float = _field(0.0, "generation: this fraction of each step's last sweeps runs at quench_beta")
    quench_beta: float = _field(3.0, "generation: inverse temperature of the quench sweeps")
    learning_rate: float = _field(0.03, "peak learning rate (AdamW, cosine decay over lr_decay_batches)")
    lr_decay_batches: int = _field(2000, "batches of the cosine learning-rate decay")
    lr_final_fraction: float = _field(0.2, "learning rate at the end of the decay, a fraction of the peak")
    weight_decay: float = _field(0.0, "AdamW weight decay of the couplings and biases")
    corr_penalty: float = _field(0.0, "initial correlation penalty (adaptive: at least corr_penalty_min)")
    adaptive_penalty: bool = _field(False, "adapt the correlation penalty from the held-out autocorrelation each epoch")
    corr_penalty_min: float = _field(1e-3, "smallest adaptive correlation penalty")
    autocorr_tau: float = _field(0.016, "held-out autocorrelation the adaptive penalty aims at")
    seed: int = _field(0, "seed of the model (the CLI: also of the data stream and evaluation)")
    n_classes: int = _field(0, "label classes K (0: no label bits, an unconditional model)")
    label_spots: int = _field(
        4,
        "copies of the K one-hot label bits, spread around the image (0: none, a layout model's labels then act "
        "through its layout prior alone)",
    )
    label_rate: float = _field(0.8, "forward-process flip rate of the label bits")
    n_actions: int = _field(0, "world model: actions A; conditions each frame on the previous one and an action")
    cond_radius: int = _field(1, "world model: previous-frame pixels within this radius feed a pixel's field")
    cond_frames: int = _field(1, "world model: previous frames conditioned on (2: the velocity too)")
    layout_color: tuple[float, ...] | None = _field(
        None, "layout model: colour of the one object whose sampled position the picture is conditioned on"
    )  # with n_actions: a world model whose next frame is also conditioned on the object's next position
    layout_min_size: int = _field(2, "layout model: pixels of the smallest blob whose centre a layout marks")
    label_gates_layout: bool = _field(
        False, "labelled layout model: one set of layout weights per class, so the label also shapes the object"
    )

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
            "grayscale_levels": 1, "num_diffusion_steps": 1, "batch_size": 1, "warmup_sweeps": 0,
            "n_samples": 1, "sweeps_per_sample": 1, "generation_sweeps": 1, "lr_decay_batches": 1,
            "n_classes": 0, "label_spots": 0, "n_actions": 0, "cond_radius": 0, "cond_frames": 1, "layout_min_size": 1,
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
            "label_rate": (0, None, True, False), "quench_beta": (0, None, True, False),
            "quench_fraction": (0, 1, False, True),
        }  # fmt: skip
        for name, (lo, hi, lo_open, hi_open) in floats.items():
            v = check_float(name, getattr(self, name), lo, hi, lo_open=lo_open, hi_open=hi_open)
            object.__setattr__(self, name, v)
        for name in ("adaptive_penalty", "label_gates_layout"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        object.__setattr__(self, "generation_beta", check_beta("generation_beta", self.generation_beta))
        if self.n_classes == 1:
            raise ValueError("n_classes must be 0 (no labels) or >= 2, got 1: one class carries no information")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        self._check_encoding()
        self._check_layout()
        if self.n_classes and not self.label_spots and self.layout_color is None:
            raise ValueError(
                "label_spots=0 leaves the labels nothing to act on: give label_spots >= 1 (label bits on the grid) "
                "or layout_color (a layout model, whose prior over the object's place then depends on the label)"
            )
        if self.label_gates_layout and not (self.n_classes and self.layout_color is not None and not self.n_actions):
            raise ValueError(
                "label_gates_layout=True gates a layout model's weights by the label: it needs n_classes >= 2 and "
                "layout_color, and no n_actions (a world model's weights are gated by its actions)"
            )
        if self.schedule == "linear":
            warnings.warn(
                "a linear schedule never reaches pure noise, yet generation starts from Bernoulli(0.5) "
                "inputs; prefer schedule='log'",
                stacklevel=3,
            )

    def _check_encoding(self) -> None:
        """Resolve ``encoding=None`` (binary / thermometer by level count); the encoding's own checks do the rest."""
        if self.encoding is None:
            object.__setattr__(self, "encoding", "binary" if self.grayscale_levels == 1 else "thermometer")
        if self.palette_code not in PALETTE_CODES:
            raise ValueError(f"palette_code must be one of {PALETTE_CODES}, got {self.palette_code!r}")
        if self.palette is not None:  # a palette given is checked whatever the encoding
            try:
                colors = Palette(self.palette, self.palette_code).colors
            except (TypeError, ValueError) as err:
                raise ValueError(f"palette must be RGB colours (r, g, b) in [0, 1], at least two: {err}") from None
            object.__setattr__(self, "palette", colors)
        Encoding.from_config(self)

    def _check_layout(self) -> None:
        """``layout_color``: None, or one value in [0, 1] per channel."""
        if self.layout_color is None:
            return
        c = self.layout_color
        try:
            color = tuple(check_float(f"layout_color[{i}]", v, 0, 1) for i, v in enumerate(c))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"layout_color must be None or one value in [0, 1] per channel, got {c!r}: {err}"
            ) from None
        if len(color) != self.image_shape[2]:
            raise ValueError(
                f"layout_color needs one value per channel ({self.image_shape[2]} for image_shape "
                f"{self.image_shape}), got {len(color)}: {c!r}"
            )
        object.__setattr__(self, "layout_color", color)

    @property
    def n_visible(self) -> int:
        """Visible bits of one image: ``H * W * bits_per_pixel`` of the encoding."""
        return Encoding.from_config(self).n_bits

    @property
    def n_label_bits(self) -> int:
        """Label bits of a labelled model: ``n_classes * label_spots`` (0 without labels)."""
        return self.n_classes * self.label_spots

    @property
    def sweeps_per_phase(self) -> int:
        return smp.n_sweeps(self.warmup_sweeps, self.n_samples, self.sweeps_per_sample)

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
        """The config of :meth:`to_dict`'s dict (lists for tuples, as JSON keeps them); a field it lacks takes
        its class default."""
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


def as_key(key: Any, name: str = "key") -> jax.Array:
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
