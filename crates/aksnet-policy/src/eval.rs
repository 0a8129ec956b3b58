//! The reference evaluator: the NetworkPolicy rules written plainly from the API documentation
//! (kubernetes/api `networking/v1/types.go`, the concept page "Network Policies"), one
//! connection at a time, with the reason. It is the oracle the compiler is tested against, so
//! it favours obviousness over speed.

use std::net::IpAddr;

use serde::Serialize;

use crate::model::{
    ip_block_contains, peer_selects_pod, Cluster, Direction, Peer, Pod, Policy, PortMatch,
    PortSpec, Protocol, Rule,
};

/// One end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Pod(&'a Pod),
    /// An address outside the cluster (`external:<name>`).
    External {
        name: &'a str,
        ip: IpAddr,
    },
    /// A node itself (kubelet probes, host-network processes).
    Node {
        name: &'a str,
        ip: IpAddr,
    },
}

impl Endpoint<'_> {
    pub fn label(&self) -> String {
        match self {
            Endpoint::Pod(p) => p.key(),
            Endpoint::External { name, .. } => format!("external:{name}"),
            Endpoint::Node { name, .. } => format!("node:{name}"),
        }
    }

    fn pod(&self) -> Option<&Pod> {
        match self {
            Endpoint::Pod(p) => Some(p),
            _ => None,
        }
    }
}

/// Which rule admitted a connection: `x/allow-a ingress[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub policy: String,
    pub direction: Direction,
    pub rule: usize,
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}[{}]",
            self.policy,
            self.direction.as_str(),
            self.rule
        )
    }
}

/// One direction's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Side {
    /// This end is not a pod: nothing to check on its side.
    NotAPod,
    /// No policy isolates this pod in this direction.
    NotIsolated,
    Admitted {
        isolating: Vec<String>,
        by: RuleRef,
    },
    Denied {
        isolating: Vec<String>,
    },
}

impl Side {
    fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// Why the connection is not filtered at all (pod to itself, node to its own pod).
    pub exempt: Option<&'static str>,
    pub egress: Side,
    pub ingress: Side,
}

impl Verdict {
    /// A one-line reason, e.g. `ingress: denied (x/a isolated by x/deny-all; no rule admits)`.
    pub fn reason(&self, src: &str, dst: &str) -> String {
        if let Some(why) = self.exempt {
            return why.to_string();
        }
        format!(
            "egress of {src}: {}; ingress of {dst}: {}",
            describe(&self.egress),
            describe(&self.ingress)
        )
    }
}

fn describe(side: &Side) -> String {
    match side {
        Side::NotAPod => "not a pod, not filtered".into(),
        Side::NotIsolated => "not isolated (no policy selects it)".into(),
        Side::Admitted { isolating, by } => {
            format!("isolated by {}, admitted by {by}", isolating.join(", "))
        }
        Side::Denied { isolating } => {
            format!("isolated by {}, no rule admits", isolating.join(", "))
        }
    }
}

fn exempt(why: &'static str) -> Verdict {
    Verdict {
        allowed: true,
        exempt: Some(why),
        egress: Side::NotAPod,
        ingress: Side::NotAPod,
    }
}

/// The policies that select `pod` for `dir` (isolate it in that direction).
pub fn isolating<'p>(policies: &'p [Policy], pod: &Pod, dir: Direction) -> Vec<&'p Policy> {
    policies
        .iter()
        .filter(|p| {
            p.namespace == pod.namespace
                && p.rules(dir).is_some()
                && p.pod_selector.matches(&pod.labels)
        })
        .collect()
}

/// A new connection from `src` (address `src_ip`) to `dst` (address `dst_ip`) on
/// `port`/`protocol` after any Service DNAT (policy sees pod addresses), under `policies`.
pub struct Connection<'a> {
    cluster: &'a Cluster,
    policies: &'a [Policy],
    src: &'a Endpoint<'a>,
    src_ip: IpAddr,
    dst: &'a Endpoint<'a>,
    dst_ip: IpAddr,
    port: u16,
    protocol: Protocol,
}

impl<'a> Connection<'a> {
    pub fn new(
        cluster: &'a Cluster,
        policies: &'a [Policy],
        (src, src_ip): (&'a Endpoint<'a>, IpAddr),
        (dst, dst_ip): (&'a Endpoint<'a>, IpAddr),
        port: u16,
        protocol: Protocol,
    ) -> Self {
        Connection {
            cluster,
            policies,
            src,
            src_ip,
            dst,
            dst_ip,
            port,
            protocol,
        }
    }

    /// The verdict: whether the connection is allowed, and why.
    pub fn verdict(&self) -> Verdict {
        let (src, dst) = (self.src, self.dst);
        // A pod's traffic to itself is never filtered (kubernetes/kubernetes#95879: e2e skips it).
        if let (Some(s), Some(d)) = (src.pod(), dst.pod()) {
            if s.key() == d.key() {
                return exempt("a pod's traffic to itself is not filtered");
            }
        }
        // Traffic from a node to the pods it runs is always allowed (concept page "Network
        // Policies": "traffic to and from the node where a Pod is running is always allowed").
        if let (Endpoint::Node { name, .. }, Some(d)) = (src, dst.pod()) {
            if d.node.as_deref() == Some(*name) {
                return exempt("a node's traffic to its own pods is always allowed");
            }
        }
        if let (Some(s), Endpoint::Node { name, .. }) = (src.pod(), dst) {
            if s.node.as_deref() == Some(*name) {
                return exempt("a pod's traffic to its own node is always allowed");
            }
        }
        let egress = match src.pod() {
            Some(p) => self.side(Direction::Egress, p),
            None => Side::NotAPod,
        };
        let ingress = match dst.pod() {
            Some(p) => self.side(Direction::Ingress, p),
            None => Side::NotAPod,
        };
        Verdict {
            allowed: egress.allows() && ingress.allows(),
            exempt: None,
            egress,
            ingress,
        }
    }

