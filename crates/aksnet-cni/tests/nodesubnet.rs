//! nodesubnet mode (issue 3): a node netns with an uplink to a fabric netns,
//! the node joined with the real `aksnet node join`, pods added by running the
//! plugin inside the node netns exactly as a runtime on that node would.
//! Checks the transparent-mode contract (docs/architecture.md#datapath-contracts),
//! for nodesubnet and for podsubnet (issue 15: the same routed datapath, pod
//! addresses from a pod subnet's /28 blocks, the node joined with `--pod-subnet`)
//! and overlay (issue 15: the same datapath, addresses of the node's /24 of the
//! cluster pod CIDR, the node joined with `--overlay --pod-cidr-from`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

struct Node {
    ns: NetnsGuard,
    _fabric: NetnsGuard,
    data: tempfile::TempDir,
    store: tempfile::TempDir,
    pool: Value,
    conf: Value,
    /// Prefix of the namespaces the suites create for this node's pods.
    prefix: &'static str,
}

/// Where a node's pods take their addresses.
#[derive(Clone, Copy)]
enum Pods<'a> {
    NodeSubnet,
    /// A Pod Subnet join: the pod subnet's CIDR and `static` or `dynamic`.
    PodSubnet(&'a str, &'a str),
    /// An Overlay join: the cluster pod CIDR.
    Overlay(&'a str),
}

impl Pods<'_> {
    fn mode(self) -> &'static str {
        match self {
            Pods::NodeSubnet => "nodesubnet",
            Pods::PodSubnet(..) => "podsubnet",
            Pods::Overlay(_) => "overlay",
        }
    }

    fn join_args(self) -> Vec<String> {
        let v: Vec<&str> = match self {
            Pods::NodeSubnet => vec![],
            Pods::PodSubnet(cidr, alloc) => vec![
                "--pod-subnet",
                cidr,
                "--pod-subnet-name",
                "aksnt-pods",
                "--pod-allocation",
                alloc,
            ],
            Pods::Overlay(cidr) => vec!["--overlay", "--pod-cidr-from", cidr],
        };
        v.into_iter().map(str::to_string).collect()
    }
}

