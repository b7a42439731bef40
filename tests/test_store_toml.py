"""The TOML store: exact round trips, layout kept outside values, types, metadata, rules, errors.

sops has no TOML store, so there is no binary to compare with; instead every
encrypted file is checked against the plaintext it came from (only values and
comments may differ), decrypted back byte for byte, and its tree compared with
the standard library's ``tomllib``.  Conversions to JSON are checked with sops.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import AGE_KEYS_BOTH, AGE_RECIPIENT, AGE_RECIPIENT_2, Runner

from gitcrypt_sops import api, datakey
from gitcrypt_sops.cipher import Cipher, DataKey
from gitcrypt_sops.errors import (
    AlreadyEncrypted,
    EmitError,
    InputError,
    MacMismatch,
    MetadataNotFound,
    TreeDecryptError,
)
from gitcrypt_sops.metadata import from_tree
from gitcrypt_sops.providers.age import AgeProvider
from gitcrypt_sops.stores import format_for, toml_store
from gitcrypt_sops.tree import Comment, strip_comments
from gitcrypt_sops.walk import EncryptionRule

SECRET = "S3CR3T-toml-value-42"
RECIPIENT = AgeProvider().parse_recipients(AGE_RECIPIENT)[0]
#: one data key wrapped once: the property test then needs no age operation per example
KEY = DataKey.generate()
WRAPPED = datakey.wrap(KEY, [[RECIPIENT]], 0)

ENC_VALUE = r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]"
#: the seven forms an encrypted value is written in
ENC_FORMS = re.compile(
    r'(?:"""(?:\\\r?\n|\r?\n)?|\'\'\'(?:\r?\n)?|"|\')' + ENC_VALUE + r'(?:"""|\'\'\'|"|\')'
)
ENC_COMMENT = re.compile("#" + ENC_VALUE)

PYPROJECT = f'''\
[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-app"
version = "1.4.0"
description = "A demo"
readme = "README.md"
requires-python = ">=3.10"
license = {{ text = "MIT" }}
authors = [
    {{ name = "Ada", email = "ada@example.com" }},
]
dependencies = [
    "cryptography>=42",  # AES-GCM
    "pyyaml>=6",
]

[project.optional-dependencies]
toml = ["tomlkit>=0.12"]

[project.scripts]
demo = "demo.cli:main"

[tool.black]
line-length = 100
extend-exclude = \'\'\'
/(
  | build
  | \\.venv
)/
\'\'\'

[tool.pytest.ini_options]
addopts = "-q"
testpaths = ['tests']

[tool.demo]
api_token = "{SECRET}"
'''

APP_CONFIG = f"""\
# Application configuration
title = "TOML Example"   # shown in the UI
debug_unencrypted = false

[owner]
name = 'Tom Preston-Werner'
dob = 1979-05-27T07:32:00-08:00
created = 1979-05-27T07:32:00.999999999Z
spaced = 1979-05-27 07:32:00+05:30
local = 1979-05-27T07:32:00
day = 1979-05-27
at = 07:32:00.5
mode = 0o755
mask = 0xFF00
lower = 0xdead
flags = 0b1010
big = +inf
small = -inf
neg = -nan
pos = nan
plus = +1.5
ratio = 3.14
tiny = 6.626e-34
count = -17

# Database settings
[database]
enabled = true
ports = [ 8000, 8001, 8002 ]
data = [ ["delta", "phi"], [3.14] ]
temp_targets = {{ cpu = 79.5, case = 72.0 }}
password = "{SECRET}"
escaped = "tab\\there \\"quoted\\" é \\u0001"
description = \"\"\"
Multi-line
  text "quoted"
\"\"\"
inline_ml = \"\"\"first line
second line\"\"\"
regex = '''
^\\d+$'''
raw = '''C:\\Users\\nodejs'''
hosts = [
  "alpha",  # the first
  # a comment line inside the array
  "omega",
]

[servers]

  # Indentation (tabs and/or spaces) is allowed but not required
  [servers.alpha]
  ip = "10.0.0.1"
  role = "frontend"

	[servers.beta]
	ip = "10.0.0.2"

[[products]]
name = "Hammer"
sku = 738594937

[[products]]  # empty table within the array

[[products]]
name = "Nail"
sku = 284758393
color = "gray"
site."google.com" = true
"quoted key" = 'x'
a . b . c = 1
"""

