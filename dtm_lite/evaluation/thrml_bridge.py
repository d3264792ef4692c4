"""The same Ising model in Extropic's thrml (a dev dependency), as an oracle and a speed baseline.

thrml's energy is ``-β (Σ b s + Σ J s s)`` with spins stored as bools (True = +1): the same model as
:func:`dtm_lite.ising.gibbs_sample`. Its program updates the free blocks in list order, so two
blocks, colour 0 then colour 1, give the same block-Gibbs sweep. It has no per-sweep β schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.graph import GridGraph


def thrml_sampler(
    graph: GridGraph,
    weights: np.ndarray,
    biases: np.ndarray,
    *,
    beta: float = 1.0,
    warmup_sweeps: int,
    n_samples: int,
    sweeps_per_sample: int,
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """A jitted ``f(keys (C,), spins0 (C, n_nodes) ±1) -> (n_samples, C, n_nodes) ±1 int8`` using thrml."""
    try:
        import thrml
        from thrml.models import IsingEBM, IsingSamplingProgram
    except ImportError as err:  # pragma: no cover - dev dependency
        raise ImportError("thrml is a dev dependency: pip install -e '.[dev]'") from err

    # annotated with thrml's parameter types: its lists are invariant, so list[SpinNode] would not match
    nodes: list[thrml.AbstractNode] = [thrml.SpinNode() for _ in range(graph.n_nodes)]
    edges: list[tuple[thrml.AbstractNode, thrml.AbstractNode]] = [
        (nodes[int(u)], nodes[int(v)]) for u, v in graph.edges
    ]
    ebm = IsingEBM(nodes, edges, jnp.asarray(biases, jnp.float32), jnp.asarray(weights, jnp.float32), jnp.asarray(beta))
    colour = [np.flatnonzero(graph.colors == c) for c in (0, 1)]
    blocks: list[tuple[thrml.Block, ...] | thrml.Block] = [thrml.Block([nodes[i] for i in idx]) for idx in colour]
    program = IsingSamplingProgram(ebm, blocks, [])
    schedule = thrml.SamplingSchedule(warmup_sweeps, n_samples, sweeps_per_sample)
    order = np.concatenate(colour)
    inverse = np.argsort(order)

    def one_chain(key, s0):
        init = [s0[idx] > 0 for idx in colour]
        out = thrml.sample_states(key, program, schedule, init, [], blocks)
        spins = jnp.concatenate(out, axis=-1)[:, inverse]
        return jnp.where(spins, 1, -1).astype(jnp.int8)

    return jax.jit(lambda keys, s0: jnp.swapaxes(jax.vmap(one_chain)(keys, s0), 0, 1))
