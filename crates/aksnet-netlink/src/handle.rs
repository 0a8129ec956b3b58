//! [`Handle`]: one rtnetlink socket bound to one network namespace.

use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Result};
use crate::netns::{run_here_in_netns, run_in_netns, Netns};
use crate::socket::Socket;

/// One rtnetlink socket, bound for life to the namespace it was opened in.
/// Open one per namespace and reuse it for every operation there: creating
/// sockets per call would cost the plugin's ADD budget (~3 ms).
pub struct Handle {
    sock: Socket,
}

impl Handle {
    /// A handle on the calling thread's current network namespace.
    pub fn new() -> Result<Self> {
        let sock = Socket::open()
            .map_err(|e| NetlinkError::io("open netlink socket", "current netns", e))?;
        Ok(Self { sock })
    }

    /// A handle on `netns`. The socket is created by a scoped thread that
    /// enters `netns` and exits; the calling thread does not change namespace.
    pub fn in_netns(netns: &Netns) -> Result<Self> {
        Self::in_netns_with(netns, || Ok(()))
    }

    /// As [`Handle::in_netns`], and runs `prepare` on the same thread while it
    /// is inside the namespace (sysctls, say): one entry into the namespace
    /// instead of two, each of which costs a thread and a `setns`.
    pub fn in_netns_with(
        netns: &Netns,
        prepare: impl FnOnce() -> Result<()> + Send,
    ) -> Result<Self> {
        let (sock, prepared) = run_in_netns(netns, || (Socket::open(), prepare()))?;
        let sock = sock.map_err(|e| {
            NetlinkError::io("open netlink socket", netns.path().display().to_string(), e)
        })?;
        prepared?;
        Ok(Self { sock })
    }

    /// As [`Handle::in_netns_with`], on the calling thread
    /// ([`run_here_in_netns`]: no thread, the thread is back in its own
    /// namespace when this returns).
    pub fn in_netns_here_with(netns: &Netns, prepare: impl FnOnce() -> Result<()>) -> Result<Self> {
        let (sock, prepared) = run_here_in_netns(netns, || (Socket::open(), prepare()))?;
        let sock = sock.map_err(|e| {
            NetlinkError::io("open netlink socket", netns.path().display().to_string(), e)
        })?;
        prepared?;
        Ok(Self { sock })
    }

    /// A change or get request, ACKed; returns what the kernel sent before
    /// the ACK. `object` is only formatted when the request fails.
    pub(crate) fn request(
        &mut self,
        op: &'static str,
        object: impl FnOnce() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.sock
            .request(msg, flags)
            .map_err(|kind| NetlinkError::new(op, object(), kind))
    }

    /// A dump request, retried on NLM_F_DUMP_INTR.
    pub(crate) fn dump(
        &mut self,
        op: &'static str,
        object: impl FnOnce() -> String,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.sock
            .dump(msg)
            .map_err(|kind| NetlinkError::new(op, object(), kind))
    }
}
