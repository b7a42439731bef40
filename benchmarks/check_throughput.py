"""Throughput of ``gitcrypt-sops check``: files per second over a generated tree.

Generates a git repository of ``--files`` files (default 5,000) in a temporary
directory: per service directory an encrypted YAML file, an encrypted JSON file
and a plaintext YAML config (about 30 leaves each), a ``.sops-policy.yaml`` with
every rule switched on, and one commit.  Then times ``check`` over the whole
tree as a user runs it (a ``python -m gitcrypt_sops check`` process), in one
process (``--jobs 1``) and with the default worker pool, with and without the
``max_data_key_age`` rule (the one rule that reads git history).

    .venv/bin/python benchmarks/check_throughput.py [--files 5000] [--repeat 3] [--keep DIR]
        [--updatekeys-files 1000]

``--updatekeys-files N`` also times ``repo updatekeys --yes`` over N files that each
have their own data key (one recipient added to every file by a changed creation
rule: decrypt, wrap for the new recipient, re-encrypt keeping the ciphertext).

Encryption reuses one data key for the whole tree so that generating it is fast;
``check`` never unwraps keys, so this does not change what is measured.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECIPIENT = "age16nw5nv7k5szrvxdkx8rmugsngspdg3yk6paq7zdfnzvmcvqu0u5q0dzdlm"
BREAK_GLASS = "age19pdm9p4dnht65yl3hgn5kyv5cvwg7vp7kydrupzpwkwll47zu4tq8y6v5q"

POLICY = f"""\
creation_rules:
  - path_regex: \\.enc\\.
    age: {RECIPIENT},{BREAK_GLASS}
  - path_regex: ""
    age: {RECIPIENT}
policy:
  must_encrypt: ["**/*.enc.*", "secrets/**"]
  never_plaintext: "(?i)(password|secret|token|private_key)"
  required_recipients: [{BREAK_GLASS}]
  forbidden_recipients: ["age1r7a2kft0043qgwz2w9yaffra8dv8yttcxlh295cfflsnq9myvv0q893neh"]
  max_data_key_age: 90d
  recipients_match_rules: true
