//! Azure subnet arithmetic: reserved addresses and per-node up-front reservation
//! for Azure CNI Node Subnet (issue 3).
//!
//! Facts this module encodes (docs/azure.md#reserved-addresses, #up-front-reservation,
//! #max-pods):
//! - Azure keeps 5 addresses of every subnet: the network address, `.1` (gateway),
//!   `.2` and `.3` (Azure DNS mapping) and the last one (broadcast). Usable =
//!   `2^(32-p) - 5`, so a /24 has 251.
//! - Each Node Subnet node reserves, up front, its own address plus `maxPods` pod
//!   addresses: `1 + maxPods` per node, `required = (nodes + surge) × (maxPods + 1)`.
//!   A /24 at maxPods 30 holds 8 nodes (248 addresses), a /22 holds 32.
//! - maxPods is 10..=250 (docs/azure.md#max-pods; the RP's `InvalidParameter` for
//!   values outside it, Azure/AKS#931).
//! - Running out is refused with the RP's `InsufficientSubnetSize` message shape.
//!
//! IPv4 only for now: Node Subnet is IPv4-only in AKS (dual-stack is an Overlay
//! feature, docs/azure.md#overlay), so nothing here handles IPv6.
//!
//! Pure: no I/O. The cluster store (crates/aksnet-store) calls [`pick_node_addresses`]
//! inside its compare-and-swap loop.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Addresses Azure keeps in every subnet (network, .1, .2, .3, broadcast).
pub const AZURE_RESERVED_PER_SUBNET: u64 = 5;

/// Smallest maxPods AKS accepts (docs/azure.md#max-pods).
pub const MAX_PODS_MIN: u32 = 10;
/// Largest maxPods AKS accepts (docs/azure.md#max-pods).
pub const MAX_PODS_MAX: u32 = 250;
/// AKS's default maxPods for Azure CNI Node Subnet from the CLI (docs/azure.md#max-pods).
pub const DEFAULT_MAX_PODS_NODE_SUBNET: u32 = 30;
/// AKS's default maxPods for kubenet (docs/azure.md#max-pods).
pub const DEFAULT_MAX_PODS_KUBENET: u32 = 110;
/// AKS's default maxPods for Azure CNI Overlay and `--network-plugin none`
/// (docs/azure.md#max-pods); the planner uses it for Pod Subnet too (docs/plan.md, decisions).
pub const DEFAULT_MAX_PODS_OVERLAY: u32 = 250;
/// Most pods an Azure CNI Overlay node runs: every node gets a fixed /24 of the cluster's
/// pod CIDR and runs up to 250 pods
/// (https://learn.microsoft.com/en-us/azure/aks/concepts-network-azure-cni-overlay;
/// docs/azure.md#overlay).
pub const OVERLAY_MAX_PODS_PER_NODE: u32 = 250;
/// The prefix length of an Overlay node's block of the pod CIDR, fixed by AKS (same source).
pub const OVERLAY_NODE_PREFIX_LEN: u8 = 24;
/// Why AKS refuses an Overlay pod CIDR that overlaps a network it knows (Overlay article: the
/// pod CIDR may overlap neither the cluster's subnet nor a network connected to it by
/// peering, ExpressRoute or VPN).
pub const OVERLAY_POD_CIDR_OVERLAP_REASON: &str =
    "an Azure CNI Overlay pod CIDR must not overlap the cluster subnet or any network \
     connected to it (VNet peering, ExpressRoute, VPN)";

/// Azure's virtual public IP for DNS, DHCP and the health probe, and the Instance
/// Metadata Service: the only destinations AKS masquerades pod traffic to in Pod Subnet
/// mode (its ip-masq-agent config lists every other range as non-masquerade:
/// `Azure/azure-container-networking: test/integration/manifests/cilium/v1.18/ebpf/podsubnet/static/azure-dns-imds-ip-masq-agent-config.yaml`;
/// https://learn.microsoft.com/en-us/azure/virtual-network/what-is-ip-address-168-63-129-16,
/// https://learn.microsoft.com/en-us/azure/virtual-machines/instance-metadata-service;
/// docs/azure.md#snat-defaults-per-mode).
pub const AZURE_DNS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// See [`AZURE_DNS`].
pub const AZURE_IMDS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The IPv4 space minus `holes` (host addresses), as the fewest prefixes: what an
/// ip-masq-agent `nonMasqueradeCIDRs` list must hold to masquerade traffic to `holes`
/// only (Pod Subnet's list is this for [`AZURE_DNS`] and [`AZURE_IMDS`]).
pub fn ipv4_space_without(holes: &[Ipv4Addr]) -> Vec<Ipv4Net> {
    let mut out = vec![Ipv4Net::default()];
    for hole in holes {
        let mut next = Vec::with_capacity(out.len() + 32);
        for net in out {
            next.extend(net_without(net, *hole));
        }
        out = next;
    }
    out.sort();
    out
}

