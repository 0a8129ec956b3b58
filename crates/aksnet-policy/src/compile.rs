//! NetworkPolicy → one node's nftables filter table (docs/policy.md "Datapath").
//!
//! Layout (the ideas of Calico's nftables data plane and kube-network-policies, see
//! docs/policy.md for the sources):
//! - two base chains on the `forward` hook: `egress` (priority 0) checks the source pod,
//!   `ingress` (priority 10) the destination pod; an `accept` ends only its own base chain,
//!   so a connection between two pods of this node passes both checks in one pass and needs
//!   both to admit it; established and related packets (replies) pass first;
//! - dispatch by verdict maps keyed by pod address (`eg-4`, `in-4`, `-6`): only isolated pods
//!   of this node have an entry, every other packet costs one lookup;
//! - the entry jumps to a group chain shared by every pod isolated by the same policies; the
//!   group jumps to each policy's chain (rendered once per policy) and drops what none admits;
//! - peers are named sets shared by identical selectors; named ports are
//!   `addr . proto . port` sets of the pods that declare them; ipBlocks are literal prefixes;
//! - fail closed: an address of this node's pod ranges that the agent does not know yet is
//!   dropped in both directions, so a new pod is never open before its policy is in place.
//!
//! Every name is derived from content (a hash of the policy key or selector), so pod and
//! label churn changes only set and map elements, and a policy edit changes only its chain.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use aksnet_nft::filter::{
    CtState, Elem, FilterChain, FilterRule, FilterTable, KeyType, Match, NamedSet, Verdict,
    VerdictMap,
};
use aksnet_nft::model::{priority, AddrField, AddrValue, BaseChain, ChainType, Family, Hook, Op};
use aksnet_nft::Policy as ChainPolicy;
use ipnet::IpNet;

use crate::model::{
    peer_selects_pod, Cluster, Direction, NamespaceScope, Peer, Policy, PortMatch, Protocol,
    Selector,
};

/// Priority of the ingress base chain: after the egress one (filter, 0) on the same hook.
pub const INGRESS_PRIORITY: i32 = priority::FILTER + 10;

/// What one node's table is compiled for.
#[derive(Debug, Clone)]
pub struct NodeScope<'a> {
    pub table: &'a str,
    pub node: &'a str,
    /// This node's pod addresses (kubenet: its pod CIDR; nodesubnet: its reserved block):
    /// unknown addresses in them are dropped (fail closed).
    pub pod_ranges: &'a [IpNet],
}

/// 64-bit FNV-1a: stable short names from content (no dependency, same on every node).
pub(crate) fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fam {
    V4,
    V6,
}

impl Fam {
    pub(crate) const BOTH: [Fam; 2] = [Fam::V4, Fam::V6];
    pub(crate) fn sfx(self) -> &'static str {
        match self {
            Fam::V4 => "4",
            Fam::V6 => "6",
        }
    }
    pub(crate) fn is(self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == matches!(self, Fam::V4)
    }
    fn field(self, src: bool) -> AddrField {
        match (self, src) {
            (Fam::V4, true) => AddrField::Ip4Saddr,
            (Fam::V4, false) => AddrField::Ip4Daddr,
            (Fam::V6, true) => AddrField::Ip6Saddr,
            (Fam::V6, false) => AddrField::Ip6Daddr,
        }
    }
    fn key(self) -> KeyType {
        match self {
            Fam::V4 => KeyType::Ipv4,
            Fam::V6 => KeyType::Ipv6,
        }
    }
    fn port_key(self) -> KeyType {
        match self {
            Fam::V4 => KeyType::Ipv4ProtoPort,
            Fam::V6 => KeyType::Ipv6ProtoPort,
        }
    }
}

/// What a pod-derived set holds, so a pod change can recompute its elements alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetMeta {
    Peer {
        ns: NamespaceScope,
        sel: Selector,
        fam: Fam,
    },
    NamedPort {
        port: String,
        proto: Protocol,
        fam: Fam,
    },
}

