"""The PGP provider with real GnuPG keys, sops's own functional-test files, and the real sops both ways."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_pgp import GnupgHome, PgpBackend, make_home

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers.base import ProviderError, Recipient
from gitcrypt_sops.providers.pgp import PgpProvider, normalize_fingerprint

provider = PgpProvider()
DATA_KEY = bytes(range(32))
PLAIN = b"db:\n    password: hunter2\n    port: 5432\nname_unencrypted: app\n"

FUNCTIONAL = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "sops-functional"
FUNCTIONAL_KEY = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
FUNCTIONAL_FILES = sorted(p.name for p in (FUNCTIONAL / "res").glob("*.enc.*")) + ["multiple_keys.yaml"]


def one_line_error(result: object) -> str:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 128, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert stderr.count("\n") == 1 and stderr.startswith("gitcrypt-sops: "), stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.fixture
def gnupg_env(pgp_backend: PgpBackend, monkeypatch: pytest.MonkeyPatch) -> PgpBackend:
    monkeypatch.delenv("SOPS_GPG_EXEC", raising=False)
    monkeypatch.setenv("GNUPGHOME", str(pgp_backend.path))
    return pgp_backend


@pytest.fixture(scope="module")
def functional_home() -> Iterator[GnupgHome]:
    """A home holding sops's published functional-test keys (public test material)."""
    home = make_home()
    try:
        home.gpg("--import", str(FUNCTIONAL / "sops_functional_tests_key.asc"))
        yield home
    finally:
        home.close()


@pytest.fixture(scope="module")
def public_only_home(pgp_backend: PgpBackend) -> Iterator[GnupgHome]:
    """The backend's public keys only: encryption works, decryption has no secret key."""
    home = make_home()
    try:
        home.gpg("--import", input=pgp_backend.export_public(pgp_backend.keys))
        yield home
    finally:
        home.close()


# --------------------------------------------------------------------------- recipients


def test_fingerprints_are_normalised() -> None:
    spaced = "fbc7 b9e2 a4f9 289a c0c1  d484 3d16 cee4 a273 81b4"
    assert normalize_fingerprint(spaced) == FUNCTIONAL_KEY
    assert normalize_fingerprint("0x" + FUNCTIONAL_KEY.lower()) == FUNCTIONAL_KEY
    assert normalize_fingerprint(FUNCTIONAL_KEY + "!") == FUNCTIONAL_KEY + "!"
    assert provider.parse_recipients(f" {spaced} ,, D7229043384BCC60326C6FB9D8720D957C3D3074,") == [
        Recipient("pgp", FUNCTIONAL_KEY), Recipient("pgp", "D7229043384BCC60326C6FB9D8720D957C3D3074")]
    assert provider.recipient_from_config(spaced) == Recipient("pgp", FUNCTIONAL_KEY)


@pytest.mark.parametrize("text", ["bob@example.com", "FBC7B9E2A4F9289AC0C1", "XYZ7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"])
def test_bad_fingerprints_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid PGP fingerprint"):
        provider.parse_recipients(f"{FUNCTIONAL_KEY},{text}")


# --------------------------------------------------------------------------- wrap / unwrap


def test_wrap_unwrap_rsa_and_ed25519(gnupg_env: PgpBackend) -> None:
    for fingerprint in gnupg_env.keys:
        entry = provider.wrap(DATA_KEY, Recipient("pgp", fingerprint.lower()))
        assert list(entry) == ["created_at", "enc", "fp"]
        assert entry["fp"] == fingerprint
        # matches sops: armored, stored without the final newline
        assert entry["enc"].startswith("-----BEGIN PGP MESSAGE-----\n")
        assert entry["enc"].endswith("-----END PGP MESSAGE-----")
        assert provider.recipient_of(entry) == Recipient("pgp", fingerprint)
        assert provider.unwrap(entry) == DATA_KEY
        # plain gpg reads it too: it is an ordinary OpenPGP message to that key
        assert gnupg_env.gpg("-d", input=entry["enc"].encode()).stdout == DATA_KEY


