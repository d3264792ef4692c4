"""Labels: a DTM that draws (or reads) a class, as extra visible bits on the grid.

A model with ``n_classes = K`` and ``label_spots = S`` has ``K * S`` extra visible bits, the one-hot code of the
class repeated S times (``label_code``), on colour-0 sites around the image (``place_labels``), as in the
conditional DTM of Jelinčič et al. (arXiv 2510.23972). They are noised by the forward process at their own
``label_rate``, clamped in the positive phase like the image, and either clamped (conditional samples), left
free (joint samples) or read out (:func:`classify`, ``decode_labels``: the class with most votes).

A layout model (:mod:`dtm_lite.conditioning.layout`) with labels also counts its layout prior per class,
``p(ℓ | class)``: a label then says where the object goes. With ``label_gates_layout`` the label also picks the
layout weights, one set per class, so it says where within its layout pixel, and how, the object is drawn.
With ``label_spots = 0`` these are the only ways the label acts (what the LunarLander ``"zone"`` model does: the
label bits on a ring around the image are too far from a lander of a few pixels to steer it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.conditioning.layout import LayoutInputs, class_posterior
from dtm_lite.core.conditioner import Batch, Conditioner
from dtm_lite.core.config import as_key
from dtm_lite.core.graph import GridGraph
from dtm_lite.core.validation import check_bool, check_int

if TYPE_CHECKING:
    from dtm_lite.model import DTM


def place_labels(graph: GridGraph, visible: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Sites of the ``n_classes * spots`` label bits: int array, bit ``s * K + k`` = class k of spot s.

    The spots sit at evenly spaced points of a ring just outside the image's bounding box, each spot's K bits
    on the free colour-0 sites nearest to its point, so every spot touches the image's border region."""
    n = graph.side
    sy, sx = np.divmod(np.asarray(visible), n)
    free = np.ones(graph.n_nodes, bool)
    free[visible] = False
    free &= graph.colors == 0
    cand = np.flatnonzero(free)
    need = n_classes * spots
    if len(cand) < need:
        raise ValueError(
            f"{need} label bits ({n_classes} classes x {spots} spots) do not fit the {len(cand)} free colour-0 sites "
            f"of {graph!r}; use a larger preset or fewer label_spots"
        )
    y0, y1, x0, x1 = sy.min() - 1.5, sy.max() + 1.5, sx.min() - 1.5, sx.max() + 1.5
    perimeter = 2 * ((y1 - y0) + (x1 - x0))
    cy, cx = np.divmod(cand, n)
    out = np.empty(need, np.int64)
    taken = np.zeros(len(cand), bool)
    for s in range(spots):
        d = (s + 0.5) / spots * perimeter  # walk the ring: top, right, bottom, left
        for length, (ay, ax, dy, dx) in zip(
            (x1 - x0, y1 - y0, x1 - x0, y1 - y0),
            ((y0, x0, 0, 1), (y0, x1, 1, 0), (y1, x1, 0, -1), (y1, x0, -1, 0)),
            strict=True,
        ):
            if d <= length:
                py, px = ay + dy * d, ax + dx * d
                break
            d -= length
        dist = (cy - py) ** 2 + (cx - px) ** 2
        dist[taken] = np.inf
        for k in range(n_classes):
            j = int(np.argmin(dist))
            taken[j], dist[j] = True, np.inf
            out[s * n_classes + k] = cand[j]
    return out


def label_code(labels: jax.Array, n_classes: int, spots: int) -> jax.Array:
    """Class ids ``(B,)`` -> label bits ``(B, spots * n_classes)`` uint8: the one-hot code, ``spots`` times."""
    onehot = jax.nn.one_hot(labels, n_classes, dtype=jnp.uint8)
    return jnp.tile(onehot, (1, spots))


