"""The merge driver: three-way merge of sops files key by key, and ``git resolve``.

git runs ``gitcrypt-sops git merge %O %A %B %P``: base, ours (the result goes
there), theirs, and the file's path.  The driver decrypts the three versions,
merges their trees key by key, and re-encrypts the result with our data key
(their key when only their side rotated or changed recipients), reusing the
ciphertext of every value that did not change, so the merged file differs from
ours only where theirs brought changes.

* Disjoint changes (different keys, or the same change on both sides) merge
  cleanly: exit 0, the file keeps a valid MAC.
* A real conflict (a key changed differently on both sides, changed on one and
  deleted on the other, or both sides changing recipients differently) exits 1,
  lists the key paths, and leaves our encrypted version in place; git keeps
  base/ours/theirs in the index, and ``gitcrypt-sops git resolve FILE --ours |
  --theirs | --key PATH=SIDE`` finishes the merge from there.
* No key, a tampered file, a file encrypted by another tool, or one side
  encrypted and the other not: exit 1 with one line, ours kept.  Plain text files
  that carry the attribute fall back to ``git merge-file``.

Plaintext never reaches the working tree or a temporary file: the merged
document exists only in memory until it is encrypted.  Lists are merged as
whole values; comments travel with the key that follows them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dates import datetime
from ..errors import DataKeyError, MacMismatch, SopsError
from ..tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Conflict", "MergeConflict", "MergeResult", "merge_documents", "merge_driver", "merge_files", "resolve"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_END = "\0end"  # the unit that holds a mapping's trailing comments


class MergeConflict(SopsError):
    """A merge needs a decision; ``conflicts`` lists the key paths."""

    exit_code = 1

    def __init__(self, message: str, conflicts: Sequence[Conflict], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.conflicts = list(conflicts)


@dataclass(frozen=True)
class Conflict:
    path: str
    reason: str


@dataclass
class MergeResult:
    data: bytes
    conflicts: list[Conflict] = field(default_factory=list)
    #: which side's data key encrypts the result
    key_side: str = "ours"


#: decides a conflict at a key path: "ours", "theirs" or None (stay a conflict)
Chooser = Callable[[str], "str | None"]


# --------------------------------------------------------------------------- tree merge


def same(a: Any, b: Any) -> bool:
    """Deep equality that tells ``1``, ``1.0`` and ``True`` apart and compares comments by text."""
    if a is b:
        return True
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        return False
    if ca is dict:
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if ka.__class__ is Comment or kb.__class__ is Comment:
                if ka.__class__ is not kb.__class__ or ka.text != kb.text:
                    return False
                continue
            if ka != kb or not same(va, vb):
                return False
        return True
    if ca is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if ca is Comment:
        return bool(a.text == b.text)
    if ca is float and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, datetime):
        return bool(a == b and a.utcoffset() == b.utcoffset())
    return bool(a == b)


def _path_text(steps: Sequence[str | int]) -> str:
    import json

    return "".join(f"[{json.dumps(step, ensure_ascii=False)}]" for step in steps) or "[]"


def _units(tree: Any) -> tuple[list[str], dict[str, tuple[tuple[str, ...], Any]]]:
    """A mapping as units: each key with the comments before it, plus trailing comments."""
    if tree is MISSING or tree.__class__ is not dict:
        return [], {}
    order: list[str] = []
    units: dict[str, tuple[tuple[str, ...], Any]] = {}
    pending: list[str] = []
    for key, value in tree.items():
        if key.__class__ is Comment:
            pending.append(key.text)
            continue
        order.append(key)
        units[key] = (tuple(pending), value)
        pending = []
    if pending:
        order.append(_END)
        units[_END] = (tuple(pending), MISSING)
    return order, units


class _Merger:
    def __init__(self, choose: Chooser | None) -> None:
        self.choose = choose
        self.conflicts: list[Conflict] = []

    def conflict(self, steps: Sequence[str | int], reason: str, ours: Any, theirs: Any) -> Any:
        where = _path_text(steps)
        side = self.choose(where) if self.choose is not None else None
        if side == "theirs":
            return theirs
        if side is None:
            self.conflicts.append(Conflict(where, reason))
        return ours

    def value(self, base: Any, ours: Any, theirs: Any, steps: list[str | int]) -> Any:
        if same(ours, theirs):
            return ours
        if same(ours, base):
            return theirs
        if same(theirs, base):
            return ours
        if ours.__class__ is dict and theirs.__class__ is dict:
            return self.mapping(base, ours, theirs, steps)
        if ours is MISSING or theirs is MISSING:
            reason = "deleted on one side, changed on the other"
        elif base is MISSING:
            reason = "added on both sides with different values"
        else:
            reason = "changed on both sides"
        return self.conflict(steps, reason, ours, theirs)

    def comments(self, base: Any, ours: Any, theirs: Any, steps: list[str | int]) -> tuple[str, ...]:
        if ours == theirs or ours == base:
            return tuple(theirs)
        if theirs == base:
            return tuple(ours)
        chosen = self.conflict(steps + ["#comment"], "comment changed on both sides", ours, theirs)
        return tuple(chosen)

    def mapping(self, base: Any, ours: dict[Any, Any], theirs: dict[Any, Any], steps: list[str | int]) -> dict[Any, Any]:
        base_order, base_units = _units(base)
        ours_order, ours_units = _units(ours)
        theirs_order, theirs_units = _units(theirs)
        empty: tuple[tuple[str, ...], Any] = ((), MISSING)
        merged: dict[str, tuple[tuple[str, ...], Any]] = {}
        for key in dict.fromkeys(ours_order + theirs_order + base_order):
            b, o, t = base_units.get(key, empty), ours_units.get(key, empty), theirs_units.get(key, empty)
            trail = steps + [key] if key != _END else steps
            value = self.value(b[1], o[1], t[1], trail) if key != _END else MISSING
            if key != _END and value is MISSING:
                continue
            comments = self.comments(b[0], o[0], t[0], trail)
            if key == _END and not comments:
                continue
            merged[key] = (comments, value)
        order = _merged_order(ours_order, theirs_order, merged)
        out: dict[Any, Any] = {}
        for key in order:
            comments, value = merged[key]
            for text in comments:
                out[Comment(text)] = None
            if key != _END:
                out[key] = value
        return out


def _merged_order(ours: list[str], theirs: list[str], merged: dict[str, Any]) -> list[str]:
    """Our key order; keys only theirs has go after the key that precedes them in theirs."""
    order = [key for key in ours if key in merged and key != _END]
    placed = set(order)
    previous: str | None = None
    for key in theirs:
        if key == _END:
            continue
        if key in merged and key not in placed:
            order.insert(order.index(previous) + 1 if previous is not None else 0, key)
            placed.add(key)
        if key in placed:
            previous = key
    if _END in merged:
        order.append(_END)
    return order


def merge_documents(base: list[Any] | None, ours: list[Any], theirs: list[Any],
                    choose: Chooser | None = None) -> tuple[list[Any], list[Conflict]]:
    """Merge document lists (one per YAML document) key by key."""
    merger = _Merger(choose)
    if base is None:
        base = []
    if len(ours) == len(theirs) and len(base) in (0, len(ours)):
        documents = []
        for index, (o, t) in enumerate(zip(ours, theirs)):
            b = base[index] if base else MISSING
            steps: list[str | int] = [] if len(ours) == 1 else [f"document {index + 1}"]
            merged = merger.value(b, o, t, steps)
            documents.append(merged if merged is not MISSING else {})
        return documents, merger.conflicts
    chosen = merger.value(base if base else MISSING, ours, theirs, ["documents"])
    return list(chosen), merger.conflicts


# --------------------------------------------------------------------------- file merge


@dataclass
class _Version:
    label: str
    data: bytes
    parsed: Any = None
    meta: Any = None
    decrypted: Any = None
    key: Any = None


def _open(label: str, data: bytes, fmt: str, display: str) -> _Version:
    from .. import api

    version = _Version(label, data)
    try:
        version.parsed = api.parse(data, fmt, encrypted=True)
    except (SopsError, ValueError, RecursionError):
        raise _NotSops(label) from None
    if not version.parsed.has_metadata:
        raise _NotSops(label)
    version.meta = api.read_metadata(version.parsed)
    return version


class _NotSops(Exception):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


def _decrypt(version: _Version, fmt: str, display: str) -> None:
    from .. import api
    from .keycache import default_cache

    try:
        version.key = default_cache().get(version.meta)
    except DataKeyError as error:
        raise DataKeyError(f"cannot merge {display}: no key can decrypt {version.label}'s version",
                           hint=error.message) from None
    keep = fmt == "yaml" and version.parsed.yaml_file is not None and version.parsed.yaml_file.spliceable
    try:
        version.decrypted = api.decrypt_parsed(version.parsed, data_key=version.key, keep_outputs=keep)
    except MacMismatch:
        raise MacMismatch(f"cannot merge {display}: {version.label}'s version fails its MAC check "
                          "(altered outside sops)") from None


def merge_files(base: bytes, ours: bytes, theirs: bytes, fmt: str, display: str,
                choose: Chooser | None = None) -> MergeResult:
    """Merge three encrypted versions; MergeResult with conflicts (then ``data`` is ours)."""
    from .keycache import wrapped_id

    versions = {}
    for label, data in (("ours", ours), ("theirs", theirs)):
        versions[label] = _open(label, data, fmt, display)
    base_version = None
    if base.strip():
        try:
            base_version = _open("base", base, fmt, display)
        except (_NotSops, SopsError):
            base_version = None  # e.g. the file was encrypted on both sides since: a two-way merge
    for each in versions.values():
        _decrypt(each, fmt, display)
    if base_version is not None:
        try:
            _decrypt(base_version, fmt, display)
        except DataKeyError:
            base_version = None  # no key for the base: a two-way merge, every difference is a conflict
    o, t = versions["ours"], versions["theirs"]
    conflicts: list[Conflict] = []

    # which data key and recipients: ours, unless only theirs changed them
    base_id = wrapped_id(base_version.meta) if base_version else None
    ours_changed = wrapped_id(o.meta) != base_id
    theirs_changed = wrapped_id(t.meta) != base_id
    key_side = o
    if theirs_changed and not ours_changed:
        key_side = t
    elif theirs_changed and ours_changed and _recipients(o.meta) != _recipients(t.meta) and base_version:
        side = choose("sops key groups") if choose is not None else None
        if side == "theirs":
            key_side = t
        elif side is None:
            conflicts.append(Conflict("sops key groups", "recipients changed differently on both sides"))

    rule = o.meta.rule
    base_rule = base_version.meta.rule if base_version else None
    if t.meta.rule != o.meta.rule:
        if o.meta.rule == base_rule:
            rule = t.meta.rule
        elif t.meta.rule != base_rule:
            side = choose("sops encryption rule") if choose is not None else None
            if side == "theirs":
                rule = t.meta.rule
            elif side is None:
                conflicts.append(Conflict("sops encryption rule", "changed differently on both sides"))

    documents, tree_conflicts = merge_documents(
        base_version.decrypted.documents if base_version else None, o.decrypted.documents,
        t.decrypted.documents, choose)
    conflicts = tree_conflicts + conflicts
    if conflicts:
        return MergeResult(ours, conflicts, key_side.label)

    stash: dict[Any, bytes] = {}
    for candidate in (base_version, t, o):  # ours last: its IVs win
        if candidate is not None and candidate.key == key_side.key:
            stash.update(candidate.decrypted.stash)
    data = _encrypt(documents, fmt, key_side, rule, stash, [o, t] + ([base_version] if base_version else []))
    return MergeResult(data, [], key_side.label)


def _recipients(meta: Any) -> list[list[tuple[str, str]]]:
    from ..policy import entry_ident

    return sorted(sorted((t, entry_ident(t, e)) for t, e in group) for group in meta.key_groups)


def _encrypt(documents: list[Any], fmt: str, key_side: _Version, rule: Any, stash: dict[Any, bytes],
             templates: list[_Version]) -> bytes:
    from .. import api

    meta = key_side.meta
    options = api.EncryptOptions([], rule, meta.shamir_threshold)
    wrapped = (meta.key_groups, meta.shamir_threshold)
    if fmt == "yaml":
        for template in templates:
            text = _plaintext_in_layout(template, documents)
            if text is None:
                continue
            parsed = api.parse(text.encode("utf-8", "surrogateescape"), "yaml", encrypted=False)
            if all(same(_plain(a), _plain(b)) for a, b in zip(parsed.documents, documents)) and \
                    len(parsed.documents) == len(documents):
                return api.encrypt_parsed(parsed, options, data_key=key_side.key, stash=stash, wrapped=wrapped,
                                          metadata_extra=dict(meta.extra))
    parsed = api.Parsed(fmt, documents)
    return api.encrypt_parsed(parsed, options, data_key=key_side.key, stash=stash, wrapped=wrapped,
                              metadata_extra=dict(meta.extra))


def _plain(value: Any) -> Any:
    from ..tree import strip_comments

    return strip_comments(value)


def _shape(value: Any, out: list[Any]) -> None:
    """The walker's view of a tree: containers, comment slots, null leaves and value leaves."""
    cls = value.__class__
    if cls is dict:
        out.append("{")
        for key, item in value.items():
            if key.__class__ is Comment:
                out.append("#")
                continue
            out.append(("k", key))
            _shape(item, out)
        out.append("}")
    elif cls is list:
        out.append("[")
        for item in value:
            if item.__class__ is Comment:
                out.append("#")
                continue
            _shape(item, out)
        out.append("]")
    else:
        out.append("~" if value is None else "v")


