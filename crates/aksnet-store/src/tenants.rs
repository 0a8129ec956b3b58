//! Other tenants of a node subnet (issue 13 item 3): addresses held by VMs, load
//! balancers or anything else that is not an aksnet node. AKS allows VMs in the
//! node subnet (Node Subnet FAQ, "Can I deploy VMs in my cluster subnet?",
//! <https://learn.microsoft.com/en-us/azure/aks/concepts-network-legacy-cni>), and
//! Azure's InsufficientSubnetSize counts every NIC of the subnet, so aksnet must
//! never hand such an address to a node and must count it when a node joins.
//!
//! Key layout (docs/node.md, "Other tenants of the subnet"):
//!
//! | key | value |
//! |---|---|
//! | `tenants/<subnet name>/<first>-<last>` | [`Tenant`] as JSON |
//!
//! Why a reserve and a join can never both take one address: a reserve reads the
//! subnet's join guard (`subnets/<name>`, [`crate::reservation`]) FIRST, then lists
//! the nodes and tenants, and commits only if the guard is still at the revision it
//! read, putting the guard back (which bumps it). A join does the same: it reads the
//! guard first, then the address index AND this module's tenant keys
//! ([`tenant_addresses`], called from `reservation::join`), and commits only if the
//! guard is unchanged. So whichever of the two commits second finds the guard moved,
//! re-reads, and sees the first one's addresses. A release only deletes its key
//! (compare-on-owner, like `leave`): a join that listed before it merely sees fewer
//! free addresses.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use aksnet_core::azure::{MaxPods, NodeSubnet};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::kv::{Compare, Op, Store, StoreError};
use crate::reservation::{
    guard_subnet, list_nodes, validate_subnet_name, JoinRequest, ReservationError, MAX_ATTEMPTS,
};

/// Prefix of every tenant key.
pub const TENANTS_PREFIX: &str = "tenants/";
/// Longest owner name accepted.
pub const MAX_OWNER_LEN: usize = 128;

/// One reserved range of a subnet and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub subnet_name: String,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub owner: String,
}

impl Tenant {
    /// The number of addresses in the range.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    fn overlaps(&self, first: Ipv4Addr, last: Ipv4Addr) -> bool {
        self.first <= last && first <= self.last
    }

    /// `10.0.0.9` or `10.0.0.9-10.0.0.12`.
    pub fn range(&self) -> String {
        format_range(self.first, self.last)
    }
}

fn format_range(first: Ipv4Addr, last: Ipv4Addr) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// `tenants/<subnet>/`.
pub fn subnet_tenants_prefix(subnet_name: &str) -> String {
    format!("{TENANTS_PREFIX}{subnet_name}/")
}

fn tenant_key(subnet_name: &str, first: Ipv4Addr, last: Ipv4Addr) -> String {
    format!("{}{first}-{last}", subnet_tenants_prefix(subnet_name))
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("address {ip} is not in subnet {subnet}")]
    NotInSubnet { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error(
        "address {ip} is one of the 5 addresses Azure keeps in subnet {subnet} (network, \
         gateway .1, DNS .2 and .3, broadcast); no NIC can hold it"
    )]
    AzureReserved { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("range {first}-{last} is reversed: the first address is above the last")]
    Reversed { first: Ipv4Addr, last: Ipv4Addr },
    #[error("invalid owner {value:?}: {reason}")]
    InvalidOwner { value: String, reason: &'static str },
    #[error(
        "address {ip} is held by node {node}; it leaves the node's pool only when the node leaves"
    )]
    HeldByNode { ip: Ipv4Addr, node: String },
    #[error("address {ip} is already reserved for {owner} (range {range})")]
    HeldByTenant {
        ip: Ipv4Addr,
        owner: String,
        range: String,
    },
    #[error(
        "{range} is not a reservation of subnet {subnet_name} (`aksnet subnet list` shows them)"
    )]
    NotReserved { range: String, subnet_name: String },
    #[error("reserve {range}: gave up after {attempts} compare-and-swap attempts lost to concurrent changes")]
    Contention { range: String, attempts: u32 },
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TenantError {
    /// True for refusals caused by the input itself (exit 2 in the CLI).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::NotInSubnet { .. }
                | Self::AzureReserved { .. }
                | Self::Reversed { .. }
                | Self::InvalidOwner { .. }
                | Self::Reservation(ReservationError::InvalidSubnetName { .. })
        )
    }
}

