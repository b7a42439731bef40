"""The policy file and ``check``: validation with lines, every rule (violating and compliant), data key age.

Files are encrypted by our pipeline or by the real sops binary with the test-only
vector keys; ``check`` itself never gets a key.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support import AGE_RECIPIENT, AGE_RECIPIENT_2, Runner

from gitcrypt_sops import api
from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.gitdrivers.scan import check_paths
from gitcrypt_sops.metadata import Metadata
from gitcrypt_sops.policy import (
    Policy,
    check_document,
    compile_glob,
    data_key_birth,
    load_policy,
    parse_age,
    parse_recipient_ref,
)
from gitcrypt_sops.providers.base import Recipient
from gitcrypt_sops.walk import EncryptionRule

R1, R2 = AGE_RECIPIENT, AGE_RECIPIENT_2
SECRET = b"db:\n  user: app\n  password: hunter2\napi:\n  api_secret: s3\n  url: https://x\n"


def encrypt(plain: bytes, recipients: list[str], fmt: str = "yaml", rule: EncryptionRule | None = None) -> bytes:
    options = api.EncryptOptions([[Recipient("age", r) for r in recipients]], rule)
    return api.encrypt_bytes(plain, fmt, options)


def write_policy(root: Path, body: str, name: str = ".sops-policy.yaml") -> Path:
    path = root / name
    path.write_text(body)
    return path


def violations(policy: Policy, root: Path, name: str, data: bytes, **kwargs: object) -> list[tuple[str, str]]:
    found = check_document(policy, name, data, file_path=root / name, **kwargs)  # type: ignore[arg-type]
    return [(v.rule, v.message) for v in found]


def rules(found: list[tuple[str, str]]) -> list[str]:
    return [rule for rule, _ in found]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        ("policy:\n  must_encrpyt: [a]\n", 2, "unknown key 'must_encrpyt'; did you mean 'must_encrypt'?"),
        ("policy:\n  never_plaintxt: x\n", 2, "did you mean 'never_plaintext'?"),
        ("policy:\n  banana: 1\n", 2, "known keys: must_encrypt"),
        ("creation_rules:\n  - path_regx: x\n    age: " + R1 + "\n", 2, "did you mean 'path_regex'?"),
        ("creation_rules:\n  - key_groups:\n      - agee: [" + R1 + "]\n", 3, "did you mean 'age'?"),
        ("creation_rule:\n  - age: " + R1 + "\n", 1, "did you mean 'creation_rules'?"),
        ("policy:\n  max_data_key_age: 90\n", 2, "give a unit, e.g. 90d"),
        ("policy:\n  max_data_key_age: soon\n", 2, "expected a duration"),
        ("policy:\n  recipients_match_rules: maybe\n", 2, "expected true or false"),
        ("policy:\n  never_plaintext: '(unclosed'\n", 2, "invalid regex"),
        ("policy:\n\n  must_encrypt:\n    - ok/**\n    - {a: b}\n", 5, "expected a string"),
        ("policy:\n  required_recipients: [age1notakey]\n", 2, "required_recipients"),
        ("policy:\n  forbidden_recipients: [nonsense]\n", 2, "a recipient is an age key"),
        (f"policy:\n  required_recipients: [{R1}]\n  forbidden_recipients: [{R1}]\n", 2, "both required and forbidden"),
        ("policy:\n  audit_log: [a]\n", 2, "audit_log: expected a file path"),
    ],
)
def test_bad_policy_is_one_line_with_its_line_number(tmp_path: Path, body: str, line: int, expected: str) -> None:
    path = write_policy(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = caught.value.message
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message
    assert "\n" not in message


def test_audit_log_is_a_policy_setting(tmp_path: Path) -> None:
    path = write_policy(tmp_path, f"policy:\n  audit_log: {tmp_path / 'audit.jsonl'}\n  must_encrypt: [x/**]\n")
    assert load_policy(path).must_encrypt == ("x/**",)


def test_sops_yaml_keeps_sops_leniency_but_checks_its_policy(tmp_path: Path) -> None:
    lenient = write_policy(tmp_path, f"future_key: 1\ncreation_rules:\n  - new_field: x\n    age: {R1}\n", ".sops.yaml")
    assert load_policy(lenient).must_encrypt == ()
    write_policy(tmp_path, "policy:\n  must_encryptt: [x]\n", ".sops.yaml")
    with pytest.raises(ConfigError, match="did you mean 'must_encrypt'"):
        load_policy(tmp_path / ".sops.yaml")


def test_valid_policy_model(tmp_path: Path) -> None:
    path = write_policy(tmp_path, f"""\
