#!/usr/bin/env python3
"""The upgrade-path benchmark: two consecutive z-streams (4.20.8 and a 4.20.9
that rebuilds one component in four) mirrored in one run (--version
4.20.8,4.20.9) against two runs one after the other, side by side in
interleaved rounds; and the bytes the one run fetched from the source against
the unique bytes of both releases.

  bench/upgrades.py [--scale 1.0] [--components 190] [--repeat 3]

Prints the ratios; writes bench/out/upgrades-<time>.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

VERSIONS = ("4.20.8", "4.20.9")


def push(source, args, workdir, version, revision):
    out = os.path.join(workdir, f"fixture-{version}.json")
    subprocess.run([bench.FIXTURE, "--registry", f"http://{source.host}", "--components", str(args.components),
                    "--scale", str(args.scale), "--refs-host", "quay.io", "--version", version, "--revision",
                    str(revision), "--out", out], check=True, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def mirror(source, dest, secret, versions):
    return bench.run_measured([bench.FASTSYNC, "--version", ",".join(versions), "--source-registry",
                               f"{source.host}/openshift-release-dev/ocp-release", "--dest-registry", dest.host,
                               "--pull-secret", secret, "--quiet", "--no-signatures"], stdout=subprocess.DEVNULL)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with bench.workspace("upgrades") as workdir:
        secret = bench.PULL_SECRET
        source = bench.Registry(workdir, "source")
        fixtures = [push(source, args, workdir, v, r) for r, v in enumerate(VERSIONS)]
        blobs = {}
        for fx in fixtures:
            for img in fx["components"] + [fx["release"]]:
                for b in img["blobs"]:
                    blobs.setdefault(b, img["repository"])
        blob_dir = os.path.join(workdir, "blobs")
        bench.download_blobs(source, blobs, blob_dir)
        unique_bytes = sum(os.path.getsize(os.path.join(blob_dir, f)) for f in os.listdir(blob_dir))
        shutil.rmtree(blob_dir, ignore_errors=True)
        separate_bytes = sum(fx["unique_blob_bytes"] for fx in fixtures)
        runs = {"one_run": [], "two_runs": []}
        fetched = {}
        for i in range(args.repeat):
            bench.log(f"round {i + 1}/{args.repeat}")
            dest = bench.Registry(workdir, "one-run")
            since = bench.log_lines(source)
            m = mirror(source, dest, secret, VERSIONS)
            dest.stop()
            if m["exit_code"] != 0:
                raise RuntimeError(f"one run exited {m['exit_code']}")
            runs["one_run"].append(m["seconds"])
            fetched = bench.fastsync_fetched(source, since)

            dest = bench.Registry(workdir, "two-runs")
            seconds = 0.0
            for v in VERSIONS:
                m = mirror(source, dest, secret, (v,))
                if m["exit_code"] != 0:
                    raise RuntimeError(f"run of {v} exited {m['exit_code']}")
                seconds += m["seconds"]
            dest.stop()
            runs["two_runs"].append(seconds)
        med = {k: bench.median_of(v) for k, v in runs.items()}
        results = {"releases": VERSIONS, "unique_blob_bytes": unique_bytes, "bytes_if_separate": separate_bytes,
                   "fetched_one_run": fetched, "runs": runs, "medians": med,
                   "ratios": {"one_over_two_runs": med["one_run"] / med["two_runs"],
                              "fetched_over_unique": fetched["bytes"] / unique_bytes}}
        print(f"two z-streams, {unique_bytes / 1e6:.0f} MB unique ({separate_bytes / 1e6:.0f} MB if counted per "
              f"release); medians of {args.repeat}")
        print(f"  one run {med['one_run']:.2f} s vs two runs {med['two_runs']:.2f} s = "
              f"{results['ratios']['one_over_two_runs']:.2f} x")
        print(f"  fetched by the one run: {fetched['bytes'] / 1e6:.1f} MB in {fetched['gets']} GETs of "
              f"{fetched['distinct']} blobs = {results['ratios']['fetched_over_unique']:.3f} x the unique bytes "
              f"(target 1.0)")
        bench.write_results("upgrades", results)


if __name__ == "__main__":
    main()
