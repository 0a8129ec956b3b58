//! The node IPAM allocator: a pure state machine with no I/O (issue 2, item 3).
//!
//! Its persistent form is owned by `crates/aksnet-ipam` (`store.rs`), which loads an
//! [`Allocator`] from disk under an exclusive lock, lets the caller run one transaction
//! on it, and writes it back atomically. Everything here is deterministic given the
//! pool, the state and the inputs, and is tested exhaustively (unit + proptest).
//!
//! Two kinds of pool:
//! - kubenet: range sets from the config, host-local's shape (`ranges: [[{subnet,
//!   rangeStart, rangeEnd, gateway}]]`, docs/prior-art.md#host-local). Network,
//!   broadcast (IPv4) and the gateway are never handed out.
//! - nodesubnet: the explicit list of addresses `aksnet node join` reserved for the node
//!   (`aksnet_core::pool::NodePool::pod_ips`).
//!
//! Lessons applied from host-local's known bugs (docs/prior-art.md#host-local):
//! - the round-robin cursor lives in the same state as the reservations, so they change
//!   atomically (host-local keeps `last_reserved_ip.N` in a second file);
//! - reservations are keyed by (container ID, ifname) with a reverse index ip -> key, so
//!   DEL/CHECK are lookups, not directory walks;
//! - GC releases every attachment not in the valid set (CNI 1.1 GC, docs/cni-clients.md#gc).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// How many recently released addresses are kept out of round-robin until nothing else
/// is free. The cursor alone does not stop a just-freed address from being handed out
/// again when it sits right after the cursor (an old lease released after the cursor
/// wrapped); this small quarantine does. Why reuse must be late: host-local
/// `allocator.go` (`GetIter`): a crash-looping container should not get the same address
/// back at once, and stale conntrack/neighbour/policy state keyed by the old pod's
/// address must not hit a new pod.
pub const RECENTLY_RELEASED_MAX: usize = 32;

// ---------------------------------------------------------------------------------------
// Keys, leases, metadata
// ---------------------------------------------------------------------------------------

/// The CNI attachment that owns addresses: (CNI_CONTAINERID, CNI_IFNAME), the key the
/// spec uses for DEL and GC (`cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentKey {
    pub container_id: String,
    pub ifname: String,
}

impl AttachmentKey {
    pub fn new(container_id: impl Into<String>, ifname: impl Into<String>) -> Self {
        Self {
            container_id: container_id.into(),
            ifname: ifname.into(),
        }
    }
}

impl fmt::Display for AttachmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.container_id, self.ifname)
    }
}

/// One held address and the index of the range set it was allocated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    pub ip: IpAddr,
    pub set: usize,
}

/// What the caller knows about the attachment; stored with the reservation (one write).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Seconds since the Unix epoch when the reservation was made (the caller's clock:
    /// this module does no I/O).
    #[serde(default)]
    pub created_unix: u64,
}

/// One attachment's reservation as stored: the persisted record shape. On the wire the
/// metadata's fields sit beside the key's (`{"containerId", "ifname", "ips",
/// "podNamespace", "podName", "createdUnix"}`), written by [`RecordView`] and read
/// through a flat twin: `#[serde(flatten)]` would buffer every field of every record
/// in an intermediate tree first, and the node's whole state is parsed by each ADD and
/// DEL (docs/benchmarks.md, "IPAM state without flatten").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "FlatRecord")]
pub struct AllocationRecord {
    pub container_id: String,
    pub ifname: String,
    pub ips: Vec<Lease>,
    pub meta: AllocationMeta,
}

impl Serialize for AllocationRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RecordView {
            container_id: &self.container_id,
            ifname: &self.ifname,
            ips: &self.ips,
            meta: &self.meta,
        }
        .serialize(s)
    }
}

/// [`AllocationRecord`] as read: the same fields, flat, moved into the record.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlatRecord {
    container_id: String,
    ifname: String,
    ips: Vec<Lease>,
    #[serde(default)]
    pod_namespace: Option<String>,
    #[serde(default)]
    pod_name: Option<String>,
    #[serde(default)]
    created_unix: u64,
}

impl From<FlatRecord> for AllocationRecord {
    fn from(r: FlatRecord) -> Self {
        Self {
            container_id: r.container_id,
            ifname: r.ifname,
            ips: r.ips,
            meta: AllocationMeta {
                pod_namespace: r.pod_namespace,
                pod_name: r.pod_name,
                created_unix: r.created_unix,
            },
        }
    }
}

/// One reservation borrowed from an [`Allocator`], serialised as an
/// [`AllocationRecord`] without copying it ([`Allocator::record_views`]).
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub container_id: &'a str,
    pub ifname: &'a str,
    pub ips: &'a [Lease],
    pub meta: &'a AllocationMeta,
}

impl Serialize for RecordView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let m = self.meta;
        let fields = 4 + usize::from(m.pod_namespace.is_some()) + usize::from(m.pod_name.is_some());
        let mut st = s.serialize_struct("AllocationRecord", fields)?;
        st.serialize_field("containerId", self.container_id)?;
        st.serialize_field("ifname", self.ifname)?;
        st.serialize_field("ips", self.ips)?;
        if let Some(ns) = &m.pod_namespace {
            st.serialize_field("podNamespace", ns)?;
        }
        if let Some(name) = &m.pod_name {
            st.serialize_field("podName", name)?;
        }
        st.serialize_field("createdUnix", &m.created_unix)?;
        st.end()
    }
}

/// The round-robin cursor of one range set: the address reserved last from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorRecord {
    pub set: usize,
    pub last_reserved: IpAddr,
}

// ---------------------------------------------------------------------------------------
// Pool configuration and validation
// ---------------------------------------------------------------------------------------

/// One host-local range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl Range {
    /// A range covering the whole subnet with host-local's defaults.
    pub fn subnet(subnet: IpNet) -> Self {
        Self {
            subnet,
            range_start: None,
            range_end: None,
            gateway: None,
        }
    }
}

/// One range set: each attachment gets exactly one address from each set (host-local's
/// `ranges: [[...], [...]]`, e.g. one IPv4 and one IPv6 set for dual stack).
pub type RangeSet = Vec<Range>;

/// The configured address pool of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pool {
    /// kubenet: range sets from the config.
    Ranges(Vec<RangeSet>),
    /// nodesubnet: the node's reserved addresses (one range set, index 0). `prefix` is
    /// the node subnet, which gives the result's prefix length.
    Addresses { prefix: IpNet, addrs: Vec<IpAddr> },
}

