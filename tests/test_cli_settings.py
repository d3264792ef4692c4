"""The CLI's settings: one flag per DTMConfig field (named after it), the LunarLander settings
(``lunarlander_settings.model_config()`` / ``quick_model_config()``) as its defaults, run.json files resume,
and settings that would train on nothing are refused before anything is written."""

import dataclasses
import json

import pytest

from dtm_lite import DTMConfig
from dtm_lite.data import lunarlander_settings as ll
from dtm_lite.data.lunarlander_settings import STREAM_MINIMUMS, STREAM_SETTINGS, config_from_settings
from dtm_lite.interface import cli
from dtm_lite.interface.cli import main


def resolve(*argv: str, use_env: bool = False) -> dict:
    return cli._resolve(cli.build_parser().parse_args(["train", *argv]), use_env=use_env)[0]


FIELDS = [f.name for f in dataclasses.fields(DTMConfig)]

# a value other than ll.model_config()'s for every field: name: (what follows the flag, the field's
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
    "quench_fraction": (["0.1"], 0.1, {}),
    "quench_beta": (["2.5"], 2.5, {}),
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
    "label_gates_layout": ([], True, {"n_classes": 3}),
}


def test_every_config_field_is_listed_here():
    assert sorted(OTHER) == sorted(FIELDS)  # a new DTMConfig field gets a flag; give it a value here to check it
    assert not set(FIELDS) & set(STREAM_SETTINGS)  # one flat settings dict: no name is both


def _argv(name: str, values: list[str], needs: dict) -> list[str]:
    argv = [cli.flag(name), *values]
    for other, value in needs.items():
        argv += [cli.flag(other), cli.UNSET if value is None else str(value)]
    return argv


@pytest.mark.filterwarnings("ignore:a linear schedule")
@pytest.mark.parametrize("name", FIELDS)
def test_every_config_field_has_a_flag_of_its_name_that_round_trips(name):
    values, want, needs = OTHER[name]
    base = ll.model_config()
    assert getattr(base, name) != want
    s = resolve(*_argv(name, values, needs))
    assert s[name] == want and type(s[name]) is type(want)
    config = config_from_settings(s)
    assert config == base.replace(**{name: want, **needs})  # that field (and what it needs) only
    assert DTMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # as run.json keeps it
    if isinstance(want, bool):  # --no-x sets False
        assert resolve(cli.flag(name), "--no-" + cli.flag(name)[2:])[name] is False


def test_layout_color_auto_makes_a_plain_dtm():
    s = resolve("--layout-color", "auto")
    assert s["layout_color"] is None and config_from_settings(s).layout_color is None
    assert cli._show(ll.model_config().layout_color).count(",") == 2  # shown as it is typed: R,G,B


def test_encoding_auto_leaves_it_unset():
    s = resolve("--encoding", "auto", "--grayscale-levels", "3")
    assert s["encoding"] is None and config_from_settings(s).encoding == "thermometer"


def test_the_defaults_are_the_lunarlander_settings(monkeypatch):
    assert config_from_settings(resolve()) == ll.model_config()
    assert config_from_settings(ll.default_settings()) == ll.model_config()
    assert config_from_settings(resolve("--quick")) == ll.quick_model_config()
    assert config_from_settings(ll.default_settings(quick=True)) == ll.quick_model_config()
    assert resolve() == ll.default_settings() and resolve("--quick") == ll.default_settings(quick=True)
    monkeypatch.setenv(cli.QUICK_ENV, "1")
    assert config_from_settings(resolve(use_env=True)) == ll.quick_model_config()
    assert config_from_settings(ll.default_settings()) == ll.model_config()  # whatever the env says
    # the model's lr_decay_batches is the default run's length
    for s in (ll.default_settings(), ll.default_settings(quick=True)):
        assert s["lr_decay_batches"] == s["epochs"] * s["batches_per_epoch"]
    assert ll.quick_model_config(seed=4) == ll.quick_model_config().replace(seed=4)
    assert ll.model_config(preset="50_12").preset == "50_12"
    # DTMConfig's own defaults are not LunarLander's: no palette, RGB thresholds, no layout
    plain = DTMConfig()
    assert (plain.palette, plain.encoding, plain.layout_color) == (None, "binary", None)
    model = ll.model_config()
    assert (model.palette, model.layout_color) == (ll.LUNARLANDER_COLORS, ll.LANDER_COLOR)
    assert model == DTMConfig(**ll.MODEL_FIELDS, lr_decay_batches=2000)  # otherwise DTMConfig's defaults
    assert ll.palette().colors == ll.LUNARLANDER_COLORS and ll.palette("onehot").bits_per_pixel == 4


def test_the_lunarlander_evaluation_measures_the_lander():
    from dtm_lite.evaluation.metrics import LANDER
    from dtm_lite.training.loop import EvalSettings

    assert ll.eval_settings().object_class is LANDER and ll.eval_settings(quick=True).object_class is LANDER
    assert ll.eval_settings().n_images == EvalSettings().n_images
    assert ll.eval_settings(quick=True).n_images == EvalSettings.quick().n_images


def test_settings_without_a_model_field_are_refused():
    s = ll.default_settings()
    del s["palette"]
    with pytest.raises(ValueError, match=r"lack the DTMConfig fields \['palette'\]: start from default_settings"):
        config_from_settings(s)


def test_run_json_of_today_resumes(tmp_path):
    config = ll.model_config(seed=9, lr_decay_batches=1234, palette_code="onehot")
    stream = {**ll.default_settings(), "policy": "heuristic"}
    saved = {"config": config.to_dict(), **{k: stream[k] for k in STREAM_SETTINGS}}
    (tmp_path / "run.json").write_text(json.dumps(saved))
    s = resolve("--resume", "--out", str(tmp_path))
    assert config_from_settings(s) == config and s["policy"] == "heuristic" and s["image_shape"] == (32, 32, 3)
    assert resolve("--resume", "--out", str(tmp_path), "--seed", "4")["seed"] == 4


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ({"epochs": 2, "seed": 5}, "holds no model config"),  # a flat run.json: not written by this version
        ([1, 2], "holds no model config"),
        ({"config": {"seed": 5, "levels": 3}}, r"model fields that DTMConfig does not know: \['levels'\]"),
    ],
)
def test_a_run_json_this_version_did_not_write_is_refused(saved, message, tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match=message):
        resolve("--resume", "--out", str(tmp_path))


def test_the_flags_of_earlier_versions_are_gone():
    for argv in (["--resolution", "24"], ["--levels", "4"], ["--diffusion-steps", "2"], ["--samples", "5"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["train", *argv])


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
