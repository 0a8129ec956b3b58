//! What a mode provides: where its addresses come from, its datapath (setup,
//! check, the name of the host end), and nothing else. The verbs in `lib.rs`
//! own the rest — the attachment lock, the IPAM transaction, the undo list,
//! ipMasq and the result — once for every mode (issue 16, item 4).

use aksnet_cniproto::{CmdArgs, CniResult};
use aksnet_core::allocator::{AllocationMeta, Allocator, AttachmentKey, LeaseInfo, ValidPool};
use aksnet_core::pool::{NodePool, NODE_POOL_FILE};
use aksnet_netlink::Handle;
use ipnet::IpNet;

use crate::config::{NodeSubnetConf, PluginConfig};
use crate::error::PluginError;
use crate::undo::Undo;
use crate::veth::{AddCtx, PodNs};

/// What a mode's [`Datapath::setup`] works with: the call, the reserved
/// addresses, the netlink handles of the node and of the pod, and the undo
/// list on which each kernel change it makes pushes its inverse.
pub(crate) struct Setup<'a, 'u> {
    pub ctx: AddCtx<'a>,
    pub addresses: &'a [LeaseInfo],
    pub host: &'a mut Handle,
    pub pod: &'a mut PodNs,
    pub undo: &'a mut Undo<'u>,
}

/// An ADD that found no free address ([`Datapath::no_free_address`]): the
/// configuration, the mode's addresses, and how many of them are in use.
#[derive(Clone, Copy)]
pub(crate) struct Exhausted<'a> {
    pub cfg: &'a PluginConfig,
    pub addresses: &'a Addresses,
    pub in_use: usize,
}

/// What CHECK's host-side part ([`Datapath::check_host`]) compares: the call,
/// the node's IPAM state, the attachment's addresses, the node's netlink
/// handle, and the list it adds what differs to.
pub(crate) struct HostCheck<'a> {
    pub args: &'a CmdArgs,
    pub state: &'a Allocator,
    pub ours: &'a [IpNet],
    pub host: &'a mut Handle,
    pub problems: &'a mut Vec<String>,
}

/// The addresses a mode hands out on this node.
pub(crate) struct Addresses {
    pub pool: ValidPool,
    /// The node whose up-front reservation this is and its size, when the
    /// pool is one (nodesubnet): a full pool is then reported as that node
    /// being full.
    pub node: Option<(String, usize)>,
}

pub(crate) trait Datapath: Sync {
    /// Settings of the pod's network namespace that ADD makes while it is
    /// inside it anyway (opening its netlink socket), before the pod's
    /// interface exists. Runs with the calling thread inside the pod netns.
    fn prepare_pod_netns(&self) -> aksnet_netlink::Result<()> {
        Ok(())
    }

    /// The pool ADD reserves from and STATUS reports on.
    fn addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError>;

    /// The error ADD reports when `addresses` has no free address and
    /// `in_use` are taken; `None` keeps the IPAM's own. By default a node's
    /// up-front reservation is reported as that node being full.
    fn no_free_address(&self, at: Exhausted<'_>) -> Option<PluginError> {
        node_full(at.addresses, at.in_use)
    }

    /// Builds the attachment's datapath for the reserved addresses. Each step
    /// that changes the kernel pushes its inverse on `undo`.
    fn setup(&self, s: Setup<'_, '_>) -> Result<CniResult, PluginError>;

    /// The host end of an attachment, from its key and what ADD stored with
    /// it (the pod's namespace and name).
    fn host_veth(&self, key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String;

    /// CHECK's host-side part: what differs from what ADD built.
    fn check_host(&self, c: HostCheck<'_>) -> Result<(), PluginError>;
}

/// A node whose up-front reservation is all in use (code 100), when `addresses`
/// is one.
pub(crate) fn node_full(addresses: &Addresses, in_use: usize) -> Option<PluginError> {
    addresses
        .node
        .as_ref()
        .map(|(node, reserved)| PluginError::NodeFull {
            node: node.clone(),
            reserved: *reserved,
            in_use,
        })
}

/// Reads the node's local pool that `aksnet node join` wrote (one reader for
/// the file, `aksnet_ipam::node_pool`, which parses it and checks every field
/// once), requires it to be a pool of the model `mode` (`NodePool::model`), and
/// returns it with the addresses it hands out. `join` is the command that makes one.
pub(crate) fn node_pool_addresses(
    cfg: &PluginConfig,
    mode: &'static str,
    join: &'static str,
) -> Result<(NodePool, Addresses), PluginError> {
    let err = |why: String| PluginError::NodePool {
        path: cfg.data_dir.join(NODE_POOL_FILE),
        why,
    };
    let (pool, valid) = match aksnet_ipam::node_pool::read_node_pool_addresses(&cfg.data_dir) {
        Ok(Some(read)) => read,
        Ok(None) => {
            return Err(err(format!(
                "is missing: this node has not joined (run `{join}`)"
            )))
        }
        Err(e) => return Err(PluginError::LocalPool(e)),
    };
    if pool.model() != mode {
        return Err(err(format!(
            "is the pool of a {0} node: use \"mode\": \"{0}\", or leave and run `{join}`",
            pool.model()
        )));
    }
    let node = Some((pool.node.clone(), pool.pod_ips.len()));
    Ok((pool, Addresses { pool: valid, node }))
}

/// A mode whose datapath is nodesubnet's routed per-pod veth and whose
/// addresses are its own (podsubnet, overlay): it implements [`Datapath`]
/// through nodesubnet's, so the datapath has one implementation.
pub(crate) trait RoutedMode: Sync {
    /// The routed datapath's settings.
    fn routed(&self) -> &NodeSubnetConf;

    /// See [`Datapath::addresses`].
    fn routed_addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError>;

    /// See [`Datapath::no_free_address`].
    fn routed_no_free_address(&self, at: Exhausted<'_>) -> Option<PluginError> {
        node_full(at.addresses, at.in_use)
    }
}

impl<T: RoutedMode> Datapath for T {
    fn prepare_pod_netns(&self) -> aksnet_netlink::Result<()> {
        self.routed().prepare_pod_netns()
    }

    fn addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        self.routed_addresses(cfg)
    }

    fn no_free_address(&self, at: Exhausted<'_>) -> Option<PluginError> {
        self.routed_no_free_address(at)
    }

    fn setup(&self, s: Setup<'_, '_>) -> Result<CniResult, PluginError> {
        self.routed().setup(s)
    }

    fn host_veth(&self, key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String {
        self.routed().host_veth(key, meta)
    }

    fn check_host(&self, c: HostCheck<'_>) -> Result<(), PluginError> {
        self.routed().check_host(c)
    }
}
