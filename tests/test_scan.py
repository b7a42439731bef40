"""The secret scanner on a real git repository with planted secrets and sops files.

The repository is built once per module: plaintext secrets in several formats, files
encrypted by the real sops binary and by us (yaml, json, dotenv, ini, binary), a
file encrypted later (its plaintext stays in history), a deleted file with a secret,
a must_encrypt policy, and values a suffix rule left in plaintext.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import AGE_RECIPIENT, Runner, scrubbed_env, sops_binary

import gitcrypt_sops as gs
from gitcrypt_sops import scan

pytest.importorskip("detect_secrets")

# planted secrets (all fake, shaped like real ones)
AWS_KEY = "AKIAZ7VQ3XH2M4KJ5WRT"
GITHUB = "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"
STRIPE = "sk_live_" + "51Hq9xGk2LmNpQrStUvWxYz0"
SLACK = "xoxb-" + "2713847619-4829103746512-Zq8Lm3Nv7Rt2Ks9Hw4Jc6Bd1"
PASSWORD = "Xk2#pL9qR7vT!w"
AGE_SECRET = "AGE-SECRET-KEY-1QQQ5ZHJZP6D5JDV2PQ8FZ5LSX8XN3G3T0CZK3FRG0N7JPW58CXSQ9TNPAL"
LEFT_PLAIN = "Zt7#qW9!mK2$vB5x"
RSA_HEADER = "-----BEGIN RSA PRIVATE KEY-----"
PLANTED = (AWS_KEY, GITHUB, STRIPE, SLACK, PASSWORD, AGE_SECRET, LEFT_PLAIN)

ENCRYPTED_FILES = ("secrets/by-sops.yaml", "secrets/by-sops.json", "secrets/by-sops.env", "secrets/by-sops.ini",
                   "secrets/ours.yaml", "secrets/ours.json", "secrets/cert.bin", "config/app.yaml")


def git(repo: Path, *args: str) -> str:
    env = scrubbed_env(repo.parent / "home", {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                                             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    result = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=True, timeout=60)
    return result.stdout.decode().strip()


def sops_encrypt(home: Path, path: Path, *extra: str) -> bytes:
    result = Runner([sops_binary()], home)("encrypt", "--age", AGE_RECIPIENT, *extra, str(path), check=True)
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("scanrepo")
    home = base / "home"
    home.mkdir()
    root = base / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "config").mkdir()
    (root / "src").mkdir()
    (root / "secrets").mkdir()
    app_plain = f'aws_access_key_id: {AWS_KEY}\ndb:\n  password: "{PASSWORD}"\n  host: db.internal\n'
    (root / "config" / "app.yaml").write_text(app_plain)
    (root / "src" / "main.py").write_text(f'import os\n\nTOKEN = "{GITHUB}"\n')
    (root / ".env").write_text(f"STRIPE_KEY={STRIPE}\nDEBUG=1\n")
    (root / "README.md").write_text("# demo\n\nNothing secret here.\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "plaintext secrets")
    first = git(root, "rev-parse", "HEAD")

    (root / "config" / "app.yaml").write_bytes(gs.encrypt(app_plain.encode(), "yaml", recipients=[AGE_RECIPIENT]))
    (root / ".env").unlink()
    plain_dir = base / "plain"
    plain_dir.mkdir()
    sources = {
        "by-sops.yaml": f"slack: {SLACK}\nnested:\n  token: {GITHUB}\n  list: [a, b]\n",
        "by-sops.json": json.dumps({"aws": AWS_KEY, "n": 1, "password": PASSWORD}),
        "by-sops.env": f"STRIPE_KEY={STRIPE}\nPASSWORD={PASSWORD}\n",
        "by-sops.ini": f"[db]\npassword = {PASSWORD}\n[aws]\nkey = {AWS_KEY}\n",
    }
    for name, text in sources.items():
        (plain_dir / name).write_text(text)
        (root / "secrets" / name).write_bytes(sops_encrypt(home, plain_dir / name))
    (root / "secrets" / "ours.yaml").write_bytes(
        gs.encrypt({"github": GITHUB, "key": RSA_HEADER + "\nMIIEowIBAAKCAQEA7\n"}, "yaml", recipients=[AGE_RECIPIENT]))
    (root / "secrets" / "ours.json").write_bytes(gs.encrypt({"slack": SLACK}, "json", recipients=[AGE_RECIPIENT]))
    (root / "secrets" / "cert.bin").write_bytes(
        gs.encrypt(f"{RSA_HEADER}\nMIIEowIBAAKCAQEA7\n".encode(), "binary", recipients=[AGE_RECIPIENT]))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "encrypt everything")
    second = git(root, "rev-parse", "HEAD")

    # a suffix rule leaves a value plaintext; a must_encrypt file is not encrypted
    (plain_dir / "mixed.yaml").write_text(f'api_password_unencrypted: "{LEFT_PLAIN}"\ntoken: {GITHUB}\n')
    (root / "mixed.enc.yaml").write_bytes(sops_encrypt(home, plain_dir / "mixed.yaml"))
    (root / "secrets" / "plain.yaml").write_text("name: not encrypted\n")
    (root / "keys.txt").write_text(f"# created: 2024-01-01\n{AGE_SECRET}\n")
    (root / "allowed.py").write_text(f'FIXTURE = "{GITHUB}"  # pragma: allowlist secret\n')
    (root / ".sops-policy.yaml").write_text(
        "creation_rules:\n  - age: " + AGE_RECIPIENT + "\npolicy:\n  must_encrypt:\n    - secrets/**\n"
        "  never_plaintext: '(?i)api_password'\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "more")
    return {"root": root, "home": home, "first": first, "second": second}


def run_scan(repo: dict[str, Any], *args: str, cwd: Path | None = None) -> tuple[int, dict[str, Any], bytes]:
    runner = Runner([sys.executable, "-m", "gitcrypt_sops"], repo["home"])
    result = runner("scan", "--format", "json", *args, cwd=cwd or repo["root"])
    assert b"Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout else {}, result.stderr


def by_file(report: dict[str, Any], *, history: bool) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        if ("commit" in finding) == history:
            out.setdefault(finding["file"], []).append(finding)
    return out


def test_tree_scan(repo: dict[str, Any]) -> None:
    code, report, _ = run_scan(repo)
    assert code == 1
    files = by_file(report, history=False)
    detectors = {name: {f["detector"] for f in found if "detector" in f} for name, found in files.items()}
    assert "GitHub Token" in detectors["src/main.py"]
    assert "Age Secret Key" in detectors["keys.txt"]
    # (c) the suffix rule left a password in plaintext in a sops file: named with its key path
    [left] = [f for f in files["mixed.enc.yaml"] if f["kind"] == "unencrypted-value"]
    assert left["key_path"] == '["api_password_unencrypted"]' and left["line"] == 1
    # the policy's never_plaintext names the same key (reused from gitcrypt_sops.policy)
    [never] = [f for f in files["mixed.enc.yaml"] if f["kind"] == "never-plaintext"]
    assert '["api_password_unencrypted"]' in never["message"] and "line" not in never
    assert {f["kind"] for f in files["mixed.enc.yaml"]} == {"unencrypted-value", "never-plaintext"}
    # (b) must_encrypt
    [must] = files["secrets/plain.yaml"]
    assert must["kind"] == "must-encrypt" and "secrets/**" in must["message"]
    # zero findings in ciphertext, whoever wrote it, and none for the allowlisted line
    for name in ENCRYPTED_FILES + ("allowed.py", ".sops-policy.yaml", "README.md"):
        assert name not in files, (name, files.get(name))


def test_history_scan(repo: dict[str, Any]) -> None:
    code, report, _ = run_scan(repo, "--git-history")
    assert code == 1
    history = by_file(report, history=True)
    app = {(f["detector"], f["commit"], f.get("key_path")) for f in history["config/app.yaml"]}
    assert ("AWS Access Key", repo["first"], '["aws_access_key_id"]') in app
    assert ("Secret Keyword", repo["first"], '["db"]["password"]') in app
    [stripe] = [f for f in history[".env"] if f["detector"] == "Stripe Access Key"]
    assert stripe["commit"] == repo["first"] and stripe["line"] == 1  # a file deleted since
    assert history["src/main.py"][0]["commit"] == repo["first"]
    for name in ENCRYPTED_FILES:
        assert all(f["commit"] == repo["first"] for f in history.get(name, [])), name  # only the plaintext era
    assert report["stats"]["commits"] == 3 and report["stats"]["blobs"] >= 15


def test_every_planted_secret_found_and_none_printed(repo: dict[str, Any]) -> None:
    runner = Runner([sys.executable, "-m", "gitcrypt_sops"], repo["home"])
    result = runner("scan", "--git-history", cwd=repo["root"])
    assert result.returncode == 1
    output = result.stdout + result.stderr
    for secret in PLANTED:
        assert secret.encode() not in output
    assert b"finding(s)" in result.stderr
    _, report, _ = run_scan(repo, "--git-history")
    found_hashes = {f.get("hashed_secret") for f in report["findings"]}
    for secret in (AWS_KEY, GITHUB, STRIPE, PASSWORD, AGE_SECRET):
        assert scan._hash(secret) in found_hashes, secret
    # SLACK only ever lived encrypted; LEFT_PLAIN is found through the keyword rule (value with quotes)
    assert scan._hash(SLACK) not in found_hashes


def test_detect_secrets_alone_flags_ciphertext(repo: dict[str, Any]) -> None:
    """Why the scanner must know sops: the library by itself reports ciphertext and metadata."""
    target = repo["root"] / "secrets" / "by-sops.yaml"
    raw = scan.scan_text("by-sops.yaml", target.read_text())
    assert raw, "detect-secrets found nothing in a sops file: the premise of this test is gone"
    assert scan.scan_bytes("secrets/by-sops.yaml", target.read_bytes()) == []


def test_engine_matches_detect_secrets_own_loop(repo: dict[str, Any]) -> None:
    """Our faster per-line loop returns exactly what detect-secrets' own loop returns."""
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.transformers import get_transformed_file

    scan._detect_secrets_ready()
    engine = scan._Engine()
    samples = [p for p in repo["root"].rglob("*") if p.is_file() and ".git" not in p.parts]
    samples += sorted((Path(scan.__file__).parent).glob("*.py"))[:8]
    extra = ("password = 'hunter2xyz'\nkey: \"c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZw==\"\n"
             "url = 'https://user:p4ssw0rd@example.com'\nsecret = get_secret()  # indirect\n"
             "jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'\nhex = 'deadbeefcafebabe0123456789abcdef'\n")
    texts = [(p.name, p.read_text(errors="replace")) for p in samples] + [("extra.py", extra), ("extra.yaml", extra)]
    compared = 0
    for name, text in texts:
        handle = scan._NamedText(text, name)
        lines = list(enumerate(get_transformed_file(handle) or handle.readlines(), 1))
        theirs = {(s.line_number, s.type, s.secret_value)
                  for s in ds_scan._process_line_based_plugins(lines=lines, filename=name)}
        ours = {(s.line_number, s.type, s.secret_value) for s in engine.lines(lines, name)}
        assert ours == theirs, name
        compared += len(theirs)
    assert compared >= 10


