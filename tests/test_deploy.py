"""exec-env, exec-file and k8s-secret: real child processes, real signals, real sops.

Our CLI runs as a user runs it (``python -m gitcrypt_sops`` in a scrubbed
environment); the child is ``/bin/sh`` or a small Python script that reports what it
saw into files, so the parent's stdout stays observable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import AGE_KEY_FILE, AGE_RECIPIENT, Runner, scrubbed_env

import gitcrypt_sops as gs
from gitcrypt_sops import api, deploy
from gitcrypt_sops.errors import SopsError, UsageError
from gitcrypt_sops.providers.age import AgeProvider

PY = sys.executable
SECRETS = {"DB_PASSWORD": "hunter2", "API_TOKEN": "t0k3n with spaces", "PORT": 5432, "RATIO": 1.0,
           "BIG": 1e21, "ENABLED": True, "MULTI": "line1\nline2"}


def encrypt_to(path: Path, data: object, fmt: str | None = None) -> Path:
    fmt = fmt or path.suffix.lstrip(".").replace("yml", "yaml")
    if isinstance(data, bytes):
        options = api.EncryptOptions([AgeProvider().parse_recipients(AGE_RECIPIENT)])
        path.write_bytes(api.encrypt_bytes(data, fmt, options))
    else:
        path.write_bytes(gs.encrypt(data, fmt, recipients=[AGE_RECIPIENT]))
    return path


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    return encrypt_to(tmp_path / "secrets.enc.yaml", SECRETS, "yaml")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    return scrubbed_env(home, {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE), **extra})


def spawn(home: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PY, "-m", "gitcrypt_sops", *args], env=cli_env(home), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def env_dump(output: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in output.decode().split("\0") if item)


# -- exec-env ---------------------------------------------------------------------------------


def test_exec_env_values_and_exit_code(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-env", str(secrets_file), 'printf "%s|%s|%s" "$DB_PASSWORD" "$API_TOKEN" "$PORT"; exit 7')
    assert result.returncode == 7, result.stderr
    assert result.stdout == b"hunter2|t0k3n with spaces|5432"  # the child's output only
    assert result.stderr == b""


def test_exec_env_matches_sops(ours: Runner, sops: Runner, secrets_file: Path) -> None:
    """The same variables, byte for byte, as the real sops exec-env (floats, bools, newlines)."""
    ours_env = env_dump(ours("exec-env", str(secrets_file), "env -0", check=True).stdout)
    sops_env = env_dump(sops("exec-env", str(secrets_file), "env -0", check=True).stdout)
    for name in SECRETS:
        assert ours_env[name] == sops_env[name], name
    assert ours_env["RATIO"] == "1.0" and ours_env["BIG"] == "1E+21" and ours_env["ENABLED"] == "true"


def test_exec_env_pristine_argv_form(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-env", "--pristine", str(secrets_file), "--", "/usr/bin/env", "-0", check=True)
    assert set(env_dump(result.stdout)) == set(SECRETS)


def test_exec_env_dotenv_input(ours: Runner, tmp_path: Path) -> None:
    path = encrypt_to(tmp_path / "app.enc.env", b"# comment\nA=1\nB=x=y\n", "dotenv")
    result = ours("exec-env", "--pristine", str(path), "--", "/usr/bin/env", "-0", check=True)
    assert env_dump(result.stdout) == {"A": "1", "B": "x=y"}


def test_exec_env_refuses_nested_values(ours: Runner, tmp_path: Path) -> None:
    path = encrypt_to(tmp_path / "nested.enc.yaml", {"db": {"password": "x"}}, "yaml")
    marker = tmp_path / "ran"
    result = ours("exec-env", str(path), f"touch {marker}")
    assert result.returncode == 1
    assert result.stderr == b"gitcrypt-sops: cannot use complex value in environment; offending key db\n"
    assert not marker.exists()


def test_exec_env_same_process(ours: Runner, secrets_file: Path, home: Path) -> None:
    process = spawn(home, "exec-env", "--same-process", str(secrets_file), 'echo "$$ $DB_PASSWORD"')
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.decode().split() == [str(process.pid), "hunter2"]  # the shell replaced our process


@pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root")
def test_exec_user(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-env", "--user", "nobody", str(secrets_file), 'echo "$(id -u) $DB_PASSWORD"', check=True)
    assert result.stdout.split() == [b"65534", b"hunter2"]
    result = ours("exec-file", "--user", "nobody", str(secrets_file), "id -u; grep -c hunter2 {}", check=True)
    assert result.stdout.split() == [b"65534", b"1"]


def test_exec_env_signal_forwarded(secrets_file: Path, tmp_path: Path, home: Path) -> None:
    """SIGTERM sent to our process reaches the child; the child's exit code comes back."""
    ready, got = tmp_path / "ready", tmp_path / "got"
    script = (
        "import os, signal, sys, time\n"
        f"def on_term(signum, frame):\n    open({str(got)!r}, 'w').write(f'{{signum}} {{os.environ[\"DB_PASSWORD\"]}}\\n')\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        f"open({str(ready)!r}, 'w').write(str(os.getpid()) + '\\n')\n"
        "time.sleep(60)\n"
    )
    process = spawn(home, "exec-env", str(secrets_file), "--", PY, "-c", script)
    child_pid = int(wait_for(ready))
    assert child_pid != process.pid
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert wait_for(got) == f"{int(signal.SIGTERM)} hunter2\n"
    assert process.returncode == 7, err
    assert out == b"" and err == b""


