"""Seconds per `DTM.train_step` on the seed's LunarLander configuration.

    python benchmarks/train_step.py [--preset 80_12] [--image 32 32 3] [--steps 5] [--diffusion-steps 1]

Defaults: 32x32 RGB binary (3,072 visible) on 80_12, batch 50, 300 warm-up sweeps, 30 samples 6 sweeps
apart (474 sweeps a phase, both phases). The research code took about 3.4 s a batch on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from dtm_lite import DTM, DTMConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="80_12")
    ap.add_argument("--image", type=int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"))
    ap.add_argument("--levels", type=int, default=1)
    ap.add_argument("--diffusion-steps", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (after one compile step)")
    args = ap.parse_args()

    cfg = DTMConfig(
        image_shape=tuple(args.image), preset=args.preset, grayscale_levels=args.levels,
        num_diffusion_steps=args.diffusion_steps,
    )  # fmt: skip
    dtm = DTM(cfg)
    rng = np.random.default_rng(0)
    batch = (rng.random((cfg.batch_size, cfg.n_visible)) < 0.3).astype(np.uint8)
    t0 = time.perf_counter()
    dtm.train_step(batch)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        dtm.train_step(batch)
        times.append(time.perf_counter() - t)
    chain_sweeps = 2 * cfg.batch_size * cfg.sweeps_per_phase * cfg.num_diffusion_steps
    best, med = min(times), float(np.median(times))
    print(f"{dtm!r} on {jax.devices()[0].platform}")
    print(f"first step (compile + run): {compile_s:.2f} s")
    print(f"train_step: median {med:.3f} s, best {best:.3f} s per batch over {args.steps} steps")
    print(f"            {med / chain_sweeps * 1e6:.2f} us per chain-sweep ({chain_sweeps} chain-sweeps a batch)")


if __name__ == "__main__":
    main()
