//! End to end, as root: the real `aksnet agent` binary in a node network namespace, real pods,
//! a fabric namespace that routes to a host inside the VNet and one outside it, each host
//! echoing the source address it sees (issue 4 "Tests that must exist").
//!
//! Pods are made exactly as a runtime makes them: the real `aksnet-cni` binary runs in the node
//! namespace (the runtime's namespace) with `CNI_*` variables, kubelet-style `CNI_ARGS` and the
//! request configuration on stdin (SPEC.md section 3): kubenet mode on `cbr0` for the kubenet
//! test, nodesubnet, overlay and podsubnet modes on a pool written by `aksnet node join` for
//! the Node Subnet, Overlay and Pod Subnet tests.
//!
//! Every kernel object lives in namespaces named `aksnt<unique>…` (`aksov<unique>…` for the
//! Overlay and Pod Subnet tests), removed by a Drop guard even
//! when an assertion fails; deleting a namespace removes its links and its nftables table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aksnet_testkit::cmd::{ok, require_root, tag};
use aksnet_testkit::cni::CniCall;
use aksnet_testkit::netns::Netns;
use aksnet_testkit::process::ChildGuard;

const PORT: u16 = 18080;

/// `ip <args>` (split on whitespace), which must succeed.
fn ip(args: &str) {
    let v: Vec<&str> = std::iter::once("ip")
        .chain(args.split_whitespace())
        .collect();
    ok(&v);
}

fn aksnet_binary() -> PathBuf {
    built_binary("aksnet")
}

/// The CNI plugin; this crate does not depend on it, so it must be built first.
fn cni_binary() -> PathBuf {
    built_binary("aksnet-cni")
}

