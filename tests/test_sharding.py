"""Chains split over devices (dtm_lite.scale.sharding): bit-identical results for 1, 2 and 4 devices.

Virtual CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before JAX starts, so each
device count runs in its own subprocess (the worker below) and writes its arrays to an .npz.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.scale.sharding import ChainMesh, resolve_devices

WORKER = textwrap.dedent(
    """
    import os, sys, time
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from dtm_lite import DTM, DTMConfig
    from dtm_lite.data.lunarlander_settings import model_config

    n, out, ckpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    tiny = dict(image_shape=(4, 4, 1), preset="20_8", batch_size=8, warmup_sweeps=6, n_samples=3,
                sweeps_per_sample=2, generation_sweeps=6)
    plain = DTMConfig(num_diffusion_steps=2, **tiny)
    # labels and a world model with a layout at once (its layout dynamics counted too)
    cond = DTMConfig(n_classes=2, label_spots=1, n_actions=2, layout_color=(1.0,), **tiny)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 2, (8, 16)).astype(np.uint8) for _ in range(3)]
    labels = [rng.integers(0, 2, 8) for _ in range(3)]
    prev = [rng.integers(0, 2, (8, 16)).astype(np.uint8) for _ in range(3)]
    res = {}

    def leaves(dtm, tag):
        for i, leaf in enumerate(jax.tree.leaves(dtm.state)):
            leaf = jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
            res[f"{tag}/{i}"] = np.asarray(leaf)

    dtm = DTM(plain, devices=n)
    assert dtm.n_devices == n
    for i, b in enumerate(batches):
        dtm.train_step(b)
        if i == 1 and n == 4:
            dtm.save(ckpt)  # saved on 4 devices, resumed on 1 by the 1-device worker
    leaves(dtm, "plain")
    res["gen"] = dtm.generate(8, key=3)
    res["gen_odd"] = dtm.generate(5, key=4, return_trajectory=True, record_every=3)[1]
    res["free"] = dtm.free_run(1, batches[0][:4], 4, key=2)
    plain_model = dtm

    # the LunarLander model's own layout (palette bits on planes, 80_12), where a float difference of the two
    # phases' means once differed by 1e-7 between device counts: the update must still be exact
    real = DTM(model_config(batch_size=8), devices=n)
    real.train_step(rng.integers(0, 2, (8, real.encoding.n_bits)).astype(np.uint8))
    leaves(real, "real")

    if n == 2:  # (time) the conditioned model runs on 1 and 4 devices only
        np.savez(out, **res)
        sys.exit(0)
    dtm = DTM(cond, devices=n)
    for b, y, p in zip(batches, labels, prev):
        dtm.train_step(b, y, prev=p, actions=y)
    leaves(dtm, "cond")
    res["cond_gen"] = dtm.generate(4, key=1, labels=[0, 1, 1, 0], prev=prev[0][:4], actions=[1, 0, 1, 0])

    lay = DTM(DTMConfig(layout_color=(1.0,), **tiny), devices=n)  # a layout model: its prior counts too
    for b in batches:
        lay.train_step(b)
    leaves(lay, "layout")
    res["layout_gen"] = lay.generate(8, key=5)

    if n == 1:  # resume the 4-device checkpoint here, on one device (written atomically by the other worker)
        deadline = time.time() + 240
        while not os.path.exists(ckpt) and time.time() < deadline:
            time.sleep(0.5)
        resumed = DTM(plain)
        resumed.train_fn = plain_model.train_fn  # the same function, compiled above
        resumed.restore(ckpt)
        resumed.train_step(batches[2])
        leaves(resumed, "resumed")
    if n == 4:
        try:
            DTM(plain.replace(batch_size=6), devices=4)
        except ValueError as err:
            res["error"] = np.array(str(err))
    np.savez(out, **res)
    """
)


def _run(n: int, tmp: Path) -> dict[str, np.ndarray]:
    script = tmp / f"worker{n}.py"
    script.write_text(WORKER)
    out = tmp / f"out{n}.npz"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(script), str(n), str(out), str(tmp / "ckpt.npz")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    # three processes at once (their compiles are mostly single-threaded); the 1-device worker waits for the
    # checkpoint that the 4-device one writes
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        four, two, one = pool.map(lambda n: _run(n, tmp), (4, 2, 1))
    return {4: four, 2: two, 1: one}


def test_training_is_bit_identical_on_1_2_and_4_devices(runs):
    keys = [k for k in runs[1] if k.startswith(("plain/", "cond/", "real/"))]
    assert len(keys) > 10
    for n in (2, 4):
        differ = [k for k in keys if k in runs[n] or n == 4 if not np.array_equal(runs[1][k], runs[n].get(k))]
        assert not differ, (n, differ)


def test_generation_is_bit_identical_on_1_and_4_devices(runs):
    for k in ("gen", "gen_odd", "free", "cond_gen"):
        assert np.array_equal(runs[1][k], runs[4][k]), k
        assert k == "cond_gen" or np.array_equal(runs[1][k], runs[2][k]), k


def test_layout_model_is_bit_identical_on_1_and_4_devices(runs):
    keys = [k for k in runs[1] if k.startswith("layout/")]
    assert len(keys) >= 5  # params, optimiser state, step, keys, penalty and the prior's counts
    for k in [*keys, "layout_gen"]:
        assert np.array_equal(runs[1][k], runs[4][k]), k


def test_checkpoint_from_4_devices_resumes_on_1_exactly(runs):
    resumed = sorted(k for k in runs[1] if k.startswith("resumed/"))
    assert resumed
    for k in resumed:
        assert np.array_equal(runs[1][k], runs[1]["plain/" + k.split("/", 1)[1]]), k


def test_batch_not_divisible_by_devices_is_a_clear_error(runs):
    msg = str(runs[4]["error"])
    assert "batch_size 6" in msg and "4 devices" in msg and "batch_size=4 or 8" in msg


def test_devices_argument_is_checked():
    assert ChainMesh.of(None).n_devices == 1 and len(resolve_devices("all")) >= 1
    for bad in (0, "some", [1, 2], 10**6, True):
        with pytest.raises(ValueError, match="devices"):
            resolve_devices(bad)


def test_one_device_is_the_default_and_use_devices_keeps_the_state():
    cfg = DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=2, n_samples=2)
    dtm = DTM(cfg)
    assert dtm.n_devices == 1
    dtm.train_step(np.ones((4, 16), np.uint8))
    w = np.asarray(dtm.params["W"])
    assert dtm.use_devices(1) is dtm and np.array_equal(np.asarray(dtm.params["W"]), w)
