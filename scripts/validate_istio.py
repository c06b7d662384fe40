#!/usr/bin/env python3
"""Validate every YAML document under envoy-config/istio/ against Istio's CRD schemas.

The schemas are the pydantic models of the PyPI package `cloudcoil-models-istio` (generated from
Istio's CRDs). Those models silently ignore unknown fields, which would let a typo such as
`failStratgy: FAIL_CLOSE` pass and be dropped by the API server's pruning, so this script also
walks each validated model next to its input and rejects every key the schema does not define.
Free-form fields (`pluginConfig`, `metadata.labels`, an EnvoyFilter's `patch.value`...) are
typed as plain mappings in the schema and are not walked into. The models also drop the CRDs'
CEL rules (`x-kubernetes-validations`: "only one of targetRefs or selector can be set", the kinds
a targetRef may name...), so those are evaluated too, from scripts/istio-crd/ (extracted from
the same Istio release). The one install document (`IstioOperator`, whose CRD is not an Istio
API resource any more) and the ambient-mode documents (`Namespace`, the waypoint's Gateway API
`Gateway`) are checked against the fields meshsight uses, unknown keys refused as well.

On top of the schema it checks meshsight's own contract. Each folder is one deployment (the
files applied together; subfolders are alternatives to the top folder's plugins). For its
WasmPlugins (label app.kubernetes.io/part-of: meshsight):
  * `pluginName` is a root id of meshsight.wasm: `meshsight` (every section of the one policy
    document `{"allowlist", "mirror", "audit"}`, in one pass) or `meshsight_allowlist`,
    `meshsight_mirror`, `meshsight_audit` (one job, its policy alone);
  * per workload and traffic mode each job runs once, in the order allowlist, mirror, audit
    (phase, then priority descending, no ties);
  * a plugin that enforces an allowlist fails closed, every other plugin fails open;
  * `type: HTTP`, a `match` mode, an `https://` or `oci://` module has a `sha256` (for oci://
    the image's manifest digest: scripts/istio_pin.py checks its value);
  * a plugin attached with `targetRefs` to a Gateway: the Gateway is declared here, is a
    waypoint (`istio-waypoint`, HBONE on 15008), a Namespace uses it, and the plugin does not
    match only CLIENT (a waypoint's chain is inbound);
  * the allowlist and mirror policies of one workload and mode agree across deployments.
And for the audit's `access_log` sink: the Envoy access-log blocks carried by an IstioOperator
or an EnvoyFilter are envoy-config/access-log/'s verbatim, and a Telemetry names a provider
that an IstioOperator here declares, with the filter those blocks use.

Usage:
  validate_istio.py [DIR]        validate DIR (default: envoy-config/istio)
  validate_istio.py --self-test  validate the real folder, then check that mutated copies (a
                                 misspelt field, a bad enum value, a wrong order or failure
                                 strategy, a policy or template that drifted) are refused
  validate_istio.py --dump-plugin-configs OUT
                                 validate, then write the top folder's inbound (SERVER)
                                 one-plugin document as OUT/meshsight.json and its sections as
                                 OUT/allowlist.json, OUT/mirror.json, OUT/audit.json, and every
                                 other meshsight plugin's pluginConfig as
                                 OUT/extra/<meshsight|allowlist|mirror|audit>--<plugin>.json
                                 (`make istio-policies` and `make bench` run these exact
                                 policies in a real Envoy)
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pydantic
import yaml
from cloudcoil.resources import Resource

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "envoy-config" / "istio"

# apiVersion -> module of cloudcoil-models-istio holding its kinds.
API_MODULES = {
    "extensions.istio.io/v1alpha1": "cloudcoil.models.istio.extensions.v1alpha1",
    "networking.istio.io/v1": "cloudcoil.models.istio.networking.v1",
    "networking.istio.io/v1beta1": "cloudcoil.models.istio.networking.v1beta1",
    "networking.istio.io/v1alpha3": "cloudcoil.models.istio.networking.v1alpha3",
    "security.istio.io/v1": "cloudcoil.models.istio.security.v1",
    "security.istio.io/v1beta1": "cloudcoil.models.istio.security.v1beta1",
    "telemetry.istio.io/v1": "cloudcoil.models.istio.telemetry.v1",
    "telemetry.istio.io/v1alpha1": "cloudcoil.models.istio.telemetry.v1alpha1",
}

# Istio inserts WasmPlugins by phase in this order; UNSPECIFIED_PHASE goes last, right before
# the router. Inside a phase, higher `priority` runs first.
PHASE_ORDER = {"AUTHN": 0, "AUTHZ": 1, "STATS": 2, "UNSPECIFIED_PHASE": 3, None: 3}
# meshsight's jobs in the order they must run.
JOBS = ("allowlist", "mirror", "audit")
# Root ids of meshsight.wasm (shared/src/plugin.rs): the one-pass plugin, or one job alone.
ONE_PASS_ROOT_ID = "meshsight"
JOB_ROOT_IDS = {f"meshsight_{job}": job for job in JOBS}
# Jobs whose policies must agree when one workload has several deployments (the audit may
# differ: the access-log variant changes its sink).
SHARED_POLICY_JOBS = ("allowlist", "mirror")

ACCESS_LOG_DIR = ROOT / "envoy-config" / "access-log"
# The access-log filter of every block in envoy-config/access-log/.
ACCESS_LOG_FILTER = "'wasm.meshsight_ocsf' in filter_state"


class Problem(Exception):
    """A document that does not pass, with where it is."""


def model_class(api_version: str, kind: str) -> type[pydantic.BaseModel]:
    """The cloudcoil model for `apiVersion`/`kind`; unknown ones are an error, not a pass."""
    module_name = API_MODULES.get(api_version)
    if module_name is None:
        raise Problem(f"apiVersion {api_version!r} is not an Istio API this validator knows")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise Problem(f"apiVersion {api_version!r}: models not installed ({err})") from err
    cls = getattr(module, kind, None)
    # Only top-level resources (not the nested models the module also defines, like `Match`).
    if not (isinstance(cls, type) and issubclass(cls, Resource)):
        raise Problem(f"kind {kind!r} does not exist in {api_version}")
    return cls


def unknown_fields(model: Any, raw: Any, path: str) -> Iterator[str]:
    """Yield `path.key` for every key of `raw` that the model's schema does not define.

    `model` is the validated value, so for unions the branch pydantic chose is walked.
    """
    if isinstance(model, pydantic.BaseModel):
        if not isinstance(raw, dict):
            return
        fields = type(model).model_fields
        # The CRD knows a field only by its wire name (the alias, camelCase); the models also
        # accept the Python name (`fail_strategy`), which the API server would reject.
        known = {(info.alias or name): name for name, info in fields.items()}
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in known:
                yield where
                continue
            yield from unknown_fields(getattr(model, known[key]), value, where)
    elif isinstance(model, (list, tuple)) and isinstance(raw, list):
        for index, (item, raw_item) in enumerate(zip(model, raw)):
            yield from unknown_fields(item, raw_item, f"{path}[{index}]")
    elif isinstance(model, dict) and isinstance(raw, dict):
        for key, item in model.items():
            if key in raw:
                yield from unknown_fields(item, raw[key], f"{path}.{key}")


def validate_document(doc: Any) -> pydantic.BaseModel | None:
    """Validate one YAML document strictly; raise Problem with every error found."""
    if not isinstance(doc, dict):
        raise Problem("document is not a mapping")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise Problem("document needs string `apiVersion` and `kind`")
    if (api_version, kind) == ("install.istio.io/v1alpha1", "IstioOperator"):
        check_istio_operator(doc)
        if not (doc.get("metadata") or {}).get("name"):
            raise Problem("metadata.name is required")
        return None
    if (api_version, kind) in OTHER_KINDS:
        problems = list(strict_fields(OTHER_KINDS[(api_version, kind)], doc, ""))
        if problems:
            raise Problem("; ".join(problems))
        if not (doc.get("metadata") or {}).get("name"):
            raise Problem("metadata.name is required")
        return None
    cls = model_class(api_version, kind)
    try:
        model = cls.model_validate(doc)
    except pydantic.ValidationError as err:
        lines = []
        for error in err.errors():
            where = ".".join(str(part) for part in error["loc"])
            lines.append(f"{where}: {error['msg']}")
        raise Problem("; ".join(lines)) from err
    extra = list(unknown_fields(model, doc, ""))
    if extra:
        raise Problem("; ".join(f"{where}: field not defined by the {kind} schema" for where in extra))
    broken = list(cel_problems(api_version, kind, doc))
    if broken:
        raise Problem("; ".join(broken))
    if not (doc.get("metadata") or {}).get("name"):
        raise Problem("metadata.name is required")
    return model


# The CEL rules (x-kubernetes-validations) of Istio's CRDs, which the schema models leave out:
# scripts/istio-crd/cel-rules-1.24.2.yaml, extracted verbatim from the CRDs of the release the
# models are generated from. Each rule text maps to its evaluation here (a transcription of the
# CEL); a rule without one is an error, so a refreshed file cannot be skipped silently.
CEL_RULES_FILE = ROOT / "scripts" / "istio-crd" / "cel-rules-1.24.2.yaml"
URL_SCHEMES = ("", "http", "https", "oci", "file")


class CelError(Exception):
    """A rule that fails to evaluate (CEL's `no such key`): the API server refuses the object."""


def cel_key(obj: Any, name: str) -> Any:
    """`obj.name` in CEL: an error when the field is not set."""
    if not isinstance(obj, dict) or name not in obj:
        raise CelError(f"no such key: {name}")
    return obj[name]


def cel_has(obj: Any, name: str) -> bool:
    return isinstance(obj, dict) and name in obj


def go_duration(text: Any) -> float:
    """Seconds of a Go duration (`1.5s`, `100ms`, `1h2m`), as CEL's duration() parses it."""
    units = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    match = re.fullmatch(r"([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|ms|s|m|h))+", str(text))
    if not match:
        raise CelError(f"invalid duration {text!r}")
    total = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)", str(text)))
    return -total if match.group(1) == "-" else total


