//! NetworkPolicy benchmark (docs/benchmarks.md "NetworkPolicy"): 1,000 policies, 5,000 pods
//! in the cluster, 250 on this node. Measures the rule count against the number of pods;
//! between two pods of a node iperf3 throughput and TCP connect latency with no table, with
//! conntrack only, and with the 1,000 policies (interleaved rounds); then, in the node's
//! namespace with the agent's own controller and nft, the full compile + apply, one pod
//! added and one relabelled (the incremental path: one small nft transaction) and one policy
//! replaced. Root; creates namespaces `aksnp*` and removes them.
//!
//!     cargo run --release -p aksnet-agent --example policy_bench

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use aksnet_agent::policy_controller::{Applied, PolicyController, PolicySettings};
use aksnet_agent::policy_source::ClusterView;
use aksnet_nft::elements::element_batch;
use aksnet_nft::filter::replace_script;
use aksnet_nft::nfnetlink::send_batch;
use aksnet_nft::NftCommand;
use aksnet_policy::compile::{compile, rule_count, NodeScope};
use aksnet_policy::incremental::{pod_changes, Compiled, PodChange};
use aksnet_policy::model::{
    Cluster, NamedPort, Namespace, NamespaceScope, Peer, Pod, Policy, PortMatch, PortSpec,
    Protocol, Rule, Selector,
};

const NODE_NS: &str = "aksnpn";
const POD_A: &str = "aksnpa";
const POD_B: &str = "aksnpb";
const A_IP: &str = "10.244.0.2";
const B_IP: &str = "10.244.0.3";
const TABLE: &str = "aksnppol";

