"""train_from_iterator: resume equivalence, atomic checkpoints, Ctrl-C, evaluation, the CLI."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.data import lunarlander_settings as ll
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.data.lunarlander import LunarLanderFrames
from dtm_lite.interface import cli
from dtm_lite.training import loop as training
from dtm_lite.training.loop import CHECKPOINT_NAME, EvalSettings, evaluate_dtm

TINY = DTMConfig(
    image_shape=(8, 8, 3), preset="20_8", batch_size=8, warmup_sweeps=10, n_samples=4, sweeps_per_sample=2,
    generation_sweeps=20, lr_decay_batches=12, seed=3,
)  # fmt: skip


def stream(epoch: int, n_batches: int = 4, batch_size: int = 8) -> list[np.ndarray]:
    """A deterministic stream of frame batches, different every epoch."""
    rng = np.random.default_rng([7, epoch])
    return [rng.integers(0, 256, (batch_size, 8, 8, 3), dtype=np.uint8) for _ in range(n_batches)]


class Interrupt:
    """A factory whose stream raises KeyboardInterrupt (as Ctrl-C would) at (epoch, batch)."""

    def __init__(self, at: tuple[int, int]):
        self.at = at

    def __call__(self, epoch: int):
        for i, batch in enumerate(stream(epoch)):
            if (epoch, i) == self.at:
                raise KeyboardInterrupt
            yield batch


def _same_params(a: DTM, b: DTM) -> bool:
    return all(np.array_equal(np.asarray(a.params[k]), np.asarray(b.params[k])) for k in ("W", "b"))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, prefetch):
    full = DTM(TINY)
    full.train_from_iterator(3, stream, 3, prefetch=prefetch, progress=False)

    run = tmp_path / "run"
    part = DTM(TINY)
    with pytest.raises(KeyboardInterrupt):
        part.train_from_iterator(3, Interrupt((1, 2)), 3, checkpoint_dir=run, prefetch=prefetch, progress=False)
    assert (run / CHECKPOINT_NAME).exists()
    assert part.state.step == 5  # epoch 0 (3 batches) + 2 batches of epoch 1, saved by the Ctrl-C handler
    resumed = DTM(TINY)
    resumed.train_from_iterator(3, stream, 3, checkpoint_dir=run, resume=True, prefetch=prefetch, progress=False)
    assert resumed.state.step == full.state.step == 9
    assert _same_params(resumed, full)
    assert not _same_params(DTM(TINY), full)


def test_adaptive_penalty_measures_before_a_fresh_run_only_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = TINY.replace(adaptive_penalty=True)
    kw = {"holdout": np.concatenate(stream(99)), "eval_settings": EvalSettings.quick(), "progress": False}
    calls = []
    measure = training.step_autocorrelation
    monkeypatch.setattr(training, "step_autocorrelation", lambda *a, **k: calls.append(1) or measure(*a, **k))
    full = DTM(cfg)
    assert full.corr_penalty.tolist() == [np.float32(cfg.corr_penalty_min)]  # an adaptive run starts at cp_min, not 0
    full.train_from_iterator(2, stream, 3, **kw)
    assert len(calls) == 3  # once before the first epoch (as the research code does), then after each epoch

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        DTM(cfg).train_from_iterator(2, Interrupt((1, 1)), 3, checkpoint_dir=run, **kw)
    calls.clear()
    resumed = DTM(cfg)
    resumed.train_from_iterator(2, stream, 3, checkpoint_dir=run, resume=True, **kw)
    assert len(calls) == 1  # after epoch 2 only: the earlier measurement comes from the checkpoint
    assert _same_params(resumed, full) and np.array_equal(resumed.corr_penalty, full.corr_penalty)


def test_n_epochs_is_the_total(tmp_path):
    a = DTM(TINY)
    a.train_from_iterator(2, stream, 3, checkpoint_dir=tmp_path, progress=False)
    b = DTM(TINY)
    hist = b.train_from_iterator(3, stream, 3, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert b.state.step == 9 and [r["epoch"] for r in hist] == [1, 2, 3]
    c = DTM(TINY)
    c.train_from_iterator(3, stream, 3, progress=False)
    assert _same_params(b, c)


def test_checkpoint_round_trip_and_atomic_write(tmp_path, monkeypatch):
    dtm = DTM(TINY)
    dtm.train_from_iterator(1, stream, 2, progress=False)
    path = tmp_path / "ckpt.npz"
    dtm.save(path)
    loaded = DTM.load(path)
    assert loaded.config == dtm.config and loaded.state.step == 2 and _same_params(loaded, dtm)
    assert np.array_equal(loaded.generate(4, key=1), dtm.generate(4, key=1))
    # same optimiser state and RNG: one more step gives the same parameters
    batch = dtm.encode(stream(9)[0])
    dtm.train_step(batch)
    loaded.train_step(batch)
    assert _same_params(loaded, dtm)

    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        dtm.save(path)
    assert path.read_bytes() == before
    assert DTM.load(path).state.step == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left behind


def test_never_overwrites_a_run_without_resume(tmp_path):
    DTM(TINY).train_from_iterator(1, stream, 1, checkpoint_dir=tmp_path, progress=False)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        DTM(TINY).train_from_iterator(1, stream, 1, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before


def test_resume_refuses_another_config(tmp_path):
    DTM(TINY).train_from_iterator(1, stream, 1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another config.*batch_size"):
        DTM(TINY.replace(batch_size=4)).train_from_iterator(2, stream, 1, checkpoint_dir=tmp_path, resume=True)


def test_old_checkpoint_without_encoding_loads_as_before(tmp_path):
    """A checkpoint written before DTMConfig had encoding / palette / palette_code loads as the same model."""
    cfg = TINY.replace(image_shape=(4, 4, 3), grayscale_levels=2)  # thermometer, by the old meaning of levels
    dtm = DTM(cfg)
    dtm.train_step(dtm.encode(stream(0)[0][:, :4, :4]))
    path = dtm.save(tmp_path / "new.npz")
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes().decode())
    for key in ("encoding", "palette", "palette_code"):
        del meta["config"][key]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    old = DTM.load(tmp_path / "old.npz")
    assert old.config == dtm.config and old.config.encoding == "thermometer" and old.config.n_visible == 96
    assert np.array_equal(old.visible, dtm.visible) and _same_params(old, dtm)
    assert np.array_equal(old.generate(3, key=2), dtm.generate(3, key=2))


def test_palette_model_trains_on_lunarlander_frames_and_draws_palette_colours():
    cfg = TINY.replace(encoding="palette", palette=ll.LUNARLANDER_COLORS)  # 8x8 RGB on 20_8: 4 colours, 2 bits a pixel
    frames = LunarLanderFrames(resolution=8, frames_per_episode=8, episodes=1, seed=0)
    dtm = DTM(cfg)
    assert cfg.n_visible == 8 * 8 * 2 and len(dtm.visible) == 128
    # the loader passes frames through; train_from_iterator encodes them with the model's palette
    dtm.train_from_iterator(1, lambda: IteratorDataLoader(frames, 8, encode=False), 1, progress=False)
    assert dtm.state.step == 1 and np.abs(np.asarray(dtm.params["b"])).max() > 0
    # a loader that encodes with the model's own encoding gives the same bits, hence the same parameters
    same = DTM(cfg)
    same.train_from_iterator(1, lambda: IteratorDataLoader(frames, 8, encoding=same.encoding), 1, progress=False)
    assert _same_params(same, dtm)
    images = dtm.generate(6, key=0)
    assert images.shape == (6, 8, 8, 3)
    palette = np.asarray(cfg.palette, np.float32)
    assert np.all(np.abs(images.reshape(-1, 1, 3) - palette).max(-1).min(-1) < 1e-6)  # palette colours only
    # bits made by a loader with another encoding (RGB thresholds: 192 bits a frame) are refused, with the fix
    with pytest.raises(ValueError, match="192 bits a frame.*palette.*shape \\(batch, 128\\).*encoding=dtm.encoding"):
        DTM(cfg).train_from_iterator(1, lambda: IteratorDataLoader(frames, 8), 1, progress=False)


def test_bad_stream_items_name_the_batch():
    def bad(epoch):
        yield np.zeros((8, 5), np.uint8)

    with pytest.raises(ValueError, match="expects \\(H, W, C\\)|shape \\(batch, 192\\)"):
        DTM(TINY).train_from_iterator(1, bad, 1, progress=False)
    with pytest.warns(UserWarning, match="without holdout.*nowhere to save them.*pass holdout="):
        DTM(TINY).train_from_iterator(1, stream, 1, evaluate_every=1, progress=False)  # runs: issue 12


def test_training_on_lunarlander_improves_fd_pca(tmp_path):
    """Two short epochs on a small preset from a LunarLanderFrames stream beat the untrained model."""
    cfg = DTMConfig(
        image_shape=(16, 16, 3), preset="50_12", batch_size=20, warmup_sweeps=60, n_samples=10, sweeps_per_sample=3,
        generation_sweeps=100, lr_decay_batches=30, seed=0,
    )  # fmt: skip

    def factory(epoch):
        frames = LunarLanderFrames(resolution=16, frames_per_episode=16, episodes=40, seed=100 * epoch, frame_stride=2)
        return IteratorDataLoader(frames, 20, max_batches_per_epoch=15, shuffle_buffer=128, seed=epoch)

    held = np.concatenate([e.frames for e in LunarLanderFrames(resolution=16, frames_per_episode=16, episodes=32,
                                                               seed=10**6, frame_stride=4)])  # fmt: skip
    settings = EvalSettings.quick()
    dtm = DTM(cfg)
    before = evaluate_dtm(dtm, held, settings)
    hist = dtm.train_from_iterator(2, factory, 15, evaluate_every=1, holdout=held, checkpoint_dir=tmp_path,
                                   eval_settings=settings, progress=False)  # fmt: skip
    after = hist[-1]
    assert after["fd_pca"] < 0.75 * before["fd_pca"], (before, after)
    assert after["marginal_error"] < before["marginal_error"]
    assert after["fd_floor"] < after["fd_independent"]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert {"metrics.csv", "samples_epoch002.png", "trajectory_epoch002.gif", CHECKPOINT_NAME} <= set(files)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch,batches,seconds,gap,lr,fd_pca")


def train_help() -> dict[str, str]:
    """``python -m dtm_lite train --help`` as {flag: its help text}, unwrapped (a wide terminal)."""
    env = {**os.environ, "COLUMNS": "1000"}
    out = subprocess.run([sys.executable, "-m", "dtm_lite", "train", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    entries: list[list[str]] = []
    for line in out.stdout.split("\noptions:\n", 1)[1].splitlines():
        if line.startswith("  -"):
            entries.append(re.split(r"\s{2,}", line.strip(), maxsplit=1))
        elif line.startswith("    ") and line.strip():
            entries[-1].append(line.strip())  # the help of a long invocation, on the next line
        # (the groups' titles and descriptions, indented less, are not flags)
    return {flag: " ".join(rest) for invocation, *rest in entries for flag in re.findall(r"-[\w-]+", invocation)}


def resolve(*argv: str) -> tuple[dict, Path]:
    return cli._resolve(cli.build_parser().parse_args(["train", *argv]), use_env=False)


# a non-default value of every string setting of the stream (the numbers get default + 3); the model's
# fields get theirs in tests/test_cli_settings.py
OTHER_VALUES = {"policy": "heuristic"}


def test_cli_help_documents_every_flag_and_every_flag_takes_effect(tmp_path):
    helps = train_help()
    base, base_out = resolve()
    quick = ll.default_settings(quick=True)
    assert base == ll.default_settings() and base["quick"] is False
    assert re.fullmatch(r"runs/lunarlander-\d{8}-\d{6}", base_out.as_posix())
    checked = {"-h", "--help"}

    def flag_of(name: str) -> str:
        checked.add(cli.flag(name))
        return cli.flag(name)

    # the model: one flag per DTMConfig field, named after it, documented with the field's own help and the
    # defaults of ll.model_config() / ll.quick_model_config() (each flag round-trips: test_cli_settings.py)
    full, small = ll.model_config(), ll.quick_model_config()
    for f in dataclasses.fields(DTMConfig):
        flag = flag_of(f.name)
        default, quick_default = cli._show(getattr(full, f.name)), cli._show(getattr(small, f.name))
        also = "" if quick_default == default else f"; {quick_default} with --quick"
        assert helps[flag].startswith(f.metadata["help"]) and helps[flag].endswith(f"(default {default}{also})"), flag
        assert base[f.name] == getattr(full, f.name) and quick[f.name] == getattr(small, f.name), flag
        if isinstance(f.default, bool):
            no_flag = "--no-" + flag[2:]
            checked.add(no_flag)
            assert helps[no_flag] == helps[flag]  # one entry: "--x, --no-x"
            assert resolve(flag)[0] == {**base, f.name: True}
            (tmp_path / "run.json").write_text(json.dumps({"config": {f.name: True}}))  # --no-x beats run.json
            assert resolve("--resume", "--out", str(tmp_path))[0][f.name] is True
            assert resolve("--resume", "--out", str(tmp_path), no_flag)[0][f.name] is False
            assert resolve(no_flag)[0] == {**base, f.name: False}
    assert ll.config_from_settings(base) == full and ll.config_from_settings(quick) == small

    # the run and its data stream: documented with their defaults, and each flag sets its own setting only
    for name, (default, quick_default, help_) in ll.STREAM_SETTINGS.items():
        flag = flag_of(name)
        also = "" if quick_default == default else f"; {quick_default} with --quick"
        assert helps[flag] == f"{help_} (default {default}{also})", flag
        assert base[name] == default and quick[name] == quick_default, flag
        value = OTHER_VALUES[name] if isinstance(default, str) else default + 3
        assert value != default
        resolved = resolve(flag, str(value))[0]
        want = {**base, name: value}
        if name in ("epochs", "batches_per_epoch"):  # the learning-rate decay spans the run's batches
            want["lr_decay_batches"] = want["epochs"] * want["batches_per_epoch"]
        assert resolved == want and type(resolved[name]) is type(default), flag
    assert base["lr_decay_batches"] == base["epochs"] * base["batches_per_epoch"]

    # the options of the command itself
    assert helps[flag_of("out")].endswith("(default runs/lunarlander-<time>)")
    assert resolve("--out", str(tmp_path / "elsewhere")) == (base, tmp_path / "elsewhere")
    assert helps[flag_of("quick")] == (
        "a tiny run (lunarlander_settings.quick_model_config(): 16x16 frames on 50_12; 2 epochs of 8 batches); "
        "also set by DTM_LITE_QUICK=1"
    )
    s = resolve("--quick")[0]
    assert s == quick != base and s["quick"] is True and (s["image_shape"], s["preset"]) == ((16, 16, 3), "50_12")
    assert resolve("--quick", "--epochs", "5")[0]["epochs"] == 5  # explicit flags beat --quick
    assert helps[flag_of("resume")] == "continue the run in --out (default: the newest in runs/)"
    # a model field its run.json lacks was added since the run began: the class default (as the run's
    # checkpoint reads it, DTMConfig.from_dict), not today's command default
    plain = DTMConfig().to_dict()
    (tmp_path / "run.json").write_text(json.dumps({"config": {"seed": 9, "lr_decay_batches": 1234}}))
    want = {**base, **plain, "seed": 9, "lr_decay_batches": 1234}
    assert resolve("--resume", "--out", str(tmp_path)) == (want, tmp_path)
    assert resolve("--resume", "--out", str(tmp_path), "--seed", "4")[0]["seed"] == 4  # flags beat run.json
    with pytest.raises(SystemExit, match="has no run.json"):
        resolve("--resume", "--out", str(tmp_path / "elsewhere"))
    assert helps[flag_of("no_progress")] == "no progress bars"  # a display switch, not a run setting
    assert cli.build_parser().parse_args(["train", "--no-progress"]).no_progress is True
    assert cli.build_parser().parse_args(["train"]).no_progress is False
    assert resolve("--no-progress")[0] == base
    assert helps[flag_of("condition")].endswith("(default none; a resumed run keeps its model's)")
    assert resolve("--condition", "none")[0] == base  # the others: tests/test_cli_condition.py
    # devices and hosts: how the run is spread, not run settings (tests/test_cli_devices.py runs them)
    assert helps[flag_of("devices")].startswith("devices to split the chains over (default: all")
    assert helps[flag_of("coordinator")].startswith("multi-host: process 0's address")
    assert helps[flag_of("num_processes")].startswith("multi-host: number of processes")
    assert helps[flag_of("process_id")].startswith("multi-host: this process's index")
    assert helps[flag_of("memory_budget")].startswith("--batch-size auto: memory a device may use, in MiB")
    assert helps[flag_of("coordinator_timeout")].startswith("multi-host: seconds to wait for the coordinator")
    for name in ("devices", "coordinator", "num_processes", "process_id", "memory_budget"):
        assert resolve(cli.flag(name), "2")[0] == base, name
    assert set(helps) == checked  # every flag in the help was checked above, and no checked flag is missing


def test_cli_quick_run_and_resume(tmp_path, capsys):
    from dtm_lite.interface.cli import main

    out = tmp_path / "run"
    common = ["train", "--quick", "--out", str(out), "--no-progress", "--batches-per-epoch", "3"]
    assert main([*common, "--epochs", "1", "--evaluate-every", "1"]) == 0
    text = capsys.readouterr().out
    assert f"run folder: {out.resolve()}" in text and "FD-PCA" in text and "independent-pixel baseline" in text
    saved = json.loads((out / "run.json").read_text())  # the model config as DTMConfig.to_dict(), and the stream
    assert set(saved) == {"config", *ll.STREAM_SETTINGS} and saved["batches_per_epoch"] == 3
    assert DTMConfig.from_dict(saved["config"]) == ll.quick_model_config(lr_decay_batches=3)  # 1 epoch x 3 batches
    with pytest.raises(SystemExit, match="add --resume"):
        main([*common, "--epochs", "2"])
    assert main([*common, "--epochs", "2", "--evaluate-every", "1", "--resume"]) == 0
    assert "2 epochs, 6 batches" in capsys.readouterr().out
    assert (out / "metrics.png").exists() and (out / "run.json").exists()


MEMORY_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "memory.py"


def test_memory_stays_flat():
    out = subprocess.run([sys.executable, str(MEMORY_SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("peak RSS")][-1]
    after2, after6 = (float(v) for v in re.findall(r"([0-9.]+) MB", line)[:2])
    assert after6 - after2 < 50, line
