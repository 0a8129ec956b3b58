//! Each input format, from fixtures in the shapes those tools produce, and every unusable
//! input with the file and the position or key in its message.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use aksnet_plan::model::{Origin, Plugin, Tier};
use aksnet_plan::{input, plan, PlanOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_fixtures(names: &[&str]) -> Result<aksnet_plan::PlanInput, input::InputError> {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    input::load_files(&paths)
}

fn load(names: &[&str]) -> aksnet_plan::PlanInput {
    load_fixtures(names).unwrap_or_else(|e| panic!("{e}"))
}

fn err(names: &[&str]) -> String {
    load_fixtures(names).unwrap_err().to_string()
}

/// The first finding of `rule`, or a failure listing all findings.
fn finding<'a>(r: &'a aksnet_plan::Report, rule: &str) -> &'a aksnet_plan::Finding {
    r.findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule}: {:?}", r.findings))
}

/// (rule, file:line) of every finding.
fn locations(r: &aksnet_plan::Report) -> Vec<(String, String)> {
    r.findings
        .iter()
        .map(|f| (f.rule.to_string(), f.location.clone().unwrap_or_default()))
        .collect()
}

/// (name, first prefix) of each subnet of a VNet.
fn subnet_prefixes(v: &aksnet_plan::model::Vnet) -> Vec<(&str, &str)> {
    v.subnets
        .iter()
        .map(|s| (s.name.as_str(), s.address_prefixes[0].as_str()))
        .collect()
}

/// The plan lists `field = value` under "Defaults applied".
fn has_default(r: &aksnet_plan::Report, field: &str, value: &str) -> bool {
    r.defaults_applied
        .iter()
        .any(|d| d.field == field && d.value == value)
}

/// The pool's subnet reference ends with `suffix` (`/virtualNetworks/V/subnets/S`).
fn assert_subnet_ref(pool: &aksnet_plan::model::Pool, suffix: &str) {
    assert!(
        pool.vnet_subnet_id
            .as_deref()
            .is_some_and(|s| s.ends_with(suffix)),
        "{:?}",
        pool.vnet_subnet_id
    );
}

#[test]
fn spec_yaml() {
    let i = load(&["nodesubnet-legacy-doc.yaml"]);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(i.origin, Origin::Spec);
    assert_eq!(c.network_plugin, Some(Plugin::Azure));
    assert_eq!(c.tier, Some(Tier::Standard));
    assert_eq!(c.pools[0].max_pods, Some(30));
    assert_eq!(
        i.vnets[0].subnets[0].address_prefixes,
        vec!["172.16.1.0/24"]
    );
    assert_eq!(i.sources[0].kind, "aksnet spec");
}

#[test]
fn az_aks_show_with_old_casing_and_vnet_show() {
    let i = load(&["aks-show-kubenet.json", "vnet-show.json"]);
    assert_eq!(i.origin, Origin::AzCli);
    let c = i.cluster.as_ref().unwrap();
    assert!(c.live);
    // `dnsServiceIp` and `vnetSubnetId` (old CLI casing) are read case-insensitively.
    assert_eq!(c.dns_service_ip.as_deref(), Some("10.0.0.10"));
    assert_subnet_ref(&c.pools[0], "/subnets/aks-nodes");
    assert_eq!(c.pools[0].max_surge.as_deref(), Some("33%"));
    let v = &i.vnets[0];
    assert_eq!(v.resource_group.as_deref(), Some("rg-net"));
    assert_eq!(v.subnets[0].ip_configurations, Some(4));
    assert_eq!(v.peerings[0].remote_prefixes, vec!["172.20.0.0/16"]);
    let r = plan(&i, &PlanOptions::default());
    // 4 ipConfigurations, 3 of them the live cluster's nodes: 1 other tenant.
    assert_eq!(r.capacity[0].other, 1);
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule == "S2" && f.message.contains("10.0.239.0/24")));
    assert_eq!(r.capacity[0].required_with_surge, 5 + 2);
}

