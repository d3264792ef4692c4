"""Streaming training: ``DTM.train_from_iterator`` with held-out evaluation, checkpoints and resume.

Each epoch asks the factory for a fresh iterator of batches, trains every diffusion step on each batch, and
stops after ``batches_per_epoch``. What a batch is depends on the model (``B`` rows, ``n_bits`` =
``dtm.encoding.n_bits`` bits a frame; frames ``(B, H, W, C)`` wherever bits go are encoded with the model's
encoding):

- an unconditional model: bits ``(B, n_bits)`` or frames (:class:`~dtm_lite.data.loader.IteratorDataLoader`),
  or a tuple whose element 0 is one of them (the other elements are ignored; ``(bits, labels)`` is refused,
  since the labels would be dropped);
- a labelled model (``config.n_classes = K``): ``(bits, labels)``, labels class ids ``(B,)`` in ``0..K-1``
  (``IteratorDataLoader(..., n_classes=K)``);
- a world model (``config.n_actions = A``): transitions ``(bits_t, actions, bits_t1)`` with actions ``(B,)``
  in ``0..A-1``, ``bits_t`` the previous frames' bits ``(B, cond_frames * n_bits)`` (or their frames
  ``(B, H, W, C)`` / ``(B, F, H, W, C)``) and ``bits_t1`` the frame trained on
  (:class:`~dtm_lite.data.loader.TransitionLoader`).

Memory is O(batch): nothing of the stream is kept. With a ``holdout`` (a small set of frames kept in
memory, e.g. from other simulator seeds) it also runs the held-out diagnostics of Jelinčič et al.
(arXiv 2510.23972):

- the autocorrelation diagnostic of each step's free chains,
- the adaptive correlation penalty, once per epoch (when ``config.adaptive_penalty``),
- an evaluation every ``evaluate_every`` epochs: FD-PCA of generated samples next to the data floor and
  the independent-pixel baseline, the per-pixel marginal error, the object metric (``obj_*``: does the
  model draw small objects such as the lander as one blob, see :mod:`dtm_lite.evaluation.metrics`), a sample
  grid PNG and a GIF of the denoising trajectory.

Its randomness comes from ``config.seed`` through :func:`~dtm_lite.core.config.seed_key` (every seed in
[0, 2**64) its own keys): the evaluation after epoch e uses :func:`evaluation_key`, the autocorrelation of
step k :func:`autocorr_key` (the same every epoch).

Every epoch adds one row to ``metrics.csv`` (the file rewritten atomically). Without a ``holdout``,
``evaluate_every`` still saves the sample grid and GIF; the held-out metrics and the autocorrelation stay blank
(with one warning).

One writer a run folder: ``checkpoint_dir`` (and ``run_dir``) are locked for the whole run
(:func:`~dtm_lite.training.files.lock_folder`), and a second run into them, in another process, is refused
with :class:`~dtm_lite.training.files.FolderBusyError` naming the holder's PID.

Checkpoints (``checkpoint_dir/latest.npz``, a folder checked to be writable before training starts) are
written atomically after every epoch and whenever training stops early: on Ctrl-C or any error (a stream
that raises, a bad batch, a full disk), with the last completed batch. They record the epoch and how many
of its batches were done, so ``resume=True`` continues exactly where the run stopped: with a deterministic
factory, an interrupted and resumed run ends with the same parameters as an uninterrupted one. Missing or
malformed progress is the "corrupt" error; a checkpoint without any (made by :meth:`DTM.save`) starts at
epoch 1 from its state, with a warning. A step that would make a parameter non-finite stops the run with
:class:`~dtm_lite.training.checkpoint.NonFiniteError` (the epoch and batch named; the model keeps, and the
checkpoint saves, the state before it).

An epoch's end (autocorrelation, penalty update, evaluation, its row) is computed first and then committed
in one step (penalty, history, ``metrics.csv`` row, checkpoint) that Ctrl-C does not split; a resumed run
replaces rows of epochs the log already holds instead of repeating them. Ctrl-C stops after the current
batch (a KeyboardInterrupt inside JAX's compiler could crash the process); a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import itertools
import os
import queue
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from tqdm.auto import tqdm

from dtm_lite.core.config import MAX_SEED, seed_key
from dtm_lite.core.diffusion import training_pair
from dtm_lite.core.validation import check_int
from dtm_lite.evaluation.metrics import (
    FDPCA,
    ObjectClass,
    autocorrelation,
    autocorrelation_scalar,
    compare_objects,
    evaluate,
)
from dtm_lite.evaluation.pictures import save_image_grid, save_trajectory_gif
from dtm_lite.training.checkpoint import NonFiniteError, corrupt
from dtm_lite.training.files import atomic_write, check_writable, lock_folder
from dtm_lite.training.penalty import adaptive_correlation_penalty

if TYPE_CHECKING:
    from dtm_lite.model import DTM

CHECKPOINT_NAME = "latest.npz"


@dataclass(frozen=True)
class EvalSettings:
    """Sizes of the held-out diagnostics (defaults follow Jelinčič et al., arXiv 2510.23972; shrink them for
    quick runs)."""

    n_images: int = 500  # generated images per evaluation (FD-PCA needs many more than n_components)
    n_components: int = 16  # PCA dimensions of FD-PCA
    autocorr_chains: int = 32  # all chains: autocorr_groups held-out inputs, each driving an equal group of them
    autocorr_groups: int = 4  # held-out inputs, each tiled over autocorr_chains // autocorr_groups chains
    autocorr_sweeps: int = 2400  # twice the window's far end, so each lag has many pairs
    autocorr_every: int = 10  # record the chains every this many sweeps
    autocorr_window: tuple[int, int] = (1100, 1200)  # the scalar: mean R over these lags (in sweeps)
    gif_images: int = 16
    gif_every: int = 20  # sweeps between GIF frames
    object_class: ObjectClass | None = None  # the object metric's class (None: no object metric; LunarLander: LANDER)
    object_min_size: int = 2  # pixels a blob needs to count as an object

    def __post_init__(self) -> None:
        if self.object_class is not None and not isinstance(self.object_class, ObjectClass):
            raise ValueError(
                f"object_class must be a dtm_lite.evaluation.metrics.ObjectClass or None, got {self.object_class!r}"
            )
        for name in ("n_images", "n_components", "autocorr_chains", "autocorr_groups", "autocorr_sweeps",
                     "autocorr_every", "object_min_size"):  # fmt: skip
            v = check_int(name, getattr(self, name))  # a Python or NumPy integer, stored as an int
            if v < 1:  # kept wording: tests/test_objects.py matches "object_min_size must be >= 1"
                raise ValueError(f"{name} must be >= 1, got {v!r}")
            object.__setattr__(self, name, v)
        if self.autocorr_sweeps % self.autocorr_every:
            raise ValueError("autocorr_every must divide autocorr_sweeps")
        if self.autocorr_chains % self.autocorr_groups:
            raise ValueError(
                f"autocorr_chains ({self.autocorr_chains}) must be a multiple of autocorr_groups "
                f"({self.autocorr_groups}): every held-out input drives the same number of chains"
            )
        lo, hi = self.autocorr_window
        if not 0 < lo <= hi < self.autocorr_sweeps:
            raise ValueError(f"autocorr_window must satisfy 0 < lo <= hi < autocorr_sweeps, got {self.autocorr_window}")

    @classmethod
    def quick(cls) -> EvalSettings:
        """Small diagnostics for tests, CI and DTM_LITE_QUICK runs."""
        return cls(n_images=128, n_components=8, autocorr_chains=16, autocorr_sweeps=400, autocorr_window=(150, 200))


class Holdout:
    """Held-out frames split in two disjoint halves: A for fitting FD-PCA and driving diagnostics,
    B for the data-vs-data floor. Both are quantized like the model's data, so all distances compare
    images in the space the model can represent."""

    def __init__(self, dtm: DTM, frames: np.ndarray, settings: EvalSettings) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or len(frames) < 4:
            raise ValueError(f"holdout must be frames (n >= 4, H, W, C), got shape {frames.shape}")
        bits = dtm.encode(frames)
        half = len(bits) // 2
        self.bits_a, self.bits_b = bits[:half], bits[half : 2 * half]
        self.images_a, self.images_b = dtm.decode(self.bits_a), dtm.decode(self.bits_b)
        self.fd = FDPCA.fit(self.images_a, settings.n_components)


def _batches_for_epoch(factory: Callable[..., Iterable[Any]], epoch: int) -> Iterator[Any]:
    """``factory()`` or ``factory(epoch)``, whichever it accepts, as an iterator."""
    try:
        n_params = len(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        n_params = 0
    return iter(factory(epoch) if n_params >= 1 else factory())


class Prefetcher:
    """Reads an iterator in a background thread, ``depth`` items ahead, preserving order.

    Simulator rendering (numpy, Box2D, pygame) then overlaps with the sampler, which runs in XLA with
    the GIL released. Errors in the producer are re-raised in the consumer.

    With ``limit`` it reads at most that many items: an epoch's reader never takes items past the epoch's
    last batch from the source, so a source shared between epochs (one generator) loses nothing.
    """

    _END = object()

    def __init__(self, it: Iterator[Any], depth: int = 2, limit: int | None = None) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        source = it if limit is None else itertools.islice(it, limit)
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it: Iterator[Any]) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            self._put(err)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


UINT8_MASKS = (
    "uint8 frames with values only 0 and 1: uint8 is read as 0..255, so they are encoded as black; for 0/1 masks "
    "pass floats in [0, 1] (x.astype(np.float32)) or scale them to 0..255 (x * 255)"
)


def _as_bits(dtm: DTM, batch: Any, position: str) -> np.ndarray:
    """A stream batch as bits ``(B, n_visible)``: frames ``(B, H, W, C)`` are encoded with the model's encoding."""
    if isinstance(batch, tuple):
        if not batch:
            raise ValueError(f"{position}: an empty tuple; yield a batch or (batch, ...) tuples")
        first = np.shape(batch[0])
        for j, other in enumerate(batch[1:], 1):
            if len(first) >= 2 and getattr(other, "ndim", 0) >= 2 and tuple(np.shape(other)) == tuple(first):
                raise ValueError(
                    f"{position}: a tuple whose elements 0 and {j} are both batches of shape {first}; only element "
                    "0 of a tuple is trained on, so this would drop the others (a zip of two streams?); chain the "
                    "streams or concatenate the batches instead"
                )
        batch = batch[0]
    arr = np.asarray(batch)
    if arr.ndim == 4 and arr.dtype == np.uint8 and arr.size and int(arr.max()) == 1:
        warnings.warn(UINT8_MASKS, stacklevel=5)  # one message: Python shows it once, not every batch
    if arr.ndim == 4:
        arr = dtm.encode(arr)
    n = dtm.encoding.n_bits
    if arr.ndim != 2:
        raise ValueError(f"{position}: expected bits (B, {n}) or frames (B, H, W, C), got shape {arr.shape}")
    if arr.shape[1] != n:
        raise ValueError(
            f"{position}: the batch has {arr.shape[1]} bits a frame, but the model's encoding "
            f"({dtm.encoding.describe()}) expects bits of shape (batch, {n}): the loader encodes differently "
            "from the model; build it with IteratorDataLoader(..., encoding=dtm.encoding), or with encode=False "
            "to pass frames"
        )
    return arr


