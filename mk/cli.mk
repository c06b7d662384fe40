# The `meshsight` command line (cli/). Its tests run with `cargo test --workspace`; the e2e
# comparison with the module (test-harness/e2e/tests/e2e_cli.rs) runs with `make e2e`. Here: the
# rendered WasmPlugin checked against Istio's CRD schemas, and a throughput measurement.

CLI_BIN := $(TARGET_DIR)/release/meshsight
CLI_DEBUG_BIN := $(TARGET_DIR)/debug/meshsight
CLI_RUN := $(TARGET_DIR)/cli
# Records for the throughput measurement (about 1.4 KB each: 750000 is about 1 GB).
CLI_THROUGHPUT_RECORDS ?= 750000

.PHONY: cli-istio-validate cli-throughput

# `meshsight istio` on a one-pass policy and on a single allowlist: every document must pass
# the schema and unknown-field checks of scripts/validate_istio.py.
cli-istio-validate: pytools
	$(CARGO) build -p meshsight-cli
	@mkdir -p $(CLI_RUN)
	$(CLI_DEBUG_BIN) istio cli/fixtures/one_pass.json --namespace shop --selector app=catalog > $(CLI_RUN)/one_pass-wasmplugin.yaml
	$(CLI_DEBUG_BIN) learn cli/fixtures/mesh.ocsf.ndjson > $(CLI_RUN)/learned.json 2>/dev/null
	$(CLI_DEBUG_BIN) istio $(CLI_RUN)/learned.json --name meshsight-allowlist --namespace shop --selector app=catalog > $(CLI_RUN)/learned-wasmplugin.yaml
	$(VENV)/tools/bin/python -c 'import sys, yaml; sys.path.insert(0, "scripts"); import validate_istio as v; \
	  [v.validate_document(d) for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]; \
	  print("cli-istio-validate:", len(sys.argv) - 1, "rendered WasmPlugin(s) valid")' \
	  $(CLI_RUN)/one_pass-wasmplugin.yaml $(CLI_RUN)/learned-wasmplugin.yaml

# Generates ~1 GB of OCSF records, then times learn and replay on it and reports records/s and
# the peak resident memory (bounded: streaming).
cli-throughput:
	$(CARGO) build --release -p meshsight-cli
	@mkdir -p $(CLI_RUN)
	$(CLI_BIN) generate --records $(CLI_THROUGHPUT_RECORDS) > $(CLI_RUN)/big.ndjson
	@ls -l $(CLI_RUN)/big.ndjson
	/usr/bin/time -f 'learn: %e s, peak RSS %M KB' $(CLI_BIN) learn $(CLI_RUN)/big.ndjson > $(CLI_RUN)/big-learned.json
	/usr/bin/time -f 'replay: %e s, peak RSS %M KB' $(CLI_BIN) replay $(CLI_RUN)/big-learned.json $(CLI_RUN)/big.ndjson --show 0 | head -1

TEST_EXTRA += cli-istio-validate
