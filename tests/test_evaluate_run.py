"""benchmarks/evaluate_run.py: re-evaluating a run's final model with the training loop's evaluation keys
repeats, for the last epoch's key, exactly what the run logged."""

import csv
import sys
from pathlib import Path

import pytest

from dtm_lite.interface.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import evaluate_run  # noqa: E402

TINY = ["--quick", "--no-progress", "--epochs", "1", "--batches-per-epoch", "2", "--episodes-per-epoch", "4",
        "--shuffle-buffer", "0", "--holdout-episodes", "8", "--evaluate-every", "1"]  # fmt: skip


def test_the_last_epochs_key_repeats_the_logged_numbers(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    with open(run / "metrics.csv") as f:
        logged = list(csv.DictReader(f))[-1]
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["evaluate_run.py", "--run", str(run), "--keys", "2", "--quick"])
    evaluate_run.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("epoch 1's key:") and lines[2].startswith("epoch 2's key:")
    assert f"one-blob {float(logged['obj_one_rate']):.3f}" in lines[1]
    assert f"FD-PCA {float(logged['fd_pca']):.3f}" in lines[1]
    assert lines[-1].startswith("mean of 2:")


def test_a_folder_without_a_run_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["evaluate_run.py", "--run", str(tmp_path)])
    with pytest.raises(SystemExit, match="has no latest.npz and run.json"):
        evaluate_run.main()
