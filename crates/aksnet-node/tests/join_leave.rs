//! A node's join and leave through the library against a real embedded store and
//! a real IPAM state in temporary directories: what the pool file holds, that a
//! leave refuses while a pod holds an address and changes nothing, and that a
//! forced leave withdraws the node's answers before the store frees them.

use std::path::Path;
use std::time::Duration;

use aksnet_core::allocator::{AllocationMeta, AttachmentKey};
use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_core::podsubnet::Allocation;
use aksnet_ipam::node_pool::read_node_pool_addresses;
use aksnet_ipam::{IpamError, IpamStore};
use aksnet_node::join::{join, NodeJoin, PodPlace, SubnetShare};
use aksnet_node::pods::PodSubnetJoin;
use aksnet_node::{leave, LeaveEvent, LeaveRequest, NodeError, StoreOptions};
use aksnet_store::{list_nodes, EmbeddedStore, JoinOutcome, ReservationError, StoreSpec};

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        store: StoreSpec::Embedded(dir.join("cluster")),
        etcd_cacert: None,
        etcd_cert: None,
        etcd_key: None,
        etcd_user: None,
        etcd_password_file: None,
        store_timeout: Duration::from_secs(10),
    }
}

fn subnet(cidr: &str) -> NodeSubnet {
    NodeSubnet::new(cidr.parse().expect("cidr")).expect("subnet")
}

fn request(node: &str, data_dir: &Path, pods: PodPlace) -> NodeJoin {
    NodeJoin {
        node: node.into(),
        data_dir: data_dir.to_path_buf(),
        subnet: Some(SubnetShare {
            name: "aks-subnet".into(),
            subnet: subnet("10.240.0.0/24"),
            max_pods: MaxPods::new(10).expect("maxPods"),
            pods,
        }),
        pod_cidr: None,
        lease_ttl: None,
    }
}

/// Records each leave event's name, in order.
fn record(events: &mut Vec<String>) -> impl FnMut(LeaveEvent<'_>) + '_ {
    move |e| {
        let text = format!("{e:?}");
        let name = text.split([' ', '(', '{']).next().unwrap_or_default();
        events.push(name.to_string());
    }
}

fn no_undo(node: &str, e: &ReservationError) {
    panic!("no undo expected, got one for {node}: {e}");
}

#[test]
fn join_writes_the_pool_and_leave_refuses_then_forces_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("aksnl-node-a");
    let opts = options(tmp.path());
    let req = request("aksnl-a", &data, PodPlace::NodeSubnet);
    let (_, report) = join(&opts, &req, &mut no_undo).expect("join");
    let joined = report.subnet.expect("node subnet share");
    assert!(matches!(joined.outcome, JoinOutcome::Joined(_)));
    let (pool, addresses) = read_node_pool_addresses(&data)
        .expect("read")
        .expect("pool");
    assert_eq!((pool.node.as_str(), pool.pod_ips.len()), ("aksnl-a", 10));
    assert_eq!(addresses.capacity(), 10);

    // A pod takes an address of the pool.
    IpamStore::open(&data, "aksnl")
        .expect("ipam")
        .transact(|s| -> Result<_, IpamError> {
            Ok(s.allocate(
                &addresses,
                &AttachmentKey::new("aksnl-pod", "eth0"),
                &[],
                AllocationMeta::default(),
            )?)
        })
        .expect("allocate");

    let mut events = Vec::new();
    let req = LeaveRequest {
        node: "aksnl-a",
        data_dir: &data,
        force: false,
    };
    let e = leave(&opts, &req, &mut record(&mut events)).expect_err("pods present");
    assert!(matches!(e, NodeError::PodsPresent { count: 1, .. }), "{e}");
    assert!(events.is_empty(), "{events:?}");
    let store = EmbeddedStore::new(tmp.path().join("cluster"));
    assert_eq!(
        list_nodes(&store).expect("list").len(),
        1,
        "nothing changed"
    );
    assert!(read_node_pool_addresses(&data).expect("read").is_some());

    let forced = LeaveRequest { force: true, ..req };
    leave(&opts, &forced, &mut record(&mut events)).expect("forced leave");
    assert_eq!(
        events,
        ["ForcedWithPods", "WithdrawAnswers", "Left"],
        "the answers go before the store frees the addresses"
    );
    assert!(list_nodes(&store).expect("list").is_empty());
    assert!(read_node_pool_addresses(&data).expect("read").is_none());
}

#[test]
fn a_pod_subnet_node_gets_its_blocks_and_returns_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("aksnl-node-p");
    let opts = options(tmp.path());
    let pods = PodPlace::PodSubnet(PodSubnetJoin {
        subnet_name: "pod-subnet".into(),
        subnet: subnet("10.241.0.0/24"),
        allocation: Allocation::Static,
    });
    let (_, report) = join(&opts, &request("aksnl-p", &data, pods), &mut no_undo).expect("join");
    let blocks = report.subnet.and_then(|s| s.pods).expect("blocks").blocks;
    assert_eq!(blocks.len(), 1);
    let (pool, _) = read_node_pool_addresses(&data)
        .expect("read")
        .expect("pool");
    assert_eq!((pool.model(), pool.pod_ips.len()), ("podsubnet", 10));

    let mut events = Vec::new();
    let req = LeaveRequest {
        node: "aksnl-p",
        data_dir: &data,
        force: false,
    };
    leave(&opts, &req, &mut record(&mut events)).expect("leave");
    assert_eq!(events, ["WithdrawAnswers", "BlocksReturned", "Left"]);
    // Leaving again: nothing to release.
    events.clear();
    leave(&opts, &req, &mut record(&mut events)).expect("leave again");
    assert_eq!(events, ["NotJoined"]);
}
