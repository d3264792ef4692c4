"""Reliability of runs, files and odd inputs: one writer a run folder, metrics.csv without torn rows,
non-finite parameters refused (in settings, in training, on load), layouts of any integer dtype, checkpoints
read member by member (no zip bomb), progress fields checked on resume, one-line CLI refusals, and the small
ones (classify on no frames, uint8 0/1 masks, a full disk at the writability probe)."""

from __future__ import annotations

import copy
import csv
import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.conditioning.batches import generation_inputs
from dtm_lite.conditioning.layout import positions_to_ids
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.interface import cli
from dtm_lite.interface.cli import main
from dtm_lite.training import files
from dtm_lite.training.files import LOCK_NAME, FolderBusyError, atomic_write
from dtm_lite.training.loop import CHECKPOINT_NAME

TINY = DTMConfig(
    image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2, sweeps_per_sample=1,
    generation_sweeps=4, lr_decay_batches=100, seed=5,
)  # fmt: skip
BPE = 3  # batches per epoch
CORRUPT = "corrupt or not a dtm_lite checkpoint"
_TEMPLATES: dict[DTMConfig, DTM] = {}


def new_dtm(config: DTMConfig = TINY) -> DTM:
    """A fresh model; copies of one template share its jitted step (each config compiles once)."""
    if config not in _TEMPLATES:
        _TEMPLATES[config] = DTM(config)
    return copy.copy(_TEMPLATES[config])


def frames(epoch: int, i: int) -> np.ndarray:
    return np.random.default_rng([3, epoch, i]).integers(0, 256, (4, 4, 4, 1), dtype=np.uint8)


def stream(epoch: int) -> list[np.ndarray]:
    return [frames(epoch, i) for i in range(BPE)]


def fake_step(self: DTM, bits, **kw) -> dict[str, float]:
    """A training step that only counts (tests about the loop, not the model)."""
    self.state = self.state._replace(step=self.state.step + 1)
    return {"gap": 0.0, "lr": 0.0}


def train(dtm: DTM, n_epochs: int = 2, factory=stream, **kw) -> list[dict]:
    return dtm.train_from_iterator(n_epochs, factory, BPE, progress=False, **kw)


def csv_rows(run: Path) -> tuple[list[str], list[dict]]:
    with (run / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return dict(z)


def with_meta(arrays: dict[str, np.ndarray], meta: dict | bytes) -> dict[str, np.ndarray]:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return {**arrays, "meta": np.frombuffer(raw, np.uint8)}


# ---------------------------------------------------------------------- 1. one writer a run folder

HOLDER = textwrap.dedent(
    """
    import pathlib, sys, time
    import numpy as np
    from dtm_lite import DTM, DTMConfig

    def fake_step(self, bits, **kw):
        self.state = self.state._replace(step=self.state.step + 1)
        return {"gap": 0.0, "lr": 0.0}

    DTM.train_step = fake_step
    run, go = sys.argv[1], pathlib.Path(sys.argv[2])
    cfg = DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2,
                    sweeps_per_sample=1, generation_sweeps=4, lr_decay_batches=100, seed=5)

    def hold(epoch):
        for i in range(2):
            while not go.exists():  # the run holds its folder until the test says go
                time.sleep(0.05)
            yield np.zeros((4, 4, 4, 1), np.uint8)

    DTM(cfg).train_from_iterator(1, hold, 2, checkpoint_dir=run, progress=False, prefetch=0)
    """
)


def _wait_for_lock(lock: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().split()[:1] == [str(proc.pid)]):
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.1)


@pytest.mark.filterwarnings("ignore:config.lr_decay_batches")
def test_a_second_writer_is_refused_naming_the_folder_and_the_holders_pid(tmp_path, monkeypatch):
    run, go = tmp_path / "run", tmp_path / "go"
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        _wait_for_lock(run / LOCK_NAME, proc)
        monkeypatch.setattr(DTM, "train_step", fake_step)
        for resume in (False, True):  # a fresh run and a resume alike
            with pytest.raises(FolderBusyError, match=f"checkpoint_dir {run} is in use.*PID {proc.pid}"):
                train(new_dtm(), checkpoint_dir=run, resume=resume)
        with pytest.raises(SystemExit, match=f"--out {run} is in use: another process \\(PID {proc.pid}"):
            main(["train", "--quick", "--out", str(run), "--no-progress"])
        assert not (run / CHECKPOINT_NAME).exists() and not (run / "run.json").exists()
        go.touch()
        assert proc.wait(timeout=120) == 0, proc.communicate()[0][-2000:]
    finally:
        go.touch()
        proc.kill() if proc.poll() is None else None
    assert not (run / LOCK_NAME).exists()  # released with the run
    assert [int(r["epoch"]) for r in csv_rows(run)[1]] == [1]
    train(new_dtm(), checkpoint_dir=run, resume=True)  # the folder is free again
    assert [int(r["epoch"]) for r in csv_rows(run)[1]] == [1, 2]


