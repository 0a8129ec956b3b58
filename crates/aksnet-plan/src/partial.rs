//! Partial inputs (issue 12): a VNet alone, or node pools without their cluster. Nothing is
//! invented: no default cluster, no service CIDR nobody chose. The plan keeps the rules about
//! what was given, gives each subnet's capacity and each pool's per-node demand, and a note
//! (IN2) saying what would complete the plan. docs/plan.md, "Partial inputs".

use crate::catalogue::RuleId;
use crate::net;
use crate::report::{Capacity, Finding, RangeKind};
use crate::resolve::Resolved;

/// Rules that concern only a VNet, its subnets or a pool on its own.
const KEPT: &[RuleId] = &[
    RuleId::X1,
    RuleId::R4,
    RuleId::R4a,
    RuleId::N10,
    RuleId::M1,
    RuleId::U1,
    RuleId::C3,
    RuleId::C5,
    RuleId::IN1,
];

pub fn keep(f: &Finding) -> bool {
    KEPT.contains(&f.rule)
}

/// One row per subnet: usable addresses, other tenants, and nodes at one address each (kubenet,
/// overlay, Pod Subnet nodes); the note adds the Node Subnet figure.
pub fn subnet_rows(r: &Resolved) -> Vec<Capacity> {
    r.subnets
        .iter()
        // The AKS-managed VNet is what a cluster would get, not something the inputs gave.
        .filter(|s| !r.vnets.get(s.vnet).is_some_and(|v| v.managed))
        .filter_map(|s| {
            let v4 = s.v4()?;
            let usable = net::azure_usable(v4.prefix_len());
            let free = usable.saturating_sub(s.other);
            Some(Capacity {
                name: s.name.clone(),
                kind: RangeKind::NodeSubnet,
                cidr: v4.to_string(),
                pools: Vec::new(),
                usable,
                other: s.other,
                per_node: 1,
                required_now: 0,
                required: 0,
                required_with_surge: 0,
                free: free as i64,
                max_nodes: free,
                max_pods: 0,
                additional_nodes: free,
                accepted_at_create: true,
                safe_to_upgrade: true,
                smallest_prefix: None,
            })
        })
        .collect()
}

/// The IN2 note: what the inputs describe, each subnet's and pool's figures, what is missing.
pub fn note(r: &Resolved, rows: &[Capacity]) -> Finding {
    let mut parts = Vec::new();
    for c in rows {
        let ns = c.max_nodes / 31;
        parts.push(format!(
            "subnet {} ({}): {} usable addresses, {} used by other tenants; {} nodes at 1 address each (kubenet, overlay), or {} nodes and {} pods on Node Subnet at maxPods 30",
            c.name, c.cidr, c.usable, c.other, c.max_nodes, ns, ns * 30
        ));
    }
    for p in &r.pools {
        let given = p.max_pods;
        let max = p.nodes_max();
        parts.push(format!(
            "pool {}: {} nodes at maximum, maxPods {}; per node {} addresses on Node Subnet ({} at maximum), 1 address on kubenet/overlay/Pod Subnet (kubenet and overlay also a /24 of the pod CIDR)",
            p.name,
            max,
            given,
            given + 1,
            max * (given + 1),
        ));
    }
    let missing = if r.pools.is_empty() {
        "the cluster (az aks show, an ARM/Bicep/Terraform cluster definition or a spec file) with its pools"
    } else {
        "the cluster's network profile (az aks show or the cluster definition) and the VNet the pools use"
    };
    Finding::new(
        RuleId::IN2,
        "inputs",
        format!(
            "The inputs describe no cluster, so only what they describe is planned: {}. Add {missing} to check the cluster's rules and capacity.",
            if parts.is_empty() {
                "nothing with addresses".to_string()
            } else {
                parts.join("; ")
            }
        ),
    )
}
