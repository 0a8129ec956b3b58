//! Fill in the AKS defaults (docs/plan.md) and join pools to subnets. Pure: the result and
//! the list of defaults applied, so the report can show every one of them. One file per
//! section: the network profile (`network`), VNets and subnets (`vnets`), node pools
//! (`pools`).

use ipnet::{IpNet, Ipv4Net};

use crate::model::{Cluster, Origin, PlanInput, Plugin, Tier};
use crate::net;
use crate::report::DefaultApplied;

mod network;
mod pools;
mod vnets;

/// The network model a cluster (or a what-if) runs (docs/plan.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetModel {
    Kubenet,
    NodeSubnet,
    PodSubnet,
    Overlay,
    Byo,
}

impl NetModel {
    /// The model of a plugin, its overlay mode and the pools (a pod subnet makes Pod Subnet).
    pub fn of(plugin: Plugin, overlay: bool, pools: &[crate::model::Pool]) -> NetModel {
        if plugin == Plugin::Kubenet {
            NetModel::Kubenet
        } else if plugin == Plugin::None {
            NetModel::Byo
        } else if overlay {
            NetModel::Overlay
        } else if pools.iter().any(|p| p.pod_subnet_id.is_some()) {
            NetModel::PodSubnet
        } else {
            NetModel::NodeSubnet
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NetModel::Kubenet => "kubenet",
            NetModel::NodeSubnet => "Azure CNI Node Subnet",
            NetModel::PodSubnet => "Azure CNI Pod Subnet",
            NetModel::Overlay => "Azure CNI Overlay",
            NetModel::Byo => "BYO CNI (none)",
        }
    }
    /// Models whose pods come from `podCidr`, a /24 per node.
    pub fn uses_pod_cidr(self) -> bool {
        matches!(self, NetModel::Kubenet | NetModel::Overlay)
    }
    /// Default maxPods (rule M3, docs/plan.md; ambiguity 1 decided as 250 for Pod Subnet).
    pub fn default_max_pods(self) -> u64 {
        use aksnet_core::azure as az;
        u64::from(match self {
            NetModel::Kubenet => az::DEFAULT_MAX_PODS_KUBENET,
            NetModel::NodeSubnet => az::DEFAULT_MAX_PODS_NODE_SUBNET,
            NetModel::PodSubnet | NetModel::Overlay | NetModel::Byo => az::DEFAULT_MAX_PODS_OVERLAY,
        })
    }
}

/// A CIDR or address as written, with its parse (None when it does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct Value<T> {
    pub raw: String,
    pub parsed: Option<T>,
    pub field: String,
}

pub type CidrValue = Value<IpNet>;

