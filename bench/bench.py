#!/usr/bin/env python3
"""aksnet-cni against the reference CNI plugins, side by side (issue 7).

One run measures, alternating between them in every round:

  kubenet     aksnet-cni mode kubenet      vs  reference bridge + host-local
  nodesubnet  aksnet-cni mode nodesubnet   vs  reference ptp + host-local
  overlay     aksnet-cni mode overlay      vs  reference ptp + host-local
  podsubnet   aksnet-cni mode podsubnet    vs  reference ptp + host-local

for N = 50 and 250 pods, with 1 (serial) and 8 parallel callers. For each cell
it reports the median and p99 latency of ADD, CHECK and DEL, the wall time of
ADD+CHECK+DEL of all pods ("churn"), and the peak RSS of one plugin process
(measured on one extra, untimed attachment per cell under /usr/bin/time, whose
%M is the child's ru_maxrss; for bridge/ptp that is the larger of the plugin
and the host-local it execs; the timed calls are not wrapped). Every aksnet figure is also given as a ratio to its
reference. The reference plugins are Debian's containernetworking-plugins in
/usr/lib/cni.

The plugins are driven the way a runtime drives them (CNI spec 1.1.0 section
2 and 3; docs/cni-clients.md#protocol): CNI_* environment and the request
configuration on stdin, prevResult = the ADD result for CHECK and DEL, a
second DEL for idempotence. It records: wait4 for peak RSS, a distinct
K8S_POD_NAME per pod (nodesubnet names the host veth from it), peak RSS
through /usr/bin/time on an untimed probe attachment, both networks
inside a dedicated "node" network namespace, leak checks for aksnet's state
file and for host links.

Everything runs inside a node netns `aksntb-node` (with a veth uplink and a
default route, so nodesubnet's MTU lookup has a device), created and deleted by
this script; pod namespaces are `aksntb<i>`. Nothing in the root netns is
touched. Must run as root.

Usage (from the repository root):
  ./scripts/build-release.sh          # dist/aksnet-cni (static, as shipped) and dist/aksnet
  python3 bench/bench.py                       # 3 rounds, N=50 250, jobs 1 8
  python3 bench/bench.py --rounds 1 --n 50 --jobs 1 --json-out /tmp/b.json
  python3 bench/bench.py --markdown-out /tmp/bench.md   # tables for docs/benchmarks.md
"""

import argparse
import concurrent.futures
import ctypes
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REFERENCE_PATH = "/usr/lib/cni"

# Every name this script creates starts with PREFIX (AKSNET_BENCH_PREFIX, default aksntb),
# so two runs on one machine can use different prefixes and never touch each other's objects.
PREFIX = os.environ.get("AKSNET_BENCH_PREFIX", "aksntb")
NODE_NS = f"{PREFIX}-node"
POD_PREFIX = PREFIX
BRIDGE = f"{PREFIX}br0"
UPLINK = f"{PREFIX}up0"
UPLINK_PEER = f"{PREFIX}up1"
KUBENET_SUBNET = "10.99.0.0/22"
NODE_SUBNET = "10.98.0.0/22"
# Overlay: the cluster pod CIDR, and the /24 the first node joined gets of it (the ptp
# reference allocates from the same /24).
OVERLAY_POD_CIDR = "10.95.0.0/16"
OVERLAY_BLOCK = "10.95.0.0/24"
# Pod Subnet (static blocks: 16 /28s for maxPods 250); the reference takes the same subnet.
POD_SUBNET = "10.93.0.0/22"
CLONE_NEWNET = 0x40000000

