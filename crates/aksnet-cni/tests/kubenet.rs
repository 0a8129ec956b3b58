//! kubenet mode through the real binary, as root, in fresh namespaces
//! (issue 2, "Tests that must exist"). Every namespace, link and file is
//! removed by guards even when an assertion fails.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use serde_json::{json, Value};

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// One test's network. The plugin runs inside `node`, a netns of the test's
/// own that plays the host, as a runtime on that node would run it: the bridge,
/// host veths and sysctls the plugin touches all live there, so the machine's
/// own namespace is never changed and everything goes with the netns.
struct Net {
    node: NetnsGuard,
    bridge: String,
    dir: tempfile::TempDir,
    name: String,
}

fn net(tag_kind: &str) -> Net {
    require_root();
    let t = tag(tag_kind);
    Net {
        node: NetnsGuard::new(&format!("aksnt-{t}-node")),
        bridge: format!("aksntb{t}"),
        dir: tempfile::tempdir().expect("tempdir"),
        name: format!("aksnt-{t}"),
    }
}

impl Net {
    fn verb(&self, command: &str, id: &str, netns: &str, conf: &Value, args: &str) -> Outcome {
        verb(Some(&self.node.name), command, id, netns, conf, args)
    }

    fn call(&self, env: &[(&str, &str)], stdin: &str) -> Outcome {
        call_in(Some(&self.node.name), env, stdin)
    }

    /// A link in the node netns (where the plugin puts the host ends).
    fn link(&self, name: &str) -> Option<aksnet_netlink::Link> {
        let netns = aksnet_netlink::Netns::open(self.node.path()).unwrap();
        aksnet_netlink::Handle::in_netns(&netns)
            .unwrap()
            .link_by_name(name)
            .unwrap()
    }

    fn link_exists(&self, name: &str) -> bool {
        self.link(name).is_some()
    }
}

fn conf(n: &Net, version: &str, subnet: &str) -> Value {
    kubenet_conf(version, &n.name, &n.bridge, n.dir.path(), subnet)
}

