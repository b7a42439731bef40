"""``python -m gitcrypt_sops``: the command line."""

from .console import entry

entry()
