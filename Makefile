# octoserve — see README.md. `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/octoserve
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GO_SRC   := $(shell find cmd internal -name '*.go' 2>/dev/null) go.mod go.sum

.PHONY: help build run test test-unit test-conformance test-conformance-quick \
        test-conformance-v2 build-conformance clean-conformance test-e2e tools \
        fuzz bench lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

build: $(BIN) ## build bin/octoserve

$(BIN): $(GO_SRC)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/octoserve

run: build ## serve a registry on localhost:5000 with data in ./data
	./$(BIN) serve --addr localhost:5000 --root ./data

test: test-unit test-conformance test-conformance-v2 test-e2e ## everything that can be tested here

test-unit: ## go vet and go test ./... (race detector on)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

tools: ## install the pinned e2e clients (crane, oras, regctl) into .tools/bin; checks for skopeo
	scripts/install-tools.sh

test-e2e: build ## end-to-end tests: crane, oras, regctl, skopeo against octoserve (logs in test-results/e2e)
	@command -v skopeo >/dev/null 2>&1 || { echo "skopeo not found: apt-get install skopeo" >&2; exit 1; }
	scripts/test-e2e.sh

clean: clean-conformance ## remove build output and test results
	rm -rf bin

FUZZTIME     ?= 10s
FUZZPARALLEL ?= 2
fuzz: ## run every Fuzz* test for FUZZTIME each (default 10s; seeds alone run in test-unit)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' cmd internal | sort); do \
	  pkg=./$$(dirname $$f); \
	  for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$fn ($$pkg, $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) $$pkg; \
	  done; \
	done
