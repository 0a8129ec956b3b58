//! Bounded reads of regular files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode};

use crate::error::{open_error, FileKind, FsError};

/// Reads the whole regular file `path`, at most `max_bytes`. Refuses a symlink at `path`,
/// a directory, FIFO, socket or device (opened non-blocking, so a FIFO cannot hang the
/// reader), and a file larger than `max_bytes`. A missing file is an
/// [`FsError::Io`] whose [`FsError::is_not_found`] is true.
pub fn read_regular_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FsError> {
    read_capped(path, max_bytes, true)
}

/// Like [`read_regular_capped`] but follows a symlink at `path`: for configuration that
/// others provide through links (a Kubernetes ConfigMap volume links each key to
/// `..data/<key>`).
pub fn read_regular_capped_following(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FsError> {
    read_capped(path, max_bytes, false)
}

/// Opens `path` with `flags` and fstats it; anything but a regular file is refused
/// (`FsError::WrongKind`), so a FIFO opened with `O_NONBLOCK` never blocks a reader. `op`
/// and `stat_op` name the steps in errors. The one open-and-check of `read_*` and
/// `open_lock_file`.
pub(crate) fn open_regular(
    path: &Path,
    flags: OFlag,
    mode: Mode,
    op: &'static str,
    stat_op: &'static str,
) -> Result<(OwnedFd, FileStat), FsError> {
    let fd = open(path, flags, mode).map_err(|e| open_error(op, path, e))?;
    let st = fstat(&fd).map_err(|e| FsError::io(stat_op, path, e))?;
    let kind = FileKind::from_mode(st.st_mode);
    if kind != FileKind::Regular {
        return Err(FsError::WrongKind {
            path: path.to_path_buf(),
            found: kind,
            expected: FileKind::Regular,
        });
    }
    Ok((fd, st))
}

fn read_capped(path: &Path, max_bytes: u64, nofollow: bool) -> Result<Vec<u8>, FsError> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let (fd, st) = open_regular(path, flags, Mode::empty(), "read", "stat")?;
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > max_bytes {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: max_bytes,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // take(max + 1): the file may grow after the fstat; read one byte past the cap to
    // notice.
    File::from(fd)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| FsError::std_io("read", path, e))?;
    if out.len() as u64 > max_bytes {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            size: out.len() as u64,
            max: max_bytes,
        });
    }
    Ok(out)
}
