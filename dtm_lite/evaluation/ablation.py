"""The paper's central claim, re-run on LunarLander: a DTM (T > 1 diffusion steps, adaptive correlation
penalty) against a plain EBM ("MEBM", T = 1), next to the other levers (encoding, placement, a layout,
generation β). ``benchmarks/ablation.py`` is its command line; notebook 05 runs it and reads its results.

Every variant is ``DTMConfig``'s defaults (the public LunarLander replication of Jelinčič et al., arXiv
2510.23972: 32x32 RGB frames, batch 50, 80_12, 300 warm-up sweeps then 30 samples 6 sweeps apart, 400
generation sweeps, learning rate 0.03 decayed over the run; :data:`BASE`) with a few DTMConfig fields changed:
:data:`VARIANTS`. The training frames (random-policy episodes, 32 frames each, every 2nd simulator step,
shuffled once) and the held-out frames (other seeds, from 10**9: 4 frames from each of 256 episodes, every
16th step) are rendered once (:func:`make_data`) and shared, so every variant trains on the same batches in
the same order and is scored on the same frames. Each trains with ``train_from_iterator`` (epochs of 50
batches: the adaptive penalty updates after each) and is evaluated once, at the end (:func:`run_variant`):

- the object metric, the lander: share of samples with exactly one blob of lander-coloured pixels, next to
  the data's share; stray lander pixels per frame; 1-Wasserstein distances of blob size and position;
- FD-PCA with its data floor and independent-pixel baseline (blind to a 3-pixel lander: see the README);
- the autocorrelation of each diffusion step's free chains (cleanest step first) and the final penalty;
- cost: training wall-clock minutes (compilation and the penalty's autocorrelation runs included) and the
  median seconds per training batch.

A variant with "from" reuses that variant's trained model and only changes how it generates
(generation_beta, generation_sweeps); its cost columns are its parent's. :func:`run_all` runs a list of
variants, prints a markdown table as they finish and writes DIR/ablation.json (rows, command, date, machine;
rewritten after every variant) and DIR/ablation_samples.png (8 samples per variant under held-out frames).
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dtm_lite.data.lunarlander import LunarLanderFrames, holdout_frames
from dtm_lite.data.lunarlander_settings import LANDER_COLOR, LUNARLANDER_COLORS
from dtm_lite.interface.plots import image_rows
from dtm_lite.model import DTM, DTMConfig
from dtm_lite.training.loop import EvalSettings, Holdout, evaluate_dtm, step_autocorrelation, train_from_iterator

# -----------------------------------------------------------------------------
# the variants: DTMConfig overrides on top of BASE (edit freely; names are what --only takes)

SHORT_CHAINS = {"warmup_sweeps": 100, "n_samples": 20, "sweeps_per_sample": 4}  # 176 sweeps a phase (BASE: 474)
T4 = {"num_diffusion_steps": 4, **SHORT_CHAINS}  # each step's chains only undo a little noise: shorter runs

PLANES = {"encoding": "palette", "placement": "planes"}  # the CLI's encoding (python -m dtm_lite train)
LAYOUT = {"layout_color": LANDER_COLOR, "cond_radius": 2}  # + PLANES: the CLI's model

VARIANTS: list[dict[str, Any]] = [
    {"name": "MEBM rgb (seed)", "overrides": {}},
    {"name": "MEBM palette", "overrides": {"encoding": "palette"}},
    {"name": "MEBM palette planes", "overrides": PLANES},
    {"name": "DTM T=4 palette planes + penalty", "overrides": {**PLANES, "adaptive_penalty": True, **T4}},
    # generation only: the trained "MEBM palette planes" model, sampled with another β ramp (BASE: 0.8 -> 1.2)
    {"name": "planes, gen beta 1-1", "from": "MEBM palette planes", "overrides": {"generation_beta": (1.0, 1.0)}},
    {"name": "planes, gen beta 0.8-1.1", "from": "MEBM palette planes", "overrides": {"generation_beta": (0.8, 1.1)}},
    # a layout model (dtm_lite.conditioning.layout): the lander's centre pixel sampled from its prior, the picture
    # conditioned on it (the CLI's default model)
    {"name": "MEBM palette planes + layout", "overrides": {**PLANES, **LAYOUT}},
    {
        "name": "DTM T=4 palette planes + layout + penalty",
        "overrides": {**PLANES, **LAYOUT, "adaptive_penalty": True, **T4},
    },
    {
        "name": "layout, gen beta 1-1",
        "from": "MEBM palette planes + layout",
        "overrides": {"generation_beta": (1.0, 1.0)},
    },
]

# + DTMConfig defaults; the palette is LunarLander's four colours (used by the palette variants only)
BASE: dict[str, Any] = {"image_shape": (32, 32, 3), "preset": "80_12", "batch_size": 50, "palette": LUNARLANDER_COLORS}
# --quick: 16x16 frames on side-50 grids (a variant's degree is kept), the CLI's short quick chains
QUICK_BASE: dict[str, Any] = {
    "image_shape": (16, 16, 3), "preset": "50_12",
    "warmup_sweeps": 60, "n_samples": 10, "sweeps_per_sample": 3, "generation_sweeps": 100,
}  # fmt: skip
SCHEDULE_FIELDS = ("warmup_sweeps", "n_samples", "sweeps_per_sample", "generation_sweeps")
GENERATION_FIELDS = ("generation_beta", "generation_sweeps")  # all a "from" variant may change
DATA_SEED = 0  # training episodes from seed 0 on; held-out episodes from 10**9 + DATA_SEED


def quick_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """A variant's overrides at --quick size: QUICK_BASE's chain lengths, and its preset's degree on side 50."""
    out = {k: v for k, v in overrides.items() if k not in SCHEDULE_FIELDS}
    if "preset" in out:
        out["preset"] = "50_" + str(out["preset"]).split("_")[1]
    return out


