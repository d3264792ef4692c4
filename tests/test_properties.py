"""Property-based checks (hypothesis) of the pure pieces: encodings, capacity, graphs, layouts."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dtm_lite.core import sampler as smp
from dtm_lite.core.capacity import required_side, smallest_preset
from dtm_lite.core.encoding import decode, encode
from dtm_lite.core.graph import PRESETS, GridGraph

frames = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)).flatmap(
    lambda shape: arrays(np.uint8, shape)
)


@given(frames, st.integers(1, 6))
def test_thermometer_decode_is_nearest_level(f, levels):
    values = f.reshape(len(f), -1)  # (n, H*W*C) channel values, pixel-major, channel-minor: the bit order
    bits = encode(f, levels)
    if levels == 1:  # binary: one bit per value, set iff v / 255 > 0.5, i.e. v >= 128
        expected = (values >= 128).astype(np.uint8)
        level = expected
    else:  # thermometer: the value's nearest level q of 0..L (never a tie: 2 v L is even, 255 (2q + 1) odd)
        level = np.abs(values[..., None] / 255 - np.arange(levels + 1) / levels).argmin(-1)
        expected = (np.arange(levels) < level[..., None]).astype(np.uint8).reshape(len(f), -1)  # q ones, then 0s
    assert bits.dtype == np.uint8
    np.testing.assert_array_equal(bits, expected)
    dec = decode(bits, f.shape[1:], levels)
    assert dec.shape == f.shape
    np.testing.assert_allclose(dec.reshape(len(f), -1), level / levels, rtol=0, atol=1e-6)  # the nearest level
    assert np.abs(dec - f / 255.0).max() <= 0.5 / levels + 1e-6


@given(st.integers(1, 30_000), st.integers(1, 4), st.integers(0, 100))
def test_smallest_preset_fits_and_required_side_is_tight(n_pixels, levels, n_labels):
    bits = n_pixels * levels + n_labels
    side = required_side(n_pixels, levels, n_labels)
    assert (side * side + 1) // 2 >= bits > ((side - 1) ** 2 + 1) // 2 or side == 2
    name = smallest_preset(n_pixels, levels, n_labels)
    if name is not None:
        assert PRESETS[name][0] >= side
    else:
        assert all(s < side for s, _ in PRESETS.values())


@settings(max_examples=10, deadline=None)
@given(
    st.integers(2, 12).map(lambda k: 2 * k),
    st.lists(st.sampled_from([(0, 1), (2, 1), (1, 4), (3, 2)]), min_size=1, max_size=2, unique=True),
    st.booleans(),
)
def test_layout_round_trips_and_planes_hold_edge_weights(side, jumps, torus):
    try:
        g = GridGraph(side, jumps, torus=torus)
    except ValueError:
        return  # side too small for these jumps on a torus
    lat = smp.lattice(g)
    x = jnp.arange(3 * g.n_nodes, dtype=jnp.float32).reshape(3, g.n_nodes)
    assert np.array_equal(np.asarray(smp.from_lattice(lat, *smp.to_lattice(lat, x))), np.asarray(x))
    w = jnp.arange(1, g.n_edges + 1, dtype=jnp.float32)
    w0, _ = smp.weight_planes(lat, w)
    assert np.array_equal(np.asarray(smp.edge_values(lat, w0[..., 0])), np.asarray(w))
