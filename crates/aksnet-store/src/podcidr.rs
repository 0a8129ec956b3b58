//! Per-node pod CIDRs (issue 13): the cluster's pod CIDR, registered once, cut
//! into blocks of one fixed prefix length (a /24 by default), one block per node.
//! What kube-controller-manager's range allocator does for kubenet
//! (`--cluster-cidr`, `--node-cidr-mask-size`, default /24:
//! https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/)
//! and what AKS does for kubenet and Azure CNI Overlay, whose nodes each get a /24
//! of the pod CIDR (docs/azure.md#kubenet, docs/azure.md#overlay). Each record is
//! also one entry of the route table (`<block> via <node IP>`), which is what
//! `aksnet agent --routes` and `aksnet node routes` read.
//!
//! Key layout (values are JSON):
//!
//! | key | value | role |
//! |---|---|---|
//! | `cluster/podcidr` | [`PodCidrPool`] | the cluster pod CIDR and the block length; the guard: every allocation compares it at its mod revision and puts it back |
//! | `podcidrs/<node>` | [`NodePodCidr`] | the node's block and next hop; on the node's lease when it has one |
//!
//! Why it is safe (the same argument as `reservation.rs`): an allocation reads the
//! guard (revision r) BEFORE it lists `podcidrs/`, and commits only if the guard
//! is still at r and the node's key is still absent. Every other allocation bumps
//! the guard, so one that committed after our guard read fails our compare and one
//! that committed before it is in our list. Release (and lease expiry) deletes
//! only the node's key: a concurrent allocation that listed before the delete
//! merely sees one block fewer free. Hence no block is ever held twice.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::kv::{Compare, LeaseId, Op, Revision, Store, StoreError};
use crate::reservation::{validate_node_name, ReservationError, MAX_ATTEMPTS};

/// The cluster pod CIDR key (the guard).
pub const POD_CIDR_POOL_KEY: &str = "cluster/podcidr";
/// Prefix of the per-node block keys.
pub const POD_CIDRS_PREFIX: &str = "podcidrs/";
/// The block length AKS gives each node in kubenet and Overlay.
pub const DEFAULT_NODE_PREFIX_LEN: u8 = 24;
/// The longest block: a /28 holds the bridge's `.1` and a dozen pods; anything
/// smaller is no pod range.
pub const MAX_NODE_PREFIX_LEN: u8 = 28;

pub fn node_pod_cidr_key(node: &str) -> String {
    format!("{POD_CIDRS_PREFIX}{node}")
}

/// The value of `cluster/podcidr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodCidrPool {
    pub cidr: Ipv4Net,
    pub node_prefix_len: u8,
}

impl PodCidrPool {
    /// Checks the pool: no host bits, `cidr`'s length ≤ block length ≤ /28.
    pub fn new(cidr: Ipv4Net, node_prefix_len: u8) -> Result<Self, PodCidrError> {
        if cidr.trunc() != cidr {
            return Err(PodCidrError::HostBits { cidr });
        }
        if node_prefix_len < cidr.prefix_len() || node_prefix_len > MAX_NODE_PREFIX_LEN {
            return Err(PodCidrError::BadBlockLength {
                cidr,
                node_prefix_len,
            });
        }
        Ok(Self {
            cidr,
            node_prefix_len,
        })
    }

    /// How many node blocks the pool holds.
    pub fn blocks(&self) -> u64 {
        1u64 << (self.node_prefix_len - self.cidr.prefix_len())
    }

    /// The `i`-th block, `None` past the end.
    pub fn block(&self, i: u64) -> Option<Ipv4Net> {
        if i >= self.blocks() {
            return None;
        }
        let size = 1u64 << (32 - self.node_prefix_len);
        let first = u64::from(u32::from(self.cidr.network())) + i * size;
        let first = u32::try_from(first).ok()?;
        Ipv4Net::new(Ipv4Addr::from(first), self.node_prefix_len).ok()
    }

    /// True when `block` is one of the pool's blocks (aligned, right length).
    pub fn holds(&self, block: Ipv4Net) -> bool {
        block.prefix_len() == self.node_prefix_len
            && block.trunc() == block
            && self.cidr.contains(&block)
    }
}

/// The value of `podcidrs/<node>`: the node's block and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePodCidr {
    pub node: String,
    pub cidr: Ipv4Net,
    /// The next hop of the block's route: the node's address on the LAN.
    pub node_ip: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseId>,
}

