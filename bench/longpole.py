#!/usr/bin/env python3
"""Performance pass 2: the long pole, the destination's work, the client's CPU.
Side by side in one run, ratios printed:

  - loopback, ~600 MB (--scale) and ~3 GB (--big-scale): fastsync against the
    mirror floor (curl --parallel GETs and POST+PUTs at once) and skopeo x16;
    CPU of every process: fastsync against curl doing the same GETs and PUTs
    plus sha256sum of the same bytes; the destination registry's CPU against
    the floor's destination (curl's blob uploads plus the same manifest PUTs,
    --dest-pairs interleaved pairs, medians); peak RSS; a rerun with
    everything present;
  - a source 100 ms away (fastsync-wanproxy) at 3, 10 and 30 MB/s per
    connection: fastsync at each, skopeo x16 beside the 10 and 3 MB/s runs.

  bench/longpole.py [--scale 1.0] [--big-scale 5.0] [--dest-pairs 5] [--no-big | --big-only] [--no-wan]

Writes bench/out/longpole-<time>.json; docs/perf/longpole.json is a copy.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

log = bench.log


def children_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def floor_mirror(source, blobs, blob_dir, workdir, source_host=None, parallel=64):
    """curl GETs (to /dev/null) and POST+PUTs of the same blobs at once: seconds, curl CPU, destination CPU."""
    get_cfg = bench.curl_get_config(source_host or source.host, blobs, workdir)
    dest = bench.Registry(workdir, "floor")
    try:
        put = bench.put_floor_commands(dest, blobs, blob_dir, workdir, parallel)
        cpu, dest_cpu, src_cpu = children_cpu(), dest.cpu_seconds(), source.cpu_seconds()
        t0 = time.perf_counter()
        getter = subprocess.Popen(bench.curl_parallel(get_cfg, parallel))
        put()
        getter.wait()
        return {"seconds": time.perf_counter() - t0, "curl_cpu_seconds": children_cpu() - cpu,
                "dest_cpu_seconds": dest.cpu_seconds() - dest_cpu, "source_cpu_seconds": source.cpu_seconds() - src_cpu}
    finally:
        dest.stop()


MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])


def fixture_manifests(source, fixture, workdir):
    """Every manifest a mirror of the fixture pushes, as files: (reference, path, media type), children before
    their lists, each top manifest under a tag like the mirror's."""
    out_dir = os.path.join(workdir, "manifests")
    os.makedirs(out_dir, exist_ok=True)

    def fetch(repo, digest):
        req = urllib.request.Request(f"http://{source.host}/v2/{repo}/manifests/{digest}",
                                     headers={"Accept": MANIFEST_ACCEPT})
        with urllib.request.urlopen(req) as resp:
            path = os.path.join(out_dir, digest[7:])
            with open(path, "wb") as f:
                f.write(resp.read())
            return path, resp.headers["Content-Type"]

    children, tops = [], []
    prefix = f"{fixture['version']}-{fixture['arch']}"
    for image in fixture["components"] + [fixture["release"]]:
        for child in image.get("children", []):
            children.append((child, *fetch(image["repository"], child)))
        tag = prefix + ("-" + image["name"] if image is not fixture["release"] else "")
        tops.append((tag, *fetch(image["repository"], image["digest"])))
    return children, tops


def put_manifests(dest, manifests, workdir, parallel=16):
    """curl --parallel PUTs of the manifests into the floor's repository: children, then their lists."""
    for group in manifests:
        cfg = os.path.join(workdir, "manifests.cfg")
        with open(cfg, "w") as f:
            f.write("next\n".join(f'url = "http://{dest.host}/v2/floor/manifests/{ref}"\nupload-file = "{path}"\n'
                                  f'output = "/dev/null"\nheader = "Content-Type: {media_type}"\nfail\n'
                                  for ref, path, media_type in group))
        subprocess.run(["curl", "-s", "--no-progress-meter", "--parallel", "--parallel-max", str(parallel), "-K", cfg],
                       check=True, stderr=subprocess.DEVNULL)


def syscalls(registry):
    """Read and write system calls the registry process made so far (/proc/<pid>/io)."""
    with open(f"/proc/{registry.proc.pid}/io") as f:
        counters = dict(line.split(":") for line in f)
    return int(counters["syscr"]) + int(counters["syscw"])


