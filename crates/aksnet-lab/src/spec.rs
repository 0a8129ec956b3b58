//! What a lab is made of, as pure data: the user's parameters ([`LabSpec`]),
//! their validation, and every name and address derived from them
//! ([`Topology`]). No I/O, so it is tested exhaustively.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use aksnet_core::podsubnet::Allocation;

use crate::error::{LabError, Result};
use crate::routetable::RouteTable;

/// The network model the lab builds: AKS's two legacy models and the two it
/// recommends today (docs/models.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    NodeSubnet,
    Kubenet,
    PodSubnet,
    Overlay,
}

impl Model {
    /// Every model, in the order the demo shows them.
    pub const ALL: [Model; 4] = [
        Model::Kubenet,
        Model::NodeSubnet,
        Model::Overlay,
        Model::PodSubnet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Model::NodeSubnet => "nodesubnet",
            Model::Kubenet => "kubenet",
            Model::PodSubnet => "podsubnet",
            Model::Overlay => "overlay",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Model::NodeSubnet => "Azure CNI Node Subnet",
            Model::Kubenet => "kubenet",
            Model::PodSubnet => "Azure CNI Pod Subnet",
            Model::Overlay => "Azure CNI Overlay",
        }
    }

    /// AKS's default maxPods per model (`az aks create` help: "30 for azure,
    /// 110 for kubenet"; Overlay 250; docs/azure.md#max-pods). Pod Subnet
    /// takes the planner's choice, Overlay's 250 (docs/plan.md).
    pub fn default_max_pods(self) -> u32 {
        use aksnet_core::azure::*;
        match self {
            Model::NodeSubnet => DEFAULT_MAX_PODS_NODE_SUBNET,
            Model::Kubenet => DEFAULT_MAX_PODS_KUBENET,
            Model::PodSubnet | Model::Overlay => DEFAULT_MAX_PODS_OVERLAY,
        }
    }

    /// Pods take a per-node /24 of a cluster pod CIDR outside the VNet.
    pub fn has_pod_cidr(self) -> bool {
        matches!(self, Model::Kubenet | Model::Overlay)
    }

    /// Nodes join through `aksnet node join --subnet` (their addresses come
    /// from the cluster store).
    pub fn joins_subnet(self) -> bool {
        matches!(self, Model::NodeSubnet | Model::PodSubnet)
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "nodesubnet" => Ok(Model::NodeSubnet),
            "kubenet" => Ok(Model::Kubenet),
            "podsubnet" => Ok(Model::PodSubnet),
            "overlay" => Ok(Model::Overlay),
            _ => Err(format!(
                "unknown model {s:?}: expected nodesubnet, kubenet, podsubnet or overlay"
            )),
        }
    }
}

/// What joins the nodes (docs/lab.md, "Fabrics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fabric {
    /// A namespace that routes as Azure's SDN does (the default: AKS's model).
    #[default]
    Sdn,
    /// A plain bridge (a switch) with no routes of its own: real hosts of one
    /// LAN. The nodes answer ARP for their pods and route kubenet pod CIDRs
    /// themselves (`aksnet agent --l2-uplink`, `--kubenet-routes`); the VM and
    /// the peered and on-premises hosts sit behind an ordinary router.
    L2,
}

impl Fabric {
    pub fn as_str(self) -> &'static str {
        match self {
            Fabric::Sdn => "sdn",
            Fabric::L2 => "l2",
        }
    }
}

impl std::str::FromStr for Fabric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sdn" => Ok(Fabric::Sdn),
            "l2" => Ok(Fabric::L2),
            _ => Err(format!("unknown fabric {s:?}: expected sdn or l2")),
        }
    }
}

/// The prefix of every name a lab creates unless `--prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "aksnl-";

