"""``ModelSpec``: everything fixed about a DTM once its config and conditioners are known (the graph, where
the visible bits sit, the time grid and input couplings), and ``init_state``, its fresh state pytree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dtm_lite.core import sampler as smp
from dtm_lite.core.capacity import check_capacity
from dtm_lite.core.conditioner import Conditioner
from dtm_lite.core.config import DTMConfig, seed_key
from dtm_lite.core.diffusion import couplings, time_grid
from dtm_lite.core.encoding import Encoding
from dtm_lite.core.graph import GridGraph
from dtm_lite.core.placement import place_visible
from dtm_lite.core.state import DTMState


class ChainSplit(Protocol):
    """How the chains are split over devices (:class:`dtm_lite.scale.sharding.ChainMesh` is one)."""

    @property
    def replicated(self) -> Any: ...
    @property
    def rows(self) -> Any: ...
    def constrain(self, x: jax.Array, axis: int) -> jax.Array: ...


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """The fixed parts of a DTM (hashable by identity, so jitted kernels can close over it).

    ``visible`` ``(n_image_bits,)``: the image bits' grid sites; ``visible_all``: those, then every
    conditioner's extra bits. ``times`` ``(T + 1,)`` the time grid, ``J`` ``(T,)`` the image bits' input
    couplings ``J_k`` (:mod:`dtm_lite.core.diffusion`); with extra bits ``J_bits`` ``(T, n_visible_all)`` and
    ``rates`` ``(n_visible_all,)`` give each bit its own (None and the scalar rate without)."""

    config: DTMConfig
    graph: GridGraph
    lattice: smp.Lattice
    encoding: Encoding
    visible: np.ndarray
    visible_all: np.ndarray
    times: np.ndarray
    J: np.ndarray
    J_bits: np.ndarray | None
    rates: np.ndarray | float
    conditioners: tuple[Conditioner, ...]

    @property
    def n_image_bits(self) -> int:
        return self.encoding.n_bits

    @property
    def n_extra_bits(self) -> int:
        return len(self.visible_all) - len(self.visible)

    @classmethod
    def build(
        cls, config: DTMConfig, conditioners: Callable[[DTMConfig, GridGraph, np.ndarray], Sequence[Conditioner]]
    ) -> ModelSpec:
        """The spec of ``config``; ``conditioners(config, graph, visible)`` makes its plug-ins."""
        graph = GridGraph.from_preset(config.preset)
        encoding = Encoding.from_config(config)
        n_values, bits_each, unit = encoding.capacity_counts
        check_capacity(graph, n_values, bits_each, config.n_label_bits, unit=unit)
        visible = place_visible(
            graph, config.image_shape, how=config.placement, seed=config.seed, bits_per_pixel=encoding.bits_per_pixel
        )
        plugins = tuple(conditioners(config, graph, visible))
        T, n_img = config.num_diffusion_steps, encoding.n_bits
        J = couplings(T, config.schedule, config.image_rate)
        J_bits: np.ndarray | None = None
        rates: np.ndarray | float = config.image_rate
        if any(p.n_bits for p in plugins):
            J_bits = np.concatenate(
                [np.repeat(J[:, None], n_img, 1)]
                + [np.repeat(couplings(T, config.schedule, p.rate)[:, None], p.n_bits, 1) for p in plugins],
                axis=1,
            )
            rates = np.concatenate([np.full(n_img, config.image_rate)] + [np.full(p.n_bits, p.rate) for p in plugins])
        visible_all = np.concatenate([visible] + [p.sites for p in plugins])
        times = time_grid(T, config.schedule)
        return cls(config, graph, smp.lattice(graph), encoding, visible, visible_all, times, J, J_bits, rates, plugins)


def optimizer(config: DTMConfig) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with a cosine learning-rate decay counted in batches: ``(optimizer, schedule)``."""
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.lr_decay_batches, config.lr_final_fraction)
    return optax.adamw(schedule, b1=0.9, b2=0.999, weight_decay=config.weight_decay), schedule


def init_state(spec: ModelSpec, opt: optax.GradientTransformation) -> DTMState:
    """A fresh state: zero couplings and biases (and conditioners' parameters), keys from ``config.seed``.

    The adaptive penalty starts from ``max(corr_penalty, corr_penalty_min)`` (each of its updates does)."""
    c = spec.config
    T = c.num_diffusion_steps
    params = {
        "W": jnp.zeros((T, spec.graph.n_edges), jnp.float32),
        "b": jnp.zeros((T, spec.graph.n_nodes), jnp.float32),
    }
    plugin_state: dict[str, jax.Array] = {}
    for p in spec.conditioners:
        params.update(p.init_params(T))
        plugin_state.update(p.init_state())
    key, gen_key = jax.random.split(seed_key(c.seed))
    cp0 = max(c.corr_penalty, c.corr_penalty_min) if c.adaptive_penalty else c.corr_penalty
    return DTMState(params, opt.init(params), jnp.int32(0), key, gen_key, jnp.full(T, cp0, jnp.float32), plugin_state)
