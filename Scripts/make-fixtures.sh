#!/usr/bin/env bash
# Regenerates every committed test fixture from the pinned reference stack (Python is needed only
# here, never by `swift test`). Usage: bash Scripts/make-fixtures.sh [PYTHON]
# With no argument it makes a venv in .build-pyref with Scripts/requirements-reference.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-}"
if [ -z "$PY" ]; then
  if [ ! -x .build-pyref/bin/python ]; then
    python3 -m venv .build-pyref
    .build-pyref/bin/pip install -q -r Scripts/requirements-reference.txt
  fi
  PY=.build-pyref/bin/python
fi
for g in Scripts/fixtures/gen_*.py; do
  echo "== $g"
  "$PY" "$g"
done
