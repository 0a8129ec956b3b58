//! `variables.tf` and `.tfvars` without the configuration that uses them (issue 12): the
//! variables are read by the names AKS modules and examples give them, since nothing else says
//! what they mean. docs/plan.md, "Terraform variables without resources".

use serde_json::{Map, Value};

use super::terraform::Found;
use super::tfeval::Config;
use crate::model::{Cluster, Plugin, Pool, Subnet, Tier, Vnet};

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

fn num(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Which part of the plan a variable name means, by the words it contains.
fn apply(name: &str, v: &Value, c: &mut Cluster, pool: &mut Pool, vnet: &mut Vnet) -> bool {
    let n = name.to_ascii_lowercase();
    let has = |w: &str| n.contains(w);
    if has("service_cidr") {
        c.service_cidrs = texts(v);
    } else if has("dns_service_ip") {
        c.dns_service_ip = text(v);
    } else if has("pod_cidr") {
        c.pod_cidrs = texts(v);
    } else if has("network_plugin_mode") {
        c.network_plugin_mode = text(v);
    } else if has("network_plugin") {
        c.network_plugin = text(v).as_deref().and_then(Plugin::parse);
    } else if has("network_policy") {
        c.network_policy = text(v);
    } else if has("sku_tier") {
        c.tier = text(v).as_deref().and_then(Tier::parse);
    } else if has("max_pods") {
        pool.max_pods = num(v);
    } else if has("min_count") {
        pool.min_count = num(v);
    } else if has("max_count") {
        pool.max_count = num(v);
    } else if has("node_count") || n == "agents_count" {
        pool.count = num(v);
    } else if has("address_space") || n == "vnet_cidr" || n == "vnet_address_prefix" {
        vnet.address_prefixes = texts(v);
    } else if has("subnet") && (has("prefix") || has("cidr")) {
        vnet.subnets.push(Subnet {
            name: n
                .trim_end_matches("_address_prefixes")
                .trim_end_matches("_address_prefix")
                .trim_end_matches("_prefixes")
                .trim_end_matches("_prefix")
                .trim_end_matches("_cidr")
                .to_string(),
            address_prefixes: texts(v),
            ..Subnet::default()
        });
    } else {
        return false;
    }
    true
}

pub fn read(cfg: &Config, vars: &Map<String, Value>, found: &mut Found) {
    let mut c = Cluster {
        name: Some("(from Terraform variables)".into()),
        ..Cluster::default()
    };
    let mut pool = Pool {
        name: "default".into(),
        mode: Some("System".into()),
        ..Pool::default()
    };
    let mut vnet = Vnet {
        name: "(from Terraform variables)".into(),
        ..Vnet::default()
    };
    let mut cluster_vars = 0;
    for (name, ..) in &cfg.vars {
        let Some(v) = vars.get(name) else { continue };
        let before = (vnet.address_prefixes.len(), vnet.subnets.len());
        if apply(name, v, &mut c, &mut pool, &mut vnet)
            && before == (vnet.address_prefixes.len(), vnet.subnets.len())
        {
            cluster_vars += 1;
        }
    }
    if cluster_vars > 0 {
        // One node subnet: the pool joins it by its unique name.
        if vnet.subnets.len() == 1 {
            pool.vnet_subnet_id = Some(vnet.subnets[0].name.clone());
        }
        c.pools.push(pool);
        found.cluster = Some((cfg.vars.first().map(|v| v.2.clone()).unwrap_or_default(), c));
    }
    if !vnet.address_prefixes.is_empty() || !vnet.subnets.is_empty() {
        found.vnets.push(vnet);
    }
}