#[test]
fn every_version_add_check_del_twice() {
    let n = net("v");
    for (i, v) in VERSIONS.iter().enumerate() {
        let c = conf(&n, v, "10.251.0.0/24");
        let ns = NetnsGuard::new(&format!("aksnt-{}", tag("v")));
        let id = format!("ver{i}");
        let res = n.verb("ADD", &id, &ns.path(), &c, "").expect_ok().json();
        assert_eq!(res["cniVersion"], *v);
        let has_version = res["ips"][0].get("version").is_some();
        assert_eq!(
            has_version,
            v.starts_with("0."),
            "{v}: ips[].version in {res}"
        );
        assert_eq!(res["interfaces"][2]["name"], "eth0");
        assert_eq!(res["interfaces"][2]["sandbox"], ns.path());
        assert_eq!(res["ips"][0]["interface"], 2);
        assert_eq!(res["ips"][0]["gateway"], "10.251.0.1");
        assert_eq!(res["routes"][0]["dst"], "0.0.0.0/0");
        let ip = result_ip(&res);
        let (_, addrs) = ns.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(addrs.contains(&format!("{ip}/24")), "{v}: {addrs}");
        let (_, routes) = ns.exec(&["ip", "route"]);
        assert!(
            routes.contains("default via 10.251.0.1 dev eth0"),
            "{v}: {routes}"
        );

        let cp = with_prev(&c, &res);
        if *v >= "0.4.0" {
            n.verb("CHECK", &id, &ns.path(), &cp, "").expect_ok();
        } else {
            // CHECK does not exist before 0.4.0: code 1 (SPEC.md, version history).
            assert_eq!(n.verb("CHECK", &id, &ns.path(), &cp, "").code(), 1);
        }
        if *v == "1.1.0" {
            n.call(&[("CNI_COMMAND", "STATUS")], &c.to_string())
                .expect_ok();
        } else {
            assert_eq!(
                n.call(&[("CNI_COMMAND", "STATUS")], &c.to_string()).code(),
                1
            );
        }
        n.verb("DEL", &id, &ns.path(), &cp, "").expect_ok();
        n.verb("DEL", &id, &ns.path(), &cp, "").expect_ok();
        assert!(
            allocations(n.dir.path(), &n.name).is_empty(),
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
fn two_pods_on_one_bridge_reach_each_other() {
    let n = net("p");
    let c = conf(&n, "1.1.0", "10.251.1.0/24");
    let a = NetnsGuard::new(&format!("aksnt-{}", tag("p")));
    let b = NetnsGuard::new(&format!("aksnt-{}", tag("p")));
    let ra = n.verb("ADD", "pa", &a.path(), &c, "").expect_ok().json();
    let rb = n.verb("ADD", "pb", &b.path(), &c, "").expect_ok().json();
    let (ipa, ipb) = (result_ip(&ra), result_ip(&rb));
    assert_ne!(ipa, ipb);
    assert!(a.ping(&ipb), "pod a cannot reach pod b at {ipb}");
    assert!(b.ping(&ipa), "pod b cannot reach pod a at {ipa}");
    assert!(a.ping("10.251.1.1"), "pod a cannot reach its gateway");
    // The host end is a port of the bridge.
    let host_veth = ra["interfaces"][1]["name"].as_str().expect("host veth");
    let (_, out) = n.node.exec(&["ip", "-o", "link", "show", host_veth]);
    assert!(out.contains(&format!("master {}", n.bridge)), "{out}");
    n.verb("DEL", "pa", &a.path(), &with_prev(&c, &ra), "")
        .expect_ok();
    n.verb("DEL", "pb", &b.path(), &with_prev(&c, &rb), "")
        .expect_ok();
    eventually("host veth deleted", || !n.link_exists(host_veth));
    assert!(allocations(n.dir.path(), &n.name).is_empty());
}

#[test]
fn del_after_the_netns_is_gone_releases_the_address() {
    let n = net("g");
    let c = conf(&n, "1.0.0", "10.251.2.0/24");
    let res;
    {
        let ns = NetnsGuard::new(&format!("aksnt-{}", tag("g")));
        res = n.verb("ADD", "gone", &ns.path(), &c, "").expect_ok().json();
        assert_eq!(allocations(n.dir.path(), &n.name).len(), 1);
    } // netns deleted here
    let path = "/run/netns/aksnt-does-not-exist";
    n.verb("DEL", "gone", path, &with_prev(&c, &res), "")
        .expect_ok();
    // And with no CNI_NETNS at all (it is optional for DEL).
    call(
        &[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "gone"),
            ("CNI_IFNAME", "eth0"),
        ],
        &c.to_string(),
    )
    .expect_ok();
    assert!(allocations(n.dir.path(), &n.name).is_empty());
    let host_veth = res["interfaces"][1]["name"].as_str().expect("host veth");
    // The kernel tears the netns down asynchronously; the veth must not outlive it.
    for _ in 0..100 {
        if !n.link_exists(host_veth) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("host veth {host_veth} left behind");
}

#[test]
fn check_reports_an_address_removed_by_hand() {
    let n = net("c");
    let c = conf(&n, "1.1.0", "10.251.3.0/24");
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("c")));
    let res = n.verb("ADD", "chk", &ns.path(), &c, "").expect_ok().json();
    let cp = with_prev(&c, &res);
    n.verb("CHECK", "chk", &ns.path(), &cp, "").expect_ok();
    let addr = res["ips"][0]["address"].as_str().expect("address");
    let (ok, out) = ns.exec(&["ip", "addr", "del", addr, "dev", "eth0"]);
    assert!(ok, "{out}");
    let o = n.verb("CHECK", "chk", &ns.path(), &cp, "");
    assert_eq!(o.code(), 103);
    assert!(
        o.msg().contains(addr),
        "CHECK must name the missing address: {}",
        o.msg()
    );
    n.verb("DEL", "chk", &ns.path(), &cp, "").expect_ok();
}

#[test]
fn duplicate_add_is_refused_and_keeps_the_first() {
    let n = net("d");
    let c = conf(&n, "1.1.0", "10.251.4.0/24");
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("d")));
    let res = n.verb("ADD", "dup", &ns.path(), &c, "").expect_ok().json();
    let o = n.verb("ADD", "dup", &ns.path(), &c, "");
    assert!(o.msg().contains("already exists"), "{}", o.stdout);
    // The first attachment is intact.
    n.verb("CHECK", "dup", &ns.path(), &with_prev(&c, &res), "")
        .expect_ok();
    assert_eq!(allocations(n.dir.path(), &n.name).len(), 1);
    n.verb("DEL", "dup", &ns.path(), &with_prev(&c, &res), "")
        .expect_ok();
}