def test_exec_env_child_killed_by_signal(ours: Runner, secrets_file: Path) -> None:
    """A child ended by a signal ends us with the same signal."""
    result = ours("exec-env", str(secrets_file), "kill -USR1 $$")
    assert result.returncode == -signal.SIGUSR1


# -- exec-file --------------------------------------------------------------------------------


def child_reporting(report: Path, *, read: bool = True, sleep: float = 0) -> str:
    """A Python child that records what it sees at the path it is given (argv[1])."""
    return (
        "import json, os, stat, sys, time\n"
        "path = sys.argv[1]\n"
        "info = os.lstat(path)\n"
        "parent = os.stat(os.path.dirname(path))\n"
        f"content = open(path).read() if {read!r} else None\n"
        "seen = {'path': path, 'fifo': stat.S_ISFIFO(info.st_mode), 'regular': stat.S_ISREG(info.st_mode),\n"
        "        'mode': stat.S_IMODE(info.st_mode), 'dir_mode': stat.S_IMODE(parent.st_mode),\n"
        "        'content': content, 'pid': os.getpid()}\n"
        f"open({str(report)!r}, 'w').write(json.dumps(seen) + '\\n')\n"
        f"time.sleep({sleep})\n"
    )


def test_exec_file_uses_fifo_by_default(ours: Runner, secrets_file: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = ours("exec-file", str(secrets_file), "--", PY, "-c", child_reporting(report), "{}", check=True)
    seen = json.loads(report.read_text())
    assert seen["fifo"] and not seen["regular"]
    assert seen["mode"] == 0o600 and seen["dir_mode"] == 0o700
    assert os.path.basename(seen["path"]) == "tmp-file"
    assert yaml.safe_load(seen["content"])["DB_PASSWORD"] == "hunter2"
    assert not os.path.exists(seen["path"]) and not os.path.exists(os.path.dirname(seen["path"]))
    assert result.stdout == b""


def test_exec_file_content_is_decrypt_output(ours: Runner, sops: Runner, secrets_file: Path) -> None:
    """Byte for byte what ``decrypt`` prints; the same data as sops exec-file gives."""
    for flags in ([], ["--output-type", "json"], ["--no-fifo"]):
        mine = ours("exec-file", *flags, str(secrets_file), "cat {}", check=True).stdout
        decrypted = ours("decrypt", *[f for f in flags if f != "--no-fifo"], str(secrets_file), check=True).stdout
        theirs = sops("exec-file", *flags, str(secrets_file), "cat {}", check=True).stdout
        assert mine == decrypted, flags
        if "json" in flags:  # YAML layout differs on purpose (we keep the file's); the data does not
            assert json.loads(mine) == json.loads(theirs)


def test_exec_file_regular_file_and_filename(ours: Runner, secrets_file: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    ours("exec-file", "--no-fifo", "--filename", "app.json", "--output-type", "json", str(secrets_file),
         "--", PY, "-c", child_reporting(report), "{}", check=True)
    seen = json.loads(report.read_text())
    assert seen["regular"] and seen["mode"] == 0o600 and seen["dir_mode"] == 0o700
    assert os.path.basename(seen["path"]) == "app.json"
    assert json.loads(seen["content"])["DB_PASSWORD"] == "hunter2"
    assert not os.path.exists(os.path.dirname(seen["path"]))


def test_exec_file_shell_placeholder_is_quoted(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-file", "--filename", "my file;rm -rf x", str(secrets_file), "grep -c hunter2 {}", check=True)
    assert result.stdout == b"1\n"


def test_exec_file_fifo_never_opened(ours: Runner, secrets_file: Path) -> None:
    """A child that never reads the FIFO does not leave us hanging."""
    started = time.monotonic()
    result = ours("exec-file", str(secrets_file), "exit 4")
    assert result.returncode == 4
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("fifo", [False, True])
def test_exec_file_removed_after_child_sigkill(secrets_file: Path, tmp_path: Path, home: Path, fifo: bool) -> None:
    report = tmp_path / "report"
    flags = [] if fifo else ["--no-fifo"]
    process = spawn(home, "exec-file", *flags, str(secrets_file), "--", PY, "-c",
                    child_reporting(report, sleep=60), "{}")
    seen = json.loads(wait_for(report))
    assert os.path.exists(seen["path"])
    os.kill(seen["pid"], signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err  # passed through
    assert not os.path.exists(seen["path"])
    assert not os.path.exists(os.path.dirname(seen["path"]))
    assert out == b""


def test_exec_file_removed_when_we_are_terminated(secrets_file: Path, tmp_path: Path, home: Path) -> None:
    report = tmp_path / "report"
    process = spawn(home, "exec-file", "--no-fifo", str(secrets_file), "--", PY, "-c",
                    child_reporting(report, sleep=60), "{}")
    seen = json.loads(wait_for(report))
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM  # the child died of it, so do we
    assert not os.path.exists(os.path.dirname(seen["path"]))


def test_exec_file_exit_code(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-file", str(secrets_file), "--", PY, "-c", "import sys; sys.exit(42)", "{}")
    assert result.returncode == 42


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["exec-env", "exec-file"])
def test_missing_command(ours: Runner, secrets_file: Path, command: str) -> None:
    result = ours(command, str(secrets_file))
    assert result.returncode == 1
    assert result.stderr == b"gitcrypt-sops: missing the command to run\n"


@pytest.mark.parametrize("command", ["exec-env", "exec-file", "k8s-secret"])
def test_missing_file(ours: Runner, tmp_path: Path, command: str) -> None:
    extra = ["--name", "x"] if command == "k8s-secret" else []
    args = [*extra, str(tmp_path / "nope.yaml")] + ([] if command == "k8s-secret" else ["true"])
    result = ours(command, *args)
    assert result.returncode == 100
    assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr


def test_directory_and_not_encrypted(ours: Runner, tmp_path: Path) -> None:
    result = ours("exec-env", str(tmp_path), "true")
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1
    plain = tmp_path / "plain.yaml"
    plain.write_text("a: b\n")
    result = ours("exec-file", str(plain), "true")
    assert result.returncode == 1 and b"metadata not found" in result.stderr and result.stderr.count(b"\n") == 1


def test_command_not_found(ours: Runner, secrets_file: Path, tmp_path: Path) -> None:
    result = ours("exec-env", str(secrets_file), "--", str(tmp_path / "no-such-program"), "x")
    assert result.returncode == 127
    assert result.stderr.startswith(b"gitcrypt-sops: command not found: ") and result.stderr.count(b"\n") == 1


def test_background_exec_file_refused(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-file", "--background", str(secrets_file), "true")
    assert result.returncode == 8


def test_bad_filename(ours: Runner, secrets_file: Path) -> None:
    result = ours("exec-file", "--filename", "../x", str(secrets_file), "true")
    assert result.returncode == 1 and b"--filename" in result.stderr


# -- library functions ------------------------------------------------------------------------


def test_child_argv() -> None:
    assert deploy.child_argv(["echo hi"]) == ["/bin/sh", "-c", "echo hi"]
    assert deploy.child_argv(["--", "cat", "{}"], "/p") == ["cat", "/p"]
    assert deploy.child_argv(["cat {}"], "/a b") == ["/bin/sh", "-c", "cat '/a b'"]
    with pytest.raises(UsageError):
        deploy.child_argv([])


def test_environment_from_rules() -> None:
    assert deploy.environment_from({"A": None, "B": 3}) == {"A": "<nil>", "B": "3"}  # matches sops's %v
    with pytest.raises(SopsError, match="'='"):
        deploy.environment_from({"A=B": "x"})
    with pytest.raises(SopsError, match="NUL"):
        deploy.environment_from({"A": "x\0y"})


# -- k8s-secret -------------------------------------------------------------------------------


def test_k8s_secret_data(ours: Runner, secrets_file: Path) -> None:
    result = ours("k8s-secret", str(secrets_file), "--name", "app", "--namespace", "prod",
                  "--label", "team=core", "--annotation", "note=x=y", check=True)
    manifest = yaml.safe_load(result.stdout)
    assert manifest["apiVersion"] == "v1" and manifest["kind"] == "Secret" and manifest["type"] == "Opaque"
    assert manifest["metadata"] == {"name": "app", "namespace": "prod", "labels": {"team": "core"},
                                    "annotations": {"note": "x=y"}}
    decoded = {k: base64.b64decode(v).decode() for k, v in manifest["data"].items()}
    assert decoded == {"DB_PASSWORD": "hunter2", "API_TOKEN": "t0k3n with spaces", "PORT": "5432", "RATIO": "1.0",
                       "BIG": "1E+21", "ENABLED": "true", "MULTI": "line1\nline2"}


def test_k8s_secret_string_data_roundtrips_tricky_text(ours: Runner, tmp_path: Path) -> None:
    values = {"a": "5432", "b": "true", "c": "x\n\n", "d": "", "e": " lead: x", "f": "#not a comment",
              "g": "ünï", "h": "- item", "i": "a\tb"}
    path = encrypt_to(tmp_path / "t.enc.json", values, "json")
    for fmt in ("yaml", "json"):
        result = ours("k8s-secret", str(path), "--name", "t", "--string-data", "--format", fmt, check=True)
        manifest = yaml.safe_load(result.stdout) if fmt == "yaml" else json.loads(result.stdout)
        assert manifest["stringData"] == values


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_k8s_secret_matches_kubectl_and_kustomize(ours: Runner, tmp_path: Path, home: Path) -> None:
    """Same data as ``kubectl create secret generic --from-env-file``; kustomize takes it as a resource."""
    plain = b"USER=admin\nPASSWORD=p@ss w0rd\nURL=https://x.example/?a=b\n"
    (tmp_path / "plain.env").write_bytes(plain)
    path = encrypt_to(tmp_path / "app.enc.env", plain, "dotenv")
    ours_manifest = yaml.safe_load(ours("k8s-secret", str(path), "--name", "app", "-n", "prod", check=True).stdout)
    kubectl_env = scrubbed_env(home, {"KUBECONFIG": "/dev/null"})
    made = subprocess.run(["kubectl", "create", "secret", "generic", "app", "-n", "prod",
                           f"--from-env-file={tmp_path / 'plain.env'}", "--dry-run=client", "-o", "json"],
                          env=kubectl_env, capture_output=True, check=True, timeout=60)
    reference = json.loads(made.stdout)
    assert ours_manifest["data"] == reference["data"]
    assert ours_manifest["metadata"]["name"] == reference["metadata"]["name"] == "app"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "secret.yaml").write_bytes(ours("k8s-secret", str(path), "--name", "app", check=True).stdout)
    (overlay / "kustomization.yaml").write_text("resources:\n- secret.yaml\nnamespace: staging\n")
    built = subprocess.run(["kubectl", "kustomize", str(overlay)], env=kubectl_env, capture_output=True,
                           check=True, timeout=60)
    rendered = yaml.safe_load(built.stdout)
    assert rendered["metadata"] == {"name": "app", "namespace": "staging"}
    assert rendered["data"] == reference["data"]


def test_k8s_secret_binary_and_file_key(ours: Runner, tmp_path: Path) -> None:
    blob = bytes(range(256))
    path = encrypt_to(tmp_path / "cert.der", blob, "binary")
    manifest = yaml.safe_load(ours("k8s-secret", str(path), "--name", "tls", check=True).stdout)
    assert base64.b64decode(manifest["data"]["cert.der"]) == blob
    result = ours("k8s-secret", str(path), "--name", "tls", "--string-data")
    assert result.returncode == 1 and b"not UTF-8" in result.stderr
    nested = encrypt_to(tmp_path / "config.enc.yaml", {"db": {"host": "h", "password": "p"}}, "yaml")
    result = ours("k8s-secret", str(nested), "--name", "c")
    assert result.returncode == 1 and b"--file-key" in result.stderr
    manifest = yaml.safe_load(ours("k8s-secret", str(nested), "--name", "c", "--file-key", "config.json",
                                   "--output-type", "json", check=True).stdout)
    assert json.loads(base64.b64decode(manifest["data"]["config.json"])) == {"db": {"host": "h", "password": "p"}}


def test_k8s_secret_bad_input(ours: Runner, secrets_file: Path, tmp_path: Path) -> None:
    result = ours("k8s-secret", str(secrets_file), "--name", "Bad_Name")
    assert result.returncode == 1 and b"not a valid Kubernetes name" in result.stderr
    manifest = encrypt_to(tmp_path / "m.enc.yaml", {"apiVersion": "v1", "kind": "Secret", "data": {"a": "eA=="}})
    result = ours("k8s-secret", str(manifest), "--name", "m")
    assert result.returncode == 1 and b"already a Kubernetes manifest" in result.stderr
    bad_key = encrypt_to(tmp_path / "k.enc.json", {"a/b": "x"}, "json")
    result = ours("k8s-secret", str(bad_key), "--name", "k")
    assert result.returncode == 1 and b"cannot be a Kubernetes Secret key" in result.stderr
    assert b"Traceback" not in result.stderr


def test_k8s_secret_output_file(ours: Runner, secrets_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "secret.yaml"
    target.parent.mkdir()
    result = ours("k8s-secret", str(secrets_file), "--name", "app", "--output", str(target), check=True)
    assert result.stdout == b""
    assert yaml.safe_load(target.read_bytes())["metadata"]["name"] == "app"


# -- CD with OIDC: AWS web identity, no static keys -------------------------------------------

class _Moto:
    """A moto server on 127.0.0.1 with one KMS key and an IAM role for web identity."""

    def __init__(self, url: str, key_arn: str, role_arn: str) -> None:
        self.url = url
        self.key_arn = key_arn
        self.role_arn = role_arn

    def endpoint_env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def web_identity_sessions(self) -> list[tuple[str, str]]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=10) as answer:
            roles = json.load(answer).get("sts", {}).get("AssumedRole", [])
        return [(role["role_arn"], role["session_name"]) for role in roles]


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[_Moto]:
    """Its own server, key and uniquely named role: moto's state is shared by every server in a process."""
    pytest.importorskip("boto3")
    pytest.importorskip("flask_cors")
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        session = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "testing",
                   "aws_secret_access_key": "testing"}
        key_arn = boto3.client("kms", **session).create_key(Description="deploy test")["KeyMetadata"]["Arn"]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": "token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity"}]}
        role_arn = boto3.client("iam", **session).create_role(
            RoleName=f"deploy-{uuid.uuid4().hex[:12]}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        yield _Moto(url, key_arn, role_arn)
    finally:
        server.stop()


def clean_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Only PATH, HOME, LANG and ``extra``: nothing else can hand out AWS credentials."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def test_pipeline_decrypts_with_web_identity(moto_aws: _Moto, tmp_path: Path, home: Path) -> None:
    """A CD job: an OIDC token file and a role ARN (STS AssumeRoleWithWebIdentity), no access keys."""
    aws = moto_aws
    static = {**aws.endpoint_env(), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    plain = tmp_path / "app.yaml"
    plain.write_text("DB_PASSWORD: hunter2\nPORT: 5432\n")
    encrypted = subprocess.run([PY, "-m", "gitcrypt_sops", "encrypt", "--kms", aws.key_arn, str(plain)],
                               env=clean_env(home, static), capture_output=True, timeout=120, check=True).stdout
    target = tmp_path / "app.enc.yaml"
    target.write_bytes(encrypted)
    token = tmp_path / "oidc-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGU6cmVmOnJlZnMvaGVhZHMvbWFpbiJ9.c2ln")
    log = tmp_path / "audit.jsonl"
    pipeline = {**aws.endpoint_env(), "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": aws.role_arn,
                "AWS_ROLE_SESSION_NAME": "deploy-job-42", "GITCRYPT_SOPS_AUDIT_LOG": str(log)}
    assert not any(name in pipeline for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"))
    before = len(aws.web_identity_sessions())

    ran = subprocess.run([PY, "-m", "gitcrypt_sops", "exec-env", str(target), 'echo "$DB_PASSWORD"'],
                         env=clean_env(home, pipeline), capture_output=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b"hunter2\n"
    manifest = subprocess.run([PY, "-m", "gitcrypt_sops", "k8s-secret", str(target), "--name", "app"],
                              env=clean_env(home, pipeline), capture_output=True, timeout=120, check=False)
    assert manifest.returncode == 0, manifest.stderr
    assert base64.b64decode(yaml.safe_load(manifest.stdout)["data"]["DB_PASSWORD"]) == b"hunter2"

    assert set(aws.web_identity_sessions()[before:]) == {(aws.role_arn, "deploy-job-42")}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["command"] for r in records] == ["exec-env", "k8s-secret"]
    assert all(r["recipients"] == [f"kms:{aws.key_arn}"] for r in records), records
    # without the token the same job has no credentials at all
    denied = subprocess.run([PY, "-m", "gitcrypt_sops", "exec-env", str(target), "true"],
                            env=clean_env(home, {**aws.endpoint_env()}), capture_output=True, timeout=120,
                            check=False)
    assert denied.returncode == 128 and denied.stderr.count(b"\n") == 1
