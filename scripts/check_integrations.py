#!/usr/bin/env python3
"""Offline checks of envoy-config/integrations/ (none of these tools runs on the test machine,
so this is what can be checked without them): each YAML file parses, and each config agrees
with what meshsight sends.

- otel-collector.yaml: an otlp receiver with an http protocol on port 4318, a logs pipeline
  otlp -> batch -> exporters that are all defined.
- fluent-bit.yaml: an opentelemetry input on port 4318 (OTLP/HTTP logs, /v1/logs).
- vector.yaml: an http_server source with POST, newline_delimited framing and json decoding
  (the NDJSON sink), every transform/sink input defined.
- suricata-meshsight.rules: each rule has a unique sid and names only headers the copies carry.
- meshsight-copies.zeek: the header names it reads are headers the copies carry.
- every meshsight_* metric those files and docs/soc-integration.md name is one the module
  defines.

What the copies carry and which metrics exist come from the module itself, not its source
text: --contract is the JSON `cargo run -p meshsight --example wire_contract` prints (the
headers of real `dispatch` copies and the metrics the plugin defined, in the native proxy-wasm
host), plus the headers the `header` delivery route of envoy-config/envoy.yaml adds
(request_headers_mutations, read as YAML).

Usage: check_integrations.py --contract PATH
Exit status 0 when every check holds; 1 otherwise. Nothing here proves the tools accept the
files: docs/soc-integration.md marks each as untested.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "envoy-config" / "integrations"
ROUTE = ROOT / "envoy-config" / "envoy.yaml"
GUIDE = ROOT / "docs" / "soc-integration.md"
PREFIX = "x-meshsight-mirror-"


def route_headers(node) -> set:
    """Header keys the route config adds to a mirror copy (request_mirror_policies mutations)."""
    names = set()
    if isinstance(node, dict):
        for mutation in node.get("request_headers_mutations", []) or []:
            key = ((mutation or {}).get("append") or {}).get("header", {}).get("key", "")
            if key.startswith(PREFIX):
                names.add(key)
        for value in node.values():
            names |= route_headers(value)
    elif isinstance(node, list):
        for value in node:
            names |= route_headers(value)
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contract", required=True, help="wire_contract's JSON output")
    args = ap.parse_args()
    contract = json.loads(Path(args.contract).read_text())
    dispatch = set(contract["copy_headers"])
    # A template: its ${NAME} placeholders (ports, paths) do not matter here.
    routed = route_headers(yaml.safe_load(re.sub(r"\$\{\w+\}", "0", ROUTE.read_text())))
    metrics = set(contract["metrics"])
    errors = []
    if not dispatch or not metrics:
        errors.append(f"{args.contract}: no copy headers or no metrics: {contract}")
    if not routed:
        errors.append(f"{ROUTE.relative_to(ROOT)}: the header route adds no {PREFIX}* header")
    otel = yaml.safe_load((DIR / "otel-collector.yaml").read_text())
    http = otel["receivers"]["otlp"]["protocols"]["http"]
    if not http["endpoint"].endswith(":4318"):
        errors.append("otel-collector: the otlp http receiver is not on 4318")
    logs = otel["service"]["pipelines"]["logs"]
    if logs["receivers"] != ["otlp"] or "batch" not in logs["processors"]:
        errors.append(f"otel-collector: logs pipeline {logs}")
    for e in logs["exporters"]:
        if e not in otel["exporters"]:
            errors.append(f"otel-collector: exporter {e} not defined")

    fb = yaml.safe_load((DIR / "fluent-bit.yaml").read_text())
    inputs = fb["pipeline"]["inputs"]
    if not any(i["name"] == "opentelemetry" and int(i["port"]) == 4318 for i in inputs):
        errors.append("fluent-bit: no opentelemetry input on 4318")

    vec = yaml.safe_load((DIR / "vector.yaml").read_text())
    src = vec["sources"]["meshsight"]
    if (src["type"], src["method"], src["framing"]["method"], src["decoding"]["codec"]) != (
            "http_server", "POST", "newline_delimited", "json"):
        errors.append(f"vector: source {src}")
    known = set(vec["sources"]) | set(vec.get("transforms", {}))
    for kind in ("transforms", "sinks"):
        for name, c in vec.get(kind, {}).items():
            for i in c["inputs"]:
                if i not in known:
                    errors.append(f"vector: {kind}.{name} input {i} undefined")

    carried = dispatch | routed
    sids = set()
    for line in (DIR / "suricata-meshsight.rules").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sid = re.search(r"sid:(\d+);", line)
        if not sid or sid.group(1) in sids:
            errors.append(f"suricata: missing or repeated sid: {line[:60]}")
        else:
            sids.add(sid.group(1))
        for h in re.findall(r'content:"(x-meshsight-mirror-[a-z-]+)\|', line):
            if h not in carried:
                errors.append(f"suricata: rule {sid.group(1) if sid else '?'} reads {h}, which no copy carries")
    for h in re.findall(r'"(X-MESHSIGHT-MIRROR-[A-Z-]+)"', (DIR / "meshsight-copies.zeek").read_text()):
        if h.lower() not in carried:
            errors.append(f"zeek: reads {h}, which no copy carries")
    # A name ending in `_` is a family (`meshsight_mirror_mirrored_<target>_<reason>`).
    named = 0
    for path in sorted(DIR.iterdir()) + [GUIDE]:
        for m in sorted(set(re.findall(r"\bmeshsight_(?:allowlist|mirror|audit)_[a-z0-9_]*", path.read_text()))):
            named += 1
            if not (m in metrics or (m.endswith("_") and any(x.startswith(m) for x in metrics))):
                errors.append(f"{path.relative_to(ROOT)}: names metric {m}, which the module does not define")
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    if not errors:
        print(f"integrations: 5 configs consistent with meshsight's output ({len(sids)} Suricata "
              f"rules; copies carry {len(carried)} {PREFIX}* headers, {len(dispatch)} by dispatch, "
              f"{len(routed)} by the header route; {named} metric names of {len(metrics)} "
              "defined); the tools themselves are not run here (untested)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