/// An owner is 1..=128 printable ASCII characters without spaces (a VM name, a
/// load balancer's name, "gateway", ...).
pub fn validate_owner(owner: &str) -> Result<(), TenantError> {
    let bad = |reason| {
        Err(TenantError::InvalidOwner {
            value: owner.to_string(),
            reason,
        })
    };
    if owner.is_empty() {
        return bad("empty");
    }
    if owner.len() > MAX_OWNER_LEN {
        return bad("longer than 128 characters");
    }
    if !owner.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("only printable ASCII without spaces");
    }
    Ok(())
}

/// Every address of `first..=last` must be a usable address of `subnet`.
pub fn check_range(
    subnet: &NodeSubnet,
    first: Ipv4Addr,
    last: Ipv4Addr,
) -> Result<(), TenantError> {
    if first > last {
        return Err(TenantError::Reversed { first, last });
    }
    let cidr = subnet.cidr();
    for ip in [first, last] {
        if !cidr.contains(&ip) {
            return Err(TenantError::NotInSubnet { ip, subnet: cidr });
        }
    }
    if let Some(ip) = subnet
        .azure_reserved()
        .into_iter()
        .find(|ip| first <= *ip && *ip <= last)
    {
        return Err(TenantError::AzureReserved { ip, subnet: cidr });
    }
    Ok(())
}

fn parse_tenant(key: &str, value: &[u8]) -> Result<Tenant, ReservationError> {
    let corrupt = |detail: String| ReservationError::CorruptRecord {
        key: key.to_string(),
        detail,
    };
    let t: Tenant = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    if tenant_key(&t.subnet_name, t.first, t.last) != key || t.first > t.last {
        return Err(corrupt(format!(
            "record names subnet {} range {}",
            t.subnet_name,
            t.range()
        )));
    }
    Ok(t)
}

/// Every tenant of `subnet_name`, in address order.
pub fn list_subnet_tenants<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
) -> Result<Vec<Tenant>, ReservationError> {
    list_prefix(store, &subnet_tenants_prefix(subnet_name))
}

/// Every tenant of every subnet.
pub fn list_tenants<S: Store + ?Sized>(store: &S) -> Result<Vec<Tenant>, ReservationError> {
    list_prefix(store, TENANTS_PREFIX)
}

fn list_prefix<S: Store + ?Sized>(
    store: &S,
    prefix: &str,
) -> Result<Vec<Tenant>, ReservationError> {
    let mut v = store
        .list(prefix)?
        .iter()
        .map(|kv| parse_tenant(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    // Key order is text order (10.0.0.250 before 10.0.0.4): show address order.
    v.sort_by(|a, b| (&a.subnet_name, a.first).cmp(&(&b.subnet_name, b.first)));
    Ok(v)
}

/// Every address the tenants of `subnet_name` hold: `reservation::join` adds
/// them to the addresses it must not pick (and counts them as taken), after it
/// read the subnet's guard (see the module comment).
pub fn tenant_addresses<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
) -> Result<BTreeSet<Ipv4Addr>, ReservationError> {
    Ok(list_subnet_tenants(store, subnet_name)?
        .iter()
        .flat_map(|t| (u32::from(t.first)..=u32::from(t.last)).map(Ipv4Addr::from))
        .collect())
}

/// What [`reserve`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved(Tenant),
    /// The same range was already reserved for the same owner: nothing written.
    AlreadyReserved(Tenant),
}