def _leaves(value: Any, out: list[Any]) -> None:
    """Leaves and comments in the walker's output order (nulls produce no output)."""
    cls = value.__class__
    if cls is dict:
        for key, item in value.items():
            if key.__class__ is Comment:
                out.append(key)
                continue
            _leaves(item, out)
    elif cls is list:
        for item in value:
            if item.__class__ is Comment:
                out.append(item)
                continue
            _leaves(item, out)
    elif value is not None:
        out.append(value)


def _plaintext_in_layout(template: _Version, documents: list[Any]) -> str | None:
    """The merged documents as plaintext YAML in ``template``'s layout, or None when the shapes differ.

    Every leaf the merge did not change keeps the template's decrypted output;
    changed leaves are rendered anew.  The text lives in memory only.
    """
    from ..stores import yaml_store

    decrypted = template.decrypted
    yaml_file = template.parsed.yaml_file
    if decrypted is None or decrypted.outputs is None or yaml_file is None or not yaml_file.spliceable:
        return None
    if len(decrypted.documents) != len(documents):
        return None
    old_shape: list[Any] = []
    new_shape: list[Any] = []
    old_leaves: list[Any] = []
    new_leaves: list[Any] = []
    for old, new in zip(decrypted.documents, documents):
        _shape(old, old_shape)
        _shape(new, new_shape)
        _leaves(old, old_leaves)
        _leaves(new, new_leaves)
    if old_shape != new_shape or len(old_leaves) != len(decrypted.outputs):
        return None
    outputs: list[Any] = []
    for old, new, output in zip(old_leaves, new_leaves, decrypted.outputs):
        if same(old, new):
            outputs.append(output)
        elif new.__class__ is Comment:
            outputs.append(Comment(new.text))
        else:
            outputs.append(new)
    return yaml_store.splice(yaml_file, outputs, encrypting=False, metadata_text=None)


