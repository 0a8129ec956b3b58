//! Pod Subnet, dynamic allocation at scale (issue 15): three nodes scale from 0
//! to 250 pods and back while a fourth joins, each node's pool kept by
//! `aksnet_store::pod_pool::sync_pod_pool` against one real embedded store (its
//! state file and lock), each node in its own thread with its own store handle
//! and its own data directory, as separate machines would be. A pod's ADD is
//! what the plugin does: take a free address of `node-pool.json`'s `podIps`, or
//! be refused when none is free (the sync round then tops the pool up).
//!
//! Checked all along: no block is held twice in the store, every pod's address
//! lies in a block its node holds; at the end no address is stranded: each node
//! holds exactly its first block, the index equals the records, and after every
//! node left the pod subnet's index is empty.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_core::podsubnet::{block_addresses, Allocation};
use aksnet_store::local_pool::{read_node_pool, write_node_pool};
use aksnet_store::pod_pool::{pod_subnet_pool, sync_pod_pool};
use aksnet_store::podsubnet::{join_pods, leave_pods, list_pods, PodJoin};
use aksnet_store::reservation::join_with_pods_in;
use aksnet_store::{EmbeddedStore, JoinRequest, Store};

const POD_SUBNET: &str = "10.241.0.0/22";
const MAX_PODS: u32 = 250;

fn subnet(c: &str) -> NodeSubnet {
    NodeSubnet::new(c.parse().expect("cidr")).expect("subnet")
}

/// `aksnet node join --pod-subnet … --pod-allocation dynamic`, as the command does it.
fn join_node(store: &dyn Store, node: &str, data: &Path) {
    let req = JoinRequest {
        node: node.to_string(),
        subnet_name: "aks-subnet".into(),
        subnet: subnet("10.240.0.0/24"),
        max_pods: MaxPods::new(MAX_PODS).expect("max"),
        in_use: BTreeSet::new(),
        lease: None,
    };
    let r = join_with_pods_in(store, &req, Some("pods")).expect("node join");
    let (pods, _) = join_pods(
        store,
        &PodJoin {
            node: node.to_string(),
            subnet_name: "pods".into(),
            subnet: subnet(POD_SUBNET),
            allocation: Allocation::Dynamic,
            max_pods: MaxPods::new(MAX_PODS).expect("max"),
            lease: None,
        },
    )
    .expect("pod join");
    write_node_pool(data, &pod_subnet_pool(r.reservation(), &pods, &[])).expect("pool");
}

/// One node's pods, shared with the checker.
type InUse = Mutex<BTreeSet<Ipv4Addr>>;

/// The plugin's ADD: a free address of the pool file, or `None` (refused).
fn add_pod(data: &Path, in_use: &InUse) -> Option<Ipv4Addr> {
    let pool = read_node_pool(data).expect("read pool").expect("pool");
    let mut held = in_use.lock().expect("lock");
    let ip = pool.pod_ips.iter().copied().find(|ip| !held.contains(ip))?;
    held.insert(ip);
    Some(ip)
}

fn sync(store: &dyn Store, data: &Path, in_use: &InUse) {
    let snapshot = in_use.lock().expect("lock").clone();
    sync_pod_pool(store, data, &snapshot).expect("sync round");
}

/// Scales one node to `pods` and back to 0; returns how often ADD was refused.
fn scale(store_dir: &Path, data: &Path, in_use: &InUse, pods: usize) -> u32 {
    let store = EmbeddedStore::new(store_dir);
    let mut refused = 0;
    let mut added = Vec::new();
    while added.len() < pods {
        let was_refused = match add_pod(data, in_use) {
            Some(ip) => {
                added.push(ip);
                false
            }
            None => {
                refused += 1;
                assert!(refused < 1000, "the pool is never topped up");
                true
            }
        };
        // Rounds less often than pods arrive: some ADDs find the pool empty.
        if was_refused || added.len() % 12 == 0 {
            sync(&store, data, in_use);
        }
    }
    // Back down, in an order that is not the order of addition.
    let mut order: Vec<usize> = (0..added.len()).collect();
    order.sort_by_key(|i| (i * 7919) % added.len());
    for (n, i) in order.into_iter().enumerate() {
        in_use.lock().expect("lock").remove(&added[i]);
        if n % 5 == 0 {
            sync(&store, data, in_use);
        }
    }
    // Two rounds: the first takes surplus blocks out of the pool, the second
    // releases them.
    for _ in 0..3 {
        sync(&store, data, in_use);
    }
    refused
}

