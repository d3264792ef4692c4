"""Tests for dtm_lite.interface.plots: files written with the right sizes, figures built without a display."""

import csv

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

matplotlib.use("Agg")

from dtm_lite.core.capacity import visible_capacity  # noqa: E402
from dtm_lite.core.graph import GridGraph  # noqa: E402
from dtm_lite.interface.plots import (  # noqa: E402
    SEPARATOR,
    capacity_diagram,
    draw_neighbourhood,
    image_grid,
    model_label,
    plot_metrics,
    save_image_grid,
    save_trajectory_gif,
    show_images,
)


def test_image_grid_layout():
    imgs = np.zeros((5, 4, 3, 1))
    imgs[2] = 1.0
    grid = image_grid(imgs, ncols=3)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 5 + 1, 3 * 4 + 1, 3)
    assert np.all(grid[0] == SEPARATOR) and np.all(grid[:, 4] == SEPARATOR)
    assert np.all(grid[1:5, 1:4] == 0)  # image 0
    assert np.all(grid[1:5, 9:12] == 255)  # image 2, row 0 column 2
    assert np.all(grid[6:10, 9:12] == SEPARATOR)  # unused sixth cell
    assert image_grid(np.zeros((9, 2, 2, 3))).shape == (10, 10, 3)  # default ncols = 3


def test_image_grid_rejects_bad_shape():
    with pytest.raises(ValueError):
        image_grid(np.zeros((2, 4, 4, 2)))


def test_save_image_grid_png_size(tmp_path):
    imgs = np.random.default_rng(0).random((6, 8, 8, 3))
    path = save_image_grid(imgs, tmp_path / "grid.png", scale=3)
    grid = image_grid(imgs)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (grid.shape[1] * 3, grid.shape[0] * 3)
        np.testing.assert_array_equal(np.asarray(img.convert("RGB"))[::3, ::3], grid)


@pytest.mark.parametrize("channels", [1, 3])
def test_save_trajectory_gif_frames(tmp_path, channels):
    t = 7
    frames = (np.random.default_rng(1).random((t, 4, 6, 6, channels)) > 0.5).astype(float)
    path = save_trajectory_gif(frames, tmp_path / "traj.gif", fps=5, scale=2)
    grid = image_grid(frames[0])
    with Image.open(path) as img:
        assert img.format == "GIF"
        assert img.n_frames == t
        assert img.size == (grid.shape[1] * 2, grid.shape[0] * 2)
        assert img.info.get("loop") == 0
        assert img.info.get("duration") == 200
        np.testing.assert_array_equal(np.asarray(img.convert("RGB"))[::2, ::2], grid)


def test_save_trajectory_gif_caption_band_above_the_frames(tmp_path):
    frames = (np.random.default_rng(1).random((3, 4, 6, 6, 3)) > 0.5).astype(float)
    path = save_trajectory_gif(frames, tmp_path / "traj.gif", scale=8, caption="a model: 12 batches")
    grid = image_grid(frames[0])
    with Image.open(path) as img:
        assert img.n_frames == 3 and img.width == grid.shape[1] * 8 and img.height > grid.shape[0] * 8
        rgb = np.asarray(img.convert("RGB"))
        np.testing.assert_array_equal(rgb[-grid.shape[0] * 8 :: 8, ::8], grid)  # the frames, below the band
        band = rgb[: img.height - grid.shape[0] * 8]
        assert (band == 255).all(axis=-1).mean() > 0.5 and (band < 128).all(axis=-1).any()  # white, with text


