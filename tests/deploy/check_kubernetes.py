#!/usr/bin/env python3
"""Checks deploy/kubernetes and deploy/Containerfile against what fastsync relies on.

  check_kubernetes.py --root <repo> --fastsync <binary>

Every problem is printed; the exit code is the number of problems (0: fine).
"""
import argparse
import glob
import os
import re
import subprocess
import sys

import yaml

problems = []


def problem(text):
    problems.append(text)
    print("problem: " + text)


def load(root):
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "deploy/kubernetes/*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((os.path.basename(path), d))
    return docs


def flags(args):
    """--name=value / --name value / --switch -> {name: value or True}."""
    out = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            problem(f"argument {a!r} is not a --flag")
        elif "=" in a:
            k, v = a[2:].split("=", 1)
            out[k] = v
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[a[2:]] = args[i + 1]
            i += 1
        else:
            out[a[2:]] = True
        i += 1
    return out


def known_options(fastsync):
    text = subprocess.run([fastsync, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"^\s+(?:-\w \[ )?--([a-z0-9-]+)", text, re.M))


def check_job(name, job, config, secrets, options):
    spec = job["spec"]
    pod = spec["template"]["spec"]
    if pod.get("restartPolicy") != "Never":
        problem(f"{name}: restartPolicy must be Never (the Job retries failed pods as new pods)")
    (container,) = pod["containers"]
    args = container.get("args", [])
    f = flags(args)
    for k in f:
        if k not in options:
            problem(f"{name}: --{k} is not a fastsync option")
    # Every $(VAR) must be defined: the ConfigMap it reads, or the Job controller's index.
    env_names = set()
    for source in container.get("envFrom", []):
        cm = source.get("configMapRef", {}).get("name")
        if cm not in config:
            problem(f"{name}: envFrom ConfigMap {cm!r} is not in deploy/kubernetes")
        else:
            env_names |= set(config[cm])
    for e in container.get("env", []):
        env_names.add(e["name"])
    indexed = spec.get("completionMode") == "Indexed"
    if indexed:
        env_names.add("JOB_COMPLETION_INDEX")
    for a in args:
        for var in re.findall(r"\$\((\w+)\)", a):
            if var not in env_names:
                problem(f"{name}: {a} uses $({var}), which nothing defines")
    # The pull secret: a file in a volume from the Secret, under the key fastsync reads.
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    secret_file = f.get("pull-secret")
    if not isinstance(secret_file, str):
        problem(f"{name}: no --pull-secret")
    else:
        found = False
        for vname, m in mounts.items():
            if not secret_file.startswith(m["mountPath"].rstrip("/") + "/"):
                continue
            v = volumes.get(vname, {})
            sname = v.get("secret", {}).get("secretName")
            key = secret_file[len(m["mountPath"].rstrip("/")) + 1:]
            if sname not in secrets:
                problem(f"{name}: --pull-secret {secret_file} is not in a volume from a Secret of deploy/kubernetes")
            elif key not in secrets[sname]:
                problem(f"{name}: Secret {sname} has no key {key!r} for --pull-secret")
            found = True
        if not found:
            problem(f"{name}: --pull-secret {secret_file} is in no mounted volume")
    # What fastsync writes must be writable: a read-only root leaves only mounts.
    ro_root = container.get("securityContext", {}).get("readOnlyRootFilesystem", False)
    if ro_root:
        writable = [m["mountPath"].rstrip("/") + "/" for m in mounts.values() if not m.get("readOnly")]
        if "/tmp/" not in writable:
            problem(f"{name}: the root filesystem is read-only and /tmp (gpg's scratch home) is not mounted")
        for k in ("report", "signature-dir", "idms-out"):
            path = f.get(k)
            if isinstance(path, str) and not any((path.rstrip("/") + "/").startswith(w) for w in writable):
                problem(f"{name}: --{k} {path} is not on a writable mount")
        if "signature-dir" not in f and "shard" not in f and "blobs-only" not in f:
            problem(f"{name}: the signature ConfigMap would go to the working directory: give --signature-dir")
    return indexed, f


