//! Planning speed for the generated big cluster of issue 5: 100 pools, 5,000 nodes, a VNet of
//! 200 subnets and 50 peerings. Plain `harness = false` main; prints medians.
//!
//! Run: `cargo bench -p aksnet-plan --bench plan` (add `--profile dev` on a shared machine).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a failed run

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aksnet_plan::{input, plan, render, PlanOptions};

/// The spec file of a cluster with `pools` pools of `per_pool` nodes, `subnets` subnets (the
/// first `pools` of them used by one pool each) and `peerings` peerings.
fn generate(pools: usize, per_pool: usize, subnets: usize, peerings: usize) -> String {
    let mut s = String::from(
        "apiVersion: aksnet/v1\ncluster:\n  name: big\n  tier: standard\n  kubernetesVersion: \"1.33\"\n  network:\n    plugin: azure\n    serviceCidr: 192.168.0.0/16\n    dnsServiceIp: 192.168.0.10\n  pools:\n",
    );
    for i in 0..pools {
        let mode = if i == 0 { "System" } else { "User" };
        s.push_str(&format!("    - {{name: pool{i}, mode: {mode}, count: {per_pool}, maxPods: 30, subnet: snet{i}, maxSurge: \"1\"}}\n"));
    }
    s.push_str("vnet:\n  name: big-vnet\n  addressSpace: [10.0.0.0/8]\n  subnets:\n");
    for i in 0..subnets {
        // /21 subnets: 2,043 usable, room for 50 nodes × 31 + surge.
        let base = (i as u32) << 11;
        s.push_str(&format!(
            "    - {{name: snet{i}, prefix: 10.{}.{}.0/21}}\n",
            (base >> 16) & 0xff,
            (base >> 8) & 0xff
        ));
    }
    s.push_str("  peerings:\n");
    for i in 0..peerings {
        s.push_str(&format!(
            "    - {{name: peer{i}, prefixes: [100.{}.0.0/16]}}\n",
            64 + i
        ));
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(
    label: &str,
    pools: usize,
    per_pool: usize,
    subnets: usize,
    peerings: usize,
    runs: usize,
) {
    let text = generate(pools, per_pool, subnets, peerings);
    let docs = [(PathBuf::from("big.yaml"), text)];
    let mut t_parse = Vec::new();
    let mut t_plan = Vec::new();
    let mut t_json = Vec::new();
    let mut t_human = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let input = input::load_texts(&docs).expect("generated spec loads");
        t_parse.push(t.elapsed());
        let t = Instant::now();
        let report = plan(&input, &PlanOptions::default());
        t_plan.push(t.elapsed());
        let t = Instant::now();
        let j = render::json(&report);
        t_json.push(t.elapsed());
        let t = Instant::now();
        let h = render::human(&report, false);
        t_human.push(t.elapsed());
        assert!(!j.is_empty() && !h.is_empty());
        last = Some(report);
    }
    let r = last.expect("at least one run");
    assert_eq!(r.cluster.nodes_max, (pools * per_pool) as u64);
    println!(
        "{label}: {pools} pools, {} nodes, {subnets} subnets, {peerings} peerings, {} findings: parse {:?}, plan {:?}, json {:?}, human {:?} (median of {runs})",
        pools * per_pool,
        r.findings.len(),
        median(t_parse),
        median(t_plan),
        median(t_json),
        median(t_human)
    );
}

/// The same big cluster as Terraform: one cluster, 99 node pools made by `count`, a VNet whose
/// 200 subnets come from a `dynamic` block over `cidrsubnet`, locals and variables; every pool
/// joins its subnet through `"${azurerm_virtual_network.v.id}/subnets/snet${count.index}"`.
fn generate_tf(pools: usize, per_pool: usize, subnets: usize) -> String {
    format!(
        r#"variable "per_pool" {{ default = {per_pool} }}
locals {{
  subnets = {{ for i in range(0, {subnets}) : "snet${{i}}" => cidrsubnet("10.0.0.0/8", 13, i) }}
}}
resource "azurerm_virtual_network" "v" {{
  name                = "big-vnet"
  resource_group_name = "rg"
  address_space       = ["10.0.0.0/8"]
  dynamic "subnet" {{
    for_each = local.subnets
    content {{
      name           = subnet.key
      address_prefix = subnet.value
    }}
  }}
}}
resource "azurerm_kubernetes_cluster" "big" {{
  name     = "big"
  sku_tier = "Standard"
  default_node_pool {{
    name           = "pool0"
    node_count     = var.per_pool
    max_pods       = 30
    vnet_subnet_id = "${{azurerm_virtual_network.v.id}}/subnets/snet0"
    upgrade_settings {{ max_surge = "1" }}
  }}
  network_profile {{
    network_plugin = "azure"
    service_cidr   = "192.168.0.0/16"
    dns_service_ip = "192.168.0.10"
  }}
}}
resource "azurerm_kubernetes_cluster_node_pool" "p" {{
  count          = {rest}
  name           = "pool${{count.index + 1}}"
  node_count     = var.per_pool
  max_pods       = 30
  vnet_subnet_id = "${{azurerm_virtual_network.v.id}}/subnets/snet${{count.index + 1}}"
  upgrade_settings {{ max_surge = "1" }}
}}
"#,
        rest = pools - 1
    )
}

fn measure_tf(label: &str, pools: usize, per_pool: usize, subnets: usize, runs: usize) {
    let docs = [(
        PathBuf::from("big.tf"),
        generate_tf(pools, per_pool, subnets),
    )];
    let mut t_parse = Vec::new();
    let mut t_plan = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let input = input::load_texts(&docs).expect("generated Terraform loads");
        t_parse.push(t.elapsed());
        let t = Instant::now();
        last = Some(plan(&input, &PlanOptions::default()));
        t_plan.push(t.elapsed());
    }
    let r = last.expect("at least one run");
    assert_eq!(r.cluster.nodes_max, (pools * per_pool) as u64);
    assert_eq!(r.capacity.len(), pools, "every pool joined its subnet");
    println!(
        "{label}: Terraform, {pools} pools (count), {} nodes, {subnets} subnets (dynamic), {} findings: parse+evaluate {:?}, plan {:?} (median of {runs})",
        pools * per_pool,
        r.findings.len(),
        median(t_parse),
        median(t_plan)
    );
}

fn main() {
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    measure("small ", 10, 50, 20, 5, runs);
    measure("medium", 50, 50, 100, 25, runs);
    measure("big   ", 100, 50, 200, 50, runs);
    measure_tf("big-tf", 100, 50, 200, runs);
}
