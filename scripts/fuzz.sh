#!/usr/bin/env bash
# Contract fuzzing with schemathesis (pinned, installed from PyPI into the project's .venv), every
# check and the stateful phase, against a server on a temporary database, plus a cross-user
# isolation check. See scripts/fuzz.py and scripts/schemathesis.toml.
# FUZZ_SEED (fixed by default, so a failure reproduces) and FUZZ_MAX_EXAMPLES tune a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
if ! .venv/bin/schemathesis --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --locked --quiet --bin omi-server
exec .venv/bin/python scripts/fuzz.py target/debug/omi-server
