"""Recipient changes on encrypted files: ``rotate``, ``updatekeys`` and ``groups add/delete``.

Every operation here decrypts the file (the MAC is checked, so a tampered file is
never re-keyed), decides the new key groups as a :class:`Plan`, then encrypts the
same values again through :func:`gitcrypt_sops.api.reencrypt`, which keeps the
file's layout and every unchanged value's IV.

The data key is either kept or rotated:

* **kept** (recipients only added, a threshold changed, ``--no-rotate``): entries of
  recipients that stay are kept verbatim and only new recipients are wrapped, so
  the values' ciphertext is byte-identical and no other recipient's credentials are
  needed.  When the key-group layout changes (a group added or deleted, a new
  threshold, or a group whose share cannot be recovered here) the same key is split
  again and wrapped for every recipient, as sops does.
* **rotated** (``rotate``, and by default whenever a recipient is removed): a new
  data key is wrapped for every recipient; values keep their IV (same ``iv:``, new
  ``data:``/``tag:``), as sops does.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import api, datakey, providers
from .cipher import DataKey
from .errors import NoEncryptionKey, SopsError, UsageError
from .metadata import Metadata
from .providers.base import KeyProvider, Recipient
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .metadata import Entry

    #: one place in a new key group: an existing entry kept as it is, or a recipient to wrap for
    Slot = Entry | Recipient

__all__ = [
    "GroupDiff",
    "Plan",
    "apply",
    "decrypt_for_rekey",
    "label",
    "plan_add_group",
    "plan_delete_group",
    "plan_rotate",
    "plan_update",
    "read_metadata",
]



class GroupDiff(Record):
    """The recipients of one key group before and after a change, as labels (``age:age1…``)."""

    kept: list[str]
    added: list[str]
    removed: list[str]
    #: "" for a group that stays, "new" or "deleted"
    note: str = ""
    #: kept because a creation rule cannot name keys of their type (``updatekeys``)
    carried: tuple[str, ...] = ()


class Plan:
    """The key groups a file will have, and whether its data key is rotated."""

    __slots__ = ("diffs", "groups", "not_found", "old_threshold", "rotate", "threshold")

    def __init__(self, groups: list[list[Slot]], threshold: int, old_threshold: int, diffs: list[GroupDiff],
                 rotate: bool, not_found: list[str] | None = None) -> None:
        self.groups = groups
        #: the effective threshold (0 with one group, else 1..len(groups))
        self.threshold = threshold
        self.old_threshold = old_threshold
        self.diffs = diffs
        self.rotate = rotate
        #: recipients asked to be removed that the file does not have
        self.not_found = not_found if not_found is not None else []

    @property
    def removes(self) -> bool:
        return any(diff.removed for diff in self.diffs)

    @property
    def changed(self) -> bool:
        return self.threshold != self.old_threshold or any(diff.added or diff.removed for diff in self.diffs)

    def describe(self) -> list[str]:
        """The change as lines for a person: every group's recipients, ``+`` added, ``-`` removed."""
        lines: list[str] = []
        for index, diff in enumerate(self.diffs):
            lines.append(f"key group {index + 1}" + (f" ({diff.note})" if diff.note else "") + ":")
            lines.extend(f"    {name}" for name in diff.kept if name not in diff.carried)
            lines.extend(f"    {name} (kept: creation rules cannot list this key type)" for name in diff.carried)
            lines.extend(f"  + {name}" for name in diff.added)
            lines.extend(f"  - {name}" for name in diff.removed)
        if self.threshold != self.old_threshold:
            lines.append(f"shamir threshold: {_threshold_text(self.old_threshold)} -> {_threshold_text(self.threshold)}")
        return lines


def _threshold_text(threshold: int) -> str:
    return "none (one key group)" if threshold == 0 else str(threshold)


def effective_threshold(threshold: int, groups: int) -> int:
    """The threshold a file with ``groups`` key groups really has (0 for one group, 0 means all)."""
    if groups <= 1:
        return 0
    return threshold or groups


