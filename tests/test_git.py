"""git integration in real repositories: the merge driver, the diff driver, install and pre-commit.

Every test builds a repository in a temporary directory and drives the real ``git``
binary with a private HOME; git starts our drivers as a user's git would.  Edits
between commits are made by the real sops binary (``sops set``/``rotate``), so the
drivers are proven against files the reference tool wrote.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    AGE_KEY_FILE,
    AGE_KEY_FILE_2,
    AGE_RECIPIENT,
    AGE_RECIPIENT_2,
    REPO,
    Runner,
    scrubbed_env,
    sops_binary,
)

from gitcrypt_sops import api
from gitcrypt_sops.providers.base import Recipient

BASE = b"""\
# database settings
db:
  user: app
  password: base-password-1111
api:
  token: base-token-2222
  url: https://api.example.com
"""


class Repo:
    """A git repository with our drivers installed, run in a scrubbed environment."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home
        self.sops = Runner([sops_binary()], home)

    def env(self, key_file: Path | str = AGE_KEY_FILE) -> dict[str, str]:
        return scrubbed_env(self.home, {
            "SOPS_AGE_KEY_FILE": str(key_file), "PYTHONPATH": str(REPO), "GIT_CONFIG_NOSYSTEM": "1",
        })

    def git(self, *args: str, check: bool = True, key_file: Path | str = AGE_KEY_FILE) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(["git", *args], cwd=self.root, env=self.env(key_file), capture_output=True, timeout=120,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
        return result

    def tool(self, *args: str, key_file: Path | str = AGE_KEY_FILE, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "gitcrypt_sops", *args], cwd=self.root, env=self.env(key_file),
                              capture_output=True, timeout=120, input=input, check=False)

    def set(self, name: str, path: str, value: str) -> None:
        result = self.sops("set", name, path, f'"{value}"', cwd=self.root)
        assert result.returncode == 0, result.stderr

    def decrypt(self, name: str) -> Any:
        return api.decrypt_data((self.root / name).read_bytes(), "yaml" if name.endswith(".yaml") else "json").data()

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "repo"
    root.mkdir()
    r = Repo(root, home)
    r.git("init", "-q", "-b", "main")
    r.git("config", "user.name", "Test")
    r.git("config", "user.email", "test@example.invalid")
    (root / ".sops-policy.yaml").write_text(f"""\
creation_rules:
  - path_regex: secrets/
    age: {AGE_RECIPIENT}
policy:
  must_encrypt: ["secrets/**"]
  never_plaintext: "(?i)(password|token)"
""")
    (root / "secrets").mkdir()
    (root / "secrets" / "app.yaml").write_bytes(BASE)
    assert r.tool("encrypt", "-i", "secrets/app.yaml").returncode == 0
    installed = r.tool("git", "install", "--hook")
    assert installed.returncode == 0, installed.stderr
    r.commit("base")
    yield r


def enc_values(data: bytes) -> dict[str, str]:
    """Top-level-path -> ENC string of a YAML file, without keys."""
    parsed = api.parse(data, "yaml", encrypted=True)
    out = {}
    for section, values in parsed.documents[0].items():
        if isinstance(values, dict):
            for key, value in values.items():
                out[f"{section}.{key}"] = value
    return out


def all_git_objects(root: Path, env: dict[str, str]) -> bytes:
    return subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=root, env=env,
                          capture_output=True, check=True).stdout


# --------------------------------------------------------------------------- merge


def test_disjoint_changes_merge_cleanly(repo: Repo) -> None:
    base = (repo.root / "secrets/app.yaml").read_bytes()
    repo.git("checkout", "-q", "-b", "feature")
    repo.set("secrets/app.yaml", '["api"]["token"]', "theirs-token-3333")
    repo.commit("rotate the token")
    theirs = (repo.root / "secrets/app.yaml").read_bytes()
    repo.git("checkout", "-q", "main")
    repo.set("secrets/app.yaml", '["db"]["password"]', "ours-password-4444")
    repo.commit("new password")
    ours = (repo.root / "secrets/app.yaml").read_bytes()

    merged = repo.git("merge", "-q", "feature", "-m", "merge", check=False)
    assert merged.returncode == 0, merged.stderr
    assert repo.git("status", "--porcelain").stdout == b""
    result = (repo.root / "secrets/app.yaml").read_bytes()
    assert repo.decrypt("secrets/app.yaml") == {
        "db": {"user": "app", "password": "ours-password-4444"},
        "api": {"token": "theirs-token-3333", "url": "https://api.example.com"},
    }
    assert repo.sops("decrypt", "secrets/app.yaml", cwd=repo.root).returncode == 0  # MAC valid for sops too
    values, before, mine, other = enc_values(result), enc_values(base), enc_values(ours), enc_values(theirs)
    assert values["db.user"] == before["db.user"] and values["api.url"] == before["api.url"]
    assert values["db.password"] == mine["db.password"]
    assert values["api.token"] == other["api.token"]
    assert result.startswith(ours.split(b"\n", 1)[0])  # the encrypted head comment is untouched too


