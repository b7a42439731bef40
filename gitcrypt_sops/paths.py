"""Tree paths in sops's ``["key"][0]`` syntax: parsing, and looking a value up."""

from __future__ import annotations

import json

from .errors import InvalidTreePath, PathNotFound
from .tree import Comment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def parse(text: str) -> list[str | int]:
    """Parse ``["a"][0]["b"]`` into ``["a", 0, "b"]``."""
    steps: list[str | int] = []
    index = 0
    text = text.strip()
    decoder = json.JSONDecoder()
    while index < len(text):
        if text[index] != "[":
            raise InvalidTreePath("invalid tree path: expected '[' (use the form [\"key\"][0])")
        index += 1
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            raise InvalidTreePath("invalid tree path: each step is a quoted key or a number") from None
        if index >= len(text) or text[index] != "]":
            raise InvalidTreePath("invalid tree path: missing ']'")
        index += 1
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidTreePath("invalid tree path: each step is a quoted key or a number")
        steps.append(value)
    if not steps:
        raise InvalidTreePath("invalid tree path: empty")
    return steps


def lookup(tree: Any, steps: list[str | int]) -> Any:
    """The value at ``steps``; InvalidTreePath naming the missing step."""
    node = tree
    for depth, step in enumerate(steps):
        where = "".join(json.dumps(s, ensure_ascii=False) if isinstance(s, str) else str(s) for s in steps[: depth + 1])
        if isinstance(step, str):
            if node.__class__ is not dict or step not in node:
                raise PathNotFound(f"component [{json.dumps(step, ensure_ascii=False)}] not found (at {where})")
            node = node[step]
        else:
            if node.__class__ is not list:
                raise PathNotFound(f"component [{step}] not found: not a list")
            items = [item for item in node if item.__class__ is not Comment]
            if not -len(items) <= step < len(items):
                raise PathNotFound(f"component [{step}] not found: index out of range")
            node = items[step]
    return node
