"""Layout models (dtm_lite.conditioning.layout): layouts, their rendering and prior exact; a toy layout model places
its one object where it is told, and its ancestral samples show exactly one object."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig
from dtm_lite.conditioning.inputs import input_actions
from dtm_lite.conditioning.layout import (
    BORDER,
    ELSEWHERE,
    GOES_NONE,
    MOVE_RADIUS,
    N_CONTEXTS,
    N_OUTCOMES,
    NOW_NONE,
    UNKNOWN,
    class_posterior,
    count_layouts,
    count_moves,
    ids_to_positions,
    layout_ids,
    move_contexts,
    move_outcomes,
    positions_to_ids,
    render_layouts,
    sample_layouts,
    sample_next_layouts,
)
from dtm_lite.data.lunarlander_settings import model_config

LANDER = (0.5, 0.4, 0.9)


def test_layout_ids_mark_the_largest_blob_centre_exactly():
    f = np.zeros((5, 8, 8, 3), np.float32)
    f[0, 2:4, 5:7] = LANDER  # 2x2 blob: centre (2.5, 5.5) -> (3, 6) rounded half up
    f[1, 6, 1:4] = LANDER  # 1x3: centre (6, 2)
    f[1, 0, 0] = LANDER  # a stray pixel beside it does not move the layout
    f[2, 4, 4] = LANDER  # one pixel only: not a blob (min size 2) -> none
    f[3, 1, 1:3] = LANDER  # two blobs: the larger (3 px, centre (5, 6)) wins over the 2 px one
    f[3, 5, 5:8] = LANDER
    f[4, 0:2, 0:2] = (1.0, 1.0, 1.0)  # another colour: none
    assert layout_ids(f, LANDER).tolist() == [3 * 8 + 6, 6 * 8 + 2, 64, 5 * 8 + 6, 64]
    assert layout_ids(f, LANDER, min_size=1).tolist() == [3 * 8 + 6, 6 * 8 + 2, 4 * 8 + 4, 5 * 8 + 6, 64]


def test_render_and_positions_round_trip_exactly():
    background = np.array([0, 1] * 4, np.uint8)  # 4 pixels of 2 bits: background code (0, 1)
    marker = np.array([1, 1], np.uint8)
    out = render_layouts(np.array([0, 3, 4]), background, marker)
    assert out.tolist() == [[1, 1, 0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 1, 1], [0, 1] * 4]
    pos = np.array([[0, 0], [2, 3], [-1, -1], [3, 4]])
    ids = positions_to_ids(pos, (4, 5))
    assert ids.tolist() == [0, 13, 20, 19]
    assert ids_to_positions(ids, (4, 5)).tolist() == pos.tolist()


def test_bad_layout_positions_get_clear_errors():
    with pytest.raises(ValueError, match=r"outside the 4x5 frame"):
        positions_to_ids(np.array([[0, 0], [4, 0]]), (4, 5))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        positions_to_ids(np.array([0.5, 1.0]), (4, 5))


def test_prior_counts_and_samples():
    counts = count_layouts(jnp.zeros(5, jnp.int32), jnp.array([1, 1, 4, 1]))
    assert counts.tolist() == [0, 3, 0, 0, 1]
    n = 8000
    ids = sample_layouts(jax.random.key(0), counts, n)
    assert set(ids.tolist()) == {1, 4}
    p = np.mean(ids == 1)  # 0.75 exactly in expectation; 5 standard errors
    assert abs(p - 0.75) < 5 * np.sqrt(0.75 * 0.25 / n), p
    uniform = sample_layouts(jax.random.key(1), jnp.zeros(5, jnp.int32), n)  # untrained: every id alike
    assert abs(np.bincount(uniform, minlength=5) / n - 0.2).max() < 5 * np.sqrt(0.2 * 0.8 / n)


def test_layout_config_is_validated():
    assert input_actions(DTMConfig()) == 0 and input_actions(DTMConfig(layout_color=LANDER)) == 1
    assert model_config().layout_color is not None  # the CLI's model is a layout model
    with pytest.raises(ValueError, match="one value per channel"):
        DTMConfig(layout_color=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"layout_color\[2\]"):
        DTMConfig(layout_color=(1.0, 0.0, 2.0))
    assert input_actions(DTMConfig(layout_color=LANDER, n_actions=2)) == 2  # a world model with a layout


def test_labelled_prior_counts_each_class_and_reads_the_class_of_a_layout():
    counts = count_layouts(jnp.zeros((2, 5), jnp.int32), jnp.array([1, 1, 4, 1, 2]), jnp.array([0, 0, 1, 1, 1]))
    assert counts.tolist() == [[0, 2, 0, 0, 0], [0, 1, 1, 0, 1]]
    post = class_posterior(np.asarray(counts), np.array([1, 2, 3]))
    # Bayes on the counted p(class, layout): layout 1 seen 3 times (2 of class 0), 2 once (class 1), 3 never:
    # the class prior 2/5, 3/5
    assert np.allclose(post, [[2 / 3, 1 / 3], [0, 1], [0.4, 0.6]])
    n = 4000
    rows = sample_layouts(jax.random.key(0), counts[np.array([0, 1] * (n // 2))], n)  # each row its class
    assert set(rows[0::2].tolist()) == {1} and set(rows[1::2].tolist()) == {1, 2, 4}
    with pytest.raises(ValueError, match="label_spots=0 leaves the labels nothing to act on"):
        DTMConfig(n_classes=2, label_spots=0)
    assert DTM(DTMConfig(image_shape=(4, 4, 1), preset="20_8", n_classes=2, label_spots=0, layout_color=(1.0,))
               ).spec.n_extra_bits == 0  # fmt: skip


# ---------------------------------------------------------------------- toy layout model: 2x2 squares

TOY = DTMConfig(
    image_shape=(8, 8, 1), preset="20_8", layout_color=(1.0,), cond_radius=1, batch_size=32, warmup_sweeps=30,
    n_samples=8, sweeps_per_sample=2, learning_rate=0.1, lr_decay_batches=600, generation_sweeps=100,
    generation_beta=(1.0, 1.5),
)  # fmt: skip
P_NONE = 0.2  # the share of blank frames in the toy stream


def squares(rng, n, h=8):
    """Frames (n, h, h) with one 2x2 square at a random place, or (with probability P_NONE) none."""
    f = np.zeros((n, h, h), np.uint8)
    r, c = rng.integers(0, h - 1, n), rng.integers(0, h - 1, n)
    blank = rng.random(n) < P_NONE
    for i in np.flatnonzero(~blank):
        f[i, r[i] : r[i] + 2, c[i] : c[i] + 2] = 1
    return f


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    dtm = DTM(TOY)
    seen = []
    for _ in range(TOY.lr_decay_batches):
        f = squares(rng, TOY.batch_size)
        seen.append(f)
        dtm.train_step(f.reshape(TOY.batch_size, -1))
    return dtm, np.concatenate(seen)


def one_square(frames):
    """(n,) bool: the frame's lit pixels are exactly one 2x2 square; and its top-left corner (n, 2)."""
    lit = frames[..., 0] > 0.5
    out, corner = np.zeros(len(lit), bool), np.full((len(lit), 2), -1)
    for i, m in enumerate(lit):
        rows, cols = np.nonzero(m)
        if len(rows) == 4 and np.ptp(rows) == 1 and np.ptp(cols) == 1:
            out[i], corner[i] = True, (rows.min(), cols.min())
    return out, corner


