//! Atomic, durable replacement of a file, never through a symlink.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};

use crate::error::{FileKind, FsError};

/// A per-process sequence for temp names, so threads of one process never collide.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// How many unique temp names to try before giving up (each collision means a file of
/// that exact name already exists: a leftover of a crashed writer with a reused pid, or
/// something planted).
const TEMP_ATTEMPTS: u32 = 16;

/// Replaces `dir/name` with `bytes` atomically and durably (temp file, `fdatasync`,
/// rename, directory fsync). See [`write_atomic_deferred`] for the rules.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_deferred(dir, name, bytes, mode)?.sync()
}

/// The directory fsync a [`write_atomic_deferred`] still owes. Until [`DirSync::sync`]
/// returns, the new content is visible to every reader but may not survive a power loss.
#[must_use = "the rename is not durable until DirSync::sync is called"]
#[derive(Debug)]
pub struct DirSync {
    dir: OwnedFd,
    path: PathBuf,
}

impl DirSync {
    /// fsyncs the directory: makes the rename durable.
    pub fn sync(self) -> Result<(), FsError> {
        fsync(&self.dir).map_err(|e| FsError::io("fsync directory", &self.path, e))
    }
}

/// Replaces `dir/name` with `bytes`, leaving the directory fsync to the caller (for
/// example after it released a lock: the rename is already visible to the next
/// transaction, only durability waits; docs/benchmarks.md, contention).
///
/// - The temp file is `.<name>.<pid>.<seq>.tmp` in `dir`, created with
///   `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`: a file or symlink already at that path makes
///   the create fail (the next name is tried) and is never written through.
/// - Its mode is `mode`, set with `fchmod` (independent of the umask).
/// - `dir/name` must not be a symlink or a non-regular file (refused, nothing written);
///   `rename(2)` replaces the directory entry, so the target's old inode is never written.
/// - On any failure the temp file is removed and the target is unchanged.
/// - Symlinks in `dir` itself are followed (it is usually a directory checked by
///   [`crate::ensure_private_dir`]; the agent's status file may live under `/var/run`).
///
/// Concurrent writers of one target are safe (each has its own temp file; the last rename
/// wins). A writer killed between create and rename leaves its temp file behind; it is
/// ignored by every reader (dot name).
pub fn write_atomic_deferred(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<DirSync, FsError> {
    let dir_fd = replace(dir, name, bytes, mode, true)?;
    Ok(DirSync {
        dir: dir_fd,
        path: dir.to_path_buf(),
    })
}

/// Replaces `dir/name` with `bytes` atomically but not durably: temp file and rename, with
/// the rules of [`write_atomic_deferred`], and no `fdatasync` or directory fsync. Every
/// reader sees the old or the new content, whatever process is killed when; after a power
/// loss the file may hold either, or (on a filesystem that does not order a file's data
/// before its rename) neither. For state that a reboot makes void anyway, whose reader
/// recognises a file from an earlier boot (the IPAM state of pod attachments, whose
/// network namespaces a reboot ends: docs/architecture.md, "Crash and reboot").
pub fn write_atomic_volatile(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), FsError> {
    replace(dir, name, bytes, mode, false).map(drop)
}

/// Temp file, optional `fdatasync`, rename; returns the directory's fd.
fn replace(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
    sync_data: bool,
) -> Result<OwnedFd, FsError> {
    check_name(dir, name)?;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dirfd =
        open(dir, dir_flags, Mode::empty()).map_err(|e| FsError::io("open directory", dir, e))?;
    let target = dir.join(name);
    check_target(&dirfd, &target, name)?;
    let (temp_name, fd) = create_temp(&dirfd, dir, name, mode)?;
    let temp = TempFile {
        dirfd: &dirfd,
        name: temp_name,
        armed: true,
    };
    let temp_path = dir.join(&temp.name);
    fchmod(&fd, Mode::from_bits_truncate(mode))
        .map_err(|e| FsError::io("chmod temp file", &temp_path, e))?;
    let mut file = File::from(fd);
    file.write_all(bytes)
        .map_err(|e| FsError::std_io("write temp file", &temp_path, e))?;
    // fdatasync: the data and the size needed to read it back, without the timestamps a
    // full fsync would also flush.
    if sync_data {
        file.sync_data()
            .map_err(|e| FsError::std_io("fdatasync temp file", &temp_path, e))?;
    }
    drop(file);
    renameat(&dirfd, temp.name.as_str(), &dirfd, name)
        .map_err(|e| FsError::io("rename temp file over", &target, e))?;
    temp.disarm();
    Ok(dirfd)
}

fn check_name(dir: &Path, name: &str) -> Result<(), FsError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." {
        Some("not a file name")
    } else if name.contains('/') || name.contains('\0') {
        Some("contains '/' or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(FsError::BadName {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Refuses a target that is a symlink or not a regular file; a missing one is fine.
fn check_target(dirfd: &OwnedFd, target: &Path, name: &str) -> Result<(), FsError> {
    match fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => match FileKind::from_mode(st.st_mode) {
            FileKind::Regular => Ok(()),
            FileKind::Symlink => Err(FsError::Symlink {
                op: "replace",
                path: target.to_path_buf(),
            }),
            found => Err(FsError::WrongKind {
                path: target.to_path_buf(),
                found,
                expected: FileKind::Regular,
            }),
        },
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(FsError::io("stat", target, e)),
    }
}

fn create_temp(
    dirfd: &OwnedFd,
    dir: &Path,
    name: &str,
    mode: u32,
) -> Result<(String, OwnedFd), FsError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let pid = std::process::id();
    let mut last = Errno::EEXIST;
    for _ in 0..TEMP_ATTEMPTS {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let temp = format!(".{name}.{pid}.{seq}.tmp");
        match openat(dirfd, temp.as_str(), flags, Mode::from_bits_truncate(mode)) {
            Ok(fd) => return Ok((temp, fd)),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(FsError::io("create temp file", &dir.join(temp), e)),
        }
    }
    Err(FsError::io(
        "create temp file",
        &dir.join(format!(".{name}.{pid}.*.tmp")),
        last,
    ))
}

/// Removes the temp file on every early return (a failed write leaves nothing behind).
struct TempFile<'a> {
    dirfd: &'a OwnedFd,
    name: String,
    armed: bool,
}

impl TempFile<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error that made us give up is the one worth reporting.
            let _ = unlinkat(self.dirfd, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Removes `dir/name` (a symlink there is removed itself, never followed) and fsyncs the
/// directory so the removal survives a crash. `Ok(false)` when it was absent, the
/// directory included (nothing to remove: `node leave` of a node whose data directory
/// is gone).
pub fn remove_durably(dir: &Path, name: &str) -> Result<bool, FsError> {
    check_name(dir, name)?;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dirfd = match open(dir, dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(FsError::io("open directory", dir, e)),
    };
    match unlinkat(&dirfd, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(FsError::io("remove", &dir.join(name), e)),
    }
    DirSync {
        dir: dirfd,
        path: dir.to_path_buf(),
    }
    .sync()?;
    Ok(true)
}
