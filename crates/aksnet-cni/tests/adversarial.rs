//! Adversarial tests of the plugin (issue 10, items 2, 3 and 7), each a
//! reproduction of what was found by attacking it, run with the real
//! `aksnet-cni` binary as a runtime runs it, in namespaces of the test's own.
//!
//! - Item 2: 32 ADDs of one attachment at once (a runtime retrying after a
//!   timeout) must leave the one pod that got an interface holding its
//!   reservation; a DEL racing an ADD must never leave a live pod whose
//!   address IPAM no longer holds. 100 rounds each in kubenet, nodesubnet and
//!   podsubnet; 25 in overlay (podsubnet's code with another pool).
//! - Item 3: an ADD must never break a live attachment it does not own: a
//!   second interface of a pod, a second sandbox of the same pod, a container
//!   ID equal to another pod's `namespace.name`.
//! - Item 7: `CNI_NETNS` naming the plugin's own namespace, an oversized
//!   stdin, oversized `K8S_*` values, a `dataDir` with `..`.

#[path = "support/fault.rs"]
mod fault;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use aksnet_netlink::Handle;
use fault::{Call, NamedNs, Network, Node, Outcome};
use serde_json::Value;

const ROUNDS: usize = 100;
/// overlay shares podsubnet's datapath and IPAM code (`RoutedMode`), which run the full
/// `ROUNDS`; its rounds check the overlay pool under the same races, at a quarter of the cost.
const OVERLAY_ROUNDS: usize = 25;
const RACERS: usize = 32;

/// The addresses on `ifname` in `pod` (none if the interface is absent, or
/// vanishes while we look: an asynchronous DEL's deleter may be at work).
fn pod_addrs(pod: &NamedNs, ifname: &str) -> Vec<IpAddr> {
    let mut h = Handle::in_netns(&pod.netns).expect("netlink socket in pod netns");
    let addrs = match h.link_by_name(ifname).expect("list links") {
        None => return Vec::new(),
        Some(l) => h.list_addrs(l.index),
    };
    match addrs {
        Err(e) if e.is_not_found() => Vec::new(),
        other => other
            .expect("list addresses")
            .into_iter()
            .map(|n| n.addr())
            .filter(|a| !matches!(a, IpAddr::V6(v6) if v6.segments()[0] == 0xfe80))
            .collect(),
    }
}

