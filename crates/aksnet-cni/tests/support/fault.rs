//! Shared plumbing of the fault-injection tests (issue 7): a "node" network
//! namespace per test that the plugin runs in (so its host veths, bridge and
//! /32 routes never touch the root netns), pod namespaces, and a way to run
//! the real `aksnet-cni` binary there as a runtime does (CNI_* environment,
//! config on stdin; SPEC.md section 2).
//!
//! Every kernel object is named `aksnt<tag>…` and removed by a Drop guard,
//! so a failing test cleans up too (working rules, "Clean up").

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aksnet_core::podsubnet::{blocks_for, pod_addresses, Allocation, BATCH};
use aksnet_core::pool::{
    NodePool, OverlayPool, PodSubnetPool, NODE_POOL_FILE, NODE_POOL_VERSION,
    NODE_POOL_VERSION_OVERLAY, NODE_POOL_VERSION_POD_SUBNET,
};
use aksnet_netlink::{named_netns_path, Handle, Netns};
use ipnet::{IpNet, Ipv4Net};
use serde_json::{json, Value};

/// The plugin binary cargo built for these tests, or `AKSNET_CNI_BIN` (used to
/// record the contention timings of the release binary in docs/benchmarks.md).
pub fn plugin_bin() -> String {
    std::env::var("AKSNET_CNI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aksnet-cni").to_string())
}

/// Names of links that belong to the test scaffolding (not to any pod).
pub const UPLINK: &str = "aksntup0";
pub const UPLINK_PEER: &str = "aksntup1";

/// A named network namespace, deleted on drop (by its testkit guard).
pub struct NamedNs {
    pub name: String,
    pub netns: Netns,
    // Declared last: deleted after `netns` is closed.
    _guard: aksnet_testkit::Netns,
}

impl NamedNs {
    pub fn create(name: &str) -> Self {
        let guard = aksnet_testkit::Netns::create(name);
        let netns =
            Netns::open(guard.path()).unwrap_or_else(|e| panic!("opening netns {name}: {e}"));
        NamedNs {
            name: name.to_string(),
            netns,
            _guard: guard,
        }
    }

    pub fn path(&self) -> PathBuf {
        named_netns_path(&self.name)
    }

