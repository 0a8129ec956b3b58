//! The node's local pool: the addresses `aksnet node join` reserved for this node
//! in the cluster store, handed to the plugin through a file so that ADD never
//! calls the cluster store (issue 3).
//!
//! On disk: `<dataDir>/node-pool.json`, written atomically (temp, fsync, rename,
//! directory fsync) by `aksnet node join`, read by `aksnet-cni` in `nodesubnet` and
//! `podsubnet` modes.
//!
//! Version 1 (Node Subnet) files load unchanged. A pool of a Pod Subnet node
//! carries [`NodePool::pod_subnet`] and is written as version 2, so an aksnet
//! that predates it refuses the file naming the version instead of reading pod
//! addresses as node-subnet ones.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::allocator::ValidPool;
use crate::azure::{
    overlaps, MaxPods, NodeSubnet, OVERLAY_MAX_PODS_PER_NODE, OVERLAY_NODE_PREFIX_LEN,
};
use crate::podsubnet;

/// File name of the node pool inside a node's data directory.
pub const NODE_POOL_FILE: &str = "node-pool.json";

/// Format version of a Node Subnet [`NodePool`] (no `podSubnet`).
pub const NODE_POOL_VERSION: u32 = 1;
/// Format version of a pool with `podSubnet` (issue 15).
pub const NODE_POOL_VERSION_POD_SUBNET: u32 = 2;
/// Format version of a pool with `overlay` (issue 15, docs/models.md#overlay).
pub const NODE_POOL_VERSION_OVERLAY: u32 = 3;

/// Where an Overlay node's pod addresses come from (`node-pool.json`'s `overlay`):
/// its /24 of the cluster pod CIDR, outside the VNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverlayPool {
    /// The cluster pod CIDR (what the agent leaves unmasqueraded).
    pub cluster_pod_cidr: Ipv4Net,
    /// The node's block of it (a /24); `podIps` lie in it and carry its prefix.
    pub pod_cidr: Ipv4Net,
}

impl OverlayPool {
    /// The pod addresses an Overlay node of `max_pods` hands out: the first `max_pods`
    /// of its block from `.1` (aksnet's choice: never the block's first or last address,
    /// which some stacks treat as network and broadcast addresses). Fewer when the block
    /// is smaller than `max_pods + 2` addresses.
    pub fn pod_ips(&self, max_pods: u32) -> Vec<Ipv4Addr> {
        overlay_pod_ips(self.pod_cidr, max_pods)
    }

    /// Whether `ip` is one of the block's pod addresses at the most pods an
    /// Overlay node runs ([`Self::pod_ips`] of 250), computed without listing them.
    pub fn allows(&self, ip: Ipv4Addr) -> bool {
        let size = 1u64 << (32 - u32::from(self.pod_cidr.prefix_len()));
        let last = size
            .saturating_sub(2)
            .min(u64::from(OVERLAY_MAX_PODS_PER_NODE));
        let offset =
            u64::from(u32::from(ip)).wrapping_sub(u64::from(u32::from(self.pod_cidr.network())));
        self.pod_cidr.contains(&ip) && (1..=last).contains(&offset)
    }
}

/// [`OverlayPool::pod_ips`] of the block `pod_cidr`.
pub fn overlay_pod_ips(pod_cidr: Ipv4Net, max_pods: u32) -> Vec<Ipv4Addr> {
    pod_cidr
        .hosts()
        .skip_while(|ip| *ip == pod_cidr.network())
        .filter(|ip| *ip != pod_cidr.broadcast())
        .take(max_pods as usize)
        .collect()
}

/// Where a Pod Subnet node's pod addresses come from (`node-pool.json`'s
/// `podSubnet`): its `podIps` are addresses of this subnet, not of the node subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSubnetPool {
    /// The pod subnet's name.
    pub name: String,
    pub cidr: Ipv4Net,
    pub allocation: crate::podsubnet::Allocation,
    /// The /28 blocks the node holds (first addresses); `podIps` lie in them.
    pub blocks: Vec<Ipv4Addr>,
    /// Blocks of a dynamic node on their way back to the store: no longer in
    /// `podIps`, released at the next round if no pod took one of their
    /// addresses meanwhile (aksnet_store::pod_pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returning: Vec<Ipv4Addr>,
}

