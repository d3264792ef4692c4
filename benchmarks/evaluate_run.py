"""Evaluate a training run's final model again, with several evaluation keys: how much of an epoch's logged
FD-PCA and object metric is the model, and how much the draw of its 500 samples.

    python benchmarks/evaluate_run.py                         # runs/default (make train), 7 keys
    python benchmarks/evaluate_run.py --run runs/t4 --keys 3

Loads RUN/latest.npz and rebuilds the run's held-out frames from its run.json (the settings of
``python -m dtm_lite train``), then runs the training loop's own evaluation (``evaluate_dtm``, EvalSettings();
with --quick, for a --quick run, EvalSettings.quick()) once for each of the keys that epochs E, E+1, ... would use,
E = the run's last epoch: the first line repeats what ``make train`` logged for that epoch. Prints one line
a key and the mean.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dtm_lite import DTM, EvalSettings
from dtm_lite.data.lunarlander import holdout_frames
from dtm_lite.training.loop import Holdout, evaluate_dtm

COLUMNS = ("obj_one_rate", "obj_one_rate_data", "obj_stray", "obj_stray_data", "fd_pca", "fd_floor", "fd_independent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"), help="a run folder of python -m dtm_lite train")
    ap.add_argument("--keys", type=int, default=7, help="evaluation keys: those of the last epoch and the next ones")
    ap.add_argument("--quick", action="store_true", help="the run was made with --quick: EvalSettings.quick()")
    args = ap.parse_args()
    if not (args.run / "latest.npz").exists() or not (args.run / "run.json").exists():
        raise SystemExit(f"{args.run} has no latest.npz and run.json: run `make train` (or pass --run)")
    s = json.loads((args.run / "run.json").read_text())
    dtm, extra = DTM.load_with_extra(args.run / "latest.npz")
    epochs = int(extra.get("epoch", s.get("epochs", 1)))
    res = dtm.config.image_shape[0]
    frames = holdout_frames(
        res, s["holdout_episodes"], seed=dtm.config.seed, policy=s["policy"], frame_stride=s["frame_stride"]
    )  # as the command built them
    settings = EvalSettings.quick() if args.quick else EvalSettings()
    held = Holdout(dtm, frames, settings)
    print(
        f"{args.run}: {dtm.batches_trained} batches; {len(frames)} held-out frames; {settings.n_images} samples a key"
    )
    rows = []
    for k in range(args.keys):
        t0 = time.perf_counter()
        epoch = epochs + k  # the training loop's evaluation key of epoch E is fold_in(..., E - 1)
        m = evaluate_dtm(dtm, held, settings, epoch=epoch - 1)
        rows.append([m[c] for c in COLUMNS])
        print(
            f"epoch {epoch}'s key: one-blob {m['obj_one_rate']:.3f} (data {m['obj_one_rate_data']:.3f}), stray "
            f"{m['obj_stray']:.3f} (data {m['obj_stray_data']:.3f}), FD-PCA {m['fd_pca']:.3f} (floor "
            f"{m['fd_floor']:.3f}, independent {m['fd_independent']:.3f}) ({time.perf_counter() - t0:.1f} s)"
        )
    mean = dict(zip(COLUMNS, np.mean(rows, axis=0), strict=True))
    print(
        f"mean of {args.keys}: one-blob {mean['obj_one_rate']:.3f}, stray {mean['obj_stray']:.3f}, "
        f"FD-PCA {mean['fd_pca']:.3f}"
    )


if __name__ == "__main__":
    main()