#: nested arrays of tables (the TOML specification's example)
FRUITS = """\
[[fruits]]
name = "apple"

[fruits.physical]  # subtable
color = "red"
shape = "round"

[[fruits.varieties]]  # nested array of tables
name = "red delicious"

[[fruits.varieties]]
name = "granny smith"


[[fruits]]
name = "banana"

[[fruits.varieties]]
name = "plantain"
"""


def encrypt(text: str | bytes, rule: EncryptionRule | None = None) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return api.encrypt_parsed(api.parse(data, "toml", encrypted=False), api.EncryptOptions([], rule),
                              data_key=KEY, wrapped=WRAPPED)


def decrypt(data: bytes) -> tuple[bytes, api.Decrypted]:
    """Decrypt as ``decrypt_bytes`` does (splice), with the known data key; MAC verified."""
    parsed = api.parse(data, "toml", encrypted=True)
    result = api.decrypt_parsed(parsed, data_key=KEY, keep_outputs=True)
    assert result.outputs is not None
    out = toml_store.splice(parsed.toml_file, result.outputs, result.documents, encrypting=False, metadata=None)
    assert out is not None
    return out, result


def tomllib_as_tree(value: Any) -> Any:
    """tomllib's parse mapped as documented: local date/times become their TOML text."""
    if isinstance(value, dict):
        return {k: tomllib_as_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tomllib_as_tree(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()  # compared through text_of_locals below
    if isinstance(value, (date, time)) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def same(a: Any, b: Any) -> bool:
    """Type-strict equality with NaN equal to itself."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, datetime) or isinstance(b, datetime):  # GoTime (nanoseconds) against datetime
        return isinstance(a, datetime) and isinstance(b, datetime) and a == b
    return type(a) is type(b) and a == b


def normalise_locals(value: Any) -> Any:
    """Local date/time text as tomllib would print it (``T`` separator, isoformat)."""
    if isinstance(value, dict):
        return {k: normalise_locals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_locals(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?|\d{2}:\d{2}:\d{2}(\.\d+)?|"
                                               r"\d{4}-\d{2}-\d{2}", value):
        parsed = tomllib.loads("v = " + value)["v"]
        return parsed.isoformat()
    return value


def check_tree(plaintext: str, decrypted: api.Decrypted) -> None:
    """The decrypted tree is tomllib's parse of the plaintext (local date/times as their text)."""
    expected = normalise_locals(tomllib_as_tree(tomllib.loads(plaintext)))
    assert same(normalise_locals(strip_comments(decrypted.documents[0])), expected)


# -- realistic files ------------------------------------------------------------------


@pytest.mark.parametrize("text", [PYPROJECT, APP_CONFIG, APP_CONFIG.replace("\n", "\r\n"), "\ufeff" + PYPROJECT,
                                  FRUITS, "a = 1", "# only a comment\n", "x = 'no newline at the end' # c"],
                         ids=["pyproject", "app", "crlf", "bom", "fruits", "no-newline", "comment-only",
                              "trailing-comment"])
def test_realistic_round_trip_is_exact(text: str) -> None:
    encrypted = encrypt(text)
    assert SECRET.encode() not in encrypted
    newline = "\r\n" if "\r\n" in text else "\n"
    body, sops_header, block = encrypted.decode().partition(newline + "[sops]" + newline)
    assert sops_header and body.removeprefix("\ufeff").startswith(text.removeprefix("\ufeff")[:1])
    assert block.endswith("-----END AGE ENCRYPTED FILE-----" + newline + '"""' + newline)
    decrypted, result = decrypt(encrypted)
    assert decrypted == text.encode()
    check_tree(text.removeprefix("\ufeff"), result)


def test_encrypted_file_layout_and_metadata() -> None:
    encrypted = encrypt(APP_CONFIG).decode()
    # the [sops] table comes last, after one line break, and is readable metadata
    body, _, block = encrypted.partition("\n[sops]\n")
    assert body.endswith('site."google.com" = "' + body.rsplit('site."google.com" = "', 1)[1])
    assert block.startswith("lastmodified = ") and "\n[[sops.age]]\nrecipient = " in block
    meta = from_tree(tomllib.loads(encrypted)["sops"])
    assert meta.recipients()[0][1]["recipient"] == AGE_RECIPIENT
    assert meta.rule == EncryptionRule() and meta.version == "3.11.0"
    values = tomllib.loads(encrypted)
    assert values["debug_unencrypted"] is False  # the _unencrypted suffix
    owner = values["owner"]
    assert all(str(v).startswith("ENC[AES256_GCM,") for v in owner.values())
    # the quote style records the TOML kind (see the module docstring)
    for key, form in [("name", "'ENC"), ("local", '"""ENC'), ("mode", "'''ENC"), ("mask", '"""ENC'),
                      ("lower", "'ENC"), ("flags", "'''\nENC"), ("big", "'ENC"), ("neg", "'''ENC"),
                      ("spaced", "'ENC"), ("dob", '"ENC'), ("count", '"ENC')]:
        assert re.search(rf"^{key} = {re.escape(form)}", encrypted, re.MULTILINE), key
    assert re.search(r'^description = """\nENC', encrypted, re.MULTILINE)
    assert re.search(r'^inline_ml = """\\\nENC', encrypted, re.MULTILINE)
    assert "#ENC[AES256_GCM," in encrypted and "# Database settings" not in encrypted
    assert 'site."google.com" = "ENC[' in encrypted and "  [servers.alpha]\n  ip = " in encrypted


def test_types_and_aad() -> None:
    """Type tags and AADs: table paths; arrays of tables add nothing; comments take their table's path."""
    encrypted = encrypt(APP_CONFIG)
    values = tomllib.loads(encrypted.decode())
    cipher = Cipher(KEY)
    expected = {("owner", "dob"): ("time", b"1979-05-27T07:32:00-08:00"),
                ("owner", "created"): ("time", b"1979-05-27T07:32:00.999999999Z"),
                ("owner", "local"): ("str", b"1979-05-27T07:32:00"), ("owner", "day"): ("str", b"1979-05-27"),
                ("owner", "at"): ("str", b"07:32:00.5"), ("owner", "mode"): ("int", b"493"),
                ("owner", "big"): ("float", b"+Inf"), ("owner", "neg"): ("float", b"NaN"),
                ("owner", "ratio"): ("float", b"3.14"), ("database", "enabled"): ("bool", b"True"),
                ("database", "password"): ("str", SECRET.encode())}
    for (table, key), (tag, plaintext) in expected.items():
        assert cipher.open(values[table][key], f"{table}:{key}:") == (plaintext, tag), (table, key)
    assert cipher.open(values["products"][2]["site"]["google.com"], "products:site:google.com:")[1] == "bool"
    assert cipher.open(values["database"]["ports"][1], "database:ports:") == (b"8001", "int")
    text = encrypted.decode()
    comment = re.search(r"\n(#ENC\[[^\]]*\])\n\[database\]", text)
    assert comment is not None  # the comment touching [database] is filed in the root, before it
    assert cipher.open(comment.group(1)[1:], ":") == (b" Database settings", "comment")
    in_array = re.search(r'\n  (#ENC\[[^\]]*\])\n  "ENC', text)
    assert in_array is not None and cipher.open(in_array.group(1)[1:], "database:hosts:")[1] == "comment"
    indented = re.search(r"\n  (#ENC\[[^\]]*\])\n  \[servers\.alpha\]", text)
    assert indented is not None and cipher.open(indented.group(1)[1:], "servers:")[1] == "comment"


def test_nested_arrays_of_tables() -> None:
    values = tomllib.loads(encrypt(FRUITS).decode())
    cipher = Cipher(KEY)
    assert cipher.open(values["fruits"][0]["varieties"][1]["name"], "fruits:varieties:name:")[0] == b"granny smith"
    assert cipher.open(values["fruits"][1]["varieties"][0]["name"], "fruits:varieties:name:")[0] == b"plantain"
    assert cipher.open(values["fruits"][0]["physical"]["color"], "fruits:physical:color:")[0] == b"red"


def test_key_groups_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEYS_BOTH))
    second = AgeProvider().parse_recipients(AGE_RECIPIENT_2)[0]
    rule = EncryptionRule("unencrypted_suffix", "_unencrypted", True)
    options = api.EncryptOptions([[RECIPIENT], [second]], rule, shamir_threshold=2)
    encrypted = api.encrypt_bytes(FRUITS.encode(), "toml", options)
    block = encrypted.decode().split("\n[sops]\n", 1)[1]
    assert block.startswith("shamir_threshold = 2\nlastmodified = ")
    assert "\nmac_only_encrypted = true\nversion = " in block
    assert block.count("\n[[sops.key_groups]]\nhc_vault = []\n\n[[sops.key_groups.age]]\nrecipient = ") == 2
    assert api.decrypt_bytes(encrypted, "toml") == FRUITS.encode()


