"""Finding and reading ``.sops.yaml`` / ``.sops-policy.yaml``: the creation rules.

This module owns the config-file lookup (:func:`find_config`), the parsing of the
file into a :class:`Config` (:func:`load_config`) and the choice of the creation
rule that applies to a file (:func:`match_rule`), which yields a resolved
:class:`CreationRule`: recipients per key group, Shamir threshold, and the
encryption-rule settings.  It follows getsops/sops ``config/config.go`` (build
09cf07a5, the sops 3.11.0 binary), checked against that binary.

Work is split the way sops splits it:

* **Loading** checks the shape of the whole file, as sops's YAML decoding does on
  every command (decrypt included): wrong types, duplicate keys and YAML syntax
  errors are :class:`ConfigError`, with the file name and line.
* **Resolving** a rule (regex compilation, the one-rule-setting check, recipient
  parsing through the providers) happens only for the rules that matching
  reaches, as in sops.  A rule for another file that names, say, ``kms`` keys
  therefore needs no KMS provider installed, and a bad ``path_regex`` after the
  matching rule is never noticed.

One check is stricter than sops: the shape of the single-group key fields (a
string or a list of strings) is checked at load for every rule, where sops checks
it only for the rule in use.

Unknown keys are ignored everywhere (top level, creation rules, key groups), as
sops ignores them; so are ``destination_rules`` (``sops publish`` is not
supported; sops would reject a malformed section).

YAML differences: PyYAML resolves plain scalars with YAML 1.1 rules where sops
(yaml.v3) uses 1.2.  String settings are taken from the scalar text as written, so
they are unaffected; only typed settings (``shamir_threshold``,
``mac_only_encrypted``) and the "string or list" key fields can see the
difference, e.g. ``age: 0o17`` is a string to PyYAML but a number to sops.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from . import providers
from .config_search import CONFIG_NAMES
from .errors import ConfigError, SopsError
from .providers.base import Recipient
from .walk import RULE_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CONFIG_NAMES",
    "Config",
    "CreationRule",
    "RecipientSpec",
    "RuleSpec",
    "find_config",
    "load_config",
    "match_rule",
    "resolve_rule",
]



def _warn(message: str, *args: object) -> None:
    import logging

    logging.getLogger(__name__).warning(message, *args)



#: key kinds sops accepts that our registry does not list; their recipients must
#: never be dropped silently, so they resolve to a provider that is not installed
_SOPS_ONLY_KEYS: dict[str, str] = {"hckms": "hckms"}

#: matches sops: the order in which a rule's key kinds are added to a group
_SOPS_KEY_ORDER: tuple[str, ...] = ("age", "pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault")

#: matches yaml.v3: these strings are booleans when the target is a bool
_YAML11_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
_YAML11_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF"})

_TAG = "tag:yaml.org,2002:"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class RecipientSpec:
    """Recipients as written in the file, before a provider parses them.

    ``value`` is a comma-separated string in the single-group form, and one
    ``key_groups`` item (a string, or a mapping of strings) in the group form.
    """

    key: str
    type_id: str
    value: Any
    line: int
    in_group: bool


@dataclass(frozen=True)
class RuleSpec:
    """One ``creation_rules`` entry, shape-checked but not resolved (see :func:`resolve_rule`)."""

    index: int
    line: int
    path_regex: str | None
    #: one tuple per key group; the single-group form gives exactly one
    groups: tuple[tuple[RecipientSpec, ...], ...]
    #: True when the recipients come from ``key_groups``
    uses_key_groups: bool
    shamir_threshold: int
    #: the six encryption-rule settings that are set, in RULE_FIELDS order
    settings: tuple[tuple[str, str], ...]
    mac_only_encrypted: bool
    aws_profile: str | None


@dataclass(frozen=True)
class CreationRule:
    """The creation rule that applies to a file, with its recipients parsed.

    ``key_groups`` holds one tuple of recipients per group; the single-group form
    gives one group.  A group may be empty: the caller reports that no key is
    configured.  ``shamir_threshold`` is as written (0 when absent): with two or
    more groups the caller treats 0 as "all groups" and sops requires
    ``2 <= threshold <= groups``; with one group it is ignored.
    """

    index: int
    path_regex: str | None
    key_groups: tuple[tuple[Recipient, ...], ...]
    shamir_threshold: int = 0
    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None
    unencrypted_comment_regex: str | None = None
    encrypted_comment_regex: str | None = None
    mac_only_encrypted: bool = False
    aws_profile: str | None = None

    @property
    def encryption_rule(self) -> tuple[str, str] | None:
        """The one encryption-rule setting given, as ``(field, value)``, or None."""
        for name in RULE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return (name, value)
        return None

    @property
    def recipients(self) -> tuple[Recipient, ...]:
        """Every recipient of every group, in order."""
        return tuple(r for group in self.key_groups for r in group)


@dataclass(frozen=True)
class Config:
    """A loaded config file.

    ``creation_rules`` is None when the file has no ``creation_rules`` (absent or
    null): sops then behaves as if there were no config file at all.  An empty
    list is different: no rule can match.  ``stores`` and ``policy`` are the raw
    sections (``{}`` / None when absent); ``raw`` is the whole first document.
    """

    path: Path
    creation_rules: tuple[RuleSpec, ...] | None
    stores: Mapping[str, Any]
    policy: Mapping[str, Any] | None
    raw: Mapping[str, Any]


# --------------------------------------------------------------------------- lookup


def find_config(
    target: Path | str | None,
    explicit: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> Path | None:
    """The config file that governs ``target``, or None (see :func:`.config_search.find_config_path`)."""
    from .config_search import find_config_path

    found = find_config_path(target, explicit, env)
    return Path(found) if found is not None else None


# --------------------------------------------------------------------------- loading


def load_config(path: Path) -> Config:
    """Read and shape-check a config file; ConfigError (file, line) if it is malformed.

    Only the first YAML document is read, as sops does.  An empty file, or one
    with only comments, gives a config without creation rules.
    """
    from . import pyyaml

    yaml = pyyaml.load()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None

    loader = yaml.CSafeLoader(data)
    try:
        root = loader.get_node() if loader.check_node() else None
        reader = _Reader(Path(path), loader, yaml)
        config = reader.read(root)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_message(path, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        # PyYAML constructors can fail this way (e.g. a date such as 2024-13-45)
        raise ConfigError(f"{path}: invalid YAML value: {exc}") from None
    finally:
        loader.dispose()
    return config


def _yaml_message(path: Path, exc: Any) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = exc.problem or exc.context or "invalid YAML"
    return f"{where}: invalid YAML: {problem}"


def _kind(node: Any, yaml: Any) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.removeprefix(_TAG)
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    return names.get(tag, "null" if tag == "null" else f"a value tagged {node.tag}")


class _Reader:
    """Walks the composed YAML nodes, with the file name and lines for messages."""

    def __init__(self, path: Path, loader: Any, yaml: Any) -> None:
        self.path = path
        self.loader = loader
        self.yaml = yaml

    # ----------------------------------------------------------------- helpers

    def fail(self, node: Any, what: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.start_mark.line + 1}: {what}")

    def is_null(self, node: Any) -> bool:
        return isinstance(node, self.yaml.ScalarNode) and node.tag == _TAG + "null"

    def mapping(self, node: Any, where: str) -> dict[str, Any]:
        """A mapping node's entries by key text; merges (``<<``) applied, duplicates refused."""
        if not isinstance(node, self.yaml.MappingNode):
            raise self.fail(node, f"{where}: expected a mapping, found {_kind(node, self.yaml)}")
        seen: dict[tuple[type, str], Any] = {}
        for key, _ in node.value:
            if not isinstance(key, self.yaml.ScalarNode) or key.tag == _TAG + "merge":
                continue
            ident = (type(key), key.value)
            if ident in seen:
                # matches yaml.v3: a key given twice is an error, not "last one wins"
                first = seen[ident].start_mark.line + 1
                raise self.fail(key, f"{where}: key {key.value!r} already defined at line {first}")
            seen[ident] = key
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key, value in node.value:
            if isinstance(key, self.yaml.ScalarNode):
                out[key.value] = value  # merged entries come first: the file's own win
        return out

    def sequence(self, node: Any, where: str) -> list[tuple[int, Any]]:
        """A list's ``(index, item)`` pairs, nulls dropped (matches yaml.v3 for typed lists)."""
        if not isinstance(node, self.yaml.SequenceNode):
            raise self.fail(node, f"{where}: expected a list, found {_kind(node, self.yaml)}")
        return [(n, item) for n, item in enumerate(node.value) if not self.is_null(item)]

    def string(self, node: Any, where: str) -> str:
        """matches yaml.v3 decoding into a string: any scalar's text as written; null is ""."""
        if not isinstance(node, self.yaml.ScalarNode):
            raise self.fail(node, f"{where}: expected a string, found {_kind(node, self.yaml)}")
        return "" if self.is_null(node) else str(node.value)

    def integer(self, node: Any, where: str) -> int:
        if self.is_null(node):
            return 0
        if isinstance(node, self.yaml.ScalarNode):
            if node.tag == _TAG + "int":
                return int(self.loader.construct_yaml_int(node))
            if node.tag == _TAG + "float":
                number = float(self.loader.construct_yaml_float(node))
                if math.isfinite(number):
                    return int(number)  # matches yaml.v3: a float is truncated into an int
        raise self.fail(node, f"{where}: expected an integer, found {_kind(node, self.yaml)}")

    def boolean(self, node: Any, where: str) -> bool:
        if self.is_null(node):
            return False
        if isinstance(node, self.yaml.ScalarNode):
            if node.tag == _TAG + "bool":
                return bool(self.loader.construct_yaml_bool(node))
            if node.tag == _TAG + "str":
                # matches yaml.v3: YAML 1.1 spellings, even quoted, are accepted for a bool
                if node.value in _YAML11_TRUE:
                    return True
                if node.value in _YAML11_FALSE:
                    return False
        raise self.fail(node, f"{where}: expected a boolean, found {_kind(node, self.yaml)}")

    def plain(self, node: Any, where: str, depth: int = 0) -> Any:
        """A key-group item as sops's string-typed structs see it: scalars keep their text."""
        if depth > 32:
            raise self.fail(node, f"{where}: nested too deeply")
        if isinstance(node, self.yaml.ScalarNode):
            return None if self.is_null(node) else str(node.value)
        if isinstance(node, self.yaml.SequenceNode):
            return [self.plain(item, where, depth + 1) for item in node.value]
        return {
            key: self.plain(value, f"{where}.{key}", depth + 1)
            for key, value in self.mapping(node, where).items()
        }

    # ----------------------------------------------------------------- sections

    def read(self, root: Any) -> Config:
        if root is None or self.is_null(root):  # matches sops: "---" or "~" is an empty config
            return Config(self.path, None, MappingProxyType({}), None, MappingProxyType({}))
        top = self.mapping(root, "top level")

        rules: tuple[RuleSpec, ...] | None = None
        node = top.get("creation_rules")
        if node is not None and not self.is_null(node):
            # matches yaml.v3: a null entry is dropped; indexes in messages are the file's
            rules = tuple(
                self.rule(item, index) for index, item in self.sequence(node, "creation_rules")
            )

        stores_node = top.get("stores")
        if stores_node is not None:
            self.check_stores(stores_node)
        policy_node = top.get("policy")
        if policy_node is not None and not self.is_null(policy_node):
            self.mapping(policy_node, "policy")

        raw = self.loader.construct_document(root)
        if not isinstance(raw, dict):  # pragma: no cover - mapping checked above
            raise self.fail(root, "top level: expected a mapping")
        stores = raw.get("stores") or {}
        policy = raw.get("policy")
        return Config(
            path=self.path,
            creation_rules=rules,
            stores=MappingProxyType(stores),
            policy=MappingProxyType(policy) if policy is not None else None,
            raw=MappingProxyType(raw),
        )

    def check_stores(self, node: Any) -> None:
        """matches sops: the ``stores`` section is typed (an int ``indent`` per store)."""
        if self.is_null(node):
            return
        for name, value in self.mapping(node, "stores").items():
            if self.is_null(value) or name not in ("yaml", "json", "json_binary", "dotenv", "ini"):
                continue
            entries = self.mapping(value, f"stores.{name}")
            if name in ("yaml", "json", "json_binary") and "indent" in entries:
                self.integer(entries["indent"], f"stores.{name}.indent")

    def rule(self, node: Any, index: int) -> RuleSpec:
        where = f"creation_rules[{index}]"
        fields = self.mapping(node, where)

        def text(name: str) -> str | None:
            value = fields.get(name)
            if value is None:
                return None
            return self.string(value, f"{where}.{name}") or None  # matches sops: "" means unset

        settings = tuple((name, value) for name in RULE_FIELDS if (value := text(name)) is not None)
        threshold = fields.get("shamir_threshold")
        mac_only = fields.get("mac_only_encrypted")

        groups: tuple[tuple[RecipientSpec, ...], ...] = ()
        groups_node = fields.get("key_groups")
        if groups_node is not None and not self.is_null(groups_node):
            groups = tuple(
                tuple(self.group(item, f"{where}.key_groups[{n}]", set()))
                for n, item in self.sequence(groups_node, f"{where}.key_groups")
            )
        # matches sops: the single-group keys are ignored (not even checked) as soon
        # as key_groups has at least one group
        uses_key_groups = bool(groups)
        if not uses_key_groups:
            groups = (tuple(self.single_group(fields, where)),)

        return RuleSpec(
            index=index,
            line=node.start_mark.line + 1,
            path_regex=text("path_regex"),
            groups=groups,
            uses_key_groups=uses_key_groups,
            shamir_threshold=(
                self.integer(threshold, f"{where}.shamir_threshold") if threshold is not None else 0
            ),
            settings=settings,
            mac_only_encrypted=(
                self.boolean(mac_only, f"{where}.mac_only_encrypted")
                if mac_only is not None
                else False
            ),
            aws_profile=text("aws_profile"),
        )

    def single_group(self, fields: dict[str, Any], where: str) -> list[RecipientSpec]:
        specs: list[RecipientSpec] = []
        for key, type_id in _ordered(providers.RULE_KEYS):
            node = fields.get(key)
            if node is None or self.is_null(node):
                continue
            name = f"{where}.{key}"
            if isinstance(node, self.yaml.SequenceNode):
                parts = []
                for item in node.value:
                    if not isinstance(item, self.yaml.ScalarNode) or item.tag != _TAG + "str":
                        raise self.fail(
                            item,
                            f"{name}: expected a string in the list, found {_kind(item, self.yaml)}",
                        )
                    parts.append(item.value)
            elif isinstance(node, self.yaml.ScalarNode) and node.tag == _TAG + "str":
                # matches sops: a comma-separated string; blanks around and empty items dropped
                parts = [p.strip() for p in node.value.split(",") if p.strip()]
            else:
                raise self.fail(
                    node,
                    f"{name}: expected a string or a list of strings, found {_kind(node, self.yaml)}",
                )
            # matches sops: list items are joined with commas and parsed like the string form
            joined = ",".join(parts)
            if joined:
                specs.append(RecipientSpec(key, type_id, joined, node.start_mark.line + 1, False))
        return specs

    def group(self, node: Any, where: str, visiting: set[int]) -> list[RecipientSpec]:
        if id(node) in visiting:
            raise self.fail(node, f"{where}: a key group merges itself")
        visiting = visiting | {id(node)}
        fields = self.mapping(node, where)
        specs: list[RecipientSpec] = []
        merge = fields.get("merge")
        if merge is not None and not self.is_null(merge):
            # matches sops: merged groups come first, in order, then the group's own keys
            for n, item in self.sequence(merge, f"{where}.merge"):
                specs.extend(self.group(item, f"{where}.merge[{n}]", visiting))
        for key, type_id in _ordered(providers.GROUP_KEYS):
            value = fields.get(key)
            if value is None or self.is_null(value):
                continue
            for _, item in self.sequence(value, f"{where}.{key}"):
                if isinstance(item, self.yaml.SequenceNode):
                    raise self.fail(
                        item, f"{where}.{key}: expected a string or a mapping, found a list"
                    )
                plain = self.plain(item, f"{where}.{key}")
                if plain == "":
                    continue  # matches sops for age: an empty entry adds no key
                specs.append(RecipientSpec(key, type_id, plain, item.start_mark.line + 1, True))
        return specs


