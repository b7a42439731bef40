"""The AWS KMS provider against a real moto server, with our CLI and the real sops binary.

Covers the entry format (sops 3.11 field order), encryption context, alias ARNs,
``+role`` keys (STS AssumeRole seen in moto's state), ``--aws-profile`` with
isolated AWS config files, web identity (OIDC) credentials with no static keys,
creation rules with KMS key groups, and the one-line failure messages.
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
from backend_aws import AwsBackend
from support import sops_binary

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers import awskms
from gitcrypt_sops.providers.awskms import AwsKmsProvider
from gitcrypt_sops.providers.base import ProviderError, Recipient

provider = AwsKmsProvider()

PLAIN = b"db:\n    user: admin\n    password: hunter2\napi_key: abc123\n"
DECRYPTED = PLAIN
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
#: every variable that can hand AWS credentials to an SDK
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


@pytest.fixture
def aws(aws_backend: AwsBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsBackend]:
    """The backend, with this process's environment pointed at it and no cached clients."""
    for name, value in aws_backend.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    awskms.clear_cache()
    yield aws_backend
    awskms.clear_cache()


def clean_run(argv: list[str], home: Path, env: Mapping[str, str], *, cwd: Path | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run a tool with ONLY PATH, HOME, LANG and ``env``: no static credentials unless given."""
    full = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **env}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, timeout=timeout, check=False)


def ours_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitcrypt_sops", *args]


def sops_argv(*args: str) -> list[str]:
    return [sops_binary(), *args]


def kms_entries(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text())["sops"]["kms"]
    return entries


def one_line_failure(result: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a failed decrypt, checked to be one line with exit 128."""
    err = result.stderr.decode()
    assert result.returncode == 128, (result.returncode, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "hunter2" not in err
    return err


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(PLAIN)
    return path


def encrypt_ours(ours: Any, aws: AwsBackend, plain: Path, *flags: str, out: str = "secrets.enc.yaml") -> Path:
    target = plain.parent / out
    ours("encrypt", *flags, "--output", str(target), str(plain), env=aws.env(), check=True)
    return target


# --------------------------------------------------------------------------- recipients


def test_parse_recipients_as_sops_takes_them() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    alias = "arn:aws:kms:us-east-2:111122223333:alias/app"
    role = "arn:aws:iam::111122223333:role/deployer"
    parsed = provider.parse_recipients(f" {key} , {alias}+{role},,arn:aws-cn:kms:cn-north-1:1:key/x ")
    assert parsed == [
        Recipient("kms", key),
        Recipient("kms", alias, (("role", role),)),
        Recipient("kms", "arn:aws-cn:kms:cn-north-1:1:key/x"),
    ]
    assert awskms.parse_arn(key) == "eu-west-1"
    # other partitions' roles split too (sops 3.11 splits only on +arn:aws:iam::)
    gov = provider.parse_recipients("arn:aws-us-gov:kms:us-gov-west-1:1:key/k+arn:aws-us-gov:iam::1:role/r")
    assert gov == [Recipient("kms", "arn:aws-us-gov:kms:us-gov-west-1:1:key/k",
                             (("role", "arn:aws-us-gov:iam::1:role/r"),))]
    for bad in ("alias/app", "1234abcd-12ab", "arn:aws:kms:eu-west-1:acct:key/x", "arn:aws:s3:::bucket"):
        with pytest.raises(ConfigError, match="invalid KMS key"):
            provider.parse_recipients(bad)


def test_recipient_from_config_mapping_and_string() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/k1"
    role = "arn:aws:iam::111122223333:role/r"
    got = provider.recipient_from_config(
        {"arn": key, "role": role, "context": {"z": "1", "a": "2", "gone": None}, "aws_profile": "dev"}
    )
    assert got == Recipient("kms", key, (("role", role), ("aws_profile", "dev"), ("context", (("a", "2"), ("z", "1")))))
    assert provider.recipient_from_config({"arn": key}) == Recipient("kms", key)
    assert provider.recipient_from_config(f"{key}+{role}") == Recipient("kms", key, (("role", role),))
    with pytest.raises(ConfigError, match="'arn' is missing"):
        provider.recipient_from_config({"role": role})
    with pytest.raises(ConfigError, match="map strings to strings"):
        provider.recipient_from_config({"arn": key, "context": {"a": ["x"]}})
    with pytest.raises(ConfigError, match="invalid KMS key"):
        provider.recipient_from_config({"arn": "alias/x"})


def test_session_name_matches_sops() -> None:
    name = awskms.session_name()
    assert name.startswith("sops@") and len(name) <= 64
    assert re.fullmatch(r"sops@[a-zA-Z0-9=,.@-_]*", name)


# --------------------------------------------------------------------------- in-process


def test_wrap_unwrap_round_trip(aws: AwsBackend) -> None:
    data_key = os.urandom(32)
    entry = provider.wrap(data_key, Recipient("kms", aws.key_arns[0]))
    assert list(entry) == ["arn", "created_at", "enc", "aws_profile"]
    assert entry["arn"] == aws.key_arns[0] and entry["aws_profile"] == ""
    assert CREATED_AT.match(entry["created_at"])
    # independent check: KMS itself decrypts the enc field to the data key
    blob = base64.b64decode(entry["enc"], validate=True)
    assert aws.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == data_key
    assert provider.unwrap(entry) == data_key
    assert provider.recipient_of(entry) == Recipient("kms", aws.key_arns[0])


def test_wrap_fields_with_role_context_profile(aws: AwsBackend, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    # a named profile replaces the environment's keys (as in both SDKs), so it brings its own
    config.write_text("[profile ci]\nregion = eu-central-1\naws_access_key_id = ci\naws_secret_access_key = ci\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    recipient = Recipient("kms", aws.key_arns[1], (("role", aws.role_arn), ("aws_profile", "ci"),
                                                   ("context", (("app", "web"), ("env", "prod")))))
    data_key = os.urandom(32)
    entry = provider.wrap(data_key, recipient)
    assert list(entry) == ["arn", "role", "context", "created_at", "enc", "aws_profile"]
    assert entry["role"] == aws.role_arn and entry["aws_profile"] == "ci"
    assert list(entry["context"].items()) == [("app", "web"), ("env", "prod")]
    assert provider.recipient_of(entry) == recipient
    assert provider.unwrap(entry) == data_key
    with pytest.raises(ProviderError, match="InvalidCiphertextException"):
        provider.unwrap({**entry, "context": {"app": "web", "env": "dev"}})


def test_unwrap_rejects_malformed_entries(aws: AwsBackend) -> None:
    arn = aws.key_arns[0]
    with pytest.raises(ProviderError, match="no enc"):
        provider.unwrap({"arn": arn, "created_at": "2026-01-01T00:00:00Z"})
    with pytest.raises(ProviderError, match="not valid base64"):
        provider.unwrap({"arn": arn, "enc": "%%%"})
    with pytest.raises(ProviderError, match="invalid KMS key"):
        provider.unwrap({"arn": "alias/x", "enc": "AAAA"})
    with pytest.raises(ProviderError, match="without an arn"):
        provider.recipient_of({"enc": "AAAA"})


def test_clients_are_cached_per_region_role_profile(aws: AwsBackend) -> None:
    data_key = os.urandom(32)
    before = len(aws.assumed_roles())
    recipient = Recipient("kms", aws.key_arns[0], (("role", aws.role_arn),))
    entries = [provider.wrap(data_key, recipient) for _ in range(3)]
    assert all(provider.unwrap(entry) == data_key for entry in entries)
    assert len(aws.assumed_roles()) == before + 1  # one AssumeRole for six calls


# --------------------------------------------------------------------------- CLI and sops


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_cli_encrypt_then_ours_and_sops_decrypt(fmt: str, aws: AwsBackend, ours: Any, sops: Any,
                                                tmp_path: Path) -> None:
    plain = tmp_path / f"secrets.{fmt}"
    plain.write_text('{"db": {"password": "hunter2"}, "n": 1}\n' if fmt == "json" else PLAIN.decode())
    enc = tmp_path / f"secrets.enc.{fmt}"
    ours("encrypt", "--kms", ",".join(aws.recipients()), "--output", str(enc), str(plain),
         env=aws.env(), check=True)
    meta = (json.loads if fmt == "json" else yaml.safe_load)(enc.read_text())["sops"]
    assert [e["arn"] for e in meta["kms"]] == aws.recipients()
    assert all(list(e) == ["arn", "created_at", "enc", "aws_profile"] for e in meta["kms"])
    assert "age" not in meta
    mine = ours("decrypt", str(enc), env=aws.env(), check=True).stdout
    theirs = sops("decrypt", str(enc), env=aws.sops_env(), check=True).stdout
    assert mine == theirs
    assert b"hunter2" in mine


@pytest.mark.parametrize("fmt", ["yaml", "json", "dotenv"])
def test_sops_encrypt_then_ours_decrypt(fmt: str, aws: AwsBackend, ours: Any, sops: Any, tmp_path: Path) -> None:
    text = {"yaml": "a: hunter2\nb: [1, 2]\n", "json": '{"a": "hunter2"}\n', "dotenv": "A=hunter2\n"}[fmt]
    name = {"yaml": "s.yaml", "json": "s.json", "dotenv": "s.env"}[fmt]
    (tmp_path / name).write_text(text)
    arns = ",".join(aws.recipients())
    done = sops("encrypt", "--kms", arns, "--encryption-context", "team:core,app:demo", name,
                cwd=tmp_path, env=aws.sops_env(), check=True)
    (tmp_path / ("enc." + name)).write_bytes(done.stdout)
    mine = ours("decrypt", "enc." + name, cwd=tmp_path, env=aws.env(), check=True).stdout
    theirs = sops("decrypt", "enc." + name, cwd=tmp_path, env=aws.sops_env(), check=True).stdout
    assert mine == theirs and b"hunter2" in mine


def entry_lines(path: Path) -> list[str]:
    """The lines of a YAML file's kms entries, with the random parts (enc, timestamps) masked."""
    block = path.read_text().split("sops:\n", 1)[1].split("    lastmodified:", 1)[0]
    block = re.sub(r"enc: \S+", "enc: ENC", block)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", block).splitlines()


@pytest.fixture
def both_role_context(aws: AwsBackend, ours: Any, sops: Any, plain: Path) -> tuple[Path, Path]:
    """The same plaintext encrypted by us and by sops for a +role key with a context."""
    flags = ("--kms", f"{aws.key_arns[0]}+{aws.role_arn}", "--encryption-context", "b:2,a:1")
    mine = encrypt_ours(ours, aws, plain, *flags)
    theirs = plain.parent / "sops.enc.yaml"
    theirs.write_bytes(sops("encrypt", *flags, str(plain), env=aws.sops_env(), check=True).stdout)
    return mine, theirs


def test_sops_entry_format_equals_ours(both_role_context: tuple[Path, Path]) -> None:
    mine, theirs = both_role_context
    assert [line.strip() for line in entry_lines(mine)] == [line.strip() for line in entry_lines(theirs)]
    assert kms_entries(mine) == [{**kms_entries(theirs)[0], "enc": kms_entries(mine)[0]["enc"],
                                  "created_at": kms_entries(mine)[0]["created_at"]}]
    assert kms_entries(mine)[0]["context"] == {"a": "1", "b": "2"}


@pytest.mark.xfail(reason="stores/yaml_emit.py indents a mapping nested in a sequence item 2 spaces deeper "
                          "than go-yaml (sops: dash column + indent)", strict=False)
def test_sops_entry_bytes_equal_ours(both_role_context: tuple[Path, Path]) -> None:
    mine, theirs = both_role_context
    assert entry_lines(mine) == entry_lines(theirs)


def test_encryption_context_is_enforced(aws: AwsBackend, ours: Any, sops: Any, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0], "--encryption-context", "env:test,app:demo")
    entry = kms_entries(enc)[0]
    assert list(entry) == ["arn", "context", "created_at", "enc", "aws_profile"]
    assert list(entry["context"].items()) == [("app", "demo"), ("env", "test")]
    sops("decrypt", str(enc), env=aws.sops_env(), check=True)
    assert ours("decrypt", str(enc), env=aws.env(), check=True).stdout == DECRYPTED

    tampered = plain.parent / "tampered.enc.yaml"
    tampered.write_text(enc.read_text().replace("env: test", "env: prod"))
    assert sops("decrypt", str(tampered), env=aws.sops_env()).returncode != 0
    err = one_line_failure(ours("decrypt", str(tampered), env=aws.env()))
    assert f"kms:{aws.key_arns[0]}" in err
    assert "encryption context does not match" in err and "InvalidCiphertextException" in err


def test_alias_arn(aws: AwsBackend, ours: Any, sops: Any, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.alias_arn)
    assert kms_entries(enc)[0]["arn"] == aws.alias_arn
    assert ours("decrypt", str(enc), env=aws.env(), check=True).stdout == DECRYPTED
    assert sops("decrypt", str(enc), env=aws.sops_env(), check=True).stdout == DECRYPTED


def test_role_is_assumed_with_sops_session_name(aws: AwsBackend, ours: Any, sops: Any, plain: Path) -> None:
    before = len(aws.assumed_roles())
    enc = encrypt_ours(ours, aws, plain, "--kms", f"{aws.key_arns[1]}+{aws.role_arn}")
    entry = kms_entries(enc)[0]
    assert entry["arn"] == aws.key_arns[1] and entry["role"] == aws.role_arn
    assert ours("decrypt", str(enc), env=aws.env(), check=True).stdout == DECRYPTED
    assert sops("decrypt", str(enc), env=aws.sops_env(), check=True).stdout == DECRYPTED
    new = aws.assumed_roles()[before:]
    # ours: one AssumeRole for encrypt, one for decrypt (separate processes); sops: one
    assert len(new) == 3
    assert {s["role_arn"] for s in new} == {aws.role_arn}
    assert {s["session_name"] for s in new} == {awskms.session_name()}


def test_aws_profile_from_isolated_config_files(aws: AwsBackend, home: Path, plain: Path) -> None:
    """Credentials and endpoint come only from the named profile: no static keys, no endpoint vars."""
    cfg = plain.parent / "awscfg"
    cfg.mkdir()
    (cfg / "config").write_text(f"[profile dev]\nregion = eu-west-3\nendpoint_url = {aws.url}\n")
    (cfg / "credentials").write_text("[dev]\naws_access_key_id = devkey\naws_secret_access_key = devsecret\n")
    env = {"AWS_CONFIG_FILE": str(cfg / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(cfg / "credentials"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    enc = plain.parent / "profile.enc.yaml"
    done = clean_run(ours_argv("encrypt", "--kms", aws.key_arns[0], "--aws-profile", "dev",
                               "--output", str(enc), str(plain)), home, env)
    assert done.returncode == 0, done.stderr
    assert kms_entries(enc)[0]["aws_profile"] == "dev"
    mine = clean_run(ours_argv("decrypt", str(enc)), home, env)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == DECRYPTED
    theirs = clean_run(sops_argv("decrypt", str(enc)), home, env)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == DECRYPTED
    # a creation rule's aws_profile reaches the provider too
    (plain.parent / ".sops.yaml").write_text(f"creation_rules:\n  - kms: {aws.key_arns[1]}\n    aws_profile: dev\n")
    ruled = clean_run(ours_argv("encrypt", "--output", "ruled.enc.yaml", plain.name), home, env, cwd=plain.parent)
    assert ruled.returncode == 0, ruled.stderr
    assert [(e["arn"], e["aws_profile"]) for e in kms_entries(plain.parent / "ruled.enc.yaml")] == [
        (aws.key_arns[1], "dev")]
    # without the profile's files the same file cannot be decrypted
    failed = clean_run(ours_argv("decrypt", str(enc)), home, {"AWS_EC2_METADATA_DISABLED": "true"})
    err = one_line_failure(failed)
    assert "profile 'dev' not found" in err


def test_web_identity_without_static_keys(aws: AwsBackend, ours: Any, sops: Any, home: Path, plain: Path) -> None:
    """A CD pipeline: an OIDC token file and a role ARN, no access keys anywhere."""
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0])
    token = plain.parent / "oidc-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUifQ.c2lnbmF0dXJl")
    env = {**aws.endpoint_env(), "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": aws.role_arn,
           "AWS_ROLE_SESSION_NAME": "gitcrypt-sops-ci"}
    assert not set(CREDENTIAL_VARS) & set(env)
    before = len(aws.assumed_roles())
    mine = clean_run(ours_argv("decrypt", str(enc)), home, env)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == DECRYPTED
    new = aws.assumed_roles()[before:]
    assert [(s["role_arn"], s["session_name"]) for s in new] == [(aws.role_arn, "gitcrypt-sops-ci")]
    # the real sops takes the same route
    theirs = clean_run(sops_argv("decrypt", str(enc)), home, env)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == DECRYPTED


def test_creation_rule_with_kms_key_groups(aws: AwsBackend, ours: Any, sops: Any, tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: grouped\\.yaml$\n"
        "    shamir_threshold: 2\n"
        "    key_groups:\n"
        "      - kms:\n"
        f"          - arn: {aws.key_arns[0]}\n"
        "            context: {team: core, app: demo}\n"
        "      - kms:\n"
        f"          - arn: {aws.key_arns[1]}\n"
        f"            role: {aws.role_arn}\n"
        "  - path_regex: single\\.yaml$\n"
        f"    kms: {aws.alias_arn}\n"
    )
    for name in ("grouped.yaml", "single.yaml"):
        (tmp_path / name).write_bytes(PLAIN)
        ours("encrypt", "-i", name, cwd=tmp_path, env=aws.env(), check=True)
    grouped = yaml.safe_load((tmp_path / "grouped.yaml").read_text())["sops"]
    first, second = (group["kms"][0] for group in grouped["key_groups"])
    assert first["context"] == {"app": "demo", "team": "core"} and "role" not in first
    assert second["role"] == aws.role_arn and "context" not in second
    assert kms_entries(tmp_path / "single.yaml")[0]["arn"] == aws.alias_arn
    for name in ("grouped.yaml", "single.yaml"):
        assert ours("decrypt", name, cwd=tmp_path, env=aws.env(), check=True).stdout == DECRYPTED
        assert sops("decrypt", name, cwd=tmp_path, env=aws.sops_env(), check=True).stdout == DECRYPTED


def test_kms_arn_from_environment(aws: AwsBackend, ours: Any, plain: Path) -> None:
    enc = plain.parent / "env.enc.yaml"
    ours("encrypt", "--output", str(enc), str(plain), env={**aws.env(), "SOPS_KMS_ARN": aws.key_arns[1]},
         check=True)
    assert [e["arn"] for e in kms_entries(enc)] == [aws.key_arns[1]]


# --------------------------------------------------------------------------- failures


def test_wrong_key_fails_in_one_line(aws: AwsBackend, ours: Any, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0])
    swapped = plain.parent / "swapped.enc.yaml"
    swapped.write_text(enc.read_text().replace(aws.key_arns[0], aws.key_arns[1]))
    err = one_line_failure(ours("decrypt", str(swapped), env=aws.env()))
    assert f"kms:{aws.key_arns[1]}" in err and "AWS KMS decrypt failed" in err
    assert "AccessDeniedException" in err or "IncorrectKeyException" in err


