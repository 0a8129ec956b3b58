//! The plugin's read of `node-pool.json` at maxPods 250 (issue 16 item 5): one
//! read, one parse and one check that also builds the allocator's pool
//! (`node_pool::read_node_pool_addresses`), against the earlier path: the
//! checked read (`read_node_pool`) followed by `Pool::validate` of the same
//! addresses, which checked them a second time.
//!
//! Run: `cargo bench -p aksnet-ipam --bench node_pool`. CI only compiles it.

use std::net::{IpAddr, Ipv4Addr};

use aksnet_core::pool::{NodePool, NODE_POOL_VERSION};
use aksnet_ipam::node_pool::{read_node_pool, read_node_pool_addresses};
use divan::Bencher;
use ipnet::IpNet;

fn main() {
    divan::main();
}

/// A data directory holding a Node Subnet pool of maxPods 250 in a /23.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = u32::from(Ipv4Addr::new(10, 240, 0, 5));
    let pool = NodePool {
        version: NODE_POOL_VERSION,
        node: "aksnl-bench".into(),
        subnet_name: "aks-subnet".into(),
        subnet: "10.240.0.0/23".parse().expect("cidr"),
        node_ip: Ipv4Addr::new(10, 240, 0, 4),
        max_pods: 250,
        pod_ips: (0..250).map(|i| Ipv4Addr::from(base + i)).collect(),
        pod_subnet: None,
        overlay: None,
    };
    let text = serde_json::to_vec_pretty(&pool).expect("json");
    std::fs::write(dir.path().join("node-pool.json"), text).expect("write");
    dir
}

#[divan::bench]
fn read_once(b: Bencher) {
    let dir = data_dir();
    b.bench(|| read_node_pool_addresses(dir.path()).expect("read"));
}

#[divan::bench]
fn read_then_validate_again(b: Bencher) {
    let dir = data_dir();
    b.bench(|| {
        let pool = read_node_pool(dir.path()).expect("read").expect("pool");
        aksnet_core::allocator::Pool::Addresses {
            prefix: IpNet::V4(pool.pod_prefix()),
            addrs: pool.pod_ips.iter().copied().map(IpAddr::V4).collect(),
        }
        .validate()
        .expect("valid")
    });
}