def test_prior_is_the_histogram_of_every_layout_trained_on(toy):
    dtm, seen = toy
    want = np.bincount(layout_ids(seen[..., None].astype(np.float32), (1.0,)), minlength=65)
    assert np.array_equal(np.asarray(dtm.state.plugin_state["layout_counts"]), want)
    grid, p_none = dtm.layout_prior()
    assert grid.shape == (8, 8) and abs(p_none - want[-1] / want.sum()) < 1e-12


def test_toy_layout_model_draws_the_square_where_the_layout_puts_it(toy):
    dtm, _ = toy
    rng = np.random.default_rng(7)
    corner = rng.integers(0, 7, (200, 2))
    centre = corner + 1  # a 2x2 square's centre (r + 0.5, c + 0.5) rounds half up to (r + 1, c + 1)
    ok, got = one_square(dtm.generate(200, key=1, layout=centre))
    placed = ok & (got == corner).all(1)
    assert placed.mean() >= 0.9, placed.mean()
    blank = dtm.generate(50, key=2, layout=(-1, -1))[..., 0] > 0.5
    assert (blank.sum(axis=(1, 2)) == 0).mean() >= 0.9


def test_toy_layout_model_samples_one_square_or_none_as_the_data(toy):
    dtm, _ = toy
    n = 400
    frames = dtm.generate(n, key=3)  # ancestral: layouts from the prior, then the picture
    ok, _ = one_square(frames)
    blank = (frames[..., 0] <= 0.5).all(axis=(1, 2))
    assert (ok | blank).mean() >= 0.9, (ok.mean(), blank.mean())
    # the prior's blank share is P_NONE = 0.2 of the training frames; 5 standard errors of n samples
    assert abs(blank.mean() - P_NONE) < 5 * np.sqrt(P_NONE * (1 - P_NONE) / n) + 0.05, blank.mean()
    assert np.array_equal(dtm.generate(8, key=3), dtm.generate(8, key=3))  # a key repeats the layouts too


