//! Capacity per node subnet, pod CIDR and pod subnet, the count limits, and the growth
//! projection (docs/plan.md). Pure.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::net;
use crate::report::{Capacity, ClusterCapacity, GrowthReport, Limit, RangeKind};
use crate::resolve::{NetModel, RPool, Resolved};

/// What a range is, before its pools are counted.
struct Head {
    name: String,
    kind: RangeKind,
    cidr: String,
    usable: u64,
    other: u64,
    /// An Azure subnet (gets a smallest-prefix suggestion).
    azure: bool,
}

struct Acc<'a> {
    pools: Vec<&'a RPool>,
}

fn entry(h: Head, pools: &[&RPool], cost: &dyn Fn(&RPool) -> u64) -> Capacity {
    let Head {
        name,
        kind,
        cidr,
        usable,
        other,
        azure,
    } = h;
    let per_node = pools.iter().map(|p| cost(p)).max().unwrap_or(1).max(1);
    let required_now: u64 = pools.iter().map(|p| p.count * cost(p)).sum();
    let required: u64 = pools.iter().map(|p| p.nodes_max() * cost(p)).sum();
    let required_with_surge: u64 = pools
        .iter()
        .map(|p| (p.nodes_max() + p.surge_nodes()) * cost(p))
        .sum();
    let avail = usable.saturating_sub(other);
    let free = avail as i64 - required_with_surge as i64;
    let max_nodes = avail / per_node;
    let pods_per_node = pools.iter().map(|p| p.max_pods).max().unwrap_or(0);
    Capacity {
        name,
        kind,
        cidr,
        pools: pools.iter().map(|p| p.name.clone()).collect(),
        usable,
        other,
        per_node,
        required_now,
        required,
        required_with_surge,
        free,
        max_nodes,
        max_pods: max_nodes * pods_per_node,
        additional_nodes: if free > 0 { free as u64 / per_node } else { 0 },
        accepted_at_create: required <= avail,
        safe_to_upgrade: required_with_surge <= avail,
        smallest_prefix: if azure {
            net::smallest_azure_prefix(required_with_surge + other)
        } else {
            None
        },
    }
}

/// Capacity of every range the cluster's pools use, node subnets first.
pub fn ranges(r: &Resolved) -> Vec<Capacity> {
    let model = r.model();
    let mut out = Vec::new();
    let mut node: BTreeMap<usize, Acc> = BTreeMap::new();
    let mut pod: BTreeMap<usize, Acc> = BTreeMap::new();
    for p in &r.pools {
        if let Some(s) = p.node_subnet {
            node.entry(s)
                .or_insert_with(|| Acc { pools: Vec::new() })
                .pools
                .push(p);
        }
        if model == NetModel::PodSubnet {
            if let Some(s) = p.pod_subnet {
                pod.entry(s)
                    .or_insert_with(|| Acc { pools: Vec::new() })
                    .pools
                    .push(p);
            }
        }
    }
    let node_cost = |p: &RPool| r.node_cost(p);
    for (si, acc) in &node {
        let Some(s) = r.subnets.get(*si) else {
            continue;
        };
        let Some(v4) = s.v4() else { continue };
        out.push(entry(
            Head {
                name: s.name.clone(),
                kind: RangeKind::NodeSubnet,
                cidr: v4.to_string(),
                usable: net::azure_usable(v4.prefix_len()),
                other: s.other,
                azure: true,
            },
            &acc.pools,
            &node_cost,
        ));
    }
    if model.uses_pod_cidr() {
        out.extend(pod_cidr_row(r));
    }
    for (si, acc) in &pod {
        out.extend(pod_subnet_row(r, *si, &acc.pools));
    }
    out
}

