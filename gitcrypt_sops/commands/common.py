"""What the commands share: each flag group is declared once here, with the helpers
that turn parsed flags into paths, formats, config, recipients and encryption rules.
"""

from __future__ import annotations

import os

from ..errors import ConflictingParameters, NoFileSpecified, SopsError
from ..walk import RULE_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..quickargs import Declarations

#: key flags: option name -> provider type id (sops's flag names)
KEY_FLAGS: dict[str, str] = {
    "age": "age",
    "pgp": "pgp",
    "kms": "kms",
    "gcp-kms": "gcp_kms",
    "azure-kv": "azure_kv",
    "hc-vault-transit": "hc_vault",
}

#: short forms sops gives some key flags
KEY_SHORT: dict[str, str] = {"age": "-a", "pgp": "-p", "kms": "-k"}

#: environment variables sops reads when a key flag is not given
KEY_ENV: dict[str, str] = {
    "age": "SOPS_AGE_RECIPIENTS",
    "pgp": "SOPS_PGP_FP",
    "kms": "SOPS_KMS_ARN",
    "gcp-kms": "SOPS_GCP_KMS_IDS",
    "azure-kv": "SOPS_AZURE_KEYVAULT_URLS",
    "hc-vault-transit": "SOPS_VAULT_URIS",
}

#: the six encryption-rule settings, each also a flag
RULE_FLAGS = RULE_FIELDS



def io_flags(parser: Declarations, *, in_place: bool = True) -> None:
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


def key_flags(parser: Declarations) -> None:
    group = parser.add_argument_group("recipients (comma-separated; replace the creation rule's keys)")
    for flag in KEY_FLAGS:
        names = [f"--{flag}"] + ([KEY_SHORT[flag]] if flag in KEY_SHORT else [])
        group.add_argument(*names, metavar="KEYS", action="append", default=None,
                           help=f"(env {KEY_ENV[flag]})")
    group.add_argument("--aws-profile", metavar="NAME", help="AWS profile for KMS keys")
    group.add_argument("--encryption-context", metavar="K:V,...", help="KMS encryption context")
    group.add_argument("--shamir-secret-sharing-threshold", type=int, metavar="N", default=0,
                       help="key groups needed to decrypt")


def rule_flags(parser: Declarations) -> None:
    group = parser.add_argument_group("encryption rules (at most one)")
    for name in RULE_FLAGS:
        group.add_argument("--" + name.replace("_", "-"), metavar="TEXT")
    group.add_argument("--mac-only-encrypted", action="store_true", help="the MAC covers encrypted values only")


def decrypt_flags(parser: Declarations) -> None:
    parser.add_argument("--ignore-mac", action="store_true", help="skip the MAC check (tampered files decrypt too)")
    parser.add_argument("--decryption-order", metavar="TYPES",
                        help="key types to try first, e.g. age,pgp (env SOPS_DECRYPTION_ORDER)")


def target_path(args: argparse.Namespace) -> str | None:
    return args.file if args.file not in (None, "-") else None


def formats(args: argparse.Namespace) -> tuple[str, str]:
    from ..stores import format_for

    name = args.filename_override or target_path(args)
    input_fmt = format_for(name, args.input_type)
    output_fmt = format_for(None, args.output_type) if args.output_type else input_fmt
    return input_fmt, output_fmt


def read_input(args: argparse.Namespace) -> bytes:
    from ..fsio import read_input

    return read_input(checked_input_path(args))


def read_input_buffer(args: argparse.Namespace) -> bytearray:
    """The input in a bytearray the pipeline may empty early (for large decrypts)."""
    from ..fsio import read_input_buffer

    return read_input_buffer(checked_input_path(args))


def checked_input_path(args: argparse.Namespace) -> str | None:

    path = target_path(args)
    if path is not None and not os.path.exists(path):
        raise NoFileSpecified(f"cannot operate on non-existent file {path!r}")
    if getattr(args, "in_place", False) and path is None:
        raise ConflictingParameters("cannot use --in-place when reading from stdin")
    if getattr(args, "in_place", False) and args.output:
        raise ConflictingParameters("--in-place and --output cannot be used together")
    return path


