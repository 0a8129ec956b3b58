//! `lab check`: for each path that matters, whether it is reachable and which
//! source address the target sees, beside what the AKS documentation says.
//!
//! Probes are TCP: the target runs a listener (a thread whose socket was
//! opened inside the target's netns) that answers every connection with the
//! peer address it sees; the source connects from a socket opened inside the
//! source's netns. Listeners live only for the duration of the check.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use aksnet_netlink::{named_netns_path, Netns};
use serde::Serialize;

use crate::error::{LabError, Result};
use crate::spec::{LabSpec, Model, Topology};
use crate::state::{Entry, StateDir};

/// The port every probe listener uses (one per netns, so no clash).
pub const PROBE_PORT: u16 = 7946;
/// How long a probe waits before calling a path unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Whose address a target sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    /// The source pod's own IP.
    Pod,
    /// The IP of the source pod's node (SNAT by the agent).
    Node,
    /// The VM's IP.
    Vm,
}

impl Who {
    fn text(self) -> &'static str {
        match self {
            Who::Pod => "pod IP",
            Who::Node => "node IP",
            Who::Vm => "VM IP",
        }
    }
}

/// The documented outcome of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Sees(Who),
    Unreachable,
    /// The address is no node's and no pod's (a VM's, in the node subnet).
    NotGiven,
}

impl Expect {
    pub fn key(self) -> &'static str {
        match self {
            Expect::Sees(Who::Pod) => "pod",
            Expect::Sees(Who::Node) => "node",
            Expect::Sees(Who::Vm) => "vm",
            Expect::Unreachable => "unreachable",
            Expect::NotGiven => "not given",
        }
    }
    fn text(self) -> &'static str {
        match self {
            Expect::Sees(w) => w.text(),
            Expect::Unreachable => "unreachable",
            Expect::NotGiven => "never a pod's",
        }
    }
}

/// The paths `check` probes, in output order.
pub const PATHS: [&str; 6] = [
    "pod-pod-same-node",
    "pod-pod-across-nodes",
    "pod-vm",
    "pod-peer",
    "pod-onprem",
    "vm-pod",
];

/// The extra paths of the l2 fabric (a VM inside the node subnet).
pub const SUBNET_VM_PATHS: [&str; 2] = ["svm-address", "svm-pod"];

/// What the AKS documentation says for `path` in `model`, and the claim in
/// its words. Sources: the Legacy CNI article ("Systems in the same virtual network ...
/// see the pod IP ... Systems outside ... see the node IP"; kubenet "pods can't
/// communicate directly ... UDR and IP forwarding"), docs/azure.md#source-addresses,
/// #snat-defaults-per-mode, #kubenet-snat and Azure/AKS#1207 (only the VNet
/// is non-masqueraded by default, so a peered VNet sees the node IP).
///
/// kubenet VM → pod: AKS's kubenet page says pods receive addresses "from a
/// logically different address space" and "can't be reached directly"; the
/// route table is associated with the node subnet only (docs/azure.md#kubenet-routes), so a
/// VM in another subnet of the VNet has no route to a pod CIDR. Unreachable.
pub fn expectation(model: Model, path: &str, non_masq_peer: bool) -> (Expect, &'static str) {
    let row = match model {
        Model::NodeSubnet => node_subnet_expectation(path, non_masq_peer),
        Model::Kubenet => kubenet_expectation(path, non_masq_peer),
        Model::PodSubnet => pod_subnet_expectation(path),
        Model::Overlay => overlay_expectation(path, non_masq_peer),
    };
    row.or_else(|| subnet_vm_expectation(model, path))
        .unwrap_or((Expect::Unreachable, "unknown path"))
}

