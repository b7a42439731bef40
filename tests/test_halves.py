"""Large YAML files in two processes (gitcrypt_sops.halves) give what one process gives.

Every candidate cut of each golden comment layout and of generated documents is
tried: the two-process encryption must decrypt to the same text, keep the same
layout, file every comment under the container one process files it under (the
first AAD tried must open it) and carry a MAC that verifies; the two-process
decryption must print the same bytes.  What the halves cannot decide alone must
fall back to one process and fail exactly as it does.  The console entry is run
on a file past the size threshold to show that it forks, and sops 3.11 decrypts
its output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import AGE_KEY_FILE, AGE_RECIPIENT, Runner, scrubbed_env
from test_property_roundtrip import documents

from gitcrypt_sops import api, halves
from gitcrypt_sops.cipher import Cipher
from gitcrypt_sops.errors import SopsError
from gitcrypt_sops.providers.age import AgeProvider
from gitcrypt_sops.stores import yaml_store
from gitcrypt_sops.walk import EncryptionRule

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "yaml_comment_cases.json").read_text())
FIND_CUT = halves.find_cut  # the tests pin cuts with cut_at
RECIPIENT = AgeProvider().parse_recipients(AGE_RECIPIENT)[0]
ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")
RULES = [
    EncryptionRule(),
    EncryptionRule("encrypted_regex", "^(pass|b|secret)"),
    EncryptionRule("unencrypted_regex", "^a"),
    EncryptionRule("encrypted_comment_regex", "sops:enc"),
    EncryptionRule("unencrypted_suffix", "_unencrypted", True),
]


@pytest.fixture(autouse=True)
def _one_process_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """api.* runs in one process here; the tests call halves.* to run in two, whatever
    threads other tests left running in this worker (a forked child runs only our code)."""
    monkeypatch.setenv("GITCRYPT_SOPS_ONE_PROCESS", "1")
    monkeypatch.setattr(halves, "_may_fork", lambda: True)


@pytest.fixture
def missed_aads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """AADs under which a comment failed to open (decryption then tries the enclosing containers)."""
    missed: list[str] = []
    real = Cipher.try_open

    def recording(self: Cipher, enc: str, aad: str) -> tuple[bytes, str] | None:
        opened = real(self, enc, aad)
        if opened is None:
            missed.append(aad)
        return opened

    monkeypatch.setattr(Cipher, "try_open", recording)
    yield missed


def options(rule: EncryptionRule | None = None) -> api.EncryptOptions:
    return api.EncryptOptions([[RECIPIENT]], rule or EncryptionRule())


def layout(encrypted: bytes) -> str:
    """The encrypted text without its ciphertext and without the sops block."""
    text = encrypted.decode()
    return ENC.sub("ENC", text[: text.rfind("\nsops:") + 1])


def split_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "TWO_PROCESS_MIN_SIZE", 0)
    monkeypatch.setattr(halves, "may_split", lambda: True)


def cut_at(monkeypatch: pytest.MonkeyPatch, cut: int) -> None:
    monkeypatch.setattr(halves, "find_cut", lambda text: cut)


def splittable(text: str) -> bool:
    return not (text.startswith(("---", "...", "%", "-", "{", "[")) or "\n-" in text or "\n..." in text)


def check_both_ways(text: str, rule: EncryptionRule, monkeypatch: pytest.MonkeyPatch, missed: list[str]) -> int:
    """Every cut of ``text`` (encryption) and of its encrypted form (decryption): two
    processes give what one gives.  Returns how many cuts the halves decided."""
    try:
        one_encrypted = api.encrypt_bytes(text.encode(), "yaml", options(rule))
    except SopsError:  # refused in one process: refused (left to one process) in two
        for cut in halves.candidate_cuts(text):
            cut_at(monkeypatch, cut)
            assert halves.encrypt_yaml(text.encode(), options(rule)) is None
        return 0
    one_plain = api.decrypt_bytes(one_encrypted, "yaml")
    decided = 0
    for cut in halves.candidate_cuts(text):
        cut_at(monkeypatch, cut)
        two_encrypted = halves.encrypt_yaml(text.encode(), options(rule))
        if two_encrypted is None:
            continue
        decided += 1
        assert layout(two_encrypted) == layout(one_encrypted), f"cut at {cut}"
        missed.clear()
        assert api.decrypt_bytes(two_encrypted, "yaml") == one_plain, f"cut at {cut}"
        assert missed == [], f"cut at {cut}: a comment filed under another container"
    encrypted_text = one_encrypted.decode()
    for cut in halves.candidate_cuts(encrypted_text, 0, encrypted_text.rfind("\nsops:")):
        cut_at(monkeypatch, cut)
        two_plain, _ = halves.decrypt_yaml(one_encrypted, ignore_mac=False, decryption_order=("age",))
        assert two_plain is None or two_plain == one_plain, f"cut at {cut}"
        decided += two_plain is not None
    return decided


@pytest.mark.parametrize("case", [c for c in CASES if splittable(c["yaml"])], ids=lambda c: c["name"])
def test_every_cut_of_each_comment_layout(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                          missed_aads: list[str]) -> None:
    # the tail gives every layout at least one cut; the layout's own lines give the rest
    text = case["yaml"] + "zz_sep: 1\n# after the layout\nzz_tail: end\n"
    decided = check_both_ways(text, EncryptionRule(), monkeypatch, missed_aads)
    assert decided >= 1 or case["name"] == "anchor_alias_as_key"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}-{r.mac_only_encrypted}")
def test_every_rule(rule: EncryptionRule, monkeypatch: pytest.MonkeyPatch, missed_aads: list[str]) -> None:
    text = (
        "# head sops:enc\npassword: one\nb:\n    c: 2 # trailing\n    d: [x, {y: z}]\n"
        "# between sops:enc\nsecret_unencrypted: plain\na_list:\n    - 1\n    - two: 2\n"
        "# before b2\nb2: |\n    block\n    text\nlast: 3.5\n"
    )
    assert check_both_ways(text, rule, monkeypatch, missed_aads) == 2 * len(list(halves.candidate_cuts(text))) == 10


def test_windows_line_endings(monkeypatch: pytest.MonkeyPatch, missed_aads: list[str]) -> None:
    text = "# head\r\na: 1 # one\r\nb:\r\n    c: |\r\n        x\r\n\r\n# before d\r\nd: [1, 2]\r\ne: end\r\n"
    assert check_both_ways(text, EncryptionRule(), monkeypatch, missed_aads) == 6


@pytest.mark.parametrize("gap", ["\n", "\n\n", "\n# c\n", "# c\n\n", "\n# c\n\n# d\n", "# c\n\n\n"])
@pytest.mark.parametrize("block", ["|+", ">+", "|2+", "|", "|-", ">"])
def test_blank_lines_before_the_cut(block: str, gap: str, monkeypatch: pytest.MonkeyPatch,
                                    missed_aads: list[str]) -> None:
    """Blank lines after a keep-chomped block scalar are part of its value."""
    text = f"a:\n    b: 1\n    c: {block}\n      kept\n\n{gap}d: 2\n  # d's\ne: end\n"
    assert check_both_ways(text, EncryptionRule(), monkeypatch, missed_aads) >= 2


def with_comments(document: dict[str, Any], notes: list[str]) -> str:
    """The document in block style, a column-0 comment before some top-level keys."""
    text = yaml_store.emit([document])
    lines = text.splitlines(keepends=True)
    out = []
    for index, line in enumerate(lines):
        if index and line[:1] not in (" ", "") and notes:
            out.append(f"# {notes[index % len(notes)]}\n")
        out.append(line)
    return "".join(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(document=documents.filter(lambda d: len(d) >= 2), notes=st.lists(st.text(max_size=6), max_size=3))
def test_generated_documents(document: dict[str, Any], notes: list[str], monkeypatch: pytest.MonkeyPatch,
                             missed_aads: list[str]) -> None:
    text = with_comments(document, [note.replace("\n", " ").replace("\r", " ") for note in notes])
    if not splittable(text):
        assert FIND_CUT(text) is None
        return
    check_both_ways(text, EncryptionRule(), monkeypatch, missed_aads)


def test_find_cut_refuses_what_halves_cannot_decide() -> None:
    body = "".join(f"k{i}:\n    v: {i}\n" for i in range(50))
    assert halves.find_cut(body) is not None
    for text in ("---\n" + body, body + "seq:\n- 1\n", body + "...\n", "%YAML 1.1\n" + body, "{a: 1}\n" + body):
        assert halves.find_cut(text) is None
    # the line before the cut must end a value: an empty value's event sits at the next key
    # (an explicit key's comment lands in its mapping: ``a:\n    x: 1\n    ? k\n# c`` files it under ``a:``)
    for ending in ("k:", "k: &anchor", "k: !tag", "  -", "? k", "k: # note", "  - # note", "k: 1\t# tab"):
        for before in ("", "a:\n    x: 1\n    "):
            text = f"z: 1\n{before}{ending}\n# c\nb: 2\n"
            assert text.index("# c") not in halves.candidate_cuts(text), text
    text = "a: 1\nb:\n    c: 2\n# c\n# d\nd: 3\n"
    assert list(halves.candidate_cuts(text)) == [text.index("b:"), text.index("# c")]
    # blank lines stay in the first half, with what comes before them
    text = "a: |+\n    kept\n\n# one\n\n# two\nb: 1\n"
    assert list(halves.candidate_cuts(text)) == [text.index("# two")]


def test_undecidable_halves_fall_back_to_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # an alias to an anchor in the other half; a key in both halves
    aliased = "a: &shared v\n# c\nb: *shared\n"
    cut_at(monkeypatch, aliased.index("# c"))
    assert halves.encrypt_yaml(aliased.encode(), options()) is None
    encrypted = api.encrypt_bytes(aliased.encode(), "yaml", options())
    one_process = api.decrypt_bytes(encrypted, "yaml")
    # (encryption writes the alias out as its value: the encrypted file has none left)
    cut_at(monkeypatch, encrypted.index(b"\n#ENC[") + 1)
    assert halves.decrypt_yaml(encrypted, ignore_mac=False, decryption_order=("age",))[0] == one_process

    twice = "a: 1\nb: 2\na: 3\n"
    cut_at(monkeypatch, twice.index("a: 3"))
    assert halves.encrypt_yaml(twice.encode(), options()) is None
    monkeypatch.delenv("GITCRYPT_SOPS_ONE_PROCESS")
    split_everything(monkeypatch)
    with pytest.raises(SopsError, match="duplicate key 'a'"):
        api.encrypt_bytes(twice.encode(), "yaml", options())
    cut_at(monkeypatch, aliased.index("# c"))
    again = api.encrypt_bytes(aliased.encode(), "yaml", options())
    monkeypatch.setenv("GITCRYPT_SOPS_ONE_PROCESS", "1")
    assert layout(again) == layout(encrypted) and api.decrypt_bytes(again, "yaml") == one_process


@pytest.mark.parametrize("why", ["alias across the cut", "threads after the unwrap"])
def test_one_process_takes_over_the_unwrapped_key(why: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A file the halves leave to one process is not unwrapped twice (a KMS is asked once)."""
    from gitcrypt_sops import datakey

    encrypted = api.encrypt_bytes(b"a_unencrypted: v\n# c\nb_unencrypted: v\nd: 2\n", "yaml", options())
    if why.startswith("alias"):  # written by hand: encryption writes an alias out as its value
        encrypted = encrypted.replace(b"a_unencrypted: v", b"a_unencrypted: &s v")
        encrypted = encrypted.replace(b"b_unencrypted: v", b"b_unencrypted: *s")
    expected = api.decrypt_bytes(encrypted, "yaml")
    calls = []
    real_unwrap = datakey.unwrap

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_unwrap(*args, **kwargs)

    monkeypatch.setattr(datakey, "unwrap", counting)
    monkeypatch.setenv("GITCRYPT_SOPS_AUDIT_LOG", str(tmp_path / "audit.log"))
    monkeypatch.delenv("GITCRYPT_SOPS_ONE_PROCESS")
    monkeypatch.setattr(api, "TWO_PROCESS_MIN_SIZE", 0)
    if not why.startswith("alias"):
        monkeypatch.setattr(halves, "_may_fork", lambda: False)
    cut_at(monkeypatch, encrypted.index(b"\n#ENC[") + 1)
    plaintext, unwrapped = halves.decrypt_yaml(encrypted, ignore_mac=False, decryption_order=("age",))
    assert plaintext is None and unwrapped is not None  # left to one process, key in hand
    calls.clear()
    assert api.decrypt_bytes(encrypted, "yaml") == expected
    assert calls == [1]
    assert len((tmp_path / "audit.log").read_text().splitlines()) == 1


