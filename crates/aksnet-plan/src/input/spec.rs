//! Our own spec file (YAML or JSON), documented in docs/plan.md. Unknown keys are errors:
//! a typo must not silently become an AKS default.

use super::value::Obj;
use super::InputError;
use crate::model::{Cluster, Peering, PlanInput, Plugin, Pool, Subnet, Tier, Vnet};

pub fn read(root: &Obj, input: &mut PlanInput) -> Result<(), InputError> {
    root.only(&[
        "apiVersion",
        "kind",
        "cluster",
        "vnet",
        "vnets",
        "onPrem",
        "peers",
    ])?;
    if let Some(c) = root.obj(&["cluster"])? {
        if input.cluster.is_some() {
            return Err(root.err("cluster", "a second cluster; plan one cluster at a time"));
        }
        input.cluster = Some(read_cluster(&c)?);
    }
    for v in root.list(&["vnet", "vnets"])? {
        input.vnets.push(read_vnet(&v)?);
    }
    input.on_prem.extend(root.strs(&["onPrem"])?);
    input.extra_peers.extend(root.strs(&["peers"])?);
    Ok(())
}

fn read_cluster(c: &Obj) -> Result<Cluster, InputError> {
    c.only(&[
        "name",
        "tier",
        "kubernetesVersion",
        "identity",
        "network",
        "apiServerSubnet",
        "appGatewaySubnetCidr",
        "nodeAutoProvisioning",
        "pools",
        "live",
    ])?;
    let mut out = Cluster {
        name: c.str(&["name"])?,
        kubernetes_version: c.str(&["kubernetesVersion"])?,
        identity_type: c.str(&["identity"])?,
        location: c.location(),
        ..Cluster::default()
    };
    out.live = c.bool(&["live"])?.unwrap_or(false);
    if let Some(t) = c.str(&["tier"])? {
        out.tier = Some(Tier::parse(&t).ok_or_else(|| {
            c.err(
                "tier",
                format!("unknown tier '{t}' (free, standard, premium)"),
            )
        })?);
    }
    out.api_server_subnet_id = c.str(&["apiServerSubnet"])?;
    out.appgw_subnet_cidr = c.str(&["appGatewaySubnetCidr"])?;
    out.node_auto_provisioning = c.bool(&["nodeAutoProvisioning"])?.unwrap_or(false);
    if let Some(n) = c.obj(&["network"])? {
        read_network(&n, &mut out)?;
    }
    for p in c.list(&["pools"])? {
        out.pools.push(read_pool(&p)?);
    }
    Ok(out)
}

/// The cluster's `network:` section (the API's networkProfile).
fn read_network(n: &Obj, out: &mut Cluster) -> Result<(), InputError> {
    out.network_location = n.location();
    n.only(&[
        "plugin",
        "pluginMode",
        "policy",
        "dataplane",
        "podCidr",
        "podCidrs",
        "serviceCidr",
        "serviceCidrs",
        "dnsServiceIp",
        "dockerBridgeCidr",
        "ipFamilies",
        "outboundType",
        "loadBalancerSku",
    ])?;
    if let Some(p) = n.str(&["plugin"])? {
        out.network_plugin = Some(Plugin::parse(&p).ok_or_else(|| {
            n.err(
                "plugin",
                format!("unknown network plugin '{p}' (azure, kubenet, none)"),
            )
        })?);
    }
    out.network_plugin_mode = n.str(&["pluginMode"])?;
    if let Some(m) = &out.network_plugin_mode {
        if !m.eq_ignore_ascii_case("overlay") {
            return Err(n.err(
                "pluginMode",
                format!("unknown plugin mode '{m}' (only overlay exists)"),
            ));
        }
    }
    out.network_policy = n.str(&["policy"])?;
    out.network_dataplane = n.str(&["dataplane"])?;
    out.pod_cidrs = n.strs(&["podCidrs", "podCidr"])?;
    out.service_cidrs = n.strs(&["serviceCidrs", "serviceCidr"])?;
    out.dns_service_ip = n.str(&["dnsServiceIp"])?;
    out.docker_bridge_cidr = n.str(&["dockerBridgeCidr"])?;
    out.ip_families = n.strs(&["ipFamilies"])?;
    out.outbound_type = n.str(&["outboundType"])?;
    out.load_balancer_sku = n.str(&["loadBalancerSku"])?;
    Ok(())
}

fn read_pool(p: &Obj) -> Result<Pool, InputError> {
    p.only(&[
        "name",
        "mode",
        "osType",
        "count",
        "minCount",
        "maxCount",
        "autoscale",
        "maxPods",
        "subnet",
        "podSubnet",
        "podIpAllocationMode",
        "maxSurge",
        "maxUnavailable",
        "spot",
        "availabilitySet",
    ])?;
    Ok(Pool {
        name: p
            .str(&["name"])?
            .ok_or_else(|| p.err("name", "a pool needs a name"))?,
        mode: p.str(&["mode"])?,
        os_type: p.str(&["osType"])?,
        count: p.u64(&["count"])?,
        min_count: p.u64(&["minCount"])?,
        max_count: p.u64(&["maxCount"])?,
        enable_auto_scaling: p.bool(&["autoscale"])?,
        max_pods: p.u64(&["maxPods"])?,
        vnet_subnet_id: p.str(&["subnet"])?,
        pod_subnet_id: p.str(&["podSubnet"])?,
        pod_ip_allocation_mode: p.str(&["podIpAllocationMode"])?,
        max_surge: p.str(&["maxSurge"])?,
        max_unavailable: p.str(&["maxUnavailable"])?,
        spot: p.bool(&["spot"])?.unwrap_or(false),
        availability_set: p.bool(&["availabilitySet"])?.unwrap_or(false),
        location: p.location(),
    })
}

fn read_vnet(v: &Obj) -> Result<Vnet, InputError> {
    v.only(&[
        "name",
        "resourceGroup",
        "addressSpace",
        "subnets",
        "peerings",
    ])?;
    let mut out = Vnet {
        name: v
            .str(&["name"])?
            .ok_or_else(|| v.err("name", "a VNet needs a name"))?,
        resource_group: v.str(&["resourceGroup"])?,
        address_prefixes: v.strs(&["addressSpace"])?,
        location: v.location(),
        ..Vnet::default()
    };
    for s in v.list(&["subnets"])? {
        s.only(&[
            "name",
            "prefix",
            "prefixes",
            "otherIps",
            "usedIps",
            "delegations",
            "routeTable",
            "nsg",
        ])?;
        out.subnets.push(Subnet {
            id: None,
            name: s
                .str(&["name"])?
                .ok_or_else(|| s.err("name", "a subnet needs a name"))?,
            address_prefixes: s.strs(&["prefixes", "prefix"])?,
            delegations: s.strs(&["delegations"])?,
            ip_configurations: s.u64(&["usedIps"])?,
            other_ips: s.u64(&["otherIps"])?,
            route_table: s.str(&["routeTable"])?,
            nsg: s.str(&["nsg"])?,
            location: s.location(),
        });
    }
    for p in v.list(&["peerings"])? {
        p.only(&["name", "prefixes"])?;
        out.peerings.push(Peering {
            name: p.str(&["name"])?.unwrap_or_else(|| "peering".into()),
            remote_prefixes: p.strs(&["prefixes"])?,
        });
    }
    Ok(out)
}
