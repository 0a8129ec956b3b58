//! Faults of the real agent's policy apply (issue 11): the real `aksnet agent --policy-only`
//! process, in a network namespace of this test, is killed with SIGKILL at spread-out moments
//! while it applies a large policy change (its running loop: an update script of about
//! 2,000 lines, far more than a pipe holds). After every kill the kernel's table must
//! be exactly the old one or exactly the new one, never a mix; a restarted agent then
//! applies the new one. Needs root, ip and nft; a missing one fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");
const TABLE: &str = "akspolkill";

/// The node's namespace (deleted on drop) and what the test does in it.
struct Netns(aksnet_testkit::Netns);

impl Netns {
    fn new() -> Netns {
        aksnet_testkit::require_root();
        Netns(aksnet_testkit::Netns::create(&format!(
            "akspol{}k",
            std::process::id() % 1000
        )))
    }

    /// The table as nft lists it, made comparable: no handles, set and map elements sorted.
    fn table(&self) -> Option<Value> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.0.name(),
                "nft",
                "-j",
                "list",
                "table",
                "inet",
                TABLE,
            ])
            .output()
            .expect("nft (Debian nftables) is missing: bash scripts/install-deps.sh");
        if !out.status.success() {
            return None;
        }
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = v["nftables"].as_array_mut().unwrap();
        items.retain(|i| i.get("metainfo").is_none());
        for i in items.iter_mut() {
            for kind in ["table", "chain", "rule", "set", "map"] {
                if let Some(o) = i.get_mut(kind).and_then(Value::as_object_mut) {
                    o.remove("handle");
                    if let Some(Value::Array(e)) = o.get_mut("elem") {
                        e.sort_by_key(|x| x.to_string());
                    }
                }
            }
        }
        items.sort_by_key(|x| x.to_string());
        Some(v)
    }

    fn agent(&self, dir: &Path, once: bool) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            self.0.name(),
            BIN,
            "agent",
            "--policy-only",
        ]);
        if once {
            c.arg("--once");
        }
        c.arg("--policy-dir").arg(dir).args([
            "--node-name",
            "node-1",
            "--policy-table",
            TABLE,
            "--policy-pod-range",
            "10.244.1.0/24",
        ]);
        c
    }
}

/// 300 pods (100 on this node) and 200 policies; `version` changes every label value, so
/// the change from one version to the other touches every set, map entry and chain.
fn manifests(version: u32) -> Value {
    let mut items = Vec::new();
    for n in 0..20 {
        items.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("ns{n}"), "labels": {"team": format!("t{}", n % 5)}}}));
    }
    for i in 0..300u32 {
        let node = if i % 3 == 0 { "node-1" } else { "node-2" };
        let ip = format!(
            "10.244.{}.{}",
            if node == "node-1" { 1 } else { 2 },
            i / 3 + 2
        );
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i}"), "namespace": format!("ns{}", i % 20),
                         "labels": {"app": format!("v{version}-a{}", i % 40)}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}));
    }
    for j in 0..200u32 {
        items.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("v{version}-pol{j}"), "namespace": format!("ns{}", j % 20)},
            "spec": {"podSelector": {"matchLabels": {"app": format!("v{version}-a{}", j % 40)}},
                     "ingress": [{"from": [
                         {"namespaceSelector": {"matchLabels": {"team": format!("t{}", j % 5)}},
                          "podSelector": {"matchLabels": {"app": format!("v{version}-a{}", (j + 1) % 40)}}},
                         {"ipBlock": {"cidr": "10.0.0.0/8", "except": [format!("10.{}.0.0/16", j % 200)]}}],
                       "ports": [{"port": 8080 + j % 7}, {"port": "http"}]}]}}));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn write(dir: &Path, v: &Value) {
    let tmp = dir.join(".next.tmp");
    std::fs::write(&tmp, v.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("cluster.json")).unwrap();
}

fn once(ns: &Netns, dir: &Path) {
    let out = ns.agent(dir, true).output().unwrap();
    assert!(
        out.status.success(),
        "agent --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the running agent and waits for its first apply (its log line); the receiver
/// gets a message at each later apply.
fn start_loop(ns: &Netns, dir: &Path) -> (Child, std::sync::mpsc::Receiver<()>) {
    let mut child = ns
        .agent(dir, false)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("agent exited").unwrap();
        if line.contains("policy reconciled") {
            break;
        }
        assert!(Instant::now() < deadline, "agent never applied");
    }
    // Keep draining its log so it never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if l.contains("policy reconciled") {
                let _ = tx.send(());
            }
        }
    });
    (child, rx)
}

#[test]
fn sigkill_during_apply_leaves_old_or_new_and_restart_applies() {
    let ns = Netns::new();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("policy");
    std::fs::create_dir(&dir).unwrap();
    let (old, new) = (manifests(1), manifests(2));
    // The two tables, each applied whole by a fresh agent.
    write(&dir, &new);
    once(&ns, &dir);
    let new_table = ns.table().expect("new table");
    write(&dir, &old);
    once(&ns, &dir);
    let old_table = ns.table().expect("old table");
    assert_ne!(old_table, new_table);
    // How long the running agent takes to see and apply the change: the kill delays spread
    // over that time (and a little past it).
    let (mut child, applied) = start_loop(&ns, &dir);
    let t = Instant::now();
    write(&dir, &new);
    applied
        .recv_timeout(Duration::from_secs(120))
        .expect("the running agent never applied the change");
    let window = t.elapsed();
    assert_eq!(ns.table().as_ref(), Some(&new_table));
    eprintln!("the running agent applied the change {window:?} after it was written");
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut saw_old, mut saw_new) = (0, 0);
    let runs = 10u32;
    for k in 0..runs {
        write(&dir, &old);
        once(&ns, &dir);
        let (mut child, _) = start_loop(&ns, &dir);
        write(&dir, &new);
        // From right after the write to a little after the apply ends.
        std::thread::sleep(window * k / (runs - 2));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let now = ns.table().expect("table gone after a kill");
        if now == old_table {
            saw_old += 1;
        } else if now == new_table {
            saw_new += 1;
        } else {
            panic!(
                "kill {k} ({:?} in): the table is neither old nor new",
                window * k / (runs - 4)
            );
        }
        // A restarted agent applies what the directory says.
        once(&ns, &dir);
        assert_eq!(ns.table().as_ref(), Some(&new_table), "restart {k}");
    }
    eprintln!("{runs} kills over {window:?}: {saw_old} left the old table, {saw_new} the new one");
}
