"""Graph capacity: how many visible spins a grid graph can host.

Visible spins live on colour-0 sites only (as in the public DTM replication), so a model of images with
``n_pixels`` channel values at ``L`` spins each, plus ``n_labels`` label bits, needs

    n_pixels * L + n_labels <= visible_capacity(graph) = ceil(side**2 / 2).

Every other colour-0 site and every colour-1 site is hidden.
"""

from __future__ import annotations

import math

from dtm_lite.core.graph import PRESETS, GridGraph
from dtm_lite.core.validation import check_int


class CapacityError(ValueError):
    """The visible bits do not fit on the graph's colour-0 sites."""


def visible_capacity(graph: GridGraph) -> int:
    """Number of colour-0 sites, ``ceil(side**2 / 2)``: the most visible spins the graph can hold."""
    return int((graph.colors == 0).sum())


def _bits(n_pixels: int, levels: int, n_labels: int) -> int:
    return check_int("n_pixels", n_pixels, 1) * check_int("levels", levels, 1) + check_int("n_labels", n_labels, 0)


def required_side(n_pixels: int, levels: int = 1, n_labels: int = 0) -> int:
    """Smallest side with ``ceil(side**2 / 2) >= n_pixels * levels + n_labels`` (a torus also needs it even)."""
    bits = _bits(n_pixels, levels, n_labels)
    side = max(2, math.isqrt(2 * bits))
    while (side * side + 1) // 2 < bits:
        side += 1
    while side > 2 and ((side - 1) ** 2 + 1) // 2 >= bits:
        side -= 1
    return side


def smallest_preset(n_pixels: int, levels: int = 1, n_labels: int = 0, degree: int | None = None) -> str | None:
    """Name of the smallest preset (by side, then degree) that fits, optionally of a given degree; else None."""
    bits = _bits(n_pixels, levels, n_labels)
    for name, (side, jumps) in PRESETS.items():  # sorted by side, then degree
        if degree is not None and 4 * len(jumps) != degree:
            continue
        if (side * side + 1) // 2 >= bits:
            return name
    return None


def check_capacity(
    graph: GridGraph, n_pixels: int, levels: int = 1, n_labels: int = 0, *, unit: str = "pixel values"
) -> None:
    """Raise CapacityError, with the numbers and a preset that would fit, if the bits do not fit.

    ``n_pixels`` values of ``levels`` bits each: channel values x levels for binary / thermometer codes,
    or (``unit="pixels"``) pixels x the code width of a palette (``Encoding.capacity_counts``).
    """
    bits = _bits(n_pixels, levels, n_labels)
    cap = visible_capacity(graph)
    if bits <= cap:
        return
    what = f"{n_pixels} {unit} x {levels} bit(s) each" + (f" + {n_labels} label bits" if n_labels else "")
    head = f"{what} = {bits} visible spins do not fit {graph!r}, which has {cap} colour-0 sites."
    same_degree = smallest_preset(n_pixels, levels, n_labels, degree=graph.degree)
    any_degree = smallest_preset(n_pixels, levels, n_labels)
    if same_degree is not None:
        fix = f" Use preset '{same_degree}' (same degree) or larger."
    elif any_degree is not None:
        fix = f" No preset of degree {graph.degree} fits; the smallest preset that fits is '{any_degree}'."
    else:
        side = required_side(n_pixels, levels, n_labels)
        fix = (
            f" No preset fits: you need side >= {side} ({side + side % 2} for a torus), e.g. "
            f"GridGraph({side + side % 2}, jumps), or fewer bits / a smaller image."
        )
    raise CapacityError(head + fix)
