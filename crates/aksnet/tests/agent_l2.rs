//! `aksnet agent --l2-uplink` on a plain LAN (issue 13 item 1), with real parts
//! only: a bridge as the switch, a node namespace joined with the real `aksnet
//! node join`, a pod created by the real `aksnet-cni` in nodesubnet mode, and a
//! LAN host that is not part of the cluster and has no route of its own to pods.
//! Needs root, `ip` (iproute2), `ping` and `nft`; a missing one fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");
const SUBNET: &str = "10.66.0.0/24";
const HOST_IP: &str = "10.66.0.200";

mod support;
use aksnet_testkit::{Netns, Outcome};
use support::{ok, run_cni, sh};

struct Lan {
    sw: String,
    node: String,
    pod: String,
    host: String,
    /// Removed on drop (their links go with them).
    _ns: Vec<Netns>,
}

fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

fn lan() -> Lan {
    aksnet_testkit::require_root();
    let pid = std::process::id();
    let name = |t: &str| format!("aksh6{pid}{t}");
    let (sw, node, pod, host) = (name("sw"), name("nd"), name("pd"), name("ht"));
    let guard: Vec<Netns> = [&sw, &node, &pod, &host]
        .iter()
        .map(|n| Netns::create(n))
        .collect();
    for ns in &guard {
        ns.ip(&["link", "set", "lo", "up"]);
    }
    ok(&in_ns(&sw, &["ip", "link", "add", "br0", "type", "bridge"]));
    ok(&in_ns(&sw, &["ip", "link", "set", "br0", "up"]));
    for (ns, port, addr) in [
        (&node, "pn", "10.66.0.4/24"),
        (&host, "ph", "10.66.0.200/24"),
    ] {
        ok(&in_ns(
            &sw,
            &[
                "ip", "link", "add", port, "type", "veth", "peer", "name", "up0", "netns", ns,
            ],
        ));
        ok(&in_ns(
            &sw,
            &["ip", "link", "set", port, "master", "br0", "up"],
        ));
        ok(&in_ns(ns, &["ip", "link", "set", "up0", "up"]));
        ok(&in_ns(ns, &["ip", "addr", "add", addr, "dev", "up0"]));
    }
    ok(&in_ns(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
    Lan {
        sw,
        node,
        pod,
        host,
        _ns: guard,
    }
}

fn aksnet(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run aksnet")
}

fn cni(node_ns: &str, command: &str, pod_ns: &str, data_dir: &Path) -> Outcome {
    let conf = serde_json::json!({
        "cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni",
        "mode": "nodesubnet", "dataDir": data_dir,
        "logFile": data_dir.join("aksnet-cni.log"),
    });
    run_cni(node_ns, command, "aksh6pod", pod_ns, &conf)
}

fn agent_once(node_ns: &str, data_dir: &Path) {
    let data = data_dir.display().to_string();
    ok(&in_ns(
        node_ns,
        &[
            BIN,
            "agent",
            "--once",
            "--mode",
            "nodesubnet",
            "--vnet-cidr",
            "10.66.0.0/16",
            "--config-dir",
            &data,
            "--metrics-addr",
            "off",
            "--data-dir",
            &data,
            "--l2-uplink",
            "up0",
        ],
    ));
}

fn ping(ns: &str, ip: &str) -> bool {
    sh(&in_ns(ns, &["ping", "-c", "2", "-W", "1", "-i", "0.3", ip]))
        .status
        .success()
}

fn proxies(ns: &str) -> String {
    ok(&in_ns(ns, &["ip", "neigh", "show", "proxy"]))
}

#[test]
fn the_lan_reaches_a_pod_only_once_the_node_answers_for_it() {
    let lan = lan();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("cluster").display().to_string();
    let data = tmp.path().join("node");
    // The LAN host is a tenant of the subnet: no node may be given its address.
    let o = aksnet(&[
        "subnet",
        "reserve",
        "--address",
        HOST_IP,
        "--owner",
        "lan-host",
        "--subnet",
        SUBNET,
        "--store",
        &store,
    ]);
    assert!(o.status.success(), "{o:?}");
    let o = aksnet(&[
        "node",
        "join",
        "--node",
        "node-a",
        "--subnet",
        SUBNET,
        "--max-pods",
        "10",
        "--store",
        &store,
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let o = cni(&lan.node, "ADD", &lan.pod, &data);
    let result = o.expect_ok().json();
    let pod_ip = result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(pod_ip.starts_with("10.66.0."), "{pod_ip}");
    assert!(
        !ping(&lan.host, &pod_ip),
        "the LAN host reached pod {pod_ip} before the node answered for it"
    );

    agent_once(&lan.node, &data);
    assert!(
        proxies(&lan.node).contains(&format!("{pod_ip} dev up0")),
        "{}",
        proxies(&lan.node)
    );
    assert!(
        ping(&lan.host, &pod_ip),
        "the LAN host cannot reach pod {pod_ip}"
    );
    assert!(
        ping(&lan.pod, HOST_IP),
        "pod {pod_ip} cannot reach the LAN host"
    );
    let before = proxies(&lan.node);
    agent_once(&lan.node, &data);
    assert_eq!(
        proxies(&lan.node),
        before,
        "a second --once changed the proxy entries"
    );

    let o = cni(&lan.node, "DEL", &lan.pod, &data);
    o.expect_ok();
    agent_once(&lan.node, &data);
    assert!(
        !proxies(&lan.node).contains(&pod_ip),
        "the node still answers for the deleted pod: {}",
        proxies(&lan.node)
    );
    let before = proxies(&lan.node);
    agent_once(&lan.node, &data);
    assert_eq!(proxies(&lan.node), before);
    let _ = &lan.sw;
}
