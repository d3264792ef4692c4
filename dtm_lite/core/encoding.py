"""Quantization: images <-> bits that the Ising model's visible spins hold.

Frames are ``(..., H, W, C)``. Whether values are ``uint8`` in [0, 255] or float in [0, 1] is decided by
the dtype alone, never by looking at the values. Bits are uint8 in {0, 1}, flattened pixel-major,
channel-minor: channel value ``p = (h * W + w) * C + c`` owns bits ``p * L .. p * L + L - 1``.

Encodings:
- binary (L = 1): ``b = [v > threshold]``; decode ``v = b``.
- thermometer (L levels, the research code's "Poisson-binomial"): ``q = round(v * L)`` in 0..L,
  ``b_t = [q > t]`` for t = 0..L-1; decode ``v = (sum_t b_t) / L``. L spins give L + 1 values.
- palette: each pixel becomes the nearest of K colours, coded one-hot (K bits) or in
  ``ceil(log2 K)`` binary digits; it suits rendered frames with a few flat colours. Pixel
  ``p = h * W + w`` owns bits ``p * bpp .. p * bpp + bpp - 1`` (bpp = bits per pixel).

A model's choice among the three lives in one :class:`Encoding` (``Encoding.from_config(config)``), which
owns ``encode``, ``decode``, the bit count and the capacity numbers; everything else dispatches through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dtm_lite.core.validation import check_int


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


@dataclass(frozen=True)
class Palette:
    """Nearest-colour quantization to K RGB colours in [0, 1], coded ``"onehot"`` or ``"binary"``.

    ``dtm_lite.data.lunarlander_settings.palette()`` holds the colours of LunarLander's renderer. One pixel costs K bits
    (one-hot) or ceil(log2 K) bits (binary code) instead of 3 bits per channel-threshold.

    With ``threshold`` set, each channel is first binarised (``v > threshold``) and the nearest colour
    is taken to that corner of the RGB cube. Area-resized frames hold blends: a grey terrain edge
    (0.5, 0.5, 0.5) is nearest to LunarLander's mid-tone purple lander, so plain nearest-colour turns
    every terrain edge into "lander"; binarised first it stays sky or terrain, while the lander's
    pixels (blue-dominant) still map to purple.
    """

    colors: tuple[tuple[float, float, float], ...]
    code: str = "binary"
    threshold: float | None = None

    def __post_init__(self) -> None:
        cols = np.asarray(self.colors, dtype=np.float64)
        if cols.ndim != 2 or cols.shape[1] != 3 or len(cols) < 2 or not np.all((cols >= 0) & (cols <= 1)):  # NaN too
            raise ValueError("a palette needs at least two RGB colours, as a sequence of (r, g, b) in [0, 1]")
        object.__setattr__(self, "colors", tuple((float(r), float(g), float(b)) for r, g, b in cols.tolist()))
        if self.code not in ("onehot", "binary"):
            raise ValueError(f"code must be 'onehot' or 'binary', got {self.code!r}")
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be None or in [0, 1), got {self.threshold}")

    @property
    def bits_per_pixel(self) -> int:
        k = len(self.colors)
        return k if self.code == "onehot" else max(1, int(np.ceil(np.log2(k))))

    def indices(self, frames: np.ndarray) -> np.ndarray:
        """Index of the nearest palette colour per pixel (to the binarised pixel when ``threshold`` is
        set), ``(..., H, W)``."""
        v = to_unit_float(frames)
        if v.shape[-1] != 3:
            raise ValueError(f"palette encoding needs RGB frames (C = 3), got C = {v.shape[-1]}")
        if self.threshold is not None:
            v = (v > self.threshold).astype(np.float32)
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


ENCODINGS = ("binary", "thermometer", "palette")
PALETTE_CODES = ("binary", "onehot")


@dataclass(frozen=True)
class Encoding:
    """How a model turns frames ``(..., H, W, C)`` into visible bits ``(..., n_bits)`` and back: ``kind`` is one of
    the module's three encodings; bits per pixel ``C``, ``C * levels`` or ``palette.bits_per_pixel``, and
    ``n_bits = H * W * bits_per_pixel``."""

    kind: str
    image_shape: tuple[int, int, int]
    levels: int = 1
    threshold: float = 0.5
    palette: Palette | None = None

    def __post_init__(self) -> None:
        # worded in DTMConfig's field names: the config builds its Encoding to check these fields
        if self.kind not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.kind!r}")
        shape = tuple(int(v) for v in self.image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", shape)
        levels = check_int("grayscale_levels", self.levels, 1)
        object.__setattr__(self, "levels", levels)
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.kind == "binary" and levels != 1:
            raise ValueError(
                f"encoding='binary' has 1 bit a channel value, but grayscale_levels={levels}; "
                "use encoding='thermometer' for several levels (or leave encoding unset)"
            )
        if self.kind != "palette":
            return
        if levels != 1:
            raise ValueError(f"encoding='palette' codes whole pixels, so grayscale_levels must stay 1, got {levels}")
        if shape[2] != 3:
            raise ValueError(f"encoding='palette' needs RGB frames: image_shape (H, W, 3), got {shape}")
        if self.palette is None:
            raise ValueError(
                "encoding='palette' needs palette=((r, g, b), ...): at least two RGB colours in [0, 1], e.g. "
                "dtm_lite.data.lunarlander_settings.LUNARLANDER_COLORS (or lunarlander_settings.model_config())"
            )

    @classmethod
    def from_config(cls, config: Any) -> Encoding:
        """The encoding of a :class:`~dtm_lite.model.DTMConfig` (fields ``encoding``, ``image_shape``,
        ``grayscale_levels``, ``threshold``, ``palette``, ``palette_code``)."""
        palette = None
        if config.encoding == "palette" and config.palette is not None:
            palette = Palette(config.palette, config.palette_code, config.threshold)
        return cls(config.encoding, config.image_shape, config.grayscale_levels, config.threshold, palette)

    @property
    def bits_per_pixel(self) -> int:
        """Visible bits of one pixel (all its channels): ``C``, ``C * L`` or the palette code's width."""
        if self.kind == "palette":
            assert self.palette is not None
            return self.palette.bits_per_pixel
        return self.image_shape[2] * self.levels

    @property
    def n_bits(self) -> int:
        """Visible bits of one image, ``H * W * bits_per_pixel``."""
        h, w, _ = self.image_shape
        return h * w * self.bits_per_pixel

    @property
    def capacity_counts(self) -> tuple[int, int, str]:
        """``(n_values, bits_each, what)`` for :func:`~dtm_lite.core.capacity.check_capacity`:
        channel values x levels for binary/thermometer, pixels x code width for a palette."""
        h, w, c = self.image_shape
        if self.kind == "palette":
            return h * w, self.bits_per_pixel, "pixels"
        return h * w * c, self.levels, "pixel values"

    def describe(self) -> str:
        """A short human-readable name, e.g. ``"palette (4 colours, binary code, 2 bits a pixel)"``."""
        if self.kind == "binary":
            return f"binary (threshold {self.threshold:g}, 1 bit a channel value)"
        if self.kind == "thermometer":
            return f"thermometer ({self.levels} bits a channel value)"
        assert self.palette is not None
        k = len(self.palette.colors)
        return f"palette ({k} colours, {self.palette.code} code, {self.bits_per_pixel} bits a pixel)"

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(..., H, W, C)`` (uint8 in [0, 255] or float in [0, 1]) -> uint8 bits ``(..., n_bits)``."""
        frames = np.asarray(frames)
        if tuple(frames.shape[-3:]) != self.image_shape:
            raise ValueError(
                f"frames have shape {frames.shape[-3:]}, but the encoding expects (H, W, C) = {self.image_shape}"
            )
        if self.kind == "palette":
            assert self.palette is not None
            return self.palette.encode(frames)
        return self._channel_bits(to_unit_float(frames))

    def _channel_bits(self, v: np.ndarray) -> np.ndarray:
        """Binary or thermometer bits of values ``v`` ``(..., H, W, C)`` already checked to be float32 in [0, 1]."""
        if self.kind == "binary":
            return (v > self.threshold).astype(np.uint8).reshape(*v.shape[:-3], -1)
        q = np.rint(v * self.levels).astype(np.int32)  # thermometer: the first q of a value's L bits are lit
        return (q[..., None] > np.arange(self.levels)).astype(np.uint8).reshape(*v.shape[:-3], -1)

    def decode(self, bits: np.ndarray) -> np.ndarray:
        """Bits (or ±1 spins) ``(..., n_bits)`` -> float32 images ``(..., H, W, C)`` in [0, 1]."""
        b = np.asarray(bits)
        if b.shape[-1:] != (self.n_bits,):
            raise ValueError(
                f"expected {self.n_bits} bits per image ({self.describe()} of {self.image_shape}), got shape {b.shape}"
            )
        if self.kind == "palette":
            assert self.palette is not None
            return self.palette.decode(b, self.image_shape[:2])
        q = (b > 0).reshape(*b.shape[:-1], -1, self.levels).sum(-1)
        return (q.astype(np.float32) / np.float32(self.levels)).reshape(*b.shape[:-1], *self.image_shape)


def encode(frames: np.ndarray, levels: int = 1, threshold: float = 0.5) -> np.ndarray:
    """Frames ``(..., H, W, C)`` -> uint8 bits ``(..., H*W*C*levels)``: binary at ``threshold`` for ``levels == 1``,
    the thermometer code otherwise."""
    v, levels = to_unit_float(frames), check_int("levels", levels, 1)
    return Encoding("binary" if levels == 1 else "thermometer", v.shape[-3:], levels, threshold)._channel_bits(v)


def decode(bits: np.ndarray, image_shape: tuple[int, int, int], levels: int = 1) -> np.ndarray:
    """Inverse of :func:`encode`: bits (or ±1 spins) ``(..., H*W*C*levels)`` -> float32 ``(..., H, W, C)``."""
    levels = check_int("levels", levels, 1)
    return Encoding("binary" if levels == 1 else "thermometer", image_shape, levels).decode(bits)
