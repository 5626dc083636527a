#!/usr/bin/env python3
"""A registry front that sends blob GETs to a "CDN" on another loopback host.

Front (127.0.0.1): demands Basic auth, proxies every request to the upstream
registry, except GET /v2/<repo>/blobs/<digest>, answered with a 307 to the CDN
(127.0.0.2) with a signed-looking query, as Quay does. The CDN serves the blob
from upstream and logs, per request, whether an Authorization header arrived.
Prints "READY front=<port> cdn=<port>". Tests only.
"""
import argparse
import base64
import http.client
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# socketserver's default listen backlog is 5: a burst of connections overflows
# it and the kernel drops SYNs, adding seconds of retransmit delay that no real
# server would add.
ThreadingHTTPServer.request_queue_size = 1024
from urllib.parse import urlparse

BLOB_GET = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "authorization", "content-length"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="host:port of a plain-HTTP registry")
    p.add_argument("--user", required=True, help="user:password the front demands")
    p.add_argument("--cdn-host", default="127.0.0.2")
    p.add_argument("--log", required=True)
    args = p.parse_args()
    expected = "Basic " + base64.b64encode(args.user.encode()).decode()
    log_lock = threading.Lock()
    cdn_port = [0]

    def upstream_request(method, path, headers, body=None):
        conn = http.client.HTTPConnection(args.upstream, timeout=60)
        conn.request(method, path, body=body, headers=headers)
        return conn, conn.getresponse()

    def relay(handler, resp, rewrite_location=None):
        handler.send_response(resp.status)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "location" and rewrite_location:
                v = rewrite_location(v)
            handler.send_header(k, v)
        data = resp.read() if length is None and handler.command != "HEAD" else None
        if data is not None:
            handler.send_header("Content-Length", str(len(data)))
        elif length is not None:
            handler.send_header("Content-Length", length)
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if data is not None:
            handler.wfile.write(data)
            return
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            handler.wfile.write(chunk)

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("front: " + fmt % a + "\n")

        def handle_any(self):
            if self.headers.get("Authorization") != expected:
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"front wants credentials"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="front"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            m = BLOB_GET.match(urlparse(self.path).path)
            if self.command == "GET" and m:
                target = f"http://{args.cdn_host}:{cdn_port[0]}/cdn/{m.group(1)}/{m.group(2)}?signature=s3cr3t&expires=600"
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn, resp = upstream_request(self.command, self.path, headers, body)
            try:
                # Upload locations come back host-relative (with their own query), as some registries send them.
                relay(self, resp, lambda v: v.replace(f"http://{args.upstream}", ""))
            finally:
                conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    class Cdn(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("cdn: " + fmt % a + "\n")

        def do_GET(self):
            parsed = urlparse(self.path)
            with log_lock, open(args.log, "a") as f:
                f.write(json.dumps({"path": parsed.path, "authorization": self.headers.get("Authorization"),
                                    "range": self.headers.get("Range")}) + "\n")
            m = re.match(r"^/cdn/(.+)/(sha256:[0-9a-f]{64})$", parsed.path)
            if not m or "signature=s3cr3t" not in parsed.query:
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {"Range": self.headers["Range"]} if self.headers.get("Range") else {}
            conn, resp = upstream_request("GET", f"/v2/{m.group(1)}/blobs/{m.group(2)}", headers)
            try:
                relay(self, resp)
            finally:
                conn.close()

    front = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    cdn = ThreadingHTTPServer((args.cdn_host, 0), Cdn)
    front.daemon_threads = cdn.daemon_threads = True
    cdn_port[0] = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    print(f"READY front={front.server_address[1]} cdn={cdn_port[0]}", flush=True)
    front.serve_forever()


if __name__ == "__main__":
    main()
