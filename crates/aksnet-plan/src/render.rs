//! Renderers: the human report (colour only when asked, i.e. on a terminal), JSON and SARIF.

use std::fmt::Write as _;

use serde_json::json;

use crate::catalogue::{Severity, RULES};
use crate::report::{RangeKind, Report};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn sev(&self, s: Severity) -> String {
        let text = format!("{:<7}", s.as_str());
        match s {
            Severity::Error => self.wrap("1;31", &text),
            Severity::Warning => self.wrap("33", &text),
            Severity::Info => self.wrap("36", &text),
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn yes_no(&self, b: bool) -> String {
        if b {
            self.wrap("32", "yes")
        } else {
            self.wrap("1;31", "no")
        }
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn kind(k: RangeKind) -> &'static str {
    match k {
        RangeKind::NodeSubnet => "node subnet",
        RangeKind::PodCidr => "pod CIDR",
        RangeKind::PodSubnet => "pod subnet",
    }
}

/// One finding per entry: severity, rule, control-plane code, field; then where and what.
fn findings(r: &Report, p: &Paint, o: &mut String) {
    for f in &r.findings {
        let _ = writeln!(
            o,
            "  {} {:<5} {:<38} {}",
            p.sev(f.severity),
            f.rule,
            f.code.unwrap_or("-"),
            f.field
        );
        if let Some(loc) = &f.location {
            let _ = writeln!(o, "          at {loc}");
        }
        let _ = writeln!(o, "          {}", f.message);
    }
}

/// The capacity table: one row per node subnet, pod CIDR and pod subnet.
fn capacity_table(r: &Report, p: &Paint, o: &mut String) {
    let _ = writeln!(o, "{}", p.bold("Capacity (addresses; max nodes in nodes):"));
    let mut rows = vec![[
        "RANGE",
        "KIND",
        "CIDR",
        "USABLE",
        "OTHER",
        "PER NODE",
        "NOW",
        "AT MAX",
        "MAX+SURGE",
        "FREE",
        "MAX NODES",
        "MAX PODS",
        "CREATE",
        "UPGRADE",
        "SMALLEST",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for c in &r.capacity {
        rows.push(vec![
            c.name.clone(),
            kind(c.kind).into(),
            c.cidr.clone(),
            c.usable.to_string(),
            c.other.to_string(),
            c.per_node.to_string(),
            c.required_now.to_string(),
            c.required.to_string(),
            c.required_with_surge.to_string(),
            c.free.to_string(),
            c.max_nodes.to_string(),
            c.max_pods.to_string(),
            if c.accepted_at_create {
                "ok".into()
            } else {
                "REJECTED".into()
            },
            if c.safe_to_upgrade {
                "ok".into()
            } else {
                "NO ROOM".into()
            },
            c.smallest_prefix
                .map(|x| format!("/{x}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    o.push_str(&table(&rows));
}

/// The human report. `color`: ANSI colours (the CLI turns them on only on a terminal).
pub fn human(r: &Report, color: bool) -> String {
    let p = Paint { on: color };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} cluster {} — {}",
        p.bold("aksnet plan:"),
        r.cluster_name,
        r.model
    );
    if let Some(w) = &r.what_if {
        let _ = writeln!(o, "  {w}");
    }
    let inputs: Vec<String> = r
        .inputs
        .iter()
        .map(|s| format!("{} ({})", s.file, s.kind))
        .collect();
    let _ = writeln!(o, "  inputs: {}", inputs.join(", "));
    let _ = writeln!(o);
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        o,
        "{} {}, {}, {} info",
        p.bold("Findings:"),
        plural(r.summary.errors, "error", "errors"),
        plural(r.summary.warnings, "warning", "warnings"),
        r.summary.infos
    );
    findings(r, &p, &mut o);
    let _ = writeln!(o);
    capacity_table(r, &p, &mut o);
    let _ = writeln!(o);
    if !r.partial {
        cluster_section(r, &p, &mut o);
    }
    if let Some(g) = &r.growth {
        let _ = writeln!(o, "  growth: {}", g.message);
    }
    if !r.defaults_applied.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", p.bold("Defaults applied:"));
        for d in &r.defaults_applied {
            let _ = writeln!(o, "  {} = {}  ({})", d.field, d.value, d.reason);
        }
    }
    o
}

/// Limits and the cluster's totals (not shown for a partial plan).
fn cluster_section(r: &Report, p: &Paint, o: &mut String) {
    let _ = writeln!(o, "{}", p.bold("Limits (nodes):"));
    let mut rows = vec![["LIMIT", "MAX", "AT MAX", "MAX+SURGE", "HEADROOM"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for l in &r.limits {
        rows.push(vec![
            l.name.clone(),
            l.limit.to_string(),
            l.required.to_string(),
            l.required_with_surge.to_string(),
            l.headroom_nodes.to_string(),
        ]);
    }
    o.push_str(&table(&rows));
    let _ = writeln!(o);
    let c = &r.cluster;
    let _ = writeln!(
        o,
        "{} {} nodes now, {} at autoscaler maximum, {} with upgrade surge; up to {} pods.",
        p.bold("Cluster:"),
        c.nodes_now,
        c.nodes_max,
        c.nodes_max_with_surge,
        c.pods_max
    );
    let _ = writeln!(
        o,
        "  accepted at create: {}   safe to upgrade: {}",
        p.yes_no(c.accepted_at_create),
        p.yes_no(c.safe_to_upgrade)
    );
    if let (Some(b), Some(h)) = (&c.binding_constraint, c.headroom_nodes) {
        let _ = writeln!(
            o,
            "  binding constraint: {b} ({h} more nodes after maximum plus surge)"
        );
    }
    if let (Some(n), Some(pods)) = (c.max_nodes_total, c.max_pods_total) {
        let _ = writeln!(
            o,
            "  cluster total: at most {n} nodes and {pods} pods before the binding constraint runs out (surge nodes included)"
        );
    }
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// SARIF 2.1.0 for CI annotations: every catalogue rule, one result per finding.
pub fn sarif(r: &Report) -> String {
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    };
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "name": x.id,
                "shortDescription": {"text": x.title},
                "defaultConfiguration": {"level": level(x.severity)},
                "properties": {"source": x.source, "controlPlaneCode": x.code},
            })
        })
        .collect();
    let uri = r.inputs.first().map(|s| s.file.clone()).unwrap_or_default();
    let results: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| {
            // "file:line" where the input has lines, else the first input.
            let physical = match f.location.as_deref().and_then(|l| l.rsplit_once(':')) {
                Some((file, line)) if line.parse::<u64>().is_ok() => json!({
                    "artifactLocation": {"uri": file},
                    "region": {"startLine": line.parse::<u64>().unwrap_or(1)},
                }),
                _ => json!({"artifactLocation": {"uri": f.location.clone().unwrap_or_else(|| uri.clone())}}),
            };
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|x| x.id == f.rule),
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{"fullyQualifiedName": f.field}],
                }],
                "properties": {"controlPlaneCode": f.code, "source": f.source},
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "aksnet plan", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
