//! aksnet-netlink: aksnet's kernel plumbing.
//!
//! Links, addresses, routes, neighbours, sysctls and network namespaces for
//! the CNI plugin (`aksnet-cni`: kubenet = bridge + veth, nodesubnet =
//! Azure's routed "transparent" datapath, docs/azure.md#transparent-mode, #kubenet)
//! and for the lab.
//!
//! Shape (docs/prior-art.md#netlink-socket, #network-namespaces, #errors):
//! - synchronous, no async runtime: the plugin is a one-shot process;
//! - one rtnetlink socket per [`Handle`], reused for every request, each
//!   request ACKed and each kernel error kept with its errno;
//! - a [`Handle`] for another namespace owns a socket created inside that
//!   namespace by a short-lived scoped thread: the calling thread never
//!   changes namespace;
//! - functions named for intent (`create_veth`, `add_host_route`), taking
//!   and returning our own small types, never `netlink-packet-*` types.
//!
//! All functions return [`Result`] with a [`NetlinkError`] that names the
//! operation, the object and the errno.

mod addr;
mod error;
mod handle;
mod ifname;
mod link;
mod neigh;
mod netns;
mod proxy;
mod route;
mod socket;
mod sysctl;

pub use error::{ErrorKind, NetlinkError, Result};
pub use handle::Handle;
pub use ifname::{format_mac, parse_mac, validate_ifname, IFNAMSIZ};
pub use link::Link;
pub use neigh::{Neighbour, NeighbourState};
pub use netns::{
    create_named_netns, delete_named_netns, named_netns_path, run_here_in_netns, run_in_netns,
    Netns, NETNS_RUN_DIR,
};
pub use proxy::{gratuitous_arp, send_gratuitous_arp};
pub use route::{Route, RouteProtocol, RouteScope, RT_TABLE_MAIN};
pub use sysctl::{
    enable_ip_forward, enable_ipv6_forward, get_sysctl, set_accept_ra, set_default_accept_ra,
    set_proxy_arp, set_proxy_delay_zero, set_sysctl,
};

/// Re-exported so callers need no direct `ipnet` dependency for our signatures.
pub use ipnet::IpNet;
/// Re-exported so callers can match errnos without their own `nix` dependency.
pub use nix::errno::Errno;
