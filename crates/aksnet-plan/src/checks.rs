//! The rules of docs/plan.md a resolved plan. Pure; one function per group.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::catalogue::RuleId;
use crate::model::{Plugin, Tier};
use crate::net;
use crate::report::Finding;
use crate::resolve::{CidrValue, NetModel, Resolved, Surge};

pub fn check(r: &Resolved) -> Vec<Finding> {
    let mut f = Vec::new();
    formats(r, &mut f);
    reserved(r, &mut f);
    service(r, &mut f);
    dns(r, &mut f);
    pod_cidr(r, &mut f);
    subnets(r, &mut f);
    max_pods(r, &mut f);
    counts(r, &mut f);
    surge(r, &mut f);
    dual_stack(r, &mut f);
    docker_bridge(r, &mut f);
    pod_subnet(r, &mut f);
    other(r, &mut f);
    notes(r, &mut f);
    f
}

/// Notes on the model as a whole: kubenet's retirement, node auto-provisioning.
fn notes(r: &Resolved, f: &mut Vec<Finding>) {
    if r.model() == NetModel::Kubenet {
        f.push(Finding::new(RuleId::K1, "networkProfile.networkPlugin", "kubenet retires on 31 March 2028; after that date kubenet clusters are out of support. Plan the move to Azure CNI Overlay (check it with --migrate-to overlay).".to_string()));
    }
    if r.node_auto_provisioning {
        f.push(Finding::new(RuleId::NAP1, "nodeProvisioningProfile.mode", "Node auto-provisioning is on: it creates nodes (and pools) beyond the pools listed here, so the node count is not bounded by them; the capacity below counts only the listed pools. Size the subnets for the most nodes you allow it.".to_string()));
    }
}

const INSUFFICIENT_TAIL: &str = "If Autoscaler is enabled, the max-count from each nodepool is counted towards this total (which means that pre-allocated IPs count represents a theoretical max value, not the actual number of IPs requested). http://aka.ms/aks/insufficientsubnetsize";

fn vnet_ranges(r: &Resolved) -> Vec<(&CidrValue, &str)> {
    r.vnets
        .iter()
        .flat_map(|v| v.prefixes.iter().map(move |p| (p, v.name.as_str())))
        .collect()
}

/// Every subnet prefix with its subnet's name and whether the subnet lies in
/// the AKS-managed VNet (whose overlaps get the managed-VNet rule R5).
fn subnet_ranges(r: &Resolved) -> Vec<(IpNet, &str, bool)> {
    r.subnets
        .iter()
        .flat_map(|s| {
            let managed = r.vnets.get(s.vnet).is_some_and(|v| v.managed);
            s.prefixes
                .iter()
                .filter_map(move |p| p.parsed.map(|n| (n, s.name.as_str(), managed)))
        })
        .collect()
}

fn formats(r: &Resolved, f: &mut Vec<Finding>) {
    for s in &r.service_cidrs {
        if s.parsed.is_none() {
            f.push(Finding::new(
                RuleId::S1,
                &s.field,
                format!(
                    "Cidr is invalid: '{}' is not CIDR notation (a.b.c.d/len).",
                    s.raw
                ),
            ));
        }
    }
    let mut others: Vec<&CidrValue> = r.pod_cidrs.iter().collect();
    others.extend(r.vnets.iter().flat_map(|v| v.prefixes.iter()));
    others.extend(r.subnets.iter().flat_map(|s| s.prefixes.iter()));
    others.extend(r.peers.iter());
    others.extend(r.on_prem.iter());
    others.extend(r.docker_bridge_cidr.iter());
    others.extend(r.appgw_subnet_cidr.iter());
    for v in others {
        if v.parsed.is_none() {
            f.push(Finding::new(
                RuleId::X1,
                &v.field,
                format!("'{}' is not valid CIDR notation.", v.raw),
            ));
        }
    }
    if r.dns_service_ip.parsed.is_none() {
        f.push(Finding::new(
            RuleId::X1,
            &r.dns_service_ip.field,
            format!("'{}' is not a valid IP address.", r.dns_service_ip.raw),
        ));
    }
    for p in &r.pools {
        if let (Some(reference), None) = (&p.node_subnet_ref, p.node_subnet) {
            f.push(Finding::new(RuleId::X2, format!("{}.vnetSubnetID", p.field), format!("Subnet '{reference}' of pool {} is not among the inputs; its capacity was not checked. Add `az network vnet show -o json` output.", p.name)));
        }
        if let (Some(reference), None) = (&p.pod_subnet_ref, p.pod_subnet) {
            f.push(Finding::new(RuleId::X2, format!("{}.podSubnetID", p.field), format!("Pod subnet '{reference}' of pool {} is not among the inputs; its capacity was not checked.", p.name)));
        }
    }
}

