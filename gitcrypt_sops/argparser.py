"""The argparse parser: ``--help``, abbreviated flags, sub-subcommands and every usage error.

Built from the same declarations :mod:`gitcrypt_sops.cli` hands to
:mod:`gitcrypt_sops.quickargs`; imported only for the command lines the quick
reader leaves to it.
"""

from __future__ import annotations

import argparse
import os

from .cli import COMMANDS, PROG, declare_command, declare_top
from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without the terminal-size probe (it imports shutil on every run)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=int(os.environ.get("COLUMNS", "100")) - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only ``command`` (when known) gets its flags declared."""
    parser = _Parser(prog=PROG, description="Encrypt config-file values in the SOPS v3 format.")
    declare_top(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if command is not None:
        help_text = COMMANDS[command][1]
        declare_command(command, sub.add_parser(command, help=help_text, description=help_text))
        return parser
    for name, (_, help_text) in COMMANDS.items():  # for --help and the "invalid choice" message
        sub.add_parser(name, help=help_text, description=help_text)
    return parser
