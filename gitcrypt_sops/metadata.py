"""The ``sops`` metadata block <-> :class:`Metadata`.

Reading accepts any field order, missing optional fields and ``null``/``[]`` for
empty lists (both sops 3.11 and 3.13 layouts).  Writing uses sops 3.11.0's field
order.  Entries of key types with no installed provider are kept verbatim so a
file round-trips even when this machine cannot use every recipient.
"""

from __future__ import annotations

from .codec import canonical_rfc3339_seconds, go_time_text
from .dates import datetime
from .errors import ConflictingParameters, SopsError
from .walk import RULE_FIELDS, EncryptionRule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Entry = tuple[str, dict[str, Any]]

#: the version string we write: the sops format release we are compatible with
SOPS_FORMAT_VERSION = "3.11.0"

#: key lists written before ``lastmodified`` (sops 3.11 order); ``pgp`` comes after ``mac``
KEY_TYPES_BEFORE = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
KEY_TYPES_AFTER = ("pgp",)
KNOWN_KEY_TYPES = frozenset(KEY_TYPES_BEFORE + KEY_TYPES_AFTER)
#: order of key lists inside a ``key_groups`` element (3.11: hc_vault and age always present)
GROUP_ORDER = ("pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age")
GROUP_ALWAYS = ("hc_vault", "age")

#: what sops's version pattern ``^v?(\d+)\.(\d+)\.(\d+)`` asks of a version's start
SEMVER_PATTERN = r"^v?(\d+)\.(\d+)\.(\d+)"


def starts_semver(text: str) -> bool:
    """Whether :data:`SEMVER_PATTERN` matches ``text``, read without re (``\\d`` is str.isdecimal)."""
    body = text[1:] if text[:1] == "v" else text
    parts = body.split(".", 2)
    return (len(parts) == 3 and parts[0].isdecimal() and parts[1].isdecimal()
            and parts[2][:1].isdecimal())


class MetadataError(SopsError):
    """The ``sops`` block is missing a field or has a malformed one (sops exits 1)."""

    exit_code = 1


class Metadata:
    """The ``sops`` block: key groups, MAC, rule, version; unknown fields kept in ``extra``."""

    __slots__ = ("key_groups", "lastmodified", "mac", "rule", "version", "shamir_threshold", "extra", "write_rule")

    def __init__(
        self, key_groups: list[list[Entry]], lastmodified: str, mac: str, rule: EncryptionRule,
        version: str = SOPS_FORMAT_VERSION, shamir_threshold: int = 0, extra: dict[str, Any] | None = None,
        write_rule: bool = True,
    ) -> None:
        self.key_groups = key_groups
        self.lastmodified = lastmodified
        self.mac = mac
        self.rule = rule
        self.version = version
        self.shamir_threshold = shamir_threshold
        #: unknown top-level fields, kept verbatim
        self.extra: dict[str, Any] = extra if extra is not None else {}
        #: False for stores that never write a rule (binary)
        self.write_rule = write_rule

    @property
    def mac_aad(self) -> str:
        return canonical_rfc3339_seconds(self.lastmodified)

    def recipients(self) -> list[Entry]:
        return [entry for group in self.key_groups for entry in group]


def _as_text(value: Any, name: str) -> str:
    if isinstance(value, datetime):
        return go_time_text(value)
    if isinstance(value, str):
        return value
    raise MetadataError(f"sops metadata field '{name}' must be a string")


def _entries(type_id: str, value: Any) -> list[Entry]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MetadataError(f"sops metadata field '{type_id}' must be a list")
    out: list[Entry] = []
    for item in value:
        if not isinstance(item, dict):
            raise MetadataError(f"an entry of sops metadata field '{type_id}' is not a mapping")
        entry = {k: (go_time_text(v) if isinstance(v, datetime) else v) for k, v in item.items()}
        out.append((type_id, entry))
    return out


def check_version(version: Any) -> str:
    """Validate ``version`` as sops does: semver (optional ``v``) or anything starting ``1.``."""
    if version is None or version == "":
        raise MetadataError("sops metadata has no version")
    text = str(version)
    if text.startswith("1.") or starts_semver(text):
        return text
    raise MetadataError("sops metadata version is not MAJOR.MINOR.PATCH")


