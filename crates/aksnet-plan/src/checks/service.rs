//! The service CIDR and the DNS service IP (S*, D*).

use std::net::IpAddr;

use ipnet::IpNet;

use super::{subnet_ranges, vnet_ranges};
use crate::catalogue::RuleId;
use crate::net;
use crate::report::Finding;
use crate::resolve::{CidrValue, Resolved};

pub(super) fn service(r: &Resolved, f: &mut Vec<Finding>) {
    let subs = subnet_ranges(r);
    for s in &r.service_cidrs {
        let Some(n) = s.parsed else { continue };
        overlaps(r, s, n, &subs, f);
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
    not_changeable(r, f);
    default_near_ten(r, f);
}

/// S2, S3, R5, S4, S5: the service CIDR overlaps a subnet, a VNet, an external range or the
/// pod CIDR.
fn overlaps(
    r: &Resolved,
    s: &CidrValue,
    n: IpNet,
    subs: &[(IpNet, &str, bool)],
    f: &mut Vec<Finding>,
) {
    let mut in_subnet = false;
    for &(sn, name, managed) in subs {
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
}

/// S8: the service CIDR is fixed before Kubernetes 1.33.
fn not_changeable(r: &Resolved, f: &mut Vec<Finding>) {
    let before_133 = r.k8s.is_none_or(|v| (v.0, v.1) < (1, 33));
    if before_133 {
        f.push(Finding::new(RuleId::S8, "networkProfile.serviceCidr", "The service CIDR cannot be changed after create before Kubernetes 1.33 (from 1.33 it can be extended with a ServiceCIDR object).".to_string()));
    }
}

/// S10: only the *default* 10.0.0.0/16 (nobody chose it) next to networks of the user's in
/// 10.0.0.0/8 that it does not itself overlap (an overlap is S2/S3/S4's error already).
fn default_near_ten(r: &Resolved, f: &mut Vec<Finding>) {
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

pub(super) fn dns(r: &Resolved, f: &mut Vec<Finding>) {
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
