#!/usr/bin/env python3
"""Validate every YAML document in envoy-config/istio/ against Istio's CRD schemas.

The schemas are the pydantic models of the PyPI package `cloudcoil-models-istio` (generated from
Istio's CRDs). Those models silently ignore unknown fields, which would let a typo such as
`failStratgy: FAIL_CLOSE` pass and be dropped by the API server's pruning, so this script also
walks each validated model next to its input and rejects every key the schema does not define.
Free-form fields (`pluginConfig`, `metadata.labels`...) are typed as plain mappings in the
schema and are not walked into.

On top of the schema it checks meshsight's own contract for its WasmPlugins: the allowlist,
mirror and audit plugins of one workload run in that order (phase, then priority descending),
the allowlist fails closed, the mirror and audit fail open, and an `https://` module has a
`sha256`.

Usage:
  validate_istio.py [DIR]        validate DIR (default: envoy-config/istio)
  validate_istio.py --self-test  validate the real folder, then check that copies with a
                                 misspelt field, a bad enum value and a wrong order are refused
  validate_istio.py --dump-plugin-configs OUT
                                 validate, then write each inbound (SERVER) meshsight plugin's
                                 pluginConfig as OUT/<filter>.json and the others' as
                                 OUT/extra/<filter>--<name>.json (`make istio-policies` and
                                 `make bench` run these exact policies in a real Envoy)
"""

from __future__ import annotations

import argparse
import importlib
import json
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
FILTER_ORDER = ("allowlist", "mirror", "audit")
FAIL_STRATEGY = {"allowlist": "FAIL_CLOSE", "mirror": "FAIL_OPEN", "audit": "FAIL_OPEN"}


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


def validate_document(doc: Any) -> pydantic.BaseModel:
    """Validate one YAML document strictly; raise Problem with every error found."""
    if not isinstance(doc, dict):
        raise Problem("document is not a mapping")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise Problem("document needs string `apiVersion` and `kind`")
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
    if not (doc.get("metadata") or {}).get("name"):
        raise Problem("metadata.name is required")
    return model


def meshsight_filter(doc: dict) -> str | None:
    """Which meshsight filter a WasmPlugin deploys (from its component label), if any."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if labels.get("app.kubernetes.io/part-of") != "meshsight":
        return None
    return labels.get("app.kubernetes.io/component")


def check_meshsight_plugins(plugins: list[tuple[str, dict]]) -> list[str]:
    """meshsight's ordering and failure-mode contract across its WasmPlugins."""
    problems: list[str] = []
    groups: dict[tuple, dict[str, list[tuple[str, dict]]]] = {}
    for where, doc in plugins:
        spec = doc["spec"]
        component = meshsight_filter(doc)
        if component not in FILTER_ORDER:
            problems.append(f"{where}: label app.kubernetes.io/component must be one of {FILTER_ORDER}")
            continue
        if spec.get("failStrategy") != FAIL_STRATEGY[component]:
            problems.append(
                f"{where}: spec.failStrategy must be {FAIL_STRATEGY[component]} for the {component} filter"
            )
        if spec.get("type") != "HTTP":
            problems.append(f"{where}: spec.type must be HTTP")
        if not spec.get("match"):
            problems.append(f"{where}: spec.match must name the traffic mode (SERVER or CLIENT)")
        url = spec.get("url", "")
        if url.startswith(("https://", "http://")) and not spec.get("sha256"):
            problems.append(f"{where}: spec.sha256 is required for a module fetched over http(s)")
        if not url.startswith(("oci://", "https://", "http://", "file://")):
            problems.append(f"{where}: spec.url must be oci://, https:// or file://")
        namespace = (doc.get("metadata") or {}).get("namespace", "")
        selector = repr(sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
        for match in spec.get("match") or [{}]:
            key = (namespace, selector, match.get("mode", "UNDEFINED"))
            groups.setdefault(key, {}).setdefault(component, []).append((where, spec))

    for (namespace, selector, mode), by_filter in groups.items():
        present = [f for f in FILTER_ORDER if f in by_filter]
        for component, entries in by_filter.items():
            if len(entries) > 1:
                names = ", ".join(where for where, _ in entries)
                problems.append(f"{names}: more than one {component} plugin for {selector} in {mode} mode")
        for before, after in zip(present, present[1:]):
            (where_b, spec_b), (where_a, spec_a) = by_filter[before][0], by_filter[after][0]
            rank_b = (PHASE_ORDER.get(spec_b.get("phase"), 3), -int(spec_b.get("priority") or 0))
            rank_a = (PHASE_ORDER.get(spec_a.get("phase"), 3), -int(spec_a.get("priority") or 0))
            if not rank_b < rank_a:
                problems.append(
                    f"{where_a}: the {after} plugin must run after the {before} plugin ({where_b}) "
                    f"in {mode} mode: phase {spec_b.get('phase')}/priority {spec_b.get('priority')} "
                    f"vs phase {spec_a.get('phase')}/priority {spec_a.get('priority')}"
                )
    return problems


def validate_dir(directory: Path) -> tuple[int, list[str]]:
    """Validate every *.yaml / *.yml document under `directory`. Returns (documents, problems)."""
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    problems: list[str] = []
    count = 0
    plugins: list[tuple[str, dict]] = []
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
            if doc["kind"] == "WasmPlugin" and meshsight_filter(doc) is not None:
                plugins.append((where, doc))
    if not any(meshsight_filter(doc) == "allowlist" for _, doc in plugins):
        problems.append(f"{directory}: no meshsight allowlist WasmPlugin found")
    problems.extend(check_meshsight_plugins(plugins))
    return count, problems


def run(directory: Path) -> int:
    """Validate `directory` and print the outcome; 0 when everything passes."""
    count, problems = validate_dir(directory)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"istio-validate: {len(problems)} problem(s) in {count} document(s) under {directory}")
        return 1
    print(f"istio-validate: {count} document(s) under {directory} valid (schema + unknown fields + meshsight order)")
    return 0


