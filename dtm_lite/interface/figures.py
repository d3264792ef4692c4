"""The README's figures: ``python -m dtm_lite figures --run runs/default --out figures [--model M]``.

The model shown is ``DTM.pretrained("lunarlander")`` (the shipped weights of the default ``make train``)
unless ``model`` names another: a pretrained name, a weights file (``python -m dtm_lite export``) or a
training checkpoint (``runs/<run>/latest.npz``). The run folder supplies ``metrics.csv`` for
``metrics.png`` when it has one. Every figure names its model in its title.

Writes to ``figures/``: ``samples.png`` (held-out frames next to generated ones, with the lander
statistics of both, see :func:`dtm_lite.evaluation.metrics.compare_objects`), ``denoising.gif`` (the Gibbs
trajectory of generation), ``metrics.png`` (FD-PCA with its floor and baseline, autocorrelation,
penalty, object metric), ``denoising_chain.png`` (a model with T > 1: the state after each diffusion
step, noisiest first), ``capacity.png`` (the model's grid: a node's neighbourhood and where its
visible bits go) and ``resize.png`` (area averaging against bilinear on a LunarLander frame).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import numpy as np

from dtm_lite.core.graph import GridGraph
from dtm_lite.data.lunarlander import LunarLanderFrames, crop_frame, holdout_frames, resize_area, resize_bilinear
from dtm_lite.model import DTM
from dtm_lite.training.loop import CHECKPOINT_NAME

DEFAULT_MODEL = "lunarlander"


def load_model(model: str | os.PathLike) -> tuple[DTM, str]:
    """``(dtm, how it was loaded)`` for a pretrained name (``DTM.pretrained``), a weights file
    (``DTM.save_weights``) or a training checkpoint (``DTM.load``)."""
    from dtm_lite.model import pretrained_names
    from dtm_lite.training.checkpoint import WEIGHTS_FORMAT, read_archive

    if isinstance(model, str) and model in pretrained_names():
        return DTM.pretrained(model), f"DTM.pretrained({model!r})"
    path = Path(model)
    if not path.is_file():
        names = ", ".join(pretrained_names()) or "none shipped"
        raise ValueError(f"model {str(model)!r} is neither a pretrained name ({names}) nor a file")
    meta, _ = read_archive(path)  # a junk file gets the loaders' one clear error, not a raw zip error
    if meta.get("format") == WEIGHTS_FORMAT:
        return DTM.load_weights(path), f"weights {path}"
    return DTM.load(path), f"checkpoint {path}"


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path


def samples_figure(dtm: DTM, held: np.ndarray, n: int = 24, seed: int = 0, label: str | None = None):
    """Held-out frames (quantized by the model's encoding) next to ``n`` samples; the panel titles give the
    lander statistics (:func:`~dtm_lite.evaluation.metrics.compare_objects`) of all of ``held`` and of the samples."""
    from matplotlib.figure import Figure

    from dtm_lite.evaluation.metrics import compare_objects
    from dtm_lite.interface.plots import image_grid, model_label

    samples = dtm.generate(n, key=seed)
    data = dtm.decode(dtm.encode(held))
    obj = compare_objects(data, samples)
    fig = Figure(figsize=(14, 6.6), layout="constrained")
    panels = (
        (data[:n], f"held-out frames (quantized), lander over {len(data)} frames:\n"
                   f"one blob {obj['obj_one_rate_data']:.0%}, stray {obj['obj_stray_data']:.2f} px/frame"),
        (samples, f"DTM samples, lander over these {n}:\n"
                  f"one blob {obj['obj_one_rate']:.0%}, stray {obj['obj_stray']:.2f} px/frame"),
    )  # fmt: skip
    for ax, (imgs, title) in zip(fig.subplots(1, 2), panels, strict=True):
        ax.imshow(image_grid(imgs, ncols=6), interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(
        f"{label or model_label(dtm)}\nlander size / position distance to the data (1-Wasserstein, pixels): "
        f"{obj['obj_size_dist']:.2f} / {obj['obj_pos_dist']:.2f}"
    )
    return fig


def capacity_figure(preset: str = "80_12", visible: int | np.ndarray = 32 * 32 * 3, label: str | None = None):
    """A node's neighbourhood on ``preset`` and where the visible bits go (a count of colour-0 sites, or a
    model's ``dtm.visible``, which may use both colours); ``label`` becomes the suptitle."""
    from matplotlib.figure import Figure

    from dtm_lite.interface.plots import capacity_diagram, draw_neighbourhood

    g = GridGraph.from_preset(preset)
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    draw_neighbourhood(g, ax=a)
    capacity_diagram(g, visible, ax=b)
    if label:
        fig.suptitle(label)
    return fig


def resize_figure(seed: int = 3, res: int = 32, label: str | None = None):
    import gymnasium as gym
    from matplotlib.figure import Figure

    env = gym.make("LunarLander-v3", render_mode="rgb_array")
    env.reset(seed=seed)
    for _ in range(40):
        env.step(0)
    rendered = cast(np.ndarray, env.render())  # render_mode="rgb_array": one (400, 600, 3) array
    frame = crop_frame(rendered[None], LunarLanderFrames().crop)
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
    if label:
        fig.suptitle(label)
    return fig


def denoising_chain_figure(dtm: DTM, n: int = 6, seed: int = 0, label: str | None = None, sweeps: int | None = None):
    """A T > 1 model's denoising chain x_T -> x_0: one row per sample, one column per diffusion step in
    generation order (the state at the start, then each step's last sweep, step 0 last: the sample);
    ``sweeps`` per step (default ``config.generation_sweeps``)."""
    from matplotlib.figure import Figure

    T = dtm.num_steps
    if T < 2:
        raise ValueError(f"a denoising chain needs a model with T > 1 diffusion steps; this one has T = {T}")
    sweeps = sweeps or dtm.config.generation_sweeps
    _, traj = dtm.generate(n, key=seed, return_trajectory=True, record_every=sweeps, sweeps=sweeps)
    per_step = len(traj) // T  # records of each step: its start and its end
    states = [traj[0]] + [traj[(s + 1) * per_step - 1] for s in range(T)]
    titles = ["start (noise)"] + [f"after step k={T - 1 - s}" for s in range(T)]
    fig = Figure(figsize=(1.6 * len(states), 1.6 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, len(states), squeeze=False)
    for j, (state, title) in enumerate(zip(states, titles, strict=True)):
        axes[0, j].set_title(title, fontsize="small")
        for i in range(n):
            axes[i, j].imshow(state[i], interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    if label:
        fig.suptitle(label)
    return fig


def make_figures(
    run_dir: str | Path, out_dir: str | Path = "figures", seed: int = 0, model: str | os.PathLike | None = DEFAULT_MODEL
) -> list[Path]:
    """All README figures for ``model`` (a pretrained name, a weights file or a checkpoint; ``None``: the
    run's own ``latest.npz``), with ``metrics.png`` from ``run_dir/metrics.csv`` when it exists."""
    run_dir = Path(run_dir)
    dtm, source = load_model(run_dir / CHECKPOINT_NAME if model is None else model)
    return draw_figures(dtm, source, run_dir, out_dir, seed)


def draw_figures(dtm: DTM, source: str, run_dir: str | Path, out_dir: str | Path, seed: int = 0) -> list[Path]:
    """:func:`make_figures` of a loaded model; ``source`` says how it was loaded (:func:`load_model`)."""
    from dtm_lite.interface.plots import model_label, plot_metrics, save_trajectory_gif

    run_dir, out = Path(run_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = model_label(dtm, source)
    res = dtm.config.image_shape[0]
    held = holdout_frames(res, 64, seed=12345)  # the CLI's hold-out, its own seeds (from 10**9 + 12345)
    sweeps = dtm.config.generation_sweeps
    _, traj = dtm.generate(12, key=seed, return_trajectory=True, record_every=max(1, sweeps // 40))
    paths = [
        _save(samples_figure(dtm, held, seed=seed, label=label), out / "samples.png"),
        save_trajectory_gif(traj, out / "denoising.gif", fps=10, scale=3, ncols=6, caption=label),
        _save(capacity_figure(dtm.config.preset, dtm.visible, label=label), out / "capacity.png"),
        _save(resize_figure(res=res, label=f"{res}x{res} input frames of {label}"), out / "resize.png"),
    ]
    if dtm.num_steps > 1:
        paths.append(_save(denoising_chain_figure(dtm, seed=seed, label=label), out / "denoising_chain.png"))
    if (run_dir / "metrics.csv").exists():
        fig = plot_metrics(run_dir / "metrics.csv")
        fig.suptitle(f"the training run {run_dir} (its metrics.csv)")
        paths.append(_save(fig, out / "metrics.png"))
    return paths
