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

Where the parts live: the configuration in :mod:`dtm_lite.core.config`, the whole state (one pytree) in
:mod:`dtm_lite.core.state`, the jitted kernels (the pure training step, generation) in :mod:`dtm_lite.core.kernels`,
the visible sites in :mod:`dtm_lite.core.placement`, checkpoint formats in :mod:`dtm_lite.training.checkpoint`; this module
is the ``DTM`` shell that holds them together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dtm_lite.conditioning import inputs as conditioning
from dtm_lite.conditioning import layout as layouts
from dtm_lite.core import sampler as smp
from dtm_lite.core.capacity import check_capacity
from dtm_lite.core.config import MAX_SEED, PLACEMENTS, DTMConfig, _as_key, seed_key
from dtm_lite.core.diffusion import couplings, time_grid
from dtm_lite.core.encoding import Encoding
from dtm_lite.core.graph import GridGraph
from dtm_lite.core.kernels import _make_free_run_fn, _make_generate_fn, _make_train_fn, _visible_bias, phase_moments
from dtm_lite.core.placement import place_visible
from dtm_lite.core.state import DTMState, TrainState, checked_array, corrupt, state_arrays, state_from_arrays
from dtm_lite.core.validation import check_beta, check_bool, check_int
from dtm_lite.scale.sharding import ChainMesh, Devices, check_partitionable, global_batch
from dtm_lite.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMATS,
    WEIGHTS_FORMAT,
    WEIGHTS_VERSION,
    _check_version,
    _config_of,
    _format1_state,
    _json_object,
    _meta_field,
    _params_of,
    _read_archive,
    checkpoint_config,
)
from dtm_lite.training.files import atomic_write

__all__ = [  # the model, and what other modules and user code import from here
    "CHECKPOINT_FORMAT", "CHECKPOINT_FORMATS", "DTM", "DTMConfig", "DTMState", "GENERATE_CHUNK_BYTES", "MAX_SEED",
    "PLACEMENTS", "TrainState", "WEIGHTS_FORMAT", "WEIGHTS_VERSION", "_make_generate_fn", "_visible_bias",
    "checkpoint_config", "phase_moments", "place_visible", "pretrained_names", "seed_key", "state_arrays",
    "state_from_arrays",
]  # fmt: skip

# generate() runs its chains in chunks of at most this much estimated working memory (DTM.generate)
GENERATE_CHUNK_BYTES = 1 << 30

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


LAYOUT_STREAM = 0x1A7  # generate's key folded with this draws a layout model's layouts
LAYOUT_LEAVES = ("layout_counts", "layout_moves")  # the DTMState leaves of a layout model's counts


