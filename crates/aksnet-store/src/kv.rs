//! The cluster store's data model: keys with revisions and compare-and-swap
//! transactions, shaped after etcd's v3 KV API so that an etcd backend maps every
//! [`Store::txn`] onto exactly one etcd `Txn` (docs/prior-art.md#cluster-allocation: one
//! key per reservation, reserve with compare-create-revision → put, release with
//! compare-on-owner, never split one change across two transactions).
//!
//! - Every successful write transaction bumps the store's revision by one, and each
//!   key written in it gets that revision as its `mod_revision` (etcd semantics).
//! - [`Compare::Absent`] is etcd's `create_revision(key) == 0`;
//!   [`Compare::ModRevision`] is `mod_revision(key) == r`.
//! - A transaction applies all its ops when every compare holds and returns `true`;
//!   otherwise it changes nothing and returns `false`. There is no "else" branch:
//!   callers re-read and retry.
//! - Reads are linearizable snapshots: a key read after a transaction committed sees it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A store revision: 0 means "never written"; each committed write transaction adds 1.
pub type Revision = u64;

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist (etcd: `create_revision == 0`).
    Absent(String),
    /// The key exists and was last modified at this revision (etcd: `mod_revision == r`).
    ModRevision(String, Revision),
}

/// A write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
    },
    /// Deleting an absent key is a no-op, as in etcd.
    Delete {
        key: String,
    },
    /// A put attached to a lease ([`Store::grant_lease`]): the store deletes the
    /// key when the lease expires. Only backends with leases (etcd) accept it.
    PutWithLease {
        key: String,
        value: Vec<u8>,
        lease: LeaseId,
    },
}

/// A lease of the store (etcd's lease ID).
pub type LeaseId = i64;

/// Errors of a store backend. Every variant names the file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cluster store: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Creating, opening, reading or replacing one of the embedded store's files failed,
    /// or one is a symlink, FIFO, device or too large (`aksnet_fs`).
    #[error("cluster store: {0}")]
    File(#[from] aksnet_fs::FsError),
    /// A remote backend (etcd) failed; `endpoint` is the store URL, the source's
    /// kind says refused / timed out / other and its text which endpoint failed
    /// how; `outcome` is set for writes.
    #[error("cluster store: {op} {endpoint}: {source}{}", outcome.map_or("", WriteOutcome::sentence))]
    Remote {
        op: &'static str,
        endpoint: String,
        #[source]
        source: std::io::Error,
        outcome: Option<WriteOutcome>,
    },
    /// The state file exists but cannot be parsed. Never reset: a human decides.
    #[error("cluster store: state file {} is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("cluster store: state file {} has format version {found}, this aksnet understands {expected}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// A key the caller built is not a valid store key.
    #[error("cluster store: invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The backend lacks a feature (leases on the embedded store).
    #[error("cluster store {store}: {what} need the etcd store (--store etcd://...)")]
    Unsupported { store: String, what: &'static str },
}

/// Whether a write that failed was applied (issue 17: automation must know
/// whether to retry or to clean up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// No attempt reached the store (every connection was refused).
    NotApplied,
    /// An attempt may have reached the store and committed.
    Unknown,
}

impl WriteOutcome {
    fn sentence(self) -> &'static str {
        match self {
            Self::NotApplied => "; outcome: not applied (no attempt reached the store)",
            Self::Unknown => "; outcome: not known (an attempt may have been applied)",
        }
    }
}

/// Cluster-wide state as keys with revisions. Every change is one
/// compare-and-swap transaction (issue 3).
pub trait Store {
    /// The value of `key` and its `mod_revision`, or `None` when absent.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError>;
    /// Every key starting with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError>;
    /// Applies `ops` atomically if every compare holds. `Ok(true)` when applied,
    /// `Ok(false)` when a compare failed (nothing changed).
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<bool, StoreError>;
    /// The keys starting with `prefix`, in key order, without their values (the
    /// address index is read this way: its keys say everything).
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.list(prefix)?.into_iter().map(|kv| kv.key).collect())
    }
    /// True when the store holds no key at all (a new store, or one that was lost:
    /// callers that hold local state compare the two, issue 10 item 4).
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.list("")?.is_empty())
    }
    /// Grants a lease of `ttl` (rounded up to whole seconds); keys put with it
    /// vanish when it is not kept alive for that long.
    fn grant_lease(&self, ttl: std::time::Duration) -> Result<LeaseId, StoreError> {
        let _ = ttl;
        Err(StoreError::Unsupported {
            store: self.describe(),
            what: "leases",
        })
    }
    /// Renews a lease: `Some(seconds left)` when it is alive, `None` when it has
    /// expired (its keys are gone).
    fn keep_alive(&self, lease: LeaseId) -> Result<Option<i64>, StoreError> {
        let _ = lease;
        Err(StoreError::Unsupported {
            store: self.describe(),
            what: "leases",
        })
    }
    /// Blocks until `key` changes after revision `after` (a put or a delete), or
    /// `timeout` passes, whichever is first; either way the caller re-reads. The
    /// default waits out the timeout (backends without a watch).
    fn wait_for_change(
        &self,
        key: &str,
        after: Revision,
        timeout: std::time::Duration,
    ) -> Result<(), StoreError> {
        let _ = (key, after);
        std::thread::sleep(timeout);
        Ok(())
    }
    /// What failed and was retried by requests that then succeeded (issue 17: logs
    /// of retries), and forgets it; `None` when nothing was retried.
    fn take_retry_note(&self) -> Option<String> {
        None
    }
    /// A long-lived user starts a new whole-command deadline for each unit of work
    /// (backends without one ignore it).
    fn restart_deadline(&self) {}
    /// Attempts that failed transiently and were retried since this store was
    /// opened (issue 17: metrics of retries); 0 for backends that never retry.
    fn retries_so_far(&self) -> u64 {
        0
    }
    /// How errors and messages name this store: the embedded store's state file,
    /// or the etcd URL.
    fn describe(&self) -> String;
}

