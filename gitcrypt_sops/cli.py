"""The command line: sops 3.11's subcommands and flags, over :mod:`gitcrypt_sops.api`.

Every flag is declared once (in a flag group) and attached to the commands that
take it.  This is the only place where exceptions become exit codes and one-line
messages on stderr.  Start-up imports nothing but argparse and the error classes;
each command imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .errors import ConflictingParameters, NoFileSpecified, SopsError, UsageError

PROG = "gitcrypt-sops"

#: key flags: option name -> provider type id (sops's flag names)
KEY_FLAGS: dict[str, str] = {
    "age": "age",
    "pgp": "pgp",
    "kms": "kms",
    "gcp-kms": "gcp_kms",
    "azure-kv": "azure_kv",
    "hc-vault-transit": "hc_vault",
}

RULE_FLAGS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- flag groups (each flag declared once) -------------------------------------------


def _io_flags(parser: argparse.ArgumentParser, *, in_place: bool = True) -> None:
    parser.add_argument("file", nargs="?", help="the file to read (stdin when omitted or '-')")
    if in_place:
        parser.add_argument("-i", "--in-place", action="store_true", help="write the result back to the file")
    parser.add_argument("--output", metavar="PATH", help="write the result to PATH (atomically)")
    parser.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    parser.add_argument("--output-type", metavar="TYPE", help="format of the result (default: the input type)")
    parser.add_argument("--filename-override", metavar="NAME",
                        help="use NAME to pick the format and creation rule (for stdin input)")
    parser.add_argument("--config", metavar="PATH", help="config file (default: .sops-policy.yaml or .sops.yaml found upwards)")
    parser.add_argument("--indent", type=int, metavar="N", help="indentation of YAML/JSON output")


def _key_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recipients (comma-separated; replace the creation rule's keys)")
    for flag in KEY_FLAGS:
        group.add_argument(f"--{flag}", metavar="KEYS", action="append", default=None)
    group.add_argument("--aws-profile", metavar="NAME", help="AWS profile for KMS keys")
    group.add_argument("--encryption-context", metavar="K:V,...", help="KMS encryption context")
    group.add_argument("--shamir-secret-sharing-threshold", type=int, metavar="N", default=0,
                       help="key groups needed to decrypt")


def _rule_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("encryption rules (at most one)")
    for name in RULE_FLAGS:
        group.add_argument("--" + name.replace("_", "-"), metavar="TEXT")
    group.add_argument("--mac-only-encrypted", action="store_true", help="the MAC covers encrypted values only")


def _decrypt_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ignore-mac", action="store_true", help="skip the MAC check (tampered files decrypt too)")
    parser.add_argument("--decryption-order", metavar="TYPES",
                        help="key types to try first, e.g. age,pgp (env SOPS_DECRYPTION_ORDER)")


def _global_noops(parser: argparse.ArgumentParser) -> None:
    """sops flags that scripts pass and that have no meaning here."""
    for flag in ("--disable-version-check", "--verbose", "--enable-local-keyservice"):
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keyservice", action="append", help=argparse.SUPPRESS)


# -- commands ------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> str | None:
    return args.file if args.file not in (None, "-") else None


def _formats(args: argparse.Namespace) -> tuple[str, str]:
    from .stores import format_for

    name = args.filename_override or _target(args)
    input_fmt = format_for(name, args.input_type)
    output_fmt = format_for(None, args.output_type) if args.output_type else input_fmt
    return input_fmt, output_fmt


def _read(args: argparse.Namespace) -> bytes:
    from .fsio import read_input

    path = _target(args)
    if path is not None and not os.path.exists(path):
        raise NoFileSpecified(f"cannot operate on non-existent file {path!r}")
    if getattr(args, "in_place", False) and path is None:
        raise UsageError("--in-place needs a file")
    if getattr(args, "in_place", False) and args.output:
        raise ConflictingParameters("--in-place and --output cannot be used together")
    return read_input(path)


def _write(args: argparse.Namespace, data: bytes) -> None:
    from .fsio import write_atomic, write_output

    if getattr(args, "in_place", False):
        assert args.file is not None
        write_atomic(args.file, data)
    else:
        write_output(args.output, data)


def _store_indents(args: argparse.Namespace, config: Any) -> tuple[int, int | None]:
    yaml_indent, json_indent = 4, None
    stores = getattr(config, "stores", None) or {}
    if isinstance(stores.get("yaml"), dict) and isinstance(stores["yaml"].get("indent"), int):
        yaml_indent = stores["yaml"]["indent"]
    if isinstance(stores.get("json"), dict) and isinstance(stores["json"].get("indent"), int):
        json_indent = stores["json"]["indent"] if stores["json"]["indent"] >= 0 else None
    if args.indent is not None:
        yaml_indent = args.indent
        json_indent = args.indent if args.indent > 0 else None
    return yaml_indent, json_indent


def _load_config(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from . import config as config_mod

    target = args.filename_override or _target(args)
    path = config_mod.find_config(Path(target) if target else None, args.config)
    return config_mod.load_config(path) if path is not None else None


def _cli_recipients(args: argparse.Namespace) -> list[Any]:
    from . import providers
    from .providers.base import Recipient

    recipients: list[Recipient] = []
    for flag, type_id in KEY_FLAGS.items():
        values = getattr(args, flag.replace("-", "_"))
        if not values:
            continue
        provider = providers.get(type_id)
        if provider is None:
            hint = providers.INSTALL_HINTS.get(type_id, "")
            raise SopsError(f"--{flag}: no provider installed for '{type_id}' keys" + (f" ({hint})" if hint else ""))
        for value in values:
            parsed = provider.parse_recipients(value)
            if type_id == "kms":
                parsed = [_kms_options(recipient, args) for recipient in parsed]
            recipients.extend(parsed)
    return recipients


def _kms_options(recipient: Any, args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from .errors import EncryptionContextError

    options = dict(recipient.options)
    if args.aws_profile:
        options["aws_profile"] = args.aws_profile
    if args.encryption_context:
        context: dict[str, str] = {}
        for pair in args.encryption_context.split(","):
            key, sep, value = pair.partition(":")
            if not sep or not key:
                raise EncryptionContextError("--encryption-context takes key:value pairs separated by commas")
            context[key] = value
        options["context"] = tuple(sorted(context.items()))
    return replace(recipient, options=tuple(options.items()))


def _encryption_rule(args: argparse.Namespace, rule: Any) -> Any:
    from .walk import EncryptionRule

    given = {name: getattr(args, name) for name in RULE_FLAGS if getattr(args, name)}
    if len(given) > 1:
        raise ConflictingParameters("cannot use more than one of " + ", ".join("--" + n.replace("_", "-") for n in given))
    mac_only = bool(args.mac_only_encrypted or (rule is not None and rule.mac_only_encrypted))
    if given:
        (kind, value), = given.items()
        return EncryptionRule(kind, value, mac_only)
    if rule is not None and rule.encryption_rule is not None:
        kind, value = rule.encryption_rule
        return EncryptionRule(kind, value, mac_only)
    return EncryptionRule("unencrypted_suffix", "_unencrypted", mac_only)


def encrypt_options(args: argparse.Namespace) -> tuple[Any, Any]:
    """The :class:`api.EncryptOptions` for an encrypt-like command, and the config."""
    from .api import EncryptOptions

    config = _load_config(args)
    rule = None
    if config is not None and config.creation_rules is not None:
        from . import config as config_mod

        target = args.filename_override or _target(args)
        if target is None:
            raise ConflictingParameters("reading stdin with a config file needs --filename-override to pick a rule")
        rule = config_mod.match_rule(config, target)
    recipients = _cli_recipients(args)
    if recipients:
        groups: list[list[Any]] = [recipients]
    elif rule is not None:
        groups = [list(group) for group in rule.key_groups]
    else:
        groups = []
    threshold = args.shamir_secret_sharing_threshold or (rule.shamir_threshold if rule is not None else 0)
    yaml_indent, json_indent = _store_indents(args, config)
    options = EncryptOptions(groups, _encryption_rule(args, rule), threshold, yaml_indent, json_indent)
    return options, config


def cmd_encrypt(args: argparse.Namespace) -> int:
    from . import api

    data = _read(args)
    input_fmt, output_fmt = _formats(args)
    options, _ = encrypt_options(args)
    if not options.key_groups or not any(options.key_groups):
        from .errors import NoEncryptionKey

        raise NoEncryptionKey(
            "no recipients: pass --age (or another key flag), or add a creation rule to .sops-policy.yaml"
        )
    _write(args, api.encrypt_bytes(data, input_fmt, options, output_fmt))
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    from . import api, datakey

    data = _read(args)
    input_fmt, output_fmt = _formats(args)
    config = _load_config(args) if (args.indent is None and args.config) else None
    yaml_indent, json_indent = _store_indents(args, config)
    order = datakey.decryption_order(explicit=args.decryption_order)
    plaintext = api.decrypt_bytes(
        data, input_fmt, output_fmt, ignore_mac=args.ignore_mac, extract=args.extract,
        decryption_order=order, yaml_indent=yaml_indent, json_indent=json_indent,
    )
    _write(args, plaintext)
    return 0


def cmd_filestatus(args: argparse.Namespace) -> int:
    import json

    from . import api

    data = _read(args)
    input_fmt, _ = _formats(args)
    try:
        parsed = api.parse(data, input_fmt, encrypted=True)
        encrypted = parsed.has_metadata
    except SopsError:
        encrypted = False
    sys.stdout.write(json.dumps({"encrypted": encrypted}, separators=(",", ":")) + "\n")
    return 0


# -- the parser ----------------------------------------------------------------------

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, Sequence[Callable[[argparse.ArgumentParser], None]]]] = {
    "encrypt": (cmd_encrypt, "encrypt a file's values (output to stdout unless -i/--output)",
                (_io_flags, _key_flags, _rule_flags)),
    "decrypt": (cmd_decrypt, "decrypt a file (output to stdout unless -i/--output)",
                (_io_flags, _decrypt_flags, lambda p: p.add_argument(
                    "--extract", metavar="PATH", help="print only the value at PATH, e.g. '[\"a\"][0]'"))),
    "filestatus": (cmd_filestatus, "print whether a file is encrypted, as JSON",
                   (lambda p: _io_flags(p, in_place=False),)),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Encrypt config-file values in the SOPS v3 format.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__} (sops format 3.11.0)")
    _global_noops(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_text, groups) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        _global_noops(command)
        for add in groups:
            add(command)
    return parser


_LEGACY = {"-e": "encrypt", "--encrypt": "encrypt", "-d": "decrypt", "--decrypt": "decrypt"}


def _legacy_form(argv: list[str]) -> list[str]:
    """``sops -d file`` / ``sops -e -i file``: rewrite to the subcommand form."""
    if argv and argv[0] in COMMANDS:
        return argv
    for index, arg in enumerate(argv):
        if arg in _LEGACY:
            return [_LEGACY[arg]] + argv[:index] + argv[index + 1 :]
    return argv


def run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(_legacy_form(list(argv)))
    if args.command is None:
        raise UsageError(f"no command given (see '{PROG} --help')")
    handler = COMMANDS[args.command][0]
    return handler(args)


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


if __name__ == "__main__":
    sys.exit(main())
