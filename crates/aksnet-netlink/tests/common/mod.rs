//! Shared helpers for the privileged tests: a named netns per test, removed
//! on drop (even when the test fails), and `ip`/`ping` runners.
#![allow(dead_code)]

use std::process::Command;

use aksnet_netlink::{create_named_netns, delete_named_netns, Handle, Netns};

/// A fresh named netns `aksnt-<tag>-<pid>`, deleted on drop. Every link a
/// test creates lives in such namespaces, so deleting them cleans up.
pub struct TestNetns {
    pub name: String,
    pub netns: Netns,
}

impl TestNetns {
    pub fn new(tag: &str) -> Self {
        let name = format!("aksnt-{tag}-{}", std::process::id());
        // A leftover from a crashed earlier run with the same pid.
        let _ = delete_named_netns(&name);
        let netns = create_named_netns(&name).unwrap_or_else(|e| {
            panic!("creating test netns {name} (needs root and /run writable): {e}")
        });
        Self { name, netns }
    }

    pub fn handle(&self) -> Handle {
        Handle::in_netns(&self.netns).expect("handle in test netns")
    }

    /// Runs `ip -n <ns> <args>` and returns stdout; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("ip (iproute2) must be installed");
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip netns exec <ns> ping -c1 -W1 <addr>`: true when a reply came.
    pub fn ping(&self, addr: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "ping", "-c1", "-W1", addr])
            .output()
            .expect("ip and ping (iputils) must be installed")
            .status
            .success()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if let Err(e) = delete_named_netns(&self.name) {
            eprintln!("cleanup: deleting netns {}: {e}", self.name);
        }
    }
}
