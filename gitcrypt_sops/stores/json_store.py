"""The JSON store: JSON text <-> the document tree, written the way sops 3.11 writes it.

Owns parsing a JSON document into the tree of :mod:`gitcrypt_sops.tree` (strictly:
no duplicate keys, no trailing data, UTF-8 only) and emitting a tree as sops does
(Go ``encoding/json`` marshalling followed by ``json.Indent``).  Also provides
:func:`go_float_json`, the Go ``encoding/json`` text of a float64.

Parsing uses the C-accelerated stdlib decoder; emission is a small join-based
writer around the stdlib's C string escaper, with Go's extra escapes applied to
the finished text.  Error messages give positions and key paths, never values.
"""

from __future__ import annotations

from _json import encode_basestring, make_scanner

from gitcrypt_sops import dates as _dt
from gitcrypt_sops.errors import EmitError, InputError
from gitcrypt_sops.tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

__all__ = ["dump", "dump_value", "go_float_json", "load"]

# C escaper of the stdlib (non-ASCII kept raw): quotes, \\, \b \f \n \r \t and
# \u00xx (lowercase hex) for other control characters, exactly like Go >= 1.22.
# Taken, like the scanner below, from the C module itself: importing the json
# package would also import re and compile its patterns, a tenth of a small run.
_encode_str: Callable[[str], str] = encode_basestring

_WS = " \t\n\r"
# Patterns for rare paths, compiled on first use by re's own cache (compiling them
# all at import would cost a few per cent of a small run).
_SURROGATES = "[\ud800-\udfff]"
_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F]"
# A JSON string token, or (group 1) a token the locator is looking for.
_CONSTANT_TOKEN = r'(?s)"(?:[^"\\]|\\.)*"|(NaN|-?Infinity)'
_NUMBER_TOKEN = r'(?s)"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'

_REASONS = {
    "Expecting value": "expected a value",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Expecting ':' delimiter": "expected ':'",
    "Expecting ',' delimiter": "expected ',' or a closing bracket",
    "Unterminated string starting at": "unterminated string",
    "Invalid control character at": "control character inside a string",
    "Invalid \\escape": "invalid escape sequence in a string",
    "Invalid \\uXXXX escape": "invalid \\u escape in a string",
    "Extra data": "unexpected data after the top-level object",
}


# ---------------------------------------------------------------------- load


class _Duplicate(Exception):
    pass


class _BadConstant(Exception):
    pass


