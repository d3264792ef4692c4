"""Evaluation without FID reference statistics: Fréchet distance in a PCA space, and autocorrelation.

FID needs an Inception network and reference statistics; for small binary / few-level images we instead
fit PCA on held-out frames and compare Gaussian fits of the PCA features (``FDPCA``). Two reference
numbers put a score in context, in the same units:

* the *floor*: the score of a second, disjoint held-out set (data vs data; finite-sample noise), and
* the *independent-pixel baseline*: the score of images whose pixel-channels are drawn independently
  from their held-out marginals (right marginals, no correlations).

A model whose samples score near the floor is good; one near the independent baseline has learned only
the marginals. Fréchet distances grow as the sample size shrinks, so compare scores computed from the
same number of images.

All image inputs are numpy arrays ``(n, H, W, C)`` of floats in ``[0, 1]``; they are flattened to
``(n, D)`` with ``D = H * W * C`` inside.

FD-PCA is blind to small objects (LunarLander's lander is a few pixels at 32 x 32), so the *object metric*
looks at them directly. An ``ObjectClass`` says which pixels belong to a class (a predicate on the images,
or a palette colour with a tolerance; ``LANDER`` is "blue-dominant", ``B > 0.5 and G <= 0.5``). A *blob* is
an 8-connected component of class pixels with at least ``min_size`` pixels (default 2). ``object_stats``
gives per-frame counts, sizes, stray pixels and positions; ``compare_objects(data, samples)`` returns
these CSV-ready numbers:

* ``obj_one_rate`` / ``obj_one_rate_data``: fraction of model / data frames with exactly one blob (a
  lander drawn as one object, not as scattered pixels or several pieces);
* ``obj_stray`` / ``obj_stray_data``: mean number of class pixels per frame outside the frame's largest
  blob (all class pixels when it has none): scattered pixels;
* ``obj_size_dist``: 1-Wasserstein distance between the largest-blob sizes of data and model frames (0
  for a frame without a blob), in pixels: ``W1 = ∫ |F_data(x) - F_model(x)| dx`` over empirical CDFs;
* ``obj_pos_dist``: 1-Wasserstein distance between the blob-centre rows of data and model frames plus
  the same for columns, over frames that have a blob, in pixels; NaN when one side has no blob at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage, stats

from dtm_lite.core.encoding import to_unit_float
from dtm_lite.core.validation import check_int

Rng = np.random.Generator | int | None


def _flatten(images: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n, D) float64."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected a batch of images (n, H, W, C), got shape {x.shape}")
    return x.reshape(len(x), -1)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via ``eigh`` (negative eigenvalues -> 0)."""
    s = 0.5 * (s + s.T)
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    ``d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½)``, with ``mu`` of shape (k,) and ``S``
    of shape (k, k). Square roots are symmetric PSD roots from ``eigh`` (negative eigenvalues from
    round-off are clipped to 0), so the result is real; it is clipped at 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    k = mu1.shape[0]
    if mu2.shape != (k,) or cov1.shape != (k, k) or cov2.shape != (k, k):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, cov1 {cov1.shape}, mu2 {mu2.shape}, cov2 {cov2.shape}")
    s1_half = _psd_sqrt(cov1)
    middle = s1_half @ cov2 @ s1_half
    middle = 0.5 * (middle + middle.T)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)
    return max(d, 0.0)


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (k,) and unbiased covariance (k, k) of features (n, k); needs n >= 2."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need features of shape (n >= 2, k), got {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


class _Fitted(NamedTuple):
    """An :class:`FDPCA`'s state after :meth:`FDPCA.fit`."""

    mean: np.ndarray
    components: np.ndarray
    image_shape: tuple[int, ...]
    holdout: np.ndarray
    ref_mu: np.ndarray
    ref_cov: np.ndarray


