"""Conditioning a DTM: label bits on the grid, and conditioning inputs for a world model.

**Labels** (the paper's DTM, reference section 5): a model with ``n_classes = K`` and ``label_spots = S``
has ``K * S`` extra visible bits, the one-hot code of the class repeated S times (``label_code``), on
colour-0 sites around the image (``place_labels``). They are noised by the forward process at their own
``label_rate``, clamped in the positive phase like the image, and either clamped (conditional samples),
left free (joint samples) or read out (:meth:`DTM.classify`, ``decode_labels``: the class with most votes).

**Conditioning inputs** (a world model, ``n_actions = A``): fixed inputs ``c`` (the previous frame's bits as
±1 and a one-hot action) enter each visible bit's field through *learned* weights, the conditional-RBM
construction. The action gates the weights, so bit j of the next frame sees

    h_j = Σ_n K[a, j, n] f_jn,     f_j = (prev spins of the pixels within ``cond_radius`` of j's pixel, 1),

a local kernel per action (``K`` has shape ``(T, A, n_image_bits, n_features)``). It is trained with the
same Boltzmann gradient as the biases, per chain: ``ΔK[a, j, n] = β Σ_r [a_r = a] (⟨s_rj⟩₊ - ⟨s_rj⟩₋) f_rjn / B``.
The inputs use no grid sites (like the DTM's own input spins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.graph import GridGraph


def place_labels(graph: GridGraph, visible: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Sites of the ``n_classes * spots`` label bits: int array, bit ``s * K + k`` = class k of spot s.

    The spots sit at evenly spaced points of a ring just outside the image's bounding box, each spot's K bits
    on the free colour-0 sites nearest to its point, so every spot touches the image's border region."""
    n = graph.side
    sy, sx = np.divmod(np.asarray(visible), n)
    free = np.ones(graph.n_nodes, bool)
    free[visible] = False
    free &= graph.colors == 0
    cand = np.flatnonzero(free)
    need = n_classes * spots
    if len(cand) < need:
        raise ValueError(
            f"{need} label bits ({n_classes} classes x {spots} spots) do not fit the {len(cand)} free colour-0 sites "
            f"of {graph!r}; use a larger preset or fewer label_spots"
        )
    y0, y1, x0, x1 = sy.min() - 1.5, sy.max() + 1.5, sx.min() - 1.5, sx.max() + 1.5
    perimeter = 2 * ((y1 - y0) + (x1 - x0))
    cy, cx = np.divmod(cand, n)
    out = np.empty(need, np.int64)
    taken = np.zeros(len(cand), bool)
    for s in range(spots):
        d = (s + 0.5) / spots * perimeter  # walk the ring: top, right, bottom, left
        for length, (ay, ax, dy, dx) in zip(
            (x1 - x0, y1 - y0, x1 - x0, y1 - y0),
            ((y0, x0, 0, 1), (y0, x1, 1, 0), (y1, x1, 0, -1), (y1, x0, -1, 0)),
            strict=True,
        ):
            if d <= length:
                py, px = ay + dy * d, ax + dx * d
                break
            d -= length
        dist = (cy - py) ** 2 + (cx - px) ** 2
        dist[taken] = np.inf
        for k in range(n_classes):
            j = int(np.argmin(dist))
            taken[j], dist[j] = True, np.inf
            out[s * n_classes + k] = cand[j]
    return out


def label_code(labels: jax.Array, n_classes: int, spots: int) -> jax.Array:
    """Class ids ``(B,)`` -> label bits ``(B, spots * n_classes)`` uint8: the one-hot code, ``spots`` times."""
    onehot = jax.nn.one_hot(labels, n_classes, dtype=jnp.uint8)
    return jnp.tile(onehot, (1, spots))


