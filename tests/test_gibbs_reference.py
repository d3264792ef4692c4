"""The plain block-Gibbs sampler against exact enumeration and against the tuned kernel."""

import jax
import numpy as np
import pytest
from stats import chain_means_and_se, z_scores

from dtm_lite.core.gibbs_reference import local_fields, reference_sample
from dtm_lite.core.graph import GridGraph
from dtm_lite.evaluation.exact import exact_moments
from dtm_lite.ising import gibbs_sample

Z_MAX = 5.0  # |z| > 5 has probability 6e-7 per quantity under the null
SCHEDULE = dict(warmup_sweeps=30, n_samples=60, sweeps_per_sample=2)


def _tiny(name, n_chains=400, seed=1):
    g = GridGraph.from_preset(name)
    rng = np.random.default_rng(seed)
    w, b = rng.normal(0, 0.5, g.n_edges), rng.normal(0, 0.5, g.n_nodes)
    clamp = np.zeros(g.n_nodes, bool)
    clamp[[1, 6]] = True
    s0 = np.where(rng.random((n_chains, g.n_nodes)) < 0.5, -1, 1).astype(np.int8)
    s0[:, 1], s0[:, 6] = 1, -1
    return g, w, b, clamp, s0


def _moments(samples, g):
    """Magnetisations then edge correlations, and their standard errors from the spread over chains."""
    s = np.asarray(samples)  # int8: the edge products stay int8, 8x less memory than float64
    m, m_se = chain_means_and_se(s)
    c, c_se = chain_means_and_se(s[..., g.edges[:, 0]] * s[..., g.edges[:, 1]])
    return np.concatenate([m, c]), np.concatenate([m_se, c_se])


def _exact_z(g, samples, w, b, clamp, s0, beta):
    """Largest |z| of magnetisations and edge correlations against exact enumeration at ``beta``."""
    est, se = _moments(samples, g)
    return z_scores(est, se, np.concatenate(exact_moments(g, w, b, s0[0], clamp, beta))).max()


def test_local_fields_match_dense_couplings():
    g, w, b, _, s0 = _tiny("4_4", n_chains=5)
    J = np.zeros((g.n_nodes, g.n_nodes))
    J[g.edges[:, 0], g.edges[:, 1]] = w
    h = np.asarray(local_fields(g, w.astype(np.float32), b.astype(np.float32), s0.astype(np.float32)))
    np.testing.assert_allclose(h, b + s0 @ (J + J.T), atol=1e-5)


@pytest.mark.parametrize("name", ["4_4", "3_4"])
def test_matches_exact_enumeration(name):
    g, w, b, clamp, s0 = _tiny(name)
    samples = np.asarray(reference_sample(jax.random.key(0), g, w, b, s0, 0.9, clamp=clamp, **SCHEDULE))
    assert samples.shape == (60, 400, g.n_nodes) and samples.dtype == np.int8
    assert np.all(samples[:, :, 1] == 1) and np.all(samples[:, :, 6] == -1)  # clamped sites stay clamped
    z = _exact_z(g, samples, w, b, clamp, s0, 0.9)
    print(f"{name}: max |z| vs exact = {z:.2f}")
    assert z < Z_MAX
    # the check has power: the same samples fail against the wrong temperature
    z_wrong = _exact_z(g, samples, w, b, clamp, s0, 1.2)
    print(f"{name}: max |z| vs exact at the wrong beta = {z_wrong:.2f}")
    assert z_wrong > Z_MAX


def test_agrees_with_tuned_kernel():
    g = GridGraph.from_preset("20_8")
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.3, g.n_edges), rng.normal(0, 0.3, g.n_nodes)
    s0 = np.where(rng.random((200, g.n_nodes)) < 0.5, -1, 1).astype(np.int8)
    sched = dict(warmup_sweeps=50, n_samples=40, sweeps_per_sample=3)
    m1, se1 = _moments(reference_sample(jax.random.key(1), g, w, b, s0, **sched), g)
    m2, se2 = _moments(gibbs_sample(jax.random.key(2), g, w, b, s0, **sched), g)
    z = np.abs(m1 - m2) / np.sqrt(se1**2 + se2**2)
    print(f"20_8: max |z| plain vs tuned over {z.size} moments = {z.max():.2f}")
    assert z.max() < 5.5  # 2000 moments: P(max |z| > 5.5) < 1e-4 under the null
    assert np.abs(m1[: g.n_nodes]).max() > 10 * se1.max()  # a model with structure well beyond the error bars
    # and the comparison has power: the tuned kernel at β = 0.8 is told apart
    m3, se3 = _moments(gibbs_sample(jax.random.key(2), g, w, b, s0, beta=0.8, **sched), g)
    z_hot = np.abs(m1 - m3) / np.sqrt(se1**2 + se3**2)
    print(f"20_8: max |z| plain vs tuned at beta 0.8 = {z_hot.max():.2f}")
    assert z_hot.max() > 5.5


def test_bad_shapes():
    g = GridGraph.from_preset("4_4")
    with pytest.raises(ValueError, match=r"need W \(32,\)"):
        reference_sample(jax.random.key(0), g, np.zeros(5), np.zeros(16), np.ones((3, 16)), **SCHEDULE)
    with pytest.raises(ValueError, match=r"s0 \(n_chains, 16\)"):
        reference_sample(jax.random.key(0), g, np.zeros(32), np.zeros(16), np.ones((3, 15)), **SCHEDULE)
