//! A node's join (`aksnet node join`): what AKS's control plane does when it
//! creates a node (docs/azure.md#node-subnet-ipam). The node's share of the node
//! subnet is reserved in the cluster store, its pod addresses found (the node
//! subnet, its Pod Subnet blocks or its Overlay block), and the result written to
//! the node's local pool file, which the plugin reads; or only a block of the
//! cluster pod CIDR (kubenet). All or nothing up to the pool file: a pod CIDR
//! that cannot be given undoes a reservation this join made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_core::pool::{NodePool, OverlayPool, NODE_POOL_VERSION_OVERLAY};
use aksnet_store::local_pool::{
    remove_node_lease, unfence, write_node_lease, write_node_pool, NodeLease,
};
use aksnet_store::podcidr::{refuse_overlapping_subnets, PodCidrOutcome};
use aksnet_store::podsubnet::PodReservation;
use aksnet_store::reservation::{join_node, PodHome};
use aksnet_store::{JoinOutcome, JoinRequest, LeaseId, NodeReservation, ReservationError, Store};
use ipnet::Ipv4Net;

use crate::backend::{open_store, StoreOptions};
use crate::held::in_use_in_subnet;
use crate::local::{check_store_not_lost, own_pool};
use crate::pods::{join_pod_cidr, join_pod_subnet, PodCidrJoin, PodSubnetJoin};
use crate::NodeError;

/// A join: the node, its data directory, its share of a node subnet and/or a
/// block of the cluster pod CIDR, and the lease to put it on.
#[derive(Debug, Clone)]
pub struct NodeJoin {
    pub node: String,
    pub data_dir: PathBuf,
    pub subnet: Option<SubnetShare>,
    pub pod_cidr: Option<PodCidrJoin>,
    /// Put the reservation on a store lease with this grace period.
    pub lease_ttl: Option<Duration>,
}

/// The node's share of a node subnet.
#[derive(Debug, Clone)]
pub struct SubnetShare {
    pub name: String,
    pub subnet: NodeSubnet,
    pub max_pods: MaxPods,
    pub pods: PodPlace,
}

/// Where the node's pods take their addresses.
#[derive(Debug, Clone)]
pub enum PodPlace {
    /// `maxPods` addresses of the node subnet (Node Subnet).
    NodeSubnet,
    /// The node's block of the cluster pod CIDR (Overlay; needs a pod CIDR join).
    Overlay,
    /// Blocks of a separate pod subnet (Pod Subnet).
    PodSubnet(PodSubnetJoin),
}

/// What a join holds now.
#[derive(Debug)]
pub struct JoinReport {
    pub subnet: Option<SubnetJoined>,
    pub pod_cidr: Option<PodCidrOutcome>,
}

/// The node-subnet part of a join.
#[derive(Debug)]
pub struct SubnetJoined {
    pub outcome: JoinOutcome,
    /// The pool file written.
    pub pool_path: PathBuf,
    /// A Pod Subnet node's blocks.
    pub pods: Option<PodReservation>,
}

/// Joins the node; `on_undo_failed` hears of a reservation that could not be
/// undone after a failed pod CIDR join. Returns the store (for the caller's
/// summary queries) and what the node holds.
pub fn join(
    opts: &StoreOptions,
    req: &NodeJoin,
    on_undo_failed: &mut dyn FnMut(&str, &ReservationError),
) -> Result<(Box<dyn Store>, JoinReport), NodeError> {
    // Refuse before touching the store if the data dir is another node's.
    own_pool(&req.data_dir, &req.node)?;
    let in_use = match &req.subnet {
        Some(s) => in_use_in_subnet(&req.data_dir, s.subnet.cidr())?,
        None => BTreeSet::new(),
    };
    let store = open_store(opts)?;
    check_store_not_lost(&*store, &req.data_dir)?;
    if let (
        Some(SubnetShare {
            pods: PodPlace::Overlay,
            ..
        }),
        Some(p),
    ) = (&req.subnet, &req.pod_cidr)
    {
        refuse_overlapping_subnets(&*store, p.cluster_cidr)?;
    }
    let lease = match req.lease_ttl {
        Some(ttl) => Some(store.grant_lease(ttl).map_err(ReservationError::from)?),
        None => None,
    };
    let outcome = match &req.subnet {
        Some(s) => Some(reserve_share(&*store, req, s, in_use, lease)?),
        None => None,
    };
    let pod_cidr = match join_block(&*store, req, outcome.as_ref(), lease) {
        Ok(p) => p,
        Err(e) => {
            // A reservation this join made goes too: the join is all or nothing.
            if let Some(JoinOutcome::Joined(r)) = &outcome {
                if let Err(undo) = aksnet_store::reservation::leave(&*store, &r.node) {
                    on_undo_failed(&r.node, &undo);
                }
            }
            return Err(e);
        }
    };
    let subnet = match (outcome, &req.subnet) {
        (Some(outcome), Some(share)) => {
            let block = pod_cidr.as_ref().map(|p| p.record().cidr);
            Some(write_local_pool(&*store, req, share, outcome, block)?)
        }
        _ => None,
    };
    Ok((store, JoinReport { subnet, pod_cidr }))
}

