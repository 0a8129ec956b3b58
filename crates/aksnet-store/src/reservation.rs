//! Node reservations for Azure CNI Node Subnet, built on any [`Store`] (issue 3).
//! What AKS's control plane does when it gives a node's NIC `maxPods` secondary
//! addresses (docs/azure.md#node-subnet-ipam), as compare-and-swap transactions.
//!
//! Key layout (values are JSON):
//!
//! | key | value | role |
//! |---|---|---|
//! | `cluster/subnets` | `{"subnets":{"<name>":"<cidr>"}}` | subnet registry: every subnet creation compares it, so two subnets never overlap |
//! | `subnets/<name>` | `{"cidr":"<cidr>"}` | the subnet's join guard: every join into it compares it at its mod revision and puts it back |
//! | `nodes/<node>` | [`NodeReservation`] | one key per node: the reservation itself, and nothing else holds it |
//! | `blocks/<name>/<first>+<count>/<node>` | empty | the subnet's address index ([`crate::blocks`]), written and deleted with `nodes/<node>` in one transaction |
//!
//! Why a per-subnet guard rather than one key per address (`ips/<subnet>/<ip>` with
//! "absent" compares): a node at maxPods 250 reserves 251 addresses, and etcd refuses
//! transactions with more than 128 operations by default (`--max-txn-ops`), so one
//! key per address cannot be one transaction. With the guard a join is always 2–3
//! compares and 2–3 puts, and the reservation lives in exactly one key
//! (docs/prior-art.md#cluster-allocation: never split a reservation across two objects,
//! whereabouts#712). The cost is that joins into one subnet serialise; joins are
//! rare (one per node), so contention only means a retry.
//!
//! Why it is safe: a join reads the guard (revision r) *before* it reads the
//! subnet's address index, and commits only if the guard is still at r. Every other
//! join into the subnet bumps the guard, so any join that committed after our guard
//! read fails our compare, and any that committed before it is in the index we read
//! (reads are linearizable; a join writes its index keys in its own transaction).
//! Hence two joins can never pick the same address. Leaving (and a lease expiring)
//! deletes the node key and its index keys and does not touch the guard: a
//! concurrent join that read the index before the delete merely sees fewer free
//! addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use aksnet_core::azure::{
    pick_node_addresses, AzureError, InsufficientSubnetSize, MaxPods, NodeSubnet,
};
use aksnet_core::pool::NodeRecord;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::blocks;
use crate::kv::{Compare, LeaseId, Op, Revision, Store, StoreError};
use crate::record::{self, corrupt, parse, to_json};

/// The subnet registry key.
pub const SUBNET_REGISTRY_KEY: &str = "cluster/subnets";
/// Prefix of the per-subnet guard keys.
pub const SUBNETS_PREFIX: &str = "subnets/";
/// Prefix of the per-node reservation keys.
pub const NODES_PREFIX: &str = "nodes/";

/// How many compare-and-swap rounds a join or leave tries before giving up. Each
/// failed round means another join committed, so N concurrent joiners need at most
/// N rounds; 64 leaves a wide margin.
pub const MAX_ATTEMPTS: u32 = 64;

pub fn node_key(node: &str) -> String {
    format!("{NODES_PREFIX}{node}")
}

pub fn subnet_key(name: &str) -> String {
    format!("{SUBNETS_PREFIX}{name}")
}

/// What a node holds: the value of `nodes/<node>`. The record and its rules live
/// in `aksnet_core::pool` ([`NodeRecord`], one record with the node's pool file,
/// checked by the same validator); this is its name in the store.
pub type NodeReservation = NodeRecord;

