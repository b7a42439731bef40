"""``edit``: a scripted editor changes the private temporary plaintext, the file keeps its ciphertext.

The editor is a small Python script driven by a plan file (one action list per
invocation); it records the temporary file's path and modes, so the tests check
0600/0700, the file name, and that the plaintext is gone afterwards, including
when the editor fails or is killed and when we get SIGTERM or Ctrl+C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import AGE_KEY_FILE, AGE_RECIPIENT, Runner, scrubbed_env, sops_binary

SECRET = "EDIT-SECRET-7781"

PLAIN_YAML = f"""\
# database settings
db:
  user: admin   # the login
  password: {SECRET}
  port: 5432
  ratio: 0.5
servers:
  - a.example.com
  # second one
  - b.example.com
plain_unencrypted: visible
"""

PLAIN_JSON = json.dumps({"db": {"user": "admin", "password": SECRET, "port": 5432, "ratio": 0.5},
                         "servers": ["a.example.com", "b.example.com"], "plain_unencrypted": "visible"}, indent=2)

EDITOR_SCRIPT = r'''
import json, os, signal, sys, time
path = sys.argv[-1]
log_path, plan_path = os.environ["EDIT_LOG"], os.environ["EDIT_PLAN"]
with open(log_path, "a") as log:
    log.write(json.dumps({"path": path, "mode": os.stat(path).st_mode & 0o777,
                          "dir_mode": os.stat(os.path.dirname(path)).st_mode & 0o777,
                          "pid": os.getpid(), "args": sys.argv[1:-1]}) + "\n")
with open(log_path) as log:
    run = len(log.read().splitlines()) - 1
plans = json.load(open(plan_path))
for action, arg in plans[min(run, len(plans) - 1)]:
    if action == "replace":
        text = open(path).read()
        assert arg[0] in text, arg[0]
        open(path, "w").write(text.replace(arg[0], arg[1]))
    elif action == "write":
        open(path, "w").write(arg)
    elif action == "append":
        open(path, "a").write(arg)
    elif action == "exit":
        sys.exit(arg)
    elif action == "kill_self":
        os.kill(os.getpid(), arg)
    elif action == "term_parent":
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(30)
    elif action == "ignore_sigint":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    elif action == "interrupt_group":
        os.killpg(os.getpgrp(), signal.SIGINT)
        time.sleep(30)
    elif action == "interrupt_group_and_continue":
        os.killpg(os.getpgrp(), signal.SIGINT)
        time.sleep(0.2)
'''


class Editor:
    """The scripted editor: ``plan`` sets what each invocation does, ``runs`` says what it saw."""

    def __init__(self, directory: Path) -> None:
        self.script = directory / "fake_editor.py"
        self.script.write_text(EDITOR_SCRIPT)
        self.log = directory / "editor.log"
        self.plan_file = directory / "editor.plan.json"

    def plan(self, *invocations: list[tuple[str, Any]]) -> None:
        self.plan_file.write_text(json.dumps([list(map(list, actions)) for actions in invocations]))
        self.log.unlink(missing_ok=True)

    def env(self, variable: str = "EDITOR", extra_args: str = "") -> dict[str, str]:
        command = f"{sys.executable} {self.script}" + (f" {extra_args}" if extra_args else "")
        return {variable: command, "EDIT_LOG": str(self.log), "EDIT_PLAN": str(self.plan_file)}

    def runs(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def editor(tmp_path: Path) -> Editor:
    directory = tmp_path / "editor"
    directory.mkdir()
    return Editor(directory)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Encrypted files, made once: by the real sops (s.*) and by us (o.yaml)."""
    directory = tmp_path_factory.mktemp("originals")
    home = directory / "home"
    home.mkdir()
    sops, ours = Runner([sops_binary()], home), Runner([sys.executable, "-m", "gitcrypt_sops"], home)
    (directory / "plain.yaml").write_text(PLAIN_YAML)
    (directory / "plain.json").write_text(PLAIN_JSON)
    for fmt in ("yaml", "json"):
        encrypted = sops("encrypt", "--age", AGE_RECIPIENT, f"plain.{fmt}", cwd=directory, check=True).stdout
        (directory / f"s.{fmt}").write_bytes(encrypted)
    (directory / "o.yaml").write_bytes(ours("encrypt", "--age", AGE_RECIPIENT, "plain.yaml", cwd=directory,
                                            check=True).stdout)
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
    """The real sops decrypts ``path``; returns the data (JSON output, parsed)."""
    result = sops("decrypt", "--output-type", "json", str(path), check=True)
    return json.loads(result.stdout)


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    """Pairs of (old line, new line) that differ; the files must have the same number of lines."""
    old, new = before.decode().splitlines(), after.decode().splitlines()
    assert len(old) == len(new), "a line was added or removed"
    return [(a, b) for a, b in zip(old, new) if a != b]