def test_decrypted_tree_matches_tomllib() -> None:
    _, result = decrypt(encrypt(APP_CONFIG))
    tree = strip_comments(result.documents[0])
    assert tree["owner"]["local"] == "1979-05-27T07:32:00" and tree["owner"]["day"] == "1979-05-27"
    assert tree["owner"]["created"].nanosecond == 999 and tree["owner"]["mask"] == 0xFF00
    assert math.isnan(tree["owner"]["neg"]) and tree["owner"]["big"] == math.inf
    reference = tomllib.loads(APP_CONFIG)
    assert tree["products"][2]["a"] == reference["products"][2]["a"] == {"b": {"c": 1}}
    check_tree(APP_CONFIG, result)


def test_encrypted_regex_and_suffix() -> None:
    text = 'user = "admin"\npassword = "hunter2"\n[db]\npassword = "x"\nhost_unencrypted = "h"\nport = 5432\n'
    encrypted = encrypt(text, EncryptionRule("encrypted_regex", "^pass", False)).decode()
    assert 'user = "admin"' in encrypted and "port = 5432" in encrypted and 'host_unencrypted = "h"' in encrypted
    assert encrypted.count('password = "ENC[') == 2
    assert 'encrypted_regex = "^pass"' in encrypted
    assert decrypt(encrypted.encode())[0] == text.encode()
    suffixed = encrypt(text).decode()
    assert 'host_unencrypted = "h"' in suffixed and "port = " in suffixed and "5432" not in suffixed
    assert decrypt(suffixed.encode())[0] == text.encode()


