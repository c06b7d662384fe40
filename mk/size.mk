# The module's size. V8 compiles every byte of meshsight.wasm up front in every sidecar (about
# 25 MB of resident memory per MB of Wasm, measured in Envoy 1.40), so bytes are memory per pod.
#
# `make wasm` (Makefile) runs binaryen's wasm-opt on what cargo links: $(WASM_OPT_FLAGS) on
# target/wasm32-wasip1/release/deps/<module>.wasm (cargo's own output, never rewritten) into
# target/wasm32-wasip1/release/<module>.wasm, so the shipped bytes depend only on the sources,
# the toolchain and the pinned binaryen: the same from any clone, and the same on a second run.
#
# `make wasm-size` (part of `make test`): fails when meshsight.wasm is over its budget.
# `make wasm-stack` (part of `make test`): runs meshsight.wasm in Node's V8 through the deepest
# stack users known (test-harness/wasm-stack/stack.mjs) and fails when one needs more than half
# of its stack (WASM_STACK_SIZE in the Makefile), or traps.

# binaryen from npm (the package ships wasm-opt built for Node), pinned.
BINARYEN_VERSION := 132.0.0
WASM_OPT := $(TOOLS)/binaryen/node_modules/.bin/wasm-opt
# The module speaks the proxy-wasm ABI itself (filters/host-abi/, no SDK) and exports
# only the callbacks an HTTP filter with a root context gets: proxy-wasm-cpp-host looks each
# callback up once and skips one the module does not export (`if (!wasm_->on_grpc_receive_)
# return;`). The SDK exported every callback (gRPC answers, network-filter events, foreign
# functions, shared queues), which `--remove-exports` used to strip here (14,146 bytes); the
# module's own layer replaced the SDK: 693,643 -> 648,033 bytes.
# -O3, with a function that has one caller inlined only up to size 100 (binaryen's measure): its
# default at -O2 and up inlines such a function whatever its size, and the huge functions that
# makes cost V8 more memory than the bytes saved (Envoy 1.40, the bench's one pass at a fixed
# 1,000 rps: RSS 116 MiB with cargo's module, 131-135 MiB after -O3, -Os or -Oz, 116 MiB with
# this limit). Bytes: 974,366 -> 863,116. Measured again on the opt-level "z" build (411,470
# bytes here, idle RSS in Envoy 1.40, 1 worker, 2026-12-08): -Os with --merge-similar-functions
# gives 402,929 bytes and +2.8 MB; the limit at 1,000, or -Oz without it, 400,340 and 400,112
# bytes and +10 to +12 MB. Fewer bytes, more memory: the bytes are a proxy, the memory is what
# a pod pays. The features are the ones rustc enables for
# wasm32-wasip1 (the stripped module no longer says which): without them wasm-opt refuses
# memory.copy and friends.
WASM_OPT_FLAGS := -O3 --one-caller-inline-max-function-size 100 --strip-debug --strip-producers \
  --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
# What meshsight.wasm must export, no more and no less: the ABI marker, memory and the
# callbacks an HTTP filter with a root context gets.
WASM_EXPORTS := _initialize memory proxy_abi_version_0_2_1 proxy_on_configure \
  proxy_on_context_create proxy_on_delete proxy_on_done proxy_on_http_call_response proxy_on_log \
  proxy_on_memory_allocate proxy_on_request_body proxy_on_request_headers \
  proxy_on_request_trailers proxy_on_response_body proxy_on_response_headers \
  proxy_on_response_trailers proxy_on_tick proxy_on_vm_start
