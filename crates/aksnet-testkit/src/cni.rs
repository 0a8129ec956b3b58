//! A CNI plugin invoked as a runtime invokes it (CNI spec, "Execution
//! Protocol": `CNI_*` variables, the network configuration on stdin, the result
//! or error as JSON on stdout): github.com/containernetworking/cni SPEC.md.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// One invocation: the plugin binary, the netns it runs in (the node's; `None`
/// = this one) and the `CNI_*` variables. The environment is otherwise empty
/// but for `PATH`, `CNI_PATH` (the plugin's directory) and an empty
/// `AKSNET_CNI_LOG_FILE` (no per-call log unless a test asks for one).
#[derive(Debug, Clone)]
pub struct CniCall<'a> {
    pub plugin: &'a Path,
    pub node_netns: Option<&'a str>,
    pub env: Vec<(String, String)>,
}

impl<'a> CniCall<'a> {
    pub fn new(plugin: &'a Path) -> Self {
        CniCall {
            plugin,
            node_netns: None,
            env: Vec::new(),
        }
    }

    /// Run the plugin inside the named netns `node` (the node's network).
    pub fn in_netns(mut self, node: Option<&'a str>) -> Self {
        self.node_netns = node;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The variables of `command` for container `id` with interface eth0 in the
    /// pod netns at `netns_path`, and `CNI_ARGS` (kubelet's K8S_POD_* pairs).
    pub fn verb(self, command: &str, id: &str, netns_path: &str, cni_args: &str) -> Self {
        self.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns_path)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", cni_args)
    }

    /// Runs the plugin with `stdin` and waits for it.
    #[track_caller]
    pub fn run(&self, stdin: &str) -> Outcome {
        let mut cmd = match self.node_netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(self.plugin);
                c
            }
            None => Command::new(self.plugin),
        };
        cmd.env_clear()
            .env("AKSNET_CNI_LOG_FILE", "")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_PATH", self.plugin.parent().unwrap_or(Path::new("/")));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.plugin.display()));
        if let Some(mut input) = child.stdin.take() {
            // A plugin that exits before reading all of stdin is a result, not a test bug.
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.plugin.display()));
        Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What one plugin invocation returned.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// The CNI error code; panics if the call succeeded.
    #[track_caller]
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected an error, got success: {}", self.stdout);
        self.json()["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("error without code: {}", self.stdout))
    }

    /// The CNI error's `msg`.
    pub fn msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok, "plugin failed: {} {}", self.stdout, self.stderr);
        self
    }
}
