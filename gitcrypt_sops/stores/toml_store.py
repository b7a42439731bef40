"""TOML files: read into the sops tree, changed by splicing into the original text.

sops has no TOML store; this one follows the YAML store's approach.  The file is
validated and its values decoded by the standard library's ``tomllib``; a small
scanner then walks the text once to build the tree (tables, arrays of tables,
inline tables, arrays, comments) and records where every value and comment sits.
Encrypting and decrypting rewrite only those spans, so everything else (key
quoting, spacing, blank lines, table order, comments' places) stays byte for byte.

Type mapping (sops type tags): strings -> ``str``; integers -> ``int``; floats
(``inf``, ``nan`` included) -> ``float``; booleans -> ``bool``; offset date-times ->
``time``; local date-times, local dates and local times -> ``str`` holding their exact
TOML text.  Arrays and inline tables are lists and mappings like any other;
arrays of tables are lists, so they do not extend the AAD path.

The quote style of an encrypted value records how to write it back (the ``type:``
tag alone cannot tell a local date from a string, nor ``0o755`` from ``493``).
Forms, by the quotes around ``ENC[...]`` (``q`` a double quote, ``a`` an apostrophe,
``NL`` a line break right after the opening quotes, ``BS-NL`` a backslash and one):

1. ``q``: basic string; decimal integer; float; boolean; offset date-time
2. ``a``: literal string; hex integer (lower case); float with an explicit ``+``;
   offset date-time with a space instead of ``T``
3. ``qqq``: local date, time or date-time; hex integer (upper case)
4. ``aaa``: multi-line literal string; octal integer; ``-nan``
5. ``qqq NL``: multi-line basic string opening with a line break
6. ``aaa NL``: multi-line literal string opening with a line break; binary integer
7. ``qqq BS-NL``: multi-line basic string that does not open with a line break

Comments belong to a table: a comment line (or a trailing comment) goes before the
first entry that the next key/value line creates; a block of comment lines touching
a ``[table]`` header goes before that table in its parent (before the new element
for ``[[array]]``); other comment lines go at the end of the current table.  The
``sops`` metadata is a ``[sops]`` table written at the end of the file.
"""

from __future__ import annotations

import math
import re

from ..codec import INT64_MAX, INT64_MIN, go_time_text, parse_rfc3339
from ..dates import date, datetime, time
from ..errors import AlreadyEncrypted, EmitError, EmptyDocument, InputError
from ..tree import Comment, strip_comments
from ..walk import UNCHANGED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["TomlFile", "dump", "emit_encrypted", "load", "metadata_block", "splice"]

# span kinds
_VALUE = 0
_COMMENT = 1

# value styles of the original text (string styles 1-7 double as the form numbers)
_BASIC, _LITERAL, _ML_BASIC, _ML_LITERAL, _ML_BASIC_NL, _ML_LITERAL_NL, _ML_BASIC_CONT = range(1, 8)
_LOCAL = 10
_DEC, _HEX, _HEX_UPPER, _OCT, _BIN = 11, 12, 13, 14, 15
_FLOAT, _FLOAT_PLUS, _NEG_NAN = 16, 17, 18
_BOOL, _TIME, _TIME_SPACE = 19, 20, 21

#: the form an encrypted value is written in, by the style of the original value
_ENCRYPTED_FORM = {
    _BASIC: 1, _LITERAL: 2, _ML_BASIC: 7, _ML_LITERAL: 4, _ML_BASIC_NL: 5, _ML_LITERAL_NL: 6, _ML_BASIC_CONT: 7,
    _LOCAL: 3, _DEC: 1, _HEX: 2, _HEX_UPPER: 3, _OCT: 4, _BIN: 6,
    _FLOAT: 1, _FLOAT_PLUS: 2, _NEG_NAN: 4, _BOOL: 1, _TIME: 1, _TIME_SPACE: 2,
}

_WS = re.compile(r"[ \t]*")
_WS_NL = re.compile(r"[ \t\r\n]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
    r"|\d{2}:\d{2}:\d{2}(?:\.\d+)?"
    r"|[A-Za-z0-9_+.\-]+"
)
_LOCAL_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?|\d{2}:\d{2}:\d{2}(?:\.\d+)?")
_CONTINUATION = re.compile(r"\\[ \t]*\r?\n")
#: a whole ``ENC[...]`` value; masked to ``ENC[]`` before tomllib reads the text (its string loop
#: goes character by character), and put back from the text by the scanner
_ENC_VALUE = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]*,tag:[A-Za-z0-9+/=]*,type:[a-z]+\]")
_MASK = "ENC[]"
#: the common line: bare key, a basic string without escapes or a one-word value, no comment
_FAST_LINE = re.compile(
    r'([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)[ \t]*=[ \t]*(?:"([^"\\\x00-\x1f\x7f]*(?:\\.[^"\\\x00-\x1f\x7f]*)*)"|([0-9A-Za-z+\-][0-9A-Za-z_+.:\-]*))[ \t]*(?=\r?\n|\Z)'
)
_OPENING_NEWLINE = re.compile(r"\r?\n")
_OPENING_BREAK = re.compile(r"\r?\n|\\[ \t]*\r?\n[ \t\r\n]*")
_BASIC_STRING = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_TOMLLIB_WHERE = re.compile(r"^(.*) \(at (?:line (\d+), column (\d+)|end of document)\)$", re.DOTALL)


