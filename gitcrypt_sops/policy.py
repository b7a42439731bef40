"""The ``policy:`` section of ``.sops-policy.yaml``: its model, its validation, and the checks.

This module owns

* :class:`Policy`, the validated ``policy:`` section next to the creation rules it
  came with (:func:`load_policy`, :func:`validate`): unknown keys are refused with
  the line and a "did you mean";
* the path globs of ``must_encrypt``/``exclude`` (:func:`compile_glob`);
* recipient references of ``required_recipients``/``forbidden_recipients``, and the
  keyless identity of a metadata entry (:func:`entry_ident`);
* :func:`check_document`, every rule applied to one file's bytes, reading metadata
  only: no key, no network, no git (history comes in through a callable);
* :func:`data_key_birth`, the keyless bound on when a file's data key was made.

**The age of a data key.**  sops writes no creation date for the data key, an age
entry carries no ``created_at``, and sops re-stamps every ``created_at`` on
``updatekeys``.  A field of our own in the ``sops`` block is not an answer either:
sops 3.11 reads a file with an unknown metadata field but drops the field on its
next write (``set``, ``rotate``, ``updatekeys``, ``edit``), and the MAC does not
cover metadata, so it could be forged.  The age is therefore derived from facts
that every writer keeps, without keys:

* the file's ``lastmodified`` and every entry's ``created_at`` were written while
  the current data key already existed, so each is an upper bound of its birth;
* two revisions of a file share a data key when they have an identical
  ``ENC[...]`` value or an identical wrapped key (AES-GCM or age under another key
  cannot reproduce either); ``rotate`` changes every value and every wrapped key,
  ``updatekeys`` changes only the wrapped keys, an edit only the edited values;
* walking the file's git history backwards while revisions keep sharing the key,
  the oldest such revision's commit time, ``lastmodified`` and ``created_at`` are
  upper bounds too.

The birth is the smallest of these bounds, so the computed age is a lower bound:
a reported violation is certain.  It can be too young only when a single commit
both rewrote every value and re-wrapped every key without rotating, when history
is cut (shallow clone, file renamed) or when the file is outside git (then only
``lastmodified``/``created_at`` count).  CI should check out full history.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import config as config_mod
from .dates import datetime, timedelta, timezone
from .errors import ConfigError, SopsError
from .walk import RULE_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "POLICY_KEYS",
    "RULES",
    "Policy",
    "RecipientRef",
    "Violation",
    "check_document",
    "compile_glob",
    "data_key_birth",
    "entry_ident",
    "load_policy",
    "parse_age",
    "parse_recipient_ref",
    "validate",
]

#: every key of the ``policy:`` section, in the order the README documents them
POLICY_KEYS: tuple[str, ...] = (
    "must_encrypt",
    "never_plaintext",
    "required_recipients",
    "forbidden_recipients",
    "max_data_key_age",
    "recipients_match_rules",
    "exclude",
    "audit_log",  # read by audit.py: where decrypts are logged
)

#: the rule names a violation can carry (policy rules plus file problems)
RULES: tuple[str, ...] = (
    "must_encrypt",
    "never_plaintext",
    "required_recipients",
    "forbidden_recipients",
    "max_data_key_age",
    "recipients_match_rules",
    "metadata",
)

_TOP_KEYS = ("creation_rules", "stores", "policy", "destination_rules")
_RULE_KEYS = (
    "path_regex", "age", "pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms",
    "key_groups", "shamir_threshold", "mac_only_encrypted", "aws_profile",
) + RULE_FIELDS
_GROUP_KEYS = ("merge", "age", "pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault", "hckms")
_STORE_NAMES = ("yaml", "json", "json_binary", "dotenv", "ini", "toml")

_TAG = "tag:yaml.org,2002:"
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_AGE_TEXT = re.compile(r"^\s*(?:(\d+)\s*([smhdwy])\s*)+$")
_AGE_PART = re.compile(r"(\d+)\s*([smhdwy])")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class RecipientRef:
    """A recipient named in the policy: ``type_id`` and the identity files carry."""

    type_id: str
    ident: str
    text: str

    def __str__(self) -> str:
        return self.ident if self.type_id == "age" else f"{self.type_id}:{self.ident}"


@dataclass(frozen=True)
class Policy:
    """A config file's ``policy:`` section, validated, with the config it belongs to.

    ``root`` is the config file's directory: globs are relative to it.  A config
    without a ``policy:`` section gives a policy with no rule switched on.
    """

    config: config_mod.Config
    root: Path
    must_encrypt: tuple[str, ...] = ()
    never_plaintext: tuple[re.Pattern[str], ...] = ()
    required_recipients: tuple[RecipientRef, ...] = ()
    forbidden_recipients: tuple[RecipientRef, ...] = ()
    max_data_key_age: timedelta | None = None
    recipients_match_rules: bool = False
    exclude: tuple[str, ...] = ()
    _must: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _exclude: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _sensitive: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)
    _rules: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.config.path

    def relative(self, file: Path | str) -> str | None:
        """``file`` relative to the policy root in POSIX form, or None when outside it."""
        absolute = os.path.abspath(os.fspath(file))
        prefix = os.fspath(self.root).rstrip(os.sep) + os.sep
        if not absolute.startswith(prefix):
            return None
        relative = absolute[len(prefix):]
        return relative.replace(os.sep, "/") if os.sep != "/" else relative

    def must_be_encrypted(self, relative: str) -> str | None:
        """The ``must_encrypt`` glob that selects ``relative``, or None."""
        for text, pattern in zip(self.must_encrypt, self._must):
            if pattern.fullmatch(relative):
                return text
        return None

    def excluded(self, relative: str) -> bool:
        return any(pattern.fullmatch(relative) for pattern in self._exclude)

    def sensitive(self, key: str) -> bool:
        known = self._sensitive.get(key)
        if known is None:
            known = self._sensitive[key] = any(pattern.search(key) for pattern in self.never_plaintext)
        return known

    def creation_rule(self, file: Path | str) -> Any:
        """The resolved creation rule for ``file`` (as :func:`config.match_rule` picks it), cached per rule.

        None when the config has no creation rules; SopsError when none matches.
        """
        config = self.config
        if config.creation_rules is None:
            return None
        path = os.path.abspath(os.fspath(file))
        path = path.removeprefix(os.path.dirname(os.path.abspath(config.path)) + os.sep)
        for spec in config.creation_rules:
            if spec.path_regex is not None:
                pattern = self._rules.get(-1 - spec.index)
                if pattern is None:
                    try:
                        pattern = self._rules[-1 - spec.index] = re.compile(spec.path_regex, re.ASCII)
                    except re.error as exc:
                        raise ConfigError(
                            f"{config.path}:{spec.line}: creation_rules[{spec.index}]: invalid path_regex: {exc}"
                        ) from None
                if not pattern.search(path):
                    continue
            if spec.index not in self._rules:
                self._rules[spec.index] = config_mod.resolve_rule(config, spec)
            return self._rules[spec.index]
        raise SopsError("no creation rule matches this file")


@dataclass(frozen=True)
class Violation:
    """One broken rule in one file: what, and what to do about it."""

    file: str
    rule: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "rule": self.rule, "message": self.message, "fix": self.fix}

    def as_text(self) -> str:
        return f"{self.file}: {self.rule}: {self.message} (fix: {self.fix})"


# --------------------------------------------------------------------------- globs


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A ``must_encrypt``/``exclude`` glob as a regex over POSIX paths relative to the root.

    gitignore/gitattributes rules: ``*`` and ``?`` stay inside one path segment,
    ``**`` spans segments (``secrets/**``, ``**/*.enc.*``, ``a/**/b``), ``[...]``
    is a character class (``[!...]`` negated), a pattern without a ``/`` (other
    than a trailing one) matches the file name at any depth, and a trailing
    ``/`` selects everything below a directory.  A leading ``/`` anchors only.
    """
    text = pattern.strip()
    if not text:
        raise ValueError("empty pattern")
    if text.endswith("/"):
        text += "**"
    anchored = "/" in text.rstrip("/")
    text = text.lstrip("/")
    segments = text.split("/")
    out: list[str] = [] if anchored else ["(?:.*/)?"]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        out.append(_segment(segment))
        if not last:
            out.append("/")
    return re.compile("".join(out), re.DOTALL)


