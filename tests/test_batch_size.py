"""``batch_size="auto"`` (dtm_lite.scale.batch_size): the memory estimate of the training step bounds XLA's own
count on CPU, and the chosen batch is the largest multiple of the device count within the budget."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.data.lunarlander_settings import model_config, quick_model_config
from dtm_lite.scale import batch_size as bs
from dtm_lite.scale.batch_size import auto_batch_size, training_bytes, training_bytes_per_row

# the quick LunarLander model, and a small labelled world model with two diffusion steps
QUICK = quick_model_config()
SMALL = DTMConfig(image_shape=(8, 8, 1), preset="20_8", num_diffusion_steps=2, n_classes=2, label_spots=2,
                  n_actions=3, warmup_sweeps=4, n_samples=2, sweeps_per_sample=2)  # fmt: skip


def xla_bytes(config: DTMConfig, batch: int) -> int:
    """XLA's count for one training step on this process's first device: temporaries + outputs + arguments."""
    dtm = DTM(config.replace(batch_size=batch))
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (batch, config.n_visible)).astype(np.uint8)
    kw: dict = {}
    if config.n_classes:
        kw["labels"] = rng.integers(0, config.n_classes, batch)
    if config.n_actions:
        kw.update(prev=bits, actions=rng.integers(0, config.n_actions, batch))
    m = dtm.train_fn.lower(dtm.state, dtm.make_batch(bits, **kw)).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes


@pytest.mark.parametrize("config", [QUICK, SMALL], ids=["quick", "small-labels-world-T2"])
def test_the_estimate_bounds_xla_count_on_cpu(config):
    counts = {b: xla_bytes(config, b) for b in (16, 50)}  # 50 rows: 100 chains, padded to 112
    for b, used in counts.items():
        est = training_bytes(config, b)
        assert used <= est <= 2 * used, (b, used, est)
    per_row = (counts[50] - counts[16]) / (56 - 16)  # the rows the sampler runs, padding included
    assert per_row <= training_bytes_per_row(config) <= 2 * per_row


WORKER = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import numpy as np
    from dtm_lite import DTM
    from dtm_lite.data.lunarlander_settings import quick_model_config
    from dtm_lite.scale.batch_size import training_bytes

    config = quick_model_config(batch_size=48)
    dtm = DTM(config, devices=2)
    batch = dtm.make_batch(np.zeros((48, config.n_visible), np.uint8))
    m = dtm.train_fn.lower(dtm.state, batch).compile().memory_analysis()  # one device's share
    print(m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes, training_bytes(config, 48, 2))
    """
)


def test_the_estimate_bounds_each_device_of_two(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    used, est = (int(v) for v in proc.stdout.split())
    assert used <= est <= 2 * used, (used, est)
    assert est < training_bytes(QUICK, 48)  # and each device needs less than one device for the whole batch


@pytest.mark.parametrize("n_devices", [1, 2, 3, 8])
@pytest.mark.parametrize("budget_mib", [12, 200])
def test_the_choice_is_the_largest_multiple_of_the_devices_that_fits(n_devices, budget_mib):
    budget = budget_mib * 2**20
    for config in (QUICK, SMALL, model_config(num_diffusion_steps=4)):
        try:
            b = auto_batch_size(config, n_devices, budget)
        except ValueError as err:  # 12 MiB holds no row of the T = 4 LunarLander model
            assert budget_mib == 12 and "not even one batch row a device fits" in str(err)
            assert training_bytes(config, n_devices, n_devices) > budget
            continue
        assert b >= n_devices and b % n_devices == 0
        assert training_bytes(config, b, n_devices) <= budget < training_bytes(config, b + n_devices, n_devices)
        DTM(config.replace(batch_size=b), devices=1)  # a valid config (the docs' DTMConfig.replace(batch_size=...))


def test_the_default_budget_is_half_a_reported_device_memory_else_2_gib(monkeypatch):
    import jax

    assert bs.device_budget_bytes() == bs.CPU_BUDGET_BYTES == 2 << 30  # CPU: JAX reports no memory
    assert auto_batch_size(QUICK, 1) == auto_batch_size(QUICK, 1, 2 << 30)

    class FakeGPU:
        def memory_stats(self):
            return {"bytes_limit": 80 << 30, "bytes_in_use": 1 << 30}

    assert bs.device_budget_bytes(FakeGPU()) == 40 << 30
    monkeypatch.setattr(jax, "local_devices", lambda: [FakeGPU()])
    assert auto_batch_size(QUICK, 4) == auto_batch_size(QUICK, 4, 40 << 30)


def test_bad_arguments_are_refused():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_devices"):
            auto_batch_size(QUICK, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="budget_bytes"):
            auto_batch_size(QUICK, 1, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"not even one batch row a device fits the memory budget of 1\.0 MiB"):
        auto_batch_size(QUICK, 2, 1 << 20)
