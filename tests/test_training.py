import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import z_scores

from dtm_lite import sampler as smp
from dtm_lite.capacity import CapacityError
from dtm_lite.diffusion import add_noise, couplings, time_grid, training_pair
from dtm_lite.dtm import DTM, DTMConfig, _visible_bias, phase_moments
from dtm_lite.exact import all_states
from dtm_lite.graph import GridGraph


def test_couplings_match_reference_numbers():
    assert np.allclose(couplings(4, "log", 0.9), [1.025, 0.856, 0.598, 0.0], atol=1e-3)
    assert couplings(1, "log", 0.8).tolist() == [0.0]  # T = 1: a plain EBM
    assert np.isinf(time_grid(3, "log")[-1]) and time_grid(2, "linear").tolist() == [0, 0.5, 1]


def test_forward_noise_flip_rate_matches_formula_and_j():
    rate, dt, n = 0.8, 0.35, 400_000
    x = jnp.zeros(n, jnp.uint8)
    flipped = float(add_noise(jax.random.key(0), x, dt, rate).mean())
    expected = (1 - np.exp(-rate * dt)) / 2
    assert abs(flipped - expected) < 5 * np.sqrt(expected * (1 - expected) / n)
    # the exact reverse coupling J gives P(same) = sigmoid(2J) = 1 - flip rate over the step's interval
    t = time_grid(3, "log")
    for k, j in enumerate(couplings(3, "log", rate)[:-1]):
        flip_k = (1 - np.exp(-rate * (t[k + 1] - t[k]))) / 2
        assert np.isclose(1 / (1 + np.exp(-2 * j)), 1 - flip_k)
    # infinite interval: pure noise
    assert abs(float(add_noise(jax.random.key(1), x, jnp.inf, rate).mean()) - 0.5) < 0.01


def test_training_pair_offsets():
    rate, off, n = 1.0, 0.15, 200_000
    x0 = jnp.zeros(n, jnp.uint8)
    xs, xe = training_pair(jax.random.key(2), x0, 0.4, 0.9, rate, off)
    p_start = (1 - np.exp(-rate * 0.4 * (1 - off))) / 2
    p_end = (1 - np.exp(-rate * 0.9 * (1 + off))) / 2
    assert abs(float(xs.mean()) - p_start) < 0.005 and abs(float(xe.mean()) - p_end) < 0.005


def test_gradient_matches_exact_conditional_log_likelihood():
    """The sampled ascent direction β(⟨·⟩₊ - ⟨·⟩₋) equals ∇ mean_r log p(x_start_r | x_end_r), by enumeration,
    for two diffusion steps (different parameters, inputs and couplings) estimated in one batched run."""
    g = GridGraph.from_preset("4_4")
    lat = smp.lattice(g)
    rng = np.random.default_rng(0)
    T, B, beta = 2, 6, 1.0
    W = jnp.asarray(rng.normal(0, 0.4, (T, g.n_edges)), jnp.float32)
    b = jnp.asarray(rng.normal(0, 0.3, (T, g.n_nodes)), jnp.float32)
    j = jnp.array([0.7, 0.3])
    visible = jnp.array([0, 2, 5, 7])
    s_start = jnp.asarray(np.where(rng.random((T, B, 4)) < 0.5, -1.0, 1.0))
    s_in = jnp.asarray(np.where(rng.random((T, B, 4)) < 0.5, -1.0, 1.0))
    S = jnp.asarray(all_states(g.n_nodes), jnp.float32)
    prod = S[:, g.edges[:, 0]] * S[:, g.edges[:, 1]]

    def loglik(W, b, s_start, s_in, j):
        bias = b + _visible_bias(g.n_nodes, visible, j, s_in)  # (B, n_nodes)
        logits = beta * (prod @ W)[None] + beta * bias @ S.T  # (B, states)
        match = jnp.all(S[None, :, visible] == s_start[:, None], axis=-1)
        num = jax.nn.logsumexp(jnp.where(match, logits, -jnp.inf), axis=1)
        return jnp.mean(num - jax.nn.logsumexp(logits, axis=1))

    gW, gb = jax.vmap(jax.grad(loglik, argnums=(0, 1)))(W, b, s_start, s_in, j)
    reps = 600  # each row repeated: independent chains
    mp, mn, cp, cn = phase_moments(
        lat, visible, W, b, jnp.tile(s_start, (1, reps, 1)), jnp.tile(s_in, (1, reps, 1)), j, jax.random.key(1),
        beta=beta, n_warmup=20, n_samples=40, steps_per_sample=2,
    )  # fmt: skip
    est_W, est_b = beta * (cp - cn), beta * (mp - mn)
    assert est_W.shape == (T, g.n_edges) and est_b.shape == (T, g.n_nodes)
    # each phase moment is a mean of per-chain means in [-1, 1] over B*reps independent chains, so the
    # difference of the two phases has SE <= sqrt(2 / (B*reps))
    se = np.sqrt(2 / (B * reps))
    assert z_scores(np.asarray(est_W), se, np.asarray(gW)).max() < 5
    assert z_scores(np.asarray(est_b), se, np.asarray(gb)).max() < 5
    assert np.abs(np.asarray(gW)).max() > 10 * se  # a gradient worth checking
    # and the two steps really differ: swapping them would fail the check
    assert z_scores(np.asarray(est_W[::-1]), se, np.asarray(gW)).max() > 5


