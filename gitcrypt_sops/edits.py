"""Changing encrypted files with stable ciphertext: ``edit``, ``set``, ``unset``, ``update``.

Every operation opens the file once (:func:`open_file`: decrypt, keep the data key,
the IV stash and the wrapped keys), changes the plaintext, and re-encrypts it with
:func:`reencrypt`.  Reusing the data key and the stash gives every value whose path,
type and plaintext did not change its exact previous ``ENC[...]`` string, so a git
diff shows only the changed values plus the ``lastmodified`` and ``mac`` lines.

YAML keeps its layout: the plaintext is the file's own text with values spliced in,
changes are made to that text where a safe text edit exists (checked by parsing the
result), and encryption splices again.  The ``sops`` metadata block keeps its
original text too; only ``lastmodified`` and ``mac`` are replaced in it.

:func:`edit_file` runs the editor on a private temporary file, removed on every
exit path including SIGINT and SIGTERM.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from . import api, datakey
from . import metadata as metadata_mod
from .errors import (
    AlreadyEncrypted,
    EmitError,
    EmptyDocument,
    FileNotModified,
    InputError,
    InvalidSetFormat,
    NoEditor,
    SopsError,
    TreeEncryptError,
)
from .tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Path = list[str | int]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class KeyNotFound(SopsError):
    """``unset`` of a key or index that does not exist (sops exits 1; ``--idempotent`` makes it 0)."""

    exit_code = 1


class Interrupted(SopsError):
    """A signal stopped an edit; the temporary plaintext is already removed."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; nothing was written")
        # matches sops: Ctrl+C is KeyboardInterrupt (85); other signals exit 128 + number
        self.exit_code = 85 if signum == signal.SIGINT else 128 + signum


# -- paths and values -------------------------------------------------------------------


def parse_path(text: str) -> Path:
    """``["a"][0]['b']`` as a list of steps; :class:`InvalidSetFormat` (exit 7, as sops) if malformed.

    Keys are JSON strings (escapes allowed) or single-quoted text; indexes are integers.
    """
    steps: Path = []
    decoder = json.JSONDecoder()
    index = 0
    text = text.strip()
    bad = InvalidSetFormat("invalid index format: use the form '[\"key\"][0]'")
    while index < len(text):
        if text[index] != "[":
            raise bad
        index += 1
        if text.startswith('"', index):
            try:
                key, index = decoder.raw_decode(text, index)
            except json.JSONDecodeError:
                raise bad from None
            steps.append(key)
        elif text.startswith("'", index):
            end = text.find("'", index + 1)
            if end == -1:
                raise bad
            steps.append(text[index + 1 : end])
            index = end + 1
        else:
            end = text.find("]", index)
            if end == -1 or not re.fullmatch(r"[+-]?\d+", text[index:end]):
                raise bad
            steps.append(int(text[index:end]))
            index = end
        if not text.startswith("]", index):
            raise bad
        index += 1
    if not steps:
        raise bad
    return steps


def path_text(steps: Sequence[str | int]) -> str:
    return "".join(f"[{json.dumps(s, ensure_ascii=False)}]" if isinstance(s, str) else f"[{s}]" for s in steps)


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _check_ints(value: Any) -> Any:
    cls = value.__class__
    if cls is dict:
        return {k: _check_ints(v) for k, v in value.items()}
    if cls is list:
        return [_check_ints(v) for v in value]
    if cls is int and not INT64_MIN <= value <= INT64_MAX:
        raise InvalidSetFormat("the value holds an integer outside the int64 range; pass it as a JSON string")
    if cls is float and not math.isfinite(value):
        raise InvalidSetFormat("the value holds a number out of the float64 range")
    return value


def parse_value(text: str | bytes) -> Any:
    """A ``set`` value: JSON text as a tree value; :class:`InvalidSetFormat` (exit 7) otherwise.

    Differs from sops 3.11 on purpose: integers stay integers (``type:int``, which
    3.11 decrypts) instead of becoming float64.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSetFormat("the value is not valid UTF-8 JSON") from None
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except _DuplicateKey:
        raise InvalidSetFormat("the value is not valid JSON: an object repeats a key") from None
    except json.JSONDecodeError as error:
        raise InvalidSetFormat(f"the value is not valid JSON (line {error.lineno}, column {error.colno})") from None
    except (ValueError, RecursionError):
        raise InvalidSetFormat("the value is not valid JSON") from None
    return _check_ints(value)


def same_value(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1``, ``1.0`` and ``True`` differ); comments ignored."""
    ca, cb = a.__class__, b.__class__
    if ca is dict or cb is dict:
        if ca is not cb:
            return False
        ka = [k for k in a if k.__class__ is not Comment]
        kb = [k for k in b if k.__class__ is not Comment]
        return ka == kb and all(same_value(a[k], b[k]) for k in ka)
    if ca is list or cb is list:
        if ca is not cb:
            return False
        ia = [v for v in a if v.__class__ is not Comment]
        ib = [v for v in b if v.__class__ is not Comment]
        return len(ia) == len(ib) and all(same_value(x, y) for x, y in zip(ia, ib))
    if ca is float and cb is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if ca is not cb:
        from .dates import datetime

        # GoTime and datetime, or str subclasses, compare by value
        kindred = isinstance(a, datetime) and isinstance(b, datetime) or isinstance(a, str) and isinstance(b, str)
        if not kindred:
            return False
    return bool(a == b)


