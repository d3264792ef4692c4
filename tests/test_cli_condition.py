"""``python -m dtm_lite train --condition {none,label,world}``: the model fields each choice implies, the
stream each model trains on, and the checkpoint a tiny run leaves."""

import json

import jax
import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.data.lunarlander_settings import LABEL_LAYOUT, WORLD_LAYOUT, quick_model_config
from dtm_lite.interface import cli
from dtm_lite.interface.cli import main
from dtm_lite.training.checkpoint import checkpoint_config


def resolve(*argv: str) -> dict:
    return cli._resolve(cli.build_parser().parse_args(["train", *argv]), use_env=False)[0]


def test_condition_sets_the_model_fields_it_needs():
    base = resolve()
    assert resolve("--condition", "none") == base and cli.condition_of(base) == "none"
    # the world model generates without the default's final quench (it was measured without it); the zone
    # model is the default's picture model with a labelled layout prior, so it keeps it
    assert base["quench_fraction"] == 0.05
    assert resolve("--condition", "label") == {**base, "n_classes": 3, **LABEL_LAYOUT}
    assert resolve("--condition", "label", "--quench-fraction", "0.1")["quench_fraction"] == 0.1
    # a world model with the default's layout, configured as benchmarks/world_model.py measured it
    assert resolve("--condition", "world") == {**base, "n_actions": 4, **WORLD_LAYOUT, "quench_fraction": 0.0}
    plain = resolve("--condition", "world", "--layout-color", "auto", "--cond-radius", "2")
    assert plain == {**base, "n_actions": 4, "layout_color": None, "cond_radius": 2, "quench_fraction": 0.0}
    assert resolve("--condition", "label", "--label-spots", "2")["label_spots"] == 2  # label bits, if asked for
    no_layout = resolve("--condition", "label", "--layout-color", "auto")  # no layout: label bits around the image
    assert no_layout["label_spots"] == base["label_spots"] > 0 and no_layout["layout_color"] is None
    with pytest.raises(SystemExit, match="--n-classes 5: the 'zone' label .* has 3 classes"):
        resolve("--condition", "label", "--n-classes", "5")
    with pytest.raises(SystemExit, match="--condition none: the model has n_classes=3"):
        resolve("--condition", "none", "--n-classes", "3")
    with pytest.raises(SystemExit, match="labels .* and actions"):
        cli.condition_of(resolve("--n-classes", "3", "--n-actions", "4"))
    with pytest.raises(SystemExit, match="--n-actions 2: LunarLander"):
        cli.condition_of(resolve("--n-actions", "2"))


def test_a_resumed_run_keeps_its_condition(tmp_path):
    config = quick_model_config(n_classes=3)
    (tmp_path / "run.json").write_text(json.dumps({"config": config.to_dict()}))
    assert cli.condition_of(resolve("--resume", "--out", str(tmp_path))) == "label"
    with pytest.raises(SystemExit, match="--condition world: the model has n_classes=3"):
        resolve("--resume", "--out", str(tmp_path), "--condition", "world")


TINY = ["--quick", "--no-progress", "--epochs", "1", "--batches-per-epoch", "1", "--episodes-per-epoch", "4",
        "--shuffle-buffer", "0", "--holdout-episodes", "2", "--evaluate-every", "0"]  # fmt: skip


@pytest.mark.parametrize(
    "condition, extra, fields",
    [
        ("label", ["--evaluate-every", "1"], {"n_classes": 3, **LABEL_LAYOUT}),  # evaluated: joint samples
        ("world", ["--cond-frames", "2"], {"n_actions": 4, **WORLD_LAYOUT, "quench_fraction": 0.0}),  # not evaluated
    ],
)
def test_quick_conditioned_runs_train_and_save_their_model(condition, extra, fields, tmp_path, capsys):
    out = tmp_path / condition
    assert main(["train", *TINY, "--condition", condition, *extra, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 epochs, 1 batches" in text
    config = checkpoint_config(out / "latest.npz")
    assert config == quick_model_config(lr_decay_batches=1, **fields)
    assert DTMConfig.from_dict(json.loads((out / "run.json").read_text())["config"]) == config
    assert ("no held-out evaluation" in text) == (condition == "world")
    assert ("final (epoch 1): FD-PCA" in text) == (condition == "label")
    with pytest.raises(SystemExit, match="--n-classes 4"):  # refused before anything is written
        main(["train", *TINY, "--n-classes", "4", "--out", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()


def test_the_zone_models_label_reaches_the_prior_and_its_own_zones_weights(tmp_path):
    """--condition label trains on the default run's batches and counts the same layouts, split by zone; its
    layout weights K hold one set per zone, and each set learns from its zone's rows alone (a zone without rows
    keeps its zeros). With --no-label-gates-layout the labels reach only the prior: the picture model is the
    default run's bit for bit."""
    flags = {"none": ["--condition", "none"], "label": ["--condition", "label"],
             "prior": ["--condition", "label", "--no-label-gates-layout"]}  # fmt: skip
    runs = {}
    for name, f in flags.items():
        out = tmp_path / name
        assert main(["train", *TINY, "--batches-per-epoch", "2", *f, "--out", str(out)]) == 0
        runs[name] = DTM.load(out / "latest.npz")
    plain, zone, prior = runs["none"], runs["label"], runs["prior"]
    assert zone.config == plain.config.replace(n_classes=3, **LABEL_LAYOUT) and zone.spec.n_extra_bits == 0
    assert prior.config == zone.config.replace(label_gates_layout=False)
    for a, b in zip(jax.tree.leaves(plain.state.params), jax.tree.leaves(prior.state.params), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    for model in (zone, prior):
        counts = np.asarray(model.state.plugin_state["layout_counts"])
        assert counts.shape == (3, 16 * 16 + 1) and counts.sum() == 2 * plain.config.batch_size
        assert np.array_equal(counts.sum(0), np.asarray(plain.state.plugin_state["layout_counts"]))
    K, rows = np.asarray(zone.state.params["K"]), counts.sum(1)
    assert K.shape[:2] == (1, 3) and prior.state.params["K"].shape[:2] == (1, 1)
    assert [bool(np.any(K[:, k])) for k in range(3)] == [bool(r) for r in rows], rows
