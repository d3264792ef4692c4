"""Pictures: image grids, trajectory GIFs, training curves, and the graph layout.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so importing or calling
this module needs no display and leaks no open figures in a training loop; a returned Figure displays
itself in Jupyter, and ``fig.savefig(path)`` writes it. Functions taking ``ax`` draw into it instead.

Images are numpy arrays ``(n, H, W, C)`` of floats in ``[0, 1]`` with ``C`` in {1, 3} (``(n, H, W)`` is
read as ``C = 1``). The picture files (``image_grid``, ``save_image_grid``, ``save_trajectory_gif``, ``add_caption``)
live in :mod:`dtm_lite.evaluation.pictures`, where a training run writes them from; they are re-exported here.
"""

from __future__ import annotations

import csv
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

# re-exported (``name as name``): notebooks, tests and benchmarks import these from here
from dtm_lite.evaluation.pictures import SEPARATOR as SEPARATOR
from dtm_lite.evaluation.pictures import add_caption as add_caption
from dtm_lite.evaluation.pictures import image_grid as image_grid
from dtm_lite.evaluation.pictures import save_image_grid as save_image_grid
from dtm_lite.evaluation.pictures import save_trajectory_gif as save_trajectory_gif

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure

    from dtm_lite.core.graph import GridGraph


