"""An encryption-aware secret scanner for a working tree and its git history.

Owns which files and blobs are scanned, how sops files are made safe to scan, and
the report.  Detection is the maintained `detect-secrets` library (extra ``scan``):
its plugins, filters, transformers and ``pragma: allowlist secret`` comments, as
``detect-secrets scan`` applies them, plus one rule it lacks (age identities).
Policy rules come from :mod:`gitcrypt_sops.policy` (``must_encrypt`` globs and
``never_plaintext`` key patterns).

What makes it encryption-aware:

* ``ENC[AES256_GCM,...]`` values (and ``#ENC[...]`` comments) are blanked before
  detection, so ciphertext is never a finding;
* in a file that carries sops metadata, anything found inside the metadata (age
  armor, wrapped keys, MAC, recipients) is dropped;
* a secret found in such a file is reported as an ``unencrypted-value``: a value the
  encryption rule (suffix, regex) left in plaintext;
* files selected by ``must_encrypt`` that are not sops files are reported.

Findings: ``secret`` (plaintext secret in a plaintext file), ``unencrypted-value``,
``must-encrypt``, ``never-plaintext``; each names the file, the line and key path
where known, and the commit for history findings.  Nothing reported ever holds a
value: a finding carries the SHA-1 of the secret (as detect-secrets baselines do)
so a baseline can list accepted findings.  No network is used (detect-secrets'
verification is switched off).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from .errors import InputError, NoFileSpecified, SopsError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_BASELINE",
    "Finding",
    "Report",
    "ScanOptions",
    "run_scan",
    "scan_text",
    "write_baseline",
]

#: looked for at the scan root when --baseline is not given
DEFAULT_BASELINE = ".gitcrypt-sops-scan.json"

KINDS = ("secret", "unencrypted-value", "must-encrypt", "never-plaintext")

_ENC = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]*,tag:[A-Za-z0-9+/=]*,type:[a-z]*\]")
#: age identities: detect-secrets has no rule for them
_EXTRA_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Age Secret Key", re.compile(r"AGE-SECRET-KEY-1[02-9ac-hj-np-zAC-HJ-NP-Z]{58}")),
    ("Age Plugin Identity", re.compile(r"AGE-PLUGIN-[A-Z0-9]+-1[02-9AC-HJ-NP-Z]{20,}")),
)
#: public age recipients look random but are not secrets
_AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")
_STRUCTURED = ("yaml", "json", "dotenv", "ini")
_BINARY_SNIFF = 8000
_PARALLEL_BYTES = 1 << 20


# -- model ------------------------------------------------------------------------------------


class Finding:
    """One thing to fix; never holds the secret itself."""

    __slots__ = ("commit", "detector", "file", "hashed_secret", "key_path", "kind", "line", "message")

    def __init__(self, kind: str, file: str, *, line: int | None = None, key_path: str | None = None,
                 commit: str | None = None, detector: str | None = None, hashed_secret: str | None = None,
                 message: str = "") -> None:
        self.kind = kind
        self.file = file
        self.line = line
        self.key_path = key_path
        self.commit = commit
        self.detector = detector
        self.hashed_secret = hashed_secret
        self.message = message

    def fingerprint(self) -> tuple[str, str, str, str]:
        """What a baseline matches on: independent of line numbers and commits."""
        return (self.kind, self.file, self.detector or "", self.hashed_secret or "")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}

    def as_text(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.commit:
            where += f" (commit {self.commit[:12]})"
        what = self.detector or ""
        if self.key_path:
            what += f" at {self.key_path}"
        detail = "; ".join(part for part in (what, self.message) if part)
        return f"{where}: {self.kind}: {detail}"


class ScanOptions:
    __slots__ = ("baseline", "config", "history", "jobs", "max_size", "paths", "policy")

    def __init__(self, paths: Sequence[str] = (".",), *, history: bool = False, baseline: str | None = None,
                 config: str | None = None, policy: bool = True, max_size: int = 4 * 1024 * 1024,
                 jobs: int = 0) -> None:
        self.paths = list(paths) or ["."]
        self.history = history
        self.baseline = baseline
        self.config = config
        self.policy = policy
        self.max_size = max_size
        self.jobs = jobs


class Report:
    """Findings after the baseline, with what was scanned."""

    def __init__(self, root: str, all_findings: list[Finding], baseline: set[tuple[str, str, str, str]],
                 baseline_path: str | None, stats: dict[str, Any]) -> None:
        self.root = root
        self.all_findings = all_findings
        self.findings = [f for f in all_findings if not _baselined(f, baseline)]
        self.baseline_path = baseline_path
        self.stats = stats

    @property
    def baselined(self) -> int:
        return len(self.all_findings) - len(self.findings)

    def summary(self) -> str:
        stats = self.stats
        text = (f"{len(self.findings)} finding(s)" + (f", {self.baselined} in the baseline" if self.baselined else "")
                + f"; scanned {stats['files']} file(s), {stats['bytes'] / 1e6:.2f} MB")
        if stats.get("commits") is not None:
            text += f", {stats['commits']} commit(s), {stats['blobs']} blob(s), {stats['blob_bytes'] / 1e6:.2f} MB"
        return text + f" in {stats['seconds']:.2f} s"

    def to_text(self) -> str:
        return "".join(finding.as_text() + "\n" for finding in self.findings)

    def to_json(self) -> str:
        import json

        document = {
            "root": self.root,
            "findings": [finding.as_dict() for finding in self.findings],
            "baselined": self.baselined,
            "stats": self.stats,
        }
        return json.dumps(document, indent=2) + "\n"


def _baselined(finding: Finding, baseline: set[tuple[str, str, str, str]]) -> bool:
    kind, file, detector, hashed = finding.fingerprint()
    return (kind, file, detector, hashed) in baseline or ("*", file, detector, hashed) in baseline


# -- detection (one text) ---------------------------------------------------------------------


class _NamedText(io.StringIO):
    """What detect-secrets' transformers read: a text file object with a name."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


