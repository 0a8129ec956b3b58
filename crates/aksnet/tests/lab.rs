//! `aksnet lab` end to end (issue 6), through the real binaries: `aksnet`
//! (this crate's) and `aksnet-cni` (built next to it by `cargo build
//! --workspace --bins`, as scripts/test.sh does). Must run as root. Each test
//! uses its own `akslb…-` prefix, so they run in parallel, and a guard runs
//! `lab down` on drop, also when the test fails.
//!
//! The expected matrix of each model is written in `lab_support`, from the
//! AKS documentation, not derived from the run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aksnet_testkit::{exec_in, ip_in, netns_with_prefix, ChildGuard};
use serde_json::Value;

mod lab_support;
use lab_support::{
    aksnet, bin_dir, prerequisites, LabGuard, BIN, KUBENET_EXPECTED, NODESUBNET_EXPECTED,
    OVERLAY_EXPECTED, PODSUBNET_EXPECTED,
};

fn ip(v: &Value) -> std::net::Ipv4Addr {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {v}"))
}

fn row<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["path"] == path))
        .unwrap_or_else(|| panic!("no row {path}"))
}

#[test]
fn nodesubnet_up_check_down() {
    let lab = LabGuard::new("akslbns-");
    lab.up_ok(&[
        "--model",
        "nodesubnet",
        "--nodes",
        "3",
        "--pods-per-node",
        "2",
    ]);
    let report = lab.check_matches(&NODESUBNET_EXPECTED);
    // Pod IPs come from the node subnet (AKS's default 10.224.0.0/16).
    let subnet: ipnet::Ipv4Net = "10.224.0.0/16".parse().unwrap();
    let across = row(&report, "pod-pod-across-nodes");
    assert!(
        subnet.contains(&ip(&across["fromAddress"])) && subnet.contains(&ip(&across["toAddress"]))
    );
    // The node IP a host outside the VNet sees is in the subnet too, and not the pod's.
    let peer = row(&report, "pod-peer");
    let seen = ip(&peer["seen"]["address"]);
    assert!(subnet.contains(&seen) && seen != ip(&peer["fromAddress"]));
    // 3 nodes + 6 pods + fabric + VM + peer + on-prem.
    assert_eq!(netns_with_prefix(&lab.prefix).len(), 3 + 6 + 4);
    let text = aksnet(&["lab", "check", "--prefix", &lab.prefix]);
    assert_eq!(text.code, Some(0));
    assert!(
        text.stdout
            .contains("systems in the same VNet see the pod IP"),
        "{}",
        text.stdout
    );

    let d = lab.down();
    assert_eq!(d.code, Some(0), "{}{}", d.stdout, d.stderr);
    assert!(d.stdout.contains("13 namespaces removed"), "{}", d.stdout);
    lab.assert_gone();
    let again = lab.down();
    assert_eq!(again.code, Some(0));
    assert!(
        again.stdout.contains("nothing to remove"),
        "{}",
        again.stdout
    );
    let c = aksnet(&["lab", "check", "--prefix", &lab.prefix]);
    assert_eq!(c.code, Some(1));
    assert!(c.stderr.contains("no lab with prefix"), "{}", c.stderr);
}

#[test]
fn kubenet_up_check_down() {
    let lab = LabGuard::new("akslbkn-");
    lab.up_ok(&["--model", "kubenet", "--nodes", "3", "--pods-per-node", "2"]);
    let report = lab.check_matches(&KUBENET_EXPECTED);
    // Pods on the pod CIDR, a /24 per node; nodes on the subnet.
    let across = row(&report, "pod-pod-across-nodes");
    assert!(ip(&across["fromAddress"])
        .to_string()
        .starts_with("10.244.0."));
    assert!(ip(&across["toAddress"])
        .to_string()
        .starts_with("10.244.2."));
    let vm = row(&report, "pod-vm");
    assert_eq!(
        ip(&vm["seen"]["address"]),
        std::net::Ipv4Addr::new(10, 224, 0, 4)
    );
    let d = lab.down();
    assert_eq!(d.code, Some(0), "{}{}", d.stdout, d.stderr);
    lab.assert_gone();
    assert!(lab.down().stdout.contains("nothing to remove"));
}