creation_rules:
  - path_regex: secrets/
    age: {R1}
policy:
  must_encrypt: ["secrets/**", "**/*.enc.*"]
  never_plaintext: "(?i)(password|token)"
  required_recipients: [{R1}, "kms:arn:aws:kms:us-east-1:123456789012:key/abc"]
  forbidden_recipients: "{R2}"
  max_data_key_age: 1w2d
  recipients_match_rules: yes
  exclude: [tests/]
""")
    policy = load_policy(path)
    assert policy.must_encrypt == ("secrets/**", "**/*.enc.*")
    assert policy.max_data_key_age == timedelta(days=9)
    assert policy.recipients_match_rules is True
    assert [str(r) for r in policy.required_recipients] == [R1, "kms:arn:aws:kms:us-east-1:123456789012:key/abc"]
    assert policy.excluded("tests/a/b.yaml") and not policy.excluded("src/tests.yaml")
    assert policy.sensitive("DB_PASSWORD") and not policy.sensitive("host")


def test_cli_reports_a_bad_policy_in_one_line(tmp_path: Path, ours: Runner) -> None:
    write_policy(tmp_path, "policy:\n  must_encrypt: [a]\n  max_age: 3d\n")
    (tmp_path / "a").write_text("x")
    result = ours("check", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and ":3: policy: unknown key 'max_age'" in lines[0]
    assert "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("secrets/**", ["secrets/a.yaml", "secrets/x/y.json"], ["a/secrets/b.yaml", "secretsx/a"]),
        ("**/*.enc.*", ["a.enc.yaml", "x/y/z.enc.json"], ["a.enc", "encx.yaml"]),
        ("*.env", ["prod.env", "deep/dir/.env"], ["prod.env.txt"]),
        ("config/*.yaml", ["config/a.yaml"], ["config/x/a.yaml", "other/config/a.yaml"]),
        ("a/**/b", ["a/b", "a/x/y/b"], ["a/xb"]),
        ("secrets/", ["secrets/a", "secrets/x/y"], ["secrets"]),
        ("f[0-9].y?ml", ["f1.yaml", "d/f2.yaml"], ["fa.yaml", "f1.yml"]),
        ("/top.yaml", ["top.yaml"], ["sub/top.yaml"]),
    ],
)
def test_globs(pattern: str, yes: list[str], no: list[str]) -> None:
    compiled = compile_glob(pattern)
    assert all(compiled.fullmatch(p) for p in yes), pattern
    assert not any(compiled.fullmatch(p) for p in no), pattern


def test_durations_and_recipient_refs() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("36h") == timedelta(hours=36)
    assert parse_age("1y") == timedelta(days=365)
    with pytest.raises(ValueError):
        parse_age("0d")
    assert parse_recipient_ref("arn:aws:kms:us-east-1:1:key/k+arn:aws:iam::1:role/r").ident == "arn:aws:kms:us-east-1:1:key/k"
    assert parse_recipient_ref("85D77543B3D624B63CEA9E6DBC17301B491B3F21").type_id == "pgp"
    assert parse_recipient_ref("gcp_kms:projects/p/locations/l/keyRings/r/cryptoKeys/k").type_id == "gcp_kms"
    with pytest.raises(ValueError):
        parse_recipient_ref("nothing-like-a-key")


# --------------------------------------------------------------------------- each rule


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def test_must_encrypt(root: Path) -> None:
    policy = load_policy(write_policy(root, 'policy:\n  must_encrypt: ["secrets/**", "**/*.enc.*"]\n'))
    plain = b"password: x\n"
    bad = violations(policy, root, "secrets/db.yaml", plain)
    assert rules(bad) == ["must_encrypt"] and "secrets/**" in bad[0][1]
    assert rules(violations(policy, root, "app/x.enc.json", b'{"a": 1}')) == ["must_encrypt"]
    assert rules(violations(policy, root, "secrets/blob.bin", b"\x00\x01raw")) == ["must_encrypt"]
    assert violations(policy, root, "secrets/db.yaml", encrypt(plain, [R1])) == []
    assert violations(policy, root, "secrets/blob.bin", encrypt(b"\x00\x01raw", [R1], "binary")) == []
    assert violations(policy, root, "config/app.yaml", plain) == []  # not selected, no other rule


def test_must_encrypt_names_other_tools(root: Path) -> None:
    policy = load_policy(write_policy(root, 'policy:\n  must_encrypt: ["secrets/**"]\n'))
    found = violations(policy, root, "secrets/key.yaml", b"\x00GITCRYPT\x00\x13\x99binary")
    assert rules(found) == ["must_encrypt"] and "git-crypt" in found[0][1]
    found = violations(policy, root, "secrets/vault.yml", b"$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    assert "ansible-vault" in found[0][1]


def test_never_plaintext(root: Path) -> None:
    policy = load_policy(write_policy(root, 'policy:\n  never_plaintext: "(?i)(password|secret|token)"\n'))
    partly = encrypt(SECRET, [R1], rule=EncryptionRule("encrypted_regex", "^password$"))
    found = violations(policy, root, "s.yaml", partly)
    assert found == [("never_plaintext", '["api"]["api_secret"] is stored in plaintext')]
    assert violations(policy, root, "s.yaml", encrypt(SECRET, [R1])) == []
    suffix = encrypt(b"token_unencrypted: abc\nother: 1\n", [R1])
    assert rules(violations(policy, root, "t.yaml", suffix)) == ["never_plaintext"]
    # plaintext files of every structured format; empty and null values leak nothing
    assert rules(violations(policy, root, "conf.yaml", b"db:\n  password: hunter2\n")) == ["never_plaintext"]
    assert rules(violations(policy, root, "c.json", b'{"list": [{"Token": 5}]}')) == ["never_plaintext"]
    assert rules(violations(policy, root, "prod.env", b"API_TOKEN=abc\n")) == ["never_plaintext"]
    assert violations(policy, root, "c.yaml", b"password: ''\ntoken: null\nsecret: {}\n") == []
    assert violations(policy, root, "c.yaml", b"user: app\n") == []


def test_required_and_forbidden_recipients(root: Path) -> None:
    policy = load_policy(write_policy(root, f"policy:\n  required_recipients: [{R2}]\n  forbidden_recipients: [{R1}]\n"))
    only_r1 = encrypt(b"a: 1\n", [R1])
    found = violations(policy, root, "f.yaml", only_r1)
    assert sorted(rules(found)) == ["forbidden_recipients", "required_recipients"]
    assert violations(policy, root, "f.yaml", encrypt(b"a: 1\n", [R2])) == []


def test_recipients_match_rules(root: Path) -> None:
    policy = load_policy(write_policy(root, f"""\
