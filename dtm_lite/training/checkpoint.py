"""Checkpoints (:meth:`DTM.save`: the whole state, to resume training) and weights files
(:meth:`DTM.save_weights`: the parameters, what ships as package data): writing them atomically, and reading
them back with one clear error for anything that is not one. A checkpoint is the ``DTMState`` pytree as one
flat dict of arrays (:func:`state_arrays`) plus a JSON ``meta`` record with the config."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.config import DTMConfig
from dtm_lite.core.state import DTMState
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
MAX_MEMBERS = 4096  # arrays in an archive: a checkpoint has a few dozen
MAX_META_BYTES = 64 << 20  # the JSON meta record: the config, and the metrics of every epoch trained


class NonFiniteError(FloatingPointError, ValueError):
    """A training step would make parameters non-finite (NaN or infinite): training diverged."""


def nonfinite_names(arrays: dict[str, Any]) -> list[str]:
    """The names of the arrays of ``arrays`` (name -> array) that hold a NaN or an infinity."""
    return [name for name, a in arrays.items() if not np.all(np.isfinite(np.asarray(a)))]


def _leaf_name(path: tuple[Any, ...]) -> str:
    """``"params/W"``, ``"opt_state/0/mu/W"``, ...: a pytree leaf's path as a checkpoint array name."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _is_key(a: Any) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def state_arrays(state: DTMState) -> dict[str, np.ndarray]:
    """The state as one flat dict ``{"state/params/W": array, ..., "state/key": uint32 key data}``: what a
    checkpoint stores (typed PRNG keys as their raw ``uint32`` data)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        out["state/" + _leaf_name(path)] = np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
    return out


def corrupt(where: Any, why: str) -> ValueError:
    """The one error for a file that is not a dtm_lite checkpoint (or weights file): names ``where``."""
    return ValueError(f"{where}: corrupt or not a dtm_lite checkpoint ({why})")


def checked_array(where: Any, arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """``arrays[name]``, present with ``shape`` and a dtype that casts to ``dtype`` safely, or :func:`corrupt`."""
    a = arrays.get(name)
    if not isinstance(a, np.ndarray):
        raise corrupt(where, f"no array {name!r}")
    if a.shape != tuple(shape) or np.result_type(a.dtype, dtype) != dtype:
        raise corrupt(where, f"{name} is {a.dtype}{list(a.shape)}, its config needs {dtype}{list(shape)}")
    return a


def state_from_arrays(reference: DTMState, arrays: dict[str, np.ndarray], where: str = "checkpoint") -> DTMState:
    """The inverse of :func:`state_arrays`, shaped like ``reference`` (a fresh state of the same config):
    every leaf must be present with the reference's shape and a dtype that casts to it safely, else one
    ``ValueError`` naming ``where`` and the array."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(reference)
    out = []
    for path, ref in leaves:
        want = jax.random.key_data(ref) if _is_key(ref) else ref
        dtype = np.dtype(want.dtype)
        a = checked_array(where, arrays, "state/" + _leaf_name(path), np.shape(want), dtype)
        out.append(jax.random.wrap_key_data(jnp.asarray(a)) if _is_key(ref) else jnp.asarray(a, dtype))
    return jax.tree.unflatten(jax.tree.structure(reference), out)


