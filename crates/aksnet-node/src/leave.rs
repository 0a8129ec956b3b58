//! A node's leave (`aksnet node leave`): its pod CIDR block, its Pod Subnet
//! blocks and its node-subnet reservation go back to the cluster store, refused
//! while pods still hold addresses of them (unless forced).
//!
//! The order is the point: the local pool goes first, then the node stops
//! answering ARP for its addresses ([`LeaveEvent::WithdrawAnswers`], the
//! caller's kernel work), and only then does the store free them — once the
//! store frees them another node may take them, so this node's plugin and this
//! node's ARP answers must already have stopped using them (docs/agent.md).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aksnet_core::azure::format_address_runs;
use aksnet_core::pool::NodePool;
use aksnet_store::local_pool::{node_pool_path, remove_node_lease, remove_node_pool, unfence};
use aksnet_store::podcidr::{get_node_pod_cidr, NodePodCidr};
use aksnet_store::podsubnet::{get_pods, PodReservation};
use aksnet_store::reservation::{get_node, release};
use aksnet_store::{NodeReservation, Revision, Store};
use ipnet::Ipv4Net;

use crate::backend::{open_store, StoreOptions};
use crate::held::{held_v4, pods_in_use};
use crate::local::{check_store_not_lost, own_pool};
use crate::pods::leave_pod_subnet;
use crate::NodeError;

/// Which node leaves, whose data directory holds its pool and IPAM state, and
/// whether to release even while pods hold addresses.
#[derive(Debug, Clone, Copy)]
pub struct LeaveRequest<'a> {
    pub node: &'a str,
    pub data_dir: &'a Path,
    pub force: bool,
}

