"""Grid graphs for DTMs: a side x side lattice where every node links to a fixed set of offsets.

A graph is given by its ``side`` and a list of *jumps* ``(dx, dy)``; each jump is used in its four
rotations ``(dx, dy), (-dy, dx), (-dx, -dy), (dy, -dx)``, so ``degree = 4 * len(jumps)``. Every jump
has odd ``dx + dy``, so every edge joins the two colours of the chessboard colouring
``colour(i, j) = (i + j) % 2`` and block Gibbs sampling can alternate the two colours.

Node ``(i, j)`` (row ``i``, column ``j``) has index ``i * side + j``. Edges are listed offset-major:
for offset ``o`` and every colour-0 node ``u`` (ascending), the edge ``(u, u + offset_o)``. Each edge
has exactly one colour-0 end, so this enumerates every edge once.

Presets are named ``"side_degree"`` (``"80_12"``); the int literal ``80_12`` (= 8012) is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dtm_lite.core.validation import check_int

JUMPS_A: tuple[tuple[int, int], ...] = ((0, 1), (4, 1), (10, 9), (11, 14), (23, 6))
JUMPS_B: tuple[tuple[int, int], ...] = (
    (0, 1), (6, 1), (12, 5), (11, 14), (23, 6), (3, 28), (6, 33), (20, 35), (34, 29), (47, 20),
    (4, 5), (2, 9), (1, 14), (17, 8), (8, 21), (11, 26), (21, 24), (31, 18), (23, 34),
)  # fmt: skip
_A_PLUS = JUMPS_A + ((3, 28), (6, 33), (20, 35))


def _presets() -> dict[str, tuple[int, tuple[tuple[int, int], ...]]]:
    table: list[tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = [
        ((3, 4, 6), ((0, 1),)),
        ((8, 20, 42, 44, 50, 60, 70, 80, 90), JUMPS_A[:2]),
        ((44, 50, 60, 70, 80, 90, 140, 150), JUMPS_A[:3]),
        ((44, 50, 60, 70, 80, 90), JUMPS_A[:4]),
        ((44, 50, 60, 70, 80, 90), JUMPS_A[:5]),
        ((70,), _A_PLUS[:6]),
        ((60,), _A_PLUS[:8]),
        ((80,), JUMPS_B[:6]),
        ((70, 80, 120), JUMPS_B[:9]),
        ((60, 100), JUMPS_B[:10]),
        ((60,), JUMPS_B[:11]),
        ((80,), JUMPS_B[:12]),
        ((70,), JUMPS_B[:13]),
        ((80, 100), JUMPS_B[:15]),
        ((100,), JUMPS_B[:19]),
    ]
    out = {}
    for sides, jumps in table:
        for side in sides:
            out[f"{side}_{4 * len(jumps)}"] = (side, jumps)
    return dict(sorted(out.items(), key=lambda kv: (kv[1][0], len(kv[1][1]))))


PRESETS = _presets()
"""Preset name -> (side, jumps). Odd-sided presets (``3_4``) are open grids; the rest are tori."""


def preset_name(preset: str | int) -> str:
    """Normalise ``"80_12"`` or the int literal ``80_12`` (8012) to ``"80_12"``; raise if unknown."""
    if isinstance(preset, bool) or not isinstance(preset, str | int | np.integer):
        raise TypeError(f"preset must be a string like '80_12' or the int 80_12, got {preset!r}")
    if isinstance(preset, str):
        name = preset.strip()
    else:
        digits = str(int(preset))
        # 80_12 == 8012: the degree is the trailing one or two digits that name a preset.
        candidates = [f"{digits[:k]}_{digits[k:]}" for k in range(1, len(digits))]
        name = next((c for c in candidates if c in PRESETS), digits)
    if name not in PRESETS:
        raise ValueError(f"unknown graph preset {preset!r}; valid presets are: {', '.join(PRESETS)}")
    return name


@dataclass(frozen=True, eq=False)
class GridGraph:
    """A bipartite grid graph: ``side`` x ``side`` nodes, each linked to the rotations of ``jumps``.

    Attributes:
        side: grid side; ``n_nodes = side**2``.
        jumps: the jumps, each used in four rotations.
        torus: wrap coordinates modulo ``side`` (needs an even side to stay bipartite).
        degree: ``4 * len(jumps)``; on a torus every node has exactly this many neighbours.
        offsets: int array (degree, 2) of ``(dx, dy)`` in rotation order per jump.
        colors: int8 array (n_nodes,), ``(i + j) % 2``; colour 0 hosts the visible spins.
        edges: int array (n_edges, 2) of (colour-0 node, colour-1 node).
        edge_offset: int array (n_edges,), which offset each edge uses.
    """

    side: int
    jumps: tuple[tuple[int, int], ...]
    torus: bool = True
    name: str | None = None
    offsets: np.ndarray = field(init=False, repr=False)
    colors: np.ndarray = field(init=False, repr=False)
    edges: np.ndarray = field(init=False, repr=False)
    edge_offset: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        side = check_int("side", self.side, 2)
        jumps = tuple((int(dx), int(dy)) for dx, dy in self.jumps)
        if not jumps:
            raise ValueError("a grid graph needs at least one jump, e.g. [(0, 1)]")
        for dx, dy in jumps:
            if (dx + dy) % 2 == 0:
                raise ValueError(
                    f"jump {(dx, dy)} has even dx + dy, so it would join two nodes of the same colour; "
                    "every jump needs odd dx + dy to keep the graph bipartite"
                )
        if self.torus and side % 2:
            raise ValueError(
                f"a torus needs an even side to stay two-coloured (got side={side}); use an even side or torus=False"
            )
        offsets = np.array(
            [rot for dx, dy in jumps for rot in ((dx, dy), (-dy, dx), (-dx, -dy), (dy, -dx))], dtype=np.int64
        )
        if self.torus:
            wrapped = {(int(dx) % side, int(dy) % side) for dx, dy in offsets}
            if len(wrapped) < len(offsets):
                raise ValueError(
                    f"side {side} is too small for jumps {list(jumps)}: two offsets reach the same neighbour "
                    "on the torus; use a larger side or shorter jumps"
                )
        ii, jj = np.divmod(np.arange(side * side), side)
        colors = ((ii + jj) % 2).astype(np.int8)
        c0 = np.flatnonzero(colors == 0)
        i0, j0 = ii[c0], jj[c0]
        edges, edge_offset = [], []
        for k, (dx, dy) in enumerate(offsets):
            i1, j1 = i0 + dx, j0 + dy
            if self.torus:
                keep = np.ones(len(c0), dtype=bool)
                i1, j1 = i1 % side, j1 % side
            else:
                keep = (i1 >= 0) & (i1 < side) & (j1 >= 0) & (j1 < side)
            edges.append(np.stack([c0[keep], i1[keep] * side + j1[keep]], axis=1))
            edge_offset.append(np.full(int(keep.sum()), k))
        object.__setattr__(self, "side", int(side))
        object.__setattr__(self, "jumps", jumps)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "edges", np.concatenate(edges).astype(np.int64))
        object.__setattr__(self, "edge_offset", np.concatenate(edge_offset).astype(np.int64))
        for arr in (self.offsets, self.colors, self.edges, self.edge_offset):
            arr.setflags(write=False)

    @classmethod
    def from_preset(cls, preset: str | int) -> GridGraph:
        """The preset ``"side_degree"`` of :data:`PRESETS`, the public DTM replication's table (odd: open grids)."""
        name = preset_name(preset)
        side, jumps = PRESETS[name]
        return cls(side, jumps, torus=side % 2 == 0, name=name)

    @property
    def degree(self) -> int:
        return 4 * len(self.jumps)

    @property
    def n_nodes(self) -> int:
        return self.side * self.side

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def neighbors(self, node: int) -> np.ndarray:
        """Sorted neighbour indices of ``node``."""
        e = self.edges
        return np.sort(np.concatenate([e[e[:, 0] == node, 1], e[e[:, 1] == node, 0]]))

    def __repr__(self) -> str:
        label = f"'{self.name}', " if self.name else ""
        return (
            f"GridGraph({label}side={self.side}, degree={self.degree}, torus={self.torus}, "
            f"n_nodes={self.n_nodes}, n_edges={self.n_edges})"
        )
