"""Golden vectors written by the real sops 3.11: we decrypt every one to what sops prints.

For each vector in ``shared/vectors`` both tools decrypt it (MAC verified, no
``--ignore-mac``) and the outputs are compared as data (YAML with yaml.v3's
scalar typing, JSON, dotenv/INI key-value pairs, raw bytes for binary) and, for
formats with comments, as the multiset of comment lines.  The Python API must give
the same data, ``filestatus`` must call every vector encrypted, and ``--extract``
must print a scalar byte for byte as sops does.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import AGE_KEY_FILE, AGE_KEYS_BOTH, VECTORS, Runner

# -- comparing outputs ------------------------------------------------------------------


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML typing plain scalars as yaml.v3 (sops) does: YAML 1.2 core, `<<` a plain key."""

    def flatten_mapping(self, node: Any) -> None:  # matches sops: merge keys are not applied
        return None


Yaml12Loader.yaml_implicit_resolvers = {}
_TS = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|[-+]\d{2}:\d{2})"
    r"| +(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?)?$"
)
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$", "-+0123456789"),
    ("float", (r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), "-+0123456789."),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("timestamp", _TS.pattern, "0123456789"),
):
    Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _construct_int(loader: Yaml12Loader, node: Any) -> Any:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    bases = {"0b": 2, "0o": 8, "0x": 16}
    if body[:2] in bases:
        return sign * int(body[2:], bases[body[:2]])
    if len(body) > 1 and body.startswith("0"):
        value = sign * int(body, 8)  # yaml.v3: Go's base-0 integer parse
    else:
        value = sign * int(body)
    return value if -(2**63) <= value < 2**64 else float(value)  # yaml.v3: beyond (u)int64 is a float


def _construct_float(loader: Yaml12Loader, node: Any) -> float:
    text = loader.construct_scalar(node).replace("_", "").lower()
    if text.endswith(".inf"):
        return -math.inf if text.startswith("-") else math.inf
    if text == ".nan":
        return math.nan
    return float(text)


def _construct_timestamp(loader: Yaml12Loader, node: Any) -> dt.datetime:
    match = _TS.match(loader.construct_scalar(node))
    assert match is not None
    y, mo, d, h1, mi1, s1, f1, zone, h2, mi2, s2, f2 = match.groups()
    hour, minute, second, fraction = (h1, mi1, s1, f1) if h1 else (h2 or 0, mi2 or 0, s2 or 0, f2)
    tz = dt.timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return dt.datetime(int(y), int(mo), int(d), int(hour), int(minute), int(second), micro, tz)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
Yaml12Loader.add_constructor("tag:yaml.org,2002:merge", lambda loader, node: "<<")
Yaml12Loader.add_constructor(  # sops: !!binary is a string of the decoded bytes
    "tag:yaml.org,2002:binary",
    lambda loader, node: yaml.SafeLoader.construct_yaml_binary(loader, node).decode("utf-8", "surrogateescape"),
)


def _construct_custom(loader: Yaml12Loader, suffix: str, node: Any) -> Any:
    """A local tag (``!custom x``): sops keeps the value and drops the tag."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


Yaml12Loader.add_multi_constructor("!", _construct_custom)


def load_yaml(text: bytes | str) -> list[Any]:
    """Every document of a YAML text, typed as sops types it."""
    return list(yaml.load_all(text, Loader=Yaml12Loader))


def norm(value: Any) -> Any:
    """A comparable form: tagged bools, NaN as a marker, times as aware UTC datetimes."""
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return ("time", aware.astimezone(dt.timezone.utc).replace(tzinfo=None))
    if isinstance(value, dt.date):
        return ("time", dt.datetime(value.year, value.month, value.day))
    return value


def comment_lines(text: bytes, fmt: str) -> list[str]:
    """The comment lines of an output, stripped and sorted (placement aside)."""
    marks = (";", "#") if fmt == "ini" else ("#",)
    lines = [line.strip() for line in text.decode("utf-8", "surrogateescape").splitlines()]
    return sorted(line for line in lines if line.startswith(marks))


def parse_dotenv(text: bytes) -> dict[str, str]:
    data = {}
    for line in text.decode().split("\n"):
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            data[key] = value.replace("\\n", "\n")
    return data


def parse_ini(text: bytes) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = {}
    section = "DEFAULT"
    for raw in text.decode().splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            data.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        data.setdefault(section, {})[key.strip()] = value.strip()
    return data


def as_data(output: bytes, fmt: str) -> Any:
    """What a decrypted output means, in a form both tools' outputs can be compared in."""
    if fmt == "yaml":
        documents = [norm(doc) for doc in load_yaml(output)]
        return documents[0] if len(documents) == 1 else documents
    if fmt == "json":
        return norm(json.loads(output))
    if fmt == "dotenv":
        return parse_dotenv(output)
    if fmt == "ini":
        return parse_ini(output)
    return output