# -----------------------------------------------------------------------------
# data: rendered once, shared by every variant


@dataclass
class Data:
    train: np.ndarray  # (n, H, W, 3) uint8, shuffled; variant batches are consecutive slices of it
    holdout: np.ndarray  # (m, H, W, 3) uint8, episodes of other seeds
    info: dict[str, Any] = field(default_factory=dict)


def make_data(resolution: int, n_train: int, holdout_episodes: int = 256, seed: int = DATA_SEED) -> Data:
    """``n_train`` training frames (random policy, 32 frames an episode, every 2nd step) and 4 frames from
    each of ``holdout_episodes`` episodes of seeds from 10**9 + seed (every 16th step), as the CLI does."""
    t0 = time.perf_counter()
    chunks, n = [], 0
    for ep in LunarLanderFrames(resolution=resolution, frames_per_episode=32, frame_stride=2, seed=seed):
        chunks.append(ep.frames)
        n += len(ep.frames)
        if n >= n_train:
            break
    train = np.concatenate(chunks)[:n_train]
    train = train[np.random.default_rng(seed).permutation(len(train))]
    holdout = holdout_frames(resolution, holdout_episodes, seed=seed)  # the CLI's hold-out for this seed
    info = {
        "resolution": resolution, "train_frames": len(train), "train_episodes": len(chunks),
        "holdout_frames": len(holdout), "holdout_episodes": holdout_episodes, "seed": seed, "policy": "random",
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    return Data(train, holdout, info)


# -----------------------------------------------------------------------------
# one variant: train, then evaluate once


def run_variant(
    name: str,
    overrides: dict[str, Any],
    data: Data,
    settings: EvalSettings,
    batches: int,
    seed: int = 0,
    *,
    base: dict[str, Any] | None = None,
    epoch_batches: int = 50,
    parent: str | None = None,
    models: dict[str, tuple[DTM, dict[str, Any]]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``DTMConfig(**base, **overrides)`` on ``batches`` batches of ``data.train`` and evaluate it on
    ``data.holdout``; returns the result row (JSON-ready). ``models`` (name -> (model, row)), when given,
    receives the trained model; a variant with a ``parent`` takes that trained model from it, changes only
    its generation fields and is evaluated again, without training."""
    models = {} if models is None else models
    if parent is not None:
        return _regenerate(name, overrides, data, settings, parent, models)
    config = DTMConfig(**{**(BASE if base is None else base), "lr_decay_batches": batches, "seed": seed, **overrides})
    dtm = DTM(config)
    per_epoch = min(epoch_batches, batches)
    if batches % per_epoch:
        raise ValueError(f"batches ({batches}) must be a multiple of epoch_batches ({epoch_batches})")
    n_epochs = batches // per_epoch
    history, train_s, step_seconds = _train_timed(dtm, data, settings, n_epochs, per_epoch, progress)

    t0 = time.perf_counter()
    held = Holdout(dtm, data.holdout, settings)
    autocorr = [
        step_autocorrelation(dtm, held, k, settings, key=seed * 1000 + 17 * k + 1) for k in range(dtm.num_steps)
    ]
    metrics = evaluate_dtm(dtm, held, settings)
    row = {
        "name": name, "from": None, "overrides": overrides, "T": config.num_diffusion_steps,
        "encoding": config.encoding, "preset": config.preset, "n_visible": config.n_visible,
        "sweeps_per_phase": config.sweeps_per_phase, "generation_beta": config.generation_beta,
        "batches": dtm.batches_trained, "epochs": n_epochs, **metrics,
        "autocorr": autocorr, "corr_penalty": [float(c) for c in dtm.corr_penalty], "gap": history[-1].get("gap"),
        "train_minutes": train_s / 60,
        "seconds_per_batch": float(np.median(step_seconds[1:] or step_seconds)),  # the first one compiles
        "eval_minutes": (time.perf_counter() - t0) / 60,
        "history": [_compact(r) for r in history],
    }  # fmt: skip
    models[name] = (dtm, row)
    return _jsonable(row)


def _train_timed(
    dtm: DTM, data: Data, settings: EvalSettings, n_epochs: int, per_epoch: int, progress: bool
) -> tuple[list[dict[str, Any]], float, list[float]]:
    """Train ``dtm`` for ``n_epochs`` epochs of ``per_epoch`` consecutive batches of ``data.train`` (the same
    frames in the same order for every variant, wrapping if too few): ``(history, training seconds, seconds
    of each training step)``, the steps timed without the penalty's autocorrelation runs between epochs."""
    bs = dtm.config.batch_size

    def factory(epoch: int):
        for i in range(per_epoch):
            first = (epoch * per_epoch + i) * bs
            yield data.train[np.arange(first, first + bs) % len(data.train)]

    step_seconds: list[float] = []
    train_step = dtm.train_step

    def timed_step(bits):
        t = time.perf_counter()
        out = train_step(bits)
        step_seconds.append(time.perf_counter() - t)
        return out

    dtm.train_step = timed_step  # type: ignore[method-assign,assignment]
    t0 = time.perf_counter()
    try:
        history = train_from_iterator(
            dtm, n_epochs, factory, per_epoch, holdout=data.holdout, eval_settings=settings, prefetch=0,
            progress=progress,
        )  # fmt: skip
    finally:
        del dtm.train_step  # back to the method
    return history, time.perf_counter() - t0, step_seconds


def _regenerate(
    name: str, overrides: dict[str, Any], data: Data, settings: EvalSettings, parent: str, models: dict
) -> dict[str, Any]:
    if parent not in models:
        raise ValueError(f"variant {name!r} reuses {parent!r}, which has not been trained in this run")
    if set(overrides) - set(GENERATION_FIELDS):
        raise ValueError(f"variant {name!r}: a 'from' variant may only change {GENERATION_FIELDS}, got {overrides}")
    src, src_row = models[parent]
    dtm = copy.copy(src)  # same parameters; only the config that generate() reads differs
    dtm.config = src.config.replace(**overrides)
    t0 = time.perf_counter()
    metrics = evaluate_dtm(dtm, Holdout(dtm, data.holdout, settings), settings)
    row = {
        **{k: v for k, v in src_row.items() if k != "history"}, **metrics, "name": name, "from": parent,
        "overrides": overrides, "generation_beta": dtm.config.generation_beta,
        "eval_minutes": (time.perf_counter() - t0) / 60,
    }  # fmt: skip
    models[name] = (dtm, row)
    return _jsonable(row)


def _settings_dict(settings: EvalSettings) -> dict[str, Any]:
    d = dict(vars(settings))
    if d.get("object_class") is not None:
        d["object_class"] = d["object_class"].name
    return d


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    """An epoch row of train_from_iterator, cut to what the ablation keeps."""
    keep = ("epoch", "batches", "gap", "seconds")
    return {k: v for k, v in row.items() if k in keep or k.startswith(("autocorr_", "corr_penalty_"))}


def _jsonable(x: Any) -> Any:
    """Tuples -> lists, numpy -> Python, NaN/inf -> None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# -----------------------------------------------------------------------------
# reporting


def _num(v: Any, spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


HEADER = ["variant", "T", "one-blob rate (data)", "stray px/frame (data)", "size W1", "pos W1",
          "FD-PCA (floor, indep.)", "autocorr", "penalty", "s/batch", "train min"]  # fmt: skip


def table_header() -> str:
    return "| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER)


def table_line(r: dict[str, Any]) -> str:
    g = r.get
    cells = [
        r["name"],
        str(r["T"]),
        f"{_num(g('obj_one_rate'), '.3f')} ({_num(g('obj_one_rate_data'), '.2f')})",
        f"{_num(g('obj_stray'), '.2f')} ({_num(g('obj_stray_data'), '.2f')})",
        _num(g("obj_size_dist"), ".2f"),
        _num(g("obj_pos_dist"), ".1f"),
        f"{_num(g('fd_pca'), '.2f')} ({_num(g('fd_floor'), '.2f')}, {_num(g('fd_independent'), '.1f')})",
        " / ".join(_num(a, ".2f") for a in r["autocorr"]),
        " / ".join(_num(c, ".0e") for c in r["corr_penalty"]),
        _num(r["seconds_per_batch"], ".2f"),
        _num(r["train_minutes"], ".1f") + (" (reused)" if r.get("from") else ""),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table (the script prints it line by line as variants finish)."""
    return "\n".join([table_header(), *(table_line(r) for r in rows)])


def machine() -> dict[str, Any]:
    return {
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "platform": platform.platform(), "jax_backend": jax.default_backend(),
    }  # fmt: skip


def samples_figure(data: Data, models: dict[str, tuple[DTM, dict]], n: int = 8, key: int = 1):
    """``n`` samples of every model (same key) under ``n`` held-out frames; a matplotlib Figure."""
    pick = np.random.default_rng(0).choice(len(data.holdout), n, replace=False)
    rows = [("held-out frames", data.holdout[pick] / 255.0)]
    rows += [(name, dtm.generate(n, key=key)) for name, (dtm, _) in models.items()]
    return image_rows(rows, ncols=n)


def write_results(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """``out/ablation.json``: ``meta`` (command, date, machine, settings) plus the rows, written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ablation.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable({**meta, "rows": rows}), indent=1, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)
    return path


def select(names: list[str] | None, variants: list[dict[str, Any]] = VARIANTS) -> list[dict[str, Any]]:
    """The variants named (all when None), plus the parents of the "from" variants among them, in list order."""
    if names is None:
        return list(variants)
    known = {v["name"]: v for v in variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; the variants are:\n  " + "\n  ".join(known))
    wanted = set(names) | {known[n]["from"] for n in names if known[n].get("from")}
    return [v for v in variants if v["name"] in wanted]


def run_all(
    variants: list[dict[str, Any]],
    data: Data,
    settings: EvalSettings,
    batches: int,
    *,
    seed: int = 0,
    quick: bool = False,
    epoch_batches: int = 50,
    out: Path | None = None,
    command: str = "",
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, tuple[DTM, dict]]]:
    """Run ``variants`` in order, printing the table as they finish; with ``out``, write ablation.json after
    each and ablation_samples.png at the end. Returns the rows and the trained models (name -> (model, row))."""
    base = {**BASE, **(QUICK_BASE if quick else {})}
    meta = {
        "command": command, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "quick": quick, "batches": batches, "epoch_batches": min(epoch_batches, batches),
        "seed": seed, "base": base, "data": data.info, "eval_settings": _settings_dict(settings),
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    models: dict[str, tuple[DTM, dict]] = {}
    print(table_header(), flush=True)
    for v in variants:
        overrides = quick_overrides(v["overrides"]) if quick else dict(v["overrides"])
        row = run_variant(
            v["name"], overrides, data, settings, batches, seed, base=base, epoch_batches=epoch_batches,
            parent=v.get("from"), models=models, progress=progress,
        )  # fmt: skip
        rows.append(row)
        print(table_line(row), flush=True)
        if out is not None:
            write_results(out, rows, meta)
    if out is not None and models:
        samples_figure(data, models).savefig(out / "ablation_samples.png", dpi=100)
    return rows, models
