//! Test support shared by the privileged tests of every aksnet crate: named
//! network namespaces and host links removed on drop, commands that must succeed, a CNI plugin
//! invoked the way a runtime invokes it, and child processes killed on drop;
//! commands' whole results, required tools and sibling binaries, commands in
//! namespaces the test did not create, and a cleanup command run on drop.
//!
//! A dev-dependency only: it panics with a message that says what failed and
//! what is missing, which is how a test reports, so `unwrap_used` is allowed
//! here and nowhere on a runtime path. It depends on no aksnet crate, so any
//! crate's tests can use it and it never tests the code it is built from.
#![allow(clippy::unwrap_used)]

pub mod cleanup;
pub mod cmd;
pub mod cni;
pub mod link;
pub mod named_netns;
pub mod netns;
pub mod process;
pub mod run;

pub use cleanup::CleanupGuard;
pub use cmd::{eventually, eventually_within, ok, require_root, run_ok, run_quiet, sh, tag};
pub use cni::{CniCall, Outcome};
pub use link::{link_exists, LinkGuard};
pub use named_netns::{exec_in, ip_in, netns_with_prefix, ping_from};
pub use netns::Netns;
pub use process::ChildGuard;
pub use run::{require_tools, run, sibling_bin, Run};
