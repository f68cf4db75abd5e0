# Ward build. `make demo` and `make test` work on a fresh Debian machine with Go; everything
# else they need is installed by the targets themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES  := ./proto/... ./pkg/... ./agent/... ./controller/... ./deploytest/...
TOOLS    := $(CURDIR)/bin/tools
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/wardsec/ward/pkg/version.Version=$(VERSION)
GOBUILD  := CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'
export PATH := $(TOOLS):$(PATH)

.PHONY: all build tools proto proto-check breaking lint test test-deps bench demo package clean

all: build

## build: the binaries, static (CGO disabled), into bin/
build:
	@mkdir -p bin
	$(GOBUILD) -o bin/ ./agent/cmd/ward-agent
	$(GOBUILD) -o bin/ ./controller/cmd/ward-controller ./controller/cmd/wardctl \
		./controller/cmd/ward-loadgen

## tools: buf, protoc plugins and grpcurl, pinned in tools/go.mod, into bin/tools
tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/grpcurl \
	$(TOOLS)/nfpm

$(TOOLS)/%: tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off GOBIN=$(TOOLS) go install tool
	@touch $(TOOLS)/*

## proto: regenerate the Go code from proto/ (local plugins, offline)
proto: tools
	buf generate

## proto-check: fail when the committed generated code is stale
proto-check: tools
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	buf generate -o $$tmp; \
	for f in $$(cd $$tmp/proto && find . -name '*.go'); do \
		cmp -s $$tmp/proto/$$f proto/$$f || \
			{ echo "stale generated code: proto/$${f#./} (run make proto)"; exit 1; }; \
	done; \
	extra=$$(comm -13 <(cd $$tmp/proto 2>/dev/null && find . -name '*.pb.go' | sort) \
		<(cd proto && find . -name '*.pb.go' | sort)); \
	[ -z "$$extra" ] || { echo "generated files without a source: $$extra"; exit 1; }

## breaking: buf breaking against the last release tag, else against main
breaking: tools
	@if tag=$$(git describe --tags --abbrev=0 2>/dev/null); then \
		echo "buf breaking against $$tag"; \
		buf breaking --against ".git#tag=$$tag"; \
	elif git rev-parse --verify -q main >/dev/null && \
		git cat-file -e main:proto 2>/dev/null; then \
		echo "buf breaking against main"; \
		buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no release or main to compare with yet"; fi

## lint: go vet, buf lint, gofmt
lint: tools
	go vet $(MODULES)
	buf lint
	@out=$$(gofmt -l proto pkg agent controller deploytest); \
	[ -z "$$out" ] || { echo "not gofmt-formatted:"; echo "$$out"; exit 1; }

## test-deps: what the tests need beyond Go (installs Debian packages when missing)
test-deps:
	@./scripts/test-deps.sh nix-bin rpm nmap snmpd snmp dcmtk openssh-server iproute2 tcpdump openssl

## test: everything CI runs
test: test-deps lint proto-check breaking build
	./scripts/check-agent-deps.sh
	go test -count=1 -timeout 20m $(MODULES)

## bench: the load generator against a real controller and a bare server, in one run
bench: build
	./scripts/bench.sh

## demo: a throwaway installation with three agents, narrated
demo: build
	./scripts/demo.sh

## package: .deb and .rpm of ward-agent and ward-controller into dist/ (nfpm)
package: build $(TOOLS)/nfpm
	@mkdir -p dist
	@export VERSION=$$(./packaging/version.sh) ARCH=$$(go env GOARCH) BIN_DIR=bin; \
	for pkg in ward-agent ward-controller; do for fmt in deb rpm; do \
		nfpm package --config packaging/nfpm/$$pkg.yaml --packager $$fmt --target dist/; \
	done; done

clean:
	rm -rf bin
