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

clean: clean-conformance ## remove build output and test results
	rm -rf bin
