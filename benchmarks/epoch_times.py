"""The seed's performance table, redone on this machine: time per epoch of 100 batches of 50.

    python benchmarks/epoch_times.py [--steps 5]

Each row runs ``--steps`` training steps after a compile step with the seed's sampling schedule
(300 warm-up sweeps, 30 samples 6 sweeps apart, both phases) and reports 100 x the median step time.
Data generation is not included: it runs in a background thread during training (see
``benchmarks/frames_source.py`` for frames per second). The seed's figures are for a single GPU.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from dtm_lite import DTM, DTMConfig, smallest_preset

ROWS = [  # (label, preset, image shape, seed's GPU minutes per epoch)
    ("28x28 gray", "44_12", (28, 28, 1), 3),
    ("32x32 gray", "60_12", (32, 32, 1), 6),
    ("32x32 RGB", "80_12", (32, 32, 3), 12),
    ("64x64 gray", smallest_preset(64 * 64, 1), (64, 64, 1), 18),
]


def step_seconds(preset: str, shape: tuple[int, int, int], steps: int) -> float:
    dtm = DTM(DTMConfig(image_shape=shape, preset=preset))
    batch = (np.random.default_rng(0).random((50, dtm.config.n_visible)) < 0.3).astype(np.uint8)
    dtm.train_step(batch)  # compile
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        dtm.train_step(batch)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    print(f"device: {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    print("| configuration | image | batch | steps/epoch | time/epoch here | seed (GPU) |")
    print("|---|---|---|---|---|---|")
    for label, preset, shape, seed_min in ROWS:
        s = step_seconds(preset, shape, args.steps)
        here = f"{100 * s / 60:.1f} min ({s:.2f} s/batch)"
        print(f"| {preset} | {label} | 50 | 100 | {here} | ~{seed_min} min |", flush=True)


if __name__ == "__main__":
    main()
