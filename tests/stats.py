"""Tolerances that follow from the sample size: standard errors from independent chains."""

import numpy as np


def chain_means_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values: (n_samples, n_chains, ...). Chains are independent, samples within a chain are not,
    so the standard error comes from the spread of per-chain means: SE = std(chain means) / sqrt(C)."""
    per_chain = values.mean(0)
    c = per_chain.shape[0]
    return per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(c)


def z_scores(estimate: np.ndarray, se: np.ndarray, exact: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """|estimate - exact| / SE, with SE floored (a clamped spin has SE 0 and must match exactly)."""
    return np.abs(estimate - exact) / np.maximum(se, floor)
