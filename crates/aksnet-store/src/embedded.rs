//! The embedded cluster store: the default backend, used on one machine and by the lab.
//!
//! On disk, in the state directory (default `/var/lib/aksnet/cluster`):
//!
//! ```text
//! <dir>/state.json   {"version":1,"revision":N,"keys":{"<key>":{"createRevision":a,
//!                     "modRevision":b,"value":"<utf-8 value>"}}}   (or "valueHex")
//! <dir>/lock         empty; flock'd (std File::lock) only for the duration of one txn
//! <dir>/.state.json.<pid>.<n>.tmp   transient: the next state while it is being written
//! ```
//!
//! The directory is 0700 and the files 0600 whatever the umask; a symlink at the
//! directory, `state.json`, the lock or a temp path is never followed (`aksnet-fs`,
//! docs/architecture.md "Files and modes").
//!
//! A transaction takes the lock, reads `state.json`, evaluates the compares, and
//! when they hold writes the next state with [`aksnet_fs::write_atomic`] (temp,
//! fdatasync, rename, directory fsync) before releasing the lock. Reads take no lock: the
//! rename makes every reader see one whole committed state. A missing `state.json`
//! is the empty store at revision 0; a state file that does not parse or breaks an
//! invariant is an error naming the file and is never reset (docs/prior-art.md#atomic-writes).
//!
//! The whole key space is one file: a cluster's reservations are one small record
//! per node (a few KB at maxPods 250), so rewriting it per join is cheap at the
//! scale one machine runs, and it makes every txn trivially atomic. Clusters that
//! span machines use etcd (`crate::etcd`) behind the same [`Store`] trait.

use std::fs::File;
use std::path::{Path, PathBuf};

use aksnet_fs::{ensure_private_dir, open_lock_file, read_regular_capped, write_atomic};

use crate::kv::{
    refuse_leases, validate_txn, Compare, KeyValue, Op, Revision, State, Store, StoreError,
    STATE_VERSION,
};

/// State file name inside the store directory.
pub const STATE_FILE: &str = "state.json";
/// Lock file name inside the store directory.
pub const LOCK_FILE: &str = "lock";
/// The largest state file read (a cluster of 5,000 nodes at maxPods 250 is a few MB).
pub const MAX_STATE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    dir: PathBuf,
}

impl EmbeddedStore {
    /// A store in `dir`. Performs no I/O: the directory is created by the first
    /// write transaction, and reading a store that was never written gives nothing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The revision of the last committed write transaction (0 for a new store).
    pub fn revision(&self) -> Result<Revision, StoreError> {
        Ok(self.load()?.revision)
    }

    fn load(&self) -> Result<State, StoreError> {
        let path = self.state_path();
        let bytes = match read_regular_capped(&path, MAX_STATE_BYTES) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(State::empty()),
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: format!("not UTF-8: {e}"),
        })?;
        // Check the version first so a newer format says so instead of "unknown field".
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?
            .get("version")
            .and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v == u64::from(STATE_VERSION) => {}
            Some(v) => {
                return Err(StoreError::UnsupportedVersion {
                    path,
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                    expected: STATE_VERSION,
                })
            }
            None => {
                return Err(StoreError::Corrupt {
                    path,
                    detail: "field \"version\" is missing or not a number".to_string(),
                })
            }
        }
        let state: State = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        state
            .check()
            .map_err(|detail| StoreError::Corrupt { path, detail })?;
        Ok(state)
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.state_path(),
            detail,
        }
    }

    /// Takes the store lock (creating the directory and lock file on first use).
    /// The lock is released when the returned file is dropped.
    fn lock(&self) -> Result<File, StoreError> {
        ensure_private_dir(&self.dir)?;
        let path = self.dir.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        file.lock().map_err(|source| StoreError::Io {
            op: "lock",
            path,
            source,
        })?;
        Ok(file)
    }
}

