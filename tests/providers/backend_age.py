"""age backend for the provider contract tests: two fresh pyrage identities, no server needed.

The identities are made once per test session and exist only in memory and in the
environment given to the child processes (``SOPS_AGE_KEY``), which both our CLI
and the real sops read.
"""

from __future__ import annotations

import pytest
from pyrage import x25519  # type: ignore[import-untyped]


class AgeBackend:
    """Two age identities; ``env()`` makes both available to our CLI and to sops."""

    type_id = "age"
    flag = "--age"

    def __init__(self, identities: list[tuple[str, str]]) -> None:
        #: (secret key, recipient) pairs
        self.identities = identities

    def recipients(self) -> list[str]:
        return [recipient for _, recipient in self.identities]

    def env(self) -> dict[str, str]:
        return {"SOPS_AGE_KEY": "\n".join(secret for secret, _ in self.identities)}

    def sops_env(self) -> dict[str, str] | None:
        return self.env()

    def env_without_credentials(self) -> dict[str, str]:
        """The backend reachable but none of its identities available."""
        return {}


@pytest.fixture(scope="session")
def age_backend() -> AgeBackend:
    identities = []
    for _ in range(2):
        identity = x25519.Identity.generate()
        identities.append((str(identity), str(identity.to_public())))
    return AgeBackend(identities)
