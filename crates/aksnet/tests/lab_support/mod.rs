//! Shared by the lab tests (`lab.rs`, `lab_l2.rs`): a lab under a test's own
//! prefix on aksnet-testkit (`lab down` on drop), each model's documented
//! matrix and the assertion that a `lab check --format json` report matches it.
//! The expected matrices are written here from the AKS documentation, not
//! derived from a run.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use aksnet_testkit::{require_root, require_tools, run, sibling_bin, CleanupGuard, Netns, Run};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

/// Where `aksnet` and `aksnet-cni` were built; the lab runs them from there.
pub fn bin_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .expect("binary directory")
        .to_path_buf()
}

/// Fails (never skips) when a prerequisite is missing.
pub fn prerequisites() {
    require_root();
    sibling_bin(BIN, "aksnet-cni");
    require_tools(&[("nft", "nftables"), ("ip", "iproute2")]);
}

/// `aksnet <args>`, finding its sibling binaries through `AKSNET_BIN_DIR`.
pub fn aksnet(args: &[&str]) -> Run {
    run(Command::new(BIN)
        .args(args)
        .env("AKSNET_BIN_DIR", bin_dir()))
}

/// A lab under a test-unique prefix; `lab down` on drop, also when the test
/// fails, after removing the namespaces the test added itself.
pub struct LabGuard {
    pub prefix: String,
    /// Namespaces the test adds (a new node and its pods): `lab down` removes
    /// only what its journal names. Declared before `down`, so dropped first.
    extra: RefCell<Vec<Netns>>,
    down: CleanupGuard,
}

impl LabGuard {
    pub fn new(prefix: &str) -> Self {
        prerequisites();
        let down = CleanupGuard::new(BIN, &["lab", "down", "--prefix", prefix])
            .env("AKSNET_BIN_DIR", bin_dir());
        // A previous run killed before its guard ran.
        let _ = down.run_now();
        Self {
            prefix: prefix.to_string(),
            extra: RefCell::new(Vec::new()),
            down,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/{}lab", self.prefix))
    }

    /// The lab's name for `name` (a namespace, a node).
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A namespace the test adds to the lab; the guard removes it.
    pub fn add_netns(&self, name: &str) {
        self.extra.borrow_mut().push(Netns::create(name));
    }

    pub fn up(&self, extra: &[&str]) -> Run {
        let mut args = vec!["lab", "up", "--prefix", &self.prefix];
        args.extend_from_slice(extra);
        aksnet(&args)
    }

    pub fn check_json(&self) -> (Run, Value) {
        let r = aksnet(&["lab", "check", "--prefix", &self.prefix, "--format", "json"]);
        let v = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("check JSON: {e}: {}\n{}", r.stdout, r.stderr));
        (r, v)
    }

    /// `lab up` with `extra` flags, which must succeed.
    #[track_caller]
    pub fn up_ok(&self, extra: &[&str]) -> Run {
        let up = self.up(extra);
        assert_eq!(up.code, Some(0), "up: {}{}", up.stdout, up.stderr);
        up
    }

    /// `lab check`, which must pass with the documented matrix `expected`; the report.
    #[track_caller]
    pub fn check_matches(&self, expected: &[(&str, &str)]) -> Value {
        let (r, report) = self.check_json();
        assert_eq!(r.code, Some(0), "check: {}{}", r.stdout, r.stderr);
        assert_matrix(&report, expected);
        report
    }

    pub fn down(&self) -> Run {
        self.down.run_now()
    }

    /// `lab down`, which must succeed and leave no namespace and no state behind.
    #[track_caller]
    pub fn down_clean(&self) {
        let d = self.down();
        assert_eq!(d.code, Some(0), "down: {}{}", d.stdout, d.stderr);
        self.assert_gone();
    }

    /// The lab's journal: one entry per thing `lab up` made (`kind` node, pod, ...).
    pub fn journal(&self) -> Vec<Value> {
        let path = self.state_dir().join("journal.jsonl");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        text.lines()
            .map(|l| serde_json::from_str(l).expect("journal line"))
            .collect()
    }

    pub fn assert_gone(&self) {
        assert_eq!(
            aksnet_testkit::netns_with_prefix(&self.prefix),
            Vec::<String>::new(),
            "namespaces left behind"
        );
        assert!(
            !self.state_dir().exists(),
            "state dir {} left behind",
            self.state_dir().display()
        );
    }
}

/// Node Subnet, per docs/azure.md#source-addresses: "Systems in the same virtual network as the AKS
/// cluster see the pod IP as the source address for any traffic from the
/// pod. Systems outside the AKS cluster virtual network see the node IP";
/// "every pod gets an IP address from the subnet and can be accessed
/// directly"; a peered VNet is outside the VNet (Azure/AKS#1207: by default
/// nonMasqueradeCIDRs holds only the VNet).
pub const NODESUBNET_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "pod"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "vm"),
];

/// kubenet, per AKS's kubenet page and docs/azure.md#kubenet-snat, #kubenet-routes: pods
/// keep their IP only towards other pods (the pod CIDR is the only
/// non-masquerade range) and cross nodes by the route table; everything else
/// sees the node IP; pods "can't be reached directly": the route table is
/// associated with the node subnet only, so a VM in another subnet has no
/// route to a pod CIDR.
pub const KUBENET_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "node"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "unreachable"),
];

/// Pod Subnet, per the Legacy CNI article's FAQ (docs/models.md#pod-subnet): the pod IP is
/// the source address inside and outside the VNet, and pods are directly reachable
/// from the VNet; the exception AKS makes, traffic to Azure DNS (168.63.129.16)
/// masqueraded to the node IP (docs/azure.md#snat-defaults-per-mode), has its own row.
pub const PODSUBNET_EXPECTED: [(&str, &str); 7] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "pod"),
    ("pod-peer", "pod"),
    ("pod-onprem", "pod"),
    ("pod-azuredns", "node"),
    ("vm-pod", "vm"),
];

/// Overlay, per the Overlay article (docs/models.md#overlay): pods reach each other
/// across nodes with their own IPs; all traffic leaving the pod CIDR is SNATed
/// to the node IP; the VNet cannot reach pods directly.
pub const OVERLAY_EXPECTED: [(&str, &str); 6] = [
    ("pod-pod-same-node", "pod"),
    ("pod-pod-across-nodes", "pod"),
    ("pod-vm", "node"),
    ("pod-peer", "node"),
    ("pod-onprem", "node"),
    ("vm-pod", "unreachable"),
];

/// Each row's path and whose address its target saw.
pub fn observed(report: &Value) -> Vec<(String, String)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap_or_default().to_string(),
                r["seenAs"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The report's matrix is `expected`, row for row.
pub fn assert_matrix(report: &Value, expected: &[(&str, &str)]) {
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    assert_eq!(
        observed(report),
        want,
        "observed matrix differs from the documented one:\n{report:#}"
    );
}