def side_of(corner_cols):
    """The toy's class: 0 for a square in the left three columns, 1 in the right three (column 3: neither)."""
    return np.where(corner_cols <= 2, 0, np.where(corner_cols >= 4, 1, -1))


def test_labelled_layout_model_puts_the_square_on_its_side_and_reads_the_side(toy):
    """The toy's picture model with a labelled layout prior (label_spots=0): the label acts through the prior."""
    dtm, _ = toy
    lab = DTM(TOY.replace(n_classes=2, label_spots=0))
    lab.state = dtm.state._replace(plugin_state=lab.state.plugin_state)  # the trained picture model, no prior yet
    rng = np.random.default_rng(3)
    fed_ids, fed_labels = [], []
    while len(fed_ids) < 20:
        f = squares(rng, 4 * TOY.batch_size)
        _, corner = one_square(f[..., None])
        y = np.where(corner[:, 0] < 0, rng.integers(0, 2, len(f)), side_of(corner[:, 1]))
        keep = np.flatnonzero(y >= 0)[: TOY.batch_size]
        lab.train_step(f[keep].reshape(len(keep), -1), y[keep])
        fed_ids.append(layout_ids(f[keep][..., None].astype(np.float32), (1.0,)))
        fed_labels.append(y[keep])
    ids, ys = np.concatenate(fed_ids), np.concatenate(fed_labels)
    counts = np.asarray(lab.state.plugin_state["layout_counts"])
    assert counts.shape == (2, 65) and np.array_equal(counts, [np.bincount(ids[ys == k], minlength=65) for k in (0, 1)])
    grid, p_none = lab.layout_prior(label=1)
    assert grid[:, :4].sum() == 0 and grid.sum() + p_none == pytest.approx(1.0)  # centres of class 1: column >= 5

    for k in (0, 1):  # conditional samples: the square on the requested side
        ok, corner = one_square(lab.generate(100, key=k, labels=k))
        assert ok.mean() >= 0.6 and (side_of(corner[ok, 1]) == k).mean() >= 0.9, (ok.mean(), corner[ok, 1])
        pos = lab.sample_layout(200, key=k, labels=k)  # centres: corner + 1; (-1, -1) for a blank frame
        cols = pos[pos[:, 0] >= 0, 1]
        assert len(cols) > 100 and (side_of(cols - 1) == k).all()
    frames, joint = lab.generate(100, key=5, return_labels=True)  # joint: the class drawn with the layout
    ok, corner = one_square(frames)
    assert (side_of(corner[ok, 1]) == joint[ok]).mean() >= 0.9
    test = squares(np.random.default_rng(9), 200)
    ok, corner = one_square(test[..., None])
    keep = ok & (side_of(corner[:, 1]) >= 0)
    pred, votes = lab.classify(test[keep][..., None].astype(np.float32), return_votes=True)
    assert np.array_equal(pred, side_of(corner[keep, 1])) and np.allclose(votes.sum(1), 1.0)


def test_layout_model_saves_and_loads_its_prior(toy, tmp_path):
    dtm, _ = toy
    dtm.save(tmp_path / "c.npz")
    dtm.save_weights(tmp_path / "w.npz")
    for back in (DTM.load(tmp_path / "c.npz"), DTM.load_weights(tmp_path / "w.npz")):
        assert np.array_equal(
            np.asarray(back.state.plugin_state["layout_counts"]), np.asarray(dtm.state.plugin_state["layout_counts"])
        )
        assert np.array_equal(back.generate(6, key=4), dtm.generate(6, key=4))


