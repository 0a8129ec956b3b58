//! `aksnet lab netpol` on the whole policy corpus in both models: every verdict of the model
//! is observed with a real connection (pods at their addresses through the real aksnet-cni,
//! the policy applied by the real agent) and equals the author's expectation. Needs root,
//! nft, ip, python3 and the aksnet-cni binary next to aksnet; a missing one fails the test.
//! IPv6 pods are built in the Node Subnet model (21-ipv6.json: IPv6-only pods, an IPv6
//! external, IPv6 ipBlocks with excepts); kubenet's lab is IPv4 only (docs/policy.md).
//! A run killed with SIGKILL leaves its namespaces; `lab netpol --down` removes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use aksnet_testkit::{
    netns_with_prefix, require_root, require_tools, sibling_bin, ChildGuard, CleanupGuard,
};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

fn prerequisites() {
    require_root();
    sibling_bin(BIN, "aksnet-cni");
    require_tools(&[
        ("nft", "nftables"),
        ("ip", "iproute2"),
        ("python3", "python3"),
    ]);
}

/// `lab netpol --down --prefix <prefix>` when the test ends, also when it fails.
fn down_on_drop(prefix: &str) -> CleanupGuard {
    CleanupGuard::new(BIN, &["lab", "netpol", "--down", "--prefix", prefix])
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aksnet-policy/tests/corpus")
}

fn corpus(model: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| model == "nodesubnet" || !p.ends_with("21-ipv6.json"))
        .collect();
    v.sort();
    assert!(v.len() >= 20);
    v
}

fn run_corpus(model: &str, letter: char) {
    prerequisites();
    let prefix = format!("akslb{}{letter}", std::process::id() % 1000);
    let _down = down_on_drop(&prefix);
    let mut failures = Vec::new();
    for f in corpus(model) {
        let out = Command::new(BIN)
            .args(["lab", "netpol"])
            .arg(&f)
            .args(["--model", model, "--prefix", &prefix, "--format", "json"])
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 {
            let mismatches: Vec<String> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["steps"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .flat_map(|s| s["verdicts"].as_array().cloned().unwrap_or_default())
                .filter(|r| r["observed"] != r["allowed"] && r["skipped"].is_null())
                .map(|r| r.to_string())
                .collect();
            failures.push(format!(
                "{} ({model}): exit {code}\n{}\n{}",
                f.display(),
                String::from_utf8_lossy(&out.stderr),
                mismatches.join("\n")
            ));
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for step in v["steps"].as_array().unwrap() {
            for r in step["verdicts"].as_array().unwrap() {
                let ok = if r["skipped"].is_null() {
                    r["observed"] == r["allowed"]
                } else {
                    r["protocol"] == "SCTP"
                };
                if !ok {
                    failures.push(format!(
                        "{} ({model}) step {}: {r}",
                        f.display(),
                        step["name"]
                    ));
                }
            }
        }
        let left = netns_with_prefix(&prefix);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_observed_equals_model_nodesubnet() {
    run_corpus("nodesubnet", 'n');
}

#[test]
fn corpus_observed_equals_model_kubenet() {
    run_corpus("kubenet", 'k');
}

/// SIGKILL mid-run leaves namespaces, listeners and state behind; a new run with the prefix
/// refuses and names `--down`; `--down` removes all of it; a second `--down` finds nothing.
#[test]
fn killed_run_is_cleaned_by_down() {
    prerequisites();
    let prefix = format!("akslb{}d", std::process::id() % 1000);
    let _down = down_on_drop(&prefix);
    let file = corpus_dir().join("e2e-updates.json");
    let mut run = ChildGuard::new(
        "lab netpol",
        Command::new(BIN)
            .args(["lab", "netpol"])
            .arg(&file)
            .args(["--prefix", &prefix])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pod0 = format!("{prefix}p0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let listeners = loop {
        let pids = Command::new("ip")
            .args(["netns", "pids", &pod0])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !pids.is_empty() {
            break pids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lab netpol never started a listener in {pod0}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    let state = format!("/run/{prefix}netpol-{}", run.child.id());
    assert!(
        !netns_with_prefix(&prefix).is_empty(),
        "nothing left to clean?"
    );
    assert!(Path::new(&state).exists(), "{state}");
    let again = Command::new(BIN)
        .args(["lab", "netpol"])
        .arg(&file)
        .args(["--prefix", &prefix])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--down"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let down = Command::new(BIN)
        .args(["lab", "netpol", "--down", "--prefix", &prefix])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        netns_with_prefix(&prefix).is_empty(),
        "{:?}",
        netns_with_prefix(&prefix)
    );
    assert!(!Path::new(&state).exists(), "{state} left");
    for pid in listeners.split_whitespace() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "listener {pid} still runs"
        );
    }
    let twice = Command::new(BIN)
        .args(["lab", "netpol", "--down", "--prefix", &prefix])
        .output()
        .unwrap();
    assert!(twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stdout).contains("removed 0 namespaces"));
}
