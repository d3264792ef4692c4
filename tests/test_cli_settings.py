"""The CLI's settings: one flag per DTMConfig field (named after it), DTMConfig.lunarlander() / quick() as
its defaults, old run.json files still resume, and settings that would train on nothing are refused
before anything is written."""

import dataclasses
import json
import re

import pytest

from dtm_lite import DTMConfig
from dtm_lite.interface import cli
from dtm_lite.interface.cli import STREAM_MINIMUMS, main


def resolve(*argv: str, use_env: bool = False) -> dict:
    return cli._resolve(cli.build_parser().parse_args(["train", *argv]), use_env=use_env)[0]


FIELDS = [f.name for f in dataclasses.fields(DTMConfig)]

# a value other than DTMConfig.lunarlander()'s for every field: name: (what follows the flag, the field's
# value, other fields the value needs)
OTHER = {
    "image_shape": (["24", "24", "3"], (24, 24, 3), {}),
    "preset": (["50_12"], "50_12", {}),
    "encoding": (["binary"], "binary", {}),
    "grayscale_levels": (["4"], 4, {"encoding": "thermometer"}),
    "threshold": (["0.25"], 0.25, {}),
    "palette": (["0,0,0", "1,1,1", "1,0,0.5"], ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.5)), {}),
    "palette_code": (["onehot"], "onehot", {}),
    "num_diffusion_steps": (["4"], 4, {}),
    "schedule": (["linear"], "linear", {}),
    "diffusion_offset": (["0.2"], 0.2, {}),
    "image_rate": (["1.5"], 1.5, {}),
    "placement": (["spatial"], "spatial", {}),
    "beta": (["1.25"], 1.25, {}),
    "batch_size": (["10"], 10, {}),
    "warmup_sweeps": (["7"], 7, {}),
    "n_samples": (["5"], 5, {}),
    "sweeps_per_sample": (["2"], 2, {}),
    "generation_sweeps": (["9"], 9, {}),
    "generation_beta": (["1", "1.5"], (1.0, 1.5), {}),
    "learning_rate": (["0.1"], 0.1, {}),
    "lr_decay_batches": (["77"], 77, {}),
    "lr_final_fraction": (["0.5"], 0.5, {}),
    "weight_decay": (["0.01"], 0.01, {}),
    "corr_penalty": (["0.25"], 0.25, {}),
    "adaptive_penalty": ([], True, {}),
    "corr_penalty_min": (["0.01"], 0.01, {}),
    "autocorr_tau": (["0.05"], 0.05, {}),
    "seed": ([str(2**40 + 3)], 2**40 + 3, {}),
    "n_classes": (["4"], 4, {}),
    "label_spots": (["2"], 2, {}),
    "label_rate": (["1.5"], 1.5, {}),
    "n_actions": (["4"], 4, {"layout_color": None}),
    "cond_radius": (["3"], 3, {}),
    "cond_frames": (["2"], 2, {}),
    "layout_color": (["1,0,0.5"], (1.0, 0.0, 0.5), {}),
    "layout_min_size": (["1"], 1, {}),
}


def test_every_config_field_is_listed_here():
    assert sorted(OTHER) == sorted(FIELDS)  # a new DTMConfig field gets a flag; give it a value here to check it
    assert not set(FIELDS) & set(cli.STREAM_SETTINGS)  # one flat settings dict: no name is both


def _argv(name: str, values: list[str], needs: dict) -> list[str]:
    argv = [cli.flag(name), *values]
    for other, value in needs.items():
        argv += [cli.flag(other), cli.UNSET if value is None else str(value)]
    return argv


@pytest.mark.filterwarnings("ignore:a linear schedule")
@pytest.mark.parametrize("name", FIELDS)
def test_every_config_field_has_a_flag_of_its_name_that_round_trips(name):
    values, want, needs = OTHER[name]
    base = DTMConfig.lunarlander()
    assert getattr(base, name) != want
    s = resolve(*_argv(name, values, needs))
    assert s[name] == want and type(s[name]) is type(want)
    config = cli.config_from_settings(s)
    assert config == base.replace(**{name: want, **needs})  # that field (and what it needs) only
    assert DTMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # as run.json keeps it
    if isinstance(want, bool):  # --no-x sets False
        assert resolve(cli.flag(name), "--no-" + cli.flag(name)[2:])[name] is False


def test_layout_color_auto_makes_a_plain_dtm():
    s = resolve("--layout-color", "auto")
    assert s["layout_color"] is None and cli.config_from_settings(s).layout_color is None
    assert cli._show(DTMConfig.lunarlander().layout_color).count(",") == 2  # shown as it is typed: R,G,B


def test_encoding_auto_leaves_it_unset():
    s = resolve("--encoding", "auto", "--grayscale-levels", "3")
    assert s["encoding"] is None and cli.config_from_settings(s).encoding == "thermometer"


def test_the_defaults_are_dtmconfig_lunarlander_and_quick(monkeypatch):
    assert cli.config_from_settings(resolve()) == DTMConfig.lunarlander()
    assert cli.config_from_settings(cli.default_settings()) == DTMConfig.lunarlander()
    assert cli.config_from_settings(resolve("--quick")) == DTMConfig.quick()
    assert cli.config_from_settings(cli.default_settings(quick=True)) == DTMConfig.quick()
    monkeypatch.setenv(cli.QUICK_ENV, "1")
    assert cli.config_from_settings(resolve(use_env=True)) == DTMConfig.quick()
    assert cli.config_from_settings(cli.default_settings()) == DTMConfig.lunarlander()  # whatever the env says
    # the model's lr_decay_batches is the default run's length
    for s in (cli.default_settings(), cli.default_settings(quick=True)):
        assert s["lr_decay_batches"] == s["epochs"] * s["batches_per_epoch"]
    assert DTMConfig.quick(seed=4) == DTMConfig.quick().replace(seed=4)
    assert DTMConfig.lunarlander(preset="50_12").preset == "50_12"


