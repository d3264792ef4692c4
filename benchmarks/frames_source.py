"""Frames/s of the LunarLander frame source for 1 and 2 envs, both policies and both vectorization modes.

Usage: python benchmarks/frames_source.py [--resolution 32] [--episodes 24] [--frames-per-episode 32]
"""

from __future__ import annotations

import argparse
import os

from dtm_lite.data.lunarlander import LunarLanderFrames, frames_per_second


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--episodes", type=int, default=24, help="episodes timed per configuration")
    p.add_argument("--frames-per-episode", type=int, default=32)
    args = p.parse_args()
    print(f"cpus: {os.cpu_count()}, resolution {args.resolution}, {args.frames_per_episode} frames/episode")
    print(f"{'policy':>10} {'num_envs':>8} {'mode':>6} {'frames/s':>9}")
    for policy in ("random", "heuristic"):
        for num_envs, mode in ((1, "sync"), (2, "sync"), (2, "async")):
            src = LunarLanderFrames(
                resolution=args.resolution,
                frames_per_episode=args.frames_per_episode,
                policy=policy,
                num_envs=num_envs,
                vectorization_mode=mode,
            )
            fps = frames_per_second(src, args.episodes)
            print(f"{policy:>10} {num_envs:>8} {mode:>6} {fps:9.0f}")


if __name__ == "__main__":
    main()
