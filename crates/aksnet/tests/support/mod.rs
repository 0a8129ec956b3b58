//! Shared by the agent's privileged tests: the built binaries and commands that
//! must succeed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use aksnet_testkit::{CniCall, Outcome};

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

pub use aksnet_testkit::{ok, sh};

/// Runs the real `aksnet-cni` in `node_ns` as a runtime does: `command` for
/// container `id`, whose netns is `pod_ns`, with `conf` on stdin.
pub fn run_cni(
    node_ns: &str,
    command: &str,
    id: &str,
    pod_ns: &str,
    conf: &serde_json::Value,
) -> Outcome {
    let bin = cni_bin();
    CniCall::new(&bin)
        .in_netns(Some(node_ns))
        .verb(command, id, &format!("/var/run/netns/{pod_ns}"), "")
        .run(&conf.to_string())
}
