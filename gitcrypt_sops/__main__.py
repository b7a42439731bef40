"""``python -m gitcrypt_sops``: the command line."""

from .cli import entry

entry()
