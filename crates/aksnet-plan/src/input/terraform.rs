//! Terraform azurerm: `azurerm_kubernetes_cluster`, `azurerm_kubernetes_cluster_node_pool`,
//! `azurerm_virtual_network`, `azurerm_subnet` (+ route table/NSG associations, peerings) and
//! calls of the well-known AKS modules (`super::tfmodule`), evaluated by `super::tfeval`
//! (docs/plan.md, "Terraform").

use serde_json::Value;

use super::hcl::{self, Item};
use super::tfeval::{self, Config, Res};
use super::value::Obj;
use super::InputError;
use crate::model::{Cluster, Plugin, Pool, Subnet, Tier, Vnet};

pub struct Found {
    pub cluster: Option<(String, Cluster)>,
    pub pools: Vec<Pool>,
    pub vnets: Vec<Vnet>,
    /// Subnets written apart from their VNet (`azurerm_subnet`, the AVM subnet submodule):
    /// (VNet name, subnet), joined to their VNet once every block is read.
    pub subnets: Vec<(String, Subnet)>,
    /// Variables without a default or a value (name, file, line): named in a note when a
    /// needed value depends on one.
    pub unset_vars: Vec<(String, String, usize)>,
}

/// How a Terraform input file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfKind {
    Config,
    Vars,
    VarsJson,
}

fn collect(cfg: &mut Config, file: &str, items: Vec<Item>) {
    for it in items {
        let Item::Block {
            ty,
            labels,
            body,
            line,
        } = it
        else {
            continue;
        };
        match (ty.as_str(), labels.as_slice()) {
            ("variable", [name]) => {
                let d = attr(&body, "default").cloned();
                cfg.vars.push((name.clone(), d, file.to_string(), line));
            }
            ("locals", []) => {
                for i in body {
                    if let Item::Attr { name, expr, line } = i {
                        cfg.locals.push((name, expr, file.to_string(), line));
                    }
                }
            }
            ("resource" | "data", [t, n]) => cfg.resources.push(Res {
                kind: if ty == "data" { "data" } else { "resource" },
                ty: t.clone(),
                name: n.clone(),
                file: file.to_string(),
                line,
                body,
            }),
            ("module", [n]) => cfg.resources.push(Res {
                kind: "module",
                ty: "module".into(),
                name: n.clone(),
                file: file.to_string(),
                line,
                body,
            }),
            _ => {}
        }
    }
}

fn tfvars(cfg: &mut Config, file: &str, text: &str, kind: TfKind) -> Result<(), InputError> {
    if kind == TfKind::VarsJson {
        let v = super::parse_document(file, text)?;
        let Value::Object(m) = v else {
            return Err(InputError::Shape {
                file: file.into(),
                message: "a .tfvars.json file must hold one JSON object".into(),
            });
        };
        cfg.tfvars.extend(m);
        return Ok(());
    }
    for i in hcl::parse(file, text)? {
        if let Item::Attr { name, expr, line } = i {
            let v = tfeval::eval_const(&expr).map_err(|m| InputError::Syntax {
                file: file.into(),
                line,
                column: 1,
                message: format!("{name}: a .tfvars value must be a constant: {m}"),
            })?;
            cfg.tfvars.insert(name, v);
        }
    }
    Ok(())
}

pub fn read(files: &[(String, String, TfKind)]) -> Result<Found, InputError> {
    let mut cfg = Config::default();
    for (file, text, kind) in files {
        match kind {
            TfKind::Config => collect(&mut cfg, file, hcl::parse(file, text)?),
            _ => tfvars(&mut cfg, file, text, *kind)?,
        }
    }
    let ev = tfeval::evaluate(&cfg);
    let mut found = Found {
        cluster: None,
        pools: Vec::new(),
        vnets: Vec::new(),
        subnets: Vec::new(),
        unset_vars: ev.unset_vars.clone(),
    };
    for (r, insts) in &ev.instances {
        for inst in insts {
            let path = format!("{}.{}{} (line {})", r.ty, r.name, inst.index, r.line);
            let o = Obj::new(&inst.value, path, &r.file);
            let fallback = format!("{}{}", r.name, inst.index);
            let loc = Some(format!("{}:{}", r.file, r.line));
            match (r.kind, r.ty.as_str()) {
                ("module", _) => {
                    super::tfmodule::read(&o, &r.name, &mut found)?;
                    super::tfavmvnet::read(&o, &r.name, &loc, &mut found)?;
                    if let Some((_, c)) =
                        found.cluster.as_mut().filter(|(_, c)| c.location.is_none())
                    {
                        located(c, &loc);
                    }
                }
                ("resource", "azurerm_kubernetes_cluster") => {
                    if let Some((prev, _)) = &found.cluster {
                        return Err(InputError::Combine { message: format!("{}: a second azurerm_kubernetes_cluster (the first is in {prev}); plan one cluster at a time", r.file) });
                    }
                    let mut c = cluster(&o)?;
                    located(&mut c, &loc);
                    found.cluster = Some((r.file.clone(), c));
                }
                ("resource", "azurerm_kubernetes_cluster_node_pool") => {
                    let mut p = pool(&o, &fallback, false)?;
                    p.location = loc.clone();
                    found.pools.push(p)
                }
                ("resource", "azurerm_virtual_network") => {
                    found.vnets.push(vnet(&o, fallback, &loc)?);
                }
                ("resource", "azurerm_subnet") => {
                    let vnet = o
                        .str(&["virtual_network_name"])?
                        .ok_or_else(|| o.err("virtual_network_name", "required"))?;
                    let mut sn = subnet(&o)?;
                    sn.location = loc.clone();
                    found.subnets.push((vnet, sn));
                }
                _ => {}
            }
        }
    }
    for (vnet, s) in std::mem::take(&mut found.subnets) {
        crate::model::attach_subnet(&mut found.vnets, vnet, s);
    }
    associations(&ev, &mut found);
    if cfg.resources.is_empty() {
        super::tfvarsonly::read(&cfg, &ev.vars, &mut found);
    }
    Ok(found)
}