# pair -> [(label, conflist, kind)]: the reference first, then aksnet-cni
PAIRS = {
    "kubenet": [
        ("reference bridge+host-local", "ref-bridge.conflist", "ref"),
        ("aksnet-cni kubenet", "aksnet-kubenet.conflist", "ours"),
    ],
    "nodesubnet": [
        ("reference ptp+host-local", "ref-ptp.conflist", "ref"),
        ("aksnet-cni nodesubnet", "aksnet-nodesubnet.conflist", "ours"),
    ],
    "overlay": [
        ("reference ptp+host-local", "ref-ptp.conflist", "ref"),
        ("aksnet-cni overlay", "aksnet-overlay.conflist", "ours"),
    ],
    "podsubnet": [
        ("reference ptp+host-local", "ref-ptp.conflist", "ref"),
        ("aksnet-cni podsubnet", "aksnet-podsubnet.conflist", "ours"),
    ],
}
SUBNETS = {"kubenet": KUBENET_SUBNET, "nodesubnet": NODE_SUBNET, "overlay": OVERLAY_BLOCK,
           "podsubnet": POD_SUBNET}
# `aksnet node join` flags of the modes that read node-pool.json.
JOIN_FLAGS = {"nodesubnet": [], "overlay": ["--overlay", "--pod-cidr-from", OVERLAY_POD_CIDR],
              "podsubnet": ["--pod-subnet", POD_SUBNET, "--pod-allocation", "static"]}
OPS = ("ADD", "CHECK", "DEL")


def pct(values, p):
    """Nearest-rank percentile (p in 0..100), as in the baseline script."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summarize(values_s):
    ms = [v * 1000.0 for v in values_s]
    if not ms:
        return {"count": 0}
    return {
        "count": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(pct(ms, 90), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def sh(*cmd, check=True):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=check)


# --- the node namespace ---------------------------------------------------------------

def enter_netns(path):
    """setns(2) for the calling thread. Called once on the main thread before any
    worker thread exists, so every thread and every plugin process lives there."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise SystemExit(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def setup_node_ns():
    sh("ip", "netns", "del", NODE_NS, check=False)
    sh("ip", "netns", "add", NODE_NS)
    ns = ["ip", "-n", NODE_NS]
    sh(*ns, "link", "set", "lo", "up")
    sh(*ns, "link", "add", UPLINK, "mtu", "1500", "type", "veth", "peer", "name", UPLINK_PEER)
    sh(*ns, "link", "set", UPLINK, "up")
    sh(*ns, "link", "set", UPLINK_PEER, "up")
    sh(*ns, "addr", "add", "192.168.254.2/24", "dev", UPLINK)
    sh(*ns, "route", "add", "default", "via", "192.168.254.1", "dev", UPLINK)
    sh(*ns, "link", "set", UPLINK_PEER, "down")  # only UPLINK carries the route
    sh(*ns, "link", "set", UPLINK_PEER, "up")
    enter_netns(f"/run/netns/{NODE_NS}")


def node_links():
    out = sh("ip", "-o", "link", "show").stdout.decode()
    names = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return [n for n in names if n not in ("lo", UPLINK, UPLINK_PEER, BRIDGE)]


def node_host_routes(subnet):
    """Host (/32) routes into the pod subnet left in the node netns (nodesubnet and ptp
    add one per pod; they must go with the pod)."""
    out = sh("ip", "-4", "route", "show", "root", subnet).stdout.decode()
    return [l for l in out.splitlines() if l.split() and "/" not in l.split()[0]]


# --- driving a plugin chain -------------------------------------------------------------

