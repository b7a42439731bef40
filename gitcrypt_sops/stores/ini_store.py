"""The INI store: INI text <-> a tree of sections, byte-compatible with sops 3.11 (go-ini v1.67).

Owns reading and writing INI the way sops does through ``gopkg.in/ini.v1`` with its
default options.  The tree is ``{section: {key: str value, ...}, ...}``; keys before
any header belong to ``DEFAULT``, which is always the first section (empty when the
file has no such keys, as in sops).  Comments live inside the section's mapping: the
section's comment first, each key's comment right *after* that key, so that their
AAD is ``section:``.

Reading (go-ini defaults): ``=`` or ``:`` separates key and value; keys and values are
trimmed; a ``#`` or ``;`` anywhere in an unquoted value starts an inline comment;
surrounding double or single quotes are removed; three double quotes or a backquote
quote a value (three double quotes may span lines); a trailing ``\\`` continues a
value on the next line; a key ``-`` gets an automatic name ``#1``, ``#2``… (which sops
then writes as a comment line: a sops bug we reproduce); comment lines before a header
or key (plus an inline comment) become one comment, lines joined with newlines, the
leading ``;``/``#`` and spaces of the first line removed.  A repeated key keeps its
first position and takes the last value and comment.

Writing (go-ini ``WriteTo``): ``key = value`` with the ``=`` aligned on the longest
key of the section (byte lengths), a blank line between sections, comments as
``; text`` lines before their section or key, and ``DEFAULT`` without a header
when it comes first (omitted when empty).

Deliberate difference: sops keeps a repeated ``[section]`` as a second section with
the same name; a mapping cannot, so a repeated section is refused unless its earlier
occurrence is empty (then the section simply moves to the later place, which gives
the same values, paths and MAC).  Consequence: a file whose only ``[DEFAULT]`` header
comes first is written back without that header.
"""

from __future__ import annotations

import re

from ..errors import EmitError, InputError
from ..tree import Comment
from .flatten import go_value_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_SECTION", "dump", "load"]

DEFAULT_SECTION = "DEFAULT"

#: Go's unicode.IsSpace (strings.TrimSpace); Python's str.strip() also strips \x1c-\x1f
_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_DELIMITERS = "=:"


def _trim(text: str) -> str:
    return text.strip(_SPACE)


_FINDERS = {chars: re.compile("[" + re.escape(chars) + "]").search for chars in ("#;", "=:")}


def _first_of(text: str, chars: str, start: int = 0) -> int:
    """Index of the first of ``chars`` (``"#;"`` or ``"=:"``) in ``text`` at or after ``start``, or -1."""
    found = _FINDERS[chars](text, start)
    return found.start() if found else -1


class _Section:
    __slots__ = ("comment", "keys", "start")

    def __init__(self, comment: str, start: int) -> None:
        self.comment = comment
        self.keys: dict[str, list[str]] = {}  # name -> [value, comment]
        self.start = start

    def mapping(self) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        if self.comment:
            out[Comment(_strip_comment_char(self.comment))] = None
        for name, (value, comment) in self.keys.items():
            out[name] = value
            if comment:
                out[Comment(_strip_comment_char(comment))] = None
        return out


def _strip_comment_char(comment: str) -> str:
    """matches sops: the leading ``;``/``#`` and every following ``;``/``#``/space goes."""
    if comment.startswith(";"):
        return comment.lstrip("; ")
    if comment.startswith("#"):
        return comment.lstrip("# ")
    return comment


