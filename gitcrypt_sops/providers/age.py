"""The age key provider: ``age1…`` X25519 and ``ssh-ed25519``/``ssh-rsa`` recipients.

Owns the ``age`` metadata entries (``recipient``, ``enc``), the parsing of age
recipients, and the search for the identities that unwrap them.  Identities are
looked for in the same places as sops 3.11 (build 09cf07a5), and every place
found contributes (no first-wins):

* ``SOPS_AGE_SSH_PRIVATE_KEY_FILE``, and also ``$HOME/.ssh/id_ed25519`` and
  ``$HOME/.ssh/id_rsa`` when those exist;
* ``SOPS_AGE_KEY`` (identities text), ``SOPS_AGE_KEY_FILE``, the output of
  ``SOPS_AGE_KEY_CMD`` (run with ``SOPS_AGE_RECIPIENT`` set);
* ``<user config dir>/sops/age/keys.txt``.

Loaded identities are cached per process, keyed on the environment that chose
them; :func:`clear_cache` forgets them.  Messages name locations and public
recipients only, never key material.
"""

from __future__ import annotations

import os
import sys

import pyrage  # type: ignore[import-untyped]
from pyrage import ssh as _ssh
from pyrage import x25519 as _x25519

from ..errors import ConfigError
from .base import KeyProvider, ProviderError, Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "AgeProvider",
    "clear_cache",
    "generate_identity",
    "load_identities",
    "parse_recipient",
]

ENV_KEY = "SOPS_AGE_KEY"
ENV_KEY_FILE = "SOPS_AGE_KEY_FILE"
ENV_KEY_CMD = "SOPS_AGE_KEY_CMD"
ENV_RECIPIENT = "SOPS_AGE_RECIPIENT"
ENV_SSH_KEY_FILE = "SOPS_AGE_SSH_PRIVATE_KEY_FILE"
USER_CONFIG_KEYS = ("sops", "age", "keys.txt")

#: every environment variable that decides where identities come from
_ENV_INPUTS = (
    ENV_SSH_KEY_FILE,
    ENV_KEY,
    ENV_KEY_FILE,
    ENV_KEY_CMD,
    "HOME",
    "XDG_CONFIG_HOME",
    "USERPROFILE",
    "APPDATA",
)


# --------------------------------------------------------------------------- recipients


def _short(recipient: str) -> str:
    """A recipient shortened for messages (an ssh key is long; its comment is dropped)."""
    if recipient.startswith("ssh-"):
        parts = recipient.split()
        if len(parts) >= 2 and len(parts[1]) > 24:
            return f"{parts[0]} {parts[1][:12]}…{parts[1][-8:]}"
        return " ".join(parts[:2])
    if len(recipient) > 70:
        return recipient[:40] + "…" + recipient[-8:]
    return recipient


def parse_recipient(text: str) -> Any:
    """The pyrage recipient for one age or ssh public key; ConfigError if not one."""
    text = text.strip()
    # matches sops: the kind is told by the prefix; an X25519 key has no second "1"
    if text.startswith("age1pq1"):
        raise ConfigError(
            f"unsupported age recipient {_short(text)}: post-quantum keys are not supported"
        )
    if text.startswith("age1") and text.count("1") > 1:
        raise ConfigError(
            f"unsupported age recipient {_short(text)}: age plugins are not supported"
        )
    if text.startswith("age1"):
        try:
            return _x25519.Recipient.from_str(text)
        except pyrage.RecipientError:
            raise ConfigError(
                f"invalid age recipient {_short(text)}: not a valid age1… public key"
            ) from None
    if text.startswith("ssh-"):
        try:
            return _ssh.Recipient.from_str(text)
        except pyrage.RecipientError:
            raise ConfigError(
                f"invalid age recipient {_short(text)}: not a valid ssh-ed25519 or ssh-rsa public key"
            ) from None
    if text.upper().startswith(("AGE-SECRET-KEY-", "AGE-PLUGIN-")) or "PRIVATE KEY" in text:
        # never echo it: this is key material given where a public key belongs
        raise ConfigError("invalid age recipient: a private key was given instead of a public key")
    shown = text if len(text) <= 12 else text[:12] + "…"
    raise ConfigError(f"invalid age recipient {shown!r}: expected an age1… or ssh- public key")


# --------------------------------------------------------------------------- identities


class _Loaded:
    """What one search for identities found (a plain class: cheaper to define than a dataclass)."""

    __slots__ = ("identities", "problems", "sources", "tried")

    def __init__(self) -> None:
        self.identities: list[Any] = []
        #: (location, number of identities it gave)
        self.sources: list[tuple[str, int]] = []
        #: every location looked at, in order
        self.tried: list[str] = []
        #: one-line notes on locations that could not be used (no key material)
        self.problems: list[str] = []

    def add(self, location: str, identities: list[Any]) -> None:
        self.identities.extend(identities)
        self.sources.append((location, len(identities)))


_cache: dict[tuple[Any, ...], _Loaded] = {}


def clear_cache() -> None:
    """Forget the identities loaded so far (they are otherwise kept for the process)."""
    _cache.clear()


