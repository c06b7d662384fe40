#!/usr/bin/env python3
"""An OTLP/HTTP logs receiver for the audit sink's e2e test (test-harness/e2e/tests/e2e_audit_otlp.rs).

Decodes every POST with the official `opentelemetry-proto` messages (ExportLogsServiceRequest)
and appends one JSON line per request to --out: path, content type, the answer it gave, the
time it arrived, the resource attributes and each log record (body, time, severity,
attributes, event name). A body that does not decode is recorded as {"error": ...}.

It answers the requests in the order given by --answers (comma-separated), then 200:
  200                  success (empty ExportLogsServiceResponse)
  200:rejected=N       success with partial_success.rejected_log_records = N
  503:retry-after=S    a status with a Retry-After header (any status; retry-after optional)

Usage: otlp_logs_receiver.py --port-file PATH --out PATH [--answers LIST]
Listens on 127.0.0.1, a free port, written to --port-file once it is listening.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--answers", default="")
    args = ap.parse_args()
    answers = [a for a in args.answers.split(",") if a]
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                answer = answers.pop(0) if answers else "200"
            status, _, option = answer.partition(":")
            status = int(status)
            entry = {
                "path": self.path,
                "content_type": self.headers.get("content-type"),
                "status": status,
                "at": time.time(),
            }
            try:
                request = logs_service_pb2.ExportLogsServiceRequest()
                request.ParseFromString(body)
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
                                "time_unix_nano": lr.time_unix_nano,
                                "observed_time_unix_nano": lr.observed_time_unix_nano,
                                "severity_number": lr.severity_number,
                                "event_name": lr.event_name,
                                "attributes": {kv.key: any_value(kv.value) for kv in lr.attributes},
                            })
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
            with lock, open(args.out, "a") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
