"""Real GnuPG with a throwaway GNUPGHOME holding two unprotected keys (RSA 2048, ed25519/cv25519).

The session fixture ``pgp_backend`` makes the home under a short path (gpg-agent
puts its sockets there, and a socket path must stay under ~100 bytes), generates
the keys with ``gpg --batch --gen-key``, and kills the agent and removes the home
at the end.  :func:`make_home` builds further homes for single tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

#: two keys without passphrase: RSA 2048 (+ RSA encryption subkey) and ed25519 (+ cv25519 subkey)
KEY_PARAMS = """\
%no-protection
Key-Type: RSA
Key-Length: 2048
Subkey-Type: RSA
Subkey-Length: 2048
Name-Email: rsa@test.invalid
Expire-Date: 0
%commit
Key-Type: EDDSA
Key-Curve: ed25519
Subkey-Type: ECDH
Subkey-Curve: cv25519
Name-Email: ed@test.invalid
Expire-Date: 0
%commit
"""


def gpg_available() -> bool:
    return shutil.which("gpg") is not None and shutil.which("gpgconf") is not None


class GnupgHome:
    """A throwaway GNUPGHOME and a way to run gpg in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.path)}

    def gpg(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.path), "GNUPGHOME": str(self.path), "LANG": "C"}
        result = subprocess.run(["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", *args],
                                input=input, capture_output=True, env=env, timeout=60, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)} failed: {result.stderr.decode(errors='replace')[-600:]}")
        return result

    def generate(self, params: str) -> None:
        self.gpg("--gen-key", input=params.encode())

    def fingerprints(self, secret: bool = False) -> list[str]:
        """Primary-key fingerprints, in keyring order."""
        listing = self.gpg("--with-colons", "--list-secret-keys" if secret else "--list-keys", check=False)
        out, take = [], False
        for line in listing.stdout.decode().splitlines():
            fields = line.split(":")
            if fields[0] in ("pub", "sec"):
                take = True
            elif fields[0] == "fpr" and take:
                out.append(fields[9])
                take = False
            else:
                take = False
        return out

    def export_public(self, fingerprints: Sequence[str]) -> bytes:
        return self.gpg("--armor", "--export", *fingerprints).stdout

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={"PATH": "/usr/bin:/bin", "GNUPGHOME": str(self.path)},
                       capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def make_home() -> GnupgHome:
    """An empty home under a short path (caller closes it)."""
    path = Path(tempfile.mkdtemp(prefix="gh-", dir="/tmp"))
    os.chmod(path, 0o700)
    return GnupgHome(path)


class PgpBackend(GnupgHome):
    """The Backend protocol over a home with the two generated keys."""

    type_id = "pgp"
    flag = "--pgp"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.empty = GnupgHome(path / "empty")
        self.empty.path.mkdir(mode=0o700)
        self.generate(KEY_PARAMS)
        self.keys = self.fingerprints(secret=True)
        assert len(self.keys) == 2, self.keys

    def recipients(self) -> list[str]:
        return list(self.keys)

    def sops_env(self) -> dict[str, str] | None:
        return self.env()

    def env_without_credentials(self) -> dict[str, str]:
        """gpg available but an empty keyring (no public or secret keys)."""
        return {"GNUPGHOME": str(self.empty.path)}

    def close(self) -> None:
        self.empty.close()
        super().close()


@pytest.fixture(scope="session")
def pgp_backend() -> Iterator[PgpBackend]:
    if not gpg_available():
        pytest.skip("GnuPG (gpg, gpgconf) is not installed")
    path = make_home().path
    try:
        backend = PgpBackend(path)
    except BaseException:
        GnupgHome(path).close()
        raise
    try:
        yield backend
    finally:
        backend.close()