/// `net` minus one address: itself if it does not hold it, else the halves on
/// the way down to the address, without it.
fn net_without(net: Ipv4Net, hole: Ipv4Addr) -> Vec<Ipv4Net> {
    if !net.contains(&hole) {
        return vec![net];
    }
    let mut out = Vec::new();
    let mut cur = net;
    while cur.prefix_len() < 32 {
        let Ok(halves) = cur.subnets(cur.prefix_len() + 1) else {
            break;
        };
        for half in halves {
            if half.contains(&hole) {
                cur = half;
            } else {
                out.push(half);
            }
        }
    }
    out
}

/// Routes an Azure route table holds as AKS's kubenet article documents it, hence
/// the most nodes of a kubenet cluster (docs/azure.md#kubenet-routes). The lab's
/// route table and `aksnet agent --kubenet-routes` both stop there.
pub const ROUTE_TABLE_LIMIT: usize = 400;

/// Longest prefix Azure allows for a subnet: a /29 has 8 addresses, 3 usable.
/// Anything smaller cannot even hold Azure's 5 reserved addresses plus one.
pub const SMALLEST_SUBNET_PREFIX: u8 = 29;

/// Bad input to the arithmetic. Every variant names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureError {
    #[error("maxPods {value} is out of range: Azure CNI Node Subnet accepts {MAX_PODS_MIN} to {MAX_PODS_MAX}")]
    MaxPodsOutOfRange { value: u32 },
    #[error(
        "subnet {cidr} is smaller than /{SMALLEST_SUBNET_PREFIX}, the smallest subnet Azure allows \
         (it keeps 5 addresses of every subnet)"
    )]
    SubnetTooSmall { cidr: Ipv4Net },
    #[error("subnet {cidr} has host bits set; did you mean {network}?")]
    HostBitsSet { cidr: Ipv4Net, network: Ipv4Net },
}

/// A validated maxPods value (10..=250).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxPods(u32);

