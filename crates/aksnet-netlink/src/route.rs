//! Routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol as NlProtocol,
    RouteScope as NlScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;

/// The main routing table (`ip route` without `table`).
pub const RT_TABLE_MAIN: u32 = 254;

/// How far a destination is (`rtm_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteScope {
    /// Reached through a gateway (`scope global`).
    #[default]
    Universe,
    /// Directly on the link (`scope link`): host routes, the on-link gateway
    /// `169.254.1.1/32`.
    Link,
    /// On this host (`scope host`).
    Host,
    /// Any other kernel value (site 200, nowhere 255).
    Other(u8),
}

/// Who installed a route (`rtm_protocol`, shown as `proto …` by `ip route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteProtocol {
    /// `proto kernel`: connected routes the kernel adds for addresses.
    Kernel,
    /// `proto boot`: iproute2's default for `ip route add`.
    #[default]
    Boot,
    /// `proto static`: Azure CNI's pod host routes
    /// (`10.240.0.216 dev azv79d05038592 proto static`, docs/azure.md#transparent-mode).
    Static,
    Other(u8),
}

/// A unicast route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output link index (`dev`).
    pub oif: Option<u32>,
    pub scope: RouteScope,
    pub protocol: RouteProtocol,
    /// Routing table id; [`RT_TABLE_MAIN`] unless policy routing is used.
    pub table: u32,
    /// `metric` (RTA_PRIORITY).
    pub metric: Option<u32>,
    /// Preferred source address (`src`).
    pub src: Option<IpAddr>,
}

impl Route {
    /// `<ip>/32` (or `/128`) `dev <oif> scope link proto static`: how a node
    /// reaches a pod behind its host veth in nodesubnet mode, and how the pod
    /// reaches its virtual gateway `169.254.1.1`.
    pub fn host(ip: IpAddr, oif: u32) -> Self {
        Self {
            dst: IpNet::from(ip),
            gateway: None,
            oif: Some(oif),
            scope: RouteScope::Link,
            protocol: RouteProtocol::Static,
            table: RT_TABLE_MAIN,
            metric: None,
            src: None,
        }
    }

    /// `default via <gateway> dev <oif>` (0.0.0.0/0 or ::/0 by the gateway's family).
    pub fn default_via(gateway: IpAddr, oif: u32) -> Self {
        let dst = match gateway {
            IpAddr::V4(_) => IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        }
        .unwrap_or_default();
        Self {
            dst,
            gateway: Some(gateway),
            oif: Some(oif),
            scope: RouteScope::Universe,
            protocol: RouteProtocol::Boot,
            table: RT_TABLE_MAIN,
            metric: None,
            src: None,
        }
    }

    /// `ip route`-like text, used in error messages.
    pub fn describe(&self) -> String {
        let mut text = self.dst.to_string();
        if let Some(gw) = self.gateway {
            text.push_str(&format!(" via {gw}"));
        }
        if let Some(oif) = self.oif {
            text.push_str(&format!(" dev index {oif}"));
        }
        if self.table != RT_TABLE_MAIN {
            text.push_str(&format!(" table {}", self.table));
        }
        text
    }
}

fn scope_to_nl(scope: RouteScope) -> NlScope {
    match scope {
        RouteScope::Universe => NlScope::Universe,
        RouteScope::Link => NlScope::Link,
        RouteScope::Host => NlScope::Host,
        RouteScope::Other(v) => NlScope::from(v),
    }
}

fn scope_from_nl(scope: NlScope) -> RouteScope {
    match scope {
        NlScope::Universe => RouteScope::Universe,
        NlScope::Link => RouteScope::Link,
        NlScope::Host => RouteScope::Host,
        other => RouteScope::Other(u8::from(other)),
    }
}

fn protocol_to_nl(protocol: RouteProtocol) -> NlProtocol {
    match protocol {
        RouteProtocol::Kernel => NlProtocol::Kernel,
        RouteProtocol::Boot => NlProtocol::Boot,
        RouteProtocol::Static => NlProtocol::Static,
        RouteProtocol::Other(v) => NlProtocol::from(v),
    }
}

fn protocol_from_nl(protocol: NlProtocol) -> RouteProtocol {
    match protocol {
        NlProtocol::Kernel => RouteProtocol::Kernel,
        NlProtocol::Boot => RouteProtocol::Boot,
        NlProtocol::Static => RouteProtocol::Static,
        other => RouteProtocol::Other(u8::from(other)),
    }
}