/// Invariants a stored record must meet; `Err` says which is broken.
fn check(r: &NodeReservation) -> Result<(), String> {
    r.validate().map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubnetRecord {
    cidr: Ipv4Net,
    /// The subnet has the address index ([`crate::blocks`]); subnets created
    /// before it existed have not, and joins into them list every reservation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    indexed: bool,
    /// A pod subnet (issue 15): only pods take its addresses, in /28 blocks
    /// (`crate::podsubnet`); no node and no VM is placed in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pods: bool,
}

impl SubnetRecord {
    fn role(&self) -> SubnetRole {
        if self.pods {
            SubnetRole::Pods
        } else {
            SubnetRole::Nodes
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubnetRegistry {
    subnets: BTreeMap<String, Ipv4Net>,
}

/// A join: which node, into which subnet, at which maxPods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub node: String,
    pub subnet_name: String,
    pub subnet: NodeSubnet,
    pub max_pods: MaxPods,
    /// Addresses of this subnet that the node's own IPAM state already hands to
    /// pods (`aksnet_ipam::allocated_addresses`). The block the node receives must
    /// hold every one of them, or the join is refused: otherwise a pod would keep an
    /// address the store gives to another node (issue 10 item 4).
    pub in_use: BTreeSet<Ipv4Addr>,
    /// Put the reservation on this lease ([`Store::grant_lease`]); `None`: it
    /// lives until `leave`.
    pub lease: Option<LeaseId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// A new reservation was made.
    Joined(NodeReservation),
    /// The node was already joined with the same parameters: same reservation.
    AlreadyJoined(NodeReservation),
}

impl JoinOutcome {
    pub fn reservation(&self) -> &NodeReservation {
        match self {
            Self::Joined(r) | Self::AlreadyJoined(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    #[error(transparent)]
    InsufficientSubnetSize(#[from] InsufficientSubnetSize),
    #[error(
        "node {node} is already joined to subnet {joined_name} ({joined_cidr}) at maxPods \
         {joined_max_pods}, not subnet {asked_name} ({asked_cidr}) at maxPods {asked_max_pods}; \
         leave first to change its reservation"
    )]
    NodeJoinedDifferently {
        node: String,
        joined_name: String,
        joined_cidr: Ipv4Net,
        joined_max_pods: u32,
        asked_name: String,
        asked_cidr: Ipv4Net,
        asked_max_pods: u32,
    },
    #[error("subnet {name} ({cidr}) is a {registered} in the cluster store, not a {asked}: {why}")]
    SubnetRoleMismatch {
        name: String,
        cidr: Ipv4Net,
        registered: &'static str,
        asked: &'static str,
        why: &'static str,
    },
    #[error("subnet {name} is registered with CIDR {registered}, not {asked}")]
    SubnetCidrMismatch {
        name: String,
        registered: Ipv4Net,
        asked: Ipv4Net,
    },
    #[error("subnet {name} ({cidr}) overlaps subnet {other_name} ({other_cidr}) already in the cluster store")]
    SubnetOverlap {
        name: String,
        cidr: Ipv4Net,
        other_name: String,
        other_cidr: Ipv4Net,
    },
    #[error("invalid node name {value:?}: {reason}")]
    InvalidNodeName { value: String, reason: &'static str },
    #[error("invalid subnet name {value:?}: {reason}")]
    InvalidSubnetName { value: String, reason: &'static str },
    #[error(
        "node {node}'s IPAM state hands {ips} to pods, outside the block it would receive \
         (node IP {node_ip}, pod IPs {block}): the cluster store no longer reserves those \
         addresses for this node (was the store lost, or restored from an older copy?); \
         refusing to join, nothing changed. Restore the store, or delete those pods on the \
         node, then join again"
    )]
    InUseOutsideBlock {
        node: String,
        ips: String,
        node_ip: Ipv4Addr,
        block: String,
    },
    #[error(
        "cluster store holds address {ip} twice: in the reservation of node {first} and of \
         node {second}; the store is inconsistent (a human must decide which node keeps it)"
    )]
    AddressReservedTwice {
        ip: Ipv4Addr,
        first: String,
        second: String,
    },
    #[error(
        "node {node}: the free addresses of subnet {subnet_name} are scattered over {runs} \
         runs, more than one transaction may write ({max}); leave and rejoin nodes with \
         the same maxPods to defragment",
        max = crate::blocks::MAX_RUNS_PER_NODE
    )]
    TooFragmented {
        node: String,
        subnet_name: String,
        runs: usize,
    },
    #[error("cluster store key {key} holds an invalid record: {detail}")]
    CorruptRecord { key: String, detail: String },
    #[error("{op} node {node}: gave up after {attempts} compare-and-swap attempts lost to concurrent changes")]
    Contention {
        op: &'static str,
        node: String,
        attempts: u32,
    },
    #[error(transparent)]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A Kubernetes node name is a DNS subdomain (RFC 1123): at most 253 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending alphanumeric.
pub fn validate_node_name(name: &str) -> Result<(), ReservationError> {
    let bad = |reason| {
        Err(ReservationError::InvalidNodeName {
            value: name.to_string(),
            reason,
        })
    };
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => bad("empty"),
        _ if bytes.len() > 253 => bad("longer than 253 characters"),
        _ if !bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'.') => {
            bad("a node name has only lowercase letters, digits, '-' and '.' (RFC 1123)")
        }
        (Some(&f), Some(&l)) if !alnum(f) || !alnum(l) => {
            bad("a node name starts and ends with a lowercase letter or digit (RFC 1123)")
        }
        _ => Ok(()),
    }
}

/// Azure's subnet name rule: 1–80 characters of letters, digits, `_`, `.` and `-`,
/// starting with a letter or digit and ending with a letter, digit or `_`.
pub fn validate_subnet_name(name: &str) -> Result<(), ReservationError> {
    let bad = |reason| {
        Err(ReservationError::InvalidSubnetName {
            value: name.to_string(),
            reason,
        })
    };
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => bad("empty"),
        _ if bytes.len() > 80 => bad("longer than 80 characters"),
        _ if !bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) =>
        {
            bad("an Azure subnet name has only letters, digits, '_', '.' and '-'")
        }
        (Some(&f), _) if !f.is_ascii_alphanumeric() => {
            bad("an Azure subnet name starts with a letter or digit")
        }
        (_, Some(&l)) if !(l.is_ascii_alphanumeric() || l == b'_') => {
            bad("an Azure subnet name ends with a letter, digit or '_'")
        }
        _ => Ok(()),
    }
}

