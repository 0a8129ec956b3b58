//! Raw API objects → the validated model: defaulting (kubernetes/kubernetes
//! `pkg/apis/networking/v1/defaults.go`) and validation (`pkg/apis/networking/validation/
//! validation.go`, apimachinery `validation.go` for labels and selectors). Every error names
//! the field path and the value; a policy with any invalid field is refused whole, as the API
//! server refuses it.

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::error::FieldError;
use crate::k8s;
use crate::model::{
    NamespaceScope, Peer, Policy, PortMatch, PortSpec, Protocol, Requirement, Rule, Selector,
};

struct Ctx<'a> {
    object: &'a str,
    errors: Vec<FieldError>,
}

impl Ctx<'_> {
    fn err(&mut self, field: &str, value: impl Into<String>, reason: impl Into<String>) {
        self.errors
            .push(FieldError::new(self.object, field, value, reason));
    }
}

/// Validates and defaults one NetworkPolicy.
pub fn policy(raw: &k8s::NetworkPolicy) -> Result<Policy, Vec<FieldError>> {
    let name = raw.metadata.name.clone().unwrap_or_default();
    let namespace = raw.metadata.namespace.clone().unwrap_or_default();
    let object = format!("NetworkPolicy {namespace}/{name}");
    let mut cx = Ctx {
        object: &object,
        errors: Vec::new(),
    };
    if let Some(v) = &raw.api_version {
        if v != "networking.k8s.io/v1" {
            cx.err("apiVersion", v, "must be networking.k8s.io/v1");
        }
    }
    if let Some(k) = &raw.kind {
        if k != "NetworkPolicy" {
            cx.err("kind", k, "must be NetworkPolicy");
        }
    }
    check_dns_label(&mut cx, "metadata.namespace", &namespace, true);
    check_dns_subdomain(&mut cx, "metadata.name", &name);
    let spec = raw.spec.clone().unwrap_or_default();
    let pod_selector = selector(&mut cx, "spec.podSelector", spec.pod_selector.as_ref());
    let (has_in, has_eg) = policy_types(&mut cx, &spec);
    let ingress = spec.ingress.unwrap_or_default();
    let egress = spec.egress.unwrap_or_default();
    let ingress: Vec<Rule> = ingress
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("spec.ingress[{i}]");
            rule(
                &mut cx,
                &at,
                "from",
                r.from.as_deref(),
                r.ports.as_deref(),
                &namespace,
            )
        })
        .collect();
    let egress: Vec<Rule> = egress
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("spec.egress[{i}]");
            rule(
                &mut cx,
                &at,
                "to",
                r.to.as_deref(),
                r.ports.as_deref(),
                &namespace,
            )
        })
        .collect();
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Policy {
        namespace,
        name,
        pod_selector,
        ingress: has_in.then_some(ingress),
        egress: has_eg.then_some(egress),
    })
}

/// `policyTypes` as given, or the default: Ingress, plus Egress when there is at least one
/// egress rule (`SetDefaults_NetworkPolicy`).
fn policy_types(cx: &mut Ctx, spec: &k8s::NetworkPolicySpec) -> (bool, bool) {
    let given = spec.policy_types.clone().unwrap_or_default();
    if given.is_empty() {
        let egress_rules = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
        return (true, egress_rules);
    }
    let mut seen = BTreeSet::new();
    for (i, t) in given.iter().enumerate() {
        let field = format!("spec.policyTypes[{i}]");
        if t != "Ingress" && t != "Egress" {
            cx.err(&field, t, "must be Ingress or Egress");
        } else if !seen.insert(t.as_str()) {
            cx.err(&field, t, "listed twice");
        }
    }
    (seen.contains("Ingress"), seen.contains("Egress"))
}

fn rule(
    cx: &mut Ctx,
    at: &str,
    peers_field: &str,
    peers: Option<&[k8s::NetworkPolicyPeer]>,
    ports: Option<&[k8s::NetworkPolicyPort]>,
    namespace: &str,
) -> Rule {
    let peers = peers.filter(|p| !p.is_empty()).map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(j, p)| peer(cx, &format!("{at}.{peers_field}[{j}]"), p, namespace))
            .collect()
    });
    let ports = ports.filter(|p| !p.is_empty()).map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(j, p)| port(cx, &format!("{at}.ports[{j}]"), p))
            .collect()
    });
    Rule { peers, ports }
}

