#!/usr/bin/env python3
"""The air-gap benchmark: --to-dir and --from-dir against this machine's floors,
side by side in one run (medians of interleaved rounds), on the bench release.

  to-dir    vs max(GET floor, disk-write floor): curl --parallel 64 GETs of every
            unique blob into /dev/null, and writing the same bytes to the same disk
            (cat of the blobs into one file, then sync)
  from-dir  vs the PUT floor: curl --parallel 64 POSTs + monolithic PUTs from files
  peak RSS of both; disk used by the archive against its bytes

  bench/airgap.py [--scale 1.0] [--repeat 3]

Prints the ratios; writes bench/out/airgap-<time>.json.
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


def disk_write_floor(blob_dir, target_dir):
    os.makedirs(target_dir, exist_ok=True)
    out = os.path.join(target_dir, "floor.bin")
    files = sorted(os.path.join(blob_dir, f) for f in os.listdir(blob_dir))
    t0 = time.perf_counter()
    with open(out, "wb") as dst:
        for path in files:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    seconds = time.perf_counter() - t0
    os.remove(out)
    return seconds


def du_bytes(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with bench.workspace("airgap") as workdir:
        secret = bench.PULL_SECRET
        source = bench.Registry(workdir, "source")
        fixture, blobs = bench.push_fixture(source, args, workdir)
        total = fixture["unique_blob_bytes"]
        blob_dir = os.path.join(workdir, "blobs")
        bench.download_blobs(source, blobs, blob_dir)
        get_cfg = bench.curl_get_config(source.host, blobs, workdir)
        runs = {k: [] for k in ("get_floor", "disk_floor", "put_floor", "to_dir", "from_dir")}
        # CPU-seconds: on 2 cores the source registry and fastsync share them.
        cpu = {k: [] for k in ("get_floor_source", "to_dir_source", "to_dir_fastsync")}
        rss = {"to_dir": 0.0, "from_dir": 0.0}
        disk = {}
        for i in range(args.repeat):
            bench.log(f"round {i + 1}/{args.repeat}")
            source_cpu = source.cpu_seconds()
            t0 = time.perf_counter()
            subprocess.run(bench.curl_parallel(get_cfg, 64), check=True)
            runs["get_floor"].append(time.perf_counter() - t0)
            cpu["get_floor_source"].append(source.cpu_seconds() - source_cpu)
            runs["disk_floor"].append(disk_write_floor(blob_dir, os.path.join(workdir, "floor")))
            dest = bench.Registry(workdir, "floor-put")
            runs["put_floor"].append(bench.put_floor_commands(dest, blobs, blob_dir, workdir, 64)())
            dest.stop()

            archive = os.path.join(workdir, f"archive-{i}")
            source_cpu = source.cpu_seconds()
            m = bench.run_measured([bench.FASTSYNC, "--version", bench.VERSION, "--source-registry",
                                    f"{source.host}/openshift-release-dev/ocp-release", "--to-dir", archive,
                                    "--pull-secret", secret, "--quiet", "--no-signatures"], stdout=subprocess.DEVNULL)
            if m["exit_code"] != 0:
                raise RuntimeError(f"--to-dir exited {m['exit_code']}")
            runs["to_dir"].append(m["seconds"])
            cpu["to_dir_source"].append(source.cpu_seconds() - source_cpu)
            cpu["to_dir_fastsync"].append(m["cpu_seconds"])
            rss["to_dir"] = max(rss["to_dir"], m["rss_mb"])
            with open(os.path.join(archive, "fastsync-archive.json")) as f:
                index = json.load(f)
            volume_bytes = sum(v["size"] for v in index["volumes"])
            disk = {"archive_bytes": volume_bytes, "du_bytes": du_bytes(archive), "unique_blob_bytes": total}

            dest = bench.Registry(workdir, "from-dir")
            m = bench.run_measured([bench.FASTSYNC, "--from-dir", archive, "--dest-registry", dest.host,
                                    "--pull-secret", secret, "--quiet"], stdout=subprocess.DEVNULL)
            dest.stop()
            if m["exit_code"] != 0:
                raise RuntimeError(f"--from-dir exited {m['exit_code']}")
            runs["from_dir"].append(m["seconds"])
            rss["from_dir"] = max(rss["from_dir"], m["rss_mb"])
            shutil.rmtree(archive, ignore_errors=True)
        med = {k: bench.median_of(v) for k, v in runs.items()}
        to_floor = max(med["get_floor"], med["disk_floor"])
        to_dir_cpu = bench.median_of([a + b for a, b in zip(cpu["to_dir_source"], cpu["to_dir_fastsync"])])
        results = {
            "fixture": {"unique_blob_bytes": total, "unique_blobs": len(blobs)}, "runs": runs, "medians": med,
            "ratios": {"to_dir_over_floor": med["to_dir"] / to_floor, "from_dir_over_put_floor": med["from_dir"] / med["put_floor"],
                       # The lowest --to-dir ratio these cores allow for the work its run makes the source and
                       # fastsync do (see bench.cpu_bound_seconds), and how close --to-dir comes to that bound.
                       "to_dir_cpu_bound_over_floor": bench.cpu_bound_seconds(to_dir_cpu) / to_floor,
                       "to_dir_over_its_cpu_bound": med["to_dir"] / bench.cpu_bound_seconds(to_dir_cpu)},
            "cpu_seconds": {k: bench.median_of(v) for k, v in cpu.items()},
            "peak_rss_mb": rss, "disk": disk, "disk_overhead": disk["du_bytes"] / disk["archive_bytes"] - 1,
        }
        print(f"bench release: {total / 1e6:.0f} MB, {len(blobs)} unique blobs; medians of {args.repeat}")
        print(f"  --to-dir   {med['to_dir']:.2f} s  vs max(GET floor {med['get_floor']:.2f} s, disk floor "
              f"{med['disk_floor']:.2f} s) = {results['ratios']['to_dir_over_floor']:.2f} x   (target <= 1.3, issue 26)")
        print(f"  --from-dir {med['from_dir']:.2f} s  vs PUT floor {med['put_floor']:.2f} s = "
              f"{results['ratios']['from_dir_over_put_floor']:.2f} x   (target <= 1.2)")
        c = results["cpu_seconds"]
        print(f"  CPU: --to-dir fastsync {c['to_dir_fastsync']:.2f} s + source registry {c['to_dir_source']:.2f} s; "
              f"the GET floor's source registry {c['get_floor_source']:.2f} s (on {os.cpu_count()} cores): --to-dir's "
              f"CPU bound is {results['ratios']['to_dir_cpu_bound_over_floor']:.2f} x the floor, and --to-dir "
              f"{results['ratios']['to_dir_over_its_cpu_bound']:.2f} x its bound")
        print(f"  peak RSS: --to-dir {rss['to_dir']:.0f} MB, --from-dir {rss['from_dir']:.0f} MB   (target <= 64)")
        print(f"  disk used: {disk['du_bytes'] / 1e6:.1f} MB for {disk['archive_bytes'] / 1e6:.1f} MB of volumes "
              f"(+{100 * results['disk_overhead']:.2f} %; blobs {total / 1e6:.1f} MB)   (target <= +1 %)")
        bench.write_results("airgap", results)


if __name__ == "__main__":
    main()