def test_show_images_returns_figure():
    imgs = np.random.default_rng(2).random((4, 5, 5, 1))
    fig = show_images(imgs, title="samples")
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == "samples"
    (shown,) = fig.axes[0].images
    np.testing.assert_array_equal(shown.get_array(), image_grid(imgs))  # the 2 x 2 grid, as image_grid makes it
    fig = show_images(imgs, ncols=4)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), image_grid(imgs, ncols=4))
    assert fig.axes[0].get_title() == ""


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_plot_metrics_from_csv(tmp_path):
    rows = [
        {
            "epoch": e,
            "fd_pca": 5.0 / (e + 1),
            "fd_floor": 0.2,
            "fd_independent": 6.0,
            "autocorr": 0.01 * e,
            "corr_penalty_0": 0.1,
            "corr_penalty_1": 0.2,
            "marginal_error": 0.05,
        }
        for e in range(5)
    ]
    path = tmp_path / "metrics.csv"
    write_csv(path, rows)
    fig = plot_metrics(str(path))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["FD-PCA", "autocorrelation", "correlation penalty", "marginal error"]
    epochs = list(range(5))
    expected = [
        [("model", [5.0 / (e + 1) for e in epochs]), ("floor (data vs data)", [0.2] * 5),
         ("independent pixels", [6.0] * 5)],
        [("autocorr", [0.01 * e for e in epochs])],
        [("corr_penalty_0", [0.1] * 5), ("corr_penalty_1", [0.2] * 5)],
        [("marginal_error", [0.05] * 5)],
    ]  # fmt: skip
    for ax, panel in zip(fig.axes, expected, strict=True):
        assert [line.get_label() for line in ax.lines] == [label for label, _ in panel], ax.get_title()
        for line, (_, values) in zip(ax.lines, panel, strict=True):
            np.testing.assert_array_equal(line.get_xdata(), epochs)
            np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-12)
        assert ax.get_xlabel() == "epoch"
    assert [line.get_linestyle() for line in fig.axes[0].lines] == ["-", "--", "--"]  # floor and baseline dashed
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    fig.savefig(tmp_path / "metrics.png")
    assert (tmp_path / "metrics.png").stat().st_size > 0


def test_plot_metrics_object_panels(tmp_path):
    """A metrics.csv with object columns gets two more panels (model vs data dashed), wrapped onto a second row;
    the old columns-only CSV above keeps its four panels in one row."""
    rows = [
        {
            "epoch": e + 1,
            "fd_pca": "" if e == 1 else 2.0,  # an epoch without evaluation: blank
            "marginal_error": 0.05,
            "obj_one_rate": "" if e == 1 else 0.2 * e,
            "obj_one_rate_data": "" if e == 1 else 0.6,
            "obj_stray": "" if e == 1 else 3.0 - e,
            "obj_stray_data": "" if e == 1 else 0.1,
            "obj_pos_dist": "nan",
        }
        for e in range(4)
    ]
    path = tmp_path / "metrics.csv"
    write_csv(path, rows)
    fig = plot_metrics(path)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["FD-PCA", "marginal error", "object: one-blob rate", "object: stray pixels / frame"]
    rate, stray = fig.axes[2], fig.axes[3]
    assert [line.get_label() for line in rate.lines] == ["model", "data"]
    assert rate.lines[1].get_linestyle() == "--"
    np.testing.assert_array_equal(rate.lines[0].get_xdata(), [1, 3, 4])  # the blank epoch 2 is skipped
    np.testing.assert_allclose(rate.lines[0].get_ydata(), [0.0, 0.4, 0.6])
    np.testing.assert_allclose(stray.lines[0].get_ydata(), [3.0, 1.0, 0.0])
    rows[0]["autocorr_0"] = rows[0]["corr_penalty_0"] = 0.1
    rows[0]["fd_floor"] = 1.0
    write_csv(path, rows)
    fig = plot_metrics(path)
    assert len(fig.axes) == 6 and fig.axes[4].get_title() == "object: one-blob rate"
    assert fig.get_size_inches()[1] == pytest.approx(2 * 3.2)  # two rows of at most four panels
    fig.savefig(tmp_path / "metrics.png")


def test_plot_metrics_skips_all_blank_columns():
    """A run without a hold-out set logs blank FD and object columns: those panels are left out."""
    rows = [{"epoch": e, "fd_pca": "", "obj_one_rate": "", "obj_stray": "", "corr_penalty_0": 0.1} for e in (1, 2)]
    assert [ax.get_title() for ax in plot_metrics(rows).axes] == ["correlation penalty"]


