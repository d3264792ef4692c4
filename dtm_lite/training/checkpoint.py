"""Checkpoints (:meth:`DTM.save`: the whole state, to resume training) and weights files
(:meth:`DTM.save_weights`: the parameters, what ships as package data): writing them atomically, and reading
them back with one clear error for anything that is not one. A checkpoint is the ``DTMState`` pytree as one
flat dict of arrays (:func:`dtm_lite.core.state.state_arrays`) plus a JSON ``meta`` record with the config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from dtm_lite.core.config import DTMConfig
from dtm_lite.core.state import DTMState, checked_array, corrupt, state_arrays, state_from_arrays
from dtm_lite.core.validation import check_int
from dtm_lite.training.files import atomic_write
from dtm_lite.version import __version__

CHECKPOINT_FORMAT = 3
"""``"format"`` of a checkpoint's meta record; raised when older readers could not read a new file
(3: the conditioners' counts under ``state/plugin_state``)."""
WEIGHTS_FORMAT = "dtm_lite-weights"
WEIGHTS_VERSION = 2
"""``"version"`` of a weights file's meta record (2: every parameter and every counted array by name)."""
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one)


def _meta_bytes(meta: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def write_checkpoint(path: str | os.PathLike, config: DTMConfig, state: DTMState, extra: dict[str, Any]) -> Path:
    """The whole state and the config to ``path`` (.npz), atomically: a temporary file in the same folder,
    flushed and fsynced, then renamed over ``path``; a crash midway leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = state_arrays(state)
    arrays["meta"] = _meta_bytes({"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "extra": extra})
    # numpy's stub types **kwds beside allow_pickle: bool, so a dict of arrays cannot match it
    return atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def write_weights(path: str | os.PathLike, config: DTMConfig, state: DTMState) -> Path:
    """The parameters (every array of ``params`` by name), the counted state, the config and the batches
    trained (no optimiser or RNG state) to ``path`` (.npz, compressed, atomic)."""
    meta = {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "config": config.to_dict(), "step": int(state.step)}
    arrays = {k: np.asarray(v, np.float32) for k, v in state.params.items()}
    arrays.update({f"plugin_state/{k}": np.asarray(v, np.int32) for k, v in state.plugin_state.items()})
    arrays["meta"] = _meta_bytes(meta)
    return atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]


def read_checkpoint(path: str | os.PathLike) -> tuple[DTMConfig, dict[str, np.ndarray], dict[str, Any]]:
    """``(config, arrays, extra)`` of a checkpoint; one ``ValueError`` naming ``path`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    meta, arrays = read_archive(path)
    config = checkpoint_config(path, meta)
    return config, arrays, meta_field(path, meta, "extra", _json_object)


def checkpoint_state(reference: DTMState, arrays: dict[str, np.ndarray], path: str | os.PathLike) -> DTMState:
    """The state stored in a checkpoint's ``arrays``, shaped like ``reference`` (a fresh state of its config)."""
    state = state_from_arrays(reference, arrays, str(path))
    if int(state.step) < 0 or not np.all(np.isfinite(np.asarray(state.corr_penalty))):
        raise corrupt(path, "negative step or non-finite correlation penalty")
    return state


def checkpoint_config(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> DTMConfig:
    """The :class:`DTMConfig` stored in a checkpoint written by :meth:`DTM.save`, without building the model
    (what ``python -m dtm_lite train --resume`` checks its settings against). Same errors as :meth:`DTM.load`."""
    path = Path(path)
    if meta is None:
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        meta, _ = read_archive(path)
    fmt = meta.get("format")
    if fmt == WEIGHTS_FORMAT:
        raise ValueError(
            f"{path} is a dtm_lite weights file (made by DTM.save_weights), not a training checkpoint: "
            "load it with DTM.load_weights"
        )
    check_version(path, fmt, CHECKPOINT_FORMAT, "checkpoint format")
    return config_of(path, meta)


def read_weights(path: str | os.PathLike) -> tuple[DTMConfig, dict[str, np.ndarray], int]:
    """``(config, arrays, step)`` of a weights file; one ``ValueError`` naming ``path`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    meta, arrays = read_archive(path)
    fmt = meta.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool):
        raise ValueError(
            f"{path} is not a dtm_lite weights file but a training checkpoint (made by DTM.save): load it "
            "with DTM.load, or write its weights with 'python -m dtm_lite export'"
        )
    if fmt != WEIGHTS_FORMAT:
        raise corrupt(path, "not a dtm_lite weights file, made by DTM.save_weights")
    check_version(path, meta.get("version"), WEIGHTS_VERSION, "weights file version")
    return config_of(path, meta), arrays, meta_field(path, meta, "step", lambda v: check_int("step", v, 0))


