"""Peak RSS of streaming training after 2 and after 6 epochs: memory must stay flat (O(batch)).

    python benchmarks/memory.py            # the seed's LunarLander config (80_12, 32x32 RGB), 20 batches/epoch
    python benchmarks/memory.py --quick    # 16x16 frames on 50_12, for the test suite

Prints ``peak RSS after epoch 2 -> after epoch 6: A MB -> B MB``.
"""

from __future__ import annotations

import argparse
import resource

from dtm_lite import DTM, DTMConfig
from dtm_lite.data.loader import IteratorDataLoader
from dtm_lite.data.lunarlander import LunarLanderFrames


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batches", type=int, default=None, help="batches per epoch")
    args = ap.parse_args()
    if args.quick:
        res, cfg = 16, DTMConfig(image_shape=(16, 16, 3), preset="50_12", batch_size=20, warmup_sweeps=20,
                                 n_samples=4, sweeps_per_sample=2, generation_sweeps=20)  # fmt: skip
    else:
        res, cfg = 32, DTMConfig()
    batches = args.batches or (6 if args.quick else 20)
    dtm = DTM(cfg.replace(lr_decay_batches=6 * batches))

    def factory(epoch: int) -> IteratorDataLoader:
        frames = LunarLanderFrames(resolution=res, frames_per_episode=32, episodes=None, seed=1000 * epoch)
        return IteratorDataLoader(frames, cfg.batch_size, max_batches_per_epoch=batches, shuffle_buffer=256, seed=epoch)

    peaks = {}

    def record(epoch: int, row: dict) -> None:
        peaks[epoch + 1] = peak_rss_mb()
        print(f"epoch {epoch + 1}: peak RSS {peaks[epoch + 1]:.1f} MB", flush=True)

    dtm.train_from_iterator(6, factory, batches, progress=False, on_epoch_end=record)
    print(f"peak RSS after epoch 2 -> after epoch 6: {peaks[2]:.1f} MB -> {peaks[6]:.1f} MB "
          f"(+{peaks[6] - peaks[2]:.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