impl MaxPods {
    pub fn new(value: u32) -> Result<Self, AzureError> {
        if (MAX_PODS_MIN..=MAX_PODS_MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(AzureError::MaxPodsOutOfRange { value })
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Addresses one node reserves: its own plus one per pod (`1 + maxPods`).
    pub fn per_node_reservation(self) -> u64 {
        node_subnet_addresses_per_node(u64::from(self.0))
    }
}

impl Default for MaxPods {
    fn default() -> Self {
        Self(DEFAULT_MAX_PODS_NODE_SUBNET)
    }
}

impl std::fmt::Display for MaxPods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Addresses one Node Subnet node takes from its subnet, up front: its own plus one per pod,
/// `maxPods + 1` (docs/azure.md#up-front-reservation). Unvalidated, for a planner that reports
/// an out-of-range maxPods as a finding and still computes; [`MaxPods`] validates.
pub fn node_subnet_addresses_per_node(max_pods: u64) -> u64 {
    max_pods.saturating_add(1)
}

/// Usable addresses of an IPv4 subnet of prefix length `prefix`: `2^(32-p) - 5`, 0 when the
/// subnet is smaller than Azure's reserved addresses or the prefix is not IPv4
/// (docs/azure.md#reserved-addresses; a /24 has 251).
pub fn usable_addresses(prefix: u8) -> u64 {
    if prefix > 32 {
        return 0;
    }
    (1u64 << (32 - u32::from(prefix))).saturating_sub(AZURE_RESERVED_PER_SUBNET)
}

/// Two networks share at least one address (one contains the other's network address).
/// Networks of different families never overlap.
pub fn overlaps(a: &ipnet::IpNet, b: &ipnet::IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `required = (nodes + surge) × (maxPods + 1)` (docs/azure.md#up-front-reservation;
/// the docs' `(nodes + surge) + (nodes + surge) × maxPods`).
pub fn required_addresses(nodes: u64, surge: u64, max_pods: MaxPods) -> u64 {
    nodes
        .saturating_add(surge)
        .saturating_mul(max_pods.per_node_reservation())
}

/// A validated node subnet: IPv4, no host bits, /29 or larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeSubnet {
    cidr: Ipv4Net,
}

impl NodeSubnet {
    pub fn new(cidr: Ipv4Net) -> Result<Self, AzureError> {
        if cidr.prefix_len() > SMALLEST_SUBNET_PREFIX {
            return Err(AzureError::SubnetTooSmall { cidr });
        }
        if cidr.trunc() != cidr {
            return Err(AzureError::HostBitsSet {
                cidr,
                network: cidr.trunc(),
            });
        }
        Ok(Self { cidr })
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// Total addresses in the subnet, `2^(32-p)`.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.cidr.prefix_len()))
    }

    /// `2^(32-p) - 5` (docs/azure.md#reserved-addresses; a /24 has 251).
    pub fn usable(&self) -> u64 {
        usable_addresses(self.cidr.prefix_len())
    }

    /// The 5 addresses Azure keeps: network, .1 gateway, .2 and .3 DNS mapping, broadcast.
    pub fn azure_reserved(&self) -> [Ipv4Addr; 5] {
        let net = u32::from(self.cidr.network());
        let bcast = u32::from(self.cidr.broadcast());
        [
            Ipv4Addr::from(net),
            Ipv4Addr::from(net + 1),
            Ipv4Addr::from(net + 2),
            Ipv4Addr::from(net + 3),
            Ipv4Addr::from(bcast),
        ]
    }

    pub fn is_azure_reserved(&self, ip: Ipv4Addr) -> bool {
        self.azure_reserved().contains(&ip)
    }

    /// True when `ip` is in the subnet and not one of Azure's 5.
    pub fn is_usable(&self, ip: Ipv4Addr) -> bool {
        self.cidr.contains(&ip) && !self.is_azure_reserved(ip)
    }

    /// First and last usable address (`.4` and broadcast − 1 in a /24).
    pub fn usable_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let first = u32::from(self.cidr.network()) + 4;
        let last = u32::from(self.cidr.broadcast()) - 1;
        (Ipv4Addr::from(first), Ipv4Addr::from(last))
    }

    /// How many nodes of one maxPods fit in the empty subnet: `floor(U / (P+1))`
    /// (docs/azure.md#up-front-reservation: /24 at 30 → 8, /22 at 30 → 32, /24 at 110 → 2).
    pub fn max_nodes(&self, max_pods: MaxPods) -> u64 {
        self.usable() / max_pods.per_node_reservation()
    }

    /// Usable addresses not in `reserved` (addresses outside the subnet and Azure's
    /// 5 in `reserved` are ignored).
    pub fn free(&self, reserved: &BTreeSet<Ipv4Addr>) -> u64 {
        let (first, last) = self.usable_range();
        let taken = reserved.range(first..=last).count() as u64;
        self.usable() - taken
    }
}

impl std::fmt::Display for NodeSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cidr.fmt(f)
    }
}

/// The control plane's refusal when a subnet lacks room, in the RP's message shape
/// (docs/azure.md#up-front-reservation; captured in Azure/AKS#3653, #456, AKS-Construction#701):
/// `InsufficientSubnetSize: Pre-allocated IPs <need> exceeds IPs available <free>
/// in Subnet Cidr <cidr>, Subnet Name <name>`.
///
/// How the numbers are counted (the RP's code is not public, so this is our decision):
/// - `need` is what the refused operation asks for. A join is one node, so it is
///   `1 + maxPods` (the RP reports the sum over the operation's nodes; ours is always one).
/// - `free` is the subnet's usable addresses (`2^(32-p) - 5`, so an empty /24 says 251,
///   matching the captured "IPs available 251 in Subnet Cidr .../24") minus the
///   addresses already reserved by nodes in the cluster store and by the subnet's
///   other tenants (VMs, load balancers: `aksnet subnet reserve`), as the RP
///   subtracts other NICs in the subnet.
///
/// We keep the message to the part before the RP's autoscaler sentence and link,
/// which are advice, not data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("InsufficientSubnetSize: Pre-allocated IPs {need} exceeds IPs available {free} in Subnet Cidr {cidr}, Subnet Name {name}")]
pub struct InsufficientSubnetSize {
    pub need: u64,
    pub free: u64,
    pub cidr: Ipv4Net,
    pub name: String,
}