_configured = False


def _detect_secrets_ready() -> None:
    """Enable every detect-secrets plugin and its default filters once per process, offline."""
    global _configured
    if _configured:
        return
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.settings import cache_bust, get_settings
    except ImportError:
        raise SopsError("secret scanning needs detect-secrets",
                        hint="pip install 'gitcrypt-sops[scan]'") from None
    cache_bust()
    settings = get_settings()  # what detect_secrets.settings.default_settings() sets up
    settings.configure_plugins([{"name": plugin.__name__}
                                for plugin in get_mapping_from_secret_type_to_class().values()])
    # history blobs are not files on disk, and nothing may reach the network
    settings.disable_filters("detect_secrets.filters.common.is_invalid_file",
                             "detect_secrets.filters.common.is_ignored_due_to_verification_policies")
    _configured = True


class _Engine:
    """detect-secrets' per-line loop (``core.scan._process_line_based_plugins``) without its
    per-call dependency injection, which costs ~80% of its run time.

    The semantics are the library's: the same plugins and filters, each filter run at
    the same stages with the arguments it asks for, and skipped at a stage that lacks
    one of its required arguments (the library gets a TypeError there and skips it).
    ``tests/test_scan.py`` checks the results equal the library's own loop.
    """

    def __init__(self) -> None:
        import inspect

        from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
        from detect_secrets.settings import get_filters, get_plugins
        from detect_secrets.util.code_snippet import get_code_snippet

        self.snippet = get_code_snippet
        given = ("filename", "line", "line_number", "context")
        self.plugins: list[tuple[Any, tuple[str, ...]]] = []
        self.gated: list[tuple[Any, tuple[str, ...]]] = []
        patterns: list[re.Pattern[str]] = []
        self.cheap_gates: dict[int, Callable[[str], bool]] = {}
        for plugin in get_plugins():
            names = inspect.signature(plugin.analyze_line).parameters
            entry = (plugin, tuple(name for name in given if name in names))
            cls = type(plugin)
            if (isinstance(plugin, RegexBasedDetector) and cls.analyze_string is RegexBasedDetector.analyze_string
                    and cls.analyze_line is BasePlugin.analyze_line):
                self.gated.append(entry)
                patterns.extend(plugin.denylist)
                continue
            gate = _necessary_condition(plugin)
            if gate is not None:
                self.cheap_gates[id(plugin)] = gate
            self.plugins.append(entry)
        # A plain regex plugin finds something on a line only if one of its patterns
        # matches there, and a pattern only where its required literal text occurs.
        self.gates = _pattern_gates(patterns)

        filters = get_filters()

        def stage(required: str, available: set[str]) -> list[tuple[Any, tuple[str, ...]]]:
            chosen = []
            for function in filters:
                names = set(function.injectable_variables)
                if required not in names:
                    continue
                params = inspect.signature(function).parameters.values()
                needed = {p.name for p in params if p.default is inspect.Parameter.empty
                          and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
                if needed <= available:
                    chosen.append((function, tuple(sorted(names & available))))
            return chosen

        self.file_filters = stage("filename", {"filename"})
        self.line_filters = stage("line", {"filename", "line", "context"})
        self.secret_filters = stage("secret", {"filename", "secret", "plugin", "line"})
        self.context_filters = stage("context", {"filename", "secret", "plugin", "line", "context"})

    @staticmethod
    def _hit(chosen: list[tuple[Any, tuple[str, ...]]], values: dict[str, Any]) -> bool:
        for function, names in chosen:
            try:
                if function(**{name: values[name] for name in names}):
                    return True
            except TypeError:  # as the library does: an incompatible filter is skipped
                continue
        return False

    def file_excluded(self, filename: str) -> bool:
        return self._hit(self.file_filters, {"filename": filename})

    def lines(self, numbered: list[tuple[int, str]], filename: str) -> list[Any]:
        content = [line for _, line in numbered]
        found = []
        gates = self.gates
        cheap = self.cheap_gates
        for number, raw in numbered:
            line = raw.rstrip()
            plugins = [entry for entry in self.plugins
                       if (gate := cheap.get(id(entry[0]))) is None or gate(line)]
            if self.gated and _any_gate(gates, line):
                plugins += self.gated
            if not plugins:
                continue  # no plugin can find anything on this line
            context = self.snippet(lines=content, line_number=number)
            call = {"filename": filename, "line": line, "line_number": number, "context": context}
            hits: list[tuple[Any, Any]] = []
            for plugin, names in plugins:
                secrets = plugin.analyze_line(**{name: call[name] for name in names})
                if secrets:
                    hits.extend((plugin, secret) for secret in secrets)
            # line filters are pure functions of the line: the library runs them first,
            # running them only for lines with candidates gives the same result
            if not hits or self._hit(self.line_filters, {"filename": filename, "line": line, "context": context}):
                continue
            for plugin, secret in hits:
                values = {"filename": secret.filename, "secret": secret.secret_value, "plugin": plugin,
                          "line": line, "context": context}
                if self._hit(self.secret_filters, values) or self._hit(self.context_filters, values):
                    continue
                found.append(secret)
        return found


def _necessary_condition(plugin: Any) -> Callable[[str], bool] | None:
    """A cheap test a line must pass for ``plugin`` to find anything in it, when one is known.

    Each is checked against the plugin's own patterns here; a plugin that does not
    fit (another version, a subclass) simply runs on every line.
    """
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.jwt import JwtTokenDetector

    cls = type(plugin)
    if cls is keyword.KeywordDetector:
        tables = [*keyword.REGEX_BY_FILETYPE.values(), keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP]
        if all(keyword.DENYLIST_REGEX in regex.pattern for table in tables for regex in table):
            words = re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE)
            return lambda line: words.search(line) is not None
    elif (isinstance(plugin, HighEntropyStringsPlugin)
          and cls.analyze_string is HighEntropyStringsPlugin.analyze_string
          and plugin.regex.pattern.startswith("([\\'\"])")):
        return lambda line: '"' in line or "'" in line  # only quoted strings are candidates
    elif cls is JwtTokenDetector and all(regex.pattern.startswith("eyJ") for regex in plugin.denylist):
        return lambda line: "eyJ" in line
    return None


