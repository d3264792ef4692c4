"""dtm_lite.evaluation.ablation (benchmarks/ablation.py) at toy sizes: a quick run end to end (table, JSON,
PNG), a T = 2 variant with the adaptive penalty, the variant selection, and the script's command line."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dtm_lite import DTMConfig, EvalSettings
from dtm_lite.data.lunarlander_settings import eval_settings
from dtm_lite.evaluation import ablation
from dtm_lite.evaluation.metrics import LANDER

ROOT = Path(__file__).resolve().parents[1]

METRICS = ("fd_pca", "fd_floor", "fd_independent", "marginal_error", "obj_one_rate", "obj_one_rate_data", "obj_stray",
           "obj_stray_data", "obj_size_dist", "train_minutes", "seconds_per_batch", "eval_minutes")  # fmt: skip
TINY = EvalSettings(
    n_images=32, n_components=4, autocorr_chains=4, autocorr_sweeps=40, autocorr_window=(20, 30), object_class=LANDER
)  # the lander metric, as eval_settings() gives it


def _check_row(row: dict, steps: int) -> None:
    for key in METRICS:
        assert isinstance(row[key], float) and math.isfinite(row[key]), (key, row[key])
    assert 0 <= row["obj_one_rate"] <= 1 and row["seconds_per_batch"] > 0
    assert row["obj_pos_dist"] is None or math.isfinite(row["obj_pos_dist"])  # None: a side without any blob
    assert len(row["autocorr"]) == len(row["corr_penalty"]) == row["T"] == steps
    assert all(math.isfinite(v) for v in row["autocorr"] + row["corr_penalty"])


def test_quick_run_writes_table_json_and_samples(tmp_path, capsys):
    name = "planes, gen beta 1-1"  # generation only: brings its parent "MEBM palette planes" along
    variants = ablation.select([name])
    data = ablation.make_data(16, n_train=2 * 50, holdout_episodes=16)
    command = "python benchmarks/ablation.py --quick --batches 2"
    rows, models = ablation.run_all(
        variants, data, eval_settings(quick=True), 2, quick=True, epoch_batches=3, out=tmp_path, command=command
    )
    assert [r["name"] for r in rows] == list(models) == ["MEBM palette planes", name]
    table = capsys.readouterr().out
    assert "| MEBM palette planes |" in table and f"| {name} |" in table

    result = json.loads((tmp_path / "ablation.json").read_text())
    assert result["command"] == command and result["eval_settings"]["object_class"] == "lander"
    assert result["machine"]["cpu_count"] >= 1 and result["quick"] and result["data"]["resolution"] == 16
    parent, regen = result["rows"]
    assert (parent["name"], parent["from"], regen["from"]) == ("MEBM palette planes", None, "MEBM palette planes")
    for row in (parent, regen):
        _check_row(row, steps=1)
    assert parent["batches"] == 2 and parent["encoding"] == "palette" and parent["preset"] == "50_12"
    assert regen["generation_beta"] == [1.0, 1.0] and regen["train_minutes"] == parent["train_minutes"]
    png = tmp_path / "ablation_samples.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 300_000


def test_run_variant_dtm_with_adaptive_penalty():
    data = ablation.make_data(8, n_train=40, holdout_episodes=8)  # 8x8 frames on 20_8: compiles fastest
    overrides = ablation.quick_overrides({"encoding": "palette", "adaptive_penalty": True, **ablation.T4})
    overrides["num_diffusion_steps"] = 2
    base = {
        **ablation.BASE,
        **ablation.QUICK_BASE,
        "image_shape": (8, 8, 3),
        "preset": "20_8",
        "batch_size": 20,
        "generation_sweeps": 40,
    }
    models = {}
    row = ablation.run_variant("T=2 + penalty", overrides, data, TINY, batches=2, base=base, epoch_batches=1,
                               models=models)  # fmt: skip
    _check_row(row, steps=2)
    assert row["epochs"] == 2 and len(row["history"]) == 2 and "corr_penalty_1" in row["history"][-1]
    assert models["T=2 + penalty"][0].config.adaptive_penalty
    json.dumps(row, allow_nan=False)  # strict JSON


def test_select_and_quick_overrides():
    chosen = ablation.select(["planes, gen beta 0.8-1.1"])
    assert [v["name"] for v in chosen] == ["MEBM palette planes", "planes, gen beta 0.8-1.1"]
    with pytest.raises(SystemExit, match="unknown variant"):
        ablation.select(["no such variant"])
    assert ablation.quick_overrides({"preset": "80_20", "warmup_sweeps": 100, "encoding": "palette"}) == {
        "preset": "50_20",
        "encoding": "palette",
    }
    names = [v["name"] for v in ablation.VARIANTS]
    assert len(set(names)) == len(names)
    assert all(v["from"] in names for v in ablation.VARIANTS if v.get("from"))


def test_every_palette_variant_has_a_palette_and_the_layout_is_the_landers():
    from dtm_lite.data.lunarlander_settings import LANDER_COLOR, LUNARLANDER_COLORS, model_config

    assert ablation.BASE["palette"] == LUNARLANDER_COLORS and ablation.LAYOUT["layout_color"] == LANDER_COLOR
    for v in ablation.VARIANTS:
        if not v.get("from"):
            config = DTMConfig(**{**ablation.BASE, **v["overrides"]})  # as run_variant builds it
            assert config.image_shape == (32, 32, 3) and config.batch_size == 50
    layout = DTMConfig(**{**ablation.BASE, **ablation.PLANES, **ablation.LAYOUT})
    # the CLI's model, but for its generation's final quench (the ablation samples every variant without one)
    assert layout == model_config(lr_decay_batches=layout.lr_decay_batches, quench_fraction=0.0)


def test_the_script_lists_the_variants():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        f"{v['name']!r}: {v['overrides']}" + (f" (generation only, from {v['from']!r})" if v.get("from") else "")
        for v in ablation.VARIANTS
    ]