fn aksnet_bin() -> PathBuf {
    let p = Path::new(PLUGIN).with_file_name("aksnet");
    assert!(
        p.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// A node on 10.240.<x>.0/24 with an uplink of MTU 1400 (so the pods' copy of
/// it is visible), joined at `max_pods`.
fn node(x: u8, max_pods: u32) -> Node {
    node_in(x, max_pods, Pods::NodeSubnet)
}

/// [`node`]; joined and configured for the model `pods` (`"mode"` nodesubnet,
/// podsubnet or overlay).
fn node_in(x: u8, max_pods: u32, pods: Pods<'_>) -> Node {
    require_root();
    let prefix = match pods {
        Pods::Overlay(_) => "aksov",
        _ => "aksnt",
    };
    let t = tag("n");
    let ns = NetnsGuard::new(&format!("{prefix}-{t}"));
    let fabric = NetnsGuard::new(&format!("{prefix}-{t}f"));
    let data = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let subnet = format!("10.240.{x}.0/24");
    let out = Command::new(aksnet_bin())
        .args([
            "node",
            "join",
            "--node",
            &format!("{prefix}-node-{t}"),
            "--subnet",
            &subnet,
        ])
        .args([
            "--subnet-name",
            "aksnt-subnet",
            "--max-pods",
            &max_pods.to_string(),
        ])
        .args(pods.join_args())
        .arg("--store")
        .arg(store.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("aksnet node join");
    assert!(
        out.status.success(),
        "join: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool: Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("node-pool.json")).unwrap())
            .unwrap();
    let node_ip = pool["nodeIp"].as_str().expect("nodeIp").to_string();

    // Uplink: node eth0 <-> fabric, the fabric holding the subnet's .1.
    let nsh = aksnet_netlink::Netns::open(ns.path()).unwrap();
    let mut fh =
        aksnet_netlink::Handle::in_netns(&aksnet_netlink::Netns::open(fabric.path()).unwrap())
            .unwrap();
    let f = fh.create_veth("aksntup", "eth0", &nsh, 1400, None).unwrap();
    fh.add_addr(f.index, format!("10.240.{x}.1/24").parse().unwrap())
        .unwrap();
    fh.set_link_up(f.index).unwrap();
    let mut nh = aksnet_netlink::Handle::in_netns(&nsh).unwrap();
    let e = nh.link_by_name("eth0").unwrap().unwrap();
    nh.add_addr(e.index, format!("{node_ip}/24").parse().unwrap())
        .unwrap();
    nh.set_link_up(e.index).unwrap();
    nh.add_default_route(format!("10.240.{x}.1").parse().unwrap(), e.index)
        .unwrap();

    let conf = json!({
        "cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni",
        "mode": pods.mode(),
        "dataDir": data.path()
    });
    Node {
        ns,
        _fabric: fabric,
        data,
        store,
        pool,
        conf,
        prefix,
    }
}

impl Node {
    fn add(&self, id: &str, pod: &NetnsGuard, k8s: Option<&str>) -> Outcome {
        let args = k8s
            .map(|n| format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={n}"))
            .unwrap_or_default();
        verb(
            Some(&self.ns.name),
            "ADD",
            id,
            &pod.path(),
            &self.conf,
            &args,
        )
    }
    fn del(&self, id: &str, pod: &str, k8s: Option<&str>) -> Outcome {
        let args = k8s
            .map(|n| format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={n}"))
            .unwrap_or_default();
        verb(Some(&self.ns.name), "DEL", id, pod, &self.conf, &args)
    }
}

#[test]
fn transparent_datapath_contract() {
    datapath_contract(&node(1, 10), 24);
}

#[test]
fn podsubnet_static_has_the_same_datapath_with_pod_subnet_addresses() {
    let n = node_in(6, 15, Pods::PodSubnet("10.243.6.0/23", "static"));
    let pool = &n.pool["podSubnet"];
    assert_eq!(pool["blocks"], json!(["10.243.6.16"]), "{pool}");
    assert_eq!(n.pool["podIps"].as_array().map(Vec::len), Some(15));
    datapath_contract(&n, 23);
}

/// The routed datapath (docs/architecture.md#datapath-contracts), the pods'
/// addresses with the prefix length `prefix` of the subnet they come from.
fn datapath_contract(n: &Node, prefix: u8) {
    let a = NetnsGuard::new(&format!("{}-{}", n.prefix, tag("a")));
    let b = NetnsGuard::new(&format!("{}-{}", n.prefix, tag("b")));
    let ra = n.add("ca", &a, Some("web-a")).expect_ok().json();
    let rb = n.add("cb", &b, None).expect_ok().json();
    let (ipa, ipb) = (result_ip(&ra), result_ip(&rb));
    let pod_ips: Vec<&str> = n.pool["podIps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        pod_ips.contains(&ipa.as_str()) && pod_ips.contains(&ipb.as_str()),
        "from the reservation"
    );

    // Result: subnet prefix, gateway 169.254.1.1, default route.
    assert_eq!(ra["ips"][0]["address"], format!("{ipa}/{prefix}"));
    assert_eq!(ra["ips"][0]["gateway"], "169.254.1.1");
    assert_eq!(
        ra["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}])
    );

    // Host veth name: azv + SHA-1("default.web-a")[:11]; a container named by ID only gets a name of its own.
    let host_a = aksnet_core::naming::azure_host_veth_name("default", "web-a");
    let host_b = aksnet_core::naming::container_host_veth_name("cb", "eth0");
    assert_eq!(ra["interfaces"][0]["name"], host_a.as_str());
    assert_eq!(rb["interfaces"][0]["name"], host_b.as_str());

    for (pod, ip) in [(&a, &ipa), (&b, &ipb)] {
        let (_, addr) = pod.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(addr.contains(&format!("{ip}/{prefix}")), "{addr}");
        let (_, routes) = pod.exec(&["ip", "-4", "route"]);
        let mut lines: Vec<&str> = routes.lines().map(str::trim).collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "169.254.1.1 dev eth0 scope link",
                "default via 169.254.1.1 dev eth0"
            ],
            "no on-link subnet route, only the virtual gateway"
        );
        let (_, neigh) = pod.exec(&["ip", "neigh", "show", "169.254.1.1"]);
        assert!(neigh.contains("lladdr aa:aa:aa:aa:aa:aa"), "{neigh}");
        let (_, link) = pod.exec(&["ip", "-o", "link", "show", "eth0"]);
        assert!(link.contains("mtu 1400"), "MTU of the uplink: {link}");
    }
    for (host, ip) in [(&host_a, &ipa), (&host_b, &ipb)] {
        let (_, r) = n.ns.exec(&["ip", "route", "show", &format!("{ip}/32")]);
        assert!(
            r.contains(&format!("dev {host}")) && r.contains("proto static"),
            "{r}"
        );
        let (_, proxy) =
            n.ns.exec(&["cat", &format!("/proc/sys/net/ipv4/conf/{host}/proxy_arp")]);
        assert_eq!(proxy.trim(), "1");
        let (_, ra_) =
            n.ns.exec(&["cat", &format!("/proc/sys/net/ipv6/conf/{host}/accept_ra")]);
        assert_eq!(ra_.trim(), "0");
        let (_, l) = n.ns.exec(&["ip", "-o", "link", "show", host]);
        assert!(l.contains("aa:aa:aa:aa:aa:aa"), "{l}");
    }
    // The pods' interfaces take no router advertisements either.
    for pod in [&a, &b] {
        let (_, ra_) = pod.exec(&["cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra"]);
        assert_eq!(ra_.trim(), "0", "pod eth0 accept_ra");
    }
    // Pod to pod through the host, and pod to the node.
    assert!(a.ping(&ipb), "a -> b");
    assert!(b.ping(&ipa), "b -> a");
    assert!(a.ping(n.pool["nodeIp"].as_str().unwrap()), "a -> node");

    // CHECK passes, then DEL removes the host route and frees the address.
    verb(
        Some(&n.ns.name),
        "CHECK",
        "ca",
        &a.path(),
        &with_prev(&n.conf, &ra),
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-a",
    )
    .expect_ok();
    n.del("ca", &a.path(), Some("web-a")).expect_ok();
    let (_, r) = n.ns.exec(&["ip", "route", "show", &format!("{ipa}/32")]);
    assert!(r.trim().is_empty(), "host route left: {r}");
    let held: Vec<String> = allocations(n.data.path(), "azure")
        .iter()
        .map(|a| a["ips"][0]["ip"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(held, vec![ipb.clone()]);
    n.del("cb", &b.path(), None).expect_ok();
    n.del("cb", &b.path(), None).expect_ok();
    assert!(allocations(n.data.path(), "azure").is_empty());
}

#[test]
fn the_pod_after_max_pods_is_refused_and_leaves_nothing() {
    max_pods_suite(&node(2, 10));
}

#[test]
fn podsubnet_static_node_is_full_at_max_pods() {
    max_pods_suite(&node_in(7, 10, Pods::PodSubnet("10.243.8.0/24", "static")));
}

fn max_pods_suite(n: &Node) {
    let pods: Vec<NetnsGuard> = (0..11)
        .map(|_| NetnsGuard::new(&format!("{}-{}", n.prefix, tag("m"))))
        .collect();
    for (i, p) in pods.iter().take(10).enumerate() {
        n.add(&format!("m{i}"), p, None).expect_ok();
    }
    let o = n.add("m10", &pods[10], None);
    assert_eq!(o.code(), 100, "{}", o.stdout);
    let msg = o.msg();
    let node = n.pool["node"].as_str().unwrap();
    assert!(
        msg.contains(node) && msg.contains("10 reserved") && msg.contains("10 in use"),
        "{msg}"
    );
    assert_eq!(allocations(n.data.path(), "azure").len(), 10);
    let (_, links) = pods[10].exec(&["ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "refused pod got a link: {links}");
    let (_, node_links) = n.ns.exec(&["ip", "-o", "link"]);
    let fallback = aksnet_core::naming::container_host_veth_name("m10", "eth0");
    assert!(
        !node_links.contains(&fallback),
        "host veth of the refused pod left"
    );
    // STATUS says the node cannot take another pod.
    assert_eq!(
        call_in(
            Some(&n.ns.name),
            &[("CNI_COMMAND", "STATUS")],
            &n.conf.to_string()
        )
        .code(),
        50
    );
    for (i, p) in pods.iter().take(10).enumerate() {
        n.del(&format!("m{i}"), &p.path(), None).expect_ok();
    }
    assert!(allocations(n.data.path(), "azure").is_empty());
    call_in(
        Some(&n.ns.name),
        &[("CNI_COMMAND", "STATUS")],
        &n.conf.to_string(),
    )
    .expect_ok();
}

#[test]
fn a_node_that_has_not_joined_is_not_ready() {
    require_root();
    for (mode, join) in [
        ("nodesubnet", "aksnet node join"),
        ("podsubnet", "aksnet node join --pod-subnet"),
        ("overlay", "aksnet node join --overlay"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let conf = json!({"cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni",
                          "mode": mode, "dataDir": dir.path()});
        let o = call(&[("CNI_COMMAND", "STATUS")], &conf.to_string());
        assert_eq!(o.code(), 102, "{mode}: {}", o.stdout);
        assert!(
            o.msg().contains("node-pool.json") && o.msg().contains(join),
            "{mode}: {}",
            o.msg()
        );
        let p = NetnsGuard::new(&format!("aksnt-{}", tag("nj")));
        let o = verb(None, "ADD", "x", &p.path(), &conf, "");
        assert!(o.msg().contains(join), "{mode}: {}", o.msg());
    }
}

fn pod_sync(n: &Node) -> String {
    let out = Command::new(aksnet_bin())
        .args(["node", "pod-sync", "--store"])
        .arg(n.store.path())
        .arg("--data-dir")
        .arg(n.data.path())
        .output()
        .expect("aksnet node pod-sync");
    assert!(
        out.status.success(),
        "pod-sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pool_size(n: &Node) -> usize {
    let pool: Value = serde_json::from_str(
        &std::fs::read_to_string(n.data.path().join("node-pool.json")).unwrap(),
    )
    .unwrap();
    pool["podIps"].as_array().map_or(0, Vec::len)
}

/// Dynamic allocation with the real plugin and the real `aksnet node
/// pod-sync`: a pool of one batch (15 pod addresses) is used up, the next ADD
/// is refused with code 11 (try again) and changes nothing, pod-sync takes a
/// batch, the ADD succeeds; after every DEL two rounds return the extra batch.
#[test]
fn podsubnet_dynamic_pool_is_topped_up_by_pod_sync_and_trimmed_back() {
    let n = node_in(9, 30, Pods::PodSubnet("10.243.10.0/24", "dynamic"));
    assert_eq!(pool_size(&n), 15);
    let pods: Vec<NetnsGuard> = (0..16)
        .map(|_| NetnsGuard::new(&format!("aksnt-{}", tag("d"))))
        .collect();
    for (i, p) in pods.iter().take(15).enumerate() {
        n.add(&format!("d{i}"), p, None).expect_ok();
    }
    let o = n.add("d15", &pods[15], None);
    assert_eq!(o.code(), 11, "{}", o.stdout);
    assert!(
        o.msg().contains("aksnt-pods (10.243.10.0/24)") && o.msg().contains("pod-sync"),
        "{}",
        o.msg()
    );
    let (_, links) = pods[15].exec(&["ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "refused pod got a link: {links}");
    assert_eq!(
        call_in(
            Some(&n.ns.name),
            &[("CNI_COMMAND", "STATUS")],
            &n.conf.to_string()
        )
        .code(),
        50
    );
    let said = pod_sync(&n);
    assert!(said.contains("took 10.243.10.32/28"), "{said}");
    assert_eq!(pool_size(&n), 31);
    let r = n.add("d15", &pods[15], None).expect_ok().json();
    assert!(result_ip(&r).starts_with("10.243.10."), "{r}");
    assert!(
        pods[15].ping(n.pool["nodeIp"].as_str().unwrap()),
        "new pod -> node"
    );
    for (i, p) in pods.iter().enumerate() {
        n.del(&format!("d{i}"), &p.path(), None).expect_ok();
    }
    let said = pod_sync(&n);
    assert!(said.contains("returning 10.243.10.32/28"), "{said}");
    assert_eq!(pool_size(&n), 15, "the returning batch left the pool first");
    let said = pod_sync(&n);
    assert!(said.contains("released 10.243.10.32/28"), "{said}");
    assert_eq!(pool_size(&n), 15);
}

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Every spec version through the routed modes: ADD's result in the asked
/// version, CHECK from 0.4.0, STATUS and GC at 1.1.0 (GC releases an
/// attachment that is not valid), DEL twice; nothing left.
fn every_version(n: &Node, prefix: u8) {
    for (i, v) in VERSIONS.iter().enumerate() {
        let mut c = n.conf.clone();
        c["cniVersion"] = json!(v);
        let ns = NetnsGuard::new(&format!("{}-{}", n.prefix, tag("v")));
        let id = format!("ver{i}");
        let res = verb(Some(&n.ns.name), "ADD", &id, &ns.path(), &c, "")
            .expect_ok()
            .json();
        assert_eq!(res["cniVersion"], *v);
        assert_eq!(
            res["ips"][0].get("version").is_some(),
            v.starts_with("0."),
            "{v}: {res}"
        );
        let ip = result_ip(&res);
        assert_eq!(res["ips"][0]["address"], format!("{ip}/{prefix}"), "{v}");
        let cp = with_prev(&c, &res);
        let check = verb(Some(&n.ns.name), "CHECK", &id, &ns.path(), &cp, "");
        if *v >= "0.4.0" {
            check.expect_ok();
        } else {
            assert_eq!(check.code(), 1, "{v}: CHECK before 0.4.0");
        }
        let status = call_in(
            Some(&n.ns.name),
            &[("CNI_COMMAND", "STATUS")],
            &c.to_string(),
        );
        let gc = {
            let mut g = c.clone();
            g["cni.dev/valid-attachments"] = json!([]);
            call_in(Some(&n.ns.name), &[("CNI_COMMAND", "GC")], &g.to_string())
        };
        if *v == "1.1.0" {
            status.expect_ok();
            gc.expect_ok();
            assert!(
                allocations(n.data.path(), "azure").is_empty(),
                "GC released {ip}"
            );
            let (_, r) = n.ns.exec(&["ip", "route", "show", &format!("{ip}/32")]);
            assert!(r.trim().is_empty(), "GC left the host route: {r}");
        } else {
            assert_eq!(status.code(), 1, "{v}: STATUS");
            assert_eq!(gc.code(), 1, "{v}: GC");
        }
        verb(Some(&n.ns.name), "DEL", &id, &ns.path(), &cp, "").expect_ok();
        verb(Some(&n.ns.name), "DEL", &id, &ns.path(), &cp, "").expect_ok();
        assert!(
            allocations(n.data.path(), "azure").is_empty(),
            "{v}: address leaked"
        );
        let (_, links) = ns.exec(&["ip", "-o", "link"]);
        assert!(
            !links.contains("eth0"),
            "{v}: eth0 left in the pod: {links}"
        );
    }
}

#[test]
fn nodesubnet_every_spec_version() {
    every_version(&node(11, 10), 24);
}

#[test]
fn podsubnet_every_spec_version() {
    every_version(
        &node_in(12, 30, Pods::PodSubnet("10.243.12.0/24", "dynamic")),
        24,
    );
}

#[test]
fn overlay_has_the_same_datapath_with_addresses_of_the_nodes_24() {
    let n = node_in(13, 30, Pods::Overlay("192.168.0.0/16"));
    assert_eq!(n.pool["version"], 3, "{}", n.pool);
    assert_eq!(
        n.pool["overlay"],
        json!({"clusterPodCidr": "192.168.0.0/16", "podCidr": "192.168.0.0/24"})
    );
    let ips = n.pool["podIps"].as_array().unwrap();
    assert_eq!(ips.len(), 30);
    assert_eq!(ips[0], "192.168.0.1");
    datapath_contract(&n, 24);
}

#[test]
fn overlay_node_is_full_at_max_pods() {
    max_pods_suite(&node_in(14, 10, Pods::Overlay("192.168.0.0/16")));
}

#[test]
fn overlay_every_spec_version() {
    every_version(&node_in(15, 10, Pods::Overlay("192.168.0.0/16")), 24);
}

/// A conflist whose mode is not the model the node joined in is refused by
/// ADD and STATUS, naming the pool's model.
#[test]
fn overlay_conflist_on_a_node_subnet_pool_is_refused_naming_the_model() {
    let n = node(16, 10);
    let mut conf = n.conf.clone();
    conf["mode"] = json!("overlay");
    let o = call_in(
        Some(&n.ns.name),
        &[("CNI_COMMAND", "STATUS")],
        &conf.to_string(),
    );
    assert_ne!(o.code(), 0, "{}", o.stdout);
    assert!(
        o.msg().contains("nodesubnet node") && o.msg().contains("--overlay"),
        "{}",
        o.msg()
    );
    let p = NetnsGuard::new(&format!("aksov-{}", tag("w")));
    let o = verb(Some(&n.ns.name), "ADD", "w", &p.path(), &conf, "");
    assert!(o.msg().contains("nodesubnet node"), "{}", o.msg());
    assert!(allocations(n.data.path(), "azure").is_empty());
}
