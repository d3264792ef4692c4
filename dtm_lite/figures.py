"""The README's figures, made from a training run: ``python -m dtm_lite figures --run runs/default``.

Writes to ``figures/``: ``samples.png`` (held-out frames next to generated ones), ``denoising.gif`` (the
Gibbs trajectory of generation), ``metrics.png`` (FD-PCA with its floor and baseline, autocorrelation,
penalty), ``capacity.png`` (the 80_12 grid: a node's neighbourhood and where 3,072 visible bits go) and
``resize.png`` (area averaging against bilinear on a LunarLander frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dtm import DTM
from .graph import GridGraph
from .lunarlander import LunarLanderFrames, crop_frame, resize_area, resize_bilinear
from .training import CHECKPOINT_NAME


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path


def samples_figure(dtm: DTM, held: np.ndarray, n: int = 24, seed: int = 0):
    from matplotlib.figure import Figure

    from .plots import image_grid

    samples = dtm.generate(n, key=seed)
    fig = Figure(figsize=(14, 6))
    for ax, imgs, title in zip(
        fig.subplots(1, 2), (dtm.decode(dtm.encode(held[:n])), samples), ("held-out frames (quantized)", "DTM samples"),
        strict=True,
    ):  # fmt: skip
        ax.imshow(image_grid(imgs, ncols=6), interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    return fig


def capacity_figure(preset: str = "80_12", visible: int | np.ndarray = 32 * 32 * 3):
    from matplotlib.figure import Figure

    from .plots import capacity_diagram, draw_neighbourhood

    g = GridGraph.from_preset(preset)
    fig = Figure(figsize=(11, 5.2))
    a, b = fig.subplots(1, 2)
    draw_neighbourhood(g, ax=a)
    capacity_diagram(g, visible, ax=b)
    return fig


def resize_figure(seed: int = 3, res: int = 32):
    import gymnasium as gym
    from matplotlib.figure import Figure

    env = gym.make("LunarLander-v3", render_mode="rgb_array")
    env.reset(seed=seed)
    for _ in range(40):
        env.step(0)
    frame = crop_frame(env.render()[None], LunarLanderFrames().crop)
    env.close()
    fig = Figure(figsize=(10, 3.6))
    for ax, img, title in zip(
        fig.subplots(1, 3),
        (frame[0], resize_area(frame, (res, res))[0], resize_bilinear(frame, (res, res))[0]),
        ("render (cropped)", f"area average {res}x{res}", f"bilinear {res}x{res}"),
        strict=True,
    ):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    return fig


def make_figures(run_dir: str | Path, out_dir: str | Path = "figures", seed: int = 0) -> list[Path]:
    """All README figures from a run folder made by ``python -m dtm_lite train``."""
    from .plots import plot_metrics, save_trajectory_gif

    run_dir, out = Path(run_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtm = DTM.load(run_dir / CHECKPOINT_NAME)
    res = dtm.config.image_shape[0]
    held = np.concatenate([e.frames for e in LunarLanderFrames(resolution=res, frames_per_episode=8, episodes=12,
                                                               seed=10**9 + 12345, frame_stride=8)])  # fmt: skip
    sweeps = dtm.config.generation_sweeps
    _, traj = dtm.generate(12, key=seed, return_trajectory=True, record_every=max(1, sweeps // 40))
    paths = [
        _save(samples_figure(dtm, held, seed=seed), out / "samples.png"),
        save_trajectory_gif(traj, out / "denoising.gif", fps=10, scale=3, ncols=6),
        _save(capacity_figure(dtm.config.preset, dtm.visible), out / "capacity.png"),
        _save(resize_figure(res=res), out / "resize.png"),
    ]
    if (run_dir / "metrics.csv").exists():
        paths.append(_save(plot_metrics(run_dir / "metrics.csv"), out / "metrics.png"))
    return paths
