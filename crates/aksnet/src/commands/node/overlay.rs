//! `aksnet node join --overlay` (docs/models.md#overlay): an Azure CNI Overlay
//! node. The node subnet gives the node its own address only; its pods take
//! addresses of its /24 of the cluster pod CIDR (the per-node allocator of
//! `podcidr`), recorded in `node-pool.json`'s `overlay` by `aksnet_node::join`.
//! Here: the checks of the flags that need no store.

use aksnet_core::azure::{OVERLAY_NODE_PREFIX_LEN, OVERLAY_POD_CIDR_OVERLAP_REASON};
use ipnet::IpNet;

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
