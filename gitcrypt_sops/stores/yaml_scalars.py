"""YAML scalars as sops (go-yaml v3) resolves them, and how we write them back.

``resolve_plain`` types an unquoted scalar the way yaml.v3 does (YAML 1.2 core
schema with yaml.v3's extensions: ``0o``/``0b`` prefixes, underscores, timestamps);
``render_scalar`` writes a typed value as YAML text that loads back to the same
typed value.
"""

from __future__ import annotations

import math
import re

from ..codec import GoTime, go_time_text
from ..dates import datetime, timedelta, timezone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
}
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
# matches yaml.v3: the layouts "2006-1-2T15:4:5.999999999Z07:00" (also with "t"),
# "2006-1-2 15:4:5.999999999" (no zone) and "2006-1-2"
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|[-+]\d{2}:\d{2}))"
    r"|(?: +(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?$"
)

UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1


class Uint64Value(int):
    """A plain integer between 2^63 and 2^64-1: yaml.v3 makes it a uint64, which sops refuses."""


def _go_parse_int(text: str) -> int | None:
    """Go ``strconv.ParseInt(text, 0, 64)`` / ``ParseUint`` semantics, sign included."""
    if not _GO_INT.match(text):
        return None
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-")
    lowered = body.lower()
    if lowered.startswith("0x"):
        value = int(body[2:], 16)
    elif lowered.startswith("0o"):
        value = int(body[2:], 8)
    elif lowered.startswith("0b"):
        value = int(body[2:], 2)
    elif len(body) > 1 and body[0] == "0":
        value = int(body, 8)  # matches yaml.v3: Go's base-0 parse reads a leading 0 as octal
    else:
        value = int(body)
    return sign * value


def parse_timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone, hour2, minute2, second2, fraction2 = match.groups()
    if hour2 is not None:
        hour, minute, second, fraction, zone = hour2, minute2, second2, fraction2, None
    try:
        tz: timezone = timezone.utc
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        if int(second or 0) > 59:
            return None
        nanos = int((fraction or "0")[:9].ljust(9, "0"))
        value = GoTime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                       nanos // 1000, tz)
        value.nanosecond = nanos % 1000
        return value
    except ValueError:
        return None


#: first characters of plain scalars that may be something other than a string
_TYPED_FIRST = frozenset("tTfFnN~0123456789+-.")


def resolve_plain(text: str) -> Any:
    """The typed value of an unquoted, untagged scalar (yaml.v3 rules)."""
    if not text:
        return None
    first = text[0]
    if first not in _TYPED_FIRST:  # most keys and values
        return text
    if first in "tTfF":
        value = _BOOLS.get(text)
        if value is not None:
            return value
        return text
    if first in "0123456789+-.":
        special = _SPECIAL_FLOATS.get(text)
        if special is not None:
            return special
        if first.isdigit() and text[4:5] == "-":
            stamp = parse_timestamp(text)
            if stamp is not None:
                return stamp
        plain = text.replace("_", "")
        if plain.isdigit() and plain.isascii() and (first != "0" or len(plain) == 1):
            number: int | None = int(plain)  # plain decimal digits, the common case
        else:
            number = _go_parse_int(plain)
        if number is not None:
            if number > INT64_MAX:
                if number <= UINT64_MAX and plain[0] != "-":
                    return Uint64Value(number)
            elif number >= -(2**63):
                return number
        if _YAML_FLOAT.match(plain):
            try:
                number_value = float(plain)
            except ValueError:
                return text
            # matches yaml.v3: a float that overflows float64 stays a string
            return text if number_value in (math.inf, -math.inf) else number_value
        return text
    if first == "n" or first == "N" or first == "~":
        return None if text in _NULLS else text
    return text


_TAG_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "null": (type(None),),
    "timestamp": (datetime,),
}


def resolve_tagged(text: str, tag: str, plain: bool) -> Any:
    """A scalar with an explicit tag (``!!str 1``, ``!!binary ...``, ``!custom x``).

    Raises ValueError (naming the tag only) when the text does not fit the tag, as
    go-yaml refuses ``!!bool yes``.
    """
    short = tag.removeprefix("tag:yaml.org,2002:")
    if short == "str":
        return text
    if short == "binary":
        import base64

        try:
            return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "surrogateescape")
        except ValueError:  # binascii.Error included
            raise ValueError("!!binary value contains invalid base64 data") from None
    expected = _TAG_TYPES.get(short)
    if expected is not None:
        value = resolve_plain(text)
        if short == "timestamp" and value.__class__ is str:
            value = parse_timestamp(text) or value
        if not isinstance(value, expected) or (short != "bool" and value.__class__ is bool):
            raise ValueError(f"a value does not fit its !!{short} tag")
        if short == "float" and value.__class__ is int:
            return float(value)
        return value
    return resolve_plain(text) if plain else text


# -- writing scalars ----------------------------------------------------------------

_PLAIN_SAFE_FIRST = re.compile(r"^[^\s\-?:,\[\]{}#&*!|>'\"%@`]")
# the characters above U+00FF are tested with ``in`` (see _has_unicode_break): a class
# holding them makes re build a 64k-entry table, a few million instructions per run
_PLAIN_UNSAFE = re.compile(r"(: |:$| #|[\x00-\x1f\x7f-\x9f])")
_FLOW_UNSAFE = re.compile(r"[,\[\]{}]")
_UNICODE_BREAKS = ("\u2028", "\u2029", "\ufeff")


def _has_unicode_break(text: str) -> bool:
    return not text.isascii() and any(char in text for char in _UNICODE_BREAKS)


