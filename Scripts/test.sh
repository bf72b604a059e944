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

# The native bf16 path through a real cblas_sbgemm. Debian's OpenBLAS does not export it, so one is built
# from Debian's source (Scripts/build-openblas-bf16.sh: ~5 min on 2 cores, kept in .build-openblas-bf16 for
# later runs) and the bf16 tests run again through it; on this CPU it is OpenBLAS's generic bf16 kernel,
# so this checks the calls and the numbers, not the speed. SFTDECK_TEST_SBGEMM=0 skips it; where the
# library cannot be built (no compiler or no network) this says so and those tests stay skipped.
if [ "${SFTDECK_TEST_SBGEMM:-1}" != 0 ]; then
  lib="${SFTDECK_SBGEMM_LIBRARY:-$PWD/.build-openblas-bf16/libopenblas_sbgemm.so}"
  if [ ! -f "$lib" ]; then
    if command -v curl >/dev/null && command -v make >/dev/null && command -v cc >/dev/null && command -v xz >/dev/null; then
      echo "test: building an OpenBLAS with cblas_sbgemm for the native-bf16 tests (SFTDECK_TEST_SBGEMM=0 skips this)"
      bash Scripts/build-openblas-bf16.sh "$(dirname "$lib")" \
        || echo "test: the OpenBLAS with cblas_sbgemm could not be built; the native-bf16 tests stay skipped"
    else
      echo "test: curl, make, cc or xz is missing, so no OpenBLAS with cblas_sbgemm is built; the native-bf16 tests stay skipped"
    fi
  fi
  if [ -f "$lib" ]; then
    echo "test: the bf16 tests again, through $lib"
    SFTDECK_SBGEMM_LIBRARY="$lib" swift test --skip-build --disable-swift-testing --filter 'BF16'
  fi
fi
