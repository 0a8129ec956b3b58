//! Shared helpers for the plugin's privileged tests: named namespaces and links
//! that are removed on drop (even when a test fails), and a runner that invokes
//! the real `aksnet-cni` binary the way a runtime does (CNI_* environment,
//! config on stdin, JSON on stdout).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_aksnet-cni");

/// Fails (never skips) when the tests cannot run here.
pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "these tests create network namespaces: run them as root"
    );
}

/// A unique short tag: `<letters><pid mod 10^4><counter>`; names stay within IFNAMSIZ.
pub fn tag(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{kind}{}{n}", std::process::id() % 10000)
}

/// A named netns (`/run/netns/<name>`) deleted on drop.
pub struct NetnsGuard {
    pub name: String,
}

impl NetnsGuard {
    pub fn new(name: &str) -> Self {
        assert!(
            name.starts_with("aksnt") || name.starts_with("aksov"),
            "test names carry the aksnt prefix (aksov for the overlay suites)"
        );
        aksnet_netlink::create_named_netns(name)
            .unwrap_or_else(|e| panic!("creating netns {name}: {e}"));
        NetnsGuard {
            name: name.to_string(),
        }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the netns and returns (success, stdout).
    pub fn exec(&self, argv: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap_or_else(|e| {
                panic!("ip netns exec {}: {e} (is iproute2 installed?)", self.name)
            });
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    pub fn ping(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "2", ip]).0
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = aksnet_netlink::delete_named_netns(&self.name);
    }
}

/// A host link deleted on drop (the bridge the plugin creates and never removes).
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut h) = aksnet_netlink::Handle::new() {
            let _ = h.del_link_by_name(&self.0);
        }
    }
}

/// What one plugin invocation returned.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// The CNI error code; panics if the call succeeded.
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected an error, got success: {}", self.stdout);
        self.json()["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("error without code: {}", self.stdout))
    }

    pub fn msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok, "plugin failed: {} {}", self.stdout, self.stderr);
        self
    }
}

/// Invokes the plugin. `env` are extra/overriding variables; `netns_exec`
/// runs it inside a named netns (nodesubnet: the plugin's own netns is the node).
pub fn call_in(netns_exec: Option<&str>, env: &[(&str, &str)], stdin: &str) -> Outcome {
    let mut cmd = match netns_exec {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, PLUGIN]);
            c
        }
        None => Command::new(PLUGIN),
    };
    cmd.env_clear()
        // The per-call log is off unless a test's configuration names a file.
        .env("AKSNET_CNI_LOG_FILE", "")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env(
            "CNI_PATH",
            Path::new(PLUGIN).parent().unwrap_or(Path::new("/")),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aksnet-cni");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait aksnet-cni");
    Outcome {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn call(env: &[(&str, &str)], stdin: &str) -> Outcome {
    call_in(None, env, stdin)
}

/// ADD/CHECK/DEL for one attachment.
pub fn verb(
    node: Option<&str>,
    command: &str,
    id: &str,
    netns: &str,
    conf: &Value,
    extra_args: &str,
) -> Outcome {
    let stdin = conf.to_string();
    call_in(
        node,
        &[
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", netns),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", extra_args),
        ],
        &stdin,
    )
}

/// A kubenet config for `version`, with the bridge and data dir of a test.
pub fn kubenet_conf(
    version: &str,
    name: &str,
    bridge: &str,
    data_dir: &Path,
    subnet: &str,
) -> Value {
    json!({
        "cniVersion": version,
        "name": name,
        "type": "aksnet-cni",
        "mode": "kubenet",
        "bridge": bridge,
        "isGateway": true,
        "dataDir": data_dir,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}
    })
}

/// `conf` with `prevResult` set (what a runtime sends on CHECK and DEL).
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

/// The IPAM state's allocations for a network.
pub fn allocations(data_dir: &Path, network: &str) -> Vec<Value> {
    let path: PathBuf = data_dir.join(format!("{network}.json"));
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let v: Value = serde_json::from_str(&s)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            v["allocations"].as_array().cloned().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

pub fn host_link_exists(name: &str) -> bool {
    aksnet_netlink::Handle::new()
        .and_then(|mut h| h.link_by_name(name))
        .map(|l| l.is_some())
        .unwrap_or(false)
}

/// The pod address (without prefix) of an ADD result.
pub fn result_ip(result: &Value) -> String {
    let addr = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no ips in {result}"));
    addr.split('/').next().unwrap_or(addr).to_string()
}

/// Waits (bounded) until `cond` holds: DEL leaves the veth deletion to a
/// detached helper by default (asyncDelete), which needs the kernel's 12–28 ms.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "still not true after 3 s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
