#!/usr/bin/env python3
"""How an ADD's time grows with the number of pods already on the node.

Joins a scratch node (the same node netns, configurations and subnets as bench.py),
then ADDs N pods one after another and prints, per block of 50 pods, the median wall
time of an ADD as a runtime sees it and the median in-process time the plugin logs
(`durationMs` of its log line: from reading stdin to writing the result, without the
process start). A flat in-process column means nothing in ADD grows with the node's
pods; the wall column adds the process start and the kernel's exit.

    python3 bench/add_by_pods.py [--pair nodesubnet] [--n 250] [--cni-dir dist]

Run as root after ./scripts/build-release.sh. Every name starts with
AKSNET_BENCH_PREFIX (default aksntb); everything is deleted at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402

CONFLISTS = {
    "kubenet": "aksnet-kubenet.conflist",
    "nodesubnet": "aksnet-nodesubnet.conflist",
    "overlay": "aksnet-overlay.conflist",
    "podsubnet": "aksnet-podsubnet.conflist",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", default="nodesubnet", choices=list(CONFLISTS))
    ap.add_argument("--n", type=int, default=250)
    ap.add_argument("--cni-dir", default=os.path.join(B.REPO, "dist"))
    ap.add_argument("--aksnet", default=os.path.join(B.REPO, "dist", "aksnet"))
    ap.add_argument("--data-parent", default="/dev/shm",
                    help="where the plugin's dataDir is made (tmpfs, as /run/aksnet is on a node)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    for exe in (os.path.join(args.cni_dir, "aksnet-cni"), args.aksnet):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{exe} missing: run ./scripts/build-release.sh")
    B.setup_node_ns()
    datadir = tempfile.mkdtemp(prefix=f"{B.PREFIX}-data-", dir=args.data_parent)
    store = tempfile.mkdtemp(prefix=f"{B.PREFIX}-store-")
    with open(os.path.join(HERE, CONFLISTS[args.pair])) as f:
        text = f.read()
    text = (text.replace("@BRIDGE@", B.BRIDGE).replace("@SUBNET@", B.SUBNETS[args.pair])
            .replace("@DATADIR@", datadir))
    runner = B.Runner(json.loads(text), args.cni_dir, "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=@POD@")
    names = [f"{B.POD_PREFIX}{i}" for i in range(args.n)]
    created, results = [], {}
    try:
        if args.pair in B.JOIN_FLAGS:
            B.join_node(args, datadir, store, args.pair)
        for nm in names:
            B.sh("ip", "netns", "add", nm)
            created.append(nm)
        wall = []
        for nm in names:
            t = time.perf_counter()
            ok, _, res = runner.add(f"{B.PREFIX}-{nm}", f"/run/netns/{nm}", "eth0", nm)
            wall.append(time.perf_counter() - t)
            if not ok:
                raise SystemExit(f"ADD of {nm} failed: {res}")
            results[nm] = res
        with open(os.path.join(datadir, "aksnet-cni.log")) as f:
            inproc = [json.loads(line)["durationMs"] for line in f if '"verb":"ADD"' in line]
        print(f"{args.pair}: ADD by pods already on the node (median ms)")
        print("pods       wall  in-process")
        for b in range(0, args.n, 50):
            print(f"{b:3d}-{min(b + 49, args.n - 1):3d}  {statistics.median(wall[b:b + 50]) * 1000:6.2f}  "
                  f"{statistics.median(inproc[b:b + 50]):6.2f}")
        # Peak RSS with the other pods on the node: DEL and ADD the last pod again under
        # /usr/bin/time (the plugin's state is parsed whole by both).
        last = names[-1]
        runner.rss_file = os.path.join(datadir, "rss")
        runner.delete(f"{B.PREFIX}-{last}", f"/run/netns/{last}", "eth0", last, results[last])
        ok, _, res = runner.add(f"{B.PREFIX}-{last}", f"/run/netns/{last}", "eth0", last)
        runner.rss_file = None
        if not ok:
            raise SystemExit(f"ADD of {last} failed: {res}")
        results[last] = res
        print(f"peak RSS with {args.n - 1} other pods on the node: ADD "
              f"{runner.rss_kb['ADD'] / 1024:.1f} MB, DEL {runner.rss_kb['DEL'] / 1024:.1f} MB")
        for nm in names:
            runner.delete(f"{B.PREFIX}-{nm}", f"/run/netns/{nm}", "eth0", nm, results.get(nm))
    finally:
        for nm in created:
            B.sh("ip", "netns", "del", nm, check=False)
        B.sh("ip", "link", "del", B.BRIDGE, check=False)
        subprocess.run(["ip", "netns", "del", B.NODE_NS], check=False)
        shutil.rmtree(datadir, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
