"""Exact moments by enumeration, for graphs small enough (<= 20 free spins) to check samplers against.

For ``p(s) ∝ exp(β [Σ_E W_ij s_i s_j + Σ_i b_i s_i])`` with some spins clamped, enumerate the
``2**n_free`` states of the free spins and return ``⟨s_i⟩`` and ``⟨s_i s_j⟩`` per edge.
"""

from __future__ import annotations

import numpy as np

from dtm_lite.core.graph import GridGraph

MAX_FREE = 20


def all_states(n: int) -> np.ndarray:
    """All ``2**n`` spin vectors in {-1, +1}, shape ``(2**n, n)``."""
    if n > MAX_FREE:
        raise ValueError(f"exact enumeration of {n} free spins is too large (max {MAX_FREE})")
    idx = np.arange(2**n)[:, None]
    return (((idx >> np.arange(n)) & 1) * 2 - 1).astype(np.float64)


def exact_moments(
    graph: GridGraph,
    weights: np.ndarray,
    biases: np.ndarray,
    spins: np.ndarray | None = None,
    clamped: np.ndarray | None = None,
    beta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(⟨s_i⟩ (n_nodes,), ⟨s_i s_j⟩ (n_edges,))`` for one chain.

    Clamped spins (bool mask ``clamped``) are held at their value in ``spins``.
    """
    n = graph.n_nodes
    clamped = np.zeros(n, bool) if clamped is None else np.asarray(clamped, bool)
    free = np.flatnonzero(~clamped)
    states = np.tile(np.asarray(spins if spins is not None else np.ones(n), np.float64), (2 ** len(free), 1))
    states[:, free] = all_states(len(free))
    e = graph.edges
    prod = states[:, e[:, 0]] * states[:, e[:, 1]]
    logp = beta * (prod @ np.asarray(weights, np.float64) + states @ np.asarray(biases, np.float64))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return p @ states, p @ prod