def test_comment_regex_marks_the_next_entry() -> None:
    text = "[a]\nx = 1\n# sops:enc\ny = 2\n# sops:enc\n[b]\nz = 3\n[c]\nw = 4\n"
    encrypted = encrypt(text, EncryptionRule("encrypted_comment_regex", "sops:enc", False)).decode()
    values = tomllib.loads(encrypted)
    assert values["a"]["x"] == 1 and values["c"]["w"] == 4
    assert str(values["a"]["y"]).startswith("ENC[") and str(values["b"]["z"]).startswith("ENC[")
    assert decrypt(encrypted.encode())[0] == text.encode()


def test_mac_verifies_and_detects_tampering() -> None:
    encrypted = encrypt(APP_CONFIG)
    api.decrypt_parsed(api.parse(encrypted, "toml", encrypted=True), data_key=KEY)  # verifies the MAC
    swapped = encrypted.decode().replace("debug_unencrypted = false", "debug_unencrypted = true").encode()
    with pytest.raises(MacMismatch):
        api.decrypt_parsed(api.parse(swapped, "toml", encrypted=True), data_key=KEY)
    values = tomllib.loads(encrypted.decode())
    moved = encrypted.decode().replace(values["owner"]["name"], values["database"]["password"], 1)
    with pytest.raises(TreeDecryptError):
        api.decrypt_parsed(api.parse(moved.encode(), "toml", encrypted=True), data_key=KEY)


def test_real_key_through_decrypt_bytes_and_cli(tmp_path: Path, ours: Runner) -> None:
    assert format_for("config.toml") == "toml"
    encrypted = api.encrypt_bytes(PYPROJECT.encode(), "toml", api.EncryptOptions([[RECIPIENT]]))
    assert api.decrypt_bytes(encrypted, "toml") == PYPROJECT.encode()
    (tmp_path / "app.toml").write_text(APP_CONFIG)
    done = ours("encrypt", "--age", AGE_RECIPIENT, "--output", "app.enc.toml", "app.toml", cwd=tmp_path, check=True)
    assert done.stdout == b""
    assert ours("decrypt", "app.enc.toml", cwd=tmp_path, check=True).stdout == APP_CONFIG.encode()
    status = ours("filestatus", "app.enc.toml", cwd=tmp_path, check=True).stdout
    assert json.loads(status) == {"encrypted": True}
    again = ours("encrypt", "--age", AGE_RECIPIENT, "app.enc.toml", cwd=tmp_path)
    assert again.returncode == 203 and b"already encrypted" in again.stderr


# -- conversions ----------------------------------------------------------------------