fn peer(cx: &mut Ctx, at: &str, raw: &k8s::NetworkPolicyPeer, namespace: &str) -> Option<Peer> {
    match (&raw.pod_selector, &raw.namespace_selector, &raw.ip_block) {
        (None, None, None) => {
            cx.err(
                at,
                "{}",
                "must specify a peer (podSelector, namespaceSelector or ipBlock)",
            );
            None
        }
        (None, None, Some(b)) => ip_block(cx, &format!("{at}.ipBlock"), b),
        (_, _, Some(_)) => {
            cx.err(
                &format!("{at}.ipBlock"),
                "ipBlock",
                "may not be combined with podSelector or namespaceSelector in one peer",
            );
            None
        }
        (pods, nss, None) => {
            let pods = selector(cx, &format!("{at}.podSelector"), pods.as_ref());
            let namespaces = match nss {
                None => NamespaceScope::Own(namespace.to_string()),
                Some(s) => NamespaceScope::Matching(selector(
                    cx,
                    &format!("{at}.namespaceSelector"),
                    Some(s),
                )),
            };
            Some(Peer::Pods { namespaces, pods })
        }
    }
}

fn ip_block(cx: &mut Ctx, at: &str, b: &k8s::IpBlock) -> Option<Peer> {
    let cidr = match parse_cidr(&b.cidr) {
        Some(c) => c,
        None => {
            cx.err(&format!("{at}.cidr"), &b.cidr, "not a CIDR");
            return None;
        }
    };
    let mut except = Vec::new();
    for (i, e) in b.except.iter().flatten().enumerate() {
        let field = format!("{at}.except[{i}]");
        match parse_cidr(e) {
            None => cx.err(&field, e, "not a CIDR"),
            Some(n) if !(cidr.contains(&n) && n.prefix_len() > cidr.prefix_len()) => {
                cx.err(&field, e, format!("must be a strict subset of cidr {cidr}"))
            }
            Some(n) => except.push(n),
        }
    }
    Some(Peer::IpBlock { cidr, except })
}

/// A CIDR as `net.ParseCIDR` reads it (host bits allowed and cleared).
fn parse_cidr(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

fn port(cx: &mut Ctx, at: &str, raw: &k8s::NetworkPolicyPort) -> Option<PortSpec> {
    // A missing protocol is TCP (`SetDefaults_NetworkPolicyPort`).
    let proto_text = raw.protocol.as_deref().unwrap_or("TCP");
    let protocol = Protocol::parse(proto_text);
    if protocol.is_none() {
        cx.err(
            &format!("{at}.protocol"),
            proto_text,
            "must be TCP, UDP or SCTP",
        );
    }
    let port = match (&raw.port, raw.end_port) {
        (None, None) => Some(PortMatch::All),
        (None, Some(e)) => {
            cx.err(
                &format!("{at}.endPort"),
                e.to_string(),
                "may not be specified when port is not",
            );
            None
        }
        (Some(k8s::IntOrString::Int(p)), end) => numeric_port(cx, at, *p, end),
        (Some(k8s::IntOrString::String(s)), end) => {
            if let Some(e) = end {
                cx.err(
                    &format!("{at}.endPort"),
                    e.to_string(),
                    "may not be specified when port is a named port",
                );
                None
            } else if is_iana_svc_name(s) {
                Some(PortMatch::Named(s.clone()))
            } else {
                cx.err(&format!("{at}.port"), s, "must be a port number 1-65535 or an IANA service name (1-15 lowercase letters, digits and '-', at least one letter)");
                None
            }
        }
    };
    Some(PortSpec {
        protocol: protocol?,
        port: port?,
    })
}

fn numeric_port(cx: &mut Ctx, at: &str, p: i64, end: Option<i64>) -> Option<PortMatch> {
    let Ok(start) = u16::try_from(p)
        .map_err(|_| ())
        .and_then(|v| if v == 0 { Err(()) } else { Ok(v) })
    else {
        cx.err(
            &format!("{at}.port"),
            p.to_string(),
            "must be between 1 and 65535",
        );
        return None;
    };
    let Some(e) = end else {
        return Some(PortMatch::Range(start, start));
    };
    match u16::try_from(e) {
        Ok(e) if e >= start => Some(PortMatch::Range(start, e)),
        _ => {
            cx.err(
                &format!("{at}.endPort"),
                e.to_string(),
                format!("must be between port {start} and 65535"),
            );
            None
        }
    }
}

/// apimachinery `IsValidPortName`.
pub fn is_iana_svc_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 15
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(u8::is_ascii_lowercase)
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !s.contains("--")
}

