#!/usr/bin/env python3
"""Envoy's own remote fetch of meshsight.wasm: `vm_config.code.remote` with `http_uri` and
`sha256`, from a local HTTP server, as a plain Envoy (or an Istio WasmPlugin with an http url)
loads it.

Runs the Envoy given twice against one HTTP server (127.0.0.1, a free port) serving the module:
1. with the module's sha256: the module loads and enforces its allowlist (GET /ok/1 -> 200,
   GET /nope -> 403 from the module), and the server saw the fetch;
2. with a wrong sha256: Envoy refuses the code (its log names the mismatch) and the module
   never answers a request (no 403 from it; Envoy fails closed with its own error).

Exit status 0 when both hold; 1 otherwise (Envoy failing to start in case 1 is a failure).

Usage: wasm_remote_fetch.py --envoy PATH --wasm PATH
"""

import argparse
import hashlib
import http.client
import http.server
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

POLICY = '{"allowlist":{"mode":"enforce","rules":[{"name":"ok","methods":["GET"],"paths":["/ok/**"]}]}}'

CONFIG = """
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listener} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "upstream\\n" }} }}
          http_filters:
          - name: meshsight
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: meshsight
                root_id: meshsight
                fail_open: false
                vm_config:
                  vm_id: meshsight
                  runtime: envoy.wasm.runtime.v8
                  code:
                    remote:
                      http_uri:
                        uri: http://127.0.0.1:{http}/meshsight.wasm
                        cluster: wasm_server
                        timeout: 5s
                      sha256: {sha256}
                      retry_policy: {{ num_retries: 1 }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{policy}'
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: wasm_server
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: wasm_server
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {http} }} }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    except OSError as e:
        return None, repr(e)


def serve(wasm: Path, fetches: list) -> int:
    data = wasm.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_GET(self):
            fetches.append(self.path)
            if self.path != "/meshsight.wasm":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/wasm")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def run_envoy(envoy: str, http_port: int, sha: str, work: Path, name: str):
    admin, listener = free_port(), free_port()
    config = work / f"{name}.yaml"
    config.write_text(CONFIG.format(admin=admin, listener=listener, http=http_port, sha256=sha,
                                    policy=POLICY))
    log = work / f"{name}.log"
    proc = subprocess.Popen(
        [envoy, "-c", str(config), "--base-id", str(listener), "--log-level", "info",
         "--component-log-level", "wasm:debug", "--log-path", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Ready when the listener answers (or Envoy exits).
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        status, _ = get(admin, "/ready")
        if status == 200:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # the remote fetch and the VM start are asynchronous to /ready
    return proc, listener, log


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envoy", required=True)
    ap.add_argument("--wasm", required=True, type=Path)
    args = ap.parse_args()
    version = subprocess.run([args.envoy, "--version"], capture_output=True, text=True).stdout
    version = version.split("version:")[-1].split()[0] if "version:" in version else "?"
    sha = hashlib.sha256(args.wasm.read_bytes()).hexdigest()
    wrong = hashlib.sha256(b"not the module").hexdigest()
    fetches: list = []
    http_port = serve(args.wasm, fetches)
    failures = []
    with tempfile.TemporaryDirectory(prefix="meshsight-remote-") as tmp:
        work = Path(tmp)
        proc, port, log = run_envoy(args.envoy, http_port, sha, work, "right")
        try:
            ok = get(port, "/ok/1")
            denied = get(port, "/nope")
            if ok[0] != 200 or denied[0] != 403:
                failures.append(f"right sha256: /ok/1 -> {ok}, /nope -> {denied} (want 200, 403); "
                                f"log tail: {log.read_text()[-2000:] if log.exists() else ''}")
            if "/meshsight.wasm" not in fetches:
                failures.append("right sha256: Envoy never fetched the module")
        finally:
            stop(proc)
        fetched_before = len(fetches)
        proc, port, log = run_envoy(args.envoy, http_port, wrong, work, "wrong")
        try:
            denied = get(port, "/nope")
            text = log.read_text() if log.exists() else ""
            if denied[0] == 403:
                failures.append("wrong sha256: the module answered 403: Envoy ran code whose "
                                "sha256 does not match")
            if len(fetches) == fetched_before:
                failures.append("wrong sha256: Envoy never fetched the module")
            # Envoy checks the hash of each fetched copy, counts a mismatch as a failed fetch
            # (retried), then gives up: "Plugin meshsight failed to load".
            if denied[0] is None or denied[0] < 500:
                failures.append(f"wrong sha256: GET /nope -> {denied}, want Envoy's own 5xx "
                                "(fail closed)")
            if "plugin meshsight failed to load" not in text.lower():
                failures.append("wrong sha256: Envoy's log does not say the plugin failed to "
                                "load; tail: " + text[-2000:])
            refusal = next((l for l in text.splitlines() if "failed to load" in l), "")
            print(f"Envoy {version}: wrong sha256 refused: GET /nope -> {denied[0]}; "
                  f"log: {refusal.strip()[:200]}")
        finally:
            stop(proc)
    if failures:
        for f in failures:
            print(f"FAIL Envoy {version}: {f}", file=sys.stderr)
        return 1
    print(f"Envoy {version}: remote fetch with sha256 {sha[:16]}... loaded and enforced the "
          "allowlist; a wrong sha256 was refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
