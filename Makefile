# One entry point for people and CI. Every target installs what it needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig

.PHONY: setup controlplane monitoring-crds kstatus-probe cluster cluster-down test unit test-cluster lint fmt typecheck crd docs run bench bench-quick bench-shards clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## setup: Python environment, the control-plane binaries and the kstatus probe (built once, cached)
setup: $(VENV)/.installed controlplane monitoring-crds kstatus-probe

controlplane:
	bash hack/controlplane.sh install >/dev/null

# kstatus (sigs.k8s.io/cli-utils) as a small Go probe: the tests ask it what Flux sees
kstatus-probe:
	bash hack/kstatus-probe.sh install >/dev/null

# The Prometheus Operator's CRDs, from its Go module at a pinned version (monitoring tests)
monitoring-crds:
	bash hack/monitoring-crds.sh download >/dev/null

## cluster: start the local control plane; kubeconfig in .cluster/kubeconfig
cluster: controlplane
	bash hack/controlplane.sh up

## cluster-down: stop every process of the local control plane and remove its state
cluster-down:
	bash hack/controlplane.sh down

## test: the whole suite against a fresh local control plane (installs what is missing)
test: setup
	bash hack/test.sh

## unit: the fast tests that need no cluster
unit: $(VENV)/.installed
	$(BIN)/pytest -q tests/unit

lint: $(VENV)/.installed
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench

fmt: $(VENV)/.installed
	$(BIN)/ruff format operator tests bench
	$(BIN)/ruff check --fix operator tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

## crd: regenerate crds/ from the models
crd: $(VENV)/.installed
	$(BIN)/python -m session_operator.crd

## docs: regenerate docs/settings.md from the Settings model
docs: $(VENV)/.installed
	$(BIN)/python -m session_operator.docsgen

## run: local control plane + CRD + a sample project pod + the operator + a sample Session
run: setup
	bash hack/run.sh

## bench / bench-quick: benchmark against the local control plane (N=500 / N=50)
bench: setup
	bash hack/bench.sh --full

bench-quick: setup
	bash hack/bench.sh --quick

## bench-shards: 1 replica against 4 shards and a shard's failover, 8,000 Active Sessions
## in 80 namespaces (SHARDS_ARGS="--sessions 1000" to scale down; bench/README.md, "Shards")
bench-shards: setup
	bash hack/bench.sh --shards $(SHARDS_ARGS)

clean: cluster-down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