def weights_state(reference: DTMState, arrays: dict[str, np.ndarray], step: int, opt: Any, path: Any) -> DTMState:
    """A fresh state (``reference``) with a weights file's parameters, counts and step, and a new optimiser."""
    params = {
        name: jnp.asarray(checked_array(path, arrays, name, ref.shape, np.dtype(ref.dtype)))
        for name, ref in reference.params.items()
    }
    counted = {
        name: jnp.asarray(checked_array(path, arrays, f"plugin_state/{name}", ref.shape, np.dtype(np.int32)))
        for name, ref in reference.plugin_state.items()
    }
    return reference._replace(params=params, opt_state=opt.init(params), step=jnp.int32(step), plugin_state=counted)


def _json_object(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"expected a JSON object, got {type(v).__name__}")
    return v


def read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an .npz written by :meth:`DTM.save` / :meth:`DTM.save_weights`, read whole
    and without pickle; anything else (not a zip, truncated, object arrays, no JSON ``meta``) raises one
    ``ValueError`` that names ``path``."""
    with open(path, "rb") as f:
        if f.read(4) not in _ZIP_MAGIC:
            raise corrupt(path, "not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    name = None
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                arrays[name] = z[name]
    except MemoryError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise corrupt(path, f"array {name!r} holds Python objects, which are never loaded") from None
        raise corrupt(path, f"damaged array {name!r}") from None
    except Exception:  # BadZipFile, zlib.error, EOFError, OSError, ... from a truncated or damaged archive
        raise corrupt(path, "truncated or damaged archive") from None
    m = arrays.get("meta")
    if not isinstance(m, np.ndarray) or m.dtype != np.uint8 or m.ndim != 1:
        raise corrupt(path, "no 'meta' record")
    try:
        meta = json.loads(m.tobytes().decode())
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
        raise corrupt(path, "its 'meta' record is not JSON") from None
    if not isinstance(meta, dict):
        raise corrupt(path, "its 'meta' record is not a JSON object")
    return meta, arrays


def check_version(path: Path, found: Any, known: int, what: str, oldest: int | None = None) -> None:
    """``found`` must be an integer in ``oldest..known`` (default: exactly ``known``); a higher one was
    written by a newer dtm_lite."""
    if isinstance(found, int) and not isinstance(found, bool) and found > known:
        raise ValueError(
            f"{path} is a dtm_lite {what} {found}, written by a newer dtm_lite; this one ({__version__}) reads "
            f"{what} {known} and older: upgrade dtm_lite to a version that reads {what} {found}"
        )
    if isinstance(found, bool) or not isinstance(found, int) or not (oldest or known) <= found <= known:
        raise corrupt(path, f"unknown {what} {found!r}")


def config_of(path: Path, meta: dict[str, Any]) -> DTMConfig:
    d = meta.get("config")
    if not isinstance(d, dict):
        raise corrupt(path, "no config in its 'meta' record")
    try:
        return DTMConfig.from_dict(d)  # lists from JSON become tuples on validation
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its stored config is not valid here: {err}") from None


def meta_field(path: Path, meta: dict[str, Any], name: str, convert: Any) -> Any:
    try:
        return convert(meta[name])
    except (KeyError, TypeError, ValueError):
        raise corrupt(path, f"missing or bad {name!r} in its 'meta' record") from None