def test_toml_to_json_and_yaml(tmp_path: Path, sops: Runner) -> None:
    text = "when = 2024-01-02\nat = 2024-01-02T03:04:05Z\n" + PYPROJECT
    encrypted = api.encrypt_bytes(text.encode(), "toml", api.EncryptOptions([[RECIPIENT]]))
    as_json = json.loads(api.decrypt_bytes(encrypted, "toml", "json"))
    reference = tomllib.loads(text)
    assert as_json["tool"]["demo"]["api_token"] == SECRET and as_json["when"] == "2024-01-02"
    assert as_json["at"] == "2024-01-02T03:04:05Z" and as_json["project"] == reference["project"]
    as_yaml = api.decrypt_bytes(encrypted, "toml", "yaml").decode()
    assert "api_token: " + SECRET in as_yaml and "line-length: 100" in as_yaml
    # encrypting TOML straight to JSON gives a file the real sops decrypts
    (tmp_path / "p.json").write_bytes(api.encrypt_bytes(text.encode(), "toml", api.EncryptOptions([[RECIPIENT]]),
                                                        "json"))
    done = sops("decrypt", "p.json", cwd=tmp_path, check=True)
    assert json.loads(done.stdout)["tool"]["demo"]["api_token"] == SECRET


def test_other_formats_to_toml(tmp_path: Path, sops: Runner) -> None:
    yaml_text = ("a: 1\nb:\n  c: [1, 2]\n  # about d\n  d: {e: x}\n# foot\ng: 2020-01-01T00:00:00Z\n"
                 "servers:\n  - name: a\n    port: 1\n  - name: b\nnested:\n  deep:\n    key: value\n")
    encrypted = api.encrypt_bytes(yaml_text.encode(), "yaml", api.EncryptOptions([[RECIPIENT]]), "toml")
    plain = api.decrypt_bytes(encrypted, "toml").decode()
    assert plain == ('a = 1\nb.c = [1, 2]\n# about d\nb.d.e = "x"\n# foot\ng = 2020-01-01T00:00:00Z\n\n'
                     '[[servers]]\nname = "a"\nport = 1\n\n[[servers]]\nname = "b"\n\n[nested]\n\n'
                     '[nested.deep]\nkey = "value"\n')
    assert api.decrypt_bytes(encrypted, "toml", "yaml").decode().startswith("a: 1\nb:\n")
    # a sops-made YAML file decrypted to TOML
    (tmp_path / "s.yaml").write_text("db:\n  password: " + SECRET + "\n  port: 5432\n")
    sops("encrypt", "--age", AGE_RECIPIENT, "-i", "s.yaml", cwd=tmp_path, check=True)
    converted = api.decrypt_bytes((tmp_path / "s.yaml").read_bytes(), "yaml", "toml")
    assert converted == f'[db]\npassword = "{SECRET}"\nport = 5432\n'.encode()


def test_unrepresentable_values_give_one_error() -> None:
    for data, where in [(b'{"a": {"b": [1, null]}}', '["a"]["b"][1]'), (b'{"n": null}', '["n"]')]:
        with pytest.raises(EmitError) as caught:
            api.encrypt_bytes(data, "json", api.EncryptOptions([[RECIPIENT]]), "toml")
        assert str(caught.value) == f"cannot write null (TOML has no null) as TOML at {where}"
    with pytest.raises(EmitError, match="single document"):
        toml_store.dump([{"a": 1}, {"b": 2}])
    with pytest.raises(EmitError, match="64-bit"):
        toml_store.dump([{"a": 2**70}])


def test_emitter_round_trips_trees() -> None:
    tree = {Comment(" top"): None, "s": "x\ny", "n": -1, "f": 1e300, "t": True, "empty": {}, "arr": [],
            "mixed": [1, "a", [2.5, {"k": "v"}]], "sub": {"x": 1, "deep": {"y": [{"z": 1}]}},
            "after": "plain value after a sub-table", "tables": [{"a": 1}, Comment(" between"), {"b": {"c": 2}}],
            "with space": {"q": 'quote " and \\ back'}}
    text = toml_store.dump([tree]).decode()
    assert strip_comments(tomllib.loads(text)) == strip_comments(tree)
    parsed = toml_store.load(text.encode(), want_metadata=False)
    assert toml_store.shape_of(parsed.documents[0], []) == toml_store.shape_of(tree, [])


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "where"), [
    (f'a = "{SECRET}\n', "line 1, column"),
    (f'a = 1\nb = {SECRET}\n', "line 2, column 5"),
    (f'[a]\nx = 1\n[a]\ny = "{SECRET}"\n', "line 3, column"),
    (f'a = "{SECRET}\x01"\n', "line 1, column"),
    (f'a = 1\na = "{SECRET}"\n', "line"),
])
def test_invalid_toml(text: str, where: str) -> None:
    with pytest.raises(InputError) as caught:
        api.parse(text.encode(), "toml", encrypted=False)
    message = str(caught.value)
    assert message.startswith("invalid TOML at ") and where in message and SECRET not in message
    assert "\n" not in message and "\\x01" not in message