#[test]
fn a_failing_add_leaves_nothing_behind() {
    let n = net("f");
    let mut c = conf(&n, "1.1.0", "10.251.5.0/24");
    // A route whose gateway is not on-link fails after the veth, the address
    // and the reservation exist: the undo list must remove all three.
    c["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0", "gw": "192.0.2.1"}]);
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("f")));
    let o = n.verb("ADD", "fail", &ns.path(), &c, "");
    assert!(!o.ok);
    assert_eq!(o.code(), 101, "{}", o.stdout);
    assert!(
        allocations(n.dir.path(), &n.name).is_empty(),
        "reservation left"
    );
    let (_, links) = ns.exec(&["ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "pod veth left: {links}");
    let host = aksnet_core::naming::kubenet_host_veth_name("fail", "eth0");
    assert!(!n.link_exists(&host), "host veth {host} left");
}

#[test]
fn requested_addresses_are_honoured() {
    let n = net("r");
    let mut c = conf(&n, "1.1.0", "10.251.6.0/24");
    let a = NetnsGuard::new(&format!("aksnt-{}", tag("r")));
    let b = NetnsGuard::new(&format!("aksnt-{}", tag("r")));
    // podman passes --ip as CNI_ARGS IP= (docs/cni-clients.md#podman).
    let ra = n
        .verb(
            "ADD",
            "ra",
            &a.path(),
            &c,
            "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.251.6.77",
        )
        .expect_ok()
        .json();
    assert_eq!(result_ip(&ra), "10.251.6.77");
    c["runtimeConfig"] = json!({"ips": ["10.251.6.88/24"], "mac": "02:aa:bb:cc:dd:ee"});
    let rb = n.verb("ADD", "rb", &b.path(), &c, "").expect_ok().json();
    assert_eq!(result_ip(&rb), "10.251.6.88");
    assert_eq!(rb["interfaces"][2]["mac"], "02:aa:bb:cc:dd:ee");
    // An address another pod holds is refused and nothing changes.
    let x = NetnsGuard::new(&format!("aksnt-{}", tag("r")));
    let o = n.verb("ADD", "rx", &x.path(), &c, "");
    assert_eq!(o.code(), 100, "{}", o.stdout);
    assert_eq!(allocations(n.dir.path(), &n.name).len(), 2);
    n.verb("DEL", "ra", &a.path(), &c, "").expect_ok();
    n.verb("DEL", "rb", &b.path(), &c, "").expect_ok();
}

#[test]
fn gc_releases_what_is_not_valid_and_status_reports_exhaustion() {
    let n = net("s");
    let mut c = conf(&n, "1.1.0", "10.251.7.0/24");
    // Two usable addresses.
    c["ipam"]["ranges"] = json!([[{"subnet": "10.251.7.0/24", "rangeStart": "10.251.7.10", "rangeEnd": "10.251.7.11"}]]);
    let a = NetnsGuard::new(&format!("aksnt-{}", tag("s")));
    let b = NetnsGuard::new(&format!("aksnt-{}", tag("s")));
    let status = || n.call(&[("CNI_COMMAND", "STATUS")], &c.to_string());
    status().expect_ok();
    let ra = n.verb("ADD", "ga", &a.path(), &c, "").expect_ok().json();
    let rb = n.verb("ADD", "gb", &b.path(), &c, "").expect_ok().json();
    let full = status();
    assert_eq!(full.code(), 50, "STATUS with a full pool: {}", full.stdout);

    // GC keeps "ga" (valid) and releases "gb", deleting its host veth.
    let mut g = c.clone();
    g["cni.dev/valid-attachments"] = json!([{"containerID": "ga", "ifname": "eth0"}]);
    n.call(&[("CNI_COMMAND", "GC")], &g.to_string()).expect_ok();
    let left = allocations(n.dir.path(), &n.name);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["containerId"], "ga");
    assert!(
        !n.link_exists(rb["interfaces"][1]["name"].as_str().unwrap_or_default()),
        "GC deletes synchronously"
    );
    assert!(n.link_exists(ra["interfaces"][1]["name"].as_str().unwrap_or_default()));
    status().expect_ok();

    // No key at all means none is valid (docs/cni-clients.md#gc).
    n.call(&[("CNI_COMMAND", "GC")], &c.to_string()).expect_ok();
    assert!(allocations(n.dir.path(), &n.name).is_empty());
    assert!(!n.link_exists(ra["interfaces"][1]["name"].as_str().unwrap_or_default()));
    // The 1.1.0 tag's key name works too.
    let mut g2 = c.clone();
    g2["cni.dev/attachments"] = json!([]);
    n.call(&[("CNI_COMMAND", "GC")], &g2.to_string())
        .expect_ok();
}