fn reserved(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    let mut ranges: Vec<(&CidrValue, &str)> = r
        .service_cidrs
        .iter()
        .map(|s| (s, "service CIDR"))
        .collect();
    if model.uses_pod_cidr() {
        ranges.extend(r.pod_cidrs.iter().map(|s| (s, "pod CIDR")));
    }
    ranges.extend(
        vnet_ranges(r)
            .into_iter()
            .map(|(p, _)| (p, "VNet address range")),
    );
    for (v, what) in ranges {
        let Some(n) = v.parsed else { continue };
        for res in net::AKS_RESERVED {
            let rn = net::net(res);
            if net::overlaps(&n, &rn) {
                f.push(Finding::new(RuleId::R1, &v.field, format!("The {what} {} overlaps the reserved range {res}; AKS clusters can't use 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16 or 192.0.2.0/24.", v.raw)));
            }
        }
    }
    for s in &r.service_cidrs {
        let Some(n) = s.parsed else { continue };
        if net::is_multicast(&n) {
            f.push(Finding::new(
                RuleId::R2,
                &s.field,
                format!("The service CIDR {} is in multicast space.", s.raw),
            ));
        } else if !net::is_private(&n)
            && !net::AKS_RESERVED
                .iter()
                .any(|x| net::overlaps(&net::net(x), &n))
        {
            f.push(Finding::new(RuleId::R2, &s.field, format!("The service CIDR {} is public address space; use RFC 1918 or RFC 6598 (100.64.0.0/10) space.", s.raw)));
        }
    }
    if model == NetModel::Overlay {
        for p in &r.pod_cidrs {
            if let Some(n @ IpNet::V4(_)) = p.parsed {
                if !net::is_private(&n) {
                    f.push(Finding::new(RuleId::R3, &p.field, format!("The overlay pod CIDR {} is outside RFC 1918 and RFC 6598 space; AKS does not support it.", p.raw)));
                }
            }
        }
    }
    for (p, _) in vnet_ranges(r) {
        let Some(n) = p.parsed else { continue };
        let forbidden: Vec<&str> = net::VNET_FORBIDDEN
            .iter()
            .copied()
            .filter(|x| net::overlaps(&net::net(x), &n))
            .collect();
        if !forbidden.is_empty() {
            f.push(Finding::new(RuleId::R4, &p.field, format!("The VNet address range {} overlaps {}, which Azure never allows in a virtual network.", p.raw, forbidden.join(", "))));
        } else if matches!(n, IpNet::V4(_))
            && !net::is_private(&n)
            && !net::AKS_RESERVED
                .iter()
                .any(|x| net::overlaps(&net::net(x), &n))
        {
            f.push(Finding::new(RuleId::R4a, &p.field, format!("The VNet address range {} is public space: its real owners become unreachable from the VNet.", p.raw)));
        }
    }
}