/// A row of the expectation tables: what the target sees, and the claim.
type Claim = Option<(Expect, &'static str)>;

fn node_subnet_expectation(path: &str, non_masq_peer: bool) -> Claim {
    Some(match path {
        "pod-pod-same-node" => (
            Expect::Sees(Who::Pod),
            "pods talk directly with their subnet IPs",
        ),
        "pod-pod-across-nodes" => (
            Expect::Sees(Who::Pod),
            "every pod gets a subnet IP and can be accessed directly",
        ),
        "pod-vm" => (
            Expect::Sees(Who::Pod),
            "systems in the same VNet see the pod IP",
        ),
        "pod-peer" if non_masq_peer => (
            Expect::Sees(Who::Pod),
            "peered range added to nonMasqueradeCIDRs keeps the pod IP (AKS#1207)",
        ),
        "pod-peer" => (
            Expect::Sees(Who::Node),
            "outside the VNet (a peered VNet too, AKS#1207): node IP",
        ),
        "pod-onprem" => (
            Expect::Sees(Who::Node),
            "systems outside the VNet see the node IP",
        ),
        "vm-pod" => (
            Expect::Sees(Who::Vm),
            "pods can be accessed directly from the VNet",
        ),
        _ => return None,
    })
}

fn kubenet_expectation(path: &str, non_masq_peer: bool) -> Claim {
    Some(match path {
        "pod-pod-same-node" => (
            Expect::Sees(Who::Pod),
            "pods on a node share the bridge cbr0",
        ),
        "pod-pod-across-nodes" => (
            Expect::Sees(Who::Pod),
            "across nodes via the route table; pod CIDR not NATed",
        ),
        "pod-vm" => (
            Expect::Sees(Who::Node),
            "NAT: pods reach the VNet as the node's IP",
        ),
        "pod-peer" if non_masq_peer => (
            Expect::Sees(Who::Pod),
            "peered range added to nonMasqueradeCIDRs keeps the pod IP",
        ),
        "pod-peer" | "pod-onprem" => (
            Expect::Sees(Who::Node),
            "NAT: outside the pod CIDR, the node's IP",
        ),
        "vm-pod" => (
            Expect::Unreachable,
            "pods are not directly reachable from the VNet",
        ),
        _ => return None,
    })
}

fn pod_subnet_expectation(path: &str) -> Claim {
    Some(match path {
        "pod-pod-same-node" => (
            Expect::Sees(Who::Pod),
            "pods talk directly with their pod-subnet IPs",
        ),
        "pod-pod-across-nodes" => (
            Expect::Sees(Who::Pod),
            "the VNet routes the pod subnet to each node: no NAT",
        ),
        "pod-vm" => (
            Expect::Sees(Who::Pod),
            "the pod IP is the source address inside the VNet (FAQ)",
        ),
        "pod-peer" | "pod-onprem" => (
            Expect::Sees(Who::Pod),
            "and outside it: no SNAT but to Azure DNS and IMDS (FAQ)",
        ),
        "pod-azuredns" => (
            Expect::Sees(Who::Node),
            "the exception: AKS masquerades Azure DNS (and IMDS)",
        ),
        "vm-pod" => (
            Expect::Sees(Who::Vm),
            "pods are directly reachable from the VNet",
        ),
        _ => return None,
    })
}

fn overlay_expectation(path: &str, non_masq_peer: bool) -> Claim {
    Some(match path {
        "pod-pod-same-node" => (
            Expect::Sees(Who::Pod),
            "pods talk directly with their overlay IPs",
        ),
        "pod-pod-across-nodes" => (
            Expect::Sees(Who::Pod),
            "each node's /24 is routed to the node: no NAT",
        ),
        // A peered range added to nonMasqueradeCIDRs keeps the pod IP, which
        // nothing outside the cluster routes back: the reply is lost.
        "pod-peer" if non_masq_peer => (
            Expect::Unreachable,
            "not SNATed, the pod IP is not routable outside the cluster",
        ),
        "pod-vm" | "pod-peer" | "pod-onprem" => (
            Expect::Sees(Who::Node),
            "traffic leaving the pod CIDR is SNATed to the node IP",
        ),
        "vm-pod" => (
            Expect::Unreachable,
            "the VNet cannot reach overlay pods directly",
        ),
        _ => return None,
    })
}

/// The l2 fabric's VM inside the node subnet.
fn subnet_vm_expectation(model: Model, path: &str) -> Claim {
    Some(match (model, path) {
        (_, "svm-address") => (
            Expect::NotGiven,
            "VMs may share the node subnet; their addresses never go to a pod (FAQ)",
        ),
        (Model::NodeSubnet, "svm-pod") => (
            Expect::Sees(Who::Vm),
            "pods can be accessed directly from the VNet",
        ),
        // The LAN's router holds no pod CIDR route (no route table is associated).
        (Model::Kubenet | Model::Overlay, "svm-pod") => (
            Expect::Unreachable,
            "pods are not directly reachable from the VNet",
        ),
        _ => return None,
    })
}

pub fn path_title(path: &str) -> &'static str {
    match path {
        "pod-pod-same-node" => "pod → pod, same node",
        "pod-pod-across-nodes" => "pod → pod, other node",
        "pod-vm" => "pod → VM in the VNet",
        "pod-peer" => "pod → peered VNet host",
        "pod-onprem" => "pod → on-premises host",
        "vm-pod" => "VM → pod",
        "svm-address" => "VM in node subnet: address",
        "pod-azuredns" => "pod → Azure DNS 168.63.129.16",
        "svm-pod" => "VM in node subnet → pod",
        _ => "?",
    }
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Seen {
    /// The target answered and saw this source address.
    Reached {
        address: IpAddr,
        who: Option<Who>,
    },
    Unreachable {
        reason: String,
    },
    /// The path needs more nodes or pods than the lab has.
    NotApplicable {
        reason: String,
    },
    /// Which node pool or pod holds an address (`None`: none does).
    HeldBy {
        holder: Option<String>,
    },
}

impl Seen {
    /// Short words for a table cell: whose address the target saw.
    pub fn text(&self) -> String {
        match self {
            Seen::Reached { who: Some(w), .. } => w.text().to_string(),
            Seen::Reached { address, who: None } => format!("other {address}"),
            Seen::Unreachable { .. } => "unreachable".into(),
            Seen::NotApplicable { .. } => "n/a".into(),
            Seen::HeldBy { holder: None } => "no pool, no pod".into(),
            Seen::HeldBy { holder: Some(h) } => format!("held by {h}"),
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            Seen::Reached {
                who: Some(Who::Pod),
                ..
            } => "pod",
            Seen::Reached {
                who: Some(Who::Node),
                ..
            } => "node",
            Seen::Reached {
                who: Some(Who::Vm), ..
            } => "vm",
            Seen::Reached { who: None, .. } => "other",
            Seen::Unreachable { .. } => "unreachable",
            Seen::NotApplicable { .. } => "n/a",
            Seen::HeldBy { holder: None } => "not given",
            Seen::HeldBy { holder: Some(_) } => "given",
        }
    }
}

/// One line of the matrix.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub path: &'static str,
    pub title: &'static str,
    pub claim: &'static str,
    pub from: String,
    pub from_address: Option<Ipv4Addr>,
    pub to: String,
    pub to_address: Option<Ipv4Addr>,
    pub expected: &'static str,
    pub seen: Seen,
    pub seen_as: &'static str,
    /// `None` when the path does not apply (too few nodes or pods).
    pub ok: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub prefix: String,
    pub model: Model,
    pub ok: bool,
    pub rows: Vec<Row>,
}

