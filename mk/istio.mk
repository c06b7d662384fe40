# Istio manifests (envoy-config/istio/): schema validation with typo detection, the policies
# in the real module (an e2e test), and a Docker build context of the module's image. The image every
# WasmPlugin references, with its pinned manifest digest, is `make oci`'s (mk/oci.mk,
# `make istio-pin`): one module, meshsight.wasm, the job chosen by the plugin's root id.

ISTIO_IMAGE_DIR ?= $(TARGET_DIR)/istio-images

.PHONY: istio-validate istio-policies istio-image-context

# Validates every YAML document in envoy-config/istio/ against Istio's CRD schemas
# (cloudcoil-models-istio), refusing unknown fields, and meshsight's contract (root ids, job
# order, failure strategy, the access-log blocks), then proves with mutated copies that a typo,
# a bad enum value, a wrong order or failure strategy, a drifted policy or template is refused
# (--self-test).
istio-validate: pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --self-test

# The manifests' pluginConfigs in the real module: the e2e test
# test-harness/e2e/tests/e2e_istio_policies.rs starts Envoy with the one-plugin document, each
# section alone, the sections as three plugins, and every other plugin's document (client side,
# egress, waypoint, access log), on exactly those policies (dumped by validate_istio.py), and
# checks what each does with one request of each kind. `make e2e-all` (so `make test`) runs it on
# every Envoy in ENVOY_VERSIONS; this target runs it alone on $(ENVOY_VERSION).
istio-policies: wasm envoy pytools
	$(CARGO) test -p meshsight-e2e --features e2e --test e2e_istio_policies -- --nocapture

# Writes $(ISTIO_IMAGE_DIR)/meshsight/{Dockerfile,plugin.wasm} from the release meshsight.wasm
# and prints the module's sha256 (for http urls). An image `docker build` makes from it is a
# Docker image with another manifest digest than the pinned one: push `make oci`'s layout instead.
istio-image-context: wasm
	@for m in $(MODULES); do \
	  rm -rf $(ISTIO_IMAGE_DIR)/$$m; mkdir -p $(ISTIO_IMAGE_DIR)/$$m; \
	  cp $(WASM_DIR)/$$m.wasm $(ISTIO_IMAGE_DIR)/$$m/plugin.wasm; \
	  printf 'FROM scratch\nCOPY plugin.wasm ./\n' > $(ISTIO_IMAGE_DIR)/$$m/Dockerfile; \
	  echo "$(ISTIO_IMAGE_DIR)/$$m: file sha256 $$(sha256sum $(WASM_DIR)/$$m.wasm | cut -d' ' -f1) (for http urls; an oci:// url needs the manifest digest: make oci)"; \
	done

TEST_EXTRA += istio-validate
