"""Values as sops sees them: typed plaintext bytes, Go-exact text forms, and reading
the ``ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`` string.

This module knows how each leaf type becomes the byte string that is encrypted
and hashed into the MAC (sops ``ToBytes``), and how decrypted bytes become a
typed value again.  It does no cryptography itself; :meth:`Cipher.seal
<gitcrypt_sops.cipher.Cipher.seal>` writes the ENC string, in place, since it runs
once per value.
"""

from __future__ import annotations

import binascii
import sys

from .dates import datetime, timedelta, timezone
from .errors import TreeDecryptError, TreeEncryptError
from .tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from typing import Any

ENC_PREFIX = "ENC[AES256_GCM,data:"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class GoTime(datetime):
    """An aware datetime that also remembers nanoseconds, as Go's ``time.Time`` does."""

    nanosecond: int = 0

    def __reduce__(self) -> Any:  # keep the nanoseconds through copy/pickle
        return (_rebuild_gotime, (datetime(*self.timetuple()[:6], self.microsecond, self.tzinfo), self.nanosecond))


def _rebuild_gotime(base: datetime, nanosecond: int) -> GoTime:
    value = GoTime.fromtimestamp(0, timezone.utc).replace(
        year=base.year, month=base.month, day=base.day, hour=base.hour, minute=base.minute,
        second=base.second, microsecond=base.microsecond, tzinfo=base.tzinfo,
    )
    value.nanosecond = nanosecond
    return value


