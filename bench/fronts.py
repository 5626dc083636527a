#!/usr/bin/env python3
"""The bench release (190 components, ~600 MB) mirrored through the fronts
production registries sit behind, each checked exact at the destination:

  tokens  source and destination behind Bearer gateways whose tokens live 2 s
          (tests/servers/bearer_front.py), the source slowed so the run
          outlives many tokens
  nginx   destination behind nginx with client_max_body_size 4m (413 -> chunks)
  tls     source trusted through the system store (SSL_CERT_FILE), destination
          through --ca-file, in one run

  bench/fronts.py [--scale 1.0] [--only tokens,nginx,tls]

Prints one line per front (seconds, MB/s, what the front saw) and writes
bench/out/fronts-<time>.json. Exit 1 if any mirror is not exact.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the benchmark's registries, fixture and process helpers)

ROOT = bench.ROOT


def log(msg):
    print(f"fronts: {msg}", file=sys.stderr, flush=True)


def start(argv, **kwargs):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kwargs)
    bench.PROCESSES.append(proc)
    line = proc.stdout.readline()
    if "port=" not in line:
        raise RuntimeError(f"{argv[0]} did not start")
    return proc, "127.0.0.1:" + line.split("port=")[1].split()[0]


def bearer_front(upstream, workdir, name, extra=()):
    log_path = os.path.join(workdir, f"{name}.jsonl")
    open(log_path, "w").close()
    _, host = start([sys.executable, os.path.join(ROOT, "tests/servers/bearer_front.py"), "--upstream", upstream.host,
                     "--user", "bot:pw", "--lifetime", "2", "--log", log_path, *extra],
                    stderr=subprocess.DEVNULL)
    return host, log_path


def nginx_front(upstream, workdir, max_body):
    prefix = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    port = bench.free_port()
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  log_format fronted escape=json '{{"method":"$request_method","status":$status}}';
  access_log {prefix}/logs/access.log fronted;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size {max_body};
    location / {{
      proxy_pass http://{upstream.host};
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 600s;
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-g", "daemon off;"],
                            stderr=subprocess.DEVNULL)
    bench.PROCESSES.append(proc)
    host = f"127.0.0.1:{port}"
    bench.wait_http(f"http://{host}/v2/")
    return host, os.path.join(prefix, "logs", "access.log")


class TlsRegistry(bench.Registry):
    """A docker-registry serving TLS with a CA of its own."""

    def __init__(self, workdir, name):
        self.ca = os.path.join(tempfile.mkdtemp(prefix=f"{name}-ca-", dir=workdir), "ca.pem")
        d = os.path.dirname(self.ca)
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/ca.key", "-out", self.ca, "-days", "2", "-subj", f"/CN={name} bench CA")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", "/CN=127.0.0.1")
        run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", self.ca, "-CAkey", f"{d}/ca.key",
            "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "2", "-extfile", ext)
        self.tls = (f"{d}/server.pem", f"{d}/server.key")
        super().__init__(workdir, name)

    def config_extra(self):
        return f"  tls: {{certificate: {self.tls[0]}, key: {self.tls[1]}}}\n"


def write_secret(path, hosts):
    import base64
    auth = base64.b64encode(b"bot:pw").decode()
    with open(path, "w") as f:
        json.dump({"auths": {h: {"auth": auth} for h in hosts}}, f)
    return path


def check_exact(dest_url, fixture, ca=None):
    """Every tag at the destination has the fixture's digest, every blob is there with its size."""
    problems = []
    ctx = None
    if ca:
        import ssl
        ctx = ssl.create_default_context(cafile=ca)
    def request(method, path, accept=None):
        req = urllib.request.Request(dest_url + path, method=method)
        if accept:
            req.add_header("Accept", accept)
        return urllib.request.urlopen(req, context=ctx, timeout=60)
    accept = ("application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,"
              "application/vnd.docker.distribution.manifest.list.v2+json,"
              "application/vnd.docker.distribution.manifest.v2+json")
    images = [(f"{bench.VERSION}-{bench.ARCH}-{c['name']}", c) for c in fixture["components"]]
    images.append((f"{bench.VERSION}-{bench.ARCH}", fixture["release"]))
    seen = set()
    for tag, img in images:
        try:
            got = request("HEAD", f"/v2/{bench.DEST_REPO}/manifests/{tag}", accept).headers["Docker-Content-Digest"]
        except Exception as e:  # noqa: BLE001
            problems.append(f"{tag}: {e}")
            continue
        if got != img["digest"]:
            problems.append(f"{tag}: digest {got}, expected {img['digest']}")
        for b in img["blobs"]:
            if b in seen:
                continue
            seen.add(b)
            try:
                request("HEAD", f"/v2/{bench.DEST_REPO}/blobs/{b}")
            except Exception as e:  # noqa: BLE001
                problems.append(f"{tag}: blob {b}: {e}")
    return problems, len(seen)