# --------------------------------------------------------------------------- driver


def _fmt(path: str | None, *names: str) -> str:
    from ..stores import format_for

    for name in (path, *names):
        if name:
            fmt = format_for(name)
            if fmt != "binary" or os.path.splitext(name)[1]:
                return fmt
    return "binary"


def _say(message: str) -> None:
    sys.stderr.write(f"gitcrypt-sops: {message}\n")


def _resolve_hint(display: str) -> str:
    return (f"resolve with: gitcrypt-sops git resolve {display} --ours | --theirs "
            "(or --key 'PATH=ours|theirs' per key)")


def merge_driver(base_path: str, ours_path: str, theirs_path: str, path: str | None = None) -> int:
    """git's merge driver: merge into ``ours_path``; 0 when clean, 1 otherwise (ours kept)."""
    from ..fsio import write_atomic
    from ..policy import foreign_tool

    display = path or ours_path
    try:
        base, ours, theirs = (Path(p).read_bytes() for p in (base_path, ours_path, theirs_path))
    except OSError as error:
        _say(f"cannot merge {display}: cannot read a version ({error.strerror})")
        return 1
    for label, data in (("ours", ours), ("theirs", theirs)):
        tool = foreign_tool(data)
        if tool is not None:
            _say(f"cannot merge {display}: {label}'s version is encrypted by {tool}, not sops; our version is kept")
            return 1
    if foreign_tool(base) is not None:
        base = b""
    fmt = _fmt(path, ours_path)
    try:
        result = merge_files(base, ours, theirs, fmt, display)
    except _NotSops as not_sops:
        return _merge_plain(base_path, ours_path, theirs_path, base, ours, theirs, fmt, display, not_sops.label)
    except SopsError as error:
        hint = f" ({error.hint})" if error.hint else ""
        _say(f"{error.message}{hint}; our version is kept; {_resolve_hint(display)}")
        return 1
    if result.conflicts:
        paths = ", ".join(c.path for c in result.conflicts)
        _say(f"merge conflict in {display}: {len(result.conflicts)} key(s) changed on both sides: {paths}")
        _say(f"our encrypted version is kept (no plaintext written); {_resolve_hint(display)}")
        return 1
    try:
        write_atomic(ours_path, result.data)
    except SopsError as error:
        _say(f"cannot merge {display}: {error.message}")
        return 1
    return 0