def test_the_lock_is_released_on_errors_and_a_dead_holders_file_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    (tmp_path / LOCK_NAME).write_text("999999999 elsewhere\n")  # left by a killed run: nobody holds its lock

    def broken(epoch):
        yield frames(epoch, 0)
        raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError, match="stream broke"):
        train(new_dtm(), factory=broken, checkpoint_dir=tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()
    # the same thread may take a folder it holds (the CLI around train_from_iterator); another thread may not
    with files.lock_folder(tmp_path, "run folder"):
        train(new_dtm(), checkpoint_dir=tmp_path, resume=True)
        errors: list[BaseException] = []

        def other():
            try:
                train(new_dtm(), 3, checkpoint_dir=tmp_path, resume=True)
            except BaseException as err:  # noqa: BLE001
                errors.append(err)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and "another thread of this process" in str(errors[0])
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_writers_finished_temporary_is_never_removed(tmp_path):
    """Writer A has written and fsynced its temporary file (long ago, by its mtime) but not yet renamed it when
    writer B's write of the same path ends: B's cleanup must leave A's file, and A's rename succeeds."""
    path = tmp_path / "latest.npz"
    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow(f):
        f.write(b"A" * 100)
        f.flush()
        os.utime(f.name if isinstance(f.name, str) else f.fileno(), (time.time() - 600,) * 2)
        written.set()
        release.wait(30)

    def writer_a():
        try:
            atomic_write(path, slow)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    a = threading.Thread(target=writer_a)
    a.start()
    assert written.wait(30)
    atomic_write(path, lambda f: f.write(b"B"))  # writer B: its cleanup runs now
    assert len(list(tmp_path.glob("latest.npz.*.tmp"))) == 1  # A's temporary file is still there
    release.set()
    a.join(30)
    assert errors == [] and path.read_bytes() == b"A" * 100
    assert list(tmp_path.glob("*.tmp")) == []


# ---------------------------------------------------------------------- 2. metrics.csv


def test_a_torn_last_row_is_dropped_on_resume_and_the_rows_stay_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    train(new_dtm(), checkpoint_dir=tmp_path)
    header, rows = csv_rows(tmp_path)
    text = (tmp_path / "metrics.csv").read_text()
    # a crash (or a full disk) cut epoch 3's row short; the checkpoint is still epoch 2's
    (tmp_path / "metrics.csv").write_text(text + "3,9,0.0")
    train(new_dtm(), 4, checkpoint_dir=tmp_path, resume=True)
    header2, rows2 = csv_rows(tmp_path)
    assert header2 == header and [r["epoch"] for r in rows2] == ["1", "2", "3", "4"]
    assert [r["batches"] for r in rows2] == [str(BPE * e) for e in (1, 2, 3, 4)]
    assert all(None not in r and None not in r.values() for r in rows2)  # every row exactly as wide as the header
    # a row torn after the checkpoint recorded it: restored from the checkpoint's history
    text = (tmp_path / "metrics.csv").read_text()
    last = text.rstrip("\r\n").rindex("\n") + 1  # the start of epoch 4's row
    (tmp_path / "metrics.csv").write_text(text[: last + len("4,12,")])
    train(new_dtm(), 5, checkpoint_dir=tmp_path, resume=True)
    _, rows3 = csv_rows(tmp_path)
    assert [(r["epoch"], r["batches"]) for r in rows3] == [(str(e), str(BPE * e)) for e in (1, 2, 3, 4, 5)]
    assert rows3[:3] == rows2[:3]


# ---------------------------------------------------------------------- 3. non-finite parameters


def test_float_settings_are_checked_in_float32():
    for name, value in [("learning_rate", 1e39), ("beta", 1e39), ("image_rate", 5e38), ("weight_decay", 1e300)]:
        with pytest.raises(ValueError, match=f"{name} must be a finite number.*float32"):
            DTMConfig(**{name: value})
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        DTMConfig(beta=1e-50)  # 0 in float32
    assert DTMConfig(learning_rate=3e38).learning_rate == 3e38  # finite in float32: training will tell


def test_a_diverging_run_stops_with_a_clear_error_before_saving_non_finite_parameters(tmp_path):
    dtm = new_dtm(TINY.replace(learning_rate=3e38))
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch \d+: training diverged.*learning_rate") as info:
        train(dtm, checkpoint_dir=tmp_path)
    assert "non-finite" in str(info.value)
    assert all(np.isfinite(np.asarray(p)).all() for p in dtm.params.values())  # the state before the step
    if (tmp_path / CHECKPOINT_NAME).exists():  # saved on the error: the last finite state
        loaded = DTM.load(tmp_path / CHECKPOINT_NAME)
        assert loaded.batches_trained == dtm.batches_trained


def test_non_finite_parameters_are_refused_on_load(tmp_path):
    dtm = new_dtm()
    ckpt, weights = dtm.save(tmp_path / "ckpt.npz"), dtm.save_weights(tmp_path / "weights.npz")
    for path, name, load in [(ckpt, "state/params/W", DTM.load), (weights, "W", DTM.load_weights)]:
        arrays = arrays_of(path)
        arrays[name] = np.full_like(arrays[name], np.nan)
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=f"{CORRUPT} \\(non-finite values \\(NaN or inf\\) in {name}"):
            load(path)


