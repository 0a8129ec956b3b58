//! Terraform azurerm: `azurerm_kubernetes_cluster`, `azurerm_kubernetes_cluster_node_pool`,
//! `azurerm_virtual_network`, `azurerm_subnet` (+ route table/NSG associations, peerings),
//! with literal values, variable defaults, `.tfvars`, locals and cross-resource references
//! (planner.md §7).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::azure::synthetic_subnet_id;
use super::hcl::{self, Expr, Item};
use super::value::{Obj, UNRESOLVED};
use super::InputError;
use crate::model::{Cluster, Plugin, Pool, Subnet, Tier, Vnet};

pub struct Found {
    pub cluster: Option<(String, Cluster)>,
    pub pools: Vec<Pool>,
    pub vnets: Vec<Vnet>,
}

struct Res {
    file: String,
    line: usize,
    body: Vec<Item>,
}

struct Module {
    vars: HashMap<String, Expr>,
    locals: HashMap<String, Expr>,
    /// (type, name) → resource, in file order.
    resources: Vec<((String, String), Res)>,
}

pub fn read(files: &[(String, String, bool)]) -> Result<Found, InputError> {
    let mut m = Module {
        vars: HashMap::new(),
        locals: HashMap::new(),
        resources: Vec::new(),
    };
    let mut tfvars = Vec::new();
    for (file, text, is_vars) in files {
        let items = hcl::parse(file, text)?;
        if *is_vars {
            tfvars.extend(items);
            continue;
        }
        for it in items {
            if let Item::Block {
                ty,
                labels,
                body,
                line,
            } = it
            {
                match (ty.as_str(), labels.as_slice()) {
                    ("variable", [name]) => {
                        if let Some(d) = attr(&body, "default") {
                            m.vars.insert(name.clone(), d.clone());
                        }
                    }
                    ("locals", []) => {
                        for i in body {
                            if let Item::Attr { name, expr, .. } = i {
                                m.locals.insert(name, expr);
                            }
                        }
                    }
                    ("resource", [t, n]) => m.resources.push((
                        (t.clone(), n.clone()),
                        Res {
                            file: file.clone(),
                            line,
                            body,
                        },
                    )),
                    _ => {}
                }
            }
        }
    }
    for i in tfvars {
        if let Item::Attr { name, expr, .. } = i {
            m.vars.insert(name, expr);
        }
    }
    let mut found = Found {
        cluster: None,
        pools: Vec::new(),
        vnets: Vec::new(),
    };
    let mut subnets: Vec<(String, Subnet)> = Vec::new();
    for ((ty, name), r) in &m.resources {
        let v = m.to_value(&r.body, 0);
        let path = format!("{ty}.{name} (line {})", r.line);
        let o = Obj::new(&v, path, &r.file);
        match ty.as_str() {
            "azurerm_kubernetes_cluster" => {
                if let Some((prev, _)) = &found.cluster {
                    return Err(InputError::Combine { message: format!("{}: a second azurerm_kubernetes_cluster (the first is in {prev}); plan one cluster at a time", r.file) });
                }
                found.cluster = Some((r.file.clone(), cluster(&o)?));
            }
            "azurerm_kubernetes_cluster_node_pool" => found.pools.push(pool(&o, name, false)?),
            "azurerm_virtual_network" => {
                let mut vn = Vnet {
                    name: o.str(&["name"])?.unwrap_or_else(|| name.clone()),
                    resource_group: o.str(&["resource_group_name"])?,
                    address_prefixes: o.strs(&["address_space"])?,
                    ..Vnet::default()
                };
                for s in o.list(&["subnet"])? {
                    vn.subnets.push(subnet(&s)?);
                }
                found.vnets.push(vn);
            }
            "azurerm_subnet" => {
                let vnet = o
                    .str(&["virtual_network_name"])?
                    .ok_or_else(|| o.err("virtual_network_name", "required"))?;
                subnets.push((vnet, subnet(&o)?));
            }
            _ => {}
        }
    }
    for (vnet, s) in subnets {
        crate::model::attach_subnet(&mut found.vnets, vnet, s);
    }
    // Associations and peerings refer to resources by ID; match them by name.
    for ((ty, _), r) in &m.resources {
        let v = m.to_value(&r.body, 0);
        let o = Obj::new(&v, ty.clone(), &r.file);
        let text = |k: &str| o.str(&[k]).ok().flatten().unwrap_or_default();
        match ty.as_str() {
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
    Ok(found)
}

fn attr<'a>(body: &'a [Item], name: &str) -> Option<&'a Expr> {
    body.iter().find_map(|i| match i {
        Item::Attr { name: n, expr, .. } if n == name => Some(expr),
        _ => None,
    })
}