def test_layout_errors_name_the_fix(toy):
    dtm, _ = toy
    plain = DTM(TOY.replace(layout_color=None))
    with pytest.raises(ValueError, match="needs a layout model"):
        plain.generate(2, layout=(1, 1))
    with pytest.raises(ValueError, match="needs a layout model"):
        plain.sample_layout(2)
    with pytest.raises(ValueError, match="layout=\\(row, col\\)"):
        dtm.generate(2, prev=np.zeros((2, 64), np.uint8), actions=[0, 0])
    with pytest.raises(ValueError, match="one \\(row, col\\) for each of the n = 3"):
        dtm.generate(3, layout=[(1, 1), (2, 2)])
    pos = dtm.sample_layout(500, key=0)
    assert pos.shape == (500, 2) and ((pos == -1).all(1) | ((pos >= 0) & (pos < 8)).all(1)).all()


# ---------------------------------------------------------------------- layout dynamics of a world model


def test_moves_contexts_and_outcomes_exactly():
    hw = (8, 8)
    pid = lambda r, c: r * 8 + c  # noqa: E731
    none = 64
    now = np.array([pid(3, 3), pid(3, 3), pid(3, 3), none, pid(0, 0)])
    before = np.array([pid(2, 3), none, pid(3, 7), pid(1, 1), pid(0, 0)])
    centre = MOVE_RADIUS * (2 * MOVE_RADIUS + 1) + MOVE_RADIUS  # the index of offset (0, 0)
    ctx = move_contexts(before, now, hw)
    # (1, 0) inside; no object before; a jump; no object now; (0, 0) on the border
    assert ctx.tolist() == [centre + 2 * MOVE_RADIUS + 1, UNKNOWN, UNKNOWN, NOW_NONE, centre + BORDER]
    assert move_contexts(None, now, hw).tolist() == [UNKNOWN] * 3 + [NOW_NONE, UNKNOWN + BORDER]
    after = np.array([pid(3, 4), none, pid(7, 7), pid(5, 5), pid(0, 0)])
    assert move_outcomes(now, after, hw).tolist() == [centre + 1, GOES_NONE, ELSEWHERE, ELSEWHERE, centre]
    moves = count_moves(jnp.zeros((2, N_CONTEXTS, N_OUTCOMES), jnp.int32), jnp.array([1, 1, 0]),
                        jnp.array([0, 0, UNKNOWN]), jnp.array([3, 3, GOES_NONE]))  # fmt: skip
    assert int(moves.sum()) == 3 and int(moves[1, 0, 3]) == 2 and int(moves[0, UNKNOWN, GOES_NONE]) == 1


def test_next_layouts_follow_the_counted_moves():
    hw, prior = (8, 8), np.zeros(65)
    prior[10] = 1.0  # an appearing object lands on pixel 10
    moves = np.zeros((2, N_CONTEXTS, N_OUTCOMES))
    right = MOVE_RADIUS * (2 * MOVE_RADIUS + 1) + MOVE_RADIUS + 1  # offset (0, +1)
    moves[0, UNKNOWN, right] = 5  # action 0: one pixel right, inside the frame and on its border
    moves[0, UNKNOWN + BORDER, right] = 5
    moves[1, UNKNOWN, GOES_NONE] = 5  # action 1: the object leaves
    moves[:, NOW_NONE, ELSEWHERE] = 1  # no object: one appears
    now = np.array([3 * 8 + 3, 3 * 8 + 3, 64, 3 * 8 + 7])
    got = sample_next_layouts(jax.random.key(0), moves, prior, np.array([0, 1, 0, 0]), None, now, hw)
    assert got.tolist() == [3 * 8 + 4, 64, 10, 10]  # right; gone; appears at 10; would leave the frame: prior


WORLD_LAYOUT = TOY.replace(n_actions=4, lr_decay_batches=400)
MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]  # up, down, left, right


def moving_squares(rng, n, h=8):
    """(frames_t, actions, frames_t+1, corner_t+1): a 2x2 square moved one pixel in the action's direction."""
    r, c, a = rng.integers(1, h - 3, n), rng.integers(1, h - 3, n), rng.integers(0, 4, n)
    dr, dc = np.array(MOVES)[a].T

    def draw(rr, cc):
        f = np.zeros((n, h, h), np.uint8)
        for i in range(n):
            f[i, rr[i] : rr[i] + 2, cc[i] : cc[i] + 2] = 1
        return f

    return draw(r, c), a, draw(r + dr, c + dc), np.stack([r + dr, c + dc], 1)


