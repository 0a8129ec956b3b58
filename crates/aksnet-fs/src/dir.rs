//! Private directories: created 0700 whatever the umask, never through a symlink.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode};
use nix::unistd::mkdir;

use crate::error::{open_error, FileKind, FsError};
use crate::{PARENT_DIR_MODE, PRIVATE_DIR_MODE};

/// Makes sure `path` is a directory only its owner can write, creating it (and any
/// missing parent, 0755) if needed.
///
/// - created here: mode 0700 set with `fchmod`, so `umask 000` cannot widen it;
/// - already there: must be a real directory (the last component is not followed if it
///   is a symlink), owned by this process's effective uid, and not writable by group or
///   others. Its mode is otherwise left as the operator set it (0755 is fine).
///
/// Symlinks in the components ABOVE the last one are followed (`/var/run` is one).
pub fn ensure_private_dir(path: &Path) -> Result<(), FsError> {
    let created = create_dir(path, PRIVATE_DIR_MODE)?;
    let fd = open_dir_nofollow(path)?;
    let st = fstat(&fd).map_err(|e| FsError::io("stat directory", path, e))?;
    if created {
        fchmod(&fd, Mode::from_bits_truncate(PRIVATE_DIR_MODE))
            .map_err(|e| FsError::io("chmod directory", path, e))?;
        return Ok(());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if st.st_uid != euid {
        return Err(FsError::ForeignOwner {
            path: path.to_path_buf(),
            owner: st.st_uid,
            euid,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(FsError::InsecureDir {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// mkdir with missing parents. `Ok(true)` when `path` itself was created by this call.
fn create_dir(path: &Path, mode: u32) -> Result<bool, FsError> {
    match mkdir(path, Mode::from_bits_truncate(mode)) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(Errno::ENOENT) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if create_dir(parent, PARENT_DIR_MODE)? {
                    // A parent we created gets its mode explicitly too.
                    let fd = open_dir_nofollow(parent)?;
                    fchmod(&fd, Mode::from_bits_truncate(PARENT_DIR_MODE))
                        .map_err(|e| FsError::io("chmod directory", parent, e))?;
                }
            }
            match mkdir(path, Mode::from_bits_truncate(mode)) {
                Ok(()) => Ok(true),
                Err(Errno::EEXIST) => Ok(false),
                Err(e) => Err(FsError::io("create directory", path, e)),
            }
        }
        Err(e) => Err(FsError::io("create directory", path, e)),
    }
}

/// Opens a directory without following a symlink in its last component.
pub(crate) fn open_dir_nofollow(path: &Path) -> Result<OwnedFd, FsError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOTDIR) => {
            let found = std::fs::symlink_metadata(path)
                .map(|m| FileKind::from_mode(std::os::unix::fs::MetadataExt::mode(&m)))
                .unwrap_or(FileKind::Unknown);
            // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR, not ELOOP.
            if found == FileKind::Symlink {
                return Err(FsError::Symlink {
                    op: "use a directory",
                    path: path.to_path_buf(),
                });
            }
            Err(FsError::WrongKind {
                path: path.to_path_buf(),
                found,
                expected: FileKind::Directory,
            })
        }
        Err(e) => Err(open_error("open directory", path, e)),
    }
}