def test_missing_key_fails_in_one_line(aws: AwsBackend, ours: Any, plain: Path) -> None:
    ghost = aws.key_arns[0].rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    done = ours("encrypt", "--kms", ghost, str(plain), env=aws.env())
    err = done.stderr.decode()
    assert done.returncode == 128 and err.count("\n") == 1, err
    assert f"cannot encrypt with AWS KMS key {ghost}" in err and "NotFoundException" in err


def test_no_credentials_fails_in_one_line(aws: AwsBackend, ours: Any, home: Path, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0])
    err = one_line_failure(clean_run(ours_argv("decrypt", str(enc)), home, aws.endpoint_env()))
    assert f"kms:{aws.key_arns[0]}" in err and "no AWS credentials found" in err


def test_unreachable_endpoint_fails_fast_in_one_line(aws: AwsBackend, ours: Any, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0])
    dead = "http://127.0.0.1:9"
    env = {**aws.env(), "AWS_ENDPOINT_URL": dead, "AWS_ENDPOINT_URL_KMS": dead, "AWS_ENDPOINT_URL_STS": dead}
    start = time.monotonic()
    err = one_line_failure(ours("decrypt", str(enc), env=env))
    assert time.monotonic() - start < 15
    assert f"kms:{aws.key_arns[0]}" in err and f"cannot reach {dead}" in err


