//! `aksnet lab up --fabric l2` end to end (issue 13): hosts joined only by a
//! bridge, no SDN. Through the real binaries; must run as root. Each test uses
//! its own `akslbl2…-` prefix and a guard runs `lab down` on drop.
//!
//! - 3 nodes × 10 pods in each model pass every claim of `lab check`, plus the
//!   subnet VM's rows: its address (reserved with `aksnet subnet reserve`) is no
//!   node's and no pod's; the fabric namespace holds no route;
//! - every pod reaches the VM on the segment and the VM reaches every pod
//!   (Node Subnet: directly, through the nodes' ARP answers);
//! - address move (Node Subnet): a node drains and leaves, a new node takes its
//!   block, a pod there gets the moved address; the VM on the segment, whose
//!   neighbour entry still names the old node, reaches it as soon as the new
//!   node's agent announced it (gratuitous ARP), and exactly one node answers
//!   for it; a node removed with `node leave --force` from elsewhere stops
//!   answering at its agent's next run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aksnet_testkit::{exec_in, ip_in, ping_from, run, ChildGuard, CniCall, Outcome};
use serde_json::Value;

mod lab_support;
use lab_support::{
    aksnet, bin_dir, LabGuard, BIN, KUBENET_EXPECTED, NODESUBNET_EXPECTED, OVERLAY_EXPECTED,
};

/// The sdn matrix and the subnet VM's rows: its address is no pod's (the Node
/// Subnet FAQ), and it reaches pods as the model's other VMs do.
fn l2_expected(
    sdn: &[(&'static str, &'static str)],
    svm_pod: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut v = sdn.to_vec();
    v.extend([("svm-address", "not given"), ("svm-pod", svm_pod)]);
    v
}

/// One ping from `ns`, waiting a second.
fn ping(ns: &str, ip: &str) -> bool {
    ping_from(ns, ip, 1)
}

fn up_and_check(lab: &LabGuard, model: &str, expected: &[(&str, &str)]) -> Value {
    lab.up_ok(&[
        "--fabric",
        "l2",
        "--model",
        model,
        "--nodes",
        "3",
        "--pods-per-node",
        "10",
    ]);
    let report = lab.check_matches(expected);
    // The switch routes nothing: no IPv4 route at all in the fabric namespace.
    let routes = ip_in(&lab.ns("vnet"), &["-4", "route", "show", "table", "all"]);
    let own: Vec<&str> = routes.lines().filter(|l| !l.contains(" dev lo ")).collect();
    assert!(own.is_empty(), "the fabric holds routes: {own:?}");
    report
}

/// Each node routes the two other nodes' pod CIDRs, with aksnet's protocol (213).
fn assert_each_node_routes_the_two_others(lab: &LabGuard) {
    for i in 0..3 {
        let routes = ip_in(
            &lab.ns(&format!("node-{i}")),
            &["route", "show", "proto", "213"],
        );
        assert_eq!(routes.lines().count(), 2, "node-{i}: {routes}");
    }
}