@pytest.fixture(scope="module")
def world_layout():
    rng = np.random.default_rng(0)
    dtm = DTM(WORLD_LAYOUT)
    B = WORLD_LAYOUT.batch_size
    for _ in range(WORLD_LAYOUT.lr_decay_batches):
        prev, a, nxt, _ = moving_squares(rng, B)
        dtm.train_step(nxt.reshape(B, -1), prev=prev.reshape(B, -1), actions=a)
    return dtm


def test_world_model_with_a_layout_counts_the_moves_and_moves_the_square(world_layout):
    moves = np.asarray(world_layout.state.plugin_state["layout_moves"])
    n = WORLD_LAYOUT.lr_decay_batches * WORLD_LAYOUT.batch_size
    assert moves.sum() == n and moves[:, UNKNOWN].sum() == n  # one previous frame: the context is "unknown"
    side = 2 * MOVE_RADIUS + 1
    for a, (dr, dc) in enumerate(MOVES):  # every counted move of action a is exactly its direction
        assert moves[a, UNKNOWN].argmax() == (dr + MOVE_RADIUS) * side + dc + MOVE_RADIUS
        assert moves[a, UNKNOWN].max() == moves[a].sum()
    prev, a, nxt, corner = moving_squares(np.random.default_rng(5), 200)
    ok, got = one_square(world_layout.generate(200, key=1, prev=prev.reshape(200, -1), actions=a))
    assert (ok & (got == corner).all(1)).mean() >= 0.9


def test_world_model_with_a_layout_dreams_one_square(world_layout):
    first = np.zeros((1, 8, 8, 1), np.float32)
    first[0, 1:3, 1:3] = 1.0
    acts = [3, 3, 1, 1, 3, 1, 2, 0]  # right, right, down, down, right, down, left, up: stays inside
    frames = world_layout.rollout(first, acts, key=0)
    ok, corner = one_square(frames[1:, 0])
    want = np.array([(1, 2), (1, 3), (2, 3), (3, 3), (3, 4), (4, 4), (4, 3), (3, 3)])
    assert ok.mean() >= 0.75 and ((corner == want).all(1)).mean() >= 0.75


def test_a_label_that_gates_the_layout_weights_says_how_the_object_is_drawn(toy):
    """Squares of 2x2 (class 0) and 3x3 (class 1) with the same top-left corner share their layout pixel (the
    centre, rounded half up), so the place alone cannot say which to draw. Both models below start from the toy's
    picture model and train on the same 300 labelled batches. With ``label_gates_layout`` each class has its own
    layout weights, and the label says which square to draw (measured: 0.63 and 0.59 of 100 samples at one
    layout); without, one set of weights draws a mixture (0.18 and 0.22). A layout without its label is refused."""
    dtm, _ = toy
    two, three = np.zeros((2, 8, 8, 1), np.float32)
    two[2:4, 2:4], three[2:5, 2:5] = 1.0, 1.0
    assert layout_ids(np.stack([two, three]), (1.0,)).tolist() == [3 * 8 + 3] * 2
    rate = {}
    for gated in (True, False):
        lab = DTM(TOY.replace(n_classes=2, label_spots=0, label_gates_layout=gated, lr_decay_batches=300))
        K = jnp.repeat(dtm.state.params["K"], 2 if gated else 1, axis=1)  # the toy's weights, for each class
        lab.state = lab.state._replace(params={**dtm.state.params, "K": K})
        rng = np.random.default_rng(4)
        for _ in range(300):
            y, (r, c) = rng.integers(0, 2, TOY.batch_size), rng.integers(0, 6, (2, TOY.batch_size))
            f = np.zeros((TOY.batch_size, 8, 8), np.uint8)
            for i in range(TOY.batch_size):
                f[i, r[i] : r[i] + 2 + y[i], c[i] : c[i] + 2 + y[i]] = 1
            lab.train_step(f.reshape(len(f), -1), y)
        for k in (0, 1):
            size = (lab.generate(100, key=k, labels=k, layout=(3, 3))[..., 0] > 0.5).sum((1, 2))
            rate[gated, k] = float((size == (2 + k) ** 2).mean())
    for k in (0, 1):
        assert rate[True, k] >= 0.45 and rate[True, k] - rate[False, k] >= 0.25, rate
    with pytest.raises(ValueError, match="label_gates_layout=True.*give labels"):
        DTM(TOY.replace(n_classes=2, label_spots=0, label_gates_layout=True)).generate(2, layout=(3, 3))