def from_tree(block: Any) -> Metadata:
    """Parse the ``sops`` mapping of an encrypted file."""
    if not isinstance(block, dict):
        raise MetadataError("sops metadata is not a mapping")
    if "lastmodified" not in block or block["lastmodified"] in (None, ""):
        raise MetadataError("sops metadata has no lastmodified timestamp")
    lastmodified = _as_text(block["lastmodified"], "lastmodified")
    try:
        canonical_rfc3339_seconds(lastmodified)
    except ValueError:
        raise MetadataError("sops metadata lastmodified is not an RFC 3339 timestamp") from None
    version = check_version(block.get("version"))
    mac = block.get("mac") or ""
    if not isinstance(mac, str):
        raise MetadataError("sops metadata field 'mac' must be a string")
    try:
        rule = EncryptionRule.from_fields(
            {name: block.get(name) for name in RULE_FIELDS + ("mac_only_encrypted",)}
        )
    except ConflictingParameters as error:
        raise MetadataError(str(error)) from None
    mac_only = block.get("mac_only_encrypted")
    if isinstance(mac_only, str):  # dotenv/INI store it as text
        rule = EncryptionRule(rule.kind, rule.value, mac_only == "true")
    single: list[Entry] = []
    extra: dict[str, Any] = {}
    consumed = set(RULE_FIELDS) | {"lastmodified", "mac", "version", "mac_only_encrypted", "key_groups", "shamir_threshold"}
    for key, value in block.items():
        if key in consumed:
            continue
        if key in KNOWN_KEY_TYPES or _looks_like_key_list(value):
            single.extend(_entries(key, value))
        else:
            extra[key] = value
    groups: list[list[Entry]]
    if single:
        groups = [single]  # matches sops: top-level keys win over key_groups
    else:
        raw_groups = block.get("key_groups") or []
        if not isinstance(raw_groups, list):
            raise MetadataError("sops metadata field 'key_groups' must be a list")
        groups = []
        for raw in raw_groups:
            if not isinstance(raw, dict):
                raise MetadataError("a key group in sops metadata is not a mapping")
            group: list[Entry] = []
            for key, value in raw.items():
                group.extend(_entries(key, value))
            groups.append(group)
    if not any(groups):
        raise MetadataError("no keys found in the sops metadata")
    threshold_raw = block.get("shamir_threshold") or 0
    try:
        threshold = int(float(threshold_raw)) if isinstance(threshold_raw, str) else int(threshold_raw)
    except (TypeError, ValueError):
        raise MetadataError("sops metadata shamir_threshold is not a number") from None
    return Metadata(groups, lastmodified, mac, rule, version, threshold, extra)


def _looks_like_key_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "enc" in v for v in value)


def to_tree(meta: Metadata, *, empty_list: Any = None) -> dict[str, Any]:
    """The ``sops`` mapping in sops 3.11.0 field order.

    ``empty_list`` is what an always-present but empty key list inside a key group is
    written as: ``[]`` in YAML, ``None`` in JSON (matches sops 3.11).
    """
    out: dict[str, Any] = {}
    single = len(meta.key_groups) <= 1
    by_type: dict[str, list[dict[str, Any]]] = {}
    if single:
        for type_id, entry in meta.key_groups[0] if meta.key_groups else []:
            by_type.setdefault(type_id, []).append(entry)
    else:
        out["shamir_threshold"] = meta.shamir_threshold or len(meta.key_groups)
        groups_out = []
        for group in meta.key_groups:
            grouped: dict[str, list[dict[str, Any]]] = {}
            for type_id, entry in group:
                grouped.setdefault(type_id, []).append(entry)
            group_out: dict[str, Any] = {}
            for type_id in GROUP_ORDER:
                if grouped.get(type_id):
                    group_out[type_id] = grouped.pop(type_id)
                elif type_id in GROUP_ALWAYS:
                    group_out[type_id] = empty_list
            group_out.update(grouped)
            groups_out.append(group_out)
        out["key_groups"] = groups_out
    for type_id in KEY_TYPES_BEFORE:
        if by_type.get(type_id):
            out[type_id] = by_type.pop(type_id)
    pgp = by_type.pop("pgp", None)
    for type_id, entries in by_type.items():  # third-party key types
        out[type_id] = entries
    out["lastmodified"] = meta.lastmodified
    out["mac"] = meta.mac
    if pgp:
        out["pgp"] = pgp
    if meta.write_rule and meta.rule.kind:
        out[meta.rule.kind] = meta.rule.value
    if meta.rule.mac_only_encrypted:
        out["mac_only_encrypted"] = True
    out.update(meta.extra)
    out["version"] = meta.version
    return out
