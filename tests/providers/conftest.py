"""Key-provider backends for the tests: one module per provider, each with a real or faithful server.

Every ``backend_<name>.py`` in this folder defines a session-scoped pytest fixture
named ``<name>_backend`` that starts its server once (bound to 127.0.0.1) and
returns a :class:`Backend`.  The shared contract test (test_contract.py) runs the
same checks against every backend found here.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).parent))

#: backend modules and the fixture each defines
BACKEND_FIXTURES = {
    "backend_age": "age_backend",
    "backend_aws": "aws_backend",
    "backend_gcp": "gcp_backend",
    "backend_vault": "vault_backend",
    "backend_pgp": "pgp_backend",
}


class Backend(Protocol):
    """What the contract test needs from a provider's backend."""

    #: the sops metadata key of the provider (``kms``, ``gcp_kms``, ``hc_vault``, ``pgp``, ``age``)
    type_id: str
    #: the CLI flag that takes its recipients, e.g. ``--kms``
    flag: str

    def recipients(self) -> list[str]:
        """Two recipients, as written after the flag (each usable on its own)."""

    def env(self) -> dict[str, str]:
        """Environment for our CLI and for sops: endpoints, dummy credentials, key homes."""

    def sops_env(self) -> dict[str, str] | None:
        """Environment for the real sops, or None when sops cannot reach this backend."""


AVAILABLE: list[str] = []
for _module_name, _fixture_name in BACKEND_FIXTURES.items():
    try:
        _module = importlib.import_module(_module_name)
    except ImportError:
        continue
    globals()[_fixture_name] = getattr(_module, _fixture_name)
    AVAILABLE.append(_fixture_name)
