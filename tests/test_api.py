"""The public Python API (``gitcrypt_sops.decrypt_file`` & co.), in process, against the real sops.

Files written by the API must decrypt with sops and vice versa; failures raise the
classes of :mod:`gitcrypt_sops.errors` with the CLI's exit codes and no secret in
their message.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from support import AGE_KEY_FILE_2, AGE_KEYS_BOTH, AGE_RECIPIENT, AGE_RECIPIENT_2, REPO, Runner, scrubbed_env

import gitcrypt_sops as gs
import gitcrypt_sops.errors as errors  # noqa: PLR0402 (the from-form recurses: see test_errors_module_reachable_from_package)
from gitcrypt_sops.metadata import Metadata
from gitcrypt_sops.providers import age
from gitcrypt_sops.providers.base import Recipient
from gitcrypt_sops.walk import EncryptionRule

SECRET = "S3CR3T-VALUE-1234"
PLAIN_YAML = f"""\
# a comment
name: app
db:
    password: {SECRET}
    port: 5432
hosts:
    - a.example
    - b.example
ratio: 0.5
debug: false
"""
PLAIN_DATA = yaml.safe_load(PLAIN_YAML)


def use_identity(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    age.clear_cache()


@pytest.fixture
def files(tmp_path: Path, sops: Runner) -> Path:
    """plain.yaml/plain.json and their encryption by the real sops (sops.enc.*)."""
    (tmp_path / "plain.yaml").write_text(PLAIN_YAML)
    (tmp_path / "plain.json").write_text(json.dumps(PLAIN_DATA))
    for fmt in ("yaml", "json"):
        out = sops("encrypt", "--age", AGE_RECIPIENT, f"plain.{fmt}", cwd=tmp_path, check=True).stdout
        (tmp_path / f"sops.enc.{fmt}").write_bytes(out)
    return tmp_path


def sops_decrypt(sops: Runner, path: Path, fmt: str, key_file: Path | None = None) -> Any:
    env = {"SOPS_AGE_KEY_FILE": str(key_file)} if key_file else None
    out = sops("decrypt", "--input-type", fmt, "--output-type", fmt, str(path), env=env, check=True).stdout
    return yaml.safe_load(out) if fmt == "yaml" else json.loads(out)


def test_public_names() -> None:
    for name in gs.__all__:
        assert getattr(gs, name) is not None
    assert isinstance(gs.__version__, str)


# -- decrypting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_decrypt_file(fmt: str, files: Path) -> None:
    assert gs.decrypt_file(files / f"sops.enc.{fmt}") == PLAIN_DATA
    assert gs.decrypt_file(str(files / f"sops.enc.{fmt}")) == PLAIN_DATA


def test_decrypt_file_with_explicit_format(files: Path) -> None:
    odd = files / "secrets.txt"
    odd.write_bytes((files / "sops.enc.yaml").read_bytes())
    assert gs.decrypt_file(odd, fmt="yaml") == PLAIN_DATA


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_decrypt_bytes(fmt: str, files: Path) -> None:
    data = (files / f"sops.enc.{fmt}").read_bytes()
    assert gs.decrypt(data, fmt) == PLAIN_DATA
    assert gs.decrypt(data, fmt, decryption_order=["age"]) == PLAIN_DATA


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_extract(fmt: str, files: Path) -> None:
    path = files / f"sops.enc.{fmt}"
    data = path.read_bytes()
    assert gs.extract(data, fmt, '["db"]["password"]') == SECRET
    assert gs.extract(data, fmt, ["db", "port"]) == 5432
    assert gs.extract(data, fmt, '["hosts"][1]') == "b.example"
    assert gs.extract(data, fmt, ["hosts", 0]) == "a.example"
    assert gs.extract_file(path, '["db"]') == PLAIN_DATA["db"]
    assert gs.extract_file(str(path), ["hosts"]) == PLAIN_DATA["hosts"]


def test_decrypt_multidoc_yaml(tmp_path: Path, sops: Runner) -> None:
    (tmp_path / "m.yaml").write_text(f"a: {SECRET}\n---\nb: 2\n")
    (tmp_path / "m.enc.yaml").write_bytes(sops("encrypt", "--age", AGE_RECIPIENT, "m.yaml", cwd=tmp_path,
                                               check=True).stdout)
    assert gs.decrypt_file(tmp_path / "m.enc.yaml") == [{"a": SECRET}, {"b": 2}]


def test_load_metadata(files: Path) -> None:
    meta = gs.load_metadata(files / "sops.enc.yaml")
    assert isinstance(meta, Metadata)
    assert [entry[1]["recipient"] for entry in meta.recipients()] == [AGE_RECIPIENT]
    assert meta.recipients()[0][0] == "age"
    assert meta.version == "3.11.0"
    assert meta.mac.startswith("ENC[AES256_GCM,")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta.lastmodified)
    assert meta.rule == EncryptionRule("unencrypted_suffix", "_unencrypted")
    json_meta = gs.load_metadata(files / "sops.enc.json")
    assert [entry[1]["recipient"] for entry in json_meta.recipients()] == [AGE_RECIPIENT]


def test_load_metadata_needs_no_key(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_identity(monkeypatch, files / "no-such-key.txt")
    assert gs.load_metadata(files / "sops.enc.yaml").version == "3.11.0"


# -- encrypting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_encrypt_data(fmt: str, tmp_path: Path, sops: Runner) -> None:
    out = gs.encrypt(PLAIN_DATA, fmt, recipients=[AGE_RECIPIENT])
    assert isinstance(out, bytes) and SECRET.encode() not in out
    (tmp_path / f"api.enc.{fmt}").write_bytes(out)
    assert sops_decrypt(sops, tmp_path / f"api.enc.{fmt}", fmt) == PLAIN_DATA
    assert gs.decrypt(out, fmt) == PLAIN_DATA


def test_encrypt_bytes_keeps_comments(tmp_path: Path, sops: Runner) -> None:
    out = gs.encrypt(PLAIN_YAML.encode(), "yaml", recipients=[AGE_RECIPIENT])
    assert SECRET.encode() not in out and b"a comment" not in out  # comments are encrypted too
    (tmp_path / "api.enc.yaml").write_bytes(out)
    decrypted = sops("decrypt", str(tmp_path / "api.enc.yaml"), check=True).stdout
    assert b"# a comment" in decrypted
    assert yaml.safe_load(decrypted) == PLAIN_DATA


def test_encrypt_recipient_objects_and_rule(tmp_path: Path, sops: Runner) -> None:
    out = gs.encrypt(PLAIN_DATA, "yaml", recipients=[Recipient("age", AGE_RECIPIENT)],
                     rule=EncryptionRule("encrypted_regex", "^password$"))
    assert b"name: app\n" in out and b"password: ENC[" in out
    (tmp_path / "api.enc.yaml").write_bytes(out)
    assert sops_decrypt(sops, tmp_path / "api.enc.yaml", "yaml") == PLAIN_DATA


def test_encrypt_multidoc_yaml(tmp_path: Path, sops: Runner) -> None:
    documents = [{"a": SECRET}, {"b": 2}]
    out = gs.encrypt(documents, "yaml", recipients=[AGE_RECIPIENT])
    assert gs.decrypt(out, "yaml") == documents
    (tmp_path / "m.enc.yaml").write_bytes(out)
    assert list(yaml.safe_load_all(sops("decrypt", str(tmp_path / "m.enc.yaml"), check=True).stdout)) == documents


def test_encrypt_file_output(files: Path, sops: Runner) -> None:
    before = (files / "plain.yaml").read_bytes()
    out = gs.encrypt_file(files / "plain.yaml", recipients=[AGE_RECIPIENT], output=files / "api.enc.yaml")
    assert (files / "api.enc.yaml").read_bytes() == out
    assert (files / "plain.yaml").read_bytes() == before
    assert sops_decrypt(sops, files / "api.enc.yaml", "yaml") == PLAIN_DATA


def test_encrypt_file_without_output_only_returns(files: Path) -> None:
    names = sorted(p.name for p in files.iterdir())
    out = gs.encrypt_file(files / "plain.json", recipients=[AGE_RECIPIENT])
    assert gs.decrypt(out, "json") == PLAIN_DATA
    assert sorted(p.name for p in files.iterdir()) == names


def test_encrypt_file_in_place(files: Path, sops: Runner) -> None:
    path = files / "plain.yaml"
    path.chmod(0o640)
    out = gs.encrypt_file(str(path), recipients=[AGE_RECIPIENT], in_place=True)
    assert path.read_bytes() == out
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in files.iterdir() if p.name.startswith(".plain.yaml")]
    assert sops_decrypt(sops, path, "yaml") == PLAIN_DATA


def test_encrypt_file_uses_creation_rules(tmp_path: Path, sops: Runner) -> None:
    project = tmp_path / "project"
    (project / "secrets").mkdir(parents=True)
    (project / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: secrets/.*\n    age: {AGE_RECIPIENT}\n")
    target = project / "secrets" / "app.yaml"
    target.write_text(PLAIN_YAML)
    out = gs.encrypt_file(target)
    assert re.findall(r"age1[0-9a-z]{58}", out.decode()) == [AGE_RECIPIENT]
    assert gs.decrypt(out, "yaml") == PLAIN_DATA


# -- key groups ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_key_groups_with_shamir(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sops: Runner) -> None:
    out = gs.encrypt(PLAIN_DATA, fmt, key_groups=[[AGE_RECIPIENT], [AGE_RECIPIENT_2]], shamir_threshold=2)
    path = tmp_path / f"groups.enc.{fmt}"
    path.write_bytes(out)
    meta = gs.load_metadata(path)
    assert meta.shamir_threshold == 2
    assert [[entry[1]["recipient"] for entry in group] for group in meta.key_groups] == [[AGE_RECIPIENT],
                                                                                          [AGE_RECIPIENT_2]]
    use_identity(monkeypatch, AGE_KEYS_BOTH)
    assert gs.decrypt_file(path) == PLAIN_DATA
    assert sops_decrypt(sops, path, fmt, AGE_KEYS_BOTH) == PLAIN_DATA
    for one_key in (AGE_KEY_FILE_2, AGE_KEYS_BOTH.parent / "test-age-key.txt"):
        use_identity(monkeypatch, one_key)
        with pytest.raises(errors.DataKeyError) as caught:
            gs.decrypt_file(path)
        assert caught.value.exit_code == 128
        env = {"SOPS_AGE_KEY_FILE": str(one_key)}
        assert sops("decrypt", str(path), env=env).returncode == 128


def test_key_groups_threshold_one_is_refused() -> None:
    # sops refuses a threshold below 2 ("threshold must be at least 2"): such a file is unreadable to it
    with pytest.raises(errors.SopsError, match="between 2 and"):
        gs.encrypt(PLAIN_DATA, "yaml", key_groups=[[AGE_RECIPIENT], [AGE_RECIPIENT_2]], shamir_threshold=1)


def test_api_reads_sops_shamir_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    vector = REPO.parent / "shared" / "vectors" / "shamir" / "shamir.enc.yaml"
    use_identity(monkeypatch, AGE_KEYS_BOTH)
    assert gs.decrypt_file(vector) == yaml.safe_load((vector.parent / "shamir.yaml").read_bytes())


# -- errors -----------------------------------------------------------------------------------------


def _tamper(text: str) -> str:
    return re.sub(r"(password: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("B" if m.group(2) != "B" else "C"),
                  text, count=1)


ERROR_CASES: dict[str, tuple[Callable[[Path], object], type[errors.SopsError], int]] = {
    "plaintext-to-decrypt": (lambda d: gs.decrypt_file(d / "plain.yaml"), errors.MetadataNotFound, 1),
    "invalid-yaml": (lambda d: gs.decrypt(f"a: [{SECRET}\n".encode(), "yaml"), errors.InputError, 2),
    "invalid-json": (lambda d: gs.decrypt(f'{{"a": "{SECRET}"'.encode(), "json"), errors.InputError, 2),
    "missing-mac": (lambda d: gs.decrypt(re.sub(r"(?m)^    mac: .*\n", "", (d / "sops.enc.yaml").read_text()).encode(),
                                         "yaml"), errors.MacMismatch, 51),
    "tampered-value": (lambda d: gs.decrypt(_tamper((d / "sops.enc.yaml").read_text()).encode(), "yaml"),
                       errors.TreeDecryptError, 25),
    "extract-absent": (lambda d: gs.extract_file(d / "sops.enc.yaml", '["nope"]'), errors.PathNotFound, 1),
    "extract-bad-path": (lambda d: gs.extract_file(d / "sops.enc.yaml", "nope"), errors.InvalidTreePath, 91),
    "no-recipients": (lambda d: gs.encrypt({"a": SECRET}, "yaml"), errors.NoEncryptionKey, 1),
    "already-encrypted": (lambda d: gs.encrypt({"a": SECRET, "sops": {}}, "yaml", recipients=[AGE_RECIPIENT]),
                          errors.AlreadyEncrypted, 203),
    "already-encrypted-file": (lambda d: gs.encrypt_file(d / "sops.enc.yaml", recipients=[AGE_RECIPIENT]),
                               errors.AlreadyEncrypted, 203),
    "not-a-mapping": (lambda d: gs.encrypt([SECRET], "json", recipients=[AGE_RECIPIENT]), errors.InputError, 2),
    "non-string-key": (lambda d: gs.encrypt({1: SECRET}, "yaml", recipients=[AGE_RECIPIENT]),
                       errors.TreeEncryptError, 23),
    "missing-file": (lambda d: gs.decrypt_file(d / "absent.yaml"), errors.InputError, 2),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_errors(name: str, files: Path) -> None:
    call, error_class, code = ERROR_CASES[name]
    with pytest.raises(errors.SopsError) as caught:
        call(files)
    assert type(caught.value) is error_class or isinstance(caught.value, error_class), type(caught.value)
    assert caught.value.exit_code == code
    message = str(caught.value)
    assert message and "\n" not in message
    assert SECRET not in message and "AGE-SECRET-KEY" not in message


def test_wrong_key_error(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_identity(monkeypatch, AGE_KEY_FILE_2)
    with pytest.raises(errors.DataKeyError) as caught:
        gs.decrypt_file(files / "sops.enc.yaml")
    assert caught.value.exit_code == 128
    assert AGE_RECIPIENT in str(caught.value)
    assert "AGE-SECRET-KEY" not in str(caught.value)


def test_ignore_mac(files: Path) -> None:
    text = (files / "sops.enc.yaml").read_text()
    broken = re.sub(r"(?m)^    mac: .*\n", "", text).encode()
    assert gs.decrypt(broken, "yaml", ignore_mac=True) == PLAIN_DATA
    assert gs.extract(broken, "yaml", '["db"]["password"]', ignore_mac=True) == SECRET


def _fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=scrubbed_env(tmp_path),
                          capture_output=True, text=True, check=False, timeout=60)


def test_errors_module_reachable_from_package(tmp_path: Path) -> None:
    for code in ("from gitcrypt_sops import errors; print(errors.DataKeyError.exit_code)",
                 "import gitcrypt_sops; print(gitcrypt_sops.errors.DataKeyError.exit_code)"):
        result = _fresh_python(code, tmp_path)
        assert result.returncode == 0, result.stderr[-300:]
        assert result.stdout.strip() == "128"


def test_errors_module_importable_directly(tmp_path: Path) -> None:
    result = _fresh_python("import gitcrypt_sops.errors as e; print(e.DataKeyError.exit_code)", tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "128"


def test_facade_functions_in_fresh_interpreter(files: Path) -> None:
    code = ("import gitcrypt_sops as gs, sys; "
            f"print(gs.extract_file({str(files / 'sops.enc.yaml')!r}, '[\"db\"][\"port\"]'))")
    env = scrubbed_env(files, {"SOPS_AGE_KEY_FILE": str(AGE_KEYS_BOTH)})
    result = subprocess.run([sys.executable, "-c", code], cwd=files, env=env, capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-300:]
    assert result.stdout.strip() == "5432"
