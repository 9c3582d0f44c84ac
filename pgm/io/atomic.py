"""Atomic file output: a crash or Ctrl-C never leaves a half-written file where a good one was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pgm.errors import PGMError


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory, fsync, then rename.

    Raises
    ------
    pgm.PGMError
        when the directory does not exist or is not writable (the message names the path).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise PGMError(f"{path}: the directory {str(directory)!r} does not exist; create it first")
    if path.is_dir():
        raise PGMError(f"{path}: is a directory; give the name of a file to write")
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PGMError(f"{path}: cannot write here ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:  # first, so that the descriptor is closed on any failure
            try:  # keep an existing file's permissions; a new file gets the usual 0666 & ~umask
                mode = path.stat().st_mode & 0o7777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(tmp, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise PGMError(f"{path}: writing failed ({exc.strerror or exc}); the previous file, if any, "
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
