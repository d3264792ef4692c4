"""The mixing diagnostic on a trained DTM (Jelinčič et al., arXiv 2510.23972; estimated as in their public
replication): free chains of step k in groups that share one noised held-out input, R normalised within each
group (``training.loop.step_autocorrelation``, ``evaluation.metrics.autocorrelation``)."""

import numpy as np
import pytest

from dtm_lite.core.config import seed_key
from dtm_lite.core.diffusion import training_pair
from dtm_lite.evaluation.metrics import autocorrelation
from dtm_lite.model import DTM, DTMConfig
from dtm_lite.training.loop import EvalSettings, Holdout, autocorr_key, step_autocorrelation

PATTERNS = np.zeros((4, 6, 6, 1), np.uint8)  # four 6x6 patterns, 12-18 pixels apart
PATTERNS[0, :3] = 255
PATTERNS[1, :, :3] = 255
PATTERNS[2, ::2] = 255
PATTERNS[3, :, ::2] = 255

# 4 groups of 8 chains, 200 sweeps recorded every 2; the scalar is the mean R over lags of 20-40 sweeps
SETTINGS = EvalSettings(n_images=8, n_components=2, autocorr_chains=32, autocorr_groups=4, autocorr_sweeps=200,
                        autocorr_every=2, autocorr_window=(20, 40), object_class=None)  # fmt: skip
T = 4
CONDITIONAL = range(T - 1)  # steps 0..T-2 see a noised image (J_k > 0); step T-1's input is pure noise (J = 0)


@pytest.fixture(scope="module")
def trained():
    """A T = 4 DTM trained for 60 batches of 32 on the four patterns (about 15 s on 2 cores), and its holdout:
    the patterns four times over, so held-out half A's first four frames are the four patterns."""
    cfg = DTMConfig(
        image_shape=(6, 6, 1), preset="20_8", num_diffusion_steps=T, batch_size=32, warmup_sweeps=30, n_samples=8,
        sweeps_per_sample=2, generation_sweeps=50, learning_rate=0.05, lr_decay_batches=60, seed=0,
    )  # fmt: skip
    dtm = DTM(cfg)
    bits = dtm.encode(PATTERNS)
    rng = np.random.default_rng(0)
    for _ in range(60):
        dtm.train_step(bits[rng.integers(0, len(bits), cfg.batch_size)])
    return dtm, Holdout(dtm, np.concatenate([PATTERNS] * 4), SETTINGS)


def _measure(dtm: DTM, held: Holdout) -> np.ndarray:
    return np.array([step_autocorrelation(dtm, held, k, SETTINGS, key=autocorr_key(0, k)) for k in range(T)])


def _pooled(dtm: DTM, step: int, key: int = 11) -> float:
    """The estimator this package used before: 32 chains, each clamped to the noised input of a different frame
    (8 noisings of each pattern), normalised all together; mean R over the same lags."""
    t = dtm.times
    frames = np.concatenate([dtm.encode(PATTERNS)] * 8)
    _, x_end = training_pair(seed_key(key), frames, t[step], t[step + 1], dtm.config.image_rate,
                             dtm.config.diffusion_offset)  # fmt: skip
    traj = dtm.free_run(step, np.asarray(x_end), SETTINGS.autocorr_sweeps, key + 1, SETTINGS.autocorr_every)
    r = autocorrelation(dtm.decode(traj).reshape(traj.shape[0], len(frames), -1), seed=key)
    return float(r[10:21].mean())


def test_conditional_steps_of_a_trained_dtm_mix_and_read_near_zero(trained):
    """Each conditional step's chains forget where they started within 20 sweeps: the diagnostic reads about 0
    (seen, seeds 0-4: steps 1-2 |a| <= 0.01; step 0, the cleanest, 0.02-0.12, beginning to freeze on these
    sharp modes). The estimator's own noise is far smaller: 1024 series (4 groups x 8 chains x 32 directions)
    over ~90 record pairs, SE ~ 1/sqrt(1024 · 90) ≈ 0.003 per lag. The pooled estimator reads the same
    conditional chains as correlated, 0.3-0.8 (seen 0.30-0.84), because each is pinned near its own input."""
    dtm, held = trained
    a = _measure(dtm, held)
    print("grouped", np.round(a, 3))
    assert np.all(dtm.J[: T - 1] > 0) and dtm.J[T - 1] == 0
    assert np.all(np.abs(a[1:]) < 0.05), a
    assert a[0] < 0.25, a
    pooled = np.array([_pooled(dtm, k) for k in CONDITIONAL])
    print("pooled over different inputs", np.round(pooled, 3))
    assert np.all(pooled > 0.2) and np.all(pooled > a[: T - 1] + 0.15), pooled


def test_couplings_scaled_up_freeze_the_chains_and_read_near_one(trained):
    """The same model with its couplings W x 8: the chains freeze in whatever state they fall into, and every
    step reads high (seen 0.70-0.94 over seeds 0-4)."""
    dtm, held = trained
    params = dtm.state.params
    dtm.state = dtm.state._replace(params={**params, "W": params["W"] * 8})
    try:
        a = _measure(dtm, held)
    finally:
        dtm.state = dtm.state._replace(params=params)
    print("W x 8", np.round(a, 3))
    assert np.all(a > 0.6), a


def test_each_input_is_tiled_over_its_group_of_chains(trained, monkeypatch):
    """``step_autocorrelation`` runs G = autocorr_groups noised inputs, each repeated over C = autocorr_chains //
    autocorr_groups consecutive chains; a holdout with fewer frames than groups runs fewer groups."""
    dtm, held = trained
    seen, run = [], dtm.free_run

    def recording(step, inputs, *args):
        seen.append(np.asarray(inputs))
        return run(step, inputs, *args)

    monkeypatch.setattr(dtm, "free_run", recording)
    step_autocorrelation(dtm, held, 0, SETTINGS, key=5)
    groups = seen[0].reshape(4, 8, -1)
    assert np.all(groups == groups[:, :1]) and len({g[0].tobytes() for g in groups}) == 4
    small = Holdout(dtm, PATTERNS, SETTINGS)  # half A: two frames
    assert np.isfinite(step_autocorrelation(dtm, small, 0, SETTINGS, key=5)) and seen[1].shape[0] == 2 * 8


def test_chains_must_split_evenly_into_groups():
    with pytest.raises(ValueError, match=r"autocorr_chains \(30\) must be a multiple of autocorr_groups \(4\)"):
        EvalSettings(autocorr_chains=30)
    with pytest.raises(ValueError, match="autocorr_groups must be >= 1"):
        EvalSettings(autocorr_groups=0)
    assert EvalSettings().autocorr_chains // EvalSettings().autocorr_groups == 8
    quick = EvalSettings.quick()
    assert quick.autocorr_chains % quick.autocorr_groups == 0
