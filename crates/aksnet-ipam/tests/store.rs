//! The IPAM store against a real file system: persistence, atomic writes, corruption
//! handling, locking, GC traps (docs/prior-art.md#host-local) and the listing used by
//! `aksnet node leave`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use aksnet_core::allocator::{AllocError, AllocationMeta, AttachmentKey, Pool, Range, ValidPool};
use aksnet_fs::{FileKind, FsError};
use aksnet_ipam::{allocated_addresses, HeldAddress, IpamError, IpamStore};

fn pool(subnet: &str) -> ValidPool {
    Pool::Ranges(vec![vec![Range::subnet(subnet.parse().expect("subnet"))]])
        .validate()
        .expect("pool")
}
fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}
fn key(id: &str) -> AttachmentKey {
    AttachmentKey::new(id, "eth0")
}
fn alloc(store: &IpamStore, p: &ValidPool, id: &str) -> Result<IpAddr, IpamError> {
    store.transact(|s| -> Result<_, IpamError> {
        Ok(s.allocate(p, &key(id), &[], AllocationMeta::default())?[0].ip)
    })
}
fn release(store: &IpamStore, id: &str) -> Vec<IpAddr> {
    store
        .transact(|s| -> Result<_, IpamError> { Ok(s.release(&key(id))) })
        .expect("release")
}
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn allocations_persist_across_opens_and_file_has_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.244.1.0/24");
    let store = IpamStore::open(tmp.path(), "kubenet").expect("open");
    assert_eq!(alloc(&store, &p, "a").expect("a"), ip("10.244.1.2"));
    assert_eq!(alloc(&store, &p, "b").expect("b"), ip("10.244.1.3"));
    // Only the state and the lock file: no temp file left behind.
    assert_eq!(names(tmp.path()), vec!["kubenet.json", "kubenet.lock"]);

    let again = IpamStore::open(tmp.path(), "kubenet").expect("reopen");
    let snap = again.snapshot().expect("snapshot");
    assert_eq!(snap.get(&key("a")).expect("a held")[0].ip, ip("10.244.1.2"));
    // Round-robin cursor persisted: the next address is .4, not .2 again.
    release(&again, "a");
    assert_eq!(alloc(&again, &p, "c").expect("c"), ip("10.244.1.4"));

    let text = fs::read_to_string(tmp.path().join("kubenet.json")).expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["kind"], "aksnet-ipam-state");
    assert_eq!(v["version"], 1);
    assert_eq!(v["network"], "kubenet");
    assert_eq!(v["cursors"][0]["lastReserved"], "10.244.1.4");
    assert_eq!(v["recentlyReleased"][0], "10.244.1.2");
    assert_eq!(v["allocations"][0]["containerId"], "b");
}

/// The bytes of the state file, as docs and tools (`jq`, `grep`) rely on them: field
/// order, one allocation per line, metadata beside the key, absent metadata left out.
/// Files written before the records were serialised without serde's `flatten` read the
/// same.
#[test]
fn the_state_file_layout_is_byte_for_byte_the_documented_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.244.1.0/24");
    let store = IpamStore::open(tmp.path(), "kubenet").expect("open");
    let meta = AllocationMeta {
        pod_namespace: Some("default".into()),
        pod_name: Some("web-0".into()),
        created_unix: 1_767_225_600,
    };
    store
        .transact(|s| -> Result<_, IpamError> {
            s.allocate(&p, &key("b"), &[], meta.clone())?;
            s.allocate(&p, &key("a"), &[], AllocationMeta::default())?;
            Ok(())
        })
        .expect("allocate");
    let text = fs::read_to_string(tmp.path().join("kubenet.json")).expect("read");
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let expected = format!(
        "{{\"kind\":\"aksnet-ipam-state\",\"version\":1,\"network\":\"kubenet\",\n\
         \"cursors\":[{{\"set\":0,\"lastReserved\":\"10.244.1.3\"}}],\"bootId\":\"{}\",\n\
         \"recentlyReleased\":[],\n\
         \"allocations\":[\n\
         {{\"containerId\":\"a\",\"ifname\":\"eth0\",\"ips\":[{{\"ip\":\"10.244.1.3\",\"set\":0}}],\"createdUnix\":0}},\n\
         {{\"containerId\":\"b\",\"ifname\":\"eth0\",\"ips\":[{{\"ip\":\"10.244.1.2\",\"set\":0}}],\
         \"podNamespace\":\"default\",\"podName\":\"web-0\",\"createdUnix\":1767225600}}\n\
         ]}}\n",
        boot.trim()
    );
    assert_eq!(text, expected);
    // Read back: the metadata is where it was written.
    let snap = store.snapshot().expect("snapshot");
    assert_eq!(snap.meta(&key("b")), Some(&meta));
    assert_eq!(snap.meta(&key("a")), Some(&AllocationMeta::default()));
    // A record with its metadata fields in another order, or without them, still reads.
    let other_order = text
        .replace(
            "\"podNamespace\":\"default\",\"podName\":\"web-0\",\"createdUnix\":1767225600",
            "\"createdUnix\":1767225600,\"podName\":\"web-0\",\"podNamespace\":\"default\"",
        )
        .replace(",\"createdUnix\":0", "");
    assert_ne!(other_order, text);
    fs::write(tmp.path().join("kubenet.json"), &other_order).expect("rewrite");
    let snap = store.snapshot().expect("snapshot of reordered fields");
    assert_eq!(snap.meta(&key("b")), Some(&meta));
    assert_eq!(snap.meta(&key("a")), Some(&AllocationMeta::default()));
}

