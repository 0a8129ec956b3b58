//! `aksnet node join` under `umask 000` and against planted symlinks, through the real
//! binary (issue 10, item 5): the data and store directories are 0700, every file in them
//! 0600, and a symlink at the pool file's temp path is never written through.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

fn join_with_umask_000(store: &Path, data: &Path, node: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .args(["node", "join", "--node", node, "--subnet", "10.240.0.0/24"])
        .args(["--max-pods", "30", "--store"])
        .arg(store)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

#[test]
fn node_join_under_umask_000_creates_0700_dirs_and_0600_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("cluster");
    let data = tmp.path().join("nodes").join("n1");
    let out = join_with_umask_000(&store, &data, "n1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mode(&tmp.path().join("nodes")),
        0o755,
        "parent created on the way"
    );
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("node-pool.json")), 0o600, "node pool");
    assert_eq!(mode(&store), 0o700, "store dir");
    for entry in fs::read_dir(&store).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    for entry in fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn node_join_refuses_a_world_writable_data_dir_and_a_linked_pool_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("cluster");
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).unwrap();
    let out = join_with_umask_000(&store, &data, "n1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&data.display().to_string()) && err.contains("0777"),
        "{err}"
    );
    assert!(!data.join("node-pool.json").exists());

    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    symlink(&victim, data.join("node-pool.json")).unwrap();
    let out = join_with_umask_000(&store, &data, "n1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}