/// The addresses the state file holds for (container, ifname).
fn held_by(net: &Network, cid: &str, ifname: &str) -> Vec<IpAddr> {
    let Some(state) = net.state() else {
        return Vec::new();
    };
    state["allocations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["containerId"] == cid && a["ifname"] == ifname)
        .flat_map(|a| a["ips"].as_array().cloned().unwrap_or_default())
        .map(|l| {
            l["ip"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("lease ip")
        })
        .collect()
}

/// Every address held in the state, with its holder.
fn all_held(net: &Network) -> BTreeMap<IpAddr, String> {
    let mut out = BTreeMap::new();
    let Some(state) = net.state() else {
        return out;
    };
    for a in state["allocations"].as_array().into_iter().flatten() {
        for l in a["ips"].as_array().into_iter().flatten() {
            let ip: IpAddr = l["ip"].as_str().and_then(|s| s.parse().ok()).expect("ip");
            let holder = format!("{}/{}", a["containerId"], a["ifname"]);
            assert!(
                out.insert(ip, holder.clone()).is_none(),
                "{ip} held twice in the state"
            );
        }
    }
    out
}

fn call(net: &Network, verb: &str, cid: &str, pod: Option<&NamedNs>, name: &str) -> Call {
    Call::attachment(verb, &net.conf, cid, pod.map(|p| p.path()).as_deref(), name)
}

fn with_ifname(mut c: Call, ifname: &str) -> Call {
    c.env.insert("CNI_IFNAME".into(), ifname.into());
    c
}

/// Runs every call at once (one process each) and returns the outcomes.
fn all_at_once(node: &Node, calls: &[Call]) -> Vec<Outcome> {
    let children: Vec<_> = calls.iter().map(|c| node.spawn(c)).collect();
    children
        .into_iter()
        .map(|ch| {
            let out = ch.wait_with_output().expect("wait for aksnet-cni");
            Outcome::from_output(out, std::time::Duration::ZERO)
        })
        .collect()
}

/// The invariant a runtime relies on: a pod whose interface carries traffic
/// (its host end is up: an asynchronous DEL sets it down at once and deletes
/// the pair a moment later) is backed by a reservation of exactly its
/// addresses, and no address is held twice. Each round has one pod on the node.
fn assert_pod_backed(
    node: &Node,
    net: &Network,
    pod: &NamedNs,
    cid: &str,
    round: usize,
    what: &str,
) {
    let on_pod = pod_addrs(pod, "eth0");
    let held = held_by(net, cid, "eth0");
    all_held(net);
    let live = !node.pod_links_up().is_empty();
    if live {
        assert!(
            !on_pod.is_empty(),
            "{what}, round {round}: live host end, no pod end"
        );
        for a in &on_pod {
            assert!(
                held.contains(a),
                "{what}, round {round}: the live pod has {a} but IPAM holds {held:?} for it \
                 (state: {:?})",
                net.state()
            );
        }
    }
}

fn concurrent_adds_keep_the_winner(net: &Network, node: &Node, tag: &str, rounds: usize) {
    for round in 0..rounds {
        let pod = NamedNs::create(&format!("aksnt{tag}p"));
        let cid = format!("aksnt-{tag}-{round}");
        let add = call(net, "ADD", &cid, Some(&pod), "racer");
        let outs = all_at_once(node, &vec![add; RACERS]);
        let won = outs.iter().filter(|o| o.ok()).count();
        assert_eq!(
            won,
            1,
            "round {round}: exactly one ADD creates the interface: {:?}",
            outs.iter()
                .map(|o| o.stdout.trim().to_string())
                .collect::<Vec<_>>()
        );
        assert_pod_backed(node, net, &pod, &cid, round, "32 concurrent ADDs");
        // A new pod must not get the racer's address.
        let other = NamedNs::create(&format!("aksnt{tag}q"));
        let other_cid = format!("aksnt-{tag}-other-{round}");
        node.run(&call(net, "ADD", &other_cid, Some(&other), "other"))
            .expect_ok("ADD of another pod");
        let mine = pod_addrs(&pod, "eth0");
        let theirs = pod_addrs(&other, "eth0");
        assert!(
            mine.iter().all(|a| !theirs.contains(a)),
            "round {round}: two live pods share {mine:?}"
        );
        for (c, p) in [(&cid, &pod), (&other_cid, &other)] {
            node.run(&call(net, "DEL", c, Some(p), "x"))
                .expect_ok("DEL");
        }
        assert!(
            all_held(net).is_empty(),
            "round {round}: DEL left addresses"
        );
    }
}

fn del_racing_add_leaves_no_orphan(net: &Network, node: &Node, tag: &str, rounds: usize) {
    for round in 0..rounds {
        let pod = NamedNs::create(&format!("aksnt{tag}d"));
        let cid = format!("aksnt-{tag}-d{round}");
        let add = call(net, "ADD", &cid, Some(&pod), "racer");
        let del = call(net, "DEL", &cid, Some(&pod), "racer");
        let outs = all_at_once(node, &[add, del]);
        assert!(
            outs[1].ok(),
            "round {round}: DEL failed: {}",
            outs[1].stdout
        );
        assert_pod_backed(node, net, &pod, &cid, round, "DEL racing ADD");
        node.run(&call(net, "DEL", &cid, Some(&pod), "racer"))
            .expect_ok("final DEL");
        assert!(
            all_held(net).is_empty(),
            "round {round}: DEL left addresses"
        );
    }
}

#[test]
fn kubenet_concurrent_adds_of_one_attachment_never_free_the_live_address() {
    let node = Node::create("akn");
    let net = Network::kubenet(&node, "1.0.0");
    concurrent_adds_keep_the_winner(&net, &node, "akn", ROUNDS);
}

#[test]
fn nodesubnet_concurrent_adds_of_one_attachment_never_free_the_live_address() {
    let node = Node::create("ans");
    let net = Network::nodesubnet("1.0.0", 30);
    concurrent_adds_keep_the_winner(&net, &node, "ans", ROUNDS);
}

#[test]
fn podsubnet_concurrent_adds_of_one_attachment_never_free_the_live_address() {
    let node = Node::create("aps");
    let net = Network::podsubnet("1.0.0", 31);
    concurrent_adds_keep_the_winner(&net, &node, "aps", ROUNDS);
}

#[test]
fn podsubnet_del_racing_add_never_leaves_an_unbacked_pod() {
    let node = Node::create("adp");
    let net = Network::podsubnet("1.0.0", 31);
    del_racing_add_leaves_no_orphan(&net, &node, "adp", ROUNDS);
}

#[test]
fn overlay_concurrent_adds_of_one_attachment_never_free_the_live_address() {
    let node = Node::create("aoc");
    let net = Network::overlay("1.0.0", 30);
    concurrent_adds_keep_the_winner(&net, &node, "aoc", OVERLAY_ROUNDS);
}

#[test]
fn overlay_del_racing_add_never_leaves_an_unbacked_pod() {
    let node = Node::create("aod");
    let net = Network::overlay("1.0.0", 30);
    del_racing_add_leaves_no_orphan(&net, &node, "aod", OVERLAY_ROUNDS);
}

#[test]
fn kubenet_del_racing_add_never_leaves_an_unbacked_pod() {
    let node = Node::create("adk");
    let net = Network::kubenet(&node, "1.0.0");
    del_racing_add_leaves_no_orphan(&net, &node, "adk", ROUNDS);
}

#[test]
fn nodesubnet_del_racing_add_never_leaves_an_unbacked_pod() {
    let node = Node::create("adn");
    let net = Network::nodesubnet("1.0.0", 30);
    del_racing_add_leaves_no_orphan(&net, &node, "adn", ROUNDS);
}

/// The pod's end of the pair is still there: deleting the host end of a
/// veth pair deletes both ends, so a destroyed attachment shows here.
fn host_peer_is_live(_node: &Node, pod: &NamedNs, ifname: &str) -> bool {
    let mut h = Handle::in_netns(&pod.netns).expect("netlink in pod");
    h.link_by_name(ifname).expect("links").is_some()
}

#[test]
fn nodesubnet_second_interface_of_a_pod_keeps_the_first() {
    let node = Node::create("a2i");
    let net = Network::nodesubnet("1.0.0", 30);
    let pod = NamedNs::create("aksnta2ipod");
    node.run(&call(&net, "ADD", "aksnt-a2i", Some(&pod), "web"))
        .expect_ok("ADD eth0");
    node.run(&with_ifname(
        call(&net, "ADD", "aksnt-a2i", Some(&pod), "web"),
        "eth1",
    ))
    .expect_ok("ADD eth1");
    assert!(host_peer_is_live(&node, &pod, "eth0"), "eth0 was cut off");
    assert!(
        host_peer_is_live(&node, &pod, "eth1"),
        "eth1 has no host end"
    );
    assert_eq!(node.pod_links_up().len(), 2, "two live host veths");
    for ifname in ["eth1", "eth0"] {
        node.run(&with_ifname(
            call(&net, "DEL", "aksnt-a2i", Some(&pod), "web"),
            ifname,
        ))
        .expect_ok("DEL");
    }
    assert!(all_held(&net).is_empty());
}

#[test]
fn nodesubnet_second_sandbox_of_a_live_pod_is_refused_not_destroyed() {
    let node = Node::create("a2s");
    let net = Network::nodesubnet("1.0.0", 30);
    let first = NamedNs::create("aksnta2s1");
    let second = NamedNs::create("aksnta2s2");
    node.run(&call(&net, "ADD", "aksnt-a2s-1", Some(&first), "web"))
        .expect_ok("ADD first sandbox");
    let out = node.run(&call(&net, "ADD", "aksnt-a2s-2", Some(&second), "web"));
    assert!(
        host_peer_is_live(&node, &first, "eth0"),
        "first sandbox cut off"
    );
    assert!(
        !out.ok(),
        "second sandbox's ADD must fail while the first lives"
    );
    let err = out.json();
    assert!(
        err["msg"].as_str().unwrap_or("").contains("aksnt-a2s-1"),
        "the error names the live attachment: {err}"
    );
    assert_eq!(held_by(&net, "aksnt-a2s-2", "eth0"), Vec::<IpAddr>::new());
    // Once the first is deleted (kubelet stops the old sandbox first), the
    // second gets its interface.
    node.run(&call(&net, "DEL", "aksnt-a2s-1", Some(&first), "web"))
        .expect_ok("DEL first");
    node.run(&call(&net, "ADD", "aksnt-a2s-2", Some(&second), "web"))
        .expect_ok("ADD second after the first is gone");
    node.run(&call(&net, "DEL", "aksnt-a2s-2", Some(&second), "web"))
        .expect_ok("DEL second");
    assert!(all_held(&net).is_empty());
}

#[test]
fn nodesubnet_container_id_equal_to_a_pods_name_does_not_collide() {
    let node = Node::create("acn");
    let net = Network::nodesubnet("1.0.0", 30);
    let pod = NamedNs::create("aksntacnpod");
    let plain = NamedNs::create("aksntacnctr");
    // A Kubernetes pod aksnt/web ...
    node.run(&call(&net, "ADD", "aksnt-acn-k8s", Some(&pod), "web"))
        .expect_ok("ADD k8s pod");
    // ... and a plain container whose ID is "aksnt.web", with no K8S_* args.
    let mut c = call(&net, "ADD", "aksnt.web", Some(&plain), "x");
    c.env.insert("CNI_ARGS".into(), String::new());
    node.run(&c).expect_ok("ADD plain container");
    assert!(
        host_peer_is_live(&node, &pod, "eth0"),
        "the pod was cut off"
    );
    assert!(host_peer_is_live(&node, &plain, "eth0"));
    let mut d = call(&net, "DEL", "aksnt.web", Some(&plain), "x");
    d.env.insert("CNI_ARGS".into(), String::new());
    node.run(&d).expect_ok("DEL plain");
    assert!(
        host_peer_is_live(&node, &pod, "eth0"),
        "DEL removed the pod"
    );
    node.run(&call(&net, "DEL", "aksnt-acn-k8s", Some(&pod), "web"))
        .expect_ok("DEL pod");
}

/// Runs the plugin in `node`'s netns with `CNI_NETNS` naming that very
/// namespace: the plugin's own, which it must refuse and leave untouched.
#[test]
fn cni_netns_naming_the_plugins_own_namespace_is_refused() {
    let node = Node::create("aon");
    for net in [
        Network::kubenet(&node, "1.0.0"),
        Network::nodesubnet("1.0.0", 30),
    ] {
        let before = node.ns.links();
        let mut c = call(&net, "ADD", "aksnt-aon", None, "web");
        c.env.insert("CNI_NETNS".into(), "/proc/self/ns/net".into());
        let out = node.run(&c);
        assert!(!out.ok(), "ADD into the plugin's own netns must fail");
        assert_eq!(out.json()["code"], 4, "invalid environment: {}", out.stdout);
        assert!(
            out.json()["msg"]
                .as_str()
                .unwrap_or("")
                .contains("CNI_NETNS"),
            "{}",
            out.stdout
        );
        assert_eq!(node.ns.links(), before, "nothing changed in the node");
        assert!(all_held(&net).is_empty(), "nothing reserved");
    }
}

#[test]
fn oversized_stdin_is_refused_without_reading_it_all() {
    let node = Node::create("abi");
    let net = Network::kubenet(&node, "1.0.0");
    let pod = NamedNs::create("aksntabipod");
    let c = call(&net, "ADD", "aksnt-abi", Some(&pod), "web");
    let mut cmd = Command::new(fault::plugin_bin());
    cmd.env_clear()
        .envs(c.env.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // 64 MiB of spaces after a valid prefix: the plugin must stop reading
    // at its cap and answer (the write then fails with EPIPE, which is fine).
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..64 {
            if stdin.write_all(&chunk).is_err() {
                return false;
            }
        }
        true
    });
    let out = child.wait_with_output().expect("wait");
    let wrote_all = writer.join().expect("writer");
    let o = Outcome::from_output(out, std::time::Duration::ZERO);
    assert!(!o.ok());
    let err = o.json();
    assert!(
        err["msg"].as_str().unwrap_or("").contains("MiB"),
        "the error says the limit: {err}"
    );
    assert!(!wrote_all, "the plugin stopped reading at its cap");
    assert!(all_held(&net).is_empty());
}

#[test]
fn oversized_k8s_values_are_refused_before_anything_changes() {
    let node = Node::create("akv");
    let net = Network::nodesubnet("1.0.0", 30);
    let pod = NamedNs::create("aksntakvpod");
    for (key, value) in [
        ("K8S_POD_NAME", "p".repeat(300)),
        ("K8S_POD_NAMESPACE", "n".repeat(100)),
        ("K8S_POD_UID", "u".repeat(200)),
        ("K8S_POD_INFRA_CONTAINER_ID", "c".repeat(300)),
    ] {
        let mut c = call(&net, "ADD", "aksnt-akv", Some(&pod), "web");
        c.env.insert(
            "CNI_ARGS".into(),
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=aksnt;{key}={value}"),
        );
        let out = node.run(&c);
        assert!(!out.ok(), "{key} of {} bytes accepted", value.len());
        let err = out.json();
        assert_eq!(err["code"], 4, "{err}");
        assert!(err["msg"].as_str().unwrap_or("").contains(key), "{err}");
        assert!(all_held(&net).is_empty());
        assert!(pod_addrs(&pod, "eth0").is_empty());
    }
}

#[test]
fn data_dir_with_dot_dot_is_refused() {
    let node = Node::create("add");
    let net = Network::kubenet(&node, "1.0.0");
    let pod = NamedNs::create("aksntaddpod");
    let mut conf: Value = net.conf.clone();
    conf["dataDir"] = Value::String(format!("{}/../escape", net.data_dir.display()));
    let c = Call::attachment("ADD", &conf, "aksnt-add", Some(&pod.path()), "web");
    let out = node.run(&c);
    assert!(!out.ok());
    let err = out.json();
    assert_eq!(err["code"], 7, "{err}");
    assert!(
        err["msg"].as_str().unwrap_or("").contains("dataDir"),
        "{err}"
    );
    assert!(pod_addrs(&pod, "eth0").is_empty());
}
