//! The node's reserved/used/free pod addresses in each model (issue 14, item 3), from the
//! files the plugin reads and the IPAM state it writes: a kubenet conflist's ranges, a
//! nodesubnet pool, a Pod Subnet pool with its blocks; and as the metrics render them.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use aksnet_agent::metrics::{Metrics, Scrape};
use aksnet_agent::pod_addresses::{
    from_kubenet_conf, from_node_pool, BlockUsage, PodAddressError, PoolUsage,
};
use aksnet_core::allocator::{AllocationMeta, AttachmentKey, Pool, Range};
use aksnet_core::podsubnet::Allocation;
use aksnet_core::pool::{
    NodePool, OverlayPool, PodSubnetPool, NODE_POOL_VERSION, NODE_POOL_VERSION_OVERLAY,
    NODE_POOL_VERSION_POD_SUBNET,
};
use aksnet_ipam::{IpamError, IpamStore};

/// Allocates one address per container of `pool` in `network`'s state, as the plugin's
/// ADD does (one IPAM transaction each).
fn allocate(data_dir: &Path, network: &str, pool: Pool, containers: &[&str]) {
    let pool = pool.validate().unwrap();
    let store = IpamStore::open(data_dir, network).unwrap();
    for c in containers {
        let key = AttachmentKey::new(*c, "eth0");
        store
            .transact(|s| -> Result<_, IpamError> {
                Ok(s.allocate(&pool, &key, &[], AllocationMeta::default())?)
            })
            .unwrap();
    }
}

fn v4(a: &[Ipv4Addr]) -> Vec<IpAddr> {
    a.iter().copied().map(IpAddr::V4).collect()
}

fn node_pool(n: u8, pod_subnet: Option<PodSubnetPool>) -> NodePool {
    // Pod Subnet: the first /28 Azure leaves whole is .16; its first address is the node's.
    let (b, first) = if pod_subnet.is_some() {
        (241, 18)
    } else {
        (240, 5)
    };
    NodePool {
        version: if pod_subnet.is_some() {
            NODE_POOL_VERSION_POD_SUBNET
        } else {
            NODE_POOL_VERSION
        },
        node: "akskb-node-0".into(),
        subnet_name: "nodes".into(),
        subnet: "10.240.0.0/24".parse().unwrap(),
        node_ip: "10.240.0.4".parse().unwrap(),
        max_pods: if pod_subnet.is_some() { 30 } else { 10 },
        pod_ips: (0..n).map(|i| Ipv4Addr::new(10, b, 0, first + i)).collect(),
        pod_subnet,
        overlay: None,
    }
}

#[test]
fn nodesubnet_counts_the_pool_file_and_the_ipam_state() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(from_node_pool(dir.path()).unwrap(), None, "not joined yet");
    let pool = node_pool(10, None);
    aksnet_store::local_pool::write_node_pool(dir.path(), &pool).unwrap();
    let addrs = Pool::Addresses {
        prefix: "10.240.0.0/24".parse().unwrap(),
        addrs: v4(&pool.pod_ips),
    };
    allocate(dir.path(), "azure", addrs, &["c1", "c2", "c3"]);
    let u = from_node_pool(dir.path()).unwrap().unwrap();
    assert_eq!(
        (u.node.as_str(), u.mode, u.reserved, u.used, u.free()),
        ("akskb-node-0", "nodesubnet", 10, 3, 7)
    );
    assert_eq!(u.blocks, None);
}

#[test]
fn overlay_counts_the_nodes_block_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let block: ipnet::Ipv4Net = "10.250.3.0/24".parse().unwrap();
    let pool = NodePool {
        version: NODE_POOL_VERSION_OVERLAY,
        max_pods: 250,
        pod_ips: (1..=250).map(|i| Ipv4Addr::new(10, 250, 3, i)).collect(),
        overlay: Some(OverlayPool {
            cluster_pod_cidr: "10.250.0.0/16".parse().unwrap(),
            pod_cidr: block,
        }),
        ..node_pool(1, None)
    };
    aksnet_store::local_pool::write_node_pool(dir.path(), &pool).unwrap();
    let addrs = Pool::Addresses {
        prefix: block.into(),
        addrs: v4(&pool.pod_ips),
    };
    allocate(dir.path(), "overlay", addrs, &["c1", "c2"]);
    let u = from_node_pool(dir.path()).unwrap().unwrap();
    assert_eq!(
        (u.mode, u.reserved, u.used, u.free()),
        ("overlay", 250, 2, 248)
    );
    assert_eq!(u.blocks, None);
}

#[test]
fn podsubnet_counts_its_block_addresses_and_reports_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let pod_subnet = PodSubnetPool {
        name: "pods".into(),
        cidr: "10.241.0.0/16".parse().unwrap(),
        allocation: Allocation::Dynamic,
        blocks: vec![Ipv4Addr::new(10, 241, 0, 16), Ipv4Addr::new(10, 241, 0, 32)],
        returning: vec![Ipv4Addr::new(10, 241, 0, 32)],
    };
    let pool = node_pool(8, Some(pod_subnet));
    aksnet_store::local_pool::write_node_pool(dir.path(), &pool).unwrap();
    let addrs = Pool::Addresses {
        prefix: "10.241.0.0/16".parse().unwrap(),
        addrs: v4(&pool.pod_ips),
    };
    allocate(dir.path(), "azure", addrs, &["c1", "c2"]);
    // An address of the returning block, still held by a pod from before: not in podIps.
    let stale = Pool::Addresses {
        prefix: "10.241.0.0/16".parse().unwrap(),
        addrs: vec!["10.241.0.33".parse().unwrap()],
    };
    allocate(dir.path(), "azure", stale, &["old"]);
    let u = from_node_pool(dir.path()).unwrap().unwrap();
    assert_eq!(
        (u.mode, u.reserved, u.used, u.free()),
        ("podsubnet", 8, 2, 6)
    );
    let blocks = BlockUsage {
        subnet: "pods".into(),
        held: 2,
        returning: 1,
    };
    assert_eq!(u.blocks, Some(blocks));
}

