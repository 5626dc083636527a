#!/usr/bin/env python3
"""Scale-out: one release mirrored by 1, 2 and 4 shard processes, each behind
its own capped network interface (fastsync-wanproxy --total-mbps, source and
destination both through it: one pod's NIC), then the manifests pass.
Side by side in one run; speed-ups are ratios to the one-process run. Four
shards run twice: together on this machine, and one at a time, each alone as
each pod of the Job has a node of its own (the Job's time is then the slowest
shard's, plus the manifests pass).

  bench/scale_out.py [--components 96] [--scale 0.3] [--mbps 2] [--repeat 1] [--fastsync-arg=--segment-size=0 ...]

Writes bench/out/scale-out-<time>.json and scale-out.png (gnuplot);
docs/perf/scale-out.json and docs/perf/scale-out.png are copies.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

log = bench.log
FASTSYNC_ARGS = []  # --fastsync-arg: given to every run


class Interface:
    """One machine's network interface: the source and the destination through one capped proxy."""

    def __init__(self, source, dest, mbps):
        self.proc = subprocess.Popen([bench.WANPROXY, "--target", source.host, "--target", dest.host, "--total-mbps",
                                      str(mbps)], stdout=subprocess.PIPE, text=True)
        bench.PROCESSES.append(self.proc)
        ports = dict(kv.split("=") for kv in self.proc.stdout.readline().split()[1:])
        self.source = "127.0.0.1:" + ports["port"]
        self.dest = "127.0.0.1:" + ports["port1"]

    def argv(self, report, extra=()):
        return [bench.FASTSYNC, "--version", bench.VERSION, "--source-registry",
                f"{self.source}/openshift-release-dev/ocp-release", "--dest-registry", self.dest, "--pull-secret",
                bench.PULL_SECRET, "--quiet", "--no-signatures", "--report", report, *FASTSYNC_ARGS, *extra]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def blob_puts(dest):
    """Committed blob uploads (PUT ...?digest=, 201) in the destination's log."""
    return sum(1 for d in dest.log_entries()
               if d.get("http.request.method") == "PUT" and "digest=" in d.get("http.request.uri", "")
               and d.get("http.response.status") == 201)


def mirror(source, workdir, shards, mbps, one_at_a_time=False):
    """Shards in parallel (or one ordinary run), then the manifests pass; each behind its own interface.

    one_at_a_time: each shard alone on this machine, as each pod of the Job has a node of its own; the blobs
    phase is then the slowest shard's time (the pods run side by side). Run together here, four shards, their
    four interfaces and both registries share two cores."""
    dest = bench.Registry(workdir, f"dest{shards}{'-apart' if one_at_a_time else ''}")
    nics = []
    try:
        t0 = time.perf_counter()
        runs = []
        shard_seconds = []
        alone = []  # one at a time: each shard's wall time

        def finish(proc, report, started):
            if proc.wait() != 0:
                raise RuntimeError(f"a shard exited {proc.returncode}")
            alone.append(time.perf_counter() - started)
            with open(report) as f:
                shard_seconds.append(json.load(f)["summary"]["seconds"])

        for k in range(shards):
            nic = Interface(source, dest, mbps)
            nics.append(nic)
            extra = ["--shard", f"{k}/{shards}", "--blobs-only"] if shards > 1 else []
            report = os.path.join(workdir, f"shard{shards}-{k}.json")
            started = time.perf_counter()
            runs.append((subprocess.Popen(nic.argv(report, extra), stdout=subprocess.DEVNULL), report, started))
            if one_at_a_time:
                finish(*runs.pop())
        for run in runs:
            finish(*run)
        blobs_phase = max(alone) if one_at_a_time else time.perf_counter() - t0
        puts_by_shards = blob_puts(dest)
        manifests_pass = 0.0
        if shards > 1:
            nic = Interface(source, dest, mbps)
            nics.append(nic)
            report = os.path.join(workdir, f"manifests{shards}.json")
            t1 = time.perf_counter()
            if subprocess.run(nic.argv(report), stdout=subprocess.DEVNULL).returncode != 0:
                raise RuntimeError("the manifests pass failed")
            manifests_pass = time.perf_counter() - t1
        total = blobs_phase + manifests_pass if one_at_a_time else time.perf_counter() - t0
        return {"shards": shards, "one_at_a_time": one_at_a_time, "seconds": total, "blobs_phase_seconds": blobs_phase,
                "manifests_pass_seconds": manifests_pass, "shard_seconds": shard_seconds,
                "blob_uploads": blob_puts(dest), "blob_uploads_by_shards": puts_by_shards}
    finally:
        for nic in nics:
            nic.stop()
        dest.stop()


