//! Pod subnet reservations for Azure CNI Pod Subnet (issue 15): the /28 blocks
//! of a separate pod subnet that each node holds, static (all at join) or
//! dynamic (batches on demand), as compare-and-swap transactions. The pure
//! arithmetic is `aksnet_core::podsubnet`; the node's own address stays in the
//! node subnet (`crate::reservation::join_with_pods_in`).
//!
//! Key layout (docs/node.md, "Pod Subnet"):
//!
//! | key | value | role |
//! |---|---|---|
//! | `cluster/subnets` | registry | shared with node subnets, so a pod subnet never overlaps one |
//! | `subnets/<pod subnet>` | `{"cidr":…,"indexed":true,"pods":true}` | the pod subnet's guard: every block taken compares it and puts it back |
//! | `podnodes/<node>` | [`PodReservation`] | the node's blocks: the reservation itself |
//! | `blocks/<pod subnet>/<first>+16/<node>` | empty | one index key per block ([`crate::blocks`]'s format), written and deleted with `podnodes/<node>` |
//!
//! Why it is safe, as for node joins (`crate::reservation`): taking blocks reads
//! the guard first, then the index, and commits only if the guard is unchanged
//! AND the node's record is at the revision read, so two takers never pick one
//! block and two rounds of one node never lose each other's blocks. Returning
//! blocks and leaving only delete (compare-on-owner of the node's record): a
//! taker that listed before merely sees fewer free blocks. With a lease the
//! record and its index keys vanish together when the lease expires.
//!
//! A node holds at most 16 blocks (maxPods 250), so a transaction stays far
//! below etcd's 128 operations (`--max-txn-ops`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_core::podsubnet::{self, Allocation, PodSubnetExhausted, BATCH};
use aksnet_core::pool::PodSubnetPool;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::blocks;
use crate::kv::{Compare, LeaseId, Op, Revision, Store, StoreError};
use crate::record;
use crate::reservation::{
    guard_subnet_as, validate_node_name, validate_subnet_name, JoinRequest, ReservationError,
    SubnetRole, MAX_ATTEMPTS,
};

/// Prefix of the per-node pod reservation keys.
pub const POD_NODES_PREFIX: &str = "podnodes/";

pub fn pod_node_key(node: &str) -> String {
    format!("{POD_NODES_PREFIX}{node}")
}

/// What a node holds in a pod subnet: the value of `podnodes/<node>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodReservation {
    pub node: String,
    pub pod_subnet_name: String,
    pub pod_subnet: Ipv4Net,
    pub allocation: Allocation,
    pub max_pods: u32,
    /// First addresses of the node's /28 blocks, in address order.
    pub blocks: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseId>,
}

impl PodReservation {
    /// The addresses pods may take: every address of the blocks but the node's
    /// own (the first), at most maxPods for a static node.
    pub fn pod_ips(&self) -> Vec<Ipv4Addr> {
        let limit = match self.allocation {
            Allocation::Static => Some(self.max_pods as usize),
            Allocation::Dynamic => None,
        };
        podsubnet::pod_addresses(&self.blocks, limit)
    }

    /// The `podSubnet` part of the node's pool file.
    pub fn to_pool_part(&self) -> PodSubnetPool {
        PodSubnetPool {
            name: self.pod_subnet_name.clone(),
            cidr: self.pod_subnet,
            allocation: self.allocation,
            blocks: self.blocks.clone(),
            returning: Vec::new(),
        }
    }

    fn index_keys(&self) -> Vec<String> {
        self.blocks
            .iter()
            .map(|b| block_key(&self.pod_subnet_name, *b, &self.node))
            .collect()
    }

