#!/usr/bin/env bash
# demo.sh runs callfleet locally (`make demo`): kube-apiserver + etcd with the
# CRDs, piopiy-sim, the manager, the stream gateway and the echo bot as
# processes, with config/samples applied; Ctrl-C stops it all. The work is
# done by the Go program in hack/demo (flags: hack/demo.sh --help); this
# script builds it and hands over, so Ctrl-C and SIGTERM reach it directly.
#
#   hack/demo.sh                        # run until Ctrl-C
#   hack/demo.sh --smoke --timeout 4m   # exit 0 once the sample Call completed after a handoff
#
# make demo has already built bin/k8s (make kube-bins) and the binaries
# (make build); run alone, the program builds the binaries itself (--build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p bin
go build -o bin/callfleet-demo ./hack/demo
exec bin/callfleet-demo "$@"
