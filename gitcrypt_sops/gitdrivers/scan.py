"""``check`` over many files: which files, which policy governs each, history, parallelism.

The files come from the paths given (a directory means the files git lists under
it, tracked or not ignored; outside git every file), from the policy's root when
no path is given, or from the index (pre-commit).  Each file is governed by the
nearest ``.sops-policy.yaml``/``.sops.yaml`` above it (or ``--config``).  The rules
themselves are :func:`gitcrypt_sops.policy.check_document`; this module only
feeds it, in worker processes when the tree is large.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as config_mod
from ..dates import datetime, timezone
from ..errors import ConfigNotFound, NoFileSpecified
from ..policy import Policy, Violation, check_document, load_policy
from . import git as gitmod

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ScanResult", "check_paths", "check_staged", "collect"]

#: below this many files one process is faster than a pool
PARALLEL_MIN = 400
#: files every tool leaves alone: the config files themselves
_SKIP_NAMES = frozenset(config_mod.CONFIG_NAMES) | {".gitattributes", ".sops.yml"}


@dataclass
class ScanResult:
    files: int = 0
    violations: list[Violation] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed_files(self) -> int:
        return len({v.file for v in self.violations})


@dataclass(frozen=True)
class _Item:
    display: str
    path: str  # absolute
    explicit: bool


class Policies:
    """The policy of each file, loaded once per config file."""

    def __init__(self, override: str | None) -> None:
        self.override = override or os.environ.get("SOPS_CONFIG") or None
        self._by_dir: dict[str, Policy | None] = {}
        self._by_path: dict[str, Policy] = {}
        self._found: dict[str, str | None] = {}

    def _find(self, directory: str) -> str | None:
        """matches config.find_config: the nearest config file upwards, memoised per directory."""
        if directory in self._found:
            return self._found[directory]
        found: str | None = None
        for name in config_mod.CONFIG_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.exists(candidate):
                found = candidate
                break
        if found is None:
            parent = os.path.dirname(directory)
            found = self._find(parent) if parent != directory else None
        self._found[directory] = found
        return found

    def _load(self, path: Path) -> Policy:
        key = os.path.abspath(path)
        if key not in self._by_path:
            self._by_path[key] = load_policy(path)
        return self._by_path[key]

    def for_file(self, file: str) -> Policy | None:
        if self.override is not None:
            return self._load(Path(self.override))
        directory = os.path.dirname(file)
        if directory not in self._by_dir:
            found = self._find(directory)
            self._by_dir[directory] = self._load(Path(found)) if found is not None else None
        return self._by_dir[directory]


def _display(path: str, cwd: str) -> str:
    relative = os.path.relpath(path, cwd)
    return path if relative.startswith("..") else relative


def collect(paths: Sequence[str], *, config: str | None = None, cwd: str | None = None) -> list[_Item]:
    """The files a ``check``/repo-wide run covers (see the module docstring)."""
    cwd = cwd or os.getcwd()
    if not paths:
        found = Path(config) if config else config_mod.find_config(None, None)
        if found is None:
            raise ConfigNotFound("no .sops-policy.yaml or .sops.yaml here or above; give paths or --config")
        paths = [os.path.dirname(os.path.abspath(found))]
    items: list[_Item] = []
    seen: set[str] = set()
    for given in paths:
        absolute = os.path.abspath(os.path.join(cwd, given))
        if os.path.isfile(absolute):
            names = [absolute]
            explicit = True
        elif os.path.isdir(absolute):
            names = _directory_files(absolute)
            explicit = False
        else:
            raise NoFileSpecified(f"{given}: no such file or directory")
        for name in names:
            if name in seen or os.path.basename(name) in _SKIP_NAMES:
                continue
            seen.add(name)
            items.append(_Item(_display(name, cwd), name, explicit))
    return items


def _directory_files(directory: str) -> list[str]:
    root = gitmod.repo_root(directory)
    if root is not None:
        spec = os.path.relpath(directory, root)
        names = gitmod.list_files(root, [] if spec == "." else [spec])
        return [os.path.join(root, name) for name in names if os.path.isfile(os.path.join(root, name))]
    out: list[str] = []
    for base, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        out.extend(os.path.join(base, name) for name in sorted(files))
    return out


# --------------------------------------------------------------------------- running


def check_paths(
    paths: Sequence[str],
    *,
    config: str | None = None,
    now: datetime | None = None,
    jobs: int | None = None,
    skip: frozenset[str] = frozenset(),
    cwd: str | None = None,
) -> ScanResult:
    """Check files and directories; see :func:`gitcrypt_sops.policy.check_document`."""
    started = time.perf_counter()
    cwd = cwd or os.getcwd()
    items = collect(paths, config=config, cwd=cwd)
    now = now or datetime.now(timezone.utc)
    policies = Policies(config)
    history = _history_for(items, policies) if "max_data_key_age" not in skip else {}
    workers = _workers(jobs, len(items))
    result = ScanResult()
    if workers <= 1:
        result.files, result.violations = _check_items(items, config, now, skip, history, policies)
    else:
        from concurrent.futures import ProcessPoolExecutor

        size = max(50, len(items) // (workers * 4))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_check_chunk, chunk, config, now, skip,
                            {item.path: history[item.path] for item in chunk if item.path in history})
                for chunk in chunks
            ]
            for future in futures:
                files, found = future.result()
                result.files += files
                result.violations.extend(found)
    result.seconds = time.perf_counter() - started
    return result


def _workers(jobs: int | None, count: int) -> int:
    if jobs is not None:
        return max(1, jobs)
    if count < PARALLEL_MIN:
        return 1
    return min(os.cpu_count() or 1, 8)


#: per absolute path: (repository root, revisions newest first)
_History = dict[str, tuple[str, list[tuple[datetime, str | None]]]]


def _history_for(items: Sequence[_Item], policies: Policies, *, every: bool = False) -> _History:
    """Git history of the files whose policy limits the data key's age (``every``: of all files).

    One ``git log`` per repository.
    """
    wanted = [item for item in items
              if every or ((p := policies.for_file(item.path)) is not None and p.max_data_key_age)]
    if not wanted:
        return {}
    out: _History = {}
    roots: dict[str, str | None] = {}
    by_root: dict[str, list[_Item]] = {}
    known: list[str] = []
    for item in wanted:
        directory = os.path.dirname(item.path)
        if directory not in roots:
            # a directory under a work tree already found belongs to it (one git call per tree)
            inside = next((r for r in known if directory == r or directory.startswith(r + os.sep)), None)
            if inside is None:
                root = gitmod.repo_root(directory)
                inside = os.fspath(root) if root is not None else None
                if inside is not None:
                    known.append(inside)
            roots[directory] = inside
        root_text = roots[directory]
        if root_text is not None:
            by_root.setdefault(root_text, []).append(item)
    for root_text, members in by_root.items():
        history = gitmod.file_history(Path(root_text))
        for item in members:
            revisions = history.get(Path(os.path.relpath(item.path, root_text)).as_posix())
            if revisions:
                out[item.path] = (root_text, revisions)
    return out


def _check_chunk(items: list[_Item], config: str | None, now: datetime, skip: frozenset[str],
                 history: _History) -> tuple[int, list[Violation]]:
    return _check_items(items, config, now, skip, history, Policies(config))


def _check_items(items: Sequence[_Item], config: str | None, now: datetime, skip: frozenset[str],
                 history: _History, policies: Policies) -> tuple[int, list[Violation]]:
    """The violations of ``items`` and how many files were examined (excluded ones are not)."""
    readers: dict[str, gitmod.BlobReader] = {}
    out: list[Violation] = []
    checked = 0
    try:
        for item in items:
            policy = policies.for_file(item.path)
            if policy is None:
                continue
            relative = policy.relative(item.path)
            if relative is not None and policy.excluded(relative):
                continue
            checked += 1
            try:
                with open(item.path, "rb") as handle:
                    data = handle.read()
            except OSError as error:
                out.append(Violation(item.display, "metadata", f"cannot read ({error.strerror})", "check permissions"))
                continue
            entry = history.get(item.path)

            def revisions(entry: Any = entry, data: bytes = data) -> Any:
                if entry is None:
                    return None
                root, revs = entry
                reader = readers.get(root)
                if reader is None:
                    reader = readers[root] = gitmod.BlobReader(Path(root))
                return reader.revisions(revs, data)

            out.extend(check_document(policy, item.display, data, file_path=item.path, revisions=revisions,
                                      now=now, skip=skip, explicit=item.explicit))
    finally:
        for reader in readers.values():
            reader.close()
    return checked, out


def check_staged(
    root: Path | None = None,
    *,
    config: str | None = None,
    skip: frozenset[str] = frozenset({"max_data_key_age"}),
    cwd: str | None = None,
) -> ScanResult:
    """Check what the index holds for every staged file (a pre-commit hook's view)."""
    started = time.perf_counter()
    cwd = cwd or os.getcwd()
    root = root or gitmod.repo_root(cwd)
    if root is None:
        raise gitmod.GitError("not inside a git work tree")
    names = gitmod.staged_files(root)
    policies = Policies(config)
    result = ScanResult()
    with gitmod.BlobReader(root) as reader:
        for name in names:
            if os.path.basename(name) in _SKIP_NAMES:
                continue
            path = os.path.join(os.fspath(root), name)
            policy = policies.for_file(path)
            if policy is None:
                continue
            relative = policy.relative(path)
            if relative is not None and policy.excluded(relative):
                continue
            data = reader.read(":" + name)
            if data is None:
                continue
            result.files += 1
            result.violations.extend(
                check_document(policy, _display(path, cwd), data, file_path=path, skip=skip)
            )
    result.seconds = time.perf_counter() - started
    return result
