//! Every way the plugin fails, and the one place they become CNI error codes
//! (SPEC.md "Error"; docs/cni-clients.md#errors).

use std::path::PathBuf;

use aksnet_cniproto::{CniError, EnvError, ErrorCode, SUPPORTED_VERSIONS};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PluginError {
    #[error(transparent)]
    Env(#[from] EnvError),

    #[error("reading the network configuration from stdin: {0}")]
    Stdin(#[source] std::io::Error),

    #[error("decoding {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("cniVersion {given:?} is not supported")]
    Version { given: String },

    #[error("{verb} needs cniVersion {needs} or later, the configuration says {given}")]
    VerbNeedsVersion {
        verb: &'static str,
        needs: &'static str,
        given: String,
    },

    #[error("invalid network configuration: field {field} = {value}: {why}")]
    Config {
        field: String,
        value: String,
        why: String,
    },

    #[error("invalid network configuration: ipam.{0}")]
    Pool(aksnet_core::allocator::PoolError),

    #[error("network namespace {path} cannot be opened: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: aksnet_netlink::NetlinkError,
    },

    #[error("interface {ifname} already exists in {netns}")]
    IfnameExists { ifname: String, netns: String },

    /// `CNI_NETNS` is the plugin's own network namespace (issue 10, item 7).
    #[error("CNI_NETNS {path} is the network namespace the plugin runs in, not a pod's")]
    NetnsIsOwn { path: PathBuf },

    /// stdin is larger than any network configuration (issue 10, item 7).
    #[error("the network configuration on stdin is larger than {limit_mib} MiB")]
    StdinTooLarge { limit_mib: usize },

    /// The host veth name this ADD needs is held by another live attachment
    /// (issue 10, item 3): it is never deleted from under that attachment.
    #[error(
        "host interface {name} belongs to the live attachment {owner}; \
         DEL that attachment first (kubelet stops an old sandbox before it starts a new one)"
    )]
    HostVethTaken { name: String, owner: String },

    #[error("interface {ifname} vanished from {netns} right after it was created")]
    IfnameMissing { ifname: String, netns: String },

    #[error(transparent)]
    Netlink(#[from] aksnet_netlink::NetlinkError),

    #[error(transparent)]
    Ipam(#[from] aksnet_ipam::IpamError),

    /// nodesubnet: every address the node reserved is in use (issue 3).
    #[error(
        "node {node} has no free pod address: {reserved} reserved (maxPods), {in_use} in use; \
         add nodes or raise maxPods in a new node pool"
    )]
    NodeFull {
        node: String,
        reserved: usize,
        in_use: usize,
    },

    /// podsubnet (dynamic): every address the node holds now is in use; the
    /// node's pool is topped up by `aksnet node pod-sync`, so a retry succeeds
    /// (docs/models.md, "Who tops up").
    #[error(
        "node {node} has no free pod address in pod subnet {subnet} yet: all {held} it holds \
         are in use; `aksnet node pod-sync` takes another batch of 16 from the cluster \
         store (up to maxPods {max_pods}); try again"
    )]
    PoolEmpty {
        node: String,
        subnet: String,
        held: usize,
        max_pods: u32,
    },

    #[error("node pool {path}: {why}")]
    NodePool { path: PathBuf, why: String },

    #[error(transparent)]
    LocalPool(#[from] aksnet_ipam::node_pool::NodePoolFileError),

    /// `script` is the nft transaction that failed (empty when it could not be built).
    #[error("ipMasq: {source}")]
    IpMasq {
        script: String,
        #[source]
        source: aksnet_nft::NftError,
    },

    /// STATUS: the plugin cannot serve ADD now (code 50).
    #[error("not ready to add pods: {0}")]
    NotReady(String),

    #[error("CHECK found the attachment differs from prevResult: {}", .0.join("; "))]
    Check(Vec<String>),

    #[error("{cause} (and undoing the partial ADD failed: {})", .cleanup.join("; "))]
    Rollback {
        cause: Box<PluginError>,
        cleanup: Vec<String>,
    },
}

impl PluginError {
    pub fn code(&self) -> ErrorCode {
        use aksnet_core::allocator::AllocError;
        use aksnet_ipam::IpamError as I;
        match self {
            PluginError::Env(_) => ErrorCode::InvalidEnv,
            PluginError::Stdin(_) => ErrorCode::Io,
            PluginError::Decode { .. } => ErrorCode::Decode,
            PluginError::Version { .. } | PluginError::VerbNeedsVersion { .. } => {
                ErrorCode::IncompatibleVersion
            }
            PluginError::Config { .. } | PluginError::Pool(_) => ErrorCode::InvalidConfig,
            PluginError::Netns { .. } => ErrorCode::UnknownContainer,
            PluginError::NetnsIsOwn { .. } => ErrorCode::InvalidEnv,
            PluginError::StdinTooLarge { .. } => ErrorCode::InvalidConfig,
            PluginError::HostVethTaken { .. } => ErrorCode::AttachmentConflict,
            PluginError::IfnameExists { .. }
            | PluginError::IfnameMissing { .. }
            | PluginError::Netlink(_) => ErrorCode::Kernel,
            PluginError::Ipam(e) => match e {
                I::Alloc(AllocError::Exhausted { .. } | AllocError::Unavailable { .. }) => {
                    ErrorCode::NoAddressAvailable
                }
                I::Alloc(_) | I::InvalidNetwork { .. } => ErrorCode::InvalidConfig,
                I::LockTimeout { .. } => ErrorCode::TryAgainLater,
                _ => ErrorCode::State,
            },
            PluginError::NodeFull { .. } => ErrorCode::NoAddressAvailable,
            PluginError::PoolEmpty { .. } => ErrorCode::TryAgainLater,
            PluginError::NodePool { .. } | PluginError::LocalPool(_) => ErrorCode::State,
            PluginError::Check(_) => ErrorCode::CheckFailed,
            PluginError::NotReady(_) => ErrorCode::NotAvailable,
            PluginError::IpMasq { .. } => ErrorCode::Kernel,
            PluginError::Rollback { cause, .. } => cause.code(),
        }
    }

    /// The CNI error object. `msg` is this error's one-line text; `details`
    /// carries the source chain and, for version errors, what we support.
    pub fn to_cni_error(&self) -> CniError {
        let msg = self.to_string();
        let mut details = Vec::new();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let text = s.to_string();
            if !msg.contains(&text) {
                details.push(text);
            }
            src = s.source();
        }
        if matches!(self, PluginError::Version { .. }) {
            details.push(format!(
                "supported versions: {}",
                SUPPORTED_VERSIONS.join(", ")
            ));
        }
        CniError::new(self.code(), msg, details.join(": "))
    }
}
