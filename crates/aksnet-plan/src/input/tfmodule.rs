//! Calls of the well-known AKS Terraform modules, read as the cluster they create, with the
//! modules' documented input defaults (docs/plan.md, "Terraform modules"):
//!
//! - `Azure/aks/azurerm` (github.com/Azure/terraform-azurerm-aks, `variables.tf`):
//!   `network_plugin` = "kubenet", `agents_count` = 2, `agents_pool_name` = "nodepool",
//!   `sku_tier` = "Free", `auto_scaling_enabled` = false, `net_profile_outbound_type` =
//!   "loadBalancer"; the node subnet is `vnet_subnet.id` (v9+) or `vnet_subnet_id` (before);
//!   extra pools come from the `node_pools` map (mode defaults to "User").
//! - `Azure/avm-res-containerservice-managedcluster/azurerm` (github.com/Azure/
//!   terraform-azurerm-avm-res-containerservice-managedcluster): `default_agent_pool`
//!   (`count_of` = 3, `name` = "systempool") or, in earlier versions, `default_node_pool`;
//!   `agent_pools`/`node_pools` maps; `network_profile` object with the API's names; no
//!   plugin default of its own (the API's applies).
//!
//! Any other module is ignored.

use serde_json::Value;

use super::terraform::Found;
use super::value::Obj;
use super::InputError;
use crate::model::{Cluster, Plugin, Pool, Tier};

#[derive(Clone, Copy, PartialEq)]
enum Known {
    AksModule,
    Avm,
}

fn known(source: &str) -> Option<Known> {
    let s = source.to_ascii_lowercase();
    if s.contains("avm-res-containerservice-managedcluster") {
        Some(Known::Avm)
    } else if s.starts_with("azure/aks/azurerm") || s.contains("terraform-azurerm-aks") {
        Some(Known::AksModule)
    } else {
        None
    }
}

/// A module called by a local path (`source = "../.."`, as the modules' own examples do) is
/// recognised by its inputs.
fn by_inputs(o: &Obj) -> Option<Known> {
    let m = o.v.as_object()?;
    if m.keys().any(|k| {
        k.starts_with("agents_")
            || k.starts_with("net_profile_")
            || matches!(k.as_str(), "prefix" | "vnet_subnet" | "vnet_subnet_id")
    }) {
        Some(Known::AksModule)
    } else if m.contains_key("default_agent_pool") || m.contains_key("parent_id") {
        Some(Known::Avm)
    } else {
        None
    }
}

/// Read one module call; unknown modules add nothing.
pub fn read(o: &Obj, name: &str, found: &mut Found) -> Result<(), InputError> {
    let source = o.str(&["source"])?.unwrap_or_default();
    let local = source.starts_with('.');
    let Some(kind) = known(&source).or_else(|| if local { by_inputs(o) } else { None }) else {
        return Ok(());
    };
    if let Some((prev, _)) = &found.cluster {
        return Err(InputError::Combine {
            message: format!(
                "{}: module.{name} is a second AKS cluster (the first is in {prev}); plan one cluster at a time",
                o.file
            ),
        });
    }
    let c = match kind {
        Known::AksModule => aks_module(o, name)?,
        Known::Avm => avm(o, name)?,
    };
    found.cluster = Some((o.file.to_string(), c));
    Ok(())
}

fn subnet_id(o: &Obj, object_key: &str, flat_key: &str) -> Result<Option<String>, InputError> {
    if let Some((k, v)) = o.raw(&[object_key]) {
        if v.is_object() {
            return o.at(v, format!("{}.{k}", o.path)).str(&["id"]);
        }
    }
    o.str(&[flat_key])
}

fn plugin(o: &Obj, key: &str, p: Option<String>) -> Result<Option<Plugin>, InputError> {
    match p {
        None => Ok(None),
        Some(p) => Plugin::parse(&p).map(Some).ok_or_else(|| {
            o.err(
                key,
                format!("unknown network plugin '{p}' (azure, kubenet, none)"),
            )
        }),
    }
}

