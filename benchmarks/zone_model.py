"""Build DTM.pretrained("lunarlander-zone") from the shipped default model: count its zone prior, then fine-tune.

    python benchmarks/zone_model.py                    # about 5 + 15 minutes on 2 CPU cores
    python benchmarks/zone_model.py --finetune-batches 0 --label-gates-layout 0   # the prior alone (5 minutes)

The zone model is what ``python -m dtm_lite train --condition label`` trains: the default run's model with the
``"zone"`` label acting in two ways (``lunarlander_settings.LABEL_LAYOUT``, no label bits):

1. its layout prior is counted per zone, ``p(ℓ | zone)``: the label says which pixel the lander's centre is on;
2. its layout weights are gated by the label (``label_gates_layout``: one set of weights ``K`` per zone), so
   the label also says where within that pixel, and how, the lander is drawn. The pad's flags sit between
   pixel centres (``LunarLanderFrames.pad_columns``): a lander on the layout pixel next to a flag lies on
   either side of it, and only the label knows which.

Training all of it from scratch takes the default run's 2 hours here; this script starts from
``DTM.pretrained("lunarlander")`` (what ``make train`` produced) instead. It streams the default run's 20 epochs
of 100 batches with their zone labels and counts each batch's layouts per zone, checking that the counts summed
over the zones equal the default model's own prior exactly (the same frames, so the same layouts). Then it gives
each zone a copy of the default's layout weights (and of their Adam moments) and trains every parameter on
``--finetune-batches`` further labelled batches (new episodes: epochs 20, 21, ... of the same stream; the prior
counts them too), at the default run's final learning rate. ``--out`` (default
dtm_lite/pretrained/lunarlander-zone.npz).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from dtm_lite.conditioning.layout import LayoutInputs, count_layouts
from dtm_lite.core.state import DTMState
from dtm_lite.data.lunarlander_settings import LABEL_LAYOUT, N_ZONES, default_settings
from dtm_lite.interface.cli import stream_factory
from dtm_lite.model import DTM


def per_class_weights(state: DTMState, n_classes: int) -> DTMState:
    """``state`` with its layout weights ``K (T, 1, n_bits, n_feat)``, and their Adam moments, copied for each of
    ``n_classes`` classes: ``(T, n_classes, n_bits, n_feat)``. Leaves without a ``K`` (or other parameters) as
    they are."""

    def tile(tree: dict) -> dict:
        return {**tree, "K": jnp.repeat(tree["K"], n_classes, axis=1)}

    adam, *rest = state.opt_state
    opt = (adam._replace(mu=tile(adam.mu), nu=tile(adam.nu)), *rest)
    return state._replace(params=tile(state.params), opt_state=opt)


def count_prior(zone: DTM, settings: dict, want: np.ndarray) -> jax.Array:
    """The zone prior ``(N_ZONES, H*W + 1)`` counted over the default run's batches, checked against ``want``."""
    plug = next(c for c in zone.spec.conditioners if isinstance(c, LayoutInputs))
    counts = zone.state.plugin_state["layout_counts"]
    factory = stream_factory(zone, settings)
    epochs, per_epoch = settings["epochs"], settings["batches_per_epoch"]
    with tqdm(total=epochs * per_epoch, desc="counting the zone prior", unit="batch") as bar:
        for epoch in range(epochs):
            for i, (bits, labels) in enumerate(factory(epoch)):
                if i == per_epoch:
                    break
                counts = count_layouts(counts, jnp.asarray(plug.ids_of(bits)), jnp.asarray(labels))
                bar.update()
    total = np.asarray(counts).sum(0)
    if not np.array_equal(total, want):
        raise SystemExit(
            f"the counted layouts ({int(total.sum())} frames) differ from the default model's prior ({int(want.sum())}"
            " frames): the stream is not the one DTM.pretrained('lunarlander') was trained on; train the zone model "
            "with `python -m dtm_lite train --condition label` instead"
        )
    return counts


def finetune(zone: DTM, settings: dict, n_batches: int) -> None:
    """``n_batches`` labelled training batches from epochs ``settings["epochs"]``, ... of the stream."""
    factory, per_epoch = stream_factory(zone, settings), settings["batches_per_epoch"]
    epoch, done = settings["epochs"], 0
    with tqdm(total=n_batches, desc="fine-tuning on zone labels", unit="batch") as bar:
        while done < n_batches:
            for i, (bits, labels) in enumerate(factory(epoch)):
                if i == per_epoch or done == n_batches:
                    break
                out = zone.train_step(bits, labels)
                done += 1
                bar.update()
                bar.set_postfix(gap=f"{out['gap']:.4f}")
            epoch += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("dtm_lite/pretrained/lunarlander-zone.npz"))
    ap.add_argument("--finetune-batches", type=int, default=600, help="labelled batches of fine-tuning (0: none)")
    ap.add_argument("--label-gates-layout", type=int, choices=(0, 1), default=1,
                    help="1: one set of layout weights per zone (the shipped model); 0: the prior alone")  # fmt: skip
    args = ap.parse_args()
    t0 = time.perf_counter()
    default = DTM.pretrained("lunarlander")
    fields = {**LABEL_LAYOUT, "label_gates_layout": bool(args.label_gates_layout)}
    settings = {**default_settings(), "n_classes": N_ZONES, **fields}
    zone = DTM(default.config.replace(n_classes=N_ZONES, **fields))
    counts = count_prior(zone, settings, np.asarray(default.state.plugin_state["layout_counts"]))
    state = default.state._replace(plugin_state={"layout_counts": counts})
    zone.state = per_class_weights(state, N_ZONES) if args.label_gates_layout else state
    if args.finetune_batches:
        finetune(zone, settings, args.finetune_batches)
    out = zone.save_weights(args.out)
    per_class = np.asarray(zone.state.plugin_state["layout_counts"]).sum(1).tolist()
    print(f"prior: {int(np.sum(per_class))} frames, per zone {per_class}; {args.finetune_batches} fine-tuning "
          f"batches; wrote {out} in {time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
