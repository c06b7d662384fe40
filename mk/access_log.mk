# Audit path (b): Envoy's own access loggers render the OCSF record around the verdict the Wasm
# module leaves in filter state (shared/src/audit/verdict.rs, envoy-config/access-log/). For each
# Envoy in ENVOY_VERSIONS, scripts/access_log_e2e.py runs the verdict probe
# (test-harness/e2e/verdict-probe) behind the shipped file and OpenTelemetry blocks (OTLP/gRPC on
# every version, OTLP/HTTP where Envoy has it, decoded with opentelemetry-proto) and validates
# every record with scripts/validate_ocsf.py.

.PHONY: access-log-ocsf verdict-probe

VERDICT_PROBE_WASM := $(WASM_DIR)/meshsight_verdict_probe.wasm

verdict-probe: rust-targets
	$(CARGO) build --target wasm32-wasip1 --release -p meshsight-verdict-probe

access-log-ocsf: verdict-probe envoy-all pytools
	@for v in $(ENVOY_VERSIONS); do \
	  $(VENV)/tools/bin/python scripts/access_log_e2e.py --envoy $(VENV)/envoy-$$v/bin/envoy \
	    --wasm $(VERDICT_PROBE_WASM) || exit 1; \
	done

TEST_EXTRA += access-log-ocsf