def line_key(line: str) -> str:
    return line.strip().split(":", 1)[0].strip('"')


def changed_keys(before: bytes, after: bytes) -> list[str]:
    """Keys of the changed lines; ``lastmodified`` always counts (it keeps its text within one second)."""
    found = sorted(line_key(old) for old, _ in changed_lines(before, after))
    return found if "lastmodified" in found else sorted(found + ["lastmodified"])


def assert_temp_gone(runs: list[dict[str, Any]]) -> None:
    assert runs, "the editor never ran"
    for run in runs:
        assert not os.path.exists(run["path"])
        assert not os.path.exists(os.path.dirname(run["path"]))


def assert_no_secret(result: subprocess.CompletedProcess[bytes]) -> None:
    assert SECRET.encode() not in result.stderr and SECRET.encode() not in result.stdout


# -- the temporary file ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_noop_edit_exits_200_and_leaves_the_file(fmt: str, work: Path, ours: Runner, editor: Editor) -> None:
    target = work / f"s.{fmt}"
    before = target.read_bytes()
    editor.plan([])
    result = ours("edit", target.name, cwd=work, env=editor.env())
    assert result.returncode == 200, result.stderr
    assert b"has not changed" in result.stderr
    assert target.read_bytes() == before
    (run,) = editor.runs()
    assert run["mode"] == 0o600 and run["dir_mode"] == 0o700
    assert os.path.basename(run["path"]) == target.name  # same name, so the editor picks the syntax
    assert_temp_gone([run])
    assert_no_secret(result)


def test_temp_file_holds_the_layout_kept_plaintext(work: Path, ours: Runner, editor: Editor) -> None:
    """The editor sees the file's own layout: comments and 2-space indentation as written."""
    copy_of = work / "seen.yaml"
    editor.plan([("replace", ["admin", "admin"])])  # no change, but lets us read the file first
    script = editor.script.read_text().replace(
        "for action, arg in", f"open({str(copy_of)!r}, 'w').write(open(path).read())\nfor action, arg in", 1)
    editor.script.write_text(script)
    result = ours("edit", "o.yaml", cwd=work, env=editor.env())
    assert result.returncode == 200
    assert copy_of.read_text() == PLAIN_YAML


def test_sops_editor_wins_and_arguments_are_split(work: Path, ours: Runner, editor: Editor) -> None:
    editor.plan([("replace", ["5432", "6543"])])
    env = {**editor.env("SOPS_EDITOR", extra_args="--wait 'two words'"), "EDITOR": "/nonexistent/editor"}
    result = ours("edit", "s.yaml", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert editor.runs()[0]["args"] == ["--wait", "two words"]


# -- stable ciphertext ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_edit_of_one_value_changes_three_lines(fmt: str, work: Path, ours: Runner, sops: Runner,
                                              editor: Editor) -> None:
    target = work / f"s.{fmt}"
    before = target.read_bytes()
    editor.plan([("replace", [SECRET, "rotated-password"])])
    result = ours("edit", target.name, cwd=work, env=editor.env())
    assert result.returncode == 0, result.stderr
    assert changed_keys(before, target.read_bytes()) == ["lastmodified", "mac", "password"]
    assert_temp_gone(editor.runs())
    data = decrypt(sops, target)
    assert data["db"]["password"] == "rotated-password"
    assert data["db"]["port"] == 5432 and data["servers"] == ["a.example.com", "b.example.com"]


