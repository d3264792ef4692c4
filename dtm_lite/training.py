"""Streaming training: ``DTM.train_from_iterator`` with held-out evaluation, checkpoints and resume.

Each epoch asks the factory for a fresh iterator of batches (bits ``(B, n_visible)`` or frames
``(B, H, W, C)``), trains every diffusion step on each batch, and stops after ``batches_per_epoch``.
Memory is O(batch): nothing of the stream is kept. With a ``holdout`` (a small set of frames kept in
memory, e.g. from other seeds) it also runs what the seed had to disable:

- the autocorrelation diagnostic of each step's free chains (reference section 9),
- the adaptive correlation penalty, once per epoch (section 7.6, when ``config.adaptive_penalty``),
- an evaluation every ``evaluate_every`` epochs: FD-PCA of generated samples next to the data floor and
  the independent-pixel baseline, the per-pixel marginal error, the object metric (``obj_*``: does the
  model draw small objects such as the lander as one blob, see :mod:`dtm_lite.metrics`), a sample grid
  PNG and a GIF of the denoising trajectory.

Every epoch appends one row to ``metrics.csv``. Without a ``holdout``, ``evaluate_every`` still saves the
sample grid and GIF; the held-out metrics and the autocorrelation stay blank (with one warning).

Checkpoints (``checkpoint_dir/latest.npz``) are written atomically after every epoch and on Ctrl-C. They
record the epoch and how many of its batches were done, so ``resume=True`` continues exactly where the
run stopped: with a deterministic factory, an interrupted and resumed run ends with the same parameters
as an uninterrupted one.
"""

from __future__ import annotations

import csv
import inspect
import io
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from tqdm.auto import tqdm

from .diffusion import training_pair
from .files import atomic_write
from .metrics import FDPCA, LANDER, ObjectClass, autocorrelation, autocorrelation_scalar, compare_objects, evaluate
from .regularization import adaptive_correlation_penalty

if TYPE_CHECKING:
    from .dtm import DTM

CHECKPOINT_NAME = "latest.npz"


