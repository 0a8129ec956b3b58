//! What a plan produces. Serialised as-is by `--format json`.

use serde::Serialize;

use crate::catalogue::{rule, RuleId, Severity};
use crate::model::Source;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    /// The control plane's error code, or null where none was ever captured.
    pub code: Option<&'static str>,
    pub message: String,
    /// The field concerned, as an ARM-style path (`networkProfile.serviceCidr`).
    pub field: String,
    pub source: &'static str,
    /// "file:line" of the input that gave the value, where the input has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Finding {
    /// The same finding, located at `loc` ("file:line").
    pub fn at(mut self, loc: Option<String>) -> Finding {
        self.location = loc;
        self
    }

    /// Build a finding of catalogue rule `id`; severity, code and source come from the
    /// catalogue so one ID always means one thing.
    pub fn new(id: RuleId, field: impl Into<String>, message: impl Into<String>) -> Finding {
        let r = rule(id);
        Finding {
            rule: id,
            severity: r.severity,
            code: r.code,
            message: message.into(),
            field: field.into(),
            source: r.source,
            location: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultApplied {
    pub field: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeKind {
    NodeSubnet,
    PodCidr,
    PodSubnet,
}

/// Capacity of one address range (docs/plan.md). Addresses, except `max_nodes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub name: String,
    pub kind: RangeKind,
    pub cidr: String,
    pub pools: Vec<String>,
    /// Addresses the range offers (Azure subnets: 2^(32−p) − 5; pod CIDRs: 2^(32−p)).
    pub usable: u64,
    /// Addresses used by other tenants of the subnet.
    pub other: u64,
    /// Addresses one node costs here (largest among its pools).
    pub per_node: u64,
    /// Needed by the current node counts.
    pub required_now: u64,
    /// Needed at the autoscaler maximum: what the control plane checks at create.
    pub required: u64,
    /// Needed at the maximum plus upgrade surge.
    pub required_with_surge: u64,
    /// usable − other − required_with_surge (negative: short by that much).
    pub free: i64,
    /// Nodes the range holds at `per_node`.
    pub max_nodes: u64,
    /// Pods those nodes hold.
    pub max_pods: u64,
    /// Nodes that still fit after maximum plus surge.
    pub additional_nodes: u64,
    pub accepted_at_create: bool,
    pub safe_to_upgrade: bool,
    /// Longest prefix that holds `required_with_surge` + other (Azure subnets only).
    pub smallest_prefix: Option<u8>,
}

/// A count limit (kubenet 400 routes, tier node limit, 1,000 per pool, VNet 65,536).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    pub name: String,
    pub limit: u64,
    pub required: u64,
    pub required_with_surge: u64,
    pub headroom_nodes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterCapacity {
    pub model: String,
    pub nodes_now: u64,
    pub nodes_max: u64,
    pub nodes_max_with_surge: u64,
    pub pods_max: u64,
    pub accepted_at_create: bool,
    pub safe_to_upgrade: bool,
    /// The range or limit that runs out first as nodes are added.
    pub binding_constraint: Option<String>,
    /// Nodes that can still be added after maximum plus surge, under the binding constraint.
    pub headroom_nodes: Option<i64>,
    /// The most nodes the cluster can have before the binding constraint runs out (surge
    /// nodes included): maximum plus surge plus headroom; the tier's node limit caps it.
    pub max_nodes_total: Option<u64>,
    /// Pods those nodes hold (added nodes counted at the smallest maxPods of the pools).
    pub max_pods_total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrowthReport {
    pub rate: String,
    pub nodes_per_month: f64,
    pub binding_constraint: Option<String>,
    pub headroom_nodes: Option<i64>,
    /// Months until the binding constraint runs out (0 when it already has).
    pub months: Option<f64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub inputs: Vec<Source>,
    pub cluster_name: String,
    pub model: String,
    /// True when the inputs describe no cluster (a VNet alone, pools alone).
    pub partial: bool,
    /// Set when `--plugin`/`--mode`/`--migrate-to` changed the model.
    pub what_if: Option<String>,
    pub findings: Vec<Finding>,
    pub capacity: Vec<Capacity>,
    pub limits: Vec<Limit>,
    pub cluster: ClusterCapacity,
    pub growth: Option<GrowthReport>,
    pub defaults_applied: Vec<DefaultApplied>,
    pub summary: Summary,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}
