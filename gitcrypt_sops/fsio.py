"""Reading inputs and writing outputs safely.

In-place and ``--output`` writes are atomic: the new content goes to a temporary
file in the target's directory, is fsynced, and renamed over the target, so a
crash never leaves a damaged or half-written file.  Temporary plaintext lives in
a private 0700 directory as 0600 files and is removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

from .errors import InputError, OutputError


def read_input(path: str | None) -> bytes:
    """The bytes of ``path``, or of stdin when ``path`` is None or ``-``."""
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the file's permissions."""
    import tempfile

    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    name = os.path.basename(target)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise OutputError(f"{target}: cannot write ({error.strerror})") from None
    temp_name = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(temp_name, mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temp_name, 0o666 & ~umask)
            os.replace(temp_name, target)
            temp_name = None
        finally:
            if temp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as error:
        raise OutputError(f"{target}: cannot write ({error.strerror})") from None


def write_output(path: str | None, data: bytes) -> None:
    """Write to ``path`` atomically, or to stdout when ``path`` is None."""
    if path is None or path == "-":
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise OutputError("stdout was closed") from None
        return
    write_atomic(path, data)


@contextlib.contextmanager
def private_dir(prefix: str = "gitcrypt-sops-") -> Iterator[Path]:
    """A 0700 temporary directory, removed with everything in it on exit."""
    import shutil
    import tempfile
    from pathlib import Path

    directory = tempfile.mkdtemp(prefix=prefix)
    os.chmod(directory, 0o700)
    try:
        yield Path(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
