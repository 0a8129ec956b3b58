//! aksnet-plan: validate an AKS cluster's network plan against every AKS rule and compute its
//! capacity (issue 5; rules from research/planner.md §2, formulas §3).
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
pub mod render;
pub mod report;
pub mod resolve;
pub mod whatif;

pub use capacity::Growth;
pub use catalogue::{Rule, Severity, RULES};
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

/// Plan: resolve defaults, apply what-if/migration, check every rule, compute capacity.
pub fn plan(input: &PlanInput, opts: &PlanOptions) -> Report {
    let (mut r, mut defaults) = resolve::resolve(input);
    let (mut findings, what_if) = whatif::apply(&mut r, &opts.what_if, &mut defaults);
    findings.extend(checks::check(&r));
    // Errors first, then warnings, then info; stable within a severity.
    findings.sort_by_key(|f| f.severity);
    let ranges = capacity::ranges(&r);
    let limits = capacity::limits(&r);
    let cluster = capacity::cluster(&r, &ranges, &limits);
    let growth = opts
        .growth
        .as_ref()
        .map(|(g, raw)| capacity::growth(&r, &cluster, *g, raw));
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = report::Summary {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
    };
    Report {
        inputs: input.sources.clone(),
        cluster_name: r.name.clone(),
        model: r.model().label().to_string(),
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