#[test]
fn arm_get_nodepool_show_and_vnet_get() {
    let i = load(&[
        "arm-get-nodesubnet.json",
        "vnet-get-prod.json",
        "nodepool-show.json",
    ]);
    assert_eq!(i.origin, Origin::Arm);
    assert_eq!(i.extra_pools.len(), 1);
    let r = plan(&i, &PlanOptions::default());
    assert_eq!(r.capacity[0].pools, vec!["system", "apps", "batch"]);
    // 3×31 + 6×51 + 20×31 = 1,019 at maximum against 251: InsufficientSubnetSize.
    assert_eq!(r.capacity[0].required, 1019);
    let n1 = finding(&r, "N1");
    assert!(n1.message.starts_with("Pre-allocated IPs 1019 exceeds IPs available 251 in Subnet Cidr 172.16.0.0/24, Subnet Name aks."));
    // The peering's remote range is the service CIDR.
    assert!(r.findings.iter().any(|f| f.rule == "S4"));
}

#[test]
fn rest_example_takes_the_200_body() {
    let i = load(&["rest-example-overlay.json"]);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.network_plugin_mode.as_deref(), Some("overlay"));
    assert_eq!(c.pools[0].max_pods, Some(250));
    let r = plan(&i, &PlanOptions::default());
    assert_eq!(r.model, "Azure CNI Overlay");
    assert!(
        has_default(&r, "agentPoolProfiles[*].vnetSubnetID", "10.224.0.0/16"),
        "{:?}",
        r.defaults_applied
    );
    assert!(!r.has_errors(), "{:?}", r.findings);
}

#[test]
fn arm_template_with_comments_variables_and_parameters_file() {
    let i = load(&["arm-template.json", "arm-template.parameters.json"]);
    assert_eq!(i.origin, Origin::ArmTemplate);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.name.as_deref(), Some("arm-kubenet"));
    assert_eq!(c.service_cidrs, vec!["10.96.0.0/16"]);
    assert_eq!(
        c.pools[0].count,
        Some(5),
        "parameters file overrides the default"
    );
    assert_eq!(c.pools[0].max_pods, Some(110));
    assert_eq!(i.vnets[0].name, "arm-kubenet-vnet");
    let r = plan(&i, &PlanOptions::default());
    assert_eq!(
        r.capacity[0].cidr, "172.20.1.0/24",
        "the pool joined the template's subnet by name"
    );
    assert!(!r.has_errors(), "{:?}", r.findings);
    // Without the parameters file, serviceCidr has no value: not fatal (issue 12), a finding
    // naming the file, the field and the expression; the rest of the plan still runs.
    let i = load(&["arm-template.json"]);
    let r = plan(&i, &PlanOptions::default());
    let f = finding(&r, "IN1");
    assert_eq!(
        f.field,
        "resources[1].properties.networkProfile.serviceCidr"
    );
    assert!(
        f.message.contains("parameters('serviceCidr')"),
        "{}",
        f.message
    );
    // The line of the expression itself (issue 12: file:line for JSON too).
    assert!(
        f.location
            .as_deref()
            .unwrap()
            .ends_with("arm-template.json:54"),
        "{:?}",
        f.location
    );
    assert!(!r.capacity.is_empty());
}

#[test]
fn terraform_resources_variables_and_references() {
    let i = load(&["main.tf", "variables.tf"]);
    assert_eq!(i.origin, Origin::Terraform);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.pools[0].max_pods, Some(30));
    assert_eq!(c.pools[0].mode.as_deref(), Some("System"));
    assert_eq!(i.extra_pools[0].max_count, Some(5));
    assert_eq!(i.vnets[0].subnets[0].address_prefixes, vec!["10.50.0.0/24"]);
    let r = plan(&i, &PlanOptions::default());
    assert_eq!(r.capacity[0].pools, vec!["system", "apps"]);
    assert_eq!(r.capacity[0].required, (3 + 5) * 31);
}

#[test]
fn terraform_tfvars_override_defaults() {
    let i = load(&["main.tf", "variables.tf", "prod.tfvars"]);
    assert_eq!(i.cluster.unwrap().pools[0].max_pods, Some(50));
}