/// AKS's defaults for a cluster it creates a VNet for: VNet `10.224.0.0/12`,
/// node subnet `10.224.0.0/16`, kubenet pod CIDR `10.244.0.0/16`
/// (docs/azure.md#kubenet; configure-kubenet.md). The peered VNet and the
/// on-premises range are the lab's own choices, outside the VNet and outside
/// the Legacy CNI article's example on-premises `10.0.0.0/8` collision (they are
/// overridable).
pub const DEFAULT_VNET: &str = "10.224.0.0/12";
pub const DEFAULT_SUBNET: &str = "10.224.0.0/16";
pub const DEFAULT_SUBNET_NAME: &str = "aks-subnet";
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
/// Pod Subnet: the lab's pod subnet, a second subnet of the VNet after the
/// node subnet and the VM's subnet (the Pod Subnet article's example puts
/// nodes in 10.240.0.0/16 and pods in 10.241.0.0/16 of one VNet).
pub const DEFAULT_POD_SUBNET: &str = "10.226.0.0/16";
pub const DEFAULT_POD_SUBNET_NAME: &str = "aks-pods";
pub const DEFAULT_PEER: &str = "10.100.0.0/16";
pub const DEFAULT_ON_PREM: &str = "192.168.0.0/16";

/// Azure DNS's virtual public address, reachable from every VM of every VNet
/// (docs/azure.md#snat-defaults-per-mode: AKS masquerades pod traffic to it in Pod Subnet).
pub const AZURE_DNS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// The lab's link to the Azure DNS host: the fabric holds `.1`.
pub const AZURE_DNS_RANGE: &str = "168.63.129.0/24";

/// Ranges AKS forbids for the VNet, pod and service ranges (docs/azure.md#reserved-ranges).
pub const RESERVED_RANGES: [&str; 4] = [
    "169.254.0.0/16",
    "172.30.0.0/16",
    "172.31.0.0/16",
    "192.0.2.0/24",
];

/// The fabric's routing table id that plays the Azure route table of a
/// kubenet cluster (associated with the node subnet only).
pub const UDR_TABLE_ID: u32 = 100;
/// The fabric's routing table id for Overlay's per-node pod CIDR routes:
/// Azure routes the overlay between nodes only, so only traffic entering
/// from a node link consults it (docs/models.md#overlay).
pub const OVERLAY_TABLE_ID: u32 = 101;

/// Everything `lab up` was asked for; stored in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabSpec {
    pub prefix: String,
    pub state_dir: PathBuf,
    pub model: Model,
    pub nodes: u32,
    pub max_pods: u32,
    pub pods_per_node: u32,
    pub vnet: Ipv4Net,
    pub subnet: Ipv4Net,
    pub subnet_name: String,
    pub pod_cidr: Ipv4Net,
    pub peer: Ipv4Net,
    pub on_prem: Ipv4Net,
    /// Add the peered VNet to nonMasqueradeCIDRs (what Azure/AKS#1207 tells
    /// users to do to keep pod IPs towards peered VNets).
    pub non_masq_peer: bool,
    /// What joins the nodes; labs written before it existed are `sdn`.
    #[serde(default)]
    pub fabric: Fabric,
    /// Pod Subnet: the pod subnet (inside the VNet, beside the node subnet).
    #[serde(default = "default_pod_subnet")]
    pub pod_subnet: Ipv4Net,
    #[serde(default = "default_pod_subnet_name")]
    pub pod_subnet_name: String,
    /// Pod Subnet: static blocks or dynamic batches (AKS's default).
    #[serde(default = "default_allocation")]
    pub pod_allocation: Allocation,
}

fn default_pod_subnet() -> Ipv4Net {
    net(DEFAULT_POD_SUBNET)
}

fn default_pod_subnet_name() -> String {
    DEFAULT_POD_SUBNET_NAME.to_string()
}

fn default_allocation() -> Allocation {
    Allocation::Dynamic
}

/// `/run/<prefix>lab`: the default state directory of a lab.
pub fn default_state_dir(prefix: &str) -> PathBuf {
    PathBuf::from(format!("/run/{prefix}lab"))
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap_or_default()
}

impl LabSpec {
    /// AKS's defaults for `model`, under `prefix`.
    pub fn defaults(prefix: &str, model: Model) -> Self {
        Self {
            prefix: prefix.to_string(),
            state_dir: default_state_dir(prefix),
            model,
            nodes: 3,
            max_pods: model.default_max_pods(),
            pods_per_node: 2,
            vnet: net(DEFAULT_VNET),
            subnet: net(DEFAULT_SUBNET),
            subnet_name: DEFAULT_SUBNET_NAME.to_string(),
            pod_cidr: net(DEFAULT_POD_CIDR),
            peer: net(DEFAULT_PEER),
            on_prem: net(DEFAULT_ON_PREM),
            non_masq_peer: false,
            fabric: Fabric::Sdn,
            pod_subnet: default_pod_subnet(),
            pod_subnet_name: default_pod_subnet_name(),
            pod_allocation: default_allocation(),
        }
    }

