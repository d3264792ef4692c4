"""Reliability of train_from_iterator and the loader (issue 8): every error saves, the epoch end is atomic,
prefetching drops nothing, nothing fails silently, Ctrl-C exits cleanly."""

from __future__ import annotations

import copy
import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.training import loop as training
from dtm_lite.training.loop import CHECKPOINT_NAME, EmptyEpochError, EvalSettings, MetricsLog

TINY = DTMConfig(
    image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2, sweeps_per_sample=1,
    generation_sweeps=4, lr_decay_batches=100, seed=5,
)  # fmt: skip
BPE = 4  # batches per epoch


def frames(epoch: int, i: int, n: int = 4) -> np.ndarray:
    """Batch i of epoch ``epoch``: deterministic uint8 frames (n, 4, 4, 1)."""
    return np.random.default_rng([11, epoch, i]).integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)


def stream(epoch: int):
    return [frames(epoch, i) for i in range(BPE)]


class Failing:
    """A factory whose stream raises ``error`` at (epoch, batch)."""

    def __init__(self, at: tuple[int, int], error: BaseException):
        self.at, self.error = at, error

    def __call__(self, epoch: int):
        for i, batch in enumerate(stream(epoch)):
            if (epoch, i) == self.at:
                raise self.error
            yield batch


_TEMPLATES: dict[DTMConfig, DTM] = {}


def new_dtm(config: DTMConfig = TINY) -> DTM:
    """A fresh, untrained model; copies of one template share its jitted training step, so each config compiles
    once per module instead of once per model (train_step replaces ``state``, never changes it in place)."""
    if config not in _TEMPLATES:
        _TEMPLATES[config] = DTM(config)
    dtm = copy.copy(_TEMPLATES[config])

    return dtm


def fake_step(self: DTM, bits) -> dict[str, float]:
    """A training step that only counts (for tests about the loop, not the model)."""
    self.state = self.state._replace(step=self.state.step + 1)
    return {"gap": 0.0, "lr": 0.0}


def params(dtm: DTM) -> dict[str, np.ndarray]:
    return {k: np.asarray(dtm.params[k]) for k in ("W", "b")}


def same_params(a: DTM, b: DTM) -> bool:
    pa, pb = params(a), params(b)
    return all(np.array_equal(pa[k], pb[k]) for k in pa)


def extra(run: Path) -> dict:
    return DTM.load_with_extra(run / CHECKPOINT_NAME)[1]


