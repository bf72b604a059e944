#!/usr/bin/env bash
# The test command of README.md: installs what is needed, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build --build-tests
# The sftdeck binary re-executes itself with a better OpenBLAS kernel when OpenBLAS under-detects
# the CPU; a test process cannot, so give it the same kernel a user gets (a user's setting wins).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  kernel="$(.build/debug/sftdeck blas-kernel)"
  if [ -n "$kernel" ]; then export OPENBLAS_CORETYPE="$kernel"; echo "test: OPENBLAS_CORETYPE=$kernel"; fi
fi
swift test --skip-build --disable-swift-testing