class _Gates:
    """Cheap necessary conditions for a set of patterns: literal texts (one alternation
    of them, exact or on the case-folded line), else the pattern itself, behind a
    character it needs when it has one."""

    def __init__(self, exact: list[str], folded: list[str],
                 regexes: list[tuple[frozenset[str], re.Pattern[str]]]) -> None:
        def alternation(texts: list[str]) -> re.Pattern[str] | None:
            ordered = sorted(set(texts), key=lambda text: (-len(text), text))
            return re.compile("|".join(re.escape(text) for text in ordered)) if ordered else None

        self.exact = alternation(exact)
        self.folded = alternation(folded)
        self.regexes = tuple(regexes)


def _parser_module() -> Any:
    try:
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # Python 3.10
        import sre_parse as parser
    return parser


def _required_texts(items: list[Any], parser: Any, shortest: int = 2) -> frozenset[str] | None:
    """Texts of which every match of the parsed sequence ``items`` contains one, if known.

    Walks consecutive literals, groups without flag changes, alternations whose every
    branch has such texts, and repeats of at least one; keeps the candidate whose
    shortest text is longest (a better filter).
    """
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, value in [*items, (None, None)]:
        if op is parser.LITERAL:
            run.append(chr(value))
            continue
        if len(run) >= shortest:
            candidates.append(frozenset({"".join(run)}))
        run = []
        found: frozenset[str] | None = None
        if op is parser.SUBPATTERN and not value[1] and not value[2]:
            found = _required_texts(list(value[-1]), parser, shortest)
        elif op is parser.BRANCH:
            branches = [_required_texts(list(branch), parser, shortest) for branch in value[1]]
            if all(branches):
                found = frozenset().union(*branches)  # type: ignore[arg-type]
        elif op in (parser.MAX_REPEAT, parser.MIN_REPEAT) and value[0] >= 1:
            found = _required_texts(list(value[2]), parser, shortest)
        if found:
            candidates.append(found)
    if not candidates:
        return None
    return max(candidates, key=lambda texts: (min(len(text) for text in texts), -len(texts)))


