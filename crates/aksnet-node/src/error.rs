//! The one error type of node operations.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use aksnet_store::local_pool::LocalPoolError;
use aksnet_store::reservation::ReservationError;

/// Why a node operation did not succeed; every variant names what it was
/// about (the node, the file, the flag and its value).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A test-only fault (`failpoint`).
    #[error("injected fault {0} (AKSNET_FAILPOINT)")]
    Failpoint(&'static str),
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error(transparent)]
    LocalPool(#[from] LocalPoolError),
    #[error(
        "--data-dir {}: it holds the pool of node {pool_node} ({}), not of node {node}; \
         each node has its own data directory",
        data_dir.display(), pool_path.display()
    )]
    DataDirOfAnotherNode {
        data_dir: PathBuf,
        pool_path: PathBuf,
        pool_node: String,
        node: String,
    },
    #[error(
        "refusing to release node {node}: {count} pod address(es) of its reservation are still \
         allocated in {} ({ips}); drain the node first, or pass --force",
        data_dir.display()
    )]
    PodsPresent {
        node: String,
        count: usize,
        ips: String,
        data_dir: PathBuf,
    },
    #[error("read the IPAM state in {}: {source}", data_dir.display())]
    Ipam {
        data_dir: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "--store {value:?}: this aksnet was built without etcd support; rebuild with \
         `cargo build -p aksnet --features etcd`, or pass a directory for the embedded store"
    )]
    #[cfg(not(feature = "etcd"))]
    EtcdNotCompiled { value: String },
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] aksnet_store::EtcdError),
    #[error(
        "cluster store {store} is empty, but {} holds node {node}'s pool: the store was lost \
         or replaced, and treating it as an empty cluster would hand this node's addresses \
         to another node. Restore the store; if the cluster really was reset and no pod uses \
         the pool, `aksnet node leave --node {node} --force` removes the pool",
        pool_path.display()
    )]
    StoreLost {
        store: String,
        pool_path: PathBuf,
        node: String,
    },
    #[error(
        "node {node} has no lease in --data-dir {} (node-pool.lease): join it with \
         --lease-ttl to put its reservation on a lease",
        data_dir.display()
    )]
    NoLease { node: String, data_dir: PathBuf },
    #[error("fenced the node's pool ({}): {reason}; rejoin with `aksnet node join`", path.display())]
    Fenced { path: PathBuf, reason: String },
    #[error("--etcd-password-file {}: {source}", path.display())]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}'s reservation changed while it was leaving (a concurrent join or leave); run leave again")]
    ChangedWhileLeaving { node: String },
    #[error(transparent)]
    PodCidr(#[from] aksnet_store::podcidr::PodCidrError),
    /// The route table of the nodes' pod CIDRs could not be read (the agent's
    /// error, which this crate, below the agent, carries boxed).
    #[error("{0}")]
    Routes(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("--node-ip {given}: the node's reservation in the node subnet gives it {reserved}; omit --node-ip or pass {reserved}")]
    NodeIpMismatch { given: Ipv4Addr, reserved: Ipv4Addr },
    #[error("--pod-cidr-from without --subnet needs --node-ip (the next hop of the node's pod CIDR route)")]
    NodeIpNeeded,
    #[error(
        "the IPAM state in {} hands out addresses of several pod CIDR blocks ({blocks}); \
         a node has one block: delete the pods of the others first",
        data_dir.display()
    )]
    PodsInSeveralBlocks { data_dir: PathBuf, blocks: String },
    #[error("{flag} {value}: {why}")]
    OverlayFlag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error(transparent)]
    PodSubnet(#[from] aksnet_store::podsubnet::PodSubnetError),
    #[error(transparent)]
    PodPool(#[from] aksnet_store::pod_pool::PodPoolError),
    #[error(
        "node {node}'s IPAM state hands {ips} to pods, outside the pod-subnet blocks the \
         cluster store holds for it (was the store lost?); its pool was not rewritten"
    )]
    PodsOutsideBlocks { node: String, ips: String },
}

impl NodeError {
    /// Whether the request itself was wrong (a flag's value, a name, a data
    /// directory of another node) rather than refused or failed.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Reservation(
                ReservationError::InvalidNodeName { .. }
                | ReservationError::InvalidSubnetName { .. }
                | ReservationError::Azure(_),
            )
            | Self::DataDirOfAnotherNode { .. }
            | Self::NodeIpMismatch { .. }
            | Self::OverlayFlag { .. }
            | Self::NodeIpNeeded => true,
            Self::PodCidr(e) if e.is_bad_input() => true,
            #[cfg(not(feature = "etcd"))]
            Self::EtcdNotCompiled { .. } => true,
            #[cfg(feature = "etcd")]
            Self::Etcd(
                aksnet_store::EtcdError::InvalidUrl(_)
                | aksnet_store::EtcdError::InvalidConfig { .. }
                | aksnet_store::EtcdError::TlsFile { .. },
            )
            | Self::PasswordFile { .. } => true,
            _ => false,
        }
    }
}
