"""gitcrypt-sops: SOPS-compatible encryption of config-file values, as a library.

The functions here are the public Python API; they run the same pipeline as the
command line (:mod:`gitcrypt_sops.api`) and raise the same errors
(:mod:`gitcrypt_sops.errors`).  Heavy modules are imported on first use, so
``import gitcrypt_sops`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .facade import decrypt, decrypt_file, encrypt, encrypt_file, extract, extract_file, load_metadata

__all__ = [
    "__version__",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "extract",
    "extract_file",
    "load_metadata",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from . import facade

        return getattr(facade, name)
    if name in ("api", "errors", "facade", "paths", "tree"):
        import sys

        __import__(f"{__name__}.{name}")  # not importlib: it would import warnings and more
        return sys.modules[f"{__name__}.{name}"]
    raise AttributeError(name)
