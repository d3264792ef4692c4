import numpy as np
import pytest

from dtm_lite.core.graph import PRESETS, GridGraph, preset_name


def test_edge_counts_of_reference():
    assert GridGraph.from_preset("60_12").n_edges == 21_600
    assert GridGraph.from_preset("80_12").n_edges == 38_400


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_bipartite_and_regular(name):
    g = GridGraph.from_preset(name)
    side, degree = map(int, name.split("_"))
    assert (g.side, g.degree, g.n_nodes) == (side, degree, side * side)
    assert g.colors.shape == (g.n_nodes,)
    i, j = np.divmod(np.arange(g.n_nodes), side)
    assert np.array_equal(g.colors, (i + j) % 2)
    assert np.all(g.colors[g.edges[:, 0]] == 0) and np.all(g.colors[g.edges[:, 1]] == 1)
    # no duplicate edges
    assert len({(int(u), int(v)) for u, v in g.edges}) == g.n_edges
    counts = np.bincount(g.edges.ravel(), minlength=g.n_nodes)
    if g.torus:
        assert np.all(counts == degree)
        assert g.n_edges == side * side * degree // 2
    else:
        assert counts.max() <= degree


def test_open_grid_degrees():
    g = GridGraph.from_preset("3_4")
    assert not g.torus
    assert np.bincount(g.edges.ravel(), minlength=9).tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2]


def test_int_literal_and_unknown_preset():
    assert GridGraph.from_preset(80_12).name == "80_12"
    assert preset_name(100_40) == "100_40"
    with pytest.raises(ValueError, match="valid presets are: 3_4, 4_4"):
        GridGraph.from_preset("601")
    with pytest.raises(ValueError, match="unknown graph preset"):
        GridGraph.from_preset(601)


def test_custom_graph_and_bad_jumps():
    g = GridGraph(10, [(0, 1), (2, 3)])
    assert g.degree == 8 and g.n_edges == 400
    with pytest.raises(ValueError, match="odd dx \\+ dy"):
        GridGraph(10, [(1, 1)])
    with pytest.raises(ValueError, match="even side"):
        GridGraph(9, [(0, 1)])
    with pytest.raises(ValueError, match="too small"):
        GridGraph(2, [(0, 1)])


def test_neighbours_follow_offsets():
    g = GridGraph.from_preset("20_8")
    node = 5 * 20 + 7
    expected = sorted(((5 + dx) % 20) * 20 + (7 + dy) % 20 for dx, dy in g.offsets)
    assert g.neighbors(node).tolist() == expected
