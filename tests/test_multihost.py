"""Multi-host training on localhost: two ``jax.distributed`` processes (CPU collectives over gloo), each
streaming its own share of the items, reach the parameters of one process reading both shares."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from dtm_lite.scale.sharding import initialize_distributed

    mode, out = sys.argv[1], sys.argv[2]
    if mode != "single":
        initialize_distributed(sys.argv[3], 2, int(mode), timeout_s=60)
    import jax
    from dtm_lite import DTM, DTMConfig, IteratorDataLoader

    cfg = DTMConfig(image_shape=(4, 4, 1), preset="20_8", batch_size=8, warmup_sweeps=6, n_samples=3,
                    sweeps_per_sample=2, num_diffusion_steps=2)
    rng = np.random.default_rng(0)
    items = [rng.random((3, 4, 4, 1)) for _ in range(12)]  # 12 "episodes" of 3 frames

    def loader(i):  # process i's share: items i, i + 2, ...; 4 rows a batch (half the global batch)
        return IteratorDataLoader(items, 4, encoding=None, image_shape=(4, 4, 1), process_index=i, process_count=2)

    if mode == "single":  # one process reads both shares and trains on their concatenation
        dtm = DTM(cfg)
        for a, b in zip(loader(0), loader(1)):
            dtm.train_step(np.concatenate([a, b]))
    else:
        dtm = DTM(cfg, devices="all")
        assert dtm.n_devices == 2 and jax.process_count() == 2
        for bits in loader(int(mode)):
            dtm.train_step_local(bits)
    assert dtm.batches_trained == 4, dtm.batches_trained
    if jax.process_index() == 0:
        np.savez(out, **{k: np.asarray(v) for k, v in dtm.state.params.items()})
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_reading_both_shards(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    coordinator = f"localhost:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(tmp_path / "multi.npz"), coordinator],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]
    single = subprocess.run([sys.executable, str(script), "single", str(tmp_path / "single.npz")], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    with np.load(tmp_path / "single.npz") as a, np.load(tmp_path / "multi.npz") as b:
        assert set(a.files) == set(b.files) == {"W", "b"}
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k


def test_unreachable_coordinator_fails_clearly_within_the_timeout():
    code = (
        "from dtm_lite.scale.sharding import initialize_distributed\n"
        f"initialize_distributed('localhost:{_free_port()}', 2, 1, timeout_s=3)\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and time.monotonic() - t0 < 30
    assert "ConnectionError" in proc.stderr and "did not answer within 3 s" in proc.stderr


def test_loader_shares_are_disjoint_and_cover_the_stream():
    from dtm_lite import IteratorDataLoader

    items = [np.full((1, 2, 2, 1), i / 10) for i in range(6)]
    seen = []
    for i in range(3):
        for batch in IteratorDataLoader(items, 1, encode=False, process_index=i, process_count=3):
            seen.append(round(float(batch[0, 0, 0, 0]) * 10))
    assert sorted(seen) == list(range(6)) and seen[:2] == [0, 3]
    with pytest.raises(ValueError, match="process_index"):
        IteratorDataLoader(items, 1, process_index=3, process_count=3)


def test_evaluation_metrics_run_once_but_every_process_generates(monkeypatch, tmp_path):
    """Multi-host evaluation: generation is a collective, so every process calls it (also without a hold-out or
    a run folder, where one process alone would otherwise deadlock the others); the host-side metrics (FD-PCA,
    objects) are computed by process 0 only."""
    import jax

    from dtm_lite import DTM, DTMConfig, EvalSettings
    from dtm_lite.training import loop as tr

    dtm = DTM(DTMConfig(image_shape=(4, 4, 3), preset="20_8", batch_size=4, warmup_sweeps=2, n_samples=1,
                        generation_sweeps=4))  # fmt: skip
    settings = EvalSettings(n_images=4, n_components=2, gif_every=2)
    frames = np.random.default_rng(0).random((8, 4, 4, 3)).astype(np.float32)
    held = tr.Holdout(dtm, frames, settings)
    calls = []
    real = dtm.generate
    monkeypatch.setattr(dtm, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert "fd_pca" in tr._evaluate(dtm, held, settings, 0, None)  # one process: metrics
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert tr._evaluate(dtm, held, settings, 0, None) == {}  # process 1: generates, no metrics
    assert tr._evaluate(dtm, None, settings, 0, None) == {}  # ... also with nothing to write
    assert len(calls) == 3
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    assert "fd_pca" in tr._evaluate(dtm, held, settings, 0, None)