/// A lab that is up, as found on disk.
#[derive(Debug, Clone)]
pub struct Lab {
    pub spec: LabSpec,
    pub topo: Topology,
    /// Node name → node IP.
    pub node_ips: BTreeMap<String, Ipv4Addr>,
    /// Pod name → (node name, pod IP).
    pub pods: BTreeMap<String, (String, Ipv4Addr)>,
    pub complete: bool,
}

impl Lab {
    pub fn open(prefix: &str, state_dir: &std::path::Path) -> Result<Lab> {
        let state = StateDir::new(state_dir);
        if !state.spec_file().exists() {
            return Err(LabError::NotUp {
                prefix: prefix.to_string(),
                dir: state_dir.to_path_buf(),
            });
        }
        let spec = state.read_spec()?;
        let topo = spec.topology()?;
        let mut node_ips = BTreeMap::new();
        let mut pods = BTreeMap::new();
        let mut complete = false;
        for e in state.read_journal()? {
            match e {
                Entry::Node { name, ip } => {
                    node_ips.insert(name, ip);
                }
                Entry::Pod { node, name, ip } => {
                    pods.insert(name, (node, ip));
                }
                Entry::UpDone => complete = true,
                Entry::Netns { .. } => {}
            }
        }
        Ok(Lab {
            spec,
            topo,
            node_ips,
            pods,
            complete,
        })
    }

