//! The etcd store under faults, through the real `aksnet` CLI against a real
//! 3-member etcd cluster on loopback (issue 17): a frozen member (SIGSTOP) and a
//! listener that never answers listed first, quorum loss, the leader killed during
//! 16 parallel joins (repeated), TLS with client certificates generated at test
//! time, etcd authentication, lease expiry with fencing, and more than 4 MiB of
//! reservations. Every fault test checks the invariants: no
//! address twice, every node that exited 0 is in the store with exactly the
//! addresses of its pool file, and exit statuses tell the truth.
//!
//! Needs the `aksnet` binary built with the etcd feature next to this test
//! (`cargo build -p aksnet --features etcd`; scripts/test.sh does).

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "etcd_support/mod.rs"]
mod support;
use support::{EtcdCluster, TestResult, PREFIX};

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
             (cargo build -p aksnet --features etcd; scripts/test.sh does)",
            bin.display()
        ))
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(cmd: &mut Command) -> Result<Run, String> {
    let t0 = Instant::now();
    let out: Output = cmd.output().map_err(|e| format!("run aksnet: {e}"))?;
    Ok(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    })
}

/// `aksnet node <sub> --store <url> [args]`.
fn node_cmd(bin: &Path, sub: &str, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(["node", sub, "--store", url]).args(args);
    c.env_remove("ETCDCTL_CACERT")
        .env_remove("ETCDCTL_CERT")
        .env_remove("ETCDCTL_KEY")
        .env_remove("ETCDCTL_USER")
        .env_remove("ETCDCTL_PASSWORD");
    c
}

fn join_cmd(bin: &Path, url: &str, node: &str, data: &Path, subnet: &str) -> Command {
    let mut c = node_cmd(
        bin,
        "join",
        url,
        &["--node", node, "--subnet", subnet, "--max-pods", "30"],
    );
    c.arg("--data-dir").arg(data);
    c
}

