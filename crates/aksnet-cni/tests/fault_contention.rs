//! Contention (issue 7, item 5): 250 ADDs from 32 concurrent plugin
//! processes against one node pool (nodesubnet, maxPods 250; podsubnet
//! static and overlay at maxPods 250), then 250 DELs the same way.
//!
//! Asserted: every ADD succeeds, the 250 addresses are distinct and all from
//! the pool, each pod holds its address, the node holds one /32 per pod; the
//! 251st ADD is refused with "no address" (code 100) and STATUS says 50; after
//! the DELs nothing is left (state, links, routes).
//!
//! Measured and printed, not asserted (timing on a shared 2-core machine is
//! not a correctness property): the share of the burst's wall time during
//! which some process held the IPAM lock exclusively (sampled by a monitor
//! thread that tries a shared flock every 200 µs). Azure's plugin holds its
//! store lock across all netlink work, so its duty cycle under load is ~100 %
//! and callers queue (docs/azure.md#node-wide-lock); a small duty cycle shows no
//! ADD waits on another's netlink work (docs/architecture.md#quality-bars). Also printed:
//! per-ADD latency serial vs under contention and the effective parallelism
//! (sum of latencies / wall). Recorded in docs/benchmarks.md.

#[path = "support/fault.rs"]
mod fault;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aksnet_netlink::Handle;
use fault::{Call, NamedNs, Network, Node, Outcome};
use ipnet::IpNet;

const PODS: usize = 250;
const PROCESSES: usize = 32;

struct Pods {
    ns: Vec<NamedNs>,
}

fn cid(i: usize) -> String {
    format!("aksnt-cont-{i}")
}

fn pod_name(i: usize) -> String {
    format!("cont{i}")
}

/// Runs `call(i)` for every pod from `PROCESSES` threads, each running one
/// plugin process at a time: at most 32 plugin processes at once.
fn burst(node: &Node, calls: &(dyn Fn(usize) -> Call + Sync)) -> (Vec<Outcome>, Duration) {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..PODS).map(|_| None).collect());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..PROCESSES {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= PODS {
                    break;
                }
                let out = node.run(&calls(i));
                results.lock().expect("results lock")[i] = Some(out);
            });
        }
    });
    let wall = start.elapsed();
    let outs = results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|o| o.expect("every pod ran"))
        .collect();
    (outs, wall)
}

/// Samples whether the IPAM lock is held exclusively (a shared try-lock fails).
struct LockMonitor {
    stop: AtomicBool,
    samples: AtomicUsize,
    busy: AtomicUsize,
}

