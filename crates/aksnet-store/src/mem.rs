//! In-memory [`Store`]: the fake for unit tests of logic built on the store
//! (the allocator's logic tested against a fake store). Same
//! transaction semantics as the embedded backend: both apply [`State`].

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::kv::{
    refuse_leases, validate_txn, Compare, KeyValue, Op, Revision, State, Store, StoreError,
};

#[derive(Debug)]
pub struct MemStore {
    state: Mutex<State>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::empty()),
        }
    }

    /// The store's current revision (number of committed write transactions).
    pub fn revision(&self) -> Revision {
        self.lock().revision
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied txn (apply
        // does not panic), so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        path: PathBuf::from("<memory>"),
        detail,
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        self.lock().get(key).map_err(corrupt)
    }

    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.lock().list(prefix).map_err(corrupt)
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<bool, StoreError> {
        validate_txn(compares, ops)?;
        refuse_leases("<memory>", ops)?;
        let mut state = self.lock();
        if !state.compares_hold(compares) {
            return Ok(false);
        }
        if !ops.is_empty() {
            state.apply(ops);
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        "<memory>".to_string()
    }
}