const KUBENET: &str = r#"{"cniVersion": "1.0.0", "name": "akskbnet", "plugins": [
  {"type": "aksnet-cni", "mode": "kubenet", "bridge": "akskbbr", "dataDir": "DATA",
   "ipam": {"ranges": [[{"subnet": "10.244.1.0/29"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}"#;

#[test]
fn kubenet_counts_the_conflist_ranges_and_the_ipam_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let conf = dir.path().join("10-aksnet.conflist");
    assert_eq!(from_kubenet_conf(&conf, "n").unwrap(), None, "no conflist");
    let text = KUBENET.replace("DATA", data.to_str().unwrap());
    std::fs::write(&conf, text).unwrap();
    // A /29 as host-local hands it out: not .0 (network), .1 (gateway), .7 (broadcast).
    let u = from_kubenet_conf(&conf, "akskb-node-1").unwrap().unwrap();
    assert_eq!((u.mode, u.reserved, u.used, u.free()), ("kubenet", 5, 0, 5));
    assert!(!data.exists(), "looking created the data directory");
    let ranges = Pool::Ranges(vec![vec![Range::subnet("10.244.1.0/29".parse().unwrap())]]);
    allocate(&data, "akskbnet", ranges, &["c1", "c2"]);
    // Another network's state in the same directory does not count.
    let other = Pool::Ranges(vec![vec![Range::subnet("10.244.9.0/29".parse().unwrap())]]);
    allocate(&data, "other", other, &["c9"]);
    let u = from_kubenet_conf(&conf, "akskb-node-1").unwrap().unwrap();
    let want = PoolUsage {
        node: "akskb-node-1".into(),
        mode: "kubenet",
        reserved: 5,
        used: 2,
        blocks: None,
    };
    assert_eq!(u, want);
    // A single plugin `.conf` with host-local's single-range shorthand, IPAM dataDir.
    let single = dir.path().join("10-aksnet.conf");
    let text = format!(
        r#"{{"cniVersion": "0.4.0", "name": "akskbnet", "type": "aksnet-cni", "mode": "kubenet",
            "ipam": {{"type": "host-local", "subnet": "10.244.1.0/29", "dataDir": "{}"}}}}"#,
        data.display()
    );
    std::fs::write(&single, text).unwrap();
    assert_eq!(
        from_kubenet_conf(&single, "akskb-node-1").unwrap().unwrap(),
        want
    );
}

#[test]
fn a_bad_kubenet_conflist_is_named_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("10-aksnet.conflist");
    let cases = [
        (
            KUBENET.replace("10.244.1.0/29", "10.244.1.300/29"),
            "plugins[0].ipam.ranges = [[{\"subnet\":\"10.244.1.300/29\"}]]",
        ),
        (
            KUBENET.replace(
                "\"10.244.1.0/29\"}",
                "\"10.244.1.0/29\", \"rangeStart\": \"10.244.2.1\"}",
            ),
            "plugins[0].ipam: ranges[0][0].rangeStart 10.244.2.1",
        ),
        (
            KUBENET.replace("aksnet-cni", "bridge"),
            "no aksnet-cni entry",
        ),
        (
            KUBENET.replace("\"kubenet\"", "\"nodesubnet\""),
            "plugins[0].mode = nodesubnet",
        ),
        ("{\"plugins\": 3}".to_string(), "field plugins = 3"),
    ];
    for (text, want) in cases {
        std::fs::write(&conf, text.replace("DATA", "/nonexistent/akskb")).unwrap();
        let e = from_kubenet_conf(&conf, "n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&conf.display().to_string()) && msg.contains(want),
            "{want:?} not in {msg}"
        );
        assert!(!matches!(e, PodAddressError::Ipam(_)), "{e:?}");
    }
}

#[test]
fn the_metrics_show_each_model_and_the_blocks() {
    let usage = PoolUsage {
        node: "akskb-node-0".into(),
        mode: "podsubnet",
        reserved: 8,
        used: 2,
        blocks: Some(BlockUsage {
            subnet: "pods".into(),
            held: 1,
            returning: 1,
        }),
    };
    let text = Metrics::default().render(&Scrape {
        pool: Some(usage),
        ..Scrape::default()
    });
    for line in [
        "# TYPE aksnet_node_pod_addresses gauge",
        r#"aksnet_node_pod_addresses{node="akskb-node-0",mode="podsubnet",state="reserved"} 8"#,
        r#"aksnet_node_pod_addresses{node="akskb-node-0",mode="podsubnet",state="used"} 2"#,
        r#"aksnet_node_pod_addresses{node="akskb-node-0",mode="podsubnet",state="free"} 6"#,
        r#"aksnet_node_pod_subnet_blocks{node="akskb-node-0",subnet="pods",state="held"} 1"#,
        r#"aksnet_node_pod_subnet_blocks{node="akskb-node-0",subnet="pods",state="returning"} 1"#,
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line} in\n{text}"
        );
    }
}
