"""TEST-ONLY toy key provider for gitcrypt-sops' plugin contract tests.  NOT ENCRYPTION.

It "wraps" a data key by XOR with a pad derived from a secret that is printed right
here, so anyone can unwrap it.  It exists only to prove that a third-party provider
is found through the ``gitcrypt_sops.providers`` entry-point group and used like a
built-in one.  Never use it for real data.

* type id ``xor_example``; a recipient is a name (``alice``);
* an entry is ``{recipient: NAME, enc: BASE64, scheme: xor-sha512-test-only}``;
* this machine may unwrap for the names listed in ``XOR_EXAMPLE_KEYS`` (comma-separated),
  standing in for credentials;
* when ``XOR_EXAMPLE_LOG`` names a file, every unwrap attempt appends ``unwrap NAME``
  to it (tests use it to see the order in which recipients are tried).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers.base import KeyProvider, ProviderError, Recipient

#: TEST-ONLY: public on purpose
TEST_ONLY_SECRET = b"gitcrypt-sops xor_example TEST-ONLY secret - public, protects nothing"
SCHEME = "xor-sha512-test-only"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _pad(name: str, length: int) -> bytes:
    pad = hashlib.sha512(TEST_ONLY_SECRET + b"\0" + name.encode()).digest()
    if length > len(pad):
        raise ProviderError("xor_example wraps at most 64 bytes")
    return pad[:length]


class XorExampleProvider(KeyProvider):
    """TEST-ONLY: XOR with a pad from a public secret."""

    type_id = "xor_example"
    cli_flag = "xor-example"

    def parse_recipients(self, text: str) -> list[Recipient]:
        recipients = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            if not _NAME.match(item):
                raise ConfigError(f"invalid xor_example recipient {item[:20]!r}: expected a lower-case name")
            recipients.append(Recipient(self.type_id, item))
        return recipients

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        pad = _pad(recipient.ident, len(data_key))
        enc = base64.b64encode(bytes(a ^ b for a, b in zip(data_key, pad))).decode()
        return {"recipient": recipient.ident, "enc": enc, "scheme": SCHEME}

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        name = entry.get("recipient")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ProviderError("xor_example entry without a valid recipient")
        return Recipient(self.type_id, name)

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        name = self.recipient_of(entry).ident
        log = os.environ.get("XOR_EXAMPLE_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"unwrap {name}\n")
        held = {item.strip() for item in os.environ.get("XOR_EXAMPLE_KEYS", "").split(",") if item.strip()}
        if name not in held:
            raise ProviderError(f"no xor_example key for {name} on this machine (XOR_EXAMPLE_KEYS)")
        try:
            wrapped = base64.b64decode(str(entry.get("enc", "")), validate=True)
        except ValueError:
            raise ProviderError(f"the xor_example entry for {name} is not base64") from None
        if entry.get("scheme") != SCHEME or not wrapped:
            raise ProviderError(f"the xor_example entry for {name} is malformed")
        return bytes(a ^ b for a, b in zip(wrapped, _pad(name, len(wrapped))))