class Runner:
    def __init__(self, netlist, cni_path, cni_args):
        self.netlist = netlist
        self.cni_path = cni_path
        self.cni_args = cni_args
        # Set only for the untimed RSS probe: `/usr/bin/time -f %M -o FILE` in front of
        # the plugin. A plugin forked from this (large) Python process would inherit its
        # RSS high-water mark in ru_maxrss; one forked from `time` inherits ~2 MB.
        self.rss_file = None
        self.rss_kb = {}

    def plugin_conf(self, plugin, prev_result=None, extra=None):
        conf = dict(plugin)
        conf["cniVersion"] = self.netlist["cniVersion"]
        conf["name"] = self.netlist["name"]
        conf.pop("capabilities", None)  # spec 1.1.0 section 3
        if prev_result is not None:
            conf["prevResult"] = prev_result
        if extra:
            conf.update(extra)
        return conf

    def find_plugin(self, typ):
        for d in self.cni_path.split(":"):
            p = os.path.join(d, typ)
            if os.access(p, os.X_OK):
                return p
        raise SystemExit(f"plugin {typ!r} not found in CNI_PATH {self.cni_path}")

    def exec_plugin(self, command, plugin, conf, container_id="", netns="", ifname="", pod=""):
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": self.cni_path,
        }
        if container_id:
            env["CNI_CONTAINERID"] = container_id
        if netns:
            env["CNI_NETNS"] = netns
        if ifname:
            env["CNI_IFNAME"] = ifname
        if self.cni_args and container_id:
            env["CNI_ARGS"] = self.cni_args.replace("@POD@", pod)
        data = json.dumps(conf).encode()
        argv = [self.find_plugin(plugin["type"])]
        if self.rss_file:
            argv = ["/usr/bin/time", "-f", "%M", "-o", self.rss_file] + argv
        t0 = time.perf_counter()
        p = subprocess.run(argv, input=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if self.rss_file:
            with open(self.rss_file) as f:
                kb = int(f.read().strip().splitlines()[-1])
            self.rss_kb[command] = max(self.rss_kb.get(command, 0), kb)
        err = p.stderr
        out = p.stdout.decode(errors="replace").strip()
        if p.returncode != 0:
            try:
                e = json.loads(out)
            except ValueError:
                e = {"code": None, "msg": out or err.decode(errors="replace").strip()}
            return False, dt, e
        result = None
        if out:
            try:
                result = json.loads(out)
            except ValueError:
                return False, dt, {"code": None, "msg": "stdout is not JSON: " + out[:200]}
        return True, dt, result

    def add(self, cid, netns, ifname, pod):
        prev, total = None, 0.0
        for plugin in self.netlist["plugins"]:
            ok, dt, res = self.exec_plugin("ADD", plugin, self.plugin_conf(plugin, prev), cid, netns, ifname, pod)
            total += dt
            if not ok:
                return False, total, res
            prev = res
        return True, total, prev

    def check(self, cid, netns, ifname, pod, add_result):
        total = 0.0
        for plugin in self.netlist["plugins"]:
            ok, dt, res = self.exec_plugin("CHECK", plugin, self.plugin_conf(plugin, add_result),
                                           cid, netns, ifname, pod)
            total += dt
            if not ok:
                return False, total, res
        return True, total, None

    def delete(self, cid, netns, ifname, pod, add_result):
        total = 0.0
        for plugin in reversed(self.netlist["plugins"]):
            ok, dt, res = self.exec_plugin("DEL", plugin, self.plugin_conf(plugin, add_result),
                                           cid, netns, ifname, pod)
            total += dt
            if not ok:
                return False, total, res
        return True, total, None


def run_phase(items, fn, jobs):
    lat, fails, results = [], [], {}
    t0 = time.perf_counter()
    if jobs <= 1:
        outs = [(it, fn(it)) for it in items]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(fn, it): it for it in items}
            outs = [(futs[f], f.result()) for f in concurrent.futures.as_completed(futs)]
    wall = time.perf_counter() - t0
    for it, (ok, dt, res) in outs:
        lat.append(dt)
        if ok:
            results[it] = res
        else:
            fails.append({"item": it, "error": res})
    return lat, fails, wall, results


