"""Where a model's visible bits live on the grid: ``place_visible`` (spatial, planes, raster, random).
Label bits go around the image (``dtm_lite.conditioning.inputs.place_labels``)."""

from __future__ import annotations

import math

import numpy as np

from dtm_lite.core.graph import GridGraph


def place_visible(
    graph: GridGraph,
    image_shape: tuple[int, int, int],
    levels: int = 1,
    how: str = "spatial",
    seed: int = 0,
    *,
    bits_per_pixel: int | None = None,
) -> np.ndarray:
    """Which node hosts each visible bit: int array ``(n_bits,)`` of node indices.

    Pixel ``p = h * W + w`` owns the ``bits_per_pixel`` consecutive bits ``p * bpp .. p * bpp + bpp - 1``
    (default ``bpp = C * levels``, binary and thermometer codes; a palette passes its code's width), so
    ``n_bits = H * W * bpp``.

    - ``"raster"``: bit k on the k-th colour-0 site in raster order.
    - ``"spatial"`` (default): the image is laid over a centred block of the grid, just large enough to
      hold its bits at the colour-0 density, and each bit goes to the free colour-0 site nearest to its
      pixel's position (greedy, in bit order), so a pixel's bits sit together and neighbouring pixels
      on neighbouring sites.
    - ``"planes"``: bit t of every pixel's code forms its own H x W plane of *adjacent* sites (both
      colours), planes tiled side by side in a centred block: pixel (r, c)'s bit t sits at
      ``(r0 + (t // k) * H + r, c0 + (t % k) * W + c)`` with ``k = side // W`` planes a row. Neighbouring
      pixels' same bits are then joined by an edge of their own (a direct coupling W_ij), which is what
      lets a model hold a small object together (the lander); the other placements only couple them
      through a shared hidden site. The rest of the grid is hidden.
    - ``"random"``: a seeded random choice of colour-0 sites.

    All placements but ``"planes"`` use colour-0 sites only, as the public DTM replication does.
    """
    sites = np.flatnonzero(graph.colors == 0)
    h, w, c = image_shape
    bpp = c * levels if bits_per_pixel is None else int(bits_per_pixel)
    if bpp < 1:
        raise ValueError(f"bits_per_pixel must be >= 1, got {bits_per_pixel}")
    nb = h * w * bpp
    if how == "planes":
        return _plane_sites(graph, h, w, bpp)
    if nb > len(sites):
        raise ValueError(f"{nb} visible bits do not fit the {len(sites)} colour-0 sites of {graph!r}")
    if how == "raster":
        return sites[:nb].copy()
    if how == "random":
        return np.sort(np.random.default_rng(seed).choice(sites, nb, replace=False))
    pix = np.arange(nb) // bpp
    # pixel pitch on the grid: fill a centred block at the colour-0 density, never beyond the grid.
    pitch = min(graph.side / max(h, w), float(np.sqrt(2.0 * nb / (h * w))))
    ty = (pix // w + 0.5) * pitch + (graph.side - h * pitch) / 2 - 0.5
    tx = (pix % w + 0.5) * pitch + (graph.side - w * pitch) / 2 - 0.5
    sy, sx = np.divmod(sites, graph.side)
    free = np.ones(len(sites), bool)
    out = np.empty(nb, np.int64)
    for k in range(nb):
        d = (sy - ty[k]) ** 2 + (sx - tx[k]) ** 2
        d[~free] = np.inf
        j = int(np.argmin(d))
        free[j] = False
        out[k] = sites[j]
    return out


def _plane_sites(graph: GridGraph, h: int, w: int, bpp: int) -> np.ndarray:
    """Node of bit t of pixel (r, c) for the ``"planes"`` placement, in bit order ``(H * W * bpp,)``."""
    per_row = graph.side // w
    plane_rows = -(-bpp // per_row) if per_row else math.inf
    if plane_rows * h > graph.side:
        need = next((s for s in range(graph.side, 10 * graph.side) if (s // w) and -(-bpp // (s // w)) * h <= s), None)
        raise ValueError(
            f"placement 'planes' needs {bpp} planes of {h}x{w} sites side by side, which do not fit the "
            f"{graph.side}x{graph.side} grid of {graph!r}; use a preset "
            f"with side >= {need}, or placement='spatial'"
        )
    r0 = (graph.side - plane_rows * h) // 2
    c0 = (graph.side - min(bpp, per_row) * w) // 2
    k = np.arange(h * w * bpp)
    pix, bit = np.divmod(k, bpp)
    pr, pc = np.divmod(bit, per_row)
    return (r0 + pr * h + pix // w) * graph.side + (c0 + pc * w + pix % w)
