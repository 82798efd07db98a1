# Ballast build plumbing. A fresh clone needs only Go and the module proxy:
# the external tools are built from hack/tools into bin/ on first use.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BIN        := $(CURDIR)/bin
VERSION    ?= 0.1.0-dev
GIT_SHA    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/ballastdb/ballast/node/version
LDFLAGS    := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).GitSHA=$(GIT_SHA)
IMAGE      ?= ballast:$(VERSION)
TEST_TIMEOUT ?= 20m
FUZZTIME   ?= 20s

# The race detector needs cgo and a C compiler; without them the node
# packages are tested without -race rather than not at all.
RACE := $(shell if [ "$$(go env CGO_ENABLED)" = 1 ] && command -v "$$(go env CC)" >/dev/null 2>&1; then echo -race; fi)

.PHONY: build
build: ## bin/ballast, static
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ballast .

.PHONY: tools
tools: ## etcdctl, etcdutl and staticcheck into bin/ (cached by version)
	hack/tools.sh etcdctl etcdutl staticcheck

.PHONY: run
run: build tools ## start a single-member cluster in the background
	hack/run.sh

.PHONY: stop
stop: ## stop the member started by make run
	hack/stop.sh

.PHONY: lint-quick
lint-quick:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	go vet ./...

.PHONY: lint
lint: lint-quick ## gofmt, go vet and staticcheck
	hack/tools.sh staticcheck
	$(BIN)/staticcheck ./...

.PHONY: test
test: lint-quick build ## gofmt + vet, then all tests (race detector on node/), the etcd comparison (compat), kube-apiserver on Ballast (kube-test) and the operator (operator-test)
	hack/tools.sh etcdctl etcdutl
	@if [ -z "$(RACE)" ]; then echo "note: no cgo/C compiler; running tests without -race"; fi
	ETCDCTL=$(BIN)/etcdctl ETCDUTL=$(BIN)/etcdutl BALLAST_BIN=$(BIN)/ballast \
		go test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./node/...
	ETCDCTL=$(BIN)/etcdctl ETCDUTL=$(BIN)/etcdutl BALLAST_BIN=$(BIN)/ballast \
		go test -count=1 -timeout $(TEST_TIMEOUT) $$(go list ./... | grep -v -e '/node/' -e '/controllers' -e '/api/')
	cd hack/bench && GOWORK=off go vet ./... && GOWORK=off go test -count=1 ./...
	$(MAKE) --no-print-directory compat
	$(MAKE) --no-print-directory kube-test
	$(MAKE) --no-print-directory helm-lint
	$(MAKE) --no-print-directory operator-test

.PHONY: fuzz
fuzz: ## run every Fuzz target for FUZZTIME each
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: docker-build
docker-build: ## container image $(IMAGE)
	docker build --build-arg VERSION=$(VERSION) --build-arg GIT_SHA=$(GIT_SHA) -t $(IMAGE) .

.PHONY: clean
clean: ## remove bin/ and .run/ (stop a running member first)
	@if [ -f .run/ballast.pid ]; then hack/stop.sh; fi
	rm -rf $(BIN) .run

