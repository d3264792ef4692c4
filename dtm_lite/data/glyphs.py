"""Glyphs: a small, sharply multimodal image set that the package makes itself (no download).

Each image is one of the ten digits of a 5x7 bitmap font, scaled ``scale`` times, placed at one of the
horizontal ``shifts`` in a ``side x side`` frame, with each pixel flipped with probability ``noise``. The
set has ``10 * len(shifts)`` sharp modes far apart in Hamming distance (two digits differ in about 40 of
196 pixels at the default size), so a single energy-based model that learns it builds deep, separated
energy wells, and Gibbs chains started in one well rarely cross to another: the setting where the mixing
of a model's sampler decides its samples (Jelinčič et al., arXiv 2510.23972).

Because the modes are known exactly, a sample is classified without a trained classifier: its nearest
mode (digit, shift) in Hamming distance (:func:`nearest_mode`), and it counts as *clean* when that distance
is at most ``clean_radius`` pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dtm_lite.core.validation import check_float, check_int

# The digits 0-9 of a classic 5x7 bitmap font, one string of five 0/1 characters a row.
FONT_5X7 = (
    ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
)


@dataclass(frozen=True)
class Glyphs:
    """The glyph set: frames ``(side, side, 1)``, float32 in {0, 1}.

    ``templates`` ``(n_modes, side, side)``: mode ``m = digit * len(shifts) + i`` is ``digit`` at column
    offset ``shifts[i]`` (its glyph ``7 * scale`` rows tall, vertically centred)."""

    side: int = 14
    scale: int = 2
    shifts: tuple[int, ...] = (0, 2, 4)
    noise: float = 0.02

    def __post_init__(self) -> None:
        side, scale = check_int("side", self.side, 1), check_int("scale", self.scale, 1)
        shifts = tuple(check_int("shift", s, 0) for s in self.shifts)
        if not shifts:
            raise ValueError("shifts must hold at least one column offset")
        if 7 * scale > side or 5 * scale + max(shifts) > side:
            raise ValueError(
                f"a {5 * scale}x{7 * scale} glyph at column offsets up to {max(shifts)} does not fit a "
                f"{side}x{side} frame; raise side or lower scale / the shifts"
            )
        check_float("noise", self.noise, 0, 0.5, hi_open=True)
        object.__setattr__(self, "shifts", shifts)

    @property
    def n_modes(self) -> int:
        return 10 * len(self.shifts)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.side, self.side, 1)

    @cached_property
    def templates(self) -> np.ndarray:
        """The noise-free modes, ``(n_modes, side, side)`` uint8, read-only (built once: every batch and every
        classification reads them)."""
        out = np.zeros((self.n_modes, self.side, self.side), np.uint8)
        top = (self.side - 7 * self.scale) // 2
        for d, rows in enumerate(FONT_5X7):
            glyph = np.array([[int(ch) for ch in r] for r in rows], np.uint8)
            glyph = np.kron(glyph, np.ones((self.scale, self.scale), np.uint8))
            for i, s in enumerate(self.shifts):
                out[d * len(self.shifts) + i, top : top + glyph.shape[0], s : s + glyph.shape[1]] = glyph
        out.setflags(write=False)
        return out

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` frames ``(n, side, side, 1)`` float32 and their digits ``(n,)``: a uniform mode, noised."""
        n = check_int("n", n, 0)
        modes = rng.integers(0, self.n_modes, n)
        flips = rng.random((n, self.side, self.side)) < self.noise
        frames = self.templates[modes] ^ flips
        return frames[..., None].astype(np.float32), modes // len(self.shifts)

    def batches(self, batch_size: int, seed: int) -> Iterator[np.ndarray]:
        """An endless stream of frame batches ``(batch_size, side, side, 1)``, repeatable for ``seed``."""
        rng = np.random.default_rng(check_int("seed", seed, 0))
        while True:
            yield self.sample(batch_size, rng)[0]

    def nearest_mode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each image's nearest mode and its Hamming distance: ``(modes (n,), distances (n,))``.

        ``images`` ``(n, side, side, 1)`` or ``(n, side, side)``, binarised at 0.5."""
        x = (np.asarray(images).reshape(len(images), -1) > 0.5).astype(np.int32)
        t = self.templates.reshape(self.n_modes, -1).astype(np.int32)
        dist = x.sum(1, keepdims=True) + t.sum(1) - 2 * x @ t.T  # |x - t|_1 for bits
        return dist.argmin(1), dist.min(1)


def mode_coverage(glyphs: Glyphs, images: np.ndarray, clean_radius: int | None = None) -> dict[str, float]:
    """How a sample set covers the glyph set's digits.

    - ``clean``: the fraction of images within ``clean_radius`` pixels of a mode (default: 3 times the
      expected number of noise flips, at least 4);
    - ``digit_tv``: total-variation distance between the clean images' digit histogram and the data's
      (uniform): 0 when every digit is drawn equally often, 0.9 when one digit takes all;
    - ``digits_seen``: how many of the ten digits appear among the clean images.
    """
    if clean_radius is None:
        clean_radius = max(4, int(np.ceil(3 * glyphs.noise * glyphs.side**2)))
    modes, dist = glyphs.nearest_mode(images)
    ok = dist <= clean_radius
    digits = modes[ok] // len(glyphs.shifts)
    hist = np.bincount(digits, minlength=10) / max(1, len(digits))
    tv = 0.5 * float(np.abs(hist - 0.1).sum()) if len(digits) else 0.9
    return {"clean": float(ok.mean()), "digit_tv": tv, "digits_seen": float((hist > 0).sum())}


GLYPH_SETS: dict[str, Glyphs] = {  # named glyph sets, smallest first (benchmarks/freeze_search.py searches them)
    "7x7, noise 0.02": Glyphs(side=7, scale=1, shifts=(0, 1, 2), noise=0.02),
    "7x7, noise 0": Glyphs(side=7, scale=1, shifts=(0, 1, 2), noise=0.0),
    "10x10, noise 0.02": Glyphs(side=10, scale=1, shifts=(0, 2, 4), noise=0.02),
    "10x10, noise 0": Glyphs(side=10, scale=1, shifts=(0, 2, 4), noise=0.0),
    "14x14, noise 0.02": Glyphs(),  # the DTM-vs-MEBM study's default set
    "14x14, noise 0": Glyphs(noise=0.0),
}
