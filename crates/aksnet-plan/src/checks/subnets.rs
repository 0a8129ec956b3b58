//! Subnets: size, joins, overlaps, delegations, route tables (N*, U2, U3).

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::INSUFFICIENT_TAIL;
use crate::catalogue::RuleId;
use crate::net;
use crate::report::Finding;
use crate::resolve::{NetModel, RPool, Resolved};

pub(super) fn subnets(r: &Resolved, f: &mut Vec<Finding>) {
    node_subnets(r, f);
    kubenet_route_table(r, f);
    pod_subnets(r, f);
    overlay_label_names(r, f);
    api_server_subnet(r, f);
    vnet_address_limit(r, f);
    appgw_subnet(r, f);
}

/// Each node subnet with the pools in it.
fn node_subnets(r: &Resolved, f: &mut Vec<Finding>) {
    // N1/N2: the create-time check per node subnet, at the autoscaler maximum, no surge.
    let mut by_subnet: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, p) in r.pools.iter().enumerate() {
        if let Some(s) = p.node_subnet {
            by_subnet.entry(s).or_default().push(i);
        }
    }
    let mut keys: Vec<usize> = by_subnet.keys().copied().collect();
    keys.sort_unstable();
    for si in keys {
        let pools: Vec<&RPool> = by_subnet
            .get(&si)
            .map(|v| v.iter().filter_map(|i| r.pools.get(*i)).collect())
            .unwrap_or_default();
        node_subnet(r, si, &pools, f);
    }
}

/// One node subnet: N1/N2 at create, N3 for a live cluster's next upgrade, N4, N5, N12, N13.
fn node_subnet(r: &Resolved, si: usize, pools: &[&RPool], f: &mut Vec<Finding>) {
    let model = r.model();
    let Some(s) = r.subnets.get(si) else { return };
    let Some(v4) = s.v4() else { return };
    let usable = net::azure_usable(v4.prefix_len());
    let avail = usable.saturating_sub(s.other);
    let need: u64 = pools.iter().map(|p| p.nodes_max() * r.node_cost(p)).sum();
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    let field = pools
        .first()
        .map(|p| format!("{}.vnetSubnetID", p.field))
        .unwrap_or_else(|| s.field.clone());
    if need > avail {
        let id = if model == NetModel::NodeSubnet {
            RuleId::N1
        } else {
            RuleId::N2
        };
        f.push(Finding::new(id, &field, format!("Pre-allocated IPs {need} exceeds IPs available {avail} in Subnet Cidr {v4}, Subnet Name {}. {INSUFFICIENT_TAIL} (pools: {})", s.name, names.join(", "))));
    }
    // N3: a live subnet must have room for the next upgrade's surge (operation table,
    // docs/azure.md#up-front-reservation).
    if r.live {
        if let Some(used) = s.ip_configurations {
            let free = usable.saturating_sub(used);
            let surge_need: u64 = pools.iter().map(|p| p.surge_nodes() * r.node_cost(p)).sum();
            if surge_need > free {
                f.push(Finding::new(RuleId::N3, &field, format!("Subnet {} with address prefix {v4} does not have enough capacity for {surge_need} IP addresses.", s.name)));
            }
        }
    }
    if !s.delegations.is_empty() {
        f.push(Finding::new(
            RuleId::N4,
            &s.field,
            format!(
                "Subnet {} is delegated to {}; a node pool subnet can't be a delegated subnet.",
                s.name,
                s.delegations.join(", ")
            ),
        ));
    }
    if s.other > 0 {
        f.push(Finding::new(RuleId::N5, &s.field, format!("{} addresses of subnet {} are used by other tenants (VMs, internal load balancers, private endpoints); they are counted.", s.other, s.name)));
    }
    if s.nsg.is_some() {
        f.push(Finding::new(RuleId::N12, &s.field, format!("Subnet {} has the NSG {}; AKS does not manage it: it must allow node-to-node traffic{}.", s.name, s.nsg.as_deref().unwrap_or(""), if model == NetModel::Overlay { " and node-to-pod-CIDR and pod-to-pod traffic" } else { "" })));
    }
    for o in r.on_prem.iter() {
        if let Some(on) = o.parsed {
            if net::overlaps(&IpNet::V4(v4), &on) {
                f.push(Finding::new(RuleId::N13, &s.field, format!("The node subnet {v4} lies in the on-premises range {on}; traffic to it would be routed on-premises. Put AKS in a range on-premises does not advertise (Microsoft Learn's legacy CNI page suggests 172.16.0.0/16 when on-premises uses 10.0.0.0/8).")));
            }
        }
    }
}

/// N6: kubenet uses one route table for the whole cluster.
fn kubenet_route_table(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    if model == NetModel::Kubenet {
        let tables: HashSet<String> = r
            .pools
            .iter()
            .filter_map(|p| p.node_subnet.and_then(|s| r.subnets.get(s)))
            .map(|s| {
                s.route_table
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            })
            .collect();
        if tables.len() > 1 {
            let mut t: Vec<String> = tables
                .into_iter()
                .map(|x| if x.is_empty() { "(none)".into() } else { x })
                .collect();
            t.sort();
            f.push(Finding::new(RuleId::N6, "agentPoolProfiles[*].vnetSubnetID", format!("The kubenet pools' subnets use different route tables ({}); a kubenet cluster uses exactly one route table.", t.join(", "))));
        }
    }
}