fn service(r: &Resolved, f: &mut Vec<Finding>) {
    let subs = subnet_ranges(r);
    for s in &r.service_cidrs {
        let Some(n) = s.parsed else { continue };
        let mut in_subnet = false;
        for &(sn, name, managed) in &subs {
            if net::overlaps(&n, &sn) {
                in_subnet = true;
                if managed {
                    f.push(Finding::new(RuleId::R5, &s.field, format!("The service CIDR {} overlaps the AKS-managed VNet's subnet {sn}; choose a range outside 10.224.0.0/12.", s.raw)));
                } else {
                    f.push(Finding::new(RuleId::S2, &s.field, format!("The specified service CIDR {} is conflicted with an existing subnet CIDR {sn} (subnet {name}).", s.raw)));
                }
            }
        }
        if !in_subnet {
            for v in &r.vnets {
                for p in &v.prefixes {
                    if let Some(vn) = p.parsed {
                        if net::overlaps(&n, &vn) {
                            if v.managed {
                                f.push(Finding::new(
                                    RuleId::R5,
                                    &s.field,
                                    format!(
                                        "The service CIDR {} overlaps the AKS-managed VNet {vn}.",
                                        s.raw
                                    ),
                                ));
                            } else {
                                f.push(Finding::new(RuleId::S3, &s.field, format!("Kubernetes service address range {} is overlapping a vNet address range {vn} (VNet {}). The control plane accepts it at create, but a subnet added there later fails every upgrade with ServiceCidrOverlapExistingSubnetsCidr.", s.raw, v.name)));
                            }
                        }
                    }
                }
            }
        }
        for (other, what) in r.external_ranges() {
            if let Some(o) = other.parsed {
                if net::overlaps(&n, &o) {
                    f.push(Finding::new(
                        RuleId::S4,
                        &s.field,
                        format!(
                            "The service CIDR {} overlaps the {what} {o} ({}).",
                            s.raw, other.field
                        ),
                    ));
                }
            }
        }
        if r.model().uses_pod_cidr() {
            for p in &r.pod_cidrs {
                if let Some(pn) = p.parsed {
                    if net::overlaps(&n, &pn) {
                        f.push(Finding::new(
                            RuleId::S5,
                            &s.field,
                            format!("The service CIDR {} overlaps the pod CIDR {pn}.", s.raw),
                        ));
                    }
                }
            }
        }
        if let IpNet::V4(v4) = n {
            if v4.prefix_len() < 12 {
                f.push(Finding::new(RuleId::S6, &s.field, format!("The service CIDR {} is /{}; it must be /12 or smaller (kube-apiserver allows at most 20 host bits; the docs say \"smaller than /12\").", s.raw, v4.prefix_len())));
            } else if v4.prefix_len() == 12 {
                f.push(Finding::new(RuleId::S6a, &s.field, format!("The service CIDR {} is exactly /12: kube-apiserver accepts it, the AKS docs ask for \"smaller than /12\"; use /13 or smaller.", s.raw)));
            }
        }
        if net::has_host_bits(&n) {
            f.push(Finding::new(
                RuleId::S7,
                &s.field,
                format!(
                    "The service CIDR {} has host bits set; use {}.",
                    s.raw,
                    n.trunc()
                ),
            ));
        }
    }
    let before_133 = r.k8s.is_none_or(|v| (v.0, v.1) < (1, 33));
    if before_133 {
        f.push(Finding::new(RuleId::S8, "networkProfile.serviceCidr", "The service CIDR cannot be changed after create before Kubernetes 1.33 (from 1.33 it can be extended with a ServiceCIDR object).".to_string()));
    }
    // S10: only the *default* 10.0.0.0/16 (nobody chose it) next to networks of the user's in
    // 10.0.0.0/8 that it does not itself overlap (an overlap is S2/S3/S4's error already).
    if let Some(s) = r.v4_service_cidr() {
        let default = net::net("10.0.0.0/16");
        if s.parsed == Some(default) && !r.service_cidr_explicit && !r.managed_vnet {
            let ten = net::net("10.0.0.0/8");
            let near: Vec<String> = vnet_ranges(r)
                .into_iter()
                .map(|(p, _)| p)
                .chain(r.peers.iter())
                .chain(r.on_prem.iter())
                .filter_map(|p| p.parsed)
                .filter(|p| net::overlaps(p, &ten) && !net::overlaps(p, &default))
                .map(|p| p.to_string())
                .collect();
            if !near.is_empty() {
                f.push(Finding::new(RuleId::S10, &s.field, format!("No service CIDR is given, so AKS's default 10.0.0.0/16 applies, in the same 10.0.0.0/8 block as your ranges {}; a network added there later (a peering, an on-premises route) would collide with it. Set serviceCidr explicitly to a range none of your networks uses.", near.join(", "))));
            }
        }
    }
}