def _pattern_gates(patterns: list[re.Pattern[str]]) -> _Gates:
    parser = _parser_module()
    exact: list[str] = []
    folded: list[str] = []
    regexes: list[tuple[frozenset[str], re.Pattern[str]]] = []
    for pattern in patterns:
        try:
            texts = _required_texts(list(parser.parse(pattern.pattern, pattern.flags)), parser)
        except Exception:  # noqa: BLE001 - an unusual pattern simply gets no shortcut
            texts = None
        if not texts:
            chars = None
            with contextlib.suppress(Exception):
                chars = _required_texts(list(parser.parse(pattern.pattern, pattern.flags)), parser, 1)
            if chars and pattern.flags & re.IGNORECASE and any(c.lower() != c.upper() for c in "".join(chars)):
                chars = None  # letters could match in another case
            regexes.append((chars or frozenset(), pattern))
        elif pattern.flags & re.IGNORECASE:
            folded.extend(text.casefold() for text in texts)
        else:
            exact.extend(texts)
    return _Gates(exact, folded, regexes)


def _any_gate(gates: _Gates, line: str) -> bool:
    if gates.exact is not None and gates.exact.search(line):
        return True
    # casefold is at least as permissive as re's simple case folding (e.g. U+017F ~ s)
    if gates.folded is not None and gates.folded.search(line.casefold()):
        return True
    for needed, regex in gates.regexes:
        if needed and not any(text in line for text in needed):
            continue
        if regex.search(line):
            return True
    return False


_engine: _Engine | None = None


def scan_text(name: str, text: str) -> list[tuple[int, str, str]]:
    """``(line, detector, secret)`` for each secret in ``text``, as ``detect-secrets scan`` finds them.

    ``name`` picks the file-type rules (by extension).  Callers blank ciphertext first.
    """
    global _engine
    _detect_secrets_ready()
    from detect_secrets.transformers import get_transformed_file

    if _engine is None:
        _engine = _Engine()
    found: list[tuple[int, str, str]] = []
    if not _engine.file_excluded(name):
        handle = _NamedText(text, name)
        lines = get_transformed_file(handle) or handle.readlines()  # type: ignore[arg-type]
        secrets = _engine.lines(list(enumerate(lines, 1)), name)
        if not secrets:
            handle.seek(0)
            eager = get_transformed_file(handle, use_eager_transformers=True)  # type: ignore[arg-type]
            if eager:
                secrets = _engine.lines(list(enumerate(eager, 1)), name)
        found = [(s.line_number, s.type, s.secret_value) for s in secrets if s.secret_value]
    for number, line in enumerate(text.splitlines(), 1):
        if "AGE-" in line and "pragma: allowlist secret" not in line:
            for detector, pattern in _EXTRA_RULES:
                found.extend((number, detector, match) for match in pattern.findall(line))
    return found


def _hash(secret: str) -> str:
    import hashlib

    return hashlib.sha1(secret.encode("utf-8")).hexdigest()  # matches detect-secrets' hashed_secret


# -- one file or blob -------------------------------------------------------------------------