# Each mutation: (file, text to replace, replacement, text the failure must mention).
MUTATIONS = [
    ("allowlist-wasmplugin.yaml", "failStrategy: FAIL_CLOSE", "failStratgy: FAIL_CLOSE", "failStratgy"),
    ("audit-wasmplugin.yaml", "  - mode: SERVER", "  - mdoe: SERVER", "mdoe"),
    ("mirror-wasmplugin.yaml", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresnt", "imagePullPolicy"),
    ("mirror-wasmplugin.yaml", "  priority: 200", "  priority: 400", "must run after"),
    ("audit-wasmplugin.yaml", "failStrategy: FAIL_OPEN", "failStrategy: FAIL_CLOSE", "FAIL_OPEN"),
    ("allowlist-wasmplugin.yaml", "  name: meshsight-allowlist\n", "  nmae: meshsight-allowlist\n", "nmae"),
    ("audit-wasmplugin.yaml", "imagePullPolicy: IfNotPresent", "image_pull_policy: IfNotPresent", "image_pull_policy"),
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
            if old not in text:
                print(f"FAIL self-test: {file_name} no longer contains {old!r}; update MUTATIONS")
                failures += 1
                continue
            target.write_text(text.replace(old, new, 1))
            result = subprocess.run(
                [sys.executable, __file__, str(copy)], capture_output=True, text=True, check=False
            )
            if result.returncode == 0 or needle not in result.stdout:
                print(f"FAIL self-test: {file_name} with {new.strip()!r} was not refused for {needle!r}")
                print(result.stdout + result.stderr)
                failures += 1
            else:
                first = next(line for line in result.stdout.splitlines() if needle in line)
                print(f"ok   self-test: {new.strip()!r} refused: {first}")
    if failures:
        print(f"istio-validate self-test: {failures} mutation(s) were accepted")
        return 1
    print(f"istio-validate self-test: all {len(MUTATIONS)} mutated copies refused")
    return 0


def dump_plugin_configs(out: Path) -> int:
    """Validate the real folder, then write each SERVER-mode meshsight pluginConfig as JSON."""
    status = run(DEFAULT_DIR)
    if status != 0:
        return status
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "extra", ignore_errors=True)
    written = []
    for path in sorted(DEFAULT_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "WasmPlugin":
                continue
            component = meshsight_filter(doc)
            if component is None:
                continue
            modes = {m.get("mode") for m in doc["spec"].get("match") or []}
            config = json.dumps(doc["spec"].get("pluginConfig") or {}, indent=2) + "\n"
            if "SERVER" in modes:
                target = out / f"{component}.json"
            else:
                # Other plugins (client side): checked for loading, not benchmarked.
                (out / "extra").mkdir(exist_ok=True)
                target = out / "extra" / f"{component}--{doc['metadata']['name']}.json"
            target.write_text(config)
            written.append(str(target))
    print("istio-validate: wrote " + ", ".join(written))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--self-test", action="store_true", help="also prove that typos are refused")
    parser.add_argument("--dump-plugin-configs", type=Path, metavar="OUT", help="write pluginConfigs as JSON")
    args = parser.parse_args()
    if args.dump_plugin_configs:
        return dump_plugin_configs(args.dump_plugin_configs)
    if args.self_test:
        return self_test()
    return run(args.directory)


if __name__ == "__main__":
    sys.exit(main())
