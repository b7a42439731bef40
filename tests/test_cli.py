"""The command-line surface, checked against the real sops on the same files.

Encrypted output is random, so results are compared as data (decrypted, parsed),
except where sops's bytes are the contract (``--extract`` of a string, JSON
indentation, ``filestatus``).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from support import AGE_KEY_FILE, AGE_RECIPIENT, AGE_RECIPIENT_2, Runner, scrubbed_env, sops_binary

import gitcrypt_sops

SECRET = "S3CR3T-VALUE-1234"
PLAIN_YAML = f"""\
name: app
password: {SECRET}
port: 8080
ratio: 1.5
enabled: true
nothing: null
list:
    - one
    - 2
nested:
    key: value
    deeper:
        x: y
"""
PLAIN_DATA = yaml.safe_load(PLAIN_YAML)
PLAIN_JSON = json.dumps(PLAIN_DATA, indent=2)
ENCRYPT = ("encrypt", "--age", AGE_RECIPIENT)


def load(data: bytes, fmt: str) -> Any:
    return yaml.safe_load(data) if fmt == "yaml" else json.loads(data)


def recipients(encrypted: bytes) -> list[str]:
    return re.findall(r"age1[0-9a-z]{58}", encrypted.decode())


@pytest.fixture
def work(tmp_path: Path, sops: Runner) -> Path:
    """plain.yaml/plain.json and their encryption by the real sops (sops.enc.*)."""
    directory = tmp_path / "work"
    directory.mkdir()
    (directory / "plain.yaml").write_text(PLAIN_YAML)
    (directory / "plain.json").write_text(PLAIN_JSON)
    for fmt in ("yaml", "json"):
        out = sops(*ENCRYPT, f"plain.{fmt}", cwd=directory, check=True).stdout
        (directory / f"sops.enc.{fmt}").write_bytes(out)
    return directory


# -- --version and --help ----------------------------------------------------------------


def test_version(ours: Runner) -> None:
    result = ours("--version", check=True)
    assert result.stdout.decode().startswith(f"gitcrypt-sops {gitcrypt_sops.__version__}")
    assert result.stdout.count(b"\n") == 1
    assert result.stderr == b""


@pytest.mark.parametrize(("command", "expected"), [
    ((), ("encrypt", "decrypt", "filestatus", "--version")),
    (("encrypt",), ("--age", "--in-place", "--output", "--input-type", "--output-type", "--filename-override",
                    "--encrypted-regex", "--unencrypted-suffix", "--mac-only-encrypted", "--config",
                    "--shamir-secret-sharing-threshold")),
    (("decrypt",), ("--extract", "--ignore-mac", "--decryption-order", "--in-place", "--output", "--indent")),
    (("filestatus",), ("--input-type",)),
])
def test_help(command: tuple[str, ...], expected: tuple[str, ...], ours: Runner) -> None:
    result = ours(*command, "--help", check=True)
    text = result.stdout.decode()
    assert text.startswith(f"usage: gitcrypt-sops {' '.join(command)}".rstrip())
    for flag in expected:
        assert flag in text, flag
    assert result.stderr == b""


# -- stdin, --output, --in-place ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("file_arg", [(), ("-",)], ids=["no-file", "dash"])
def test_decrypt_stdin(fmt: str, file_arg: tuple[str, ...], work: Path, sops: Runner, ours: Runner) -> None:
    data = (work / f"sops.enc.{fmt}").read_bytes()
    result = ours("decrypt", "--input-type", fmt, *file_arg, input=data, cwd=work, check=True)
    expected = sops("decrypt", f"sops.enc.{fmt}", cwd=work, check=True).stdout
    assert load(result.stdout, fmt) == load(expected, fmt) == PLAIN_DATA


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("file_arg", [(), ("-",)], ids=["no-file", "dash"])
def test_encrypt_stdin(fmt: str, file_arg: tuple[str, ...], work: Path, sops: Runner, ours: Runner) -> None:
    plain = (work / f"plain.{fmt}").read_bytes()
    result = ours(*ENCRYPT, "--input-type", fmt, *file_arg, input=plain, cwd=work, check=True)
    assert SECRET.encode() not in result.stdout
    (work / f"ours.enc.{fmt}").write_bytes(result.stdout)
    assert load(sops("decrypt", f"ours.enc.{fmt}", cwd=work, check=True).stdout, fmt) == PLAIN_DATA


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_output_flag(fmt: str, work: Path, sops: Runner, ours: Runner) -> None:
    result = ours(*ENCRYPT, "--output", f"out.enc.{fmt}", f"plain.{fmt}", cwd=work, check=True)
    assert result.stdout == b""
    assert load(sops("decrypt", f"out.enc.{fmt}", cwd=work, check=True).stdout, fmt) == PLAIN_DATA
    result = ours("decrypt", "--output", f"out.{fmt}", f"out.enc.{fmt}", cwd=work, check=True)
    assert result.stdout == b""
    assert load((work / f"out.{fmt}").read_bytes(), fmt) == PLAIN_DATA


@pytest.mark.parametrize("flag", ["-i", "--in-place"])
@pytest.mark.parametrize("mode", [0o640, 0o600, 0o664])
def test_in_place_is_atomic_and_keeps_mode(flag: str, mode: int, work: Path, sops: Runner, ours: Runner) -> None:
    path = work / "plain.yaml"
    path.chmod(mode)
    inode = path.stat().st_ino
    before = sorted(p.name for p in work.iterdir())
    result = ours(*ENCRYPT, flag, "plain.yaml", cwd=work, check=True)
    assert result.stdout == b""
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in work.iterdir()) == before
    encrypted = path.read_bytes()
    assert SECRET.encode() not in encrypted and b"sops:" in encrypted
    assert load(sops("decrypt", "--input-type", "yaml", "plain.yaml", cwd=work, check=True).stdout, "yaml") == PLAIN_DATA
    ours("decrypt", flag, "plain.yaml", cwd=work, check=True)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in work.iterdir()) == before
    assert yaml.safe_load(path.read_bytes()) == PLAIN_DATA


# -- output types -----------------------------------------------------------------------------


@pytest.mark.parametrize(("in_fmt", "out_fmt"), [("yaml", "json"), ("json", "yaml")])
def test_decrypt_output_type(in_fmt: str, out_fmt: str, work: Path, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--output-type", out_fmt, f"sops.enc.{in_fmt}")
    expected = sops(*args, cwd=work, check=True).stdout
    result = ours(*args, cwd=work, check=True).stdout
    assert load(result, out_fmt) == load(expected, out_fmt) == PLAIN_DATA


@pytest.mark.parametrize(("in_fmt", "out_fmt"), [("yaml", "json"), ("json", "yaml")])
def test_encrypt_output_type(in_fmt: str, out_fmt: str, work: Path, sops: Runner, ours: Runner) -> None:
    result = ours(*ENCRYPT, "--output-type", out_fmt, f"plain.{in_fmt}", cwd=work, check=True).stdout
    load(result, out_fmt)  # it is a valid document of the output type
    (work / f"converted.enc.{out_fmt}").write_bytes(result)
    assert load(sops("decrypt", f"converted.enc.{out_fmt}", cwd=work, check=True).stdout, out_fmt) == PLAIN_DATA


def test_filename_override_picks_the_format(work: Path, sops: Runner, ours: Runner) -> None:
    data = (work / "sops.enc.json").read_bytes()
    args = ("decrypt", "--filename-override", "whatever.json")
    expected = sops(*args, input=data, cwd=work, check=True).stdout
    assert json.loads(ours(*args, input=data, cwd=work, check=True).stdout) == json.loads(expected) == PLAIN_DATA


def test_filename_override_picks_the_creation_rule(tmp_path: Path, sops: Runner, ours: Runner) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: ^team2/\n    age: {AGE_RECIPIENT_2}\n"
        f"  - path_regex: .*\n    age: {AGE_RECIPIENT}\n"
    )
    args = ("encrypt", "--filename-override", "team2/app.yaml")
    for tool in (sops, ours):
        out = tool(*args, input=PLAIN_YAML.encode(), cwd=tmp_path, check=True).stdout
        assert recipients(out) == [AGE_RECIPIENT_2]
        assert b"name: ENC[" in out  # YAML, chosen from the overriding name


# -- legacy forms and decryption flags ----------------------------------------------------------


@pytest.mark.parametrize("form", [
    ("-d", "sops.enc.yaml"),
    ("--decrypt", "sops.enc.yaml"),
    ("-d", "--output-type", "json", "sops.enc.yaml"),
    ("--decrypt", "--extract", '["nested"]', "sops.enc.yaml"),
])
def test_legacy_decrypt(form: tuple[str, ...], work: Path, sops: Runner, ours: Runner) -> None:
    fmt = "json" if "json" in form else "yaml"
    expected = sops(*form, cwd=work, check=True).stdout
    assert load(ours(*form, cwd=work, check=True).stdout, fmt) == load(expected, fmt)


@pytest.mark.parametrize("form", [
    ("-e", "--age", AGE_RECIPIENT),
    ("--encrypt", "--age", AGE_RECIPIENT),
    ("--age", AGE_RECIPIENT, "-e"),
    ("-e", "--encrypted-regex", "^password$", "--age", AGE_RECIPIENT),
])
def test_legacy_encrypt(form: tuple[str, ...], work: Path, sops: Runner, ours: Runner) -> None:
    out = ours(*form, "plain.yaml", cwd=work, check=True).stdout
    (work / "legacy.enc.yaml").write_bytes(out)
    assert yaml.safe_load(sops("decrypt", "legacy.enc.yaml", cwd=work, check=True).stdout) == PLAIN_DATA
    if "--encrypted-regex" in form:
        assert b"name: app\n" in out and b"password: ENC[" in out


def test_legacy_in_place(work: Path, sops: Runner, ours: Runner) -> None:
    ours("-e", "-i", "--age", AGE_RECIPIENT, "plain.yaml", cwd=work, check=True)
    assert b"sops:" in (work / "plain.yaml").read_bytes()
    ours("-d", "-i", "plain.yaml", cwd=work, check=True)
    assert yaml.safe_load((work / "plain.yaml").read_bytes()) == PLAIN_DATA


@pytest.mark.parametrize("how", ["flag", "env"])
def test_decryption_order(how: str, work: Path, sops: Runner, ours: Runner) -> None:
    args: tuple[str, ...] = ("--decryption-order", "pgp,age") if how == "flag" else ()
    env = {"SOPS_DECRYPTION_ORDER": "pgp,age"} if how == "env" else None
    expected = sops("decrypt", *args, "sops.enc.yaml", cwd=work, env=env, check=True).stdout
    result = ours("decrypt", *args, "sops.enc.yaml", cwd=work, env=env, check=True).stdout
    assert yaml.safe_load(result) == yaml.safe_load(expected) == PLAIN_DATA


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_ignore_mac_decrypts_a_file_with_a_broken_mac(fmt: str, work: Path, sops: Runner, ours: Runner) -> None:
    text = (work / f"sops.enc.{fmt}").read_text()
    mac = re.search(r"mac\"?: \"?ENC\[AES256_GCM,data:(.)", text)
    assert mac
    start = mac.start(1)
    text = text[:start] + ("B" if text[start] != "B" else "C") + text[start + 1:]
    (work / f"broken.enc.{fmt}").write_text(text)
    assert ours("decrypt", f"broken.enc.{fmt}", cwd=work).returncode != 0
    expected = sops("decrypt", "--ignore-mac", f"broken.enc.{fmt}", cwd=work, check=True).stdout
    result = ours("decrypt", "--ignore-mac", f"broken.enc.{fmt}", cwd=work, check=True).stdout
    assert load(result, fmt) == load(expected, fmt) == PLAIN_DATA


# -- --extract -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("path", ['["password"]', '["nested"]["deeper"]["x"]', '["list"][0]', '["name"]'])
def test_extract_string_is_raw(fmt: str, path: str, work: Path, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", path, f"sops.enc.{fmt}")
    expected = sops(*args, cwd=work, check=True).stdout
    result = ours(*args, cwd=work, check=True).stdout
    assert result == expected
    assert not result.endswith(b"\n")
    if path == '["password"]':
        assert result == SECRET.encode()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("out_fmt", [None, "yaml", "json"])
@pytest.mark.parametrize("path", ['["nested"]', '["list"]', '["nested"]["deeper"]'])
def test_extract_subtree(fmt: str, out_fmt: str | None, path: str, work: Path, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", path, *(("--output-type", out_fmt) if out_fmt else ()), f"sops.enc.{fmt}")
    expected = sops(*args, cwd=work, check=True).stdout
    result = ours(*args, cwd=work, check=True).stdout
    shown = out_fmt or fmt
    assert load(result, shown) == load(expected, shown)
    assert isinstance(load(result, shown), (dict, list))


@pytest.mark.parametrize("path", ['["port"]', '["ratio"]', '["enabled"]', '["nothing"]', '["list"][1]'])
def test_extract_non_string_scalar_yaml(path: str, work: Path, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", path, "sops.enc.yaml")
    assert ours(*args, cwd=work, check=True).stdout == sops(*args, cwd=work, check=True).stdout


@pytest.mark.parametrize("path", ['["port"]', '["ratio"]', '["enabled"]', '["nothing"]', '["list"][1]'])
def test_extract_non_string_scalar_json(path: str, work: Path, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", path, "sops.enc.json")
    assert ours(*args, cwd=work, check=True).stdout == sops(*args, cwd=work, check=True).stdout


def test_extract_timestamp_as_json(tmp_path: Path, sops: Runner, ours: Runner) -> None:
    (tmp_path / "t.yaml").write_text("when: 2024-01-02T03:04:05Z\n")
    (tmp_path / "t.enc.yaml").write_bytes(sops(*ENCRYPT, "t.yaml", cwd=tmp_path, check=True).stdout)
    args = ("decrypt", "--extract", '["when"]', "--output-type", "json", "t.enc.yaml")
    assert ours(*args, cwd=tmp_path, check=True).stdout == sops(*args, cwd=tmp_path, check=True).stdout


# -- --indent -----------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", ["2", "4"])
def test_indent_json(indent: str, work: Path, sops: Runner, ours: Runner) -> None:
    expected = sops("-d", "--indent", indent, "--output-type", "json", "sops.enc.yaml", cwd=work, check=True).stdout
    result = ours("decrypt", "--indent", indent, "--output-type", "json", "sops.enc.yaml", cwd=work, check=True)
    assert result.stdout == expected
    assert re.search(rb'(?m)^ {%d}"name"' % int(indent), result.stdout)


def test_indent_json_encrypt(work: Path, sops: Runner, ours: Runner) -> None:
    out = ours(*ENCRYPT, "--indent", "2", "plain.json", cwd=work, check=True).stdout
    assert re.search(rb'(?m)^  "name": "ENC\[', out) and b"\t" not in out
    (work / "indented.enc.json").write_bytes(out)
    assert json.loads(sops("decrypt", "indented.enc.json", cwd=work, check=True).stdout) == PLAIN_DATA


def test_indent_yaml(work: Path, sops: Runner, ours: Runner) -> None:
    expected = sops("-d", "--indent", "2", "sops.enc.yaml", cwd=work, check=True).stdout
    result = ours("decrypt", "--indent", "2", "sops.enc.yaml", cwd=work, check=True).stdout
    assert result == expected


def test_indent_zero_json(work: Path, sops: Runner, ours: Runner) -> None:
    expected = sops("-d", "--indent", "0", "--output-type", "json", "sops.enc.yaml", cwd=work, check=True).stdout
    result = ours("decrypt", "--indent", "0", "--output-type", "json", "sops.enc.yaml", cwd=work, check=True).stdout
    assert result == expected


# -- creation rules -------------------------------------------------------------------------------


def _rule(recipient: str) -> str:
    return f"creation_rules:\n  - path_regex: \\.yaml$\n    age: {recipient}\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/{.sops.yaml -> R2}, root/sub/deeper/x.yaml, and an unrelated cwd."""
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".sops.yaml").write_text(_rule(AGE_RECIPIENT_2))
    (root / "sub" / "deeper" / "x.yaml").write_text(PLAIN_YAML)
    (tmp_path / "elsewhere").mkdir()
    return root


