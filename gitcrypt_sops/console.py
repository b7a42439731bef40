"""The console script: process-wide start-up settings, then :func:`gitcrypt_sops.cli.main`.

Owns what only a short-lived command process may do, set before anything else
is imported:

- the cyclic garbage collector runs rarely: after a million new container objects,
  not seven hundred (the pipeline's trees hold no cycles; the default schedule's
  passes over every freshly imported object cost a tenth of a small run, and over
  a 100k-value tree about 1% of its run);
- argparse, when a command line needs it (see :mod:`gitcrypt_sops.quickargs`), is
  imported without :mod:`gettext`: the tool speaks English only, as sops does, and
  gettext's import (it compiles a plural-forms tokenizer) and catalogue lookups
  (each stats files and imports :mod:`locale`) cost several per cent of a small run;
- the process ends with ``os._exit`` once stdout and stderr are flushed:
  interpreter shutdown, which only frees memory the kernel is about to reclaim,
  costs another tenth.  Every file the command writes is complete, synced and
  closed before :func:`~gitcrypt_sops.cli.main` returns.
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _import_argparse_untranslated() -> None:
    """Import argparse with identity translations, leaving no trace in ``sys.modules``."""
    loaded = sys.modules.get("argparse")
    if loaded is not None:
        loaded._ = str  # type: ignore[attr-defined]
        loaded.ngettext = _plural  # type: ignore[attr-defined]
        return
    real_gettext = sys.modules.get("gettext")
    stand_in = type(sys)("gettext")
    stand_in.gettext = str  # type: ignore[attr-defined]
    stand_in.ngettext = _plural  # type: ignore[attr-defined]
    sys.modules["gettext"] = stand_in
    try:
        import argparse  # noqa: F401 - binds the stand-in's functions
    finally:
        if real_gettext is None:
            del sys.modules["gettext"]
        else:
            sys.modules["gettext"] = real_gettext


def entry() -> NoReturn:
    """Run the command line in this process and exit with its status."""
    gc.set_threshold(1_000_000, 1000, 1000)
    from .cli import main

    code = main(prepare_argparse=_import_argparse_untranslated)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    entry()
