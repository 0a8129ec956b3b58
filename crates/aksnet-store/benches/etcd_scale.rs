//! Join and list latency of the real `aksnet` CLI against a real 3-member etcd
//! cluster on loopback at 100, 1,000 and 5,000 nodes × maxPods 250 (issue 17,
//! "scale"). Nodes beyond the measured ones are written directly (records and
//! address-index keys, as a join writes them); each measured join is a real
//! `aksnet node join` process (left again afterwards), each list a real
//! `aksnet node list --format json`.
//!
//! Run (docs/benchmarks.md has the numbers):
//!
//! ```text
//! cargo build -p aksnet --features etcd            # or --release, then AKSNET_BIN=target/release/aksnet
//! cargo bench -p aksnet-store --features etcd --bench etcd_scale
//! ```
//!
//! CI only compiles it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/etcd_support/mod.rs"]
#[allow(dead_code)] // the fault tests use the rest of the harness
mod support;

const SUBNET: &str = "10.0.0.0/10";
const JOINS: usize = 5;
const LISTS: usize = 3;

fn bin() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("AKSNET_BIN") {
        return Ok(PathBuf::from(b));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .ancestors()
        .nth(3)
        .ok_or("no target directory above the bench binary")?;
    let debug = target.join("debug").join("aksnet");
    if debug.exists() {
        Ok(debug)
    } else {
        Err(format!(
            "{} is missing: cargo build -p aksnet --features etcd, or set AKSNET_BIN",
            debug.display()
        ))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(cmd: &mut Command) -> Result<Duration, String> {
    let t0 = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(t0.elapsed())
}

fn run() -> Result<(), String> {
    let bin = bin()?;
    let cluster = support::EtcdCluster::start(3, false)?;
    let url = cluster.url("/aksh3-bench/");
    let mut cfg = aksnet_store::EtcdConfig::from_url(&url).map_err(|e| e.to_string())?;
    cfg.deadline = Duration::from_secs(600);
    let store = aksnet_store::EtcdStore::connect(cfg).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    println!("binary: {}", bin.display());
    println!("| nodes (maxPods 250) | reservations in etcd | `node join` median of {JOINS} | `node list --format json` median of {LISTS} |");
    println!("|---|---|---|---|");
    let mut have = 0;
    for n in [100u32, 1000, 5000] {
        support::fill(&store, "bench", SUBNET, 250, have, n)?;
        have = n;
        let bytes: usize = aksnet_store::Store::list(&store, "nodes/")
            .map_err(|e| e.to_string())?
            .iter()
            .map(|kv| kv.value.len())
            .sum();
        let mut joins = Vec::new();
        for k in 0..JOINS {
            let node = format!("new-{n}-{k}");
            joins.push(timed(
                Command::new(&bin)
                    .args(["node", "join", "--node", &node, "--subnet", SUBNET])
                    .args(["--max-pods", "250", "--store", &url])
                    .args(["--store-timeout", "2m"])
                    .arg("--data-dir")
                    .arg(dir.path().join(&node)),
            )?);
        }
        // The measured nodes leave again, so the next fill's addresses are free.
        for k in 0..JOINS {
            let node = format!("new-{n}-{k}");
            timed(
                Command::new(&bin)
                    .args(["node", "leave", "--node", &node, "--store", &url])
                    .arg("--data-dir")
                    .arg(dir.path().join(&node)),
            )?;
        }
        let mut lists = Vec::new();
        for _ in 0..LISTS {
            lists.push(timed(
                Command::new(&bin)
                    .args(["node", "list", "--format", "json", "--store", &url])
                    .args(["--store-timeout", "2m"])
                    .args(["--data-dir", "/nonexistent-aksh3"]),
            )?);
        }
        println!(
            "| {} | {:.1} MB | {:.0} ms | {:.0} ms |",
            n,
            bytes as f64 / 1e6,
            median(joins).as_secs_f64() * 1e3,
            median(lists).as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("etcd_scale: FAILED: {e}");
        std::process::exit(1);
    }
}