#[test]
fn unchanged_state_is_not_rewritten_and_changes_replace_the_inode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    // Nothing changed, nothing written: not even an empty file.
    store
        .transact(|s| -> Result<_, IpamError> { Ok(s.release(&key("nobody"))) })
        .expect("noop");
    assert!(!store.state_path().exists());
    alloc(&store, &p, "a").expect("a");
    let ino = fs::metadata(store.state_path()).expect("stat").ino();
    // Idempotent retry and lookups do not write.
    alloc(&store, &p, "a").expect("retry");
    store
        .transact(|s| -> Result<_, IpamError> { Ok(s.get(&key("a")).is_some()) })
        .expect("lookup");
    assert_eq!(fs::metadata(store.state_path()).expect("stat").ino(), ino);
    // A change is a rename of a new file over the old one.
    alloc(&store, &p, "b").expect("b");
    assert_ne!(fs::metadata(store.state_path()).expect("stat").ino(), ino);
}

#[test]
fn failed_closure_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    alloc(&store, &p, "a").expect("a");
    let before = fs::read(store.state_path()).expect("read");
    let res: Result<(), IpamError> = store.transact(|s| {
        s.allocate(&p, &key("b"), &[], AllocationMeta::default())?;
        // A later step of the same transaction fails: the allocation above is dropped.
        Err(IpamError::from(AllocError::NotInPool { ip: ip("1.2.3.4") }))
    });
    assert!(matches!(
        res,
        Err(IpamError::Alloc(AllocError::NotInPool { .. }))
    ));
    assert_eq!(fs::read(store.state_path()).expect("read"), before);
}

#[test]
fn exhaustion_and_unavailable_map_to_their_variants() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/30"); // one address: .2
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    alloc(&store, &p, "a").expect("a");
    let e = alloc(&store, &p, "b").expect_err("exhausted");
    assert!(
        matches!(
            e,
            IpamError::Alloc(AllocError::Exhausted {
                set: 0,
                capacity: 1,
                in_use: 1
            })
        ),
        "{e}"
    );
    let e = store
        .transact(|s| -> Result<_, IpamError> {
            Ok(s.allocate(&p, &key("c"), &[ip("10.0.0.2")], AllocationMeta::default())?)
        })
        .expect_err("taken");
    assert_eq!(
        e.to_string(),
        "requested address 10.0.0.2 is already held by a/eth0"
    );
    assert!(matches!(
        e,
        IpamError::Alloc(AllocError::Unavailable { .. })
    ));
}

fn write_state(dir: &Path, text: &str) {
    fs::write(dir.join("n.json"), text).expect("write state");
}

