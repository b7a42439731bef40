"""Repo-wide ``updatekeys``, ``rotate`` and ``decrypt`` over directories or the policy's files.

A run has two phases:

1. **plan** (no key needed): every sops file under the paths is read and what
   would change is described: the new key groups for ``updatekeys`` (the creation
   rule that matches the file now), a new data key for ``rotate`` (optionally only
   for keys older than ``--older-than``), the target for ``decrypt``;
2. **apply** (after ``--dry-run`` stops, or a confirmation): files are rewritten
   one by one, atomically, in worker processes when there are many; a file that
   fails is reported and left untouched, the others go on.

The per-file work reuses :mod:`gitcrypt_sops.keys` (the single-file ``rotate`` and
``updatekeys``); data keys come from :class:`.keycache.KeyCache`, so each is
unwrapped once per process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dates import datetime, timedelta, timezone
from ..errors import SopsError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Item", "Outcome", "apply_plan", "plan"]

OPERATIONS = ("updatekeys", "rotate", "decrypt")
#: below this many files one process is faster than a pool
PARALLEL_MIN = 64


@dataclass
class Item:
    """One file of a plan: what will happen to it (``lines``), or why it is skipped."""

    path: str
    display: str
    action: str  # "change", "skip" or "error"
    lines: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    path: str
    display: str
    ok: bool
    message: str


# --------------------------------------------------------------------------- plan


def plan(operation: str, paths: Sequence[str], *, config: str | None = None, no_rotate: bool = False,
         older_than: timedelta | None = None, output_dir: str | None = None,
         now: datetime | None = None) -> list[Item]:
    """What ``operation`` would do to each sops file under ``paths`` (metadata only)."""
    from .. import keys
    from ..policy import data_key_birth
    from ..stores import format_for
    from .git import BlobReader
    from .scan import Policies, _history_for, collect

    if operation not in OPERATIONS:
        raise UsageError(f"unknown operation {operation!r}")
    now = now or datetime.now(timezone.utc)
    policies = Policies(config)
    items: list[Item] = []
    entries = collect(paths, config=config)
    history = _history_for(entries, policies, every=True) if operation == "rotate" and older_than else {}
    readers: dict[str, Any] = {}
    for entry in entries:
        fmt = format_for(entry.path)
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            items.append(Item(entry.path, entry.display, "error", [f"cannot read ({error.strerror})"]))
            continue
        if b"ENC[AES256_GCM" not in data and b"sops" not in data:
            continue  # cheap pre-filter: certainly not a sops file
        try:
            _, meta = keys.read_metadata(data, fmt)
        except SopsError:
            continue  # not a sops file (or not one in its format): not part of a repo-wide run
        item = Item(entry.path, entry.display, "change")
        try:
            if operation == "updatekeys":
                policy = policies.for_file(entry.path)
                rule = policy.creation_rule(entry.path) if policy is not None else None
                if rule is None:
                    item.action, item.lines = "skip", ["no creation rule applies"]
                else:
                    steps = keys.plan_update(meta, rule.key_groups, rule.shamir_threshold,
                                             rotate=False if no_rotate else None)
                    if not steps.changed:
                        item.action, item.lines = "skip", ["already up to date"]
                    else:
                        item.lines = steps.describe() + (["new data key (a recipient is removed)"]
                                                         if steps.rotate else [])
            elif operation == "rotate":
                if older_than is not None:
                    revisions = None
                    if entry.path in history:
                        root, revs = history[entry.path]
                        if root not in readers:
                            readers[root] = BlobReader(Path(root))
                        revisions = readers[root].revisions(revs, data)
                    birth, source = data_key_birth(data, fmt, meta, revisions)
                    if now - birth <= older_than:
                        item.action, item.lines = "skip", [f"data key younger than the limit (from {source})"]
                if item.action == "change":
                    item.lines = ["new data key, same recipients"]
            else:
                target = _decrypt_target(entry.path, output_dir)
                item.lines = [f"-> {target}" if target else "verify: decrypt and check the MAC, write nothing"]
        except SopsError as error:
            item.action, item.lines = "error", [error.message]
        items.append(item)
    for reader in readers.values():
        reader.close()
    return items


def _decrypt_target(path: str, output_dir: str | None) -> str | None:
    if output_dir is None:
        return None
    root = os.getcwd()
    relative = os.path.relpath(path, root)
    if relative.startswith(".."):
        relative = os.path.basename(path)
    return os.path.join(output_dir, relative)


# --------------------------------------------------------------------------- apply


def _process(operation: str, path: str, display: str, config: str | None, no_rotate: bool,
             output_dir: str | None, cache: Any, policies: Any) -> Outcome:
    """Apply ``operation`` to one file; the file is rewritten atomically or left as it was."""
    from .. import api, keys
    from ..fsio import write_atomic
    from ..stores import format_for

    fmt = format_for(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        parsed, meta = keys.read_metadata(data, fmt)
        key = cache.get(meta)
        keep = fmt == "yaml" and parsed.yaml_file is not None and parsed.yaml_file.spliceable
        decrypted = api.decrypt_parsed(parsed, data_key=key, keep_outputs=keep,
                                       decryption_order=cache.order)
        if operation == "decrypt":
            target = _decrypt_target(path, output_dir)
            if target is None:
                return Outcome(path, display, True, "decrypts, MAC valid")
            plain = api.decrypt_bytes(data, fmt, decryption_order=cache.order)
            os.makedirs(os.path.dirname(target) or ".", mode=0o700, exist_ok=True)
            _write_private(target, plain)
            return Outcome(path, display, True, f"decrypted to {target}")
        policy = policies.for_file(path)
        stores = policy.config.stores if policy is not None else {}
        yaml_indent = _indent(stores, "yaml", 4) or 4
        json_indent = _indent(stores, "json", None)
        if operation == "updatekeys":
            rule = policy.creation_rule(path) if policy is not None else None
            if rule is None:
                return Outcome(path, display, True, "skipped: no creation rule applies")
            steps = keys.plan_update(meta, rule.key_groups, rule.shamir_threshold, rotate=False if no_rotate else None)
            if not steps.changed:
                return Outcome(path, display, True, "already up to date")
        else:
            steps = keys.plan_rotate(meta)
        result = keys.apply(decrypted, steps, output_fmt=fmt, decryption_order=cache.order,
                            yaml_indent=yaml_indent, json_indent=json_indent)
        write_atomic(path, result)
        done = "keys updated" + (" and data key rotated" if steps.rotate else "") if operation == "updatekeys" \
            else "data key rotated"
        return Outcome(path, display, True, done)
    except SopsError as error:
        return Outcome(path, display, False, error.message)
    except OSError as error:
        return Outcome(path, display, False, f"cannot read or write ({error.strerror})")


def _indent(stores: Any, name: str, default: int | None) -> int | None:
    section = stores.get(name) if hasattr(stores, "get") else None
    if isinstance(section, dict) and isinstance(section.get("indent"), int):
        value: int = section["indent"]
        return value if value >= 0 or name == "yaml" else None
    return default


def _write_private(target: str, data: bytes) -> None:
    """Write plaintext as a 0600 file (created that way, never readable by others in between)."""
    from ..errors import OutputError

    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(target, 0o600)
    except OSError as error:
        raise OutputError(f"{target}: cannot write ({error.strerror})") from None


def _chunk(operation: str, work: list[tuple[str, str]], config: str | None, no_rotate: bool,
           output_dir: str | None, order: tuple[str, ...]) -> list[Outcome]:
    from .keycache import KeyCache
    from .scan import Policies

    cache, policies = KeyCache(order), Policies(config)
    return [_process(operation, path, display, config, no_rotate, output_dir, cache, policies)
            for path, display in work]


def apply_plan(operation: str, items: Sequence[Item], *, config: str | None = None, no_rotate: bool = False,
               output_dir: str | None = None, jobs: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[Outcome]:
    """Carry out the ``change`` items of a plan; one :class:`Outcome` per file, in plan order."""
    from .. import datakey
    from .keycache import KeyCache
    from .scan import Policies

    work = [(item.path, item.display) for item in items if item.action == "change"]
    order = datakey.decryption_order()
    workers = jobs if jobs is not None else (min(os.cpu_count() or 1, 8) if len(work) >= PARALLEL_MIN else 1)
    outcomes: list[Outcome] = []
    if workers <= 1 or len(work) < 2:
        cache, policies = KeyCache(order), Policies(config)
        for done, (path, display) in enumerate(work, 1):
            outcomes.append(_process(operation, path, display, config, no_rotate, output_dir, cache, policies))
            if progress is not None:
                progress(done, len(work))
        return outcomes
    from concurrent.futures import ProcessPoolExecutor

    size = max(8, len(work) // (workers * 8))
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_chunk, operation, chunk, config, no_rotate, output_dir, order) for chunk in chunks]
        for future in futures:
            outcomes.extend(future.result())
            if progress is not None:
                progress(len(outcomes), len(work))
    return outcomes


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal and only for long runs."""

    def __init__(self, stream: Any = None, minimum: int = 20) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.minimum = minimum
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.minimum:
            return
        width = 30
        filled = width * done // total
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files, {rate:.0f}/s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def describe(items: Sequence[Item], operation: str) -> list[str]:
    """The plan as lines for a person."""
    lines: list[str] = []
    changes = [item for item in items if item.action == "change"]
    skipped = [item for item in items if item.action == "skip"]
    errors = [item for item in items if item.action == "error"]
    for item in changes:
        lines.append(f"{item.display}:")
        lines.extend(f"    {line}" for line in item.lines)
    for item in errors:
        lines.append(f"{item.display}: cannot plan: {'; '.join(item.lines)}")
    verb = {"updatekeys": "to update", "rotate": "to rotate", "decrypt": "to decrypt"}[operation]
    lines.append(f"{operation}: {len(changes)} file(s) {verb}, {len(skipped)} unchanged, "
                 f"{len(errors)} with errors ({len(items)} sops file(s) found)")
    return lines