pub(crate) fn cidr(raw: &str, field: String) -> CidrValue {
    Value {
        raw: raw.to_string(),
        parsed: net::parse_cidr(raw),
        field,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surge {
    Count(u64),
    Percent(u64),
    Invalid,
}

impl Surge {
    /// "5" or "33%" (rule U1, docs/plan.md); anything else is Invalid.
    pub fn parse(s: &str) -> Surge {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            match p.trim().parse::<u64>() {
                Ok(v) if v <= 100 => Surge::Percent(v),
                _ => Surge::Invalid,
            }
        } else {
            match t.parse::<u64>() {
                Ok(v) => Surge::Count(v),
                Err(_) => Surge::Invalid,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RPool {
    pub name: String,
    pub system: bool,
    pub windows: bool,
    pub count: u64,
    pub min_count: Option<u64>,
    pub max_count: Option<u64>,
    pub autoscale: bool,
    pub max_pods: u64,
    pub node_subnet: Option<usize>,
    pub node_subnet_ref: Option<String>,
    pub pod_subnet: Option<usize>,
    pub pod_subnet_ref: Option<String>,
    pub pod_ip_allocation_mode: Option<String>,
    pub surge: Surge,
    pub surge_raw: String,
    pub max_unavailable: Option<String>,
    pub spot: bool,
    pub availability_set: bool,
    pub field: String,
}

impl RPool {
    pub fn static_block(&self) -> bool {
        self.pod_ip_allocation_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("staticblock"))
    }
    /// Node-subnet addresses one node takes under Node Subnet: `maxPods + 1`
    /// (aksnet-core::azure, docs/azure.md#up-front-reservation).
    pub fn node_subnet_per_node(&self) -> u64 {
        aksnet_core::azure::node_subnet_addresses_per_node(self.max_pods)
    }
    /// Static block allocation: the /28 blocks (16 addresses) one node takes from the pod
    /// subnet, ⌈(maxPods + 1) / 16⌉ (docs/plan.md, "Capacity").
    pub fn static_blocks(&self) -> u64 {
        net::ceil_div(self.node_subnet_per_node(), 16)
    }
    /// Pod-subnet addresses one node takes: its static blocks, or one batch of 16 under
    /// dynamic allocation (docs/plan.md, "Capacity").
    pub fn pod_subnet_per_node(&self) -> u64 {
        if self.static_block() {
            16 * self.static_blocks()
        } else {
            16
        }
    }
    /// Nodes at the autoscaler maximum (maxCount when autoscaling, else count), rule N1, docs/plan.md.
    pub fn nodes_max(&self) -> u64 {
        if self.autoscale {
            self.max_count.unwrap_or(self.count).max(self.count)
        } else {
            self.count
        }
    }
    /// Surge nodes at an upgrade from the maximum: percent rounded up, capped at the pool
    /// size; spot pools surge nothing (rule U1, docs/plan.md, U6).
    pub fn surge_nodes(&self) -> u64 {
        let m = self.nodes_max();
        if self.spot {
            return 0;
        }
        match self.surge {
            Surge::Count(n) => n.min(m),
            Surge::Percent(p) => net::ceil_div(p * m, 100).min(m),
            Surge::Invalid => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RSubnet {
    pub vnet: usize,
    pub name: String,
    pub id: Option<String>,
    pub prefixes: Vec<CidrValue>,
    pub delegations: Vec<String>,
    pub ip_configurations: Option<u64>,
    /// Addresses other tenants use (explicit, or ipConfigurations minus the live cluster's own).
    pub other: u64,
    pub route_table: Option<String>,
    pub nsg: Option<String>,
    pub field: String,
}

impl RSubnet {
    pub fn v4(&self) -> Option<Ipv4Net> {
        self.prefixes.iter().find_map(|p| match p.parsed {
            Some(IpNet::V4(n)) => Some(n),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RVnet {
    pub name: String,
    pub resource_group: Option<String>,
    pub prefixes: Vec<CidrValue>,
    pub managed: bool,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub origin: Origin,
    pub live: bool,
    pub tier: Tier,
    pub k8s: Option<(u64, u64, u64)>,
    pub plugin: Plugin,
    pub plugin_explicit: bool,
    pub overlay: bool,
    pub network_policy: Option<String>,
    pub network_dataplane: Option<String>,
    pub pod_cidrs: Vec<CidrValue>,
    pub pod_cidr_explicit: bool,
    pub service_cidrs: Vec<CidrValue>,
    pub service_cidr_explicit: bool,
    pub dns_service_ip: Value<std::net::IpAddr>,
    pub dns_explicit: bool,
    pub docker_bridge_cidr: Option<CidrValue>,
    pub ip_families: Vec<String>,
    pub outbound_type: Option<String>,
    pub load_balancer_sku: Option<String>,
    pub identity_type: Option<String>,
    pub api_server_subnet_ref: Option<String>,
    pub appgw_subnet_cidr: Option<CidrValue>,
    pub pools: Vec<RPool>,
    pub vnets: Vec<RVnet>,
    pub subnets: Vec<RSubnet>,
    pub peers: Vec<CidrValue>,
    pub on_prem: Vec<CidrValue>,
    pub managed_vnet: bool,
    pub node_auto_provisioning: bool,
}

impl Resolved {
    /// Networks outside the cluster's VNet that pods and services must not
    /// overlap: peered VNets and on-premises ranges, each with its label.
    pub fn external_ranges(&self) -> impl Iterator<Item = (&CidrValue, &'static str)> {
        self.peers
            .iter()
            .map(|p| (p, "peered VNet range"))
            .chain(self.on_prem.iter().map(|p| (p, "on-premises range")))
    }

    pub fn model(&self) -> NetModel {
        match self.plugin {
            Plugin::Kubenet => NetModel::Kubenet,
            Plugin::None => NetModel::Byo,
            Plugin::Azure if self.overlay => NetModel::Overlay,
            Plugin::Azure if self.pools.iter().any(|p| p.pod_subnet_ref.is_some()) => {
                NetModel::PodSubnet
            }
            Plugin::Azure => NetModel::NodeSubnet,
        }
    }

    /// Node-subnet addresses one node of `pool` costs (docs/plan.md.
    pub fn node_cost(&self, pool: &RPool) -> u64 {
        match self.model() {
            NetModel::NodeSubnet => pool.node_subnet_per_node(),
            _ => 1,
        }
    }

    pub fn find_subnet(&self, reference: &str) -> Option<usize> {
        find_subnet(&self.subnets, &self.vnets, reference)
    }

    pub fn dual_stack(&self) -> bool {
        self.ip_families
            .iter()
            .any(|f| f.eq_ignore_ascii_case("ipv6"))
    }

    pub fn v4_pod_cidr(&self) -> Option<&CidrValue> {
        self.pod_cidrs
            .iter()
            .find(|c| matches!(c.parsed, Some(IpNet::V4(_))))
    }

    pub fn v4_service_cidr(&self) -> Option<&CidrValue> {
        self.service_cidrs
            .iter()
            .find(|c| matches!(c.parsed, Some(IpNet::V4(_))))
    }
}

/// (resource group, vnet, subnet) of a subnet resource ID, lowercased.
pub fn parse_subnet_id(id: &str) -> Option<(Option<String>, String, String)> {
    let parts: Vec<String> = id.split('/').map(|p| p.to_ascii_lowercase()).collect();
    let pos = |key: &str| parts.iter().position(|p| p == key);
    let v = pos("virtualnetworks")?;
    let s = pos("subnets")?;
    let rg = pos("resourcegroups").and_then(|i| parts.get(i + 1).cloned());
    Some((rg, parts.get(v + 1)?.clone(), parts.get(s + 1)?.clone()))
}

/// Join a pool's subnet reference to a known subnet: by full ID (case-insensitive), then by
/// VNet and subnet name (templates and Terraform do not know the subscription), then by a bare
/// subnet name that is unique (spec files). docs/plan.md "Join pools to subnets by
/// case-insensitive ID".
pub fn find_subnet(subnets: &[RSubnet], vnets: &[RVnet], reference: &str) -> Option<usize> {
    let r = reference.trim().to_ascii_lowercase();
    if let Some(i) = subnets.iter().position(|s| {
        s.id.as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(&r))
    }) {
        return Some(i);
    }
    if let Some((_, v, s)) = parse_subnet_id(&r) {
        return subnets.iter().position(|sn| {
            sn.name.eq_ignore_ascii_case(&s)
                && vnets
                    .get(sn.vnet)
                    .is_some_and(|vn| vn.name.eq_ignore_ascii_case(&v))
        });
    }
    let named: Vec<usize> = subnets
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.eq_ignore_ascii_case(&r))
        .map(|(i, _)| i)
        .collect();
    if named.len() == 1 {
        named.first().copied()
    } else {
        None
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().ok());
    let major = it.next()??;
    let minor = it.next().flatten().unwrap_or(0);
    let patch = it.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

pub(crate) struct Defaults(Vec<DefaultApplied>);

impl Defaults {
    fn add(
        &mut self,
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.0.push(DefaultApplied {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        });
    }
}

pub const MANAGED_VNET: &str = "10.224.0.0/12";
pub const MANAGED_SUBNET: &str = "10.224.0.0/16";

/// The network profile's field prefix in findings and defaults.
const NP: &str = "networkProfile";

/// The pools joined to their subnets, and whether the cluster is on the AKS-managed VNet (no
/// pool names a subnet and no VNet is given; it is then added to `v`). A live cluster's own
/// nodes are taken off its subnets' other tenants.
fn resolve_pools(
    c: &Cluster,
    input: &PlanInput,
    (plugin, overlay): (Plugin, bool),
    v: &mut vnets::Vnets,
    d: &mut Defaults,
) -> (Vec<RPool>, bool) {
    let raw_pools = pools::merged(c, input);
    let managed_vnet =
        !raw_pools.iter().any(|p| p.vnet_subnet_id.is_some()) && input.vnets.is_empty();
    if managed_vnet {
        vnets::add_managed(v, d);
    }
    let pre_model = NetModel::of(plugin, overlay, &raw_pools);
    let ctx = pools::Ctx {
        model: pre_model,
        managed_vnet,
        first_ref: raw_pools.iter().find_map(|p| p.vnet_subnet_id.clone()),
        subnets: &v.subnets,
        vnets: &v.vnets,
    };
    let rpools: Vec<RPool> = raw_pools
        .iter()
        .enumerate()
        .map(|(i, p)| pools::pool(i, p, &ctx, d))
        .collect();
    if c.live {
        pools::discount_own_nodes(input, &rpools, &mut v.subnets, pre_model);
    }
    (rpools, managed_vnet)
}

/// Apply the defaults of docs/plan.md to the input; see docs/plan.md for the decisions.
pub fn resolve(input: &PlanInput) -> (Resolved, Vec<DefaultApplied>) {
    let mut d = Defaults(Vec::new());
    let c = input.cluster.clone().unwrap_or_default();
    let (plugin, overlay, plugin_explicit) = network::plugin(&c, input.origin, &mut d);
    let tier = c.tier.unwrap_or_else(|| {
        d.add("sku.tier", "free", "absent: the API's default tier");
        Tier::Free
    });
    let n = network::addresses(&c, plugin, overlay, &mut d);
    let mut v = vnets::vnets(input);
    let (rpools, managed_vnet) = resolve_pools(&c, input, (plugin, overlay), &mut v, &mut d);
    let resolved = Resolved {
        name: c.name.clone().unwrap_or_else(|| "cluster".into()),
        origin: input.origin,
        live: c.live,
        tier,
        k8s: c.kubernetes_version.as_deref().and_then(parse_version),
        plugin,
        plugin_explicit,
        overlay,
        network_policy: c
            .network_policy
            .clone()
            .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("none")),
        network_dataplane: c.network_dataplane.clone(),
        pod_cidrs: n.pod_cidrs,
        pod_cidr_explicit: n.pod_cidr_explicit,
        service_cidrs: n.service_cidrs,
        service_cidr_explicit: n.service_cidr_explicit,
        dns_service_ip: Value {
            parsed: net::parse_ip(&n.dns_raw),
            raw: n.dns_raw,
            field: format!("{NP}.dnsServiceIP"),
        },
        dns_explicit: n.dns_explicit,
        docker_bridge_cidr: c
            .docker_bridge_cidr
            .as_deref()
            .map(|s| cidr(s, format!("{NP}.dockerBridgeCidr"))),
        ip_families: n.ip_families,
        outbound_type: c.outbound_type.clone(),
        load_balancer_sku: c.load_balancer_sku.clone(),
        identity_type: c.identity_type.clone(),
        api_server_subnet_ref: c.api_server_subnet_id.clone(),
        appgw_subnet_cidr: c.appgw_subnet_cidr.as_deref().map(|s| {
            cidr(
                s,
                "addonProfiles.ingressApplicationGateway.config.subnetCIDR".into(),
            )
        }),
        pools: rpools,
        vnets: v.vnets,
        subnets: v.subnets,
        peers: v.peers,
        on_prem: v.on_prem,
        managed_vnet,
        node_auto_provisioning: c.node_auto_provisioning,
    };
    (resolved, d.0)
}
