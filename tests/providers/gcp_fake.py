"""A local fake of Google Cloud KMS ``Encrypt``/``Decrypt`` for the tests (no emulator exists).

The fake speaks the real wire protocols, so the real clients talk to it unchanged:

* gRPC service ``google.cloud.kms.v1.KeyManagementService`` (messages are the
  proto-plus classes shipped with google-cloud-kms), on a plaintext port and on a
  TLS port;
* the REST mapping ``POST /v1/{name}:encrypt|:decrypt`` (JSON), on a plaintext
  port and on a TLS port;
* Google STS ``POST /v1/token`` on the REST ports (workload identity federation:
  a subject token is exchanged for an access token the fake then accepts);
* a throwaway CA (made with ``cryptography``) whose server certificate names
  ``cloudkms.googleapis.com``, ``localhost`` and ``127.0.0.1``;
* loopback CONNECT proxies, one per TLS port, that answer every ``CONNECT`` with
  200 and pipe to the fake, **never to the requested host**: pointing
  ``https_proxy`` at one sends a client's ``cloudkms.googleapis.com:443`` traffic
  here (how the real sops, which has no endpoint setting, is tested).

Semantics follow Cloud KMS: keys must be created first (unknown key: NOT_FOUND),
a key can be disabled (FAILED_PRECONDITION) or refuse the caller
(PERMISSION_DENIED), a bearer token is required (UNAUTHENTICATED otherwise),
ciphertext is AES-256-GCM under a per-key secret with the request's AAD, a
ciphertext that does not decrypt is INVALID_ARGUMENT, and CRC32C checksums are
checked when sent and returned on every answer.  Every call is logged in
:attr:`FakeKms.calls`.  Everything binds 127.0.0.1 with port 0.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from google.cloud import kms_v1

SERVICE = "google.cloud.kms.v1.KeyManagementService"
GOOGLE_HOST = "cloudkms.googleapis.com"
DEFAULT_TOKEN = "dummy-test-token"


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit by bit: slow, obviously right, independent of the provider's."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class KmsFailure(Exception):
    """An answer with a gRPC status; the REST side maps it to the matching HTTP error."""

    HTTP: ClassVar[dict[grpc.StatusCode, int]] = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.FAILED_PRECONDITION: 400,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.UNAVAILABLE: 503,
    }

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return self.HTTP.get(self.code, 500)


@dataclass
class Call:
    """One request the fake answered (or refused)."""

    transport: str  # "grpc" or "rest"
    method: str  # "Encrypt" or "Decrypt"
    name: str
    authorization: str | None
    outcome: str  # "OK" or the status code name
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeKey:
    name: str
    secret: bytes
    state: str = "ENABLED"  # ENABLED, DISABLED or DENIED (the caller lacks the permission)


# --------------------------------------------------------------------------- the service


class FakeKms:
    """The key store plus every server; :meth:`start` once, :meth:`stop` at the end."""

    def __init__(self, workdir: Path, tokens: set[str] | None = None) -> None:
        self.workdir = workdir
        self.tokens: set[str] = set(tokens) if tokens is not None else {DEFAULT_TOKEN}
        #: also accept any well-formed JWT (what service-account credentials send, self-signed)
        self.accept_jwt = True
        self.keys: dict[str, FakeKey] = {}
        self.calls: list[Call] = []
        #: every STS token exchange (form fields), for workload identity federation
        self.exchanges: list[dict[str, str]] = []
        #: every host a proxy was asked to CONNECT to
        self.connects: list[str] = []
        self._lock = threading.Lock()
        self._seed = os.urandom(32)
        self._stoppers: list[Callable[[], None]] = []
        self.grpc_port = self.grpc_tls_port = self.rest_port = self.rest_tls_port = 0
        self.grpc_proxy_port = self.rest_proxy_port = 0
        self.ca_file = workdir / "ca.pem"

    # keys ---------------------------------------------------------------

    def add_key(self, name: str, state: str = "ENABLED") -> str:
        secret = hashlib.sha256(self._seed + name.encode()).digest()
        with self._lock:
            self.keys[name] = FakeKey(name, secret, state)
        return name

    def _key(self, name: str, permission: str) -> FakeKey:
        key = self.keys.get(name)
        if key is None:
            raise KmsFailure(grpc.StatusCode.NOT_FOUND, f"CryptoKey {name} not found.")
        if key.state == "DENIED":
            raise KmsFailure(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission '{permission}' denied on resource '{name}' (or it may not exist).",
            )
        if key.state != "ENABLED":
            raise KmsFailure(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{name}/cryptoKeyVersions/1 is not enabled, current state is: {key.state}.",
            )
        return key

    def _check_auth(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        ok = scheme.lower() == "bearer" and (
            token in self.tokens or (self.accept_jwt and token.count(".") == 2 and len(token) > 40)
        )
        if not ok:
            raise KmsFailure(
                grpc.StatusCode.UNAUTHENTICATED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )

    def encrypt(self, request: Any, authorization: str | None) -> Any:
        self._check_auth(authorization)
        key = self._key(request.name, "cloudkms.cryptoKeyVersions.useToEncrypt")
        plaintext = bytes(request.plaintext)
        aad = bytes(request.additional_authenticated_data)
        if len(plaintext) > 64 * 1024:
            raise KmsFailure(grpc.StatusCode.INVALID_ARGUMENT, "The plaintext is too large.")
        if "plaintext_crc32c" in request and request.plaintext_crc32c != crc32c(plaintext):
            raise KmsFailure(grpc.StatusCode.INVALID_ARGUMENT, "The checksum in field plaintext_crc32c did not match.")
        nonce = os.urandom(12)
        ciphertext = b"\x01" + nonce + AESGCM(key.secret).encrypt(nonce, plaintext, aad)
        return kms_v1.EncryptResponse(
            name=f"{key.name}/cryptoKeyVersions/1",
            ciphertext=ciphertext,
            ciphertext_crc32c=crc32c(ciphertext),
            verified_plaintext_crc32c="plaintext_crc32c" in request,
            protection_level=kms_v1.ProtectionLevel.SOFTWARE,
        )

    def decrypt(self, request: Any, authorization: str | None) -> Any:
        self._check_auth(authorization)
        key = self._key(request.name, "cloudkms.cryptoKeyVersions.useToDecrypt")
        ciphertext = bytes(request.ciphertext)
        aad = bytes(request.additional_authenticated_data)
        if "ciphertext_crc32c" in request and request.ciphertext_crc32c != crc32c(ciphertext):
            raise KmsFailure(grpc.StatusCode.INVALID_ARGUMENT, "The checksum in field ciphertext_crc32c did not match.")
        try:
            if ciphertext[:1] != b"\x01" or len(ciphertext) < 29:
                raise ValueError
            plaintext = AESGCM(key.secret).decrypt(ciphertext[1:13], ciphertext[13:], aad)
        except (ValueError, InvalidTag):
            raise KmsFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Decryption failed: the ciphertext is invalid.",
            ) from None
        return kms_v1.DecryptResponse(
            plaintext=plaintext,
            plaintext_crc32c=crc32c(plaintext),
            used_primary=True,
            protection_level=kms_v1.ProtectionLevel.SOFTWARE,
        )

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def calls_since(self, index: int) -> list[Call]:
        with self._lock:
            return list(self.calls[index:])

    # servers ------------------------------------------------------------

    def start(self) -> FakeKms:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = make_ca_and_server_cert(self.workdir)
        self._start_grpc(cert_file.read_bytes(), key_file.read_bytes())
        self.rest_port = self._start_rest(None)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        context.set_alpn_protocols(["http/1.1"])
        self.rest_tls_port = self._start_rest(context)
        self.grpc_proxy_port = self._start_proxy(self.grpc_tls_port)
        self.rest_proxy_port = self._start_proxy(self.rest_tls_port)
        return self

    def stop(self) -> None:
        while self._stoppers:
            self._stoppers.pop()()

    def _start_grpc(self, cert: bytes, key: bytes) -> None:
        def unary(method: str, deserialize: Any, serialize: Any, handle: Callable[[Any, str | None], Any]) -> Any:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                authorization = metadata.get("authorization")
                try:
                    answer = handle(request, authorization)
                except KmsFailure as failure:
                    self.record(Call("grpc", method, request.name, authorization, failure.code.name, metadata))
                    context.abort(failure.code, failure.message)
                self.record(Call("grpc", method, request.name, authorization, "OK", metadata))
                return answer

            return grpc.unary_unary_rpc_method_handler(
                behaviour, request_deserializer=deserialize, response_serializer=serialize
            )

        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Encrypt": unary("Encrypt", kms_v1.EncryptRequest.deserialize,
                                 kms_v1.EncryptResponse.serialize, self.encrypt),
                "Decrypt": unary("Decrypt", kms_v1.DecryptRequest.deserialize,
                                 kms_v1.DecryptResponse.serialize, self.decrypt),
            },
        )
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers((handler,))
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        self.grpc_tls_port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
        server.start()
        self._stoppers.append(lambda: server.stop(grace=None).wait(5))

    def _start_rest(self, context: ssl.SSLContext | None) -> int:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b"{}"
                authorization = self.headers.get("Authorization")
                if path == "/v1/token":
                    self._token_exchange(body)
                    return
                name, _, verb = path.removeprefix("/v1/").rpartition(":")
                if not path.startswith("/v1/") or verb not in ("encrypt", "decrypt"):
                    self._answer(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})
                    return
                method = verb.capitalize()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    if verb == "encrypt":
                        request = kms_v1.EncryptRequest.from_json(body, ignore_unknown_fields=True)
                        request.name = name
                        reply = kms_v1.EncryptResponse.to_json(fake.encrypt(request, authorization))
                    else:
                        request = kms_v1.DecryptRequest.from_json(body, ignore_unknown_fields=True)
                        request.name = name
                        reply = kms_v1.DecryptResponse.to_json(fake.decrypt(request, authorization))
                except KmsFailure as failure:
                    fake.record(Call("rest", method, name, authorization, failure.code.name, headers))
                    self._answer(failure.http_status, {"error": {
                        "code": failure.http_status, "message": failure.message, "status": failure.code.name}})
                    return
                except Exception:  # noqa: BLE001 - a body the JSON mapping refuses, as Google answers it
                    fake.record(Call("rest", method, name, authorization, "INVALID_ARGUMENT", headers))
                    self._answer(400, {"error": {"code": 400, "message": "Invalid JSON payload received.",
                                                 "status": "INVALID_ARGUMENT"}})
                    return
                fake.record(Call("rest", method, name, authorization, "OK", headers))
                self._answer(200, json.loads(reply))

            def _token_exchange(self, body: bytes) -> None:
                """Google STS (workload identity federation): any subject token buys an access token."""
                from urllib.parse import parse_qs

                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" or not form.get(
                    "subject_token"
                ):
                    self._answer(400, {"error": "invalid_request", "error_description": "bad token exchange"})
                    return
                token = "sts-" + base64.urlsafe_b64encode(os.urandom(12)).decode()
                with fake._lock:
                    fake.tokens.add(token)
                    fake.exchanges.append(form)
                self._answer(200, {
                    "access_token": token,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                })

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, name="gcp-fake-rest", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        self._stoppers.append(stop)
        return int(server.server_address[1])

    def _start_proxy(self, upstream_port: int) -> int:
        fake = self

        class Tunnel(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = request_line.split()
                if len(parts) < 2 or parts[0] != "CONNECT":
                    client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                with fake._lock:
                    fake.connects.append(parts[1])
                # never the requested host: always the fake's own port on loopback
                upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    upstream.sendall(rest)
                pipe(client, upstream)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="gcp-fake-proxy", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        self._stoppers.append(stop)
        return int(server.server_address[1])


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    a.settimeout(None)
    b.settimeout(None)
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 30)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()


# --------------------------------------------------------------------------- certificates


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path]:
    """Write ``ca.pem`` (a throwaway CA) and a server certificate/key it signed; return (cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitcrypt-sops test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOST)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(GOOGLE_HOST),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    key_file = directory / "server-key.pem"
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
