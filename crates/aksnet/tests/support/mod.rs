//! Shared by the agent's privileged tests: the built binaries and commands that
//! must succeed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

/// The `aksnet-cni` built next to `aksnet`.
pub fn cni_bin() -> PathBuf {
    let p = Path::new(BIN).parent().unwrap().join("aksnet-cni");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p aksnet-cni` first",
        p.display()
    );
    p
}

/// Runs a command, panicking if it cannot start.
pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e} (is it installed?)"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
