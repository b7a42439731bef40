"""``exec-env``, ``exec-file``, ``k8s-secret`` and ``scan``: deploy-time delivery and secret scanning.

The work is done by :mod:`gitcrypt_sops.deploy` and :mod:`gitcrypt_sops.scan`; this
module declares the flags and wires them.  The exec commands never write to stdout:
it belongs to the child.
"""

from __future__ import annotations

import os

from ..errors import ConflictingParameters, UsageError
from ..quickargs import REMAINDER, SUPPRESS
from .common import decrypt_flags, read_input

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command in ("exec-env", "exec-file"):
        _exec_arguments(command, parser)
    elif command == "k8s-secret":
        _k8s_arguments(parser)
    else:
        _scan_arguments(parser)


def run(command: str, args: argparse.Namespace) -> int:
    if command == "exec-env":
        return cmd_exec_env(args)
    if command == "exec-file":
        return cmd_exec_file(args)
    if command == "k8s-secret":
        return cmd_k8s_secret(args)
    return cmd_scan(args)


# -- exec-env / exec-file ---------------------------------------------------------------------


def _exec_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the encrypted file ('-' for stdin)")
    parser.add_argument("child", nargs=REMAINDER, metavar="COMMAND",
                        help="one word: a /bin/sh -c command line; several words: a program and its arguments"
                             + (" ('{}' is replaced by the file's path)" if command == "exec-file" else ""))
    parser.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary (default: from the name)")
    if command == "exec-file":
        parser.add_argument("--output-type", metavar="TYPE", help="format of the file the command reads")
        parser.add_argument("--no-fifo", action="store_true",
                            help="use a regular 0600 file instead of a FIFO (for programs that seek or reread)")
        parser.add_argument("--filename", metavar="NAME", help="name of the temporary file (default: tmp-file)")
    else:
        parser.add_argument("--same-process", action="store_true",
                            help="replace this process with the command instead of running a child")
    parser.add_argument("--pristine", action="store_true",
                        help="give the command only the decrypted values, not our environment")
    parser.add_argument("--user", metavar="USER", help="run the command as USER (needs root)")
    parser.add_argument("--background", action="store_true", help=SUPPRESS)
    decrypt_flags(parser)


def _decrypt_input(command: str, args: argparse.Namespace) -> tuple[bytes, str]:
    from .. import audit
    from ..stores import format_for

    data = read_input(args)
    name = args.file if args.file not in (None, "-") else None
    audit.set_context(command, name, getattr(args, "config", None))
    return data, format_for(name, args.input_type)


def cmd_exec_env(args: argparse.Namespace) -> int:
    import sys

    from .. import api, datakey, deploy

    deploy.child_argv(args.child)
    if args.background:
        if args.same_process:
            raise ConflictingParameters("--same-process cannot be used with --background")
        sys.stderr.write("gitcrypt-sops: --background is deprecated (as in sops); the command is not waited for\n")
    user = deploy.resolve_user(args.user) if args.user else None
    data, fmt = _decrypt_input("exec-env", args)
    order = datakey.decryption_order(explicit=args.decryption_order)
    decrypted = api.decrypt_data(data, fmt, ignore_mac=args.ignore_mac, decryption_order=order)
    values = deploy.environment_from(decrypted.documents[0])
    status = deploy.exec_env(values, args.child, pristine=args.pristine, user=user,
                             same_process=args.same_process, background=args.background)
    return deploy.exit_like(status)


def cmd_exec_file(args: argparse.Namespace) -> int:
    from .. import api, datakey, deploy
    from ..stores import format_for

    deploy.child_argv(args.child)
    if args.background:
        raise ConflictingParameters("--background cannot be used with exec-file: the file is removed when we exit")
    user = deploy.resolve_user(args.user) if args.user else None
    data, fmt = _decrypt_input("exec-file", args)
    output_fmt = format_for(None, args.output_type) if args.output_type else fmt
    order = datakey.decryption_order(explicit=args.decryption_order)
    plaintext = api.decrypt_bytes(data, fmt, output_fmt, ignore_mac=args.ignore_mac, decryption_order=order)
    status = deploy.exec_file(plaintext, args.child, fifo=not args.no_fifo, filename=args.filename,
                              pristine=args.pristine, user=user)
    return deploy.exit_like(status)


# -- k8s-secret -------------------------------------------------------------------------------


