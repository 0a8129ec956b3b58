//! The incremental compiler equals the full one: on random clusters and policies, a random
//! sequence of pod churn (added, removed, relabelled, ports changed, moved between nodes,
//! addresses reused) applied pod by pod gives, after every batch, exactly the table a full
//! compile of the cluster gives; and the delta it hands to nft (objects created, deleted or
//! rewritten whole; element changes of the others), applied to the previous table as the
//! transaction applies it, gives that table too, so the small
//! transaction misses nothing; and the table before the batch is known (what the kernel
//! holds when a change must be compiled whole instead).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use aksnet_nft::elements::{element_batch, element_ops, ElemOp};
use aksnet_nft::filter::{partial_update_script, FilterTable, NamedSet};
use aksnet_policy::compile::{compile, rule_count, NodeScope};
use aksnet_policy::incremental::{pod_changes, Compiled, IncrementalError, PodChange};
use aksnet_policy::model::{Cluster, NamedPort, Pod, Policy};
use ipnet::IpNet;
use proptest::prelude::*;

mod gen;
use gen::*;

fn ranges() -> Vec<IpNet> {
    vec![net("10.244.1.0/24"), net("fd00:10:244:1::/64")]
}

fn scope(r: &[IpNet]) -> NodeScope<'_> {
    NodeScope {
        table: "t",
        node: "n1",
        pod_ranges: r,
    }
}

/// `old` with the delta applied as the transaction applies it: sets, maps and chains on one
/// side only created (whole) or deleted, chains on both sides rewritten, and for sets and
/// maps on both sides the element commands of `element_ops` (deletions, then additions).
fn patch(old: &FilterTable, d_old: &FilterTable, d_new: &FilterTable) -> FilterTable {
    let mut t = old.clone();
    let in_old = |n: &str| d_old.sets.iter().any(|s| s.name == n);
    let in_new = |n: &str| d_new.sets.iter().any(|s| s.name == n);
    t.sets.retain(|s| !in_old(&s.name) || in_new(&s.name));
    // New sets are created empty; their elements come with the element commands.
    t.sets.extend(
        d_new
            .sets
            .iter()
            .filter(|s| !in_old(&s.name))
            .map(|s| NamedSet {
                elements: Default::default(),
                ..s.clone()
            }),
    );
    t.sets.sort_by(|a, b| a.name.cmp(&b.name));
    for op in element_ops(d_old, d_new) {
        match op {
            ElemOp::Set {
                set, add, elems, ..
            } => {
                let s = t.sets.iter_mut().find(|s| s.name == set).unwrap();
                for e in elems {
                    assert_eq!(s.elements.contains(&e), !add, "{set}: {e:?} add={add}");
                    if add {
                        s.elements.insert(e);
                    } else {
                        s.elements.remove(&e);
                    }
                }
            }
            ElemOp::Map {
                map, add, entries, ..
            } => {
                let m = t.maps.iter_mut().find(|m| m.name == map).unwrap();
                for (k, c) in entries {
                    if add {
                        assert!(m.elements.insert(k, c).is_none(), "{map}: {k} added twice");
                    } else {
                        assert!(m.elements.remove(&k).is_some(), "{map}: {k} not there");
                    }
                }
            }
        }
    }
    let base: Vec<_> = t
        .chains
        .iter()
        .filter(|c| c.base.is_some())
        .cloned()
        .collect();
    let mut rest: Vec<_> = t
        .chains
        .iter()
        .filter(|c| c.base.is_none() && !d_old.chains.iter().any(|x| x.name == c.name))
        .cloned()
        .collect();
    rest.extend(d_new.chains.iter().cloned());
    rest.sort_by(|a, b| a.name.cmp(&b.name));
    t.chains = base;
    t.chains.extend(rest);
    t
}

/// One churn operation on pod number `i` (modulo the pod count).
#[derive(Debug, Clone)]
enum Op {
    Relabel(usize, String, Option<String>),
    Ports(usize, Vec<NamedPort>),
    Move(usize, usize),
    Remove(usize),
    Add(String, String, usize, u8),
    /// A new pod taking another pod's address (a reused IP before the old pod is gone).
    AddReusing(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            any::<usize>(),
            prop::sample::select(vec!["a", "b", "c"]),
            prop::option::of(prop::sample::select(vec!["web", "db"]))
        )
            .prop_map(|(i, p, t)| Op::Relabel(i, p.into(), t.map(Into::into))),
        (any::<usize>(), pod()).prop_map(|(i, p)| Op::Ports(i, p.4)),
        (any::<usize>(), 0..3usize).prop_map(|(i, n)| Op::Move(i, n)),
        any::<usize>().prop_map(Op::Remove),
        (
            prop::sample::select(vec!["x", "y", "z", "w"]),
            prop::sample::select(vec!["a", "b", "c"]),
            0..3usize,
            200..250u8
        )
            .prop_map(|(ns, p, n, h)| Op::Add(ns.into(), p.into(), n, h)),
        any::<usize>().prop_map(Op::AddReusing),
    ]
}