def test_rules_found_by_walking_up_from_the_target(tree: Path, sops: Runner, ours: Runner) -> None:
    target = tree / "sub" / "deeper" / "x.yaml"
    # sops looks upwards from its working directory; run it where both lookups agree
    expected = sops("encrypt", str(target), cwd=target.parent, check=True).stdout
    assert recipients(expected) == [AGE_RECIPIENT_2]
    # we look upwards from the file, wherever we are run
    for cwd in (target.parent, tree, tree.parent / "elsewhere"):
        assert recipients(ours("encrypt", str(target), cwd=cwd, check=True).stdout) == [AGE_RECIPIENT_2]


def test_policy_file_preferred_over_sops_yaml(tree: Path, ours: Runner) -> None:
    (tree / ".sops-policy.yaml").write_text(_rule(AGE_RECIPIENT))
    target = tree / "sub" / "deeper" / "x.yaml"
    out = ours("encrypt", str(target), cwd=tree.parent / "elsewhere", check=True).stdout
    assert recipients(out) == [AGE_RECIPIENT]
    # a nearer .sops.yaml wins over a farther policy file: the nearest directory decides
    (tree / "sub" / ".sops.yaml").write_text(_rule(AGE_RECIPIENT_2))
    assert recipients(ours("encrypt", str(target), cwd=tree, check=True).stdout) == [AGE_RECIPIENT_2]


