#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::mem::MemStore;
use std::collections::BTreeSet;

fn pool(c: &str, len: u8) -> PodCidrPool {
    PodCidrPool::new(c.parse().unwrap(), len).unwrap()
}
fn req(node: &str, ip: &str) -> PodCidrRequest {
    PodCidrRequest {
        node: node.to_string(),
        node_ip: ip.parse().unwrap(),
        keep: None,
        lease: None,
    }
}
fn alloc(m: &MemStore, p: &str, node: &str, ip: &str) -> Result<PodCidrOutcome, PodCidrError> {
    allocate(m, Some(pool(p, 24)), &req(node, ip))
}

#[test]
fn blocks_are_given_lowest_first_and_exhaustion_names_the_cidr_and_count() {
    let m = MemStore::new();
    for i in 0..4u8 {
        let o = alloc(
            &m,
            "10.244.0.0/22",
            &format!("n{i}"),
            &format!("10.0.0.{}", i + 4),
        )
        .unwrap();
        assert!(matches!(o, PodCidrOutcome::Allocated(_)));
        assert_eq!(o.record().cidr.to_string(), format!("10.244.{i}.0/24"));
    }
    let rev = m.revision();
    let e = alloc(&m, "10.244.0.0/22", "n4", "10.0.0.9").unwrap_err();
    assert_eq!(
        e.to_string(),
        "pod CIDR 10.244.0.0/22 is exhausted: all 4 /24 blocks are held by nodes; leave a \
         node or register a larger pod CIDR"
    );
    assert_eq!(m.revision(), rev, "a refused allocation writes nothing");
    // A freed block is given again, and only once.
    assert_eq!(
        release(&m, "n1").unwrap().unwrap().cidr.to_string(),
        "10.244.1.0/24"
    );
    assert!(release(&m, "n1").unwrap().is_none(), "released twice");
    let o = alloc(&m, "10.244.0.0/22", "n4", "10.0.0.9").unwrap();
    assert_eq!(o.record().cidr.to_string(), "10.244.1.0/24");
    let all = list_pod_cidrs(&m).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().map(|r| r.cidr).collect::<BTreeSet<_>>().len(), 4);
}

#[test]
fn rejoin_is_stable_and_writes_nothing() {
    let m = MemStore::new();
    alloc(&m, "10.244.0.0/16", "a", "10.0.0.4").unwrap();
    let b = alloc(&m, "10.244.0.0/16", "b", "10.0.0.5").unwrap();
    let rev = m.revision();
    let again = alloc(&m, "10.244.0.0/16", "b", "10.0.0.5").unwrap();
    assert_eq!(again, PodCidrOutcome::AlreadyAllocated(b.record().clone()));
    assert_eq!(m.revision(), rev);
    // Same block asked explicitly: also fine; another next hop is refused.
    let mut r = req("b", "10.0.0.5");
    r.keep = Some(b.record().cidr);
    allocate(&m, None, &r).unwrap();
    let e = allocate(&m, None, &req("b", "10.0.0.6")).unwrap_err();
    assert!(matches!(e, PodCidrError::NodeHoldsOther { .. }), "{e}");
    assert_eq!(m.revision(), rev);
}

#[test]
fn a_block_in_use_is_kept_or_refused() {
    let m = MemStore::new();
    alloc(&m, "10.244.0.0/16", "a", "10.0.0.4").unwrap();
    let mut r = req("b", "10.0.0.5");
    r.keep = Some("10.244.7.0/24".parse().unwrap());
    let o = allocate(&m, Some(pool("10.244.0.0/16", 24)), &r).unwrap();
    assert_eq!(o.record().cidr.to_string(), "10.244.7.0/24");
    let rev = m.revision();
    r.node = "c".into();
    r.keep = Some("10.244.0.0/24".parse().unwrap());
    let e = allocate(&m, None, &r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node c's pods use 10.244.0.0/24, which node a holds; refusing, nothing changed"
    );
    r.keep = Some("10.245.0.0/24".parse().unwrap());
    assert!(matches!(
        allocate(&m, None, &r).unwrap_err(),
        PodCidrError::KeepNotInPool { .. }
    ));
    assert_eq!(m.revision(), rev);
}

