"""The seed's usage examples (``../shared/seed/README_LUNARLANDER.md``) run as written with dtm_lite (issue 12).

Each test below is one code block of that README that is meant to run. Only the imports and the sizes
differ: preset 20_8 and a tiny image instead of 80_12 and 32x32x3, a few sweeps and batches; the seed's
names are replaced by ours as listed in README.md, "Coming from the research code" (``make_cfg`` ->
``DTMConfig``, ``GymDataGenerator`` -> ``LunarLanderFrames``, ``test_dataset`` -> ``holdout=``). With
``n_grayscale_levels=4`` the loader emits 4 bits a channel value, so the model is built with
``grayscale_levels=4``, as a user would have to.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from dtm_lite import DTM, DTMConfig, EvalSettings, IteratorDataLoader, LunarLanderFrames
from dtm_lite.core.encoding import encode
from dtm_lite.evaluation.metrics import LANDER
from dtm_lite.training.loop import OBJECT_COLUMNS

SEED_README = Path(__file__).resolve().parents[2] / "shared" / "seed" / "README_LUNARLANDER.md"

# the seed's sizes (80_12, 32x32x3, 474 sweeps a phase, 100 batches, 20 epochs) shrunk to seconds
CFG = DTMConfig(
    image_shape=(4, 4, 3), preset="20_8", grayscale_levels=4, batch_size=50, warmup_sweeps=10, n_samples=4,
    sweeps_per_sample=2, generation_sweeps=20, lr_decay_batches=8, seed=0,
)  # fmt: skip
EVAL = EvalSettings(
    n_images=16, n_components=4, autocorr_chains=4, autocorr_sweeps=40, autocorr_every=2, autocorr_window=(20, 30),
    gif_images=4, gif_every=10, object_class=LANDER,
)  # fmt: skip


def create_data_iterator():
    """Step 3 of the seed's Basic Training: LunarLander frames -> IteratorDataLoader, one epoch."""
    gym_gen = LunarLanderFrames(  # seed: GymDataGenerator(state_size=32, environment_name="LunarLander-v3", ...)
        resolution=4,
        frames_per_episode=16,
        episodes=10,  # seed: training_examples=1000
    )

    dataloader = IteratorDataLoader(
        data_iterator=iter(gym_gen),
        batch_size=50,
        n_grayscale_levels=4,
        max_batches_per_epoch=2,  # seed: 100
    )

    return iter(dataloader)


def test_basic_training_with_evaluate_every_and_no_test_set():
    # 1. Create configuration (seed: cfg = make_cfg(...))
    cfg = CFG

    # 2. Initialize DTM (seed: DTM(cfg, use_dummy_dataset=True, n_image_pixels=n_image_pixels))
    n_image_pixels = 4 * 4 * 3  # RGB 4x4
    dtm = DTM(cfg)
    assert dtm.config.n_visible == n_image_pixels * 4

    # 4. Train: evaluate_every without a test set runs, and warns once that the metrics need holdout=
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = dtm.train_from_iterator(
            n_epochs=2,
            data_iterator_factory=create_data_iterator,
            batches_per_epoch=2,
            evaluate_every=1,
        )
    messages = [str(w.message) for w in caught]
    assert len([m for m in messages if "holdout=" in m]) == 1, messages
    assert dtm.state.step == 4 and [row["epoch"] for row in history] == [1, 2]
    assert not any(k.startswith(("fd_", "obj_", "autocorr_")) for row in history for k in row)