fn tier(o: &Obj, key: &str, t: Option<String>) -> Result<Option<Tier>, InputError> {
    match t {
        None => Ok(None),
        Some(t) => Tier::parse(&t)
            .map(Some)
            .ok_or_else(|| o.err(key, format!("unknown tier '{t}'"))),
    }
}

fn aks_module(o: &Obj, name: &str) -> Result<Cluster, InputError> {
    let p = o.str(&["network_plugin"])?.or(Some("kubenet".into()));
    let autoscale = o.bool(&["auto_scaling_enabled", "enable_auto_scaling"])?;
    let mut c = Cluster {
        name: o
            .str(&["cluster_name"])?
            .or_else(|| Some(format!("module.{name}"))),
        kubernetes_version: o.str(&["kubernetes_version"])?,
        network_plugin: plugin(o, "network_plugin", p)?,
        network_plugin_mode: o.str(&["network_plugin_mode"])?,
        network_policy: o.str(&["network_policy"])?,
        network_dataplane: o.str(&["network_data_plane", "ebpf_data_plane"])?,
        tier: tier(o, "sku_tier", o.str(&["sku_tier"])?.or(Some("Free".into())))?,
        pod_cidrs: o.strs(&["net_profile_pod_cidr"])?,
        service_cidrs: o.strs(&["net_profile_service_cidr"])?,
        dns_service_ip: o.str(&["net_profile_dns_service_ip"])?,
        outbound_type: o
            .str(&["net_profile_outbound_type"])?
            .or(Some("loadBalancer".into())),
        load_balancer_sku: o.str(&["load_balancer_sku"])?,
        api_server_subnet_id: o.str(&["api_server_subnet_id"])?,
        ..Cluster::default()
    };
    c.pools.push(Pool {
        name: o
            .str(&["agents_pool_name"])?
            .unwrap_or_else(|| "nodepool".into()),
        mode: Some("System".into()),
        count: o.u64(&["agents_count"])?.or(Some(2)),
        min_count: o.u64(&["agents_min_count"])?,
        max_count: o.u64(&["agents_max_count"])?,
        enable_auto_scaling: autoscale.or(Some(false)),
        max_pods: o.u64(&["agents_max_pods"])?,
        vnet_subnet_id: subnet_id(o, "vnet_subnet", "vnet_subnet_id")?,
        pod_subnet_id: subnet_id(o, "pod_subnet", "pod_subnet_id")?,
        ..Pool::default()
    });
    for (key, p) in map_entries(o, &["node_pools"]) {
        c.pools.push(map_pool(&p, &key, "node_count")?);
    }
    Ok(c)
}

