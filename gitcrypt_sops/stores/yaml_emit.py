"""Writing a whole tree as block YAML in sops's style (used where no original text exists).

Encrypting and decrypting an existing YAML file splice values into its own text
(see :mod:`.yaml_store`); this emitter serves the ``sops`` metadata block, format
conversions (JSON to YAML), data given through the Python API, and YAML that
cannot be spliced.  It writes what sops 3.11 writes: ``indent`` spaces per level
(4 by default), sequences indented under their key, comments on their own lines,
encrypted comments inside sequences as ``- ENC[...]`` elements.
"""

from __future__ import annotations

from ..codec import ENC_PREFIX
from ..tree import Comment
from .yaml_scalars import double_quoted, plain_string_ok, render_scalar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def render_key(key: Any) -> str:
    if key.__class__ is str:
        return key if plain_string_ok(key) else double_quoted(key)
    return render_scalar(key)


def _is_encrypted_comment(comment: Comment) -> bool:
    return comment.text.startswith(ENC_PREFIX) and comment.text.endswith("type:comment]")


class _Emitter:
    def __init__(self, indent: int) -> None:
        self.step = " " * max(indent, 1)
        self.lines: list[str] = []

    def mapping(self, node: dict[Any, Any], indent: str) -> None:
        for key, value in node.items():
            if key.__class__ is Comment:
                self.lines.append(f"{indent}#{key.text}")
                continue
            head = f"{indent}{render_key(key)}:"
            self.value(head, value, indent, in_sequence=False)

    def sequence(self, node: list[Any], indent: str) -> None:
        for item in node:
            if item.__class__ is Comment:
                if _is_encrypted_comment(item):
                    # matches sops: an encrypted comment in a list is written as an element
                    self.lines.append(f"{indent}- {item.text}")
                else:
                    self.lines.append(f"{indent}#{item.text}")
                continue
            self.value(f"{indent}-", item, indent, in_sequence=True)

    def value(self, head: str, value: Any, indent: str, in_sequence: bool) -> None:
        cls = value.__class__
        inner = indent + self.step
        if cls is dict:
            if not any(k.__class__ is not Comment for k in value) and not value:
                self.lines.append(head + " {}")
                return
            if in_sequence:
                self._compact(head, indent, value)
                return
            self.lines.append(head)
            self.mapping(value, inner)
            return
        if cls is list:
            if not value:
                self.lines.append(head + " []")
                return
            if in_sequence:
                start = len(self.lines)
                self.sequence(value, indent + "  ")
                first = self.lines[start]
                if not first.lstrip().startswith("#"):
                    self.lines[start] = head + " " + first.lstrip()
                    return
                self.lines.insert(start, head)
                return
            self.lines.append(head)
            self.sequence(value, inner)
            return
        self.lines.append(f"{head} {render_scalar(value, indent=indent + '  ' if in_sequence else inner)}")

    def _compact(self, head: str, indent: str, value: dict[Any, Any]) -> None:
        """A mapping inside a sequence: ``- key: value`` with the rest aligned under it."""
        start = len(self.lines)
        inner = indent + "  "
        self.mapping(value, inner)
        if start < len(self.lines):
            first = self.lines[start]
            if first.startswith(inner) and not first[len(inner):].startswith("#"):
                self.lines[start] = head + " " + first[len(inner):]
                return
        self.lines.insert(start, head)


def emit_document(tree: dict[Any, Any], indent: int = 4) -> str:
    """One YAML document (no ``---``), ending with a newline; ``{}`` for an empty one."""
    emitter = _Emitter(indent)
    emitter.mapping(tree, "")
    if not emitter.lines:
        return "{}\n"
    return "\n".join(emitter.lines) + "\n"


def emit_documents(trees: list[dict[Any, Any]], indent: int = 4) -> str:
    return "---\n".join(emit_document(tree, indent) for tree in trees)


def emit_value(value: Any, indent: int = 4) -> str:
    """Any value as YAML (for ``--extract`` of a subtree)."""
    if value.__class__ is dict:
        return emit_document(value, indent)
    if value.__class__ is list:
        emitter = _Emitter(indent)
        emitter.sequence(value, "")
        return "\n".join(emitter.lines) + "\n" if emitter.lines else "[]\n"
    return render_scalar(value, indent="") + "\n"


def emit_flow(value: Any) -> str:
    """A value in flow style on one line (aliases expanded inside block text)."""
    cls = value.__class__
    if cls is dict:
        items = [f"{render_key(k)}: {emit_flow(v)}" for k, v in value.items() if k.__class__ is not Comment]
        return "{" + ", ".join(items) + "}"
    if cls is list:
        return "[" + ", ".join(emit_flow(v) for v in value if v.__class__ is not Comment) + "]"
    return render_scalar(value, flow=True)