/// The pod CIDR row (kubenet, overlay): a /24 per node.
fn pod_cidr_row(r: &Resolved) -> Option<Capacity> {
    let Some(IpNet::V4(pc)) = r.v4_pod_cidr().and_then(|c| c.parsed) else {
        return None;
    };
    let pc = pc.trunc();
    let all: Vec<&RPool> = r.pools.iter().collect();
    // A /24 (256 addresses) per node; pod CIDRs have no Azure reservation.
    let usable = if pc.prefix_len() <= 24 {
        net::size_v4(pc.prefix_len())
    } else {
        0
    };
    Some(entry(
        Head {
            name: "networkProfile.podCidr".into(),
            kind: RangeKind::PodCidr,
            cidr: pc.to_string(),
            usable,
            other: 0,
            azure: false,
        },
        &all,
        &|_| 256,
    ))
}

/// A pod subnet's row (Pod Subnet): 16 addresses per node, or static /28 blocks.
fn pod_subnet_row(r: &Resolved, si: usize, pools: &[&RPool]) -> Option<Capacity> {
    let s = r.subnets.get(si)?;
    let v4 = s.v4()?;
    let static_block = pools.iter().all(|p| p.static_block());
    // Dynamic: 16 addresses per node at start (docs/plan.md); static: whole /28 blocks,
    // less the two blocks that hold Azure's reserved addresses (an inference).
    let usable = if !static_block {
        net::azure_usable(v4.prefix_len())
    } else if v4.prefix_len() <= 28 {
        16 * (1u64 << (28 - v4.prefix_len())).saturating_sub(2)
    } else {
        0
    };
    Some(entry(
        Head {
            name: s.name.clone(),
            kind: RangeKind::PodSubnet,
            cidr: v4.to_string(),
            usable,
            other: s.other,
            azure: true,
        },
        pools,
        &RPool::pod_subnet_per_node,
    ))
}

pub fn limits(r: &Resolved) -> Vec<Limit> {
    let total: u64 = r.pools.iter().map(|p| p.nodes_max()).sum();
    let surge: u64 = r.pools.iter().map(|p| p.surge_nodes()).sum();
    let mk = |name: String, limit: u64, req: u64, with: u64| Limit {
        name,
        limit,
        required: req,
        required_with_surge: with,
        headroom_nodes: limit as i64 - with as i64,
    };
    let mut out = Vec::new();
    if r.model() == NetModel::Kubenet {
        out.push(mk(
            "kubenet route table (400 routes)".into(),
            400,
            total,
            total + surge,
        ));
    }
    out.push(mk(
        format!(
            "cluster node limit ({} tier)",
            format!("{:?}", r.tier).to_ascii_lowercase()
        ),
        r.tier.node_limit(),
        total,
        total + surge,
    ));
    for p in &r.pools {
        out.push(mk(
            format!("pool {} (1,000 nodes)", p.name),
            1000,
            p.nodes_max(),
            p.nodes_max() + p.surge_nodes(),
        ));
    }
    if r.network_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("azure"))
    {
        out.push(mk("Azure NPM (250 nodes)".into(), 250, total, total));
    }
    out
}

pub fn cluster(r: &Resolved, ranges: &[Capacity], limits: &[Limit]) -> ClusterCapacity {
    let nodes_now = r.pools.iter().map(|p| p.count).sum();
    let nodes_max: u64 = r.pools.iter().map(|p| p.nodes_max()).sum();
    let surge: u64 = r.pools.iter().map(|p| p.surge_nodes()).sum();
    let pods_max = r.pools.iter().map(|p| p.nodes_max() * p.max_pods).sum();
    let mut best: Option<(i64, String)> = None;
    let mut consider = |h: i64, name: String| {
        if best.as_ref().is_none_or(|(b, _)| h < *b) {
            best = Some((h, name));
        }
    };
    for c in ranges {
        let h = if c.free >= 0 {
            c.free / c.per_node as i64
        } else {
            -((-c.free + c.per_node as i64 - 1) / c.per_node as i64)
        };
        let what = match c.kind {
            RangeKind::NodeSubnet => "subnet",
            RangeKind::PodCidr => "pod CIDR",
            RangeKind::PodSubnet => "pod subnet",
        };
        consider(h, format!("{what} {} ({})", c.name, c.cidr));
    }
    for l in limits {
        consider(l.headroom_nodes, l.name.clone());
    }
    let min_pods = r.pools.iter().map(|p| p.max_pods).min().unwrap_or(0);
    let total = best.as_ref().map(|(h, _)| {
        let nodes = (nodes_max + surge) as i64 + h;
        let pods = pods_max as i64 + h * min_pods as i64;
        (nodes.max(0) as u64, pods.max(0) as u64)
    });
    ClusterCapacity {
        max_nodes_total: total.map(|t| t.0),
        max_pods_total: total.map(|t| t.1),
        model: r.model().label().to_string(),
        nodes_now,
        nodes_max,
        nodes_max_with_surge: nodes_max + surge,
        pods_max,
        accepted_at_create: ranges.iter().all(|c| c.accepted_at_create)
            && limits.iter().all(|l| l.required <= l.limit),
        safe_to_upgrade: ranges.iter().all(|c| c.safe_to_upgrade)
            && limits.iter().all(|l| l.required_with_surge <= l.limit),
        headroom_nodes: best.as_ref().map(|b| b.0),
        binding_constraint: best.map(|b| b.1),
    }
}