/// What one node receives in a join: its own address and its pods' addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddresses {
    pub node_ip: Ipv4Addr,
    pub pod_ips: Vec<Ipv4Addr>,
}

/// Picks `1 + maxPods` addresses for a joining node from `subnet`, given the set
/// already reserved by other nodes. Lowest free address first (deterministic and
/// compact, so `node list` shows ranges); the first is the node's own address.
/// Never returns one of Azure's 5 reserved addresses or one in `reserved`.
///
/// Addresses need not be contiguous, so a subnet with `free >= need` always fits:
/// there is no fragmentation failure.
pub fn pick_node_addresses(
    subnet: &NodeSubnet,
    subnet_name: &str,
    max_pods: MaxPods,
    reserved: &BTreeSet<Ipv4Addr>,
) -> Result<NodeAddresses, InsufficientSubnetSize> {
    pick_addresses(
        subnet,
        subnet_name,
        max_pods.per_node_reservation(),
        reserved,
    )
}

/// Picks only the node's own address (a Pod Subnet node: its pods take
/// addresses of the pod subnet, docs/azure.md#pod-subnet), as
/// [`pick_node_addresses`] does with no pod addresses.
pub fn pick_node_address(
    subnet: &NodeSubnet,
    subnet_name: &str,
    reserved: &BTreeSet<Ipv4Addr>,
) -> Result<NodeAddresses, InsufficientSubnetSize> {
    pick_addresses(subnet, subnet_name, 1, reserved)
}

fn pick_addresses(
    subnet: &NodeSubnet,
    subnet_name: &str,
    need: u64,
    reserved: &BTreeSet<Ipv4Addr>,
) -> Result<NodeAddresses, InsufficientSubnetSize> {
    let free = subnet.free(reserved);
    if need > free {
        return Err(InsufficientSubnetSize {
            need,
            free,
            cidr: subnet.cidr(),
            name: subnet_name.to_string(),
        });
    }
    let (first, last) = subnet.usable_range();
    let (first, last) = (u32::from(first), u32::from(last));
    // Walk the gaps between reserved addresses: O(reserved + need), not O(subnet).
    let mut picked: Vec<Ipv4Addr> = Vec::with_capacity(need as usize);
    let mut cursor = first;
    let mut taken = reserved
        .range(Ipv4Addr::from(first)..=Ipv4Addr::from(last))
        .map(|ip| u32::from(*ip))
        .peekable();
    while (picked.len() as u64) < need && cursor <= last {
        match taken.peek() {
            Some(&t) if t == cursor => {
                taken.next();
            }
            _ => picked.push(Ipv4Addr::from(cursor)),
        }
        cursor += 1;
    }
    // `free >= need` guarantees enough were found; check anyway rather than index blindly.
    let mut it = picked.into_iter();
    match it.next() {
        Some(node_ip) => Ok(NodeAddresses {
            node_ip,
            pod_ips: it.collect(),
        }),
        None => Err(InsufficientSubnetSize {
            need,
            free,
            cidr: subnet.cidr(),
            name: subnet_name.to_string(),
        }),
    }
}

/// Collapses addresses into inclusive runs of consecutive addresses, in order
/// (for display: `10.240.0.5-10.240.0.34`). Input need not be sorted; duplicates
/// are dropped.
pub fn address_runs(ips: &[Ipv4Addr]) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let sorted: BTreeSet<u32> = ips.iter().map(|ip| u32::from(*ip)).collect();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for ip in sorted {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(ip) => *end = ip,
            _ => runs.push((ip, ip)),
        }
    }
    runs.into_iter()
        .map(|(a, b)| (Ipv4Addr::from(a), Ipv4Addr::from(b)))
        .collect()
}