def _home_dir() -> str | None:
    """matches Go's os.UserHomeDir: only the environment, no password-database fallback."""
    name = "USERPROFILE" if sys.platform == "win32" else "HOME"
    return os.environ.get(name) or None


def _user_config_dir() -> str | None:
    """matches sops's getUserConfigDir (Go's os.UserConfigDir, XDG honoured on macOS too)."""
    if sys.platform == "win32":
        return os.environ.get("APPDATA") or None
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if sys.platform == "darwin":
        if xdg:
            return xdg
        home = _home_dir()
        return os.path.join(home, "Library", "Application Support") if home else None
    if xdg:
        # matches Go: a relative XDG_CONFIG_HOME is an error, not a fallback to $HOME
        return xdg if os.path.isabs(xdg) else None
    home = _home_dir()
    return os.path.join(home, ".config") if home else None


def _describe_os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _ssh_key_is_encrypted(data: bytes) -> bool:
    """True for a passphrase-protected OpenSSH or PEM private key."""
    if b"Proc-Type: 4,ENCRYPTED" in data or b"BEGIN ENCRYPTED PRIVATE KEY" in data:
        return True
    begin = b"-----BEGIN OPENSSH PRIVATE KEY-----"
    start = data.find(begin)
    if start < 0:
        return False
    import base64
    import binascii

    body = data[start + len(begin) :].split(b"-----END", 1)[0]
    try:
        raw = base64.b64decode(b"".join(body.split()))
    except (binascii.Error, ValueError):
        return False
    magic = b"openssh-key-v1\x00"
    if not raw.startswith(magic) or len(raw) < len(magic) + 4:
        return False
    size = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
    cipher = raw[len(magic) + 4 : len(magic) + 4 + size]
    return cipher != b"none"


def _load_ssh_key(location: str, path: str, found: _Loaded) -> None:
    found.tried.append(location)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        found.problems.append(f"{location}: cannot read ({_describe_os_error(exc)})")
        return
    if _ssh_key_is_encrypted(data):
        found.problems.append(
            f"{location}: passphrase-protected SSH keys are not supported, skipped"
        )
        return
    try:
        identity = _ssh.Identity.from_buffer(data)
    except pyrage.IdentityError:
        found.problems.append(f"{location}: not a usable ssh-ed25519 or ssh-rsa private key")
        return
    found.add(location, [identity])


def _load_ssh_identities(found: _Loaded) -> None:
    # matches sops: the env file and the two default keys all count, not either/or
    path = os.environ.get(ENV_SSH_KEY_FILE)
    if path is not None:
        _load_ssh_key(f"{ENV_SSH_KEY_FILE}={path}", path, found)
    else:
        found.tried.append(ENV_SSH_KEY_FILE)
    home = _home_dir()
    if home is None:
        found.problems.append("$HOME is not set, ~/.ssh not searched")
        return
    for name in ("id_ed25519", "id_rsa"):
        default = os.path.join(home, ".ssh", name)
        try:
            os.stat(default)
        except OSError:
            found.tried.append(default)
            continue
        _load_ssh_key(default, default, found)


def _parse_identities(location: str, data: bytes, found: _Loaded) -> None:
    """Identity lines as sops reads them: one a line, blank and ``#`` lines skipped."""
    # matches sops: a location that holds an age-encrypted file is a passphrase-protected identity
    if data.startswith((b"age-encryption", b"-----BEGIN AGE")):
        found.problems.append(
            f"{location}: passphrase-protected identity files are not supported, skipped"
        )
        return
    identities: list[Any] = []
    skipped = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line or line.startswith(b"#"):
            continue
        if line.startswith((b"AGE-PLUGIN-", b"AGE-SECRET-KEY-PQ-1")):
            skipped += 1
            continue
        # matches sops: one malformed line makes the whole location unusable
        if not line.startswith(b"AGE-SECRET-KEY-1"):
            found.problems.append(f"{location}: line {number} is not an age identity")
            return
        try:
            identities.append(_x25519.Identity.from_str(line.decode("ascii")))
        except (pyrage.IdentityError, UnicodeDecodeError):
            found.problems.append(f"{location}: line {number} is not a valid age identity")
            return
    if skipped:
        found.problems.append(
            f"{location}: {skipped} plugin or post-quantum identities are not supported, skipped"
        )
    found.add(location, identities)


def _run_key_cmd(command: str, recipient: str | None) -> bytes | str:
    """The stdout of SOPS_AGE_KEY_CMD, or a one-line problem (never its output)."""
    import shlex
    import subprocess

    try:
        args = shlex.split(command)
    except ValueError:
        return f"{ENV_KEY_CMD}: the command cannot be parsed"
    if not args:
        return f"{ENV_KEY_CMD}: the command is empty"
    env = dict(os.environ)
    if recipient is not None:
        env[ENV_RECIPIENT] = recipient
    try:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
    except OSError as exc:
        return f"{ENV_KEY_CMD}: the command could not be run ({_describe_os_error(exc)})"
    if done.returncode < 0:
        return f"{ENV_KEY_CMD}: the command was killed by signal {-done.returncode}"
    if done.returncode != 0:
        return f"{ENV_KEY_CMD}: the command failed with exit status {done.returncode}"
    return done.stdout