def csv_epochs(run: Path) -> list[int]:
    with (run / "metrics.csv").open(newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def train(dtm: DTM, factory, n_epochs: int = 2, **kw) -> list[dict]:
    return dtm.train_from_iterator(n_epochs, factory, BPE, progress=False, **kw)


@pytest.fixture(scope="module")
def full() -> DTM:
    """Two uninterrupted epochs over the good stream."""
    dtm = new_dtm(TINY)
    train(dtm, stream)
    return dtm


# -- 1. every error saves -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [0, 2])
def test_stream_error_saves_the_last_batch_and_resumes_exactly(tmp_path, full, prefetch):
    part = new_dtm(TINY)
    with pytest.raises(RuntimeError, match="stream broke") as info:
        train(part, Failing((1, 3), RuntimeError("stream broke")), checkpoint_dir=tmp_path, prefetch=prefetch)
    assert part.state.step == BPE + 3
    ex = extra(tmp_path)
    assert (ex["epoch"], ex["batches_done"]) == (1, 3)  # batches 0..2 of epoch 1, the last completed one
    assert any("checkpoint saved" in n for n in getattr(info.value, "__notes__", []))
    resumed = new_dtm(TINY)
    hist = train(resumed, stream, checkpoint_dir=tmp_path, resume=True, prefetch=prefetch)
    assert resumed.state.step == full.state.step == 2 * BPE and same_params(resumed, full)
    assert [r["epoch"] for r in hist] == [1, 2] and csv_epochs(tmp_path) == [1, 2]


def test_a_short_last_batch_saves_the_batches_before_it(tmp_path):
    def short_end(epoch):
        return [frames(epoch, i, n=4 if i < BPE - 1 else 3) for i in range(BPE)]

    dtm = new_dtm(TINY)
    with pytest.raises(ValueError, match="3 rows but config.batch_size is 4"):
        train(dtm, short_end, checkpoint_dir=tmp_path)
    ex = extra(tmp_path)
    assert (ex["epoch"], ex["batches_done"]) == (0, BPE - 1) and DTM.load(tmp_path / CHECKPOINT_NAME).state.step == 3


def test_a_failing_save_keeps_the_original_error(tmp_path, monkeypatch):
    def disk_full(self, path, extra=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DTM, "save", disk_full)
    with pytest.raises(RuntimeError, match="stream broke") as info:
        train(new_dtm(TINY), Failing((0, 2), RuntimeError("stream broke")), checkpoint_dir=tmp_path)
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "saving the checkpoint failed too" in notes and "No space left on device" in notes


def test_read_only_checkpoint_folder_is_refused_before_training(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not take away write access here (running as root?)")
        steps = []
        monkeypatch.setattr(DTM, "train_step", lambda self, b: steps.append(1) or fake_step(self, b))
        for target in (folder, folder / "sub"):
            with pytest.raises(PermissionError, match=f"checkpoint_dir {target} is not writable"):
                train(new_dtm(TINY), stream, checkpoint_dir=target)
        with pytest.raises(PermissionError, match=f"run_dir {folder} is not writable"):
            train(new_dtm(TINY), stream, checkpoint_dir=tmp_path / "ok", run_dir=folder)
        assert steps == []
    finally:
        folder.chmod(0o700)


def test_a_checkpoint_folder_that_cannot_be_made_is_refused_before_training(tmp_path, monkeypatch):
    steps = []
    monkeypatch.setattr(DTM, "train_step", lambda self, b: steps.append(1) or fake_step(self, b))
    (tmp_path / "file").write_text("in the way")
    for target in (tmp_path / "file", tmp_path / "file" / "sub"):  # also refused when running as root
        with pytest.raises(OSError, match=f"checkpoint_dir {target} is not writable"):
            train(new_dtm(TINY), stream, checkpoint_dir=target)
    assert steps == []


# -- 2. the epoch end is atomic -----------------------------------------------------------------------------


ADAPTIVE = TINY.replace(adaptive_penalty=True, num_diffusion_steps=2)
HOLDOUT = np.concatenate([frames(99, i) for i in range(2)])


PENALTY_HOOKS: list = []  # called with the update's (epoch-end, step) position inside the fake penalty rule


def fake_autocorr(dtm, held, k, settings, key):
    """A deterministic autocorrelation: a function of the parameters (no chains to run)."""
    return float(np.asarray(dtm.params["b"]).sum()) + k


def fake_penalty(cp, a, a_prev, tau, cp_min):
    """A penalty rule whose every update shows (cp -> 2 cp + 0.25), so an update applied half or twice is seen."""
    for hook in PENALTY_HOOKS:
        hook()
    return 2 * cp + 0.25


def patch_diagnostics(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(training, "step_autocorrelation", fake_autocorr)
    mp.setattr(training, "adaptive_correlation_penalty", fake_penalty)


def adaptive_train(dtm: DTM, factory=stream, **kw):
    return train(dtm, factory, holdout=HOLDOUT, eval_settings=EvalSettings(n_images=4, n_components=2), **kw)


@pytest.fixture(scope="module")
def adaptive_full() -> DTM:
    with pytest.MonkeyPatch.context() as mp:
        patch_diagnostics(mp)
        dtm = new_dtm(ADAPTIVE)
        adaptive_train(dtm)
    return dtm


@pytest.mark.parametrize("how", ["raise", "signal"])
def test_interrupt_in_the_penalty_update_never_saves_a_half_update(tmp_path, monkeypatch, adaptive_full, how):
    patch_diagnostics(monkeypatch)
    calls = []

    def interrupt():  # inside the first epoch's update of step 1, after that of step 0
        calls.append(1)
        if len(calls) == 2:
            if how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(sys.modules[__name__], "PENALTY_HOOKS", [interrupt])
    part = new_dtm(ADAPTIVE)
    start = part.corr_penalty.copy()
    with pytest.raises(KeyboardInterrupt):
        adaptive_train(part, checkpoint_dir=tmp_path)
    PENALTY_HOOKS.clear()
    saved = DTM.load(tmp_path / CHECKPOINT_NAME)
    ex = extra(tmp_path)
    if how == "raise":  # before the commit: the epoch is trained, its end not done (no penalty change at all)
        assert (ex["epoch"], ex["batches_done"]) == (0, BPE) and np.array_equal(saved.corr_penalty, start)
    else:  # Ctrl-C waits for the commit: the whole update, then the stop
        assert (ex["epoch"], ex["batches_done"]) == (1, 0) and np.array_equal(saved.corr_penalty, 2 * start + 0.25)
    resumed = new_dtm(ADAPTIVE)
    adaptive_train(resumed, checkpoint_dir=tmp_path, resume=True)
    full = adaptive_full
    assert same_params(resumed, full) and np.array_equal(resumed.corr_penalty, full.corr_penalty)
    assert csv_epochs(tmp_path) == [1, 2]


@pytest.mark.parametrize("how", ["raise", "signal"])
def test_interrupt_in_on_epoch_end_keeps_the_checkpoint_and_one_row_per_epoch(tmp_path, full, how):
    def on_epoch_end(epoch, row):
        if epoch == 0:
            if how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)

    part = new_dtm(TINY)
    with pytest.raises(KeyboardInterrupt):
        train(part, stream, checkpoint_dir=tmp_path, on_epoch_end=on_epoch_end)
    ex = extra(tmp_path)
    assert (ex["epoch"], ex["batches_done"]) == (1, 0)  # not rewound into epoch 0
    assert csv_epochs(tmp_path) == [1]
    resumed = new_dtm(TINY)
    hist = train(resumed, stream, checkpoint_dir=tmp_path, resume=True)
    assert csv_epochs(tmp_path) == [1, 2] and [r["epoch"] for r in hist] == [1, 2]
    assert same_params(resumed, full)


def test_a_row_logged_before_a_failed_checkpoint_is_replaced_on_resume(tmp_path, full, monkeypatch):
    real_save = DTM.save
    saves = []

    def save_once(self, path, extra=None):  # the second epoch's checkpoint (and any later save) fails
        saves.append(1)
        if len(saves) > 1:
            raise OSError(28, "No space left on device")
        return real_save(self, path, extra=extra)

    monkeypatch.setattr(DTM, "save", save_once)
    with pytest.raises(OSError, match="No space"):
        train(new_dtm(TINY), stream, checkpoint_dir=tmp_path)
    monkeypatch.setattr(DTM, "save", real_save)
    assert csv_epochs(tmp_path) == [1, 2] and extra(tmp_path)["epoch"] == 1
    resumed = new_dtm(TINY)
    train(resumed, stream, checkpoint_dir=tmp_path, resume=True)
    assert csv_epochs(tmp_path) == [1, 2] and same_params(resumed, full)


def test_metrics_log_replaces_rows_of_epochs_it_already_has(tmp_path):
    path = tmp_path / "metrics.csv"
    for e in (1, 2, 3):
        MetricsLog(path, 1).append({"epoch": e, "gap": 0.1 * e})
    log = MetricsLog(path, 1)
    log.append({"epoch": 2, "gap": 9.0})
    log.append({"epoch": 3, "gap": 8.0})
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["gap"]) for r in rows] == [("1", "0.1"), ("2", "9.0"), ("3", "8.0")]