/// What [`allocate`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCidrRequest {
    pub node: String,
    pub node_ip: Ipv4Addr,
    /// The block the node's pods already use (its bridge holds its `.1`, its
    /// IPAM state hands out its addresses): it must be given back, or the
    /// allocation is refused (same rule as `JoinRequest::in_use`).
    pub keep: Option<Ipv4Net>,
    pub lease: Option<LeaseId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodCidrOutcome {
    Allocated(NodePodCidr),
    /// The node already held a block (with the same next hop): no write.
    AlreadyAllocated(NodePodCidr),
}

impl PodCidrOutcome {
    pub fn record(&self) -> &NodePodCidr {
        match self {
            Self::Allocated(r) | Self::AlreadyAllocated(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PodCidrError {
    #[error("pod CIDR {cidr} has host bits set (did you mean {}?)", cidr.trunc())]
    HostBits { cidr: Ipv4Net },
    #[error(
        "per-node block length /{node_prefix_len} does not fit pod CIDR {cidr}: it must be \
         between /{} and /{MAX_NODE_PREFIX_LEN}", cidr.prefix_len()
    )]
    BadBlockLength { cidr: Ipv4Net, node_prefix_len: u8 },
    #[error(
        "the cluster pod CIDR is registered as {}, /{} per node; this node asks for {}, /{} \
         per node (every node of a cluster uses the same pod CIDR)",
        registered.cidr, registered.node_prefix_len, asked.cidr, asked.node_prefix_len
    )]
    PoolMismatch {
        registered: PodCidrPool,
        asked: PodCidrPool,
    },
    #[error(
        "pod CIDR {cidr} overlaps subnet {subnet_name} ({subnet}) in the cluster store: {}",
        aksnet_core::azure::OVERLAY_POD_CIDR_OVERLAP_REASON
    )]
    OverlapsSubnet {
        cidr: Ipv4Net,
        subnet_name: String,
        subnet: Ipv4Net,
    },
    #[error(
        "no cluster pod CIDR is registered in the cluster store (join a node with --pod-cidr-from)"
    )]
    NoPool,
    #[error(
        "pod CIDR {cidr} is exhausted: all {blocks} /{node_prefix_len} blocks are held by \
         nodes; leave a node or register a larger pod CIDR"
    )]
    Exhausted {
        cidr: Ipv4Net,
        blocks: u64,
        node_prefix_len: u8,
    },
    #[error(
        "node {node} holds pod CIDR {held} (next hop {held_ip}), not {asked} with next hop \
         {asked_ip}; its pods use the block it holds: leave first to change it"
    )]
    NodeHoldsOther {
        node: String,
        held: Ipv4Net,
        held_ip: Ipv4Addr,
        asked: String,
        asked_ip: Ipv4Addr,
    },
    #[error(
        "node {node}'s pods use {block}, which node {holder} holds; refusing, nothing changed"
    )]
    KeepHeldByOther {
        node: String,
        block: Ipv4Net,
        holder: String,
    },
    #[error("node {node}'s pods use {block}, which is not a block of pod CIDR {cidr} (/{len} per node)", len = pool.node_prefix_len, cidr = pool.cidr)]
    KeepNotInPool {
        node: String,
        block: Ipv4Net,
        pool: PodCidrPool,
    },
    #[error("cluster store holds pod CIDR {cidr} twice: nodes {first} and {second}")]
    HeldTwice {
        cidr: Ipv4Net,
        first: String,
        second: String,
    },
    #[error("{op} pod CIDR of node {node}: gave up after {MAX_ATTEMPTS} compare-and-swap attempts lost to concurrent changes")]
    Contention { op: &'static str, node: String },
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PodCidrError {
    /// True for refusals caused by the input itself (exit 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::HostBits { .. }
                | Self::BadBlockLength { .. }
                | Self::Reservation(ReservationError::InvalidNodeName { .. })
        )
    }
}

fn corrupt(key: &str, detail: String) -> PodCidrError {
    ReservationError::CorruptRecord {
        key: key.to_string(),
        detail,
    }
    .into()
}

fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, PodCidrError> {
    serde_json::from_slice(value).map_err(|e| corrupt(key, e.to_string()))
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, PodCidrError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key, format!("cannot serialise: {e}")))
}

