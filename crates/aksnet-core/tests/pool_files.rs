//! The node pool file and the cluster store's node record as aksnet writes them
//! today (fixtures written by `aksnet node join` into an embedded store: one node
//! of each model) still parse, pass the one validator and are written back byte
//! for byte.

use aksnet_core::allocator::Pool;
use aksnet_core::pool::{parse_node_pool, NodePool, NodeRecord};
use ipnet::IpNet;
use std::net::IpAddr;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn todays_pool_files_parse_validate_and_round_trip() {
    for (name, model, version) in [
        ("node-pool-v1.json", "nodesubnet", 1),
        ("node-pool-v2-static.json", "podsubnet", 2),
        ("node-pool-v2-dynamic.json", "podsubnet", 2),
        ("node-pool-v3-overlay.json", "overlay", 3),
    ] {
        let text = fixture(name);
        let pool = parse_node_pool(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((pool.model(), pool.version), (model, version), "{name}");
        let mut back = serde_json::to_string_pretty(&pool).expect("json");
        back.push('\n');
        assert_eq!(back, text, "{name} is written back as it was");
        // The plugin's pool, checked once, is the one the allocator's own
        // validation builds from the same addresses.
        let checked = pool.address_pool().expect("address pool");
        let by_allocator = Pool::Addresses {
            prefix: IpNet::V4(pool.pod_prefix()),
            addrs: pool.pod_ips.iter().copied().map(IpAddr::V4).collect(),
        }
        .validate()
        .expect("allocator validates");
        assert_eq!(checked, by_allocator, "{name}");
    }
}

#[test]
fn todays_store_records_parse_validate_and_round_trip() {
    for name in ["ns", "ps", "pd", "ov"] {
        let text = fixture(&format!("reservation-{name}.json"));
        let r: NodeRecord = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        r.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serde_json::to_string(&r).expect("json"), text, "{name}");
    }
    // A record on an etcd lease.
    let leased = fixture("reservation-ns.json").replace("]}", "],\"lease\":7587}");
    let r: NodeRecord = serde_json::from_str(&leased).expect("leased record");
    assert_eq!(r.lease, Some(7587));
    assert_eq!(serde_json::to_string(&r).expect("json"), leased);
    // Unknown fields are refused, as they always were.
    let odd = fixture("reservation-ns.json").replace("]}", "],\"extra\":1}");
    assert!(serde_json::from_str::<NodeRecord>(&odd).is_err());
}

#[test]
fn a_bad_record_names_the_field_and_value() {
    let text = fixture("reservation-ns.json");
    let mut r: NodeRecord = serde_json::from_str(&text).expect("record");
    r.pod_ips[3] = "10.240.0.255".parse().expect("ip");
    let e = r.validate().expect_err("broadcast").to_string();
    assert!(e.contains("field podIps = 10.240.0.255"), "{e}");
    r.pod_ips.pop();
    let e = r.validate().expect_err("short").to_string();
    assert!(e.contains("field podIps = 9 addresses"), "{e}");
    let mut p: NodePool =
        serde_json::from_str(&fixture("node-pool-v2-dynamic.json")).expect("pool");
    p.pod_ips.push("10.241.0.32".parse().expect("ip"));
    let e = p.validate().expect_err("block's first address").to_string();
    assert!(e.contains("field podIps = 10.241.0.32"), "{e}");
    let mut p: NodePool =
        serde_json::from_str(&fixture("node-pool-v3-overlay.json")).expect("pool");
    p.pod_ips[0] = "192.168.0.251".parse().expect("ip");
    let e = p.validate().expect_err("past 250").to_string();
    assert!(e.contains("field podIps = 192.168.0.251"), "{e}");
}
