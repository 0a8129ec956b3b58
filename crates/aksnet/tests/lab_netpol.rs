//! `aksnet lab netpol` on the whole policy corpus in both models: every verdict of the model
//! is observed with a real connection (pods at their addresses through the real aksnet-cni,
//! the policy applied by the real agent) and equals the author's expectation. Needs root,
//! nft, ip, python3 and the aksnet-cni binary next to aksnet; a missing one fails the test.
//! The IPv6 file is model-only: lab netpol builds IPv4 pods (docs/policy.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

fn prerequisites() {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    assert!(
        root,
        "lab netpol creates network namespaces: run as root (scripts/test.sh)"
    );
    let cni = Path::new(BIN).parent().unwrap().join("aksnet-cni");
    assert!(
        cni.is_file(),
        "{} is missing: cargo build -p aksnet-cni",
        cni.display()
    );
    for (tool, pkg) in [
        ("nft", "nftables"),
        ("ip", "iproute2"),
        ("python3", "python3"),
    ] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok()
                || Command::new(tool).arg("-V").output().is_ok(),
            "{tool} (Debian {pkg}) is missing: bash scripts/install-deps.sh"
        );
    }
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aksnet-policy/tests/corpus");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("21-ipv6.json"))
        .collect();
    v.sort();
    assert!(v.len() >= 20);
    v
}

fn run_corpus(model: &str, letter: char) {
    prerequisites();
    let prefix = format!("aksh4{}{letter}", std::process::id() % 1000);
    let mut failures = Vec::new();
    for f in corpus() {
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
        let left: Vec<String> = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_string)
        .collect();
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