fn labels(p: &[(&str, String)]) -> BTreeMap<String, String> {
    p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn sel(p: &[(&str, String)]) -> Selector {
    Selector {
        match_labels: labels(p),
        match_expressions: vec![],
    }
}

/// 50 namespaces, `pods` pods over pods/250 nodes (250 per node, node-0 is ours).
fn cluster(pods: usize) -> Cluster {
    let namespaces = (0..50)
        .map(|i| Namespace {
            name: format!("ns-{i}"),
            labels: labels(&[("team", format!("t{}", i % 10))]),
        })
        .collect();
    let pods = (0..pods)
        .map(|i| {
            let (node, host) = (i / 250, i % 250 + 2);
            Pod {
                namespace: format!("ns-{}", i % 50),
                name: format!("pod-{i}"),
                labels: labels(&[
                    ("app", format!("app-{}", i % 100)),
                    ("tier", ["web", "api", "db"][i % 3].to_string()),
                ]),
                ips: vec![format!("10.{}.{}.{host}", 244 + node / 250, node % 250)
                    .parse()
                    .expect("ip")],
                ports: vec![NamedPort {
                    name: Some("http".into()),
                    port: 8080,
                    protocol: Protocol::Tcp,
                }],
                node: Some(format!("node-{node}")),
            }
        })
        .collect();
    Cluster { namespaces, pods }
}

fn policies(n: usize) -> Vec<Policy> {
    (0..n)
        .map(|j| {
            let ingress = vec![Rule {
                peers: Some(vec![
                    Peer::Pods {
                        namespaces: NamespaceScope::Matching(sel(&[(
                            "team",
                            format!("t{}", j % 10),
                        )])),
                        pods: sel(&[("app", format!("app-{}", (j + 1) % 100))]),
                    },
                    Peer::Pods {
                        namespaces: NamespaceScope::Own(format!("ns-{}", j % 50)),
                        pods: sel(&[("tier", "web".into())]),
                    },
                    Peer::IpBlock {
                        cidr: "10.0.0.0/8".parse().expect("net"),
                        except: vec!["10.99.0.0/16".parse().expect("net")],
                    },
                ]),
                ports: Some(vec![
                    PortSpec {
                        protocol: Protocol::Tcp,
                        port: PortMatch::Range(8080, 8080),
                    },
                    PortSpec {
                        protocol: Protocol::Tcp,
                        port: PortMatch::Named("http".into()),
                    },
                ]),
            }];
            let egress = (j % 3 == 0).then(|| {
                vec![
                    Rule {
                        peers: Some(vec![Peer::Pods {
                            namespaces: NamespaceScope::Matching(Selector::everything()),
                            pods: Selector::everything(),
                        }]),
                        ports: Some(vec![PortSpec {
                            protocol: Protocol::Udp,
                            port: PortMatch::Range(53, 53),
                        }]),
                    },
                    Rule {
                        peers: Some(vec![Peer::Pods {
                            namespaces: NamespaceScope::Own(format!("ns-{}", j % 50)),
                            pods: sel(&[("app", format!("app-{}", (j + 7) % 100))]),
                        }]),
                        ports: None,
                    },
                ]
            });
            Policy {
                namespace: format!("ns-{}", j % 50),
                name: format!("pol-{j}"),
                pod_selector: sel(&[("app", format!("app-{}", j % 100))]),
                ingress: Some(ingress),
                egress,
            }
        })
        .collect()
}

/// The two benchmark pods (node-0) and the policies that isolate and admit them.
fn bench_pods(c: &mut Cluster, pols: &mut Vec<Policy>) {
    for (name, ip) in [("bench-a", A_IP), ("bench-b", B_IP)] {
        c.pods.retain(|p| p.ips[0].to_string() != ip);
        c.pods.push(Pod {
            namespace: "ns-0".into(),
            name: name.into(),
            labels: labels(&[("app", "app-0".into()), ("bench", name.into())]),
            ips: vec![ip.parse().expect("ip")],
            ports: vec![],
            node: Some("node-0".into()),
        });
    }
    pols.push(Policy {
        namespace: "ns-0".into(),
        name: "bench-allow".into(),
        pod_selector: sel(&[("bench", "bench-b".into())]),
        ingress: Some(vec![Rule {
            peers: Some(vec![Peer::Pods {
                namespaces: NamespaceScope::Own("ns-0".into()),
                pods: sel(&[("bench", "bench-a".into())]),
            }]),
            ports: None,
        }]),
        egress: None,
    });
    pols.push(Policy {
        namespace: "ns-0".into(),
        name: "bench-egress".into(),
        pod_selector: sel(&[("bench", "bench-a".into())]),
        ingress: None,
        egress: Some(vec![Rule {
            peers: Some(vec![Peer::IpBlock {
                cidr: format!("{B_IP}/32").parse().expect("net"),
                except: vec![],
            }]),
            ports: None,
        }]),
    });
}

fn sh(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{args:?} failed");
}

fn ipn(ns: &str, a: &str) {
    let mut v = vec!["ip", "-n", ns];
    v.extend(a.split_whitespace());
    sh(&v);
}

struct Topology;

impl Topology {
    /// A node with two routed pods (the nodesubnet datapath: /32 host routes, proxy ARP).
    fn build() -> Topology {
        for ns in [NODE_NS, POD_A, POD_B] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            sh(&["ip", "netns", "add", ns]);
            ipn(ns, "link set lo up");
        }
        sh(&[
            "ip",
            "netns",
            "exec",
            NODE_NS,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        for (pod, ip, host) in [(POD_A, A_IP, "aksnpva"), (POD_B, B_IP, "aksnpvb")] {
            ipn(
                NODE_NS,
                &format!("link add {host} type veth peer name eth0 netns {pod}"),
            );
            ipn(NODE_NS, &format!("link set {host} up"));
            sh(&[
                "ip",
                "netns",
                "exec",
                NODE_NS,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{host}.proxy_arp=1"),
            ]);
            ipn(NODE_NS, &format!("route add {ip}/32 dev {host}"));
            ipn(pod, "link set eth0 up");
            ipn(pod, &format!("addr add {ip}/32 dev eth0"));
            // On-link default: the node answers ARP for the other pod by proxy ARP.
            ipn(pod, "route add default dev eth0");
        }
        Topology
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [POD_A, POD_B, NODE_NS] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn iperf3() -> f64 {
    let mut server = Command::new("ip")
        .args(["netns", "exec", POD_B, "iperf3", "-s", "-1", "-p", "5201"])
        .stdout(Stdio::null())
        .spawn()
        .expect("iperf3 server (Debian iperf3)");
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("ip")
        .args([
            "netns", "exec", POD_A, "iperf3", "-c", B_IP, "-p", "5201", "-t", "4", "-J",
        ])
        .output()
        .expect("iperf3 client");
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 json");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9
}

const CONNECT: &str = r#"
import socket, sys, time
srv = sys.argv[1]; n = int(sys.argv[2]); lat = []; fails = 0
for i in range(n):
    t = time.perf_counter()
    try:
        s = socket.create_connection((srv, 8080), timeout=1); lat.append(time.perf_counter() - t); s.close()
    except OSError:
        fails += 1
lat.sort(); print(lat[len(lat)//2]*1e6, lat[int(len(lat)*0.99)]*1e6, fails)
"#;

const LISTEN: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8080)); s.listen(512)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"#;

fn connect_latency() -> (f64, f64) {
    let mut l = Command::new("ip")
        .args(["netns", "exec", POD_B, "python3", "-c", LISTEN])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    if let Some(o) = l.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(o), &mut line);
    }
    let out = Command::new("ip")
        .args([
            "netns", "exec", POD_A, "python3", "-c", CONNECT, B_IP, "5000",
        ])
        .output()
        .expect("python3");
    let _ = l.kill();
    let _ = l.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.get(2).copied().unwrap_or(0.0) > 0.0 {
        eprintln!("connects that timed out (1 s): {}", v[2]);
    }
    (
        v.first().copied().unwrap_or(0.0),
        v.get(1).copied().unwrap_or(0.0),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn scope(ranges: &[IpNet]) -> NodeScope<'_> {
    NodeScope {
        table: TABLE,
        node: "node-0",
        pod_ranges: ranges,
    }
}

fn rule_counts(ranges: &[IpNet]) {
    println!("## rule count against pods (1,000 policies, node-0 holds 250 of every 5,000)");
    println!("| cluster pods | local pods | rules | set elements | verdict map entries |");
    println!("|---|---|---|---|---|");
    for n in [1250usize, 2500, 5000] {
        let mut c = cluster(n);
        let mut p = policies(1000);
        bench_pods(&mut c, &mut p);
        let t = compile(&c, &p, &scope(ranges)).expect("compile");
        let local = c
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some("node-0"))
            .count();
        let elems: usize = t.sets.iter().map(|s| s.elements.len()).sum();
        let maps: usize = t.maps.iter().map(|m| m.elements.len()).sum();
        println!("| {n} | {local} | {} | {elems} | {maps} |", rule_count(&t));
    }
}

/// A pod of node-0 added (a new address, isolated by existing policies).
fn added(c: &Cluster, k: usize) -> Cluster {
    let mut c2 = c.clone();
    c2.pods.push(Pod {
        namespace: "ns-1".into(),
        name: format!("new-{k}"),
        labels: labels(&[("app", "app-1".into())]),
        ips: vec![format!("10.244.0.{}", 252 + k % 3).parse().expect("ip")],
        ports: vec![],
        node: Some("node-0".into()),
    });
    c2
}

/// Pod `k` relabelled (its peer-set memberships and, on node-0, its isolation change).
fn relabelled(c: &Cluster, k: usize) -> Cluster {
    let mut c2 = c.clone();
    c2.pods[k * 7].labels.insert("app".into(), "app-99".into());
    c2
}

/// Medians (ms) of the parts of one pod change: finding it in the view (policies,
/// namespaces and pods compared with the last view), the incremental compiler and its
/// element batch, and the kernel transaction (the batch sent over netlink; the table is the
/// controller's, in the node's namespace; each change is sent back afterwards).
struct Parts {
    find: f64,
    compile: f64,
    kernel: f64,
    /// CPU time of this thread (user + kernel) in the same three parts: what the change
    /// costs whatever the machine's load.
    cpu: [f64; 3],
    lines: usize,
}

/// This thread's CPU time (user + system) in ms.
#[allow(unsafe_code)]
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn pod_change_parts(c: &Cluster, p: &[Policy], ranges: &[IpNet], runs: usize) -> Parts {
    let mut comp = Compiled::new(c.clone(), p.to_vec(), &scope(ranges)).expect("compile");
    let (mut find, mut compile, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu: [Vec<f64>; 3] = Default::default();
    let mut lines = 0;
    for k in 0..runs {
        let view = ClusterView {
            cluster: added(c, k),
            policies: p.to_vec(),
        };
        let (t, c0) = (Instant::now(), cpu_ms());
        let same = comp.policies() == view.policies.as_slice()
            && comp.cluster().namespaces == view.cluster.namespaces;
        let changes = pod_changes(&comp, &view.cluster.pods).expect("changes");
        find.push(ms(t.elapsed()));
        cpu[0].push(cpu_ms() - c0);
        assert!(same);
        let (t, c0) = (Instant::now(), cpu_ms());
        for ch in changes {
            comp.apply_pod(ch).expect("incremental");
        }
        let (old, new) = comp.take_delta().expect("delta");
        let batch = element_batch(&old, &new)
            .expect("batch")
            .expect("elements only");
        compile.push(ms(t.elapsed()));
        cpu[1].push(cpu_ms() - c0);
        lines = batch.len();
        let (t, c0) = (Instant::now(), cpu_ms());
        assert!(
            send_batch("bench", &batch).expect("netlink"),
            "batch too large"
        );
        kernel.push(ms(t.elapsed()));
        cpu[2].push(cpu_ms() - c0);
        let back = element_batch(&new, &old)
            .expect("batch")
            .expect("elements only");
        assert!(send_batch("bench back", &back).expect("netlink"));
        for ch in pod_changes(&comp, &c.pods).expect("changes") {
            comp.apply_pod(ch).expect("back");
        }
        comp.clear_delta();
    }
    Parts {
        find: median(find),
        compile: median(compile),
        kernel: median(kernel),
        cpu: cpu.map(median),
        lines,
    }
}

/// One change applied through the controller (the agent's code and real nft, in the node's
/// namespace), then undone; the median of `runs` of the change.
fn timed(
    ctl: &mut PolicyController<NftCommand>,
    base: &ClusterView,
    change: impl Fn(usize) -> ClusterView,
    runs: usize,
) -> (f64, Applied) {
    let mut times = Vec::new();
    let mut how = Applied::Unchanged;
    for k in 0..runs {
        let r = ctl.apply_view(&change(k)).expect("apply");
        times.push(ms(r.elapsed));
        how = r.applied;
        ctl.apply_view(base).expect("back");
    }
    (median(times), how)
}

/// The same pod added, given to the controller as a pod event (what a watch delivers)
/// instead of a whole view, then removed the same way; the median of `runs`.
fn timed_events(
    ctl: &mut PolicyController<NftCommand>,
    c: &Cluster,
    runs: usize,
) -> (f64, Applied) {
    let mut times = Vec::new();
    let mut how = Applied::Unchanged;
    for k in 0..runs {
        let pod = added(c, k).pods.pop().expect("the added pod");
        let key = pod.key();
        let r = ctl
            .apply_pod_events(vec![PodChange::Upsert(pod)])
            .expect("apply")
            .expect("incremental");
        times.push(ms(r.elapsed));
        how = r.applied;
        ctl.apply_pod_events(vec![PodChange::Remove(key)])
            .expect("back")
            .expect("incremental");
    }
    (median(times), how)
}

/// Enters the node's namespace: nft then runs there exactly as the agent runs it.
fn enter_node_ns() {
    let f = std::fs::File::open(format!("/run/netns/{NODE_NS}")).expect("netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

fn churn(ranges: &[IpNet], c: &Cluster, p: &[Policy]) {
    let base = ClusterView {
        cluster: c.clone(),
        policies: p.to_vec(),
    };
    let settings = PolicySettings {
        table: TABLE.into(),
        node: "node-0".into(),
        pod_ranges: ranges.to_vec(),
    };
    let mut ctl = PolicyController::new(NftCommand::default(), settings);
    let t0 = Instant::now();
    let desired = ctl.desired(&base).expect("compile");
    let compile_ms = ms(t0.elapsed());
    let r = ctl.apply_view(&base).expect("apply");
    println!(
        "\n## full compile + apply: {:.1} ms ({compile_ms:.1} ms of it compile), {} rules, applied {:?}",
        ms(r.elapsed),
        rule_count(&desired),
        r.applied
    );
    let parts = pod_change_parts(c, p, ranges, 50);
    println!(
        "one pod added, by part (medians of 50, wall / CPU ms): found in the view {:.2} / {:.2}, incremental compiler + element batch {:.2} / {:.2} ({} commands), kernel transaction (netlink) {:.2} / {:.2}",
        parts.find, parts.cpu[0], parts.compile, parts.cpu[1], parts.lines, parts.kernel, parts.cpu[2]
    );
    let view = |c: Cluster| ClusterView {
        cluster: c,
        policies: p.to_vec(),
    };
    let (add, how) = timed(&mut ctl, &base, |k| view(added(c, k)), 50);
    println!("one local pod added -> enforced: median {add:.2} ms of 50 ({how:?})");
    let (ev, how) = timed_events(&mut ctl, c, 50);
    println!("one local pod added as a pod event -> enforced: median {ev:.2} ms of 50 ({how:?})");
    let (rel, how) = timed(&mut ctl, &base, |k| view(relabelled(c, k)), 50);
    println!("one pod relabelled -> enforced: median {rel:.2} ms of 50 ({how:?})");
    let (pol, how) = timed(
        &mut ctl,
        &base,
        |k| {
            let mut p2 = p.to_vec();
            p2[k * 13].name = format!("renamed-{k}");
            ClusterView {
                cluster: c.clone(),
                policies: p2,
            }
        },
        10,
    );
    println!(
        "one policy replaced (full compile + diff) -> enforced: median {pol:.1} ms of 10 ({how:?})"
    );
}

/// The connect latency with conntrack but no policy: the table every node has anyway (the
/// agent's SNAT table and kube-proxy use conntrack), so the policy's own cost shows apart.
const CT_ONLY: &str = "table inet aksnpct {\n chain f {\n  type filter hook forward priority 0; policy accept;\n  ct state established,related accept\n }\n}\n";

fn nft_in_node(script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", NODE_NS, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    assert!(child.wait().expect("nft").success(), "nft -f failed");
}

/// Throughput, connect p50 and p99 of each round.
type Samples = (Vec<f64>, Vec<f64>, Vec<f64>);

fn datapath(ranges: &[IpNet], c: &Cluster, p: &[Policy]) {
    let table = replace_script(&compile(c, p, &scope(ranges)).expect("compile")).expect("render");
    let drop_policy = format!("delete table inet {TABLE}\n");
    let mut rows: BTreeMap<&str, Samples> = BTreeMap::new();
    // Interleaved rounds: the VM's load drifts, each round sees all three alike.
    for _ in 0..3 {
        for (name, setup, undo) in [
            ("a: no table", String::new(), String::new()),
            (
                "b: conntrack only",
                CT_ONLY.to_string(),
                "delete table inet aksnpct\n".to_string(),
            ),
            ("c: 1,000 policies", table.clone(), drop_policy.clone()),
        ] {
            if !setup.is_empty() {
                nft_in_node(&setup);
            }
            let gbps = iperf3();
            let (p50, p99) = connect_latency();
            let row = rows.entry(name).or_default();
            row.0.push(gbps);
            row.1.push(p50);
            row.2.push(p99);
            if !undo.is_empty() {
                nft_in_node(&undo);
            }
        }
    }
    println!("\n## pod to pod on one node: medians of 3 interleaved rounds (each: iperf3 4 s, 5,000 connects)");
    println!("| | iperf3 Gbit/s | TCP connect p50 us | p99 us |");
    println!("|---|---|---|---|");
    for (name, (g, p50, p99)) in rows {
        println!(
            "| {name} | {:.2} | {:.1} | {:.1} |",
            median(g),
            median(p50),
            median(p99)
        );
    }
}

fn main() {
    // `--churn-only`: only the compile and churn figures (no rule counts, no datapath).
    let churn_only = std::env::args().any(|a| a == "--churn-only");
    let ranges: Vec<IpNet> = vec!["10.244.0.0/24".parse().expect("net")];
    if !churn_only {
        rule_counts(&ranges);
    }
    let _topo = Topology::build();
    let mut c = cluster(5000);
    let mut p = policies(1000);
    bench_pods(&mut c, &mut p);
    if !churn_only {
        datapath(&ranges, &c, &p);
    }
    enter_node_ns();
    churn(&ranges, &c, &p);
}