/// `node list --format json` as (node → addresses).
fn list(bin: &Path, url: &str, extra: &[&str]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut args = vec!["--format", "json", "--data-dir", "/nonexistent-aksh3"];
    args.extend_from_slice(extra);
    let r = run(&mut node_cmd(bin, "list", url, &args))?;
    if r.code != Some(0) {
        return Err(format!("node list exited {:?}: {}", r.code, r.stderr));
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).map_err(|e| format!("list JSON: {e}"))?;
    let mut out = BTreeMap::new();
    for n in v["nodes"].as_array().into_iter().flatten() {
        let mut ips = vec![n["nodeIp"].as_str().unwrap_or_default().to_string()];
        ips.extend(
            n["podIps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(String::from)),
        );
        out.insert(n["node"].as_str().unwrap_or_default().to_string(), ips);
    }
    Ok(out)
}

/// No address twice; each node in `joined` is in the store with its pool's addresses.
fn check_invariants(
    store: &BTreeMap<String, Vec<String>>,
    joined: &[(String, PathBuf)],
) -> TestResult {
    let mut seen = BTreeSet::new();
    for (node, ips) in store {
        for ip in ips {
            if !seen.insert(ip.clone()) {
                return Err(format!("{ip} is held twice (one holder is {node})"));
            }
        }
    }
    for (node, data) in joined {
        let held = store
            .get(node)
            .ok_or_else(|| format!("{node} exited 0 but is not in the store"))?;
        let pool: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join("node-pool.json"))
                .map_err(|e| format!("{node}: pool file: {e}"))?,
        )
        .map_err(|e| format!("{node}: pool JSON: {e}"))?;
        let mut ips = vec![pool["nodeIp"].as_str().unwrap_or_default().to_string()];
        ips.extend(
            pool["podIps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(String::from)),
        );
        if &ips != held {
            return Err(format!("{node}: pool file and store disagree"));
        }
    }
    Ok(())
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// A member frozen with SIGSTOP and a listener that accepts but never answers,
/// both listed before the live members: joins and lists still succeed.
fn frozen_member_and_silent_listener_first(c: &mut EtcdCluster, bin: &Path) -> TestResult {
    let silent = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let silent_ep = format!(
        "127.0.0.1:{}",
        silent.local_addr().map_err(|e| e.to_string())?.port()
    );
    let frozen = 0;
    c.freeze(frozen)?;
    let result = (|| -> TestResult {
        let eps = c.endpoints();
        let url = format!(
            "etcd://{},{silent_ep},{}/{PREFIX}-frozen/",
            eps[0],
            eps[1..].join(",")
        );
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut joined = Vec::new();
        for i in 0..3 {
            let node = format!("fz-{i}");
            let data = dir.path().join(&node);
            let r = run(&mut join_cmd(bin, &url, &node, &data, "10.50.0.0/22"))?;
            ensure(r.code == Some(0), || {
                format!(
                    "join {node} with a frozen member: {:?} {}",
                    r.code, r.stderr
                )
            })?;
            eprintln!(
                "  join {node} with member 0 frozen and a silent listener first: {:?}",
                r.took
            );
            ensure(
                r.stderr.contains("retried") && r.stderr.contains(&silent_ep),
                || format!("join {node}: the retries are not logged: {}", r.stderr),
            )?;
            joined.push((node, data));
        }
        for _ in 0..3 {
            let t0 = Instant::now();
            let store = list(bin, &url, &[])?;
            eprintln!("  list with member 0 frozen: {:?}", t0.elapsed());
            check_invariants(&store, &joined)?;
        }
        Ok(())
    })();
    c.thaw(frozen)?;
    drop(silent);
    c.wait_healthy(Duration::from_secs(20))?;
    result
}

/// Two of three members frozen: a join fails within its deadline, saying which
/// endpoints failed and that the outcome is not known; after quorum returns, the
/// rerun join succeeds and the store is consistent.
fn quorum_loss_is_a_bounded_error(c: &mut EtcdCluster, bin: &Path) -> TestResult {
    let url = c.url(&format!("/{PREFIX}-quorum/"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let a = dir.path().join("q-a");
    let r = run(&mut join_cmd(bin, &url, "q-a", &a, "10.51.0.0/22"))?;
    ensure(r.code == Some(0), || format!("first join: {}", r.stderr))?;
    let before = list(bin, &url, &[])?;
    c.freeze(1)?;
    c.freeze(2)?;
    let b = dir.path().join("q-b");
    let outcome = (|| -> Result<String, String> {
        let mut cmd = join_cmd(bin, &url, "q-b", &b, "10.51.0.0/22");
        cmd.args(["--store-timeout", "4s"]);
        let r = run(&mut cmd)?;
        eprintln!(
            "  join without quorum: exit {:?} after {:?}: {}",
            r.code,
            r.took,
            r.stderr.trim()
        );
        ensure(r.code == Some(1), || {
            format!("join without quorum exited {:?}: {}", r.code, r.stdout)
        })?;
        ensure(r.took < Duration::from_secs(7), || {
            format!("took {:?}", r.took)
        })?;
        for ep in c.endpoints() {
            ensure(r.stderr.contains(&ep), || {
                format!("{ep} not named: {}", r.stderr)
            })?;
        }
        ensure(!b.join("node-pool.json").exists(), || {
            "a failed join wrote the pool".into()
        })?;
        let mut lc = node_cmd(
            bin,
            "list",
            &url,
            &["--store-timeout", "3s", "--data-dir", "/nonexistent-aksh3"],
        );
        let l = run(&mut lc)?;
        ensure(l.code == Some(1) && l.took < Duration::from_secs(6), || {
            format!("list without quorum: {:?} after {:?}", l.code, l.took)
        })?;
        Ok(r.stderr)
    })();
    c.thaw(1)?;
    c.thaw(2)?;
    c.wait_healthy(Duration::from_secs(20))?;
    let stderr = outcome?;
    let after = list(bin, &url, &[])?;
    let known_unapplied = stderr.contains("nothing was changed");
    ensure(
        (stderr.contains("outcome: not known") || known_unapplied) && stderr.contains("rerunning"),
        || format!("the message does not say whether the join was applied: {stderr}"),
    )?;
    let mut expected = before.clone();
    if let Some(v) = after.get("q-b") {
        // The proposal may commit once the members resume: the message said so.
        ensure(!known_unapplied, || {
            "said 'not applied' but q-b is in the store".into()
        })?;
        expected.insert("q-b".into(), v.clone());
    }
    ensure(after == expected, || {
        "quorum loss changed other reservations".into()
    })?;
    let r = run(&mut join_cmd(bin, &url, "q-b", &b, "10.51.0.0/22"))?;
    ensure(r.code == Some(0), || format!("rerun join: {}", r.stderr))?;
    check_invariants(
        &list(bin, &url, &[])?,
        &[("q-a".into(), a), ("q-b".into(), b)],
    )
}

/// 16 CLI joins at once while the leader is SIGKILLed: every join exits 0, every
/// joined node's pool matches the store, no address twice. Repeated `rounds` times.
fn leader_kill_during_16_parallel_joins(
    c: &mut EtcdCluster,
    bin: &Path,
    rounds: usize,
) -> TestResult {
    for round in 0..rounds {
        let url = c.url(&format!("/{PREFIX}-leaderkill-{round}/"));
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let leader = c.leader()?;
        let mut children = Vec::new();
        for i in 0..16 {
            let node = format!("lk-{i:02}");
            let data = dir.path().join(&node);
            let child = join_cmd(bin, &url, &node, &data, "10.52.0.0/21")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn aksnet: {e}"))?;
            children.push((node, data, child));
        }
        std::thread::sleep(Duration::from_millis(40 + 30 * round as u64));
        c.kill(leader)?;
        let t0 = Instant::now();
        let mut joined = Vec::new();
        for (node, data, child) in children {
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let err = String::from_utf8_lossy(&out.stderr);
            ensure(out.status.code() == Some(0), || {
                format!(
                    "round {round}: join {node} exited {:?}: {err}",
                    out.status.code()
                )
            })?;
            joined.push((node, data));
        }
        eprintln!(
            "  round {round}: leader m{leader} killed; 16 joins done {:?} later",
            t0.elapsed()
        );
        let store = list(bin, &url, &[])?;
        ensure(store.len() == 16, || {
            format!("round {round}: {} nodes in the store", store.len())
        })?;
        check_invariants(&store, &joined)?;
        c.restart(leader)?;
    }
    Ok(())
}

/// etcds:// with a CA and client certificates made by openssl now: flags work, the
/// ETCDCTL_* environment works, a missing client certificate fails within the
/// deadline, and plain etcd:// against the TLS port fails.
fn tls_with_client_certificates(bin: &Path) -> TestResult {
    let c = EtcdCluster::start(1, true)?;
    let certs = c.certs.as_ref().ok_or("no certs")?;
    let url = c.url(&format!("/{PREFIX}-tls/"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cmd = join_cmd(bin, &url, "tls-a", &dir.path().join("a"), "10.53.0.0/24");
    cmd.arg("--etcd-cacert").arg(&certs.ca);
    cmd.arg("--etcd-cert").arg(&certs.client_cert);
    cmd.arg("--etcd-key").arg(&certs.client_key);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("TLS join with flags: {}", r.stderr)
    })?;
    let mut cmd = join_cmd(bin, &url, "tls-b", &dir.path().join("b"), "10.53.0.0/24");
    cmd.env("ETCDCTL_CACERT", &certs.ca)
        .env("ETCDCTL_CERT", &certs.client_cert)
        .env("ETCDCTL_KEY", &certs.client_key);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("TLS join with ETCDCTL_*: {}", r.stderr)
    })?;
    let mut cmd = join_cmd(bin, &url, "tls-c", &dir.path().join("c"), "10.53.0.0/24");
    cmd.arg("--etcd-cacert")
        .arg(&certs.ca)
        .args(["--store-timeout", "2s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(1), || {
        format!("TLS join without a client cert exited {:?}", r.code)
    })?;
    let plain = url.replacen("etcds://", "etcd://", 1);
    let mut cmd = join_cmd(bin, &plain, "tls-d", &dir.path().join("d"), "10.53.0.0/24");
    cmd.args(["--store-timeout", "2s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(1), || {
        format!("plain etcd:// to a TLS port exited {:?}", r.code)
    })?;
    let mut l = node_cmd(
        bin,
        "list",
        &url,
        &["--format", "json", "--data-dir", "/nonexistent-aksh3"],
    );
    l.arg("--etcd-cacert").arg(&certs.ca);
    l.arg("--etcd-cert").arg(&certs.client_cert);
    l.arg("--etcd-key").arg(&certs.client_key);
    let r = run(&mut l)?;
    ensure(
        r.code == Some(0)
            && r.stdout.contains("tls-a")
            && r.stdout.contains("tls-b")
            && !r.stdout.contains("tls-c"),
        || format!("TLS list: {:?} {}{}", r.code, r.stdout, r.stderr),
    )
}

/// etcd auth on: user:password@ in the URL, --etcd-user with --etcd-password-file,
/// ETCDCTL_USER/ETCDCTL_PASSWORD; no or wrong credentials are refused fast.
fn auth_user_password(bin: &Path) -> TestResult {
    let c = EtcdCluster::start(1, false)?;
    c.etcdctl_all(&["user", "add", "root:aksh3-root-pw"])?;
    c.etcdctl_all(&["user", "add", "aksnet:aksh3-pw"])?;
    c.etcdctl_all(&["role", "add", "aksnet"])?;
    c.etcdctl_all(&[
        "role",
        "grant-permission",
        "aksnet",
        "--prefix=true",
        "readwrite",
        &format!("/{PREFIX}-auth/"),
    ])?;
    c.etcdctl_all(&["user", "grant-role", "aksnet", "aksnet"])?;
    c.etcdctl_all(&["auth", "enable"])?;
    let eps = c.endpoints().join(",");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("etcd://aksnet:aksh3-pw@{eps}/{PREFIX}-auth/");
    let r = run(&mut join_cmd(
        bin,
        &url,
        "au-a",
        &dir.path().join("a"),
        "10.54.0.0/24",
    ))?;
    ensure(r.code == Some(0), || {
        format!("join with user:password@: {}", r.stderr)
    })?;
    ensure(
        !r.stdout.contains("aksh3-pw") && !r.stderr.contains("aksh3-pw"),
        || "the password was printed".into(),
    )?;
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "aksh3-pw\n").map_err(|e| e.to_string())?;
    let bare = format!("etcd://{eps}/{PREFIX}-auth/");
    let mut cmd = join_cmd(bin, &bare, "au-b", &dir.path().join("b"), "10.54.0.0/24");
    cmd.args(["--etcd-user", "aksnet", "--etcd-password-file"])
        .arg(&pwfile);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("join with --etcd-password-file: {}", r.stderr)
    })?;
    let mut cmd = join_cmd(bin, &bare, "au-c", &dir.path().join("c"), "10.54.0.0/24");
    cmd.env("ETCDCTL_USER", "aksnet")
        .env("ETCDCTL_PASSWORD", "aksh3-pw");
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("join with ETCDCTL_USER/PASSWORD: {}", r.stderr)
    })?;
    let wrong = format!("etcd://aksnet:nope@{eps}/{PREFIX}-auth/");
    let r = run(&mut join_cmd(
        bin,
        &wrong,
        "au-d",
        &dir.path().join("d"),
        "10.54.0.0/24",
    ))?;
    ensure(r.code == Some(1) && r.took < Duration::from_secs(5), || {
        format!(
            "wrong password: {:?} after {:?}: {}",
            r.code, r.took, r.stderr
        )
    })?;
    eprintln!("  wrong password: {}", r.stderr.trim());
    let mut cmd = join_cmd(bin, &bare, "au-e", &dir.path().join("e"), "10.54.0.0/24");
    cmd.args(["--store-timeout", "3s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(1), || {
        format!("no credentials exited {:?}", r.code)
    })?;
    let store = list(bin, &url, &[])?;
    ensure(
        store.keys().map(String::as_str).collect::<Vec<_>>() == ["au-a", "au-b", "au-c"],
        || format!("nodes {:?}", store.keys()),
    )
}

