"""``encrypt``, ``decrypt`` and ``filestatus``: sops's core subcommands."""

from __future__ import annotations

import sys

from ..errors import SopsError
from .common import (
    decrypt_flags,
    encrypt_options,
    formats,
    io_flags,
    key_flags,
    load_config,
    read_input,
    read_input_buffer,
    rule_flags,
    store_indents,
    write_result,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from ..quickargs import Declarations


def add_arguments(command: str, parser: Declarations) -> None:
    if command == "encrypt":
        io_flags(parser)
        key_flags(parser)
        rule_flags(parser)
    elif command == "decrypt":
        io_flags(parser)
        decrypt_flags(parser)
        parser.add_argument("--extract", metavar="PATH", help="print only the value at PATH, e.g. '[\"a\"][0]'")
    else:
        io_flags(parser, in_place=False)


def run(command: str, args: argparse.Namespace) -> int:
    return {"encrypt": cmd_encrypt, "decrypt": cmd_decrypt, "filestatus": cmd_filestatus}[command](args)


def cmd_encrypt(args: argparse.Namespace) -> int:
    from .. import api

    data = read_input_buffer(args)
    input_fmt, output_fmt = formats(args)
    options, _ = encrypt_options(args)
    if not options.key_groups or not any(options.key_groups):
        from ..errors import NoEncryptionKey

        raise NoEncryptionKey(
            "no recipients: pass --age (or another key flag), or add a creation rule to .sops-policy.yaml"
        )
    write_result(args, api.encrypt_bytes(data, input_fmt, options, output_fmt))
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    from .. import api, datakey

    data = read_input_buffer(args)
    input_fmt, output_fmt = formats(args)
    config = load_config(args) if (args.indent is None and args.config) else None
    yaml_indent, json_indent = store_indents(args, config)
    order = datakey.decryption_order(explicit=args.decryption_order)
    plaintext = api.decrypt_bytes(
        data, input_fmt, output_fmt, ignore_mac=args.ignore_mac, extract=args.extract,
        decryption_order=order, yaml_indent=yaml_indent, json_indent=json_indent, keep_layout=args.indent is None,
    )
    write_result(args, plaintext)
    return 0


def cmd_filestatus(args: argparse.Namespace) -> int:
    import json

    from .. import api

    data = read_input(args)
    input_fmt, _ = formats(args)
    try:
        parsed = api.parse(data, input_fmt, encrypted=True)
        encrypted = parsed.has_metadata
    except SopsError:
        encrypted = False
    sys.stdout.write(json.dumps({"encrypted": encrypted}, separators=(",", ":")) + "\n")
    return 0
