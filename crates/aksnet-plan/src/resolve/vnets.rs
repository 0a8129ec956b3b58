//! VNets and subnets, flattened (a subnet refers to its VNet by index), peered and
//! on-premises ranges, and the AKS-managed VNet when no subnet is given (docs/plan.md).

use super::{cidr, CidrValue, Defaults, RSubnet, RVnet, MANAGED_SUBNET, MANAGED_VNET};
use crate::model::PlanInput;

pub(super) struct Vnets {
    pub vnets: Vec<RVnet>,
    pub subnets: Vec<RSubnet>,
    pub peers: Vec<CidrValue>,
    pub on_prem: Vec<CidrValue>,
}

pub(super) fn vnets(input: &PlanInput) -> Vnets {
    let mut out = Vnets {
        vnets: Vec::new(),
        subnets: Vec::new(),
        peers: Vec::new(),
        on_prem: input
            .on_prem
            .iter()
            .map(|r| cidr(r, "--on-prem".to_string()))
            .collect(),
    };
    for (vi, v) in input.vnets.iter().enumerate() {
        let vf = format!("vnet[{}]", v.name);
        out.vnets.push(RVnet {
            name: v.name.clone(),
            resource_group: v.resource_group.clone(),
            prefixes: v
                .address_prefixes
                .iter()
                .map(|p| cidr(p, format!("{vf}.addressSpace.addressPrefixes")))
                .collect(),
            managed: false,
            field: vf.clone(),
        });
        for s in &v.subnets {
            let sf = format!("{vf}.subnets[{}]", s.name);
            out.subnets.push(RSubnet {
                vnet: vi,
                name: s.name.clone(),
                id: s.id.clone(),
                prefixes: s
                    .address_prefixes
                    .iter()
                    .map(|p| cidr(p, format!("{sf}.addressPrefix")))
                    .collect(),
                delegations: s.delegations.clone(),
                ip_configurations: s.ip_configurations,
                other: s.other_ips.or(s.ip_configurations).unwrap_or(0),
                route_table: s.route_table.clone(),
                nsg: s.nsg.clone(),
                field: sf,
            });
        }
        for p in &v.peerings {
            for r in &p.remote_prefixes {
                out.peers
                    .push(cidr(r, format!("{vf}.virtualNetworkPeerings[{}]", p.name)));
            }
        }
    }
    for r in &input.extra_peers {
        out.peers.push(cidr(r, "--peer".to_string()));
    }
    out
}

/// No pool names a subnet and no VNet is given: AKS creates its own VNet.
pub(super) fn add_managed(v: &mut Vnets, d: &mut Defaults) {
    d.add("agentPoolProfiles[*].vnetSubnetID", MANAGED_SUBNET, "absent: AKS-managed VNet 10.224.0.0/12 with node subnet 10.224.0.0/16 (CHANGELOG 2022-02-24)");
    v.vnets.push(RVnet {
        name: "aks-vnet (managed)".into(),
        resource_group: None,
        prefixes: vec![cidr(MANAGED_VNET, "managedVnet.addressSpace".into())],
        managed: true,
        field: "managedVnet".into(),
    });
    v.subnets.push(RSubnet {
        vnet: v.vnets.len() - 1,
        name: "aks-subnet".into(),
        id: None,
        prefixes: vec![cidr(
            MANAGED_SUBNET,
            "managedVnet.subnets[aks-subnet]".into(),
        )],
        delegations: Vec::new(),
        ip_configurations: None,
        other: 0,
        route_table: None,
        nsg: None,
        field: "managedVnet.subnets[aks-subnet]".into(),
    });
}
