//! Node counts, tier limits and upgrade surge (C*, U*).

use crate::catalogue::RuleId;
use crate::model::Tier;
use crate::report::Finding;
use crate::resolve::{NetModel, RPool, Resolved, Surge};

pub(super) fn counts(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    let total: u64 = r.pools.iter().map(|p| p.nodes_max()).sum();
    let surge: u64 = r.pools.iter().map(|p| p.surge_nodes()).sum();
    if model == NetModel::Kubenet {
        if total > 400 {
            f.push(Finding::new(RuleId::C1, "agentPoolProfiles[*].maxCount", format!("Cluster's upper limit node count is {total} which exceeds the limit for Kubenet 400. If Autoscaler is enabled, the max-count from each nodepool is counted towards this total.")));
        } else if total + surge > 400 {
            f.push(Finding::new(RuleId::C8, "agentPoolProfiles[*].upgradeSettings.maxSurge", format!("kubenet: {total} nodes plus {surge} surge nodes need {} routes of the 400 a route table holds; plan clusters of this size on Azure CNI or overlay.", total + surge)));
        }
    }
    let limit = r.tier.node_limit();
    if total > limit {
        f.push(Finding::new(RuleId::C2, "sku.tier", format!("The cluster reaches {total} nodes at the autoscaler maximum; the {} tier allows {limit}.", tier_name(r.tier))));
    } else if total + surge > limit {
        f.push(Finding::new(RuleId::C4, "sku.tier", format!("{total} nodes plus {surge} surge nodes exceed the {} tier's {limit} nodes: upgrades are blocked until the cluster shrinks.", tier_name(r.tier))));
    }
    for p in &r.pools {
        pool_counts(p, f);
    }
    cluster_pools(r, f);
    if r.network_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("azure"))
        && total > 250
    {
        f.push(Finding::new(RuleId::C7, "networkProfile.networkPolicy", format!("Azure network policy manager (NPM) supports at most 250 nodes; the cluster reaches {total}.")));
    }
}

/// C3, C5, C6 for one pool: its size, its autoscaler bounds, a system pool's nodes.
fn pool_counts(p: &RPool, f: &mut Vec<Finding>) {
    let m = p.nodes_max();
    if m > 1000 {
        f.push(Finding::new(
            RuleId::C3,
            format!("{}.count", p.field),
            format!(
                "Pool {} reaches {m} nodes; a node pool holds at most 1,000.",
                p.name
            ),
        ));
    } else if m + p.surge_nodes() > 1000 {
        f.push(Finding::new(
            RuleId::C3,
            format!("{}.upgradeSettings.maxSurge", p.field),
            format!(
                "Pool {}: {m} nodes plus {} surge nodes exceed 1,000; AKS rejects the upgrade.",
                p.name,
                p.surge_nodes()
            ),
        ));
    }
    if p.autoscale {
        autoscaler_bounds(p, f);
    }
    if p.system && p.count == 0 && p.min_count.unwrap_or(0) == 0 {
        f.push(Finding::new(
            RuleId::C6,
            format!("{}.count", p.field),
            format!(
                "System pool {} has no nodes; a system pool needs at least one.",
                p.name
            ),
        ));
    }
}

/// C6: a System pool, at most 100 pools.
fn cluster_pools(r: &Resolved, f: &mut Vec<Finding>) {
    if !r.pools.is_empty() && !r.pools.iter().any(|p| p.system) {
        f.push(Finding::new(
            RuleId::C6,
            "agentPoolProfiles[*].mode",
            "The cluster has no System pool; AKS needs at least one.".to_string(),
        ));
    }
    if r.pools.len() > 100 {
        f.push(Finding::new(
            RuleId::C6,
            "agentPoolProfiles",
            format!(
                "The cluster has {} node pools; AKS allows up to 100.",
                r.pools.len()
            ),
        ));
    }
}

