# Mengi GitOps. `make run` starts everything; `make test` runs every test.
GO       ?= go
BIN      ?= bin/mengi
# The API server alone (no Kubernetes or Helm code): what production runs for the API and the store.
SERVER_BIN ?= bin/mengi-server
DATA     ?= .run
# The local control plane's binaries live outside the tree, keyed on their pinned versions.
CLUSTER_BIN = $(shell bash tools/devcluster/build.sh --print-dir)
# The Git forge (Gitea) of the forge tests, likewise outside the tree, keyed on its pinned version.
FORGE_BIN = $(shell bash tools/forge/build.sh --print-dir)

.PHONY: build run test test-unit fuzz bench bench-store bench-git bench-agent bench-forge lint cluster-bin forge-bin cluster-up cluster-down

build:
	$(GO) build -o $(BIN) ./cmd/mengi
	$(GO) build -o $(SERVER_BIN) ./cmd/mengi-server

## run: the whole system on an embedded default (local repo, API, agent, local cluster).
run: build cluster-bin
	MENGI_CLUSTER_BIN=$(CLUSTER_BIN) $(BIN) up --data $(DATA)

## test: every test, including those against the real local cluster, real git and a real Gitea.
test: cluster-bin forge-bin lint
	MENGI_CLUSTER_BIN=$(CLUSTER_BIN) MENGI_FORGE_BIN=$(FORGE_BIN) $(GO) test -race -timeout 30m ./...
	$(MAKE) fuzz

## fuzz: a short run of each fuzz target (the seed corpus always runs in `make test`). Budgets are
## execution counts, not durations: Go 1.26's fuzzer can fail a run with "context deadline exceeded"
## when a -fuzztime duration ends under load (golang/go#75804, fixed in Go 1.27).
fuzz:
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzDecodeCreate$$' -fuzztime 40000x -fuzzminimizetime 5s
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzDecodeUpdate$$' -fuzztime 100000x -fuzzminimizetime 5s
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzParseFile$$' -fuzztime 20000x -fuzzminimizetime 5s
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzEmitFile$$' -fuzztime 60000x -fuzzminimizetime 5s
	$(GO) test ./gitstore -run '^$$' -fuzz '^FuzzUnpackDeployment$$' -fuzztime 100000x -fuzzminimizetime 5s
	$(GO) test ./gitstore -run '^$$' -fuzz '^FuzzDecodeHistoryFile$$' -fuzztime 50000x -fuzzminimizetime 5s

## bench: the benchmarks recorded in BENCHMARKS.md (results also appended to $(BENCH_OUT)).
BENCH_OUT ?= .run/bench-results.txt
bench: build
	@mkdir -p $(dir $(BENCH_OUT))
	$(GO) test -run '^$$' -bench . -benchmem ./gitstore ./schema
	for n in 0 10000 50000; do for c in 1 32; do \
	  $(SERVER_BIN) bench api --deployments $$n --clients $$c --duration 15s --results $(BENCH_OUT) || exit 1; \
	done; done

## bench-store: the Git store alone (issue 6), in the server process (mengi-server): reads, writes at
# 50,000 deployments beside git fast-import, and the SIGKILL test at 50,000.
bench-store: build
	@mkdir -p $(dir $(BENCH_OUT))
	$(GO) test -run '^$$' -bench 'GetByID|List100|Diff' -benchtime 5000x ./gitstore
	$(GO) test -run '^$$' -bench 'IndexMemory' -benchtime 1x ./gitstore
	$(SERVER_BIN) bench store --deployments 50000 --writers 64 --duration 10s --results $(BENCH_OUT)
	$(SERVER_BIN) bench store --deployments 50000 --writers 64 --duration 10s --rate 1000 --reference=false --results $(BENCH_OUT)
	$(SERVER_BIN) bench store --deployments 50000 --writers 1 --duration 10s --reference=false --results $(BENCH_OUT)
	$(SERVER_BIN) --memory-limit 140MiB bench store --deployments 50000 --writers 64 --duration 10s --reference=false --results $(BENCH_OUT)
	$(SERVER_BIN) --memory-limit 140MiB bench store --deployments 50000 --writers 1 --duration 10s --reference=false --results $(BENCH_OUT)
	MENGI_CRASH_DEPLOYMENTS=50000 $(GO) test -count=1 -run TestStoreSIGKILLUnderLoad -v ./cmd/mengi-server
	MENGI_CRASH_KILLS=100 $(GO) test -count=1 -timeout 30m -run TestSIGKILLDuringWriteStorm -v ./cmd/mengi

## bench-git: an engineer's git (issue 18) beside 64 store writers at full speed for 2 minutes, then
## beside 200 writes/s for 10 minutes: push-to-land time, fetch and clone times, pack count over time.
bench-git: build
	@mkdir -p $(dir $(BENCH_OUT))
	$(SERVER_BIN) bench git --deployments 10000 --writers 64 --duration 2m --interval 20s --results $(BENCH_OUT)
	$(SERVER_BIN) bench git --deployments 10000 --writers 64 --rate 200 --duration 10m --interval 60s --results $(BENCH_OUT)

## bench-agent: the agent's benchmark of BENCHMARKS.md: latency and 200 deployments on a local cluster it starts and stops.
bench-agent: build cluster-bin
	@mkdir -p $(dir $(BENCH_OUT))
	MENGI_CLUSTER_BIN=$(CLUSTER_BIN) $(BIN) bench agent --deployments 200 --latency-runs 20 --results $(BENCH_OUT)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## cluster-bin: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok once.
cluster-bin:
	bash tools/devcluster/build.sh

## forge-bin: build Gitea (the Git forge of the forge tests) and its options/ once.
forge-bin:
	bash tools/forge/build.sh

## bench-forge: the repository on a real Gitea (issue 17): creates beside a local repository and a
## plain `git push`, merge → the agent's mirror (webhook, poll), pull request → status.
bench-forge: build forge-bin
	@mkdir -p $(dir $(BENCH_OUT))
	MENGI_FORGE_BIN=$(FORGE_BIN) $(BIN) bench forge --results $(BENCH_OUT)

## cluster-up: start the local cluster in the background (state in .run/cluster); `make cluster-down` stops it.
cluster-up: build cluster-bin
	MENGI_CLUSTER_BIN=$(CLUSTER_BIN) $(BIN) dev-cluster up --detach

cluster-down: build
	$(BIN) dev-cluster down
