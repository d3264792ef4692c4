"""Small argument checks shared by the configs: one line a field, one wording for every error.

Each check returns the value normalised to a plain Python ``int`` / ``float`` / ``bool`` (so that NumPy
scalars such as ``np.int64(3)`` or ``np.float32(0.03)`` are accepted and still serialise to JSON), or
raises ``ValueError`` naming the argument, what it must be, and the value it got.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_int(name: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``v`` as an ``int``: a Python or NumPy integer (not a bool, float or string) in ``[lo, hi]``."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
        raise ValueError(f"{name} must be an integer{_int_range(lo, hi)}, got {v!r}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer{_int_range(lo, hi)}, got {v!r}")
    return v


def check_float(
    name: str,
    v: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``v`` as a finite ``float``: a Python or NumPy real number (not a bool or string, never NaN or
    infinite) with ``lo <= v <= hi`` (``lo < v`` with ``lo_open``, ``v < hi`` with ``hi_open``), in float64 and
    in float32 alike, since the model computes in float32: ``1e39`` (infinite in float32) is refused, and so is
    ``1e-50`` where 0 is excluded (it rounds to 0)."""
    ok = not isinstance(v, bool | np.bool_) and isinstance(v, int | float | np.integer | np.floating)
    if ok:
        v = float(v)
        with np.errstate(over="ignore", under="ignore"):
            v32 = float(np.float32(v))
        ok = all(
            math.isfinite(x)
            and (lo is None or (x > lo if lo_open else x >= lo))
            and (hi is None or (x < hi if hi_open else x <= hi))
            for x in (v, v32)
        )
        if not ok and math.isfinite(v) and not math.isfinite(v32):
            raise ValueError(
                f"{name} must be a finite number{_float_range(lo, hi, lo_open, hi_open)} in float32 (the model's "
                f"precision: |x| <= {float(np.finfo(np.float32).max):.4g}), got {v!r}, which is infinite in float32"
            )
    if not ok:
        raise ValueError(f"{name} must be a finite number{_float_range(lo, hi, lo_open, hi_open)}, got {v!r}")
    return v


def check_bool(name: str, v: Any) -> bool:
    """``v`` as a ``bool``: ``True`` / ``False`` (or a NumPy bool), never a string, number or None."""
    if not isinstance(v, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def check_beta(name: str, v: Any) -> tuple[float, float]:
    """An inverse-temperature ramp ``(start, end)``: two finite numbers > 0."""
    if isinstance(v, str | bytes) or not isinstance(v, Sequence | np.ndarray) or len(v) != 2:
        raise ValueError(f"{name} must be (start, end), two finite numbers > 0, got {v!r}")
    return check_float(f"{name}[0]", v[0], 0, lo_open=True), check_float(f"{name}[1]", v[1], 0, lo_open=True)


def _int_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    return f" >= {lo}" if lo is not None else (f" <= {hi}" if hi is not None else "")


def _float_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    return f" {'<' if hi_open else '<='} {hi}" if hi is not None else ""