fn first_block<'a>(o: &Obj<'a>, key: &str) -> Result<Option<Obj<'a>>, InputError> {
    Ok(o.list(&[key])?.into_iter().next())
}

fn cluster(o: &Obj) -> Result<Cluster, InputError> {
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

fn pool(o: &Obj, fallback: &str, system: bool) -> Result<Pool, InputError> {
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

fn subnet(o: &Obj) -> Result<Subnet, InputError> {
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
    })
}

impl Module {
    fn resource(&self, ty: &str, name: &str) -> Option<&Res> {
        self.resources
            .iter()
            .find(|((t, n), _)| t == ty && n == name)
            .map(|(_, r)| r)
    }

    /// A block body as JSON: attributes evaluated, nested blocks as arrays of objects.
    fn to_value(&self, body: &[Item], depth: u32) -> Value {
        let mut m = Map::new();
        for i in body {
            match i {
                Item::Attr { name, expr, .. } => {
                    m.insert(
                        name.clone(),
                        self.eval(expr, depth)
                            .unwrap_or_else(|e| Value::String(format!("{UNRESOLVED}{e}"))),
                    );
                }
                Item::Block { ty, body, .. } => {
                    let v = self.to_value(body, depth);
                    match m.get_mut(ty) {
                        Some(Value::Array(a)) => a.push(v),
                        _ => {
                            m.insert(ty.clone(), Value::Array(vec![v]));
                        }
                    }
                }
            }
        }
        Value::Object(m)
    }

