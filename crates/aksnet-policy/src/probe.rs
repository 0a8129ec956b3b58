//! The probe file (docs/policy.md "Probe files"): steps, each the whole desired state (cluster
//! and policies) plus the probes to run; and the report of verdicts `aksnet policy eval` and
//! `aksnet lab netpol` print. A step may omit `cluster`, `policies` or `probes` to keep the
//! previous step's; an optional `expect` table states the verdicts the author expects.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, PolicyError};
use crate::eval::{Connection, Endpoint, Verdict};
use crate::k8s::{Labels, NetworkPolicy};
use crate::model::{Cluster, External, NamedPort, Namespace, Pod, Policy, Protocol};
use crate::validate::{self, check_labels, Collector};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cluster: Option<RawCluster>,
    #[serde(default)]
    policies: Option<Vec<NetworkPolicy>>,
    #[serde(default)]
    probes: Option<Vec<Probe>>,
    #[serde(default)]
    expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    namespaces: Vec<Namespace>,
    #[serde(default)]
    pods: Vec<RawPod>,
    #[serde(default)]
    externals: Vec<External>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    namespace: String,
    name: String,
    #[serde(default)]
    labels: Labels,
    ip: IpAddr,
    /// More addresses (a dual-stack pod); `ip` is the one probes connect to.
    #[serde(default)]
    ips: Vec<IpAddr>,
    #[serde(default)]
    ports: Vec<NamedPort>,
    #[serde(default)]
    node: Option<String>,
}

/// One probed port: every ordered pair of endpoints is tried on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: Protocol,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

/// Expected verdicts: start from `default`, then each entry (later ones win) sets the verdict
/// of the pairs it matches. Patterns: `*`, `ns/*`, `ns/pod`, `external:*`, `external:name`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default = "yes")]
    pub default: bool,
    #[serde(default)]
    pub rules: Vec<ExpectRule>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRule {
    #[serde(default = "star")]
    pub from: String,
    #[serde(default = "star")]
    pub to: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
    pub allowed: bool,
}

fn star() -> String {
    "*".into()
}

/// A glob where `*` matches any run of characters (`*/b`, `x/*`, `external:*`).
fn pattern_matches(pattern: &str, who: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == who,
        Some((head, rest)) => {
            let Some(tail) = who.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| pattern_matches(rest, &tail[i..]))
        }
    }
}

impl Expect {
    pub fn verdict(&self, from: &str, to: &str, probe: Probe) -> bool {
        let mut v = self.default;
        for r in &self.rules {
            if pattern_matches(&r.from, from)
                && pattern_matches(&r.to, to)
                && r.port.is_none_or(|p| p == probe.port)
                && r.protocol.is_none_or(|p| p == probe.protocol)
            {
                v = r.allowed;
            }
        }
        v
    }
}

/// One validated step: the whole desired state.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub cluster: Cluster,
    pub externals: Vec<External>,
    pub policies: Vec<Policy>,
    /// The policies as written (what `aksnet lab netpol` hands to the agent).
    pub raw_policies: Vec<NetworkPolicy>,
    pub probes: Vec<Probe>,
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub steps: Vec<Step>,
}

/// Parses a probe file (JSON, or YAML) and validates every step; all errors at once.
pub fn parse(file: &str, text: &str) -> Result<Scenario, PolicyError> {
    let raw: RawFile = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_string(),
            detail: e.to_string(),
        })?
    } else {
        serde_norway::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_string(),
            detail: e.to_string(),
        })?
    };
    let mut errors = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    for (i, rs) in raw.steps.into_iter().enumerate() {
        let prev = steps.last();
        match step(i, rs, prev) {
            Ok(s) => steps.push(s),
            Err(mut e) => {
                errors.append(&mut e);
                break;
            }
        }
    }
    if steps.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "file",
            "steps",
            "[]",
            "needs at least one step",
        ));
    }
    if !errors.is_empty() {
        return Err(PolicyError::Fields {
            file: file.to_string(),
            errors,
        });
    }
    Ok(Scenario { steps })
}

