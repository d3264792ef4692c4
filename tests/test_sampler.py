import jax
import numpy as np
import pytest
from stats import chain_means_and_se, z_scores

from dtm_lite.core.graph import GridGraph
from dtm_lite.evaluation.exact import exact_moments
from dtm_lite.ising import gibbs_sample

Z_MAX = 5.0  # |z| > 5 has probability 6e-7 per quantity under the null


def _tiny_problem(name="4_4", n_chains=600, seed=1):
    g = GridGraph.from_preset(name)
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, g.n_edges)
    # two groups of chains with different per-chain biases (as input couplings J*s_in would give)
    group_bias = rng.normal(0, 0.5, (2, g.n_nodes))
    biases = np.repeat(group_bias, n_chains // 2, axis=0)
    clamped = np.zeros(g.n_nodes, bool)
    clamped[[1, 6]] = True
    spins0 = np.where(rng.random((n_chains, g.n_nodes)) < 0.5, -1, 1).astype(np.int32)
    spins0[:, 1], spins0[:, 6] = 1, -1
    return g, weights, group_bias, biases, clamped, spins0


def _max_z(g, samples, weights, group_bias, clamped, spins0, beta):
    s = np.asarray(samples, np.float64)
    half = s.shape[1] // 2
    zs = []
    for k in range(2):
        part = s[:, k * half : (k + 1) * half]
        m_exact, c_exact = exact_moments(g, weights, group_bias[k], spins0[k * half], clamped, beta)
        m, m_se = chain_means_and_se(part)
        c, c_se = chain_means_and_se(part[..., g.edges[:, 0]] * part[..., g.edges[:, 1]])
        zs += [z_scores(m, m_se, m_exact), z_scores(c, c_se, c_exact)]
    return max(float(z.max()) for z in zs)


@pytest.mark.parametrize("name", ["4_4", "3_4"])
def test_matches_exact_enumeration(name):
    g, w, gb, b, clamped, s0 = _tiny_problem(name)
    beta = 0.9
    samples = gibbs_sample(
        jax.random.key(0),
        g,
        w,
        b,
        s0,
        clamped=clamped,
        warmup_sweeps=30,
        n_samples=100,
        sweeps_per_sample=2,
        beta=beta,
    )
    assert samples.shape == (100, s0.shape[0], g.n_nodes) and samples.dtype == np.int8
    assert set(np.unique(np.asarray(samples))) == {-1, 1}
    assert np.all(np.asarray(samples)[:, :, 1] == 1) and np.all(np.asarray(samples)[:, :, 6] == -1)
    assert _max_z(g, samples, w, gb, clamped, s0, beta) < Z_MAX
    # the check has power: the same samples against the wrong temperature fail it
    assert _max_z(g, samples, w, gb, clamped, s0, 1.2) > Z_MAX


def test_beta_schedule_per_sweep():
    g, w, gb, b, clamped, s0 = _tiny_problem("4_4", n_chains=600)
    warmup_sweeps, n_samples, sps = 30, 100, 2
    total = warmup_sweeps + (n_samples - 1) * sps
    kw = dict(clamped=clamped, warmup_sweeps=warmup_sweeps, n_samples=n_samples, sweeps_per_sample=sps)
    const = gibbs_sample(jax.random.key(4), g, w, b, s0, beta=np.full(total, 0.9), **kw)
    assert np.array_equal(np.asarray(const), np.asarray(gibbs_sample(jax.random.key(4), g, w, b, s0, beta=0.9, **kw)))
    # hot start, then the target temperature: the samples follow the per-sweep value
    betas = np.where(np.arange(total) < 10, 0.05, 0.9)
    ramped = gibbs_sample(jax.random.key(5), g, w, b, s0, beta=betas, **kw)
    assert _max_z(g, ramped, w, gb, clamped, s0, 0.9) < Z_MAX
    with pytest.raises(ValueError, match="one value per sweep"):
        gibbs_sample(jax.random.key(0), g, w, b, s0, beta=betas[:-1], **kw)


def test_repeatable_and_key_dependent():
    g, w, gb, b, clamped, s0 = _tiny_problem("4_4", n_chains=20)
    kw = dict(clamped=clamped, warmup_sweeps=5, n_samples=3, sweeps_per_sample=1)
    a = np.asarray(gibbs_sample(jax.random.key(7), g, w, b, s0, **kw))
    assert np.array_equal(a, np.asarray(gibbs_sample(jax.random.key(7), g, w, b, s0, **kw)))
    assert not np.array_equal(a, np.asarray(gibbs_sample(jax.random.key(8), g, w, b, s0, **kw)))


def test_agrees_with_thrml():
    pytest.importorskip("thrml")
    from dtm_lite.evaluation.thrml_bridge import thrml_sampler

    g = GridGraph.from_preset("20_8")
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, g.n_edges)
    b = rng.normal(0, 0.3, g.n_nodes)
    n_chains = 200
    s0 = np.where(rng.random((n_chains, g.n_nodes)) < 0.5, -1, 1).astype(np.int8)
    sched = dict(warmup_sweeps=50, n_samples=40, sweeps_per_sample=3)
    ours = np.asarray(gibbs_sample(jax.random.key(1), g, w, b, s0, **sched), np.float64)
    theirs = np.asarray(thrml_sampler(g, w, b, **sched)(jax.random.split(jax.random.key(2), n_chains), s0), np.float64)
    assert ours.shape == theirs.shape
    m1, se1 = chain_means_and_se(ours)
    m2, se2 = chain_means_and_se(theirs)
    z = np.abs(m1 - m2) / np.sqrt(se1**2 + se2**2)
    assert z.max() < 5.5, f"max z {z.max():.2f}"
    # non-trivial model: magnetisations spread well beyond the error bars
    assert np.abs(m1).max() > 10 * se1.max()
    # and the statistic has power: a temperature change of 20% is detected
    hot = np.asarray(gibbs_sample(jax.random.key(1), g, w, b, s0, beta=0.8, **sched), np.float64)
    m3, se3 = chain_means_and_se(hot)
    assert (np.abs(m3 - m2) / np.sqrt(se3**2 + se2**2)).max() > 5.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(spins0=np.zeros((3, 16))), "only -1 and \\+1"),
        (dict(spins0=np.ones((3, 15))), "spins0 must have shape"),
        (dict(weights=np.zeros(5)), "weights must have shape \\(n_edges,\\) = \\(32,\\)"),
        (dict(biases=np.zeros((2, 16))), "biases must have shape"),
        (dict(clamped=np.zeros(16, int)), "bool mask"),
        (dict(n_samples=0), "n_samples must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    g = GridGraph.from_preset("4_4")
    args = dict(weights=np.zeros(g.n_edges), biases=np.zeros(g.n_nodes), spins0=np.ones((3, 16)))
    sched = dict(warmup_sweeps=1, n_samples=1, sweeps_per_sample=1)
    for k in list(kwargs):
        if k in sched:
            sched[k] = kwargs.pop(k)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gibbs_sample(jax.random.key(0), g, args["weights"], args["biases"], args["spins0"],
                     clamped=args.get("clamped"), **sched)  # fmt: skip


def test_hash_uniforms_are_uniform_and_independent():
    """The per-sweep hash: uniform marginals, no correlation between neighbouring counters or sweeps."""
    import jax.numpy as jnp

    from dtm_lite.core.sampler import _uniforms

    n = 200_000
    counter = jnp.arange(n, dtype=jnp.uint32)
    a = np.asarray(_uniforms(jnp.array([1, 2], jnp.uint32), counter), np.float64)
    b = np.asarray(_uniforms(jnp.array([1, 3], jnp.uint32), counter), np.float64)
    c = np.asarray(_uniforms(jnp.array([2, 2], jnp.uint32), counter), np.float64)
    assert a.min() >= 0 and a.max() < 1
    counts = np.bincount((a * 64).astype(int), minlength=64)
    chi2 = ((counts - n / 64) ** 2 / (n / 64)).sum()
    assert chi2 < 63 + 6 * np.sqrt(2 * 63)  # chi-square with 63 dof, ~6 sigma
    tol = 5 / np.sqrt(n)
    for x, y in ((a[:-1], a[1:]), (a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < tol