def destination_work(source, fixture, blobs, blob_dir, workdir, pairs):
    """The destination registry's CPU and system calls: fastsync's mirror against the floor's uploads of the same
    blobs plus the same manifests (what any mirror must send), each into a fresh registry, in `pairs` interleaved
    pairs (the first of a pair alternates): CPU time on a shared machine wanders by a quarter from run to run."""
    manifests = fixture_manifests(source, fixture, workdir)
    floor_runs, fastsync_runs = [], []

    def floor():
        dest = bench.Registry(workdir, "floor")
        try:
            cpu, calls = dest.cpu_seconds(), syscalls(dest)
            bench.put_floor_commands(dest, blobs, blob_dir, workdir, 64)()
            blobs_cpu = dest.cpu_seconds() - cpu
            put_manifests(dest, manifests, workdir)
            floor_runs.append({"cpu_seconds": dest.cpu_seconds() - cpu, "blobs_only_cpu_seconds": blobs_cpu,
                               "syscalls": syscalls(dest) - calls})
        finally:
            dest.stop()

    def mirror():
        dest = bench.Registry(workdir, "fastsync")
        try:
            cpu, calls = dest.cpu_seconds(), syscalls(dest)
            subprocess.run(bench.fastsync_args(source.host, dest), check=True, stdout=subprocess.DEVNULL)
            fastsync_runs.append({"cpu_seconds": dest.cpu_seconds() - cpu, "syscalls": syscalls(dest) - calls})
        finally:
            dest.stop()

    for i in range(pairs):
        for run in ((floor, mirror) if i % 2 == 0 else (mirror, floor)):
            run()
        log(f"  destination CPU, pair {i + 1}/{pairs}: floor {floor_runs[-1]['cpu_seconds']:.2f}s "
            f"(blobs only {floor_runs[-1]['blobs_only_cpu_seconds']:.2f}s), fastsync {fastsync_runs[-1]['cpu_seconds']:.2f}s")
    med = bench.median_of
    out = {
        "pairs": pairs,
        "manifests": sum(len(g) for g in manifests),
        "floor_cpu_seconds": med([r["cpu_seconds"] for r in floor_runs]),
        "floor_blobs_only_cpu_seconds": med([r["blobs_only_cpu_seconds"] for r in floor_runs]),
        "fastsync_cpu_seconds": med([r["cpu_seconds"] for r in fastsync_runs]),
        "floor_syscalls": med([r["syscalls"] for r in floor_runs]),
        "fastsync_syscalls": med([r["syscalls"] for r in fastsync_runs]),
        "floor_runs": floor_runs,
        "fastsync_runs": fastsync_runs,
    }
    out["cpu_ratio"] = out["fastsync_cpu_seconds"] / out["floor_cpu_seconds"]
    out["syscall_ratio"] = out["fastsync_syscalls"] / out["floor_syscalls"]
    return out


def sha256_cpu(blob_dir):
    cpu = children_cpu()
    files = [os.path.join(blob_dir, f) for f in os.listdir(blob_dir)]
    for i in range(0, len(files), 200):
        subprocess.run(["sha256sum", *files[i:i + 200]], check=True, stdout=subprocess.DEVNULL)
    return children_cpu() - cpu


def fastsync(source, workdir, source_host=None, rerun=False, extra=()):
    src_cpu = source.cpu_seconds()
    m = bench.run_fastsync(source, workdir, list(extra), source_host=source_host, rerun=rerun)
    m["source_cpu_seconds"] = source.cpu_seconds() - src_cpu
    return m


