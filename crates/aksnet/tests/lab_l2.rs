//! `aksnet lab up --fabric l2` end to end (issue 13): hosts joined only by a
//! bridge, no SDN. Through the real binaries; must run as root. Each test uses
//! its own `aksntl2…-` prefix and a guard runs `lab down` on drop.
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

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

mod lab_support;
use lab_support::{assert_matrix, KUBENET_EXPECTED, NODESUBNET_EXPECTED, OVERLAY_EXPECTED};

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

fn bin_dir() -> PathBuf {
    Path::new(BIN).parent().expect("bin dir").to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e} (is it installed?)"))
}

fn aksnet(args: &[&str]) -> Output {
    run(Command::new(BIN)
        .args(args)
        .env("AKSNET_BIN_DIR", bin_dir()))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ip_in(ns: &str, args: &[&str]) -> String {
    let o = run(Command::new("ip").arg("-n").arg(ns).args(args));
    assert!(o.status.success(), "ip -n {ns} {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn exec_in(ns: &str, args: &[&str]) -> Output {
    run(Command::new("ip").args(["netns", "exec", ns]).args(args))
}

fn ping(ns: &str, ip: &str) -> bool {
    exec_in(ns, &["ping", "-c", "1", "-W", "1", ip])
        .status
        .success()
}

struct LabGuard {
    prefix: String,
    /// Namespaces the test adds (a new node and its pods): `lab down` removes
    /// only what its journal names, so the guard removes these.
    extra: std::cell::RefCell<Vec<String>>,
}

impl LabGuard {
    fn new(prefix: &str) -> Self {
        let uid = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        assert!(
            uid.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
            "the lab tests create network namespaces: run them as root"
        );
        assert!(
            bin_dir().join("aksnet-cni").is_file(),
            "aksnet-cni is missing next to aksnet: cargo build --workspace --bins"
        );
        let _ = aksnet(&["lab", "down", "--prefix", prefix]);
        Self {
            prefix: prefix.to_string(),
            extra: std::cell::RefCell::new(Vec::new()),
        }
    }
    fn add_netns(&self, name: &str) {
        let o = run(Command::new("ip").args(["netns", "add", name]));
        assert!(o.status.success(), "{}", text(&o));
        self.extra.borrow_mut().push(name.to_string());
    }
    fn state(&self) -> PathBuf {
        PathBuf::from(format!("/run/{}lab", self.prefix))
    }
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        for ns in self.extra.borrow().iter().rev() {
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
        }
        let _ = aksnet(&["lab", "down", "--prefix", &self.prefix]);
    }
}

fn up_and_check(lab: &LabGuard, model: &str, expected: &[(&str, &str)]) -> Value {
    let o = aksnet(&[
        "lab",
        "up",
        "--prefix",
        &lab.prefix,
        "--fabric",
        "l2",
        "--model",
        model,
        "--nodes",
        "3",
        "--pods-per-node",
        "10",
    ]);
    assert!(o.status.success(), "up: {}", text(&o));
    let o = aksnet(&["lab", "check", "--prefix", &lab.prefix, "--format", "json"]);
    let report: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(o.status.success(), "check: {report:#}");
    assert_matrix(&report, expected);
    // The switch routes nothing: no IPv4 route at all in the fabric namespace.
    let routes = ip_in(&lab.ns("vnet"), &["-4", "route", "show", "table", "all"]);
    let own: Vec<&str> = routes.lines().filter(|l| !l.contains(" dev lo ")).collect();
    assert!(own.is_empty(), "the fabric holds routes: {own:?}");
    report
}

/// Every pod of the lab, with its netns, from `lab check`'s journal view.
fn pods(lab: &LabGuard) -> Vec<(String, String)> {
    let journal = std::fs::read_to_string(lab.state().join("journal.jsonl")).expect("journal");
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
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
    for i in 0..3 {
        let routes = ip_in(
            &lab.ns(&format!("node-{i}")),
            &["route", "show", "proto", "213"],
        );
        assert_eq!(routes.lines().count(), 2, "node-{i}: {routes}");
    }
}

#[test]
fn kubenet_on_a_plain_lan_three_nodes_ten_pods() {
    let lab = LabGuard::new("aksntl2k-");
    up_and_check(
        &lab,
        "kubenet",
        &l2_expected(&KUBENET_EXPECTED, "unreachable"),
    );
    let all = pods(&lab);
    assert_eq!(all.len(), 30);
    // Each node routes the two other nodes' pod CIDRs, with aksnet's protocol.
    for i in 0..3 {
        let routes = ip_in(
            &lab.ns(&format!("node-{i}")),
            &["route", "show", "proto", "213"],
        );
        assert_eq!(routes.lines().count(), 2, "node-{i}: {routes}");
    }
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
    let lab = LabGuard::new("aksntl2n-");
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
    let state = lab.state();
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
    assert!(o.status.success(), "leave: {}", text(&o));
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
    assert!(o.status.success(), "leave --force: {}", text(&o));
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

fn cni(command: &str, node_ns: &str, data_dir: &Path, pod: &str) -> Output {
    use std::io::Write;
    let cni = bin_dir().join("aksnet-cni");
    let mut child = Command::new("ip")
        .args(["netns", "exec", node_ns])
        .arg(&cni)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_PATH", bin_dir())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", pod)
        .env("CNI_NETNS", format!("/run/netns/{pod}"))
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aksnet-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cni_config(data_dir).as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn cni_del(lab: &LabGuard, node: &str, pod: &str) {
    let ns = lab.ns(node);
    let data = lab.state().join("nodes").join(&ns);
    let o = cni("DEL", &ns, &data, pod);
    assert!(o.status.success(), "DEL {pod}: {}", text(&o));
}

/// A pod of a node the test added: its netns is removed by the guard.
fn cni_add(lab: &LabGuard, node_ns: &str, data: &Path, pod: &str) -> String {
    lab.add_netns(pod);
    let o = cni("ADD", node_ns, data, pod);
    assert!(o.status.success(), "ADD {pod}: {}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
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
    let state = lab.state();
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
    assert!(o.status.success(), "join: {}", text(&o));
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
    assert!(o.status.success());
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
    let data = lab.state().join("nodes").join(ns);
    let args = agent_args(lab, &data);
    let start = |log: Stdio| {
        Command::new("ip")
            .args(["netns", "exec", ns, BIN, "agent"])
            .args(&args)
            .args(["--metrics-addr", "off"])
            .env("RUST_LOG", "info")
            .stderr(log)
            .spawn()
            .expect("start the agent")
    };
    let nft =
        || String::from_utf8_lossy(&exec_in(ns, &["nft", "list", "ruleset"]).stdout).into_owned();
    let mut agent = start(Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    let (nft_before, proxies_before) = (nft(), ip_in(ns, &["neigh", "show", "proxy"]));
    let mut mon = Command::new("ip")
        .args(["-n", ns, "-o", "monitor", "route", "neigh", "rule"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));
    let _ = agent.kill();
    let _ = agent.wait();
    let again = start(Stdio::piped());
    std::thread::sleep(Duration::from_millis(2500));
    // Stop it (SIGTERM), then read what it logged.
    let pid = again.id();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let log = again.wait_with_output().expect("agent output");
    let log = String::from_utf8_lossy(&log.stderr);
    let _ = mon.kill();
    let out = mon.wait_with_output().expect("ip monitor output");
    let events = String::from_utf8_lossy(&out.stdout);
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
        lab.state().join("ip-masq").display().to_string(),
        "--table".into(),
        format!("{}snat", lab.prefix),
        "--data-dir".into(),
        data.display().to_string(),
        "--l2-uplink".into(),
        "eth0".into(),
    ])
    .collect()
}

fn agent_l2_once(lab: &LabGuard, ns: &str, data: &Path) {
    let o = exec_in(
        ns,
        &[
            BIN,
            "agent",
            "--once",
            "--mode",
            "nodesubnet",
            "--vnet-cidr",
            "10.224.0.0/12",
            "--config-dir",
            &lab.state().join("ip-masq").display().to_string(),
            "--table",
            &format!("{}snat", lab.prefix),
            "--data-dir",
            &data.display().to_string(),
            "--l2-uplink",
            "eth0",
        ],
    );
    assert!(o.status.success(), "agent: {}", text(&o));
}
