#!/usr/bin/env python3
"""Operator catalogs at scale: a synthetic file-based catalog the size of Red
Hat's (500 packages, ~15,500 bundles, each bundle document padded as opm
embeds a bundle's manifests: ~190 MB of FBC JSON), an OCI index over two
platforms; three packages selected from it by an image set. Measures what
resolving costs (a dry run: read the catalog from its layers, select, rebuild,
ask the destination what it lacks): wall time and peak RSS, medians of
--repeat runs. Targets: <= 5 s, <= 256 MB.

  bench/catalog_scale.py [--packages 500] [--bundles 30] [--padding 12000] [--repeat 3]

Writes bench/out/catalog-scale-<time>.json.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--packages", type=int, default=500)
    p.add_argument("--bundles", type=int, default=30)
    p.add_argument("--padding", type=int, default=12000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with bench.workspace("catalog") as workdir:
        secret = bench.PULL_SECRET
        source = bench.Registry(workdir, "source")
        dest = bench.Registry(workdir, "dest")
        out = os.path.join(workdir, "catalog.json")
        subprocess.run([bench.FIXTURE, "catalog", "--registry", f"http://{source.host}", "--packages",
                        str(args.packages), "--bundles", str(args.bundles), "--catalog-only", "--bundle-padding",
                        str(args.padding), "--out", out], check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            catalog = json.load(f)
        bundles = len(catalog["bundles"])
        fbc_bytes = bundles * (args.padding + 700)  # each bundle document, roughly
        config = os.path.join(workdir, "isc.yaml")
        with open(config, "w") as f:
            f.write("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                    f"  - catalog: {source.host}/{catalog['repository']}:{catalog['tag']}\n    packages:\n"
                    "    - name: db-operator\n    - name: cache-operator\n      channels:\n      - name: stable\n"
                    "        minVersion: 1.10.0\n"
                    f"    - name: package-{args.packages // 2:03d}\n")
        runs = []
        for i in range(args.repeat):
            bench.log(f"round {i + 1}/{args.repeat}")
            m = bench.run_measured([bench.FASTSYNC, "--config", config, "--dest-registry", dest.host,
                                    "--pull-secret", secret, "--out-dir", workdir, "--dry-run", "--quiet"],
                                   stdout=subprocess.DEVNULL)
            if m["exit_code"] != 0:
                raise RuntimeError(f"the dry run exited {m['exit_code']}")
            runs.append(m)
        med = {"seconds": bench.median_of([r["seconds"] for r in runs]),
               "rss_mb": bench.median_of([r["rss_mb"] for r in runs])}
        results = {"packages": args.packages, "bundles": bundles, "fbc_bytes_approx": fbc_bytes, "runs": runs,
                   "medians": med, "targets": {"seconds": 5, "rss_mb": 256}}
        print(f"catalog: {args.packages} packages, {bundles} bundles, ~{fbc_bytes / 1e6:.0f} MB of FBC; three "
              f"packages selected; medians of {args.repeat}")
        print(f"  resolve (dry run) {med['seconds']:.2f} s (target <= 5), peak RSS {med['rss_mb']:.0f} MB "
              f"(target <= 256)")
        bench.write_results("catalog-scale", results)


if __name__ == "__main__":
    main()