fn parse_reservation(key: &str, value: &[u8]) -> Result<NodeReservation, ReservationError> {
    let r: NodeReservation = parse(key, value)?;
    check(&r).map_err(|detail| corrupt(key, detail))?;
    if node_key(&r.node) != key {
        return Err(corrupt(key, format!("record names node {:?}", r.node)));
    }
    Ok(r)
}

/// The reservation of `node` and its revision (for [`release`]), or `None`.
pub fn get_node<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<(NodeReservation, Revision)>, ReservationError> {
    record::get(store, &node_key(node), parse_reservation)
}

/// Every node reservation, in node-name order. Refuses a store in which two
/// reservations hold one address (issue 10 item 4): such a store is never
/// double-counted or built upon.
pub fn list_nodes<S: Store + ?Sized>(store: &S) -> Result<Vec<NodeReservation>, ReservationError> {
    let nodes = record::list(store, NODES_PREFIX, parse_reservation)?;
    check_no_address_twice(&nodes)?;
    Ok(nodes)
}

/// `Err(AddressReservedTwice)` naming the first address two reservations share.
pub fn check_no_address_twice(nodes: &[NodeReservation]) -> Result<(), ReservationError> {
    let held = nodes
        .iter()
        .flat_map(|n| n.addresses().map(move |ip| (ip, n.node.as_str())));
    match record::first_held_twice(held) {
        Some((ip, first, second)) => {
            Err(ReservationError::AddressReservedTwice { ip, first, second })
        }
        None => Ok(()),
    }
}

/// Refuses a block that leaves out addresses the node's IPAM already uses.
fn check_in_use(req: &JoinRequest, r: &NodeReservation) -> Result<(), ReservationError> {
    let block: BTreeSet<Ipv4Addr> = r.pod_ips.iter().copied().collect();
    let outside: Vec<Ipv4Addr> = req.in_use.difference(&block).copied().collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(ReservationError::InUseOutsideBlock {
        node: req.node.clone(),
        ips: aksnet_core::azure::format_address_runs(&outside),
        node_ip: r.node_ip,
        block: aksnet_core::azure::format_address_runs(&r.pod_ips),
    })
}

/// Every subnet joined so far, by name.
pub fn list_subnets<S: Store + ?Sized>(
    store: &S,
) -> Result<Vec<(String, NodeSubnet)>, ReservationError> {
    store
        .list(SUBNETS_PREFIX)?
        .iter()
        .map(|kv| {
            let rec: SubnetRecord = parse(&kv.key, &kv.value)?;
            let subnet =
                NodeSubnet::new(rec.cidr).map_err(|e| ReservationError::CorruptRecord {
                    key: kv.key.clone(),
                    detail: e.to_string(),
                })?;
            let name = kv.key.trim_start_matches(SUBNETS_PREFIX).to_string();
            Ok((name, subnet))
        })
        .collect()
}

fn backoff(attempt: u32) {
    // Joins are rare; a short, growing pause keeps a crowd of joiners from
    // re-reading in lockstep (and is kind to etcd later).
    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20))));
}

/// The existing reservation of the node, if it joined with the same parameters;
/// an error if it joined with others.
fn existing<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
    pods: PodHome<'_>,
) -> Result<Option<NodeReservation>, ReservationError> {
    let Some((existing, _)) = get_node(store, &req.node)? else {
        return Ok(None);
    };
    let cidr = req.subnet.cidr();
    if existing.subnet_name == req.subnet_name
        && existing.subnet == cidr
        && existing.max_pods == req.max_pods.get()
        && existing.pod_subnet.as_deref() == pods.pod_subnet()
        && existing.overlay == matches!(pods, PodHome::Overlay)
    {
        check_in_use(req, &existing)?;
        return Ok(Some(existing));
    }
    Err(ReservationError::NodeJoinedDifferently {
        node: req.node.clone(),
        joined_name: existing.subnet_name,
        joined_cidr: existing.subnet,
        joined_max_pods: existing.max_pods,
        asked_name: req.subnet_name.clone(),
        asked_cidr: cidr,
        asked_max_pods: req.max_pods.get(),
    })
}

/// The compares and ops that guard the subnet, and whether it has the address
/// index ([`crate::blocks`]). Reads the guard BEFORE anything else is listed (see
/// the module comment).
pub(crate) fn guard_subnet<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
) -> Result<(Vec<Compare>, Vec<Op>, bool), ReservationError> {
    guard_subnet_as(store, req, SubnetRole::Nodes)
}