#[test]
fn unusable_inputs_name_file_and_position_or_key() {
    let cases = [
        ("bad/invalid.json", "invalid.json:3:42: invalid JSON"),
        ("bad/invalid.yaml", "invalid.yaml:2:1: invalid YAML"),
        (
            "bad/unknown-key.yaml",
            "unknown-key.yaml: cluster.pools[0].maxpod: unknown key",
        ),
        (
            "bad/bad-count.yaml",
            "bad-count.yaml: cluster.pools[0].count: expected a whole number ≥ 0, got \"many\"",
        ),
        (
            "bad/bad-plugin.yaml",
            "bad-plugin.yaml: cluster.network.plugin: unknown network plugin 'calico'",
        ),
        (
            "bad/unknown-shape.json",
            "unknown-shape.json: not a recognised input",
        ),
        ("bad/broken.tf", "broken.tf:5:5: invalid HCL"),
        ("does-not-exist.json", "does-not-exist.json: cannot read"),
    ];
    for (file, want) in cases {
        let e = err(&[file]);
        assert!(e.contains(want), "{file}: {e}");
    }
    let e = err(&["aks-show-kubenet.json", "arm-get-nodesubnet.json"]);
    assert!(e.contains("a second cluster"), "{e}");
}

/// Plan input from (file name, text) pairs; the name's extension picks the format.
fn tf(files: &[(&str, &str)]) -> Result<aksnet_plan::PlanInput, String> {
    let docs: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), t.to_string()))
        .collect();
    input::load_texts(&docs).map_err(|e| e.to_string())
}

/// Issue 12: the full expression grammar, `dynamic` blocks, `count`/`for_each`, variables
/// without a value that feed only names, and `.tfvars.json`.
#[test]
fn terraform_full_expressions_dynamic_count_and_tfvars_json() {
    let main = r#"
variable "prefix" {}
variable "env" {
  default = "dev"
  validation {
    condition     = !contains(["x"], var.env) && length(var.env) > 0
    error_message = "bad"
  }
}
variable "subnets" {
  default = { nodes = 0, apps = 1 }
}
locals {
  big   = var.env == "prod"
  cidr  = local.big ? "10.8.0.0/16" : "10.9.0.0/16"
  names = [for k, v in var.subnets : upper(k) if v >= 0]
}
resource "azurerm_virtual_network" "v" {
  name                = "${var.prefix}-vnet"
  resource_group_name = "rg"
  address_space       = [local.cidr]
  dynamic "subnet" {
    for_each = var.subnets
    content {
      name           = subnet.key
      address_prefix = cidrsubnet(local.cidr, 8, subnet.value)
    }
  }
}
resource "azurerm_kubernetes_cluster" "aks" {
  name = "${var.prefix}-aks"
  default_node_pool {
    name           = "system"
    node_count     = -(-3)
    vnet_subnet_id = "${azurerm_virtual_network.v.id}/subnets/nodes"
  }
  network_profile {
    network_plugin = "azure"
    service_cidr   = "10.100.0.0/16"
    dns_service_ip = cidrhost("10.100.0.0/16", 10)
  }
}
resource "azurerm_kubernetes_cluster_node_pool" "extra" {
  count          = 2
  name           = "pool${count.index}"
  node_count     = count.index + 1
  vnet_subnet_id = "${azurerm_virtual_network.v.id}/subnets/apps"
}
"#;
    let i = tf(&[
        ("main.tf", main),
        ("prod.tfvars.json", r#"{"env": "prod"}"#),
    ])
    .unwrap();
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.network_plugin, Some(Plugin::Azure));
    assert_eq!(c.dns_service_ip.as_deref(), Some("10.100.0.10"));
    assert_eq!(c.pools[0].count, Some(3));
    let v = &i.vnets[0];
    assert_eq!(v.address_prefixes, vec!["10.8.0.0/16"]);
    assert_eq!(
        subnet_prefixes(v),
        vec![("nodes", "10.8.0.0/24"), ("apps", "10.8.1.0/24")]
    );
    let pools: Vec<(String, Option<u64>)> = i
        .extra_pools
        .iter()
        .map(|p| (p.name.clone(), p.count))
        .collect();
    assert_eq!(
        pools,
        vec![
            ("pool0".to_string(), Some(1)),
            ("pool1".to_string(), Some(2))
        ]
    );
}

