//! The one error type of this crate.
//!
//! Every failure names the operation (`"create veth"`), the object it was
//! applied to (`"azv79d05038592 (peer eth0)"`) and, when the kernel or a
//! syscall refused, the errno. Callers branch on [`NetlinkError::errno`] or
//! the helpers ([`NetlinkError::is_exists`], [`NetlinkError::is_not_found`]),
//! never on message text (docs/prior-art.md#errors).

use nix::errno::Errno;

/// An operation on kernel networking state failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {object}: {kind}")]
pub struct NetlinkError {
    /// What we tried to do, for example `"add route"`.
    pub op: &'static str,
    /// What we tried to do it to, for example `"10.240.0.25/32 dev azv79d05038592"`.
    pub object: String,
    /// Why it failed.
    #[source]
    pub kind: ErrorKind,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The kernel answered the netlink request with an error (NLMSG_ERROR).
    /// `ext_ack` holds the kernel's extended-ack text when it gave one
    /// (NETLINK_EXT_ACK, e.g. "Nexthop has invalid gateway").
    #[error("{}{}", errno, ext_ack.as_deref().map(|m| format!(" (kernel: {m})")).unwrap_or_default())]
    Kernel {
        errno: Errno,
        ext_ack: Option<String>,
    },
    /// A syscall or file operation failed (socket, setns, mount, /proc/sys).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The kernel's reply could not be decoded.
    #[error("malformed netlink reply: {0}")]
    Decode(String),
    /// The reply did not follow the netlink protocol (unexpected message,
    /// truncated datagram, dump still interrupted after retries).
    #[error("netlink protocol: {0}")]
    Protocol(String),
    /// A link of that name exists but is of another kind (e.g. `cbr0` is a
    /// veth, not a bridge). Nothing was changed.
    #[error("exists as {found}, expected {expected}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    /// The caller passed a value the kernel would reject or misread
    /// (interface name too long, sysctl path with `..`, ...). Nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl NetlinkError {
    pub(crate) fn new(op: &'static str, object: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            op,
            object: object.into(),
            kind,
        }
    }

    pub(crate) fn invalid(
        op: &'static str,
        object: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self::new(op, object, ErrorKind::InvalidInput(why.into()))
    }

    pub(crate) fn io(op: &'static str, object: impl Into<String>, err: std::io::Error) -> Self {
        Self::new(op, object, ErrorKind::Io(err))
    }

    pub(crate) fn from_errno(op: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Self::new(
            op,
            object,
            ErrorKind::Io(std::io::Error::from_raw_os_error(errno as i32)),
        )
    }

    /// The errno behind this error: from the kernel's netlink answer or from
    /// the failed syscall. `None` for decode, protocol and input errors.
    pub fn errno(&self) -> Option<Errno> {
        match &self.kind {
            ErrorKind::Kernel { errno, .. } => Some(*errno),
            ErrorKind::Io(e) => e.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }

    /// The object already exists (EEXIST): a duplicate link, address or route.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }

    /// The object (or what it refers to) does not exist: ENODEV (no such
    /// link), ENOENT (no such file / netns path), ESRCH (no such route),
    /// EADDRNOTAVAIL (no such address).
    /// ENETUNREACH or EHOSTUNREACH: no route leads to the destination.
    pub fn is_unreachable(&self) -> bool {
        matches!(self.errno(), Some(Errno::ENETUNREACH | Errno::EHOSTUNREACH))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(Errno::ENODEV | Errno::ENOENT | Errno::ESRCH | Errno::EADDRNOTAVAIL)
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_object_and_errno() {
        let e = NetlinkError::new(
            "create veth",
            "aksntv1 (peer eth0)",
            ErrorKind::Kernel {
                errno: Errno::EEXIST,
                ext_ack: None,
            },
        );
        assert_eq!(
            e.to_string(),
            "create veth aksntv1 (peer eth0): EEXIST: File exists"
        );
        assert!(e.is_exists());
        assert!(!e.is_not_found());
    }

    #[test]
    fn display_includes_kernel_ext_ack() {
        let e = NetlinkError::new(
            "add route",
            "0.0.0.0/0 via 169.254.1.1",
            ErrorKind::Kernel {
                errno: Errno::ENETUNREACH,
                ext_ack: Some("Nexthop has invalid gateway".into()),
            },
        );
        assert!(
            e.to_string()
                .ends_with("(kernel: Nexthop has invalid gateway)"),
            "{e}"
        );
    }

    #[test]
    fn io_errors_expose_their_errno() {
        let e = NetlinkError::from_errno("open netns", "/run/netns/x", Errno::ENOENT);
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert!(e.is_not_found());
        let e = NetlinkError::invalid("add link", "x", "too long");
        assert_eq!(e.errno(), None);
    }
}