fn apply_op(pods: &mut Vec<Pod>, op: &Op, serial: usize) -> Option<PodChange> {
    if pods.is_empty() && !matches!(op, Op::Add(..)) {
        return None;
    }
    let len = pods.len().max(1);
    let at = |i: usize| i % len;
    let upsert = |p: &Pod| Some(PodChange::Upsert(p.clone()));
    match op {
        Op::Relabel(i, name, tier) => {
            let p = &mut pods[at(*i)];
            p.labels.insert("pod".into(), name.clone());
            match tier {
                Some(t) => p.labels.insert("tier".into(), t.clone()),
                None => p.labels.remove("tier"),
            };
            upsert(p)
        }
        Op::Ports(i, ports) => {
            let p = &mut pods[at(*i)];
            p.ports = ports.clone();
            p.ports.sort_by_key(|p| (p.name.clone(), p.protocol));
            p.ports.dedup_by_key(|p| p.name.clone());
            upsert(p)
        }
        Op::Move(i, n) => {
            let p = &mut pods[at(*i)];
            p.node = Some(format!("n{}", n + 1));
            upsert(p)
        }
        Op::Remove(i) => {
            let p = pods.remove(at(*i));
            Some(PodChange::Remove(p.key()))
        }
        Op::Add(ns, name, n, host) => {
            let p = Pod {
                namespace: ns.clone(),
                name: format!("new{serial}"),
                labels: labels(&[("pod", name)]),
                ips: vec![
                    format!("10.244.{}.{host}", n + 1).parse().unwrap(),
                    format!("fd00:10:244:{}::{host}", n + 1).parse().unwrap(),
                ],
                ports: vec![],
                node: Some(format!("n{}", n + 1)),
            };
            pods.retain(|q| q.key() != p.key());
            pods.push(p.clone());
            upsert(&p)
        }
        Op::AddReusing(i) => {
            let mut p = pods[at(*i)].clone();
            p.name = format!("reuse{serial}");
            pods.push(p.clone());
            upsert(&p)
        }
    }
}

fn check(
    c: &mut Compiled,
    before: &FilterTable,
    cluster: &Cluster,
    policies: &[Policy],
) -> Result<(), TestCaseError> {
    let r = ranges();
    let full = compile(cluster, policies, &scope(&r));
    match full {
        Err(_) => return Ok(()),
        Ok(full) => {
            prop_assert_eq!(&c.kernel_table(), before);
            prop_assert_eq!(&c.table(), &full);
            prop_assert_eq!(c.rule_count(), rule_count(&full));
            if let Some((d_old, d_new)) = c.take_delta() {
                prop_assert_eq!(&patch(before, &d_old, &d_new), &full);
                prop_assert!(partial_update_script(&d_old, &d_new).is_ok());
                // Element-only changes go as one netlink batch: the same commands.
                if let Some(b) = element_batch(&d_old, &d_new).unwrap() {
                    prop_assert!(d_old.chains.is_empty() && d_new.chains.is_empty());
                    prop_assert_eq!(
                        Some(b.script()),
                        partial_update_script(&d_old, &d_new).unwrap()
                    );
                }
            } else {
                prop_assert_eq!(before, &full);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full_compile(
        (cluster, policies) in scenario(),
        ops in prop::collection::vec(op(), 1..25),
        batch in 1..4usize,
    ) {
        let r = ranges();
        let Ok(mut c) = Compiled::new(cluster.clone(), policies.clone(), &scope(&r)) else {
            return Ok(());
        };
        prop_assert_eq!(c.table(), compile(&cluster, &policies, &scope(&r)).unwrap());
        let mut pods = cluster.pods.clone();
        let mut before = c.table();
        for (k, chunk) in ops.chunks(batch).enumerate() {
            for (j, o) in chunk.iter().enumerate() {
                let Some(change) = apply_op(&mut pods, o, k * 10 + j) else { continue };
                match c.apply_pod(change) {
                    Ok(()) => {}
                    Err(IncrementalError::NeedsFull { .. } | IncrementalError::Compile(_)) => {
                        // What the controller does: compile whole, diff whole.
                        let now = Cluster { namespaces: cluster.namespaces.clone(), pods: pods.clone() };
                        match Compiled::new(now, policies.clone(), &scope(&r)) {
                            Ok(n) => c = n,
                            Err(_) => return Ok(()),
                        }
                        before = c.table();
                    }
                }
            }
            let now = Cluster { namespaces: cluster.namespaces.clone(), pods: pods.clone() };
            check(&mut c, &before, &now, &policies)?;
            before = c.table();
            // The controller's way in: the change found by comparing whole pod lists.
            let changes = pod_changes(&c, &pods).unwrap();
            prop_assert!(changes.is_empty(), "{:?}", changes);
        }
    }
}

#[test]
fn pod_changes_finds_added_changed_removed() {
    let r = ranges();
    let mut pods: Vec<Pod> = (0..3)
        .map(|i| Pod {
            namespace: "x".into(),
            name: format!("p{i}"),
            labels: BTreeMap::new(),
            ips: vec![format!("10.244.1.{}", i + 2).parse().unwrap()],
            ports: vec![],
            node: Some("n1".into()),
        })
        .collect();
    let c = Compiled::new(
        Cluster {
            namespaces: vec![],
            pods: pods.clone(),
        },
        vec![],
        &scope(&r),
    )
    .unwrap();
    // Unchanged pods in their places (found by position), one listed again after them.
    let mut again = pods.clone();
    assert_eq!(pod_changes(&c, &again).unwrap(), vec![]);
    let mut twice = pods[2].clone();
    twice.ips = vec!["10.244.1.8".parse().unwrap()];
    again.push(twice);
    assert!(pod_changes(&c, &again).is_none(), "a key twice");
    pods[0].labels.insert("a".into(), "b".into());
    pods.remove(1);
    let mut dup = pods[0].clone();
    dup.ips = vec!["10.244.1.9".parse().unwrap()];
    let changes = pod_changes(&c, &pods).unwrap();
    assert_eq!(
        changes,
        vec![
            PodChange::Remove("x/p1".into()),
            PodChange::Upsert(pods[0].clone())
        ]
    );
    pods.push(dup);
    assert!(pod_changes(&c, &pods).is_none(), "a key twice");
}