fn dns(r: &Resolved, f: &mut Vec<Finding>) {
    let field = &r.dns_service_ip.field;
    let Some(ip) = r.dns_service_ip.parsed else {
        return;
    };
    let IpAddr::V4(ip4) = ip else {
        f.push(Finding::new(RuleId::D6, field, format!("The DNS service IP {ip} is IPv6; dnsServiceIP must be IPv4 (in dual-stack it sits in the IPv4 service CIDR).")));
        return;
    };
    let Some(IpNet::V4(svc)) = r.v4_service_cidr().and_then(|s| s.parsed) else {
        return;
    };
    let svc = svc.trunc();
    if !svc.contains(&ip4) {
        f.push(Finding::new(
            RuleId::D1,
            field,
            format!("The DNS service IP {ip4} is out of the range defined by service CIDR {svc}."),
        ));
        return;
    }
    if ip4 == svc.network() || ip4 == svc.broadcast() {
        let which = if ip4 == svc.network() {
            "network"
        } else {
            "broadcast"
        };
        f.push(Finding::new(RuleId::D2, field, format!("The DNS service IP {ip4} is the {which} address of service CIDR {svc} (not on a usable address).")));
        return;
    }
    if ip4 == net::nth_v4(&svc, 1) {
        f.push(Finding::new(RuleId::D3, field, format!("The DNS service IP {ip4} is the first address of service CIDR {svc}, which kubernetes.default.svc.cluster.local takes.")));
        return;
    }
    if let Some(api) = r
        .api_server_subnet_ref
        .as_deref()
        .and_then(|x| r.find_subnet(x))
        .and_then(|i| r.subnets.get(i))
        .and_then(|s| s.v4())
    {
        if api.contains(&ip4) {
            f.push(Finding::new(RuleId::D4, field, format!("The DNS service IP {ip4} lies in the API server subnet {api}, where the API server's addresses live.")));
        }
    }
    if ip4 != net::nth_v4(&svc, 10) && svc.prefix_len() <= 28 {
        f.push(Finding::new(RuleId::D5, field, format!("The DNS service IP {ip4} is not the conventional .10 address {} of {svc} (AKS accepts it; Cluster API requires .10).", net::nth_v4(&svc, 10))));
    }
    if !r.plugin_explicit
        && (r.dns_explicit
            || r.service_cidr_explicit
            || r.pod_cidr_explicit
            || r.network_policy.is_some())
    {
        f.push(Finding::new(RuleId::D7, "networkProfile.networkPlugin", "Please explicitly specify the network plugin type: az aks create refuses --pod-cidr, --service-cidr, --dns-service-ip or --network-policy without --network-plugin.".to_string()));
    }
}

