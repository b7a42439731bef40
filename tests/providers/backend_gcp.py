"""GCP KMS backend for the provider tests: the local fake (gcp_fake.py), started once per session.

Our CLI reaches the fake over plaintext gRPC on loopback through
``SOPS_GCP_KMS_ENDPOINT=http://127.0.0.1:P``.  The real sops 3.11 has no endpoint
setting, so it dials ``cloudkms.googleapis.com:443`` through ``https_proxy``: a
loopback CONNECT proxy that always pipes to the fake's TLS port, whose
certificate a throwaway CA (``SSL_CERT_FILE``) signed.  Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fake imports grpc; load it only when the fixture runs
    from gcp_fake import FakeKms

PROJECT = "gitcrypt-sops-test"
KEY_IDS = [
    f"projects/{PROJECT}/locations/global/keyRings/test-ring/cryptoKeys/key-1",
    f"projects/{PROJECT}/locations/europe-west1/keyRings/test-ring/cryptoKeys/key-2",
]
#: created DISABLED / refusing the caller, for error tests
DISABLED_KEY_ID = f"projects/{PROJECT}/locations/global/keyRings/test-ring/cryptoKeys/disabled"
DENIED_KEY_ID = f"projects/{PROJECT}/locations/global/keyRings/other-team/cryptoKeys/not-yours"
#: the dummy bearer token the fake accepts (the test process sets the same one)
TOKEN = "dummy-test-token"


class GcpBackend:
    """A running fake Cloud KMS: gRPC and REST, plaintext and TLS, plus CONNECT proxies."""

    type_id = "gcp_kms"
    flag = "--gcp-kms"

    def __init__(self, fake: FakeKms) -> None:
        self.fake = fake

    def recipients(self) -> list[str]:
        return list(KEY_IDS)

    def env(self, transport: str = "grpc") -> dict[str, str]:
        """Our CLI: plaintext gRPC (or REST) to the fake on loopback."""
        port = self.fake.rest_port if transport == "rest" else self.fake.grpc_port
        return {
            "SOPS_GCP_KMS_ENDPOINT": f"http://127.0.0.1:{port}",
            "SOPS_GCP_KMS_CLIENT_TYPE": transport,
            "GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN,
        }

    def sops_env(self, transport: str = "grpc") -> dict[str, str] | None:
        """The real sops (and our CLI on its default endpoint): cloudkms.googleapis.com via the proxy.

        grpc-go and Go's HTTP client read ``HTTPS_PROXY``/``https_proxy`` and
        ``SSL_CERT_FILE``; Python grpc needs the lower-case variable and
        ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, requests ``REQUESTS_CA_BUNDLE``.
        """
        port = self.fake.rest_proxy_port if transport == "rest" else self.fake.grpc_proxy_port
        proxy = f"http://127.0.0.1:{port}"
        ca = str(self.fake.ca_file)
        env = {
            "https_proxy": proxy,
            "HTTPS_PROXY": proxy,
            "SSL_CERT_FILE": ca,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": ca,
            "REQUESTS_CA_BUNDLE": ca,
            "GOOGLE_OAUTH_ACCESS_TOKEN": TOKEN,
        }
        if transport == "rest":
            env["SOPS_GCP_KMS_CLIENT_TYPE"] = "rest"
        return env


@pytest.fixture(scope="session")
def gcp_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpBackend]:
    pytest.importorskip("google.cloud.kms_v1")
    pytest.importorskip("grpc")
    from gcp_fake import FakeKms

    fake = FakeKms(Path(tmp_path_factory.mktemp("gcp-fake")), tokens={TOKEN})
    fake.start()
    try:
        for key_id in KEY_IDS:
            fake.add_key(key_id)
        fake.add_key(DISABLED_KEY_ID, state="DISABLED")
        fake.add_key(DENIED_KEY_ID, state="DENIED")
        yield GcpBackend(fake)
    finally:
        fake.stop()
