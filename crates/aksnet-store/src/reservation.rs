//! Node reservations for Azure CNI Node Subnet, built on any [`Store`] (issue 3).
//! What AKS's control plane does when it gives a node's NIC `maxPods` secondary
//! addresses (research/azure-cni.md §2.1), as compare-and-swap transactions.
//!
//! Key layout (values are JSON):
//!
//! | key | value | role |
//! |---|---|---|
//! | `cluster/subnets` | `{"subnets":{"<name>":"<cidr>"}}` | subnet registry: every subnet creation compares it, so two subnets never overlap |
//! | `subnets/<name>` | `{"cidr":"<cidr>"}` | the subnet's join guard: every join into it compares it at its mod revision and puts it back |
//! | `nodes/<node>` | [`NodeReservation`] | one key per node: the reservation itself, and nothing else holds it |
//!
//! Why a per-subnet guard rather than one key per address (`ips/<subnet>/<ip>` with
//! "absent" compares): a node at maxPods 250 reserves 251 addresses, and etcd refuses
//! transactions with more than 128 operations by default (`--max-txn-ops`), so one
//! key per address cannot be one transaction. With the guard a join is always 2–3
//! compares and 2–3 puts, and the reservation lives in exactly one key
//! (research/rust-anchors.md §3.4: never split a reservation across two objects,
//! whereabouts#712). The cost is that joins into one subnet serialise; joins are
//! rare (one per node), so contention only means a retry.
//!
//! Why it is safe: a join reads the guard (revision r) *before* it lists the nodes,
//! and commits only if the guard is still at r. Every other join into the subnet
//! bumps the guard, so any join that committed after our guard read fails our
//! compare, and any that committed before it is in our list (reads are
//! linearizable). Hence two joins can never pick the same address. Leaving deletes
//! the node key with compare-on-owner (its mod revision) and does not touch the
//! guard: a concurrent join that listed before the delete merely sees fewer free
//! addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use aksnet_core::azure::{
    pick_node_addresses, AzureError, InsufficientSubnetSize, MaxPods, NodeSubnet,
};
use aksnet_core::pool::{NodePool, NODE_POOL_VERSION};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::kv::{Compare, Op, Revision, Store, StoreError};

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

/// What a node holds: the value of `nodes/<node>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeReservation {
    pub node: String,
    pub subnet_name: String,
    pub subnet: Ipv4Net,
    pub node_ip: Ipv4Addr,
    pub max_pods: u32,
    pub pod_ips: Vec<Ipv4Addr>,
}