fn reserve_share(
    store: &dyn Store,
    req: &NodeJoin,
    s: &SubnetShare,
    in_use: BTreeSet<std::net::Ipv4Addr>,
    lease: Option<LeaseId>,
) -> Result<JoinOutcome, NodeError> {
    let home = match &s.pods {
        PodPlace::NodeSubnet => PodHome::NodeSubnet,
        PodPlace::Overlay => PodHome::Overlay,
        PodPlace::PodSubnet(p) => PodHome::PodSubnet(&p.subnet_name),
    };
    Ok(join_node(
        store,
        &JoinRequest {
            node: req.node.clone(),
            subnet_name: s.name.clone(),
            subnet: s.subnet,
            max_pods: s.max_pods,
            in_use,
            lease,
        },
        home,
    )?)
}

fn join_block(
    store: &dyn Store,
    req: &NodeJoin,
    outcome: Option<&JoinOutcome>,
    lease: Option<LeaseId>,
) -> Result<Option<PodCidrOutcome>, NodeError> {
    let Some(p) = &req.pod_cidr else {
        return Ok(None);
    };
    let reserved_ip = outcome.map(|o| o.reservation().node_ip);
    join_pod_cidr(store, p, &req.node, reserved_ip, &req.data_dir, lease).map(Some)
}

/// Writes the node's local pool after a node-subnet join, then its lease record,
/// then lifts a fence: the store is the truth, also on a rejoin, and the pool is
/// this node's again.
fn write_local_pool(
    store: &dyn Store,
    req: &NodeJoin,
    share: &SubnetShare,
    outcome: JoinOutcome,
    block: Option<Ipv4Net>,
) -> Result<SubnetJoined, NodeError> {
    let r = outcome.reservation();
    let (pool_path, pods) = match &share.pods {
        PodPlace::PodSubnet(p) => {
            let (pods, path) = join_pod_subnet(store, p, r, &req.data_dir)?;
            (path, Some(pods))
        }
        PodPlace::NodeSubnet | PodPlace::Overlay => {
            let pool = node_pool(req, r, block)?;
            (write_node_pool(&req.data_dir, &pool)?, None)
        }
    };
    record_lease(&req.data_dir, r, req.lease_ttl)?;
    unfence(&req.data_dir)?;
    Ok(SubnetJoined {
        outcome,
        pool_path,
        pods,
    })
}

/// The node's local pool after a node-subnet join: an Overlay node's (version
/// 3, its block's first maxPods addresses) or a Node Subnet node's.
fn node_pool(
    req: &NodeJoin,
    r: &NodeReservation,
    block: Option<Ipv4Net>,
) -> Result<NodePool, NodeError> {
    let mut pool = r.to_node_pool();
    if !r.overlay {
        return Ok(pool);
    }
    let (Some(cluster), Some(pod_cidr)) = (req.pod_cidr.map(|p| p.cluster_cidr), block) else {
        return Err(NodeError::OverlayFlag {
            flag: "--overlay",
            value: req.node.clone(),
            why: "the node holds no block of the pod CIDR (needs --pod-cidr-from)".into(),
        });
    };
    let overlay = OverlayPool {
        cluster_pod_cidr: cluster,
        pod_cidr,
    };
    pool.version = NODE_POOL_VERSION_OVERLAY;
    pool.pod_ips = overlay.pod_ips(r.max_pods);
    pool.overlay = Some(overlay);
    Ok(pool)
}

/// Writes (or removes) `<data-dir>/node-pool.lease` after the reservation's lease
/// (a rejoin keeps the lease the reservation already lives on).
fn record_lease(
    data_dir: &Path,
    r: &NodeReservation,
    ttl: Option<Duration>,
) -> Result<(), NodeError> {
    match r.lease {
        Some(lease) => {
            write_node_lease(
                data_dir,
                &NodeLease {
                    node: r.node.clone(),
                    lease,
                    ttl_seconds: ttl.map_or(0, |t| t.as_secs().max(1)),
                },
            )?;
        }
        None => {
            remove_node_lease(data_dir)?;
        }
    }
    Ok(())
}