def test_edit_keeps_sops_json_floats(work: Path, ours: Runner, sops: Runner, editor: Editor) -> None:
    """sops 3.11 stores JSON 5432 as a float; the edited plaintext reads it as an int, but it is unchanged."""
    target = work / "s.json"
    assert b"type:float" in target.read_bytes()
    before = target.read_bytes()
    editor.plan([("replace", ['"user": "admin"', '"user": "root"'])])
    assert ours("edit", "s.json", cwd=work, env=editor.env()).returncode == 0
    assert changed_keys(before, target.read_bytes()) == ["lastmodified", "mac", "user"]
    assert decrypt(sops, target)["db"]["user"] == "root"


@pytest.mark.parametrize(("name", "indent"), [("s.yaml", "    "), ("o.yaml", "  ")])
def test_edit_adding_a_key_keeps_everything_else(name: str, indent: str, work: Path, ours: Runner, sops: Runner,
                                                 editor: Editor) -> None:
    target = work / name
    before = target.read_bytes().decode().splitlines()
    editor.plan([("replace", [f"{indent}port: 5432\n", f"{indent}port: 5432\n{indent}host: db.internal\n"])])
    assert ours("edit", name, cwd=work, env=editor.env()).returncode == 0
    after = target.read_bytes().decode().splitlines()
    removed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    removed_keys, added_keys = {line_key(line) for line in removed}, {line_key(line) for line in added}
    assert removed_keys - {"lastmodified"} == {"mac"}
    assert added_keys - {"lastmodified"} == {"host", "mac"}
    assert ("lastmodified" in removed_keys) == ("lastmodified" in added_keys)
    assert decrypt(sops, target)["db"]["host"] == "db.internal"


def test_edit_of_a_file_we_encrypted(work: Path, ours: Runner, sops: Runner, editor: Editor) -> None:
    target = work / "o.yaml"
    before = target.read_bytes()
    editor.plan([("replace", ["ratio: 0.5", "ratio: 0.75"])])
    assert ours("edit", "o.yaml", cwd=work, env=editor.env()).returncode == 0
    assert changed_keys(before, target.read_bytes()) == ["lastmodified", "mac", "ratio"]
    assert decrypt(sops, target)["db"]["ratio"] == 0.75


# -- refusing bad edits ----------------------------------------------------------------------


@pytest.mark.parametrize(("content", "code", "words"), [
    (f"db: [unclosed\npassword: {SECRET}\n", 2, b"invalid YAML"),
    (f"sops: 1\npassword: {SECRET}\n", 203, b"'sops' key"),
    ("", 92, b"empty"),
])
def test_broken_document_aborts_without_a_terminal(content: str, code: int, words: bytes, work: Path,
                                                   ours: Runner, editor: Editor) -> None:
    before = (work / "s.yaml").read_bytes()
    editor.plan([("write", content)])
    result = ours("edit", "s.yaml", cwd=work, env=editor.env())
    assert result.returncode == code
    assert words in result.stderr and b"not saved" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert (work / "s.yaml").read_bytes() == before
    assert_temp_gone(editor.runs())
    assert_no_secret(result)


def test_broken_json_aborts(work: Path, ours: Runner, editor: Editor) -> None:
    before = (work / "s.json").read_bytes()
    editor.plan([("replace", ['"port": 5432', '"port": 5432,,'])])
    result = ours("edit", "s.json", cwd=work, env=editor.env())
    assert result.returncode == 2 and b"invalid JSON" in result.stderr
    assert (work / "s.json").read_bytes() == before