def _segment(segment: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            while index + 1 < len(segment) and segment[index + 1] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", index + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[index + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                index = end
        elif char == "\\" and index + 1 < len(segment):
            index += 1
            out.append(re.escape(segment[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


# --------------------------------------------------------------------------- recipients

#: the fields that identify the key of a metadata entry, per key type
_IDENT_FIELDS: dict[str, tuple[str, ...]] = {
    "age": ("recipient",),
    "kms": ("arn",),
    "gcp_kms": ("resource_id",),
    "pgp": ("fp",),
    "hckms": ("key_id",),
}
_KNOWN_TYPES = ("age", "kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "hckms")
_TYPE_ALIASES = {"azure_keyvault": "azure_kv", "hc_vault_transit_uri": "hc_vault", "hc_vault_transit": "hc_vault",
                 "gcp-kms": "gcp_kms", "azure-kv": "azure_kv", "hc-vault-transit": "hc_vault"}


def entry_ident(type_id: str, entry: Mapping[str, Any]) -> str:
    """The keyless identity of a metadata entry: what a recipient reference names.

    age: the recipient; kms: the ARN; gcp_kms: the resource id; pgp: the
    fingerprint (upper case); azure_kv: ``<vault_url>/keys/<name>/<version>``;
    hc_vault: ``<address>/v1/<engine_path>/keys/<key_name>`` (the forms sops's
    flags take).
    """
    if type_id == "azure_kv":
        base = str(entry.get("vault_url", "")).rstrip("/")
        parts = [base, "keys", str(entry.get("name", ""))]
        if entry.get("version"):
            parts.append(str(entry["version"]))
        return "/".join(parts)
    if type_id == "hc_vault":
        address = str(entry.get("vault_address", "")).rstrip("/")
        return f"{address}/v1/{str(entry.get('engine_path', '')).strip('/')}/keys/{entry.get('key_name', '')}"
    for name in _IDENT_FIELDS.get(type_id, ()):
        value = entry.get(name)
        if isinstance(value, str):
            return value.replace(" ", "").upper() if type_id == "pgp" else value.strip()
    fields = sorted((k, str(v)) for k, v in entry.items() if k not in ("enc", "created_at"))
    return ",".join(f"{k}={v}" for k, v in fields)


def parse_recipient_ref(text: str) -> RecipientRef:
    """A policy recipient: ``age1…``/``ssh-…`` (age) or ``<type>:<identity>``.

    Bare ARNs (``arn:aws:kms:…``), GCP resource ids (``projects/…``) and 40-hex PGP
    fingerprints are recognised without a prefix.  ValueError when it is neither.
    """
    item = text.strip()
    if not item:
        raise ValueError("empty recipient")
    if item.startswith(("age1", "ssh-", "AGE-PLUGIN-")):
        return RecipientRef("age", item, text)
    if item.startswith("arn:aws"):
        return RecipientRef("kms", item.split("+", 1)[0], text)
    if item.startswith("projects/"):
        return RecipientRef("gcp_kms", item, text)
    if re.fullmatch(r"[0-9A-Fa-f ]{16,}", item) and len(item.replace(" ", "")) in (16, 40, 64):
        return RecipientRef("pgp", item.replace(" ", "").upper(), text)
    prefix, sep, rest = item.partition(":")
    type_id = _TYPE_ALIASES.get(prefix, prefix)
    if sep and type_id in _KNOWN_TYPES and rest.strip():
        rest = rest.strip()
        if type_id == "pgp":
            rest = rest.replace(" ", "").upper()
        elif type_id == "kms":
            rest = rest.split("+", 1)[0]
        elif type_id in ("azure_kv", "hc_vault"):
            rest = rest.rstrip("/")
        return RecipientRef(type_id, rest, text)
    raise ValueError(
        "a recipient is an age key (age1…), or <type>:<identity> with type one of " + ", ".join(_KNOWN_TYPES)
    )


def _check_age(ref: RecipientRef) -> None:
    """An age reference must be a valid age or SSH public key (checked offline by the age provider)."""
    if ref.type_id != "age":
        return
    from . import providers

    provider = providers.get("age")
    if provider is None:
        return
    try:
        provider.parse_recipients(ref.ident)
    except SopsError as error:
        raise ValueError(error.message) from None


def _ref_matches(ref: RecipientRef, type_id: str, entry: Mapping[str, Any]) -> bool:
    if ref.type_id != type_id:
        return False
    ident = entry_ident(type_id, entry)
    if type_id == "pgp":  # a short key id names the fingerprint it ends with
        return ident == ref.ident or ident.endswith(ref.ident)
    return ident == ref.ident


# --------------------------------------------------------------------------- loading


def parse_age(text: str) -> timedelta:
    """``90d``, ``12w``, ``36h``, ``1y`` (365 days), or sums such as ``1w2d``; ValueError otherwise."""
    if not _AGE_TEXT.match(text):
        raise ValueError("expected a duration such as 90d, 12w, 36h or 1y")
    seconds = sum(int(n) * _AGE_UNITS[unit] for n, unit in _AGE_PART.findall(text))
    if seconds <= 0:
        raise ValueError("the duration must be longer than zero")
    return timedelta(seconds=seconds)


def load_policy(path: Path | str, *, strict: bool | None = None) -> Policy:
    """Load a config file and validate its ``policy:`` section (see :func:`validate`).

    ``strict`` (default: the file is a ``.sops-policy.yaml``) also refuses unknown
    keys outside the policy section, in the top level, creation rules and key
    groups.  A ``.sops.yaml`` is read as sops reads it: only its policy is checked.
    """
    path = Path(path)
    config = config_mod.load_config(path)
    if strict is None:
        strict = path.name == config_mod.CONFIG_NAMES[0]
    return validate(config, strict=strict)


def validate(config: config_mod.Config, *, strict: bool = True) -> Policy:
    """The :class:`Policy` of a loaded config; ConfigError (file:line) when it is malformed."""
    from . import pyyaml

    yaml = pyyaml.load()
    checker = _Validator(config.path, yaml)
    root_node = checker.compose()
    top = checker.entries(root_node) if root_node is not None else {}
    if strict:
        checker.known(top, _TOP_KEYS, "top level")
        checker.creation_rules(top.get("creation_rules"))
        stores = top.get("stores")
        if stores is not None and isinstance(stores[1], yaml.MappingNode):
            checker.known(checker.entries(stores[1]), _STORE_NAMES, "stores")
        for spec in config.creation_rules or ():
            if spec.path_regex is not None:
                try:
                    re.compile(spec.path_regex, re.ASCII)
                except re.error as exc:
                    raise ConfigError(
                        f"{config.path}:{spec.line}: creation_rules[{spec.index}]: invalid path_regex: {exc}"
                    ) from None
    values: dict[str, Any] = {}
    section = top.get("policy")
    if section is not None and not checker.is_null(section[1]):
        values = checker.policy(section[1])
    return Policy(config=config, root=Path(os.path.abspath(config.path)).parent, **values)


class _Validator:
    """Walks the composed nodes of a config file for messages with lines."""

    def __init__(self, path: Path, yaml: Any) -> None:
        self.path = path
        self.yaml = yaml

    def compose(self) -> Any:
        loader = self.yaml.CSafeLoader(self.path.read_bytes())
        try:
            return loader.get_node() if loader.check_node() else None
        finally:
            loader.dispose()

    def fail(self, node: Any, what: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.start_mark.line + 1}: {what}")

    def is_null(self, node: Any) -> bool:
        return isinstance(node, self.yaml.ScalarNode) and node.tag == _TAG + "null"

    def entries(self, node: Any) -> dict[str, tuple[Any, Any]]:
        if not isinstance(node, self.yaml.MappingNode):
            return {}
        return {k.value: (k, v) for k, v in node.value if isinstance(k, self.yaml.ScalarNode)}

    def known(self, entries: Mapping[str, tuple[Any, Any]], names: Sequence[str], where: str) -> None:
        for name, (key, _) in entries.items():
            if name in names or name == "<<":
                continue
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            raise self.fail(key, f"{where}: unknown key {name!r}{hint}")

    def creation_rules(self, item: tuple[Any, Any] | None) -> None:
        if item is None or not isinstance(item[1], self.yaml.SequenceNode):
            return
        for index, rule in enumerate(item[1].value):
            rule_entries = self.entries(rule)
            self.known(rule_entries, _RULE_KEYS, f"creation_rules[{index}]")
            groups = rule_entries.get("key_groups")
            if groups is not None and isinstance(groups[1], self.yaml.SequenceNode):
                for number, group in enumerate(groups[1].value):
                    self.group(group, f"creation_rules[{index}].key_groups[{number}]")

    def group(self, node: Any, where: str) -> None:
        entries = self.entries(node)
        self.known(entries, _GROUP_KEYS, where)
        merge = entries.get("merge")
        if merge is not None and isinstance(merge[1], self.yaml.SequenceNode):
            for number, item in enumerate(merge[1].value):
                self.group(item, f"{where}.merge[{number}]")

    # ----------------------------------------------------------------- policy section

    def policy(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, self.yaml.MappingNode):
            raise self.fail(node, "policy: expected a mapping")
        entries = self.entries(node)
        self.known(entries, POLICY_KEYS, "policy")
        out: dict[str, Any] = {}
        for name, (_, value) in entries.items():
            if self.is_null(value):
                continue
            where = f"policy.{name}"
            if name in ("must_encrypt", "exclude"):
                globs = self.strings(value, where)
                compiled = []
                for text, line in globs:
                    try:
                        compiled.append(compile_glob(text))
                    except (ValueError, re.error) as exc:
                        raise ConfigError(f"{self.path}:{line}: {where}: invalid glob {text!r}: {exc}") from None
                out[name] = tuple(text for text, _ in globs)
                out["_must" if name == "must_encrypt" else "_exclude"] = tuple(compiled)
            elif name == "never_plaintext":
                patterns = []
                for text, line in self.strings(value, where):
                    try:
                        patterns.append(re.compile(text))
                    except re.error as exc:
                        raise ConfigError(f"{self.path}:{line}: {where}: invalid regex: {exc}") from None
                out[name] = tuple(patterns)
            elif name in ("required_recipients", "forbidden_recipients"):
                refs = []
                for text, line in self.strings(value, where, split_commas=True):
                    try:
                        ref = parse_recipient_ref(text)
                        _check_age(ref)
                    except ValueError as exc:
                        raise ConfigError(f"{self.path}:{line}: {where}: {text!r}: {exc}") from None
                    refs.append(ref)
                out[name] = tuple(refs)
            elif name == "max_data_key_age":
                if not isinstance(value, self.yaml.ScalarNode) or value.tag not in (_TAG + "str", _TAG + "int"):
                    raise self.fail(value, f"{where}: expected a duration such as 90d")
                if value.tag == _TAG + "int":
                    raise self.fail(value, f"{where}: give a unit, e.g. {value.value}d")
                try:
                    out[name] = parse_age(value.value)
                except ValueError as exc:
                    raise self.fail(value, f"{where}: {exc}") from None
            elif name == "audit_log":
                if not isinstance(value, self.yaml.ScalarNode) or value.tag != _TAG + "str":
                    raise self.fail(value, f"{where}: expected a file path")
                # only checked here: audit.py reads the path itself when a decrypt happens
            elif name == "recipients_match_rules":
                if not isinstance(value, self.yaml.ScalarNode) or value.tag != _TAG + "bool":
                    raise self.fail(value, f"{where}: expected true or false")
                out[name] = value.value.lower() in ("true", "yes", "on", "y")
        if "required_recipients" in out and "forbidden_recipients" in out:
            both = {str(r) for r in out["required_recipients"]} & {str(r) for r in out["forbidden_recipients"]}
            if both:
                raise self.fail(node, f"policy: {min(both)} is both required and forbidden")
        return out

    def strings(self, node: Any, where: str, *, split_commas: bool = False) -> list[tuple[str, int]]:
        """A string or a list of strings, with their lines."""
        items = node.value if isinstance(node, self.yaml.SequenceNode) else [node]
        if isinstance(node, self.yaml.MappingNode):
            raise self.fail(node, f"{where}: expected a string or a list of strings, found a mapping")
        out: list[tuple[str, int]] = []
        for item in items:
            if not isinstance(item, self.yaml.ScalarNode) or item.tag != _TAG + "str":
                raise self.fail(item, f"{where}: expected a string (quote patterns that start with * or [)")
            parts = item.value.split(",") if split_commas else [item.value]
            for part in parts:
                if not part.strip():
                    raise self.fail(item, f"{where}: empty entry")
                out.append((part.strip(), item.start_mark.line + 1))
        return out


# --------------------------------------------------------------------------- data key age

_ENC_VALUE = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]")
_TIMESTAMP = re.compile(
    r"(?:lastmodified|created_at)[\"']?\s*[:=]\s*[\"']?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
)
_DOTENV_TIMESTAMP = re.compile(
    r"(?m)^sops_(?:\S*_)?(?:lastmodified|created_at)=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
)

#: (commit time, file bytes) of a file's earlier revisions, newest first
Revisions = Iterable[tuple[datetime, bytes]]


def _parse_time(text: Any) -> datetime | None:
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _text_bounds(data: bytes) -> tuple[set[str], datetime | None]:
    """The ENC values of a revision and its oldest lastmodified/created_at, by a regex scan.

    Timestamps are read from the metadata only (the last ``sops`` block, or the
    ``sops_`` lines of a dotenv file), so a plaintext ``created_at`` key in the
    data cannot pass for one.
    """
    text = data.decode("utf-8", "replace")
    start = max(text.rfind("\nsops:"), text.rfind('"sops":'), text.rfind("\n[sops]"))
    if start >= 0:
        found = _TIMESTAMP.findall(text, start)
    else:
        found = _DOTENV_TIMESTAMP.findall(text)
    times = [t for t in (_parse_time(m) for m in found) if t is not None]
    return set(_ENC_VALUE.findall(text)), min(times) if times else None


def _wrapped_keys(data: bytes, fmt: str) -> set[str]:
    from . import api

    try:
        meta = api.read_metadata(api.parse(data, fmt, encrypted=True))
    except (SopsError, ValueError, RecursionError):
        return set()
    return {str(entry.get("enc")) for _, entry in meta.recipients() if entry.get("enc")}


def data_key_birth(data: bytes, fmt: str, meta: Any, revisions: Revisions | None = None) -> tuple[datetime, str]:
    """The latest time the file's data key is known to have existed, and how it is known.

    See the module docstring: the smallest of ``lastmodified``, the entries'
    ``created_at`` and, through ``revisions``, the commit times and timestamps of
    the earlier revisions that still share the data key.
    """
    candidates: list[tuple[datetime, str]] = []
    stamp = _parse_time(meta.lastmodified)
    if stamp is not None:
        candidates.append((stamp, "lastmodified"))
    for _, entry in meta.recipients():
        created = _parse_time(entry.get("created_at"))
        if created is not None:
            candidates.append((created, "created_at"))
    if revisions is not None:
        previous_values = _text_bounds(data)[0]
        previous_keys: set[str] | None = None
        previous_data, previous_fmt = data, fmt
        for commit_time, blob in revisions:
            if blob is previous_data or blob == previous_data:  # an unchanged revision: nothing to scan
                candidates.append((commit_time, "git history"))
                continue
            values, oldest = _text_bounds(blob)
            shared = bool(values & previous_values)
            if not shared:
                if previous_keys is None:
                    previous_keys = _wrapped_keys(previous_data, previous_fmt)
                keys = _wrapped_keys(blob, fmt)
                shared = bool(keys & previous_keys)
                previous_keys = keys
            else:
                previous_keys = None
            if not shared:
                break
            candidates.append((commit_time, "git history"))
            if oldest is not None:
                candidates.append((oldest, "git history"))
            previous_values, previous_data = values, blob
    if not candidates:
        return datetime.now(timezone.utc), "unknown"
    return min(candidates, key=lambda item: item[0])


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{delta.total_seconds() / 3600:.0f} hours"


# --------------------------------------------------------------------------- checks

#: how files encrypted by other tools begin: (marker, tool name)
_FOREIGN: tuple[tuple[bytes, str], ...] = (
    (b"\x00GITCRYPT\x00", "git-crypt"),
    (b"$ANSIBLE_VAULT;", "ansible-vault"),
    (b"Salted__", "openssl enc (transcrypt)"),
    (b"U2FsdGVkX1", "openssl enc, base64 (transcrypt)"),
    (b"age-encryption.org/v1", "age"),
    (b"-----BEGIN AGE ENCRYPTED FILE-----", "age"),
    (b"-----BEGIN PGP MESSAGE-----", "PGP"),
)


def foreign_tool(data: bytes) -> str | None:
    """The tool that encrypted ``data`` when it is not sops (by its header), or None."""
    head = data[:64].lstrip()
    for marker, tool in _FOREIGN:
        if head.startswith(marker):
            return tool
    return None


def check_document(
    policy: Policy,
    display: str,
    data: bytes,
    *,
    file_path: Path | str | None = None,
    revisions: Callable[[], Revisions | None] | None = None,
    now: datetime | None = None,
    skip: frozenset[str] = frozenset(),
    explicit: bool = False,
) -> list[Violation]:
    """Every rule of ``policy`` applied to one file, from its bytes; metadata only, no keys.

    ``display`` names the file in messages; ``file_path`` (default ``display``)
    places it under the policy root for globs and creation rules.  ``revisions``
    is called only when ``max_data_key_age`` needs history.  ``explicit`` files
    (named on the command line) are examined whatever their format.
    """
    from . import api
    from .stores import format_for

    path = file_path if file_path is not None else display
    relative = policy.relative(path) or PurePosixPath(Path(os.fspath(path))).as_posix()
    fmt = format_for(os.fspath(path))
    must = policy.must_be_encrypted(relative)
    out: list[Violation] = []

    def add(rule: str, message: str, fix: str) -> None:
        if rule not in skip:
            out.append(Violation(display, rule, message, fix))

    tool = foreign_tool(data)
    if tool is not None:
        if must is not None:
            add("must_encrypt", f"encrypted by {tool}, not sops (selected by {must!r})",
                f"decrypt it with {tool} and encrypt it with: gitcrypt-sops encrypt -i {display}")
        return out
    if fmt == "binary" and must is None and not explicit:
        return out
    try:
        parsed = api.parse(data, fmt, encrypted=True)
    except (SopsError, ValueError, RecursionError) as error:
        reason = error.message if isinstance(error, SopsError) else f"cannot be read as {fmt}"
        if must is not None:
            add("must_encrypt", f"not a sops file: {reason} (selected by {must!r})",
                f"encrypt it: gitcrypt-sops encrypt -i {display}")
        elif _looks_like_sops(data):
            add("metadata", f"a damaged sops file: {reason}", "restore it from git history")
        elif policy.never_plaintext and fmt in ("yaml", "json"):
            # not a document sops can hold (e.g. a top-level list): still no plaintext secrets in it
            for where in _plaintext_keys(policy, _generic_documents(data, fmt), encrypted=False):
                add("never_plaintext", f"{where} holds a plaintext value",
                    "move the value to an encrypted file")
        return out

    if not parsed.has_metadata:
        if must is not None:
            add("must_encrypt", f"not encrypted (selected by {must!r})", f"encrypt it: gitcrypt-sops encrypt -i {display}")
        if policy.never_plaintext and fmt != "binary":
            for where in _plaintext_keys(policy, parsed.documents, encrypted=False):
                add("never_plaintext", f"{where} holds a plaintext value",
                    f"encrypt the file (gitcrypt-sops encrypt -i {display}) or move the value to an encrypted file")
        return out

    try:
        meta = api.read_metadata(parsed)
    except SopsError as error:
        add("metadata", f"unreadable sops metadata: {error.message}", "restore the file from git history")
        return out

    if policy.never_plaintext:
        for where in _plaintext_keys(policy, parsed.documents, encrypted=True):
            add("never_plaintext", f"{where} is stored in plaintext",
                f"make the encryption rule cover it and re-encrypt (decrypt, then gitcrypt-sops encrypt -i {display})")

    entries = meta.recipients()
    for ref in policy.required_recipients:
        if not any(_ref_matches(ref, type_id, entry) for type_id, entry in entries):
            add("required_recipients", f"{ref} is not a recipient",
                f"add it to the creation rule and run: gitcrypt-sops updatekeys {display}")
    for ref in policy.forbidden_recipients:
        if any(_ref_matches(ref, type_id, entry) for type_id, entry in entries):
            add("forbidden_recipients", f"{ref} is a recipient",
                f"remove it from the creation rule, then run: gitcrypt-sops updatekeys {display} "
                f"and gitcrypt-sops rotate -i {display}")

    if policy.recipients_match_rules and "recipients_match_rules" not in skip:
        problem = _rule_mismatch(policy, path, meta)
        if problem is not None:
            add("recipients_match_rules", problem, f"run: gitcrypt-sops updatekeys {display}")

    if policy.max_data_key_age is not None and "max_data_key_age" not in skip:
        history = revisions() if revisions is not None else None
        birth, source = data_key_birth(data, fmt, meta, history)
        age = (now or datetime.now(timezone.utc)) - birth
        if age > policy.max_data_key_age:
            add("max_data_key_age",
                f"the data key is at least {_days(age)} old (known from {source}; limit {_days(policy.max_data_key_age)})",
                f"rotate it: gitcrypt-sops rotate -i {display}")
    return out


def _looks_like_sops(data: bytes) -> bool:
    return b"ENC[AES256_GCM," in data and b"lastmodified" in data and b"sops" in data


def _generic_documents(data: bytes, fmt: str) -> list[Any]:
    """Any YAML/JSON content, for files the stores refuse; [] when it does not parse at all."""
    try:
        if fmt == "json":
            import json

            return [json.loads(data)]
        from . import pyyaml

        yaml = pyyaml.load()
        return list(yaml.load_all(data, Loader=yaml.CSafeLoader))
    except Exception:  # noqa: BLE001 - not parseable: not the policy's business
        return []


def _plaintext_keys(policy: Policy, documents: list[Any], *, encrypted: bool) -> Iterator[str]:
    """Paths of keys matching ``never_plaintext`` under which a non-empty value is plaintext."""
    from .codec import is_enc
    from .tree import Comment

    def leaks(value: Any) -> bool:
        cls = value.__class__
        if cls is dict:
            return any(leaks(v) for k, v in value.items() if k.__class__ is not Comment)
        if cls is list:
            return any(leaks(v) for v in value if v.__class__ is not Comment)
        if value is None or value == "" or value.__class__ is Comment:
            return False
        return not (encrypted and is_enc(value))

    def walk(node: Any, trail: list[str | int]) -> Iterator[str]:
        cls = node.__class__
        if cls is dict:
            for key, value in node.items():
                if key.__class__ is Comment:
                    continue
                step = trail + [key]
                if key.__class__ is str and policy.sensitive(key) and leaks(value):
                    yield _path_text(step)
                    continue
                yield from walk(value, step)
        elif cls is list:
            for index, value in enumerate(v for v in node if v.__class__ is not Comment):
                yield from walk(value, trail + [index])

    for number, document in enumerate(documents):
        for where in walk(document, []):
            yield where if len(documents) == 1 else f"document {number + 1} {where}"


def _path_text(steps: Sequence[str | int]) -> str:
    import json

    return "".join(f"[{json.dumps(step, ensure_ascii=False)}]" for step in steps)


def _rule_mismatch(policy: Policy, path: Path | str, meta: Any) -> str | None:
    """Why the file's recipients differ from its creation rule's, or None when they match."""
    from . import providers

    if policy.config.creation_rules is None:
        return None
    try:
        rule = policy.creation_rule(path)
    except ConfigError as error:
        return f"cannot resolve the creation rule: {error.message}"
    except SopsError:
        return "no creation rule matches this file"
    if rule is None:
        return None

    def ident(type_id: str, entry: Mapping[str, Any]) -> tuple[str, str]:
        provider = providers.get(type_id)
        if provider is not None:
            try:
                recipient = provider.recipient_of(entry)
            except Exception:  # noqa: BLE001 - a malformed entry falls back to the keyless identity
                return (type_id, entry_ident(type_id, entry))
            return (recipient.type_id, recipient.ident)
        return (type_id, entry_ident(type_id, entry))

    wanted = sorted(sorted({(r.type_id, r.ident) for r in group}) for group in rule.key_groups if group)
    found = sorted(sorted({ident(t, e) for t, e in group}) for group in meta.key_groups if group)
    if wanted == found:
        return None
    want_all = {item for group in wanted for item in group}
    have_all = {item for group in found for item in group}
    missing = sorted(want_all - have_all)
    extra = sorted(have_all - want_all)
    parts = []
    if missing:
        parts.append("missing " + ", ".join(_show(t, i) for t, i in missing))
    if extra:
        parts.append("not in the rule " + ", ".join(_show(t, i) for t, i in extra))
    if not parts:
        parts.append(f"key groups differ ({len(found)} in the file, {len(wanted)} in the rule)")
    return f"recipients differ from creation_rules[{rule.index}]: " + "; ".join(parts)


def _show(type_id: str, ident: str) -> str:
    return ident if type_id == "age" else f"{type_id}:{ident}"