def _metadata_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _metadata_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _metadata_strings(item, out)
    elif isinstance(value, str):
        out.append(value)


def _sops_parse(data: bytes, fmt: str) -> Any:
    """The parsed file when it carries sops metadata, else None (cheap pre-check first)."""
    if b"sops" not in data or b"mac" not in data:
        return None
    from . import api

    try:
        parsed = api.parse(data, fmt, encrypted=True)
    except (SopsError, ValueError, RecursionError, UnicodeError):
        return None
    return parsed if parsed.has_metadata else None


def _leaves(value: Any, trail: list[str | int]) -> Iterator[tuple[list[str | int], Any]]:
    from .tree import Comment

    if value.__class__ is dict:
        for key, item in value.items():
            if key.__class__ is not Comment:
                yield from _leaves(item, trail + [str(key)])
    elif value.__class__ is list:
        index = 0
        for item in value:
            if item.__class__ is not Comment:
                yield from _leaves(item, trail + [index])
                index += 1
    else:
        yield trail, value


def _path_text(steps: list[str | int]) -> str:
    import json

    return "".join(f"[{step}]" if isinstance(step, int) else f"[{json.dumps(step)}]" for step in steps)


def _key_path(documents: list[dict[Any, Any]], secret: str) -> str | None:
    for document in documents:
        for steps, value in _leaves(document, []):
            if isinstance(value, str) and secret in value and steps:
                return _path_text(steps)
    return None


class _Context:
    """What a worker needs besides the bytes (inherited through fork): the policies,
    :class:`gitcrypt_sops.gitdrivers.scan.Policies` (each file is governed by the
    nearest policy file above it, as for ``check``), or None with ``--no-policy``."""

    policies: Any = None


def _policy_for(abs_path: str) -> Any:
    if _Context.policies is None:
        return None
    pol = _Context.policies.for_file(abs_path)
    return pol if pol is not None and (pol.must_encrypt or pol.never_plaintext) else None


def _policy_findings(display: str, abs_path: str, data: bytes, commit: str | None) -> list[Finding]:
    from . import policy as policy_mod

    pol = _policy_for(abs_path)
    if pol is None:
        return []
    relative = pol.relative(abs_path)
    if relative is None or pol.excluded(relative):
        return []
    if pol.must_be_encrypted(relative) is None and not pol.never_plaintext:
        return []
    skip = frozenset(policy_mod.RULES) - {"must_encrypt", "never_plaintext"}
    out = []
    for violation in policy_mod.check_document(pol, display, data, file_path=abs_path, skip=skip, explicit=False):
        kind = "must-encrypt" if violation.rule == "must_encrypt" else "never-plaintext"
        out.append(Finding(kind, display, commit=commit, message=f"{violation.message} (fix: {violation.fix})"))
    return out


def _policy_selects(abs_path: str) -> bool:
    pol = _policy_for(abs_path)
    if pol is None:
        return False
    relative = pol.relative(abs_path)
    return relative is not None and not pol.excluded(relative) and pol.must_be_encrypted(relative) is not None


def scan_bytes(display: str, data: bytes, *, abs_path: str | None = None, commit: str | None = None,
               max_size: int | None = None) -> list[Finding]:
    """Every finding in one file's (or blob's) bytes."""
    from .stores import format_for

    findings = _policy_findings(display, abs_path or display, data, commit)
    if (max_size is not None and len(data) > max_size) or b"\0" in data[:_BINARY_SNIFF]:
        return findings
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return findings  # matches detect-secrets: files that are not UTF-8 are not scanned
    fmt = format_for(display)
    parsed = _sops_parse(data, fmt)
    metadata = ""
    if parsed is not None:
        strings: list[str] = []
        _metadata_strings(parsed.metadata_tree, strings)
        metadata = "\n".join(strings)
    masked = _ENC.sub("", text) if "ENC[AES256_GCM" in text else text
    hits = []
    for line, detector, secret in scan_text(display, masked):
        if (metadata and secret in metadata) or _AGE_RECIPIENT.fullmatch(secret):
            continue
        hits.append((line, detector, secret))
    if not hits:
        return findings
    documents: list[dict[Any, Any]] | None = None
    if parsed is not None:
        documents = parsed.documents
    elif fmt in _STRUCTURED:
        from . import api

        with contextlib.suppress(SopsError, ValueError, RecursionError):
            documents = api.parse(data, fmt, encrypted=False).documents
    seen: set[tuple[int, str, str]] = set()
    for line, detector, secret in sorted(hits):
        hashed = _hash(secret)
        if (line, detector, hashed) in seen:
            continue
        seen.add((line, detector, hashed))
        key_path = _key_path(documents, secret) if documents else None
        if parsed is not None:
            findings.append(Finding("unencrypted-value", display, line=line, key_path=key_path, commit=commit,
                                    detector=detector, hashed_secret=hashed,
                                    message="plaintext in a sops file (the encryption rule left it unencrypted)"))
        else:
            findings.append(Finding("secret", display, line=line, key_path=key_path, commit=commit,
                                    detector=detector, hashed_secret=hashed))
    return findings


