//! Errors of the nft layer: what we tried (operation), on which object, and why.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// A model object that cannot be rendered safely (bad name, comment, dangling reference).
    #[error("invalid nftables {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The `nft` binary could not be started or talked to.
    #[error("{op}: cannot run {binary}: {source}")]
    Spawn {
        op: String,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `nft` ran and refused; its stderr is the only diagnostic it gives.
    #[error("{op}: nft exited with {status}: {stderr}")]
    Failed {
        op: String,
        status: String,
        stderr: String,
    },
    /// The kernel refused a netlink batch (the errno is the source's raw OS error), or the
    /// netlink socket failed.
    #[error("{op}: nf_tables netlink: {source}")]
    Netlink {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// `nft -j` printed something that is not the JSON schema we expect.
    #[error("{op}: cannot decode nft JSON output: {detail}")]
    Decode { op: String, detail: String },
}