#[test]
fn corrupt_state_is_reported_with_path_and_position_and_never_reset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    let path = store.state_path().to_path_buf();
    type Expect = Box<dyn Fn(&IpamError) -> bool>;
    let cases: Vec<(&str, Expect)> = vec![
        // Truncated: what a torn in-place write would leave (we never write in place).
        (
            "{\n  \"kind\": \"aksnet-ipam-state\",\n  \"version\": 1,\n  \"allocations\": [",
            Box::new(|e| matches!(e, IpamError::Corrupt { line: 4, .. })),
        ),
        (
            "",
            Box::new(|e| {
                matches!(
                    e,
                    IpamError::Corrupt {
                        line: 1,
                        column: 0,
                        ..
                    }
                )
            }),
        ),
        (
            "\0\0\0\0",
            Box::new(|e| matches!(e, IpamError::Corrupt { .. })),
        ),
        (
            r#"{"kind":"aksnet-ipam-state","version":1,"network":"n","allocations":[{"containerId":"a","ifname":"eth0","ips":[{"ip":"10.0.0.300","set":0}]}]}"#,
            Box::new(|e| matches!(e, IpamError::Corrupt { line: 1, .. })),
        ),
        (
            r#"{"kind":"aksnet-ipam-state","version":1,"network":"n","bogus":1}"#,
            Box::new(|e| matches!(e, IpamError::Corrupt { .. })),
        ),
        (
            r#"{"kind":"aksnet-ipam-state","version":2,"network":"n"}"#,
            Box::new(|e| {
                matches!(
                    e,
                    IpamError::UnsupportedVersion {
                        found: 2,
                        supported: 1,
                        ..
                    }
                )
            }),
        ),
        (
            r#"{"version":1,"network":"n"}"#,
            Box::new(|e| matches!(e, IpamError::WrongKind { .. })),
        ),
        (
            r#"{"kind":"aksnet-ipam-state","version":1,"network":"other"}"#,
            Box::new(|e| matches!(e, IpamError::WrongNetwork { .. })),
        ),
        (
            r#"{"kind":"aksnet-ipam-state","version":1,"network":"n","allocations":[
                {"containerId":"a","ifname":"eth0","ips":[{"ip":"10.0.0.2","set":0}]},
                {"containerId":"b","ifname":"eth0","ips":[{"ip":"10.0.0.2","set":0}]}]}"#,
            Box::new(|e| matches!(e, IpamError::Inconsistent { .. })),
        ),
    ];
    for (text, want) in cases {
        write_state(tmp.path(), text);
        let mut ran = false;
        let e = store
            .transact(|s| -> Result<_, IpamError> {
                ran = true;
                Ok(s.allocate(&p, &key("x"), &[], AllocationMeta::default())?)
            })
            .expect_err(text);
        assert!(want(&e), "{text:?}: unexpected {e:?}");
        assert!(!ran, "the closure must not run on a corrupt state");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            text,
            "file changed"
        );
        assert!(store.snapshot().is_err());
        assert!(allocated_addresses(tmp.path()).is_err());
    }
}

#[test]
fn corrupt_message_names_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    write_state(
        tmp.path(),
        "{\"kind\": \"aksnet-ipam-state\",\n\"version\": 1,\n\"network\": }",
    );
    let e = store.snapshot().expect_err("corrupt");
    let want = format!(
        "IPAM state file {} is corrupt at line 3 column 12: expected value at line 3 column 12 (left untouched; repair or remove it by hand)",
        store.state_path().display()
    );
    assert_eq!(e.to_string(), want);
}

#[test]
fn unreadable_state_is_an_io_error_with_errno() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    fs::create_dir(store.state_path()).expect("mkdir in place of the state file");
    let e = store.snapshot().expect_err("a directory");
    match &e {
        IpamError::Fs(FsError::WrongKind {
            path,
            found: FileKind::Directory,
            ..
        }) => assert_eq!(path, store.state_path()),
        other => panic!("unexpected {other:?}"),
    }
    // An unreadable file is an I/O error with its errno (EACCES needs a non-root user, so
    // use a name that is too long instead: ENAMETOOLONG).
    let long = tmp.path().join("x".repeat(300));
    let e = IpamStore::open(&long, "n").expect_err("name too long");
    assert_eq!(e.errno(), Some(nix::libc::ENAMETOOLONG), "{e:?}");
    assert!(e.to_string().contains(&long.display().to_string()), "{e}");
}

#[test]
fn lock_contention_times_out_as_retryable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let store = IpamStore::open(tmp.path(), "n")
        .expect("open")
        .with_lock_timeout(Duration::from_millis(150));
    let holder = File::open(store.lock_path()).expect("open lock");
    holder.lock().expect("hold the lock");
    let e = alloc(&store, &p, "a").expect_err("locked");
    assert!(matches!(e, IpamError::LockTimeout { .. }), "{e}");
    assert!(e.is_retryable());
    // A shared holder still blocks writers but not readers.
    drop(holder);
    let reader = File::open(store.lock_path()).expect("open lock");
    reader.lock_shared().expect("shared");
    assert!(store.snapshot().is_ok());
    assert!(matches!(
        alloc(&store, &p, "a"),
        Err(IpamError::LockTimeout { .. })
    ));
    drop(reader);
    alloc(&store, &p, "a").expect("free again");
}

