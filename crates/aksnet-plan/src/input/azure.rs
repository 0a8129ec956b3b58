//! The Azure shapes: `az aks show -o json` (flattened), the ARM/REST GET shape (under
//! `properties`), `az aks nodepool show`, and `az network vnet show` / VNet GET
//! (docs/plan.md). ARM templates reuse these readers after resolving expressions.

use serde_json::Value;

use super::value::{has, Obj};
use super::InputError;
use crate::model::{Cluster, Peering, Plugin, Pool, Subnet, Tier, Vnet};
use crate::resolve::parse_subnet_id;

/// `properties` when present (ARM shape), else the object itself (CLI's flattened shape).
pub fn props<'a>(o: &Obj<'a>) -> Result<Obj<'a>, InputError> {
    Ok(o.obj(&["properties"])?.unwrap_or_else(|| o.clone()))
}

pub fn read_cluster(outer: &Obj) -> Result<Cluster, InputError> {
    let p = props(outer)?;
    let mut c = Cluster {
        name: outer.str(&["name"])?,
        live: has(p.v, "provisioningState"),
        location: outer.location(),
        ..Cluster::default()
    };
    c.kubernetes_version = p.str(&["kubernetesVersion", "currentKubernetesVersion"])?;
    if let Some(sku) = outer.obj(&["sku"])? {
        if let Some(t) = sku.str(&["tier"])? {
            c.tier = Some(Tier::parse(&t).ok_or_else(|| {
                sku.err(
                    "tier",
                    format!("unknown tier '{t}' (Free, Standard, Premium)"),
                )
            })?);
        }
    }
    if let Some(id) = outer.obj(&["identity"])? {
        c.identity_type = id.str(&["type"])?;
    }
    if let Some(np) = p.obj(&["networkProfile"])? {
        c.network_location = np.location();
        if let Some(pl) = np.str(&["networkPlugin"])? {
            c.network_plugin = Some(Plugin::parse(&pl).ok_or_else(|| {
                np.err(
                    "networkPlugin",
                    format!("unknown network plugin '{pl}' (azure, kubenet, none)"),
                )
            })?);
        }
        c.network_plugin_mode = np.str(&["networkPluginMode"])?;
        c.network_policy = np.str(&["networkPolicy"])?;
        c.network_dataplane = np.str(&["networkDataplane"])?;
        c.pod_cidrs = np.strs(&["podCidrs"])?;
        if c.pod_cidrs.is_empty() {
            c.pod_cidrs = np.strs(&["podCidr"])?;
        }
        c.service_cidrs = np.strs(&["serviceCidrs"])?;
        if c.service_cidrs.is_empty() {
            c.service_cidrs = np.strs(&["serviceCidr"])?;
        }
        c.dns_service_ip = np.str(&["dnsServiceIP"])?;
        c.docker_bridge_cidr = np.str(&["dockerBridgeCidr"])?;
        c.ip_families = np.strs(&["ipFamilies"])?;
        c.outbound_type = np.str(&["outboundType"])?;
        c.load_balancer_sku = np.str(&["loadBalancerSku"])?;
    }
    if let Some(nap) = p.obj(&["nodeProvisioningProfile"])? {
        c.node_auto_provisioning = nap
            .str(&["mode"])?
            .is_some_and(|m| m.eq_ignore_ascii_case("auto"));
    }
    if let Some(api) = p.obj(&["apiServerAccessProfile"])? {
        c.api_server_subnet_id = api.str(&["subnetId"])?;
    }
    if let Some(addons) = p.obj(&["addonProfiles"])? {
        if let Some(agw) = addons.obj(&["ingressApplicationGateway"])? {
            if agw.bool(&["enabled"])?.unwrap_or(true) {
                if let Some(cfg) = agw.obj(&["config"])? {
                    c.appgw_subnet_cidr = cfg.str(&["subnetCIDR", "subnetPrefix"])?;
                }
            }
        }
    }
    for po in p.list(&["agentPoolProfiles"])? {
        c.pools.push(read_pool(&po)?);
    }
    Ok(c)
}

pub fn read_pool(outer: &Obj) -> Result<Pool, InputError> {
    let p = props(outer)?;
    let name = outer
        .str(&["name"])?
        .ok_or_else(|| outer.err("name", "a node pool needs a name"))?;
    let mut pool = Pool {
        name,
        mode: p.str(&["mode"])?,
        os_type: p.str(&["osType"])?,
        count: p.u64(&["count"])?,
        min_count: p.u64(&["minCount"])?,
        max_count: p.u64(&["maxCount"])?,
        enable_auto_scaling: p.bool(&["enableAutoScaling"])?,
        max_pods: p.u64(&["maxPods"])?,
        vnet_subnet_id: p.str(&["vnetSubnetID"])?,
        pod_subnet_id: p.str(&["podSubnetID"])?,
        pod_ip_allocation_mode: p.str(&["podIPAllocationMode"])?,
        spot: p
            .str(&["scaleSetPriority"])?
            .is_some_and(|s| s.eq_ignore_ascii_case("spot")),
        location: outer.location(),
        ..Pool::default()
    };
    // `az aks nodepool show` says typePropertiesType; the GET shape says type (docs/plan.md).
    let ty = p.str(&["typePropertiesType"])?.or(if p.v == outer.v {
        None
    } else {
        p.str(&["type"])?
    });
    pool.availability_set = ty.is_some_and(|t| t.eq_ignore_ascii_case("AvailabilitySet"));
    if let Some(u) = p.obj(&["upgradeSettings"])? {
        pool.max_surge = u.str(&["maxSurge"])?;
        pool.max_unavailable = u.str(&["maxUnavailable"])?;
    }
    Ok(pool)
}

