"""Host-side input checks and assembly: a training batch dict or a generation conditioning dict from the
arguments of :meth:`DTM.train_step` / :meth:`DTM.generate`, checked once with errors that name the fix."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from dtm_lite.conditioning.build import find
from dtm_lite.conditioning.labels import check_ids
from dtm_lite.conditioning.layout import LayoutInputs, positions_to_ids
from dtm_lite.core.spec import ModelSpec
from dtm_lite.core.validation import check_bool


def require_layout(spec: ModelSpec, what: str) -> LayoutInputs:
    """The layout conditioner of ``spec``, or an error saying that ``what`` needs a layout model."""
    plug = find(spec.conditioners, LayoutInputs)
    if plug is None:
        raise ValueError(
            f"{what} needs a layout model: build it with DTMConfig(layout_color=(r, g, b)) (the colour of the object "
            "it places) and train it"
        )
    return plug


def check_bits(spec: ModelSpec, bits: Any, name: str = "batch", rows: int | None = None) -> np.ndarray:
    """A batch of visible bits ``(rows, n_image_bits)`` (any number of rows when ``rows`` is None) in {0, 1} as
    uint8, or a clear error."""
    b, cfg = np.asarray(bits), spec.config
    n_bits, enc = spec.n_image_bits, spec.encoding.describe()
    if b.ndim != 2 or b.shape[1] != n_bits:
        raise ValueError(
            f"{name} must be bits of shape (batch, {n_bits}) (image_shape {cfg.image_shape}, {enc}), got {b.shape}; "
            "encode frames with dtm.encode(frames), or build the loader with IteratorDataLoader(..., "
            "encoding=dtm.encoding) or encode=False"
        )
    if rows is not None and b.shape[0] != rows:
        raise ValueError(
            f"{name} has {b.shape[0]} rows but config.batch_size is {rows}; use batches of that size "
            "(a new size would recompile the training step)"
        )
    if b.dtype == np.bool_:
        return b.astype(np.uint8)
    if not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric bits in {{0, 1}}, got dtype {b.dtype}")
    if np.issubdtype(b.dtype, np.floating) and not np.all(np.isfinite(b)):
        raise ValueError(f"{name} contains NaN or infinite values; bits must be 0 or 1")
    if not np.all((b == 0) | (b == 1)):
        raise ValueError(f"{name} must contain only 0 and 1 (bits, not pixel values: use dtm.encode(frames))")
    return b.astype(np.uint8)


def check_prev(spec: ModelSpec, prev: Any, n: int) -> np.ndarray:
    """A world model's previous frames as bits ``(n, cond_frames * n_image_bits)`` uint8 (frames ``(n, H, W, C)``,
    or ``(n, F, H, W, C)`` for F previous frames, are encoded), or a clear error."""
    p, f = np.asarray(prev), spec.config.cond_frames
    if p.ndim >= 4:
        p = spec.encoding.encode(p).reshape(len(p), -1)
    want = (n, f * spec.n_image_bits)
    if p.shape != want:
        raise ValueError(
            f"prev must be the previous {f} frame(s)' bits of shape {want}, got {p.shape}; "
            "encode frames with dtm.encode(frames) (several frames: side by side, oldest first)"
        )
    if not np.all((p == 0) | (p == 1)):
        raise ValueError("prev must contain only 0 and 1 (bits: encode frames with dtm.encode(frames))")
    return p.astype(np.uint8)


def world_inputs(spec: ModelSpec, prev: Any, actions: Any, n: int, *, required: bool) -> dict[str, np.ndarray]:
    """A world model's checked conditioning inputs ``{"prev": bits, "actions": ids}`` for ``n`` chains ({} without
    them: refused for a model that has them when ``required``, as in training)."""
    cfg = spec.config
    if not cfg.n_actions:
        if prev is not None or actions is not None:
            raise ValueError(
                "prev/actions given to a model without a world model's conditioning inputs (n_actions=0): "
                "build it with DTMConfig(n_actions=A) for a world model"
                + ("; a layout model takes layout=(row, col) positions" if cfg.layout_color is not None else "")
            )
        return {}
    if prev is None and actions is None and not required:
        return {}
    if prev is None or actions is None:
        if required:
            raise ValueError(
                f"this is a world model (n_actions={cfg.n_actions}): pass prev=bits of the previous frames and "
                "actions=ids (B,), e.g. from a TransitionLoader's (bits_t, actions, bits_t1)"
            )
        raise ValueError("a world model's conditioning needs both prev (bits (n, n_visible)) and actions (n,)")
    return {"prev": check_prev(spec, prev, n), "actions": check_ids("actions", actions, cfg.n_actions, n)}


def check_labels(spec: ModelSpec, labels: Any, n: int, *, required: bool) -> dict[str, np.ndarray]:
    """``{"labels": ids (n,)}`` for a labelled model (one id is repeated for all), {} without labels."""
    cfg = spec.config
    if not cfg.n_classes:
        if labels is not None:
            raise ValueError(
                "labels given to an unconditional model (n_classes=0): build it with DTMConfig(n_classes=K) to "
                "train with labels, or pass the frames alone"
            )
        return {}
    if labels is None:
        if required:
            raise ValueError(
                f"this model has labels (n_classes={cfg.n_classes}): pass labels, class ids (B,), "
                "e.g. from IteratorDataLoader(..., n_classes=K)"
            )
        return {}
    ids = np.broadcast_to(np.asarray(labels), (n,)) if np.ndim(labels) == 0 else labels
    return {"labels": check_ids("labels", ids, cfg.n_classes, n)}


def make_batch(spec: ModelSpec, bits: Any, labels: Any = None, prev: Any = None, actions: Any = None,
               rows: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The checked batch dict that the training step takes: ``"bits"``, and what the conditioners read.
    ``rows``: the rows expected (default ``batch_size``; a process's share of it in multi-host training)."""
    B = spec.config.batch_size if rows is None else rows
    batch: dict[str, Any] = {"bits": check_bits(spec, bits, rows=B)}
    batch.update(check_labels(spec, labels, B, required=True))
    batch.update(world_inputs(spec, prev, actions, B, required=True))
    layout = find(spec.conditioners, LayoutInputs)
    if layout is not None:
        batch.update(layout.training_inputs(batch))
    return {k: jnp.asarray(v) for k, v in batch.items()}


def generation_inputs(spec: ModelSpec, n: int, labels: Any, prev: Any, actions: Any, return_labels: bool,
                      layout: Any) -> dict[str, Any]:  # fmt: skip
    """The checked conditioning dict of generation from :meth:`DTM.generate`'s arguments."""
    cfg = spec.config
    if (labels is not None or check_bool("return_labels", return_labels)) and not cfg.n_classes:
        raise ValueError(
            "this model has no labels (n_classes=0): labels and return_labels need a model built with "
            "DTMConfig(n_classes=K) and trained on labelled batches"
        )
    out = {**check_labels(spec, labels, n, required=False), **world_inputs(spec, prev, actions, n, required=False)}
    if layout is None:
        return out
    plug = require_layout(spec, "layout")
    pos = np.asarray(layout)
    ids = positions_to_ids(np.broadcast_to(pos, (n, 2)) if pos.shape == (2,) else pos, plug.hw)
    if len(ids) != n:
        raise ValueError(f"layout must give one (row, col) for each of the n = {n} frames, got {len(ids)}")
    if cfg.n_actions and "prev" not in out:
        raise ValueError(
            "a world model with a layout draws a next frame: give prev (the previous frames' bits) and actions "
            "with the layout"
        )
    return {**out, **plug.inputs(ids, out.get("prev"), out.get("actions"), out.get("labels"))}