/// What a leave did, in the order it did it (a caller prints them as they come,
/// so a failure later still shows what was already done).
#[derive(Debug)]
pub enum LeaveEvent<'a> {
    /// Forced: pods still hold these addresses; released anyway.
    ForcedWithPods { count: usize, ips: String },
    /// Forced: the node's pods could not be checked.
    PodsNotChecked { error: &'a NodeError },
    /// Forced: the pods of the node's pod CIDR block could not be checked.
    PodCidrPodsNotChecked { cidr: Ipv4Net, error: &'a NodeError },
    /// The node's block of the cluster pod CIDR went back to the store.
    PodCidrReleased(&'a NodePodCidr),
    /// The node holds no node-subnet reservation; a stale pool of it was removed
    /// (its path), or there was none. `had_pod_cidr`: it held a pod CIDR block.
    NotJoined {
        stale_pool_removed: Option<PathBuf>,
        had_pod_cidr: bool,
    },
    /// The data directory holds no pool of the node: its pods could be checked
    /// only against the IPAM state there.
    NoLocalPool,
    /// The pool is gone and the store has not freed the addresses yet: the node
    /// must stop answering ARP for them now.
    WithdrawAnswers(&'a NodeReservation),
    /// The node's Pod Subnet blocks went back to the store.
    BlocksReturned(&'a PodReservation),
    /// The reservation was released; `removed_pool` is the pool file removed.
    Left {
        reservation: &'a NodeReservation,
        removed_pool: Option<PathBuf>,
    },
}

/// Releases everything `req.node` holds, telling `on` each step. Returns the
/// store's note of what it retried, if anything.
pub fn leave(
    store: &StoreOptions,
    req: &LeaveRequest<'_>,
    on: &mut dyn FnMut(LeaveEvent<'_>),
) -> Result<Option<String>, NodeError> {
    let local = own_pool(req.data_dir, req.node)?;
    let store = open_store(store)?;
    if !req.force {
        check_store_not_lost(&*store, req.data_dir)?;
    }
    // A Pod Subnet node's pod addresses are its blocks of the pod subnet.
    let pods = get_pods(&*store, req.node)?.map(|(p, _)| p);
    let joined = get_node(&*store, req.node)?;
    if let Some((r, _)) = &joined {
        let pod_ips = pods
            .as_ref()
            .map_or_else(|| r.pod_ips.clone(), |p| p.pod_ips());
        check_pods(req, &pod_ips, on)?;
    }
    // The pod CIDR first: it checks its own pods, and a failure leaves the
    // reservation as it was.
    let block = leave_pod_cidr(&*store, req, on)?;
    if let Some(b) = &block {
        on(LeaveEvent::PodCidrReleased(b));
    }
    match joined {
        None => leave_unjoined(&*store, req, local, block.is_some(), on)?,
        Some((r, rev)) => leave_joined(&*store, req, local.is_some(), &r, rev, on)?,
    }
    Ok(store.take_retry_note())
}

/// Not in the store: still clear a stale local pool so the plugin stops using
/// it, under the same pod check.
fn leave_unjoined(
    store: &dyn Store,
    req: &LeaveRequest<'_>,
    local: Option<NodePool>,
    had_pod_cidr: bool,
    on: &mut dyn FnMut(LeaveEvent<'_>),
) -> Result<(), NodeError> {
    let stale_pool_removed = match local {
        Some(p) => {
            check_pods(req, &p.pod_ips, on)?;
            remove_node_pool(req.data_dir)?;
            leave_pod_subnet(store, req.node)?;
            Some(node_pool_path(req.data_dir))
        }
        None => None,
    };
    on(LeaveEvent::NotJoined {
        stale_pool_removed,
        had_pod_cidr,
    });
    Ok(())
}

/// Local pool first, then the node's ARP answers, then the store.
fn leave_joined(
    store: &dyn Store,
    req: &LeaveRequest<'_>,
    has_local_pool: bool,
    r: &NodeReservation,
    rev: Revision,
    on: &mut dyn FnMut(LeaveEvent<'_>),
) -> Result<(), NodeError> {
    if !has_local_pool {
        on(LeaveEvent::NoLocalPool);
    }
    let removed = remove_node_pool(req.data_dir)?;
    on(LeaveEvent::WithdrawAnswers(r));
    remove_node_lease(req.data_dir)?;
    unfence(req.data_dir)?;
    if let Some(p) = leave_pod_subnet(store, req.node)? {
        on(LeaveEvent::BlocksReturned(&p));
    }
    // A failed compare after a retried attempt may mean our own first attempt
    // committed (its answer was lost): the node being gone is the outcome we wanted.
    if !release(store, r, rev)? && get_node(store, req.node)?.is_some() {
        return Err(NodeError::ChangedWhileLeaving {
            node: req.node.to_string(),
        });
    }
    on(LeaveEvent::Left {
        reservation: r,
        removed_pool: removed.then(|| node_pool_path(req.data_dir)),
    });
    Ok(())
}

/// Refuses (unless forced) while the node's IPAM state holds any of `pod_ips`.
fn check_pods(
    req: &LeaveRequest<'_>,
    pod_ips: &[Ipv4Addr],
    on: &mut dyn FnMut(LeaveEvent<'_>),
) -> Result<(), NodeError> {
    match pods_in_use(req.data_dir, pod_ips) {
        Ok(used) if used.is_empty() => Ok(()),
        Ok(used) => {
            let used: Vec<Ipv4Addr> = used.into_iter().collect();
            let (count, ips) = (used.len(), format_address_runs(&used));
            if req.force {
                on(LeaveEvent::ForcedWithPods { count, ips });
                return Ok(());
            }
            Err(NodeError::PodsPresent {
                node: req.node.to_string(),
                count,
                ips,
                data_dir: req.data_dir.to_path_buf(),
            })
        }
        Err(error) if req.force => {
            on(LeaveEvent::PodsNotChecked { error: &error });
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Frees the node's pod CIDR block, refusing (unless forced) while the node's
/// IPAM state still hands out addresses of it.
fn leave_pod_cidr(
    store: &dyn Store,
    req: &LeaveRequest<'_>,
    on: &mut dyn FnMut(LeaveEvent<'_>),
) -> Result<Option<NodePodCidr>, NodeError> {
    let Some((r, _)) = get_node_pod_cidr(store, req.node)? else {
        return Ok(None);
    };
    let used: Vec<Ipv4Addr> = match held_v4(req.data_dir) {
        Ok(h) => h.into_iter().filter(|ip| r.cidr.contains(ip)).collect(),
        Err(error) if req.force => {
            on(LeaveEvent::PodCidrPodsNotChecked {
                cidr: r.cidr,
                error: &error,
            });
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !used.is_empty() && !req.force {
        return Err(NodeError::PodsPresent {
            node: req.node.to_string(),
            count: used.len(),
            ips: format_address_runs(&used),
            data_dir: req.data_dir.to_path_buf(),
        });
    }
    Ok(aksnet_store::podcidr::release(store, req.node)?)
}
