"""The quick command-line reader gives argparse's answer or none at all.

:mod:`gitcrypt_sops.quickargs` reads the everyday command lines from the same
declarations argparse gets.  Whatever it returns must equal argparse's namespace
for the same line, and every line argparse refuses (or answers with help) must be
left to argparse; the everyday lines must be read without argparse.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import AGE_KEY_FILE, AGE_RECIPIENT, scrubbed_env

from gitcrypt_sops import cli, quickargs
from gitcrypt_sops.argparser import build_parser
from gitcrypt_sops.errors import UsageError


def argparse_reading(arguments: list[str]) -> dict[str, object] | None:
    """argparse's namespace for a line, or None when it refuses it or prints help."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return vars(build_parser(cli._find_command(arguments)).parse_args(arguments))
    except (UsageError, SystemExit):
        return None


def option_strings(command: str) -> list[str]:
    parser = build_parser(command)
    sub: Any = next(action for action in parser._actions if action.dest == "command")
    return sorted({name for action in sub.choices[command]._actions for name in action.option_strings})


VALUES = ["x", "file.yaml", "7", "age1x,age1y", "[\"a\"][0]", "a b", "a=b", "", "-", "-5", "0", "--"]
JUNK = ["--bogus", "-ia", "--in", "--age=", "-h", "--help", "--version", "-x=1", "--output=", "--indent=-1"]


def quick_commands() -> list[str]:
    """The commands whose declarations the quick reader models."""
    tables = {command: quickargs.record(lambda table, c=command: cli.declare_command(c, table)) for command in cli.COMMANDS}
    return sorted(command for command, table in tables.items() if table.readable)


QUICK_COMMANDS = quick_commands()


def test_the_everyday_commands_are_modelled() -> None:
    assert {"encrypt", "decrypt", "filestatus", "edit", "rotate", "set", "unset", "update"} <= set(QUICK_COMMANDS)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command and a few flags with values, in every form, now and then a positional or junk."""
    command = draw(st.sampled_from(QUICK_COMMANDS))
    options = st.sampled_from(option_strings(command))
    values = st.sampled_from(VALUES)
    group = st.one_of(
        st.tuples(options, values).map(list),
        st.tuples(options, values).map(lambda pair: [f"{pair[0]}={pair[1]}"]),
        options.map(lambda option: [option]),
        values.map(lambda value: [value]),
        st.sampled_from(JUNK).map(lambda junk: [junk]),
    )
    return [command] + [token for tokens in draw(st.lists(group, max_size=5)) for token in tokens]


@settings(max_examples=600, deadline=None)
@given(command_lines())
def test_a_quick_reading_is_argparses_reading(arguments: list[str]) -> None:
    quick = cli.quick_parse(arguments)
    reference = argparse_reading(arguments)
    if quick is not None:
        assert reference is not None, arguments
        assert vars(quick) == reference, arguments


EVERYDAY = [
    ["encrypt", "--age", AGE_RECIPIENT, "secrets.yaml"],
    ["encrypt", "-i", "--age", AGE_RECIPIENT, "-a", AGE_RECIPIENT, "secrets.yaml"],
    ["encrypt", "--encrypted-regex", "^(data|stringData)$", "--output", "out.yaml", "in.yaml"],
    ["encrypt", "--input-type", "dotenv", "--output-type=json", "--filename-override", "a.env"],
    ["encrypt", "--shamir-secret-sharing-threshold", "2", "--kms", "arn:aws:kms:x", "--mac-only-encrypted", "f.json"],
    ["decrypt", "secrets.enc.yaml"],
    ["decrypt", "--extract", '["db"]["password"]', "--ignore-mac", "-"],
    ["decrypt", "--output", "plain.json", "--indent", "2", "--decryption-order", "age,pgp", "x.json"],
    ["decrypt", "--verbose", "--disable-version-check", "x.yaml"],
    ["filestatus", "x.yaml"],
    ["edit", "secrets.yaml"],
    ["rotate", "-i", "--add-age", AGE_RECIPIENT, "secrets.yaml"],
    ["set", "secrets.yaml", '["db"]["password"]', '"s3cret"'],
    ["set", "--value-stdin", "--idempotent", "secrets.yaml", '["db"]["password"]'],
    ["unset", "secrets.yaml", '["db"]'],
    ["update", "secrets.enc.yaml", "--from", "secrets.yaml"],
]


@pytest.mark.parametrize("arguments", EVERYDAY, ids=lambda line: " ".join(line)[:40])
def test_everyday_lines_are_read_without_argparse_and_as_argparse_reads_them(arguments: list[str]) -> None:
    quick = cli.quick_parse(arguments)
    assert quick is not None
    assert vars(quick) == argparse_reading(arguments)


@pytest.mark.parametrize("legacy, modern", [(["-d", "x.yaml"], ["decrypt", "x.yaml"]),
                                             (["--verbose", "-e", "-i", "x.yaml"], ["encrypt", "--verbose", "-i", "x.yaml"])])
def test_legacy_forms_take_the_quick_path_after_rewriting(legacy: list[str], modern: list[str]) -> None:
    assert vars(cli.parse(legacy)) == argparse_reading(modern)
    assert isinstance(cli.parse(legacy), quickargs.Namespace)


def test_unmodelled_declarations_leave_the_line_to_argparse() -> None:
    assert cli.quick_parse(["k8s-secret", "--name", "db", "x.yaml"]) is None  # a mutually exclusive group
    assert cli.quick_parse(["git", "diff", "x.yaml"]) is None  # sub-subcommands
    assert cli.quick_parse(["set", "x.yaml", '["a"]', "--idempotent", "1"]) is None  # positionals split by a flag
    assert cli.quick_parse(["--config", "c.yaml", "decrypt", "x.yaml"]) is None  # flags before the command
    assert vars(cli.parse(["--config", "c.yaml", "decrypt", "x.yaml"]))["global_config"] == "c.yaml"


def test_usage_errors_still_come_from_argparse() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        cli.parse(["encrypt", "--bogus", "x.yaml"])
    with pytest.raises(UsageError, match="invalid int value"):
        cli.parse(["encrypt", "--indent", "two", "x.yaml"])


#: what the installed console script runs (``-m`` would add runpy's imports)
CONSOLE_SCRIPT = "from gitcrypt_sops.console import entry; entry()"
#: modules a small encrypt or decrypt does without
NOT_IMPORTED = {"argparse", "re", "enum", "collections", "functools", "gettext", "json"}


def run_console(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    """Run the console entry under ``-X importtime``: the result and every module it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", CONSOLE_SCRIPT, *args], cwd=cwd, env=env,
                            capture_output=True, check=False, timeout=60)
    imported = {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines()
                if line.startswith("import time:")}
    return result, imported


