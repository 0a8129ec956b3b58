//! Microsoft Learn's legacy CNI page's and the docs' figures, exactly; and the capacity formulas under proptest.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use aksnet_plan::report::RangeKind;
use aksnet_plan::{input, plan, Growth, PlanOptions, Report};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn plan_files(names: &[&str]) -> Report {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    plan(&input::load_files(&paths).unwrap(), &PlanOptions::default())
}

fn plan_yaml(text: &str, opts: PlanOptions) -> Report {
    plan(
        &input::load_texts(&[(PathBuf::from("t.yaml"), text.to_string())]).unwrap(),
        &opts,
    )
}

#[test]
fn legacy_doc_node_subnet_slash24_fits_8_nodes_240_pods() {
    let r = plan_files(&["nodesubnet-legacy-doc.yaml"]);
    let c = &r.capacity[0];
    assert_eq!(
        (c.kind, c.cidr.as_str(), c.usable, c.per_node),
        (RangeKind::NodeSubnet, "172.16.1.0/24", 251, 31)
    );
    assert_eq!((c.max_nodes, c.max_pods), (8, 240));
    assert_eq!(c.required, 248);
    assert!(c.accepted_at_create);
}

#[test]
fn legacy_doc_8_nodes_on_a_slash24_are_accepted_but_not_upgrade_safe() {
    // Microsoft Learn, legacy CNI page: "These maximums don't take into account upgrade or scale operations."
    let text = std::fs::read_to_string(fixture("nodesubnet-legacy-doc.yaml"))
        .unwrap()
        .replace("      maxSurge: \"0\"\n      maxUnavailable: \"0\"\n", "");
    let r = plan_yaml(&text, PlanOptions::default());
    let c = &r.capacity[0];
    assert_eq!((c.required, c.required_with_surge), (248, 279));
    assert!(c.accepted_at_create && !c.safe_to_upgrade);
    assert!(r.cluster.accepted_at_create && !r.cluster.safe_to_upgrade);
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule == "U4" && f.code == Some("SubnetIsFull")));
    assert!(!r.has_errors());
}

#[test]
fn legacy_doc_kubenet_slash24_fits_251_nodes() {
    let r = plan_files(&["kubenet-legacy-doc.yaml"]);
    let node = r
        .capacity
        .iter()
        .find(|c| c.kind == RangeKind::NodeSubnet)
        .unwrap();
    assert_eq!((node.usable, node.per_node, node.max_nodes), (251, 1, 251));
    // 251 × 110 = 27,610 pods (DOC-KUBENET).
    assert_eq!(node.max_pods, 27_610);
    let pod = r
        .capacity
        .iter()
        .find(|c| c.kind == RangeKind::PodCidr)
        .unwrap();
    assert_eq!((pod.usable, pod.max_nodes), (65_536, 256));
    assert!(r
        .limits
        .iter()
        .any(|l| l.name.starts_with("kubenet") && l.limit == 400));
    assert!(!r.has_errors(), "{:?}", r.findings);
}

#[test]
fn docs_50_nodes_surge_1_need_1581_addresses_a_slash21() {
    let r = plan_files(&["docs-50-nodes.yaml"]);
    let c = &r.capacity[0];
    assert_eq!(c.required_with_surge, 1_581);
    assert_eq!(c.required, 1_550);
    assert_eq!(c.smallest_prefix, Some(21));
    assert!(c.safe_to_upgrade);
    // With 10 more nodes of scale-out: 61 × 31 = 1,891 → still /21.
    let text = std::fs::read_to_string(fixture("docs-50-nodes.yaml"))
        .unwrap()
        .replace("count: 50", "count: 60");
    let r = plan_yaml(&text, PlanOptions::default());
    assert_eq!(r.capacity[0].required_with_surge, 1_891);
    assert_eq!(r.capacity[0].smallest_prefix, Some(21));
}

