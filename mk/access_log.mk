# Audit path (b): Envoy's own access loggers render the OCSF record around the verdict the Wasm
# module leaves in filter state (shared/src/audit/verdict.rs, envoy-config/access-log/). The e2e
# test test-harness/e2e/tests/e2e_access_log_sinks.rs runs the verdict probe
# (test-harness/e2e/verdict-probe) behind the shipped file and OpenTelemetry blocks (OTLP/gRPC on
# every version, OTLP/HTTP where Envoy has it, decoded with opentelemetry-proto) and validates
# every record with scripts/validate_ocsf.py, in each Envoy of `make e2e-all`: `make e2e` builds
# the probe first.

.PHONY: verdict-probe

verdict-probe: rust-targets
	$(CARGO) build --target wasm32-wasip1 --release -p meshsight-verdict-probe

e2e: verdict-probe
