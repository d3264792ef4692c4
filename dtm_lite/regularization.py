"""Adaptive correlation penalty (reference section 7.6).

The correlation penalty adds ``-cp * Cov_(i, j)`` to the weight ascent direction; it slows the growth
of strong couplings that make block Gibbs chains mix badly. Once per epoch, the step's autocorrelation
scalar ``a`` (``dtm_lite.metrics.autocorrelation_scalar``) updates ``cp``:

    cp <- max(cp, cp_min)
    if a < tau:          cp *= 0.6 + 0.2 * a / tau      (mixing well: relax, faster when a is small)
    elif a > a_prev:     cp *= 1.2 if a < 1.8 * tau else 1.5   (mixing worse and getting worse: tighten)
    else:                cp *= 0.95                      (above threshold but improving: relax slowly)
    if cp < cp_min:      cp = 0

The research code gives no value for ``cp_min``; ``1e-5`` is this package's default.
"""

from __future__ import annotations

import math

TAU = 0.016
CP_MIN = 1e-5


def adaptive_correlation_penalty(
    cp: float, a: float, a_prev: float | None, tau: float = TAU, cp_min: float = CP_MIN
) -> float:
    """Next correlation penalty from the current ``cp`` and autocorrelations ``a`` (now), ``a_prev``.

    ``a_prev=None`` (first epoch) counts as ``+inf``: the autocorrelation is not increasing. See the
    module docstring for the rule. Returns a python float >= 0 (0 when the penalty dropped below cp_min).
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
    else:
        cp *= 0.95
    return 0.0 if cp < cp_min else cp
