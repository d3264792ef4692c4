"""Layout conditioning: a DTM that draws an object where a sampled layout puts it.

A pairwise model with local couplings places objects nearly independently, so the number of objects in
its samples is roughly Poisson: at most ``e^-1 = 0.37`` of them show exactly one, however well it is
trained (the LunarLander lander: 0.13 against the data's 0.80, issue 7). A *layout model* splits the
picture into two levels:

1. the **layout** ``ℓ``: the pixel of the largest object's centre (the largest 8-connected blob of at
   least 2 pixels of colour ``config.layout_color``, its mean row and column rounded), or "none" when a
   frame has no such blob. Its prior ``p(ℓ)`` is the histogram of the layouts of every training frame,
   ``counts (H*W + 1,)`` in the model's state (:attr:`DTMState.layout_counts`, the last bin "none");
2. the **picture** ``p(x | ℓ)``: the DTM with the layout as a conditioning input. The layout is rendered as
   a frame (background ``(0, ..., 0)`` everywhere, the object's colour at ``ℓ``) and enters each visible
   bit's field through the learned local weights of :mod:`dtm_lite.conditioning` (a world model's
   inputs, with one "action").

Sampling is ancestral: ``ℓ ~ p(ℓ)``, then the DTM's chains given ``ℓ``. The Ising model still draws the
object (its shape, size and colour) and everything else; the layout only says where the one object sits.
Ids: pixel ``(r, c)`` is ``r * W + c``; ``H * W`` is "none".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .metrics import ObjectClass, object_stats

LAYOUT_TOL = 0.25  # a pixel is the object's when every channel lies within this of layout_color
LAYOUT_MIN_SIZE = 2  # pixels of the smallest blob a layout marks (the object metric's min_size)


def object_class(color: tuple[float, ...]) -> ObjectClass:
    """The :class:`ObjectClass` a layout marks: pixels within :data:`LAYOUT_TOL` of ``color`` in every channel."""
    return ObjectClass("layout object", color=color, tol=LAYOUT_TOL)


def layout_ids(frames: np.ndarray, color: tuple[float, ...]) -> np.ndarray:
    """Layouts of frames ``(n, H, W, C)`` in [0, 1]: ids ``(n,)`` int32, ``r * W + c`` for the largest blob's
    centre ``(r, c)`` (rounded half up), ``H * W`` for a frame without a blob."""
    n, h, w = np.shape(frames)[:3]
    s = object_stats(frames, object_class(color), min_size=LAYOUT_MIN_SIZE)
    r = np.floor(np.nan_to_num(s.row, nan=0.0) + 0.5).astype(np.int64)
    c = np.floor(np.nan_to_num(s.col, nan=0.0) + 0.5).astype(np.int64)
    return np.where(s.has_blob, r * w + c, h * w).astype(np.int32)


def render_layouts(ids: np.ndarray, background: np.ndarray, marker: np.ndarray) -> np.ndarray:
    """The layout frames' bits ``(n, H*W*bpp)`` uint8 of ids ``(n,)``: ``background`` ``(H*W*bpp,)`` (the
    encoded background frame) with pixel ``id``'s bits replaced by ``marker`` ``(bpp,)`` (the encoded
    object colour); the id ``H*W`` ("none") leaves the background alone."""
    ids = np.asarray(ids, np.int64)
    bpp = len(marker)
    n_pix = len(background) // bpp
    out = np.tile(np.asarray(background, np.uint8).reshape(n_pix, bpp), (len(ids), 1, 1))
    rows = np.flatnonzero(ids < n_pix)
    out[rows, ids[rows]] = marker
    return out.reshape(len(ids), n_pix * bpp)


def count_layouts(counts: jax.Array, ids: jax.Array) -> jax.Array:
    """``counts (H*W + 1,)`` int32 plus the histogram of ``ids (B,)``: the prior's update for one batch."""
    return counts + jnp.bincount(ids, length=counts.shape[0]).astype(counts.dtype)


def sample_layouts(key: jax.Array, counts: jax.Array, n: int) -> np.ndarray:
    """``n`` layout ids from the prior ``p(ℓ) = counts / sum(counts)`` (uniform over every id, "none"
    included, while the counts are all 0: an untrained model). Returns ``(n,)`` int32."""
    counts = jnp.asarray(counts, jnp.float32)
    logits = jnp.where(counts.sum() > 0, jnp.log(counts), jnp.zeros_like(counts))
    return np.asarray(jax.random.categorical(key, logits, shape=(n,)), np.int32)


def positions_to_ids(positions: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``(n, 2)`` integer ``(row, col)`` pixels (``(-1, -1)``: no object) -> ids ``(n,)``; a clear error for
    anything else."""
    h, w = hw
    p = np.asarray(positions)
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(
            f"layout must be integer (row, col) pixel positions of shape (n, 2) (or one (row, col) for all), "
            f"(-1, -1) for no object; got {p.dtype} of shape {p.shape}"
        )
    none = (p[:, 0] == -1) & (p[:, 1] == -1)
    bad = ~none & ((p[:, 0] < 0) | (p[:, 0] >= h) | (p[:, 1] < 0) | (p[:, 1] >= w))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"layout[{i}] = {tuple(int(v) for v in p[i])} lies outside the {h}x{w} frame; "
            "give rows in 0..H-1 and columns in 0..W-1, or (-1, -1) for no object"
        )
    return np.where(none, h * w, p[:, 0] * w + p[:, 1]).astype(np.int32)


def ids_to_positions(ids: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Ids ``(n,)`` -> ``(n, 2)`` int ``(row, col)``, ``(-1, -1)`` for "none" (the inverse of
    :func:`positions_to_ids`)."""
    h, w = hw
    ids = np.asarray(ids, np.int64)
    pos = np.stack(np.divmod(ids, w), axis=1)
    pos[ids >= h * w] = -1
    return pos
