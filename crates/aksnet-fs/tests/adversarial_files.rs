//! aksnet-fs against planted symlinks, FIFOs, devices and a zero umask (issue 10, item 5).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use aksnet_fs::{
    ensure_private_dir, open_lock_file, read_regular_capped, read_regular_capped_following,
    write_atomic, write_atomic_deferred, FileKind, FsError,
};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn symlinks_planted_at_every_temp_name_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    // Every temp name this process could use first, plus the old fixed name.
    let pid = std::process::id();
    symlink(&victim, dir.join(".state.json.tmp")).unwrap();
    for seq in 0..64 {
        symlink(&victim, dir.join(format!(".state.json.{pid}.{seq}.tmp"))).unwrap();
    }
    for _ in 0..4 {
        // Either a fresh temp name is found or the write fails: never through a link.
        let _ = write_atomic(&dir, "state.json", b"new", 0o600);
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let st = fs::symlink_metadata(dir.join("state.json"));
    if let Ok(st) = st {
        assert!(
            st.file_type().is_file(),
            "state.json must be a regular file"
        );
        assert_eq!(fs::read_to_string(dir.join("state.json")).unwrap(), "new");
    }
}

#[test]
fn symlinked_target_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let link = tmp.path().join("state.json");
    symlink(&victim, &link).unwrap();
    let e = write_atomic(tmp.path(), "state.json", b"new", 0o600).unwrap_err();
    assert!(matches!(e, FsError::Symlink { .. }), "{e:?}");
    assert!(e.to_string().contains(&link.display().to_string()), "{e}");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(names(tmp.path()), vec!["state.json", "victim"]);
}

#[test]
fn modes_are_explicit_under_umask_000() {
    // The umask is per process: run the checks in a child with umask 0.
    if std::env::var_os("AKSH1_FS_UMASK_CHILD").is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" --exact umask_child_writes --nocapture")
        .arg(&exe)
        .env("AKSH1_FS_UMASK_CHILD", tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let base = tmp.path();
    assert_eq!(mode(&base.join("a")), 0o755, "missing parent");
    assert_eq!(mode(&base.join("a/private")), 0o700);
    assert_eq!(mode(&base.join("a/private/state.json")), 0o600);
    assert_eq!(mode(&base.join("a/private/status.json")), 0o644);
    assert_eq!(mode(&base.join("a/private/x.lock")), 0o600);
}

#[test]
fn umask_child_writes() {
    let Some(base) = std::env::var_os("AKSH1_FS_UMASK_CHILD") else {
        return;
    };
    let base = Path::new(&base);
    let dir = base.join("a/private");
    ensure_private_dir(&dir).unwrap();
    write_atomic(&dir, "state.json", b"{}", 0o600).unwrap();
    write_atomic(&dir, "status.json", b"{}", 0o644).unwrap();
    open_lock_file(&dir.join("x.lock")).unwrap();
}

#[test]
fn private_dir_refuses_links_files_and_group_writable_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    symlink(&real, &link).unwrap();
    let e = ensure_private_dir(&link).unwrap_err();
    assert!(matches!(e, FsError::Symlink { .. }), "{e:?}");
    assert_eq!(e.path(), link);

    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let e = ensure_private_dir(&file).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::WrongKind {
                found: FileKind::Regular,
                ..
            }
        ),
        "{e:?}"
    );

    let open = tmp.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let e = ensure_private_dir(&open).unwrap_err();
    assert!(
        matches!(e, FsError::InsecureDir { mode: 0o777, .. }),
        "{e:?}"
    );
    // An operator's 0755 directory is accepted and left as it is.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    ensure_private_dir(&open).unwrap();
    assert_eq!(mode(&open), 0o755);
}

#[test]
fn lock_file_through_a_symlink_is_refused_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim-lock");
    let link = tmp.path().join("x.lock");
    symlink(&victim, &link).unwrap();
    let e = open_lock_file(&link).unwrap_err();
    assert!(matches!(e, FsError::Symlink { .. }), "{e:?}");
    assert!(!victim.exists(), "the lock was created through the link");
}

#[test]
fn fifos_directories_and_devices_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for p in [
        &fifo,
        &tmp.path().to_path_buf(),
        &Path::new("/dev/null").to_path_buf(),
    ] {
        let e = read_regular_capped_following(p, 1024).unwrap_err();
        assert!(matches!(e, FsError::WrongKind { .. }), "{p:?}: {e:?}");
    }
    let e = open_lock_file(&fifo).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::WrongKind {
                found: FileKind::Fifo,
                ..
            }
        ),
        "{e:?}"
    );
    let e = write_atomic(tmp.path(), "fifo", b"x", 0o600).unwrap_err();
    assert!(matches!(e, FsError::WrongKind { .. }), "{e:?}");
}

#[test]
fn reads_are_capped_and_missing_files_say_so_by_errno() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big");
    fs::write(&p, vec![b'x'; 2048]).unwrap();
    let e = read_regular_capped(&p, 1024).unwrap_err();
    assert!(
        matches!(
            e,
            FsError::TooLarge {
                size: 2048,
                max: 1024,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(read_regular_capped(&p, 4096).unwrap().len(), 2048);
    let e = read_regular_capped(&tmp.path().join("none"), 10).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let link = tmp.path().join("link");
    symlink(&p, &link).unwrap();
    assert!(matches!(
        read_regular_capped(&link, 4096).unwrap_err(),
        FsError::Symlink { .. }
    ));
    assert_eq!(
        read_regular_capped_following(&link, 4096).unwrap().len(),
        2048
    );
}

#[test]
fn deferred_write_is_visible_before_the_dir_sync_and_leaves_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    let pending = write_atomic_deferred(tmp.path(), "s.json", b"one", 0o600).unwrap();
    assert_eq!(fs::read(tmp.path().join("s.json")).unwrap(), b"one");
    pending.sync().unwrap();
    write_atomic(tmp.path(), "s.json", b"two", 0o600).unwrap();
    assert_eq!(fs::read(tmp.path().join("s.json")).unwrap(), b"two");
    assert_eq!(names(tmp.path()), vec!["s.json"]);
    let e = write_atomic(tmp.path(), "../x", b"", 0o600).unwrap_err();
    assert!(matches!(e, FsError::BadName { .. }), "{e:?}");
    let e = write_atomic(&tmp.path().join("missing"), "x", b"", 0o600).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

/// Removing from a directory that does not exist removes nothing and is not an
/// error (`node leave` of a node whose data directory is gone).
#[test]
fn remove_durably_in_a_missing_directory_is_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    assert!(!aksnet_fs::remove_durably(&gone, "node-pool.json").unwrap());
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    assert!(aksnet_fs::remove_durably(dir.path(), "f").unwrap());
    assert!(!aksnet_fs::remove_durably(dir.path(), "f").unwrap());
}
