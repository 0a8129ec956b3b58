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
    // What if the kubenet legacy-doc cluster were Node Subnet: 110 + 1 addresses per node, and its
    // 3 nodes need 333 of the /24's 251 (the rancher#20784 figure).
    let (code, out, _) = aksnet(
        &["--format", "json", "--plugin", "azure", "--mode", "none"],
        &["kubenet-legacy-doc.yaml"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Pre-allocated IPs 333 exceeds IPs available 251"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"], "Azure CNI Node Subnet");
    assert_eq!(v["capacity"][0]["per_node"], 111);
    assert_eq!(v["capacity"][0]["max_nodes"], 2);
    let (code, out, _) = aksnet(
        &["--format", "json", "--migrate-to", "overlay"],
        &["nodesubnet-legacy-doc.yaml"],
    );
    assert_eq!(code, 1);
    assert!(out.contains("\"MG4\""));
    let (_, out, _) = aksnet(&["--growth", "2/month"], &["kubenet-legacy-doc.yaml"]);
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
        vec!["nodesubnet-legacy-doc.yaml"],
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

/// Issue 12: a VNet alone is planned without an invented cluster (no service CIDR nobody
/// chose, no "no System pool"), with each subnet's capacity and a note on what is missing.
#[test]
fn vnet_alone_is_a_partial_plan() {
    let (code, out, err) = aksnet(&["--format", "json"], &["vnet-show.json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partial"], true);
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"IN2"), "{rules:?}");
    for r in ["S2", "S3", "S10", "C6"] {
        assert!(!rules.contains(&r), "{r} on a VNet alone: {rules:?}");
    }
    assert!(!v["capacity"].as_array().unwrap().is_empty());
}

/// Hostile input (issue 10 items 6 and 7): deep nesting is refused with a depth-limit error
/// naming file and line, never a stack overflow; huge files and non-regular files (FIFO,
/// device, directory) are refused before they are read. Every case expects exit status 2.
mod adversarial {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("aksh2-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `aksnet plan FILE...`; returns (exit code, stderr). A signal (stack overflow abort)
    /// gives code -1.
    fn plan(files: &[&Path]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_aksnet"))
            .arg("plan")
            .args(files)
            .stdin(Stdio::null())
            .output()
            .expect("run aksnet");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn assert_depth_refused(path: &Path, line: usize) {
        let (code, err) = plan(&[path]);
        assert_eq!(code, 2, "expected exit 2 (refused), got {code}: {err}");
        let name = path.display().to_string();
        assert!(err.contains(&name), "error does not name the file: {err}");
        assert!(
            err.contains(&format!(":{line}:")),
            "error does not name line {line}: {err}"
        );
        assert!(
            err.contains("nesting") && err.contains("limit"),
            "error does not name the depth limit: {err}"
        );
    }

    fn tf_cluster_with(attr_value: &str) -> String {
        format!(
            "resource \"azurerm_kubernetes_cluster\" \"c\" {{\n  name = \"c\"\n  x = {attr_value}\n}}\n"
        )
    }

    #[test]
    fn terraform_deep_brackets_are_refused() {
        let d = TempDir::new("tfbrackets");
        for (open, close) in [("[", "]"), ("(", ")"), ("{", "}")] {
            let v = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
            let p = d.file("main.tf", &tf_cluster_with(&v));
            assert_depth_refused(&p, 3);
        }
    }

    #[test]
    fn terraform_deep_blocks_are_refused() {
        let d = TempDir::new("tfblocks");
        let mut s = String::from("resource \"azurerm_virtual_network\" \"v\" {\n");
        s.push_str(&"a {\n".repeat(20_000));
        s.push_str(&"}\n".repeat(20_001));
        let p = d.file("main.tf", &s);
        // The limit is crossed on a line near the top; the message names it.
        let (code, err) = plan(&[&p]);
        assert_eq!(code, 2, "expected exit 2, got {code}: {err}");
        assert!(err.contains("nesting") && err.contains("limit"), "{err}");
    }

    #[test]
    fn terraform_deep_interpolation_is_refused() {
        let d = TempDir::new("tfinterp");
        let v = format!("\"{}x{}\"", "${\"".repeat(5_000), "\"}".repeat(5_000));
        let p = d.file("main.tf", &tf_cluster_with(&v));
        let (code, err) = plan(&[&p]);
        assert_eq!(code, 2, "expected exit 2, got {code}: {err}");
        assert!(err.contains("nesting") && err.contains("limit"), "{err}");
    }

    #[test]
    fn arm_deep_expression_is_refused() {
        let d = TempDir::new("armexpr");
        let e = format!(
            "[{}'10.0.0.0/16'{}]",
            "concat(".repeat(20_000),
            ")".repeat(20_000)
        );
        let t = serde_json::json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "resources": [{
                "type": "Microsoft.Network/virtualNetworks",
                "apiVersion": "2023-09-01",
                "name": "v",
                "properties": {"addressSpace": {"addressPrefixes": [e]}}
            }]
        });
        let p = d.file("t.json", &serde_json::to_string(&t).unwrap());
        let (code, err) = plan(&[&p]);
        assert_eq!(code, 2, "expected exit 2, got {code}: {err}");
        assert!(err.contains("nesting") && err.contains("limit"), "{err}");
        assert!(err.contains("t.json"), "{err}");
    }

