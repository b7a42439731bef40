"""``set``, ``unset`` and ``update``: sops 3.11 semantics, stable ciphertext, one clear error line.

Results are compared with what the real ``sops set``/``sops unset`` make from the
same file (data equality, decrypted by sops), and diffs of the encrypted text are
counted: only the changed values, ``lastmodified`` and ``mac`` may change.  The
``--extract`` checks of ``decrypt`` for dotenv, INI and binary files live here too.
"""

from __future__ import annotations

import difflib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from support import AGE_RECIPIENT, VECTORS, Runner, sops_binary

SECRET = "SET-SECRET-4242"

PLAIN_YAML = f"""\
# application settings
app:
  name: demo          # shown in the UI
  password: {SECRET}
  port: 8080
  tags:
    - blue
    # a comment inside a list
    - green
  limits: {{cpu: 2, memory: 512}}
servers:
  - host: a.example.com
    weight: 1
  - host: b.example.com
    weight: 2
token_unencrypted: visible
"""

PLAIN_JSON = json.dumps({"app": {"name": "demo", "password": SECRET, "port": 8080, "tags": ["blue", "green"],
                                 "ratio": 0.5},
                         "servers": [{"host": "a.example.com", "weight": 1}], "token_unencrypted": "visible"},
                        indent=2)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """s.* files encrypted by the real sops, o.* by us (which keeps the YAML layout); made once."""
    directory = tmp_path_factory.mktemp("originals")
    home = directory / "home"
    home.mkdir()
    sops, ours = Runner([sops_binary()], home), Runner([sys.executable, "-m", "gitcrypt_sops"], home)
    (directory / "plain.yaml").write_text(PLAIN_YAML)
    (directory / "plain.json").write_text(PLAIN_JSON)
    for fmt in ("yaml", "json"):
        args = ("encrypt", "--age", AGE_RECIPIENT, f"plain.{fmt}")
        (directory / f"s.{fmt}").write_bytes(sops(*args, cwd=directory, check=True).stdout)
        (directory / f"o.{fmt}").write_bytes(ours(*args, cwd=directory, check=True).stdout)
    return directory