    fn check(&self, key: &str) -> Result<(), ReservationError> {
        let corrupt = |detail: String| record::corrupt(key, detail);
        if pod_node_key(&self.node) != key {
            return Err(corrupt(format!("record names node {:?}", self.node)));
        }
        let subnet = NodeSubnet::new(self.pod_subnet).map_err(|e| corrupt(e.to_string()))?;
        let max = MaxPods::new(self.max_pods).map_err(|e| corrupt(e.to_string()))?;
        let distinct: BTreeSet<&Ipv4Addr> = self.blocks.iter().collect();
        if self.blocks.is_empty()
            || distinct.len() != self.blocks.len()
            || self.blocks.len() > podsubnet::blocks_for(max) as usize
            || !self
                .blocks
                .iter()
                .all(|b| podsubnet::is_eligible_block(&subnet, *b))
        {
            return Err(corrupt(format!(
                "blocks {:?} are not 1 to {} distinct eligible /28s of {}",
                self.blocks,
                podsubnet::blocks_for(max),
                self.pod_subnet
            )));
        }
        Ok(())
    }
}

fn block_key(subnet_name: &str, first: Ipv4Addr, node: &str) -> String {
    format!(
        "{}{first}+{BATCH}/{node}",
        blocks::subnet_blocks_prefix(subnet_name)
    )
}

/// A node taking its place in a pod subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodJoin {
    pub node: String,
    pub subnet_name: String,
    pub subnet: NodeSubnet,
    pub allocation: Allocation,
    pub max_pods: MaxPods,
    pub lease: Option<LeaseId>,
}

#[derive(Debug, thiserror::Error)]
pub enum PodSubnetError {
    #[error(transparent)]
    Exhausted(#[from] PodSubnetExhausted),
    #[error(
        "node {node} already holds blocks of pod subnet {joined_name} ({joined_cidr}, \
         {joined_allocation}, maxPods {joined_max_pods}), not of {asked_name} ({asked_cidr}, \
         {asked_allocation}, maxPods {asked_max_pods}); leave first"
    )]
    JoinedDifferently {
        node: String,
        joined_name: String,
        joined_cidr: Ipv4Net,
        joined_allocation: Allocation,
        joined_max_pods: u32,
        asked_name: String,
        asked_cidr: Ipv4Net,
        asked_allocation: Allocation,
        asked_max_pods: u32,
    },
    #[error("node {node} holds no blocks of a pod subnet (join it with --mode podsubnet first)")]
    NotJoined { node: String },
    #[error(
        "node {node} is a {allocation} pod-subnet node: only dynamic nodes take or return batches"
    )]
    NotDynamic {
        node: String,
        allocation: Allocation,
    },
    #[error("node {node} does not hold block {block}, or it is the node's first block (it holds the node's own address)")]
    NotReturnable { node: String, block: Ipv4Addr },
    #[error("{op} node {node}: gave up after {attempts} compare-and-swap attempts lost to concurrent changes")]
    Contention {
        op: &'static str,
        node: String,
        attempts: u32,
    },
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn parse_record(key: &str, value: &[u8]) -> Result<PodReservation, ReservationError> {
    let r: PodReservation = record::parse(key, value)?;
    r.check(key)?;
    Ok(r)
}

/// The node's pod reservation and its revision, or `None`.
pub fn get_pods<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<(PodReservation, Revision)>, ReservationError> {
    record::get(store, &pod_node_key(node), parse_record)
}

/// Every pod reservation, in node order; a block held twice is refused.
pub fn list_pods<S: Store + ?Sized>(store: &S) -> Result<Vec<PodReservation>, ReservationError> {
    let all = record::list(store, POD_NODES_PREFIX, parse_record)?;
    let held = all.iter().flat_map(|r| {
        r.blocks
            .iter()
            .map(move |b| ((r.pod_subnet_name.as_str(), *b), r.node.as_str()))
    });
    if let Some(((_, ip), first, second)) = record::first_held_twice(held) {
        return Err(ReservationError::AddressReservedTwice { ip, first, second });
    }
    Ok(all)
}

/// The blocks of `subnet_name` every node holds, from the index (keys only).
fn taken_blocks<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
) -> Result<BTreeSet<Ipv4Addr>, ReservationError> {
    let keys = store.list_keys(&blocks::subnet_blocks_prefix(subnet_name))?;
    Ok(blocks::reserved_from_keys(subnet_name, &keys)?
        .into_iter()
        .map(podsubnet::block_of)
        .collect())
}

/// Blocks held and addresses they span, of one pod subnet (for summaries).
pub fn pod_subnet_usage<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
    subnet: &NodeSubnet,
) -> Result<(u64, u64), ReservationError> {
    let held = taken_blocks(store, subnet_name)?.len() as u64;
    Ok((held, podsubnet::eligible_blocks(subnet).count() as u64))
}