def url_scheme_allowed(value: str) -> bool:
    """Kubernetes' isURL()/url().getScheme() (Go's url.ParseRequestURI) for the WasmPlugin rule."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", value, re.S)
    if match and match.group(2).startswith("/"):
        return match.group(1).lower() in URL_SCHEMES
    if value.startswith("/"):
        return True
    # Not a URL by itself: the rule retries as http://<value>, which parses when it has no
    # spaces or control characters.
    return not re.search(r"[\s\x00-\x1f\x7f]", value)


TARGET_KINDS = [["core", "Service"], ["", "Service"], ["gateway.networking.k8s.io", "Gateway"],
                ["networking.istio.io", "ServiceEntry"]]
CEL_EVALUATORS = {
    "(has(self.selector)?1:0)+(has(self.targetRef)?1:0)+(has(self.targetRefs)?1:0)<=1":
        lambda s: sum(cel_has(s, k) for k in ("selector", "targetRef", "targetRefs")) <= 1,
    "(has(self.workloadSelector)?1:0)+(has(self.targetRefs)?1:0)<=1":
        lambda s: sum(cel_has(s, k) for k in ("workloadSelector", "targetRefs")) <= 1,
    "self.all(key, !key.contains('*'))": lambda s: all("*" not in key for key in s),
    "self.all(key, key.size() != 0)": lambda s: all(len(key) != 0 for key in s),
    "!self.contains('*')": lambda s: "*" not in s,
    "[self.group, self.kind] in [['core','Service'], ['','Service'], ['gateway.networking.k8s.io','Gateway'], "
    "['networking.istio.io','ServiceEntry']]":
        lambda s: [cel_key(s, "group"), cel_key(s, "kind")] in TARGET_KINDS,
    "self.size() == 0": lambda s: len(s) == 0,
    "isURL(self) ? (url(self).getScheme() in ['', 'http', 'https', 'oci', 'file']) : (isURL('http://' + self) "
    "&& url('http://' +self).getScheme() in ['', 'http', 'https', 'oci', 'file'])": url_scheme_allowed,
    "(has(self.valueFrom) ? self.valueFrom : '') != 'HOST' || !has(self.value)":
        lambda s: s.get("valueFrom", "") != "HOST" or "value" not in s,
    "duration(self) >= duration('1ms')": lambda s: go_duration(s) >= 0.001,
    "((has(self.operation) ? self.operation : '') == 'UPSERT') ? self.value != '' : true":
        lambda s: cel_key(s, "value") != "" if s.get("operation", "") == "UPSERT" else True,
    "((has(self.operation) ? self.operation : '') == 'REMOVE') ? !has(self.value) : true":
        lambda s: "value" not in s if s.get("operation", "") == "REMOVE" else True,
}
@functools.cache
def cel_rules() -> dict[str, list[dict]]:
    """The vendored rules by `<apiVersion>/<kind>`."""
    return yaml.safe_load(CEL_RULES_FILE.read_text())


def nodes_at(doc: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(where, value) for each node of `doc` at a rule's path (`[]`: each item, `.*`: each value)."""
    current: list[tuple[str, Any]] = [("", doc)]
    for name, items in re.findall(r"\.([^.\[]+)|(\[\])", path):
        following = []
        for where, value in current:
            if items and isinstance(value, list):
                following.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
            elif name == "*" and isinstance(value, dict):
                following.extend((f"{where}.{key}", item) for key, item in value.items())
            elif name and name != "*" and isinstance(value, dict) and name in value:
                following.append((f"{where}.{name}" if where else name, value[name]))
        current = following
    yield from current


