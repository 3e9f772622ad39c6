#!/usr/bin/env bash
# sync-chart-crds.sh copies the controller-gen CRDs and the manager's
# ClusterRole into the Helm chart, so the chart and config/ install the same
# schema and RBAC (make verify and test/chart check they match).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -d "$root/charts/callfleet" ]]; then
  rm -rf "$root/charts/callfleet/crds"
  cp -r "$root/config/crd/bases" "$root/charts/callfleet/crds"
  # The chart's ClusterRole takes its rules from this copy of the generated
  # role (test/chart checks they are equal).
  mkdir -p "$root/charts/callfleet/files"
  cp "$root/config/rbac/role.yaml" "$root/charts/callfleet/files/manager-role.yaml"
fi