/// The well-known AKS modules are read with their documented defaults.
#[test]
fn terraform_aks_module_call() {
    let main = r#"
module "aks" {
  source          = "Azure/aks/azurerm"
  version         = "9.0.0"
  prefix          = "demo"
  network_plugin  = "azure"
  agents_max_pods = 30
  vnet_subnet     = { id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes" }
  node_pools = {
    apps = { name = "apps", node_count = 4, max_pods = 50 }
  }
}
"#;
    let i = tf(&[("main.tf", main)]).unwrap();
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.network_plugin, Some(Plugin::Azure));
    assert_eq!(c.tier, Some(Tier::Free));
    assert_eq!(c.pools[0].name, "nodepool");
    assert_eq!(c.pools[0].count, Some(2));
    assert_eq!(c.pools[0].max_pods, Some(30));
    assert_eq!(c.pools[1].name, "apps");
    assert_eq!(c.pools[1].count, Some(4));
    let avm = r#"
module "aks" {
  source = "Azure/avm-res-containerservice-managedcluster/azurerm"
  name   = "avm"
  default_agent_pool = { vm_size = "Standard_D4s_v5", vnet_subnet_id = "x" }
  network_profile = { network_plugin = "azure", network_plugin_mode = "overlay", pod_cidr = "192.168.0.0/16" }
}
"#;
    let i = tf(&[("main.tf", avm)]).unwrap();
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.pools[0].name, "systempool");
    assert_eq!(c.pools[0].count, Some(3));
    assert_eq!(c.network_plugin_mode.as_deref(), Some("overlay"));
    assert_eq!(i.origin, Origin::Terraform);
}

/// `variables.tf` + `.tfvars` without `main.tf` plan, read by the variables' names.
#[test]
fn terraform_variables_without_resources() {
    let vars = r#"
variable "vnet_address_space" { default = ["10.30.0.0/16"] }
variable "aks_subnet_prefix" { default = "10.30.1.0/24" }
variable "network_plugin" { default = "azure" }
variable "service_cidr" { default = "10.31.0.0/16" }
variable "dns_service_ip" { default = "10.31.0.10" }
variable "node_count" { type = number }
variable "max_pods" { default = 30 }
"#;
    let i = tf(&[("variables.tf", vars), ("prod.tfvars", "node_count = 5\n")]).unwrap();
    let r = plan(&i, &PlanOptions::default());
    let c = &r.capacity[0];
    assert_eq!(c.cidr, "10.30.1.0/24");
    // Node Subnet: 5 × 31 = 155 at maximum, one surge node more: 186.
    assert_eq!(c.required, 155);
    assert_eq!(c.required_with_surge, 186);
    assert!(!r.has_errors(), "{:?}", r.findings);
}

/// An az CLI script: variables, continuations, `$(az ... --query id -o tsv)`, nodepool add.
#[test]
fn az_cli_script() {
    let i = load(&["az-create.azcli"]);
    assert_eq!(i.origin, Origin::AzScript);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.network_plugin, Some(Plugin::Azure));
    assert_eq!(c.tier, Some(Tier::Standard));
    assert_eq!(i.extra_pools[0].max_count, Some(10));
    let r = plan(&i, &PlanOptions::default());
    let nodes = &r.capacity[0];
    assert_eq!(nodes.cidr, "10.40.0.0/22");
    // Node Subnet: (3 + 10) × 31 = 403 at maximum; surge 1 + 1 nodes: 465.
    assert_eq!(nodes.required, 403);
    assert_eq!(nodes.required_with_surge, 465);
    assert!(
        has_default(&r, "agentPoolProfiles[0].name", "nodepool1"),
        "{:?}",
        r.defaults_applied
    );
    assert!(!r.has_errors(), "{:?}", r.findings);
}

/// Bicep with a `.bicepparam` file: params, vars, a `for` over subnets, `existing` + `parent`,
/// `resourceId`, `cidrSubnet`/`cidrHost`, and `uniqueString` in a name (unknown, not needed).
#[test]
fn bicep_with_bicepparam() {
    let i = load(&["main.bicep", "main.bicepparam"]);
    let c = i.cluster.as_ref().unwrap();
    assert_eq!(c.pools[0].count, Some(5), "the .bicepparam value wins");
    assert_eq!(c.dns_service_ip.as_deref(), Some("10.61.0.10"));
    let r = plan(&i, &PlanOptions::default());
    let rows: Vec<(&str, &str)> = r
        .capacity
        .iter()
        .map(|c| (c.name.as_str(), c.cidr.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![("nodes", "10.70.0.0/22"), ("pods", "10.70.16.0/20")]
    );
    // Pod Subnet, dynamic: 16 addresses per node; 5 nodes + 1 surge = 96.
    assert_eq!(r.capacity[1].required_with_surge, 96);
    assert!(!r.has_errors(), "{:?}", r.findings);
}

/// A needed Terraform value that cannot be resolved is a finding with file:line and the
/// expression; the rest of the plan runs.
#[test]
fn terraform_needed_unknown_is_a_finding_with_file_and_line() {
    let main = r#"
variable "svc" {}
resource "azurerm_kubernetes_cluster" "aks" {
  name = "x"
  default_node_pool {
    name       = "system"
    node_count = 3
  }
  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    service_cidr        = var.svc
  }
}
"#;
    let i = tf(&[("main.tf", main)]).unwrap();
    let r = plan(&i, &PlanOptions::default());
    let f = finding(&r, "IN1");
    assert_eq!(f.location.as_deref(), Some("main.tf:12"));
    assert!(f.message.contains("var.svc"), "{}", f.message);
    assert!(f.field.contains("network_profile"), "{}", f.field);
    assert!(!r.capacity.is_empty());
}