def cel_problems(api_version: str, kind: str, doc: dict) -> Iterator[str]:
    """Every CEL rule of the CRD that `doc` breaks, with the CRD's message."""
    rules = cel_rules().get(f"{api_version}/{kind}")
    if rules is None:
        yield f"{api_version} {kind}: no CEL rules of its CRD in {CEL_RULES_FILE.name} (extract them)"
        return
    for rule in rules:
        evaluate = CEL_EVALUATORS.get(rule["rule"])
        for where, value in nodes_at(doc, rule["path"]):
            if evaluate is None:
                yield f"{where}: CEL rule {rule['rule']!r} has no evaluator in validate_istio.py"
                continue
            try:
                ok = evaluate(value)
            except CelError as err:
                yield f"{where}: {rule['message']} (CEL rule fails to evaluate: {err})"
                continue
            except (TypeError, AttributeError):
                ok = False
            if not ok:
                yield f"{where}: {rule['message']} (CRD rule {rule['rule']!r})"


# Kubernetes and Gateway API resources that a deployment here includes (the waypoint's Gateway
# and the namespace that uses it). No schema models for them are installed, so they are checked
# like the IstioOperator below: the fields meshsight uses, with their types, unknown keys
# refused. The waypoint contract (check_waypoints) checks their values.
OBJECT_META = {"name": str, "namespace": str, "labels": dict, "annotations": dict}
OTHER_KINDS = {
    ("v1", "Namespace"): {"apiVersion": str, "kind": str, "metadata": OBJECT_META},
    # The optional bootstrap fragment of memory/ (Istio's `sidecar.istio.io/bootstrapOverride`).
    ("v1", "ConfigMap"): {
        "apiVersion": str,
        "kind": str,
        "metadata": OBJECT_META,
        "data": {"custom_bootstrap.json": str},
    },
    ("gateway.networking.k8s.io/v1", "Gateway"): {
        "apiVersion": str,
        "kind": str,
        "metadata": OBJECT_META,
        "spec": {
            "gatewayClassName": str,
            "listeners": [{"name": str, "port": int, "protocol": str}],
        },
    },
}


# The IstioOperator fields meshsight uses (its `meshConfig.extensionProviders` for the audit's
# access_log sink), as Istio's MeshConfig defines them; any other key is refused. A dict is a
# message (key -> field), `[...]` a list of it, `str`/`int` a scalar, `dict` a free-form map.
LOG_FORMAT = {"text": str, "labels": dict}
ISTIO_OPERATOR = {
    "apiVersion": str,
    "kind": str,
    "metadata": {"name": str, "namespace": str, "labels": dict},
    "spec": {
        "meshConfig": {
            "extensionProviders": [
                {
                    "name": str,
                    "envoyFileAccessLog": {"path": str, "logFormat": LOG_FORMAT},
                    "envoyOtelAls": {"service": str, "port": int, "logName": str, "logFormat": LOG_FORMAT},
                }
            ]
        }
    },
}


def strict_fields(schema: Any, raw: Any, path: str) -> Iterator[str]:
    """Yield a problem for every key or type of `raw` that `schema` (see ISTIO_OPERATOR) refuses."""
    if isinstance(schema, dict):
        if not isinstance(raw, dict):
            yield f"{path}: expected a mapping"
            return
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in schema:
                yield f"{where}: field not defined by the schema"
            else:
                yield from strict_fields(schema[key], value, where)
    elif isinstance(schema, list):
        if not isinstance(raw, list):
            yield f"{path}: expected a list"
            return
        for index, item in enumerate(raw):
            yield from strict_fields(schema[0], item, f"{path}[{index}]")
    elif not isinstance(raw, schema) or (schema is int and isinstance(raw, bool)):
        yield f"{path}: expected {schema.__name__}"


def access_log_template() -> str:
    """The OCSF line of envoy-config/access-log/ocsf_http_activity.tmpl."""
    return (ACCESS_LOG_DIR / "ocsf_http_activity.tmpl").read_text().rstrip("\n")


def check_istio_operator(doc: dict) -> None:
    """The install document: known fields only, and each provider's format is the template."""
    problems = list(strict_fields(ISTIO_OPERATOR, doc, ""))
    providers = ((doc.get("spec") or {}).get("meshConfig") or {}).get("extensionProviders") or []
    for index, provider in enumerate(providers if isinstance(providers, list) else []):
        if not isinstance(provider, dict) or not provider.get("name"):
            problems.append(f"spec.meshConfig.extensionProviders[{index}].name is required")
            continue
        for kind in ("envoyFileAccessLog", "envoyOtelAls"):
            text = ((provider.get(kind) or {}).get("logFormat") or {}).get("text")
            if kind in provider and text != access_log_template():
                problems.append(
                    f"spec.meshConfig.extensionProviders[{index}] ({provider['name']}): "
                    f"{kind}.logFormat.text differs from envoy-config/access-log/ocsf_http_activity.tmpl"
                )
    if problems:
        raise Problem("; ".join(problems))


WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def wasm_extension_configs(doc: dict) -> Iterator[tuple[str, dict]]:
    """(where, patch value) of each EXTENSION_CONFIG patch of `doc` that adds a Wasm filter."""
    for index, patch in enumerate((doc.get("spec") or {}).get("configPatches") or []):
        value = (patch.get("patch") or {}).get("value") or {}
        if patch.get("applyTo") == "EXTENSION_CONFIG" and (value.get("typed_config") or {}).get("@type") == WASM_FILTER_TYPE:
            yield f"spec.configPatches[{index}].patch.value", value


def extension_policy(value: dict) -> tuple[Any, list[str]]:
    """The meshsight policy document of a Wasm extension config, and what is wrong with it."""
    where = "typed_config.config"
    config = (value.get("typed_config") or {}).get("config") or {}
    problems = []
    if config.get("root_id") != ONE_PASS_ROOT_ID:
        problems.append(f"{where}.root_id must be {ONE_PASS_ROOT_ID!r} (the one pass), not {config.get('root_id')!r}")
    remote = (((config.get("vm_config") or {}).get("code") or {}).get("remote") or {})
    uri = (remote.get("http_uri") or {}).get("uri", "")
    if not uri.startswith("oci://"):
        problems.append(f"{where}.vm_config.code.remote.http_uri.uri must be the module's oci:// image, not {uri!r}")
    text = (config.get("configuration") or {}).get("value")
    try:
        policy = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError as err:
        return None, problems + [f"{where}.configuration.value is not JSON: {err}"]
    if not isinstance(policy, dict):
        return None, problems + [f"{where}.configuration.value must hold the policy document as JSON text"]
    unknown = [key for key in policy if key not in JOBS]
    problems.extend(f"{where}.configuration.value.{key}: not a section of the meshsight document" for key in unknown)
    holds = bool((policy.get("mirror") or {}).get("hold_for_body"))
    if holds and config.get("allow_on_headers_stop_iteration") is not True:
        problems.append(
            f"{where}: mirror.hold_for_body needs allow_on_headers_stop_iteration: true, or every held "
            "request waits for a body the module is never handed"
        )
    return policy, problems


def check_envoy_filter(doc: dict) -> list[str]:
    """A meshsight EnvoyFilter adds access loggers (each must be envoy-config/access-log/'s block)
    or the module as an extension config with the HTTP filter that uses it."""
    problems = []
    names = set()
    for where, value in wasm_extension_configs(doc):
        names.add(value.get("name"))
        problems.extend(f"{where}.{problem}" for problem in extension_policy(value)[1])
    for index, patch in enumerate((doc.get("spec") or {}).get("configPatches") or []):
        value = (patch.get("patch") or {}).get("value") or {}
        discovery = value.get("config_discovery")
        if patch.get("applyTo") == "HTTP_FILTER" and discovery is not None:
            where = f"spec.configPatches[{index}].patch.value"
            if value.get("name") not in names:
                problems.append(f"{where}.name {value.get('name')!r} is no extension config this EnvoyFilter adds")
            if WASM_FILTER_TYPE not in (discovery.get("type_urls") or []):
                problems.append(f"{where}.config_discovery.type_urls must list {WASM_FILTER_TYPE}")
    if names and not any(
        patch.get("applyTo") == "HTTP_FILTER" and ((patch.get("patch") or {}).get("value") or {}).get("name") in names
        for patch in (doc.get("spec") or {}).get("configPatches") or []
    ):
        problems.append("spec.configPatches: the extension config is added but no HTTP_FILTER patch inserts it")
    blocks = {}
    for path in sorted(ACCESS_LOG_DIR.glob("*.yaml")):
        blocks[path.name] = path.read_text()
    for index, patch in enumerate((doc.get("spec") or {}).get("configPatches") or []):
        value = (patch.get("patch") or {}).get("value") or {}
        for item_index, item in enumerate((value.get("typed_config") or {}).get("access_log") or []):
            found = False
            for name, text in blocks.items():
                # Fill the block's placeholders with what this item has in their place.
                filled = fill_placeholders(text, item)
                if filled is not None and yaml.safe_load(filled) == [item]:
                    found = True
                    break
            if not found:
                problems.append(
                    f"spec.configPatches[{index}].patch.value.typed_config.access_log[{item_index}] "
                    f"is not one of envoy-config/access-log/{{{','.join(blocks)}}} verbatim"
                )
    return problems


def fill_placeholders(text: str, item: Any) -> str | None:
    """`text` (an access-log block) with each ${NAME} replaced by the value `item` has there."""
    names = sorted(set(re.findall(r"\$\{([A-Z_]+)\}", text)))
    if not names:
        return text
    # Find each placeholder's value by walking the template's parsed shape next to the item.
    marker = {name: f"meshsight_placeholder_{name}" for name in names}
    shape = yaml.safe_load(re.sub(r"\$\{([A-Z_]+)\}", lambda m: marker[m.group(1)], text))
    values: dict[str, str] = {}

    def walk(template: Any, actual: Any) -> None:
        if isinstance(template, dict) and isinstance(actual, dict):
            for key, sub in template.items():
                if key in actual:
                    walk(sub, actual[key])
        elif isinstance(template, list) and isinstance(actual, list):
            for sub, act in zip(template, actual):
                walk(sub, act)
        elif isinstance(template, str) and isinstance(actual, str):
            for name, mark in marker.items():
                if template == mark:
                    values[name] = actual

    walk(shape, [item])
    if set(values) != set(names):
        return None
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: json.dumps(values[m.group(1)]), text)