/// A cluster and its pools are where the resource (or module call) is written.
fn located(c: &mut Cluster, loc: &Option<String>) {
    c.location = loc.clone();
    for p in &mut c.pools {
        p.location = loc.clone();
    }
}

/// `azurerm_virtual_network` with its inline `subnet` blocks.
fn vnet(o: &Obj, fallback: String, loc: &Option<String>) -> Result<Vnet, InputError> {
    let mut vn = Vnet {
        name: o.str(&["name"])?.unwrap_or(fallback),
        resource_group: o.str(&["resource_group_name"])?,
        address_prefixes: o.strs(&["address_space"])?,
        location: loc.clone(),
        ..Vnet::default()
    };
    for s in o.list(&["subnet"])? {
        let mut sn = subnet(&s)?;
        sn.location = loc.clone();
        vn.subnets.push(sn);
    }
    Ok(vn)
}

/// Route table / NSG associations and peerings refer to resources by ID; match them by name.
fn associations(ev: &tfeval::Evaluated, found: &mut Found) {
    for (r, insts) in &ev.instances {
        if r.kind != "resource" {
            continue;
        }
        let ty = r.ty.as_str();
        for inst in insts {
            let o = Obj::new(&inst.value, ty.to_string(), &r.file);
            let text = |k: &str| o.str(&[k]).ok().flatten().unwrap_or_default();
            match ty {
                "azurerm_subnet_route_table_association"
                | "azurerm_subnet_network_security_group_association" => {
                    if let Some((_, vn, sn)) = crate::resolve::parse_subnet_id(&text("subnet_id")) {
                        let target = if ty.contains("route_table") {
                            text("route_table_id")
                        } else {
                            text("network_security_group_id")
                        };
                        if let Some(s) = found
                            .vnets
                            .iter_mut()
                            .filter(|v| v.name.eq_ignore_ascii_case(&vn))
                            .flat_map(|v| v.subnets.iter_mut())
                            .find(|s| s.name.eq_ignore_ascii_case(&sn))
                        {
                            if ty.contains("route_table") {
                                s.route_table = Some(target);
                            } else {
                                s.nsg = Some(target);
                            }
                        }
                    }
                }
                "azurerm_virtual_network_peering" => {
                    let remote = text("remote_virtual_network_id");
                    let remote_name = remote.rsplit('/').next().unwrap_or("").to_string();
                    let prefixes: Vec<String> = found
                        .vnets
                        .iter()
                        .find(|v| v.name.eq_ignore_ascii_case(&remote_name))
                        .map(|v| v.address_prefixes.clone())
                        .unwrap_or_default();
                    let local = text("virtual_network_name");
                    if let Some(v) = found
                        .vnets
                        .iter_mut()
                        .find(|v| v.name.eq_ignore_ascii_case(&local))
                    {
                        v.peerings.push(crate::model::Peering {
                            name: text("name"),
                            remote_prefixes: prefixes,
                        });
                    }
                }
                _ => {}
            }
        }
    }
}

fn attr<'a>(body: &'a [Item], name: &str) -> Option<&'a hcl::Expr> {
    body.iter().find_map(|i| match i {
        Item::Attr { name: n, expr, .. } if n == name => Some(expr),
        _ => None,
    })
}

fn first_block<'a>(o: &Obj<'a>, key: &str) -> Result<Option<Obj<'a>>, InputError> {
    Ok(o.list(&[key])?.into_iter().next())
}

