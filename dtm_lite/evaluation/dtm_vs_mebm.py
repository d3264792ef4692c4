"""DTM against a single EBM (MEBM, T = 1) where mixing matters: learning curves on the glyph set.

The claim under test (Jelinčič et al., arXiv 2510.23972): a single energy-based model that learns a
multimodal distribution builds energy wells its Gibbs chains cannot cross, so its training samples and its
generated samples degrade, while a chain of T denoising steps, each a gentler conditional EBM, keeps mixing;
the adaptive correlation penalty (ACP) keeps each step's couplings from freezing its chains.

:func:`run_variant` trains one model (T diffusion steps, ACP on or off, one seed) on a
:class:`~dtm_lite.data.glyphs.Glyphs` stream with the package's own training loop, measuring every
``batches_per_point`` batches (one epoch of the loop, so the ACP updates there too):

- FD-PCA of generated images against held-out ones (:mod:`dtm_lite.evaluation.metrics`), lower is better;
- the glyph metrics of :func:`~dtm_lite.data.glyphs.mode_coverage`: ``clean`` (samples within a few
  pixels of a true mode), ``digit_tv`` (distance of their digit histogram from uniform) and ``digits_seen``;
- each step's autocorrelation (chains that share one noised input, normalised within the group) and its
  correlation penalty.

:func:`run_study` runs every (T, ACP, seed), :func:`summary` gives each variant's final mean and standard
error over seeds, and :func:`verdict` states the comparison in one sentence. ``benchmarks/dtm_vs_mebm.py``
is the command line; notebook 05 draws the curves.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dtm_lite.data.glyphs import Glyphs, mode_coverage
from dtm_lite.model import DTM, DTMConfig
from dtm_lite.training.loop import EvalSettings

METRICS = ("fd_pca", "clean", "digit_tv", "digits_seen")


@dataclass(frozen=True)
class StudySettings:
    """Sizes of the study; :meth:`quick` is the CI size (same code path)."""

    glyphs: Glyphs = field(default_factory=Glyphs)
    preset: str = "20_8"
    steps: tuple[int, ...] = (1, 2, 4, 8)
    penalty: tuple[bool, ...] = (False, True)
    seeds: tuple[int, ...] = (0, 1, 2)
    batches: int = 1000
    batches_per_point: int = 50
    batch_size: int = 50
    warmup_sweeps: int = 100
    n_samples: int = 10
    sweeps_per_sample: int = 5
    generation_sweeps: int = 200
    n_images: int = 200
    holdout: int = 400
    autocorr_sweeps: int = 300
    autocorr_window: tuple[int, int] = (100, 150)

    @classmethod
    def quick(cls) -> StudySettings:
        return cls(steps=(1, 2), seeds=(0,), batches=20, batches_per_point=10, n_images=64, holdout=64,
                   warmup_sweeps=20, n_samples=3, generation_sweeps=40, autocorr_sweeps=60,
                   autocorr_window=(20, 30))  # fmt: skip

    def config(self, steps: int, acp: bool, seed: int) -> DTMConfig:
        """The model of variant (``steps``, ``acp``, ``seed``): binary glyph frames on ``preset``; the
        learning rate decays over the whole run. Each training phase runs ``warmup_sweeps + (n_samples - 1) *
        sweeps_per_sample`` sweeps, and the mixing window sits at the same scale: a step whose chains do not
        forget their start within it cannot give the training an unbiased negative phase."""
        return DTMConfig(
            image_shape=self.glyphs.image_shape, preset=self.preset, num_diffusion_steps=steps,
            batch_size=self.batch_size, lr_decay_batches=self.batches, adaptive_penalty=acp, seed=seed,
            warmup_sweeps=self.warmup_sweeps, n_samples=self.n_samples, sweeps_per_sample=self.sweeps_per_sample,
            generation_sweeps=self.generation_sweeps,
        )  # fmt: skip

    def eval_settings(self) -> EvalSettings:
        return EvalSettings(
            n_images=self.n_images, n_components=8, autocorr_sweeps=self.autocorr_sweeps,
            autocorr_window=self.autocorr_window, gif_images=1,
        )  # fmt: skip


def run_variant(settings: StudySettings, steps: int, acp: bool, seed: int, progress: bool = False) -> dict[str, Any]:
    """Train one variant; its learning curve, one row every ``batches_per_point`` batches.

    Each row: ``batches``, ``train_seconds`` (training alone, measurements excluded), the :data:`METRICS`,
    ``autocorr`` and ``penalty`` (one value a step, step 0 the cleanest). The data stream, hold-out and
    generation keys are fixed by ``seed``."""
    g, s = settings.glyphs, settings
    dtm = DTM(s.config(steps, acp, seed))
    holdout = g.sample(s.holdout, np.random.default_rng([seed, 1]))[0]
    rows: list[dict[str, Any]] = []
    clock = {"train": 0.0}

    def on_epoch_end(epoch: int, row: dict[str, Any]) -> None:
        clock["train"] += row["seconds"] - clock.pop("eval", 0.0)
        t_eval = time.perf_counter()
        images = dtm.generate(s.n_images, key=10_000 * seed + epoch + 1)
        out = {"batches": row["batches"], "train_seconds": clock["train"], "fd_pca": row.get("fd_pca")}
        out.update(mode_coverage(g, images))
        out["autocorr"] = [row.get(f"autocorr_{k}") for k in range(steps)]
        out["penalty"] = [row[f"corr_penalty_{k}"] for k in range(steps)]
        rows.append(out)
        clock["eval"] = time.perf_counter() - t_eval

    dtm.train_from_iterator(
        s.batches // s.batches_per_point, lambda: g.batches(s.batch_size, seed), s.batches_per_point,
        evaluate_every=1, holdout=holdout, eval_settings=s.eval_settings(), progress=progress,
        on_epoch_end=on_epoch_end,
    )  # fmt: skip
    images = dtm.generate(24, key=10_000 * seed)
    samples = ["".join("1" if v > 0.5 else "0" for v in im.ravel()) for im in images]
    return {"steps": steps, "acp": acp, "seed": seed, "curve": rows, "samples": samples}


def run_study(
    settings: StudySettings, out: str | Path | None = None, on_variant: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Every (T, ACP, seed) of ``settings`` (the MEBM, T = 1, once per seed: its ACP variant too); written
    to ``out`` as JSON after each variant, so that a long study can be watched."""
    result: dict[str, Any] = {"settings": _jsonable(asdict(settings)), "variants": [], "seconds": 0.0}
    t0 = time.perf_counter()
    for steps in settings.steps:
        for acp in settings.penalty:
            for seed in settings.seeds:
                v = run_variant(settings, steps, acp, seed)
                result["variants"].append(v)
                result["seconds"] = time.perf_counter() - t0
                if on_variant is not None:
                    on_variant(v)
                if out is not None:
                    Path(out).write_text(json.dumps(result, indent=1))
    return result


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    return x


