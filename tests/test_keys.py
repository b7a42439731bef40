"""``rotate``, ``updatekeys``, ``groups add/delete``, the plugin contract and failure reports.

Files are checked with the real sops wherever it can read them; "the data key was
kept" is checked through the values' ciphertext (byte-identical), "rotated"
through the IVs (same ``iv:``, new ``data:``/``tag:``, as sops does on rotate).
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from support import (
    AGE_KEY_FILE,
    AGE_KEY_FILE_2,
    AGE_KEYS_BOTH,
    AGE_RECIPIENT,
    AGE_RECIPIENT_2,
    VECTORS,
    Runner,
    scrubbed_env,
)

from gitcrypt_sops import api, keys, providers
from gitcrypt_sops import metadata as metadata_mod
from gitcrypt_sops.errors import DataKeyError

PLUGIN_DIR = Path(__file__).parent / "plugin_example"
PLUGIN = {"PYTHONPATH": str(PLUGIN_DIR)}
ONLY_1 = {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
ONLY_2 = {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE_2)}
BOTH = {"SOPS_AGE_KEY_FILE": str(AGE_KEYS_BOTH)}
NO_AGE = {"SOPS_AGE_KEY_FILE": os.devnull}

ENC = re.compile(r"ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:(\w+)\]")

PLAIN = """\
# settings for the app
app:
  name: demo   # inline comment
  password: s3cr3t value
  port: 8080
  ratio: 1.5
  hosts:
    - alpha
    # a comment in a list
    - beta


  notes: |
    first line
    second line
public_unencrypted: visible
"""


def values(text: str) -> list[tuple[str, str, str, str]]:
    """Every ``ENC[...]`` of the document part (not the ``sops`` block): (data, iv, tag, type)."""
    body = re.split(r"^sops:|\n\s*\"sops\":|^sops_|^\[sops\]", text, maxsplit=1, flags=re.MULTILINE)[0]
    return ENC.findall(body)


def assert_rotated(before: str, after: str) -> None:
    old, new = values(before), values(after)
    assert old and len(old) == len(new)
    for (data_a, iv_a, tag_a, type_a), (data_b, iv_b, tag_b, type_b) in zip(old, new):
        assert iv_a == iv_b and type_a == type_b  # matches sops: rotate keeps the IVs
        assert tag_a != tag_b
        assert data_a != data_b or len(data_a) <= 4  # a 1-byte value may collide by chance (tag cannot)


def assert_key_kept(before: str, after: str) -> None:
    assert values(before) and values(before) == values(after)


def meta(text: str) -> dict[str, Any]:
    block: dict[str, Any] = yaml.safe_load(text)["sops"]
    return block


def group_recipients(text: str) -> list[list[str]]:
    block = meta(text)
    groups = block.get("key_groups") or [block]
    return [[entry["recipient"] for entry in group.get("age") or []] for group in groups]


def masked(text: str) -> str:
    """The text with every value's data/tag and the whole sops block masked."""
    body = re.split(r"^sops:", text, maxsplit=1, flags=re.MULTILINE)[0]
    return ENC.sub(lambda m: f"ENC[iv:{m.group(2)},type:{m.group(4)}]", body)


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(PLAIN)
    return path


def encrypt(ours: Runner, path: Path, *recipients: str, extra: tuple[str, ...] = ()) -> Path:
    out = path.with_name(path.stem + ".enc" + path.suffix)
    result = ours("encrypt", "--age", ",".join(recipients), *extra, "--output", str(out), str(path), check=True)
    assert result.returncode == 0
    return out