fn guard_request(p: &PodJoin) -> JoinRequest {
    JoinRequest {
        node: p.node.clone(),
        subnet_name: p.subnet_name.clone(),
        subnet: p.subnet,
        max_pods: p.max_pods,
        in_use: BTreeSet::new(),
        lease: p.lease,
    }
}

fn put(key: String, value: Vec<u8>, lease: Option<LeaseId>) -> Op {
    match lease {
        Some(lease) => Op::PutWithLease { key, value, lease },
        None => Op::Put { key, value },
    }
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20))));
}

/// The node's existing reservation if it matches `p`, an error if it differs.
fn existing<S: Store + ?Sized>(
    store: &S,
    p: &PodJoin,
) -> Result<Option<PodReservation>, PodSubnetError> {
    let Some((r, _)) = get_pods(store, &p.node)? else {
        return Ok(None);
    };
    if r.pod_subnet_name == p.subnet_name
        && r.pod_subnet == p.subnet.cidr()
        && r.allocation == p.allocation
        && r.max_pods == p.max_pods.get()
    {
        return Ok(Some(r));
    }
    Err(PodSubnetError::JoinedDifferently {
        node: p.node.clone(),
        joined_name: r.pod_subnet_name,
        joined_cidr: r.pod_subnet,
        joined_allocation: r.allocation,
        joined_max_pods: r.max_pods,
        asked_name: p.subnet_name.clone(),
        asked_cidr: p.subnet.cidr(),
        asked_allocation: p.allocation,
        asked_max_pods: p.max_pods.get(),
    })
}

