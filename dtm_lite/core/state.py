"""``DTMState``: the whole state of a DTM as one pytree."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax


class DTMState(NamedTuple):
    """The whole state of a DTM, one pytree: everything that training or generation changes.

    - ``params``: ``W (T, n_edges)``, ``b (T, n_nodes)`` float32, the couplings and biases of each step, and
      the conditioners' parameters (a world or layout model's ``K (T, A, n_image_bits, n_features)``);
    - ``opt_state``: the AdamW state of ``params``;
    - ``step``: int32 ``()``, batches trained (the learning-rate schedule's clock);
    - ``key``: the training key (each batch splits it); ``gen_key``: the key of :meth:`DTM.generate`'s
      own stream (used when no key is given);
    - ``corr_penalty``: float32 ``(T,)``, each step's correlation penalty λ_cp (the adaptive rule moves it
      between epochs);
    - ``plugin_state``: what the conditioners count in training (:mod:`dtm_lite.core.conditioner`), a dict of
      int32 arrays by name (a layout model's prior ``"layout_counts"``); empty for a plain DTM.

    :func:`dtm_lite.training.checkpoint.state_arrays` / ``state_from_arrays`` turn it into a flat dict of arrays
    (a checkpoint) and back.
    """

    params: dict[str, jax.Array]
    opt_state: Any
    step: jax.Array
    key: jax.Array
    gen_key: jax.Array
    corr_penalty: jax.Array
    plugin_state: dict[str, jax.Array]