def decrypts(runner: Runner, path: Path, env: dict[str, str], *extra: str) -> bytes:
    result = runner("decrypt", *extra, str(path), env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(runner: Runner, path: Path, env: dict[str, str]) -> bytes:
    result = runner("decrypt", str(path), env=env)
    assert result.returncode == 128, (result.returncode, result.stderr)
    return result.stderr


# -- rotate ----------------------------------------------------------------------------


def test_rotate_keeps_ivs_and_layout(plain_file: Path, ours: Runner, sops: Runner) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    before = encrypted.read_text()
    result = ours("rotate", "-i", str(encrypted), check=True)
    assert result.stdout == b""
    after = encrypted.read_text()
    assert_rotated(before, after)
    assert masked(before) == masked(after)  # indentation, comments, blank lines: all kept
    assert meta(after)["lastmodified"] and meta(after)["mac"] != meta(before)["mac"]
    assert decrypts(ours, encrypted, ONLY_1) == PLAIN.encode()
    assert yaml.safe_load(decrypts(sops, encrypted, ONLY_1)) == yaml.safe_load(PLAIN)


def test_rotate_sops_file_to_stdout(sops: Runner, ours: Runner, tmp_path: Path) -> None:
    source = VECTORS / "yaml" / "basic.enc.yaml"
    result = ours("rotate", str(source), check=True)
    rotated = tmp_path / "rotated.yaml"
    rotated.write_bytes(result.stdout)
    before = source.read_text()
    # sops writes a comment inside a list as "- ENC[...]", we as "#ENC[...]"; the IVs stay
    assert [v[1] for v in values(before)] == [v[1] for v in values(result.stdout.decode())]
    assert_rotated(before, result.stdout.decode())
    assert decrypts(sops, rotated, ONLY_1) == decrypts(sops, source, ONLY_1)


@pytest.mark.parametrize("vector", ["json/basic.enc.json", "dotenv/basic.enc.env", "ini/basic.enc.ini",
                                    "binary/basic.enc.bin", "yaml/multidoc.enc.yaml",
                                    "rules/mac_only_encrypted.enc.yaml", "rules/encrypted_comment_regex.enc.yaml"])
def test_rotate_every_format(vector: str, sops: Runner, ours: Runner, tmp_path: Path) -> None:
    source = VECTORS / vector
    target = tmp_path / source.name
    shutil.copy(source, target)
    ours("rotate", "--in-place", str(target), check=True)
    assert decrypts(sops, target, ONLY_1) == decrypts(sops, source, ONLY_1)
    assert target.read_bytes() != source.read_bytes()
    assert_rotated(source.read_text(), target.read_text())


def test_rotate_keeps_toml_layout(tmp_path: Path, ours: Runner) -> None:
    pytest.importorskip("tomlkit")
    plain = tmp_path / "app.toml"
    plain.write_text('# top\ntitle = "x"   # trailing\n\n[db]\npassword = "secret"\nport = 5432\n')
    encrypted = tmp_path / "app.enc.toml"
    ours("encrypt", "--age", AGE_RECIPIENT, "--output", str(encrypted), str(plain), check=True)
    before = encrypted.read_text()
    ours("rotate", "-i", str(encrypted), check=True)
    after = encrypted.read_text()
    body = re.compile(r"^\[sops\]", re.MULTILINE)
    assert_rotated(body.split(before)[0], body.split(after)[0])
    assert masked(body.split(before)[0]) == masked(body.split(after)[0])
    assert decrypts(ours, encrypted, ONLY_1) == plain.read_bytes()


def test_rotate_add_and_remove(plain_file: Path, ours: Runner, sops: Runner, tmp_path: Path) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    out = tmp_path / "out.yaml"
    ours("rotate", "--add-age", AGE_RECIPIENT_2, "--rm-age", AGE_RECIPIENT, "--output", str(out), str(encrypted),
         check=True)
    assert group_recipients(out.read_text()) == [[AGE_RECIPIENT_2]]
    fails(ours, out, ONLY_1)
    assert decrypts(ours, out, ONLY_2) == PLAIN.encode()
    assert yaml.safe_load(decrypts(sops, out, ONLY_2)) == yaml.safe_load(PLAIN)


def test_rotate_removing_an_absent_recipient_warns(plain_file: Path, ours: Runner) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    result = ours("rotate", "--rm-age", AGE_RECIPIENT_2, "-i", str(encrypted))
    assert result.returncode == 0
    assert f"age:{AGE_RECIPIENT_2} is not a recipient" in result.stderr.decode()


def test_rotate_refuses_to_remove_every_recipient(plain_file: Path, ours: Runner) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    before = encrypted.read_bytes()
    result = ours("rotate", "--rm-age", AGE_RECIPIENT, "-i", str(encrypted))
    assert result.returncode == 1
    assert b"without any recipient" in result.stderr and result.stderr.count(b"\n") == 1
    assert encrypted.read_bytes() == before


def test_rotate_shamir_vector(sops: Runner, ours: Runner, tmp_path: Path) -> None:
    source = VECTORS / "shamir" / "shamir.enc.yaml"
    target = tmp_path / "shamir.enc.yaml"
    result = ours("rotate", "--add-age", AGE_RECIPIENT_2, "--output", str(target), str(source), env=BOTH, check=True)
    assert result.returncode == 0
    text = target.read_text()
    assert meta(text)["shamir_threshold"] == 2
    assert group_recipients(text) == [[AGE_RECIPIENT, AGE_RECIPIENT_2], [AGE_RECIPIENT_2]]  # added: first group
    assert_rotated(source.read_text(), text)
    # key 2 alone now holds both shares; key 1 alone still only one
    assert decrypts(sops, target, ONLY_2) == decrypts(sops, source, BOTH)
    assert sops("decrypt", str(target), env=ONLY_1).returncode == 128


def test_rotate_key_spec_errors(plain_file: Path, ours: Runner) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    bad = ours("rotate", "--add-key", "nonsense", str(encrypted))
    assert bad.returncode == 1 and b"TYPE:SPEC" in bad.stderr
    unknown = ours("rotate", "--add-key", "nosuchtype:x", str(encrypted))
    assert unknown.returncode == 1 and b"no provider installed for 'nosuchtype' keys" in unknown.stderr


# -- updatekeys ------------------------------------------------------------------------


def write_rule(directory: Path, *recipients: str) -> None:
    (directory / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ''\n    age: {','.join(recipients)}\n")


@pytest.fixture
def ruled(tmp_path: Path, ours: Runner) -> Path:
    """app.enc.yaml encrypted for recipient 1 through a creation rule naming it."""
    write_rule(tmp_path, AGE_RECIPIENT)
    plain = tmp_path / "app.yaml"
    plain.write_text(PLAIN)
    out = tmp_path / "app.enc.yaml"
    ours("encrypt", "--output", str(out), str(plain), check=True)
    return out


def test_updatekeys_adds_a_recipient_keeping_the_data_key(ruled: Path, ours: Runner, sops: Runner) -> None:
    before = ruled.read_text()
    write_rule(ruled.parent, AGE_RECIPIENT, AGE_RECIPIENT_2)
    result = ours("updatekeys", "--yes", str(ruled), check=True)
    out = result.stdout.decode()
    assert f"    age:{AGE_RECIPIENT}\n" in out and f"  + age:{AGE_RECIPIENT_2}\n" in out
    assert "new data key" not in out
    after = ruled.read_text()
    assert_key_kept(before, after)
    assert masked(before) == masked(after)
    assert meta(after)["age"][0] == meta(before)["age"][0]  # the existing entry verbatim
    assert decrypts(ours, ruled, ONLY_2) == PLAIN.encode()
    assert yaml.safe_load(decrypts(sops, ruled, ONLY_2)) == yaml.safe_load(PLAIN)


def test_updatekeys_removing_rotates(ruled: Path, ours: Runner, sops: Runner) -> None:
    write_rule(ruled.parent, AGE_RECIPIENT, AGE_RECIPIENT_2)
    ours("updatekeys", "-y", str(ruled), check=True)
    before = ruled.read_text()
    write_rule(ruled.parent, AGE_RECIPIENT_2)
    result = ours("updatekeys", "-y", str(ruled), check=True)
    assert f"  - age:{AGE_RECIPIENT}\n" in result.stdout.decode()
    assert "new data key" in result.stdout.decode()
    assert b"data key rotated" in result.stderr
    after = ruled.read_text()
    assert_rotated(before, after)
    assert group_recipients(after) == [[AGE_RECIPIENT_2]]
    fails(ours, ruled, ONLY_1)
    assert yaml.safe_load(decrypts(sops, ruled, ONLY_2)) == yaml.safe_load(PLAIN)


def test_updatekeys_no_rotate_keeps_the_key_and_warns(ruled: Path, ours: Runner) -> None:
    write_rule(ruled.parent, AGE_RECIPIENT, AGE_RECIPIENT_2)
    ours("updatekeys", "-y", str(ruled), check=True)
    before = ruled.read_text()
    write_rule(ruled.parent, AGE_RECIPIENT_2)
    result = ours("updatekeys", "-y", "--no-rotate", str(ruled), check=True)
    assert b"warning:" in result.stderr and b"keeping the data key" in result.stderr
    assert_key_kept(before, ruled.read_text())
    assert group_recipients(ruled.read_text()) == [[AGE_RECIPIENT_2]]


def test_updatekeys_without_a_terminal_needs_yes(ruled: Path, ours: Runner) -> None:
    write_rule(ruled.parent, AGE_RECIPIENT, AGE_RECIPIENT_2)
    before = ruled.read_bytes()
    result = ours("updatekeys", str(ruled), input=b"y\n")
    assert result.returncode == 1
    assert result.stderr.count(b"\n") == 1 and b"pass --yes" in result.stderr
    assert f"+ age:{AGE_RECIPIENT_2}".encode() in result.stdout  # the change was shown
    assert ruled.read_bytes() == before


@pytest.mark.parametrize(("answer", "applied"), [(b"y\n", True), (b"n\n", False)])
def test_updatekeys_asks_on_a_terminal(answer: bytes, applied: bool, ruled: Path, home: Path) -> None:
    write_rule(ruled.parent, AGE_RECIPIENT, AGE_RECIPIENT_2)
    before = ruled.read_bytes()
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "gitcrypt_sops", "updatekeys", str(ruled)], stdin=follower,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=scrubbed_env(home, ONLY_1),
        )
        os.write(leader, answer)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert b"Apply these changes" in stdout
    assert process.returncode == 0, stderr
    assert (ruled.read_bytes() != before) is applied
    assert (b"left unchanged" in stderr) is not applied