.PHONY: help
help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Ballast vs a pinned real etcd, side by side on this machine (see
# hack/bench/README.md). BENCH_FLAGS=-quick takes about 2 minutes; results go
# to hack/bench/results/.
BENCH_FLAGS ?=
.PHONY: bench
bench: build ## compare with etcd v3.7.3 (~10 min; BENCH_FLAGS=-quick ~2 min)
	cd hack/bench && GOWORK=off go run ./cmd/bench -repo $(CURDIR) -no-build $(BENCH_FLAGS)

.PHONY: compat
compat: build ## the same client interactions against real etcd and bin/ballast (hack/compat)
	hack/tools.sh etcd etcdctl etcdutl
	cd hack/compat && GOWORK=off ETCD_BIN=$(BIN)/etcd ETCDCTL=$(BIN)/etcdctl ETCDUTL=$(BIN)/etcdutl BALLAST_BIN=$(BIN)/ballast \
		go test -count=1 -timeout 10m ./...

# kube-apiserver (the release pinned in hack/kube/go.mod) on bin/ballast,
# driven by client-go: CRUD, pagination, watches, conflicts, CRDs, informers,
# leases and kube-apiserver's own compaction (see hack/kube/README.md). The
# first run builds kube-apiserver and kubectl into ~/.cache/ballast/tools
# (about 7 minutes on 2 cores); later runs take about 30 seconds.
# KUBE_TEST_BACKEND=etcd runs the same test on a real etcd as a baseline.
.PHONY: kube-test
kube-test: build ## kube-apiserver v1.36 on bin/ballast, driven by client-go (hack/kube)
	hack/kube/build.sh
	@if [ "$${KUBE_TEST_BACKEND:-}" = etcd ]; then hack/tools.sh etcd; fi
	cd hack/kube && export GOWORK=off CGO_ENABLED=0 && go vet ./... && BALLAST_BIN=$(BIN)/ballast \
		KUBE_APISERVER=$(BIN)/kube-apiserver KUBECTL=$(BIN)/kubectl ETCD_BIN=$(BIN)/etcd \
		go test -count=1 -timeout 5m ./...

# The operator (api/, controllers/). The CRD, RBAC role and deep-copy code
# are generated from the markers in api/ and controllers/ by controller-gen,
# pinned in hack/tools/go.mod.
CONTROLLER_GEN := $(BIN)/controller-gen

.PHONY: manifests
manifests: ## CRD (config/crd/bases) and RBAC role (config/rbac/role.yaml) from the markers
	hack/tools.sh controller-gen
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/chart/sync.sh

.PHONY: generate
generate: ## deep-copy functions of the API types (api/v1alpha1/zz_generated.deepcopy.go)
	hack/tools.sh controller-gen
	$(CONTROLLER_GEN) object paths=./api/...

# Controller tests: envtest runs kube-apiserver v1.36 (hack/kube/build.sh)
# with bin/ballast as its etcd; members are real ballast processes on
# loopback ports (see controllers/suite_test.go). About 2 minutes on the
# shared 2-core machine, compilation included.
.PHONY: operator-test
operator-test: build ## the operator: plan tables, CRD validation, reconciler against kube-apiserver on Ballast with real members
	hack/kube/build.sh
	BALLAST_BIN=$(BIN)/ballast KUBE_APISERVER=$(BIN)/kube-apiserver KUBECTL=$(BIN)/kubectl \
		go test -count=1 -timeout 10m ./api/... ./controllers/...

# --- Images, the Helm chart and kind (hack/image, charts/, hack/kind, e2e/) ---
# None of these pulls an image: `make image` writes the Ballast image from
# bin/ballast (hack/image/build.sh), and the kind node image is built from
# Debian packages and the Go module proxy (hack/kind/README.md).
IMAGE_ARCHIVE ?= $(CURDIR)/.run/image/ballast-$(VERSION).tar
KIND_CLUSTER  ?= ballast
# Empty: build (once, cached in ~/.cache/ballast/kind) and use the local node
# image; set it to use another, e.g. KIND_NODE_IMAGE=kindest/node:v1.36.x
# where images can be pulled.
KIND_NODE_IMAGE ?=
E2E_TIMEOUT   ?= 45m
E2E_RUN       ?= .

.PHONY: image
image: build ## container image $(IMAGE) from bin/ballast, no pull (also saved to IMAGE_ARCHIVE)
	@mkdir -p $(dir $(IMAGE_ARCHIVE))
	hack/image/build.sh $(BIN)/ballast $(IMAGE) $(IMAGE_ARCHIVE)

.PHONY: helm-lint
helm-lint: ## helm lint + helm template of charts/ballast-operator, decoded and checked (e2e/chart_test.go)
	hack/tools.sh helm
	cd e2e && GOWORK=off go vet ./... && GOWORK=off HELM=$(BIN)/helm go test -count=1 -run '^TestChart' .

.PHONY: kind-image
kind-image: build ## the kind node image (Kubernetes v1.36 from the module proxy, Debian rootfs), cached
	hack/kind/node-image.sh

.PHONY: kind-up
kind-up: build ## create a kind cluster KIND_CLUSTER (node image: KIND_NODE_IMAGE or make kind-image)
	KIND_CLUSTER=$(KIND_CLUSTER) KIND_NODE_IMAGE=$(KIND_NODE_IMAGE) hack/kind/up.sh

.PHONY: kind-down
kind-down: ## delete the kind cluster KIND_CLUSTER
	KIND_CLUSTER=$(KIND_CLUSTER) hack/kind/down.sh

# The end-to-end suite (e2e/, build tag e2e): its own kind cluster
# (ballast-e2e), the image loaded into it, the operator installed with helm
# (and then with kubectl apply -k config/default), EtcdClusters driven through
# the API and client/v3. E2E_KEEP_CLUSTER=1 keeps the cluster afterwards for
# a look; E2E_RUN selects tests.
.PHONY: e2e
e2e: image ## end-to-end tests on kind (first run builds everything: 30-45 min; later runs ~6 min)
	hack/tools.sh helm kind
	hack/kube/build.sh kubectl
	@if [ -z "$(KIND_NODE_IMAGE)" ]; then hack/kind/node-image.sh >.run/kind-node-image; else echo "$(KIND_NODE_IMAGE)" >.run/kind-node-image; fi
	cd e2e && GOWORK=off go vet -tags e2e ./... && GOWORK=off \
		KIND=$(CURDIR)/hack/kind/kind HELM=$(BIN)/helm KUBECTL=$(BIN)/kubectl KIND_NODE_IMAGE="$$(cat $(CURDIR)/.run/kind-node-image)" \
		BALLAST_IMAGE=$(IMAGE) BALLAST_IMAGE_ARCHIVE=$(IMAGE_ARCHIVE) \
		go test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v -run '$(E2E_RUN)' .