#: go-yaml v3 quotes these YAML 1.1 booleans on output (its isOldBool list)
_OLD_BOOLS = frozenset("y Y yes Yes YES n N no No NO on On ON off Off OFF".split())
#: a letter, then letters, digits and ``_./@+=-``: plain in any context, and such a
#: scalar types as something other than a string (YAML 1.2 or 1.1) only when it is
#: one of _TYPED_WORDS (numbers, dates and special floats start otherwise)
_SIMPLE_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./@+=-]*")
_TYPED_WORDS = _NULLS | frozenset(_BOOLS) | _OLD_BOOLS


def is_plain_word(text: str) -> bool:
    """True for a simple word (see _SIMPLE_PLAIN) that reads back as a string: plain anywhere."""
    return _SIMPLE_PLAIN.fullmatch(text) is not None and text not in _TYPED_WORDS


#: printable ASCII after a letter: such a text is typed (YAML 1.2 or 1.1) only when it
#: is one of _TYPED_WORDS, so it is plain unless it holds ": " or " #", ends in ":"
#: or a space, or (in flow context) holds a flow indicator
_LETTER_PRINTABLE = re.compile(r"[A-Za-z][ -~]*")


def plain_string_ok(text: str, flow: bool = False) -> bool:
    """True when ``text`` can be written unquoted and reads back as the same string."""
    if _SIMPLE_PLAIN.fullmatch(text) and text not in _TYPED_WORDS:  # is_plain_word, inlined
        return True
    if (_LETTER_PRINTABLE.fullmatch(text) and text[-1] not in ": " and ": " not in text and " #" not in text
            and text not in _TYPED_WORDS and not (flow and _FLOW_UNSAFE.search(text))):
        return True  # passwords, URLs, sentences: the full check's answer, found in one pass
    return plain_string_ok_in_full(text, flow)


def plain_string_ok_in_full(text: str, flow: bool = False) -> bool:
    """:func:`plain_string_ok` without its shortcut for simple words (tests compare the two)."""
    if not text or text != text.strip() or "\n" in text:
        return False
    if not _PLAIN_SAFE_FIRST.match(text):
        if not (text[0] in "-?:" and len(text) > 1 and not text[1].isspace() and text[0] != ":"):
            return False
    if _PLAIN_UNSAFE.search(text) or _has_unicode_break(text) or (flow and _FLOW_UNSAFE.search(text)):
        return False
    if text.startswith(("---", "...")):
        return False
    resolved = resolve_plain(text)
    if resolved.__class__ is not str or resolved != text or text in ("<<", "="):
        return False
    return not _yaml11_typed(text)


_YAML11_QUOTED = frozenset(("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"))


def _yaml11_typed(text: str) -> bool:
    """True when a YAML 1.1 reader (PyYAML, Kubernetes) would not read ``text`` as a string.

    Matches sops (go-yaml v3), which quotes such strings (``"yes"``, ``"1:20"``) on output.
    """
    if text in _OLD_BOOLS:
        return True
    global _yaml11_patterns
    if _yaml11_patterns is None:
        from .. import pyyaml

        _yaml11_patterns = {
            first: tuple(pattern for tag, pattern in resolvers if tag in _YAML11_QUOTED)
            for first, resolvers in pyyaml.load().resolver.Resolver.yaml_implicit_resolvers.items()
        }
    for pattern in _yaml11_patterns.get(text[0], ()):
        if pattern.match(text):
            return True
    return False


#: PyYAML's YAML 1.1 bool/int/float patterns by first character, made on first use
_yaml11_patterns: dict[str | None, tuple[re.Pattern[str], ...]] | None = None


def double_quoted(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:  # a raw byte kept by surrogateescape
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def literal_block_ok(text: str) -> bool:
    if "\n" not in text.rstrip("\n") and not text.endswith("\n"):
        return False
    if text.startswith((" ", "\n")) or "\r" in text:
        return False
    if _BLOCK_UNSAFE.search(text) or _has_unicode_break(text) or _has_surrogate(text):
        return False
    return not any(line != line.rstrip(" \t") and not line.strip() for line in text.split("\n")[:-1])


_BLOCK_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _has_surrogate(text: str) -> bool:
    """True for a lone surrogate (a raw byte kept by surrogateescape)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def literal_block(text: str, indent: str) -> str:
    """``|`` block text (without a final line break) for a multi-line string."""
    if text.endswith("\n\n") or (text.endswith("\n") and text.rstrip("\n") == ""):
        indicator = "|+"
        body = text[:-1]
    elif text.endswith("\n"):
        indicator = "|"
        body = text[:-1]
    else:
        indicator = "|-"
        body = text
    lines = [(indent + line) if line else "" for line in body.split("\n")]
    return indicator + "\n" + "\n".join(lines)


def go_float_yaml(value: float) -> str:
    """A float as YAML text that reads back as a float (``2.0`` stays a float)."""
    if value != value:
        return ".nan"
    if value in (math.inf, -math.inf):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def render_scalar(value: Any, flow: bool = False, indent: str | None = None) -> str:
    """YAML text for a leaf; ``indent`` allows a literal block at that indentation."""
    cls = value.__class__
    if value is None:
        return "null"
    if cls is bool:
        return "true" if value else "false"
    if cls is int or cls is Uint64Value:
        return str(value)
    if cls is float:
        return go_float_yaml(value)
    if isinstance(value, datetime):
        return go_time_text(value)
    if cls is bytes:
        value = value.decode("utf-8", "replace")
    text = str(value)
    if plain_string_ok(text, flow):
        return text
    if indent is not None and not flow and literal_block_ok(text):
        return literal_block(text, indent)
    return double_quoted(text)