@pytest.fixture
def work(tmp_path: Path, originals: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    for path in originals.iterdir():
        if path.is_file():
            shutil.copy(path, directory / path.name)
    return directory


def decrypt(sops: Runner, path: Path) -> Any:
    fmt = "json" if path.suffix in (".json", ".yaml") else None
    args = ("--output-type", fmt) if fmt else ()
    result = sops("decrypt", *args, str(path), check=True).stdout
    return json.loads(result) if fmt else result


def diff(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) between two texts."""
    old, new = before.decode().splitlines(), after.decode().splitlines()
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


def keys(lines: list[str]) -> list[str]:
    return sorted(line.strip().lstrip("- ").split(":", 1)[0].strip('"') for line in lines)


def changed_keys(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    """Keys of the removed and added lines; ``lastmodified`` always counts as changed
    (within the same second as the previous write its text is the same)."""
    removed, added = diff(before, after)
    old, new = keys(removed), keys(added)
    if "lastmodified" not in old and "lastmodified" not in new:
        old, new = sorted(old + ["lastmodified"]), sorted(new + ["lastmodified"])
    return old, new


def twin(work: Path, name: str) -> tuple[Path, Path]:
    """Two copies of ``name``: one for sops, one for us."""
    theirs, mine = work / f"sops-{name}", work / f"ours-{name}"
    shutil.copy(work / name, theirs)
    shutil.copy(work / name, mine)
    return theirs, mine


# -- sops compatibility ------------------------------------------------------------------------

SET_CASES = [
    ('["app"]["password"]', '"new-password"'),
    ('["app"]["port"]', "9090"),
    ('["app"]["new_key"]', '"fresh"'),
    ('["brand"]["new"]["deep"]', "true"),
    ('["app"]["tags"][7]', '"appended"'),
    ('["servers"][0]["host"]', '{"name": "x", "ports": [1, 2.5, null]}'),
    ('["app"]["name"]["inner"]', '"replaces the scalar"'),
    ('["app"]', '"the whole subtree becomes a string"'),
]

UNSET_CASES = ['["app"]["password"]', '["app"]["tags"][0]', '["servers"][0]', '["app"]["limits"]', '["app"]']


@pytest.mark.parametrize(("path", "value"), SET_CASES)
def test_set_matches_sops(path: str, value: str, work: Path, sops: Runner, ours: Runner) -> None:
    theirs, mine = twin(work, "s.yaml")
    sops("set", theirs.name, path, value, cwd=work, check=True)
    ours("set", mine.name, path, value, cwd=work, check=True)
    assert decrypt(sops, mine) == decrypt(sops, theirs)


def in_process(path: Path) -> Any:
    import gitcrypt_sops as gs

    return gs.decrypt_file(path)


@pytest.mark.parametrize("name", ["o.yaml", "s.json"])
def test_set_and_unset_sequence_matches_sops(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    """Every case applied in turn by both tools; the data agree after each step."""
    theirs, mine = twin(work, name)
    steps = [("set", path, value) for path, value in SET_CASES[:-1]]
    steps += [("unset", path) for path in UNSET_CASES if not (name.endswith(".json") and "limits" in path)]
    steps.append(("set",) + SET_CASES[-1])
    for step in steps:
        sops(step[0], theirs.name, *step[1:], cwd=work, check=True)
        ours(step[0], mine.name, *step[1:], cwd=work, check=True)
        assert in_process(mine) == in_process(theirs), step
    assert decrypt(sops, mine) == decrypt(sops, theirs)


@pytest.mark.parametrize("path", UNSET_CASES)
def test_unset_matches_sops(path: str, work: Path, sops: Runner, ours: Runner) -> None:
    theirs, mine = twin(work, "s.yaml")
    sops("unset", theirs.name, path, cwd=work, check=True)
    ours("unset", mine.name, path, cwd=work, check=True)
    assert decrypt(sops, mine) == decrypt(sops, theirs)


def test_set_dotenv_and_ini_match_sops(tmp_path: Path, sops: Runner, ours: Runner) -> None:
    for name, path in (("basic.enc.env", '["DB_PASSWORD"]'), ("basic.enc.ini", '["database"]["password"]')):
        folder = "dotenv" if name.endswith(".env") else "ini"
        for tool in ("sops", "ours"):
            shutil.copy(VECTORS / folder / name, tmp_path / f"{tool}-{name}")
        sops("set", f"sops-{name}", path, '"changed value"', cwd=tmp_path, check=True)
        ours("set", f"ours-{name}", path, '"changed value"', cwd=tmp_path, check=True)
        assert decrypt(sops, tmp_path / f"ours-{name}") == decrypt(sops, tmp_path / f"sops-{name}")
        sops("unset", f"sops-{name}", path, cwd=tmp_path, check=True)
        ours("unset", f"ours-{name}", path, cwd=tmp_path, check=True)
        assert decrypt(sops, tmp_path / f"ours-{name}") == decrypt(sops, tmp_path / f"sops-{name}")


# -- stable ciphertext: counted lines ------------------------------------------------------------


@pytest.mark.parametrize("name", ["s.yaml", "o.yaml", "s.json", "o.json"])
def test_set_changes_only_the_value_lastmodified_and_mac(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    target = work / name
    before = target.read_bytes()
    ours("set", name, '["app"]["password"]', '"rotated"', cwd=work, check=True)
    assert changed_keys(before, target.read_bytes()) == (["lastmodified", "mac", "password"],) * 2
    assert decrypt(sops, target)["app"]["password"] == "rotated"


@pytest.mark.parametrize("name", ["s.yaml", "o.yaml"])
def test_set_new_key_adds_one_line(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    target = work / name
    before = target.read_bytes()
    ours("set", name, '["app"]["region"]', '"eu-west-1"', cwd=work, check=True)
    assert changed_keys(before, target.read_bytes()) == (["lastmodified", "mac"], ["lastmodified", "mac", "region"])
    assert decrypt(sops, target)["app"]["region"] == "eu-west-1"


@pytest.mark.parametrize("name", ["s.yaml", "o.yaml"])
def test_unset_removes_only_its_lines(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    target = work / name
    before = target.read_bytes()
    ours("unset", name, '["servers"][0]', cwd=work, check=True)
    assert changed_keys(before, target.read_bytes()) == (["host", "lastmodified", "mac", "weight"],
                                                         ["lastmodified", "mac"])
    assert decrypt(sops, target)["servers"] == [{"host": "b.example.com", "weight": 2}]


def test_set_keeps_our_yaml_layout(work: Path, ours: Runner) -> None:
    """Comments, 2-space indentation and the flow mapping stay as written."""
    ours("set", "o.yaml", '["app"]["limits"]["cpu"]', "4", cwd=work, check=True)
    ours("set", "o.yaml", '["servers"][1]["zone"]', '"b"', cwd=work, check=True)
    decrypted = ours("decrypt", "o.yaml", cwd=work, check=True).stdout.decode()
    assert decrypted == PLAIN_YAML.replace("cpu: 2", "cpu: 4").replace(
        "    weight: 2\n", "    weight: 2\n    zone: b\n")


def test_set_json_number_keeps_a_sops_float(work: Path, ours: Runner) -> None:
    """sops 3.11 wrote 8080 as a float; setting 8080 again changes nothing (--idempotent writes nothing)."""
    target = work / "s.json"
    before = target.read_bytes()
    assert ours("set", "--idempotent", "s.json", '["app"]["port"]', "8080", cwd=work).returncode == 0
    assert target.read_bytes() == before
    ours("set", "s.json", '["app"]["port"]', "8080", cwd=work, check=True)
    assert changed_keys(before, target.read_bytes()) == (["lastmodified", "mac"],) * 2


def test_sops_decrypts_after_many_changes(work: Path, sops: Runner, ours: Runner) -> None:
    for args in (('["a"]', '"1"'), ('["app"]["tags"][0]', '"red"'), ('["app"]["limits"]', '{"cpu": 8}')):
        ours("set", "o.yaml", *args, cwd=work, check=True)
    ours("unset", "o.yaml", '["token_unencrypted"]', cwd=work, check=True)
    data = decrypt(sops, work / "o.yaml")
    assert data["a"] == "1" and data["app"]["tags"] == ["red", "green"] and data["app"]["limits"] == {"cpu": 8}
    assert "token_unencrypted" not in data


# -- --idempotent, value sources -------------------------------------------------------------------


def test_set_idempotent_does_not_write_an_unchanged_value(work: Path, ours: Runner) -> None:
    before = (work / "o.yaml").read_bytes()
    result = ours("set", "--idempotent", "o.yaml", '["app"]["password"]', json.dumps(SECRET), cwd=work)
    assert result.returncode == 0 and (work / "o.yaml").read_bytes() == before
    # without --idempotent sops writes anyway (new lastmodified and mac)
    ours("set", "o.yaml", '["app"]["password"]', json.dumps(SECRET), cwd=work, check=True)
    assert changed_keys(before, (work / "o.yaml").read_bytes()) == (["lastmodified", "mac"],) * 2


def test_unset_idempotent(work: Path, ours: Runner) -> None:
    before = (work / "o.yaml").read_bytes()
    result = ours("unset", "o.yaml", '["app"]["nope"]', cwd=work)
    assert result.returncode == 1 and b"not found" in result.stderr
    assert ours("unset", "--idempotent", "o.yaml", '["app"]["nope"]', cwd=work).returncode == 0
    assert (work / "o.yaml").read_bytes() == before


def test_value_file_and_stdin(work: Path, sops: Runner, ours: Runner) -> None:
    (work / "value.json").write_text('{"k": "from file"}')
    ours("set", "--value-file", "o.yaml", '["a"]', "value.json", cwd=work, check=True)
    ours("set", "--value-stdin", "o.yaml", '["b"]', cwd=work, input=b'"from stdin"', check=True)
    data = decrypt(sops, work / "o.yaml")
    assert data["a"] == {"k": "from file"} and data["b"] == "from stdin"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "words"), [
    (("set", "o.yaml", "a.b", '"x"'), 7, b"index format"),
    (("set", "o.yaml", '["a"', '"x"'), 7, b"index format"),
    (("set", "o.yaml", '["a"]', f"not-json-{SECRET}"), 7, b"not valid JSON"),
    (("set", "o.yaml", '["a"]', "99999999999999999999"), 7, b"int64"),
    (("unset", "o.yaml", "bad"), 7, b"index format"),
    (("set", "missing.yaml", '["a"]', '"x"'), 2, b"no such file"),
    (("unset", "missing.yaml", '["a"]'), 2, b"no such file"),
    (("set", "o.yaml", '["a"]'), 100, b"three arguments"),
    (("set", "--value-stdin", "o.yaml", '["a"]', '"x"'), 100, b"two arguments"),
    (("set", "--value-file", "--value-stdin", "o.yaml", '["a"]'), 1, b"both"),
    (("set", "--value-file", "o.yaml", '["a"]', "missing.json"), 1, b"value file"),
    (("set", "o.yaml", '["app"]["tags"]["k"]', '"x"'), 1, b"is a list"),
    (("set", "o.yaml", '["app"]["tags"][-1]', '"x"'), 1, b"negative"),
    (("unset", "o.yaml", '["app"]["port"]["deeper"]'), 1, b"single value"),
    (("set", "plain.yaml", '["a"]', '"x"'), 1, b"metadata not found"),
])
def test_bad_input_is_one_line_and_leaves_the_file(args: tuple[str, ...], code: int, words: bytes, work: Path,
                                                   ours: Runner) -> None:
    before = {path.name: path.read_bytes() for path in work.iterdir()}
    result = ours(*args, cwd=work)
    assert result.returncode == code, result.stderr
    assert words in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(b"gitcrypt-sops: ")
    assert SECRET.encode() not in result.stderr and result.stdout == b""
    assert {path.name: path.read_bytes() for path in work.iterdir()} == before


@pytest.mark.parametrize(("args", "code"), [
    (("set", "s.yaml", "a.b", '"x"'), 7),
    (("set", "s.yaml", '["a"]', "not-json"), 7),
    (("set", "missing.yaml", '["a"]', '"x"'), 2),
    (("unset", "s.yaml", '["nope"]'), 1),
    (("unset", "--idempotent", "s.yaml", '["nope"]'), 0),
    (("set", "s.yaml", '["a"]'), 100),
])
def test_exit_codes_match_sops(args: tuple[str, ...], code: int, work: Path, sops: Runner, ours: Runner) -> None:
    assert sops(*args, cwd=work).returncode == code
    assert ours(*args, cwd=work).returncode == code


# -- update --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["s.yaml", "o.yaml", "s.json", "o.json"])
def test_update_from_changed_plaintext(name: str, work: Path, sops: Runner, ours: Runner) -> None:
    """A CI job regenerates the plaintext: one changed value gives a three-line diff."""
    fmt = name.split(".")[1]
    target = work / name
    before = target.read_bytes()
    plaintext = ours("decrypt", name, cwd=work, check=True).stdout
    (work / f"new.{fmt}").write_bytes(plaintext.replace(SECRET.encode(), b"regenerated-by-ci"))
    ours("update", name, "--from", f"new.{fmt}", cwd=work, check=True)
    assert changed_keys(before, target.read_bytes()) == (["lastmodified", "mac", "password"],) * 2
    assert decrypt(sops, target)["app"]["password"] == "regenerated-by-ci"


@pytest.mark.parametrize("name", ["s.yaml", "o.yaml", "s.json"])
def test_update_with_the_same_plaintext_writes_nothing(name: str, work: Path, ours: Runner) -> None:
    fmt = name.split(".")[1]
    before = (work / name).read_bytes()
    plaintext = ours("decrypt", name, cwd=work, check=True).stdout
    assert ours("update", name, "--from", "-", cwd=work, input=plaintext).returncode == 0
    assert (work / name).read_bytes() == before
    (work / f"same.{fmt}").write_bytes(plaintext)
    assert ours("update", name, "--from", f"same.{fmt}", cwd=work).returncode == 0
    assert (work / name).read_bytes() == before


def test_update_from_another_format(work: Path, sops: Runner, ours: Runner) -> None:
    """JSON generated by a script updates a YAML file (layout: the emitter's, values: stable)."""
    data = json.loads(ours("decrypt", "--output-type", "json", "s.yaml", cwd=work, check=True).stdout)
    data["app"]["port"] = 9999
    (work / "generated.json").write_text(json.dumps(data))
    before = (work / "s.yaml").read_bytes()
    ours("update", "s.yaml", "--from", "generated.json", cwd=work, check=True)
    removed, _ = diff(before, (work / "s.yaml").read_bytes())
    assert "port" in keys(removed) and "password" not in keys(removed)
    assert decrypt(sops, work / "s.yaml")["app"]["port"] == 9999


def test_update_errors(work: Path, ours: Runner) -> None:
    before = (work / "o.yaml").read_bytes()
    (work / "broken.yaml").write_text(f"a: [{SECRET}\n")
    result = ours("update", "o.yaml", "--from", "broken.yaml", cwd=work)
    assert result.returncode == 2 and SECRET.encode() not in result.stderr
    (work / "withsops.yaml").write_text("sops: {}\na: 1\n")
    assert ours("update", "o.yaml", "--from", "withsops.yaml", cwd=work).returncode == 203
    assert ours("update", "o.yaml", "--from", "missing.yaml", cwd=work).returncode == 2
    assert ours("update", "nothere.yaml", "--from", "plain.yaml", cwd=work).returncode == 2
    assert (work / "o.yaml").read_bytes() == before


# -- decrypt --extract on every format --------------------------------------------------------------


@pytest.mark.parametrize(("vector", "path", "extra"), [
    ("dotenv/basic.enc.env", '["DB_PASSWORD"]', ()),
    ("dotenv/basic.enc.env", '["MULTILINE"]', ()),
    ("dotenv/basic.enc.env", '["EMPTY"]', ()),
    ("dotenv/basic.enc.env", '["PUBLIC_unencrypted"]', ("--output-type", "json")),
    ("ini/basic.enc.ini", '["database"]["password"]', ()),
    ("ini/basic.enc.ini", '["api"]["url"]', ()),
    ("ini/basic.enc.ini", '["database"]', ("--output-type", "json")),
    ("binary/basic.enc.bin", '["data"]', ()),
    ("binary/basic.enc.bin", '["data"]', ("--output-type", "json")),
    ("json/basic.enc.json", '["servers"][1]', ()),
    ("yaml/basic.enc.yaml", '["app"]["port"]', ()),
])
def test_extract_matches_sops(vector: str, path: str, extra: tuple[str, ...], sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", path, *extra, str(VECTORS / vector))
    expected = sops(*args, check=True).stdout
    assert ours(*args, check=True).stdout == expected


@pytest.mark.parametrize("vector", ["dotenv/basic.enc.env", "ini/basic.enc.ini", "binary/basic.enc.bin"])
def test_extract_missing_path_fails_like_sops(vector: str, sops: Runner, ours: Runner) -> None:
    args = ("decrypt", "--extract", '["nope"]', str(VECTORS / vector))
    assert ours(*args).returncode == sops(*args).returncode != 0


# -- the metadata keeps its text -------------------------------------------------------------------


def test_metadata_block_keeps_its_own_order(work: Path, sops: Runner, ours: Runner) -> None:
    """A sops block in another order (as sops 3.13 writes it, or edited by hand) is not rewritten."""
    text = (work / "s.yaml").read_text()
    version = next(line for line in text.splitlines() if line.startswith("    version:"))
    reordered = text.replace(version + "\n", "").replace("sops:\n", f"sops:\n{version}\n")
    (work / "s.yaml").write_text(reordered)
    ours("set", "s.yaml", '["app"]["port"]', "1", cwd=work, check=True)
    assert changed_keys(reordered.encode(), (work / "s.yaml").read_bytes()) == (["lastmodified", "mac", "port"],) * 2
    assert decrypt(sops, work / "s.yaml")["app"]["port"] == 1


@pytest.mark.parametrize(("vector", "path", "key"), [
    ("ini/basic.enc.ini", '["database"]["password"]', "password"),
    ("dotenv/basic.enc.env", '["DB_PASSWORD"]', "DB_PASSWORD"),
])
def test_flat_formats_change_three_lines(vector: str, path: str, key: str, tmp_path: Path, sops: Runner,
                                         ours: Runner) -> None:
    """sops 3.11 writes the INI [sops] section in random order; it stays in that order."""
    target = tmp_path / Path(vector).name
    shutil.copy(VECTORS / vector, target)
    before = target.read_bytes()
    ours("set", target.name, path, '"changed"', cwd=tmp_path, check=True)
    removed, added = diff(before, target.read_bytes())
    names = sorted(line.split("=", 1)[0].strip().removeprefix("sops_") for line in removed)
    assert names == sorted(line.split("=", 1)[0].strip().removeprefix("sops_") for line in added)
    assert names == sorted([key, "lastmodified", "mac"])
    assert b"changed" in sops("decrypt", target.name, cwd=tmp_path, check=True).stdout


def test_paths_accept_sops_forms() -> None:
    from gitcrypt_sops import edits

    assert edits.parse_path('["a"][0][\'b c\']["d\\"e"]') == ["a", 0, "b c", 'd"e']
    assert edits.parse_path(" [1] ") == [1]
    for bad in ("", "a", '["a"', "[x]", '["a"]b', "[]"):
        with pytest.raises(Exception) as info:
            edits.parse_path(bad)
        assert getattr(info.value, "exit_code", None) == 7