class FDPCA:
    """Fréchet distance in a PCA feature space fitted on held-out frames.

    ``fit(holdout)`` centres the held-out images ``X`` (N, D) and keeps the top ``k`` right singular
    vectors of ``X - mean`` as ``components`` (k, D); ``features(x) = (x - mean) @ components.T`` (n, k).
    ``score(x)`` is the Fréchet distance between Gaussian fits of ``features(x)`` and of
    ``features(holdout)`` (the reference).
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None  # (D,)
        self.components: np.ndarray | None = None  # (k, D)
        self.image_shape: tuple[int, ...] | None = None  # (H, W, C)
        self.holdout: np.ndarray | None = None  # (N, D) float32, for the baselines
        self.ref_mu: np.ndarray | None = None  # (k,)
        self.ref_cov: np.ndarray | None = None  # (k, k)

    @classmethod
    def fit(cls, holdout_images: np.ndarray, n_components: int = 32) -> FDPCA:
        """Fit PCA on held-out images (N, H, W, C); ``k = min(n_components, N - 1, D)`` (at least 1)."""
        x = _flatten(holdout_images)
        n, d = x.shape
        if n < 2:
            raise ValueError(f"FDPCA.fit needs at least 2 held-out images, got {n}")
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self = cls()
        self.image_shape = tuple(np.shape(holdout_images)[1:])
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[: max(1, min(n_components, n - 1, d))]
        self.mean, self.components = mean, components
        self.holdout = x.astype(np.float32)
        self.ref_mu, self.ref_cov = gaussian_fit((x - mean) @ components.T)  # features(holdout_images)
        return self

    @property
    def n_components(self) -> int:
        return len(self._fitted().components)

    def _fitted(self) -> _Fitted:
        """The fitted state, every field set; raises before :meth:`fit`."""
        if (
            self.mean is None
            or self.components is None
            or self.image_shape is None
            or self.holdout is None
            or self.ref_mu is None
            or self.ref_cov is None
        ):
            raise RuntimeError("FDPCA is not fitted: use FDPCA.fit(holdout_images)")
        return _Fitted(self.mean, self.components, self.image_shape, self.holdout, self.ref_mu, self.ref_cov)

    def features(self, images: np.ndarray) -> np.ndarray:
        """PCA features (n, k) of images (n, H, W, C)."""
        fit = self._fitted()
        x = _flatten(images)
        if x.shape[1] != fit.mean.shape[0]:
            raise ValueError(f"images have {x.shape[1]} values each, the PCA was fitted on {fit.mean.shape[0]}")
        return (x - fit.mean) @ fit.components.T

    def score(self, images: np.ndarray) -> float:
        """Fréchet distance between Gaussian fits of ``features(images)`` and of the held-out set."""
        mu, cov = gaussian_fit(self.features(images))
        fit = self._fitted()
        return frechet_distance(mu, cov, fit.ref_mu, fit.ref_cov)

    def floor(self, other_holdout_images: np.ndarray) -> float:
        """Data-vs-data score: the score of a second held-out set, disjoint from the fitted one."""
        return self.score(other_holdout_images)

    def independent_pixel_baseline(self, n: int, rng: Rng = None) -> np.ndarray:
        """n images (n, H, W, C), each pixel-channel drawn independently from its held-out values.

        Pixel-channel ``d`` of image ``i`` is ``holdout[r[i, d], d]`` with ``r`` uniform row indices, so
        binary and multi-level marginals are both reproduced exactly, with no correlations.
        """
        fit = self._fitted()
        return independent_pixels(fit.holdout.reshape((-1, *fit.image_shape)), n, rng)

    def marginal_error(self, images: np.ndarray) -> float:
        """Mean over pixel-channels of ``|mean(images) - mean(holdout)|``."""
        fit = self._fitted()
        return float(np.mean(np.abs(_flatten(images).mean(axis=0) - fit.mean)))


def independent_pixels(images: np.ndarray, n: int, rng: Rng = None) -> np.ndarray:
    """n images, each pixel-channel drawn independently from its values in ``images`` (m, H, W, C):
    pixel-channel ``d`` of image ``i`` is ``images[r[i, d], d]`` with ``r`` uniform row indices."""
    x = _flatten(images).astype(np.float32)
    rng = np.random.default_rng(rng)
    rows = rng.integers(0, len(x), size=(n, x.shape[1]))
    return np.take_along_axis(x, rows, axis=0).reshape((n, *np.shape(images)[1:]))


def evaluate(fd: FDPCA, samples: np.ndarray, floor_images: np.ndarray, rng: Rng = None) -> dict[str, float]:
    """Scores of model samples with their reference numbers, all in FD-PCA units.

    Returns ``{"fd_pca", "fd_floor", "fd_independent", "marginal_error"}``. The floor scores
    ``floor_images``, a second held-out set disjoint from the fitted one; the independent-pixel baseline
    is drawn (``max(len(samples), 2)`` rows) from the marginals of that same second set, so that, like the
    model, it never saw the reference images. Use ``len(floor_images) == len(samples)`` for a fair floor.
    """
    baseline = independent_pixels(floor_images, max(len(samples), 2), rng)
    return {
        "fd_pca": fd.score(samples),
        "fd_floor": fd.floor(floor_images),
        "fd_independent": fd.score(baseline),
        "marginal_error": fd.marginal_error(samples),
    }


def autocorrelation(trajectory: np.ndarray, n_dims: int = 32, seed: int = 0) -> np.ndarray:
    """Lagged autocorrelation R(ℓ), ℓ = 0..T-1, of free-running chains (the mixing diagnostic of Jelinčič et al.,
    arXiv 2510.23972, estimated as in their public replication: within groups of chains that share one input).

    ``trajectory`` holds the decoded images of each chain over time: ``(T, groups, chains, D)``, the chains of a
    group all clamped to the same input, or ``(T, chains, D)``, one group (every chain the same input). They are
    projected onto a fixed Gaussian basis ``B`` (D, n_dims) drawn from ``seed``: ``y = trajectory @ B``. Each
    (group, dimension) is normalised to ``z`` with zero mean and unit variance over the group's chains and times
    together; then ``R(ℓ) = mean_{group, chain, dim} [ 1/(T-ℓ) Σ_t z_t z_{t+ℓ} ]`` (unbiased per lag, so late
    lags are noisier, not shrunk towards 0), by FFT in O(T log T) per series. Chains that forget their start
    read R ≈ 0 (about ``±1/sqrt(groups · chains · n_dims · (T-ℓ))``); chains frozen in different states read 1.

    Normalising over a group's chains as well as time is what makes R a mixing diagnostic: a chain stuck away
    from the group's mean keeps ``z_t z_{t+ℓ} > 0`` at every lag, whereas per-series centring would hide it
    (and turn a slow drift into a negative correlation). Chains with *different* inputs must not share a
    group: a conditional step holds each chain near its own input, so that spread between inputs would read
    as correlation at every lag however well each chain mixes. A (group, dimension) with no variance at all
    (every chain of the group stuck on the same image) counts as perfectly correlated, R(ℓ) = 1, not NaN.
    """
    x = np.asarray(trajectory, np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or 0 in x.shape:
        raise ValueError(f"trajectory must be (T, groups, chains, D) or (T, chains, D), got shape {x.shape}")
    t, groups, chains, d = x.shape
    basis = np.random.default_rng(seed).standard_normal((d, n_dims)) / np.sqrt(d)
    y = np.moveaxis(x @ basis, 2, 3)  # (T, groups, n_dims, chains)
    scale = np.abs(y).max(axis=(0, 3))  # (groups, n_dims)
    y = y - y.mean(axis=(0, 3), keepdims=True)
    std = y.std(axis=(0, 3))
    constant = std <= 1e-10 * np.maximum(scale, 1e-300)  # relative test: round-off is not variance
    z = (y[:, ~constant] / std[~constant][:, None]).reshape(t, -1)  # (T, series)
    spectrum = np.fft.rfft(z, n=2 * t, axis=0)
    lagged_sums = np.fft.irfft(np.abs(spectrum) ** 2, n=2 * t, axis=0)[:t]  # (T, S'): Σ_t z_t z_{t+ℓ}
    per_lag = lagged_sums.sum(axis=1) / np.arange(t, 0, -1)
    return (per_lag + chains * constant.sum()) / (chains * constant.size)


def autocorrelation_scalar(r: np.ndarray, last: int | None = None) -> float:
    """Mean of R over the ``last`` lags; default ``max(1, len(R) // 10)`` (the last 10% of lags).
    For the paper's window (lags 1,100-1,200 sweeps) pass the matching slice of R instead."""
    r = np.asarray(r, np.float64)
    if r.ndim != 1 or len(r) == 0:
        raise ValueError(f"R must be a non-empty 1-D array, got shape {r.shape}")
    last = max(1, len(r) // 10) if last is None else int(last)
    if not 1 <= last <= len(r):
        raise ValueError(f"last must be in [1, {len(r)}], got {last}")
    return float(r[-last:].mean())


# ---- object metric: small coloured objects ----------------------------------------------------------------


def blue_dominant(images: np.ndarray) -> np.ndarray:
    """LunarLander's lander pixels: ``B > 0.5 and G <= 0.5`` on RGB images (n, H, W, 3) -> mask (n, H, W).

    The lander body (128, 102, 230)/255 decodes to blue (0, 0, 1) or magenta (1, 0, 1) under binary RGB
    thresholding, to itself under the palette encoding, and to (0.5, 0.5, 1) under a 2- or 4-level
    thermometer (hence ``G <= 0.5``, not ``< 0.5``); black sky, white terrain and yellow flags never pass,
    nor does any grey mix of sky and terrain (it would need ``G = B``).
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"blue_dominant needs RGB images (n, H, W, 3), got shape {x.shape}")
    return (x[..., 2] > 0.5) & (x[..., 1] <= 0.5)


@dataclass(frozen=True)
class ObjectClass:
    """Which pixels belong to a class of objects: a predicate or a palette entry (one of the two).

    * ``predicate``: ``f(images (n, H, W, C) float in [0, 1]) -> bool mask (n, H, W)``.
    * ``color`` with ``tol``: a pixel belongs when ``max_c |v_c - color_c| <= tol`` (per-channel distance,
      so ``tol`` reads in channel units); ``color`` has one value in [0, 1] per channel.

    ``channels`` is the channel count C the class is defined for (None: any); a palette entry sets it to
    ``len(color)``. ``mask(images)`` checks the input and the predicate's output.
    """

    name: str
    predicate: Callable[[np.ndarray], np.ndarray] | None = None
    color: tuple[float, ...] | None = None
    tol: float = 0.1
    channels: int | None = None

    def __post_init__(self) -> None:
        if (self.predicate is None) == (self.color is None):
            raise ValueError(
                f"ObjectClass {self.name!r}: give exactly one of predicate=f(images) -> mask or color=(r, g, b)"
            )
        if self.predicate is not None and not callable(self.predicate):
            raise ValueError(f"ObjectClass {self.name!r}: predicate must be callable, got {self.predicate!r}")
        if self.color is not None:
            color = tuple(float(v) for v in np.atleast_1d(self.color))
            if not color or min(color) < 0 or max(color) > 1:
                raise ValueError(f"ObjectClass {self.name!r}: color must be values in [0, 1], got {self.color!r}")
            if self.channels is not None and self.channels != len(color):
                raise ValueError(
                    f"ObjectClass {self.name!r}: color has {len(color)} values but channels={self.channels}"
                )
            object.__setattr__(self, "color", color)
            object.__setattr__(self, "channels", len(color))
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"ObjectClass {self.name!r}: tol must be a finite number >= 0, got {self.tol!r}")

    def mask(self, images: np.ndarray) -> np.ndarray:
        """Bool mask (n, H, W) of the class's pixels in images (n, H, W, C) (floats in [0, 1] or uint8)."""
        x = _object_images(images, self)
        if self.predicate is None:  # a palette entry (__post_init__: exactly one of the two is set)
            return np.abs(x - np.asarray(self.color, np.float32)).max(axis=-1) <= self.tol
        m = np.asarray(self.predicate(x))
        if m.shape != x.shape[:3] or m.dtype != np.bool_:
            raise ValueError(
                f"ObjectClass {self.name!r}: predicate must return a bool mask of shape {x.shape[:3]}, "
                f"got {m.dtype} of shape {m.shape}"
            )
        return m


LANDER = ObjectClass("lander", predicate=blue_dominant, channels=3)


def _object_images(images: np.ndarray, cls: ObjectClass) -> np.ndarray:
    """Check images (n >= 1, H, W, C) against ``cls.channels``; return them as float32 in [0, 1]."""
    shape = np.shape(images)
    if len(shape) != 4 or shape[0] < 1:
        raise ValueError(f"object metrics need a batch of images (n >= 1, H, W, C), got shape {shape}")
    if cls.channels is not None and shape[-1] != cls.channels:
        raise ValueError(
            f"object class {cls.name!r} needs images with C = {cls.channels} channels, got shape {shape}; "
            "pick a class defined for these images (e.g. a predicate on C = 1)"
        )
    return to_unit_float(images, name="images")


@dataclass(frozen=True)
class ObjectStats:
    """Per-frame statistics of a class's blobs (8-connected components of at least ``min_size`` pixels).

    ``n_blobs`` (n,) int: blobs per frame; ``largest`` (n,) int: size of the largest blob, 0 if none;
    ``stray`` (n,) int: class pixels outside the largest blob (all of them if there is none);
    ``row``, ``col`` (n,) float: the largest blob's centre (mean pixel row, column), NaN if none;
    ``row_hist`` (H,) and ``col_hist`` (W,) int: over frames with a blob, how many have their centre in
    each row / column (centre rounded half up). Ties for the largest blob go to the one whose first
    pixel comes first in raster order.
    """

    n_blobs: np.ndarray
    largest: np.ndarray
    stray: np.ndarray
    row: np.ndarray
    col: np.ndarray
    row_hist: np.ndarray
    col_hist: np.ndarray

    @property
    def has_blob(self) -> np.ndarray:
        """(n,) bool: frames with at least one blob."""
        return self.n_blobs > 0


def object_stats(images: np.ndarray, cls: ObjectClass = LANDER, min_size: int = 2) -> ObjectStats:
    """Blob statistics of class ``cls`` in each of images (n, H, W, C); see :class:`ObjectStats`.

    Components are 8-connected (diagonal neighbours join) within a frame, found by ``scipy.ndimage.label``
    on the whole batch at once with a structuring element that never links two frames.
    """
    min_size = check_int("min_size", min_size, 1)
    mask = cls.mask(images)
    n, h, w = mask.shape
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True  # 8-connectivity inside a frame, none across frames
    labels, k = ndimage.label(mask, structure=structure)
    flat = labels.ravel()
    size = np.bincount(flat, minlength=k + 1)[1:]  # (k,) pixels per component
    frame_ix, row_ix, col_ix = (a.ravel() for a in np.indices(mask.shape))
    safe = np.maximum(size, 1)
    frame = np.rint(np.bincount(flat, weights=frame_ix, minlength=k + 1)[1:] / safe).astype(np.int64)
    row_c = np.bincount(flat, weights=row_ix, minlength=k + 1)[1:] / safe
    col_c = np.bincount(flat, weights=col_ix, minlength=k + 1)[1:] / safe
    blob = size >= min_size
    n_blobs = np.bincount(frame[blob], minlength=n)
    largest = np.zeros(n, np.int64)
    row, col = np.full(n, np.nan), np.full(n, np.nan)
    ids = np.flatnonzero(blob)  # labels are numbered in raster order, so ids is sorted by first pixel
    order = ids[np.lexsort((ids, -size[ids], frame[ids]))]  # by frame, then largest first, then first pixel
    first = order[np.r_[True, frame[order][1:] != frame[order][:-1]]] if len(order) else order
    largest[frame[first]] = size[first]
    row[frame[first]], col[frame[first]] = row_c[first], col_c[first]
    stray = mask.reshape(n, -1).sum(axis=1) - largest
    row_hist = np.bincount(np.floor(row_c[first] + 0.5).astype(np.int64), minlength=h)
    col_hist = np.bincount(np.floor(col_c[first] + 0.5).astype(np.int64), minlength=w)
    return ObjectStats(n_blobs, largest, stray, row, col, row_hist, col_hist)


def compare_objects(
    data_images: np.ndarray, sample_images: np.ndarray, cls: ObjectClass = LANDER, min_size: int = 2
) -> dict[str, float]:
    """Object statistics of model samples next to those of data frames; see the module docstring.

    Both inputs are (n, H, W, C) (their n may differ, H, W, C must agree). Returns ``obj_one_rate``,
    ``obj_one_rate_data``, ``obj_stray``, ``obj_stray_data``, ``obj_size_dist`` (1-Wasserstein distance
    between the largest-blob sizes of all frames, 0 counting for no blob, in pixels) and ``obj_pos_dist``
    (1-Wasserstein distance between the blob-centre rows plus that between the columns, over frames with
    a blob, in pixels; NaN when either side has no blob at all).
    """
    if np.shape(data_images)[1:] != np.shape(sample_images)[1:]:
        raise ValueError(
            f"data and samples must share (H, W, C), got {np.shape(data_images)} and {np.shape(sample_images)}"
        )
    d, s = object_stats(data_images, cls, min_size), object_stats(sample_images, cls, min_size)
    if d.has_blob.any() and s.has_blob.any():
        pos = wasserstein_1d(d.row[d.has_blob], s.row[s.has_blob]) + wasserstein_1d(
            d.col[d.has_blob], s.col[s.has_blob]
        )
    else:
        pos = math.nan
    return {
        "obj_one_rate": float(np.mean(s.n_blobs == 1)),
        "obj_one_rate_data": float(np.mean(d.n_blobs == 1)),
        "obj_stray": float(np.mean(s.stray)),
        "obj_stray_data": float(np.mean(d.stray)),
        "obj_size_dist": wasserstein_1d(d.largest, s.largest),
        "obj_pos_dist": float(pos),
    }


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """1-Wasserstein distance between the empirical distributions of samples u (n,) and v (m,):
    ``W1 = ∫ |F_u(x) - F_v(x)| dx`` with F the empirical CDFs (``scipy.stats.wasserstein_distance``)."""
    u, v = np.asarray(u, np.float64).ravel(), np.asarray(v, np.float64).ravel()
    if len(u) == 0 or len(v) == 0:
        raise ValueError("wasserstein_1d needs at least one value on each side")
    return float(stats.wasserstein_distance(u, v))
