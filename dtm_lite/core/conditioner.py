"""The one interface through which anything beside the noisier image conditions a DTM.

A plain DTM's step k sees one input, the noisier image ``x_{t_{k+1}}``. A *conditioner* adds something else,
in at most three ways, each optional:

1. **Extra visible bits** (``sites``): bits on free grid sites after the image's, noised by the forward
   process at their own ``rate`` and clamped in the positive phase like the image (labels: the paper's
   conditional DTM, Jelinčič et al., arXiv 2510.23972). ``clean_bits(batch)`` gives their clean values;
   ``clamp(cond)`` their ±1 spins when generation holds them fixed.
2. **A field on the image bits** (``field``): ``h[t, r, j]`` ``(T, B, n_image_bits)``, added to each image bit's
   bias in both phases, from learned parameters (``init_params``) and fixed inputs in the batch (a world
   model's previous frames and action, a layout model's rendered layout). Its parameters are trained with
   the same Boltzmann gradient as the biases, per chain: ``grad(batch, dm)`` maps the per-chain
   magnetisation differences ``dm = ⟨s⟩₊ - ⟨s⟩₋`` ``(T, B, n_image_bits)`` (integer counts, summed over the
   samples; the core divides by the samples and multiplies by β) to the ascent of each parameter.
3. **State that training counts** (``init_state``, ``update``): integer arrays kept in
   :attr:`DTMState.plugin_state` (a layout model's prior), updated on device from each batch.

The core (:mod:`dtm_lite.core.train_step`, :mod:`dtm_lite.core.generation`) calls only these methods; it never
asks which kind of conditioner it holds. The plug-ins live in :mod:`dtm_lite.conditioning`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

Batch = dict[str, Any]
"""A batch (training) or conditioning dict (generation): ``"bits"`` and whatever the conditioners read."""


class Conditioner:
    """A plug-in's defaults: no bits, no field, no parameters, no state. Subclasses override what they add."""

    sites: np.ndarray = np.zeros(0, np.int64)  # grid sites of the extra visible bits, ``(n_bits,)``
    rate: float = 0.8  # forward-process rate of the extra bits

    @property
    def n_bits(self) -> int:
        return len(self.sites)

    def init_params(self, n_steps: int) -> dict[str, jax.Array]:
        """Extra parameters, each with the diffusion steps first: ``{name: (T, ...)}``."""
        return {}

    def init_state(self) -> dict[str, jax.Array]:
        """Extra state that training counts (not trained by gradient): ``{name: array}``."""
        return {}

    def clean_bits(self, batch: Batch) -> jax.Array | None:
        """The clean values ``(B, n_bits)`` uint8 of the extra bits of a training batch."""
        return None

    def clamp(self, cond: Batch) -> jax.Array | None:
        """Generation: ±1 spins ``(n, n_bits)`` at which the extra bits are held, or None (they run free)."""
        return None

    def field(self, params: dict[str, jax.Array], cond: Batch) -> jax.Array | None:
        """The field ``(T, B, n_image_bits)`` on the image bits (T: the steps of ``params``), or None."""
        return None

    def grad(self, batch: Batch, dm: jax.Array) -> dict[str, jax.Array]:
        """The ascent of each extra parameter from ``dm`` ``(T, B, n_image_bits)``, before ``β / n_samples``."""
        return {}

    def update(self, state: dict[str, jax.Array], batch: Batch) -> dict[str, jax.Array]:
        """The counted state after one training batch."""
        return state