def reconcile(new: Any, old: Any) -> Any:
    """Keep an old float where the new text reads it back as the same integer.

    sops 3.11 stores every JSON number as a float; after a decrypt/edit round trip
    ``8080`` reads back as an int.  Where the old value at the same path was the float
    with exactly that value, the float is kept so its ciphertext stays the same.
    """
    cn, co = new.__class__, old.__class__
    if cn is dict and co is dict:
        for key, value in new.items():
            if key.__class__ is str and key in old:
                new[key] = reconcile(value, old[key])
        return new
    if cn is list and co is list:
        old_items = [v for v in old if v.__class__ is not Comment]
        position = 0
        for index, value in enumerate(new):
            if value.__class__ is Comment:
                continue
            if position < len(old_items):
                new[index] = reconcile(value, old_items[position])
            position += 1
        return new
    exact = cn is int and co is float and math.isfinite(old) and old.is_integer() and int(old) == new
    if exact and not (new == 0 and math.copysign(1, old) < 0):  # -0.0 is not 0
        return old
    return new


def _items(node: list[Any]) -> list[int]:
    """Positions of the non-comment elements of a list."""
    return [i for i, v in enumerate(node) if v.__class__ is not Comment]


def _build(steps: Path, leaf: Any) -> Any:
    """The value sops creates for a missing path: nested maps (and one-element lists)."""
    value = leaf
    for step in reversed(steps):
        value = [value] if isinstance(step, int) else {step: value}
    return value


def _describe(steps: Sequence[str | int]) -> str:
    return path_text(steps) or "the top level"


def set_in(document: dict[Any, Any], steps: Path, value: Any) -> bool:
    """Set ``steps`` to ``value`` in place, as ``sops set`` does; True if anything changed.

    Missing keys are created (with missing intermediate maps), an index past the end
    appends, and a scalar in the way is replaced.  List indexes count values only
    (comments inside YAML lists are skipped, unlike sops which counts them).
    """
    node: Any = document
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        if node.__class__ is dict:
            if not isinstance(step, str):
                raise SopsError(f"cannot use index [{step}] on {_describe(steps[:depth])}: it is a mapping")
            if step not in node:
                node[step] = _build(steps[depth + 1 :], value)
                return True
            slot: Any = step
        else:
            assert node.__class__ is list
            if not isinstance(step, int):
                raise SopsError(f"cannot use key [{json.dumps(step)}] on {_describe(steps[:depth])}: it is a list")
            positions = _items(node)
            if step < 0:
                raise SopsError(f"index [{step}] at {_describe(steps[:depth])} is negative")
            if step >= len(positions):
                node.append(_build(steps[depth + 1 :], value))
                return True
            slot = positions[step]
        if last:
            value = reconcile(value, node[slot])
            changed = not same_value(node[slot], value)
            node[slot] = value
            return changed
        child = node[slot]
        if child.__class__ not in (dict, list):
            node[slot] = _build(steps[depth + 1 :], value)
            return True
        node = child
    return False  # not reached: steps is never empty


def unset_in(document: dict[Any, Any], steps: Path) -> None:
    """Remove ``steps`` in place, as ``sops unset`` does; :class:`KeyNotFound` if absent."""
    node: Any = document
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        where: Any
        if node.__class__ is dict and isinstance(step, str):
            if step not in node:
                raise KeyNotFound(f"key not found: {path_text(steps[: depth + 1])}")
            where = step
        elif node.__class__ is list and isinstance(step, int):
            positions = _items(node)
            if not 0 <= step < len(positions):
                raise KeyNotFound(f"index out of range: {path_text(steps[: depth + 1])}")
            where = positions[step]
        else:
            kind = {dict: "a mapping", list: "a list"}.get(node.__class__, "a single value")
            raise KeyNotFound(f"cannot look up {path_text(steps[depth : depth + 1])} in {_describe(steps[:depth])}: "
                              f"it is {kind}")
        if last:
            del node[where]
            return
        node = node[where]


def lookup(document: Any, steps: Sequence[str | int]) -> tuple[bool, Any]:
    """(found, value) at ``steps``, list indexes counting values only."""
    node = document
    for step in steps:
        if node.__class__ is dict and isinstance(step, str) and step in node:
            node = node[step]
        elif node.__class__ is list and isinstance(step, int):
            positions = _items(node)
            if not 0 <= step < len(positions):
                return False, None
            node = node[positions[step]]
        else:
            return False, None
    return True, node


# -- opening and re-encrypting ------------------------------------------------------------


class Session:
    """An encrypted file opened for changing: its plaintext, data key, IV stash and metadata."""

    __slots__ = ("decrypted", "fmt", "json_indent", "original", "parsed", "plaintext", "yaml_indent")

    def __init__(self, fmt: str, original: bytes, parsed: api.Parsed, decrypted: api.Decrypted,
                 plaintext: bytes, yaml_indent: int, json_indent: int | None) -> None:
        self.fmt = fmt
        #: the encrypted file as read
        self.original = original
        self.parsed = parsed
        self.decrypted = decrypted
        #: the decrypted file (YAML: the file's own layout), what ``edit`` shows
        self.plaintext = plaintext
        self.yaml_indent = yaml_indent
        self.json_indent = json_indent

    @property
    def documents(self) -> list[dict[Any, Any]]:
        return self.decrypted.documents

    @property
    def metadata(self) -> metadata_mod.Metadata:
        return self.decrypted.metadata


