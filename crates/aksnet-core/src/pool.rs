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

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

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