/// What a subnet of the cluster store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubnetRole {
    /// Nodes (and their pods in Node Subnet), VMs and other tenants.
    Nodes,
    /// Pods only, in /28 blocks (Pod Subnet, `crate::podsubnet`).
    Pods,
}

impl SubnetRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Nodes => "node subnet",
            Self::Pods => "pod subnet",
        }
    }
}

/// Why the roles never mix (the Legacy CNI article's FAQ).
pub const ROLE_REASON: &str = "VMs cannot be placed in a pod subnet: it holds only pods' \
     addresses, and a node subnet is never a pod subnet \
     (https://learn.microsoft.com/en-us/azure/aks/concepts-network-legacy-cni, FAQ)";

/// The role of the subnet `name` in the store, or `None` when it is unknown.
pub fn subnet_role<S: Store + ?Sized>(
    store: &S,
    name: &str,
) -> Result<Option<SubnetRole>, ReservationError> {
    let skey = subnet_key(name);
    Ok(match store.get(&skey)? {
        None => None,
        Some((v, _)) => Some(parse::<SubnetRecord>(&skey, &v)?.role()),
    })
}

/// [`guard_subnet`] for a subnet of `role`: a subnet registered with the other
/// role is refused with [`ROLE_REASON`].
pub(crate) fn guard_subnet_as<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
    role: SubnetRole,
) -> Result<(Vec<Compare>, Vec<Op>, bool), ReservationError> {
    let cidr = req.subnet.cidr();
    let skey = subnet_key(&req.subnet_name);
    if let Some((value, rev)) = store.get(&skey)? {
        let rec: SubnetRecord = parse(&skey, &value)?;
        check_registered(req, &rec, role)?;
        // Putting the same value bumps the guard's mod revision.
        let ops = vec![Op::Put {
            key: skey.clone(),
            value,
        }];
        return Ok((vec![Compare::ModRevision(skey, rev)], ops, rec.indexed));
    }
    let (mut registry, reg_compare) = match store.get(SUBNET_REGISTRY_KEY)? {
        Some((v, rev)) => (
            parse::<SubnetRegistry>(SUBNET_REGISTRY_KEY, &v)?,
            Compare::ModRevision(SUBNET_REGISTRY_KEY.to_string(), rev),
        ),
        None => (
            SubnetRegistry::default(),
            Compare::Absent(SUBNET_REGISTRY_KEY.to_string()),
        ),
    };
    check_no_conflict(&registry, req)?;
    registry.subnets.insert(req.subnet_name.clone(), cidr);
    let record = SubnetRecord {
        cidr,
        indexed: true,
        pods: role == SubnetRole::Pods,
    };
    let ops = vec![
        Op::Put {
            key: SUBNET_REGISTRY_KEY.to_string(),
            value: to_json(SUBNET_REGISTRY_KEY, &registry)?,
        },
        Op::Put {
            key: skey.clone(),
            value: to_json(&skey, &record)?,
        },
    ];
    Ok((vec![reg_compare, Compare::Absent(skey)], ops, true))
}

/// A registered subnet of the same name must have the same CIDR and role.
fn check_registered(
    req: &JoinRequest,
    rec: &SubnetRecord,
    role: SubnetRole,
) -> Result<(), ReservationError> {
    let cidr = req.subnet.cidr();
    let registered = rec.role();
    if registered != role && rec.cidr == cidr {
        return Err(ReservationError::SubnetRoleMismatch {
            name: req.subnet_name.clone(),
            cidr,
            registered: registered.name(),
            asked: role.name(),
            why: ROLE_REASON,
        });
    }
    if rec.cidr != cidr {
        return Err(ReservationError::SubnetCidrMismatch {
            name: req.subnet_name.clone(),
            registered: rec.cidr,
            asked: cidr,
        });
    }
    Ok(())
}

/// A new subnet must not reuse a registered name with another CIDR, nor overlap
/// another registered subnet.
fn check_no_conflict(registry: &SubnetRegistry, req: &JoinRequest) -> Result<(), ReservationError> {
    let cidr = req.subnet.cidr();
    for (other_name, other_cidr) in &registry.subnets {
        if *other_name == req.subnet_name {
            if *other_cidr != cidr {
                return Err(ReservationError::SubnetCidrMismatch {
                    name: req.subnet_name.clone(),
                    registered: *other_cidr,
                    asked: cidr,
                });
            }
        } else if other_cidr.contains(&cidr) || cidr.contains(other_cidr) {
            return Err(ReservationError::SubnetOverlap {
                name: req.subnet_name.clone(),
                cidr,
                other_name: other_name.clone(),
                other_cidr: *other_cidr,
            });
        }
    }
    Ok(())
}

