//! The lab's errors: each names the operation and the object (flag, file,
//! namespace, binary) it was about.

use std::path::PathBuf;

use aksnet_netlink::NetlinkError;

use crate::routetable::RouteTableError;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Bad input, found before anything was created.
    #[error("invalid {flag} {value:?}: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: String,
    },
    /// Kernel plumbing (netns, link, address, route, sysctl); the netlink
    /// error already names its operation, object and errno.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A state file could not be written (`aksnet_fs`: path and errno).
    #[error(transparent)]
    File(#[from] aksnet_fs::FsError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A binary the lab drives (`aksnet node join`, `aksnet agent`, `ip`)
    /// failed or could not run.
    #[error("{what} failed ({status}): {message}")]
    Command {
        what: String,
        status: String,
        message: String,
    },
    /// The CNI plugin answered ADD with an error result.
    #[error("aksnet-cni ADD for pod {pod} on {node} failed: CNI error {code}: {msg}{}", details_suffix(.details))]
    Cni {
        pod: String,
        node: String,
        code: u64,
        msg: String,
        details: String,
    },
    #[error(transparent)]
    RouteTable(#[from] RouteTableError),
    /// The lab's cluster store could not be read (the fabric follows it).
    #[error("cluster store {}: {source}", dir.display())]
    Store {
        dir: PathBuf,
        source: aksnet_store::ReservationError,
    },
    #[error("a lab with prefix {prefix:?} is already up (state in {}); run `aksnet lab down --prefix {prefix}` first", dir.display())]
    AlreadyUp { prefix: String, dir: PathBuf },
    #[error("no lab with prefix {prefix:?} is up (no state in {}); run `aksnet lab up --prefix {prefix}` first", dir.display())]
    NotUp { prefix: String, dir: PathBuf },
    #[error("state file {}: {why}", path.display())]
    State { path: PathBuf, why: String },
    #[error("{name} not found at {}: {hint}", path.display())]
    MissingBinary {
        name: &'static str,
        path: PathBuf,
        hint: String,
    },
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

impl LabError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LabError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        flag: &'static str,
        value: impl ToString,
        why: impl Into<String>,
    ) -> Self {
        LabError::Invalid {
            flag,
            value: value.to_string(),
            why: why.into(),
        }
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;
