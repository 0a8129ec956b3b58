use std::cell::Cell;

use super::*;
use crate::kv::KeyValue;
use crate::mem::MemStore;
use crate::reservation::{get_node, join, join_with_pods_in, list_nodes, JoinOutcome};
use crate::tenants;

fn subnet(c: &str) -> NodeSubnet {
    NodeSubnet::new(c.parse().expect("cidr")).expect("subnet")
}
fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}
fn pj(node: &str, allocation: Allocation, max_pods: u32) -> PodJoin {
    PodJoin {
        node: node.to_string(),
        subnet_name: "pods".to_string(),
        subnet: subnet("10.241.0.0/24"),
        allocation,
        max_pods: MaxPods::new(max_pods).expect("max"),
        lease: None,
    }
}
fn node_req(node: &str, max_pods: u32) -> JoinRequest {
    JoinRequest {
        node: node.to_string(),
        subnet_name: "aks-subnet".to_string(),
        subnet: subnet("10.240.0.0/24"),
        max_pods: MaxPods::new(max_pods).expect("max"),
        in_use: BTreeSet::new(),
        lease: None,
    }
}

/// The index holds exactly the blocks of the records, one key each.
fn assert_index_matches_records(s: &MemStore) {
    let mut want: Vec<String> = list_pods(s)
        .expect("list")
        .iter()
        .flat_map(PodReservation::index_keys)
        .collect();
    want.sort();
    let mut keys = s.list_keys("blocks/pods/").expect("keys");
    keys.sort();
    assert_eq!(keys, want, "no stranded or missing index key");
}

#[test]
fn static_nodes_take_ceil_maxpods_plus_one_over_16_blocks_and_never_share_one() {
    let s = MemStore::new();
    let (a, new) = join_pods(&s, &pj("a", Allocation::Static, 30)).expect("join");
    assert!(new);
    assert_eq!(a.blocks, vec![ip("10.241.0.16"), ip("10.241.0.32")]);
    let pods = a.pod_ips();
    assert_eq!(pods.len(), 30);
    assert_eq!(
        pods.first(),
        Some(&ip("10.241.0.17")),
        "the node's own .16 is never a pod's"
    );
    let (b, _) = join_pods(&s, &pj("b", Allocation::Static, 47)).expect("join");
    assert_eq!(b.blocks.len(), 3);
    assert!(b.blocks.iter().all(|x| !a.blocks.contains(x)));
    assert_index_matches_records(&s);
    // A rejoin returns the same blocks and writes nothing.
    let rev = s.revision();
    let (again, new) = join_pods(&s, &pj("a", Allocation::Static, 30)).expect("rejoin");
    assert!(!new);
    assert_eq!(again, a);
    assert_eq!(s.revision(), rev);
    let e = join_pods(&s, &pj("a", Allocation::Dynamic, 30)).unwrap_err();
    assert!(matches!(e, PodSubnetError::JoinedDifferently { .. }), "{e}");
}

#[test]
fn exhaustion_names_the_subnet_and_its_use_and_changes_nothing() {
    let s = MemStore::new();
    // A /24 has 14 eligible blocks: 7 nodes at maxPods 31 (2 blocks each).
    for i in 0..7 {
        join_pods(&s, &pj(&format!("n{i}"), Allocation::Static, 31)).expect("join");
    }
    let rev = s.revision();
    let e = join_pods(&s, &pj("late", Allocation::Static, 31)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pod subnet pods (10.241.0.0/24) is exhausted: node late needs 2 more block(s) of 16 \
         addresses, 0 of its 14 blocks are free (14 held by nodes: 224 addresses); add a pod \
         subnet or lower maxPods"
    );
    assert_eq!(s.revision(), rev);
    // Leaving frees the blocks for the next node.
    let gone = leave_pods(&s, "n3").expect("leave").expect("held");
    let (r, _) = join_pods(&s, &pj("late", Allocation::Static, 31)).expect("join");
    assert_eq!(r.blocks, gone.blocks);
    assert_eq!(leave_pods(&s, "n3").expect("leave again"), None);
    assert_index_matches_records(&s);
}

#[test]
fn a_pod_subnet_holds_no_node_and_no_vm_and_a_node_subnet_is_no_pod_subnet() {
    let s = MemStore::new();
    join_pods(&s, &pj("a", Allocation::Static, 30)).expect("join");
    // A node (or VM) in the pod subnet: refused with the reason.
    let mut into_pods = node_req("b", 30);
    into_pods.subnet_name = "pods".into();
    into_pods.subnet = subnet("10.241.0.0/24");
    let e = join(&s, &into_pods).unwrap_err().to_string();
    assert!(
        e.contains("is a pod subnet in the cluster store, not a node subnet"),
        "{e}"
    );
    assert!(e.contains("VMs cannot be placed in a pod subnet"), "{e}");
    let rev = s.revision();
    let e = tenants::reserve(
        &s,
        "pods",
        &subnet("10.241.0.0/24"),
        (ip("10.241.0.100"), ip("10.241.0.100")),
        "vm1",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("VMs cannot be placed in a pod subnet"), "{e}");
    assert_eq!(s.revision(), rev, "refused before anything is written");
    // A pod subnet named like an existing node subnet: refused too.
    join(&s, &node_req("c", 30)).expect("node subnet join");
    let mut p = pj("d", Allocation::Dynamic, 30);
    p.subnet_name = "aks-subnet".into();
    p.subnet = subnet("10.240.0.0/24");
    let e = join_pods(&s, &p).unwrap_err().to_string();
    assert!(
        e.contains("is a node subnet in the cluster store, not a pod subnet"),
        "{e}"
    );
    // Overlapping CIDRs under another name: the registry refuses.
    let mut p = pj("d", Allocation::Dynamic, 30);
    p.subnet_name = "pods2".into();
    p.subnet = subnet("10.240.0.0/23");
    let e = join_pods(&s, &p).unwrap_err().to_string();
    assert!(e.contains("overlaps"), "{e}");
}

