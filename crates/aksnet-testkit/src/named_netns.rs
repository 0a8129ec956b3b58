//! Named network namespaces a test did not create itself (a lab's, a daemon's):
//! listed by prefix, and commands run inside them by name.

use std::process::Output;

use crate::cmd::{ok, sh};

/// The names under /run/netns that start with `prefix`, sorted.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `ip netns exec <ns> <argv>`, whatever its result.
#[track_caller]
pub fn exec_in(ns: &str, argv: &[&str]) -> Output {
    sh(&[&["ip", "netns", "exec", ns], argv].concat())
}

/// `ip -n <ns> <args>`, which must succeed; returns stdout.
#[track_caller]
pub fn ip_in(ns: &str, args: &[&str]) -> String {
    ok(&[&["ip", "-n", ns], args].concat())
}

/// One ping of `addr` from inside `ns`, waiting up to `wait_s` seconds: true when answered.
pub fn ping_from(ns: &str, addr: &str, wait_s: u32) -> bool {
    let w = wait_s.to_string();
    exec_in(ns, &["ping", "-c", "1", "-W", &w, addr])
        .status
        .success()
}
