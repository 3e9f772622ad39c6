#!/usr/bin/env bash
# sync-chart-crds.sh copies the controller-gen CRDs into the Helm chart, so the
# chart and config/ install the same schema (make verify checks they match).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -d "$root/charts/callfleet" ]]; then
  rm -rf "$root/charts/callfleet/crds"
  cp -r "$root/config/crd/bases" "$root/charts/callfleet/crds"
fi
