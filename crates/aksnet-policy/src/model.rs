//! The validated model the evaluator and the compiler work on: every default applied, every
//! field checked, nil and empty lists folded into one meaning (docs/policy.md "Semantics").

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::k8s::Labels;

/// The label every namespace carries (immutable, set by the API server since Kubernetes 1.21,
/// kubernetes/enhancements KEP-2161): how policies select a namespace by name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// IANA protocol number (as nft's `meta l4proto` compares it).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `matchExpressions` requirement (apimachinery `labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    /// `NotIn` and `DoesNotExist` hold for an object without the key
    /// (apimachinery `pkg/labels/selector.go`, `Requirement.Matches`).
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A label selector; `matchLabels` and `matchExpressions` are ANDed; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

impl Selector {
    pub fn everything() -> Selector {
        Selector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_everything() {
            return f.write_str("{}");
        }
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            parts.push(match r {
                Requirement::In(k, v) => format!("{k} in ({})", join(v)),
                Requirement::NotIn(k, v) => format!("{k} notin ({})", join(v)),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            });
        }
        f.write_str(&parts.join(","))
    }
}

fn join(v: &BTreeSet<String>) -> String {
    v.iter().cloned().collect::<Vec<_>>().join(",")
}

/// Which namespaces a pod peer looks in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceScope {
    /// `podSelector` alone: the policy's own namespace.
    Own(String),
    /// `namespaceSelector` (alone or ANDed with a `podSelector` in the same element).
    Matching(Selector),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Pods {
        namespaces: NamespaceScope,
        pods: Selector,
    },
    IpBlock {
        cidr: IpNet,
        except: Vec<IpNet>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortMatch {
    /// No `port`: every port of the protocol.
    All,
    /// `port` (and `endPort`): an inclusive range, `port == endPort` for one port.
    Range(u16, u16),
    /// A named port, resolved on the destination pod's containerPorts.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    pub protocol: Protocol,
    pub port: PortMatch,
}

/// One ingress or egress rule. `None` means "every peer" / "every port of every protocol"
/// (the field was absent or an empty list: the API does not tell them apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub peers: Option<Vec<Peer>>,
    pub ports: Option<Vec<PortSpec>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// A validated NetworkPolicy. `ingress`/`egress` is `Some` exactly when the (defaulted)
/// `policyTypes` holds that direction; the list may then be empty (isolate, admit nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn rules(&self, dir: Direction) -> Option<&[Rule]> {
        match dir {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
}

impl Namespace {
    /// The labels selectors see: the namespace's own plus `kubernetes.io/metadata.name`.
    pub fn effective_labels(&self) -> Labels {
        let mut l = self.labels.clone();
        l.insert(NAMESPACE_NAME_LABEL.to_string(), self.name.clone());
        l
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u16,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
}

fn default_protocol() -> Protocol {
    Protocol::Tcp
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<NamedPort>,
    pub node: Option<String>,
}

impl Pod {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pod's address of the same family as `like`.
    pub fn ip_like(&self, like: IpAddr) -> Option<IpAddr> {
        self.ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == like.is_ipv4())
    }

    /// The port number a named port resolves to on this pod for `protocol`.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
            .map(|p| p.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub name: String,
    pub ip: IpAddr,
}

/// Namespaces and pods: what selectors are evaluated against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
}

impl Cluster {
    /// A namespace's labels as selectors see them; a namespace with pods but no object still
    /// carries its name label (the API server would have created it first).
    pub fn namespace_labels(&self, name: &str) -> Labels {
        match self.namespaces.iter().find(|n| n.name == name) {
            Some(ns) => ns.effective_labels(),
            None => Namespace {
                name: name.to_string(),
                labels: Labels::new(),
            }
            .effective_labels(),
        }
    }

    pub fn pod(&self, key: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.key() == key)
    }
}

/// Whether a pod (given its namespace's labels) is one of a peer's pods.
pub fn peer_selects_pod(
    peer_ns: &NamespaceScope,
    pod_sel: &Selector,
    pod: &Pod,
    ns_labels: &Labels,
) -> bool {
    let ns_ok = match peer_ns {
        NamespaceScope::Own(ns) => &pod.namespace == ns,
        NamespaceScope::Matching(sel) => sel.matches(ns_labels),
    };
    ns_ok && pod_sel.matches(&pod.labels)
}

/// Whether an address is in an ipBlock: in `cidr` and in none of `except`.
pub fn ip_block_contains(cidr: &IpNet, except: &[IpNet], ip: IpAddr) -> bool {
    cidr.contains(&ip) && !except.iter().any(|e| e.contains(&ip))
}
