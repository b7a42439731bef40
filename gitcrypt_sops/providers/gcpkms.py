"""The Google Cloud KMS key provider: ``gcp_kms`` entries (``resource_id``, ``created_at``, ``enc``).

Owns the parsing of crypto-key resource IDs, the client set-up (credentials,
endpoint, transport) and the translation of Google API errors into one-line
:class:`ProviderError` messages.  ``google-cloud-kms`` is imported only when a
key is wrapped or unwrapped.

Settings, as sops reads them:

* credentials: ``GOOGLE_CREDENTIALS`` (a credentials JSON, or the path of one:
  service account, authorized user, workload identity federation...), else
  ``GOOGLE_OAUTH_ACCESS_TOKEN`` (a static bearer token), else
  application-default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, the gcloud
  ADC file, the metadata server);
* ``SOPS_GCP_KMS_CLIENT_TYPE``: ``grpc`` (default) or ``rest``;
* ``SOPS_GCP_KMS_ENDPOINT`` (sops 3.13): ``host[:port]`` or ``https://host[:port]``
  over TLS.  Our addition: ``http://<loopback>:port`` for a plaintext local
  server (tests, a local proxy); other hosts are refused in plaintext.

Calls use a short deadline; only UNAVAILABLE and refused connections are
retried, for a few seconds.
CRC32C checksums are sent with every request and checked on answers that carry
one, as Google recommends.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Mapping

from ..dates import datetime, timezone
from ..errors import ConfigError
from .base import KeyProvider, ProviderError, Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["GcpKmsProvider", "clear_cache", "crc32c", "endpoint_from_env", "parse_resource_id"]

ENV_CREDENTIALS = "GOOGLE_CREDENTIALS"
ENV_TOKEN = "GOOGLE_OAUTH_ACCESS_TOKEN"
ENV_CLIENT_TYPE = "SOPS_GCP_KMS_CLIENT_TYPE"
ENV_ENDPOINT = "SOPS_GCP_KMS_ENDPOINT"
INSTALL_HINT = "pip install 'gitcrypt-sops[gcp]'"
DEFAULT_HOST = "cloudkms.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"

#: seconds one call may take
CALL_TIMEOUT = 20.0
#: seconds during which an UNAVAILABLE answer (or a refused connection) is retried
RETRY_DEADLINE = 3.0

#: every variable that decides which client is built
_ENV_INPUTS = (ENV_CREDENTIALS, ENV_TOKEN, ENV_CLIENT_TYPE, ENV_ENDPOINT, "GOOGLE_APPLICATION_CREDENTIALS",
               "CLOUDSDK_CONFIG", "HOME")

# matches sops: the same shape check, done before any call
_RESOURCE_ID = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_LOOPBACK = ("localhost", "::1")


# --------------------------------------------------------------------------- resource IDs


def _shown(text: str) -> str:
    return repr(text if len(text) <= 160 else text[:150] + "…")


def parse_resource_id(text: str) -> str:
    """A crypto-key resource ID with its spaces removed; ConfigError if it has another shape."""
    resource_id = text.strip().replace(" ", "")  # matches sops: every space is dropped, not only the ends
    if _RESOURCE_ID.match(resource_id):
        return resource_id
    expected = "expected projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"
    if "/cryptoKeyVersions/" in resource_id:
        expected = "give the crypto key, not one of its versions"
    raise ConfigError(f"invalid GCP KMS resource ID {_shown(resource_id)}: {expected}")


def _entry_resource_id(entry: Mapping[str, Any]) -> str:
    resource_id = entry.get("resource_id")
    if not isinstance(resource_id, str) or not resource_id:
        raise ProviderError("gcp_kms entry without a resource_id")
    if not _RESOURCE_ID.match(resource_id):
        raise ProviderError(f"gcp_kms entry has an invalid resource_id {_shown(resource_id)}")
    return resource_id


# --------------------------------------------------------------------------- CRC32C


_CRC_TABLE: list[int] = []


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Cloud KMS uses; pure Python, fine for keys."""
    if not _CRC_TABLE:
        for n in range(256):
            crc = n
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
            _CRC_TABLE.append(crc)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------- client set-up


class _Endpoint:
    """Where and how to connect (a plain class: no dataclass machinery on import)."""

    __slots__ = ("host", "plaintext", "rest")

    def __init__(self, host: str | None, plaintext: bool, rest: bool) -> None:
        #: ``host:port`` or None for the default endpoint
        self.host = host
        self.plaintext = plaintext
        self.rest = rest

    def label(self) -> str:
        return self.host or f"{DEFAULT_HOST}:443"