def plot(out_dir, results):
    if not shutil.which("gnuplot"):
        log("gnuplot not installed: no plot")
        return None
    dat = os.path.join(out_dir, "scale-out.dat")
    with open(dat, "w") as f:
        for r in results["runs"]:
            if not r["one_at_a_time"]:  # the plot: shards side by side on this machine
                f.write(f"{r['shards']} {r['speedup']:.2f} {r['seconds']:.1f}\n")
    png = os.path.join(out_dir, "scale-out.png")
    fx = results["fixture"]
    subprocess.run(["gnuplot"], text=True, check=True, input=f"""set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set title 'Scale-out: {fx["components"]} components, {fx["unique_blob_bytes"] / 1e6:.0f} MB, {results["mbps_per_interface"]} MB/s per interface'
set xlabel 'shards (one interface each), then the manifests pass'
set ylabel 'speed-up over one process'
set xtics (1, 2, 4)
set xrange [0.5:4.5]
set yrange [0:4.5]
set key top left
plot x with lines dashtype 2 title 'linear', '{dat}' using 1:2 with linespoints pointtype 7 title 'fastsync', '' using 1:2:(sprintf("%.2fx, %.0f s", $2, $3)) with labels offset 0,1.2 notitle
""")
    return png


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--components", type=int, default=96)
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--mbps", type=float, default=2.0, help="MB/s each way through one interface")
    p.add_argument("--repeat", type=int, default=1, help="rounds; the median of each shard count is kept")
    p.add_argument("--fastsync-arg", action="append", default=[], help="passed to every fastsync run; repeatable")
    args = p.parse_args()
    FASTSYNC_ARGS.extend(args.fastsync_arg)
    for tool in [bench.FASTSYNC, bench.FIXTURE, bench.WANPROXY]:
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is not built (run .ci/setup)")
    with bench.workspace("scale-out") as workdir:
        results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "mbps_per_interface": args.mbps,
                   "fastsync_args": args.fastsync_arg}
        source = bench.Registry(workdir, "source")
        fixture, blobs = bench.push_fixture(source, args, workdir)
        results["fixture"] = {"components": args.components, "scale": args.scale,
                              "unique_blobs": fixture["unique_blobs"], "unique_blob_bytes": fixture["unique_blob_bytes"],
                              "largest_blob": fixture["largest_blob"]}
        kinds = [(1, False), (2, False), (4, False), (4, True)]
        rounds = {kind: [] for kind in kinds}
        for i in range(args.repeat):
            for n, apart in kinds:  # side by side in each round
                log(f"round {i + 1}: {n} shard(s){', one at a time' if apart else ''}")
                rounds[(n, apart)].append(mirror(source, workdir, n, args.mbps, apart))
        runs = []
        for kind in kinds:
            rs = sorted(rounds[kind], key=lambda r: r["seconds"])
            runs.append(rs[len(rs) // 2])
        for r in runs:
            r["speedup"] = runs[0]["seconds"] / r["seconds"]
            r["blobs_uploaded_once"] = r["blob_uploads"] == fixture["unique_blobs"]
        results["runs"] = runs
    path = bench.write_results("scale-out", results)
    png = plot(os.path.dirname(path), results)
    lines = [f"Scale-out, {results['fixture']['components']} components, "
             f"{results['fixture']['unique_blob_bytes'] / 1e6:.0f} MB (largest blob "
             f"{results['fixture']['largest_blob'] / 1e6:.0f} MB), {args.mbps} MB/s per interface:"]
    for r in results["runs"]:
        how = ", one at a time (a node each: the slowest shard)" if r["one_at_a_time"] else ""
        lines.append(f"  {r['shards']} shard(s){how}: {r['seconds']:.1f} s ({r['speedup']:.2f}x; blobs {r['blobs_phase_seconds']:.1f} s"
                     f" + manifests pass {r['manifests_pass_seconds']:.1f} s); blob uploads {r['blob_uploads']}"
                     f" of {results['fixture']['unique_blobs']} unique")
    results["summary"] = "\n".join(lines)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(results["summary"])
    if png:
        print(f"plot: {png}")


if __name__ == "__main__":
    main()