def check_containerfile(root, fastsync):
    path = os.path.join(root, "deploy/Containerfile")
    text = open(path).read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    if len(stages) < 2:
        problem("deploy/Containerfile: expected a build stage and a runtime stage")
        return
    for s in stages:
        if not s.startswith("docker.io/library/debian:12"):
            problem(f"deploy/Containerfile: stage {s.splitlines()[0]!r} is not Debian 12")
    runtime = stages[-1]
    packages = set()
    for line in runtime.replace("\\\n", " ").splitlines():
        for install in re.findall(r"apt-get install ([^&;]*)", line):
            packages |= {w for w in install.split() if not w.startswith("-")}
    # The libraries the binary links: each from a package the runtime stage installs (or the base has).
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", fastsync], capture_output=True, text=True, check=True).stdout)
    ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for lib in needed:
        # A sanitizer build of the tests links its runtime; the image is built without one.
        if re.match(r"lib(a|ub|t|l|hwa)san\.so", lib):
            continue
        pkg = ""
        paths = re.findall(rf"^\s+{re.escape(lib)} \(([^)]*)\) => (\S+)", ldconfig, re.M)
        # This machine's architecture first (a multiarch system lists i386 too).
        paths.sort(key=lambda p: "x86-64" not in p[0] and "AArch64" not in p[0])
        for path in [p[1] for p in paths[:1]]:
            real = os.path.realpath(path)
            # usrmerge: dpkg may know the file under /lib or /usr/lib.
            for candidate in (path, real, re.sub(r"^/usr", "", real), "/usr" + path):
                where = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True).stdout
                if where:
                    pkg = where.split(":")[0].strip()
                    break
        if not pkg:
            problem(f"deploy/Containerfile: cannot tell which package holds {lib}")
        elif pkg not in packages and pkg not in base:
            problem(f"deploy/Containerfile: fastsync needs {lib} ({pkg}), which the runtime stage does not install")
    if "gnupg" not in packages:
        problem("deploy/Containerfile: gnupg is missing (GPGME runs gpg to verify signatures)")
    if "ca-certificates" not in packages:
        problem("deploy/Containerfile: ca-certificates is missing (quay.io's TLS)")
    if not re.search(r'^ENTRYPOINT \["/usr/local/bin/fastsync"\]', runtime, re.M):
        problem("deploy/Containerfile: the entrypoint must be /usr/local/bin/fastsync")
    if not re.search(r"^USER (?!0\b|root\b)", runtime, re.M):
        problem("deploy/Containerfile: the runtime stage must not run as root")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--fastsync", required=True)
    a = p.parse_args()
    docs = load(a.root)
    options = known_options(a.fastsync)
    config = {d["metadata"]["name"]: d.get("data", {}) for _, d in docs if d["kind"] == "ConfigMap"}
    secrets = {}
    for _, d in docs:
        if d["kind"] == "Secret":
            if d.get("type") != "kubernetes.io/dockerconfigjson":
                problem(f"Secret {d['metadata']['name']}: type must be kubernetes.io/dockerconfigjson")
            secrets[d["metadata"]["name"]] = set(d.get("stringData", {})) | set(d.get("data", {}))
    jobs = [(f"{file}: Job {d['metadata']['name']}", d) for file, d in docs if d["kind"] == "Job"]
    sharded, passes = [], []
    for name, job in jobs:
        indexed, f = check_job(name, job, config, secrets, options)
        (sharded if indexed else passes).append((name, job, f))
    if len(sharded) != 1 or len(passes) != 1:
        problem(f"expected one Indexed Job (the shards) and one other (the manifests pass); found {len(sharded)} and {len(passes)}")
    else:
        (sname, sjob, sf), (pname, pjob, pf) = sharded[0], passes[0]
        spec = sjob["spec"]
        n = spec.get("completions")
        if spec.get("parallelism") != n:
            problem(f"{sname}: parallelism {spec.get('parallelism')} != completions {n}")
        shard = sf.get("shard")
        if shard != f"$(JOB_COMPLETION_INDEX)/{n}":
            problem(f"{sname}: --shard is {shard!r}, expected $(JOB_COMPLETION_INDEX)/{n} (completions)")
        if sf.get("blobs-only") is not True:
            problem(f"{sname}: --blobs-only is missing")
        if "shard" in pf or "blobs-only" in pf:
            problem(f"{pname}: the manifests pass must be an ordinary run (no --shard, no --blobs-only)")
        if pjob["spec"].get("completions", 1) != 1:
            problem(f"{pname}: the manifests pass is one pod")
        # The same plan and the same destination on both sides.
        for k in ("version", "arch", "source-registry", "dest-registry", "dest-repo", "pull-secret"):
            if sf.get(k) != pf.get(k):
                problem(f"--{k} differs: {sf.get(k)!r} in the shards, {pf.get(k)!r} in the manifests pass")
        for k in ("version", "dest-registry"):
            if k not in sf:
                problem(f"{sname}: --{k} is missing")
    check_containerfile(a.root, a.fastsync)
    print(f"{len(problems)} problem(s)")
    sys.exit(min(len(problems), 100))


if __name__ == "__main__":
    main()