#[test]
fn peered_range_in_non_masquerade_cidrs_keeps_the_pod_ip() {
    let lab = LabGuard::new("akslbnm-");
    lab.up_ok(&["--nodes", "2", "--pods-per-node", "1", "--non-masq-peer"]);
    let (r, report) = lab.check_json();
    assert_eq!(r.code, Some(0), "check: {}{}", r.stdout, r.stderr);
    // Azure/AKS#1207's workaround: the peered VNet now sees the pod IP, on-prem still the node IP.
    assert_eq!(row(&report, "pod-peer")["seenAs"], "pod");
    assert_eq!(row(&report, "pod-onprem")["seenAs"], "node");
    // One pod per node: the same-node path does not apply, and says so.
    assert_eq!(row(&report, "pod-pod-same-node")["seenAs"], "n/a");
    lab.down_clean();
}

#[test]
fn two_labs_with_different_prefixes_at_once() {
    let a = LabGuard::new("akslb2a-");
    let b = LabGuard::new("akslb2b-");
    // Same (default) address ranges: each lab is its own set of namespaces.
    assert_eq!(a.up(&["--nodes", "2"]).code, Some(0));
    assert_eq!(b.up(&["--nodes", "2", "--model", "kubenet"]).code, Some(0));
    // A second up under a taken prefix is refused and leaves the first intact.
    let again = a.up(&["--nodes", "2"]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("already up"), "{}", again.stderr);
    a.down_clean();
    b.check_matches(&KUBENET_EXPECTED);
    b.down_clean();
}

#[test]
fn bad_input_is_refused_before_anything_is_created() {
    prerequisites();
    let cases: [(&[&str], &str); 7] = [
        (&["--prefix", "Bad_"], "--prefix"),
        (
            &["--prefix", "akslbbad-", "--subnet", "10.10.0.0/24"],
            "--subnet",
        ),
        (
            &["--prefix", "akslbbad-", "--peer", "10.230.0.0/16"],
            "--peer",
        ),
        (
            &["--prefix", "akslbbad-", "--state-dir", "/tmp"],
            "--state-dir",
        ),
        (
            &[
                "--prefix",
                "akslbbad-",
                "--model",
                "podsubnet",
                "--pod-subnet",
                "10.224.0.0/24",
            ],
            "--pod-subnet",
        ),
        (
            &[
                "--prefix",
                "akslbbad-",
                "--model",
                "podsubnet",
                "--fabric",
                "l2",
            ],
            "--fabric",
        ),
        (
            &[
                "--prefix",
                "akslbbad-",
                "--model",
                "overlay",
                "--pod-cidr",
                "10.230.0.0/16",
            ],
            "--pod-cidr",
        ),
    ];
    for (args, flag) in cases {
        let mut all = vec!["lab", "up"];
        all.extend_from_slice(args);
        let r = aksnet(&all);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(flag), "{args:?}: {}", r.stderr);
    }
    assert!(netns_with_prefix("akslbbad-").is_empty());
    assert!(!Path::new("/run/akslbbad-lab").exists());
}

#[test]
fn down_after_an_up_killed_midway_leaves_nothing() {
    let lab = LabGuard::new("akslbkill-");
    let journal = lab.state_dir().join("journal.jsonl");
    let mut up = ChildGuard::new(
        "lab up",
        Command::new(BIN)
            .args([
                "lab",
                "up",
                "--prefix",
                &lab.prefix,
                "--nodes",
                "8",
                "--subnet",
                "10.224.0.0/24",
            ])
            .args(["--pods-per-node", "30"])
            .env("AKSNET_BIN_DIR", bin_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lab up"),
    );
    // Kill it once it has created some namespaces (well before its 252).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "lab up made no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    up.child.kill().expect("kill lab up");
    let _ = up.child.wait();
    // SIGKILL reaches only `lab up` itself; a plugin or join it had just
    // started finishes on its own within milliseconds (a terminal's Ctrl-C
    // would have stopped the whole process group).
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        !text.contains("upDone"),
        "up finished before it was killed; the test proves nothing"
    );
    assert!(
        !netns_with_prefix(&lab.prefix).is_empty(),
        "nothing to clean up?"
    );
    let check = aksnet(&["lab", "check", "--prefix", &lab.prefix]);
    assert!(
        check.stdout.contains("did not finish") || check.code == Some(1),
        "{}",
        check.stdout
    );

    let d = lab.down();
    assert_eq!(d.code, Some(0), "{}{}", d.stdout, d.stderr);
    lab.assert_gone();
    assert!(lab.down().stdout.contains("nothing to remove"));
}

