//! The NetworkPolicy loop's reconcile metrics (issue 14, item 3: reconcile durations and
//! errors): `run_policy_loop_observed` over a manifest directory, each reconcile handed to
//! `Metrics::observe_policy`; outcomes and errors by kind as `/metrics` renders them. The
//! nft side is a recording backend that can be told to fail (what nft itself does is the
//! subject of tests/policy.rs).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aksnet_agent::metrics::{Metrics, Scrape};
use aksnet_agent::policy_controller::{
    run_policy_loop_observed, PolicyController, PolicySettings, ScriptBackend,
};
use aksnet_agent::policy_source::ManifestDir;
use aksnet_nft::NftError;

#[derive(Default)]
struct Backend {
    fail: AtomicBool,
}

impl ScriptBackend for &Backend {
    fn run_script(&self, op: &str, _script: &str) -> Result<(), NftError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(NftError::Failed {
                op: op.to_string(),
                status: "exit status: 1".into(),
                stderr: "Error: Could not process rule: Operation not permitted".into(),
            });
        }
        Ok(())
    }
}

fn pod(name: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x, labels: {{app: {name}}}}}\n\
         spec: {{nodeName: node-1, containers: [{{name: c, image: i}}]}}\n\
         status: {{phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}\n"
    )
}

const BASE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {kubernetes.io/metadata.name: x}}\n\
---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n\
spec: {podSelector: {}, policyTypes: [Ingress]}\n";

/// Writes the objects and makes the change visible to the loop's fingerprint at once.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn the_loop_counts_outcomes_errors_by_kind_and_time() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "00-base.yaml", BASE);
    write(dir.path(), "10-pods.yaml", &pod("a", "10.244.1.11"));
    let backend = Backend::default();
    let settings = PolicySettings {
        table: "akskbpol".into(),
        node: "node-1".into(),
        pod_ranges: vec!["10.244.1.0/24".parse().unwrap()],
    };
    let mut ctl = PolicyController::new(&backend, settings);
    let source = ManifestDir::new(dir.path());
    let metrics = Metrics::default();
    let (stop, round) = (AtomicBool::new(false), AtomicUsize::new(0));
    // Each reconcile is recorded, then the next step's change is made: a broken manifest
    // (source error), the fix plus a pod (an update), another pod with nft failing.
    let observe = |r: &Result<_, _>, took: Duration| {
        metrics.observe_policy(r, took);
        let d = dir.path();
        match round.fetch_add(1, Ordering::SeqCst) {
            0 => write(d, "20-bad.yaml", "kind: Pod\nmetadata: [not a map]\n"),
            1 => {
                std::fs::remove_file(d.join("20-bad.yaml")).unwrap();
                write(
                    d,
                    "10-pods.yaml",
                    &(pod("a", "10.244.1.11") + &pod("b", "10.244.1.12")),
                );
            }
            2 => {
                backend.fail.store(true, Ordering::SeqCst);
                write(d, "30-c.yaml", &pod("c", "10.244.1.13"));
            }
            _ => stop.store(true, Ordering::SeqCst),
        }
    };
    let (poll, resync) = (Duration::from_millis(5), Duration::from_secs(3600));
    run_policy_loop_observed(&mut ctl, &source, poll, resync, &stop, &observe);
    assert_eq!(round.load(Ordering::SeqCst), 4);

    let text = metrics.render(&Scrape {
        policy: true,
        ..Scrape::default()
    });
    for line in [
        "# TYPE aksnet_policy_reconciles_total counter",
        r#"aksnet_policy_reconciles_total{outcome="replaced"} 1"#,
        r#"aksnet_policy_reconciles_total{outcome="updated"} 1"#,
        r#"aksnet_policy_reconciles_total{outcome="unchanged"} 0"#,
        r#"aksnet_policy_reconciles_total{outcome="error"} 2"#,
        r#"aksnet_policy_reconcile_errors_total{kind="source"} 1"#,
        r#"aksnet_policy_reconcile_errors_total{kind="compile"} 0"#,
        r#"aksnet_policy_reconcile_errors_total{kind="nft"} 1"#,
        "# TYPE aksnet_policy_reconcile_duration_seconds summary",
        "aksnet_policy_reconcile_duration_seconds_count 4",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line} in\n{text}"
        );
    }
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("aksnet_policy_reconcile_duration_seconds_sum "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sum > 0.0, "{text}");
    let last: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("aksnet_policy_last_success_timestamp_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(last > 1_700_000_000, "{text}");
    // Without the policy loop the families are not shown.
    assert!(!Metrics::default()
        .render(&Scrape::default())
        .contains("aksnet_policy_"));
}
