"""``python -m dtm_lite train --condition {none,label,world}``: the model fields each choice implies, the
stream each model trains on, and the checkpoint a tiny run leaves."""

import json

import pytest

from dtm_lite import DTMConfig
from dtm_lite.data.lunarlander_settings import WORLD_LAYOUT, quick_model_config
from dtm_lite.interface import cli
from dtm_lite.interface.cli import main
from dtm_lite.training.checkpoint import checkpoint_config


def resolve(*argv: str) -> dict:
    return cli._resolve(cli.build_parser().parse_args(["train", *argv]), use_env=False)[0]


def test_condition_sets_the_model_fields_it_needs():
    base = resolve()
    assert resolve("--condition", "none") == base and cli.condition_of(base) == "none"
    # conditioned models generate without the default's final quench (they were measured without it)
    assert base["quench_fraction"] == 0.05
    assert resolve("--condition", "label") == {**base, "n_classes": 3, "quench_fraction": 0.0}
    assert resolve("--condition", "label", "--quench-fraction", "0.1")["quench_fraction"] == 0.1  # unless given
    # a world model with the default's layout, configured as benchmarks/world_model.py measured it
    assert resolve("--condition", "world") == {**base, "n_actions": 4, **WORLD_LAYOUT, "quench_fraction": 0.0}
    plain = resolve("--condition", "world", "--layout-color", "auto", "--cond-radius", "2")
    assert plain == {**base, "n_actions": 4, "layout_color": None, "cond_radius": 2, "quench_fraction": 0.0}
    assert resolve("--condition", "label", "--label-spots", "2")["label_spots"] == 2
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
        ("label", ["--evaluate-every", "1"], {"n_classes": 3, "quench_fraction": 0.0}),  # evaluated: joint samples
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
