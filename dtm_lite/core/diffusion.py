"""The forward (noising) process and the couplings it implies (Jelinčič et al., arXiv 2510.23972).

Time grid: ``u = linspace(0, 1, T + 1)``; ``"linear"``: ``t = u``; ``"log"``: ``t = -ln(1 - u)`` (``t_T = ∞``).
Over an interval ``dt`` each bit is replaced by a fair coin with probability ``1 - exp(-λ dt)``, so it
flips with probability ``(1 - exp(-λ dt)) / 2``. The exact reverse-step input coupling is

    J = atanh(exp(-λ Δt)) = -½ ln tanh(λ Δt / 2),    Δt = t_{k+1} - t_k   (J = 0 if t_{k+1} = ∞),

since then ``P(same) = σ(2J) = (1 + exp(-λ Δt)) / 2``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.sampler import uniform

SCHEDULES = ("log", "linear")


def time_grid(num_steps: int, kind: str = "log") -> np.ndarray:
    """``t_0 .. t_T``, shape ``(T + 1,)``; the log grid ends at ``inf``."""
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    u = np.linspace(0.0, 1.0, num_steps + 1)
    if kind == "linear":
        return u
    with np.errstate(divide="ignore"):
        return -np.log1p(-u)


def couplings(num_steps: int, kind: str = "log", rate: float = 0.8) -> np.ndarray:
    """Input couplings ``J_k`` for steps k = 0..T-1, shape ``(T,)``."""
    t = time_grid(num_steps, kind)
    dt = np.diff(t)
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(dt), 0.0, np.arctanh(np.exp(-rate * np.where(np.isinf(dt), 1.0, dt))))


def replace_probability(dt: jax.Array | float, rate: float | jax.Array) -> jax.Array:
    """``1 - exp(-λ dt)``: chance that a bit is redrawn over ``dt`` (1 for ``dt = ∞``)."""
    return -jnp.expm1(-rate * jnp.asarray(dt, jnp.float32))


def add_noise(
    key: jax.Array, bits: jax.Array | np.ndarray, dt: jax.Array | float, rate: float | jax.Array
) -> jax.Array:
    """Run the forward process for ``dt`` on bits in {0, 1} (any shape); returns uint8 bits."""
    k_replace, k_coin = jax.random.split(key)
    replace = uniform(k_replace, bits.shape) < replace_probability(dt, rate)
    coin = uniform(k_coin, bits.shape) < 0.5
    return jnp.where(replace, coin, bits.astype(bool)).astype(jnp.uint8)


def training_pair(
    key: jax.Array, x0: jax.Array | np.ndarray, t_k: jax.Array, t_k1: jax.Array, rate: Any, offset: float
) -> tuple[jax.Array, jax.Array]:
    """Step k's training pair with offset δ: ``x_start = noise(x0, t_k (1-δ))``,
    ``x_end = noise(x_start, t_{k+1} (1+δ) - t_k (1-δ))``."""
    k1, k2 = jax.random.split(key)
    start_t = t_k * (1.0 - offset)
    x_start = add_noise(k1, x0, start_t, rate)
    x_end = add_noise(k2, x_start, t_k1 * (1.0 + offset) - start_t, rate)
    return x_start, x_end