def test_wrap_to_a_key_of_unknown_trust(functional_home: GnupgHome, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", str(functional_home.path))
    # imported keys have no owner trust; --trusted-key (as sops passes it) makes them usable
    entry = provider.wrap(DATA_KEY, Recipient("pgp", FUNCTIONAL_KEY))
    assert provider.unwrap(entry) == DATA_KEY


def test_unwrap_failures_are_one_line(gnupg_env: PgpBackend, public_only_home: GnupgHome,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    entry = provider.wrap(DATA_KEY, Recipient("pgp", gnupg_env.keys[0]))
    cases = [
        ({**entry, "enc": "not a pgp message"}, {}, "not an OpenPGP message"),
        (entry, {"GNUPGHOME": str(public_only_home.path)}, f"no secret key for {gnupg_env.keys[0]}"),
        (entry, {"SOPS_GPG_EXEC": "/nonexistent/gpg"}, "GnuPG is not installed: SOPS_GPG_EXEC=/nonexistent/gpg"),
    ]
    for bad, env, words in cases:
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            with pytest.raises(ProviderError) as info:
                provider.unwrap(bad)
        assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_wrap_without_public_key(gnupg_env: PgpBackend, functional_home: GnupgHome) -> None:
    with pytest.raises(ProviderError) as info:
        provider.wrap(DATA_KEY, Recipient("pgp", FUNCTIONAL_KEY))
    assert f"cannot encrypt to PGP key {FUNCTIONAL_KEY}: no public key" in str(info.value)


def test_protected_key_fails_fast_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    home = make_home()
    (home.path / "gpg-agent.conf").write_text("s2k-count 65536\n")  # skips a 4 s S2K calibration
    try:
        home.generate("Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
                      "Name-Email: locked@test.invalid\nPassphrase: correct horse\nExpire-Date: 0\n%commit\n")
        (fingerprint,) = home.fingerprints()
        monkeypatch.setenv("GNUPGHOME", str(home.path))
        entry = provider.wrap(DATA_KEY, Recipient("pgp", fingerprint))
        started = time.monotonic()
        with pytest.raises(ProviderError) as info:
            provider.unwrap(entry)  # pytest's stdin is not a terminal: no pinentry may be shown
        assert time.monotonic() - started < 10
        assert "passphrase-protected" in str(info.value) and "correct horse" not in str(info.value)
        # once the agent knows the passphrase, it works without any prompt
        home.gpg("--passphrase", "correct horse", "-d", input=entry["enc"].encode())
        assert provider.unwrap(entry) == DATA_KEY
    finally:
        home.close()


# --------------------------------------------------------------------------- CLI and real sops


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_cli_encrypt_decrypts_here_and_with_sops(pgp_backend: PgpBackend, ours, sops, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 fmt: str) -> None:
    env = pgp_backend.env()
    plain = tmp_path / f"secrets.{fmt}"
    plain.write_bytes(PLAIN if fmt == "yaml" else b'{"db": {"password": "hunter2", "port": 5432}}\n')
    target = tmp_path / f"enc.{fmt}"
    ours("encrypt", pgp_backend.flag, ",".join(pgp_backend.recipients()), "--output", str(target), str(plain),
         env=env, check=True)
    encrypted = target.read_bytes()
    assert b"hunter2" not in encrypted and encrypted.count(b"BEGIN PGP MESSAGE") == 2
    ours_out = ours("decrypt", str(target), env=env, input=b"", check=True).stdout
    sops_out = sops("decrypt", str(target), env=pgp_backend.sops_env(), check=True).stdout
    if fmt == "json":
        assert json.loads(ours_out) == json.loads(plain.read_bytes())
    else:
        assert ours_out == plain.read_bytes()
    assert sops_out == ours_out


def test_sops_encrypt_decrypts_here(pgp_backend: PgpBackend, ours, sops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    encrypted = sops("encrypt", "--pgp", ",".join(pgp_backend.recipients()), str(plain),
                     env=pgp_backend.sops_env(), check=True).stdout
    target = tmp_path / "enc.yaml"
    target.write_bytes(encrypted)
    assert ours("decrypt", str(target), env=pgp_backend.env(), input=b"", check=True).stdout == PLAIN


def test_creation_rule_keys(pgp_backend: PgpBackend, ours, sops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rsa, ed = pgp_backend.keys
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: one\\.yaml$\n    pgp: '{rsa.lower()}, {ed[:20]} {ed[20:]}'\n"
        f"  - path_regex: two\\.yaml$\n    key_groups:\n      - pgp: [{rsa}]\n      - pgp: [{ed}]\n"
        "    shamir_threshold: 2\n")
    for name, marker in (("one.yaml", f"fp: {ed}".encode()), ("two.yaml", b"shamir_threshold: 2")):
        (tmp_path / name).write_bytes(PLAIN)
        encrypted = ours("encrypt", name, cwd=tmp_path, env=pgp_backend.env(), check=True).stdout
        assert marker in encrypted and f"fp: {rsa}".encode() in encrypted
        (tmp_path / f"enc-{name}").write_bytes(encrypted)
        assert sops("decrypt", f"enc-{name}", cwd=tmp_path, env=pgp_backend.sops_env(), check=True).stdout == PLAIN
        assert ours("decrypt", f"enc-{name}", cwd=tmp_path, env=pgp_backend.env(), input=b"",
                    check=True).stdout == PLAIN


@pytest.mark.parametrize("name", FUNCTIONAL_FILES)
def test_sops_functional_test_files(name: str, functional_home: GnupgHome, ours, sops) -> None:  # type: ignore[no-untyped-def]
    path = str(FUNCTIONAL / "res" / name)
    expected = sops("decrypt", path, env=functional_home.env(), check=True).stdout
    assert expected
    assert ours("decrypt", path, env=functional_home.env(), input=b"", check=True).stdout == expected


def test_sops_functional_file_without_mac(functional_home: GnupgHome, ours, sops) -> None:  # type: ignore[no-untyped-def]
    path = str(FUNCTIONAL / "res" / "no_mac.yaml")
    theirs = sops("decrypt", path, env=functional_home.env())
    mine = ours("decrypt", path, env=functional_home.env(), input=b"")
    assert theirs.returncode == mine.returncode == 51
    assert ours("decrypt", "--ignore-mac", path, env=functional_home.env(), input=b"", check=True).stdout == \
        sops("decrypt", "--ignore-mac", path, env=functional_home.env(), check=True).stdout


def test_cli_missing_secret_key(pgp_backend: PgpBackend, public_only_home: GnupgHome, ours,  # type: ignore[no-untyped-def]
                                tmp_path: Path) -> None:
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    # encrypting needs only the public keys
    encrypted = ours("encrypt", "--pgp", ",".join(pgp_backend.keys), str(plain), env=public_only_home.env(),
                     check=True).stdout
    target = tmp_path / "enc.yaml"
    target.write_bytes(encrypted)
    line = one_line_error(ours("decrypt", str(target), env=public_only_home.env(), input=b""))
    for fingerprint in pgp_backend.keys:
        assert f"pgp:{fingerprint}: no secret key for {fingerprint}" in line


def test_cli_gpg_missing_and_unknown_recipient(pgp_backend: PgpBackend, ours, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    line = one_line_error(ours("encrypt", "--pgp", pgp_backend.keys[0], str(plain),
                               env={**pgp_backend.env(), "SOPS_GPG_EXEC": "no-such-gpg"}))
    assert "GnuPG is not installed: SOPS_GPG_EXEC=no-such-gpg not found" in line
    line = one_line_error(ours("encrypt", "--pgp", FUNCTIONAL_KEY, str(plain), env=pgp_backend.env()))
    assert "no public key for it in the keyring" in line


@pytest.mark.skipif(not Path("/usr/bin/pinentry-curses").exists(), reason="needs pinentry-curses")
def test_terminal_user_is_asked_through_pinentry(tmp_path: Path) -> None:
    """With a terminal on stdin, a protected key is unlocked through the agent's pinentry (as with sops)."""
    import os
    import pty
    import select
    import subprocess
    import sys

    home = make_home()
    (home.path / "gpg-agent.conf").write_text("s2k-count 65536\npinentry-program /usr/bin/pinentry-curses\n")
    try:
        home.generate("Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
                      "Name-Email: tty@test.invalid\nPassphrase: open sesame\nExpire-Date: 0\n%commit\n")
        (fingerprint,) = home.fingerprints()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "TERM": "xterm", **home.env()}
        plain = tmp_path / "s.yaml"
        plain.write_bytes(PLAIN)
        target = tmp_path / "enc.yaml"
        subprocess.run([sys.executable, "-m", "gitcrypt_sops", "encrypt", "--pgp", fingerprint, "--output",
                        str(target), str(plain)], env=env, check=True, capture_output=True, timeout=60)
        controller, terminal = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "gitcrypt_sops", "decrypt", str(target)], env=env,
                                   stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
        os.close(terminal)
        seen, answered = b"", False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"Passphrase" in seen:
                    os.write(controller, b"open sesame\r")
                    answered = True
            elif process.poll() is not None:
                break
        process.wait(timeout=10)
        os.close(controller)
        assert answered, seen[-300:]
        assert process.returncode == 0, seen[-300:]
        assert b"password: hunter2" in seen
    finally:
        home.close()


def test_backend_without_credentials(pgp_backend: PgpBackend, ours, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    encrypted = ours("encrypt", "--pgp", pgp_backend.keys[1], str(plain), env=pgp_backend.env(), check=True).stdout
    (tmp_path / "enc.yaml").write_bytes(encrypted)
    line = one_line_error(ours("decrypt", str(tmp_path / "enc.yaml"), env=pgp_backend.env_without_credentials(),
                               input=b""))
    assert f"no secret key for {pgp_backend.keys[1]}" in line