def detect_yaml_indent(text: str, default: int = 4) -> int:
    """The indentation the ``sops`` block was written with (the writer's indent)."""
    match = re.search(r"(?m)^sops:[ \t]*\r?\n( +)\S", text)
    return len(match.group(1)) if match else default


def _document_indent(text: str, default: int) -> int:
    """The smallest indentation of a mapping key in a YAML document (the user's indent step)."""
    found = [len(m.group(1)) for m in re.finditer(r"(?m)^( +)[^\s#\-][^:\n]*:(?: |$)", text)]
    return min(found) if found else default


def detect_json_indent(text: str) -> int | None:
    """The indentation of a JSON file as ``--indent`` takes it (None: a tab, sops's default)."""
    match = re.search(r"\n([ \t]+)\S", text)
    if match is None or match.group(1).startswith("\t"):
        return None
    return len(match.group(1))


def open_file(data: bytes, fmt: str, *, ignore_mac: bool = False,
              decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER) -> Session:
    """Decrypt ``data`` for changing; the data key comes from the file's recipients."""
    api.check_not_empty(data)
    parsed = api.parse(data, fmt, encrypted=True)
    splice = fmt == "yaml" and parsed.yaml_file is not None and parsed.yaml_file.spliceable
    toml_file = getattr(parsed, "toml_file", None)
    decrypted = api.decrypt_parsed(parsed, ignore_mac=ignore_mac, decryption_order=decryption_order,
                                   keep_outputs=splice or toml_file is not None)
    text = data.decode("utf-8", "replace")
    yaml_indent = detect_yaml_indent(text) if fmt == "yaml" else 4
    json_indent = detect_json_indent(text) if fmt in ("json", "binary") else None
    if splice:
        from .stores import yaml_store

        assert decrypted.outputs is not None
        plaintext = yaml_store.splice(parsed.yaml_file, decrypted.outputs, encrypting=False,
                                      metadata_text=None).encode()
        yaml_indent = _document_indent(plaintext.decode(), yaml_indent)
    else:
        toml_text = _toml_plaintext(toml_file, decrypted) if toml_file is not None else None
        plaintext = toml_text if toml_text is not None else api._emit_plain(
            decrypted.documents, fmt, yaml_indent, json_indent)
    return Session(fmt, data, parsed, decrypted, plaintext, yaml_indent, json_indent)


def _toml_plaintext(toml_file: Any, decrypted: api.Decrypted) -> bytes | None:
    """TOML keeps its layout the way ``decrypt`` keeps it (None when it cannot)."""
    from .stores import toml_store  # type: ignore[attr-defined,unused-ignore]

    if decrypted.outputs is None:
        return None
    spliced: bytes | None = toml_store.splice(toml_file, decrypted.outputs, decrypted.documents,
                                              encrypting=False, metadata=None)
    return spliced


def reencrypt(session: Session, parsed: api.Parsed, output_fmt: str | None = None) -> bytes:
    """Encrypt ``parsed`` (the changed plaintext) with the file's data key, stash and wrapped keys.

    Values whose path, type and plaintext are unchanged keep their exact ciphertext; the
    metadata keeps its text apart from ``lastmodified`` and ``mac``.
    """
    meta = session.metadata
    for index, document in enumerate(parsed.documents):
        if index < len(session.documents):
            reconcile(document, session.documents[index])
    options = api.EncryptOptions([], meta.rule, meta.shamir_threshold, session.yaml_indent, session.json_indent)
    out_fmt = output_fmt or session.fmt
    result = api.encrypt_parsed(
        parsed, options, out_fmt, data_key=session.decrypted.data_key, stash=session.decrypted.stash,
        wrapped=(meta.key_groups, meta.shamir_threshold), metadata_extra=dict(meta.extra),
    )
    if out_fmt != session.fmt:
        return result
    result = keep_metadata_text(session.original, result, out_fmt)
    if out_fmt == "yaml":
        result = keep_list_comments(session.original, result)
    return result


def parse_plaintext(data: bytes, fmt: str) -> api.Parsed:
    """Parse plaintext for re-encryption (a top-level ``sops`` key is refused, exit 203)."""
    api.check_not_empty(data)
    try:
        return api.parse(data, fmt, encrypted=False)
    except AlreadyEncrypted:
        raise AlreadyEncrypted("the document has a top-level 'sops' key, which is reserved for the metadata "
                               "of encrypted files; rename it") from None


# -- keeping the metadata text --------------------------------------------------------------

_LASTMODIFIED = r'(?m)^([ \t]*"?(?:sops_)?lastmodified"?[ \t]*[:=][ \t]*["\']?){old}(?=["\']?[ \t]*,?[ \t]*\r?$)'


def _patch(block: str, old: metadata_mod.Metadata, new: metadata_mod.Metadata) -> str | None:
    """``block`` (metadata text) with the old ``lastmodified`` and ``mac`` values replaced."""
    if not old.mac or block.count(old.mac) != 1:
        return None
    block = block.replace(old.mac, new.mac)
    pattern = re.compile(_LASTMODIFIED.format(old=re.escape(old.lastmodified)))
    block, count = pattern.subn(lambda m: m.group(1) + new.lastmodified, block)
    return block if count == 1 else None


