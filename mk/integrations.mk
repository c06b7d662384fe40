# SOC integrations (envoy-config/integrations/, docs/soc-integration.md): the collector, Vector,
# Fluent Bit, Suricata and Zeek files checked offline for consistency with what meshsight sends
# (none of these tools runs here: the guide marks them untested). What the copies carry and which
# metrics exist come from the module: the wire_contract example runs it in the native proxy-wasm
# host and prints them, scripts/check_integrations.py reads that.

.PHONY: integrations-check

WIRE_CONTRACT := $(TARGET_DIR)/wire-contract.json

integrations-check: pytools
	$(CARGO) run -q -p meshsight --example wire_contract > $(WIRE_CONTRACT)
	$(VENV)/tools/bin/python scripts/check_integrations.py --contract $(WIRE_CONTRACT)

TEST_EXTRA += integrations-check
