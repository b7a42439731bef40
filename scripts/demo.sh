#!/usr/bin/env bash
# Set up everything on a fresh machine and run the demo: encrypt and decrypt examples/
# with the committed TEST-ONLY key (examples/demo-age-key.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e . --config-settings editable_mode=compat
exec .venv/bin/python examples/demo.py