def test_missing_sdk_gives_install_hint(aws: AwsBackend, ours: Any, plain: Path) -> None:
    enc = encrypt_ours(ours, aws, plain, "--kms", aws.key_arns[0])
    code = ("import sys; sys.modules['botocore'] = None; sys.argv = ['gitcrypt-sops', 'decrypt', sys.argv[1]]; "
            "import runpy; runpy.run_module('gitcrypt_sops', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(enc)], env={**os.environ, **aws.env()},
                          capture_output=True, timeout=60, check=False)
    err = one_line_failure(done)
    assert "need boto3" in err and "pip install 'gitcrypt-sops[aws]'" in err


def test_role_failure_names_the_role(aws: AwsBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    data_key = os.urandom(32)
    entry = provider.wrap(data_key, Recipient("kms", aws.key_arns[0], (("role", aws.role_arn),)))
    awskms.clear_cache()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    with pytest.raises(ProviderError) as caught:
        provider.unwrap(entry)
    assert caught.value.message == (f"AWS KMS decrypt failed: cannot assume role {aws.role_arn}: "
                                    "cannot reach http://127.0.0.1:9/ (network or endpoint unreachable)")


def test_unreadable_web_identity_token(aws: AwsBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = provider.wrap(os.urandom(32), Recipient("kms", aws.key_arns[0]))
    awskms.clear_cache()
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "missing-token"))
    monkeypatch.setenv("AWS_ROLE_ARN", aws.role_arn)
    with pytest.raises(ProviderError, match=r"cannot read .*missing-token \(No such file or directory\)"):
        provider.unwrap(entry)