def test_updatekeys_up_to_date(ruled: Path, ours: Runner) -> None:
    before = ruled.read_bytes()
    result = ours("updatekeys", str(ruled), check=True)
    assert b"already up to date" in result.stderr and result.stdout == b""
    assert ruled.read_bytes() == before


def test_updatekeys_several_files_and_missing_config(ruled: Path, ours: Runner, tmp_path: Path) -> None:
    second = tmp_path / "second.enc.yaml"
    shutil.copy(ruled, second)
    write_rule(tmp_path, AGE_RECIPIENT, AGE_RECIPIENT_2)
    ours("updatekeys", "-y", str(ruled), str(second), check=True)
    assert group_recipients(second.read_text()) == [[AGE_RECIPIENT, AGE_RECIPIENT_2]]
    (tmp_path / ".sops.yaml").unlink()
    result = ours("updatekeys", "-y", str(second), cwd=tmp_path)
    assert result.returncode == 1 and b"no .sops-policy.yaml or .sops.yaml found" in result.stderr


def shamir_copy(tmp_path: Path, config: str) -> Path:
    target = tmp_path / "shamir.enc.yaml"
    shutil.copy(VECTORS / "shamir" / "shamir.enc.yaml", target)
    (tmp_path / ".sops.yaml").write_text(config)
    return target


