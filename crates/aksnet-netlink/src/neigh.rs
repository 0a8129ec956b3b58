//! Neighbour (ARP / NDP) entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState as NlState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;
use crate::ifname::format_mac;

/// Neighbour entry state (`NUD_*`, include/uapi/linux/neighbour.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourState {
    /// Never expires (`nud permanent`): the IPv6 virtual gateway entry.
    Permanent,
    Reachable,
    Stale,
    Delay,
    /// Re-confirmed by the kernel (`nud probe`): Azure's entry for the IPv4
    /// virtual gateway 169.254.1.1 (docs/azure.md#transparent-mode step 5).
    Probe,
    Failed,
    Incomplete,
    Noarp,
    None,
    Other(u16),
}

impl From<NeighbourState> for NlState {
    fn from(state: NeighbourState) -> Self {
        match state {
            NeighbourState::Permanent => NlState::Permanent,
            NeighbourState::Reachable => NlState::Reachable,
            NeighbourState::Stale => NlState::Stale,
            NeighbourState::Delay => NlState::Delay,
            NeighbourState::Probe => NlState::Probe,
            NeighbourState::Failed => NlState::Failed,
            NeighbourState::Incomplete => NlState::Incomplete,
            NeighbourState::Noarp => NlState::Noarp,
            NeighbourState::None => NlState::None,
            NeighbourState::Other(v) => NlState::from(v),
        }
    }
}

impl From<NlState> for NeighbourState {
    fn from(state: NlState) -> Self {
        match state {
            NlState::Permanent => Self::Permanent,
            NlState::Reachable => Self::Reachable,
            NlState::Stale => Self::Stale,
            NlState::Delay => Self::Delay,
            NlState::Probe => Self::Probe,
            NlState::Failed => Self::Failed,
            NlState::Incomplete => Self::Incomplete,
            NlState::Noarp => Self::Noarp,
            NlState::None => Self::None,
            other => Self::Other(u16::from(other)),
        }
    }
}

/// A neighbour table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    /// `None` while unresolved.
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
}

pub(crate) fn neighbour_message(
    index: u32,
    ip: IpAddr,
    mac: [u8; 6],
    state: NeighbourState,
) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = index;
    msg.header.state = state.into();
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg
}

pub(crate) fn neighbour_from_message(msg: &NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok()
            }
            _ => {}
        }
    }
    Some(Neighbour {
        index: msg.header.ifindex,
        ip: ip?,
        mac,
        state: msg.header.state.into(),
    })
}

impl Handle {
    /// Adds or replaces (`ip neigh replace`) the entry `ip` → `mac` on link
    /// `index`. Replace keeps a repeated ADD idempotent.
    pub fn add_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
        state: NeighbourState,
    ) -> Result<()> {
        self.request(
            "add neighbour",
            || format!("{ip} lladdr {} dev index {index}", format_mac(&mac)),
            RouteNetlinkMessage::NewNeighbour(neighbour_message(index, ip, mac, state)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// The IPv4 and IPv6 neighbour entries of link `index`.
    pub fn list_neighbours(&mut self, index: u32) -> Result<Vec<Neighbour>> {
        let mut msg = NeighbourMessage::default();
        // With NETLINK_GET_STRICT_CHK the kernel filters on NDA_IFINDEX (and
        // rejects a non-zero ndm_ifindex in a dump request with EINVAL,
        // net/core/neighbour.c: neigh_valid_dump_req).
        msg.attributes.push(NeighbourAttribute::IfIndex(index));
        let replies = self.dump(
            "list neighbours",
            || format!("dev index {index}"),
            RouteNetlinkMessage::GetNeighbour(msg),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(m) if m.header.ifindex == index => {
                    neighbour_from_message(m)
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

    #[test]
    fn gateway_neighbour_round_trips() {
        let ip: IpAddr = "169.254.1.1".parse().unwrap();
        let msg = neighbour_message(5, ip, [0xaa; 6], NeighbourState::Permanent);
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        let back = NeighbourMessage::parse(bytes.as_slice()).unwrap();
        assert_eq!(
            neighbour_from_message(&back),
            Some(Neighbour {
                index: 5,
                ip,
                mac: Some([0xaa; 6]),
                state: NeighbourState::Permanent
            })
        );
    }

    #[test]
    fn states_map_both_ways() {
        for state in [
            NeighbourState::Permanent,
            NeighbourState::Reachable,
            NeighbourState::Stale,
            NeighbourState::Delay,
            NeighbourState::Probe,
            NeighbourState::Failed,
            NeighbourState::Incomplete,
            NeighbourState::Noarp,
            NeighbourState::None,
        ] {
            assert_eq!(NeighbourState::from(NlState::from(state)), state);
        }
    }
}
