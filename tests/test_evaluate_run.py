"""dtm_lite.evaluation.run_evaluation (benchmarks/evaluate_run.py): re-evaluating a run's final model with the
training loop's evaluation keys repeats, for the last epoch's key, exactly what the run logged."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from dtm_lite.evaluation.run_evaluation import COLUMNS, evaluate_run, load_run
from dtm_lite.interface.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--quick", "--no-progress", "--epochs", "1", "--batches-per-epoch", "2", "--episodes-per-epoch", "4",
        "--shuffle-buffer", "0", "--holdout-episodes", "8", "--evaluate-every", "1"]  # fmt: skip


def test_the_last_epochs_key_repeats_the_logged_numbers(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    with open(run / "metrics.csv") as f:
        logged = list(csv.DictReader(f))[-1]
    capsys.readouterr()
    lines: list[str] = []
    rows = evaluate_run(run, keys=2, quick=True, report=lines.append)
    assert [r["epoch"] for r in rows] == [1, 2] and all(set(r) == {"epoch", *COLUMNS} for r in rows)
    for name in ("obj_one_rate", "obj_stray", "fd_pca", "fd_floor"):
        assert rows[0][name] == pytest.approx(float(logged[name]), rel=1e-5), name
    assert lines[1].startswith("epoch 1's key:") and lines[2].startswith("epoch 2's key:")
    assert f"one-blob {float(logged['obj_one_rate']):.3f}" in lines[1]
    assert f"FD-PCA {float(logged['fd_pca']):.3f}" in lines[1]
    assert lines[-1].startswith("mean of 2:") and len(lines) == 4
    assert capsys.readouterr().out == ""  # everything went to report
    dtm, frames, epochs = load_run(run)
    assert epochs == 1 and dtm.batches_trained == 2 and frames.shape[1:] == (16, 16, 3)


def test_a_folder_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no latest.npz and run.json"):
        evaluate_run(tmp_path)
    script = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "evaluate_run.py"), "--run", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert script.returncode != 0 and "has no latest.npz and run.json" in script.stderr
    assert "Traceback" not in script.stderr
