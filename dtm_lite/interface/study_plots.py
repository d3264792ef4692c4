"""Figures of the DTM-vs-MEBM study (:mod:`dtm_lite.evaluation.dtm_vs_mebm`): learning curves, the
adaptive correlation penalty at work, and final samples."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dtm_lite.core.sampler import n_sweeps
from dtm_lite.evaluation.dtm_vs_mebm import variant_name
from dtm_lite.training.penalty import TAU

_PANELS = (
    ("fd_pca", "FD-PCA (lower is better)"),
    ("clean", "clean samples (within a few pixels of a glyph)"),
    ("digit_tv", "digit histogram vs data (TV, lower is better)"),
    ("autocorr_0", "autocorrelation of the cleanest step"),
)


def _curves(result: dict[str, Any]) -> dict[tuple[int, bool], dict[str, np.ndarray]]:
    """Per variant: ``batches``, ``train_seconds`` (means over seeds) and each metric ``(seeds, points)``."""
    out: dict[tuple[int, bool], dict[str, Any]] = {}
    per_batch = training_sweeps_per_batch(result["settings"])
    for v in result["variants"]:
        c = v["curve"]
        keys = ("batches", "sweeps", "train_seconds", *dict(_PANELS))
        d = out.setdefault((v["steps"], v["acp"]), {k: [] for k in keys})
        d["batches"].append([p["batches"] for p in c])
        d["sweeps"].append([p["batches"] * v["steps"] * per_batch for p in c])
        d["train_seconds"].append([p["train_seconds"] for p in c])
        for key, _ in _PANELS:
            d[key].append([p["autocorr"][0] if key == "autocorr_0" else p[key] for p in c])
    return {k: {m: np.asarray(a, float) for m, a in d.items()} for k, d in out.items()}


def training_sweeps_per_batch(settings: dict[str, Any]) -> int:
    """Gibbs sweeps one diffusion step runs per training batch and chain: two phases (data-clamped and free)
    of :func:`~dtm_lite.core.sampler.n_sweeps` sweeps each; a T-step batch costs T times as many."""
    return 2 * n_sweeps(settings["warmup_sweeps"], settings["n_samples"], settings["sweeps_per_sample"])


def _style(steps: int, acp: bool) -> dict[str, Any]:
    colors = {1: "black", 2: "tab:blue", 4: "tab:orange", 8: "tab:green"}
    return {"color": colors.get(steps, "tab:purple"), "ls": "-" if acp else "--", "label": variant_name(steps, acp)}


def plot_curves(result: dict[str, Any], x: str = "batches") -> Figure:
    """Each metric against ``x``: ``"batches"``, or for the equal-compute view ``"sweeps"`` (Gibbs sweeps per chain
    spent training, :func:`training_sweeps_per_batch`: the sampler's work, which a DTM chip's time and energy
    follow) or ``"train_seconds"`` (this machine's clock); the mean over seeds with a band of ± one standard
    error; solid lines with the ACP, dashed without."""
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, len(_PANELS))
    for (steps, acp), d in sorted(_curves(result).items()):
        xs = d[x].mean(0)
        for ax, (key, _) in zip(axes, _PANELS, strict=True):
            y = d[key]
            m = np.nanmean(y, 0)
            se = np.nanstd(y, 0, ddof=1) / np.sqrt(len(y)) if len(y) > 1 else np.zeros_like(m)
            ax.plot(xs, m, **_style(steps, acp))
            ax.fill_between(xs, m - se, m + se, color=_style(steps, acp)["color"], alpha=0.12, lw=0)
    for ax, (_, title) in zip(axes, _PANELS, strict=True):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(
            {"batches": "batches trained", "sweeps": "Gibbs sweeps per chain spent training"}.get(
                x, "training seconds (2 CPU cores)"
            )
        )
    axes[0].set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(8, len(labels)), frameon=False)
    return fig


def plot_penalty(result: dict[str, Any], seed: int | None = None) -> Figure:
    """The ACP at work: each step's penalty (top) and autocorrelation (bottom) against batches, for the
    variants with the ACP, one seed (default: the first)."""
    runs = [v for v in result["variants"] if v["acp"] and (seed is None or v["seed"] == seed)]
    seed = runs[0]["seed"] if runs and seed is None else seed
    runs = [v for v in runs if v["seed"] == seed]
    fig = Figure(figsize=(4 * max(1, len(runs)), 5.5), layout="constrained")
    axes = fig.subplots(2, max(1, len(runs)), squeeze=False, sharex=True)
    for j, v in enumerate(runs):
        b = [p["batches"] for p in v["curve"]]
        for k in range(v["steps"]):
            axes[0, j].plot(b, [p["penalty"][k] for p in v["curve"]], label=f"step {k}")
            axes[1, j].plot(b, [p["autocorr"][k] for p in v["curve"]], label=f"step {k}")
        axes[0, j].set_title(f"{variant_name(v['steps'], True)}, seed {seed}", fontsize="medium")
        axes[0, j].set_yscale("symlog", linthresh=1e-3)
        axes[1, j].axhline(TAU, color="grey", lw=0.8, ls=":")  # the study trains with the default threshold
        axes[1, j].set_xlabel("batches trained")
        axes[1, j].legend(fontsize="x-small", ncols=2)
    axes[0, 0].set_ylabel("correlation penalty λ_cp")
    axes[1, 0].set_ylabel("autocorrelation (step 0: cleanest)")
    return fig


def sample_images(result: dict[str, Any], steps: int, acp: bool, seed: int) -> np.ndarray:
    """The final samples a variant stored, ``(n, side, side, 1)`` in {0, 1}."""
    for v in result["variants"]:
        if (v["steps"], v["acp"], v["seed"]) == (steps, acp, seed):
            bits = np.array([[c == "1" for c in s] for s in v["samples"]], np.float32)
            side = int(round(np.sqrt(bits.shape[1])))
            return bits.reshape(len(bits), side, side, 1)
    raise ValueError(f"the study has no variant T = {steps}, ACP {acp}, seed {seed}")