def write_result(args: argparse.Namespace, data: bytes) -> None:
    from ..fsio import write_atomic, write_output

    if getattr(args, "in_place", False):
        assert args.file is not None
        write_atomic(args.file, data)
    else:
        write_output(args.output, data)


def store_indents(args: argparse.Namespace, config: Any) -> tuple[int, int | None]:
    yaml_indent, json_indent = 4, None
    stores = getattr(config, "stores", None) or {}
    if isinstance(stores.get("yaml"), dict) and isinstance(stores["yaml"].get("indent"), int):
        yaml_indent = stores["yaml"]["indent"]
    if isinstance(stores.get("json"), dict) and isinstance(stores["json"].get("indent"), int):
        json_indent = stores["json"]["indent"] if stores["json"]["indent"] >= 0 else None
    if args.indent is not None:
        yaml_indent = args.indent
        json_indent = args.indent if args.indent >= 0 else None
    return yaml_indent, json_indent


def load_config(args: argparse.Namespace) -> Any:
    """The config governing the target, or None; the loader is imported only when one exists."""
    from ..config_search import find_config_path

    target = args.filename_override or target_path(args)
    path = find_config_path(target or None, args.config)
    if path is None:
        return None
    from pathlib import Path

    from .. import config as config_mod

    return config_mod.load_config(Path(path))


def cli_recipients(args: argparse.Namespace) -> list[Any]:
    from .. import providers
    from ..providers.base import Recipient

    recipients: list[Recipient] = []
    for flag, type_id in KEY_FLAGS.items():
        values = getattr(args, flag.replace("-", "_"))
        if not values and os.environ.get(KEY_ENV[flag]):
            values = [os.environ[KEY_ENV[flag]]]
        if not values:
            continue
        provider = providers.get(type_id)
        if provider is None:
            hint = providers.INSTALL_HINTS.get(type_id, "")
            raise SopsError(f"--{flag}: no provider installed for '{type_id}' keys" + (f" ({hint})" if hint else ""))
        for value in values:
            parsed = provider.parse_recipients(value)
            if type_id == "kms":
                parsed = [kms_options(recipient, args) for recipient in parsed]
            recipients.extend(parsed)
    return recipients


def kms_options(recipient: Any, args: argparse.Namespace) -> Any:
    from ..errors import EncryptionContextError

    options = dict(recipient.options)
    if args.aws_profile:
        options["aws_profile"] = args.aws_profile
    if args.encryption_context:
        context: dict[str, str] = {}
        for pair in args.encryption_context.split(","):
            key, sep, value = pair.partition(":")
            if not sep or ":" in value:  # matches sops: exactly one ':' per pair (an empty key is allowed)
                raise EncryptionContextError("--encryption-context takes key:value pairs separated by commas")
            context[key] = value
        options["context"] = tuple(sorted(context.items()))
    return recipient._replace(options=tuple(options.items()))


def encryption_rule(args: argparse.Namespace, rule: Any) -> Any:
    from ..walk import EncryptionRule

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
    from ..api import EncryptOptions

    config = load_config(args)
    rule = None
    if config is not None and config.creation_rules is not None:
        from .. import config as config_mod

        target = args.filename_override or target_path(args)
        if target is None:
            raise ConflictingParameters("reading stdin with a config file needs --filename-override to pick a rule")
        rule = config_mod.match_rule(config, target)
    recipients = cli_recipients(args)
    if recipients:
        groups: list[list[Any]] = [recipients]
    elif rule is not None:
        groups = [list(group) for group in rule.key_groups]
    else:
        groups = []
    threshold = args.shamir_secret_sharing_threshold or (rule.shamir_threshold if rule is not None else 0)
    yaml_indent, json_indent = store_indents(args, config)
    options = EncryptOptions(groups, encryption_rule(args, rule), threshold, yaml_indent, json_indent)
    return options, config
