"""Tests for dtm_lite.interface.widgets: the sample explorer driven from code, its static figure, model loading."""

from pathlib import Path

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

matplotlib.use("Agg")

pytest.importorskip("ipywidgets")

from dtm_lite import DTM, DTMConfig  # noqa: E402
from dtm_lite.interface.widgets import SHIPPED_CHECKPOINT, SampleExplorer, load_explorer_model  # noqa: E402

SWEEPS, EVERY = 20, 5


@pytest.fixture(scope="module")
def dtm():
    """A tiny two-step model with random (not trained, not zero) couplings and biases."""
    cfg = DTMConfig(image_shape=(6, 6, 1), preset="20_8", num_diffusion_steps=2, batch_size=4, warmup_sweeps=5,
                    n_samples=2, sweeps_per_sample=1, generation_sweeps=SWEEPS)  # fmt: skip
    model = DTM(cfg)
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(rng.normal(0, 0.3, v.shape), jnp.float32) for k, v in model.params.items()}
    model.state = model.state._replace(params=params)
    return model


@pytest.fixture()
def explorer(dtm):
    ex = SampleExplorer(dtm, n=3, record_every=EVERY, seed=1)
    ex.widget()
    return ex


def test_widget_layout_and_initial_state(explorer):
    c = explorer.controls
    assert c["step"].max == 1 and c["step"].value == 1 and not c["step"].disabled
    assert (c["sweep"].min, c["sweep"].max, c["sweep"].step, c["sweep"].value) == (0, SWEEPS, EVERY, SWEEPS)
    assert bytes(c["image"].value).startswith(b"\x89PNG") and bytes(c["final"].value).startswith(b"\x89PNG")
    assert "k=0" in c["status"].value and "seed 1" in c["status"].value
    assert explorer.generations == 1


