# callfleet — run AI voice-call campaigns on Kubernetes with Piopiy.
#
# Two commands on a fresh machine: `make demo` and `make test`. Everything they
# need (kube-apiserver, etcd, kubectl, helm, controller-gen) is built from Go
# modules into a cache outside the clone; see hack/build-kube.sh.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

include hack/versions.env

ROOT := $(abspath .)
BIN := $(ROOT)/bin
K8S_BIN := $(BIN)/k8s
CONTROLLER_GEN := go tool controller-gen
GO_TEST_FLAGS ?= -count=1
# Tests never fail on wall-clock timing, but a loaded 2-core box is slow.
GO_TEST_TIMEOUT ?= 20m

export KUBEBUILDER_ASSETS := $(K8S_BIN)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from the API types and markers (config/, charts/).
	$(CONTROLLER_GEN) rbac:roleName=callfleet-manager crd paths=./api/... paths=./internal/... output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/sync-chart-crds.sh

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: ## Run golangci-lint (built from Go modules into the cache).
	hack/golangci-lint.sh run ./...

.PHONY: verify
verify: ## Fail when generated code, manifests or formatting are stale.
	hack/verify.sh

##@ Test

.PHONY: test
test: kube-bins chromium verify vet lint ## Run every test (after verify, vet and lint): unit, envtest on a real kube-apiserver + etcd, chart checks, the console in headless Chromium.
	go test $(GO_TEST_FLAGS) -timeout $(GO_TEST_TIMEOUT) -coverprofile cover.out ./...

.PHONY: test-e2e
test-e2e: kube-bins build ## Run the end-to-end tests (processes: apiserver, sim, manager, gateway, bot).
	go test $(GO_TEST_FLAGS) -tags e2e -timeout $(GO_TEST_TIMEOUT) ./test/e2e/...

.PHONY: bench
bench: kube-bins ## Run the benchmarks and print their figures.
	go test -run '^$$' -bench . -benchtime 1x ./test/bench/... ./pkg/... ./internal/...

##@ Build

.PHONY: build
build: ## Build manager, stream-gateway, piopiy-sim and the demo bot into bin/.
	go build -o $(BIN)/ ./cmd/... ./examples/bots/...

.PHONY: chromium
chromium: ## Install Debian's chromium for the console's browser test (quick when present).
	hack/install-chromium.sh

.PHONY: kube-bins
kube-bins: ## Build kube-apiserver, etcd, kubectl and helm (cached by version).
	hack/build-kube.sh

##@ Demo

# Flags for hack/demo, e.g. make demo DEMO_ARGS="--smoke --timeout 4m" (see docs/demo.md).
DEMO_ARGS ?=

.PHONY: demo
demo: kube-bins build ## Run the whole system locally: control plane, sim, manager, gateway, bot, samples.
	hack/demo.sh --build=false $(DEMO_ARGS)

.PHONY: demo-kind
demo-kind: kube-bins ## The demo in a kind cluster: images, kind, helm install, piopiy-sim, samples (needs Docker and kind).
	hack/demo-kind.sh