/// Every pod of the lab, with its netns, from `lab check`'s journal view.
fn pods(lab: &LabGuard) -> Vec<(String, String)> {
    lab.journal()
        .into_iter()
        .filter(|e| e["kind"] == "pod")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["ip"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Overlay on a LAN: each node's /24 comes from the store at join and the other
/// nodes route it (`agent --kubenet-routes`, docs/models.md#overlay); nothing else
/// reaches a pod, and every pod leaves the pod CIDR as its node.
#[test]
fn overlay_on_a_plain_lan_three_nodes_ten_pods() {
    let lab = LabGuard::new("akslbl2o-");
    up_and_check(
        &lab,
        "overlay",
        &l2_expected(&OVERLAY_EXPECTED, "unreachable"),
    );
    assert_eq!(pods(&lab).len(), 30);
    assert_each_node_routes_the_two_others(&lab);
}

#[test]
fn kubenet_on_a_plain_lan_three_nodes_ten_pods() {
    let lab = LabGuard::new("akslbl2k-");
    up_and_check(
        &lab,
        "kubenet",
        &l2_expected(&KUBENET_EXPECTED, "unreachable"),
    );
    let all = pods(&lab);
    assert_eq!(all.len(), 30);
    assert_each_node_routes_the_two_others(&lab);
    let vm = "10.225.0.4";
    for (pod, ip) in &all {
        assert!(ping(pod, vm), "pod {pod} ({ip}) cannot reach the VM");
        assert!(
            ping(pod, &all[(all.len() - 1) % all.len()].1),
            "pod {pod} cannot reach the last pod"
        );
    }
}

#[test]
fn node_subnet_on_a_plain_lan_three_nodes_ten_pods_and_an_address_move() {
    let lab = LabGuard::new("akslbl2n-");
    let report = up_and_check(&lab, "nodesubnet", &l2_expected(&NODESUBNET_EXPECTED, "vm"));
    let svm_ip = report["rows"][6]["fromAddress"]
        .as_str()
        .expect("svm address")
        .to_string();
    let svm = lab.ns("svm");
    let all = pods(&lab);
    assert_eq!(all.len(), 30);
    for (pod, ip) in &all {
        assert_ne!(*ip, svm_ip, "pod {pod} was given the VM's address");
        assert!(
            ping(&svm, ip),
            "the VM on the segment cannot reach pod {pod} ({ip})"
        );
        assert!(
            ping(pod, &svm_ip),
            "pod {pod} ({ip}) cannot reach the VM on the segment"
        );
    }

    agent_restart_changes_nothing(&lab, &lab.ns("node-0"));

    // The move: node-2 drains (CNI DEL of its pods), leaves, a new node takes its block.
    let state = lab.state_dir();
    let node2 = lab.ns("node-2");
    let moved: Vec<(String, String)> = all
        .iter()
        .filter(|(p, _)| p.starts_with(&lab.ns("node-2-")))
        .cloned()
        .collect();
    let (moved_pod, moved_ip) = moved[0].clone();
    assert!(ping(&svm, &moved_ip));
    let old_mac = lladdr(&ip_in(&svm, &["neigh", "show", &moved_ip]))
        .expect("the VM knows the old node's MAC");
    for (pod, _) in &moved {
        cni_del(&lab, "node-2", pod);
    }
    let data2 = state.join("nodes").join(lab.ns("node-2"));
    let o = run(Command::new("ip")
        .args(["netns", "exec", &node2, BIN, "node", "leave", "--node"])
        .arg(lab.ns("node-2"))
        .arg("--store")
        .arg(state.join("store"))
        .arg("--data-dir")
        .arg(&data2));
    assert!(o.success(), "leave: {}", o.text());
    assert_eq!(
        ip_in(&node2, &["neigh", "show", "proxy"]).trim(),
        "",
        "node-2 still answers after leaving"
    );
    // The machine is gone from the LAN (its address goes to the next node).
    ip_in(&node2, &["link", "set", "eth0", "down"]);

    let (new_ns, new_mac) = join_new_node(&lab, "node-9");
    let data9 = state.join("nodes").join(lab.ns("node-9"));
    let mut got = None;
    for k in 0..31 {
        let pod = format!("{}node-9-pod-{k}", lab.prefix);
        let ip = cni_add(&lab, &new_ns, &data9, &pod);
        if ip == moved_ip {
            got = Some(pod);
            break;
        }
    }
    let pod = got.unwrap_or_else(|| panic!("no pod of the new node got {moved_ip}"));
    // The VM still has the old node's MAC for the address (stale, not failed).
    let before = ip_in(&svm, &["neigh", "show", &moved_ip]);
    assert_eq!(
        lladdr(&before).as_deref(),
        Some(old_mac.as_str()),
        "{before}"
    );
    agent_l2_once(&lab, &new_ns, &data9);
    let t = Instant::now();
    while !ping(&svm, &moved_ip) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the VM did not reach {moved_ip} on the new node"
        );
    }
    let took = t.elapsed();
    eprintln!("  after the new node's agent announced {moved_ip}: reached from the LAN in {took:?} (pod {pod}, moved from {moved_pod})");
    let after = ip_in(&svm, &["neigh", "show", &moved_ip]);
    assert_eq!(
        lladdr(&after).as_deref(),
        Some(new_mac.as_str()),
        "the VM's neighbour entry was not replaced: {after}"
    );
    // Exactly one node answers for the address.
    let answering: Vec<String> = (0..3)
        .map(|i| lab.ns(&format!("node-{i}")))
        .chain([new_ns.clone()])
        .filter(|ns| {
            ip_in(ns, &["neigh", "show", "proxy"])
                .lines()
                .any(|l| l.split_whitespace().next() == Some(moved_ip.as_str()))
        })
        .collect();
    assert_eq!(answering, vec![new_ns.clone()]);

    // node-1 removed with --force from elsewhere (as for a dead node): its agent's
    // next run finds no pool and stops answering.
    let node1 = lab.ns("node-1");
    assert!(!ip_in(&node1, &["neigh", "show", "proxy"]).trim().is_empty());
    let o = aksnet(&[
        "node",
        "leave",
        "--force",
        "--node",
        &node1,
        "--store",
        &state.join("store").display().to_string(),
        "--data-dir",
        &state.join("nodes").join(&node1).display().to_string(),
    ]);
    assert!(o.success(), "leave --force: {}", o.text());
    agent_l2_once(&lab, &node1, &state.join("nodes").join(&node1));
    assert_eq!(
        ip_in(&node1, &["neigh", "show", "proxy"]).trim(),
        "",
        "node-1 answers after leave --force"
    );
}