/// C5: the autoscaler's bounds.
fn autoscaler_bounds(p: &RPool, f: &mut Vec<Finding>) {
    for (name, v) in [("minCount", p.min_count), ("maxCount", p.max_count)] {
        if let Some(v) = v.filter(|v| *v > 1000) {
            f.push(Finding::new(
                RuleId::C5,
                format!("{}.{name}", p.field),
                format!(
                    "--{} must be in the range [0,1000]; pool {} has {v}.",
                    if name == "minCount" {
                        "min-count"
                    } else {
                        "max-count"
                    },
                    p.name
                ),
            ));
        }
    }
    match (p.min_count, p.max_count) {
        (Some(min), Some(max)) if min > max => {
            f.push(Finding::new(
                RuleId::C5,
                format!("{}.minCount", p.field),
                format!(
                    "Pool {}: minCount {min} is greater than maxCount {max}.",
                    p.name
                ),
            ));
        }
        (Some(min), Some(max)) if p.count < min || p.count > max => {
            f.push(Finding::new(RuleId::C5, format!("{}.count", p.field), format!("node-count is not in range of min-count and max-count: pool {} has count {} outside [{min}, {max}].", p.name, p.count)));
        }
        (None, _) | (_, None) => {
            f.push(Finding::new(
                RuleId::C5,
                format!("{}.enableAutoScaling", p.field),
                format!(
                    "Pool {} enables the autoscaler without both minCount and maxCount.",
                    p.name
                ),
            ));
        }
        _ => {}
    }
}

pub(super) fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Free => "Free",
        Tier::Standard => "Standard",
        Tier::Premium => "Premium",
    }
}

pub(super) fn surge(r: &Resolved, f: &mut Vec<Finding>) {
    for p in &r.pools {
        let sf = format!("{}.upgradeSettings.maxSurge", p.field);
        if p.surge == Surge::Invalid {
            f.push(Finding::new(
                RuleId::U1,
                &sf,
                format!(
                    "--max-surge should be an int or percentage: pool {} has '{}'.",
                    p.name, p.surge_raw
                ),
            ));
        }
        let unavailable = p.max_unavailable.as_deref().map(Surge::parse);
        if unavailable == Some(Surge::Invalid) {
            f.push(Finding::new(
                RuleId::U1,
                format!("{}.upgradeSettings.maxUnavailable", p.field),
                format!(
                    "--max-unavailable should be an int or percentage: pool {} has '{}'.",
                    p.name,
                    p.max_unavailable.as_deref().unwrap_or("")
                ),
            ));
        }
        let zero =
            |s: Option<Surge>| matches!(s, None | Some(Surge::Count(0)) | Some(Surge::Percent(0)));
        if matches!(p.surge, Surge::Count(0) | Surge::Percent(0)) && zero(unavailable) && !p.spot {
            f.push(Finding::new(RuleId::U3, &sf, format!("Pool {}: maxSurge is 0 while maxUnavailable is 0; maxSurge must be greater than 0.", p.name)));
        }
        if p.system && !zero(unavailable) {
            f.push(Finding::new(
                RuleId::U3,
                format!("{}.upgradeSettings.maxUnavailable", p.field),
                format!(
                    "System pool {} sets maxUnavailable, which is not allowed on system pools.",
                    p.name
                ),
            ));
        }
        if p.nodes_max() > 500 {
            if let Surge::Percent(pc) = p.surge {
                if pc > 20 {
                    f.push(Finding::new(RuleId::U5, &sf, format!("Pool {} has {} nodes; a maxSurge of 10–20% is recommended above 500 nodes (it has {pc}%).", p.name, p.nodes_max())));
                }
            }
        }
        if p.spot && p.surge_nodes() == 0 && !matches!(p.surge, Surge::Count(0) | Surge::Percent(0))
        {
            f.push(Finding::new(RuleId::U6, &sf, format!("Spot pool {} upgrades without surge nodes (cordon and evict); its maxSurge is not used.", p.name)));
        }
    }
    // U4: room for surge, per node subnet and per pod CIDR (safe to upgrade vs accepted at create).
    for c in crate::capacity::ranges(r) {
        if c.accepted_at_create && !c.safe_to_upgrade {
            let short =
                c.required_with_surge + c.other - c.usable.min(c.required_with_surge + c.other);
            f.push(Finding::new(RuleId::U4, c.name.clone(), format!("{} {} fits the autoscaler maximum ({} addresses) but not the upgrade surge ({} addresses, {short} short): an upgrade fails with SubnetIsFull.", range_word(&c), c.cidr, c.required, c.required_with_surge)));
        }
    }
}

pub(super) fn range_word(c: &crate::report::Capacity) -> &'static str {
    match c.kind {
        crate::report::RangeKind::NodeSubnet => "Subnet",
        crate::report::RangeKind::PodCidr => "Pod CIDR",
        crate::report::RangeKind::PodSubnet => "Pod subnet",
    }
}
