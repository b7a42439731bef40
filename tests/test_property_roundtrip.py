"""Property tests: random JSON-compatible documents survive encryption and decryption.

* Python data -> ``encrypt_data`` -> ``decrypt`` gives the same data, typed exactly
  (YAML and JSON stores).
* The same documents written as text (``json.dumps`` / ``yaml.safe_dump``) ->
  ``encrypt_bytes`` -> ``decrypt`` mean what the plaintext meant, and the decrypted
  *text* reads back to that meaning too.
* A small sample goes through the real sops 3.11: it decrypts what we wrote.

Strings include YAML-looking traps ("yes", "1e3", "null", "- x", ": ", "#", ...),
surrounding spaces, newlines and arbitrary unicode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import AGE_RECIPIENT, Runner, sops_binary
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_compat_vectors import Yaml12Loader, load_yaml, norm

TRICKY = [
    "yes", "no", "on", "off", "y", "n", "Yes", "NO", "true", "False", "null", "Null", "~", "", " ",
    "1e3", "1E3", "0x1F", "0o17", "017", "1_000", "+1", "-.5", ".5", ".inf", "-.inf", ".nan", "1:20", "12:30:45",
    "2024-01-02", "2024-01-02T03:04:05Z", "2001-12-14 21:59:43.10 -5",
    "- x", "-", "--", "---", "...", ": ", ":", "a: b", "a:b", "#", "# c", "a #b", "a#b", "? x", "?",
    "[1]", "{a: 1}", "[", "]", "{", "}", ",", "!tag", "!!str", "&a", "*a", "%YAML", "@", "`", "|", ">", "|-",
    "'", '"', "''", '""', "\\", "\\n", "=", "<<",
    " lead", "trail ", "  both  ", "\ttab", "a\nb", "a\n", "\n", "\n\n", "a\n\nb\n", " \n x", "x\r\ny", "\r",
    "\x00", "\x07", "\x1b[0m", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "é", "e\u0301", "😀", "日本語",
    "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "sops",
]

text = st.one_of(st.sampled_from(TRICKY), st.text(st.characters(codec="utf-8"), max_size=12))
keys = st.one_of(st.sampled_from(TRICKY).filter(bool), st.text(st.characters(codec="utf-8"),
                                                               min_size=1, max_size=8))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False), text,
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=16,
)
documents = st.dictionaries(keys.filter(lambda k: k != "sops"), values, max_size=6)


def typed(value: Any) -> Any:
    """Exact comparison: type and value (float by repr, so -0.0 and 0.0 differ)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def encrypt(data: Any, fmt: str) -> bytes:
    import gitcrypt_sops as gs

    return gs.encrypt(data, fmt, recipients=[AGE_RECIPIENT])


def decrypt(encrypted: bytes, fmt: str) -> Any:
    import gitcrypt_sops as gs

    return gs.decrypt(encrypted, fmt)


def assert_same_json(got: Any, expected: Any, where: str = "$") -> None:
    """Printed JSON (Go style: 2.0 prints as 2) against the data: a float by value, an int exactly."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), where
        for key in expected:
            assert_same_json(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for index, (g, e) in enumerate(zip(got, expected)):
            assert_same_json(g, e, f"{where}[{index}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(got) is type(expected) and got == expected, where
    elif isinstance(expected, int):
        assert type(got) is int and got == expected, where
    else:
        assert type(got) in (int, float) and float(got) == expected, where


class Dumper12(yaml.SafeDumper):
    """safe_dump that also quotes strings yaml.v3 would read as something else ("1e3", "0o17")."""


for _first, _resolvers in Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        Dumper12.add_implicit_resolver(_tag, _regexp, [_first])


FAST = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(documents)
def test_yaml_data_round_trips_exactly(document: dict[str, Any]) -> None:
    encrypted = encrypt(document, "yaml")
    assert typed(decrypt(encrypted, "yaml")) == typed(document)


@FAST
@given(documents)
def test_json_data_round_trips_exactly(document: dict[str, Any]) -> None:
    encrypted = encrypt(document, "json")
    assert b"ENC[" in encrypted or not any(_leaves(document))
    assert typed(decrypt(encrypted, "json")) == typed(document)


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=2, max_size=3))
def test_yaml_multi_document_data_round_trips(docs: list[dict[str, Any]]) -> None:
    assert typed(decrypt(encrypt(docs, "yaml"), "yaml")) == typed(docs)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [] if value is None or value == "" else [value]


@FAST
@given(documents)
def test_json_text_round_trips(document: dict[str, Any]) -> None:
    from gitcrypt_sops import api

    plain = json.dumps(document, ensure_ascii=False, indent=1).encode()
    encrypted = encrypt(plain, "json")
    assert typed(decrypt(encrypted, "json")) == typed(document)
    assert_same_json(json.loads(api.decrypt_bytes(encrypted, "json")), document)


@FAST
@given(documents, st.sampled_from([{}, {"default_flow_style": True}, {"indent": 4, "width": 20},
                                   {"default_style": '"'}]))
def test_yaml_text_round_trips_as_data(document: dict[str, Any], style: dict[str, Any]) -> None:
    """safe_dump text (quoting what YAML 1.1 *or* yaml.v3 would not read as a string)
    means the document; encrypted and decrypted, it still does, as data and as text."""
    from gitcrypt_sops import api
    from gitcrypt_sops.tree import strip_comments

    plain = yaml.dump(document, Dumper=Dumper12, allow_unicode=True, sort_keys=False, **style).encode()
    # PyYAML writes NEL, LS and PS raw in quoted scalars, where they fold into spaces
    assume(typed(load_yaml(plain)[0]) == typed(document))
    meaning = strip_comments(api.parse(plain, "yaml", encrypted=False).documents[0])
    assert typed(meaning) == typed(document)
    encrypted = encrypt(plain, "yaml")
    assert typed(decrypt(encrypted, "yaml")) == typed(document)
    assert norm(load_yaml(api.decrypt_bytes(encrypted, "yaml"))[0]) == norm(document)


# -- through the real sops ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def msops(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, Path]:
    work = tmp_path_factory.mktemp("property-sops")
    (work / "home").mkdir()
    return Runner([sops_binary()], work / "home"), work


@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_sops_decrypts_our_json(msops: tuple[Runner, Path], document: dict[str, Any]) -> None:
    sops, work = msops
    path = work / "doc.json"
    path.write_bytes(encrypt(document, "json"))
    result = sops("decrypt", str(path), cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert_same_json(json.loads(result.stdout), document)


@settings(deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_sops_decrypts_our_yaml(msops: tuple[Runner, Path], document: dict[str, Any]) -> None:
    sops, work = msops
    path = work / "doc.yaml"
    path.write_bytes(encrypt(document, "yaml"))
    result = sops("decrypt", str(path), cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert_same_json(load_yaml(result.stdout)[0], document)
