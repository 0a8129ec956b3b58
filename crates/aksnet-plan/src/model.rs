//! The cluster plan as the input adapters hand it over: what the files say, nothing applied.
//! Absent fields stay `None`; `crate::resolve` fills in the AKS defaults and records each one.

use serde::Serialize;

/// `networkProfile.networkPlugin` (docs/plan.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plugin {
    Kubenet,
    Azure,
    None,
}

impl Plugin {
    pub fn parse(s: &str) -> Option<Plugin> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kubenet" => Some(Plugin::Kubenet),
            "azure" => Some(Plugin::Azure),
            "none" => Some(Plugin::None),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Plugin::Kubenet => "kubenet",
            Plugin::Azure => "azure",
            Plugin::None => "none",
        }
    }
}

/// Where a cluster description came from; decides the default plugin (docs/plan.md, decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Spec,
    AzCli,
    Arm,
    ArmTemplate,
    Terraform,
    /// An `az` CLI script or the az code blocks of a Markdown file.
    AzScript,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Standard,
    Premium,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Some(Tier::Free),
            "standard" | "paid" => Some(Tier::Standard),
            "premium" => Some(Tier::Premium),
            _ => None,
        }
    }
    /// Cluster node limit (rule C2, docs/plan.md).
    pub fn node_limit(self) -> u64 {
        match self {
            Tier::Free => 1000,
            Tier::Standard | Tier::Premium => 5000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    pub name: Option<String>,
    /// True when the file describes a deployed cluster (az aks show, ARM GET): its nodes'
    /// current addresses are among the subnet's `ipConfigurations`.
    pub live: bool,
    pub tier: Option<Tier>,
    pub kubernetes_version: Option<String>,
    pub network_plugin: Option<Plugin>,
    /// `networkPluginMode`; only "overlay" exists.
    pub network_plugin_mode: Option<String>,
    pub network_policy: Option<String>,
    pub network_dataplane: Option<String>,
    pub pod_cidrs: Vec<String>,
    pub service_cidrs: Vec<String>,
    pub dns_service_ip: Option<String>,
    pub docker_bridge_cidr: Option<String>,
    pub ip_families: Vec<String>,
    pub outbound_type: Option<String>,
    pub load_balancer_sku: Option<String>,
    pub identity_type: Option<String>,
    /// `apiServerAccessProfile.subnetId` (API server VNet integration, rule N9, docs/plan.md).
    pub api_server_subnet_id: Option<String>,
    /// App Gateway ingress add-on `subnetCIDR` (rule N11, docs/plan.md).
    pub appgw_subnet_cidr: Option<String>,
    /// `nodeProvisioningProfile.mode: Auto` (node auto-provisioning): nodes beyond the pools.
    pub node_auto_provisioning: bool,
    /// "file:line" of the definition, where the input has lines (Terraform, Bicep, az
    /// scripts, JSON and YAML).
    pub location: Option<String>,
    /// "file:line" of the network profile, where the input has one (findings on
    /// `networkProfile.*` point there).
    pub network_location: Option<String>,
    pub pools: Vec<Pool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    pub name: String,
    /// "System" or "User".
    pub mode: Option<String>,
    pub os_type: Option<String>,
    pub count: Option<u64>,
    pub min_count: Option<u64>,
    pub max_count: Option<u64>,
    pub enable_auto_scaling: Option<bool>,
    pub max_pods: Option<u64>,
    pub vnet_subnet_id: Option<String>,
    pub pod_subnet_id: Option<String>,
    pub pod_ip_allocation_mode: Option<String>,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
    pub spot: bool,
    /// `type: AvailabilitySet` (overlay does not support it, docs/plan.md).
    pub availability_set: bool,
    /// "file:line" of the definition, where the input has lines.
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vnet {
    pub id: Option<String>,
    pub name: String,
    pub resource_group: Option<String>,
    pub address_prefixes: Vec<String>,
    pub subnets: Vec<Subnet>,
    pub peerings: Vec<Peering>,
    /// "file:line" of the definition, where the input has lines.
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subnet {
    pub id: Option<String>,
    pub name: String,
    pub address_prefixes: Vec<String>,
    pub delegations: Vec<String>,
    /// Number of `ipConfigurations` (addresses in use), from `az network vnet show`.
    pub ip_configurations: Option<u64>,
    /// Addresses taken by other tenants (VMs, internal LB front ends, private endpoints),
    /// given directly in a spec file.
    pub other_ips: Option<u64>,
    pub route_table: Option<String>,
    pub nsg: Option<String>,
    /// "file:line" of the definition, where the input has lines.
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Peering {
    pub name: String,
    pub remote_prefixes: Vec<String>,
}

/// One input file's contribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Source {
    pub file: String,
    /// What the file was detected as ("spec", "az aks show", ...).
    pub kind: String,
}

/// A value the plan needed that no input resolved (a variable without a value, an
/// unsupported function, an attribute only known after apply): planned as absent, reported
/// as a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unresolved {
    pub file: String,
    /// "file:line" of the expression, where the input has lines.
    pub location: Option<String>,
    /// The field that needed it (`azurerm_kubernetes_cluster.aks (line 3).network_profile...`).
    pub field: String,
    pub expression: String,
}

/// Everything the planner plans: at most one cluster, any number of VNets, extra ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    pub cluster: Option<Cluster>,
    pub origin: Origin,
    /// Pools from `az aks nodepool show` files, merged into the cluster by name.
    pub extra_pools: Vec<Pool>,
    pub vnets: Vec<Vnet>,
    /// `--on-prem` and spec `onPrem`: ranges reached over ExpressRoute/VPN.
    pub on_prem: Vec<String>,
    /// `--peer` and spec `peerings`: ranges of peered VNets not described by a VNet file.
    pub extra_peers: Vec<String>,
    pub sources: Vec<Source>,
    /// Needed values no input resolved.
    pub unresolved: Vec<Unresolved>,
    /// Defaults an input adapter applied (the az CLI's): (field, value, reason).
    pub input_defaults: Vec<(String, String, String)>,
}

/// The VNet called `name` (Azure names are case-insensitive), if described.
pub fn vnet_named<'a>(vnets: &'a mut [Vnet], name: &str) -> Option<&'a mut Vnet> {
    vnets.iter_mut().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// Adds a subnet to VNet `vnet`, creating a VNet entry of that name when the
/// inputs describe the subnet but not its VNet (ARM templates, Terraform).
pub fn attach_subnet(vnets: &mut Vec<Vnet>, vnet: String, subnet: Subnet) {
    match vnet_named(vnets, &vnet) {
        Some(v) => v.subnets.push(subnet),
        None => vnets.push(Vnet {
            name: vnet,
            subnets: vec![subnet],
            ..Vnet::default()
        }),
    }
}

impl Default for PlanInput {
    fn default() -> Self {
        PlanInput {
            cluster: None,
            origin: Origin::Spec,
            extra_pools: Vec::new(),
            vnets: Vec::new(),
            on_prem: Vec::new(),
            extra_peers: Vec::new(),
            sources: Vec::new(),
            unresolved: Vec::new(),
            input_defaults: Vec::new(),
        }
    }
}
