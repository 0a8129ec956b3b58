//! Concurrent joins from several OS processes against one embedded store
//! (issue 3: "Two `aksnet` processes joining nodes at once never give one address
//! to two nodes"). The test binary is its own helper: run with
//! `AKSNET_STORE_CHILD_NODE` set, it joins that node and prints the outcome.
//!
//! 16 processes each join a distinct node to one /24 at maxPods 30, released at
//! the same instant by a start file: exactly 8 succeed, the other 8 fail with
//! InsufficientSubnetSize, and no address is held by two nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aksnet_core::azure::{MaxPods, NodeSubnet};
use std::cell::Cell;

use aksnet_store::{
    join, list_nodes, Compare, EmbeddedStore, JoinRequest, KeyValue, Op, Revision, Store,
    StoreError,
};

/// The embedded store, counting transactions whose compares failed (lost races), so
/// the test can show the compare-and-swap path was exercised.
struct Counting {
    inner: EmbeddedStore,
    lost: Cell<u32>,
}

impl Store for Counting {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
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

const CHILD_NODE: &str = "AKSNET_STORE_CHILD_NODE";
const CHILD_STORE: &str = "AKSNET_STORE_CHILD_STORE";
const CHILD_START: &str = "AKSNET_STORE_CHILD_START";
const PROCESSES: usize = 16;

fn main() -> ExitCode {
    match std::env::var(CHILD_NODE) {
        Ok(node) => child(&node),
        Err(_) => match parent() {
            Ok(()) => {
                println!("test concurrent_joins_from_{PROCESSES}_processes ... ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("test concurrent_joins_from_{PROCESSES}_processes ... FAILED: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn request(node: &str) -> Result<JoinRequest, String> {
    Ok(JoinRequest {
        node: node.to_string(),
        subnet_name: "aks-subnet".to_string(),
        subnet: NodeSubnet::new("10.240.0.0/24".parse().map_err(|e| format!("{e}"))?)
            .map_err(|e| e.to_string())?,
        max_pods: MaxPods::new(30).map_err(|e| e.to_string())?,
        in_use: Default::default(),
        lease: None,
    })
}

fn child(node: &str) -> ExitCode {
    let (Some(store), Some(start)) = (std::env::var_os(CHILD_STORE), std::env::var_os(CHILD_START))
    else {
        println!("ERR child needs {CHILD_STORE} and {CHILD_START}");
        return ExitCode::from(3);
    };
    // Wait for the start file so every child runs its join at the same moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&start).exists() {
        if Instant::now() > deadline {
            println!("ERR start file never appeared");
            return ExitCode::from(3);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let store = Counting {
        inner: EmbeddedStore::new(PathBuf::from(store)),
        lost: Cell::new(0),
    };
    let outcome = request(node).and_then(|r| join(&store, &r).map_err(|e| e.to_string()));
    eprintln!(
        "{node}: lost {} compare-and-swap round(s)",
        store.lost.get()
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

fn parent() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let store_dir = dir.path().join("cluster");
    let start = dir.path().join("start");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .env(CHILD_NODE, format!("node-{i:02}"))
                .env(CHILD_STORE, &store_dir)
                .env(CHILD_START, &start)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn {}: {e}", exe.display()))
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    std::fs::write(&start, b"go").map_err(|e| format!("write start file: {e}"))?;
    let mut ok = 0;
    let mut refused = 0;
    let mut lost = 0u32;
    for (i, c) in children.into_iter().enumerate() {
        let out = c
            .wait_with_output()
            .map_err(|e| format!("wait child {i}: {e}"))?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let err = String::from_utf8_lossy(&out.stderr);
        lost += err
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
            (code, _) => return Err(format!("child {i} exited {code:?} with {line:?}")),
        }
    }
    let elapsed = t0.elapsed();
    if (ok, refused) != (8, PROCESSES - 8) {
        return Err(format!(
            "{ok} joins succeeded and {refused} were refused; want 8 and {}",
            PROCESSES - 8
        ));
    }
    let store = EmbeddedStore::new(&store_dir);
    let nodes = list_nodes(&store).map_err(|e| e.to_string())?;
    if nodes.len() != 8 {
        return Err(format!("store holds {} nodes, want 8", nodes.len()));
    }
    let mut holder = BTreeMap::new();
    for n in &nodes {
        if n.pod_ips.len() != 30 {
            return Err(format!("{} holds {} pod IPs", n.node, n.pod_ips.len()));
        }
        for ip in n.addresses() {
            if let Some(prev) = holder.insert(ip, n.node.clone()) {
                return Err(format!("{ip} is held by both {prev} and {}", n.node));
            }
        }
    }
    if holder.len() != 248 {
        return Err(format!("{} addresses held, want 248", holder.len()));
    }
    // 8 joins, each one write transaction (subnet creation rides on the first).
    let rev = store.revision().map_err(|e| e.to_string())?;
    if rev != 8 {
        return Err(format!(
            "store revision {rev}, want 8 (one per successful join)"
        ));
    }
    eprintln!(
        "{PROCESSES} processes: 8 joined, {} refused, {} addresses, no duplicates, \
         {lost} lost compare-and-swap rounds retried, {:?} from start",
        PROCESSES - 8,
        holder.len(),
        elapsed
    );
    Ok(())
}