/// Reserves `first..=last` of the subnet for `owner`. Refuses (changing nothing)
/// an address outside the subnet, one of Azure's 5, a reversed range, an address
/// a node holds (naming the node) or another tenant holds (naming its owner).
pub fn reserve<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
    subnet: &NodeSubnet,
    (first, last): (Ipv4Addr, Ipv4Addr),
    owner: &str,
) -> Result<ReserveOutcome, TenantError> {
    validate_subnet_name(subnet_name)?;
    validate_owner(owner)?;
    check_range(subnet, first, last)?;
    let wanted = Tenant {
        subnet_name: subnet_name.to_string(),
        first,
        last,
        owner: owner.to_string(),
    };
    let key = tenant_key(subnet_name, first, last);
    // guard_subnet only reads the subnet's name and CIDR from the request.
    let guard_req = JoinRequest {
        node: String::new(),
        subnet_name: subnet_name.to_string(),
        subnet: *subnet,
        max_pods: MaxPods::default(),
        in_use: BTreeSet::new(),
        lease: None,
    };
    for attempt in 0..MAX_ATTEMPTS {
        // The guard first, then everything listed (module comment).
        let (mut compares, mut ops, _) = guard_subnet(store, &guard_req)?;
        if let Some(done) = check_free(store, &wanted)? {
            return Ok(done);
        }
        let value = serde_json::to_vec(&wanted).map_err(|e| ReservationError::CorruptRecord {
            key: key.clone(),
            detail: format!("cannot serialise: {e}"),
        })?;
        compares.push(Compare::Absent(key.clone()));
        ops.push(Op::Put {
            key: key.clone(),
            value,
        });
        if store.txn(&compares, &ops)? {
            return Ok(ReserveOutcome::Reserved(wanted));
        }
        tracing::debug!(range = %wanted.range(), attempt, "reserve lost a compare-and-swap race; retrying");
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(20))));
    }
    Err(TenantError::Contention {
        range: wanted.range(),
        attempts: MAX_ATTEMPTS,
    })
}

/// `Some(AlreadyReserved)` for an identical reservation, an error when a node or
/// another tenant holds an address of the range, `None` when it is free.
fn check_free<S: Store + ?Sized>(
    store: &S,
    wanted: &Tenant,
) -> Result<Option<ReserveOutcome>, TenantError> {
    for t in list_subnet_tenants(store, &wanted.subnet_name)? {
        if t == *wanted {
            return Ok(Some(ReserveOutcome::AlreadyReserved(t)));
        }
        if t.overlaps(wanted.first, wanted.last) {
            let ip = std::cmp::max(t.first, wanted.first);
            return Err(TenantError::HeldByTenant {
                ip,
                owner: t.owner.clone(),
                range: t.range(),
            });
        }
    }
    for n in list_nodes(store)? {
        if let Some(ip) = n.addresses().filter(|ip| wanted.contains(*ip)).min() {
            return Err(TenantError::HeldByNode { ip, node: n.node });
        }
    }
    Ok(None)
}

