//! Micro-benchmark of a node join with 5,000 nodes already in the cluster
//! store (issue 7, item 2), for the in-memory store and the embedded
//! file store. One iteration is `join` of a new node (read the guard, list
//! and check all 5,000 reservations, pick 31 free addresses, one
//! compare-and-swap transaction) followed by its `leave`, which puts the
//! store back to 5,000 nodes; `list_nodes` alone is measured too.
//!
//! The 5,000 nodes (maxPods 30, 31 addresses each, in 10.0.0.0/14) are
//! written directly as reservation records and address-index keys after one
//! real join registered the subnet (faster than 5,000 real joins).
//!
//! Run: `cargo bench -p aksnet-store --bench join`. CI only compiles it.
//! Numbers from one run are in docs/benchmarks.md.

use std::net::Ipv4Addr;

use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_store::reservation::{join, leave, list_nodes, node_key, JoinRequest, NodeReservation};
use aksnet_store::{EmbeddedStore, MemStore, Op, Store};
use divan::Bencher;

fn main() {
    divan::main();
}

const NODES: usize = 5_000;
const MAX_PODS: u32 = 30;
const SUBNET: &str = "10.0.0.0/14";

fn request(node: &str) -> JoinRequest {
    JoinRequest {
        node: node.to_string(),
        subnet_name: "aks-subnet".to_string(),
        subnet: NodeSubnet::new(SUBNET.parse().expect("cidr")).expect("subnet"),
        max_pods: MaxPods::new(MAX_PODS).expect("maxPods"),
        in_use: Default::default(),
        lease: None,
    }
}

/// Fills `store` with `NODES` reservations: node 0 through `join` (which
/// registers the subnet), the rest as records with consecutive address blocks
/// after node 0's.
fn fill<S: Store>(store: &S) {
    let first = join(store, &request("aks-node-0"))
        .expect("first join")
        .reservation()
        .clone();
    let per_node = MAX_PODS + 1;
    let start = u32::from(first.node_ip) + per_node;
    let subnet = SUBNET.parse().expect("cidr");
    let mut ops = Vec::with_capacity(500);
    for i in 1..NODES as u32 {
        let base = start + (i - 1) * per_node;
        let r = NodeReservation {
            node: format!("aks-node-{i}"),
            subnet_name: "aks-subnet".into(),
            subnet,
            node_ip: Ipv4Addr::from(base),
            max_pods: MAX_PODS,
            pod_ips: (1..per_node).map(|j| Ipv4Addr::from(base + j)).collect(),
            pod_subnet: None,
            overlay: false,
            lease: None,
        };
        ops.push(Op::Put {
            key: node_key(&r.node),
            value: serde_json::to_vec(&r).expect("serialise reservation"),
        });
        ops.extend(
            aksnet_store::blocks::block_keys(&r)
                .into_iter()
                .map(|key| Op::Put {
                    key,
                    value: Vec::new(),
                }),
        );
        // Batches keep each transaction (and the embedded store's rewrite) bounded.
        if ops.len() >= 500 {
            assert!(store.txn(&[], &ops).expect("fill"));
            ops.clear();
        }
    }
    if !ops.is_empty() {
        assert!(store.txn(&[], &ops).expect("fill"));
    }
    assert_eq!(list_nodes(store).expect("list").len(), NODES);
}

fn join_and_leave<S: Store>(store: &S) {
    let out = join(store, &request("aks-node-new")).expect("join");
    assert_eq!(out.reservation().pod_ips.len(), MAX_PODS as usize);
    leave(store, "aks-node-new").expect("leave");
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn mem_join_and_leave_at_5000_nodes(bencher: Bencher) {
    let store = MemStore::new();
    fill(&store);
    bencher.bench_local(|| join_and_leave(&store));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn mem_list_nodes_at_5000_nodes(bencher: Bencher) {
    let store = MemStore::new();
    fill(&store);
    bencher.bench_local(|| list_nodes(&store).expect("list").len());
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn embedded_join_and_leave_at_5000_nodes(bencher: Bencher) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::new(dir.path());
    fill(&store);
    bencher.bench_local(|| join_and_leave(&store));
}