impl SetMeta {
    /// The elements one pod (with its namespace's labels) contributes to the set.
    pub(crate) fn members(
        &self,
        pod: &crate::model::Pod,
        ns_labels: &crate::k8s::Labels,
    ) -> Vec<Elem> {
        match self {
            SetMeta::Peer { ns, sel, fam } => {
                if !peer_selects_pod(ns, sel, pod, ns_labels) {
                    return Vec::new();
                }
                pod.ips
                    .iter()
                    .filter(|ip| fam.is(ip))
                    .map(|ip| Elem::Net(IpNet::from(*ip)))
                    .collect()
            }
            SetMeta::NamedPort { port, proto, fam } => match pod.named_port(port, *proto) {
                None => Vec::new(),
                Some(n) => pod
                    .ips
                    .iter()
                    .filter(|ip| fam.is(ip))
                    .map(|ip| Elem::AddrProtoPort(*ip, proto.number(), n))
                    .collect(),
            },
        }
    }
}

pub(crate) struct Builder<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) sets: BTreeMap<String, NamedSet>,
    pub(crate) index: Index<'a>,
    pub(crate) meta: BTreeMap<String, SetMeta>,
}

/// Lookups that keep compile time near-linear in pods: namespace labels computed once, pods
/// by namespace and by label, policies by namespace.
pub(crate) struct Index<'a> {
    ns_labels: BTreeMap<&'a str, crate::k8s::Labels>,
    by_ns: BTreeMap<&'a str, Vec<usize>>,
    by_label: BTreeMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(c: &'a Cluster) -> Index<'a> {
        let mut ix = Index {
            ns_labels: BTreeMap::new(),
            by_ns: BTreeMap::new(),
            by_label: BTreeMap::new(),
        };
        for (i, p) in c.pods.iter().enumerate() {
            ix.by_ns.entry(p.namespace.as_str()).or_default().push(i);
            for (k, v) in &p.labels {
                ix.by_label
                    .entry((k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
            ix.ns_labels
                .entry(p.namespace.as_str())
                .or_insert_with(|| c.namespace_labels(&p.namespace));
        }
        ix
    }

    /// Pods that may match a peer (a superset; the caller checks each).
    fn candidates(&self, ns: &NamespaceScope, sel: &Selector, all: usize) -> Vec<usize> {
        let none = Vec::new();
        let by_label = sel.match_labels.iter().next().map(|(k, v)| {
            self.by_label
                .get(&(k.as_str(), v.as_str()))
                .unwrap_or(&none)
        });
        match (ns, by_label) {
            (_, Some(v)) => v.clone(),
            (NamespaceScope::Own(n), None) => {
                self.by_ns.get(n.as_str()).cloned().unwrap_or_default()
            }
            (NamespaceScope::Matching(_), None) => (0..all).collect(),
        }
    }
}

impl Builder<'_> {
    /// The shared set of a pod peer (per family), created with its members on first use.
    fn peer_set(&mut self, ns: &NamespaceScope, sel: &Selector, fam: Fam) -> String {
        let name = format!("peer-{}-{}", hash(&format!("{ns:?}|{sel:?}")), fam.sfx());
        if !self.sets.contains_key(&name) {
            let empty = crate::k8s::Labels::new();
            let elements = self
                .index
                .candidates(ns, sel, self.cluster.pods.len())
                .into_iter()
                .filter_map(|i| self.cluster.pods.get(i))
                .filter(|p| {
                    let nsl = self
                        .index
                        .ns_labels
                        .get(p.namespace.as_str())
                        .unwrap_or(&empty);
                    peer_selects_pod(ns, sel, p, nsl)
                })
                .flat_map(|p| p.ips.iter().filter(|ip| fam.is(ip)))
                .map(|ip| Elem::Net(IpNet::from(*ip)))
                .collect();
            self.sets.insert(
                name.clone(),
                NamedSet {
                    name: name.clone(),
                    key: fam.key(),
                    interval: false,
                    elements,
                },
            );
            self.meta.insert(
                name.clone(),
                SetMeta::Peer {
                    ns: ns.clone(),
                    sel: sel.clone(),
                    fam,
                },
            );
        }
        name
    }

    /// The set of (pod address, protocol, port) of every pod declaring this named port.
    fn named_port_set(&mut self, port: &str, proto: Protocol, fam: Fam) -> String {
        let name = format!("np-{}-{}", hash(&format!("{port}|{proto}")), fam.sfx());
        if !self.sets.contains_key(&name) {
            let elements = self
                .cluster
                .pods
                .iter()
                .filter_map(|p| p.named_port(port, proto).map(|n| (p, n)))
                .flat_map(|(p, n)| {
                    p.ips
                        .iter()
                        .filter(|ip| fam.is(ip))
                        .map(move |ip| Elem::AddrProtoPort(*ip, proto.number(), n))
                })
                .collect();
            self.sets.insert(
                name.clone(),
                NamedSet {
                    name: name.clone(),
                    key: fam.port_key(),
                    interval: false,
                    elements,
                },
            );
            self.meta.insert(
                name.clone(),
                SetMeta::NamedPort {
                    port: port.to_string(),
                    proto,
                    fam,
                },
            );
        }
        name
    }
}

pub fn policy_chain_name(p: &Policy, dir: Direction) -> String {
    let d = match dir {
        Direction::Ingress => "pi",
        Direction::Egress => "pe",
    };
    format!("{d}-{}", hash(&p.key()))
}

/// One policy's rules for one direction: peers × ports × families, each `… accept`.
pub(crate) fn policy_chain(b: &mut Builder, p: &Policy, dir: Direction) -> FilterChain {
    let mut rules = Vec::new();
    // The peer is the source for ingress rules and the destination for egress rules; named
    // ports always resolve on the destination.
    let peer_is_src = dir == Direction::Ingress;
    for (i, rule) in p.rules(dir).unwrap_or_default().iter().enumerate() {
        let comment = format!("{} {}[{i}]", p.key(), dir.as_str());
        let peers: Vec<Option<&Peer>> = match &rule.peers {
            None => vec![None],
            Some(v) => v.iter().map(Some).collect(),
        };
        let ports: Vec<Option<&crate::model::PortSpec>> = match &rule.ports {
            None => vec![None],
            Some(v) => v.iter().map(Some).collect(),
        };
        for peer in &peers {
            for port in &ports {
                let family_free = peer.is_none()
                    && !matches!(port, Some(s) if matches!(s.port, PortMatch::Named(_)));
                if family_free {
                    let mut m = Vec::new();
                    port_matches(b, *port, Fam::V4, &mut m);
                    rules.push(FilterRule {
                        matches: m,
                        verdict: Verdict::Accept,
                        comment: Some(comment.clone()),
                    });
                    continue;
                }
                for fam in Fam::BOTH {
                    let mut m = Vec::new();
                    match peer {
                        None => {}
                        Some(Peer::Pods { namespaces, pods }) => {
                            let set = b.peer_set(namespaces, pods, fam);
                            m.push(Match::Addr {
                                field: fam.field(peer_is_src),
                                op: Op::Eq,
                                value: AddrValue::SetRef(set),
                            });
                        }
                        Some(Peer::IpBlock { cidr, except }) => {
                            if !fam.is(&cidr.addr()) {
                                continue;
                            }
                            let field = fam.field(peer_is_src);
                            m.push(Match::Addr {
                                field,
                                op: Op::Eq,
                                value: AddrValue::Prefix(*cidr),
                            });
                            if !except.is_empty() {
                                m.push(Match::Addr {
                                    field,
                                    op: Op::Ne,
                                    value: AddrValue::AnonSet(except.clone()),
                                });
                            }
                        }
                    }
                    port_matches(b, *port, fam, &mut m);
                    rules.push(FilterRule {
                        matches: m,
                        verdict: Verdict::Accept,
                        comment: Some(comment.clone()),
                    });
                }
            }
        }
    }
    FilterChain {
        name: policy_chain_name(p, dir),
        base: None,
        rules,
    }
}

fn port_matches(
    b: &mut Builder,
    port: Option<&crate::model::PortSpec>,
    fam: Fam,
    m: &mut Vec<Match>,
) {
    let Some(spec) = port else { return };
    match &spec.port {
        PortMatch::All => m.push(Match::L4Proto(spec.protocol.number())),
        PortMatch::Range(a, z) => {
            m.push(Match::L4Proto(spec.protocol.number()));
            m.push(Match::Dport(*a, *z));
        }
        PortMatch::Named(n) => {
            let set = b.named_port_set(n, spec.protocol, fam);
            m.push(Match::AddrProtoPort {
                field: fam.field(false),
                set,
            });
        }
    }
}

pub(crate) fn rule(matches: Vec<Match>, verdict: Verdict, comment: &str) -> FilterRule {
    FilterRule {
        matches,
        verdict,
        comment: Some(comment.to_string()),
    }
}

fn base_chain(name: &str, prio: i32, dir: Direction) -> FilterChain {
    let src = dir == Direction::Egress;
    let map = match dir {
        Direction::Egress => "eg",
        Direction::Ingress => "in",
    };
    let mut rules = vec![rule(
        vec![Match::CtState(vec![CtState::Established, CtState::Related])],
        Verdict::Accept,
        "replies of admitted connections",
    )];
    for fam in Fam::BOTH {
        rules.push(rule(
            vec![],
            Verdict::Vmap {
                field: fam.field(src),
                map: format!("{map}-{}", fam.sfx()),
            },
            "isolated pods of this node",
        ));
    }
    for fam in Fam::BOTH {
        rules.push(rule(
            vec![
                Match::Addr {
                    field: fam.field(src),
                    op: Op::Eq,
                    value: AddrValue::SetRef(format!("range-{}", fam.sfx())),
                },
                Match::Addr {
                    field: fam.field(src),
                    op: Op::Ne,
                    value: AddrValue::SetRef(format!("local-{}", fam.sfx())),
                },
            ],
            Verdict::Drop,
            "pod address not known yet: fail closed",
        ));
    }
    FilterChain {
        name: name.to_string(),
        base: Some(BaseChain {
            chain_type: ChainType::Filter,
            hook: Hook::Forward,
            priority: prio,
            policy: ChainPolicy::Accept,
        }),
        rules,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("pod {pod}: no address")]
    PodWithoutAddress { pod: String },
}

/// A compiled node table by parts: what [`compile`] renders and what
/// [`crate::incremental::Compiled`] keeps up to date pod by pod.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub(crate) sets: BTreeMap<String, NamedSet>,
    pub(crate) meta: BTreeMap<String, SetMeta>,
    pub(crate) maps: BTreeMap<String, VerdictMap>,
    /// Every chain but the two base chains.
    pub(crate) chains: BTreeMap<String, FilterChain>,
}

impl Parts {
    /// The table: base chains first, then every other chain by name (their order does not
    /// matter to nft; a fixed one makes two compilations comparable).
    pub(crate) fn table(&self, name: &str) -> FilterTable {
        let mut chains = vec![
            base_chain("egress", priority::FILTER, Direction::Egress),
            base_chain("ingress", INGRESS_PRIORITY, Direction::Ingress),
        ];
        chains.extend(self.chains.values().cloned());
        FilterTable {
            family: Family::Inet,
            name: name.to_string(),
            sets: self.sets.values().cloned().collect(),
            maps: self.maps.values().cloned().collect(),
            chains,
        }
    }
}

/// Name of the verdict map of a direction and family (`eg-4`, `in-6`).
pub(crate) fn map_name(dir: Direction, fam: Fam) -> String {
    let d = match dir {
        Direction::Egress => "eg",
        Direction::Ingress => "in",
    };
    format!("{d}-{}", fam.sfx())
}

pub(crate) fn fam_of(ip: &IpAddr) -> Fam {
    if ip.is_ipv4() {
        Fam::V4
    } else {
        Fam::V6
    }
}

/// The policies of a pod's namespace that isolate it in `dir`, sorted by key, and the name
/// of the group chain they share; `None` when none isolates it.
pub(crate) fn group_of<'p>(
    pod: &crate::model::Pod,
    dir: Direction,
    ns_policies: &[&'p Policy],
) -> Option<(String, Vec<&'p Policy>)> {
    let mut keys: Vec<&Policy> = ns_policies
        .iter()
        .copied()
        .filter(|p| p.rules(dir).is_some() && p.pod_selector.matches(&pod.labels))
        .collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_by_key(|p| p.key());
    let joined: Vec<String> = keys.iter().map(|p| p.key()).collect();
    let d = match dir {
        Direction::Egress => "eg",
        Direction::Ingress => "in",
    };
    Some((format!("g{d}-{}", hash(&joined.join(","))), keys))
}

/// A group chain: a jump to each isolating policy's chain, then drop.
pub(crate) fn group_chain(name: &str, keys: &[&Policy], dir: Direction) -> FilterChain {
    let mut rules: Vec<FilterRule> = keys
        .iter()
        .map(|p| rule(vec![], Verdict::Jump(policy_chain_name(p, dir)), &p.key()))
        .collect();
    rules.push(rule(
        vec![],
        Verdict::Drop,
        &format!("no {} rule admits", dir.as_str()),
    ));
    FilterChain {
        name: name.to_string(),
        base: None,
        rules,
    }
}

pub(crate) fn empty_maps() -> BTreeMap<String, VerdictMap> {
    let mut maps = BTreeMap::new();
    for dir in [Direction::Egress, Direction::Ingress] {
        for fam in Fam::BOTH {
            let name = map_name(dir, fam);
            maps.insert(
                name.clone(),
                VerdictMap {
                    name,
                    key: fam.key(),
                    elements: BTreeMap::new(),
                },
            );
        }
    }
    maps
}

/// `local-4|6` (this node's known pods) and `range-4|6` (this node's pod ranges).
fn node_sets(
    local: &[&crate::model::Pod],
    pod_ranges: &[IpNet],
    sets: &mut BTreeMap<String, NamedSet>,
) {
    for fam in Fam::BOTH {
        let local_set: BTreeSet<Elem> = local
            .iter()
            .flat_map(|p| p.ips.iter())
            .filter(|ip| fam.is(ip))
            .map(|ip| Elem::Net(IpNet::from(*ip)))
            .collect();
        sets.insert(
            local_set_name(fam),
            NamedSet {
                name: local_set_name(fam),
                key: fam.key(),
                interval: false,
                elements: local_set,
            },
        );
        // nft refuses overlapping intervals: merge the ranges first.
        let fam_ranges: Vec<IpNet> = pod_ranges
            .iter()
            .filter(|n| fam.is(&n.addr()))
            .map(IpNet::trunc)
            .collect();
        let ranges: BTreeSet<Elem> = IpNet::aggregate(&fam_ranges)
            .into_iter()
            .map(Elem::Net)
            .collect();
        sets.insert(
            format!("range-{}", fam.sfx()),
            NamedSet {
                name: format!("range-{}", fam.sfx()),
                key: fam.key(),
                interval: true,
                elements: ranges,
            },
        );
    }
}

pub(crate) fn local_set_name(fam: Fam) -> String {
    format!("local-{}", fam.sfx())
}

pub(crate) fn policies_by_ns(policies: &[Policy]) -> BTreeMap<&str, Vec<&Policy>> {
    let mut by_ns: BTreeMap<&str, Vec<&Policy>> = BTreeMap::new();
    for p in policies {
        by_ns.entry(p.namespace.as_str()).or_default().push(p);
    }
    by_ns
}

/// The node's table by parts (see [`compile`]).
pub(crate) fn compile_parts(
    cluster: &Cluster,
    policies: &[Policy],
    scope: &NodeScope,
) -> Result<Parts, CompileError> {
    let by_ns = policies_by_ns(policies);
    let local: Vec<&crate::model::Pod> = cluster
        .pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(scope.node))
        .collect();
    let mut maps = empty_maps();
    // Only policies isolating a pod of this node are rendered.
    let mut used: BTreeSet<(String, Direction)> = BTreeSet::new();
    let mut chains: BTreeMap<String, FilterChain> = BTreeMap::new();
    for pod in &local {
        if pod.ips.is_empty() {
            return Err(CompileError::PodWithoutAddress { pod: pod.key() });
        }
        for dir in [Direction::Egress, Direction::Ingress] {
            let ns_pols = by_ns
                .get(pod.namespace.as_str())
                .map_or(&[][..], Vec::as_slice);
            let Some((gname, keys)) = group_of(pod, dir, ns_pols) else {
                continue;
            };
            chains
                .entry(gname.clone())
                .or_insert_with(|| group_chain(&gname, &keys, dir));
            for p in &keys {
                used.insert((p.key(), dir));
            }
            for ip in &pod.ips {
                if let Some(m) = maps.get_mut(&map_name(dir, fam_of(ip))) {
                    m.elements.insert(*ip, gname.clone());
                }
            }
        }
    }
    let mut b = Builder {
        cluster,
        sets: BTreeMap::new(),
        index: Index::new(cluster),
        meta: BTreeMap::new(),
    };
    for p in policies {
        for dir in [Direction::Ingress, Direction::Egress] {
            if used.contains(&(p.key(), dir)) {
                let c = policy_chain(&mut b, p, dir);
                chains.insert(c.name.clone(), c);
            }
        }
    }
    let (mut sets, meta) = (b.sets, b.meta);
    node_sets(&local, scope.pod_ranges, &mut sets);
    Ok(Parts {
        sets,
        meta,
        maps,
        chains,
    })
}

/// The node's whole table: deterministic, so comparing two compilations tells what changed.
pub fn compile(
    cluster: &Cluster,
    policies: &[Policy],
    scope: &NodeScope,
) -> Result<FilterTable, CompileError> {
    Ok(compile_parts(cluster, policies, scope)?.table(scope.table))
}

/// Rules in the table: what the benchmark reports against the number of pods.
pub fn rule_count(t: &FilterTable) -> usize {
    t.chains.iter().map(|c| c.rules.len()).sum()
}
