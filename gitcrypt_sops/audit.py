"""The audit log: an opt-in JSON-lines record of every successful decrypt.

Owns where the log is (``GITCRYPT_SOPS_AUDIT_LOG``, else ``policy: {audit_log: PATH}``
in the governing ``.sops-policy.yaml`` / ``.sops.yaml``, relative to that file), what
a line holds (time, user, host, pid, command, file, format, the recipients that
unwrapped the data key — never a value or key material) and how it is appended:
one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, so
concurrent writers never interleave or tear lines.

:func:`record_decrypt` is called by :func:`gitcrypt_sops.api.decrypt_parsed` after
each decrypt that unwrapped a data key.  When no log is configured it costs a few
``stat`` calls; the config module is imported only when a config file mentions
``audit_log``.  A configured log that cannot be written fails the decrypt (fail
closed): the plaintext is not released unaudited.
"""

from __future__ import annotations

import itertools
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["ENV", "log_path", "record_decrypt", "set_context", "write_record"]

#: the environment variable naming the log file (wins over the policy)
ENV = "GITCRYPT_SOPS_AUDIT_LOG"

_context: dict[str, str | None] | None = None
_policy_cache: dict[tuple[str, int, int], str | None] = {}


def set_context(command: str | None, file: str | None = None, config: str | None = None) -> None:
    """What the next decrypts belong to: the command name, the input file, an explicit config."""
    global _context
    _context = {
        "command": command,
        "file": os.path.abspath(file) if file not in (None, "-") else None,
        "config": config,
    }


def _cli_context() -> dict[str, str | None]:
    """The context of a CLI run that did not call :func:`set_context`, read from its argv."""
    context: dict[str, str | None] = {"command": None, "file": None, "config": None}
    cli: Any = sys.modules.get("gitcrypt_sops.cli")
    program = sys.argv[0] if sys.argv else ""
    ours = os.path.basename(program).startswith("gitcrypt-sops") or program.endswith(
        os.path.join("gitcrypt_sops", "__main__.py"))
    if cli is None or not ours:
        context["command"] = "api"
        return context
    try:
        command = cli._find_command(cli._legacy_form(sys.argv[1:]))
        context["command"] = command
        if command is not None:
            args = cli.parse(sys.argv[1:])
            file = getattr(args, "file", None)
            if isinstance(file, str) and file != "-":
                context["file"] = os.path.abspath(file)
            config = getattr(args, "config", None) or getattr(args, "global_config", None)
            context["config"] = config if isinstance(config, str) else None
    except BaseException:  # noqa: BLE001 - argv of a host program that embeds us: no context
        context["command"] = context["command"] or "api"
    return context


def _current_context() -> dict[str, str | None]:
    global _context
    if _context is None:
        _context = _cli_context()
    return _context


def _find_config(start: str) -> str | None:
    from .config_search import find_config_path

    return find_config_path(os.path.join(start, "-"), None, {})  # SOPS_CONFIG is handled by the caller


def _policy_log_path(config_path: str) -> str | None:
    try:
        info = os.stat(config_path)
    except OSError:
        return None
    cache_key = (os.path.abspath(config_path), info.st_mtime_ns, info.st_size)
    if cache_key in _policy_cache:
        return _policy_cache[cache_key]
    try:
        with open(config_path, "rb") as handle:
            mentioned = b"audit_log" in handle.read()
    except OSError:
        mentioned = False
    result: str | None = None
    if mentioned:
        from pathlib import Path

        from . import config as config_mod
        from .errors import ConfigError

        policy = config_mod.load_config(Path(config_path)).policy or {}
        value = policy.get("audit_log")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{config_path}: policy.audit_log must be a file path")
            value = os.path.expanduser(value)
            result = value if os.path.isabs(value) else os.path.join(os.path.dirname(cache_key[0]), value)
    _policy_cache[cache_key] = result
    return result


def _candidate_configs() -> list[str]:
    """Config files that may name a log, found without parsing argv (this runs on every decrypt)."""
    context = _context or {"file": None, "config": None}
    explicit = context["config"] or os.environ.get("SOPS_CONFIG") or None
    argv = sys.argv[1:] if _context is None else []
    if explicit is None:
        for flag, value in itertools.pairwise(argv):
            if flag == "--config":
                explicit = value
    if explicit:
        return [explicit]
    if context["file"]:
        starts = [os.path.dirname(context["file"])]
    else:
        # the input file is one of the arguments that name a file; cwd covers stdin
        starts = [os.path.dirname(os.path.abspath(arg)) for arg in argv
                  if arg[:1] != "-" and os.path.isfile(arg)] + [os.getcwd()]
    found: list[str] = []
    for start in dict.fromkeys(starts):
        config = _find_config(start)
        if config is not None and config not in found:
            found.append(config)
    return found


def log_path() -> str | None:
    """The audit log in force for the current decrypt, or None when off."""
    named = os.environ.get(ENV)
    if named:
        return os.path.expanduser(named)
    for config in _candidate_configs():
        path = _policy_log_path(config)
        if path is not None:
            return path
    return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER") or str(os.geteuid())


def build_record(recipients: Sequence[str], fmt: str | None) -> dict[str, Any]:
    """One log entry (no value, no key material)."""
    import socket

    from . import __version__
    from .dates import datetime, timezone

    context = _current_context()
    record: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "event": "decrypt",
        "user": _user(),
        "uid": os.geteuid(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": context["command"],
        "file": context["file"],
        "format": fmt,
        "recipients": list(recipients),
        "tool": f"gitcrypt-sops {__version__}",
    }
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        record["sudo_user"] = sudo_user
    return record


def write_record(path: str, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line; OutputError when the log cannot be written."""
    import json

    from .errors import OutputError

    line = (json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise OutputError(f"audit log {path}: cannot open ({error.strerror})",
                          hint=f"the log is configured by {ENV} or policy.audit_log") from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)  # O_APPEND alone is not atomic on every file system (NFS)
        except (ImportError, OSError):
            pass
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    except OSError as error:
        raise OutputError(f"audit log {path}: cannot write ({error.strerror})") from None
    finally:
        os.close(fd)


def record_decrypt(recipients: Sequence[str], fmt: str | None = None) -> None:
    """Log one successful decrypt if an audit log is configured (called by the pipeline)."""
    path = log_path()
    if path is not None:
        write_record(path, build_record(recipients, fmt))