# -- the vectors ------------------------------------------------------------------------

STORE_MODULES = {"dotenv": "gitcrypt_sops.stores.dotenv_store", "ini": "gitcrypt_sops.stores.ini_store"}
FORMAT_OF = {".yaml": "yaml", ".json": "json", ".env": "dotenv", ".ini": "ini", ".bin": "binary"}


def _vector_files() -> list[tuple[Path, str, Path]]:
    found = []
    for pattern in ("yaml/*.enc.yaml", "json/*.enc.json", "rules/*.enc.yaml", "shamir/*.enc.*",
                    "binary/basic.enc.bin", "dotenv/*.enc.env", "ini/*.enc.ini"):
        for path in sorted(VECTORS.glob(pattern)):
            key = AGE_KEYS_BOTH if path.parent.name == "shamir" else AGE_KEY_FILE
            found.append((path, FORMAT_OF[path.suffix], key))
    return found


VECTOR_FILES = _vector_files()
VECTOR_IDS = [str(path.relative_to(VECTORS)) for path, _, _ in VECTOR_FILES]


def test_every_vector_kind_is_covered() -> None:
    assert len(VECTOR_FILES) == 15
    assert {fmt for _, fmt, _ in VECTOR_FILES} == {"yaml", "json", "dotenv", "ini", "binary"}


def _needs_store(fmt: str) -> None:
    """dotenv/INI stores are written separately: skip their vectors until both exist."""
    if fmt in STORE_MODULES:
        pytest.importorskip(STORE_MODULES["dotenv"])
        pytest.importorskip(STORE_MODULES[fmt])


_SOPS_OUTPUT: dict[Path, bytes] = {}