def _same_metadata(a: metadata_mod.Metadata, b: metadata_mod.Metadata) -> bool:
    def threshold(meta: metadata_mod.Metadata) -> int:
        return (meta.shamir_threshold or len(meta.key_groups)) if len(meta.key_groups) > 1 else 0

    return (a.lastmodified == b.lastmodified and a.mac == b.mac and a.key_groups == b.key_groups
            and a.rule == b.rule and threshold(a) == threshold(b))


def _meta_of(data: bytes, fmt: str) -> metadata_mod.Metadata:
    return api.read_metadata(api.parse(data, fmt, encrypted=True))


def keep_metadata_text(original: bytes, new: bytes, fmt: str) -> bytes:
    """``new`` with its metadata written as in ``original`` (only ``lastmodified``/``mac`` changed).

    sops 3.11 writes INI metadata in random order and 3.13 sorts its keys; keeping the
    file's own text means neither shows up in a diff.  Falls back to ``new`` whenever
    the result would not read back as the same metadata.
    """
    try:
        if fmt == "yaml":
            return _keep_yaml_metadata(original, new)
        old_meta = _meta_of(original, fmt)
        new_meta = _meta_of(new, fmt)
        old_text, new_text = original.decode("utf-8", "surrogateescape"), new.decode("utf-8", "surrogateescape")
        old_start, new_start = _metadata_start(old_text, fmt), _metadata_start(new_text, fmt)
        if old_start is None or new_start is None:
            return new
        patched = _patch(old_text[old_start:], old_meta, new_meta)
        if patched is None:
            return new
        candidate = (new_text[:new_start] + patched).encode("utf-8", "surrogateescape")
        if _same_metadata(_meta_of(candidate, fmt), new_meta):
            return candidate
    except SopsError:
        pass
    return new


def _metadata_start(text: str, fmt: str) -> int | None:
    """Where the trailing metadata section of a JSON, dotenv or INI file starts."""
    if fmt in ("json", "binary"):
        first = re.search(r"\n([ \t]+)\S", text)
        if first is None:
            return None
        matches = list(re.finditer(r'(?m)^' + re.escape(first.group(1)) + r'"sops":[ ]?\{', text))
        return matches[-1].start() if matches else None
    if fmt == "ini":
        matches = list(re.finditer(r"(?m)^\[sops\][ \t]*\r?$", text))
        return matches[-1].start() if matches else None
    if fmt == "dotenv":
        lines = text.split("\n")
        position = len(text)
        for line in reversed(lines[:-1] if text.endswith("\n") else lines):
            if not line.startswith("sops_"):
                break
            position -= len(line) + 1
        return position if position < len(text) else None
    return None


def _keep_yaml_metadata(original: bytes, new: bytes) -> bytes:
    from .stores import yaml_store

    old_file = yaml_store.load(original, want_metadata=True)
    new_file = yaml_store.load(new, want_metadata=True)
    if len(old_file.meta_ranges) != len(new_file.meta_ranges) or not new_file.meta_ranges:
        return new
    old_meta = metadata_mod.from_tree(old_file.metadata)
    new_meta = metadata_mod.from_tree(new_file.metadata)
    replacements: list[tuple[int, int, str]] = []
    for (old_start, old_end), (new_start, new_end) in zip(old_file.meta_ranges, new_file.meta_ranges):
        block = _patch(old_file.text[old_start:old_end], old_meta, new_meta)
        if block is None:
            return new
        try:
            check = yaml_store.load(block.encode(), want_metadata=True)
            if not check.has_metadata or not _same_metadata(metadata_mod.from_tree(check.metadata), new_meta):
                return new
        except SopsError:
            return new
        tail = new_file.text[new_start:new_end]
        if tail.endswith("\n") and not block.endswith("\n"):
            block += "\n"
        replacements.append((new_start, new_end, block))
    text = new_file.text
    for start, end, block in reversed(replacements):
        text = text[:start] + block + text[end:]
    return text.encode()


_LIST_COMMENT = r"ENC\[AES256_GCM,data:[^\]\n]*,type:comment\]"


def keep_list_comments(original: bytes, new: bytes) -> bytes:
    """Keep encrypted comments that were sequence elements (``- ENC[...]``, as sops writes them).

    Splicing writes a comment back as ``#ENC[...]``; both forms decrypt alike (same
    list, same AAD).  Only a comment whose ciphertext is unchanged is put back.
    """
    text = original.decode("utf-8", "replace")
    elements = set(re.findall(r"(?m)^[ \t]*- (" + _LIST_COMMENT + r")[ \t]*\r?$", text))
    if not elements:
        return new
    pattern = re.compile(r"(?m)^([ \t]*)#(" + _LIST_COMMENT + r")(?=[ \t]*\r?$)")

    def put_back(match: re.Match[str]) -> str:
        return f"{match.group(1)}- {match.group(2)}" if match.group(2) in elements else match.group(0)

    return pattern.sub(put_back, new.decode()).encode()


