"""AES-256-GCM over single values, the only module that touches the cipher.

Nonces are made here (32 random bytes per value, as sops does) and never
supplied by callers.  The IV stash remembers, for every value it decrypted, the IV
under ``(AAD, type, plaintext)`` so that re-encrypting an unchanged value with the
same data key gives the byte-identical ``ENC[...]`` string (sops does the same in
``edit``/``set``/``rotate``); a reused IV therefore only ever meets the identical
plaintext and AAD.
"""

from __future__ import annotations

import binascii
import os

try:
    # the Rust class that cryptography.hazmat.primitives.ciphers.aead re-exports;
    # taking it directly skips the package's Python cipher modules (~15 ms of start-up)
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    AESGCM = _rust_openssl.aead.AESGCM
except (ImportError, AttributeError):  # pragma: no cover - cryptography < 42 has no Rust AEAD
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .codec import parse_enc
from .digest import constant_time_equal
from .errors import TreeDecryptError

IV_SIZE = 32
TAG_SIZE = 16
_IV_BATCH = 256

StashKey = tuple[str, str, bytes]


class DataKey:
    """A 32-byte data key; its repr never shows the bytes."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a data key has 32 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(32))

    def reveal(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return "DataKey(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataKey) and constant_time_equal(self._key, other._key)

    def __hash__(self) -> int:
        return id(self)


class Cipher:
    """Seals and opens values under one data key, with an optional IV stash."""

    __slots__ = ("_aes", "_fresh_ivs", "stash")

    def __init__(self, key: DataKey, stash: dict[StashKey, bytes] | None = None) -> None:
        self._aes = AESGCM(key.reveal())
        self._fresh_ivs: list[bytes] = []  # random IVs drawn in batches, each used once
        self.stash = stash

    def seal(self, plaintext: bytes, aad: str, type_tag: str) -> str:
        """The ENC string for ``plaintext``; an empty plaintext stays empty (sops quirk)."""
        if not plaintext:
            return ""
        stash = self.stash
        iv = stash.get((aad, type_tag, plaintext)) if stash is not None else None
        if iv is None:
            fresh = self._fresh_ivs
            if not fresh:
                batch = os.urandom(IV_SIZE * _IV_BATCH)
                fresh.extend([batch[start : start + IV_SIZE] for start in range(0, len(batch), IV_SIZE)])
            iv = fresh.pop()
        sealed = self._aes.encrypt(iv, plaintext, aad.encode("utf-8", "surrogateescape"))
        b64 = binascii.b2a_base64
        # the ENC string that codec.parse_enc reads; built here, once per value, as an f-string (its cheapest form)
        return (
            f"ENC[AES256_GCM,data:{b64(sealed[:-TAG_SIZE], newline=False).decode()},"
            f"iv:{b64(iv, newline=False).decode()},tag:{b64(sealed[-TAG_SIZE:], newline=False).decode()},"
            f"type:{type_tag}]"
        )

    def open(self, enc: str, aad: str) -> tuple[bytes, str]:
        """Decrypt an ENC string: (plaintext, type tag). Records the IV in the stash."""
        data, iv, tag, type_tag = parse_enc(enc)
        try:
            plaintext = self._aes.decrypt(iv, data + tag, aad.encode("utf-8", "surrogateescape"))
        except Exception as error:
            from cryptography.exceptions import InvalidTag  # imports typing: only on failure

            if isinstance(error, InvalidTag):
                raise TreeDecryptError(
                    f"could not decrypt the value at '{aad}': wrong data key, or the value was altered or moved"
                ) from None
            if isinstance(error, ValueError):
                raise TreeDecryptError(f"could not decrypt the value at '{aad}': malformed IV") from None
            raise
        if self.stash is not None and len(iv) == IV_SIZE:
            self.stash[(aad, type_tag, plaintext)] = iv
        return plaintext, type_tag

    def try_open(self, enc: str, aad: str) -> tuple[bytes, str] | None:
        """Like :meth:`open` but None when the tag does not verify (used for comments)."""
        try:
            return self.open(enc, aad)
        except TreeDecryptError:
            return None
