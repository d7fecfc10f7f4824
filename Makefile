# otelcol-ebpf: `make run` builds the collector and runs it on config.yaml;
# `make test` runs every test, including those that load the eBPF programs.
SHELL := /bin/bash
GO ?= go
OCB_VERSION := v0.161.0
TOOLS := $(CURDIR)/.tools
OCB := $(TOOLS)/builder-$(OCB_VERSION)
DIST := _build/otelcol-ebpf
CONFIG ?= config.yaml
GO_SOURCES := $(shell find . -name '*.go' -not -path './_build/*' -not -path './.tools/*') go.mod go.sum bpf/tracer_x86_bpfel.o

.PHONY: all setup generate check-generate manifests build run test vmtest vmtest-cost fuzz bench profile clean

all: build

## setup: install the Debian packages building and testing need (idempotent)
setup:
	@scripts/setup.sh

## generate: rebuild the eBPF objects (bpf2go), the mdatagen code and the
## plain manifests rendered from the Helm chart
generate: setup manifests
	$(GO) generate ./...

## manifests: render deploy/manifests from the Helm chart (deploy/ is a Go
## module of its own: Helm's dependencies stay out of the collector's)
manifests:
	$(GO) -C deploy run ./render

## check-generate: fail when committed generated files differ from `make generate`
check-generate: generate
	@if ! git diff --quiet -- bpf internal/metadata processor '*generated*' documentation.md deploy/manifests; then \
		git --no-pager diff --stat -- bpf internal/metadata processor '*generated*' documentation.md deploy/manifests; \
		echo "generated files differ from what 'make generate' produces: commit them" >&2; exit 1; \
	fi

$(OCB):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(TOOLS)/builder $(OCB)

## build: build the otelcol-ebpf distribution with ocb into _build/
build: $(DIST)

$(DIST): $(OCB) builder-config.yaml $(GO_SOURCES)
	$(OCB) --config builder-config.yaml

## run: build and run the collector on $(CONFIG) (needs root)
run: build
	$(DIST) --config $(CONFIG)

## test: every test; the eBPF end-to-end tests need root (CI runs as root).
## Unit and protocol packages run with the race detector; packages run one
## at a time, since the eBPF tests of two packages would share the kernel.
test: setup build
	@if [ "$${CI:-}" = "true" ]; then $(MAKE) --no-print-directory check-generate; fi
	$(GO) vet ./...
	$(GO) -C deploy vet ./...
	$(GO) test -race -p 1 -count=1 -timeout 20m $$($(GO) list ./... | grep -v /e2e)
	$(GO) -C deploy test -count=1 ./...
	OTELCOL_EBPF_BIN=$(CURDIR)/$(DIST) $(GO) test -p 1 -count=1 -timeout 30m ./e2e/...
	$(MAKE) --no-print-directory vmtest

## vmtest: the eBPF tests again on a second kernel, Debian 12's 6.1 (socket
## hooks with fentry, and the syscall path) under qemu with software
## emulation; the kernel image is cached in .cache/vmtest (scripts/vmtest)
vmtest: setup
	scripts/vmtest/run.sh

## vmtest-cost: the hooks' cost side by side in the 6.1 guest (emulated:
## ratios only); a measurement, not part of make test
vmtest-cost: setup
	VMTEST_COST=1 VMTEST_BPF='^$$' VMTEST_E2E='^TestHookCost$$' scripts/vmtest/run.sh

## fuzz: run each fuzz target for FUZZTIME (default 60s) and keep the corpus
## it built in testdata/fuzz (every protocol parser has one)
FUZZTIME ?= 60s
FUZZ_TARGETS := internal/protocols/http1:FuzzConn internal/protocols/http2:FuzzParser \
	internal/protocols/http2/hpack:FuzzDecoder internal/protocols/postgres:FuzzParser \
	internal/protocols/mysql:FuzzParser internal/protocols/redis:FuzzParser \
	internal/sqlquery:FuzzSanitize internal/sqlquery:FuzzAnalyze \
	internal/events:FuzzDecode internal/k8s:FuzzParseCgroup internal/tracecontext:FuzzParse
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $$t"; \
		$(GO) test ./$${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x || exit 1; \
	done
	scripts/keep-fuzz-corpus.sh $(FUZZ_TARGETS)

## bench: throughput of a Go HTTP server with and without the receiver, and
## the user-space cost per event (decode, parse, correlate, build pdata)
bench: build setup
	$(GO) run ./cmd/bench --collector $(DIST)
	$(GO) test -run '^$$' -bench 'EventsToPdata|KeepAlive$$' -benchmem ./receiver/ ./internal/protocols/http1/

## profile: where a request's CPU goes with the bench's server watched (perf
## samples of the machine, per request, by program and symbol; MODE=selected
## | unselected | propagation)
profile: build setup
	scripts/profile-bench.sh

clean:
	rm -rf _build
