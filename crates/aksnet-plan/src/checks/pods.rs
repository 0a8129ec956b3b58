//! Pod addresses: the pod CIDR, maxPods and Pod Subnet (P*, M*, PS*).

use std::collections::HashMap;

use ipnet::IpNet;

use super::{subnet_ranges, INSUFFICIENT_TAIL};
use crate::catalogue::RuleId;
use crate::net;
use crate::report::Finding;
use crate::resolve::{NetModel, Resolved};

pub(super) fn pod_cidr(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    if matches!(model, NetModel::NodeSubnet | NetModel::PodSubnet) && r.pod_cidr_explicit {
        f.push(Finding::new(RuleId::P1, "networkProfile.podCidr", "Please specify network plugin mode `overlay` when using pod_cidr or use network plugin `kubenet`. For more information about Azure CNI Overlay please see https://aka.ms/aksoverlay".to_string()));
    }
    if !model.uses_pod_cidr() {
        return;
    }
    let subs = subnet_ranges(r);
    for p in &r.pod_cidrs {
        let Some(n) = p.parsed else { continue };
        let mut hit = false;
        for &(sn, _, managed) in &subs {
            if net::overlaps(&n, &sn) {
                hit = true;
                let id = if managed { RuleId::R5 } else { RuleId::P3 };
                f.push(Finding::new(
                    id,
                    &p.field,
                    format!(
                        "NetworkProfile CIDR {} overlaps with reserved VNET CIDR {sn}",
                        p.raw
                    ),
                ));
            }
        }
        if !hit {
            for v in r.vnets.iter().filter(|v| !v.managed) {
                for vp in v.prefixes.iter().filter_map(|x| x.parsed) {
                    if net::overlaps(&n, &vp) {
                        f.push(Finding::new(RuleId::P3a, &p.field, format!("The pod CIDR {} lies in the address space {vp} of VNet {} without touching a subnet; accepted since 2024-10-25, but a subnet added there later collides.", p.raw, v.name)));
                    }
                }
            }
        }
        for (other, what) in r.external_ranges() {
            if let Some(o) = other.parsed {
                if net::overlaps(&n, &o) {
                    f.push(Finding::new(RuleId::P4, &p.field, format!("The pod CIDR {} overlaps the {what} {o} ({}): pods could not reach it.", p.raw, other.field)));
                }
            }
        }
    }
    // P2: one /24 per node at the autoscaler maximum (the RP's create check; surge is U4).
    if let Some(p) = r.v4_pod_cidr() {
        if let Some(IpNet::V4(n)) = p.parsed {
            let nodes: u64 = r.pools.iter().map(|x| x.nodes_max()).sum();
            let avail = net::size_v4(n.prefix_len());
            let need = nodes * 256;
            if n.prefix_len() > 24 {
                f.push(Finding::new(RuleId::P2, &p.field, format!("The pod CIDR {} is longer than /24 and cannot hold the /24 of even one node.", p.raw)));
            } else if need > avail {
                f.push(Finding::new(RuleId::P2, &p.field, format!("Pre-allocated IPs {need} exceeds IPs available {avail} in Subnet Cidr {}, Subnet Name networkProfile.podCIDR. {INSUFFICIENT_TAIL}", n.trunc())));
            }
        }
    }
}

