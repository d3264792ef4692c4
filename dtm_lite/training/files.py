"""Atomic file writes (a crash or Ctrl-C midway leaves the previous file intact) and the lock that keeps a
run folder to one writer at a time.

Both use advisory locks (``fcntl.flock``), which the kernel drops when their holder's file is closed or its
process dies, so a killed process never leaves a folder or a temporary file locked. Where ``fcntl`` is
missing (Windows) nothing is locked: the writes stay atomic, but a second writer is not detected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# tempfile.mkstemp's random part: 8 characters of this alphabet (CPython's _RandomNameSequence)
_TMP_NAME = r"\.[a-z0-9_]{8}\.tmp"
LOCK_NAME = ".dtm_lite.lock"
"""The lock file of a run folder (see :func:`lock_folder`); removed again when its holder releases it."""


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """``write(file)`` to a temporary file beside ``path`` (binary mode), flushed and fsynced, then renamed
    over ``path``. On any error the temporary file is removed and ``path`` is untouched.

    The temporary file is locked (``flock``) from its creation until after the rename. After a successful
    write, the temporary files of earlier writes of the same ``path`` (``<name>.XXXXXXXX.tmp``) are removed
    when no process holds their lock (their writer died) and they were last modified before this write began:
    a write in progress in another process, even one that has finished writing and is about to rename, is
    never touched.
    """
    path = Path(path)
    _check_file_path(path)
    started = time.time()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    f = os.fdopen(fd, "wb")
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # a file system without locks: then cleaners never remove it
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
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
    finally:
        f.close()  # releases the lock, after the rename
    _remove_stale_temporaries(path, started)
    return path


def _check_file_path(path: Path) -> None:
    """Make ``path``'s folder, or raise an ``OSError`` that says why ``path`` cannot be a file: it is a folder,
    or a part of its folder's path is a file."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder: give the path of a file (in it, say)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot write {path}: {blocker} is a file, so no folder can be made under it"
        ) from err


def _remove_stale_temporaries(path: Path, before: float) -> None:
    """Remove ``path``'s own leftover temporary files: last modified before ``before`` and unlocked (a live
    writer holds the lock of its temporary file until it has renamed it)."""
    pattern = re.compile(re.escape(path.name) + _TMP_NAME)
    for p in path.parent.glob(_glob_escape(path.name) + ".*.tmp"):
        if pattern.fullmatch(p.name):
            _remove_if_stale(p, before)


def _remove_if_stale(p: Path, before: float) -> None:
    """Unlink ``p`` if it is a plain file older than ``before`` whose lock nobody holds; else leave it."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # gone meanwhile, a link, or not ours to read: leave it
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and st.st_mtime < before):
            return
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a live writer's
        if os.path.samestat(st, os.stat(p, follow_symlinks=False)):
            p.unlink()
    except OSError:
        pass  # locked by its writer, renamed or removed meanwhile: leave it
    finally:
        os.close(fd)


def _glob_escape(name: str) -> str:
    """``name`` with glob's special characters ``*?[`` taken literally."""
    return re.sub(r"([*?[])", r"[\1]", name)


class FolderBusyError(RuntimeError):
    """Another process (or another thread of this one) is writing into the folder: see :func:`lock_folder`."""


class _Held:
    """One lock this process holds: its file, the thread that took it and how often it was taken."""

    def __init__(self, fd: int, path: str, thread: int) -> None:
        self.fd, self.path, self.thread, self.depth = fd, path, thread, 1


_HELD: dict[str, _Held] = {}  # the folder locks of this process, by the folder's real path
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, what: str = "run folder") -> Iterator[Path]:
    """Hold the folder's lock (``folder/.dtm_lite.lock``, an exclusive ``flock``) for the ``with`` block:
    one writer a run folder. A second process (or another thread) that asks for it meanwhile gets
    :class:`FolderBusyError` naming the folder and the holder's PID; the same thread may take it again (the
    command line holds it around ``train_from_iterator``, which takes it too). The folder is created if
    needed; the lock file is removed on release, and a killed holder's lock is free at once (the kernel
    drops it), its file reused. Yields the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held.thread != threading.get_ident():
            raise FolderBusyError(_busy_text(folder, what, f"another thread of this process (PID {os.getpid()})"))
        if held is None:
            held = _HELD[key] = _Held(_take_lock(folder, what), os.path.join(key, LOCK_NAME), threading.get_ident())
        else:
            held.depth += 1
    try:
        yield folder
    finally:
        with _HELD_GUARD:
            held.depth -= 1
            if held.depth == 0:
                del _HELD[key]
                with contextlib.suppress(OSError):
                    os.unlink(held.path)  # still under the lock: a waiting opener then finds another file
                os.close(held.fd)


def _take_lock(folder: Path, what: str) -> int:
    """The locked file descriptor of ``folder``'s lock file, holding this process's PID and host name."""
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            _flock(fd, folder, what)
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False  # removed by its last holder meanwhile: open the new one
        except BaseException:
            os.close(fd)
            raise
        if same:
            break  # the file at the path, not one its last holder removed while we opened it
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


def _flock(fd: int, folder: Path, what: str) -> None:
    """Lock ``fd`` (exclusive, without waiting): :class:`FolderBusyError` naming the holder when another
    process holds it; a warning where the file system cannot lock files at all."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 256, 0).decode(errors="replace").split()
        pid = f"PID {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "PID unknown"
        raise FolderBusyError(_busy_text(folder, what, f"another process ({pid})")) from None
    except OSError as err:  # ENOLCK, EOPNOTSUPP: some network file systems
        warnings.warn(
            f"{what} {folder}: its file system cannot lock files ({err.strerror or err}), so a second process "
            "writing into it would not be detected; run one writer at a time",
            stacklevel=6,
        )


def _busy_text(folder: Path, what: str, holder: str) -> str:
    return (
        f"{what} {folder} is in use: {holder} is training into it (it holds {folder / LOCK_NAME}). Two writers "
        "would interleave metrics.csv and overwrite each other's checkpoints: wait for that run to end (or stop "
        "it), or use another folder"
    )


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write 64 KiB to a file in it, fsynced, then delete it: an ``OSError``
    of the same kind that names ``folder`` and the fix if that fails (a read-only folder, a full disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            why = "no space left on its device" if err.errno == errno.ENOSPC else "disk quota exceeded"
            fix = "free some space, or pass a folder on another disk"
        else:
            why, fix = err.strerror or str(err), "fix its permissions or pass another folder"
        raise type(err)(
            err.errno,
            f"{what} {folder} is not writable ({why}): checkpoints and metrics could not be saved, so "
            f"training does not start; {fix}",
        ) from err
