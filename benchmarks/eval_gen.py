"""Generation and evaluation costs on the default model: images, free-running chains, autocorrelation, FD-PCA.

    python benchmarks/eval_gen.py [--preset 80_12] [--image 32 32 3] [--diffusion-steps 1] [--repeats 3]

Times (best of ``--repeats`` after a compile run) with the evaluation's default sizes (``EvalSettings``):

* ``generate``: ``--n`` images (500), ``generation_sweeps`` (400) sweeps a diffusion step, all steps; with
  ``--chunk-chains k`` also in chunks of at most k chains (``max_chunk_bytes``), to see the cache effect;
* ``free_run``: the autocorrelation diagnostic's chains, 32 chains x 2,400 sweeps recorded every 10;
* ``autocorrelation``: R(lag) of those records decoded to images (NumPy, float64: a projection matmul and
  FFTs);
* ``FD-PCA``: fit on ``--holdout`` random frames (an SVD), then the score of the ``--n`` images.

The sampler figures are in spin updates per second (chains x sweeps x nodes / time), to put next to
``benchmarks/sampler_vs_thrml.py``; the NumPy ones in seconds and, for the matmuls, GFLOP/s. The model is
untrained (random initial parameters): the cost does not depend on the parameters' values.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from dtm_lite import DTM, DTMConfig
from dtm_lite.evaluation.metrics import FDPCA, autocorrelation


def best_time(fn, repeats: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="80_12")
    ap.add_argument("--image", type=int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"))
    ap.add_argument("--diffusion-steps", type=int, default=1)
    ap.add_argument("--n", type=int, default=500, help="generated images (EvalSettings.n_images)")
    ap.add_argument("--chains", type=int, default=32, help="autocorrelation chains (EvalSettings.autocorr_chains)")
    ap.add_argument("--sweeps", type=int, default=2400, help="autocorrelation sweeps (EvalSettings.autocorr_sweeps)")
    ap.add_argument("--every", type=int, default=10, help="record every (EvalSettings.autocorr_every)")
    ap.add_argument("--holdout", type=int, default=500, help="held-out frames FD-PCA is fitted on")
    ap.add_argument("--components", type=int, default=16, help="FD-PCA dimensions (EvalSettings.n_components)")
    ap.add_argument("--chunk-chains", type=int, default=0, help="also generate in chunks of this many chains (0: no)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    cfg = DTMConfig(image_shape=tuple(args.image), preset=args.preset, num_diffusion_steps=args.diffusion_steps)
    dtm = DTM(cfg)
    nodes = dtm.graph.n_nodes
    print(f"{dtm!r} on {jax.devices()[0].platform}")

    t, images = best_time(lambda: dtm.generate(args.n, key=0), args.repeats)
    updates = args.n * cfg.num_diffusion_steps * cfg.generation_sweeps * nodes
    print(
        f"generate: {args.n} images x {cfg.num_diffusion_steps} step(s) x {cfg.generation_sweeps} sweeps: {t:.3f} s, "
        f"{updates / t:.3e} spin updates/s"
    )

    if args.chunk_chains:  # cache-sized chunks: generation_bytes_per_chain is what generate() budgets by
        budget = args.chunk_chains * dtm.generation_bytes_per_chain()
        t, _ = best_time(lambda: dtm.generate(args.n, key=0, max_chunk_bytes=budget), args.repeats)
        print(f"generate in chunks of <= {args.chunk_chains} chains: {t:.3f} s, {updates / t:.3e} spin updates/s")

    rng = np.random.default_rng(0)
    inputs = (rng.random((args.chains, cfg.n_visible)) < 0.3).astype(np.uint8)
    t, traj = best_time(lambda: dtm.free_run(0, inputs, args.sweeps, key=1, record_every=args.every), args.repeats)
    print(
        f"free_run: {args.chains} chains x {args.sweeps} sweeps (every {args.every}): {t:.3f} s, "
        f"{args.chains * args.sweeps * nodes / t:.3e} spin updates/s"
    )

    decoded = dtm.decode(traj).reshape(traj.shape[0], args.chains, -1)
    t, _ = best_time(lambda: autocorrelation(decoded), args.repeats)
    n_t, _, d = decoded.shape
    proj = 2 * n_t * args.chains * d * 32
    print(
        f"autocorrelation: records {decoded.shape}: {t * 1e3:.1f} ms "
        f"(projection matmul {proj / 1e9:.2f} GFLOP: {proj / t / 1e9:.1f} GFLOP/s if it were all the time)"
    )

    holdout = (rng.random((args.holdout, *cfg.image_shape)) < 0.3).astype(np.float32)
    t_fit, fd = best_time(lambda: FDPCA.fit(holdout, args.components), args.repeats)
    svd = 4 * args.holdout**2 * d + 22 * args.holdout**3  # thin SVD of (N, D), N <= D (Golub & Van Loan)
    t_score, _ = best_time(lambda: fd.score(np.asarray(images)), args.repeats)
    print(
        f"FD-PCA: fit on {args.holdout} frames of {d} values: {t_fit * 1e3:.1f} ms (SVD ~{svd / 1e9:.1f} GFLOP: "
        f"{svd / t_fit / 1e9:.1f} GFLOP/s); score of {args.n} images: {t_score * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
