//! `aksnet plan` end to end: exit status 0/1/2, the JSON shape, SARIF, colour only on demand.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../aksnet-plan/tests/fixtures")
        .join(name)
}

fn aksnet(args: &[&str], files: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aksnet"));
    cmd.arg("plan")
        .args(args)
        .args(files.iter().map(|f| fixture(f)));
    let out = cmd.output().expect("run aksnet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn exit_0_without_errors_and_json_shape() {
    let (code, out, _) = aksnet(&["--format", "json"], &["docs-50-nodes.yaml"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for f in v["findings"].as_array().unwrap() {
        for k in ["rule", "severity", "code", "message", "field"] {
            assert!(f.get(k).is_some(), "finding lacks {k}: {f}");
        }
    }
    let c = &v["capacity"][0];
    for k in [
        "name",
        "cidr",
        "usable",
        "required",
        "required_with_surge",
        "free",
        "max_nodes",
    ] {
        assert!(c.get(k).is_some(), "capacity lacks {k}");
    }
    assert_eq!(c["required_with_surge"], 1581);
    assert_eq!(c["smallest_prefix"], 21);
    assert!(v["defaults_applied"].is_array());
}

#[test]
fn exit_1_with_errors_and_code_null_or_control_plane() {
    let (code, out, _) = aksnet(&["--format", "json"], &["overlay-broken.yaml"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let find = |rule: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .cloned()
    };
    assert_eq!(find("D1").unwrap()["code"], "DnsServiceIpOutOfServiceCidr");
    assert_eq!(
        find("S2").unwrap()["code"],
        "ServiceCidrOverlapExistingSubnetsCidr"
    );
    assert_eq!(find("P3a").unwrap()["code"], serde_json::Value::Null);
    assert!(v["defaults_applied"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["field"] == "agentPoolProfiles[system].maxPods" && d["value"] == "250"));
}

#[test]
fn exit_2_on_unusable_input_with_file_and_key() {
    let (code, out, err) = aksnet(&[], &["bad/unknown-key.yaml"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("unknown-key.yaml: cluster.pools[0].maxpod: unknown key"),
        "{err}"
    );
    let (code, _, err) = aksnet(&[], &["bad/invalid.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid.json:3:42"), "{err}");
    let (code, _, err) = aksnet(&["--on-prem", "10.0.0.0/33"], &["docs-50-nodes.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("--on-prem: '10.0.0.0/33'"), "{err}");
    let (code, _, err) = aksnet(&["--growth", "fast"], &["docs-50-nodes.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("--growth"), "{err}");
    let (code, _, _) = aksnet(
        &["--migrate-to", "overlay", "--plugin", "azure"],
        &["docs-50-nodes.yaml"],
    );
    assert_eq!(code, 2);
}

#[test]
fn on_prem_and_peer_flags_are_checked() {
    let (code, out, _) = aksnet(
        &[
            "--format",
            "json",
            "--on-prem",
            "10.200.0.0/16",
            "--peer",
            "172.16.0.0/12",
        ],
        &["docs-50-nodes.yaml"],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(rules.contains(&"S4"), "{rules:?}");
}

#[test]
fn what_if_and_migration_and_growth() {
    // What if the kubenet-seed.yaml cluster were Node Subnet: 110 + 1 addresses per node, and its
    // 3 nodes need 333 of the /24's 251 (the rancher#20784 figure).
    let (code, out, _) = aksnet(
        &["--format", "json", "--plugin", "azure", "--mode", "none"],
        &["kubenet-seed.yaml"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Pre-allocated IPs 333 exceeds IPs available 251"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"], "Azure CNI Node Subnet");
    assert_eq!(v["capacity"][0]["per_node"], 111);
    assert_eq!(v["capacity"][0]["max_nodes"], 2);
    let (code, out, _) = aksnet(
        &["--format", "json", "--migrate-to", "overlay"],
        &["nodesubnet-seed.yaml"],
    );
    assert_eq!(code, 1);
    assert!(out.contains("\"MG4\""));
    let (_, out, _) = aksnet(&["--growth", "2/month"], &["kubenet-seed.yaml"]);
    assert!(out.contains("runs out after 123.5 months"), "{out}");
}

#[test]
fn sarif_output() {
    let (code, out, _) = aksnet(&["--format", "sarif"], &["overlay-broken.yaml"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert!(run["tool"]["driver"]["rules"].as_array().unwrap().len() > 60);
    let res = run["results"].as_array().unwrap();
    assert!(res
        .iter()
        .any(|r| r["ruleId"] == "D1" && r["level"] == "error"));
    assert!(res.iter().all(
        |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("overlay-broken.yaml")
    ));
}

#[test]
fn human_report_has_colour_only_when_asked() {
    let (_, plain, _) = aksnet(&[], &["overlay-broken.yaml"]);
    assert!(!plain.contains('\x1b'), "no terminal, no colour");
    assert!(
        plain.contains("Findings:")
            && plain.contains("Capacity")
            && plain.contains("Defaults applied:")
    );
    let (_, coloured, _) = aksnet(&["--color", "always"], &["overlay-broken.yaml"]);
    assert!(coloured.contains("\x1b[1;31m"));
}

#[test]
fn every_input_format_plans() {
    for files in [
        vec!["nodesubnet-seed.yaml"],
        vec!["aks-show-kubenet.json", "vnet-show.json"],
        vec![
            "arm-get-nodesubnet.json",
            "vnet-get-prod.json",
            "nodepool-show.json",
        ],
        vec!["rest-example-overlay.json"],
        vec!["arm-template.json", "arm-template.parameters.json"],
        vec!["main.tf", "variables.tf"],
    ] {
        let (code, out, err) = aksnet(&["--format", "json"], &files);
        assert!(code == 0 || code == 1, "{files:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(!v["capacity"].as_array().unwrap().is_empty(), "{files:?}");
    }
}
