//! Test and measurement helper for the IPAM store: the processes of the multi-process
//! stress and crash tests (crates/aksnet-ipam/tests/multiprocess.rs) and the latency
//! measurement in README.md. Not installed by anything; not part of the plugin.
//!
//! ```text
//! aksnet-ipam-stress cycles <dataDir> <network> <subnet> <owner> <count> <markersDir> <log>
//! aksnet-ipam-stress crash-loop <dataDir> <network> <subnet> <owner> <log>
//! aksnet-ipam-stress bench <dataDir> <network> <held> <rounds>
//! ```

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aksnet_core::allocator::{AllocError, AllocationMeta, AttachmentKey, Pool, Range, ValidPool};
use aksnet_ipam::{IpamError, IpamStore};
use ipnet::IpNet;

/// xorshift64*: enough randomness for delays and choices, no dependency.
struct Rng(u64);
impl Rng {
    fn seeded(salt: u64) -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng((t ^ (u64::from(std::process::id()) << 32) ^ salt) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn pool(subnet: &str) -> Result<ValidPool, String> {
    let net: IpNet = subnet
        .parse()
        .map_err(|e| format!("subnet {subnet}: {e}"))?;
    Pool::Ranges(vec![vec![Range::subnet(net)]])
        .validate()
        .map_err(|e| e.to_string())
}

fn log_line(log: &Path, line: &str) -> Result<(), String> {
    // O_APPEND and one write per line: lines from different processes never interleave.
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("write {}: {e}", log.display()))
}

fn arg(args: &[String], i: usize, name: &str) -> Result<String, String> {
    args.get(i)
        .cloned()
        .ok_or_else(|| format!("missing argument {name}"))
}

fn num(args: &[String], i: usize, name: &str) -> Result<u64, String> {
    arg(args, i, name)?
        .parse()
        .map_err(|e| format!("{name}: {e}"))
}

/// Allocate/hold/release cycles; records each change in `log` while holding the IPAM
/// lock and holds a marker file `<markers>/<ip>` (created with O_EXCL) while it holds
/// the address, so two holders of one address at once are caught two ways.
fn cycles(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, 2, "dataDir")?);
    let network = arg(args, 3, "network")?;
    let pool = pool(&arg(args, 4, "subnet")?)?;
    let owner = arg(args, 5, "owner")?;
    let count = num(args, 6, "count")?;
    let markers = PathBuf::from(arg(args, 7, "markersDir")?);
    let log = PathBuf::from(arg(args, 8, "log")?);
    let store = IpamStore::open(&dir, &network).map_err(|e| e.to_string())?;
    let mut rng = Rng::seeded(owner.len() as u64);
    let mut exhausted = 0u64;
    for i in 0..count {
        let key = AttachmentKey::new(format!("{owner}-{i}"), "eth0");
        let ip = loop {
            let res = store.transact(|s| -> Result<IpAddr, IpamError> {
                let l = s.allocate(&pool, &key, &[], AllocationMeta::default())?;
                let ip = l[0].ip;
                log_line(&log, &format!("A {ip} {key}")).map_err(|e| IpamError::Io {
                    op: "log",
                    path: log.clone(),
                    source: io::Error::other(e),
                })?;
                Ok(ip)
            });
            match res {
                Ok(ip) => break ip,
                Err(IpamError::Alloc(AllocError::Exhausted { .. })) => {
                    exhausted += 1;
                    thread::sleep(Duration::from_micros(200 + rng.below(800)));
                }
                Err(e) => return Err(format!("allocate {key}: {e}")),
            }
        };
        let marker = markers.join(ip.to_string());
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(mut f) => {
                let _ = f.write_all(key.to_string().as_bytes());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let other = fs::read_to_string(&marker).unwrap_or_default();
                return Err(format!("DUPLICATE {ip}: held by {key} and {other}"));
            }
            Err(e) => return Err(format!("marker {}: {e}", marker.display())),
        }
        thread::sleep(Duration::from_micros(rng.below(1500)));
        fs::remove_file(&marker).map_err(|e| format!("remove {}: {e}", marker.display()))?;
        let released = store
            .transact(|s| -> Result<Vec<IpAddr>, IpamError> {
                let r = s.release(&key);
                for ip in &r {
                    log_line(&log, &format!("R {ip} {key}")).map_err(|e| IpamError::Io {
                        op: "log",
                        path: log.clone(),
                        source: io::Error::other(e),
                    })?;
                }
                Ok(r)
            })
            .map_err(|e| format!("release {key}: {e}"))?;
        if released != vec![ip] {
            return Err(format!("release {key}: got {released:?}, held {ip}"));
        }
    }
    println!("ok owner={owner} cycles={count} exhausted={exhausted}");
    Ok(())
}

