#!/usr/bin/env python3
"""A Bearer-token front for a plain registry, as production fronts behave. Tests only.

The front is its own token server (GET /token with Basic credentials) and
checks every /v2/ request the way gateways do: the token's age is taken when the
request *arrives*, but a refusal (401 with a Bearer challenge) is only sent after
the whole request body has been read. Tokens live --lifetime seconds; the
token server advertises --expires (default: the lifetime) as expires_in.
Accepted requests are relayed to --upstream, bodies streamed both ways.

--refuse-early answers a refused request at once, without reading its body,
and closes the connection, as CNCF distribution's own token check does.

--refuse-every-put N also refuses every Nth blob PUT that carries a body as if
its token had just expired (the body is read, then 401) — the case of a token
that dies while an upload waits to be sent.

Logs a JSON line per request: time, method, path, status, and "expired" when a
token was refused for its age. Prints "READY port=<n>".
"""
import argparse
import base64
import http.client
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# socketserver's default listen backlog is 5: a burst of connections overflows
# it and the kernel drops SYNs, adding seconds of retransmit delay that no real
# server would add.
ThreadingHTTPServer.request_queue_size = 1024

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "authorization", "content-length",
              "proxy-connection"}
CHUNK = 256 * 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="host:port of a plain-HTTP registry")
    p.add_argument("--user", required=True, help="user:password the token server accepts")
    p.add_argument("--lifetime", type=float, default=2.0, help="seconds a token is accepted")
    p.add_argument("--expires", type=int, default=0, help="expires_in advertised (default: lifetime)")
    p.add_argument("--refuse-every-put", type=int, default=0)
    p.add_argument("--refuse-early", action="store_true")
    p.add_argument("--log", required=True)
    args = p.parse_args()
    expected_basic = "Basic " + base64.b64encode(args.user.encode()).decode()
    tokens = {}  # token -> issue time
    lock = threading.Lock()
    port = [0]
    puts_with_body = [0]

    def record(entry):
        entry["time"] = time.time()
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("bearer_front: " + fmt % a + "\n")

        def reply_json(self, status, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def issue_token(self):
            if self.headers.get("Authorization", "") != expected_basic:
                record({"method": "GET", "path": "/token", "status": 401})
                return self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            token = secrets.token_urlsafe(24)
            with lock:
                tokens[token] = time.monotonic()
            record({"method": "GET", "path": "/token", "status": 200})
            expires = args.expires or max(1, int(args.lifetime))
            self.reply_json(200, {"token": token, "expires_in": expires})

        def handle_any(self):
            if self.path.startswith("/token"):
                return self.issue_token()
            arrived = time.monotonic()
            arrived_at = time.time()  # logged: the token in force is judged at arrival, not when the reply ends
            # The verdict is decided on arrival...
            header = self.headers.get("Authorization", "")
            verdict = "missing"
            if header.startswith("Bearer "):
                with lock:
                    issued = tokens.get(header[7:])
                if issued is None:
                    verdict = "unknown"
                elif arrived - issued > args.lifetime:
                    verdict = "expired"
                else:
                    verdict = "ok"
            length = int(self.headers.get("Content-Length") or 0)
            if verdict == "ok" and args.refuse_every_put and self.command == "PUT" and "/blobs/uploads/" in self.path \
                    and length > 0:
                with lock:
                    puts_with_body[0] += 1
                    if puts_with_body[0] % args.refuse_every_put == 0:
                        verdict = "expired"
            # ...but, like many gateways, only given once the body is read.
            if verdict != "ok" and args.refuse_early:
                self.close_connection = True
                body = None
            else:
                body = self.rfile.read(length) if length else None
            if verdict != "ok":
                record({"method": self.command, "path": self.path, "status": 401, "expired": verdict == "expired",
                        "body": length, "arrived": arrived_at})
                challenge = f'Bearer realm="http://127.0.0.1:{port[0]}/token",service="bearer-front"'
                extra = {"WWW-Authenticate": challenge}
                if self.close_connection:
                    extra["Connection"] = "close"
                return self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "token " + verdict}]},
                                       extra)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(args.upstream, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in HOP_BY_HOP:
                        continue
                    if k.lower() == "location":
                        v = v.replace(f"http://{args.upstream}", "")  # keep uploads coming through us
                    self.send_header(k, v)
                length_out = resp.getheader("Content-Length")
                data = None
                if length_out is None and self.command != "HEAD":
                    data = resp.read()
                    length_out = str(len(data))
                if length_out is not None:
                    self.send_header("Content-Length", length_out)
                self.end_headers()
                if self.command != "HEAD":
                    if data is not None:
                        self.wfile.write(data)
                    else:
                        while True:
                            piece = resp.read(CHUNK)
                            if not piece:
                                break
                            self.wfile.write(piece)
                record({"method": self.command, "path": self.path, "status": resp.status, "arrived": arrived_at})
            finally:
                conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port[0] = server.server_address[1]
    print(f"READY port={port[0]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