def pretrained_names() -> list[str]:
    """Names accepted by :meth:`DTM.pretrained` (the ``.npz`` files shipped in ``dtm_lite/pretrained``)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.npz"))


class DTM:
    """A Denoising Thermodynamic Model on one grid graph. See the module docstring for the maths.

    >>> dtm = DTM(DTMConfig(image_shape=(8, 8, 1), preset="20_8", warmup_sweeps=20, n_samples=4))
    >>> metrics = dtm.train_step(bits)          # bits: (batch, 64) in {0, 1}
    >>> images = dtm.generate(16)               # (16, 8, 8, 1) in [0, 1]

    ``dtm.encoding`` (a :class:`~dtm_lite.core.encoding.Encoding` built from the config) owns frames <-> bits:
    ``dtm.encode``, ``dtm.decode`` and ``IteratorDataLoader(..., encoding=dtm.encoding)`` all go through it.
    """

    def __init__(self, config: DTMConfig | None = None, *, devices: Devices = None, **overrides: Any) -> None:
        config = config or DTMConfig()
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        self.graph = GridGraph.from_preset(config.preset)
        self.encoding = Encoding.from_config(config)
        n_values, bits_each, unit = self.encoding.capacity_counts
        check_capacity(self.graph, n_values, bits_each, config.n_label_bits, unit=unit)
        self.lattice = smp.lattice(self.graph)
        self.visible = place_visible(
            self.graph, config.image_shape, how=config.placement, seed=config.seed,
            bits_per_pixel=self.encoding.bits_per_pixel,
        )  # fmt: skip
        #: label bits' sites (``n_classes * label_spots``, empty without labels), after the image's in ``visible_all``
        self.label_sites = (
            conditioning.place_labels(self.graph, self.visible, config.n_classes, config.label_spots)
            if config.n_classes
            else np.zeros(0, np.int64)
        )
        self.visible_all = np.concatenate([self.visible, self.label_sites])
        T = config.num_diffusion_steps
        self.times = time_grid(T, config.schedule)
        self.J = couplings(T, config.schedule, config.image_rate)
        self.J_label = couplings(T, config.schedule, config.label_rate)
        n_img = self.encoding.n_bits
        #: (T, n_image_bits + n_label_bits): each visible bit's input coupling J_k
        self.J_bits = np.concatenate(
            [np.repeat(self.J[:, None], n_img, 1), np.repeat(self.J_label[:, None], config.n_label_bits, 1)], axis=1
        )
        #: a layout model's rendering of layouts (:mod:`dtm_lite.conditioning.layout`): the encoded background frame and
        #: the object colour's bits; None for every other model
        self.layout_bits: tuple[np.ndarray, np.ndarray] | None = None
        if config.layout_color is not None:
            h, w, c = config.image_shape
            background = self.encoding.encode(np.zeros((1, h, w, c), np.float32))[0]
            filled = np.broadcast_to(np.asarray(config.layout_color, np.float32), (1, h, w, c))
            marker = self.encoding.encode(filled)[0, : self.encoding.bits_per_pixel]
            self.layout_bits = (background, marker)
        #: (n_image_bits, n_neighbour_bits): the conditioning inputs that feed each bit's field: a world model's
        #: ``cond_frames`` previous frames, then a layout model's rendered layout (see dtm_lite.conditioning.inputs)
        self.cond_index = None
        #: ``(offset, scale)`` ``(n_inputs,)`` of the conditioning inputs (a layout's: its background, 1/2),
        #: or ``(None, None)`` for a world model's previous frames alone
        self.cond_scaling: tuple[jax.Array | None, jax.Array | None] = (None, None)
        if config.n_cond_actions:
            n_frames = config.n_cond_frames
            self.cond_index = conditioning.conditioning_index(
                config.image_shape, self.encoding.bits_per_pixel, config.cond_radius, n_frames
            )
            if self.layout_bits is not None:
                n_prev = (n_frames - 1) * n_img
                ref = 2.0 * self.layout_bits[0].astype(np.float32) - 1.0
                offset = np.concatenate([np.zeros(n_prev, np.float32), ref])
                scale = np.concatenate([np.ones(n_prev, np.float32), np.full(n_img, 0.5, np.float32)])
                self.cond_scaling = (jnp.asarray(offset), jnp.asarray(scale))
        # the adaptive rule starts each update from max(cp, cp_min) (section 7.6): train with that from batch 1
        cp0 = max(config.corr_penalty, config.corr_penalty_min) if config.adaptive_penalty else config.corr_penalty
        self.lr_schedule = optax.cosine_decay_schedule(
            config.learning_rate, config.lr_decay_batches, config.lr_final_fraction
        )
        self.optimizer = optax.adamw(self.lr_schedule, b1=0.9, b2=0.999, weight_decay=config.weight_decay)
        params = {
            "W": jnp.zeros((T, self.graph.n_edges), jnp.float32),
            "b": jnp.zeros((T, self.graph.n_nodes), jnp.float32),
        }
        if self.cond_index is not None:  # the world model's conditioning weights (see dtm_lite.conditioning.inputs)
            n_feat = self.cond_index.shape[1] + 1
            params["K"] = jnp.zeros((T, config.n_cond_actions, n_img, n_feat), jnp.float32)
        key, gen_key = jax.random.split(seed_key(config.seed))
        h, w, _ = config.image_shape
        counts = jnp.zeros(h * w + 1, jnp.int32) if self.layout_bits is not None else None
        moves_shape = (config.n_actions, layouts.N_CONTEXTS, layouts.N_OUTCOMES)
        moves = jnp.zeros(moves_shape, jnp.int32) if self.layout_bits is not None and config.n_actions else None
        self.state = DTMState(
            params,
            self.optimizer.init(params),
            jnp.int32(0),
            key,
            gen_key,
            jnp.full(T, cp0, jnp.float32),
            counts,
            moves,
        )
        self.use_devices(devices)

    def use_devices(self, devices: Devices = None) -> DTM:
        """Run training and generation on ``devices`` (see :mod:`dtm_lite.scale.sharding`): None (the default) one
        device, an int N the first N of ``jax.devices()``, ``"all"`` every device (of every process), or a
        list of ``jax.Device``. The chains (batch rows) are split over a 1-D mesh, the state is replicated;
        results are bit-identical for any device count. ``config.batch_size`` must be a multiple of the
        device count. Returns the model.

        Sets :attr:`mesh` and :attr:`train_fn`, the pure, jitted update ``train_fn(state, batch) -> (state,
        metrics)`` that :meth:`train_step` wraps; ``batch`` is a dict: ``"bits"`` ``(B, n_visible)`` uint8, and
        ``"labels"`` ``(B,)`` int32 for a labelled model, ``"prev"`` ``(B, n_visible)`` uint8 and ``"actions"``
        ``(B,)`` int32 for a world model (arrays, or global ``jax.Array`` s sharded by ``mesh.rows``)."""
        mesh = ChainMesh.of(devices)
        mesh.check_batch_size(self.config.batch_size)
        check_partitionable()
        #: the :class:`~dtm_lite.scale.sharding.ChainMesh` the chains are split over (one device by default)
        self.mesh = mesh
        self.state = mesh.put_state(self.state)  # where train_fn's outputs land: no second compile
        self.train_fn = _make_train_fn(self)
        # generate(): (sweeps, record_every, return_trajectory); free_run(): ("free", sweeps, record_every)
        self._generate_fns: dict[tuple[int, int, bool] | tuple[str, int, int], Callable[..., Any]] = {}
        return self

    @property
    def n_devices(self) -> int:
        """Devices the chains are split over (:meth:`use_devices`)."""
        return self.mesh.n_devices

    def train_step_local(
        self, batch_bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None
    ) -> dict[str, float]:
        """:meth:`train_step` on this process's share of the batch, for multi-host training (one process a
        host, ``jax.distributed.initialize``, the model on ``devices="all"``): every process passes its own
        ``batch_size / jax.process_count()`` rows (process ``i``: rows ``i * b ..`` of the global batch) and
        the global batch is assembled with ``jax.make_array_from_process_local_data``. Every process must
        call it, in step. With one process it is :meth:`train_step`."""
        n_proc = jax.process_count()
        if n_proc == 1:
            return self.train_step(batch_bits, labels, prev=prev, actions=actions)
        B = self.config.batch_size
        if B % n_proc:
            raise ValueError(f"batch_size {B} is not divisible by the {n_proc} processes that share it")
        local = B // n_proc
        whole = self.config.replace(batch_size=local)  # check this process's rows as a batch of their own
        checker = DTM.__new__(DTM)
        checker.config, checker.encoding, checker.layout_bits = whole, self.encoding, self.layout_bits
        batch = checker.make_batch(batch_bits, labels, prev=prev, actions=actions)
        self.state, metrics = self.train_fn(self._placed_state(), global_batch(self.mesh, batch, B))
        return {k: float(v) for k, v in jax.device_get(metrics).items()}

    # ------------------------------------------------------------------ properties

    @property
    def params(self) -> dict[str, jax.Array]:
        return self.state.params

    @property
    def num_steps(self) -> int:
        return self.config.num_diffusion_steps

    @property
    def batches_trained(self) -> int:
        """``state.step`` as a Python int."""
        return int(self.state.step)

    @property
    def corr_penalty(self) -> np.ndarray:
        """Each diffusion step's correlation penalty λ_cp, ``(T,)`` float32 (a copy of ``state.corr_penalty``)."""
        return np.array(self.state.corr_penalty)

    @corr_penalty.setter
    def corr_penalty(self, value: Any) -> None:
        cp = np.asarray(value, np.float32)
        if cp.shape != (self.num_steps,) or not np.all(np.isfinite(cp)) or np.any(cp < 0):
            raise ValueError(f"corr_penalty must be {self.num_steps} finite values >= 0, got {value!r}")
        self.state = self.state._replace(corr_penalty=jnp.asarray(cp))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DTM({c.image_shape} {self.encoding.describe()} = {c.n_visible} visible on {self.graph!r}, "
            f"T={c.num_diffusion_steps} {c.schedule}, trained {self.batches_trained} batches)"
        )

    # ------------------------------------------------------------------ data

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(..., H, W, C)`` -> visible bits ``(..., n_visible)`` with this model's encoding."""
        return self.encoding.encode(frames)

    def decode(self, bits: np.ndarray) -> np.ndarray:
        """Visible bits (or ±1 spins) ``(..., n_visible)`` -> images ``(..., H, W, C)`` in [0, 1]
        (a palette model: RGB in the palette's colours)."""
        return self.encoding.decode(bits)

    def check_batch(self, batch_bits: Any, name: str = "batch") -> np.ndarray:
        """Validate a batch of visible bits ``(batch_size, n_visible)`` in {0, 1}; returns it as uint8."""
        b = np.asarray(batch_bits)
        want = (self.config.batch_size, self.encoding.n_bits)
        if b.ndim != 2 or b.shape[1] != want[1]:
            raise ValueError(
                f"{name} must be bits of shape (batch, {want[1]}) (image_shape {self.config.image_shape}, "
                f"{self.encoding.describe()}), got {b.shape}; encode frames with dtm.encode(frames), or build "
                "the loader with IteratorDataLoader(..., encoding=dtm.encoding) or encode=False"
            )
        if b.shape[0] != want[0]:
            raise ValueError(
                f"{name} has {b.shape[0]} rows but config.batch_size is {want[0]}; use batches of that size "
                "(a new size would recompile the training step)"
            )
        if b.dtype == np.bool_:
            return b.astype(np.uint8)
        if not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
            raise ValueError(f"{name} must be numeric bits in {{0, 1}}, got dtype {b.dtype}")
        if np.issubdtype(b.dtype, np.floating) and not np.all(np.isfinite(b)):
            raise ValueError(f"{name} contains NaN or infinite values; bits must be 0 or 1")
        if not np.all((b == 0) | (b == 1)):
            raise ValueError(f"{name} must contain only 0 and 1 (bits, not pixel values: use dtm.encode(frames))")
        return b.astype(np.uint8)

    # ------------------------------------------------------------------ training

    def train_step(
        self, batch_bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None
    ) -> dict[str, float]:
        """One optimiser update of every diffusion step on one batch of visible bits ``(B, n_visible)``.

        A labelled model (``n_classes > 0``) needs ``labels``, class ids ``(B,)``; a world model
        (``n_actions > 0``) needs the previous frames' bits ``prev`` ``(B, n_visible)`` and ``actions`` ``(B,)``
        (``batch_bits`` is then the next frame). Returns metrics averaged over steps: ``gap`` (mean
        |⟨s⟩₊ - ⟨s⟩₋| on the image's visible sites, the data-vs-model magnetisation mismatch), ``grad_norm``
        and ``lr``.
        """
        batch = self.make_batch(batch_bits, labels, prev=prev, actions=actions)
        self.state, metrics = self.train_fn(self._placed_state(), batch)
        return {k: float(v) for k, v in jax.device_get(metrics).items()}

    def _placed_state(self) -> DTMState:
        """The state replicated on the mesh, as ``train_fn`` returns it: a leaf replaced outside it (the
        generation key, the penalty, a restored checkpoint) would otherwise make ``train_fn`` compile again."""
        want = self.mesh.replicated
        if not all(getattr(a, "sharding", None) == want for a in jax.tree.leaves(self.state)):
            self.state = self.mesh.put_state(self.state)
        return self.state

    def make_batch(
        self, batch_bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None
    ) -> dict[str, jax.Array]:
        """The checked batch dict that :attr:`train_fn` takes (see :meth:`train_step` for the arguments)."""
        batch = {"bits": jnp.asarray(self.check_batch(batch_bits))}
        B = self.config.batch_size
        if self.config.n_classes:
            if labels is None:
                raise ValueError(
                    f"this model has labels (n_classes={self.config.n_classes}): pass labels, class ids (B,), "
                    "e.g. from IteratorDataLoader(..., n_classes=K)"
                )
            batch["labels"] = jnp.asarray(self.check_ids("labels", labels, self.config.n_classes, B))
        elif labels is not None:
            raise ValueError(
                "labels given to an unconditional model (n_classes=0): build it with DTMConfig(n_classes=K) to "
                "train with labels, or pass the frames alone"
            )
        batch.update({k: jnp.asarray(v) for k, v in self._world_inputs(prev, actions, B, required=True).items()})
        if self.layout_bits is not None:  # each frame's layout, rendered as a conditioning input
            ids = self._layouts_of(batch["bits"])
            batch["layout"] = jnp.asarray(ids)
            if self.config.n_actions:  # and the move that led to it, for the layout dynamics
                before, now = self._previous_layouts(batch["prev"])
                hw = self.config.image_shape[:2]
                batch["move_ctx"] = jnp.asarray(layouts.move_contexts(before, now, hw))
                batch["move_out"] = jnp.asarray(layouts.move_outcomes(now, ids, hw))
            inputs = self._layout_inputs(ids, batch.get("prev"), batch.get("actions"))
            batch.update({k: jnp.asarray(v) for k, v in inputs.items()})
        return batch

    def _layouts_of(self, bits: Any) -> np.ndarray:
        """Layout ids ``(n,)`` of image bits ``(n, n_visible)``."""
        return layouts.layout_ids(self.decode(np.asarray(bits)), self._layout_color, self.config.layout_min_size)

    def _next_layouts(self, key: jax.Array, actions: Any, before: np.ndarray | None, now: np.ndarray) -> np.ndarray:
        """A world model's next layouts ``(n,)`` after layouts ``before`` (ℓ_t-1, or None) and ``now`` (ℓ_t) and
        ``actions``, drawn from its layout dynamics (:func:`dtm_lite.conditioning.layout.sample_next_layouts`)."""
        assert self.state.layout_moves is not None and self.state.layout_counts is not None
        return layouts.sample_next_layouts(
            key, np.asarray(self.state.layout_moves), np.asarray(self.state.layout_counts), np.asarray(actions),
            before, now, self.config.image_shape[:2],
        )  # fmt: skip

    def _previous_layouts(self, prev: Any) -> tuple[np.ndarray | None, np.ndarray]:
        """A world model's layouts ℓ_t-1 (None with one previous frame) and ℓ_t of previous frames' bits
        ``(n, cond_frames * n_visible)``."""
        n_img, f = self.encoding.n_bits, self.config.cond_frames
        p = np.asarray(prev)
        now = self._layouts_of(p[:, (f - 1) * n_img : f * n_img])
        before = self._layouts_of(p[:, (f - 2) * n_img : (f - 1) * n_img]) if f > 1 else None
        return before, now

    @property
    def _layout_color(self) -> tuple[float, ...]:
        assert self.config.layout_color is not None
        return self.config.layout_color

    def _layout_inputs(self, ids: np.ndarray, prev: Any = None, actions: Any = None) -> dict[str, np.ndarray]:
        """The conditioning inputs of layout ids ``(n,)``: the rendered layouts after a world model's previous
        frames' bits ``prev`` (with its ``actions``), or alone with action 0 (a layout model).

        A world model's previous frames enter with the object erased (its pixels set to the background):
        the object's state is the layout's alone. Copied from the previous frame, a dreamed object would
        pass on its flaws, and a rollout would shrink it step by step (measured: largest blob 1.9 px
        against the data's 3.3, in benchmarks/world_model.py's rollouts)."""
        assert self.layout_bits is not None
        rendered = layouts.render_layouts(ids, *self.layout_bits)
        if prev is None:
            return {"prev": rendered, "actions": np.zeros(len(ids), np.int32)}
        return {"prev": np.concatenate([self._erase_object(prev), rendered], axis=1), "actions": np.asarray(actions)}

    def _erase_object(self, prev: Any) -> np.ndarray:
        """Previous frames' bits ``(n, F * n_visible)`` with the layout object's pixels set to the background."""
        assert self.layout_bits is not None
        p = np.asarray(prev, np.uint8)
        n, n_img = len(p), self.encoding.n_bits
        frames = self.decode(p.reshape(-1, n_img))
        gone = layouts.object_class(self._layout_color).mask(frames)
        frames[gone] = 0.0  # the background of the rendered layouts
        return self.encode(frames).astype(np.uint8).reshape(n, -1)

    def layout_prior(self) -> tuple[np.ndarray, float]:
        """A layout model's prior ``p(ℓ)`` ``(H, W)`` over the object's centre pixel, and ``p(none)`` as the
        second value: the layouts of the frames trained on, counted (uniform before any training)."""
        counts = self._require_layout("layout_prior").astype(np.float64)
        p = counts / counts.sum() if counts.sum() else np.full(len(counts), 1.0 / len(counts))
        h, w, _ = self.config.image_shape
        return p[:-1].reshape(h, w), float(p[-1])

    def sample_layout(self, n: int, key: jax.Array | int = 0) -> np.ndarray:
        """``n`` layouts from a layout model's prior: ``(n, 2)`` int ``(row, col)`` of the object's centre,
        ``(-1, -1)`` for none; what :meth:`generate` draws when it is given no ``layout``."""
        n = check_int("n", n, 1)
        counts = self._require_layout("sample_layout")
        h, w, _ = self.config.image_shape
        return layouts.ids_to_positions(layouts.sample_layouts(_as_key(key), jnp.asarray(counts), n), (h, w))

    def _require_layout(self, what: str) -> np.ndarray:
        if self.state.layout_counts is None:
            raise ValueError(
                f"{what} needs a layout model: build it with DTMConfig(layout_color=(r, g, b)) (the colour of "
                "the object it places) and train it"
            )
        return np.asarray(self.state.layout_counts)

    def _world_inputs(self, prev: Any, actions: Any, n: int, *, required: bool) -> dict[str, np.ndarray]:
        """A world model's checked conditioning inputs ``{"prev": bits, "actions": ids}`` for ``n`` chains ({}
        without them: refused for a model that has them when ``required``, as in training)."""
        if not self.config.n_actions:
            if prev is not None or actions is not None:
                raise ValueError(
                    "prev/actions given to a model without a world model's conditioning inputs (n_actions=0): "
                    "build it with DTMConfig(n_actions=A) for a world model"
                    + ("; a layout model takes layout=(row, col) positions" if self.layout_bits is not None else "")
                )
            return {}
        if prev is None and actions is None and not required:
            return {}
        if prev is None or actions is None:
            if required:
                raise ValueError(
                    f"this is a world model (n_actions={self.config.n_actions}): pass prev=bits of the previous "
                    "frames and actions=ids (B,), e.g. from a TransitionLoader's (bits_t, actions, bits_t1)"
                )
            raise ValueError("a world model's conditioning needs both prev (bits (n, n_visible)) and actions (n,)")
        ids = self.check_ids("actions", actions, self.config.n_actions, n)
        return {"prev": self.check_prev(prev, n), "actions": ids}

    def check_prev(self, prev: Any, n: int) -> np.ndarray:
        """A world model's previous frames as bits ``(n, cond_frames * n_visible)`` uint8 (frames ``(n, H, W, C)``,
        or ``(n, F, H, W, C)`` for F previous frames, are encoded), or a clear error."""
        p = np.asarray(prev)
        if p.ndim >= 4:
            p = self.encode(p).reshape(len(p), -1)
        want = (n, self.config.cond_frames * self.encoding.n_bits)
        if p.shape != want:
            raise ValueError(
                f"prev must be the previous {self.config.cond_frames} frame(s)' bits of shape {want}, got {p.shape}; "
                "encode frames with dtm.encode(frames) (several frames: side by side, oldest first)"
            )
        if not np.all((p == 0) | (p == 1)):
            raise ValueError("prev must contain only 0 and 1 (bits: encode frames with dtm.encode(frames))")
        return p.astype(np.uint8)

    @staticmethod
    def check_ids(name: str, ids: Any, n: int, count: int | None = None) -> np.ndarray:
        """Class or action ids ``(count,)`` in ``0 .. n-1`` as int32, or a clear error."""
        a = np.asarray(ids)
        if a.ndim != 1 or (count is not None and len(a) != count):
            want = f"({count},)" if count is not None else "(n,)"
            raise ValueError(f"{name} must be integer ids of shape {want}, got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            raise ValueError(f"{name} must be integer ids, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= n):
            bad = int(a[(a < 0) | (a >= n)][0])
            raise ValueError(f"{name} must be ids in 0..{n - 1}, got {bad}")
        return a.astype(np.int32)

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate at ``step`` (default: the next batch): cosine decay counted in batches."""
        return float(self.lr_schedule(self.batches_trained if step is None else step))

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
        See :func:`dtm_lite.training.loop.train_from_iterator`."""
        from dtm_lite.training.loop import train_from_iterator

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
        labels: Any = None,
        prev: Any = None,
        actions: Any = None,
        return_labels: Literal[False] = False,
        layout: Any = None,
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
        labels: Any = None,
        prev: Any = None,
        actions: Any = None,
        return_labels: Literal[False] = False,
        layout: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
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
        labels: Any = None,
        prev: Any = None,
        actions: Any = None,
        return_labels: bool = False,
        layout: Any = None,
    ) -> Any: ...

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
        labels: Any = None,
        prev: Any = None,
        actions: Any = None,
        return_labels: bool = False,
        layout: Any = None,
    ) -> Any:
        """Generate ``n`` images ``(n, H, W, C)`` in [0, 1], from Bernoulli(0.5) inputs through steps T-1..0.

        Each step runs ``sweeps`` block-Gibbs sweeps (default ``config.generation_sweeps``) with β ramped
        linearly over ``beta = (start, end)`` (finite, > 0; default ``config.generation_beta``); its last
        visible sample is the next step's input. ``key`` may be a JAX key or an integer seed >= 0; None
        continues the model's own generation stream (repeatable for a given ``config.seed``).

        With ``return_trajectory=True`` also returns the decoded visible state every ``record_every``
        sweeps of every step: ``(T * (sweeps // record_every + 1), n, H, W, C)``, noisiest step first.

        Conditioning: a labelled model (``n_classes > 0``) samples image and label jointly, or with
        ``labels`` (class ids ``(n,)``, or one id for all) clamped: conditional samples.
        ``return_labels=True`` appends the final label bits' classes ``(n,)`` (most votes of the spots) to the
        result. A world model (``n_actions > 0``) takes the previous frames' bits ``prev`` ``(n, n_visible)``
        and ``actions`` ``(n,)``: samples of the next frame (see :meth:`rollout`); without them its
        conditioning field is left out.
        A layout model (``config.layout_color``, :mod:`dtm_lite.conditioning.layout`) draws each frame's layout from its
        prior (with a key folded from ``key``) unless ``layout`` gives them: ``(n, 2)`` integer ``(row, col)``
        centres of the object (one ``(row, col)`` for all; ``(-1, -1)``: no object).

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
        cond_in = self._generation_inputs(n, labels, prev, actions, return_labels)
        if layout is not None:
            self._require_layout("layout")
            pos = np.asarray(layout)
            pos = np.broadcast_to(pos, (n, 2)) if pos.shape == (2,) else pos
            h, w, _ = self.config.image_shape
            ids = layouts.positions_to_ids(pos, (h, w))
            if len(ids) != n:
                raise ValueError(f"layout must give one (row, col) for each of the n = {n} frames, got {len(ids)}")
            if self.config.n_actions and "prev" not in cond_in:
                raise ValueError(
                    "a world model with a layout draws a next frame: give prev (the previous frames' bits) and "
                    "actions with the layout"
                )
            cond_in.update(self._layout_inputs(ids, cond_in.get("prev"), cond_in.get("actions")))
        return self._generate(n, key, sweeps, beta, return_trajectory, record_every, max_chunk_bytes, cond_in,
                              return_labels, draw_layouts=layout is None)  # fmt: skip

    def _generation_inputs(self, n: int, labels: Any, prev: Any, actions: Any, return_labels: bool) -> dict[str, Any]:
        """The checked conditioning dict of :func:`_make_generate_fn` from :meth:`generate`'s arguments."""
        cfg, out = self.config, {}
        if (labels is not None or check_bool("return_labels", return_labels)) and not cfg.n_classes:
            raise ValueError(
                "this model has no labels (n_classes=0): labels and return_labels need a model built with "
                "DTMConfig(n_classes=K) and trained on labelled batches"
            )
        if labels is not None:
            ids = np.broadcast_to(np.asarray(labels), (n,)) if np.ndim(labels) == 0 else labels
            out["labels"] = self.check_ids("labels", ids, cfg.n_classes, n)
        out.update(self._world_inputs(prev, actions, n, required=False))
        return out

    def _generate(
        self,
        n: int,
        key: Any,
        sweeps: int | None,
        beta: tuple[float, float] | None,
        return_trajectory: bool,
        record_every: int,
        max_chunk_bytes: int | None,
        cond_in: dict[str, Any],
        return_labels: bool = False,
        draw_layouts: bool = True,
    ) -> Any:
        sweeps = self.config.generation_sweeps if sweeps is None else check_int("sweeps", sweeps, 1)
        b0, b1 = self.config.generation_beta if beta is None else check_beta("beta", beta)
        return_trajectory = check_bool("return_trajectory", return_trajectory)
        every = check_int("record_every", record_every, 1) if return_trajectory else sweeps
        if sweeps % every:
            raise ValueError(f"record_every must divide sweeps ({sweeps}), got {record_every}")
        budget = GENERATE_CHUNK_BYTES if max_chunk_bytes is None else check_int("max_chunk_bytes", max_chunk_bytes, 1)
        if key is None:
            gen_key, key = jax.random.split(self.state.gen_key)
            self.state = self.state._replace(gen_key=gen_key)
        else:
            key = _as_key(key)
        if self.layout_bits is not None and draw_layouts:  # ancestral: the layouts first
            k_layout = jax.random.fold_in(key, LAYOUT_STREAM)
            if not self.config.n_actions:  # from the prior
                assert self.state.layout_counts is not None
                ids = layouts.sample_layouts(k_layout, self.state.layout_counts, n)
                cond_in = {**cond_in, **self._layout_inputs(ids)}
            elif "prev" in cond_in:  # a world model's next layouts, from its layout dynamics
                ids = self._next_layouts(k_layout, cond_in["actions"], *self._previous_layouts(cond_in["prev"]))
                cond_in = {**cond_in, **self._layout_inputs(ids, cond_in["prev"], cond_in["actions"])}
        fn = self._kernel((sweeps, every, return_trajectory))
        betas = jnp.linspace(b0, b1, sweeps, dtype=jnp.float32)
        per_chain = self.generation_bytes_per_chain(sweeps, every if return_trajectory else None)
        n_chunks = -(-n // max(1, budget // per_chain))
        size = -(-n // n_chunks)  # at most two chunk sizes, so at most two compilations
        n_img = self.encoding.n_bits
        finals, trajs, label_bits = [], [], []
        for i in range(n_chunks):
            m = min(size, n - i * size)
            args = (self.state.params, key if n_chunks == 1 else jax.random.fold_in(key, i), betas, m)
            chunk = {k: jnp.asarray(v[i * size : i * size + m]) for k, v in cond_in.items()}
            final, traj = fn(*args, chunk) if chunk else fn(*args)
            final = np.asarray(final)
            finals.append(self.decode(final[:, :n_img]))
            label_bits.append(final[:, n_img:])
            if return_trajectory:
                trajs.append(self.decode(np.asarray(traj)[..., :n_img].reshape(-1, m, n_img)))
            del final, traj
        images = finals[0] if n_chunks == 1 else np.concatenate(finals)
        out: list[np.ndarray] = [images]
        if return_trajectory:
            out.append(trajs[0] if n_chunks == 1 else np.concatenate(trajs, axis=1))
        if return_labels:
            out.append(conditioning.decode_labels(np.concatenate(label_bits), self.config.n_classes,
                                                  self.config.label_spots))  # fmt: skip
        return out[0] if len(out) == 1 else tuple(out)

    def classify(
        self,
        frames: Any,
        key: jax.Array | int | None = 0,
        *,
        sweeps: int | None = None,
        chains: int = 8,
        return_votes: bool = False,
    ) -> Any:
        """Class ids ``(n,)`` of frames ``(n, H, W, C)`` (or bits ``(n, n_visible)``): the label bits sampled
        with the image clamped (step k's image: the frame noised to ``t_k``; the clean frame at step 0). The
        votes ``(n, n_classes)`` are each class's label bits averaged over the spots, over ``chains``
        independent chains a frame and over the second half of step 0's sweeps (recorded every 5): a Monte
        Carlo estimate of p(class | image), whose argmax is the class (label chains mix slowly, so several
        chains a frame make the estimate far less noisy than one). ``return_votes`` also returns the votes.
        ``key``: a JAX key or an integer seed (default 0: repeatable). Needs a labelled model."""
        cfg = self.config
        if not cfg.n_classes:
            raise ValueError("classify needs a labelled model: build it with DTMConfig(n_classes=K) and train it")
        x = np.asarray(frames)
        bits = self.encode(x) if x.ndim == 4 else x
        if bits.ndim != 2 or bits.shape[1] != self.encoding.n_bits or not np.all((bits == 0) | (bits == 1)):
            raise ValueError(
                f"frames must be images (n, {', '.join(map(str, cfg.image_shape))}) or bits "
                f"(n, {self.encoding.n_bits}), got shape {x.shape}"
            )
        sweeps = cfg.generation_sweeps if sweeps is None else check_int("sweeps", sweeps, 2)
        chains = check_int("chains", chains, 1)
        n = len(bits)
        every = next(e for e in (5, 4, 3, 2, 1) if sweeps % e == 0)
        betas = jnp.linspace(*cfg.generation_beta, sweeps, dtype=jnp.float32)
        _, traj = self._kernel((sweeps, every, True))(
            self.state.params, _as_key(0 if key is None else key), betas, n * chains,
            {"image": jnp.asarray(np.tile(bits, (chains, 1)), jnp.uint8)},
        )  # fmt: skip
        records = np.asarray(traj)[-(sweeps // every // 2) :, :, self.encoding.n_bits :]  # step 0, second half
        votes = conditioning.label_votes(records > 0, cfg.n_classes, cfg.label_spots).mean(0)
        votes = votes.reshape(chains, n, cfg.n_classes).mean(0)
        ids = np.argmax(votes, axis=-1)
        return (ids, votes) if check_bool("return_votes", return_votes) else ids

    def rollout(
        self,
        first: Any,
        actions: Any,
        key: jax.Array | int | None = None,
        *,
        sweeps: int | None = None,
        beta: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """Dream episodes with a world model: from first frames and actions ``(n, L)`` (or ``(L,)``), sample
        each next frame given the previous ``cond_frames`` frames (samples, once the dream has made them) and the
        action: frames ``(L + 1, n, H, W, C)``, the first being the last given frame as the model encodes it.

        ``first``: ``(n, H, W, C)`` (or one frame ``(H, W, C)``) with ``cond_frames = 1``; with F > 1 previous
        frames, the F frames before the dream, ``(n, F, H, W, C)`` (or ``(F, H, W, C)``), oldest first.
        ``beta``: the generation β ramp of every step (default ``config.generation_beta``)."""
        cfg = self.config
        if not cfg.n_actions:
            raise ValueError("rollout needs a world model: build it with DTMConfig(n_actions=A) and train it")
        x = np.asarray(first)
        f = cfg.cond_frames
        if x.ndim == (3 if f == 1 else 4):
            x = x[None]
        if f == 1:
            x = x[:, None] if x.ndim == 4 else x
        if x.ndim != 5 or x.shape[1] != f or x.shape[2:] != cfg.image_shape:
            want = "(n, H, W, C)" if f == 1 else f"(n, {f}, H, W, C)"
            raise ValueError(f"first must be {want} with (H, W, C) = {cfg.image_shape}, got shape {np.shape(first)}")
        a = np.asarray(actions)
        if a.ndim == 1:
            a = np.broadcast_to(a, (len(x), len(a)))
        if a.ndim != 2 or len(a) != len(x):
            raise ValueError(f"actions must be (n, L) for {len(x)} first frames, got shape {np.shape(actions)}")
        history = [self.encode(x[:, k]).astype(np.uint8) for k in range(f)]
        base = _as_key(0 if key is None else key)
        out = [self.decode(history[-1])]
        # a world model with a layout keeps the dream's layouts: each step's is drawn from the layout dynamics
        # given the two before it, and the frame is drawn around it (the given frames' layouts start it)
        ids = [self._layouts_of(h) for h in history] if self.layout_bits is not None else []
        hw = cfg.image_shape[:2]
        for step in range(a.shape[1]):
            prev = np.concatenate(history[-f:], axis=1)
            k = jax.random.fold_in(base, step)
            place = None
            if ids:
                nxt = self._next_layouts(jax.random.fold_in(k, LAYOUT_STREAM), a[:, step], ids[-2] if f > 1 else None,
                                         ids[-1])  # fmt: skip
                ids.append(nxt)
                place = layouts.ids_to_positions(nxt, hw)
            images = self.generate(len(prev), k, sweeps=sweeps, beta=beta, prev=prev, actions=a[:, step], layout=place)
            history.append(self.encode(images).astype(np.uint8))
            out.append(images)
        return np.stack(out)

    def _kernel(self, spec: tuple[int, int, bool] | tuple[str, int, int]) -> Callable[..., Any]:
        """The jitted chains kernel of ``spec``, built once: ``(sweeps, record_every, trajectory)`` for
        generation (:func:`_make_generate_fn`), ``("free", sweeps, record_every)`` for :meth:`free_run`."""
        if spec not in self._generate_fns:
            if spec[0] == "free":
                self._generate_fns[spec] = _make_free_run_fn(self, int(spec[1]), int(spec[2]))
            else:
                self._generate_fns[spec] = _make_generate_fn(self, int(spec[0]), int(spec[1]), bool(spec[2]))
        return self._generate_fns[spec]

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
        params = jax.tree.map(lambda a: a[step], self.state.params)
        s_in = 2.0 * bits - 1.0
        if self.config.n_label_bits:  # a labelled model's label bits run free too: inputs 0, no label known
            s_in = np.concatenate([s_in, np.zeros((len(bits), self.config.n_label_bits))], axis=1)
        kernel = self._kernel(("free", sweeps, record_every))
        out = kernel(params, jnp.float32(self.J[step]), jnp.asarray(s_in, jnp.float32), key)
        return np.asarray(out)[..., : self.config.n_visible]  # the image bits

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write the whole state (:class:`DTMState`, as the one flat dict :func:`state_arrays`) and the config
        to ``path`` (.npz, checkpoint format :data:`CHECKPOINT_FORMAT`), atomically: a temporary file in the
        same folder, flushed and fsynced, then renamed over ``path``. A crash midway leaves the previous file
        intact. ``extra`` (JSON-serialisable) is stored alongside."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "extra": extra or {}}
        arrays = state_arrays(self.state)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        # numpy's stub types **kwds beside allow_pickle: bool, so a dict of arrays cannot match it
        return atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]

    def save_weights(self, path: str | os.PathLike) -> Path:
        """Write the parameters only (config, every parameter array (``W``, ``b``, and a conditioned model's
        ``K``), a layout model's prior counts, batches trained; no optimiser or RNG state) to ``path`` (.npz,
        compressed, atomic): what ships as package data for :meth:`pretrained`."""
        meta = {
            "format": WEIGHTS_FORMAT,
            "version": WEIGHTS_VERSION,
            "config": self.config.to_dict(),
            "step": self.batches_trained,
        }
        arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in self.state.params.items()}
        for name in LAYOUT_LEAVES:  # a layout model's counts (None: not this kind of model)
            if getattr(self.state, name) is not None:
                arrays[name] = np.asarray(getattr(self.state, name), np.int32)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
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
        if fmt in CHECKPOINT_FORMATS:
            raise ValueError(
                f"{path} is not a dtm_lite weights file but a training checkpoint (made by DTM.save): load it "
                "with DTM.load, or write its weights with 'python -m dtm_lite export'"
            )
        if fmt != WEIGHTS_FORMAT:
            raise corrupt(path, "not a dtm_lite weights file, made by DTM.save_weights")
        _check_version(path, meta.get("version"), WEIGHTS_VERSION, "weights file version")
        dtm = cls(_config_of(path, meta))
        params = _params_of(path, z, dtm)
        step = _meta_field(path, meta, "step", lambda v: check_int("step", v, 0))
        dtm.state = dtm.state._replace(params=params, opt_state=dtm.optimizer.init(params), step=jnp.int32(step))
        for name in LAYOUT_LEAVES:
            ref = getattr(dtm.state, name)
            if ref is not None:
                counts = checked_array(path, z, name, ref.shape, np.dtype(np.int32))
                dtm.state = dtm.state._replace(**{name: jnp.asarray(counts, jnp.int32)})  # type: ignore[arg-type]
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
        self.state = loaded.state
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
        dtm_lite (a higher format number) says which format it needs. Format 1 files (before the state was one
        pytree: separate ``W``/``b``/``opt_i``/key arrays, step and penalty in the meta record) still load."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        meta, z = _read_archive(path)
        config = checkpoint_config(path, meta)
        dtm = cls(config)
        extra = _meta_field(path, meta, "extra", _json_object)
        if meta["format"] == 1:
            dtm.state = _format1_state(path, meta, z, dtm)
        else:
            dtm.state = state_from_arrays(dtm.state, z, str(path))
            if int(dtm.state.step) < 0 or not np.all(np.isfinite(np.asarray(dtm.state.corr_penalty))):
                raise corrupt(path, "negative step or non-finite correlation penalty")
        return dtm, extra
