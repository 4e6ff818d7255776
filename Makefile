# octoserve — see README.md. `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/octoserve
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GO_SRC   := $(shell find cmd internal -name '*.go' 2>/dev/null) go.mod go.sum
# The built official suites; defined before any rule names them (make
# expands a rule's prerequisites as it reads the rule).
SUITE_V1 := distribution-spec/conformance/conformance.test
SUITE_V2 := distribution-spec/conformance-v2/conformance

.PHONY: help build run test test-unit test-conformance test-conformance-automount-off test-conformance-quick \
        test-conformance-v2 build-conformance clean-conformance test-e2e tools \
        test-harness fuzz lint clean test-crash test-s3 test-soak test-replicas check-alerts bench bench-go

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-32s %s\n", $$1, $$2}'

build: $(BIN) ## build bin/octoserve

$(BIN): $(GO_SRC)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/octoserve

run: build ## serve a registry on localhost:5000 with data in ./data
	./$(BIN) serve --addr localhost:5000 --root ./data

test: lint check-alerts tools test-unit test-conformance test-conformance-automount-off test-conformance-v2 test-harness test-e2e test-crash test-soak test-s3 test-replicas ## everything that can be tested here

test-unit: ## go vet and go test ./... (race detector on)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

CRASH_ROUNDS ?= 20
test-crash: build ## kill -9 test: concurrent pushes, SIGKILL, restart on the same root, all acknowledged data intact (CRASH_ROUNDS=20)
	OCTOSERVE_BIN=$(CURDIR)/$(BIN) CRASH_ROUNDS=$(CRASH_ROUNDS) $(GO) test -count=1 -v -timeout 15m -run '^TestKill9$$' ./internal/crashtest/

SOAK_DURATION ?= 15s
test-soak: build tools ## soak under hostile load: crane and a Go client beside slow bodies, login, referrer and session floods; bounded RSS and fds, verify clean (SOAK_DURATION=15s)
	SOAK_DURATION=$(SOAK_DURATION) scripts/test-soak.sh

tools: ## install the pinned e2e clients (crane, oras, regctl, helm, cosign) and versitygw into .tools/bin; checks for the Debian ones
	scripts/install-tools.sh

test-s3: build tools $(SUITE_V1) $(SUITE_V2) ## S3 tests on versitygw (a fresh server and bucket on loopback): storage contract and backend; both conformance suites, e2e, kill -9 and gc with octoserve on the bucket (logs in test-results/s3)
	scripts/test-s3.sh

test-replicas: build tools $(SUITE_V1) $(SUITE_V2) ## 3 replicas on one bucket behind HAProxy: both conformance suites and e2e through it, cross-replica scenarios, a replica killed mid-push (logs in test-results/replicas)
	@command -v haproxy >/dev/null 2>&1 || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }
	scripts/test-replicas.sh

test-e2e: build ## end-to-end tests: crane, oras, regctl, skopeo, podman, buildah, containerd, helm, cosign against octoserve (logs in test-results/e2e)
	@command -v skopeo >/dev/null 2>&1 || { echo "skopeo not found: apt-get install skopeo" >&2; exit 1; }
	scripts/test-e2e.sh

build-conformance: $(SUITE_V1) $(SUITE_V2) ## build both official conformance suites (no-op when up to date)

$(SUITE_V1): distribution-spec/conformance/go.mod distribution-spec/conformance/go.sum
	scripts/build-conformance.sh v1

$(SUITE_V2): distribution-spec/conformance-v2/go.mod distribution-spec/conformance-v2/go.sum
	scripts/build-conformance.sh v2

test-conformance: build $(SUITE_V1) ## 2023 suite, all four workflows; OCI_AUTOMATIC_CROSSMOUNT=0: automatic mounting off (reports in test-results/)
	scripts/test-conformance.sh

test-conformance-automount-off: build $(SUITE_V1) ## 2023 suite with OCI_AUTOMATIC_CROSSMOUNT=0 against octoserve with uploads.automaticMount off (test-results/automount-off/)
	OCI_AUTOMATIC_CROSSMOUNT=0 CONFORMANCE_RESULTS=test-results/automount-off scripts/test-conformance.sh

test-conformance-quick: build $(SUITE_V1) ## 2023 suite, pull and push workflows only
	OCI_TEST_CONTENT_DISCOVERY=0 OCI_TEST_CONTENT_MANAGEMENT=0 scripts/test-conformance.sh

test-conformance-v2: build $(SUITE_V2) ## 2026 suite, every API and data option on (reports in test-results/v2/)
	scripts/test-conformance-v2.sh

test-harness: build $(SUITE_V1) ## tests of the conformance scripts: cleanup on signals, failure on a broken registry
	scripts/test-harness.sh

lint: ## gofmt and shellcheck (go vet runs in test-unit)
	@test -z "$$(gofmt -l cmd internal e2e soak replicas)" || { gofmt -l cmd internal e2e soak replicas; exit 1; }
	shellcheck -x -P scripts scripts/*.sh scripts/lib/*.sh .ci/run

check-alerts: ## promtool checks and unit-tests the example alert rules (docs/monitoring; Debian package prometheus)
	@command -v promtool >/dev/null 2>&1 || { echo "promtool not found: apt-get install prometheus" >&2; exit 1; }
	promtool check rules docs/monitoring/alerts.yml
	cd docs/monitoring && promtool test rules alerts_test.yml

clean-conformance: ## remove the built suites and test-results/
	rm -f $(SUITE_V1) $(SUITE_V2)
	rm -rf test-results

clean: clean-conformance ## remove build output and test results
	rm -rf bin

OCTOBENCH := bin/octobench

$(OCTOBENCH): $(GO_SRC)
	$(GO) build -trimpath -o $@ ./cmd/octobench

# The same octoserve serving blobs with sendfile(2): the bench's pull A/B.
bin/octoserve-sendfile: $(GO_SRC)
	$(GO) build -trimpath -tags octoserve_sendfile -ldflags '$(LDFLAGS)' -o $@ ./cmd/octoserve

BENCH_QUICK ?= 0
bench: build $(OCTOBENCH) bin/octoserve-sendfile ## octoserve vs its peers and itself: local disks, S3, replicas, metrics, pull-through cache (report: test-results/bench.md, .png; BENCH_SECTIONS=local,s3,...; BENCH_QUICK=1: a smoke test)
	BENCH_QUICK=$(BENCH_QUICK) scripts/bench.sh

bench-go: ## go test -bench micro-benchmarks of the hot paths, with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./internal/registry/ ./internal/api/

FUZZTIME     ?= 10s
FUZZPARALLEL ?= 2
fuzz: ## run every Fuzz* test for FUZZTIME each (default 10s; seeds alone run in test-unit)
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) scripts/fuzz.sh
