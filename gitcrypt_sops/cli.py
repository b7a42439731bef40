"""The command line: sops 3.11's subcommands and flags, over :mod:`gitcrypt_sops.api`.

Only the invoked command's module is imported and only its flags are declared,
so start-up stays small.  This is the only place where exceptions become exit
codes and one-line messages on stderr.
"""

from __future__ import annotations

import sys

from . import __version__, quickargs
from .errors import SopsError, UsageError
from .quickargs import SUPPRESS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from .quickargs import Declarations

PROG = "gitcrypt-sops"
VERSION_TEXT = f"{PROG} {__version__} (sops format 3.11.0)"

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


def global_noops(parser: Declarations) -> None:
    """sops flags that scripts pass and that have no meaning here."""
    for flag in _GLOBAL_FLAGS:
        parser.add_argument(flag, action="store_true", help=SUPPRESS)
    parser.add_argument("--keyservice", action="append", help=SUPPRESS)


def declare_top(parser: Declarations) -> None:
    """The flags given before the command."""
    parser.add_argument("--version", action="version", version=VERSION_TEXT)
    parser.add_argument("--config", dest="global_config", metavar="PATH", help="config file for every command")
    global_noops(parser)


def declare_command(command: str, parser: Declarations) -> None:
    """The flags of ``command``, declared once for argparse and for :mod:`.quickargs`."""
    global_noops(parser)
    _command_module(command).add_arguments(command, parser)  # type: ignore[attr-defined]


def _command_module(command: str) -> object:
    name = f"gitcrypt_sops.commands.{COMMANDS[command][0]}"
    __import__(name)
    return sys.modules[name]


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


def quick_parse(arguments: list[str]) -> Any | None:
    """A command line that starts with its command, read by :mod:`.quickargs`; None where argparse must read it."""
    command = arguments[0] if arguments else None
    if command not in COMMANDS:
        return None
    values = quickargs.record(lambda table: declare_command(command, table)).values(arguments[1:])
    if values is None:
        return None
    top = quickargs.record(declare_top).values([])
    assert top is not None
    return quickargs.Namespace(**{**top, "command": command, **values})  # argparse lets the command's values win


def parse(argv: Sequence[str], prepare_argparse: Callable[[], None] | None = None) -> Any:
    """The parsed command line (``command`` plus the flags' values); UsageError when it is wrong.

    A line that starts with its command and uses only plain forms is read by
    :mod:`.quickargs`; every other one, and every error, by argparse.
    """
    arguments = _legacy_form(list(argv))
    quick = quick_parse(arguments)
    if quick is not None:
        return quick
    if prepare_argparse is not None:
        prepare_argparse()
    from .argparser import build_parser

    return build_parser(_find_command(arguments)).parse_args(arguments)


def run(argv: Sequence[str], prepare_argparse: Callable[[], None] | None = None) -> int:
    if list(argv) == ["--version"]:  # what argparse's version action prints, without argparse
        sys.stdout.write(VERSION_TEXT + "\n")
        return 0
    args = parse(argv, prepare_argparse)
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


def main(argv: Sequence[str] | None = None, prepare_argparse: Callable[[], None] | None = None) -> int:
    """Run one command line; its exit status.  ``prepare_argparse`` runs before argparse is imported."""
    try:
        return run(sys.argv[1:] if argv is None else argv, prepare_argparse)
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