/// Findings carry the file:line of what they concern where the input has lines.
#[test]
fn findings_carry_file_and_line() {
    let i = load(&["main.tf", "variables.tf"]);
    let r = plan(&i, &PlanOptions::default());
    let u4 = finding(&r, "U4");
    assert!(
        u4.location.as_deref().unwrap().ends_with("main.tf:9"),
        "the subnet's resource: {:?}",
        u4.location
    );
    let s8 = finding(&r, "S8");
    assert!(s8.location.as_deref().unwrap().ends_with("main.tf:16"));
    let i = load(&["az-create.azcli"]);
    let r = plan(&i, &PlanOptions::default());
    let s8 = finding(&r, "S8");
    assert!(s8
        .location
        .as_deref()
        .unwrap()
        .ends_with("az-create.azcli:17"));
}

/// Issue 12: a range's pod maximum counts at most the nodes the cluster may have.
#[test]
fn range_pod_maximum_is_capped_by_the_cluster_limits() {
    let spec = r#"
apiVersion: aksnet/v1
cluster:
  name: k
  tier: standard
  network: {plugin: kubenet, podCidr: 10.244.0.0/16, serviceCidr: 10.200.0.0/16, dnsServiceIp: 10.200.0.10}
  pools: [{name: system, mode: System, count: 3, maxPods: 110, subnet: nodes}]
vnet: {name: v, addressSpace: [172.16.0.0/16], subnets: [{name: nodes, prefix: 172.16.0.0/16}]}
"#;
    let i = tf(&[("k.yaml", spec)]).unwrap();
    let r = plan(&i, &PlanOptions::default());
    let nodes = r.capacity.iter().find(|c| c.name == "nodes").unwrap();
    assert_eq!(nodes.max_nodes, 65_531);
    // kubenet's 400 routes bind: 400 × 110 pods, not 65,531 × 110.
    assert_eq!(nodes.max_pods, 44_000);
}

/// Locals may refer to each other in any order (here 40 deep, declared last-first).
#[test]
fn terraform_locals_in_any_order() {
    let mut main = String::from("locals {\n");
    for i in (1..40).rev() {
        main.push_str(&format!("  v{i} = local.v{}\n", i - 1));
    }
    main.push_str("  v0 = \"10.9.0.0/16\"\n}\n");
    main.push_str("resource \"azurerm_virtual_network\" \"v\" {\n  name = \"v\"\n  address_space = [local.v39]\n  subnet {\n    name = \"s\"\n    address_prefix = cidrsubnet(local.v39, 8, 1)\n  }\n}\n");
    let i = tf(&[("main.tf", &main)]).unwrap();
    assert_eq!(i.vnets[0].address_prefixes, vec!["10.9.0.0/16"]);
    assert_eq!(i.vnets[0].subnets[0].address_prefixes, vec!["10.9.1.0/24"]);
}

/// Issue 12: JSON and YAML inputs carry file:line too (a span pass over the text): the
/// finding points at the object its field names (pool, subnet, cluster).
#[test]
fn json_and_yaml_findings_carry_file_and_line() {
    let i = load(&["overlay-broken.yaml"]);
    let r = plan(&i, &PlanOptions::default());
    let locs = locations(&r);
    for (rule, loc) in &locs {
        // Every finding here is on the network profile (`network:` is line 5).
        assert!(loc.ends_with("overlay-broken.yaml:5"), "{rule}: {loc}");
    }
    let i = load(&["aks-show-kubenet.json", "vnet-show.json"]);
    let r = plan(&i, &PlanOptions::default());
    let locs = locations(&r);
    let at = |rule: &str| {
        locs.iter()
            .find(|(r, _)| r == rule)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| panic!("no {rule}: {locs:?}"))
    };
    // `networkProfile` is line 31 of the az aks show output; the subnet N5 names is the
    // element that starts on line 10 of the vnet show output.
    assert!(at("S2").ends_with("aks-show-kubenet.json:31"), "{locs:?}");
    assert!(at("N5").ends_with("vnet-show.json:10"), "{locs:?}");
    for (rule, loc) in &locs {
        assert!(loc.contains(".json:"), "{rule} without a line: {loc}");
    }
}

