//! Compiler properties that are not verdicts: pod and label churn is element-only, the rule
//! count does not grow with pods, unknown local addresses are dropped (fail closed).
#![allow(clippy::unwrap_used)]

use aksnet_nft::filter::{run_hook, update_script, CtState, Packet};
use aksnet_nft::Hook;
use aksnet_policy::compile::{compile, rule_count, NodeScope};
use aksnet_policy::probe;
use ipnet::IpNet;

fn step(file: &str, i: usize) -> probe::Step {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    let s = probe::parse(file, &std::fs::read_to_string(path).unwrap()).unwrap();
    let mut st = s.steps[i].clone();
    for p in &mut st.cluster.pods {
        p.node = Some(
            if p.ips[0].to_string().starts_with("10.244.1.") {
                "n1"
            } else {
                "n2"
            }
            .into(),
        );
    }
    st
}

fn ranges() -> Vec<IpNet> {
    vec!["10.244.1.0/24".parse().unwrap()]
}

#[test]
fn pod_added_or_relabelled_touches_only_elements() {
    let r = ranges();
    let scope = NodeScope {
        table: "t",
        node: "n1",
        pod_ranges: &r,
    };
    // 20-pods-and-namespaces-added-later: step 0 lacks x/c (node n1), step 1 adds it.
    let before = step("20-pods-and-namespaces-added-later.json", 0);
    let after = step("20-pods-and-namespaces-added-later.json", 1);
    let t0 = compile(&before.cluster, &before.policies, &scope).unwrap();
    let t1 = compile(&after.cluster, &after.policies, &scope).unwrap();
    let script = update_script(&t0, &t1).unwrap().unwrap();
    for line in script.lines() {
        assert!(
            line.starts_with("add element ") || line.starts_with("delete element "),
            "{script}"
        );
    }
    assert!(script.contains("10.244.1.13"), "{script}");
    // 19-relabel: a namespace relabelled changes only peer set members.
    let a = step("19-relabel.json", 0);
    let b = step("19-relabel.json", 1);
    let ta = compile(&a.cluster, &a.policies, &scope).unwrap();
    let tb = compile(&b.cluster, &b.policies, &scope).unwrap();
    let script = update_script(&ta, &tb).unwrap().unwrap();
    assert!(
        script
            .lines()
            .all(|l| l.starts_with("add element ") || l.starts_with("delete element ")),
        "{script}"
    );
    assert!(update_script(&tb, &tb).unwrap().is_none());
}

#[test]
fn rule_count_does_not_grow_with_pods() {
    let r = ranges();
    let scope = NodeScope {
        table: "t",
        node: "n1",
        pod_ranges: &r,
    };
    let base = step("e2e-ingress.json", 6);
    let small = compile(&base.cluster, &base.policies, &scope).unwrap();
    let mut big = base.cluster.clone();
    for i in 0..200u32 {
        let mut p = big.pods[(i % 9) as usize].clone();
        p.name = format!("{}-{i}", p.name);
        let node = if i % 2 == 0 { 1 } else { 2 };
        p.ips = vec![format!("10.244.{node}.{}", 40 + i / 2).parse().unwrap()];
        p.node = Some(format!("n{node}"));
        big.pods.push(p);
    }
    let large = compile(&big, &base.policies, &scope).unwrap();
    assert_eq!(rule_count(&small), rule_count(&large));
    let elems = |t: &aksnet_nft::filter::FilterTable| {
        t.sets.iter().map(|s| s.elements.len()).sum::<usize>()
    };
    assert!(elems(&large) > elems(&small) + 100);
}

#[test]
fn unknown_local_address_is_dropped_both_ways() {
    let r = ranges();
    let scope = NodeScope {
        table: "t",
        node: "n1",
        pod_ranges: &r,
    };
    let s = step("01-default-deny-ingress.json", 0);
    let t = compile(&s.cluster, &[], &scope).unwrap();
    let pkt = |src: &str, dst: &str| Packet {
        saddr: src.parse().unwrap(),
        daddr: dst.parse().unwrap(),
        l4proto: 6,
        dport: 80,
        ct: CtState::New,
    };
    // Known, unisolated pods pass.
    assert!(run_hook(
        &t,
        Hook::Forward,
        &pkt("10.244.2.12", "10.244.1.11")
    ));
    // 10.244.1.99 is in this node's range but no pod the agent knows: dropped both ways.
    assert!(!run_hook(
        &t,
        Hook::Forward,
        &pkt("10.244.2.12", "10.244.1.99")
    ));
    assert!(!run_hook(
        &t,
        Hook::Forward,
        &pkt("10.244.1.99", "10.244.2.12")
    ));
    // Replies of connections established before are not affected.
    assert!(run_hook(
        &t,
        Hook::Forward,
        &Packet {
            ct: CtState::Established,
            ..pkt("10.244.1.99", "10.244.2.12")
        }
    ));
}