def test_plot_metrics_skips_missing_columns():
    fig = plot_metrics([{"epoch": 0, "fd_pca": 1.0, "corr_penalty": 0.1}, {"epoch": 1, "fd_pca": 0.5}])
    assert [ax.get_title() for ax in fig.axes] == ["FD-PCA", "correlation penalty"]
    assert isinstance(plot_metrics([{"epoch": 0}]), Figure)


@pytest.mark.parametrize("preset", ["20_8", "3_4"])
def test_graph_drawings(preset, tmp_path):
    graph = GridGraph.from_preset(preset)
    fig = draw_neighbourhood(graph)
    assert preset in fig.axes[0].get_title() and str(graph.degree) in fig.axes[0].get_title()
    fig.savefig(tmp_path / "nbr.png")
    fig = capacity_diagram(graph, n_visible=visible_capacity(graph) // 2)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == f"visible: {visible_capacity(graph) // 2}"
    fig.savefig(tmp_path / "cap.png")
    with pytest.raises(ValueError):
        capacity_diagram(graph, n_visible=visible_capacity(graph) + 1)


def test_capacity_diagram_shows_visible_sites_of_both_colours():
    """The "planes" placement puts visible bits on colour-1 sites too: drawn as visible, counted per colour."""
    from dtm_lite import DTM, DTMConfig
    from dtm_lite.data.lunarlander_settings import LUNARLANDER_COLORS as PALETTE

    dtm = DTM(DTMConfig(image_shape=(4, 4, 3), preset="20_8", encoding="palette", palette=PALETTE, placement="planes"))
    g = dtm.graph
    assert (g.colors[dtm.visible] == 1).any()
    ax = capacity_diagram(g, dtm.visible).axes[0]
    n1 = int((g.colors[dtm.visible] == 1).sum())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        f"visible: {len(dtm.visible)}",
        f"hidden colour 0: {visible_capacity(g) - (len(dtm.visible) - n1)}",
        f"hidden colour 1: {g.n_nodes - visible_capacity(g) - n1}",
    ]
    assert f"{n1} colour 1" in ax.get_title()
    kind = ax.images[0].get_array().ravel()
    assert set(np.flatnonzero(kind == 0)) == set(dtm.visible.tolist())
    with pytest.raises(ValueError, match="distinct"):
        capacity_diagram(g, np.array([0, 0]))


def test_model_label_names_source_batches_encoding_and_placement():
    from dtm_lite import DTM, DTMConfig
    from dtm_lite.data.lunarlander_settings import LUNARLANDER_COLORS as PALETTE

    dtm = DTM(DTMConfig(image_shape=(4, 4, 3), preset="20_8", encoding="palette", palette=PALETTE, placement="planes"))
    assert model_label(dtm, "DTM.pretrained('x')") == "DTM.pretrained('x'): 0 batches, 4x4 palette, planes on 20_8"


def test_draw_neighbourhood_lines_follow_offsets():
    graph = GridGraph.from_preset("20_8")
    fig = draw_neighbourhood(graph, node=0)
    ax = fig.axes[0]
    jumps = [line for line in ax.lines if len(line.get_xdata()) == 2]
    # torus: every offset (dx, dy) = (row, column) drawn from node 0, at (x, y) = (0, 0), to (dy, dx): unwrapped,
    # so some jumps run past the grid edge
    assert all(line.get_xdata()[0] == 0 and line.get_ydata()[0] == 0 for line in jumps)
    ends = sorted((int(line.get_ydata()[1]), int(line.get_xdata()[1])) for line in jumps)
    assert ends == sorted((int(dx), int(dy)) for dx, dy in graph.offsets) and len(ends) == graph.degree
    assert min(min(line.get_xdata()) for line in jumps) < 0
    (neighbours,) = [line for line in ax.lines if line.get_label() == f"{graph.degree} neighbours"]
    rows, cols = np.divmod(graph.neighbors(0), graph.side)
    assert sorted(zip(neighbours.get_ydata(), neighbours.get_xdata(), strict=True)) == sorted(
        zip(rows, cols, strict=True)
    )
