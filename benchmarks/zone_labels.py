"""A LunarLander label model measured: does the label put the lander where it says, and can the model read it?

    python benchmarks/zone_labels.py                          # DTM.pretrained("lunarlander-zone"), ~4 min
    python benchmarks/zone_labels.py --model runs/zone/latest.npz --n-per 64

For the ``"zone"`` label (0 left of the landing pad, 1 over it, 2 right of it; the pad's edges are
``LunarLanderFrames.pad_columns``), with the lander object metric (``dtm_lite.evaluation.metrics.LANDER``):

- **conditional samples**: ``generate(n, labels=k)`` for each zone; of the samples that show a lander, the
  fraction whose blob centre lies in zone k;
- **classification**: ``classify`` on held-out frames (other seeds), balanced accuracy over all frames, over
  the frames with a lander, and over those whose lander is more than 1 pixel from a zone border;
- **unconditional samples**: one-blob rate and stray lander pixels a frame, next to the default model's.

The ``"phase"`` label (0 flying, 1 touching down, 2 standing) gets the same classification measure. A model
whose label acts through its layout prior (``label_spots=0``) reads a class from the lander's place alone, so
the phase model here is the default model's picture model with its layout prior counted per phase over
``--phase-episodes`` whole episodes of the heuristic policy (the random one seldom touches down), and it is
scored on held-out heuristic episodes (``--holdout-episodes`` / 4 of them, every frame). Writes
OUT/zone_labels.json and OUT/zone_labels.png (8 samples a zone); OUT = --out (default figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from dtm_lite.conditioning.layout import LayoutInputs, count_layouts
from dtm_lite.data.lunarlander import LunarLanderFrames, holdout_stream
from dtm_lite.evaluation.label_measures import (
    balanced_accuracy,
    clear_of_borders,
    confusion,
    zone_report,
)
from dtm_lite.evaluation.metrics import LANDER, object_stats
from dtm_lite.interface.plots import image_rows
from dtm_lite.model import DTM

ZONES = ("left of pad", "over pad", "right of pad")
PHASES = ("flying", "touching down", "standing")


def load(name: str) -> DTM:
    path = Path(name)
    if path.suffix == ".npz" and path.exists():
        return DTM.load(path) if path.name == "latest.npz" else DTM.load_weights(path)
    return DTM.pretrained(name)


def labelled_frames(stream: LunarLanderFrames, kind: str) -> tuple[np.ndarray, np.ndarray]:
    eps = list(dataclasses.replace(stream, label=kind))
    return np.concatenate([e.frames for e in eps]) / 255.0, np.concatenate([e.labels for e in eps])


def classification(model: DTM, frames: np.ndarray, labels: np.ndarray, borders: tuple[float, ...] | None) -> dict:
    q = model.decode(model.encode(frames))  # as the model's code sees them
    pred = model.classify(frames)
    shown = object_stats(q, LANDER).n_blobs >= 1
    subsets = {"all": np.ones(len(frames), bool), "with a lander": shown}
    if borders is not None:
        subsets["lander clear of the borders"] = clear_of_borders(q, borders, LANDER)
    out = {}
    for name, keep in subsets.items():
        cm = confusion(labels[keep], pred[keep], model.config.n_classes)
        out[name] = {"frames": int(keep.sum()), "balanced_accuracy": balanced_accuracy(cm),
                     "accuracy": float(np.trace(cm) / max(cm.sum(), 1)), "confusion": cm.tolist()}  # fmt: skip
    return out


def phase_frames(res: int, episodes: int, seed: int) -> LunarLanderFrames:
    """Whole heuristic-policy episodes (up to 96 frames, every 4th step) with their phase labels: the heuristic
    lander touches down and stands, which the first steps that the training stream keeps never show."""
    return LunarLanderFrames(resolution=res, frames_per_episode=96, frame_stride=4, episodes=episodes, seed=seed,
                             policy="heuristic", label="phase")  # fmt: skip


def phase_model(zone: DTM, default: DTM, episodes: int) -> DTM:
    """The ``default`` model (``DTM.pretrained("lunarlander")``) with the zone model's labelled layout, its layout prior
    counted per phase over ``episodes`` heuristic-policy episodes (``classify`` reads the layout alone)."""
    plug = next(c for c in zone.spec.conditioners if isinstance(c, LayoutInputs))
    counts = jnp.zeros_like(zone.state.plugin_state["layout_counts"])
    for ep in phase_frames(zone.config.image_shape[0], episodes, seed=0):
        ids = plug.ids_of(zone.encode(ep.frames / 255.0))
        counts = count_layouts(counts, jnp.asarray(ids), jnp.asarray(ep.labels))
    model = DTM(zone.config.replace(label_gates_layout=False))
    model.state = default.state._replace(plugin_state={"layout_counts": counts})
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lunarlander-zone", help="pretrained name, weights file or checkpoint")
    ap.add_argument("--n-per", type=int, default=256, help="conditional samples a zone")
    ap.add_argument("--holdout-episodes", type=int, default=200, help="held-out episodes (4 frames each)")
    ap.add_argument("--phase-episodes", type=int, default=200, help="heuristic episodes counted for the phase prior")
    ap.add_argument("--out", type=Path, default=Path("figures"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = load(args.model)
    size = model.config.image_shape[0]
    borders = LunarLanderFrames(resolution=size).pad_columns
    res: dict = {"model": args.model, "pad_columns": list(borders)}

    n = args.n_per
    ids = np.repeat(np.arange(3), n)
    samples = model.generate(3 * n, key=1, labels=ids)
    res["conditional"] = [dataclasses.asdict(zone_report(samples[ids == k], k, borders, LANDER)) for k in range(3)]
    frames, labels = labelled_frames(holdout_stream(size, args.holdout_episodes), "zone")
    q = model.decode(model.encode(frames))
    res["data"] = [dataclasses.asdict(zone_report(q[labels == k], k, borders, LANDER)) for k in range(3)]
    for r, d in zip(res["conditional"], res["data"], strict=True):
        print(f"zone {r['zone']} ({ZONES[r['zone']]}): {r['n']} samples, a lander in {r['shown']:.2f}, "
              f"its centre in the zone in {r['in_zone']:.3f} of those; one blob {r['one_blob']:.2f} | held-out "
              f"frames of the zone ({d['n']}): {d['shown']:.2f}, {d['in_zone']:.3f}")  # fmt: skip
    fig = image_rows([(f"label {k}: {ZONES[k]}", samples[ids == k][:8]) for k in range(3)], ncols=8)
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "zone_labels.png", dpi=110)

    default = DTM.pretrained("lunarlander")
    for name, m in (("this model", model), ("default", default)):
        st = object_stats(m.generate(256, key=2), LANDER)
        res.setdefault("unconditional", {})[name] = {"one_blob": float((st.n_blobs == 1).mean()),
                                                     "stray": float(st.stray.mean())}  # fmt: skip
        print(f"unconditional, {name}: one blob {(st.n_blobs == 1).mean():.3f}, stray {st.stray.mean():.3f}/frame")

    res["classify_zone"] = classification(model, frames, labels, borders)
    for what, r in res["classify_zone"].items():
        print(f"classify zone, {what} ({r['frames']}): balanced accuracy {r['balanced_accuracy']:.3f}")

    if not model.config.label_spots:
        pm = phase_model(model, default, args.phase_episodes)
        eps = list(phase_frames(size, args.holdout_episodes // 4, seed=10**9))  # other seeds
        frames, labels = np.concatenate([e.frames for e in eps]) / 255.0, np.concatenate([e.labels for e in eps])
        res["classify_phase"] = classification(pm, frames, labels, None)
        res["phase_counts"] = np.asarray(pm.state.plugin_state["layout_counts"]).sum(1).tolist()
        for what, r in res["classify_phase"].items():
            print(
                f"classify phase, {what} ({r['frames']}): balanced accuracy {r['balanced_accuracy']:.3f}, "
                f"confusion {r['confusion']}"
            )
    res["seconds"] = round(time.perf_counter() - t0, 1)
    (args.out / "zone_labels.json").write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out / 'zone_labels.json'} and zone_labels.png in {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