def _meta_bytes(meta: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def write_checkpoint(path: str | os.PathLike, config: DTMConfig, state: DTMState, extra: dict[str, Any]) -> Path:
    """The whole state and the config to ``path`` (.npz), atomically: a temporary file in the same folder,
    flushed and fsynced, then renamed over ``path``; a crash midway leaves the previous file intact."""
    path = Path(path)
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


def read_checkpoint(path: str | os.PathLike) -> tuple[DTMConfig, Archive, dict[str, Any]]:
    """``(config, arrays, extra)`` of a checkpoint (``arrays`` an :class:`Archive`, read on demand); one
    ``ValueError`` naming ``path`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    meta, arrays = read_archive(path)
    config = checkpoint_config(path, meta)
    return config, arrays, meta_field(path, meta, "extra", _json_object)


def checkpoint_state(reference: DTMState, arrays: Mapping[str, np.ndarray], path: str | os.PathLike) -> DTMState:
    """The state stored in a checkpoint's ``arrays``, shaped like ``reference`` (a fresh state of its config).
    From an :class:`Archive`, only the arrays of ``reference`` are read, each after its header was checked;
    non-finite (NaN or infinite) parameters or optimiser moments are refused."""
    expected = {name: (a.shape, a.dtype) for name, a in state_arrays(reference).items()}
    arrays = _selected(arrays, expected)
    _check_finite(path, {k: v for k, v in arrays.items() if np.issubdtype(expected[k][1], np.floating)})
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


def read_weights(path: str | os.PathLike) -> tuple[DTMConfig, Archive, int]:
    """``(config, arrays, step)`` of a weights file (``arrays`` an :class:`Archive`, read on demand); one
    ``ValueError`` naming ``path`` for anything else."""
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


def weights_state(reference: DTMState, arrays: Mapping[str, np.ndarray], step: int, opt: Any, path: Any) -> DTMState:
    """A fresh state (``reference``) with a weights file's parameters, counts and step, and a new optimiser;
    only the arrays of ``reference`` are read (from an :class:`Archive`: each after its header was checked),
    and non-finite (NaN or infinite) parameters are refused."""
    expected = {name: (ref.shape, np.dtype(ref.dtype)) for name, ref in reference.params.items()}
    expected.update({f"plugin_state/{k}": (v.shape, np.dtype(np.int32)) for k, v in reference.plugin_state.items()})
    arrays = _selected(arrays, expected)
    _check_finite(path, {k: arrays[k] for k in reference.params})
    params = {
        name: jnp.asarray(checked_array(path, arrays, name, ref.shape, np.dtype(ref.dtype)))
        for name, ref in reference.params.items()
    }
    counted = {
        name: jnp.asarray(checked_array(path, arrays, f"plugin_state/{name}", ref.shape, np.dtype(np.int32)))
        for name, ref in reference.plugin_state.items()
    }
    return reference._replace(params=params, opt_state=opt.init(params), step=jnp.int32(step), plugin_state=counted)


def _selected(arrays: Mapping[str, np.ndarray], expected: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ``expected`` arrays of an :class:`Archive` (checked before they are read), or a plain dict as it is."""
    return arrays.select(expected) if isinstance(arrays, Archive) else dict(arrays)


def _check_finite(path: Any, arrays: dict[str, np.ndarray]) -> None:
    """:func:`corrupt` naming the arrays that hold a NaN or an infinity."""
    bad = nonfinite_names({k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    if bad:
        raise corrupt(path, f"non-finite values (NaN or inf) in {', '.join(bad[:5])}: a diverged model is never loaded")


def _json_object(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"expected a JSON object, got {type(v).__name__}")
    return v


class _Bad(Exception):
    """Why an archive is refused (turned into the one :func:`corrupt` error)."""


@dataclass(frozen=True)
class Member:
    """One array of an .npz archive as its .npy header declares it (nothing of its data read)."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class Archive(Mapping[str, np.ndarray]):
    """An .npz archive opened for reading without loading its arrays: every member's .npy header was read
    (a few hundred bytes each, however large the member) and checked against the zip's own record of the
    member's size. Arrays are read on demand, ``archive[name]``, or the expected ones at once with
    :meth:`select`, which first refuses unknown members and wrong shapes or dtypes, so that no member is
    ever decompressed (or memory allocated for it) unless the model needs exactly that array."""

    def __init__(self, path: Path, members: dict[str, Member]) -> None:
        self.path, self.members = path, members

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.members:
            raise KeyError(name)
        return self._read([name])[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def select(self, expected: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
        """The arrays ``expected`` names (name -> (shape, dtype)), read after checking that the archive holds
        those and no others (besides ``meta``), each with exactly that shape and a dtype that casts to that
        dtype safely; :func:`corrupt` otherwise."""
        unknown = sorted(set(self.members) - set(expected) - {"meta"})
        if unknown:
            raise corrupt(self.path, f"arrays its config has no use for: {', '.join(map(repr, unknown[:5]))}")
        for name, (shape, dtype) in expected.items():
            m = self.members.get(name)
            if m is None:
                raise corrupt(self.path, f"no array {name!r}")
            if m.shape != tuple(shape) or np.result_type(m.dtype, dtype) != dtype:
                raise corrupt(self.path, f"{name} is {m.dtype}{list(m.shape)}, its config needs {dtype}{list(shape)}")
        return self._read(list(expected))

    def _read(self, names: list[str]) -> dict[str, np.ndarray]:
        try:
            with zipfile.ZipFile(self.path) as zf:
                return {name: _read_member(zf, name, self.members[name]) for name in names}
        except _Bad as bad:
            raise corrupt(self.path, str(bad)) from None
        except MemoryError:
            raise
        except Exception:  # BadZipFile, zlib.error, EOFError, OSError, ... from a damaged archive
            raise corrupt(self.path, "truncated or damaged archive") from None


def _header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header length)`` of the .npy stream ``f`` (positioned at its start)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except ValueError:
        raise _Bad(f"damaged array {name!r}") from None
    return tuple(shape), bool(fortran), np.dtype(dtype), f.tell()


def _scan_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, Member]:
    """A member's array name (without ``.npy``) and its header, checked: not of Python objects, and declaring
    exactly the bytes the zip records for the member."""
    if not info.filename.endswith(".npy") or info.is_dir():
        raise _Bad(f"member {info.filename[:80]!r} is not an array")
    name = info.filename[: -len(".npy")]
    with zf.open(info) as f:
        shape, fortran, dtype, offset = _header(f, name)
    if dtype.hasobject:
        raise _Bad(f"array {name!r} holds Python objects, which are never loaded")
    m = Member(info, shape, dtype, fortran)
    if offset + m.nbytes != info.file_size:
        raise _Bad(f"array {name!r} declares {dtype}{list(shape)} ({m.nbytes} bytes), its member holds "
                   f"{info.file_size - offset}")  # fmt: skip
    return name, m


def _read_member(zf: zipfile.ZipFile, name: str, m: Member) -> np.ndarray:
    """The array of member ``m``, its header read again (a file replaced meanwhile is refused)."""
    with zf.open(m.info.filename) as f:
        if _header(f, name)[:3] != (m.shape, m.fortran, m.dtype):
            raise _Bad(f"array {name!r} changed while being read")
        buf = bytearray(m.nbytes)
        if f.readinto(buf) != m.nbytes:  # type: ignore[attr-defined]  # a ZipExtFile, an io.BufferedIOBase
            raise _Bad(f"damaged array {name!r}")
    return np.frombuffer(buf, m.dtype).reshape(m.shape, order="F" if m.fortran else "C")


def _scan(path: Path) -> tuple[dict[str, Any], dict[str, Member]]:
    """``(meta, members)`` of an .npz: every header read, only the ``meta`` record's data."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _Bad(f"{len(infos)} members, more than any dtm_lite file has ({MAX_MEMBERS})")
        members = dict(_scan_member(zf, info) for info in infos)
        if len(members) != len(infos):
            raise _Bad("an array stored twice")
        m = members.get("meta")
        if m is None or m.dtype != np.uint8 or len(m.shape) != 1 or m.nbytes > MAX_META_BYTES:
            raise _Bad("no 'meta' record")
        raw = _read_member(zf, "meta", m).tobytes()
    try:
        meta = json.loads(raw.decode())
    except RecursionError:
        raise _Bad("its 'meta' record is nested too deeply to be a dtm_lite record") from None
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
        raise _Bad("its 'meta' record is not JSON") from None
    if not isinstance(meta, dict):
        raise _Bad("its 'meta' record is not a JSON object")
    return meta, members


def read_archive(path: Path) -> tuple[dict[str, Any], Archive]:
    """``(meta, arrays)`` of an .npz written by :meth:`DTM.save` / :meth:`DTM.save_weights`, without pickle:
    the JSON ``meta`` record and an :class:`Archive` whose arrays are read only when asked for (every member's
    header checked first). Anything else (not a zip, truncated, object arrays, a member that is not an array
    or declares another size than it holds, no JSON ``meta`` or one nested too deeply) raises one
    ``ValueError`` that names ``path``."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(4) not in _ZIP_MAGIC:
            raise corrupt(path, "not an .npz archive")
    try:
        meta, members = _scan(path)
    except _Bad as bad:
        raise corrupt(path, str(bad)) from None
    except MemoryError:
        raise
    except Exception:  # BadZipFile, zlib.error, EOFError, OSError, ... from a truncated or damaged archive
        raise corrupt(path, "truncated or damaged archive") from None
    return meta, Archive(path, members)


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
