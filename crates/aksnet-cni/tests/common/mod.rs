//! Shared helpers for the plugin's privileged tests: named namespaces and links
//! that are removed on drop (even when a test fails), and a runner that invokes
//! the real `aksnet-cni` binary the way a runtime does (CNI_* environment,
//! config on stdin, JSON on stdout).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aksnet_testkit::CniCall;
use serde_json::{json, Value};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_aksnet-cni");

/// A host link deleted on drop (the bridge the plugin creates and never removes).
#[allow(unused_imports)] // each test binary uses a subset
pub use aksnet_testkit::LinkGuard;
pub use aksnet_testkit::{require_root, tag, Outcome};

/// A named netns (`/run/netns/<name>`) deleted on drop; names carry the
/// `aksnt` prefix of this crate's tests.
pub struct NetnsGuard {
    pub name: String,
    ns: aksnet_testkit::Netns,
}

impl NetnsGuard {
    pub fn new(name: &str) -> Self {
        assert!(
            name.starts_with("aksnt") || name.starts_with("aksov"),
            "test names carry the aksnt prefix (aksov for the overlay suites)"
        );
        NetnsGuard {
            name: name.to_string(),
            ns: aksnet_testkit::Netns::create(name),
        }
    }

    pub fn path(&self) -> String {
        self.ns.path().display().to_string()
    }

    /// Runs a command inside the netns and returns (success, stdout and stderr).
    pub fn exec(&self, argv: &[&str]) -> (bool, String) {
        self.ns.try_exec(argv)
    }

    pub fn ping(&self, ip: &str) -> bool {
        self.ns.ping(ip, 2)
    }
}

/// Invokes the plugin. `env` are extra/overriding variables; `netns_exec`
/// runs it inside a named netns (nodesubnet: the plugin's own netns is the node).
pub fn call_in(netns_exec: Option<&str>, env: &[(&str, &str)], stdin: &str) -> Outcome {
    let mut call = CniCall::new(Path::new(PLUGIN)).in_netns(netns_exec);
    for (k, v) in env {
        call = call.env(k, v);
    }
    call.run(stdin)
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