#[test]
fn prev_result_of_an_earlier_plugin_is_carried_through() {
    let n = net("h");
    let mut c = conf(&n, "1.0.0", "10.251.8.0/24");
    c["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "lo0"}],
        "ips": [],
        "dns": {"nameservers": ["10.0.0.10"]}
    });
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("h")));
    let res = n
        .verb("ADD", "chain", &ns.path(), &c, "")
        .expect_ok()
        .json();
    assert_eq!(res["interfaces"][0]["name"], "lo0");
    assert_eq!(res["interfaces"][3]["name"], "eth0");
    assert_eq!(
        res["ips"][0]["interface"], 3,
        "index shifted past the earlier interfaces"
    );
    assert_eq!(res["dns"]["nameservers"][0], "10.0.0.10");
    n.verb("DEL", "chain", &ns.path(), &c, "").expect_ok();
}

/// `ipMasq: true`: a host outside the pod subnet sees the node's address;
/// DEL takes the pod out of the masquerade set.
#[test]
fn ip_masq_hides_the_pod_behind_the_node() {
    require_root();
    let t = tag("q");
    let node = NetnsGuard::new(&format!("aksnt-{t}n"));
    let outside = NetnsGuard::new(&format!("aksnt-{t}o"));
    let pod = NetnsGuard::new(&format!("aksnt-{t}p"));
    let dir = tempfile::tempdir().unwrap();
    // Uplink node 10.254.0.2 <-> outside 10.254.0.3; the outside host has no
    // route to the pod subnet, so only a masqueraded connection can succeed.
    let nns = aksnet_netlink::Netns::open(node.path()).unwrap();
    let mut oh =
        aksnet_netlink::Handle::in_netns(&aksnet_netlink::Netns::open(outside.path()).unwrap())
            .unwrap();
    let o = oh
        .create_veth("aksntout", "eth0", &nns, 1500, None)
        .unwrap();
    oh.add_addr(o.index, "10.254.0.3/24".parse().unwrap())
        .unwrap();
    oh.set_link_up(o.index).unwrap();
    let mut nh = aksnet_netlink::Handle::in_netns(&nns).unwrap();
    let e = nh.link_by_name("eth0").unwrap().unwrap();
    nh.add_addr(e.index, "10.254.0.2/24".parse().unwrap())
        .unwrap();
    nh.set_link_up(e.index).unwrap();

    let mut c = kubenet_conf("1.1.0", "aksnt-masq", "cbr0", dir.path(), "10.251.9.0/24");
    c["ipMasq"] = json!(true);
    let res = verb(Some(&node.name), "ADD", "mq", &pod.path(), &c, "")
        .expect_ok()
        .json();
    let pod_ip = result_ip(&res);
    let (_, set) = node.exec(&["nft", "list", "table", "inet", "aksnet-cni"]);
    assert!(
        set.contains(&pod_ip),
        "pod address not in the masquerade set: {set}"
    );

    let mut listener = std::process::Command::new("ip")
        .args(["netns", "exec", &outside.name, "timeout", "10", "python3", "-c"])
        .arg("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('10.254.0.3',7777))\ns.listen(1)\nprint('ready',flush=True)\nc,a=s.accept()\nprint(a[0],flush=True)")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 listener (install python3)");
    // Wait for the listener's "ready" (a fixed sleep loses to a loaded machine).
    let mut stdout = std::io::BufReader::new(listener.stdout.take().expect("listener stdout"));
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut ready).expect("listener output");
    assert_eq!(ready.trim(), "ready", "the listener did not start");
    let (ok, out) = pod.exec(&[
        "python3",
        "-c",
        "import socket; socket.create_connection(('10.254.0.3', 7777), timeout=5)",
    ]);
    assert!(ok, "pod could not connect out: {out}");
    let mut seen = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut seen).expect("listener output");
    listener.wait().expect("listener");
    assert!(
        seen.lines().any(|l| l.trim() == "10.254.0.2"),
        "outside saw {seen:?}, want the node address"
    );

    verb(Some(&node.name), "DEL", "mq", &pod.path(), &c, "").expect_ok();
    let (_, set) = node.exec(&["nft", "list", "table", "inet", "aksnet-cni"]);
    assert!(!set.contains(&pod_ip), "pod address left in the set: {set}");
    verb(Some(&node.name), "DEL", "mq", &pod.path(), &c, "").expect_ok();
}

