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
