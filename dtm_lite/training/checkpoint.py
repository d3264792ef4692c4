"""Reading checkpoints (``DTM.save``) and weights files (``DTM.save_weights``): formats, versions and one clear
error for anything that is not one. Format 2 is the ``DTMState`` pytree as one dict (``dtm_lite.core.state``);
format 1 (before that) still loads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.config import DTMConfig
from dtm_lite.core.state import DTMState, checked_array, corrupt
from dtm_lite.core.validation import check_int

if TYPE_CHECKING:
    from dtm_lite.model import DTM

WEIGHTS_FORMAT = "dtm_lite-weights"


def _format1_state(path: Path, meta: dict[str, Any], z: dict[str, np.ndarray], dtm: DTM) -> DTMState:
    """The state stored by checkpoint format 1 (dtm_lite before the one-pytree state)."""
    params = _params_of(path, z, dtm)
    ref = jax.tree.leaves(dtm.state.opt_state)
    leaves = [checked_array(path, z, f"opt_{i}", np.shape(a), np.dtype(a.dtype)) for i, a in enumerate(ref)]
    key_shape = jax.random.key_data(dtm.state.key).shape
    key = jax.random.wrap_key_data(jnp.asarray(checked_array(path, z, "key", key_shape, np.dtype(np.uint32))))
    gen_key = jax.random.wrap_key_data(jnp.asarray(checked_array(path, z, "gen_key", key_shape, np.dtype(np.uint32))))
    step = _meta_field(path, meta, "step", lambda v: check_int("step", v, 0))
    cp = _meta_field(path, meta, "corr_penalty", lambda v: _penalties(v, dtm.num_steps))
    opt_state = jax.tree.unflatten(jax.tree.structure(dtm.state.opt_state), [jnp.asarray(a) for a in leaves])
    return DTMState(params, opt_state, jnp.int32(step), key, gen_key, jnp.asarray(cp, jnp.float32))


# "format" of DTM.save's meta record; raise it when old readers could not read a new file.
# 1: W, b, opt_i, key, gen_key arrays with step and corr_penalty in the meta record; 2: the DTMState pytree
CHECKPOINT_FORMAT = 2
CHECKPOINT_FORMATS = (1, 2)  # what DTM.load reads
WEIGHTS_VERSION = 1  # "version" of DTM.save_weights' meta record (its "format" is WEIGHTS_FORMAT)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one)


def checkpoint_config(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> DTMConfig:
    """The :class:`DTMConfig` stored in a checkpoint written by :meth:`DTM.save`, without building the
    model (what ``python -m dtm_lite train --resume`` checks its settings against). Same errors as
    :meth:`DTM.load`."""
    path = Path(path)
    if meta is None:
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        meta, _ = _read_archive(path)
    fmt = meta.get("format")
    if fmt == WEIGHTS_FORMAT:
        raise ValueError(
            f"{path} is a dtm_lite weights file (made by DTM.save_weights), not a training checkpoint: "
            "load it with DTM.load_weights"
        )
    _check_version(path, fmt, CHECKPOINT_FORMAT, "checkpoint format", oldest=1)
    return _config_of(path, meta)


def _json_object(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"expected a JSON object, got {type(v).__name__}")
    return v


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
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


def _check_version(path: Path, found: Any, known: int, what: str, oldest: int | None = None) -> None:
    """``found`` must be an integer in ``oldest..known`` (default: exactly ``known``); a higher one was
    written by a newer dtm_lite."""
    if isinstance(found, int) and not isinstance(found, bool) and found > known:
        from dtm_lite import __version__

        raise ValueError(
            f"{path} is a dtm_lite {what} {found}, written by a newer dtm_lite; this one ({__version__}) reads "
            f"{what} {known} and older: upgrade dtm_lite to a version that reads {what} {found}"
        )
    if isinstance(found, bool) or not isinstance(found, int) or not (oldest or known) <= found <= known:
        raise corrupt(path, f"unknown {what} {found!r}")


def _config_of(path: Path, meta: dict[str, Any]) -> DTMConfig:
    d = meta.get("config")
    if not isinstance(d, dict):
        raise corrupt(path, "no config in its 'meta' record")
    try:
        return DTMConfig.from_dict(d)  # lists from JSON become tuples on validation
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its stored config is not valid here: {err}") from None


def _meta_field(path: Path, meta: dict[str, Any], name: str, convert: Any) -> Any:
    try:
        return convert(meta[name])
    except (KeyError, TypeError, ValueError):
        raise corrupt(path, f"missing or bad {name!r} in its 'meta' record") from None


def _penalties(v: Any, n: int) -> np.ndarray:
    cp = np.asarray(v, np.float64)
    if cp.shape != (n,) or not np.all(np.isfinite(cp)):
        raise ValueError(cp)
    return cp


def _params_of(path: Path, arrays: dict[str, np.ndarray], dtm: DTM) -> dict[str, jax.Array]:
    return {
        name: jnp.asarray(checked_array(path, arrays, name, ref.shape, np.dtype(ref.dtype)))
        for name, ref in dtm.state.params.items()
    }
