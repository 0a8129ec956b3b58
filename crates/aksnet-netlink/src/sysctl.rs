//! Sysctls under /proc/sys, in the calling thread's network namespace.
//!
//! `/proc/sys/net/*` shows the namespace of the thread that opens it, so to
//! change a pod's sysctls run these through [`crate::run_in_netns`].
//! Paths use the slash form (`net/ipv4/conf/<ifname>/proxy_arp`) so interface
//! names with dots stay unambiguous (netavark `sysctl.rs`,
//! docs/prior-art.md#sysctls).

use std::path::PathBuf;

use crate::error::{NetlinkError, Result};
use crate::ifname::check_ifname;

const PROC_SYS: &str = "/proc/sys";

fn sysctl_file(op: &'static str, path: &str) -> Result<PathBuf> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(NetlinkError::invalid(
            op,
            path,
            "sysctl path must be relative to /proc/sys, like net/ipv4/ip_forward, without empty, '.' or '..' parts",
        ));
    }
    Ok(PathBuf::from(PROC_SYS).join(path))
}

/// Reads `/proc/sys/<path>`, trimmed.
pub fn get_sysctl(path: &str) -> Result<String> {
    const OP: &str = "read sysctl";
    let file = sysctl_file(OP, path)?;
    std::fs::read_to_string(&file)
        .map(|value| value.trim().to_string())
        .map_err(|e| NetlinkError::io(OP, path, e))
}

/// Writes `value` to `/proc/sys/<path>`, skipping the write when the value
/// is already set (a write can be refused on a read-only /proc even when it
/// would change nothing). One open for both: every open walks the path, and a
/// lookup under /proc/sys compares each cached entry of that name in every
/// network namespace (`proc_sys_compare`, fs/proc/proc_sysctl.c), so a walk
/// costs more the more pods the node has (docs/benchmarks.md, "What grows with
/// the pods on the node").
pub fn set_sysctl(path: &str, value: &str) -> Result<()> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    const OP: &str = "write sysctl";
    let file = sysctl_file(OP, path)?;
    let write_err = |e| NetlinkError::io(OP, format!("{path}={value}"), e);
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
    {
        Ok(f) => f,
        // Not writable (a read-only /proc, no privilege): fine if already set.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EROFS | libc::EACCES | libc::EPERM)
            ) =>
        {
            return match std::fs::read_to_string(&file) {
                Ok(current) if current.trim() == value => Ok(()),
                _ => Err(write_err(e)),
            };
        }
        Err(e) => return Err(write_err(e)),
    };
    let mut current = String::new();
    if f.read_to_string(&mut current).is_ok() && current.trim() == value {
        return Ok(());
    }
    // At offset 0: a sysctl write that does not start at the file's beginning is
    // ignored (`kernel.sysctl_writes_strict`, Documentation/admin-guide/sysctl/kernel.rst).
    f.write_all_at(value.as_bytes(), 0).map_err(write_err)
}

/// `net.ipv4.conf.<ifname>.proxy_arp`: nodesubnet's host veth answers the
/// pod's ARP requests for any address (docs/azure.md#transparent-mode step 4).
pub fn set_proxy_arp(ifname: &str, on: bool) -> Result<()> {
    check_ifname("write sysctl", ifname)?;
    set_sysctl(
        &format!("net/ipv4/conf/{ifname}/proxy_arp"),
        if on { "1" } else { "0" },
    )
}

/// `net.ipv6.conf.<ifname>.accept_ra`. No error when IPv6 is disabled and
/// the file does not exist.
pub fn set_accept_ra(ifname: &str, value: u8) -> Result<()> {
    check_ifname("write sysctl", ifname)?;
    ignore_missing(set_sysctl(
        &format!("net/ipv6/conf/{ifname}/accept_ra"),
        &value.to_string(),
    ))
}

/// `net.ipv6.conf.default.accept_ra` of the calling thread's netns: every
/// interface created in that namespace afterwards starts with this value
/// (the kernel copies `default` when it registers a device). No error when
/// IPv6 is disabled.
pub fn set_default_accept_ra(value: u8) -> Result<()> {
    ignore_missing(set_sysctl(
        "net/ipv6/conf/default/accept_ra",
        &value.to_string(),
    ))
}

/// `net.ipv4.neigh.<ifname>.proxy_delay=0`: answer ARP for proxied
/// addresses at once. The default (80, in hundredths of a second) holds each
/// broadcast request up to 0.8 s before the answer (`pneigh_enqueue` in
/// net/core/neighbour.c), which a LAN host sees as a slow first packet.
pub fn set_proxy_delay_zero(ifname: &str) -> Result<()> {
    check_ifname("write sysctl", ifname)?;
    set_sysctl(&format!("net/ipv4/neigh/{ifname}/proxy_delay"), "0")
}

/// `net.ipv4.ip_forward=1` (also sets `net.ipv4.conf.all.forwarding`).
pub fn enable_ip_forward() -> Result<()> {
    set_sysctl("net/ipv4/ip_forward", "1")
}

/// `net.ipv6.conf.all.forwarding=1`; no error when IPv6 is disabled.
pub fn enable_ipv6_forward() -> Result<()> {
    ignore_missing(set_sysctl("net/ipv6/conf/all/forwarding", "1"))
}

fn ignore_missing(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths_cannot_escape_proc_sys() {
        for bad in [
            "",
            "/etc/passwd",
            "net/../../etc",
            "net//x",
            "net/./x",
            "net/ipv4/",
        ] {
            assert!(sysctl_file("t", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            sysctl_file("t", "net/ipv4/conf/eth0.100/proxy_arp").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/proxy_arp")
        );
    }

    #[test]
    fn bad_ifname_is_rejected_before_touching_proc() {
        let err = set_proxy_arp("../../x", true).unwrap_err();
        assert!(matches!(err.kind, crate::ErrorKind::InvalidInput(_)));
    }
}