impl NodeReservation {
    /// The node's own address followed by its pod addresses (`1 + maxPods`).
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        std::iter::once(self.node_ip).chain(self.pod_ips.iter().copied())
    }

    /// The node's local pool file content (crates/aksnet-core/src/pool.rs).
    pub fn to_node_pool(&self) -> NodePool {
        NodePool {
            version: NODE_POOL_VERSION,
            node: self.node.clone(),
            subnet_name: self.subnet_name.clone(),
            subnet: self.subnet,
            node_ip: self.node_ip,
            max_pods: self.max_pods,
            pod_ips: self.pod_ips.clone(),
        }
    }

    /// Invariants a stored record must meet; `Err` says which is broken.
    fn check(&self) -> Result<(), String> {
        let subnet = NodeSubnet::new(self.subnet).map_err(|e| e.to_string())?;
        MaxPods::new(self.max_pods).map_err(|e| e.to_string())?;
        if self.pod_ips.len() != self.max_pods as usize {
            return Err(format!(
                "podIps has {} addresses, maxPods is {}",
                self.pod_ips.len(),
                self.max_pods
            ));
        }
        let mut seen = BTreeSet::new();
        for ip in self.addresses() {
            if !subnet.is_usable(ip) {
                return Err(format!(
                    "address {ip} is not a usable address of {}",
                    self.subnet
                ));
            }
            if !seen.insert(ip) {
                return Err(format!("address {ip} appears twice"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubnetRecord {
    cidr: Ipv4Net,
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

fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, ReservationError> {
    serde_json::from_slice(value).map_err(|e| ReservationError::CorruptRecord {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, ReservationError> {
    serde_json::to_vec(value).map_err(|e| ReservationError::CorruptRecord {
        key: key.to_string(),
        detail: format!("cannot serialise: {e}"),
    })
}

fn parse_reservation(key: &str, value: &[u8]) -> Result<NodeReservation, ReservationError> {
    let r: NodeReservation = parse(key, value)?;
    r.check()
        .map_err(|detail| ReservationError::CorruptRecord {
            key: key.to_string(),
            detail,
        })?;
    if node_key(&r.node) != key {
        return Err(ReservationError::CorruptRecord {
            key: key.to_string(),
            detail: format!("record names node {:?}", r.node),
        });
    }
    Ok(r)
}

/// The reservation of `node` and its revision (for [`release`]), or `None`.
pub fn get_node<S: Store + ?Sized>(
    store: &S,
    node: &str,
) -> Result<Option<(NodeReservation, Revision)>, ReservationError> {
    let key = node_key(node);
    match store.get(&key)? {
        None => Ok(None),
        Some((v, rev)) => Ok(Some((parse_reservation(&key, &v)?, rev))),
    }
}

/// Every node reservation, in node-name order. Refuses a store in which two
/// reservations hold one address (issue 10 item 4): such a store is never
/// double-counted or built upon.
pub fn list_nodes<S: Store + ?Sized>(store: &S) -> Result<Vec<NodeReservation>, ReservationError> {
    let nodes = store
        .list(NODES_PREFIX)?
        .iter()
        .map(|kv| parse_reservation(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    check_no_address_twice(&nodes)?;
    Ok(nodes)
}

/// `Err(AddressReservedTwice)` naming the first address two reservations share.
pub fn check_no_address_twice(nodes: &[NodeReservation]) -> Result<(), ReservationError> {
    let mut holder: std::collections::HashMap<Ipv4Addr, &str> =
        std::collections::HashMap::with_capacity(nodes.len() * 32);
    for n in nodes {
        for ip in n.addresses() {
            if let Some(first) = holder.insert(ip, &n.node) {
                return Err(ReservationError::AddressReservedTwice {
                    ip,
                    first: first.to_string(),
                    second: n.node.clone(),
                });
            }
        }
    }
    Ok(())
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

/// Reserves `1 + maxPods` addresses for a node, or returns its existing
/// reservation when it already joined with the same subnet and maxPods. Refuses
/// with `InsufficientSubnetSize` and changes nothing when the subnet lacks room.
pub fn join<S: Store + ?Sized>(
    store: &S,
    req: &JoinRequest,
) -> Result<JoinOutcome, ReservationError> {
    validate_node_name(&req.node)?;
    validate_subnet_name(&req.subnet_name)?;
    let cidr = req.subnet.cidr();
    let nkey = node_key(&req.node);
    let skey = subnet_key(&req.subnet_name);
    for attempt in 0..MAX_ATTEMPTS {
        if let Some((existing, _)) = get_node(store, &req.node)? {
            if existing.subnet_name == req.subnet_name
                && existing.subnet == cidr
                && existing.max_pods == req.max_pods.get()
            {
                check_in_use(req, &existing)?;
                return Ok(JoinOutcome::AlreadyJoined(existing));
            }
            return Err(ReservationError::NodeJoinedDifferently {
                node: req.node.clone(),
                joined_name: existing.subnet_name,
                joined_cidr: existing.subnet,
                joined_max_pods: existing.max_pods,
                asked_name: req.subnet_name.clone(),
                asked_cidr: cidr,
                asked_max_pods: req.max_pods.get(),
            });
        }

        let mut compares = vec![Compare::Absent(nkey.clone())];
        let mut ops = Vec::with_capacity(3);
        // The guard is read BEFORE the node list (see the module comment).
        match store.get(&skey)? {
            Some((value, rev)) => {
                let rec: SubnetRecord = parse(&skey, &value)?;
                if rec.cidr != cidr {
                    return Err(ReservationError::SubnetCidrMismatch {
                        name: req.subnet_name.clone(),
                        registered: rec.cidr,
                        asked: cidr,
                    });
                }
                compares.push(Compare::ModRevision(skey.clone(), rev));
                // Putting the same value bumps the guard's mod revision.
                ops.push(Op::Put {
                    key: skey.clone(),
                    value,
                });
            }
            None => {
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
                registry.subnets.insert(req.subnet_name.clone(), cidr);
                compares.push(reg_compare);
                compares.push(Compare::Absent(skey.clone()));
                ops.push(Op::Put {
                    key: SUBNET_REGISTRY_KEY.to_string(),
                    value: to_json(SUBNET_REGISTRY_KEY, &registry)?,
                });
                ops.push(Op::Put {
                    key: skey.clone(),
                    value: to_json(&skey, &SubnetRecord { cidr })?,
                });
            }
        }

        // Every address of every node inside this CIDR counts as taken, whatever the
        // subnet name on the record: the registry forbids overlaps, and this keeps
        // "no address twice" true even if it were bypassed.
        let reserved: BTreeSet<Ipv4Addr> = list_nodes(store)?
            .iter()
            .flat_map(|n| n.addresses().collect::<Vec<_>>())
            .filter(|ip| cidr.contains(ip))
            .collect();
        let picked = pick_node_addresses(&req.subnet, &req.subnet_name, req.max_pods, &reserved)?;
        let reservation = NodeReservation {
            node: req.node.clone(),
            subnet_name: req.subnet_name.clone(),
            subnet: cidr,
            node_ip: picked.node_ip,
            max_pods: req.max_pods.get(),
            pod_ips: picked.pod_ips,
        };
        check_in_use(req, &reservation)?;
        ops.push(Op::Put {
            key: nkey.clone(),
            value: to_json(&nkey, &reservation)?,
        });
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
pub fn release<S: Store + ?Sized>(
    store: &S,
    node: &str,
    revision: Revision,
) -> Result<bool, ReservationError> {
    let key = node_key(node);
    Ok(store.txn(
        &[Compare::ModRevision(key.clone(), revision)],
        &[Op::Delete { key }],
    )?)
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
        if release(store, node, rev)? {
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
        assert!(!release(&s, "a", rev).expect("release"));
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
        let e = join(&s, &req("y", "10.0.0.0/24", 30)).unwrap_err();
        assert!(matches!(e, ReservationError::CorruptRecord { .. }), "{e:?}");
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
        assert_eq!(p.version, NODE_POOL_VERSION);
        assert_eq!(
            (p.node.as_str(), p.node_ip, p.max_pods, p.pod_ips.len()),
            ("a", r.node_ip, 10, 10)
        );
    }
}
