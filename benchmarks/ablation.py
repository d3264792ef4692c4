"""The paper's central claim, re-run on LunarLander: a DTM (T > 1 diffusion steps, adaptive correlation
penalty) against a plain EBM ("MEBM", T = 1), next to the other levers (encoding, placement, a layout,
generation β).

    python benchmarks/ablation.py                                   # every variant, 300 batches of 50 each
    python benchmarks/ablation.py --only "MEBM palette" "DTM T=4 palette planes + penalty" --batches 600
    python benchmarks/ablation.py --quick                           # a smoke test: 16x16 frames on 50_12
    python benchmarks/ablation.py --list                            # the variants

The variants, the shared data, the training and the evaluation of each, and the table are
``dtm_lite.evaluation.ablation`` (its docstring says what each column measures). Output: a markdown table on
stdout as it goes, DIR/ablation.json (rows, command, date, machine; rewritten after every variant) and
DIR/ablation_samples.png (8 samples per variant under held-out frames), DIR = --out (default figures/;
runs/ablation-quick with --quick). notebooks/05_dtm_vs_mebm.ipynb reads them. The full run of the nine
variants at --batches 200 took 6 min 34 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import jax

from dtm_lite.data.lunarlander_settings import eval_settings
from dtm_lite.evaluation.ablation import BASE, QUICK_BASE, VARIANTS, make_data, run_all, select


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these variants (quote names with spaces)")
    ap.add_argument(
        "--batches", type=int, default=None, help="training batches of 50 per variant (300; 6 with --quick)"
    )
    ap.add_argument(
        "--epoch-batches",
        type=int,
        default=None,
        help="batches per epoch, i.e. per penalty update (50; 3 with --quick)",
    )
    ap.add_argument(
        "--holdout-episodes", type=int, default=None, help="held-out episodes, 4 frames each (256; 48 with --quick)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of every model (the data are fixed)")
    ap.add_argument(
        "--quick", action="store_true", help="tiny sizes for tests: 16x16 frames on side-50 grids, short chains"
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (figures/; runs/ablation-quick with --quick)")
    ap.add_argument("--progress", action="store_true", help="progress bars while training")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.list:
        for v in VARIANTS:
            print(
                f"{v['name']!r}: {v['overrides']}"
                + (f" (generation only, from {v['from']!r})" if v.get("from") else "")
            )
        return 0
    root = Path(__file__).resolve().parents[1]
    batches = args.batches or (6 if args.quick else 300)
    epoch_batches = args.epoch_batches or (3 if args.quick else 50)
    holdout_episodes = args.holdout_episodes or (48 if args.quick else 256)
    out = args.out or (root / ("runs/ablation-quick" if args.quick else "figures"))
    variants = select(args.only)
    settings = eval_settings(args.quick)
    resolution = QUICK_BASE["image_shape"][0] if args.quick else BASE["image_shape"][0]
    batch_size = BASE["batch_size"]

    print(
        f"{len(variants)} variant(s), {batches} batches of {batch_size} each, on {jax.default_backend()}; "
        f"rendering {batches * batch_size} training frames and {holdout_episodes} held-out episodes",
        file=sys.stderr,
    )
    data = make_data(resolution, batches * batch_size, holdout_episodes)
    print(f"data: {data.info}", file=sys.stderr)
    t0 = time.perf_counter()
    run_all(
        variants, data, settings, batches, seed=args.seed, quick=args.quick, epoch_batches=epoch_batches, out=out,
        command=shlex.join(["python", "benchmarks/ablation.py", *argv]), progress=args.progress,
    )  # fmt: skip
    print(f"\n{time.perf_counter() - t0:.0f} s; wrote {out / 'ablation.json'} and {out / 'ablation_samples.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