def _split_host(hostport: str) -> str:
    """The host part of ``host[:port]`` or ``[v6]:port``."""
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK:
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_from_env() -> _Endpoint:
    """The transport and endpoint chosen by ``SOPS_GCP_KMS_CLIENT_TYPE`` and ``SOPS_GCP_KMS_ENDPOINT``."""
    client_type = os.environ.get(ENV_CLIENT_TYPE, "").strip().lower() or "grpc"
    if client_type not in ("grpc", "rest"):
        raise ConfigError(f"{ENV_CLIENT_TYPE} must be 'grpc' or 'rest', not {_shown(client_type)}")
    rest = client_type == "rest"
    raw = os.environ.get(ENV_ENDPOINT, "").strip()
    if not raw:
        return _Endpoint(None, False, rest)
    scheme, _, rest_of_it = raw.partition("://")
    if not rest_of_it:
        scheme, rest_of_it = "", raw
    scheme = scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ConfigError(f"{ENV_ENDPOINT}: unsupported scheme in {_shown(raw)} (use host:port or https://host:port)")
    plaintext = scheme == "http"
    hostport = rest_of_it.rstrip("/")
    if not hostport or "/" in hostport:
        raise ConfigError(f"{ENV_ENDPOINT}: expected host[:port], https://host[:port] or http://127.0.0.1:port")
    if plaintext and not _is_loopback(_split_host(hostport)):
        raise ConfigError(f"{ENV_ENDPOINT}: plaintext http:// is only allowed for a loopback address")
    if ":" not in hostport.rsplit("]", 1)[-1]:
        hostport += ":80" if plaintext else ":443"
    return _Endpoint(hostport, plaintext, rest)


def _import_kms() -> Any:
    try:
        from google.cloud import kms_v1
    except ImportError:
        raise ProviderError(
            f"GCP KMS support is not installed ({INSTALL_HINT})", hint=INSTALL_HINT
        ) from None
    return kms_v1