# ---------------------------------------------------------------------- 4. layouts of small integer dtypes


def test_layout_positions_of_small_integer_dtypes_land_where_asked():
    assert positions_to_ids(np.array([[31, 31]], np.uint8), (32, 32)).tolist() == [31 * 32 + 31]
    assert positions_to_ids(np.array([[20, 10]], np.int8), (32, 32)).tolist() == [20 * 32 + 10]
    assert positions_to_ids(np.array([[-1, -1]], np.int8), (32, 32)).tolist() == [32 * 32]
    with pytest.raises(ValueError, match=r"layout\[0\] = \(18446744073709551615, 0\) lies outside"):
        positions_to_ids(np.array([[2**64 - 1, 0]], np.uint64), (32, 32))  # never wrapped to (-1, 0)
    dtm = DTM(DTMConfig(image_shape=(32, 32, 1), preset="50_12", batch_size=2, warmup_sweeps=2, n_samples=1,
                        generation_sweeps=2, layout_color=(1.0,)))  # fmt: skip
    for pos in (np.array([31, 31], np.uint8), np.array([[31, 31]], np.int16)):
        rendered = generation_inputs(dtm.spec, 1, None, None, None, False, pos)["prev"]
        assert np.argwhere(rendered.reshape(32, 32)).tolist() == [[31, 31]]


# ---------------------------------------------------------------------- 5. checkpoints read member by member