def test_config_flag(tree: Path, tmp_path: Path, sops: Runner, ours: Runner) -> None:
    alt = tmp_path / "alt.yaml"
    alt.write_text(_rule(AGE_RECIPIENT))
    target = tree / "sub" / "deeper" / "x.yaml"
    expected = sops("--config", str(alt), "-e", str(target), cwd=target.parent, check=True).stdout
    assert recipients(expected) == [AGE_RECIPIENT]
    for form in (("--config", str(alt), "-e"), ("-e", "--config", str(alt)), ("encrypt", "--config", str(alt))):
        assert recipients(ours(*form, str(target), cwd=target.parent, check=True).stdout) == [AGE_RECIPIENT]


def test_config_flag_before_subcommand(tree: Path, tmp_path: Path, sops: Runner, ours: Runner) -> None:
    alt = tmp_path / "alt.yaml"
    alt.write_text(_rule(AGE_RECIPIENT))
    target = tree / "sub" / "deeper" / "x.yaml"
    assert recipients(sops("--config", str(alt), "encrypt", str(target), cwd=tree, check=True).stdout) == [AGE_RECIPIENT]
    assert recipients(ours("--config", str(alt), "encrypt", str(target), cwd=tree, check=True).stdout) == [AGE_RECIPIENT]


def test_no_matching_creation_rule(tree: Path, sops: Runner, ours: Runner) -> None:
    target = tree / "sub" / "deeper" / "x.json"
    target.write_text(PLAIN_JSON)
    assert sops("encrypt", str(target), cwd=target.parent).returncode == 1
    result = ours("encrypt", str(target), cwd=target.parent)
    assert result.returncode == 1
    assert result.stderr.startswith(b"gitcrypt-sops: ") and result.stderr.count(b"\n") == 1
    assert result.stdout == b""