fn id_last<'a>(id: &'a str, after: &str) -> Option<&'a str> {
    let parts: Vec<&str> = id.split('/').collect();
    let i = parts.iter().position(|p| p.eq_ignore_ascii_case(after))?;
    parts.get(i + 1).copied()
}

/// A resource's `name`, or the segment after `collection` in its `id`
/// (`…/virtualNetworks/<name>`) when the document omits the name.
fn resource_name(
    outer: &Obj,
    id: Option<&str>,
    collection: &str,
    what: &str,
) -> Result<String, InputError> {
    // A name only an evaluator could know (`[variables('vnetName')]` without its inputs)
    // stands in as its expression: names label the report and join by equal text.
    let unresolved = outer.raw(&["name"]).and_then(|(_, v)| {
        v.as_str()
            .and_then(|s| s.strip_prefix(super::value::UNRESOLVED))
            .map(|e| e.split(" (").next().unwrap_or(e).to_string())
    });
    outer
        .str(&["name"])?
        .or_else(|| id.and_then(|i| id_last(i, collection)).map(str::to_string))
        .or(unresolved)
        .ok_or_else(|| outer.err("name", format!("{what} needs a name")))
}

pub fn read_vnet(outer: &Obj) -> Result<Vnet, InputError> {
    let p = props(outer)?;
    let id = outer.str(&["id"])?;
    let name = resource_name(outer, id.as_deref(), "virtualNetworks", "a virtual network")?;
    let mut v = Vnet {
        resource_group: outer.str(&["resourceGroup"])?.or_else(|| {
            id.as_deref()
                .and_then(|i| id_last(i, "resourceGroups"))
                .map(str::to_string)
        }),
        id,
        name,
        location: outer.location(),
        ..Vnet::default()
    };
    if let Some(a) = p.obj(&["addressSpace"])? {
        v.address_prefixes = a.strs(&["addressPrefixes"])?;
    }
    for so in p.list(&["subnets"])? {
        v.subnets.push(read_subnet(&so)?);
    }
    for po in p.list(&["virtualNetworkPeerings"])? {
        v.peerings.push(read_peering(&po)?);
    }
    Ok(v)
}

pub fn read_subnet(outer: &Obj) -> Result<Subnet, InputError> {
    let p = props(outer)?;
    let id = outer.str(&["id"])?;
    let name = resource_name(outer, id.as_deref(), "subnets", "a subnet")?;
    let mut prefixes = p.strs(&["addressPrefixes"])?;
    if prefixes.is_empty() {
        prefixes = p.strs(&["addressPrefix"])?;
    }
    let mut delegations = Vec::new();
    for d in p.list(&["delegations"])? {
        let dp = props(&d)?;
        if let Some(s) = dp.str(&["serviceName"])? {
            delegations.push(s);
        }
    }
    let ip_configurations = match p.raw(&["ipConfigurations"]) {
        Some((_, Value::Array(a))) => Some(a.len() as u64),
        _ => None,
    };
    let res_id = |key: &str| -> Result<Option<String>, InputError> {
        Ok(match p.obj(&[key])? {
            Some(o) => o.str(&["id"])?.or(Some(String::new())),
            None => None,
        })
    };
    Ok(Subnet {
        id,
        name,
        address_prefixes: prefixes,
        delegations,
        ip_configurations,
        other_ips: None,
        route_table: res_id("routeTable")?,
        nsg: res_id("networkSecurityGroup")?,
        location: outer.location(),
    })
}

pub fn read_peering(outer: &Obj) -> Result<Peering, InputError> {
    let p = props(outer)?;
    let mut remote = Vec::new();
    for key in ["remoteAddressSpace", "remoteVirtualNetworkAddressSpace"] {
        if let Some(a) = p.obj(&[key])? {
            for r in a.strs(&["addressPrefixes"])? {
                if !remote.contains(&r) {
                    remote.push(r);
                }
            }
        }
    }
    Ok(Peering {
        name: outer.str(&["name"])?.unwrap_or_else(|| "peering".into()),
        remote_prefixes: remote,
    })
}

/// The subnet ID a template or Terraform would produce for `vnet`/`subnet`; matched by name
/// when joined (`crate::resolve::find_subnet`).
pub fn synthetic_subnet_id(rg: Option<&str>, vnet: &str, subnet: &str) -> String {
    format!(
        "/subscriptions/{{subscription}}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}",
        rg.unwrap_or("{resourceGroup}")
    )
}

#[allow(dead_code)]
pub fn subnet_names(id: &str) -> Option<(String, String)> {
    parse_subnet_id(id).map(|(_, v, s)| (v, s))
}