def test_same_key_conflict_keeps_ours_encrypted_and_resolves(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.set("secrets/app.yaml", '["db"]["password"]', "theirs-secret-91bc")
    repo.commit("theirs")
    repo.git("checkout", "-q", "main")
    repo.set("secrets/app.yaml", '["db"]["password"]', "ours-secret-7f3a")
    repo.set("secrets/app.yaml", '["api"]["url"]', "https://ours.example.com")
    repo.commit("ours")
    ours = (repo.root / "secrets/app.yaml").read_bytes()

    merged = repo.git("merge", "feature", "-m", "merge", check=False)
    assert merged.returncode != 0
    message = merged.stderr.decode()
    assert 'merge conflict in secrets/app.yaml' in message and '["db"]["password"]' in message
    assert "gitcrypt-sops git resolve secrets/app.yaml" in message
    assert '["api"]["url"]' not in message.split("merge conflict", 1)[1].split("\n", 1)[0]
    assert (repo.root / "secrets/app.yaml").read_bytes() == ours
    for path in repo.root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            data = path.read_bytes()
            assert b"secret-91bc" not in data and b"secret-7f3a" not in data and b"base-token" not in data, path
    objects = all_git_objects(repo.root, repo.env())
    assert b"secret-91bc" not in objects and b"secret-7f3a" not in objects

    unresolved = repo.tool("git", "resolve", "secrets/app.yaml")
    assert unresolved.returncode == 1 and b'still conflicting: ["db"]["password"]' in unresolved.stderr
    done = repo.tool("git", "resolve", "secrets/app.yaml", "--key", '["db"]["password"]=theirs')
    assert done.returncode == 0, done.stderr
    assert repo.decrypt("secrets/app.yaml")["db"]["password"] == "theirs-secret-91bc"
    assert repo.decrypt("secrets/app.yaml")["api"]["url"] == "https://ours.example.com"
    repo.commit("resolved")


def test_merge_without_a_key_fails_cleanly(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.set("secrets/app.yaml", '["api"]["token"]', "t-5555")
    repo.commit("theirs")
    repo.git("checkout", "-q", "main")
    repo.set("secrets/app.yaml", '["db"]["password"]', "p-6666")
    repo.commit("ours")
    ours = (repo.root / "secrets/app.yaml").read_bytes()
    merged = repo.git("merge", "feature", "-m", "merge", check=False, key_file=AGE_KEY_FILE_2)
    assert merged.returncode != 0
    lines = [line for line in merged.stderr.decode().splitlines() if line.startswith("gitcrypt-sops:")]
    assert len(lines) == 1 and "no key can decrypt" in lines[0] and "our version is kept" in lines[0]
    assert "Traceback" not in merged.stderr.decode()
    assert (repo.root / "secrets/app.yaml").read_bytes() == ours
    # with the key, the same merge finishes from git's index stages
    assert repo.tool("git", "resolve", "secrets/app.yaml").returncode == 0
    assert repo.decrypt("secrets/app.yaml")["api"]["token"] == "t-5555"


def test_their_rotation_wins_and_our_edit_is_kept(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    assert repo.sops("rotate", "-i", "secrets/app.yaml", cwd=repo.root).returncode == 0
    repo.commit("rotate")
    rotated = api.read_metadata(api.parse((repo.root / "secrets/app.yaml").read_bytes(), "yaml", encrypted=True))
    repo.git("checkout", "-q", "main")
    repo.set("secrets/app.yaml", '["db"]["user"]', "admin")
    repo.commit("ours")
    assert repo.git("merge", "-q", "feature", "-m", "merge", check=False).returncode == 0
    data = (repo.root / "secrets/app.yaml").read_bytes()
    meta = api.read_metadata(api.parse(data, "yaml", encrypted=True))
    assert meta.key_groups == rotated.key_groups  # their new data key, wrapped as they wrapped it
    assert repo.decrypt("secrets/app.yaml")["db"]["user"] == "admin"


def test_json_add_and_delete_merge(repo: Repo) -> None:
    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    (repo.root / "secrets/svc.json").write_bytes(
        api.encrypt_bytes(b'{"a": "1", "b": "2", "c": {"d": "3"}}', "json", options))
    repo.tool("git", "install")
    repo.commit("json")

    def edit(change: Any) -> None:
        path = repo.root / "secrets/svc.json"
        decrypted = api.decrypt_parsed(api.parse(path.read_bytes(), "json", encrypted=True))
        change(decrypted.documents[0])
        parsed = api.Parsed("json", decrypted.documents)
        path.write_bytes(api.encrypt_parsed(parsed, api.EncryptOptions([], decrypted.metadata.rule),
                                            data_key=decrypted.data_key, stash=decrypted.stash,
                                            wrapped=(decrypted.metadata.key_groups, 0)))

    repo.git("checkout", "-q", "-b", "feature")
    edit(lambda d: d.pop("b"))
    repo.commit("drop b")
    repo.git("checkout", "-q", "main")
    edit(lambda d: d["c"].update(e="4"))
    repo.commit("add c.e")
    merged = repo.git("merge", "-q", "feature", "-m", "merge", check=False)
    assert merged.returncode == 0, merged.stderr
    assert repo.decrypt("secrets/svc.json") == {"a": "1", "c": {"d": "3", "e": "4"}}


def test_plain_text_files_fall_back_to_a_text_merge(repo: Repo) -> None:
    notes = repo.root / "secrets/notes.txt"
    notes.write_text("one\ntwo\nthree\nfour\nfive\n")
    (repo.root / ".sops-policy.yaml").write_text((repo.root / ".sops-policy.yaml").read_text().replace(
        'must_encrypt: ["secrets/**"]', 'must_encrypt: ["secrets/*.yaml"]'))
    repo.commit("notes")
    repo.git("checkout", "-q", "-b", "feature")
    notes.write_text("ONE\ntwo\nthree\nfour\nfive\n")
    repo.commit("theirs")
    repo.git("checkout", "-q", "main")
    notes.write_text("one\ntwo\nthree\nfour\nFIVE\n")
    repo.commit("ours")
    assert repo.git("merge", "-q", "feature", "-m", "merge", check=False).returncode == 0
    assert notes.read_text() == "ONE\ntwo\nthree\nfour\nFIVE\n"


# --------------------------------------------------------------------------- diff


def test_diff_with_and_without_the_key(repo: Repo) -> None:
    repo.set("secrets/app.yaml", '["db"]["password"]', "changed-password-8888")
    with_key = repo.git("diff", "secrets/app.yaml").stdout.decode()
    assert "-    password: base-password-1111" in with_key or "-  password: base-password-1111" in with_key
    assert "password: changed-password-8888" in with_key
    assert "ENC[" not in with_key

    without = repo.git("diff", "-U20", "secrets/app.yaml", key_file=AGE_KEY_FILE_2)
    assert without.returncode == 0
    text = without.stdout.decode()
    changed = [line for line in text.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and all(line[1:].startswith('["db"]["password"]: <encrypted ') for line in changed)
    assert "base-password" not in text and "changed-password" not in text
    assert " recipient age: " + AGE_RECIPIENT in text

    forced = subprocess.run(["git", "diff", "secrets/app.yaml"], cwd=repo.root, capture_output=True, check=True,
                            env={**repo.env(), "GITCRYPT_SOPS_TEXTCONV": "keyless"})
    assert "<encrypted " in forced.stdout.decode() and "changed-password" not in forced.stdout.decode()


def test_diff_never_fails(repo: Repo) -> None:
    odd = {"secrets/garbage.yaml": b"{{{ not yaml", "secrets/gc.bin": b"\x00GITCRYPT\x00\x01\x02"}
    for name, data in odd.items():
        (repo.root / name).write_bytes(data)
    repo.git("add", "-N", *odd)
    result = repo.git("diff", *odd, check=False)
    assert result.returncode == 0
    assert b"{{{ not yaml" in result.stdout and b"encrypted by git-crypt" in result.stdout
    (repo.root / "secrets/app.yaml").write_bytes((repo.root / "secrets/app.yaml").read_bytes().replace(
        b"user: ENC[AES256_GCM,data:", b"user: ENC[AES256_GCM,data:AAAA"))
    tampered = repo.git("diff", "secrets/app.yaml", check=False)
    assert tampered.returncode == 0 and tampered.stdout  # shows something, fails nothing


# --------------------------------------------------------------------------- install and pre-commit


def test_install_writes_attributes_config_and_is_idempotent(repo: Repo) -> None:
    attributes = (repo.root / ".gitattributes").read_text()
    assert "secrets/** diff=sops merge=sops" in attributes
    config = repo.git("config", "--local", "--list").stdout.decode()
    assert "diff.sops.textconv=" in config and "diff.sops.cachetextconv=false" in config
    assert "merge.sops.driver=" in config and "%O %A %B %P" in config
    # an encrypted file outside the globs is listed by name
    (repo.root / "extra.enc.json").write_bytes(
        api.encrypt_bytes(b'{"a": "b"}', "json", api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])))
    repo.git("add", "extra.enc.json")
    (repo.root / ".gitattributes").write_text("*.png binary\n" + attributes)
    again = repo.tool("git", "install")
    assert again.returncode == 0, again.stderr
    text = (repo.root / ".gitattributes").read_text()
    assert text.count("secrets/** diff=sops") == 1 and "extra.enc.json diff=sops merge=sops" in text
    assert text.startswith("*.png binary\n")
    dry = repo.tool("git", "uninstall", "--dry-run")
    assert b"would remove" in dry.stdout and (repo.root / ".gitattributes").read_text() == text
    assert repo.tool("git", "uninstall").returncode == 0
    assert (repo.root / ".gitattributes").read_text() == "*.png binary\n"
    assert b"diff.sops" not in repo.git("config", "--local", "--list").stdout
    assert not (repo.root / ".git/hooks/pre-commit").exists()


def test_install_leaves_a_foreign_hook_alone(repo: Repo) -> None:
    hook = repo.root / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho mine\n")
    result = repo.tool("git", "install", "--hook")
    assert result.returncode == 0 and b"left the existing" in result.stdout
    assert hook.read_text() == "#!/bin/sh\necho mine\n"


def test_pre_commit_blocks_a_plaintext_secret(repo: Repo) -> None:
    secret = repo.root / "secrets/new.yaml"
    secret.write_text("password: plaintext-9999\n")
    repo.git("add", "secrets/new.yaml")
    blocked = repo.git("commit", "-m", "oops", check=False)
    assert blocked.returncode != 0
    output = blocked.stdout.decode() + blocked.stderr.decode()
    assert "secrets/new.yaml: must_encrypt" in output and "commit blocked" in output
    assert repo.git("rev-list", "--count", "HEAD").stdout.strip() == b"1"
    # the index is what counts: fixing only the working tree is not enough
    assert repo.tool("encrypt", "-i", "secrets/new.yaml").returncode == 0
    assert repo.git("commit", "-m", "still staged plaintext", check=False).returncode != 0
    repo.git("add", "secrets/new.yaml")
    assert repo.git("commit", "-q", "-m", "encrypted").returncode == 0
    # a plaintext secret in a file outside must_encrypt is caught by never_plaintext
    (repo.root / "app.yaml").write_text("db:\n  password: leaked\n")
    repo.git("add", "app.yaml")
    blocked = repo.git("commit", "-m", "leak", check=False)
    assert blocked.returncode != 0 and b'app.yaml: never_plaintext: ["db"]["password"]' in blocked.stderr


def test_pre_commit_framework_entry_point(repo: Repo) -> None:
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "entry: gitcrypt-sops pre-commit" in hooks and "id: gitcrypt-sops-check" in hooks
    (repo.root / "secrets/plain.yaml").write_text("token: abc\n")
    named = repo.tool("pre-commit", "secrets/plain.yaml", "secrets/app.yaml")
    assert named.returncode == 1 and b"secrets/plain.yaml: must_encrypt" in named.stdout
    assert b"secrets/app.yaml" not in named.stdout
    assert repo.tool("pre-commit", "secrets/app.yaml").returncode == 0


# --------------------------------------------------------------------------- repo-wide operations


def test_repo_updatekeys_plans_then_applies(repo: Repo) -> None:
    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    for name in ("secrets/a/one.yaml", "secrets/a/two.json", "secrets/b/three.yaml"):
        path = repo.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = b"k: v\n" if name.endswith(".yaml") else b'{"k": "v"}'
        path.write_bytes(api.encrypt_bytes(plain, "json" if name.endswith(".json") else "yaml", options))
    (repo.root / "secrets/notes.txt").write_text("not a sops file\n")
    policy = repo.root / ".sops-policy.yaml"
    policy.write_text(policy.read_text().replace(f"age: {AGE_RECIPIENT}", f"age: {AGE_RECIPIENT},{AGE_RECIPIENT_2}"))
    before = {p: p.read_bytes() for p in (repo.root / "secrets").rglob("*") if p.is_file()}

    dry = repo.tool("repo", "updatekeys", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout.decode()
    assert "updatekeys: 4 file(s) to update, 0 unchanged, 0 with errors (4 sops file(s) found)" in out
    assert f"+ age:{AGE_RECIPIENT_2}" in out
    assert {p: p.read_bytes() for p in before} == before
    refused = repo.tool("repo", "updatekeys", input=b"")
    assert refused.returncode == 1 and b"pass --yes" in refused.stderr

    done = repo.tool("repo", "updatekeys", "--yes", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert b"updatekeys: 4 file(s) done, 0 failed" in done.stdout
    for path in before:
        if path.suffix in (".yaml", ".json"):
            meta = api.read_metadata(api.parse(path.read_bytes(), "json" if path.suffix == ".json" else "yaml",
                                               encrypted=True))
            assert {entry["recipient"] for _, entry in meta.recipients()} == {AGE_RECIPIENT, AGE_RECIPIENT_2}
    # the second key alone now decrypts every file
    verify = repo.tool("repo", "decrypt", "--verify", key_file=AGE_KEY_FILE_2)
    assert verify.returncode == 0 and b"decrypt: 4 file(s) done, 0 failed" in verify.stdout
    assert b"0 file(s) to update" in repo.tool("repo", "updatekeys", "--dry-run").stdout


def test_repo_rotate_and_decrypt_failures_leave_files_alone(repo: Repo, tmp_path: Path) -> None:
    original = (repo.root / "secrets/app.yaml").read_bytes()
    young = repo.tool("repo", "rotate", "--older-than", "30d", "--yes")
    assert young.returncode == 0 and b"0 file(s) to rotate" in young.stdout
    failed = repo.tool("repo", "rotate", "--yes", key_file=AGE_KEY_FILE_2)
    assert failed.returncode == 1
    assert b"secrets/app.yaml:" in failed.stderr and b"file left unchanged" in failed.stderr
    assert (repo.root / "secrets/app.yaml").read_bytes() == original
    inside = repo.tool("repo", "decrypt", "--output-dir", "plain")
    assert inside.returncode == 1 and b"not ignored" in inside.stderr
    out = tmp_path / "plain"
    done = repo.tool("repo", "decrypt", "--output-dir", str(out))
    assert done.returncode == 0, done.stderr
    target = out / "secrets/app.yaml"
    assert target.read_bytes() == BASE and (target.stat().st_mode & 0o777) == 0o600
    rotated = repo.tool("repo", "rotate", "--yes")
    assert rotated.returncode == 0 and b"data key rotated" in rotated.stdout
    assert repo.decrypt("secrets/app.yaml")["db"]["password"] == "base-password-1111"
    assert enc_values((repo.root / "secrets/app.yaml").read_bytes())["db.user"] != enc_values(original)["db.user"]


# --------------------------------------------------------------------------- the tree merge itself


def test_merge_documents_key_by_key() -> None:
    from gitcrypt_sops.gitdrivers.merge import merge_documents
    from gitcrypt_sops.tree import Comment

    def doc(*items: tuple[Any, Any]) -> dict[Any, Any]:
        return dict(items)

    c1 = Comment(" about b")
    base = doc(("a", 1), (c1, None), ("b", "x"), ("c", {"d": True, "e": [1, 2]}))
    ours = doc(("a", 2), (Comment(" about b"), None), ("b", "x"), ("c", {"d": True, "e": [1, 2]}), ("z", "ours"))
    theirs = doc(("a", 1), (Comment(" about b, edited"), None), ("b", "x"), ("new", "t"),
                 ("c", {"d": False, "e": [1, 2]}))
    merged, conflicts = merge_documents([base], [ours], [theirs])
    assert conflicts == []
    plain = [(k.text if isinstance(k, Comment) else k, v) for k, v in merged[0].items()]
    assert plain == [("a", 2), (" about b, edited", None), ("b", "x"), ("new", "t"),
                     ("c", {"d": False, "e": [1, 2]}), ("z", "ours")]

    # 1, 1.0 and True are different values; lists are whole values; deletions against edits conflict
    _, conflicts = merge_documents([doc(("n", 1))], [doc(("n", 1.0))], [doc(("n", True))])
    assert [(c.path, c.reason) for c in conflicts] == [('["n"]', "changed on both sides")]
    _, conflicts = merge_documents([doc(("l", [1]))], [doc(("l", [1, 2]))], [doc(("l", [0, 1]))])
    assert [c.path for c in conflicts] == ['["l"]']
    _, conflicts = merge_documents([doc(("k", "v"))], [doc()], [doc(("k", "w"))])
    assert conflicts[0].reason == "deleted on one side, changed on the other"
    merged, conflicts = merge_documents(None, [doc(("k", "v"))], [doc(("k", "v"), ("j", 1))])
    assert conflicts == [] and merged == [{"k": "v", "j": 1}]
    _, conflicts = merge_documents(None, [doc(("k", "v"))], [doc(("k", "w"))])
    assert conflicts[0].reason == "added on both sides with different values"
    # a chooser settles conflicts: theirs here
    merged, conflicts = merge_documents([doc(("k", "v"))], [doc(("k", "o"))], [doc(("k", "t"))],
                                        lambda path: "theirs")
    assert conflicts == [] and merged == [{"k": "t"}]


@pytest.mark.parametrize(("fmt", "plain"), [
    ("dotenv", b"A=1\nB=2\nC=3\n"),
    ("ini", b"[s]\na = 1\nb = 2\n[t]\nc = 3\n"),
    ("binary", b"\x00binary payload\xff"),
    ("yaml", b"a: 1\nb: 2\n---\nc: 3\n"),
])
def test_merge_files_in_every_format(fmt: str, plain: bytes) -> None:
    from gitcrypt_sops.gitdrivers.merge import merge_files

    options = api.EncryptOptions([[Recipient("age", AGE_RECIPIENT)]])
    base = api.encrypt_bytes(plain, fmt, options)

    def edit(change: Any) -> bytes:
        decrypted = api.decrypt_parsed(api.parse(base, fmt, encrypted=True))
        docs = decrypted.documents
        change(docs)
        return api.encrypt_parsed(api.Parsed(fmt, docs), api.EncryptOptions([], decrypted.metadata.rule),
                                  data_key=decrypted.data_key, stash=decrypted.stash,
                                  wrapped=(decrypted.metadata.key_groups, 0))

    if fmt == "binary":
        ours = edit(lambda d: d[0].update(data="ours"))
        theirs = edit(lambda d: d[0].update(data="theirs"))
        result = merge_files(base, ours, theirs, fmt, "f")
        assert [c.path for c in result.conflicts] == ['["data"]'] and result.data == ours
        return
    def section(docs: list[Any], index: int) -> dict[str, Any]:
        """Where to edit: the document itself, or (INI) its first or last section."""
        if fmt != "ini":
            return docs[index]  # type: ignore[no-any-return]
        return list(docs[0].values())[index]  # type: ignore[no-any-return]

    ours = edit(lambda d: section(d, 0).update({"a" if fmt != "dotenv" else "A": "ours"}))
    theirs = edit(lambda d: section(d, -1).update({"added": "theirs"}))
    result = merge_files(base, ours, theirs, fmt, "f")
    assert result.conflicts == []
    merged = api.decrypt_data(result.data, fmt).documents
    expected = api.decrypt_data(theirs, fmt).documents
    section(expected, 0)["a" if fmt != "dotenv" else "A"] = "ours"
    from gitcrypt_sops.tree import strip_comments

    assert strip_comments(merged) == strip_comments(expected)
