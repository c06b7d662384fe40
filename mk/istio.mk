# Istio manifests (envoy-config/istio/): schema validation with typo detection, and the build
# contexts of the OCI images that the WasmPlugins reference.

ISTIO_PYTHON ?= .venv/tools/bin/python
ISTIO_IMAGE_DIR ?= target/istio-images
ISTIO_WASM_DIR ?= $(or $(CARGO_TARGET_DIR),target)/wasm32-wasip1/release

.PHONY: istio-validate istio-image-context

# Validates every YAML document in envoy-config/istio/ against Istio's CRD schemas, refusing
# unknown fields, then proves with mutated copies that a typo is refused (--self-test).
istio-validate:
	@test -x $(ISTIO_PYTHON) || { echo "$(ISTIO_PYTHON) missing: run 'make tools-venv' (or make test)"; exit 1; }
	$(ISTIO_PYTHON) scripts/validate_istio.py --self-test

# Writes target/istio-images/<filter>/{Dockerfile,plugin.wasm} from the release .wasm files
# (build them first) and prints each module's sha256. See envoy-config/istio/README.md.
istio-image-context:
	@for f in allowlist mirror audit; do \
	  wasm=$(ISTIO_WASM_DIR)/meshsight_$$f.wasm; \
	  test -f $$wasm || { echo "$$wasm missing: build the filters first"; exit 1; }; \
	  mkdir -p $(ISTIO_IMAGE_DIR)/$$f; \
	  cp $$wasm $(ISTIO_IMAGE_DIR)/$$f/plugin.wasm; \
	  printf 'FROM scratch\nCOPY plugin.wasm ./\n' > $(ISTIO_IMAGE_DIR)/$$f/Dockerfile; \
	  echo "$(ISTIO_IMAGE_DIR)/$$f: sha256 $$(sha256sum $$wasm | cut -d' ' -f1)"; \
	done

TEST_EXTRA += istio-validate