def test_broken_document_reopens_the_editor_on_a_terminal(work: Path, ours: Runner, sops: Runner,
                                                          editor: Editor) -> None:
    """On a terminal the error is shown and Enter returns to the editor with the broken text."""
    import pty

    editor.plan([("replace", ["port: 5432", "port: [5432"])], [("replace", ["port: [5432", "port: 5433"])])
    master, slave = pty.openpty()
    env = scrubbed_env(ours.home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE), **editor.env()})
    process = subprocess.Popen([*ours.argv0, "edit", "s.yaml"], cwd=work, env=env, stdin=slave, stdout=slave,
                               stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Press Enter" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(master, 4096)
        except OSError:
            break
    os.write(master, b"\n")
    assert process.wait(timeout=60) == 0
    with_tail = seen
    os.close(master)
    assert b"invalid YAML" in with_tail and SECRET.encode() not in with_tail
    runs = editor.runs()
    assert len(runs) == 2 and runs[0]["path"] == runs[1]["path"]
    assert_temp_gone(runs)
    assert decrypt(sops, work / "s.yaml")["db"]["port"] == 5433


# -- the editor failing, signals -----------------------------------------------------------------


def test_editor_failing_exits_201(work: Path, ours: Runner, editor: Editor) -> None:
    before = (work / "s.yaml").read_bytes()
    editor.plan([("replace", [SECRET, "changed"]), ("exit", 3)])
    result = ours("edit", "s.yaml", cwd=work, env=editor.env())
    assert result.returncode == 201
    assert b"status 3" in result.stderr and len(result.stderr.splitlines()) == 1
    assert (work / "s.yaml").read_bytes() == before
    assert_temp_gone(editor.runs())


def test_editor_killed_exits_201(work: Path, ours: Runner, editor: Editor) -> None:
    before = (work / "s.yaml").read_bytes()
    editor.plan([("replace", [SECRET, "changed"]), ("kill_self", int(signal.SIGKILL))])
    result = ours("edit", "s.yaml", cwd=work, env=editor.env())
    assert result.returncode == 201 and b"SIGKILL" in result.stderr
    assert (work / "s.yaml").read_bytes() == before
    assert_temp_gone(editor.runs())


def test_missing_editor_exits_201(work: Path, ours: Runner, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = ours("edit", "s.yaml", cwd=work, env={"PATH": str(empty)})
    assert result.returncode == 201 and b"no editor" in result.stderr
    result = ours("edit", "s.yaml", cwd=work, env={"EDITOR": "'unbalanced"})
    assert result.returncode == 201 and b"$EDITOR" in result.stderr
    result = ours("edit", "s.yaml", cwd=work, env={"EDITOR": str(empty / "nothing-here")})
    assert result.returncode == 201


def _run_in_own_session(ours: Runner, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    full = scrubbed_env(ours.home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE), **env})
    return subprocess.run([*ours.argv0, "edit", "s.yaml"], cwd=work, env=full, capture_output=True, timeout=60,
                          start_new_session=True, check=False)


def _gone(pid: int) -> bool:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_removes_the_plaintext_and_stops_the_editor(work: Path, ours: Runner, editor: Editor) -> None:
    before = (work / "s.yaml").read_bytes()
    editor.plan([("replace", [SECRET, "changed"]), ("term_parent", None)])
    result = _run_in_own_session(ours, work, editor.env())
    assert result.returncode == 143, result.stderr
    assert b"SIGTERM" in result.stderr
    (run,) = editor.runs()
    assert_temp_gone([run])
    assert _gone(run["pid"])
    assert (work / "s.yaml").read_bytes() == before


def test_ctrl_c_that_ends_the_editor_abandons_the_edit(work: Path, ours: Runner, editor: Editor) -> None:
    before = (work / "s.yaml").read_bytes()
    editor.plan([("replace", [SECRET, "changed"]), ("interrupt_group", None)])
    result = _run_in_own_session(ours, work, editor.env())
    assert result.returncode == 85, result.stderr
    assert_temp_gone(editor.runs())
    assert (work / "s.yaml").read_bytes() == before


def test_ctrl_c_inside_an_editor_that_ignores_it_is_the_editors(work: Path, ours: Runner, sops: Runner,
                                                                editor: Editor) -> None:
    """Like git: vim uses Ctrl+C itself, so an editor that survives it finishes the edit normally."""
    editor.plan([("ignore_sigint", None), ("interrupt_group_and_continue", None), ("replace", [SECRET, "kept"])])
    result = _run_in_own_session(ours, work, editor.env())
    assert result.returncode == 0, result.stderr
    assert_temp_gone(editor.runs())
    assert decrypt(sops, work / "s.yaml")["db"]["password"] == "kept"


# -- new files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "old", "new"), [
    ("new.yaml", "example_value", "mine"),
    ("new.json", "example_value", "mine"),
    ("new.env", "example_value", "mine"),
    ("new.ini", "example_value", "mine"),
    ("new.bin", "Edit me", "Mine"),
])
def test_new_file_starts_from_an_example(name: str, old: str, new: str, work: Path, ours: Runner,
                                         sops: Runner, editor: Editor) -> None:
    editor.plan([("replace", [old, new])])
    result = ours("edit", "--age", AGE_RECIPIENT, name, cwd=work, env=editor.env())
    assert result.returncode == 0, result.stderr
    (run,) = editor.runs()
    assert run["mode"] == 0o600 and os.path.basename(run["path"]) == name
    assert_temp_gone([run])
    decrypted = sops("decrypt", name, cwd=work, check=True).stdout
    assert new.encode() in decrypted and old.encode() not in decrypted