def _ordered(table: Mapping[str, str]) -> list[tuple[str, str]]:
    """The config keys of a registry table plus the sops-only ones, in sops's order."""
    keys = {**table, **{k: v for k, v in _SOPS_ONLY_KEYS.items() if k not in table}}

    def rank(item: tuple[str, str]) -> int:
        type_id = item[1]
        return (
            _SOPS_KEY_ORDER.index(type_id) if type_id in _SOPS_KEY_ORDER else len(_SOPS_KEY_ORDER)
        )

    return sorted(keys.items(), key=rank)  # stable: unknown kinds keep the table's order


# --------------------------------------------------------------------------- matching


def match_rule(config: Config, file_path: Path | str) -> CreationRule | None:
    """The first creation rule whose ``path_regex`` is found in ``file_path``.

    As in sops, the path is made absolute (lexically, with the current directory)
    and, when it lies under the config file's directory, made relative to it
    (``sub/app.yaml``); a file outside keeps its absolute path, so ``^/`` matches
    it.  The regex is searched, not anchored; a rule without one matches every
    file.  For stdin, pass the ``--filename-override`` value: sops requires one
    (exit 8), since there is no other name to match.

    Returns None when the config has no ``creation_rules`` section (sops then
    acts as if there were no config).  Raises :class:`SopsError` (exit 1, like
    sops) when no rule matches, even if keys were given on the command line, and
    :class:`ConfigError` for an invalid regex in a rule that is reached.

    Regexes are compiled with Python's ``re`` (flag ``ASCII``, so ``\\d``, ``\\w``,
    ``\\s`` and ``\\b`` are ASCII-only as in RE2), not Go's RE2.  Differences that
    remain: ``re`` also accepts backreferences and lookarounds (RE2 refuses them);
    ``\\z``, ``\\pL``/``\\p{…}``, ``(?U)`` and ``(?<name>…)`` are RE2 syntax that
    ``re`` refuses (use ``\\Z`` or ``$``, explicit classes, ``(?P<name>…)``);
    ``[[:alpha:]]`` is a POSIX class in RE2 but a plain set in ``re``; ``$`` also
    matches before a final newline in ``re``; ``(?i)`` folds ASCII letters only.
    """
    if config.creation_rules is None:
        return None
    path = os.path.abspath(os.fspath(file_path))
    config_dir = os.path.abspath(os.path.dirname(config.path))
    # matches sops: a plain prefix test on "<config dir>/"; with the config at
    # the root the prefix is "//", which never matches, so paths stay absolute
    prefix = config_dir + os.sep
    path = path.removeprefix(prefix)
    for spec in config.creation_rules:
        if spec.path_regex is None or _compile(config, spec).search(path):
            return _resolve(config, spec)
    raise SopsError(
        "error loading config: no matching creation rules found",
        hint=f"no path_regex in {config.path} matches {path!r}",
    )