# -- reading --------------------------------------------------------------------------


def read_metadata(data: bytes, fmt: str) -> tuple[api.Parsed, Metadata]:
    """Parse an encrypted file and read its metadata (no key needed)."""
    parsed = api.parse(data, fmt, encrypted=True)
    return parsed, api.read_metadata(parsed)


def decrypt_for_rekey(
    parsed: api.Parsed, output_fmt: str | None = None, *, ignore_mac: bool = False,
    decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER,
) -> api.Decrypted:
    """Decrypt a parsed file keeping what :func:`api.reencrypt` needs to keep a YAML layout."""
    fmt = output_fmt or parsed.fmt
    keep = fmt == parsed.fmt and (
        (fmt == "yaml" and parsed.yaml_file is not None and parsed.yaml_file.spliceable)
        or (fmt == "toml" and getattr(parsed, "toml_file", None) is not None))
    return api.decrypt_parsed(parsed, ignore_mac=ignore_mac, decryption_order=decryption_order, keep_outputs=keep)


def label(slot: Slot) -> str:
    """How a recipient is shown and compared: ``type:ident`` (sops compares keys the same way)."""
    if isinstance(slot, Recipient):
        return str(slot)
    type_id, entry = slot
    return datakey._describe(type_id, entry)  # the same label the failure report uses


def _recipient(slot: Slot) -> Recipient:
    if isinstance(slot, Recipient):
        return slot
    type_id, entry = slot
    provider = providers.get(type_id)
    if provider is None:
        hint = providers.INSTALL_HINTS.get(type_id)
        raise SopsError(
            f"cannot wrap the data key for {label(slot)}: no provider installed for '{type_id}' keys"
            + (f" ({hint})" if hint else "")
        )
    return provider.recipient_of(entry)


# -- plans ----------------------------------------------------------------------------


def _diff(old: Sequence[Slot], new: Sequence[Slot], note: str = "") -> GroupDiff:
    old_labels = [label(slot) for slot in old]
    new_labels = [label(slot) for slot in new]
    kept = [name for name in new_labels if name in old_labels]
    added = [name for name in new_labels if name not in old_labels]
    removed = [name for name in old_labels if name not in new_labels]
    return GroupDiff(kept, added, removed, note)


def _check_groups(groups: Sequence[Sequence[Slot]]) -> None:
    if not any(groups):
        raise NoEncryptionKey("the change would leave the file without any recipient")
    for index, group in enumerate(groups):
        if not group:
            raise UsageError(f"the change would leave key group {index + 1} without recipients "
                             "(delete the group with 'groups delete')")


def _unique(group: Sequence[Slot]) -> list[Slot]:
    seen: set[str] = set()
    out: list[Slot] = []
    for slot in group:
        name = label(slot)
        if name not in seen:
            seen.add(name)
            out.append(slot)
    return out


def plan_rotate(meta: Metadata, add: Sequence[Recipient] = (), remove: Sequence[str] = ()) -> Plan:
    """``rotate``: a new data key; ``add`` joins the first group, ``remove`` (labels) leaves every group.

    Matches sops: added recipients go to the first key group, removed ones are taken
    out of every group.
    """
    old_groups: list[list[Slot]] = [list(group) for group in meta.key_groups]
    groups = [list(group) for group in old_groups]
    groups[0] = _unique(groups[0] + list(add))
    drop = set(remove)
    found = {label(slot) for group in groups for slot in group}
    groups = [[slot for slot in group if label(slot) not in drop] for group in groups]
    _check_groups(groups)
    threshold = effective_threshold(meta.shamir_threshold, len(groups))
    diffs = [_diff(old, new) for old, new in zip(old_groups, groups)]
    return Plan(groups, threshold, threshold, diffs, rotate=True,
                not_found=[name for name in remove if name not in found])


#: key types a creation rule can name (the rest come from third-party providers)
RULE_KEY_TYPES = frozenset(providers.RULE_KEYS.values()) | frozenset(providers.GROUP_KEYS.values()) | {"hckms"}