def test_evaluate_every_without_holdout_saves_pictures_and_logs_blanks(tmp_path):
    """Issue 12: with a run folder, each evaluation saves the sample grid and GIF; FD, object metric and
    autocorrelation columns of metrics.csv are blank, the training columns filled."""
    dtm = DTM(CFG)
    with pytest.warns(UserWarning, match="without holdout") as caught:
        dtm.train_from_iterator(
            n_epochs=2,
            data_iterator_factory=create_data_iterator,
            batches_per_epoch=2,
            evaluate_every=1,
            checkpoint_dir=tmp_path,
            eval_settings=EVAL,
            progress=False,
        )
    assert len([w for w in caught if "holdout=" in str(w.message)]) == 1
    assert "nowhere to save" not in str(caught[0].message)
    names = {p.name for p in tmp_path.iterdir()}
    for epoch in ("001", "002"):
        assert {f"samples_epoch{epoch}.png", f"trajectory_epoch{epoch}.gif"} <= names
    header, *rows = [line.split(",") for line in (tmp_path / "metrics.csv").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        values = dict(zip(header, row, strict=True))
        blank = ["fd_pca", "fd_floor", "fd_independent", "marginal_error", "autocorr_0", *OBJECT_COLUMNS]
        assert all(values[k] == "" for k in blank), values
        assert all(values[k] != "" for k in ("epoch", "batches", "gap", "lr", "corr_penalty_0"))


def test_using_a_different_data_source():
    """The seed's custom iterator yields ``(batch,)`` tuples of frames (batch_size, height, width, channels)."""
    num_batches = 3

    def generate_batch(i: int) -> np.ndarray:
        return np.random.default_rng(i).integers(0, 256, (50, 6, 6, 1), dtype=np.uint8)

    def my_custom_iterator():
        """Your custom data iterator."""
        for i in range(num_batches):
            # Generate or load batch
            batch = generate_batch(i)  # Shape: (batch_size, height, width, channels)
            yield (batch,)  # Yield as tuple

    # Use with IteratorDataLoader
    dataloader = IteratorDataLoader(
        data_iterator=my_custom_iterator(),
        batch_size=50,
        n_grayscale_levels=4,
    )

    batches = list(dataloader)
    assert len(batches) == num_batches
    for i, bits in enumerate(batches):
        assert bits.shape == (50, 6 * 6 * 1 * 4)  # 4 bits (a thermometer code) per channel value
        np.testing.assert_array_equal(bits, encode(generate_batch(i), 4))

    # the model must hold 4 bits a channel value too: grayscale_levels=4 trains ...
    cfg = CFG.replace(image_shape=(6, 6, 1), grayscale_levels=4)
    dtm = DTM(cfg)
    loader = IteratorDataLoader(data_iterator=my_custom_iterator(), batch_size=50, n_grayscale_levels=4)
    dtm.train_from_iterator(n_epochs=1, data_iterator_factory=lambda: loader, batches_per_epoch=3, progress=False)
    assert dtm.state.step == 3
    # ... and a model left at grayscale_levels=1 says what is wrong before any training
    binary = DTM(cfg.replace(grayscale_levels=1))
    loader = IteratorDataLoader(data_iterator=my_custom_iterator(), batch_size=50, n_grayscale_levels=4)
    with pytest.raises(ValueError, match=r"batch 0: .*144 bits a frame.*36"):
        binary.train_from_iterator(n_epochs=1, data_iterator_factory=lambda: loader, batches_per_epoch=3)
    assert binary.state.step == 0


def test_adding_test_set_support():
    """The seed sets ``dtm.test_dataset`` and ``cfg.exp.compute_autocorr``; here the test set is ``holdout=``,
    and with it every evaluation computes autocorrelation, FD-PCA and the object metric."""
    # Load or generate a persistent test set (other seeds than the training stream)
    test_dataset = np.concatenate([e.frames for e in LunarLanderFrames(resolution=4, frames_per_episode=8,
                                                                      episodes=4, seed=10**6)])  # fmt: skip
    assert test_dataset.shape[1:] == (4, 4, 3) and len(test_dataset) >= 2 * EVAL.n_images

    dtm = DTM(CFG)
    history = dtm.train_from_iterator(
        n_epochs=1,
        data_iterator_factory=create_data_iterator,
        batches_per_epoch=2,
        evaluate_every=1,
        holdout=test_dataset,  # seed: dtm.test_dataset = test_dataset; dtm.cfg.exp.compute_autocorr = True
        eval_settings=EVAL,
        progress=False,
    )
    row = history[-1]
    assert np.isfinite(row["autocorr_0"])
    assert all(np.isfinite(row[k]) for k in ("fd_pca", "fd_floor", "fd_independent", "marginal_error"))
    assert all(k in row for k in OBJECT_COLUMNS)
    assert 0.0 <= row["obj_one_rate"] <= 1.0 and 0.0 <= row["obj_one_rate_data"] <= 1.0


# which python blocks of the seed's README these tests cover, by the heading above each block
COVERED = {
    "Basic Training": test_basic_training_with_evaluate_every_and_no_test_set,
    "Using a Different Data Source": test_using_a_different_data_source,
    "Adding Test Set Support": test_adding_test_set_support,
}
NOT_MEANT_TO_RUN = {"Critical Parameters for LunarLander"}  # a list of settings with placeholders, not a program


def python_blocks(markdown: str) -> list[str]:
    """The heading above each fenced python block of a markdown text, in order."""
    headings, heading, fenced = [], None, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            if not fenced and line.strip() == "```python":
                headings.append(heading)
            fenced = not fenced
        elif not fenced and (m := re.match(r"#+\s+(.*)", line)):
            heading = m.group(1).strip()
    return headings


def test_python_blocks_parser():
    text = "# A\n```python\nx = 1\n```\n## B\n```bash\n# not a heading\n```\n### C\n```python\n# comment\n```\n"
    assert python_blocks(text) == ["A", "C"]


@pytest.mark.skipif(not SEED_README.exists(), reason=f"the seed README is not checked out at {SEED_README}")
def test_every_seed_example_meant_to_run_is_covered():
    headings = python_blocks(SEED_README.read_text())
    assert sorted(headings) == sorted(set(COVERED) | NOT_MEANT_TO_RUN)
