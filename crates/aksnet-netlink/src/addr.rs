//! Interface addresses.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;

fn family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// Builds RTM_NEWADDR / RTM_DELADDR for `net` on link `index`.
pub(crate) fn addr_message(index: u32, net: IpNet, noprefixroute: bool) -> AddressMessage {
    let ip = net.addr();
    let mut msg = AddressMessage::default();
    msg.header.family = family(&ip);
    msg.header.prefix_len = net.prefix_len();
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS equals it on
    // non point-to-point links (iproute2 sends both).
    if ip.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(ip));
    }
    msg.attributes.push(AddressAttribute::Address(ip));
    if let IpNet::V4(v4) = net {
        // The reference plugins (Go netlink `AddrAdd`) set the broadcast
        // address for prefixes shorter than /31; keep `ip addr` identical.
        if v4.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(v4.broadcast()));
        }
    }
    if noprefixroute {
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
    }
    msg
}

fn addr_from_message(msg: &AddressMessage) -> Option<IpNet> {
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    IpNet::new(local.or(address)?, msg.header.prefix_len).ok()
}

impl Handle {
    /// Adds `net` (address + prefix length) to link `index`. The kernel also
    /// adds the connected ("prefix") route for the subnet. EEXIST if present.
    pub fn add_addr(&mut self, index: u32, net: IpNet) -> Result<()> {
        self.new_addr(index, net, false)
    }

    /// Adds `net` to link `index` with IFA_F_NOPREFIXROUTE: the address keeps
    /// the subnet's prefix length but the kernel creates no on-link subnet
    /// route. Nodesubnet's pod address wants exactly that; Azure deletes the
    /// route after adding the address (docs/azure.md#transparent-mode step 5),
    /// this never creates it.
    pub fn add_addr_noprefixroute(&mut self, index: u32, net: IpNet) -> Result<()> {
        self.new_addr(index, net, true)
    }

    fn new_addr(&mut self, index: u32, net: IpNet, noprefixroute: bool) -> Result<()> {
        self.request(
            "add address",
            || format!("{net} dev index {index}"),
            RouteNetlinkMessage::NewAddress(addr_message(index, net, noprefixroute)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds `net` to link `index` unless it is already there. Returns true
    /// when it was added.
    pub fn ensure_addr(&mut self, index: u32, net: IpNet) -> Result<bool> {
        match self.add_addr(index, net) {
            Ok(()) => Ok(true),
            Err(e) if e.is_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `net` from link `index`. Returns false when it was not there.
    pub fn del_addr(&mut self, index: u32, net: IpNet) -> Result<bool> {
        let result = self.request(
            "delete address",
            || format!("{net} dev index {index}"),
            RouteNetlinkMessage::DelAddress(addr_message(index, net, false)),
            0,
        );
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 and IPv6 addresses of link `index`.
    pub fn list_addrs(&mut self, index: u32) -> Result<Vec<IpNet>> {
        let mut msg = AddressMessage::default();
        // With NETLINK_GET_STRICT_CHK the kernel filters on this index.
        msg.header.index = index;
        let replies = self.dump(
            "list addresses",
            || format!("dev index {index}"),
            RouteNetlinkMessage::GetAddress(msg),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(m) if m.header.index == index => {
                    addr_from_message(m)
                }
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn round_trip(msg: &AddressMessage) -> AddressMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        AddressMessage::parse(bytes.as_slice()).unwrap()
    }

    #[test]
    fn ipv4_address_message_round_trips_with_broadcast() {
        let net: IpNet = "10.244.0.5/24".parse().unwrap();
        let msg = round_trip(&addr_message(3, net, false));
        assert_eq!(msg.header.prefix_len, 24);
        assert_eq!(msg.header.index, 3);
        assert!(msg.attributes.contains(&AddressAttribute::Broadcast(
            "10.244.0.255".parse().unwrap()
        )));
        assert_eq!(addr_from_message(&msg), Some(net));
    }

    #[test]
    fn noprefixroute_sets_ifa_flags() {
        let net: IpNet = "10.240.0.25/16".parse().unwrap();
        let msg = round_trip(&addr_message(3, net, true));
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Noprefixroute)));
    }

    #[test]
    fn ipv6_address_has_no_local_or_broadcast() {
        let net: IpNet = "fd00::5/64".parse().unwrap();
        let msg = round_trip(&addr_message(3, net, false));
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert_eq!(msg.attributes.len(), 1);
        assert_eq!(addr_from_message(&msg), Some(net));
    }

    #[test]
    fn slash_32_has_no_broadcast() {
        let msg = addr_message(1, "169.254.1.1/32".parse().unwrap(), false);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Broadcast(_))));
    }
}