creation_rules:
  - path_regex: ^prod/
    key_groups:
      - age: [{R1}]
      - age: [{R2}]
  - path_regex: ""
    age: {R1},{R2}
policy:
  recipients_match_rules: true
"""))
    found = violations(policy, root, "dev/a.yaml", encrypt(b"a: 1\n", [R1]))
    assert rules(found) == ["recipients_match_rules"]
    assert "missing " + R2 in found[0][1] and "creation_rules[1]" in found[0][1]
    assert violations(policy, root, "dev/a.yaml", encrypt(b"a: 1\n", [R2, R1])) == []
    # one group holding both keys is not two groups
    assert rules(violations(policy, root, "prod/a.yaml", encrypt(b"a: 1\n", [R1, R2]))) == ["recipients_match_rules"]
    groups = api.EncryptOptions([[Recipient("age", R1)], [Recipient("age", R2)]], shamir_threshold=2)
    assert violations(policy, root, "prod/a.yaml", api.encrypt_bytes(b"a: 1\n", "yaml", groups)) == []


def test_max_data_key_age_without_history(root: Path) -> None:
    policy = load_policy(write_policy(root, "policy:\n  max_data_key_age: 30d\n"))
    data = encrypt(b"a: 1\n", [R1])
    now = datetime.now(timezone.utc)
    assert violations(policy, root, "a.yaml", data, now=now + timedelta(days=29)) == []
    found = violations(policy, root, "a.yaml", data, now=now + timedelta(days=45))
    assert rules(found) == ["max_data_key_age"] and "lastmodified" in found[0][1] and "45 days" in found[0][1]


def test_data_key_birth_takes_the_oldest_created_at() -> None:
    entries = [("age", {"recipient": R1, "enc": "x"}),
               ("kms", {"arn": "arn:aws:kms:us-east-1:1:key/k", "created_at": "2020-01-02T03:04:05Z", "enc": "y"})]
    meta = Metadata([entries], "2024-05-05T00:00:00Z", "", EncryptionRule())
    birth, source = data_key_birth(b"", "yaml", meta)
    assert birth == datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc) and source == "created_at"


def test_metadata_rule_reports_damaged_files(root: Path) -> None:
    policy = load_policy(write_policy(root, "policy:\n  must_encrypt: [x/**]\n"))
    broken = encrypt(b"a: 1\n", [R1]).replace(b"version: 3.11.0", b"version: banana")
    assert rules(violations(policy, root, "f.yaml", broken)) == ["metadata"]
    truncated = encrypt(b'{"a": "b"}', [R1], "json")[:-40]
    assert rules(violations(policy, root, "cut.json", truncated)) == ["metadata"]
    assert violations(policy, root, "bad.json", b'{"a": ') == []  # not a sops file, not selected: no business


def test_never_plaintext_in_documents_sops_cannot_hold(root: Path) -> None:
    policy = load_policy(write_policy(root, "policy:\n  never_plaintext: password\n"))
    assert violations(policy, root, "hooks.yaml", b"- id: x\n  name: y\n") == []
    found = violations(policy, root, "list.yaml", b"- name: db\n  password: hunter2\n")
    assert found == [("never_plaintext", '[0]["password"] holds a plaintext value')]


# --------------------------------------------------------------------------- git history and the real sops


def _git(root: Path, *args: str, when: datetime | None = None) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root.parent / "home"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    subprocess.run(["git", *args], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def test_max_data_key_age_follows_git_history_through_sops_edits(root: Path, sops: Runner) -> None:
    """An edit or an updatekeys keeps the data key (and its age); a rotate makes a new one."""
    (root.parent / "home").mkdir(exist_ok=True)
    write_policy(root, "policy:\n  max_data_key_age: 90d\n")
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - age: {R1},{R2}\n")
    file = root / "s.yaml"
    file.write_bytes(encrypt(b"a: one\nb: two\n", [R1]))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    old = datetime.now(timezone.utc) - timedelta(days=200)
    _git(root, "commit", "-q", "-m", "old", when=old)

    def check() -> list[str]:
        result = check_paths([str(file)], config=str(root / ".sops-policy.yaml"))
        return [v.message for v in result.violations]

    assert sops("set", str(file), '["a"]', '"three"', cwd=root).returncode == 0
    _git(root, "commit", "-q", "-am", "edit")
    assert any("git history" in m and "200 days" in m for m in check())
    assert sops("updatekeys", "-y", str(file), cwd=root).returncode == 0  # re-wraps every key, same data key
    _git(root, "commit", "-q", "-am", "updatekeys")
    assert any("git history" in m for m in check())
    assert sops("rotate", "-i", str(file), cwd=root).returncode == 0
    assert check() == []  # uncommitted rotation: a new key
    _git(root, "commit", "-q", "-am", "rotate")
    assert check() == []


# --------------------------------------------------------------------------- the command


def test_check_command_text_json_and_exit_codes(root: Path, ours: Runner) -> None:
    write_policy(root, f"""\
