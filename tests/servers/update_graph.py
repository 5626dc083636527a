#!/usr/bin/env python3
"""A local OpenShift update service for tests: GET /graph?channel=<c>&arch=<a>
answers the JSON graph --channel <c>=<file> holds (for --arch only; a
--channel <c>@<a>=<file> answers for architecture <a>), as the real service does: 406 unless Accept allows application/json; 404 for a
channel it does not know. GET /graph-data answers the --graph-data file (the
graph-data tarball). --mode not-json answers an HTML page, --mode 406
always refuses. Prints "READY port=<n>"; logs "<path> accept=<Accept>" per
request to stderr."""
import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--channel", action="append", default=[], help="name=file")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--mode", default="normal", choices=["normal", "not-json", "406"])
    p.add_argument("--graph-data", help="the tarball GET /graph-data answers with")
    args = p.parse_args()
    graphs = {}
    for c in args.channel:
        name, path = c.split("=", 1)
        channel, _, arch = name.partition("@")
        graphs[(channel, arch or args.arch)] = path

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            pass

        def answer(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            accept = self.headers.get("Accept", "")
            sys.stderr.write("%s accept=%s\n" % (self.path, accept))
            sys.stderr.flush()
            if url.path == "/graph-data" and args.graph_data:
                with open(args.graph_data, "rb") as f:
                    return self.answer(200, f.read(), "application/gzip")
            if args.mode == "406" or "application/json" not in accept:
                return self.answer(406, '{"kind":"Error","value":"Not Acceptable"}')
            if args.mode == "not-json":
                return self.answer(200, "<html><body>Service Unavailable</body></html>", "text/html")
            key = (q.get("channel", [""])[0], q.get("arch", [""])[0])
            if url.path != "/graph" or key not in graphs:
                return self.answer(404, '{"kind":"Error","value":"unknown channel"}')
            with open(graphs[key]) as f:
                self.answer(200, f.read())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("READY port=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
