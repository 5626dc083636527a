#!/usr/bin/env python3
"""What each kind of request costs the registry (docker-registry, filesystem
storage) in CPU, measured with curl --parallel 16 on the bench release: on a
2-core machine the registries, not the client, set the pace of a loopback
mirror, so the requests a mirror must make beyond the floor's show here.

  bench/registry_cost.py [--scale 0.3] [--components 190]

Prints CPU-seconds and milliseconds per request for each kind; writes
bench/out/registry-cost-<time>.json.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def curl_config(workdir, name, lines):
    path = os.path.join(workdir, f"{name}.cfg")
    with open(path, "w") as f:
        f.write("".join(lines))
    return path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--components", type=int, default=190)
    args = p.parse_args()
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "kinds": []}
    with bench.workspace("registry-cost") as workdir:
        source = bench.Registry(workdir, "source")
        _, blobs = bench.push_fixture(source, args, workdir)
        blob_dir = os.path.join(workdir, "blobs")
        bench.download_blobs(source, blobs, blob_dir)
        bench.BLOB_DIR = blob_dir
        n = len(blobs)

        def measure(name, registry, count, run):
            cpu = registry.cpu_seconds()
            t0 = time.perf_counter()
            run()
            seconds = time.perf_counter() - t0
            used = registry.cpu_seconds() - cpu
            results["kinds"].append({"kind": name, "requests": count, "seconds": seconds, "cpu_seconds": used,
                                     "cpu_ms_per_request": 1000 * used / count})
            bench.log(f"{name}: {count} requests, {seconds:.2f} s, registry CPU {used:.2f} s "
                      f"({1000 * used / count:.2f} ms each)")

        def curl(config, check=True):
            return lambda: subprocess.run(bench.curl_parallel(config, 16), check=check, stdout=subprocess.DEVNULL)

        measure("blob GET", source, n, curl(bench.curl_get_config(source.host, blobs, workdir)))
        dest = bench.Registry(workdir, "dest")
        put_cfg = []
        measure("upload session POST", dest, n,
                lambda: put_cfg.append(bench.open_upload_sessions(dest, blobs, workdir, 16)))
        measure("blob PUT (monolithic, into the session)", dest, n, curl(put_cfg[0]))
        measure("blob HEAD, present", dest, n, curl(curl_config(workdir, "head", [
            f'url = "http://{dest.host}/v2/floor/blobs/{d}"\nhead = true\noutput = "/dev/null"\n' for d in blobs])))
        measure("mount from the repository itself, present (201)", dest, n, curl(curl_config(workdir, "mount", [
            f'url = "http://{dest.host}/v2/floor/blobs/uploads/?mount={d}&from=floor"\nrequest = "POST"\n'
            'output = "/dev/null"\n' for d in blobs])))
        fresh = bench.Registry(workdir, "fresh")
        measure("mount from the repository itself, absent (202, a session)", fresh, n,
                curl(curl_config(workdir, "mount-absent", [
                    f'url = "http://{fresh.host}/v2/r/blobs/uploads/?mount={d}&from=r"\nrequest = "POST"\n'
                    'output = "/dev/null"\n' for d in blobs])))
        measure("manifest GET by digest, absent (404)", fresh, n, curl(curl_config(workdir, "manifest-absent", [
            f'url = "http://{fresh.host}/v2/r/manifests/{d}"\noutput = "/dev/null"\n'
            'header = "Accept: application/vnd.oci.image.manifest.v1+json"\n' for d in blobs]), check=False))
    bench.write_results("registry-cost", results)


if __name__ == "__main__":
    main()