creation_rules:
  - age: {R1}
policy:
  must_encrypt: ["secrets/**"]
  never_plaintext: "(?i)password"
  exclude: ["fixtures/**"]
""")
    (root / "secrets").mkdir()
    (root / "fixtures").mkdir()
    (root / "secrets" / "ok.yaml").write_bytes(encrypt(b"password: x\n", [R1]))
    (root / "secrets" / "leak.yaml").write_bytes(b"password: x\n")
    (root / "fixtures" / "fake.yaml").write_bytes(b"password: fake\n")
    (root / "notes.txt").write_bytes(b"password: irrelevant, not a structured file\n")
    result = ours("check", "--format", "json", cwd=root)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["files_checked"] == 3  # the policy file itself is skipped
    assert {(v["file"], v["rule"]) for v in report["violations"]} == {
        ("secrets/leak.yaml", "must_encrypt"), ("secrets/leak.yaml", "never_plaintext")}
    assert all(v["fix"] for v in report["violations"])
    text = ours("check", "secrets", cwd=root)
    assert text.returncode == 1
    assert text.stdout.decode().splitlines()[0].startswith("secrets/leak.yaml: must_encrypt: not encrypted")
    assert ours("check", "secrets/ok.yaml", cwd=root).returncode == 0
    assert ours("check", "--skip", "must_encrypt", "--skip", "never_plaintext", cwd=root).returncode == 0
    missing = ours("check", "nope", cwd=root)
    assert missing.returncode == 100 and b"nope" in missing.stderr


def test_check_never_needs_a_key(root: Path, ours: Runner) -> None:
    write_policy(root, f"policy:\n  required_recipients: [{R1}]\n")
    (root / "a.yaml").write_bytes(encrypt(b"a: 1\n", [R2]))
    result = ours("check", cwd=root, env={"SOPS_AGE_KEY_FILE": os.devnull})
    assert result.returncode == 1 and b"required_recipients" in result.stdout


def test_check_uses_git_file_list_and_workers(root: Path) -> None:
    (root.parent / "home").mkdir(exist_ok=True)
    write_policy(root, 'policy:\n  must_encrypt: ["**/*.enc.*"]\n')
    _git(root, "init", "-q")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "x.enc.yaml").write_text("a: 1\n")
    for n in range(12):
        (root / f"f{n}.enc.yaml").write_text("a: 1\n" if n % 3 == 0 else "")
    one = check_paths([str(root)], jobs=1)
    many = check_paths([str(root)], jobs=2)
    assert one.files == many.files == 13  # 12 files and .gitignore; ignored/ is not listed
    assert sorted(v.as_text() for v in one.violations) == sorted(v.as_text() for v in many.violations)
    assert len(one.violations) == 12


def test_check_throughput_smoke(root: Path) -> None:
    """Metadata-only checking costs well under 10 ms of CPU per file (CPU time: load-independent)."""
    import time

    write_policy(root, f"policy:\n  required_recipients: [{R1}]\n  never_plaintext: password\n")
    data = encrypt(SECRET, [R1])
    for n in range(200):
        (root / f"f{n}.yaml").write_bytes(data)
    started = time.process_time()
    result = check_paths([str(root)], jobs=1)
    cpu = time.process_time() - started
    assert result.files == 200 and result.violations == []
    assert cpu < 2.0, cpu