@pytest.mark.parametrize("name, content, encrypted", [
    ("a.env", "A=1\n#note\nB=two\n", 4),  # two values, the comment and the MAC
    ("a.json", '{"a": 1, "b": ["two", 3.5]}', 4),  # three values and the MAC
])
def test_a_small_encrypt_imports_neither_argparse_nor_re(name: str, content: str, encrypted: int, tmp_path: Path,
                                                         home: Path) -> None:
    (tmp_path / name).write_text(content)
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    result, imported = run_console(["encrypt", "--age", AGE_RECIPIENT, name], tmp_path, env)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.count(b"ENC[AES256_GCM,") == encrypted
    assert "gitcrypt_sops.commands.crypt" in imported
    assert not NOT_IMPORTED & imported


def test_version_is_printed_as_argparse_prints_it() -> None:
    quick, reference = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(quick):
        assert cli.main(["--version"]) == 0
    with contextlib.redirect_stdout(reference), pytest.raises(SystemExit):
        build_parser(None).parse_args(["--version"])
    assert quick.getvalue() == reference.getvalue() == cli.VERSION_TEXT + "\n"


def test_a_line_left_to_argparse_still_runs_without_gettext(tmp_path: Path, home: Path) -> None:
    result, imported = run_console(["decrypt", "--help"], tmp_path, scrubbed_env(home))
    assert result.returncode == 0 and result.stdout.startswith(b"usage: gitcrypt-sops decrypt"), result.stderr[-500:]
    assert "argparse" in imported and "gettext" not in imported


@pytest.mark.parametrize("name, content", [("a.env", "A=1\n#note\nB=two\n"), ("a.json", '{"a": 1, "b": ["two", 3.5]}')])
def test_a_small_decrypt_imports_neither_argparse_nor_re(name: str, content: str, tmp_path: Path, home: Path) -> None:
    env = scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)})
    encrypted = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "encrypt", "--age", AGE_RECIPIENT, "/dev/stdin",
                                "--filename-override", name], input=content.encode(), cwd=tmp_path, env=env,
                               capture_output=True, check=True, timeout=60).stdout
    (tmp_path / f"enc-{name}").write_bytes(encrypted)
    result, imported = run_console(["decrypt", f"enc-{name}"], tmp_path, env)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.replace(b"\t", b"").replace(b"\n", b"").replace(b" ", b"") == \
        content.replace("\t", "").replace("\n", "").replace(" ", "").encode()
    assert "gitcrypt_sops.cipher" in imported
    assert not NOT_IMPORTED & imported
