#!/usr/bin/env bash
# Installs what SFTDeck needs on Debian 12: the C libraries it links and tmux (for the UI tests).
# Idempotent and quiet: prints nothing when everything is already there.
set -euo pipefail
packages=(libncursesw5-dev libopenblas-dev libpng-dev libjpeg-dev libsnappy-dev libzstd-dev zlib1g-dev pkg-config tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "setup: Swift 6 is required (https://www.swift.org/install/linux/); 'swift' is not on PATH" >&2
  exit 1
fi