def _as_step_args(dtm: DTM, batch: Any, position: str) -> dict[str, Any]:
    """A stream batch as the arguments of ``dtm.train_step``: bits alone for an unconditional model;
    ``(bits, labels)`` for a labelled one (``IteratorDataLoader(..., n_classes=K)``); ``(bits_t, actions,
    bits_t1)`` for a world model (``TransitionLoader``). Frames are encoded with the model's encoding."""
    cfg = dtm.config
    if cfg.n_actions:
        if not (isinstance(batch, tuple) and len(batch) == 3):
            raise ValueError(
                f"{position}: a world model (n_actions={cfg.n_actions}) trains on (bits_t, actions, bits_t1) "
                "transitions; stream them with dtm_lite.data.loader.TransitionLoader"
            )
        prev, actions, nxt = batch
        return {"batch_bits": _as_bits(dtm, nxt, position), "prev": prev, "actions": actions}  # train_step checks
    if cfg.n_classes:
        if not (isinstance(batch, tuple) and len(batch) == 2):
            raise ValueError(
                f"{position}: a labelled model (n_classes={cfg.n_classes}) trains on (bits, labels) batches; "
                f"build the loader with IteratorDataLoader(..., n_classes={cfg.n_classes}) over a labelled stream"
            )
        return {"batch_bits": _as_bits(dtm, batch[0], position), "labels": batch[1]}
    if isinstance(batch, tuple) and len(batch) == 2 and np.ndim(batch[1]) == 1 and len(np.shape(batch[0])) >= 2:
        labels = np.asarray(batch[1])
        if np.issubdtype(labels.dtype, np.integer) and len(labels) == np.shape(batch[0])[0]:
            raise ValueError(
                f"{position}: (bits, labels) given to an unconditional model (n_classes=0): build it with "
                "DTMConfig(n_classes=K) to train with labels, or stream the frames alone"
            )
    return {"batch_bits": _as_bits(dtm, batch, position)}


OBJECT_COLUMNS = ("obj_one_rate", "obj_one_rate_data", "obj_stray", "obj_stray_data", "obj_size_dist", "obj_pos_dist")


class MetricsLog:
    """``metrics.csv`` in the run folder: a fixed header, one row per epoch, the whole file rewritten
    atomically (:func:`~dtm_lite.training.files.atomic_write`) at every row, so a crash or a full disk never
    leaves a row cut short.

    Columns without a value in a row (epochs without evaluation, metrics that need a hold-out set) are
    blank. A file from an older version with another header (a resumed run) keeps any columns only it has,
    its old rows blank in the new columns. A torn last row (a file whose last line lacks its line end: an
    append cut short by an older version) is dropped when the file is read. A row for an epoch the file
    already holds (a run resumed from a checkpoint older than its log) replaces that row and any later ones,
    so no epoch is ever listed twice; :meth:`sync` makes the file agree with a resumed checkpoint's history.
    """

    def __init__(self, path: Path, num_steps: int) -> None:
        self.path = path
        steps = range(num_steps)
        self.columns = (
            ["epoch", "batches", "seconds", "gap", "lr", "fd_pca", "fd_floor", "fd_independent", "marginal_error"]
            + list(OBJECT_COLUMNS)
            + [f"autocorr_{k}" for k in steps]
            + [f"corr_penalty_{k}" for k in steps]
        )
        self._rows: list[dict[str, Any]] | None = None  # the file's rows, once read
        self._torn = False  # whether the file ends in a torn row (dropped from _rows)

    @staticmethod
    def _epoch_of(row: dict[str, Any]) -> int | None:
        try:
            return int(float(row.get("epoch")))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None

    def _read(self) -> list[dict[str, Any]]:
        """The file's complete rows (read once); its extra columns join :attr:`columns`."""
        if self._rows is None:
            text = self.path.read_text(errors="replace") if self.path.exists() else ""
            reader = csv.DictReader(io.StringIO(text, newline=""))
            old, rows = list(reader.fieldnames or []), list(reader)
            self._torn = bool(text) and not text.endswith("\n")  # cut short before its line end
            if self._torn and rows:
                rows.pop()
            elif self._torn:
                old = []  # the header itself
            width = len(old)
            self._rows = [r for r in rows if None not in r and sum(v is not None for v in r.values()) == width]
            self.columns = self.columns + [c for c in old if c not in self.columns]
        return self._rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        text = io.StringIO()
        w = csv.DictWriter(text, self.columns, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))
        self._rows, self._torn = rows, False

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row`` (after dropping any rows of its epoch and later ones) and rewrite the file."""
        epoch = self._epoch_of(row)
        keep = [r for r in self._read() if epoch is None or (self._epoch_of(r) or 0) < epoch]
        self._write([*keep, dict(row)])

    def sync(self, history: list[dict[str, Any]]) -> None:
        """Make the file agree with a resumed checkpoint's ``history`` (its rows of epochs 1..E): those rows,
        in epoch order, with any other rows of epochs up to E; rows of later epochs (to be trained again) are
        dropped. Rewritten only when that changes it."""
        rows = self._read()
        mine = {self._epoch_of(r): r for r in history if isinstance(r, dict)}
        last = max((e for e in mine if e is not None), default=0)
        others = [r for r in rows if (e := self._epoch_of(r)) is not None and e not in mine and e <= last]
        merged = sorted([*others, *(r for e, r in mine.items() if e is not None)], key=lambda r: self._epoch_of(r) or 0)
        if self._torn or self._text(merged) != self._text(rows):
            self._write(merged)

    def _text(self, rows: list[dict[str, Any]]) -> list[list[str]]:
        return [["" if r.get(k) is None else str(r[k]) for k in self.columns] for r in rows]


def evaluation_key(seed: int, epoch: int) -> jax.Array:
    """The JAX key of the evaluation after epoch ``epoch`` (0-based) of a model with ``config.seed == seed``:
    ``fold_in(seed_key((seed + 7) mod 2**64), epoch)``. :func:`~dtm_lite.core.config.seed_key` gives every seed
    in [0, 2**64) its own key, where ``jax.random.key`` alone keeps the low 32 bits (``key(2**32 + 7)`` is
    ``key(7)``)."""
    seed = check_int("seed", seed, 0, MAX_SEED)
    epoch = check_int("epoch", epoch, 0, 2**32 - 1)
    return jax.random.fold_in(seed_key((seed + 7) % (MAX_SEED + 1)), epoch)


def autocorr_key(seed: int, step: int) -> int:
    """The integer key of diffusion step ``step``'s autocorrelation diagnostic (:func:`step_autocorrelation`)
    for a model with ``config.seed == seed``: ``(1000 * seed + 17 * step + 1) mod 2**64``, the same every
    epoch, so that changes from one epoch to the next are the model's."""
    seed = check_int("seed", seed, 0, MAX_SEED)
    step = check_int("step", step, 0)
    return (1000 * seed + 17 * step + 1) % (MAX_SEED + 1)