fn built_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p {name}`",
        bin.display()
    );
    bin
}

/// All namespaces of one test. Drop sends CNI DEL for every attachment; then the fields drop
/// in order: servers and daemons are killed, and every namespace is deleted.
struct Lab {
    id: String,
    servers: Vec<ChildGuard>,
    daemons: Vec<ChildGuard>,
    namespaces: Vec<Netns>,
    config_dir: tempfile::TempDir,
    /// The plugin's `dataDir` (IPAM state, node pool) and the cluster store.
    data_dir: tempfile::TempDir,
    /// (container ID, pod index) of every attachment ADDed, for the DEL on Drop.
    attachments: Vec<(String, usize)>,
    /// The request configuration sent to `aksnet-cni` on stdin.
    cni_config: String,
    /// Prefix of every namespace and table name.
    prefix: &'static str,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // As the runtime would on pod deletion; best effort (deleting the node namespace
        // afterwards removes the links anyway, and the state is in a temp dir).
        for (container_id, pod) in std::mem::take(&mut self.attachments) {
            if let Err(e) = self.try_cni("DEL", &container_id, pod) {
                eprintln!("cleanup: CNI DEL {container_id}: {e}");
            }
        }
    }
}

/// How pods are attached: the two `aksnet-cni` modes.
enum Datapath {
    /// kubenet: `cbr0` holding the `.1` of the node's pod CIDR (docs/azure.md#kubenet).
    Kubenet { pod_cidr: &'static str },
    /// Azure CNI Node Subnet: the node joins `subnet` (`aksnet node join`, docs/node.md) and
    /// pods take addresses from its reservation (docs/architecture.md#datapath-contracts).
    NodeSubnet { subnet: &'static str },
    /// A routed model whose node joins `subnet` with `join` added to `aksnet node join`
    /// (overlay: `--overlay --pod-cidr-from`; podsubnet: `--pod-subnet`), plugin `mode`.
    Joined {
        mode: &'static str,
        subnet: &'static str,
        join: &'static [&'static str],
    },
}

struct Addrs {
    /// Prefix of the lab's namespaces and table.
    prefix: &'static str,
    /// The node's address on the fabric (what masqueraded traffic carries).
    node: &'static str,
    datapath: Datapath,
    /// The addresses the plugin hands out to the two pods, in ADD order (asserted).
    pods: [&'static str; 2],
    /// (host address, fabric-side gateway) for the two hosts.
    inside: (&'static str, &'static str),
    outside: (&'static str, &'static str),
    /// What the fabric routes to the node for its pods: kubenet's pod CIDR (Azure route
    /// table), or each Node Subnet pod address (the SDN delivers a NIC's secondary IPs).
    pod_routes: &'static [&'static str],
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}{}{role}", self.prefix, self.id)
    }

    fn add_ns(&mut self, role: &str) -> String {
        let ns = Netns::create(&self.ns(role));
        ns.ip(&["link", "set", "lo", "up"]);
        let name = ns.name().to_string();
        self.namespaces.push(ns);
        name
    }

    /// An empty lab: no namespace yet, fresh config and data directories.
    fn new(prefix: &'static str) -> Lab {
        require_root();
        Lab {
            id: tag(""),
            servers: Vec::new(),
            daemons: Vec::new(),
            namespaces: Vec::new(),
            config_dir: tempfile::tempdir().expect("tempdir"),
            data_dir: tempfile::tempdir().expect("tempdir"),
            attachments: Vec::new(),
            cni_config: String::new(),
            prefix,
        }
    }

    fn build(a: &Addrs) -> Lab {
        let mut lab = Lab::new(a.prefix);
        let node = lab.add_ns("node");
        let fab = lab.add_ns("fab");
        let inside = lab.add_ns("in");
        let outside = lab.add_ns("out");
        for ns in [&node, &fab] {
            ok(&[
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
        for route in a.pod_routes {
            ip(&format!("-n {fab} route add {route} via {}", a.node));
        }
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
        // Pods, through the plugin.
        lab.cni_config = lab.network_config(&a.datapath);
        for (i, pod_addr) in a.pods.iter().enumerate() {
            lab.add_ns(&format!("p{i}"));
            let container_id = format!("{}pod{i}", lab.table());
            lab.attachments.push((container_id.clone(), i));
            let result = lab.cni("ADD", &container_id, i);
            let got = result["ips"][0]["address"].as_str().unwrap_or_default();
            assert_eq!(
                got.split('/').next(),
                Some(*pod_addr),
                "aksnet-cni ADD of pod {i} returned {result}"
            );
        }
        for ns in [inside, outside] {
            lab.start_echo_server(&ns);
        }
        lab
    }

    /// The request configuration a runtime derives from the network's conflist (the plugin
    /// object plus the list's `cniVersion` and `name`); for nodesubnet, joins the node first.
    fn network_config(&self, datapath: &Datapath) -> String {
        let data = self.data_dir.path().to_str().unwrap();
        let name = self.table();
        match datapath {
            Datapath::Kubenet { pod_cidr } => serde_json::json!({
                "cniVersion": "1.0.0", "name": name, "type": "aksnet-cni",
                "mode": "kubenet", "bridge": "cbr0", "isGateway": true, "ipMasq": false,
                "dataDir": data, "logFile": format!("{data}/aksnet-cni.log"),
                "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]]}
            }),
            Datapath::NodeSubnet { subnet } => self.joined("nodesubnet", subnet, &[]),
            Datapath::Joined { mode, subnet, join } => self.joined(mode, subnet, join),
        }
        .to_string()
    }

    /// Joins the node to `subnet` (plus `join`) and returns the plugin object of `mode`.
    fn joined(&self, mode: &str, subnet: &str, join: &[&str]) -> serde_json::Value {
        let data = self.data_dir.path().to_str().unwrap();
        let store = self.data_dir.path().join("cluster");
        let o = Command::new(aksnet_binary())
            .args(["node", "join", "--node", &self.ns("node")])
            .args(["--subnet", subnet, "--subnet-name", "aks-subnet"])
            .args(["--max-pods", "30", "--store"])
            .arg(&store)
            .args(["--data-dir", data])
            .args(join)
            .output()
            .expect("run aksnet node join");
        assert!(o.status.success(), "aksnet node join: {}", stderr(&o));
        serde_json::json!({
            "cniVersion": "1.0.0", "name": self.table(), "type": "aksnet-cni",
            "mode": mode, "dataDir": data,
            "logFile": format!("{data}/aksnet-cni.log")
        })
    }

    /// Runs `aksnet-cni` as a runtime does: in the runtime's (node's) namespace, the pod's
    /// netns path, ifname eth0, kubelet's CNI_ARGS, the config on stdin.
    fn try_cni(
        &self,
        command: &str,
        container_id: &str,
        pod: usize,
    ) -> Result<serde_json::Value, String> {
        let bin = cni_binary();
        let node = self.ns("node");
        let netns = format!("/run/netns/{}", self.ns(&format!("p{pod}")));
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod{pod};\
             K8S_POD_INFRA_CONTAINER_ID={container_id}"
        );
        let o = CniCall::new(&bin)
            .in_netns(Some(&node))
            .verb(command, container_id, &netns, &args)
            .run(&self.cni_config);
        if !o.ok {
            return Err(format!("{command} failed: {} {}", o.stdout, o.stderr));
        }
        if o.stdout.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&o.stdout).map_err(|e| format!("{command} result: {e}"))
    }

    fn cni(&self, command: &str, container_id: &str, pod: usize) -> serde_json::Value {
        self.try_cni(command, container_id, pod)
            .unwrap_or_else(|e| panic!("aksnet-cni {command} for pod {pod}: {e}"))
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
        self.servers.push(ChildGuard::new("echo server", child));
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
        format!("{}{}", self.prefix, self.id)
    }

    fn write_config(&self, name: &str, text: &str) {
        let mut f = std::fs::File::create(self.config_dir.path().join(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// `(handle, listing)` of our table in the node namespace, or None.
    fn nft_table(&self) -> Option<(u64, String)> {
        let node = self.ns("node");
        let tables = ok(&["ip", "netns", "exec", &node, "nft", "-j", "list", "tables"]);
        let v: serde_json::Value = serde_json::from_str(&tables).unwrap();
        let handle = v["nftables"].as_array().unwrap().iter().find_map(|o| {
            let t = o.get("table")?;
            (t["name"] == self.table().as_str() && t["family"] == "inet")
                .then(|| t["handle"].as_u64().unwrap())
        })?;
        let listing = ok(&[
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
        Some((handle, listing))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn nodesubnet_inside_sees_pod_outside_sees_node_and_config_flips_it() {
    // VNet 10.224.0.0/12, node subnet 10.224.0.0/24: `aksnet node join` gives the node
    // 10.224.0.4 (the first address Azure does not keep) and pods 10.224.0.5 onwards.
    // Inside host 10.225.0.10; outside: 198.51.100.10 (TEST-NET-2).
    let lab = Lab::build(&Addrs {
        prefix: "aksnt",
        node: "10.224.0.4",
        datapath: Datapath::NodeSubnet {
            subnet: "10.224.0.0/24",
        },
        pods: ["10.224.0.5", "10.224.0.6"],
        inside: ("10.225.0.10", "10.225.0.1"),
        outside: ("198.51.100.10", "198.51.100.1"),
        pod_routes: &["10.224.0.5/32", "10.224.0.6/32"],
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
        "10.224.0.0/24",
        "--status-file",
        &status,
    ];

    // Before the agent: no SNAT at all.
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.0.5");

    let o = lab.agent(&base);
    assert!(o.status.success(), "first --once: {}", stderr(&o));
    assert_eq!(
        lab.seen_by(0, "10.225.0.10"),
        "10.224.0.5",
        "inside the VNet keeps the pod IP"
    );
    assert_eq!(lab.seen_by(1, "10.225.0.10"), "10.224.0.6");
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
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.0.5");
    assert_eq!(lab.seen_by(0, "10.225.0.10"), "10.224.0.5");
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
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.0.5");
    assert_eq!(lab.seen_by(1, "198.51.100.10"), "10.224.0.6");
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
    assert_eq!(lab.seen_by(0, "198.51.100.10"), "10.224.0.5");
    let o = lab.agent(&["--uninstall"]);
    assert!(o.status.success(), "second --uninstall: {}", stderr(&o));
}

#[test]
fn kubenet_defaults_keep_pod_ip_only_for_the_cluster_pod_cidr() {
    // kubenet: node 10.224.0.4 in the VNet, node pod CIDR 10.244.1.0/24 of cluster 10.244.0.0/16.
    // "inside" here is another node's pod (10.244.2.10): not NATed. "outside" is a VNet VM
    // (10.225.0.10): kubenet NATs pod traffic to VNet addresses (docs/azure.md#kubenet-snat).
    let lab = Lab::build(&Addrs {
        prefix: "aksnt",
        node: "10.224.0.4",
        datapath: Datapath::Kubenet {
            pod_cidr: "10.244.1.0/24",
        },
        pods: ["10.244.1.2", "10.244.1.3"],
        inside: ("10.244.2.10", "10.244.2.1"),
        outside: ("10.225.0.10", "10.225.0.1"),
        pod_routes: &["10.244.1.0/24"],
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
    let mut lab = Lab::new("aksnt");
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
    lab.daemons.push(ChildGuard::new("aksnet agent", child));
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
    assert!(lab.daemons[0].running(), "daemon exited on a bad config");
    // The next good config is applied.
    lab.write_config("ip-masq-agent", "nonMasqueradeCIDRs: [203.0.113.0/24]\n");
    wait_for(&lab, "the fixed config", &|l| {
        l.nft_table()
            .is_some_and(|(_, t)| t.contains("203.0.113.0/24"))
    });
    assert_eq!(status(&lab)["ok"], true);
}

/// Azure CNI Overlay: every destination outside the pod CIDR, inside the VNet or not, sees
/// the node IP (traffic leaving the pod CIDR is SNATed to the node IP, Overlay article);
/// the fabric routes the node's /24 to it as Azure routes the overlay CIDR.
#[test]
fn overlay_every_destination_outside_the_pod_cidr_sees_the_node() {
    let lab = Lab::build(&Addrs {
        prefix: "aksov",
        node: "10.224.0.4",
        datapath: Datapath::Joined {
            mode: "overlay",
            subnet: "10.224.0.0/24",
            join: &["--overlay", "--pod-cidr-from", "192.168.0.0/16"],
        },
        pods: ["192.168.0.1", "192.168.0.2"],
        inside: ("10.225.0.10", "10.225.0.1"),
        outside: ("198.51.100.10", "198.51.100.1"),
        pod_routes: &["192.168.0.0/24"],
    });
    // Without the agent the pod address leaves as is.
    assert_eq!(lab.seen_by(0, "10.225.0.10"), "192.168.0.1");
    let o = lab.agent(&[
        "--once",
        "--mode",
        "overlay",
        "--cluster-pod-cidr",
        "192.168.0.0/16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for pod in 0..2 {
        assert_eq!(lab.seen_by(pod, "10.225.0.10"), "10.224.0.4", "VNet host");
        assert_eq!(lab.seen_by(pod, "198.51.100.10"), "10.224.0.4", "internet");
    }
    // The mode's flag is required.
    let o = lab.agent(&["--once", "--mode", "overlay"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--cluster-pod-cidr"), "{}", stderr(&o));
}

/// Azure CNI Pod Subnet: the pod IP is the source everywhere except toward Azure DNS
/// (168.63.129.16) and IMDS, which see the node IP (docs/azure.md#snat-defaults-per-mode).
#[test]
fn podsubnet_only_azure_dns_sees_the_node() {
    // Pod subnet 10.226.0.0/24, static: block 10.226.0.16/28, whose first address is the
    // node's own; pods .17 and .18. The "outside" host plays Azure DNS.
    let lab = Lab::build(&Addrs {
        prefix: "aksov",
        node: "10.224.0.4",
        datapath: Datapath::Joined {
            mode: "podsubnet",
            subnet: "10.224.0.0/24",
            join: &[
                "--pod-subnet",
                "10.226.0.0/24",
                "--pod-subnet-name",
                "aksov-pods",
                "--pod-allocation",
                "static",
            ],
        },
        pods: ["10.226.0.17", "10.226.0.18"],
        inside: ("198.51.100.10", "198.51.100.1"),
        outside: ("168.63.129.16", "168.63.129.1"),
        pod_routes: &["10.226.0.16/28"],
    });
    let o = lab.agent(&[
        "--once",
        "--mode",
        "podsubnet",
        "--pod-cidr",
        "10.226.0.0/24",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lab.seen_by(0, "198.51.100.10"),
        "10.226.0.17",
        "internet: pod IP"
    );
    assert_eq!(lab.seen_by(1, "198.51.100.10"), "10.226.0.18");
    assert_eq!(
        lab.seen_by(0, "168.63.129.16"),
        "10.224.0.4",
        "Azure DNS: node IP"
    );
    let o = lab.agent(&["--once", "--mode", "podsubnet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pod-cidr"), "{}", stderr(&o));
}
