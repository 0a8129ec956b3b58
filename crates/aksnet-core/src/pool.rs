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
}

impl NodePool {
    /// The network pods take their prefix length from: the pod subnet's when
    /// there is one, else the node subnet's.
    pub fn pod_prefix(&self) -> Ipv4Net {
        self.pod_subnet.as_ref().map_or(self.subnet, |p| p.cidr)
    }

    /// The format version this pool is written with.
    pub fn expected_version(&self) -> u32 {
        if self.pod_subnet.is_some() {
            NODE_POOL_VERSION_POD_SUBNET
        } else {
            NODE_POOL_VERSION
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
    }
}
