//! `lab netpol`'s kernel side: the fabric, nodes, pods (through the real `aksnet-cni`),
//! externals, listeners and probers, all in network namespaces named with the lab's prefix,
//! removed by [`World`]'s Drop even when a step fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aksnet_netlink::{create_named_netns, delete_named_netns, named_netns_path};

use crate::error::{LabError, Result};
use crate::exec::{self, Binaries};
use crate::netpol_plan::{NetpolPlan, NodeSlot};
use crate::spec::Model;

/// Answers every probed port: TCP accepts and closes, UDP echoes. Prints "ready" once bound.
const LISTENER: &str = r#"
import socket, sys, threading
def sock(kind):
    # One dual-stack socket answers IPv4 and IPv6.
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s
def tcp(p):
    s = sock(socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", p)); s.listen(128)
    def run():
        while True:
            c, _ = s.accept(); c.close()
    threading.Thread(target=run, daemon=True).start()
def udp(p):
    s = sock(socket.SOCK_DGRAM)
    s.bind(("::", p))
    def run():
        while True:
            d, a = s.recvfrom(64); s.sendto(d, a)
    threading.Thread(target=run, daemon=True).start()
for a in sys.argv[1:]:
    port, proto = a.split("/")
    (tcp if proto == "TCP" else udp)(int(port))
print("ready", flush=True)
threading.Event().wait()
"#;

/// Reads `[[id, ip, port, proto], ...]` on stdin, tries each at once (TCP connect, UDP
/// request/answer) and prints `{id: true|false}`.
const PROBER: &str = r#"
import json, socket, sys, threading
T = float(sys.argv[1])
todo = json.load(sys.stdin); out = {}
def probe(i, ip, port, proto):
    ok = False
    try:
        if proto == "TCP":
            socket.create_connection((ip, port), timeout=T).close(); ok = True
        else:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(T)
            s.sendto(b"p", (ip, port)); s.recvfrom(64); ok = True
    except OSError:
        ok = False
    out[i] = ok
ts = [threading.Thread(target=probe, args=t) for t in todo]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"#;

/// Probe timeout: a dropped packet shows as no answer within this time.
pub const PROBE_TIMEOUT_S: f64 = 1.0;

/// Timeout of the one retry of a connection the model allows but that got no answer (a
/// loaded machine can delay an answer; a policy drop never turns into an answer).
pub const RETRY_TIMEOUT_S: f64 = 3.0;

pub struct World {
    pub prefix: String,
    pub state: PathBuf,
    netns: Vec<String>,
    listeners: BTreeMap<String, Child>,
}

impl Drop for World {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.listeners) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in self.netns.iter().rev() {
            let _ = delete_named_netns(n);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn cmd_err(what: String, e: std::io::Error) -> LabError {
    LabError::Command {
        what,
        status: "not started".into(),
        message: e.to_string(),
    }
}

/// Runs `cmd` to its end; a failure is a `Command` error naming `what`, with its stderr.
fn run_ok(what: String, cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(|e| cmd_err(what.clone(), e))?;
    if !out.status.success() {
        return Err(LabError::Command {
            what,
            status: out.status.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl World {
    pub fn new(prefix: &str, state: PathBuf) -> Result<World> {
        std::fs::create_dir_all(&state).map_err(|e| LabError::io("create", &state, e))?;
        Ok(World {
            prefix: prefix.to_string(),
            state,
            netns: Vec::new(),
            listeners: BTreeMap::new(),
        })
    }

    pub fn fabric(&self) -> String {
        format!("{}f", self.prefix)
    }

    pub fn node_ns(&self, i: usize) -> String {
        format!("{}n{i}", self.prefix)
    }

    fn netns(&mut self, name: &str, router: bool) -> Result<()> {
        create_named_netns(name)?;
        self.netns.push(name.to_string());
        exec::ip(name, &["link", "set", "lo", "up"])?;
        if router {
            for (k, v) in [
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
            ] {
                sysctl(name, k, v)?;
            }
        }
        Ok(())
    }

    /// A veth `link` in the fabric ↔ `eth0` in `ns`, both up.
    fn uplink(&self, link: &str, ns: &str) -> Result<()> {
        let f = self.fabric();
        exec::ip(
            &f,
            &[
                "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
        exec::ip(&f, &["link", "set", link, "up"])?;
        exec::ip(ns, &["link", "set", "eth0", "up"])?;
        link_locals(&f, link, ns, "eth0")
    }

    pub fn build(&mut self, plan: &NetpolPlan, externals: &[(String, IpAddr)]) -> Result<()> {
        let f = self.fabric();
        self.netns(&f, true)?;
        for (i, n) in plan.nodes.iter().enumerate() {
            self.build_node(plan, i, n)?;
        }
        for (k, (_, ip)) in externals.iter().enumerate() {
            let ns = format!("{}x{k}", self.prefix);
            let link = format!("{}x{k}", self.prefix);
            self.netns(&ns, false)?;
            self.uplink(&link, &ns)?;
            let ip = match ip {
                IpAddr::V4(a) => *a,
                IpAddr::V6(a) => {
                    // IPv6: the fabric reaches it by its link-local (link_locals).
                    route6(&f, *a, &link)?;
                    addr6(&ns, *a, "eth0")?;
                    exec::ip(
                        &ns,
                        &[
                            "-6", "route", "add", "default", "via", LL_FABRIC, "dev", "eth0",
                        ],
                    )?;
                    continue;
                }
            };
            // Outside the cluster: reached through the fabric, like an on-premises host.
            exec::ip(&f, &["addr", "add", "169.254.100.1/32", "dev", &link])?;
            exec::ip(&f, &["route", "add", &format!("{ip}/32"), "dev", &link])?;
            exec::ip(&ns, &["addr", "add", &format!("{ip}/32"), "dev", "eth0"])?;
            exec::ip(&ns, &["route", "add", "169.254.100.1/32", "dev", "eth0"])?;
            exec::ip(
                &ns,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    "169.254.100.1",
                    "dev",
                    "eth0",
                ],
            )?;
        }
        Ok(())
    }

    fn build_node(&mut self, plan: &NetpolPlan, i: usize, n: &NodeSlot) -> Result<()> {
        let f = self.fabric();
        let ns = self.node_ns(i);
        let link = format!("{}n{i}", self.prefix);
        self.netns(&ns, true)?;
        // kubenet bridges same-node pods on cbr0: br_netfilter hands bridged IPv4/IPv6 to the
        // inet hooks where the policy table sits (docs/policy.md "kubenet").
        sysctl(&ns, "net.bridge.bridge-nf-call-iptables", "1")?;
        sysctl(&ns, "net.bridge.bridge-nf-call-ip6tables", "1")?;
        self.uplink(&link, &ns)?;
        exec::ip(
            &f,
            &["addr", "add", &format!("{}/32", plan.gateway), "dev", &link],
        )?;
        sysctl(&f, &format!("net.ipv4.conf.{link}.proxy_arp"), "1")?;
        sysctl(&f, &format!("net.ipv4.neigh.{link}.proxy_delay"), "0")?;
        exec::ip(&f, &["route", "add", &format!("{}/32", n.ip), "dev", &link])?;
        exec::ip(
            &ns,
            &[
                "-6", "route", "add", "default", "via", LL_FABRIC, "dev", "eth0",
            ],
        )?;
        for (key, addrs) in &plan.pods6 {
            if plan.pods.get(key).map(|(node, _)| *node) == Some(i) {
                for a in addrs {
                    route6(&f, *a, &link)?;
                }
            }
        }
        fabric_pod_routes(&f, plan.model, n, &link)?;
        node_address(&ns, plan, n)?;
        let data = self.node_dir(i);
        std::fs::create_dir_all(&data).map_err(|e| LabError::io("create", &data, e))?;
        if plan.model == Model::NodeSubnet {
            write_node_pool(&data, plan, n)?;
        }
        Ok(())
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.state.join(format!("node-{i}"))
    }

    pub fn pod_ns(&self, j: usize) -> String {
        format!("{}p{j}", self.prefix)
    }

    /// The pod's netns and `aksnet-cni ADD` in its node, asking for the file's address.
    pub fn add_pod(
        &mut self,
        bins: &Binaries,
        plan: &NetpolPlan,
        j: usize,
        node: usize,
        ip: Ipv4Addr,
        v6: &[Ipv6Addr],
    ) -> Result<()> {
        let ns = self.pod_ns(j);
        self.netns(&ns, false)?;
        let data = self.node_dir(node);
        let mut cfg = match plan.model {
            Model::NodeSubnet | Model::PodSubnet | Model::Overlay => {
                serde_json::json!({"cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni", "mode": "nodesubnet", "dataDir": data})
            }
            Model::Kubenet => {
                serde_json::json!({"cniVersion": "1.1.0", "name": "kubenet", "type": "aksnet-cni", "mode": "kubenet", "bridge": "cbr0", "dataDir": data,
                "ipam": {"ranges": [[{"subnet": plan.nodes[node].pod_cidr.map(|c| c.to_string()).unwrap_or_default()}]]}})
            }
        };
        cfg["runtimeConfig"] = serde_json::json!({"ips": [ip.to_string()]});
        // The plugin's per-call log goes with the lab's state, not /var/log.
        cfg["logFile"] = serde_json::json!(data.join("aksnet-cni.log"));
        let name = format!("{}p{j}", self.prefix);
        match exec::cni(
            bins,
            "ADD",
            &self.node_ns(node),
            &name,
            &ns,
            &cfg.to_string(),
        )? {
            Ok(result) => self.pod_v6(&result, &self.node_ns(node), &ns, v6),
            Err(f) => Err(LabError::Cni {
                pod: name,
                node: plan.nodes[node].name.clone(),
                code: f.code,
                msg: f.msg,
                details: f.details,
            }),
        }
    }

    /// The pod's IPv6 addresses next to what the plugin set up (Node Subnet: routed through
    /// the node on the plugin's host veth, found in its result's `interfaces`).
    fn pod_v6(
        &self,
        result: &serde_json::Value,
        node_ns: &str,
        pod_ns: &str,
        v6: &[Ipv6Addr],
    ) -> Result<()> {
        if v6.is_empty() {
            return Ok(());
        }
        let host = result["interfaces"]
            .as_array()
            .and_then(|v| v.iter().find(|i| i.get("sandbox").is_none()))
            .and_then(|i| i["name"].as_str())
            .ok_or_else(|| LabError::State {
                path: self.state.clone(),
                why: format!("aksnet-cni's result names no host interface: {result}"),
            })?;
        for (ns, k) in [
            (node_ns, "net.ipv6.conf.all.disable_ipv6"),
            (pod_ns, "net.ipv6.conf.all.disable_ipv6"),
        ] {
            sysctl(ns, k, "0")?;
        }
        sysctl(node_ns, &format!("net.ipv6.conf.{host}.disable_ipv6"), "0")?;
        sysctl(pod_ns, "net.ipv6.conf.eth0.disable_ipv6", "0")?;
        link_locals(node_ns, host, pod_ns, "eth0")?;
        for a in v6 {
            addr6(pod_ns, *a, "eth0")?;
            route6(node_ns, *a, host)?;
        }
        exec::ip(
            pod_ns,
            &[
                "-6", "route", "add", "default", "via", LL_FABRIC, "dev", "eth0",
            ],
        )
    }

    /// `aksnet-cni DEL`, then the pod's netns goes.
    pub fn del_pod(
        &mut self,
        bins: &Binaries,
        plan: &NetpolPlan,
        j: usize,
        node: usize,
    ) -> Result<()> {
        let ns = self.pod_ns(j);
        self.stop_listener(&ns);
        let data = self.node_dir(node);
        let cfg = serde_json::json!({"cniVersion": "1.1.0", "name": if plan.model == Model::Kubenet { "kubenet" } else { "azure" }, "type": "aksnet-cni",
            "mode": plan.model.as_str(), "bridge": "cbr0", "dataDir": data,
            "logFile": data.join("aksnet-cni.log"),
            "ipam": {"ranges": [[{"subnet": plan.nodes[node].pod_cidr.map(|c| c.to_string()).unwrap_or_else(|| plan.subnet.to_string())}]]}});
        let name = format!("{}p{j}", self.prefix);
        let _ = exec::cni(
            bins,
            "DEL",
            &self.node_ns(node),
            &name,
            &ns,
            &cfg.to_string(),
        )?;
        delete_named_netns(&ns)?;
        self.netns.retain(|n| n != &ns);
        Ok(())
    }

    /// Starts (or restarts) the listener of one netns on `ports` ("80/TCP"); waits until bound.
    pub fn listen(&mut self, ns: &str, ports: &[String]) -> Result<()> {
        self.stop_listener(ns);
        if ports.is_empty() {
            return Ok(());
        }
        let what = format!("listener in {ns}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", LISTENER])
            .args(ports)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| cmd_err(what.clone(), e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        self.listeners.insert(ns.to_string(), child);
        if line.trim() != "ready" {
            return Err(LabError::Command {
                what,
                status: "exited".into(),
                message: "python3 listener did not start (is python3 installed?)".into(),
            });
        }
        Ok(())
    }

    fn stop_listener(&mut self, ns: &str) {
        if let Some(mut c) = self.listeners.remove(ns) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `aksnet agent --policy-only --once` in every node: the real agent applies the policy.
    pub fn apply_policy(
        &self,
        bins: &Binaries,
        plan: &NetpolPlan,
        policy_dir: &Path,
    ) -> Result<()> {
        for (i, n) in plan.nodes.iter().enumerate() {
            let ranges: Vec<String> = match plan.model {
                Model::Kubenet => n.pod_cidr.iter().map(ToString::to_string).collect(),
                Model::NodeSubnet | Model::PodSubnet | Model::Overlay => {
                    n.pool.iter().map(|a| format!("{a}/32")).collect()
                }
            };
            // The node's IPv6 pod addresses: fail closed for IPv6 too.
            let ranges6 = plan
                .pods6
                .iter()
                .filter(|(k, _)| plan.pods.get(*k).map(|(node, _)| *node) == Some(i))
                .flat_map(|(_, v)| v.iter().map(|a| format!("{a}/128")));
            let ranges: Vec<String> = ranges.into_iter().chain(ranges6).collect();
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &self.node_ns(i)])
                .arg(&bins.aksnet)
                .args(["agent", "--policy-only", "--once", "--policy-dir"])
                .arg(policy_dir);
            cmd.args([
                "--node-name",
                &n.name,
                "--policy-table",
                &format!("{}pol", self.prefix),
            ]);
            for r in &ranges {
                cmd.args(["--policy-pod-range", r]);
            }
            let what = format!("aksnet agent --policy-only --once in {}", self.node_ns(i));
            run_ok(what, &mut cmd)?;
        }
        Ok(())
    }

    /// Runs `todo` (id, destination, port, protocol) from `ns`, all at once; id → answered.
    pub fn probe(
        &self,
        ns: &str,
        todo: &[(usize, IpAddr, u16, &str)],
        timeout_s: f64,
    ) -> Result<BTreeMap<usize, bool>> {
        if todo.is_empty() {
            return Ok(BTreeMap::new());
        }
        let what = format!("prober in {ns}");
        let input: Vec<serde_json::Value> = todo
            .iter()
            .map(|(i, ip, p, proto)| serde_json::json!([i, ip.to_string(), p, proto]))
            .collect();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                "-c",
                PROBER,
                &timeout_s.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| cmd_err(what.clone(), e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(serde_json::Value::Array(input).to_string().as_bytes())
                .map_err(|e| cmd_err(what.clone(), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| cmd_err(what.clone(), e))?;
        let parsed: BTreeMap<String, bool> =
            serde_json::from_slice(&out.stdout).map_err(|e| LabError::Command {
                what: what.clone(),
                status: out.status.to_string(),
                message: format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            })?;
        Ok(parsed
            .into_iter()
            .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v)))
            .collect())
    }
}

/// The upstream side of a link (fabric, or node for a pod) is `fe80::1`, the downstream side
/// `fe80::2`, on every link: fixed next hops for IPv6 routes (no DAD wait: `nodad`).
const LL_FABRIC: &str = "fe80::1";
const LL_DOWN: &str = "fe80::2";

fn link_locals(up_ns: &str, up_link: &str, down_ns: &str, down_link: &str) -> Result<()> {
    exec::ip(
        up_ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{LL_FABRIC}/64"),
            "dev",
            up_link,
            "nodad",
        ],
    )?;
    exec::ip(
        down_ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{LL_DOWN}/64"),
            "dev",
            down_link,
            "nodad",
        ],
    )
}

fn addr6(ns: &str, a: Ipv6Addr, dev: &str) -> Result<()> {
    exec::ip(
        ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{a}/128"),
            "dev",
            dev,
            "nodad",
        ],
    )
}

/// `a` is reached through `dev`'s downstream side.
fn route6(ns: &str, a: Ipv6Addr, dev: &str) -> Result<()> {
    exec::ip(
        ns,
        &[
            "-6",
            "route",
            "add",
            &format!("{a}/128"),
            "via",
            LL_DOWN,
            "dev",
            dev,
        ],
    )
}

/// The fabric's routes to the node's pods over `link`: each pool address (Node Subnet)
/// or the node's pod CIDR (kubenet), via the node.
fn fabric_pod_routes(f: &str, model: Model, n: &NodeSlot, link: &str) -> Result<()> {
    match model {
        // (`netpol_plan::plan` refuses Pod Subnet and Overlay.)
        Model::NodeSubnet | Model::PodSubnet | Model::Overlay => {
            for ip in &n.pool {
                exec::ip(
                    f,
                    &[
                        "route",
                        "add",
                        &format!("{ip}/32"),
                        "via",
                        &n.ip.to_string(),
                        "dev",
                        link,
                    ],
                )?;
            }
        }
        Model::Kubenet => {
            let cidr = n.pod_cidr.map(|c| c.to_string()).unwrap_or_default();
            exec::ip(
                f,
                &["route", "add", &cidr, "via", &n.ip.to_string(), "dev", link],
            )?;
        }
    }
    Ok(())
}

/// The node's address in the subnet and its default route via the gateway.
fn node_address(ns: &str, plan: &NetpolPlan, n: &NodeSlot) -> Result<()> {
    exec::ip(
        ns,
        &[
            "addr",
            "add",
            &format!("{}/{}", n.ip, plan.subnet.prefix_len()),
            "dev",
            "eth0",
        ],
    )?;
    exec::ip(
        ns,
        &[
            "route",
            "add",
            "default",
            "via",
            &plan.gateway.to_string(),
            "dev",
            "eth0",
        ],
    )
}

/// What `aksnet node join` writes: the addresses reserved for this node.
fn write_node_pool(data: &Path, plan: &NetpolPlan, n: &NodeSlot) -> Result<()> {
    let pool = aksnet_core::pool::NodePool {
        version: aksnet_core::pool::NODE_POOL_VERSION,
        node: n.name.clone(),
        subnet_name: "netpol".into(),
        subnet: plan.subnet,
        node_ip: n.ip,
        max_pods: u32::try_from(n.pool.len()).unwrap_or(250),
        pod_ips: n.pool.clone(),
        pod_subnet: None,
        overlay: None,
    };
    let file = data.join(aksnet_core::pool::NODE_POOL_FILE);
    let text = serde_json::to_string(&pool).map_err(|e| LabError::State {
        path: file.clone(),
        why: e.to_string(),
    })?;
    std::fs::write(&file, text).map_err(|e| LabError::io("write", &file, e))
}

fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let what = format!("sysctl {key}={value} in {ns}");
    run_ok(
        what,
        Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ]),
    )
}

/// Whether this kernel offers SCTP sockets (many VM kernels are built without it).
pub fn sctp_available() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn netns_path(name: &str) -> PathBuf {
    named_netns_path(name)
}
