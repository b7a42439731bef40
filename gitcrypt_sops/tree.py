"""The abstract document tree every store produces and every pipeline step walks.

A document is a ``dict`` whose keys are ``str`` or :class:`Comment` (a comment key
holds the value ``None``); sequences are ``list`` whose elements may be
:class:`Comment`.  Leaves are ``str``, ``int``, ``float``, ``bool``, ``None``,
:class:`datetime.datetime` (aware) and ``bytes`` (binary payloads only).  This is
the same model sops uses (``sops.TreeBranch``), expressed with Python containers.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Tree = dict[Any, Any]


class Comment:
    """A comment line; compared by identity so that it can serve as a dict key."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Comment({self.text!r})"


def strip_comments(value: Any) -> Any:
    """The plain data of a tree: comment entries and elements removed."""
    cls = value.__class__
    if cls is dict:
        return {k: strip_comments(v) for k, v in value.items() if k.__class__ is not Comment}
    if cls is list:
        return [strip_comments(v) for v in value if v.__class__ is not Comment]
    return value
