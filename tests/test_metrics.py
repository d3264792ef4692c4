"""Tests for dtm_lite.evaluation.metrics (FD-PCA, baselines, autocorrelation) and dtm_lite.training.penalty."""

import math

import numpy as np
import pytest

from dtm_lite.evaluation.metrics import (
    FDPCA,
    autocorrelation,
    autocorrelation_scalar,
    evaluate,
    frechet_distance,
)
from dtm_lite.training.penalty import adaptive_correlation_penalty


def shapes(n: int, rng: np.random.Generator, side: int = 12) -> np.ndarray:
    """Binary (n, side, side, 1) images of one random filled rectangle each: strong pixel correlations."""
    out = np.zeros((n, side, side, 1))
    for k in range(n):
        i0, j0 = rng.integers(0, side - 3, size=2)
        h, w = rng.integers(3, side // 2 + 1, size=2)
        out[k, i0 : i0 + h, j0 : j0 + w] = 1.0
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return shapes(400, rng), shapes(400, rng), shapes(400, rng)


# ---- Fréchet distance -------------------------------------------------------------------------------


def test_frechet_identical_is_zero():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T
    mu = rng.standard_normal(6)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_frechet_diagonal_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    a, b = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_commuting_rotated_and_singular():
    """Rotating both Gaussians leaves the distance unchanged, also with a singular covariance."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    a, b = np.array([0.0, 1.0, 2.0, 4.0]), np.array([1.0, 1.0, 0.5, 9.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(np.zeros(4), q @ np.diag(a) @ q.T, np.zeros(4), q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, abs=1e-6)  # sqrt of a round-off eigenvalue ~1e-16 is ~1e-8


def test_frechet_shape_mismatch():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ---- FDPCA ------------------------------------------------------------------------------------------


def test_fdpca_self_score_zero_and_clipped_components(data):
    hold, _, _ = data
    fd = FDPCA.fit(hold, n_components=16)
    assert fd.n_components == 16
    assert fd.features(hold).shape == (400, 16)
    assert fd.score(hold) == pytest.approx(0.0, abs=1e-8)
    small = FDPCA.fit(hold[:5], n_components=32)
    assert small.n_components == 4  # rank of 5 centred rows


def test_fdpca_orders_floor_model_baseline(data):
    hold, other, _ = data
    rng = np.random.default_rng(4)
    fd = FDPCA.fit(hold, n_components=16)
    floor = fd.floor(other)
    independent = fd.score(fd.independent_pixel_baseline(400, rng))
    shuffled = np.stack([rng.permutation(img.reshape(-1)).reshape(img.shape) for img in other])
    assert floor < 0.5 * independent
    assert fd.score(shuffled) > 2 * floor


def test_independent_baseline_marginals_multilevel():
    rng = np.random.default_rng(5)
    levels = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    hold = levels[rng.integers(0, 4, size=(300, 4, 4, 3))]
    hold[:, 0, 0, 0] = 1 / 3  # a constant pixel-channel stays constant
    fd = FDPCA.fit(hold, n_components=8)
    base = fd.independent_pixel_baseline(2000, rng)
    assert base.shape == (2000, 4, 4, 3)
    assert set(np.unique(base)) <= set(levels.astype(np.float32))
    assert np.all(base[:, 0, 0, 0] == np.float32(1 / 3))
    assert fd.marginal_error(base) < 0.03
    assert fd.marginal_error(np.zeros_like(hold)) == pytest.approx(hold.mean(), rel=1e-6)


def test_independent_baseline_breaks_correlations(data):
    hold, _, _ = data
    fd = FDPCA.fit(hold)
    base = fd.independent_pixel_baseline(2000, np.random.default_rng(6)).reshape(2000, -1)
    corr_data = np.corrcoef(hold.reshape(400, -1)[:, [60, 61]].T)[0, 1]
    corr_base = np.corrcoef(base[:, [60, 61]].T)[0, 1]
    assert corr_data > 0.5 and abs(corr_base) < 0.1


def test_evaluate_keys(data):
    hold, other, samples = data
    fd = FDPCA.fit(hold, n_components=16)
    out = evaluate(fd, samples, other, np.random.default_rng(7))
    assert set(out) == {"fd_pca", "fd_floor", "fd_independent", "marginal_error"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert out["fd_pca"] < out["fd_independent"]


def test_unfitted_raises():
    with pytest.raises(RuntimeError):
        FDPCA().score(np.zeros((3, 2, 2, 1)))


# ---- autocorrelation --------------------------------------------------------------------------------


def test_autocorrelation_iid_is_zero():
    t, chains, d, dims = 200, 16, 64, 8
    traj = np.random.default_rng(8).standard_normal((t, chains, d))
    r = autocorrelation(traj, n_dims=dims)
    assert r.shape == (t,) and r[0] == pytest.approx(1.0)
    for lag in (1, 2, 5, 50, 100):
        # The random projections are only approximately orthogonal, so series are mildly correlated.
        assert abs(r[lag]) < 4 * math.sqrt(d / dims) / math.sqrt(chains * dims * (t - lag))


def test_autocorrelation_ar1():
    t, chains, d, rho = 400, 64, 16, 0.8
    rng = np.random.default_rng(9)
    x = np.empty((t, chains, d))
    x[0] = rng.standard_normal((chains, d))
    for k in range(1, t):
        x[k] = rho * x[k - 1] + math.sqrt(1 - rho**2) * rng.standard_normal((chains, d))
    r = autocorrelation(x, n_dims=16)
    for lag in range(1, 8):
        assert r[lag] == pytest.approx(rho**lag, abs=0.03)
    assert abs(autocorrelation_scalar(r[:200])) < 0.03


def test_autocorrelation_stuck_chain_no_nan():
    rng = np.random.default_rng(10)
    traj = rng.standard_normal((200, 4, 10))
    mixing = autocorrelation(traj, n_dims=8)
    assert abs(mixing[1:150].mean()) < 0.05
    traj[:, 0] = 3.0  # chain 0 never moves, far from where the others wander
    r = autocorrelation(traj, n_dims=8)
    assert np.all(np.isfinite(r))
    # it carries much of the variance, and being stuck it stays correlated at every lag
    assert r[1:150].mean() > 0.3
    stuck = autocorrelation(np.ones((20, 3, 5)), n_dims=4)
    np.testing.assert_allclose(stuck, 1.0)


def _grouped_chains(rng, t, groups, chains, d, spread, frozen=False):
    """(T, groups, chains, D): each group's chains around their own mean ``spread * N(0, 1)`` (a clamped input
    pins a conditional step's chains near it), unit noise drawn afresh every time step (mixing) or once per chain
    (``frozen``)."""
    means = spread * rng.standard_normal((1, groups, 1, d))
    noise = rng.standard_normal((1 if frozen else t, groups, chains, d))
    return np.broadcast_to(means + noise, (t, groups, chains, d))


def test_autocorrelation_within_groups_reads_mixing_as_zero_and_pooling_reads_it_as_one():
    """Chains that share an input and mix (iid in time within their group), with group means far apart: the
    grouped estimator reads R ≈ 0 at every lag ℓ >= 1, within the noise of S = groups · chains · dims series,
    SE ≈ 1/sqrt(S (T - ℓ)) (x sqrt(D / dims): random projections overlap). Pooling the same chains over all
    groups, as if they had one input, reads the spread between group means as correlation: R ≈ var_between /
    (var_between + var_within) ≈ 0.98 at every lag, though every chain forgets its start at once."""
    t, groups, chains, d, dims = 200, 4, 8, 64, 16
    x = _grouped_chains(np.random.default_rng(12), t, groups, chains, d, spread=8.0)
    r = autocorrelation(x, n_dims=dims)
    assert r.shape == (t,) and r[0] == pytest.approx(1.0)
    for lag in (1, 2, 5, 50, 100):
        assert abs(r[lag]) < 4 * math.sqrt(d / dims) / math.sqrt(groups * chains * dims * (t - lag)), (lag, r[lag])
    assert abs(autocorrelation_scalar(r[:100])) < 0.01
    pooled = autocorrelation(x.reshape(t, groups * chains, d), n_dims=dims)
    assert pooled[1:100].min() > 0.9, pooled[1:100].min()


def test_autocorrelation_of_frozen_chains_is_one():
    """Each chain constant in time, chains of a group different: R(ℓ) = 1 at every lag, exactly (each series is a
    constant z_c, and the group's normalisation makes mean_c z_c² = 1). A group whose chains all sit on one
    image has no variance and counts as R = 1 too: next to a mixing group the mean is 1/2."""
    t, groups, chains, d = 60, 4, 8, 20
    rng = np.random.default_rng(13)
    np.testing.assert_allclose(autocorrelation(_grouped_chains(rng, t, groups, chains, d, 8.0, frozen=True)), 1.0)
    one_image = np.concatenate([rng.standard_normal((t, 1, chains, d)), np.ones((t, 1, chains, d))], axis=1)
    r = autocorrelation(one_image, n_dims=16)
    assert np.all(np.isfinite(r)) and abs(r[1:30].mean() - 0.5) < 0.02


def test_autocorrelation_within_groups_recovers_an_ar1_mixing_rate():
    """AR(1) chains, x_t = ρ x_{t-1} + sqrt(1 - ρ²) ε_t, around group means far apart: R(ℓ) = ρ^ℓ within
    groups; one group of all chains reads the group means instead (R ≈ 1 at every lag)."""
    t, groups, chains, d, rho = 400, 4, 16, 16, 0.8
    rng = np.random.default_rng(14)
    x = np.empty((t, groups, chains, d))
    x[0] = rng.standard_normal((groups, chains, d))
    for k in range(1, t):
        x[k] = rho * x[k - 1] + math.sqrt(1 - rho**2) * rng.standard_normal((groups, chains, d))
    x += 10.0 * rng.standard_normal((groups, 1, d))
    r = autocorrelation(x, n_dims=16)
    for lag in range(1, 8):
        assert r[lag] == pytest.approx(rho**lag, abs=0.03)
    assert abs(autocorrelation_scalar(r[:200])) < 0.03
    assert autocorrelation(x.reshape(t, groups * chains, d), n_dims=16)[20:200].mean() > 0.9


def test_autocorrelation_one_group_is_the_three_dimensional_call_and_bad_shapes_are_refused():
    x = np.random.default_rng(15).standard_normal((30, 6, 12))
    np.testing.assert_allclose(autocorrelation(x[:, None], seed=2), autocorrelation(x, seed=2), atol=1e-12)
    for bad in (np.zeros((30, 12)), np.zeros((30, 2, 3, 4, 12)), np.zeros((30, 0, 12))):
        with pytest.raises(ValueError, match=r"trajectory must be \(T, groups, chains, D\) or \(T, chains, D\)"):
            autocorrelation(bad)


def test_autocorrelation_seed_fixes_basis():
    traj = np.random.default_rng(11).standard_normal((30, 2, 12))
    np.testing.assert_array_equal(autocorrelation(traj, seed=3), autocorrelation(traj, seed=3))
    assert not np.allclose(autocorrelation(traj, seed=3), autocorrelation(traj, seed=4))


def test_autocorrelation_scalar_default_last():
    r = np.arange(100.0)
    assert autocorrelation_scalar(r) == pytest.approx(np.mean(np.arange(90, 100)))
    assert autocorrelation_scalar(r, last=1) == 99.0
    assert autocorrelation_scalar(np.array([1.0, 0.5, 0.2])) == 0.2  # at least one lag
    with pytest.raises(ValueError):
        autocorrelation_scalar(r, last=0)


# ---- adaptive correlation penalty -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cp, a, a_prev, expected",
    [
        (0.1, 0.008, 0.02, 0.1 * 0.7),  # a < tau: 0.6 + 0.2 * 0.5
        (0.1, 0.0, None, 0.1 * 0.6),  # a = 0: strongest relaxation
        (0.1, 0.02, 0.018, 0.1 * 1.2),  # increasing, a < 1.8 tau = 0.0288
        (0.1, 0.03, 0.02, 0.1 * 1.5),  # increasing, a >= 1.8 tau
        (0.1, 0.02, 0.025, 0.1 * 0.95),  # above tau but decreasing
        (0.1, 0.02, None, 0.1 * 0.95),  # first call: a_prev = +inf, not increasing
        (0.0, 0.03, 0.02, 1e-5 * 1.5),  # cp raised to cp_min first
        (1e-5, 0.008, 0.02, 0.0),  # 1e-5 * 0.7 < cp_min -> switched off
    ],
)
def test_adaptive_penalty_branches(cp, a, a_prev, expected):
    got = adaptive_correlation_penalty(cp, a, a_prev, tau=0.016, cp_min=1e-5)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_adaptive_penalty_validation():
    with pytest.raises(ValueError, match="cp"):
        adaptive_correlation_penalty(-0.1, 0.01, None)
    with pytest.raises(ValueError, match="NaN"):
        adaptive_correlation_penalty(0.1, float("nan"), None)
    with pytest.raises(ValueError, match="NaN"):
        adaptive_correlation_penalty(0.1, 0.01, float("nan"))
    with pytest.raises(ValueError, match="tau"):
        adaptive_correlation_penalty(0.1, 0.01, None, tau=0.0)
