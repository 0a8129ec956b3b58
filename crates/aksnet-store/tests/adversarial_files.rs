//! The embedded cluster store and `node-pool.json` against planted symlinks (issue 10,
//! item 5): a link at a temp path, a state path or the lock path is never written
//! through. The umask side is tested through the real `aksnet node join`
//! (crates/aksnet/tests/adversarial_files.rs).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::symlink;
use std::path::Path;

use aksnet_core::pool::{NodePool, NODE_POOL_VERSION};
use aksnet_store::local_pool::{read_node_pool, write_node_pool};
use aksnet_store::{EmbeddedStore, Op, Store};

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.to_string(),
        value: v.as_bytes().to_vec(),
    }
}

fn pool() -> NodePool {
    NodePool {
        version: NODE_POOL_VERSION,
        node: "n1".into(),
        subnet_name: "aks-subnet".into(),
        subnet: "10.240.0.0/24".parse().unwrap(),
        node_ip: Ipv4Addr::new(10, 240, 0, 4),
        max_pods: 10,
        pod_ips: (5..15).map(|d| Ipv4Addr::new(10, 240, 0, d)).collect(),
        pod_subnet: None,
        overlay: None,
    }
}

/// Links at the old fixed temp name and at this process's first unique temp names.
fn plant_temp_links(dir: &Path, name: &str, victim: &Path) {
    symlink(victim, dir.join(format!(".{name}.tmp"))).unwrap();
    let pid = std::process::id();
    for seq in 0..8 {
        symlink(victim, dir.join(format!(".{name}.{pid}.{seq}.tmp"))).unwrap();
    }
}

#[test]
fn embedded_store_never_writes_through_a_temp_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let s = EmbeddedStore::new(&dir);
    assert!(s.txn(&[], &[put("a", "1")]).unwrap());
    plant_temp_links(&dir, "state.json", &victim);
    for i in 0..4 {
        let _ = s.txn(&[], &[put("a", &i.to_string())]);
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(fs::symlink_metadata(s.state_path())
        .unwrap()
        .file_type()
        .is_file());
}

#[test]
fn embedded_store_refuses_a_linked_state_file_and_lock_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let victim = tmp.path().join("victim.json");
    fs::write(&victim, "{\"version\":1,\"revision\":0,\"keys\":{}}\n").unwrap();
    let s = EmbeddedStore::new(&dir);
    assert!(s.txn(&[], &[put("a", "1")]).unwrap());
    fs::remove_file(s.state_path()).unwrap();
    symlink(&victim, s.state_path()).unwrap();
    let e = s.txn(&[], &[put("a", "2")]).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = s.get("a").unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(fs::symlink_metadata(s.state_path())
        .unwrap()
        .file_type()
        .is_symlink());

    let lock_victim = tmp.path().join("lock-victim");
    fs::remove_file(s.state_path()).unwrap();
    fs::remove_file(dir.join("lock")).unwrap();
    symlink(&lock_victim, dir.join("lock")).unwrap();
    let e = s.txn(&[], &[put("a", "3")]).unwrap_err();
    assert!(e.to_string().contains("lock"), "{e}");
    assert!(!lock_victim.exists(), "lock file created through the link");
}

#[test]
fn node_pool_never_writes_through_links() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    write_node_pool(&data, &pool()).unwrap();
    plant_temp_links(&data, "node-pool.json", &victim);
    let _ = write_node_pool(&data, &pool());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let path = data.join("node-pool.json");
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());

    fs::remove_file(&path).unwrap();
    let other = tmp.path().join("other.json");
    fs::write(&other, serde_json::to_vec(&pool()).unwrap()).unwrap();
    symlink(&other, &path).unwrap();
    let e = write_node_pool(&data, &pool()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = read_node_pool(&data).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
}
