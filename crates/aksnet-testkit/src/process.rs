//! Child processes a test starts (daemons: containerd, etcd, the agent),
//! killed and reaped on drop so a failing test leaves none behind.

use std::process::Child;

/// Kills (SIGKILL) and reaps the child on drop.
#[derive(Debug)]
pub struct ChildGuard {
    pub child: Child,
    what: String,
}

impl ChildGuard {
    pub fn new(what: &str, child: Child) -> Self {
        ChildGuard {
            child,
            what: what.to_string(),
        }
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.running() {
            if let Err(e) = self.child.kill() {
                eprintln!("cleanup: kill {}: {e}", self.what);
            }
        }
        let _ = self.child.wait();
    }
}