impl LockMonitor {
    fn new() -> Self {
        LockMonitor {
            stop: AtomicBool::new(false),
            samples: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn watch(&self, lock: &File) {
        while !self.stop.load(Ordering::SeqCst) {
            match lock.try_lock_shared() {
                Ok(()) => {
                    let _ = lock.unlock();
                }
                Err(TryLockError::WouldBlock) => {
                    self.busy.fetch_add(1, Ordering::SeqCst);
                }
                Err(TryLockError::Error(e)) => panic!("probing the IPAM lock: {e}"),
            }
            self.samples.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn duty(&self) -> f64 {
        self.busy.load(Ordering::SeqCst) as f64 / self.samples.load(Ordering::SeqCst).max(1) as f64
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(outs: &[Outcome]) -> (f64, f64, f64) {
    let mut l: Vec<f64> = outs.iter().map(|o| ms(o.elapsed)).collect();
    l.sort_by(f64::total_cmp);
    let p99 = l[((l.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
    (l[l.len() / 2], p99, l.iter().sum())
}

#[test]
fn two_hundred_fifty_adds_from_32_processes_share_one_node_pool() {
    contention_suite("ctn", Network::nodesubnet("1.1.0", PODS as u32));
}

/// The same for a static-block Pod Subnet node at maxPods 250 (16 /28 blocks).
#[test]
fn two_hundred_fifty_adds_from_32_processes_share_one_pod_subnet_pool() {
    contention_suite("ctq", Network::podsubnet("1.1.0", PODS as u32));
}

/// The same for an Overlay node at maxPods 250 (its whole /24 but .0, .251-.255).
#[test]
fn two_hundred_fifty_adds_from_32_processes_share_one_overlay_pool() {
    contention_suite("cto", Network::overlay("1.1.0", PODS as u32));
}

/// One burst at a time: two bursts of 250 pods at once would measure each
/// other (the printed duty cycle and latencies go to docs/benchmarks.md) and
/// double the kernel's veth teardown load behind the asynchronous DELs.
static ONE_BURST: Mutex<()> = Mutex::new(());

fn contention_suite(tag: &str, net: Network) {
    let _one = ONE_BURST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let node = Node::create(tag);
    let pods = Pods {
        ns: (0..PODS)
            .map(|i| NamedNs::create(&format!("aksnt{tag}{i}")))
            .collect(),
    };
    let add = |i: usize| {
        Call::attachment(
            "ADD",
            &net.conf,
            &cid(i),
            Some(&pods.ns[i].path()),
            &pod_name(i),
        )
    };
    let del = |i: usize| {
        Call::attachment(
            "DEL",
            &net.conf,
            &cid(i),
            Some(&pods.ns[i].path()),
            &pod_name(i),
        )
    };

    // Serial baseline: one ADD and DEL at a time, nothing else running.
    let mut serial = Vec::new();
    for i in 0..10 {
        serial.push(node.run(&add(i)));
        node.run(&del(i)).expect_ok("serial DEL");
    }
    for o in &serial {
        o.expect_ok("serial ADD");
    }
    let (serial_med, _, _) = stats(&serial);
    assert_eq!(net.held(), 0);

    // The burst, with the lock monitor running.
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(net.data_dir.join(format!("{}.lock", net.name)))
        .expect("open IPAM lock file");
    let monitor = LockMonitor::new();
    let (outs, wall) = std::thread::scope(|s| {
        s.spawn(|| monitor.watch(&lock));
        let r = burst(&node, &add);
        monitor.stop.store(true, Ordering::SeqCst);
        r
    });
    let duty = monitor.duty();

    let mut addrs = BTreeSet::new();
    for (i, o) in outs.iter().enumerate() {
        o.expect_ok(&format!("ADD of pod {i}"));
        let res = o.json();
        let ip: IpNet = res["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("pod {i}: no address in {res}"));
        assert!(net.subnet.contains(&match ip.addr() {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => panic!("pod {i}: IPv6 address {a} from an IPv4 pool"),
        }));
        assert!(addrs.insert(ip.addr()), "address {ip} handed out twice");
        // The pod really holds it.
        let mut h = Handle::in_netns(&pods.ns[i].netns).expect("netlink in pod");
        let eth0 = h.link_by_name("eth0").expect("list").expect("eth0 in pod");
        assert!(
            h.list_addrs(eth0.index).expect("addrs").contains(&ip),
            "pod {i} lacks {ip}"
        );
    }
    assert_eq!(addrs.len(), PODS);
    assert_eq!(net.held(), PODS);
    assert_eq!(
        node.host_routes_in(net.subnet).len(),
        PODS,
        "one /32 per pod on the node"
    );

    // The pool is full: one more ADD is refused, STATUS reports it.
    let extra = NamedNs::create(&format!("aksnt{tag}x"));
    let out = node.run(&Call::attachment(
        "ADD",
        &net.conf,
        "aksnt-cont-extra",
        Some(&extra.path()),
        "extra",
    ));
    assert!(!out.ok(), "a 251st ADD succeeded on a 250-address pool");
    assert_eq!(
        out.json()["code"],
        100,
        "no-address error code: {}",
        out.stdout
    );
    let st = node.run(&Call::new("STATUS", &net.conf));
    assert_eq!(
        st.json()["code"],
        50,
        "STATUS on a full pool: {}",
        st.stdout
    );
    assert_eq!(
        extra.links(),
        vec!["lo".to_string()],
        "the refused ADD left a link in its pod"
    );

    let (add_med, add_p99, add_sum) = stats(&outs);
    let (dels, del_wall) = burst(&node, &del);
    for (i, o) in dels.iter().enumerate() {
        o.expect_ok(&format!("DEL of pod {i}"));
    }
    let (del_med, del_p99, del_sum) = stats(&dels);
    assert_eq!(net.held(), 0, "addresses left after DEL: {:?}", net.state());
    assert_eq!(
        node.pod_links_after_async_delete(15),
        Vec::<String>::new(),
        "host veths left 15 s after DEL"
    );
    assert_eq!(
        node.host_routes_in(net.subnet),
        Vec::<String>::new(),
        "host routes left after DEL"
    );
    for p in &pods.ns {
        assert_eq!(
            p.links(),
            vec!["lo".to_string()],
            "{} not empty after DEL",
            p.name
        );
    }

    eprintln!(
        "contention: {PODS} ADDs from {PROCESSES} processes: wall {:.0} ms; ADD median {add_med:.1} ms, \
         p99 {add_p99:.1} ms (serial median {serial_med:.1} ms); effective parallelism {:.1}; \
         IPAM lock held exclusively {:.1} % of the burst; DEL wall {:.0} ms, median {del_med:.1} ms, \
         p99 {del_p99:.1} ms, effective parallelism {:.1}",
        ms(wall),
        add_sum / ms(wall),
        duty * 100.0,
        ms(del_wall),
        del_sum / ms(del_wall),
    );
}