impl Store for EmbeddedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        self.load()?.get(key).map_err(|d| self.corrupt(d))
    }

    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.load()?.list(prefix).map_err(|d| self.corrupt(d))
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<bool, StoreError> {
        validate_txn(compares, ops)?;
        refuse_leases(&self.describe(), ops)?;
        let _lock = self.lock()?;
        let mut state = self.load()?;
        if !state.compares_hold(compares) {
            return Ok(false);
        }
        if ops.is_empty() {
            return Ok(true);
        }
        state.apply(ops);
        let mut text = serde_json::to_vec_pretty(&state).map_err(|e| {
            // Serialising plain strings and numbers cannot fail; report it anyway.
            self.corrupt(format!("cannot serialise the next state: {e}"))
        })?;
        text.push(b'\n');
        write_atomic(&self.dir, STATE_FILE, &text, aksnet_fs::PRIVATE_FILE_MODE)?;
        Ok(true)
    }

    fn describe(&self) -> String {
        self.state_path().display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: k.to_string(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn empty_store_reads_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = EmbeddedStore::new(dir.path().join("cluster"));
        assert_eq!(s.get("a").expect("get"), None);
        assert!(s.list("").expect("list").is_empty());
        assert_eq!(s.revision().expect("rev"), 0);
        assert!(!dir.path().join("cluster").exists());
    }

    #[test]
    fn txn_semantics_persist_across_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = EmbeddedStore::new(dir.path());
        assert!(s
            .txn(
                &[Compare::Absent("a".into())],
                &[put("a", "1"), put("b", "x")]
            )
            .expect("txn"));
        assert!(!s
            .txn(&[Compare::Absent("a".into())], &[put("a", "2")])
            .expect("txn"));
        let s2 = EmbeddedStore::new(dir.path());
        assert_eq!(s2.get("a").expect("get"), Some((b"1".to_vec(), 1)));
        assert!(s2
            .txn(&[Compare::ModRevision("a".into(), 1)], &[put("a", "2")])
            .expect("txn"));
        assert!(!s2
            .txn(&[Compare::ModRevision("a".into(), 1)], &[put("a", "3")])
            .expect("txn"));
        let kv = s.list("a").expect("list");
        assert_eq!(kv.len(), 1);
        assert_eq!((kv[0].create_revision, kv[0].mod_revision), (1, 2));
        assert!(s
            .txn(&[], &[Op::Delete { key: "a".into() }, put("bin", "\u{0}")])
            .expect("txn"));
        // Non-UTF-8 values round-trip through valueHex.
        assert!(s
            .txn(
                &[],
                &[Op::Put {
                    key: "raw".into(),
                    value: vec![0xff, 0x00, 0x10]
                }]
            )
            .expect("txn"));
        assert_eq!(
            s2.get("raw").expect("get").map(|(v, _)| v),
            Some(vec![0xff, 0x00, 0x10])
        );
        assert_eq!(s2.get("a").expect("get"), None);
        assert_eq!(s2.revision().expect("rev"), 4);
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file_and_is_never_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = EmbeddedStore::new(dir.path());
        let path = dir.path().join(STATE_FILE);
        for bad in [
            "",
            "{not json",
            "{\"version\":1}",
            "{\"version\":1,\"revision\":1,\"keys\":{\"k\":{\"createRevision\":2,\"modRevision\":2,\"value\":\"v\"}}}",
            "{\"version\":1,\"revision\":1,\"keys\":{\"k\":{\"createRevision\":1,\"modRevision\":1}}}",
        ] {
            std::fs::write(&path, bad).expect("write");
            let e = s.get("k").unwrap_err();
            assert!(matches!(e, StoreError::Corrupt { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            let e = s.txn(&[], &[put("k", "v")]).unwrap_err();
            assert!(matches!(e, StoreError::Corrupt { .. }));
            assert_eq!(std::fs::read_to_string(&path).expect("read"), bad);
        }
        std::fs::write(&path, "{\"version\":2,\"revision\":0,\"keys\":{}}").expect("write");
        let e = s.get("k").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::UnsupportedVersion {
                    found: 2,
                    expected: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = EmbeddedStore::new(dir.path());
        for k in ["", "a b", "a\nb"] {
            let e = s.txn(&[], &[put(k, "v")]).unwrap_err();
            assert!(matches!(e, StoreError::InvalidKey { .. }), "{k:?}");
        }
        assert!(!dir.path().join(STATE_FILE).exists());
    }
}
