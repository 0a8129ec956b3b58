//! Shared helpers for the privileged tests: a named netns per test, removed
//! on drop (even when the test fails), and `ip`/`ping` runners.
#![allow(dead_code)]

use aksnet_netlink::{Handle, Netns};

/// A fresh named netns `aksnt-<tag>-<pid>`, deleted on drop. Every link a
/// test creates lives in such namespaces, so deleting them cleans up.
pub struct TestNetns {
    pub name: String,
    pub netns: Netns,
    // Declared last: dropped after `netns` is closed.
    guard: aksnet_testkit::Netns,
}

impl TestNetns {
    pub fn new(tag: &str) -> Self {
        let name = format!("aksnt-{tag}-{}", std::process::id());
        let guard = aksnet_testkit::Netns::create(&name);
        let netns =
            Netns::open(guard.path()).unwrap_or_else(|e| panic!("opening test netns {name}: {e}"));
        Self { name, netns, guard }
    }

    pub fn handle(&self) -> Handle {
        Handle::in_netns(&self.netns).expect("handle in test netns")
    }

    /// Runs `ip -n <ns> <args>` and returns stdout; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        self.guard.ip(args)
    }

    /// One ping from inside, waiting up to 2 s (the machine may be loaded): true when answered.
    pub fn ping(&self, addr: &str) -> bool {
        self.guard.ping(addr, 2)
    }
}