def _compile(config: Config, spec: RuleSpec) -> re.Pattern[str]:
    assert spec.path_regex is not None
    try:
        return re.compile(spec.path_regex, re.ASCII)
    except re.error as exc:
        raise ConfigError(
            f"{config.path}:{spec.line}: creation_rules[{spec.index}]: invalid path_regex: {exc}"
        ) from None


def resolve_rule(config: Config, spec: RuleSpec) -> CreationRule:
    """Resolve one of ``config.creation_rules`` whatever the file (e.g. to check a whole config).

    Raises what :func:`match_rule` raises when it reaches that rule.
    """
    if spec.path_regex is not None:
        _compile(config, spec)
    return _resolve(config, spec)


def _resolve(config: Config, spec: RuleSpec) -> CreationRule:
    where = f"{config.path}:{spec.line}: creation_rules[{spec.index}]"
    if len(spec.settings) > 1:
        # matches sops: exit 1, checked only for the rule that is used
        raise SopsError(
            "error loading config: cannot use more than one of encrypted_suffix, "
            "unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, "
            "or unencrypted_comment_regex for the same rule",
            hint=f"{where} sets {', '.join(name for name, _ in spec.settings)}",
        )
    groups = tuple(_dedupe(_recipients(config, spec, group)) for group in spec.groups)
    settings = dict(spec.settings)
    return CreationRule(
        index=spec.index,
        path_regex=spec.path_regex,
        key_groups=groups,
        shamir_threshold=spec.shamir_threshold,
        unencrypted_suffix=settings.get("unencrypted_suffix"),
        encrypted_suffix=settings.get("encrypted_suffix"),
        unencrypted_regex=settings.get("unencrypted_regex"),
        encrypted_regex=settings.get("encrypted_regex"),
        unencrypted_comment_regex=settings.get("unencrypted_comment_regex"),
        encrypted_comment_regex=settings.get("encrypted_comment_regex"),
        mac_only_encrypted=spec.mac_only_encrypted,
        aws_profile=spec.aws_profile,
    )


