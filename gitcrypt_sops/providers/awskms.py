"""The AWS KMS key provider: the ``kms`` metadata entries and their recipients.

Owns the parsing of KMS recipients (``--kms``, ``SOPS_KMS_ARN``, creation rules),
the ``kms`` entry fields in sops 3.11 order, and the calls to KMS ``Encrypt`` /
``Decrypt`` (and STS ``AssumeRole`` for a ``+role`` key) through botocore, the
core of boto3 (the ``aws`` extra).

The SDK is imported only when a KMS key is actually used.  Credentials come from
the SDK's standard chain (environment, shared files and profiles, web identity /
OIDC via ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, SSO, container and
instance metadata); ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_KMS`` and
``AWS_ENDPOINT_URL_STS`` are honoured by the SDK itself.  Clients are cached per
process, keyed on region, role, profile and the ``AWS_*`` environment.

Recipient options, in this canonical order and present only when set:
``role`` (IAM role ARN), ``aws_profile`` (shared-config profile) and ``context``
(encryption context as a tuple of sorted ``(key, value)`` pairs).

SDK failures become one-line :class:`ProviderError` messages naming the cause
(credentials, access, key or ciphertext, network); the SDK's own text, which can
be long or carry request details, is never shown.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Mapping

from ..errors import ConfigError
from .base import KeyProvider, ProviderError, Recipient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AwsKmsProvider", "clear_cache", "parse_arn", "session_name"]

INSTALL_HINT = "pip install 'gitcrypt-sops[aws]'"

#: matches sops: the ARN forms accepted (key and alias ARNs); group 1 is the region
ARN_RE = re.compile(r"^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$", re.ASCII)
#: where a role is appended to a key ARN: ``ARN+arn:aws:iam::…``.  sops 3.11 splits on
#: ``+arn:aws:iam::`` only; the other AWS partitions (aws-cn, aws-us-gov) are accepted too
_ROLE_SPLIT = re.compile(r"\+(?=arn:aws[\w-]*:iam::)", re.ASCII)
#: matches sops: characters dropped from the hostname in the STS session name.  The
#: class's ``@-_`` is a range (0x40-0x5F), so e.g. ``[`` and ``^`` are kept, as in sops
_SESSION_DROP = re.compile(r"[^a-zA-Z0-9=,.@-_]+")
_SESSION_NAME_LIMIT = 64

#: fast failure: a dead endpoint is reported in seconds, not minutes
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
MAX_ATTEMPTS = 2

#: assumed-role credentials are renewed when they expire within this many seconds
_REFRESH_MARGIN = 300

#: cache key -> (KMS client, expiry of its assumed-role credentials or None)
_clients: dict[tuple[Any, ...], tuple[Any, float | None]] = {}


def clear_cache() -> None:
    """Forget the KMS clients (and assumed-role credentials) made so far."""
    _clients.clear()


# --------------------------------------------------------------------------- recipients


def parse_arn(arn: str) -> str:
    """The region of a KMS key or alias ARN; ConfigError when ``arn`` is not one."""
    match = ARN_RE.match(arn)
    if match is None:
        shown = arn if len(arn) <= 100 else arn[:100] + "…"
        raise ConfigError(
            f"invalid KMS key {shown!r}: expected a key or alias ARN "
            "(arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)"
        )
    return match.group(1)


def _options(role: str | None, profile: str | None, context: Mapping[str, str] | None) -> tuple[tuple[str, Any], ...]:
    options: list[tuple[str, Any]] = []
    if role:
        options.append(("role", role))
    if profile:
        options.append(("aws_profile", profile))
    if context:
        options.append(("context", tuple(sorted(context.items()))))
    return tuple(options)


def _context_of(value: Any, where: str, error: type[Exception]) -> dict[str, str]:
    """An encryption context read from a config mapping or a metadata entry."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(f"{where}: the encryption context must be a mapping of strings")
    context: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue  # matches sops: a null value is left out of the context
        if not isinstance(key, str) or not isinstance(item, str):
            raise error(f"{where}: the encryption context must map strings to strings")
        context[key] = item
    return context