def _load(recipient: str | None) -> _Loaded:
    found = _Loaded()
    _load_ssh_identities(found)

    text = os.environ.get(ENV_KEY)
    found.tried.append(ENV_KEY)
    if text is not None:
        _parse_identities(ENV_KEY, text.encode("utf-8", "surrogateescape"), found)

    path = os.environ.get(ENV_KEY_FILE)
    if path is not None:
        location = f"{ENV_KEY_FILE}={path}"
        found.tried.append(location)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            found.problems.append(f"{location}: cannot open ({_describe_os_error(exc)})")
        else:
            _parse_identities(location, data, found)
    else:
        found.tried.append(ENV_KEY_FILE)

    command = os.environ.get(ENV_KEY_CMD)
    found.tried.append(ENV_KEY_CMD)
    if command is not None:
        output = _run_key_cmd(command, recipient)
        if isinstance(output, str):
            found.problems.append(output)
        else:
            _parse_identities(ENV_KEY_CMD, output, found)

    config_dir = _user_config_dir()
    if config_dir is None:
        found.problems.append("the user config directory is unknown (HOME/XDG_CONFIG_HOME)")
    else:
        keys_path = os.path.join(config_dir, *USER_CONFIG_KEYS)
        found.tried.append(keys_path)
        try:
            with open(keys_path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            pass
        except OSError as exc:
            found.problems.append(f"{keys_path}: cannot open ({_describe_os_error(exc)})")
        else:
            _parse_identities(keys_path, data, found)
    return found


def _cache_key(recipient: str | None) -> tuple[Any, ...]:
    env = tuple(os.environ.get(name) for name in _ENV_INPUTS)
    # the command may answer per recipient (it sees SOPS_AGE_RECIPIENT)
    per_recipient = recipient if ENV_KEY_CMD in os.environ else None
    try:
        cwd = os.getcwd()  # relative paths in the variables depend on it
    except OSError:
        cwd = ""
    return (env, per_recipient, cwd)


def _identities_for(recipient: str | None) -> _Loaded:
    key = _cache_key(recipient)
    found = _cache.get(key)
    if found is None:
        found = _load(recipient)
        _cache[key] = found
    return found


def load_identities(recipient: str | None = None) -> list[Any]:
    """Every age/ssh identity (pyrage objects) found in the current environment.

    ``recipient`` is passed to ``SOPS_AGE_KEY_CMD`` as ``SOPS_AGE_RECIPIENT``.
    """
    return list(_identities_for(recipient).identities)


def generate_identity() -> tuple[str, str]:
    """A new X25519 identity: ``(AGE-SECRET-KEY-1…, age1…)``."""
    identity = _x25519.Identity.generate()
    return str(identity), str(identity.to_public())


# --------------------------------------------------------------------------- provider


class AgeProvider(KeyProvider):
    """Wraps data keys with age, one armored age file per recipient (as sops does)."""

    type_id = "age"
    cli_flag = "age"
    config_keys = ("age",)

    def parse_recipients(self, text: str) -> list[Recipient]:
        recipients = []
        for item in text.split(","):
            item = item.strip()
            if item:
                parse_recipient(item)
                recipients.append(Recipient(self.type_id, item))
        return recipients

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        try:
            parsed = parse_recipient(recipient.ident)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        try:
            armored: bytes = pyrage.encrypt(data_key, [parsed], armored=True)
        except pyrage.EncryptError:
            raise ProviderError(
                f"age encryption failed for recipient {_short(recipient.ident)}"
            ) from None
        enc = armored.decode("ascii")
        if not enc.endswith("\n"):
            enc += "\n"  # matches sops: the armor ends with a newline
        return {"recipient": recipient.ident, "enc": enc}

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        ident = entry.get("recipient")
        if not isinstance(ident, str) or not ident.strip():
            raise ProviderError("age entry without a recipient")
        return Recipient(self.type_id, ident)

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        recipient = self.recipient_of(entry).ident
        enc = entry.get("enc")
        if not isinstance(enc, str) or not enc:
            raise ProviderError(f"age entry for recipient {_short(recipient)} has no enc")
        found = _identities_for(recipient)
        notes = "".join(f"; {problem}" for problem in found.problems)
        if not found.identities:
            raise ProviderError(
                f"no age identity found (looked in {', '.join(found.tried)}){notes}"
            )
        try:
            data_key: bytes = pyrage.decrypt(enc.encode("utf-8"), found.identities)
        except pyrage.DecryptError as exc:
            count = len(found.identities)
            if "no matching keys" in str(exc).lower():
                sources = ", ".join(location for location, n in found.sources if n)
                raise ProviderError(
                    f"no age identity matches recipient {_short(recipient)} "
                    f"(tried {count} {'identity' if count == 1 else 'identities'} from {sources}){notes}"
                ) from None
            raise ProviderError(
                f"cannot decrypt the age entry for recipient {_short(recipient)}: "
                "the enc field is not a valid age file"
            ) from None
        return data_key