# -- workers ----------------------------------------------------------------------------------

#: a unit of work: (display, absolute path for policy, disk path or None, data or None, commit)
_Item = tuple[str, str, "str | None", "bytes | None", "str | None"]


def _scan_items(items: list[_Item], max_size: int) -> tuple[list[Finding], int, int]:
    findings: list[Finding] = []
    files = total = 0
    for display, abs_path, disk_path, data, commit in items:
        if data is None:
            assert disk_path is not None
            try:
                if os.path.getsize(disk_path) > max_size and not _policy_selects(abs_path):
                    continue  # too large to search; read anyway when the policy must check it
                with open(disk_path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
        files += 1
        total += len(data)
        findings.extend(scan_bytes(display, data, abs_path=abs_path, commit=commit, max_size=max_size))
    return findings, files, total


class _Runner:
    """Runs batches in a process pool (fork: the policy and detect-secrets come along) or inline."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.pool: Any = None

    def __enter__(self) -> _Runner:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    def start(self) -> None:
        """Fork the workers now, before any git process or thread exists to be inherited."""
        if self.pool is not None or self.jobs <= 1:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("fork"))
        self.pool.submit(os.getpid).result()  # the fork context starts every worker on the first task

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, batches: Iterable[list[_Item]], max_size: int, total_hint: int) -> tuple[list[Finding], int, int]:
        findings: list[Finding] = []
        files = size = 0
        if self.jobs <= 1 or total_hint < _PARALLEL_BYTES:
            for batch in batches:
                found, count, nbytes = _scan_items(batch, max_size)
                findings.extend(found)
                files += count
                size += nbytes
            return findings, files, size
        self.start()
        pending = []
        for batch in batches:
            pending.append(self.pool.submit(_scan_items, batch, max_size))
            while len(pending) > self.jobs * 4:
                found, count, nbytes = pending.pop(0).result()
                findings.extend(found)
                files += count
                size += nbytes
        for future in pending:
            found, count, nbytes = future.result()
            findings.extend(found)
            files += count
            size += nbytes
        return findings, files, size


def _batches(pairs: Iterable[tuple[_Item, int]], limit: int = 256 * 1024) -> Iterator[list[_Item]]:
    """Items grouped into batches of about ``limit`` bytes (lazily: history is streamed)."""
    batch: list[_Item] = []
    weight = 0
    for item, size in pairs:
        batch.append(item)
        weight += size + 512
        if weight >= limit:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


# -- git --------------------------------------------------------------------------------------


def _git(args: Sequence[str], cwd: str, *, check: bool = True, input: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=False,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    except FileNotFoundError:
        raise SopsError("git is not installed") from None
    if check and result.returncode != 0:
        first = (result.stderr.decode("utf-8", "replace").strip().splitlines() or ["unknown error"])[0]
        raise InputError(f"git cannot read the repository at {cwd}: {first}")
    return result.stdout if result.returncode == 0 else b""


def _inside_git_dir(path: str) -> bool:
    directory = os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return True
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


def _git_root(directory: str) -> str | None:
    """The work tree root, None outside git; InputError for a repository git cannot read."""
    try:
        result = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True,
                                check=False, env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        return None
    if result.returncode == 0:
        return os.path.abspath(result.stdout.decode().strip())
    if _inside_git_dir(directory):
        first = (result.stderr.decode("utf-8", "replace").strip().splitlines() or ["unknown error"])[0]
        raise InputError(f"git cannot read the repository at {directory}: {first}")
    return None


def _history(root: str) -> tuple[list[tuple[str, str, str]], int]:
    """``(blob, path, commit)`` for every file version in history, first appearance first; commit count."""
    # a merge is compared with its first parent: what it brings in from elsewhere was
    # seen in the commits that made it, except conflict resolutions, which show here
    output = _git(["log", "--all", "--reverse", "--no-renames", "--diff-merges=first-parent", "--raw",
                   "--no-abbrev", "--format=%x01%H", "-z", "--no-color"], root)
    versions: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    commits: set[str] = set()
    commit = ""
    tokens = output.split(b"\0")
    index = 0
    while index < len(tokens):
        token = tokens[index].lstrip(b"\n")
        index += 1
        if token.startswith(b"\x01"):
            commit = token[1:].decode()
            commits.add(commit)
        elif token.startswith(b":"):
            fields = token[1:].split()
            path = tokens[index].decode("utf-8", "surrogateescape") if index < len(tokens) else ""
            index += 1
            if len(fields) < 5 or fields[4][:1] in (b"D",) or fields[1] not in (b"100644", b"100755"):
                continue
            blob = fields[3].decode()
            if (blob, path) not in seen:
                seen.add((blob, path))
                versions.append((blob, path, commit))
    return versions, len(commits)


def _cat_blobs(root: str, blobs: list[str], max_size: int) -> Iterator[tuple[str, bytes | None]]:
    """The content of each blob (None when larger than ``max_size``), streamed from one git process."""
    import threading

    process = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None

    def feed() -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            for blob in blobs:
                process.stdin.write(blob.encode() + b"\n")
            process.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = process.stdout
    try:
        for _ in blobs:
            header = out.readline().split()
            if len(header) < 3 or header[1] != b"blob":
                if len(header) == 2 and header[1] == b"missing":
                    continue
                raise InputError(f"git cannot read the repository at {root}: bad object {header[:1]!r}")
            size = int(header[2])
            if size > max_size:
                remaining = size
                while remaining:
                    remaining -= len(out.read(min(remaining, 1 << 20)))
                data = None
            else:
                data = out.read(size)
            out.read(1)
            yield header[0].decode(), data
    finally:
        process.stdout.close()
        process.kill()
        process.wait()
        writer.join(1)


# -- the scan ---------------------------------------------------------------------------------


def _tree_items(paths: Sequence[str], root: str, in_git: bool, skip: set[str]) -> list[tuple[_Item, int]]:
    items: list[tuple[_Item, int]] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        absolute = os.path.abspath(path)
        if absolute in seen or absolute in skip or os.path.islink(absolute) or not os.path.isfile(absolute):
            return
        seen.add(absolute)
        display = os.path.relpath(absolute, root) if _under(absolute, root) else absolute
        display = display.replace(os.sep, "/")
        try:
            size = os.path.getsize(absolute)
        except OSError:
            return
        items.append(((display, absolute, absolute, None, None), size))

    for path in paths:
        if not os.path.isdir(path):
            add(path)
            continue
        if in_git:
            listing = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                            os.path.relpath(os.path.abspath(path), root)], root)
            for entry in listing.split(b"\0"):
                if entry:
                    add(os.path.join(root, entry.decode("utf-8", "surrogateescape")))
        else:
            for directory, subdirs, files in os.walk(path):
                subdirs[:] = sorted(d for d in subdirs if d != ".git")
                for name in sorted(files):
                    add(os.path.join(directory, name))
    return items


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _policies(options: ScanOptions) -> Any:
    if not options.policy:
        return None
    from .gitdrivers.scan import Policies

    return Policies(options.config)


def load_baseline(path: str) -> set[tuple[str, str, str, str]]:
    """Accepted findings: our baseline, or a detect-secrets ``.secrets.baseline`` (any kind)."""
    import json

    try:
        with open(path, "rb") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise NoFileSpecified(f"baseline {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise InputError(f"baseline {path} cannot be read: {type(error).__name__}") from None
    entries: set[tuple[str, str, str, str]] = set()
    if isinstance(document, dict) and isinstance(document.get("findings"), list):
        for item in document["findings"]:
            if isinstance(item, dict):
                entries.add((str(item.get("kind", "")), str(item.get("file", "")), str(item.get("detector", "")),
                             str(item.get("hashed_secret", ""))))
    elif isinstance(document, dict) and isinstance(document.get("results"), dict):
        for file, results in document["results"].items():
            for item in results if isinstance(results, list) else []:
                if isinstance(item, dict):
                    entries.add(("*", str(file), str(item.get("type", "")), str(item.get("hashed_secret", ""))))
    else:
        raise InputError(f"baseline {path} is not a gitcrypt-sops or detect-secrets baseline")
    return entries


def write_baseline(report: Report, path: str | None = None) -> str:
    """Write every current finding as the accepted baseline; its path."""
    import json

    from .fsio import write_atomic

    target = path or os.path.join(report.root, DEFAULT_BASELINE)
    unique = sorted({f.fingerprint() for f in report.all_findings})
    document = {
        "generated_by": "gitcrypt-sops scan",
        "version": 1,
        "findings": [dict(zip(("kind", "file", "detector", "hashed_secret"), entry)) for entry in unique],
    }
    write_atomic(target, (json.dumps(document, indent=2) + "\n").encode())
    return target


def run_scan(options: ScanOptions) -> Report:
    """Scan the paths (and, with ``history``, every commit of their repository)."""
    started = time.perf_counter()
    for path in options.paths:
        if not os.path.lexists(path):
            raise NoFileSpecified(f"scan path {path!r} does not exist")
    if options.max_size <= 0:
        raise UsageError("--max-size must be positive")
    first = os.path.abspath(options.paths[0])
    start = first if os.path.isdir(first) else os.path.dirname(first)
    git_root = _git_root(start)
    root = git_root or start
    if options.history and git_root is None:
        raise UsageError(f"--git-history needs a git repository; {start} is not in one")

    baseline_path = options.baseline
    if baseline_path is None and os.path.exists(os.path.join(root, DEFAULT_BASELINE)):
        baseline_path = os.path.join(root, DEFAULT_BASELINE)
    # a named baseline that does not exist yet is one --update-baseline is about to write
    baseline = load_baseline(baseline_path) if baseline_path and os.path.exists(baseline_path) else set()
    skip = {os.path.abspath(baseline_path)} if baseline_path else set()

    _Context.policies = _policies(options)
    _detect_secrets_ready()  # before forking: workers inherit the loaded plugins
    scan_text("warm-up.txt", "")

    stats: dict[str, Any] = {"files": 0, "bytes": 0}
    with _Runner(options.jobs) as runner:
        listed = _tree_items(options.paths, root, git_root is not None, skip)
        if options.history or sum(size for _, size in listed) >= _PARALLEL_BYTES:
            runner.start()
        findings, stats["files"], stats["bytes"] = runner.run(_batches(listed), options.max_size,
                                                             sum(size for _, size in listed))
        if options.history:
            assert git_root is not None
            history_findings, history_stats = _scan_history(runner, git_root, options.max_size, skip)
            findings.extend(history_findings)
            stats.update(history_stats)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    findings.sort(key=lambda f: (f.commit is not None, f.file, f.line or 0, f.kind, f.detector or ""))
    return Report(root, findings, baseline, baseline_path, stats)


def _scan_history(runner: _Runner, root: str, max_size: int, skip: set[str]) -> tuple[list[Finding], dict[str, Any]]:
    versions, commit_count = _history(root)
    order = {commit: index for index, commit in enumerate(dict.fromkeys(c for _, _, c in versions))}
    by_blob: dict[str, list[tuple[str, str]]] = {}
    for blob, path, commit in versions:
        if os.path.join(root, path) not in skip:
            by_blob.setdefault(blob, []).append((path, commit))
    stats: dict[str, Any] = {"commits": commit_count, "blobs": 0, "blob_bytes": 0}

    def items() -> Iterator[tuple[_Item, int]]:
        for blob, data in _cat_blobs(root, list(by_blob), max_size):
            if data is None:
                continue
            stats["blobs"] += 1
            stats["blob_bytes"] += len(data)
            for path, commit in by_blob[blob]:
                yield (path, os.path.join(root, path), None, data, commit), len(data)

    raw, _, _ = runner.run(_batches(items()), max_size, _PARALLEL_BYTES if len(by_blob) > 50 else 0)
    best: dict[tuple[str, str, str, str], Finding] = {}
    for finding in raw:
        key = finding.fingerprint()
        known = best.get(key)
        if known is None or order.get(finding.commit or "", 0) < order.get(known.commit or "", 0):
            best[key] = finding
    return list(best.values()), stats