/// No block twice (list_pods refuses it), and every pod's address in a block of
/// its own node. Holds every node's pod set (so no ADD runs) while it reads the
/// store: a snapshot of both at one instant.
fn check(store: &dyn Store, nodes: &BTreeMap<String, &InUse>) {
    let held: BTreeMap<&String, std::sync::MutexGuard<'_, BTreeSet<Ipv4Addr>>> = nodes
        .iter()
        .map(|(n, u)| (n, u.lock().expect("lock")))
        .collect();
    let records = list_pods(store).expect("no block held twice");
    for r in &records {
        let Some(in_use) = held.get(&r.node) else {
            continue;
        };
        let blocks: BTreeSet<Ipv4Addr> =
            r.blocks.iter().flat_map(|b| block_addresses(*b)).collect();
        for ip in in_use.iter() {
            assert!(
                blocks.contains(ip),
                "pod address {ip} of {} outside its blocks",
                r.node
            );
        }
    }
}

#[test]
fn three_nodes_scale_to_250_pods_and_back_while_a_fourth_joins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("cluster");
    let data = |n: &str| dir.path().join(n);
    let store = EmbeddedStore::new(&store_dir);
    let names = ["n0", "n1", "n2", "n3"];
    for n in &names[..3] {
        join_node(&store, n, &data(n));
    }
    let in_use: Vec<InUse> = names.iter().map(|_| Mutex::new(BTreeSet::new())).collect();
    let map: BTreeMap<String, &InUse> = names
        .iter()
        .map(|n| n.to_string())
        .zip(in_use.iter())
        .collect();
    let done = AtomicBool::new(false);
    let checks = AtomicU32::new(0);
    let refused: u32 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|i| {
                let (store_dir, d, u) = (&store_dir, data(names[i]), &in_use[i]);
                s.spawn(move || scale(store_dir, &d, u, MAX_PODS as usize))
            })
            .collect();
        let late = {
            let (store_dir, d, u) = (&store_dir, data("n3"), &in_use[3]);
            s.spawn(move || {
                let store = EmbeddedStore::new(store_dir);
                // Join while the others are scaling.
                std::thread::sleep(std::time::Duration::from_millis(50));
                join_node(&store, "n3", &d);
                drop(store);
                scale(store_dir, &d, u, 100)
            })
        };
        let checker = s.spawn(|| {
            let store = EmbeddedStore::new(&store_dir);
            while !done.load(Ordering::Relaxed) {
                check(&store, &map);
                checks.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut total = 0;
        for w in workers {
            total += w.join().expect("worker");
        }
        total += late.join().expect("late node");
        done.store(true, Ordering::Relaxed);
        checker.join().expect("checker");
        total
    });
    check(&store, &map);
    assert!(checks.load(Ordering::Relaxed) > 0, "the checker ran");
    eprintln!("ADDs refused while a pool was topped up: {refused}");
    assert!(refused > 0, "the empty-pool path was exercised");
    // Nothing stranded: every node is back to its first block, the index
    // holds exactly the records' blocks.
    let records = list_pods(&store).expect("list");
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r.blocks.len(), 1, "{} kept {:?}", r.node, r.blocks);
        let pool = read_node_pool(&data(&r.node)).expect("read").expect("pool");
        assert_eq!(pool.pod_ips.len(), 15);
        assert!(pool.pod_subnet.expect("pod subnet").returning.is_empty());
    }
    let mut want: Vec<String> = records
        .iter()
        .map(|r| format!("blocks/pods/{}+16/{}", r.blocks[0], r.node))
        .collect();
    want.sort();
    let mut keys = store.list_keys("blocks/pods/").expect("keys");
    keys.sort();
    assert_eq!(keys, want);
    for n in names {
        leave_pods(&store, n).expect("leave").expect("held");
    }
    assert!(store.list_keys("blocks/pods/").expect("keys").is_empty());
    assert!(store.list_keys("podnodes/").expect("keys").is_empty());
}

#[test]
fn a_full_pod_subnet_refuses_the_next_batch_naming_the_subnet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::new(dir.path().join("cluster"));
    // A /26 has 2 eligible blocks.
    let p = |node: &str| PodJoin {
        node: node.to_string(),
        subnet_name: "small".into(),
        subnet: subnet("10.242.0.0/26"),
        allocation: Allocation::Dynamic,
        max_pods: MaxPods::new(MAX_PODS).expect("max"),
        lease: None,
    };
    join_pods(&store, &p("a")).expect("a");
    join_pods(&store, &p("b")).expect("b");
    let e = join_pods(&store, &p("c")).unwrap_err().to_string();
    assert!(
        e.starts_with("pod subnet small (10.242.0.0/26) is exhausted: node c needs 1 more"),
        "{e}"
    );
    assert!(e.contains("0 of its 2 blocks are free"), "{e}");
    let e = aksnet_store::podsubnet::grow(&store, "a", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pod subnet small (10.242.0.0/26) is exhausted: node a"),
        "{e}"
    );
}