#[test]
fn demo_proves_every_claim_and_cleans_up() {
    let lab = LabGuard::new("akslbdemo-");
    let r = aksnet(&["lab", "demo", "--prefix", &lab.prefix]);
    assert_eq!(r.code, Some(0), "demo: {}{}", r.stdout, r.stderr);
    for needle in [
        "8 nodes joined 10.224.0.0/24 at maxPods 30",
        "the 9th node is refused\n         InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs \
         available 3 in Subnet Cidr 10.224.0.0/24, Subnet Name aks-subnet",
        "pod 31 is refused by aksnet-cni ADD\n         CNI error 100: node akslbdemo-node-0",
        "the 401st is refused",
        "a VM cannot be placed in the pod subnet",
        "VMs cannot be placed in a pod subnet",
        "(CNI code 11), one `aksnet node pod-sync` took a batch",
        // Which block a node gets depends on the order of the parallel joins.
        "two rounds return the batch: 10.226.0.",
        "/28 held again; the fabric dropped 1 route(s)",
        "side by side: the source address each destination observes",
        "the same claims on a plain LAN",
        "VM in node subnet: address",
        "every claim holds",
    ] {
        assert!(r.stdout.contains(needle), "missing {needle:?} in:\n{}", r.stdout);
    }
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    // The side-by-side table: one column per model, the documented cell in each.
    let table = side_by_side(&r.stdout);
    let want = [
        (
            "pod → VM in the VNet",
            ["node IP", "pod IP", "node IP", "pod IP"],
        ),
        (
            "pod → peered VNet host",
            ["node IP", "node IP", "node IP", "pod IP"],
        ),
        (
            "pod → on-premises host",
            ["node IP", "node IP", "node IP", "pod IP"],
        ),
        ("VM → pod", ["unreachable", "VM IP", "unreachable", "VM IP"]),
    ];
    for (path, cells) in want {
        let line = table
            .iter()
            .find(|l| l.starts_with(path))
            .unwrap_or_else(|| panic!("no row {path:?} in {table:#?}"));
        let got: Vec<&str> = line[path.len()..]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(got, cells, "{path}: {line}");
    }
    lab.assert_gone();
}