class TomlFile:
    """A parsed TOML file: its tree plus what splicing needs."""

    __slots__ = ("bom", "documents", "has_metadata", "meta_ranges", "metadata", "newline", "shape", "spans", "text")

    def __init__(self, text: str, bom: bool, newline: str, document: dict[Any, Any], spans: list[tuple[Any, ...]],
                 shape: list[Any], metadata: Any, has_metadata: bool, meta_ranges: list[tuple[int, int]]) -> None:
        self.text = text
        self.bom = bom
        #: the file's line break, used for the ``[sops]`` block and multi-line strings
        self.newline = newline
        self.documents = [document]
        #: every leaf and comment in walk order: (kind, start, end, style)
        self.spans = spans
        #: the tree's structure in walk order; splicing needs the same structure
        self.shape = shape
        self.metadata = metadata
        self.has_metadata = has_metadata
        #: text ranges of the ``sops`` metadata (removed when decrypting)
        self.meta_ranges = meta_ranges


# -- reading -----------------------------------------------------------------------


def _decode_error(text: str, error: Exception) -> InputError:
    """One line with a position and tomllib's reason, minus any quoted input."""
    message = str(error)
    found = _TOMLLIB_WHERE.match(message)
    reason = found.group(1) if found else message
    if found and found.group(2):
        line, column = int(found.group(2)), int(found.group(3))
    else:
        line = text.count("\n") + 1
        column = len(text) - (text.rfind("\n") + 1) + 1
    if "character" in reason:  # "Illegal character '\x01'": never echo input text
        reason = reason.split(" character", 1)[0] + " character"
    reason = re.sub(r"\(('[^']*',?\s*)+\)", lambda m: ".".join(re.findall(r"'([^']*)'", m.group(0))), reason)
    reason = reason[:1].lower() + reason[1:]
    return InputError(f"invalid TOML at line {line}, column {column}: {reason}")


def _position(text: str, index: int) -> str:
    line_start = text.rfind("\n", 0, index) + 1
    return f"line {text.count(chr(10), 0, index) + 1}, column {index - line_start + 1}"


