"""The public Python API: typed functions over the same pipeline as the CLI.

    import gitcrypt_sops as gs
    config = gs.decrypt_file("secrets.enc.yaml")          # -> dict
    password = gs.extract_file("secrets.enc.yaml", '["db"]["password"]')
    gs.encrypt_file("secrets.yaml", recipients=["age1..."], output="secrets.enc.yaml")

Errors are the classes of :mod:`gitcrypt_sops.errors` (each carries the CLI's exit
code); messages never contain secret values.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import api, datakey, paths
from .errors import ConfigError, NoEncryptionKey
from .metadata import Metadata
from .providers.base import Recipient
from .stores import format_for
from .tree import strip_comments
from .walk import EncryptionRule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

PathLike = str | os.PathLike[str]


def _fmt(path: PathLike | None, fmt: str | None) -> str:
    return format_for(os.fspath(path) if path is not None else None, fmt)


def _read(path: PathLike) -> bytes:
    from .fsio import read_input

    return read_input(os.fspath(path))


def decrypt(data: bytes, fmt: str, *, ignore_mac: bool = False,
            decryption_order: Sequence[str] | None = None) -> Any:
    """Decrypt encrypted bytes of format ``fmt`` into plain Python data (MAC verified)."""
    order = tuple(decryption_order) if decryption_order else datakey.decryption_order()
    return api.decrypt_data(data, fmt, ignore_mac=ignore_mac, decryption_order=order).data()


def decrypt_file(path: PathLike, *, fmt: str | None = None, ignore_mac: bool = False,
                 decryption_order: Sequence[str] | None = None) -> Any:
    """Decrypt a file into Python data; the format comes from the name unless ``fmt`` is given."""
    return decrypt(_read(path), _fmt(path, fmt), ignore_mac=ignore_mac, decryption_order=decryption_order)


def extract(data: bytes, fmt: str, path: str | Sequence[str | int], *, ignore_mac: bool = False) -> Any:
    """One value (or subtree) of an encrypted document; ``path`` is ``'["a"][0]'`` or a list of steps."""
    steps = paths.parse(path) if isinstance(path, str) else list(path)
    decrypted = api.decrypt_data(data, fmt, ignore_mac=ignore_mac, decryption_order=datakey.decryption_order())
    return strip_comments(paths.lookup(decrypted.documents[0], steps))


def extract_file(path: PathLike, tree_path: str | Sequence[str | int], *, fmt: str | None = None,
                 ignore_mac: bool = False) -> Any:
    return extract(_read(path), _fmt(path, fmt), tree_path, ignore_mac=ignore_mac)


def _recipients(recipients: Sequence[str | Recipient]) -> list[Recipient]:
    from . import providers

    parsed: list[Recipient] = []
    for recipient in recipients:
        if isinstance(recipient, Recipient):
            parsed.append(recipient)
            continue
        type_id, sep, rest = recipient.partition(":")
        if sep and type_id in providers.BUILTIN or (sep and providers.get(type_id) is not None and type_id != "age"):
            provider = providers.get(type_id)
            text = rest
        else:
            provider, text = providers.get("age"), recipient
        if provider is None:
            raise ConfigError(f"no provider installed for recipient type '{type_id}'")
        parsed.extend(provider.parse_recipients(text))
    return parsed


def _options(recipients: Sequence[str | Recipient] | None, key_groups: Sequence[Sequence[str | Recipient]] | None,
             rule: EncryptionRule | None, shamir_threshold: int, target: PathLike | None) -> api.EncryptOptions:
    if key_groups:
        groups = [_recipients(group) for group in key_groups]
    elif recipients:
        groups = [_recipients(recipients)]
    else:
        groups = _groups_from_config(target)
    if not groups or not any(groups):
        raise NoEncryptionKey("no recipients given and no creation rule applies")
    return api.EncryptOptions(groups, rule or EncryptionRule(), shamir_threshold)


def _groups_from_config(target: PathLike | None) -> list[list[Recipient]]:
    from . import config as config_mod

    config_path = config_mod.find_config(Path(target) if target is not None else None)
    if config_path is None or target is None:
        return []
    rule = config_mod.match_rule(config_mod.load_config(config_path), os.fspath(target))
    return [list(group) for group in rule.key_groups] if rule is not None else []


def encrypt(data: Any, fmt: str = "yaml", *, recipients: Sequence[str | Recipient] | None = None,
            key_groups: Sequence[Sequence[str | Recipient]] | None = None, rule: EncryptionRule | None = None,
            shamir_threshold: int = 0) -> bytes:
    """Encrypt Python data (a dict; a list of dicts for YAML documents) or plaintext bytes.

    ``recipients`` are age public keys (``age1...``, ``ssh-ed25519 ...``) or
    ``type:spec`` strings for other providers (``kms:arn:aws:kms:...``).
    """
    options = _options(recipients, key_groups, rule, shamir_threshold, None)
    if isinstance(data, (bytes, bytearray)):
        return api.encrypt_bytes(bytes(data), fmt, options)
    return api.encrypt_data(data, fmt, options)


def encrypt_file(path: PathLike, *, recipients: Sequence[str | Recipient] | None = None,
                 key_groups: Sequence[Sequence[str | Recipient]] | None = None, rule: EncryptionRule | None = None,
                 shamir_threshold: int = 0, fmt: str | None = None, output: PathLike | None = None,
                 in_place: bool = False) -> bytes:
    """Encrypt a plaintext file; keys from ``recipients`` or the creation rules. Writes atomically if asked."""
    from .fsio import write_atomic

    options = _options(recipients, key_groups, rule, shamir_threshold, path)
    result = api.encrypt_bytes(_read(path), _fmt(path, fmt), options)
    if in_place:
        write_atomic(path, result)
    elif output is not None:
        write_atomic(output, result)
    return result


def load_metadata(path: PathLike, *, fmt: str | None = None) -> Metadata:
    """The ``sops`` metadata of an encrypted file (no key needed)."""
    return api.read_metadata(api.parse(_read(path), _fmt(path, fmt), encrypted=True))
