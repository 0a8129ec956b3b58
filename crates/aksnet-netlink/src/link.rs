//! Links: veth pairs, bridges, bridge ports, link state.

use std::os::fd::AsRawFd;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, LinkAttribute, LinkExtentMask,
    LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{ErrorKind, NetlinkError, Result};
use crate::handle::Handle;
use crate::ifname::{check_ifname, format_mac};
use crate::netns::Netns;

/// `IFLA_BRPORT_MODE` (include/uapi/linux/if_link.h): the bridge port's
/// hairpin ("reflective relay") flag, set through IFLA_PROTINFO as
/// `ip link set <port> type bridge_slave hairpin on` and the Go netlink
/// `LinkSetHairpin` do.
const IFLA_BRPORT_MODE: u16 = 4;

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// All zero when the link has no 6-byte hardware address.
    pub mac: [u8; 6],
    pub mtu: u32,
    /// The bridge (or other master) this link is a port of.
    pub master: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// IFF_PROMISC.
    pub promisc: bool,
    /// `IFLA_INFO_KIND`: "veth", "bridge", ...; `None` for physical/loopback.
    pub kind: Option<String>,
    /// Hairpin mode, when the link is a bridge port.
    pub hairpin: Option<bool>,
}

impl Link {
    /// The MAC in `aa:bb:cc:dd:ee:ff` form.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }

    pub(crate) fn from_message(msg: LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: [0; 6],
            mtu: 0,
            master: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            promisc: msg.header.flags.contains(LinkFlags::Promisc),
            kind: None,
            hairpin: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Address(bytes) => {
                    if let Ok(mac) = <[u8; 6]>::try_from(bytes.as_slice()) {
                        link.mac = mac;
                    }
                }
                LinkAttribute::Mtu(mtu) => link.mtu = mtu,
                LinkAttribute::Controller(master) => link.master = Some(master),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                                for opt in port {
                                    if let InfoBridgePort::HairpinMode(on) = opt {
                                        link.hairpin = Some(on);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A link message addressed to an existing link by index.
fn link_msg(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

/// Asks the kernel to leave statistics out of link replies: they are most
/// of the reply's bytes and we never read them.
fn skip_stats() -> LinkAttribute {
    LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats])
}

fn first_link(replies: Vec<RouteNetlinkMessage>) -> Option<Link> {
    replies.into_iter().find_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(msg) => Some(Link::from_message(msg)),
        _ => None,
    })
}

/// Builds the one RTM_NEWLINK that creates a veth pair with the peer born
/// inside `peer_netns_fd` under its final name, the host end up (netavark
/// `bridge.rs: create_veth_pair`, docs/prior-art.md#network-namespaces).
/// One veth pair to create: both names, the peer's namespace, the MTU of both
/// ends, and the host end's MAC and bridge when it has them.
struct VethSpec<'a> {
    host_ifname: &'a str,
    peer_ifname: &'a str,
    peer_netns: &'a Netns,
    mtu: u32,
    host_mac: Option<[u8; 6]>,
    master: Option<u32>,
}

impl<'a> VethSpec<'a> {
    /// A pair with the kernel's MAC for the host end and no bridge.
    fn plain(host_ifname: &'a str, peer_ifname: &'a str, peer_netns: &'a Netns, mtu: u32) -> Self {
        Self {
            host_ifname,
            peer_ifname,
            peer_netns,
            mtu,
            host_mac: None,
            master: None,
        }
    }
}

pub(crate) fn veth_message(
    host_ifname: &str,
    peer_ifname: &str,
    peer_netns_fd: i32,
    mtu: u32,
    host_mac: Option<[u8; 6]>,
    master: Option<u32>,
) -> LinkMessage {
    // The peer cannot be created up: the kernel configures it before it
    // links the two ends, and `veth_open` then fails with ENOTCONN.
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(peer_ifname.to_string()));
    peer.attributes.push(LinkAttribute::Mtu(mtu));
    peer.attributes.push(LinkAttribute::NetNsFd(peer_netns_fd));

    let mut host = LinkMessage::default();
    host.header.flags = LinkFlags::Up;
    host.header.change_mask = LinkFlags::Up;
    host.attributes
        .push(LinkAttribute::IfName(host_ifname.to_string()));
    host.attributes.push(LinkAttribute::Mtu(mtu));
    if let Some(mac) = host_mac {
        host.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(index) = master {
        host.attributes.push(LinkAttribute::Controller(index));
    }
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    host
}

