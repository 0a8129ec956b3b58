//! Many plugin processes at once on one network (issue 2): 16 callers, 512
//! ADD and DEL operations. All 256 attachments are held at the same time
//! before any DEL, so a duplicate address cannot hide behind timing: every
//! address must be distinct, present on its pod, and released at the end.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;

use common::*;

const CALLERS: usize = 16;
const PODS_PER_CALLER: usize = 16;

#[test]
fn sixteen_processes_512_operations_no_duplicate_no_leak() {
    require_root();
    let t = tag("st");
    let bridge = format!("aksntb{t}");
    // The plugin runs in a node netns of the test's own (the machine's namespace
    // is never touched); the bridge and host veths live and die with it.
    let node = NetnsGuard::new(&format!("aksnt-{t}-node"));
    let dir = tempfile::tempdir().unwrap();
    let name = format!("aksnt-{t}");
    let conf = kubenet_conf("1.1.0", &name, &bridge, dir.path(), "10.253.0.0/23");

    let namespaces: Vec<Vec<NetnsGuard>> = (0..CALLERS)
        .map(|c| {
            (0..PODS_PER_CALLER)
                .map(|p| NetnsGuard::new(&format!("aksnt-{t}-{c}-{p}")))
                .collect()
        })
        .collect();

    // Phase 1: every caller ADDs its pods while the others do the same.
    let results: Vec<Vec<(String, serde_json::Value)>> = std::thread::scope(|s| {
        let handles: Vec<_> = namespaces
            .iter()
            .enumerate()
            .map(|(c, pods)| {
                let conf = &conf;
                let node = &node;
                s.spawn(move || {
                    pods.iter()
                        .enumerate()
                        .map(|(p, ns)| {
                            let id = format!("st-{c}-{p}");
                            let r = verb(Some(&node.name), "ADD", &id, &ns.path(), conf, "")
                                .expect_ok()
                                .json();
                            (id, r)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("caller thread"))
            .collect()
    });

    let mut seen = HashSet::new();
    for (pods, res) in namespaces.iter().zip(&results) {
        for (ns, (id, r)) in pods.iter().zip(res) {
            let ip = result_ip(r);
            assert!(
                seen.insert(ip.clone()),
                "{ip} handed out twice (second holder {id})"
            );
            let (_, out) = ns.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]);
            assert!(
                out.contains(&format!("{ip}/23")),
                "{id}: {ip} not on its pod: {out}"
            );
        }
    }
    assert_eq!(seen.len(), CALLERS * PODS_PER_CALLER);
    assert_eq!(
        allocations(dir.path(), &name).len(),
        CALLERS * PODS_PER_CALLER
    );

    // Phase 2: every caller DELs its pods concurrently.
    std::thread::scope(|s| {
        for (pods, res) in namespaces.iter().zip(&results) {
            let conf = &conf;
            let node = &node;
            s.spawn(move || {
                for (ns, (id, r)) in pods.iter().zip(res) {
                    verb(
                        Some(&node.name),
                        "DEL",
                        id,
                        &ns.path(),
                        &with_prev(conf, r),
                        "",
                    )
                    .expect_ok();
                }
            });
        }
    });
    assert!(
        allocations(dir.path(), &name).is_empty(),
        "reservations left after DEL"
    );
    for res in &results {
        for (id, r) in res {
            let host = r["interfaces"][1]["name"].as_str().unwrap_or_default();
            eventually(&format!("{id}: host veth {host} deleted"), || {
                !host_link_exists(host)
            });
        }
    }
}