/// What a node holds in its subnet: its own address and `maxPods` pod addresses,
/// reserved up front as AKS does for Azure CNI Node Subnet ("the equivalent
/// number of IP addresses per node are then reserved up front", docs/azure.md#node-subnet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub version: u32,
    /// Node name as joined (`aksnet node join --node`).
    pub node: String,
    /// Subnet name (Azure's `Subnet Name` in InsufficientSubnetSize).
    pub subnet_name: String,
    /// The node subnet, e.g. 10.240.0.0/24; Node Subnet pods get addresses with
    /// this prefix length.
    pub subnet: Ipv4Net,
    /// The node's own (primary) address.
    pub node_ip: Ipv4Addr,
    /// maxPods as joined (10..=250).
    pub max_pods: u32,
    /// The pod addresses reserved for this node: exactly `max_pods` of the node
    /// subnet (Node Subnet), `max_pods` of the pod subnet (static block), or
    /// what the node holds now (dynamic, at most its blocks' addresses).
    pub pod_ips: Vec<Ipv4Addr>,
    /// Set for a Pod Subnet node (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<PodSubnetPool>,
    /// Set for an Overlay node (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<OverlayPool>,
}

impl NodePool {
    /// The network pods take their prefix length from: the pod subnet's or the
    /// overlay block's when there is one, else the node subnet's.
    pub fn pod_prefix(&self) -> Ipv4Net {
        match (&self.pod_subnet, &self.overlay) {
            (Some(p), _) => p.cidr,
            (None, Some(o)) => o.pod_cidr,
            (None, None) => self.subnet,
        }
    }

    /// The format version this pool is written with.
    pub fn expected_version(&self) -> u32 {
        match (&self.pod_subnet, &self.overlay) {
            (Some(_), _) => NODE_POOL_VERSION_POD_SUBNET,
            (None, Some(_)) => NODE_POOL_VERSION_OVERLAY,
            (None, None) => NODE_POOL_VERSION,
        }
    }

    /// The model the node joined in, as the plugin's `mode` names it.
    pub fn model(&self) -> &'static str {
        match (&self.pod_subnet, &self.overlay) {
            (Some(_), _) => "podsubnet",
            (None, Some(_)) => "overlay",
            (None, None) => "nodesubnet",
        }
    }

    /// Checks every field (the one validator of the pool file; the cluster store's
    /// record is checked by the same rules, [`NodeRecord::validate`]).
    pub fn validate(&self) -> Result<(), NodePoolInvalid> {
        self.check().map(drop)
    }

    /// Checks the pool once and returns the allocator's pool of its pod addresses
    /// (what the plugin hands out). Stricter than [`crate::allocator::Pool::validate`]
    /// (which it replaces for a node pool): every pod address is a usable one of its
    /// subnet or block, so the allocator's own checks would find nothing more.
    pub fn address_pool(&self) -> Result<ValidPool, NodePoolInvalid> {
        let pos = self.check()?;
        if self.pod_ips.is_empty() {
            return Err(invalid(
                "podIps",
                "0 addresses".to_string(),
                "the node has no pod address to hand out".to_string(),
            ));
        }
        Ok(ValidPool::from_checked_list(
            IpNet::V4(self.pod_prefix()),
            self.pod_ips.iter().copied().map(IpAddr::V4).collect(),
            pos,
        ))
    }

    /// The checks of [`Self::validate`]; returns each pod address's position.
    fn check(&self) -> Result<HashMap<IpAddr, usize>, NodePoolInvalid> {
        if self.version != self.expected_version() {
            return Err(invalid(
                "version",
                self.version.to_string(),
                format!(
                    "this aksnet understands version {NODE_POOL_VERSION} (Node Subnet), \
                     {NODE_POOL_VERSION_POD_SUBNET} (with podSubnet) and \
                     {NODE_POOL_VERSION_OVERLAY} (with overlay); this file's content is \
                     version {}",
                    self.expected_version()
                ),
            ));
        }
        let (subnet, max_pods) = check_node_share(self.subnet, self.max_pods, self.node_ip)?;
        match (&self.pod_subnet, &self.overlay) {
            (Some(_), Some(_)) => Err(invalid(
                "overlay",
                "set".to_string(),
                "a pool has podSubnet or overlay, not both".to_string(),
            )),
            (None, Some(o)) => {
                check_overlay(self, o)?;
                check_pod_ips(self.node_ip, &self.pod_ips, self.pod_prefix(), |ip| {
                    o.allows(ip)
                })
            }
            (None, None) => {
                check_count(self.pod_ips.len(), self.max_pods, "maxPods is")?;
                check_pod_ips(self.node_ip, &self.pod_ips, self.subnet, |ip| {
                    subnet.is_usable(ip)
                })
            }
            (Some(ps), None) => {
                check_pod_subnet(self, ps, max_pods)?;
                let first = ps.blocks.iter().min().copied();
                check_pod_ips(self.node_ip, &self.pod_ips, ps.cidr, |ip| {
                    ps.blocks.contains(&podsubnet::block_of(ip)) && Some(ip) != first
                })
            }
        }
    }
}

