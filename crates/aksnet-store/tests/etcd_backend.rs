//! The etcd backend against a REAL etcd server (Debian `etcd-server`) on 127.0.0.1,
//! started by this test on free random client and peer ports with a temporary data
//! directory, and killed and removed by a Drop guard even when a test fails.
//!
//! - the `Store` mapping (absent/mod-revision compares, revisions, prefixes);
//! - the same reservation behaviour as the embedded backend, through
//!   `aksnet_store::reservation` unchanged (issue 3: 8 nodes fit a /24 at maxPods 30,
//!   the 9th fails with InsufficientSubnetSize and changes nothing; rejoin is
//!   idempotent; leave then rejoin);
//! - 16 OS processes joining one /24 at once: exactly 8 succeed, no address twice;
//! - the same through the real `aksnet node join/list/leave --store etcd://…` CLI;
//! - etcd down or silent: a clear error naming the endpoint, within the timeout;
//! - join latency against etcd and against the embedded store (printed).
//!
//! Every test uses its own key prefix, so they share one server. The test binary is
//! its own helper process: with `AKSNET_ETCD_CHILD_NODE` set it joins that node.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aksnet_core::azure::{MaxPods, NodeSubnet};

#[path = "etcd_support/mod.rs"]
#[allow(dead_code)] // this suite runs its own single member; etcd_faults uses the rest
mod support;
use aksnet_store::etcd::{EtcdConfig, EtcdStore};
use aksnet_store::reservation::{get_node, leave};
use aksnet_store::{
    join, list_nodes, Compare, EmbeddedStore, JoinOutcome, JoinRequest, NodeReservation, Op, Store,
    StoreError,
};

const CHILD_NODE: &str = "AKSNET_ETCD_CHILD_NODE";
const CHILD_URL: &str = "AKSNET_ETCD_CHILD_URL";
const CHILD_START: &str = "AKSNET_ETCD_CHILD_START";
const PROCESSES: usize = 16;

type TestResult = Result<(), String>;

/// A store counting transactions whose compares failed (lost races), so the
/// multi-process test shows the compare-and-swap retry path was exercised.
struct Counting<'a> {
    inner: &'a EtcdStore,
    lost: std::cell::Cell<u32>,
}