# -- 3. prefetching drops nothing ---------------------------------------------------------------------------


def id_batch(k: int) -> np.ndarray:
    """Bits (4, 16) whose first row spells k."""
    return np.tile((k >> np.arange(16)) & 1, (4, 1)).astype(np.uint8)


@pytest.mark.parametrize("prefetch", [0, 1, 2, 5])
def test_a_shared_generator_is_trained_on_in_order_without_loss(monkeypatch, prefetch):
    seen: list[int] = []

    def record(self, bits):
        seen.append(int(np.asarray(bits)[0] @ (1 << np.arange(16))))
        return fake_step(self, bits)

    monkeypatch.setattr(DTM, "train_step", record)
    shared = (id_batch(k) for k in range(100))
    new_dtm(TINY).train_from_iterator(3, lambda: shared, BPE, prefetch=prefetch, progress=False)
    assert seen == list(range(3 * BPE))
    assert next(shared)[0] @ (1 << np.arange(16)) == 3 * BPE  # nothing read past the last epoch's last batch


# -- 4. no silent nothing -----------------------------------------------------------------------------------


def test_an_empty_epoch_is_an_error_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    with (
        pytest.raises(EmptyEpochError, match="epoch 1 trained no batch.*allow_empty_epochs=True"),
        pytest.warns(UserWarning, match="0 of 4"),
    ):
        new_dtm(TINY).train_from_iterator(1, lambda: [], BPE, progress=False)
    shared = iter(stream(0))  # a one-shot iterator handed out every epoch: used up after the first
    with pytest.raises(EmptyEpochError, match="epoch 2 trained no batch"), pytest.warns(UserWarning, match="0 of 4"):
        new_dtm(TINY).train_from_iterator(2, lambda: shared, BPE, checkpoint_dir=tmp_path, progress=False)
    assert extra(tmp_path)["epoch"] == 1
    with pytest.warns(UserWarning, match="ended after 0 of 4"):
        hist = new_dtm(TINY).train_from_iterator(2, lambda: [], BPE, progress=False, allow_empty_epochs=True)
    assert [r["epoch"] for r in hist] == [1, 2]


