//! Links a test creates in this (the host's) namespace, deleted on drop: a
//! link in a namespace of its own goes with the namespace (`Netns`), but a
//! host link (a runtime's bridge, which no plugin deletes) needs a guard.

use std::process::Command;

use crate::cmd::run_quiet;

/// True when a link named `name` exists in this namespace.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Deletes the host link it names on drop, if it exists then.
#[derive(Debug)]
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if link_exists(&self.0) {
            run_quiet(Command::new("ip").args(["link", "del", &self.0]));
        }
    }
}
