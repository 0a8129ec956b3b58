//! The IPAM store against planted symlinks and a zero umask (issue 10, item 5): a link at
//! the temp path, the state path or the lock path is never written through, and the files
//! get 0700/0600 whatever the umask.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::Command;

use aksnet_core::allocator::{AllocationMeta, AttachmentKey, Pool, Range, ValidPool};
use aksnet_ipam::{IpamError, IpamStore};

const HELPER: &str = env!("CARGO_BIN_EXE_aksnet-ipam-stress");
const EMPTY_STATE: &str =
    "{\"kind\":\"aksnet-ipam-state\",\"version\":1,\"network\":\"kubenet\"}\n";

fn pool() -> ValidPool {
    Pool::Ranges(vec![vec![Range::subnet("10.244.1.0/24".parse().unwrap())]])
        .validate()
        .unwrap()
}

fn alloc(store: &IpamStore, id: &str) -> Result<IpAddr, IpamError> {
    store.transact(|s| -> Result<_, IpamError> {
        let key = AttachmentKey::new(id, "eth0");
        Ok(s.allocate(&pool(), &key, &[], AllocationMeta::default())?[0].ip)
    })
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn symlink_at_the_temp_path_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let store = IpamStore::open(&data, "kubenet").unwrap();
    // The temp name of every aksnet version: the old fixed one and this process's first
    // unique ones.
    symlink(&victim, data.join(".kubenet.json.tmp")).unwrap();
    let pid = std::process::id();
    for seq in 0..8 {
        symlink(&victim, data.join(format!(".kubenet.json.{pid}.{seq}.tmp"))).unwrap();
    }
    for i in 0..4 {
        let _ = alloc(&store, &format!("c{i}"));
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let st = fs::symlink_metadata(data.join("kubenet.json")).unwrap();
    assert!(st.file_type().is_file(), "the state file became a link");
    assert_eq!(store.snapshot().unwrap().held(), 4);
}

#[test]
fn symlink_at_the_state_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let victim = tmp.path().join("victim.json");
    fs::write(&victim, EMPTY_STATE).unwrap();
    let store = IpamStore::open(&data, "kubenet").unwrap();
    let state = data.join("kubenet.json");
    symlink(&victim, &state).unwrap();
    let e = alloc(&store, "a").unwrap_err();
    assert!(
        e.to_string().contains(&state.display().to_string()) && e.to_string().contains("link"),
        "{e}"
    );
    let e = store.snapshot().unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(fs::symlink_metadata(&state)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&victim).unwrap(), EMPTY_STATE);
}

#[test]
fn symlinked_lock_file_is_refused_and_nothing_is_created_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    let victim = tmp.path().join("victim-created-through-link");
    symlink(&victim, data.join("kubenet.lock")).unwrap();
    let e = IpamStore::open(&data, "kubenet").unwrap_err();
    assert!(e.to_string().contains("kubenet.lock"), "{e}");
    assert!(
        !victim.exists(),
        "the lock file was created through the link"
    );
}

#[test]
fn a_fifo_at_the_state_path_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let store = IpamStore::open(tmp.path(), "kubenet").unwrap();
    let state = tmp.path().join("kubenet.json");
    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = store.snapshot().unwrap_err();
    assert!(e.to_string().contains("FIFO"), "{e}");
}

#[test]
fn a_zero_umask_still_gives_0700_and_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nodes").join("n1");
    fs::create_dir(tmp.path().join("markers")).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(HELPER)
        .arg("cycles")
        .arg(&data)
        .args(["kubenet", "10.244.1.0/24", "u", "3"])
        .arg(tmp.path().join("markers"))
        .arg(tmp.path().join("log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("kubenet.json")), 0o600, "state file");
    assert_eq!(mode(&data.join("kubenet.lock")), 0o600, "lock file");
}
