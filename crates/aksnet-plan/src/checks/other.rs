//! The docker bridge, outbound and identity, and notes on the model as a whole (B*, O*, K1, NAP1).

use ipnet::IpNet;

use super::subnet_ranges;
use crate::catalogue::RuleId;
use crate::model::Plugin;
use crate::net;
use crate::report::Finding;
use crate::resolve::{NetModel, Resolved};

pub(super) fn docker_bridge(r: &Resolved, f: &mut Vec<Finding>) {
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

pub(super) fn other(r: &Resolved, f: &mut Vec<Finding>) {
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

/// Notes on the model as a whole: kubenet's retirement, node auto-provisioning.
pub(super) fn notes(r: &Resolved, f: &mut Vec<Finding>) {
    if r.model() == NetModel::Kubenet {
        f.push(Finding::new(RuleId::K1, "networkProfile.networkPlugin", "kubenet retires on 31 March 2028; after that date kubenet clusters are out of support. Plan the move to Azure CNI Overlay (check it with --migrate-to overlay).".to_string()));
    }
    if r.node_auto_provisioning {
        f.push(Finding::new(RuleId::NAP1, "nodeProvisioningProfile.mode", "Node auto-provisioning is on: it creates nodes (and pools) beyond the pools listed here, so the node count is not bounded by them; the capacity below counts only the listed pools. Size the subnets for the most nodes you allow it.".to_string()));
    }
}
