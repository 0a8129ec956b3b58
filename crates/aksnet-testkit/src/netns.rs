//! Named network namespaces (`/run/netns/<name>`, as `ip netns` makes them),
//! deleted on drop even when the test fails.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::cmd::ok;

/// A named netns, created fresh and deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name`, first deleting a leftover of a crashed run with the same
    /// name. Every name a test creates carries an `aks` prefix (nothing else on
    /// the machine is touched) and fits IFNAMSIZ when used for links too.
    #[track_caller]
    pub fn create(name: &str) -> Self {
        assert!(
            name.starts_with("aks"),
            "test namespace {name:?} must carry an aks… prefix"
        );
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ok(&["ip", "netns", "add", name]);
        Netns {
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path a runtime passes as `CNI_NETNS`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs `argv` inside the namespace.
    #[track_caller]
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {argv:?}: {e}", self.name))
    }

    /// Runs `argv` inside the namespace: (success, stdout then stderr).
    #[track_caller]
    pub fn try_exec(&self, argv: &[&str]) -> (bool, String) {
        let o = self.exec(argv);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    }

    /// Runs `argv` inside the namespace, which must succeed; returns stdout.
    #[track_caller]
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let o = self.exec(argv);
        assert!(
            o.status.success(),
            "in netns {}: {argv:?} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ip -n <name> <args>`, which must succeed; returns stdout.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> String {
        let mut argv = vec!["ip", "-n", &self.name];
        argv.extend_from_slice(args);
        ok(&argv)
    }

    /// One ping of `addr` from inside, waiting up to `wait_s` seconds: true when answered.
    pub fn ping(&self, addr: &str, wait_s: u32) -> bool {
        let w = wait_s.to_string();
        self.exec(&["ping", "-c", "1", "-W", &w, addr])
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cleanup: ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cleanup: ip netns del {}: {e}", self.name),
        }
    }
}
