//! Commands a test runs, and the checks every privileged test starts with.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Fails (never skips) when the tests cannot run here.
#[track_caller]
pub fn require_root() {
    // `id -u` (coreutils) rather than geteuid: this crate links no libc binding.
    let uid = ok(&["id", "-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "these tests create network namespaces, links and nftables tables: run them as root"
    );
}

/// A unique short tag `<kind><pid mod 10^4><counter>`, so names built from it
/// stay within IFNAMSIZ (15) and two test processes never collide.
pub fn tag(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{kind}{}{n}", std::process::id() % 10000)
}

/// Runs `args` (program first), panicking if it cannot start.
#[track_caller]
pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e} (is {} installed?)", args[0]))
}

/// Runs `args`, which must succeed; returns its stdout.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let mut cmd = Command::new(args[0]);
    run_ok(cmd.args(&args[1..]))
}

/// Runs a prepared command (environment, working directory, …), which must exit 0;
/// returns its stdout. A failure names the command, its status, stderr and stdout.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Best effort, for Drop guards: never panics, reports a failure on stderr; true on exit 0.
pub fn run_quiet(cmd: &mut Command) -> bool {
    match cmd.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "cleanup: {cmd:?} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("cleanup: cannot run {cmd:?}: {e}");
            false
        }
    }
}

/// Waits up to 10 s for `cond`, polling every 20 ms; panics naming `what`.
#[track_caller]
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    eventually_within(10, what, cond);
}

/// Waits up to `secs` seconds for `cond`, polling every 20 ms; panics naming `what`.
#[track_caller]
pub fn eventually_within(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {secs} s waiting for: {what}");
}
