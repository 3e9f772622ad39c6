#!/usr/bin/env bash
echo "make demo is not there yet: it lands with the Helm chart and demo issue (#9)." >&2
echo "Meanwhile, make test runs the whole suite against a real kube-apiserver + etcd." >&2
exit 1
