"""``DTMState``: the whole state of a DTM as one pytree, and its flat dict of arrays (what a checkpoint holds)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


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

    :func:`state_arrays` / :func:`state_from_arrays` turn it into a flat dict of arrays (a checkpoint) and back.
    """

    params: dict[str, jax.Array]
    opt_state: Any
    step: jax.Array
    key: jax.Array
    gen_key: jax.Array
    corr_penalty: jax.Array
    plugin_state: dict[str, jax.Array]


def _leaf_name(path: tuple[Any, ...]) -> str:
    """``"params/W"``, ``"opt_state/0/mu/W"``, ...: a pytree leaf's path as a checkpoint array name."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _is_key(a: Any) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def state_arrays(state: DTMState) -> dict[str, np.ndarray]:
    """The state as one flat dict ``{"state/params/W": array, ..., "state/key": uint32 key data}``: what a
    checkpoint stores (typed PRNG keys as their raw ``uint32`` data)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        out["state/" + _leaf_name(path)] = np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
    return out


def corrupt(where: Any, why: str) -> ValueError:
    """The one error for a file that is not a dtm_lite checkpoint (or weights file): names ``where``."""
    return ValueError(f"{where}: corrupt or not a dtm_lite checkpoint ({why})")


def checked_array(where: Any, arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """``arrays[name]``, present with ``shape`` and a dtype that casts to ``dtype`` safely, or :func:`corrupt`."""
    a = arrays.get(name)
    if not isinstance(a, np.ndarray):
        raise corrupt(where, f"no array {name!r}")
    if a.shape != tuple(shape) or np.result_type(a.dtype, dtype) != dtype:
        raise corrupt(where, f"{name} is {a.dtype}{list(a.shape)}, its config needs {dtype}{list(shape)}")
    return a


def state_from_arrays(reference: DTMState, arrays: dict[str, np.ndarray], where: str = "checkpoint") -> DTMState:
    """The inverse of :func:`state_arrays`, shaped like ``reference`` (a fresh state of the same config):
    every leaf must be present with the reference's shape and a dtype that casts to it safely, else one
    ``ValueError`` naming ``where`` and the array."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(reference)
    out = []
    for path, ref in leaves:
        want = jax.random.key_data(ref) if _is_key(ref) else ref
        dtype = np.dtype(want.dtype)
        a = checked_array(where, arrays, "state/" + _leaf_name(path), np.shape(want), dtype)
        out.append(jax.random.wrap_key_data(jnp.asarray(a)) if _is_key(ref) else jnp.asarray(a, dtype))
    return jax.tree.unflatten(jax.tree.structure(reference), out)