/// Parses and checks a pool file's content (the one parse of `node-pool.json`).
pub fn parse_node_pool(bytes: &[u8]) -> Result<NodePool, NodePoolParseError> {
    let pool: NodePool =
        serde_json::from_slice(bytes).map_err(|e| NodePoolParseError::Json(e.to_string()))?;
    pool.validate()?;
    Ok(pool)
}

/// Why a pool file's content is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodePoolParseError {
    /// Not JSON of the pool's shape (serde's message names the line and column).
    #[error("{0}")]
    Json(String),
    #[error(transparent)]
    Invalid(#[from] NodePoolInvalid),
}

/// A field of a node pool or node record that breaks a rule: names the field
/// (as spelled in the JSON), its value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} = {value}: {reason}")]
pub struct NodePoolInvalid {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

fn invalid(field: &'static str, value: String, reason: String) -> NodePoolInvalid {
    NodePoolInvalid {
        field,
        value,
        reason,
    }
}

/// The rules every node record shares: a valid node subnet and maxPods, and the
/// node's own address a usable one of the subnet.
fn check_node_share(
    subnet: Ipv4Net,
    max_pods: u32,
    node_ip: Ipv4Addr,
) -> Result<(NodeSubnet, MaxPods), NodePoolInvalid> {
    let sub = NodeSubnet::new(subnet)
        .map_err(|e| invalid("subnet", subnet.to_string(), e.to_string()))?;
    let mp = MaxPods::new(max_pods)
        .map_err(|e| invalid("maxPods", max_pods.to_string(), e.to_string()))?;
    if !sub.is_usable(node_ip) {
        return Err(invalid(
            "nodeIp",
            node_ip.to_string(),
            format!("not a usable address of {subnet}"),
        ));
    }
    Ok((sub, mp))
}

fn check_count(have: usize, want: u32, why: &str) -> Result<(), NodePoolInvalid> {
    if have == want as usize {
        return Ok(());
    }
    Err(invalid(
        "podIps",
        format!("{have} addresses"),
        format!("{why} {want}"),
    ))
}

/// Every pod address allowed and listed once (and never the node's own); returns
/// each one's position. Allocates nothing per address on the valid path.
fn check_pod_ips(
    node_ip: Ipv4Addr,
    pod_ips: &[Ipv4Addr],
    prefix: Ipv4Net,
    allowed: impl Fn(Ipv4Addr) -> bool,
) -> Result<HashMap<IpAddr, usize>, NodePoolInvalid> {
    let mut pos = HashMap::with_capacity(pod_ips.len());
    for (i, ip) in pod_ips.iter().enumerate() {
        if !allowed(*ip) {
            return Err(invalid(
                "podIps",
                ip.to_string(),
                format!("not a pod address of this node in {prefix}"),
            ));
        }
        if *ip == node_ip || pos.insert(IpAddr::V4(*ip), i).is_some() {
            return Err(invalid(
                "podIps",
                ip.to_string(),
                "listed twice".to_string(),
            ));
        }
    }
    Ok(pos)
}

/// An Overlay pool's own rules.
fn check_overlay(pool: &NodePool, o: &OverlayPool) -> Result<(), NodePoolInvalid> {
    if o.pod_cidr.prefix_len() != OVERLAY_NODE_PREFIX_LEN
        || o.pod_cidr.trunc() != o.pod_cidr
        || !o.cluster_pod_cidr.contains(&o.pod_cidr)
    {
        return Err(invalid(
            "overlay.podCidr",
            o.pod_cidr.to_string(),
            format!(
                "not an aligned /{OVERLAY_NODE_PREFIX_LEN} of the cluster pod CIDR {}",
                o.cluster_pod_cidr
            ),
        ));
    }
    if overlaps(&IpNet::V4(o.cluster_pod_cidr), &IpNet::V4(pool.subnet)) {
        return Err(invalid(
            "overlay.clusterPodCidr",
            o.cluster_pod_cidr.to_string(),
            format!("overlaps the node subnet {}", pool.subnet),
        ));
    }
    check_count(pool.pod_ips.len(), pool.max_pods, "maxPods is")
}

/// A Pod Subnet pool's own rules.
fn check_pod_subnet(
    pool: &NodePool,
    ps: &PodSubnetPool,
    max_pods: MaxPods,
) -> Result<(), NodePoolInvalid> {
    let sub = NodeSubnet::new(ps.cidr)
        .map_err(|e| invalid("podSubnet.cidr", ps.cidr.to_string(), e.to_string()))?;
    let most = podsubnet::blocks_for(max_pods) as usize;
    if ps.blocks.is_empty() || ps.blocks.len() > most {
        return Err(invalid(
            "podSubnet.blocks",
            format!("{} blocks", ps.blocks.len()),
            format!("maxPods {} takes 1 to {most}", pool.max_pods),
        ));
    }
    if let Some(b) = ps
        .blocks
        .iter()
        .find(|b| !podsubnet::is_eligible_block(&sub, **b))
    {
        return Err(invalid(
            "podSubnet.blocks",
            b.to_string(),
            format!(
                "not an aligned /28 of {} without Azure's reserved addresses",
                ps.cidr
            ),
        ));
    }
    let first = ps.blocks.iter().min();
    if let Some(b) = ps
        .returning
        .iter()
        .find(|b| !ps.blocks.contains(b) || Some(*b) == first)
    {
        return Err(invalid(
            "podSubnet.returning",
            b.to_string(),
            "not one of the node's blocks other than its first".to_string(),
        ));
    }
    if ps.allocation == podsubnet::Allocation::Static {
        check_count(
            pool.pod_ips.len(),
            pool.max_pods,
            "a static-block node holds maxPods =",
        )?;
    }
    Ok(())
}

/// What the cluster store holds for a node (`nodes/<node>`, the store's
/// `NodeReservation`): its share of the node subnet. The pool file, [`NodePool`],
/// is this record completed with the node's pod-subnet blocks or overlay block;
/// both are checked by the same rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRecord {
    pub node: String,
    pub subnet_name: String,
    pub subnet: Ipv4Net,
    pub node_ip: Ipv4Addr,
    pub max_pods: u32,
    /// `maxPods` addresses of the node subnet; empty for a node whose pods take
    /// addresses elsewhere.
    pub pod_ips: Vec<Ipv4Addr>,
    /// Set for a Pod Subnet node: the pod subnet's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
    /// Set for an Overlay node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overlay: bool,
    /// The cluster store's lease the record lives on (etcd, `node join
    /// --lease-ttl`): when it expires the store deletes the record and the
    /// addresses are free again (docs/node.md, "Leases"). A store-side field the
    /// pool file does not carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<i64>,
}

