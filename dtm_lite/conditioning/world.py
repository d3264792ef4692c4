"""World-model rollouts: dream episodes, each next frame sampled given the frames before it and an action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dtm_lite.conditioning.build import find
from dtm_lite.conditioning.layout import LayoutInputs, ids_to_positions
from dtm_lite.sampling import LAYOUT_STREAM

if TYPE_CHECKING:
    from dtm_lite.model import DTM


def _first_frames(model: DTM, first: Any) -> np.ndarray:
    """``first`` as ``(n, F, H, W, C)``, F = ``cond_frames``, or a clear error."""
    cfg, x = model.config, np.asarray(first)
    f = cfg.cond_frames
    if x.ndim == (3 if f == 1 else 4):
        x = x[None]
    if f == 1 and x.ndim == 4:
        x = x[:, None]
    if x.ndim != 5 or x.shape[1] != f or x.shape[2:] != cfg.image_shape:
        want = "(n, H, W, C)" if f == 1 else f"(n, {f}, H, W, C)"
        raise ValueError(f"first must be {want} with (H, W, C) = {cfg.image_shape}, got shape {np.shape(first)}")
    return x


def rollout(model: DTM, first: Any, actions: Any, key: jax.Array, *, sweeps: int | None = None,
            beta: tuple[float, float] | None = None) -> np.ndarray:  # fmt: skip
    """:meth:`DTM.rollout` with a resolved ``key``: frames ``(L + 1, n, H, W, C)``.

    A world model with a layout keeps the dream's layouts: each step's is drawn from the layout dynamics given
    the two before it, and the frame is drawn around it (the given frames' layouts start it)."""
    cfg = model.config
    if not cfg.n_actions:
        raise ValueError("rollout needs a world model: build it with DTMConfig(n_actions=A) and train it")
    x, f = _first_frames(model, first), cfg.cond_frames
    a = np.asarray(actions)
    if a.ndim == 1:
        a = np.broadcast_to(a, (len(x), len(a)))
    if a.ndim != 2 or len(a) != len(x):
        raise ValueError(f"actions must be (n, L) for {len(x)} first frames, got shape {np.shape(actions)}")
    history = [model.encode(x[:, k]).astype(np.uint8) for k in range(f)]
    out = [model.decode(history[-1])]
    plug = find(model.spec.conditioners, LayoutInputs)
    ids = [plug.ids_of(h) for h in history] if plug is not None else []
    for step in range(a.shape[1]):
        prev = np.concatenate(history[-f:], axis=1)
        k = jax.random.fold_in(key, step)
        place = None
        if plug is not None:
            before = ids[-2] if f > 1 else None
            ids.append(plug.next_ids(jax.random.fold_in(k, LAYOUT_STREAM), model.state.plugin_state, a[:, step],
                                     before, ids[-1]))  # fmt: skip
            place = ids_to_positions(ids[-1], plug.hw)
        images = model.generate(len(prev), k, sweeps=sweeps, beta=beta, prev=prev, actions=a[:, step], layout=place)
        history.append(model.encode(images).astype(np.uint8))
        out.append(images)
    return np.stack(out)
