#!/usr/bin/env python3
"""Audit path (b) end to end: a real Envoy renders OCSF records with its native access loggers.

Starts Envoy (the binary given, 1.36.x or 1.40.x) with the verdict probe Wasm
(test-harness/e2e/verdict-probe) and the access-log blocks of envoy-config/access-log/ exactly as
shipped: the file logger, the OpenTelemetry logger over OTLP/gRPC (every version) and over
OTLP/HTTP (Envoy >= 1.40; on older versions the script checks instead that Envoy refuses
`http_service`). An OTLP receiver in this process decodes the exports with the official
`opentelemetry-proto` messages (grpcio serves OTLP/gRPC). It sends allowed, denied (local 403),
would_deny, malformed, signature-alert, no-verdict-from-allowlist, non-standard-method and
quote/backslash-injection requests, then checks every record each logger wrote with
scripts/validate_ocsf.py (OCSF 1.7.0 http_activity) and the verdict values per request.

Usage: access_log_e2e.py --envoy PATH --wasm PATH [--keep DIR]
Exit status 0 when every record of every logger is valid and as expected; 1 otherwise (also
when Envoy cannot start: that is a failure, never a skip).
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import yaml
import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = ROOT / "envoy-config" / "access-log"
VALIDATOR = ROOT / "scripts" / "validate_ocsf.py"

# request id -> (method, path, probe headers, expected status, expected verdict fields)
CASES = [
    ("allowed", "GET", "/api/items?token=secret", {"x-probe-outcome": "allowed"}, 200,
     {"action_id": 1, "disposition_id": 1, "severity_id": 1, "is_alert": False, "activity_id": 3}),
    ("denied", "POST", "/admin", {"x-probe-outcome": "denied"}, 403,
     {"action_id": 2, "disposition_id": 2, "severity_id": 3, "is_alert": False, "activity_id": 6}),
    ("would-deny", "PUT", "/monitored", {"x-probe-outcome": "would_deny"}, 200,
     {"action_id": 1, "disposition_id": 20, "severity_id": 2, "is_alert": False, "activity_id": 7}),
    ("malformed", "GET", "/a%2fb", {"x-probe-outcome": "malformed"}, 403,
     {"action_id": 2, "disposition_id": 25, "severity_id": 3, "is_alert": False, "activity_id": 3}),
    ("alert", "GET", "/search?q=${jndi:ldap://x/a}",
     {"x-probe-outcome": "allowed", "x-probe-signature": "log4shell"}, 200,
     {"action_id": 1, "disposition_id": 1, "severity_id": 4, "is_alert": True, "activity_id": 3}),
    ("observed", "DELETE", "/no-allowlist", {}, 200,
     {"action_id": 3, "disposition_id": 17, "severity_id": 1, "is_alert": False, "activity_id": 2}),
    ("other-method", "PROPFIND", "/dav", {"x-probe-outcome": "allowed"}, 200,
     {"action_id": 1, "disposition_id": 1, "severity_id": 1, "is_alert": False, "activity_id": 99}),
]
# Sent raw: a quote and a backslash in the path and the user agent must stay inside their strings.
INJECTION_ID = "injection"
INJECTION_REQUEST = (
    b'GET /x"y\\z HTTP/1.1\r\nHost: app.local\r\nUser-Agent: evil","action_id":1,"x":"\\\r\n'
    b"X-Probe-Outcome: denied\r\nX-Request-Id: " + INJECTION_ID.encode() + b"\r\nConnection: close\r\n\r\n"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collected:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = {"otlp-http": [], "otlp-grpc": []}
        self.errors = []

    def add(self, source, request):
        with self.lock:
            for resource_logs in request.resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        attributes = {kv.key: kv.value.string_value for kv in record.attributes}
                        if attributes.get("event.name") != "ocsf.http_activity":
                            self.errors.append(f"{source}: attribute event.name is {attributes}")
                        if record.body.WhichOneof("value") != "string_value":
                            self.errors.append(f"{source}: body is not a string: {record.body}")
                            continue
                        self.records[source].append(record.body.string_value)


def otlp_http_server(collected, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.read_body()
            request = logs_service_pb2.ExportLogsServiceRequest()
            if self.path != "/v1/logs" or "protobuf" not in self.headers.get("content-type", ""):
                collected.errors.append(f"otlp-http: {self.path} {self.headers.get('content-type')}")
            request.ParseFromString(body)
            collected.add("otlp-http", request)
            reply = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def read_body(self):
            if self.headers.get("transfer-encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("content-length", "0")))
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def otlp_grpc_server(collected, port):
    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            collected.add("otlp-grpc", request)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def block(name, variables):
    """One shipped access-log block with its ${NAME} placeholders filled."""
    text = (BLOCKS / name).read_text()
    text = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], text)
    return yaml.safe_load(text)


def envoy_config(run_dir, ports, wasm, loggers):
    def cluster(name, port, http2=False):
        c = {
            "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
        }
        if http2:
            c["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}}
        return c

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["admin"]}}},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["listener"]}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "access_log": loggers,
                        "route_config": {"virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]}]},
                        "http_filters": [
                            {"name": "envoy.filters.http.wasm", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": {"name": "verdict_probe", "root_id": "verdict_probe", "vm_config": {
                                    "runtime": "envoy.wasm.runtime.v8",
                                    "code": {"local": {"filename": str(wasm)}}}}}},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    }}]}],
            }],
            "clusters": [cluster("otlp_http", ports["otlp_http"]),
                         cluster("otlp_grpc", ports["otlp_grpc"], http2=True)],
        },
    }


def envoy_version(envoy):
    out = subprocess.run([envoy, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"/(\d+)\.(\d+)\.(\d+)/", out)
    if not m:
        raise SystemExit(f"access_log_e2e: cannot read the version of {envoy}: {out!r}")
    return tuple(int(x) for x in m.groups())


def send(port, case_id, method, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    all_headers = {"x-request-id": case_id, "user-agent": 'probe "ua" \\ 1.0', "host": "app.local:8080"}
    all_headers.update(headers)
    conn.request(method, path, headers=all_headers)
    status = conn.getresponse().status
    conn.close()
    return status


def check(label, lines, run_dir, expected_count, failures):
    path = run_dir / f"{label}.ndjson"
    path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    if len(lines) != expected_count:
        failures.append(f"{label}: {len(lines)} records, expected {expected_count}")
    result = subprocess.run([sys.executable, str(VALIDATOR), str(path)], capture_output=True, text=True)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        failures.append(f"{label}: OCSF validation failed:\n{result.stdout}")
        return
    by_id = {}
    for line in lines:
        record = json.loads(line)
        by_id[record.get("http_request", {}).get("uid")] = record
    now_ms = time.time() * 1000
    for case_id, method, path, _, status, verdict in CASES:
        record = by_id.get(case_id)
        if record is None:
            failures.append(f"{label}: no record for {case_id}")
            continue
        for key, value in verdict.items():
            if record.get(key) != value or type(record.get(key)) is not type(value):
                failures.append(f"{label}: {case_id}: {key} = {record.get(key)!r}, expected {value!r}")
        if record["http_response"]["code"] != status:
            failures.append(f"{label}: {case_id}: code {record['http_response']['code']} != {status}")
        if not (isinstance(record["time"], int) and abs(record["time"] - now_ms) < 120_000):
            failures.append(f"{label}: {case_id}: time {record['time']!r} is not epoch ms of now")
        if record["http_request"]["url"]["path"] != path.split("?")[0]:
            failures.append(f"{label}: {case_id}: path {record['http_request']['url']['path']!r}")
        if "secret" in json.dumps(record):
            failures.append(f"{label}: {case_id}: the query string reached the record")
    injected = by_id.get(INJECTION_ID)
    if injected is None:
        failures.append(f"{label}: no record for the injection request")
    elif (injected["action_id"], injected["http_request"]["url"]["path"],
          injected["http_request"]["user_agent"]) != (2, '/x"y\\z', 'evil","action_id":1,"x":"\\'):
        failures.append(f"{label}: injection request rendered as {injected}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--keep", help="write the config, log and records here")
    args = parser.parse_args(argv)
    version = envoy_version(args.envoy)
    template = (BLOCKS / "ocsf_http_activity.tmpl").read_text().strip()
    for name in ("file.yaml", "otel_grpc.yaml", "otel_http.yaml"):
        config = yaml.safe_load((BLOCKS / name).read_text())[0]["typed_config"]
        shipped = (config.get("log_format", {}).get("text_format_source", {}).get("inline_string")
                   or config.get("body", {}).get("string_value", ""))
        if shipped.strip() != template:
            raise SystemExit(f"access_log_e2e: {name} does not carry ocsf_http_activity.tmpl")
    run_dir = Path(args.keep or tempfile.mkdtemp(prefix="meshsight-access-log-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = {k: free_port() for k in ("admin", "listener", "otlp_http", "otlp_grpc")}
    access_log = run_dir / "access.ndjson"
    access_log.unlink(missing_ok=True)
    variables = {
        "ACCESS_LOG_PATH": str(access_log),
        "OTLP_HTTP_URI": f"http://127.0.0.1:{ports['otlp_http']}/v1/logs",
    }
    loggers = block("file.yaml", variables)
    loggers += block("otel_grpc.yaml", dict(variables, OTLP_CLUSTER="otlp_grpc"))
    http_block = block("otel_http.yaml", dict(variables, OTLP_CLUSTER="otlp_http"))
    with_http = version >= (1, 40, 0)
    failures = []
    if with_http:
        loggers += http_block
    else:
        # Older Envoy has no OTLP/HTTP: the shipped block must be refused, not silently ignored.
        refused = run_dir / "envoy-http-refused.json"
        refused.write_text(json.dumps(envoy_config(run_dir, ports, args.wasm, http_block)))
        r = subprocess.run([args.envoy, "--mode", "validate", "-c", str(refused), "-l", "error"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            failures.append("Envoy %d.%d.%d accepted http_service: use otel_http.yaml there" % version)
    config = run_dir / "envoy.json"
    config.write_text(json.dumps(envoy_config(run_dir, ports, args.wasm, loggers), indent=1))

    collected = Collected()
    http_server = otlp_http_server(collected, ports["otlp_http"])
    grpc_server = otlp_grpc_server(collected, ports["otlp_grpc"])
    log = open(run_dir / "envoy.log", "w")
    envoy = subprocess.Popen([args.envoy, "-c", str(config), "--disable-hot-restart",
                              "--base-id", str(ports["admin"]), "-l", "warning"],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 30
        while True:
            if envoy.poll() is not None:
                raise SystemExit(f"access_log_e2e: Envoy exited ({envoy.returncode}); see {run_dir}/envoy.log:\n"
                                 + (run_dir / "envoy.log").read_text()[-3000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", ports["admin"], timeout=1)
                conn.request("GET", "/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("access_log_e2e: Envoy did not become ready in 30 s")
            time.sleep(0.2)
        for case_id, method, path, headers, status, _ in CASES:
            got = send(ports["listener"], case_id, method, path, headers)
            if got != status:
                failures.append(f"{case_id}: status {got}, expected {status}")
        with socket.create_connection(("127.0.0.1", ports["listener"]), timeout=5) as s:
            s.sendall(INJECTION_REQUEST)
            if not s.recv(64).startswith(b"HTTP/1.1 403"):
                failures.append("injection request was not denied")
        expected = len(CASES) + 1
        sources = ["otlp-grpc"] + (["otlp-http"] if with_http else [])
        deadline = time.time() + 15
        while time.time() < deadline:
            file_lines = access_log.read_text().splitlines() if access_log.exists() else []
            with collected.lock:
                done = all(len(collected.records[s]) >= expected for s in sources)
            if done and len(file_lines) >= expected:
                break
            time.sleep(0.2)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ports["admin"], timeout=2)
            conn.request("GET", "/stats")
            (run_dir / "stats.txt").write_bytes(conn.getresponse().read())
        except OSError:
            pass
    finally:
        envoy.send_signal(signal.SIGTERM)
        try:
            envoy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            envoy.kill()
        log.close()
        http_server.shutdown()
        grpc_server.stop(0)
    file_lines = access_log.read_text().splitlines() if access_log.exists() else []
    check("file", file_lines, run_dir, expected, failures)
    for source in sources:
        check(source, collected.records[source], run_dir, expected, failures)
    failures += collected.errors
    label = "Envoy %d.%d.%d" % version
    if failures:
        print(f"access_log_e2e: {label}: FAILED ({run_dir})")
        for f in failures:
            print(f"  {f}")
        return 1
    print(f"access_log_e2e: {label}: {expected} requests, loggers file + "
          f"{' + '.join(sources)}: every record valid OCSF 1.7.0 with the expected verdict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