/// The lines of the demo's side-by-side table (header first), unindented.
fn side_by_side(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.contains("side by side"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

/// The fabric's routes into `range` (`ip -n <prefix>vnet -4 route`), as
/// (destination, next hop).
fn fabric_routes(
    lab: &LabGuard,
    table: &str,
    range: ipnet::Ipv4Net,
) -> Vec<(ipnet::Ipv4Net, String)> {
    ip_in(&lab.ns("vnet"), &["-4", "route", "show", "table", table])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let dst: ipnet::Ipv4Net = w.next()?.parse().ok()?;
            let via = l
                .split(" via ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string();
            range.contains(&dst).then_some((dst, via))
        })
        .collect()
}

/// Nodes (name → IP) and pods (node, IP) from the lab's journal.
fn journal(
    lab: &LabGuard,
) -> (
    std::collections::BTreeMap<String, String>,
    Vec<(String, String)>,
) {
    let mut nodes = std::collections::BTreeMap::new();
    let mut pods = Vec::new();
    for v in lab.journal() {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        match v["kind"].as_str() {
            Some("node") => {
                nodes.insert(s("name"), s("ip"));
            }
            Some("pod") => pods.push((s("node"), s("ip"))),
            _ => {}
        }
    }
    (nodes, pods)
}

/// Every pod's address lies in a /28 the fabric routes to its own node: the
/// fabric follows the store's blocks.
fn assert_pods_routed_to_their_nodes(lab: &LabGuard, blocks: usize) {
    let routes = fabric_routes(lab, "main", "10.226.0.0/16".parse().expect("CIDR"));
    assert_eq!(routes.len(), blocks, "{routes:?}");
    assert!(
        routes.iter().all(|(b, _)| b.prefix_len() == 28),
        "{routes:?}"
    );
    let (nodes, pods) = journal(lab);
    assert!(!pods.is_empty());
    for (node, ip) in &pods {
        let ip: std::net::Ipv4Addr = ip.parse().expect("journal address");
        let (block, via) = routes
            .iter()
            .find(|(b, _)| b.contains(&ip))
            .unwrap_or_else(|| panic!("pod {ip} of {node}: no fabric route: {routes:?}"));
        assert_eq!(Some(via), nodes.get(node), "pod {ip} in {block}");
    }
}

#[test]
fn podsubnet_static_up_check_down() {
    let lab = LabGuard::new("akslbps-");
    lab.up_ok(&[
        "--model",
        "podsubnet",
        "--pod-allocation",
        "static",
        "--max-pods",
        "31",
        "--nodes",
        "2",
        "--pods-per-node",
        "2",
    ]);
    let report = lab.check_matches(&PODSUBNET_EXPECTED);
    // Pods take pod-subnet addresses; hosts outside the VNet see them too.
    let pods: ipnet::Ipv4Net = "10.226.0.0/16".parse().unwrap();
    let onprem = row(&report, "pod-onprem");
    assert!(pods.contains(&ip(&onprem["seen"]["address"])), "{onprem:#}");
    // The exception: Azure DNS sees the node IP (in the node subnet), never the pod's.
    let dns = row(&report, "pod-azuredns");
    let subnet: ipnet::Ipv4Net = "10.224.0.0/16".parse().unwrap();
    assert!(subnet.contains(&ip(&dns["seen"]["address"])), "{dns:#}");
    // maxPods 31: ceil(32 / 16) = 2 blocks per node, each routed to its node.
    assert_pods_routed_to_their_nodes(&lab, 4);
    // No VM is placed in the pod subnet: the fabric holds no address of it.
    let addrs = ip_in(&lab.ns("vnet"), &["-4", "-o", "addr"]);
    assert!(!addrs.contains(" 10.226."));
    let text = aksnet(&["lab", "check", "--prefix", &lab.prefix]);
    assert!(
        text.stdout
            .contains("IMDS 169.254.169.254 (not probed) to the node IP")
            && text.stdout.contains("pod → Azure DNS 168.63.129.16"),
        "{}",
        text.stdout
    );
    lab.down_clean();
}

#[test]
fn podsubnet_dynamic_nodes_take_a_batch_and_the_fabric_follows() {
    let lab = LabGuard::new("akslbpd-");
    // 16 pods per node: one batch holds 15 (its first address is the node's),
    // so every node's 16th ADD waits for a second batch during `up`.
    let up = lab.up_ok(&[
        "--model",
        "podsubnet",
        "--nodes",
        "2",
        "--pods-per-node",
        "16",
    ]);
    assert!(
        up.stdout
            .contains("Azure CNI Pod Subnet (dynamic), 2 nodes, 32 pods"),
        "{}",
        up.stdout
    );
    lab.check_matches(&PODSUBNET_EXPECTED);
    assert_pods_routed_to_their_nodes(&lab, 4);
    lab.down_clean();
}

#[test]
fn overlay_up_check_down() {
    let lab = LabGuard::new("akslbov-");
    lab.up_ok(&["--model", "overlay", "--nodes", "2", "--pods-per-node", "2"]);
    let report = lab.check_matches(&OVERLAY_EXPECTED);
    // Pods on the overlay CIDR, a /24 per node from the store; the VM sees the node IP.
    let overlay: ipnet::Ipv4Net = "10.244.0.0/16".parse().unwrap();
    let across = row(&report, "pod-pod-across-nodes");
    let (from, to) = (ip(&across["fromAddress"]), ip(&across["toAddress"]));
    assert!(
        overlay.contains(&from) && overlay.contains(&to),
        "{across:#}"
    );
    assert_ne!(from.octets()[2], to.octets()[2], "one /24 per node");
    let subnet: ipnet::Ipv4Net = "10.224.0.0/16".parse().unwrap();
    assert!(subnet.contains(&ip(&row(&report, "pod-vm")["seen"]["address"])));
    // The fabric routes each node's /24 to the node, for node links only;
    // nothing in its main table leads into the overlay.
    let (nodes, _) = journal(&lab);
    let routed = fabric_routes(&lab, "101", overlay);
    assert_eq!(routed.len(), 2, "{routed:?}");
    assert!(routed
        .iter()
        .all(|(c, via)| c.prefix_len() == 24 && nodes.values().any(|n| n == via)));
    assert!(fabric_routes(&lab, "main", overlay).is_empty());
    lab.down_clean();
}

#[test]
fn check_fails_when_the_datapath_breaks_a_documented_claim() {
    let lab = LabGuard::new("akslbmm-");
    assert_eq!(
        lab.up(&["--nodes", "2", "--pods-per-node", "2"]).code,
        Some(0)
    );
    // Remove node 0's SNAT (the agent's table): its pods now leave with their
    // own IP, which a host outside the VNet must not see.
    let out = exec_in(
        "akslbmm-node-0",
        &[BIN, "agent", "--uninstall", "--table", "akslbmm-snat"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, report) = lab.check_json();
    assert_eq!(r.code, Some(1), "check must fail: {}", r.stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(row(&report, "pod-onprem")["seenAs"], "pod");
    assert_eq!(row(&report, "pod-onprem")["ok"], false);
    let text = aksnet(&["lab", "check", "--prefix", &lab.prefix]);
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.contains("FAIL"), "{}", text.stdout);
    lab.down_clean();
}

fn read_state(lab: &LabGuard) -> (String, String) {
    let read = |f: &str| std::fs::read_to_string(lab.state_dir().join(f)).unwrap_or_default();
    (read("lab.json"), read("journal.jsonl"))
}

/// `lab migrate --dry-run` plans the lab's migration with the planner's rules: a kubenet lab
/// may migrate (its pod CIDR kept, the steps node by node); a pod CIDR that is not a superset
/// of kubenet's is refused, and so is a Pod Subnet lab, with AKS's reason, exit 1, nothing
/// changed.
#[test]
fn migrate_dry_run_plans_kubenet_and_refuses_what_aks_refuses() {
    let lab = LabGuard::new("akslbmgdry-");
    lab.up_ok(&["--model", "kubenet", "--nodes", "2"]);
    let before = read_state(&lab);
    let base = ["lab", "migrate", "--prefix", &lab.prefix, "--to", "overlay"];
    let ok = aksnet(&[&base[..], &["--dry-run"]].concat());
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout.contains("migration kubenet → Azure CNI Overlay"),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.contains("Findings: 0 errors"), "{}", ok.stdout);
    assert!(
        ok.stdout
            .contains("a /24 of 10.244.0.0/16 per node, room for 250 pods"),
        "{}",
        ok.stdout
    );
    for node in ["akslbmgdry-node-0", "akslbmgdry-node-1"] {
        assert!(
            ok.stdout.contains(&format!("{node} (")),
            "no step for {node}: {}",
            ok.stdout
        );
    }
    // The top-level `aksnet migrate` is the same command.
    let top = aksnet(&[&base[1..], &["--dry-run"]].concat());
    assert_eq!(
        (top.code, &top.stdout),
        (Some(0), &ok.stdout),
        "{}",
        top.stderr
    );
    let moved = aksnet(&[&base[..], &["--dry-run", "--pod-cidr", "10.245.0.0/16"]].concat());
    assert_eq!(moved.code, Some(1), "{}{}", moved.stdout, moved.stderr);
    assert!(
        moved.stdout.contains("P6")
            && moved
                .stdout
                .contains("contiguous superset of 10.244.0.0/16"),
        "{}",
        moved.stdout
    );
    assert!(
        moved.stderr.contains("AKS refuses this migration"),
        "{}",
        moved.stderr
    );
    assert_eq!(
        read_state(&lab),
        before,
        "a dry run changed the lab's state"
    );
    assert_eq!(lab.down().code, Some(0));

    lab.up_ok(&["--model", "podsubnet", "--nodes", "2"]);
    let before = read_state(&lab);
    let refused = aksnet(&[&base[..], &["--apply", "--pod-cidr", "172.16.0.0/16"]].concat());
    assert_eq!(
        refused.code,
        Some(1),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stdout.contains("MG2")
            && refused
                .stdout
                .contains("Only kubenet and Azure CNI Node Subnet clusters can migrate to overlay"),
        "{}",
        refused.stdout
    );
    assert_eq!(
        read_state(&lab),
        before,
        "a refused migration changed the lab's state"
    );
    lab.down_clean();
}

/// `lab migrate --apply`: a kubenet lab of 2 nodes becomes an overlay lab node by node; the
/// matrix is printed after each node, every cross-node pair answers at the end, `lab check`
/// passes with Overlay's documented matrix and `lab down` leaves nothing.
#[test]
fn migrate_kubenet_to_overlay_node_by_node() {
    let lab = LabGuard::new("akslbmgapp-");
    lab.up_ok(&["--model", "kubenet", "--nodes", "2"]);
    let run = aksnet(&[
        "lab",
        "migrate",
        "--prefix",
        &lab.prefix,
        "--to",
        "overlay",
        "--apply",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    for node in ["akslbmgapp-node-0", "akslbmgapp-node-1"] {
        assert!(
            run.stdout.contains(&format!("== node {node}")),
            "{}",
            run.stdout
        );
    }
    assert_eq!(run.stdout.matches("CNI DEL ").count(), 4, "{}", run.stdout);
    assert_eq!(run.stdout.matches("CNI ADD ").count(), 4, "{}", run.stdout);
    assert_eq!(
        run.stdout.matches(" unreachable for ").count(),
        4,
        "{}",
        run.stdout
    );
    // The last matrix: every cross-node pair, all of them overlay, all answered.
    let last = run.stdout.rsplit("== node").next().unwrap_or_default();
    assert_eq!(last.matches("[overlay] ").count(), 16, "{last}");
    assert!(!last.contains("UNREACHABLE"), "{last}");
    lab.check_matches(&OVERLAY_EXPECTED);
    lab.down_clean();
}

/// From Node Subnet (`--pod-cidr` required): mid-way, the migrated node's pods reach the old
/// node's (SNATed to the node IP, which the fabric routes) but the old pods, VNet addresses,
/// cannot reach overlay pods; at the end every pair answers and `down` leaves nothing.
#[test]
fn migrate_nodesubnet_to_overlay_shows_the_one_way_middle() {
    let lab = LabGuard::new("akslbmgns-");
    lab.up_ok(&[
        "--model",
        "nodesubnet",
        "--nodes",
        "2",
        "--pods-per-node",
        "1",
    ]);
    let run = aksnet(&[
        "lab",
        "migrate",
        "--prefix",
        &lab.prefix,
        "--to",
        "overlay",
        "--apply",
        "--pod-cidr",
        "172.16.0.0/16",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.matches("node leave ").count(),
        2,
        "{}",
        run.stdout
    );
    let (middle, last) = run
        .stdout
        .split_once("== node akslbmgns-node-1")
        .unwrap_or_else(|| panic!("no second node step: {}", run.stdout));
    let line = |text: &str, from: &str, to: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(from) && l.contains(&format!("{to} [")))
            .unwrap_or_else(|| panic!("no row {from} → {to}: {text}"))
            .to_string()
    };
    let (p0, p1) = ("akslbmgns-node-0-pod-0", "akslbmgns-node-1-pod-0");
    assert!(
        line(middle, p0, p1).contains("ok (sees 10.224.0."),
        "{middle}"
    );
    assert!(line(middle, p1, p0).contains("UNREACHABLE"), "{middle}");
    assert!(line(last, p0, p1).contains("ok (sees 172.16."), "{last}");
    assert!(line(last, p1, p0).contains("ok (sees 172.16."), "{last}");
    lab.down_clean();
}
