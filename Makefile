# Rampart — see README.md. Everything a target needs is installed by the
# target itself; downloads are cached under $(CACHE), outside the repository.

SHELL       := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

CACHE    ?= $(HOME)/.cache/rampart
TOOLS    := $(CACHE)/tools
DATA_DIR ?= .rampart
FUZZTIME ?= 30s

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/rampart-ml/rampart/internal/version.Version=$(VERSION) \
           -X github.com/rampart-ml/rampart/internal/version.Commit=$(COMMIT)

# Pinned tool versions (the module proxy serves exact versions only).
STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION       := v2.30.0
GOVULNCHECK_VERSION := v1.9.0
GHZ_VERSION         := v0.120.0
OAUTH2_PROXY_VERSION := v7.8.1

.PHONY: all build run demo-deps test test-deps test-demo onnxruntime lint vulncheck bench fuzz deps clean proto

all: build

deps:
	go mod download

build: deps onnxruntime
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/rampart ./cmd/rampart

## run: build and start a server with its data under ./.rampart; on the first start of
## DATA_DIR it onboards, signs and serves a demo model and prints a working curl inference
## (secrets in DATA_DIR-demo; see scripts/run-demo.sh)
run: build demo-deps
	scripts/run-demo.sh $(DATA_DIR)

## demo-deps: the model the demo serves (cached under ~/.cache/rampart)
demo-deps:
	scripts/fetch-test-models.sh

## test: every test, race detector on (installs the external OIDC test provider and fetches
## the test models first), then the demo of make run end to end (test-demo)
test: deps test-deps
	go test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory test-demo

## test-demo: scripts/run-demo.sh --check on a fresh temporary data directory, twice (first
## start, then restart): it runs the printed inference commands itself (about 15 s)
test-demo: build demo-deps
	@dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	  scripts/run-demo.sh --check "$$dir/data" >"$$dir/first.log" 2>&1 || { cat "$$dir/first.log"; exit 1; }; \
	  scripts/run-demo.sh --check "$$dir/data" >"$$dir/again.log" 2>&1 || { cat "$$dir/again.log"; exit 1; }; \
	  echo "test-demo: ok (first start and restart)"

## test-deps: programs the tests start and models they read (cached under ~/.cache/rampart)
test-deps: onnxruntime
	scripts/install-oidc-example.sh
	scripts/fetch-test-models.sh

## onnxruntime: the ONNX Runtime shared library the ONNX engine loads (cached under ~/.cache/rampart)
onnxruntime:
	scripts/fetch-onnxruntime.sh

## sbom: a CycloneDX 1.6 SBOM of the built binary (bin/rampart.cdx.json), from its build information
.PHONY: sbom
sbom: build
	bin/rampart version --sbom > bin/rampart.cdx.json
	@echo "wrote bin/rampart.cdx.json"

## lint: gofmt, go vet, staticcheck, gosec
lint: $(TOOLS)/staticcheck-$(STATICCHECK_VERSION) $(TOOLS)/gosec-$(GOSEC_VERSION)
	@unformatted=$$(gofmt -l cmd internal); \
	  if [ -n "$$unformatted" ]; then echo "gofmt: not formatted:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	$(TOOLS)/staticcheck-$(STATICCHECK_VERSION) ./...
	$(TOOLS)/gosec-$(GOSEC_VERSION) -quiet -exclude-generated ./...

## vulncheck: known-vulnerability scan (needs https://vuln.go.dev; not part of CI)
vulncheck: $(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)
	@if ! curl -sSf --max-time 10 -o /dev/null https://vuln.go.dev/index/db.json; then \
	  echo "vulncheck: the Go vulnerability database (https://vuln.go.dev) is not reachable from this machine;"; \
	  echo "vulncheck: no scan was done. Run 'make vulncheck' where it is reachable."; \
	  exit 1; \
	fi
	$(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION) ./...

