"""A training run's final model evaluated again, with several evaluation keys: how much of an epoch's logged
FD-PCA and object metric is the model, and how much the draw of its samples.

``evaluate_run(run, keys)`` loads ``run/latest.npz`` and rebuilds the run's held-out frames from its
``run.json`` (the settings of ``python -m dtm_lite train``: ``holdout_frames`` with the run's seed, policy and
frame stride), then runs the training loop's own evaluation (``evaluate_dtm`` with
``lunarlander_settings.eval_settings(quick)``, as the command evaluated) once for each of the keys that
epochs E, E+1, ... would use, E = the run's last epoch: the first repeats what the run logged for epoch E.
``benchmarks/evaluate_run.py`` is its command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dtm_lite.model import DTM

# the metrics kept of each key's evaluation (keys of evaluate_dtm's dict)
COLUMNS = ("obj_one_rate", "obj_one_rate_data", "obj_stray", "obj_stray_data", "fd_pca", "fd_floor", "fd_independent")


def load_run(run: str | Path) -> tuple[DTM, np.ndarray, int]:
    """``(model, held-out frames, last epoch)`` of a run folder of ``python -m dtm_lite train``: the model of
    its ``latest.npz``, its hold-out rebuilt from ``run.json`` as the command built it (uint8 ``(n, H, W, 3)``)
    and the epoch the checkpoint was saved after. FileNotFoundError for a folder without both files."""
    from dtm_lite.data.lunarlander import holdout_frames
    from dtm_lite.model import DTM

    run = Path(run)
    if not (run / "latest.npz").exists() or not (run / "run.json").exists():
        raise FileNotFoundError(
            f"{run} has no latest.npz and run.json: pass a run folder of 'python -m dtm_lite train' "
            "(make train writes runs/default)"
        )
    s = json.loads((run / "run.json").read_text())
    dtm, extra = DTM.load_with_extra(run / "latest.npz")
    epochs = int(extra.get("epoch", s.get("epochs", 1)))
    res = dtm.config.image_shape[0]
    frames = holdout_frames(
        res, s["holdout_episodes"], seed=dtm.config.seed, policy=s["policy"], frame_stride=s["frame_stride"]
    )
    return dtm, frames, epochs


def evaluate_run(
    run: str | Path, keys: int = 7, quick: bool = False, report: Callable[[str], Any] = print
) -> list[dict[str, float]]:
    """The run's final model evaluated with the evaluation keys of epochs E, E+1, ..., E + keys - 1 (E its
    last epoch; the training loop's key of epoch e is ``fold_in(..., e - 1)``), each a dict of
    :data:`COLUMNS` plus ``"epoch"``. ``quick``: the run was made with ``--quick`` (the smaller evaluation).
    ``report`` gets one line about the run, one a key and the mean."""
    from dtm_lite.core.validation import check_int
    from dtm_lite.data.lunarlander_settings import eval_settings
    from dtm_lite.training.loop import Holdout, evaluate_dtm

    keys = check_int("keys", keys, 1)
    dtm, frames, epochs = load_run(run)
    settings = eval_settings(quick)
    held = Holdout(dtm, frames, settings)
    report(f"{run}: {dtm.batches_trained} batches; {len(frames)} held-out frames; {settings.n_images} samples a key")
    rows = []
    for k in range(keys):
        t0 = time.perf_counter()
        epoch = epochs + k
        m = evaluate_dtm(dtm, held, settings, epoch=epoch - 1)
        rows.append({"epoch": epoch, **{c: float(m[c]) for c in COLUMNS}})
        report(
            f"epoch {epoch}'s key: one-blob {m['obj_one_rate']:.3f} (data {m['obj_one_rate_data']:.3f}), stray "
            f"{m['obj_stray']:.3f} (data {m['obj_stray_data']:.3f}), FD-PCA {m['fd_pca']:.3f} (floor "
            f"{m['fd_floor']:.3f}, independent {m['fd_independent']:.3f}) ({time.perf_counter() - t0:.1f} s)"
        )
    mean = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
    report(
        f"mean of {keys}: one-blob {mean['obj_one_rate']:.3f}, stray {mean['obj_stray']:.3f}, "
        f"FD-PCA {mean['fd_pca']:.3f}"
    )
    return rows