def _context_text(context: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{key}:{value}" for key, value in context)


def describe(recipient: Recipient) -> str:
    """A recipient for messages: the ARN, then role, profile and context when set."""
    parts = [recipient.ident]
    role = recipient.option("role")
    if role:
        parts.append(f"role {role}")
    profile = recipient.option("aws_profile")
    if profile:
        parts.append(f"profile {profile}")
    context = recipient.option("context")
    if context:
        parts.append(f"context {_context_text(context)}")
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"


def session_name() -> str:
    """matches sops: ``sops@<hostname>``, hostname sanitised, cut to 64 characters."""
    try:
        hostname = os.uname().nodename
    except AttributeError:  # Windows
        import socket

        hostname = socket.gethostname()
    return ("sops@" + _SESSION_DROP.sub("", hostname))[:_SESSION_NAME_LIMIT]


# --------------------------------------------------------------------------- SDK access


def _import_sdk() -> tuple[Any, Any]:
    """``(botocore.session, botocore.config.Config)``, or ProviderError with the install hint.

    botocore (what boto3 is built on) is used directly: importing boto3 itself also
    loads s3transfer, which costs a quarter of the SDK's start-up and is never used here.
    """
    try:
        import botocore.session  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError:
        raise ProviderError(
            f"AWS KMS keys need boto3, which is not installed ({INSTALL_HINT})"
        ) from None
    return botocore.session, Config


def _client_config(config_class: Any) -> Any:
    options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
    if not os.environ.get("AWS_MAX_ATTEMPTS"):  # the user's own retry setting wins
        options["retries"] = {"max_attempts": MAX_ATTEMPTS, "mode": "standard"}
    return config_class(**options)


def _kms_client(action: str, region: str, role: str | None, profile: str | None) -> Any:
    """A KMS client for ``region``, as ``role`` when set, with ``profile``'s settings."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (region, role or "", profile or "", env)
    cached = _clients.get(key)
    if cached is not None and (cached[1] is None or cached[1] - time.time() > _REFRESH_MARGIN):
        return cached[0]
    session_module, config_class = _import_sdk()
    config = _client_config(config_class)
    session = session_module.Session(profile=profile or None)
    # matches sops: the ARN's region wins over AWS_REGION and the profile's region,
    # for the credential chain's own STS calls (web identity, profile roles) too
    session.set_config_variable("region", region)
    if role:
        sts = session.create_client("sts", region_name=region, config=config)
        answer = _call(
            f"{action}: cannot assume role {role}",
            lambda: sts.assume_role(RoleArn=role, RoleSessionName=session_name()),
        )
        creds = answer["Credentials"]
        expiration = creds.get("Expiration")
        expires = expiration.timestamp() if hasattr(expiration, "timestamp") else None
        client = session.create_client(
            "kms",
            region_name=region,
            config=config,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    else:
        expires = None  # the SDK refreshes credentials from its chain by itself
        client = session.create_client("kms", region_name=region, config=config)
    _clients[key] = (client, expires)
    return client


#: KMS/STS error codes -> the cause, as told to the user
_CLIENT_CAUSES: dict[str, str] = {
    "AccessDeniedException": "access denied",
    "AccessDenied": "access denied",
    "IncorrectKeyException": "the ciphertext was made with another KMS key",
    "InvalidCiphertextException": (
        "invalid ciphertext (the enc field or the encryption context does not match)"
    ),
    "NotFoundException": "the KMS key was not found",
    "DisabledException": "the KMS key is disabled",
    "KMSInvalidStateException": "the KMS key is not usable in its current state",
    "KeyUnavailableException": "the KMS key is unavailable",
    "InvalidKeyUsageException": "the KMS key cannot be used to encrypt and decrypt",
    "UnrecognizedClientException": "the AWS credentials are not valid",
    "InvalidClientTokenId": "the AWS credentials are not valid",
    "InvalidSignatureException": "the AWS credentials are not valid (signature mismatch)",
    "SignatureDoesNotMatch": "the AWS credentials are not valid (signature mismatch)",
    "ExpiredTokenException": "the AWS credentials have expired",
    "ExpiredToken": "the AWS credentials have expired",
    "InvalidIdentityToken": "the web identity token was rejected",
    "ThrottlingException": "AWS throttled the request",
    "LimitExceededException": "AWS request limit exceeded",
    "DependencyTimeoutException": "AWS KMS timed out",
    "KMSInternalException": "AWS KMS internal error",
}


def _cause(exc: Exception) -> str | None:
    """One line naming why an SDK call failed, or None when ``exc`` is not from the SDK."""
    from botocore import exceptions as bce  # type: ignore[import-untyped]

    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code") or "unknown error")
        operation = getattr(exc, "operation_name", "") or "the request"
        cause = _CLIENT_CAUSES.get(code, "request failed")
        return f"{cause} ({operation}: {code})"
    if isinstance(exc, bce.NoCredentialsError):
        return (
            "no AWS credentials found (environment, shared files, profile, "
            "web identity or instance metadata)"
        )
    if isinstance(exc, bce.PartialCredentialsError):
        return "incomplete AWS credentials (a key id without its secret, or the reverse)"
    if isinstance(exc, bce.CredentialRetrievalError):
        return f"AWS credentials could not be retrieved ({type(exc).__name__})"
    if isinstance(exc, bce.ProfileNotFound):
        return f"AWS profile {exc.kwargs.get('profile', '')!r} not found in the AWS config files"
    if isinstance(exc, bce.ConfigParseError):
        return "the AWS config or credentials file cannot be parsed"
    if isinstance(exc, (bce.ConnectTimeoutError, bce.ReadTimeoutError)):
        return f"timed out talking to {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}"
    if isinstance(exc, bce.EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')} (network or endpoint unreachable)"
    if isinstance(exc, (bce.ConnectionError, bce.HTTPClientError)):
        return f"network error talking to AWS ({type(exc).__name__})"
    if isinstance(exc, bce.ParamValidationError):
        return "the request was rejected before sending (invalid parameters)"
    if isinstance(exc, bce.BotoCoreError):
        return f"AWS SDK error ({type(exc).__name__})"
    if isinstance(exc, OSError):  # e.g. the web identity token file
        where = f"{exc.filename}" if exc.filename else "a file"
        return f"cannot read {where} ({exc.strerror or type(exc).__name__})"
    return None


def _call(action: str, operation: Any) -> Any:
    """Run an SDK operation; its failures become one-line ProviderErrors."""
    try:
        return operation()
    except ProviderError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any SDK failure must become one line, never a traceback
        try:
            cause = _cause(exc)
        except ImportError:
            cause = None
        if cause is None:
            cause = f"unexpected error ({type(exc).__name__})"
        raise ProviderError(f"{action}: {cause}") from None


# --------------------------------------------------------------------------- provider


class AwsKmsProvider(KeyProvider):
    """Wraps data keys with AWS KMS ``Encrypt``, as sops does (one call per key)."""

    type_id = "kms"
    cli_flag = "kms"
    config_keys = ("kms",)

    def parse_recipients(self, text: str) -> list[Recipient]:
        recipients: list[Recipient] = []
        for item in text.split(","):
            item = item.replace(" ", "")  # matches sops: spaces anywhere are dropped
            if not item:
                continue
            arn, role = item, None
            split = _ROLE_SPLIT.search(item)
            if split is not None and split.start() > 0:
                arn, role = item[: split.start()], item[split.end() :]
            parse_arn(arn)
            recipients.append(Recipient(self.type_id, arn, _options(role, None, None)))
        return recipients

    def recipient_from_config(self, item: Any) -> Recipient:
        if isinstance(item, str):
            return super().recipient_from_config(item)
        if not isinstance(item, Mapping):
            raise ConfigError("invalid kms entry in key group: expected a mapping with 'arn' or a string")
        arn = item.get("arn")
        if not isinstance(arn, str) or not arn.strip():
            raise ConfigError("invalid kms entry in key group: 'arn' is missing")
        arn = arn.strip()
        parse_arn(arn)
        fields: dict[str, str | None] = {}
        for name in ("role", "aws_profile"):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"invalid kms entry in key group: '{name}' must be a string")
            fields[name] = value.strip() if value else None
        context = _context_of(item.get("context"), f"kms key {arn}", ConfigError)
        return Recipient(self.type_id, arn, _options(fields["role"], fields["aws_profile"], context))

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        arn = recipient.ident
        try:
            region = parse_arn(arn)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        role = recipient.option("role") or None
        profile = recipient.option("aws_profile") or None
        context = dict(recipient.option("context") or ())
        action = f"cannot encrypt with AWS KMS key {describe(recipient)}"
        client = _call(action, lambda: _kms_client(action, region, role, profile))
        answer = _call(
            action,
            lambda: client.encrypt(KeyId=arn, Plaintext=data_key, EncryptionContext=context),
        )
        from ..dates import datetime, timezone

        entry: dict[str, Any] = {"arn": arn}
        if role:
            entry["role"] = role
        if context:
            entry["context"] = dict(sorted(context.items()))
        entry["created_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry["enc"] = base64.b64encode(answer["CiphertextBlob"]).decode("ascii")
        entry["aws_profile"] = profile or ""  # matches sops 3.11: always written
        return entry

    def recipient_of(self, entry: Mapping[str, Any]) -> Recipient:
        arn = entry.get("arn")
        if not isinstance(arn, str) or not arn:
            raise ProviderError("kms entry without an arn")
        role = entry.get("role")
        profile = entry.get("aws_profile")
        if (role is not None and not isinstance(role, str)) or (
            profile is not None and not isinstance(profile, str)
        ):
            raise ProviderError(f"kms entry for {arn}: 'role' and 'aws_profile' must be strings")
        context = _context_of(entry.get("context"), f"kms entry for {arn}", ProviderError)
        return Recipient(self.type_id, arn, _options(role, profile, context))

    def unwrap(self, entry: Mapping[str, Any]) -> bytes:
        recipient = self.recipient_of(entry)
        arn = recipient.ident
        try:
            region = parse_arn(arn)
        except ConfigError as exc:
            raise ProviderError(exc.message) from None
        enc = entry.get("enc")
        if not isinstance(enc, str) or not enc:
            raise ProviderError("the kms entry has no enc")
        try:
            blob = base64.b64decode(enc, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError("the kms entry's enc is not valid base64") from None
        role = recipient.option("role") or None
        profile = recipient.option("aws_profile") or None
        context = dict(recipient.option("context") or ())
        action = "AWS KMS decrypt failed"
        client = _call(action, lambda: _kms_client(action, region, role, profile))
        # matches sops: the key ARN is passed along with the ciphertext
        answer = _call(
            action,
            lambda: client.decrypt(KeyId=arn, CiphertextBlob=blob, EncryptionContext=context),
        )
        plaintext: bytes = answer["Plaintext"]
        return plaintext