fn step(i: usize, rs: RawStep, prev: Option<&Step>) -> Result<Step, Vec<FieldError>> {
    let name = rs.name.unwrap_or_else(|| format!("step-{i}"));
    let object = format!("step {i} ({name})");
    let mut c = Collector {
        object: object.clone(),
        errors: Vec::new(),
    };
    let (cluster, externals) = match (rs.cluster, prev) {
        (Some(rc), _) => cluster(&mut c, rc),
        (None, Some(p)) => (p.cluster.clone(), p.externals.clone()),
        (None, None) => {
            c.errors.push(FieldError::new(
                &object,
                "cluster",
                "",
                "the first step needs a cluster",
            ));
            (Cluster::default(), Vec::new())
        }
    };
    let raw_policies = match (rs.policies, prev) {
        (Some(p), _) => p,
        (None, Some(p)) => p.raw_policies.clone(),
        (None, None) => Vec::new(),
    };
    let mut policies = Vec::new();
    let mut keys = BTreeSet::new();
    for (j, rp) in raw_policies.iter().enumerate() {
        match validate::policy(rp) {
            Ok(p) if !keys.insert(p.key()) => c.errors.push(FieldError::new(
                &object,
                format!("policies[{j}].metadata.name"),
                p.key(),
                "two policies with one namespace/name",
            )),
            Ok(p) => policies.push(p),
            Err(errs) => c.errors.extend(errs.into_iter().map(|mut e| {
                e.field = format!("policies[{j}] ({}) {}", e.object, e.field);
                e.object = object.clone();
                e
            })),
        }
    }
    let probes = rs
        .probes
        .or_else(|| prev.map(|p| p.probes.clone()))
        .unwrap_or_default();
    if probes.is_empty() {
        c.errors.push(FieldError::new(
            &object,
            "probes",
            "[]",
            "needs at least one probe",
        ));
    }
    for (j, p) in probes.iter().enumerate() {
        if p.port == 0 {
            c.errors.push(FieldError::new(
                &object,
                format!("probes[{j}].port"),
                "0",
                "must be 1-65535",
            ));
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(Step {
        name,
        cluster,
        externals,
        policies,
        raw_policies,
        probes,
        expect: rs.expect.or_else(|| prev.and_then(|p| p.expect.clone())),
    })
}

fn cluster(c: &mut Collector, rc: RawCluster) -> (Cluster, Vec<External>) {
    let mut names = BTreeSet::new();
    for (i, ns) in rc.namespaces.iter().enumerate() {
        if !names.insert(ns.name.clone()) {
            c.report_at(
                format!("cluster.namespaces[{i}].name"),
                &ns.name,
                "declared twice",
            );
        }
        check_labels(c, &format!("cluster.namespaces[{i}].labels"), &ns.labels);
    }
    let mut ips = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut pods = Vec::new();
    for (i, rp) in rc.pods.into_iter().enumerate() {
        let at = format!("cluster.pods[{i}]");
        if !names.contains(&rp.namespace) {
            c.report_at(
                format!("{at}.namespace"),
                &rp.namespace,
                "no such namespace in cluster.namespaces",
            );
        }
        if !keys.insert(format!("{}/{}", rp.namespace, rp.name)) {
            c.report_at(
                format!("{at}.name"),
                &rp.name,
                "two pods with one namespace/name",
            );
        }
        check_labels(c, &format!("{at}.labels"), &rp.labels);
        let mut all = vec![rp.ip];
        all.extend(rp.ips.iter().copied().filter(|a| *a != rp.ip));
        for ip in &all {
            if !ips.insert(*ip) {
                c.report_at(format!("{at}.ip"), &ip.to_string(), "address used twice");
            }
        }
        for (j, p) in rp.ports.iter().enumerate() {
            if let Some(n) = &p.name {
                if !validate::is_iana_svc_name(n) {
                    c.report_at(format!("{at}.ports[{j}].name"), n, "not a valid port name");
                }
            }
        }
        pods.push(Pod {
            namespace: rp.namespace,
            name: rp.name,
            labels: rp.labels,
            ips: all,
            ports: rp.ports,
            node: rp.node,
        });
    }
    let mut ext_names = BTreeSet::new();
    for (i, e) in rc.externals.iter().enumerate() {
        if !ext_names.insert(e.name.clone()) {
            c.report_at(
                format!("cluster.externals[{i}].name"),
                &e.name,
                "declared twice",
            );
        }
        if !ips.insert(e.ip) {
            c.report_at(
                format!("cluster.externals[{i}].ip"),
                &e.ip.to_string(),
                "address used twice",
            );
        }
    }
    (
        Cluster {
            namespaces: rc.namespaces,
            pods,
        },
        rc.externals,
    )
}

impl Collector {
    fn report_at(&mut self, field: String, value: &str, reason: &str) {
        self.errors
            .push(FieldError::new(&self.object, field, value, reason));
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: Protocol,
    pub allowed: bool,
    /// What a real connection did (`aksnet lab netpol`); null from the model alone or when
    /// the probe could not run (`skipped` says why).
    pub observed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub reason: String,
}

impl Row {
    /// A row disagrees when the observation or the author's expectation differs from the model.
    pub fn mismatch(&self) -> bool {
        self.observed.is_some_and(|o| o != self.allowed)
            || self.expected.is_some_and(|e| e != self.allowed)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub verdicts: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn mismatches(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.verdicts)
            .filter(|r| r.mismatch())
            .count()
    }
}

/// The endpoints of a step in report order: pods, then externals.
pub fn endpoints(step: &Step) -> Vec<(Endpoint<'_>, IpAddr)> {
    let mut v: Vec<(Endpoint, IpAddr)> = step
        .cluster
        .pods
        .iter()
        .map(|p| (Endpoint::Pod(p), p.ips[0]))
        .collect();
    v.extend(step.externals.iter().map(|e| {
        (
            Endpoint::External {
                name: &e.name,
                ip: e.ip,
            },
            e.ip,
        )
    }));
    v
}

fn source_ip(src: &Endpoint, src_default: IpAddr, dst_ip: IpAddr) -> Option<IpAddr> {
    match src {
        Endpoint::Pod(p) => p.ip_like(dst_ip),
        _ => (src_default.is_ipv4() == dst_ip.is_ipv4()).then_some(src_default),
    }
}

/// The model's verdict for every ordered pair of distinct endpoints and every probe.
pub fn evaluate_step(step: &Step) -> StepReport {
    let eps = endpoints(step);
    let mut rows = Vec::new();
    for probe in &step.probes {
        for (s, s_ip) in &eps {
            for (d, d_ip) in &eps {
                let (from, to) = (s.label(), d.label());
                if from == to {
                    continue;
                }
                let (allowed, reason) = match source_ip(s, *s_ip, *d_ip) {
                    Some(src_ip) => {
                        let v: Verdict = Connection::new(
                            &step.cluster,
                            &step.policies,
                            (s, src_ip),
                            (d, *d_ip),
                            probe.port,
                            probe.protocol,
                        )
                        .verdict();
                        (v.allowed, v.reason(&from, &to))
                    }
                    None => (false, format!("{from} has no address of {to}'s family")),
                };
                let expected = step.expect.as_ref().map(|e| e.verdict(&from, &to, *probe));
                rows.push(Row {
                    from,
                    to,
                    port: probe.port,
                    protocol: probe.protocol,
                    allowed,
                    observed: None,
                    expected,
                    skipped: None,
                    reason,
                });
            }
        }
    }
    StepReport {
        name: step.name.clone(),
        verdicts: rows,
    }
}

pub fn evaluate_scenario(s: &Scenario) -> Report {
    Report {
        steps: s.steps.iter().map(evaluate_step).collect(),
    }
}

/// The human report: one table per step, mismatches marked.
pub fn render_human(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for s in &report.steps {
        let _ = writeln!(out, "step {}:", s.name);
        let _ = writeln!(
            out,
            "  {:<22} {:<22} {:<10} {:<6} {:<9} REASON",
            "FROM", "TO", "PORT", "MODEL", "OBSERVED"
        );
        for r in &s.verdicts {
            let obs = match (&r.observed, &r.skipped) {
                (Some(true), _) => "allow",
                (Some(false), _) => "deny",
                (None, Some(_)) => "skipped",
                (None, None) => "-",
            };
            let mark = if r.mismatch() { "!! " } else { "" };
            let extra = match (&r.skipped, r.expected) {
                (Some(why), _) => format!(" [skipped: {why}]"),
                (None, Some(e)) if e != r.allowed => {
                    format!(" [expected {}]", if e { "allow" } else { "deny" })
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {mark}{:<22} {:<22} {:<10} {:<6} {:<9} {}{extra}",
                r.from,
                r.to,
                format!("{}/{}", r.port, r.protocol),
                if r.allowed { "allow" } else { "deny" },
                obs,
                r.reason
            );
        }
    }
    let n = report.mismatches();
    let total: usize = report.steps.iter().map(|s| s.verdicts.len()).sum();
    let _ = writeln!(out, "{total} verdicts, {n} mismatches");
    out
}
