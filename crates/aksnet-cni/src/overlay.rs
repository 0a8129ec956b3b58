//! overlay mode: Azure CNI Overlay (docs/models.md#overlay). Pods take
//! addresses of the node's /24 of the cluster pod CIDR, a private range
//! outside the VNet that `aksnet node join --overlay` gave the node and
//! recorded in `node-pool.json` (`overlay`, and its first maxPods addresses in
//! `podIps`, at most 250: `aksnet_core::azure::OVERLAY_MAX_PODS_PER_NODE`).
//! The datapath is the routed per-pod veth of nodesubnet ([`RoutedMode`]), so
//! policy and SNAT (the agent's `--mode overlay`) share one design; a full
//! node is refused with code 100 like a full Node Subnet node.

use crate::config::{NodeSubnetConf, PluginConfig};
use crate::error::PluginError;
use crate::mode::{node_pool_addresses, Addresses, RoutedMode};

/// overlay's settings: those of the routed datapath it shares with nodesubnet.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayConf {
    pub routed: NodeSubnetConf,
}

impl RoutedMode for OverlayConf {
    fn routed(&self) -> &NodeSubnetConf {
        &self.routed
    }

    fn routed_addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        Ok(node_pool_addresses(cfg, "overlay", "aksnet node join --overlay")?.1)
    }
}