    #[test]
    fn deep_json_and_yaml_are_refused() {
        let d = TempDir::new("deepdoc");
        let j = d.file(
            "deep.json",
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        );
        let (code, err) = plan(&[&j]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("deep.json"), "{err}");
        let y = d.file(
            "deep.yaml",
            &format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        );
        let (code, err) = plan(&[&y]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("deep.yaml"), "{err}");
    }

    #[test]
    fn dev_zero_and_other_non_regular_files_are_refused() {
        for dev in ["/dev/zero", "/dev/null"] {
            let (code, err) = plan(&[Path::new(dev)]);
            assert_eq!(code, 2, "{dev}: {err}");
            assert!(
                err.contains(dev) && err.contains("not a regular file"),
                "{err}"
            );
        }
        let d = TempDir::new("nonreg");
        let (code, err) = plan(&[&d.0]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        let fifo = d.0.join("fifo");
        let st = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) is needed");
        assert!(st.success(), "mkfifo failed");
        let (code, err) = plan(&[&fifo]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let d = TempDir::new("big");
        let p = d.0.join("big.json");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(17 * 1024 * 1024).unwrap(); // sparse: no disk used
        let (code, err) = plan(&[&p]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("big.json") && err.contains("16 MiB"), "{err}");
    }

    #[test]
    fn bicep_deep_nesting_is_refused() {
        let d = TempDir::new("bicepdeep");
        let v = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let p = d.file("main.bicep", &format!("param a int = 1\nvar x = {v}\n"));
        assert_depth_refused(&p, 2);
    }

    #[test]
    fn unsupported_format_says_so_and_lists_the_supported() {
        let d = TempDir::new("unsupported");
        let p = d.file(
            "deploy.ps1",
            "New-AzAksCluster -Name x -NodeCount 3 `\n  -NetworkPlugin azure: [\n",
        );
        let (code, err) = plan(&[&p]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("format not supported"), "{err}");
        assert!(
            err.contains("Bicep") && err.contains("az CLI scripts"),
            "{err}"
        );
        // Text that parses as a YAML string is still another format, not "unknown keys".
        for (name, text, what) in [
            ("one.ps1", "Write-Host hi\n", "PowerShell"),
            ("net.hcl", "resource \"x\" {}\n", "HCL outside Terraform"),
        ] {
            let p = d.file(name, text);
            let (code, err) = plan(&[&p]);
            assert_eq!(code, 2, "{err}");
            assert!(
                err.contains(name) && err.contains("format not supported") && err.contains(what),
                "{err}"
            );
        }
    }

    #[test]
    fn script_deep_substitution_is_refused() {
        let d = TempDir::new("shdeep");
        let v = format!("{}x{}", "$(".repeat(20_000), ")".repeat(20_000));
        let p = d.file("deploy.sh", &format!("A=1\nX={v}\n"));
        assert_depth_refused(&p, 2);
        let md = d.file("doc.md", &format!("# t\n\n```bash\nX={v}\n```\n"));
        assert_depth_refused(&md, 4);
    }
}
