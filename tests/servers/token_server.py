#!/usr/bin/env python3
"""Bearer token server for docker-registry's `auth.token` mode. Tests only.

Issues RS256 JWTs with the signing certificate in `x5c`, as distribution 2.8
verifies them (issuer, audience = service, access list, exp/nbf). Prints
"READY port=<n>" on stdout once listening; logs one JSON line per request.
"""
import argparse
import base64
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# socketserver's default listen backlog is 5: a burst of connections overflows
# it and the kernel drops SYNs, adding seconds of retransmit delay that no real
# server would add.
ThreadingHTTPServer.request_queue_size = 1024
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", action="append", default=[], help="user:password[:pull|pull,push]")
    p.add_argument("--expires", type=int, default=300, help="expires_in the token server advertises")
    p.add_argument("--lifetime", type=int, default=0,
                   help="seconds the registry will really accept a token (default: --expires)")
    p.add_argument("--anonymous-pull", action="store_true")
    p.add_argument("--log", required=True)
    args = p.parse_args()

    with open(args.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(args.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    cert_der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    users = {}
    for spec in args.user:
        parts = spec.split(":")
        users[parts[0]] = (parts[1], set((parts[2] if len(parts) > 2 else "pull,push").split(",")))

    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("token_server: " + fmt % a + "\n")

        def reply(self, status, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            qs = parse_qs(url.query)
            scopes = qs.get("scope", [])
            user, allowed = None, {"pull"} if args.anonymous_pull else set()
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except Exception:
                    name, password = "", None
                if name not in users or users[name][0] != password:
                    self.record(None, scopes, 401)
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]})
                user, allowed = name, users[name][1]
            elif not args.anonymous_pull:
                self.record(None, scopes, 401)
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
            access = []
            for scope in scopes:
                for one in scope.split(" "):
                    kind, _, rest = one.partition(":")
                    name, _, actions = rest.rpartition(":")
                    granted = [a for a in actions.split(",") if a in allowed]
                    access.append({"type": kind, "name": name, "actions": granted})
            now = int(time.time())
            # distribution accepts a token until 60 s past its exp (leeway).
            lifetime = args.lifetime or args.expires
            claims = {
                "iss": args.issuer, "sub": user or "", "aud": qs.get("service", [args.service])[0],
                "exp": now + lifetime - 60, "nbf": now - 5, "iat": now, "jti": str(uuid.uuid4()),
                "access": access,
            }
            head = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der]}
            signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
            sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
            token = signing_input + "." + b64url(sig)
            self.record(user, scopes, 200)
            self.reply(200, {"token": token, "access_token": token, "expires_in": args.expires,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

        def record(self, user, scopes, status):
            with log_lock, open(args.log, "a") as f:
                f.write(json.dumps({"user": user, "scopes": scopes, "status": status}) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
