//! Privileged tests against the real kernel. Run as root:
//! `cargo test -p aksnet-netlink`. Each test works only inside namespaces it
//! creates (`aksnt-<test>-<pid>`), removed by Drop guards even on failure.
// Test helpers outside #[test] fns: a failed parse is a bug in the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use aksnet_netlink::{
    enable_ip_forward, get_sysctl, run_here_in_netns, run_in_netns, set_accept_ra, set_proxy_arp,
    Errno, ErrorKind, Handle, IpNet, NeighbourState, Netns, Route, RouteProtocol, RouteScope,
    RT_TABLE_MAIN,
};
use common::TestNetns;

const AZURE_HOST_VETH_MAC: [u8; 6] = [0xaa; 6];

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn veth_peer_is_born_in_target_netns_under_its_final_name() {
    let host = TestNetns::new("veth-h");
    let pod = TestNetns::new("veth-p");
    let mut h = host.handle();
    let mut p = pod.handle();

    let link = h
        .create_veth(
            "aksntv1",
            "eth0",
            &pod.netns,
            1400,
            Some(AZURE_HOST_VETH_MAC),
        )
        .unwrap();
    assert_eq!(link.name, "aksntv1");
    assert_eq!(link.mac, AZURE_HOST_VETH_MAC);
    assert_eq!(link.mac_string(), "aa:aa:aa:aa:aa:aa");
    assert_eq!(link.mtu, 1400);
    assert!(link.up);
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert_eq!(h.link_by_name("aksntv1").unwrap(), Some(link.clone()));

    let peer = p
        .link_by_name("eth0")
        .unwrap()
        .expect("peer eth0 inside the pod netns");
    assert_eq!(peer.mtu, 1400);
    assert!(!peer.up, "the peer is created down");
    p.set_link_up(peer.index).unwrap();
    assert!(p.link_by_index(peer.index).unwrap().unwrap().up);
    assert_ne!(peer.mac, AZURE_HOST_VETH_MAC);
    // The peer never appeared in the host netns, under any name.
    assert_eq!(h.link_by_name("eth0").unwrap(), None);
    let host_links: Vec<String> = h
        .list_links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(host_links, vec!["lo".to_string(), "aksntv1".to_string()]);
    assert!(pod.ip(&["link", "show", "eth0"]).contains("mtu 1400"));
}

#[test]
fn duplicate_veth_fails_with_eexist_and_a_clear_message() {
    let host = TestNetns::new("dup-h");
    let pod = TestNetns::new("dup-p");
    let mut h = host.handle();
    h.create_veth("aksntdup", "eth0", &pod.netns, 1500, None)
        .unwrap();
    let err = h
        .create_veth("aksntdup", "eth1", &pod.netns, 1500, None)
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert_eq!(err.errno(), Some(Errno::EEXIST));
    let text = err.to_string();
    assert!(
        text.starts_with("create veth aksntdup (peer eth1 in /run/netns/aksnt-dup-p-"),
        "{text}"
    );
    assert!(text.contains("EEXIST: File exists"), "{text}");
    // Nothing half-created: eth1 does not exist in the pod.
    assert_eq!(pod.handle().link_by_name("eth1").unwrap(), None);
}

#[test]
fn bad_ifname_changes_nothing() {
    let host = TestNetns::new("badname");
    let mut h = host.handle();
    let err = h
        .create_veth("aksnt-much-too-long", "eth0", &host.netns, 1500, None)
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("aksnt-much-too-long"));
    assert_eq!(h.list_links().unwrap().len(), 1); // only lo
}