def mirror(argv, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    return r, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--only", default="tokens,nginx,tls")
    args = p.parse_args()
    wanted = set(args.only.split(","))
    workdir = tempfile.mkdtemp(prefix="fastsync-fronts-")
    results = {}
    failed = False
    try:
        if "tls" in wanted:
            source = TlsRegistry(workdir, "tls-source")
            dest = TlsRegistry(workdir, "tls-dest")
            out = os.path.join(workdir, "fixture-tls.json")
            subprocess.run([bench.FIXTURE, "--registry", f"https://{source.host}", "--ca-file", source.ca,
                            "--components", str(args.components), "--scale", str(args.scale), "--refs-host", "quay.io",
                            "--version", bench.VERSION, "--out", out], check=True)
            fixture = json.load(open(out))
            system = os.path.join(workdir, "system.pem")
            with open(system, "w") as f:
                f.write(open("/etc/ssl/certs/ca-certificates.crt").read() + open(source.ca).read())
            secret = write_secret(os.path.join(workdir, "ps-tls.json"), [])
            r, secs = mirror([bench.FASTSYNC, "--version", bench.VERSION, "--source-registry",
                              f"{source.host}/openshift-release-dev/ocp-release", "--dest-registry", dest.host,
                              "--pull-secret", secret, "--ca-file", dest.ca, "--quiet", "--no-signatures"],
                             env={**os.environ, "SSL_CERT_FILE": system})
            problems, blobs = check_exact(f"https://{dest.host}", fixture, dest.ca)
            results["tls"] = {"exit_code": r.returncode, "seconds": secs, "problems": problems, "blobs": blobs,
                              "mb_per_s": fixture["unique_blob_bytes"] / secs / 1e6}
            log(f"tls (system store + --ca-file): exit {r.returncode}, {secs:.1f} s, "
                f"{results['tls']['mb_per_s']:.0f} MB/s, {len(problems)} problems, {blobs} blobs checked")
            failed |= r.returncode != 0 or bool(problems)
            source.stop()
            dest.stop()

        if wanted & {"tokens", "nginx"}:
            source = bench.Registry(workdir, "source")
            fixture, _ = bench.push_fixture(source, args, workdir)
            size = fixture["unique_blob_bytes"]

            if "nginx" in wanted:
                dest = bench.Registry(workdir, "nginx-dest")
                host, access = nginx_front(dest, workdir, "4m")
                secret = write_secret(os.path.join(workdir, "ps-nginx.json"), [])
                r, secs = mirror([bench.FASTSYNC, "--version", bench.VERSION, "--source-registry",
                                  f"{source.host}/openshift-release-dev/ocp-release", "--dest-registry", host,
                                  "--pull-secret", secret, "--quiet", "--no-signatures"])
                problems, blobs = check_exact(f"http://{dest.host}", fixture)
                seen = [json.loads(line) for line in open(access)]
                refused = sum(1 for e in seen if e["status"] == 413)
                patches = sum(1 for e in seen if e["method"] == "PATCH")
                if r.returncode != 0:
                    log(r.stdout[-3000:] + r.stderr[-3000:])
                results["nginx"] = {"exit_code": r.returncode, "seconds": secs, "problems": problems, "blobs": blobs,
                                    "refused_413": refused, "patches": patches, "mb_per_s": size / secs / 1e6}
                log(f"nginx 4m: exit {r.returncode}, {secs:.1f} s, {size / secs / 1e6:.0f} MB/s, {refused} x 413, "
                    f"{patches} PATCH, {len(problems)} problems, {blobs} blobs checked")
                failed |= r.returncode != 0 or bool(problems)
                dest.stop()

            if "tokens" in wanted:
                dest = bench.Registry(workdir, "tokens-dest")
                source_front, source_log = bearer_front(source, workdir, "source-front")
                dest_front, dest_log = bearer_front(dest, workdir, "dest-front")
                slow = bench.Proxy(source_front, 0, 10)  # 10 MB/s per connection: a run of many token lives
                secret = write_secret(os.path.join(workdir, "ps-tokens.json"), [slow.host, dest_front])
                r, secs = mirror([bench.FASTSYNC, "--version", bench.VERSION, "--source-registry",
                                  f"{slow.host}/openshift-release-dev/ocp-release", "--dest-registry", dest_front,
                                  "--pull-secret", secret, "--quiet", "--no-signatures", "--stall-timeout", "30"])
                problems, blobs = check_exact(f"http://{dest.host}", fixture)
                entries = [json.loads(line) for line in open(source_log)] + [json.loads(line) for line in open(dest_log)]
                tokens = sum(1 for e in entries if e["path"] == "/token")
                expired = sum(1 for e in entries if e.get("expired"))
                results["tokens"] = {"exit_code": r.returncode, "seconds": secs, "problems": problems, "blobs": blobs,
                                     "tokens_issued": tokens, "expired_refusals": expired, "mb_per_s": size / secs / 1e6}
                log(f"2 s tokens both sides: exit {r.returncode}, {secs:.1f} s ({secs / 2:.0f} token lives), "
                    f"{size / secs / 1e6:.0f} MB/s, {tokens} tokens issued, {expired} expired refusals, "
                    f"{len(problems)} problems, {blobs} blobs checked")
                if r.returncode != 0:
                    log(r.stdout[-2000:] + r.stderr[-2000:])
                failed |= r.returncode != 0 or bool(problems)
                slow.stop()
                dest.stop()
            source.stop()
    finally:
        bench.stop_processes()
        bench.write_results("fronts", {"scale": args.scale, "components": args.components, "results": results})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
