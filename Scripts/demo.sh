#!/usr/bin/env bash
# The demo command of README.md: installs what is needed, builds in release, runs the bundled demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product sftdeck
exec .build/release/sftdeck demo "$@"