SHAMIR_RULE = """\
creation_rules:
  - path_regex: shamir
    shamir_threshold: {threshold}
    key_groups:
      - age:
          - {first}
      - age:
          - {second}
"""


def test_updatekeys_shamir_groups_and_threshold(tmp_path: Path, ours: Runner, sops: Runner) -> None:
    three = SHAMIR_RULE.format(threshold="{threshold}", first=AGE_RECIPIENT, second=AGE_RECIPIENT_2) + (
        f"      - age:\n          - {AGE_RECIPIENT}\n")
    target = shamir_copy(tmp_path, three.format(threshold=2))
    before = target.read_text()
    plain = decrypts(sops, VECTORS / "shamir" / "shamir.enc.yaml", BOTH)
    result = ours("updatekeys", "-y", str(target), env=BOTH, check=True)
    assert f"key group 3 (new):\n  + age:{AGE_RECIPIENT}\n" in result.stdout.decode()
    grouped = target.read_text()
    assert meta(grouped)["shamir_threshold"] == 2 and len(meta(grouped)["key_groups"]) == 3
    assert_key_kept(before, grouped)  # a new group splits the same data key again
    assert decrypts(sops, target, ONLY_1) == plain  # groups 1 and 3

    (tmp_path / ".sops.yaml").write_text(three.format(threshold=3))
    result = ours("updatekeys", "-y", str(target), env=BOTH, check=True)
    assert "shamir threshold: 2 -> 3" in result.stdout.decode()
    assert meta(target.read_text())["shamir_threshold"] == 3
    assert_key_kept(before, target.read_text())
    assert sops("decrypt", str(target), env=ONLY_1).returncode == 128
    assert decrypts(sops, target, BOTH) == plain


def test_updatekeys_refuses_threshold_one(tmp_path: Path, ours: Runner) -> None:
    target = shamir_copy(tmp_path, SHAMIR_RULE.format(threshold=1, first=AGE_RECIPIENT, second=AGE_RECIPIENT_2))
    result = ours("updatekeys", "-y", str(target), env=BOTH)
    assert result.returncode == 1 and b"must be between 2 and the number of key groups" in result.stderr


def test_updatekeys_shamir_add_keeps_other_entries(tmp_path: Path, ours: Runner, sops: Runner) -> None:
    target = shamir_copy(tmp_path, SHAMIR_RULE.format(
        threshold=2, first=f"{AGE_RECIPIENT}\n          - {AGE_RECIPIENT_2}", second=AGE_RECIPIENT_2))
    before = target.read_text()
    result = ours("updatekeys", "-y", str(target), env=BOTH, check=True)
    assert "key group 1:" in result.stdout.decode() and f"+ age:{AGE_RECIPIENT_2}" in result.stdout.decode()
    after = target.read_text()
    assert_key_kept(before, after)
    old_groups, new_groups = meta(before)["key_groups"], meta(after)["key_groups"]
    assert new_groups[1] == old_groups[1]  # untouched group: verbatim
    assert new_groups[0]["age"][0] == old_groups[0]["age"][0]
    # key 2 now unwraps group 1's share too, so it alone decrypts (sops agrees)
    assert decrypts(sops, target, ONLY_2) == decrypts(sops, VECTORS / "shamir" / "shamir.enc.yaml", BOTH)


# -- groups ----------------------------------------------------------------------------


def test_groups_add_and_delete(plain_file: Path, ours: Runner, sops: Runner, tmp_path: Path) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    before = encrypted.read_text()
    ours("groups", "add", "--file", str(encrypted), "--age", AGE_RECIPIENT_2,
         "--shamir-secret-sharing-threshold", "2", "-i", check=True)
    grouped = encrypted.read_text()
    assert meta(grouped)["shamir_threshold"] == 2
    assert group_recipients(grouped) == [[AGE_RECIPIENT], [AGE_RECIPIENT_2]]
    assert_key_kept(before, grouped)
    assert masked(before) == masked(grouped)
    assert sops("decrypt", str(encrypted), env=ONLY_1).returncode == 128
    assert sops("decrypt", str(encrypted), env=ONLY_2).returncode == 128
    assert yaml.safe_load(decrypts(sops, encrypted, BOTH)) == yaml.safe_load(PLAIN)
    assert decrypts(ours, encrypted, BOTH) == PLAIN.encode()

    out = tmp_path / "deleted.yaml"
    result = ours("groups", "delete", "-f", str(encrypted), "0", "--output", str(out), env=BOTH, check=True)
    assert result.returncode == 0
    deleted = out.read_text()
    assert group_recipients(deleted) == [[AGE_RECIPIENT_2]] and "shamir_threshold" not in meta(deleted)
    assert_rotated(grouped, deleted)  # a deleted group's members lose the data key
    assert yaml.safe_load(decrypts(sops, out, ONLY_2)) == yaml.safe_load(PLAIN)
    fails(ours, out, ONLY_1)

    kept = tmp_path / "kept.yaml"
    ours("groups", "delete", "-f", str(encrypted), "1", "--no-rotate", "--output", str(kept), env=BOTH, check=True)
    assert_key_kept(grouped, kept.read_text())
    # the remaining entry wrapped a share before: it must now wrap the whole key
    assert meta(kept.read_text())["age"][0]["enc"] != meta(grouped)["key_groups"][0]["age"][0]["enc"]
    assert yaml.safe_load(decrypts(sops, kept, ONLY_1)) == yaml.safe_load(PLAIN)


