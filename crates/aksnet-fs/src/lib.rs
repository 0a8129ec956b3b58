//! aksnet-fs: the one way aksnet creates its directories, replaces its files and opens
//! its lock files (issue 10, item 5). Every state writer in the tree goes through here:
//! the node IPAM state (`aksnet-ipam`), the embedded cluster store and `node-pool.json`
//! (`aksnet-store`), and the agent's status file (`aksnet-agent`).
//!
//! The rules, and why:
//!
//! - **Nothing is opened through a symbolic link we did not expect.** Temp files are
//!   created with `O_CREAT|O_EXCL|O_NOFOLLOW` under a unique name, so a link planted at
//!   the temp path makes the write fail instead of making root write through it
//!   (CWE-59; open(2) "O_EXCL ... If pathname is a symbolic link, open() fails regardless
//!   of where the link points"). A target, lock file or private directory that is itself a
//!   symlink is refused with an error naming it.
//! - **Modes never depend on the umask.** Every file and directory we create gets its mode
//!   with `fchmod` after creation: directories 0700, files 0600, and 0644 only for files
//!   meant to be read by other users (the agent's status file). See docs/architecture.md,
//!   "Files and modes".
//! - **Atomic and durable replacement**: write a temp file in the same directory,
//!   `fdatasync`, `rename(2)` over the target, `fsync` the directory (a caller may defer the
//!   directory fsync, see [`write_atomic_deferred`]).
//! - **Reads are bounded**: [`read_regular_capped`] refuses directories, FIFOs and devices
//!   (a FIFO would block the reader forever) and files over a size limit.
//!
//! Errors name the path and keep the `io::Error` (and so the errno) as their source;
//! callers branch on [`FsError::errno`] or the variant, never on the text.

mod dir;
mod error;
mod lock;
mod read;
mod write;

pub use dir::ensure_private_dir;
pub use error::{FileKind, FsError};
pub use lock::open_lock_file;
pub use read::{read_regular_capped, read_regular_capped_following};
pub use write::{
    remove_durably, write_atomic, write_atomic_deferred, write_atomic_volatile, DirSync,
};

/// Mode of every directory aksnet creates for its own state.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of aksnet's state, pool, store and lock files: only root reads or writes them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of files meant to be read by other users on the node (the agent's status file,
/// read by monitoring).
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of directories we create above a private directory that did not exist yet (for
/// example `/var/lib` on a minimal system): traversable, writable only by their owner.
pub const PARENT_DIR_MODE: u32 = 0o755;
