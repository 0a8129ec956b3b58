//! Answering ARP on a node's uplink for the addresses of its pods, the part of
//! Azure's fabric a plain L2 segment lacks (docs/azure.md#transparent-mode):
//! per-address proxy neighbour entries (`ip neigh add proxy IP dev UPLINK`),
//! and a gratuitous ARP when an address appears, so that the neighbours'
//! caches of a moved address are replaced at once.
//!
//! A proxy entry answers for exactly one address, unlike `proxy_arp=1` on the
//! uplink, which answers for everything the node routes elsewhere. The kernel
//! answers an ARP request for a proxied address when it has a route for it
//! through another device (the pod's /32 via its veth): `arp_process` in
//! net/ipv4/arp.c, `pneigh_lookup` branch.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;

fn proxy_message(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = index;
    msg.header.flags = NeighbourFlags::Proxy;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
    msg
}

impl Handle {
    /// Answers ARP (IPv4) or NDP (IPv6) for `ip` on link `index`. Idempotent.
    pub fn add_proxy_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<()> {
        self.request(
            "add proxy neighbour",
            || format!("{ip} dev index {index}"),
            RouteNetlinkMessage::NewNeighbour(proxy_message(index, ip)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Stops answering for `ip` on link `index`. Returns false when there was
    /// no such entry.
    pub fn del_proxy_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<bool> {
        let deleted = self.request(
            "delete proxy neighbour",
            || format!("{ip} dev index {index}"),
            RouteNetlinkMessage::DelNeighbour(proxy_message(index, ip)),
            0,
        );
        match deleted {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The addresses answered for on link `index` (IPv4 and IPv6).
    pub fn list_proxy_neighbours(&mut self, index: u32) -> Result<Vec<IpAddr>> {
        let mut msg = NeighbourMessage::default();
        // NTF_PROXY in a dump request selects the proxy table; with
        // NETLINK_GET_STRICT_CHK the device filter is NDA_IFINDEX
        // (net/core/neighbour.c: neigh_valid_dump_req, pneigh_dump_table).
        msg.header.flags = NeighbourFlags::Proxy;
        msg.attributes.push(NeighbourAttribute::IfIndex(index));
        let replies = self.dump(
            "list proxy neighbours",
            || format!("dev index {index}"),
            RouteNetlinkMessage::GetNeighbour(msg),
        )?;
        let mut out: Vec<IpAddr> = replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(m)
                    if m.header.ifindex == index
                        && m.header.flags.contains(NeighbourFlags::Proxy) =>
                {
                    m.attributes.iter().find_map(|a| match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                            Some(IpAddr::V4(*v4))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                            Some(IpAddr::V6(*v6))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// The ARP packet (RFC 826) of a gratuitous ARP in the form RFC 5227
/// section 2.3 calls an ARP Announcement: a request whose sender and target
/// protocol addresses are both `ip`, sender hardware address `mac`, target
/// hardware address zero, sent to the broadcast address. Linux takes sender
/// equal to target as gratuitous and replaces an existing cache entry at once,
/// even inside its lock time (`arp_is_garp` in net/ipv4/arp.c; a gratuitous
/// *reply* would also need the target hardware address to equal the sender's).
pub fn gratuitous_arp(ip: Ipv4Addr, mac: [u8; 6]) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    p[4] = 6; // hardware address length
    p[5] = 4; // protocol address length
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // operation: request
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&ip.octets());
    // target hardware address: zero (p[18..24])
    p[24..28].copy_from_slice(&ip.octets());
    p
}

/// Broadcasts a gratuitous ARP for `ip` at `mac` out of link `index`, from
/// the calling thread's network namespace (AF_PACKET, datagram mode: the
/// kernel adds the Ethernet header). std and nix have no safe way to name a
/// link-layer destination, so this is the one place with `unsafe`.
#[allow(unsafe_code)]
pub fn send_gratuitous_arp(index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const OP: &str = "send gratuitous ARP";
    let object = || format!("{ip} dev index {index}");
    let io_err = |e: std::io::Error| crate::error::NetlinkError::io(OP, object(), e);
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: socket(2) takes no pointers; a negative result is handled below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(io_err(std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a socket we just opened and own; OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ifindex = i32::try_from(index)
        .map_err(|_| io_err(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&[0xff; 6]);
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: proto,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    };
    let packet = gratuitous_arp(ip, mac);
    // SAFETY: `packet` and `sll` live across the call, and the lengths passed
    // are their sizes; sendto(2) only reads them.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io_err(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    #[test]
    fn proxy_message_carries_the_flag_and_address() {
        let ip: IpAddr = "10.240.0.9"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let msg = proxy_message(7, ip);
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        let back = NeighbourMessage::parse(bytes.as_slice());
        assert!(
            matches!(back, Ok(ref m) if m.header.flags == NeighbourFlags::Proxy
            && m.header.ifindex == 7)
        );
    }

    #[test]
    fn gratuitous_arp_layout() {
        let p = gratuitous_arp(Ipv4Addr::new(10, 240, 0, 9), [2, 0, 0, 0, 0, 1]);
        assert_eq!(&p[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[8..14], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&p[14..18], &[10, 240, 0, 9]);
        assert_eq!(&p[24..28], &[10, 240, 0, 9]);
    }
}