def plan_update(meta: Metadata, rule_groups: Sequence[Sequence[Recipient]], rule_threshold: int = 0,
                rotate: bool | None = None) -> Plan:
    """``updatekeys``: the key groups of the creation rule, compared group by group with the file's.

    Recipients present in both keep their entry.  Entries of key types a creation
    rule cannot name (third-party providers) stay in their group, verbatim.
    ``rotate`` None rotates the data key exactly when a recipient (or group) is
    removed.  The threshold is the rule's, else the file's, capped at the number of
    groups (matches sops).
    """
    new_groups = [list(group) for group in rule_groups if group]
    if not new_groups:
        raise NoEncryptionKey("the creation rule for this file lists no recipients")
    old_groups: list[list[Slot]] = [list(group) for group in meta.key_groups]
    groups: list[list[Slot]] = []
    diffs: list[GroupDiff] = []
    for index in range(max(len(old_groups), len(new_groups))):
        old = old_groups[index] if index < len(old_groups) else []
        new: list[Slot] = _unique(new_groups[index]) if index < len(new_groups) else []
        by_label = {label(slot): slot for slot in old}
        slots = [by_label.get(label(slot), slot) for slot in new]
        carried: list[Slot] = []
        if index < len(new_groups):
            carried = [slot for slot in old if not isinstance(slot, Recipient) and slot[0] not in RULE_KEY_TYPES]
            slots = _unique(slots + carried)
        note = "new" if index >= len(old_groups) else "deleted" if index >= len(new_groups) else ""
        diffs.append(_diff(old, slots, note)._replace(carried=tuple(label(slot) for slot in carried)))
        if index < len(new_groups):
            groups.append(slots)
    wanted = rule_threshold or meta.shamir_threshold
    threshold = effective_threshold(min(wanted, len(groups)) if wanted else 0, len(groups))
    old_threshold = effective_threshold(meta.shamir_threshold, len(old_groups))
    _check_threshold(threshold, len(groups))
    plan = Plan(groups, threshold, old_threshold, diffs, rotate=False)
    plan.rotate = plan.removes if rotate is None else rotate
    return plan


def plan_add_group(meta: Metadata, recipients: Sequence[Recipient], threshold: int = 0) -> Plan:
    """``groups add``: a new last group; the threshold is ``threshold``, else the file's (0: all groups)."""
    if not recipients:
        raise NoEncryptionKey("the new key group has no recipients: give --age (or another key flag)")
    old_groups: list[list[Slot]] = [list(group) for group in meta.key_groups]
    groups = old_groups + [_unique(list(recipients))]
    new_threshold = effective_threshold(threshold or meta.shamir_threshold, len(groups))
    _check_threshold(new_threshold, len(groups))
    diffs = [_diff(old, old) for old in old_groups] + [_diff([], groups[-1], "new")]
    return Plan(groups, new_threshold, effective_threshold(meta.shamir_threshold, len(old_groups)), diffs, False)


def plan_delete_group(meta: Metadata, index: int, threshold: int = 0, rotate: bool = True) -> Plan:
    """``groups delete``: remove group ``index`` (0-based, as sops); rotates the data key unless ``rotate`` is False."""
    old_groups: list[list[Slot]] = [list(group) for group in meta.key_groups]
    if not 0 <= index < len(old_groups):
        raise UsageError(f"no key group {index}: the file has groups 0 to {len(old_groups) - 1}")
    if len(old_groups) == 1:
        raise UsageError("cannot delete the only key group of the file")
    groups = old_groups[:index] + old_groups[index + 1:]
    wanted = threshold or meta.shamir_threshold
    if wanted > len(groups) > 1:
        # matches sops: the stored (or given) threshold is not lowered silently (one group needs none)
        raise SopsError(f"deleting key group {index} leaves {len(groups)} group(s), fewer than the shamir "
                        f"threshold {wanted}; pass --shamir-secret-sharing-threshold")
    new_threshold = effective_threshold(wanted, len(groups))
    _check_threshold(new_threshold, len(groups))
    diffs = [_diff(old, old) for old in groups]
    diffs.insert(index, _diff(old_groups[index], [], "deleted"))
    return Plan(groups, new_threshold, effective_threshold(meta.shamir_threshold, len(old_groups)), diffs, rotate)