pub(super) fn cluster(o: &Obj) -> Result<Cluster, InputError> {
    let mut c = Cluster {
        name: o.str(&["name"])?,
        kubernetes_version: o.str(&["kubernetes_version"])?,
        ..Cluster::default()
    };
    if let Some(t) = o.str(&["sku_tier"])? {
        c.tier =
            Some(Tier::parse(&t).ok_or_else(|| o.err("sku_tier", format!("unknown tier '{t}'")))?);
    }
    if let Some(id) = first_block(o, "identity")? {
        c.identity_type = id.str(&["type"])?;
    }
    if let Some(np) = first_block(o, "network_profile")? {
        if let Some(p) = np.str(&["network_plugin"])? {
            c.network_plugin = Some(Plugin::parse(&p).ok_or_else(|| {
                np.err(
                    "network_plugin",
                    format!("unknown network plugin '{p}' (azure, kubenet, none)"),
                )
            })?);
        }
        c.network_plugin_mode = np.str(&["network_plugin_mode"])?;
        c.network_policy = np.str(&["network_policy"])?;
        c.network_dataplane = np.str(&["network_data_plane", "ebpf_data_plane"])?;
        c.pod_cidrs = np.strs(&["pod_cidrs"])?;
        if c.pod_cidrs.is_empty() {
            c.pod_cidrs = np.strs(&["pod_cidr"])?;
        }
        c.service_cidrs = np.strs(&["service_cidrs"])?;
        if c.service_cidrs.is_empty() {
            c.service_cidrs = np.strs(&["service_cidr"])?;
        }
        c.dns_service_ip = np.str(&["dns_service_ip"])?;
        c.docker_bridge_cidr = np.str(&["docker_bridge_cidr"])?;
        c.ip_families = np.strs(&["ip_versions"])?;
        c.outbound_type = np.str(&["outbound_type"])?;
        c.load_balancer_sku = np.str(&["load_balancer_sku"])?;
    }
    if let Some(api) = first_block(o, "api_server_access_profile")? {
        c.api_server_subnet_id = api.str(&["subnet_id"])?;
    }
    if let Some(agw) = first_block(o, "ingress_application_gateway")? {
        c.appgw_subnet_cidr = agw.str(&["subnet_cidr"])?;
    }
    if let Some(p) = first_block(o, "default_node_pool")? {
        c.pools.push(pool(&p, "default", true)?);
    }
    // Provider 1.x.
    for p in o.list(&["agent_pool_profile"])? {
        c.pools.push(pool(&p, "agentpool", c.pools.is_empty())?);
    }
    Ok(c)
}

pub(super) fn pool(o: &Obj, fallback: &str, system: bool) -> Result<Pool, InputError> {
    let mut p = Pool {
        name: o.str(&["name"])?.unwrap_or_else(|| fallback.to_string()),
        mode: o.str(&["mode"])?.or_else(|| {
            Some(if system {
                "System".into()
            } else {
                "User".into()
            })
        }),
        os_type: o.str(&["os_type"])?,
        count: o.u64(&["node_count", "count"])?,
        min_count: o.u64(&["min_count"])?,
        max_count: o.u64(&["max_count"])?,
        enable_auto_scaling: o.bool(&["auto_scaling_enabled", "enable_auto_scaling"])?,
        max_pods: o.u64(&["max_pods"])?,
        vnet_subnet_id: o.str(&["vnet_subnet_id"])?,
        pod_subnet_id: o.str(&["pod_subnet_id"])?,
        spot: o
            .str(&["priority"])?
            .is_some_and(|s| s.eq_ignore_ascii_case("spot")),
        availability_set: o
            .str(&["type"])?
            .is_some_and(|t| t.eq_ignore_ascii_case("AvailabilitySet")),
        ..Pool::default()
    };
    if let Some(u) = first_block(o, "upgrade_settings")? {
        p.max_surge = u.str(&["max_surge"])?;
        p.max_unavailable = u.str(&["max_unavailable"])?;
    }
    Ok(p)
}

pub(super) fn subnet(o: &Obj) -> Result<Subnet, InputError> {
    let mut prefixes = o.strs(&["address_prefixes"])?;
    if prefixes.is_empty() {
        prefixes = o.strs(&["address_prefix"])?;
    }
    let mut delegations = Vec::new();
    for d in o.list(&["delegation"])? {
        for sd in d.list(&["service_delegation"])? {
            if let Some(n) = sd.str(&["name"])? {
                delegations.push(n);
            }
        }
    }
    Ok(Subnet {
        id: None,
        name: o
            .str(&["name"])?
            .ok_or_else(|| o.err("name", "a subnet needs a name"))?,
        address_prefixes: prefixes,
        delegations,
        ip_configurations: None,
        other_ips: None,
        route_table: None,
        nsg: None,
        location: None,
    })
}
