//! The node's local pool: the addresses `aksnet node join` reserved for this node
//! in the cluster store, handed to the plugin through a file so that ADD never
//! calls the cluster store (issue 3).
//!
//! On disk: `<dataDir>/node-pool.json`, written atomically (temp, fsync, rename,
//! directory fsync) by `aksnet node join`, read by `aksnet-cni` in `nodesubnet` mode.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// File name of the node pool inside a node's data directory.
pub const NODE_POOL_FILE: &str = "node-pool.json";

/// Current format version of [`NodePool`].
pub const NODE_POOL_VERSION: u32 = 1;

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
    /// The node subnet, e.g. 10.240.0.0/24; pods get addresses with this prefix length.
    pub subnet: Ipv4Net,
    /// The node's own (primary) address.
    pub node_ip: Ipv4Addr,
    /// maxPods as joined (10..=250).
    pub max_pods: u32,
    /// The pod addresses reserved for this node, exactly `max_pods` of them.
    pub pod_ips: Vec<Ipv4Addr>,
}
