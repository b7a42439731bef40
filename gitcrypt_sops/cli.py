"""The command line: sops 3.11's subcommands and flags, over :mod:`gitcrypt_sops.api`.

Only the invoked command's module is imported and only its flags are declared,
so start-up stays small.  This is the only place where exceptions become exit
codes and one-line messages on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import SopsError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

PROG = "gitcrypt-sops"

#: command -> (module under gitcrypt_sops.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "encrypt": ("crypt", "encrypt a file's values (output to stdout unless -i/--output)"),
    "decrypt": ("crypt", "decrypt a file (output to stdout unless -i/--output)"),
    "filestatus": ("crypt", "print whether a file is encrypted, as JSON"),
    "rotate": ("keys", "make a new data key and re-encrypt every value; add or remove recipients"),
    "updatekeys": ("keys", "make files' recipients match their creation rule (asks first)"),
    "groups": ("keys", "add or delete a key group (Shamir secret sharing)"),
    "exec-env": ("deploy", "run a command with the decrypted values in its environment"),
    "exec-file": ("deploy", "run a command with the decrypted file at '{}' (a FIFO by default)"),
    "k8s-secret": ("deploy", "decrypt into a Kubernetes Secret manifest (for kubectl apply -f -)"),
    "scan": ("deploy", "find plaintext secrets and unencrypted files (tree and git history)"),
    "check": ("gitops", "check files against the policy of .sops-policy.yaml (metadata only, no keys)"),
    "pre-commit": ("gitops", "check the staged files against the policy (for a pre-commit hook)"),
    "git": ("gitops", "git integration: install, diff (textconv), merge, resolve"),
    "repo": ("gitops", "repo-wide updatekeys, rotate, decrypt over directories (plan first, --dry-run)"),
    "edit": ("edit", "edit an encrypted file in $EDITOR; unchanged values keep their ciphertext"),
    "set": ("edit", "set one value (JSON) at a tree path in an encrypted file, in place"),
    "unset": ("edit", "remove the value at a tree path from an encrypted file, in place"),
    "update": ("edit", "re-encrypt a new plaintext over an encrypted file, keeping unchanged ciphertext"),
}

_GLOBAL_FLAGS = ("--disable-version-check", "--verbose", "--enable-local-keyservice")


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without the terminal-size probe (it imports shutil on every run)."""

    def __init__(self, prog: str) -> None:
        import os

        super().__init__(prog, width=int(os.environ.get("COLUMNS", "100")) - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def global_noops(parser: argparse.ArgumentParser) -> None:
    """sops flags that scripts pass and that have no meaning here."""
    for flag in _GLOBAL_FLAGS:
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keyservice", action="append", help=argparse.SUPPRESS)


def _command_module(command: str) -> object:
    name = f"gitcrypt_sops.commands.{COMMANDS[command][0]}"
    __import__(name)
    return sys.modules[name]


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only ``command`` (when known) gets its flags declared."""
    parser = _Parser(prog=PROG, description="Encrypt config-file values in the SOPS v3 format.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__} (sops format 3.11.0)")
    parser.add_argument("--config", dest="global_config", metavar="PATH", help="config file for every command")
    global_noops(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if command is not None:
        help_text = COMMANDS[command][1]
        command_parser = sub.add_parser(command, help=help_text, description=help_text)
        global_noops(command_parser)
        _command_module(command).add_arguments(command, command_parser)  # type: ignore[attr-defined]
        return parser
    for name, (_, help_text) in COMMANDS.items():  # for --help and the "invalid choice" message
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


_LEGACY = {"-e": "encrypt", "--encrypt": "encrypt", "-d": "decrypt", "--decrypt": "decrypt"}


def _legacy_form(argv: list[str]) -> list[str]:
    """``sops -d file`` / ``sops -e -i file``: rewrite to the subcommand form."""
    if any(arg in COMMANDS for arg in argv[:1]):
        return argv
    for index, arg in enumerate(argv):
        if arg in _LEGACY:
            return [_LEGACY[arg]] + argv[:index] + argv[index + 1 :]
    return argv


_GLOBAL_VALUE_FLAGS = ("--config", "--keyservice")


def _find_command(argv: list[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in COMMANDS:
            return arg
        if arg in _GLOBAL_VALUE_FLAGS:
            skip = True
            continue
        if not arg.startswith("-"):
            return None
    return None


def run(argv: Sequence[str]) -> int:
    arguments = _legacy_form(list(argv))
    command = _find_command(arguments)
    args = build_parser(command).parse_args(arguments)
    if args.command is None:
        raise UsageError(f"no command given (see '{PROG} --help')")
    if getattr(args, "global_config", None) and getattr(args, "config", None) is None:
        args.config = args.global_config
    result: int = _command_module(args.command).run(args.command, args)  # type: ignore[attr-defined]
    return result


def report(error: SopsError) -> None:
    message = " ".join(str(error).split())
    if error.hint:
        message += f" (hint: {' '.join(error.hint.split())})"
    sys.stderr.write(f"{PROG}: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SopsError as error:
        report(error)
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 85
    except RecursionError:
        sys.stderr.write(f"{PROG}: the document is nested too deeply\n")
        return 2
    except MemoryError:
        sys.stderr.write(f"{PROG}: out of memory\n")
        return 1
    except Exception as error:  # never a traceback, never data: name the failure only
        sys.stderr.write(f"{PROG}: internal error ({type(error).__name__}); please report it\n")
        return 1

