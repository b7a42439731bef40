"""Shared test set-up: an offline, credential-free environment and runners for both tools.

Every test process gets dummy cloud credentials and metadata lookups disabled, so
no SDK ever probes a metadata server; the real ``sops`` runs with a scrubbed
environment and a temporary HOME.  Constants and runners live in support.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import AGE_KEY_FILE, Runner, sops_binary


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def sops(home: Path) -> Runner:
    """The real sops 3.11 Go binary (a test dependency, never a runtime one)."""
    return Runner([sops_binary()], home)


@pytest.fixture
def ours(home: Path) -> Runner:
    """Our CLI, as a user runs it."""
    return Runner([sys.executable, "-m", "gitcrypt_sops"], home)


@pytest.fixture(autouse=True)
def _age_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """In-process tests decrypt with the test-only vector key and a private HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(AGE_KEY_FILE))
    from gitcrypt_sops.providers import age

    age.clear_cache()
    yield
    age.clear_cache()
