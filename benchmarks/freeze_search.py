"""Where does a single EBM freeze? The MEBM (T = 1, no penalty) trained on glyph sets from small to large.

    python benchmarks/freeze_search.py            # every setting below, 2,000 batches each (see its wall time)
    python benchmarks/freeze_search.py --quick    # a smoke run: the two smallest settings, 20 batches

A model *freezes* when its Gibbs chains stop crossing between the data's modes: the held-out autocorrelation of
its free chains (dtm_lite.training.loop.step_autocorrelation: one input per group of chains, the same window as the
DTM-vs-MEBM study) rises towards 1. Each setting trains the study's MEBM (``StudySettings.config(1, False, 0)``,
the same sweeps, batch and learning rate) on one glyph set (dtm_lite.data.glyphs), and records the learning
curve of that autocorrelation and of the samples' mode coverage. The settings grow along three axes: the frame
(7x7 with 5x7 digits, 10x10, 14x14 with digits scaled 2x), the sharpness of the modes (pixel noise 0.02 or 0),
and the training length (the curve). A setting counts as frozen when the autocorrelation of its last quarter of
points averages at least ``--frozen`` (0.5: half the variation of a chain is still its start's).

Writes ``figures/freeze_search.json`` (``--out``) and prints one line a setting.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from dtm_lite.data.glyphs import GLYPH_SETS
from dtm_lite.evaluation.dtm_vs_mebm import StudySettings, run_variant


def frozen_level(curve: list[dict], tail: float = 0.25) -> float:
    """The mean step-0 autocorrelation of the last ``tail`` of a curve's points (at least one point)."""
    vals = [p["autocorr"][0] for p in curve]
    return float(np.mean(vals[-max(1, round(tail * len(vals))) :]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: the two smallest settings, 20 batches")
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--frozen", type=float, default=0.5, help="autocorrelation that counts as frozen")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "figures" / "freeze_search.json"
    )
    args = parser.parse_args()
    base = StudySettings.quick() if args.quick else StudySettings(batches=args.batches, batches_per_point=100)
    names = list(GLYPH_SETS)[:2] if args.quick else list(GLYPH_SETS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {"frozen_at": args.frozen, "settings": {}, "seconds": 0.0}
    t0 = time.perf_counter()
    for name in names:
        s = replace(base, glyphs=GLYPH_SETS[name], steps=(1,), penalty=(False,), seeds=(0,))
        v = run_variant(s, 1, False, 0)
        level = frozen_level(v["curve"])
        result["settings"][name] = {
            "study": asdict(s),
            "curve": v["curve"],
            "samples": v["samples"],
            "final_autocorr": level,
            "frozen": level >= args.frozen,
        }
        result["seconds"] = time.perf_counter() - t0
        args.out.write_text(json.dumps(result, indent=1))  # tuples are written as lists
        last, curve = v["curve"][-1], " ".join(f"{p['autocorr'][0]:.2f}" for p in v["curve"])
        print(
            f"{name:>18}: autocorrelation {curve} -> "
            f"{level:.2f} ({'frozen' if level >= args.frozen else 'mixing'}); at the end clean {last['clean']:.2f}, "
            f"digits seen {last['digits_seen']:.0f}, digit TV {last['digit_tv']:.2f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    frozen = [n for n in names if result["settings"][n]["frozen"]]
    print(f"smallest frozen setting: {frozen[0] if frozen else 'none'}; wall time {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