def is_meshsight(doc: dict) -> bool:
    """Whether a document belongs to meshsight (label app.kubernetes.io/part-of)."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/part-of") == "meshsight"


def plugin_jobs(spec: dict) -> tuple[list[str], dict[str, Any], list[str]]:
    """The jobs a meshsight WasmPlugin runs, each job's policy, and what is wrong."""
    root_id = spec.get("pluginName")
    config = spec.get("pluginConfig") or {}
    if root_id == ONE_PASS_ROOT_ID:
        unknown = [key for key in config if key not in JOBS]
        if unknown:
            return [], {}, [
                f"spec.pluginConfig.{key}: not a section of the meshsight document "
                f"(one of {', '.join(JOBS)})"
                for key in unknown
            ]
        jobs = [job for job in JOBS if job in config]
        if not jobs:
            return [], {}, [f"spec.pluginConfig: the meshsight document needs a section ({', '.join(JOBS)})"]
        return jobs, {job: config[job] for job in jobs}, []
    if root_id in JOB_ROOT_IDS:
        job = JOB_ROOT_IDS[root_id]
        return [job], {job: config}, []
    roots = ", ".join([ONE_PASS_ROOT_ID, *JOB_ROOT_IDS])
    return [], {}, [f"spec.pluginName must be a root id of meshsight.wasm ({roots}), not {root_id!r}"]


def enforces_allowlist(policies: dict[str, Any]) -> bool:
    """Whether the plugin answers requests its allowlist denies (mode enforce, the default)."""
    allowlist = policies.get("allowlist")
    return isinstance(allowlist, dict) and allowlist.get("mode", "enforce") == "enforce"


class Plugin:
    """One meshsight WasmPlugin with where it is and what it runs."""

    def __init__(self, where: str, deployment: str, doc: dict):
        self.where = where
        self.deployment = deployment
        self.doc = doc
        self.spec = doc["spec"]
        self.name = doc["metadata"]["name"]
        self.jobs, self.policies, self.problems = plugin_jobs(self.spec)

    def rank(self) -> tuple[int, int]:
        return (PHASE_ORDER.get(self.spec.get("phase"), 3), -int(self.spec.get("priority") or 0))

    def modes(self) -> list[str]:
        return [match.get("mode", "UNDEFINED") for match in self.spec.get("match") or [{}]]

    def workload(self) -> tuple[str, str]:
        """(namespace, what the plugin attaches to: its selector's labels or its targetRefs)."""
        namespace = (self.doc.get("metadata") or {}).get("namespace", "")
        if self.spec.get("targetRefs"):
            refs = sorted(f"{r.get('kind')}/{r.get('name')}" for r in self.spec["targetRefs"])
            return namespace, "targetRefs " + ", ".join(refs)
        selector = repr(sorted(((self.spec.get("selector") or {}).get("matchLabels") or {}).items()))
        return namespace, selector


def check_meshsight_plugins(plugins: list[Plugin]) -> list[str]:
    """meshsight's root-id, ordering, failure-mode and consistency contract."""
    problems: list[str] = []
    groups: dict[tuple, list[Plugin]] = {}
    for plugin in plugins:
        spec = plugin.spec
        problems.extend(f"{plugin.where}: {problem}" for problem in plugin.problems)
        if plugin.problems:
            continue
        expected = "FAIL_CLOSE" if enforces_allowlist(plugin.policies) else "FAIL_OPEN"
        if spec.get("failStrategy") != expected:
            why = (
                "it enforces an allowlist (an access control must not fail open)"
                if expected == "FAIL_CLOSE"
                else "it enforces no allowlist (it observes; the workload keeps serving without it)"
            )
            problems.append(f"{plugin.where}: spec.failStrategy must be {expected}: {why}")
        if spec.get("type") != "HTTP":
            problems.append(f"{plugin.where}: spec.type must be HTTP")
        if not spec.get("match"):
            problems.append(f"{plugin.where}: spec.match must name the traffic mode (SERVER or CLIENT)")
        url = spec.get("url", "")
        if url.startswith(("https://", "http://")) and not spec.get("sha256"):
            problems.append(f"{plugin.where}: spec.sha256 is required for a module fetched over http(s)")
        if url.startswith("oci://") and not spec.get("sha256"):
            problems.append(
                f"{plugin.where}: spec.sha256 is required: the manifest digest of the image "
                f"(`make istio-pin` writes it, `make oci` checks it)"
            )
        if not url.startswith(("oci://", "https://", "http://", "file://")):
            problems.append(f"{plugin.where}: spec.url must be oci://, https:// or file://")
        for mode in plugin.modes():
            groups.setdefault((plugin.deployment, *plugin.workload(), mode), []).append(plugin)

    for (deployment, namespace, selector, mode), members in groups.items():
        where_group = f"{deployment or '.'}: {namespace}/{selector} in {mode} mode"
        members.sort(key=Plugin.rank)
        for before, after in zip(members, members[1:]):
            if before.rank() == after.rank():
                problems.append(
                    f"{after.where}: same phase and priority as {before.where}: their order would "
                    f"depend on their names"
                )
        order = [(job, plugin) for plugin in members for job in plugin.jobs]
        for job in JOBS:
            owners = [plugin.where for j, plugin in order if j == job]
            if len(owners) > 1:
                problems.append(f"{where_group}: the {job} job runs in more than one plugin: {', '.join(owners)}")
        for (job_b, plugin_b), (job_a, plugin_a) in zip(order, order[1:]):
            if JOBS.index(job_b) > JOBS.index(job_a):
                problems.append(
                    f"{plugin_b.where} (phase {plugin_b.spec.get('phase')}, priority "
                    f"{plugin_b.spec.get('priority')}) runs its {job_b} job before the {job_a} job of "
                    f"{plugin_a.where} (phase {plugin_a.spec.get('phase')}, priority "
                    f"{plugin_a.spec.get('priority')}) in {mode} mode: the jobs must run in the order "
                    f"{', '.join(JOBS)}"
                )

    # One workload and mode deployed several ways must carry the same policies.
    seen: dict[tuple, tuple[str, Any]] = {}
    for plugin in plugins:
        for mode in plugin.modes():
            for job in SHARED_POLICY_JOBS:
                if job not in plugin.policies:
                    continue
                key = (*plugin.workload(), mode, job)
                if key not in seen:
                    seen[key] = (plugin.where, plugin.policies[job])
                elif seen[key][1] != plugin.policies[job]:
                    problems.append(
                        f"{plugin.where}: the {job} policy differs from {seen[key][0]}'s for the same "
                        f"workload and mode: the deployments of one workload must agree"
                    )
    return problems