def label_votes(bits: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Label bits ``(..., spots * n_classes)`` -> votes ``(..., n_classes)`` in [0, 1]: the fraction of spots
    whose bit of each class is on."""
    b = np.asarray(bits, np.float32)
    return b.reshape(*b.shape[:-1], spots, n_classes).mean(-2)


def decode_labels(bits: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Label bits -> class ids ``(...)`` int: most votes (ties: the lowest id)."""
    return np.argmax(label_votes(bits, n_classes, spots), axis=-1)


def conditioning_index(
    image_shape: tuple[int, int, int], bits_per_pixel: int, radius: int, frames: int = 1
) -> np.ndarray:
    """For each image bit j (pixel p's bit t, bit order of the encoding), the previous-frame bits that feed
    its field: every bit of the pixels within ``radius`` (a (2r+1)^2 square) of p, in each of the ``frames``
    previous frames (their bits side by side, oldest first: frame f's bit i is input ``f * n_bits + i``).
    Shape ``(n_bits, frames * (2r+1)^2 * bpp)``; a neighbour outside the frame points at index
    ``frames * n_bits`` (a zero input)."""
    h, w, _ = image_shape
    bpp = bits_per_pixel
    n_bits = h * w * bpp
    if frames > 1:
        one = conditioning_index(image_shape, bpp, radius)
        pad = frames * n_bits
        return np.concatenate([np.where(one == n_bits, pad, one + f * n_bits) for f in range(frames)], axis=1)
    r, c = np.divmod(np.arange(h * w), w)
    cols = []
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            rr, cc = r + dr, c + dc
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            base = (rr * w + cc) * bpp
            for t in range(bpp):
                cols.append(np.where(inside, base + t, n_bits))
    per_pixel = np.stack(cols, axis=1)  # (H*W, n_neighbour_bits)
    return np.repeat(per_pixel, bpp, axis=0)  # every bit of a pixel sees the same neighbourhood


def features(
    prev_bits: jax.Array, index: jax.Array, offset: jax.Array | None = None, scale: jax.Array | None = None
) -> jax.Array:
    """Conditioning features ``(B, n_bits, n_features)`` float32 of the inputs' bits ``(B, n_inputs)``
    (previous frames, side by side, and a layout model's rendered layout): the neighbours' spins (±1, 0
    outside the frame) and a constant 1 (an action-dependent bias).

    With ``offset`` and ``scale`` ``(n_inputs,)`` an input enters as ``(s - offset) * scale``. A layout
    input uses its empty background's spin as offset and scale 1/2, giving {-1, 0, 1}: zero wherever the
    layout is background, so that far from the marked object only the constant feature is left. (Constant
    ±1 features there would each act as one more bias of the bit, and Adam would move the sum of the ~50 of
    them ~50 times as fast.) Previous frames keep offset 0, scale 1."""
    spins = 2.0 * prev_bits.astype(jnp.float32) - 1.0
    if offset is not None and scale is not None:
        spins = (spins - offset) * scale
    padded = jnp.concatenate([spins, jnp.zeros((spins.shape[0], 1), jnp.float32)], axis=1)
    f = padded[:, index]
    return jnp.concatenate([f, jnp.ones(f.shape[:-1] + (1,), jnp.float32)], axis=-1)


def conditioning_field(K: jax.Array, feats: jax.Array, actions: jax.Array) -> jax.Array:
    """``h[t, r, j] = Σ_n K[t, a_r, j, n] f[r, j, n]``: ``(T, B, n_bits)`` from K ``(T, A, n_bits, n_feat)``,
    features ``(B, n_bits, n_feat)`` and actions ``(B,)``."""
    return jnp.einsum("tbjn,bjn->tbj", K[:, actions], feats)


def conditioning_grad(dm: jax.Array, feats: jax.Array, actions: jax.Array, n_actions: int) -> jax.Array:
    """``Σ_r [a_r = a] dm[t, r, j] f[r, j, n] / B``: ``(T, A, n_bits, n_feat)``, the ascent direction of K
    (times β) from the per-chain magnetisation differences ``dm = ⟨s⟩₊ - ⟨s⟩₋`` of shape ``(T, B, n_bits)``."""
    onehot = jax.nn.one_hot(actions, n_actions, dtype=jnp.float32)
    return jnp.einsum("tbj,bjn,ba->tajn", dm, feats, onehot) / dm.shape[1]
