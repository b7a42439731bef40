"""``check``, ``pre-commit``, ``git install|diff|merge|resolve`` and ``repo``: policy and git integration.

``check`` and ``pre-commit`` read metadata only (no keys, no network) and exit 1
when any rule is broken.  ``git diff`` is the textconv driver and never fails;
``git merge`` is the merge driver (exit 0 merged, 1 conflict or no key).
``repo updatekeys|rotate|decrypt`` run over directories: a plan first, then the work.
"""

from __future__ import annotations

import json
import sys

from ..errors import UsageError
from ..quickargs import SUPPRESS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

_ACTIONS = {
    "install": "write .gitattributes entries, the drivers' git config and (--hook) a pre-commit hook",
    "uninstall": "remove what install wrote",
    "diff": "textconv driver: print what git diff shows for FILE",
    "merge": "merge driver: merge BASE OURS THEIRS into OURS (git passes %O %A %B %P)",
    "resolve": "finish a conflicted merge of FILE, taking --ours or --theirs for the conflicting keys",
}


_REPO_ACTIONS = {
    "updatekeys": "give every sops file the recipients of its creation rule",
    "rotate": "give sops files a new data key (all, or --older-than a duration)",
    "decrypt": "decrypt sops files into --output-dir, or --verify that they decrypt",
}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command == "repo":
        sub_repo = parser.add_subparsers(dest="action", metavar="ACTION")
        for name, help_text in _REPO_ACTIONS.items():
            action = sub_repo.add_parser(name, help=help_text, description=help_text)
            action.add_argument("paths", nargs="*", metavar="PATH",
                                help="files or directories (default: the policy's directory)")
            action.add_argument("--config", metavar="PATH", help="policy file (default: found upwards from each file)")
            action.add_argument("--dry-run", action="store_true", help="print the plan and stop")
            action.add_argument("--jobs", "-j", type=int, metavar="N", help="worker processes (default: by size)")
            if name != "decrypt":
                action.add_argument("--yes", "-y", action="store_true", help="apply without asking")
            if name == "updatekeys":
                action.add_argument("--no-rotate", action="store_true",
                                    help="keep the data key even when a recipient is removed")
            if name == "rotate":
                action.add_argument("--older-than", metavar="AGE",
                                    help="only data keys at least this old, e.g. 90d (see max_data_key_age)")
            if name == "decrypt":
                target = action.add_mutually_exclusive_group(required=True)
                target.add_argument("--output-dir", metavar="DIR", help="write plaintext files (0600) under DIR")
                target.add_argument("--verify", action="store_true", help="decrypt and check MACs, write nothing")
        return
    if command in ("check", "pre-commit"):
        parser.add_argument("paths", nargs="*", metavar="PATH",
                            help="files or directories (default: "
                            + ("the policy's directory)" if command == "check" else "the staged files)"))
        parser.add_argument("--config", metavar="PATH", help="policy file (default: found upwards from each file)")
        parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
        if command == "check":
            parser.add_argument("--jobs", "-j", type=int, metavar="N",
                                help="worker processes (default: one per CPU for large trees)")
            parser.add_argument("--skip", action="append", default=[], metavar="RULE",
                                help="do not report RULE (repeatable)")
        return
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    for name, help_text in _ACTIONS.items():
        action = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)  # help is %-formatted
        if name in ("install", "uninstall"):
            action.add_argument("--config", metavar="PATH", help="policy file (default: found from the current directory)")
            action.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
            if name == "install":
                action.add_argument("--hook", action="store_true", help="also install .git/hooks/pre-commit")
                action.add_argument("--command", dest="driver_command", metavar="CMD",
                                    help="how git should run this tool (default: found on PATH, else this Python)")
        elif name == "diff":
            action.add_argument("file", metavar="FILE")
        elif name == "merge":
            for arg in ("base", "ours", "theirs"):
                action.add_argument(arg, metavar=arg.upper())
            action.add_argument("path", nargs="?", metavar="PATH", help="the file's path in the repository (%%P)")
            action.add_argument("--marker-size", type=int, default=7, help=SUPPRESS)
        elif name == "resolve":
            action.add_argument("file", metavar="FILE")
            side = action.add_mutually_exclusive_group()
            side.add_argument("--ours", action="store_const", const="ours", dest="side",
                              help="take our value for every conflicting key")
            side.add_argument("--theirs", action="store_const", const="theirs", dest="side",
                              help="take their value for every conflicting key")
            action.add_argument("--key", action="append", default=[], metavar='PATH=SIDE',
                                help='one conflict\'s side, e.g. \'["db"]["password"]=theirs\' (repeatable)')


def run(command: str, args: argparse.Namespace) -> int:
    if command == "repo":
        return _repo(args)
    if command == "check":
        return _check(args)
    if command == "pre-commit":
        return _pre_commit(args)
    action = getattr(args, "action", None)
    if action is None:
        raise UsageError("git: give an action: " + ", ".join(_ACTIONS))
    handler: Any = {"install": _install, "uninstall": _uninstall, "diff": _diff, "merge": _merge,
                    "resolve": _resolve}[action]
    result: int = handler(args)
    return result


# --------------------------------------------------------------------------- check