def test_a_failed_fork_leaves_no_descriptor_and_one_process_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: 1\n# c\nb: 2\n"

    def refused() -> int:
        raise BlockingIOError("Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    cut_at(monkeypatch, text.index("# c"))
    before = len(os.listdir("/proc/self/fd"))
    assert halves.encrypt_yaml(text.encode(), options()) is None
    assert len(os.listdir("/proc/self/fd")) == before
    split_everything(monkeypatch)
    monkeypatch.delenv("GITCRYPT_SOPS_ONE_PROCESS")
    encrypted = api.encrypt_bytes(text.encode(), "yaml", options())
    monkeypatch.setenv("GITCRYPT_SOPS_ONE_PROCESS", "1")
    assert api.decrypt_bytes(encrypted, "yaml") == text.encode()


def errors_of(call: Any) -> tuple[str, str]:
    try:
        call()
    except SopsError as error:
        return type(error).__name__, str(error)
    raise AssertionError("no error")


@pytest.mark.parametrize("damage", ["broken", "tampered", "mac", "no key"])
def test_errors_are_one_process_errors(damage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = "".join(f"# group {i}\ngroup{i}:\n    secret: value-{i}\n    n: {i}\n" for i in range(20))
    encrypted = api.encrypt_bytes(text.encode(), "yaml", options()).decode()
    second_half_value = encrypted.index("group15:")
    if damage == "broken":
        encrypted = encrypted[:second_half_value] + "group15: [unclosed\n" + encrypted[second_half_value:]
    elif damage == "tampered":
        start = encrypted.index("ENC[AES256_GCM,data:", second_half_value) + len("ENC[AES256_GCM,data:")
        flipped = "B" if encrypted[start] == "A" else "A"
        encrypted = encrypted[:start] + flipped + encrypted[start + 1 :]
    elif damage == "mac":
        encrypted = encrypted.replace("group17:\n", "group17:\n    extra_unencrypted: 1\n", 1)
    else:
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "none.txt"))
    data = encrypted.encode()
    expected = errors_of(lambda: api.decrypt_bytes(data, "yaml"))
    monkeypatch.delenv("GITCRYPT_SOPS_ONE_PROCESS")
    split_everything(monkeypatch)
    assert FIND_CUT(encrypted) is not None
    assert errors_of(lambda: api.decrypt_bytes(data, "yaml")) == expected


