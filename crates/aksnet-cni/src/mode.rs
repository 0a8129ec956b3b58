//! What a mode provides: where its addresses come from, its datapath (setup,
//! check, the name of the host end), and nothing else. The verbs in `lib.rs`
//! own the rest — the attachment lock, the IPAM transaction, the undo list,
//! ipMasq and the result — once for every mode (issue 16, item 4).

use aksnet_cniproto::{CmdArgs, CniResult};
use aksnet_core::allocator::{AllocationMeta, Allocator, AttachmentKey, LeaseInfo, ValidPool};
use aksnet_netlink::Handle;
use ipnet::IpNet;

use crate::config::PluginConfig;
use crate::error::PluginError;
use crate::undo::Undo;
use crate::veth::{AddCtx, PodNs};

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
    fn no_free_address(
        &self,
        cfg: &PluginConfig,
        addresses: &Addresses,
        in_use: usize,
    ) -> Option<PluginError> {
        let _ = cfg;
        addresses
            .node
            .as_ref()
            .map(|(node, reserved)| PluginError::NodeFull {
                node: node.clone(),
                reserved: *reserved,
                in_use,
            })
    }

    /// Builds the attachment's datapath for the reserved addresses. Each step
    /// that changes the kernel pushes its inverse on `undo`.
    fn setup(
        &self,
        ctx: &AddCtx<'_>,
        host: &mut Handle,
        pod: &mut PodNs,
        addresses: &[LeaseInfo],
        undo: &mut Undo<'_>,
    ) -> Result<CniResult, PluginError>;

    /// The host end of an attachment, from its key and what ADD stored with
    /// it (the pod's namespace and name).
    fn host_veth(&self, key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String;

    /// CHECK's host-side part: what differs from what ADD built.
    fn check_host(
        &self,
        args: &CmdArgs,
        state: &Allocator,
        ours: &[IpNet],
        host: &mut Handle,
        problems: &mut Vec<String>,
    ) -> Result<(), PluginError>;
}