def check_access_log(docs: list[tuple[str, dict]]) -> list[str]:
    """Telemetry resources name providers declared here, with the access-log blocks' filter."""
    problems = []
    providers = {
        provider.get("name")
        for _, doc in docs
        if doc.get("kind") == "IstioOperator"
        for provider in ((doc.get("spec") or {}).get("meshConfig") or {}).get("extensionProviders") or []
    }
    for where, doc in docs:
        if doc.get("kind") != "Telemetry" or not is_meshsight(doc):
            continue
        for index, logging in enumerate((doc.get("spec") or {}).get("accessLogging") or []):
            for provider in logging.get("providers") or []:
                if provider.get("name") not in providers:
                    problems.append(
                        f"{where}: spec.accessLogging[{index}] names provider {provider.get('name')!r}, "
                        f"which no IstioOperator here declares ({', '.join(sorted(p for p in providers if p))})"
                    )
            expression = (logging.get("filter") or {}).get("expression")
            if expression != ACCESS_LOG_FILTER:
                problems.append(
                    f"{where}: spec.accessLogging[{index}].filter.expression must be {ACCESS_LOG_FILTER!r} "
                    f"(log only what the meshsight plugin saw)"
                )
    return problems


# A waypoint is a Gateway API Gateway of this class; Istio hands it HBONE on this port.
WAYPOINT_CLASS = "istio-waypoint"
HBONE_PORT = 15008
GATEWAY_GROUP = "gateway.networking.k8s.io"


def check_waypoints(docs: list[tuple[str, dict]]) -> list[str]:
    """meshsight resources attached to a waypoint: the Gateway is one, and something uses it."""
    problems = []
    gateways = {
        ((doc.get("metadata") or {}).get("namespace", ""), doc["metadata"]["name"]): doc
        for _, doc in docs
        if doc.get("kind") == "Gateway" and doc.get("apiVersion", "").startswith(GATEWAY_GROUP + "/")
    }
    namespaces = {doc["metadata"]["name"]: doc for _, doc in docs if doc.get("kind") == "Namespace"}
    for where, gateway in gateways.items():
        spec = gateway.get("spec") or {}
        if spec.get("gatewayClassName") != WAYPOINT_CLASS:
            continue
        listeners = spec.get("listeners") or []
        if not any(l.get("protocol") == "HBONE" and l.get("port") == HBONE_PORT for l in listeners):
            problems.append(
                f"Gateway {where[0]}/{where[1]}: a waypoint needs a listener with protocol HBONE on "
                f"port {HBONE_PORT}"
            )
    for where, doc in docs:
        if doc.get("kind") not in ("WasmPlugin", "Telemetry") or not is_meshsight(doc):
            continue
        spec = doc.get("spec") or {}
        namespace = (doc.get("metadata") or {}).get("namespace", "")
        for index, ref in enumerate(spec.get("targetRefs") or []):
            if ref.get("kind") != "Gateway" or ref.get("group") != GATEWAY_GROUP:
                continue
            name = ref.get("name")
            gateway = gateways.get((namespace, name))
            at = f"{where}: spec.targetRefs[{index}]"
            if gateway is None:
                problems.append(f"{at} names Gateway {namespace}/{name}, which no document here declares")
                continue
            if (gateway.get("spec") or {}).get("gatewayClassName") != WAYPOINT_CLASS:
                problems.append(
                    f"{at} names Gateway {namespace}/{name}, which is not a waypoint (gatewayClassName "
                    f"must be {WAYPOINT_CLASS}): meshsight's waypoint deployment attaches to waypoints"
                )
                continue
            labels = ((namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {}
            if labels.get("istio.io/use-waypoint") != name:
                problems.append(
                    f"{at} names waypoint {namespace}/{name}, but no Namespace here labels "
                    f"istio.io/use-waypoint: {name}: no traffic would reach the plugin"
                )
            if doc.get("kind") == "WasmPlugin":
                modes = [m.get("mode", "UNDEFINED") for m in spec.get("match") or [{}]]
                if modes and all(mode == "CLIENT" for mode in modes):
                    problems.append(
                        f"{where}: spec.match mode CLIENT never applies at a waypoint: its HTTP chain "
                        f"is an inbound one (SERVER)"
                    )
    return problems


def deployment_of(rel: Path) -> str:
    """The deployment a file belongs to: its folder relative to the validated one ('' = top)."""
    return "" if rel.parent == Path(".") else rel.parent.as_posix()


def validate_dir(directory: Path) -> tuple[int, list[str], list[Plugin]]:
    """Validate every *.yaml / *.yml document under `directory`: (documents, problems, plugins)."""
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    problems: list[str] = []
    count = 0
    plugins: list[Plugin] = []
    valid: list[tuple[str, dict]] = []
    if not files:
        problems.append(f"{directory}: no YAML files")
    for path in files:
        rel = path.relative_to(directory)
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as err:
            problems.append(f"{rel}: not valid YAML: {err}")
            continue
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            count += 1
            name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc, dict) else "?"
            where = f"{rel}#{index} ({doc.get('kind', '?') if isinstance(doc, dict) else '?'} {name})"
            try:
                validate_document(doc)
            except Problem as err:
                problems.append(f"{where}: {err}")
                continue
            valid.append((where, doc))
            if doc["kind"] == "WasmPlugin" and is_meshsight(doc):
                plugins.append(Plugin(where, deployment_of(rel), doc))
            if doc["kind"] == "EnvoyFilter" and is_meshsight(doc):
                problems.extend(f"{where}: {problem}" for problem in check_envoy_filter(doc))
    for deployment in sorted({p.deployment for p in plugins}):
        if not any("allowlist" in p.jobs for p in plugins if p.deployment == deployment):
            problems.append(f"{directory / deployment}: no meshsight plugin runs the allowlist")
    if not any(p.deployment == "" for p in plugins):
        problems.append(f"{directory}: no meshsight WasmPlugin in the top folder")
    problems.extend(check_meshsight_plugins(plugins))
    problems.extend(check_access_log(valid))
    problems.extend(check_waypoints(valid))
    return count, problems, plugins


def run(directory: Path) -> int:
    """Validate `directory` and print the outcome; 0 when everything passes."""
    count, problems, _ = validate_dir(directory)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"istio-validate: {len(problems)} problem(s) in {count} document(s) under {directory}")
        return 1
    print(
        f"istio-validate: {count} document(s) under {directory} valid "
        "(schema + CRD CEL rules + unknown fields + meshsight root ids, order, failure strategy, digest, access log, waypoint)"
    )
    return 0