class _BadNumber(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Duplicate
    return d


def _constant(_name: str) -> NoReturn:
    raise _BadConstant


def _float(text: str) -> float:
    f = float(text)
    if f - f != 0.0:  # infinite: matches sops, which cannot fit it in a float64
        raise _BadNumber
    return f


def _int(text: str) -> int | float:
    # matches sops 3.11 (which reads every number as float64): `-0` keeps its sign
    return int(text) if text != "-0" else -0.0


class _ScanSettings:
    """What the C scanner reads from a ``json.JSONDecoder``: sops's number and key rules."""

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = _pairs
        self.parse_float = _float
        self.parse_int = _int
        self.parse_constant = _constant


_scan = make_scanner(_ScanSettings())  # type: ignore[arg-type]  # it reads only these attributes


def _decode(text: str) -> Any:
    """``json.loads`` of a whole document (the same scanner, the same errors)."""
    end = len(text)
    start = 0
    while start < end and text[start] in _WS:
        start += 1
    try:
        tree, index = _scan(text, start)
    except StopIteration as stop:
        raise _decode_error("Expecting value", text, stop.value) from None
    except SystemError:
        # the C scanner raises its syntax errors with json.decoder's class, which it
        # looks up among loaded modules only: load it and scan again for that error
        import json.decoder  # noqa: F401

        tree, index = _scan(text, start)
    while index < end and text[index] in _WS:
        index += 1
    if index != end:
        raise _decode_error("Extra data", text, index)
    return tree


def _decode_error(message: str, text: str, index: int) -> ValueError:
    from json import JSONDecodeError

    return JSONDecodeError(message, text, index)


def load(data: bytes | bytearray) -> dict[str, Any]:
    """Parse a JSON document whose top level is an object into the tree.

    Integers stay exact Python ``int`` of any size (sops 3.11 turns them into
    float64; 3.13 keeps those in the int64 range), except ``-0``, which becomes
    the float ``-0.0`` so that it is written back as ``-0``.  Raises
    :class:`InputError` for anything sops refuses and, stricter than sops, for
    duplicate keys, trailing data and invalid UTF-8.  A ``bytearray`` is emptied
    once decoded (see :func:`gitcrypt_sops.api.parse`).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(bytes(data), exc.start)
        raise InputError(f"invalid UTF-8 in JSON at line {line}, column {col}") from None
    if data.__class__ is bytearray:
        data.clear()  # handed over by the caller (see api.parse): hold the text only
    if text.startswith("\ufeff"):
        # matches sops: Go's decoder rejects a byte order mark
        raise InputError("JSON document starts with a byte order mark (BOM); remove it")
    try:
        tree: Any = _decode(text)
    except _Duplicate:
        raise InputError(_duplicate_message(text)) from None
    except _BadConstant:
        where = _locate(text, _CONSTANT_TOKEN, lambda _t: True)
        raise InputError(f"invalid JSON{where}: NaN and Infinity are not JSON values") from None
    except _BadNumber:
        where = _locate(text, _NUMBER_TOKEN, _is_infinite_float)
        raise InputError(f"invalid JSON{where}: number out of the float64 range") from None
    except RecursionError:
        raise InputError("JSON nesting is too deep") from None
    except ValueError as exc:
        from json import JSONDecodeError

        if not isinstance(exc, JSONDecodeError):  # Python refuses integers of more than 4300 digits
            raise InputError("invalid JSON: a number has too many digits") from None
        if not text.strip(_WS):
            # matches sops: an empty JSON file is an input error (exit 2), not "no document"
            raise InputError("JSON document is empty") from None
        reason = _REASONS.get(exc.msg, "syntax error")
        raise InputError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {reason}") from None
    if tree.__class__ is not dict:
        raise InputError(f"JSON top level must be an object, not {_kind(tree)}")
    if "\\u" in text and _has_surrogate_escape(text):
        tree = _replace_lone_surrogates(tree, [])
    result: dict[str, Any] = tree
    return result


_INF = float("inf")


def _has_surrogate_escape(text: str) -> bool:
    import re  # here, as in every rare path below: a run without them needs no regex

    return re.search(_SURROGATE_ESCAPE, text) is not None


def _is_infinite_float(token: str) -> bool:
    return not token.lstrip("-").isdigit() and float(token) in (_INF, -_INF)


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _locate(text: str, token: str, wanted: Callable[[str], bool]) -> str:
    """`` at line L, column C`` of the first matching token outside strings, or ''."""
    import re

    for m in re.finditer(token, text):
        found = m.group(1)
        if found is not None and wanted(found):
            start = m.start(1)
            line_start = text.rfind("\n", 0, start) + 1
            return f" at line {text.count(chr(10), 0, start) + 1}, column {start - line_start + 1}"
    return ""


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


class _DuplicateAt:
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _marking_pairs(pairs: list[tuple[str, Any]]) -> Any:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            return _DuplicateAt(key)
        seen.add(key)
    return dict(pairs)


def _duplicate_message(text: str) -> str:
    """Second, slow parse that finds where the first duplicate key is."""
    import json

    tree = json.JSONDecoder(object_pairs_hook=_marking_pairs).decode(text)
    found = _find(tree, lambda v: v.__class__ is _DuplicateAt, [])
    if found is None:  # pragma: no cover - the fast parse saw one
        return "duplicate key in a JSON object"
    path, marker = found
    where = f"at {_path_text(path)}" if path else "at the top level"
    return f"duplicate key {_quote(marker.key)} in a JSON object {where}"


def _find(value: Any, wanted: Callable[[Any], bool], path: list[str | int]) -> tuple[list[str | int], Any] | None:
    if wanted(value):
        return path, value
    if value.__class__ is dict:
        for k, v in value.items():
            hit = _find(v, wanted, [*path, k])
            if hit is not None:
                return hit
    elif value.__class__ is list:
        for i, v in enumerate(value):
            hit = _find(v, wanted, [*path, i])
            if hit is not None:
                return hit
    return None


def _replace_lone_surrogates(value: Any, path: list[str | int]) -> Any:
    """Turn ``\\ud800``-style unpaired escapes into U+FFFD, as Go's decoder does."""
    import re

    cls = value.__class__
    if cls is str:
        return re.sub(_SURROGATES, "\ufffd", value)
    if cls is list:
        return [_replace_lone_surrogates(v, [*path, i]) for i, v in enumerate(value)]
    if cls is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = re.sub(_SURROGATES, "\ufffd", k)
            if key in out:
                where = f"at {_path_text(path)}" if path else "at the top level"
                raise InputError(f"duplicate key {_quote(key)} in a JSON object {where}")
            out[key] = _replace_lone_surrogates(v, [*path, key])
        return out
    return value


def _quote(key: str) -> str:
    return _encode_str(key)  # json.dumps(key, ensure_ascii=False)


def _path_text(path: list[str | int]) -> str:
    """A key path in sops's ``--extract`` notation: ``["a"][0]["b"]``."""
    return "".join(f"[{p}]" if p.__class__ is int else f"[{_quote(str(p))}]" for p in path)


# ---------------------------------------------------------------------- dump


def go_float_json(f: float) -> str:
    """The text Go's ``encoding/json`` writes for a float64.

    Shortest round-trip digits; plain notation for 1e-6 <= |f| < 1e21, otherwise
    exponent notation with Go's cleanup (``1e-07`` -> ``1e-7``).  Raises
    ``ValueError`` for NaN and infinities, which Go refuses to marshal.
    """
    r = float.__repr__(f)
    if "e" not in r:
        if r.endswith(".0"):
            return r[:-2]  # 2.0 -> 2, -0.0 -> -0
        if r[-1] in "fn":  # inf, -inf, nan
            raise ValueError("NaN and infinite floats cannot be written as JSON")
        return r
    mantissa, exp_text = r.split("e")
    exp = int(exp_text)
    if -7 < exp < 21:
        # Python's repr switches to exponent notation earlier than Go does.  Here
        # the value is below 1e-4 or an integer of at most 17 digits.
        sign = "-" if mantissa[0] == "-" else ""
        digits = mantissa.lstrip("-").replace(".", "")
        if exp < 0:
            return f"{sign}0.{'0' * (-exp - 1)}{digits}"
        return f"{sign}{digits}{'0' * (exp + 1 - len(digits))}"
    if exp_text.startswith("-0"):
        exp_text = "-" + exp_text[2:]
    return f"{mantissa}e{exp_text}"


def rfc3339(value: _dt.datetime | _dt.date) -> str:
    """Go's ``time.RFC3339Nano`` text: ``Z`` for UTC, fraction without trailing zeros.

    A naive datetime is taken as UTC; a date is midnight UTC (as sops reads YAML dates).
    """
    if not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    seconds = 0 if offset is None else int(offset.total_seconds())
    if seconds == 0:
        return text + "Z"
    minutes = abs(seconds) // 60  # Go drops the seconds of an offset
    sign = "-" if seconds <= -60 else "+"
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class _Unwritable(Exception):
    """A value Go's encoder refuses; ``path`` is filled in while unwinding."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str | int] = []


class _Output:
    """The text being written: pieces, encoded to UTF-8 a batch at a time (see spill)."""

    __slots__ = ("encoded", "pieces")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.encoded: list[bytes] = []

    def spill(self) -> None:
        """Encode the pieces so far: a large document is never held as pieces, joined
        text and bytes all at once.  Called at the ends of mappings and lists."""
        if len(self.pieces) >= 4096:
            self.encoded.append(_finish("".join(self.pieces)))
            self.pieces.clear()

    def result(self) -> bytes:
        self.encoded.append(_finish("".join(self.pieces)))
        self.pieces.clear()
        return b"".join(self.encoded) if len(self.encoded) > 1 else self.encoded[0]


def _emit_dict(d: dict[Any, Any], ind: str, step: str, out: _Output) -> None:
    add = out.pieces.append
    inner = ind + step
    nxt = ",\n" + inner
    sep = "{\n" + inner
    enc = _encode_str
    k: Any = None
    try:
        for k, v in d.items():
            if k.__class__ is not str:
                if k.__class__ is Comment:
                    continue
                if not isinstance(k, str):
                    raise _Unwritable(f"a key of type {type(k).__name__}")
            c = v.__class__
            if c is str:
                add(f"{sep}{enc(k)}: {enc(v)}")
            elif c is dict:
                add(f"{sep}{enc(k)}: ")
                _emit_dict(v, inner, step, out)
            elif c is list:
                add(f"{sep}{enc(k)}: ")
                _emit_list(v, inner, step, out)
            else:
                add(f"{sep}{enc(k)}: ")
                _emit_other(v, inner, step, out)
            sep = nxt
    except _Unwritable as exc:
        if isinstance(k, str):  # else the key itself is the problem
            exc.path.append(k)
        raise
    add("\n" + ind + "}" if sep is nxt else "{}")
    out.spill()


def _emit_list(items: list[Any], ind: str, step: str, out: _Output) -> None:
    add = out.pieces.append
    inner = ind + step
    nxt = ",\n" + inner
    sep = "[\n" + inner
    enc = _encode_str
    v: Any = None
    try:
        for v in items:
            c = v.__class__
            if c is str:
                add(sep + enc(v))
            elif c is dict:
                add(sep)
                _emit_dict(v, inner, step, out)
            elif c is list:
                add(sep)
                _emit_list(v, inner, step, out)
            elif c is Comment:
                continue
            else:
                add(sep)
                _emit_other(v, inner, step, out)
            sep = nxt
    except _Unwritable as exc:
        exc.path.append(next(i for i, x in enumerate(items) if x is v))
        raise
    add("\n" + ind + "]" if sep is nxt else "[]")
    out.spill()


def _emit_other(v: Any, ind: str, step: str, out: _Output) -> None:
    """Every value but a plain str, dict or list."""
    add = out.pieces.append
    c = v.__class__
    if c is int:
        add(int.__repr__(v))
    elif c is float:
        try:
            add(go_float_json(v))
        except ValueError:
            raise _Unwritable("a NaN or infinite number") from None
    elif c is bool:
        add("true" if v else "false")
    elif v is None:
        add("null")
    elif c is bytes:
        # matches sops: Go writes each invalid UTF-8 byte as \ufffd (see _finish)
        add(_encode_str(v.decode("utf-8", "surrogateescape")))
    elif isinstance(v, _dt.date):
        add(_encode_str(rfc3339(v)))
    # Subclasses of the plain types (an enum, a custom mapping, a tuple).
    elif isinstance(v, bool):
        add("true" if v else "false")
    elif isinstance(v, str):
        add(_encode_str(str.__str__(v)))
    elif isinstance(v, int):
        add(int.__repr__(v))
    elif isinstance(v, float):
        _emit_other(float(v), ind, step, out)
    elif isinstance(v, dict):
        _emit_dict(v, ind, step, out)
    elif isinstance(v, (list, tuple)):
        _emit_list(list(v), ind, step, out)
    else:
        raise _Unwritable(f"a value of type {type(v).__name__}")


def _finish(text: str) -> bytes:
    # Outside strings JSON text has none of these characters, so escaping them in
    # the whole text is safe.  Matches sops: Go's HTML-safe string escaping.
    if "<" in text:
        text = text.replace("<", "\\u003c")
    if ">" in text:
        text = text.replace(">", "\\u003e")
    if "&" in text:
        text = text.replace("&", "\\u0026")
    if "\u2028" in text:
        text = text.replace("\u2028", "\\u2028")
    if "\u2029" in text:
        text = text.replace("\u2029", "\\u2029")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates stand for bytes that are not UTF-8; Go writes \ufffd.
        import re

        return re.sub(_SURROGATES, lambda _m: "\\ufffd", text).encode("utf-8")


def _indent_step(indent: int | None) -> str:
    if indent is None or indent == -1:
        return "\t"
    if indent < -1:
        # matches sops: "JSON Indentation parameter smaller than -1 is not accepted"
        raise EmitError(f"JSON indentation must be -1 (tab) or at least 0, not {indent}")
    return " " * indent


def _emit(value: Any, step: str, tail: str = "") -> bytes:
    out = _Output()
    try:
        c = value.__class__
        if c is dict:
            _emit_dict(value, "", step, out)
        elif c is list:
            _emit_list(value, "", step, out)
        elif c is str:
            out.pieces.append(_encode_str(value))
        else:
            _emit_other(value, "", step, out)
    except _Unwritable as exc:
        where = _path_text(exc.path[::-1])
        raise EmitError(f"cannot write {exc.what} as JSON" + (f" at {where}" if where else "")) from None
    except RecursionError:
        raise EmitError("cannot write JSON: the document is nested too deeply") from None
    out.pieces.append(tail)
    return out.result()


def dump(tree: dict[str, Any], indent: int | None = None) -> bytes:
    """Write a document like sops 3.11: tab indentation (or ``indent`` spaces),
    ``"key": value``, Go's escapes and number formats, comments dropped, and a
    trailing newline."""
    return _emit(tree, _indent_step(indent), "\n")


def dump_value(value: Any, indent: int | None = None) -> bytes:
    """Write one value the way ``sops decrypt --extract`` does in JSON output.

    A mapping is written as a whole document, trailing newline included (sops
    emits an extracted mapping as a file); any other value is written without a
    trailing newline (sops's ``EmitValue``).  A string is written quoted: sops
    prints an extracted string raw, which is the caller's business.
    """
    step = _indent_step(indent)
    if value.__class__ is dict:
        return dump(value, indent)
    return _emit(value, step)
