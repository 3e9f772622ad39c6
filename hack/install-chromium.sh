#!/usr/bin/env bash
# install-chromium.sh installs Debian's headless-capable Chromium for the
# console's browser test (internal/console/browser_test.go). It is idempotent
# and quick when Chromium is already there: apt's package lists are refreshed
# only when the package cannot be found in them.
#
# Usage: hack/install-chromium.sh   (CALLFLEET_SKIP_CHROMIUM=1 skips it)
set -euo pipefail

if [[ -n "${CALLFLEET_SKIP_CHROMIUM:-}" ]]; then
  echo "install-chromium: skipped (CALLFLEET_SKIP_CHROMIUM set)"
  exit 0
fi

if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: $(command -v chromium) present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium yourself and put it on PATH (or set CHROMIUM)" >&2
  exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
# An image that has never run apt-get update has no lists: refresh only then.
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  "${sudo[@]}" apt-get update
fi
"${sudo[@]}" apt-get install -y --no-install-recommends chromium
echo "install-chromium: $(command -v chromium) installed"
