"""What the flat stores (dotenv, INI) share: the flattened ``sops`` metadata and Go's text forms.

Owns

* moving the metadata out of a loaded dotenv/INI tree (:func:`extract_metadata`) and
  back into a tree before writing (:func:`attach_metadata`): nested maps and lists
  become single keys joined with ``__map_<key>`` / ``__list_<index>``;
* :func:`go_value_string`, the text sops (Go ``stores.ValToString``) writes for a
  non-string leaf in a dotenv or INI file, e.g. after ``--output-type dotenv``.

dotenv keeps metadata as ``sops_``-prefixed keys, INI as a ``[sops]`` section.
"""

from __future__ import annotations

import itertools
import math

from ..codec import GoTime
from ..dates import datetime, timedelta
from ..errors import EmitError
from ..metadata import MetadataError
from ..tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DOTENV_PREFIX", "attach_metadata", "extract_metadata", "go_value_string", "go_verb_v"]

DOTENV_PREFIX = "sops_"
INI_SECTION = "sops"
_MAP = "__map_"
_LIST = "__list_"
#: how sops splits a flattened key (``re.split`` of it keeps the tokens); split_key does it without re
TOKEN_PATTERN = r"(__map_|__list_)"


def split_key(key: str) -> list[str]:
    """``re.split(TOKEN_PATTERN, key)``: the names with the ``__map_``/``__list_`` tokens between them."""
    parts: list[str] = []
    start = 0
    while True:
        found_map, found_list = key.find(_MAP, start), key.find(_LIST, start)
        if found_map == -1 and found_list == -1:
            parts.append(key[start:])
            return parts
        at, token = ((found_map, _MAP) if found_list == -1 or (found_map != -1 and found_map < found_list)
                     else (found_list, _LIST))
        parts += (key[start:at], token)
        start = at + len(token)


# -- metadata out of a tree ----------------------------------------------------------


def extract_metadata(fmt: str, tree: dict[Any, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Remove the metadata from ``tree`` in place; return (metadata tree, whether present).

    dotenv: every key starting with ``sops_`` (prefix stripped); INI: the ``[sops]``
    section.  The metadata tree is unflattened, its two-character ``\\n`` escapes
    turned back into newlines, ``shamir_threshold`` made an int and
    ``mac_only_encrypted`` a bool, as sops does before reading it.
    """
    flat: dict[str, str] = {}
    if fmt == "dotenv":
        keys = [key for key in tree if key.__class__ is str and key.startswith(DOTENV_PREFIX)]
        if not keys:
            return None, False
        for key in keys:
            value = tree.pop(key)
            flat[key[len(DOTENV_PREFIX) :]] = value if isinstance(value, str) else go_value_string(value)
    elif fmt == "ini":
        if INI_SECTION not in tree:
            return None, False
        section = tree.pop(INI_SECTION)
        if isinstance(section, dict):
            for key, value in section.items():
                if key.__class__ is str:
                    flat[key] = value if isinstance(value, str) else go_value_string(value)
    else:
        raise ValueError(f"not a flat store: {fmt}")
    return _unflatten(flat), True


def _decode_typed(flat: dict[str, Any]) -> None:
    """matches sops ``DecodeNonStrings``: the two known non-string fields, top level only."""
    if "mac_only_encrypted" in flat:
        flat["mac_only_encrypted"] = flat["mac_only_encrypted"] == "true"
    if "shamir_threshold" in flat:
        text = flat["shamir_threshold"]
        try:
            flat["shamir_threshold"] = _go_atoi(text)
        except ValueError:
            try:
                number = float(text)  # older sops wrote it as a float, e.g. "2.0"
            except ValueError:
                number = math.nan
            if not number.is_integer():
                raise MetadataError("sops metadata shamir_threshold is not an integer") from None
            flat["shamir_threshold"] = int(number)


def _go_atoi(text: str) -> int:
    body = text[1:] if text[:1] in ("+", "-") else text
    if not (body.isascii() and body.isdigit()):
        raise ValueError(text)
    return int(text)


def _unflatten(flat: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {key: value.replace("\\n", "\n") for key, value in flat.items()}
    _decode_typed(values)
    root: dict[str, Any] = {}
    for key, value in values.items():
        parts = split_key(key)
        path: list[str | int] = [parts[0]]
        for separator, name in zip(parts[1::2], parts[2::2]):
            if separator == _LIST:
                if not (name.isascii() and name.isdigit()):
                    raise MetadataError("a flattened sops metadata key has a list index that is not a number")
                path.append(int(name))
            else:
                path.append(name)
        _place(root, path, value)
    return root


def _place(root: dict[str, Any], path: list[str | int], value: Any) -> None:
    node: Any = root
    for step, following in itertools.pairwise(path):
        child = _get(node, step)
        expected: type = list if isinstance(following, int) else dict
        if child is None:
            child = expected()
            _set(node, step, child)
        elif not isinstance(child, expected):
            raise MetadataError("flattened sops metadata mixes a list, a map and a value under one key")
        node = child
    if isinstance(_get(node, path[-1]), (dict, list)):
        raise MetadataError("flattened sops metadata mixes a list, a map and a value under one key")
    _set(node, path[-1], value)


def _get(node: Any, step: str | int) -> Any:
    if isinstance(node, list):
        assert isinstance(step, int)
        return node[step] if step < len(node) else None
    return node.get(step)


def _set(node: Any, step: str | int, value: Any) -> None:
    if isinstance(node, list):
        assert isinstance(step, int)
        if step >= len(node):
            node.extend([None] * (step + 1 - len(node)))  # matches sops 3.11: gaps stay null
        node[step] = value
    else:
        node[step] = value


# -- metadata into a tree ------------------------------------------------------------


def attach_metadata(fmt: str, tree: dict[Any, Any], meta_tree: dict[str, Any]) -> dict[Any, Any]:
    """``tree`` with ``meta_tree`` flattened into it, as the last entries.

    dotenv: ``sops_``-prefixed keys sorted by the full key (sops 3.11 order).  INI: a
    final ``[sops]`` section in sops 3.13's order (map keys sorted, list elements by
    index; sops 3.11 writes a random order).  Newlines in values become ``\\n``.
    """
    items: list[tuple[str, str]] = []
    _flatten(meta_tree, "", items, sort_maps=fmt == "ini")
    if fmt == "dotenv":
        for key, value in sorted(items):
            tree[DOTENV_PREFIX + key] = value
    elif fmt == "ini":
        tree[INI_SECTION] = dict(items)
    else:
        raise ValueError(f"not a flat store: {fmt}")
    return tree


def _flatten(value: Any, key: str, out: list[tuple[str, str]], *, sort_maps: bool) -> None:
    if isinstance(value, dict):
        names = [name for name in value if name.__class__ is not Comment]
        for name in sorted(names) if sort_maps else names:
            _flatten(value[name], (key + _MAP + name) if key else name, out, sort_maps=sort_maps)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{key}{_LIST}{index}", out, sort_maps=sort_maps)
    elif value is not None:
        text = value if isinstance(value, str) else _metadata_scalar(value)
        out.append((key, text.replace("\n", "\\n")))


def _metadata_scalar(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return go_value_string(value)


# -- Go's text forms -----------------------------------------------------------------


def go_value_string(value: Any) -> str:
    """sops ``stores.ValToString``: how a non-string leaf is written in dotenv and INI files.

    Floats use Go's ``%G`` with at least one decimal (``1.0``, ``1E+21``), times RFC
    3339 at seconds precision, null ``<nil>``, and containers Go's ``%v`` (``[a b]``).
    """
    if value.__class__ is str:
        return str(value)
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        text = go_format_g(value, upper=True)
        if "." not in text and "E" not in text and math.isfinite(value):
            text = f"{value:.1f}"  # matches sops: never an integer-looking float
        return text
    if isinstance(value, datetime):
        return _rfc3339_seconds(value)
    return go_verb_v(value)


def go_verb_v(value: Any) -> str:
    """Go's ``fmt.Sprintf("%v", value)`` for the tree's leaves and containers."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return str(value)
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_g(value, upper=False)
    if isinstance(value, Comment):
        return "{" + value.text + "}"
    if isinstance(value, datetime):
        return _go_time_string(value)
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(byte) for byte in value) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_verb_v(item) for item in value) + "]"
    if isinstance(value, dict):
        return "[" + " ".join("{" + go_verb_v(k) + " " + go_verb_v(v) + "}" for k, v in value.items()) + "]"
    raise EmitError(f"cannot write a value of type {type(value).__name__} in a flat file")


