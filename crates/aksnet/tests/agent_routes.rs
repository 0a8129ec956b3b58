//! kubenet across hosts (issue 13 item 2), with real parts only: three node
//! namespaces and a LAN host joined only by a bridge, pod CIDRs allocated by the
//! real `aksnet node join --pod-cidr-from`, 10 pods per node created by the real
//! `aksnet-cni` (kubenet), routes programmed by the real `aksnet agent
//! --kubenet-routes`, and the LAN host given the BYO route table printed by
//! `aksnet node routes --format ip`.
//!
//! Proves: every pod reaches every pod of the other nodes; the LAN host reaches
//! every pod and the pods reach it; a node that leaves loses its route on the
//! others; a restarted agent changes no route, neighbour entry or rule (watched
//! with `ip monitor` while it restarts). Needs root, `ip`, `ping` and `nft`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");
const POD_CIDR: &str = "10.67.128.0/17";
const HOST_IP: &str = "10.67.0.200";
const NODES: usize = 3;
const PODS: usize = 10;

mod support;
use aksnet_testkit::{ChildGuard, Netns};
use support::{ok, run_cni, sh};

fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

/// Named network namespaces and child processes, removed on drop (children
/// first: they run inside the namespaces).
#[derive(Default)]
struct Guard {
    children: Vec<ChildGuard>,
    ns: Vec<Netns>,
}

impl Guard {
    fn netns(&mut self, name: String) -> String {
        let ns = Netns::create(&name);
        ns.ip(&["link", "set", "lo", "up"]);
        self.ns.push(ns);
        name
    }
}

struct Node {
    name: String,
    ns: String,
    ip: String,
    data: PathBuf,
    pod_cidr: String,
    pods: Vec<(String, String)>,
}

/// A switch namespace with `br0`, and `ns` plugged into it as `up0` with `addr`.
fn plug(sw: &str, ns: &str, port: &str, addr: &str) {
    ok(&in_ns(
        sw,
        &[
            "ip", "link", "add", port, "type", "veth", "peer", "name", "up0", "netns", ns,
        ],
    ));
    ok(&in_ns(
        sw,
        &["ip", "link", "set", port, "master", "br0", "up"],
    ));
    ok(&in_ns(ns, &["ip", "link", "set", "up0", "up"]));
    ok(&in_ns(ns, &["ip", "addr", "add", addr, "dev", "up0"]));
}

fn aksnet(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run aksnet")
}

fn cni_add(node: &Node, id: &str, pod_ns: &str) -> String {
    let conf = serde_json::json!({
        "cniVersion": "1.1.0", "name": "kubenet", "type": "aksnet-cni",
        "mode": "kubenet", "bridge": "cbr0", "dataDir": node.data,
        "ipam": {"ranges": [[{"subnet": node.pod_cidr}]]},
    });
    let o = run_cni(&node.ns, "ADD", id, pod_ns, &conf);
    assert!(o.ok, "ADD {id}: {o:?}");
    let result = o.json();
    let ip = result["ips"][0]["address"].as_str().unwrap();
    ip.split('/').next().unwrap().to_string()
}

fn agent_args<'a>(node: &'a Node, store: &'a str, once: bool) -> Vec<&'a str> {
    // The --config-dir is the node's data dir: no file there is named ip-masq*.
    let mut v = in_ns(&node.ns, &[BIN, "agent"]);
    if once {
        v.push("--once");
    }
    v.extend_from_slice(&[
        "--mode",
        "kubenet",
        "--cluster-pod-cidr",
        POD_CIDR,
        "--config-dir",
        node.data.to_str().unwrap(),
        "--metrics-addr",
        "off",
        "--store",
        store,
        "--kubenet-routes",
        &node.name,
        "--kubenet-routes-interval",
        "200ms",
    ]);
    v
}

fn our_routes(ns: &str) -> String {
    ok(&in_ns(ns, &["ip", "route", "show", "proto", "213"]))
}

fn ping(ns: &str, ip: &str) -> bool {
    sh(&in_ns(ns, &["ping", "-c", "1", "-W", "2", ip]))
        .status
        .success()
}

fn join(node: &mut Node, store: &str) {
    let o = aksnet(&[
        "node",
        "join",
        "--node",
        &node.name,
        "--pod-cidr-from",
        POD_CIDR,
        "--node-ip",
        &node.ip,
        "--store",
        store,
        "--data-dir",
        &node.data.display().to_string(),
    ]);
    assert!(o.status.success(), "join {}: {o:?}", node.name);
    let text = String::from_utf8_lossy(&o.stdout);
    node.pod_cidr = text
        .split_whitespace()
        .find(|w| w.starts_with("10.67.") && w.contains('/'))
        .unwrap_or_else(|| panic!("no pod CIDR in {text}"))
        .to_string();
}

/// Everything `ip monitor` prints while `f` runs in `ns`.
fn monitored(ns: &str, f: impl FnOnce()) -> String {
    let mut mon = Command::new("ip")
        .args([
            "netns", "exec", ns, "ip", "-o", "monitor", "route", "neigh", "rule",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));
    f();
    std::thread::sleep(Duration::from_millis(500));
    let _ = mon.kill();
    let mut out = String::new();
    mon.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = mon.wait();
    out
}

