//! One lock per attachment (CNI_CONTAINERID, CNI_IFNAME), held for the whole
//! of an ADD, DEL or GC of that attachment, netlink work included (issue 10,
//! item 2).
//!
//! Why: an attachment is owned by the ADD that created its interface, and only
//! that ADD may undo it. Without this lock, 32 ADDs of one attachment (a
//! runtime retrying after a timeout) race: one creates the interface, another
//! that created the reservation fails and releases the address the winner's
//! pod is using; a DEL racing an ADD releases an address the ADD then puts on
//! a live pod. Holding a lock per attachment serialises exactly the calls that
//! must not interleave and nothing else: two different pods never wait for
//! each other, so this is not a node-wide lock across netlink work (the node's
//! IPAM lock is still held only inside one short transaction).
//!
//! Layout: `<stateDir>/<network>.attachments/<sha1(containerID NUL ifname)>.lock`
//! (`crate::store::state_dir`: `/run/aksnet` for the default data directory),
//! directory 0700, files 0600, created and opened through `aksnet_fs` (a
//! symlink planted there is refused, never followed). The lock is `flock(2)`, so a killed
//! holder releases it with its last file descriptor.
//!
//! Removal: the DEL that released the attachment unlinks its lock file while
//! still holding it. A waiter that had opened the old file then holds a lock
//! on an unlinked inode, so after locking every caller checks that the path
//! still names the inode it locked, and starts again if not (the usual
//! lock-file-removal protocol).

use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use aksnet_core::allocator::AttachmentKey;
use aksnet_core::naming::attachment_digest;

use crate::error::IpamError;

/// A held attachment lock; dropping it releases the lock.
#[derive(Debug)]
pub struct AttachmentLock {
    file: File,
    path: PathBuf,
}

/// The directory of one network's attachment locks, beside the network's state
/// (`crate::store::state_dir`: tmpfs for the default data directory, so creating and
/// removing a lock file costs no disk inode).
pub fn attachment_lock_dir(data_dir: &Path, network: &str) -> PathBuf {
    crate::store::state_dir(data_dir).join(format!("{network}.attachments"))
}

impl AttachmentLock {
    /// Waits up to `timeout` for the attachment's lock.
    pub fn acquire(
        data_dir: &Path,
        network: &str,
        key: &AttachmentKey,
        timeout: Duration,
    ) -> Result<Self, IpamError> {
        let path = lock_path(data_dir, network, key)?;
        let start = Instant::now();
        loop {
            let file = open_lock(&path)?;
            lock_with_deadline(&file, &path, false, timeout.saturating_sub(start.elapsed()))?;
            if still_named(&file, &path)? {
                return Ok(AttachmentLock { file, path });
            }
        }
    }

    /// Takes the lock only if nobody holds it (`None` if somebody does): GC
    /// passes over an attachment that an ADD or DEL is working on.
    pub fn try_acquire(
        data_dir: &Path,
        network: &str,
        key: &AttachmentKey,
    ) -> Result<Option<Self>, IpamError> {
        let path = lock_path(data_dir, network, key)?;
        loop {
            let file = open_lock(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(IpamError::io("lock", &path, e)),
            }
            if still_named(&file, &path)? {
                return Ok(Some(AttachmentLock { file, path }));
            }
        }
    }

    /// The attachment is gone (DEL, GC, or an ADD that undid itself): remove
    /// the lock file while still holding it, then release.
    pub fn remove(self) -> Result<(), IpamError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IpamError::io("remove attachment lock", &self.path, e)),
        }
        // `self.file` closes here, after the unlink.
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file (kept for tests that check the lock is held).
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn lock_path(data_dir: &Path, network: &str, key: &AttachmentKey) -> Result<PathBuf, IpamError> {
    let dir = attachment_lock_dir(data_dir, network);
    ensure_dir(&dir)?;
    Ok(dir.join(format!(
        "{}.lock",
        attachment_digest(&key.container_id, &key.ifname)
    )))
}

fn ensure_dir(dir: &Path) -> Result<(), IpamError> {
    Ok(aksnet_fs::ensure_private_dir(dir)?)
}

fn open_lock(path: &Path) -> Result<File, IpamError> {
    Ok(aksnet_fs::open_lock_file(path)?)
}

/// After locking: does `path` still name the inode we locked? (A DEL may
/// have unlinked it between our open and our lock.)
fn still_named(file: &File, path: &Path) -> Result<bool, IpamError> {
    let held = file
        .metadata()
        .map_err(|e| IpamError::io("stat attachment lock", path, e))?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(IpamError::io("stat attachment lock", path, e)),
    }
}

/// flock with a deadline: try, then poll with a short backoff (std has no
/// timed flock; the holders' work is short, so the first retries usually win).
pub(crate) fn lock_with_deadline(
    lock: &File,
    path: &Path,
    shared: bool,
    timeout: Duration,
) -> Result<(), IpamError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        let attempt = if shared {
            lock.try_lock_shared()
        } else {
            lock.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(IpamError::io("lock", path, e)),
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(IpamError::LockTimeout {
                path: path.to_path_buf(),
                waited,
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key(c: &str) -> AttachmentKey {
        AttachmentKey::new(c, "eth0")
    }

    #[test]
    fn second_holder_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            AttachmentLock::acquire(dir.path(), "n", &key("c1"), Duration::from_secs(1)).unwrap();
        assert!(AttachmentLock::try_acquire(dir.path(), "n", &key("c1"))
            .unwrap()
            .is_none());
        // Another attachment is independent.
        assert!(AttachmentLock::try_acquire(dir.path(), "n", &key("c2"))
            .unwrap()
            .is_some());
        let e = AttachmentLock::acquire(dir.path(), "n", &key("c1"), Duration::from_millis(20))
            .unwrap_err();
        assert!(e.is_retryable());
        drop(a);
        assert!(AttachmentLock::try_acquire(dir.path(), "n", &key("c1"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn removal_while_held_does_not_let_two_callers_in() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            AttachmentLock::acquire(dir.path(), "n", &key("c"), Duration::from_secs(1)).unwrap();
        let path = a.path().to_path_buf();
        // A waiter opened the file before it was removed.
        let stale = open_lock(&path).unwrap();
        a.remove().unwrap();
        assert!(!path.exists());
        stale.try_lock().unwrap();
        assert!(
            !still_named(&stale, &path).unwrap(),
            "the waiter must retry"
        );
        let b =
            AttachmentLock::acquire(dir.path(), "n", &key("c"), Duration::from_secs(1)).unwrap();
        assert!(still_named(b.file(), &path).unwrap());
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let lock_dir = attachment_lock_dir(dir.path(), "n");
        fs::create_dir(&lock_dir).unwrap();
        let path = lock_path(dir.path(), "n", &key("c")).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = AttachmentLock::acquire(dir.path(), "n", &key("c"), Duration::from_secs(1))
            .unwrap_err();
        assert!(
            matches!(e, IpamError::Fs(aksnet_fs::FsError::Symlink { .. })),
            "refused as a symlink: {e}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn the_directory_is_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            AttachmentLock::acquire(dir.path(), "n", &key("c"), Duration::from_secs(1)).unwrap();
        let m = fs::metadata(attachment_lock_dir(dir.path(), "n")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
        let f = fs::metadata(a.path()).unwrap();
        assert_eq!(f.permissions().mode() & 0o077, 0);
    }
}