    /// The model's title, with the allocation for Pod Subnet.
    pub fn title(&self) -> String {
        match self.model {
            Model::PodSubnet => format!("{} ({})", self.model.title(), self.pod_allocation),
            m => m.title().to_string(),
        }
    }

    /// Checks every parameter and derives the topology. Errors name the flag
    /// and the value; nothing is created before this passes.
    pub fn topology(&self) -> Result<Topology> {
        validate_prefix(&self.prefix)?;
        validate_state_dir(&self.prefix, &self.state_dir)?;
        self.validate_counts()?;
        self.validate_ranges()?;
        self.validate_placement()?;
        if self.model.has_pod_cidr() {
            self.validate_pod_cidr()?;
        }
        let vm_subnet = self.vm_subnet()?;
        if self.model == Model::PodSubnet {
            self.validate_pod_subnet(vm_subnet)?;
        }
        if self.fabric == Fabric::L2 && self.model == Model::PodSubnet {
            return Err(crate::fabric_l2::l2_refusal(self.model));
        }
        let (nodes, route_table) = self.plan_nodes()?;
        let p = &self.prefix;
        Ok(Topology {
            router_netns: format!("{p}rtr"),
            subnet_vm: self.subnet_vm(),
            fabric_netns: format!("{p}vnet"),
            gateway: host(self.subnet, 1),
            nodes,
            route_table,
            vm: HostPlan::new("VM in the VNet", format!("{p}vm"), "vm", vm_subnet),
            peer: HostPlan::new("peered VNet host", format!("{p}peer"), "peer", self.peer),
            on_prem: HostPlan::new(
                "on-premises host",
                format!("{p}onprem"),
                "onprem",
                self.on_prem,
            ),
            nft_table: format!("{p}snat"),
            azure_dns: (self.model == Model::PodSubnet).then(|| {
                let mut h = HostPlan::new(
                    "Azure DNS",
                    format!("{p}azdns"),
                    "azdns",
                    net(AZURE_DNS_RANGE),
                );
                h.ip = AZURE_DNS;
                h
            }),
        })
    }
}

impl LabSpec {
    /// `--nodes`, `--max-pods` and `--pods-per-node` within what AKS allows.
    fn validate_counts(&self) -> Result<()> {
        if self.nodes == 0 {
            return Err(LabError::invalid(
                "--nodes",
                self.nodes,
                "a cluster needs at least one node",
            ));
        }
        if !(10..=250).contains(&self.max_pods) {
            return Err(LabError::invalid(
                "--max-pods",
                self.max_pods,
                "AKS allows 10 to 250",
            ));
        }
        if self.pods_per_node > self.max_pods {
            return Err(LabError::invalid(
                "--pods-per-node",
                self.pods_per_node,
                format!("more than --max-pods {}", self.max_pods),
            ));
        }
        Ok(())
    }