def _credentials() -> tuple[Any, str]:
    """Credentials in sops's order, and where they came from: GOOGLE_CREDENTIALS, the token, then ADC."""
    import warnings

    import google.auth
    import google.auth.credentials
    import google.auth.exceptions

    json_or_path = os.environ.get(ENV_CREDENTIALS, "")
    token = os.environ.get(ENV_TOKEN, "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # google.auth warns about generic loaders and end-user ADC
        if json_or_path:
            credentials, source = _credentials_from_json(json_or_path), ENV_CREDENTIALS
        elif token:
            import google.oauth2.credentials

            credentials = google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
            source = ENV_TOKEN
        else:
            source = "application-default credentials"
            try:
                # no scopes here: with scopes, external-account ADC looks its project up over the network
                credentials, _ = google.auth.default()
            except google.auth.exceptions.GoogleAuthError:
                adc_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                if adc_file:
                    raise ProviderError(
                        f"GOOGLE_APPLICATION_CREDENTIALS={adc_file}: not a usable credentials file"
                    ) from None
                raise ProviderError(
                    "no GCP credentials found: set GOOGLE_OAUTH_ACCESS_TOKEN or GOOGLE_CREDENTIALS, "
                    "or set up application-default credentials (GOOGLE_APPLICATION_CREDENTIALS, "
                    "gcloud auth application-default login)"
                ) from None
    scoped = google.auth.credentials.with_scopes_if_required(  # type: ignore[no-untyped-call]
        credentials, None, default_scopes=[SCOPE]
    )
    return scoped, source


def _credentials_from_json(json_or_path: str) -> Any:
    import google.auth
    import google.auth.exceptions

    # matches sops: the value is a path when such a file exists, else the JSON itself
    where = ENV_CREDENTIALS
    text = json_or_path
    if os.path.exists(json_or_path):
        where = f"{ENV_CREDENTIALS}={json_or_path}"
        try:
            with open(json_or_path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ProviderError(f"{where}: cannot read the credentials file ({reason})") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise ProviderError(f"{where}: neither an existing file nor credentials JSON") from None
    if not isinstance(info, dict):
        raise ProviderError(f"{where}: the credentials JSON is not an object")
    kind = info.get("type")
    try:
        credentials, _ = google.auth.load_credentials_from_dict(info)  # type: ignore[no-untyped-call]
    except (google.auth.exceptions.DefaultCredentialsError, ValueError, KeyError, TypeError):
        # the library's message may quote the file; name the type only
        raise ProviderError(
            f"{where}: unusable credentials of type {_shown(str(kind))}"
        ) from None
    return credentials


def _build_client(endpoint: _Endpoint, credentials: Any) -> Any:
    kms_v1 = _import_kms()
    if endpoint.rest:
        from google.api_core.client_options import ClientOptions

        options = None
        if endpoint.host is not None:
            api_endpoint = f"http://{endpoint.host}" if endpoint.plaintext else endpoint.host
            options = ClientOptions(api_endpoint=api_endpoint)
        return kms_v1.KeyManagementServiceClient(transport="rest", credentials=credentials, client_options=options)
    if endpoint.plaintext and endpoint.host is not None:
        import grpc  # type: ignore[import-untyped]
        from google.cloud.kms_v1.services.key_management_service.transports import (
            KeyManagementServiceGrpcTransport,
        )

        # local channel credentials: no TLS, yet the bearer token is still sent (loopback only)
        transport = KeyManagementServiceGrpcTransport(
            host=endpoint.host,
            credentials=credentials,
            ssl_channel_credentials=grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        )
        return kms_v1.KeyManagementServiceClient(transport=transport)
    if endpoint.host is not None:
        from google.api_core.client_options import ClientOptions

        return kms_v1.KeyManagementServiceClient(
            credentials=credentials, client_options=ClientOptions(api_endpoint=endpoint.host)
        )
    return kms_v1.KeyManagementServiceClient(credentials=credentials)


class _Session:
    """A client with the settings it was built from."""

    __slots__ = ("client", "endpoint", "source")

    def __init__(self, client: Any, endpoint: _Endpoint, source: str) -> None:
        self.client = client
        self.endpoint = endpoint
        #: where the credentials came from, for messages
        self.source = source


_sessions: dict[tuple[str | None, ...], _Session] = {}


def clear_cache() -> None:
    """Forget the clients built so far (one is kept per set of GCP settings)."""
    _sessions.clear()


def _session() -> _Session:
    key = tuple(os.environ.get(name) for name in _ENV_INPUTS)
    session = _sessions.get(key)
    if session is None:
        endpoint = endpoint_from_env()
        _import_kms()  # a missing SDK is reported before anything else
        credentials, source = _credentials()
        try:
            client = _build_client(endpoint, credentials)
        except Exception as exc:  # noqa: BLE001 - the SDK refused a setting; one line, never a traceback
            raise ProviderError(f"cannot set up the GCP KMS client: {_first_line(str(exc))}") from None
        session = _sessions[key] = _Session(client, endpoint, source)
    return session


def _retry() -> Any:
    from google.api_core import exceptions, retry

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, exceptions.ServiceUnavailable):
            # a credential failure surfaces as UNAVAILABLE on gRPC; retrying it cannot help
            return "metadata from plugin" not in str(exc)
        return isinstance(exc, OSError)  # REST: connection refused or reset (requests errors are OSErrors)

    return retry.Retry(predicate=transient, initial=0.2, maximum=1.0, multiplier=2.0, timeout=RETRY_DEADLINE)


# --------------------------------------------------------------------------- errors


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^[A-Z]+ https?://\S+: ", "", line)  # REST errors start with the request line
    return line if len(line) <= 200 else line[:197] + "…"


_HTTP_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _status(exc: Exception) -> str:
    """The canonical status name (``NOT_FOUND``...) of a gRPC or REST API error."""
    response = getattr(exc, "response", None)
    if response is not None and callable(getattr(response, "json", None)):
        try:
            status = response.json()["error"]["status"]  # REST: 400 covers several statuses
        except (ValueError, KeyError, TypeError):
            status = None
        if isinstance(status, str) and status:
            return status
    code = getattr(exc, "grpc_status_code", None)
    if code is not None and getattr(code, "name", None):
        return str(code.name)
    return _HTTP_STATUS.get(getattr(exc, "code", None) or 0, type(exc).__name__)


def _translate(exc: Exception, action: str, resource_id: str, session: _Session) -> ProviderError:
    """One line for an error raised by a client call (never a traceback, never key material)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    if isinstance(exc, gexc.RetryError) and isinstance(exc.cause, Exception):
        exc = exc.cause
    rejected = ProviderError(
        f"GCP KMS rejected the credentials from {session.source} (unauthenticated) for {resource_id}"
    )
    if isinstance(exc, aexc.GoogleAuthError):
        if isinstance(exc, aexc.RefreshError) and session.source == ENV_TOKEN:
            return rejected  # REST: the server said 401 and a static token cannot be refreshed
        return ProviderError(f"could not get a GCP access token: {_first_line(str(exc)) or type(exc).__name__}")
    if isinstance(exc, OSError):  # REST transport: the connection itself failed
        return ProviderError(f"GCP KMS is unavailable at {session.endpoint.label()}: {type(exc).__name__}")
    if not isinstance(exc, gexc.GoogleAPIError):
        return ProviderError(f"GCP KMS {action} with {resource_id} failed: {type(exc).__name__}")
    detail = _first_line(getattr(exc, "message", None) or str(exc))
    status = _status(exc)
    if status == "UNAVAILABLE" and "metadata from plugin" in detail:  # gRPC: getting a token failed
        return ProviderError(f"could not get a GCP access token: {detail}")
    if status == "UNAUTHENTICATED":
        return rejected
    if status == "PERMISSION_DENIED":
        return ProviderError(f"GCP KMS permission denied for {action} with {resource_id}")
    if status == "NOT_FOUND":
        return ProviderError(f"GCP KMS key {resource_id} not found")
    if status == "INVALID_ARGUMENT" and action == "decrypt":
        return ProviderError(
            f"GCP KMS could not decrypt the data key with {resource_id}: "
            "invalid ciphertext (tampered enc, or made by another key)"
        )
    if status == "FAILED_PRECONDITION":
        return ProviderError(f"GCP KMS key {resource_id} cannot be used: {detail}")
    if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED") or isinstance(exc, gexc.RetryError):
        return ProviderError(f"GCP KMS is unavailable at {session.endpoint.label()}: {detail}")
    return ProviderError(f"GCP KMS {action} with {resource_id} failed ({status}): {detail}")


# --------------------------------------------------------------------------- provider


class GcpKmsProvider(KeyProvider):
    """Wraps data keys with Cloud KMS symmetric crypto keys, as sops's ``--gcp-kms`` does."""

    type_id = "gcp_kms"
    cli_flag = "gcp-kms"
    config_keys = ("gcp_kms",)

    def parse_recipients(self, text: str) -> list[Recipient]:
        return [
            Recipient(self.type_id, parse_resource_id(item))
            for item in text.split(",")
            if item.strip()
        ]

    def recipient_from_config(self, item: Any) -> Recipient:
        """A ``key_groups`` entry: ``{resource_id: ...}`` as sops writes it (a bare string is accepted too)."""
        if isinstance(item, str):
            return super().recipient_from_config(item)
        resource_id = item.get("resource_id") if isinstance(item, Mapping) else None
        if not isinstance(resource_id, str) or not resource_id.strip():
            raise ConfigError("invalid gcp_kms entry in key group: expected a mapping with 'resource_id'")
        return Recipient(self.type_id, parse_resource_id(resource_id))

    def _call(self, action: str, resource_id: str, call: Callable[[Any], Any]) -> Any:
        session = _session()
        try:
            return call(session.client)
        except Exception as exc:  # noqa: BLE001 - any SDK failure must become one line, never a traceback
            raise _translate(exc, action, resource_id, session) from None

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        try:
            resource_id = parse_resource_id(recipient.ident)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        request = {"name": resource_id, "plaintext": data_key, "plaintext_crc32c": crc32c(data_key)}
        response = self._call(
            "encrypt", resource_id,
            lambda client: client.encrypt(request=request, retry=_retry(), timeout=CALL_TIMEOUT),
        )
        ciphertext = bytes(response.ciphertext)
        if not ciphertext or (
            "ciphertext_crc32c" in response and response.ciphertext_crc32c != crc32c(ciphertext)
        ):
            raise ProviderError(f"GCP KMS returned a damaged ciphertext for {resource_id} (checksum mismatch)")
        return {
            "resource_id": resource_id,
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            # matches sops: standard padded base64 of the raw ciphertext
            "enc": base64.b64encode(ciphertext).decode("ascii"),
        }

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        return Recipient(self.type_id, _entry_resource_id(entry))

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        resource_id = _entry_resource_id(entry)
        enc = entry.get("enc")
        if not isinstance(enc, str) or not enc:
            raise ProviderError(f"gcp_kms entry for {resource_id} has no enc")
        try:
            # matches sops (Go's StdEncoding): line breaks are ignored, anything else must be base64
            ciphertext = base64.b64decode(enc.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(f"gcp_kms entry for {resource_id}: enc is not valid base64") from None
        request = {"name": resource_id, "ciphertext": ciphertext, "ciphertext_crc32c": crc32c(ciphertext)}
        response = self._call(
            "decrypt", resource_id,
            lambda client: client.decrypt(request=request, retry=_retry(), timeout=CALL_TIMEOUT),
        )
        plaintext = bytes(response.plaintext)
        if "plaintext_crc32c" in response and response.plaintext_crc32c != crc32c(plaintext):
            raise ProviderError(f"GCP KMS returned a damaged data key for {resource_id} (checksum mismatch)")
        return plaintext
