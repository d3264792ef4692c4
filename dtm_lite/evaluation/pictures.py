"""Picture files a training run writes: image grids as PNGs and sampling trajectories as animated GIFs.

Images are numpy arrays ``(n, H, W, C)`` of floats in ``[0, 1]`` with ``C`` in {1, 3} (``(n, H, W)`` is read as
``C = 1``). numpy and Pillow only: matplotlib is loaded just for :func:`add_caption`'s font (DejaVu Sans, which has
β). The figures that need matplotlib (``show_images``, ``plot_metrics``, ...) live in :mod:`dtm_lite.interface.plots`,
which re-exports these names.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

SEPARATOR = 128  # gray level of the 1-px lines between grid cells


def _as_nhwc(images: np.ndarray) -> np.ndarray:
    """(n, H, W) or (n, H, W, C) floats in [0, 1] -> (n, H, W, 3) uint8."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"expected images (n, H, W, C) with C in {{1, 3}}, got shape {x.shape}")
    x = np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def image_grid(images: np.ndarray, ncols: int | None = None) -> np.ndarray:
    """Mosaic of n images as a uint8 RGB array.

    ``ncols`` defaults to ``ceil(sqrt(n))``, ``nrows = ceil(n / ncols)``. Cells are separated and framed
    by 1-px gray lines, so the result has shape ``(nrows * (H + 1) + 1, ncols * (W + 1) + 1, 3)``; unused
    cells are gray.
    """
    x = _as_nhwc(images)
    n, h, w, _ = x.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    ncols = min(n, ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, 3), SEPARATOR, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, ncols)
        grid[1 + r * (h + 1) : (r + 1) * (h + 1), 1 + c * (w + 1) : (c + 1) * (w + 1)] = x[k]
    return grid


def _upscale(grid: np.ndarray, scale: int):
    """uint8 (h, w, 3) -> PIL image of size (w * scale, h * scale), nearest-neighbour."""
    from PIL import Image

    img = Image.fromarray(grid)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def save_image_grid(images: np.ndarray, path: str | Path, scale: int = 4) -> Path:
    """Write ``image_grid(images)`` upscaled ``scale`` times (nearest neighbour) as a PNG; return the path."""
    path = Path(path)
    _upscale(image_grid(images), scale).save(path, format="PNG")
    return path


def add_caption(img, text: str):
    """``img`` (PIL, RGB) below a white band holding ``text`` in black, wrapped to the image width."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 12)  # matplotlib's font: has β
    left, top, right, bottom = font.getbbox("Mg")
    line_h, char_w = bottom - top + 3, max(1, (right - left) // 2)
    lines = textwrap.wrap(text, max(8, (img.width - 8) // char_w))
    out = Image.new("RGB", (img.width, img.height + line_h * len(lines) + 6), "white")
    draw = ImageDraw.Draw(out)
    draw.fontmode = "1"  # no anti-aliasing: black and white only, so a GIF's palette keeps the frames' colours
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * line_h), line, fill="black", font=font)
    out.paste(img, (0, out.height - img.height))
    return out


def save_trajectory_gif(
    frames: np.ndarray,
    path: str | Path,
    fps: int = 8,
    scale: int = 4,
    ncols: int | None = None,
    caption: str | None = None,
) -> Path:
    """Animated GIF of a denoising / Gibbs trajectory; loops forever. Returns the path.

    ``frames`` is (T, n, H, W, C): GIF frame ``t`` is ``image_grid(frames[t], ncols)``, upscaled ``scale``
    times, under a band with ``caption`` (e.g. which model generated it) when given. All frames share one
    palette (gray for C = 1, an adaptive 256-colour palette for C = 3) so colours do not flicker. Pillow
    merges identical consecutive frames into one longer frame.
    """
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim == 4:
        frames = frames[..., None]
    if frames.ndim != 5 or len(frames) == 0:
        raise ValueError(f"expected frames (T, n, H, W, C), got shape {frames.shape}")
    images = [_upscale(image_grid(f, ncols), scale) for f in frames]
    if caption:
        images = [add_caption(im, caption) for im in images]
    if frames.shape[-1] == 1:
        images = [im.convert("L") for im in images]
    else:
        palette = Image.fromarray(np.concatenate([np.asarray(im) for im in images[:: max(1, len(images) // 16)]]))
        palette = palette.quantize(256)
        images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    path = Path(path)
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        optimize=True,
    )
    return path