def test_no_recipients_at_all(work: Path, sops: Runner, ours: Runner) -> None:
    assert sops("encrypt", "plain.yaml", cwd=work).returncode == 1
    result = ours("encrypt", "plain.yaml", cwd=work)
    assert result.returncode == 1
    assert result.stderr.startswith(b"gitcrypt-sops: ") and result.stderr.count(b"\n") == 1
    (work / ".sops.yaml").write_text("creation_rules:\n  - path_regex: .*\n")  # a rule without keys
    assert sops("encrypt", "plain.yaml", cwd=work).returncode == 1
    assert ours("encrypt", "plain.yaml", cwd=work).returncode == 1


# -- common sops spellings ------------------------------------------------------------------------


def test_short_age_flag(work: Path, sops: Runner, ours: Runner) -> None:
    out = ours("encrypt", "-a", AGE_RECIPIENT, "plain.yaml", cwd=work, check=True).stdout
    assert recipients(out) == [AGE_RECIPIENT]


def test_age_recipients_env(work: Path, sops: Runner, ours: Runner) -> None:
    env = {"SOPS_AGE_RECIPIENTS": AGE_RECIPIENT}
    assert recipients(sops("encrypt", "plain.yaml", cwd=work, env=env, check=True).stdout) == [AGE_RECIPIENT]
    assert recipients(ours("encrypt", "plain.yaml", cwd=work, env=env, check=True).stdout) == [AGE_RECIPIENT]