WASM_DIS := $(TOOLS)/binaryen/node_modules/.bin/wasm-dis
# A ratchet under the goal: issue 19's target is 400 KB (400,000 bytes, the issue's and the
# bench's kilobytes), met by its fifth pass: 393,993 bytes at this budget's last cut.
# 986,822 before issue 19's second pass (the policy crate's own JSON reader instead of
# serde and serde_json, its own Aho-Corasick automaton, one stable sort of its own instead of
# std's, the unused callbacks' exports dropped, the built-in packs minified); 693,643 before its
# third (the module's own proxy-wasm ABI layer instead of the SDK, the crate's own float
# formatter and address parsing, struct readers as field lists, maps read as sorted lists, the
# audit writers' shared pieces, one automaton for all signature locations); 539,554 before its
# fourth (the module's crates at opt-level "z", the built-in packs deflated, the hot paths
# written for "z"); 411,826 before its fifth (a 128 KiB stack, WASM_STACK_SIZE in the Makefile:
# 409,633; policy messages quoting through one writer instead of `{:?}` and the host status's
# `Debug` by hand: 408,191; no B-tree left, the signature counters and target names, then the
# audit's name sets, as sorted lists: 400,213, then 395,334; `ConfigError::at` through `dyn`:
# 394,562; the configure-time sorts of positions sharing one sort: 393,993). The budget only
# ever comes down: a change that adds bytes must take as many out, or say in its notes why the
# bytes are worth the memory. The goal, for the check's message.
WASM_SIZE_BUDGET ?= 394000
WASM_SIZE_GOAL := 400000

# The policies the stack check configures: every pluginConfig of the Istio manifests, as
# `make bench` runs them.
WASM_STACK_POLICIES := $(TARGET_DIR)/wasm-stack/policies

.PHONY: binaryen wasm-size wasm-stack

binaryen: node
	@if [ "$$($(WASM_OPT) --version 2>/dev/null)" != "wasm-opt version $(firstword $(subst ., ,$(BINARYEN_VERSION))) (version_$(firstword $(subst ., ,$(BINARYEN_VERSION))))" ]; then \
	  echo "installing binaryen $(BINARYEN_VERSION) (wasm-opt) into .tools/binaryen"; \
	  command -v npm >/dev/null || { apt-get update && apt-get install -y npm; }; \
	  npm install --no-save --no-audit --no-fund --prefix $(TOOLS)/binaryen binaryen@$(BINARYEN_VERSION); \
	fi

wasm-size: wasm
	@size=$$(stat -c %s $(WASM_DIR)/meshsight.wasm); \
	if [ "$$size" -gt "$(WASM_SIZE_BUDGET)" ]; then \
	  echo "wasm-size: meshsight.wasm is $$size bytes, over its budget of $(WASM_SIZE_BUDGET) bytes by $$((size - $(WASM_SIZE_BUDGET)))."; \
	  echo "  Every byte is compiled by V8 in every sidecar. See what grew: build with names kept"; \
	  echo "  (CARGO_PROFILE_RELEASE_STRIP=none cargo build --target wasm32-wasip1 --release -p meshsight --target-dir target/names)"; \
	  echo "  and run 'twiggy top' / 'twiggy dominators' on it (cargo install twiggy); the budget is WASM_SIZE_BUDGET in mk/size.mk."; \
	  exit 1; \
	fi; \
	exports=$$($(WASM_DIS) $(WASM_DIR)/meshsight.wasm | sed -n 's/^ (export "\([^"]*\)".*/\1/p' | sort | tr '\n' ' '); \
	want=$$(printf '%s\n' $(WASM_EXPORTS) | sort | tr '\n' ' '); \
	if [ "$$exports" != "$$want" ]; then \
	  echo "wasm-size: meshsight.wasm exports [$$exports], expected [$$want]."; \
	  echo "  The exports are the #[no_mangle] callbacks of export_callbacks! (filters/host-abi/src/callbacks.rs): one Envoy"; \
	  echo "  never calls an HTTP filter for does not belong there."; \
	  exit 1; \
	fi; \
	if [ "$$size" -gt "$(WASM_SIZE_GOAL)" ]; then to_go="$$((size - $(WASM_SIZE_GOAL))) bytes to go"; else to_go="met"; fi; \
	echo "wasm-size: meshsight.wasm is $$size bytes, within its budget of $(WASM_SIZE_BUDGET) (the goal: $(WASM_SIZE_GOAL), $$to_go)"

wasm-stack: wasm node pytools
	@$(VENV)/tools/bin/python scripts/validate_istio.py --dump-plugin-configs $(WASM_STACK_POLICIES) >/dev/null
	node test-harness/wasm-stack/stack.mjs --wasm $(WASM_DIR)/meshsight.wasm \
	  --policies $(WASM_STACK_POLICIES) --stack-size $(WASM_STACK_SIZE)

TEST_EXTRA += wasm-size wasm-stack
