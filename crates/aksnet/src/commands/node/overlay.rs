//! `aksnet node join --overlay` (docs/models.md#overlay): an Azure CNI Overlay
//! node. The node subnet gives the node its own address only; its pods take
//! addresses of its /24 of the cluster pod CIDR (the per-node allocator of
//! `podcidr`), recorded in `node-pool.json`'s `overlay`.

use aksnet_core::azure::{OVERLAY_NODE_PREFIX_LEN, OVERLAY_POD_CIDR_OVERLAP_REASON};
use aksnet_core::pool::{NodePool, OverlayPool, NODE_POOL_VERSION_OVERLAY};
use aksnet_store::{NodeReservation, Store};
use ipnet::{IpNet, Ipv4Net};

use super::{JoinArgs, NodeError};

/// Flag checks that need no store: AKS's fixed /24, and a pod CIDR that
/// overlaps the node subnet it names.
pub(super) fn check_args(a: &JoinArgs) -> Result<(), NodeError> {
    let (true, Some(cidr)) = (a.overlay, a.pod_cidr.pod_cidr_from) else {
        return Ok(());
    };
    if a.pod_cidr.pod_cidr_mask_size != OVERLAY_NODE_PREFIX_LEN {
        return Err(NodeError::OverlayFlag {
            flag: "--pod-cidr-mask-size",
            value: a.pod_cidr.pod_cidr_mask_size.to_string(),
            why: format!(
                "Azure CNI Overlay gives every node a fixed /{OVERLAY_NODE_PREFIX_LEN} of the pod CIDR"
            ),
        });
    }
    if let Some(subnet) = a.subnet {
        if aksnet_core::azure::overlaps(&IpNet::V4(cidr), &IpNet::V4(subnet.cidr())) {
            return Err(NodeError::OverlayFlag {
                flag: "--pod-cidr-from",
                value: cidr.to_string(),
                why: format!(
                    "overlaps the node subnet {}: {OVERLAY_POD_CIDR_OVERLAP_REASON}",
                    subnet.cidr()
                ),
            });
        }
    }
    Ok(())
}

/// The store's part of the checks: the pod CIDR overlaps no subnet the cluster
/// store knows (node subnets and pod subnets), even when it was registered
/// before them.
pub(super) fn check_store(a: &JoinArgs, store: &dyn Store) -> Result<(), NodeError> {
    match (a.overlay, a.pod_cidr.pod_cidr_from) {
        (true, Some(cidr)) => {
            aksnet_store::podcidr::refuse_overlapping_subnets(store, cidr)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The node's local pool after a node-subnet join: an Overlay node's (version
/// 3, its block's first maxPods addresses) or a Node Subnet node's.
pub(super) fn node_pool(
    a: &JoinArgs,
    r: &NodeReservation,
    pod_cidr: Option<Ipv4Net>,
) -> Result<NodePool, NodeError> {
    let mut pool = r.to_node_pool();
    if !r.overlay {
        return Ok(pool);
    }
    let (Some(cluster_pod_cidr), Some(pod_cidr)) = (a.pod_cidr.pod_cidr_from, pod_cidr) else {
        return Err(NodeError::OverlayFlag {
            flag: "--overlay",
            value: a.node.clone(),
            why: "the node holds no block of the pod CIDR (needs --pod-cidr-from)".into(),
        });
    };
    let overlay = OverlayPool {
        cluster_pod_cidr,
        pod_cidr,
    };
    pool.version = NODE_POOL_VERSION_OVERLAY;
    pool.pod_ips = overlay.pod_ips(r.max_pods);
    pool.overlay = Some(overlay);
    Ok(pool)
}
