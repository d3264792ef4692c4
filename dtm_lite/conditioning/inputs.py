"""Conditioning inputs: fixed inputs that enter each image bit's field through learned local weights.

A world model (``n_actions = A``) conditions each frame on the previous frame(s) and an action; a layout model
on its rendered layout (:mod:`dtm_lite.conditioning.layout`). The inputs ``c`` (bits as ±1) enter each visible
bit's field through *learned* weights, the conditional-RBM construction. The action gates the weights, so bit
j of the next frame sees

    h_j = Σ_n K[a, j, n] f_jn,     f_j = (input spins of the pixels within ``cond_radius`` of j's pixel, 1),

a local kernel per action (``K`` has shape ``(T, A, n_image_bits, n_features)``). It is trained with the
same Boltzmann gradient as the biases, per chain: ``ΔK[a, j, n] = β Σ_r [a_r = a] (⟨s_rj⟩₊ - ⟨s_rj⟩₋) f_rjn / B``.
The inputs use no grid sites (like the DTM's own input spins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.conditioner import Batch, Conditioner
from dtm_lite.core.config import DTMConfig


def input_actions(config: DTMConfig) -> int:
    """The action axis ``A`` of ``K (T, A, n_bits, n_feat)``: ``n_actions`` for a world model, ``n_classes`` for a
    layout model with ``label_gates_layout``, 1 for another layout model, 0 without conditioning inputs."""
    if config.layout_color is None or config.n_actions:
        return config.n_actions
    return config.n_classes if config.label_gates_layout else 1


def input_frames(config: DTMConfig) -> int:
    """Frames of conditioning inputs, side by side: a world model's ``cond_frames`` previous frames, then a layout
    model's rendered layout (0 without conditioning inputs)."""
    return (config.cond_frames if config.n_actions else 0) + (config.layout_color is not None)


class InputField(Conditioner):
    """Conditioning inputs as a conditioner: ``batch["prev"]`` ``(B, n_inputs)`` bits and ``batch["actions"]``
    ``(B,)`` ids feed the field through ``K`` ``(T, n_actions, n_image_bits, n_features)``. ``index``: see
    :func:`conditioning_index`; ``offset``, ``scale``: see :func:`features`."""

    def __init__(self, index: np.ndarray, n_actions: int, offset: np.ndarray | None = None,
                 scale: np.ndarray | None = None) -> None:  # fmt: skip
        self.index, self.n_actions = jnp.asarray(index), n_actions
        self.offset = None if offset is None else jnp.asarray(offset)
        self.scale = None if scale is None else jnp.asarray(scale)

    def init_params(self, n_steps: int) -> dict[str, jax.Array]:
        n_bits, n_feat = self.index.shape[0], self.index.shape[1] + 1
        return {"K": jnp.zeros((n_steps, self.n_actions, n_bits, n_feat), jnp.float32)}

    def _features(self, batch: Batch) -> jax.Array:
        return features(batch["prev"], self.index, self.offset, self.scale)

    def field(self, params: dict[str, jax.Array], cond: Batch) -> jax.Array | None:
        if "prev" not in cond:
            return None
        return conditioning_field(params["K"], self._features(cond), cond["actions"])

    def grad(self, batch: Batch, dm: jax.Array) -> dict[str, jax.Array]:
        return {"K": conditioning_grad(dm, self._features(batch), batch["actions"], self.n_actions)}


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