/// The registered pool and its revision, or `None`.
pub fn get_pool<S: Store + ?Sized>(
    store: &S,
) -> Result<Option<(PodCidrPool, Revision)>, PodCidrError> {
    let Some((value, rev)) = store.get(POD_CIDR_POOL_KEY)? else {
        return Ok(None);
    };
    let p: PodCidrPool = parse(POD_CIDR_POOL_KEY, &value)?;
    PodCidrPool::new(p.cidr, p.node_prefix_len)
        .map_err(|e| corrupt(POD_CIDR_POOL_KEY, e.to_string()))?;
    Ok(Some((p, rev)))
}

/// Refuses a pod CIDR that overlaps a subnet of the cluster store's registry
/// (node subnets and pod subnets), with AKS's reason.
pub fn refuse_overlapping_subnets<S: Store + ?Sized>(
    store: &S,
    cidr: Ipv4Net,
) -> Result<(), PodCidrError> {
    for (subnet_name, subnet) in crate::reservation::list_subnets(store)? {
        let subnet = subnet.cidr();
        if aksnet_core::azure::overlaps(&cidr.into(), &subnet.into()) {
            return Err(PodCidrError::OverlapsSubnet {
                cidr,
                subnet_name,
                subnet,
            });
        }
    }
    Ok(())
}

/// The compares and ops that guard the pool: registers `asked` when no pool is
/// registered (refusing one that overlaps a node subnet), else requires the
/// same pool. Read BEFORE anything is listed (module comment).
fn guard_pool<S: Store + ?Sized>(
    store: &S,
    asked: Option<PodCidrPool>,
) -> Result<(PodCidrPool, Vec<Compare>, Vec<Op>), PodCidrError> {
    let key = POD_CIDR_POOL_KEY.to_string();
    if let Some((pool, rev)) = get_pool(store)? {
        if let Some(asked) = asked.filter(|a| *a != pool) {
            return Err(PodCidrError::PoolMismatch {
                registered: pool,
                asked,
            });
        }
        // Putting the same value back bumps the guard's mod revision.
        let value = to_json(&key, &pool)?;
        let ops = vec![Op::Put {
            key: key.clone(),
            value,
        }];
        return Ok((pool, vec![Compare::ModRevision(key, rev)], ops));
    }
    let pool = asked.ok_or(PodCidrError::NoPool)?;
    refuse_overlapping_subnets(store, pool.cidr)?;
    let value = to_json(&key, &pool)?;
    Ok((
        pool,
        vec![Compare::Absent(key.clone())],
        vec![Op::Put { key, value }],
    ))
}

fn parse_record(key: &str, value: &[u8]) -> Result<NodePodCidr, PodCidrError> {
    let r: NodePodCidr = parse(key, value)?;
    if node_pod_cidr_key(&r.node) != key {
        return Err(corrupt(key, format!("record names node {:?}", r.node)));
    }
    Ok(r)
}

/// The node's block and its revision, or `None`.
pub fn get_node_pod_cidr<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<(NodePodCidr, Revision)>, PodCidrError> {
    let key = node_pod_cidr_key(node);
    match store.get(&key)? {
        None => Ok(None),
        Some((v, rev)) => Ok(Some((parse_record(&key, &v)?, rev))),
    }
}