def _recipients(config: Config, spec: RuleSpec, group: Sequence[RecipientSpec]) -> list[Recipient]:
    out: list[Recipient] = []
    for item in group:
        where = f"{config.path}:{item.line}: creation_rules[{spec.index}].{item.key}"
        provider = providers.get(item.type_id)
        if provider is None:
            hint = providers.INSTALL_HINTS.get(item.type_id)
            raise ConfigError(
                f"{where}: no provider is installed for {item.type_id!r} keys",
                hint=hint or f"this tool has no support for {item.type_id!r} keys yet",
            )
        try:
            if item.in_group:
                parsed = [provider.recipient_from_config(item.value)]
            else:
                parsed = provider.parse_recipients(item.value)
        except (SopsError, ValueError) as exc:
            message = exc.message if isinstance(exc, SopsError) else str(exc)
            raise ConfigError(
                f"{where}: {message}", hint=exc.hint if isinstance(exc, SopsError) else None
            ) from None
        if spec.aws_profile and not item.in_group:
            # matches sops: the rule's aws_profile applies to its single-group KMS keys
            parsed = [
                r._replace(options=r.options + (("aws_profile", spec.aws_profile),))
                if r.type_id == "kms" and r.option("aws_profile") is None
                else r
                for r in parsed
            ]
        out.extend(parsed)
    return out


def _dedupe(recipients: list[Recipient]) -> tuple[Recipient, ...]:
    """Identical recipients once each, first place kept (sops does this for key_groups only)."""
    unique: list[Recipient] = []
    for recipient in recipients:
        if recipient not in unique:  # options may hold dicts: compare, do not hash
            unique.append(recipient)
    return tuple(unique)
