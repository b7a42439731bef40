"""The dotenv store: ``KEY=VALUE`` lines <-> a flat tree, byte-compatible with sops 3.11.

Owns the line format only (metadata keys are handled by :mod:`.flatten`).  The rules
are sops's, which are simpler than a shell's:

* lines are split on ``\\n``; empty lines are dropped; a line starting with ``#`` is a
  comment whose text is the rest of the line;
* any other line needs a ``=``: the key is everything before the first one, verbatim
  (no trimming, no ``export``), the value everything after it with the two characters
  ``\\n`` turned into a newline; quotes stay part of the value and a CRLF file keeps
  the ``\\r`` at the end of each value;
* every value is a string.

Duplicate keys are refused: sops keeps both lines as two entries with the same path,
which a mapping cannot hold (and last-one-wins would break the MAC of such a file).
"""

from __future__ import annotations

from ..errors import EmitError, InputError
from ..tree import Comment
from .flatten import go_value_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dump", "load"]


def load(data: bytes) -> dict[Any, Any]:
    """Parse dotenv bytes into the tree (comment keys hold ``None``), in file order."""
    tree: dict[Any, Any] = {}
    text = data.decode("utf-8", "surrogateescape")
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] == "#":
            tree[Comment(line[1:])] = None
            continue
        key, sep, value = line.partition("=")
        if not sep or key in tree:
            _fail(text, line, key)
        tree[key] = value.replace("\\n", "\n") if "\\n" in value else value
    return tree


def _fail(text: str, line: str, key: str) -> None:
    """Raise the error for ``line`` (slow path: only runs once, to find line numbers)."""
    lines = text.split("\n")
    if "=" not in line:
        number = next(
            i for i, candidate in enumerate(lines, 1) if candidate and candidate[0] != "#" and "=" not in candidate
        )
        raise InputError(f"invalid dotenv input: line {number} has no '='")
    seen: dict[str, int] = {}
    for number, candidate in enumerate(lines, 1):
        if not candidate or candidate[0] == "#":
            continue
        name = candidate.partition("=")[0]
        if name in seen:
            raise InputError(
                f"invalid dotenv input: line {number} repeats the key of line {seen[name]}; "
                "sops would keep both, this tool needs unique keys"
            )
        seen[name] = number
    raise InputError("invalid dotenv input")  # not reached


def dump(tree: dict[Any, Any]) -> bytes:
    """Write the tree as sops does: ``KEY=VALUE`` / ``#comment`` lines, newlines as ``\\n``.

    Non-string values are written with Go's text forms (``true``, ``1.0``, ``<nil>``);
    nested maps and lists raise :class:`EmitError`, as sops refuses them.
    """
    out: list[str] = []
    append = out.append
    for key, value in tree.items():
        if key.__class__ is Comment:
            append(f"#{key.text}\n")
            continue
        if value.__class__ is not str:
            if isinstance(value, (dict, list)):
                raise EmitError(f"cannot use a nested map or list in a dotenv file (key '{key}')")
            append(f"{key}={go_value_string(value)}\n")  # matches sops: no \\n escaping here
            continue
        if "\n" in value:
            value = value.replace("\n", "\\n")
        append(f"{key}={value}\n")
    return "".join(out).encode("utf-8", "surrogateescape")