def test_new_file_unchanged_is_not_created(work: Path, ours: Runner, editor: Editor) -> None:
    editor.plan([])
    result = ours("edit", "--age", AGE_RECIPIENT, "fresh.yaml", cwd=work, env=editor.env())
    assert result.returncode == 200
    assert not (work / "fresh.yaml").exists()


def test_new_file_uses_the_creation_rule(work: Path, ours: Runner, sops: Runner, editor: Editor) -> None:
    (work / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: secrets/.*\n    encrypted_regex: ^hello$\n    age: {AGE_RECIPIENT}\n")
    (work / "secrets").mkdir()
    editor.plan([("replace", ["example_key: example_value", "example_key: stays-plain"])])
    result = ours("edit", "secrets/app.yaml", cwd=work, env=editor.env())
    assert result.returncode == 0, result.stderr
    text = (work / "secrets" / "app.yaml").read_text()
    assert "example_key: stays-plain" in text and "encrypted_regex: ^hello$" in text
    assert yaml.safe_load(sops("decrypt", "secrets/app.yaml", cwd=work, check=True).stdout)["example_key"] == \
        "stays-plain"


def test_new_file_without_recipients_is_refused(work: Path, ours: Runner, editor: Editor) -> None:
    editor.plan([("replace", ["example_value", "x"])])
    result = ours("edit", "nokeys.yaml", cwd=work, env=editor.env())
    assert result.returncode == 1 and b"no recipients" in result.stderr
    assert editor.runs() == [] and not (work / "nokeys.yaml").exists()


def test_edit_of_a_plaintext_file_is_refused(work: Path, ours: Runner, editor: Editor) -> None:
    editor.plan([("replace", ["admin", "root"])])
    result = ours("edit", "plain.yaml", cwd=work, env=editor.env())
    assert result.returncode == 1 and b"metadata not found" in result.stderr
    assert (work / "plain.yaml").read_text() == PLAIN_YAML and editor.runs() == []


def test_no_file_argument_exits_100(work: Path, ours: Runner) -> None:
    assert ours("edit", cwd=work).returncode == 100


def test_in_process_edit_restores_signal_handlers(tmp_path: Path, editor: Editor,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The library entry point leaves the caller's signal handlers as they were."""
    from gitcrypt_sops import edits

    target = tmp_path / "lib.yaml"
    before_int, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    editor.plan([("replace", ["example_value", "library"])])
    for name, value in editor.env().items():
        if name.startswith("EDIT_"):
            monkeypatch.setenv(name, value)
    from gitcrypt_sops.api import EncryptOptions
    from gitcrypt_sops.providers import get

    provider = get("age")
    assert provider is not None
    options = EncryptOptions([provider.parse_recipients(AGE_RECIPIENT)])
    edits.edit_file(str(target), "yaml", new_file_options=lambda: options,
                    editor=[sys.executable, str(editor.script)], interactive=False)
    assert signal.getsignal(signal.SIGINT) is before_int and signal.getsignal(signal.SIGTERM) is before_term
    assert edits.open_file(target.read_bytes(), "yaml").decrypted.data()["example_key"] == "library"
