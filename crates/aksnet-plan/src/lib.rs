//! aksnet-plan: validate an AKS cluster's network plan against every AKS rule and compute its
//! capacity (issue 5; rules from docs/plan.md, "Rules" and "Capacity").
//!
//! Layout: a pure core ([`model`] → [`resolve`] → [`checks`], [`capacity`], [`whatif`]) with
//! no I/O; input adapters ([`input`]) that turn the files users have into the model; and
//! renderers ([`render`]) for the human table, JSON and SARIF.

pub mod capacity;
pub mod catalogue;
pub mod checks;
pub mod input;
pub mod model;
pub mod net;
pub mod partial;
pub mod render;
pub mod report;
pub mod resolve;
pub mod whatif;

pub use capacity::Growth;
pub use catalogue::{Rule, RuleId, Severity, RULES};
pub use input::{load_files, InputError};
pub use model::PlanInput;
pub use report::{Capacity, Finding, Report};
pub use whatif::WhatIf;

/// Options that change what is planned.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub what_if: WhatIf,
    /// The parsed `--growth` rate and its text.
    pub growth: Option<(Growth, String)>,
}

/// Give each finding without a location the "file:line" of what its field names: a pool
/// (`agentPoolProfiles[NAME]...`), a subnet (`...subnets[NAME]...`), a VNet (`vnet[NAME]...`),
/// the network profile (`networkProfile.*`), else the cluster.
fn locate(input: &PlanInput, findings: &mut [Finding]) {
    let inside = |field: &str, prefix: &str| -> Option<String> {
        let i = field.find(prefix)? + prefix.len();
        let rest = &field[i..];
        rest.find(']').map(|j| rest[..j].to_string())
    };
    let cluster = input.cluster.as_ref();
    let pool_loc = |name: &str| {
        cluster
            .into_iter()
            .flat_map(|c| c.pools.iter())
            .chain(input.extra_pools.iter())
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.location.clone())
    };
    let subnet_loc = |name: &str| {
        input
            .vnets
            .iter()
            .flat_map(|v| v.subnets.iter())
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .and_then(|s| s.location.clone())
    };
    let vnet_loc = |name: &str| {
        input
            .vnets
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .and_then(|v| v.location.clone())
    };
    for f in findings.iter_mut().filter(|f| f.location.is_none()) {
        f.location = if let Some(p) = inside(&f.field, "agentPoolProfiles[") {
            pool_loc(&p).or_else(|| cluster.and_then(|c| c.location.clone()))
        } else if let Some(s) = inside(&f.field, "subnets[") {
            subnet_loc(&s)
        } else if let Some(v) = inside(&f.field, "vnet[") {
            vnet_loc(&v)
        } else if f.field.starts_with("networkProfile") {
            cluster.and_then(|c| c.network_location.clone().or_else(|| c.location.clone()))
        } else if let Some(l) = subnet_loc(&f.field) {
            // Capacity findings name the range (a subnet's name).
            Some(l)
        } else {
            cluster.and_then(|c| c.location.clone())
        };
    }
}

/// A range's pod maximum counts at most as many nodes as the cluster may have (its tier limit,
/// kubenet's 400 routes, Azure NPM's 250): a /16 of kubenet nodes does not hold 16 million pods.
fn cap_range_pods(ranges: &mut [Capacity], limits: &[report::Limit]) {
    let Some(cap) = limits
        .iter()
        .filter(|l| !l.name.starts_with("pool "))
        .map(|l| l.limit)
        .min()
    else {
        return;
    };
    for c in ranges.iter_mut().filter(|c| c.max_nodes > cap) {
        let per_node = c.max_pods / c.max_nodes;
        c.max_pods = cap * per_node;
    }
}

/// A needed value no input resolved (issue 12: unknown is not fatal).
fn unresolved_finding(u: &model::Unresolved) -> Finding {
    Finding::new(
        RuleId::IN1,
        u.field.clone(),
        format!(
            "'{}' could not be resolved from the inputs, so the plan treats this field as absent (an AKS default applies where one exists, see Defaults applied). Give its value (a variable value, a parameters file) to plan with it.",
            shorten(&u.expression, 200)
        ),
    )
    .at(u.location.clone().or_else(|| Some(u.file.clone())))
}

/// `s` cut to `max` characters (long template expressions).
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// H1: safe to upgrade, but fewer addresses left than two more nodes need.
fn tiny_headroom(c: &Capacity) -> Option<Finding> {
    if !c.safe_to_upgrade || c.per_node == 0 || c.free < 0 || c.free >= 2 * c.per_node as i64 {
        return None;
    }
    Some(Finding::new(
        RuleId::H1,
        c.name.clone(),
        format!(
            "After maximum scale plus upgrade surge only {} addresses are left in {} ({}), room for {} more node(s) at {} addresses each: one more pool, a node count change or a larger surge would not fit.",
            c.free,
            c.name,
            c.cidr,
            c.free / c.per_node as i64,
            c.per_node
        ),
    ))
}

/// Plan: resolve defaults, apply what-if/migration, check every rule, compute capacity.
pub fn plan(input: &PlanInput, opts: &PlanOptions) -> Report {
    let (mut r, mut defaults) = resolve::resolve(input);
    defaults.splice(
        0..0,
        input
            .input_defaults
            .iter()
            .map(|(field, value, reason)| report::DefaultApplied {
                field: field.clone(),
                value: value.clone(),
                reason: reason.clone(),
            }),
    );
    let (mut findings, what_if) = whatif::apply(&mut r, &opts.what_if, &mut defaults);
    findings.extend(checks::check(&r));
    findings.extend(input.unresolved.iter().map(unresolved_finding));
    let mut ranges = capacity::ranges(&r);
    let mut limits = capacity::limits(&r);
    let mut cluster = capacity::cluster(&r, &ranges, &limits);
    cap_range_pods(&mut ranges, &limits);
    findings.extend(ranges.iter().filter_map(tiny_headroom));
    let partial = input.cluster.is_none();
    if partial {
        // Nothing invented: only what the inputs describe (docs/plan.md, "Partial inputs").
        findings.retain(partial::keep);
        ranges = partial::subnet_rows(&r);
        findings.push(partial::note(&r, &ranges));
        limits.clear();
        cluster.binding_constraint = None;
        cluster.headroom_nodes = None;
        cluster.max_nodes_total = None;
        cluster.max_pods_total = None;
        // Only the pools' own defaults: no invented subnet, no invented system pool.
        defaults.retain(|d| {
            d.field.starts_with("agentPoolProfiles[")
                && !d.field.starts_with("agentPoolProfiles[*]")
                && !d.field.ends_with(".mode")
        });
    }
    locate(input, &mut findings);
    // Errors first, then warnings, then info; stable within a severity.
    findings.sort_by_key(|f| f.severity);
    let growth = opts
        .growth
        .as_ref()
        .filter(|_| !partial)
        .map(|(g, raw)| capacity::growth(&r, &cluster, *g, raw));
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = report::Summary {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
    };
    Report {
        inputs: input.sources.clone(),
        cluster_name: if partial {
            "(none given)".into()
        } else {
            r.name.clone()
        },
        model: if partial {
            "no cluster: partial plan".into()
        } else {
            r.model().label().to_string()
        },
        partial,
        what_if,
        findings,
        capacity: ranges,
        limits,
        cluster,
        growth,
        defaults_applied: defaults,
        summary,
    }
}