    /// Rule-by-rule detail for `aksnet policy explain`: for each side, each isolating
    /// policy's rules with whether their peers and their ports matched.
    pub fn explain(&self) -> Vec<String> {
        let policies = self.policies;
        let (src, src_ip, dst, dst_ip) = (self.src, self.src_ip, self.dst, self.dst_ip);
        let (port, protocol) = (self.port, self.protocol);
        let v = self.verdict();
        let (from, to) = (src.label(), dst.label());
        let mut out = vec![format!(
            "{from} ({src_ip}) -> {to} ({dst_ip}) {port}/{protocol}: {}",
            if v.allowed { "ALLOWED" } else { "DENIED" }
        )];
        if let Some(why) = v.exempt {
            out.push(format!("  {why}"));
            return out;
        }
        for (dir, who, side) in [
            (Direction::Egress, src, &v.egress),
            (Direction::Ingress, dst, &v.ingress),
        ] {
            out.push(format!(
                "  {} of {}: {}",
                dir.as_str(),
                who.label(),
                describe(side)
            ));
            let Some(pod) = who.pod() else { continue };
            for pol in isolating(policies, pod, dir) {
                let rules = pol.rules(dir).unwrap_or_default();
                if rules.is_empty() {
                    out.push(format!(
                        "    {} has no {} rules (denies all)",
                        pol.key(),
                        dir.as_str()
                    ));
                }
                for (i, rule) in rules.iter().enumerate() {
                    let (peer, peer_ip) = match dir {
                        Direction::Ingress => (src, src_ip),
                        Direction::Egress => (dst, dst_ip),
                    };
                    let peer_ok = rule
                        .peers
                        .as_ref()
                        .is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, peer, peer_ip)));
                    let port_ok = rule
                        .ports
                        .as_ref()
                        .is_none_or(|ps| ps.iter().any(|p| self.port_matches(p)));
                    out.push(format!(
                        "    {} {}[{i}]: peer {}, port {}",
                        pol.key(),
                        dir.as_str(),
                        if peer_ok { "matches" } else { "does not match" },
                        if port_ok { "matches" } else { "does not match" }
                    ));
                }
            }
        }
        out
    }

    fn side(&self, dir: Direction, subject: &Pod) -> Side {
        let isolating = isolating(self.policies, subject, dir);
        if isolating.is_empty() {
            return Side::NotIsolated;
        }
        let names: Vec<String> = isolating.iter().map(|p| p.key()).collect();
        for pol in &isolating {
            for (i, rule) in pol.rules(dir).unwrap_or_default().iter().enumerate() {
                if self.rule_admits(dir, rule) {
                    return Side::Admitted {
                        isolating: names,
                        by: RuleRef {
                            policy: pol.key(),
                            direction: dir,
                            rule: i,
                        },
                    };
                }
            }
        }
        Side::Denied { isolating: names }
    }

    /// A rule admits when one of its peers is the other end AND one of its ports matches.
    fn rule_admits(&self, dir: Direction, rule: &Rule) -> bool {
        let (peer, peer_ip) = match dir {
            Direction::Ingress => (self.src, self.src_ip),
            Direction::Egress => (self.dst, self.dst_ip),
        };
        let peer_ok = match &rule.peers {
            None => true,
            Some(peers) => peers.iter().any(|p| self.peer_matches(p, peer, peer_ip)),
        };
        let port_ok = match &rule.ports {
            None => true,
            Some(ports) => ports.iter().any(|p| self.port_matches(p)),
        };
        peer_ok && port_ok
    }

    fn peer_matches(&self, peer: &Peer, who: &Endpoint, ip: IpAddr) -> bool {
        match peer {
            Peer::Pods { namespaces, pods } => match who.pod() {
                Some(pod) => {
                    let ns_labels = self.cluster.namespace_labels(&pod.namespace);
                    peer_selects_pod(namespaces, pods, pod, &ns_labels)
                }
                None => false,
            },
            // ipBlock matches pod addresses too (e2e "should allow egress access to server in
            // CIDR block" admits a pod by its /32).
            Peer::IpBlock { cidr, except } => ip_block_contains(cidr, except, ip),
        }
    }

    fn port_matches(&self, spec: &PortSpec) -> bool {
        if spec.protocol != self.protocol {
            return false;
        }
        match &spec.port {
            PortMatch::All => true,
            PortMatch::Range(a, b) => (*a..=*b).contains(&self.port),
            // Named ports resolve on the destination pod, for egress rules too; an external
            // destination has no named ports.
            PortMatch::Named(name) => {
                self.dst
                    .pod()
                    .and_then(|d| d.named_port(name, self.protocol))
                    == Some(self.port)
            }
        }
    }
}
