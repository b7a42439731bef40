#!/usr/bin/env bash
# Set up everything on a fresh machine (venv + test dependencies) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v age >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq age >/dev/null) || echo "note: could not install the age CLI (optional)"
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
exec .venv/bin/python -m pytest -n 2 "$@"