/// Releases exactly the reservation `first..=last` of the subnet. A range that is
/// not reserved is an error naming it (almost always a typo), not a silent no-op.
pub fn release<S: Store + ?Sized>(
    store: &S,
    subnet_name: &str,
    (first, last): (Ipv4Addr, Ipv4Addr),
) -> Result<Tenant, TenantError> {
    validate_subnet_name(subnet_name)?;
    let key = tenant_key(subnet_name, first, last);
    let not_reserved = || TenantError::NotReserved {
        range: format_range(first, last),
        subnet_name: subnet_name.to_string(),
    };
    for attempt in 0..MAX_ATTEMPTS {
        let Some((value, rev)) = store.get(&key)? else {
            return Err(not_reserved());
        };
        let t = parse_tenant(&key, &value)?;
        if store.txn(
            &[Compare::ModRevision(key.clone(), rev)],
            &[Op::Delete { key: key.clone() }],
        )? {
            return Ok(t);
        }
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(20))));
    }
    Err(TenantError::Contention {
        range: format_range(first, last),
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::mem::MemStore;
    use crate::reservation::{join, JoinOutcome};

    fn subnet(c: &str) -> NodeSubnet {
        NodeSubnet::new(c.parse().unwrap()).unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    /// Reserves `first..=last` of `sn` (named aks-subnet) for `owner`.
    fn reserve_for(
        m: &MemStore,
        sn: &NodeSubnet,
        (first, last): (&str, &str),
        owner: &str,
    ) -> Result<ReserveOutcome, TenantError> {
        reserve(m, "aks-subnet", sn, (ip(first), ip(last)), owner)
    }

    fn req(node: &str, cidr: &str, max_pods: u32) -> JoinRequest {
        JoinRequest {
            node: node.to_string(),
            subnet_name: "aks-subnet".to_string(),
            subnet: subnet(cidr),
            max_pods: MaxPods::new(max_pods).unwrap(),
            in_use: BTreeSet::new(),
            lease: None,
        }
    }

    #[test]
    fn bad_ranges_are_refused_naming_the_address() {
        let s = subnet("10.0.0.0/24");
        let cases = [
            (("10.0.1.5", "10.0.1.5"), "not in subnet 10.0.0.0/24"),
            (("10.0.0.9", "10.0.0.5"), "reversed"),
            (("10.0.0.1", "10.0.0.1"), "one of the 5"),
            (("10.0.0.250", "10.0.0.255"), "10.0.0.255 is one of the 5"),
        ];
        for ((a, b), want) in cases {
            let e = check_range(&s, ip(a), ip(b)).unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(want), "{a}-{b}: {e}");
        }
        check_range(&s, ip("10.0.0.4"), ip("10.0.0.254")).unwrap();
    }

    #[test]
    fn a_tenant_is_never_given_to_a_node_and_counts_in_insufficient_subnet_size() {
        let m = MemStore::new();
        let sn = subnet("10.240.0.0/24");
        reserve_for(&m, &sn, ("10.240.0.4", "10.240.0.13"), "vm1").unwrap();
        let JoinOutcome::Joined(r) = join(&m, &req("a", "10.240.0.0/24", 30)).unwrap() else {
            panic!("new join")
        };
        assert_eq!(r.node_ip, ip("10.240.0.14"));
        // 251 usable - 10 tenant - 31 node = 210 free: six more nodes of 31 fit (186),
        // the seventh finds 24.
        for i in 0..6 {
            join(&m, &req(&format!("n{i}"), "10.240.0.0/24", 30)).unwrap();
        }
        let e = join(&m, &req("last", "10.240.0.0/24", 30)).unwrap_err();
        assert!(
            matches!(&e, ReservationError::InsufficientSubnetSize(i) if (i.need, i.free) == (31, 24)),
            "{e}"
        );
    }

    #[test]
    fn reserving_a_nodes_address_or_an_overlap_is_refused_and_changes_nothing() {
        let m = MemStore::new();
        let sn = subnet("10.0.0.0/24");
        join(&m, &req("node-a", "10.0.0.0/24", 10)).unwrap();
        let rev = m.revision();
        let e = reserve_for(&m, &sn, ("10.0.0.10", "10.0.0.20"), "vm").unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.0.0.10 is held by node node-a; it leaves the node's pool only when the node leaves"
        );
        assert_eq!(m.revision(), rev);
        reserve_for(&m, &sn, ("10.0.0.20", "10.0.0.29"), "vm").unwrap();
        let again = reserve_for(&m, &sn, ("10.0.0.20", "10.0.0.29"), "vm").unwrap();
        assert!(matches!(again, ReserveOutcome::AlreadyReserved(_)));
        let rev = m.revision();
        let e = reserve_for(&m, &sn, ("10.0.0.29", "10.0.0.30"), "lb").unwrap_err();
        assert!(
            e.to_string()
                .contains("10.0.0.29 is already reserved for vm"),
            "{e}"
        );
        assert_eq!(m.revision(), rev);
        assert_eq!(list_tenants(&m).unwrap().len(), 1);
        let t = release(&m, "aks-subnet", (ip("10.0.0.20"), ip("10.0.0.29"))).unwrap();
        assert_eq!(t.owner, "vm");
        assert!(matches!(
            release(&m, "aks-subnet", (ip("10.0.0.20"), ip("10.0.0.29"))).unwrap_err(),
            TenantError::NotReserved { .. }
        ));
        assert!(tenant_addresses(&m, "aks-subnet").unwrap().is_empty());
    }
}
