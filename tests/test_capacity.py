import pytest

from dtm_lite.core.capacity import CapacityError, check_capacity, required_side, smallest_preset, visible_capacity
from dtm_lite.core.graph import GridGraph


def test_seed_examples():
    g = GridGraph.from_preset("80_12")
    assert visible_capacity(g) == 3200
    check_capacity(g, 32 * 32 * 3, 1)  # 3,072 binary pixels fit 80_12
    assert smallest_preset(32 * 32 * 3, 4) is None  # 12,288 spins: no preset
    assert required_side(32 * 32 * 3, 4) == 157
    assert smallest_preset(28 * 28, 1, degree=12) == "44_12"
    assert smallest_preset(32 * 32 * 3, 1, degree=12) == "80_12"


def test_capacity_error_names_the_fix():
    with pytest.raises(CapacityError, match="No preset fits: you need side >= 157") as err:
        check_capacity(GridGraph.from_preset("80_12"), 3072, 4)
    assert isinstance(err.value, ValueError)
    assert "12288 visible spins" in str(err.value)
    with pytest.raises(CapacityError, match="4096 visible spins .* 4050 colour-0 sites.*'140_12'"):
        check_capacity(GridGraph.from_preset("90_12"), 64 * 64, 1)
    with pytest.raises(CapacityError, match=r"'70_12' \(same degree\)"):
        check_capacity(GridGraph.from_preset("50_12"), 32 * 32 * 2, 1)


def test_labels_count():
    g = GridGraph.from_preset("80_12")
    check_capacity(g, 3072, 1, n_labels=128)
    with pytest.raises(CapacityError, match="label bits"):
        check_capacity(g, 3072, 1, n_labels=129)


def test_required_side_is_minimal():
    for bits in range(1, 400):
        s = required_side(bits)
        assert (s * s + 1) // 2 >= bits and (s == 2 or ((s - 1) ** 2 + 1) // 2 < bits)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_numbers(bad):
    with pytest.raises(ValueError):
        required_side(bad)
