"""``python -m gitcrypt_sops``: the command line."""

import sys

from .cli import main

sys.exit(main())