impl Store for Counting<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, aksnet_store::Revision)>, StoreError> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<aksnet_store::KeyValue>, StoreError> {
        self.inner.list(prefix)
    }
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<bool, StoreError> {
        let ok = self.inner.txn(compares, ops)?;
        if !ok {
            self.lost.set(self.lost.get() + 1);
        }
        Ok(ok)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A single-member etcd cluster on loopback, removed on drop.
struct EtcdServer {
    child: Child,
    client_port: u16,
    dir: tempfile::TempDir,
}

impl EtcdServer {
    fn start() -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-etcd1-", support::PREFIX))
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let name = format!("{}-{}", support::PREFIX, std::process::id());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log"))
            .map_err(|e| format!("create etcd log: {e}"))?;
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&name)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("{name}={peer}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    "etcd is not installed: these tests need a real etcd server \
                     (Debian package etcd-server; scripts/install-deps.sh installs it)"
                        .to_string()
                } else {
                    format!("spawn etcd: {e}")
                }
            })?;
        let mut server = Self {
            child,
            client_port,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut cfg =
            EtcdConfig::from_url(&self.url("/aksnt-ready/")).map_err(|e| e.to_string())?;
        cfg.attempt_timeout = Duration::from_millis(500);
        cfg.deadline = Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("etcd exited with {status}: {}", self.log_tail()));
            }
            let last = match EtcdStore::connect(cfg.clone()) {
                Ok(s) => match s.get("probe") {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd not ready after 20s ({last}): {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// A store URL with its own key prefix.
    fn url(&self, prefix: &str) -> String {
        format!("etcd://127.0.0.1:{}{prefix}", self.client_port)
    }

    fn store(&self, prefix: &str) -> Result<EtcdStore, String> {
        EtcdStore::open(&self.url(prefix)).map_err(|e| e.to_string())
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The TempDir removes the data directory after this.
    }
}

/// A loopback port in 23000-23999 that nothing listens on now (support::free_port).
fn free_port() -> Result<u16, String> {
    support::free_port()
}

fn request(node: &str, cidr: &str, max_pods: u32) -> Result<JoinRequest, String> {
    Ok(JoinRequest {
        node: node.to_string(),
        subnet_name: "aks-subnet".to_string(),
        subnet: NodeSubnet::new(cidr.parse().map_err(|e| format!("{cidr}: {e}"))?)
            .map_err(|e| e.to_string())?,
        max_pods: MaxPods::new(max_pods).map_err(|e| e.to_string())?,
        in_use: Default::default(),
        lease: None,
    })
}

fn check_disjoint(nodes: &[NodeReservation]) -> Result<usize, String> {
    let mut holder = BTreeMap::new();
    for n in nodes {
        for ip in n.addresses() {
            if let Some(prev) = holder.insert(ip, n.node.clone()) {
                return Err(format!("{ip} is held by both {prev} and {}", n.node));
            }
        }
    }
    Ok(holder.len())
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// The error of an operation that must fail.
fn refused<T: std::fmt::Debug, E>(r: Result<T, E>, what: &str) -> Result<E, String> {
    match r {
        Ok(v) => Err(format!("{what} succeeded: {v:?}")),
        Err(e) => Ok(e),
    }
}

fn put(k: &str, v: &[u8]) -> Op {
    Op::Put {
        key: k.to_string(),
        value: v.to_vec(),
    }
}

fn s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The trait's semantics on etcd: the same script as the embedded backend's unit test.
fn store_semantics(etcd: &EtcdServer) -> TestResult {
    let st = etcd.store("/aksnt-semantics/")?;
    ensure(st.get("a").map_err(s)?.is_none(), || {
        "a exists before any write".into()
    })?;
    ensure(
        st.txn(
            &[Compare::Absent("a".into())],
            &[put("a", b"1"), put("b", b"x")],
        )
        .map_err(s)?,
        || "first create-if-absent failed".into(),
    )?;
    ensure(
        !st.txn(&[Compare::Absent("a".into())], &[put("a", b"2")])
            .map_err(s)?,
        || "create-if-absent of an existing key succeeded".into(),
    )?;
    let (v, rev) = st.get("a").map_err(s)?.ok_or("a vanished")?;
    ensure(v == b"1", || format!("a = {v:?}"))?;
    ensure(
        !st.txn(
            &[Compare::ModRevision("a".into(), rev + 1)],
            &[put("a", b"3")],
        )
        .map_err(s)?,
        || "a stale mod revision compare held".into(),
    )?;
    ensure(
        !st.txn(&[Compare::ModRevision("nope".into(), 0)], &[put("a", b"3")])
            .map_err(s)?,
        || "mod revision 0 held for an absent key".into(),
    )?;
    ensure(
        st.txn(&[Compare::ModRevision("a".into(), rev)], &[put("a", b"2")])
            .map_err(s)?,
        || "the current mod revision compare failed".into(),
    )?;
    let kvs = st.list("a").map_err(s)?;
    ensure(kvs.len() == 1 && kvs[0].key == "a", || format!("{kvs:?}"))?;
    ensure(
        kvs[0].create_revision == rev && kvs[0].mod_revision == rev + 1,
        || format!("revisions {kvs:?}, first write at {rev}"),
    )?;
    // One txn is one revision, as in kv::State: both keys of the first txn share it.
    let all = st.list("").map_err(s)?;
    let keys: Vec<&str> = all.iter().map(|k| k.key.as_str()).collect();
    ensure(keys == ["a", "b"], || format!("list \"\" gave {keys:?}"))?;
    ensure(all[1].mod_revision == rev, || format!("{all:?}"))?;
    // Non-UTF-8 values, delete, deleting an absent key.
    ensure(
        st.txn(
            &[],
            &[
                Op::Delete { key: "a".into() },
                Op::Delete {
                    key: "never".into(),
                },
                put("raw", &[0xff, 0, 0x10]),
            ],
        )
        .map_err(s)?,
        || "unconditional txn failed".into(),
    )?;
    ensure(st.get("a").map_err(s)?.is_none(), || "a not deleted".into())?;
    let raw = st.get("raw").map_err(s)?.map(|(v, _)| v);
    ensure(raw == Some(vec![0xff, 0, 0x10]), || {
        format!("raw = {raw:?}")
    })?;
    // The prefix isolates: another prefix sees nothing, and keys in etcd carry ours.
    let other = etcd.store("/aksnt-semantics-other/")?;
    ensure(other.list("").map_err(s)?.is_empty(), || {
        "another prefix sees our keys".into()
    })?;
    let root = etcd.store("/")?;
    let raw_keys: Vec<String> = root
        .list("aksnt-semantics/")
        .map_err(s)?
        .into_iter()
        .map(|k| k.key)
        .collect();
    ensure(
        raw_keys == ["aksnt-semantics/b", "aksnt-semantics/raw"],
        || format!("keys under / are {raw_keys:?}"),
    )?;
    // Invalid keys are refused before any request.
    let e = refused(st.txn(&[], &[put("a b", b"v")]), "a txn with key \"a b\"")?;
    ensure(matches!(e, StoreError::InvalidKey { .. }), || {
        format!("{e:?}")
    })?;
    Ok(())
}

fn eight_nodes_fit_a_slash24_and_the_ninth_changes_nothing(etcd: &EtcdServer) -> TestResult {
    let st = etcd.store("/aksnt-eight/")?;
    for i in 0..8u32 {
        let o = join(&st, &request(&format!("n{i}"), "10.240.0.0/24", 30)?).map_err(s)?;
        let JoinOutcome::Joined(r) = o else {
            return Err(format!("n{i}: {o:?}"));
        };
        ensure(r.pod_ips.len() == 30, || format!("{r:?}"))?;
        let want = u32::from(std::net::Ipv4Addr::new(10, 240, 0, 4)) + 31 * i;
        ensure(u32::from(r.node_ip) == want, || {
            format!("n{i} got {}", r.node_ip)
        })?;
    }
    let before = st.list("").map_err(s)?;
    let e = refused(
        join(&st, &request("n8", "10.240.0.0/24", 30)?),
        "the 9th join",
    )?;
    ensure(
        e.to_string()
            == "InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs available 3 in Subnet \
                Cidr 10.240.0.0/24, Subnet Name aks-subnet",
        || format!("9th join: {e}"),
    )?;
    ensure(st.list("").map_err(s)? == before, || {
        "the refused join changed the store".into()
    })?;
    let nodes = list_nodes(&st).map_err(s)?;
    ensure(nodes.len() == 8, || format!("{} nodes", nodes.len()))?;
    ensure(check_disjoint(&nodes)? == 248, || {
        "not 248 addresses".into()
    })
}

fn rejoin_is_idempotent(etcd: &EtcdServer) -> TestResult {
    let st = etcd.store("/aksnt-rejoin/")?;
    let JoinOutcome::Joined(first) = join(&st, &request("a", "10.0.0.0/24", 30)?).map_err(s)?
    else {
        return Err("first join was not new".into());
    };
    let before = st.list("").map_err(s)?;
    match join(&st, &request("a", "10.0.0.0/24", 30)?).map_err(s)? {
        JoinOutcome::AlreadyJoined(r) if r == first => {}
        other => return Err(format!("rejoin gave {other:?}")),
    }
    ensure(st.list("").map_err(s)? == before, || {
        "a rejoin wrote".into()
    })?;
    let e = refused(
        join(&st, &request("a", "10.0.0.0/24", 40)?),
        "a rejoin at maxPods 40",
    )?;
    ensure(e.to_string().contains("maxPods 30"), || format!("{e}"))
}

fn leave_then_rejoin(etcd: &EtcdServer) -> TestResult {
    let st = etcd.store("/aksnt-leave/")?;
    for i in 0..8 {
        join(&st, &request(&format!("n{i}"), "10.240.0.0/24", 30)?).map_err(s)?;
    }
    let gone = leave(&st, "n3").map_err(s)?.ok_or("n3 was not joined")?;
    ensure(leave(&st, "n3").map_err(s)?.is_none(), || {
        "second leave found n3".into()
    })?;
    ensure(get_node(&st, "n3").map_err(s)?.is_none(), || {
        "n3 still in store".into()
    })?;
    let JoinOutcome::Joined(r) = join(&st, &request("n9", "10.240.0.0/24", 30)?).map_err(s)? else {
        return Err("n9 join was not new".into());
    };
    ensure(
        r.node_ip == gone.node_ip && r.pod_ips == gone.pod_ips,
        || format!("n9 got {r:?}, n3 had {gone:?}"),
    )?;
    // The node that left can rejoin once there is room again.
    leave(&st, "n0").map_err(s)?.ok_or("n0 was not joined")?;
    join(&st, &request("n3", "10.240.0.0/24", 30)?).map_err(s)?;
    let nodes = list_nodes(&st).map_err(s)?;
    ensure(nodes.len() == 8, || format!("{} nodes", nodes.len()))?;
    check_disjoint(&nodes).map(|_| ())
}

fn concurrent_joins_from_processes(etcd: &EtcdServer) -> TestResult {
    let url = etcd.url("/aksnt-procs/");
    let dir = tempfile::tempdir().map_err(s)?;
    let start = dir.path().join("start");
    let exe = std::env::current_exe().map_err(s)?;
    let mut children = Vec::new();
    for i in 0..PROCESSES {
        let c = Command::new(&exe)
            .env(CHILD_NODE, format!("node-{i:02}"))
            .env(CHILD_URL, &url)
            .env(CHILD_START, &start)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
        children.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    std::fs::write(&start, b"go").map_err(s)?;
    let (mut ok, mut refused, mut lost) = (0, 0, 0u32);
    for (i, c) in children.into_iter().enumerate() {
        let out = c
            .wait_with_output()
            .map_err(|e| format!("wait child {i}: {e}"))?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        lost += String::from_utf8_lossy(&out.stderr)
            .split_once(": lost ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        match (out.status.code(), line.split_once(' ')) {
            (Some(0), Some(("OK", _))) => ok += 1,
            (Some(1), Some(("ERR", msg)))
                if msg.starts_with(
                    "InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs available 3 in \
                     Subnet Cidr 10.240.0.0/24, Subnet Name aks-subnet",
                ) =>
            {
                refused += 1
            }
            (code, _) => {
                return Err(format!(
                    "child {i} exited {code:?} with {line:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }
    }
    let elapsed = t0.elapsed();
    ensure((ok, refused) == (8, PROCESSES - 8), || {
        format!(
            "{ok} joined and {refused} refused; want 8 and {}",
            PROCESSES - 8
        )
    })?;
    let st = EtcdStore::open(&url).map_err(s)?;
    let nodes = list_nodes(&st).map_err(s)?;
    ensure(nodes.len() == 8, || {
        format!("{} nodes in etcd", nodes.len())
    })?;
    let held = check_disjoint(&nodes)?;
    ensure(held == 248, || format!("{held} addresses held, want 248"))?;
    eprintln!(
        "  {PROCESSES} processes against etcd: 8 joined, {} refused, {held} addresses, \
         no duplicates, {lost} lost compare-and-swap rounds retried, {elapsed:?} from start",
        PROCESSES - 8
    );
    Ok(())
}

fn child(node: &str) -> ExitCode {
    let (Ok(url), Some(start)) = (std::env::var(CHILD_URL), std::env::var_os(CHILD_START)) else {
        println!("ERR child needs {CHILD_URL} and {CHILD_START}");
        return ExitCode::from(3);
    };
    // Connect before the start signal so every child's join runs at the same moment.
    let store = match EtcdStore::open(&url) {
        Ok(s) => s,
        Err(e) => {
            println!("ERR {e}");
            return ExitCode::from(3);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&start).exists() {
        if Instant::now() > deadline {
            println!("ERR start file never appeared");
            return ExitCode::from(3);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let counting = Counting {
        inner: &store,
        lost: std::cell::Cell::new(0),
    };
    let outcome = request(node, "10.240.0.0/24", 30)
        .and_then(|r| join(&counting, &r).map_err(|e| e.to_string()));
    eprintln!(
        "{node}: lost {} compare-and-swap round(s)",
        counting.lost.get()
    );
    match outcome {
        Ok(o) => {
            println!("OK {}", o.reservation().node_ip);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("ERR {e}");
            ExitCode::from(1)
        }
    }
}

/// `etcd://dead,live`: requests go to the endpoint that answers (a cluster with
/// one member down keeps working for aksnet).
fn one_dead_endpoint_of_two_is_tolerated(etcd: &EtcdServer) -> TestResult {
    let dead = free_port()?;
    let url = format!(
        "etcd://127.0.0.1:{dead},127.0.0.1:{}/aksnt-multi/",
        etcd.client_port
    );
    let st = EtcdStore::open(&url).map_err(s)?;
    let t0 = Instant::now();
    for i in 0..3 {
        join(&st, &request(&format!("m{i}"), "10.1.0.0/24", 30)?).map_err(s)?;
    }
    let nodes = list_nodes(&st).map_err(s)?;
    ensure(nodes.len() == 3, || format!("{} nodes", nodes.len()))?;
    eprintln!("  3 joins through {url}: {:?}", t0.elapsed());
    Ok(())
}

/// Nothing listens: the error names the endpoint and says "connection refused",
/// well within the timeout, with io::ErrorKind::ConnectionRefused.
fn etcd_down_is_a_clear_error_within_the_timeout(_: &EtcdServer) -> TestResult {
    let port = free_port()?;
    let url = format!("etcd://127.0.0.1:{port}");
    let t0 = Instant::now();
    let mut cfg = EtcdConfig::from_url(&url).map_err(s)?;
    cfg.deadline = Duration::from_secs(2);
    let st = EtcdStore::connect(cfg).map_err(s)?;
    let e = refused(
        join(&st, &request("a", "10.0.0.0/24", 30)?),
        "a join with etcd down",
    )?;
    let elapsed = t0.elapsed();
    let msg = e.to_string();
    ensure(
        msg.contains(&url) && msg.contains(&format!("127.0.0.1:{port}: connection refused")),
        || format!("message does not name the endpoint and the refusal: {msg}"),
    )?;
    let kind = match &e {
        aksnet_store::ReservationError::Store(StoreError::Remote { source, .. }) => source.kind(),
        other => return Err(format!("not a store I/O error: {other:?}")),
    };
    ensure(kind == ErrorKind::ConnectionRefused, || {
        format!("kind {kind:?}")
    })?;
    ensure(elapsed < Duration::from_secs(7), || {
        format!("took {elapsed:?}")
    })?;
    eprintln!("  etcd down: {elapsed:?}: {msg}");
    Ok(())
}

/// Something accepts connections but never answers (a hung etcd): TimedOut after
/// the configured timeout, not a hang.
fn silent_etcd_times_out(_: &EtcdServer) -> TestResult {
    // A listening socket that is never accepted from: the kernel completes the TCP
    // handshake, nobody speaks HTTP/2.
    let l = TcpListener::bind("127.0.0.1:0").map_err(s)?;
    let port = l.local_addr().map_err(s)?.port();
    let mut cfg = EtcdConfig::from_url(&format!("etcd://127.0.0.1:{port}")).map_err(s)?;
    cfg.attempt_timeout = Duration::from_secs(1);
    cfg.deadline = Duration::from_secs(1);
    let t0 = Instant::now();
    let st = EtcdStore::connect(cfg).map_err(s)?;
    let e = refused(st.get("k"), "a get from a silent etcd")?;
    let elapsed = t0.elapsed();
    let msg = e.to_string();
    let kind = match &e {
        StoreError::Remote { source, .. } => source.kind(),
        other => return Err(format!("not an I/O error: {other:?}")),
    };
    ensure(kind == ErrorKind::TimedOut, || {
        format!("kind {kind:?}: {msg}")
    })?;
    ensure(msg.contains(&format!("127.0.0.1:{port}")), || msg.clone())?;
    ensure(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        || format!("took {elapsed:?}"),
    )?;
    eprintln!("  silent etcd: {elapsed:?}: {msg}");
    // A write that may have reached a server that never answered: outcome unknown.
    let mut cfg = EtcdConfig::from_url(&format!("etcd://127.0.0.1:{port}")).map_err(s)?;
    cfg.deadline = Duration::from_secs(1);
    let st = EtcdStore::connect(cfg).map_err(s)?;
    let e = refused(st.txn(&[], &[put("k", b"v")]), "a txn to a silent etcd")?;
    ensure(
        matches!(
            &e,
            StoreError::Remote {
                outcome: Some(aksnet_store::WriteOutcome::Unknown),
                ..
            }
        ) && e.to_string().contains("outcome: not known"),
        || format!("a txn in doubt: {e}"),
    )?;
    drop(l);
    // A write no endpoint accepted: known not applied.
    let mut cfg = EtcdConfig::from_url(&format!("etcd://127.0.0.1:{}", free_port()?)).map_err(s)?;
    cfg.deadline = Duration::from_millis(500);
    let st = EtcdStore::connect(cfg).map_err(s)?;
    let e = refused(st.txn(&[], &[put("k", b"v")]), "a txn to a refused port")?;
    ensure(
        matches!(
            &e,
            StoreError::Remote {
                outcome: Some(aksnet_store::WriteOutcome::NotApplied),
                ..
            }
        ) && e.to_string().contains("outcome: not applied"),
        || format!("a txn refused: {e}"),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_joins(store: &dyn Store, n: usize) -> Result<Vec<Duration>, String> {
    (0..n)
        .map(|i| {
            let r = request(&format!("lat-{i:03}"), "10.64.0.0/16", 30)?;
            let t = Instant::now();
            join(store, &r).map_err(s)?;
            Ok(t.elapsed())
        })
        .collect()
}

/// Join latency, etcd vs embedded, same machine, same sequence (printed, not asserted:
/// the numbers go in the report and docs/node.md).
fn join_latency_etcd_vs_embedded(etcd: &EtcdServer) -> TestResult {
    const N: usize = 50;
    let st = etcd.store("/aksnt-latency/")?;
    let dir = tempfile::tempdir().map_err(s)?;
    let emb = EmbeddedStore::new(dir.path().join("cluster"));
    let e = time_joins(&st, N)?;
    let m = time_joins(&emb, N)?;
    eprintln!(
        "  join latency, {N} sequential joins into one /16 at maxPods 30: etcd median {:?} \
         (max {:?}), embedded median {:?} (max {:?})",
        median(e.clone()),
        e.iter().max().copied().unwrap_or_default(),
        median(m.clone()),
        m.iter().max().copied().unwrap_or_default(),
    );
    Ok(())
}

/// The `aksnet` binary next to this test's directory (target/<profile>/aksnet),
/// built with the `etcd` feature by scripts/test.sh before the tests run.
fn aksnet_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("aksnet"))
        .ok_or("no target directory above the test binary")?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: build it with the etcd feature first \
             (cargo build --workspace --all-features --bins; scripts/test.sh does)",
            bin.display()
        ))
    }
}

/// The real CLI against the real etcd: 16 `aksnet node join --store etcd://…`
/// processes on one /24 at maxPods 30 (8 fit), `node list --format json`, and
/// leave then join.
fn aksnet_cli_against_etcd(etcd: &EtcdServer) -> TestResult {
    let bin = aksnet_bin()?;
    let url = etcd.url("/aksnt-cli/");
    let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&bin)
                .args(["node", "join", "--node", &format!("cli-{i}")])
                .args([
                    "--subnet",
                    "10.241.0.0/24",
                    "--max-pods",
                    "30",
                    "--store",
                    &url,
                ])
                .arg("--data-dir")
                .arg(dirs.path().join(format!("cli-{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn aksnet: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut joined = 0;
    let mut refused = 0;
    for c in children {
        let out = c.wait_with_output().map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => joined += 1,
            Some(1) if err.contains("InsufficientSubnetSize: Pre-allocated IPs 31") => refused += 1,
            other => return Err(format!("aksnet node join exited {other:?}: {err}")),
        }
    }
    if (joined, refused) != (8, 8) {
        return Err(format!("{joined} joined, {refused} refused; want 8 and 8"));
    }
    let list = Command::new(&bin)
        .args(["node", "list", "--store", &url, "--format", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&list.stdout)
        .map_err(|e| format!("node list output is not JSON ({e})"))?;
    let nodes = v["nodes"].as_array().ok_or("no nodes in node list")?;
    let mut seen = std::collections::BTreeSet::new();
    for n in nodes {
        let own = n["nodeIp"].as_str().into_iter();
        let pods = n["podIps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str());
        for ip in own.chain(pods) {
            if !seen.insert(ip.to_string()) {
                return Err(format!("{ip} is held by two nodes"));
            }
        }
    }
    if (nodes.len(), seen.len()) != (8, 248) {
        return Err(format!(
            "{} nodes holding {} addresses; want 8 and 248",
            nodes.len(),
            seen.len()
        ));
    }
    // Leave one and the room is there again for a new node.
    let gone = nodes[0]["node"].as_str().ok_or("node name")?.to_string();
    let leave = Command::new(&bin)
        .args(["node", "leave", "--node", &gone, "--store", &url])
        .arg("--data-dir")
        .arg(dirs.path().join(&gone))
        .output()
        .map_err(|e| e.to_string())?;
    if !leave.status.success() {
        return Err(format!("leave: {}", String::from_utf8_lossy(&leave.stderr)));
    }
    let again = Command::new(&bin)
        .args([
            "node",
            "join",
            "--node",
            "cli-late",
            "--subnet",
            "10.241.0.0/24",
        ])
        .args(["--max-pods", "30", "--store", &url])
        .arg("--data-dir")
        .arg(dirs.path().join("cli-late"))
        .output()
        .map_err(|e| e.to_string())?;
    if !again.status.success() {
        return Err(format!(
            "join after leave: {}",
            String::from_utf8_lossy(&again.stderr)
        ));
    }
    Ok(())
}

/// The store compacts etcd's history (issue 17): with compaction every 10
/// revisions keeping 5, after 25 joins an old revision of the guard key is gone
/// (etcdctl says so) while the current state is intact.
fn history_is_compacted(etcd: &EtcdServer) -> TestResult {
    let mut cfg = EtcdConfig::from_url(&etcd.url("/aksnt-compact/")).map_err(s)?;
    cfg.compact_every = 10;
    cfg.compact_keep = 5;
    let st = EtcdStore::connect(cfg).map_err(s)?;
    join(&st, &request("c-first", "10.77.0.0/16", 30)?).map_err(s)?;
    let (_, first_rev) = st.get("subnets/aks-subnet").map_err(s)?.ok_or("no guard")?;
    for i in 0..25 {
        join(&st, &request(&format!("c-{i}"), "10.77.0.0/16", 30)?).map_err(s)?;
    }
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=http://127.0.0.1:{}", etcd.client_port))
        .args(["get", "/aksnt-compact/subnets/aks-subnet"])
        .arg(format!("--rev={first_rev}"))
        .output()
        .map_err(|e| format!("run etcdctl (Debian etcd-client): {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure(!out.status.success() && err.contains("compacted"), || {
        format!("revision {first_rev} of the guard is still readable: {err}")
    })?;
    ensure(list_nodes(&st).map_err(s)?.len() == 26, || {
        "nodes lost".into()
    })
}

/// Other tenants of the subnet (`aksnet_store::tenants`) on etcd: a reserved
/// range is skipped by joins and counted in InsufficientSubnetSize, a node's
/// address cannot be reserved, and release frees the range.
fn tenants_on_etcd(etcd: &EtcdServer) -> TestResult {
    use aksnet_store::tenants::{release, reserve, tenant_addresses};
    let st = etcd.store("/aksh6-tenants/")?;
    let subnet = NodeSubnet::new("10.240.0.0/24".parse().map_err(s)?).map_err(s)?;
    let ip = |t: &str| t.parse::<std::net::Ipv4Addr>().map_err(s);
    let range = (ip("10.240.0.4")?, ip("10.240.0.13")?);
    reserve(&st, "aks-subnet", &subnet, range, "vm1").map_err(s)?;
    let o = join(&st, &request("a", "10.240.0.0/24", 30)?).map_err(s)?;
    ensure(o.reservation().node_ip == ip("10.240.0.14")?, || {
        format!("{o:?}")
    })?;
    for i in 0..6 {
        join(&st, &request(&format!("n{i}"), "10.240.0.0/24", 30)?).map_err(s)?;
    }
    let e = refused(
        join(&st, &request("z", "10.240.0.0/24", 30)?),
        "the 8th join",
    )?;
    ensure(
        e.to_string()
            .contains("IPs available 24 in Subnet Cidr 10.240.0.0/24"),
        || format!("8th join: {e}"),
    )?;
    let before = st.list("").map_err(s)?;
    let e = refused(
        reserve(
            &st,
            "aks-subnet",
            &subnet,
            (ip("10.240.0.20")?, ip("10.240.0.20")?),
            "lb",
        ),
        "reserving a node's address",
    )?;
    ensure(e.to_string().contains("held by node a"), || e.to_string())?;
    ensure(st.list("").map_err(s)? == before, || {
        "a refused reserve changed the store".into()
    })?;
    release(&st, "aks-subnet", range).map_err(s)?;
    ensure(
        tenant_addresses(&st, "aks-subnet").map_err(s)?.is_empty(),
        || "release left the range".into(),
    )
}

/// Per-node pod CIDRs (`aksnet_store::podcidr`) on etcd: blocks in order, never
/// twice, exhaustion named, release and lease expiry free a block, rejoin stable.
fn pod_cidrs_on_etcd(etcd: &EtcdServer) -> TestResult {
    use aksnet_store::podcidr::{allocate, list_pod_cidrs, release, PodCidrPool, PodCidrRequest};
    let st = etcd.store("/aksh6-podcidr/")?;
    let pool = PodCidrPool::new("10.244.0.0/22".parse().map_err(s)?, 24).map_err(s)?;
    let req = |node: &str, lease| PodCidrRequest {
        node: node.to_string(),
        node_ip: "10.240.0.4".parse().expect("ip"),
        keep: None,
        lease,
    };
    for (i, node) in ["a", "b", "c"].iter().enumerate() {
        let o = allocate(&st, Some(pool), &req(node, None)).map_err(s)?;
        ensure(
            o.record().cidr.to_string() == format!("10.244.{i}.0/24"),
            || format!("{o:?}"),
        )?;
    }
    let again = allocate(&st, None, &req("b", None)).map_err(s)?;
    ensure(again.record().cidr.to_string() == "10.244.1.0/24", || {
        format!("rejoin {again:?}")
    })?;
    // The 4th block on a lease that nobody keeps alive: etcd frees it.
    let lease = st.grant_lease(Duration::from_secs(2)).map_err(s)?;
    let d = allocate(&st, None, &req("d", Some(lease))).map_err(s)?;
    ensure(d.record().cidr.to_string() == "10.244.3.0/24", || {
        format!("{d:?}")
    })?;
    let before = st.list("").map_err(s)?;
    let e = refused(allocate(&st, None, &req("e", None)), "a 5th block of a /22")?;
    ensure(
        e.to_string()
            .contains("pod CIDR 10.244.0.0/22 is exhausted: all 4 /24 blocks"),
        || e.to_string(),
    )?;
    ensure(st.list("").map_err(s)? == before, || {
        "a refused allocation wrote".into()
    })?;
    let started = Instant::now();
    while list_pod_cidrs(&st)
        .map_err(s)?
        .iter()
        .any(|r| r.node == "d")
    {
        ensure(started.elapsed() < Duration::from_secs(15), || {
            "the lease's block outlived it by 15 s".into()
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = allocate(&st, None, &req("e", None)).map_err(s)?;
    ensure(o.record().cidr.to_string() == "10.244.3.0/24", || {
        format!("{o:?}")
    })?;
    ensure(release(&st, "a").map_err(s)?.is_some(), || {
        "release a".into()
    })?;
    ensure(release(&st, "a").map_err(s)?.is_none(), || {
        "released twice".into()
    })?;
    let blocks: Vec<_> = list_pod_cidrs(&st)
        .map_err(s)?
        .iter()
        .map(|r| r.cidr)
        .collect();
    ensure(blocks.len() == 3, || format!("{blocks:?}"))
}

fn main() -> ExitCode {
    if let Ok(node) = std::env::var(CHILD_NODE) {
        return child(&node);
    }
    let etcd = match EtcdServer::start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("etcd backend tests: FAILED to start etcd: {e}");
            return ExitCode::FAILURE;
        }
    };
    type Test = fn(&EtcdServer) -> TestResult;
    let tests: &[(&str, Test)] = &[
        ("store_semantics", store_semantics),
        (
            "eight_nodes_fit_a_slash24_and_the_ninth_changes_nothing",
            eight_nodes_fit_a_slash24_and_the_ninth_changes_nothing,
        ),
        ("rejoin_is_idempotent", rejoin_is_idempotent),
        ("tenants_on_etcd", tenants_on_etcd),
        ("pod_cidrs_on_etcd", pod_cidrs_on_etcd),
        ("aksnet_cli_against_etcd", aksnet_cli_against_etcd),
        ("leave_then_rejoin", leave_then_rejoin),
        (
            "concurrent_joins_from_16_processes",
            concurrent_joins_from_processes,
        ),
        (
            "etcd_down_is_a_clear_error_within_the_timeout",
            etcd_down_is_a_clear_error_within_the_timeout,
        ),
        ("silent_etcd_times_out", silent_etcd_times_out),
        (
            "one_dead_endpoint_of_two_is_tolerated",
            one_dead_endpoint_of_two_is_tolerated,
        ),
        ("history_is_compacted", history_is_compacted),
        (
            "join_latency_etcd_vs_embedded",
            join_latency_etcd_vs_embedded,
        ),
    ];
    let mut failed = 0;
    for (name, t) in tests {
        match t(&etcd) {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    let dir: PathBuf = etcd.dir.path().to_path_buf();
    drop(etcd);
    if dir.exists() {
        eprintln!("etcd data directory {} was not removed", dir.display());
        failed += 1;
    }
    println!(
        "test result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        tests.len() - failed.min(tests.len())
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
