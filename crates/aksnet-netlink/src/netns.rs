//! Network namespaces, never leaving a thread in the wrong one.
//!
//! Rule (docs/prior-art.md#network-namespaces): no early return and no panic
//! may leave a thread in another namespace (netavark's `exec_netns!` bug).
//! Work that must happen inside a namespace (opening a netlink socket there,
//! writing its /proc/sys) runs either on a short-lived scoped thread that does
//! `setns` and exits ([`run_in_netns`]), or on the calling thread between a
//! `setns` in and a `setns` back that a drop guard makes unconditional, the
//! process aborting if the way back fails ([`run_here_in_netns`]: a thread
//! costs more than the rest of a CNI ADD's pod-side work, docs/benchmarks.md).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetlinkError, Result};

/// Where named namespaces live, as with `ip netns` (iproute2 NETNS_RUN_DIR).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// An open network namespace (a file descriptor on an `nsfs` file).
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at `path` (`/var/run/netns/cni-…`,
    /// `/proc/<pid>/ns/net`), the CNI_NETNS of a runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|e| NetlinkError::io("open netns", path.display().to_string(), e))?;
        Ok(Self {
            fd: file.into(),
            path: path.to_path_buf(),
        })
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<Self> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the network namespace the calling thread is in (the
    /// same nsfs inode). A runtime never asks a plugin to configure the
    /// plugin's own namespace: `CNI_NETNS=/proc/self/ns/net` would put a pod's
    /// interface and default route into the host (issue 10, item 7).
    pub fn is_current(&self) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let here = "/proc/thread-self/ns/net";
        let mine = std::fs::metadata(here)
            .map_err(|e| NetlinkError::io("stat netns", here.to_string(), e))?;
        let theirs = File::from(
            self.fd
                .try_clone()
                .map_err(|e| NetlinkError::io("dup netns", self.path.display().to_string(), e))?,
        )
        .metadata()
        .map_err(|e| NetlinkError::io("stat netns", self.path.display().to_string(), e))?;
        Ok(mine.dev() == theirs.dev() && mine.ino() == theirs.ino())
    }

    /// Runs `f` on a scoped thread inside this namespace and returns its
    /// result. The thread exits afterwards; the caller's thread is untouched.
    /// A panic in `f` is propagated to the caller.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        run_in_netns(self, f)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Netns {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Runs `f` inside `netns` on a short-lived scoped thread (see module docs).
pub fn run_in_netns<R: Send>(netns: &Netns, f: impl FnOnce() -> R + Send) -> Result<R> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| {
                NetlinkError::from_errno("enter netns", netns.path.display().to_string(), errno)
            })?;
            Ok(f())
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `f` on the calling thread inside `netns`, then returns the thread to
/// the namespace it was in, also when `f` panics (a drop guard). Cheaper than
/// [`run_in_netns`] by a thread (clone, a stack mapping and its unmapping,
/// which in a VM costs cross-CPU TLB flushes). Should the way back fail
/// (`setns` to a namespace whose fd we hold fails only without memory or
/// `CAP_SYS_ADMIN`, which the way in just had), the process aborts rather
/// than go on in the wrong namespace.
pub fn run_here_in_netns<R>(netns: &Netns, f: impl FnOnce() -> R) -> Result<R> {
    let home = Netns::current()?;
    setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| {
        NetlinkError::from_errno("enter netns", netns.path.display().to_string(), errno)
    })?;
    struct GoHome(Netns);
    impl Drop for GoHome {
        fn drop(&mut self) {
            if setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
                std::process::abort();
            }
        }
    }
    let home = GoHome(home);
    let out = f();
    drop(home);
    Ok(out)
}

/// The path of the named namespace `name` (`/run/netns/<name>`).
pub fn named_netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

fn validate_netns_name(op: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(NetlinkError::invalid(
            op,
            format!("{name:?}"),
            "netns name must be non-empty, not '.' or '..', without '/' or NUL",
        ));
    }
    Ok(())
}

/// Creates a named network namespace, like `ip netns add <name>`: a new
/// netns bind-mounted on `/run/netns/<name>`, so it outlives this process
/// and `ip netns exec` finds it. Done in Rust (no `ip` process): the unshare
/// happens on a scoped thread, which exits once the bind mount holds the
/// namespace. Fails with EEXIST if the name is taken.
pub fn create_named_netns(name: &str) -> Result<Netns> {
    const OP: &str = "create netns";
    validate_netns_name(OP, name)?;
    ensure_netns_run_dir()?;
    let path = named_netns_path(name);
    let shown = path.display().to_string();
    // The mount point; create_new so two creators of one name cannot both win.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| NetlinkError::io(OP, shown.clone(), e))?;
    let bound = std::thread::scope(|scope| {
        scope
            .spawn(|| -> std::result::Result<(), Errno> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            })
            .join()
    });
    let bound = match bound {
        Ok(result) => result,
        Err(panic) => {
            let _ = std::fs::remove_file(&path);
            std::panic::resume_unwind(panic)
        }
    };
    if let Err(errno) = bound {
        let _ = std::fs::remove_file(&path);
        return Err(NetlinkError::from_errno(OP, shown, errno));
    }
    Netns::open(&path)
}

/// Deletes a named namespace, like `ip netns del <name>`: unmounts and
/// removes `/run/netns/<name>`. The namespace itself (and every link in it)
/// goes away once nothing else holds it. Returns false when it did not exist.
pub fn delete_named_netns(name: &str) -> Result<bool> {
    const OP: &str = "delete netns";
    validate_netns_name(OP, name)?;
    let path = named_netns_path(name);
    let shown = path.display().to_string();
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a half-created entry); ENOENT: absent.
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(errno) => return Err(NetlinkError::from_errno(OP, shown, errno)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(NetlinkError::io(OP, shown, e)),
    }
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2 does
/// (`ip/ipnetns.c: netns_add`), so namespace mounts propagate into mount
/// namespaces created later (containers, `ip netns exec`).
fn ensure_netns_run_dir() -> Result<()> {
    const OP: &str = "prepare netns dir";
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(|e| NetlinkError::io(OP, NETNS_RUN_DIR, e))?;
    let make_shared = || {
        mount(
            Some("none"),
            NETNS_RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself, then retry.
        Err(Errno::EINVAL) => {
            mount(
                Some(NETNS_RUN_DIR),
                NETNS_RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|errno| NetlinkError::from_errno(OP, NETNS_RUN_DIR, errno))?;
            make_shared().map_err(|errno| NetlinkError::from_errno(OP, NETNS_RUN_DIR, errno))
        }
        Err(errno) => Err(NetlinkError::from_errno(OP, NETNS_RUN_DIR, errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_names_with_path_tricks_are_rejected() {
        for bad in ["", ".", "..", "a/b", "../etc"] {
            assert!(validate_netns_name("t", bad).is_err(), "{bad:?}");
        }
        assert!(validate_netns_name("t", "aksnt-x.1").is_ok());
    }
}
