"""The GCP KMS provider against the local Cloud KMS fake (gRPC and REST), with our CLI and the real sops.

Covers resource-ID parsing, the entry format (sops 3.11 field order), both
transports, the credential sources (static token, GOOGLE_CREDENTIALS service
account, workload identity federation through ADC), endpoint settings, the
one-line failure messages, interop with sops in both directions (sops reaches
the fake through the CONNECT proxy and the test CA), and the lazy import.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from backend_gcp import DENIED_KEY_ID, DISABLED_KEY_ID, KEY_IDS, PROJECT, TOKEN, GcpBackend

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers import gcpkms
from gitcrypt_sops.providers.base import ProviderError, Recipient
from gitcrypt_sops.providers.gcpkms import GcpKmsProvider

provider = GcpKmsProvider()

DATA_KEY = bytes(range(32))
PLAIN = b"db:\n    user: admin\n    password: hunter2\napi_key: abc123\n"
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UNKNOWN_KEY_ID = f"projects/{PROJECT}/locations/global/keyRings/test-ring/cryptoKeys/never-created"
GCP_VARS = ("GOOGLE_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
            "SOPS_GCP_KMS_ENDPOINT", "SOPS_GCP_KMS_CLIENT_TYPE")
AGE_RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
AGE_KEY_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "test-age-key.txt"


@pytest.fixture
def gcp(gcp_backend: GcpBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcpBackend]:
    """The backend, with this process pointed at it over plaintext gRPC and no cached client."""
    for name in GCP_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in gcp_backend.env().items():
        monkeypatch.setenv(name, value)
    gcpkms.clear_cache()
    yield gcp_backend
    gcpkms.clear_cache()


def use(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gcpkms.clear_cache()


def wrapped(key_id: str = KEY_IDS[0], data_key: bytes = DATA_KEY) -> dict[str, Any]:
    return provider.wrap(data_key, provider.parse_recipients(key_id)[0])


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    assert DATA_KEY.hex() not in text and TOKEN not in text
    return text


# --------------------------------------------------------------------------- resource IDs and settings


def test_crc32c_matches_the_standard_check_value_and_the_fake() -> None:
    from gcp_fake import crc32c as bitwise

    assert gcpkms.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    for data in (b"", DATA_KEY, os.urandom(61)):
        assert gcpkms.crc32c(data) == bitwise(data)


def test_parse_recipients_drops_spaces_and_empty_items() -> None:
    spaced = " projects/p/locations/global/keyRings/r/cryptoKeys/my key "
    recipients = provider.parse_recipients(f"{KEY_IDS[0]}, ,{spaced},\n{KEY_IDS[1]},")
    assert recipients == [
        Recipient("gcp_kms", KEY_IDS[0]),
        Recipient("gcp_kms", "projects/p/locations/global/keyRings/r/cryptoKeys/mykey"),  # matches sops
        Recipient("gcp_kms", KEY_IDS[1]),
    ]
    assert provider.parse_recipients("") == []


def test_recipient_from_config_takes_the_sops_mapping_or_a_string() -> None:
    assert provider.recipient_from_config({"resource_id": KEY_IDS[1]}) == Recipient("gcp_kms", KEY_IDS[1])
    assert provider.recipient_from_config(KEY_IDS[1]) == Recipient("gcp_kms", KEY_IDS[1])
    for bad in ({"resourceId": KEY_IDS[1]}, {"resource_id": ""}, ["x"], 3):
        with pytest.raises(ConfigError, match="invalid gcp_kms entry in key group"):
            provider.recipient_from_config(bad)
    with pytest.raises(ConfigError, match="invalid GCP KMS resource ID"):
        provider.recipient_from_config({"resource_id": "projects/p"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("projects/p/locations/global/keyRings/r", "expected projects/PROJECT/locations/LOCATION"),
        (f"{KEY_IDS[0]}/cryptoKeyVersions/3", "not one of its versions"),
        ("projects//locations/global/keyRings/r/cryptoKeys/k", "expected projects/"),
        ("arn:aws:kms:us-east-1:123456789012:key/abc", "expected projects/"),
        ("locations/global/keyRings/r/cryptoKeys/k", "expected projects/"),
    ],
)
def test_parse_recipients_rejects_other_shapes(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider.parse_recipients(f"{KEY_IDS[0]},{text}")
    assert "invalid GCP KMS resource ID" in one_line(info.value) and words in str(info.value)
    with pytest.raises(ProviderError):
        provider.wrap(DATA_KEY, Recipient("gcp_kms", text))


@pytest.mark.parametrize(
    ("endpoint", "client_type", "host", "plaintext", "rest"),
    [
        ("", "", None, False, False),
        ("kms.example.com", "REST", "kms.example.com:443", False, True),
        ("https://kms.example.com:8443/", "grpc", "kms.example.com:8443", False, False),
        ("http://127.0.0.1:8080", "", "127.0.0.1:8080", True, False),
        ("http://localhost", "rest", "localhost:80", True, True),
        ("http://[::1]:9000", "", "[::1]:9000", True, False),
    ],
)
def test_endpoint_settings(monkeypatch: pytest.MonkeyPatch, endpoint: str, client_type: str,
                           host: str | None, plaintext: bool, rest: bool) -> None:
    monkeypatch.setenv("SOPS_GCP_KMS_ENDPOINT", endpoint)
    monkeypatch.setenv("SOPS_GCP_KMS_CLIENT_TYPE", client_type)
    chosen = gcpkms.endpoint_from_env()
    assert (chosen.host, chosen.plaintext, chosen.rest) == (host, plaintext, rest)


@pytest.mark.parametrize(
    ("endpoint", "client_type", "words"),
    [
        ("http://10.1.2.3:80", "", "only allowed for a loopback address"),
        ("ftp://127.0.0.1:21", "", "unsupported scheme"),
        ("https://kms.example.com/v1/path", "", "expected host[:port]"),
        ("", "soap", "must be 'grpc' or 'rest'"),
    ],
)
def test_bad_endpoint_settings_are_config_errors(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch,
                                                 endpoint: str, client_type: str, words: str) -> None:
    use(monkeypatch, {"SOPS_GCP_KMS_ENDPOINT": endpoint, "SOPS_GCP_KMS_CLIENT_TYPE": client_type})
    with pytest.raises(ConfigError) as info:
        wrapped()
    assert words in one_line(info.value)


# --------------------------------------------------------------------------- wrap and unwrap


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_wrap_and_unwrap(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    use(monkeypatch, gcp.env(transport))
    start = len(gcp.fake.calls)
    entry = wrapped(KEY_IDS[1])
    assert list(entry) == ["resource_id", "created_at", "enc"]  # sops 3.11 order
    assert entry["resource_id"] == KEY_IDS[1]
    assert CREATED_AT.match(entry["created_at"])
    ciphertext = base64.b64decode(entry["enc"], validate=True)  # standard, padded
    assert base64.b64encode(ciphertext).decode() == entry["enc"] and DATA_KEY not in ciphertext
    assert provider.recipient_of(entry) == Recipient("gcp_kms", KEY_IDS[1])
    assert provider.unwrap(entry) == DATA_KEY
    calls = gcp.fake.calls_since(start)
    assert [(c.transport, c.method, c.name, c.outcome) for c in calls] == [
        (transport, "Encrypt", KEY_IDS[1], "OK"),
        (transport, "Decrypt", KEY_IDS[1], "OK"),
    ]
    assert all(c.authorization == f"Bearer {TOKEN}" for c in calls)
    assert all("gapic/" in c.headers.get("x-goog-api-client", "") for c in calls)
    # a fresh wrap is a fresh ciphertext
    assert wrapped(KEY_IDS[1])["enc"] != entry["enc"]


def test_rest_and_grpc_read_each_others_entries(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    by_grpc = wrapped()
    use(monkeypatch, gcp.env("rest"))
    by_rest = wrapped()
    assert provider.unwrap(by_grpc) == DATA_KEY
    use(monkeypatch, gcp.env("grpc"))
    assert provider.unwrap(by_rest) == DATA_KEY


def test_enc_with_line_breaks_is_accepted(gcp: GcpBackend) -> None:
    entry = wrapped()
    enc = entry["enc"]
    assert provider.unwrap({**entry, "enc": enc[:20] + "\n" + enc[20:] + "\r\n"}) == DATA_KEY


def test_client_is_reused_until_the_settings_change(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    first = gcpkms._session().client
    assert gcpkms._session().client is first
    monkeypatch.setenv("SOPS_GCP_KMS_CLIENT_TYPE", "rest")
    monkeypatch.setenv("SOPS_GCP_KMS_ENDPOINT", f"http://127.0.0.1:{gcp.fake.rest_port}")
    assert gcpkms._session().client is not first
    assert provider.unwrap(wrapped()) == DATA_KEY


# --------------------------------------------------------------------------- failures


def flip_last_byte(enc: str) -> str:
    raw = bytearray(base64.b64decode(enc))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_failures_are_one_line(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    use(monkeypatch, gcp.env(transport))
    entry = wrapped()
    cases = [
        ({**entry, "enc": flip_last_byte(entry["enc"])}, "invalid ciphertext (tampered enc"),
        ({**entry, "resource_id": KEY_IDS[1]}, "invalid ciphertext"),  # another key's ciphertext
        ({**entry, "resource_id": UNKNOWN_KEY_ID}, f"GCP KMS key {UNKNOWN_KEY_ID} not found"),
        ({**entry, "resource_id": DISABLED_KEY_ID}, "cannot be used: "),
        ({**entry, "resource_id": DENIED_KEY_ID}, f"permission denied for decrypt with {DENIED_KEY_ID}"),
    ]
    for bad, words in cases:
        with pytest.raises(ProviderError) as info:
            provider.unwrap(bad)
        assert words in one_line(info.value), (transport, words, str(info.value))
        assert info.value.exit_code == 128
    with pytest.raises(ProviderError) as info:
        wrapped(UNKNOWN_KEY_ID)
    assert "not found" in one_line(info.value)
    with pytest.raises(ProviderError) as info:
        wrapped(DISABLED_KEY_ID)
    assert "is not enabled" in one_line(info.value)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_a_rejected_token_is_unauthenticated(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch,
                                             transport: str) -> None:
    use(monkeypatch, {**gcp.env(transport), "GOOGLE_OAUTH_ACCESS_TOKEN": "expired-token"})
    with pytest.raises(ProviderError) as info:
        wrapped()
    message = one_line(info.value)
    assert "rejected the credentials from GOOGLE_OAUTH_ACCESS_TOKEN (unauthenticated)" in message
    assert "expired-token" not in message
    assert gcp.fake.calls[-1].outcome == "UNAUTHENTICATED"


def test_malformed_entries_fail_before_any_call(gcp: GcpBackend) -> None:
    start = len(gcp.fake.calls)
    entry = wrapped()
    for bad, words in [
        ({**entry, "enc": "not base64!"}, "enc is not valid base64"),
        ({**entry, "enc": ""}, "has no enc"),
        ({"created_at": entry["created_at"], "enc": entry["enc"]}, "without a resource_id"),
        ({**entry, "resource_id": "projects/p/keyRings/r"}, "invalid resource_id"),
    ]:
        with pytest.raises(ProviderError) as info:
            provider.unwrap(bad)
        assert words in one_line(info.value)
    assert len(gcp.fake.calls_since(start)) == 1  # only the wrap


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_unreachable_endpoint_fails_fast(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(gcpkms, "RETRY_DEADLINE", 0.5)
    use(monkeypatch, {"SOPS_GCP_KMS_ENDPOINT": f"http://127.0.0.1:{port}", "SOPS_GCP_KMS_CLIENT_TYPE": transport})
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        wrapped()
    assert f"GCP KMS is unavailable at 127.0.0.1:{port}" in one_line(info.value)
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- credentials


@pytest.fixture(scope="module")
def service_account(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service-account key file (a fresh RSA key; its token_uri is a closed loopback port)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
            "client_email": f"sops@{PROJECT}.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token"}
    path = tmp_path_factory.mktemp("gcp-sa") / "sa.json"
    path.write_text(json.dumps(info))
    return path


def jwt_claims(authorization: str | None) -> dict[str, Any]:
    assert authorization is not None and authorization.startswith("Bearer ")
    payload = authorization.split()[1].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("as_path", [True, False], ids=["path", "json"])
def test_google_credentials_service_account_wins_over_the_token(
    gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, service_account: Path, transport: str, as_path: bool
) -> None:
    value = str(service_account) if as_path else service_account.read_text()
    use(monkeypatch, {**gcp.env(transport), "GOOGLE_CREDENTIALS": value})  # the token stays set
    entry = wrapped()
    # matches sops: GOOGLE_CREDENTIALS first; a service account signs its own JWT (no token exchange)
    assert jwt_claims(gcp.fake.calls[-1].authorization)["iss"] == f"sops@{PROJECT}.iam.gserviceaccount.com"
    assert provider.unwrap(entry) == DATA_KEY


def test_google_credentials_that_are_neither_file_nor_json(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, {"GOOGLE_CREDENTIALS": "{not json but SECRET-ISH"})
    with pytest.raises(ProviderError) as info:
        wrapped()
    assert "GOOGLE_CREDENTIALS: neither an existing file nor credentials JSON" in one_line(info.value)
    assert "SECRET" not in str(info.value)
    use(monkeypatch, {"GOOGLE_CREDENTIALS": json.dumps({"type": "mystery", "private_key": "SECRET"})})
    with pytest.raises(ProviderError) as info:
        wrapped()
    assert "unusable credentials of type 'mystery'" in one_line(info.value) and "SECRET" not in str(info.value)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_a_token_that_cannot_be_refreshed(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          transport: str) -> None:
    user = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "token_uri": "http://127.0.0.1:9/token"}  # a closed loopback port
    use(monkeypatch, {**gcp.env(transport), "GOOGLE_CREDENTIALS": json.dumps(user)})
    with pytest.raises(ProviderError) as info:
        wrapped()
    assert one_line(info.value).startswith("could not get a GCP access token")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_workload_identity_federation_through_adc(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, transport: str) -> None:
    subject = tmp_path / "oidc-token"
    subject.write_text("ci-oidc-subject-token")
    config = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/gh",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"http://127.0.0.1:{gcp.fake.rest_port}/v1/token",  # the fake's STS
        "credential_source": {"file": str(subject)},
    }
    (tmp_path / "wif.json").write_text(json.dumps(config))
    use(monkeypatch, {**gcp.env(transport), "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "wif.json")})
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    exchanges = len(gcp.fake.exchanges)
    entry = wrapped()
    exchange = gcp.fake.exchanges[exchanges]
    assert exchange["subject_token"] == "ci-oidc-subject-token"
    assert exchange["scope"] == gcpkms.SCOPE
    assert (gcp.fake.calls[-1].authorization or "").startswith("Bearer sts-")
    assert provider.unwrap(entry) == DATA_KEY


def test_no_credentials_anywhere(gcp: GcpBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    assert os.environ.get("NO_GCE_CHECK") == "true"  # set for the whole test process: no metadata probe
    gcpkms.clear_cache()
    with pytest.raises(ProviderError) as info:
        wrapped()
    assert one_line(info.value).startswith("no GCP credentials found")


# --------------------------------------------------------------------------- the CLI and the real sops


def run(argv: list[str], home: Path, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """A command with ONLY PATH, HOME, LANG and ``env`` (for runs the ``ours`` fixture cannot express)."""
    full = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **env}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, timeout=120, check=False)


def ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr.decode()[-800:]
    return result.stdout


def one_line_failure(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert result.returncode == 128, (result.returncode, err)
    assert err.count("\n") == 1 and "Traceback" not in err and "hunter2" not in err
    return err


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    (path / "plain.yaml").write_bytes(PLAIN)
    return path


def entries(document: bytes) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yaml.safe_load(document)["sops"]["gcp_kms"]
    return found


def test_ours_encrypts_and_both_tools_decrypt(gcp_backend: GcpBackend, work: Path, ours: Any, sops: Any) -> None:
    env = gcp_backend.env()
    encrypted = ok(ours("encrypt", "--gcp-kms", ",".join(KEY_IDS), "plain.yaml", cwd=work, env=env))
    assert [e["resource_id"] for e in entries(encrypted)] == KEY_IDS
    assert b"hunter2" not in encrypted
    (work / "enc.yaml").write_bytes(encrypted)
    assert ok(ours("decrypt", "enc.yaml", cwd=work, env=env)) == PLAIN
    assert ok(ours("decrypt", "enc.yaml", cwd=work, env=gcp_backend.env("rest"))) == PLAIN
    start = len(gcp_backend.fake.connects)
    for transport in ("grpc", "rest"):
        assert ok(sops("decrypt", "enc.yaml", cwd=work, env=gcp_backend.sops_env(transport))) == PLAIN
    # sops dialled Google, and the proxy sent it to the fake instead
    assert gcp_backend.fake.connects[start:] == ["cloudkms.googleapis.com:443"] * 2


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_sops_encrypts_and_ours_decrypts(gcp_backend: GcpBackend, work: Path, ours: Any, sops: Any,
                                         transport: str) -> None:
    sops_env = gcp_backend.sops_env(transport)
    encrypted = ok(sops("encrypt", "--gcp-kms", KEY_IDS[1], "plain.yaml", cwd=work, env=sops_env))
    entry = entries(encrypted)[0]
    assert list(entry) == ["resource_id", "created_at", "enc"] and entry["resource_id"] == KEY_IDS[1]
    (work / "enc.yaml").write_bytes(encrypted)
    assert ok(ours("decrypt", "enc.yaml", cwd=work, env=gcp_backend.env(transport))) == PLAIN
    # our default endpoint (no override), through the same proxy and CA as sops
    calls = len(gcp_backend.fake.calls)
    assert ok(ours("decrypt", "enc.yaml", cwd=work, env=sops_env)) == PLAIN
    assert [c.transport for c in gcp_backend.fake.calls_since(calls)] == [transport]


def test_cli_failures_exit_128_with_one_line(gcp_backend: GcpBackend, work: Path, ours: Any) -> None:
    env = gcp_backend.env()
    encrypted = ok(ours("encrypt", "--gcp-kms", KEY_IDS[0], "plain.yaml", cwd=work, env=env))
    entry = entries(encrypted)[0]
    tampered = encrypted.replace(entry["enc"].encode(), flip_last_byte(entry["enc"]).encode())
    (work / "tampered.yaml").write_bytes(tampered)
    err = one_line_failure(ours("decrypt", "tampered.yaml", cwd=work, env=env))
    assert f"gcp_kms:{KEY_IDS[0]}: GCP KMS could not decrypt the data key" in err
    (work / "unknown.yaml").write_bytes(encrypted.replace(KEY_IDS[0].encode(), UNKNOWN_KEY_ID.encode()))
    err = one_line_failure(ours("decrypt", "unknown.yaml", cwd=work, env=env))
    assert f"GCP KMS key {UNKNOWN_KEY_ID} not found" in err


def test_cli_rejects_a_bad_resource_id(gcp_backend: GcpBackend, work: Path, ours: Any) -> None:
    version = f"{KEY_IDS[0]}/cryptoKeyVersions/1"
    result = ours("encrypt", "--gcp-kms", version, "plain.yaml", cwd=work, env=gcp_backend.env())
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1, err
    assert "invalid GCP KMS resource ID" in err and "not one of its versions" in err
    assert all(call.name != version for call in gcp_backend.fake.calls)


def test_creation_rule_and_env_recipients(gcp_backend: GcpBackend, work: Path, ours: Any) -> None:
    (work / ".sops.yaml").write_text(f"creation_rules:\n  - gcp_kms: {KEY_IDS[1]} , {KEY_IDS[0]}\n")
    encrypted = ok(ours("encrypt", "plain.yaml", cwd=work, env=gcp_backend.env()))
    assert [e["resource_id"] for e in entries(encrypted)] == [KEY_IDS[1], KEY_IDS[0]]
    (work / ".sops.yaml").unlink()
    encrypted = ok(ours("encrypt", "plain.yaml", cwd=work, env={**gcp_backend.env(), "SOPS_GCP_KMS_IDS": KEY_IDS[0]}))
    assert [e["resource_id"] for e in entries(encrypted)] == [KEY_IDS[0]]


def test_key_groups_with_shamir_gcp_and_age_read_by_sops(gcp_backend: GcpBackend, work: Path, ours: Any,
                                                         sops: Any) -> None:
    (work / ".sops.yaml").write_text(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
        f"      - gcp_kms:\n          - resource_id: {KEY_IDS[0]}\n"
        f"      - age:\n          - {AGE_RECIPIENT}\n"
    )
    env = {**gcp_backend.env(), "SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
    encrypted = ok(ours("encrypt", "plain.yaml", cwd=work, env=env))
    groups = yaml.safe_load(encrypted)["sops"]["key_groups"]
    assert groups[0]["gcp_kms"][0]["resource_id"] == KEY_IDS[0] and groups[1]["age"][0]["recipient"] == AGE_RECIPIENT
    (work / "enc.yaml").write_bytes(encrypted)
    assert ok(ours("decrypt", "enc.yaml", cwd=work, env=env)) == PLAIN
    assert ok(sops("decrypt", "enc.yaml", cwd=work, env=gcp_backend.sops_env())) == PLAIN  # needs both shares


def test_missing_sdk_names_the_extra(gcp_backend: GcpBackend, work: Path, ours: Any, home: Path) -> None:
    encrypted = ok(ours("encrypt", "--gcp-kms", KEY_IDS[0], "plain.yaml", cwd=work, env=gcp_backend.env()))
    (work / "enc.yaml").write_bytes(encrypted)
    blocked = ("import sys; sys.modules['google.cloud.kms_v1'] = None; "
               "from gitcrypt_sops.cli import main; sys.exit(main(['decrypt', 'enc.yaml']))")
    err = one_line_failure(run([sys.executable, "-c", blocked], home, gcp_backend.env(), work))
    assert "GCP KMS support is not installed (pip install 'gitcrypt-sops[gcp]')" in err


def imported_roots(result: subprocess.CompletedProcess[bytes]) -> set[str]:
    lines = [line for line in result.stderr.decode().splitlines() if line.startswith("import time:")]
    return {line.split("|")[-1].strip().split(".")[0] for line in lines[1:]}


def test_age_first_decrypt_of_a_mixed_file_imports_no_google(gcp_backend: GcpBackend, work: Path, ours: Any,
                                                             home: Path) -> None:
    env = {**gcp_backend.env(), "SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
    encrypted = ok(ours("encrypt", "--gcp-kms", KEY_IDS[0], "--age", AGE_RECIPIENT, "plain.yaml", cwd=work, env=env))
    (work / "mixed.yaml").write_bytes(encrypted)
    argv = [sys.executable, "-X", "importtime", "-m", "gitcrypt_sops", "decrypt", "mixed.yaml"]
    calls = len(gcp_backend.fake.calls)
    result = run(argv, home, env, work)
    assert result.returncode == 0 and result.stdout == PLAIN
    assert not imported_roots(result) & {"google", "grpc", "requests", "proto"}
    assert gcp_backend.fake.calls_since(calls) == []
    # the control: without the age key the GCP entry is used, and only then is the SDK loaded
    result = run(argv, home, gcp_backend.env(), work)
    assert result.returncode == 0 and result.stdout == PLAIN
    assert {"google", "grpc"} <= imported_roots(result)
