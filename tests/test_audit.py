"""The audit log: one well-formed JSON line per successful decrypt, never a value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AGE_KEY_FILE, AGE_KEYS_BOTH, AGE_RECIPIENT, AGE_RECIPIENT_2, Runner, scrubbed_env

import gitcrypt_sops as gs
from gitcrypt_sops import api, audit

SECRET = "s3cr3t-value-never-logged"
FIELDS = {"time", "event", "user", "uid", "host", "pid", "command", "file", "format", "recipients", "tool"}


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    audit._context = None
    audit._policy_cache.clear()
    yield
    audit._context = None
    audit._policy_cache.clear()


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    path = tmp_path / "app.enc.yaml"
    path.write_bytes(gs.encrypt({"password": SECRET}, "yaml", recipients=[AGE_RECIPIENT]))
    return path


def lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_concurrent_cli_decrypts_one_line_each(encrypted: Path, tmp_path: Path, home: Path) -> None:
    log = tmp_path / "audit" / "log.jsonl"
    log.parent.mkdir()
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE), audit.ENV: str(log)})
    commands = [["decrypt", str(encrypted)], ["exec-env", str(encrypted), "true"],
                ["exec-file", str(encrypted), "cat {} >/dev/null"], ["k8s-secret", str(encrypted), "--name", "a"]]
    processes = [
        subprocess.Popen([sys.executable, "-m", "gitcrypt_sops", *commands[n % len(commands)]], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(20)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    records = lines(log)
    assert len(records) == 20
    assert sorted(r["pid"] for r in records) == sorted(p.pid for p in processes)
    for record in records:
        assert set(record) >= FIELDS
        assert record["event"] == "decrypt" and record["file"] == str(encrypted) and record["format"] == "yaml"
        assert record["recipients"] == [f"age:{AGE_RECIPIENT}"]
        assert str(record["time"]).endswith("Z")
    assert {r["command"] for r in records} == {"decrypt", "exec-env", "exec-file", "k8s-secret"}
    assert SECRET not in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


def test_policy_sets_the_log(encrypted: Path, tmp_path: Path, ours: Runner) -> None:
    (tmp_path / ".sops.yaml").write_text("policy:\n  audit_log: logs/decrypts.jsonl\n")
    (tmp_path / "logs").mkdir()
    elsewhere = tmp_path / "home"
    result = ours("decrypt", str(encrypted), cwd=elsewhere, check=True)
    assert SECRET.encode() in result.stdout
    [record] = lines(tmp_path / "logs" / "decrypts.jsonl")
    assert record["command"] == "decrypt" and record["file"] == str(encrypted)


def test_nothing_logged_without_configuration(encrypted: Path, tmp_path: Path, ours: Runner) -> None:
    ours("decrypt", str(encrypted), check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.enc.yaml", "home"]


def test_failed_decrypts_are_not_logged(encrypted: Path, tmp_path: Path, ours: Runner) -> None:
    log = tmp_path / "log.jsonl"
    wrong = ours("decrypt", str(encrypted), env={audit.ENV: str(log), "SOPS_AGE_KEY_FILE": str(tmp_path / "none")})
    assert wrong.returncode == 128
    text = encrypted.read_text().replace("lastmodified: \"", "lastmodified: \"1")
    tampered = tmp_path / "tampered.enc.yaml"
    tampered.write_text(text)
    assert ours("decrypt", str(tampered), env={audit.ENV: str(log)}).returncode != 0
    assert not log.exists()


def test_unwritable_log_fails_closed(encrypted: Path, tmp_path: Path, ours: Runner) -> None:
    result = ours("decrypt", str(encrypted), env={audit.ENV: str(tmp_path / "missing-dir" / "log")})
    assert result.returncode == 3
    assert result.stdout == b""
    assert result.stderr.startswith(b"gitcrypt-sops: audit log ") and result.stderr.count(b"\n") == 1


def test_shamir_groups_name_each_recipient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = gs.encrypt({"a": "b"}, "json", key_groups=[[AGE_RECIPIENT], [AGE_RECIPIENT_2]], shamir_threshold=2)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(audit.ENV, str(log))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEYS_BOTH))
    audit.set_context("library", str(tmp_path / "x.json"))
    assert api.decrypt_data(blob, "json").data() == {"a": "b"}
    [record] = lines(log)
    assert record["recipients"] == [f"age:{AGE_RECIPIENT}", f"age:{AGE_RECIPIENT_2}"]
    assert record["command"] == "library" and record["file"] == str(tmp_path / "x.json")


def test_reusing_a_data_key_is_not_a_new_decrypt(encrypted: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(audit.ENV, str(log))
    first = api.decrypt_data(encrypted.read_bytes(), "yaml")
    api.decrypt_parsed(api.parse(encrypted.read_bytes(), "yaml", encrypted=True), data_key=first.data_key)
    assert len(lines(log)) == 1


def test_write_record_appends_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b'{"earlier":1}\n')
    audit.write_record(str(log), {"n": 1})
    audit.write_record(str(log), {"n": 2})
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"earlier": 1}, {"n": 1}, {"n": 2}]
    assert os.stat(log).st_size == len(log.read_bytes())
