//! `aksnet lab netpol FILE`: the probe file's cluster built for real (docs/policy.md "lab
//! netpol"): exactly its namespaces and pods, each pod at its address on one of at least two
//! nodes through the real `aksnet-cni`, externals as hosts outside the cluster, a listener on
//! every probed port in every pod and external, the policies applied by the real
//! `aksnet agent`, and a real connection for every verdict, printed next to the model's.
//! Steps are applied to the running lab (pods added, removed, relabelled; policies
//! replaced). Everything is removed at the end, also on failure; what a killed run left,
//! `--down` removes ([`crate::netpol_down`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use aksnet_policy::probe::{evaluate_step, Report, Scenario, Step, StepReport};
use aksnet_policy::Protocol;

use crate::error::{LabError, Result};
use crate::exec::Binaries;
use crate::netpol_plan::{manifests, plan, NetpolPlan};
use crate::netpol_world::{sctp_available, World, PROBE_TIMEOUT_S, RETRY_TIMEOUT_S};
use crate::spec::Model;

#[derive(Debug, Clone)]
pub struct NetpolOptions {
    /// Prefix of every namespace, link and table (at most 10 characters: veth names).
    pub prefix: String,
    pub model: Model,
    pub state_dir: PathBuf,
}

fn externals(s: &Scenario) -> Vec<(String, IpAddr)> {
    let mut out: Vec<(String, IpAddr)> = Vec::new();
    for step in &s.steps {
        for e in &step.externals {
            if !out.iter().any(|(n, _)| n == &e.name) {
                out.push((e.name.clone(), e.ip));
            }
        }
    }
    out
}

pub(crate) fn check_prefix(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && p.len() <= 10
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && p.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(LabError::Invalid {
            flag: "--prefix",
            value: p.into(),
            why:
                "1-10 of a-z, 0-9 and '-', starting with a letter (link names are at most 15 bytes)"
                    .into(),
        })
    }
}

/// Runs the scenario for real; the report has `observed` filled in.
pub fn netpol(
    s: &Scenario,
    opts: &NetpolOptions,
    bins: &Binaries,
    out: &mut dyn Write,
) -> Result<Report> {
    check_prefix(&opts.prefix)?;
    let plan = plan(s, opts.model)?;
    if crate::netpol_down::leftovers(&opts.prefix)? {
        return Err(LabError::Invalid {
            flag: "--prefix",
            value: opts.prefix.clone(),
            why: format!(
                "namespaces of an earlier run with this prefix exist (a killed run?): \
                 `aksnet lab netpol --down --prefix {}` removes them",
                opts.prefix
            ),
        });
    }
    let exts = externals(s);
    let mut world = World::new(&opts.prefix, opts.state_dir.clone())?;
    world.build(&plan, &exts)?;
    let _ = writeln!(
        out,
        "lab netpol: {} nodes ({}), {} pods, {} externals",
        plan.nodes.len(),
        opts.model.title(),
        plan.pods.len(),
        exts.len()
    );
    let sctp = sctp_available();
    let index: BTreeMap<String, usize> = plan
        .pods
        .keys()
        .enumerate()
        .map(|(j, k)| (k.clone(), j))
        .collect();
    let mut current: BTreeSet<String> = BTreeSet::new();
    let mut ports_now: Vec<String> = Vec::new();
    let mut steps = Vec::new();
    for step in &s.steps {
        let want: BTreeSet<String> = step.cluster.pods.iter().map(|p| p.key()).collect();
        for gone in current.difference(&want) {
            let (node, _) = plan.pods[gone];
            world.del_pod(bins, &plan, index[gone], node)?;
        }
        let added: Vec<String> = want.difference(&current).cloned().collect();
        for new in &added {
            let (node, ip) = plan.pods[new];
            let v6 = plan.pods6.get(new).map_or(&[][..], Vec::as_slice);
            world.add_pod(bins, &plan, index[new], node, ip, v6)?;
        }
        let ports = listen_ports(step, sctp);
        for key in &want {
            if ports != ports_now || added.contains(key) {
                world.listen(&world.pod_ns(index[key]), &ports)?;
            }
        }
        if ports != ports_now {
            for (k, _) in exts.iter().enumerate() {
                world.listen(&format!("{}x{k}", opts.prefix), &ports)?;
            }
        }
        ports_now = ports;
        current = want;
        write_manifests(&world, step, &plan)?;
        world.apply_policy(bins, &plan, &world.state.join("policy"))?;
        let report = observe(&world, step, &plan, &index, &exts, sctp)?;
        let bad = report.verdicts.iter().filter(|r| r.mismatch()).count();
        let _ = writeln!(
            out,
            "  step {}: {} verdicts, {} mismatches",
            step.name,
            report.verdicts.len(),
            bad
        );
        steps.push(report);
    }
    Ok(Report { steps })
}

