"""Quantization: images <-> bits that the Ising model's visible spins hold.

Frames are ``(..., H, W, C)``. Whether values are ``uint8`` in [0, 255] or float in [0, 1] is decided by
the dtype alone, never by looking at the values. Bits are uint8 in {0, 1}, flattened pixel-major,
channel-minor: channel value ``p = (h * W + w) * C + c`` owns bits ``p * L .. p * L + L - 1``.

Encodings:
- binary (L = 1): ``b = [v > threshold]``; decode ``v = b``.
- thermometer (L levels, the reference's "Poisson-binomial"): ``q = round(v * L)`` in 0..L,
  ``b_t = [q > t]`` for t = 0..L-1; decode ``v = (sum_t b_t) / L``. L spins give L + 1 values.
- palette: each pixel becomes the nearest of K colours, coded one-hot (K bits) or in
  ``ceil(log2 K)`` binary digits; it suits rendered frames with a few flat colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_unit_float(frames: np.ndarray, *, name: str = "frames") -> np.ndarray:
    """Frames ``(..., H, W, C)`` as float32 in [0, 1]; uint8 is divided by 255, floats are checked.

    Raises ValueError on a rank below 3, a NaN or infinite value, or a float outside [0, 1].
    """
    arr = np.asarray(frames)
    if arr.ndim < 3:
        raise ValueError(
            f"{name} must have shape (..., H, W, C), got shape {arr.shape}; "
            "add a channel axis for grayscale images, e.g. frames[..., None]"
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contain NaN or infinite values; clean the data source")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float {name} must lie in [0, 1], found values in [{lo:g}, {hi:g}]; "
                "pass uint8 frames for [0, 255] data or divide by 255"
            )
        return arr
    raise ValueError(
        f"{name} have dtype {arr.dtype}; use uint8 in [0, 255] or a float dtype in [0, 1] "
        "(other integer dtypes are ambiguous: cast them explicitly)"
    )


def encode_binary(frames: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(..., H, W, C)`` -> uint8 bits ``(..., H*W*C)``, ``b = [v > threshold]`` with v in [0, 1]."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    v = to_unit_float(frames)
    return (v > threshold).astype(np.uint8).reshape(*v.shape[:-3], -1)


def encode_thermometer(frames: np.ndarray, levels: int) -> np.ndarray:
    """``(..., H, W, C)`` -> uint8 bits ``(..., H*W*C*L)``; ``q = round(v L)``, ``b_t = [q > t]``."""
    _check_levels(levels)
    v = to_unit_float(frames)
    q = np.rint(v * levels).astype(np.int32)
    bits = (q[..., None] > np.arange(levels)).astype(np.uint8)
    return bits.reshape(*v.shape[:-3], -1)


def encode(frames: np.ndarray, levels: int = 1, threshold: float = 0.5) -> np.ndarray:
    """Binary threshold for ``levels == 1``, thermometer code otherwise."""
    _check_levels(levels)
    return encode_binary(frames, threshold) if levels == 1 else encode_thermometer(frames, levels)


def decode(bits: np.ndarray, image_shape: tuple[int, int, int], levels: int = 1) -> np.ndarray:
    """uint8/bool/±1 bits ``(..., H*W*C*L)`` -> float32 images ``(..., H, W, C)`` with ``v = sum_t b_t / L``.

    Spins in {-1, +1} are accepted too (any value > 0 is a 1).
    """
    _check_levels(levels)
    h, w, c = image_shape
    b = np.asarray(bits)
    n_bits = h * w * c * levels
    if b.shape[-1] != n_bits:
        raise ValueError(
            f"expected {n_bits} bits per image (H*W*C*L = {h}*{w}*{c}*{levels}), got last axis {b.shape[-1]}"
        )
    q = (b > 0).reshape(*b.shape[:-1], h * w * c, levels).sum(-1)
    return (q.astype(np.float32) / np.float32(levels)).reshape(*b.shape[:-1], h, w, c)


def n_bits(image_shape: tuple[int, int, int], levels: int = 1) -> int:
    """Visible spins needed for one image: ``H * W * C * L``."""
    h, w, c = image_shape
    return h * w * c * levels


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer) or levels < 1:
        raise ValueError(f"levels must be a positive integer (1 = binary), got {levels!r}")


@dataclass(frozen=True)
class Palette:
    """Nearest-colour quantization to K RGB colours in [0, 1], coded ``"onehot"`` or ``"binary"``.

    ``Palette.lunarlander()`` holds the colours of LunarLander's renderer. One pixel costs K bits
    (one-hot) or ceil(log2 K) bits (binary code) instead of 3 bits per channel-threshold.
    """

    colors: tuple[tuple[float, float, float], ...]
    code: str = "binary"

    def __post_init__(self) -> None:
        cols = np.asarray(self.colors, dtype=np.float64)
        if cols.ndim != 2 or cols.shape[1] != 3 or len(cols) < 2:
            raise ValueError("a palette needs at least two RGB colours, as a sequence of (r, g, b) in [0, 1]")
        if cols.min() < 0 or cols.max() > 1:
            raise ValueError("palette colours must be floats in [0, 1]")
        if self.code not in ("onehot", "binary"):
            raise ValueError(f"code must be 'onehot' or 'binary', got {self.code!r}")

    @classmethod
    def lunarlander(cls, code: str = "binary") -> Palette:
        """Black sky, white terrain, purple lander body, yellow flags (LunarLander-v3's renderer)."""
        rgb = ((0, 0, 0), (255, 255, 255), (128, 102, 230), (204, 204, 0))
        return cls(tuple(tuple(v / 255 for v in c) for c in rgb), code)

    @property
    def bits_per_pixel(self) -> int:
        k = len(self.colors)
        return k if self.code == "onehot" else max(1, int(np.ceil(np.log2(k))))

    def indices(self, frames: np.ndarray) -> np.ndarray:
        """Index of the nearest palette colour per pixel, ``(..., H, W)``."""
        v = to_unit_float(frames)
        if v.shape[-1] != 3:
            raise ValueError(f"palette encoding needs RGB frames (C = 3), got C = {v.shape[-1]}")
        d = ((v[..., None, :] - np.asarray(self.colors, np.float32)) ** 2).sum(-1)
        return d.argmin(-1)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """``(..., H, W, 3)`` -> uint8 bits ``(..., H*W*bits_per_pixel)``."""
        idx = self.indices(frames)
        k = len(self.colors)
        if self.code == "onehot":
            bits = (idx[..., None] == np.arange(k)).astype(np.uint8)
        else:
            bits = ((idx[..., None] >> np.arange(self.bits_per_pixel)) & 1).astype(np.uint8)
        return bits.reshape(*idx.shape[:-2], -1)

    def decode(self, bits: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """Bits -> float32 RGB images ``(..., H, W, 3)``; invalid codes map to the nearest valid index."""
        h, w = hw
        b = (np.asarray(bits) > 0).reshape(*np.shape(bits)[:-1], h, w, self.bits_per_pixel)
        k = len(self.colors)
        if self.code == "onehot":
            idx = b.argmax(-1)
        else:
            idx = np.minimum((b * (1 << np.arange(self.bits_per_pixel))).sum(-1), k - 1)
        return np.asarray(self.colors, np.float32)[idx]