def _check_threshold(threshold: int, groups: int) -> None:
    # matches sops: it splits and combines with 2 <= threshold; a file with threshold 1 would not decrypt there
    if groups > 1 and not 2 <= threshold <= groups:
        raise UsageError(f"shamir threshold {threshold} must be between 2 and the number of key groups ({groups}); "
                         "for 'any group' use a single key group")


# -- applying -------------------------------------------------------------------------


def apply(
    decrypted: api.Decrypted, plan: Plan, *, output_fmt: str | None = None,
    decryption_order: Sequence[str] = datakey.DEFAULT_DECRYPTION_ORDER, yaml_indent: int = 4,
    json_indent: int | None = None,
) -> bytes:
    """Encrypt ``decrypted`` again with the plan's key groups (new data key when ``plan.rotate``)."""
    _check_groups(plan.groups)
    _check_threshold(plan.threshold, len(plan.groups))
    if plan.rotate:
        key = DataKey.generate()
        wrapped = datakey.wrap(key, [[_recipient(slot) for slot in group] for group in plan.groups], plan.threshold)
    else:
        key = decrypted.data_key
        wrapped = _wrap_keeping_key(decrypted.metadata, key, plan, decryption_order)
    return api.reencrypt(decrypted, wrapped, data_key=key, output_fmt=output_fmt, yaml_indent=yaml_indent,
                         json_indent=json_indent)


def _wrap_keeping_key(
    meta: Metadata, key: DataKey, plan: Plan, order: Sequence[str]
) -> tuple[list[list[Entry]], int]:
    """Wrap the existing key (or its shares) for the plan's new recipients, keeping other entries."""
    groups = plan.groups
    old_groups = meta.key_groups
    if len(groups) == 1 and len(old_groups) == 1:
        return [_fill(groups[0], key.reveal())], 0  # the entries kept wrap the whole key already
    same_layout = (len(old_groups) == len(groups) > 1
                   and effective_threshold(meta.shamir_threshold, len(old_groups)) == plan.threshold)
    if same_layout:
        wrapped: list[list[Entry]] = []
        for old, group in zip(old_groups, groups):
            if all(not isinstance(slot, Recipient) for slot in group):
                wrapped.append([slot for slot in group if not isinstance(slot, Recipient)])
                continue
            share = _group_secret(old, order)
            if share is None:
                break  # this group's share is not available here: split the key again
            wrapped.append(_fill(group, share))
        else:
            return wrapped, plan.threshold
    # matches sops: a new group layout splits the same data key again for every recipient
    return datakey.wrap(key, [[_recipient(slot) for slot in group] for group in groups], plan.threshold)


def _fill(group: Sequence[Slot], secret: bytes) -> list[Entry]:
    entries: list[Entry] = []
    for slot in group:
        if isinstance(slot, Recipient):
            provider = providers.get(slot.type_id)
            if provider is None:
                raise SopsError(datakey._missing_provider(slot.type_id))
            entries.append((slot.type_id, provider.wrap(secret, slot)))
        else:
            entries.append(slot)
    return entries


def _group_secret(group: Sequence[Entry], order: Sequence[str]) -> bytes | None:
    """One key group's share, from the first of its entries that unwraps here; None if none does."""
    rank = {type_id: index for index, type_id in enumerate(order)}
    for type_id, entry in sorted(group, key=lambda item: rank.get(item[0], len(rank))):
        provider = providers.get(type_id)
        if provider is None:
            continue
        secret = _try_unwrap(provider, entry)
        if secret is not None:
            return secret
    return None


def _try_unwrap(provider: KeyProvider, entry: dict[str, Any]) -> bytes | None:
    try:
        return provider.unwrap(entry)
    except Exception:  # noqa: BLE001 - any failure only means "not this entry": the caller tries the next
        return None