def test_other_input_errors() -> None:
    with pytest.raises(AlreadyEncrypted):
        api.parse(b'a = 1\n[sops]\nversion = "3.11.0"\n', "toml", encrypted=False)
    with pytest.raises(InputError, match="64-bit"):
        api.parse(b"a = 9223372036854775808\n", "toml", encrypted=False)
    with pytest.raises(InputError, match="UTF-8"):
        api.parse(b'a = "\xff"\n', "toml", encrypted=False)
    with pytest.raises(MetadataNotFound):
        api.decrypt_bytes(b"a = 1\n", "toml")


def test_large_file_round_trip() -> None:
    lines = []
    for index in range(300):
        lines += [f"[service{index}]", f'name = "svc-{index}"', f"port = {8000 + index}", "tags = ['a', \"b\"]",
                  f"ratio = {index / 7!r}  # note", ""]
    text = "\n".join(lines)
    assert decrypt(encrypt(text))[0] == text.encode()


# -- property test --------------------------------------------------------------------

_PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cs", "Co"), max_codepoint=0x2FF)
_BASIC_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _basic(value: str) -> str:
    return '"' + "".join(_BASIC_ESC.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 32 or ord(c) == 127 else c)
                         for c in value) + '"'


def _ml_basic_body(value: str) -> str:
    body = "".join("\\\\" if c == "\\" else (f"\\u{ord(c):04X}" if (ord(c) < 32 and c not in "\n\t") or ord(c) == 127
                                              else c) for c in value)
    return body.replace('"""', '""\\"')  # the writer's canonical form: final quotes stay bare


_LITERAL_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="'",
                                      max_codepoint=0x2FF), max_size=12)
_ML_TEXT = st.text(st.sampled_from(list("ab \t\n\"'\\é#=[]{}")), max_size=20)


@st.composite
def strings(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["basic", "literal", "ml_nl", "ml", "mll_nl", "mll"]))
    if kind == "basic":
        return _basic(draw(st.text(_PRINTABLE, max_size=12)))
    if kind == "literal":
        return "'" + draw(_LITERAL_TEXT) + "'"
    value = draw(_ML_TEXT)
    if kind in ("ml", "mll"):
        value = value.lstrip("\n")
    if kind.startswith("mll"):
        value = value.replace("\\", "/").replace("'", "")
        return "'''" + ("\n" if kind == "mll_nl" else "") + value + "'''"
    return '"""' + ("\n" if kind == "ml_nl" else "") + _ml_basic_body(value) + '"""'


def _time_text(draw: st.DrawFn) -> str:
    text = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    digits = draw(st.sampled_from(["", "5", "25", "123456", "123456789"]))
    return text + ("." + digits if digits else "")


@st.composite
def scalars(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["str", "str", "int", "float", "bool", "time", "local"]))
    if kind == "str":
        return draw(strings())
    if kind == "int":
        value = draw(st.integers(-(2**63), 2**63 - 1))
        style = draw(st.sampled_from(["dec", "hex", "HEX", "oct", "bin"]))
        if style == "dec" or value < 0:
            return str(value)
        return {"hex": f"0x{value:x}", "HEX": f"0x{value:X}", "oct": f"0o{value:o}", "bin": f"0b{value:b}"}[style]
    if kind == "float":
        special = draw(st.sampled_from(["", "", "", "inf", "-inf", "+inf", "nan", "+nan", "-nan", "plus"]))
        if special and special != "plus":
            return special
        number = repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
        return "+" + number if special == "plus" and not number.startswith("-") else number
    if kind == "bool":
        return draw(st.sampled_from(["true", "false"]))
    day = f"{draw(st.integers(1, 9999)):04d}-{draw(st.integers(1, 12)):02d}-{draw(st.integers(1, 28)):02d}"
    if kind == "time":
        clock = _time_text(draw)
        if "." in clock:  # the canonical RFC 3339 text: no trailing zeros in the fraction
            clock = clock.rstrip("0").rstrip(".")
        offset = draw(st.sampled_from(["Z", "+05:30", "-08:00", "+14:00"]))
        return day + draw(st.sampled_from(["T", " "])) + clock + offset
    shape = draw(st.sampled_from(["date", "time", "datetime"]))
    if shape == "date":
        return day
    if shape == "time":
        return _time_text(draw)
    return day + draw(st.sampled_from(["T", " ", "t"])) + _time_text(draw)