def test_old_flag_names_still_work_but_are_not_documented(capsys):
    old = resolve("--levels", "4", "--encoding", "thermometer", "--diffusion-steps", "2", "--warmup", "7",
                  "--samples", "5", "--lr", "0.1", "--resolution", "24")  # fmt: skip
    new = resolve("--grayscale-levels", "4", "--encoding", "thermometer", "--num-diffusion-steps", "2",
                  "--warmup-sweeps", "7", "--n-samples", "5", "--learning-rate", "0.1",
                  "--image-shape", "24", "24", "3")  # fmt: skip
    assert old == new and new["image_shape"] == (24, 24, 3)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--grayscale-levels" in text
    for name in ("--levels", "--diffusion-steps", "--warmup", "--samples", "--lr", "--resolution"):
        assert not re.search(re.escape(name) + r"(?![\w-])", text), name  # --warmup-sweeps is not --warmup


# a run.json as `python -m dtm_lite train` wrote it before its flags were named after DTMConfig's fields
OLD_RUN_JSON = {
    "preset": "50_12", "resolution": 16, "encoding": "auto", "levels": 3, "diffusion_steps": 2, "schedule": "log",
    "batch_size": 50, "warmup": 60, "samples": 10, "steps_per_sample": 3, "generation_sweeps": 100, "lr": 0.05,
    "image_rate": 0.8, "diffusion_offset": 0.1, "corr_penalty": 0.0, "adaptive_penalty": True,
    "placement": "planes", "seed": 5, "policy": "heuristic", "num_envs": 1, "frame_stride": 2,
    "episodes_per_epoch": 40, "shuffle_buffer": 256, "holdout_episodes": 96, "epochs": 2, "batches_per_epoch": 8,
    "evaluate_every": 1, "lr_decay_batches": 16,
}  # fmt: skip
OLD_CONFIG = DTMConfig.quick(  # the quick model of that time: no layout (fields added since: class defaults)
    encoding="thermometer",
    grayscale_levels=3,
    num_diffusion_steps=2,
    learning_rate=0.05,
    adaptive_penalty=True,
    seed=5,
    layout_color=None,
    cond_radius=1,
)


def test_old_run_json_names_map_once_to_the_config():
    new = cli.upgrade_run_json(OLD_RUN_JSON)
    assert set(new) == {"config", *cli.STREAM_SETTINGS}
    assert new["config"]["image_shape"] == [16, 16, 3] and new["config"]["encoding"] is None
    assert DTMConfig.from_dict(new["config"]) == OLD_CONFIG
    assert {k: new[k] for k in cli.STREAM_SETTINGS} == {k: OLD_RUN_JSON[k] for k in cli.STREAM_SETTINGS}
    assert cli.upgrade_run_json(new) == new  # today's run.json passes through


def test_an_old_run_json_resumes_with_its_settings(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(OLD_RUN_JSON))
    s = resolve("--resume", "--out", str(tmp_path))
    assert cli.config_from_settings(s) == OLD_CONFIG and s["policy"] == "heuristic" and s["epochs"] == 2
    s = resolve("--resume", "--out", str(tmp_path), "--epochs", "5", "--n-samples", "4")  # flags beat run.json
    assert s["epochs"] == 5 and s["lr_decay_batches"] == 16  # the decay planned when the run started
    assert cli.config_from_settings(s) == OLD_CONFIG.replace(n_samples=4)


def test_run_json_of_today_resumes(tmp_path):
    config = DTMConfig.lunarlander(seed=9, lr_decay_batches=1234, palette_code="onehot")
    stream = {**cli.default_settings(), "policy": "heuristic"}
    saved = {"config": config.to_dict(), **{k: stream[k] for k in cli.STREAM_SETTINGS}}
    (tmp_path / "run.json").write_text(json.dumps(saved))
    s = resolve("--resume", "--out", str(tmp_path))
    assert cli.config_from_settings(s) == config and s["policy"] == "heuristic" and s["image_shape"] == (32, 32, 3)
    assert resolve("--resume", "--out", str(tmp_path), "--seed", "4")["seed"] == 4


@pytest.mark.parametrize("name", sorted(STREAM_MINIMUMS))
def test_settings_below_their_minimum_are_refused_before_the_run_folder_is_made(name, tmp_path):
    out = tmp_path / "run"
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SystemExit, match=f"{flag} must be >= {STREAM_MINIMUMS[name]}, got {STREAM_MINIMUMS[name] - 1}"):
        main(["train", "--quick", "--out", str(out), flag, str(STREAM_MINIMUMS[name] - 1)])
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image-shape", "16", "12", "3"], "--image-shape: LunarLander frames are square RGB, N N 3, got 16 12 3"),
        (["--image-shape", "16", "16", "1"], "square RGB"),
        (["--n-samples", "0"], "invalid model settings: n_samples must be an integer >= 1, got 0"),
        (["--grayscale-levels", "2"], "invalid model settings: encoding='palette' codes whole pixels"),
    ],
)
def test_bad_model_settings_are_refused_before_the_run_folder_is_made(argv, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=message):
        main(["train", "--quick", "--out", str(out), *argv])
    assert not out.exists()