fn avm(o: &Obj, name: &str) -> Result<Cluster, InputError> {
    let mut c = Cluster {
        name: o.str(&["name"])?.or_else(|| Some(format!("module.{name}"))),
        kubernetes_version: o.str(&["kubernetes_version"])?,
        ..Cluster::default()
    };
    if let Some((k, sku)) = o.raw(&["sku"]) {
        let s = o.at(sku, format!("{}.{k}", o.path));
        c.tier = tier(&s, "tier", s.str(&["tier"])?)?;
        // AKS Automatic (MicrosoftDocs/azure-aks-docs articles/aks/intro-aks-automatic.md):
        // managed VNet on Azure CNI Overlay with Cilium, nodes by node auto-provisioning.
        if s.str(&["name"])?
            .is_some_and(|n| n.eq_ignore_ascii_case("automatic"))
        {
            c.network_plugin = Some(Plugin::Azure);
            c.network_plugin_mode = Some("overlay".into());
            c.network_dataplane = Some("cilium".into());
            c.node_auto_provisioning = true;
        }
    }
    if let Some((k, np)) = o.raw(&["network_profile"]) {
        let n = o.at(np, format!("{}.{k}", o.path));
        c.network_plugin = plugin(&n, "network_plugin", n.str(&["network_plugin"])?)?;
        c.network_plugin_mode = n.str(&["network_plugin_mode"])?;
        c.network_policy = n.str(&["network_policy"])?;
        c.network_dataplane = n.str(&["network_dataplane", "network_data_plane"])?;
        c.pod_cidrs = n.strs(&["pod_cidrs"])?;
        if c.pod_cidrs.is_empty() {
            c.pod_cidrs = n.strs(&["pod_cidr"])?;
        }
        c.service_cidrs = n.strs(&["service_cidrs"])?;
        if c.service_cidrs.is_empty() {
            c.service_cidrs = n.strs(&["service_cidr"])?;
        }
        c.dns_service_ip = n.str(&["dns_service_ip"])?;
        c.ip_families = n.strs(&["ip_families", "ip_versions"])?;
        c.outbound_type = n.str(&["outbound_type"])?;
        c.load_balancer_sku = n.str(&["load_balancer_sku"])?;
    }
    let default_pool = o.raw(&["default_agent_pool", "default_node_pool"]);
    let mut system = Pool {
        name: "systempool".into(),
        mode: Some("System".into()),
        count: Some(3),
        ..Pool::default()
    };
    if let Some((k, p)) = default_pool {
        let po = o.at(p, format!("{}.{k}", o.path));
        let read = map_pool(&po, "systempool", "count_of")?;
        system = Pool {
            mode: Some("System".into()),
            count: read.count.or(Some(3)),
            ..read
        };
    }
    c.pools.push(system);
    for (key, p) in map_entries(o, &["agent_pools", "node_pools"]) {
        c.pools.push(map_pool(&p, &key, "count_of")?);
    }
    Ok(c)
}

/// The entries of a map-of-objects input (`node_pools = { a = {...} }`).
fn map_entries<'a>(o: &Obj<'a>, keys: &[&str]) -> Vec<(String, Obj<'a>)> {
    match o.raw(keys) {
        Some((k, Value::Object(m))) => m
            .iter()
            .map(|(name, v)| (name.clone(), o.at(v, format!("{}.{k}.{name}", o.path))))
            .collect(),
        _ => Vec::new(),
    }
}

/// One pool object of a module input, with both the azurerm and the API field names.
fn map_pool(p: &Obj, key: &str, count_key: &str) -> Result<Pool, InputError> {
    let mut pool = Pool {
        name: p.str(&["name"])?.unwrap_or_else(|| key.to_string()),
        mode: p.str(&["mode"])?.or(Some("User".into())),
        os_type: p.str(&["os_type"])?,
        count: p.u64(&[count_key, "node_count", "count"])?,
        min_count: p.u64(&["min_count"])?,
        max_count: p.u64(&["max_count"])?,
        enable_auto_scaling: p.bool(&["auto_scaling_enabled", "enable_auto_scaling"])?,
        max_pods: p.u64(&["max_pods"])?,
        vnet_subnet_id: subnet_id(p, "vnet_subnet", "vnet_subnet_id")?,
        pod_subnet_id: subnet_id(p, "pod_subnet", "pod_subnet_id")?,
        pod_ip_allocation_mode: p.str(&["pod_ip_allocation_mode"])?,
        spot: p
            .str(&["priority", "scale_set_priority"])?
            .is_some_and(|s| s.eq_ignore_ascii_case("spot")),
        ..Pool::default()
    };
    if let Some((k, u)) = p.raw(&["upgrade_settings"]) {
        let u = match u {
            Value::Array(a) => a.first().unwrap_or(u),
            _ => u,
        };
        let uo = p.at(u, format!("{}.{k}", p.path));
        pool.max_surge = uo.str(&["max_surge"])?;
        pool.max_unavailable = uo.str(&["max_unavailable"])?;
    }
    Ok(pool)
}