Segments = list[tuple[str, str]]  # ("f" fixed text | "v" value | "c" comment, text)

_NAMES = st.sampled_from(["alpha", "beta", "gamma_unencrypted", "delta", "k-1", "2x", "name", "v", "enc", "w_9"])
_SPACE = st.sampled_from(["", " ", "  ", "\t"])


def _key(draw: st.DrawFn, name: str) -> str:
    style = draw(st.sampled_from(["bare", "bare", "basic", "literal"]))
    return {"bare": name, "basic": f'"{name}"', "literal": f"'{name}'"}[style]


def _value(draw: st.DrawFn, segments: Segments, depth: int) -> None:
    kind = draw(st.sampled_from(["scalar"] * 6 + (["array", "inline"] if depth < 2 else [])))
    if kind == "scalar":
        segments.append(("v", draw(scalars())))
    elif kind == "array":
        multiline = draw(st.booleans())
        segments.append(("f", "[" + ("\n  " if multiline else draw(_SPACE))))
        count = draw(st.integers(0, 3))
        for index in range(count):
            _value(draw, segments, depth + 1)
            last = index == count - 1
            if multiline:
                segments.append(("f", ","))
                if draw(st.booleans()):
                    segments.append(("f", draw(_SPACE) + " "))
                    segments.append(("c", "# " + draw(_LITERAL_TEXT)))
                segments.append(("f", "\n" + ("" if last else "  ")))
            elif not last:
                segments.append(("f", "," + draw(_SPACE)))
        segments.append(("f", ("" if multiline else draw(_SPACE)) + "]"))
    else:
        names = draw(st.lists(_NAMES, unique=True, max_size=3))
        segments.append(("f", "{" + draw(_SPACE)))
        for index, name in enumerate(names):
            segments.append(("f", ("," + draw(_SPACE) if index else "") + _key(draw, name) + " = "))
            _value(draw, segments, depth + 1)
        segments.append(("f", draw(_SPACE) + "}"))


def _key_values(draw: st.DrawFn, segments: Segments, indent: str) -> None:
    for name in draw(st.lists(_NAMES, unique=True, max_size=4)):
        if draw(st.integers(0, 3)) == 0:
            segments.append(("f", indent))
            segments.append(("c", "#" + draw(_LITERAL_TEXT)))
            segments.append(("f", "\n" * draw(st.integers(1, 2))))
        key = _key(draw, name)
        if draw(st.integers(0, 4)) == 0:
            key = f"{key}{draw(st.sampled_from(['.', ' . ']))}{_key(draw, 'sub')}"
        segments.append(("f", f"{indent}{key}{draw(_SPACE)}={draw(_SPACE)}"))
        _value(draw, segments, 0)
        if draw(st.integers(0, 3)) == 0:
            segments.append(("f", draw(_SPACE) + " "))
            segments.append(("c", "#" + draw(_LITERAL_TEXT)))
        segments.append(("f", "\n" * draw(st.integers(1, 2))))


@st.composite
def documents(draw: st.DrawFn) -> Segments:
    segments: Segments = []
    if draw(st.booleans()):
        segments.append(("c", "# " + draw(_LITERAL_TEXT)))
        segments.append(("f", "\n\n"))
    _key_values(draw, segments, "")
    for index, (header, name) in enumerate(draw(st.lists(
        st.tuples(st.sampled_from(["table", "array"]), st.sampled_from(["t1", "t2", "arr", "srv"])),
        max_size=4, unique_by=lambda item: item[1],
    ))):
        repeat = draw(st.integers(1, 2)) if header == "array" else 1
        for _ in range(repeat):
            if draw(st.booleans()):
                segments.append(("c", "#" + draw(_LITERAL_TEXT)))
                segments.append(("f", "\n" * draw(st.integers(1, 2))))
            indent = draw(st.sampled_from(["", "  "]))
            brackets = ("[", "]") if header == "table" else ("[[", "]]")
            spaced = draw(st.sampled_from(["", " "]))
            segments.append(("f", f"{indent}{brackets[0]}{spaced}{name}{spaced}{brackets[1]}"))
            if draw(st.integers(0, 3)) == 0:
                segments.append(("f", " "))
                segments.append(("c", "# header " + str(index)))
            segments.append(("f", "\n"))
            _key_values(draw, segments, indent)
            if draw(st.integers(0, 3)) == 0:
                segments.append(("f", f"[{name}.child]\n"))
                _key_values(draw, segments, "")
            if header == "array":
                for _ in range(draw(st.integers(0, 2))):
                    segments.append(("f", f"[[{name}.items]]\n"))
                    _key_values(draw, segments, "")
    if draw(st.integers(0, 3)) == 0:
        segments.append(("c", "# the end"))
    if draw(st.booleans()) and segments and segments[-1][1].endswith("\n"):
        segments.append(("f", "\n"))
    return segments