fn address_family(net: &IpNet) -> AddressFamily {
    match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// Builds RTM_NEWROUTE (`for_delete` = false) or RTM_DELROUTE. A delete, as
/// `ip route del` does, leaves scope NOWHERE and protocol/type unspecified so
/// the kernel matches on destination, gateway, device and metric only.
pub(crate) fn route_message(route: &Route, for_delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = address_family(&route.dst);
    msg.header.destination_prefix_length = route.dst.prefix_len();
    if for_delete {
        msg.header.scope = NlScope::NoWhere;
    } else {
        msg.header.scope = scope_to_nl(route.scope);
        msg.header.protocol = protocol_to_nl(route.protocol);
        msg.header.kind = RouteType::Unicast;
    }
    // Table ids above 255 only fit in RTA_TABLE (iproute2 does the same).
    match u8::try_from(route.table) {
        Ok(table) => msg.header.table = table,
        Err(_) => {
            msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
            msg.attributes.push(RouteAttribute::Table(route.table));
        }
    }
    if route.dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                route.dst.addr(),
            )));
    }
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = route.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(metric) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(src) = route.src {
        msg.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    msg
}

fn route_address(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Reads a kernel route; `None` for non-unicast routes and families other
/// than IPv4/IPv6.
pub(crate) fn route_from_message(msg: &RouteMessage) -> Option<Route> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let unspecified = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut dst = unspecified;
    let mut route = Route {
        dst: IpNet::from(unspecified),
        gateway: None,
        oif: None,
        scope: scope_from_nl(msg.header.scope),
        protocol: protocol_from_nl(msg.header.protocol),
        table: u32::from(msg.header.table),
        metric: None,
        src: None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = route_address(a)?,
            RouteAttribute::Gateway(a) => route.gateway = route_address(a),
            RouteAttribute::Oif(oif) => route.oif = Some(*oif),
            RouteAttribute::Priority(metric) => route.metric = Some(*metric),
            RouteAttribute::PrefSource(a) => route.src = route_address(a),
            RouteAttribute::Table(table) => route.table = *table,
            _ => {}
        }
    }
    route.dst = IpNet::new(dst, msg.header.destination_prefix_length).ok()?;
    Some(route)
}