def test_sliders_change_the_picture_without_regenerating(explorer):
    c = explorer.controls
    seen = {bytes(c["image"].value)}
    c["sweep"].value = 0
    assert explorer.sweep == 0
    seen.add(bytes(c["image"].value))
    c["step"].value = 0  # generation-order position 0 = the noisiest step, k = T-1 = 1
    assert explorer.diffusion_step() == 1 and "k=1" in c["status"].value
    c["sweep"].value = 10
    seen.add(bytes(c["image"].value))
    assert len(seen) >= 2, "moving the sliders should change the displayed frames"
    assert explorer.generations == 1  # only re-rendered from the cached trajectory
    np.testing.assert_array_equal(explorer.frames(), explorer.generation()[1][0 * explorer.records + 10 // EVERY])


def test_beta_and_seed_regenerate_with_cache(explorer):
    c = explorer.controls
    final_before = bytes(c["final"].value)
    c["seed"].value = 2
    assert explorer.generations == 2 and explorer.seed == 2
    assert bytes(c["final"].value) != final_before
    c["beta_start"].value = 0.3
    c["beta_end"].value = 0.4
    assert explorer.beta == (0.3, 0.4) and explorer.generations == 4
    assert "0.3 → 0.4" in c["status"].value
    c["beta_start"].value = 0.8  # (0.8, 0.4) is new: one more generation
    c["beta_end"].value = 1.2  # (0.8, 1.2, seed 2) was seen: cached
    c["seed"].value = 1  # back to the first setting: cached
    assert explorer.generations == 5
    assert bytes(c["final"].value) == final_before


def test_frames_index_the_trajectory(dtm):
    ex = SampleExplorer(dtm, n=3, record_every=EVERY)
    final, traj = ex.generation()
    assert traj.shape == (2 * (SWEEPS // EVERY + 1), 3, 6, 6, 1)
    np.testing.assert_array_equal(ex.frames(position=1, sweep=SWEEPS), final)
    np.testing.assert_array_equal(ex.final(), final)
    np.testing.assert_array_equal(ex.frames(position=0, sweep=0), traj[0])
    with pytest.raises(ValueError, match="step position"):
        ex.frames(position=2)
    with pytest.raises(ValueError, match="sweep"):
        ex.frames(sweep=SWEEPS + 1)
    with pytest.raises(ValueError, match="divide"):
        SampleExplorer(dtm, record_every=3)


def test_same_seed_same_samples_across_explorers(dtm):
    a = SampleExplorer(dtm, n=3, record_every=EVERY, seed=7).final()
    b = SampleExplorer(dtm, n=3, record_every=EVERY, seed=7).final()
    np.testing.assert_array_equal(a, b)


def rgb(image: np.ndarray) -> np.ndarray:
    """A (H, W, 1) image in [0, 1] as the uint8 RGB array the figures draw."""
    return np.repeat(np.round(image * 255).astype(np.uint8), 3, axis=-1)


def test_static_figure(dtm):
    ex = SampleExplorer(dtm, n=3, record_every=EVERY, label="tiny model")
    fig = ex.figure(n_show=2, columns=5)
    assert isinstance(fig, Figure)
    axes = np.array(fig.axes).reshape(2, 5)  # a row per sample, a column per record
    final, traj = ex.generation()
    # 5 of the 2 x 5 records (5 = SWEEPS / EVERY + 1 per step), evenly spread: noisiest step k=1 first, 0 last
    records = [0, 2, 4, 7, 9]
    titles = ["k=1, sweep 0", "k=1, sweep 10", "k=1, sweep 20", "k=0, sweep 10", "k=0, sweep 20"]
    assert [ax.get_title() for ax in axes[0]] == titles and all(ax.get_title() == "" for ax in axes[1])
    for row in range(2):
        for ax, record in zip(axes[row], records, strict=True):
            assert len(ax.images) == 1
            np.testing.assert_array_equal(ax.images[0].get_array(), rgb(traj[record, row]))
        np.testing.assert_array_equal(axes[row, -1].images[0].get_array(), rgb(final[row]))  # ends on the sample
    assert fig._suptitle.get_text() == "tiny model\nGibbs trajectory of generation (β 0.8 → 1.2, seed 0)"
    fig = ex.figure(n_show=1, columns=5, beta=(0.5, 0.5), seed=4)  # another generation, named in the title
    np.testing.assert_array_equal(fig.axes[-1].images[0].get_array(), rgb(ex.generation((0.5, 0.5), 4)[0][0]))
    assert fig._suptitle.get_text().endswith("(β 0.5 → 0.5, seed 4)")


def test_single_step_model_disables_step_slider():
    cfg = DTMConfig(image_shape=(4, 4, 1), preset="8_8", batch_size=2, warmup_sweeps=2, n_samples=1,
                    generation_sweeps=8)  # fmt: skip
    ex = SampleExplorer(DTM(cfg), n=2)
    ex.widget()
    assert ex.controls["step"].disabled
    assert ex.controls["step"].description == "diffusion step (fixed: T = 1)" and "T > 1" in ex.controls["step"].tooltip
    ex.controls["sweep"].value = 0
    assert ex.frames().shape == (2, 4, 4, 1)
    fig = ex.figure(n_show=1, columns=4)
    # one step: sweeps 0 .. 8 recorded every 1 (the default for 8 sweeps), shown log-spaced from the start
    final, traj = ex.generation()
    assert len(traj) == 9
    assert [ax.get_title() for ax in fig.axes] == ["sweep 0", "sweep 1", "sweep 3", "sweep 8"]  # no "k="
    for ax, record in zip(fig.axes, [0, 1, 3, 8], strict=True):
        np.testing.assert_array_equal(ax.images[0].get_array(), rgb(traj[record, 0]))
    np.testing.assert_array_equal(fig.axes[-1].images[0].get_array(), rgb(final[0]))


def test_load_explorer_model_takes_first_existing(dtm, tmp_path):
    path = dtm.save(tmp_path / "model.npz")
    loaded, source = load_explorer_model([tmp_path / "missing.npz", path])
    assert str(path) in source and loaded.config == dtm.config
    np.testing.assert_array_equal(np.asarray(loaded.params["W"]), np.asarray(dtm.params["W"]))


def test_shipped_checkpoint_is_small_and_loads():
    path = Path(__file__).resolve().parents[1] / "figures" / "explorer_checkpoint.npz"
    assert SHIPPED_CHECKPOINT == path  # the repository's figures/, not the working directory's
    if not path.exists():
        pytest.skip(f"{SHIPPED_CHECKPOINT} not shipped")
    assert path.stat().st_size < 500 * 1024
    model = DTM.load(path)
    assert model.state.step > 0
    assert model.generate(2, key=0, sweeps=4).shape == (2, *model.config.image_shape)


def test_the_shipped_checkpoint_is_the_fallback_from_any_working_directory(tmp_path, monkeypatch):
    if not SHIPPED_CHECKPOINT.exists():
        pytest.skip(f"{SHIPPED_CHECKPOINT} not shipped")
    monkeypatch.chdir(tmp_path)  # no figures/ here
    loaded, source = load_explorer_model([tmp_path / "missing.npz", "figures/explorer_checkpoint.npz"])
    assert f"the shipped checkpoint {SHIPPED_CHECKPOINT}" in source
    assert loaded.config == DTM.load(SHIPPED_CHECKPOINT).config


def test_without_the_shipped_checkpoint_a_tiny_model_is_trained(tmp_path, monkeypatch):
    from dtm_lite.interface import widgets

    monkeypatch.setattr(widgets, "SHIPPED_CHECKPOINT", tmp_path / "absent.npz")
    monkeypatch.setattr(widgets, "train_tiny_model", lambda batches: ("tiny", batches))
    monkeypatch.setattr(widgets, "model_label", lambda dtm, source: source)
    assert load_explorer_model([tmp_path / "missing.npz"], train_batches=3) == (
        ("tiny", 3),
        "no model found among the candidates; a tiny model trained now",
    )


def test_slider_labels_are_not_cut_off_and_the_model_is_named(explorer):
    c = explorer.controls
    for name in ("step", "sweep", "beta_start", "beta_end", "seed"):
        assert c[name].style.description_width == "initial", name
    explorer.label = "my model: 3 batches"
    box = explorer.widget()
    assert "my model: 3 batches" in box.children[0].value


def test_show_displays_the_widget_and_a_static_snapshot(explorer, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    explorer.show()
    (bundle, kw), (image, _) = shown
    assert kw.get("raw") and "application/vnd.jupyter.widget-view+json" in bundle
    assert "VBox" not in bundle["text/plain"] and explorer.label in bundle["text/plain"]
    assert bytes(image.data).startswith(b"\x89PNG")
    assert explorer.snapshot_png().startswith(b"\x89PNG")


def test_load_explorer_model_skips_a_missing_pretrained_name(dtm, tmp_path):
    path = dtm.save(tmp_path / "model.npz")
    loaded, source = load_explorer_model(["no-such-pretrained-model", path])
    assert source.startswith(f"checkpoint {path}: ") and loaded.config == dtm.config
