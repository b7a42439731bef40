"""The PGP key provider: ``pgp`` entries, wrapped and unwrapped by the GnuPG ``gpg`` binary.

Owns the parsing of PGP recipients (fingerprints; spaces are removed and hex is
upper-cased), the ``pgp`` metadata entries (``created_at``, ``enc`` = an
ASCII-armored OpenPGP message, ``fp``) and the two ``gpg`` runs.  Like sops
3.11 (whose pure-Go path needs the pre-2.1 ``pubring.gpg``/``secring.gpg``,
absent from any current GnuPG home), it runs ``$SOPS_GPG_EXEC`` or ``gpg`` from
PATH, which finds its keys through ``GNUPGHOME`` (default ``~/.gnupg``):

* encrypt: ``--no-default-recipient --yes --encrypt -a -r FPR --trusted-key
  <long key id> --no-encrypt-to``;
* decrypt: ``-d``.

Every run adds ``--batch`` (gpg itself never prompts) and ``--status-fd 2``
(machine-readable reasons for failures).  Decryption needs no passphrase for an
unprotected key or one whose passphrase gpg-agent has cached.  Otherwise it asks
through the agent's pinentry only when stdin is a terminal; without one it adds
``--pinentry-mode loopback`` so gpg fails at once instead of waiting for a
pinentry nobody will answer.  python-gnupg is not used: it runs the same binary
with a generic argument set, and the exact sops arguments plus our own status
parsing are shorter than adapting it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from ..records import Record
from .base import KeyProvider, ProviderError, Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PgpProvider", "gnupg_home", "gpg_binary", "normalize_fingerprint"]

ENV_GPG_EXEC = "SOPS_GPG_EXEC"
#: a fingerprint (v4: 40 hex, v5: 64 hex) or a long key id, optionally with gpg's "exact key" '!'
_FINGERPRINT = re.compile(r"^(?:0X)?([0-9A-F]{16}|[0-9A-F]{40}|[0-9A-F]{64})(!?)$")
#: seconds a non-interactive gpg run may take before it is abandoned
TIMEOUT = 120.0
#: gpg's INV_RECP reason codes (doc/DETAILS in GnuPG)
_INVALID_RECIPIENT = {
    "1": "no public key for it in the keyring (import it with gpg --import)",
    "2": "the key specification is ambiguous",
    "3": "the key cannot encrypt (no encryption subkey)",
    "4": "the key is revoked",
    "5": "the key is expired",
    "10": "the key is not trusted",
    "13": "the key is disabled",
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as stored in ``fp``: spaces removed, upper-case; ConfigError if not hex."""
    # matches sops: every space is removed (sops keeps the case; we upper-case, gpg does not care)
    fingerprint = text.replace(" ", "").strip().upper()
    match = _FINGERPRINT.match(fingerprint)
    if match is None:
        shown = text.strip() if len(text.strip()) <= 80 else text.strip()[:70] + "…"
        raise ConfigError(
            f"invalid PGP fingerprint {shown!r}: expected 40 (or 64) hex digits, spaces allowed"
        )
    return match[1] + match[2]


def _long_key_id(fingerprint: str) -> str:
    """matches sops: the last 16 hex digits, keeping a trailing '!'."""
    exact = fingerprint.endswith("!")
    digits = fingerprint.rstrip("!")
    return digits[-16:] + ("!" if exact else "")


def gpg_binary() -> str:
    """The gpg program: ``$SOPS_GPG_EXEC`` or ``gpg`` (found on PATH)."""
    return os.environ.get(ENV_GPG_EXEC) or "gpg"


def gnupg_home() -> str:
    """The GnuPG home gpg will use: ``$GNUPGHOME``, else ``~/.gnupg`` (for messages only)."""
    return os.environ.get("GNUPGHOME") or os.path.join(os.path.expanduser("~"), ".gnupg")


def _interactive() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


class _Run(Record):
    returncode: int
    stdout: bytes
    #: ``[GNUPG:]`` status lines, keyword first
    status: list[list[str]]
    #: the human-readable ``gpg:`` lines
    messages: list[str]

    def has(self, keyword: str) -> bool:
        return any(line[0] == keyword for line in self.status)

    def args_of(self, keyword: str) -> list[list[str]]:
        return [line[1:] for line in self.status if line[0] == keyword]

    def last_message(self) -> str:
        for line in reversed(self.messages):
            text = line.removeprefix("gpg:").strip()
            if text:
                return text if len(text) <= 160 else text[:159] + "…"
        return ""