/// The RTM_NEWLINK that creates an up bridge.
pub(crate) fn bridge_message(name: &str, mtu: u32, promisc: bool) -> LinkMessage {
    let mut msg = LinkMessage::default();
    let flags = if promisc {
        LinkFlags::Up | LinkFlags::Promisc
    } else {
        LinkFlags::Up
    };
    msg.header.flags = flags;
    msg.header.change_mask = flags;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    msg
}

/// The AF_BRIDGE RTM_SETLINK that sets a bridge port's hairpin mode.
pub(crate) fn hairpin_message(port_index: u32, on: bool) -> LinkMessage {
    let mut msg = link_msg(port_index);
    msg.header.interface_family = AddressFamily::Bridge;
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)])),
    ]));
    msg
}

impl Handle {
    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        check_ifname("get link", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(skip_stats());
        self.get_link("get link", || name.to_string(), msg)
    }

    /// The link with index `index`, or `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        let mut msg = link_msg(index);
        msg.attributes.push(skip_stats());
        self.get_link("get link", || format!("index {index}"), msg)
    }

    fn get_link(
        &mut self,
        op: &'static str,
        object: impl FnOnce() -> String,
        msg: LinkMessage,
    ) -> Result<Option<Link>> {
        match self.request(op, object, RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(first_link(replies)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of this namespace.
    pub fn list_links(&mut self) -> Result<Vec<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(skip_stats());
        let replies = self.dump("list links", String::new, RouteNetlinkMessage::GetLink(msg))?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(msg) => Some(Link::from_message(msg)),
                _ => None,
            })
            .collect())
    }

    /// Creates a veth pair in one request: `host_ifname` in this handle's
    /// namespace, `peer_ifname` directly inside `peer_netns` under its final
    /// name (no temporary name, no rename step, no race with another pod's
    /// `eth0`). Both ends get `mtu`; the host end is brought up and gets
    /// `host_mac` when given (nodesubnet pins `aa:aa:aa:aa:aa:aa`, Azure PR
    /// #1524, docs/azure.md#fixed-host-mac). Returns the host end.
    ///
    /// The peer is left **down** (the kernel refuses to open a veth end
    /// before both ends exist, ENOTCONN): bring it up with a handle in the
    /// pod netns, `set_link_up`, as Azure and the bridge plugin do.
    ///
    /// Fails with EEXIST (`is_exists()`) if either name is taken.
    pub fn create_veth(
        &mut self,
        host_ifname: &str,
        peer_ifname: &str,
        peer_netns: &Netns,
        mtu: u32,
        host_mac: Option<[u8; 6]>,
    ) -> Result<Link> {
        let plain = VethSpec::plain(host_ifname, peer_ifname, peer_netns, mtu);
        self.create_veth_inner(VethSpec { host_mac, ..plain })
    }

    /// [`Self::create_veth`] with the host end already a port of bridge
    /// `bridge_index` (IFLA_MASTER in the same request, as `ip link add …
    /// master br0` does): one round trip instead of two for kubenet's ADD.
    pub fn create_veth_in_bridge(
        &mut self,
        host_ifname: &str,
        peer_ifname: &str,
        peer_netns: &Netns,
        mtu: u32,
        bridge_index: u32,
    ) -> Result<Link> {
        let plain = VethSpec::plain(host_ifname, peer_ifname, peer_netns, mtu);
        self.create_veth_inner(VethSpec {
            master: Some(bridge_index),
            ..plain
        })
    }

    fn create_veth_inner(&mut self, spec: VethSpec<'_>) -> Result<Link> {
        let VethSpec {
            host_ifname,
            peer_ifname,
            peer_netns,
            mtu,
            host_mac,
            master,
        } = spec;
        const OP: &str = "create veth";
        let object = || {
            format!(
                "{host_ifname} (peer {peer_ifname} in {})",
                peer_netns.path().display()
            )
        };
        check_ifname(OP, host_ifname)?;
        check_ifname(OP, peer_ifname)?;
        let msg = veth_message(
            host_ifname,
            peer_ifname,
            peer_netns.as_raw_fd(),
            mtu,
            host_mac,
            master,
        );
        // NLM_F_ECHO: the kernel sends the created host link back, which saves
        // a lookup to learn its index and MAC.
        let replies = self.request(
            OP,
            object,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        )?;
        match first_link(replies).filter(|l| l.name == host_ifname) {
            Some(link) => Ok(link),
            None => self.link_by_name(host_ifname)?.ok_or_else(|| {
                NetlinkError::new(
                    OP,
                    object(),
                    ErrorKind::Protocol("created link not found".into()),
                )
            }),
        }
    }

    /// Makes sure a bridge `name` exists and is up (and promiscuous when
    /// `promisc`), as the reference bridge plugin's `ensureBridge` does
    /// (kubenet's `cbr0`, docs/azure.md#kubenet). Idempotent: an
    /// existing bridge is reused, its MTU left as is. An existing link of
    /// another kind is an error.
    pub fn ensure_bridge(&mut self, name: &str, mtu: u32, promisc: bool) -> Result<Link> {
        const OP: &str = "ensure bridge";
        check_ifname(OP, name)?;
        // On a node the bridge almost always exists already (every ADD after the
        // first): look it up first, one round trip, and create only when absent.
        let link = match self.link_by_name(name)? {
            Some(link) => link,
            None => {
                let created = self.request(
                    OP,
                    || name.to_string(),
                    RouteNetlinkMessage::NewLink(bridge_message(name, mtu, promisc)),
                    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
                );
                match created {
                    Ok(replies) => {
                        if let Some(link) = first_link(replies).filter(|l| l.name == name) {
                            return Ok(link);
                        }
                    }
                    // Another plugin process created it since our lookup.
                    Err(e) if e.is_exists() => {}
                    Err(e) => return Err(e),
                }
                self.link_by_name(name)?.ok_or_else(|| {
                    NetlinkError::new(
                        OP,
                        name,
                        ErrorKind::Protocol("bridge vanished after creation".into()),
                    )
                })?
            }
        };
        if link.kind.as_deref() != Some("bridge") {
            return Err(NetlinkError::new(
                OP,
                name,
                ErrorKind::WrongKind {
                    expected: "bridge",
                    found: link.kind.clone().unwrap_or_else(|| "device".into()),
                },
            ));
        }
        let mut want = LinkFlags::empty();
        if !link.up {
            want |= LinkFlags::Up;
        }
        if promisc && !link.promisc {
            want |= LinkFlags::Promisc;
        }
        if want.is_empty() {
            return Ok(link);
        }
        self.set_flags(OP, link.index, want, want)?;
        Ok(Link {
            up: true,
            promisc: link.promisc || promisc,
            ..link
        })
    }

    fn set_flags(
        &mut self,
        op: &'static str,
        index: u32,
        flags: LinkFlags,
        mask: LinkFlags,
    ) -> Result<()> {
        let mut msg = link_msg(index);
        msg.header.flags = flags;
        msg.header.change_mask = mask;
        self.request(
            op,
            || format!("index {index}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
        .map(drop)
    }

    fn set_attr(&mut self, op: &'static str, index: u32, attr: LinkAttribute) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(attr);
        self.request(
            op,
            || format!("index {index}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
        .map(drop)
    }

    /// Makes link `link_index` a port of bridge `bridge_index`.
    pub fn set_master(&mut self, link_index: u32, bridge_index: u32) -> Result<()> {
        self.set_attr(
            "set master",
            link_index,
            LinkAttribute::Controller(bridge_index),
        )
    }

    /// Detaches link `link_index` from its bridge.
    pub fn set_nomaster(&mut self, link_index: u32) -> Result<()> {
        self.set_attr("set nomaster", link_index, LinkAttribute::Controller(0))
    }

    /// Turns hairpin mode of bridge port `port_index` on or off (the
    /// reference bridge plugin's `hairpinMode`): lets a pod reach itself
    /// through a Service VIP.
    pub fn set_hairpin(&mut self, port_index: u32, on: bool) -> Result<()> {
        self.request(
            "set hairpin",
            || format!("port index {port_index} {}", if on { "on" } else { "off" }),
            RouteNetlinkMessage::SetLink(hairpin_message(port_index, on)),
            0,
        )
        .map(drop)
    }

    /// Sets or clears IFF_PROMISC (kubenet `promiscMode`).
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<()> {
        let flags = if on {
            LinkFlags::Promisc
        } else {
            LinkFlags::empty()
        };
        self.set_flags("set promisc", index, flags, LinkFlags::Promisc)
    }

    /// Brings a link up.
    pub fn set_link_up(&mut self, index: u32) -> Result<()> {
        self.set_flags("set link up", index, LinkFlags::Up, LinkFlags::Up)
    }

    /// Brings a link down.
    pub fn set_link_down(&mut self, index: u32) -> Result<()> {
        self.set_flags("set link down", index, LinkFlags::empty(), LinkFlags::Up)
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        self.set_attr("set mtu", index, LinkAttribute::Mtu(mtu))
    }

    /// Sets a link's MAC address. Pinning a bridge's MAC stops the kernel
    /// from switching it to the lowest port MAC as ports come and go, which
    /// leaves stale ARP entries (netavark `bridge.rs`, docs/prior-art.md#bridge-mac).
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        self.set_attr("set mac", index, LinkAttribute::Address(mac.to_vec()))
    }

    /// Deletes the link `name` (for a veth, both ends go). Returns false when
    /// it was already gone: DEL must be idempotent (CNI spec).
    pub fn del_link_by_name(&mut self, name: &str) -> Result<bool> {
        check_ifname("delete link", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.del_link_msg(|| name.to_string(), msg)
    }

    /// Deletes the link with index `index`; false when already gone.
    pub fn del_link(&mut self, index: u32) -> Result<bool> {
        self.del_link_msg(|| format!("index {index}"), link_msg(index))
    }

    fn del_link_msg(&mut self, object: impl FnOnce() -> String, msg: LinkMessage) -> Result<bool> {
        match self.request("delete link", object, RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The link the IPv4 default route of the main table leaves through
    /// (lowest metric wins): the uplink whose MTU pods inherit
    /// (docs/azure.md#transparent-mode step 2). `None` without a default route.
    pub fn default_route_link(&mut self) -> Result<Option<Link>> {
        let best = self
            .list_routes()?
            .into_iter()
            .filter(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() && r.oif.is_some())
            .min_by_key(|r| r.metric.unwrap_or(0));
        match best.and_then(|r| r.oif) {
            Some(oif) => self.link_by_index(oif),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn round_trip(msg: &LinkMessage) -> LinkMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        LinkMessage::parse(&bytes).unwrap()
    }

    #[test]
    fn veth_message_carries_peer_name_netns_and_mac() {
        let msg = veth_message("azv79d05038592", "eth0", 7, 1500, Some([0xaa; 6]), None);
        let back = round_trip(&msg);
        assert_eq!(back, msg);
        assert!(back.header.flags.contains(LinkFlags::Up));
        let infos = back
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap();
        assert!(infos.contains(&LinkInfo::Kind(InfoKind::Veth)));
        let peer = infos
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p.clone()),
                _ => None,
            })
            .unwrap();
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(7)));
        assert!(back
            .attributes
            .contains(&LinkAttribute::Address(vec![0xaa; 6])));
    }

    #[test]
    fn bridge_message_sets_promisc_only_when_asked() {
        let plain = round_trip(&bridge_message("cbr0", 1500, false));
        assert_eq!(plain.header.change_mask, LinkFlags::Up);
        let promisc = round_trip(&bridge_message("cbr0", 1500, true));
        assert!(promisc.header.flags.contains(LinkFlags::Promisc));
        assert!(promisc.header.change_mask.contains(LinkFlags::Promisc));
    }

    #[test]
    fn hairpin_message_is_af_bridge_protinfo_mode() {
        let msg = hairpin_message(9, true);
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        // ifinfomsg: family byte first = AF_BRIDGE (7).
        assert_eq!(bytes[0], 7);
        // IFLA_PROTINFO (12) | NLA_F_NESTED, holding IFLA_BRPORT_MODE (4) = 1.
        let nla = &bytes[16..];
        assert_eq!(u16::from_ne_bytes([nla[2], nla[3]]), 12 | 0x8000);
        assert_eq!(u16::from_ne_bytes([nla[6], nla[7]]), IFLA_BRPORT_MODE);
        assert_eq!(nla[8], 1);
    }

    #[test]
    fn link_is_parsed_from_kernel_style_message() {
        let mut msg = link_msg(4);
        msg.header.flags = LinkFlags::Up | LinkFlags::Promisc;
        msg.attributes = vec![
            LinkAttribute::IfName("aksntp".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::Mtu(1400),
            LinkAttribute::Controller(3),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::PortKind(netlink_packet_route::link::InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                    true,
                )])),
            ]),
        ];
        let link = Link::from_message(round_trip(&msg));
        assert_eq!(
            link,
            Link {
                index: 4,
                name: "aksntp".into(),
                mac: [2, 0, 0, 0, 0, 1],
                mtu: 1400,
                master: Some(3),
                up: true,
                promisc: true,
                kind: Some("veth".into()),
                hairpin: Some(true),
            }
        );
        assert_eq!(link.mac_string(), "02:00:00:00:00:01");
    }
}
