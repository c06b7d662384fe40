#!/usr/bin/env python3
"""`make oci`: an OCI image of each module in the format Istio's Wasm fetcher accepts, pushed to
a real local registry, pulled back and compared byte for byte.

For each .wasm given it writes an OCI image layout (oci-layout, index.json, blobs/sha256/...)
holding one manifest (application/vnd.oci.image.manifest.v1+json) whose config is
application/vnd.module.wasm.config.v1+json and whose single layer is the module itself,
application/vnd.module.wasm.content.layer.v1+wasm (the Wasm OCI artifact format Istio's
`oci://` fetcher reads; see pkg/wasm/imagefetcher.go in istio/istio). It then:

1. starts Debian's `docker-registry` (the CNCF distribution registry) on 127.0.0.1, a free
   port, storage under --work (stopped by its PID at the end, also on failure);
2. pushes the layout with `skopeo copy oci:<layout>:<tag> docker://127.0.0.1:<port>/<name>:<tag>`;
3. reads the manifest back from the registry (`skopeo inspect --raw`) and checks its media
   types; pulls the image back (`skopeo copy docker://... oci:<pulled>`) and compares the layer
   with the .wasm byte for byte;
4. prints, per module, the manifest digest: the value for a WasmPlugin's `sha256` with an
   `oci://` url (Istio compares the image's manifest digest, not the .wasm file's sha256).

Exit status 0 when every image round-trips; 1 otherwise (a missing tool is a failure).

Usage: oci_image.py --work DIR [--tag TAG] WASM...
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(layout: Path, data: bytes) -> dict:
    digest = sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def image(module: bytes, title: str) -> tuple[bytes, bytes]:
    """The config and manifest blobs of one module's image, exactly as pushed.

    Deterministic: no creation time, no build host, sorted keys, fixed annotations, so the
    manifest digest (the WasmPlugin `sha256`) depends only on the module's bytes and file name.
    `make istio-pin` and its check (scripts/istio_pin.py) compute the digest with this too.
    """
    config_json = json.dumps({"architecture": "wasm32", "os": "wasip1"}, sort_keys=True).encode()
    layer = {"mediaType": WASM_LAYER, "digest": sha256(module), "size": len(module)}
    layer["annotations"] = {"org.opencontainers.image.title": title}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": WASM_CONFIG, "digest": sha256(config_json), "size": len(config_json)},
        "layers": [layer],
    }
    return config_json, json.dumps(manifest, sort_keys=True).encode()


def manifest_digest(wasm: Path) -> str:
    """`sha256:<hex>` of the image manifest `make oci` builds for `wasm`."""
    return sha256(image(wasm.read_bytes(), wasm.name)[1])


def write_layout(layout: Path, wasm: Path, tag: str) -> str:
    """The OCI image layout of one module; returns the manifest digest."""
    shutil.rmtree(layout, ignore_errors=True)
    layout.mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    module = wasm.read_bytes()
    config_json, manifest_bytes = image(module, wasm.name)
    put_blob(layout, module)
    put_blob(layout, config_json)
    desc = dict(mediaType=OCI_MANIFEST, **put_blob(layout, manifest_bytes))
    desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [desc]}, sort_keys=True)
    )
    return desc["digest"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*cmd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True).stdout


def start_registry(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    storage = work / "registry-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    exe = shutil.which("docker-registry") or shutil.which("registry")
    if not exe:
        sys.exit("docker-registry is missing: apt-get install docker-registry (make oci-tools)")
    log = open(work / "registry.log", "w")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
    deadline = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                sys.exit(f"the registry did not start: see {work / 'registry.log'}")
            time.sleep(0.1)
    print(f"registry: docker-registry pid {proc.pid} on 127.0.0.1:{port}", flush=True)
    return proc, port


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--tag", default="0.1.0")
    ap.add_argument("wasm", nargs="+", type=Path)
    args = ap.parse_args()
    if not shutil.which("skopeo"):
        sys.exit("skopeo is missing: apt-get install skopeo (make oci-tools)")
    args.work.mkdir(parents=True, exist_ok=True)
    registry, port = start_registry(args.work)
    failures = []
    results = []
    try:
        for wasm in args.wasm:
            name = wasm.stem.replace("_", "-")
            layout = args.work / "layout" / name
            digest = write_layout(layout, wasm, args.tag)
            ref = f"127.0.0.1:{port}/{name}:{args.tag}"
            run("skopeo", "copy", "--dest-tls-verify=false", "--preserve-digests",
                f"oci:{layout}:{args.tag}", f"docker://{ref}")
            raw = run("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}")
            manifest = json.loads(raw)
            pushed = sha256(raw.encode())
            pulled = args.work / "pulled" / name
            shutil.rmtree(pulled, ignore_errors=True)
            pulled.mkdir(parents=True)
            run("skopeo", "copy", "--src-tls-verify=false", "--preserve-digests",
                f"docker://{ref}", f"oci:{pulled}:{args.tag}")
            layers = manifest.get("layers", [])
            problems = []
            if manifest.get("config", {}).get("mediaType") != WASM_CONFIG:
                problems.append(f"config media type {manifest.get('config')}")
            if [l.get("mediaType") for l in layers] != [WASM_LAYER]:
                problems.append(f"layer media types {[l.get('mediaType') for l in layers]}")
            if pushed != digest:
                problems.append(f"registry manifest digest {pushed} != built {digest}")
            if layers:
                blob = pulled / "blobs" / "sha256" / layers[0]["digest"].split(":")[1]
                if not blob.is_file() or blob.read_bytes() != wasm.read_bytes():
                    problems.append(f"pulled layer {blob} differs from {wasm}")
            if problems:
                failures.append((wasm, problems))
            results.append((name, ref, pushed, wasm))
    except subprocess.CalledProcessError as e:
        failures.append(("skopeo", [f"{e.cmd}: {e.stderr.strip()}"]))
    finally:
        registry.terminate()
        registry.wait(timeout=10)
    for name, ref, digest, wasm in results:
        print(f"{name}: pushed {ref}, pulled back, layer == {wasm.name} ({wasm.stat().st_size} bytes)")
        print(f"  WasmPlugin: url: oci://<registry>/{name}:<tag>   sha256: {digest.split(':')[1]}")
        print(f"  (the .wasm file's own sha256, for vm_config.code.remote / http urls: "
              f"{sha256(wasm.read_bytes()).split(':')[1]})")
    for what, problems in failures:
        print(f"FAIL {what}: " + "; ".join(problems), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