/// Issue 12: a value from a module's output (a subnet ID from a VNet module) or from another
/// resource's `.properties` resolves where the files define it; an output the files cannot
/// resolve is an IN1 finding naming the file and line, never fatal.
#[test]
fn bicep_module_outputs_and_other_resources_properties() {
    let network = r#"
param prefix string = '10.80.0.0/16'
resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {
  name: 'vnet-spoke'
  location: 'westeurope'
  properties: {
    addressSpace: { addressPrefixes: [ prefix ] }
    subnets: [
      { name: 'nodes', properties: { addressPrefix: cidrSubnet(prefix, 22, 0) } }
    ]
  }
}
output nodeSubnetId string = vnet.properties.subnets[0].id
output vnetPrefix string = vnet.properties.addressSpace.addressPrefixes[0]
output unknownId string = reference('x').subnetId
"#;
    let main = r#"
module net 'network.bicep' = {
  name: 'net'
}
resource aks 'Microsoft.ContainerService/managedClusters@2024-05-01' = {
  name: 'aks'
  location: 'westeurope'
  properties: {
    agentPoolProfiles: [
      { name: 'system', mode: 'System', count: 3, maxPods: 30, vnetSubnetID: net.outputs.nodeSubnetId }
      { name: 'user', mode: 'User', count: 2, maxPods: 30, vnetSubnetID: net.outputs.unknownId }
    ]
    networkProfile: { networkPlugin: 'azure', serviceCidr: '172.16.0.0/16', dnsServiceIP: '172.16.0.10' }
  }
}
"#;
    let i = tf(&[("main.bicep", main), ("network.bicep", network)]).unwrap();
    let c = i.cluster.as_ref().unwrap();
    assert_subnet_ref(&c.pools[0], "/virtualNetworks/vnet-spoke/subnets/nodes");
    assert_eq!(c.pools[1].vnet_subnet_id, None);
    let r = plan(&i, &PlanOptions::default());
    // The system pool joined the module's subnet; the user pool's subnet is unknown, so it
    // is planned on the cluster's (the first pool's, a listed default): 5 × 31 = 155.
    assert_eq!(r.capacity[0].cidr, "10.80.0.0/22");
    assert_eq!(r.capacity[0].required, 155);
    let in1 = finding(&r, "IN1");
    assert!(
        in1.field.ends_with("agentPoolProfiles[1].vnetSubnetID"),
        "{}",
        in1.field
    );
    assert!(
        in1.location.as_deref() == Some("network.bicep:15"),
        "{:?}",
        in1.location
    );
}

