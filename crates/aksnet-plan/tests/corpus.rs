//! The real-world corpus (issue 12): public AKS and VNet definitions in every supported
//! format, unchanged, under tests/corpus/ (sources, commits, licences and the figures worked
//! out by hand: tests/corpus/README.md). Each case is planned and its verdict, model,
//! warnings/errors and capacity figures must match the README.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aksnet_plan::{input, plan, PlanOptions};

/// (directory, exit status, model, non-info rules, first two ranges as (cidr, per node,
/// required at maximum, required with surge), cluster total nodes).
type Case = (
    &'static str,
    i32,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, u64, u64, u64)],
    Option<u64>,
);

const fn case(
    dir: &'static str,
    exit: i32,
    model: &'static str,
    rules: &'static [&'static str],
    ranges: &'static [(&'static str, u64, u64, u64)],
    total: Option<u64>,
) -> Case {
    (dir, exit, model, rules, ranges, total)
}

const CASES: &[Case] = &[
    case(
        "arm-aksc-networkforbyo",
        0,
        "no cluster: partial plan",
        &["IN1"],
        &[],
        None,
    ),
    case(
        "arm-quickstart-aks",
        0,
        "kubenet",
        &[],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "bicep-aksc-network",
        0,
        "no cluster: partial plan",
        &["IN1"],
        &[],
        None,
    ),
    case(
        "bicep-baseline-cluster-params",
        0,
        "Azure CNI Overlay",
        &["X2"],
        &[("192.168.0.0/16", 256, 2304, 3328)],
        Some(254),
    ),
    case(
        "bicep-baseline-cluster",
        0,
        "Azure CNI Overlay",
        &["X2"],
        &[("192.168.0.0/16", 256, 2304, 3328)],
        Some(254),
    ),
    case(
        "bicep-baseline-hub",
        0,
        "no cluster: partial plan",
        &[],
        &[("10.200.0.0/26", 1, 0, 0), ("10.200.0.64/27", 1, 0, 0)],
        None,
    ),
    case(
        "bicep-baseline-spoke",
        0,
        "no cluster: partial plan",
        &[],
        &[("10.240.0.0/22", 1, 0, 0), ("10.240.4.0/28", 1, 0, 0)],
        None,
    ),
    case(
        "docs-api-server-vnet-integration",
        0,
        "Azure CNI Node Subnet",
        &["IN1"],
        &[],
        Some(1000),
    ),
    case(
        "docs-azure-cni-overlay",
        0,
        "Azure CNI Overlay",
        &["IN1", "M4"],
        &[
            ("10.224.0.0/16", 1, 6, 9),
            ("192.168.0.0/16", 256, 1536, 2304),
        ],
        Some(256),
    ),
    case(
        "docs-azure-cni-powered-by-cilium",
        0,
        "Azure CNI Overlay",
        &["IN1"],
        &[("192.168.0.0/16", 256, 768, 1024)],
        Some(256),
    ),
    case(
        "docs-configure-azure-cni-dynamic-ip-allocation",
        1,
        "Azure CNI Pod Subnet",
        &["S3"],
        &[("10.240.0.0/16", 1, 2, 3), ("10.242.0.0/16", 1, 2, 3)],
        Some(1000),
    ),
    case(
        "docs-configure-azure-cni-static-block-allocation",
        1,
        "Azure CNI Pod Subnet",
        &["S3"],
        &[("10.240.0.0/16", 1, 2, 3), ("10.242.0.0/16", 1, 2, 3)],
        Some(258),
    ),
    case(
        "docs-configure-azure-cni",
        0,
        "Azure CNI Node Subnet",
        &[],
        &[("10.224.0.0/16", 31, 93, 124)],
        Some(1000),
    ),
    case(
        "docs-configure-dual-stack",
        0,
        "Azure CNI Overlay",
        &[],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "docs-configure-kubenet",
        0,
        "kubenet",
        &[],
        &[
            ("192.168.1.0/24", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(251),
    ),
    case(
        "docs-kafka-infrastructure",
        0,
        "Azure CNI Overlay",
        &["S10"],
        &[
            ("10.31.0.0/21", 1, 9, 11),
            ("10.244.0.0/16", 256, 2304, 2816),
        ],
        Some(256),
    ),
    case(
        "docs-limit-egress-traffic",
        0,
        "Azure CNI Node Subnet",
        &["IN1", "S10"],
        &[],
        Some(1000),
    ),
    case(
        "docs-nat-gateway",
        0,
        "Azure CNI Overlay",
        &["M4"],
        &[("10.244.0.0/16", 256, 1536, 2048)],
        Some(256),
    ),
    case(
        "docs-network-isolated",
        0,
        "Azure CNI Node Subnet",
        &[],
        &[],
        Some(1000),
    ),
    case(
        "docs-node-auto-provisioning-custom-vnet",
        0,
        "Azure CNI Overlay",
        &["IN1"],
        &[("10.244.0.0/16", 256, 768, 1024)],
        Some(256),
    ),
    case(
        "docs-node-pool-unique-subnet",
        0,
        "no cluster: partial plan",
        &["IN1"],
        &[],
        None,
    ),
    case(
        "docs-private-clusters",
        0,
        "Azure CNI Overlay",
        &[],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "docs-use-byo-cni",
        0,
        "BYO CNI (none)",
        &[],
        &[("10.224.0.0/16", 1, 3, 4)],
        Some(1000),
    ),
    case(
        "docs-use-network-policies",
        0,
        "Azure CNI Node Subnet",
        &[],
        &[("10.224.0.0/16", 31, 31, 62)],
        Some(1000),
    ),
    case(
        "docs-virtual-nodes-cli",
        1,
        "Azure CNI Node Subnet",
        &["IN1", "S3"],
        &[],
        Some(1000),
    ),
    case(
        "rest-agentpool-spot",
        0,
        "no cluster: partial plan",
        &[],
        &[],
        None,
    ),
    case(
        "rest-managedclusters-dualstack",
        1,
        "kubenet",
        &["O2", "V5"],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "rest-managedclusters-get",
        0,
        "kubenet",
        &[],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "tf-aks-api_server_vnet_integration",
        0,
        "Azure CNI Node Subnet",
        &["S10"],
        &[("10.52.0.0/24", 31, 62, 93)],
        Some(8),
    ),
    case(
        "tf-aks-application_gateway_ingress",
        0,
        "Azure CNI Node Subnet",
        &["U4"],
        &[("10.52.0.0/24", 101, 202, 303)],
        Some(2),
    ),
    case(
        "tf-aks-local_dns_config",
        0,
        "Azure CNI Node Subnet",
        &["U4"],
        &[("10.52.0.0/24", 101, 202, 303)],
        Some(2),
    ),
    case(
        "tf-aks-multiple_node_pools",
        0,
        "kubenet",
        &["S10"],
        &[("10.52.0.0/24", 1, 2, 3), ("10.244.0.0/16", 256, 512, 768)],
        Some(251),
    ),
    case(
        "tf-aks-named_cluster",
        0,
        "kubenet",
        &["S10"],
        &[("10.1.0.0/16", 256, 512, 768)],
        Some(256),
    ),
    case(
        "tf-aks-startup",
        0,
        "Azure CNI Node Subnet",
        &["U4"],
        &[("10.52.0.0/24", 101, 202, 303)],
        Some(2),
    ),
    case(
        "tf-aks-uai_and_assign_role_on_subnet",
        0,
        "kubenet",
        &[],
        &[
            ("192.168.0.0/24", 1, 2, 3),
            ("10.244.0.0/16", 256, 512, 768),
        ],
        Some(251),
    ),
    case(
        "tf-aks-with_acr",
        0,
        "Azure CNI Node Subnet",
        &["S10"],
        &[("10.52.0.0/24", 31, 62, 93)],
        Some(8),
    ),
    case(
        "tf-aks-without_monitor",
        0,
        "kubenet",
        &["S10"],
        &[("10.1.0.0/16", 256, 512, 768)],
        Some(256),
    ),
    case(
        "tf-avm-automatic",
        0,
        "Azure CNI Overlay",
        &[],
        &[
            ("10.224.0.0/16", 1, 3, 4),
            ("10.244.0.0/16", 256, 768, 1024),
        ],
        Some(256),
    ),
    case(
        "tf-avm-default",
        0,
        "kubenet",
        &[],
        &[("10.224.0.0/16", 1, 1, 2), ("10.244.0.0/16", 256, 256, 512)],
        Some(256),
    ),
    case(
        "tf-lza-aks-cluster",
        0,
        "Azure CNI Overlay",
        &["IN1"],
        &[
            ("10.224.0.0/16", 1, 6, 8),
            ("10.244.0.0/16", 256, 1536, 2048),
        ],
        Some(256),
    ),
    case(
        "tf-lza-network-hub",
        0,
        "no cluster: partial plan",
        &[],
        &[("10.0.0.0/24", 1, 0, 0), ("10.0.1.0/26", 1, 0, 0)],
        None,
    ),
    case(
        "tf-lza-network-lz",
        0,
        "no cluster: partial plan",
        &[],
        &[("10.1.0.0/24", 1, 0, 0), ("10.1.1.0/26", 1, 0, 0)],
        None,
    ),
];

fn files(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_has_at_least_30_cases_and_every_directory_is_checked() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let dirs: BTreeSet<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "licenses")
        .collect();
    let cased: BTreeSet<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(dirs, cased);
}

#[test]
fn every_corpus_case_plans_as_worked_out_by_hand() {
    let mut failures = Vec::new();
    for &(dir, exit, model, rules, ranges, total) in CASES {
        let i = match input::load_files(&files(dir)) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{dir}: unusable: {e}"));
                continue;
            }
        };
        let r = plan(&i, &PlanOptions::default());
        let got_exit = i32::from(r.has_errors());
        let got_rules: BTreeSet<&str> = r
            .findings
            .iter()
            .filter(|f| f.severity != aksnet_plan::Severity::Info)
            .map(|f| f.rule.as_str())
            .collect();
        let want_rules: BTreeSet<&str> = rules.iter().copied().collect();
        let got_ranges: Vec<(String, u64, u64, u64)> = r
            .capacity
            .iter()
            .take(2)
            .map(|c| {
                (
                    c.cidr.clone(),
                    c.per_node,
                    c.required,
                    c.required_with_surge,
                )
            })
            .collect();
        let want_ranges: Vec<(String, u64, u64, u64)> = ranges
            .iter()
            .map(|&(c, a, b, d)| (c.to_string(), a, b, d))
            .collect();
        if got_exit != exit
            || r.model != model
            || got_rules != want_rules
            || got_ranges != want_ranges
            || r.cluster.max_nodes_total != total
        {
            failures.push(format!(
                "{dir}: got exit {got_exit}, model {:?}, rules {got_rules:?}, ranges {got_ranges:?}, total {:?}",
                r.model, r.cluster.max_nodes_total
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
