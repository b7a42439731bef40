"""AWS KMS backend for the provider tests: one moto server per test session, on 127.0.0.1.

The server holds two KMS keys, an alias of the first and an IAM role (for ``+role``
keys and web identity).  :class:`AwsBackend` gives the recipients and the
environment that points both our CLI and the real sops at it: endpoint variables,
dummy static credentials, the region, and instance metadata disabled.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "sops-test-role"
ALIAS_NAME = "alias/sops-test"
#: dummy static credentials; moto accepts any
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


class AwsBackend:
    """A running moto server with two KMS keys, an alias and an IAM role."""

    type_id = "kms"
    flag = "--kms"

    def __init__(self, url: str, key_arns: list[str], alias_arn: str, role_arn: str) -> None:
        self.url = url
        self.key_arns = key_arns
        self.alias_arn = alias_arn
        self.role_arn = role_arn

    def recipients(self) -> list[str]:
        return list(self.key_arns)

    def endpoint_env(self) -> dict[str, str]:
        """Only the endpoint variables (for runs that bring their own credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ENDPOINT_URL_KMS": self.url,
            "AWS_ENDPOINT_URL_STS": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def env(self) -> dict[str, str]:
        return {
            **self.endpoint_env(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def sops_env(self) -> dict[str, str] | None:
        return self.env()

    def client(self, service: str) -> Any:
        """A boto3 client talking to the server with the dummy credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def state(self) -> dict[str, Any]:
        """moto's whole state (``/moto-api/data.json``): keys, assumed roles, ..."""
        with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=10) as answer:
            data: dict[str, Any] = json.load(answer)
        return data

    def assumed_roles(self) -> list[dict[str, Any]]:
        """Every STS session moto handed out (AssumeRole and AssumeRoleWithWebIdentity)."""
        return list(self.state().get("sts", {}).get("AssumedRole", []))

    def create_key(self, description: str = "extra test key") -> str:
        arn: str = self.client("kms").create_key(Description=description)["KeyMetadata"]["Arn"]
        return arn


@pytest.fixture(scope="session")
def aws_backend() -> Iterator[AwsBackend]:
    pytest.importorskip("boto3")
    pytest.importorskip("flask")
    pytest.importorskip("flask_cors")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        backend = AwsBackend(f"http://{host}:{port}", [], "", "")
        kms = backend.client("kms")
        backend.key_arns = [
            kms.create_key(Description=f"gitcrypt-sops test key {n}")["KeyMetadata"]["Arn"]
            for n in (1, 2)
        ]
        kms.create_alias(AliasName=ALIAS_NAME, TargetKeyId=backend.key_arns[0].rsplit("/", 1)[1])
        backend.alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{ALIAS_NAME}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                           "Action": "sts:AssumeRole"}],
        }
        backend.role_arn = backend.client("iam").create_role(
            RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        yield backend
    finally:
        server.stop()