def go_format_g(value: float, *, upper: bool) -> str:
    """Go ``strconv.FormatFloat(value, 'g' or 'G', -1, 64)``: shortest digits, exponent outside 1e-4..1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits, point = _shortest_digits(abs(value))
    exponent = point - 1
    if digits and (exponent < -4 or exponent >= 6):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}{'E' if upper else 'e'}{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    whole = (digits[:point] + "0" * (point - len(digits))) if point > 0 else "0"
    decimals = max(len(digits) - point, 0)
    fraction = "".join(digits[point + i] if 0 <= point + i < len(digits) else "0" for i in range(decimals))
    return sign + whole + ("." + fraction if fraction else "")


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-trip digits of a non-negative float and its decimal point position."""
    mantissa, _, exp_text = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    return (digits, point) if digits else ("", 0)


def _offset_parts(value: datetime) -> tuple[int, str]:
    offset = value.utcoffset() or timedelta(0)
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return int(offset.total_seconds()), f"{sign}{total // 3600:02d}{total % 3600 // 60:02d}"


def _rfc3339_seconds(value: datetime) -> str:
    """Go ``time.Format(time.RFC3339)``: seconds precision, ``Z`` for UTC."""
    total, numeric = _offset_parts(value)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return base + ("Z" if total == 0 else f"{numeric[:3]}:{numeric[3:]}")


def _go_time_string(value: datetime) -> str:
    """Go ``time.Time.String()``: ``2006-01-02 15:04:05.999999999 -0700 MST``."""
    total, numeric = _offset_parts(value)
    nanos = value.microsecond * 1000 + (value.nanosecond if isinstance(value, GoTime) else 0) % 1000
    fraction = ("." + f"{nanos:09d}".rstrip("0")) if nanos else ""
    zone = "UTC" if total == 0 else numeric
    return f"{value.strftime('%Y-%m-%d %H:%M:%S')}{fraction} {numeric} {zone}"
