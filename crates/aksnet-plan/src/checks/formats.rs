//! Address formats: every CIDR and IP parses, no host bits, one family per field (X*, S7).

use crate::catalogue::RuleId;
use crate::report::Finding;
use crate::resolve::{CidrValue, Resolved};

pub(super) fn formats(r: &Resolved, f: &mut Vec<Finding>) {
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
