//! Shared by the agent's privileged tests: the built binaries and commands that
//! must succeed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// Runs the real `aksnet-cni` in `node_ns` as a runtime does: `command` for
/// container `id`, whose netns is `pod_ns`, with `conf` on stdin.
pub fn run_cni(
    node_ns: &str,
    command: &str,
    id: &str,
    pod_ns: &str,
    conf: &serde_json::Value,
) -> Output {
    let bin = cni_bin();
    let mut child = Command::new("ip")
        .args(["netns", "exec", node_ns])
        .arg(&bin)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("AKSNET_CNI_LOG_FILE", "")
        .env("CNI_PATH", bin.parent().unwrap())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", format!("/var/run/netns/{pod_ns}"))
        .env("CNI_IFNAME", "eth0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aksnet-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
