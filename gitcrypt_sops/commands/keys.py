"""``rotate``, ``updatekeys`` and ``groups add|delete``: recipient and data-key changes.

The flags are sops 3.11's, plus ``--add-key/--rm-key TYPE:SPEC`` and ``groups add
--key TYPE:SPEC`` for key types that have no sops flag (third-party providers found
through the ``gitcrypt_sops.providers`` entry points), ``--decryption-order`` on
every command, and ``updatekeys --no-rotate``.  The operations are in
:mod:`gitcrypt_sops.keys`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..errors import SopsError, UsageError
from .common import KEY_FLAGS, decrypt_flags, formats, io_flags, read_input, store_indents, write_result

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

#: key flags of rotate and groups add: sops's, plus HuaweiCloud KMS (no provider ships for it)
ROTATE_FLAGS: dict[str, str] = {**KEY_FLAGS, "hckms": "hckms"}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command == "rotate":
        io_flags(parser)
        decrypt_flags(parser)
        group = parser.add_argument_group("recipient changes (comma-separated; added ones join the first key group)")
        for flag in ROTATE_FLAGS:
            group.add_argument(f"--add-{flag}", metavar="KEYS", action="append", default=[])
            group.add_argument(f"--rm-{flag}", metavar="KEYS", action="append", default=[])
        group.add_argument("--add-key", metavar="TYPE:SPEC", action="append", default=[],
                           help="add recipients of any installed key type, e.g. age:age1...")
        group.add_argument("--rm-key", metavar="TYPE:SPEC", action="append", default=[],
                           help="remove recipients of any key type")
        group.add_argument("--aws-profile", metavar="NAME", help="AWS profile for added KMS keys")
        group.add_argument("--encryption-context", metavar="K:V,...", help="KMS encryption context for added keys")
    elif command == "updatekeys":
        parser.add_argument("files", nargs="+", metavar="FILE", help="encrypted files to update")
        parser.add_argument("-y", "--yes", action="store_true", help="apply the changes without asking")
        parser.add_argument("--no-rotate", action="store_true",
                            help="keep the data key even when recipients are removed (sops behaviour)")
        parser.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary")
        parser.add_argument("--config", metavar="PATH", help="config file (default: found upwards from each file)")
        parser.add_argument("--decryption-order", metavar="TYPES",
                            help="key types to try first, e.g. age,pgp (env SOPS_DECRYPTION_ORDER)")
        parser.set_defaults(indent=None)
    else:
        _groups_arguments(parser)


def _groups_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import global_noops

    sub = parser.add_subparsers(dest="groups_command", metavar="SUBCOMMAND")
    add = sub.add_parser("add", help="add a key group to a file", description="add a key group to a file")
    delete = sub.add_parser("delete", help="delete a key group (by 0-based index) from a file",
                            description="delete a key group (by 0-based index) from a file")
    for each in (add, delete):
        global_noops(each)
        each.add_argument("-f", "--file", required=True, help="the encrypted file")
        each.add_argument("-i", "--in-place", action="store_true", help="write the result back to the file")
        each.add_argument("--output", metavar="PATH", help="write the result to PATH (atomically)")
        each.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary")
        each.add_argument("--shamir-secret-sharing-threshold", type=int, default=0, metavar="N",
                          help="key groups needed to decrypt (default: the file's)")
        each.add_argument("--decryption-order", metavar="TYPES",
                          help="key types to try first, e.g. age,pgp (env SOPS_DECRYPTION_ORDER)")
        each.set_defaults(output_type=None, filename_override=None, config=None, indent=None)
    for flag in ROTATE_FLAGS:
        add.add_argument(f"--{flag}", metavar="KEYS", action="append", default=[],
                         help="recipients of the new group (repeatable, comma-separated)")
    add.add_argument("--key", metavar="TYPE:SPEC", action="append", default=[],
                     help="a recipient of any installed key type, e.g. age:age1...")
    add.add_argument("--aws-profile", metavar="NAME", help="AWS profile for KMS keys")
    add.add_argument("--encryption-context", metavar="K:V,...", help="KMS encryption context")
    delete.add_argument("--no-rotate", action="store_true",
                        help="keep the data key (sops behaviour); by default a new one is made")
    delete.add_argument("index", type=int, help="the group to delete, counting from 0")


def run(command: str, args: argparse.Namespace) -> int:
    if command == "rotate":
        return cmd_rotate(args)
    if command == "updatekeys":
        return cmd_updatekeys(args)
    if args.groups_command is None:
        raise UsageError("groups needs a subcommand: add or delete")
    return cmd_groups(args)


# -- recipients from flags --------------------------------------------------------------


def parse_key_spec(text: str) -> list[Any]:
    """``TYPE:SPEC`` (e.g. ``age:age1…``, ``xor_example:alice``): recipients of any installed key type."""
    from .. import providers

    type_id, sep, spec = text.partition(":")
    if not sep or not type_id or not spec:
        raise UsageError(f"--key takes TYPE:SPEC, e.g. age:age1...; got {text[:20]!r}")
    provider = providers.get(type_id)
    if provider is None:
        hint = providers.INSTALL_HINTS.get(type_id)
        raise SopsError(f"no provider installed for '{type_id}' keys" + (f" ({hint})" if hint else ""))
    recipients: list[Any] = provider.parse_recipients(spec)
    return recipients


def _flag_recipients(args: argparse.Namespace, prefix: str, generic: str) -> list[Any]:
    """Recipients named by ``--{prefix}{flag}`` options (no environment fallback) and the generic flag."""
    from .. import providers
    from .common import kms_options

    recipients: list[Any] = []
    for flag, type_id in ROTATE_FLAGS.items():
        values: list[str] = getattr(args, (prefix + flag).replace("-", "_"))
        if not values:
            continue
        provider = providers.get(type_id)
        if provider is None:
            hint = providers.INSTALL_HINTS.get(type_id)
            raise SopsError(f"--{prefix}{flag}: no provider installed for '{type_id}' keys" + (f" ({hint})" if hint else ""))
        for value in values:
            parsed = provider.parse_recipients(value)
            if type_id == "kms":
                parsed = [kms_options(recipient, args) for recipient in parsed]
            recipients.extend(parsed)
    for value in getattr(args, generic):
        recipients.extend(parse_key_spec(value))
    return recipients


def _removal_labels(args: argparse.Namespace) -> list[str]:
    """Labels (``type:ident``) of the recipients named by ``--rm-*``; no provider is needed to remove."""
    from .. import providers

    labels: list[str] = []

    def add(type_id: str, text: str) -> None:
        provider = providers.get(type_id)
        if provider is not None:
            labels.extend(str(recipient) for recipient in provider.parse_recipients(text))
        else:
            labels.extend(f"{type_id}:{item.strip()}" for item in text.split(",") if item.strip())

    for flag, type_id in ROTATE_FLAGS.items():
        for value in getattr(args, "rm_" + flag.replace("-", "_")):
            add(type_id, value)
    for value in args.rm_key:
        type_id, sep, spec = value.partition(":")
        if not sep or not type_id or not spec:
            raise UsageError(f"--rm-key takes TYPE:SPEC; got {value[:20]!r}")
        add(type_id, spec)
    return labels


# -- commands -----------------------------------------------------------------------------


def _order(args: argparse.Namespace) -> tuple[str, ...]:
    from .. import datakey

    return datakey.decryption_order(explicit=args.decryption_order)


def _say(lines: Iterable[str], stream: Any = None) -> None:
    out = stream if stream is not None else sys.stderr
    for line in lines:
        out.write(line + "\n")
    out.flush()


def cmd_rotate(args: argparse.Namespace) -> int:
    from .. import keys
    from .common import load_config

    data = read_input(args)
    input_fmt, output_fmt = formats(args)
    add = _flag_recipients(args, "add-", "add_key")
    remove = _removal_labels(args)
    config = load_config(args)
    yaml_indent, json_indent = store_indents(args, config)
    parsed, meta = keys.read_metadata(data, input_fmt)
    plan = keys.plan_rotate(meta, add, remove)
    decrypted = keys.decrypt_for_rekey(parsed, output_fmt, ignore_mac=args.ignore_mac, decryption_order=_order(args))
    result = keys.apply(decrypted, plan, output_fmt=output_fmt, decryption_order=_order(args),
                        yaml_indent=yaml_indent, json_indent=json_indent)
    _say(f"warning: {name} is not a recipient of the file; nothing to remove" for name in plan.not_found)
    write_result(args, result)
    return 0


def cmd_updatekeys(args: argparse.Namespace) -> int:
    for path in args.files:
        _update_one(args, path)
    return 0


def _update_one(args: argparse.Namespace, path: str) -> None:
    import os
    from pathlib import Path

    from .. import config as config_mod
    from .. import keys
    from ..errors import ConfigError, NoFileSpecified
    from ..fsio import read_input as read_file
    from ..fsio import write_atomic
    from ..stores import format_for

    if not os.path.exists(path):
        raise NoFileSpecified(f"cannot operate on non-existent file {path!r}")
    fmt = format_for(path, args.input_type)
    config_path = config_mod.find_config(Path(path), args.config)
    if config_path is None:
        raise ConfigError(f"{path}: no .sops-policy.yaml or .sops.yaml found to take the keys from")
    config = config_mod.load_config(config_path)
    rule = config_mod.match_rule(config, path)
    if rule is None:
        raise ConfigError(f"{config_path}: no creation_rules to take the keys of {path} from")
    data = read_file(path)
    parsed, meta = keys.read_metadata(data, fmt)
    plan = keys.plan_update(meta, rule.key_groups, rule.shamir_threshold, rotate=False if args.no_rotate else None)
    if not plan.changed:
        _say([f"{path}: already up to date"])
        return
    _say([f"{path}: the key groups will change:", *plan.describe()], sys.stdout)
    if plan.rotate:
        _say([("a new data key will be made: removed recipients could otherwise read future versions "
               "(--no-rotate keeps the key)")], sys.stdout)
    elif plan.removes:
        _say([(f"warning: {path}: keeping the data key; the removed recipients can still decrypt future "
               "versions of this file if they kept the key")])
    if not args.yes and not _confirm(path):
        _say([f"{path}: left unchanged"])
        return
    order = _order(args)
    decrypted = keys.decrypt_for_rekey(parsed, fmt, decryption_order=order)
    yaml_indent, json_indent = store_indents(args, config)
    result = keys.apply(decrypted, plan, output_fmt=fmt, decryption_order=order,
                        yaml_indent=yaml_indent, json_indent=json_indent)
    write_atomic(path, result)
    _say([f"{path}: keys updated" + (" and data key rotated" if plan.rotate else "")])


def _confirm(path: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"{path}: not applying the changes: confirmation needs a terminal; pass --yes to apply them")
    sys.stdout.write(f"Apply these changes to {path}? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_groups(args: argparse.Namespace) -> int:
    from .. import keys

    data = read_input(args)
    input_fmt, output_fmt = formats(args)
    parsed, meta = keys.read_metadata(data, input_fmt)
    threshold = args.shamir_secret_sharing_threshold
    if threshold < 0:
        raise UsageError("--shamir-secret-sharing-threshold must not be negative")
    if args.groups_command == "add":
        plan = keys.plan_add_group(meta, _flag_recipients(args, "", "key"), threshold)
    else:
        plan = keys.plan_delete_group(meta, args.index, threshold, rotate=not args.no_rotate)
    order = _order(args)
    decrypted = keys.decrypt_for_rekey(parsed, output_fmt, decryption_order=order)
    yaml_indent, json_indent = store_indents(args, None)
    result = keys.apply(decrypted, plan, output_fmt=output_fmt, decryption_order=order,
                        yaml_indent=yaml_indent, json_indent=json_indent)
    write_result(args, result)
    return 0