class _Lines:
    """go-ini's line reader: each line keeps its ``\\n``; the last one sets ``eof``."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.index = 0
        self.eof = False

    def next(self) -> str:
        if self.index >= len(self.lines):
            self.eof = True
            return ""
        line = self.lines[self.index]
        self.index += 1
        if self.index == len(self.lines):
            self.eof = True
            return line
        return line + "\n"


class _Parser:
    def __init__(self, text: str) -> None:
        self.reader = _Lines(text)
        self.comment: list[str] = []
        self.sections: list[tuple[str, _Section]] = [(DEFAULT_SECTION, _Section("", 0))]
        self.auto = 1

    def error(self, number: int, what: str) -> InputError:
        return InputError(f"invalid INI input: line {number}: {what}")

    def parse(self) -> None:
        reader = self.reader
        while not reader.eof:
            raw = reader.next()
            number = reader.index
            line = raw.lstrip(_SPACE)
            if not line:
                continue
            first = line[0]
            if first in "#;":
                self.comment.append(line)
                continue
            if first == "[":
                self._header(line, number)
                continue
            self._key(line, number)

    def _header(self, line: str, number: int) -> None:
        close = line.rfind("]")
        if close == -1:
            raise self.error(number, "unclosed section header")
        name = line[1:close]
        if not name:
            raise self.error(number, "empty section name")
        inline = _first_of(line, "#;", close + 1)
        if inline >= 0:
            self.comment.append(line[inline:])
        section = _Section(_trim("".join(self.comment)), number)
        self.comment = []
        self.auto = 1
        self.sections.append((name, section))

    def _key(self, line: str, number: int) -> None:
        name, offset = self._key_name(line, number)
        if name == "-":
            name = f"#{self.auto}"  # matches sops (go-ini auto-increment keys)
            self.auto += 1
        value = self._value(line[offset:], number)
        if not name:
            raise self.error(number, "empty key name")
        section = self.sections[-1][1]
        section.keys[name] = [value, _trim("".join(self.comment))]
        self.comment = []

    def _key_name(self, line: str, number: int) -> tuple[str, int]:
        quote = ""
        if line[0] == '"':
            quote = '"""' if len(line) > 6 and line.startswith('"""') else '"'
        elif line[0] == "`":
            quote = "`"
        if quote:
            start = len(quote)
            close = line.find(quote, start)
            if close == -1:
                raise self.error(number, "missing closing key quote")
            delimiter = _first_of(line, _DELIMITERS, close + start)
            if delimiter == -1:
                raise self.error(number, "no '=' or ':' after the key")
            return _trim(line[start:close]), delimiter + 1
        delimiter = _first_of(line, _DELIMITERS)
        if delimiter == -1:
            raise self.error(number, "no '=' or ':' after the key")
        if delimiter == 0:
            raise self.error(number, "empty key name")
        return _trim(line[:delimiter]), delimiter + 1

    def _value(self, text: str, number: int) -> str:
        line = text.lstrip(_SPACE)
        if not line:
            return ""
        quote = ""
        if len(line) > 3 and line.startswith('"""'):
            quote = '"""'
        elif line[0] == "`":
            quote = "`"
        if quote:
            start = len(quote)
            close = line.rfind(quote, start)
            if close == -1:
                return self._multiline(line[start:], quote, number)
            return line[start:close]  # matches sops: text after the closing quote is ignored
        line = _trim(line)
        if line[-1] == "\\":
            return self._continued(line[:-1])
        inline = _first_of(line, "#;")
        if inline >= 0:
            self.comment.append(line[inline:])
            line = _trim(line[:inline])
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'" and line.find(line[0], 1) == len(line) - 1:
            line = line[1:-1]
        return line

    def _multiline(self, value: str, quote: str, number: int) -> str:
        reader = self.reader
        parts = [value]
        while True:
            following = reader.next()
            close = following.rfind(quote)
            if close > -1:
                parts.append(following[:close])
                inline = _first_of(following, "#;", close)
                if inline >= 0:
                    self.comment.append(_trim(following[inline:]))
                return "".join(parts)
            parts.append(following)
            if reader.eof:
                raise self.error(number, f"missing closing {quote} of a multi-line value")

    def _continued(self, value: str) -> str:
        reader = self.reader
        while True:
            following = _trim(reader.next())
            if not following:
                return value
            value += following
            if value[-1] != "\\":
                return value
            value = value[:-1]

    def tree(self) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        where: dict[str, int] = {}
        for name, section in self.sections:
            if name in out:
                earlier = out[name]
                if earlier:
                    raise InputError(
                        f"invalid INI input: line {section.start}: section repeats an earlier section "
                        f"(line {where[name]}); sops would keep both, this tool needs unique sections"
                    )
                del out[name]  # an empty earlier occurrence carries nothing: move the section here
            out[name] = section.mapping()
            where[name] = section.start
        return out