"""


def _service(rng: random.Random, index: int) -> dict[str, object]:
    return {
        "name": f"service-{index}",
        "replicas": rng.randint(1, 9),
        "database": {
            "host": f"db-{index}.internal",
            "port": 5432,
            "user": f"user{index}",
            "password": "".join(rng.choice("abcdefghijkmnopqrstuvwxyz0123456789!#%") for _ in range(24)),
            "options": {"sslmode": "require", "pool": rng.randint(5, 50), "timeout": 3.5},
        },
        "api": {
            "token": "tok_" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
            "endpoints": [f"https://api-{index}-{n}.example.com" for n in range(3)],
            "retries": 3,
            "debug": False,
        },
        "features": {f"flag_{n}": bool(rng.getrandbits(1)) for n in range(8)},
        "labels": {"team": f"team-{index % 17}", "tier": rng.choice(["web", "batch", "data"])},
    }


def _config(rng: random.Random, index: int) -> dict[str, object]:
    data = _service(rng, index)
    data["database"] = {k: v for k, v in data["database"].items() if k != "password"}  # type: ignore[union-attr]
    data["api"] = {k: v for k, v in data["api"].items() if k != "token"}  # type: ignore[union-attr]
    return data


def generate(root: Path, count: int, seed: int = 1) -> int:
    """Write the tree and commit it; returns the number of files."""
    from gitcrypt_sops import api
    from gitcrypt_sops.cipher import DataKey
    from gitcrypt_sops.datakey import wrap
    from gitcrypt_sops.providers.base import Recipient
    from gitcrypt_sops.stores.yaml_emit import emit_document

    rng = random.Random(seed)
    (root / ".sops-policy.yaml").write_text(POLICY)
    key = DataKey.generate()
    groups = [[Recipient("age", RECIPIENT), Recipient("age", BREAK_GLASS)]]
    wrapped = wrap(key, groups)
    options = api.EncryptOptions(groups)
    written = 0
    index = 0
    while written < count:
        directory = root / "services" / f"svc-{index // 50:03d}" / f"s{index:05d}"
        directory.mkdir(parents=True, exist_ok=True)
        import json

        yaml_text = emit_document(_service(rng, index), 2).encode()
        files = {
            "secrets.enc.yaml": api.encrypt_parsed(api.parse(yaml_text, "yaml", encrypted=False), options,
                                                   data_key=key, wrapped=wrapped),
            "secrets.enc.json": api.encrypt_parsed(
                api.parse(json.dumps(_service(rng, index)).encode(), "json", encrypted=False), options,
                data_key=key, wrapped=wrapped),
            "config.yaml": emit_document(_config(rng, index), 2).encode(),
        }
        for name, data in files.items():
            if written >= count:
                break
            (directory / name).write_bytes(data)
            written += 1
        index += 1
    env = _git_env(root)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    return written


def _git_env(root: Path) -> dict[str, str]:
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def time_cli(root: Path, extra: list[str], repeat: int) -> tuple[float, float, int]:
    """Median wall time and CPU time (the process, its workers and its git children) of one check."""
    import resource

    env = {**_git_env(root), "PYTHONPATH": str(REPO)}
    walls = []
    cpus = []
    code = 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "check", "--format", "json", *extra],
                                cwd=root, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        code = result.returncode
        if code not in (0, 1):
            sys.exit(f"check failed ({code}): {result.stderr.decode().strip()}")
    return statistics.median(walls), statistics.median(cpus), code


def time_updatekeys(base: Path, count: int) -> None:
    """Generate ``count`` files with their own data keys, then time one repo-wide updatekeys."""
    import resource

    from gitcrypt_sops import api
    from gitcrypt_sops.providers.base import Recipient
    from gitcrypt_sops.stores.yaml_emit import emit_document

    root = base / "updatekeys"
    root.mkdir()
    rng = random.Random(2)
    options = api.EncryptOptions([[Recipient("age", RECIPIENT)]])
    for index in range(count):
        directory = root / f"d{index // 100:02d}"
        directory.mkdir(exist_ok=True)
        plain = emit_document(_service(rng, index), 2).encode()
        (directory / f"s{index:04d}.yaml").write_bytes(api.encrypt_bytes(plain, "yaml", options))
    (root / ".sops-policy.yaml").write_text(f"creation_rules:\n  - age: {RECIPIENT},{BREAK_GLASS}\n")
    key_file = REPO.parent / "shared" / "vectors" / "test-age-key.txt"
    env = {**_git_env(root), "PYTHONPATH": str(REPO), "SOPS_AGE_KEY_FILE": str(key_file)}
    for label, extra in (("--jobs 1", ["--jobs", "1"]), ("default workers", [])):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "gitcrypt_sops", "repo", "updatekeys", "--yes", *extra],
                                cwd=root, env=env, capture_output=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        if result.returncode != 0:
            sys.exit(f"updatekeys failed ({result.returncode}): {result.stderr.decode().strip()}")
        print(f"repo updatekeys over {count} files, {label:16s} {wall:7.2f}s wall {cpu:7.2f}s CPU "
              f"({count / wall:.0f} files/s wall, {count / cpu:.0f} files/CPU-s)")
        # the second run adds nothing; put the files back to one recipient for the next timing
        (root / ".sops-policy.yaml").write_text(f"creation_rules:\n  - age: {RECIPIENT}\n")
        subprocess.run([sys.executable, "-m", "gitcrypt_sops", "repo", "updatekeys", "--yes", "--no-rotate"],
                       cwd=root, env=env, capture_output=True, check=True)
        (root / ".sops-policy.yaml").write_text(f"creation_rules:\n  - age: {RECIPIENT},{BREAK_GLASS}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    parser.add_argument("--updatekeys-files", type=int, default=0, metavar="N",
                        help="also time a repo-wide updatekeys over N files (e.g. 1000)")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="check-bench-"))
    root = base / "tree"
    try:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        started = time.perf_counter()
        count = generate(root, args.files)
        print(f"generated {count} files in {time.perf_counter() - started:.1f} s ({os.cpu_count()} CPUs)")
        cases = [
            ("all rules, default workers", []),
            ("all rules, --jobs 1", ["--jobs", "1"]),
            ("without max_data_key_age (no git history), default workers", ["--skip", "max_data_key_age"]),
            ("without max_data_key_age, --jobs 1", ["--skip", "max_data_key_age", "--jobs", "1"]),
        ]
        print(f"load average before timing: {os.getloadavg()[0]:.1f}")
        print(f"{'case':62s} {'wall':>8s} {'files/s':>8s} {'CPU':>8s} {'files/CPU-s':>12s}")
        for label, extra in cases:
            wall, cpu, code = time_cli(root, extra, args.repeat)
            print(f"{label:62s} {wall:7.2f}s {count / wall:8.0f} {cpu:7.2f}s {count / cpu:12.0f}  (exit {code})")
        if args.updatekeys_files:
            time_updatekeys(base, args.updatekeys_files)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