/// Every address reserved in the request's subnet: from the subnet's index when
/// it has one (keys only), else from every reservation (subnets created before the
/// index existed). Either way an address held twice is an error.
fn reserved_addresses<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
    cidr: Ipv4Net,
    indexed: bool,
) -> Result<BTreeSet<Ipv4Addr>, ReservationError> {
    if indexed {
        let keys = store.list_keys(&blocks::subnet_blocks_prefix(subnet_name))?;
        return blocks::reserved_from_keys(subnet_name, &keys);
    }
    // Every address of every node inside this CIDR counts as taken, whatever the
    // subnet name on the record: the registry forbids overlaps, and this keeps
    // "no address twice" true even if it were bypassed.
    Ok(list_nodes(store)?
        .iter()
        .flat_map(|n| n.addresses().collect::<Vec<_>>())
        .filter(|ip| cidr.contains(ip))
        .collect())
}

/// Reserved and usable address counts of one subnet (for summaries).
pub fn subnet_usage<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
    subnet: &NodeSubnet,
) -> Result<(u64, u64), ReservationError> {
    let skey = subnet_key(subnet_name);
    let indexed = match store.get(&skey)? {
        Some((v, _)) => parse::<SubnetRecord>(&skey, &v)?.indexed,
        None => true,
    };
    let reserved = if indexed {
        let keys = store.list_keys(&blocks::subnet_blocks_prefix(subnet_name))?;
        blocks::reserved_count(subnet_name, &keys)?
    } else {
        reserved_addresses(store, subnet_name, subnet.cidr(), false)?.len() as u64
    } + crate::tenants::tenant_addresses(store, subnet_name)?.len() as u64;
    Ok((reserved, subnet.usable()))
}

/// Reserves `1 + maxPods` addresses for a node, or returns its existing
/// reservation when it already joined with the same subnet and maxPods. Refuses
/// with `InsufficientSubnetSize` and changes nothing when the subnet lacks room.
pub fn join<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
) -> Result<JoinOutcome, ReservationError> {
    join_with_pods_in(store, req, None)
}

/// [`join`]; with `pod_subnet` (a Pod Subnet node, issue 15) the node subnet
/// gives the node only its own address and its pods take addresses of that pod
/// subnet (`crate::podsubnet::join_pods`), so `maxPods` costs nothing here.
pub fn join_with_pods_in<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
    pod_subnet: Option<&str>,
) -> Result<JoinOutcome, ReservationError> {
    join_node(
        store,
        req,
        pod_subnet.map_or(PodHome::NodeSubnet, PodHome::PodSubnet),
    )
}

/// Where a joining node's pods take their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodHome<'a> {
    /// The node subnet: `1 + maxPods` reserved up front (Node Subnet).
    NodeSubnet,
    /// This pod subnet (Pod Subnet): the node subnet gives only the node's address.
    PodSubnet(&'a str),
    /// The node's /24 of the cluster pod CIDR (Overlay): likewise one address.
    Overlay,
}

impl<'a> PodHome<'a> {
    fn pod_subnet(self) -> Option<&'a str> {
        match self {
            PodHome::PodSubnet(name) => Some(name),
            PodHome::NodeSubnet | PodHome::Overlay => None,
        }
    }
}

