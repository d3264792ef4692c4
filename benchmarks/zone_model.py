"""Build DTM.pretrained("lunarlander-zone") from the shipped default model and the default run's own batches.

    python benchmarks/zone_model.py        # about 5 minutes on 2 CPU cores: streams 2,000 batches, trains nothing

The zone model is what ``python -m dtm_lite train --condition label`` trains: the default run's model with its
layout prior counted per zone (``lunarlander_settings.LABEL_LAYOUT``: no label bits). Its label enters training
only through those counts: the labelled stream yields the same frames in the same batches as the unlabelled
one, and without label bits the labels never reach the picture model's gradient
(``tests/test_cli_condition.py`` checks both on a quick run, parameters bit for bit). So the label run's
picture model is the default run's, and this script takes it from ``DTM.pretrained("lunarlander")`` (what
``make train`` produced) instead of training it again (2 hours here): it streams the run's 20 epochs of 100
batches with their zone labels, counts each batch's layouts per class, checks that the counts summed over
the classes equal the default model's own prior exactly (the same frames, so the same layouts), and writes the
weights file. ``--out`` (default dtm_lite/pretrained/lunarlander-zone.npz).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from dtm_lite.conditioning.layout import LayoutInputs, count_layouts
from dtm_lite.data.lunarlander_settings import LABEL_LAYOUT, N_ZONES, default_settings
from dtm_lite.interface.cli import stream_factory
from dtm_lite.model import DTM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("dtm_lite/pretrained/lunarlander-zone.npz"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    default = DTM.pretrained("lunarlander")
    settings = {**default_settings(), "n_classes": N_ZONES, **LABEL_LAYOUT}
    zone = DTM(default.config.replace(n_classes=N_ZONES, **LABEL_LAYOUT))
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
    total, want = np.asarray(counts).sum(0), np.asarray(default.state.plugin_state["layout_counts"])
    if not np.array_equal(total, want):
        raise SystemExit(
            f"the counted layouts ({int(total.sum())} frames) differ from the default model's prior ({int(want.sum())}"
            " frames): the stream is not the one DTM.pretrained('lunarlander') was trained on; train the zone model "
            "with `python -m dtm_lite train --condition label` instead"
        )
    zone.state = default.state._replace(plugin_state={"layout_counts": counts})
    out = zone.save_weights(args.out)
    per_class = np.asarray(counts).sum(1).tolist()
    print(f"{int(total.sum())} frames counted, per zone {per_class}; equal to the default's prior summed over zones; "
          f"wrote {out} in {time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
