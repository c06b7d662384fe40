# SOC integrations (envoy-config/integrations/, docs/soc-integration.md): the collector, Vector,
# Fluent Bit, Suricata and Zeek files checked offline for consistency with what meshsight sends
# (none of these tools runs here: the guide marks them untested).

.PHONY: integrations-check

integrations-check: pytools
	$(VENV)/tools/bin/python scripts/check_integrations.py

TEST_EXTRA += integrations-check