def aksnet_state_left(datadir, name):
    path = os.path.join(datadir, f"{name}.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        state = json.load(f)  # must parse
    return len(state.get("allocations", []))


def host_local_left(datadir):
    leaked = []
    for d in os.listdir(datadir):
        full = os.path.join(datadir, d)
        if os.path.isdir(full):
            leaked += [f for f in os.listdir(full) if f != "lock" and not f.startswith("last_reserved_ip")]
    return len(leaked)


def join_node(args, datadir, store, pair):
    """nodesubnet needs the node's up-front reservation (docs/node.md), overlay its /24
    of the pod CIDR (docs/models.md#overlay), podsubnet its /28 blocks of the pod subnet."""
    p = sh(args.aksnet, "node", "join", "--node", NODE_NS, "--subnet", NODE_SUBNET,
           "--subnet-name", PREFIX, "--max-pods", "250", "--store", store, "--data-dir", datadir,
           *JOIN_FLAGS[pair], check=False)
    if p.returncode != 0:
        raise SystemExit(f"aksnet node join failed: {p.stderr.decode()}{p.stdout.decode()}")


def bench_one(args, pair, label, conflist, kind, n, jobs):
    parent = args.aksnet_data_parent if kind == "ours" else None
    datadir = tempfile.mkdtemp(prefix=f"{PREFIX}-data-", dir=parent)
    store = tempfile.mkdtemp(prefix=f"{PREFIX}-store-")
    subnet = SUBNETS[pair]
    with open(os.path.join(HERE, conflist)) as f:
        text = f.read()
    text = text.replace("@BRIDGE@", BRIDGE).replace("@SUBNET@", subnet).replace("@DATADIR@", datadir)
    netlist = json.loads(text)
    if kind == "ours":
        for kv in args.aksnet_set:
            key, _, value = kv.partition("=")
            netlist["plugins"][0][key] = json.loads(value)
    cni_path = REFERENCE_PATH if kind == "ref" else args.aksnet_cni_dir
    r = Runner(netlist, cni_path, args.cni_args)
    names = [f"{POD_PREFIX}{i}" for i in range(n)]
    rep = {"pair": pair, "impl": label, "kind": kind, "n": n, "jobs": jobs,
           "cniVersion": netlist["cniVersion"], "chain": [p["type"] for p in netlist["plugins"]]}
    created = []
    try:
        if pair in JOIN_FLAGS and kind == "ours":
            join_node(args, datadir, store, pair)
        for nm in names:
            sh("ip", "netns", "add", nm)
            created.append(nm)

        def cid(nm):
            return f"{PREFIX}-{nm}"

        def nspath(nm):
            return f"/run/netns/{nm}"

        t0 = time.perf_counter()
        lat, fails, wall, adds = run_phase(names, lambda nm: r.add(cid(nm), nspath(nm), "eth0", nm), jobs)
        rep["ADD"] = dict(summarize(lat), wall_s=round(wall, 3), failures=len(fails))
        if fails:
            rep["ADD"]["first_failure"] = fails[0]
        addrs = [ip.get("address") for res in adds.values() for ip in (res or {}).get("ips", [])]
        rep["distinct_addresses"] = len(set(addrs))
        ok_names = [nm for nm in names if nm in adds]
        lat, fails, wall, _ = run_phase(
            ok_names, lambda nm: r.check(cid(nm), nspath(nm), "eth0", nm, adds[nm]), jobs)
        rep["CHECK"] = dict(summarize(lat), wall_s=round(wall, 3), failures=len(fails))
        if fails:
            rep["CHECK"]["first_failure"] = fails[0]
        lat, fails, wall, _ = run_phase(
            names, lambda nm: r.delete(cid(nm), nspath(nm), "eth0", nm, adds.get(nm)), jobs)
        rep["DEL"] = dict(summarize(lat), wall_s=round(wall, 3), failures=len(fails))
        if fails:
            rep["DEL"]["first_failure"] = fails[0]
        rep["churn_wall_s"] = round(time.perf_counter() - t0, 3)
        # With aksnet-cni's asyncDelete the kernel is still deleting veths when the
        # last DEL returns: record when the last pod link is really gone, so the
        # teardown is not hidden ("churn to gone").
        while node_links() and time.perf_counter() - t0 < rep["churn_wall_s"] + 10.0:
            time.sleep(0.005)
        rep["churn_to_gone_s"] = round(time.perf_counter() - t0, 3)
        lat, fails, wall, _ = run_phase(
            names, lambda nm: r.delete(cid(nm), nspath(nm), "eth0", nm, adds.get(nm)), jobs)
        rep["DEL_again"] = dict(summarize(lat), wall_s=round(wall, 3), failures=len(fails))
        # Peak RSS: one more attachment, untimed, each call under /usr/bin/time.
        probe = f"{POD_PREFIX}rss"
        sh("ip", "netns", "add", probe)
        created.append(probe)
        r.rss_file = os.path.join(datadir, "..", os.path.basename(datadir) + ".rss")
        try:
            ok, _, res = r.add(cid(probe), nspath(probe), "eth0", probe)
            if ok:
                r.check(cid(probe), nspath(probe), "eth0", probe, res)
            r.delete(cid(probe), nspath(probe), "eth0", probe, res if ok else None)
        finally:
            if os.path.exists(r.rss_file):
                os.unlink(r.rss_file)
            r.rss_file = None
        rep["peak_rss_kb"] = dict(r.rss_kb)
        if kind == "ours":
            rep["ipam_left"] = aksnet_state_left(datadir, netlist["name"])
        else:
            rep["ipam_left"] = host_local_left(datadir)
        # aksnet-cni's asyncDelete leaves the kernel's veth teardown to a detached
        # helper: wait (bounded) for it, and record how long the links took to go.
        t_settle = time.perf_counter()
        while node_links() and time.perf_counter() - t_settle < 5.0:
            time.sleep(0.01)
        rep["links_settle_s"] = round(time.perf_counter() - t_settle, 3)
        rep["links_left"] = node_links()
        rep["routes_left"] = len(node_host_routes(subnet))
    finally:
        for nm in created:
            sh("ip", "netns", "del", nm, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)
        for l in node_links():
            sh("ip", "link", "del", l, check=False)
        shutil.rmtree(datadir, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    return rep


def failures(rep):
    return sum(rep.get(op, {}).get("failures", 0) for op in ("ADD", "CHECK", "DEL", "DEL_again"))


def print_report(rep):
    cells = "  ".join(f"{op} {rep[op]['median_ms']:.1f}/{rep[op]['p99_ms']:.1f}" for op in OPS if rep.get(op, {}).get("count"))
    print(f"  {rep['impl']:<30} N={rep['n']:<4} jobs={rep['jobs']}  {cells} ms  churn {rep['churn_wall_s']:.2f} s"
          f"  rss {max(rep['peak_rss_kb'].values()) / 1024:.1f} MB  fail {failures(rep)}"
          f"  left ipam={rep['ipam_left']} links={len(rep['links_left'])} routes={rep['routes_left']}",
          flush=True)
    for op in ("ADD", "CHECK", "DEL", "DEL_again"):
        ff = rep.get(op, {}).get("first_failure")
        if ff:
            print(f"    {op} first failure: {json.dumps(ff)[:300]}", flush=True)


# --- aggregation ---------------------------------------------------------------------------

def aggregate(reports):
    """Median over rounds of each figure, per (pair, kind, n, jobs)."""
    cells = {}
    for r in reports:
        cells.setdefault((r["pair"], r["kind"], r["n"], r["jobs"]), []).append(r)
    agg = {}
    for key, rs in cells.items():
        a = {"impl": rs[0]["impl"], "rounds": len(rs)}
        for op in OPS:
            a[op] = {
                "median_ms": statistics.median(r[op]["median_ms"] for r in rs),
                "p99_ms": statistics.median(r[op]["p99_ms"] for r in rs),
                "median_range": (min(r[op]["median_ms"] for r in rs), max(r[op]["median_ms"] for r in rs)),
            }
        a["phase_wall_s"] = {op: statistics.median(r[op]["wall_s"] for r in rs) for op in OPS}
        a["churn_wall_s"] = statistics.median(r["churn_wall_s"] for r in rs)
        a["churn_range"] = (min(r["churn_wall_s"] for r in rs), max(r["churn_wall_s"] for r in rs))
        a["churn_to_gone_s"] = statistics.median(r.get("churn_to_gone_s", r["churn_wall_s"]) for r in rs)
        a["peak_rss_mb"] = max(max(r["peak_rss_kb"].values()) for r in rs) / 1024.0
        a["failures"] = sum(failures(r) for r in rs)
        a["left"] = sum(r["ipam_left"] + len(r["links_left"]) + r["routes_left"] for r in rs)
        agg[key] = a
    return agg


def phases(a):
    return " / ".join("%.2f" % a["phase_wall_s"][op] for op in OPS)


def markdown(agg, meta):
    lines = []
    lines.append(f"Run {meta['date']} on {meta['machine']}; command `{meta['command']}`; "
                 f"{meta['rounds']} round(s), each cell the median over rounds (latencies in ms per "
                 f"operation, range of the per-round medians in brackets).")
    lines.append("")
    for pair in PAIRS:
        if not any(k[0] == pair for k in agg):
            continue  # not measured in this run (--pairs)
        lines.append(f"### {pair}: {PAIRS[pair][1][0]} vs {PAIRS[pair][0][0]}")
        lines.append("")
        lines.append("| N | callers | op | aksnet median | reference median | ratio | aksnet p99 | reference p99 | ratio |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for (p, kind, n, jobs) in sorted(k for k in agg if k[0] == pair and k[1] == "ours"):
            ours, ref = agg.get((p, "ours", n, jobs)), agg.get((p, "ref", n, jobs))
            if not ref:
                continue
            for op in OPS:
                o, f = ours[op], ref[op]
                lines.append(
                    f"| {n} | {jobs} | {op} | {o['median_ms']:.2f} [{o['median_range'][0]:.2f}–{o['median_range'][1]:.2f}]"
                    f" | {f['median_ms']:.2f} [{f['median_range'][0]:.2f}–{f['median_range'][1]:.2f}]"
                    f" | **{o['median_ms'] / f['median_ms']:.2f}** | {o['p99_ms']:.2f} | {f['p99_ms']:.2f}"
                    f" | {o['p99_ms'] / f['p99_ms']:.2f} |")
        lines.append("")
        lines.append("| N | callers | aksnet churn wall (ADD+CHECK+DEL) | reference | ratio | until every pod link is gone, aksnet vs reference (ratio) | phase walls ADD / CHECK / DEL, aksnet vs reference (s) | aksnet peak RSS | reference peak RSS | ratio | failures / leftovers |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for (p, kind, n, jobs) in sorted(k for k in agg if k[0] == pair and k[1] == "ours"):
            ours, ref = agg.get((p, "ours", n, jobs)), agg.get((p, "ref", n, jobs))
            if not ref:
                continue
            lines.append(
                f"| {n} | {jobs} | {ours['churn_wall_s']:.2f} s [{ours['churn_range'][0]:.2f}–{ours['churn_range'][1]:.2f}]"
                f" | {ref['churn_wall_s']:.2f} s [{ref['churn_range'][0]:.2f}–{ref['churn_range'][1]:.2f}]"
                f" | **{ours['churn_wall_s'] / ref['churn_wall_s']:.2f}**"
                f" | {ours['churn_to_gone_s']:.2f} s vs {ref['churn_to_gone_s']:.2f} s ({ours['churn_to_gone_s'] / ref['churn_to_gone_s']:.2f})"
                f" | {phases(ours)} vs {phases(ref)}"
                f" | {ours['peak_rss_mb']:.1f} MB"
                f" | {ref['peak_rss_mb']:.1f} MB | {ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}"
                f" | {ours['failures']}/{ours['left']} vs {ref['failures']}/{ref['left']} |")
        lines.append("")
    return "\n".join(lines)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} x {cpu}, kernel {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[50, 250])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 8], help="parallel callers (default 1 8)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--aksnet-cni-dir", default=os.path.join(REPO, "dist"),
                    help="directory holding the aksnet-cni binary (default dist/, what "
                         "scripts/build-release.sh builds and users install)")
    ap.add_argument("--aksnet", default=None, help="the aksnet CLI (default target/release or target/debug)")
    ap.add_argument("--aksnet-data-parent", default=None,
                    help="directory in which aksnet-cni's dataDir is made (default: the system's temp "
                         "dir). A node's default dataDir keeps the attachments' state in /run/aksnet, a "
                         "tmpfs (docs/architecture.md, \"Crash and reboot\"); /dev/shm gives the same "
                         "here when /run is not a tmpfs. The reference's host-local dataDir stays in the "
                         "temp dir, as /var/lib/cni/networks is on disk on a node.")
    ap.add_argument("--aksnet-set", action="append", default=[], metavar="KEY=JSON",
                    help="set a key of aksnet-cni's plugin configuration, e.g. mtu=0 (look the uplink "
                         "MTU up at every ADD, as a conflist without `mtu` does)")
    ap.add_argument("--cni-args", default="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=@POD@")
    ap.add_argument("--json-out")
    ap.add_argument("--markdown-out")
    ap.add_argument("--from-json", help="only re-render the tables of an earlier --json-out file")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        md = markdown(aggregate(saved["reports"]), saved["meta"])
        print(md)
        if args.markdown_out:
            with open(args.markdown_out, "w") as f:
                f.write(md + "\n")
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    if not os.access(os.path.join(args.aksnet_cni_dir, "aksnet-cni"), os.X_OK):
        raise SystemExit(f"{args.aksnet_cni_dir}/aksnet-cni missing: run ./scripts/build-release.sh")
    if not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("/usr/bin/time missing (peak RSS): apt-get install time")
    for ref in ("bridge", "ptp", "host-local"):
        if not os.access(os.path.join(REFERENCE_PATH, ref), os.X_OK):
            raise SystemExit(f"{REFERENCE_PATH}/{ref} missing: apt-get install containernetworking-plugins")
    if args.aksnet is None:
        for d in ("dist", "target/release", "target/debug"):
            p = os.path.join(REPO, d, "aksnet")
            if os.access(p, os.X_OK):
                args.aksnet = p
                break
        else:
            raise SystemExit("aksnet CLI missing: run ./scripts/build-release.sh")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python3 bench/bench.py " + " ".join(sys.argv[1:]),
        "rounds": args.rounds,
    }
    setup_node_ns()
    reports = []
    try:
        for rnd in range(args.rounds):
            print(f"== round {rnd + 1}/{args.rounds}", flush=True)
            for n in args.n:
                for jobs in args.jobs:
                    for pair in args.pairs:
                        order = PAIRS[pair] if rnd % 2 == 0 else list(reversed(PAIRS[pair]))
                        for label, conflist, kind in order:
                            rep = bench_one(args, pair, label, conflist, kind, n, jobs)
                            rep["round"] = rnd
                            print_report(rep)
                            reports.append(rep)
    finally:
        # The node netns holds every link the plugins made; deleting it removes them.
        subprocess.run(["ip", "netns", "del", NODE_NS], check=False)
    agg = aggregate(reports)
    md = markdown(agg, meta)
    print()
    print(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"meta": meta, "reports": reports}, f, indent=1)
    if args.markdown_out:
        with open(args.markdown_out, "w") as f:
            f.write(md + "\n")
    bad = any(failures(r) or r["ipam_left"] or r["links_left"] or r["routes_left"] for r in reports)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
