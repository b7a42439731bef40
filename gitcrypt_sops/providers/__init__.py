"""Registry of key providers, found through the entry-point group ``gitcrypt_sops.providers``.

Built-in providers are listed here by module path so that looking one up costs no
``importlib.metadata`` scan; third-party providers are found through entry points,
which are read only when a type id is not built in.  A provider module is imported
only when a file or a flag needs it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .base import KeyProvider

ENTRY_POINT_GROUP = "gitcrypt_sops.providers"

#: type_id -> "module:Class" of the providers that ship with the tool
BUILTIN: dict[str, str] = {
    "age": "gitcrypt_sops.providers.age:AgeProvider",
    "hc_vault": "gitcrypt_sops.providers.vault:VaultTransitProvider",
    "pgp": "gitcrypt_sops.providers.pgp:PgpProvider",
    "kms": "gitcrypt_sops.providers.awskms:AwsKmsProvider",
    "gcp_kms": "gitcrypt_sops.providers.gcpkms:GcpKmsProvider",
}

#: the order sops lists key kinds in a creation rule and in ``key_groups``
SOPS_ORDER: tuple[str, ...] = ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "age")

#: creation-rule key (single group form, comma-separated string or list) -> type_id
RULE_KEYS: dict[str, str] = {
    "pgp": "pgp",
    "kms": "kms",
    "gcp_kms": "gcp_kms",
    "azure_keyvault": "azure_kv",
    "hc_vault_transit_uri": "hc_vault",
    "age": "age",
}

#: key of a ``key_groups`` element (always a list) -> type_id
GROUP_KEYS: dict[str, str] = {
    "pgp": "pgp",
    "kms": "kms",
    "gcp_kms": "gcp_kms",
    "azure_keyvault": "azure_kv",
    "hc_vault": "hc_vault",
    "age": "age",
}

#: the pip extra that installs each optional provider's SDK
INSTALL_HINTS: dict[str, str] = {
    "kms": "pip install 'gitcrypt-sops[aws]'",
    "gcp_kms": "pip install 'gitcrypt-sops[gcp]'",
    "hc_vault": "pip install 'gitcrypt-sops[vault]'",
    "pgp": "pip install 'gitcrypt-sops[pgp]'",
}

_loaded: dict[str, KeyProvider] = {}


def _entry_point_targets() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(target: str) -> KeyProvider:
    module_name, _, class_name = target.partition(":")
    __import__(module_name)
    module = sys.modules[module_name]
    provider: KeyProvider = getattr(module, class_name)()
    return provider


def get(type_id: str) -> KeyProvider | None:
    """The provider for a sops metadata key, or None when none is installed."""
    provider = _loaded.get(type_id)
    if provider is not None:
        return provider
    target = BUILTIN.get(type_id)
    if target is None:
        target = _entry_point_targets().get(type_id)
    if target is None:
        return None
    try:
        provider = _load(target)
    except ImportError:
        return None
    _loaded[type_id] = provider
    return provider


def known_type_ids() -> list[str]:
    """Every type id that has a provider, built in or installed."""
    return sorted(set(BUILTIN) | set(_entry_point_targets()))