    fn eval(&self, e: &Expr, depth: u32) -> Result<Value, String> {
        if depth > 32 {
            return Err("references nest too deeply".into());
        }
        match e {
            Expr::Str(s) => self.interpolate(s, depth),
            Expr::Num(n) => Ok(if n.fract() == 0.0 && *n >= 0.0 && *n < 9.0e15 {
                Value::from(*n as u64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Null => Ok(Value::Null),
            Expr::List(items) => items
                .iter()
                .map(|x| self.eval(x, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Expr::Map(items) => {
                let mut m = Map::new();
                for (k, v) in items {
                    m.insert(k.clone(), self.eval(v, depth)?);
                }
                Ok(Value::Object(m))
            }
            Expr::Complex(raw) => Err(format!("{raw} (expression outside the supported subset)")),
            Expr::Call(f, args) => self.call(f, args, depth),
            Expr::Ref(parts) => self.reference(parts, depth),
        }
    }

    fn reference(&self, parts: &[String], depth: u32) -> Result<Value, String> {
        let text = parts.join(".");
        let (base, rest): (Value, &[String]) = match parts {
            [v, name, rest @ ..] if v == "var" => (
                self.eval(
                    self.vars.get(name).ok_or_else(|| {
                        format!("{text}: variable '{name}' has no default and no .tfvars value")
                    })?,
                    depth + 1,
                )?,
                rest,
            ),
            [l, name, rest @ ..] if l == "local" => (
                self.eval(
                    self.locals
                        .get(name)
                        .ok_or_else(|| format!("{text}: local '{name}' is not defined"))?,
                    depth + 1,
                )?,
                rest,
            ),
            [ty, name, attr, rest @ ..] if ty.starts_with("azurerm_") => {
                let r = self.resource(ty, name).ok_or_else(|| {
                    format!("{text}: resource {ty}.{name} is not in the given files")
                })?;
                let v = if attr == "id" {
                    self.resource_id(ty, name, r, depth)?
                } else {
                    let e = attr_or_err(&r.body, attr).map_err(|m| format!("{text}: {m}"))?;
                    self.eval(e, depth + 1)?
                };
                (v, rest)
            }
            _ => return Err(format!("{text}: reference outside the supported subset")),
        };
        let mut v = base;
        for p in rest {
            v = match (p.strip_prefix('[').and_then(|x| x.strip_suffix(']')), &v) {
                (Some(i), Value::Array(a)) => i
                    .parse::<f64>()
                    .ok()
                    .and_then(|i| a.get(i as usize))
                    .cloned()
                    .ok_or_else(|| format!("{text}: index {i} out of range"))?,
                (Some(k), Value::Object(m)) => m
                    .get(k.trim_matches('"'))
                    .cloned()
                    .ok_or_else(|| format!("{text}: no key {k}"))?,
                (None, Value::Object(m)) => m
                    .get(p)
                    .cloned()
                    .ok_or_else(|| format!("{text}: no attribute {p}"))?,
                _ => return Err(format!("{text}: cannot traverse")),
            };
        }
        Ok(v)
    }

    fn resource_id(&self, ty: &str, name: &str, r: &Res, depth: u32) -> Result<Value, String> {
        let get = |k: &str| -> Result<Option<String>, String> {
            match attr(&r.body, k) {
                Some(e) => Ok(Some(as_text(&self.eval(e, depth + 1)?))),
                None => Ok(None),
            }
        };
        Ok(Value::String(match ty {
            "azurerm_subnet" => {
                let sn = get("name")?.unwrap_or_else(|| name.to_string());
                let vn = get("virtual_network_name")?.ok_or_else(|| format!("{ty}.{name}.id: virtual_network_name missing"))?;
                synthetic_subnet_id(get("resource_group_name")?.as_deref(), &vn, &sn)
            }
            "azurerm_virtual_network" => format!(
                "/subscriptions/{{subscription}}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}",
                get("resource_group_name")?.unwrap_or_else(|| "{resourceGroup}".into()),
                get("name")?.unwrap_or_else(|| name.to_string())
            ),
            _ => format!("tf:{ty}.{}", get("name")?.unwrap_or_else(|| name.to_string())),
        }))
    }

    fn interpolate(&self, s: &str, depth: u32) -> Result<Value, String> {
        if !s.contains("${") {
            return Ok(Value::String(s.to_string()));
        }
        let mut out = String::new();
        let mut rest = s;
        let mut whole: Option<Value> = None;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let mut d = 1;
            let mut end = None;
            for (j, c) in after.char_indices() {
                match c {
                    '{' => d += 1,
                    '}' => {
                        d -= 1;
                        if d == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("\"{s}\": unterminated ${{"))?;
            let inner = &after[..end];
            let e = hcl::parse_expr("interpolation", inner).map_err(|e| format!("\"{s}\": {e}"))?;
            let v = self.eval(&e, depth + 1)?;
            if i == 0 && end + 3 == rest.len() && out.is_empty() {
                whole = Some(v.clone());
            }
            out.push_str(&as_text(&v));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(whole.unwrap_or(Value::String(out)))
    }

    fn call(&self, f: &str, args: &[Expr], depth: u32) -> Result<Value, String> {
        let vals = args
            .iter()
            .map(|a| self.eval(a, depth))
            .collect::<Result<Vec<_>, _>>()?;
        let text = |i: usize| vals.get(i).map(as_text).unwrap_or_default();
        match f {
            "tolist" | "toset" | "tostring" | "tonumber" => vals
                .first()
                .cloned()
                .ok_or_else(|| format!("{f}() needs an argument")),
            "lower" => Ok(Value::String(text(0).to_lowercase())),
            "upper" => Ok(Value::String(text(0).to_uppercase())),
            "concat" => Ok(Value::Array(
                vals.iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .collect(),
            )),
            "format" => {
                let mut s = text(0);
                for i in 1..vals.len() {
                    if let Some(p) = s.find("%s").or_else(|| s.find("%d")) {
                        s.replace_range(p..p + 2, &text(i));
                    }
                }
                Ok(Value::String(s))
            }
            "cidrsubnet" => {
                let base: ipnet::IpNet = text(0)
                    .parse()
                    .map_err(|_| format!("cidrsubnet: '{}' is not a CIDR", text(0)))?;
                let newbits: u8 = text(1)
                    .parse()
                    .map_err(|_| "cidrsubnet: newbits is not a number".to_string())?;
                let num: u128 = text(2)
                    .parse()
                    .map_err(|_| "cidrsubnet: netnum is not a number".to_string())?;
                let ipnet::IpNet::V4(b) = base else {
                    return Err("cidrsubnet: only IPv4 is supported".into());
                };
                let len = b.prefix_len() + newbits;
                if len > 32 || num >= (1u128 << newbits) {
                    return Err(format!(
                        "cidrsubnet({}, {newbits}, {num}) is out of range",
                        text(0)
                    ));
                }
                let addr = u32::from(b.network()) | ((num as u32) << (32 - u32::from(len)));
                Ok(Value::String(format!(
                    "{}/{len}",
                    std::net::Ipv4Addr::from(addr)
                )))
            }
            other => Err(format!("{other}() is not supported")),
        }
    }
}

fn attr_or_err<'a>(body: &'a [Item], name: &str) -> Result<&'a Expr, String> {
    attr(body, name).ok_or_else(|| format!("attribute {name} is not set"))
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
