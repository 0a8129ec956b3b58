//! Errors of the IPAM store: every one names the file and the operation, and keeps the
//! io::Error (and so the errno) as its source (docs/prior-art.md#errors).

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use aksnet_core::allocator::{AllocError, AttachmentKey, StateError};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A file-system operation failed; `source.raw_os_error()` is the errno.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Creating, opening, reading or replacing one of the store's files failed, or a
    /// file is a symlink, FIFO, device or too large (`aksnet_fs`).
    #[error("IPAM store: {0}")]
    Fs(#[from] aksnet_fs::FsError),

    /// The state file is not valid JSON or not our format. Never reset: the operator
    /// decides (a silent reset would hand out addresses that running pods still hold).
    #[error("IPAM state file {path} is corrupt at line {line} column {column}: {source} (left untouched; repair or remove it by hand)")]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },

    /// The state file parses but its records contradict each other.
    #[error("IPAM state file {path} is inconsistent: {source} (left untouched; repair or remove it by hand)")]
    Inconsistent {
        path: PathBuf,
        #[source]
        source: Box<StateError>,
    },

    #[error(
        "IPAM state file {path} has format version {found}; this aksnet reads version {supported}"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("IPAM state file {path} is not an aksnet IPAM state (kind {found:?}, expected {expected:?})")]
    WrongKind {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },

    #[error("IPAM state file {path} belongs to network {found:?}, not {expected:?}")]
    WrongNetwork {
        path: PathBuf,
        found: String,
        expected: String,
    },

    /// Another process held the network's lock for longer than the timeout. The plugin
    /// maps this to CNI code 11 ("try again later").
    #[error("timed out after {waited:?} waiting for the IPAM lock {path}")]
    LockTimeout { path: PathBuf, waited: Duration },

    #[error("invalid network name {name:?}: {reason}")]
    InvalidNetwork { name: String, reason: &'static str },

    /// No free address in a range set. The plugin maps this to "no addresses".
    #[error("no free address in range set {set}: {in_use} of {capacity} in use")]
    Exhausted {
        set: usize,
        capacity: u128,
        in_use: u128,
    },

    /// A requested address (runtimeConfig `ips`, CNI_ARGS `IP=`) is held by another
    /// attachment.
    #[error("requested address {ip} is already held by {holder}")]
    Unavailable { ip: IpAddr, holder: AttachmentKey },

    /// Any other allocation error (requested address outside the pool, gateway, ...).
    #[error(transparent)]
    Alloc(AllocError),
}

impl From<AllocError> for IpamError {
    fn from(e: AllocError) -> Self {
        match e {
            AllocError::Exhausted {
                set,
                capacity,
                in_use,
            } => IpamError::Exhausted {
                set,
                capacity,
                in_use,
            },
            AllocError::Unavailable { ip, holder } => IpamError::Unavailable { ip, holder },
            other => IpamError::Alloc(other),
        }
    }
}

impl IpamError {
    /// Whether retrying later may succeed (lock contention): CNI code 11.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IpamError::LockTimeout { .. })
    }

    /// The errno of an I/O failure, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpamError::Io { source, .. } => source.raw_os_error(),
            IpamError::Fs(e) => e.errno(),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IpamError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