def loopback(label, args, scale, workdir, then=None):
    """`then(source, fixture)` runs before the source is stopped (the WAN runs reuse its fixture)."""
    source = bench.Registry(workdir, f"source-{label}")
    try:
        a = argparse.Namespace(components=args.components, scale=scale)
        log(f"{label}: pushing the fixture (scale {scale})")
        fixture, blobs = bench.push_fixture(source, a, workdir)
        total = fixture["unique_blob_bytes"]
        blob_dir = os.path.join(workdir, f"blobs-{label}")
        bench.download_blobs(source, blobs, blob_dir)
        hash_cpu = sha256_cpu(blob_dir)
        rounds = []
        for i in range(args.repeat):
            log(f"{label}: round {i + 1}/{args.repeat}")
            f = floor_mirror(source, blobs, blob_dir, workdir)
            m = fastsync(source, workdir, rerun=(i == 0))
            s = bench.run_skopeo(source, fixture, workdir) if not args.no_skopeo else None
            log(f"  floor {f['seconds']:.2f}s  fastsync {m['seconds']:.2f}s" + (f"  skopeo {s:.2f}s" if s else ""))
            rounds.append({"floor": f, "fastsync": m, "skopeo_seconds": s})
        work = None
        if args.dest_pairs > 0:
            log(f"{label}: the destination's work, {args.dest_pairs} interleaved pairs")
            work = destination_work(source, fixture, blobs, blob_dir, workdir, args.dest_pairs)
        shutil.rmtree(blob_dir, ignore_errors=True)
        med = bench.median_of
        out = {
            "bytes": total, "unique_blobs": len(blobs), "sha256sum_cpu_seconds": hash_cpu,
            "floor_seconds": med([r["floor"]["seconds"] for r in rounds]),
            "floor_curl_cpu_seconds": med([r["floor"]["curl_cpu_seconds"] for r in rounds]),
            "floor_dest_cpu_seconds": med([r["floor"]["dest_cpu_seconds"] for r in rounds]),
            "fastsync_seconds": med([r["fastsync"]["seconds"] for r in rounds]),
            "fastsync_cpu_seconds": med([r["fastsync"]["cpu_seconds"] for r in rounds]),
            "fastsync_dest_cpu_seconds": med([r["fastsync"]["dest_cpu_seconds"] for r in rounds]),
            "fastsync_source_cpu_seconds": med([r["fastsync"]["source_cpu_seconds"] for r in rounds]),
            "fastsync_peak_rss_mb": max(r["fastsync"]["rss_mb"] for r in rounds),
            "requests": rounds[0]["fastsync"]["requests"],
            "rerun": rounds[0]["fastsync"]["rerun"],
            "rounds": rounds,
        }
        if work:
            out["destination_work"] = work
        if not args.no_skopeo:
            out["skopeo_seconds"] = med([r["skopeo_seconds"] for r in rounds])
        out["ratios"] = {
            "fastsync_over_floor": out["fastsync_seconds"] / out["floor_seconds"],
            "client_cpu_over_curl_plus_sha256": out["fastsync_cpu_seconds"] / (out["floor_curl_cpu_seconds"] + hash_cpu),
            "dest_cpu_over_floor_dest": out["fastsync_dest_cpu_seconds"] / out["floor_dest_cpu_seconds"],
        }
        if "skopeo_seconds" in out:
            out["ratios"]["skopeo_over_fastsync"] = out["skopeo_seconds"] / out["fastsync_seconds"]
        if then:
            then(source, fixture)
        return out
    finally:
        source.stop()


def wan(args, workdir, source, fixture):
    """The loopback fixture again, its source now 100 ms away at three per-connection rates."""
    total = fixture["unique_blob_bytes"]
    rows = []
    for rate in (30, 10, 3):
        proxy = bench.Proxy(source.host, 50, rate)
        try:
            m = fastsync(source, workdir, source_host=proxy.host)
            row = {"rate_mb_per_s_per_connection": rate, "fastsync_seconds": m["seconds"],
                   "fastsync_peak_rss_mb": m["rss_mb"]}
            if rate in (10, 3) and not args.no_skopeo:
                row["skopeo_seconds"] = bench.run_skopeo(source, fixture, workdir, source_host=proxy.host)
            log(f"wan 100 ms RTT, {rate} MB/s per connection: fastsync {m['seconds']:.1f}s"
                + (f", skopeo x16 {row['skopeo_seconds']:.1f}s" if "skopeo_seconds" in row else ""))
            rows.append(row)
        finally:
            proxy.stop()
    by_rate = {r["rate_mb_per_s_per_connection"]: r for r in rows}
    ratios = {"time_at_3_over_time_at_30": by_rate[3]["fastsync_seconds"] / by_rate[30]["fastsync_seconds"]}
    if "skopeo_seconds" in by_rate[10]:
        ratios["skopeo_over_fastsync_at_10"] = by_rate[10]["skopeo_seconds"] / by_rate[10]["fastsync_seconds"]
        ratios["skopeo_over_fastsync_at_3"] = by_rate[3]["skopeo_seconds"] / by_rate[3]["fastsync_seconds"]
    return {"rtt_ms": 100, "bytes": total, "rows": rows, "ratios": ratios}


