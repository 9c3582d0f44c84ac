"""File output that never loses what was there.

* A regular file (or a new path) is written atomically: a temporary file in the same directory,
  fsynced, then renamed over the target, so a crash or Ctrl-C never leaves a half-written file
  where a good one was.  A symbolic link to a regular file is followed: its target is replaced
  and the link stays.
* A character device (``/dev/null``, a terminal) or a named pipe (FIFO) is *written through*:
  opened and written like a terminal, never replaced nor unlinked.  A FIFO that no process is
  reading is refused at once (rather than waiting forever).  ``/dev/stdout``, ``/dev/stderr``
  and ``/dev/fd/N`` are written to the process's own descriptor, wherever the shell sent it
  (a terminal, a pipe, a file opened with ``>`` or ``>>``).
* A block device (a disk), a socket and a directory are refused: none of them can hold a file.
* An existing output without any write permission bit (``chmod 444``) is refused, even for root,
  who could otherwise replace it: read-only means "keep this".

:func:`check_output_target` applies these rules without writing, so a command can refuse a bad
``-o`` before any work; :func:`write_atomic` applies them again when it writes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from pgm.errors import PGMError

#: What ``check_output_target`` returns: write a new or regular file atomically, or write through.
ATOMIC = "atomic"
THROUGH = "through"


def _refuse_kind(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise PGMError(f"{path}: is a directory; give the name of a file to write")
    if stat.S_ISBLK(mode):
        raise PGMError(f"{path}: is a block device (a disk); pgm never writes to one. "
                       "Give the name of a file to write")
    if stat.S_ISSOCK(mode):
        raise PGMError(f"{path}: is a socket, which cannot be written as a file; give the name of a file to write")
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise PGMError(f"{path}: is not a regular file; give the name of a file to write")


def _read_only(path: Path, st: os.stat_result) -> bool:
    """No write bit at all (root bypasses permissions, so the bits are checked), or not writable by us."""
    return not (st.st_mode & 0o222) or not os.access(path, os.W_OK)


_STD_NAMES = {"/dev/stdout": 1, "/dev/stderr": 2}
_FD_PATH = re.compile(r"/(?:dev|proc/self)/fd/(\d+)")


def _open_descriptor(path: Path) -> int | None:
    """The descriptor a path names (``/dev/stdout`` -> 1, ``/dev/fd/3`` -> 3), or None."""
    text = str(path)
    if text in _STD_NAMES:
        return _STD_NAMES[text]
    match = _FD_PATH.fullmatch(text)
    return int(match.group(1)) if match else None


def check_output_target(path: str | os.PathLike) -> tuple[str, Path]:
    """How ``path`` would be written, without writing: ``(ATOMIC, file to replace)`` or ``(THROUGH, path)``.

    Raises
    ------
    pgm.PGMError
        for a missing directory, a directory, a block device, a socket, or a read-only file.
    """
    path = Path(path)
    if _open_descriptor(path) is not None and os.name == "posix":
        return THROUGH, path  # the process's own stream: written where the shell sent it, even `>>`
    try:
        st = path.stat()  # follows symbolic links: what would be written is the link's target
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise PGMError(f"{path}: cannot use this path ({exc.strerror or exc})") from None
    if st is None:  # a new file (or a dangling link, replaced by the new file as before)
        directory = path.parent if str(path.parent) else Path(".")
        if not directory.is_dir():
            raise PGMError(f"{path}: the directory {str(directory)!r} does not exist; create it first")
        return ATOMIC, path
    _refuse_kind(path, st.st_mode)
    if _read_only(path, st):
        raise PGMError(f"{path}: is read-only; choose another path or change its permissions")
    if not stat.S_ISREG(st.st_mode):
        return THROUGH, path
    if not path.is_symlink():
        return ATOMIC, path
    real = Path(os.path.realpath(path))
    # a link is kept and its target replaced; a link with no name behind it (/dev/stdout of a
    # process whose output file was deleted, /proc/self/fd/N) is written through instead
    return (ATOMIC, real) if real.is_file() else (THROUGH, path)


def _write_through(path: Path, data: bytes) -> None:
    """Write to a character device or a FIFO in place: never created, truncated, replaced or unlinked."""
    stream = _open_descriptor(path)
    if stream is not None:  # /dev/stdout: the descriptor itself, so `>> log` appends and a pipe gets it
        for handle in (sys.stdout, sys.stderr):
            try:
                handle.flush()  # what was printed before comes before
            except (AttributeError, OSError, ValueError):
                pass
        _write_all(stream, data, path)
        return
    try:
        # O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking forever
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise PGMError(f"{path}: is a named pipe (FIFO) that no process is reading; start the reader "
                           "first, or give the name of a file to write") from None
        raise PGMError(f"{path}: cannot open it for writing ({exc.strerror or exc})") from None
    try:
        os.set_blocking(fd, True)  # then write as any program does
        _write_all(fd, data, path)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` to ``path``: atomically for a regular file, through for a device or a FIFO.

    A regular file goes through a temporary file in the same directory, fsync, then rename; an
    existing file keeps its permissions.  See the module docstring for special files.

    Raises
    ------
    pgm.PGMError
        when the directory does not exist or is not writable, the path is a directory, a block
        device, a socket or read-only, or a FIFO has no reader (the message names the path).
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    how, target = check_output_target(path)
    if how == THROUGH:
        _write_through(target, data)
        return
    shown = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PGMError(f"{shown}: cannot write here ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:  # first, so that the descriptor is closed on any failure
            try:  # keep an existing file's permissions; a new file gets the usual 0666 & ~umask
                mode = target.stat().st_mode & 0o7777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(tmp, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise PGMError(f"{shown}: writing failed ({exc.strerror or exc}); the previous file, if any, "
                           "is unchanged") from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _write_all(fd: int, data: bytes, path: "os.PathLike[str] | str") -> None:
    """Write every byte of ``data`` to the open descriptor ``fd`` (a device, pipe or stdout)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        raise PGMError(f"{path}: the reader closed the pipe before everything was written") from None
    except OSError as exc:
        raise PGMError(f"{path}: writing failed ({exc.strerror or exc})") from None