ONE = "meshsight-wasmplugin.yaml"
THREE = "three-plugins/meshsight-three-plugins.yaml"
WAYPOINT = "waypoint/meshsight-wasmplugin.yaml"
BODY_HOLD = "body-hold/meshsight-envoyfilter.yaml"
# Each mutation: (file, text to replace, replacement, text the failure must mention); a compiled
# pattern replaces its first match.
MUTATIONS = [
    (ONE, "failStrategy: FAIL_CLOSE", "failStratgy: FAIL_CLOSE", "failStratgy"),
    (ONE, "failStrategy: FAIL_CLOSE", "failStrategy: FAIL_OPEN", "must be FAIL_CLOSE"),
    (ONE, "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresnt", "imagePullPolicy"),
    (ONE, "  name: meshsight\n", "  nmae: meshsight\n", "nmae"),
    (ONE, "pluginName: meshsight\n", "pluginName: meshsight_all\n", "spec.pluginName"),
    (ONE, "    mirror:\n", "    mirorr:\n", "mirorr"),
    (ONE, "paths: [/healthz, /ready]", "paths: [/healthz]", "differs"),
    ("meshsight-egress-wasmplugin.yaml", "mode: monitor", "mode: enforce", "must be FAIL_CLOSE"),
    ("meshsight-client-wasmplugin.yaml", "  - mode: CLIENT", "  - mdoe: CLIENT", "mdoe"),
    (THREE, "  priority: 200", "  priority: 400", "must run in the order"),
    (THREE, "  priority: 200", "  priority: 300", "same phase and priority"),
    (THREE, "pluginName: meshsight_audit", "pluginName: meshsight_mirror", "more than one plugin"),
    (THREE, "imagePullPolicy: IfNotPresent", "image_pull_policy: IfNotPresent", "image_pull_policy"),
    (THREE, "  phase: STATS", "  phase: AUTHN", "must run in the order"),
    ("access-log/telemetry.yaml", "accessLogging:", "accessLoging:", "accessLoging"),
    ("access-log/telemetry.yaml", "name: meshsight-ocsf-stdout", "name: meshsight-ocsf-stdot", "no IstioOperator"),
    ("access-log/mesh-config.yaml", "envoyFileAccessLog:", "envoyFileAcessLog:", "envoyFileAcessLog"),
    ("access-log/mesh-config.yaml", '"class_uid":4002', '"class_uid":4001', "ocsf_http_activity.tmpl"),
    ("access-log/envoyfilter.yaml", "buffer_flush_interval: 0.2s", "buffer_flush_interval: 2s", "verbatim"),
    ("access-log/envoyfilter.yaml", "context: SIDECAR_INBOUND", "context: SIDECAR_INBUND", "context"),
    # Digests set: an oci:// plugin without its image's manifest digest (make istio-pin).
    (ONE, re.compile(r"  sha256: [0-9a-f]{64}\n"), "", "spec.sha256 is required"),
    (THREE, re.compile(r"  sha256: [0-9a-f]{64}\n"), "  sha256: sha256:0123\n", "sha256"),
    # The CEL rules of Istio's CRD (scripts/istio-crd/), which the schema models leave out.
    (ONE, "url: oci://", "url: ftp://", "url must have schema one of"),
    (ONE, "      app: checkout\n", "      app*: checkout\n", "wildcard not allowed in label key"),
    # The waypoint variant.
    (WAYPOINT, "  targetRefs:\n", "  selector:\n    matchLabels:\n      app: checkout\n  targetRefs:\n",
     "only one of targetRefs or selector can be set"),
    (WAYPOINT, "      kind: Gateway", "      kind: Deployment", "Support kinds are"),
    (WAYPOINT, "    - group: gateway.networking.k8s.io\n      kind: Gateway\n", "    - kind: Gateway\n",
     "no such key: group"),
    (WAYPOINT, "      name: waypoint\n", "      name: waypoint\n      namespace: istio-system\n",
     "cross namespace referencing is not currently supported"),
    (WAYPOINT, "      name: waypoint\n", "      name: waypoint-eu\n", "which no document here declares"),
    (WAYPOINT, "    - mode: SERVER", "    - mode: CLIENT", "never applies at a waypoint"),
    (WAYPOINT, "  targetRefs:", "  targetRfs:", "targetRfs"),
    ("waypoint/waypoint.yaml", "gatewayClassName: istio-waypoint", "gatewayClassName: istio",
     "is not a waypoint"),
    ("waypoint/waypoint.yaml", "protocol: HBONE", "protocol: HTTP", "HBONE"),
    ("waypoint/waypoint.yaml", "  listeners:", "  listners:", "listners"),
    ("waypoint/namespace.yaml", "istio.io/use-waypoint: waypoint", "istio.io/use-waypoint: none",
     "no traffic would reach the plugin"),
    ("waypoint/telemetry.yaml", "      kind: Gateway", "      kind: Pod", "Support kinds are"),
    # The body-holding EnvoyFilter (ECDS).
    (BODY_HOLD, "allow_on_headers_stop_iteration: true", "allow_on_headers_stop_iteration: false",
     "hold_for_body needs allow_on_headers_stop_iteration"),
    (BODY_HOLD, "          name: shop.meshsight-body-hold\n          config_discovery",
     "          name: shop.meshsight-bodyhold\n          config_discovery", "is no extension config"),
    (BODY_HOLD, "root_id: meshsight", "root_id: meshsight_mirror", "root_id must be"),
    (BODY_HOLD, '"mirror": {', '"mirorr": {', "mirorr: not a section"),
    (BODY_HOLD, "operation: INSERT_FIRST", "operation: INSERT_FRIST", "Input should be"),
]


