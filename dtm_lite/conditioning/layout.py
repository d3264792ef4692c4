"""Layout conditioning: a DTM that draws an object where a sampled layout puts it.

A pairwise model with local couplings places objects nearly independently, so the number of objects in
its samples is roughly Poisson: at most ``e^-1 = 0.37`` of them show exactly one, however well it is
trained (measured on the LunarLander lander: 0.13 against the data's 0.80). A *layout model* splits the
picture into two levels:

1. the **layout** ``ℓ``: the pixel of the largest object's centre (the largest 8-connected blob of at
   least ``config.layout_min_size`` pixels of colour ``config.layout_color``, its mean row and column
   rounded), or "none" when a frame has no such blob. Its prior ``p(ℓ)`` is the histogram of the layouts of
   every training frame, ``counts (H*W + 1,)`` in the model's state (``DTMState.plugin_state["layout_counts"]``,
   the last bin "none"). A labelled model (``n_classes = K``) counts ``(K, H*W + 1)``, one row per class, so
   that a label says where the object goes (``p(ℓ | class)``) and a frame's layout says which class it likely
   is (``p(class | ℓ)``, :func:`class_posterior`). With ``config.label_gates_layout`` the class is also the
   "action" that picks the picture's layout weights below (one set per class): the label then also says where
   within the pixel ℓ, and how, the object is drawn (a pixel next to a zone border holds objects of both sides);
2. the **picture** ``p(x | ℓ)``: the DTM with the layout as a conditioning input. The layout is rendered as
   a frame (background ``(0, ..., 0)`` everywhere, the object's colour at ``ℓ``) and enters each visible
   bit's field through the learned local weights of :mod:`dtm_lite.conditioning.inputs` (a world model's
   inputs, with one "action", or one per class).

Sampling is ancestral: ``ℓ ~ p(ℓ)``, then the DTM's chains given ``ℓ``. The Ising model still draws the
object (its shape, size and colour) and everything else; the layout only says where the one object sits.
Ids: pixel ``(r, c)`` is ``r * W + c``; ``H * W`` is "none".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.conditioning.inputs import InputField, conditioning_index, input_actions, input_frames
from dtm_lite.core.conditioner import Batch
from dtm_lite.core.config import DTMConfig
from dtm_lite.core.encoding import Encoding
from dtm_lite.evaluation.metrics import ObjectClass, object_stats

LAYOUT_TOL = 0.25  # a pixel is the object's when every channel lies within this of layout_color


def object_class(color: tuple[float, ...]) -> ObjectClass:
    """The :class:`ObjectClass` a layout marks: pixels within :data:`LAYOUT_TOL` of ``color`` in every channel."""
    return ObjectClass("layout object", color=color, tol=LAYOUT_TOL)


def layout_ids(frames: np.ndarray, color: tuple[float, ...], min_size: int = 2) -> np.ndarray:
    """Layouts of frames ``(n, H, W, C)`` in [0, 1]: ids ``(n,)`` int32, ``r * W + c`` for the centre ``(r, c)``
    (rounded half up) of the largest blob of at least ``min_size`` pixels, ``H * W`` for a frame without one."""
    n, h, w = np.shape(frames)[:3]
    s = object_stats(frames, object_class(color), min_size=min_size)
    r = np.floor(np.nan_to_num(s.row, nan=0.0) + 0.5).astype(np.int64)
    c = np.floor(np.nan_to_num(s.col, nan=0.0) + 0.5).astype(np.int64)
    return np.where(s.has_blob, r * w + c, h * w).astype(np.int32)


def render_layouts(ids: np.ndarray, background: np.ndarray, marker: np.ndarray) -> np.ndarray:
    """The layout frames' bits ``(n, H*W*bpp)`` uint8 of ids ``(n,)``: ``background`` ``(H*W*bpp,)`` (the
    encoded background frame) with pixel ``id``'s bits replaced by ``marker`` ``(bpp,)`` (the encoded
    object colour); the id ``H*W`` ("none") leaves the background alone."""
    ids = np.asarray(ids, np.int64)
    bpp = len(marker)
    n_pix = len(background) // bpp
    out = np.tile(np.asarray(background, np.uint8).reshape(n_pix, bpp), (len(ids), 1, 1))
    rows = np.flatnonzero(ids < n_pix)
    out[rows, ids[rows]] = marker
    return out.reshape(len(ids), n_pix * bpp)


def count_layouts(counts: jax.Array, ids: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """The prior's update for one batch: ``counts`` plus the histogram of ``ids (B,)``. ``counts`` is
    ``(H*W + 1,)`` int32, or ``(K, H*W + 1)`` for a labelled model, whose row k counts the frames of class
    ``labels == k``."""
    if labels is None:
        return counts + jnp.bincount(ids, length=counts.shape[-1]).astype(counts.dtype)
    return counts.at[labels, ids].add(1)


def sample_layouts(key: jax.Array, counts: jax.Array | np.ndarray, n: int) -> np.ndarray:
    """``n`` layout ids from the prior ``p(ℓ) = counts / sum(counts)`` (uniform over every id, "none"
    included, while the counts are all 0: an untrained model). Returns ``(n,)`` int32. ``counts`` ``(L,)``
    or one row per sample ``(n, L)`` (a labelled model's rows of the requested classes)."""
    counts = jnp.asarray(counts, jnp.float32)
    logits = jnp.where(counts.sum(-1, keepdims=True) > 0, jnp.log(counts), jnp.zeros_like(counts))
    shape = (n,) if counts.ndim == 1 else None
    return np.asarray(jax.random.categorical(key, logits, shape=shape), np.int32)


def class_posterior(counts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """A labelled layout model's ``p(class | ℓ)`` ``(n, K)`` for layout ids ``(n,)``, from its counts
    ``(K, H*W + 1)``: the classes of the training frames with that layout, by Bayes' rule on the counted
    ``p(class, ℓ)``. A layout no training frame had gets the class prior ``p(class)``."""
    c = np.asarray(counts, np.float64)
    joint = c[:, np.asarray(ids, np.int64)].T  # (n, K)
    prior = c.sum(1) / c.sum() if c.sum() else np.full(len(c), 1.0 / len(c))
    seen = joint.sum(1, keepdims=True)
    return np.where(seen > 0, joint / np.maximum(seen, 1.0), prior)


def positions_to_ids(positions: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``(n, 2)`` integer ``(row, col)`` pixels (``(-1, -1)``: no object) -> ids ``(n,)`` int32, ``r * W + c``
    computed in int64 whatever the caller's integer dtype (uint8, int8, ...); a clear error for anything else."""
    h, w = hw
    p = np.asarray(positions)
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(
            f"layout must be integer (row, col) pixel positions of shape (n, 2) (or one (row, col) for all), "
            f"(-1, -1) for no object; got {p.dtype} of shape {p.shape}"
        )
    raw = p
    if p.dtype == np.uint64:  # beyond int64: outside any frame (the conversion below would wrap them)
        p = np.minimum(p, np.uint64(2**62))
    p = p.astype(np.int64)  # the id arithmetic r * W + c would overflow a small dtype (uint8, int8)
    none = (p[:, 0] == -1) & (p[:, 1] == -1)
    bad = ~none & ((p[:, 0] < 0) | (p[:, 0] >= h) | (p[:, 1] < 0) | (p[:, 1] >= w))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"layout[{i}] = {tuple(int(v) for v in raw[i])} lies outside the {h}x{w} frame; "
            "give rows in 0..H-1 and columns in 0..W-1, or (-1, -1) for no object"
        )
    return np.where(none, h * w, p[:, 0] * w + p[:, 1]).astype(np.int32)


def ids_to_positions(ids: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Ids ``(n,)`` -> ``(n, 2)`` int ``(row, col)``, ``(-1, -1)`` for "none" (the inverse of
    :func:`positions_to_ids`)."""
    h, w = hw
    ids = np.asarray(ids, np.int64)
    pos = np.stack(np.divmod(ids, w), axis=1)
    pos[ids >= h * w] = -1
    return pos


# ---------------------------------------------------------------------- layout dynamics (world models)
#
# A world model with a layout (``n_actions > 0`` and ``layout_color``) also learns how the object moves:
# p(ℓ_t+1 | ℓ_t, ℓ_t-1, a_t), a table of counts ``moves (A, N_CONTEXTS, N_OUTCOMES)`` int32 in its state.
# Context: the previous move ``ℓ_t - ℓ_t-1`` as one of the (2R+1)^2 offsets within MOVE_RADIUS, or "unknown"
# (one previous frame only, no object at t-1, or a larger jump); each of them twice, for ℓ_t inside the
# frame and on its border (where objects leave); or "none" (no object at t). Outcome: the next move
# ``ℓ_t+1 - ℓ_t`` as an offset, "none" (the object leaves), or "elsewhere" (a larger jump, or an object
# appearing: its place is then drawn from the layout prior). LunarLander's lander moves at most 2 pixels
# between two kept frames (frame stride 2), and leaves the picture only from its border.

MOVE_RADIUS = 2
N_OFFSETS = (2 * MOVE_RADIUS + 1) ** 2
UNKNOWN = N_OFFSETS  # contexts: offsets, unknown (inside); the same + BORDER (on the border); NOW_NONE
BORDER = N_OFFSETS + 1
NOW_NONE = 2 * BORDER
GOES_NONE, ELSEWHERE = N_OFFSETS, N_OFFSETS + 1  # outcomes after the offsets
N_CONTEXTS = 2 * BORDER + 1
N_OUTCOMES = N_OFFSETS + 2


def _offset_index(a: np.ndarray, b: np.ndarray, w: int) -> np.ndarray:
    """Index in 0..N_OFFSETS-1 of the move from pixel id ``a`` to ``b`` (ids of positions), -1 if farther
    than MOVE_RADIUS in a row or column."""
    (ra, ca), (rb, cb) = np.divmod(a, w), np.divmod(b, w)
    dr, dc = rb - ra, cb - ca
    inside = (np.abs(dr) <= MOVE_RADIUS) & (np.abs(dc) <= MOVE_RADIUS)
    side = 2 * MOVE_RADIUS + 1
    return np.where(inside, (dr + MOVE_RADIUS) * side + (dc + MOVE_RADIUS), -1)


def move_contexts(before: np.ndarray | None, now: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Contexts ``(n,)`` of layouts ``now`` (ℓ_t) and ``before`` (ℓ_t-1, or None with one previous frame)."""
    h, w = hw
    now = np.asarray(now, np.int64)
    if before is None:
        ctx = np.full(len(now), UNKNOWN)
    else:
        before = np.asarray(before, np.int64)
        both = (before < h * w) & (now < h * w)
        off = _offset_index(np.where(both, before, 0), np.where(both, now, 0), w)
        ctx = np.where(both & (off >= 0), off, UNKNOWN)
    r, c = np.divmod(now, w)
    border = (r == 0) | (r == h - 1) | (c == 0) | (c == w - 1)
    return np.where(now >= h * w, NOW_NONE, ctx + BORDER * border).astype(np.int32)


def move_outcomes(now: np.ndarray, after: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Outcomes ``(n,)`` of the move from layouts ``now`` (ℓ_t) to ``after`` (ℓ_t+1)."""
    h, w = hw
    now, after = np.asarray(now, np.int64), np.asarray(after, np.int64)
    both = (now < h * w) & (after < h * w)
    off = _offset_index(np.where(both, now, 0), np.where(both, after, 0), w)
    out = np.where(both & (off >= 0), off, ELSEWHERE)
    return np.where(after >= h * w, GOES_NONE, out).astype(np.int32)


def count_moves(moves: jax.Array, actions: jax.Array, contexts: jax.Array, outcomes: jax.Array) -> jax.Array:
    """``moves (A, N_CONTEXTS, N_OUTCOMES)`` plus one count for each transition of a batch ``(B,)``."""
    flat = (actions * N_CONTEXTS + contexts) * N_OUTCOMES + outcomes
    return moves + jnp.bincount(flat, length=moves.size).reshape(moves.shape).astype(moves.dtype)


def sample_next_layouts(
    key: jax.Array,
    moves: np.ndarray,
    prior: np.ndarray,
    actions: np.ndarray,
    before: np.ndarray | None,
    now: np.ndarray,
    hw: tuple[int, int],
) -> np.ndarray:
    """Next layouts ``(n,)`` ℓ_t+1 ~ p(ℓ_t+1 | ℓ_t, ℓ_t-1, a_t) from the counted moves. A context never seen
    with that action falls back to all actions, then to "unknown" (and for an empty table, to the prior
    alone). A move that would leave the frame, and "elsewhere", draw the place from the prior's positions.
    ``moves`` ``(A, N_CONTEXTS, N_OUTCOMES)``, ``prior`` the layout counts ``(H*W + 1,)``."""
    h, w = hw
    moves = np.asarray(moves, np.float64)
    ctx = move_contexts(before, now, hw)
    a = np.asarray(actions, np.int64)
    rows = moves[a, ctx]  # (n, N_OUTCOMES)
    rows = np.where(rows.sum(1, keepdims=True) > 0, rows, moves.sum(0)[ctx])
    unknown = np.where(ctx == NOW_NONE, NOW_NONE, UNKNOWN + BORDER * (ctx >= BORDER))
    rows = np.where(rows.sum(1, keepdims=True) > 0, rows, moves.sum(0)[unknown])
    rows = np.where(rows.sum(1, keepdims=True) > 0, rows, np.eye(N_OUTCOMES)[np.full(len(a), ELSEWHERE)])
    k_out, k_place = jax.random.split(key)
    out = np.asarray(jax.random.categorical(k_out, jnp.log(jnp.asarray(rows, jnp.float32)), axis=-1))
    positions = np.asarray(prior, np.float64)[: h * w]
    if positions.sum() == 0:
        positions = np.ones(h * w)
    place = np.asarray(sample_layouts(k_place, jnp.asarray(positions), len(a)))
    side = 2 * MOVE_RADIUS + 1
    r, c = np.divmod(np.minimum(np.asarray(now, np.int64), h * w - 1), w)
    dr, dc = np.divmod(np.minimum(out, N_OFFSETS - 1), side)
    nr, nc = r + dr - MOVE_RADIUS, c + dc - MOVE_RADIUS
    moved = (out < N_OFFSETS) & (np.asarray(now) < h * w)
    inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    nxt = np.where(moved & inside, nr * w + nc, place)
    return np.where(out == GOES_NONE, h * w, nxt).astype(np.int32)


class LayoutInputs(InputField):
    """A layout model as a conditioner: its rendered layout is a conditioning input (:class:`InputField`, one
    "action"), and training counts the layouts (its prior) in ``plugin_state["layout_counts"]``.

    With ``n_actions`` (a world model with a layout) the inputs are the ``cond_frames`` previous frames with the
    object erased, then the rendered layout; training also counts the moves (``"layout_moves"``). The host-side
    methods turn frames into layouts and layouts into inputs."""

    def __init__(self, config: DTMConfig, encoding: Encoding) -> None:
        assert config.layout_color is not None
        h, w, c = config.image_shape
        self.config, self.encoding, self.hw = config, encoding, (h, w)
        self.color: tuple[float, ...] = config.layout_color
        self.background = encoding.encode(np.zeros((1, h, w, c), np.float32))[0]
        filled = np.broadcast_to(np.asarray(self.color, np.float32), (1, h, w, c))
        self.marker = encoding.encode(filled)[0, : encoding.bits_per_pixel]
        n_img, n_frames = encoding.n_bits, input_frames(config)
        index = conditioning_index(config.image_shape, encoding.bits_per_pixel, config.cond_radius, n_frames)
        n_prev = (n_frames - 1) * n_img
        # the layout enters as (s - background) / 2, in {-1, 0, 1}: zero wherever it is background, so that far
        # from the object only the constant feature is left (see features())
        offset = np.concatenate([np.zeros(n_prev, np.float32), 2.0 * self.background.astype(np.float32) - 1.0])
        scale = np.concatenate([np.ones(n_prev, np.float32), np.full(n_img, 0.5, np.float32)])
        super().__init__(index, input_actions(config), offset, scale)

    def init_state(self) -> dict[str, jax.Array]:
        shape = (self.config.n_classes,) * bool(self.config.n_classes) + (self.hw[0] * self.hw[1] + 1,)
        out = {"layout_counts": jnp.zeros(shape, jnp.int32)}
        if self.config.n_actions:
            out["layout_moves"] = jnp.zeros((self.config.n_actions, N_CONTEXTS, N_OUTCOMES), jnp.int32)
        return out

    def update(self, state: dict[str, jax.Array], batch: Batch) -> dict[str, jax.Array]:
        counts = count_layouts(state["layout_counts"], batch["layout"], batch.get("labels"))
        state = {**state, "layout_counts": counts}
        if "layout_moves" in state:  # a world model's layout dynamics: count this batch's moves
            moves = count_moves(state["layout_moves"], batch["actions"], batch["move_ctx"], batch["move_out"])
            state["layout_moves"] = moves
        return state

    # ------------------------------------------------------------------ host side

    def ids_of(self, bits: np.ndarray) -> np.ndarray:
        """Layout ids ``(n,)`` of image bits ``(n, n_image_bits)``."""
        return layout_ids(self.encoding.decode(np.asarray(bits)), self.color, self.config.layout_min_size)

    def previous(self, prev: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """A world model's layouts ℓ_t-1 (None with one previous frame) and ℓ_t of previous frames' bits."""
        n_img, f = self.encoding.n_bits, self.config.cond_frames
        p = np.asarray(prev)
        now = self.ids_of(p[:, (f - 1) * n_img : f * n_img])
        return (self.ids_of(p[:, (f - 2) * n_img : (f - 1) * n_img]) if f > 1 else None), now

    def inputs(self, ids: np.ndarray, prev: np.ndarray | None = None, actions: np.ndarray | None = None,
               labels: np.ndarray | None = None) -> Batch:  # fmt: skip
        """The conditioning inputs of layout ids ``(n,)``: the rendered layouts after a world model's previous
        frames' bits ``prev`` (object erased, with its ``actions``), or alone (a layout model) with action 0, or
        with the class ``labels`` ``(n,)`` as the action when the label gates the weights (``label_gates_layout``:
        the label then also says where in its layout pixel, and how, the object is drawn).

        Erased, because copied from the previous frame a dreamed object would pass on its flaws, and a rollout
        would shrink it step by step (measured: largest blob 1.9 px against the data's 3.3 in
        ``benchmarks/world_model.py``'s rollouts)."""
        rendered = render_layouts(ids, self.background, self.marker)
        if prev is None:
            if not self.config.label_gates_layout:
                return {"prev": rendered, "actions": np.zeros(len(ids), np.int32)}
            if labels is None:
                raise ValueError(
                    "this model draws the object by its label (label_gates_layout=True): give labels=k (or one "
                    "class id a frame) with the layout"
                )
            return {"prev": rendered, "actions": np.asarray(labels, np.int32)}
        return {"prev": np.concatenate([self.erase_object(prev), rendered], axis=1), "actions": np.asarray(actions)}

    def erase_object(self, prev: np.ndarray) -> np.ndarray:
        """Previous frames' bits ``(n, F * n_image_bits)`` with the object's pixels set to the background."""
        p = np.asarray(prev, np.uint8)
        n, n_img = len(p), self.encoding.n_bits
        frames = self.encoding.decode(p.reshape(-1, n_img))
        frames[object_class(self.color).mask(frames)] = 0.0  # the background of the rendered layouts
        return self.encoding.encode(frames).astype(np.uint8).reshape(n, -1)

    def training_inputs(self, batch: Batch) -> Batch:
        """What a training batch adds: each frame's layout, the move that led to it (world model), the inputs."""
        ids = self.ids_of(batch["bits"])
        out: Batch = {"layout": ids}
        if self.config.n_actions:
            before, now = self.previous(batch["prev"])
            out["move_ctx"] = move_contexts(before, now, self.hw)
            out["move_out"] = move_outcomes(now, ids, self.hw)
        return {**out, **self.inputs(ids, batch.get("prev"), batch.get("actions"), batch.get("labels"))}

    def next_ids(self, key: jax.Array, state: dict[str, jax.Array], actions: np.ndarray,
                 before: np.ndarray | None, now: np.ndarray) -> np.ndarray:  # fmt: skip
        """A world model's next layouts ``(n,)`` after layouts ``before`` (ℓ_t-1, or None) and ``now`` (ℓ_t) and
        ``actions``, drawn from its layout dynamics (:func:`sample_next_layouts`)."""
        moves, counts = np.asarray(state["layout_moves"]), self.counts(state)
        return sample_next_layouts(key, moves, counts, np.asarray(actions), before, now, self.hw)

    def counts(self, state: dict[str, jax.Array], label: int | None = None) -> np.ndarray:
        """The layout counts ``(H*W + 1,)``: of every frame trained on, or of class ``label``'s frames."""
        c = np.asarray(state["layout_counts"], np.float64)
        if c.ndim == 1:
            return c
        return c.sum(0) if label is None else c[label]

    def draw(self, key: jax.Array, state: dict[str, jax.Array], n: int,
             labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
        """``n`` layouts ``(n,)`` from the prior and, for a labelled model, their classes ``(n,)``: given
        ``labels`` (ids ``(n,)``) from ``p(ℓ | class)``, else jointly from ``p(class, ℓ)``; classes None for an
        unlabelled model."""
        c = np.asarray(state["layout_counts"])
        if c.ndim == 1:
            return sample_layouts(key, c, n), None
        if labels is not None:
            return sample_layouts(key, c[np.asarray(labels)], n), np.asarray(labels, np.int32)
        flat = sample_layouts(key, c.reshape(-1), n)
        return (flat % c.shape[1]).astype(np.int32), (flat // c.shape[1]).astype(np.int32)

    def prior(self, state: dict[str, jax.Array], label: int | None = None) -> tuple[np.ndarray, float]:
        """The prior ``p(ℓ)`` ``(H, W)`` over the object's centre pixel and ``p(none)``: the layouts of the frames
        trained on, counted (uniform before any training); with ``label``, ``p(ℓ | class)`` of a labelled model."""
        counts = self.counts(state, label)
        p = counts / counts.sum() if counts.sum() else np.full(len(counts), 1.0 / len(counts))
        return p[:-1].reshape(self.hw), float(p[-1])
