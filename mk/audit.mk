# Audit filter: every OCSF record shape the filter can produce must validate against the OCSF
# 1.7.0 `http_activity` JSON Schema from the PyPI package ocsf-json-schema (pinned in
# PYTOOLS_REQUIREMENTS), checked with jsonschema. The e2e test (test-harness/e2e/tests/e2e_audit.rs)
# also validates the records a real Envoy delivered to the collector with the same script.

.PHONY: audit-ocsf

AUDIT_SAMPLES := $(TARGET_DIR)/audit-ocsf-samples.ndjson

# A matrix of records (every method, allowlist outcome, mirror reason, 5xx, client abort, IPv6,
# missing data) from the real record builder, validated; --self-test proves on mutated copies
# that the check refuses bad records.
audit-ocsf: pytools
	$(CARGO) run -q -p meshsight --example ocsf_samples > $(AUDIT_SAMPLES)
	$(VENV)/tools/bin/python scripts/validate_ocsf.py --self-test $(AUDIT_SAMPLES)

TEST_EXTRA += audit-ocsf
