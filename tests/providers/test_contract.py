"""The contract every key provider meets, run against each backend in ``AVAILABLE``.

One set of checks, parametrized over the backend fixtures that could be imported
(see conftest.py): the provider's own wrap/unwrap, our CLI and the real sops in
both directions, the failure report when the backend's credentials are missing,
and a two-group Shamir file (age + the backend) that needs both.

A backend may define ``env_without_credentials()`` (the backend reachable, its
credentials gone); without it, every credential-looking variable of ``env()`` and
of the offline dummies is blanked, endpoints kept, so nothing reaches the network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from support import AGE_KEY_FILE, AGE_RECIPIENT, OFFLINE_ENV, Runner

from gitcrypt_sops import providers
from gitcrypt_sops.providers.base import Recipient

HERE = Path(__file__).parent


def _available() -> list[str]:
    """``AVAILABLE`` from this folder's conftest (whichever conftest is importable as a name)."""
    module = sys.modules.get("conftest")
    if module is None or Path(getattr(module, "__file__", "")).parent != HERE:
        spec = importlib.util.spec_from_file_location("_provider_backends", HERE / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return list(module.AVAILABLE)


BACKENDS = _available()

PLAIN = """\
# a comment
service:
    name: api
    password: pa55-word
    port: 5432
    tags:
        - a
        - b
token: abc123
"""

_CREDENTIAL = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|GNUPGHOME")


def without_credentials(backend: Any) -> dict[str, str]:
    hook = getattr(backend, "env_without_credentials", None)
    if hook is not None:
        env: dict[str, str] = hook()
        return env
    names = set(backend.env()) | set(OFFLINE_ENV)
    return {**backend.env(), **{name: "" for name in names if _CREDENTIAL.search(name)}}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text(PLAIN)
    return path


def run_ok(runner: Runner, *args: str, env: dict[str, str]) -> bytes:
    result = runner(*args, env=env)
    assert result.returncode == 0, (args[0], result.returncode, result.stderr.decode(errors="replace")[-800:])
    return result.stdout


def test_provider_round_trip(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    from gitcrypt_sops.providers import age

    age.clear_cache()
    provider = providers.get(backend.type_id)
    assert provider is not None and provider.type_id == backend.type_id
    for text in backend.recipients():
        (recipient,) = provider.parse_recipients(text)
        assert isinstance(recipient, Recipient) and recipient.type_id == backend.type_id
        for secret in (os.urandom(32), os.urandom(33)):  # a data key and a Shamir share
            entry = provider.wrap(secret, recipient)
            assert secret.hex() not in repr(entry)
            assert provider.recipient_of(entry).ident == recipient.ident
            assert provider.unwrap(entry) == secret


def test_cli_and_sops_both_ways(backend: Any, plain: Path, tmp_path: Path, ours: Runner, sops: Runner) -> None:
    env = backend.env()
    sops_env = backend.sops_env()
    ours_file = tmp_path / "ours.enc.yaml"
    ours_file.write_bytes(run_ok(ours, "encrypt", backend.flag, ",".join(backend.recipients()), str(plain), env=env))
    entries = yaml.safe_load(ours_file.read_text())["sops"][backend.type_id]
    assert len(entries) == 2
    assert run_ok(ours, "decrypt", str(ours_file), env=env) == PLAIN.encode()
    if sops_env is None:
        return
    assert yaml.safe_load(run_ok(sops, "decrypt", str(ours_file), env=sops_env)) == yaml.safe_load(PLAIN)
    sops_file = tmp_path / "sops.enc.yaml"
    sops_file.write_bytes(run_ok(sops, "encrypt", backend.flag, ",".join(backend.recipients()), str(plain),
                                 env=sops_env))
    assert yaml.safe_load(run_ok(ours, "decrypt", str(sops_file), env=env)) == yaml.safe_load(PLAIN)


def test_missing_credentials_fail_with_one_line(backend: Any, plain: Path, tmp_path: Path, ours: Runner) -> None:
    encrypted = tmp_path / "enc.yaml"
    encrypted.write_bytes(run_ok(ours, "encrypt", backend.flag, backend.recipients()[0], str(plain),
                                 env=backend.env()))
    result = ours("decrypt", str(encrypted), env=without_credentials(backend))
    message = result.stderr.decode()
    assert result.returncode == 128, message
    assert result.stdout == b"" and message.count("\n") == 1 and message.startswith("gitcrypt-sops: ")
    recipient = backend.recipients()[0]
    assert recipient in message or recipient[-16:] in message, message
    assert "pa55-word" not in message


def test_key_groups_need_both(backend: Any, plain: Path, tmp_path: Path, ours: Runner, sops: Runner,
                              home: Path) -> None:
    """Group 1: the vector age key; group 2: this backend; threshold 2."""
    encrypted = tmp_path / "groups.enc.yaml"
    encrypted.write_bytes(run_ok(ours, "encrypt", "--age", AGE_RECIPIENT, str(plain), env={}))
    run_ok(ours, "groups", "add", "-f", str(encrypted), backend.flag, backend.recipients()[0],
           "--shamir-secret-sharing-threshold", "2", "-i", env=backend.env())
    block = yaml.safe_load(encrypted.read_text())["sops"]
    assert block["shamir_threshold"] == 2 and len(block["key_groups"]) == 2
    assert block["key_groups"][1][backend.type_id]
    no_age = home / "no-age-keys.txt"
    no_age.write_text("")
    only_age = {**without_credentials(backend), "SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
    only_backend = {**backend.env(), "SOPS_AGE_KEY_FILE": str(no_age)}
    assert ours("decrypt", str(encrypted), env=only_age).returncode == 128
    assert ours("decrypt", str(encrypted), env=only_backend).returncode == 128
    both = {**backend.env(), "SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
    assert run_ok(ours, "decrypt", str(encrypted), env=both) == PLAIN.encode()
    sops_env = backend.sops_env()
    if sops_env is not None:
        decrypted = run_ok(sops, "decrypt", str(encrypted), env={**sops_env, "SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
        assert yaml.safe_load(decrypted) == yaml.safe_load(PLAIN)


def test_rotate_rewraps_for_every_recipient(backend: Any, plain: Path, tmp_path: Path, ours: Runner,
                                            sops: Runner) -> None:
    """``rotate`` wraps a new key for recipients read back from the file (``recipient_of``)."""
    env = backend.env()
    encrypted = tmp_path / "enc.yaml"
    encrypted.write_bytes(run_ok(ours, "encrypt", backend.flag, backend.recipients()[0], str(plain), env=env))
    added = backend.flag.replace("--", "--add-", 1)
    run_ok(ours, "rotate", "-i", added, backend.recipients()[1], str(encrypted), env=env)
    entries = yaml.safe_load(encrypted.read_text())["sops"][backend.type_id]
    assert len(entries) == 2
    assert run_ok(ours, "decrypt", str(encrypted), env=env) == PLAIN.encode()
    sops_env = backend.sops_env()
    if sops_env is not None:
        assert yaml.safe_load(run_ok(sops, "decrypt", str(encrypted), env=sops_env)) == yaml.safe_load(PLAIN)