pub(super) fn max_pods(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    for p in &r.pools {
        let field = format!("{}.maxPods", p.field);
        if !(10..=250).contains(&p.max_pods) {
            f.push(Finding::new(RuleId::M1, &field, format!("The value of parameter maxPods is invalid. Pool {} has {}; it must be between 10 and 250.", p.name, p.max_pods)));
        }
        if p.count > 0 && p.count * p.max_pods < 30 {
            f.push(Finding::new(RuleId::M2, &field, format!("Pool {}: count {} × maxPods {} = {} is below the minimum of 30 pods per node pool.", p.name, p.count, p.max_pods, p.count * p.max_pods)));
        }
        if p.autoscale {
            if let Some(min) = p.min_count.filter(|m| *m > 0) {
                if min * p.max_pods < 30 {
                    f.push(Finding::new(RuleId::M2a, format!("{}.minCount", p.field), format!("Pool {}: minCount {min} × maxPods {} = {} is below 30 pods; scaling down there breaks the per-pool minimum.", p.name, p.max_pods, min * p.max_pods)));
                }
            }
        }
        if p.windows && model == NetModel::Overlay && p.max_pods > 110 {
            f.push(Finding::new(
                RuleId::M4,
                &field,
                format!(
                    "Windows pool {} on overlay has maxPods {}; at most 110 is recommended.",
                    p.name, p.max_pods
                ),
            ));
        }
        if p.windows && model == NetModel::NodeSubnet {
            f.push(Finding::new(RuleId::M4, &field, format!("Windows pool {} on Node Subnet reserves {} addresses per node and Windows nodes take extra; leave more room.", p.name, p.node_subnet_per_node())));
        }
        if model == NetModel::PodSubnet && p.static_block() && p.node_subnet_per_node() % 16 != 0 {
            let blocks = p.static_blocks();
            let waste = blocks * 16 - p.node_subnet_per_node();
            f.push(Finding::new(RuleId::M6, &field, format!("Pool {}: maxPods {} takes {blocks} /28 blocks per node and wastes {waste} addresses; 16N − 1 (e.g. {}) wastes none.", p.name, p.max_pods, blocks * 16 - 1)));
        }
    }
}

pub(super) fn pod_subnet(r: &Resolved, f: &mut Vec<Finding>) {
    if r.model() != NetModel::PodSubnet {
        return;
    }
    for p in &r.pools {
        if let Some(m) = &p.pod_ip_allocation_mode {
            if !m.eq_ignore_ascii_case("DynamicIndividual")
                && !m.eq_ignore_ascii_case("StaticBlock")
            {
                f.push(Finding::new(RuleId::PS3, format!("{}.podIPAllocationMode", p.field), format!("--pod-ip-allocation-mode can only be DynamicIndividual or StaticBlock: pool {} has '{m}'.", p.name)));
            }
        }
        if p.static_block() {
            if let Some(v) = r.k8s.filter(|v| (v.0, v.1) < (1, 28)) {
                f.push(Finding::new(
                    RuleId::PS4,
                    format!("{}.podIPAllocationMode", p.field),
                    format!(
                        "StaticBlock needs Kubernetes 1.28 or later; the cluster runs {}.{}.",
                        v.0, v.1
                    ),
                ));
            }
            if let Some(s) = p
                .pod_subnet
                .and_then(|i| r.subnets.get(i))
                .and_then(|s| s.v4())
            {
                if s.prefix_len() < 12 {
                    f.push(Finding::new(
                        RuleId::PS4,
                        format!("{}.podSubnetID", p.field),
                        format!("The static-block pod subnet {s} is larger than /12."),
                    ));
                }
            }
        }
    }
    for c in crate::capacity::ranges(r) {
        if c.kind != crate::report::RangeKind::PodSubnet {
            continue;
        }
        if !c.accepted_at_create {
            f.push(Finding::new(RuleId::PS1, c.name.clone(), format!("Pre-allocated IPs {} exceeds IPs available {} in Subnet Cidr {}, Subnet Name {} (pod subnet).", c.required, c.usable.saturating_sub(c.other), c.cidr, c.name)));
        }
    }
    // PS2: dynamic pools full: 16 × ceil(maxPods/16) per node.
    let mut full: HashMap<usize, u64> = HashMap::new();
    for p in r.pools.iter().filter(|p| !p.static_block()) {
        if let Some(ps) = p.pod_subnet {
            *full.entry(ps).or_default() += p.nodes_max() * 16 * net::ceil_div(p.max_pods, 16);
        }
    }
    let mut keys: Vec<(usize, u64)> = full.into_iter().collect();
    keys.sort_unstable();
    for (ps, need) in keys {
        if let Some(s) = r.subnets.get(ps) {
            if let Some(v4) = s.v4() {
                let avail = net::azure_usable(v4.prefix_len()).saturating_sub(s.other);
                if need > avail {
                    f.push(Finding::new(RuleId::PS2, &s.field, format!("Pod subnet {} ({v4}) holds {avail} addresses; every node full at maxPods needs {need} (batches of 16, an estimate).", s.name)));
                }
            }
        }
    }
}