#[test]
fn ensure_bridge_is_idempotent_and_refuses_other_kinds() {
    let host = TestNetns::new("bridge");
    let mut h = host.handle();
    let first = h.ensure_bridge("aksntbr0", 1500, true).unwrap();
    assert_eq!(first.kind.as_deref(), Some("bridge"));
    assert!(first.up && first.promisc);
    let second = h.ensure_bridge("aksntbr0", 1500, true).unwrap();
    assert_eq!(second.index, first.index);
    assert!(second.up && second.promisc);

    // An existing but down, non-promisc bridge is brought up and made promisc.
    h.set_link_down(first.index).unwrap();
    h.set_promisc(first.index, false).unwrap();
    let down = h.link_by_index(first.index).unwrap().unwrap();
    assert!(!down.up && !down.promisc);
    h.ensure_bridge("aksntbr0", 1500, true).unwrap();
    let again = h.link_by_index(first.index).unwrap().unwrap();
    assert!(again.up && again.promisc);

    h.create_veth("aksntnotbr", "aksntnotbr2", &host.netns, 1500, None)
        .unwrap();
    let err = h.ensure_bridge("aksntnotbr", 1500, false).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::WrongKind {
                expected: "bridge",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bridge_port_master_and_hairpin_are_visible() {
    let host = TestNetns::new("port-h");
    let pod = TestNetns::new("port-p");
    let mut h = host.handle();
    let br = h.ensure_bridge("aksntbr1", 1500, false).unwrap();
    let veth = h
        .create_veth("aksntport", "eth0", &pod.netns, 1500, None)
        .unwrap();
    assert_eq!(veth.master, None);
    h.set_master(veth.index, br.index).unwrap();
    h.set_hairpin(veth.index, true).unwrap();
    let port = h.link_by_index(veth.index).unwrap().unwrap();
    assert_eq!(port.master, Some(br.index));
    assert_eq!(port.hairpin, Some(true));
    let details = host.ip(&["-d", "link", "show", "aksntport"]);
    assert!(details.contains("master aksntbr1"), "{details}");
    assert!(details.contains("hairpin on"), "{details}");

    h.set_hairpin(veth.index, false).unwrap();
    assert_eq!(
        h.link_by_index(veth.index).unwrap().unwrap().hairpin,
        Some(false)
    );
    h.set_nomaster(veth.index).unwrap();
    assert_eq!(h.link_by_index(veth.index).unwrap().unwrap().master, None);
}

#[test]
fn link_settings_change() {
    let host = TestNetns::new("linkset");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntls", "aksntls2", &host.netns, 1500, None)
        .unwrap();
    h.set_mtu(v.index, 1280).unwrap();
    h.set_mac(v.index, [0x02, 0, 0, 0, 0, 0x42]).unwrap();
    h.set_promisc(v.index, true).unwrap();
    let l = h.link_by_index(v.index).unwrap().unwrap();
    assert_eq!(
        (l.mtu, l.mac, l.promisc),
        (1280, [0x02, 0, 0, 0, 0, 0x42], true)
    );
}

#[test]
fn addresses_add_list_ensure_delete() {
    let host = TestNetns::new("addr");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntaddr", "aksntaddr2", &host.netns, 1500, None)
        .unwrap();
    h.add_addr(v.index, net("10.244.0.1/24")).unwrap();
    h.add_addr(v.index, net("fd00:aa::1/64")).unwrap();
    let mut addrs = h.list_addrs(v.index).unwrap();
    addrs.retain(|a| !a.addr().is_ipv6() || !a.addr().to_string().starts_with("fe80"));
    assert_eq!(addrs, vec![net("10.244.0.1/24"), net("fd00:aa::1/64")]);
    assert!(host
        .ip(&["addr", "show", "aksntaddr"])
        .contains("inet 10.244.0.1/24 brd 10.244.0.255"));

    let dup = h.add_addr(v.index, net("10.244.0.1/24")).unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    assert!(!h.ensure_addr(v.index, net("10.244.0.1/24")).unwrap());
    // Another subnet: a second address of 10.244.0.0/24 would be a
    // secondary and go away with the primary.
    assert!(h.ensure_addr(v.index, net("10.245.0.2/24")).unwrap());

    assert!(h.del_addr(v.index, net("10.244.0.1/24")).unwrap());
    assert!(!h.del_addr(v.index, net("10.244.0.1/24")).unwrap());
    assert!(h.del_addr(v.index, net("fd00:aa::1/64")).unwrap());
    let left: Vec<IpNet> = h
        .list_addrs(v.index)
        .unwrap()
        .into_iter()
        .filter(|a| a.addr().is_ipv4())
        .collect();
    assert_eq!(left, vec![net("10.245.0.2/24")]);
}

#[test]
fn noprefixroute_address_leaves_no_subnet_route() {
    let host = TestNetns::new("noprefix");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntnp", "aksntnp2", &host.netns, 1500, None)
        .unwrap();
    // Nodesubnet pod address: subnet prefix length, no connected route.
    h.add_addr_noprefixroute(v.index, net("10.240.0.25/16"))
        .unwrap();
    // Contrast: a plain address gets its kernel subnet route.
    h.add_addr(v.index, net("10.241.0.5/16")).unwrap();
    let routes = h.list_routes().unwrap();
    assert!(
        !routes.iter().any(|r| r.dst == net("10.240.0.0/16")),
        "{routes:?}"
    );
    let connected = routes
        .iter()
        .find(|r| r.dst == net("10.241.0.0/16"))
        .expect("connected route of the plain address");
    assert_eq!(connected.protocol, RouteProtocol::Kernel);
    assert_eq!(connected.scope, RouteScope::Link);
    assert_eq!(h.list_addrs(v.index).unwrap()[0], net("10.240.0.25/16"));
    let shown = host.ip(&["addr", "show", "aksntnp"]);
    assert!(
        shown.contains("10.240.0.25/16") && shown.contains("noprefixroute"),
        "{shown}"
    );
}

#[test]
fn host_and_default_routes_add_list_delete() {
    let host = TestNetns::new("routes");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntrt", "aksntrt2", &host.netns, 1500, None)
        .unwrap();

    // Azure's pod host route and the pod's virtual-gateway routes.
    h.add_host_route(ip("10.240.0.216"), v.index).unwrap();
    h.add_host_route(ip("169.254.1.1"), v.index).unwrap();
    h.add_default_route(ip("169.254.1.1"), v.index).unwrap();

    let routes = h.list_routes().unwrap();
    let host_route = Route::host(ip("10.240.0.216"), v.index);
    assert!(routes.contains(&host_route), "{routes:?}");
    let default = routes.iter().find(|r| r.dst.prefix_len() == 0).unwrap();
    assert_eq!(default.gateway, Some(ip("169.254.1.1")));
    assert_eq!(default.oif, Some(v.index));
    assert_eq!(default.table, RT_TABLE_MAIN);
    let shown = host.ip(&["route", "show"]);
    assert!(
        shown.contains("10.240.0.216 dev aksntrt proto static scope link"),
        "{shown}"
    );
    assert!(
        shown.contains("default via 169.254.1.1 dev aksntrt"),
        "{shown}"
    );

    assert_eq!(
        h.default_route_link().unwrap().map(|l| l.name),
        Some("aksntrt".to_string())
    );
    // One FIB lookup: the /32 route for its address, the default for others.
    let to_pod = h.route_get(ip("10.240.0.216")).unwrap().unwrap();
    assert_eq!(to_pod.oif, Some(v.index));
    let elsewhere = h.route_get(ip("10.9.9.9")).unwrap().unwrap();
    assert_eq!(elsewhere.oif, Some(v.index));
    assert_eq!(elsewhere.gateway, Some(ip("169.254.1.1")));

    let dup = h.add_host_route(ip("10.240.0.216"), v.index).unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    assert!(!h.ensure_route(&host_route).unwrap());

    assert!(h
        .del_route(&Route::default_via(ip("169.254.1.1"), v.index))
        .unwrap());
    assert!(h.del_route(&host_route).unwrap());
    assert!(!h.del_route(&host_route).unwrap());
    assert_eq!(h.default_route_link().unwrap(), None);
    assert_eq!(h.route_get(ip("10.9.9.9")).unwrap(), None, "unreachable");
    let left = h.list_routes().unwrap();
    assert_eq!(
        left.iter().filter(|r| r.dst.addr().is_ipv4()).count(),
        1,
        "{left:?}"
    );
}

#[test]
fn gateway_neighbour_add_and_list() {
    let host = TestNetns::new("neigh");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntnb", "aksntnb2", &host.netns, 1500, None)
        .unwrap();
    h.add_neighbour(
        v.index,
        ip("169.254.1.1"),
        AZURE_HOST_VETH_MAC,
        NeighbourState::Permanent,
    )
    .unwrap();
    // Replace semantics: adding again is not an error.
    h.add_neighbour(
        v.index,
        ip("169.254.1.1"),
        AZURE_HOST_VETH_MAC,
        NeighbourState::Permanent,
    )
    .unwrap();
    h.add_neighbour(
        v.index,
        ip("fe80::1234:5678:9abc"),
        AZURE_HOST_VETH_MAC,
        NeighbourState::Permanent,
    )
    .unwrap();
    let neighbours = h.list_neighbours(v.index).unwrap();
    let gw = neighbours
        .iter()
        .find(|n| n.ip == ip("169.254.1.1"))
        .expect("gateway entry");
    assert_eq!(gw.mac, Some(AZURE_HOST_VETH_MAC));
    assert_eq!(gw.state, NeighbourState::Permanent);
    assert!(neighbours
        .iter()
        .any(|n| n.ip == ip("fe80::1234:5678:9abc")));
    assert!(host
        .ip(&["neigh", "show", "dev", "aksntnb"])
        .contains("169.254.1.1 lladdr aa:aa:aa:aa:aa:aa PERMANENT"));
}

#[test]
fn deleting_a_missing_link_returns_false() {
    let host = TestNetns::new("dellink");
    let pod = TestNetns::new("dellink-p");
    let mut h = host.handle();
    assert!(!h.del_link_by_name("aksntnone").unwrap());
    assert!(!h.del_link(999_999).unwrap());
    assert_eq!(h.link_by_name("aksntnone").unwrap(), None);
    h.create_veth("aksntdel", "eth0", &pod.netns, 1500, None)
        .unwrap();
    assert!(h.del_link_by_name("aksntdel").unwrap());
    // Deleting one end removes the peer in the other namespace too.
    assert_eq!(pod.handle().link_by_name("eth0").unwrap(), None);
    assert!(!h.del_link_by_name("aksntdel").unwrap());
}

/// The calling thread enters, works there and is back home afterwards, after
/// a panic too; a socket opened inside stays bound to the namespace.
#[test]
fn run_here_returns_the_thread_home_even_after_a_panic() {
    let pod = TestNetns::new("here");
    let home_ino = || std::fs::metadata("/proc/thread-self/ns/net").unwrap();
    use std::os::unix::fs::MetadataExt;
    let before = home_ino().ino();
    let (inside, mut h) =
        run_here_in_netns(&pod.netns, || (home_ino().ino(), Handle::new().unwrap())).unwrap();
    assert_ne!(inside, before, "was inside the pod netns");
    assert_eq!(home_ino().ino(), before, "back home");
    assert!(h.link_by_name("lo").unwrap().is_some());
    assert!(Netns::current().unwrap().is_current().unwrap());

    let panicked = std::panic::catch_unwind(|| {
        run_here_in_netns(&pod.netns, || panic!("inside")).unwrap();
    });
    assert!(panicked.is_err());
    assert_eq!(home_ino().ino(), before, "back home after the panic");

    let not_a_netns = Netns::open("/proc/self/ns/uts").unwrap();
    assert!(run_here_in_netns(&not_a_netns, || ()).is_err());
    assert_eq!(home_ino().ino(), before);
}

#[test]
fn sysctls_are_written_inside_the_target_netns() {
    let host = TestNetns::new("sysctl");
    let mut h = host.handle();
    h.create_veth("aksntsc", "aksntsc2", &host.netns, 1500, None)
        .unwrap();
    let outside_forward = get_sysctl("net/ipv4/ip_forward").unwrap();
    let values = run_in_netns(&host.netns, || -> aksnet_netlink::Result<_> {
        set_proxy_arp("aksntsc", true)?;
        set_accept_ra("aksntsc", 0)?;
        enable_ip_forward()?;
        Ok((
            get_sysctl("net/ipv4/conf/aksntsc/proxy_arp")?,
            get_sysctl("net/ipv4/ip_forward")?,
        ))
    })
    .unwrap()
    .unwrap();
    assert_eq!(values, ("1".to_string(), "1".to_string()));
    // Changed back, and set again to the value it has (read, nothing written).
    let again = run_in_netns(&host.netns, || -> aksnet_netlink::Result<_> {
        set_proxy_arp("aksntsc", false)?;
        let off = get_sysctl("net/ipv4/conf/aksntsc/proxy_arp")?;
        set_proxy_arp("aksntsc", false)?;
        set_accept_ra("aksntsc", 2)?;
        Ok((
            off,
            get_sysctl("net/ipv4/conf/aksntsc/proxy_arp")?,
            get_sysctl("net/ipv6/conf/aksntsc/accept_ra")?,
        ))
    })
    .unwrap()
    .unwrap();
    assert_eq!(again, ("0".into(), "0".into(), "2".into()));
    // The test thread's own namespace was not touched.
    assert_eq!(get_sysctl("net/ipv4/ip_forward").unwrap(), outside_forward);
    let missing = run_in_netns(&host.netns, || {
        get_sysctl("net/ipv4/conf/aksntnope/proxy_arp")
    })
    .unwrap();
    assert!(missing.unwrap_err().is_not_found());
}

#[test]
fn named_netns_delete_is_tolerant_and_open_reports_missing() {
    let name = format!("aksnt-gone-{}", std::process::id());
    assert!(!aksnet_netlink::delete_named_netns(&name).unwrap());
    let err = aksnet_netlink::Netns::open(aksnet_netlink::named_netns_path(&name)).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let ns = TestNetns::new("dupns");
    let err = aksnet_netlink::create_named_netns(&ns.name).unwrap_err();
    assert!(err.is_exists(), "{err}");
}

/// kubenet: bridge with the pod CIDR's .1, two pods on it, each with a
/// default route via .1 (docs/azure.md#kubenet). Pods ping each other
/// and the bridge.
#[test]
fn kubenet_bridge_pods_ping_each_other() {
    let node = TestNetns::new("kn-node");
    let pods = [TestNetns::new("kn-pod1"), TestNetns::new("kn-pod2")];
    let mut n = node.handle();
    let br = n.ensure_bridge("aksntcbr0", 1500, true).unwrap();
    n.ensure_addr(br.index, net("10.244.7.1/24")).unwrap();
    for (i, pod) in pods.iter().enumerate() {
        let host_if = format!("aksntkv{i}");
        let veth = n
            .create_veth(&host_if, "eth0", &pod.netns, 1500, None)
            .unwrap();
        n.set_master(veth.index, br.index).unwrap();
        n.set_hairpin(veth.index, false).unwrap();
        let mut p = pod.handle();
        let eth0 = p.link_by_name("eth0").unwrap().unwrap();
        p.set_link_up(eth0.index).unwrap();
        p.add_addr(eth0.index, net(&format!("10.244.7.{}/24", i + 2)))
            .unwrap();
        p.add_default_route(ip("10.244.7.1"), eth0.index).unwrap();
    }
    assert!(pods[0].ping("10.244.7.3"), "pod1 -> pod2 across the bridge");
    assert!(pods[1].ping("10.244.7.1"), "pod2 -> bridge gateway");
}

/// nodesubnet (Azure transparent mode, docs/azure.md#transparent-mode): pod
/// address with the subnet prefix but no on-link route, 169.254.1.1/32 scope
/// link + default via it, neighbour 169.254.1.1 -> host veth MAC, /32 host
/// route per pod, proxy_arp on the host veth. Pods reach the node and each
/// other only through the host's routing.
#[test]
fn nodesubnet_transparent_pods_ping_node_and_each_other() {
    let node = TestNetns::new("ns-node");
    let pods = [TestNetns::new("ns-pod1"), TestNetns::new("ns-pod2")];
    let mut n = node.handle();
    // The node's own address (stands in for eth0's), on lo.
    let lo = n.link_by_name("lo").unwrap().unwrap();
    n.set_link_up(lo.index).unwrap();
    n.add_addr(lo.index, net("10.240.0.4/32")).unwrap();
    run_in_netns(&node.netns, enable_ip_forward)
        .unwrap()
        .unwrap();

    for (i, pod) in pods.iter().enumerate() {
        let host_if = format!("aksntazv{i}");
        let pod_ip = ip(&format!("10.240.0.{}", 25 + i));
        let veth = n
            .create_veth(
                &host_if,
                "eth0",
                &pod.netns,
                1500,
                Some(AZURE_HOST_VETH_MAC),
            )
            .unwrap();
        n.add_host_route(pod_ip, veth.index).unwrap();
        run_in_netns(&node.netns, || {
            set_proxy_arp(&host_if, true)?;
            set_accept_ra(&host_if, 0)
        })
        .unwrap()
        .unwrap();

        let mut p = pod.handle();
        let eth0 = p.link_by_name("eth0").unwrap().unwrap();
        p.set_link_up(eth0.index).unwrap();
        p.add_addr_noprefixroute(eth0.index, IpNet::new(pod_ip, 16).unwrap())
            .unwrap();
        p.add_host_route(ip("169.254.1.1"), eth0.index).unwrap();
        p.add_default_route(ip("169.254.1.1"), eth0.index).unwrap();
        p.add_neighbour(
            eth0.index,
            ip("169.254.1.1"),
            AZURE_HOST_VETH_MAC,
            NeighbourState::Permanent,
        )
        .unwrap();
        let routes = p.list_routes().unwrap();
        assert!(
            !routes.iter().any(|r| r.dst == net("10.240.0.0/16")),
            "no on-link subnet route in the pod: {routes:?}"
        );
    }
    assert!(pods[0].ping("10.240.0.4"), "pod1 -> node");
    assert!(pods[0].ping("10.240.0.26"), "pod1 -> pod2 through the node");
    assert!(pods[1].ping("10.240.0.25"), "pod2 -> pod1 through the node");
}

#[test]
fn kernel_error_text_reaches_the_error() {
    let host = TestNetns::new("extack");
    let mut h = host.handle();
    let v = h
        .create_veth("aksntea", "aksntea2", &host.netns, 1500, None)
        .unwrap();
    // No route to the gateway: the kernel refuses with ENETUNREACH and says why.
    let err = h.add_default_route(ip("10.99.0.1"), v.index).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENETUNREACH), "{err}");
    match &err.kind {
        ErrorKind::Kernel {
            ext_ack: Some(text),
            ..
        } => assert!(!text.is_empty()),
        other => panic!("expected the kernel's ext-ack text, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with("add route 0.0.0.0/0 via 10.99.0.1 dev index"),
        "{shown}"
    );
    assert!(shown.contains("(kernel: "), "{shown}");
}

#[test]
fn routes_through_one_link_and_the_mtu_towards_an_address() {
    let host = TestNetns::new("via");
    let mut h = host.handle();
    let a = h
        .create_veth("aksntva", "aksntva2", &host.netns, 1400, None)
        .unwrap();
    let b = h
        .create_veth("aksntvb", "aksntvb2", &host.netns, 1500, None)
        .unwrap();
    h.add_host_route(ip("10.240.0.5"), a.index).unwrap();
    h.add_host_route(ip("10.240.0.6"), b.index).unwrap();
    h.add_host_route(ip("10.240.0.7"), b.index).unwrap();
    // The kernel filters the dump by link: only a's route, none of b's.
    assert_eq!(
        h.list_routes_via(a.index).unwrap(),
        vec![Route::host(ip("10.240.0.5"), a.index)]
    );
    assert_eq!(h.list_routes_via(b.index).unwrap().len(), 2);
    assert_eq!(h.mtu_towards(ip("10.240.0.5")).unwrap(), Some(1400));
    assert_eq!(h.mtu_towards(ip("10.240.0.6")).unwrap(), Some(1500));
    assert_eq!(h.mtu_towards(ip("10.9.9.9")).unwrap(), None, "unroutable");
}