def show_images(
    images: np.ndarray, ncols: int | None = None, title: str | None = None, ax: Axes | None = None
) -> Figure | SubFigure:
    """Show an image grid with matplotlib; returns the Figure (new, unless ``ax`` is given: then its figure)."""
    grid = image_grid(images, ncols)
    fig, ax = _figure_axes(ax, figsize=(min(8.0, 1.0 + grid.shape[1] / 16), min(8.0, 1.0 + grid.shape[0] / 16)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def image_rows(rows: list[tuple[str, np.ndarray]], ncols: int = 8, label_width: float = 2.0) -> Figure:
    """One labelled row of images per ``(label, images (n, H, W, C))`` pair, e.g. the samples of several
    models under held-out frames; the first ``ncols`` images of each row are shown. Returns the Figure."""
    if not rows:
        raise ValueError("image_rows needs at least one (label, images) row")
    grids = [image_grid(np.asarray(images)[:ncols], ncols) for _, images in rows]
    row_h = 8.0 * max(g.shape[0] for g in grids) / max(g.shape[1] for g in grids) + 0.1  # an 8-inch strip + gap
    fig = Figure(figsize=(8.0 + label_width, row_h * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=[label_width, 8.0])
    for (label_ax, ax), (label, _), grid in zip(axes, rows, grids, strict=True):
        label_ax.set_axis_off()
        label_ax.text(1.0, 0.5, textwrap.fill(label, 22), ha="right", va="center", fontsize="small")
        ax.imshow(grid, interpolation="nearest")
        ax.set_axis_off()
    return fig


def model_label(dtm, source: str = "DTM") -> str:
    """What a figure shows, for its title: ``source`` (how the model was loaded, e.g.
    ``"DTM.pretrained('lunarlander')"``), batches trained, image size, encoding, placement and preset."""
    c = dtm.config
    h, w, _ = c.image_shape
    return f"{source}: {dtm.batches_trained:,} batches, {h}x{w} {c.encoding}, {c.placement} on {c.preset}"


def _figure_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure | SubFigure, Axes]:
    """``ax`` and its (sub)figure, or a new Figure and its one Axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _read_rows(rows: list[dict] | str | Path) -> dict[str, np.ndarray]:
    """Rows (dicts, or a metrics.csv with a header) -> column name -> float array (blank -> NaN)."""
    if isinstance(rows, str | Path):
        with open(rows, newline="") as f:
            rows = list(csv.DictReader(f))
    names = list(dict.fromkeys(k for row in rows for k in row))

    def num(v: Any) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    return {k: np.array([num(row.get(k)) for row in rows]) for k in names}


def _step_columns(names: list[str], base: str) -> list[str]:
    """``base`` and/or its per-diffusion-step columns ``base_0``, ``base_1``, ... in step order."""
    per_step = [k for k in names if k.startswith(base + "_") and k.rsplit("_", 1)[1].isdigit()]
    per_step.sort(key=lambda k: int(k.rsplit("_", 1)[1]))
    return ([base] if base in names else []) + per_step


_DATA_STYLE = {"ls": "--", "color": "gray", "marker": None}
_METRIC_STYLES: dict[str, dict[str, Any]] = {
    "fd_floor": _DATA_STYLE,
    "fd_independent": {"ls": "--", "color": "tab:red", "marker": None},
    "obj_one_rate_data": _DATA_STYLE,
    "obj_stray_data": _DATA_STYLE,
}
_METRIC_LABELS = {
    "fd_pca": "model",
    "fd_floor": "floor (data vs data)",
    "fd_independent": "independent pixels",
    "obj_one_rate": "model",
    "obj_one_rate_data": "data",
    "obj_stray": "model",
    "obj_stray_data": "data",
}


def _metric_panels(cols: dict[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """``(title, columns)`` of each panel of :func:`plot_metrics` that has at least one finite value."""
    panels: list[tuple[str, list[str]]] = [
        ("FD-PCA", [k for k in ("fd_pca", "fd_floor", "fd_independent") if k in cols]),
        ("autocorrelation", _step_columns(list(cols), "autocorr")),
        ("correlation penalty", _step_columns(list(cols), "corr_penalty")),
        ("marginal error", [k for k in ("marginal_error",) if k in cols]),
        ("object: one-blob rate", [k for k in ("obj_one_rate", "obj_one_rate_data") if k in cols]),
        ("object: stray pixels / frame", [k for k in ("obj_stray", "obj_stray_data") if k in cols]),
    ]
    return [(title, keys) for title, keys in panels if any(np.isfinite(cols[k]).any() for k in keys)]


def _plot_metric_panel(ax: Axes, title: str, keys: list[str], epoch: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """One panel: each column against ``epoch``, its blank (NaN) rows skipped so that the points join up."""
    for k in keys:
        ok = np.isfinite(cols[k])
        style = {"marker": "." if len(epoch) < 50 else None, "label": _METRIC_LABELS.get(k, k)}
        ax.plot(epoch[ok], cols[k][ok], **{**style, **_METRIC_STYLES.get(k, {})})
    values = np.concatenate([cols[k] for k in keys])
    values = values[np.isfinite(values)]
    if title == "FD-PCA" and len(values) and values.min() > 0:
        ax.set_yscale("log")
    if len(keys) > 1:
        ax.legend(fontsize="small")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def plot_metrics(rows: list[dict] | str | Path) -> Figure:
    """Training curves vs ``epoch`` from metrics rows or a metrics.csv path; returns a Figure.

    Panels, each skipped when its columns are missing (or all blank): FD-PCA (``fd_pca``, with ``fd_floor``
    and ``fd_independent`` dashed, log scale when all positive), autocorrelation (``autocorr`` and/or
    ``autocorr_0``, ``autocorr_1``, ... one per diffusion step), correlation penalty (likewise),
    ``marginal_error``, and the object metric: the one-blob rate (``obj_one_rate``, data
    ``obj_one_rate_data`` dashed) and stray pixels per frame (``obj_stray``, ``obj_stray_data`` dashed).
    Rows where a column is blank (epochs without evaluation) are skipped for that column, so its points
    join up. Without an ``epoch`` column the row index is used. At most four panels a row.
    """
    cols = _read_rows(rows)
    n = len(next(iter(cols.values()))) if cols else 0
    epoch = cols.get("epoch", np.arange(n, dtype=float))
    panels = _metric_panels(cols)
    ncols = min(4, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(4.0 * ncols, 3.2 * nrows), layout="constrained")
    if not panels:
        fig.text(0.5, 0.5, "no metrics to plot", ha="center", va="center")
        return fig
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.remove()
    for ax, (title, keys) in zip(axes, panels, strict=False):
        _plot_metric_panel(ax, title, keys, epoch, cols)
    return fig


def _centre(graph: GridGraph) -> int:
    return (graph.side // 2) * graph.side + graph.side // 2


def draw_neighbourhood(graph: GridGraph, node: int | None = None, ax: Axes | None = None) -> Figure | SubFigure:
    """Grid sites by chessboard colour, with ``node`` (default: centre) linked to its neighbours.

    Lines follow the unwrapped offsets ``(dx, dy)`` (row, column), so on a torus a long jump is drawn
    at full length, past the grid edge; the wrapped neighbour sites are highlighted. Returns the Figure.
    """
    side = graph.side
    node = _centre(graph) if node is None else int(node)
    if not 0 <= node < graph.n_nodes:
        raise ValueError(f"node must be in [0, {graph.n_nodes}), got {node}")
    fig, ax = _figure_axes(ax, figsize=(5.5, 5.5))
    board = np.where(graph.colors.reshape(side, side) == 0, 0.92, 0.72)
    ax.imshow(board, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    i, j = divmod(node, side)
    for dx, dy in graph.offsets:
        ti, tj = i + dx, j + dy
        if not graph.torus and not (0 <= ti < side and 0 <= tj < side):
            continue
        ax.plot([j, tj], [i, ti], color="tab:blue", lw=0.8, alpha=0.7)
    nbr_i, nbr_j = np.divmod(graph.neighbors(node), side)
    marker = max(3.0, 60.0 / side)
    ax.plot(nbr_j, nbr_i, "o", color="tab:orange", ms=marker, label=f"{len(nbr_i)} neighbours")
    ax.plot([j], [i], "o", color="tab:red", ms=1.5 * marker, label=f"node {node}")
    ax.add_patch(_frame(side))
    ax.set_title(f"{graph.name or 'custom'}: side {side}, degree {graph.degree}" + (", torus" if graph.torus else ""))
    ax.legend(loc="upper right", fontsize="small")
    ax.set_aspect("equal")
    return fig


def _frame(side: int):
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, -0.5), side, side, fill=False, ec="black", lw=0.8)


def capacity_diagram(graph: GridGraph, n_visible: int | np.ndarray, ax: Axes | None = None) -> Figure | SubFigure:
    """Which sites are visible and which hidden.

    ``n_visible`` is either a count (the first ``n_visible`` colour-0 sites in raster order) or the array of
    node indices that host the visible bits (e.g. ``dtm.visible``, the model's placement; ``"planes"``
    uses sites of both colours). Three classes, with counts in the legend: visible (either colour), hidden
    colour-0, hidden colour-1. Returns the Figure.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    side, c0 = graph.side, np.flatnonzero(graph.colors == 0)
    if np.ndim(n_visible) == 0:
        if not 0 <= n_visible <= len(c0):
            raise ValueError(
                f"n_visible={n_visible} does not fit: graph {graph.name or 'custom'} has {len(c0)} colour-0 sites"
            )
        placed = c0[: int(n_visible)]
    else:
        placed = np.asarray(n_visible, np.int64)
        valid = placed.ndim == 1 and np.all((placed >= 0) & (placed < graph.n_nodes))
        if not valid or len(np.unique(placed)) != len(placed):
            raise ValueError(f"visible sites must be distinct node indices in [0, {graph.n_nodes})")
    n_visible = len(placed)
    on_c1 = int(np.sum(graph.colors[placed] != 0))
    kind = np.where(graph.colors == 0, 1, 2)
    kind[placed] = 0
    colours = ["tab:green", "#b0c4de", "#e6e6e6"]
    fig, ax = _figure_axes(ax, figsize=(5.5, 5.5))
    ax.imshow(kind.reshape(side, side), cmap=ListedColormap(colours), vmin=-0.5, vmax=2.5, interpolation="nearest")
    counts = [n_visible, int(np.sum(kind == 1)), int(np.sum(kind == 2))]
    names = ["visible", "hidden colour 0", "hidden colour 1"]
    handles = [Patch(color=c, label=f"{k}: {m}") for c, k, m in zip(colours, names, counts, strict=True)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncols=3, fontsize="small")
    if on_c1:  # e.g. placement "planes": visible sites of both colours
        title = f"{n_visible} of {graph.n_nodes} sites visible ({n_visible - on_c1} colour 0, {on_c1} colour 1)"
    else:
        title = f"{n_visible} of {len(c0)} colour-0 sites visible"
    ax.set_title(f"{graph.name or 'custom'}: {title}")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig
