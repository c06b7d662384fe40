# `make bench`: meshsight-bench (test-harness/bench/src/main.rs) runs every scenario
# in one go against the same baseline (Envoy without filters) and writes bench-results/latest.md
# and latest.json: the filter rows against the no-op anchor and Envoy's RBAC with a JSON access
# log, the rule-count rows, the sensor and collector rows, the request-body and response rows
# (each against a reference sending the same bytes), the memory table (1 and 2 workers)
# and the lean-module targets. About 25 minutes on 2 cores (3 rounds); BENCH_ARGS passes
# options, e.g. `make bench BENCH_ARGS="--rounds 1 --only allowlist"` or the quicker full table
# `BENCH_ARGS="--duration-secs 3 --warmup-secs 1"`. See envoy-config/bench/README.md.

# The load generator, built from crates.io into .tools/ (takes a few minutes the first time).
OHA_VERSION := 1.16.0
BENCH_POLICIES := $(TARGET_DIR)/bench/policies
BENCH_ARGS ?=

.PHONY: oha bench-filters

oha:
	@if [ "$$($(TOOLS)/bin/oha --version 2>/dev/null)" != "oha $(OHA_VERSION)" ]; then \
	  echo "installing oha $(OHA_VERSION) into .tools"; \
	  $(CARGO) install oha --version $(OHA_VERSION) --locked --root $(TOOLS) --force; \
	fi

# The "wasm no-op filter" row runs test-harness/bench/noop-filter (meshsight_noop.wasm): what any
# Wasm filter costs, the floor under each meshsight row.
# The filter policies are the Istio manifests' pluginConfigs (validated first), so the bench
# also proves the filters accept what envoy-config/istio/ ships.
# The "..., module at opt-level 3" rows run meshsight_o3.wasm: the same sources with the module's
# crates (and its inflater) at opt-level 3 instead of the shipped "z" (Cargo.toml says why "z"),
# through the same wasm-opt, so each run shows what the shipped build trades (memory against
# per-request CPU).
O3_TARGET := $(TARGET_DIR)/o3
O3_CONFIG := $(foreach c,meshsight meshsight-policy meshsight-host-abi miniz_oxide adler2,--config 'profile.release.package.$(c).opt-level=3')

bench-filters: wasm envoy pytools oha
	$(VENV)/tools/bin/python scripts/validate_istio.py --dump-plugin-configs $(BENCH_POLICIES)
	$(CARGO) build --target wasm32-wasip1 --release -p meshsight-noop-filter
	$(CARGO) build --target wasm32-wasip1 --release -p meshsight --target-dir $(O3_TARGET) $(O3_CONFIG)
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(O3_TARGET)/wasm32-wasip1/release/deps/meshsight.wasm -o $(WASM_DIR)/meshsight_o3.wasm
	@printf '%-28s %8s bytes\n' meshsight_o3.wasm $$(stat -c %s $(WASM_DIR)/meshsight_o3.wasm)
	$(CARGO) build --release -p meshsight-bench
	$(TARGET_DIR)/release/meshsight-bench --policies $(BENCH_POLICIES) --out $(CURDIR)/bench-results $(BENCH_ARGS)

BENCH_EXTRA += bench-filters

# `make bench-perf`: the throughput rows that issue 19's targets compare, each recorded with
# `perf record -g` while it runs (`--perf`), and a table of where Envoy's CPU went: in the
# module's compiled code, in what the module called (host calls, V8's runtime), elsewhere in
# Envoy. The Envoy wheel has no symbols, but Envoy and V8 keep frame pointers, so the call
# chains tell the three apart (test-harness/bench/src/measure.rs, `CpuSplit`). Not part of
# `make bench`: perf loads the machine a little, which the other rows should not share.
BENCH_PERF_ROWS ?= baseline (no filter),wasm no-op filter,host-call probe,one pass: allowlist + mirror + audit

.PHONY: bench-perf perf-tool
perf-tool:
	@command -v perf >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf; }

bench-perf: perf-tool
	$(MAKE) bench-filters BENCH_ARGS='--perf --only "$(BENCH_PERF_ROWS)" $(BENCH_ARGS)'

# `make v8-profile`: the module's own cost per request in V8 (Node's, run as Envoy runs it:
# TurboFan only), per job and for the one pass, against the no-op module, with the host calls
# each makes (test-harness/bench/v8-profile/profile.mjs). No Envoy and no load generator: steadier than the
# Envoy rows on a shared machine, and what `--cpu-prof` profiles by function name
# (V8_PROFILE_ARGS="--cpu-prof" writes a .cpuprofile; the module is built with names kept).
V8_PROFILE_TARGET := $(TARGET_DIR)/v8-profile
V8_PROFILE_ARGS ?=

.PHONY: v8-profile
v8-profile: node wasm pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --dump-plugin-configs $(BENCH_POLICIES)
	CARGO_PROFILE_RELEASE_STRIP=none $(CARGO) build --target wasm32-wasip1 --release -p meshsight \
	  --target-dir $(V8_PROFILE_TARGET)
	$(CARGO) build --target wasm32-wasip1 --release -p meshsight-noop-filter
	node --no-liftoff $(V8_PROFILE_ARGS) test-harness/bench/v8-profile/profile.mjs \
	  --wasm $(V8_PROFILE_TARGET)/wasm32-wasip1/release/meshsight.wasm \
	  --noop $(WASM_DIR)/meshsight_noop.wasm --policies $(BENCH_POLICIES)

BENCH_EXTRA += v8-profile
