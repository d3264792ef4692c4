"""The glyph set (dtm_lite.data.glyphs) and the DTM-vs-MEBM study (dtm_lite.evaluation.dtm_vs_mebm)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dtm_lite.data.glyphs import GLYPH_SETS, Glyphs, mode_coverage
from dtm_lite.evaluation.dtm_vs_mebm import StudySettings, summary, verdict
from dtm_lite.training.penalty import adaptive_correlation_penalty

ROOT = Path(__file__).resolve().parent.parent


def test_glyphs_are_ten_digits_at_each_shift_and_classify_exactly():
    g = Glyphs()
    t = g.templates
    assert t.shape == (30, 14, 14) and set(np.unique(t)) == {0, 1}
    d = (t[:, None] != t[None]).reshape(30, 30, -1).sum(-1)
    assert d[~np.eye(30, dtype=bool)].min() >= 6  # every pair of modes differs in several pixels
    frames, digits = g.sample(500, np.random.default_rng(0))
    assert frames.shape == (500, 14, 14, 1) and frames.dtype == np.float32
    modes, dist = g.nearest_mode(frames)
    assert np.array_equal(modes // 3, digits)  # 2% noise never moves a frame to another digit
    assert 0.5 * 0.02 * 196 < dist.mean() < 2 * 0.02 * 196


def test_mode_coverage_reads_high_on_data_and_low_on_one_digit_or_noise():
    g = Glyphs()
    rng = np.random.default_rng(1)
    data = mode_coverage(g, g.sample(1000, rng)[0])
    assert data["clean"] > 0.97 and data["digit_tv"] < 0.06 and data["digits_seen"] == 10
    ones = np.repeat(g.templates[3:4, ..., None], 200, 0).astype(np.float32)  # only the digit 1
    one = mode_coverage(g, ones)
    assert one["clean"] == 1.0 and math.isclose(one["digit_tv"], 0.9) and one["digits_seen"] == 1
    noise = mode_coverage(g, rng.integers(0, 2, (200, 14, 14, 1)).astype(np.float32))
    assert noise["clean"] == 0.0 and noise["digits_seen"] == 0


def test_the_named_glyph_sets_grow_and_the_study_uses_the_noisy_14x14_one():
    sizes = [(g.side, g.noise) for g in GLYPH_SETS.values()]
    assert sizes == sorted(sizes, key=lambda s: (s[0], -s[1])) and len(set(sizes)) == len(sizes)
    assert StudySettings().glyphs == GLYPH_SETS["14x14, noise 0.02"] == Glyphs()
    for g in GLYPH_SETS.values():  # every set classifies its own noise-free modes as clean, one mode each
        assert mode_coverage(g, g.templates[..., None].astype(np.float32))["clean"] == 1.0


def test_glyphs_refuse_a_glyph_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        Glyphs(side=12)
    with pytest.raises(ValueError, match="noise"):
        Glyphs(noise=0.7)


def _fake(values: dict[tuple[int, bool], list[float]]) -> dict:
    variants = []
    for (steps, acp), fds in values.items():
        for seed, fd in enumerate(fds):
            point = {"batches": 10, "train_seconds": 1.0, "fd_pca": fd, "clean": 0.5, "digit_tv": 0.1,
                     "digits_seen": 10, "autocorr": [0.1] * steps, "penalty": [0.0] * steps}  # fmt: skip
            variants.append({"steps": steps, "acp": acp, "seed": seed, "curve": [point]})
    return {"variants": variants}


def test_verdict_follows_the_numbers_and_their_noise():
    win = _fake({(1, False): [2.0, 2.1, 1.9], (4, True): [1.0, 1.1, 0.9]})
    assert verdict(win).startswith("Here the DTM wins on fd_pca (lower is better): DTM T = 4 + ACP")
    lose = _fake({(1, False): [1.0, 1.1, 0.9], (4, True): [2.0, 2.1, 1.9]})
    assert verdict(lose).startswith("Here the MEBM wins")
    tie = _fake({(1, False): [1.0, 2.0, 1.5], (4, True): [1.4, 1.9, 1.2]})
    assert verdict(tie).startswith("Here neither wins")
    assert verdict(win, "fd_pca", lower_is_better=False).startswith("Here the MEBM wins on fd_pca (higher")
    row = summary(win)[0]
    assert row["variant"] == "MEBM (T = 1)" and math.isclose(row["fd_pca"][0], 2.0)
    assert math.isclose(row["fd_pca"][1], 0.1 / math.sqrt(3))


@pytest.mark.slow
def test_quick_study_runs_and_the_penalty_is_measured_at_every_point(tmp_path):
    out = tmp_path / "study.json"
    args = ["--quick", "--glyphs", "10x10, noise 0", "--batches", "30", "--batches-per-point", "15", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dtm_vs_mebm.py"), *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["settings"]["glyphs"] == {"side": 10, "scale": 1, "shifts": [0, 2, 4], "noise": 0.0}
    names = {(v["steps"], v["acp"]) for v in result["variants"]}
    assert names == {(1, False), (1, True), (2, False), (2, True)}
    for v in result["variants"]:
        assert [p["batches"] for p in v["curve"]] == [15, 30]
        assert all(len(p["autocorr"]) == v["steps"] and None not in p["autocorr"] for p in v["curve"])
        assert len(v["samples"]) == 24 and len(v["samples"][0]) == 100
        pen = [p["penalty"] for p in v["curve"]]
        if not v["acp"]:
            assert all(c == 0 for cps in pen for c in cps)
            continue
        for prev, now in zip(
            v["curve"][:-1], v["curve"][1:], strict=True
        ):  # each point's update follows the adaptive rule
            for k in range(v["steps"]):
                want = adaptive_correlation_penalty(prev["penalty"][k], now["autocorr"][k], prev["autocorr"][k])
                assert math.isclose(now["penalty"][k], want, rel_tol=1e-6, abs_tol=1e-9), (k, prev, now)
    assert "Here " in proc.stdout and "study wall time" in proc.stdout
