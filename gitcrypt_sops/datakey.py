"""The data key: wrapped for every recipient, recovered from the first that works.

With one key group every recipient wraps the whole key.  With several groups the
key is split with Shamir's scheme, each group wrapping its share, and any
``shamir_threshold`` groups recover it.  When recovery fails, one error lists every
recipient tried and why.
"""

from __future__ import annotations

import os

from . import providers, shamir
from .cipher import DataKey
from .errors import DataKeyError, NoEncryptionKey, SopsError
from .metadata import Metadata
from .providers.base import Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .metadata import Entry

#: sops's default decryption order: age first, then pgp, then the rest in file order
DEFAULT_DECRYPTION_ORDER = ("age", "pgp")


def wrap(key: DataKey, groups: Sequence[Sequence[Recipient]], threshold: int = 0) -> tuple[list[list[Entry]], int]:
    """Wrap ``key`` for every recipient: the key groups of the metadata and the threshold."""
    groups = [group for group in groups if group]
    if not groups:
        raise NoEncryptionKey(
            "no recipients: give --age (or another key flag) or a creation rule in .sops-policy.yaml/.sops.yaml"
        )
    if len(groups) == 1:
        secrets = [key.reveal()]
        threshold = 0
    else:
        threshold = threshold or len(groups)
        if not 2 <= threshold <= len(groups):
            # matches sops: "threshold must be at least 2" (a threshold of 1 makes files sops cannot read)
            raise SopsError(f"shamir threshold {threshold} must be between 2 and the number of key groups ({len(groups)})")
        secrets = shamir.split(key.reveal(), len(groups), threshold)
    wrapped: list[list[Entry]] = []
    for group, secret in zip(groups, secrets):
        entries: list[Entry] = []
        for recipient in group:
            provider = providers.get(recipient.type_id)
            if provider is None:
                raise SopsError(_missing_provider(recipient.type_id))
            entries.append((recipient.type_id, provider.wrap(secret, recipient)))
        wrapped.append(entries)
    return wrapped, threshold


def _missing_provider(type_id: str) -> str:
    hint = providers.INSTALL_HINTS.get(type_id)
    return f"no provider installed for '{type_id}' keys" + (f" ({hint})" if hint else "")


def decryption_order(env: dict[str, str] | None = None, explicit: str | None = None) -> tuple[str, ...]:
    text = explicit if explicit is not None else (env if env is not None else os.environ).get("SOPS_DECRYPTION_ORDER", "")
    order = tuple(part.strip() for part in text.split(",") if part.strip())
    return order or DEFAULT_DECRYPTION_ORDER


def _ordered(group: list[Entry], order: Sequence[str]) -> list[Entry]:
    rank = {type_id: index for index, type_id in enumerate(order)}
    return sorted(group, key=lambda entry: rank.get(entry[0], len(rank)))


def _describe(type_id: str, entry: dict[str, object]) -> str:
    provider = providers.get(type_id)
    if provider is not None:
        try:
            return str(provider.recipient_of(entry))
        except Exception:  # a malformed entry still gets a line in the report
            pass
    for field in ("recipient", "arn", "resource_id", "fp", "key_name", "vault_url", "key_id"):
        if field in entry:
            return f"{type_id}:{entry[field]}"
    return type_id


def _unwrap_group(group: list[Entry], order: Sequence[str], failures: list[str],
                  used: list[str] | None = None) -> bytes | None:
    for type_id, entry in _ordered(group, order):
        provider = providers.get(type_id)
        if provider is None:
            failures.append(f"{_describe(type_id, entry)}: {_missing_provider(type_id)}")
            continue
        try:
            secret = provider.unwrap(entry)
            if used is not None:
                used.append(_describe(type_id, entry))
            return secret
        except SopsError as error:
            failures.append(f"{_describe(type_id, entry)}: {error.message}")
        except Exception as error:  # a provider bug must not leak a traceback or data
            failures.append(f"{_describe(type_id, entry)}: {type(error).__name__}")
    return None


def unwrap(meta: Metadata, order: Sequence[str] = DEFAULT_DECRYPTION_ORDER, *,
           used: list[str] | None = None) -> DataKey:
    """Recover the data key; DataKeyError listing every recipient tried when none works.

    ``used``, when given, receives the recipient (``type:ident``) that unwrapped the
    key, one per key group whose share was used.
    """
    failures: list[str] = []
    groups = meta.key_groups
    if len(groups) == 1:
        secret = _unwrap_group(groups[0], order, failures, used)
        if secret is not None and len(secret) == 32:
            return DataKey(secret)
        if secret is not None:
            failures.append("a recipient returned a key of the wrong length")
    else:
        threshold = meta.shamir_threshold or len(groups)
        shares: list[bytes] = []
        for index, group in enumerate(groups):
            share = _unwrap_group(group, order, failures, used)
            if share is None:
                continue
            shares.append(share)
            if len(shares) >= threshold:
                break
        if len(shares) >= threshold:
            try:
                secret = shares[0] if threshold == 1 else shamir.combine(shares)
            except ValueError:
                raise DataKeyError("the key-group shares do not combine into a data key") from None
            if len(secret) == 32:
                return DataKey(secret)
        failures.append(f"recovered {len(shares)} of the {threshold} key-group shares needed")
    raise DataKeyError(
        "could not recover the data key; tried: " + "; ".join(failures),
        hint="check that a matching identity or credentials are available (for age: SOPS_AGE_KEY_FILE)",
    )
