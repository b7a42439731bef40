"""``git install``: ``.gitattributes`` entries, the drivers' git config, the pre-commit hook.

What is written:

* a managed block in the repository's top ``.gitattributes`` that gives
  ``diff=sops merge=sops`` to every ``must_encrypt`` glob of the policy and to every
  sops-encrypted file under the policy's directory that no glob covers;
* in the repository's own config (``git config --local``): ``diff.sops.textconv``,
  ``diff.sops.cachetextconv=false`` (a cache would keep plaintext in
  ``refs/notes/textconv``), ``merge.sops.name`` and ``merge.sops.driver``;
* with ``--hook``, ``.git/hooks/pre-commit`` running ``gitcrypt-sops pre-commit``
  (an existing hook that is not ours is left alone and reported).

Running it again replaces what it wrote before; ``uninstall`` removes it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from .. import config as config_mod
from ..errors import ConfigNotFound, SopsError
from . import git as gitmod

__all__ = ["BEGIN", "END", "attribute_patterns", "driver_command", "install", "uninstall"]

BEGIN = "# >>> gitcrypt-sops: managed by 'gitcrypt-sops git install', do not edit >>>"
END = "# <<< gitcrypt-sops <<<"
ATTRIBUTES = "diff=sops merge=sops"
_HOOK_MARK = "# installed by gitcrypt-sops git install --hook"


def driver_command(explicit: str | None = None) -> str:
    """How git should start this tool: ``explicit``, ``gitcrypt-sops`` when on PATH, else this Python."""
    if explicit:
        return explicit
    found = shutil.which("gitcrypt-sops")
    if found and os.path.dirname(os.path.realpath(found)) == os.path.dirname(os.path.realpath(sys.executable)):
        return "gitcrypt-sops"
    return f"{shlex.quote(sys.executable)} -m gitcrypt_sops"


def _git_pattern(glob: str, prefix: str) -> str:
    """A ``must_encrypt`` glob (relative to the policy's directory) as a top-level gitattributes pattern."""
    text = glob.strip()
    if text.endswith("/"):
        text += "**"
    anchored = "/" in text.rstrip("/")
    text = text.lstrip("/")
    if not prefix:
        return text
    return f"{prefix}/{text}" if anchored else f"{prefix}/**/{text}"


def _escape(name: str) -> str:
    """A literal path as a gitattributes pattern (glob characters and blanks escaped)."""
    out = []
    for char in name:
        if char in "*?[\\":
            out.append("\\" + char)
        elif char.isspace():
            out.append("[" + char + "]")
        else:
            out.append(char)
    return "".join(out)


def attribute_patterns(root: Path, policy_path: Path) -> list[str]:
    """The patterns the managed block lists, for the repository at ``root``."""
    from ..policy import load_policy
    from ..stores import format_for

    policy = load_policy(policy_path)
    prefix = os.path.relpath(policy.root, root)
    prefix = "" if prefix == "." else Path(prefix).as_posix()
    patterns = [_git_pattern(glob, prefix) for glob in policy.must_encrypt]
    spec = [prefix] if prefix else []
    for name in gitmod.list_files(root, spec):
        relative = policy.relative(root / name)
        if relative is None or policy.must_be_encrypted(relative) or os.path.basename(name) in config_mod.CONFIG_NAMES:
            continue
        if _is_sops_file(root / name, format_for(name)):
            patterns.append(_escape(name))
    return list(dict.fromkeys(patterns))


def _is_sops_file(path: Path, fmt: str) -> bool:
    from .. import api

    try:
        data = path.read_bytes()
    except OSError:
        return False
    if b"ENC[AES256_GCM" not in data or b"lastmodified" not in data:
        return False
    try:
        return bool(api.parse(data, fmt, encrypted=True).has_metadata)
    except (SopsError, ValueError, RecursionError):
        return False


def _block(patterns: list[str]) -> str:
    lines = [BEGIN] + [f"{pattern} {ATTRIBUTES}" for pattern in patterns] + [END]
    return "\n".join(lines) + "\n"


def _without_block(text: str) -> str:
    start = text.find(BEGIN)
    if start == -1:
        return text
    end = text.find(END, start)
    end = len(text) if end == -1 else end + len(END)
    if end < len(text) and text[end] == "\n":
        end += 1
    return text[:start] + text[end:]


def _root() -> Path:
    root = gitmod.repo_root(os.getcwd())
    if root is None:
        raise gitmod.GitError("not inside a git work tree")
    return root


def _hook_path(root: Path) -> Path:
    out = gitmod.git(["rev-parse", "--git-path", "hooks/pre-commit"], root).decode().strip()
    path = Path(out)
    return path if path.is_absolute() else root / path


def install(*, config: str | None = None, hook: bool = False, command: str | None = None,
            dry_run: bool = False) -> list[str]:
    """Write the attributes, config and (``hook``) the hook; the lines describe what was done."""
    root = _root()
    policy_path = Path(config) if config else config_mod.find_config(None, None)
    if policy_path is None:
        raise ConfigNotFound("no .sops-policy.yaml or .sops.yaml here or above (give --config)")
    patterns = attribute_patterns(root, policy_path)
    cmd = driver_command(command)
    settings = [
        ("diff.sops.textconv", f"{cmd} git diff"),
        ("diff.sops.cachetextconv", "false"),
        ("merge.sops.name", "gitcrypt-sops: merge sops-encrypted files key by key"),
        ("merge.sops.driver", f"{cmd} git merge %O %A %B %P"),
    ]
    attributes = root / ".gitattributes"
    old = attributes.read_text() if attributes.exists() else ""
    kept = _without_block(old)
    new = kept + ("" if not kept or kept.endswith("\n") else "\n") + _block(patterns)
    verb = "would " if dry_run else ""
    lines = [f"{verb}write {len(patterns)} pattern(s) to .gitattributes:"] + [f"  {p} {ATTRIBUTES}" for p in patterns]
    if not dry_run and new != old:
        from ..fsio import write_atomic

        write_atomic(attributes, new.encode())
    for name, value in settings:
        lines.append(f"{verb}set git config --local {name} {shlex.quote(value)}")
        if not dry_run:
            gitmod.git(["config", "--local", name, value], root)
    if hook:
        lines.extend(_install_hook(root, cmd, dry_run))
    else:
        lines.append("pre-commit: run 'gitcrypt-sops git install --hook', or use the pre-commit framework "
                     "hook 'gitcrypt-sops-check'")
    return lines


def _install_hook(root: Path, cmd: str, dry_run: bool) -> list[str]:
    path = _hook_path(root)
    if path.exists() and _HOOK_MARK not in path.read_text(errors="replace"):
        return [f"left the existing {path} alone; add this line to it: {cmd} pre-commit"]
    script = f"#!/bin/sh\n{_HOOK_MARK}\nexec {cmd} pre-commit\n"
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        path.chmod(0o755)
    return [f"{'would install' if dry_run else 'installed'} {path}"]


def uninstall(*, dry_run: bool = False) -> list[str]:
    """Remove the managed block, the drivers' config and our hook."""
    root = _root()
    lines = []
    attributes = root / ".gitattributes"
    verb = "would " if dry_run else ""
    if attributes.exists():
        old = attributes.read_text()
        new = _without_block(old)
        if new != old:
            lines.append(f"{verb}remove the gitcrypt-sops block from .gitattributes")
            if not dry_run:
                if new.strip():
                    attributes.write_text(new)
                else:
                    attributes.unlink()
    for section in ("diff.sops", "merge.sops"):
        present = gitmod.git(["config", "--local", "--get-regexp", "^" + section.replace(".", "\\.") + "\\."],
                             root, check=False)
        if present.strip():
            lines.append(f"{verb}remove git config section {section}")
            if not dry_run:
                gitmod.git(["config", "--local", "--remove-section", section], root)
    path = _hook_path(root)
    if path.exists() and _HOOK_MARK in path.read_text(errors="replace"):
        lines.append(f"{verb}remove {path}")
        if not dry_run:
            path.unlink()
    return lines or ["nothing to remove"]