#[test]
fn a_pod_subnet_node_holds_only_its_own_address_in_the_node_subnet() {
    let s = MemStore::new();
    let JoinOutcome::Joined(r) =
        join_with_pods_in(&s, &node_req("a", 250), Some("pods")).expect("join")
    else {
        panic!("new join")
    };
    assert_eq!(r.node_ip, ip("10.240.0.4"));
    assert!(r.pod_ips.is_empty());
    // maxPods 250 costs nothing in the node subnet: the next node is .5.
    let JoinOutcome::Joined(n) = join(&s, &node_req("b", 30)).expect("join") else {
        panic!("new join")
    };
    assert_eq!(n.node_ip, ip("10.240.0.5"));
    assert_eq!(list_nodes(&s).expect("list").len(), 2);
    // The same node joining without the pod subnet is a different join.
    let e = join(&s, &node_req("a", 250)).unwrap_err();
    assert!(
        matches!(e, ReservationError::NodeJoinedDifferently { .. }),
        "{e}"
    );
    let (back, _) = get_node(&s, "a").expect("get").expect("present");
    assert_eq!(back.pod_subnet.as_deref(), Some("pods"));
}

#[test]
fn dynamic_nodes_grow_by_batches_up_to_the_cap_and_return_any_but_the_first() {
    let s = MemStore::new();
    let (r, _) = join_pods(&s, &pj("a", Allocation::Dynamic, 30)).expect("join");
    assert_eq!(r.blocks, vec![ip("10.241.0.16")]);
    assert_eq!(r.pod_ips().len(), 15);
    join_pods(&s, &pj("b", Allocation::Dynamic, 30)).expect("join");
    let r = grow(&s, "a", 1).expect("grow");
    assert_eq!(r.blocks, vec![ip("10.241.0.16"), ip("10.241.0.48")]);
    // maxPods 30 caps a node at 2 blocks: a further grow changes nothing.
    let rev = s.revision();
    assert_eq!(grow(&s, "a", 1).expect("grow at cap"), r);
    assert_eq!(s.revision(), rev);
    let e = shrink(&s, "a", &[ip("10.241.0.16")]).unwrap_err();
    assert!(matches!(e, PodSubnetError::NotReturnable { .. }), "{e}");
    let e = shrink(&s, "a", &[ip("10.241.0.32")]).unwrap_err();
    assert!(
        matches!(e, PodSubnetError::NotReturnable { .. }),
        "b's block: {e}"
    );
    let r = shrink(&s, "a", &[ip("10.241.0.48")]).expect("shrink");
    assert_eq!(r.blocks, vec![ip("10.241.0.16")]);
    assert_index_matches_records(&s);
    join_pods(&s, &pj("st", Allocation::Static, 30)).expect("join static");
    assert!(matches!(
        grow(&s, "st", 1).unwrap_err(),
        PodSubnetError::NotDynamic { .. }
    ));
    assert!(matches!(
        grow(&s, "nobody", 1).unwrap_err(),
        PodSubnetError::NotJoined { .. }
    ));
}

/// A store that lets another node grow between our reads and our txn.
struct Racing<'a> {
    inner: &'a MemStore,
    interfere: Cell<Option<&'static str>>,
}

impl Store for Racing<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.list(prefix)
    }
    fn txn(&self, c: &[Compare], o: &[Op]) -> Result<bool, StoreError> {
        if let Some(other) = self.interfere.take() {
            grow(self.inner, other, 1).expect("interfering grow");
        }
        self.inner.txn(c, o)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[test]
fn a_grow_that_loses_the_race_retries_and_never_takes_the_winners_block() {
    let s = MemStore::new();
    join_pods(&s, &pj("a", Allocation::Dynamic, 250)).expect("join");
    join_pods(&s, &pj("b", Allocation::Dynamic, 250)).expect("join");
    let racing = Racing {
        inner: &s,
        interfere: Cell::new(Some("b")),
    };
    let a = grow(&racing, "a", 1).expect("grow");
    let (b, _) = get_pods(&s, "b").expect("get").expect("b");
    assert_eq!(b.blocks, vec![ip("10.241.0.32"), ip("10.241.0.48")]);
    assert_eq!(a.blocks, vec![ip("10.241.0.16"), ip("10.241.0.64")]);
    assert_index_matches_records(&s);
}

#[test]
fn corrupt_records_are_errors_naming_the_key() {
    let s = MemStore::new();
    let (mut r, _) = join_pods(&s, &pj("a", Allocation::Static, 30)).expect("join");
    r.blocks.push(ip("10.241.0.0"));
    assert!(s
        .txn(
            &[],
            &[Op::Put {
                key: "podnodes/a".into(),
                value: serde_json::to_vec(&r).expect("json")
            }]
        )
        .expect("txn"));
    let e = list_pods(&s).unwrap_err().to_string();
    assert!(e.contains("podnodes/a") && e.contains("10.241.0.0"), "{e}");
}