def _huge_member(zf: zipfile.ZipFile, name: str) -> None:
    """A member whose .npy header declares 4 TiB of float32 but holds a few bytes."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**40,)}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    zf.writestr(name, buf.getvalue() + b"\0" * 16)


def test_zip_bombs_and_unknown_members_get_the_corrupt_error_without_being_read(tmp_path):
    import tracemalloc

    dtm = new_dtm()
    ckpt, weights = dtm.save(tmp_path / "ckpt.npz"), dtm.save_weights(tmp_path / "weights.npz")
    for src, load in [(ckpt, DTM.load), (weights, DTM.load_weights)]:
        for kind in ("junk", "declares", "renamed"):
            path = tmp_path / f"{kind}_{src.name}"
            path.write_bytes(src.read_bytes())
            with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
                if kind == "junk":  # 32 MiB of zeros the model never uses, a few KiB compressed
                    zf.writestr("junk.npy", _npy(np.zeros(2**22)))
                else:
                    _huge_member(zf, "zzz.npy" if kind == "declares" else "more/W.npy")
            tracemalloc.start()
            try:
                with pytest.raises(ValueError, match=CORRUPT) as info:
                    load(path)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert str(path) in str(info.value)
            assert peak < 8 * 2**20, (kind, peak)  # nothing of the bomb was decompressed


def _npy(a: np.ndarray) -> bytes:
    buf = __import__("io").BytesIO()
    np.save(buf, a)
    return buf.getvalue()


# ---------------------------------------------------------------------- 7. progress fields on resume


def test_resume_from_a_hand_saved_checkpoint_starts_at_epoch_1_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    dtm = new_dtm()
    fake_step(dtm, None)
    dtm.save(tmp_path / CHECKPOINT_NAME)  # by hand: no training progress
    resumed = new_dtm()
    with pytest.warns(UserWarning, match="records no training progress"):
        hist = train(resumed, checkpoint_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in hist] == [1, 2] and resumed.batches_trained == 1 + 2 * BPE


@pytest.mark.parametrize(
    "change, why",
    [
        ({"batches_done": None}, "lacks 'batches_done'"),
        ({"batches_done": "1"}, "batches_done must be an integer"),
        ({"batches_done": 999}, "batches_done must be an integer in"),
        ({"epoch": [1]}, "epoch must be an integer"),
        ({"history": {"a": 1}}, "history must be a list"),
        ({"a_prev": [None, None, None]}, "a_prev must be 1 numbers"),
        ({"epoch_sums": {"gap": "x"}}, "epoch_sums must map"),
    ],
)
def test_malformed_progress_is_refused_as_corrupt_and_left_as_it_is(tmp_path, monkeypatch, change, why):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    train(new_dtm(), 1, checkpoint_dir=tmp_path)
    ckpt = tmp_path / CHECKPOINT_NAME
    arrays = arrays_of(ckpt)
    meta = json.loads(arrays["meta"].tobytes())
    meta["extra"].update(change)
    meta["extra"] = {k: v for k, v in meta["extra"].items() if v is not None}
    np.savez(ckpt, **with_meta(arrays, meta))
    before = ckpt.read_bytes()
    dtm = new_dtm()
    with pytest.raises(ValueError, match=f"{CORRUPT} \\(its training progress .*{why}") as info:
        train(dtm, 2, checkpoint_dir=tmp_path, resume=True)
    assert ckpt.read_bytes() == before
    notes = " ".join(getattr(info.value, "__notes__", []))  # never "up to date" for a file the run could not read
    assert "up to date" not in notes and "left as it was" in notes, notes


def test_a_stop_right_after_a_resume_says_the_checkpoint_it_read_is_up_to_date(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    train(new_dtm(), 1, checkpoint_dir=tmp_path)

    def broken(epoch):
        raise RuntimeError("stream down")

    with pytest.raises(RuntimeError, match="stream down") as info:
        train(new_dtm(), 2, factory=broken, checkpoint_dir=tmp_path, resume=True)
    assert "is up to date (epoch 2, 0 batches into it)" in " ".join(info.value.__notes__)


# ---------------------------------------------------------------------- 6, 8, 9, 11. the command line


@pytest.fixture
def quiet_cli(monkeypatch):
    """The CLI without its slow steps: these refusals come before any training."""
    monkeypatch.setattr(cli, "_train", lambda *a: pytest.fail("trained"))


def _refused(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(["train", "--quick", *argv])
    assert isinstance(info.value.code, str), info.value.code
    return info.value.code


def test_quick_auto_batch_fits_the_epochs_frames_and_a_bigger_batch_names_the_flag(quiet_cli, capsys):
    parse = cli.build_parser().parse_args
    args = parse(["train", "--quick", "--batch-size", "auto", "--memory-budget", "65536"])
    s, _ = cli._resolve(args, use_env=False)
    config = cli._build_config(s, args)
    frames = s["episodes_per_epoch"] * 32
    assert config.batch_size * s["batches_per_epoch"] <= frames and config.batch_size >= 1
    assert "raise --episodes-per-epoch" in capsys.readouterr().out
    msg = _refused(["--batch-size", "5000", "--out", "unused"])
    assert "--batch-size 5000 is more than one epoch's stream gives" in msg and "--episodes-per-epoch" in msg


def test_cli_refusals_are_one_line(tmp_path, quiet_cli, monkeypatch):
    (tmp_path / "file").write_text("x")
    cases = {
        "--memory-budget": ["--batch-size", "auto", "--memory-budget", "nan"],
        "--memory-budget ": ["--batch-size", "auto", "--memory-budget", "inf"],
        "is a file, not a folder": ["--out", str(tmp_path / "file")],
        "is a file, so no folder": ["--out", str(tmp_path / "file" / "run")],
        "--out /proc/dtm_lite_run": ["--out", "/proc/dtm_lite_run"],
        "invalid model settings: ": ["--image-shape", "100000", "100000", "3", "--out", str(tmp_path / "big")],
    }
    for want, argv in cases.items():
        msg = _refused(argv)
        assert want.strip() in msg and not msg.startswith("--devices"), (argv, msg)

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "atomic_write", disk_full)
    msg = _refused(["--out", str(tmp_path / "full")])
    assert "cannot write run.json (No space left on device)" in msg


def _refused_command(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert isinstance(info.value.code, str), info.value.code
    return info.value.code


def test_export_and_figures_refusals_are_one_line_and_name_the_flag(tmp_path, monkeypatch, capsys):
    from dtm_lite.interface import figures

    run, bad, file = tmp_path / "run", tmp_path / "bad", tmp_path / "file"
    new_dtm().save(run / CHECKPOINT_NAME)
    bad.mkdir()
    (bad / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    file.write_text("x")
    cases = {
        "--run": (["--run", str(tmp_path / "none"), "--out", str(tmp_path / "w.npz")], "no checkpoint"),
        "--run ": (["--run", str(bad), "--out", str(tmp_path / "w.npz")], "corrupt or not a dtm_lite checkpoint"),
        "--out": (["--run", str(run), "--out", str(file / "w.npz")], "is a file, so no folder can be made"),
        "--out ": (["--run", str(run), "--out", str(tmp_path)], "is a folder: give the path of a file"),
    }
    for flag, (argv, want) in cases.items():
        msg = _refused_command(["export", *argv])
        assert msg.startswith(flag.strip() + " ") and want in msg, (argv, msg)
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "w.npz")]) == 0
    assert DTM.load_weights(tmp_path / "w.npz").config == TINY

    monkeypatch.setattr(figures, "draw_figures", lambda *a: [])  # the refusals and the note come before drawing
    cases = {
        "--model": (["--model", "no-such-model"], "neither a pretrained name"),
        "--model ": (["--model", str(bad / CHECKPOINT_NAME)], "corrupt or not a dtm_lite checkpoint"),
        "--out": (["--model", str(run / CHECKPOINT_NAME), "--out", str(file)], "is a file, not a folder"),
    }
    for flag, (argv, want) in cases.items():
        msg = _refused_command(["figures", "--out", str(tmp_path / "figs"), *argv])
        assert msg.startswith(flag.strip() + " ") and want in msg, (argv, msg)
    capsys.readouterr()
    argv = ["figures", "--model", str(run / CHECKPOINT_NAME), "--run", str(run), "--out", str(tmp_path / "figs")]
    assert main(argv) == 0
    assert "holds no metrics.csv, so metrics.png is not made" in capsys.readouterr().err
    (run / "metrics.csv").write_text("epoch\n")
    assert main(argv) == 0 and "metrics.csv" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, want",
    [
        ('{"config": {"seed": 1', "cannot read"),
        ("[1, 2]", "holds no model config"),
        ('{"config": {}, "epochs": "many"}', "--epochs must be an integer"),
        ('{"config": {"image_shape": 5}}', "--image-shape: LunarLander frames are square RGB"),
        ("[" * 200_000, "nested too deeply"),
    ],
)
def test_a_damaged_run_json_is_a_one_line_refusal(tmp_path, quiet_cli, text, want):
    (tmp_path / "run.json").write_text(text)
    msg = _refused(["--resume", "--out", str(tmp_path)])
    assert msg.startswith("--") and want in msg, msg


def test_coordinator_port_range_timeout_flag_and_a_line_while_waiting(capsys):
    from dtm_lite.scale.sharding import initialize_distributed

    with pytest.raises(ValueError, match="port must be in 1..65535, got 99999"):
        initialize_distributed("localhost:99999", 2, 1)
    msg = _refused(["--coordinator", "localhost:99999", "--num-processes", "2", "--process-id", "1"])
    assert "port must be in 1..65535" in msg
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]  # closed once the block ends
    t0 = time.monotonic()
    msg = _refused(["--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", "1",
                    "--coordinator-timeout", "2"])  # fmt: skip
    assert "did not answer within 2 s" in msg and time.monotonic() - t0 < 20
    assert f"waiting up to 2 s for the coordinator localhost:{port}" in capsys.readouterr().err
    assert "goes with --coordinator" in _refused(["--coordinator-timeout", "5"])


# ---------------------------------------------------------------------- 10, 11. small ones


def test_a_deeply_nested_meta_record_is_the_corrupt_error(tmp_path):
    ckpt = new_dtm().save(tmp_path / "ckpt.npz")
    np.savez(ckpt, **with_meta(arrays_of(ckpt), b"[" * 200_000 + b"]" * 200_000))
    for load in (DTM.load, DTM.load_weights):
        with pytest.raises(ValueError, match=f"{CORRUPT} \\(its 'meta' record is nested too deeply"):
            load(ckpt)


def test_classify_on_no_frames_says_so():
    dtm = new_dtm(TINY.replace(n_classes=2))
    for empty in (np.zeros((0, 4, 4, 1), np.uint8), np.zeros((0, dtm.encoding.n_bits), np.uint8)):
        with pytest.raises(ValueError, match="classify needs at least one frame"):
            dtm.classify(empty)


def test_uint8_masks_of_0_and_1_are_warned_about(monkeypatch):
    masks = (np.random.default_rng(0).random((8, 4, 4, 1)) < 0.5).astype(np.uint8)
    with pytest.warns(UserWarning, match="uint8 with values only 0 and 1"):
        batches = list(IteratorDataLoader([masks], 4, image_shape=(4, 4, 1)))
    assert len(batches) == 2
    monkeypatch.setattr(DTM, "train_step", fake_step)
    with pytest.warns(UserWarning, match="uint8 frames with values only 0 and 1"):
        train(new_dtm(), 1, factory=lambda e: [masks[:4]] * BPE)


def test_a_file_path_that_is_a_folder_or_under_a_file_is_named_and_nothing_is_left(tmp_path):
    (tmp_path / "file").write_text("x")
    dtm = new_dtm()
    with pytest.raises(IsADirectoryError, match=r"is a folder: give the path of a file"):
        dtm.save(tmp_path)
    with pytest.raises(NotADirectoryError, match=r"file is a file, so no folder can be made under it"):
        dtm.save_weights(tmp_path / "file" / "sub" / "w.npz")
    with pytest.raises(NotADirectoryError, match=r"file is a file, so no folder can be made under it"):
        atomic_write(tmp_path / "file" / "w.bin", lambda f: f.write(b"1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and not list(tmp_path.parent.glob("*.tmp"))
    assert (tmp_path / "file").read_text() == "x"


def test_the_models_small_inputs_are_checked():
    dtm = new_dtm()
    for bad in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="step must be an integer >= 0"):
            dtm.learning_rate(bad)
    assert dtm.learning_rate(0) == pytest.approx(dtm.config.learning_rate)
    n = dtm.config.n_visible
    for bad, want in [
        (np.full((2, n), np.nan), "NaN"),
        (np.full((2, n), 2), "only 0 and 1"),
        (np.zeros((2, 3)), "shape"),
    ]:
        with pytest.raises(ValueError, match=want):
            dtm.free_run(0, bad, 2)
    assert dtm.free_run(0, np.zeros((2, n), bool), 2).shape == (3, 2, n)


def test_a_full_disk_is_refused_by_the_writability_probe(tmp_path, monkeypatch):
    steps = []
    monkeypatch.setattr(DTM, "train_step", lambda self, b, **kw: steps.append(1) or fake_step(self, b))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=f"checkpoint_dir {tmp_path / 'run'} is not writable \\(no space left"):
        train(new_dtm(), checkpoint_dir=tmp_path / "run")
    assert steps == []
    monkeypatch.setattr(cli, "_train", lambda *a: pytest.fail("trained"))
    msg = _refused(["--out", str(tmp_path / "cli")])  # the command line probes its run folder the same way
    assert msg.startswith(f"--out {tmp_path / 'cli'} is not writable (no space left on its device)"), msg