def test_groups_on_the_shamir_vector(tmp_path: Path, ours: Runner, sops: Runner) -> None:
    source = VECTORS / "shamir" / "shamir.enc.yaml"
    target = tmp_path / "shamir.enc.yaml"
    shutil.copy(source, target)
    ours("groups", "add", "-f", str(target), "--age", AGE_RECIPIENT, "-i", env=BOTH, check=True)
    text = target.read_text()
    assert meta(text)["shamir_threshold"] == 2 and len(meta(text)["key_groups"]) == 3  # 2 of 3 now
    assert_key_kept(source.read_text(), text)
    plain = decrypts(sops, source, BOTH)
    assert decrypts(sops, target, ONLY_1) == plain  # groups 1 and 3 are both key 1's
    result = ours("groups", "delete", "-f", str(target), "7", env=BOTH)
    assert result.returncode == 1 and b"no key group 7" in result.stderr


def test_groups_delete_threshold_too_high(tmp_path: Path, ours: Runner) -> None:
    target = tmp_path / "shamir.enc.yaml"
    shutil.copy(VECTORS / "shamir" / "shamir.enc.yaml", target)
    ours("groups", "add", "-f", str(target), "--age", AGE_RECIPIENT, "--shamir-secret-sharing-threshold", "3",
         "-i", env=BOTH, check=True)
    result = ours("groups", "delete", "-f", str(target), "0", env=BOTH)
    assert result.returncode == 1 and b"fewer than the shamir threshold 3" in result.stderr


def test_groups_needs_a_subcommand(ours: Runner) -> None:
    result = ours("groups")
    assert result.returncode == 1 and b"add or delete" in result.stderr


# -- failure reports -----------------------------------------------------------------------


def test_shamir_failure_lists_groups_and_shares(ours: Runner) -> None:
    result = ours("decrypt", str(VECTORS / "shamir" / "shamir.enc.yaml"), env=ONLY_1)
    assert result.returncode == 128
    message = result.stderr.decode()
    assert message.count("\n") == 1
    assert f"age:{AGE_RECIPIENT_2}: no age identity matches" in message
    assert "recovered 1 of the 2 key-group shares needed" in message


def test_rotate_reports_no_recipient_like_decrypt(ours: Runner) -> None:
    result = ours("rotate", str(VECTORS / "yaml" / "basic.enc.yaml"), env=ONLY_2)
    assert result.returncode == 128 and result.stdout == b""
    assert f"age:{AGE_RECIPIENT}: no age identity matches".encode() in result.stderr


def test_missing_provider_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = _xor_provider()
    text = _xor_only_file(provider)
    monkeypatch.setitem(providers.INSTALL_HINTS, "xor_example", "pip install 'gitcrypt-sops-xor-example'")
    monkeypatch.delitem(providers._loaded, "xor_example", raising=False)
    with pytest.raises(DataKeyError) as caught:
        api.decrypt_bytes(text.encode(), "yaml")
    assert caught.value.exit_code == 128
    assert ("xor_example:alice: no provider installed for 'xor_example' keys "
            "(pip install 'gitcrypt-sops-xor-example')") in caught.value.message