/// A `LabelSelector`; `None` (a null selector) selects everything, like `{}`.
fn selector(cx: &mut Ctx, at: &str, raw: Option<&k8s::LabelSelector>) -> Selector {
    let Some(raw) = raw else {
        return Selector::everything();
    };
    let mut sel = Selector::everything();
    for (k, v) in raw.match_labels.iter().flatten() {
        let field = format!("{at}.matchLabels");
        check_label_key(cx, &field, k);
        check_label_value(cx, &field, v);
        sel.match_labels.insert(k.clone(), v.clone());
    }
    for (i, e) in raw.match_expressions.iter().flatten().enumerate() {
        let field = format!("{at}.matchExpressions[{i}]");
        check_label_key(cx, &format!("{field}.key"), &e.key);
        let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
        for v in &values {
            check_label_value(cx, &format!("{field}.values"), v);
        }
        let req = match (e.operator.as_str(), values.is_empty()) {
            ("In", false) => Requirement::In(e.key.clone(), values),
            ("NotIn", false) => Requirement::NotIn(e.key.clone(), values),
            ("Exists", true) => Requirement::Exists(e.key.clone()),
            ("DoesNotExist", true) => Requirement::DoesNotExist(e.key.clone()),
            ("In" | "NotIn", true) => {
                cx.err(
                    &format!("{field}.values"),
                    "[]",
                    "must be non-empty for In and NotIn",
                );
                continue;
            }
            ("Exists" | "DoesNotExist", false) => {
                cx.err(
                    &format!("{field}.values"),
                    format!("{values:?}"),
                    "must be empty for Exists and DoesNotExist",
                );
                continue;
            }
            (op, _) => {
                cx.err(
                    &format!("{field}.operator"),
                    op,
                    "must be In, NotIn, Exists or DoesNotExist",
                );
                continue;
            }
        };
        sel.match_expressions.push(req);
    }
    sel
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// apimachinery `IsQualifiedName`: `[prefix/]name`.
pub fn check_label_key(cx_or: &mut impl KeyCheck, field: &str, k: &str) {
    let ok = match k.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(k),
    };
    if !ok {
        cx_or.report(field, k, "not a valid label key (optional DNS prefix '/', then 1-63 of letters, digits, '-', '_', '.', alphanumeric at both ends)");
    }
}

fn check_label_value(cx: &mut Ctx, field: &str, v: &str) {
    if !(v.is_empty() || is_label_name(v)) {
        cx.err(field, v, "not a valid label value (at most 63 of letters, digits, '-', '_', '.', alphanumeric at both ends)");
    }
}

fn check_dns_label(cx: &mut Ctx, field: &str, v: &str, _required: bool) {
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        cx.err(
            field,
            v,
            "must be a DNS label (1-63 lowercase letters, digits and '-')",
        );
    }
}

fn check_dns_subdomain(cx: &mut Ctx, field: &str, v: &str) {
    if !is_dns_subdomain(v) {
        cx.err(
            field,
            v,
            "must be a DNS subdomain (lowercase letters, digits, '-' and '.')",
        );
    }
}

/// Where label-key errors go (the policy validator and the cluster validator share the check).
pub trait KeyCheck {
    fn report(&mut self, field: &str, value: &str, reason: &str);
}

impl KeyCheck for Ctx<'_> {
    fn report(&mut self, field: &str, value: &str, reason: &str) {
        self.err(field, value, reason);
    }
}

/// Collects errors for an arbitrary object (namespaces, pods).
pub struct Collector {
    pub object: String,
    pub errors: Vec<FieldError>,
}

impl KeyCheck for Collector {
    fn report(&mut self, field: &str, value: &str, reason: &str) {
        self.errors
            .push(FieldError::new(&self.object, field, value, reason));
    }
}

/// Checks a labels map (keys and values) of a namespace or pod.
pub fn check_labels(c: &mut Collector, field: &str, labels: &crate::k8s::Labels) {
    for (k, v) in labels {
        check_label_key(c, field, k);
        if !(v.is_empty() || is_label_name(v)) {
            c.report(field, v, "not a valid label value");
        }
    }
}