/// Random transactions until killed. Logs `a <key>` before an allocate, `C <key> <ip>`
/// after it committed, `r <key>` before a release and `D <key>` after it committed, so
/// the parent can check what the state must and must not hold after SIGKILL.
fn crash_loop(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, 2, "dataDir")?);
    let network = arg(args, 3, "network")?;
    let pool = pool(&arg(args, 4, "subnet")?)?;
    let owner = arg(args, 5, "owner")?;
    let log = PathBuf::from(arg(args, 6, "log")?);
    let store = IpamStore::open(&dir, &network).map_err(|e| e.to_string())?;
    let mut rng = Rng::seeded(7);
    let mut held: Vec<AttachmentKey> = Vec::new();
    for n in 0u64.. {
        let choice = rng.below(10);
        if held.is_empty() || (choice < 6 && held.len() < 8) {
            let key = AttachmentKey::new(format!("{owner}-{n}"), "eth0");
            log_line(&log, &format!("a {key}"))?;
            match store.transact(|s| -> Result<_, IpamError> {
                Ok(s.allocate(&pool, &key, &[], AllocationMeta::default())?)
            }) {
                Ok(l) => {
                    log_line(&log, &format!("C {key} {}", l[0].ip))?;
                    held.push(key);
                }
                Err(IpamError::Alloc(AllocError::Exhausted { .. })) => {}
                Err(e) => return Err(format!("allocate {key}: {e}")),
            }
        } else if choice < 9 {
            let i = rng.below(held.len() as u64) as usize;
            let key = held.swap_remove(i);
            log_line(&log, &format!("r {key}"))?;
            store
                .transact(|s| -> Result<_, IpamError> { Ok(s.release(&key)) })
                .map_err(|e| format!("release {key}: {e}"))?;
            log_line(&log, &format!("D {key}"))?;
        } else {
            // GC keeping what this process holds (and nothing of other owners').
            let valid: HashSet<AttachmentKey> = held.iter().cloned().collect();
            for k in &held {
                log_line(&log, &format!("g {k}"))?;
            }
            log_line(&log, "G")?;
            store
                .transact(|s| -> Result<_, IpamError> { Ok(s.gc(&valid)) })
                .map_err(|e| format!("gc: {e}"))?;
            log_line(&log, "GD")?;
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Latency of one allocate and one release transaction with `held` allocations in the
/// state, fsyncs included.
fn bench(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(arg(args, 2, "dataDir")?);
    let network = arg(args, 3, "network")?;
    let held = num(args, 4, "held")?;
    let rounds = num(args, 5, "rounds")?;
    let pool = pool("10.99.0.0/23")?;
    let store = IpamStore::open(&dir, &network).map_err(|e| e.to_string())?;
    store
        .transact(|s| -> Result<_, IpamError> {
            for i in 0..held {
                s.allocate(
                    &pool,
                    &AttachmentKey::new(format!("prefill-{i}"), "eth0"),
                    &[],
                    AllocationMeta::default(),
                )?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let size = fs::metadata(store.state_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let mut alloc = Vec::new();
    let mut release = Vec::new();
    let mut noop = Vec::new();
    let key = AttachmentKey::new("bench", "eth0");
    for _ in 0..rounds {
        let t = Instant::now();
        store
            .transact(|s| -> Result<_, IpamError> {
                Ok(s.allocate(&pool, &key, &[], AllocationMeta::default())?)
            })
            .map_err(|e| e.to_string())?;
        alloc.push(t.elapsed());
        let t = Instant::now();
        store
            .transact(|s| -> Result<_, IpamError> { Ok(s.release(&key)) })
            .map_err(|e| e.to_string())?;
        release.push(t.elapsed());
        let t = Instant::now();
        store
            .transact(|s| -> Result<_, IpamError> { Ok(s.get(&key).is_some()) })
            .map_err(|e| e.to_string())?;
        noop.push(t.elapsed());
    }
    for (name, v) in [
        ("allocate", &mut alloc),
        ("release", &mut release),
        ("lookup", &mut noop),
    ] {
        v.sort();
        println!(
            "{name}: held={} file={}B median={:?} p99={:?} max={:?}",
            held + 1,
            size,
            percentile(v, 0.5),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    }
    // Leave the directory as found, minus our files.
    for p in [store.state_path(), store.lock_path()] {
        let _ = fs::remove_file(p);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let res = match args.get(1).map(String::as_str) {
        Some("cycles") => cycles(&args),
        Some("crash-loop") => crash_loop(&args),
        Some("bench") => bench(&args),
        _ => Err("usage: aksnet-ipam-stress cycles|crash-loop|bench ...".to_string()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aksnet-ipam-stress: {e}");
            ExitCode::FAILURE
        }
    }
}