# -- the plugin contract ---------------------------------------------------------------------


def _xor_provider() -> Any:
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        import gitcrypt_sops_xor_example
    finally:
        sys.path.remove(str(PLUGIN_DIR))
    return gitcrypt_sops_xor_example.XorExampleProvider()


def _xor_only_file(provider: Any) -> str:
    """An encrypted YAML file whose only recipient is xor_example:alice (made in-process)."""
    recipient = provider.parse_recipients("alice")[0]
    parsed = api.parse(b"a: secret\n", "yaml", encrypted=False)
    key = api.DataKey.generate()
    wrapped = ([[("xor_example", provider.wrap(key.reveal(), recipient))]], 0)
    return api.encrypt_parsed(parsed, api.EncryptOptions([]), data_key=key, wrapped=wrapped).decode()


def test_plugin_found_through_entry_points(plain_file: Path, ours: Runner, tmp_path: Path) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    only_xor = tmp_path / "xor.yaml"
    ours("rotate", "--add-key", "xor_example:alice,bob", "--rm-age", AGE_RECIPIENT, "--output", str(only_xor),
         str(encrypted), env=PLUGIN, check=True)
    block = meta(only_xor.read_text())
    assert "age" not in block
    assert [list(entry) for entry in block["xor_example"]] == [["recipient", "enc", "scheme"]] * 2
    assert [entry["recipient"] for entry in block["xor_example"]] == ["alice", "bob"]
    assert decrypts(ours, only_xor, {**PLUGIN, **NO_AGE, "XOR_EXAMPLE_KEYS": "bob"}) == PLAIN.encode()
    # without its credentials: exit 128, one line naming both recipients
    denied = fails(ours, only_xor, {**PLUGIN, **NO_AGE})
    assert denied.count(b"\n") == 1 and b"xor_example:alice: no xor_example key" in denied
    assert b"xor_example:bob" in denied
    # without the plugin: the recipients are still named, as not installed
    missing = fails(ours, only_xor, NO_AGE)
    assert b"xor_example:alice: no provider installed for 'xor_example' keys" in missing
    # metadata round trip: our reader and writer keep the entries as they are
    parsed = api.parse(only_xor.read_bytes(), "yaml", encrypted=True)
    again = metadata_mod.to_tree(metadata_mod.from_tree(parsed.metadata_tree), empty_list=[])
    assert again["xor_example"] == block["xor_example"]


def test_plugin_recipient_in_a_key_group(plain_file: Path, ours: Runner, sops: Runner) -> None:
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    ours("groups", "add", "-f", str(encrypted), "--key", "xor_example:carol", "-i", env=PLUGIN, check=True)
    assert meta(encrypted.read_text())["key_groups"][1]["xor_example"][0]["recipient"] == "carol"
    fails(ours, encrypted, {**PLUGIN, "XOR_EXAMPLE_KEYS": "alice"})
    fails(ours, encrypted, {**PLUGIN, **NO_AGE, "XOR_EXAMPLE_KEYS": "carol"})
    assert decrypts(ours, encrypted, {**PLUGIN, "XOR_EXAMPLE_KEYS": "carol"}) == PLAIN.encode()


