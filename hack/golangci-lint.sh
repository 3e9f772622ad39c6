#!/usr/bin/env bash
# golangci-lint.sh builds golangci-lint from Go modules into the version-keyed
# cache (no release downloads here) and runs it with the given arguments.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v2.15.0
cache_root=${CALLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callfleet}
bin="$cache_root/golangci-lint-$version/golangci-lint"
if [[ ! -x "$bin" ]]; then
  echo "golangci-lint: building $version (first run on this machine takes minutes)..." >&2
  GOBIN="$(dirname "$bin")" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
cd "$root"
exec "$bin" "$@"