fn listen_ports(step: &Step, sctp: bool) -> Vec<String> {
    let mut v: Vec<String> = step
        .probes
        .iter()
        .filter(|p| p.protocol != Protocol::Sctp || sctp)
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn write_manifests(world: &World, step: &Step, plan: &NetpolPlan) -> Result<()> {
    let dir = world.state.join("policy");
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io("create", &dir, e))?;
    let (cluster, policies) = manifests(step, plan);
    for (name, v) in [("cluster.json", cluster), ("policies.json", policies)] {
        let f = dir.join(name);
        crate::state::write_atomic(&f, v.to_string().as_bytes())?;
    }
    Ok(())
}

/// The model's verdicts with a real connection for each.
fn observe(
    world: &World,
    step: &Step,
    plan: &NetpolPlan,
    index: &BTreeMap<String, usize>,
    exts: &[(String, IpAddr)],
    sctp: bool,
) -> Result<StepReport> {
    let mut report = evaluate_step(step);
    let ns_of = |label: &str| -> Option<String> {
        match label.strip_prefix("external:") {
            Some(name) => exts
                .iter()
                .position(|(n, _)| n == name)
                .map(|k| format!("{}x{k}", world.prefix)),
            None => index.get(label).map(|j| world.pod_ns(*j)),
        }
    };
    // The destination is the endpoint's first address in the file, as the model has it.
    let ip_of = |label: &str| -> Option<IpAddr> {
        match label.strip_prefix("external:") {
            Some(name) => exts.iter().find(|(n, _)| n == name).map(|(_, ip)| *ip),
            None => step
                .cluster
                .pods
                .iter()
                .find(|p| p.key() == label)
                .and_then(|p| p.ips.first().copied()),
        }
    };
    let _ = plan;
    let mut by_source: BTreeMap<String, Todo> = BTreeMap::new();
    for (i, r) in report.verdicts.iter_mut().enumerate() {
        if r.protocol == Protocol::Sctp && !sctp {
            r.skipped = Some(
                "this kernel has no SCTP (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails)".into(),
            );
            continue;
        }
        match (ns_of(&r.from), ip_of(&r.to)) {
            (Some(ns), Some(ip)) => {
                by_source
                    .entry(ns)
                    .or_default()
                    .push((i, ip, r.port, r.protocol.as_str()))
            }
            _ => r.skipped = Some("endpoint not built".into()),
        }
    }
    for (i, ok) in probe_all(world, &by_source, PROBE_TIMEOUT_S)? {
        if let Some(row) = report.verdicts.get_mut(i) {
            row.observed = Some(ok);
        }
    }
    // One retry, longer, of what the model allows but got no answer: a loaded machine may be
    // slow to answer, while a dropped connection never answers, so this cannot hide a leak.
    let retry: BTreeMap<String, Todo> = by_source
        .into_iter()
        .map(|(ns, todo)| {
            let again: Vec<_> = todo
                .into_iter()
                .filter(|t| {
                    report
                        .verdicts
                        .get(t.0)
                        .is_some_and(|r| r.allowed && r.observed == Some(false))
                })
                .collect();
            (ns, again)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    for (i, ok) in probe_all(world, &retry, RETRY_TIMEOUT_S)? {
        if let Some(row) = report.verdicts.get_mut(i) {
            row.observed = Some(ok);
        }
    }
    Ok(report)
}

type Todo<'a> = Vec<(usize, IpAddr, u16, &'a str)>;

/// Every source's probes at once, one prober per source namespace.
fn probe_all(
    world: &World,
    by_source: &BTreeMap<String, Todo>,
    timeout_s: f64,
) -> Result<BTreeMap<usize, bool>> {
    let results: Vec<Result<BTreeMap<usize, bool>>> = std::thread::scope(|sc| {
        let hs: Vec<_> = by_source
            .iter()
            .map(|(ns, todo)| sc.spawn(move || world.probe(ns, todo, timeout_s)))
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LabError::State {
                        path: world.state.clone(),
                        why: "a prober thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut out = BTreeMap::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}
