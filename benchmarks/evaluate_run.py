"""Evaluate a training run's final model again, with several evaluation keys: how much of an epoch's logged
FD-PCA and object metric is the model, and how much the draw of its 500 samples.

    python benchmarks/evaluate_run.py                         # runs/default (make train), 7 keys
    python benchmarks/evaluate_run.py --run runs/t4 --keys 3

Loads RUN/latest.npz and rebuilds the run's held-out frames from its run.json (the settings of
``python -m dtm_lite train``), then runs the training loop's own evaluation (``evaluate_dtm`` with the
LunarLander evaluation settings, ``dtm_lite.data.lunarlander_settings.eval_settings()``; with --quick, for a
--quick run, the quick ones) once for each of the keys that epochs E, E+1, ... would use, E = the run's last
epoch: the first line repeats what ``make train`` logged for that epoch. Prints one line a key and the mean.
The code is ``dtm_lite.evaluation.run_evaluation.evaluate_run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dtm_lite.evaluation.run_evaluation import evaluate_run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"), help="a run folder of python -m dtm_lite train")
    ap.add_argument("--keys", type=int, default=7, help="evaluation keys: those of the last epoch and the next ones")
    ap.add_argument("--quick", action="store_true", help="the run was made with --quick: the quick evaluation")
    args = ap.parse_args(argv)
    try:
        evaluate_run(args.run, args.keys, quick=args.quick)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"{err} (make train makes one; or pass --run)") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
