#!/usr/bin/env python3
"""The image set benchmark: a release plus 50 additional images (another
product built on the same base layers: most of its images are the release's
own, one in four rebuilt) mirrored by one `fastsync --config` run, against
what a user does without image sets — `fastsync --version` for the release,
then `skopeo copy` of the 50 images (16 at a time) — side by side in
interleaved rounds, each into an empty registry. Also counts the one run's
blob GETs at the source against the set's unique blobs (target: each once).

  bench/imageset.py [--scale 0.25] [--components 190] [--additional 50] [--repeat 3]

Prints the ratio; writes bench/out/imageset-<time>.json.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

VERSION = "4.20.8"
TOOL_REPO = "example/tool-parts"


def push(source, workdir, name, extra):
    out = os.path.join(workdir, f"fixture-{name}.json")
    subprocess.run([bench.FIXTURE, "--registry", f"http://{source.host}", "--refs-host", "quay.io", "--version",
                    VERSION, "--out", out] + extra, check=True, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def graph_server(workdir, release_digest):
    graph = os.path.join(workdir, "stable-4.20.json")
    with open(graph, "w") as f:
        json.dump({"nodes": [{"version": VERSION, "payload": f"quay.io/openshift-release-dev/ocp-release@{release_digest}",
                              "metadata": {}}], "edges": [], "conditionalEdges": []}, f)
    server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "servers", "update_graph.py")
    proc = subprocess.Popen([sys.executable, server, "--channel", f"stable-4.20={graph}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    bench.PROCESSES.append(proc)
    line = proc.stdout.readline()
    return f"http://127.0.0.1:{line.strip().split('port=')[1]}/graph"


def one_run(source, dest, secret, config, graph_url):
    return bench.run_measured([bench.FASTSYNC, "--config", config, "--source-registry",
                               f"{source.host}/openshift-release-dev/ocp-release", "--dest-registry", dest.host,
                               "--graph-url", graph_url, "--pull-secret", secret, "--out-dir",
                               os.path.dirname(config), "--quiet", "--no-signatures"], stdout=subprocess.DEVNULL)


def release_then_skopeo(source, dest, secret, images, parallel=16):
    m = bench.run_measured([bench.FASTSYNC, "--version", VERSION, "--source-registry",
                            f"{source.host}/openshift-release-dev/ocp-release", "--dest-registry", dest.host,
                            "--pull-secret", secret, "--quiet", "--no-signatures"], stdout=subprocess.DEVNULL)
    if m["exit_code"] != 0:
        raise RuntimeError(f"the release run exited {m['exit_code']}")

    def copy(digest):
        for _ in range(5):  # parallel copies sharing layers race on uploads; a user's script retries
            r = subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--retry-times", "3",
                                "--src-tls-verify=false", "--dest-tls-verify=false",
                                f"docker://{source.host}/{TOOL_REPO}@{digest}",
                                f"docker://{dest.host}/{TOOL_REPO}@{digest}"], capture_output=True, text=True)
            if r.returncode == 0:
                return
        raise RuntimeError(f"skopeo could not copy {digest}: {r.stderr.strip()[-300:]}")

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(copy, images))
    return m["seconds"], time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--components", type=int, default=190)
    p.add_argument("--additional", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with bench.workspace("imageset") as workdir:
        secret = bench.PULL_SECRET
        source = bench.Registry(workdir, "source")
        release = push(source, workdir, "release", ["--components", str(args.components), "--scale",
                                                    str(args.scale)])
        # The same base and builds, one image in four rebuilt: layers shared with the release, some new.
        tool = push(source, workdir, "tool", ["--components", str(args.additional), "--scale", str(args.scale),
                                              "--revision", "1", "--release-repo", "example/tool",
                                              "--components-repo", TOOL_REPO])
        images = [c["digest"] for c in tool["components"]][: args.additional]
        config = os.path.join(workdir, "isc.yaml")
        with open(config, "w") as f:
            f.write("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                    "    channels:\n    - name: stable-4.20\n  additionalImages:\n")
            for d in images:
                f.write(f"  - name: {source.host}/{TOOL_REPO}@{d}\n")
        graph_url = graph_server(workdir, release["release"]["digest"])
        unique = {}  # digest -> repository to read it from
        for img in release["components"] + [release["release"]]:
            for b in img["blobs"]:
                unique.setdefault(b, img["repository"])
        for img in tool["components"]:
            if img["digest"] in images:
                for b in img["blobs"]:
                    unique.setdefault(b, img["repository"])
        blob_dir = os.path.join(workdir, "blobs")
        unique_bytes = bench.download_blobs(source, unique, blob_dir)
        shutil.rmtree(blob_dir, ignore_errors=True)

        runs = {"one_run": [], "release_plus_skopeo": [], "release_part": [], "skopeo_part": []}
        fetched = {}
        for i in range(args.repeat):
            bench.log(f"round {i + 1}/{args.repeat}")
            since = bench.log_lines(source)
            dest = bench.Registry(workdir, "one-run")
            m = one_run(source, dest, secret, config, graph_url)
            dest.stop()
            if m["exit_code"] != 0:
                raise RuntimeError(f"the image set run exited {m['exit_code']}")
            runs["one_run"].append(m["seconds"])
            fetched = bench.fastsync_fetched(source, since)

            dest = bench.Registry(workdir, "separately")
            rel_s, skopeo_s = release_then_skopeo(source, dest, secret, images)
            dest.stop()
            runs["release_part"].append(rel_s)
            runs["skopeo_part"].append(skopeo_s)
            runs["release_plus_skopeo"].append(rel_s + skopeo_s)
        med = {k: bench.median_of(v) for k, v in runs.items()}
        results = {"components": args.components, "additional": len(images), "scale": args.scale,
                   "unique_blobs": len(unique), "unique_blob_bytes": unique_bytes,
                   "release_unique_blob_bytes": release["unique_blob_bytes"], "fetched_one_run": fetched,
                   "runs": runs, "medians": med,
                   "ratios": {"separately_over_one_run": med["release_plus_skopeo"] / med["one_run"],
                              "fetched_over_unique": fetched["bytes"] / unique_bytes}}
        print(f"release ({args.components} images, {release['unique_blob_bytes'] / 1e6:.0f} MB) + {len(images)} "
              f"additional images (the set: {unique_bytes / 1e6:.0f} MB unique), scale {args.scale}; medians of "
              f"{args.repeat}")
        print(f"  one --config run {med['one_run']:.2f} s vs --version run {med['release_part']:.2f} s + skopeo "
              f"{med['skopeo_part']:.2f} s = {results['ratios']['separately_over_one_run']:.2f} x faster "
              f"(target >= 2)")
        print(f"  fetched by the one run: {fetched['bytes'] / 1e6:.1f} MB in {fetched['gets']} GETs (Range segments "
              f"count one each) of {fetched['distinct']} distinct blobs; the set holds {len(unique)} unique blobs, "
              f"{unique_bytes / 1e6:.1f} MB = {results['ratios']['fetched_over_unique']:.3f} x (target 1.0)")
        bench.write_results("imageset", results)


if __name__ == "__main__":
    main()