def load(data: bytes) -> dict[Any, Any]:
    """Parse INI bytes into ``{section: {key: value}}`` with comments, as sops reads them."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    elif data[:2] in (b"\xfe\xff", b"\xff\xfe"):
        data = data[2:]  # matches sops: go-ini drops a UTF-16 byte order mark and reads on
    parser = _Parser(data.decode("utf-8", "surrogateescape"))
    parser.parse()
    return parser.tree()


# -- writing -------------------------------------------------------------------------


def _comment_lines(comment: str, trim: bool) -> list[str]:
    lines = []
    for line in comment.split("\n"):
        if line[:1] in ("#", ";"):
            lines.append(line[0] + " " + _trim(line[1:]) + "\n")
        else:
            lines.append("; " + (_trim(line) if trim else line) + "\n")
    return lines


def _quote_key(name: str) -> str:
    if '"' in name or "=" in name or ":" in name:
        return "`" + name + "`"
    if "`" in name:
        return '"""' + name + '"""'
    return name


def _quote_value(value: str) -> str:
    if "\n" in value or "`" in value:
        return '"""' + value + '"""'
    if "#" in value or ";" in value:
        return "`" + value + "`"
    if _trim(value) != value:
        return '"' + value + '"'
    return value


def dump(tree: dict[Any, Any]) -> bytes:
    """Write the tree as sops does (go-ini ``WriteTo`` with sops's section handling).

    Top-level comments are dropped; every other top-level value must be a mapping
    (:class:`EmitError` otherwise, as in sops).  Non-string values are written with
    Go's text forms.  Only the last comment after a key survives, as in sops.
    """
    sections: list[tuple[str, str, dict[str, list[str]]]] = []
    for name, body in tree.items():
        if name.__class__ is Comment:
            continue
        if not isinstance(body, dict):
            raise EmitError("INI output needs every top-level value to be a section (a mapping)")
        if not name:
            raise EmitError("INI output cannot have a section with an empty name")
        sections.append((name, *_section_entries(body)))
    out: list[str] = []
    last = len(sections) - 1
    for index, (name, comment, keys) in enumerate(sections):
        if comment:
            out.extend(_comment_lines(comment, trim=False))
        if index > 0 or name.upper() != DEFAULT_SECTION:
            out.append(f"[{name}]\n")
        elif not keys:
            continue
        quoted = [(_quote_key(key), value, key_comment) for key, (value, key_comment) in keys.items()]
        width = max((len(key.encode("utf-8", "surrogateescape")) for key, _, _ in quoted), default=0)
        for key, value, key_comment in quoted:
            if key_comment:
                out.extend(_comment_lines(key_comment, trim=True))
            padding = " " * (width - len(key.encode("utf-8", "surrogateescape")))
            out.append(f"{key}{padding} = {_quote_value(value)}\n")
        if index != last:
            out.append("\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def _section_entries(body: dict[Any, Any]) -> tuple[str, dict[str, list[str]]]:
    """(section comment, {key: [value text, comment]}) the way sops hands a section to go-ini."""
    comment = ""
    keys: dict[str, list[str]] = {}
    last: list[str] | None = None
    for position, (key, value) in enumerate(body.items()):
        if key.__class__ is Comment:
            if position == 0:
                comment = key.text
            elif last is not None:
                last[1] = key.text  # matches sops: a later comment replaces an earlier one
            continue
        if not key:
            raise EmitError("INI output cannot have an empty key name")
        last = [value if value.__class__ is str else go_value_string(value), ""]
        keys[str(key)] = last
    return comment, keys
