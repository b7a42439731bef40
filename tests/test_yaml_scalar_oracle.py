"""Plain-scalar typing against golden data made by the real sops 3.11 (tests/data/make_yaml_oracle.py).

sops types an unquoted YAML scalar the way go-yaml v3 resolves it, and that type
tag and the plaintext bytes are what the MAC and every reader depend on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gitcrypt_sops.codec import to_plaintext
from gitcrypt_sops.errors import SopsError
from gitcrypt_sops.stores import yaml_store

CASES = json.loads((Path(__file__).parent / "data" / "yaml_scalar_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[case["yaml"] for case in CASES])
def test_scalar_typed_as_sops_types_it(case: dict[str, Any]) -> None:
    source = f"v: {case['yaml']}\n".encode()
    if case["type"] == "error":
        with pytest.raises(SopsError) as raised:
            value = yaml_store.load(source, want_metadata=False).documents[0]["v"]
            to_plaintext(value)
        assert raised.value.exit_code == case["exit_code"]
        return
    value = yaml_store.load(source, want_metadata=False).documents[0]["v"]
    if case["type"] == "null":
        assert value is None
        return
    plaintext, type_tag = to_plaintext(value)
    assert type_tag == case["type"]
    if case["plaintext"] is not None:
        assert plaintext.decode("utf-8", "surrogateescape") == case["plaintext"]
