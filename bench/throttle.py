#!/usr/bin/env python3
"""A source that pushes back: side by side in one run (medians of interleaved
rounds), the bench release from a registry behind a front that answers 429 to
whatever arrives while N requests are in flight (tests/servers/fault_proxy.py
--max-concurrent, as quay.io does to a client that opens too much):

  adaptive   fastsync's defaults (64 per host), the host's limit lowered and
             raised as it answers
  fixed      --max-per-host at the front's own limit and at oc's 6, set by hand

Reported: seconds, 429s answered, images failed (must be 0).

  bench/throttle.py [--scale 0.2] [--limit 6] [--repeat 3]

Writes bench/out/throttle-<time>.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class ConcurrencyFront:
    """fault_proxy.py in front of `registry`, answering 429 above `limit` requests in flight."""

    def __init__(self, registry, limit, workdir):
        self.log = os.path.join(workdir, f"front-{time.time_ns()}.jsonl")
        self.proc = subprocess.Popen([sys.executable, os.path.join(bench.ROOT, "tests", "servers", "fault_proxy.py"),
                                      "--upstream", registry.host, "--log", self.log, "--max-concurrent", str(limit),
                                      "--retry-after", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        bench.PROCESSES.append(self.proc)
        self.host = "127.0.0.1:" + self.proc.stdout.readline().split("port=")[1].strip()

    def refused(self):
        with open(self.log) as f:
            return sum(1 for line in f if '"concurrency"' in line and '"end"' not in line)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=0.2)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with bench.workspace("throttle") as workdir:
        source = bench.Registry(workdir, "source")
        contenders = {"adaptive (defaults)": [], f"fixed --max-per-host {args.limit}": ["--max-per-host", str(args.limit)],
                      "fixed --max-per-host 4": ["--max-per-host", "4"]}
        runs = {name: [] for name in contenders}
        fixture, blobs = bench.push_fixture(source, args, workdir)
        for i in range(args.repeat):
            for name, extra in contenders.items():
                front = ConcurrencyFront(source, args.limit, workdir)
                dest = bench.Registry(workdir, "dest")
                report = os.path.join(workdir, "report.json")
                argv = bench.fastsync_args(front.host, dest, [*extra, "--report", report])
                m = bench.run_measured(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with open(report) as f:
                    r = json.load(f)
                failed = sum(1 for img in r["images"] if img["status"] == "failed")
                throttled = r.get("summary", {}).get("throttled", {})
                runs[name].append({"seconds": m["seconds"], "refused_429": front.refused(), "failed_images": failed,
                                   "exit_code": m["exit_code"], "throttled": throttled})
                bench.log(f"round {i + 1}: {name}: {m['seconds']:.2f}s, {front.refused()} x 429, {failed} failed")
                dest.stop()
                front.stop()
    results = {"fixture": {"unique_blob_bytes": fixture["unique_blob_bytes"], "unique_blobs": len(blobs)},
               "front_limit": args.limit, "runs": runs,
               "medians": {name: bench.median_of([x["seconds"] for x in v]) for name, v in runs.items()}}
    print(f"bench release {fixture['unique_blob_bytes'] / 1e6:.0f} MB; source behind a front answering 429 above "
          f"{args.limit} in flight; medians of {args.repeat}")
    for name, v in runs.items():
        print(f"  {name:28s} {results['medians'][name]:6.2f} s   429s per run: "
              f"{', '.join(str(x['refused_429']) for x in v)}   failed images: "
              f"{', '.join(str(x['failed_images']) for x in v)}")
    bench.write_results("throttle", results)


if __name__ == "__main__":
    main()
