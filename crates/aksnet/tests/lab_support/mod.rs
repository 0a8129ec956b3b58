//! Shared by the lab tests (`lab.rs`, `lab_l2.rs`): each model's documented
//! matrix and the assertion that a `lab check --format json` report matches it.
//! The expected matrices are written here from the AKS documentation, not
//! derived from a run.
#![allow(dead_code)]

use serde_json::Value;

/// Node Subnet, per docs/azure.md#source-addresses: "Systems in the same virtual network as the AKS
/// cluster see the pod IP as the source address for any traffic from the
/// pod. Systems outside the AKS cluster virtual network see the node IP";
/// "every pod gets an IP address from the subnet and can be accessed
/// directly"; a peered VNet is outside the VNet (Azure/AKS#1207: by default
/// nonMasqueradeCIDRs holds only the VNet).
pub const NODESUBNET_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "pod"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "vm"),
];

/// kubenet, per AKS's kubenet page and docs/azure.md#kubenet-snat, #kubenet-routes: pods
/// keep their IP only towards other pods (the pod CIDR is the only
/// non-masquerade range) and cross nodes by the route table; everything else
/// sees the node IP; pods "can't be reached directly": the route table is
/// associated with the node subnet only, so a VM in another subnet has no
/// route to a pod CIDR.
pub const KUBENET_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "node"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "unreachable"),
];

/// Pod Subnet, per the Legacy CNI article's FAQ (docs/models.md#pod-subnet): the pod IP is
/// the source address inside and outside the VNet, and pods are directly reachable
/// from the VNet; the exception AKS makes, traffic to Azure DNS (168.63.129.16)
/// masqueraded to the node IP (docs/azure.md#snat-defaults-per-mode), has its own row.
pub const PODSUBNET_EXPECTED: [(&str, &str); 7] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "pod"),
    ("pod-peer", "pod"),
    ("pod-onprem", "pod"),
    ("pod-azuredns", "node"),
    ("vm-pod", "vm"),
];

/// Overlay, per the Overlay article (docs/models.md#overlay): pods reach each other
/// across nodes with their own IPs; all traffic leaving the pod CIDR is SNATed
/// to the node IP; the VNet cannot reach pods directly.
pub const OVERLAY_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "node"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "unreachable"),
];

/// Each row's path and whose address its target saw.
pub fn observed(report: &Value) -> Vec<(String, String)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap_or_default().to_string(),
                r["seenAs"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The report's matrix is `expected`, row for row.
pub fn assert_matrix(report: &Value, expected: &[(&str, &str)]) {
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    assert_eq!(
        observed(report),
        want,
        "observed matrix differs from the documented one:\n{report:#}"
    );
}
