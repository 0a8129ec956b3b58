//! A Pod Subnet node's local pool (`node-pool.json` with `podSubnet`) kept in
//! step with its blocks in the cluster store (issue 15). The plugin never calls
//! the store: it hands out `podIps` from the file and refuses with "try again
//! later" when none is free. A dynamic node's pool is topped up and trimmed by
//! [`sync_pod_pool`], which `aksnet node pod-sync` (once, or `--every`) runs:
//!
//! - **grow**: fewer than `MIN_FREE` (8) free pod addresses → one more batch of
//!   16 from the store, then its addresses are added to the file;
//! - **return, in two rounds**: more than `MAX_FREE` (24) free → wholly free
//!   blocks (never the first) leave `podIps` and are listed in `returning`; at
//!   the NEXT round each is released to the store if still unused, or put back
//!   if a pod took one meanwhile. An ADD reads the file before its IPAM
//!   transaction; the round between the two steps is what keeps an ADD that
//!   read the file just before the trim from taking an address the store
//!   already gave to another node, so rounds must be further apart than the
//!   plugin's IPAM lock timeout (docs/models.md, "Who tops up").
//!
//! The store is the truth: every round rebuilds the file from the node's
//! record, so a round killed between its store write and its file write is
//! repaired by the next one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aksnet_core::azure::MaxPods;
use aksnet_core::podsubnet::{self, Allocation, Rebalance};
use aksnet_core::pool::{NodePool, PodSubnetPool, NODE_POOL_VERSION_POD_SUBNET};

use crate::kv::Store;
use crate::local_pool::{
    node_pool_path, read_node_pool_ignoring_fence, write_node_pool, LocalPoolError,
};
use crate::podsubnet::{self as ps, PodReservation, PodSubnetError};
use crate::reservation::{NodeReservation, ReservationError};

#[derive(Debug, thiserror::Error)]
pub enum PodPoolError {
    #[error(transparent)]
    LocalPool(#[from] LocalPoolError),
    #[error(transparent)]
    PodSubnet(#[from] PodSubnetError),
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error("node pool file {} is missing: this node has not joined (run `aksnet node join`)", path.display())]
    NoPool { path: PathBuf },
    #[error("node pool file {} is not a Pod Subnet pool (the node joined without --pod-subnet)", path.display())]
    NotPodSubnet { path: PathBuf },
    #[error(
        "node {node} holds no blocks in the cluster store any more (left, or its lease \
         expired): its pool {} is not topped up; run `aksnet node join` again",
        path.display()
    )]
    Gone { node: String, path: PathBuf },
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Blocks taken from the store this round.
    pub grown: Vec<Ipv4Addr>,
    /// Blocks taken out of `podIps` this round, released at the next.
    pub returning: Vec<Ipv4Addr>,
    /// Blocks released to the store this round.
    pub released: Vec<Ipv4Addr>,
    /// Blocks that were returning but a pod took an address of: kept.
    pub kept: Vec<Ipv4Addr>,
    /// Pod addresses in the file after the round, and how many are in use.
    pub pod_ips: usize,
    pub in_use: usize,
}

/// The pool file of a Pod Subnet node: its node IP from the node subnet, its
/// pod addresses from its blocks minus those `returning`.
pub fn pod_subnet_pool(
    node: &NodeReservation,
    pods: &PodReservation,
    returning: &[Ipv4Addr],
) -> NodePool {
    let mut part = pods.to_pool_part();
    part.returning = returning
        .iter()
        .copied()
        .filter(|b| pods.blocks.contains(b))
        .collect();
    let active: Vec<Ipv4Addr> = pods
        .blocks
        .iter()
        .copied()
        .filter(|b| !part.returning.contains(b))
        .collect();
    let limit = match pods.allocation {
        Allocation::Static => Some(pods.max_pods as usize),
        Allocation::Dynamic => None,
    };
    // The node's own address is the first of its FIRST block, which is never
    // returning, so skipping one address of the active blocks skips it.
    let pod_ips = podsubnet::pod_addresses(&active, limit);
    NodePool {
        version: NODE_POOL_VERSION_POD_SUBNET,
        node: node.node.clone(),
        subnet_name: node.subnet_name.clone(),
        subnet: node.subnet,
        node_ip: node.node_ip,
        max_pods: pods.max_pods,
        pod_ips,
        pod_subnet: Some(part),
        overlay: None,
    }
}

fn load(data_dir: &Path) -> Result<(NodePool, PodSubnetPool), PodPoolError> {
    let path = node_pool_path(data_dir);
    let pool = read_node_pool_ignoring_fence(data_dir)?
        .ok_or_else(|| PodPoolError::NoPool { path: path.clone() })?;
    let part = pool
        .pod_subnet
        .clone()
        .ok_or(PodPoolError::NotPodSubnet { path })?;
    Ok((pool, part))
}

/// One round for the node whose pool is in `data_dir`; `in_use` are the pod
/// addresses the node's IPAM state holds now. Static nodes are only rebuilt
/// from the store (they never grow or shrink).
pub fn sync_pod_pool<S: Store + ?Sized>(
    store: &S,
    data_dir: &Path,
    in_use: &BTreeSet<Ipv4Addr>,
) -> Result<SyncReport, PodPoolError> {
    let (pool, part) = load(data_dir)?;
    let gone = || PodPoolError::Gone {
        node: pool.node.clone(),
        path: node_pool_path(data_dir),
    };
    let (mut pods, _) = ps::get_pods(store, &pool.node)?.ok_or_else(gone)?;
    let mut report = SyncReport::default();
    let mut returning: Vec<Ipv4Addr> = part
        .returning
        .iter()
        .copied()
        .filter(|b| pods.blocks.contains(b))
        .collect();
    if pods.allocation == Allocation::Dynamic {
        // Second step of a return: release what stayed unused.
        let (kept, release): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) = returning
            .iter()
            .partition(|b| podsubnet::block_addresses(**b).any(|ip| in_use.contains(&ip)));
        if !release.is_empty() {
            pods = ps::shrink(store, &pool.node, &release)?;
        }
        report.released = release;
        report.kept = kept;
        returning.clear();
        let max = MaxPods::new(pods.max_pods).map_err(ReservationError::from)?;
        match podsubnet::rebalance(&pods.blocks, in_use, max) {
            Rebalance::Keep => {}
            Rebalance::Grow(n) => {
                let before = pods.blocks.clone();
                pods = ps::grow(store, &pool.node, n)?;
                report.grown = pods
                    .blocks
                    .iter()
                    .copied()
                    .filter(|b| !before.contains(b))
                    .collect();
            }
            Rebalance::Shrink(blocks) => {
                report.returning.clone_from(&blocks);
                returning = blocks;
            }
        }
    }
    let node = NodeReservation {
        node: pool.node.clone(),
        subnet_name: pool.subnet_name.clone(),
        subnet: pool.subnet,
        node_ip: pool.node_ip,
        max_pods: pool.max_pods,
        pod_ips: Vec::new(),
        pod_subnet: Some(pods.pod_subnet_name.clone()),
        overlay: false,
        lease: pods.lease,
    };
    let next = pod_subnet_pool(&node, &pods, &returning);
    report.pod_ips = next.pod_ips.len();
    report.in_use = next.pod_ips.iter().filter(|ip| in_use.contains(ip)).count();
    if next != pool {
        write_node_pool(data_dir, &next)?;
    }
    Ok(report)
}
