#!/usr/bin/env python3
"""A release signature store for tests: serves a directory laid out as
<root>/sha256=<hex>/signature-N (404 for anything absent), on a free loopback
port. Prints "READY port=<n>" once listening; logs one line per request
("GET <path> <status>") to stderr, so tests can tell whether it was asked."""
import argparse
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, " ".join(str(a) for a in args)))
        sys.stderr.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=args.root))
    print("READY port=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
