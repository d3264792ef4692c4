"""Atomic file writes: a crash or Ctrl-C midway leaves the previous file intact."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# tempfile.mkstemp's random part: 8 characters of this alphabet (CPython's _RandomNameSequence)
_TMP_NAME = r"\.[a-z0-9_]{8}\.tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """``write(file)`` to a temporary file beside ``path`` (binary mode), flushed and fsynced, then renamed
    over ``path``. On any error the temporary file is removed and ``path`` is untouched.

    After a successful write, the temporary files of earlier writes of the same ``path`` that a killed
    process left behind (``<name>.XXXXXXXX.tmp``, last modified before this write began) are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale_temporaries(path, started)
    return path


def _remove_stale_temporaries(path: Path, before: float) -> None:
    """Remove ``path``'s own leftover temporary files older than ``before`` (a write still in progress in
    another process keeps touching its file, so it is newer and stays)."""
    pattern = re.compile(re.escape(path.name) + _TMP_NAME)
    for p in path.parent.glob(_glob_escape(path.name) + ".*.tmp"):
        try:
            if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink() and p.stat().st_mtime < before:
                p.unlink()
        except OSError:
            pass  # gone meanwhile, or not ours to remove: leave it


def _glob_escape(name: str) -> str:
    """``name`` with glob's special characters ``*?[`` taken literally."""
    return re.sub(r"([*?[])", r"[\1]", name)