class _Scanner:
    """Walks valid TOML text (``tomllib`` has accepted it) and builds the tree with spans."""

    def __init__(self, text: str, values: dict[str, Any]) -> None:
        self.text = text
        self.values = values
        self.root: dict[Any, Any] = {}
        #: where the ``sops`` table is built (never walked)
        self.scratch: dict[Any, Any] = {}
        self.table: dict[Any, Any] = self.root
        self.table_values: Any = values
        self.in_sops = False
        self.table_is_root = True
        #: comment lines not placed yet, with their offsets
        self.pending: list[tuple[Comment, int]] = []
        #: pending comments from this index on touch the next line (no blank line between)
        self.block_start = 0
        self.spans: dict[tuple[int, Any], tuple[Any, ...]] = {}
        self.meta_ranges: list[tuple[int, int]] = []
        self.sops_start = -1

    # -- statements --------------------------------------------------------------

    def run(self) -> None:
        text = self.text
        size = len(text)
        pos = 0
        line_has_content = False
        while pos < size:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= size:
                break
            char = text[pos]
            if char == "\n" or char == "\r":
                if not line_has_content:
                    self.block_start = len(self.pending)
                pos = text.index("\n", pos) + 1
                line_has_content = False
                continue
            line_has_content = True
            if char == "#":
                end = self._comment_end(pos)
                if not self.in_sops:
                    self.pending.append((Comment(text[pos + 1 : end]), pos))
                pos = end
            elif char == "[":
                pos = self._header(pos)
            else:
                fast = _FAST_LINE.match(text, pos)
                if fast is not None and not (self.table_is_root and fast.group(1).split(".", 1)[0] == "sops"):
                    self._fast_line(fast)
                    pos = fast.end()
                else:
                    pos = self._key_value(pos)
        self._append_pending(self.table, len(self.pending))
        if self.sops_start >= 0:
            self.meta_ranges.append((self.sops_start, size))

    def _fast_line(self, match: re.Match[str]) -> None:
        """A ``key = value`` line matched by :data:`_FAST_LINE` (bare, possibly dotted key)."""
        keys = match.group(1).split(".")
        node = self.table
        values = self.table_values
        first_new: tuple[Any, Any] | None = None
        for part in keys[:-1]:
            values = values[part]
            if part in node:
                node = node[part]
            else:
                child: dict[Any, Any] = {}
                node[part] = child
                if first_new is None:
                    first_new = (node, part)
                node = child
        key = keys[-1]
        value = values[key]
        if match.group(2) is not None:
            start = match.start(2) - 1
            end = match.end(2) + 1
            if value.__class__ is str and _MASK in value:
                value = _unmask(self.text[start:end], value)
            style = _BASIC
        else:
            start = match.start(3)
            end = match.end(3)
            value, style = self._bare(match.group(3), value, start)
        node[key] = value
        self.spans[(id(node), key)] = (_VALUE, start, end, style)
        if self.pending:
            target, name = first_new if first_new is not None else (node, key)
            self._place(target, name, self.pending)
            self.pending = []
            self.block_start = 0

    def _comment_end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        if end == -1:
            end = len(self.text)
        if end > pos and self.text[end - 1] == "\r":
            end -= 1
        return end

    def _trailing(self, pos: int) -> tuple[int, tuple[Comment, int] | None]:
        """Skip to the end of a statement's line; the trailing comment there, if any."""
        text = self.text
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == "#":
            end = self._comment_end(pos)
            return end, (Comment(text[pos + 1 : end]), pos)
        return pos, None

    @staticmethod
    def _comment_span(comment: Comment, start: int) -> tuple[Any, ...]:
        return (_COMMENT, start, start + 1 + len(comment.text), 0)

    def _place(self, container: Any, key: Any, comments: list[tuple[Comment, int]]) -> None:
        """Put ``comments`` right before ``key``, the entry just added to ``container`` (a dict
        key, or the index of a list's last element)."""
        if not comments:
            return
        spans = self.spans
        ident = id(container)
        if container.__class__ is dict:
            value = container.pop(key)
            for comment, start in comments:
                container[comment] = None
                spans[(ident, comment)] = self._comment_span(comment, start)
            container[key] = value  # its span stays under (ident, key)
            return
        element = container.pop()
        leaf_span = spans.pop((ident, key), None)
        for comment, start in comments:
            spans[(ident, len(container))] = self._comment_span(comment, start)
            container.append(comment)
        if leaf_span is not None:
            spans[(ident, len(container))] = leaf_span
        container.append(element)

    def _append_pending(self, table: dict[Any, Any], count: int) -> None:
        """Move the first ``count`` pending comments to the end of ``table``."""
        for comment, start in self.pending[:count]:
            table[comment] = None
            self.spans[(id(table), comment)] = self._comment_span(comment, start)
        del self.pending[:count]
        self.block_start = max(0, self.block_start - count)

    def _header(self, pos: int) -> int:
        text = self.text
        array = text.startswith("[[", pos)
        start = pos
        pos = _WS.match(text, pos + (2 if array else 1)).end()  # type: ignore[union-attr]
        keys, pos = self._keys(pos)
        pos = _WS.match(text, pos).end() + (2 if array else 1)  # type: ignore[union-attr]
        pos, trailing = self._trailing(pos)
        sops = keys[0] == "sops"
        if sops:
            # comments before the [sops] table stay with the table before it; those inside are dropped
            self._append_pending(self.table, len(self.pending))
            head: list[tuple[Comment, int]] = []
            if self.sops_start < 0:
                self.sops_start = start
        else:
            self._append_pending(self.table, self.block_start)
            head = self.pending
            if trailing is not None:
                head.append(trailing)
            if self.sops_start >= 0:
                self.meta_ranges.append((self.sops_start, start))
                self.sops_start = -1
        self.pending = []
        self.block_start = 0
        self.in_sops = sops
        node: dict[Any, Any] = self.scratch if sops else self.root
        values: Any = self.values
        first_new: tuple[Any, Any] | None = None
        for key in keys[:-1] if array else keys:
            values = values[key]
            if key in node:
                child = node[key]
                if child.__class__ is list:  # the array of tables' element made last so far
                    tables = [item for item in child if item.__class__ is dict]
                    child = tables[-1]
                    values = values[len(tables) - 1]
                node = child
            else:
                child = {}
                node[key] = child
                if first_new is None:
                    first_new = (node, key)
                node = child
        if array:
            key = keys[-1]
            if key not in node:
                node[key] = []
            tables = node[key]
            count = sum(1 for item in tables if item.__class__ is dict)
            element: dict[Any, Any] = {}
            tables.append(element)
            values = values[key][count]
            self._place(tables, len(tables) - 1, head)
            node = element
        elif first_new is not None:
            self._place(first_new[0], first_new[1], head)
        else:  # the table existed already (made implicitly): the comments go inside it
            for comment, comment_start in head:
                node[comment] = None
                self.spans[(id(node), comment)] = self._comment_span(comment, comment_start)
        self.table = node
        self.table_values = values
        self.table_is_root = False
        return pos

    def _keys(self, pos: int) -> tuple[list[str], int]:
        """A dotted key; ``pos`` is after it and any white space."""
        text = self.text
        keys: list[str] = []
        while True:
            char = text[pos]
            if char == '"':
                end = _BASIC_STRING.match(text, pos).end()  # type: ignore[union-attr]
                keys.append(_decode_quoted(text[pos:end]))
                pos = end
            elif char == "'":
                end = text.index("'", pos + 1)
                keys.append(text[pos + 1 : end])
                pos = end + 1
            else:
                match = _BARE_KEY.match(text, pos)
                assert match is not None
                keys.append(match.group())
                pos = match.end()
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] != ".":
                return keys, pos
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]

    def _key_value(self, pos: int) -> int:
        text = self.text
        start = pos
        keys, pos = self._keys(pos)
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]  # past "="
        sops = self.table_is_root and keys[0] == "sops"
        node: dict[Any, Any] = self.scratch if sops else self.table
        values: Any = self.values if sops else self.table_values
        first_new: tuple[Any, Any] | None = None
        for key in keys[:-1]:
            values = values[key]
            if key in node:
                node = node[key]
            else:
                child: dict[Any, Any] = {}
                node[key] = child
                if first_new is None:
                    first_new = (node, key)
                node = child
        key = keys[-1]
        if first_new is None:
            first_new = (node, key)
        pos = self._value(pos, node, key, values[key])
        pos, trailing = self._trailing(pos)
        if sops:
            self._append_pending(self.table, len(self.pending))
            end = text.find("\n", pos)
            self.meta_ranges.append((_line_start(text, start), len(text) if end == -1 else end + 1))
        else:
            comments = self.pending
            if trailing is not None:
                comments.append(trailing)
            self._place(first_new[0], first_new[1], comments)
        self.pending = []
        self.block_start = 0
        return pos

    # -- values -------------------------------------------------------------------

    def _value(self, pos: int, container: Any, key: Any, value: Any) -> int:
        """Scan the value at ``pos``; store it in ``container`` under ``key`` (None: append)."""
        text = self.text
        char = text[pos]
        if char == "[":
            items: list[Any] = []
            _store(container, key, items)
            return self._array(pos + 1, items, value)
        if char == "{":
            table: dict[Any, Any] = {}
            _store(container, key, table)
            return self._inline_table(pos + 1, table, value)
        if char == '"':
            if text.startswith('"""', pos):
                end = _ml_end(text, pos + 3, '"')
                if text.startswith("\n", pos + 3) or text.startswith("\r\n", pos + 3):
                    style = _ML_BASIC_NL
                elif _CONTINUATION.match(text, pos + 3):
                    style = _ML_BASIC_CONT
                else:
                    style = _ML_BASIC
            else:
                end = _BASIC_STRING.match(text, pos).end()  # type: ignore[union-attr]
                style = _BASIC
        elif char == "'":
            if text.startswith("'''", pos):
                end = _ml_end(text, pos + 3, "'")
                newline = text.startswith("\n", pos + 3) or text.startswith("\r\n", pos + 3)
                style = _ML_LITERAL_NL if newline else _ML_LITERAL
            else:
                end = text.index("'", pos + 1) + 1
                style = _LITERAL
        else:
            match = _BARE_VALUE.match(text, pos)
            assert match is not None
            end = match.end()
            value, style = self._bare(text[pos:end], value, pos)
        if style <= 7 and _MASK in value:
            value = _unmask(text[pos:end], value)
        span = (_VALUE, pos, end, style)
        if key is None:
            self.spans[(id(container), len(container))] = span
            container.append(value)
        else:
            container[key] = value
            self.spans[(id(container), key)] = span
        return end

    def _bare(self, token: str, value: Any, pos: int) -> tuple[Any, int]:
        cls = value.__class__
        if cls is bool:
            return value, _BOOL
        if cls is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise InputError(f"invalid TOML at {_position(self.text, pos)}: integer out of the 64-bit range")
            prefix = token[:2]
            if prefix == "0x":
                digits = token[2:]
                return value, _HEX_UPPER if (digits != digits.lower() and digits == digits.upper()) else _HEX
            if prefix == "0o":
                return value, _OCT
            if prefix == "0b":
                return value, _BIN
            return value, _DEC
        if cls is float:
            if token == "-nan":
                return value, _NEG_NAN
            return value, _FLOAT_PLUS if token[0] == "+" else _FLOAT
        if cls is datetime and value.tzinfo is not None:
            # exact to the nanosecond (tomllib stops at microseconds)
            parsed = parse_rfc3339(token[:10] + "T" + token[11:])
            return parsed, _TIME_SPACE if token[10] == " " else _TIME
        # local date-time, date or time: its own text, as a string
        return token, _LOCAL

    def _array(self, pos: int, items: list[Any], values: list[Any]) -> int:
        text = self.text
        index = 0
        while True:
            pos = self._array_gap(pos, items)
            if text[pos] == "]":
                return pos + 1
            pos = self._value(pos, items, None, values[index])
            index += 1
            pos = self._array_gap(pos, items)
            if text[pos] == ",":
                pos += 1
                continue
            return self._array_gap(pos, items) + 1  # the "]"

    def _array_gap(self, pos: int, items: list[Any]) -> int:
        """White space, line breaks and comments inside an array (comments become elements)."""
        text = self.text
        while True:
            pos = _WS_NL.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] != "#":
                return pos
            end = self._comment_end(pos)
            comment = Comment(text[pos + 1 : end])
            self.spans[(id(items), len(items))] = self._comment_span(comment, pos)
            items.append(comment)
            pos = end

    def _inline_table(self, pos: int, table: dict[Any, Any], values: dict[str, Any]) -> int:
        text = self.text
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos] == "}":
            return pos + 1
        while True:
            keys, pos = self._keys(pos)
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
            node = table
            node_values: Any = values
            for key in keys[:-1]:
                node_values = node_values[key]
                if key not in node:
                    node[key] = {}
                node = node[key]
            pos = self._value(pos, node, keys[-1], node_values[keys[-1]])
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] == "}":
                return pos + 1
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]  # past ","