    fn pod(&self, node: usize, pod: usize) -> Option<Endpoint> {
        let plan = self.topo.nodes.get(node)?.pods.get(pod)?;
        let (node_name, ip) = self.pods.get(&plan.name)?;
        Some(Endpoint {
            name: plan.name.clone(),
            netns: plan.netns.clone(),
            ip: *ip,
            node_ip: self.node_ips.get(node_name).copied(),
        })
    }
}

#[derive(Debug, Clone)]
struct Endpoint {
    name: String,
    netns: String,
    ip: Ipv4Addr,
    node_ip: Option<Ipv4Addr>,
}

/// A listener in a netns that tells every peer the address it sees.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(netns: &str) -> Result<Self> {
        let ns = Netns::open(named_netns_path(netns))?;
        let bound = ns.run(|| TcpListener::bind(("0.0.0.0", PROBE_PORT)))?;
        let listener =
            bound.map_err(|e| LabError::io("listen for probes in", named_netns_path(netns), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| LabError::io("listen for probes in", named_netns_path(netns), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = writeln!(conn, "{}", peer.ip());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `netns` to `target` and returns the address the target saw.
fn probe(netns: &str, target: Ipv4Addr) -> Result<std::result::Result<IpAddr, String>> {
    let ns = Netns::open(named_netns_path(netns))?;
    let addr = SocketAddr::new(IpAddr::V4(target), PROBE_PORT);
    let conn = ns.run(|| TcpStream::connect_timeout(&addr, PROBE_TIMEOUT))?;
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let _ = conn.set_read_timeout(Some(PROBE_TIMEOUT));
    let mut text = String::new();
    if let Err(e) = conn.read_to_string(&mut text) {
        return Ok(Err(format!("connected but no answer: {e}")));
    }
    Ok(text
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| format!("unexpected answer {text:?}")))
}

/// One probe: a listener in `to_netns`, a connection from `from_netns` to
/// `to`; the address the target saw, or why it was not reached.
pub fn probe_once(
    from_netns: &str,
    to_netns: &str,
    to: Ipv4Addr,
) -> Result<std::result::Result<IpAddr, String>> {
    let _listener = Listener::start(to_netns)?;
    probe(from_netns, to)
}

/// One probe of the plan: (path, source, target); `None` where the lab has
/// no such endpoint (one node, or one pod per node).
type Probe = (&'static str, Option<Endpoint>, Option<Endpoint>);

/// What `check` probes: each path with its endpoints, and the VMs whose own
/// address a target may see.
struct ProbePlan {
    probes: Vec<Probe>,
    vm: Endpoint,
    svm: Option<Endpoint>,
}

/// Runs every probe of the lab.
pub fn check(lab: &Lab) -> Result<CheckReport> {
    let plan = probe_plan(lab);
    let mut listeners: BTreeMap<String, Listener> = BTreeMap::new();
    let mut rows = Vec::new();
    for (path, from, to) in &plan.probes {
        rows.push(probe_row(lab, &plan, &mut listeners, path, from, to)?);
    }
    drop(listeners);
    if let Some(svm) = &plan.svm {
        rows.insert(rows.len() - 1, address_row(lab, svm)?);
    }
    Ok(CheckReport {
        prefix: lab.spec.prefix.clone(),
        model: lab.spec.model,
        ok: rows.iter().all(|r| r.ok != Some(false)),
        rows,
    })
}

/// The paths of the lab's matrix, in the report's order, with their endpoints.
fn probe_plan(lab: &Lab) -> ProbePlan {
    let topo = &lab.topo;
    let src = lab.pod(0, 0);
    let same = lab.pod(0, 1);
    let last = topo.nodes.len().saturating_sub(1);
    let other = if last > 0 { lab.pod(last, 0) } else { None };
    let vm_target = other.clone().or_else(|| src.clone());
    let host_ep = |h: &crate::spec::HostPlan| Endpoint {
        name: h.netns.clone(),
        netns: h.netns.clone(),
        ip: h.ip,
        node_ip: None,
    };
    let vm = host_ep(&topo.vm);
    let mut probes: Vec<Probe> = vec![
        ("pod-pod-same-node", src.clone(), same),
        ("pod-pod-across-nodes", src.clone(), other),
        ("pod-vm", src.clone(), Some(vm.clone())),
        ("pod-peer", src.clone(), Some(host_ep(&topo.peer))),
        ("pod-onprem", src.clone(), Some(host_ep(&topo.on_prem))),
        ("vm-pod", Some(vm.clone()), vm_target.clone()),
    ];
    if let Some(dns) = &topo.azure_dns {
        probes.insert(5, ("pod-azuredns", src.clone(), Some(host_ep(dns))));
    }
    let svm = topo.subnet_vm.as_ref().map(host_ep);
    if let Some(svm) = &svm {
        probes.push(("svm-pod", Some(svm.clone()), vm_target));
    }
    ProbePlan { probes, vm, svm }
}

/// Probes one path (starting the target's listener once) and compares what
/// the target saw with the model's expectation.
fn probe_row(
    lab: &Lab,
    plan: &ProbePlan,
    listeners: &mut BTreeMap<String, Listener>,
    path: &'static str,
    from: &Option<Endpoint>,
    to: &Option<Endpoint>,
) -> Result<Row> {
    let (expect, claim) = expectation(lab.spec.model, path, lab.spec.non_masq_peer);
    let (seen, from_name, from_ip, to_name, to_ip) = match (from, to) {
        (Some(f), Some(t)) => {
            if !listeners.contains_key(&t.netns) {
                listeners.insert(t.netns.clone(), Listener::start(&t.netns)?);
            }
            let seen = observe(plan, f, t)?;
            (seen, f.name.clone(), Some(f.ip), t.name.clone(), Some(t.ip))
        }
        _ => (
            Seen::NotApplicable {
                reason: "needs 2 nodes and 2 pods per node".into(),
            },
            "-".into(),
            None,
            "-".into(),
            None,
        ),
    };
    let ok = match &seen {
        Seen::NotApplicable { .. } => None,
        s => Some(s.key() == expect.key()),
    };
    Ok(Row {
        path,
        title: path_title(path),
        claim,
        from: from_name,
        from_address: from_ip,
        to: to_name,
        to_address: to_ip,
        expected: expect.key(),
        seen_as: seen.key(),
        seen,
        ok,
    })
}

/// Connects from `f` to `t` and names whose address `t` saw: the source's own
/// (a pod's or a VM's), its node's, or neither.
fn observe(plan: &ProbePlan, f: &Endpoint, t: &Endpoint) -> Result<Seen> {
    Ok(match probe(&f.netns, t.ip)? {
        Ok(address) => {
            let is_vm =
                f.netns == plan.vm.netns || plan.svm.as_ref().is_some_and(|s| s.netns == f.netns);
            let who = if address == IpAddr::V4(f.ip) {
                Some(if is_vm { Who::Vm } else { Who::Pod })
            } else if f.node_ip.map(IpAddr::V4) == Some(address) {
                Some(Who::Node)
            } else {
                None
            };
            Seen::Reached { address, who }
        }
        Err(reason) => Seen::Unreachable { reason },
    })
}

/// The subnet VM's address against every node pool and pod of the lab.
fn address_row(lab: &Lab, svm: &Endpoint) -> Result<Row> {
    let (expect, claim) = expectation(lab.spec.model, "svm-address", lab.spec.non_masq_peer);
    let mut holder = lab
        .pods
        .iter()
        .find(|(_, (_, ip))| *ip == svm.ip)
        .map(|(pod, _)| format!("pod {pod}"));
    let state = StateDir::new(&lab.spec.state_dir);
    for node in &lab.topo.nodes {
        let path = state.node_dir(&node.name).join("node-pool.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // kubenet nodes have no pool
        };
        let pool: crate::exec::NodePool =
            serde_json::from_str(&text).map_err(|e| LabError::State {
                path: path.clone(),
                why: e.to_string(),
            })?;
        if pool.node_ip == svm.ip || pool.pod_ips.contains(&svm.ip) {
            holder.get_or_insert(format!("node {}'s pool", node.name));
        }
    }
    let seen = Seen::HeldBy { holder };
    Ok(Row {
        path: "svm-address",
        title: path_title("svm-address"),
        claim,
        from: svm.name.clone(),
        from_address: Some(svm.ip),
        to: "-".into(),
        to_address: None,
        expected: expect.key(),
        seen_as: seen.key(),
        ok: Some(seen.key() == expect.key()),
        seen,
    })
}

/// The lab's ranges, one line: what the matrix is about.
fn header(s: &LabSpec) -> String {
    let ranges = match s.model {
        Model::NodeSubnet => String::new(),
        Model::Kubenet | Model::Overlay => format!(", pod CIDR {}", s.pod_cidr),
        Model::PodSubnet => format!(", pod subnet {}", s.pod_subnet),
    };
    let mut out = format!(
        "{}: VNet {}, node subnet {}{ranges}, {} nodes, peered VNet {}, on-premises {}\n",
        s.title(),
        s.vnet,
        s.subnet,
        s.nodes,
        s.peer,
        s.on_prem
    );
    if s.model == Model::PodSubnet {
        out.push_str(POD_SUBNET_EXCEPTIONS);
        out.push('\n');
    }
    out
}

/// AKS's exceptions to "the pod IP is always the source" in Pod Subnet
/// (docs/models.md#pod-subnet): Azure DNS is probed (a host answers at its
/// address); IMDS, a link-local address, is not.
pub const POD_SUBNET_EXCEPTIONS: &str = "exceptions: AKS masquerades pod → Azure DNS 168.63.129.16 (probed below) and IMDS 169.254.169.254 (not probed) to the node IP";

impl CheckReport {
    /// The matrix as aligned text.
    pub fn render(&self, lab: &Lab) -> String {
        let s = &lab.spec;
        let mut out = String::new();
        if s.fabric == crate::spec::Fabric::L2 {
            out.push_str("fabric l2: a plain bridge, no routes; nodes answer ARP and route pod CIDRs themselves; an ordinary router\n");
        }
        out += &header(s);
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let addr =
                    |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
                let seen = match &r.seen {
                    Seen::Reached {
                        address,
                        who: Some(w),
                    } => format!("{} {address}", w.text()),
                    Seen::Reached { address, who: None } => format!("other {address}"),
                    Seen::Unreachable { .. } => "unreachable".into(),
                    Seen::NotApplicable { .. } => "n/a".into(),
                    Seen::HeldBy { holder: None } => "no pool, no pod".into(),
                    Seen::HeldBy { holder: Some(h) } => format!("held by {h}"),
                };
                let mark = match r.ok {
                    Some(true) => "ok",
                    Some(false) => "FAIL",
                    None => "skip",
                };
                let expect = expectation(s.model, r.path, s.non_masq_peer).0.text();
                [
                    r.title.to_string(),
                    format!("{} → {}", addr(r.from_address), addr(r.to_address)),
                    expect.to_string(),
                    seen,
                    mark.to_string(),
                    r.claim.to_string(),
                ]
            })
            .collect();
        let header = [
            "path",
            "from → to",
            "expected",
            "target saw",
            "",
            "documented claim",
        ];
        let mut w = [0usize; 6];
        for row in cells
            .iter()
            .chain(std::iter::once(&header.map(String::from)))
        {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |c: &[String; 6]| {
            format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {}\n",
                c[0],
                c[1],
                c[2],
                c[3],
                c[4],
                c[5],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4]
            )
        };
        out.push_str(&line(&header.map(String::from)));
        for c in &cells {
            out.push_str(&line(c));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_a_documented_expectation() {
        for model in Model::ALL {
            for p in PATHS {
                for nm in [false, true] {
                    let (_, claim) = expectation(model, p, nm);
                    assert_ne!(claim, "unknown path", "{model:?} {p}");
                }
            }
        }
        assert_eq!(
            expectation(Model::NodeSubnet, "pod-peer", true).0,
            Expect::Sees(Who::Pod)
        );
        assert_eq!(
            expectation(Model::Kubenet, "vm-pod", false).0,
            Expect::Unreachable
        );
    }
}