@pytest.mark.parametrize("name", ["sops.enc.yaml", "sops.enc.json", "plain.yaml", "plain.json"])
def test_filestatus(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    expected = sops("filestatus", name, cwd=work, check=True).stdout
    assert ours("filestatus", name, cwd=work, check=True).stdout == expected


SCRIPT = r"""
set -eu
R="$1"
sops --encrypt --age "$R" plain.yaml > enc1.yaml
sops -d enc1.yaml > dec1.yaml
sops encrypt --age "$R" --output enc2.json plain.json
sops decrypt enc2.json > dec2.json
cp plain.yaml inplace.yaml
sops -e -i --age "$R" inplace.yaml
grep -q '^sops:' inplace.yaml
sops --decrypt --in-place inplace.yaml
sops -d --extract '["password"]' enc1.yaml > extract1.txt
sops decrypt --extract '["nested"]' --output-type json enc1.yaml > extract2.json
sops -d --output-type json enc1.yaml > dec3.json
sops decrypt --input-type yaml --output-type yaml < enc1.yaml > dec4.yaml
cat enc2.json | sops decrypt --input-type json --output-type json > dec5.json
sops decrypt --output dec6.yaml enc1.yaml
sops -d --ignore-mac --decryption-order age enc1.yaml > dec7.yaml
sops --disable-version-check -d enc1.yaml > dec8.yaml
sops encrypt --filename-override stdin.yaml --age "$R" < plain.yaml > enc3.yaml
sops -d enc3.yaml > dec9.yaml
sops -e --encrypted-regex '^password$' --age "$R" plain.yaml > enc4.yaml
grep -q '^name: app$' enc4.yaml
sops -d enc4.yaml > dec10.yaml
sops filestatus enc1.yaml > status1.json
sops filestatus plain.yaml > status2.json
if sops -d plain.yaml > /dev/null 2>&1; then echo "decrypting plaintext must fail" >&2; exit 1; fi
sops -d missing.yaml > /dev/null 2>&1 || echo "$?" > missing-code.txt
echo done > done.txt
"""


def _run_script(tool: list[str], directory: Path, home: Path) -> None:
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sops"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in tool) + ' "$@"\n')
    wrapper.chmod(0o755)
    (directory / "plain.yaml").write_text(PLAIN_YAML)
    (directory / "plain.json").write_text(PLAIN_JSON)
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE), "PATH": f"{bin_dir}:/usr/bin:/bin"})
    result = subprocess.run(["sh", "-c", SCRIPT, "script", AGE_RECIPIENT], cwd=directory, env=env,
                            capture_output=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert (directory / "done.txt").exists()


def test_sops_scripts_work_with_gitcrypt_sops(tmp_path: Path, home: Path, sops: Runner) -> None:
    real, ours_dir = tmp_path / "sops", tmp_path / "ours"
    real.mkdir()
    ours_dir.mkdir()
    _run_script([sops_binary()], real, home)
    _run_script([sys.executable, "-m", "gitcrypt_sops"], ours_dir, home)
    outputs = sorted(p.name for p in real.iterdir() if p.is_file() and not p.name.startswith("enc"))
    assert outputs == sorted(p.name for p in ours_dir.iterdir() if p.is_file() and not p.name.startswith("enc"))
    for name in outputs:
        ours_bytes, sops_bytes = (ours_dir / name).read_bytes(), (real / name).read_bytes()
        if name.endswith(".json") and not name.startswith("status"):
            assert json.loads(ours_bytes) == json.loads(sops_bytes), name
        elif name.endswith(".yaml"):
            assert yaml.safe_load(ours_bytes) == yaml.safe_load(sops_bytes), name
        else:
            assert ours_bytes == sops_bytes, name
    # and what our CLI encrypted, the real sops decrypts
    for name in sorted(p.name for p in ours_dir.iterdir() if p.name.startswith("enc")):
        fmt = name.rsplit(".", 1)[1]
        assert load(sops("decrypt", name, cwd=ours_dir, check=True).stdout, fmt) == PLAIN_DATA, name


LOOKALIKES = ["y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "on", "On", "ON", "off", "Off", "OFF", "12:30"]


def test_decrypt_quotes_yaml11_lookalike_strings(tmp_path: Path, sops: Runner, ours: Runner) -> None:
    data = {f"k{index}": value for index, value in enumerate(LOOKALIKES)}
    (tmp_path / "q.yaml").write_text("".join(f'{key}: "{value}"\n' for key, value in data.items()))
    (tmp_path / "q.enc.yaml").write_bytes(sops(*ENCRYPT, "q.yaml", cwd=tmp_path, check=True).stdout)
    expected = sops("decrypt", "q.enc.yaml", cwd=tmp_path, check=True).stdout
    result = ours("decrypt", "q.enc.yaml", cwd=tmp_path, check=True).stdout
    assert yaml.safe_load(expected) == data
    assert yaml.safe_load(result) == data
    assert result == expected