/// Polls `node list` until `node` is gone, for at most `within`.
fn wait_gone(bin: &Path, url: &str, node: &str, within: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    loop {
        if !list(bin, url, &[])?.contains_key(node) {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > within {
            return Err(format!("{node} still in the store after {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Leases (issue 17): a node joined with a 2 s grace period whose keepalive never
/// runs gives its addresses back (the next node gets them); its own keepalive
/// then fences its pool (the plugin's pool reader refuses it) until it rejoins. A
/// node whose keepalive runs keeps its reservation past the grace period, and
/// loses it once the keepalive stops.
fn lease_expiry_returns_a_dead_nodes_addresses(c: &EtcdCluster, bin: &Path) -> TestResult {
    let url = c.url(&format!("/{PREFIX}-lease/"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (dead, next) = (dir.path().join("dead"), dir.path().join("next"));
    let mut cmd = join_cmd(bin, &url, "dead", &dead, "10.55.0.0/24");
    cmd.args(["--lease-ttl", "2s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("join with a lease: {}", r.stderr)
    })?;
    ensure(dead.join("node-pool.lease").exists(), || {
        "no lease record".into()
    })?;
    let old = list(bin, &url, &[])?
        .get("dead")
        .cloned()
        .ok_or("dead not joined")?;
    let gone = wait_gone(bin, &url, "dead", Duration::from_secs(15))?;
    eprintln!("  a 2s lease without keepalive: reservation gone {gone:?} after the join returned");
    let r = run(&mut join_cmd(bin, &url, "next", &next, "10.55.0.0/24"))?;
    ensure(r.code == Some(0), || format!("next join: {}", r.stderr))?;
    let now = list(bin, &url, &[])?;
    ensure(now.get("next") == Some(&old), || {
        "the next node did not get the dead node's addresses".into()
    })?;
    // The dead node's keepalive finds the lease gone and fences its pool.
    let mut ka = node_cmd(bin, "keepalive", &url, &["--node", "dead", "--once"]);
    ka.arg("--data-dir").arg(&dead);
    let r = run(&mut ka)?;
    ensure(r.code == Some(1) && r.stderr.contains("expired"), || {
        format!("keepalive of an expired lease: {:?} {}", r.code, r.stderr)
    })?;
    let e = aksnet_store::local_pool::read_node_pool(&dead)
        .err()
        .ok_or("the plugin's pool reader accepts a fenced pool")?;
    ensure(
        matches!(e, aksnet_store::local_pool::LocalPoolError::Fenced { .. }),
        || format!("{e}"),
    )?;
    // Rejoining lifts the fence with a new, disjoint block.
    let r = run(&mut join_cmd(bin, &url, "dead", &dead, "10.55.0.0/24"))?;
    ensure(r.code == Some(0), || format!("rejoin: {}", r.stderr))?;
    aksnet_store::local_pool::read_node_pool(&dead).map_err(|e| format!("after rejoin: {e}"))?;
    check_invariants(
        &list(bin, &url, &[])?,
        &[("next".into(), next), ("dead".into(), dead)],
    )?;
    // A kept-alive lease outlives its TTL; it expires once the keepalive stops.
    let kept = dir.path().join("kept");
    let mut cmd = join_cmd(bin, &url, "kept", &kept, "10.55.0.0/24");
    cmd.args(["--lease-ttl", "2s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || format!("kept join: {}", r.stderr))?;
    let mut ka = node_cmd(bin, "keepalive", &url, &["--node", "kept"]);
    ka.arg("--data-dir")
        .arg(&kept)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = ka.spawn().map_err(|e| format!("spawn keepalive: {e}"))?;
    std::thread::sleep(Duration::from_secs(5));
    let alive = list(bin, &url, &[])?.contains_key("kept");
    let _ = child.kill();
    let _ = child.wait();
    ensure(alive, || {
        "kept's reservation expired while its keepalive ran".into()
    })?;
    wait_gone(bin, &url, "kept", Duration::from_secs(15))?;
    keepalive_watch_fences_at_once(bin, &url, dir.path())
}

/// The keepalive watches the node's key: when the reservation is released behind
/// its back (here a `leave` run elsewhere), it fences the pool at once, long
/// before its next scheduled round (TTL/3 = 10 s).
fn keepalive_watch_fences_at_once(bin: &Path, url: &str, dir: &Path) -> TestResult {
    let data = dir.join("watched");
    let mut cmd = join_cmd(bin, url, "watched", &data, "10.55.0.0/24");
    cmd.args(["--lease-ttl", "30s"]);
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || format!("watched join: {}", r.stderr))?;
    let mut ka = node_cmd(bin, "keepalive", url, &["--node", "watched"]);
    ka.arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ka.spawn().map_err(|e| format!("spawn keepalive: {e}"))?;
    std::thread::sleep(Duration::from_millis(700));
    let mut leave = node_cmd(bin, "leave", url, &["--node", "watched", "--force"]);
    leave.arg("--data-dir").arg(dir.join("elsewhere"));
    let r = run(&mut leave)?;
    let t0 = Instant::now();
    let fenced = loop {
        if data.join("node-pool.fenced").exists() {
            break Some(t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(6) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    ensure(r.code == Some(0), || {
        format!("leave elsewhere: {}", r.stderr)
    })?;
    let took = fenced.ok_or_else(|| {
        format!(
            "no fence 6 s after the leave: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    eprintln!("  keepalive fenced the pool {took:?} after the reservation was released elsewhere");
    Ok(())
}

/// 1,300 nodes at maxPods 250: their records (4.7 MB) exceed gRPC's 4 MiB message
/// limit, which broke every join and list before paging and the address index.
/// The real CLI joins one more node and lists all of them.
fn past_the_4_mib_response_limit(c: &EtcdCluster, bin: &Path) -> TestResult {
    const NODES: u32 = 1300;
    let url = c.url(&format!("/{PREFIX}-scale/"));
    let mut cfg = aksnet_store::EtcdConfig::from_url(&url).map_err(|e| e.to_string())?;
    cfg.deadline = Duration::from_secs(120);
    let store = aksnet_store::EtcdStore::connect(cfg).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    support::fill(&store, "big", "10.64.0.0/12", 250, 0, NODES)?;
    let values: usize = aksnet_store::Store::list(&store, "nodes/")
        .map_err(|e| e.to_string())?
        .iter()
        .map(|kv| kv.value.len())
        .sum();
    eprintln!(
        "  {NODES} nodes at maxPods 250 written in {:?}: {values} bytes of reservations",
        t0.elapsed()
    );
    ensure(values > 4 << 20, || {
        format!("only {values} bytes: not past 4 MiB")
    })?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cmd = node_cmd(
        bin,
        "join",
        &url,
        &[
            "--node",
            "big-new",
            "--subnet",
            "10.64.0.0/12",
            "--max-pods",
            "250",
        ],
    );
    cmd.arg("--data-dir").arg(dir.path().join("big-new"));
    let r = run(&mut cmd)?;
    ensure(r.code == Some(0), || {
        format!("join at scale: {:?} {}", r.code, r.stderr)
    })?;
    eprintln!("  CLI join with {NODES} nodes at maxPods 250: {:?}", r.took);
    let t0 = Instant::now();
    let all = list(bin, &url, &[])?;
    eprintln!("  CLI list of {} nodes: {:?}", all.len(), t0.elapsed());
    ensure(all.len() == NODES as usize + 1, || {
        format!("{} nodes listed", all.len())
    })?;
    check_invariants(&all, &[("big-new".into(), dir.path().join("big-new"))])
}

#[allow(clippy::vec_init_then_push)] // each push runs one test, in order
fn main() -> ExitCode {
    let t0 = Instant::now();
    let bin = match aksnet_bin() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("etcd fault tests: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cluster = match EtcdCluster::start(3, false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("etcd fault tests: FAILED to start a 3-member etcd cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("  3-member cluster up in {:?}", t0.elapsed());

    let mut results: Vec<(&str, TestResult)> = Vec::new();
    results.push((
        "frozen_member_and_silent_listener_first",
        frozen_member_and_silent_listener_first(&mut cluster, &bin),
    ));
    results.push((
        "quorum_loss_is_a_bounded_error",
        quorum_loss_is_a_bounded_error(&mut cluster, &bin),
    ));
    results.push((
        "leader_kill_during_16_parallel_joins_x3",
        leader_kill_during_16_parallel_joins(&mut cluster, &bin, 3),
    ));
    results.push((
        "lease_expiry_returns_a_dead_nodes_addresses",
        lease_expiry_returns_a_dead_nodes_addresses(&cluster, &bin),
    ));
    results.push((
        "past_the_4_mib_response_limit",
        past_the_4_mib_response_limit(&cluster, &bin),
    ));
    drop(cluster);
    results.push((
        "tls_with_client_certificates",
        tls_with_client_certificates(&bin),
    ));
    results.push(("auth_user_password", auth_user_password(&bin)));
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!(
        "test result: {}. {} passed; {failed} failed; {:?}",
        if failed == 0 { "ok" } else { "FAILED" },
        results.len() - failed,
        t0.elapsed()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
