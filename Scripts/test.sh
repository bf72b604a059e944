#!/usr/bin/env bash
# The test command of README.md: installs what is needed, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing
