//! A node's pod addresses outside its node subnet: the /28 blocks of a Pod Subnet
//! node (docs/models.md#pod-subnet: taken at join, topped up and trimmed by a
//! round, `aksnet_store::pod_pool`) and the pod CIDR block of a kubenet or
//! Overlay node (docs/node.md, "Pod CIDRs").

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aksnet_core::azure::{format_address_runs, MaxPods, NodeSubnet};
use aksnet_core::podsubnet::{block_of, Allocation};
use aksnet_store::local_pool::{read_node_pool_ignoring_fence, write_node_pool};
use aksnet_store::pod_pool::{pod_subnet_pool, sync_pod_pool, SyncReport};
use aksnet_store::podcidr::{allocate, PodCidrOutcome, PodCidrPool, PodCidrRequest};
use aksnet_store::podsubnet::{join_pods, leave_pods, PodJoin, PodReservation};
use aksnet_store::{LeaseId, NodeReservation, ReservationError, Store};
use ipnet::Ipv4Net;

use crate::held::held_v4;
use crate::NodeError;

/// A Pod Subnet join: which pod subnet, and how it hands out blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSubnetJoin {
    pub subnet_name: String,
    pub subnet: NodeSubnet,
    pub allocation: Allocation,
}

/// Takes the node's blocks and writes its pool (after its node-subnet
/// reservation `r`); returns them and the pool file's path. A rejoin keeps what
/// a previous round was returning. Refused when the node's pods hold addresses
/// of the pod subnet outside the blocks the store gives it.
pub fn join_pod_subnet(
    store: &dyn Store,
    req: &PodSubnetJoin,
    r: &NodeReservation,
    data_dir: &Path,
) -> Result<(PodReservation, PathBuf), NodeError> {
    let (pods, _) = join_pods(
        store,
        &PodJoin {
            node: r.node.clone(),
            subnet_name: req.subnet_name.clone(),
            subnet: req.subnet,
            allocation: req.allocation,
            max_pods: MaxPods::new(r.max_pods).map_err(ReservationError::from)?,
            lease: r.lease,
        },
    )?;
    let returning = read_node_pool_ignoring_fence(data_dir)?
        .and_then(|p| p.pod_subnet)
        .map(|ps| ps.returning)
        .unwrap_or_default();
    let pool = pod_subnet_pool(r, &pods, &returning);
    let outside: Vec<Ipv4Addr> = held_v4(data_dir)?
        .into_iter()
        .filter(|ip| req.subnet.cidr().contains(ip))
        .filter(|ip| !pods.blocks.contains(&block_of(*ip)))
        .collect();
    if !outside.is_empty() {
        return Err(NodeError::PodsOutsideBlocks {
            node: r.node.clone(),
            ips: format_address_runs(&outside),
        });
    }
    let path = write_node_pool(data_dir, &pool)?;
    Ok((pods, path))
}

/// Releases the node's blocks of its pod subnet; `None` when it held none.
pub fn leave_pod_subnet(
    store: &dyn Store,
    node: &str,
) -> Result<Option<PodReservation>, NodeError> {
    Ok(leave_pods(store, node)?)
}

/// One top-up round for the Pod Subnet node of `data_dir` (`aksnet node
/// pod-sync`, and `node keepalive` for a Pod Subnet node): another batch when
/// few are free, whole free batches back when many are.
pub fn top_up_pod_pool(store: &dyn Store, data_dir: &Path) -> Result<SyncReport, NodeError> {
    let in_use = held_v4(data_dir)?;
    Ok(sync_pod_pool(store, data_dir, &in_use)?)
}

/// A pod CIDR join: the cluster pod CIDR, each node's prefix length, and the
/// node's LAN address when it has no node-subnet reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodCidrJoin {
    pub cluster_cidr: Ipv4Net,
    pub node_prefix_len: u8,
    pub node_ip: Option<Ipv4Addr>,
}

/// Gives `node` its block of the cluster pod CIDR. `reserved_ip` is the node IP
/// of its node-subnet reservation, if any (then `req.node_ip` must agree).
pub fn join_pod_cidr(
    store: &dyn Store,
    req: &PodCidrJoin,
    node: &str,
    reserved_ip: Option<Ipv4Addr>,
    data_dir: &Path,
    lease: Option<LeaseId>,
) -> Result<PodCidrOutcome, NodeError> {
    let pool = PodCidrPool::new(req.cluster_cidr, req.node_prefix_len)?;
    let node_ip = match (reserved_ip, req.node_ip) {
        (Some(r), Some(given)) if r != given => {
            return Err(NodeError::NodeIpMismatch { given, reserved: r })
        }
        (Some(ip), _) | (None, Some(ip)) => ip,
        (None, None) => return Err(NodeError::NodeIpNeeded),
    };
    let req = PodCidrRequest {
        node: node.to_string(),
        node_ip,
        keep: block_in_use(data_dir, &pool)?,
        lease,
    };
    Ok(allocate(store, Some(pool), &req)?)
}

/// The block the node's pods already use: the blocks holding the addresses its
/// IPAM state hands out inside the pool. More than one is an error.
fn block_in_use(data_dir: &Path, pool: &PodCidrPool) -> Result<Option<Ipv4Net>, NodeError> {
    let blocks: BTreeSet<Ipv4Net> = held_v4(data_dir)?
        .into_iter()
        .filter(|ip| pool.cidr.contains(ip))
        .filter_map(|ip| Ipv4Net::new(ip, pool.node_prefix_len).ok())
        .map(|n| n.trunc())
        .collect();
    match blocks.len() {
        0 => Ok(None),
        1 => Ok(blocks.into_iter().next()),
        _ => Err(NodeError::PodsInSeveralBlocks {
            data_dir: data_dir.to_path_buf(),
            blocks: blocks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
