#!/usr/bin/env bash
# verify.sh fails when generated code or manifests differ from what the
# generators produce now, or when Go files are not gofmt'd. It regenerates into
# a scratch copy, so it never touches the work tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

fail=0
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^hack/') 2>/dev/null || true)
if [[ -n "$unformatted" ]]; then
  echo "verify: not gofmt'd (run make fmt):"; echo "$unformatted"; fail=1
fi

if ! go mod tidy -diff >"$scratch/tidy.diff" 2>&1; then
  echo "verify: go.mod/go.sum are not tidy (run go mod tidy):"; cat "$scratch/tidy.diff"; fail=1
fi

go tool controller-gen rbac:roleName=callfleet-manager crd paths=./api/... paths=./internal/... \
  output:crd:artifacts:config="$scratch/crd" output:rbac:artifacts:config="$scratch/rbac"
if ! diff -ru config/crd/bases "$scratch/crd"; then
  echo "verify: config/crd/bases is stale (run make manifests)"; fail=1
fi
if ! diff -u <(cat config/rbac/role.yaml 2>/dev/null) <(cat "$scratch/rbac/role.yaml" 2>/dev/null); then
  echo "verify: config/rbac/role.yaml is stale (run make manifests)"; fail=1
fi
if [[ -d charts/callfleet/crds ]] && ! diff -ru charts/callfleet/crds "$scratch/crd"; then
  echo "verify: charts/callfleet/crds is stale (run make manifests)"; fail=1
fi

cp api/v1alpha1/zz_generated.deepcopy.go "$scratch/deepcopy.go"
# controller-gen writes object code next to the types, so regenerate in place
# and put the original back if it differed.
go tool controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
if ! diff -u "$scratch/deepcopy.go" api/v1alpha1/zz_generated.deepcopy.go; then
  cp "$scratch/deepcopy.go" api/v1alpha1/zz_generated.deepcopy.go
  echo "verify: api/v1alpha1/zz_generated.deepcopy.go is stale (run make generate)"; fail=1
fi

if [[ $fail -ne 0 ]]; then exit 1; fi
echo "verify: generated code and manifests are up to date"