    /// Link names in this namespace.
    pub fn links(&self) -> Vec<String> {
        let mut h = Handle::in_netns(&self.netns).expect("netlink socket in netns");
        h.list_links()
            .expect("list links")
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    /// Starts the plugin inside this netns: the child is forked from a thread
    /// that entered it, so it runs there as it would on a real node.
    pub fn spawn(&self, call: &Call) -> Child {
        let mut cmd = Command::new(plugin_bin());
        cmd.env_clear()
            .envs(call.env.iter())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .netns
            .run(|| cmd.spawn())
            .expect("enter netns")
            .expect("spawn aksnet-cni");
        if let Some(mut stdin) = child.stdin.take() {
            // A child killed before it read stdin makes this fail with EPIPE; fine.
            let _ = stdin.write_all(&call.stdin);
        }
        child
    }

    /// Runs the plugin to completion inside this netns.
    pub fn run(&self, call: &Call) -> Outcome {
        let start = Instant::now();
        let out = self
            .spawn(call)
            .wait_with_output()
            .expect("wait for aksnet-cni");
        Outcome::from_output(out, start.elapsed())
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running ip {args:?} (iproute2 is required): {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node: a netns with a veth uplink that carries the default route (so
/// nodesubnet's MTU lookup, which follows the default route, finds a device).
pub struct Node {
    pub ns: NamedNs,
    /// kubenet's bridge name in this node (never a pod link).
    pub bridge: String,
}

impl Node {
    pub fn create(tag: &str) -> Self {
        let ns = NamedNs::create(&format!("aksnt{tag}node"));
        let n = ns.name.clone();
        ip(&["-n", &n, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &n,
            "link",
            "add",
            UPLINK,
            "mtu",
            "1500",
            "type",
            "veth",
            "peer",
            "name",
            UPLINK_PEER,
        ]);
        ip(&["-n", &n, "link", "set", UPLINK, "up"]);
        ip(&["-n", &n, "link", "set", UPLINK_PEER, "up"]);
        ip(&["-n", &n, "addr", "add", "192.168.254.2/24", "dev", UPLINK]);
        ip(&[
            "-n",
            &n,
            "route",
            "add",
            "default",
            "via",
            "192.168.254.1",
            "dev",
            UPLINK,
        ]);
        Node {
            ns,
            bridge: format!("aksnt{tag}br"),
        }
    }

    /// Links a pod left behind: everything but lo, the uplink pair and the bridge.
    pub fn pod_links(&self) -> Vec<String> {
        self.ns
            .links()
            .into_iter()
            .filter(|l| l != "lo" && l != UPLINK && l != UPLINK_PEER && *l != self.bridge)
            .collect()
    }

    /// The pod links left once DEL's detached veth deletions (asyncDelete, the
    /// default) had up to `secs` seconds to finish: empty when none is left.
    /// Bounded, so a leak still fails; generous, because a loaded machine
    /// delays the helpers (250 of them after a contention burst).
    pub fn pod_links_after_async_delete(&self, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = self.pod_links();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pod links of the node that are administratively up (still carrying traffic).
    pub fn pod_links_up(&self) -> Vec<String> {
        let mut h = Handle::in_netns(&self.ns.netns).expect("netlink socket in node netns");
        let pods = self.pod_links();
        h.list_links()
            .expect("list links")
            .into_iter()
            .filter(|l| l.up && pods.contains(&l.name))
            .map(|l| l.name)
            .collect()
    }

    /// Host routes (/32) into `subnet` in the node's main table (nodesubnet adds one per pod).
    pub fn host_routes_in(&self, subnet: Ipv4Net) -> Vec<String> {
        let mut h = Handle::in_netns(&self.ns.netns).expect("netlink socket in node netns");
        h.list_routes()
            .expect("list routes")
            .into_iter()
            .filter(|r| match r.dst {
                IpNet::V4(d) => d.prefix_len() == 32 && subnet.contains(&d.addr()),
                IpNet::V6(_) => false,
            })
            .map(|r| r.describe())
            .collect()
    }

    /// Starts the plugin inside the node netns (see [`NamedNs::spawn`]).
    pub fn spawn(&self, call: &Call) -> Child {
        self.ns.spawn(call)
    }

    /// Runs the plugin to completion inside the node netns.
    pub fn run(&self, call: &Call) -> Outcome {
        self.ns.run(call)
    }
}

/// One plugin invocation: environment and stdin.
#[derive(Debug, Clone)]
pub struct Call {
    pub env: BTreeMap<String, String>,
    pub stdin: Vec<u8>,
}

impl Call {
    pub fn new(command: &str, conf: &Value) -> Self {
        let mut env = BTreeMap::new();
        env.insert("CNI_COMMAND".to_string(), command.to_string());
        env.insert("CNI_PATH".to_string(), "/usr/lib/cni".to_string());
        // The per-call log is off unless a test's configuration names a file.
        env.insert("AKSNET_CNI_LOG_FILE".to_string(), String::new());
        env.insert(
            "PATH".to_string(),
            "/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
        Call {
            env,
            stdin: conf.to_string().into_bytes(),
        }
    }

    /// An attachment verb (ADD, CHECK, DEL) for pod `pod` in `netns`.
    pub fn attachment(
        command: &str,
        conf: &Value,
        container_id: &str,
        netns: Option<&Path>,
        pod: &str,
    ) -> Self {
        let mut c = Call::new(command, conf);
        c.env.insert("CNI_CONTAINERID".into(), container_id.into());
        c.env.insert("CNI_IFNAME".into(), "eth0".into());
        if let Some(n) = netns {
            c.env.insert("CNI_NETNS".into(), n.display().to_string());
        }
        c.env.insert(
            "CNI_ARGS".into(),
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=aksnt;K8S_POD_NAME={pod}"),
        );
        c
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn from_output(out: Output, elapsed: Duration) -> Self {
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The result or error JSON on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} stderr {:?}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn expect_ok(&self, what: &str) -> &Self {
        assert!(
            self.ok(),
            "{what} failed: exit {:?} stdout {} stderr {}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Which network and where its state lives.
pub struct Network {
    pub name: String,
    pub data_dir: PathBuf,
    pub conf: Value,
    /// The pod subnet (for the /32 route check).
    pub subnet: Ipv4Net,
    _dir: tempfile::TempDir,
}

impl Network {
    /// kubenet: bridge + veth, host-local-style IPAM on 10.99.0.0/22.
    pub fn kubenet(node: &Node, cni_version: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aksnt-fault-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let name = "aksntfault".to_string();
        let conf = json!({
            "cniVersion": cni_version, "name": name, "type": "aksnet-cni", "mode": "kubenet",
            "bridge": node.bridge, "dataDir": data_dir,
            "ipam": {"ranges": [[{"subnet": "10.99.0.0/22"}]]}
        });
        Network {
            name,
            data_dir,
            conf,
            subnet: "10.99.0.0/22".parse().expect("cidr"),
            _dir: dir,
        }
    }

    /// A routed mode (`mode`: nodesubnet, podsubnet, overlay) over `pool`,
    /// written where `aksnet node join` writes it.
    fn routed(cni_version: &str, mode: &str, pool: &NodePool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aksnt-fault-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        std::fs::write(
            data_dir.join(NODE_POOL_FILE),
            serde_json::to_vec(pool).expect("serialise node pool"),
        )
        .expect("write node pool");
        let name = "aksntfault".to_string();
        let conf = json!({
            "cniVersion": cni_version, "name": name, "type": "aksnet-cni", "mode": mode,
            "dataDir": data_dir
        });
        Network {
            name,
            data_dir,
            conf,
            subnet: pool.pod_prefix(),
            _dir: dir,
        }
    }

    /// nodesubnet: a node pool of `max_pods` addresses in 10.98.0.0/22 (what
    /// `aksnet node join` writes, docs/node.md), the node IP first.
    pub fn nodesubnet(cni_version: &str, max_pods: u32) -> Self {
        let base = u32::from(Ipv4Addr::new(10, 98, 0, 4));
        let pool = NodePool {
            version: NODE_POOL_VERSION,
            node: "aksnt-node".into(),
            subnet_name: "aksnt".into(),
            subnet: "10.98.0.0/22".parse().expect("cidr"),
            node_ip: Ipv4Addr::from(base),
            max_pods,
            pod_ips: (1..=max_pods).map(|i| Ipv4Addr::from(base + i)).collect(),
            pod_subnet: None,
            overlay: None,
        };
        Self::routed(cni_version, "nodesubnet", &pool)
    }

    /// podsubnet (issue 15): a static-block Pod Subnet node's pool, what `aksnet
    /// node join --pod-subnet 10.97.0.0/22 --pod-allocation static` writes:
    /// ceil((maxPods+1)/16) /28 blocks, maxPods pod addresses of them; the
    /// node's own address in a node subnet of its own.
    pub fn podsubnet(cni_version: &str, max_pods: u32) -> Self {
        let max = aksnet_core::azure::MaxPods::new(max_pods).expect("maxPods");
        let first = u32::from(Ipv4Addr::new(10, 97, 0, 16));
        let blocks: Vec<Ipv4Addr> = (0..blocks_for(max))
            .map(|i| Ipv4Addr::from(first + i * BATCH))
            .collect();
        let pool = NodePool {
            version: NODE_POOL_VERSION_POD_SUBNET,
            node: "aksnt-node".into(),
            subnet_name: "aksnt".into(),
            subnet: "10.96.0.0/24".parse().expect("cidr"),
            node_ip: Ipv4Addr::new(10, 96, 0, 4),
            max_pods,
            pod_ips: pod_addresses(&blocks, Some(max_pods as usize)),
            pod_subnet: Some(PodSubnetPool {
                name: "aksnt-pods".into(),
                cidr: "10.97.0.0/22".parse().expect("cidr"),
                allocation: Allocation::Static,
                blocks,
                returning: Vec::new(),
            }),
            overlay: None,
        };
        Self::routed(cni_version, "podsubnet", &pool)
    }

    /// overlay (issue 15): an Overlay node's pool, what `aksnet node join
    /// --overlay --pod-cidr-from 10.95.0.0/16` writes for a node holding
    /// 10.95.3.0/24: the block's first maxPods addresses from .1.
    pub fn overlay(cni_version: &str, max_pods: u32) -> Self {
        let overlay = OverlayPool {
            cluster_pod_cidr: "10.95.0.0/16".parse().expect("cidr"),
            pod_cidr: "10.95.3.0/24".parse().expect("cidr"),
        };
        let pool = NodePool {
            version: NODE_POOL_VERSION_OVERLAY,
            node: "aksov-node".into(),
            subnet_name: "aksov".into(),
            subnet: "10.94.0.0/24".parse().expect("cidr"),
            node_ip: Ipv4Addr::new(10, 94, 0, 4),
            max_pods,
            pod_ips: overlay.pod_ips(max_pods),
            pod_subnet: None,
            overlay: Some(overlay),
        };
        Self::routed(cni_version, "overlay", &pool)
    }

    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join(format!("{}.json", self.name))
    }

    /// The state file, which must always parse (and be our format); `None` if absent.
    pub fn state(&self) -> Option<Value> {
        let bytes = match std::fs::read(self.state_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("reading {}: {e}", self.state_path().display()),
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "state file {} is corrupt: {e}: {:?}",
                self.state_path().display(),
                String::from_utf8_lossy(&bytes)
            )
        });
        // And the store itself accepts it (format version, consistency).
        aksnet_ipam::IpamStore::open(&self.data_dir, &self.name)
            .and_then(|s| s.snapshot())
            .unwrap_or_else(|e| panic!("IPAM store rejects its state file: {e}"));
        Some(v)
    }

    /// Addresses held in the state file.
    pub fn held(&self) -> usize {
        self.state()
            .and_then(|v| v.get("allocations").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0)
    }

    /// GC as libcni sends it (CNI 1.1): the valid attachments on stdin.
    pub fn gc_call(&self, valid: &[(&str, &str)]) -> Call {
        let mut conf = self.conf.clone();
        conf["cni.dev/valid-attachments"] = Value::Array(
            valid
                .iter()
                .map(|(c, i)| json!({"containerID": c, "ifname": i}))
                .collect(),
        );
        Call::new("GC", &conf)
    }
}
