#!/usr/bin/env python3
"""A registry front that answers the OCI 1.1 referrers API, which Debian's
distribution 2.8 does not: GET /v2/<repo>/referrers/<digest> is answered from
--referrers (a JSON file {"<repo>@<digest>": [descriptor, ...]}, read per
request) as an OCI index; every other request is relayed to --upstream (a
plain-HTTP registry). Prints "READY port=<n>"; logs "<METHOD> <path> <status>"
per request to stderr. Tests only.
"""
import argparse
import http.client
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ThreadingHTTPServer.request_queue_size = 1024
REFERRERS = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--referrers", required=True)
    args = p.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def log(self, status):
            sys.stderr.write("%s %s %d\n" % (self.command, self.path, status))
            sys.stderr.flush()

        def answer(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.log(status)

        def relay(self):
            m = REFERRERS.match(self.path.split("?")[0])
            if m and self.command == "GET":
                with open(args.referrers) as f:
                    table = json.load(f)
                index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": table.get(m.group(1) + "@" + m.group(2), [])}
                self.answer(200, json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn = http.client.HTTPConnection(args.upstream, timeout=60)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", resp.getheader("Content-Length") or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()
            self.log(resp.status)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = relay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("READY port=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