fn pod_cidr(r: &Resolved, f: &mut Vec<Finding>) {
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

fn subnets(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
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
        let Some(s) = r.subnets.get(si) else { continue };
        let Some(v4) = s.v4() else { continue };
        let pools: Vec<&crate::resolve::RPool> = by_subnet
            .get(&si)
            .map(|v| v.iter().filter_map(|i| r.pools.get(*i)).collect())
            .unwrap_or_default();
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
    // N6: kubenet uses one route table for the whole cluster.
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
    // N7: pod subnets are not node subnets; static and dynamic do not mix in one subnet.
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
    // N8: overlay names become node labels.
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
    // N9: API server VNet integration subnet.
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
    // N10: 65,536 configured addresses per VNet.
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
    // N11: App Gateway add-on subnet inside the cluster VNet.
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

fn max_pods(r: &Resolved, f: &mut Vec<Finding>) {
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

fn counts(r: &Resolved, f: &mut Vec<Finding>) {
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
    if r.network_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("azure"))
        && total > 250
    {
        f.push(Finding::new(RuleId::C7, "networkProfile.networkPolicy", format!("Azure network policy manager (NPM) supports at most 250 nodes; the cluster reaches {total}.")));
    }
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Free => "Free",
        Tier::Standard => "Standard",
        Tier::Premium => "Premium",
    }
}

fn surge(r: &Resolved, f: &mut Vec<Finding>) {
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

fn range_word(c: &crate::report::Capacity) -> &'static str {
    match c.kind {
        crate::report::RangeKind::NodeSubnet => "Subnet",
        crate::report::RangeKind::PodCidr => "Pod CIDR",
        crate::report::RangeKind::PodSubnet => "Pod subnet",
    }
}

fn dual_stack(r: &Resolved, f: &mut Vec<Finding>) {
    let fam: Vec<String> = r
        .ip_families
        .iter()
        .map(|x| x.to_ascii_lowercase())
        .collect();
    let ok = fam == ["ipv4"] || fam == ["ipv4", "ipv6"];
    if !ok {
        f.push(Finding::new(
            RuleId::V1,
            "networkProfile.ipFamilies",
            format!(
                "ipFamilies [{}] is not supported; use [IPv4] or [IPv4, IPv6].",
                r.ip_families.join(", ")
            ),
        ));
    }
    let is_v6 = |c: &CidrValue| matches!(c.parsed, Some(IpNet::V6(_)));
    if let Some(first) = r.service_cidrs.first() {
        if is_v6(first) {
            f.push(Finding::new(RuleId::V6, &first.field, "The first service CIDR is IPv6; put IPv4 first (an API server crash followed IPv6 first).".to_string()));
        }
    }
    if ok {
        let check = |list: &[CidrValue], name: &str, f: &mut Vec<Finding>| {
            let families: Vec<&str> = list
                .iter()
                .filter_map(|c| c.parsed)
                .map(|n| {
                    if matches!(n, IpNet::V6(_)) {
                        "ipv6"
                    } else {
                        "ipv4"
                    }
                })
                .collect();
            if families.len() == list.len() && families != fam {
                f.push(Finding::new(RuleId::V2, format!("networkProfile.{name}"), format!("{name} [{}] must hold one CIDR per IP family in the order of ipFamilies [{}].", list.iter().map(|c| c.raw.as_str()).collect::<Vec<_>>().join(", "), r.ip_families.join(", "))));
            }
        };
        check(&r.service_cidrs, "serviceCidrs", f);
        if r.model().uses_pod_cidr() {
            check(&r.pod_cidrs, "podCidrs", f);
        }
    }
    for s in &r.service_cidrs {
        if let Some(IpNet::V6(n)) = s.parsed {
            if n.prefix_len() < 108 {
                f.push(Finding::new(
                    RuleId::V3,
                    &s.field,
                    format!("The IPv6 service CIDR {} is larger than /108.", s.raw),
                ));
            }
        }
    }
    if r.dual_stack() {
        let cilium = r
            .network_dataplane
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("cilium"));
        if r.model() != NetModel::Overlay && !cilium {
            if r.plugin_explicit {
                f.push(Finding::new(RuleId::V5, "networkProfile.ipFamilies", format!("Dual-stack needs Azure CNI Overlay (or the Cilium dataplane); this cluster is {}.", r.model().label())));
            } else {
                f.push(Finding::new(RuleId::V8, "networkProfile.networkPlugin", format!("Dual-stack is asked for but networkPlugin is not set, so the plan assumed {} (the default for this kind of input, see Defaults applied); dual-stack needs Azure CNI Overlay: set networkPlugin azure and networkPluginMode overlay.", r.model().label())));
            }
        }
        if let Some(pol) = r
            .network_policy
            .as_deref()
            .filter(|p| p.eq_ignore_ascii_case("azure") || p.eq_ignore_ascii_case("calico"))
        {
            f.push(Finding::new(
                RuleId::V5,
                "networkProfile.networkPolicy",
                format!("Dual-stack does not support the {pol} network policy."),
            ));
        }
        if let Some(v) = r.k8s {
            if v < (1, 21, 2) {
                f.push(Finding::new(
                    RuleId::V7,
                    "kubernetesVersion",
                    format!(
                        "Dual-stack needs Kubernetes 1.21.2 or later; the cluster runs {}.{}.{}.",
                        v.0, v.1, v.2
                    ),
                ));
            }
        }
    }
}