/// [`join`] for a node whose pods live in `pods`.
pub fn join_node<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
    pods: PodHome<'_>,
) -> Result<JoinOutcome, ReservationError> {
    validate_node_name(&req.node)?;
    validate_subnet_name(&req.subnet_name)?;
    let nkey = node_key(&req.node);
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(r) = existing(store, req, pods)? {
            return Ok(JoinOutcome::AlreadyJoined(r));
        }
        let (mut compares, mut ops, indexed) = guard_subnet(store, req)?;
        compares.push(Compare::Absent(nkey.clone()));
        let mut reserved = reserved_addresses(store, &req.subnet_name, req.subnet.cidr(), indexed)?;
        // Other tenants of the subnet (VMs, load balancers: crate::tenants) count as
        // taken, as Azure counts other NICs. Read after the guard, like the index:
        // a reserve bumps the same guard, so it and this join serialise.
        reserved.extend(crate::tenants::tenant_addresses(store, &req.subnet_name)?);
        let picked = match pods {
            PodHome::NodeSubnet => {
                pick_node_addresses(&req.subnet, &req.subnet_name, req.max_pods, &reserved)?
            }
            PodHome::PodSubnet(_) | PodHome::Overlay => {
                aksnet_core::azure::pick_node_address(&req.subnet, &req.subnet_name, &reserved)?
            }
        };
        let reservation = NodeReservation {
            node: req.node.clone(),
            subnet_name: req.subnet_name.clone(),
            subnet: req.subnet.cidr(),
            node_ip: picked.node_ip,
            max_pods: req.max_pods.get(),
            pod_ips: picked.pod_ips,
            pod_subnet: pods.pod_subnet().map(str::to_string),
            overlay: pods == PodHome::Overlay,
            lease: req.lease,
        };
        check_in_use(req, &reservation)?;
        let put = |key: String, value: Vec<u8>| match req.lease {
            Some(lease) => Op::PutWithLease { key, value, lease },
            None => Op::Put { key, value },
        };
        ops.push(put(nkey.clone(), to_json(&nkey, &reservation)?));
        if indexed {
            let keys = blocks::block_keys(&reservation);
            if keys.len() > blocks::MAX_RUNS_PER_NODE {
                return Err(ReservationError::TooFragmented {
                    node: req.node.clone(),
                    subnet_name: req.subnet_name.clone(),
                    runs: keys.len(),
                });
            }
            ops.extend(keys.into_iter().map(|key| put(key, Vec::new())));
        }
        if store.txn(&compares, &ops)? {
            return Ok(JoinOutcome::Joined(reservation));
        }
        tracing::debug!(node = %req.node, attempt, "join lost a compare-and-swap race; retrying");
        backoff(attempt);
    }
    Err(ReservationError::Contention {
        op: "join",
        node: req.node.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Releases the node's reservation if it is still at `revision` (compare-on-owner).
/// `Ok(false)` when it changed or vanished since it was read.
/// Its index keys go in the same transaction (deleting absent keys is a no-op, so
/// this also fits subnets without an index).
pub fn release<S: Store + ?Sized>(
    store: &S,
    reservation: &NodeReservation,
    revision: Revision,
) -> Result<bool, ReservationError> {
    let key = node_key(&reservation.node);
    let mut ops = vec![Op::Delete { key: key.clone() }];
    ops.extend(
        blocks::block_keys(reservation)
            .into_iter()
            .map(|key| Op::Delete { key }),
    );
    Ok(store.txn(&[Compare::ModRevision(key, revision)], &ops)?)
}

/// Releases a node's reservation, whatever it is. `Ok(None)` when the node was not
/// joined (leaving is idempotent).
pub fn leave<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<NodeReservation>, ReservationError> {
    validate_node_name(node)?;
    for attempt in 0..MAX_ATTEMPTS {
        let Some((res, rev)) = get_node(store, node)? else {
            return Ok(None);
        };
        if release(store, &res, rev)? {
            return Ok(Some(res));
        }
        backoff(attempt);
    }
    Err(ReservationError::Contention {
        op: "leave",
        node: node.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KeyValue;
    use crate::mem::MemStore;
    use std::cell::Cell;

    fn req(node: &str, cidr: &str, max_pods: u32) -> JoinRequest {
        JoinRequest {
            node: node.to_string(),
            subnet_name: "aks-subnet".to_string(),
            subnet: NodeSubnet::new(cidr.parse().expect("cidr")).expect("subnet"),
            max_pods: MaxPods::new(max_pods).expect("maxPods"),
            in_use: BTreeSet::new(),
            lease: None,
        }
    }

    fn joined(o: JoinOutcome) -> NodeReservation {
        match o {
            JoinOutcome::Joined(r) => r,
            JoinOutcome::AlreadyJoined(r) => panic!("expected a new join, got rejoin of {r:?}"),
        }
    }

    fn assert_disjoint(nodes: &[NodeReservation]) {
        let mut seen = BTreeMap::new();
        for n in nodes {
            for ip in n.addresses() {
                if let Some(prev) = seen.insert(ip, n.node.clone()) {
                    panic!("{ip} held by {prev} and {}", n.node);
                }
            }
        }
    }

    #[test]
    fn eight_nodes_fit_a_slash24_and_the_ninth_changes_nothing() {
        let s = MemStore::new();
        for i in 0..8 {
            let r = joined(join(&s, &req(&format!("n{i}"), "10.240.0.0/24", 30)).expect("join"));
            assert_eq!(r.pod_ips.len(), 30);
            assert_eq!(
                u32::from(r.node_ip),
                u32::from(Ipv4Addr::new(10, 240, 0, 4)) + 31 * i
            );
        }
        let before = s.revision();
        let e = join(&s, &req("n8", "10.240.0.0/24", 30)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs available 3 in Subnet \
             Cidr 10.240.0.0/24, Subnet Name aks-subnet"
        );
        assert_eq!(s.revision(), before);
        let nodes = list_nodes(&s).expect("list");
        assert_eq!(nodes.len(), 8);
        assert_disjoint(&nodes);
    }

    #[test]
    fn rejoin_returns_the_same_reservation_and_mismatches_are_refused() {
        let s = MemStore::new();
        let first = joined(join(&s, &req("a", "10.0.0.0/24", 30)).expect("join"));
        let rev = s.revision();
        match join(&s, &req("a", "10.0.0.0/24", 30)).expect("rejoin") {
            JoinOutcome::AlreadyJoined(r) => assert_eq!(r, first),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.revision(), rev, "a rejoin writes nothing");
        let e = join(&s, &req("a", "10.0.0.0/24", 40)).unwrap_err();
        assert!(matches!(e, ReservationError::NodeJoinedDifferently { .. }));
        assert!(e.to_string().contains("maxPods 30"), "{e}");
        let mut other = req("a", "10.0.0.0/24", 30);
        other.subnet_name = "other".into();
        assert!(matches!(
            join(&s, &other).unwrap_err(),
            ReservationError::NodeJoinedDifferently { .. }
        ));
        assert_eq!(s.revision(), rev);
    }

    #[test]
    fn subnet_name_is_bound_to_one_cidr_and_subnets_never_overlap() {
        let s = MemStore::new();
        join(&s, &req("a", "10.0.0.0/24", 30)).expect("join");
        let e = join(&s, &req("b", "10.0.1.0/24", 30)).unwrap_err();
        assert!(
            matches!(e, ReservationError::SubnetCidrMismatch { .. }),
            "{e:?}"
        );
        let mut overlap = req("b", "10.0.0.0/23", 30);
        overlap.subnet_name = "wide".into();
        let e = join(&s, &overlap).unwrap_err();
        assert!(matches!(e, ReservationError::SubnetOverlap { .. }), "{e:?}");
        let mut disjoint = req("b", "10.0.1.0/24", 30);
        disjoint.subnet_name = "second".into();
        let r = joined(join(&s, &disjoint).expect("second subnet"));
        assert_eq!(r.node_ip, Ipv4Addr::new(10, 0, 1, 4));
        let subnets = list_subnets(&s).expect("subnets");
        assert_eq!(
            subnets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["aks-subnet", "second"]
        );
    }

    #[test]
    fn leave_frees_room_that_the_next_join_reuses() {
        let s = MemStore::new();
        for i in 0..8 {
            join(&s, &req(&format!("n{i}"), "10.240.0.0/24", 30)).expect("join");
        }
        let gone = leave(&s, "n3").expect("leave").expect("was joined");
        assert_eq!(leave(&s, "n3").expect("leave again"), None);
        let r = joined(join(&s, &req("n9", "10.240.0.0/24", 30)).expect("join"));
        assert_eq!(r.node_ip, gone.node_ip);
        assert_eq!(r.pod_ips, gone.pod_ips);
        assert_disjoint(&list_nodes(&s).expect("list"));
    }

    #[test]
    fn release_is_compare_on_owner() {
        let s = MemStore::new();
        join(&s, &req("a", "10.0.0.0/24", 30)).expect("join");
        let (_, rev) = get_node(&s, "a").expect("get").expect("present");
        leave(&s, "a").expect("leave");
        join(&s, &req("a", "10.0.0.0/24", 30)).expect("rejoin");
        // The reservation read before was replaced: releasing it must not delete the new one.
        let (now, _) = get_node(&s, "a").expect("get").expect("present");
        assert!(!release(&s, &now, rev).expect("release"));
        assert!(get_node(&s, "a").expect("get").is_some());
    }

    #[test]
    fn invalid_names_are_refused_before_touching_the_store() {
        let s = MemStore::new();
        for bad in ["", "Upper", "-x", "x-", "a_b", "a b"] {
            let e = join(&s, &req(bad, "10.0.0.0/24", 30)).unwrap_err();
            assert!(
                matches!(e, ReservationError::InvalidNodeName { .. }),
                "{bad:?}"
            );
        }
        for bad in ["", "-x", "x-", "a b", "a/b"] {
            let mut r = req("a", "10.0.0.0/24", 30);
            r.subnet_name = bad.to_string();
            let e = join(&s, &r).unwrap_err();
            assert!(
                matches!(e, ReservationError::InvalidSubnetName { .. }),
                "{bad:?}"
            );
        }
        validate_subnet_name("aks_subnet.1_").expect("valid Azure name");
        validate_node_name("aks-nodepool1-12345678-vmss000000").expect("valid node name");
        assert_eq!(s.revision(), 0);
    }

    #[test]
    fn corrupt_records_are_errors_naming_the_key() {
        let s = MemStore::new();
        assert!(s
            .txn(
                &[],
                &[Op::Put {
                    key: "nodes/x".into(),
                    value: b"{\"node\":\"x\"}".to_vec()
                }]
            )
            .expect("txn"));
        let e = list_nodes(&s).unwrap_err();
        assert!(e.to_string().contains("nodes/x"), "{e}");
        let e = join(&s, &req("x", "10.0.0.0/24", 30)).unwrap_err();
        assert!(matches!(e, ReservationError::CorruptRecord { .. }), "{e:?}");
        // A corrupt address index key is refused by a join that reads it.
        join(&s, &req("y", "10.0.0.0/24", 30)).expect("join");
        assert!(s
            .txn(
                &[],
                &[Op::Put {
                    key: "blocks/aks-subnet/bad".into(),
                    value: Vec::new()
                }]
            )
            .expect("txn"));
        let e = join(&s, &req("z", "10.0.0.0/24", 30)).unwrap_err();
        assert!(e.to_string().contains("blocks/aks-subnet/bad"), "{e}");
    }

    #[test]
    fn the_index_holds_each_nodes_runs_and_leave_removes_them() {
        let s = MemStore::new();
        for n in ["a", "b", "c"] {
            join(&s, &req(n, "10.0.0.0/24", 30)).expect("join");
        }
        let keys = s.list_keys("blocks/").expect("keys");
        assert_eq!(
            keys,
            [
                "blocks/aks-subnet/10.0.0.35+31/b",
                "blocks/aks-subnet/10.0.0.4+31/a",
                "blocks/aks-subnet/10.0.0.66+31/c"
            ]
        );
        leave(&s, "b").expect("leave");
        assert_eq!(s.list_keys("blocks/").expect("keys").len(), 2);
        let subnet = NodeSubnet::new("10.0.0.0/24".parse().expect("cidr")).expect("subnet");
        assert_eq!(
            subnet_usage(&s, "aks-subnet", &subnet).expect("usage"),
            (62, 251)
        );
    }

    #[test]
    fn subnets_created_before_the_index_still_join_by_listing_nodes() {
        let s = MemStore::new();
        // An old store: the guard without "indexed", one node, no index keys.
        join(&s, &req("old", "10.0.0.0/24", 30)).expect("join");
        let (rec, _) = get_node(&s, "old").expect("get").expect("present");
        assert!(s
            .txn(
                &[],
                &[
                    Op::Put {
                        key: "subnets/aks-subnet".into(),
                        value: b"{\"cidr\":\"10.0.0.0/24\"}".to_vec()
                    },
                    Op::Delete {
                        key: "blocks/aks-subnet/10.0.0.4+31/old".into()
                    },
                ]
            )
            .expect("txn"));
        let r = joined(join(&s, &req("new", "10.0.0.0/24", 30)).expect("join"));
        assert_eq!(
            r.node_ip,
            Ipv4Addr::new(10, 0, 0, 35),
            "old's block {rec:?} counted"
        );
        assert!(s.list_keys("blocks/").expect("keys").is_empty());
    }

    /// A store that lets another joiner commit between our reads and our txn, the
    /// race the guard exists for.
    struct Racing<'a> {
        inner: &'a MemStore,
        interfere: Cell<Option<JoinRequest>>,
    }

    impl Store for Racing<'_> {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
            self.inner.get(key)
        }
        fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
            self.inner.list(prefix)
        }
        fn txn(&self, c: &[Compare], o: &[Op]) -> Result<bool, StoreError> {
            if let Some(other) = self.interfere.take() {
                join(self.inner, &other).expect("interfering join");
            }
            self.inner.txn(c, o)
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    #[test]
    fn a_join_that_loses_the_race_retries_and_never_takes_the_winners_addresses() {
        let s = MemStore::new();
        join(&s, &req("first", "10.0.0.0/24", 30)).expect("join");
        let racing = Racing {
            inner: &s,
            interfere: Cell::new(Some(req("winner", "10.0.0.0/24", 30))),
        };
        let loser = joined(join(&racing, &req("loser", "10.0.0.0/24", 30)).expect("join"));
        let (winner, _) = get_node(&s, "winner").expect("get").expect("winner joined");
        assert_eq!(winner.node_ip, Ipv4Addr::new(10, 0, 0, 35));
        assert_eq!(loser.node_ip, Ipv4Addr::new(10, 0, 0, 66));
        assert_disjoint(&list_nodes(&s).expect("list"));
    }

    #[test]
    fn racing_creation_of_the_first_subnet_is_also_guarded() {
        let s = MemStore::new();
        let racing = Racing {
            inner: &s,
            interfere: Cell::new(Some(req("winner", "10.0.0.0/24", 30))),
        };
        let loser = joined(join(&racing, &req("loser", "10.0.0.0/24", 30)).expect("join"));
        assert_eq!(loser.node_ip, Ipv4Addr::new(10, 0, 0, 35));
        assert_disjoint(&list_nodes(&s).expect("list"));
    }

    #[test]
    fn threads_joining_one_subnet_never_share_an_address() {
        let s = MemStore::new();
        let results: Vec<Result<JoinOutcome, String>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..12)
                .map(|i| {
                    let s = &s;
                    sc.spawn(move || {
                        join(s, &req(&format!("t{i}"), "10.240.0.0/24", 30))
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 8);
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(r.starts_with("InsufficientSubnetSize: "), "{r}");
        }
        assert_disjoint(&list_nodes(&s).expect("list"));
    }

    #[test]
    fn to_node_pool_carries_the_reservation() {
        let s = MemStore::new();
        let r = joined(join(&s, &req("a", "10.0.0.0/24", 10)).expect("join"));
        let p = r.to_node_pool();
        assert_eq!(p.version, aksnet_core::pool::NODE_POOL_VERSION);
        assert_eq!(
            (p.node.as_str(), p.node_ip, p.max_pods, p.pod_ips.len()),
            ("a", r.node_ip, 10, 10)
        );
    }
}
