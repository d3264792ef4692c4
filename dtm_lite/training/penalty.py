"""Adaptive correlation penalty (ACP; Jelinčič et al., arXiv 2510.23972, and its public replication).

The correlation penalty adds ``-cp * Cov_(i, j)`` to the weight ascent direction; it slows the growth
of strong couplings that make block Gibbs chains mix badly. Once per epoch, the step's autocorrelation
scalar ``a`` (``dtm_lite.evaluation.metrics.autocorrelation_scalar``) updates ``cp``:

    cp <- max(cp, cp_min)
    if a < tau:          cp *= 0.6 + 0.2 * a / tau      (mixing well: relax, faster when a is small)
    elif a > a_prev:     cp *= 1.2 if a < 1.8 * tau else 1.5   (mixing worse and getting worse: tighten)
    elif a >= 1.8 * tau and a > 0.9 * a_prev:
                         cp *= 1.5                      (far above threshold, not falling fast: tighten)
    else:                cp *= 0.95                      (above threshold and improving: relax slowly)
    if cp < cp_min:      cp = 0

``cp_min`` is 1e-3, the research code's default (``CorrelationPenaltyConfig.cp_min``); the training loop
measures ``a`` once before the first epoch too, as the research code does, so the first update has an
``a_prev``, and an adaptive run trains with ``max(cp, cp_min)`` from its first batch.

Deliberate departure from the research code: its rule has no third branch, so it relaxes cp (x 0.95)
whenever ``a`` did not rise, however far above tau ``a`` sits. A flat, noisy ``a`` then rises and falls
at random, and cp grows only about x 1.2 an epoch, too slowly to matter within a run. Measured: on
LunarLander (the shipped 32x32 model's setting) cp stayed between 2e-4 and 2e-3 over 300 batches; on the frozen 8x8
model of ``tests/test_training.py`` (20 epochs of 5 batches), cp went 1.5e-3 -> 0.055 and ``a`` stayed at
0.72-0.88, as without any penalty (0.81-0.88). A fixed penalty shows the scale needed there (``a`` over
the last 10 epochs): cp = 0.03 gives 0.62-0.79, 0.1 gives 0.36-0.65, 0.3 gives 0.01-0.47 and 1.0 about 0
(-0.01-0.10), because at equilibrium the penalty balances the data term ``β(⟨s s⟩₊ - ⟨s s⟩₋)`` (Adam
rescales steps, not that balance). So while ``a >= 1.8 tau`` and it has not fallen by at least 10% since
the last epoch (a fall beyond the measurement's noise), cp keeps growing x 1.5 an epoch. On the same model
it then passes 0.1 at epoch 12 and ``a`` comes down: 0.07-0.59 over the last 5 epochs, mean 0.33 against
0.84 without the penalty.
Pass ``research_rule=True`` for the research code's rule exactly.
"""

from __future__ import annotations

import math

TAU = 0.016
CP_MIN = 1e-3
FALL_FAST = 0.9  # a fall to below this fraction of a_prev counts as improving (beyond the measurement's noise)


def adaptive_correlation_penalty(
    cp: float,
    a: float,
    a_prev: float | None,
    tau: float = TAU,
    cp_min: float = CP_MIN,
    *,
    research_rule: bool = False,
) -> float:
    """Next correlation penalty from the current ``cp`` and autocorrelations ``a`` (now), ``a_prev``.

    ``a_prev=None`` (no earlier measurement) counts as ``+inf``: the autocorrelation is not increasing.
    See the module docstring for the rule; ``research_rule=True`` drops this package's third branch
    (tighten while ``a`` stays far above ``tau``). Returns a python float >= 0 (0 when the penalty dropped
    below cp_min).
    """
    cp, a, tau, cp_min = float(cp), float(a), float(tau), float(cp_min)
    a_prev = math.inf if a_prev is None else float(a_prev)
    if not math.isfinite(cp) or cp < 0:
        raise ValueError(f"correlation penalty cp must be a finite number >= 0, got {cp}")
    if math.isnan(a) or math.isnan(a_prev):
        raise ValueError(f"autocorrelation must not be NaN (a={a}, a_prev={a_prev}); check the held-out chains")
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"threshold tau must be a finite number > 0, got {tau}")
    if not math.isfinite(cp_min) or cp_min < 0:
        raise ValueError(f"cp_min must be a finite number >= 0, got {cp_min}")
    cp = max(cp, cp_min)
    if a < tau:
        cp *= 0.6 + 0.2 * a / tau
    elif a > a_prev:
        cp *= 1.2 if a < 1.8 * tau else 1.5
    elif not research_rule and a >= 1.8 * tau and a > FALL_FAST * a_prev:
        cp *= 1.5
    else:
        cp *= 0.95
    return 0.0 if cp < cp_min else cp