def go_float_plain(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def go_float_g(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'g', -1, 64)`` as go-yaml writes it (``.inf``, ``.nan``)."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    from decimal import Decimal

    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text_digits = "".join(map(str, digits))
    count = len(text_digits)
    point = count + int(exponent)  # digits before the decimal point
    exp10 = point - 1
    precision = 6
    if precision > count and count >= point:
        precision = count
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= precision:
        mantissa = text_digits[0] + ("." + text_digits[1:] if count > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text_digits}"
    if point >= count:
        return prefix + text_digits + "0" * (point - count)
    return f"{prefix}{text_digits[:point]}.{text_digits[point:]}"


def go_time_text(value: datetime) -> str:
    """Go ``time.Time.MarshalText`` (RFC 3339 with nanoseconds, trailing zeros dropped)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    nanos = value.microsecond * 1000 + (value.nanosecond if isinstance(value, GoTime) else 0) % 1000
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = value.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{text}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def parse_rfc3339(text: str) -> GoTime:
    """Parse an RFC 3339 timestamp (nanosecond precision) as Go ``time.Parse`` would."""
    original = text
    try:
        if len(text) < 20 or text[10] not in "Tt":
            raise ValueError
        date_part, clock = text[:10], text[11:]
        if clock[-1] in "Zz":
            tz: timezone = timezone.utc
            clock = clock[:-1]
        else:
            sign = 1 if clock[-6] == "+" else -1
            if clock[-6] not in "+-" or clock[-3] != ":":
                raise ValueError
            hours, minutes = int(clock[-5:-3]), int(clock[-2:])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
            clock = clock[:-6]
        fraction = ""
        if "." in clock:
            clock, fraction = clock.split(".", 1)
            if not fraction.isdigit() or len(fraction) > 9:
                raise ValueError
        if len(clock) != 8 or clock[2] != ":" or clock[5] != ":":
            raise ValueError
        year, month, day = int(date_part[0:4]), int(date_part[5:7]), int(date_part[8:10])
        if date_part[4] != "-" or date_part[7] != "-":
            raise ValueError
        nanos = int(fraction.ljust(9, "0")) if fraction else 0
        result = GoTime(year, month, day, int(clock[0:2]), int(clock[3:5]), int(clock[6:8]), nanos // 1000, tz)
        result.nanosecond = nanos % 1000
        return result
    except (ValueError, IndexError):
        raise ValueError(f"not an RFC 3339 timestamp: {len(original)} characters") from None


def canonical_rfc3339_seconds(text: str) -> str:
    """The MAC's AAD: ``lastmodified`` re-printed as Go ``time.RFC3339`` (seconds, ``Z``)."""
    parsed = parse_rfc3339(text)
    offset = parsed.utcoffset() or timedelta(0)
    base = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    if not offset:
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def to_plaintext(value: Any) -> tuple[bytes, str]:
    """The bytes sops encrypts and hashes for a leaf, and its ``type:`` tag."""
    cls = value.__class__
    if cls is str:
        return value.encode("utf-8", "surrogateescape"), "str"
    if cls is bool:
        return (b"True" if value else b"False"), "bool"  # matches sops: Python-sops casing
    if cls is int:
        if not INT64_MIN <= value <= INT64_MAX:
            # matches sops: a number beyond int64 is a float64 (3.11 and 3.13 alike)
            return go_float_plain(float(value)).encode(), "float"
        return str(value).encode(), "int"
    if cls is float:
        return go_float_plain(value).encode(), "float"
    if cls is Comment:
        return value.text.encode("utf-8", "surrogateescape"), "comment"
    if isinstance(value, datetime):
        return go_time_text(value).encode(), "time"
    if cls is bytes:
        return value, "str"
    if isinstance(value, str):
        return str(value).encode("utf-8", "surrogateescape"), "str"
    if isinstance(value, bool):
        return (b"True" if value else b"False"), "bool"
    if isinstance(value, int):
        return to_plaintext(int(value))
    if isinstance(value, float):
        return to_plaintext(float(value))
    raise TreeEncryptError(f"cannot encrypt a value of type {cls.__name__}")


_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def _go_atoi(text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        raise ValueError
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError
    return value


def _go_parse_float(text: str) -> float:
    lowered = text.lower().lstrip("+-")
    if lowered in ("inf", "infinity", "nan"):
        return float(text)
    if "_" in text or not text.isascii() or text.strip() != text:
        raise ValueError
    return float(text)


def from_plaintext(data: bytes, type_tag: str) -> Any:
    """Turn decrypted bytes back into a typed leaf (sops ``decryptValue``)."""
    try:
        if type_tag == "str":
            return data.decode("utf-8", "surrogateescape")
        if type_tag == "int":
            return _go_atoi(data.decode("ascii"))
        if type_tag == "float":
            return _go_parse_float(data.decode("ascii"))
        if type_tag == "bool":
            text = data.decode("ascii")
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if type_tag == "time":
            return parse_rfc3339(data.decode("ascii"))
        if type_tag == "comment":
            return Comment(data.decode("utf-8", "surrogateescape"))
        if type_tag == "bytes":
            return data
    except (ValueError, UnicodeDecodeError):
        raise TreeDecryptError(f"decrypted value does not parse as its type tag '{type_tag}'") from None
    raise TreeDecryptError(f"unknown type tag '{type_tag[:20]}'")


def mac_bytes(value: Any, plaintext: bytes | None = None) -> bytes:
    """The bytes sops hashes into the MAC for a decrypted or plaintext leaf."""
    if plaintext is not None and value.__class__ is str:
        return plaintext
    return to_plaintext(value)[0]


# sops's pattern has ``(.+)`` for the first three parts; base64 has no commas, so
# wherever sops's parts decode, these are the same parts, found without backtracking
_ENC_PATTERN = r"ENC\[AES256_GCM,data:([^,]+),iv:([^,]+),tag:([^,]+),type:(.+)\]"
_enc_match: Callable[[str], re.Match[str] | None] | None = None  # compiled once a run needs it
#: values split by hand (split_enc) before the pattern is compiled: importing re costs
#: about what splitting two thousand values by hand adds, so files of up to 1k values never import it
SPLIT_BY_HAND = 1024
_split_left = SPLIT_BY_HAND


def split_enc(text: str) -> tuple[str, str, str, str] | None:
    """The four groups of :data:`_ENC_PATTERN` matched at the start of ``text``, without re."""
    if not text.startswith(ENC_PREFIX):
        return None
    parts = text[len(ENC_PREFIX) :].split(",", 3)
    if len(parts) != 4:
        return None
    data, iv, tag, rest = parts
    if not (data and iv[:3] == "iv:" and len(iv) > 3 and tag[:4] == "tag:" and len(tag) > 4 and rest[:5] == "type:"):
        return None
    line_end = rest.find("\n")
    close = rest.rfind("]", 0, len(rest) if line_end == -1 else line_end)  # (.+) stops at a newline
    if close <= 5:
        return None
    return data, iv[3:], tag[4:], rest[5:close]


def _enc_parts_early(text: str) -> tuple[str, ...] | None:
    global _enc_match, _split_left
    if _split_left > 0 and "re" not in sys.modules:
        _split_left -= 1
        return split_enc(text)
    import re

    _enc_match = re.compile(_ENC_PATTERN).match
    found = _enc_match(text)
    return None if found is None else found.groups()


def parse_enc(text: str) -> tuple[bytes, bytes, bytes, str]:
    """Split an ENC string into (ciphertext, iv, tag, type); TreeDecryptError if malformed.

    Matches sops's ``^ENC\\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\\]``:
    anchored at the start only, so text after the final ``]`` is ignored.
    """
    match = _enc_match
    if match is not None:
        found = match(text)
        parts = None if found is None else found.groups()
    else:
        parts = _enc_parts_early(text)
    if parts is None:
        raise TreeDecryptError("value is not a valid ENC[AES256_GCM,...] string")
    data, iv, tag, type_tag = parts
    try:
        a2b = binascii.a2b_base64
        return a2b(data, strict_mode=True), a2b(iv, strict_mode=True), a2b(tag, strict_mode=True), type_tag
    except (ValueError, binascii.Error):
        raise TreeDecryptError("value is not a valid ENC[AES256_GCM,...] string") from None


def is_enc(value: Any) -> bool:
    return value.__class__ is str and value.startswith(ENC_PREFIX)
