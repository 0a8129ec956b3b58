//! Lock files: created 0600, never through a symlink, always a regular file.

use std::fs::File;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{fchmod, Mode};

use crate::error::FsError;
use crate::read::open_regular;
use crate::PRIVATE_FILE_MODE;

/// Opens (creating if needed) the lock file `path` for `flock`. Refuses a symlink at
/// `path` (`O_NOFOLLOW`) and anything that is not a regular file (a FIFO or device is
/// opened non-blocking, then rejected). The mode is set to 0600 when it differs, so a
/// file created under any umask ends up 0600. The file is never truncated or removed:
/// its content is irrelevant, its inode is the lock.
pub fn open_lock_file(path: &Path) -> Result<File, FsError> {
    let flags = OFlag::O_RDWR
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let (fd, st) = open_regular(
        path,
        flags,
        Mode::from_bits_truncate(PRIVATE_FILE_MODE),
        "open lock file",
        "stat lock file",
    )?;
    if st.st_mode & 0o7777 != PRIVATE_FILE_MODE {
        fchmod(&fd, Mode::from_bits_truncate(PRIVATE_FILE_MODE))
            .map_err(|e| FsError::io("chmod lock file", path, e))?;
    }
    Ok(File::from(fd))
}