/// Takes the node's first blocks of the pod subnet: all `ceil((maxPods+1)/16)`
/// of them for a static node, one batch for a dynamic one. A node that holds
/// blocks of the same pod subnet with the same parameters gets them back
/// (`Ok((r, false))`). Exhaustion changes nothing and names the subnet's use.
pub fn join_pods<S: Store + ?Sized>(
    store: &S,
    p: &PodJoin,
) -> Result<(PodReservation, bool), PodSubnetError> {
    validate_node_name(&p.node)?;
    validate_subnet_name(&p.subnet_name)?;
    let key = pod_node_key(&p.node);
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(r) = existing(store, p)? {
            return Ok((r, false));
        }
        let (mut compares, mut ops, _) =
            guard_subnet_as(store, &guard_request(p), SubnetRole::Pods)?;
        let taken = taken_blocks(store, &p.subnet_name)?;
        let n = match p.allocation {
            Allocation::Static => podsubnet::blocks_for(p.max_pods),
            Allocation::Dynamic => 1,
        };
        let picked = podsubnet::pick_blocks(&p.subnet, &taken, n)
            .ok_or_else(|| podsubnet::exhausted(&p.subnet_name, &p.subnet, &p.node, &taken, n))?;
        let r = PodReservation {
            node: p.node.clone(),
            pod_subnet_name: p.subnet_name.clone(),
            pod_subnet: p.subnet.cidr(),
            allocation: p.allocation,
            max_pods: p.max_pods.get(),
            blocks: picked,
            lease: p.lease,
        };
        compares.push(Compare::Absent(key.clone()));
        ops.push(put(key.clone(), record::to_json(&key, &r)?, r.lease));
        ops.extend(
            r.index_keys()
                .into_iter()
                .map(|k| put(k, Vec::new(), r.lease)),
        );
        if store.txn(&compares, &ops)? {
            return Ok((r, true));
        }
        backoff(attempt);
    }
    Err(PodSubnetError::Contention {
        op: "join",
        node: p.node.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// A dynamic node takes `n` more batches (never past `ceil((maxPods+1)/16)`
/// blocks: beyond it the node's reservation is returned unchanged).
pub fn grow<S: Store + ?Sized>(
    store: &S,
    node: &str,
    n: u32,
) -> Result<PodReservation, PodSubnetError> {
    let key = pod_node_key(node);
    for attempt in 0..MAX_ATTEMPTS {
        let (mut r, rev) = dynamic_record(store, node)?;
        let max = MaxPods::new(r.max_pods).map_err(ReservationError::from)?;
        let room = podsubnet::blocks_for(max).saturating_sub(r.blocks.len() as u32);
        let n = n.min(room);
        if n == 0 {
            return Ok(r);
        }
        let subnet = NodeSubnet::new(r.pod_subnet).map_err(ReservationError::from)?;
        let join = PodJoin {
            node: node.to_string(),
            subnet_name: r.pod_subnet_name.clone(),
            subnet,
            allocation: r.allocation,
            max_pods: max,
            lease: r.lease,
        };
        let (mut compares, mut ops, _) =
            guard_subnet_as(store, &guard_request(&join), SubnetRole::Pods)?;
        let taken = taken_blocks(store, &r.pod_subnet_name)?;
        let picked = podsubnet::pick_blocks(&subnet, &taken, n)
            .ok_or_else(|| podsubnet::exhausted(&r.pod_subnet_name, &subnet, node, &taken, n))?;
        let new_keys: Vec<String> = picked
            .iter()
            .map(|b| block_key(&r.pod_subnet_name, *b, node))
            .collect();
        r.blocks.extend(picked);
        r.blocks.sort_unstable();
        compares.push(Compare::ModRevision(key.clone(), rev));
        ops.push(put(key.clone(), record::to_json(&key, &r)?, r.lease));
        ops.extend(new_keys.into_iter().map(|k| put(k, Vec::new(), r.lease)));
        if store.txn(&compares, &ops)? {
            return Ok(r);
        }
        backoff(attempt);
    }
    Err(PodSubnetError::Contention {
        op: "grow",
        node: node.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

fn dynamic_record<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<(PodReservation, Revision), PodSubnetError> {
    let (r, rev) = get_pods(store, node)?.ok_or_else(|| PodSubnetError::NotJoined {
        node: node.to_string(),
    })?;
    if r.allocation != Allocation::Dynamic {
        return Err(PodSubnetError::NotDynamic {
            node: node.to_string(),
            allocation: r.allocation,
        });
    }
    Ok((r, rev))
}

/// A dynamic node returns `give_back` (blocks it holds, never its first). The
/// caller has made sure no pod uses them (the node's pool no longer lists them).
pub fn shrink<S: Store + ?Sized>(
    store: &S,
    node: &str,
    give_back: &[Ipv4Addr],
) -> Result<PodReservation, PodSubnetError> {
    let key = pod_node_key(node);
    for attempt in 0..MAX_ATTEMPTS {
        let (mut r, rev) = dynamic_record(store, node)?;
        let first = r.blocks.iter().min().copied();
        if let Some(b) = give_back
            .iter()
            .find(|b| !r.blocks.contains(b) || Some(**b) == first)
        {
            return Err(PodSubnetError::NotReturnable {
                node: node.to_string(),
                block: *b,
            });
        }
        r.blocks.retain(|b| !give_back.contains(b));
        let mut ops = vec![put(key.clone(), record::to_json(&key, &r)?, r.lease)];
        ops.extend(give_back.iter().map(|b| Op::Delete {
            key: block_key(&r.pod_subnet_name, *b, node),
        }));
        if store.txn(&[Compare::ModRevision(key.clone(), rev)], &ops)? {
            return Ok(r);
        }
        backoff(attempt);
    }
    Err(PodSubnetError::Contention {
        op: "shrink",
        node: node.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Releases every block of the node (idempotent: `Ok(None)` when it holds none).
pub fn leave_pods<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<PodReservation>, PodSubnetError> {
    validate_node_name(node)?;
    let key = pod_node_key(node);
    for attempt in 0..MAX_ATTEMPTS {
        let Some((r, rev)) = get_pods(store, node)? else {
            return Ok(None);
        };
        let mut ops = vec![Op::Delete { key: key.clone() }];
        ops.extend(r.index_keys().into_iter().map(|key| Op::Delete { key }));
        if store.txn(&[Compare::ModRevision(key.clone(), rev)], &ops)? {
            return Ok(Some(r));
        }
        backoff(attempt);
    }
    Err(PodSubnetError::Contention {
        op: "leave",
        node: node.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests;
