"""Tests for dtm_lite.interface.figures: which model is shown, and that every figure names it."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from dtm_lite import DTM, DTMConfig  # noqa: E402
from dtm_lite.data.lunarlander_settings import LUNARLANDER_COLORS  # noqa: E402
from dtm_lite.interface.cli import build_parser, main  # noqa: E402
from dtm_lite.interface.figures import (  # noqa: E402
    DEFAULT_MODEL,
    capacity_figure,
    denoising_chain_figure,
    load_model,
    samples_figure,
)
from dtm_lite.interface.plots import image_grid  # noqa: E402


@pytest.fixture(scope="module")
def dtm():
    cfg = DTMConfig(image_shape=(6, 6, 3), preset="20_8", encoding="palette", palette=LUNARLANDER_COLORS,
                    placement="planes", batch_size=4, warmup_sweeps=2, n_samples=1, generation_sweeps=4)  # fmt: skip
    return DTM(cfg)


def test_load_model_reads_weights_and_checkpoints_and_names_them(dtm, tmp_path):
    weights = dtm.save_weights(tmp_path / "w.npz")
    ckpt = dtm.save(tmp_path / "latest.npz")
    for path, kind in ((weights, "weights"), (ckpt, "checkpoint")):
        loaded, source = load_model(path)
        assert source == f"{kind} {path}" and loaded.config == dtm.config
    with pytest.raises(ValueError, match="neither a pretrained name"):
        load_model(tmp_path / "missing.npz")


def test_samples_figure_gives_model_and_lander_statistics(dtm):
    held = np.zeros((8, 6, 6, 3), np.float32)
    held[:, 1:3, 2:4] = (120 / 255, 100 / 255, 220 / 255)  # one 2x2 purple lander in every frame (off-palette)
    fig = samples_figure(dtm, held, n=4, seed=5, label="tiny: 0 batches")
    titles = [ax.get_title() for ax in fig.axes]
    assert "one blob 100%, stray 0.00 px/frame" in titles[0] and "over 8 frames" in titles[0]
    assert "one blob" in titles[1] and "these 4" in titles[1]
    assert fig._suptitle.get_text().startswith("tiny: 0 batches\nlander size / position distance")
    # left: the first 4 held-out frames as the palette encoding sees them (the palette's lander colour); right:
    # the model's 4 samples for the seed; both in one row of a 6-column grid
    quantized = np.zeros_like(held[:4])
    quantized[:, 1:3, 2:4] = dtm.encoding.palette.colors[2]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), image_grid(quantized, ncols=6))
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), image_grid(dtm.generate(4, key=5), ncols=6))


def test_capacity_figure_draws_the_model_placement_with_its_name(dtm):
    fig = capacity_figure(dtm.config.preset, dtm.visible, label="tiny")
    assert fig._suptitle.get_text() == "tiny" and "colour 1" in fig.axes[1].get_title()
    neighbourhood, placement = fig.axes
    assert neighbourhood.get_title().startswith("20_8: side 20, degree 8")
    kind = placement.images[0].get_array().ravel()  # 0 = visible, 1 / 2 = hidden colour 0 / 1
    assert set(np.flatnonzero(kind == 0).tolist()) == set(dtm.visible.tolist())
    hidden = np.setdiff1d(np.arange(dtm.graph.n_nodes), dtm.visible)
    np.testing.assert_array_equal(kind[hidden], 1 + dtm.graph.colors[hidden])


def test_denoising_chain_figure_shows_each_steps_end_and_the_sample_last(dtm):
    with pytest.raises(ValueError, match="T > 1"):
        denoising_chain_figure(dtm)
    t3 = DTM(dtm.config.replace(num_diffusion_steps=3))
    t3.state = t3.state._replace(params={**t3.state.params, "b": t3.state.params["b"] + 0.5})
    fig = denoising_chain_figure(t3, n=2, seed=4, label="T = 3")
    assert [ax.get_title() for ax in fig.axes[:4]] == ["start (noise)", "after step k=2", "after step k=1",
                                                       "after step k=0"]  # fmt: skip
    final = t3.generate(2, key=4, return_trajectory=True, record_every=4, sweeps=4)[0]
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), final[0])  # row 0, last column: sample 0
    np.testing.assert_array_equal(fig.axes[7].images[0].get_array(), final[1])


def test_figures_cli_shows_the_pretrained_model_unless_told(monkeypatch, tmp_path):
    assert build_parser().parse_args(["figures"]).model == DEFAULT_MODEL == "lunarlander"
    loaded, drawn = [], []
    monkeypatch.setattr("dtm_lite.interface.figures.load_model", lambda m: loaded.append(m) or ("dtm", f"src {m}"))
    monkeypatch.setattr("dtm_lite.interface.figures.draw_figures", lambda *a: drawn.append(a) or [])
    assert main(["figures", "--run", str(tmp_path), "--out", str(tmp_path), "--model", "x.npz"]) == 0
    assert loaded == ["x.npz"] and drawn == [("dtm", "src x.npz", tmp_path, tmp_path)]
