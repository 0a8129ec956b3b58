//! Ranges AKS or Azure reserve, and public ranges (R*).

use ipnet::IpNet;

use super::vnet_ranges;
use crate::catalogue::RuleId;
use crate::net;
use crate::report::Finding;
use crate::resolve::{CidrValue, NetModel, Resolved};

pub(super) fn reserved(r: &Resolved, f: &mut Vec<Finding>) {
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
