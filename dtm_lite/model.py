"""``DTM``: the Denoising Thermodynamic Model as one object, a thin front over pure functions.

A DTM (Jelinčič et al., "An efficient probabilistic hardware architecture for diffusion-like models", arXiv
2510.23972) is T conditional Ising EBMs on one grid graph; step k denoises ``x_{t_{k+1}}`` into ``x_{t_k}``.
The maths lives in :mod:`dtm_lite.core`: the sampler (``core/sampler.py``, with a plain reference sweep in
``core/gibbs_reference.py``), one pure training step (``core/train_step.py``) and generation
(``core/generation.py``). Labels, a world model's inputs and a layout plug in through
:mod:`dtm_lite.core.conditioner`. This class holds the config, the fixed :class:`~dtm_lite.core.spec.ModelSpec`
and the state pytree (:class:`~dtm_lite.core.state.DTMState`), checks inputs and calls those functions.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite import sampling
from dtm_lite.conditioning import batches, labels, world
from dtm_lite.conditioning.build import conditioners
from dtm_lite.conditioning.layout import ids_to_positions
from dtm_lite.core.config import DTMConfig, as_key
from dtm_lite.core.generation import make_free_run, make_generate
from dtm_lite.core.spec import ModelSpec, init_state, optimizer
from dtm_lite.core.state import DTMState
from dtm_lite.core.train_step import make_train_step
from dtm_lite.core.validation import check_int
from dtm_lite.scale.sharding import ChainMesh, Devices, check_partitionable, global_batch, resolve_devices
from dtm_lite.training import checkpoint

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


@functools.lru_cache(maxsize=32)
def _shared_build(config: DTMConfig) -> tuple[ModelSpec, Any, Any]:
    """``(spec, optimizer, schedule)`` of a config, built once per process: every DTM of an equal config shares
    them, so that its jitted kernels (which close over them) are shared too (see :func:`_shared_kernels`)."""
    return ModelSpec.build(config, conditioners), *optimizer(config)


_HOST_ONLY_FIELDS = ("adaptive_penalty", "corr_penalty", "corr_penalty_min", "autocorr_tau")
"""Config fields read on the host alone (the penalty's settings): :func:`_kernel_config` sets them to their defaults."""


def _kernel_config(config: DTMConfig) -> DTMConfig:
    """``config`` as the compiled kernels see it. They never read the seed (the keys live in the state; only a
    ``"random"`` placement draws its sites from it) nor the penalty settings (λ_cp lives in the state and is
    updated on the host), so configs that differ only there share one set of compiled kernels."""
    host_only = {f.name: f.default for f in dataclasses.fields(DTMConfig) if f.name in _HOST_ONLY_FIELDS}
    seed = config.seed if config.placement == "random" else 0
    with warnings.catch_warnings():  # the user's config has already warned about what it holds
        warnings.simplefilter("ignore")
        return config.replace(seed=seed, **host_only)


def _shared_kernels(config: DTMConfig, devices: tuple[Any, ...]) -> tuple[ChainMesh, Callable[..., Any], dict]:
    """``(mesh, train_fn, kernels)`` of a config on ``devices``, built once per process for each
    :func:`_kernel_config`. A second DTM of such a config (a notebook cell run again, a model loaded from a
    checkpoint, another seed) then compiles nothing: jitted functions are compiled once each, and these are
    the same functions."""
    return _kernels_of(_kernel_config(config), devices)


@functools.lru_cache(maxsize=32)
def _kernels_of(config: DTMConfig, devices: tuple[Any, ...]) -> tuple[ChainMesh, Callable[..., Any], dict]:
    spec, opt, schedule = _shared_build(config)
    mesh = ChainMesh.of(list(devices))
    return mesh, make_train_step(spec, opt, schedule, mesh), {}


def pretrained_names() -> list[str]:
    """Names accepted by :meth:`DTM.pretrained` (the ``.npz`` files shipped in ``dtm_lite/pretrained``)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.npz"))


class DTM:
    """A Denoising Thermodynamic Model on one grid graph.

    >>> dtm = DTM(DTMConfig(image_shape=(8, 8, 1), preset="20_8", warmup_sweeps=20, n_samples=4))
    >>> metrics = dtm.train_step(bits)          # bits: (batch, 64) in {0, 1}
    >>> images = dtm.generate(16)               # (16, 8, 8, 1) in [0, 1]

    ``dtm.encoding`` owns frames <-> bits: ``dtm.encode``, ``dtm.decode`` and ``IteratorDataLoader(...,
    encoding=dtm.encoding)`` all go through it. ``dtm.state`` is the whole state, one pytree.
    """

    def __init__(self, config: DTMConfig | None = None, *, devices: Devices = None, **overrides: Any) -> None:
        config = config or DTMConfig()
        self.config = config.replace(**overrides) if overrides else config
        #: the fixed parts: graph, visible sites, time grid, couplings, conditioners
        self.spec, self.optimizer, self.lr_schedule = _shared_build(self.config)
        self.state: DTMState = init_state(self.spec, self.optimizer)
        self.use_devices(devices)

    def use_devices(self, devices: Devices = None) -> DTM:
        """Run training and generation on ``devices`` (:mod:`dtm_lite.scale.sharding`): None one device, an int N
        the first N of ``jax.devices()``, ``"all"`` every device of every process, or a list of devices. The
        chains are split over a 1-D mesh, the state replicated; results are bit-identical for any device count.
        ``config.batch_size`` must be a multiple of the device count. Sets :attr:`train_fn`, the pure, jitted
        ``train_fn(state, batch) -> (state, metrics)`` (:func:`dtm_lite.core.train_step.make_train_step`)."""
        mesh, train_fn, kernels = _shared_kernels(self.config, tuple(resolve_devices(devices)))  # jit: no compile yet
        mesh.check_batch_size(self.config.batch_size)
        check_partitionable()
        self.mesh, self.train_fn, self._kernels = mesh, train_fn, kernels
        self.state = self.mesh.put_state(self.state)  # where train_fn's outputs land: no second compile
        return self

    # ------------------------------------------------------------------ what the model is
    graph = property(lambda self: self.spec.graph)
    lattice = property(lambda self: self.spec.lattice)
    encoding = property(lambda self: self.spec.encoding)
    visible = property(lambda self: self.spec.visible, doc="Grid sites of the image bits ``(n_image_bits,)``.")
    visible_all = property(lambda self: self.spec.visible_all, doc="The image's sites, then extra (label) bits'.")
    label_sites = property(lambda self: self.spec.visible_all[len(self.spec.visible) :], doc="Label bits' sites.")
    times = property(lambda self: self.spec.times, doc="The time grid ``t_0 .. t_T``.")
    J = property(lambda self: self.spec.J, doc="The image bits' input couplings ``J_k`` ``(T,)``.")
    n_devices = property(lambda self: self.mesh.n_devices, doc="Devices the chains are split over.")
    params = property(lambda self: self.state.params)
    num_steps = property(lambda self: self.config.num_diffusion_steps)
    batches_trained = property(lambda self: int(self.state.step), doc="``state.step`` as a Python int.")

    @property
    def corr_penalty(self) -> np.ndarray:
        """Each diffusion step's correlation penalty λ_cp, ``(T,)`` float32 (a copy of ``state.corr_penalty``)."""
        return np.array(self.state.corr_penalty)

    @corr_penalty.setter
    def corr_penalty(self, value: Any) -> None:
        try:  # one value sets every step's; a value past float32's range becomes inf, refused below
            with np.errstate(over="ignore"):
                cp = np.broadcast_to(np.asarray(value, np.float32), (self.num_steps,))
        except (TypeError, ValueError):
            cp = np.full(1, np.nan)
        if not (np.all(np.isfinite(cp)) and np.all(cp >= 0)):
            raise ValueError(
                f"corr_penalty must be one finite value >= 0 (for every step) or {self.num_steps} of them (one a "
                f"diffusion step), got {value!r}"
            )
        self.state = self.state._replace(corr_penalty=jnp.asarray(cp))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DTM({c.image_shape} {self.encoding.describe()} = {c.n_visible} visible on {self.graph!r}, "
            f"T={c.num_diffusion_steps} {c.schedule}, trained {self.batches_trained} batches)"
        )

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(..., H, W, C)`` -> visible bits ``(..., n_visible)`` with this model's encoding."""
        return self.encoding.encode(frames)

    def decode(self, bits: np.ndarray) -> np.ndarray:
        """Visible bits (or ±1 spins) ``(..., n_visible)`` -> images ``(..., H, W, C)`` in [0, 1]."""
        return self.encoding.decode(bits)

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate at ``step`` (default: the next batch): cosine decay counted in batches."""
        return float(self.lr_schedule(self.batches_trained if step is None else check_int("step", step, 0)))

    # ------------------------------------------------------------------ training
    def make_batch(self, bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None) -> dict[str, Any]:
        """The checked batch dict that :attr:`train_fn` takes (:func:`dtm_lite.conditioning.batches.make_batch`)."""
        return batches.make_batch(self.spec, bits, labels, prev, actions)

    def train_step(self, bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None) -> dict[str, float]:
        """One optimiser update of every diffusion step on one batch of visible bits ``(B, n_visible)``.

        A labelled model (``n_classes > 0``) needs ``labels``, class ids ``(B,)``; a world model
        (``n_actions > 0``) needs the previous frames' bits ``prev`` and ``actions`` ``(B,)`` (``bits`` is then the
        next frame). Returns ``gap`` (mean |⟨s⟩₊ - ⟨s⟩₋| on the image's visible sites), ``grad_norm``, ``lr``."""
        return self._apply(self.make_batch(bits, labels, prev=prev, actions=actions))

    def train_step_local(self, bits: Any, labels: Any = None, *, prev: Any = None, actions: Any = None):
        """:meth:`train_step` on this process's share of the batch, for multi-host training (one process a host,
        the model on ``devices="all"``): process ``i`` passes rows ``i * b ..`` of the global batch, ``b =
        batch_size / jax.process_count()``. Every process must call it, in step."""
        n_proc, B = jax.process_count(), self.config.batch_size
        if n_proc == 1:
            return self.train_step(bits, labels, prev=prev, actions=actions)
        if B % n_proc:
            raise ValueError(f"batch_size {B} is not divisible by the {n_proc} processes that share it")
        local = batches.make_batch(self.spec, bits, labels, prev, actions, rows=B // n_proc)
        return self._apply(global_batch(self.mesh, local, B))

    def _apply(self, batch: dict[str, Any]) -> dict[str, float]:
        if not all(getattr(a, "sharding", None) == self.mesh.replicated for a in jax.tree.leaves(self.state)):
            self.state = self.mesh.put_state(self.state)  # a leaf replaced outside train_fn: no recompile
        state, out = self.train_fn(self.state, batch)
        out = jax.device_get(out)  # one fetch: the metrics and each parameter's "finite/<name>" flag
        finite = {k: out.pop(k) for k in [k for k in out if k.startswith("finite/")]}
        bad = sorted(k.removeprefix("finite/") for k, ok in finite.items() if not ok)
        if bad:  # refused before anything (a checkpoint, a sample) can use them
            raise checkpoint.NonFiniteError(
                f"training diverged: this step (batch {self.batches_trained + 1}) made the parameters {bad} "
                f"non-finite (NaN or inf), at learning rate {self.learning_rate():.3g}; the model keeps its state "
                f"before the step. Lower config.learning_rate (now {self.config.learning_rate:g}, e.g. 10x smaller)"
            )
        self.state = state
        return {k: float(v) for k, v in out.items()}

    def train_from_iterator(self, n_epochs: int, data_iterator_factory: Any, batches_per_epoch: int,
                            evaluate_every: int = 0, holdout: np.ndarray | None = None,
                            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                            **kwargs: Any) -> list[dict[str, Any]]:  # fmt: skip
        """Streaming training with held-out evaluation, checkpoints and resume
        (:func:`dtm_lite.training.loop.train_from_iterator`)."""
        from dtm_lite.training.loop import train_from_iterator

        return train_from_iterator(self, n_epochs, data_iterator_factory, batches_per_epoch, evaluate_every,
                                   holdout, checkpoint_dir, resume, **kwargs)  # fmt: skip

    # ------------------------------------------------------------------ sampling
    def _key(self, key: Any) -> jax.Array:
        """A JAX key: ``key`` (a key or an integer seed), or for None the next of the model's own stream."""
        if key is not None:
            return as_key(key)
        gen_key, key = jax.random.split(self.state.gen_key)
        self.state = self.state._replace(gen_key=gen_key)
        return key

    def kernel(self, spec: tuple) -> Callable[..., Any]:
        """The jitted chains kernel of ``spec``, built once: ``(sweeps, record_every, trajectory)`` for generation,
        ``("free", sweeps, record_every)`` for :meth:`free_run`."""
        if spec not in self._kernels:
            if spec[0] == "free":
                self._kernels[spec] = make_free_run(self.spec, int(spec[1]), int(spec[2]), self.mesh)
            else:
                self._kernels[spec] = make_generate(self.spec, int(spec[0]), int(spec[1]), bool(spec[2]), self.mesh)
        return self._kernels[spec]

    def generate(self, n: int, key: Any = None, **kwargs: Any) -> Any:
        """Generate ``n`` images ``(n, H, W, C)`` in [0, 1], from Bernoulli(0.5) inputs through steps T-1..0.

        Each step runs ``sweeps`` block-Gibbs sweeps (default ``config.generation_sweeps``) with β ramped
        linearly over ``beta = (start, end)`` (default ``config.generation_beta``). ``key``: a JAX key or an
        integer seed; None continues the model's own stream (repeatable for a given ``config.seed``).
        The last ``config.quench_fraction`` of each step's sweeps run at ``config.quench_beta`` (``quench_fraction=``
        overrides it; :func:`dtm_lite.sampling.beta_ramp`).
        ``return_trajectory=True`` also returns the visible state every ``record_every`` sweeps of every step,
        ``(T * (sweeps // record_every + 1), n, H, W, C)``, noisiest step first.

        Conditioning: ``labels`` (ids ``(n,)`` or one id) clamps a labelled model's label bits, and
        ``return_labels=True`` appends the sampled classes ``(n,)``; a world model takes ``prev`` (the previous
        frames' bits) and ``actions`` ``(n,)``; a layout model draws each frame's layout from its prior unless
        ``layout`` gives ``(n, 2)`` (or one) ``(row, col)`` centres, ``(-1, -1)`` for no object.

        Memory and speed: the chains run in chunks under ``max_chunk_bytes`` (default
        :data:`dtm_lite.sampling.GENERATE_CHUNK_BYTES`, 1 GiB) and, on CPU, of at most ``max_chunk_chains`` (default
        :data:`dtm_lite.sampling.GENERATE_CHUNK_CHAINS`, 128 a device, to stay in cache); when ``n`` fits one chunk
        the result is that of one run with ``key``, else chunk ``i`` runs with ``jax.random.fold_in(key, i)``."""
        return sampling.generate(self, n, self._key(key), **kwargs)

    def generation_bytes_per_chain(self, sweeps: int | None = None, record_every: int | None = None) -> int:
        """Estimated working memory of one chain of :meth:`generate` (:func:`dtm_lite.sampling.bytes_per_chain`)."""
        return sampling.bytes_per_chain(self, sweeps, record_every)

    def free_run(self, step: int, inputs: np.ndarray, sweeps: int, key: Any = 0, record_every: int = 1) -> np.ndarray:
        """Free chains of diffusion step ``step`` with inputs clamped to ``inputs`` (bits ``(n, n_visible)``), at the
        training β: the visible bits every ``record_every`` sweeps, ``(sweeps // record_every + 1, n, n_visible)``
        uint8, the first record the initial state (what the mixing diagnostic watches)."""
        return sampling.free_run(self, step, inputs, sweeps, self._key(key), record_every)

    def classify(self, frames: Any, key: Any = 0, **kwargs: Any) -> Any:
        """Class ids ``(n,)`` of frames (:func:`dtm_lite.conditioning.labels.classify`)."""
        return labels.classify(self, frames, self._key(key), **kwargs)

    def rollout(self, first: Any, actions: Any, key: Any = None, **kwargs: Any) -> np.ndarray:
        """Dream episodes with a world model (:func:`dtm_lite.conditioning.world.rollout`): frames ``(L + 1, n, H,
        W, C)``. ``key`` as in :meth:`generate`: None continues the model's own stream."""
        return world.rollout(self, first, actions, self._key(key), **kwargs)

    def layout_prior(self, label: int | None = None) -> tuple[np.ndarray, float]:
        """A layout model's prior ``p(ℓ)`` ``(H, W)`` over the object's centre pixel, and ``p(none)``; ``label``: a
        labelled layout model's ``p(ℓ | class)``."""
        plug = batches.require_layout(self.spec, "layout_prior")
        if label is not None:
            if not self.config.n_classes:
                raise ValueError("layout_prior(label=...) needs a labelled model (DTMConfig(n_classes=K))")
            label = check_int("label", label, 0, self.config.n_classes - 1)
        return plug.prior(self.state.plugin_state, label)

    def sample_layout(self, n: int, key: Any = 0, labels: Any = None) -> np.ndarray:
        """``n`` layouts from a layout model's prior: ``(n, 2)`` int ``(row, col)``, ``(-1, -1)`` for none;
        ``labels`` (ids ``(n,)`` or one id): a labelled layout model's ``p(ℓ | class)``."""
        plug, n = batches.require_layout(self.spec, "sample_layout"), check_int("n", n, 1)
        ids = batches.check_labels(self.spec, labels, n, required=False).get("labels")
        return ids_to_positions(plug.draw(as_key(key), self.state.plugin_state, n, ids)[0], plug.hw)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write the whole state and the config to ``path`` (.npz), atomically; ``extra`` (JSON) alongside."""
        return checkpoint.write_checkpoint(path, self.config, self.state, extra or {})

    def save_weights(self, path: str | os.PathLike) -> Path:
        """Write the parameters and counts (no optimiser or RNG state) to ``path``: what :meth:`pretrained` ships."""
        return checkpoint.write_weights(path, self.config, self.state)

    @classmethod
    def load_weights(cls, path: str | os.PathLike) -> DTM:
        """A DTM with the parameters of :meth:`save_weights` (fresh optimiser); a clear error for anything else."""
        config, arrays, step = checkpoint.read_weights(path)
        model = cls(config)
        model.state = checkpoint.weights_state(model.state, arrays, step, model.optimizer, path)
        return model

    @classmethod
    def pretrained(cls, name: str = "lunarlander") -> DTM:
        """A shipped, trained model (package data, no download); :func:`pretrained_names` lists them."""
        names = pretrained_names()
        if name not in names:
            raise ValueError(f"no pretrained model named {name!r}; available: {', '.join(names) or 'none'}")
        return cls.load_weights(PRETRAINED_DIR / f"{name}.npz")

    @classmethod
    def load(cls, path: str | os.PathLike) -> DTM:
        """A DTM restored from :meth:`save`: same config, parameters, optimiser state, counters and RNG."""
        return cls.load_with_extra(path)[0]

    @classmethod
    def load_with_extra(cls, path: str | os.PathLike) -> tuple[DTM, dict[str, Any]]:
        """:meth:`load`, and the ``extra`` dict saved with the checkpoint."""
        config, arrays, extra = checkpoint.read_checkpoint(path)
        model = cls(config)
        model.state = checkpoint.checkpoint_state(model.state, arrays, path)
        return model, extra

    def restore(self, path: str | os.PathLike) -> dict[str, Any]:
        """Continue from a checkpoint of this same model: its whole state replaces this one's. Returns its
        ``extra``. A checkpoint made with another config is refused, naming the fields that differ."""
        config, arrays, extra = checkpoint.read_checkpoint(path)
        if config != self.config:
            diff = {k: (v, getattr(config, k)) for k, v in self.config.to_dict().items() if getattr(config, k) != v}
            raise ValueError(f"checkpoint {path} was made with another config (this run, checkpoint): {diff}")
        self.state = checkpoint.checkpoint_state(self.state, arrays, path)
        return extra