def test_baseline_adoption(repo: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(repo["root"], root)
    data = {"root": root, "home": repo["home"]}
    runner = Runner([sys.executable, "-m", "gitcrypt_sops"], repo["home"])
    adopted = runner("scan", "--git-history", "--update-baseline", cwd=root)
    assert adopted.returncode == 0 and b"wrote" in adopted.stderr
    baseline = json.loads((root / scan.DEFAULT_BASELINE).read_text())
    assert baseline["findings"] and all(set(e) == {"kind", "file", "detector", "hashed_secret"}
                                        for e in baseline["findings"])
    for secret in PLANTED:
        assert secret not in (root / scan.DEFAULT_BASELINE).read_text()
    code, report, _ = run_scan(data, "--git-history")
    assert code == 0 and report["findings"] == [] and report["baselined"] > 5
    (root / "new.py").write_text(f'TOKEN = "{STRIPE}"\n')
    code, report, _ = run_scan(data)
    assert code == 1
    assert {f["file"] for f in report["findings"]} == {"new.py"}
    assert "Stripe Access Key" in {f["detector"] for f in report["findings"]}


def test_detect_secrets_baseline_is_accepted(repo: dict[str, Any], tmp_path: Path) -> None:
    """A team's existing ``detect-secrets scan`` baseline works as our baseline."""
    legacy = tmp_path / ".secrets.baseline"
    made = subprocess.run([sys.executable, "-m", "detect_secrets", "scan", "-n", "src/main.py"], cwd=repo["root"],
                          env=scrubbed_env(repo["home"]), capture_output=True, check=True, timeout=120)
    legacy.write_bytes(made.stdout)
    assert json.loads(made.stdout)["results"]["src/main.py"]
    code, report, _ = run_scan(repo, "--baseline", str(legacy), "src/main.py")
    assert code == 0 and report["findings"] == [] and report["baselined"] >= 1


def test_explicit_files_like_pre_commit(repo: dict[str, Any]) -> None:
    code, report, _ = run_scan(repo, "README.md", "secrets/ours.yaml", "src/main.py")
    assert code == 1
    assert {f["file"] for f in report["findings"]} == {"src/main.py"}
    code, report, _ = run_scan(repo, "README.md", "secrets/ours.json")
    assert code == 0 and report["findings"] == []


def test_text_format(repo: dict[str, Any]) -> None:
    runner = Runner([sys.executable, "-m", "gitcrypt_sops"], repo["home"])
    result = runner("scan", "mixed.enc.yaml", "secrets", cwd=repo["root"])
    lines = result.stdout.decode().splitlines()
    assert any(line.startswith('mixed.enc.yaml:1: unencrypted-value: Secret Keyword at ["api_password_unencrypted"]')
               for line in lines)
    assert any(line.startswith('mixed.enc.yaml: never-plaintext: ["api_password_unencrypted"] is stored in plaintext')
               for line in lines)
    assert any(line.startswith("secrets/plain.yaml: must-encrypt: not encrypted") for line in lines)


def test_bad_input(repo: dict[str, Any], tmp_path: Path) -> None:
    runner = Runner([sys.executable, "-m", "gitcrypt_sops"], repo["home"])
    missing = runner("scan", str(tmp_path / "nope"))
    assert missing.returncode == 100 and missing.stderr.count(b"\n") == 1
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    no_repo = runner("scan", "--git-history", str(plain_dir))
    assert no_repo.returncode == 1 and b"needs a git repository" in no_repo.stderr
    broken = tmp_path / "broken"
    shutil.copytree(repo["root"], broken)
    (broken / ".git" / "HEAD").write_text("garbage\n")
    for args in (["scan", str(broken)], ["scan", "--git-history", str(broken)]):
        result = runner(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(b"gitcrypt-sops: git cannot read the repository")
        assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr
    shutil.rmtree(broken / ".git" / "objects")
    (broken / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    result = runner("scan", "--git-history", str(broken))
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1


def test_outside_git_walks_the_directory(tmp_path: Path, home: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.env").write_text(f"KEY={STRIPE}\n")
    (tmp_path / "b.json").write_bytes(gs.encrypt({"k": STRIPE}, "json", recipients=[AGE_RECIPIENT]))
    env = scrubbed_env(home, {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "scan", "--format", "json", str(tmp_path)],
                            env=env, capture_output=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [(f["file"], f["detector"]) for f in findings] == [("sub/a.env", "Stripe Access Key")]


def test_parallel_and_serial_agree(repo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "_PARALLEL_BYTES", 0)
    os.chdir(repo["root"])
    parallel = scan.run_scan(scan.ScanOptions(["."], history=True, jobs=2))
    serial = scan.run_scan(scan.ScanOptions(["."], history=True, jobs=1))
    assert [f.as_dict() for f in parallel.findings] == [f.as_dict() for f in serial.findings]
    assert parallel.findings


def test_nearest_policy_governs(tmp_path: Path, home: Path) -> None:
    """As for ``check``: each file answers to the nearest policy file above it."""
    (tmp_path / ".sops-policy.yaml").write_text("policy:\n  must_encrypt: ['secrets/**', '**/*.key']\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "a.yaml").write_text("a: 1\n")
    (tmp_path / "team" / "secrets").mkdir(parents=True)
    (tmp_path / "team" / ".sops.yaml").write_text("policy:\n  must_encrypt: '*.env'\n")
    (tmp_path / "team" / "x.env").write_text("A=1\n")
    (tmp_path / "team" / "secrets" / "b.yaml").write_text("b: 2\n")  # the root's glob does not reach here
    (tmp_path / "team" / "ok.env").write_bytes(gs.encrypt(b"A=1\n", "dotenv", recipients=[AGE_RECIPIENT]))
    env = scrubbed_env(home, {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "scan", "--format", "json", str(tmp_path)],
                            env=env, capture_output=True, timeout=120, check=False)
    findings = json.loads(result.stdout)["findings"]
    assert sorted((f["file"], f["kind"]) for f in findings) == [("secrets/a.yaml", "must-encrypt"),
                                                                 ("team/x.env", "must-encrypt")]
    assert result.returncode == 1
    result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "scan", "--no-policy", str(tmp_path)],
                            env=env, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout == b""
