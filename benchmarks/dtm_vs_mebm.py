"""DTM against a single EBM on the glyph set: learning curves of every (T, ACP, seed), written to figures/.

    python benchmarks/dtm_vs_mebm.py            # full: T = 1, 2, 4, 8, ACP off and on, 3 seeds (see its wall time)
    python benchmarks/dtm_vs_mebm.py --quick    # the CI size: same code path, 20 batches, T = 1, 2, one seed
    python benchmarks/dtm_vs_mebm.py --glyphs "14x14, noise 0" --out figures/dtm_vs_mebm_sharp.json
                                                # the same study on noise-free glyphs, where the MEBM freezes hard
    python benchmarks/dtm_vs_mebm.py --glyphs "10x10, noise 0" --batches 2000 --batches-per-point 100 \
        --out figures/dtm_vs_mebm_10x10.json    # the smallest set where the MEBM froze (benchmarks/freeze_search.py)

Writes ``figures/dtm_vs_mebm.json`` (``--out``): the settings, every variant's curve and final samples, and the
study's wall time; prints the summary table and the verdict (dtm_lite.evaluation.dtm_vs_mebm). Notebook 05 draws it.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dtm_lite.data.glyphs import GLYPH_SETS
from dtm_lite.evaluation.dtm_vs_mebm import StudySettings, run_study, summary, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI size")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "figures" / "dtm_vs_mebm.json"
    )
    parser.add_argument("--glyphs", choices=list(GLYPH_SETS), help="the glyph set (default: the study's, 14x14 noisy)")
    parser.add_argument("--batches", type=int, help="batches a variant trains (default: the study's 1,000)")
    parser.add_argument("--batches-per-point", type=int, help="batches between measurements (default 50)")
    args = parser.parse_args()
    given = {
        "glyphs": GLYPH_SETS[args.glyphs] if args.glyphs else None,
        "batches": args.batches,
        "batches_per_point": args.batches_per_point,
    }  # each unset one keeps StudySettings' own default
    base = StudySettings.quick() if args.quick else StudySettings()
    settings = replace(base, **{k: v for k, v in given.items() if v is not None})
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def report(v: dict) -> None:
        last = v["curve"][-1]
        print(
            f"T={v['steps']} acp={v['acp']} seed={v['seed']}: fd_pca {last['fd_pca']:.3f} clean {last['clean']:.2f} "
            f"autocorr_0 {last['autocorr'][0]:.3f} train {last['train_seconds']:.0f}s",
            flush=True,
        )

    result = run_study(settings, args.out, on_variant=report)
    print(f"study wall time {result['seconds']:.0f} s; written to {args.out}")
    for row in summary(result):
        print(row)
    print(verdict(result))


if __name__ == "__main__":
    main()
