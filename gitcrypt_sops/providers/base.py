"""The contract every key provider implements (age, AWS KMS, GCP KMS, Vault, PGP, ...).

A provider owns one sops metadata key (``type_id``), the fields of its entries,
how its recipients are written on the command line and in ``.sops.yaml``, and the
import of its SDK.  It turns a data key into a metadata entry (``wrap``) and back
(``unwrap``).  Third-party errors are translated into :class:`ProviderError` at
this boundary; nothing else in the tool names a provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..errors import SopsError
from ..records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar


class Recipient(Record):
    """One master key that can wrap a data key.

    ``ident`` is what identifies the key to a person (an age public key, a KMS ARN,
    a PGP fingerprint, a Vault key URI); ``options`` holds provider settings that
    travel with it (an AWS role, encryption context, profile...).
    """

    type_id: str
    ident: str
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        for key, value in self.options:
            if key == name:
                return value
        return default

    def __str__(self) -> str:
        return f"{self.type_id}:{self.ident}"


class ProviderError(SopsError):
    """A provider could not wrap or unwrap a key; the message names the cause only."""

    exit_code = 128


class KeyProvider(ABC):
    """Base class of key providers. Subclasses are stateless and cheap to build."""

    #: the sops metadata key, also the entry-point name
    type_id: ClassVar[str]
    #: the sops CLI flag that lists recipients of this kind, without dashes
    cli_flag: ClassVar[str]
    #: the keys of a ``.sops.yaml`` creation rule that list recipients of this kind
    config_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def parse_recipients(self, text: str) -> list[Recipient]:
        """Parse a comma-separated flag or config string; raise ConfigError if malformed."""

    def recipient_from_config(self, item: Any) -> Recipient:
        """One entry of a ``key_groups`` list in ``.sops.yaml`` (a string by default)."""
        if not isinstance(item, str):
            from ..errors import ConfigError

            raise ConfigError(f"invalid {self.type_id} entry in key group: expected a string")
        recipients = self.parse_recipients(item)
        if len(recipients) != 1:
            from ..errors import ConfigError

            raise ConfigError(f"invalid {self.type_id} entry in key group")
        return recipients[0]

    @abstractmethod
    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        """Encrypt ``data_key`` for ``recipient``: the metadata entry, fields in sops order."""

    @abstractmethod
    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        """The recipient a metadata entry was wrapped for."""

    @abstractmethod
    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        """Recover the data key from a metadata entry; raise ProviderError on failure."""
