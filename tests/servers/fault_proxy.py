#!/usr/bin/env python3
"""An HTTP proxy in front of a real registry that injects faults. Tests only.

Rules are JSON objects, given with --rule (repeatable), applied to requests
whose method and path match, deterministically:
  {"method": "GET", "path": "/blobs/sha256:", "action": "status", "status": 503, "times": 4}
  {"method": "GET", "path": "/blobs/", "action": "reset", "after": 0.3, "every": 2, "times": 6}
Fields: method (or "*"), path (substring), with_range (true: only requests
carrying a Range header; false: only those without), action, times (how many
faults in all), every (fault every Nth match, default 1), skip (let the first N
matches through), and per action:
  status    status (500, 503...), retry_after (seconds, optional; 429 style),
            codes (the error body's codes, default ["UNAVAILABLE"])
  early     status as above, answered before the request body is read (then
            the connection is closed): an upload fails while it is still sending
  reset     after: fraction of the body sent before the connection is reset
  truncate  after: fraction sent, then a clean close (Content-Length says more)
  flip      one byte of the body changed (same length)
  stall     after: fraction sent, then silence for `seconds`
  ignore-range  the Range header is dropped: the whole body comes back, 200
  delay     the registry's answer is held for `seconds` (a slow registry)
  hold      the request waits until `count` requests whose path holds `until`
            have arrived (at most 120 s): puts it after them, whatever the timing
  gate-body reads `after_bytes` of the request body, then reads no more until
            the file `gate` exists (at most 120 s): an upload stuck mid-body
            (the socket's receive buffer is 64 KiB, so little more is taken)
            for as long as a test wants (logged with "gated": true)
--max-concurrent N answers 429 (with Retry-After: --retry-after, if given) to
a request that arrives while N are in flight, as registries that limit each
client do (logged with fault "concurrency").
Every request is logged as a JSON line (time, method, path, range, fault) when
it arrives, and again with "end": true once its answer was sent; that line's
"answered" is when the answer started out (before the client could have it).
Prints "READY port=<n>".
"""
import argparse
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# socketserver's default listen backlog is 5: a burst of connections overflows
# it and the kernel drops SYNs, adding seconds of retransmit delay that no real
# server would add.
ThreadingHTTPServer.request_queue_size = 1024

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "proxy-connection"}


def error_body(fault):
    codes = fault.get("codes", ["UNAVAILABLE"])
    return json.dumps({"errors": [{"code": c, "message": "injected fault"} for c in codes]}).encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="host:port of a plain-HTTP registry")
    p.add_argument("--rule", action="append", default=[])
    p.add_argument("--log", required=True)
    p.add_argument("--max-concurrent", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=None)
    args = p.parse_args()
    in_flight = [0]
    rules = [json.loads(r) for r in args.rule]
    for r in rules:
        r.setdefault("method", "*")
        r.setdefault("every", 1)
        r.setdefault("times", 1)
        r.setdefault("skip", 0)
        r["_matches"] = 0
        r["_fired"] = 0
    lock = threading.Lock()
    arrivals = threading.Condition()
    arrived_paths = []

    def pick_fault(method, path, has_range):
        with lock:
            for r in rules:
                if r["method"] not in ("*", method) or r.get("path", "") not in path:
                    continue
                if "with_range" in r and bool(r["with_range"]) != has_range:
                    continue
                r["_matches"] += 1
                n = r["_matches"] - r["skip"]
                if n <= 0 or r["_fired"] >= r["times"] or n % r["every"] != 0:
                    continue
                r["_fired"] += 1
                return {k: v for k, v in r.items() if not k.startswith("_")}
        return None

    def record(entry):
        entry["time"] = time.time()
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("fault_proxy: " + fmt % a + "\n")

        def handle_any(self):
            with lock:
                over = args.max_concurrent and in_flight[0] >= args.max_concurrent
                if not over:
                    in_flight[0] += 1
            if over:
                self.refuse_over_limit()
                return
            try:
                self.handle_admitted()
            finally:
                with lock:
                    in_flight[0] -= 1

        def refuse_over_limit(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                    "fault": "concurrency"})
            payload = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "too many requests"}]}).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            if args.retry_after is not None:
                self.send_header("Retry-After", str(args.retry_after))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                    "fault": "concurrency", "status": 429, "end": True})

        def handle_admitted(self):
            length = int(self.headers.get("Content-Length") or 0)
            fault = pick_fault(self.command, self.path, self.headers.get("Range") is not None)
            if fault and fault["action"] == "early":
                record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                        "fault": "early"})
                payload = error_body(fault)
                self.send_response(fault["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                self.close_connection = True
                return
            if fault and fault["action"] == "gate-body" and length:
                # A small fixed receive buffer, or the kernel's autotuning (tcp_rmem's
                # max is 32 MiB here) takes megabytes past the gate: the client would
                # see its upload move on where the test means it to be held.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                first = self.rfile.read(min(length, int(fault["after_bytes"])))
                record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                        "fault": "gate-body", "gated": True})
                deadline = time.time() + 120
                while not os.path.exists(fault["gate"]) and time.time() < deadline:
                    time.sleep(0.02)  # polls a file the test creates
                rest = self.rfile.read(length - len(first)) if length > len(first) else b""
                body = first + rest
                if len(body) < length:  # the client went away meanwhile
                    self.close_connection = True
                    return
            else:
                body = self.rfile.read(length) if length else None
            with arrivals:
                arrived_paths.append(self.path)
                arrivals.notify_all()
            if fault and fault["action"] == "hold":
                with arrivals:
                    arrivals.wait_for(lambda: sum(fault["until"] in p for p in arrived_paths) >= fault["count"],
                                      timeout=120)
            record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                    "fault": fault["action"] if fault else None})
            if fault and fault["action"] == "status":
                payload = error_body(fault)
                self.send_response(fault["status"])
                self.send_header("Content-Type", "application/json")
                if "retry_after" in fault:
                    self.send_header("Retry-After", str(fault["retry_after"]))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if fault and fault["action"] == "ignore-range":
                headers = {k: v for k, v in headers.items() if k.lower() != "range"}
            conn = http.client.HTTPConnection(args.upstream, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            if fault and fault["action"] == "delay":
                time.sleep(float(fault["seconds"]))
            answered = time.time()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in HOP_BY_HOP:
                    continue
                if k.lower() == "location":
                    v = v.replace(f"http://{args.upstream}", "")  # keep uploads coming through us
                self.send_header(k, v)
            self.send_header("Content-Length", resp.getheader("Content-Length") if self.command == "HEAD"
                             else str(len(data)))
            self.end_headers()
            try:
                self.send_body(fault, resp, data)
            finally:
                record({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                        "fault": fault["action"] if fault else None, "status": resp.status, "end": True,
                        "answered": answered})

        def send_body(self, fault, resp, data):
            if self.command == "HEAD":
                return
            if not fault or not data or not (200 <= resp.status < 300):
                self.wfile.write(data)
                return
            cut = int(len(data) * float(fault.get("after", 0.5)))
            action = fault["action"]
            if action == "flip":
                i = len(data) // 2
                self.wfile.write(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
            elif action == "reset":
                self.wfile.write(data[:cut])
                self.wfile.flush()
                # RST rather than FIN: SO_LINGER with a zero timeout.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
            elif action == "truncate":
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.close_connection = True
            elif action == "stall":
                self.wfile.write(data[:cut])
                self.wfile.flush()
                time.sleep(float(fault.get("seconds", 30)))
                self.close_connection = True
            else:
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