def _check_layout(segments: Segments, encrypted: str) -> None:
    """The encrypted text equals the plaintext outside values and comments."""
    cursor = 0
    for kind, text in segments:
        # a value or comment left as it is, unless it is only the start of an encrypted one
        # (a comment "#E" is a prefix of "#ENC[...]")
        encrypted_form = (ENC_FORMS if kind == "v" else ENC_COMMENT).match(encrypted, cursor)
        if kind == "f" or encrypted.startswith(text, cursor) and not encrypted_form:
            assert encrypted.startswith(text, cursor), (kind, text, encrypted[cursor : cursor + 80])
            cursor += len(text)
            continue
        pattern = ENC_FORMS if kind == "v" else ENC_COMMENT
        found = pattern.match(encrypted, cursor)
        assert found is not None, (kind, text, encrypted[cursor : cursor + 80])
        cursor = found.end()
    assert encrypted[cursor:].startswith("\n[sops]\n"), encrypted[cursor : cursor + 40]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_property_layout_kept_and_exact_round_trip(segments: Segments) -> None:
    plaintext = "".join(text for _, text in segments)
    if not plaintext:
        return
    try:
        reference = tomllib.loads(plaintext)
    except tomllib.TOMLDecodeError:  # e.g. a dotted key clashing with a plain one
        with pytest.raises(InputError, match="^invalid TOML at line"):
            encrypt(plaintext)
        return
    encrypted = encrypt(plaintext).decode()
    _check_layout(segments, encrypted)
    decrypted, result = decrypt(encrypted.encode())
    assert decrypted.decode() == plaintext
    got = normalise_locals(strip_comments(result.documents[0]))
    assert same(got, tomllib_as_tree(reference))


def test_documented_normalisations() -> None:
    """Spellings the ciphertext cannot remember come back in canonical form, same values."""
    text = ('e = "\\u00E9"\nsep = 1_000\nexp = 1e3\npadded = 0x00ff\nsigned = +42\nutc = 2024-01-02T03:04:05+00:00\n'
            'frac = 2024-01-02T03:04:05.500Z\nlow = 2024-01-02t03:04:05z\n')
    decrypted, result = decrypt(encrypt(text))
    assert decrypted == (b'e = "\xc3\xa9"\nsep = 1000\nexp = 1000.0\npadded = 0xff\nsigned = 42\n'
                         b"utc = 2024-01-02T03:04:05Z\nfrac = 2024-01-02T03:04:05.5Z\nlow = 2024-01-02T03:04:05Z\n")
    check_tree(text, result)


def test_changed_tree_is_written_anew() -> None:
    """A caller that edits the parsed tree (set, edit) gets a freshly written file, never a wrong splice."""
    parsed = api.parse(b"# head\na = 1\n[t]\nb = 'x'\n", "toml", encrypted=False)
    parsed.documents[0]["t"]["c"] = {"d": [1, 2]}
    parsed.documents[0]["a"] = "now a string"
    encrypted = api.encrypt_parsed(parsed, api.EncryptOptions([], None), data_key=KEY, wrapped=WRAPPED)
    decrypted, result = decrypt(encrypted)
    assert decrypted == b'# head\na = "now a string"\n\n[t]\nb = "x"\n\n[t.c]\nd = [1, 2]\n'
    assert strip_comments(result.documents[0]) == {"a": "now a string", "t": {"b": "x", "c": {"d": [1, 2]}}}


def test_multiline_basic_strings_read_back_for_every_quote_and_backslash_run() -> None:
    from itertools import product

    from gitcrypt_sops.stores.toml_store import _ml_basic

    for length in range(1, 6):
        for chars in product('"\\a\n', repeat=length):
            value = "".join(chars)
            for leading in (True, False):
                text = _ml_basic(value, "\n", leading)
                assert tomllib.loads("k = " + text)["k"] == value, (value, text)
