# OCI images Istio can pull (`oci://` in a WasmPlugin).
#
# `make oci`: scripts/oci_image.py writes an OCI image layout of each module (config
# application/vnd.module.wasm.config.v1+json, one layer application/vnd.module.wasm.content.layer.v1+wasm),
# pushes it with skopeo to Debian's docker-registry started on 127.0.0.1 (stopped by its PID),
# pulls it back, compares the layer with the .wasm byte for byte and prints the manifest digest:
# that is the WasmPlugin `sha256` for an oci:// url, not the .wasm file's sha256. Then it checks
# that every shipped WasmPlugin under envoy-config/istio/ carries that digest (scripts/istio_pin.py:
# a stale one fails with the file and the expected digest; `make istio-pin` rewrites them) and
# that an altered or a missing digest is refused.
#
# Envoy's own remote fetch (vm_config.code.remote, http_uri + sha256: the module loads and
# enforces its allowlist, a wrong sha256 is refused) is an e2e test on the rig,
# test-harness/e2e/tests/e2e_remote_fetch.rs, run by `make e2e` in every Envoy of ENVOY_VERSIONS.

OCI_WORK := $(TARGET_DIR)/oci
OCI_TAG ?= 0.1.0

.PHONY: oci oci-tools istio-pin

# skopeo and docker-registry from Debian (apt-get; skipped when present).
oci-tools:
	@command -v skopeo >/dev/null && command -v docker-registry >/dev/null || { \
	  apt-get update && apt-get install -y skopeo docker-registry; }

oci: wasm oci-tools pytools
	$(VENV)/tools/bin/python scripts/oci_image.py --work $(OCI_WORK) --tag $(OCI_TAG) \
	  $(foreach m,$(MODULES),$(WASM_DIR)/$(m).wasm)
	$(VENV)/tools/bin/python scripts/istio_pin.py --self-test --wasm $(WASM_DIR)/meshsight.wasm

# Writes the manifest digest of the image `make oci` builds from this tree into every shipped
# meshsight WasmPlugin (`sha256:` after its `url:`). Any change to the module's code changes the
# digest: run this after such a change (and after merging one), and commit the manifests.
istio-pin: wasm pytools
	$(VENV)/tools/bin/python scripts/istio_pin.py --wasm $(WASM_DIR)/meshsight.wasm

TEST_EXTRA += oci