/// The `lladdr` of `ip neigh show` output.
fn lladdr(neigh: &str) -> Option<String> {
    let mut words = neigh.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

fn cni_config(data_dir: &Path) -> String {
    serde_json::json!({"cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni",
        "mode": "nodesubnet", "dataDir": data_dir, "logFile": data_dir.join("aksnet-cni.log")})
    .to_string()
}

/// `aksnet-cni <command>` for `pod` in node `node_ns`, as kubelet's runtime calls it.
fn cni(command: &str, node_ns: &str, data_dir: &Path, pod: &str) -> Outcome {
    let plugin = bin_dir().join("aksnet-cni");
    CniCall::new(&plugin)
        .in_netns(Some(node_ns))
        .verb(
            command,
            pod,
            &format!("/run/netns/{pod}"),
            &format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
        )
        .run(&cni_config(data_dir))
}

fn cni_del(lab: &LabGuard, node: &str, pod: &str) {
    let ns = lab.ns(node);
    let data = lab.state_dir().join("nodes").join(&ns);
    cni("DEL", &ns, &data, pod).expect_ok();
}

/// A pod of a node the test added: its netns is removed by the guard.
fn cni_add(lab: &LabGuard, node_ns: &str, data: &Path, pod: &str) -> String {
    lab.add_netns(pod);
    let v = cni("ADD", node_ns, data, pod).expect_ok().json();
    v["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// A new node on the switch: netns, uplink, join; returns (netns, uplink MAC).
fn join_new_node(lab: &LabGuard, name: &str) -> (String, String) {
    let ns = lab.ns(name);
    lab.add_netns(&ns);
    let fabric = lab.ns("vnet");
    ip_in(
        &fabric,
        &[
            "link", "add", "n9", "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    );
    ip_in(&fabric, &["link", "set", "n9", "master", "br0", "up"]);
    let state = lab.state_dir();
    let data = state.join("nodes").join(&ns);
    std::fs::create_dir_all(&data).unwrap();
    let o = aksnet(&[
        "node",
        "join",
        "--node",
        &ns,
        "--subnet",
        "10.224.0.0/16",
        "--max-pods",
        "30",
        "--store",
        &state.join("store").display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(o.success(), "join: {}", o.text());
    let pool: Value =
        serde_json::from_slice(&std::fs::read(data.join("node-pool.json")).unwrap()).unwrap();
    let node_ip: Ipv4Addr = pool["nodeIp"].as_str().unwrap().parse().unwrap();
    ip_in(&ns, &["link", "set", "lo", "up"]);
    ip_in(&ns, &["link", "set", "eth0", "up"]);
    ip_in(
        &ns,
        &["addr", "add", &format!("{node_ip}/16"), "dev", "eth0"],
    );
    ip_in(&ns, &["route", "add", "default", "via", "10.224.0.1"]);
    let o = exec_in(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = ip_in(&ns, &["-o", "link", "show", "eth0"]);
    let mac = link
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    (ns, mac)
}

/// The node's agent as a daemon, killed and started again while `ip monitor`
/// watches routes, neighbours (proxy entries included) and rules: no event, and
/// the nftables ruleset is the same.
fn agent_restart_changes_nothing(lab: &LabGuard, ns: &str) {
    let data = lab.state_dir().join("nodes").join(ns);
    let args = agent_args(lab, &data);
    let start = |log: Stdio| {
        ChildGuard::new(
            "aksnet agent",
            Command::new("ip")
                .args(["netns", "exec", ns, BIN, "agent"])
                .args(&args)
                .args(["--metrics-addr", "off"])
                .env("RUST_LOG", "info")
                .stderr(log)
                .spawn()
                .expect("start the agent"),
        )
    };
    let nft =
        || String::from_utf8_lossy(&exec_in(ns, &["nft", "list", "ruleset"]).stdout).into_owned();
    let mut agent = start(Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    let (nft_before, proxies_before) = (nft(), ip_in(ns, &["neigh", "show", "proxy"]));
    let mut mon = ChildGuard::new(
        "ip monitor",
        Command::new("ip")
            .args(["-n", ns, "-o", "monitor", "route", "neigh", "rule"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = agent.child.kill();
    let _ = agent.child.wait();
    let mut again = start(Stdio::piped());
    std::thread::sleep(Duration::from_millis(2500));
    // Stop it (SIGTERM), then read what it logged.
    let pid = again.child.id();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let log = read_all(again.child.stderr.take());
    let _ = again.child.wait();
    let _ = mon.child.kill();
    let events = read_all(mon.child.stdout.take());
    let _ = mon.child.wait();
    // The kernel's own changes (neighbour cache states, IPv6 link-local routes) are
    // not the agent's.
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| {
            l.contains("proxy")
                || !(l.contains("lladdr") || l.contains("proto kernel") || l.contains("fe80::"))
        })
        .collect();
    assert!(
        ours.is_empty(),
        "restarting the agent changed the kernel: {ours:?}"
    );
    assert_eq!(nft(), nft_before, "restarting the agent rewrote nftables");
    assert_eq!(ip_in(ns, &["neigh", "show", "proxy"]), proxies_before);
    // This kernel sends no netlink event for proxy entries (pneigh), so a delete and
    // re-add would escape `ip monitor`: the restarted agent's own report says it
    // changed none.
    let rounds: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("L2 answers reconciled"))
        .collect();
    assert!(
        !rounds.is_empty(),
        "the restarted agent reported no L2 round: {log}"
    );
    for l in rounds {
        assert!(
            l.contains("added=[]") && l.contains("deleted=[]"),
            "restart changed proxy entries: {l}"
        );
    }
}

/// Everything a child wrote to the pipe, up to its end.
fn read_all(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut p) = pipe {
        p.read_to_string(&mut text)
            .expect("read the child's output");
    }
    text
}

/// The node agent's flags on the LAN (Node Subnet, L2 answers on eth0), for the
/// daemon and for one `--once` round alike.
fn agent_args(lab: &LabGuard, data: &Path) -> Vec<String> {
    [
        "--mode",
        "nodesubnet",
        "--vnet-cidr",
        "10.224.0.0/12",
        "--config-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        lab.state_dir().join("ip-masq").display().to_string(),
        "--table".into(),
        format!("{}snat", lab.prefix),
        "--data-dir".into(),
        data.display().to_string(),
        "--l2-uplink".into(),
        "eth0".into(),
    ])
    .collect()
}

/// One round of the node's agent, which must succeed.
fn agent_l2_once(lab: &LabGuard, ns: &str, data: &Path) {
    let args = agent_args(lab, data);
    let mut argv = vec![BIN, "agent", "--once"];
    argv.extend(args.iter().map(String::as_str));
    let o = exec_in(ns, &argv);
    assert!(
        o.status.success(),
        "agent: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