#[test]
fn kubenet_routes_across_three_hosts_of_one_lan() {
    assert_eq!(
        ok(&["id", "-u"]).trim(),
        "0",
        "run as root (network namespaces)"
    );
    let mut g = Guard::default();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("cluster").display().to_string();
    let pid = std::process::id() % 1000;
    let sw = g.netns(format!("aksh7{pid}sw"));
    ok(&in_ns(&sw, &["ip", "link", "add", "br0", "type", "bridge"]));
    ok(&in_ns(&sw, &["ip", "link", "set", "br0", "up"]));
    let host = g.netns(format!("aksh7{pid}ht"));
    plug(&sw, &host, "ph", &format!("{HOST_IP}/24"));
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..NODES {
        let ns = g.netns(format!("aksh7{pid}n{i}"));
        let ip = format!("10.67.0.{}", 10 + i);
        plug(&sw, &ns, &format!("p{i}"), &format!("{ip}/24"));
        ok(&in_ns(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
        let data = tmp.path().join(format!("node{i}"));
        let mut n = Node {
            name: format!("node-{i}"),
            ns,
            ip,
            data,
            pod_cidr: String::new(),
            pods: Vec::new(),
        };
        join(&mut n, &store);
        for p in 0..PODS {
            let pod_ns = g.netns(format!("aksh7{pid}n{i}p{p}"));
            let pod_ip = cni_add(&n, &format!("aksh7c{i}p{p}"), &pod_ns);
            n.pods.push((pod_ns, pod_ip));
        }
        nodes.push(n);
    }
    for n in &nodes {
        ok(&agent_args(n, &store, true));
        let routes = our_routes(&n.ns);
        assert_eq!(routes.lines().count(), NODES - 1, "{}: {routes}", n.name);
        for other in nodes.iter().filter(|o| o.name != n.name) {
            assert!(
                routes.contains(&format!("{} via {}", other.pod_cidr, other.ip)),
                "{} lacks the route of {}: {routes}",
                n.name,
                other.name
            );
        }
    }
    // The LAN host holds the BYO route table `node routes --format ip` prints.
    let table = aksnet(&["node", "routes", "--format", "ip", "--store", &store]);
    assert!(table.status.success(), "{table:?}");
    for line in String::from_utf8_lossy(&table.stdout).lines() {
        let mut cmd: Vec<&str> = in_ns(&host, &[]);
        cmd.extend(line.split_whitespace());
        ok(&cmd);
    }
    // Pods across nodes, LAN host to pods and back.
    for (i, n) in nodes.iter().enumerate() {
        let other = &nodes[(i + 1) % NODES];
        for (k, (pod_ns, pod_ip)) in n.pods.iter().enumerate() {
            assert!(
                ping(&host, pod_ip),
                "the LAN host cannot reach pod {pod_ip} on {}",
                n.name
            );
            assert!(
                ping(pod_ns, HOST_IP),
                "pod {pod_ip} on {} cannot reach the LAN host",
                n.name
            );
            let target = &other.pods[k].1;
            assert!(
                ping(pod_ns, target),
                "pod {pod_ip} ({}) cannot reach pod {target} ({})",
                n.name,
                other.name
            );
        }
    }

    // A restarted daemon changes nothing: watch every route, neighbour and rule event.
    let before = ok(&in_ns(
        &nodes[0].ns,
        &["ip", "-4", "route", "show", "table", "all"],
    ));
    let mut agent = Command::new("ip")
        .args(agent_args(&nodes[0], &store, false).split_at(1).1)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let events = monitored(&nodes[0].ns, || {
        let _ = agent.kill();
        let _ = agent.wait();
        let a = Command::new("ip")
            .args(agent_args(&nodes[0], &store, false).split_at(1).1)
            .spawn()
            .unwrap();
        g.children
            .push(ChildGuard::new("aksnet agent (restarted)", a));
        std::thread::sleep(Duration::from_millis(1500));
    });
    // The kernel's own changes (IPv6 link-local routes of fresh veths finishing
    // DAD, neighbour cache states) are not the agent's: left out.
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| !l.contains("proto kernel") && !l.contains("lladdr") && !l.contains("fe80::"))
        .collect();
    assert!(
        ours.is_empty(),
        "restarting the agent changed the kernel: {ours:?}"
    );
    assert_eq!(
        ok(&in_ns(
            &nodes[0].ns,
            &["ip", "-4", "route", "show", "table", "all"]
        )),
        before
    );

    // node-2 leaves: the running agent of node-0 drops its route, node-1's --once too.
    let o = aksnet(&[
        "node",
        "leave",
        "--node",
        "node-2",
        "--force",
        "--store",
        &store,
        "--data-dir",
        &nodes[2].data.display().to_string(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let gone = format!("{} via", nodes[2].pod_cidr);
    let mut waited = Duration::ZERO;
    while our_routes(&nodes[0].ns).contains(&gone) {
        assert!(
            waited < Duration::from_secs(10),
            "node-0 kept the route of node-2: {}",
            our_routes(&nodes[0].ns)
        );
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    eprintln!("  the running agent dropped the route of a node that left within {waited:?}");
    ok(&agent_args(&nodes[1], &store, true));
    assert!(!our_routes(&nodes[1].ns).contains(&gone));
    assert_eq!(our_routes(&nodes[1].ns).lines().count(), 1);
    // ...and it comes back when the node joins again (same block: it is free).
    join(&mut nodes[2], &store);
    ok(&agent_args(&nodes[1], &store, true));
    assert!(
        our_routes(&nodes[1].ns).contains(&format!("{} via {}", nodes[2].pod_cidr, nodes[2].ip))
    );
    // Routes of other software are never touched.
    ok(&in_ns(
        &nodes[1].ns,
        &[
            "ip",
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            "10.67.0.200",
            "proto",
            "static",
        ],
    ));
    ok(&agent_args(&nodes[1], &store, true));
    assert!(ok(&in_ns(&nodes[1].ns, &["ip", "route"])).contains("10.99.0.0/24 via 10.67.0.200"));
}