def _store(container: Any, key: Any, value: Any) -> None:
    if key is None:
        container.append(value)
    else:
        container[key] = value


def _ml_end(text: str, pos: int, quote: str) -> int:
    """The end of a multi-line string whose content starts at ``pos``."""
    delimiter = quote * 3
    while True:
        found = text.index(delimiter, pos)
        if quote == '"':
            backslashes = 0
            while text[found - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2:
                pos = found + 1
                continue
        end = found + 3
        extra = 0
        while extra < 2 and text[end : end + 1] == quote:  # up to two quotes end the content
            end += 1
            extra += 1
        return end


def _unmask(token: str, masked: str) -> str:
    """The real value of a string token whose ``ENC[...]`` parts were masked for tomllib."""
    if token[:3] in ('"""', "'''"):
        body = token[3:-3]
        skip = _OPENING_BREAK.match(body) if token[0] == '"' else _OPENING_NEWLINE.match(body)
        if skip is not None:
            body = body[skip.end() :]
        if _ENC_VALUE.fullmatch(body):
            return body  # one of this store's own multi-line forms
    elif "\\" not in token:
        return token[1:-1]  # a basic string without escapes, or a literal string
    import tomllib

    value: str = tomllib.loads("v = " + token)["v"]
    if _ENC_VALUE.sub(_MASK, value) != masked:  # pragma: no cover - the mask is applied to the same text
        raise ValueError("masked value mismatch")
    return value


def _same_values(node: Any, reference: Any) -> bool:
    """The scanned tree against tomllib's (ENC values masked, local date/times as text)."""
    cls = node.__class__
    if cls is dict:
        if reference.__class__ is not dict:
            return False
        keys = [key for key in node if key.__class__ is not Comment]
        return keys == list(reference) and all(_same_values(node[key], reference[key]) for key in keys)
    if cls is list:
        items = [item for item in node if item.__class__ is not Comment]
        return (reference.__class__ is list and len(items) == len(reference)
                and all(_same_values(a, b) for a, b in zip(items, reference, strict=True)))
    if cls is str:
        if reference.__class__ is str:
            return node == reference or _ENC_VALUE.sub(_MASK, node) == reference
        return reference.__class__ in (date, time) or (reference.__class__ is datetime and reference.tzinfo is None)
    if cls is float and math.isnan(node):
        return reference.__class__ is float and math.isnan(reference)
    return bool(node == reference) and (cls is reference.__class__ or isinstance(node, datetime))


def _decode_quoted(token: str) -> str:
    import tomllib

    value: str = tomllib.loads("k = " + token)["k"]
    return value


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _walk_spans(node: Any, spans: dict[tuple[int, Any], tuple[Any, ...]], out: list[tuple[Any, ...]],
                shape: list[Any]) -> None:
    """Spans in the walker's order (depth first, comments included), and the tree's shape."""
    if node.__class__ is dict:
        shape.append("{")
        ident = id(node)
        for key, value in node.items():
            if key.__class__ is Comment:
                shape.append("#")
                out.append(spans[(ident, key)])
                continue
            shape.append(key)
            if value.__class__ in (dict, list):
                _walk_spans(value, spans, out, shape)
            else:
                shape.append(".")
                out.append(spans[(ident, key)])
        shape.append("}")
        return
    shape.append("[")
    ident = id(node)
    for index, value in enumerate(node):
        if value.__class__ in (dict, list):
            _walk_spans(value, spans, out, shape)
            continue
        shape.append("#" if value.__class__ is Comment else ".")
        out.append(spans[(ident, index)])
    shape.append("]")


def shape_of(node: Any, shape: list[Any]) -> list[Any]:
    """The structure :func:`_walk_spans` records, for a tree without spans."""
    if node.__class__ is dict:
        shape.append("{")
        for key, value in node.items():
            if key.__class__ is Comment:
                shape.append("#")
                continue
            shape.append(key)
            if value.__class__ in (dict, list):
                shape_of(value, shape)
            else:
                shape.append(".")
        shape.append("}")
    elif node.__class__ is list:
        shape.append("[")
        for value in node:
            if value.__class__ in (dict, list):
                shape_of(value, shape)
            else:
                shape.append("#" if value.__class__ is Comment else ".")
        shape.append("]")
    return shape


def load(data: bytes, *, want_metadata: bool) -> TomlFile:
    """Parse a TOML file.  ``want_metadata`` False refuses a top-level ``sops`` table."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(f"invalid UTF-8 in TOML at line {line}") from None
    if not text:
        raise EmptyDocument("file cannot be completely empty")
    bom = text.startswith("\ufeff")
    if bom:
        text = text[1:]
    masked = "ENC[AES256_GCM," in text
    try:
        return _load(text, bom, want_metadata, masked)
    except KeyError:
        if not masked:  # pragma: no cover - tomllib accepted the text
            raise InputError("TOML layout not understood; please report this file's structure") from None
        return _load(text, bom, want_metadata, False)  # an ENC[...] inside a quoted key: no masking


def _load(text: str, bom: bool, want_metadata: bool, mask: bool) -> TomlFile:
    import tomllib

    try:
        values = tomllib.loads(_ENC_VALUE.sub(_MASK, text) if mask else text)
    except tomllib.TOMLDecodeError as error:
        raise _decode_error(text, error) from None
    except RecursionError:
        raise InputError("TOML nesting is too deep") from None
    has_metadata = "sops" in values
    if has_metadata and not want_metadata:
        raise AlreadyEncrypted("the file is already encrypted: it has a top-level [sops] table")
    scanner = _Scanner(text, values)
    try:
        scanner.run()
    except RecursionError:
        raise InputError("TOML nesting is too deep") from None
    except (IndexError, ValueError, AssertionError):  # pragma: no cover - tomllib accepted the text
        raise InputError("TOML layout not understood; please report this file's structure") from None
    reference = {k: v for k, v in values.items() if k != "sops"}
    if not _same_values(scanner.root, reference):  # pragma: no cover - a scanner bug, never silently
        raise InputError("TOML layout not understood; please report this file's structure")
    spans: list[tuple[Any, ...]] = []
    shape: list[Any] = []
    _walk_spans(scanner.root, scanner.spans, spans, shape)
    first_break = text.find("\n")
    newline = "\r\n" if first_break > 0 and text[first_break - 1] == "\r" else "\n"
    metadata = strip_comments(scanner.scratch["sops"]) if has_metadata else None
    return TomlFile(text, bom, newline, scanner.root, spans, shape, metadata, has_metadata, scanner.meta_ranges)


# -- rendering values ---------------------------------------------------------------

_BASIC_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_BASIC_SPECIAL = re.compile(r'[\x00-\x1f"\\\x7f]')
_ML_SPECIAL = re.compile(r"[\x00-\x08\x0b-\x1f\\\x7f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BUT_TAB_NL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(char: str) -> str:
    return _BASIC_ESCAPES.get(char) or f"\\u{ord(char):04X}"


def basic_string(value: str) -> str:
    """A one-line basic string: ``\\``, ``"`` and control characters escaped (``\\t`` too)."""
    return '"' + _BASIC_SPECIAL.sub(lambda m: _escape(m.group()), value) + '"'


def _ml_basic(value: str, newline: str, leading: bool) -> str:
    body = _ML_SPECIAL.sub(lambda m: _escape(m.group()), value)
    # no run of three quotes inside; one or two may end the body: TOML allows them
    # right before the closing delimiter (escaping a final quote as well broke the value """)
    body = body.replace('"""', '""\\"')
    body = body.replace("\n", newline)
    if leading or value.startswith("\n"):
        return '"""' + newline + body + '"""'
    return '"""' + body + '"""'


def _ml_literal_ok(value: str) -> bool:
    return "'''" not in value and not value.endswith("'") and not _CONTROL_BUT_TAB_NL.search(value)


def _ml_literal(value: str, newline: str, leading: bool) -> str:
    body = value.replace("\n", newline)
    if leading or value.startswith("\n"):
        return "'''" + newline + body + "'''"
    return "'''" + body + "'''"


def _is_local(value: str) -> bool:
    if not _LOCAL_TEXT.fullmatch(value):
        return False
    import tomllib

    try:
        parsed = tomllib.loads("v = " + value)["v"]
    except tomllib.TOMLDecodeError:
        return False
    return parsed.__class__ in (date, time) or (parsed.__class__ is datetime and parsed.tzinfo is None)


def float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _check_text(value: str) -> None:
    if _SURROGATE.search(value):
        raise _Unwritable("a string that is not valid UTF-8")


def render_value(value: Any, form: int, newline: str) -> str:
    """The TOML text of a decrypted leaf written back in ``form`` (see the module docstring)."""
    cls = value.__class__
    if cls is str:
        _check_text(value)
        text: str = value
        if form == 2 and "'" not in text and not _CONTROL_BUT_TAB.search(text):
            return "'" + text + "'"
        if form == 3 and _is_local(text):
            return text
        if form in (4, 6) and _ml_literal_ok(value):
            return _ml_literal(value, newline, leading=form == 6)
        if form in (4, 5, 6, 7):
            return _ml_basic(value, newline, leading=form in (5, 6))
        return basic_string(value)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        if value >= 0:
            if form == 2:
                return f"0x{value:x}"
            if form == 3:
                return f"0x{value:X}"
            if form == 4:
                return f"0o{value:o}"
            if form == 6:
                return f"0b{value:b}"
        return str(value)
    if cls is float:
        if math.isnan(value) and form == 4:
            return "-nan"
        text = float_text(value)
        if form == 2 and text[0] != "-":
            return "+" + text
        return text
    if isinstance(value, datetime):
        text = go_time_text(value)
        return text.replace("T", " ", 1) if form == 2 else text
    return _scalar(value)


def _encrypted_text(enc: str, form: int, newline: str) -> str:
    if form == 2:
        return "'" + enc + "'"
    if form == 3:
        return '"""' + enc + '"""'
    if form == 4:
        return "'''" + enc + "'''"
    if form == 5:
        return '"""' + newline + enc + '"""'
    if form == 6:
        return "'''" + newline + enc + "'''"
    if form == 7:
        return '"""\\' + newline + enc + '"""'
    return '"' + enc + '"'


# -- splicing -----------------------------------------------------------------------


def splice(toml_file: TomlFile, outputs: list[Any], documents: list[dict[Any, Any]], *, encrypting: bool,
           metadata: dict[str, Any] | None) -> bytes | None:
    """The file's text with every changed value and comment replaced; None if the tree changed shape.

    Encrypting appends the ``[sops]`` table built from ``metadata``; decrypting
    removes the existing one.
    """
    if len(outputs) != len(toml_file.spans) or shape_of(documents[0], []) != toml_file.shape:
        return None
    text = toml_file.text
    newline = toml_file.newline
    edits: list[tuple[int, int, str]] = []
    for (kind, start, end, style), out in zip(toml_file.spans, outputs, strict=True):
        if out is UNCHANGED:
            continue
        if kind == _COMMENT:
            edits.append((start, end, "#" + out.text))
        elif encrypting:
            edits.append((start, end, _encrypted_text(out, _ENCRYPTED_FORM.get(style, 1), newline)))
        else:
            form = style if style <= 7 else 1
            try:
                edits.append((start, end, render_value(out, form, newline)))
            except _Unwritable as error:
                raise EmitError(f"cannot write {error.what} as TOML") from None
    if metadata is not None:
        edits.append((len(text), len(text), newline + metadata_block(metadata, newline)))
    else:
        for start, end in toml_file.meta_ranges:
            if end == len(text) and text[:start].endswith(newline):
                start -= len(newline)  # the line break written before the [sops] table
            edits.append((start, end, ""))
    from . import apply_edits

    return (("\ufeff" if toml_file.bom else "") + apply_edits(text, edits)).encode("utf-8")


def emit_encrypted(documents: list[dict[Any, Any]], metadata: dict[str, Any], toml_file: TomlFile | None,
                   outputs: list[Any] | None) -> bytes:
    """An encrypted document: spliced into ``toml_file`` when given, else written anew."""
    if toml_file is not None and outputs is not None:
        spliced = splice(toml_file, outputs, documents, encrypting=True, metadata=metadata)
        if spliced is not None:
            return spliced
    body = dumps(documents)
    return (body + ("\n" if body else "") + metadata_block(metadata, "\n")).encode("utf-8")


def metadata_block(metadata: dict[str, Any], newline: str = "\n") -> str:
    """The ``[sops]`` table: plain fields first (sops's order), then ``[[sops.age]]`` & co."""
    plain = {k: v for k, v in metadata.items() if not _is_section(v)}
    tables = {k: v for k, v in metadata.items() if _is_section(v)}
    emitter = _Emitter(newline)
    emitter.header(["sops"], array=False, head=[])
    emitter.table(["sops"], {**plain, **tables})
    return emitter.text()


# -- writing a whole tree -----------------------------------------------------------


class _Unwritable(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _is_table_array(value: Any) -> bool:
    if value.__class__ is not list:
        return False
    tables = [item for item in value if item.__class__ is not Comment]
    return bool(tables) and all(item.__class__ is dict for item in tables)


def _is_section(value: Any) -> bool:
    return value.__class__ is dict or _is_table_array(value)


_BARE_KEY_FULL = re.compile(r"[A-Za-z0-9_-]+")


def render_key(key: str) -> str:
    return key if _BARE_KEY_FULL.fullmatch(key) else basic_string(key)


def _scalar(value: Any, newline: str = "\n") -> str:
    cls = value.__class__
    if cls is str:
        _check_text(value)
        return _ml_basic(value, newline, leading=True) if "\n" in value else basic_string(value)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Unwritable("an integer outside the 64-bit range")
        return str(value)
    if cls is float:
        return float_text(value)
    if isinstance(value, datetime):
        return go_time_text(value)
    if value is None:
        raise _Unwritable("null (TOML has no null)")
    if cls is bytes:
        return _scalar(value.decode("utf-8", "surrogateescape"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _scalar(str.__str__(value))
    if isinstance(value, int):
        return _scalar(int(value))
    if isinstance(value, float):
        return float_text(float(value))
    raise _Unwritable(f"a value of type {type(value).__name__}")


class _Emitter:
    """Writes a tree as TOML keeping its order: values before sub-tables, or inline."""

    def __init__(self, newline: str) -> None:
        self.newline = newline
        self.lines: list[str] = []
        self.path: list[str | int] = []

    def text(self) -> str:
        return "".join(line + self.newline for line in self.lines)

    def comments(self, comments: list[Comment]) -> None:
        for comment in comments:
            for line in comment.text.split("\n"):
                self.lines.append("#" + line.rstrip("\r"))

    def header(self, path: list[str], *, array: bool, head: list[Comment]) -> None:
        if self.lines:
            self.lines.append("")
        self.comments(head)
        name = ".".join(render_key(key) for key in path)
        self.lines.append(f"[[{name}]]" if array else f"[{name}]")

    def table(self, path: list[str], table: dict[Any, Any]) -> None:
        items = list(table.items())
        last_inline = -1
        for index, (key, value) in enumerate(items):
            if key.__class__ is not Comment and not _is_section(value):
                last_inline = index
        head: list[Comment] = []
        for index, (key, value) in enumerate(items):
            if key.__class__ is Comment:
                if index < last_inline:
                    self.comments([key])
                else:
                    head.append(key)
                continue
            self.path.append(key)
            if index <= last_inline:
                if value.__class__ is dict and value:
                    self.dotted([render_key(key)], value)
                else:
                    self.lines.append(f"{render_key(key)} = {self.inline(value)}")
            elif value.__class__ is dict:
                self.header(path + [key], array=False, head=head)
                head = []
                self.table(path + [key], value)
            else:
                for element in value:
                    if element.__class__ is Comment:
                        head.append(element)
                        continue
                    self.header(path + [key], array=True, head=head)
                    head = []
                    self.table(path + [key], element)
            self.path.pop()
        if head:  # comments after the last sub-table: they end up inside it (deeper, never shallower)
            self.comments(head)

    def dotted(self, prefix: list[str], table: dict[Any, Any]) -> None:
        """A sub-table that comes before plain values, written as ``a.b = ...`` lines (order kept)."""
        for key, value in table.items():
            if key.__class__ is Comment:
                self.comments([key])
                continue
            self.path.append(key)
            name = prefix + [render_key(key)]
            if value.__class__ is dict and value:
                self.dotted(name, value)
            else:
                self.lines.append(f"{'.'.join(name)} = {self.inline(value)}")
            self.path.pop()

    def inline(self, value: Any) -> str:
        cls = value.__class__
        if cls is dict:
            parts = []
            for key, item in value.items():
                if key.__class__ is Comment:
                    continue  # inline tables hold no comments
                self.path.append(key)
                parts.append(f"{render_key(key)} = {self.inline(item)}")
                self.path.pop()
            return "{" + ", ".join(parts) + "}" if parts else "{}"
        if cls is list:
            has_comments = any(item.__class__ is Comment for item in value)
            rendered: list[str] = []
            for index, item in enumerate(value):
                if item.__class__ is Comment:
                    rendered.append("#" + item.text.replace("\n", " "))
                    continue
                self.path.append(index)
                rendered.append(self.inline(item) + ",")
                self.path.pop()
            if not rendered:
                return "[]"
            if has_comments:
                inner = self.newline.join("  " + line for line in rendered)
                return "[" + self.newline + inner + self.newline + "]"
            return "[" + " ".join(rendered)[:-1] + "]"
        return _scalar(value, self.newline)


def _path_text(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if p.__class__ is int else '["' + str(p) + '"]' for p in path)


def dumps(documents: list[dict[Any, Any]]) -> str:
    """A tree as TOML text (``\\n`` line breaks); :class:`EmitError` for what TOML cannot hold."""
    if len(documents) != 1:
        raise EmitError("TOML holds a single document; this input has several")
    emitter = _Emitter("\n")
    try:
        emitter.table([], documents[0])
    except _Unwritable as error:
        where = _path_text(emitter.path)
        raise EmitError(f"cannot write {error.what} as TOML" + (f" at {where}" if where else "")) from None
    except RecursionError:
        raise EmitError("cannot write TOML: the document is nested too deeply") from None
    return emitter.text()


def dump(documents: list[dict[Any, Any]]) -> bytes:
    """Plaintext documents as a TOML file."""
    return dumps(documents).encode("utf-8")
