# Hospital ERP. The two commands: `make run` and `make test`.

GO          ?= go
SQLC        := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1
GOFILES      = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.data/*')

.PHONY: help run test deps generate check-generate fmt-check vet unit test-chaos build clean bench

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## run everything on http://localhost:3000 with a demo hospital (local PostgreSQL in ./.data)
	@scripts/install-deps.sh run
	$(GO) run ./cmd/hospital-erp dev

test: deps fmt-check vet check-generate unit test-chaos k8s-check ## install missing packages, then gofmt, vet, generated code, all tests (-race), the fault-injection suite, the Kubernetes checks

deps: ## install missing Debian packages (PostgreSQL, PgBouncer, Redis, Sentinel, NGINX, Chromium, Prometheus, Alertmanager) when root
	@scripts/install-deps.sh test

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# HOSPITAL_ERP_MAKE_TEST: tests that need an installed tool (Prometheus) fail
# instead of skipping; "deps" installed it. The fault-injection suite runs on
# its own (test-chaos): it measures recovery times and latencies, which other
# packages' tests running beside it on two cores would distort.
unit:
	HOSPITAL_ERP_MAKE_TEST=1 $(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/internal/chaos$$')

test-chaos: ## fault injection against real processes: SIGKILL, rolling restart, PgBouncer, PostgreSQL, Redis (docs/reliability.md)
	$(GO) test -race -count=1 -timeout 10m -v ./internal/chaos/

generate: ## regenerate the sqlc code from internal/postgres/{migrations,queries}
	$(SQLC) generate

check-generate: ## fail when the committed sqlc code is stale
	@$(SQLC) diff || (echo "generated code is stale: run 'make generate' and commit"; exit 1)

build: ## build a static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/hospital-erp ./cmd/hospital-erp

bench: build ## measure the system against issue 9's targets on this machine and write docs/BENCHMARKS.md (BENCH_FLAGS=--quick for a smoke run)
	@scripts/install-deps.sh bench
	$(GO) run ./tools/bench $(BENCH_FLAGS)

clean: ## remove build output (not ./.data)
	rm -rf bin

include mk/*.mk
