"""PyYAML, imported without the one regular expression that makes its import slow.

``yaml.reader`` compiles a character class spanning nearly all of Unicode when it
is imported; :mod:`re` builds its 64k-entry table in Python, about a fifth of a
small decrypt's whole run.  The pattern serves only PyYAML's pure-Python reader,
which we never use (libyaml parses).  Before the first import, :func:`load`
places an equivalent pattern in :mod:`re`'s cache under the original's key: the
complement written as the characters it matches, which compiles in a fraction of
the time.  Where ``re`` keeps its cache differently, or PyYAML writes the pattern
differently, the seed simply goes unused.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

#: ``yaml.reader.Reader.NON_PRINTABLE`` as PyYAML 5.1 to 6.x writes it
NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
#: the same set of characters, listed instead of excluded
NON_PRINTABLE_LISTED = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"


def load() -> ModuleType:
    """The ``yaml`` module, imported on first use."""
    if "yaml" not in sys.modules:
        cache = getattr(re, "_cache", None)
        if isinstance(cache, dict):
            cache.setdefault((str, NON_PRINTABLE, 0), re.compile(NON_PRINTABLE_LISTED))
    import yaml

    return yaml