def _k8s_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="the encrypted file (stdin when omitted or '-')")
    parser.add_argument("--name", required=True, help="metadata.name of the Secret")
    parser.add_argument("--namespace", "-n", metavar="NS", help="metadata.namespace of the Secret")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--data", dest="string_data", action="store_false", default=False,
                      help="base64 values under 'data' (the default)")
    mode.add_argument("--string-data", dest="string_data", action="store_true",
                      help="text values under 'stringData'")
    parser.add_argument("--type", dest="secret_type", default="Opaque", metavar="TYPE",
                        help="Secret type (default Opaque), e.g. kubernetes.io/dockerconfigjson")
    parser.add_argument("--label", action="append", default=[], metavar="K=V", help="add a label (repeatable)")
    parser.add_argument("--annotation", action="append", default=[], metavar="K=V",
                        help="add an annotation (repeatable)")
    parser.add_argument("--file-key", metavar="KEY",
                        help="store the whole decrypted file under KEY (default for binary files: the file name)")
    parser.add_argument("--input-type", metavar="TYPE", help="yaml, json, dotenv, ini or binary (default: from the name)")
    parser.add_argument("--output-type", metavar="TYPE", help="with --file-key: the format of the stored file")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml", help="manifest format (default yaml)")
    parser.add_argument("--output", metavar="PATH", help="write the manifest to PATH (atomically) instead of stdout")
    decrypt_flags(parser)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def cmd_k8s_secret(args: argparse.Namespace) -> int:
    from .. import api, datakey, deploy
    from ..fsio import write_output
    from ..stores import format_for

    labels = _pairs(args.label, "--label")
    annotations = _pairs(args.annotation, "--annotation")
    data, fmt = _decrypt_input("k8s-secret", args)
    order = datakey.decryption_order(explicit=args.decryption_order)
    file_key = args.file_key
    if file_key is None and fmt == "binary":
        file_key = os.path.basename(args.file) if args.file not in (None, "-") else "data"
    common: dict[str, Any] = {
        "name": args.name, "namespace": args.namespace, "string_data": args.string_data,
        "secret_type": args.secret_type, "labels": labels, "annotations": annotations,
    }
    if file_key is not None:
        output_fmt = format_for(None, args.output_type) if args.output_type else fmt
        plaintext = api.decrypt_bytes(data, fmt, output_fmt, ignore_mac=args.ignore_mac, decryption_order=order)
        manifest = deploy.secret_manifest({file_key: plaintext}, **common)
    else:
        if args.output_type:
            raise UsageError("--output-type applies to --file-key only")
        decrypted = api.decrypt_data(data, fmt, ignore_mac=args.ignore_mac, decryption_order=order)
        if len(decrypted.documents) != 1:
            raise UsageError("a multi-document YAML file needs --file-key")
        manifest = deploy.secret_manifest(document=decrypted.documents[0], **common)
    write_output(args.output, deploy.render_manifest(manifest, args.format))
    return 0


# -- scan -------------------------------------------------------------------------------------


def _scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: .)")
    parser.add_argument("--git-history", action="store_true", help="also scan every commit reachable from any ref")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    parser.add_argument("--baseline", metavar="PATH",
                        help="ignore the findings listed in PATH (default: .gitcrypt-sops-scan.json at the root, if any)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write every current finding to the baseline and exit 0 (adopt on an existing repo)")
    parser.add_argument("--config", metavar="PATH", help="policy file (default: found from the root upwards)")
    parser.add_argument("--no-policy", action="store_true", help="do not check must_encrypt / never_plaintext")
    parser.add_argument("--max-size", type=int, default=4 * 1024 * 1024, metavar="BYTES",
                        help="skip files larger than this (default 4 MiB)")
    parser.add_argument("--jobs", "-j", type=int, default=0, metavar="N", help="worker processes (default: CPUs)")


def cmd_scan(args: argparse.Namespace) -> int:
    import sys

    from .. import scan
    from ..errors import NoFileSpecified

    if args.baseline and not args.update_baseline and not os.path.exists(args.baseline):
        raise NoFileSpecified(f"baseline {args.baseline} does not exist (create it with --update-baseline)")
    options = scan.ScanOptions(
        paths=args.paths or ["."],
        history=args.git_history,
        baseline=args.baseline,
        config=args.config,
        policy=not args.no_policy,
        max_size=args.max_size,
        jobs=args.jobs,
    )
    report = scan.run_scan(options)
    if args.update_baseline:
        path = scan.write_baseline(report, args.baseline)
        sys.stderr.write(f"gitcrypt-sops: wrote {len(report.all_findings)} finding(s) to {path}\n")
        return 0
    from ..fsio import write_output

    if args.format == "json":
        write_output(None, report.to_json().encode())
    else:
        write_output(None, report.to_text().encode())
        sys.stderr.write(f"gitcrypt-sops scan: {report.summary()}\n")
    return 1 if report.findings else 0