/// A configuration error: names the field (`ranges[i][j].rangeStart`, `podIps[k]`), the
/// value and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("ranges: no range set configured")]
    NoRangeSets,
    #[error("ranges[{set}]: empty range set")]
    EmptyRangeSet { set: usize },
    #[error("{field} {value} has host bits set (the network is {network})")]
    HostBits {
        field: String,
        value: IpNet,
        network: IpNet,
    },
    #[error("{field} {value} is too small to allocate from (needs at least 4 addresses: network, gateway or host, broadcast)")]
    TooSmall { field: String, value: IpNet },
    #[error("{field} {value} is not inside subnet {subnet}")]
    NotInSubnet {
        field: String,
        value: IpAddr,
        subnet: IpNet,
    },
    #[error("{field} {value} is the {what} of {subnet} and can never be handed out")]
    Reserved {
        field: String,
        value: IpAddr,
        what: &'static str,
        subnet: IpNet,
    },
    #[error("{field} {start} is after rangeEnd {end}")]
    StartAfterEnd {
        field: String,
        start: IpAddr,
        end: IpAddr,
    },
    #[error("{field} {value} is {family} but {first_field} is {expected}: one range set holds one address family")]
    MixedFamily {
        field: String,
        value: String,
        family: &'static str,
        first_field: String,
        expected: &'static str,
    },
    #[error("{field} {value} overlaps {other_field} {other}")]
    Overlap {
        field: String,
        value: IpNet,
        other_field: String,
        other: IpNet,
    },
    #[error("{field} {value} has no allocatable address (only the gateway lies in rangeStart..rangeEnd)")]
    NoAllocatable { field: String, value: IpNet },
    #[error("{field} {value} is listed twice (also {first_field})")]
    Duplicate {
        field: String,
        value: IpAddr,
        first_field: String,
    },
    #[error("podIps: the node has no pod addresses in subnet {prefix}")]
    EmptyAddresses { prefix: IpNet },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(family: Family, v: u128) -> IpAddr {
    match family {
        // Values of a V4 span never exceed u32::MAX (they come from IPv4 addresses).
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// A validated range: the inclusive span [start, end] minus the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    family: Family,
    subnet: IpNet,
    start: u128,
    end: u128,
    gateway: IpAddr,
    gateway_u: u128,
}

impl Span {
    fn contains(&self, ip: IpAddr) -> bool {
        if Family::of(ip) != self.family {
            return false;
        }
        let v = to_u128(ip);
        self.start <= v && v <= self.end && v != self.gateway_u
    }
    fn capacity(&self) -> u128 {
        let n = self.end - self.start + 1;
        if self.start <= self.gateway_u && self.gateway_u <= self.end {
            n - 1
        } else {
            n
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ValidSet {
    Ranges(Vec<Span>),
    List {
        prefix: IpNet,
        addrs: Vec<IpAddr>,
        pos: HashMap<IpAddr, usize>,
    },
}

/// A pool that passed validation; the only kind the allocator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPool {
    sets: Vec<ValidSet>,
}

/// How to build the CNI result for a held address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The address with the prefix length of its subnet, e.g. 10.244.1.5/24.
    pub address: IpNet,
    /// The range's gateway (kubenet); `None` for an address-list pool (nodesubnet routes
    /// via 169.254.1.1, docs/azure.md#transparent-mode).
    pub gateway: Option<IpAddr>,
}

fn range_field(set: usize, idx: usize, name: &str) -> String {
    format!("ranges[{set}][{idx}].{name}")
}

fn validate_range(set: usize, idx: usize, r: &Range) -> Result<Span, PoolError> {
    let subnet = r.subnet;
    if subnet.trunc() != subnet {
        return Err(PoolError::HostBits {
            field: range_field(set, idx, "subnet"),
            value: subnet,
            network: subnet.trunc(),
        });
    }
    // host-local range.go Canonicalize: a /31 or /32 (/127, /128) has nothing to allocate.
    if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
        return Err(PoolError::TooSmall {
            field: range_field(set, idx, "subnet"),
            value: subnet,
        });
    }
    let family = Family::of(subnet.addr());
    let network = to_u128(subnet.network());
    let last = to_u128(subnet.broadcast());
    // host-local lastIP(): IPv4 excludes the broadcast, IPv6 has none.
    let default_end = if family == Family::V4 { last - 1 } else { last };
    let check = |name: &str, ip: IpAddr| -> Result<u128, PoolError> {
        let field = range_field(set, idx, name);
        check_host_address(&field, ip, subnet)?;
        Ok(to_u128(ip))
    };
    let start = match r.range_start {
        Some(ip) => check("rangeStart", ip)?,
        None => network + 1,
    };
    let end = match r.range_end {
        Some(ip) => check("rangeEnd", ip)?,
        None => default_end,
    };
    let gateway_u = match r.gateway {
        Some(ip) => check("gateway", ip)?,
        None => network + 1,
    };
    if start > end {
        return Err(PoolError::StartAfterEnd {
            field: range_field(set, idx, "rangeStart"),
            start: from_u128(family, start),
            end: from_u128(family, end),
        });
    }
    let span = Span {
        family,
        subnet,
        start,
        end,
        gateway: from_u128(family, gateway_u),
        gateway_u,
    };
    if span.capacity() == 0 {
        return Err(PoolError::NoAllocatable {
            field: range_field(set, idx, "subnet"),
            value: subnet,
        });
    }
    Ok(span)
}

/// `ip` may be given to an interface of `subnet`: same family, inside it, and
/// neither its network address nor (IPv4) its broadcast address. A /31 or /32
/// has neither to exclude (RFC 3021); `field` names the input in the error.
fn check_host_address(field: &str, ip: IpAddr, subnet: IpNet) -> Result<(), PoolError> {
    let family = Family::of(subnet.addr());
    if Family::of(ip) != family || !subnet.contains(&ip) {
        return Err(PoolError::NotInSubnet {
            field: field.to_string(),
            value: ip,
            subnet,
        });
    }
    let roomy = subnet.prefix_len() + 2 <= subnet.max_prefix_len();
    let what = if roomy && ip == subnet.network() {
        "network address"
    } else if roomy && family == Family::V4 && ip == subnet.broadcast() {
        "broadcast address"
    } else {
        return Ok(());
    };
    Err(PoolError::Reserved {
        field: field.to_string(),
        value: ip,
        what,
        subnet,
    })
}

fn nets_overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Pool {
    /// Validates the pool; errors name the field and value (host-local config.go /
    /// range.go rules plus "subnet without host bits").
    pub fn validate(&self) -> Result<ValidPool, PoolError> {
        match self {
            Pool::Ranges(sets) => validate_range_sets(sets),
            Pool::Addresses { prefix, addrs } => validate_addresses(*prefix, addrs),
        }
    }
}

fn validate_range_sets(sets: &[Vec<Range>]) -> Result<ValidPool, PoolError> {
    if sets.is_empty() {
        return Err(PoolError::NoRangeSets);
    }
    // (field, subnet) of every range so far, for the overlap check across sets.
    let mut seen: Vec<(String, IpNet)> = Vec::new();
    let sets = sets
        .iter()
        .enumerate()
        .map(|(si, set)| validate_range_set(si, set, &mut seen))
        .collect::<Result<_, _>>()?;
    Ok(ValidPool { sets })
}

/// One range set: its ranges valid, of one family, and overlapping no range
/// `seen` so far (in this set or an earlier one).
fn validate_range_set(
    si: usize,
    set: &[Range],
    seen: &mut Vec<(String, IpNet)>,
) -> Result<ValidSet, PoolError> {
    if set.is_empty() {
        return Err(PoolError::EmptyRangeSet { set: si });
    }
    let mut spans: Vec<Span> = Vec::with_capacity(set.len());
    for (ri, r) in set.iter().enumerate() {
        let span = validate_range(si, ri, r)?;
        let field = range_field(si, ri, "subnet");
        if let Some(first) = spans.first().filter(|f| f.family != span.family) {
            return Err(PoolError::MixedFamily {
                field,
                value: r.subnet.to_string(),
                family: span.family.name(),
                first_field: range_field(si, 0, "subnet"),
                expected: first.family.name(),
            });
        }
        if let Some((other_field, other)) = seen.iter().find(|(_, o)| nets_overlap(o, &r.subnet)) {
            return Err(PoolError::Overlap {
                field,
                value: r.subnet,
                other_field: other_field.clone(),
                other: *other,
            });
        }
        seen.push((field, r.subnet));
        spans.push(span);
    }
    Ok(ValidSet::Ranges(spans))
}

/// An address-list pool (nodesubnet, podsubnet): `prefix` without host bits and
/// each address a distinct host address of it.
fn validate_addresses(prefix: IpNet, addrs: &[IpAddr]) -> Result<ValidPool, PoolError> {
    if prefix.trunc() != prefix {
        return Err(PoolError::HostBits {
            field: "subnet".to_string(),
            value: prefix,
            network: prefix.trunc(),
        });
    }
    if addrs.is_empty() {
        return Err(PoolError::EmptyAddresses { prefix });
    }
    let mut pos = HashMap::with_capacity(addrs.len());
    for (i, ip) in addrs.iter().enumerate() {
        // The field name is formatted only for an error: the valid path of a
        // 250-address pool allocates nothing per address.
        if let Err(e) = check_host_address("", *ip, prefix) {
            return Err(e.with_field(format!("podIps[{i}]")));
        }
        if let Some(first) = pos.insert(*ip, i) {
            return Err(PoolError::Duplicate {
                field: format!("podIps[{i}]"),
                value: *ip,
                first_field: format!("podIps[{first}]"),
            });
        }
    }
    Ok(ValidPool::from_checked_list(prefix, addrs.to_vec(), pos))
}

impl PoolError {
    /// The same error naming `field` (for errors built before their field name).
    fn with_field(self, name: String) -> Self {
        match self {
            Self::NotInSubnet { value, subnet, .. } => Self::NotInSubnet {
                field: name,
                value,
                subnet,
            },
            Self::Reserved {
                value,
                what,
                subnet,
                ..
            } => Self::Reserved {
                field: name,
                value,
                what,
                subnet,
            },
            other => other,
        }
    }
}

impl ValidPool {
    /// An address-list pool whose addresses the caller has already checked (host
    /// addresses of `prefix`, each once, `pos` their positions):
    /// `crate::pool::NodePool::address_pool`, whose rules are stricter.
    pub(crate) fn from_checked_list(
        prefix: IpNet,
        addrs: Vec<IpAddr>,
        pos: HashMap<IpAddr, usize>,
    ) -> Self {
        ValidPool {
            sets: vec![ValidSet::List { prefix, addrs, pos }],
        }
    }

    /// Number of range sets: each attachment gets one address from each.
    pub fn set_count(&self) -> usize {
        self.sets.len()
    }

    /// Addresses that can be handed out, over all sets.
    pub fn capacity(&self) -> u128 {
        (0..self.sets.len()).fold(0u128, |acc, i| acc.saturating_add(self.set_capacity(i)))
    }

    /// Addresses that can be handed out from set `set` (0 for an unknown set).
    pub fn set_capacity(&self, set: usize) -> u128 {
        match self.sets.get(set) {
            Some(ValidSet::Ranges(spans)) => spans
                .iter()
                .fold(0u128, |acc, s| acc.saturating_add(s.capacity())),
            Some(ValidSet::List { addrs, .. }) => addrs.len() as u128,
            None => 0,
        }
    }

    /// Whether `ip` may be handed out from set `set` (inside a range, not network,
    /// broadcast or gateway; or listed).
    pub fn set_contains(&self, set: usize, ip: IpAddr) -> bool {
        match self.sets.get(set) {
            Some(ValidSet::Ranges(spans)) => spans.iter().any(|s| s.contains(ip)),
            Some(ValidSet::List { pos, .. }) => pos.contains_key(&ip),
            None => false,
        }
    }

    /// The set `ip` may be handed out from, if any.
    pub fn set_of(&self, ip: IpAddr) -> Option<usize> {
        (0..self.sets.len()).find(|&i| self.set_contains(i, ip))
    }

    /// Whether `ip` may be handed out from any set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.set_of(ip).is_some()
    }

    /// Prefix length and gateway for building the result, if `ip` is still in the pool.
    pub fn lease_info(&self, ip: IpAddr) -> Option<LeaseInfo> {
        for set in &self.sets {
            match set {
                ValidSet::Ranges(spans) => {
                    if let Some(s) = spans.iter().find(|s| s.contains(ip)) {
                        let address = IpNet::new(ip, s.subnet.prefix_len()).ok()?;
                        return Some(LeaseInfo {
                            address,
                            gateway: Some(s.gateway),
                        });
                    }
                }
                ValidSet::List { prefix, pos, .. } => {
                    if pos.contains_key(&ip) {
                        let address = IpNet::new(ip, prefix.prefix_len()).ok()?;
                        return Some(LeaseInfo {
                            address,
                            gateway: None,
                        });
                    }
                }
            }
        }
        None
    }

    /// If `ip` is a range's gateway: for a clearer error on a requested gateway.
    fn is_gateway(&self, ip: IpAddr) -> bool {
        self.sets.iter().any(|s| match s {
            ValidSet::Ranges(spans) => spans.iter().any(|sp| sp.gateway == ip),
            ValidSet::List { .. } => false,
        })
    }

    /// Round-robin scan of set `set`: every allocatable address once, starting right
    /// after `cursor` (or at the beginning when the cursor is not in the set), wrapping.
    /// Returns the first address `accept` takes.
    fn scan(
        &self,
        set: usize,
        cursor: Option<IpAddr>,
        mut accept: impl FnMut(IpAddr) -> bool,
    ) -> Option<IpAddr> {
        match self.sets.get(set)? {
            ValidSet::Ranges(spans) => {
                // Segments (span index, lo, hi) covering every address exactly once.
                let mut segments: Vec<(usize, u128, u128)> = Vec::with_capacity(spans.len() + 1);
                let here = cursor.and_then(|c| {
                    let v = to_u128(c);
                    spans
                        .iter()
                        .position(|s| Family::of(c) == s.family && s.start <= v && v <= s.end)
                        .map(|k| (k, v))
                });
                match here {
                    Some((k, v)) => {
                        let n = spans.len();
                        if v < spans[k].end {
                            segments.push((k, v + 1, spans[k].end));
                        }
                        for j in 1..n {
                            let s = &spans[(k + j) % n];
                            segments.push(((k + j) % n, s.start, s.end));
                        }
                        segments.push((k, spans[k].start, v));
                    }
                    None => {
                        for (i, s) in spans.iter().enumerate() {
                            segments.push((i, s.start, s.end));
                        }
                    }
                }
                for (k, lo, hi) in segments {
                    let s = &spans[k];
                    for v in lo..=hi {
                        if v == s.gateway_u {
                            continue;
                        }
                        let ip = from_u128(s.family, v);
                        if accept(ip) {
                            return Some(ip);
                        }
                    }
                }
                None
            }
            ValidSet::List { addrs, pos, .. } => {
                let n = addrs.len();
                let first = cursor.and_then(|c| pos.get(&c)).map_or(0, |i| i + 1);
                (0..n)
                    .map(|j| addrs[(first + j) % n])
                    .find(|ip| accept(*ip))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Allocator state and operations
// ---------------------------------------------------------------------------------------

/// An allocation failure; the plugin maps `Exhausted` to "no addresses" and the rest to
/// invalid-argument style errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("no free address in range set {set}: {in_use} of {capacity} in use")]
    Exhausted {
        set: usize,
        capacity: u128,
        in_use: u128,
    },
    #[error("requested address {ip} is already held by {holder}")]
    Unavailable { ip: IpAddr, holder: AttachmentKey },
    #[error("requested address {ip} is a gateway and is never handed out")]
    RequestedGateway { ip: IpAddr },
    #[error("requested address {ip} is not inside any configured range")]
    NotInPool { ip: IpAddr },
    #[error("requested addresses {first} and {second} are both in range set {set}; one address per range set")]
    SameSet {
        first: IpAddr,
        second: IpAddr,
        set: usize,
    },
    #[error("invalid attachment key: {what} is empty")]
    InvalidKey { what: &'static str },
}

/// The persisted records are inconsistent (a hand-edited or damaged file). The store
/// reports it with the file name and never resets the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("address {ip} is held by both {first} and {second}")]
    DuplicateAddress {
        ip: IpAddr,
        first: AttachmentKey,
        second: AttachmentKey,
    },
    #[error("attachment {key} appears twice")]
    DuplicateKey { key: AttachmentKey },
    #[error("attachment {key} holds no address")]
    EmptyAllocation { key: AttachmentKey },
    #[error("cursor of range set {set} appears twice")]
    DuplicateCursor { set: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Allocation {
    leases: Vec<Lease>,
    meta: AllocationMeta,
}

/// The allocation state of one network: reservations keyed by attachment, a reverse index
/// by address, the per-set round-robin cursors and the recently released addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocator {
    allocations: BTreeMap<AttachmentKey, Allocation>,
    by_ip: HashMap<IpAddr, AttachmentKey>,
    cursors: BTreeMap<usize, IpAddr>,
    recently_released: VecDeque<IpAddr>,
    /// Bumped by every change; lets the store skip writing when nothing changed.
    revision: u64,
}

impl Allocator {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the state from its persisted parts, checking that no address is held
    /// twice. Never drops a record.
    pub fn from_parts(
        records: Vec<AllocationRecord>,
        cursors: Vec<CursorRecord>,
        recently_released: Vec<IpAddr>,
    ) -> Result<Self, StateError> {
        let mut a = Allocator::new();
        let mut entries = Vec::with_capacity(records.len());
        for rec in records {
            let key = AttachmentKey::new(rec.container_id, rec.ifname);
            if rec.ips.is_empty() {
                return Err(StateError::EmptyAllocation { key });
            }
            let allocation = Allocation {
                leases: rec.ips,
                meta: rec.meta,
            };
            entries.push((key, allocation));
        }
        // The store writes the records ordered by key, so this stable sort is one pass
        // of comparisons, equal keys end up side by side, and the map below is built
        // from sorted input without a search per record (every ADD and DEL loads the
        // node's whole state: docs/benchmarks.md, "IPAM state without flatten").
        entries.sort_by(|x, y| x.0.cmp(&y.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(StateError::DuplicateKey {
                key: pair[0].0.clone(),
            });
        }
        a.by_ip.reserve(entries.len());
        for (key, allocation) in &entries {
            for lease in &allocation.leases {
                if let Some(first) = a.by_ip.insert(lease.ip, key.clone()) {
                    return Err(StateError::DuplicateAddress {
                        ip: lease.ip,
                        first,
                        second: key.clone(),
                    });
                }
            }
        }
        a.allocations = entries.into_iter().collect();
        for c in cursors {
            if a.cursors.insert(c.set, c.last_reserved).is_some() {
                return Err(StateError::DuplicateCursor { set: c.set });
            }
        }
        a.recently_released = recently_released
            .into_iter()
            .filter(|ip| !a.by_ip.contains_key(ip))
            .collect();
        while a.recently_released.len() > RECENTLY_RELEASED_MAX {
            a.recently_released.pop_front();
        }
        Ok(a)
    }

    /// The persisted records, ordered by attachment key.
    pub fn records(&self) -> Vec<AllocationRecord> {
        self.allocations
            .iter()
            .map(|(k, a)| AllocationRecord {
                container_id: k.container_id.clone(),
                ifname: k.ifname.clone(),
                ips: a.leases.clone(),
                meta: a.meta.clone(),
            })
            .collect()
    }

    /// The reservations, borrowed, ordered by attachment key: what the store writes.
    pub fn record_views(&self) -> impl ExactSizeIterator<Item = RecordView<'_>> {
        self.allocations.iter().map(|(k, a)| RecordView {
            container_id: &k.container_id,
            ifname: &k.ifname,
            ips: &a.leases,
            meta: &a.meta,
        })
    }

    /// The persisted cursors, ordered by set.
    pub fn cursors(&self) -> Vec<CursorRecord> {
        self.cursors
            .iter()
            .map(|(&set, &last_reserved)| CursorRecord { set, last_reserved })
            .collect()
    }

    /// Recently released addresses, oldest first.
    pub fn recently_released(&self) -> Vec<IpAddr> {
        self.recently_released.iter().copied().collect()
    }

    /// Changes so far (in memory; not persisted).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The leases of `key`, if it holds any (O(log n), no scan).
    pub fn get(&self, key: &AttachmentKey) -> Option<&[Lease]> {
        self.allocations.get(key).map(|a| a.leases.as_slice())
    }

    /// The metadata stored with `key`'s reservation.
    pub fn meta(&self, key: &AttachmentKey) -> Option<&AllocationMeta> {
        self.allocations.get(key).map(|a| &a.meta)
    }

    /// Who holds `ip` (O(1)).
    pub fn holder(&self, ip: IpAddr) -> Option<&AttachmentKey> {
        self.by_ip.get(&ip)
    }

    /// Every attachment holding addresses, ordered by key.
    pub fn keys(&self) -> impl Iterator<Item = &AttachmentKey> {
        self.allocations.keys()
    }

    /// Number of attachments holding addresses.
    pub fn attachments(&self) -> usize {
        self.allocations.len()
    }

    /// Number of held addresses, in the pool or not.
    pub fn held(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }

    /// Held addresses that `pool` could hand out (so in_use + free == capacity).
    pub fn in_use(&self, pool: &ValidPool) -> u128 {
        self.by_ip.keys().filter(|ip| pool.contains(**ip)).count() as u128
    }

    /// Held addresses in set `set`.
    pub fn set_in_use(&self, pool: &ValidPool, set: usize) -> u128 {
        self.by_ip
            .keys()
            .filter(|ip| pool.set_contains(set, **ip))
            .count() as u128
    }

    /// Addresses `pool` can hand out.
    pub fn capacity(&self, pool: &ValidPool) -> u128 {
        pool.capacity()
    }

    /// Free addresses in `pool`.
    pub fn free(&self, pool: &ValidPool) -> u128 {
        pool.capacity() - self.in_use(pool)
    }

    /// Held addresses that are no longer in `pool` (config changed). They stay held
    /// until their attachment is released: never handed out twice, never dropped.
    pub fn held_outside(&self, pool: &ValidPool) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .by_ip
            .keys()
            .filter(|ip| !pool.contains(**ip))
            .copied()
            .collect();
        v.sort();
        v
    }

    /// Whether every range set has a free address (CNI STATUS: 50 otherwise).
    pub fn can_allocate(&self, pool: &ValidPool) -> bool {
        (0..pool.set_count()).all(|s| self.set_in_use(pool, s) < pool.set_capacity(s))
    }

    /// Reserves one address from each range set for `key`, all or nothing.
    ///
    /// - If `key` already holds addresses they are returned unchanged: a retried ADD after
    ///   a crash between the IPAM write and the datapath gets the same addresses.
    /// - `requested` (runtimeConfig `ips`, CNI_ARGS `IP=`) pins the address of the set
    ///   containing it; an address outside every set or held by another key is an error.
    /// - Other sets get the next free address after the set's cursor, skipping recently
    ///   released addresses unless nothing else is free.
    pub fn allocate(
        &mut self,
        pool: &ValidPool,
        key: &AttachmentKey,
        requested: &[IpAddr],
        meta: AllocationMeta,
    ) -> Result<Vec<Lease>, AllocError> {
        if key.container_id.is_empty() {
            return Err(AllocError::InvalidKey {
                what: "container ID",
            });
        }
        if key.ifname.is_empty() {
            return Err(AllocError::InvalidKey { what: "ifname" });
        }
        if let Some(existing) = self.allocations.get(key) {
            return Ok(existing.leases.clone());
        }

        let pinned = self.pin_requested(pool, requested)?;
        // Choose every address before changing anything: all or nothing.
        let mut chosen: Vec<Lease> = Vec::with_capacity(pool.set_count());
        for (set, pin) in pinned.iter().enumerate() {
            let ip = match pin {
                Some(ip) => *ip,
                None => self.next_free(pool, set)?,
            };
            chosen.push(Lease { ip, set });
        }

        for lease in &chosen {
            self.by_ip.insert(lease.ip, key.clone());
            self.recently_released.retain(|ip| *ip != lease.ip);
            if pinned[lease.set].is_none() {
                // A requested address is not part of the round-robin sequence.
                self.cursors.insert(lease.set, lease.ip);
            }
        }
        self.allocations.insert(
            key.clone(),
            Allocation {
                leases: chosen.clone(),
                meta,
            },
        );
        self.revision += 1;
        Ok(chosen)
    }

    /// Places each requested address in its set (host-local main.go: each range set
    /// takes the requested IP it contains; leftovers are an error).
    fn pin_requested(
        &self,
        pool: &ValidPool,
        requested: &[IpAddr],
    ) -> Result<Vec<Option<IpAddr>>, AllocError> {
        let mut pinned: Vec<Option<IpAddr>> = vec![None; pool.set_count()];
        for &ip in requested {
            let Some(set) = pool.set_of(ip) else {
                if pool.is_gateway(ip) {
                    return Err(AllocError::RequestedGateway { ip });
                }
                return Err(AllocError::NotInPool { ip });
            };
            if let Some(first) = pinned[set] {
                return Err(AllocError::SameSet {
                    first,
                    second: ip,
                    set,
                });
            }
            if let Some(holder) = self.by_ip.get(&ip) {
                return Err(AllocError::Unavailable {
                    ip,
                    holder: holder.clone(),
                });
            }
            pinned[set] = Some(ip);
        }
        Ok(pinned)
    }

    /// The next free address of `set` after its cursor, skipping recently released
    /// addresses unless only those are free.
    fn next_free(&self, pool: &ValidPool, set: usize) -> Result<IpAddr, AllocError> {
        let capacity = pool.set_capacity(set);
        let in_use = self.set_in_use(pool, set);
        let exhausted = AllocError::Exhausted {
            set,
            capacity,
            in_use,
        };
        if in_use >= capacity {
            return Err(exhausted);
        }
        let quarantined: HashSet<IpAddr> = self
            .recently_released
            .iter()
            .copied()
            .filter(|ip| pool.set_contains(set, *ip) && !self.by_ip.contains_key(ip))
            .collect();
        let cursor = self.cursors.get(&set).copied();
        let ip = if in_use + (quarantined.len() as u128) < capacity {
            // A free address outside the quarantine exists, so this scan stops after
            // at most in_use + quarantined + gateways + 1 steps, not the whole range.
            pool.scan(set, cursor, |ip| {
                !self.by_ip.contains_key(&ip) && !quarantined.contains(&ip)
            })
        } else {
            // Only recently released addresses are free: the oldest one first.
            self.recently_released
                .iter()
                .copied()
                .find(|ip| quarantined.contains(ip))
        };
        // None is unreachable when the counts are right; report exhaustion, not a panic.
        ip.ok_or(exhausted)
    }

    /// Releases `key`'s addresses. Idempotent: an unknown key releases nothing and
    /// succeeds (CNI DEL, docs/cni-clients.md#del).
    pub fn release(&mut self, key: &AttachmentKey) -> Vec<IpAddr> {
        let Some(alloc) = self.allocations.remove(key) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(alloc.leases.len());
        for lease in alloc.leases {
            self.by_ip.remove(&lease.ip);
            self.recently_released.retain(|ip| *ip != lease.ip);
            self.recently_released.push_back(lease.ip);
            while self.recently_released.len() > RECENTLY_RELEASED_MAX {
                self.recently_released.pop_front();
            }
            out.push(lease.ip);
        }
        self.revision += 1;
        out
    }

    /// CNI GC: releases every attachment not in `valid` and returns what it released.
    /// An empty `valid` releases everything (the spec's meaning of an empty list, and
    /// what the plugin passes for a missing `cni.dev/valid-attachments`, issue 2).
    pub fn gc(&mut self, valid: &HashSet<AttachmentKey>) -> Vec<(AttachmentKey, Vec<IpAddr>)> {
        let stale: Vec<AttachmentKey> = self
            .allocations
            .keys()
            .filter(|k| !valid.contains(*k))
            .cloned()
            .collect();
        stale
            .into_iter()
            .map(|k| {
                let ips = self.release(&k);
                (k, ips)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }
    fn net(s: &str) -> IpNet {
        s.parse().expect("test subnet")
    }
    fn key(i: usize) -> AttachmentKey {
        AttachmentKey::new(format!("ctr{i}"), "eth0")
    }
    fn range(subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>) -> Range {
        Range {
            subnet: net(subnet),
            range_start: start.map(ip),
            range_end: end.map(ip),
            gateway: gw.map(ip),
        }
    }
    fn one(r: Range) -> Pool {
        Pool::Ranges(vec![vec![r]])
    }
    fn valid(p: &Pool) -> ValidPool {
        p.validate().expect("valid pool")
    }
    /// Every address a pool hands out, in round-robin order from an empty state.
    fn drain(pool: &ValidPool) -> Result<Vec<IpAddr>, AllocError> {
        let mut a = Allocator::new();
        let mut out = Vec::new();
        for i in 0.. {
            match a.allocate(pool, &key(i), &[], AllocationMeta::default()) {
                Ok(l) => out.push(l[0].ip),
                Err(AllocError::Exhausted { .. }) => return Ok(out),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // ---- range validation -------------------------------------------------------------

    #[test]
    fn slash24_defaults_exclude_network_gateway_broadcast() {
        let p = valid(&one(Range::subnet(net("10.244.1.0/24"))));
        assert_eq!(p.capacity(), 253);
        let got = drain(&p).expect("drain");
        assert_eq!(got.len(), 253);
        assert_eq!(got[0], ip("10.244.1.2"));
        assert_eq!(got[252], ip("10.244.1.254"));
        for bad in ["10.244.1.0", "10.244.1.1", "10.244.1.255"] {
            assert!(!got.contains(&ip(bad)), "{bad} handed out");
        }
        let info = p.lease_info(ip("10.244.1.7")).expect("in pool");
        assert_eq!(info.address, net("10.244.1.7/24"));
        assert_eq!(info.gateway, Some(ip("10.244.1.1")));
    }

    #[test]
    fn slash30_has_one_address() {
        let p = valid(&one(Range::subnet(net("10.0.0.0/30"))));
        assert_eq!(drain(&p).expect("drain"), vec![ip("10.0.0.2")]);
        // With the gateway moved off .1 both hosts are usable.
        let p = valid(&one(range("10.0.0.0/30", None, None, Some("10.0.0.2"))));
        assert_eq!(drain(&p).expect("drain"), vec![ip("10.0.0.1")]);
    }

    #[test]
    fn slash31_slash32_slash127_slash128_are_too_small() {
        for s in ["10.0.0.0/31", "10.0.0.0/32", "fd00::/127", "fd00::/128"] {
            let e = one(Range::subnet(net(s))).validate().expect_err(s);
            assert!(matches!(e, PoolError::TooSmall { .. }), "{s}: {e}");
            assert_eq!(
                e.to_string(),
                format!("ranges[0][0].subnet {s} is too small to allocate from (needs at least 4 addresses: network, gateway or host, broadcast)")
            );
        }
    }

    #[test]
    fn host_bits_rejected_with_field_and_network() {
        let e = one(Range::subnet(net("10.1.0.5/24")))
            .validate()
            .expect_err("host bits");
        assert_eq!(
            e.to_string(),
            "ranges[0][0].subnet 10.1.0.5/24 has host bits set (the network is 10.1.0.0/24)"
        );
    }

    #[test]
    fn range_start_end_honoured() {
        let p = valid(&one(range(
            "10.1.0.0/24",
            Some("10.1.0.100"),
            Some("10.1.0.103"),
            None,
        )));
        assert_eq!(p.capacity(), 4);
        let got = drain(&p).expect("drain");
        assert_eq!(
            got,
            ["10.1.0.100", "10.1.0.101", "10.1.0.102", "10.1.0.103"]
                .map(ip)
                .to_vec()
        );
    }

    #[test]
    fn gateway_inside_range_is_skipped() {
        let p = valid(&one(range(
            "10.1.0.0/24",
            Some("10.1.0.10"),
            Some("10.1.0.12"),
            Some("10.1.0.11"),
        )));
        assert_eq!(p.capacity(), 2);
        assert_eq!(
            drain(&p).expect("drain"),
            vec![ip("10.1.0.10"), ip("10.1.0.12")]
        );
    }

    #[test]
    fn range_field_errors_name_field_and_value() {
        let cases: Vec<(Range, &str)> = vec![
            (
                range("10.1.0.0/24", Some("10.2.0.5"), None, None),
                "ranges[0][0].rangeStart 10.2.0.5 is not inside subnet 10.1.0.0/24",
            ),
            (
                range("10.1.0.0/24", None, Some("10.1.1.0"), None),
                "ranges[0][0].rangeEnd 10.1.1.0 is not inside subnet 10.1.0.0/24",
            ),
            (
                range("10.1.0.0/24", None, None, Some("fd00::1")),
                "ranges[0][0].gateway fd00::1 is not inside subnet 10.1.0.0/24",
            ),
            (
                range("10.1.0.0/24", Some("10.1.0.0"), None, None),
                "ranges[0][0].rangeStart 10.1.0.0 is the network address of 10.1.0.0/24 and can never be handed out",
            ),
            (
                range("10.1.0.0/24", None, Some("10.1.0.255"), None),
                "ranges[0][0].rangeEnd 10.1.0.255 is the broadcast address of 10.1.0.0/24 and can never be handed out",
            ),
            (
                range("10.1.0.0/24", Some("10.1.0.50"), Some("10.1.0.40"), None),
                "ranges[0][0].rangeStart 10.1.0.50 is after rangeEnd 10.1.0.40",
            ),
            (
                range("10.1.0.0/24", Some("10.1.0.1"), Some("10.1.0.1"), None),
                "ranges[0][0].subnet 10.1.0.0/24 has no allocatable address (only the gateway lies in rangeStart..rangeEnd)",
            ),
            (
                range("fd00::/64", Some("fd00::"), None, None),
                "ranges[0][0].rangeStart fd00:: is the network address of fd00::/64 and can never be handed out",
            ),
        ];
        for (r, want) in cases {
            let e = one(r).validate().expect_err(want);
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn set_structure_errors() {
        assert_eq!(Pool::Ranges(vec![]).validate(), Err(PoolError::NoRangeSets));
        assert_eq!(
            Pool::Ranges(vec![vec![Range::subnet(net("10.0.0.0/24"))], vec![]]).validate(),
            Err(PoolError::EmptyRangeSet { set: 1 })
        );
        let e = Pool::Ranges(vec![vec![
            Range::subnet(net("10.0.0.0/24")),
            Range::subnet(net("fd00::/64")),
        ]])
        .validate()
        .expect_err("mixed");
        assert_eq!(e.to_string(), "ranges[0][1].subnet fd00::/64 is IPv6 but ranges[0][0].subnet is IPv4: one range set holds one address family");
        let e = Pool::Ranges(vec![
            vec![Range::subnet(net("10.0.0.0/16"))],
            vec![Range::subnet(net("10.0.5.0/24"))],
        ])
        .validate()
        .expect_err("overlap");
        assert_eq!(
            e.to_string(),
            "ranges[1][0].subnet 10.0.5.0/24 overlaps ranges[0][0].subnet 10.0.0.0/16"
        );
    }

    #[test]
    fn ipv6_range_has_no_broadcast() {
        let p = valid(&one(Range::subnet(net("fd00::/126"))));
        // ::0 network, ::1 gateway, ::2 and ::3 usable (no broadcast in IPv6).
        assert_eq!(
            drain(&p).expect("drain"),
            vec![ip("fd00::2"), ip("fd00::3")]
        );
        let p = valid(&one(Range::subnet(net("fd00::/64"))));
        assert_eq!(p.capacity(), (1u128 << 64) - 2);
        let mut a = Allocator::new();
        let l = a
            .allocate(&p, &key(0), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(l[0].ip, ip("fd00::2"));
        assert_eq!(a.free(&p), (1u128 << 64) - 3);
    }

    #[test]
    fn multiple_ranges_in_one_set_are_walked_in_order_and_wrap() {
        let p = valid(&Pool::Ranges(vec![vec![
            range("10.0.0.0/29", Some("10.0.0.5"), Some("10.0.0.6"), None),
            range("10.0.1.0/29", Some("10.0.1.2"), Some("10.0.1.3"), None),
        ]]));
        assert_eq!(
            drain(&p).expect("drain"),
            ["10.0.0.5", "10.0.0.6", "10.0.1.2", "10.0.1.3"]
                .map(ip)
                .to_vec()
        );
    }

    #[test]
    fn dual_stack_gets_one_address_per_set_all_or_nothing() {
        let p = valid(&Pool::Ranges(vec![
            vec![Range::subnet(net("10.0.0.0/29"))],
            vec![Range::subnet(net("fd00::/126"))],
        ]));
        let mut a = Allocator::new();
        let l = a
            .allocate(&p, &key(0), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(
            l,
            vec![
                Lease {
                    ip: ip("10.0.0.2"),
                    set: 0
                },
                Lease {
                    ip: ip("fd00::2"),
                    set: 1
                }
            ]
        );
        a.allocate(&p, &key(1), &[], AllocationMeta::default())
            .expect("second");
        // IPv6 set exhausted (2 addresses), IPv4 still has room: nothing is taken.
        let before = a.clone();
        let e = a
            .allocate(&p, &key(2), &[], AllocationMeta::default())
            .expect_err("v6 exhausted");
        assert_eq!(
            e,
            AllocError::Exhausted {
                set: 1,
                capacity: 2,
                in_use: 2
            }
        );
        assert_eq!(a, before);
    }

    #[test]
    fn address_pool_validation() {
        let ok = Pool::Addresses {
            prefix: net("10.240.0.0/24"),
            addrs: vec![ip("10.240.0.5"), ip("10.240.0.6")],
        };
        let p = valid(&ok);
        assert_eq!(p.capacity(), 2);
        let info = p.lease_info(ip("10.240.0.6")).expect("listed");
        assert_eq!(info.address, net("10.240.0.6/24"));
        assert_eq!(info.gateway, None);
        let cases = vec![
            (
                Pool::Addresses { prefix: net("10.240.0.0/24"), addrs: vec![] },
                "podIps: the node has no pod addresses in subnet 10.240.0.0/24",
            ),
            (
                Pool::Addresses { prefix: net("10.240.0.0/24"), addrs: vec![ip("10.241.0.5")] },
                "podIps[0] 10.241.0.5 is not inside subnet 10.240.0.0/24",
            ),
            (
                Pool::Addresses {
                    prefix: net("10.240.0.0/24"),
                    addrs: vec![ip("10.240.0.5"), ip("10.240.0.5")],
                },
                "podIps[1] 10.240.0.5 is listed twice (also podIps[0])",
            ),
            (
                Pool::Addresses { prefix: net("10.240.0.0/24"), addrs: vec![ip("10.240.0.255")] },
                "podIps[0] 10.240.0.255 is the broadcast address of 10.240.0.0/24 and can never be handed out",
            ),
            (
                Pool::Addresses { prefix: net("10.240.0.9/24"), addrs: vec![ip("10.240.0.5")] },
                "subnet 10.240.0.9/24 has host bits set (the network is 10.240.0.0/24)",
            ),
        ];
        for (pool, want) in cases {
            assert_eq!(pool.validate().expect_err(want).to_string(), want);
        }
    }

    #[test]
    fn address_pool_round_robin_in_list_order() {
        let p = valid(&Pool::Addresses {
            prefix: net("10.240.0.0/24"),
            addrs: ["10.240.0.9", "10.240.0.4", "10.240.0.7"].map(ip).to_vec(),
        });
        assert_eq!(
            drain(&p).expect("drain"),
            ["10.240.0.9", "10.240.0.4", "10.240.0.7"].map(ip).to_vec()
        );
    }

    // ---- allocation error paths and semantics ---------------------------------------

    #[test]
    fn exhausted_reports_capacity_and_in_use() {
        let p = valid(&one(range(
            "10.0.0.0/24",
            Some("10.0.0.10"),
            Some("10.0.0.11"),
            None,
        )));
        let mut a = Allocator::new();
        for i in 0..2 {
            a.allocate(&p, &key(i), &[], AllocationMeta::default())
                .expect("alloc");
        }
        let e = a
            .allocate(&p, &key(9), &[], AllocationMeta::default())
            .expect_err("full");
        assert_eq!(
            e.to_string(),
            "no free address in range set 0: 2 of 2 in use"
        );
        assert!(!a.can_allocate(&p));
        assert_eq!(a.free(&p), 0);
    }

    #[test]
    fn allocate_is_idempotent_per_key() {
        let p = valid(&one(Range::subnet(net("10.0.0.0/24"))));
        let mut a = Allocator::new();
        let first = a
            .allocate(&p, &key(1), &[], AllocationMeta::default())
            .expect("alloc");
        let rev = a.revision();
        let again = a
            .allocate(&p, &key(1), &[ip("10.0.0.99")], AllocationMeta::default())
            .expect("retry");
        assert_eq!(first, again);
        assert_eq!(a.revision(), rev, "a retry changes nothing");
    }

    #[test]
    fn requested_address_errors() {
        let p = valid(&Pool::Ranges(vec![
            vec![Range::subnet(net("10.0.0.0/24"))],
            vec![Range::subnet(net("fd00::/120"))],
        ]));
        let mut a = Allocator::new();
        let l = a
            .allocate(&p, &key(1), &[ip("10.0.0.50")], AllocationMeta::default())
            .expect("requested");
        assert_eq!(l[0].ip, ip("10.0.0.50"));
        assert_eq!(l[1].ip, ip("fd00::2"));
        let before = a.clone();
        let cases = [
            (
                vec![ip("10.0.0.50")],
                "requested address 10.0.0.50 is already held by ctr1/eth0",
            ),
            (
                vec![ip("10.0.0.1")],
                "requested address 10.0.0.1 is a gateway and is never handed out",
            ),
            (
                vec![ip("10.0.0.255")],
                "requested address 10.0.0.255 is not inside any configured range",
            ),
            (
                vec![ip("192.168.0.5")],
                "requested address 192.168.0.5 is not inside any configured range",
            ),
            (
                vec![ip("10.0.0.7"), ip("10.0.0.8")],
                "requested addresses 10.0.0.7 and 10.0.0.8 are both in range set 0; one address per range set",
            ),
        ];
        for (req, want) in cases {
            let e = a
                .allocate(&p, &key(2), &req, AllocationMeta::default())
                .expect_err(want);
            assert_eq!(e.to_string(), want);
            assert_eq!(a, before, "a failed allocate changes nothing");
        }
        // A requested address in the second set, round-robin in the first.
        let l = a
            .allocate(&p, &key(2), &[ip("fd00::77")], AllocationMeta::default())
            .expect("v6 pinned");
        assert_eq!(l[0].ip, ip("10.0.0.2"));
        assert_eq!(l[1].ip, ip("fd00::77"));
        let e = a
            .allocate(
                &p,
                &AttachmentKey::new("", "eth0"),
                &[],
                AllocationMeta::default(),
            )
            .expect_err("empty id");
        assert_eq!(
            e,
            AllocError::InvalidKey {
                what: "container ID"
            }
        );
        let e = a
            .allocate(
                &p,
                &AttachmentKey::new("x", ""),
                &[],
                AllocationMeta::default(),
            )
            .expect_err("empty ifname");
        assert_eq!(e, AllocError::InvalidKey { what: "ifname" });
    }

    #[test]
    fn release_is_idempotent_and_gc_keeps_valid() {
        let p = valid(&one(Range::subnet(net("10.0.0.0/24"))));
        let mut a = Allocator::new();
        for i in 0..4 {
            a.allocate(&p, &key(i), &[], AllocationMeta::default())
                .expect("alloc");
        }
        assert_eq!(a.release(&key(0)), vec![ip("10.0.0.2")]);
        assert_eq!(a.release(&key(0)), Vec::<IpAddr>::new());
        let valid_keys: HashSet<AttachmentKey> = [key(2)].into_iter().collect();
        let released = a.gc(&valid_keys);
        assert_eq!(
            released,
            vec![
                (key(1), vec![ip("10.0.0.3")]),
                (key(3), vec![ip("10.0.0.5")])
            ]
        );
        assert_eq!(a.keys().collect::<Vec<_>>(), vec![&key(2)]);
        // Empty valid set: release everything.
        a.gc(&HashSet::new());
        assert!(a.is_empty());
        assert_eq!(a.in_use(&p), 0);
    }

    #[test]
    fn crash_looping_container_does_not_get_its_address_back() {
        let p = valid(&one(Range::subnet(net("10.0.0.0/29"))));
        let mut a = Allocator::new();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let l = a
                .allocate(&p, &key(1), &[], AllocationMeta::default())
                .expect("alloc");
            seen.push(l[0].ip);
            a.release(&key(1));
        }
        // .2 .. .6 in turn, never the same one twice in a row.
        assert_eq!(
            seen,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
                .map(ip)
                .to_vec()
        );
    }

    #[test]
    fn just_freed_address_after_cursor_is_not_reused() {
        // The cursor alone would hand .4 straight back: it is the next address after it.
        let p = valid(&one(Range::subnet(net("10.0.0.0/29"))));
        let mut a = Allocator::new();
        for i in 0..5 {
            a.allocate(&p, &key(i), &[], AllocationMeta::default())
                .expect("fill"); // .2 ... .6
        }
        a.release(&key(0)); // .2 free
        a.allocate(&p, &key(10), &[], AllocationMeta::default())
            .expect("wrap"); // cursor wraps to .2
        a.release(&key(1)); // .3 free, right after the cursor
        a.release(&key(3)); // .5 free
        let l = a
            .allocate(&p, &key(11), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(l[0].ip, ip("10.0.0.3"), "oldest release first: .3 then .5");
        // Only the just-freed one is left: it is handed out rather than failing.
        a.release(&key(11));
        let l = a
            .allocate(&p, &key(12), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(l[0].ip, ip("10.0.0.5"));
        let l = a
            .allocate(&p, &key(13), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(l[0].ip, ip("10.0.0.3"));
    }

    #[test]
    fn config_change_keeps_held_addresses_until_released() {
        let old = valid(&one(Range::subnet(net("10.0.0.0/24"))));
        let new = valid(&one(Range::subnet(net("10.0.1.0/24"))));
        let mut a = Allocator::new();
        a.allocate(&old, &key(1), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(a.held_outside(&new), vec![ip("10.0.0.2")]);
        assert_eq!(a.in_use(&new), 0);
        assert_eq!(a.held(), 1);
        // Retried ADD still gets the held address back, unchanged.
        let l = a
            .allocate(&new, &key(1), &[], AllocationMeta::default())
            .expect("retry");
        assert_eq!(l[0].ip, ip("10.0.0.2"));
        // The reverse direction: a new pool that contains an address held from before
        // never hands it out again.
        let wide = valid(&one(range(
            "10.0.0.0/24",
            Some("10.0.0.2"),
            Some("10.0.0.3"),
            None,
        )));
        let l = a
            .allocate(&wide, &key(2), &[], AllocationMeta::default())
            .expect("alloc");
        assert_eq!(l[0].ip, ip("10.0.0.3"));
        assert_eq!(a.release(&key(1)), vec![ip("10.0.0.2")]);
    }

    #[test]
    fn parts_round_trip_and_corruption_is_detected() {
        let p = valid(&Pool::Ranges(vec![
            vec![Range::subnet(net("10.0.0.0/24"))],
            vec![Range::subnet(net("fd00::/120"))],
        ]));
        let mut a = Allocator::new();
        let meta = AllocationMeta {
            pod_namespace: Some("default".into()),
            pod_name: Some("web-0".into()),
            created_unix: 1_700_000_000,
        };
        a.allocate(&p, &key(1), &[], meta.clone()).expect("alloc");
        a.allocate(&p, &key(2), &[], AllocationMeta::default())
            .expect("alloc");
        a.release(&key(2));
        let b = Allocator::from_parts(a.records(), a.cursors(), a.recently_released())
            .expect("round trip");
        assert_eq!(b.records(), a.records());
        assert_eq!(b.cursors(), a.cursors());
        assert_eq!(b.recently_released(), a.recently_released());
        assert_eq!(b.meta(&key(1)), Some(&meta));
        assert_eq!(b.holder(ip("10.0.0.2")), Some(&key(1)));

        let mut recs = a.records();
        let mut dup = recs[0].clone();
        dup.container_id = "other".into();
        recs.push(dup);
        let e = Allocator::from_parts(recs, vec![], vec![]).expect_err("dup ip");
        assert_eq!(
            e.to_string(),
            "address 10.0.0.2 is held by both ctr1/eth0 and other/eth0"
        );
        let recs = vec![a.records()[0].clone(), a.records()[0].clone()];
        assert!(matches!(
            Allocator::from_parts(recs, vec![], vec![]),
            Err(StateError::DuplicateKey { .. })
        ));
        let mut empty = a.records()[0].clone();
        empty.ips.clear();
        assert!(matches!(
            Allocator::from_parts(vec![empty], vec![], vec![]),
            Err(StateError::EmptyAllocation { .. })
        ));
        let c = CursorRecord {
            set: 0,
            last_reserved: ip("10.0.0.2"),
        };
        assert!(matches!(
            Allocator::from_parts(vec![], vec![c, c], vec![]),
            Err(StateError::DuplicateCursor { set: 0 })
        ));
    }

    #[test]
    fn record_json_shape() {
        let rec = AllocationRecord {
            container_id: "abc".into(),
            ifname: "eth0".into(),
            ips: vec![Lease {
                ip: ip("10.0.0.2"),
                set: 0,
            }],
            meta: AllocationMeta {
                pod_namespace: Some("ns".into()),
                pod_name: None,
                created_unix: 5,
            },
        };
        let s = serde_json::to_string(&rec).expect("ser");
        assert_eq!(
            s,
            r#"{"containerId":"abc","ifname":"eth0","ips":[{"ip":"10.0.0.2","set":0}],"podNamespace":"ns","createdUnix":5}"#
        );
        let back: AllocationRecord = serde_json::from_str(&s).expect("de");
        assert_eq!(back, rec);
    }

    // ---- property tests ---------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Allocate { key: usize, request: Option<u8> },
        Release { key: usize },
        Gc { keep: Vec<bool> },
    }

    const KEYS: usize = 8;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..KEYS, proptest::option::weighted(0.2, any::<u8>()))
                .prop_map(|(key, request)| Op::Allocate { key, request }),
            3 => (0..KEYS).prop_map(|key| Op::Release { key }),
            1 => proptest::collection::vec(any::<bool>(), KEYS).prop_map(|keep| Op::Gc { keep }),
        ]
    }

    fn pools() -> Vec<Pool> {
        vec![
            // Smaller than KEYS so exhaustion happens.
            one(range(
                "10.0.0.0/28",
                Some("10.0.0.2"),
                Some("10.0.0.7"),
                None,
            )),
            one(Range::subnet(net("10.0.0.0/28"))),
            Pool::Ranges(vec![
                vec![
                    range("10.0.0.0/29", Some("10.0.0.4"), None, None),
                    range("10.0.1.0/30", None, None, None),
                ],
                vec![range("fd00::/125", None, None, Some("fd00::5"))],
            ]),
            Pool::Addresses {
                prefix: net("10.240.0.0/24"),
                addrs: [
                    "10.240.0.9",
                    "10.240.0.4",
                    "10.240.0.7",
                    "10.240.0.5",
                    "10.240.0.6",
                ]
                .map(ip)
                .to_vec(),
            },
        ]
    }

    /// Every address in the pool, per set, by brute force (independent of `scan`).
    fn all_addresses(p: &ValidPool) -> Vec<Vec<IpAddr>> {
        (0..p.set_count())
            .map(|s| {
                let mut out = Vec::new();
                p.scan(s, None, |ip| {
                    out.push(ip);
                    false
                });
                out
            })
            .collect()
    }

    fn check_invariants(a: &Allocator, p: &ValidPool, model: &HashMap<usize, Vec<IpAddr>>) {
        // No address is held by two keys (checked on the records, not the index).
        let mut owners: HashMap<IpAddr, AttachmentKey> = HashMap::new();
        for r in a.records() {
            for l in &r.ips {
                let k = AttachmentKey::new(r.container_id.clone(), r.ifname.clone());
                assert!(owners.insert(l.ip, k).is_none(), "{} held twice", l.ip);
            }
        }
        assert_eq!(owners.len(), a.held());
        for (ip, k) in &owners {
            assert_eq!(a.holder(*ip), Some(k));
        }
        // The state matches the model of what each key was given.
        assert_eq!(a.attachments(), model.len());
        for (k, ips) in model {
            let got: Vec<IpAddr> = a
                .get(&key(*k))
                .expect("held")
                .iter()
                .map(|l| l.ip)
                .collect();
            assert_eq!(&got, ips);
        }
        assert_eq!(a.in_use(p) + a.free(p), a.capacity(p));
        let every: usize = all_addresses(p).iter().map(Vec::len).sum();
        assert_eq!(every as u128, p.capacity());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn random_sequences_keep_every_invariant(
            pool_idx in 0..4usize,
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            let p = valid(&pools()[pool_idx]);
            let all = all_addresses(&p);
            let mut a = Allocator::new();
            let mut model: HashMap<usize, Vec<IpAddr>> = HashMap::new();
            // Addresses freed by the previous operation.
            let mut just_freed: Vec<IpAddr> = Vec::new();
            for op in ops {
                let mut freed_now = Vec::new();
                match op {
                    Op::Allocate { key: k, request } => {
                        let requested: Vec<IpAddr> = request
                            .map(|r| {
                                let s = &all[0];
                                s[usize::from(r) % s.len()]
                            })
                            .into_iter()
                            .collect();
                        let before = a.clone();
                        let res = a.allocate(&p, &key(k), &requested, AllocationMeta::default());
                        match (res, model.get(&k)) {
                            (Ok(l), Some(prev)) => {
                                let got: Vec<IpAddr> = l.iter().map(|l| l.ip).collect();
                                prop_assert_eq!(&got, prev, "idempotent retry");
                            }
                            (Ok(l), None) => {
                                prop_assert_eq!(l.len(), p.set_count());
                                for lease in &l {
                                    prop_assert!(p.set_contains(lease.set, lease.ip));
                                    prop_assert!(before.holder(lease.ip).is_none(), "{} handed out twice", lease.ip);
                                    // Round-robin never returns a just-freed address while
                                    // another address of the set is free.
                                    let others_free = all[lease.set].iter().any(|x| {
                                        before.holder(*x).is_none() && !just_freed.contains(x)
                                    });
                                    if requested.is_empty() && others_free {
                                        prop_assert!(!just_freed.contains(&lease.ip),
                                            "just-freed {} reused", lease.ip);
                                    }
                                }
                                model.insert(k, l.iter().map(|l| l.ip).collect());
                            }
                            (Err(AllocError::Exhausted { set, capacity, in_use }), _) => {
                                prop_assert!(requested.is_empty() || p.set_count() > 1);
                                prop_assert_eq!(capacity, p.set_capacity(set));
                                prop_assert_eq!(in_use, capacity);
                                prop_assert_eq!(&a, &before);
                            }
                            (Err(AllocError::Unavailable { ip, holder }), None) => {
                                prop_assert_eq!(requested.clone(), vec![ip]);
                                prop_assert_eq!(before.holder(ip), Some(&holder));
                                prop_assert_eq!(&a, &before);
                            }
                            (Err(e), _) => prop_assert!(false, "unexpected error {e}"),
                        }
                    }
                    Op::Release { key: k } => {
                        let got = a.release(&key(k));
                        let want = model.remove(&k).unwrap_or_default();
                        prop_assert_eq!(&got, &want);
                        for ip in &got {
                            prop_assert!(a.holder(*ip).is_none(), "released {} still held", ip);
                        }
                        freed_now = got;
                    }
                    Op::Gc { keep } => {
                        let valid_keys: HashSet<AttachmentKey> =
                            (0..KEYS).filter(|i| keep[*i]).map(key).collect();
                        let released = a.gc(&valid_keys);
                        for (k, ips) in released {
                            let idx = (0..KEYS).find(|i| key(*i) == k).expect("known key");
                            prop_assert!(!keep[idx]);
                            prop_assert_eq!(model.remove(&idx), Some(ips.clone()));
                            freed_now.extend(ips);
                        }
                        for i in 0..KEYS {
                            prop_assert_eq!(a.get(&key(i)).is_some(), model.contains_key(&i));
                        }
                    }
                }
                just_freed = freed_now;
                check_invariants(&a, &p, &model);
                // The persisted form always reloads to the same state.
                let back = Allocator::from_parts(a.records(), a.cursors(), a.recently_released())
                    .expect("reload");
                prop_assert_eq!(back.records(), a.records());
            }
            // No leaks: releasing every key empties the state.
            for k in 0..KEYS {
                a.release(&key(k));
            }
            prop_assert_eq!(a.in_use(&p), 0);
            prop_assert_eq!(a.held(), 0);
            prop_assert_eq!(a.free(&p), p.capacity());
        }
    }
}
