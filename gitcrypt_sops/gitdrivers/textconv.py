"""The diff driver (git ``textconv``): what ``git diff`` and ``git log -p`` show for a file.

* A key holder sees the decrypted file (its own layout) followed by a short
  summary of the metadata (recipients, encryption rule), so recipient changes
  show up too.
* Anyone else sees one line per value: plaintext values as they are, encrypted
  values as a fingerprint of their ciphertext.  Because unchanged values keep
  their ciphertext, the diff shows exactly which keys were added, removed or
  changed, without revealing anything.
* Files that are not sops files pass through unchanged.

Set ``GITCRYPT_SOPS_TEXTCONV=keyless`` to get the keyless view even with keys.
Nothing here may make ``git diff`` fail: every error ends in a readable view and
exit status 0.  git must not cache textconv output (``diff.sops.cachetextconv``
would store plaintext in ``refs/notes/textconv``); :mod:`.install` never sets it.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import MacMismatch, SopsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["keyless_view", "textconv"]

_HEADER = "# gitcrypt-sops: encrypted values shown by ciphertext fingerprint (no key used)\n"


def textconv(path: str) -> bytes:
    """The text git should diff for the file at ``path``; never raises."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return f"# gitcrypt-sops: cannot read the file ({error.strerror})\n".encode()
    try:
        return render(data, path)
    except Exception:  # noqa: BLE001 - a diff must never fail: show the bytes as they are
        return data


def render(data: bytes, path: str) -> bytes:
    from .. import api
    from ..policy import foreign_tool
    from ..stores import format_for

    tool = foreign_tool(data)
    if tool is not None:
        return f"# encrypted by {tool} (not sops), {len(data)} bytes, sha256 {_digest(data)}\n".encode()
    fmt = format_for(path)  # git keeps the name's extension on its temporary files
    try:
        parsed = api.parse(data, fmt, encrypted=True)
    except (SopsError, ValueError, RecursionError):
        return data
    if not parsed.has_metadata:
        return data
    meta = api.read_metadata(parsed)
    if os.environ.get("GITCRYPT_SOPS_TEXTCONV", "").lower() != "keyless":
        try:
            return _decrypted_view(data, fmt, meta)
        except SopsError:
            pass
    return keyless_view(parsed.documents, meta)


def _decrypted_view(data: bytes, fmt: str, meta: Any) -> bytes:
    from .. import api, datakey

    order = datakey.decryption_order()
    warning = b""
    try:
        plain = api.decrypt_bytes(data, fmt, decryption_order=order)
    except MacMismatch:
        warning = b"# gitcrypt-sops: WARNING: MAC mismatch, the file was altered outside sops\n"
        plain = api.decrypt_bytes(data, fmt, decryption_order=order, ignore_mac=True)
    if plain and not plain.endswith(b"\n"):
        plain += b"\n"
    return warning + plain + _summary(meta).encode()


def _summary(meta: Any) -> str:
    from ..policy import entry_ident

    lines = ["# --- sops metadata (not part of the data) ---"]
    for number, group in enumerate(meta.key_groups):
        label = f"group {number + 1} " if len(meta.key_groups) > 1 else ""
        for type_id, entry in sorted(group, key=lambda item: (item[0], entry_ident(*item))):
            lines.append(f"# {label}recipient {type_id}: {entry_ident(type_id, entry)}")
    if meta.shamir_threshold and len(meta.key_groups) > 1:
        lines.append(f"# shamir_threshold: {meta.shamir_threshold}")
    if meta.rule.kind:
        lines.append(f"# {meta.rule.kind}: {meta.rule.value}")
    if meta.rule.mac_only_encrypted:
        lines.append("# mac_only_encrypted: true")
    return "\n".join(lines) + "\n"


def _digest(value: str | bytes) -> str:
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return hashlib.sha256(raw).hexdigest()[:12]


def keyless_view(documents: list[dict[Any, Any]], meta: Any) -> bytes:
    """One line per leaf: ``["path"]: value`` or ``<encrypted fingerprint>``; then the metadata."""
    from ..codec import is_enc
    from ..tree import Comment

    lines: list[str] = [_HEADER.rstrip("\n")]

    def path_text(steps: list[str | int]) -> str:
        return "".join(f"[{json.dumps(step, ensure_ascii=False)}]" for step in steps) or "[]"

    def leaf(value: Any) -> str:
        if is_enc(value):
            return f"<encrypted {_digest(value)}>"
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if value.__class__ is str:
            return json.dumps(value, ensure_ascii=False)
        return json.dumps(value, default=str)

    def walk(node: Any, steps: list[str | int]) -> None:
        cls = node.__class__
        if cls is dict:
            if not node:
                lines.append(f"{path_text(steps)}: {{}}")
            for key, value in node.items():
                if key.__class__ is Comment:
                    lines.append(f"{path_text(steps)} #{_comment(key.text)}")
                    continue
                walk(value, steps + [key])
        elif cls is list:
            if not node:
                lines.append(f"{path_text(steps)}: []")
            index = 0
            for value in node:
                if value.__class__ is Comment:
                    lines.append(f"{path_text(steps)} #{_comment(value.text)}")
                    continue
                walk(value, steps + [index])
                index += 1
        else:
            lines.append(f"{path_text(steps)}: {leaf(node)}")

    for number, document in enumerate(documents):
        if len(documents) > 1:
            lines.append(f"--- document {number + 1}")
        walk(document, [])
    return ("\n".join(lines) + "\n" + _summary(meta)).encode("utf-8", "surrogateescape")


def _comment(text: str) -> str:
    from ..codec import is_enc

    return f" <encrypted comment {_digest(text)}>" if is_enc(text) else text
