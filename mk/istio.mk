# Istio manifests (envoy-config/istio/): schema validation with typo detection, the policies
# loaded in the real module, and a Docker build context of the module's image. The image every
# WasmPlugin references, with its pinned manifest digest, is `make oci`'s (mk/oci.mk,
# `make istio-pin`): one module, meshsight.wasm, the job chosen by the plugin's root id.

ISTIO_IMAGE_DIR ?= $(TARGET_DIR)/istio-images

ISTIO_POLICIES := $(TARGET_DIR)/istio-policies

.PHONY: istio-validate istio-policies istio-image-context

# Validates every YAML document in envoy-config/istio/ against Istio's CRD schemas
# (cloudcoil-models-istio), refusing unknown fields, and meshsight's contract (root ids, job
# order, failure strategy, the access-log blocks), then proves with mutated copies that a typo,
# a bad enum value, a wrong order or failure strategy, a drifted policy or template is refused
# (--self-test).
istio-validate: pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --self-test

# The manifests' pluginConfigs in the real module: Envoy with the one-plugin document, each job
# alone, the jobs in one pass and as three plugins, and every other plugin's document (client
# side, alternative deployments), on exactly those policies (Envoy refuses to start when the
# module refuses its policy), and one request through each.
istio-policies: wasm envoy pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --dump-plugin-configs $(ISTIO_POLICIES)
	$(CARGO) build -p meshsight-bench
	$(TARGET_DIR)/debug/meshsight-bench --check --policies $(ISTIO_POLICIES)

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

TEST_EXTRA += istio-validate istio-policies