    /// Every range flag on its own: no host bits, /29 or larger, clear of the
    /// ranges AKS reserves.
    fn validate_ranges(&self) -> Result<()> {
        let nets = [
            ("--vnet", self.vnet),
            ("--subnet", self.subnet),
            ("--pod-cidr", self.pod_cidr),
            ("--peer", self.peer),
            ("--on-prem", self.on_prem),
        ];
        for (flag, n) in nets {
            if n.trunc() != n {
                return Err(LabError::invalid(
                    flag,
                    n,
                    format!("host bits set (did you mean {}?)", n.trunc()),
                ));
            }
            if n.prefix_len() > 29 {
                return Err(LabError::invalid(flag, n, "must be /29 or larger"));
            }
            for r in RESERVED_RANGES {
                let r = net(r);
                if overlaps(n, r) {
                    return Err(LabError::invalid(
                        flag,
                        n,
                        format!("overlaps {r}, which AKS reserves (docs/azure.md#reserved-ranges)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The ranges against each other: the subnet inside the VNet, the peered
    /// and on-premises ranges outside it and apart.
    fn validate_placement(&self) -> Result<()> {
        if !self.vnet.contains(&self.subnet) {
            return Err(LabError::invalid(
                "--subnet",
                self.subnet,
                format!("not inside --vnet {}", self.vnet),
            ));
        }
        let outside = [("--peer", self.peer), ("--on-prem", self.on_prem)];
        for (flag, n) in outside {
            if overlaps(n, self.vnet) {
                return Err(LabError::invalid(
                    flag,
                    n,
                    format!("overlaps --vnet {}", self.vnet),
                ));
            }
        }
        if overlaps(self.peer, self.on_prem) {
            return Err(LabError::invalid(
                "--on-prem",
                self.on_prem,
                format!("overlaps --peer {}", self.peer),
            ));
        }
        Ok(())
    }

    /// The VM's subnet: the /24 right after the node subnet, inside the VNet.
    fn vm_subnet(&self) -> Result<Ipv4Net> {
        let after = u32::from(self.subnet.broadcast()).checked_add(1);
        after
            .and_then(|a| Ipv4Net::new(Ipv4Addr::from(a), 24).ok())
            .filter(|v| self.vnet.contains(v))
            .ok_or_else(|| {
                LabError::invalid(
                    "--vnet",
                    self.vnet,
                    format!(
                        "leaves no /24 after --subnet {} for the VM's subnet",
                        self.subnet
                    ),
                )
            })
    }

    /// Each node with its pods, and (kubenet) the route table that sends each
    /// node's pod CIDR to it.
    fn plan_nodes(&self) -> Result<(Vec<NodePlan>, RouteTable)> {
        let p = &self.prefix;
        let mut nodes = Vec::new();
        let mut route_table = RouteTable::new(format!("{p}routetable"));
        for i in 0..self.nodes {
            let name = format!("{p}node-{i}");
            let (ip, pod_cidr) = match self.model {
                // Their addresses (and an Overlay node's /24) come from the
                // cluster store at join.
                Model::NodeSubnet | Model::PodSubnet | Model::Overlay => (None, None),
                Model::Kubenet => {
                    let ip = host(self.subnet, 4 + i);
                    let cidr = nth_24(self.pod_cidr, i);
                    // Model the Azure route table the cloud provider fills: one
                    // route per node, named after it (docs/azure.md#kubenet-routes).
                    route_table.add(&name, cidr, ip)?;
                    (Some(ip), Some(cidr))
                }
            };
            let pods = (0..self.pods_per_node)
                .map(|j| PodPlan {
                    name: pod_name(p, i, j),
                    netns: pod_name(p, i, j),
                })
                .collect();
            nodes.push(NodePlan {
                index: i,
                netns: name.clone(),
                name,
                fabric_link: format!("node-{i}"),
                ip,
                pod_cidr,
                pods,
            });
        }
        Ok((nodes, route_table))
    }

    /// l2: a VM inside the node subnet, after the nodes' kubenet addresses
    /// (Node Subnet joins skip it: it is reserved with `aksnet subnet reserve`).
    fn subnet_vm(&self) -> Option<HostPlan> {
        (self.fabric == Fabric::L2).then(|| {
            let mut h = HostPlan::new(
                "VM in the node subnet",
                format!("{}svm", self.prefix),
                "svm",
                self.subnet,
            );
            h.ip = host(self.subnet, 4 + self.nodes);
            h
        })
    }
    /// kubenet and Overlay: a cluster pod CIDR apart from the VNet, the peered
    /// and on-premises ranges, with a /24 per node.
    fn validate_pod_cidr(&self) -> Result<()> {
        for (flag, n) in [
            ("--vnet", self.vnet),
            ("--peer", self.peer),
            ("--on-prem", self.on_prem),
        ] {
            if overlaps(n, self.pod_cidr) {
                return Err(LabError::invalid(
                    "--pod-cidr",
                    self.pod_cidr,
                    format!("overlaps {flag} {n}"),
                ));
            }
        }
        if self.pod_cidr.prefix_len() > 24 {
            return Err(LabError::invalid(
                "--pod-cidr",
                self.pod_cidr,
                "must hold at least one /24 per node",
            ));
        }
        let slots = 1u64 << (24 - self.pod_cidr.prefix_len());
        if u64::from(self.nodes) > slots {
            return Err(LabError::invalid(
                "--pod-cidr",
                self.pod_cidr,
                format!("holds {slots} node /24s, fewer than --nodes {}", self.nodes),
            ));
        }
        // Azure keeps 5 addresses of the subnet; the nodes take the rest from .4.
        let usable = (1u64 << (32 - self.subnet.prefix_len())) - 5;
        if u64::from(self.nodes) > usable {
            return Err(LabError::invalid(
                "--nodes",
                self.nodes,
                format!("--subnet {} has {usable} usable addresses", self.subnet),
            ));
        }
        Ok(())
    }

    /// Pod Subnet: a second subnet of the VNet, apart from the node subnet and
    /// the VM's (VMs cannot be placed in a pod subnet: Legacy CNI article, FAQ),
    /// and at least a /28 (one block of 16).
    fn validate_pod_subnet(&self, vm_subnet: Ipv4Net) -> Result<()> {
        let n = self.pod_subnet;
        let why = if n.trunc() != n {
            format!("host bits set (did you mean {}?)", n.trunc())
        } else if n.prefix_len() > 28 {
            "must be /28 or larger (one block of 16)".to_string()
        } else if !self.vnet.contains(&n) {
            format!("not inside --vnet {}", self.vnet)
        } else if overlaps(n, self.subnet) {
            format!("overlaps the node subnet --subnet {}", self.subnet)
        } else if overlaps(n, vm_subnet) {
            format!("overlaps the VM's subnet {vm_subnet}")
        } else if overlaps(n, net(AZURE_DNS_RANGE)) {
            format!("overlaps {AZURE_DNS_RANGE}, the lab's link to Azure DNS")
        } else if let Some(r) = RESERVED_RANGES
            .iter()
            .map(|r| net(r))
            .find(|r| overlaps(n, *r))
        {
            format!("overlaps {r}, which AKS reserves (docs/azure.md#reserved-ranges)")
        } else {
            return self.azure_dns_apart();
        };
        Err(LabError::invalid("--pod-subnet", n, why))
    }

    /// Azure keeps 168.63.129.16 out of every VNet (the planner's R4); the
    /// lab's Azure DNS link must not overlap the lab's ranges either.
    fn azure_dns_apart(&self) -> Result<()> {
        names_differ(&self.pod_subnet_name, &self.subnet_name)?;
        let dns = net(AZURE_DNS_RANGE);
        for (flag, n) in [
            ("--vnet", self.vnet),
            ("--peer", self.peer),
            ("--on-prem", self.on_prem),
        ] {
            if overlaps(n, dns) {
                return Err(LabError::invalid(
                    flag,
                    n,
                    format!("overlaps {dns}, the lab's link to Azure DNS"),
                ));
            }
        }
        Ok(())
    }
}

/// The pod subnet and the node subnet are two subnets: two names.
fn names_differ(pod: &str, node: &str) -> Result<()> {
    if pod == node {
        return Err(LabError::invalid(
            "--pod-subnet-name",
            pod,
            "is the node subnet's name too (--subnet-name)",
        ));
    }
    Ok(())
}

pub(crate) fn pod_name(prefix: &str, node: u32, pod: u32) -> String {
    format!("{prefix}node-{node}-pod-{pod}")
}

/// The `n`-th address of `net` (network + n).
pub fn host(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).wrapping_add(n))
}

fn nth_24(net: Ipv4Net, i: u32) -> Ipv4Net {
    let base = u32::from(net.network()).wrapping_add(i << 8);
    Ipv4Net::new(Ipv4Addr::from(base), 24).unwrap_or_default()
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A prefix becomes part of namespace names, Kubernetes node names (RFC 1123)
/// and nftables table names: lowercase letters, digits and '-', starting
/// with a letter, at most 16 bytes.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 16
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LabError::invalid(
            "--prefix",
            prefix,
            "must be 1-16 of lowercase letters, digits and '-', starting with a letter",
        ))
    }
}

/// `lab down` removes the state directory recursively, so it must be the
/// lab's own: an absolute path whose last component starts with the prefix.
pub fn validate_state_dir(prefix: &str, dir: &Path) -> Result<()> {
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(prefix));
    if dir.is_absolute() && named {
        Ok(())
    } else {
        Err(LabError::invalid(
            "--state-dir",
            dir.display(),
            format!("must be an absolute path whose last component starts with the prefix {prefix:?} (e.g. /run/{prefix}lab)"),
        ))
    }
}

/// One node as planned. Node Subnet nodes learn their IP from `aksnet node
/// join`; kubenet nodes get `.4 + index` of the subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub index: u32,
    /// The Kubernetes node name (also its netns name).
    pub name: String,
    pub netns: String,
    /// The node's link in the fabric namespace (its peer is the node's eth0).
    pub fabric_link: String,
    pub ip: Option<Ipv4Addr>,
    pub pod_cidr: Option<Ipv4Net>,
    pub pods: Vec<PodPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    /// K8S_POD_NAME, also the container id and the netns name.
    pub name: String,
    pub netns: String,
}

/// A host outside the cluster: one netns, eth0 at `.4` of its range, default
/// via `.1`, which the fabric holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    pub role: &'static str,
    pub netns: String,
    pub fabric_link: String,
    pub range: Ipv4Net,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

impl HostPlan {
    fn new(role: &'static str, netns: String, link: &str, range: Ipv4Net) -> Self {
        Self {
            role,
            netns,
            fabric_link: link.to_string(),
            ip: host(range, 4),
            gateway: host(range, 1),
            range,
        }
    }
}

/// Every name and address of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub fabric_netns: String,
    /// l2: the ordinary router between the LAN and the other hosts.
    pub router_netns: String,
    /// l2: a VM with an address inside the node subnet, on the switch.
    pub subnet_vm: Option<HostPlan>,
    /// The node subnet's gateway (`.1`, one of Azure's 5 kept addresses).
    pub gateway: Ipv4Addr,
    pub nodes: Vec<NodePlan>,
    /// kubenet: the route table (empty for Node Subnet).
    pub route_table: RouteTable,
    pub vm: HostPlan,
    pub peer: HostPlan,
    pub on_prem: HostPlan,
    /// Pod Subnet: a host answering at Azure DNS's address, the exception AKS
    /// masquerades in this model (docs/models.md#pod-subnet).
    pub azure_dns: Option<HostPlan>,
    /// The agent's nftables table in every node netns.
    pub nft_table: String,
}

