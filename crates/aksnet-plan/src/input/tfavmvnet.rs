//! Calls of the Azure Verified Module for virtual networks, `Azure/avm-res-network-
//! virtualnetwork/azurerm` (github.com/Azure/terraform-azurerm-avm-res-network-virtualnetwork),
//! and of its `//modules/subnet` submodule, read as the VNet and subnets they create. The AKS
//! landing zone accelerator and other AVM-based definitions declare their networks this way.
//!
//! - VNet module: `name`, `address_space`, `resource_group_name` (or `parent_id`, the resource
//!   group's ID, in later versions), `subnets` (a map of objects with `name` and
//!   `address_prefixes` or `address_prefix`, and `delegation`).
//! - Subnet submodule: `name`, `address_prefixes`/`address_prefix`, and its VNet as
//!   `virtual_network_name` (early versions), `virtual_network = { resource_id }` (0.8) or
//!   `parent_id` (later).
//!
//! Other blocks refer to these modules' outputs (`resource_id`, `resource.id`, `name`,
//! `subnets[key].resource_id`: the module's `outputs.tf`); [`outputs`] builds them from the
//! inputs so that such references resolve.

use serde_json::{Map, Value};

use super::azure::synthetic_subnet_id;
use super::terraform::{subnet, Found};
use super::value::{Obj, UNRESOLVED};
use super::InputError;
use crate::model::Vnet;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Vnet,
    Subnet,
}

fn kind(source: &str) -> Option<Kind> {
    let s = source.to_ascii_lowercase();
    if !s.contains("avm-res-network-virtualnetwork") {
        return None;
    }
    match s.split_once("//") {
        None => Some(Kind::Vnet),
        Some((_, sub)) if sub.trim_end_matches('/') == "modules/subnet" => Some(Kind::Subnet),
        // The peering submodule and anything else: no address space of their own.
        Some(_) => None,
    }
}

fn known_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .filter(|s| !s.contains(UNRESOLVED))
}

/// The name after `key` in an ARM ID (`.../resourceGroups/NAME/...`), case-insensitively.
fn id_part(id: &str, key: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('/').collect();
    let i = parts.iter().position(|p| p.eq_ignore_ascii_case(key))?;
    parts.get(i + 1).map(|s| s.to_string())
}

fn vnet_rg(m: &Map<String, Value>) -> Option<String> {
    known_str(m.get("resource_group_name"))
        .map(str::to_string)
        .or_else(|| known_str(m.get("parent_id")).and_then(|p| id_part(p, "resourceGroups")))
}

/// The ID of the VNet a subnet submodule call names, when it is known.
fn parent_vnet_id(m: &Map<String, Value>) -> Option<String> {
    let by_id = m
        .get("virtual_network")
        .and_then(|v| known_str(v.get("resource_id")))
        .or_else(|| known_str(m.get("parent_id")));
    if let Some(id) = by_id.filter(|id| id_part(id, "virtualNetworks").is_some()) {
        return Some(id.to_string());
    }
    let name = known_str(m.get("virtual_network_name"))?;
    let rg = known_str(m.get("resource_group_name")).unwrap_or("{resourceGroup}");
    Some(format!(
        "/subscriptions/{{subscription}}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{name}"
    ))
}

/// Add the outputs other blocks read to a call of these modules (unknown inputs: no output).
pub fn outputs(m: &mut Map<String, Value>) {
    let Some(k) = known_str(m.get("source")).and_then(kind) else {
        return;
    };
    let Some(name) = known_str(m.get("name")).map(str::to_string) else {
        return;
    };
    let id = match k {
        Kind::Vnet => {
            let rg = vnet_rg(m);
            // Each subnet's `resource_id` sits beside its inputs (`subnets[key].resource_id`).
            if let Some(Value::Object(s)) = m.get_mut("subnets") {
                for sv in s.values_mut() {
                    let sid = known_str(sv.get("name"))
                        .map(|sn| synthetic_subnet_id(rg.as_deref(), &name, sn));
                    if let (Some(sid), Value::Object(so)) = (sid, sv) {
                        so.insert("resource_id".into(), Value::String(sid));
                    }
                }
            }
            format!(
                "/subscriptions/{{subscription}}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{name}",
                rg.as_deref().unwrap_or("{resourceGroup}")
            )
        }
        Kind::Subnet => match parent_vnet_id(m) {
            Some(v) => format!("{v}/subnets/{name}"),
            None => return,
        },
    };
    m.insert("resource_id".into(), Value::String(id.clone()));
    m.insert(
        "resource".into(),
        serde_json::json!({ "id": id, "name": name }),
    );
}

/// Read one call of these modules; other modules add nothing.
pub fn read(
    o: &Obj,
    name: &str,
    loc: &Option<String>,
    found: &mut Found,
) -> Result<(), InputError> {
    let source = o.str(&["source"])?.unwrap_or_default();
    match kind(&source) {
        Some(Kind::Vnet) => found.vnets.push(vnet(o, name, loc)?),
        Some(Kind::Subnet) => {
            let parent = o.v.as_object().and_then(parent_vnet_id);
            match parent
                .as_deref()
                .and_then(|id| id_part(id, "virtualNetworks"))
            {
                Some(vn) => {
                    let mut s = subnet(o)?;
                    s.location = loc.clone();
                    found.subnets.push((vn, s));
                }
                // Its VNet is not known: say so (IN1) rather than guess one.
                None => {
                    o.str(&["parent_id"])?;
                    if let Some(v) = o.obj(&["virtual_network"])? {
                        v.str(&["resource_id"])?;
                    }
                }
            }
        }
        None => {}
    }
    Ok(())
}

fn vnet(o: &Obj, name: &str, loc: &Option<String>) -> Result<Vnet, InputError> {
    let mut vn = Vnet {
        name: o
            .str(&["name"])?
            .unwrap_or_else(|| format!("module.{name}")),
        resource_group: o.str(&["resource_group_name"])?,
        address_prefixes: o.strs(&["address_space"])?,
        location: loc.clone(),
        ..Vnet::default()
    };
    if let Some((k, Value::Object(subnets))) = o.raw(&["subnets"]) {
        for (key, sv) in subnets {
            let so = o.at(sv, format!("{}.{k}.{key}", o.path));
            let mut s = subnet(&so)?;
            s.location = loc.clone();
            vn.subnets.push(s);
        }
    }
    Ok(vn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_kinds_by_source() {
        let vnet = "Azure/avm-res-network-virtualnetwork/azurerm";
        assert!(kind(vnet) == Some(Kind::Vnet));
        assert!(kind(&format!("{vnet}//modules/subnet")) == Some(Kind::Subnet));
        assert!(kind(&format!("{vnet}//modules/peering")).is_none());
        assert!(kind("Azure/aks/azurerm").is_none());
    }

    #[test]
    fn subnet_parent_from_each_input_shape() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v";
        let shapes = [
            serde_json::json!({ "virtual_network": { "resource_id": id } }),
            serde_json::json!({ "parent_id": id }),
            serde_json::json!({ "virtual_network_name": "v", "resource_group_name": "rg" }),
        ];
        for s in shapes {
            let m = s.as_object().unwrap_or_else(|| unreachable!());
            let got = parent_vnet_id(m).unwrap_or_default();
            assert_eq!(
                id_part(&got, "virtualNetworks").as_deref(),
                Some("v"),
                "{s}"
            );
        }
        let unknown = serde_json::json!({ "parent_id": format!("{UNRESOLVED}module.x.id") });
        assert_eq!(
            parent_vnet_id(unknown.as_object().unwrap_or_else(|| unreachable!())),
            None
        );
    }
}