def differs_only_in_mac(original: bytes, new: bytes, fmt: str) -> bool:
    """True when ``new`` is ``original`` apart from ``lastmodified`` and ``mac``."""
    if len(original) != len(new):
        return False
    try:
        old_meta, new_meta = _meta_of(original, fmt), _meta_of(new, fmt)
    except SopsError:
        return False
    text = new.decode("utf-8", "surrogateescape").replace(new_meta.mac, old_meta.mac)
    pattern = re.compile(_LASTMODIFIED.format(old=re.escape(new_meta.lastmodified)))
    text = pattern.sub(lambda m: m.group(1) + old_meta.lastmodified, text)
    return text.encode("utf-8", "surrogateescape") == original


# -- YAML text edits -------------------------------------------------------------------------


def _first_document_node(text: str) -> Any:
    import yaml

    try:
        for node in yaml.compose_all(text, Loader=yaml.CSafeLoader):
            return node
    except yaml.YAMLError:
        return None
    return None


def _node_at(root: Any, steps: Sequence[str | int]) -> Any:
    import yaml

    node = root
    for step in steps:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            found = [value for key, value in node.value if isinstance(key, yaml.ScalarNode) and key.value == step]
            if len(found) != 1:
                return None
            node = found[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
        else:
            return None
    return node


def _content_end(text: str, node: Any) -> int | None:
    """The index just after the last character of ``node``'s text (None for an empty value)."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        start, end = node.start_mark.index, node.end_mark.index
        while end > start and text[end - 1] in " \t\r\n":
            end -= 1
        return end if end > start else None
    if node.flow_style:
        return int(node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        if not node.value:
            return None
        key, value = node.value[-1]
        end = _content_end(text, value)
        return end if end is not None else _content_end(text, key)
    if not node.value:
        return None
    return _content_end(text, node.value[-1])


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, end: int) -> int | None:
    """The start of the line after the one holding ``end``, if only a comment follows on it."""
    stop = text.find("\n", end)
    rest = text[end : len(text) if stop == -1 else stop].strip()
    if rest and not rest.startswith("#"):
        return None
    return len(text) if stop == -1 else stop + 1


def _shift(lines_text: str, first: str, rest: str) -> str:
    lines = lines_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = [first + lines[0]] + [rest + line if line.strip() else line for line in lines[1:]]
    return "\n".join(out) + "\n"


def _entry_text(key: str, value: Any, indent: str, step: int) -> str:
    from .stores.yaml_emit import emit_document

    return _shift(emit_document({key: value}, step), indent, indent)


def _entry_range(text: str, mapping: Any, key: str) -> tuple[int, int] | None:
    """The text of one ``key: value`` entry of a block mapping, whole lines."""
    import yaml

    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            start = _line_start(text, key_node.start_mark.index)
            if text[start : key_node.start_mark.index].strip():
                return None
            end = _content_end(text, value_node)
            if end is None:
                end = _content_end(text, key_node)
            after = _after_line(text, end) if end is not None else None
            return (start, after) if after is not None else None
    return None


def _map_insert(text: str, mapping: Any, key: str, value: Any, step: int) -> str | None:
    import yaml

    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style or not mapping.value:
        return None
    end = _content_end(text, mapping)
    after = _after_line(text, end) if end is not None else None
    if after is None:
        return None
    indent = " " * mapping.value[0][0].start_mark.column
    lead = "" if after == 0 or text[after - 1] == "\n" else "\n"
    return text[:after] + lead + _entry_text(key, value, indent, step) + text[after:]


def _map_replace(text: str, mapping: Any, key: str, value: Any, step: int) -> str | None:
    import yaml

    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style:
        return None
    span = _entry_range(text, mapping, key)
    if span is None:
        return None
    column = next(k.start_mark.column for k, _ in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key)
    return text[: span[0]] + _entry_text(key, value, " " * column, step) + text[span[1] :]


def _map_remove(text: str, mapping: Any, key: str) -> str | None:
    import yaml

    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style or len(mapping.value) < 2:
        return None
    span = _entry_range(text, mapping, key)
    return None if span is None else text[: span[0]] + text[span[1] :]


def _item_range(text: str, sequence: Any, index: int) -> tuple[int, int] | None:
    item = sequence.value[index]
    start = _line_start(text, item.start_mark.index)
    if not re.fullmatch(r"[ \t]*-[ \t]+", text[start : item.start_mark.index]):
        return None
    end = _content_end(text, item)
    after = _after_line(text, end) if end is not None else None
    return (start, after) if after is not None else None


def _seq_append(text: str, sequence: Any, value: Any, step: int) -> str | None:
    import yaml

    from .stores.yaml_emit import emit_value

    if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style or not sequence.value:
        return None
    first = _item_range(text, sequence, 0)
    last = _item_range(text, sequence, len(sequence.value) - 1)
    if first is None or last is None:
        return None
    dash = text[first[0] : text.index("-", first[0])]
    lead = "" if last[1] == 0 or text[last[1] - 1] == "\n" else "\n"
    return text[: last[1]] + lead + _shift(emit_value([value], step), dash, dash) + text[last[1] :]


def _seq_replace(text: str, sequence: Any, index: int, value: Any, step: int) -> str | None:
    import yaml

    from .stores.yaml_emit import emit_value

    if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style or not 0 <= index < len(sequence.value):
        return None
    span = _item_range(text, sequence, index)
    if span is None:
        return None
    dash = text[span[0] : text.index("-", span[0])]
    return text[: span[0]] + _shift(emit_value([value], step), dash, dash) + text[span[1] :]


def _seq_remove(text: str, sequence: Any, index: int) -> str | None:
    import yaml

    if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style or len(sequence.value) < 2:
        return None
    span = _item_range(text, sequence, index)
    return None if span is None else text[: span[0]] + text[span[1] :]


def _yaml_text_set(session: Session, text: str, steps: Path, value: Any) -> str | None:
    """The plaintext with ``steps`` set, as a text edit; None when no safe text edit exists."""
    from .stores import yaml_store
    from .walk import UNCHANGED

    document = session.documents[0]
    found, old = lookup(document, steps)
    scalar = value.__class__ not in (dict, list)
    if found and old.__class__ not in (dict, list) and scalar and old is not None and value is not None:
        index = _leaf_index(session.documents, steps)
        yaml_file = yaml_store.load(text.encode(), want_metadata=False)
        if index is None or not yaml_file.spliceable:
            return None
        outputs: list[Any] = [UNCHANGED] * index + [value] + [UNCHANGED] * _count_leaves(session.documents)
        return yaml_store.splice(yaml_file, outputs, encrypting=False, metadata_text=None)
    root = _first_document_node(text)
    if root is None:
        return None
    # the deepest existing prefix of the path
    depth = 0
    while depth < len(steps) and lookup(document, steps[: depth + 1])[0]:
        depth += 1
    parent_steps, node_found = steps[:depth], lookup(document, steps[:depth])[1]
    step = session.yaml_indent
    if depth == len(steps) or node_found.__class__ not in (dict, list):
        # replace the entry (or list item) holding the value, or the scalar in the way
        if depth == 0:
            return None
        holder = _node_at(root, steps[: depth - 1])
        key = steps[depth - 1]
        new_value = value if depth == len(steps) else _build(steps[depth:], value)
        if isinstance(key, int):
            return _seq_replace(text, holder, key, new_value, step)
        return _map_replace(text, holder, key, new_value, step)
    node = _node_at(root, parent_steps)
    if node_found.__class__ is dict and isinstance(steps[depth], str):
        key = steps[depth]
        assert isinstance(key, str)
        return _map_insert(text, node, key, _build(steps[depth + 1 :], value), step)
    if node_found.__class__ is list and isinstance(steps[depth], int):
        return _seq_append(text, node, _build(steps[depth + 1 :], value), step)
    return None


def _yaml_text_unset(session: Session, text: str, steps: Path) -> str | None:
    root = _first_document_node(text)
    if root is None:
        return None
    holder = _node_at(root, steps[:-1])
    last = steps[-1]
    if isinstance(last, str):
        return _map_remove(text, holder, last)
    return _seq_remove(text, holder, last)


def _leaf_index(documents: list[dict[Any, Any]], steps: Sequence[str | int]) -> int | None:
    """Position of the leaf at ``steps`` (first document) in the walk order of all leaves."""
    target = tuple(steps)
    counter = [0]
    result: list[int] = []

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        cls = node.__class__
        if cls is dict:
            for key, value in node.items():
                if key.__class__ is Comment:
                    counter[0] += 1
                else:
                    walk(value, path + (key,))
            return
        if cls is list:
            position = 0
            for item in node:
                if item.__class__ is Comment:
                    counter[0] += 1
                    continue
                walk(item, path + (position,))
                position += 1
            return
        if node is None:
            return
        if path == target and not result:
            result.append(counter[0])
        counter[0] += 1

    walk(documents[0], ())
    return result[0] if result else None


def _count_leaves(documents: list[dict[Any, Any]]) -> int:
    total = 0
    stack: list[Any] = list(documents)
    while stack:
        node = stack.pop()
        cls = node.__class__
        if cls is dict:
            for key, value in node.items():
                if key.__class__ is Comment:
                    total += 1
                else:
                    stack.append(value)
        elif cls is list:
            stack.extend(node)
        elif node is not None:
            total += 1
    return total


def _yaml_candidate(session: Session, text: str | None, expected: list[dict[Any, Any]]) -> api.Parsed | None:
    """``text`` parsed as the new plaintext, if it holds exactly ``expected``."""
    if text is None:
        return None
    try:
        parsed = parse_plaintext(text.encode(), "yaml")
    except SopsError:
        return None
    if len(parsed.documents) != len(expected):
        return None
    for document, previous in zip(parsed.documents, session.documents):
        reconcile(document, previous)
    if not all(same_value(a, b) for a, b in zip(parsed.documents, expected)):
        return None
    return parsed


def _changed_documents(session: Session, text_edit: Callable[[str], str | None],
                       expected: list[dict[Any, Any]], output_fmt: str | None) -> bytes:
    """Re-encrypt ``expected``; YAML keeps its layout when ``text_edit`` gives a matching text."""
    fmt = output_fmt or session.fmt
    if session.fmt == "yaml" and fmt == "yaml":
        text = session.plaintext.decode()
        parsed = _yaml_candidate(session, text_edit(text), expected)
        if parsed is not None:
            return reencrypt(session, parsed, output_fmt)
    return reencrypt(session, api.Parsed(session.fmt, expected), output_fmt)


# -- the operations ---------------------------------------------------------------------------


def set_value(session: Session, steps: Path, value: Any, output_fmt: str | None = None) -> tuple[bytes, bool]:
    """``sops set``: the re-encrypted file and whether the value changed."""
    documents = copy.deepcopy(session.documents)
    changed = set_in(documents[0], steps, copy.deepcopy(value))
    result = _changed_documents(session, lambda text: _yaml_text_set(session, text, steps, value), documents,
                                output_fmt)
    return result, changed


def unset_value(session: Session, steps: Path, output_fmt: str | None = None) -> bytes:
    """``sops unset``: the re-encrypted file without ``steps`` (:class:`KeyNotFound` if absent)."""
    documents = copy.deepcopy(session.documents)
    unset_in(documents[0], steps)
    return _changed_documents(session, lambda text: _yaml_text_unset(session, text, steps), documents, output_fmt)


def update_from(session: Session, plaintext: bytes, plaintext_fmt: str | None = None) -> bytes | None:
    """Re-encrypt a new plaintext over the file; None when nothing but ``lastmodified``/``mac`` would change."""
    fmt = plaintext_fmt or session.fmt
    parsed = parse_plaintext(plaintext, fmt)
    if fmt != session.fmt:
        parsed = api.Parsed(session.fmt, parsed.documents)
    if session.fmt != "yaml" and len(parsed.documents) > 1:
        raise InputError(f"only YAML holds several documents, not {session.fmt}")
    result = reencrypt(session, parsed)
    return None if differs_only_in_mac(session.original, result, session.fmt) else result


def edit_result(session: Session, edited: bytes) -> bytes:
    """The file after an edit of :attr:`Session.plaintext` into ``edited``."""
    return reencrypt(session, parse_plaintext(edited, session.fmt))


# -- a new file -------------------------------------------------------------------------------

#: what a new file starts with in the editor (the shape sops 3.11 uses for its example)
EXAMPLES: dict[str, bytes] = {
    "yaml": (b"# A new encrypted file: replace these example values with your own.\n"
             b"hello: Edit me, then save and quit to encrypt.\n"
             b"example_key: example_value\n"
             b"example_array:\n    - example_value1\n    - example_value2\n"
             b"example_number: 1234.56789\n"
             b"example_booleans:\n    - true\n    - false\n"),
    "json": (b'{\n\t"hello": "Edit me, then save and quit to encrypt.",\n\t"example_key": "example_value",\n'
             b'\t"example_array": [\n\t\t"example_value1",\n\t\t"example_value2"\n\t],\n'
             b'\t"example_number": 1234.56789,\n\t"example_booleans": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n'),
    "dotenv": (b"# A new encrypted file: replace these example values with your own.\n"
               b"hello=Edit me, then save and quit to encrypt.\n"
               b"example_key=example_value\n"
               b"example_multiline=foo\\nbar\\nbaz\n"),
    "ini": (b"; A new encrypted file: replace these example values with your own.\n"
            b"[example]\n"
            b"hello       = Edit me, then save and quit to encrypt.\n"
            b"example_key = example_value\n"),
    "binary": b"Edit me, then save and quit to encrypt.",
}


def new_file_result(edited: bytes, fmt: str, options: api.EncryptOptions, data_key: Any,
                    wrapped: tuple[list[list[metadata_mod.Entry]], int]) -> bytes:
    """Encrypt the content of a new file (data key and wrapped keys made before the editor ran)."""
    return api.encrypt_parsed(parse_plaintext(edited, fmt), options, data_key=data_key, wrapped=wrapped)


# -- the editor ----------------------------------------------------------------------------------

#: errors in an edited document: the user can fix them in the editor
DOCUMENT_ERRORS: tuple[type[SopsError], ...] = (InputError, EmptyDocument, AlreadyEncrypted, TreeEncryptError,
                                                  EmitError)


def editor_command(environ: dict[str, str] | None = None) -> list[str]:
    """The editor, as sops picks it: ``$SOPS_EDITOR``, ``$EDITOR``, else vim, nano or vi on PATH."""
    import shlex
    import shutil

    env = os.environ if environ is None else environ
    for name in ("SOPS_EDITOR", "EDITOR"):
        value = env.get(name, "")
        if value:
            try:
                parts = shlex.split(value)
            except ValueError:
                raise NoEditor(f"invalid ${name}: unbalanced quotes") from None
            if not parts:
                raise NoEditor(f"invalid ${name}: no command")
            return parts
    for candidate in ("vim", "nano", "vi"):
        found = shutil.which(candidate, path=env.get("PATH"))
        if found:
            return [found]
    raise NoEditor("no editor found: set SOPS_EDITOR or EDITOR, or install vim, nano or vi")


class _SignalState:
    """What the signal handlers need: the running editor, and a Ctrl+C seen while it ran."""

    def __init__(self) -> None:
        self.editor: Any = None
        self.pending_interrupt = False
        #: set while the temporary plaintext is removed: a signal then waits until it is gone
        self.cleaning = False
        self.deferred: int | None = None
        self.stopping = False


@contextlib.contextmanager
def _signals_cleanup() -> Iterator[_SignalState]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`, so ``finally`` blocks clean up.

    While the editor runs, Ctrl+C belongs to it (vim uses it): like git, the edit
    is only abandoned if the editor itself dies from it.
    """
    state = _SignalState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and state.editor is not None:
            state.pending_interrupt = True
            return
        if state.stopping:
            return  # a second signal must not interrupt the clean-up of the first
        state.stopping = True
        if state.cleaning:
            state.deferred = signum
            return
        raise Interrupted(signum)

    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    if state.deferred is not None:
        raise Interrupted(state.deferred)


def _run_editor(command: list[str], path: str, state: _SignalState) -> None:
    import subprocess

    try:
        process = subprocess.Popen([*command, path])
    except OSError as error:
        raise NoEditor(f"could not run the editor '{command[0]}': {error.strerror or error}") from None
    state.editor = process
    state.pending_interrupt = False
    try:
        status = process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        state.editor = None
    if status < 0 and -status == signal.SIGINT and state.pending_interrupt:
        raise Interrupted(signal.SIGINT)
    if status < 0:
        raise NoEditor(f"the editor was killed by {signal.Signals(-status).name}; nothing was written")
    if status != 0:
        raise NoEditor(f"the editor exited with status {status}; nothing was written")


def _stop(process: Any) -> None:
    import subprocess

    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def run_editor(name: str, initial: bytes, accept: Callable[[bytes], bytes], *,
               editor: list[str] | None = None, interactive: bool | None = None) -> bytes:
    """Let the user edit ``initial`` in a private temporary file named ``name``; return ``accept(edited)``.

    Unchanged content raises :class:`FileNotModified` (exit 200, as sops).  When
    ``accept`` rejects the document the editor opens again on a terminal, and the
    edit is abandoned otherwise.  The temporary file (0600 in a 0700 directory) is
    removed on every way out, SIGINT/SIGTERM/SIGHUP included.
    """
    from .fsio import PrivateDir

    command = editor if editor is not None else editor_command()
    on_tty = _interactive() if interactive is None else interactive
    with _signals_cleanup() as state, PrivateDir("gitcrypt-sops-edit-") as directory:
        try:
            return _edit_loop(str(directory / os.path.basename(name)), initial, accept, command, on_tty, state)
        finally:
            state.cleaning = True  # PrivateDir removes the plaintext next, undisturbed by signals


def _edit_loop(temp: str, initial: bytes, accept: Callable[[bytes], bytes], command: list[str], on_tty: bool,
               state: _SignalState) -> bytes:
    _write_private(temp, initial)
    while True:
        _run_editor(command, temp, state)
        try:
            with open(temp, "rb") as handle:
                edited = handle.read()
        except OSError as error:
            raise InputError(f"cannot read the edited file ({error.strerror})") from None
        if edited == initial:
            raise FileNotModified("the file has not changed; nothing was written")
        try:
            return accept(edited)
        except DOCUMENT_ERRORS as error:
            if not on_tty:
                raise error.__class__(f"the edited file was not saved: {error}") from None
            sys.stderr.write(f"gitcrypt-sops: {' '.join(str(error).split())}\n"
                             "Press Enter to return to the editor, or Ctrl+C to abandon the edit. ")
            sys.stderr.flush()
            if not sys.stdin.readline():
                raise error.__class__(f"the edited file was not saved: {error}") from None


def edit_file(path: str, fmt: str, *, ignore_mac: bool = False,
              decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER,
              new_file_options: Callable[[], api.EncryptOptions] | None = None,
              editor: list[str] | None = None, interactive: bool | None = None) -> None:
    """``sops edit``: edit ``path`` in place; a missing file starts from an example.

    ``new_file_options`` gives the recipients and rule for a new file (creation rules
    and key flags).  The result is written atomically.
    """
    from .fsio import read_input, write_atomic

    command = editor if editor is not None else editor_command()
    if os.path.exists(path):
        session = open_file(read_input(path), fmt, ignore_mac=ignore_mac, decryption_order=decryption_order)
        result = run_editor(path, session.plaintext, lambda edited: edit_result(session, edited),
                            editor=command, interactive=interactive)
    else:
        if new_file_options is None:
            raise SopsError(f"{path}: no such file")
        options = new_file_options()
        if not options.key_groups or not any(options.key_groups):
            from .errors import NoEncryptionKey

            raise NoEncryptionKey("no recipients for the new file: pass --age (or another key flag), "
                                  "or add a creation rule to .sops-policy.yaml")
        from .cipher import DataKey

        data_key = DataKey.generate()
        wrapped = datakey.wrap(data_key, options.key_groups, options.shamir_threshold)
        result = run_editor(path, EXAMPLES.get(fmt, EXAMPLES["binary"]),
                            lambda edited: new_file_result(edited, fmt, options, data_key, wrapped),
                            editor=command, interactive=interactive)
    write_atomic(path, result)


__all__ = [
    "EXAMPLES",
    "Interrupted",
    "KeyNotFound",
    "Session",
    "differs_only_in_mac",
    "edit_file",
    "edit_result",
    "editor_command",
    "keep_list_comments",
    "keep_metadata_text",
    "open_file",
    "parse_path",
    "parse_value",
    "reencrypt",
    "run_editor",
    "same_value",
    "set_in",
    "set_value",
    "unset_in",
    "unset_value",
    "update_from",
]