#[test]
fn threads_sharing_one_store_never_duplicate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(pool("10.0.0.0/24"));
    let store = Arc::new(IpamStore::open(tmp.path(), "n").expect("open"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (p, store, seen, barrier) =
                (p.clone(), store.clone(), seen.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for i in 0..20 {
                    let got = alloc(&store, &p, &format!("t{t}-{i}")).expect("alloc");
                    seen.lock().expect("mutex").push(got);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let seen = seen.lock().expect("mutex");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 160);
    assert_eq!(unique.len(), 160, "an address was handed out twice");
    assert_eq!(store.snapshot().expect("snap").held(), 160);
}

#[test]
fn gc_releases_stale_and_leaves_lock_and_temp_files_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    for id in ["a", "b", "c"] {
        alloc(&store, &p, id).expect("alloc");
    }
    // A temp file from a crashed writer; GC must not trip over it or delete others' files.
    fs::write(tmp.path().join(".n.json.tmp"), "partial").expect("temp");
    let valid: HashSet<AttachmentKey> = [key("b")].into_iter().collect();
    let released = store
        .transact(|s| -> Result<_, IpamError> { Ok(s.gc(&valid)) })
        .expect("gc");
    assert_eq!(
        released,
        vec![
            (key("a"), vec![ip("10.0.0.2")]),
            (key("c"), vec![ip("10.0.0.4")])
        ]
    );
    assert!(store.lock_path().exists());
    // The leftover is neither written through nor removed: every writer uses a fresh
    // temp name (O_EXCL), so a file at an old temp path is never reused (issue 10).
    assert_eq!(names(tmp.path()), vec![".n.json.tmp", "n.json", "n.lock"]);
    assert_eq!(
        fs::read_to_string(tmp.path().join(".n.json.tmp")).expect("read"),
        "partial"
    );
    // Empty valid list (or a missing one, which the plugin passes as empty): all go.
    store
        .transact(|s| -> Result<_, IpamError> { Ok(s.gc(&HashSet::new())) })
        .expect("gc all");
    assert!(store.snapshot().expect("snap").is_empty());
}

#[test]
fn allocated_addresses_lists_every_network_and_ignores_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        allocated_addresses(&tmp.path().join("missing")).expect("missing dir"),
        vec![]
    );
    let kubenet = IpamStore::open(tmp.path(), "kubenet").expect("open");
    let nodesubnet = IpamStore::open(tmp.path(), "azure.nodesubnet").expect("open");
    let pk = pool("10.244.1.0/24");
    let pn = Pool::Addresses {
        prefix: "10.240.0.0/24".parse().expect("net"),
        addrs: vec![ip("10.240.0.7"), ip("10.240.0.8")],
    }
    .validate()
    .expect("pool");
    alloc(&kubenet, &pk, "k1").expect("alloc");
    alloc(&nodesubnet, &pn, "n1").expect("alloc");
    alloc(&nodesubnet, &pn, "n2").expect("alloc");
    release(&nodesubnet, "n1");
    // Files that are not state: the node pool, temp and lock files, strays.
    fs::write(tmp.path().join("node-pool.json"), "{\"version\":1}").expect("pool file");
    fs::write(tmp.path().join(".kubenet.json.tmp"), "junk").expect("temp");
    fs::write(tmp.path().join("orphan.lock"), "").expect("lock");
    fs::write(tmp.path().join("notes.txt"), "x").expect("stray");
    let held = allocated_addresses(tmp.path()).expect("list");
    assert_eq!(
        held,
        vec![
            HeldAddress {
                network: "azure.nodesubnet".into(),
                ip: ip("10.240.0.8"),
                container_id: "n2".into(),
                ifname: "eth0".into()
            },
            HeldAddress {
                network: "kubenet".into(),
                ip: ip("10.244.1.2"),
                container_id: "k1".into(),
                ifname: "eth0".into()
            },
        ]
    );
}

#[test]
fn network_names_are_validated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in ["", ".hidden", "..", "a/b", "node-pool", "sp ace", "x\u{e9}"] {
        let e = IpamStore::open(tmp.path(), bad).expect_err(bad);
        assert!(matches!(e, IpamError::InvalidNetwork { .. }), "{bad}: {e}");
    }
    assert_eq!(names(tmp.path()), Vec::<String>::new(), "nothing created");
    IpamStore::open(tmp.path(), "my-net_1.v2").expect("valid name");
}