def test_unknown_key_type_kept_verbatim(plain_file: Path, ours: Runner, sops: Runner, tmp_path: Path) -> None:
    write_rule(tmp_path, AGE_RECIPIENT)
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    ours("rotate", "--add-key", "xor_example:alice", "-i", str(encrypted), env=PLUGIN, check=True)
    before = encrypted.read_text()
    # no plugin from here on: the age recipient decrypts, sops too, and the entry survives a key change
    assert decrypts(ours, encrypted, ONLY_1) == PLAIN.encode()
    assert yaml.safe_load(decrypts(sops, encrypted, ONLY_1)) == yaml.safe_load(PLAIN)
    write_rule(tmp_path, AGE_RECIPIENT, AGE_RECIPIENT_2)
    result = ours("updatekeys", "-y", str(encrypted), check=True)
    assert "xor_example:alice (kept: creation rules cannot list this key type)" in result.stdout.decode()
    after = encrypted.read_text()
    assert meta(after)["xor_example"] == meta(before)["xor_example"]
    assert before[before.index("    xor_example:"):before.index("    lastmodified:")] in after  # the text too
    assert_key_kept(before, after)
    assert decrypts(ours, encrypted, ONLY_2) == PLAIN.encode()
    # a new data key cannot be wrapped for it here: a clear refusal, the file untouched
    refused = ours("rotate", "-i", str(encrypted))
    assert refused.returncode == 1
    assert b"cannot wrap the data key for xor_example:alice: no provider installed" in refused.stderr
    assert encrypted.read_text() == after


@pytest.mark.parametrize("command", ["rotate", "updatekeys", "groups"])
def test_decryption_order_is_honoured(command: str, plain_file: Path, ours: Runner, tmp_path: Path) -> None:
    write_rule(tmp_path, AGE_RECIPIENT)
    encrypted = encrypt(ours, plain_file, AGE_RECIPIENT)
    ours("rotate", "--add-key", "xor_example:alice", "-i", str(encrypted), env=PLUGIN, check=True)
    log = tmp_path / "unwraps.log"
    env = {**PLUGIN, **BOTH, "XOR_EXAMPLE_KEYS": "alice", "XOR_EXAMPLE_LOG": str(log)}
    rules = iter([(AGE_RECIPIENT, AGE_RECIPIENT_2), (AGE_RECIPIENT,), (AGE_RECIPIENT, AGE_RECIPIENT_2)])

    def run(*extra: str, **more: str) -> None:
        if command == "updatekeys":
            write_rule(tmp_path, *next(rules))  # every run has a change to make
        args = {
            "rotate": ("rotate", "-i", str(encrypted)),
            "updatekeys": ("updatekeys", "-y", str(encrypted)),
            "groups": ("groups", "add", "-i", "-f", str(encrypted), "--age", AGE_RECIPIENT_2),
        }[command]
        ours(*args, *extra, env={**env, **more}, check=True)

    run()
    assert not log.exists()  # age first by default: the plugin was never asked
    run("--decryption-order", "xor_example,age")
    assert log.read_text() == "unwrap alice\n"
    log.unlink()
    run(SOPS_DECRYPTION_ORDER="xor_example")
    assert log.read_text() == "unwrap alice\n"


# -- the operations as a library ----------------------------------------------------------------


def test_plans_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from gitcrypt_sops.providers import age as age_provider

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEYS_BOTH))
    age_provider.clear_cache()
    parsed, block = keys.read_metadata((VECTORS / "shamir" / "shamir.enc.yaml").read_bytes(), "yaml")
    age = providers.get("age")
    assert age is not None
    first, second = (age.parse_recipients(r)[0] for r in (AGE_RECIPIENT, AGE_RECIPIENT_2))
    same = keys.plan_update(block, [[first], [second]], 2)
    assert not same.changed and not same.rotate
    swap = keys.plan_update(block, [[second], [first]], 2)
    assert swap.rotate and swap.removes
    assert swap.describe()[:3] == ["key group 1:", f"  + age:{AGE_RECIPIENT_2}", f"  - age:{AGE_RECIPIENT}"]
    merged = keys.plan_update(block, [[first, second]], 0)
    assert merged.threshold == 0 and merged.diffs[1].note == "deleted" and merged.rotate
    assert "shamir threshold: 2 -> none (one key group)" in merged.describe()
    added = keys.plan_add_group(block, [first])
    assert added.threshold == 2 and added.diffs[-1].note == "new" and not added.rotate
    decrypted = keys.decrypt_for_rekey(parsed)
    data = keys.apply(decrypted, merged)
    result = api.decrypt_data(data, "yaml")
    assert result.data() == decrypted.data() and result.data_key != decrypted.data_key
