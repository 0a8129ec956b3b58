//! Layer-2 answers on a plain LAN (issue 13 item 1; docs/agent.md, "L2 answers on a
//! plain LAN"). In Azure the SDN delivers a pod's secondary address to its node; on
//! an ordinary switch nobody does, so the node must answer ARP on its uplink for the
//! addresses of its own pods, and only those: one proxy neighbour entry per address
//! (`ip neigh add proxy IP dev UPLINK`; the kernel answers when it has a route to
//! the address through another device, the pod's /32 via its veth:
//! `arp_process` in net/ipv4/arp.c).
//!
//! A pure desired-state controller: desired = the pod addresses this node's IPAM
//! state holds inside its pool's subnet; current = the uplink's IPv4 proxy entries
//! inside that subnet (entries outside it are not ours and are never touched); only
//! the difference is applied, so a restart or a second run changes nothing.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use aksnet_netlink::{Handle, NetlinkError};
use ipnet::Ipv4Net;

/// What to change on the uplink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Diff {
    pub add: Vec<Ipv4Addr>,
    pub del: Vec<Ipv4Addr>,
}

/// The proxy entries to add and delete so that the entries inside `subnet` are
/// exactly `desired` (addresses of `desired` outside `subnet` are ignored).
pub fn diff(subnet: Ipv4Net, desired: &BTreeSet<Ipv4Addr>, current: &[IpAddr]) -> L2Diff {
    let current: BTreeSet<Ipv4Addr> = current
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) if subnet.contains(v4) => Some(*v4),
            _ => None,
        })
        .collect();
    let desired: BTreeSet<Ipv4Addr> = desired
        .iter()
        .copied()
        .filter(|ip| subnet.contains(ip))
        .collect();
    L2Diff {
        add: desired.difference(&current).copied().collect(),
        del: current.difference(&desired).copied().collect(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("--l2-uplink {name}: no such interface in this network namespace")]
    NoUplink { name: String },
    #[error("L2 answers: {0}")]
    Pool(#[from] aksnet_store::local_pool::LocalPoolError),
    #[error("L2 answers: read the IPAM state in {}: {source}", data_dir.display())]
    Ipam {
        data_dir: std::path::PathBuf,
        #[source]
        source: aksnet_ipam::IpamError,
    },
    #[error("L2 answers on {uplink}: {source}")]
    Netlink {
        uplink: String,
        #[source]
        source: NetlinkError,
    },
}

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Outcome {
    /// `false` when the node has no pool (not joined): nothing was touched.
    pub joined: bool,
    pub diff: L2Diff,
    /// Entries kept as they were.
    pub kept: usize,
}

/// The node pool's subnet and the pod addresses its IPAM state holds in it (the
/// node's own address excluded: the uplink holds it itself). `None` without a pool.
pub fn desired_addresses(
    data_dir: &Path,
) -> Result<Option<(Ipv4Net, BTreeSet<Ipv4Addr>)>, L2Error> {
    let Some(pool) = aksnet_store::local_pool::read_node_pool(data_dir)? else {
        return Ok(None);
    };
    let mut desired = aksnet_node::held::held_addresses(data_dir).map_err(|e| L2Error::Ipam {
        data_dir: e.data_dir,
        source: e.source,
    })?;
    desired.retain(|ip| pool.subnet.contains(ip) && *ip != pool.node_ip);
    Ok(Some((pool.subnet, desired)))
}

/// The subnets whose proxy entries are ours and the addresses to answer for:
/// the pool's subnet and its pods' addresses; with no pool (the node left) or a
/// fenced one (its lease was lost: the store may give the addresses to another
/// node), every subnet of the uplink and no address, so the node stops answering.
fn answers(
    handle: &mut Handle,
    uplink: &aksnet_netlink::Link,
    data_dir: &Path,
) -> Result<(bool, Vec<Ipv4Net>, BTreeSet<Ipv4Addr>), L2Error> {
    match desired_addresses(data_dir) {
        Ok(Some((subnet, desired))) => return Ok((true, vec![subnet], desired)),
        Ok(None) | Err(L2Error::Pool(aksnet_store::local_pool::LocalPoolError::Fenced { .. })) => {}
        Err(e) => return Err(e),
    }
    let subnets = handle
        .list_addrs(uplink.index)
        .map_err(|source| L2Error::Netlink {
            uplink: uplink.name.clone(),
            source,
        })?
        .into_iter()
        .filter_map(|n| match n {
            aksnet_netlink::IpNet::V4(v4) => Some(v4.trunc()),
            aksnet_netlink::IpNet::V6(_) => None,
        })
        .collect();
    Ok((false, subnets, BTreeSet::new()))
}

/// Brings the uplink's proxy entries to the desired set, in the calling thread's
/// network namespace; a gratuitous ARP announces each newly added address.
pub fn reconcile_l2(uplink: &str, data_dir: &Path) -> Result<L2Outcome, L2Error> {
    let nl = |source| L2Error::Netlink {
        uplink: uplink.to_string(),
        source,
    };
    let mut handle = Handle::new().map_err(nl)?;
    let link = handle
        .link_by_name(uplink)
        .map_err(nl)?
        .ok_or_else(|| L2Error::NoUplink {
            name: uplink.to_string(),
        })?;
    let (joined, subnets, desired) = answers(&mut handle, &link, data_dir)?;
    // The kernel delays proxied ARP replies by proxy_delay (default 80 jiffies, up
    // to 0.8 s: Documentation/networking/ip-sysctl.rst); a pod must be reachable at once.
    if joined {
        aksnet_netlink::set_proxy_delay_zero(uplink).map_err(nl)?;
    }
    let current = handle.list_proxy_neighbours(link.index).map_err(nl)?;
    let mut d = L2Diff::default();
    for subnet in subnets {
        let part = diff(subnet, &desired, &current);
        d.add.extend(part.add);
        d.del.extend(part.del);
    }
    for ip in &d.del {
        handle
            .del_proxy_neighbour(link.index, IpAddr::V4(*ip))
            .map_err(nl)?;
    }
    for ip in &d.add {
        handle
            .add_proxy_neighbour(link.index, IpAddr::V4(*ip))
            .map_err(nl)?;
        // Replaces neighbours' stale entries of an address that moved here.
        aksnet_netlink::send_gratuitous_arp(link.index, *ip, link.mac).map_err(nl)?;
    }
    Ok(L2Outcome {
        joined,
        kept: desired.len() - d.add.len(),
        diff: d,
    })
}

/// Stops answering for `addresses` on every link of the calling thread's network
/// namespace, now: `aksnet node leave` calls it before the store frees them, so
/// no address is ever answered for by two nodes (the agent's next resync would
/// remove them too, but another node may take the addresses sooner). Returns how
/// many entries were removed.
pub fn withdraw(addresses: &[Ipv4Addr]) -> Result<usize, NetlinkError> {
    let mut handle = Handle::new()?;
    let mut removed = 0;
    for link in handle.list_links()? {
        for ip in handle.list_proxy_neighbours(link.index)? {
            let IpAddr::V4(v4) = ip else { continue };
            if addresses.contains(&v4) && handle.del_proxy_neighbour(link.index, ip)? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ips(v: &[&str]) -> Vec<Ipv4Addr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn only_the_difference_inside_the_subnet_is_applied() {
        let subnet: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let desired: BTreeSet<Ipv4Addr> = ips(&["10.0.0.5", "10.0.0.6", "10.1.0.9"])
            .into_iter()
            .collect();
        let current: Vec<IpAddr> = ["10.0.0.6", "10.0.0.7", "192.168.1.1", "fd00::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let d = diff(subnet, &desired, &current);
        assert_eq!(d.add, ips(&["10.0.0.5"]));
        assert_eq!(
            d.del,
            ips(&["10.0.0.7"]),
            "entries outside the subnet are not ours"
        );
    }

    #[test]
    fn a_converged_uplink_needs_nothing() {
        let subnet: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let desired: BTreeSet<Ipv4Addr> = ips(&["10.0.0.5", "10.0.0.6"]).into_iter().collect();
        let current: Vec<IpAddr> = desired.iter().map(|ip| IpAddr::V4(*ip)).collect();
        assert_eq!(diff(subnet, &desired, &current), L2Diff::default());
        let empty = BTreeSet::new();
        assert_eq!(
            diff(subnet, &empty, &current).del,
            ips(&["10.0.0.5", "10.0.0.6"])
        );
    }
}