def label_votes(bits: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Label bits ``(..., spots * n_classes)`` -> votes ``(..., n_classes)`` in [0, 1]: the fraction of spots
    whose bit of each class is on."""
    b = np.asarray(bits, np.float32)
    return b.reshape(*b.shape[:-1], spots, n_classes).mean(-2)


def decode_labels(bits: np.ndarray, n_classes: int, spots: int) -> np.ndarray:
    """Label bits -> class ids ``(...)`` int: most votes (ties: the lowest id)."""
    return np.argmax(label_votes(bits, n_classes, spots), axis=-1)


class LabelBits(Conditioner):
    """The label bits as a conditioner: ``batch["labels"]`` (training) or ``cond["labels"]`` (generation: held)
    are class ids ``(B,)``."""

    def __init__(self, sites: np.ndarray, n_classes: int, spots: int, rate: float) -> None:
        self.sites, self.n_classes, self.spots, self.rate = sites, n_classes, spots, rate

    def clean_bits(self, batch: Batch) -> jax.Array:
        return label_code(batch["labels"], self.n_classes, self.spots)

    def clamp(self, cond: Batch) -> jax.Array | None:
        if "labels" not in cond:
            return None
        return 2.0 * label_code(cond["labels"], self.n_classes, self.spots).astype(jnp.float32) - 1.0


def check_ids(name: str, ids: Any, n: int, count: int | None = None) -> np.ndarray:
    """Class or action ids ``(count,)`` in ``0 .. n-1`` as int32, or a clear error."""
    a = np.asarray(ids)
    if a.ndim != 1 or (count is not None and len(a) != count):
        want = f"({count},)" if count is not None else "(n,)"
        raise ValueError(f"{name} must be integer ids of shape {want}, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise ValueError(f"{name} must be integer ids, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = int(a[(a < 0) | (a >= n)][0])
        raise ValueError(f"{name} must be ids in 0..{n - 1}, got {bad}")
    return a.astype(np.int32)


def classify(model: DTM, frames: Any, key: Any = 0, *, sweeps: int | None = None, chains: int = 8,
             return_votes: bool = False) -> Any:  # fmt: skip
    """Class ids ``(n,)`` of frames ``(n, H, W, C)`` (or bits ``(n, n_visible)``), and with ``return_votes`` an
    estimate of ``p(class | image)`` ``(n, n_classes)`` whose argmax they are.

    With label bits: the label bits sampled with the image clamped (step k's image: the frame noised to
    ``t_k``; the clean frame at step 0); the votes are each class's label bits averaged over the spots, over
    ``chains`` independent chains a frame and over the second half of step 0's sweeps (recorded every 5).
    ``key``: a JAX key or an integer seed (default 0).

    A labelled layout model without label bits (``label_spots=0``) reads the frame's layout ℓ (its object's
    centre) and returns ``p(class | ℓ)`` from its counted prior (:func:`~dtm_lite.conditioning.layout.
    class_posterior`): Bayes' rule on the model's own ``p(class) p(ℓ | class)``, without sampling. It is exact
    when the picture given ℓ does not depend on the class; with ``label_gates_layout`` it does, but only in how
    the object is drawn near ℓ, which this reading leaves out."""
    cfg = model.config
    if not cfg.n_classes:
        raise ValueError("classify needs a labelled model: build it with DTMConfig(n_classes=K) and train it")
    x = np.asarray(frames)
    n_img = model.encoding.n_bits
    if x.ndim in (2, 4) and len(x) == 0:
        raise ValueError(
            f"classify needs at least one frame: got none, shape {x.shape}; pass images (n, "
            f"{', '.join(map(str, cfg.image_shape))}) or bits (n, {n_img}) with n >= 1"
        )
    bits = model.encode(x) if x.ndim == 4 else x
    if bits.ndim != 2 or bits.shape[1] != n_img or not np.all((bits == 0) | (bits == 1)):
        raise ValueError(
            f"frames must be images (n, {', '.join(map(str, cfg.image_shape))}) or bits (n, {n_img}), "
            f"got shape {x.shape}"
        )
    sweeps = cfg.generation_sweeps if sweeps is None else check_int("sweeps", sweeps, 2)
    chains = check_int("chains", chains, 1)
    if not cfg.n_label_bits:  # labels act through the layout prior alone
        plug = next(c for c in model.spec.conditioners if isinstance(c, LayoutInputs))  # DTMConfig ensures one
        votes = class_posterior(np.asarray(model.state.plugin_state["layout_counts"]), plug.ids_of(bits))
        ids = np.argmax(votes, axis=-1)
        return (ids, votes) if check_bool("return_votes", return_votes) else ids
    n = len(bits)
    every = next(e for e in (5, 4, 3, 2, 1) if sweeps % e == 0)
    betas = jnp.linspace(*cfg.generation_beta, sweeps, dtype=jnp.float32)
    _, traj = model.kernel((sweeps, every, True))(
        model.state.params, as_key(0 if key is None else key), betas, n * chains,
        {"image": jnp.asarray(np.tile(bits, (chains, 1)), jnp.uint8)},
    )  # fmt: skip
    records = np.asarray(traj)[-(sweeps // every // 2) :, :, n_img:]  # step 0, second half
    votes = label_votes(records > 0, cfg.n_classes, cfg.label_spots).mean(0)
    votes = votes.reshape(chains, n, cfg.n_classes).mean(0)
    ids = np.argmax(votes, axis=-1)
    return (ids, votes) if check_bool("return_votes", return_votes) else ids
