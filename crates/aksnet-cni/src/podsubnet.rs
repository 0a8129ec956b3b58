//! podsubnet mode: Azure CNI Pod Subnet (docs/models.md#pod-subnet). Pods take
//! addresses of a separate pod subnet from the /28 blocks the node holds in the
//! cluster store (`aksnet node join --pod-subnet …`, static or dynamic); the
//! datapath is the routed per-pod veth of nodesubnet, reused through its
//! [`Datapath`] implementation (only the addresses differ).
//!
//! The plugin never calls the cluster store: it reads `node-pool.json`, whose
//! `podIps` `aksnet node pod-sync` keeps topped up for a dynamic node, and when
//! none is free it refuses with code 11 (try again later), as Azure's CNS says
//! "not enough IPs available, waiting on Azure CNS to allocate more".

use std::net::IpAddr;

use aksnet_cniproto::{CmdArgs, CniResult};
use aksnet_core::allocator::{AllocationMeta, Allocator, AttachmentKey, LeaseInfo, Pool};
use aksnet_core::podsubnet::Allocation;
use aksnet_core::pool::NODE_POOL_FILE;
use aksnet_netlink::Handle;
use ipnet::IpNet;

use crate::config::{NodeSubnetConf, PluginConfig};
use crate::error::PluginError;
use crate::mode::{Addresses, Datapath};
use crate::undo::Undo;
use crate::veth::{AddCtx, PodNs};

/// podsubnet's settings: those of the routed datapath it shares with nodesubnet.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSubnetConf {
    pub routed: NodeSubnetConf,
}

impl PodSubnetConf {
    fn pool_err(cfg: &PluginConfig, why: String) -> PluginError {
        PluginError::NodePool {
            path: cfg.data_dir.join(NODE_POOL_FILE),
            why,
        }
    }
}

impl Datapath for PodSubnetConf {
    fn prepare_pod_netns(&self) -> aksnet_netlink::Result<()> {
        self.routed.prepare_pod_netns()
    }

    fn addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        let pool =
            match aksnet_store::local_pool::read_node_pool(&cfg.data_dir) {
                Ok(Some(pool)) => pool,
                Ok(None) => return Err(Self::pool_err(
                    cfg,
                    "is missing: this node has not joined (run `aksnet node join --pod-subnet`)"
                        .into(),
                )),
                Err(e) => return Err(PluginError::LocalPool(e)),
            };
        let Some(ps) = &pool.pod_subnet else {
            return Err(Self::pool_err(
                cfg,
                "is a Node Subnet pool (the node joined without --pod-subnet): use \
                 \"mode\": \"nodesubnet\", or leave and join with --pod-subnet"
                    .into(),
            ));
        };
        let valid = Pool::Addresses {
            prefix: IpNet::V4(ps.cidr),
            addrs: pool.pod_ips.iter().copied().map(IpAddr::V4).collect(),
        }
        .validate()
        .map_err(|e| Self::pool_err(cfg, format!("is invalid: {e}")))?;
        Ok(Addresses {
            pool: valid,
            node: Some((pool.node.clone(), pool.pod_ips.len())),
        })
    }

    /// A static node is full (its blocks are its for life); a dynamic one is
    /// waiting for its next batch.
    /// (Only on this failure path is the pool file read a second time.)
    fn no_free_address(
        &self,
        cfg: &PluginConfig,
        addresses: &Addresses,
        in_use: usize,
    ) -> Option<PluginError> {
        let (node, held) = addresses.node.clone()?;
        let pool = aksnet_store::local_pool::read_node_pool(&cfg.data_dir).ok()??;
        let ps = pool.pod_subnet?;
        Some(match ps.allocation {
            Allocation::Dynamic => PluginError::PoolEmpty {
                node,
                subnet: format!("{} ({})", ps.name, ps.cidr),
                held,
                max_pods: pool.max_pods,
            },
            Allocation::Static => PluginError::NodeFull {
                node,
                reserved: held,
                in_use,
            },
        })
    }

    fn setup(
        &self,
        ctx: &AddCtx<'_>,
        host: &mut Handle,
        pod: &mut PodNs,
        addresses: &[LeaseInfo],
        undo: &mut Undo<'_>,
    ) -> Result<CniResult, PluginError> {
        self.routed.setup(ctx, host, pod, addresses, undo)
    }

    fn host_veth(&self, key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String {
        self.routed.host_veth(key, meta)
    }

    fn check_host(
        &self,
        args: &CmdArgs,
        state: &Allocator,
        ours: &[IpNet],
        host: &mut Handle,
        problems: &mut Vec<String>,
    ) -> Result<(), PluginError> {
        self.routed.check_host(args, state, ours, host, problems)
    }
}