/// Keys are `/`-separated printable ASCII, as etcd users write them; this keeps the
/// embedded state file readable and the etcd mapping trivial.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("not printable ASCII without spaces");
    }
    Ok(())
}

/// One key's stored record (the embedded backend's on-disk shape too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Record {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    /// The value when it is UTF-8 (every value aksnet writes is JSON), so the
    /// state file stays readable...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ...otherwise lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl Record {
    fn encode(value: &[u8]) -> (Option<String>, Option<String>) {
        match std::str::from_utf8(value) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (
                None,
                Some(value.iter().map(|b| format!("{b:02x}")).collect()),
            ),
        }
    }

    /// The value bytes; `Err` names what is wrong for a corrupt-state error.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.value, &self.value_hex) {
            (Some(s), None) => Ok(s.as_bytes().to_vec()),
            (None, Some(h)) => {
                if h.len() % 2 != 0 {
                    return Err("valueHex has odd length".to_string());
                }
                (0..h.len())
                    .step_by(2)
                    .map(|i| {
                        h.get(i..i + 2)
                            .and_then(|d| u8::from_str_radix(d, 16).ok())
                            .ok_or_else(|| format!("valueHex is not hex at offset {i}"))
                    })
                    .collect()
            }
            _ => Err("exactly one of value and valueHex must be present".to_string()),
        }
    }
}

/// The whole key space at one revision: shared by the in-memory fake and the
/// embedded backend, so both have exactly the same transaction semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct State {
    pub version: u32,
    pub revision: Revision,
    pub keys: BTreeMap<String, Record>,
}

/// Format version of the embedded state file.
pub(crate) const STATE_VERSION: u32 = 1;

impl State {
    pub fn empty() -> Self {
        Self {
            version: STATE_VERSION,
            revision: 0,
            keys: BTreeMap::new(),
        }
    }

    /// Checks invariants after loading: revisions in range, values decodable.
    pub fn check(&self) -> Result<(), String> {
        for (k, r) in &self.keys {
            if validate_key(k).is_err() {
                return Err(format!("key {k:?} is not a valid key"));
            }
            if r.create_revision == 0
                || r.create_revision > r.mod_revision
                || r.mod_revision > self.revision
            {
                return Err(format!(
                    "key {k:?} has createRevision {} and modRevision {} with store revision {}",
                    r.create_revision, r.mod_revision, self.revision
                ));
            }
            r.bytes().map_err(|e| format!("key {k:?}: {e}"))?;
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, String> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(r) => Ok(Some((r.bytes()?, r.mod_revision))),
        }
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, String> {
        self.keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, r)| {
                Ok(KeyValue {
                    key: k.clone(),
                    value: r.bytes()?,
                    create_revision: r.create_revision,
                    mod_revision: r.mod_revision,
                })
            })
            .collect()
    }

    pub fn compares_hold(&self, compares: &[Compare]) -> bool {
        compares.iter().all(|c| match c {
            Compare::Absent(k) => !self.keys.contains_key(k),
            Compare::ModRevision(k, rev) => self.keys.get(k).map(|r| r.mod_revision) == Some(*rev),
        })
    }

    /// Applies the ops as one new revision. Caller has checked the compares.
    pub fn apply(&mut self, ops: &[Op]) {
        let rev = self.revision + 1;
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    let (value, value_hex) = Record::encode(value);
                    let create_revision = self.keys.get(key).map_or(rev, |r| r.create_revision);
                    self.keys.insert(
                        key.clone(),
                        Record {
                            create_revision,
                            mod_revision: rev,
                            value,
                            value_hex,
                        },
                    );
                }
                Op::Delete { key } => {
                    self.keys.remove(key);
                }
                // Refused before apply by every backend without leases.
                Op::PutWithLease { .. } => {}
            }
        }
        self.revision = rev;
    }
}

/// Refuses leased puts on a backend without leases.
pub(crate) fn refuse_leases(store: &str, ops: &[Op]) -> Result<(), StoreError> {
    if ops.iter().any(|o| matches!(o, Op::PutWithLease { .. })) {
        return Err(StoreError::Unsupported {
            store: store.to_string(),
            what: "leases",
        });
    }
    Ok(())
}

/// Validates every key a transaction names.
pub(crate) fn validate_txn(compares: &[Compare], ops: &[Op]) -> Result<(), StoreError> {
    for c in compares {
        match c {
            Compare::Absent(k) | Compare::ModRevision(k, _) => validate_key(k)?,
        }
    }
    for o in ops {
        match o {
            Op::Put { key, .. } | Op::Delete { key } | Op::PutWithLease { key, .. } => {
                validate_key(key)?
            }
        }
    }
    Ok(())
}
