"""File formats ("stores"): choosing one by name or file extension.

Each store module turns bytes into trees and back; none of them knows about keys
or encryption.  Store modules are imported only when a file of their kind is used.
"""

from __future__ import annotations

import os
from operator import itemgetter

#: formats selectable with --input-type/--output-type
FORMATS = ("yaml", "json", "dotenv", "ini", "toml", "binary")

_EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".env": "dotenv", ".ini": "ini", ".toml": "toml"}


_span_of = itemgetter(0, 1)


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, replacement)`` applied; overlapping later edits are skipped."""
    edits.sort(key=_span_of)
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in edits:
        if start < cursor:
            continue
        pieces.append(text[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def format_for(path: str | os.PathLike[str] | None, explicit: str | None = None) -> str:
    """The store for a file: ``explicit`` if given, else by extension; anything else is binary.

    Matches sops: an unknown ``--input-type`` name means binary.
    """
    if explicit:
        name = explicit.lower()
        return name if name in FORMATS else "binary"
    if path is None:
        return "binary"
    return _EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower(), "binary")