def _run(args: Sequence[str], data: bytes, *, interactive: bool) -> _Run:
    import subprocess

    binary = gpg_binary()
    argv = [binary, "--batch", "--status-fd", "2"]
    env = None
    timeout: float | None = TIMEOUT
    if interactive:
        if "GPG_TTY" not in os.environ:
            try:
                env = {**os.environ, "GPG_TTY": os.ttyname(0)}
            except OSError:
                pass
        timeout = None  # a person may be typing a passphrase
    else:
        argv += ["--no-tty", "--pinentry-mode", "loopback"]
        env = {**os.environ, "LC_ALL": "C"}  # English messages for the fallback reasons (no pinentry here)
    argv += args
    try:
        done = subprocess.run(argv, input=data, capture_output=True, env=env, timeout=timeout, check=False)
    except FileNotFoundError:
        where = f"{ENV_GPG_EXEC}={binary}" if os.environ.get(ENV_GPG_EXEC) else "gpg on PATH"
        raise ProviderError(f"GnuPG is not installed: {where} not found") from None
    except subprocess.TimeoutExpired:
        raise ProviderError(f"gpg did not finish within {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise ProviderError(f"cannot run {binary}: {exc.strerror or type(exc).__name__}") from None
    status: list[list[str]] = []
    messages: list[str] = []
    for raw in done.stderr.decode("utf-8", "replace").splitlines():
        if raw.startswith("[GNUPG:] "):
            parts = raw[9:].split()
            if parts:
                status.append(parts)
        else:
            messages.append(raw)
    return _Run(done.returncode, done.stdout, status, messages)


def _agent_problem(run: _Run) -> str | None:
    text = " ".join(run.messages).lower()
    if "can't connect to the agent" in text or "no gpg-agent running" in text:
        return "cannot start or reach gpg-agent (is the GNUPGHOME path short enough for its socket?)"
    return None


def _home_note() -> str:
    home = gnupg_home()
    if not os.path.isdir(home):
        return f"GNUPGHOME {home} does not exist"
    return f"GNUPGHOME {home}"


def _decrypt_failure(run: _Run, fingerprint: str, interactive: bool) -> str:
    """One line saying why ``gpg -d`` failed, from its status lines."""
    if run.has("NODATA") and not run.has("ENC_TO"):
        return "the enc field is not an OpenPGP message"
    if run.has("BAD_PASSPHRASE"):
        return f"bad passphrase for the secret key of {fingerprint}"
    if run.has("NEED_PASSPHRASE") and run.has("PINENTRY_LAUNCHED"):
        return (f"the secret key of {fingerprint} is passphrase-protected and the pinentry did not return one "
                "(check GPG_TTY or the pinentry program)")
    if run.has("NEED_PASSPHRASE") or (run.has("INQUIRE_MAXLEN") and not interactive):
        return (f"the secret key of {fingerprint} is passphrase-protected and gpg-agent has no cached passphrase; "
                "run in a terminal, or unlock it first (e.g. gpg --decrypt once, or gpg-preset-passphrase)")
    agent = _agent_problem(run)
    if agent is not None:
        return agent
    wanted = {args[0] for args in run.args_of("ENC_TO") if args}
    missing = {args[0] for args in run.args_of("NO_SECKEY") if args}
    if missing and missing >= wanted:
        return f"no secret key for {fingerprint} in {_home_note()}"
    if run.returncode == 0:
        return "gpg returned no data (a message gpg cannot read, e.g. AEAD from a newer GnuPG?)"
    reason = run.last_message()
    return f"gpg failed (exit {run.returncode})" + (f": {reason}" if reason else "")


def _encrypt_failure(run: _Run, fingerprint: str) -> str:
    invalid = run.args_of("INV_RECP")
    if invalid:
        code = invalid[0][0] if invalid[0] else "0"
        why = _INVALID_RECIPIENT.get(code, "gpg cannot use it as a recipient")
        return f"cannot encrypt to PGP key {fingerprint}: {why} ({_home_note()})"
    agent = _agent_problem(run)
    if agent is not None:
        return agent
    reason = run.last_message()
    return f"gpg could not encrypt to {fingerprint} (exit {run.returncode})" + (f": {reason}" if reason else "")


class PgpProvider(KeyProvider):
    """Wraps data keys for PGP keys with the gpg binary, as sops does."""

    type_id = "pgp"
    cli_flag = "pgp"
    config_keys = ("pgp",)

    def parse_recipients(self, text: str) -> list[Recipient]:
        recipients = []
        for item in text.split(","):
            if item.strip():
                recipients.append(Recipient(self.type_id, normalize_fingerprint(item)))
        return recipients

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        try:
            fingerprint = normalize_fingerprint(recipient.ident)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        args = ["--no-default-recipient", "--yes", "--encrypt", "-a", "-r", fingerprint,
                "--trusted-key", _long_key_id(fingerprint), "--no-encrypt-to"]
        run = _run(args, data_key, interactive=False)
        armored = run.stdout.strip()
        if run.returncode != 0 or not armored.startswith(b"-----BEGIN PGP MESSAGE-----"):
            raise ProviderError(_encrypt_failure(run, fingerprint))
        # matches sops: the armor is stored without its final newline (a "|-" block in YAML)
        return {"created_at": _now(), "enc": armored.decode("ascii"), "fp": fingerprint}

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        fingerprint = entry.get("fp")
        if not isinstance(fingerprint, str) or not fingerprint.strip():
            raise ProviderError("pgp entry without fp")
        return Recipient(self.type_id, fingerprint.replace(" ", "").strip())

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        fingerprint = self.recipient_of(entry).ident
        enc = entry.get("enc")
        if not isinstance(enc, str) or not enc.strip():
            raise ProviderError(f"pgp entry for {fingerprint} has no enc")
        interactive = _interactive()
        run = _run(["-d"], enc.encode("utf-8"), interactive=interactive)
        if run.returncode != 0 or not run.stdout or not run.has("DECRYPTION_OKAY"):
            raise ProviderError(_decrypt_failure(run, fingerprint, interactive))
        return run.stdout
