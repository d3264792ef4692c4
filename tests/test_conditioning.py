"""Conditioning (issue 9): label bits on the grid (conditional samples, joint samples, classification) and a world
model's conditioning inputs. Exact checks where they can be exact (placement, codes, the conditioning index, the
gradient of the conditioning weights against enumeration), statistical ones for what the model learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stats import z_scores

from dtm_lite.conditioning.inputs import conditioning_field, conditioning_grad, conditioning_index, features
from dtm_lite.conditioning.labels import decode_labels, label_code
from dtm_lite.core import sampler as smp
from dtm_lite.core.capacity import check_capacity
from dtm_lite.core.graph import GridGraph
from dtm_lite.core.train_step import phase_moments, visible_bias
from dtm_lite.evaluation.exact import all_states
from dtm_lite.model import DTM, DTMConfig

# ---------------------------------------------------------------------- exact pieces


def test_label_sites_are_free_colour0_sites_around_the_image():
    dtm = DTM(DTMConfig(image_shape=(6, 6, 1), preset="20_8", n_classes=4, label_spots=3, placement="planes"))
    sites = dtm.label_sites
    assert sites.shape == (12,) and len(set(sites.tolist())) == 12
    assert not set(sites.tolist()) & set(dtm.visible.tolist())
    assert np.all(dtm.graph.colors[sites] == 0)
    assert np.array_equal(dtm.visible_all, np.concatenate([dtm.visible, sites]))
    assert DTM(DTMConfig(image_shape=(6, 6, 1), preset="20_8")).label_sites.size == 0  # unconditional: none
    # a spot's K bits sit together (within a few sites of each other)
    y, x = np.divmod(sites.reshape(3, 4), 20)
    assert (np.ptp(y, axis=1) <= 3).all() and (np.ptp(x, axis=1) <= 3).all()


def test_label_code_and_votes_round_trip():
    ids = jnp.array([2, 0, 1])
    bits = np.asarray(label_code(ids, 3, 2))
    assert bits.tolist() == [[0, 0, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0]]
    assert decode_labels(bits, 3, 2).tolist() == [2, 0, 1]
    assert decode_labels(np.array([[1, 0, 0, 0, 1, 0, 0, 1, 0]]), 3, 3).tolist() == [1]  # most votes wins


def test_capacity_check_counts_label_bits():
    g = GridGraph.from_preset("8_8")  # 32 colour-0 sites
    check_capacity(g, 16, 1, 16)
    with pytest.raises(ValueError, match=r"\+ 17 label bits = 33 visible spins do not fit"):
        check_capacity(g, 16, 1, 17)
    with pytest.raises(ValueError, match="label bits"):
        DTM(DTMConfig(image_shape=(4, 4, 1), preset="8_8", n_classes=4, label_spots=5))


def test_conditioning_index_is_each_pixels_neighbourhood():
    idx = conditioning_index((2, 3, 1), 1, 1)  # 2x3 frame, 1 bit a pixel, 3x3 neighbourhoods; 6 = outside
    assert idx.shape == (6, 9)
    assert idx[0].tolist() == [6, 6, 6, 6, 0, 1, 6, 3, 4]  # pixel (0, 0)
    assert idx[4].tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6]  # pixel (1, 1)
    two = conditioning_index((1, 2, 1), 2, 0)  # 2 bits a pixel, radius 0: a bit sees its own pixel's bits
    assert two.tolist() == [[0, 1], [0, 1], [2, 3], [2, 3]]
    f = np.asarray(features(jnp.array([[1, 0, 1, 1, 0, 0]], jnp.uint8), jnp.asarray(idx)))
    assert f.shape == (1, 6, 10) and f[0, 0].tolist() == [0, 0, 0, 0, 1, -1, 0, 1, -1, 1]


def test_conditioning_gradient_matches_exact_conditional_log_likelihood():
    """β Σ_r [a_r = a] (⟨s_j⟩₊ - ⟨s_j⟩₋) f_rjn / B, with per-chain moments sampled by ``phase_moments``, equals
    the gradient of mean_r log p(x_r | prev_r, a_r) in K, by enumeration (two labels-free visible bits here get
    their own input coupling as label bits do)."""
    g = GridGraph.from_preset("4_4")
    lat = smp.lattice(g)
    rng = np.random.default_rng(0)
    B, A, beta = 6, 2, 1.0
    visible = jnp.array([0, 2, 5, 7])
    index = jnp.asarray(conditioning_index((2, 2, 1), 1, 1))
    W = jnp.asarray(rng.normal(0, 0.4, g.n_edges), jnp.float32)
    b = jnp.asarray(rng.normal(0, 0.3, g.n_nodes), jnp.float32)
    K = jnp.asarray(rng.normal(0, 0.5, (1, A, 4, index.shape[1] + 1)), jnp.float32)
    j = jnp.array([0.7, 0.7, 0.3, 0.3])  # one input coupling a visible bit
    prev = jnp.asarray(rng.integers(0, 2, (B, 4)), jnp.uint8)
    actions = jnp.asarray(rng.integers(0, A, B))
    x = jnp.asarray(np.where(rng.random((B, 4)) < 0.5, -1.0, 1.0), jnp.float32)
    s_in = jnp.asarray(np.where(rng.random((B, 4)) < 0.5, -1.0, 1.0), jnp.float32)
    feats = features(prev, index)
    S = jnp.asarray(all_states(g.n_nodes), jnp.float32)
    prod = S[:, g.edges[:, 0]] * S[:, g.edges[:, 1]]

    def loglik(K):
        field = conditioning_field(K, feats, actions)[0]  # (B, 4)
        bias = b + visible_bias(g.n_nodes, visible, j, s_in, field)
        logits = beta * (prod @ W)[None] + beta * bias @ S.T
        match = jnp.all(S[None, :, visible] == x[:, None], axis=-1)
        return jnp.mean(jax.nn.logsumexp(jnp.where(match, logits, -jnp.inf), 1) - jax.nn.logsumexp(logits, 1))

    exact = np.asarray(jax.grad(loglik)(K))
    reps = 600
    field = jnp.tile(conditioning_field(K, feats, actions), (1, reps, 1))
    out = phase_moments(
        lat, visible, W[None], b[None], jnp.tile(x, (reps, 1))[None], jnp.tile(s_in, (reps, 1))[None], j[None],
        jax.random.key(1), beta=beta, warmup_sweeps=20, n_samples=40, sweeps_per_sample=2, extra=field, per_chain=True,
    )  # fmt: skip
    m = out[4] / 40  # per-chain spin sums over the 40 samples (1, 2 * B * reps, 4) -> magnetisations
    n = B * reps
    dm = m[:, :n] - m[:, n:]
    est = beta * np.asarray(conditioning_grad(dm, jnp.tile(feats, (reps, 1, 1)), jnp.tile(actions, reps), A))
    # each entry is a mean over B*reps independent chains of (m₊ - m₋) f with |f| <= 1: SE <= sqrt(2 / (B*reps))
    se = np.sqrt(2 / n)
    assert z_scores(est, se, exact).max() < 5
    assert np.abs(exact).max() > 10 * se
    assert z_scores(est[:, ::-1], se, exact).max() > 5  # the action gating matters


# ---------------------------------------------------------------------- toy labels

K = 4
PATTERNS = np.zeros((K, 6, 6), np.uint8)
PATTERNS[0, :3, :] = 1
PATTERNS[1, :, :3] = 1
PATTERNS[2] = np.eye(6, dtype=np.uint8) | np.eye(6, dtype=np.uint8)[::-1]
PATTERNS[3, 1:5, 1:5] = 1
LABELLED = DTMConfig(
    image_shape=(6, 6, 1), preset="20_8", placement="planes", n_classes=K, label_spots=12, batch_size=32,
    warmup_sweeps=30, n_samples=8, sweeps_per_sample=2, learning_rate=0.03, lr_decay_batches=1200,
    generation_sweeps=1000, generation_beta=(0.3, 1.5), seed=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(1)
    dtm = DTM(LABELLED)
    for _ in range(LABELLED.lr_decay_batches):
        ids = rng.integers(0, K, LABELLED.batch_size)
        dtm.train_step(PATTERNS[ids].reshape(len(ids), -1), ids)
    return dtm


def test_conditional_samples_draw_the_requested_pattern(labelled):
    ids = np.repeat(np.arange(K), 25)
    images = labelled.generate(len(ids), key=1, labels=ids)
    hamming = ((images.reshape(len(ids), -1) > 0.5) != PATTERNS[ids].reshape(len(ids), -1)).sum(1)
    assert (hamming <= 1).mean() >= 0.9, [np.mean(hamming[ids == k] <= 1) for k in range(K)]
    one = labelled.generate(8, key=2, labels=3)  # one id for all
    assert (((one.reshape(8, -1) > 0.5) != PATTERNS[3].reshape(-1)).sum(1) <= 1).mean() >= 0.75


def test_classify_recovers_the_class_of_clean_patterns(labelled):
    ids = np.repeat(np.arange(K), 25)
    got, votes = labelled.classify(PATTERNS[ids][..., None].astype(np.float32), key=2, return_votes=True)
    assert (got == ids).mean() >= 0.9
    assert votes.shape == (len(ids), K) and np.all((votes >= 0) & (votes <= 1))


def test_joint_samples_return_labels_that_match_their_images(labelled):
    images, ids = labelled.generate(100, key=3, return_labels=True)
    assert ids.shape == (100,) and set(ids.tolist()) <= set(range(K))
    hamming = ((images.reshape(100, -1) > 0.5) != PATTERNS[ids].reshape(100, -1)).sum(1)
    # joint samples are harder (the label is free too, and read from the last sample); labels unrelated to the
    # images would match at most 1 in 4 (measured here: 0.56 with this seed)
    assert (hamming <= 1).mean() >= 0.45
    assert len(set(ids.tolist())) == K  # every class appears


# ---------------------------------------------------------------------- toy world model

MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]  # up, down, left, right


def squares(rows, cols, h=8):
    f = np.zeros((len(rows), h, h), np.uint8)
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        f[i, r : r + 2, c : c + 2] = 1
    return f


def transitions(rng, n, h=8):
    r, c, a = rng.integers(1, h - 3, n), rng.integers(1, h - 3, n), rng.integers(0, 4, n)
    dr, dc = np.array(MOVES)[a].T
    return squares(r, c, h), a, squares(r + dr, c + dc, h), (r + dr, c + dc)


WORLD = DTMConfig(
    image_shape=(8, 8, 1), preset="20_8", n_actions=4, cond_radius=1, batch_size=32, warmup_sweeps=30, n_samples=8,
    sweeps_per_sample=2, learning_rate=0.05, lr_decay_batches=400, generation_sweeps=100,
    generation_beta=(1.0, 1.0),
)  # fmt: skip


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    dtm = DTM(WORLD)
    for _ in range(WORLD.lr_decay_batches):
        prev, a, nxt, _ = transitions(rng, WORLD.batch_size)
        dtm.train_step(nxt.reshape(WORLD.batch_size, -1), prev=prev.reshape(WORLD.batch_size, -1), actions=a)
    return dtm


def test_world_model_moves_the_square_with_the_action(world):
    prev, a, nxt, (r, c) = transitions(np.random.default_rng(5), 200)
    out = world.generate(200, key=1, prev=prev.reshape(200, -1), actions=a)[..., 0] > 0.5
    # the square is in the right place: the frame's lit pixels are exactly the 2x2 square moved by the action
    placed = (out == nxt.astype(bool)).all(axis=(1, 2))
    assert placed.mean() >= 0.9, placed.mean()


def test_rollout_dreams_an_episode(world):
    first = squares([3], [3])[..., None].astype(np.float32)
    frames = world.rollout(first[0], [3, 3, 1], key=0)  # right, right, down
    assert frames.shape == (4, 1, 8, 8, 1)
    want = squares([3, 3, 3, 4], [3, 4, 5, 5])
    assert ((frames[..., 0] > 0.5)[:, 0] == want.astype(bool)).all(axis=(1, 2)).mean() >= 0.75


# ---------------------------------------------------------------------- bad input


def test_bad_conditioning_input_gets_clear_errors(labelled, world):
    plain = DTM(DTMConfig(image_shape=(6, 6, 1), preset="20_8", batch_size=32))
    bits = PATTERNS[np.zeros(32, int)].reshape(32, -1)
    with pytest.raises(ValueError, match="labels given to an unconditional model"):
        plain.train_step(bits, np.zeros(32, int))
    with pytest.raises(ValueError, match="this model has no labels"):
        plain.generate(2, labels=[0, 1])
    with pytest.raises(ValueError, match="classify needs a labelled model"):
        plain.classify(bits[:2])
    with pytest.raises(ValueError, match="rollout needs a world model"):
        plain.rollout(np.zeros((6, 6, 1)), [0])
    with pytest.raises(ValueError, match=r"labels must be ids in 0\.\.3, got 7"):
        labelled.train_step(bits, np.full(32, 7))
    with pytest.raises(ValueError, match=r"labels must be integer ids of shape \(32,\)"):
        labelled.train_step(bits, np.zeros(31, int))
    with pytest.raises(ValueError, match="this model has labels"):
        labelled.train_step(bits)
    with pytest.raises(ValueError, match=r"labels must be ids in 0\.\.3, got -1"):
        labelled.generate(2, labels=[0, -1])
    with pytest.raises(ValueError, match="labels must be integer ids"):
        labelled.generate(2, labels=[0.5, 1.0])
    want = r"prev must be the previous 1 frame\(s\)' bits of shape \(2, 64\), got \(2, 63\)"
    with pytest.raises(ValueError, match=want):
        world.generate(2, prev=np.zeros((2, 63), np.uint8), actions=[0, 1])
    with pytest.raises(ValueError, match="needs both prev"):
        world.generate(2, actions=[0, 1])
    with pytest.raises(ValueError, match=r"actions must be ids in 0\.\.3, got 4"):
        world.generate(2, prev=np.zeros((2, 64), np.uint8), actions=[0, 4])
    with pytest.raises(ValueError, match="this is a world model"):
        world.train_step(np.zeros((32, 64), np.uint8))
    with pytest.raises(ValueError, match="prev/actions given to a model without a world model's conditioning inputs"):
        plain.train_step(bits, prev=bits, actions=np.zeros(32, int))
    with pytest.raises(ValueError, match="n_classes must be 0"):
        DTMConfig(n_classes=1)


def test_streaming_training_takes_labelled_and_transition_batches(tmp_path):
    from dtm_lite.data.loader import IteratorDataLoader, TransitionLoader

    rng = np.random.default_rng(0)
    ids = rng.integers(0, K, 64)
    frames = PATTERNS[ids][..., None].astype(np.float32)
    cfg = LABELLED.replace(batch_size=16, lr_decay_batches=4, generation_sweeps=20)
    dtm = DTM(cfg)
    labelled = IteratorDataLoader([(frames, ids)], 16, encoding=dtm.encoding, n_classes=K)
    hist = dtm.train_from_iterator(1, lambda: labelled, 4, progress=False, prefetch=0)
    assert dtm.batches_trained == 4 and len(hist) == 1
    plain = DTM(cfg.replace(n_classes=0))
    with pytest.raises(ValueError, match=r"\(bits, labels\) given to an unconditional model"):
        plain.train_from_iterator(1, lambda: labelled, 4, progress=False, prefetch=0)
    with pytest.raises(ValueError, match="a labelled model .* trains on \\(bits, labels\\) batches"):
        dtm.train_from_iterator(2, lambda: [frames[:16]], 1, progress=False, prefetch=0)

    prev, a, nxt, _ = transitions(rng, 32)
    wcfg = WORLD.replace(batch_size=16, lr_decay_batches=2)
    world = DTM(wcfg)
    loader = TransitionLoader([(prev[..., None].astype(np.float32), a, nxt[..., None].astype(np.float32))], 16,
                              n_actions=4, encoding=world.encoding)  # fmt: skip
    world.train_from_iterator(1, lambda: loader, 2, progress=False, prefetch=0)
    assert world.batches_trained == 2 and float(np.abs(np.asarray(world.params["K"])).max()) > 0
