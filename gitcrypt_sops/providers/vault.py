"""The HashiCorp Vault (and OpenBao) transit key provider: ``hc_vault`` entries.

Owns the parsing of Vault transit key URIs
(``http(s)://HOST[:PORT]/v1/<engine path, may be nested>/keys/<key name>``), the
``hc_vault`` metadata entries (``vault_address``, ``engine_path``, ``key_name``,
``created_at``, ``enc``) and the two transit calls: ``<engine>/encrypt/<key>``
with the base64 of the data key, ``<engine>/decrypt/<key>`` with the ciphertext
(``vault:vN:…``, stored verbatim).

The HTTP client is the standard library's: the API is two JSON POSTs, so no
SDK is needed (hvac would add ~75 ms of imports and a dependency).  Settings
follow sops, which uses the Vault Go client's defaults:

* the server address comes from the key URI (or the entry), so ``VAULT_ADDR``
  is ignored, as in sops;
* the token is ``VAULT_TOKEN``, else the content of ``$HOME/.vault-token``; with
  neither, the request is sent without a token (a Vault Agent may add one);
* ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_CAPATH``, ``VAULT_CLIENT_CERT``,
  ``VAULT_CLIENT_KEY``, ``VAULT_SKIP_VERIFY`` and ``VAULT_CLIENT_TIMEOUT``
  (default 60 s) are honoured; proxies come from ``HTTP(S)_PROXY``/``NO_PROXY``
  except for loopback hosts, as in Go.

Not done (the Go client does them): retries on 5xx, following 307 redirects
from standby nodes, ``VAULT_TLS_SERVER_NAME``, ``VAULT_AGENT_ADDR``.
Messages name the URL and the server's reason, never a token or key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Mapping

from ..errors import ConfigError
from ..records import Record
from .base import KeyProvider, ProviderError, Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["VaultKey", "VaultTransitProvider", "parse_uri", "read_token"]

ENV_TOKEN = "VAULT_TOKEN"
TOKEN_FILE = ".vault-token"
DEFAULT_TIMEOUT = 60.0
_URI_HELP = "expected http(s)://HOST[:PORT]/v1/ENGINE_PATH/keys/KEY_NAME"
_PATH = re.compile(r"^/v1/(?P<engine>.+)/keys/(?P<key>[^/]+)/?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_MAX_DETAIL = 200


class VaultKey(Record):
    """One transit key: the server, the mount path of the engine and the key's name."""

    address: str
    engine_path: str
    key_name: str

    @property
    def uri(self) -> str:
        return f"{self.address}/v1/{self.engine_path}/keys/{self.key_name}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _shown(text: str) -> str:
    return text if len(text) <= 100 else text[:80] + "…"


def parse_uri(uri: str) -> VaultKey:
    """The key named by a transit key URI; ConfigError if it is not one."""
    from urllib.parse import urlsplit

    text = uri.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"invalid Vault transit key URI {_shown(text)!r}: {_URI_HELP}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid Vault transit key URI {_shown(text)!r}: {_URI_HELP}")
    if "@" in parts.netloc:
        # never echo it: user info in a URL is usually a credential
        raise ConfigError("invalid Vault transit key URI: user info (user:password@) is not supported")
    if parts.query or parts.fragment:
        raise ConfigError(f"invalid Vault transit key URI {_shown(text)!r}: no query or fragment allowed")
    match = _PATH.match(parts.path)
    if match is None:
        # matches sops: a path prefix before /v1/ (a proxied Vault) is refused
        raise ConfigError(f"invalid Vault transit key URI {_shown(text)!r}: {_URI_HELP}")
    segments = match["engine"].split("/")
    if any(segment in ("", ".", "..") for segment in segments) or match["key"] in (".", ".."):
        raise ConfigError(f"invalid Vault transit key URI {_shown(text)!r}: empty or relative path segment")
    return VaultKey(f"{parts.scheme}://{parts.netloc}", match["engine"], match["key"])


def _home() -> str:
    """matches sops (go-homedir): $HOME first, then the password database."""
    return os.environ.get("HOME") or os.path.expanduser("~")


