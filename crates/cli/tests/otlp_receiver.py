"""A plain OTLP/HTTP trace receiver for the tests, on the official protobuf definitions
(the `opentelemetry-proto` package): decodes each `POST /v1/traces` as its Content-Type says
(protobuf, or JSON with the OTLP JSON encoding's hex ids) and appends the request, as JSON
with hex ids, one per line, to OUT. Prints `listening PORT` once it listens.

Usage: python otlp_receiver.py serve OUT
       python otlp_receiver.py check FILE   (decodes an OTLP JSON request; prints it as one line)
"""

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _walk_spans(doc, convert):
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ID_FIELDS:
                    if span.get(key):
                        span[key] = convert(span[key])
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = convert(link[key])
    return doc


def from_otlp_json(text):
    """OTLP JSON differs from protobuf's JSON mapping in one way: ids are hex, not base64."""
    doc = _walk_spans(json.loads(text), lambda h: base64.b64encode(bytes.fromhex(h)).decode())
    return json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())


def to_json(request):
    doc = json_format.MessageToDict(request)
    return _walk_spans(doc, lambda b: base64.b64decode(b).hex())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kind = self.headers.get("Content-Type", "")
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"unexpected path {self.path}")
            if kind.startswith("application/x-protobuf"):
                request = ExportTraceServiceRequest.FromString(body)
            elif kind.startswith("application/json"):
                request = from_otlp_json(body.decode())
            else:
                raise ValueError(f"unexpected Content-Type {kind!r}")
        except Exception as e:  # the test reads the reason from the file
            with open(self.server.out, "a") as f:
                f.write(json.dumps({"error": str(e)}) + "\n")
            self.send_response(400)
            self.end_headers()
            return
        with open(self.server.out, "a") as f:
            f.write(json.dumps({"content_type": kind, "request": to_json(request)}) + "\n")
        reply = ExportTraceServiceResponse()
        if kind.startswith("application/json"):
            payload, reply_type = json_format.MessageToJson(reply).encode(), "application/json"
        else:
            payload, reply_type = reply.SerializeToString(), "application/x-protobuf"
        self.send_response(200)
        self.send_header("Content-Type", reply_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    if sys.argv[1] == "check":
        with open(sys.argv[2]) as f:
            print(json.dumps(to_json(from_otlp_json(f.read()))))
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.out = sys.argv[2]
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