def ours_inprocess(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> bytes:
    """Our CLI's ``main`` in this process (no interpreter start-up): its stdout, exit 0 checked."""
    from gitcrypt_sops import cli

    capsysbinary.readouterr()
    code = cli.main(list(args))
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    return out


def sops_plaintext(sops: Runner, path: Path, key: Path) -> bytes:
    """What ``sops decrypt`` prints for a vector (once per process)."""
    if path not in _SOPS_OUTPUT:
        result = sops("decrypt", str(path), cwd=path.parent, env={"SOPS_AGE_KEY_FILE": str(key)}, check=True)
        assert result.stderr == b"", result.stderr
        _SOPS_OUTPUT[path] = result.stdout
    return _SOPS_OUTPUT[path]


@pytest.mark.parametrize(("path", "fmt", "key"), VECTOR_FILES, ids=VECTOR_IDS)
def test_cli_decrypts_vector_like_sops(sops: Runner, ours: Runner, path: Path, fmt: str, key: Path) -> None:
    _needs_store(fmt)
    expected = sops_plaintext(sops, path, key)
    result = ours("decrypt", str(path), cwd=path.parent, env={"SOPS_AGE_KEY_FILE": str(key)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert as_data(result.stdout, fmt) == as_data(expected, fmt)
    if fmt != "binary":
        assert b"ENC[" not in result.stdout
        assert comment_lines(result.stdout, fmt) == comment_lines(expected, fmt)
    else:
        assert result.stdout == expected


@pytest.mark.parametrize(("path", "fmt", "key"), VECTOR_FILES, ids=VECTOR_IDS)
def test_api_decrypts_vector_like_sops(
    sops: Runner, monkeypatch: pytest.MonkeyPatch, path: Path, fmt: str, key: Path
) -> None:
    _needs_store(fmt)
    import gitcrypt_sops as gs
    from gitcrypt_sops.providers import age

    expected = sops_plaintext(sops, path, key)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    age.clear_cache()
    data = gs.decrypt_file(path)
    if fmt == "binary":
        assert data["data"].encode("utf-8", "surrogateescape") == expected
    elif fmt in ("yaml", "json"):
        assert norm(data) == as_data(expected, fmt)
    else:
        if fmt == "ini" and data.get("DEFAULT") == {}:
            del data["DEFAULT"]  # an empty DEFAULT section exists in the tree but is never written
        assert data == as_data(expected, fmt)


@pytest.mark.parametrize(("path", "fmt", "key"), VECTOR_FILES, ids=VECTOR_IDS)
def test_api_decrypts_vector_bytes_with_mac_checked(monkeypatch: pytest.MonkeyPatch, path: Path, fmt: str,
                                                    key: Path) -> None:
    """The MAC really is verified: one flipped ciphertext byte in the MAC is refused."""
    _needs_store(fmt)
    from gitcrypt_sops import api
    from gitcrypt_sops.errors import SopsError
    from gitcrypt_sops.providers import age

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    age.clear_cache()
    raw = path.read_bytes()
    api.decrypt_data(raw, fmt)
    match = re.search(rb"mac[\"']?\s*[:=]\s*\"?ENC\[AES256_GCM,data:(.)", raw)
    assert match is not None
    flipped = b"B" if match.group(1) != b"B" else b"C"
    tampered = raw[: match.start(1)] + flipped + raw[match.end(1):]
    with pytest.raises(SopsError):
        api.decrypt_data(tampered, fmt)


@pytest.mark.parametrize(("name", "old", "new"), [
    ("yaml/basic.enc.yaml", b"visible-in-plaintext", b"visible-in-plaintexT"),
    ("json/basic.enc.json", b'"visible"', b'"Visible"'),
])
def test_changed_plaintext_value_fails_the_mac(sops: Runner, ours: Runner, name: str, old: bytes, new: bytes,
                                               tmp_path: Path) -> None:
    """A value left in the clear is still covered by the MAC, for sops and for us."""
    raw = (VECTORS / name).read_bytes()
    assert raw.count(old) == 1
    tampered = tmp_path / Path(name).name
    tampered.write_bytes(raw.replace(old, new))
    assert sops("decrypt", str(tampered)).returncode == 51
    result = ours("decrypt", str(tampered))
    assert result.returncode == 51
    assert result.stdout == b""
    assert new in ours("decrypt", "--ignore-mac", str(tampered), check=True).stdout


@pytest.mark.parametrize(("path", "fmt", "key"), VECTOR_FILES, ids=VECTOR_IDS)
def test_filestatus_reports_encrypted(capsysbinary: pytest.CaptureFixture[bytes], path: Path, fmt: str,
                                      key: Path) -> None:
    _needs_store(fmt)
    assert ours_inprocess(capsysbinary, "filestatus", str(path)) == b'{"encrypted":true}\n'


def test_filestatus_reports_plaintext(ours: Runner, sops: Runner) -> None:
    plain = VECTORS / "yaml" / "basic.yaml"
    assert sops("filestatus", str(plain)).stdout.strip() == b'{"encrypted":false}'
    assert ours("filestatus", str(plain), check=True).stdout == b'{"encrypted":false}\n'


# -- --extract ----------------------------------------------------------------------------

BASIC_YAML = VECTORS / "yaml" / "basic.enc.yaml"
BASIC_JSON = VECTORS / "json" / "basic.enc.json"
#: scalars printed raw by both tools (no list index counts a comment element: sops
#: counts comments in list indices and panics on some, see the report)
EXTRACT_SAME = [
    (BASIC_YAML, '["app"]["name"]'),
    (BASIC_YAML, '["app"]["empty"]'),
    (BASIC_YAML, '["unicode"]["ключ"]'),
    (BASIC_YAML, '["unicode"]["emoji"]'),
    (BASIC_YAML, '["multiline_literal"]'),
    (BASIC_YAML, '["multiline_folded"]'),
    (BASIC_YAML, '["quoted_number"]'),
    (BASIC_YAML, '["db_password_unencrypted"]'),
    (BASIC_YAML, '["public_unencrypted"]["nested_child"]'),
    (BASIC_JSON, '["name"]'),
    (BASIC_JSON, '["port"]'),
    (BASIC_JSON, '["ratio"]'),
    (BASIC_JSON, '["whole_float"]'),
    (BASIC_JSON, '["big_int"]'),
    (BASIC_JSON, '["enabled"]'),
    (BASIC_JSON, '["nothing"]'),
    (BASIC_JSON, '["html"]'),
    (BASIC_JSON, '["unicode"]'),
    (BASIC_JSON, '["servers"][1]["tags"][0]'),
    (BASIC_JSON, '["matrix"][0][1]'),
    (BASIC_JSON, '["mixed"][4]["k"]'),
]

#: YAML non-string scalars: sops prints them as a YAML document (Go 'g' floats, "\n")
EXTRACT_YAML_TYPED = [
    '["app"]["port"]',
    '["app"]["ratio"]',
    '["app"]["whole_float"]',
    '["app"]["big_float"]',
    '["app"]["enabled"]',
    '["app"]["nothing"]',
    '["app"]["created"]',
    '["matrix"][0][1]',
]


@pytest.mark.parametrize(("path", "tree_path"), EXTRACT_SAME, ids=[f"{p.suffix}{t}" for p, t in EXTRACT_SAME])
def test_extract_scalar_bytes_match_sops(sops: Runner, capsysbinary: pytest.CaptureFixture[bytes], path: Path,
                                         tree_path: str) -> None:
    expected = sops("decrypt", "--extract", tree_path, str(path), check=True).stdout
    assert ours_inprocess(capsysbinary, "decrypt", "--extract", tree_path, str(path)) == expected


@pytest.mark.parametrize("tree_path", EXTRACT_YAML_TYPED)
def test_extract_typed_yaml_scalar_bytes_match_sops(sops: Runner, capsysbinary: pytest.CaptureFixture[bytes],
                                                    tree_path: str) -> None:
    expected = sops("decrypt", "--extract", tree_path, str(BASIC_YAML), check=True).stdout
    assert ours_inprocess(capsysbinary, "decrypt", "--extract", tree_path, str(BASIC_YAML)) == expected


@pytest.mark.parametrize("tree_path", EXTRACT_YAML_TYPED)
def test_extract_typed_yaml_scalar_same_value(sops: Runner, capsysbinary: pytest.CaptureFixture[bytes],
                                              tree_path: str) -> None:
    """Whatever the bytes, the value printed reads back as sops's value."""
    expected = sops("decrypt", "--extract", tree_path, str(BASIC_YAML), check=True).stdout
    got = ours_inprocess(capsysbinary, "decrypt", "--extract", tree_path, str(BASIC_YAML))
    assert as_data(got, "yaml") == as_data(expected, "yaml")


def test_extract_subtree_matches_sops_as_data(sops: Runner, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    for path, tree_path, fmt in ((BASIC_YAML, '["app"]', "yaml"), (BASIC_YAML, '["matrix"]', "yaml"),
                                 (BASIC_JSON, '["servers"][1]', "json"), (BASIC_JSON, '["mixed"]', "json")):
        expected = sops("decrypt", "--extract", tree_path, str(path), check=True).stdout
        got = ours_inprocess(capsysbinary, "decrypt", "--extract", tree_path, str(path))
        if fmt == "json":
            assert as_data(got, fmt) == as_data(expected, fmt)
        else:
            assert norm(load_yaml(got)) == norm(load_yaml(expected))


def test_api_extract() -> None:
    import gitcrypt_sops as gs

    assert gs.extract_file(BASIC_YAML, '["app"]["port"]') == 8080
    assert gs.extract_file(BASIC_YAML, ["unicode", "ключ"]) == "значение"
    assert gs.extract_file(BASIC_JSON, '["servers"][1]["tags"]') == ["primary", "eu"]
    assert gs.extract_file(BASIC_JSON, '["big_int"]') == 9007199254740992


def test_comparison_helpers_type_scalars_as_sops_does() -> None:
    """The oracle itself: yaml.v3 typing, not PyYAML's YAML 1.1 typing."""
    text = b"a: yes\nb: 1e3\nc: 2024-01-02\nd: 0x1F\ne: 2001-12-14 21:59:43.10 -5\nf: ~\n!!merge <<: {g: on}\n"
    assert load_yaml(text) == [{"a": "yes", "b": 1000.0, "c": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
                                "d": 31, "e": "2001-12-14 21:59:43.10 -5", "f": None, "<<": {"g": "on"}}]
    assert as_data(b"x: 2\n", "yaml") == as_data(b"x: 2.0\n", "yaml")
    assert as_data(b"x: true\n", "yaml") != as_data(b"x: 1\n", "yaml")
    basic = (VECTORS / "yaml" / "basic.yaml").read_bytes()
    assert "# comment between list items" in comment_lines(basic, "yaml")
