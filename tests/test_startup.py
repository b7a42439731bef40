"""Start-up cost: what the CLI imports for a tiny decrypt and for ``--version``.

``python -X importtime`` lists every module imported (even ones removed from
``sys.modules`` later); heavy optional SDKs must never be among them, and
``--version`` must not even load the crypto or YAML libraries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import AGE_KEY_FILE, AGE_RECIPIENT, scrubbed_env

#: never imported for a plain age decrypt (top-level package names)
HEAVY = {"boto3", "botocore", "google", "grpc", "rich", "typer", "pydantic", "ruamel", "moto", "azure", "hvac",
         "requests", "urllib3", "gnupg"}
#: not imported by --version either
CRYPTO_AND_STORES = {"cryptography", "yaml", "pyrage", "_yaml"}
#: standard modules a small decrypt does without (each costs 1-6% of its run): typing
#: (gitcrypt_sops.records), hashlib/hmac and OpenSSL's libcrypto (gitcrypt_sops.digest),
#: tempfile (fsio), cryptography's Python cipher modules (cipher takes the Rust AESGCM),
#: gettext (console imports argparse without it)
AVOIDED = {"typing", "hashlib", "hmac", "_hashlib", "tempfile", "shutil", "random",
           "cryptography.hazmat.primitives.ciphers", "cryptography.exceptions", "cryptography.utils",
           "gettext"}
#: and, where PyYAML (which imports it) is not loaded, datetime's pure-Python twin (gitcrypt_sops.dates)
AVOIDED_WITHOUT_YAML = AVOIDED | {"datetime"}


def imported_modules(args: list[str], cwd: Path, home: Path) -> tuple[set[str], subprocess.CompletedProcess[bytes]]:
    """Run the CLI under ``-X importtime``; the dotted names of every module it imported."""
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gitcrypt_sops", *args], cwd=cwd, env=env,
                            capture_output=True, check=False, timeout=60)
    names = set()
    lines = [line for line in result.stderr.decode().splitlines() if line.startswith("import time:")]
    assert lines, result.stderr[-500:]
    for line in lines[1:]:  # the first is the header
        names.add(line.split("|")[-1].strip())
    return names, result


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "tiny.json").write_text(json.dumps({"a": "x"}))
    (tmp_path / "tiny.yaml").write_text("a: x\n")
    env = scrubbed_env(tmp_path, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    for fmt in ("json", "yaml"):
        subprocess.run([sys.executable, "-m", "gitcrypt_sops", "encrypt", "--age", AGE_RECIPIENT,
                        "--output", f"tiny.enc.{fmt}", f"tiny.{fmt}"], cwd=tmp_path, env=env, check=True,
                       capture_output=True, timeout=60)
    return tmp_path


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_tiny_decrypt_imports_no_heavy_sdk(fmt: str, tiny: Path, home: Path) -> None:
    names, result = imported_modules(["decrypt", f"tiny.enc.{fmt}"], tiny, home)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout in (b'{\n\t"a": "x"\n}\n', b"a: x\n")
    assert "gitcrypt_sops.cli" in names and "pyrage" in roots(names)  # the parse worked and saw the real run
    assert roots(names) & HEAVY == set(), sorted(roots(names) & HEAVY)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_tiny_decrypt_loads_only_its_own_store(fmt: str, tiny: Path, home: Path) -> None:
    names, _ = imported_modules(["decrypt", f"tiny.enc.{fmt}"], tiny, home)
    other = "gitcrypt_sops.stores.yaml_store" if fmt == "json" else "gitcrypt_sops.stores.json_store"
    assert other not in names
    assert not {"gitcrypt_sops.config", "gitcrypt_sops.stores.dotenv_store", "gitcrypt_sops.stores.ini_store"} & names
    assert "gitcrypt_sops.halves" not in names  # the two-process runner is for big files only
    if fmt == "json":
        assert "yaml" not in roots(names)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("command", ["decrypt", "encrypt"])
def test_tiny_runs_skip_costly_standard_modules(fmt: str, command: str, tiny: Path, home: Path) -> None:
    args = (["decrypt", "--output", f"out.{fmt}", f"tiny.enc.{fmt}"] if command == "decrypt"
            else ["encrypt", "--age", AGE_RECIPIENT, "--output", f"out.enc.{fmt}", f"tiny.{fmt}"])
    names, result = imported_modules(args, tiny, home)
    assert result.returncode == 0, result.stderr[-500:]
    assert "pyrage" in roots(names) and "gitcrypt_sops.walk" in names  # the real pipeline ran
    avoided = AVOIDED if fmt == "yaml" else AVOIDED_WITHOUT_YAML
    assert names & avoided == set(), sorted(names & avoided)


def test_a_bad_tag_still_reports_one_line_without_typing_preloaded(tiny: Path, home: Path) -> None:
    # cipher imports cryptography.exceptions only once a tag fails; the message stays one line
    text = (tiny / "tiny.enc.json").read_text()
    start = text.index("ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
    flipped = "A" if text[start] != "A" else "B"
    (tiny / "bad.enc.json").write_text(text[:start] + flipped + text[start + 1:])
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "decrypt", "bad.enc.json"], cwd=tiny, env=env,
                            capture_output=True, check=False, timeout=60)
    assert result.returncode != 0 and result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "could not decrypt the value at 'a:'" in lines[0], lines


def test_version_imports_nothing_heavy(tiny: Path, home: Path) -> None:
    names, result = imported_modules(["--version"], tiny, home)
    assert result.returncode == 0 and result.stdout.startswith(b"gitcrypt-sops ")
    assert "gitcrypt_sops.cli" in names
    assert roots(names) & (HEAVY | CRYPTO_AND_STORES) == set(), sorted(roots(names) & (HEAVY | CRYPTO_AND_STORES))


def test_help_imports_nothing_heavy(tiny: Path, home: Path) -> None:
    names, result = imported_modules(["decrypt", "--help"], tiny, home)
    assert result.returncode == 0
    assert roots(names) & (HEAVY | CRYPTO_AND_STORES) == set()


def test_package_import_is_cheap(tmp_path: Path) -> None:
    code = ("import sys, gitcrypt_sops; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], env=scrubbed_env(tmp_path), capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "gitcrypt_sops" in loaded
    assert loaded & (HEAVY | CRYPTO_AND_STORES) == set()


def test_argparse_is_imported_untranslated_without_a_gettext_trace(tmp_path: Path) -> None:
    code = ("import sys; from gitcrypt_sops import console; console._import_argparse_untranslated(); "
            "import argparse; assert 'gettext' not in sys.modules; "
            "assert argparse._('usage: ') == 'usage: ' and argparse.ngettext('a', 'b', 2) == 'b'; "
            "import gettext; assert hasattr(gettext, 'translation'); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], env=scrubbed_env(tmp_path), capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr[-500:]