#[test]
fn binding_constraint_and_growth() {
    let text = std::fs::read_to_string(fixture("kubenet-legacy-doc.yaml")).unwrap();
    let g = Growth::parse("20/month").unwrap();
    let r = plan_yaml(
        &text,
        PlanOptions {
            growth: Some((g, "20/month".into())),
            ..PlanOptions::default()
        },
    );
    // 3 nodes + 1 surge: the subnet has 247 more, the pod CIDR 252, kubenet routes 396.
    assert_eq!(r.cluster.headroom_nodes, Some(247));
    assert!(r
        .cluster
        .binding_constraint
        .as_deref()
        .unwrap()
        .contains("nodes"));
    let gr = r.growth.unwrap();
    assert_eq!(gr.months, Some(12.3));
    let g = Growth::parse("1100pods/month").unwrap();
    let r = plan_yaml(
        &text,
        PlanOptions {
            growth: Some((g, "1100pods/month".into())),
            ..PlanOptions::default()
        },
    );
    assert_eq!(r.growth.unwrap().nodes_per_month, 10.0);
    assert!(Growth::parse("fast").is_none());
    assert!(Growth::parse("-3/month").is_none());
    assert!(
        matches!(Growth::parse("12/year"), Some(Growth::NodesPerMonth(x)) if (x - 1.0).abs() < 1e-9)
    );
}

#[test]
fn pod_cidr_binds_overlay_at_256_nodes_per_slash16() {
    let text = r#"
apiVersion: aksnet/v1
cluster:
  tier: standard
  network: {plugin: azure, pluginMode: overlay, podCidr: 10.244.0.0/16, serviceCidr: 10.200.0.0/16, dnsServiceIp: 10.200.0.10}
  pools: [{name: system, mode: System, count: 200, subnet: nodes, maxSurge: "10%"}]
vnet: {name: v, addressSpace: [172.16.0.0/16], subnets: [{name: nodes, prefix: 172.16.0.0/20}]}
"#;
    let r = plan_yaml(text, PlanOptions::default());
    assert_eq!(
        r.cluster.binding_constraint.as_deref(),
        Some("pod CIDR networkProfile.podCidr (10.244.0.0/16)")
    );
    assert_eq!(r.cluster.headroom_nodes, Some(256 - 220));
}

proptest! {
    /// Node Subnet: one pool of n nodes at maxPods P in a /p: max nodes = ⌊(2^(32−p) − 5)/(P+1)⌋,
    /// and the create check passes exactly when n ≤ that.
    #[test]
    fn node_subnet_capacity_formula(prefix in 16u8..=28, max_pods in 10u64..=250, nodes in 1u64..=300) {
        let text = format!(r#"
apiVersion: aksnet/v1
cluster:
  tier: standard
  network: {{plugin: azure, serviceCidr: 10.200.0.0/16, dnsServiceIp: 10.200.0.10}}
  pools: [{{name: system, mode: System, count: {nodes}, maxPods: {max_pods}, subnet: nodes, maxSurge: "1"}}]
vnet: {{name: v, addressSpace: [172.16.0.0/12], subnets: [{{name: nodes, prefix: 172.16.0.0/{prefix}}}]}}
"#);
        let r = plan_yaml(&text, PlanOptions::default());
        let c = &r.capacity[0];
        let usable = (1u64 << (32 - prefix)) - 5;
        prop_assert_eq!(c.usable, usable);
        prop_assert_eq!(c.max_nodes, usable / (max_pods + 1));
        prop_assert_eq!(c.accepted_at_create, nodes <= c.max_nodes);
        prop_assert_eq!(c.safe_to_upgrade, nodes < c.max_nodes);
        prop_assert_eq!(r.findings.iter().any(|f| f.rule == "N1"), nodes > c.max_nodes);
        prop_assert_eq!(c.free, usable as i64 - ((nodes + 1) * (max_pods + 1)) as i64);
    }
}