#[test]
fn one_pool_per_cluster_outside_the_node_subnets() {
    let m = MemStore::new();
    let e = allocate(&m, None, &req("a", "10.0.0.4")).unwrap_err();
    assert!(matches!(e, PodCidrError::NoPool));
    alloc(&m, "10.244.0.0/16", "a", "10.0.0.4").unwrap();
    let e = allocate(&m, Some(pool("10.244.0.0/16", 25)), &req("b", "10.0.0.5")).unwrap_err();
    assert!(
        e.to_string()
            .contains("registered as 10.244.0.0/16, /24 per node"),
        "{e}"
    );
    // Without a pool argument the registered one is used.
    allocate(&m, None, &req("b", "10.0.0.5")).unwrap();

    let m = MemStore::new();
    crate::reservation::join(
        &m,
        &crate::JoinRequest {
            node: "x".into(),
            subnet_name: "aks-subnet".into(),
            subnet: aksnet_core::azure::NodeSubnet::new("10.240.0.0/16".parse().unwrap()).unwrap(),
            max_pods: aksnet_core::azure::MaxPods::default(),
            in_use: BTreeSet::new(),
            lease: None,
        },
    )
    .unwrap();
    let e = alloc(&m, "10.240.128.0/17", "a", "10.240.0.4").unwrap_err();
    assert!(matches!(e, PodCidrError::OverlapsSubnet { .. }), "{e}");
}

#[test]
fn bad_pools_are_refused_naming_the_value() {
    let e = PodCidrPool::new("10.244.1.0/16".parse().unwrap(), 24).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pod CIDR 10.244.1.0/16 has host bits set (did you mean 10.244.0.0/16?)"
    );
    assert!(e.is_bad_input());
    for len in [15, 29] {
        let e = PodCidrPool::new("10.244.0.0/16".parse().unwrap(), len).unwrap_err();
        assert!(
            e.to_string().contains(&format!("/{len} does not fit")),
            "{e}"
        );
    }
    assert_eq!(pool("10.0.0.0/8", 24).blocks(), 65536);
    assert_eq!(
        pool("10.0.0.0/8", 24).block(65535).unwrap().to_string(),
        "10.255.255.0/24"
    );
    assert!(pool("10.0.0.0/8", 24).block(65536).is_none());
}

#[test]
fn concurrent_allocations_never_share_a_block() {
    let m = MemStore::new();
    std::thread::scope(|s| {
        for t in 0..8 {
            let m = &m;
            s.spawn(move || {
                for i in 0..8 {
                    alloc(m, "10.244.0.0/18", &format!("n{t}-{i}"), "10.0.0.4").unwrap();
                }
            });
        }
    });
    let all = list_pod_cidrs(&m).unwrap();
    assert_eq!(all.len(), 64);
    assert_eq!(
        all.iter().map(|r| r.cidr).collect::<BTreeSet<_>>().len(),
        64
    );
    assert!(alloc(&m, "10.244.0.0/18", "last", "10.0.0.4").is_err());
}

#[test]
fn a_record_under_the_wrong_key_is_corrupt() {
    let m = MemStore::new();
    alloc(&m, "10.244.0.0/16", "a", "10.0.0.4").unwrap();
    let (v, _) = m.get("podcidrs/a").unwrap().unwrap();
    m.txn(
        &[],
        &[Op::Put {
            key: "podcidrs/b".into(),
            value: v,
        }],
    )
    .unwrap();
    let e = list_pod_cidrs(&m).unwrap_err();
    assert!(e.to_string().contains("podcidrs/b"), "{e}");
}

#[test]
fn the_embedded_store_keeps_blocks_across_processes_worth_of_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let open = || crate::EmbeddedStore::new(dir.path().join("cluster"));
    let p = Some(pool("10.244.0.0/23", 24));
    let a = allocate(&open(), p, &req("a", "10.0.0.4")).unwrap();
    let b = allocate(&open(), None, &req("b", "10.0.0.5")).unwrap();
    assert_ne!(a.record().cidr, b.record().cidr);
    // Each call opens the store again, as each CLI run does: same answers.
    assert_eq!(
        allocate(&open(), None, &req("a", "10.0.0.4")).unwrap(),
        PodCidrOutcome::AlreadyAllocated(a.record().clone())
    );
    let e = allocate(&open(), None, &req("c", "10.0.0.6")).unwrap_err();
    assert!(e.to_string().contains("all 2 /24 blocks"), "{e}");
    release(&open(), "a").unwrap().unwrap();
    let c = allocate(&open(), None, &req("c", "10.0.0.6")).unwrap();
    assert_eq!(c.record().cidr, a.record().cidr);
    assert_eq!(list_pod_cidrs(&open()).unwrap().len(), 2);
}