def _merge_plain(base_path: str, ours_path: str, theirs_path: str, base: bytes, ours: bytes, theirs: bytes,
                 fmt: str, display: str, label: str) -> int:
    """Neither side is a sops file: a plain text merge.  One side only: refuse."""
    from .. import api

    encrypted = []
    for name, data in (("ours", ours), ("theirs", theirs)):
        try:
            encrypted.append(bool(data.strip()) and api.parse(data, fmt, encrypted=True).has_metadata)
        except (SopsError, ValueError, RecursionError):
            encrypted.append(False)
    if any(encrypted):
        _say(f"cannot merge {display}: one side is sops-encrypted and the other is not ({label}); our version "
             f"is kept; encrypt or decrypt one side and merge again, or take a side with git checkout --ours/--theirs")
        return 1
    if b"\0" in ours or b"\0" in theirs:
        _say(f"cannot merge {display}: binary file changed on both sides; our version is kept")
        return 1
    import subprocess

    try:
        done = subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
                               ours_path, base_path, theirs_path], check=False)
    except FileNotFoundError:
        _say("git is not on PATH")
        return 1
    return 0 if done.returncode == 0 else 1


# --------------------------------------------------------------------------- resolve


def resolve(file: str, *, side: str | None = None, keys: dict[str, str] | None = None) -> int:
    """Finish a conflicted merge of ``file`` from git's index stages; writes the encrypted result."""
    from ..errors import InputError
    from ..fsio import write_atomic
    from .git import BlobReader, GitError, repo_root

    root = repo_root(os.path.abspath(file))
    if root is None:
        raise GitError(f"{file}: not inside a git work tree")
    relative = Path(os.path.relpath(os.path.abspath(file), root)).as_posix()
    with BlobReader(root) as reader:
        base, ours, theirs = (reader.read(f":{stage}:{relative}") for stage in (1, 2, 3))
    if ours is None or theirs is None:
        raise InputError(f"{file}: no merge in progress for this file (git has no ours/theirs versions)")
    keys = keys or {}

    def choose(where: str) -> str | None:
        return keys.get(where) or side

    try:
        result = merge_files(base or b"", ours, theirs, _fmt(relative), file, choose)
    except _NotSops as not_sops:
        raise InputError(f"{file}: {not_sops.label}'s version is not a sops file; "
                         "use git checkout --ours/--theirs") from None
    if result.conflicts:
        paths = ", ".join(c.path for c in result.conflicts)
        raise MergeConflict(f"{file}: still conflicting: {paths}", result.conflicts,
                            hint="add --ours, --theirs or --key 'PATH=ours|theirs' for each")
    write_atomic(file, result.data)
    sys.stdout.write(f"resolved {file} (encrypted with {result.key_side}' data key); review it with "
                     f"'git diff', then run: git add {file}\n")
    return 0