PATTERNS = np.zeros((4, 6, 6, 1), np.uint8)
PATTERNS[0, :3] = 255
PATTERNS[1, :, :3] = 255
PATTERNS[2, ::2] = 255
PATTERNS[3, :, ::2] = 255


def test_learns_a_few_patterns():
    cfg = DTMConfig(
        image_shape=(6, 6, 1), preset="20_8", num_diffusion_steps=2, batch_size=32, steps_warmup=200,
        n_samples=20, steps_per_sample=5, generation_sweeps=1000, generation_beta=(1.0, 1.0),
        learning_rate=0.05, lr_decay_batches=300, seed=0,
    )  # fmt: skip
    dtm = DTM(cfg)
    bits = dtm.encode(PATTERNS)
    rng = np.random.default_rng(0)
    for _ in range(300):
        dtm.train_step(bits[rng.integers(0, 4, cfg.batch_size)])
    samples = dtm.encode((dtm.generate(200, key=1) * 255).astype(np.uint8))
    hamming = (samples[:, None, :] != bits[None]).sum(-1).min(1)
    assert (hamming <= 1).mean() >= 0.9, np.bincount(hamming)
    # every pattern is generated (no mode collapse)
    nearest = (samples[:, None, :] != bits[None]).sum(-1).argmin(1)[hamming <= 1]
    assert set(nearest.tolist()) == {0, 1, 2, 3}


def test_generate_is_repeatable_and_shaped():
    dtm = DTM(image_shape=(4, 4, 1), preset="20_8", num_diffusion_steps=2, batch_size=4, steps_warmup=2,
              n_samples=2, steps_per_sample=1, generation_sweeps=6)  # fmt: skip
    a = dtm.generate(3, key=5)
    assert a.shape == (3, 4, 4, 1) and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, dtm.generate(3, key=5))
    final, traj = dtm.generate(3, key=5, return_trajectory=True, record_every=2)
    assert np.array_equal(final, a) and traj.shape == (2 * (6 // 2 + 1), 3, 4, 4, 1)
    assert np.array_equal(traj[-1], final)


def test_bad_inputs_say_what_to_do():
    with pytest.raises(CapacityError, match="'80_12'"):
        DTM(image_shape=(32, 32, 3), preset="60_12")
    with pytest.raises(ValueError, match="valid presets"):
        DTMConfig(preset="601")
    with pytest.raises(ValueError, match="grayscale_levels must be an integer >= 1"):
        DTMConfig(grayscale_levels=0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        DTMConfig(schedule="cosine")
    dtm = DTM(image_shape=(4, 4, 1), preset="20_8", batch_size=4, steps_warmup=1, n_samples=1)
    with pytest.raises(ValueError, match="shape \\(batch, 16\\).*dtm.encode"):
        dtm.train_step(np.zeros((4, 15)))
    with pytest.raises(ValueError, match="batch_size is 4"):
        dtm.train_step(np.zeros((3, 16)))
    with pytest.raises(ValueError, match="NaN"):
        dtm.train_step(np.full((4, 16), np.nan))
    with pytest.raises(ValueError, match="only 0 and 1"):
        dtm.train_step(np.full((4, 16), 255, np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        dtm.train_step(np.full((4, 16), "a"))
    with pytest.raises(ValueError, match="expects \\(H, W, C\\) = \\(4, 4, 1\\)"):
        dtm.encode(np.zeros((2, 5, 5, 1), np.uint8))
