"""SHA-512 and constant-time comparison, taken from CPython's builtin modules.

``hashlib`` and ``hmac`` load OpenSSL's libcrypto when imported, about a twentieth
of a small decrypt's run; the interpreter's own SHA-512 and the comparison that
``hmac.compare_digest`` falls back to need no loading.  The public modules are
used where the builtins are missing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha512
    from hmac import compare_digest as constant_time_equal
else:
    try:
        from _sha2 import sha512  # Python 3.12+
    except ImportError:
        try:
            from _sha512 import sha512  # Python 3.11
        except ImportError:
            from hashlib import sha512
    try:
        from _operator import _compare_digest as constant_time_equal
    except ImportError:
        from hmac import compare_digest as constant_time_equal

__all__ = ["constant_time_equal", "sha512"]
