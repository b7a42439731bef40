"""Each data key unwrapped once per process.

The merge driver reads three versions of a file that usually share their wrapped
keys, and repo-wide runs meet the same file more than once; unwrapping costs a
provider call (a KMS round trip, an age identity search).  The cache is keyed by
the wrapped keys themselves, so only identical metadata shares an entry; a
failure is remembered too and raised again without a second attempt.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from .. import datakey
from ..cipher import DataKey
from ..errors import SopsError
from ..metadata import Metadata

__all__ = ["KeyCache", "default_cache", "wrapped_id"]


def wrapped_id(meta: Metadata) -> str:
    """A stable text naming a file's wrapped keys (same text: same data key)."""
    groups = [[[type_id, sorted((k, str(v)) for k, v in entry.items())] for type_id, entry in group]
              for group in meta.key_groups]
    return json.dumps([groups, meta.shamir_threshold], sort_keys=True)


class KeyCache:
    """Data keys by wrapped-key identity; thread-safe; the keys never leave the process."""

    def __init__(self, order: Sequence[str] | None = None) -> None:
        self.order = tuple(order) if order is not None else datakey.decryption_order()
        self._keys: dict[str, DataKey | SopsError] = {}
        self._lock = threading.Lock()
        self.unwraps = 0

    def get(self, meta: Metadata) -> DataKey:
        ident = wrapped_id(meta)
        with self._lock:
            found = self._keys.get(ident)
            if found is None:
                self.unwraps += 1
                try:
                    found = datakey.unwrap(meta, self.order)
                except SopsError as error:
                    found = error
                self._keys[ident] = found
        if isinstance(found, SopsError):
            raise found
        return found

    def __repr__(self) -> str:
        return f"KeyCache(<{len(self._keys)} entries>)"


_default: KeyCache | None = None


def default_cache() -> KeyCache:
    """The process-wide cache (created on first use, with the environment's decryption order)."""
    global _default
    if _default is None:
        _default = KeyCache()
    return _default

