#!/usr/bin/env python3
"""A source 100 ms away: fastsync's defaults at 3 MB/s per connection against
the same at 30 MB/s (fastsync-wanproxy, 50 ms each way, the rate per
connection), in interleaved rounds. The target (issue 26): the slow links
take at most 1.3 x the fast ones' time, as segments make up for them.

  bench/far_source.py [--scale 1.0] [--rounds 3] [fastsync args...]

Prints each run, the medians and their ratio, the segment-memory growth and
trial verdicts fastsync logged; writes bench/out/far-source-<time>.json.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def one_run(source, workdir, rate, extra):
    proxy = bench.Proxy(source.host, 50, rate)
    dest = bench.Registry(workdir, "dest")
    try:
        argv = bench.fastsync_args(proxy.host, dest, ["--verbose"] + list(extra))
        argv.remove("--quiet")  # the trial verdicts are debug lines on stderr
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"fastsync failed at {rate} MB/s: {p.stderr[-2000:]}")
        verdicts = [line for line in p.stderr.splitlines() if "lanes fetch" in line or "segment memory:" in line]
        return seconds, verdicts
    finally:
        dest.stop()
        proxy.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--rounds", type=int, default=3)
    args, extra = p.parse_known_args()
    with bench.workspace("far") as workdir:
        source = bench.Registry(workdir, "source")
        fixture, _ = bench.push_fixture(source, args, workdir)
        runs = {"3": [], "30": []}
        kept = {"3": 0, "30": 0}
        for i in range(args.rounds):
            for rate in ("3", "30"):
                seconds, verdicts = one_run(source, workdir, float(rate), extra)
                runs[rate].append(seconds)
                kept[rate] += sum(line.endswith(": kept") for line in verdicts)
                grew = [v.split("segment memory: ")[1] for v in verdicts if "segment memory:" in v]
                bench.log(f"round {i + 1}: {rate} MB/s per connection {seconds:.2f} s; "
                          f"memory {grew[-1] if grew else 'not grown'}")
        medians = {k: statistics.median(v) for k, v in runs.items()}
        results = {"fixture": {"unique_blob_bytes": fixture["unique_blob_bytes"]}, "args": extra, "runs": runs,
                   "medians": medians, "ratio_3_over_30": medians["3"] / medians["30"],
                   "per_round_ratios": [a / b for a, b in zip(runs["3"], runs["30"])], "trials_kept": kept}
        print(f"3 MB/s {medians['3']:.2f} s, 30 MB/s {medians['30']:.2f} s: "
              f"{results['ratio_3_over_30']:.2f} x (target <= 1.3); per round "
              + ", ".join(f"{r:.2f}" for r in results["per_round_ratios"]))
        bench.write_results("far-source", results)


if __name__ == "__main__":
    main()