impl NodeRecord {
    /// Whether the node's pods take addresses outside the node subnet (Pod
    /// Subnet, Overlay): the node subnet then holds only the node's own address.
    pub fn pods_elsewhere(&self) -> bool {
        self.pod_subnet.is_some() || self.overlay
    }

    /// The node's own address followed by its pod addresses (`1 + maxPods`).
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        std::iter::once(self.node_ip).chain(self.pod_ips.iter().copied())
    }

    /// The node's local pool file content. A Pod Subnet node's pool is completed
    /// with its blocks, an Overlay node's with its pod CIDR block.
    pub fn to_node_pool(&self) -> NodePool {
        NodePool {
            version: NODE_POOL_VERSION,
            node: self.node.clone(),
            subnet_name: self.subnet_name.clone(),
            subnet: self.subnet,
            node_ip: self.node_ip,
            max_pods: self.max_pods,
            pod_ips: self.pod_ips.clone(),
            pod_subnet: None,
            overlay: None,
        }
    }

    /// The rules of [`NodePool::validate`] for the node subnet's share.
    pub fn validate(&self) -> Result<(), NodePoolInvalid> {
        let (subnet, _) = check_node_share(self.subnet, self.max_pods, self.node_ip)?;
        if self.pod_subnet.is_some() && self.overlay {
            return Err(invalid(
                "overlay",
                "true".to_string(),
                "a node is a Pod Subnet node or an Overlay node, not both".to_string(),
            ));
        }
        if self.pods_elsewhere() {
            check_count(
                self.pod_ips.len(),
                0,
                "its pods take addresses outside the node subnet: want",
            )?;
        } else {
            check_count(self.pod_ips.len(), self.max_pods, "maxPods is")?;
        }
        check_pod_ips(self.node_ip, &self.pod_ips, self.subnet, |ip| {
            subnet.is_usable(ip)
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_still_loads() {
        let v1 = r#"{"version":1,"node":"n","subnetName":"s","subnet":"10.0.0.0/24",
            "nodeIp":"10.0.0.4","maxPods":10,"podIps":["10.0.0.5"]}"#;
        let p: NodePool = serde_json::from_str(v1).expect("v1 loads");
        assert_eq!(p.pod_subnet, None);
        assert_eq!(
            p.pod_prefix(),
            "10.0.0.0/24".parse::<Ipv4Net>().expect("net")
        );
        assert_eq!(p.expected_version(), NODE_POOL_VERSION);
        let back = serde_json::to_string(&p).expect("json");
        assert!(!back.contains("podSubnet"), "{back}");
        assert!(!back.contains("overlay"), "{back}");
    }

    #[test]
    fn an_overlay_pool_hands_out_its_block_from_dot_1() {
        let o = OverlayPool {
            cluster_pod_cidr: "192.168.0.0/16".parse().expect("net"),
            pod_cidr: "192.168.3.0/24".parse().expect("net"),
        };
        let ips = o.pod_ips(250);
        assert_eq!(ips.len(), 250);
        assert_eq!(ips[0], Ipv4Addr::new(192, 168, 3, 1));
        assert_eq!(ips[249], Ipv4Addr::new(192, 168, 3, 250));
        assert_eq!(o.pod_ips(10).len(), 10);
        // A block too small for maxPods gives what it has, never .0 or the last.
        let small = OverlayPool {
            pod_cidr: "192.168.3.0/28".parse().expect("net"),
            ..o
        };
        let ips = small.pod_ips(250);
        assert_eq!(ips.len(), 14);
        assert!(!ips.contains(&Ipv4Addr::new(192, 168, 3, 15)));
    }
}
