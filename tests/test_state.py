"""The model's whole state is one pytree (DTMState); its update is the pure ``dtm.train_fn(state, bits)``;
checkpoints are that pytree as one dict, and format-1 checkpoints (before the pytree) still load exactly."""

import jax
import numpy as np
import pytest

from dtm_lite.core.state import DTMState
from dtm_lite.model import DTM, DTMConfig
from dtm_lite.training.checkpoint import CHECKPOINT_FORMAT, state_arrays, state_from_arrays

TINY = DTMConfig(image_shape=(4, 4, 1), preset="20_8", num_diffusion_steps=2, batch_size=4, warmup_sweeps=5,
                 n_samples=2, sweeps_per_sample=1, generation_sweeps=10, adaptive_penalty=True, seed=3)  # fmt: skip


def _plain(state: DTMState) -> list[np.ndarray]:
    """Every leaf as a NumPy array (keys as their raw data), for exact comparisons."""
    return [np.asarray(a) for a in state_arrays(state).values()]


def _same(a: DTMState, b: DTMState) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_plain(a), _plain(b), strict=True))


def test_state_is_one_pytree_holding_everything_that_changes():
    dtm = DTM(TINY)
    names = set(state_arrays(dtm.state))
    assert {"state/params/W", "state/params/b", "state/step", "state/key", "state/gen_key",
            "state/corr_penalty"} <= names  # fmt: skip
    assert any(n.startswith("state/opt_state/") for n in names)
    assert np.asarray(dtm.state.corr_penalty).tolist() == [np.float32(TINY.corr_penalty_min)] * 2
    before = _plain(dtm.state)
    dtm.generate(2)  # the generation stream moves only gen_key
    after = state_arrays(dtm.state)
    changed = {n for n, (x, y) in zip(after, zip(before, after.values(), strict=True), strict=True)
               if not np.array_equal(x, y)}  # fmt: skip
    assert changed == {"state/gen_key"}


def test_train_fn_is_pure():
    dtm = DTM(TINY)
    bits = np.random.default_rng(0).integers(0, 2, (4, 16)).astype(np.uint8)
    s0 = dtm.state
    s1, m1 = dtm.train_fn(s0, bits)
    s1b, m1b = dtm.train_fn(s0, bits)  # same input state, same output; the input is not changed
    assert _same(s1, s1b) and m1.keys() == m1b.keys() and all(float(m1[k]) == float(m1b[k]) for k in m1)
    assert _same(s0, DTM(TINY).state) and int(s1.step) == 1 and not _same(s0, s1)
    shown = dtm.train_step(bits)  # the method is the same function applied to dtm.state
    assert _same(dtm.state, s1)
    assert set(m1) == {"gap", "grad_norm", "lr"} | {f"finite/{k}" for k in s0.params}  # finite: one flag a param
    assert all(bool(m1[f"finite/{k}"]) for k in s0.params) and float(m1["lr"]) == pytest.approx(TINY.learning_rate)
    assert set(shown) == {"gap", "grad_norm", "lr"}  # the method reads the flags and drops them


def test_checkpoint_is_the_state_as_one_dict(tmp_path):
    dtm = DTM(TINY)
    dtm.train_step(np.ones((4, 16), np.uint8))
    dtm.corr_penalty = [0.5, 0.25]
    path = dtm.save(tmp_path / "c.npz", extra={"epoch": 1})
    with np.load(path) as z:
        files = set(z.files)
        meta = z["meta"].tobytes().decode()
    assert files == set(state_arrays(dtm.state)) | {"meta"} and f'"format": {CHECKPOINT_FORMAT}' in meta
    back, extra = DTM.load_with_extra(path)
    assert _same(back.state, dtm.state) and extra == {"epoch": 1}
    assert _same(state_from_arrays(DTM(TINY).state, state_arrays(dtm.state)), dtm.state)
    for bad in ([0.1, -1.0], [0.1, 0.2, 0.3], float("inf"), "high", 1e39):  # 1e39 is infinite in float32
        with pytest.raises(ValueError, match=r"corr_penalty must be one finite value >= 0 .* or 2 of them"):
            dtm.corr_penalty = bad
    assert np.array_equal(dtm.corr_penalty, [0.5, 0.25])  # the refused values changed nothing
    dtm.corr_penalty = 0.125  # one value: every step's
    assert np.array_equal(dtm.corr_penalty, [0.125, 0.125])


def test_state_round_trips_through_jit():
    dtm = DTM(TINY)
    out = jax.jit(lambda s: s)(dtm.state)
    assert isinstance(out, DTMState) and _same(out, dtm.state)
