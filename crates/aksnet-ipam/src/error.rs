//! Errors of the IPAM store: every one names the file and the operation, and keeps the
//! io::Error (and so the errno) as its source (docs/prior-art.md#errors).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use aksnet_core::allocator::{AllocError, StateError};

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

    /// An allocation failed: no free address in a range set (`AllocError::Exhausted`,
    /// the plugin's "no addresses"), a requested address held by another attachment
    /// (`Unavailable`), outside the pool, a gateway, ... The allocator's own error, kept
    /// whole: one definition of each case.
    #[error(transparent)]
    Alloc(#[from] AllocError),
}

impl IpamError {
    /// Whether retrying later may succeed (lock contention): CNI code 11.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IpamError::LockTimeout { .. })
    }

    /// How many addresses were in use when a range set had none free, if that is
    /// the failure.
    pub fn exhausted_in_use(&self) -> Option<u128> {
        match self {
            IpamError::Alloc(AllocError::Exhausted { in_use, .. }) => Some(*in_use),
            _ => None,
        }
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
