"""The sampler kernel's parts: the polynomial exp2, the division-free Gibbs decision, the chain padding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtm_lite.core import sampler as smp
from dtm_lite.core.graph import GridGraph


def test_exp2_within_two_ulp():
    y = np.concatenate([np.linspace(-126, 126, 400_001), np.linspace(-3, 3, 400_001)]).astype(np.float32)
    got = np.asarray(jax.jit(smp._exp2)(y), np.float64)
    rel = np.abs(got / np.exp2(y.astype(np.float64)) - 1)
    assert rel.max() < 2 * 2.0**-24
    # clipped, finite and positive beyond the float32 exponent range
    far = np.asarray(jax.jit(smp._exp2)(np.array([-1e4, -200, 200, 1e4], np.float32)))
    assert np.all(np.isfinite(far)) and np.all(far > 0)


@pytest.mark.parametrize("poly_exp", [False, True])
def test_spin_up_is_u_below_sigmoid(poly_exp):
    rng = np.random.default_rng(0)
    u = (rng.integers(0, 1 << 24, 1_000_000) * 2.0**-24).astype(np.float32)
    h = rng.normal(0, 3, u.shape).astype(np.float32)
    beta = jnp.float32(0.7)
    got = np.asarray(jax.jit(smp._spin_up, static_argnums=3)(u, beta, h, poly_exp))
    p = 1 / (1 + np.exp(-2 * 0.7 * h.astype(np.float64)))
    ref = u < p
    differ = got != ref
    # disagreements only where u sits within float rounding of the threshold
    assert np.all(np.abs(u[differ] - p[differ]) < 1e-6 * np.maximum(p[differ], 1e-30) + 1e-7)
    assert differ.mean() < 1e-4
    assert not bool(smp._spin_up(jnp.float32(0.5), beta, jnp.float32(np.nan), poly_exp))  # NaN field: spin -1


@pytest.mark.parametrize("n_chains, multiple", [(3, 16), (16, 16), (20, 1), (1, 16)])
def test_padded_chains_are_invisible(n_chains, multiple):
    g = GridGraph.from_preset("4_4")
    lat = smp.lattice(g)
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.5, g.n_edges)
    b = rng.normal(0, 0.5, (n_chains, g.n_nodes))
    clamped = np.zeros((n_chains, g.n_nodes), bool)
    clamped[:, 3] = True
    spins = np.where(rng.random((n_chains, g.n_nodes)) < 0.5, -1.0, 1.0)
    params = smp.make_params(lat, w, b, clamped)
    x0, x1 = smp.to_lattice(lat, jnp.asarray(spins, jnp.float32), fill=1.0)
    shapes = []

    def observe(acc, x0, x1):
        shapes.append((x0.shape, x1.shape))
        return acc + 1, smp.from_lattice(lat, x0, x1)

    y0, y1, acc, outs = smp.run_chains(
        lat, params, jax.random.key(0), x0, x1, jnp.ones(7), warmup_sweeps=3, n_samples=3, sweeps_per_sample=2,
        observe=observe, acc=0, chain_multiple=multiple,
    )  # fmt: skip
    assert y0.shape == x0.shape and y1.shape == x1.shape and int(acc) == 3
    assert all(s == (x0.shape, x1.shape) for s in shapes)
    outs = np.asarray(outs)
    assert outs.shape == (3, n_chains, g.n_nodes)
    assert np.array_equal(outs[:, :, 3], np.broadcast_to(spins[:, 3], (3, n_chains)))  # clamps hold
    assert set(np.unique(outs)) <= {-1.0, 1.0}