impl Handle {
    /// Adds `route`. EEXIST (`is_exists()`) if an identical route is there.
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        self.request(
            "add route",
            || route.describe(),
            RouteNetlinkMessage::NewRoute(route_message(route, false)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds `route` unless it exists. Returns true when it was added.
    pub fn ensure_route(&mut self, route: &Route) -> Result<bool> {
        match self.add_route(route) {
            Ok(()) => Ok(true),
            Err(e) if e.is_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `ip route add <ip>/32 dev <oif> scope link proto static` (see [`Route::host`]).
    pub fn add_host_route(&mut self, ip: IpAddr, oif: u32) -> Result<()> {
        self.add_route(&Route::host(ip, oif))
    }

    /// `ip route add default via <gateway> dev <oif>`.
    pub fn add_default_route(&mut self, gateway: IpAddr, oif: u32) -> Result<()> {
        self.add_route(&Route::default_via(gateway, oif))
    }

    /// Deletes `route` (matched on destination, table, gateway, device and
    /// metric). Returns false when no such route existed (ESRCH/ENOENT).
    pub fn del_route(&mut self, route: &Route) -> Result<bool> {
        let result = self.request(
            "delete route",
            || route.describe(),
            RouteNetlinkMessage::DelRoute(route_message(route, true)),
            0,
        );
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 and IPv6 unicast routes of the main table.
    /// The route the kernel would use to reach `dst` (`ip route get`): one
    /// FIB lookup, whatever the size of the tables (a dump of a node's main
    /// table grows by one /32 per nodesubnet pod). `None` when no route
    /// leads there (ENETUNREACH, EHOSTUNREACH).
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Option<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = match dst {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let replies = match self.request(
            "look up route",
            || dst.to_string(),
            RouteNetlinkMessage::GetRoute(msg),
            0,
        ) {
            Ok(r) => r,
            Err(e) if e.is_unreachable() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(replies.iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewRoute(m) => route_from_message(m),
            _ => None,
        }))
    }

    /// The MTU of the device this namespace would send a packet to `dst` through (the
    /// FIB lookup of `ip route get`, then that link); `None` when nothing routes `dst`.
    /// What a pod's veth copies (Azure copies the node interface's MTU): the plugin asks
    /// at ADD when its configuration has no `mtu`, and `aksnet install` asks once and
    /// writes the answer into the conflist.
    pub fn mtu_towards(&mut self, dst: IpAddr) -> Result<Option<u32>> {
        match self.route_get(dst)?.and_then(|r| r.oif) {
            Some(oif) => Ok(self.link_by_index(oif)?.map(|l| l.mtu)),
            None => Ok(None),
        }
    }

    pub fn list_routes(&mut self) -> Result<Vec<Route>> {
        self.dump_main_routes(RouteMessage::default())
    }

    /// The main table's routes through link `oif` only. The kernel filters the dump
    /// (`RTA_OIF` in a strictly checked dump request, which this handle's socket is:
    /// `NETLINK_GET_STRICT_CHK`, rtnetlink(7)), so the answer does not grow with the
    /// routes through other links: a node's main table holds one /32 per pod.
    pub fn list_routes_via(&mut self, oif: u32) -> Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.attributes.push(RouteAttribute::Oif(oif));
        let routes = self.dump_main_routes(msg)?;
        // A kernel without the filter answers with every route: filter here too.
        Ok(routes.into_iter().filter(|r| r.oif == Some(oif)).collect())
    }

    fn dump_main_routes(&mut self, msg: RouteMessage) -> Result<Vec<Route>> {
        let replies = self.dump(
            "list routes",
            || "table main".to_string(),
            RouteNetlinkMessage::GetRoute(msg),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(m) => route_from_message(m),
                _ => None,
            })
            .filter(|r| r.table == RT_TABLE_MAIN)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};
    use proptest::prelude::*;

    fn round_trip(route: &Route) -> Option<Route> {
        let msg = route_message(route, false);
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        route_from_message(&RouteMessage::parse(bytes.as_slice()).unwrap())
    }

    #[test]
    fn azure_host_route_round_trips() {
        let route = Route::host("10.240.0.216".parse().unwrap(), 12);
        assert_eq!(route.dst.to_string(), "10.240.0.216/32");
        assert_eq!(round_trip(&route), Some(route));
    }

    #[test]
    fn default_route_has_no_destination_attribute() {
        let route = Route::default_via("169.254.1.1".parse().unwrap(), 2);
        let msg = route_message(&route, false);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(round_trip(&route), Some(route));
        let v6 = Route::default_via("fe80::1234:5678:9abc".parse().unwrap(), 2);
        assert_eq!(v6.dst.to_string(), "::/0");
        assert_eq!(round_trip(&v6), Some(v6));
    }

    #[test]
    fn delete_matches_loosely_like_ip_route_del() {
        let msg = route_message(&Route::host("10.0.0.1".parse().unwrap(), 3), true);
        assert_eq!(msg.header.scope, NlScope::NoWhere);
        assert_eq!(msg.header.protocol, NlProtocol::Unspec);
        assert_eq!(msg.header.kind, RouteType::Unspec);
    }

    #[test]
    fn large_table_ids_go_to_rta_table() {
        let mut route = Route::host("10.0.0.1".parse().unwrap(), 3);
        route.table = 1000;
        let msg = route_message(&route, false);
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(round_trip(&route), Some(route));
    }

    proptest! {
        #[test]
        fn any_ipv4_route_round_trips(
            addr in any::<u32>(), len in 0u8..=32, gw in proptest::option::of(any::<u32>()),
            oif in proptest::option::of(1u32..1000), metric in proptest::option::of(any::<u32>()),
        ) {
            let dst = IpNet::new(IpAddr::V4(Ipv4Addr::from(addr)), len).unwrap().trunc();
            let route = Route {
                dst,
                gateway: gw.map(|g| IpAddr::V4(Ipv4Addr::from(g))),
                oif,
                scope: RouteScope::Universe,
                protocol: RouteProtocol::Boot,
                table: RT_TABLE_MAIN,
                metric,
                src: None,
            };
            prop_assert_eq!(round_trip(&route), Some(route));
        }
    }
}