def render(r):
    lines = []
    checks = []
    for label, goal in (("loopback", 1.35), ("big", 1.2)):
        if label not in r:
            continue
        x = r[label]
        gb = x["bytes"] / 1e9
        lines.append(f"{label}: {x['bytes'] / 1e6:.0f} MB, {x['unique_blobs']} blobs: floor {x['floor_seconds']:.2f}s, "
                     f"fastsync {x['fastsync_seconds']:.2f}s" +
                     (f", skopeo x16 {x['skopeo_seconds']:.2f}s" if "skopeo_seconds" in x else ""))
        lines.append(f"  CPU per GB: fastsync {x['fastsync_cpu_seconds'] / gb:.2f}s, curl+sha256sum "
                     f"{(x['floor_curl_cpu_seconds'] + x['sha256sum_cpu_seconds']) / gb:.2f}s; destination registry "
                     f"{x['fastsync_dest_cpu_seconds'] / gb:.2f}s vs floor's {x['floor_dest_cpu_seconds'] / gb:.2f}s; "
                     f"source registry {x['fastsync_source_cpu_seconds'] / gb:.2f}s; peak RSS {x['fastsync_peak_rss_mb']:.0f} MB")
        lines.append("  requests: " + ", ".join(f"{k} {v}" for k, v in x["requests"].items() if v))
        ra = x["ratios"]
        checks.append((f"{label}: fastsync / mirror floor", f"{ra['fastsync_over_floor']:.2f}", f"<= {goal}",
                       ra["fastsync_over_floor"] <= goal))
        checks.append((f"{label}: client CPU / (curl + sha256sum)", f"{ra['client_cpu_over_curl_plus_sha256']:.2f}",
                       "<= 1.3", ra["client_cpu_over_curl_plus_sha256"] <= 1.3))
        if "destination_work" in x:
            w = x["destination_work"]
            lines.append(f"  destination, medians of {w['pairs']} interleaved pairs: CPU fastsync "
                         f"{w['fastsync_cpu_seconds']:.2f}s, floor {w['floor_cpu_seconds']:.2f}s (its blob uploads "
                         f"alone {w['floor_blobs_only_cpu_seconds']:.2f}s, then {w['manifests']} manifest PUTs); read+write "
                         f"system calls {w['fastsync_syscalls']:.0f} vs {w['floor_syscalls']:.0f}")
            checks.append((f"{label}: destination CPU / floor's (blob uploads + manifest PUTs)",
                           f"{w['cpu_ratio']:.2f}", "<= 1.1", w["cpu_ratio"] <= 1.1))
        else:
            checks.append((f"{label}: destination CPU / floor's destination", f"{ra['dest_cpu_over_floor_dest']:.2f}",
                           "<= 1.1", ra["dest_cpu_over_floor_dest"] <= 1.1))
        checks.append((f"{label}: peak RSS", f"{x['fastsync_peak_rss_mb']:.0f} MB", "<= 64 MB",
                       x["fastsync_peak_rss_mb"] <= 64))
        if label == "loopback":
            rr = x["rerun"]
            checks.append(("rerun, everything present", f"{rr['seconds']:.2f} s", "<= 0.5 s", rr["seconds"] <= 0.5))
    if "wan" in r:
        w = r["wan"]
        for row in w["rows"]:
            lines.append(f"wan 100 ms RTT, {row['rate_mb_per_s_per_connection']} MB/s per connection: fastsync "
                         f"{row['fastsync_seconds']:.1f}s" +
                         (f", skopeo x16 {row['skopeo_seconds']:.1f}s" if "skopeo_seconds" in row else ""))
        ra = w["ratios"]
        checks.append(("wan: time at 3 MB/s/conn / at 30", f"{ra['time_at_3_over_time_at_30']:.2f}", "<= 1.5",
                       ra["time_at_3_over_time_at_30"] <= 1.5))
        if "skopeo_over_fastsync_at_10" in ra:
            checks.append(("wan: skopeo x16 / fastsync at 10 MB/s/conn", f"{ra['skopeo_over_fastsync_at_10']:.1f}x",
                           ">= 3x", ra["skopeo_over_fastsync_at_10"] >= 3))
    lines += ["", "| target | measured | goal | |", "|---|---|---|---|"]
    for name, got, goal, ok in checks:
        lines.append(f"| {name} | {got} | {goal} | {'met' if ok else 'MISSED'} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--big-scale", type=float, default=5.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dest-pairs", type=int, default=5,
                   help="interleaved pairs for the destination's CPU (0: only the CPU during the timed rounds)")
    p.add_argument("--no-big", action="store_true")
    p.add_argument("--big-only", action="store_true", help="only the ~3 GB loopback run")
    p.add_argument("--no-wan", action="store_true")
    p.add_argument("--no-skopeo", action="store_true")
    args = p.parse_args()
    for tool in [bench.FASTSYNC, bench.FIXTURE, bench.WANPROXY]:
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is not built (run .ci/setup)")
    with bench.workspace("longpole") as workdir:
        results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
        def then(source, fixture):
            if not args.no_wan:
                results["wan"] = wan(args, workdir, source, fixture)

        if not args.big_only:
            results["loopback"] = loopback("loopback", args, args.scale, workdir, then)
        if not args.no_big:
            big_args = argparse.Namespace(**{**vars(args), "repeat": 1, "dest_pairs": 0})
            results["big"] = loopback("big", big_args, args.big_scale, workdir)
    results["summary"] = render(results)
    bench.write_results("longpole", results)
    print(results["summary"])


if __name__ == "__main__":
    main()