def fast_load(text: str | bytes) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def big_yaml(groups: int) -> str:
    return "".join(
        f"# service {i}\nservice-{i:05d}:\n    password: pw-{i}-{'x' * 40}\n    port: {i}\n"
        f"    tls:\n        cert: |\n            line one {i}\n            line two\n    enabled: true # on\n"
        for i in range(groups)
    )


COUNTING_FORKS = (
    "import os, sys\n"
    "real = os.fork\n"
    "def fork():\n"
    "    pid = real()\n"
    "    if pid: sys.stderr.write('forked\\n')\n"
    "    return pid\n"
    "os.fork = fork\n"
    "from gitcrypt_sops.console import entry\n"
    "sys.argv = ['gitcrypt-sops', *sys.argv[1:]]\n"
    "entry()\n"
)


def run_counting_forks(home: Path, *args: str, one_process: bool = False) -> subprocess.CompletedProcess[bytes]:
    """The console entry in a scrubbed environment; its stderr gets a line per fork."""
    extra = {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
    if one_process:
        extra["GITCRYPT_SOPS_ONE_PROCESS"] = "1"
    return subprocess.run([sys.executable, "-c", COUNTING_FORKS, *args], env=scrubbed_env(home, extra),
                          capture_output=True, check=True, timeout=120)


def test_console_entry_forks_past_the_threshold(tmp_path: Path, sops: Runner) -> None:
    """The command line on a file past the size threshold: two processes, and sops reads the result."""
    groups = 2000
    text = big_yaml(groups)
    assert len(text) > api.TWO_PROCESS_MIN_SIZE
    plain = tmp_path / "big.yaml"
    plain.write_text(text)
    def run(*args: str, one_process: bool = False) -> subprocess.CompletedProcess[bytes]:
        return run_counting_forks(tmp_path, *args, one_process=one_process)

    encrypted = run("encrypt", "--age", AGE_RECIPIENT, str(plain))
    assert encrypted.stderr == b"forked\n"
    (tmp_path / "big.enc.yaml").write_bytes(encrypted.stdout)
    in_one = run("encrypt", "--age", AGE_RECIPIENT, str(plain), one_process=True)
    assert in_one.stderr == b"" and layout(encrypted.stdout) == layout(in_one.stdout)
    decrypted = run("decrypt", str(tmp_path / "big.enc.yaml"))
    assert decrypted.stderr == b"forked\n"
    one = run("decrypt", str(tmp_path / "big.enc.yaml"), one_process=True)
    assert one.stderr == b"" and decrypted.stdout == one.stdout
    assert fast_load(decrypted.stdout) == fast_load(text)
    by_sops = sops("decrypt", str(tmp_path / "big.enc.yaml"), check=True).stdout.decode()
    assert fast_load(by_sops) == fast_load(text)
    # comments are outside the MAC: sops must have opened every one of them
    assert "ENC[" not in by_sops and by_sops.count("# service ") == by_sops.count("# on") == groups
