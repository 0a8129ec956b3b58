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

/// A finding on one of a pool's fields (`agentPoolProfiles[NAME].FIELD`).
fn on_pool(f: &mut Vec<Finding>, rule: RuleId, p: &RPool, field: &str, message: String) {
    f.push(Finding::new(rule, format!("{}.{field}", p.field), message));
}

/// C3, C5, C6 for one pool: its size, its autoscaler bounds, a system pool's nodes.
fn pool_counts(p: &RPool, f: &mut Vec<Finding>) {
    let (m, surge) = (p.nodes_max(), p.surge_nodes());
    let name = &p.name;
    if m > 1000 {
        let msg = format!("Pool {name} reaches {m} nodes; a node pool holds at most 1,000.");
        on_pool(f, RuleId::C3, p, "count", msg);
    } else if m + surge > 1000 {
        let msg = format!(
            "Pool {name}: {m} nodes plus {surge} surge nodes exceed 1,000; AKS rejects the upgrade."
        );
        on_pool(f, RuleId::C3, p, "upgradeSettings.maxSurge", msg);
    }
    if p.autoscale {
        autoscaler_bounds(p, f);
    }
    if p.system && p.count == 0 && p.min_count.unwrap_or(0) == 0 {
        let msg = format!("System pool {name} has no nodes; a system pool needs at least one.");
        on_pool(f, RuleId::C6, p, "count", msg);
    }
}

/// C6: a System pool, at most 100 pools.
fn cluster_pools(r: &Resolved, f: &mut Vec<Finding>) {
    if !r.pools.is_empty() && !r.pools.iter().any(|p| p.system) {
        let msg = "The cluster has no System pool; AKS needs at least one.";
        f.push(Finding::new(RuleId::C6, "agentPoolProfiles[*].mode", msg));
    }
    let n = r.pools.len();
    if n > 100 {
        let msg = format!("The cluster has {n} node pools; AKS allows up to 100.");
        f.push(Finding::new(RuleId::C6, "agentPoolProfiles", msg));
    }
}

/// C5: the autoscaler's bounds.
fn autoscaler_bounds(p: &RPool, f: &mut Vec<Finding>) {
    let name = &p.name;
    for (field, flag, v) in [
        ("minCount", "min-count", p.min_count),
        ("maxCount", "max-count", p.max_count),
    ] {
        if let Some(v) = v.filter(|v| *v > 1000) {
            let msg = format!("--{flag} must be in the range [0,1000]; pool {name} has {v}.");
            on_pool(f, RuleId::C5, p, field, msg);
        }
    }
    let (field, msg) = match (p.min_count, p.max_count) {
        (Some(min), Some(max)) if min > max => (
            "minCount",
            format!("Pool {name}: minCount {min} is greater than maxCount {max}."),
        ),
        (Some(min), Some(max)) if p.count < min || p.count > max => ("count", format!("node-count is not in range of min-count and max-count: pool {name} has count {} outside [{min}, {max}].", p.count)),
        (None, _) | (_, None) => (
            "enableAutoScaling",
            format!("Pool {name} enables the autoscaler without both minCount and maxCount."),
        ),
        _ => return,
    };
    on_pool(f, RuleId::C5, p, field, msg);
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
        pool_surge(p, f);
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

/// U1, U3, U5, U6 for one pool: its maxSurge and maxUnavailable.
fn pool_surge(p: &RPool, f: &mut Vec<Finding>) {
    const SURGE: &str = "upgradeSettings.maxSurge";
    const UNAVAILABLE: &str = "upgradeSettings.maxUnavailable";
    let name = &p.name;
    if p.surge == Surge::Invalid {
        let raw = &p.surge_raw;
        let msg = format!("--max-surge should be an int or percentage: pool {name} has '{raw}'.");
        on_pool(f, RuleId::U1, p, SURGE, msg);
    }
    let unavailable = p.max_unavailable.as_deref().map(Surge::parse);
    if unavailable == Some(Surge::Invalid) {
        let raw = p.max_unavailable.as_deref().unwrap_or("");
        let msg =
            format!("--max-unavailable should be an int or percentage: pool {name} has '{raw}'.");
        on_pool(f, RuleId::U1, p, UNAVAILABLE, msg);
    }
    let zero =
        |s: Option<Surge>| matches!(s, None | Some(Surge::Count(0)) | Some(Surge::Percent(0)));
    let zero_surge = matches!(p.surge, Surge::Count(0) | Surge::Percent(0));
    if zero_surge && zero(unavailable) && !p.spot {
        let msg = format!("Pool {name}: maxSurge is 0 while maxUnavailable is 0; maxSurge must be greater than 0.");
        on_pool(f, RuleId::U3, p, SURGE, msg);
    }
    if p.system && !zero(unavailable) {
        let msg = format!(
            "System pool {name} sets maxUnavailable, which is not allowed on system pools."
        );
        on_pool(f, RuleId::U3, p, UNAVAILABLE, msg);
    }
    let nodes = p.nodes_max();
    if let Surge::Percent(pc) = p.surge {
        if nodes > 500 && pc > 20 {
            let msg = format!("Pool {name} has {nodes} nodes; a maxSurge of 10–20% is recommended above 500 nodes (it has {pc}%).");
            on_pool(f, RuleId::U5, p, SURGE, msg);
        }
    }
    if p.spot && p.surge_nodes() == 0 && !zero_surge {
        let msg = format!("Spot pool {name} upgrades without surge nodes (cordon and evict); its maxSurge is not used.");
        on_pool(f, RuleId::U6, p, SURGE, msg);
    }
}