## bench: benchmarks (not part of make test); see bench/README.md
bench: deps
	go test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench/latest.txt
	go run ./bench/summarize < bench/latest.txt

## bench-opa: access Decide vs OPA (Rego, in-process): identical decisions on 100,000 random
## queries (fails otherwise), then ns/decision of both and the ratio, from the same run.
## OPA is only in the separate module bench/opa/rego; not part of make test or make bench.
.PHONY: bench-opa
bench-opa: deps
	go test -tags opa -count 1 -run '^TestDecideAgreesWithOPA$$' -v ./bench/opa
	go test -tags opa -run '^$$' -bench '^BenchmarkDecideVsOPA$$' -benchmem -count 5 ./bench/opa

## bench-onboard: a 1 GiB signed model onboarded through the HTTP API of the real server
## binary vs sha256sum of its weights (same run), with the server's peak extra RSS and the
## disk's dd conv=fsync rate; data directory on disk and on /dev/shm. Not part of make test.
.PHONY: bench-onboard
BENCH_ONBOARD_FLAGS ?= -data-parents /var/tmp,/dev/shm
bench-onboard: build
	go run ./bench/onboard -rampart bin/rampart $(BENCH_ONBOARD_FLAGS)

## bench-inference: issue 8's performance goals in one run: the in-process ONNX Runtime
## baseline vs the real server (TLS, bearer token, authz, worker IPC) over REST and gRPC,
## latency and throughput (ghz, wrk), JSON vs binary tensors, worker RSS. Writes the table
## to bench/inference/latest.txt and the load generators' raw output next to it. Not part of
## make test; see bench/README.md.
.PHONY: bench-inference
BENCH_INFERENCE_FLAGS  ?=
bench-inference: build $(TOOLS)/ghz-$(GHZ_VERSION) $(TOOLS)/oauth2-proxy-$(OAUTH2_PROXY_VERSION)
	scripts/fetch-test-models.sh
	@command -v wrk >/dev/null || { echo "bench-inference: installing wrk (apt-get)"; apt-get install -y wrk; }
	go build -o bin/bench-inference ./bench/inference
	bin/bench-inference -rampart bin/rampart -ghz $(TOOLS)/ghz-$(GHZ_VERSION) -oauth2-proxy $(TOOLS)/oauth2-proxy-$(OAUTH2_PROXY_VERSION) \
	  -raw bench/inference/latest-raw.txt $(BENCH_INFERENCE_FLAGS) | tee bench/inference/latest.txt

## fuzz: run every fuzz target for FUZZTIME each
fuzz: deps
	@for pkg in $$(go list ./...); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## proto: regenerate internal/inference/oippb from its .proto (needs protoc; the output is committed, so build and test never run this)
proto:
	scripts/gen-proto.sh

clean:
	rm -rf bin

# Tools are built from the module proxy at pinned versions into $(TOOLS).
$(TOOLS)/staticcheck-$(STATICCHECK_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/.bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/.bin/staticcheck $@

$(TOOLS)/gosec-$(GOSEC_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/.bin go install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION)
	mv $(TOOLS)/.bin/gosec $@

$(TOOLS)/ghz-$(GHZ_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/.bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
	mv $(TOOLS)/.bin/ghz $@

# oauth2-proxy (the peer stack of bench-inference): `go install` fails on its version list,
# so it is built from the module cache, outside this module (see ../shared/RECIPES.md).
$(TOOLS)/oauth2-proxy-$(OAUTH2_PROXY_VERSION):
	@mkdir -p $(TOOLS)
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  dir=$$(cd "$$tmp" && GOWORK=off go mod download -json github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION) | \
	    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  cp -r "$$dir" "$$tmp/src" && chmod -R u+w "$$tmp/src" && \
	  (cd "$$tmp/src" && GOWORK=off GOFLAGS=-buildvcs=false go build -trimpath -o $@ .)

$(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/.bin go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	mv $(TOOLS)/.bin/govulncheck $@
