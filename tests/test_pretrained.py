"""The shipped model: DTM.pretrained("lunarlander") is the default `make train` run's parameters."""

import numpy as np
import pytest

from dtm_lite import DTM
from dtm_lite.data.lunarlander_settings import config_from_settings, default_settings
from dtm_lite.model import PRETRAINED_DIR, pretrained_names


def test_lunarlander_is_shipped_small_and_loads_without_training():
    assert "lunarlander" in pretrained_names()
    path = PRETRAINED_DIR / "lunarlander.npz"
    assert path.stat().st_size <= 2 * 1024 * 1024  # package data, at most 2 MB
    dtm = DTM.pretrained("lunarlander")
    assert dtm.state.step > 0 and float(np.abs(np.asarray(dtm.params["W"])).max()) > 0.1  # trained, not zeros


def test_pretrained_config_is_the_cli_default():
    dtm = DTM.pretrained("lunarlander")
    assert dtm.config == config_from_settings(default_settings())
    s = default_settings()
    assert dtm.state.step == s["epochs"] * s["batches_per_epoch"]


def test_pretrained_generates_frames_of_the_right_shape():
    dtm = DTM.pretrained("lunarlander")
    images = dtm.generate(3, key=0, sweeps=20)
    assert images.shape == (3, *dtm.config.image_shape) and images.dtype == np.float32
    palette = np.asarray(dtm.config.palette, np.float32)
    gap = np.abs(images.reshape(-1, 1, 3) - palette[None]).max(-1).min(-1)
    assert gap.max() < 1e-6  # a palette model draws palette colours only


def test_the_t4_model_ships_small_with_four_trained_steps_and_no_quench():
    assert "lunarlander-t4" in pretrained_names()
    assert (PRETRAINED_DIR / "lunarlander-t4.npz").stat().st_size <= 2 * 1024 * 1024
    dtm = DTM.pretrained("lunarlander-t4")
    assert dtm.num_steps == 4 and dtm.config.adaptive_penalty and dtm.config.quench_fraction == 0
    assert dtm.config.replace(num_diffusion_steps=1, adaptive_penalty=False, quench_fraction=0.05, warmup_sweeps=300,
                              n_samples=30, sweeps_per_sample=6, lr_decay_batches=2000) == DTM.pretrained(
        "lunarlander").config  # the default model but for T, the penalty, the chains and the quench  # fmt: skip
    W = np.abs(np.asarray(dtm.params["W"]))
    assert dtm.state.step == 800 and (W.reshape(4, -1).max(1) > 0.1).all()  # every step trained
    images, traj = dtm.generate(2, key=0, sweeps=10, return_trajectory=True, record_every=10)
    assert traj.shape == (4 * 2, 2, 32, 32, 3) and np.array_equal(traj[-1], images)


def test_unknown_pretrained_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="no pretrained model named 'mnist'; available: .*lunarlander"):
        DTM.pretrained("mnist")


def test_weights_round_trip_and_refuse_a_checkpoint(tmp_path):
    from dtm_lite import DTMConfig

    dtm = DTM(DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2))
    dtm.train_step(np.ones((4, 16), np.uint8))
    back = DTM.load_weights(dtm.save_weights(tmp_path / "w.npz"))
    assert back.config == dtm.config and back.state.step == 1
    for k in ("W", "b"):
        assert np.array_equal(np.asarray(back.params[k]), np.asarray(dtm.params[k]))
    dtm.save(tmp_path / "ckpt.npz")
    with pytest.raises(ValueError, match="not a dtm_lite weights file"):
        DTM.load_weights(tmp_path / "ckpt.npz")


def test_pretrained_frames_are_pinned():
    """The shipped model's frames for a given key, pinned by hash: a refactor of the sampler, the training step,
    generation or the conditioning interface must leave them bit-identical. The hashes held from before the
    package was split into core and extras until generation's initial spins and inputs moved from threefry
    to the sampler's counter hash (``core.sampler.uniform``: a deliberate change of the random numbers, the
    same distribution); the last one pins the default generation, quench included."""
    import hashlib

    dtm = DTM.pretrained("lunarlander")
    frames = dtm.generate(16, key=0, quench_fraction=0)
    assert hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest() == (
        "7b3fab38ff424127fff3db3df7493fa14e7db9aaf29e195a17bed8969896165b"
    )
    _, trajectory = dtm.generate(4, key=1, return_trajectory=True, quench_fraction=0)
    assert hashlib.sha256(np.ascontiguousarray(trajectory).tobytes()).hexdigest() == (
        "88ba481776881ae93b03bca529d281b620fc0c7a90295bdd246d8aec1a91d6fd"
    )
    assert dtm.config.quench_fraction == 0.05
    assert hashlib.sha256(np.ascontiguousarray(dtm.generate(16, key=0)).tobytes()).hexdigest() == (
        "5a4df1fb964afbe650f1a3b6be84afb5eb30a941cce9a5718d840523c66dba57"
    )


def test_the_zone_model_is_the_default_fine_tuned_with_its_prior_split_by_zone():
    """DTM.pretrained("lunarlander-zone") (benchmarks/zone_model.py): the default's config with the zone label
    (no label bits, one set of layout weights per zone), fine-tuned from the default: its clock continues the
    default's by the fine-tuning batches, whose frames its layout prior counts on top of the default's, split by
    zone; each zone's lander centres lie in it, and its label steers the lander drawn."""
    from dtm_lite.data.lunarlander import LunarLanderFrames
    from dtm_lite.data.lunarlander_settings import LABEL_LAYOUT
    from dtm_lite.evaluation.label_measures import zone_of, zone_report
    from dtm_lite.evaluation.metrics import LANDER

    default, zone = DTM.pretrained("lunarlander"), DTM.pretrained("lunarlander-zone")
    assert zone.config == default.config.replace(n_classes=3, **LABEL_LAYOUT) and zone.spec.n_extra_bits == 0
    assert zone.state.params["K"].shape == (1, 3) + default.state.params["K"].shape[2:]
    counts, before = np.asarray(zone.state.plugin_state["layout_counts"]), default.state.plugin_state["layout_counts"]
    added = counts.sum(0) - np.asarray(before)
    assert added.min() >= 0 and added.sum() > 0
    assert added.sum() == (int(zone.state.step) - int(default.state.step)) * default.config.batch_size
    pad = LunarLanderFrames(resolution=32).pad_columns
    left, right = pad
    j = np.arange(32 * 32) % 32  # layout pixel j spans columns [j, j + 1)
    overlaps = [j < left, (j + 1 > left) & (j <= right), j + 1 > right]
    for k in range(3):  # the share of zone k's prior on layout pixels that reach into zone k
        inside = counts[k, :-1][overlaps[k]].sum() / counts[k, :-1].sum()
        assert inside > 0.99, (k, inside)
    pos = zone.sample_layout(200, key=0, labels=2)
    assert (zone_of(pos[pos[:, 0] >= 0, 1] + 0.5, pad) == 2).mean() > 0.95
    labels = np.repeat(np.arange(3), 8)  # the label steers the drawn lander (benchmarks/zone_labels.py: 256 a zone)
    images = zone.generate(len(labels), key=1, labels=labels)
    for k in range(3):
        r = zone_report(images[labels == k], k, pad, LANDER)
        assert r.shown >= 0.5 and r.in_zone >= 0.8, (k, r)