def _mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], float)
    if len(a) == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan


def variant_name(steps: int, acp: bool) -> str:
    return ("MEBM (T = 1)" if steps == 1 else f"DTM T = {steps}") + (" + ACP" if acp else "")


def summary(result: dict[str, Any], last: int = 3) -> list[dict[str, Any]]:
    """Per variant: mean and standard error over seeds of each metric (averaged over each run's ``last``
    points, to smooth the curve's noise) and of the cleanest step's autocorrelation."""
    groups: dict[tuple[int, bool], list[dict[str, Any]]] = {}
    for v in result["variants"]:
        groups.setdefault((v["steps"], v["acp"]), []).append(v)
    rows = []
    for (steps, acp), runs in sorted(groups.items()):
        row: dict[str, Any] = {"variant": variant_name(steps, acp), "steps": steps, "acp": acp,
                               "seeds": [r["seed"] for r in runs]}  # fmt: skip
        for m in METRICS:
            row[m] = _mean_se([float(np.mean([p[m] for p in r["curve"][-last:]])) for r in runs])
        row["autocorr_0"] = _mean_se([float(np.mean([p["autocorr"][0] for p in r["curve"][-last:]])) for r in runs])
        row["train_seconds"] = _mean_se([r["curve"][-1]["train_seconds"] for r in runs])
        rows.append(row)
    return rows


def verdict(result: dict[str, Any], metric: str = "fd_pca", lower_is_better: bool = True) -> str:
    """One sentence: does the best DTM beat the MEBM (without the ACP) on ``metric``, by how much, and with
    what noise (standard errors over seeds; a gap within two of them is no evidence either way)."""
    rows = summary(result)
    mebm = [r for r in rows if r["steps"] == 1 and not r["acp"]]
    dtms = [r for r in rows if r["steps"] > 1]
    if not mebm or not dtms:
        return "The study holds no MEBM or no DTM variant: nothing to compare."
    sign = 1.0 if lower_is_better else -1.0
    m, best = mebm[0], min(dtms, key=lambda r: sign * r[metric][0])
    (a, sa), (b, sb) = m[metric], best[metric]
    gain, noise = sign * (a - b), math.hypot(0.0 if math.isnan(sa) else sa, 0.0 if math.isnan(sb) else sb)
    n = len(best["seeds"])
    what = f"{metric} ({'lower' if lower_is_better else 'higher'} is better)"
    if noise > 0 and gain > 2 * noise:
        return (f"Here the DTM wins on {what}: {best['variant']} reaches {b:.3g} ± {sb:.2g} against the MEBM's "
                f"{a:.3g} ± {sa:.2g} ({n} seeds), {gain / noise:.1f} standard errors apart.")  # fmt: skip
    if noise > 0 and gain < -2 * noise:
        return (f"Here the MEBM wins on {what}: {a:.3g} ± {sa:.2g} against the best DTM's ({best['variant']}) "
                f"{b:.3g} ± {sb:.2g} ({n} seeds), {-gain / noise:.1f} standard errors apart.")  # fmt: skip
    return (f"Here neither wins on {what} beyond the noise: the best DTM ({best['variant']}) reaches "
            f"{b:.3g} ± {sb:.2g} and the MEBM {a:.3g} ± {sa:.2g} ({n} seeds).")  # fmt: skip
