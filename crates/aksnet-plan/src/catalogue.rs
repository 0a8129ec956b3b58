//! The rule catalogue: one entry per stable rule ID, each with its fixed severity, the control
//! plane's error code where one is known, and its public source (the tags are expanded in
//! docs/plan.md, "Sources"; every ID has a row in docs/plan.md, "Rules").

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub severity: Severity,
    /// The control plane's error code, where one was ever captured.
    pub code: Option<&'static str>,
    pub title: &'static str,
    pub source: &'static str,
}

use Severity::{Error as E, Info as I, Warning as W};

const ISS: Option<&str> = Some("InsufficientSubnetSize");

macro_rules! catalogue {
    ($($id:ident: $sev:ident, $code:expr, $title:expr, $source:expr;)*) => {
        /// A stable rule ID. Serialised as its name ("S2").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum RuleId {
            $($id),*
        }

        impl RuleId {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$id => stringify!($id)),*
                }
            }
        }

        pub const RULES: &[Rule] = &[
            $(Rule { id: RuleId::$id, severity: $sev, code: $code, title: $title, source: $source }),*
        ];
    };
}

catalogue! {
    // Format of the values themselves.
    S1: E, Some("CidrStringParseError"), "serviceCidr must be valid CIDR notation", "API networkProfile.serviceCidr pattern; Azure/AKS#506";
    X1: E, None, "every other CIDR or IP field must be valid notation", "API field patterns (podCidr, dnsServiceIP, subnet addressPrefix)";
    X2: W, None, "a pool's subnet is not among the inputs, so its capacity is unknown", "aksnet plan (give az network vnet show output)";
    // 2.1 Reserved and forbidden ranges.
    R1: E, None, "service CIDR, pod CIDR and VNet ranges must not overlap 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16, 192.0.2.0/24", "DOC-LEGACY Prerequisites; DOC-PREREQ; CHANGELOG 2019-05-20, 2025-01-30, 2026-05-29 (R1a)";
    R2: E, None, "service CIDR must not be public or multicast space", "CHANGELOG 2023-10-01";
    R3: W, None, "overlay pod CIDR should be RFC 1918 or RFC 6598 space", "DOC-OVL; azure-aks-docs#263";
    R4: E, None, "a VNet may not use 224.0.0.0/4, 255.255.255.255/32, 127.0.0.0/8, 169.254.0.0/16, 168.63.129.16/32", "Azure Virtual Network FAQ";
    R4a: W, None, "a VNet in public address space cannot reach that space's real owners", "Azure Virtual Network FAQ";
    R5: E, None, "service and pod CIDRs must not overlap the AKS-managed VNet 10.224.0.0/12", "CHANGELOG 2022-02-24; azure-docs PR #92330";
    // 2.2 Service CIDR.
    S2: E, Some("ServiceCidrOverlapExistingSubnetsCidr"), "service CIDR must not overlap any subnet of the cluster VNet (checked at create and every upgrade)", "TS-servicecidroverlapexistingsubnetscidr; Azure/AKS#1117, #3551";
    S3: E, None, "service CIDR must not lie inside the cluster VNet address space", "DOC-LEGACY Deployment parameters (\"Must not be within the virtual network IP address range\"); Azure/AKS#2727";
    S4: E, None, "service CIDR must not overlap peered VNets or on-premises ranges", "DOC-LEGACY Deployment parameters; DOC-CNI";
    S5: E, None, "service CIDR must not overlap the pod CIDR", "DOC-OVL; cilium/cilium#31504";
    S6: E, None, "IPv4 service CIDR must hold fewer addresses than a /12 allows (prefix /12 or longer)", "DOC-IP; azure-docs#13444; kube-apiserver service range validation";
    S6a: W, None, "a /12 service CIDR is at the documented limit (\"smaller than /12\")", "DOC-IP; azure-docs#13444";
    S7: E, None, "service CIDR must be a network address (no host bits)", "CHANGELOG 2019-04-15";
    S8: I, None, "service CIDR cannot be changed before Kubernetes 1.33", "DOC-IP; DOC-KUBENET";
    S10: W, None, "the default service CIDR 10.0.0.0/16 collides with networks in 10.0.0.0/8", "CLI decorator docstring; Azure/AKS#2727, #3551";
    // 2.3 DNS service IP.
    D1: E, Some("DnsServiceIpOutOfServiceCidr"), "dnsServiceIP must be inside the service CIDR", "TS-dnsserviceipoutofservicecidr; API";
    D2: E, None, "dnsServiceIP must not be the network or broadcast address of the service CIDR", "Azure/AKS#2579; CHANGELOG 2021-10-08; aks-engine validate.go";
    D3: E, None, "dnsServiceIP must not be the first address of the service CIDR (kubernetes.default)", "DOC-LEGACY Deployment parameters; DOC-IP";
    D4: E, None, "dnsServiceIP must not collide with the API server's addresses", "CHANGELOG 2019-02-19; DOC-APISRV";
    D5: I, None, "dnsServiceIP is conventionally the .10 address of the service CIDR", "DOC-KUBENET; CAPZ azuremanagedcontrolplane_webhook.go";
    D6: E, None, "dnsServiceIP must be IPv4", "API pattern; CLI decorator";
    D7: W, None, "the az CLI refuses network settings without an explicit network plugin", "CLI managed_cluster_decorator.py";
    // 2.4 Pod CIDR.
    P1: E, None, "a pod CIDR needs kubenet or overlay", "CLI managed_cluster_decorator.py";
    P2: E, ISS, "the pod CIDR must hold one /24 per node at the autoscaler maximum", "DOC-OVL; DOC-KUBENET; CHANGELOG 2023-05-07; Azure/AKS-Construction#701";
    P3: E, Some("NetworkProfileCIDROverlapVNET"), "pod CIDR must not overlap a subnet of the cluster VNet", "CHANGELOG 2024-10-25; Azure/AKS-Construction#403";
    P3a: W, None, "pod CIDR inside the VNet address space (a later subnet would collide)", "CHANGELOG 2024-10-25 (before: rejected)";
    P4: E, None, "pod CIDR must not overlap peered VNets or on-premises ranges", "DOC-OVL IMPORTANT note; azure-aks-docs PR #291";
    P6: E, None, "an overlay pod CIDR can only be expanded to a contiguous superset", "DOC-OVL pod-expand";
    // 2.5 Node subnet, VNet and subnet.
    N1: E, ISS, "Node Subnet: Σ nodes × (maxPods + 1) at autoscaler maximum must fit the subnet", "DOC-LEGACY (8 nodes / 240 pods per /24); rancher#20784; Azure/AKS#456, #3653";
    N2: E, ISS, "kubenet/overlay/Pod Subnet: one node-subnet address per node at autoscaler maximum", "CHANGELOG 2023-05-07; DOC-KUBENET";
    N3: E, Some("SubnetIsFull"), "a live subnet lacks the free addresses the next upgrade needs", "TS-subnetisfull, subnetisfull-upgrade; Azure/AKS#2119";
    N4: E, None, "a node pool subnet must not be delegated", "DOC-LEGACY Prerequisites; DOC-PREREQ";
    N5: W, None, "other tenants use addresses of a node subnet", "DOC-IP (internal LB front ends come from the cluster subnet)";
    N6: E, Some("CustomRouteTableInvalidUpdateAttempt"), "kubenet: one route table per cluster", "DOC-KUBENET limitations";
    N7: E, None, "Pod Subnet: a pod subnet is not a node subnet and is either static-block or dynamic", "DOC-PODSUB; DOC-LEGACY FAQ";
    N8: E, None, "overlay: subnet, VNet and resource group names must be at most 63 characters", "DOC-OVL limitations";
    N9: E, None, "API server subnet: delegated to Microsoft.ContainerService/managedClusters, /28 or larger", "DOC-APISRV";
    N10: W, None, "a VNet is limited to 65,536 configured IP addresses", "DOC-IP; DOC-PODSUB";
    N11: E, Some("IngressAppGwAddonConfigInvalidSubnetCIDRNotContainedWithinVirtualNetwork"), "the App Gateway add-on subnet must be inside the cluster VNet", "azure-docs PR #92330";
    N12: W, None, "AKS does not manage NSGs on a BYO subnet", "DOC-LEGACY Prerequisites; DOC-PREREQ; DOC-OVL NSG table";
    N13: W, None, "node subnet inside a range advertised from on-premises", "DOC-LEGACY Virtual network peering and ExpressRoute connections";
    // 2.6 maxPods.
    M1: E, Some("InvalidParameter"), "maxPods must be between 10 and 250", "DOC-IP; Azure/AKS#931; CHANGELOG 2019-05-13";
    M2: E, None, "per pool, count × maxPods must be at least 30", "DOC-IP; CHANGELOG 2019-10-28";
    M2a: W, None, "per autoscaled pool, minCount × maxPods should be at least 30", "Azure/AKS#1422";
    M4: W, None, "Windows pools: at most 110 pods per node on overlay; extra addresses on Node Subnet", "DOC-OVL; aks-legacy-migration.md FAQ";
    M5: I, None, "maxPods of an existing pool cannot change", "DOC-IP \"Existing clusters\"";
    M6: I, None, "static block: maxPods of 16N − 1 wastes no addresses", "DOC-PODSUB";
    // 2.7 Node counts.
    C1: E, Some("KubenetNodeCountTotalExceedsLimit"), "kubenet: at most 400 nodes (Σ maxCount)", "DOC-LEGACY (400 routes); DOC-KUBENET; CHANGELOG 2023-06-25, 2023-09-10; cloud-provider-azure#4184";
    C2: E, None, "cluster node limit: 1,000 on Free, 5,000 on Standard/Premium", "core-aks-concepts.md; free-standard-pricing-tiers.md";
    C3: E, None, "at most 1,000 nodes per pool, including surge at upgrade", "DOC-UPG; best-practices-performance-scale-large.md";
    C4: W, None, "the cluster node limit leaves no room for upgrade surge", "best-practices-performance-scale-large.md";
    C5: E, None, "autoscaler bounds: 0 ≤ minCount ≤ count ≤ maxCount ≤ 1000", "CLI _validators.py validate_nodes_count";
    C6: E, None, "a system pool with at least one node; at most 100 pools", "manage-node-pools.md; use-system-pools.md";
    C7: E, Some("InvalidNodeCountForNPM"), "Azure NPM supports at most 250 nodes", "best-practices-performance-scale-large.md; azure-docs PR #111281";
    C8: W, None, "kubenet: surge nodes need routes too; plan more than 400 nodes on Azure CNI", "cluster-autoscaler-overview.md; DOC-KUBENET";
    // 2.8 Upgrade surge.
    U1: E, None, "maxSurge and maxUnavailable are a non-negative integer or percentage", "CLI validate_max_surge / validate_max_unavailable; DOC-UPG";
    U3: E, None, "maxSurge must be > 0 when maxUnavailable is 0; no maxUnavailable on system pools", "CHANGELOG 2023-11-05; DOC-UPG";
    U4: W, Some("SubnetIsFull"), "the plan has no room for upgrade surge (safe to create, not to upgrade)", "DOC-LEGACY (\"leave some IP addresses available for scaling or upgrading\"); DOC-UPG; TS-subnetisfull-upgrade";
    U5: I, None, "pools over 500 nodes: a surge of 10–20% is recommended", "DOC-UPG";
    U6: I, None, "spot pools upgrade without surge nodes", "CHANGELOG 2022";
    // 2.9 Dual-stack.
    V1: E, None, "ipFamilies is [IPv4] or [IPv4, IPv6]", "DOC-DS; DOC-OVL";
    V2: E, None, "podCidrs and serviceCidrs have one CIDR per IP family, in order", "DOC-DS; API";
    V3: E, None, "the IPv6 service CIDR is /108 or smaller", "DOC-DS; DOC-OVL";
    V5: E, None, "dual-stack needs Azure CNI Overlay (or Cilium) and no Azure/Calico network policy", "DOC-DS; DOC-OVL";
    V6: W, None, "put IPv4 first in serviceCidrs", "CHANGELOG (API server crash with IPv6 first)";
    V7: E, None, "dual-stack needs Kubernetes 1.21.2 or later", "DOC-DS";
    // 2.10 Docker bridge.
    B1: W, None, "dockerBridgeCidr must not overlap a subnet, the service CIDR or the pod CIDR", "DOC-CNI (2023); API description";
    B2: I, None, "dockerBridgeCidr is deprecated and ignored", "CHANGELOG 2023-05-07; Azure/AKS#3534";
    // 2.11 Pod Subnet.
    PS1: E, ISS, "Pod Subnet: the pod subnet must hold 16 addresses (dynamic) or the /28 blocks (static) of every node at maximum", "DOC-PODSUB";
    PS2: W, None, "Pod Subnet (dynamic): the pod subnet cannot hold every node full", "DOC-PODSUB (batches of 16)";
    PS3: E, None, "podIPAllocationMode is DynamicIndividual or StaticBlock", "aks-preview _validators.py";
    PS4: E, None, "static block: pod subnet /12 or smaller, Kubernetes 1.28 or later", "DOC-PODSUB";
    // 2.12 Other documented constraints.
    O1: E, None, "Windows pools need Azure CNI (kubenet has no Windows)", "DOC-KUBENET";
    O2: W, None, "Basic load balancer is out of support since 30 Sep 2025", "CLI decorator; Azure updates";
    O3: E, None, "userDefinedRouting/NAT gateway outbound types need a Standard load balancer and a BYO subnet", "CLI managed_cluster_decorator.py";
    O4: E, None, "overlay does not support availability sets", "DOC-OVL";
    // Migration to Azure CNI Overlay (docs/azure.md#migration).
    MG1: E, None, "migration to overlay needs Kubernetes 1.27 or later", "update-azure-cni.md";
    MG2: E, None, "only kubenet and Node Subnet clusters can migrate to overlay", "update-azure-cni.md";
    MG3: E, None, "migration to overlay needs no network policy engine", "update-azure-cni.md (Calico on kubenet: see docs/plan.md, decisions)";
    MG3a: W, None, "kubenet with Calico to overlay is documented both ways", "update-azure-cni.md vs use-network-policies.md";
    MG4: E, None, "Node Subnet to overlay needs --pod-cidr", "update-azure-cni.md";
    MG5: W, None, "kubenet to overlay detaches the route table and needs a user-assigned managed identity", "update-azure-cni.md";
    MG6: I, None, "every pool is reimaged together; the migration is one-way", "update-azure-cni.md";
    // Inputs, totals and notes of the planner itself (issue 12).
    IN1: W, None, "a value the plan needs could not be resolved from the inputs", "aksnet plan: docs/plan.md (Unknown values)";
    IN2: I, None, "the inputs describe no cluster: only what they describe is planned", "aksnet plan: docs/plan.md (Partial inputs)";
    K1: I, None, "kubenet retires on 31 March 2028: plan the move to Azure CNI Overlay", "DOC-KUBENET (retirement note); Azure Updates: AKS kubenet retirement 2028-03-31";
    NAP1: I, None, "node auto-provisioning: the node count is not bounded by the pools", "MicrosoftDocs/azure-aks-docs articles/aks/node-autoprovision.md";
    H1: W, None, "the headroom left at maximum scale plus surge is only a handful of addresses", "DOC-LEGACY (leave addresses for scaling and upgrading); DOC-UPG";
    V8: W, None, "dual-stack with the network plugin unset: a default was assumed", "DOC-DS; API networkProfile.networkPlugin default";
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The catalogue entry of `id` (every ID has one).
pub fn rule(id: RuleId) -> &'static Rule {
    // RULES is generated in declaration order, so the discriminant is the index.
    &RULES[id as usize]
}
