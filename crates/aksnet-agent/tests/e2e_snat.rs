//! End to end, as root: the real `aksnet agent` binary in a node network namespace, real pods,
//! a fabric namespace that routes to a host inside the VNet and one outside it, each host
//! echoing the source address it sees (issue 4 "Tests that must exist").
//!
//! Pods are plain veth pairs on a `cbr0` bridge in the node namespace (the kubenet datapath
//! shape); the agent is datapath-agnostic, it only sees source and destination addresses.
//! TODO(lead): create them through `aksnet-cni` once its kubenet ADD works.
//!
//! Every kernel object lives in namespaces named `aksnt<unique>…`, removed by a Drop guard even
//! when an assertion fails; deleting a namespace removes its links and its nftables table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

const PORT: u16 = 18080;

fn unique() -> String {
    format!(
        "{}{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn run(cmd: &[&str]) -> Output {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (iproute2, nftables and python3 are required)")
        });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &str) {
    let v: Vec<&str> = std::iter::once("ip")
        .chain(args.split_whitespace())
        .collect();
    run(&v);
}

fn aksnet_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/aksnet");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p aksnet`",
        bin.display()
    );
    bin
}

/// All namespaces of one test; Drop kills servers and deletes every namespace.
struct Lab {
    id: String,
    namespaces: Vec<String>,
    servers: Vec<Child>,
    daemons: Vec<Child>,
    config_dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.servers.iter_mut().chain(self.daemons.iter_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Addrs {
    /// The node's address on the fabric (what masqueraded traffic carries).
    node: &'static str,
    bridge_gw: &'static str,
    bridge_prefix: u8,
    pods: [&'static str; 2],
    /// (host address, fabric-side gateway) for the two hosts.
    inside: (&'static str, &'static str),
    outside: (&'static str, &'static str),
    /// The node's pod range, routed to the node by the fabric (Azure route table / SDN).
    pod_route: &'static str,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("aksnt{}{role}", self.id)
    }

    fn add_ns(&mut self, role: &str) -> String {
        let name = self.ns(role);
        ip(&format!("netns add {name}"));
        self.namespaces.push(name.clone());
        ip(&format!("-n {name} link set lo up"));
        name
    }

    fn build(a: &Addrs) -> Lab {
        let mut lab = Lab {
            id: unique(),
            namespaces: Vec::new(),
            servers: Vec::new(),
            daemons: Vec::new(),
            config_dir: tempfile::tempdir().expect("tempdir"),
        };
        let node = lab.add_ns("node");
        let fab = lab.add_ns("fab");
        let inside = lab.add_ns("in");
        let outside = lab.add_ns("out");
        for ns in [&node, &fab] {
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]);
        }
        // Node uplink <-> fabric.
        ip(&format!(
            "-n {node} link add eth0 type veth peer name tonode netns {fab}"
        ));
        ip(&format!("-n {node} addr add {}/24 dev eth0", a.node));
        let fab_node_gw = format!(
            "{}.1",
            a.node.rsplit_once('.').map(|x| x.0).unwrap_or(a.node)
        );
        ip(&format!("-n {fab} addr add {fab_node_gw}/24 dev tonode"));
        ip(&format!("-n {node} link set eth0 up"));
        ip(&format!("-n {fab} link set tonode up"));
        ip(&format!("-n {node} route add default via {fab_node_gw}"));
        ip(&format!(
            "-n {fab} route add {} via {}",
            a.pod_route, a.node
        ));
        // Hosts.
        for (ns, (addr, gw), dev) in [(&inside, a.inside, "toin"), (&outside, a.outside, "toout")] {
            ip(&format!(
                "-n {ns} link add eth0 type veth peer name {dev} netns {fab}"
            ));
            ip(&format!("-n {ns} addr add {addr}/24 dev eth0"));
            ip(&format!("-n {fab} addr add {gw}/24 dev {dev}"));
            ip(&format!("-n {ns} link set eth0 up"));
            ip(&format!("-n {fab} link set {dev} up"));
            ip(&format!("-n {ns} route add default via {gw}"));
        }
        // Pods on cbr0.
        ip(&format!("-n {node} link add cbr0 type bridge"));
        ip(&format!(
            "-n {node} addr add {}/{} dev cbr0",
            a.bridge_gw, a.bridge_prefix
        ));
        ip(&format!("-n {node} link set cbr0 up"));
        for (i, pod_addr) in a.pods.iter().enumerate() {
            let pod = lab.add_ns(&format!("p{i}"));
            ip(&format!(
                "-n {node} link add vethp{i} type veth peer name eth0 netns {pod}"
            ));
            ip(&format!("-n {node} link set vethp{i} master cbr0 up"));
            ip(&format!(
                "-n {pod} addr add {pod_addr}/{} dev eth0",
                a.bridge_prefix
            ));
            ip(&format!("-n {pod} link set eth0 up"));
            ip(&format!("-n {pod} route add default via {}", a.bridge_gw));
        }
        for ns in [inside, outside] {
            lab.start_echo_server(&ns);
        }
        lab
    }