/// Issue 12: in an ARM template (what Bicep modules compile to), `reference()` of a nested
/// deployment reads its outputs, also one declared later; a reference to a deployment the
/// inputs do not define is an IN1 with the line of the expression.
#[test]
fn arm_reference_reads_nested_deployment_outputs() {
    let t = r#"{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {
      "type": "Microsoft.Resources/deployments",
      "apiVersion": "2022-09-01",
      "name": "aks",
      "properties": {
        "mode": "Incremental",
        "expressionEvaluationOptions": { "scope": "inner" },
        "parameters": {
          "subnetId": { "value": "[reference(resourceId('Microsoft.Resources/deployments', 'vnet'), '2022-09-01').outputs.nodeSubnetId.value]" },
          "userSubnetId": { "value": "[reference('elsewhere').outputs.id.value]" }
        },
        "template": {
          "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
          "contentVersion": "1.0.0.0",
          "parameters": { "subnetId": { "type": "string" }, "userSubnetId": { "type": "string" } },
          "resources": [
            {
              "type": "Microsoft.ContainerService/managedClusters",
              "apiVersion": "2024-05-01",
              "name": "aks",
              "properties": {
                "agentPoolProfiles": [
                  { "name": "system", "mode": "System", "count": 3, "maxPods": 30, "vnetSubnetID": "[parameters('subnetId')]" },
                  { "name": "user", "mode": "User", "count": 2, "maxPods": 30, "vnetSubnetID": "[parameters('userSubnetId')]" }
                ],
                "networkProfile": { "networkPlugin": "azure", "serviceCidr": "172.16.0.0/16", "dnsServiceIP": "172.16.0.10" }
              }
            }
          ]
        }
      }
    },
    {
      "type": "Microsoft.Resources/deployments",
      "apiVersion": "2022-09-01",
      "name": "vnet",
      "properties": {
        "mode": "Incremental",
        "expressionEvaluationOptions": { "scope": "inner" },
        "template": {
          "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
          "contentVersion": "1.0.0.0",
          "resources": [
            {
              "type": "Microsoft.Network/virtualNetworks",
              "apiVersion": "2023-04-01",
              "name": "spoke",
              "properties": {
                "addressSpace": { "addressPrefixes": [ "10.90.0.0/16" ] },
                "subnets": [ { "name": "nodes", "properties": { "addressPrefix": "10.90.0.0/22" } } ]
              }
            }
          ],
          "outputs": {
            "nodeSubnetId": { "type": "string", "value": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'spoke', 'nodes')]" }
          }
        }
      }
    }
  ]
}"#;
    let i = tf(&[("main.json", t)]).unwrap();
    let c = i.cluster.as_ref().unwrap();
    assert_subnet_ref(&c.pools[0], "/virtualNetworks/spoke/subnets/nodes");
    let r = plan(&i, &PlanOptions::default());
    assert_eq!(r.capacity[0].cidr, "10.90.0.0/22");
    let in1 = finding(&r, "IN1");
    assert!(
        in1.message.contains("reference('elsewhere')"),
        "{}",
        in1.message
    );
    assert_eq!(in1.location.as_deref(), Some("main.json:14"));
}

/// Issue 12: the AVM virtual network module and its subnet submodule are read as the VNet and
/// subnets they create (the AKS landing zone accelerator declares its networks this way); an
/// object with one unknown element (a route table's ID) keeps its other elements, and a pool
/// joins a submodule's subnet through the module's `resource_id` output.
#[test]
fn terraform_avm_vnet_module_and_subnet_submodule() {
    let main = r#"
module "vnet" {
  source              = "Azure/avm-res-network-virtualnetwork/azurerm"
  name                = "spoke"
  resource_group_name = "rg"
  address_space       = ["10.1.0.0/16"]
  subnets = {
    default = {
      name             = "default"
      address_prefixes = ["10.1.0.0/24"]
      route_table      = { id = module.not_given.resource_id }
    }
  }
}
module "aks_subnet" {
  source           = "Azure/avm-res-network-virtualnetwork/azurerm//modules/subnet"
  name             = "snet-aks"
  virtual_network  = { resource_id = module.vnet.resource.id }
  address_prefixes = ["10.1.4.0/22"]
}
module "peering" {
  source          = "Azure/avm-res-network-virtualnetwork/azurerm//modules/peering"
  virtual_network = { resource_id = module.vnet.resource_id }
}
resource "azurerm_kubernetes_cluster" "aks" {
  name = "aks"
  default_node_pool {
    name           = "system"
    node_count     = 3
    max_pods       = 30
    vnet_subnet_id = module.aks_subnet.resource_id
  }
  network_profile {
    network_plugin = "azure"
    service_cidr   = "10.100.0.0/16"
    dns_service_ip = "10.100.0.10"
  }
}
"#;
    let i = tf(&[("main.tf", main)]).unwrap();
    assert_eq!(i.vnets.len(), 1, "{:?}", i.vnets);
    let v = &i.vnets[0];
    assert_eq!(v.address_prefixes, vec!["10.1.0.0/16"]);
    assert_eq!(
        subnet_prefixes(v),
        vec![("default", "10.1.0.0/24"), ("snet-aks", "10.1.4.0/22")]
    );
    let r = plan(&i, &PlanOptions::default());
    // Node Subnet on the submodule's /22: 3 × 31 = 93, one surge node more: 124.
    assert_eq!(r.capacity[0].cidr, "10.1.4.0/22");
    assert_eq!(r.capacity[0].required, 93);
    assert_eq!(r.capacity[0].required_with_surge, 124);
    assert!(!r.has_errors(), "{:?}", r.findings);
}
