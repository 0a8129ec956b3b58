//! A node answering ARP on a plain L2 segment for its pods' addresses, and
//! only those (proxy neighbour entries), and a gratuitous ARP replacing a
//! neighbour's stale entry of a moved address. Real namespaces: a switch
//! (bridge), a node with a pod behind a routed veth, and a LAN host that is
//! not part of the cluster and has no route of its own to the pod.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use aksnet_netlink::{run_in_netns, send_gratuitous_arp};
use common::TestNetns;

const POD: &str = "10.77.0.9";
const OTHER: &str = "10.77.0.10";
const HOST: &str = "10.77.0.50";

struct Lan {
    _switch: TestNetns,
    node: TestNetns,
    pod: TestNetns,
    host: TestNetns,
}

fn sysctl(ns: &TestNetns, kv: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sysctl", "-qw", kv])
        .output()
        .expect("ip and sysctl (procps) must be installed");
    assert!(
        out.status.success(),
        "sysctl {kv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// switch: bridge `aksntsw`; node 10.77.0.4/24 and host 10.77.0.50/24 on it;
/// the pod 10.77.0.9 (an address of the LAN's subnet) behind the node's veth
/// `aksntpv` with a /32 route and proxy_arp on the veth, as nodesubnet builds it.
fn lan(tag: &str) -> Lan {
    let switch = TestNetns::new(&format!("{tag}sw"));
    let node = TestNetns::new(&format!("{tag}nd"));
    let pod = TestNetns::new(&format!("{tag}pd"));
    let host = TestNetns::new(&format!("{tag}ht"));
    switch.ip(&["link", "add", "aksntsw", "type", "bridge"]);
    switch.ip(&["link", "set", "aksntsw", "up"]);
    for (ns, port, addr) in [
        (&node, "aksntswn", "10.77.0.4/24"),
        (&host, "aksntswh", "10.77.0.50/24"),
    ] {
        switch.ip(&[
            "link", "add", port, "type", "veth", "peer", "name", "aksntup", "netns", &ns.name,
        ]);
        switch.ip(&["link", "set", port, "master", "aksntsw", "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["link", "set", "aksntup", "up"]);
        ns.ip(&["addr", "add", addr, "dev", "aksntup"]);
    }
    node.ip(&[
        "link", "add", "aksntpv", "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
    ]);
    node.ip(&["link", "set", "aksntpv", "up"]);
    node.ip(&["route", "add", &format!("{POD}/32"), "dev", "aksntpv"]);
    sysctl(&node, "net.ipv4.ip_forward=1");
    sysctl(&node, "net.ipv4.conf.aksntpv.proxy_arp=1");
    pod.ip(&["link", "set", "lo", "up"]);
    pod.ip(&["link", "set", "eth0", "up"]);
    pod.ip(&["addr", "add", &format!("{POD}/24"), "dev", "eth0"]);
    Lan {
        _switch: switch,
        node,
        pod,
        host,
    }
}

fn uplink(ns: &TestNetns) -> (u32, [u8; 6]) {
    let l = ns.handle().link_by_name("aksntup").unwrap().unwrap();
    (l.index, l.mac)
}

/// The host's neighbour entry for `ip`: its MAC as text, if any.
fn host_sees(host: &TestNetns, ip: &str) -> Option<String> {
    let out = host.ip(&["neigh", "show", ip, "dev", "aksntup"]);
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_string)
}

#[test]
fn the_node_answers_for_its_pods_and_only_those() {
    let lan = lan("l2a");
    let (up, mac) = uplink(&lan.node);
    let mut h = lan.node.handle();
    assert!(!lan.host.ping(POD), "nothing answers for the pod yet");

    let pod_ip: IpAddr = POD.parse().unwrap();
    run_in_netns(&lan.node.netns, || {
        aksnet_netlink::set_proxy_delay_zero("aksntup")
    })
    .unwrap()
    .unwrap();
    h.add_proxy_neighbour(up, pod_ip).unwrap();
    h.add_proxy_neighbour(up, pod_ip).unwrap(); // idempotent
    assert_eq!(h.list_proxy_neighbours(up).unwrap(), vec![pod_ip]);
    // The host's first ping left an INCOMPLETE entry that it retries once a
    // second (retrans_time), so allow it three tries.
    assert!(
        (0..3).any(|_| lan.host.ping(POD)),
        "the LAN host reaches the pod directly"
    );
    assert!(lan.pod.ping(HOST), "the pod reaches the LAN host");
    assert_eq!(
        host_sees(&lan.host, POD).as_deref(),
        Some(aksnet_netlink::format_mac(&mac).as_str()),
        "the node's uplink answered"
    );
    // An address the node does not hold is not answered for (proxy_arp=1 on
    // the uplink would have answered for anything the node routes).
    lan.node
        .ip(&["route", "add", &format!("{OTHER}/32"), "dev", "aksntpv"]);
    assert!(
        !lan.host.ping(OTHER),
        "no answer for an address without a proxy entry"
    );

    assert!(h.del_proxy_neighbour(up, pod_ip).unwrap());
    assert!(!h.del_proxy_neighbour(up, pod_ip).unwrap());
    assert!(h.list_proxy_neighbours(up).unwrap().is_empty());
}

#[test]
fn a_gratuitous_arp_replaces_a_stale_entry_of_a_moved_address() {
    let lan = lan("l2g");
    let (up, mac) = uplink(&lan.node);
    // The host still believes the address is at another node's MAC.
    lan.host.ip(&[
        "neigh",
        "replace",
        POD,
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "aksntup",
        "nud",
        "stale",
    ]);
    let ip: Ipv4Addr = POD.parse().unwrap();
    run_in_netns(&lan.node.netns, || send_gratuitous_arp(up, ip, mac))
        .unwrap()
        .unwrap();
    let want = aksnet_netlink::format_mac(&mac);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while host_sees(&lan.host, POD).as_deref() != Some(want.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the host still has {:?} for {POD} 1 s after the gratuitous ARP",
            host_sees(&lan.host, POD)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