impl Topology {
    pub fn hosts(&self) -> [&HostPlan; 3] {
        [&self.vm, &self.peer, &self.on_prem]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(model: Model) -> LabSpec {
        LabSpec::defaults("aksnl-", model)
    }

    #[test]
    fn defaults_match_aks() {
        let s = spec(Model::NodeSubnet);
        assert_eq!(s.max_pods, 30);
        assert_eq!(spec(Model::Kubenet).max_pods, 110);
        assert_eq!(s.state_dir, PathBuf::from("/run/aksnl-lab"));
        let t = s.topology().unwrap();
        assert_eq!(t.fabric_netns, "aksnl-vnet");
        assert_eq!(t.gateway, Ipv4Addr::new(10, 224, 0, 1));
        assert_eq!(t.vm.range, "10.225.0.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(t.vm.ip, Ipv4Addr::new(10, 225, 0, 4));
        assert_eq!(t.peer.ip, Ipv4Addr::new(10, 100, 0, 4));
        assert_eq!(t.on_prem.ip, Ipv4Addr::new(192, 168, 0, 4));
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.nodes[1].name, "aksnl-node-1");
        assert_eq!(t.nodes[1].pods[0].netns, "aksnl-node-1-pod-0");
        assert_eq!(t.nodes[1].ip, None);
        assert!(t.route_table.routes().is_empty());
    }

    #[test]
    fn kubenet_nodes_get_addresses_pod_cidrs_and_routes() {
        let t = spec(Model::Kubenet).topology().unwrap();
        assert_eq!(t.nodes[0].ip, Some(Ipv4Addr::new(10, 224, 0, 4)));
        assert_eq!(t.nodes[2].ip, Some(Ipv4Addr::new(10, 224, 0, 6)));
        assert_eq!(t.nodes[2].pod_cidr, Some("10.244.2.0/24".parse().unwrap()));
        let r = &t.route_table.routes()[2];
        assert_eq!(
            (r.name.as_str(), r.next_hop),
            ("aksnl-node-2", Ipv4Addr::new(10, 224, 0, 6))
        );
    }

    #[test]
    fn kubenet_refuses_the_401st_node_through_the_route_table() {
        let mut s = spec(Model::Kubenet);
        s.pod_cidr = "10.128.0.0/14".parse().unwrap();
        s.nodes = 400;
        s.pods_per_node = 0;
        assert_eq!(s.topology().unwrap().route_table.routes().len(), 400);
        s.nodes = 401;
        let err = s.topology().unwrap_err();
        assert!(matches!(err, LabError::RouteTable(_)), "{err}");
        assert!(err.to_string().contains("aksnl-node-400"), "{err}");
    }

    #[test]
    fn demo_subnet_leaves_room_for_the_vm() {
        let mut s = spec(Model::NodeSubnet);
        s.subnet = "10.224.0.0/24".parse().unwrap();
        assert_eq!(s.topology().unwrap().vm.ip, Ipv4Addr::new(10, 224, 1, 4));
    }

    #[test]
    fn bad_input_names_the_flag() {
        type Mutation = Box<dyn Fn(&mut LabSpec)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.prefix = "Bad_".into()), "--prefix"),
            (
                Box::new(|s| s.state_dir = "/run/other".into()),
                "--state-dir",
            ),
            (
                Box::new(|s| s.state_dir = "aksnl-rel".into()),
                "--state-dir",
            ),
            (Box::new(|s| s.nodes = 0), "--nodes"),
            (Box::new(|s| s.max_pods = 9), "--max-pods"),
            (Box::new(|s| s.pods_per_node = 31), "--pods-per-node"),
            (
                Box::new(|s| s.subnet = "10.224.0.5/24".parse().unwrap()),
                "--subnet",
            ),
            (
                Box::new(|s| s.subnet = "10.10.0.0/24".parse().unwrap()),
                "--subnet",
            ),
            (
                Box::new(|s| s.peer = "10.230.0.0/16".parse().unwrap()),
                "--peer",
            ),
            (
                Box::new(|s| s.on_prem = "10.100.1.0/24".parse().unwrap()),
                "--on-prem",
            ),
            (
                Box::new(|s| s.on_prem = "172.31.0.0/16".parse().unwrap()),
                "--on-prem",
            ),
            (
                Box::new(|s| s.subnet = "10.239.255.0/24".parse().unwrap()),
                "--vnet",
            ),
        ];
        for (mutate, flag) in cases {
            let mut s = spec(Model::NodeSubnet);
            mutate(&mut s);
            let err = s.topology().unwrap_err();
            assert!(
                matches!(&err, LabError::Invalid { flag: f, .. } if *f == flag),
                "{flag}: {err}"
            );
        }
        let mut k = spec(Model::Kubenet);
        k.pod_cidr = "10.230.0.0/16".parse().unwrap();
        assert!(matches!(
            k.topology(),
            Err(LabError::Invalid {
                flag: "--pod-cidr",
                ..
            })
        ));
        k.pod_cidr = "10.244.0.0/23".parse().unwrap();
        assert!(matches!(
            k.topology(),
            Err(LabError::Invalid {
                flag: "--pod-cidr",
                ..
            })
        ));
    }

    #[test]
    fn pod_subnet_and_overlay_are_validated_before_anything_exists() {
        let ok = spec(Model::PodSubnet);
        assert_eq!(ok.max_pods, 250);
        assert_eq!(ok.title(), "Azure CNI Pod Subnet (dynamic)");
        let t = ok.topology().unwrap();
        assert!(t
            .nodes
            .iter()
            .all(|n| n.ip.is_none() && n.pod_cidr.is_none()));
        type Mutation = Box<dyn Fn(&mut LabSpec)>;
        let cases: Vec<(Model, Mutation, &str, &str)> = vec![
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet = "10.224.0.0/24".parse().unwrap()),
                "--pod-subnet",
                "node subnet",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet = "10.225.0.0/24".parse().unwrap()),
                "--pod-subnet",
                "VM's subnet",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet = "10.10.0.0/16".parse().unwrap()),
                "--pod-subnet",
                "not inside --vnet",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet = "10.226.0.0/29".parse().unwrap()),
                "--pod-subnet",
                "/28",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet = "10.226.0.1/16".parse().unwrap()),
                "--pod-subnet",
                "host bits",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.pod_subnet_name = s.subnet_name.clone()),
                "--pod-subnet-name",
                "node subnet's name",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.peer = "168.63.129.0/24".parse().unwrap()),
                "--peer",
                "Azure DNS",
            ),
            (
                Model::PodSubnet,
                Box::new(|s| s.fabric = Fabric::L2),
                "--fabric",
                "not podsubnet",
            ),
            (
                Model::Overlay,
                Box::new(|s| s.pod_cidr = "10.230.0.0/16".parse().unwrap()),
                "--pod-cidr",
                "overlaps --vnet",
            ),
            (
                Model::Overlay,
                Box::new(|s| s.pod_cidr = "10.100.0.0/16".parse().unwrap()),
                "--pod-cidr",
                "overlaps --peer",
            ),
        ];
        for (model, mutate, flag, why) in cases {
            let mut s = spec(model);
            mutate(&mut s);
            let err = s.topology().unwrap_err();
            assert!(
                matches!(&err, LabError::Invalid { flag: f, .. } if *f == flag)
                    && err.to_string().contains(why),
                "{flag} {why}: {err}"
            );
        }
        // A lab.json written before Pod Subnet existed reads with its defaults.
        let mut v = serde_json::to_value(spec(Model::Kubenet)).unwrap();
        for k in ["podSubnet", "podSubnetName", "podAllocation"] {
            v.as_object_mut().unwrap().remove(k);
        }
        let old: LabSpec = serde_json::from_value(v).unwrap();
        assert_eq!(old.pod_allocation, Allocation::Dynamic);
        assert_eq!(old.pod_subnet, net(DEFAULT_POD_SUBNET));
        assert!("nope"
            .parse::<Model>()
            .unwrap_err()
            .contains("podsubnet or overlay"));
    }

    proptest::proptest! {
        #[test]
        fn names_are_prefixed_and_fit(prefix in "[a-z][a-z0-9-]{0,15}", nodes in 1u32..20, pods in 0u32..10) {
            let mut s = LabSpec::defaults(&prefix, Model::Kubenet);
            s.nodes = nodes;
            s.pods_per_node = pods;
            let t = s.topology().unwrap();
            let mut names = vec![t.fabric_netns.clone(), t.nft_table.clone()];
            names.extend(t.hosts().iter().map(|h| h.netns.clone()));
            for n in &t.nodes {
                names.push(n.netns.clone());
                proptest::prop_assert!(aksnet_netlink::validate_ifname(&n.fabric_link).is_ok());
                names.extend(n.pods.iter().map(|p| p.netns.clone()));
            }
            for n in &names {
                proptest::prop_assert!(n.starts_with(&prefix));
            }
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            proptest::prop_assert_eq!(unique.len(), names.len());
        }
    }

    #[test]
    fn the_l2_fabric_adds_a_router_and_a_vm_inside_the_node_subnet() {
        let mut s = spec(Model::NodeSubnet);
        assert!(s.topology().unwrap().subnet_vm.is_none());
        s.fabric = Fabric::L2;
        let t = s.topology().unwrap();
        assert_eq!(t.router_netns, "aksnl-rtr");
        let vm = t.subnet_vm.unwrap();
        assert_eq!(vm.ip, Ipv4Addr::new(10, 224, 0, 7), ".4 + 3 nodes");
        assert_eq!(vm.gateway, t.gateway);
        assert_eq!("l2".parse::<Fabric>(), Ok(Fabric::L2));
        assert!("vxlan".parse::<Fabric>().unwrap_err().contains("sdn or l2"));
        // A lab.json written before fabrics existed is an sdn lab.
        let mut v = serde_json::to_value(spec(Model::Kubenet)).unwrap();
        v.as_object_mut().unwrap().remove("fabric");
        let old: LabSpec = serde_json::from_value(v).unwrap();
        assert_eq!(old.fabric, Fabric::Sdn);
    }
}