/// `address_runs` rendered as `a-b,c,d-e`.
pub fn format_address_runs(ips: &[Ipv4Addr]) -> String {
    address_runs(ips)
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> NodeSubnet {
        NodeSubnet::new(s.parse().expect("test cidr")).expect("valid subnet")
    }

    fn mp(v: u32) -> MaxPods {
        MaxPods::new(v).expect("valid maxPods")
    }

    #[test]
    fn planner_facts() {
        assert_eq!(usable_addresses(24), 251);
        assert_eq!(usable_addresses(29), 3);
        assert_eq!(usable_addresses(30), 0);
        assert_eq!(usable_addresses(64), 0);
        assert_eq!(node_subnet_addresses_per_node(30), 31);
        assert_eq!(node_subnet_addresses_per_node(u64::MAX), u64::MAX);
        let n = |s: &str| s.parse::<ipnet::IpNet>().expect("test cidr");
        assert!(overlaps(&n("10.0.0.0/8"), &n("10.1.2.0/24")));
        assert!(overlaps(&n("10.1.2.0/24"), &n("10.0.0.0/8")));
        assert!(!overlaps(&n("10.0.0.0/24"), &n("10.0.1.0/24")));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("fd00::/8")));
    }

    #[test]
    fn the_ipv4_space_without_azure_dns_and_imds() {
        let nets = ipv4_space_without(&[AZURE_DNS, AZURE_IMDS]);
        // One address alone leaves 32 prefixes; these two share their first 7
        // bits (168 and 169), so 7 siblings are common and the /8 split keeps
        // neither sibling: 32 + 32 - 7 - 2 = 55.
        assert_eq!(nets.len(), 55, "{nets:?}");
        let total: u64 = nets.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(total, (1u64 << 32) - 2);
        for hole in [AZURE_DNS, AZURE_IMDS] {
            assert!(!nets.iter().any(|n| n.contains(&hole)), "{hole}");
        }
        for kept in [
            "168.63.129.17",
            "169.254.169.253",
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            let ip: Ipv4Addr = kept.parse().expect("ip");
            assert!(nets.iter().any(|n| n.contains(&ip)), "{kept}");
        }
    }

    /// Joins nodes until the subnet refuses; returns the nodes and the refusal.
    fn fill(
        subnet: &NodeSubnet,
        max_pods: MaxPods,
    ) -> (Vec<NodeAddresses>, InsufficientSubnetSize) {
        let mut reserved = BTreeSet::new();
        let mut nodes = Vec::new();
        loop {
            match pick_node_addresses(subnet, "aks-subnet", max_pods, &reserved) {
                Ok(n) => {
                    reserved.insert(n.node_ip);
                    reserved.extend(n.pod_ips.iter().copied());
                    nodes.push(n);
                }
                Err(e) => return (nodes, e),
            }
        }
    }

    #[test]
    fn slash24_at_30_fits_exactly_8_nodes_and_the_9th_is_refused() {
        let s = net("10.240.0.0/24");
        assert_eq!(s.usable(), 251);
        assert_eq!(s.max_nodes(mp(30)), 8);
        let (nodes, err) = fill(&s, mp(30));
        assert_eq!(nodes.len(), 8);
        assert_eq!(nodes.iter().map(|n| n.pod_ips.len()).sum::<usize>(), 240);
        assert_eq!(nodes[0].node_ip, Ipv4Addr::new(10, 240, 0, 4));
        assert_eq!(nodes[0].pod_ips[0], Ipv4Addr::new(10, 240, 0, 5));
        assert_eq!(nodes[0].pod_ips[29], Ipv4Addr::new(10, 240, 0, 34));
        assert_eq!(
            err.to_string(),
            "InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs available 3 in Subnet \
             Cidr 10.240.0.0/24, Subnet Name aks-subnet"
        );
    }

    #[test]
    fn empty_slash24_reports_251_available() {
        let s = net("10.0.0.0/24");
        let e = pick_node_addresses(&s, "x", mp(250), &BTreeSet::new()).expect("251 fits 251");
        assert_eq!(e.pod_ips.len(), 250);
        let s = net("10.0.0.0/25");
        let e = pick_node_addresses(&s, "small", mp(250), &BTreeSet::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "InsufficientSubnetSize: Pre-allocated IPs 251 exceeds IPs available 123 in Subnet \
             Cidr 10.0.0.0/25, Subnet Name small"
        );
    }

    #[test]
    fn slash22_fits_32_and_slash24_at_110_fits_2() {
        let (nodes, _) = fill(&net("10.240.0.0/22"), mp(30));
        assert_eq!(nodes.len(), 32);
        assert_eq!(net("10.240.0.0/22").max_nodes(mp(30)), 32);
        let (nodes, _) = fill(&net("10.240.0.0/24"), mp(110));
        assert_eq!(nodes.len(), 2);
    }

    #[test]
    fn max_pods_range_is_10_to_250_and_errors_name_the_value() {
        assert_eq!(
            MaxPods::new(9),
            Err(AzureError::MaxPodsOutOfRange { value: 9 })
        );
        assert_eq!(
            MaxPods::new(251),
            Err(AzureError::MaxPodsOutOfRange { value: 251 })
        );
        assert!(MaxPods::new(9)
            .unwrap_err()
            .to_string()
            .contains("maxPods 9 "));
        assert!(MaxPods::new(251)
            .unwrap_err()
            .to_string()
            .contains("maxPods 251 "));
        assert!(MaxPods::new(0).is_err());
        assert!(MaxPods::new(u32::MAX).is_err());
        assert_eq!(mp(10).get(), 10);
        assert_eq!(mp(250).get(), 250);
        assert_eq!(MaxPods::default().get(), 30);
    }

    #[test]
    fn required_matches_the_docs_examples() {
        // docs/azure.md#up-front-reservation: 50 nodes, surge 1, 30 pods → 1,581; +10 → 1,891.
        assert_eq!(required_addresses(50, 1, mp(30)), 1581);
        assert_eq!(required_addresses(60, 1, mp(30)), 1891);
        assert_eq!(required_addresses(8, 0, mp(30)), 248);
    }

    #[test]
    fn subnet_validation_names_the_value() {
        let e = NodeSubnet::new("10.0.0.0/30".parse().expect("cidr")).unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/30"), "{e}");
        let e = NodeSubnet::new("10.0.0.7/24".parse().expect("cidr")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.0.0.7/24 has host bits set; did you mean 10.0.0.0/24?"
        );
        assert_eq!(net("10.0.0.0/29").usable(), 3);
        assert_eq!(net("0.0.0.0/0").usable(), (1u64 << 32) - 5);
    }

    #[test]
    fn azure_reserved_addresses_of_a_slash24() {
        let s = net("192.168.7.0/24");
        assert_eq!(
            s.azure_reserved(),
            [
                Ipv4Addr::new(192, 168, 7, 0),
                Ipv4Addr::new(192, 168, 7, 1),
                Ipv4Addr::new(192, 168, 7, 2),
                Ipv4Addr::new(192, 168, 7, 3),
                Ipv4Addr::new(192, 168, 7, 255),
            ]
        );
    }

    /// Exhaustive for /28 and /29: every subset of the usable addresses as the
    /// already-reserved set. A /29 has 3 usable and a /28 11, so every subset is
    /// 2^3 + 2^11 cases. maxPods is at least 10, so a /29 never fits a node and a /28
    /// fits one only when 11 addresses are free.
    #[test]
    fn exhaustive_small_subnets_never_hand_out_azure_or_taken_addresses() {
        for (cidr, base) in [("10.1.2.0/29", 0u32), ("10.1.2.16/28", 16)] {
            let s = net(cidr);
            let (first, last) = s.usable_range();
            let usable: Vec<Ipv4Addr> = (u32::from(first)..=u32::from(last))
                .map(Ipv4Addr::from)
                .collect();
            assert_eq!(usable.len() as u64, s.usable());
            assert_eq!(u32::from(first) & 0xff, base + 4);
            for mask in 0u32..(1 << usable.len()) {
                let reserved: BTreeSet<Ipv4Addr> = usable
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, ip)| *ip)
                    .collect();
                let free = s.usable() - reserved.len() as u64;
                assert_eq!(s.free(&reserved), free);
                for pods in [10u32, 11] {
                    match pick_node_addresses(&s, "n", mp(pods), &reserved) {
                        Ok(n) => {
                            assert!(free > u64::from(pods));
                            let all: Vec<Ipv4Addr> =
                                std::iter::once(n.node_ip).chain(n.pod_ips).collect();
                            assert_eq!(all.len() as u32, pods + 1);
                            for ip in &all {
                                assert!(s.is_usable(*ip), "{ip} not usable in {cidr}");
                                assert!(!reserved.contains(ip), "{ip} already reserved");
                            }
                        }
                        Err(e) => {
                            assert!(free < u64::from(pods) + 1);
                            assert_eq!(e.free, free);
                            assert_eq!(e.need, u64::from(pods) + 1);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn address_runs_collapse_consecutive_addresses() {
        let ips: Vec<Ipv4Addr> = [5u8, 6, 7, 9, 11, 12]
            .iter()
            .map(|d| Ipv4Addr::new(10, 0, 0, *d))
            .collect();
        assert_eq!(
            format_address_runs(&ips),
            "10.0.0.5-10.0.0.7,10.0.0.9,10.0.0.11-10.0.0.12"
        );
        assert_eq!(format_address_runs(&[]), "");
    }

    proptest! {
        /// Any subnet from /16 to /29, any maxPods, any pre-reserved set (some inside,
        /// some outside the subnet, some on Azure's 5): the pick is disjoint from the
        /// reserved set, avoids Azure's 5, has exactly 1 + maxPods distinct addresses,
        /// takes the lowest free ones, and fails exactly when free < need.
        #[test]
        fn pick_is_sound(
            prefix in 16u8..=29,
            base in any::<u32>(),
            pods in 10u32..=250,
            offsets in proptest::collection::vec(any::<u32>(), 0..300),
            outside in proptest::collection::vec(any::<u32>(), 0..5),
        ) {
            let cidr = Ipv4Net::new(Ipv4Addr::from(base), prefix).expect("prefix <= 32").trunc();
            let s = NodeSubnet::new(cidr).expect("valid");
            let size = s.size() as u32;
            let netw = u32::from(cidr.network());
            let mut reserved: BTreeSet<Ipv4Addr> = offsets
                .iter()
                .map(|o| Ipv4Addr::from(netw.wrapping_add(o % size)))
                .collect();
            reserved.extend(outside.iter().map(|o| Ipv4Addr::from(*o)));
            let taken_usable = reserved.iter().filter(|ip| s.is_usable(**ip)).count() as u64;
            let free = s.usable() - taken_usable;
            prop_assert_eq!(s.free(&reserved), free);
            let need = u64::from(pods) + 1;
            match pick_node_addresses(&s, "p", mp(pods), &reserved) {
                Ok(n) => {
                    prop_assert!(free >= need);
                    let all: Vec<Ipv4Addr> = std::iter::once(n.node_ip).chain(n.pod_ips.iter().copied()).collect();
                    prop_assert_eq!(all.len() as u64, need);
                    let uniq: BTreeSet<Ipv4Addr> = all.iter().copied().collect();
                    prop_assert_eq!(uniq.len() as u64, need);
                    for ip in &all {
                        prop_assert!(s.is_usable(*ip));
                        prop_assert!(!s.is_azure_reserved(*ip));
                        prop_assert!(!reserved.contains(ip));
                    }
                    // Lowest free first: ascending, and nothing free below the highest pick was skipped.
                    prop_assert!(all.windows(2).all(|w| w[0] < w[1]));
                    let (first, _) = s.usable_range();
                    let highest = *all.last().expect("non-empty");
                    let skipped = (u32::from(first)..=u32::from(highest))
                        .map(Ipv4Addr::from)
                        .filter(|ip| !reserved.contains(ip) && !uniq.contains(ip))
                        .count();
                    prop_assert_eq!(skipped, 0);
                }
                Err(e) => {
                    prop_assert!(free < need);
                    prop_assert_eq!(e.need, need);
                    prop_assert_eq!(e.free, free);
                }
            }
        }
    }
}