fn docker_bridge(r: &Resolved, f: &mut Vec<Finding>) {
    let Some(b) = &r.docker_bridge_cidr else {
        return;
    };
    f.push(Finding::new(
        RuleId::B2,
        &b.field,
        "dockerBridgeCidr is deprecated (removed in API 2023-04-01) and ignored since containerd."
            .to_string(),
    ));
    let Some(n) = b.parsed else { return };
    let n = n.trunc();
    let mut others: Vec<(IpNet, String)> = subnet_ranges(r)
        .into_iter()
        .map(|(s, name, _)| (s, format!("subnet {name}")))
        .collect();
    others.extend(
        r.service_cidrs
            .iter()
            .filter_map(|s| s.parsed.map(|p| (p, "the service CIDR".to_string()))),
    );
    if r.model().uses_pod_cidr() {
        others.extend(
            r.pod_cidrs
                .iter()
                .filter_map(|s| s.parsed.map(|p| (p, "the pod CIDR".to_string()))),
        );
    }
    for (o, what) in others {
        if net::overlaps(&n, &o) {
            f.push(Finding::new(
                RuleId::B1,
                &b.field,
                format!("dockerBridgeCidr {} overlaps {what} {o}.", b.raw),
            ));
        }
    }
}

fn pod_subnet(r: &Resolved, f: &mut Vec<Finding>) {
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

fn other(r: &Resolved, f: &mut Vec<Finding>) {
    let model = r.model();
    for p in &r.pools {
        if p.windows && model == NetModel::Kubenet {
            f.push(Finding::new(
                RuleId::O1,
                format!("{}.osType", p.field),
                format!(
                    "Windows pool {} needs Azure CNI; kubenet does not support Windows nodes.",
                    p.name
                ),
            ));
        }
        if p.availability_set && model == NetModel::Overlay {
            f.push(Finding::new(RuleId::O4, format!("{}.type", p.field), format!("Pool {} is an availability set; Azure CNI Overlay does not support availability sets.", p.name)));
        }
    }
    let basic = r
        .load_balancer_sku
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("basic"));
    if basic {
        f.push(Finding::new(
            RuleId::O2,
            "networkProfile.loadBalancerSku",
            "The Basic load balancer is out of support since 30 Sep 2025; use Standard."
                .to_string(),
        ));
    }
    if let Some(ot) = r.outbound_type.as_deref() {
        let needs = [
            "userDefinedRouting",
            "userAssignedNATGateway",
            "managedNATGateway",
        ];
        if needs.iter().any(|n| n.eq_ignore_ascii_case(ot)) {
            if basic {
                f.push(Finding::new(
                    RuleId::O3,
                    "networkProfile.outboundType",
                    format!("{ot} doesn't support basic load balancer sku"),
                ));
            }
            if !ot.eq_ignore_ascii_case("managedNATGateway") && r.managed_vnet {
                f.push(Finding::new(RuleId::O3, "networkProfile.outboundType", format!("--vnet-subnet-id must be specified for {ot} and it must be pre-configured with a route table with egress rules")));
            }
        }
    }
    let _ = Plugin::Azure;
}
