#!/usr/bin/env bash
# test-chart.sh checks the Helm chart and the kustomize config: helm lint
# (default and test/chart/values-*.yaml), helm template, the values schema,
# RBAC parity with controller-gen, and server-side dry-run applies of the
# chart, config/default and config/samples to a real kube-apiserver + etcd
# (envtest), plus a real install and upgrade. All of it is the Go test in
# test/chart; this script runs it from the repository root.
#
# Usage: hack/test-chart.sh [go test flags, e.g. -run Schema -v]
# Needs bin/k8s (or $KUBEBUILDER_ASSETS) from hack/build-kube.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

assets=${KUBEBUILDER_ASSETS:-$root/bin/k8s}
missing=()
for bin in helm kubectl kube-apiserver etcd; do
  [[ -x "$assets/$bin" ]] || missing+=("$bin")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "test-chart: ${missing[*]} not found in $assets: run hack/build-kube.sh (or make kube-bins)" >&2
  exit 1
fi
export KUBEBUILDER_ASSETS=$assets

exec go test -count=1 -timeout 10m "$@" ./test/chart/
