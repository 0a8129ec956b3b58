//! Node pools: the cluster's merged with `az aks nodepool show` files, each pool's defaults
//! (mode, count, maxPods, surge, subnet) and its join to a subnet (docs/plan.md).

use std::collections::HashMap;

use super::{find_subnet, Defaults, NetModel, RPool, RSubnet, RVnet, Surge};
use crate::model::{Cluster, PlanInput, Pool};

/// What every pool's defaults depend on.
pub(super) struct Ctx<'a> {
    pub model: NetModel,
    pub managed_vnet: bool,
    /// The first pool's subnet: the cluster's, for pools that name none.
    pub first_ref: Option<String>,
    pub subnets: &'a [RSubnet],
    pub vnets: &'a [RVnet],
}

/// The cluster's pools, then `az aks nodepool show` files replacing or adding by name.
pub(super) fn merged(c: &Cluster, input: &PlanInput) -> Vec<Pool> {
    let mut pools = c.pools.clone();
    for p in &input.extra_pools {
        match pools
            .iter_mut()
            .find(|q| q.name.eq_ignore_ascii_case(&p.name))
        {
            Some(q) => *q = p.clone(),
            None => pools.push(p.clone()),
        }
    }
    pools
}

/// `count`: given; the autoscaler's minCount; else the CLI's 3.
fn count(p: &Pool, pf: &str, autoscale: bool, d: &mut Defaults) -> u64 {
    match p.count {
        Some(c) => c,
        None if autoscale => {
            let v = p.min_count.unwrap_or(1);
            d.add(
                format!("{pf}.count"),
                v.to_string(),
                "absent: the autoscaler starts at minCount",
            );
            v
        }
        None => {
            d.add(
                format!("{pf}.count"),
                "3",
                "absent: az aks create --node-count default",
            );
            3
        }
    }
}

/// The pool's node subnet reference and its index among the known subnets.
fn node_subnet(p: &Pool, pf: &str, ctx: &Ctx, d: &mut Defaults) -> (Option<String>, Option<usize>) {
    let reference = match &p.vnet_subnet_id {
        Some(r) => Some(r.clone()),
        None if ctx.managed_vnet => None,
        None => {
            if let Some(r) = &ctx.first_ref {
                d.add(
                    format!("{pf}.vnetSubnetID"),
                    r.clone(),
                    "absent: the cluster's subnet (the first pool's)",
                );
            }
            ctx.first_ref.clone()
        }
    };
    let index = if ctx.managed_vnet {
        ctx.subnets.len().checked_sub(1)
    } else {
        reference
            .as_deref()
            .and_then(|r| find_subnet(ctx.subnets, ctx.vnets, r))
    };
    (reference, index)
}

/// Pool `i` with its defaults applied and its subnets joined.
pub(super) fn pool(i: usize, p: &Pool, ctx: &Ctx, d: &mut Defaults) -> RPool {
    let pf = format!("agentPoolProfiles[{}]", p.name);
    let system = match p.mode.as_deref() {
        Some(m) => m.eq_ignore_ascii_case("system"),
        None => {
            let first = i == 0;
            d.add(
                format!("{pf}.mode"),
                if first { "System" } else { "User" },
                "absent: the first pool is the system pool",
            );
            first
        }
    };
    let autoscale = p
        .enable_auto_scaling
        .unwrap_or(p.max_count.is_some() && p.min_count.is_some());
    let count = count(p, &pf, autoscale, d);
    let max_pods = p.max_pods.unwrap_or_else(|| {
        let v = ctx.model.default_max_pods();
        d.add(
            format!("{pf}.maxPods"),
            v.to_string(),
            format!(
                "absent: default for {} (docs/plan.md, defaults)",
                ctx.model.label()
            ),
        );
        v
    });
    let surge_raw = p.max_surge.clone().unwrap_or_else(|| {
        d.add(
            format!("{pf}.upgradeSettings.maxSurge"),
            "10%",
            "absent: the API's default since 2025-03 (docs/plan.md, defaults)",
        );
        "10%".into()
    });
    let (node_subnet_ref, node_subnet) = node_subnet(p, &pf, ctx, d);
    RPool {
        name: p.name.clone(),
        system,
        windows: p
            .os_type
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("windows")),
        count,
        min_count: p.min_count,
        max_count: p.max_count,
        autoscale,
        max_pods,
        node_subnet,
        node_subnet_ref,
        pod_subnet: p
            .pod_subnet_id
            .as_deref()
            .and_then(|r| find_subnet(ctx.subnets, ctx.vnets, r)),
        pod_subnet_ref: p.pod_subnet_id.clone(),
        pod_ip_allocation_mode: p.pod_ip_allocation_mode.clone(),
        surge: Surge::parse(&surge_raw),
        surge_raw,
        max_unavailable: p.max_unavailable.clone(),
        spot: p.spot,
        availability_set: p.availability_set,
        field: pf,
    }
}

/// A live cluster's own nodes are among the subnet's ipConfigurations: count only the rest
/// as other tenants (docs/plan.md, decisions).
pub(super) fn discount_own_nodes(
    input: &PlanInput,
    pools: &[RPool],
    subnets: &mut [RSubnet],
    model: NetModel,
) {
    let mut own: HashMap<usize, u64> = HashMap::new();
    for p in pools {
        if let Some(s) = p.node_subnet {
            let cost = if model == NetModel::NodeSubnet {
                p.node_subnet_per_node()
            } else {
                1
            };
            *own.entry(s).or_default() += p.count * cost;
        }
        if let Some(s) = p.pod_subnet {
            *own.entry(s).or_default() += p.count * p.pod_subnet_per_node();
        }
    }
    for (i, s) in subnets.iter_mut().enumerate() {
        let given_other = input
            .vnets
            .get(s.vnet)
            .and_then(|v| v.subnets.iter().find(|x| x.name == s.name))
            .and_then(|x| x.other_ips);
        if let (Some(ipc), None) = (s.ip_configurations, given_other) {
            s.other = ipc.saturating_sub(own.get(&i).copied().unwrap_or(0));
        }
    }
}