def step_autocorrelation(dtm: DTM, holdout: Holdout, step: int, settings: EvalSettings, key: int) -> float:
    """Autocorrelation scalar of diffusion step ``step``'s free chains, on held-out inputs noised as in training.

    As in the public replication of Jelinčič et al. (arXiv 2510.23972): ``G = min(autocorr_groups, len(A))``
    frames of held-out half A are noised once each to ``x_end`` (the input of step ``step``); each input is
    tiled over ``C = autocorr_chains // autocorr_groups`` free chains, so the trajectory is ``(records, G, C,
    D)``, and :func:`~dtm_lite.evaluation.metrics.autocorrelation` normalises within each group and averages
    R over groups and dimensions. The scalar is the mean of R over ``autocorr_window`` (lags in sweeps): near
    0 when the chains of one input forget where they started, near 1 when they freeze. (Chains of different
    inputs are never pooled: a conditional step pins each near its own input, which would read as
    correlation however well the chains mix.)

    ``key`` is an integer in [0, 2**64) (the training loop's is :func:`autocorr_key`): the inputs are noised
    with ``seed_key(key)``, the chains run from ``(key + 1) mod 2**64`` and the autocorrelation's projection
    basis is drawn from ``key``."""
    key = check_int("key", key, 0, MAX_SEED)
    groups = min(settings.autocorr_groups, len(holdout.bits_a))
    per_group = settings.autocorr_chains // settings.autocorr_groups
    t = dtm.times
    _, x_end = training_pair(
        seed_key(key),
        holdout.bits_a[:groups],
        t[step],
        t[step + 1],
        dtm.config.image_rate,
        dtm.config.diffusion_offset,
    )
    inputs = np.repeat(np.asarray(x_end), per_group, axis=0)  # rows g*C .. (g+1)*C-1: input g
    every = settings.autocorr_every
    traj = dtm.free_run(step, inputs, settings.autocorr_sweeps, (key + 1) % (MAX_SEED + 1), every)
    images = dtm.decode(traj).reshape(traj.shape[0], groups, per_group, -1)
    r = autocorrelation(images, seed=key)
    lo, hi = settings.autocorr_window
    return autocorrelation_scalar(r[lo // every : hi // every + 1], last=hi // every - lo // every + 1)


class EmptyEpochError(ValueError, RuntimeError):
    """An epoch trained no batch at all (see ``allow_empty_epochs`` of :func:`train_from_iterator`)."""


def _to_stderr(text: str) -> None:
    """Write straight to file descriptor 2: safe inside a signal handler (no buffered-stream reentrancy)."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


class _CtrlC:
    """Ctrl-C while ``train_from_iterator`` runs in the main thread, handled between batches.

    A KeyboardInterrupt raised inside JAX (e.g. in the first compile) can leave XLA in a state in which the
    checkpoint save, or the interpreter's exit, segfaults (JAX issues 9082, 18246). So the first Ctrl-C only
    sets ``requested``; the loop checks it between batches (and between the epoch-end diagnostics), saves,
    and raises KeyboardInterrupt there. A second Ctrl-C goes to the previous handler (by default:
    KeyboardInterrupt at once), except inside ``critical()`` (the epoch-end commit), which always completes.
    Outside the main thread, or when SIGINT is ignored or not handled by Python, nothing is installed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._critical = 0
        self._previous: Callable[..., Any] | None = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self._critical and self._previous is not None:
            self._previous(signum, frame)  # the second Ctrl-C: what it did before training started
            return
        if not self.requested:
            _to_stderr("\nCtrl-C: stopping after the current batch, with a checkpoint (Ctrl-C again: stop at once)\n")
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A block that Ctrl-C does not interrupt (it is acted on at the next ``check``)."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1


@dataclass
class _Progress:
    """Where the model's in-memory state stands: ``epoch`` (0-based) began at ``dtm.batches_trained == start_step``;
    ``history``/``a_prev`` are those of the completed epochs; ``sums``/``n`` accumulate the current epoch's
    per-batch metrics. The checkpoint records exactly this, so saving it at any moment is consistent."""

    epoch: int
    start_step: int
    history: list[dict[str, Any]]
    a_prev: list[float | None]
    sums: dict[str, float]
    n: int

    def to_extra(self, batches_done: int) -> dict[str, Any]:
        """What a checkpoint's ``extra`` records (JSON)."""
        return {"epoch": self.epoch, "batches_done": batches_done, "history": self.history, "a_prev": self.a_prev,
                "epoch_sums": self.sums, "epoch_batches": self.n}  # fmt: skip

    @classmethod
    def from_extra(cls, extra: dict[str, Any], step: int, num_steps: int, batches_per_epoch: int,
                   where: Any) -> _Progress | None:  # fmt: skip
        """The progress a checkpoint of :func:`train_from_iterator` records (``dtm.batches_trained == step``);
        None for a checkpoint that records none (made by :meth:`DTM.save`); the "corrupt" ``ValueError`` naming
        ``where`` for missing or malformed fields (a wrong type, ``batches_done`` beyond the epoch's
        ``batches_per_epoch`` or the batches trained)."""
        if not any(k in extra for k in PROGRESS_FIELDS):
            return None
        try:
            done = check_int("batches_done", extra["batches_done"], 0, batches_per_epoch)
            if done > step:
                raise ValueError(f"batches_done {done} is more than the {step} batches its model trained")
            history, a_prev, sums = extra["history"], extra["a_prev"], extra.get("epoch_sums", {})
            if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
                raise ValueError(f"history must be a list of metrics rows, got {type(history).__name__}")
            if not isinstance(a_prev, list) or len(a_prev) != num_steps or not all(map(_number_or_none, a_prev)):
                raise ValueError(f"a_prev must be {num_steps} numbers or nulls, got {a_prev!r:.80}")
            if not isinstance(sums, dict) or not all(_number_or_none(v) and v is not None for v in sums.values()):
                raise ValueError(f"epoch_sums must map metric names to numbers, got {sums!r:.80}")
            epoch = check_int("epoch", extra["epoch"], 0)
            n = check_int("epoch_batches", extra.get("epoch_batches", 0), 0, done)
        except KeyError as err:
            raise corrupt(where, f"its training progress lacks {err.args[0]!r}{_RESUME_HINT}") from None
        except ValueError as err:
            raise corrupt(where, f"its training progress is malformed: {err}{_RESUME_HINT}") from None
        return cls(epoch=epoch, start_step=step - done, history=list(history),
                   a_prev=[None if a is None else float(a) for a in a_prev],
                   sums={str(k): float(v) for k, v in sums.items()}, n=n)  # fmt: skip


PROGRESS_FIELDS = ("epoch", "batches_done", "history", "a_prev", "epoch_sums", "epoch_batches")
"""The fields of a checkpoint's ``extra`` that :func:`train_from_iterator` writes (``_Progress.to_extra``)."""
_RESUME_HINT = "; resume=True continues from the checkpoint that train_from_iterator wrote there"


def _number_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


@dataclass(frozen=True)
class RunSettings:
    """How a streaming run goes (validated on construction); the model's own settings live in its DTMConfig."""

    n_epochs: int
    batches_per_epoch: int
    evaluate_every: int = 0
    prefetch: int = 2
    progress: bool = True
    allow_empty_epochs: bool = False
    eval: EvalSettings = field(default_factory=EvalSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_epochs", check_int("n_epochs", self.n_epochs, 1))
        object.__setattr__(self, "batches_per_epoch", check_int("batches_per_epoch", self.batches_per_epoch, 1))
        object.__setattr__(self, "evaluate_every", check_int("evaluate_every", self.evaluate_every, 0))
        object.__setattr__(self, "prefetch", check_int("prefetch", self.prefetch, 0))


class TrainingRun:
    """One streaming run of :func:`train_from_iterator`: paths, settings, progress, and its steps.

    ``run()`` is the whole loop; its steps read in order: :meth:`start` (restore or begin, the first
    autocorrelation), then per epoch :meth:`train_epoch`, :meth:`end_epoch` (autocorrelation, penalty update,
    evaluation: computed on copies) and :meth:`commit` (penalty, history, ``metrics.csv`` row and checkpoint in
    one step that Ctrl-C does not split); :meth:`save` and :meth:`save_on_error` write the checkpoint.
    """

    def __init__(
        self,
        dtm: DTM,
        factory: Callable[..., Iterable[Any]],
        settings: RunSettings,
        holdout: np.ndarray | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        run_dir: str | os.PathLike | None = None,
        on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        self.dtm, self.factory, self.settings, self.on_epoch_end = dtm, factory, settings, on_epoch_end
        self.holdout_frames = holdout
        self.ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        folder = run_dir if run_dir is not None else checkpoint_dir
        self.run_dir = Path(folder) if folder is not None else None
        folders = self._writable_folders()
        self.log = MetricsLog(self.run_dir / "metrics.csv", dtm.num_steps) if self.run_dir is not None else None
        self._warn_about_settings(holdout)
        self._locks = contextlib.ExitStack()  # one writer a folder, from here to the end of run()
        try:
            for folder, what in folders if jax.process_index() == 0 else []:  # multi-host: process 0 writes
                self._locks.enter_context(lock_folder(folder, what))
            if not resume and self.ckpt is not None and self.ckpt.exists():
                raise FileExistsError(
                    f"{self.ckpt} exists: pass resume=True to continue that run, or use another checkpoint_dir "
                    "(or delete the old checkpoint) to start afresh"
                )
        except BaseException:
            self._locks.close()
            raise
        self.resumed = resume and self.ckpt is not None and self.ckpt.exists()
        if resume and not self.resumed:
            warnings.warn(f"resume=True, but there is no checkpoint at {self.ckpt}: starting a fresh run", stacklevel=4)
        self.progress = _Progress(0, dtm.batches_trained, [], [None] * dtm.num_steps, {}, 0)
        self.saved_at = self.position()  # what the checkpoint on disk holds (a fresh run: nothing worth saving yet)
        self.saved_by_run = self.progress_restored = False  # this run wrote the checkpoint / read its progress
        self.held: Holdout | None = None
        self.ctrl_c = _CtrlC()

    def _writable_folders(self) -> list[tuple[Path, str]]:
        """``(folder, its argument's name)`` of checkpoint_dir and run_dir (when another folder), each checked
        to be writable (:func:`~dtm_lite.training.files.check_writable`)."""
        folders = [(self.ckpt.parent, "checkpoint_dir")] if self.ckpt is not None else []
        if self.run_dir is not None and (self.ckpt is None or self.run_dir.resolve() != self.ckpt.parent.resolve()):
            folders.append((self.run_dir, "run_dir"))
        for folder, what in folders:
            check_writable(folder, what)
        return folders

    def _warn_about_settings(self, holdout: np.ndarray | None) -> None:
        s, cfg = self.settings, self.dtm.config
        if s.evaluate_every and holdout is None:
            warnings.warn(
                "evaluate_every without holdout: FD-PCA, the object metric and autocorrelation need held-out "
                "frames, so evaluations only save a sample grid and a denoising GIF"
                + (
                    " (and, without checkpoint_dir= or run_dir=, there is nowhere to save them)"
                    if self.run_dir is None
                    else ""
                )  # fmt: skip
                + "; pass holdout=frames (n, H, W, C) from other seeds for the metrics",
                stacklevel=4,
            )
        planned = s.n_epochs * s.batches_per_epoch
        if cfg.lr_decay_batches < planned:
            warnings.warn(
                f"config.lr_decay_batches={cfg.lr_decay_batches} < {planned} planned batches: the learning "
                "rate reaches its floor early; set lr_decay_batches = n_epochs * batches_per_epoch",
                stacklevel=4,
            )

    # ------------------------------------------------------------------ position and saving

    def position(self) -> tuple[int, int]:
        """``(epoch, batches of it done)`` of the in-memory state."""
        return self.progress.epoch, self.dtm.batches_trained - self.progress.start_step

    def save(self) -> None:
        """Write the checkpoint (state and progress) of the in-memory position; with several processes
        (multi-host), process 0 alone writes it (every process holds the same replicated state)."""
        assert self.ckpt is not None
        at = self.position()
        if jax.process_index() == 0:
            self.dtm.save(self.ckpt, extra=self.progress.to_extra(at[1]))
        self.saved_at, self.saved_by_run = at, True

    def save_on_error(self, err: BaseException) -> None:
        """Save the last completed batch when training stops on ``err`` (Ctrl-C or any error) and say so; if
        the save fails too, that is noted on ``err``, which the caller re-raises in any case."""
        interrupted = isinstance(err, KeyboardInterrupt)
        if self.ckpt is None:
            if interrupted:
                print("\ninterrupted (no checkpoint_dir: nothing saved)")
            return
        at = self.position()
        where = f"epoch {at[0] + 1}, {at[1]} batches into it"
        if at == self.saved_at:
            # nothing trained since the last save or restore: say what the file holds, never that a checkpoint
            # this run could not read (a corrupt one, say) is up to date
            if self.ckpt.exists() and (self.saved_by_run or self.progress_restored):
                text = f"checkpoint {self.ckpt} is up to date ({where})"
            elif self.ckpt.exists():
                text = f"no batch trained: nothing saved, and {self.ckpt} was left as it was"
            else:
                text = "no batch trained: nothing saved"
        else:
            try:
                self.save()
                text = f"checkpoint saved to {self.ckpt} ({where}); continue with resume=True"
            except BaseException as save_err:  # noqa: BLE001 - the original error matters more; it is re-raised
                text = (
                    f"saving the checkpoint failed too ({type(save_err).__name__}: {save_err}); {self.ckpt} holds "
                    f"the last earlier save, if any (the model in memory is at {where})"
                )
        if interrupted:
            print(f"\ninterrupted: {text}")
        else:
            err.add_note(f"train_from_iterator stopped: {text}")

    # ------------------------------------------------------------------ the steps

    def autocorr(self, k: int) -> float:
        """Diffusion step ``k``'s autocorrelation: same held-out inputs and chain seeds every epoch, so that
        changes are the model's."""
        assert self.held is not None
        self.ctrl_c.check()
        key = autocorr_key(self.dtm.config.seed, k)
        return step_autocorrelation(self.dtm, self.held, k, self.settings.eval, key=key)

    def start(self) -> None:
        """Restore the checkpoint (resume) or begin; prepare the hold-out. An adaptive penalty measures the
        autocorrelation before the first epoch, as the research code does, so that the first update already
        knows whether it is rising (a resumed run has it from its checkpoint)."""
        if self.resumed:
            self.resume_progress()
        if self.holdout_frames is not None:
            self.held = Holdout(self.dtm, self.holdout_frames, self.settings.eval)
        if self.held is not None and self.dtm.config.adaptive_penalty and not self.resumed:
            self.progress.a_prev = [self.autocorr(k) for k in range(self.dtm.num_steps)]

    def resume_progress(self) -> None:
        """Restore the checkpoint's state and progress, and make ``metrics.csv`` agree with its history. A
        checkpoint without progress (made by :meth:`DTM.save`) starts at epoch 1 from its state, with a
        warning; one with malformed progress is refused (and left as it is)."""
        assert self.ckpt is not None
        extra = self.dtm.restore(self.ckpt)
        self.progress.start_step = self.dtm.batches_trained  # the state on disk: nothing new to save on an error
        self.saved_at = self.position()
        s, step = self.settings, self.dtm.batches_trained
        progress = _Progress.from_extra(extra, step, self.dtm.num_steps, s.batches_per_epoch, self.ckpt)
        if progress is None:
            warnings.warn(
                f"{self.ckpt} records no training progress (made by DTM.save, not train_from_iterator): training "
                f"starts at epoch 1 from its state ({step} batches trained)",
                stacklevel=6,
            )
            progress = _Progress(0, step, [], [None] * self.dtm.num_steps, {}, 0)
        self.progress, self.progress_restored = progress, True
        self.saved_at = self.position()
        if self.log is not None and jax.process_index() == 0:
            self.log.sync(progress.history)

    def train_epoch(self, epoch: int) -> None:
        """Train the epoch's batches after those done before an interruption, adding their metrics to the
        progress sums; Ctrl-C is acted on before each batch. An epoch without any batch is an error unless
        ``allow_empty_epochs``."""
        s, prog = self.settings, self.progress
        skip = self.position()[1]
        if skip < s.batches_per_epoch:
            it = _batches_for_epoch(self.factory, epoch)
            reader = Prefetcher(it, s.prefetch, limit=s.batches_per_epoch) if s.prefetch else None
            source = iter(reader) if reader is not None else it
            bar = tqdm(total=s.batches_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{s.n_epochs}", unit="batch",
                       disable=not s.progress, dynamic_ncols=True, leave=True)  # fmt: skip
            try:
                for i in range(s.batches_per_epoch):
                    self.ctrl_c.check()
                    try:
                        batch = next(source)
                    except StopIteration:
                        warnings.warn(
                            f"epoch {epoch + 1}: the stream ended after {i} of {s.batches_per_epoch} batches",
                            stacklevel=4,
                        )
                        break
                    if i < skip:
                        continue  # already trained on before the interruption: same stream, same batches
                    m = self.step(epoch, i, batch)
                    for k, v in m.items():
                        prog.sums[k] = prog.sums.get(k, 0.0) + v
                    prog.n += 1
                    bar.update(1)
                    bar.set_postfix(gap=f"{m['gap']:.4f}", lr=f"{m['lr']:.4f}", refresh=False)
            finally:
                bar.close()
                if reader is not None:
                    reader.close()
        if self.position()[1] == 0 and not s.allow_empty_epochs:
            raise EmptyEpochError(
                f"epoch {epoch + 1} trained no batch: its stream gave none. Either the stream holds fewer frames "
                "than one batch (IteratorDataLoader drops a partial last batch: give each epoch more frames or "
                "lower batch_size), or a factory returns the same one-shot iterator (a generator) every epoch, "
                "used up after the first (return a fresh iterable each epoch, e.g. IteratorDataLoader over a "
                "re-iterable source); pass allow_empty_epochs=True if empty epochs are intended"
            )

    def step(self, epoch: int, i: int, batch: Any) -> dict[str, float]:
        """Train on batch ``i`` of epoch ``epoch`` (several processes, multi-host: each streams its share of the
        rows, :meth:`DTM.train_step_local`). A step that would make a parameter non-finite is refused by the
        model, which keeps its state: the error names the epoch and batch."""
        where = f"epoch {epoch + 1}, batch {i}"
        args = _as_step_args(self.dtm, batch, where)
        step = self.dtm.train_step_local if jax.process_count() > 1 else self.dtm.train_step
        try:
            return step(args.pop("batch_bits"), **args)
        except NonFiniteError as err:
            raise NonFiniteError(f"{where}: {err}") from None

    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], np.ndarray, list[float | None]]:
        """The epoch's row, next penalty and autocorrelations, computed on copies (nothing is changed yet):
        an interruption here leaves the epoch as trained but not ended, and a resume redoes only this."""
        dtm, prog, s = self.dtm, self.progress, self.settings
        row: dict[str, Any] = {"epoch": epoch + 1, "batches": dtm.batches_trained}
        row.update({k: v / prog.n for k, v in prog.sums.items()} if prog.n else {})
        penalty, a_prev = dtm.corr_penalty, list(prog.a_prev)
        adaptive = dtm.config.adaptive_penalty
        evaluate_now = s.evaluate_every > 0 and (epoch + 1) % s.evaluate_every == 0
        if self.held is not None and (adaptive or evaluate_now):
            for k in range(dtm.num_steps):
                a = self.autocorr(k)
                row[f"autocorr_{k}"] = a
                if adaptive:
                    penalty[k] = adaptive_correlation_penalty(
                        float(penalty[k]), a, a_prev[k], dtm.config.autocorr_tau, dtm.config.corr_penalty_min
                    )
                a_prev[k] = a
        if evaluate_now:
            self.ctrl_c.check()
            # every process samples (generation is one computation over all devices); process 0 writes files
            run_dir = self.run_dir if jax.process_index() == 0 else None
            row.update(_evaluate(dtm, self.held, s.eval, epoch, run_dir))
        row.update({f"corr_penalty_{k}": float(c) for k, c in enumerate(penalty)})
        return row, penalty, a_prev

    def commit(self, epoch: int, row: dict[str, Any], penalty: np.ndarray, a_prev: list[float | None]) -> None:
        """Make the epoch's end take effect, all or nothing with respect to Ctrl-C: the penalty, the progress,
        the ``metrics.csv`` row (before the checkpoint: a resume from the older one replaces the row) and the
        checkpoint."""
        prog = self.progress
        with self.ctrl_c.critical():
            self.dtm.corr_penalty = penalty
            prog.a_prev, prog.history = a_prev, [*prog.history, row]
            prog.epoch, prog.start_step, prog.sums, prog.n = epoch + 1, self.dtm.batches_trained, {}, 0
            if self.log is not None and jax.process_index() == 0:
                self.log.append(row)
            if self.ckpt is not None:
                self.save()

    def run(self) -> list[dict[str, Any]]:
        """Train up to ``n_epochs``; returns one metrics row per epoch (those of earlier sessions included)."""
        with self.ctrl_c:
            try:
                self.start()
                for epoch in range(self.progress.epoch, self.settings.n_epochs):
                    self.ctrl_c.check()
                    t0 = time.perf_counter()
                    self.train_epoch(epoch)
                    row, penalty, a_prev = self.end_epoch(epoch)
                    row["seconds"] = time.perf_counter() - t0
                    self.commit(epoch, row, penalty, a_prev)
                    if self.on_epoch_end is not None:
                        self.on_epoch_end(epoch, row)
                    if self.settings.progress and any(k.startswith("fd_") for k in row):
                        tqdm.write(_summary(row, self.settings.eval))
                self.ctrl_c.check()
            except BaseException as err:
                self.save_on_error(err)
                raise
            finally:
                self._locks.close()
        return self.progress.history


def train_from_iterator(
    dtm: DTM,
    n_epochs: int,
    data_iterator_factory: Callable[..., Iterable[Any]],
    batches_per_epoch: int,
    evaluate_every: int = 0,
    holdout: np.ndarray | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    *,
    run_dir: str | os.PathLike | None = None,
    eval_settings: EvalSettings | None = None,
    prefetch: int = 2,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    allow_empty_epochs: bool = False,
) -> list[dict[str, Any]]:
    """Train ``dtm`` on a stream; returns one metrics row per epoch. See the module docstring; the loop itself
    is :class:`TrainingRun`.

    Args:
        n_epochs: the total number of epochs; with ``resume=True`` training continues up to it.
        data_iterator_factory: ``factory()`` or ``factory(epoch)`` -> an iterable of batches: bits
            ``(batch_size, n_bits)`` or frames ``(batch_size, H, W, C)``, ``(bits, labels)`` for a labelled
            model, ``(bits_t, actions, bits_t1)`` for a world model (see the module docstring), e.g. from
            :class:`~dtm_lite.data.loader.IteratorDataLoader` or :class:`~dtm_lite.data.loader.TransitionLoader`.
            Make it deterministic for exact resumes. At most ``batches_per_epoch``
            batches are read from each epoch's iterable, also when prefetching, so a factory may hand out one
            shared generator: the next epoch continues where this one stopped.
        batches_per_epoch: batches per epoch (an epoch whose stream ends earlier ends early, with a warning).
        evaluate_every: evaluate every this many epochs (0 = never). Without ``holdout`` an evaluation only
            saves the sample grid and GIF (the metrics stay blank), with a warning.
        holdout: held-out frames ``(n, H, W, C)`` (from other seeds), kept in memory.
        checkpoint_dir: where ``latest.npz`` is written after each epoch and when training stops on Ctrl-C
            or any error (with the last completed batch); it must be writable, which is checked first.
        resume: continue from ``checkpoint_dir/latest.npz`` if it exists (a warning when it does not).
        run_dir: folder for ``metrics.csv``, sample PNGs and GIFs (default: ``checkpoint_dir``).
        eval_settings: sizes of the held-out diagnostics (default :class:`EvalSettings`).
        prefetch: batches read ahead in a background thread (0 = read in the training thread).
        progress: show progress bars and one summary line per evaluation.
        on_epoch_end: ``callback(epoch, row)`` after each epoch's checkpoint.
        allow_empty_epochs: an epoch whose stream gives no batch at all raises :class:`EmptyEpochError`
            unless this is True.

    Ctrl-C (in the main thread) stops training after the current batch; a second Ctrl-C stops at once.
    """
    settings = RunSettings(n_epochs, batches_per_epoch, evaluate_every, prefetch, progress, allow_empty_epochs,
                           eval_settings or EvalSettings())  # fmt: skip
    run = TrainingRun(dtm, data_iterator_factory, settings, holdout, checkpoint_dir, resume, run_dir, on_epoch_end)
    return run.run()


def evaluate_dtm(
    dtm: DTM, holdout: np.ndarray | Holdout, settings: EvalSettings | None = None, epoch: int = 0
) -> dict[str, float]:
    """FD-PCA of ``dtm``'s samples with the data floor and independent-pixel baseline, the marginal error
    and the object metric (``obj_*``, see :mod:`dtm_lite.evaluation.metrics`), on held-out frames ``(n, H, W, C)``;
    the same numbers the training loop logs."""
    settings = settings or EvalSettings()
    held = holdout if isinstance(holdout, Holdout) else Holdout(dtm, holdout, settings)
    return _evaluate(dtm, held, settings, epoch, None)


def _evaluate(
    dtm: DTM, held: Holdout | None, settings: EvalSettings, epoch: int, run_dir: Path | None
) -> dict[str, float]:
    """FD-PCA (with floor and independent baseline), marginal error and the object metric of
    ``min(n_images, len(held.images_b))`` samples against as many held-out frames (half B); a sample grid
    PNG and a trajectory GIF in ``run_dir``. Without ``held`` only the pictures are made (``gif_images``
    samples), and nothing at all without ``run_dir``.

    Several processes (multi-host): every process takes part in the generation (one computation over all
    devices, so none may skip it), and process 0 alone computes the metrics (they are only logged there)."""
    if held is None and run_dir is None and jax.process_count() == 1:
        return {}
    n = min(settings.n_images, len(held.images_b)) if held is not None else settings.gif_images
    key = evaluation_key(dtm.config.seed, epoch)
    every = (
        settings.gif_every if dtm.config.generation_sweeps % settings.gif_every == 0 else dtm.config.generation_sweeps
    )
    samples, traj = dtm.generate(n, key, return_trajectory=True, record_every=every)
    out: dict[str, float] = {}
    if held is not None and jax.process_index() == 0:
        out = evaluate(held.fd, samples, held.images_b[:n], np.random.default_rng([dtm.config.seed, epoch]))
        out.update(_object_metrics(held.images_b[:n], samples, settings))
    if run_dir is not None:
        save_image_grid(samples[: settings.gif_images], run_dir / f"samples_epoch{epoch + 1:03d}.png")
        save_trajectory_gif(traj[:, : settings.gif_images], run_dir / f"trajectory_epoch{epoch + 1:03d}.gif")
    return out


def _object_metrics(data: np.ndarray, samples: np.ndarray, settings: EvalSettings) -> dict[str, float]:
    """``compare_objects`` with the settings' class; {} when there is none or it does not fit the images."""
    cls = settings.object_class
    if cls is None:
        return {}
    if cls.channels is not None and np.shape(samples)[-1] != cls.channels:
        warnings.warn(
            f"object metric skipped: class {cls.name!r} is defined for images with C = {cls.channels}, the model "
            f"makes C = {np.shape(samples)[-1]}; pass EvalSettings(object_class=...) with a class for these "
            "images, or object_class=None",
            stacklevel=2,
        )
        return {}
    return compare_objects(data, samples, cls, settings.object_min_size)


def _summary(row: dict[str, Any], settings: EvalSettings | None = None) -> str:
    """One line per evaluation: FD-PCA with its references, marginal error, and the object metric if logged."""
    text = (
        f"epoch {row['epoch']}: FD-PCA {row['fd_pca']:.3f} (data floor {row['fd_floor']:.3f}, "
        f"independent pixels {row['fd_independent']:.3f}), marginal error {row['marginal_error']:.4f}"
    )
    if row.get("obj_one_rate") is not None:
        name = settings.object_class.name if settings is not None and settings.object_class is not None else "object"
        text += (
            f"; {name} one-blob rate {row['obj_one_rate']:.2f} (data {row['obj_one_rate_data']:.2f}), "
            f"stray {row['obj_stray']:.2f}/frame (data {row['obj_stray_data']:.2f})"
        )
    return text
