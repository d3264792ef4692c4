"""An action-conditioned LunarLander world model, p(frame_t+1 | frame_t, action_t), measured on held-out episodes.

    python benchmarks/world_model.py                  # about 2-3 minutes on 2 CPU cores
    python benchmarks/world_model.py --batches 1000 --radius 2 --beta 1.0 2.0

Trains ``lunarlander_settings.model_config(layout_color=None, n_actions=4)`` (conditioning inputs: the previous
frame's bits within ``--radius`` pixels and the action, see dtm_lite.conditioning.inputs) on (frame_t, action_t,
frame_t+1) transitions of LunarLander episodes (every 2nd step, the action held for both), then prints, on 40
held-out episodes (other seeds), with the lander object metric (dtm_lite.evaluation.metrics.LANDER):

- next frame: among held-out transitions where both the predicted and the true next frame show a lander, the
  fraction whose lander blob centre lies within 1.5 px of the true one;
- rollouts: the fraction of frames of 16-step dreamed rollouts (``dtm.rollout``, the real episode's actions)
  that keep exactly one lander, next to that of the real episodes.

With ``--layout 1`` (or 2: the smallest blob a layout marks) the world model also has a layout
(``layout_color`` the lander's, dtm_lite.conditioning.layout): each next frame is conditioned on the lander's next
centre too, drawn from the layout dynamics the model counts (how the lander moved after each previous move and
action, inside the frame or on its border), and a rollout keeps its own sequence of layouts.

Writes OUT/world_model_rollout.png (real episode above its dream, 4 episodes) and, with ``--gif``,
OUT/world_model_rollout.gif (real | dream side by side, frame by frame); OUT = --out (default figures).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dtm_lite.data.loader import TransitionLoader
from dtm_lite.data.lunarlander import LunarLanderFrames, transitions
from dtm_lite.data.lunarlander_settings import LANDER_COLOR, model_config
from dtm_lite.evaluation.metrics import LANDER, object_stats
from dtm_lite.model import DTM


def train_world_model(
    batches: int, radius: int, frames: int = 1, seed: int = 0, steps: int = 1, layout: int = 0
) -> DTM:
    """``layout``: 0 (none), or the layout's smallest blob in pixels (``layout_min_size``)."""
    cfg = model_config(
        layout_color=LANDER_COLOR if layout else None, layout_min_size=max(layout, 1), n_actions=4,
        cond_radius=radius,
        cond_frames=frames, num_diffusion_steps=steps,
        warmup_sweeps=40, n_samples=10, sweeps_per_sample=2, generation_sweeps=60, generation_beta=(1.0, 1.0),
        learning_rate=0.03, lr_decay_batches=batches, batch_size=50, seed=seed,
        quench_fraction=0.0,  # measured without the default's generation quench
    )  # fmt: skip
    dtm = DTM(cfg)
    episodes = LunarLanderFrames(
        resolution=32, frames_per_episode=48, episodes=400, seed=1000 + seed, frame_stride=2, repeat_actions=True
    )
    stream = transitions(episodes, frames)
    loader = TransitionLoader(stream, 50, n_actions=4, encoding=dtm.encoding, shuffle_buffer=1024, seed=seed)
    dtm.train_from_iterator(-(-batches // 100), lambda: loader, min(batches, 100), progress=False)
    return dtm


def held_out(frames: int, episodes: int = 40) -> list:
    hold = LunarLanderFrames(
        resolution=32, frames_per_episode=48, episodes=episodes, seed=10**9 + 7, frame_stride=2, repeat_actions=True
    )
    return list(transitions(hold, frames))


def next_frame_accuracy(dtm: DTM, trs: list, beta: tuple[float, float], n: int = 400) -> tuple[float, int]:
    F, A, N = (np.concatenate([getattr(t, k) for t in trs]) for k in ("frames", "actions", "next_frames"))
    idx = np.random.default_rng(0).choice(len(F), min(n, len(F)), replace=False)
    prev = dtm.encode(F[idx]).astype(np.uint8).reshape(len(idx), -1)  # (n, cond_frames * n_bits)
    pred = dtm.generate(len(idx), key=1, prev=prev, actions=A[idx], beta=beta)
    sp, st = object_stats(pred, LANDER), object_stats(dtm.decode(dtm.encode(N[idx])), LANDER)
    both = (sp.n_blobs >= 1) & (st.n_blobs >= 1)
    close = np.hypot(sp.row - st.row, sp.col - st.col)[both] <= 1.5
    return float(close.mean()), int(both.sum())


def rollouts(
    dtm: DTM, trs: list, beta: tuple[float, float], steps: int = 16, from_lander: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(dream, real): ``steps`` frames of held-out episodes, ``(steps, n, H, W, C)`` each; the dream starts
    from the episode's ``cond_frames`` frames before its start and takes the episode's actions. The start is
    the episode's beginning, or with ``from_lander`` its first frame that shows exactly one lander (a rollout
    then has a lander to keep); episodes without ``steps`` frames after the start are skipped."""
    starts, actions, real = [], [], []
    for t in trs:
        last = t.frames if t.frames.ndim == 4 else t.frames[:, -1]  # the frame at t of each transition
        ok = object_stats(last, LANDER).n_blobs == 1 if from_lander else np.ones(len(last), bool)
        s = int(np.argmax(ok)) if ok.any() else len(last)
        if s + steps <= len(last):
            starts.append(t.frames[s])
            actions.append(t.actions[s : s + steps])
            real.append(t.next_frames[s : s + steps])
    real_frames = np.stack(real, 1)
    dream = dtm.rollout(np.stack(starts), np.stack(actions), key=100, beta=beta)[1:]
    return dream, dtm.decode(dtm.encode(real_frames))


def one_lander_rate(frames: np.ndarray) -> float:
    return float(np.mean(object_stats(frames.reshape(-1, *frames.shape[2:]), LANDER).n_blobs == 1))


def draw_rollouts(real: np.ndarray, dream: np.ndarray, path: Path, episodes: int = 4, every: int = 2) -> Path:
    """The PNG of real episodes above their dreams: ``real``, ``dream`` (steps, n, H, W, C) in [0, 1]. One labelled
    row per episode and kind ("episode e: real", "episode e: dreamed"), every ``every``-th step, frames framed by
    1-px lines so that a reader sees where each ends (``dtm_lite.interface.plots.image_rows``). Returns the path."""
    from dtm_lite.interface.plots import image_rows

    steps = np.arange(every, len(real) + 1, every)  # rollout steps shown, 1-based
    rows = []
    for e in range(min(episodes, real.shape[1])):
        rows += [(f"episode {e + 1}: real", real[steps - 1, e]), (f"episode {e + 1}: dreamed", dream[steps - 1, e])]
    fig = image_rows(rows, ncols=len(steps))
    shown = ", ".join(map(str, steps[:2])) + f", ..., {steps[-1]}" if len(steps) > 2 else ", ".join(map(str, steps))
    fig.suptitle(f"rollout steps {shown}: each real episode above its dream (same first frame, same actions)")
    fig.savefig(path, dpi=120)
    return Path(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--radius", type=int, default=1)
    ap.add_argument("--frames", type=int, default=1, help="previous frames conditioned on (cond_frames)")
    ap.add_argument("--diffusion-steps", type=int, default=1, help="diffusion steps T of the world model")
    ap.add_argument("--beta", type=float, nargs=2, action="append", help="generation β start end (repeatable)")
    ap.add_argument(
        "--layout",
        type=int,
        default=0,
        metavar="MIN_SIZE",
        help="a world model with a layout (dtm_lite.conditioning.layout) of blobs >= MIN_SIZE pixels (0: none)",
    )
    ap.add_argument("--out", default="figures", help="folder of the rollout figures")
    ap.add_argument("--save", metavar="PATH", help="also save the trained world model (DTM.save) to PATH")
    ap.add_argument("--gif", action="store_true")
    args = ap.parse_args()
    betas = [tuple(b) for b in args.beta] if args.beta else [(1.0, 1.0)]
    t0 = time.time()
    dtm = train_world_model(args.batches, args.radius, args.frames, steps=args.diffusion_steps, layout=args.layout)
    took = time.time() - t0
    if args.save:
        dtm.save(args.save)
    kind = f"with a layout (blobs >= {args.layout} px)" if args.layout else "without a layout"
    print(f"trained {dtm.batches_trained} batches, radius {args.radius}, {args.frames} frame(s), {kind} ({took:.0f} s)")
    trs = held_out(args.frames)
    for beta in betas:
        acc, n_both = next_frame_accuracy(dtm, trs, beta)
        print(f"beta {beta}: next frame lander centre within 1.5 px {acc:.3f} (of {n_both} with both)")
        for from_lander in (False, True):
            dream, real = rollouts(dtm, trs, beta, from_lander=from_lander)
            print(
                f"  {dream.shape[1]} rollouts x {dream.shape[0]} steps from "
                f"{'the first frame showing one lander' if from_lander else 'the episode start'}: frames keeping "
                f"exactly one lander {one_lander_rate(dream):.3f} (real episodes {one_lander_rate(real):.3f})"
            )
    out = draw_rollouts(real, dream, Path(args.out) / "world_model_rollout.png")
    print(f"wrote {out}")
    if args.gif:
        pairs = [np.concatenate([real[k, 0], np.ones_like(real[k, 0][:, :1]), dream[k, 0]], axis=1)
                 for k in range(len(real))]  # fmt: skip
        ims = [Image.fromarray((np.clip(p, 0, 1) * 255).astype(np.uint8)) for p in pairs]
        ims = [im.resize((4 * im.width, 4 * im.height), Image.NEAREST) for im in ims]
        gif = Path(args.out) / "world_model_rollout.gif"
        ims[0].save(gif, save_all=True, append_images=ims[1:], duration=250, loop=0)
        print(f"wrote {gif}")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