def read_token() -> str | None:
    """The Vault token sops would use: ``VAULT_TOKEN``, else ``$HOME/.vault-token``."""
    token = os.environ.get(ENV_TOKEN, "")
    if token:
        return token
    path = os.path.join(_home(), TOKEN_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ProviderError(f"cannot read the Vault token file {path}: {reason}") from None
    return token or None


def _timeout() -> float:
    text = os.environ.get("VAULT_CLIENT_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    match = _DURATION.match(text)
    if match is None:
        raise ProviderError(f"VAULT_CLIENT_TIMEOUT={text!r} is not a number of seconds or a duration like 30s")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match[2] or "s"]
    return float(match[1]) * scale or DEFAULT_TIMEOUT


def _ssl_context() -> Any:
    import ssl

    cafile = os.environ.get("VAULT_CACERT") or None
    capath = os.environ.get("VAULT_CAPATH") or None
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
        if os.environ.get("VAULT_SKIP_VERIFY", "") in _GO_TRUE:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert = os.environ.get("VAULT_CLIENT_CERT")
        if cert:
            context.load_cert_chain(cert, os.environ.get("VAULT_CLIENT_KEY") or None)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ProviderError(f"cannot load the Vault TLS settings (VAULT_CACERT/CAPATH/CLIENT_CERT): {reason}") from None
    return context


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"^\d+ errors? occurred: \* ", "", text)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _server_reason(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list):
        return _one_line("; ".join(str(error) for error in errors if error))
    return ""


def _transport_reason(exc: BaseException) -> str:
    import socket
    import ssl

    reason: Any = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "host name not resolved"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({_one_line(reason.verify_message or 'verification failed')})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({_one_line(reason.reason or type(reason).__name__)})"
    if isinstance(reason, OSError) and reason.strerror:
        return _one_line(reason.strerror)
    return _one_line(str(reason)) or type(reason).__name__


def _post(key: VaultKey, operation: str, payload: dict[str, str]) -> dict[str, Any]:
    """POST ``payload`` to ``<engine>/<operation>/<key>``; the ``data`` of the answer."""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{key.address}/v1/{key.engine_path}/{operation}/{key.key_name}"
    where = f"Vault transit {operation} failed"
    token = read_token()
    headers = {"Content-Type": "application/json", "X-Vault-Request": "true"}
    if token:
        headers["X-Vault-Token"] = token
    namespace = os.environ.get("VAULT_NAMESPACE")
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    handlers: list[Any] = []
    if _is_loopback(urllib.parse.urlsplit(url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))  # matches Go: loopback is never proxied
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=_ssl_context()))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=_timeout()) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = _server_reason(exc.read())
        except (OSError, http.client.HTTPException):
            detail = ""
        detail = detail or (exc.reason if isinstance(exc.reason, str) else "") or "request failed"
        hint = ""
        if exc.code == 403 and not token:
            hint = f"; no Vault token was found (set {ENV_TOKEN} or write ~/{TOKEN_FILE})"
        elif exc.code in (301, 302, 303, 307, 308):
            hint = "; redirects (e.g. from a standby node) are not followed: use the active node's address"
        raise ProviderError(f"{where}: {detail} (HTTP {exc.code}){hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ProviderError(f"cannot reach Vault at {key.address}: {_transport_reason(exc)}") from None
    try:
        data = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ProviderError(f"{where}: the answer is not a Vault transit response")
    return data


def _field(entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"hc_vault entry without {name}")
    return value


class VaultTransitProvider(KeyProvider):
    """Wraps data keys with a Vault or OpenBao transit key."""

    type_id = "hc_vault"
    cli_flag = "hc-vault-transit"
    config_keys = ("hc_vault_transit_uri", "hc_vault")

    def parse_recipients(self, text: str) -> list[Recipient]:
        recipients = []
        for item in text.split(","):
            item = item.strip()
            if item:
                recipients.append(Recipient(self.type_id, parse_uri(item).uri))
        return recipients

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        try:
            key = parse_uri(recipient.ident)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        data = _post(key, "encrypt", {"plaintext": base64.b64encode(data_key).decode("ascii")})
        ciphertext = data.get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext:
            raise ProviderError(f"Vault transit encrypt with {key.uri} returned no ciphertext")
        return {
            "vault_address": key.address,
            "engine_path": key.engine_path,
            "key_name": key.key_name,
            "created_at": _now(),
            "enc": ciphertext,
        }

    def _key_of(self, entry: Mapping[str, Any]) -> VaultKey:
        address = _field(entry, "vault_address").rstrip("/")
        return VaultKey(address, _field(entry, "engine_path").strip("/"), _field(entry, "key_name"))

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        return Recipient(self.type_id, self._key_of(entry).uri)

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        key = self._key_of(entry)
        enc = entry.get("enc")
        if not isinstance(enc, str) or not enc:
            raise ProviderError(f"hc_vault entry for {key.uri} has no enc")
        data = _post(key, "decrypt", {"ciphertext": enc})
        plaintext = data.get("plaintext")
        if isinstance(plaintext, str):
            try:
                return base64.b64decode(plaintext, validate=True)
            except (ValueError, binascii.Error):
                pass
        raise ProviderError(f"Vault transit decrypt with {key.uri} returned no valid plaintext")