/// asyncDelete (the default): when DEL returns the pod is cut off (host end
/// down or gone) and its address free; the pair is gone shortly after. With
/// `asyncDelete: false` it is gone when DEL returns. An ADD right after a DEL
/// into the same netns and ifname waits for the pending deletion.
#[test]
fn async_and_sync_delete() {
    let n = net("ad");
    let c = conf(&n, "1.1.0", "10.251.10.0/24");
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("ad")));

    let r = n.verb("ADD", "ad1", &ns.path(), &c, "").expect_ok().json();
    let host = r["interfaces"][1]["name"].as_str().unwrap().to_string();
    n.verb("DEL", "ad1", &ns.path(), &c, "").expect_ok();
    assert!(
        allocations(n.dir.path(), &n.name).is_empty(),
        "address released by DEL"
    );
    let up = n.link(&host).is_some_and(|l| l.up);
    assert!(!up, "host end must be down or gone when DEL returns");
    // Same netns, same ifname, right away: ADD waits for the pending deletion.
    let r2 = n.verb("ADD", "ad2", &ns.path(), &c, "").expect_ok().json();
    assert_eq!(r2["interfaces"][2]["name"], "eth0");
    eventually("first host veth deleted", || !n.link_exists(&host));
    n.verb("DEL", "ad2", &ns.path(), &c, "").expect_ok();

    let mut sync = c.clone();
    sync["asyncDelete"] = json!(false);
    let r3 = n
        .verb("ADD", "ad3", &ns.path(), &sync, "")
        .expect_ok()
        .json();
    let host3 = r3["interfaces"][1]["name"].as_str().unwrap().to_string();
    n.verb("DEL", "ad3", &ns.path(), &sync, "").expect_ok();
    assert!(
        !n.link_exists(&host3),
        "asyncDelete false: gone when DEL returns"
    );
    let (_, links) = ns.exec(&["ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "{links}");
}

/// Dual stack: one address from each range set (host-local's `ranges`
/// semantics), a default route per family via that family's gateway.
#[test]
fn dual_stack_gets_one_address_per_range_set() {
    let n = net("ds");
    let mut c = conf(&n, "1.1.0", "10.251.11.0/24");
    c["ipam"]["ranges"] = json!([[{"subnet": "10.251.11.0/24"}], [{"subnet": "fd00:a:11::/64"}]]);
    let a = NetnsGuard::new(&format!("aksnt-{}", tag("ds")));
    let b = NetnsGuard::new(&format!("aksnt-{}", tag("ds")));
    let ra = n.verb("ADD", "dsa", &a.path(), &c, "").expect_ok().json();
    let rb = n.verb("ADD", "dsb", &b.path(), &c, "").expect_ok().json();
    let ips = ra["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 2, "{ra}");
    assert!(ips[0]["address"]
        .as_str()
        .unwrap()
        .starts_with("10.251.11."));
    assert!(ips[1]["address"]
        .as_str()
        .unwrap()
        .starts_with("fd00:a:11::"));
    assert_eq!(ips[1]["gateway"], "fd00:a:11::1");
    let dsts: Vec<&str> = ra["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .collect();
    assert_eq!(dsts, vec!["0.0.0.0/0", "::/0"]);
    let (_, r6) = a.exec(&["ip", "-6", "route"]);
    assert!(r6.contains("default via fd00:a:11::1 dev eth0"), "{r6}");
    // IPv6 between the pods (after DAD settles).
    let b6 = rb["ips"][1]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    eventually("pod a reaches pod b over IPv6", || {
        a.exec(&["ping", "-6", "-c", "1", "-W", "1", &b6]).0
    });
    n.verb("DEL", "dsa", &a.path(), &c, "").expect_ok();
    n.verb("DEL", "dsb", &b.path(), &c, "").expect_ok();
    assert!(allocations(n.dir.path(), &n.name).is_empty());
}

/// Issue 14: the result reports the bridge's MAC as it is after the pod's
/// port joined it (a fresh bridge has 00:00:00:00:00:00 until then), and every
/// call leaves one line in the plugin's log file.
#[test]
fn bridge_mac_is_current_and_each_call_is_logged() {
    let n = net("m");
    let log = n.dir.path().join("log/aksnet-cni.log");
    let mut c = conf(&n, "1.1.0", "10.251.2.0/24");
    c["logFile"] = json!(log);
    let a = NetnsGuard::new(&format!("aksnt-{}", tag("m")));
    let r = n
        .verb(
            "ADD",
            "ma",
            &a.path(),
            &c,
            "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web",
        )
        .expect_ok()
        .json();
    let mac = r["interfaces"][0]["mac"].as_str().expect("bridge mac");
    assert_ne!(mac, "00:00:00:00:00:00", "stale bridge MAC in {r}");
    assert_eq!(n.link(&n.bridge).expect("bridge").mac_string(), mac);
    n.verb("DEL", "ma", &a.path(), &with_prev(&c, &r), "")
        .expect_ok();
    let bad = n.verb("ADD", "mb", "/nonexistent/netns", &c, "");
    assert!(!bad.ok);
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .expect("the plugin wrote its log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["verb"], "ADD");
    assert_eq!(lines[0]["pod"], "ns1/web");
    assert_eq!(lines[0]["container"], "ma");
    assert_eq!(lines[0]["result"], "ok");
    let want: Vec<Value> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].clone())
        .collect();
    assert_eq!(lines[0]["addresses"], Value::Array(want));
    assert!(lines[0]["durationMs"].as_f64().unwrap() > 0.0);
    assert_eq!(lines[1]["verb"], "DEL");
    assert_eq!(lines[2]["result"], "error");
    assert_eq!(lines[2]["code"], 3, "{}", lines[2]);
}