    /// A TCP server that writes back the peer address it sees, then closes.
    fn start_echo_server(&mut self, ns: &str) {
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',{PORT}))\ns.listen(16)\nwhile True:\n c,a=s.accept()\n c.sendall((a[0]+'\\n').encode())\n c.close()\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is required for the echo servers");
        self.servers.push(child);
    }

    /// The source address `host` sees for a new TCP connection from pod `i`.
    fn seen_by(&self, pod: usize, host: &str) -> String {
        let script = format!(
            "import socket\ns=socket.create_connection(('{host}',{PORT}),timeout=2)\nprint(s.makefile().readline().strip())\n"
        );
        let pod_ns = self.ns(&format!("p{pod}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &pod_ns, "python3", "-c", &script])
                .output()
                .expect("python3");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "pod {pod} cannot reach {host}:{PORT}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn agent_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns("node")])
            .arg(aksnet_binary())
            .arg("agent")
            .arg("--config-dir")
            .arg(self.config_dir.path())
            .args(["--table", &self.table()])
            .args(args);
        c
    }

    fn agent(&self, args: &[&str]) -> Output {
        self.agent_cmd(args).output().expect("run aksnet agent")
    }

    fn table(&self) -> String {
        format!("aksnt{}", self.id)
    }

    fn write_config(&self, name: &str, text: &str) {
        let mut f = std::fs::File::create(self.config_dir.path().join(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// `(handle, listing)` of our table in the node namespace, or None.
    fn nft_table(&self) -> Option<(u64, String)> {
        let node = self.ns("node");
        let tables = run(&["ip", "netns", "exec", &node, "nft", "-j", "list", "tables"]);
        let v: serde_json::Value = serde_json::from_slice(&tables.stdout).unwrap();
        let handle = v["nftables"].as_array().unwrap().iter().find_map(|o| {
            let t = o.get("table")?;
            (t["name"] == self.table().as_str() && t["family"] == "inet")
                .then(|| t["handle"].as_u64().unwrap())
        })?;
        let listing = run(&[
            "ip",
            "netns",
            "exec",
            &node,
            "nft",
            "list",
            "table",
            "inet",
            &self.table(),
        ]);
        Some((
            handle,
            String::from_utf8_lossy(&listing.stdout).into_owned(),
        ))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn nodesubnet_inside_sees_pod_outside_sees_node_and_config_flips_it() {
    // VNet 10.224.0.0/12: node 10.224.0.4, pods 10.224.1.0/24, inside host 10.225.0.10.
    // Outside: 198.51.100.10 (TEST-NET-2).
    let lab = Lab::build(&Addrs {
        node: "10.224.0.4",
        bridge_gw: "10.224.1.1",
        bridge_prefix: 24,
        pods: ["10.224.1.2", "10.224.1.3"],
        inside: ("10.225.0.10", "10.225.0.1"),
        outside: ("198.51.100.10", "198.51.100.1"),
        pod_route: "10.224.1.0/24",
    });
    let status_file = lab.config_dir.path().join("status.json");
    let status = status_file.to_str().unwrap().to_string();
    let base = [
        "--once",
        "--mode",
        "nodesubnet",
        "--vnet-cidr",
        "10.224.0.0/12",
        "--pod-cidr",
        "10.224.1.0/24",
        "--status-file",
        &status,
    ];

    // Before the agent: no SNAT at all.
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.1.2");

    let o = lab.agent(&base);
    assert!(o.status.success(), "first --once: {}", stderr(&o));
    assert_eq!(
        lab.seen_by(0, "10.225.0.10"),
        "10.224.1.2",
        "inside the VNet keeps the pod IP"
    );
    assert_eq!(lab.seen_by(1, "10.225.0.10"), "10.224.1.3");
    assert_eq!(
        lab.seen_by(0, "198.51.100.10"),
        "10.224.0.4",
        "outside sees the node IP"
    );
    assert_eq!(lab.seen_by(1, "198.51.100.10"), "10.224.0.4");
    let (h1, listing1) = lab.nft_table().expect("table after first reconcile");
    assert!(listing1.contains("fib daddr type != local"), "{listing1}");

    // Reconciling twice changes nothing: no rewrite (same table handle), logged "unchanged".
    let o = lab.agent(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("unchanged"), "{}", stderr(&o));
    let (h2, listing2) = lab.nft_table().unwrap();
    assert_eq!(h1, h2, "second reconcile recreated the table");
    // Counters move with traffic; everything else is identical.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("counter"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&listing1), strip(&listing2));

    // Adding the outside range to nonMasqueradeCIDRs flips it to the pod address (AKS#1207).
    lab.write_config(
        "ip-masq-agent",
        "nonMasqueradeCIDRs:\n  - 198.51.100.0/24\nmasqLinkLocal: true\n",
    );
    let o = lab.agent(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.1.2");
    assert_eq!(lab.seen_by(0, "10.225.0.10"), "10.224.1.2");
    let (h3, _) = lab.nft_table().unwrap();
    assert_ne!(h3, h2, "a changed config must be applied");

    // A broken file: non-zero exit naming file, key and value; previous behaviour stays.
    lab.write_config(
        "ip-masq-agent",
        "nonMasqueradeCIDRs:\n  - 198.51.100.0/24\n  - 203.0.113.7/24\n",
    );
    let o = lab.agent(&base);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let file = lab.config_dir.path().join("ip-masq-agent");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(
        err.contains("nonMasqueradeCIDRs[1]") && err.contains("203.0.113.7/24"),
        "{err}"
    );
    assert_eq!(
        lab.nft_table().unwrap().0,
        h3,
        "bad config must not touch the table"
    );
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.1.2");
    assert_eq!(lab.seen_by(1, "198.51.100.10"), "10.224.1.3");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(st["ok"], false);
    assert!(
        st["error"].as_str().unwrap().contains("203.0.113.7/24"),
        "{st}"
    );

    // Removing the range again (a good file) masquerades again.
    lab.write_config("ip-masq-agent", "nonMasqueradeCIDRs: []\n");
    let o = lab.agent(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.0.4");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(st["ok"], true);
    assert_eq!(st["outcome"], "applied");

    // --uninstall leaves no table; traffic is no longer masqueraded.
    let o = lab.agent(&["--uninstall"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lab.nft_table().is_none(), "table left behind");
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.1.2");
    let o = lab.agent(&["--uninstall"]);
    assert!(o.status.success(), "second --uninstall: {}", stderr(&o));
}

#[test]
fn kubenet_defaults_keep_pod_ip_only_for_the_cluster_pod_cidr() {
    // kubenet: node 10.224.0.4 in the VNet, node pod CIDR 10.244.1.0/24 of cluster 10.244.0.0/16.
    // "inside" here is another node's pod (10.244.2.10): not NATed. "outside" is a VNet VM
    // (10.225.0.10): kubenet NATs pod traffic to VNet addresses (research/azure-cni.md §3.3).
    let lab = Lab::build(&Addrs {
        node: "10.224.0.4",
        bridge_gw: "10.244.1.1",
        bridge_prefix: 24,
        pods: ["10.244.1.2", "10.244.1.3"],
        inside: ("10.244.2.10", "10.244.2.1"),
        outside: ("10.225.0.10", "10.225.0.1"),
        pod_route: "10.244.1.0/24",
    });
    let o = lab.agent(&[
        "--once",
        "--mode",
        "kubenet",
        "--cluster-pod-cidr",
        "10.244.0.0/16",
        "--random-fully",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lab.seen_by(0, "10.244.2.10"), "10.244.1.2");
    assert_eq!(lab.seen_by(1, "10.244.2.10"), "10.244.1.3");
    assert_eq!(lab.seen_by(0, "10.225.0.10"), "10.224.0.4");
    let (_, listing) = lab.nft_table().unwrap();
    assert!(listing.contains("masquerade fully-random"), "{listing}");
    // The pod reaching its own node's address is local: never masqueraded.
    let o = lab.agent(&["--uninstall"]);
    assert!(o.status.success());
    assert!(lab.nft_table().is_none());
}

#[test]
fn daemon_applies_config_changes_and_survives_bad_config() {
    let mut lab = Lab {
        id: unique(),
        namespaces: Vec::new(),
        servers: Vec::new(),
        daemons: Vec::new(),
        config_dir: tempfile::tempdir().unwrap(),
    };
    lab.add_ns("node");
    let status_file = lab.config_dir.path().join("status.json");
    let child = lab
        .agent_cmd(&[
            "--mode",
            "kubenet",
            "--cluster-pod-cidr",
            "10.244.0.0/16",
            "--status-file",
            status_file.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.daemons.push(child);
    fn wait_for(lab: &Lab, what: &str, pred: &dyn Fn(&Lab) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !pred(lab) {
            assert!(
                Instant::now() < deadline,
                "daemon: timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    wait_for(&lab, "the table", &|l| l.nft_table().is_some());
    let status = |_: &Lab| -> serde_json::Value {
        std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    };
    // A config change is picked up well before the 60 s resync.
    lab.write_config("ip-masq-agent", "nonMasqueradeCIDRs: [198.51.100.0/24]\n");
    wait_for(&lab, "the new range", &|l| {
        l.nft_table()
            .is_some_and(|(_, t)| t.contains("198.51.100.0/24"))
    });
    let (h, _) = lab.nft_table().unwrap();
    // A bad config: reported, rules kept, daemon alive.
    lab.write_config(
        "ip-masq-agent",
        "nonMasqueradeCIDRs: [198.51.100.0/24]\nbogusKey: 1\n",
    );
    wait_for(&lab, "the error status", &|l| status(l)["ok"] == false);
    assert!(status(&lab)["error"].as_str().unwrap().contains("bogusKey"));
    assert_eq!(lab.nft_table().unwrap().0, h);
    assert!(
        lab.daemons[0].try_wait().unwrap().is_none(),
        "daemon exited on a bad config"
    );
    // The next good config is applied.
    lab.write_config("ip-masq-agent", "nonMasqueradeCIDRs: [203.0.113.0/24]\n");
    wait_for(&lab, "the fixed config", &|l| {
        l.nft_table()
            .is_some_and(|(_, t)| t.contains("203.0.113.0/24"))
    });
    assert_eq!(status(&lab)["ok"], true);
}
