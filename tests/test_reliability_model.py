"""Issue 8 (reliability), the model side: every config field and generation argument validated,
clear errors for corrupt / foreign / future checkpoints, stale temporary files cleaned up, a refused
CLI resume that leaves run.json alone, and generation in memory-bounded chunks."""

import dataclasses
import json
import math
import os
import re
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtm_lite.core.config import seed_key
from dtm_lite.model import DTM, DTMConfig
from dtm_lite.training.files import atomic_write

TINY = DTMConfig(
    image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2, sweeps_per_sample=1,
    generation_sweeps=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    return DTM(TINY)


# ---------------------------------------------------------------------- 5. validation


def test_beta_must_be_finite_and_positive(tiny):
    for bad in [(math.nan, 1.0), (1.0, math.inf), (0.8, -math.inf), (0.0, 1.0), (0.5,), (0.5, 1.0, 2.0), "ab", 1.0]:
        with pytest.raises(ValueError, match="generation_beta"):
            DTMConfig(generation_beta=bad)
        with pytest.raises(ValueError, match="beta"):
            tiny.generate(2, key=0, beta=bad)
    for bad in [math.nan, math.inf, 0.0, -1.0, "1", True]:
        with pytest.raises(ValueError, match="beta must be a finite number > 0"):
            DTMConfig(beta=bad)
    with pytest.raises(ValueError, match=r"beta\[0\] must be a finite number > 0, got nan"):
        tiny.generate(2, key=0, beta=(np.float32("nan"), 1.0))
    assert DTMConfig(generation_beta=[np.float32(0.5), np.int64(2)]).generation_beta == (0.5, 2.0)


def test_every_bool_field_must_be_a_bool():
    bools = [f.name for f in dataclasses.fields(DTMConfig) if f.type in (bool, "bool")]
    assert bools == ["adaptive_penalty", "label_gates_layout"]
    needs = {"label_gates_layout": {"n_classes": 2, "layout_color": (1.0,) * DTMConfig().image_shape[2]}}
    for name in bools:
        for bad in ["no", "False", 0, 1, None, 1.0]:
            with pytest.raises(ValueError, match=f"{name} must be True or False"):
                DTMConfig(**{name: bad})
        assert getattr(DTMConfig(**{name: np.bool_(True)}, **needs.get(name, {})), name) is True
        assert getattr(DTMConfig(**{name: False}), name) is False
    with pytest.raises(ValueError, match="label_gates_layout=True .* needs n_classes >= 2 and layout_color"):
        DTMConfig(label_gates_layout=True, n_classes=2)
    with pytest.raises(ValueError, match="return_trajectory must be True or False"):
        DTM(TINY).generate(2, key=0, return_trajectory="no")


def test_image_shape_entries_and_seeds_must_be_integers(tiny):
    for bad in [(3.5, 4, 1), ("32", 4, 1), (4, 4, True), (4, 4, 0), (4, 4), "441", None]:
        with pytest.raises(ValueError, match="image_shape"):
            DTMConfig(image_shape=bad)
    cfg = DTMConfig(image_shape=(np.int64(4), np.int32(4), np.uint8(1)), preset="20_8", seed=np.int64(3))
    assert cfg.image_shape == (4, 4, 1) and all(type(v) is int for v in cfg.image_shape)
    assert type(cfg.seed) is int and json.loads(json.dumps(cfg.to_dict()))["seed"] == 3
    for bad in [-1, 1.5, "3", True, None, 2**64]:
        with pytest.raises(ValueError, match="seed must be an integer in \\[0, "):
            DTMConfig(seed=bad)
    for bad in [-1, True, 1.5, "3", 2**64]:
        with pytest.raises(ValueError, match="key must be"):
            tiny.generate(2, key=bad)
        with pytest.raises(ValueError, match="key must be"):
            tiny.free_run(0, np.zeros((2, 16), np.uint8), 2, key=bad)
    assert np.array_equal(tiny.generate(2, key=np.int64(5)), tiny.generate(2, key=5))
    assert np.array_equal(tiny.generate(2, key=jax.random.PRNGKey(5)), tiny.generate(2, key=5))
    # seeds below 2**32 keep their keys; above, 32-bit JAX would alias them (key(2**32) == key(0)): no longer
    assert jnp.array_equal(jax.random.key_data(seed_key(7)), jax.random.key_data(jax.random.key(7)))
    assert not jnp.array_equal(jax.random.key_data(seed_key(2**32)), jax.random.key_data(seed_key(0)))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        tiny.generate(2.0, key=0)
    with pytest.raises(ValueError, match="step must be an integer in \\[0, 0\\]"):
        tiny.free_run(1, np.zeros((2, 16), np.uint8), 2)


def test_numpy_floats_are_accepted_and_strings_and_bools_refused():
    cfg = DTMConfig(learning_rate=np.float32(0.03), threshold=np.float64(0.25), corr_penalty=np.float32(0),
                    image_rate=np.int64(1), diffusion_offset=np.float16(0.125))  # fmt: skip
    assert type(cfg.learning_rate) is float and cfg.learning_rate == pytest.approx(0.03)
    json.dumps(cfg.to_dict())  # plain Python numbers: the config still goes into a checkpoint
    assert cfg == DTMConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    bad = {
        "learning_rate": [True, "0.1", math.nan, 0.0], "threshold": ["0.5", 1.0, -0.1, math.nan],
        "diffusion_offset": [1.0, "0"], "lr_final_fraction": [0.0, 1.5, math.inf], "weight_decay": [-1e-3, None],
        "autocorr_tau": [0.0, math.inf], "corr_penalty_min": [-1.0], "image_rate": [False, 0],
    }  # fmt: skip
    for name, values in bad.items():
        for v in values:
            with pytest.raises(ValueError, match=f"{name} must be a finite number"):
                DTMConfig(**{name: v})
    for name in ("batch_size", "warmup_sweeps", "generation_sweeps"):
        for v in (2.0, "4", True):
            with pytest.raises(ValueError, match=f"{name} must be an integer"):
                DTMConfig(**{name: v})


# ---------------------------------------------------------------------- 6. checkpoints


def _bad_files(tmp_path, ckpt):
    """(name, path) of files that are not dtm_lite checkpoints."""
    data = ckpt.read_bytes()
    with np.load(ckpt) as z:
        arrays = dict(z)
    files = {
        "random.npz": np.random.default_rng(0).bytes(4096),
        "truncated.npz": data[: len(data) // 2],
        "truncated_tail.npz": data[:-20],
        "empty.npz": b"",
        "run.json": json.dumps({"lr": 0.1}).encode(),
        "objects.npz": None,
        "no_meta.npz": None,
        "bad_meta.npz": None,
        "other.zip": None,
    }
    for name, raw in files.items():
        if raw is not None:
            (tmp_path / name).write_bytes(raw)
    W = "state/params/W"
    np.savez(tmp_path / "objects.npz", **{**arrays, W: np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "no_meta.npz", **{k: v for k, v in arrays.items() if k != "meta"})
    np.savez(tmp_path / "bad_meta.npz", **{**arrays, "meta": np.frombuffer(b"\xff{not json", np.uint8)})
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    return [tmp_path / name for name in files]


def test_corrupt_or_foreign_files_get_one_clear_error(tmp_path, tiny):
    ckpt = tiny.save(tmp_path / "real.npz")
    weights = tiny.save_weights(tmp_path / "real_weights.npz")
    for path in _bad_files(tmp_path, ckpt):
        for load in (DTM.load, DTM.load_with_extra, DTM.load_weights):
            with pytest.raises(ValueError) as info:
                load(path)
            err = info.value
            assert type(err) is ValueError, (path.name, load.__name__, repr(err))
            msg = str(err)
            assert str(path) in msg and "corrupt or not a dtm_lite checkpoint" in msg, msg
            assert "pickle" not in msg and err.__cause__ is None, msg  # no allow_pickle hint, no chained error
            assert err.__context__ is None or err.__suppress_context__, msg
    # the two kinds of dtm_lite file say which loader they need
    with pytest.raises(ValueError, match="weights file.*DTM.load_weights"):
        DTM.load(weights)
    with pytest.raises(ValueError, match="not a dtm_lite weights file but a training checkpoint.*DTM.load"):
        DTM.load_weights(ckpt)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        DTM.load(tmp_path / "missing.npz")


def test_checkpoint_with_wrong_arrays_names_them(tmp_path, tiny):
    ckpt = tiny.save(tmp_path / "real.npz")
    with np.load(ckpt) as z:
        arrays = dict(z)
    W = "state/params/W"
    np.savez(tmp_path / "short.npz", **{**arrays, W: arrays[W][:, :5]})
    with pytest.raises(
        ValueError, match=r"short.npz: corrupt or not a dtm_lite checkpoint \(state/params/W is float32\[1, 5\]"
    ):
        DTM.load(tmp_path / "short.npz")
    del arrays["state/opt_state/0/mu/W"]
    np.savez(tmp_path / "no_opt.npz", **arrays)
    with pytest.raises(ValueError, match=r"corrupt or not a dtm_lite checkpoint \(no array 'state/opt_state/0/mu/W'\)"):
        DTM.load(tmp_path / "no_opt.npz")


def test_future_format_names_the_version_it_needs(tmp_path, tiny):
    from dtm_lite.training.checkpoint import CHECKPOINT_FORMAT, WEIGHTS_VERSION

    for saver, loader, field, what, known in [
        (tiny.save, DTM.load, "format", "checkpoint format", CHECKPOINT_FORMAT),
        (tiny.save_weights, DTM.load_weights, "version", "weights file version", WEIGHTS_VERSION),
    ]:
        path = saver(tmp_path / f"{field}.npz")
        with np.load(path) as z:
            arrays = dict(z)
        meta = json.loads(arrays["meta"].tobytes().decode())
        meta[field] = 7
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        np.savez(path, **arrays)
        want = (
            f"{re.escape(str(path))} is a dtm_lite {what} 7, written by a newer dtm_lite; "
            f".* reads {what} {known} and older: upgrade dtm_lite to a version that reads {what} 7"
        )
        with pytest.raises(ValueError, match=want):
            loader(path)


def test_stale_temporaries_of_a_killed_save_are_removed_on_the_next_save(tmp_path, tiny):
    old = time.time() - 3600
    stale = [tmp_path / "latest.npz.ab_cd123.tmp", tmp_path / "latest.npz.zzzzzzzz.tmp"]
    keep = [
        tmp_path / "other.npz.abcd1234.tmp",  # another file's
        tmp_path / "latest.npz.notes.tmp",  # not a mkstemp name
        tmp_path / "latest.npz.abcd1234.tmp.bak",
        tmp_path / "latest.npz.fresh123.tmp",  # newer than the write: a save in progress elsewhere
    ]
    for p in stale + keep:
        p.write_bytes(b"half a checkpoint")
        os.utime(p, (old, old))
    future = time.time() + 3600
    os.utime(keep[-1], (future, future))
    tiny.save(tmp_path / "latest.npz")
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert DTM.load(tmp_path / "latest.npz").config == TINY
    # and atomic_write itself, for any file (run.json, metrics.csv)
    (tmp_path / "run.json.12345678.tmp").write_text("{")
    os.utime(tmp_path / "run.json.12345678.tmp", (old, old))
    atomic_write(tmp_path / "run.json", lambda f: f.write(b"{}"))
    assert not (tmp_path / "run.json.12345678.tmp").exists() and (tmp_path / "run.json").read_text() == "{}"


# ---------------------------------------------------------------------- 7. CLI --resume


@pytest.mark.filterwarnings("ignore:config.lr_decay_batches")  # the resumed run is longer than planned: intended
def test_cli_resume_with_other_settings_is_refused_before_run_json_changes(tmp_path, capsys):
    from dtm_lite.interface.cli import main

    out = tmp_path / "run"
    small = ["--no-progress", "--batches-per-epoch", "1", "--evaluate-every", "0", "--image-shape", "8", "8", "3",
             "--preset", "20_8", "--batch-size", "4", "--warmup-sweeps", "2", "--n-samples", "1",
             "--sweeps-per-sample", "1", "--generation-sweeps", "4", "--episodes-per-epoch", "2",
             "--holdout-episodes", "2", "--shuffle-buffer", "8"]  # fmt: skip
    assert main(["train", "--quick", "--out", str(out), "--epochs", "1", *small]) == 0
    before = (out / "run.json").read_bytes()
    ckpt = (out / "latest.npz").read_bytes()
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", "--out", str(out), "--no-progress", "--learning-rate", "0.1", "--seed", "2"])
    msg = str(info.value)
    assert "learning_rate (--learning-rate): 0.1 now, 0.03 in the checkpoint" in msg, msg
    assert "seed (--seed): 2 now" in msg, msg
    assert (out / "run.json").read_bytes() == before and (out / "latest.npz").read_bytes() == ckpt
    assert sorted(p.name for p in out.iterdir()) == ["latest.npz", "metrics.csv", "run.json"]
    # the run can still be resumed
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--no-progress", "--epochs", "2"]) == 0
    assert "2 epochs, 2 batches" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["epochs"] == 2


# ---------------------------------------------------------------------- 8. chunked generation


def test_generate_in_chunks_is_deterministic_and_shaped(tiny):
    per_chain = tiny.generation_bytes_per_chain()
    key = jax.random.key(3)
    a = tiny.generate(6, key=key, max_chunk_bytes=2 * per_chain)  # 3 chunks of 2 chains
    assert a.shape == (6, 4, 4, 1)
    assert np.array_equal(a, tiny.generate(6, key=key, max_chunk_bytes=2 * per_chain))
    for i in range(3):  # chunk i runs with fold_in(key, i)
        assert np.array_equal(a[2 * i : 2 * i + 2], tiny.generate(2, key=jax.random.fold_in(key, i)))
    # with a trajectory: chunks join along the chain axis; the budget counts the records too
    per_traj = tiny.generation_bytes_per_chain(4, 2)
    assert per_traj > per_chain
    final, traj = tiny.generate(5, key=key, return_trajectory=True, record_every=2, max_chunk_bytes=2 * per_traj)
    assert final.shape == (5, 4, 4, 1) and traj.shape == (4 // 2 + 1, 5, 4, 4, 1)  # chunks of 2, 2, 1
    assert np.array_equal(traj[-1], final)
    f2, t2 = tiny.generate(1, key=jax.random.fold_in(key, 2), return_trajectory=True, record_every=2)
    assert np.array_equal(final[4:], f2) and np.array_equal(traj[:, 4:], t2)
    with pytest.raises(ValueError, match="max_chunk_bytes must be an integer >= 1"):
        tiny.generate(2, key=0, max_chunk_bytes=0)


def test_default_budget_gives_the_unchunked_result_and_bounds_large_n(tiny, monkeypatch):
    from dtm_lite.sampling import GENERATE_CHUNK_BYTES, GENERATE_CHUNK_CHAINS

    # a small n: exactly the single run of the jitted kernel, as before chunking existed
    betas = jnp.linspace(*TINY.generation_beta, TINY.generation_sweeps, dtype=jnp.float32)
    fn = tiny.kernel((TINY.generation_sweeps, TINY.generation_sweeps, False))
    ref = tiny.decode(np.asarray(fn(tiny.state.params, jax.random.key(7), betas, 5)[0]))
    assert np.array_equal(tiny.generate(5, key=7), ref)
    assert np.array_equal(tiny.generate(5, key=7, max_chunk_bytes=10**15), ref)

    # a huge n: chunks under the budget (the kernel is replaced by a stub, so nothing is sampled)
    dtm = DTM(TINY)
    calls = []

    def stub(params, key, betas, n):
        calls.append((n, jax.random.key_data(key)))
        return jnp.zeros((n, 16), jnp.uint8), jnp.zeros((1, n, 16), jnp.int8)

    monkeypatch.setattr(dtm, "_kernels", {(4, 4, False): stub})
    n = 200_000
    images = dtm.generate(n, key=1)
    per_chunk = min(GENERATE_CHUNK_CHAINS, GENERATE_CHUNK_BYTES // dtm.generation_bytes_per_chain())  # CPU
    sizes = [c[0] for c in calls]
    assert images.shape == (n, 4, 4, 1) and sum(sizes) == n and len(sizes) == -(-n // per_chunk) > 1
    assert max(sizes) <= per_chunk and len(set(sizes)) <= 2  # at most two compilations
    assert len({tuple(np.asarray(k).tolist()) for _, k in calls}) == len(calls)  # a key per chunk


def test_memory_estimate_covers_what_xla_allocates(tiny):
    """The per-chain estimate bounds XLA's own count (temporaries + outputs) of the generation kernel."""
    betas = jnp.linspace(0.8, 1.2, 8, dtype=jnp.float32)
    for every, traj in [(8, False), (2, True)]:
        fn = tiny.kernel((8, every, traj))
        m = fn.lower(tiny.state.params, jax.random.key(0), betas, 64).compile().memory_analysis()
        if m is None:
            pytest.skip("this backend does not report memory")
        used = (m.temp_size_in_bytes + m.output_size_in_bytes) / 64
        assert used <= tiny.generation_bytes_per_chain(8, every if traj else None), (every, used)
