//! podsubnet mode: Azure CNI Pod Subnet (docs/models.md#pod-subnet). Pods take
//! addresses of a separate pod subnet from the /28 blocks the node holds in the
//! cluster store (`aksnet node join --pod-subnet …`, static or dynamic); the
//! datapath is the routed per-pod veth of nodesubnet ([`RoutedMode`]: only the
//! addresses differ).
//!
//! The plugin never calls the cluster store: it reads `node-pool.json`, whose
//! `podIps` `aksnet node pod-sync` keeps topped up for a dynamic node, and when
//! none is free it refuses with code 11 (try again later), as Azure's CNS says
//! "not enough IPs available, waiting on Azure CNS to allocate more".

use aksnet_core::podsubnet::Allocation;

use crate::config::{NodeSubnetConf, PluginConfig};
use crate::error::PluginError;
use crate::mode::{node_full, node_pool_addresses, Addresses, Exhausted, RoutedMode};

/// podsubnet's settings: those of the routed datapath it shares with nodesubnet.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSubnetConf {
    pub routed: NodeSubnetConf,
}

impl RoutedMode for PodSubnetConf {
    fn routed(&self) -> &NodeSubnetConf {
        &self.routed
    }

    fn routed_addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        Ok(node_pool_addresses(cfg, "podsubnet", "aksnet node join --pod-subnet")?.1)
    }

    /// A static node is full (its blocks are its for life); a dynamic one is
    /// waiting for its next batch.
    /// (Only on this failure path is the pool file read a second time.)
    fn routed_no_free_address(&self, at: Exhausted<'_>) -> Option<PluginError> {
        let (node, held) = at.addresses.node.clone()?;
        let pool = aksnet_ipam::node_pool::read_node_pool(&at.cfg.data_dir).ok()??;
        let ps = pool.pod_subnet?;
        match ps.allocation {
            Allocation::Dynamic => Some(PluginError::PoolEmpty {
                node,
                subnet: format!("{} ({})", ps.name, ps.cidr),
                held,
                max_pods: pool.max_pods,
            }),
            Allocation::Static => node_full(at.addresses, at.in_use),
        }
    }
}