/// N7: pod subnets are not node subnets; static and dynamic do not mix in one subnet.
fn pod_subnets(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    if model == NetModel::PodSubnet {
        let node_subnets: HashSet<usize> = r.pools.iter().filter_map(|p| p.node_subnet).collect();
        let mut modes: HashMap<usize, HashSet<bool>> = HashMap::new();
        for p in &r.pools {
            if let Some(ps) = p.pod_subnet {
                if node_subnets.contains(&ps) {
                    f.push(Finding::new(RuleId::N7, format!("{}.podSubnetID", p.field), format!("Pool {}'s pod subnet is also a node subnet; VMs cannot be placed in a pod subnet.", p.name)));
                }
                modes.entry(ps).or_default().insert(p.static_block());
            }
        }
        for (ps, m) in modes {
            if m.len() > 1 {
                if let Some(s) = r.subnets.get(ps) {
                    f.push(Finding::new(RuleId::N7, &s.field, format!("Pod subnet {} serves both StaticBlock and DynamicIndividual pools; a subnet is one or the other.", s.name)));
                }
            }
        }
    }
}

/// N8: overlay names become node labels.
fn overlay_label_names(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    if model == NetModel::Overlay {
        let mut seen = HashSet::new();
        for p in &r.pools {
            if let Some(s) = p.node_subnet.and_then(|i| r.subnets.get(i)) {
                let v = r.vnets.get(s.vnet);
                let names = [
                    ("subnet", Some(s.name.as_str())),
                    ("VNet", v.map(|x| x.name.as_str())),
                    (
                        "resource group",
                        v.and_then(|x| x.resource_group.as_deref()),
                    ),
                ];
                for (what, n) in names {
                    if let Some(n) = n {
                        if n.chars().count() > 63 && seen.insert((what, n.to_string())) {
                            f.push(Finding::new(RuleId::N8, &s.field, format!("The {what} name '{n}' has {} characters; overlay needs at most 63 (it becomes a node label).", n.chars().count())));
                        }
                    }
                }
            }
        }
    }
}

/// N9: the API server VNet integration subnet.
fn api_server_subnet(r: &Resolved, f: &mut Vec<Finding>) {
    if let Some(reference) = &r.api_server_subnet_ref {
        if let Some(s) = r.find_subnet(reference).and_then(|i| r.subnets.get(i)) {
            let delegated = s
                .delegations
                .iter()
                .any(|d| d.eq_ignore_ascii_case("Microsoft.ContainerService/managedClusters"));
            if !delegated {
                f.push(Finding::new(RuleId::N9, "apiServerAccessProfile.subnetId", format!("The API server subnet {} must be delegated to Microsoft.ContainerService/managedClusters.", s.name)));
            }
            if let Some(v4) = s.v4() {
                if v4.prefix_len() > 28 {
                    f.push(Finding::new(
                        RuleId::N9,
                        "apiServerAccessProfile.subnetId",
                        format!(
                            "The API server subnet {} is {v4}; it must be /28 or larger.",
                            s.name
                        ),
                    ));
                }
            }
        }
    }
}

/// N10: 65,536 configured addresses per VNet.
fn vnet_address_limit(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    let mut per_vnet: HashMap<usize, u64> = HashMap::new();
    for p in &r.pools {
        let cost = match model {
            NetModel::NodeSubnet => p.node_subnet_per_node(),
            NetModel::PodSubnet if !p.static_block() => p.node_subnet_per_node(),
            NetModel::PodSubnet => 1 + p.static_blocks(),
            _ => 1,
        };
        if let Some(s) = p.node_subnet.and_then(|i| r.subnets.get(i)) {
            *per_vnet.entry(s.vnet).or_default() += p.nodes_max() * cost;
        }
    }
    for (vi, total) in per_vnet {
        if total > 65_536 {
            if let Some(v) = r.vnets.get(vi) {
                f.push(Finding::new(RuleId::N10, &v.field, format!("The plan configures {total} IP addresses in VNet {} at the autoscaler maximum; a VNet is limited to 65,536.", v.name)));
            }
        }
    }
}

/// N11: the App Gateway add-on subnet inside the cluster VNet.
fn appgw_subnet(r: &Resolved, f: &mut Vec<Finding>) {
    if let Some(ag) = &r.appgw_subnet_cidr {
        if let Some(n) = ag.parsed {
            let vnet_of_cluster: HashSet<usize> = r
                .pools
                .iter()
                .filter_map(|p| p.node_subnet.and_then(|i| r.subnets.get(i)).map(|s| s.vnet))
                .collect();
            let prefixes: Vec<IpNet> = r
                .vnets
                .iter()
                .enumerate()
                .filter(|(i, _)| vnet_of_cluster.contains(i))
                .flat_map(|(_, v)| v.prefixes.iter().filter_map(|p| p.parsed))
                .collect();
            if !prefixes.is_empty() && !prefixes.iter().any(|p| net::covers(p, &n)) {
                let list: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
                f.push(Finding::new(RuleId::N11, &ag.field, format!("Subnet Prefix '{}' of the Application Gateway add-on is not contained within the AKS Agent Pool's Virtual Network address prefixes '[{}]'.", ag.raw, list.join(", "))));
            }
        }
    }
}