#[test]
fn data_dir_is_created() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("var/lib/aksnet");
    let store = IpamStore::open(&dir, "n").expect("open");
    assert!(store.lock_path().exists());
    alloc(&store, &pool("10.0.0.0/24"), "a").expect("alloc");
    assert!(dir.join("n.json").exists());
}

/// The state of another boot holds no allocations: a reboot ended every pod netns
/// (docs/architecture.md, "Crash and reboot"). The cursors survive.
#[test]
fn allocations_of_another_boot_are_void() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    let p = pool("10.0.0.0/24");
    let first = alloc(&store, &p, "a").expect("alloc");
    let text = fs::read_to_string(store.state_path()).expect("read");
    let this_boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot_id");
    assert!(text.contains(this_boot.trim()), "{text}");
    assert_eq!(store.snapshot().expect("snapshot").records().len(), 1);

    let other = text.replace(this_boot.trim(), "00000000-0000-0000-0000-000000000000");
    fs::write(store.state_path(), other).expect("write");
    let state = store.snapshot().expect("snapshot");
    assert!(state.records().is_empty(), "void after a reboot");
    let next = alloc(&store, &p, "b").expect("alloc");
    assert_ne!(next, first, "round-robin goes on after the last cursor");
}

/// A state file torn by a machine crash (so last written before this boot) starts empty;
/// one of this boot that does not parse is still an error naming the file.
#[test]
fn an_unreadable_state_from_before_this_boot_starts_empty() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    fs::write(store.state_path(), b"{\"kind\":\"aksnet-ipam-st").expect("write");
    let e = store.snapshot().expect_err("torn file of this boot");
    assert!(matches!(e, IpamError::Corrupt { .. }), "{e}");
    let f = File::options()
        .write(true)
        .open(store.state_path())
        .expect("open");
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(86_400))
        .expect("set mtime");
    drop(f);
    assert!(store.snapshot().expect("snapshot").records().is_empty());
    alloc(&store, &pool("10.0.0.0/24"), "a").expect("the next ADD rewrites it");
}

#[test]
fn the_default_data_dir_keeps_its_state_on_the_run_dir_and_others_beside_the_pool() {
    assert_eq!(
        aksnet_ipam::state_dir(Path::new(aksnet_ipam::DEFAULT_DATA_DIR)),
        Path::new(aksnet_ipam::DEFAULT_RUN_DIR)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    assert_eq!(aksnet_ipam::state_dir(tmp.path()), tmp.path());
    let store = IpamStore::open(tmp.path(), "n").expect("open");
    assert_eq!(store.state_path(), tmp.path().join("n.json"));
}

/// An upgrade in place: the state an earlier aksnet kept in the data directory is read
/// while the state directory has none, and the first write moves it.
#[test]
fn a_legacy_state_is_read_then_moved_by_the_first_write() {
    let data = tempfile::tempdir().expect("tempdir");
    let run = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    let old = IpamStore::open(data.path(), "n").expect("open legacy");
    let held = alloc(&old, &p, "a").expect("a");
    let legacy = Some(data.path().join("n.json"));
    let store = IpamStore::open_in(run.path(), legacy.clone(), "n").expect("open");
    assert!(store.snapshot().expect("snapshot").get(&key("a")).is_some());
    assert!(!store.state_path().exists(), "a read moves nothing");
    assert_eq!(
        aksnet_ipam::allocated_addresses(data.path())
            .expect("held")
            .len(),
        1,
        "readers of the data directory still see it"
    );
    let next = alloc(&store, &p, "b").expect("b");
    assert_ne!(next, held, "the legacy allocation is kept");
    assert!(store.state_path().exists());
    assert!(
        !data.path().join("n.json").exists(),
        "the legacy file is gone"
    );
    let again = IpamStore::open_in(run.path(), legacy, "n").expect("reopen");
    assert_eq!(release(&again, "a"), vec![held]);
}

/// The data directory's other JSON files (the agent's status file) are not states.
#[test]
fn the_legacy_listing_counts_only_ipam_states() {
    let data = tempfile::tempdir().expect("tempdir");
    let run = tempfile::tempdir().expect("tempdir");
    let p = pool("10.0.0.0/24");
    alloc(&IpamStore::open(data.path(), "old").expect("open"), &p, "a").expect("a");
    alloc(&IpamStore::open(run.path(), "new").expect("open"), &p, "b").expect("b");
    fs::write(data.path().join("agent-status.json"), b"{\"healthy\":true}").expect("write");
    assert_eq!(
        aksnet_ipam::networks_in_at(run.path(), Some(data.path())).expect("list"),
        vec!["new".to_string(), "old".to_string()]
    );
}
