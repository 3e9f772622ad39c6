#!/usr/bin/env bash
# build-kube.sh builds kube-apiserver, etcd, kubectl and helm from Go modules
# (release downloads are impossible here) into a cache outside the clone, keyed
# by version, and links it to bin/k8s. A warm machine skips the build.
#
# Usage: hack/build-kube.sh [tool ...]   (default: all four)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"

cache_root=${CALLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callfleet}
dest="$cache_root/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$dest" "$root/bin"
ln -sfn "$dest" "$root/bin/k8s"

check_pin() { # module dir, module path, version
  if ! grep -q "$2 $3" "$root/hack/$1/go.mod"; then
    echo "hack/$1/go.mod does not pin $2 $3 (hack/versions.env): update one of them" >&2
    exit 1
  fi
}
check_pin kube k8s.io/kubernetes "$KUBE_VERSION"
check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin helm helm.sh/helm/v3 "$HELM_VERSION"

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build() { # name, module dir, package, ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  if [[ -x "$dest/$name" ]]; then
    echo "build-kube: $name cached in $dest"
    return
  fi
  echo "build-kube: building $name from $pkg (cold builds take minutes on 2 cores)..."
  local start=$SECONDS
  (cd "$root/hack/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dest/$name.tmp" "$pkg")
  mv "$dest/$name.tmp" "$dest/$name"
  echo "build-kube: built $name in $((SECONDS - start))s"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(etcd kube-apiserver kubectl helm)
for t in "${tools[@]}"; do
  case $t in
    etcd) build etcd etcd go.etcd.io/etcd/server/v3 "-s -w" ;;
    kube-apiserver) build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags" ;;
    kubectl) build kubectl kube k8s.io/kubernetes/cmd/kubectl "$kube_ldflags" ;;
    helm) build helm helm helm.sh/helm/v3/cmd/helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    *) echo "build-kube: unknown tool $t" >&2; exit 2 ;;
  esac
done