/// `--growth`: nodes or pods per month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    NodesPerMonth(f64),
    PodsPerMonth(f64),
}

impl Growth {
    /// "20/month", "20 nodes/month", "500pods/month", "5/week", "120/year".
    pub fn parse(s: &str) -> Option<Growth> {
        let t = s.trim().to_ascii_lowercase();
        let (amount, period) = t.split_once('/')?;
        let per_month = match period.trim() {
            "month" | "mo" | "m" => 1.0,
            "week" | "w" => 52.0 / 12.0,
            "year" | "y" => 1.0 / 12.0,
            "day" | "d" => 365.0 / 12.0,
            _ => return None,
        };
        let a = amount.trim();
        let (num, pods) = if let Some(n) = a.strip_suffix("pods").or_else(|| a.strip_suffix("pod"))
        {
            (n, true)
        } else if let Some(n) = a.strip_suffix("nodes").or_else(|| a.strip_suffix("node")) {
            (n, false)
        } else {
            (a, false)
        };
        let v: f64 = num.trim().parse().ok()?;
        if !v.is_finite() || v <= 0.0 {
            return None;
        }
        Some(if pods {
            Growth::PodsPerMonth(v * per_month)
        } else {
            Growth::NodesPerMonth(v * per_month)
        })
    }
}

/// When the binding constraint runs out at a growth rate. Every constraint is assumed to
/// receive all the growth (the worst case; docs/plan.md decisions).
pub fn growth(r: &Resolved, cl: &ClusterCapacity, g: Growth, raw: &str) -> GrowthReport {
    let nodes_max: u64 = r.pools.iter().map(|p| p.nodes_max()).sum();
    let weighted: u64 = r.pools.iter().map(|p| p.nodes_max() * p.max_pods).sum();
    let pods_per_node = if nodes_max > 0 {
        weighted as f64 / nodes_max as f64
    } else {
        r.pools.first().map(|p| p.max_pods as f64).unwrap_or(30.0)
    };
    let nodes_per_month = match g {
        Growth::NodesPerMonth(n) => n,
        Growth::PodsPerMonth(p) => p / pods_per_node.max(1.0),
    };
    let months = cl.headroom_nodes.map(|h| {
        if h <= 0 {
            0.0
        } else {
            ((h as f64 / nodes_per_month) * 10.0).floor() / 10.0
        }
    });
    let message = match (months, &cl.binding_constraint) {
        (Some(m), Some(b)) if m <= 0.0 => format!("{b} has no room left for growth."),
        (Some(m), Some(b)) => format!(
            "At {raw} ({nodes_per_month:.1} nodes/month), {b} runs out after {m:.1} months ({} more nodes fit after maximum plus surge).",
            cl.headroom_nodes.unwrap_or(0)
        ),
        _ => "No constraint to project.".to_string(),
    };
    GrowthReport {
        rate: raw.to_string(),
        nodes_per_month,
        binding_constraint: cl.binding_constraint.clone(),
        headroom_nodes: cl.headroom_nodes,
        months,
        message,
    }
}
