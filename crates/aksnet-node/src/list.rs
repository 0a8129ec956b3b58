//! The cluster as the nodes see it (`aksnet node list`): every joined node with
//! its pod addresses wherever they lie (node subnet, Pod Subnet blocks, Overlay
//! block), how many of them the local node's pods hold, and each subnet's
//! reserved addresses.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

use aksnet_core::azure::NodeSubnet;
use aksnet_core::podsubnet::BATCH;
use aksnet_core::pool::overlay_pod_ips;
use aksnet_store::local_pool::read_node_pool_ignoring_fence;
use aksnet_store::podcidr::list_pod_cidrs;
use aksnet_store::podsubnet::{list_pods, PodReservation};
use aksnet_store::{list_nodes, list_subnets, NodeReservation, Store};

use crate::held::pods_in_use;
use crate::local::check_store_not_lost;
use crate::NodeError;

/// One joined node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// Its reservation, with `pod_ips` its pod addresses wherever they lie.
    pub record: NodeReservation,
    /// How many of them pods hold: known only for the node whose data directory
    /// was given.
    pub in_use: Option<usize>,
}

/// One subnet of the store and what nodes reserve of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetUse {
    pub name: String,
    pub subnet: NodeSubnet,
    /// Addresses nodes reserve (node subnets) or hold in blocks (pod subnets).
    pub reserved: u64,
    pub nodes: usize,
}

/// The cluster's nodes and subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeList {
    pub nodes: Vec<NodeRow>,
    pub subnets: Vec<SubnetUse>,
}

/// Lists the cluster; the in-use count comes from the IPAM state of the node
/// whose pool is in `data_dir`. What cannot be read for it goes to `warn` (the
/// count is then not shown).
pub fn list_cluster(
    store: &dyn Store,
    data_dir: &Path,
    warn: &mut dyn FnMut(&dyn Display),
) -> Result<NodeList, NodeError> {
    check_store_not_lost(store, data_dir)?;
    let mut nodes = list_nodes(store)?;
    let subnets = list_subnets(store)?;
    // A Pod Subnet node's pod addresses are those of its blocks.
    let pods = list_pods(store)?;
    // An Overlay node's are the first maxPods of its /24 of the pod CIDR.
    let blocks = if nodes.iter().any(|n| n.overlay) {
        list_pod_cidrs(store)?
    } else {
        Vec::new()
    };
    for n in &mut nodes {
        if let Some(p) = pods.iter().find(|p| p.node == n.node) {
            n.pod_ips = p.pod_ips();
        }
        if let Some(b) = blocks.iter().find(|b| n.overlay && b.node == n.node) {
            n.pod_ips = overlay_pod_ips(b.cidr, n.max_pods);
        }
    }
    let local_node = match read_node_pool_ignoring_fence(data_dir) {
        Ok(p) => p.map(|p| p.node),
        Err(e) => {
            warn(&e);
            None
        }
    };
    let rows = nodes
        .iter()
        .map(|n| {
            let in_use = match &local_node {
                Some(local) if *local == n.node => match pods_in_use(data_dir, &n.pod_ips) {
                    Ok(u) => Some(u.len()),
                    Err(e) => {
                        warn(&e);
                        None
                    }
                },
                _ => None,
            };
            NodeRow {
                record: n.clone(),
                in_use,
            }
        })
        .collect();
    Ok(NodeList {
        nodes: rows,
        subnets: subnet_use(&nodes, &pods, subnets),
    })
}

/// Per subnet: reserved addresses and node count.
fn subnet_use(
    nodes: &[NodeReservation],
    pods: &[PodReservation],
    subnets: Vec<(String, NodeSubnet)>,
) -> Vec<SubnetUse> {
    let mut per: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for n in nodes {
        let e = per.entry(n.subnet_name.as_str()).or_default();
        // A Pod Subnet or Overlay node costs one address of the node subnet.
        e.0 += if n.pods_elsewhere() {
            1
        } else {
            n.pod_ips.len() as u64 + 1
        };
        e.1 += 1;
    }
    for p in pods {
        let e = per.entry(p.pod_subnet_name.as_str()).or_default();
        e.0 += p.blocks.len() as u64 * u64::from(BATCH);
        e.1 += 1;
    }
    subnets
        .into_iter()
        .map(|(name, subnet)| {
            let (reserved, nodes) = per.get(name.as_str()).copied().unwrap_or_default();
            SubnetUse {
                name,
                subnet,
                reserved,
                nodes,
            }
        })
        .collect()
}
