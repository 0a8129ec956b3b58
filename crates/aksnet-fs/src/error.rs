//! The error type of every operation of this crate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of file a path turned out to be (from `st_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl FileKind {
    /// The kind encoded in a `st_mode` value.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & nix::libc::S_IFMT {
            nix::libc::S_IFREG => FileKind::Regular,
            nix::libc::S_IFDIR => FileKind::Directory,
            nix::libc::S_IFLNK => FileKind::Symlink,
            nix::libc::S_IFIFO => FileKind::Fifo,
            nix::libc::S_IFCHR => FileKind::CharDevice,
            nix::libc::S_IFBLK => FileKind::BlockDevice,
            nix::libc::S_IFSOCK => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symbolic link",
            FileKind::Fifo => "FIFO",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::Socket => "socket",
            FileKind::Unknown => "file of unknown type",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call failed; `source.raw_os_error()` is the errno.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path is a symbolic link where aksnet never follows one.
    #[error("{} is a symbolic link; refusing to {op} through it (remove the link)", path.display())]
    Symlink { op: &'static str, path: PathBuf },
    /// The path exists but is the wrong kind of file.
    #[error("{} is a {found}, expected a {expected}", path.display())]
    WrongKind {
        path: PathBuf,
        found: FileKind,
        expected: FileKind,
    },
    /// The file is larger than the reader accepts.
    #[error("{} is {size} bytes, more than the {max} bytes accepted", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// A private directory that already existed is writable by group or others: anyone
    /// could replace the files in it.
    #[error("directory {} has mode {mode:04o}, writable by group or others; fix it with `chmod go-w {}`", path.display(), path.display())]
    InsecureDir { path: PathBuf, mode: u32 },
    /// A private directory that already existed belongs to another user.
    #[error("directory {} is owned by uid {owner}, not by this process's uid {euid}", path.display())]
    ForeignOwner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    /// A file name given to [`crate::write_atomic`] is not a plain name.
    #[error("invalid file name {name:?} in {}: {reason}", dir.display())]
    BadName {
        dir: PathBuf,
        name: String,
        reason: &'static str,
    },
}

impl FsError {
    /// The errno of a failed system call, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            FsError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the file (or a directory on its path) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(nix::libc::ENOENT)
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FsError::Io { path, .. }
            | FsError::Symlink { path, .. }
            | FsError::WrongKind { path, .. }
            | FsError::TooLarge { path, .. }
            | FsError::InsecureDir { path, .. }
            | FsError::ForeignOwner { path, .. } => path,
            FsError::BadName { dir, .. } => dir,
        }
    }

    pub(crate) fn io(op: &'static str, path: &Path, errno: nix::errno::Errno) -> FsError {
        FsError::Io {
            op,
            path: path.to_path_buf(),
            source: io::Error::from(errno),
        }
    }

    pub(crate) fn std_io(op: &'static str, path: &Path, source: io::Error) -> FsError {
        FsError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Maps the ELOOP of an `O_NOFOLLOW` open to [`FsError::Symlink`] when the last component
/// really is a link (ELOOP also means "too many links" in the directories above it).
pub(crate) fn open_error(op: &'static str, path: &Path, errno: nix::errno::Errno) -> FsError {
    if errno == nix::errno::Errno::ELOOP {
        let is_link = std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            return FsError::Symlink {
                op,
                path: path.to_path_buf(),
            };
        }
    }
    FsError::io(op, path, errno)
}