def self_test() -> int:
    """The real folder passes; each mutated copy fails, naming what is wrong."""
    status = run(DEFAULT_DIR)
    if status != 0:
        return status
    failures = 0
    for file_name, old, new, needle in MUTATIONS:
        with tempfile.TemporaryDirectory(prefix="istio-validate-") as tmp:
            copy = Path(tmp) / "istio"
            shutil.copytree(DEFAULT_DIR, copy)
            target = copy / file_name
            text = target.read_text()
            if isinstance(old, re.Pattern):
                mutated = old.sub(new, text, count=1)
            else:
                mutated = text.replace(old, new, 1)
            if mutated == text:
                print(f"FAIL self-test: {file_name} no longer contains {old!r}; update MUTATIONS")
                failures += 1
                continue
            target.write_text(mutated)
            result = subprocess.run(
                [sys.executable, __file__, str(copy)], capture_output=True, text=True, check=False
            )
            change = repr(new.strip()) if new.strip() else f"without {getattr(old, 'pattern', old).strip()!r}"
            if result.returncode == 0 or needle not in result.stdout:
                print(f"FAIL self-test: {file_name} with {change} was not refused for {needle!r}")
                print(result.stdout + result.stderr)
                failures += 1
            else:
                first = next(line for line in result.stdout.splitlines() if needle in line)
                print(f"ok   self-test: {file_name}: {change} refused: {first}")
    if failures:
        print(f"istio-validate self-test: {failures} mutation(s) were accepted")
        return 1
    print(f"istio-validate self-test: all {len(MUTATIONS)} mutated copies refused")
    return 0


def dump_plugin_configs(out: Path) -> int:
    """Validate the real folder, then write every meshsight pluginConfig as JSON."""
    status = run(DEFAULT_DIR)
    if status != 0:
        return status
    _, _, plugins = validate_dir(DEFAULT_DIR)
    primary = [
        p for p in plugins
        if p.deployment == "" and p.spec.get("pluginName") == ONE_PASS_ROOT_ID and "SERVER" in p.modes()
    ]
    if len(primary) != 1 or set(primary[0].jobs) != set(JOBS):
        print(
            "istio-validate: the top folder needs exactly one inbound (SERVER) `meshsight` plugin "
            f"with all of {', '.join(JOBS)} (found {[p.where for p in primary]})"
        )
        return 1
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "extra", ignore_errors=True)
    written = []

    def write(target: Path, config: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(config, indent=2) + "\n")
        written.append(str(target))

    write(out / "meshsight.json", primary[0].spec.get("pluginConfig"))
    for job in JOBS:
        write(out / f"{job}.json", primary[0].policies[job])
    for plugin in plugins:
        if plugin is primary[0]:
            continue
        # Other plugins (client side, alternative deployments): checked for loading, not
        # benchmarked. The file name says how to run it: `meshsight` (one pass) or the job.
        kind = "meshsight" if plugin.spec.get("pluginName") == ONE_PASS_ROOT_ID else plugin.jobs[0]
        origin = f"{plugin.deployment.replace('/', '-')}-" if plugin.deployment else ""
        write(out / "extra" / f"{kind}--{origin}{plugin.name}.json", plugin.spec.get("pluginConfig") or {})
    for path, doc in meshsight_envoy_filters(DEFAULT_DIR):
        for _, value in wasm_extension_configs(doc):
            policy, _ = extension_policy(value)
            origin = path.parent.relative_to(DEFAULT_DIR).as_posix().replace("/", "-")
            write(out / "extra" / f"meshsight--{origin}-{doc['metadata']['name']}.json", policy)
    print("istio-validate: wrote " + ", ".join(written))
    return 0


def meshsight_envoy_filters(directory: Path) -> list[tuple[Path, dict]]:
    """(file, document) of each meshsight EnvoyFilter under `directory`."""
    found = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "EnvoyFilter" and is_meshsight(doc):
                found.append((path, doc))
    return found


def dump_extension_configs(out: Path) -> int:
    """Validate the real folder, then write each meshsight Wasm extension config (what istiod
    serves by ECDS) as JSON: {"name", "typed_config"}, for the e2e test that loads it in Envoy
    as the istio-agent hands it over."""
    status = run(DEFAULT_DIR)
    if status != 0:
        return status
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, doc in meshsight_envoy_filters(DEFAULT_DIR):
        for _, value in wasm_extension_configs(doc):
            target = out / f"{doc['metadata']['name']}.json"
            target.write_text(json.dumps({"name": value["name"], "typed_config": value["typed_config"]}, indent=2) + "\n")
            written.append(str(target))
    if not written:
        print(f"istio-validate: no meshsight Wasm extension config under {DEFAULT_DIR}")
        return 1
    print("istio-validate: wrote " + ", ".join(written))
    return 0

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--self-test", action="store_true", help="also prove that typos are refused")
    parser.add_argument("--dump-plugin-configs", type=Path, metavar="OUT", help="write pluginConfigs as JSON")
    parser.add_argument("--dump-extension-configs", type=Path, metavar="OUT",
                        help="write the EnvoyFilters' Wasm extension configs as JSON")
    args = parser.parse_args()
    if args.dump_extension_configs:
        return dump_extension_configs(args.dump_extension_configs)
    if args.dump_plugin_configs:
        return dump_plugin_configs(args.dump_plugin_configs)
    if args.self_test:
        return self_test()
    return run(args.directory)


if __name__ == "__main__":
    sys.exit(main())