def _report(result: Any, fmt: str, *, stream: Any = None) -> None:
    out = stream or sys.stdout
    if fmt == "json":
        payload = {
            "files_checked": result.files,
            "violations": [v.as_dict() for v in result.violations],
            "seconds": round(result.seconds, 3),
        }
        out.write(json.dumps(payload, indent=2) + "\n")
        return
    for violation in result.violations:
        out.write(violation.as_text() + "\n")
    if result.violations:
        sys.stderr.write(
            f"{len(result.violations)} violation(s) in {result.failed_files} of {result.files} file(s) checked\n"
        )
    else:
        sys.stderr.write(f"{result.files} file(s) checked: no violations\n")


def _check(args: argparse.Namespace) -> int:
    from ..gitdrivers.scan import check_paths
    from ..policy import RULES

    unknown = [rule for rule in args.skip if rule not in RULES]
    if unknown:
        raise UsageError(f"--skip {unknown[0]}: unknown rule (rules: {', '.join(RULES)})")
    result = check_paths(args.paths, config=args.config, jobs=args.jobs, skip=frozenset(args.skip))
    _report(result, args.format)
    return 1 if result.violations else 0


def _pre_commit(args: argparse.Namespace) -> int:
    from ..gitdrivers.scan import check_paths, check_staged

    skip = frozenset({"max_data_key_age"})
    if args.paths:
        result = check_paths(args.paths, config=args.config, skip=skip, jobs=1)
    else:
        result = check_staged(config=args.config, skip=skip)
    _report(result, args.format)
    if result.violations:
        sys.stderr.write("gitcrypt-sops: commit blocked by the policy; fix the files above and stage them again\n")
        return 1
    return 0


# --------------------------------------------------------------------------- git


def _install(args: argparse.Namespace) -> int:
    from ..gitdrivers.install import install

    for line in install(config=args.config, hook=args.hook, command=args.driver_command, dry_run=args.dry_run):
        sys.stdout.write(line + "\n")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from ..gitdrivers.install import uninstall

    for line in uninstall(dry_run=args.dry_run):
        sys.stdout.write(line + "\n")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from ..gitdrivers.textconv import textconv

    sys.stdout.buffer.write(textconv(args.file))
    sys.stdout.buffer.flush()
    return 0


def _merge(args: argparse.Namespace) -> int:
    from ..gitdrivers.merge import merge_driver

    return merge_driver(args.base, args.ours, args.theirs, args.path)


def _resolve(args: argparse.Namespace) -> int:
    from ..gitdrivers.merge import resolve

    choices: dict[str, str] = {}
    for item in args.key:
        path, sep, side = item.rpartition("=")
        if not sep or side not in ("ours", "theirs") or not path:
            raise UsageError(f"--key {item!r}: expected PATH=ours or PATH=theirs")
        choices[path] = side
    return resolve(args.file, side=args.side, keys=choices)


# --------------------------------------------------------------------------- repo


def _repo(args: argparse.Namespace) -> int:
    from ..gitdrivers import bulk

    if args.action is None:
        raise UsageError("repo: give an action: " + ", ".join(_REPO_ACTIONS))
    older_than = None
    if getattr(args, "older_than", None):
        from ..policy import parse_age

        try:
            older_than = parse_age(args.older_than)
        except ValueError as error:
            raise UsageError(f"--older-than: {error}") from None
    output_dir = getattr(args, "output_dir", None)
    if output_dir is not None:
        _refuse_tracked_output(output_dir)
    items = bulk.plan(args.action, args.paths, config=args.config, no_rotate=getattr(args, "no_rotate", False),
                      older_than=older_than, output_dir=output_dir)
    for line in bulk.describe(items, args.action):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    changes = sum(1 for item in items if item.action == "change")
    planned_errors = sum(1 for item in items if item.action == "error")
    if args.dry_run or not changes:
        return 1 if planned_errors else 0
    if args.action != "decrypt" and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("not applying the plan: confirmation needs a terminal; pass --yes to apply it")
        sys.stdout.write(f"Apply to {changes} file(s)? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            sys.stdout.write("nothing changed\n")
            return 0
    progress = bulk.Progress()
    try:
        outcomes = bulk.apply_plan(args.action, items, config=args.config,
                                   no_rotate=getattr(args, "no_rotate", False), output_dir=output_dir,
                                   jobs=args.jobs, progress=progress)
    finally:
        progress.close()
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in outcomes:
        if outcome.ok:
            sys.stdout.write(f"{outcome.display}: {outcome.message}\n")
    for outcome in failed:
        sys.stderr.write(f"gitcrypt-sops: {outcome.display}: {outcome.message} (file left unchanged)\n")
    sys.stdout.write(f"{args.action}: {len(outcomes) - len(failed)} file(s) done, {len(failed)} failed\n")
    return 1 if failed or planned_errors else 0


def _refuse_tracked_output(output_dir: str) -> None:
    """Plaintext must not land where git would pick it up."""
    import os

    from ..gitdrivers import git as gitmod

    target = os.path.abspath(output_dir)
    probe = target
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    root = gitmod.repo_root(probe)
    if root is None:
        return
    import subprocess

    done = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", "--", os.path.join(target, "x")],
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"--output-dir {output_dir} is inside the git work tree {root} and not ignored: "
                         "plaintext could be committed; choose a directory outside it or add it to .gitignore")