def test_resume_without_a_checkpoint_says_it_starts_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(DTM, "train_step", fake_step)
    with pytest.warns(UserWarning, match=f"no checkpoint at {tmp_path / CHECKPOINT_NAME}: starting a fresh run"):
        new_dtm(TINY).train_from_iterator(1, stream, BPE, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_loader_refuses_a_tuple_of_two_frame_streams_but_keeps_frames_actions_rewards():
    a, b = frames(0, 0), frames(0, 1)
    with pytest.raises(ValueError, match="stream item 0 is a tuple whose elements 0 and 1 are both frames"):
        list(IteratorDataLoader(zip(a, b, strict=True), batch_size=2))  # single frames (4, 4, 1) each
    with pytest.raises(ValueError, match="elements 0 and 1 are both frames"):
        list(IteratorDataLoader([(a, b)], batch_size=2))  # stacks
    with pytest.raises(ValueError, match="elements 0 and 2 are both frames"):
        list(IteratorDataLoader([(a, np.zeros(4), b[0])], batch_size=2))
    ok = list(IteratorDataLoader([(a, np.zeros(4, np.int64), np.zeros(4, np.float32))], batch_size=2, encode=False))
    assert np.array_equal(np.concatenate(ok), a)
    masks = np.zeros((4, 4, 4), np.uint8)  # (n, H, W): not frames of shape (4, 4, 1)
    assert len(list(IteratorDataLoader([(a, masks)], batch_size=2))) == 2
    with pytest.raises(ValueError, match="elements 0 and 1 are both batches"):
        train(new_dtm(TINY), lambda: [(frames(0, 0), frames(0, 1))])


@pytest.mark.parametrize("shape", [(0, 4, 1), (4, 0, 1), (4, 4, 0), (2, 4, 0, 1), (0, 4, 4, 1)])
def test_loader_refuses_zero_size_frames(shape):
    with pytest.raises(ValueError, match=r"stream item 1 has shape .*a dimension of 0"):
        list(IteratorDataLoader([frames(0, 0), np.zeros(shape, np.uint8)], batch_size=2))
    with pytest.raises(ValueError, match="image_preprocessing returned zero-size frames"):
        list(IteratorDataLoader([frames(0, 0)], batch_size=2, image_preprocessing=lambda x: x[:, :0]))


# -- 9. Ctrl-C ----------------------------------------------------------------------------------------------


def test_ctrl_c_stops_after_the_batch_and_a_second_one_stops_at_once(tmp_path, full):
    real = DTM.train_step
    after = []

    def step(self, bits, n_kills=1):
        for _ in range(n_kills):
            os.kill(os.getpid(), signal.SIGINT)
        after.append(1)  # reached only when Ctrl-C waits for the batch
        return real(self, bits)

    previous = signal.getsignal(signal.SIGINT)
    part = new_dtm(TINY)
    part.train_step = lambda bits: step(part, bits) if part.state.step == BPE + 1 else real(part, bits)
    with pytest.raises(KeyboardInterrupt):
        train(part, stream, checkpoint_dir=tmp_path)
    assert after == [1] and (extra(tmp_path)["epoch"], extra(tmp_path)["batches_done"]) == (1, 2)
    assert signal.getsignal(signal.SIGINT) is previous
    resumed = new_dtm(TINY)
    train(resumed, stream, checkpoint_dir=tmp_path, resume=True)
    assert same_params(resumed, full)

    twice = new_dtm(TINY)
    twice.train_step = lambda bits: step(twice, bits, n_kills=2)
    after.clear()
    with pytest.raises(KeyboardInterrupt):
        train(twice, stream, checkpoint_dir=tmp_path / "twice")
    assert after == [] and signal.getsignal(signal.SIGINT) is previous


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from dtm_lite import DTM, DTMConfig

    cfg = DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2,
                    sweeps_per_sample=1, generation_sweeps=4, lr_decay_batches=100, num_diffusion_steps=2)
    dtm = DTM(cfg)
    real = dtm.train_step

    def slow_step(bits):  # Ctrl-C arrives during the first compile (some seconds), or else the sleep after it
        print("step started", flush=True)
        out = real(bits)
        time.sleep(0.5)
        return out

    dtm.train_step = slow_step
    batches = lambda: (np.full((4, 4, 4, 1), 17 * i % 256, np.uint8) for i in range(50))
    try:
        dtm.train_from_iterator(1, batches, 50, checkpoint_dir=sys.argv[1], progress=False)
    except KeyboardInterrupt:  # as dtm_lite.interface.cli.main does
        sys.exit(130)
    """
)


def test_ctrl_c_in_a_long_first_step_exits_130_with_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "step started"
        time.sleep(0.4)  # into XLA's compile: a KeyboardInterrupt there made the save (or the exit) segfault
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted: checkpoint saved" in out
    ex = extra(run)
    assert (ex["epoch"], ex["batches_done"]) == (0, 1)
