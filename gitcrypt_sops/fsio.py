"""Reading inputs and writing outputs safely.

In-place and ``--output`` writes are atomic: the new content goes to a temporary
file in the target's directory, is fsynced, and renamed over the target, so a
crash never leaves a damaged or half-written file.  Temporary plaintext lives in
a private 0700 directory as 0600 files and is removed in ``finally``.
"""

from __future__ import annotations

import os
import sys

from .errors import InputError, OutputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType
    from typing import Any, BinaryIO


def read_input(path: str | None) -> bytes:
    """The bytes of ``path``, or of stdin when ``path`` is None or ``-``."""
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    data: bytes = _read_file(path, lambda handle: handle.read())
    return data


def read_input_buffer(path: str | None) -> bytearray:
    """Like :func:`read_input`, into a bytearray that the pipeline may empty once
    it has decoded it (see :func:`gitcrypt_sops.api.parse`), so that a large input
    is not held twice."""
    if path is None or path == "-":
        return bytearray(sys.stdin.buffer.read())
    data: bytearray = _read_file(path, _read_into_buffer)
    return data


def _read_into_buffer(handle: BinaryIO) -> bytearray:
    data = bytearray(os.fstat(handle.fileno()).st_size)
    filled = 0
    with memoryview(data) as view:
        while filled < len(data):
            count = handle.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                break
            filled += count
    del data[filled:]
    data += handle.read()  # a file that grew, or one whose size fstat cannot tell
    return data


def _read_file(path: str, read: Callable[[BinaryIO], Any]) -> Any:
    try:
        with open(path, "rb", buffering=0) as handle:
            return read(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def _new_temp_file(directory: str, name: str) -> tuple[int, str]:
    """A new 0600 file beside the target, open for writing: ``tempfile.mkstemp``
    without the cost of importing :mod:`tempfile` (it loads shutil, random...)."""
    for _ in range(100):
        temp_name = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), temp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name in {directory}")


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the file's permissions."""
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
        fd, temp_name = _new_temp_file(directory, name)
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
                _remove_quietly(temp_name)
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass  # the rename is done; a directory that cannot be synced is not an error
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


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class PrivateDir:
    """``with PrivateDir() as path``: a 0700 temporary directory, removed with everything in it on exit."""

    def __init__(self, prefix: str = "gitcrypt-sops-") -> None:
        self.prefix = prefix
        self.directory: str | None = None

    def __enter__(self) -> Path:
        import tempfile
        from pathlib import Path

        self.directory = tempfile.mkdtemp(prefix=self.prefix)
        os.chmod(self.directory, 0o700)
        return Path(self.directory)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        import shutil

        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
