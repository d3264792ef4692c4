"""The CLI's device and host flags: --devices, --batch-size auto with --memory-budget, --coordinator,
--num-processes, --process-id (README: Scaling out). Virtual CPU devices need XLA_FLAGS before JAX
starts, so the runs on 2 devices are subprocesses."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from dtm_lite.data.lunarlander_settings import quick_model_config
from dtm_lite.interface import cli
from dtm_lite.interface.cli import main
from dtm_lite.scale.batch_size import auto_batch_size, training_bytes
from dtm_lite.scale.sharding import cluster_process_count

TWO_DEVICES = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
# a quick run of one batch, on few episodes
SHORT = [
    "--quick", "--no-progress", "--epochs", "1", "--batches-per-epoch", "1", "--evaluate-every", "0",
    "--episodes-per-epoch", "4", "--holdout-episodes", "2", "--shuffle-buffer", "32",
]  # fmt: skip


def _cli(*argv: str, env: dict[str, str] = TWO_DEVICES) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dtm_lite", "train", *argv], env=env, capture_output=True, text=True, timeout=600
    )


def test_two_devices_train_with_an_auto_batch_and_say_so(tmp_path):
    out = tmp_path / "run"
    proc = _cli(*SHORT, "--out", str(out), "--devices", "2", "--batch-size", "auto", "--memory-budget", "8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = auto_batch_size(quick_model_config(), 2, 8 * 2**20)
    assert want % 2 == 0 and 8 <= want <= 64  # one batch of a few episodes' frames
    mib = training_bytes(quick_model_config(), want, 2) / 2**20
    assert (
        f"batch size auto: {want} ({want // 2} a device on 2 device(s)); training step estimated at {mib:.1f} MiB "
        "a device, of a 8.0 MiB budget (--memory-budget)"
    ) in proc.stdout
    assert "devices: 2 x cpu, 1 process(es)" in proc.stdout
    assert "1 epochs, 1 batches" in proc.stdout
    saved = json.loads((out / "run.json").read_text())
    assert saved["config"]["batch_size"] == want  # run.json holds the resolved size: --resume rebuilds it


def test_more_devices_than_jax_sees_is_a_clear_error_before_the_run_folder(tmp_path):
    proc = _cli(*SHORT, "--out", str(tmp_path / "run"), "--devices", "3")
    assert proc.returncode != 0
    assert "--devices: devices=3, but JAX sees 2 device(s) (cpu); ask for 1 to 2" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--coordinator", "localhost:1234"], "--coordinator HOST:PORT needs --num-processes P and --process-id I"),
        (["--coordinator", "localhost:1234", "--num-processes", "2"], "needs --num-processes P and --process-id I"),
        (["--num-processes", "2", "--process-id", "0"], "--num-processes and --process-id need --coordinator"),
        (["--process-id", "1"], "--process-id needs --coordinator HOST:PORT"),
        (["--memory-budget", "100"], "--memory-budget (MiB, > 0) goes with --batch-size auto, got 100"),
        (["--batch-size", "auto", "--memory-budget", "0"], "--memory-budget (MiB, > 0) goes with --batch-size auto"),
        (["--batch-size", "auto", "--memory-budget", "0.5"], "--batch-size auto: not even one batch row a device"),
    ],
)
def test_host_and_budget_flags_are_checked_before_the_run_folder(argv, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as err:
        main(["train", "--quick", "--out", str(out), *argv])
    assert message in str(err.value) and not out.exists()


def test_batch_size_flag_takes_an_integer_or_auto(capsys):
    parse = cli.build_parser().parse_args
    assert parse(["train", "--batch-size", "auto"]).batch_size == "auto"
    assert parse(["train", "--batch-size", "12"]).batch_size == 12
    with pytest.raises(SystemExit):
        parse(["train", "--batch-size", "many"])
    assert "expected an integer or 'auto', got 'many'" in capsys.readouterr().err
    assert cli._resolve(parse(["train", "--batch-size", "auto"]), use_env=False)[0]["batch_size"] == "auto"


def test_auto_batch_size_resolves_for_the_devices_and_prints_the_estimate(capsys):
    config = quick_model_config()
    args = argparse.Namespace(devices=None, memory_budget=20.0)
    batch = cli._auto_batch_size(config, args)
    assert batch == auto_batch_size(config, 1, 20 * 2**20) > 0
    text = capsys.readouterr().out
    assert text.startswith(f"batch size auto: {batch} ({batch} a device on 1 device(s)); training step estimated at")
    assert text.rstrip().endswith("of a 20.0 MiB budget (--memory-budget)")
    args = argparse.Namespace(devices=None, memory_budget=None)  # the default budget: 2 GiB a CPU device
    assert cli._auto_batch_size(config, args) == auto_batch_size(config, 1, 2 << 30)
    assert "of a 2048.0 MiB budget (CPU default)" in capsys.readouterr().out


def test_slurm_and_open_mpi_launches_are_detected_as_jax_detects_them():
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "node[1-2]", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
             "SLURM_LOCALID": "0"}  # fmt: skip
    assert cluster_process_count(slurm) == 2
    assert cluster_process_count({**slurm, "SLURM_NTASKS": "1"}) == 1
    assert cluster_process_count({k: v for k, v in slurm.items() if k != "SLURM_STEP_NODELIST"}) == 1  # salloc shell
    assert cluster_process_count({"OMPI_MCA_orte_hnp_uri": "1.0;tcp://10.0.0.1:1234", "OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert cluster_process_count({}) == 1
