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

/// A needed value no input resolved (issue 12: unknown is not fatal).
fn unresolved_finding(u: &model::Unresolved) -> Finding {
    Finding::new(
        RuleId::IN1,
        u.field.clone(),
        format!(
            "'{}' could not be resolved from the inputs, so the plan treats this field as absent (an AKS default applies where one exists, see Defaults applied). Give its value (a variable value, a parameters file) to plan with it.",
            u.expression
        ),
    )
    .at(u.location.clone().or_else(|| Some(u.file.clone())))
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