/// Every node's block, in address order. Refuses a store in which two nodes
/// hold one block.
pub fn list_pod_cidrs<S: Store + ?Sized>(store: &S) -> Result<Vec<NodePodCidr>, PodCidrError> {
    let mut v = store
        .list(POD_CIDRS_PREFIX)?
        .iter()
        .map(|kv| parse_record(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_by_key(|r| (r.cidr, r.node.clone()));
    for w in v.windows(2) {
        if w[0].cidr.contains(&w[1].cidr) || w[1].cidr.contains(&w[0].cidr) {
            return Err(PodCidrError::HeldTwice {
                cidr: w[1].cidr,
                first: w[0].node.clone(),
                second: w[1].node.clone(),
            });
        }
    }
    Ok(v)
}

/// The block to give: `keep` when the node's pods already use it (refused if
/// another node holds it), else the lowest free block.
fn pick(
    pool: &PodCidrPool,
    req: &PodCidrRequest,
    held: &BTreeMap<Ipv4Net, String>,
) -> Result<Ipv4Net, PodCidrError> {
    if let Some(block) = req.keep {
        if !pool.holds(block) {
            return Err(PodCidrError::KeepNotInPool {
                node: req.node.clone(),
                block,
                pool: *pool,
            });
        }
        return match held.get(&block) {
            Some(holder) => Err(PodCidrError::KeepHeldByOther {
                node: req.node.clone(),
                block,
                holder: holder.clone(),
            }),
            None => Ok(block),
        };
    }
    // Held blocks are sorted, so the first gap is found in one pass.
    let mut next = 0u64;
    let base = u64::from(u32::from(pool.cidr.network()));
    for b in held.keys().filter(|b| pool.holds(**b)) {
        let i = (u64::from(u32::from(b.network())) - base) >> (32 - pool.node_prefix_len);
        if i > next {
            break;
        }
        next = i + 1;
    }
    pool.block(next).ok_or(PodCidrError::Exhausted {
        cidr: pool.cidr,
        blocks: pool.blocks(),
        node_prefix_len: pool.node_prefix_len,
    })
}

/// The node's existing block if it matches the request; an error if it holds
/// another one.
fn existing<S: Store + ?Sized>(
    store: &S,
    req: &PodCidrRequest,
) -> Result<Option<NodePodCidr>, PodCidrError> {
    let Some((r, _)) = get_node_pod_cidr(store, &req.node)? else {
        return Ok(None);
    };
    if r.node_ip == req.node_ip && req.keep.is_none_or(|k| k == r.cidr) {
        return Ok(Some(r));
    }
    Err(PodCidrError::NodeHoldsOther {
        node: req.node.clone(),
        held: r.cidr,
        held_ip: r.node_ip,
        asked: req
            .keep
            .map_or_else(|| "any block".to_string(), |k| k.to_string()),
        asked_ip: req.node_ip,
    })
}

/// Gives the node a block of the pool (registering `pool` on first use), or
/// returns the block it holds. Refuses, changing nothing, when the pool is
/// exhausted or another pool is registered.
pub fn allocate<S: Store + ?Sized>(
    store: &S,
    pool: Option<PodCidrPool>,
    req: &PodCidrRequest,
) -> Result<PodCidrOutcome, PodCidrError> {
    validate_node_name(&req.node)?;
    let key = node_pod_cidr_key(&req.node);
    for attempt in 0..MAX_ATTEMPTS {
        let (pool, mut compares, mut ops) = guard_pool(store, pool)?;
        if let Some(r) = existing(store, req)? {
            if !pool.holds(r.cidr) {
                return Err(corrupt(
                    &key,
                    format!("{} is not a block of {}", r.cidr, pool.cidr),
                ));
            }
            return Ok(PodCidrOutcome::AlreadyAllocated(r));
        }
        let held: BTreeMap<Ipv4Net, String> = list_pod_cidrs(store)?
            .into_iter()
            .map(|r| (r.cidr, r.node))
            .collect();
        let record = NodePodCidr {
            node: req.node.clone(),
            cidr: pick(&pool, req, &held)?,
            node_ip: req.node_ip,
            lease: req.lease,
        };
        let value = to_json(&key, &record)?;
        compares.push(Compare::Absent(key.clone()));
        ops.push(match req.lease {
            Some(lease) => Op::PutWithLease {
                key: key.clone(),
                value,
                lease,
            },
            None => Op::Put {
                key: key.clone(),
                value,
            },
        });
        if store.txn(&compares, &ops)? {
            return Ok(PodCidrOutcome::Allocated(record));
        }
        tracing::debug!(node = %req.node, attempt, "pod CIDR allocation lost a compare-and-swap race; retrying");
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(20))));
    }
    Err(PodCidrError::Contention {
        op: "allocate",
        node: req.node.clone(),
    })
}

/// Frees the node's block (compare-on-owner). `Ok(None)` when it held none:
/// releasing is idempotent, and a block is never freed twice.
pub fn release<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<NodePodCidr>, PodCidrError> {
    validate_node_name(node)?;
    let key = node_pod_cidr_key(node);
    for attempt in 0..MAX_ATTEMPTS {
        let Some((r, rev)) = get_node_pod_cidr(store, node)? else {
            return Ok(None);
        };
        if store.txn(
            &[Compare::ModRevision(key.clone(), rev)],
            &[Op::Delete { key: key.clone() }],
        )? {
            return Ok(Some(r));
        }
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(20))));
    }
    Err(PodCidrError::Contention {
        op: "release",
        node: node.to_string(),
    })
}

#[cfg(test)]
mod tests;
