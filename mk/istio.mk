# Istio manifests (envoy-config/istio/): schema validation with typo detection, and the build
# contexts of the OCI images that the WasmPlugins reference.

ISTIO_IMAGE_DIR ?= $(TARGET_DIR)/istio-images

ISTIO_POLICIES := $(TARGET_DIR)/istio-policies

.PHONY: istio-validate istio-policies istio-image-context

# Validates every YAML document in envoy-config/istio/ against Istio's CRD schemas
# (cloudcoil-models-istio), refusing unknown fields, then proves with mutated copies that a
# typo, a bad enum value, a wrong order or failure strategy is refused (--self-test).
istio-validate: pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --self-test

# The manifests' pluginConfigs in the real filters: Envoy with each filter alone and the three
# chained, on exactly those policies (Envoy refuses to start when a filter refuses its policy),
# and one request through each.
istio-policies: wasm envoy pytools
	$(VENV)/tools/bin/python scripts/validate_istio.py --dump-plugin-configs $(ISTIO_POLICIES)
	$(CARGO) build -p meshsight-test-harness --bin meshsight-bench
	$(TARGET_DIR)/debug/meshsight-bench --check --policies $(ISTIO_POLICIES)

# Writes $(ISTIO_IMAGE_DIR)/<filter>/{Dockerfile,plugin.wasm} from the release .wasm files and
# prints each module's sha256; build and push as envoy-config/istio/README.md shows.
istio-image-context: wasm
	@for f in $(FILTERS); do \
	  mkdir -p $(ISTIO_IMAGE_DIR)/$$f; \
	  cp $(WASM_DIR)/meshsight_$$f.wasm $(ISTIO_IMAGE_DIR)/$$f/plugin.wasm; \
	  printf 'FROM scratch\nCOPY plugin.wasm ./\n' > $(ISTIO_IMAGE_DIR)/$$f/Dockerfile; \
	  echo "$(ISTIO_IMAGE_DIR)/$$f: sha256 $$(sha256sum $(WASM_DIR)/meshsight_$$f.wasm | cut -d' ' -f1)"; \
	done

TEST_EXTRA += istio-validate istio-policies