@dataclass(frozen=True)
class EvalSettings:
    """Sizes of the held-out diagnostics (defaults follow the reference; shrink them for quick runs)."""

    n_samples: int = 500  # generated images per evaluation (FD-PCA needs many more than n_components)
    n_components: int = 16  # PCA dimensions of FD-PCA
    autocorr_chains: int = 32
    autocorr_sweeps: int = 2400  # twice the window's far end, so each lag has many pairs
    autocorr_every: int = 10  # record the chains every this many sweeps
    autocorr_window: tuple[int, int] = (1100, 1200)  # the scalar: mean R over these lags (in sweeps)
    gif_images: int = 16
    gif_every: int = 20  # sweeps between GIF frames
    object_class: ObjectClass | None = LANDER  # the object metric's class (None: no object metric)
    object_min_size: int = 2  # pixels a blob needs to count as an object

    def __post_init__(self) -> None:
        if self.object_class is not None and not isinstance(self.object_class, ObjectClass):
            raise ValueError(f"object_class must be a dtm_lite.metrics.ObjectClass or None, got {self.object_class!r}")
        for name in ("n_samples", "n_components", "autocorr_chains", "autocorr_sweeps", "autocorr_every",
                     "object_min_size"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.autocorr_sweeps % self.autocorr_every:
            raise ValueError("autocorr_every must divide autocorr_sweeps")
        lo, hi = self.autocorr_window
        if not 0 < lo <= hi < self.autocorr_sweeps:
            raise ValueError(f"autocorr_window must satisfy 0 < lo <= hi < autocorr_sweeps, got {self.autocorr_window}")

    @classmethod
    def quick(cls) -> EvalSettings:
        """Small diagnostics for tests, CI and DTM_LITE_QUICK runs."""
        return cls(n_samples=128, n_components=8, autocorr_chains=16, autocorr_sweeps=400, autocorr_window=(150, 200))


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
    """

    _END = object()

    def __init__(self, it: Iterator[Any], depth: int = 2) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(it,), daemon=True)
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


def _as_bits(dtm: DTM, batch: Any, position: str) -> np.ndarray:
    """A stream batch as bits ``(B, n_visible)``: frames ``(B, H, W, C)`` are encoded with the model's encoding."""
    arr = np.asarray(batch[0] if isinstance(batch, tuple) else batch)
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


OBJECT_COLUMNS = ("obj_one_rate", "obj_one_rate_data", "obj_stray", "obj_stray_data", "obj_size_dist", "obj_pos_dist")


class MetricsLog:
    """``metrics.csv`` in the run folder: a fixed header, one row appended (and flushed) per epoch.

    Columns without a value in a row (epochs without evaluation, metrics that need a hold-out set) are
    blank. A file from an older version with another header (a resumed run) is rewritten once, atomically,
    with this header plus any columns only it has, its old rows blank in the new columns.
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
        self._checked = False

    def _upgrade_header(self) -> None:
        """Rewrite an existing file whose header differs from ``columns`` (see the class docstring)."""
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            old, rows = list(reader.fieldnames or []), list(reader)
        if old == self.columns:
            return
        self.columns = self.columns + [c for c in old if c not in self.columns]
        text = io.StringIO()
        w = csv.DictWriter(text, self.columns, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        if not new and not self._checked:
            self._upgrade_header()
        self._checked = True
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in self.columns})


def step_autocorrelation(dtm: DTM, holdout: Holdout, step: int, settings: EvalSettings, key: int) -> float:
    """Autocorrelation scalar of diffusion step ``step``'s free chains, on held-out inputs noised as in training."""
    n = min(settings.autocorr_chains, len(holdout.bits_a))
    t = dtm.times
    _, x_end = training_pair(
        jax.random.key(key),
        holdout.bits_a[:n],
        t[step],
        t[step + 1],
        dtm.config.image_rate,
        dtm.config.diffusion_offset,
    )
    every = settings.autocorr_every
    traj = dtm.free_run(step, np.asarray(x_end), settings.autocorr_sweeps, key + 1, every)
    images = dtm.decode(traj).reshape(traj.shape[0], n, -1)
    r = autocorrelation(images, seed=key)
    lo, hi = settings.autocorr_window
    return autocorrelation_scalar(r[lo // every : hi // every + 1], last=hi // every - lo // every + 1)


def train_from_iterator(
    dtm: DTM,
    n_epochs: int,
    data_iterator_factory: Callable[..., Iterable[Any]],
    batches_per_epoch: int,
    evaluate_every: int = 0,
    holdout: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    *,
    run_dir: str | Path | None = None,
    eval_settings: EvalSettings | None = None,
    prefetch: int = 2,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``dtm`` on a stream; returns one metrics row per epoch. See the module docstring.

    Args:
        n_epochs: the total number of epochs; with ``resume=True`` training continues up to it.
        data_iterator_factory: ``factory()`` or ``factory(epoch)`` -> an iterable of batches (bits
            ``(batch_size, n_visible)``, e.g. from :class:`~dtm_lite.loader.IteratorDataLoader`, or frames
            ``(batch_size, H, W, C)``). Make it deterministic for exact resumes.
        batches_per_epoch: batches per epoch (an epoch whose stream ends earlier ends early, with a warning).
        evaluate_every: evaluate every this many epochs (0 = never). Without ``holdout`` an evaluation only
            saves the sample grid and GIF (the metrics stay blank), with a warning.
        holdout: held-out frames ``(n, H, W, C)`` (from other seeds), kept in memory.
        checkpoint_dir: where ``latest.npz`` is written after each epoch and on Ctrl-C.
        resume: continue from ``checkpoint_dir/latest.npz`` if it exists.
        run_dir: folder for ``metrics.csv``, sample PNGs and GIFs (default: ``checkpoint_dir``).
        prefetch: batches read ahead in a background thread (0 = read in the training thread).
        on_epoch_end: ``callback(epoch, row)`` after each epoch's checkpoint.
    """
    for name, v, lo in (("n_epochs", n_epochs, 1), ("batches_per_epoch", batches_per_epoch, 1),
                        ("evaluate_every", evaluate_every, 0), ("prefetch", prefetch, 0)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    settings = eval_settings or EvalSettings()
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    run_dir = Path(run_dir) if run_dir is not None else (Path(checkpoint_dir) if checkpoint_dir is not None else None)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(run_dir / "metrics.csv", dtm.num_steps) if run_dir is not None else None
    if evaluate_every and holdout is None:
        warnings.warn(
            "evaluate_every without holdout: FD-PCA, the object metric and autocorrelation need held-out frames, "
            "so evaluations only save a sample grid and a denoising GIF"
            + (" (and, without checkpoint_dir= or run_dir=, there is nowhere to save them)" if run_dir is None else "")
            + "; pass holdout=frames (n, H, W, C) from other seeds for the metrics",
            stacklevel=2,
        )

    planned = n_epochs * batches_per_epoch
    if dtm.config.lr_decay_batches < planned:
        warnings.warn(
            f"config.lr_decay_batches={dtm.config.lr_decay_batches} < {planned} planned batches: the learning "
            "rate reaches its floor early; set lr_decay_batches = n_epochs * batches_per_epoch",
            stacklevel=2,
        )

    if not resume and ckpt is not None and ckpt.exists():
        raise FileExistsError(
            f"{ckpt} exists: pass resume=True to continue that run, or use another checkpoint_dir "
            "(or delete the old checkpoint) to start afresh"
        )
    start_epoch, skip, history, a_prev = 0, 0, [], [None] * dtm.num_steps
    resumed = resume and ckpt is not None and ckpt.exists()
    if resumed:
        start_epoch, skip, history, a_prev = _restore(dtm, ckpt)
    held = Holdout(dtm, holdout, settings) if holdout is not None else None
    seed = dtm.config.seed

    def autocorr(k: int) -> float:  # same held-out inputs and chain seeds every epoch: changes are the model's
        assert held is not None
        return step_autocorrelation(dtm, held, k, settings, key=seed * 1000 + 17 * k + 1)

    if held is not None and dtm.config.adaptive_penalty and not resumed:
        # as the research code does: measure before the first epoch, so that the first penalty update
        # already knows whether the autocorrelation is rising (a resumed run has a_prev from its checkpoint)
        a_prev = [autocorr(k) for k in range(dtm.num_steps)]

    def save(epoch: int, batches_done: int) -> None:
        if ckpt is not None:
            extra = {"epoch": epoch, "batches_done": batches_done, "history": history, "a_prev": a_prev}
            dtm.save(ckpt, extra=extra)

    epoch, epoch_start_step = start_epoch, dtm.state.step - skip
    try:
        for epoch in range(start_epoch, n_epochs):
            t0 = time.perf_counter()
            epoch_start_step = dtm.state.step - (skip if epoch == start_epoch else 0)
            metrics = _train_epoch(dtm, data_iterator_factory, epoch, n_epochs, batches_per_epoch,
                                   skip if epoch == start_epoch else 0, prefetch, progress)  # fmt: skip
            row: dict[str, Any] = {"epoch": epoch + 1, "batches": dtm.state.step, **metrics}
            evaluate_now = evaluate_every > 0 and (epoch + 1) % evaluate_every == 0
            if held is not None and (dtm.config.adaptive_penalty or evaluate_now):
                for k in range(dtm.num_steps):
                    a = autocorr(k)
                    row[f"autocorr_{k}"] = a
                    if dtm.config.adaptive_penalty:
                        dtm.corr_penalty[k] = adaptive_correlation_penalty(
                            float(dtm.corr_penalty[k]),
                            a,
                            a_prev[k],
                            dtm.config.autocorr_tau,
                            dtm.config.corr_penalty_min,
                        )
                    a_prev[k] = a
            if evaluate_now:
                row.update(_evaluate(dtm, held, settings, epoch, run_dir))
            row.update({f"corr_penalty_{k}": float(c) for k, c in enumerate(dtm.corr_penalty)})
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if log is not None:
                log.append(row)
            save(epoch + 1, 0)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
            if progress and any(k.startswith("fd_") for k in row):
                tqdm.write(_summary(row, settings))
    except KeyboardInterrupt:
        done = dtm.state.step - epoch_start_step
        save(epoch, done)
        if ckpt is not None:
            print(f"\ninterrupted: checkpoint saved to {ckpt} (epoch {epoch + 1}, {done} batches into it)")
        raise
    return history


def _train_epoch(dtm, factory, epoch, n_epochs, batches_per_epoch, skip, prefetch, progress) -> dict[str, float]:
    it = _batches_for_epoch(factory, epoch)
    reader = Prefetcher(it, prefetch) if prefetch else None
    source = iter(reader) if reader is not None else it
    bar = tqdm(total=batches_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{n_epochs}", unit="batch",
               disable=not progress, dynamic_ncols=True, leave=True)  # fmt: skip
    sums: dict[str, float] = {}
    n = 0
    try:
        for i in range(batches_per_epoch):
            try:
                batch = next(source)
            except StopIteration:
                warnings.warn(
                    f"epoch {epoch + 1}: the stream ended after {i} of {batches_per_epoch} batches", stacklevel=3
                )
                break
            if i < skip:
                continue  # already trained on before the interruption: same stream, same batches
            m = dtm.train_step(_as_bits(dtm, batch, f"epoch {epoch + 1}, batch {i}"))
            n += 1
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix(gap=f"{m['gap']:.4f}", lr=f"{m['lr']:.4f}", refresh=False)
    finally:
        bar.close()
        if reader is not None:
            reader.close()
    return {k: v / n for k, v in sums.items()} if n else {}


def evaluate_dtm(
    dtm: DTM, holdout: np.ndarray | Holdout, settings: EvalSettings | None = None, epoch: int = 0
) -> dict[str, float]:
    """FD-PCA of ``dtm``'s samples with the data floor and independent-pixel baseline, the marginal error
    and the object metric (``obj_*``, see :mod:`dtm_lite.metrics`), on held-out frames ``(n, H, W, C)``;
    the same numbers the training loop logs."""
    settings = settings or EvalSettings()
    held = holdout if isinstance(holdout, Holdout) else Holdout(dtm, holdout, settings)
    return _evaluate(dtm, held, settings, epoch, None)


def _evaluate(
    dtm: DTM, held: Holdout | None, settings: EvalSettings, epoch: int, run_dir: Path | None
) -> dict[str, float]:
    """FD-PCA (with floor and independent baseline), marginal error and the object metric of
    ``min(n_samples, len(held.images_b))`` samples against as many held-out frames (half B); a sample grid
    PNG and a trajectory GIF in ``run_dir``. Without ``held`` only the pictures are made (``gif_images``
    samples), and nothing at all without ``run_dir``."""
    if held is None and run_dir is None:
        return {}
    n = min(settings.n_samples, len(held.images_b)) if held is not None else settings.gif_images
    key = jax.random.fold_in(jax.random.key(dtm.config.seed + 7), epoch)
    every = (
        settings.gif_every if dtm.config.generation_sweeps % settings.gif_every == 0 else dtm.config.generation_sweeps
    )
    samples, traj = dtm.generate(n, key, return_trajectory=True, record_every=every)
    out: dict[str, float] = {}
    if held is not None:
        out = evaluate(held.fd, samples, held.images_b[:n], np.random.default_rng([dtm.config.seed, epoch]))
        out.update(_object_metrics(held.images_b[:n], samples, settings))
    if run_dir is not None:
        from .plots import save_image_grid, save_trajectory_gif

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


def _restore(dtm: DTM, ckpt: Path) -> tuple[int, int, list, list]:
    from .dtm import DTM as _DTM

    loaded, extra = _DTM.load_with_extra(ckpt)
    if loaded.config != dtm.config:
        diff = {k: (v, getattr(loaded.config, k)) for k, v in dtm.config.to_dict().items()
                if getattr(loaded.config, k) != getattr(dtm.config, k)}  # fmt: skip
        raise ValueError(f"checkpoint {ckpt} was made with another config (this run, checkpoint): {diff}")
    dtm.state, dtm.corr_penalty, dtm._gen_key = loaded.state, loaded.corr_penalty, loaded._gen_key
    return int(extra["epoch"]), int(extra["batches_done"]), list(extra["history"]), list(extra["a_prev"])
