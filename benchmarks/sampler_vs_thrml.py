"""dtm_lite's block-Gibbs sampler against thrml's on the same random model, in one process.

    python benchmarks/sampler_vs_thrml.py [--preset 80_12] [--chains 50] [--sweeps 200] [--repeats 3]

Prints spin updates per second for each sampler and the ratio. After a compile-and-warm-up run of each,
the two samplers run alternately ``--repeats`` times; times are the best of those runs, and the ratio is
also given as the median of the per-round ratios (rounds see the same machine load). Absolute numbers on
shared machines are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from dtm_lite.core.graph import GridGraph
from dtm_lite.evaluation.thrml_bridge import thrml_sampler
from dtm_lite.ising import gibbs_sample


def timed(fn) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def alternate_times(fns, repeats: int) -> list[list[float]]:
    """Warm each function up once, then time them in turn ``repeats`` times: one list of times per function."""
    for fn in fns:
        jax.block_until_ready(fn())
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for ts, fn in zip(times, fns, strict=True):
            ts.append(timed(fn))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="80_12")
    ap.add_argument("--chains", type=int, default=50)
    ap.add_argument("--sweeps", type=int, default=200, help="sweeps per timed run (warm-up; one sample)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    graph = GridGraph.from_preset(args.preset)
    rng = np.random.default_rng(args.seed)
    weights = rng.normal(0, 0.2, graph.n_edges).astype(np.float32)
    biases = rng.normal(0, 0.2, graph.n_nodes).astype(np.float32)
    spins0 = np.where(rng.random((args.chains, graph.n_nodes)) < 0.5, -1, 1).astype(np.int8)
    sched = dict(warmup_sweeps=args.sweeps, n_samples=1, sweeps_per_sample=1)
    key = jax.random.key(args.seed)

    sampler = thrml_sampler(graph, weights, biases, **sched)
    keys = jax.random.split(key, args.chains)
    t_ours, t_theirs = alternate_times(
        [lambda: gibbs_sample(key, graph, weights, biases, spins0, **sched), lambda: sampler(keys, spins0)],
        args.repeats,
    )
    ours, theirs = min(t_ours), min(t_theirs)

    updates = args.chains * args.sweeps * graph.n_nodes
    print(f"model: {graph!r}, {args.chains} chains, {args.sweeps} sweeps, device {jax.devices()[0].platform}")
    for name, t in (("dtm_lite", ours), ("thrml", theirs)):
        print(
            f"{name:>9}: {t:8.3f} s  {updates / t:10.3e} spin updates/s  "
            f"{t / (args.chains * args.sweeps) * 1e6:7.2f} us per chain-sweep"
        )
    per_round = np.array(t_theirs) / np.array(t_ours)
    print(
        f"    ratio: dtm_lite is {theirs / ours:.1f}x thrml (best times); per round: median "
        f"{np.median(per_round):.1f}x, range {per_round.min():.1f}-{per_round.max():.1f}x over {args.repeats} rounds"
    )


if __name__ == "__main__":
    main()
