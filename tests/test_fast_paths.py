"""The start-up and memory shortcuts behave exactly like what they replace.

``records.Record`` (typed named tuples without ``typing``), ``digest`` (builtin
SHA-512 and constant-time comparison), ``pyyaml.load`` (PyYAML without its costly
regex), ``fsio.read_input_buffer`` and the consuming decrypt, and the console
entry point (rare GC, ``os._exit`` after flushing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import AGE_KEY_FILE, AGE_RECIPIENT, scrubbed_env

from gitcrypt_sops import api, digest, fsio, pyyaml
from gitcrypt_sops.cipher import DataKey
from gitcrypt_sops.providers.base import Recipient
from gitcrypt_sops.records import Record
from gitcrypt_sops.walk import EncryptionRule

# -- records -------------------------------------------------------------------------


class Point(Record):
    """A test record."""

    x: int
    label: str = "origin"

    def moved(self, by: int) -> Point:
        return self._replace(x=self.x + by)


def test_record_is_a_named_tuple_with_defaults_methods_and_pickling() -> None:
    point = Point(3)
    assert point == (3, "origin") and point.x == 3 and point.label == "origin"
    assert Point._fields == ("x", "label") and repr(point) == "Point(x=3, label='origin')"
    assert point.moved(2) == Point(5, "origin") and type(point.moved(2)) is Point
    assert pickle.loads(pickle.dumps(point)) == point and hash(point) == hash((3, "origin"))
    assert Point.__doc__ == "A test record." and Point.__module__ == __name__
    with pytest.raises(AttributeError):
        point.other = 1  # type: ignore[attr-defined]


def test_record_refuses_a_required_field_after_a_default() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Record):
            first: int = 0
            second: int


def test_project_records_keep_their_named_tuple_behaviour() -> None:
    recipient = Recipient("age", AGE_RECIPIENT)
    assert recipient.options == () and recipient._replace(options=(("a", 1),)).option("a") == 1
    assert str(recipient) == f"age:{AGE_RECIPIENT}"
    rule = EncryptionRule.from_fields({"encrypted_regex": "^pw"})
    assert rule == ("encrypted_regex", "^pw", False) and rule.encrypts_when_matched


# -- digest --------------------------------------------------------------------------


def test_digest_sha512_matches_hashlib() -> None:
    chunks = [b"", b"a", os.urandom(1000), "é".encode()]
    ours, reference = digest.sha512(), hashlib.sha512()
    for chunk in chunks:
        ours.update(chunk)
        reference.update(chunk)
    assert ours.hexdigest() == reference.hexdigest()


@pytest.mark.parametrize(("left", "right"), [(b"abc", b"abc"), (b"abc", b"abd"), (b"abc", b"ab"), (b"", b"")])
def test_constant_time_equal_agrees_with_hmac(left: bytes, right: bytes) -> None:
    assert digest.constant_time_equal(left, right) == hmac.compare_digest(left, right)
    assert (DataKey(left.ljust(32, b"k")) == DataKey(right.ljust(32, b"k"))) == (left.ljust(32, b"k") == right.ljust(32, b"k"))


# -- pyyaml --------------------------------------------------------------------------


def test_listed_pattern_matches_the_same_characters_as_pyyamls() -> None:
    every_character = "".join(map(chr, range(0x110000)))
    original = re.compile(pyyaml.NON_PRINTABLE)
    listed = re.compile(pyyaml.NON_PRINTABLE_LISTED)
    assert listed.findall(every_character) == original.findall(every_character)


def test_pyyaml_import_uses_the_seed(tmp_path: Path) -> None:
    # a fresh interpreter: the installed PyYAML still spells the pattern as we expect
    code = ("from gitcrypt_sops import pyyaml; yaml = pyyaml.load(); "
            "print(yaml.reader.Reader.NON_PRINTABLE.pattern == pyyaml.NON_PRINTABLE_LISTED); "
            "print(yaml.safe_load('a: [1, x]') == {'a': [1, 'x']})")
    result = subprocess.run([sys.executable, "-c", code], env=scrubbed_env(tmp_path), capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.stdout.split() == ["True", "True"], result.stderr


# -- reading and consuming the input ---------------------------------------------------


def test_read_input_buffer_reads_files_of_any_size(tmp_path: Path) -> None:
    for size in (0, 1, 65537):
        path = tmp_path / f"f{size}"
        content = os.urandom(size)
        path.write_bytes(content)
        buffer = fsio.read_input_buffer(str(path))
        assert isinstance(buffer, bytearray) and buffer == content == fsio.read_input(str(path))
    assert fsio.read_input_buffer("/proc/self/status").startswith(b"Name:")  # st_size is 0 there
    with pytest.raises(fsio.InputError, match="no such file"):
        fsio.read_input_buffer(str(tmp_path / "missing"))


@pytest.mark.parametrize("fmt", ["json", "yaml", "dotenv"])
def test_decrypt_of_a_handed_over_buffer_empties_it_and_matches_bytes(fmt: str, age_env: None) -> None:
    plain = {"json": b'{"a": {"b": ["x", 1, true]}, "c": "y"}', "yaml": b"a:\n  b: [x, 1, true]\nc: y\n",
             "dotenv": b"A=x\nC=y\n"}[fmt]
    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    encrypted = api.encrypt_bytes(plain, fmt, options)
    buffer = bytearray(encrypted)
    assert api.decrypt_bytes(buffer, fmt) == api.decrypt_bytes(encrypted, fmt)
    assert buffer == bytearray()


def test_consuming_decrypt_empties_the_parsed_tree(age_env: None) -> None:
    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    encrypted = api.encrypt_bytes(b'{"a": {"b": ["x", "y"]}, "c": 1}', "json", options)
    kept = api.decrypt_parsed(api.parse(encrypted, "json", encrypted=True))
    parsed = api.parse(encrypted, "json", encrypted=True)
    consumed = api.decrypt_parsed(parsed, consume=True, keep_ivs=False)
    assert consumed.documents == kept.documents and parsed.documents == []
    assert consumed.stash == {} and kept.stash  # the IV stash is only filled on request


@pytest.fixture
def age_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))


# -- the console entry ---------------------------------------------------------------------


def test_console_entry_flushes_output_and_passes_exit_codes(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "gitcrypt-sops"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gitcrypt_sops"]
    env = scrubbed_env(tmp_path, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    big = {f"key{i}": "v" * 50 for i in range(3000)}  # more than a pipe buffer of output
    (tmp_path / "big.json").write_text(json.dumps(big))
    run = subprocess.run([*command, "encrypt", "--age", AGE_RECIPIENT, "big.json"], cwd=tmp_path, env=env,
                         capture_output=True, check=False, timeout=60)
    assert run.returncode == 0, run.stderr
    (tmp_path / "big.enc.json").write_bytes(run.stdout)
    decrypted = subprocess.run([*command, "decrypt", "big.enc.json"], cwd=tmp_path, env=env, capture_output=True,
                               check=False, timeout=60)
    assert decrypted.returncode == 0 and json.loads(decrypted.stdout) == big
    missing = subprocess.run([*command, "decrypt", "nope.json"], cwd=tmp_path, env=env, capture_output=True,
                             check=False, timeout=60)
    assert missing.returncode == 100 and missing.stderr.count(b"\n") == 1 and missing.stdout == b""
    head = subprocess.run(f"{' '.join(command)} decrypt big.enc.json | head -c 10", shell=True, cwd=tmp_path, env=env,
                          capture_output=True, check=False, timeout=60)
    assert head.stdout == decrypted.stdout[:10] and b"Traceback" not in head.stderr



# -- YAML scalar shortcut ------------------------------------------------------------------

_WORDS = ["null", "Null", "NULL", "true", "True", "TRUE", "false", "FALSE", "y", "Y", "yes", "YES", "n", "No", "on",
          "ON", "off", "Off", "e5", "E1", "x1e5", "inf", "nan", "NaN", "Infinity", "a:b", "a-b", "a.b.c", "a@b", "a=b",
          "a+b", "a/b", "_a", "0x1F", "0o17", "1_000", "2024-01-02", "1:20", ".inf", "-.5", "abc#d", "a #b",
          "fA/:Y?G/-p<yxPQ%8^z", "https://x.example/a?b=c", "a:", "a: b", "a ", "ab c", "a,b", "a[0]", "a{b}", "Yes!",
          "on!", "p@ss word"]


@pytest.mark.parametrize("flow", [False, True])
def test_simple_plain_shortcut_agrees_with_the_full_check(flow: bool) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gitcrypt_sops.stores import yaml_scalars

    for word in _WORDS:
        assert yaml_scalars.plain_string_ok(word, flow) == yaml_scalars.plain_string_ok_in_full(word, flow), word

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="aZyYnN0159_./@+=-:#,[]{} eEx%^<>?!&*|'\"`~\t\\\u00e9\u2028", min_size=1, max_size=12))
    def agree(text: str) -> None:
        assert yaml_scalars.plain_string_ok(text, flow) == yaml_scalars.plain_string_ok_in_full(text, flow)

    agree()


# -- JSON without the json package ---------------------------------------------------------

_JSON_TEXTS = ['{"a": 1}', ' \n{"a": [1, 2.5, "x", null, true]}\r\n', "{}", "[]", "", "   ", "{", '{"a": }', '{"a": 1} x',
               '{"a": 1}{}', '{"a" 1}', '{"a": "\\q"}', '{"a": "\x01"}', '{"a": NaN}', "[1e999]", '{"a": 1, "a": 2}',
               '"text"', "nul", '{"a":1,}', "\t[\n]\t"]


def test_json_store_reads_documents_and_errors_exactly_as_the_json_package() -> None:
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gitcrypt_sops.stores import json_store

    reference = json.JSONDecoder(object_pairs_hook=json_store._pairs, parse_float=json_store._float,
                                 parse_int=json_store._int, parse_constant=json_store._constant).decode

    def outcome(decode: Any, text: str) -> Any:
        try:
            return ("value", decode(text))
        except Exception as error:  # noqa: BLE001 - the outcome compared is the exception itself
            return ("error", type(error), getattr(error, "msg", None), getattr(error, "pos", None))

    for text in _JSON_TEXTS:
        assert outcome(json_store._decode, text) == outcome(reference, text), text

    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=5))
    documents = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                             | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)

    @settings(max_examples=300, deadline=None)
    @given(documents, st.sampled_from(["", " ", "\n\t", "x", ",", "]"]), st.integers(0, 40))
    def agree(document: Any, tail: str, cut: int) -> None:
        text = json.dumps(document, indent=cut % 3 or None) + tail
        for candidate in (text, text[:cut]):
            assert outcome(json_store._decode, candidate) == outcome(reference, candidate), candidate

    agree()


# -- reading ENC strings without re ----------------------------------------------------------


def test_split_enc_finds_the_patterns_groups() -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gitcrypt_sops import codec

    pattern = re.compile(codec._ENC_PATTERN)

    def reference(text: str) -> tuple[str, ...] | None:
        found = pattern.match(text)
        return None if found is None else found.groups()

    pieces = st.text(alphabet="aB9+/=,]:[ \nx", max_size=6)
    prefixes = st.sampled_from([codec.ENC_PREFIX, codec.ENC_PREFIX, "ENC[AES256_GCM,data", "enc[AES256_GCM,data:", ""])
    separators = st.sampled_from([",iv:", ",tag:", ",type:", ",", ":", "iv:", ",iv", ""])

    @settings(max_examples=3000, deadline=None)
    @given(prefixes, st.lists(st.tuples(pieces, separators), max_size=5), pieces, st.sampled_from(["]", "]x", "]\n]", "", "\n]"]))
    def agree(prefix: str, middle: list[tuple[str, str]], last: str, end: str) -> None:
        text = prefix + "".join(piece + separator for piece, separator in middle) + last + end
        assert codec.split_enc(text) == reference(text), text

    agree()
    sealed = "ENC[AES256_GCM,data:QUJD,iv:" + "A" * 44 + ",tag:" + "B" * 24 + ",type:str]"
    for text in (sealed, sealed + "trailing", sealed.replace("type:str", "type:a]b"), sealed.replace("data:QUJD", "data:")):
        assert codec.split_enc(text) == reference(text), text


def test_a_small_decrypt_splits_by_hand_and_a_large_one_compiles_the_pattern(
        age_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from gitcrypt_sops import codec

    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    monkeypatch.setattr(codec, "sys", types.SimpleNamespace(modules={}))  # a run that has not imported re
    for size in (10, codec.SPLIT_BY_HAND + 10):
        data = {f"k{i}": f"v{i}" if i % 2 else i for i in range(size)}
        blob = api.encrypt_bytes(json.dumps(data).encode(), "json", options)
        monkeypatch.setattr(codec, "_enc_match", None)
        monkeypatch.setattr(codec, "_split_left", codec.SPLIT_BY_HAND)
        assert json.loads(api.decrypt_bytes(blob, "json")) == data
        assert (codec._enc_match is None) == (size < codec.SPLIT_BY_HAND)


def test_the_version_check_reads_sops_pattern_without_re() -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gitcrypt_sops.metadata import SEMVER_PATTERN, starts_semver

    for text in ("3.11.0", "v3.7.1", "1.0", "3.11", "3.11.x", "v.1.2", "10.20.30-rc1", "3.11.\u0663", "\u00b2.1.1"):
        assert starts_semver(text) == (re.match(SEMVER_PATTERN, text) is not None), text

    @settings(max_examples=2000, deadline=None)
    @given(st.text(alphabet="v0123456789.a\u00b2\u0661 -", max_size=10))
    def agree(text: str) -> None:
        assert starts_semver(text) == (re.match(SEMVER_PATTERN, text) is not None), text

    agree()


def test_flattened_keys_split_as_sops_pattern_splits_them() -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gitcrypt_sops.stores.flatten import TOKEN_PATTERN, split_key

    pieces = ["__map_", "__list_", "_", "__", "a", "map", "list", "__map", "_list_", "0"]

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.sampled_from(pieces), max_size=8))
    def agree(bits: list[str]) -> None:
        key = "".join(bits)
        assert split_key(key) == re.split(TOKEN_PATTERN, key), key

    agree()
