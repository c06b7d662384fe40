#!/usr/bin/env python3
"""An OTLP logs receiver for the e2e tests: the audit sink's OTLP encoding
(test-harness/e2e/tests/e2e_audit_otlp.rs) and Envoy's OpenTelemetry access logger
(test-harness/e2e/tests/e2e_access_log_sinks.rs, through meshsight_rig::OtlpReceiver).

Decodes every OTLP/HTTP POST (content-length or chunked) and, with --grpc-port-file, every
OTLP/gRPC LogsService/Export, with the official `opentelemetry-proto` messages
(ExportLogsServiceRequest), and appends one JSON line per request to --out: transport (http or
grpc), path, content type, the answer it gave, the time it arrived, the resource attributes and
each log record (body, body kind, time, severity, attributes, event name). A body that does not
decode is recorded as {"error": ...}.

It answers the requests in the order given by --answers (comma-separated), then 200:
  200                  success (empty ExportLogsServiceResponse)
  200:rejected=N       success with partial_success.rejected_log_records = N
  503:retry-after=S    a status with a Retry-After header (any status; retry-after optional)

The --answers apply to OTLP/HTTP; OTLP/gRPC exports are always answered OK.

Usage: otlp_logs_receiver.py --port-file PATH --out PATH [--answers LIST] [--grpc-port-file PATH]
Listens on 127.0.0.1, free ports, each written to its port file once it is listening.
"""

import argparse
import http.server
import json
import os
import threading
import time

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2


def any_value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def decode(request, entry):
    """Fills entry with what one ExportLogsServiceRequest holds."""
    entry["resource"] = {}
    entry["records"] = []
    for rl in request.resource_logs:
        for kv in rl.resource.attributes:
            entry["resource"][kv.key] = any_value(kv.value)
        for sl in rl.scope_logs:
            entry["scope"] = [sl.scope.name, sl.scope.version]
            for lr in sl.log_records:
                entry["records"].append({
                    "body": any_value(lr.body),
                    "body_kind": lr.body.WhichOneof("value"),
                    "time_unix_nano": lr.time_unix_nano,
                    "observed_time_unix_nano": lr.observed_time_unix_nano,
                    "severity_number": lr.severity_number,
                    "event_name": lr.event_name,
                    "attributes": {kv.key: any_value(kv.value) for kv in lr.attributes},
                })


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(path + ".tmp", path)


def serve_grpc(port_file, record):
    """OTLP/gRPC on a free port (grpcio), every export recorded and answered OK."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            entry = {"transport": "grpc", "path": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                     "content_type": "application/grpc", "status": 200, "at": time.time()}
            decode(request, entry)
            record(entry)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    write_port(port_file, port)
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--answers", default="")
    ap.add_argument("--grpc-port-file")
    args = ap.parse_args()
    answers = [a for a in args.answers.split(",") if a]
    lock = threading.Lock()

    def record(entry):
        with lock, open(args.out, "a") as out:
            out.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def read_body(self):
            if self.headers.get("transfer-encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("content-length", "0")))
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()

        def do_POST(self):
            body = self.read_body()
            with lock:
                answer = answers.pop(0) if answers else "200"
            status, _, option = answer.partition(":")
            status = int(status)
            entry = {
                "transport": "http",
                "path": self.path,
                "content_type": self.headers.get("content-type"),
                "status": status,
                "at": time.time(),
            }
            try:
                request = logs_service_pb2.ExportLogsServiceRequest()
                request.ParseFromString(body)
                decode(request, entry)
            except Exception as e:  # noqa: BLE001 - the test reads the error
                entry["error"] = repr(e)
            response = logs_service_pb2.ExportLogsServiceResponse()
            headers = {"content-type": "application/x-protobuf"}
            if option.startswith("rejected="):
                response.partial_success.rejected_log_records = int(option.split("=")[1])
                response.partial_success.error_message = "test receiver rejects"
            elif option.startswith("retry-after="):
                headers["retry-after"] = option.split("=")[1]
            reply = response.SerializeToString() if status == 200 else b"{}"
            record(entry)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    grpc_server = serve_grpc(args.grpc_port_file, record) if args.grpc_port_file else None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    write_port(args.port_file, server.server_address[1])
    try:
        server.serve_forever()
    finally:
        if grpc_server:
            grpc_server.stop(0)


if __name__ == "__main__":
    main()
