"""``edit``, ``set``, ``unset`` (sops 3.11's subcommands) and ``update``: changing an encrypted file in place.

Every command keeps the file's data key, wrapped keys and the ciphertext of every
unchanged value (see :mod:`gitcrypt_sops.edits`), and writes atomically.
"""

from __future__ import annotations

import os
import sys

from ..errors import ConflictingParameters, InputError, NoFileSpecified, SopsError
from .common import decrypt_flags, key_flags, rule_flags

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..api import EncryptOptions
    from ..edits import Session
    from ..quickargs import Declarations


def _type_flags(parser: Declarations) -> None:
    parser.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary (default: from the file name)")
    parser.add_argument("--output-type", metavar="TYPE", help="format to write the file in (default: the input type)")
    parser.set_defaults(filename_override=None, indent=None, output=None, in_place=False)


def add_arguments(command: str, parser: Declarations) -> None:
    parser.add_argument("file", nargs="?", help="the encrypted file (changed in place)")
    if command == "edit":
        _type_flags(parser)
        parser.add_argument("--config", metavar="PATH", help="config file for a new file's creation rule")
        key_flags(parser)
        rule_flags(parser)
        decrypt_flags(parser)
        return
    if command == "update":
        parser.add_argument("--from", dest="source", metavar="PLAINTEXT", required=True,
                            help="the new plaintext ('-' for stdin)")
        parser.add_argument("--from-type", metavar="TYPE",
                            help="format of the plaintext (default: from its name, else the file's format)")
        parser.add_argument("--input-type", metavar="TYPE", help="format of the encrypted file (default: from its name)")
        parser.set_defaults(filename_override=None, output_type=None, indent=None)
        decrypt_flags(parser)
        return
    parser.add_argument("index", nargs="?", help="tree path, e.g. '[\"db\"][\"password\"]' or '[\"list\"][0]'")
    if command == "set":
        parser.add_argument("value", nargs="?", help="JSON value (a file name with --value-file; omitted with --value-stdin)")
        parser.add_argument("--value-file", action="store_true", help="VALUE names a file holding the JSON value")
        parser.add_argument("--value-stdin", action="store_true", help="read the JSON value from stdin")
        parser.add_argument("--idempotent", action="store_true",
                            help="do not write the file if the value is already there")
    else:
        parser.add_argument("--idempotent", action="store_true", help="exit 0 without writing if the path does not exist")
    _type_flags(parser)
    parser.add_argument("--shamir-secret-sharing-threshold", type=int, metavar="N", default=0,
                        help="accepted for sops compatibility; the file keeps its key groups")
    decrypt_flags(parser)


def run(command: str, args: argparse.Namespace) -> int:
    return {"edit": cmd_edit, "set": cmd_set, "unset": cmd_unset, "update": cmd_update}[command](args)


def _formats(args: argparse.Namespace) -> tuple[str, str]:
    from .common import formats

    return formats(args)


def _order(args: argparse.Namespace) -> tuple[str, ...]:
    from .. import datakey

    return datakey.decryption_order(explicit=args.decryption_order)


def _open(args: argparse.Namespace, input_fmt: str) -> Session:
    from .. import edits
    from ..fsio import read_input

    return edits.open_file(read_input(args.file), input_fmt, ignore_mac=args.ignore_mac,
                           decryption_order=_order(args))


def cmd_edit(args: argparse.Namespace) -> int:
    from .. import edits
    from .common import encrypt_options

    if not args.file or args.file == "-":
        raise NoFileSpecified("no file specified: edit needs a file name")
    input_fmt, output_fmt = _formats(args)
    if output_fmt != input_fmt:
        raise ConflictingParameters("edit keeps the file's format: --output-type must match the input type")

    def new_file_options() -> EncryptOptions:
        options: EncryptOptions = encrypt_options(args)[0]
        return options

    editor = edits.editor_command()
    edits.edit_file(args.file, input_fmt, ignore_mac=args.ignore_mac, decryption_order=_order(args),
                    new_file_options=new_file_options, editor=editor)
    return 0


def _read_value(args: argparse.Namespace) -> Any:
    from .. import edits

    if args.value_file and args.value_stdin:
        raise SopsError("cannot use both --value-file and --value-stdin")
    if args.value_stdin:
        if args.value is not None or args.index is None or args.file is None:
            raise NoFileSpecified("set --value-stdin needs exactly two arguments: FILE INDEX")
        return edits.parse_value(sys.stdin.buffer.read())
    if args.file is None or args.index is None or args.value is None:
        raise NoFileSpecified("set needs exactly three arguments: FILE INDEX VALUE")
    if args.value_file:
        try:
            with open(args.value, "rb") as handle:
                data = handle.read()
        except OSError as error:
            raise SopsError(f"cannot read the value file: {error.strerror}") from None
        return edits.parse_value(data)
    return edits.parse_value(args.value)


def cmd_set(args: argparse.Namespace) -> int:
    from .. import edits
    from ..fsio import write_atomic

    value = _read_value(args)
    steps = edits.parse_path(args.index)
    input_fmt, output_fmt = _formats(args)
    session = _open(args, input_fmt)
    result, changed = edits.set_value(session, steps, value, output_fmt)
    if not changed and args.idempotent:
        return 0
    write_atomic(args.file, result)
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    from .. import edits
    from ..fsio import write_atomic

    if args.file is None or args.index is None:
        raise NoFileSpecified("unset needs exactly two arguments: FILE INDEX")
    steps = edits.parse_path(args.index)
    input_fmt, output_fmt = _formats(args)
    session = _open(args, input_fmt)
    try:
        result = edits.unset_value(session, steps, output_fmt)
    except edits.KeyNotFound:
        if args.idempotent:
            return 0
        raise
    write_atomic(args.file, result)
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    from .. import edits
    from ..fsio import read_input, write_atomic
    from ..stores import format_for

    if not args.file or args.file == "-":
        raise NoFileSpecified("no file specified: update needs the encrypted file's name")
    if not os.path.exists(args.file):
        raise InputError(f"{args.file}: no such file (update changes an existing encrypted file; "
                         "use 'encrypt' to create one)")
    input_fmt, _ = _formats(args)
    if args.from_type:
        plain_fmt = format_for(None, args.from_type)
    elif args.source not in (None, "-") and format_for(args.source) != "binary":
        plain_fmt = format_for(args.source)
    else:
        plain_fmt = input_fmt
    plaintext = read_input(None if args.source == "-" else args.source)
    session = _open(args, input_fmt)
    result = edits.update_from(session, plaintext, plain_fmt)
    if result is not None:
        write_atomic(args.file, result)
    return 0
