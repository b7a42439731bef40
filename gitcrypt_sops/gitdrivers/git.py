"""git plumbing: the repository root, file lists, staged content, history and blob reads.

Everything runs the real ``git`` binary with ``-C <dir>`` and reads its ``-z``
output; nothing here interprets file contents.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..dates import datetime, timezone
from ..errors import SopsError

__all__ = ["BlobReader", "GitError", "file_history", "git", "list_files", "repo_root", "staged_files"]


class GitError(SopsError):
    """git is missing, or a git command failed."""

    exit_code = 1


def git(args: Sequence[str], cwd: Path | str, *, input: bytes | None = None, check: bool = True) -> bytes:
    """Run ``git -C cwd ARGS``; its stdout, GitError (first stderr line) on failure."""
    try:
        result = subprocess.run(["git", "-C", os.fspath(cwd), *args], input=input, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if check and result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result.stdout


def repo_root(path: Path | str) -> Path | None:
    """The top of the work tree that holds ``path`` (a file or directory), or None."""
    start = Path(path)
    directory = start if start.is_dir() else start.parent
    try:
        out = git(["rev-parse", "--show-toplevel"], directory, check=False)
    except GitError:
        return None
    text = out.decode("utf-8", "surrogateescape").strip()
    return Path(text) if text else None


def list_files(root: Path, pathspecs: Sequence[str] = ()) -> list[str]:
    """Tracked and untracked-but-not-ignored files under ``root``, relative, POSIX form."""
    out = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *pathspecs], root)
    names = [name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]
    seen: set[str] = set()
    unique = []
    for name in names:  # a file with conflicts is listed once per stage
        if name not in seen:
            seen.add(name)
            unique.append(name)
    return unique


def staged_files(root: Path) -> list[str]:
    """Files added, copied, modified or renamed in the index (what a commit would record)."""
    out = git(["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--no-renames"], root)
    return [name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def blob_id(data: bytes) -> str:
    """The object id git gives ``data`` as a blob (SHA-1 repositories)."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def is_shallow(root: Path) -> bool:
    return git(["rev-parse", "--is-shallow-repository"], root, check=False).strip() == b"true"


def file_history(root: Path, pathspecs: Sequence[str] = ()) -> dict[str, list[tuple[datetime, str | None]]]:
    """For each file path: ``(commit time, blob id or None when deleted)`` newest first.

    Follows first parents from HEAD (a merge counts as one change against its first
    parent); renames are not followed.  Empty when there is no commit yet.
    """
    if not git(["rev-parse", "--verify", "-q", "HEAD"], root, check=False).strip():
        return {}
    out = git(
        ["log", "--first-parent", "-m", "--raw", "--no-renames", "--no-abbrev", "-z", "--format=%x01%ct",
         "HEAD", "--", *pathspecs],
        root,
    )
    history: dict[str, list[tuple[datetime, str | None]]] = {}
    when = datetime.fromtimestamp(0, timezone.utc)
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    index = 0
    while index < len(fields):
        item = fields[index].lstrip("\n")
        index += 1
        if item.startswith("\x01"):
            stamp, _, rest = item[1:].partition("\n")
            when = datetime.fromtimestamp(int(stamp.strip()), timezone.utc)
            item = rest.lstrip("\n")
            if not item:
                continue
        if item.startswith(":") and index < len(fields):
            parts = item[1:].split()
            name = fields[index]
            index += 1
            if len(parts) >= 5:
                blob = None if parts[4].startswith("D") else parts[3]
                history.setdefault(name, []).append((when, blob))
    return history


class BlobReader:
    """One ``git cat-file --batch`` process answering blob reads until closed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._process: subprocess.Popen[bytes] | None = None

    def read(self, name: str) -> bytes | None:
        """The content of a blob id or ``<rev>:<path>`` name, or None when it is missing."""
        if self._process is None:
            try:
                self._process = subprocess.Popen(
                    ["git", "-C", os.fspath(self.root), "cat-file", "--batch"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )
            except FileNotFoundError:
                raise GitError("git is not installed (or not on PATH)") from None
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(name.encode("utf-8", "surrogateescape") + b"\n")
        process.stdin.flush()
        header = process.stdout.readline()
        parts = header.split()
        if len(parts) != 3 or parts[1] != b"blob":
            return None
        size = int(parts[2])
        data = process.stdout.read(size)
        process.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def __enter__(self) -> BlobReader:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def revisions(self, history: Sequence[tuple[datetime, str | None]],
                  current: bytes | None = None) -> Iterator[tuple[datetime, bytes]]:
        """The contents of a file's revisions (from :func:`file_history`), read lazily, stopping at a deletion.

        A revision whose blob is ``current`` (the working-tree bytes) is not read again.
        """
        current_id = blob_id(current) if current is not None else None
        for when, blob in history:
            if blob is None:
                return
            data = current if blob == current_id else self.read(blob)
            if data is None:
                return
            yield when, data
